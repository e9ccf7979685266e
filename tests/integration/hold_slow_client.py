#!/usr/bin/python3
"""hold_slow_client: a held message (DKIM or DMARC on: the default) whose
upload takes the client longer than the backend's idle timeout is still
delivered. In hold mode backstop sends DATA to the backend only at the end
of data, right before the whole message, and meanwhile keeps the backend's
connection alive with a NOOP every [backend] keepalive; in stream mode the
content itself keeps it busy.

Here: Postfix with smtpd_timeout = 2s, [backend] keepalive = 500ms,
[limits] data_buffer = 4k, a client that sends 8 pieces of 5 KB with a
pause of 0.5 s before each (4 s: twice the backend's idle timeout). Expected: 250 and one delivered copy in both
modes, and in hold mode NOOPs in Postfix's view of the session. Before
the fix (DATA sent at DATA, then an idle backend for the whole upload) hold
mode answered 451 4.4.2 and nothing was delivered; with [backend]
keepalive = 0s the NOOPs stop and so does the delivery (shown here too)."""
import time
from harness import *

t = Test("hold_slow_client", watchdog=180, need=("postfix",))
pf = t.postfix(extra_main="smtpd_timeout = 2s\n")
for mode, keepalive, delivered in (("off", "500ms", True), ("annotate", "500ms", True),
                                   ("annotate", "0s", False)):
    with t.case("[dkim] mode=%s, keepalive %s: 4 s transfer, backend idle timeout 2 s" % (mode, keepalive)):
        bs = t.backstop({"backend": {"address": pf.address, "keepalive": keepalive},
                         "limits": {"data_timeout": "10s", "data_buffer": "4k"}, "dkim": {"mode": mode}})
        pf.clear_mail()
        c = bs.client(timeout=15)
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.org>")
        c.cmd("RCPT TO:<user@test.example>")
        t.check_reply("%s: DATA" % mode, c.cmd("DATA"), 354)
        c.send(b"Subject: slow %s\r\n\r\n" % mode.encode())
        for i in range(8):
            time.sleep(0.5)
            c.send((b"line %d " % i + b"z" * 990 + b"\r\n") * 5)
        c.send(b".\r\n")
        r = c.reply(15)
        c.close()
        if delivered:
            t.check_reply("%s: accepted at the end of a slow transfer" % mode, r, 250)
            msgs = pf.wait_for_mail(1, 5)
            t.check("%s: delivered once" % mode, len(msgs) == 1, len(msgs))
        else:
            # the control: without keepalive the backend's idle timer wins,
            # and the client is told to retry (never a lost message)
            t.check_reply("%s, no keepalive: 4xx, the client retries" % mode, r, 4)
            t.check("%s, no keepalive: nothing delivered" % mode, pf.settle(1.0) == [])
        bs.stop()
t.done()

#!/usr/bin/python3
"""review_hold_slow_client: a held message (the default: [dkim] mode =
annotate holds every message) that takes the client longer to send than
the backend's idle timeout for DATA is never delivered.

backstop sends DATA to the backend when the client says DATA, gets 354,
and then sends nothing until the client's end of data: the backend's
connection is idle for the whole transfer. Postfix's smtpd_timeout
(300 s by default) is an idle timeout, so any message whose transfer takes
longer than that (25 MB over a 500 kbit/s link: ~400 s) gets 451 at its
end, every time it is retried, and bounces at the sender after days. In
stream mode ([dkim] mode = off) the content keeps the backend's connection
busy and the same transfer is delivered.

Here: Postfix with smtpd_timeout = 4s, [limits] data_buffer = 4k, a
client that sends 8 pieces of 5 KB with a pause of 1 s before each (well
inside backstop's own [limits] data_timeout of 10 s). Expected: 250 and one delivered copy in
both modes. On this snapshot hold mode answers 451 4.4.2 (backend closed
the connection) and nothing is delivered.

Not registered in tests/integration/local.mk: the fix (send DATA to the
backend only at the end of data in hold mode, or keep it busy) is not
small."""
import time
from harness import *

t = Test("review_hold_slow_client", watchdog=180, need=("postfix",))
pf = t.postfix(extra_main="smtpd_timeout = 4s\n")
for mode in ("off", "annotate"):
    with t.case("[dkim] mode=%s: 8 s transfer, backend idle timeout 4 s" % mode):
        bs = t.backstop({"backend": {"address": pf.address},
                         "limits": {"data_timeout": "10s", "data_buffer": "4k"}, "dkim": {"mode": mode}})
        pf.clear_mail()
        c = bs.client(timeout=15)
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.org>")
        c.cmd("RCPT TO:<user@test.example>")
        t.check_reply("%s: DATA" % mode, c.cmd("DATA"), 354)
        c.send(b"Subject: slow %s\r\n\r\n" % mode.encode())
        for i in range(8):
            time.sleep(1.0)
            c.send((b"line %d " % i + b"z" * 990 + b"\r\n") * 5)
        c.send(b".\r\n")
        t.check_reply("%s: accepted at the end of a slow transfer" % mode, c.reply(15), 250)
        c.close()
        msgs = pf.wait_for_mail(1, 5)
        t.check("%s: delivered once" % mode, len(msgs) == 1, len(msgs))
        bs.stop()
t.done()

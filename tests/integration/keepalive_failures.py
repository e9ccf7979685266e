#!/usr/bin/python3
"""keepalive_failures: a held message's keepalive NOOP and the commands
that meet it (found by reading the backend code while cutting it from the
session).

1. The client ends its upload while a keepalive NOOP is out: backstop's
   DATA waits behind the NOOP. The backend then drops the connection
   without answering: the client gets a 4xx at once (it used to get
   nothing until [limits] session_timeout).
2. A held message refused at end of data (BATV refuse_at = content: a
   forged bounce) while a NOOP is out: the client's next MAIL is relayed
   at once (backstop drops the connection that held the refused
   transaction and opens another; a MAIL that meets a NOOP still out on a
   kept connection waits for its reply: backend_ready() counts such a
   connection as ready, and backend_command() queues behind the NOOP).

The backend is scripted (answers every command at once, NOOP after a
delay; in case 1 the NOOP is never answered and the connection closed)."""
import os
import threading
import time
from harness import *

t = Test("keepalive_failures", watchdog=90)


class NoopBackend(ThreadedServer):
    """Answers at once, NOOP after noop_delay s; with drop_at_noop the
    connection is closed instead of answering the NOOP."""

    def __init__(self, test, noop_delay, drop_at_noop):
        self.noop_delay = noop_delay
        self.drop_at_noop = drop_at_noop
        self.noops = 0
        self.mails = []
        super().__init__(test)

    def session(self, c):
        f = c.makefile("rb")
        c.sendall(b"220 fake ESMTP\r\n")
        data = False
        for raw in f:
            line = raw.rstrip(b"\r\n")
            if data:
                if line == b".":
                    data = False
                    c.sendall(b"250 2.0.0 Ok: queued\r\n")
                continue
            verb = line.split(b" ")[0].upper()
            if verb == b"EHLO":
                c.sendall(b"250-fake\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"NOOP":
                self.noops += 1
                time.sleep(self.noop_delay)
                if self.drop_at_noop:
                    c.close()
                    return
                c.sendall(b"250 2.0.0 Ok\r\n")
            elif verb == b"MAIL":
                self.mails.append(line)
                c.sendall(b"250 2.1.0 Ok\r\n")
            elif verb == b"DATA":
                data = True
                c.sendall(b"354 go\r\n")
            elif verb == b"QUIT":
                c.sendall(b"221 bye\r\n")
                return
            else:
                c.sendall(b"250 2.0.0 Ok\r\n")


with t.case("the backend drops the connection while DATA waits behind a keepalive NOOP"):
    be = NoopBackend(t, noop_delay=1.5, drop_at_noop=True)
    bs = t.backstop({"backend": {"address": be.address, "keepalive": "1s", "xclient": "off"},
                     "limits": {"session_timeout": "60s", "data_timeout": "30s"},
                     "dkim": {"mode": "annotate"}})   # DKIM on: the message is held
    c = bs.client(timeout=30)
    c.ehlo()
    t.check_reply("MAIL", c.cmd("MAIL FROM:<sender@example.org>"), 250)
    t.check_reply("RCPT", c.cmd("RCPT TO:<user@example.org>"), 250)
    t.check_reply("DATA", c.cmd("DATA"), 354)
    c.send(b"Subject: keepalive drop\r\n\r\nfirst part\r\n")
    t.check("a keepalive NOOP went out", poll(lambda: be.noops >= 1, 5), be.noops)
    t0 = time.monotonic()
    c.send(b"last part\r\n.\r\n")          # DATA to the backend now waits behind the NOOP
    r = c.try_reply(20)
    took = time.monotonic() - t0
    t.check_reply("the client gets a 4xx (the backend went away)", r, 4)
    t.check("at once when the backend closes, not at session_timeout (took %.1fs)" % took, took < 5, took)
    bs.stop()

with t.case("after a refusal at end of data, the next MAIL waits for the NOOP out, then goes"):
    kdir = t.tmpdir("keys")
    keys = os.path.join(kdir, "batv.keys")
    with open(keys, "w") as f:
        f.write("1 keepalive-test-secret\n")
    os.chmod(keys, 0o600)
    be = NoopBackend(t, noop_delay=2.0, drop_at_noop=False)
    bs = t.backstop({"backend": {"address": be.address, "keepalive": "1s", "xclient": "off"},
                     "limits": {"session_timeout": "60s"},
                     "batv": {"mode": "enforce", "domains": "example.org", "keys_file": keys,
                              "sign_key": "1", "refuse_at": "content"},
                     "bounce": {"mode": "enforce"}})
    c = bs.client(timeout=30)
    c.ehlo()
    t.check_reply("MAIL FROM:<>", c.cmd("MAIL FROM:<>"), 250)
    t.check_reply("RCPT (untagged)", c.cmd("RCPT TO:<user@example.org>"), 250)
    t.check_reply("DATA", c.cmd("DATA"), 354)
    c.send(b"From: MAILER-DAEMON@remote.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
           b"Auto-Submitted: auto-replied\r\n\r\nThis is the mail system. Your message could not be "
           b"delivered.\r\n")
    t.check("a keepalive NOOP went out during the upload", poll(lambda: be.noops >= 1, 5), be.noops)
    c.send(b".\r\n")
    t.check_reply("the forged bounce is refused at end of data", c.try_reply(20), 5)
    n = len(be.mails)
    t0 = time.monotonic()
    r = c.cmd("MAIL FROM:<sender@example.net>", timeout=20)
    took = time.monotonic() - t0
    t.check_reply("the next MAIL is answered 250", r, 250)
    t.check("within the NOOP's delay, not at session_timeout (took %.1fs)" % took, took < 5, took)
    t.check("and it reached the backend", poll(lambda: len(be.mails) > n, 3), be.mails)
    c.cmd("QUIT")
    bs.stop()

t.done()

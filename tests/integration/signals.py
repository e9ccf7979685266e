#!/usr/bin/python3
"""signals: SIGTERM stops accepting, lets sessions finish within drain_time
(then 421), and exits 0; SIGHUP reloads the config for new sessions, keeps
running sessions on the config they started with, and keeps the old config
(logging why) when the new one is invalid."""
import signal
import socket
import re
import time
from harness import *

t = Test("signals", need=("smtp-sink",))
sink = t.sink()


def can_connect(bs):
    """True if a new connection is greeted with 220."""
    try:
        c = SmtpClient(bs.host, bs.port, 2)
    except OSError:
        return False
    try:
        r = c.reply(2)
        return r.code == 220
    except (Closed, OSError):
        return False
    finally:
        c.close()


with t.case("SIGTERM drains a session mid-transaction"):
    bs = t.backstop({"backend": {"address": sink.address}, "server": {"drain_time": "5s"}})
    n0 = len(sink.files())
    c = bs.client()
    c.ehlo()
    t.check_reply("MAIL", c.cmd("MAIL FROM:<a@example.org>"), 250)
    t.check_reply("RCPT", c.cmd("RCPT TO:<b@example.org>"), 250)
    t0 = time.monotonic()
    bs.signal(signal.SIGTERM)
    time.sleep(0.3)
    t.check("new connections refused while draining", not can_connect(bs))
    t.check("backstop still running while the session lasts", bs.running())
    # a SIGHUP now would reopen the backend pool and probe the backend
    bs.signal(signal.SIGHUP)
    t.check("SIGHUP while draining: the reload is ignored, and says so",
            bs.wait_log(r"reload: ignored while shutting down \(1 session\(s\) draining\)", 3)
            and not re.search(r"reload: configuration .* loaded", bs.log()), bs.log()[-1500:])
    t.check_reply("DATA 354 during drain", c.cmd("DATA"), 354)
    c.send(dot_stuff(make_message("drained")) + b".\r\n")
    t.check_reply("message accepted during drain", c.reply(), 250)
    t.check("the backend got it", len(sink.wait_for(n0 + 1)) == n0 + 1)
    r = c.cmd("QUIT")
    rc = bs.wait_exit(3)
    dt = time.monotonic() - t0
    t.check("exits 0 once the last session ended (before drain_time)", rc == 0 and dt < 4.5, (rc, dt))
    bs.check_sanitizers()

with t.case("SIGTERM: drain_time expires -> 421 and exit"):
    bs = t.backstop({"backend": {"address": sink.address}, "server": {"drain_time": "1s"}})
    c = bs.client()
    c.ehlo()
    t0 = time.monotonic()
    bs.signal(signal.SIGTERM)
    r = c.try_reply(4)
    dt = time.monotonic() - t0
    t.check_reply("idle session gets 421 at the end of drain_time", r, 421, "")
    t.check("after about 1s (%.1fs)" % dt, 0.8 <= dt <= 2.5, dt)
    t.check("connection closed", c.eof or c.closed_within(2))
    rc = bs.wait_exit(3)
    t.check("exits 0", rc == 0, rc)
    bs.check_sanitizers()

class SlowDotBackend(ThreadedServer):
    """A backend that takes DOT_DELAY seconds to answer the final dot, and
    counts the messages it accepted."""
    DOT_DELAY = 2.0

    def __init__(self):
        ThreadedServer.__init__(self, t)
        self.accepted = 0

    def session(self, c):
        c.sendall(b"220 slow.example ESMTP\r\n")
        smtp_dialogue(c, "slow.example", self.message)

    def message(self, lines):
        time.sleep(self.DOT_DELAY)
        self.accepted += 1
        return b"250 2.0.0 Ok: queued as SLOW%d\r\n" % self.accepted


def sigterm_with_dot_at_backend(server, subject):
    """backstop (with these [server] keys) in front of a SlowDotBackend, a
    message whose final dot the backend has (it answers in 2 s), then
    SIGTERM: (backstop, client, backend, when the signal went)"""
    slow = SlowDotBackend()
    bs = t.backstop({"backend": {"address": slow.address, "xclient": "off", "pool_size": "0"},
                     "server": server})
    c = bs.client(timeout=10)
    c.ehlo()
    t.check_reply("MAIL", c.cmd("MAIL FROM:<a@example.org>"), 250)
    t.check_reply("RCPT", c.cmd("RCPT TO:<b@example.org>"), 250)
    t.check_reply("DATA", c.cmd("DATA"), 354)
    c.send(dot_stuff(make_message(subject)) + b".\r\n")
    time.sleep(0.2)   # the dot is at the backend
    t0 = time.monotonic()
    bs.signal(signal.SIGTERM)
    return bs, c, slow, t0


with t.case("drain_time over while the backend has the final dot: the client gets its reply, not 421"):
    # a 421 while the backend queues the message makes the client send it
    # again: a duplicate (invariant 1)
    bs, c, slow, t0 = sigterm_with_dot_at_backend({"drain_time": "500ms"}, "slow dot")
    r = c.reply(timeout=8)
    dt = time.monotonic() - t0
    t.check_reply("the backend's 250 reaches the client after drain_time", r, 250, "2.0.0")
    t.check("when the backend answered (%.1fs)" % dt, 1.2 <= dt <= 4.0, dt)
    t.check("the backend accepted it once", slow.accepted == 1, slow.accepted)
    r2 = c.try_reply(3)
    t.check("then 421 and the connection closed",
            (r2 is not None and r2.code == 421) or c.eof or c.closed_within(2), r2)
    t.check("the log says it waited", bs.wait_log(r"1 session\(s\) whose message is at the backend wait"),
            bs.log()[-2000:])
    rc = bs.wait_exit(5)
    t.check("exits 0", rc == 0, rc)
    bs.check_sanitizers()

with t.case("[server] drain_reply_grace bounds that wait"):
    bs, c, slow, t0 = sigterm_with_dot_at_backend({"drain_time": "500ms", "drain_reply_grace": "500ms"},
                                                  "slow dot, short grace")
    r = c.try_reply(8)
    dt = time.monotonic() - t0
    t.check("421 when the grace is over, before the backend answered (%.1fs): %s" % (dt, r),
            r is not None and r.code == 421 and 0.8 <= dt <= 1.8, (dt, r))
    t.check("the log names the key", bs.wait_log(r"wait up to 500ms for its reply \(\[server\] drain_reply_grace\)"),
            bs.log()[-2000:])
    rc = bs.wait_exit(5)
    t.check("exits 0", rc == 0, rc)
    bs.check_sanitizers()

with t.case("SIGTERM with no sessions exits at once"):
    bs = t.backstop({"backend": {"address": sink.address}, "server": {"drain_time": "10s"}})
    t0 = time.monotonic()
    bs.signal(signal.SIGTERM)
    rc = bs.wait_exit(5)
    t.check("exits 0 within 1s", rc == 0 and time.monotonic() - t0 < 1.0, (rc, time.monotonic() - t0))

with t.case("SIGHUP reload"):
    bs = t.backstop({"backend": {"address": sink.address},
                     "server": {"banner": "first banner"}, "limits": {"max_recipients": "2"}})
    old = bs.client()
    t.check("old banner", "first banner" in old.greeting_reply.text, old.greeting_reply)
    old.ehlo()
    bs.sections["server"]["banner"] = "second banner"
    bs.sections["limits"]["max_recipients"] = "4"
    bs.write_config()
    bs.mark()
    bs.signal(signal.SIGHUP)
    t.check("reload logged", bs.wait_log(r"(?i)reload", 3), bs.log(True))
    time.sleep(0.2)
    new = bs.client()
    t.check("new session gets the new banner", "second banner" in new.greeting_reply.text,
            new.greeting_reply)
    new.ehlo()
    new.cmd("MAIL FROM:<a@example.org>")
    codes = [new.cmd("RCPT TO:<u%d@example.org>" % i).code for i in range(5)]
    t.check("new session: max_recipients 4 applies", codes == [250, 250, 250, 250, 452], codes)
    old.cmd("MAIL FROM:<a@example.org>")
    codes = [old.cmd("RCPT TO:<u%d@example.org>" % i).code for i in range(3)]
    t.check("old session keeps the config it started with (max_recipients 2)",
            codes == [250, 250, 452], codes)
    old.cmd("QUIT")
    new.cmd("QUIT")

    # invalid config: kept the old one, logged why
    bs.write_config(text=ini_text(bs.sections) + "\n[server]\nno_such_key = 1\n")
    bs.mark()
    bs.signal(signal.SIGHUP)
    m = bs.wait_log(r"no_such_key", 3)
    t.check("invalid config: the error is logged", m, bs.log(True))
    t.check("invalid config: logged with file:line",
            bs.wait_log(r"backstop\.ini:\d+:", 1), bs.log(True))
    time.sleep(0.2)
    t.check("invalid config: still running", bs.running())
    c = bs.client()
    t.check("invalid config: the previous config stays (second banner)",
            "second banner" in c.greeting_reply.text, c.greeting_reply)
    c.cmd("QUIT")

    # a later valid config is picked up again
    bs.sections["server"]["banner"] = "third banner"
    bs.write_config()
    bs.mark()
    bs.signal(signal.SIGHUP)
    bs.wait_log(r"(?i)reload", 3)
    time.sleep(0.2)
    c = bs.client()
    t.check("valid config after an invalid one applies", "third banner" in c.greeting_reply.text,
            c.greeting_reply)
    c.cmd("QUIT")
    bs.stop()

t.done()

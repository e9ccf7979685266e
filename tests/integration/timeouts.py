#!/usr/bin/python3
"""timeouts: idle clients are timed out with 421 4.4.2 (before the first
command, between commands, inside DATA, and over the whole session); a
client that talks before the banner (greet_pause) is refused."""
import time
from harness import *

t = Test("timeouts", need=("smtp-sink",))
sink = t.sink()
bs = t.backstop({"backend": {"address": sink.address},
                 "limits": {"greeting_timeout": "1s", "command_timeout": "1s",
                            "data_timeout": "1s", "session_timeout": "3s"}})


def expect_timeout(name, c, lo, hi, t0):
    r = c.try_reply(hi + 2)
    dt = time.monotonic() - t0
    t.check_reply("%s: 421 4.4.2" % name, r, 421, "4.4.2")
    t.check("%s: after %.1fs (expected %.1f..%.1fs)" % (name, dt, lo, hi), lo - 0.2 <= dt <= hi + 1.0, dt)
    t.check("%s: connection closed" % name, c.closed_within(2))


with t.case("idle before the first command (greeting_timeout)"):
    c = bs.client()
    expect_timeout("no command", c, 1.0, 1.5, time.monotonic())

with t.case("idle after EHLO (command_timeout)"):
    c = bs.client()
    c.ehlo()
    expect_timeout("idle after EHLO", c, 1.0, 1.5, time.monotonic())

with t.case("idle inside a transaction"):
    c = bs.client()
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.org>")
    expect_timeout("idle after MAIL", c, 1.0, 1.5, time.monotonic())

with t.case("stalled DATA (data_timeout)"):
    n0 = len(sink.files())
    c = bs.client()
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.org>")
    t.check_reply("DATA 354", c.cmd("DATA"), 354)
    c.send(b"Subject: stalled\r\n\r\nsome text")
    expect_timeout("stalled DATA", c, 1.0, 1.5, time.monotonic())
    time.sleep(0.3)
    # smtp-sink may still be removing the dump of an earlier aborted
    # transaction: look for this message's content, not a file count
    def stalled_dumps():
        out = []
        for f in sink.files():
            try:
                if b"Subject: stalled" in open(f, "rb").read():
                    out.append(f)
            except OSError:
                pass
        return out
    t.check("no message at the backend", not stalled_dumps(), stalled_dumps())

with t.case("a command line dripped one byte at a time (a deadline per line)"):
    # each byte used to restart command_timeout: a line that never ends
    # held the session until session_timeout
    c = bs.client()
    c.ehlo()
    t0 = time.monotonic()
    r = None
    for ch in b"NOOP and some more words that never end":
        try:
            c.send(bytes([ch]))
        except OSError:
            break
        r = c.try_reply(0.3)
        if r is not None:
            break
    dt = time.monotonic() - t0
    t.check_reply("dripped line: 421 4.4.2", r, 421, "4.4.2")
    t.check("within command_timeout of the line's first byte (%.1fs)" % dt, 0.8 <= dt <= 2.0, dt)

with t.case("complete commands in a row are not a dripped line"):
    c = bs.client()
    c.ehlo()
    ok = True
    for i in range(5):
        c.send(b"NO")
        time.sleep(0.3)
        r = c.cmd("OP")   # the line completes within the deadline
        ok = ok and r.code == 250
    t.check("five NOOPs sent in two pieces 0.3 s apart: all 250", ok)

with t.case("session_timeout"):
    c = bs.client()
    t0 = time.monotonic()
    c.ehlo()
    r = None
    while time.monotonic() - t0 < 6:
        try:
            r = c.cmd("NOOP", timeout=2)
        except (Closed, OSError):
            r = None
            break
        if r.code != 250:
            break
        time.sleep(0.3)
    dt = time.monotonic() - t0
    t.check_reply("busy client past session_timeout gets 421", r, 421, "")
    t.check("after about 3s (%.1fs)" % dt, 2.8 <= dt <= 4.5, dt)

with t.case("DATA dripped slower than data_min_rate"):
    # data_timeout is an idle time: a line every 0.3 s used to hold the
    # session (and its backend connection) until session_timeout
    br = t.backstop({"backend": {"address": sink.address},
                     "limits": {"data_timeout": "1s", "data_min_rate": "100",
                                "session_timeout": "60s"}})
    c = br.client()
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.org>")
    t.check_reply("DATA 354", c.cmd("DATA"), 354)
    t0 = time.monotonic()
    r = None
    c.send(b"Subject: dripped\r\n\r\n")
    while time.monotonic() - t0 < 8:
        try:
            c.send(b"x\r\n")    # 10 bytes/s, below 100
        except OSError:
            break
        r = c.try_reply(0.3)
        if r is not None:
            break
    dt = time.monotonic() - t0
    t.check_reply("dripped DATA: 421 4.4.2", r, 421, "4.4.2")
    # due: data_timeout (1 s) + about 40 bytes at 100 bytes/s
    t.check("cut after about 1.4 s (%.1fs)" % dt, 1.0 <= dt <= 2.5, dt)
    t.check("logged, naming data_min_rate",
            br.wait_log(r"timeout after DATA .* slower than data_min_rate \(100 bytes/s", 2), br.log()[-800:])
    time.sleep(0.3)
    t.check("no dripped message at the backend",
            not [f for f in sink.files() if b"Subject: dripped" in open(f, "rb").read()])

    # a sender above the rate may take longer than data_timeout in all
    c = br.client()
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.org>")
    t.check_reply("DATA 354", c.cmd("DATA"), 354)
    t0 = time.monotonic()
    c.send(b"Subject: steady\r\n\r\n")
    while time.monotonic() - t0 < 2.5:
        c.send(b"y" * 78 + b"\r\n" + b"z" * 78 + b"\r\n")   # about 530 bytes/s
        time.sleep(0.3)
    t.check_reply("steady sender for 2.5 s (data_timeout 1 s): 250", c.cmd("."), 250)
    br.stop()

with t.case("pregreet (greet_pause = 1s)"):
    bp = t.backstop({"backend": {"address": sink.address}, "server": {"greet_pause": "1s"}})
    # well-behaved client: waits for the banner
    t0 = time.monotonic()
    c = bp.client()
    dt = time.monotonic() - t0
    t.check("banner delayed by about 1s (%.2fs)" % dt, 0.9 <= dt <= 2.0, dt)
    t.check_reply("patient client: EHLO accepted", c.ehlo(), 250)
    c.cmd("QUIT")
    # impatient client: talks first
    c = bp.client(greet=False)
    c.send("EHLO %s\r\n" % CLIENT_HELO)
    rs = []
    while True:
        r = c.try_reply(4)
        if r is None:
            break
        rs.append(r)
    t.check("pregreet: no 250 to the early EHLO", not any(r.code == 250 for r in rs), rs)
    t.check("pregreet: refused with 5xx or 421", any(r.code >= 500 or r.code == 421 for r in rs), rs)
    t.check("pregreet: connection closed", c.eof or c.closed_within(1))
    t.check("pregreet: logged", bp.wait_log(r"(?i)pregreet|before (the )?(banner|greeting)", 2), bp.log()[-1500:])
    # impatient even with a partial line, no CRLF
    c = bp.client(greet=False)
    c.send(b"EH")
    rs = []
    while True:
        r = c.try_reply(4)
        if r is None:
            break
        rs.append(r)
    t.check("pregreet (partial line): refused", rs and rs[-1].code != 220 and not any(r.code == 250 for r in rs), rs)
    bp.stop()

bs.stop()
t.done()

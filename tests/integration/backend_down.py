#!/usr/bin/python3
"""backend_down: when the backend is unreachable, silent, disconnects or
times out, the client gets 4xx (451 4.4.x or 421), never 250, so the sender
retries; backstop itself keeps serving."""
import time
from harness import *


CLOSED = Reply(0, ["(connection closed without a reply)"], b"(closed)")
TIMEOUT = Reply(0, ["(no reply within 10s)"], b"(timeout)")


def transaction(c):
    """Run MAIL/RCPT/DATA/message; return the replies up to the first non
    2xx/3xx one (or all of them). A close or a timeout ends the list with
    CLOSED or TIMEOUT."""
    out = []
    try:
        for line in ("MAIL FROM:<sender@example.org>", "RCPT TO:<user@example.org>", "DATA"):
            r = c.cmd(line, timeout=10)
            out.append(r)
            if r.code >= 400:
                return out
        c.send(dot_stuff(make_message("down")) + b".\r\n")
        out.append(c.reply(timeout=10))
    except (Closed, OSError) as e:
        out.append(TIMEOUT if isinstance(e, TimeoutError) else CLOSED)
    return out


def judge(name, rs):
    last = rs[-1]
    t.check("%s: never 250 for the message" % name, not (len(rs) == 4 and last.code == 250), rs)
    t.check("%s: refusal is 4xx" % name, 400 <= last.code < 500, rs)
    t.check("%s: 451 4.4.x or 421" % name,
            (last.code == 451 and (last.esc or "").startswith("4.4.")) or last.code == 421, last)


t = Test("backend_down", need=("smtp-sink",))

with t.case("backend port refuses connections"):
    port = dead_port()
    b = t.backstop({"backend": {"address": "127.0.0.1:%d" % port}})
    c = b.client()
    c.ehlo()
    judge("connection refused", transaction(c))
    c.close()
    c = b.client()  # backstop still serves
    t.check_reply("backstop still answers EHLO", c.ehlo(), 250)
    c.cmd("QUIT")
    b.stop()

with t.case("backend accepts but never greets"):
    silent = SilentServer()
    t.defer(silent.close)
    b = t.backstop({"backend": {"address": silent.address, "connect_timeout": "1s",
                                "command_timeout": "1s"}})
    c = b.client()
    c.ehlo()
    t0 = time.monotonic()
    judge("silent backend", transaction(c))
    t.check("silent backend: answered within 5s", time.monotonic() - t0 < 5, time.monotonic() - t0)
    b.stop()

with t.case("backend disconnects at end of data"):
    sink = t.sink("-q", ".")
    b = t.backstop({"backend": {"address": sink.address}})
    c = b.client()
    c.ehlo()
    rs = transaction(c)
    judge("disconnect at '.'", rs)
    t.check("disconnect at '.': MAIL/RCPT/DATA were accepted", [r.code for r in rs[:3]] == [250, 250, 354], rs)
    # the session can go on: a new transaction needs a new backend connection
    try:
        r = c.cmd("RSET", timeout=5)
    except (Closed, OSError):
        r = CLOSED
    t.check("session usable after the backend dropped (RSET 250, or 421 and close)",
            r.code == 250 or r.code == 421, r)
    b.stop()

with t.case("backend sends 421 at DATA"):
    sink = t.sink("-Q", "DATA")
    b = t.backstop({"backend": {"address": sink.address}})
    c = b.client()
    c.ehlo()
    judge("421 at DATA", transaction(c))
    b.stop()

with t.case("backend too slow at end of data (data_timeout)"):
    sink = t.sink("-W", ".:4")
    b = t.backstop({"backend": {"address": sink.address, "data_timeout": "1s"}})
    c = b.client()
    c.ehlo()
    t0 = time.monotonic()
    judge("slow '.'", transaction(c))
    t.check("slow '.': answered before the backend (within 3.5s)", time.monotonic() - t0 < 3.5,
            time.monotonic() - t0)
    b.stop()

with t.case("backend stops between transactions"):
    sink = t.sink()
    b = t.backstop({"backend": {"address": sink.address}})
    c = b.client()
    c.ehlo()
    rs = transaction(c)
    t.check_reply("first message accepted", rs[-1], 250)
    sink.stop()
    time.sleep(0.2)
    judge("backend gone", transaction(c))
    b.stop()

t.done()

#!/usr/bin/python3
"""conn_limits: max_connections_per_ip holds (421 4.7.0 for the N+1th
connection from one address, while other addresses still get in), and
max_connections holds overall; slots are released when sessions end."""
import time
from harness import *

t = Test("conn_limits", need=("smtp-sink",))
sink = t.sink()


def attempt(bs, source):
    """Connect from source; returns ('ok', client) on a 220, or (reply or
    'closed', None)."""
    c = SmtpClient(bs.host, bs.port, 3, source=(source, 0))
    t.defer(c.close)
    try:
        r = c.reply(3)
    except (Closed, OSError):
        return "closed", None
    if r.code == 220:
        return "ok", c
    return r, c


with t.case("max_connections_per_ip = 3"):
    bs = t.backstop({"backend": {"address": sink.address},
                     "limits": {"max_connections_per_ip": "3", "max_connections": "100"}})
    held = []
    for i in range(3):
        st, c = attempt(bs, "127.0.0.1")
        t.check("connection %d from 127.0.0.1 greeted" % (i + 1), st == "ok", st)
        held.append(c)
    st, c = attempt(bs, "127.0.0.1")
    t.check("4th connection from 127.0.0.1: 421 4.7.0",
            isinstance(st, Reply) and st.code == 421 and st.esc == "4.7.0", st)
    t.check("4th connection closed", c is None or c.closed_within(2))
    st, c2 = attempt(bs, "127.0.0.2")
    t.check("another address (127.0.0.2) still greeted", st == "ok", st)
    if c2:
        c2.cmd("QUIT")
    # release one slot
    held[0].cmd("QUIT")
    held[0].closed_within(2)
    ok = poll(lambda: attempt(bs, "127.0.0.1")[0] == "ok", 2, 0.2)
    t.check("after one QUIT, 127.0.0.1 gets in again", ok)
    # existing sessions still work
    t.check_reply("held session still served", held[1].ehlo(), 250)
    t.check("limit logged", bs.wait_log(r"(?i)(too many|limit)", 1), bs.log()[-1500:])
    for c in held:
        c.close()
    bs.stop()

with t.case("max_connections = 4"):
    bs = t.backstop({"backend": {"address": sink.address},
                     "limits": {"max_connections_per_ip": "100", "max_connections": "4"}})
    held = []
    for i in range(4):
        st, c = attempt(bs, "127.0.0.%d" % (10 + i))
        t.check("connection %d greeted" % (i + 1), st == "ok", st)
        held.append(c)
    st, c = attempt(bs, "127.0.0.20")
    t.check("5th connection: 421 (or closed)",
            st == "closed" or (isinstance(st, Reply) and st.code == 421 and st.esc is not None), st)
    held[0].cmd("QUIT")
    held[0].close()
    ok = poll(lambda: attempt(bs, "127.0.0.21")[0] == "ok", 2, 0.2)
    t.check("after one QUIT, a new connection gets in", ok)
    t.check_reply("held session still served", held[1].ehlo(), 250)
    for c in held:
        c.close()
    bs.stop()

t.done()

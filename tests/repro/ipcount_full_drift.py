#!/usr/bin/python3
"""review14 reproduction: the workers' shared per-IP table, once full, leaves
a connection uncounted, and that connection's close later takes off a count
that another connection of the same address added: the address ends with
fewer counted connections than it holds, past max_connections_per_ip.
Needs a backstop built with -DWORKERS_IPCOUNT_CAPACITY=8
-DWORKERS_IPCOUNT_CAPACITY_MAX=8 (a 64-slot table, full at 32 keys; the table
is otherwise sized so the config cannot fill it); set BACKSTOP_BUILDDIR to
that build. Run by hand: not part of the suite."""
import time
from harness import *

t = Test("ipcount_full_drift", need=("smtp-sink",), watchdog=60)
sink = t.sink()
bs = t.backstop({"backend": {"address": sink.address},
                 "server": {"workers": "2"},
                 "limits": {"max_connections_per_ip": "2", "max_connections_per_net": "0"}})
time.sleep(1.5)
X = "127.0.100.1"

def conn(addr):
    c = bs.client(source=(addr, 0), greet=False)
    t.defer(c.close)
    c.greeting_reply = c.greeting()
    return c

def accepted(c):
    return c.greeting_reply is not None and c.greeting_reply.code == 220

def quit(cs):
    for c in cs:
        try:
            c.cmd("QUIT")
        except Exception:
            pass
        c.close()
    time.sleep(0.5)

with t.case("a full table: uncounted connections later uncount counted ones"):
    fill = [conn("127.0.%d.1" % n) for n in range(1, 17)]   # 16 ip + 16 net keys
    t.check("fillers accepted", all(accepted(c) for c in fill), [c.greeting_reply for c in fill])
    bs.wait_log(r"shared per-IP connection table is full", 3)
    un = [conn(X) for _ in range(8)]
    t.check("table full: 8 connections from X accepted over max_connections_per_ip = 2 (not counted)",
            all(accepted(c) for c in un), [c.greeting_reply for c in un])
    quit(fill)
    counted = [conn(X) for _ in range(2)]
    t.check("two counted connections from X accepted", all(accepted(c) for c in counted))
    quit(un)   # never counted, yet each close takes one off X's count
    more = [conn(X) for _ in range(3)]
    ok = [accepted(c) for c in more]
    t.check("X holds 2 counted connections: a third one is refused (max_connections_per_ip = 2)",
            ok == [False, False, False], "accepted: %s (X now holds %d)" % (ok, 2 + sum(ok)))
    quit(counted + more)
t.done()

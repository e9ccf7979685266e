#!/usr/bin/python3
"""spf_bench: messages per second through backstop with SPF on (enforce,
answers cached by the resolver) and SPF off, in the same run, against the
same Postfix, from a client in a network namespace. Prints the figures
(a measurement, run by hand: not part of make check):
  cd build && BACKSTOP_BIN=$PWD/backstop PYTHONPATH=../tests/lib /usr/bin/python3 ../tests/bench/spf_bench.py"""
import subprocess
import threading
from harness import *

CONNS = 4
PER_CONN = 50


def dns_server(t, *extra):
    zone = os.path.join(srcdir(), "tests", "data", "dns", "spf.zone")
    return t.dns_server(*extra, zone)


t = Test("spf_bench", need=("postfix", "ip"), watchdog=300)
dport = dns_server(t)
pf = t.postfix()
ns = t.netns()


def run(mode):
    port = free_port(ns.host_addr)
    bs = t.backstop({"backend": {"address": pf.address},
                     "server": {"listen": "%s:%d" % (ns.host_addr, port)},
                     "log": {"level": "info"},
                     "limits": {"max_connections_per_ip": "100"},
                     "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "2s"},
                     "spf": {"mode": mode}})
    body = make_message("bench")
    bad = []

    def conn(k):
        c = ns.client(ns.host_addr, port, timeout=10)
        c.greeting()
        c.ehlo()
        for i in range(PER_CONN):
            r = c.mail_transaction("sender%d@sender.example.net" % i, ["user@test.example"], body)
            if r[-1].code != 250:
                bad.append(str(r[-1]))
        c.cmd("QUIT")
        c.close()

    conn(0)   # warm-up: fills the resolver's cache
    t0 = time.monotonic()
    th = [threading.Thread(target=conn, args=(k,)) for k in range(CONNS)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    dt = time.monotonic() - t0
    bs.stop()
    n = CONNS * PER_CONN
    t.check("%s: all %d messages accepted" % (mode, n), not bad, bad[:3])
    return n / dt


with t.case("throughput"):
    off1 = run("off")
    on1 = run("enforce")
    off2 = run("off")
    on2 = run("enforce")
    off, on = (off1 + off2) / 2, (on1 + on2) / 2
    log("# BENCH spf off: %.0f msg/s (%.0f, %.0f); spf on (cached): %.0f msg/s (%.0f, %.0f); "
        "ratio %.2f; %d connections x %d messages" % (off, off1, off2, on, on1, on2, on / off,
                                                     CONNS, PER_CONN))
    log("# target: SPF on keeps at least half the throughput: %s" % ("met" if on >= 0.5 * off else "MISSED"))

t.done()

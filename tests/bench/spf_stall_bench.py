#!/usr/bin/python3
"""spf_stall_bench: latency of ordinary transactions while 20 SPF checks of
one domain stall on a nameserver that answers after 6 s ([dns] timeout 3s),
against the same transactions without stalled checks (answers cached).
Prints median, p95 and max of each, BENCH_ROUNDS times (default 3). The
test tests/integration/spf_slow_dns.py checks the behaviour; this measures
it. Run by hand, as root (a client network namespace):
  cd build && BACKSTOP_BIN=$PWD/backstop PYTHONPATH=../tests/lib \\
      /usr/bin/python3 ../tests/bench/spf_stall_bench.py"""
import statistics
import threading
from harness import *

STALLED = 20
FAST = 100
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))

t = Test("spf_stall_bench", need=("postfix", "ip"), watchdog=120 + 40 * ROUNDS)
zone = os.path.join(srcdir(), "tests", "data", "dns", "spf.zone")
dport = t.dns_server(zone)
pf = t.postfix()
ns = t.netns()
port = free_port(ns.host_addr)
bs = t.backstop({"backend": {"address": pf.address},
                 "server": {"listen": "%s:%d" % (ns.host_addr, port)},
                 "log": {"level": "info"},   # start() waits for "listening on"
                 "limits": {"max_connections_per_ip": "200"},
                 "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "3s"},
                 "spf": {"mode": "enforce"}})
body = make_message("bench")


def transaction():
    t0 = time.monotonic()
    c = ns.client(ns.host_addr, port, timeout=10)
    try:
        c.greeting()
        c.ehlo()
        r = c.mail_transaction("sender@pass.example.org", ["user@test.example"], body)
        c.cmd("QUIT")
    finally:
        c.close()
    return time.monotonic() - t0, r[-1].code


def series(n):
    out = [transaction() for _ in range(n)]
    bad = [code for _, code in out if code != 250]
    return sorted(dt for dt, _ in out), bad


def figures(xs):
    return "median %.1f ms, p95 %.1f ms, max %.1f ms" % (
        statistics.median(xs) * 1000, xs[min(len(xs) - 1, int(0.95 * len(xs)))] * 1000, max(xs) * 1000)


def stall(k, rnd):
    c = ns.client(ns.host_addr, port, timeout=20)
    try:
        c.greeting()
        c.ehlo()
        c.cmd("MAIL FROM:<s%d-%d@stall.example.org>" % (rnd, k), timeout=20)
    finally:
        c.close()


transaction()   # fills the resolver's cache
ok = True
for rnd in range(ROUNDS):
    base, bad1 = series(FAST)
    threads = [threading.Thread(target=stall, args=(k, rnd)) for k in range(STALLED)]
    for th in threads:
        th.start()
    time.sleep(0.3)
    beside, bad2 = series(FAST)
    for th in threads:
        th.join()
    log("round %d: without stalled checks: %s" % (rnd + 1, figures(base)))
    log("round %d: beside %d stalled checks: %s" % (rnd + 1, STALLED, figures(beside)))
    ok = ok and not bad1 and not bad2
t.check("every measured transaction was accepted", ok)
bs.stop()
t.done()

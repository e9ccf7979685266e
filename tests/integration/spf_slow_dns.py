#!/usr/bin/python3
"""spf_slow_dns: while SPF checks wait on a nameserver that answers only
after 6 s ([dns] timeout 3s), other clients proceed at full speed. Clients
run in a network namespace (198.51.100.x); the DNS server is
tests/lib/dns_server.py with tests/data/dns/spf.zone (stall.example.org is
delayed 6 s). Also: the stalled checks end as 451 4.7.24 after about the
timeout, and the nameserver is not shunned afterwards."""
import statistics
import subprocess
import threading
from harness import *

STALLED = 20         # concurrent stalled checks of one domain: more than the
                     # libuv pool's 16 threads; spf.c runs 4 of a domain at once
FAST = 40            # full transactions measured beside them


def dns_server(t, *extra):
    zone = os.path.join(srcdir(), "tests", "data", "dns", "spf.zone")
    return t.dns_server(*extra, zone)


t = Test("spf_slow_dns", need=("postfix", "ip"))
dport = dns_server(t)
pf = t.postfix()
ns = t.netns()
port = free_port(ns.host_addr)
bs = t.backstop({"backend": {"address": pf.address},
                 "server": {"listen": "%s:%d" % (ns.host_addr, port)},
                 "limits": {"max_connections_per_ip": "100"},
                 "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "3s"},
                 "spf": {"mode": "enforce"}})


def transaction(i, sender="sender@pass.example.org"):
    """One full transaction on a new connection; returns (seconds, final reply)."""
    t0 = time.monotonic()
    c = ns.client(ns.host_addr, port, timeout=10)
    try:
        c.greeting()
        c.ehlo()
        r = c.mail_transaction(sender, ["user@test.example"], make_message("fast %d" % i))
        c.cmd("QUIT")
    finally:
        c.close()
    return time.monotonic() - t0, r[-1]


def timings(n):
    out = []
    for i in range(n):
        dt, r = transaction(i)
        out.append((dt, r))
    return out


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.95 * len(xs)))]


with t.case("baseline (answers cached)"):
    transaction(-1)      # fills the cache
    base = timings(FAST)
    t.check("baseline: all accepted", all(r.code == 250 for _, r in base), [str(r) for _, r in base][:3])
    base_s = [dt for dt, _ in base]
    log("# baseline: median %.1f ms, p95 %.1f ms" % (statistics.median(base_s) * 1000, p95(base_s) * 1000))

with t.case("%d checks stalled on the nameserver, %d other transactions meanwhile" % (STALLED, FAST)):
    stalled = [None] * STALLED

    def stall(k):
        c = ns.client(ns.host_addr, port, timeout=20)
        try:
            c.greeting()
            c.ehlo()
            t0 = time.monotonic()
            r = c.cmd("MAIL FROM:<sender%d@stall.example.org>" % k, timeout=20)
            stalled[k] = (time.monotonic() - t0, r, time.monotonic())
        finally:
            c.close()

    threads = [threading.Thread(target=stall, args=(k,)) for k in range(STALLED)]
    for th in threads:
        th.start()
    time.sleep(0.3)       # the stalled checks are waiting on DNS now
    fast = timings(FAST)
    fast_end = time.monotonic()
    for th in threads:
        th.join()
    fast_s = [dt for dt, _ in fast]
    log("# beside stalled checks: median %.1f ms, p95 %.1f ms, max %.1f ms" % (
        statistics.median(fast_s) * 1000, p95(fast_s) * 1000, max(fast_s) * 1000))
    t.check("all %d other transactions accepted" % FAST, all(r.code == 250 for _, r in fast),
            [str(r) for _, r in fast][:3])
    t.check("they all finished while the stalled checks still waited",
            all(s is not None and s[2] > fast_end for s in stalled), stalled)
    # Not waiting for the stalled checks means far under the 3 s DNS
    # timeout; how fast they are is measured by tests/bench/spf_stall_bench.py
    # (a benchmark: a shared 2-core machine cannot time milliseconds).
    t.check("none of them waited for DNS: slowest %.0f ms < 1500 ms (half the 3 s timeout)" % (
        max(fast_s) * 1000), max(fast_s) < 1.5)
    for k, s in enumerate(stalled):
        t.check("stalled %d: 451 4.7.24 within the check budget (%.2fs; 4 x timeout = 12s)" % (
            k, s[0] if s else -1),
            s is not None and s[1].code == 451 and s[1].esc == "4.7.24" and 2.7 < s[0] < 13.5,
            s and str(s[1]))
    waves = sorted(round(s[0] / 3.0) for s in stalled if s)
    t.check("at most 4 checks of the stalled domain ran at once (first wave of 4 at ~3 s)",
            waves.count(1) == 4, waves)

with t.case("the nameserver is not shunned after the timeouts"):
    after = timings(10)
    after_s = [dt for dt, _ in after]
    t.check("accepted", all(r.code == 250 for _, r in after))
    dt, r = transaction(0, "sender@softfail.example.org")   # a new name: a real query
    t.check("an uncached name answers at once (%.0f ms)" % (dt * 1000), r.code == 250 and dt < 1.0, r)

bs.stop()
t.done()

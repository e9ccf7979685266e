#!/usr/bin/python3
"""spf_hostile: hostile SPF and explanation records (tests/data/dns/
hostile.zone, shaped like the inputs behind libspf2's CVE-2021-20314,
-33912, -33913 and CVE-2023-42118, plus explanation records that smash the
stack of Debian 12's unpatched libspf2) reach backstop through its real
resolver, from a client in a network namespace. Run against a build with
--enable-sanitizers: backstop must answer every MAIL FROM with 250, 451 or
550, stay up, and exit cleanly with no sanitizer report."""
import subprocess
from harness import *


def dns_server(t, *zones):
    return t.dns_server(*zones)


t = Test("spf_hostile", need=("postfix", "ip"), watchdog=400)
data = os.path.join(srcdir(), "tests", "data", "dns")
dport = dns_server(t, os.path.join(data, "spf.zone"), os.path.join(data, "hostile.zone"))
with open(os.path.join(data, "hostile.names")) as f:
    names = [l.strip() for l in f if l.strip()]
pf = t.postfix()
ns = t.netns()
port = free_port(ns.host_addr)
bs = t.backstop({"backend": {"address": pf.address},
                 "server": {"listen": "%s:%d" % (ns.host_addr, port)},
                 "limits": {"max_errors": "1000", "max_connections_per_ip": "100"},
                 "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "1s"},
                 "spf": {"mode": "enforce", "permerror": "reject"}})
LOCALS = ["user", "a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p-q-r-s-t-u-v-w-x-y-z-0-1-2-3-4",
          "a.b+c=d_e.a.b+c=d_e.a.b+c=d_e.a.b+c=d_e.a.b+c=d_e.x"]

with t.case("every hostile record, three hostile local parts"):
    counts = {}
    bad = []
    c = None
    n = 0
    for name in names:
        for lp in LOCALS:
            if c is None:
                c = ns.client(ns.host_addr, port, timeout=10)
                c.greeting()
                c.ehlo(name if len(name) < 200 else CLIENT_HELO)
            try:
                r = c.cmd("MAIL FROM:<%s@%s>" % (lp, name), timeout=10)
            except Exception as e:      # noqa: BLE001 (any failure is recorded)
                bad.append("%s@%s: %s" % (lp, name, e))
                c = None
                continue
            n += 1
            counts[r.code] = counts.get(r.code, 0) + 1
            if r.code not in (250, 451, 550, 501, 553):
                bad.append("%s@%s: %s" % (lp, name, r))
            if r.code == 250:
                c.cmd("RSET")
            if b"\t" in r.raw or r.raw.count(b"\r\n") != len(r.lines):
                bad.append("unclean reply %r" % r.raw)
    log("# %d MAIL FROMs: %s" % (n, " ".join("%d x %d" % (v, k) for k, v in sorted(counts.items()))))
    t.check("every MAIL FROM answered 250/451/550 (or a syntax refusal)", not bad, bad[:5])
    t.check("backstop still running", bs.running())
    t.check("%d checks ran" % n, n >= 3 * len(names) - 5)

with t.case("the stack-smashing explanations are refused with backstop's own text"):
    c = ns.client(ns.host_addr, port)
    c.greeting()
    c.ehlo()
    for name in ("smash43", "smash19", "smashsp"):
        r = c.cmd("MAIL FROM:<u@%s.hostile.example.org>" % name)
        t.check_reply("%s: 550 5.7.23" % name, r, 550, "5.7.23")
        t.check("%s: default text, not the record" % name, "does not designate" in r.text, r.text)
    c.cmd("QUIT")

bs.stop()
t.done()

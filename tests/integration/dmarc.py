#!/usr/bin/python3
"""dmarc: DMARC (RFC 7489) end to end. A client in a network namespace
(198.51.100.x: libspf2 passes every loopback client, so SPF needs a real
address) sends messages made by tests/data/dmarc/make_dmarc.py (signed by
python3-dkim, fresh key each run) through backstop, which checks SPF and
DKIM in annotate mode and DMARC with the _dmarc records, SPF records and
DKIM keys served by tests/lib/dns_server.py from the generated zone, and
relays to a real Postfix.

Checked per fixture, in annotate and in enforce mode: the reply to end of
data (enforce: 550 5.7.1 naming the From domain and "reject", 451 4.7.1 for
a temporary failure under p=reject, quarantine accepted with an
X-Backstop-DMARC: quarantine field), and on the message the backend
delivers exactly one Authentication-Results field of ours carrying spf=,
one dkim= per signature and one dmarc=RESULT header.from=DOMAIN with
policy.dmarc= when a record was found. The backend keeps no copy of a
refused message. Also: the RFC 7489 6.6.3 lookups (organizational-domain
fallback, none after several records), malformed From: under
malformed_from = mark and reject, pct= with [dmarc] pct_seed, mode = off.

Expected results: make_dmarc.EXPECTED (one table); make_dmarc.py --verify,
run first, checks that table against an RFC 7489 reference model."""
import json
import re
import subprocess
import sys

from harness import *

HOST = BACKSTOP_HOSTNAME
DATA = os.path.join(srcdir(), "tests", "data", "dmarc")
DNS_TIMEOUT = "2s"

# This script sits beside tests/integration/dkim.py: without its own
# directory on the path, "import dkim" finds python3-dkim, not that script.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]

t = Test("dmarc", watchdog=300, need=("postfix", "ip"))
try:
    import dkim    # noqa: F401  (the fixtures' signer; /usr/bin/python3 sees it)
    import dnslib  # noqa: F401
except ImportError as e:
    # a missing fixture module is an error where the harness has error()
    getattr(t, "error", t.skip)("%s: install python3-dkim and python3-dnslib (tests/deps.sh)" % e)
if os.path.dirname(os.path.abspath(dkim.__file__)) == HERE:
    t.check("python3-dkim is the module imported, not tests/integration/dkim.py", False, dkim.__file__)
    t.done()
sys.path.insert(0, DATA)
sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import make_dmarc  # noqa: E402

EXPECTED = make_dmarc.EXPECTED
row = make_dmarc.row

# ------------------------------------------------------------------ fixtures

fixdir = t.tmpdir("fixtures")
gen = os.path.join(DATA, "make_dmarc.py")
r = subprocess.run(["/usr/bin/python3", gen, fixdir], stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, timeout=60)
log("# " + r.stdout.decode(errors="replace").strip())
if r.returncode != 0:
    t.check("make_dmarc.py made the fixtures", False, r.stdout.decode(errors="replace"))
    t.done()
with open(os.path.join(fixdir, "fixtures.json")) as f:
    FX = {fx["name"]: fx for fx in json.load(f)}
for fx in FX.values():
    with open(fx["file"], "rb") as f:
        fx["raw"] = f.read()

with t.case("the expectations agree with an RFC 7489 reference model (make_dmarc.py --verify)"):
    r = subprocess.run(["/usr/bin/python3", gen, "--verify", fixdir], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode(errors="replace")
    for line in out.splitlines():
        log("#   " + line)
    t.check("make_dmarc.py --verify: EXPECTED = the reference model's verdicts", r.returncode == 0, out[-2000:])

dnslog = os.path.join(fixdir, "dns-queries.log")
dport = t.dns_server("--log", dnslog, os.path.join(fixdir, "dmarc.zone"))
pf = t.postfix()
ns = t.netns()
log("# client %s -> backstop on %s; DNS on 127.0.0.1:%d; Postfix on %s"
    % (ns.addr, ns.host_addr, dport, pf.address))


def start(dmarc_cfg):
    port = free_port(ns.host_addr)
    cfg = {"mode": "annotate", "pct_seed": str(make_dmarc.PCT_SEED)}
    cfg.update(dmarc_cfg)
    bs = t.backstop({"backend": {"address": pf.address},
                     "server": {"listen": "%s:%d" % (ns.host_addr, port)},
                     "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": DNS_TIMEOUT},
                     "spf": {"mode": "annotate"},
                     "dkim": {"mode": "annotate"},
                     "dmarc": cfg})
    bs.port, bs.host = port, ns.host_addr
    return bs


def send(bs, name):
    """One transaction from the namespace: (end-of-data reply, QUIT reply)."""
    fx = FX[name]
    c = ns.client(bs.host, bs.port, timeout=15)
    t.defer(c.close)
    g = c.greeting()
    if g.code != 220:
        raise RuntimeError("%s: greeting %s" % (name, g))
    replies = [c.ehlo(), c.cmd("MAIL FROM:<%s>" % fx["mail_from"]),
               c.cmd("RCPT TO:<user@test.example>"), c.cmd("DATA")]
    if [x.code for x in replies] != [250, 250, 250, 354]:
        raise RuntimeError("%s: transaction refused before end of data: %s" % (name, replies))
    c.send(dot_stuff(fx["raw"]) + b".\r\n")
    eod = c.reply(timeout=15)
    try:
        q = c.cmd("QUIT", timeout=5)
    except (OSError, Closed, ValueError):
        q = None
    c.close()
    return eod, q


def order():
    """Fixture names: the pct ones first (their draws are the first of a
    fresh backstop), then the table's order."""
    return list(make_dmarc.PCT_ORDER) + [n for n in EXPECTED if n not in make_dmarc.PCT_ORDER]


def delivered(name, timeout=5.0):
    return delivered_by_id(pf, FX[name]["message_id"], timeout)


def check_headers(name, m, dmarc_on=True, quarantine=False):
    """The delivered copy: one A-R of ours with spf=, dkim= per signature
    and the dmarc= clause of the table; X-Backstop-DMARC iff quarantine."""
    r = row(name)
    ars = our_ar(m)
    if not t.check("%s: exactly one Authentication-Results of %s" % (name, HOST), len(ars) == 1, ars):
        return
    ar = ars[0]
    spf = clauses(ar, "spf")
    want_spf = "temperror" if name == "spf-temperror-reject" else "pass"
    t.check("%s: spf=%s in the same field" % (name, want_spf),
            [s[0] for s in spf] == [want_spf], ar)
    dk = clauses(ar, "dkim")
    sigs = FX[name]["signatures"]
    if sigs:
        t.check("%s: dkim= %s" % (name, " ".join("%s(%s)" % (s["expect"], s["d"]) for s in sigs)),
                sorted((d[0], d[1].get("header.d")) for d in dk) ==
                sorted((s["expect"], s["d"]) for s in sigs), ar)
    else:
        t.check("%s: dkim=none" % name, [d[0] for d in dk] == ["none"], ar)
    dm = clauses(ar, "dmarc")
    xb = [unfold(v) for v in m.headers("X-Backstop-DMARC")]
    if not dmarc_on:
        t.check("%s: mode=off: no dmarc= clause" % name, not dm, ar)
        t.check("%s: mode=off: no X-Backstop-DMARC" % name, not xb, xb)
        return
    if not t.check("%s: exactly one dmarc= clause" % name, len(dm) == 1, ar):
        return
    res, props, comments = dm[0]
    want = "dmarc=%s" % r["dmarc"]
    hf = make_dmarc.header_from(name)
    want += " header.from=%s" % hf if hf else " (no header.from)"
    want += " policy.dmarc=%s" % r["policy"] if r["policy"] else " (no policy.dmarc)"
    t.check("%s: %s" % (name, want),
            res == r["dmarc"] and props.get("header.from", "").lower() == (hf or "") and
            props.get("policy.dmarc") == r["policy"], ar)
    if make_dmarc.malformed(name):
        t.check("%s: permerror with a reason" % name,
                any(c.strip() for c in comments) or props.get("reason"), ar)
    if quarantine:
        t.check("%s: one X-Backstop-DMARC: quarantine naming %s" % (name, hf),
                len(xb) == 1 and xb[0].startswith("quarantine") and hf in xb[0].lower(), xb)
        hb = m.header_block()
        t.check("%s: X-Backstop-DMARC in the header block, above the message's own From:" % name,
                -1 < hb.find(b"X-Backstop-DMARC:") < hb.find(b"\nFrom:"), hb[:600])
    else:
        t.check("%s: no X-Backstop-DMARC" % name, not xb, xb)


def dns_log_mark():
    try:
        return os.path.getsize(dnslog)
    except OSError:
        return 0


def dmarc_queries(since=0):
    """_dmarc names asked since a log mark."""
    try:
        with open(dnslog) as f:
            f.seek(since)
            lines = f.read().splitlines()
    except OSError:
        return set()
    return {l.split()[0] for l in lines if l.startswith("_dmarc.")}


def enforce_want(name):
    """(code, esc, quarantine) in enforce mode with malformed_from = reject."""
    e = row(name)["enforce"]
    if e == "Q":
        return 250, None, True
    if isinstance(e, tuple):
        return e[0], e[1], False
    return e, None, False


# ------------------------------------------------------------------ cases

bs = None
with t.case("backstop starts with a [dmarc] section (mode, malformed_from, psl_file, pct_seed)"):
    bs = start({"malformed_from": "mark",
                "psl_file": "/usr/share/publicsuffix/public_suffix_list.dat"})
if bs is None:
    log("# backstop refused the [dmarc] configuration (no DMARC filter yet?): nothing else to test")
    t.done()
bs.stop()

with t.case("annotate: every message accepted, dmarc= as in the table, RFC 7489 6.6.3 lookups"):
    pf.clear_mail()
    pf.mark()
    bs = start({})
    asked = {}
    # the per-message lookup sets below assume the table's order: the
    # resolver caches, so a name is asked only the first time
    for name in order():
        mark = dns_log_mark()
        eod, q = send(bs, name)
        asked[name] = dmarc_queries(mark)
        t.check_reply("%s: annotate: 250 at end of data" % name, eod, 250)
        m = delivered(name)
        if t.check("%s: delivered" % name, m is not None):
            check_headers(name, m)
    # 6.6.3: the From domain, then its organizational domain, nothing between
    everything = dmarc_queries()
    t.check("sp-reject: _dmarc.a.b.subpolicy.org, then _dmarc.subpolicy.org",
            {"_dmarc.a.b.subpolicy.org.", "_dmarc.subpolicy.org."} <= asked["sp-reject"], asked["sp-reject"])
    t.check("no-record-sub: _dmarc.sub.norecord.org, then _dmarc.norecord.org",
            {"_dmarc.sub.norecord.org.", "_dmarc.norecord.org."} <= asked["no-record-sub"],
            asked["no-record-sub"])
    t.check("_dmarc.b.subpolicy.org never asked (RFC 7489 has no tree walk)",
            "_dmarc.b.subpolicy.org." not in everything, sorted(everything))
    t.check("two-records: no fallback to _dmarc.tworecords.org (6.6.3 step 5)",
            "_dmarc.tworecords.org." not in everything, sorted(everything))
    t.check("invalid-p: no fallback past an invalid record", not any(
        q != "_dmarc.badp.org." for q in asked["invalid-p"]), asked["invalid-p"])
    for name in EXPECTED:
        if make_dmarc.malformed(name):
            t.check("%s: no _dmarc lookup for a malformed From:" % name, not asked[name], asked[name])
    t.check("annotate: Postfix queued every message (%d)" % len(EXPECTED),
            pf.queued_count() == len(EXPECTED), pf.queued_count())
    bs.stop()

with t.case("enforce (malformed_from = reject): replies as in the table, no copy of a refused message"):
    pf.clear_mail()
    pf.mark()
    bs = start({"mode": "enforce", "malformed_from": "reject"})
    accepted = []
    for name in order():
        code, esc, quarantine = enforce_want(name)
        eod, q = send(bs, name)
        t.check_reply("%s: enforce: %d%s" % (name, code, " " + esc if esc else ""), eod, code, esc)
        hf = make_dmarc.header_from(name)
        if code == 550 and hf:
            t.check("%s: 550 text names %s and reject" % (name, hf),
                    hf in eod.text.lower() and "reject" in eod.text.lower(), eod.text)
        elif code == 550:
            t.check("%s: 550 text is about From:" % name, "from" in eod.text.lower(), eod.text)
        elif code == 451:
            t.check("%s: 451 text names %s" % (name, hf), hf in eod.text.lower(), eod.text)
        t.check_reply("%s: the session goes on after end of data (QUIT 221)" % name, q, 221)
        if eod is not None and eod.code == 250:
            accepted.append(name)
            m = delivered(name)
            if t.check("%s: delivered" % name, m is not None):
                check_headers(name, m, quarantine=quarantine)
    msgs = pf.settle(1.0)
    got_ids = sorted(mid for m in msgs for mid in m.headers("Message-ID"))
    want_ids = sorted(FX[n]["message_id"] for n in EXPECTED if enforce_want(n)[0] == 250)
    t.check("enforce: exactly the accepted messages were delivered (%d)" % len(want_ids),
            got_ids == want_ids, "delivered %s" % got_ids)
    t.check("enforce: Postfix queued only the accepted ones (qmgr saw %d)" % len(want_ids),
            pf.queued_count() == len(want_ids), pf.queued_count())
    t.check("enforce: Postfix's queue is empty", pf._queue_empty())
    bs.stop()

MALFORMED = [n for n in EXPECTED if make_dmarc.malformed(n)]

with t.case("enforce, malformed_from = mark: a malformed From: is accepted as dmarc=permerror"):
    pf.clear_mail()
    bs = start({"mode": "enforce", "malformed_from": "mark"})
    for name in MALFORMED:
        eod, q = send(bs, name)
        t.check_reply("%s: enforce + mark: 250" % name, eod, 250)
        m = delivered(name)
        if t.check("%s: delivered" % name, m is not None):
            check_headers(name, m)
    bs.stop()

with t.case("annotate, malformed_from = reject: reject applies in enforce mode only"):
    pf.clear_mail()
    bs = start({"mode": "annotate", "malformed_from": "reject"})
    for name in ("from-two-fields", "x-com-pin"):
        eod, q = send(bs, name)
        t.check_reply("%s: annotate + reject: 250" % name, eod, 250)
        m = delivered(name)
        if t.check("%s: delivered" % name, m is not None):
            check_headers(name, m)
    bs.stop()

with t.case("pct= draws follow [dmarc] pct_seed: the same fixture in and out of the sample"):
    # pct50.org: p=reject; pct=50, in the sample when draw < 50. backstop.ini:
    # pct_seed N > 0 "makes the draws N-1, N, N+1, ... (mod 100), one per
    # message". A fresh backstop with N = 50 draws 49 (in: 550), 50, 51 (out:
    # quarantined, 250); with N = 100 it draws 99 (out), then 0 (in).
    for seed, want in (("50", [550, 250, 250]), ("100", [250, 550])):
        pf.clear_mail()
        bs = start({"mode": "enforce", "pct_seed": seed})
        got = []
        for i in range(len(want)):
            eod, q = send(bs, "pct50-in")
            got.append(eod.code if eod else None)
        t.check("pct_seed %s: pct50.org fail -> %s" % (seed, ", ".join(map(str, want))),
                got == want, got)
        bs.stop()

with t.case("mode = off: no _dmarc lookup, no dmarc= clause, nothing refused"):
    pf.clear_mail()
    bs = start({"mode": "off", "malformed_from": "reject"})
    mark = dns_log_mark()
    for name in ("x-com-pin", "p-reject-fail", "from-two-fields"):
        eod, q = send(bs, name)
        t.check_reply("%s: off: 250" % name, eod, 250)
        m = delivered(name)
        if t.check("%s: delivered" % name, m is not None):
            check_headers(name, m, dmarc_on=False)
    t.check("off: no _dmarc lookup", not dmarc_queries(mark), dmarc_queries(mark))
    bs.stop()

t.done()

#!/usr/bin/python3
"""dkim: DKIM verification end to end. Messages signed by a real signer
(python3-dkim, tests/data/dkim/make_fixtures.py, fresh keys each run) go
through backstop, which fetches the keys from tests/lib/dns_server.py
(serving the generated zone) and relays to a real Postfix. Checked: the
reply to end of data, and on the message the backend delivers exactly one
Authentication-Results field of ours with one dkim= clause per signature
(result, header.d, header.s, header.b = first 8 characters of b=); the
delivered copy still verifies as the original did (the relay changed no
byte, dot-stuffed lines and a folded 1.4 KB header field included).
enforce with require_signed_by refuses at end of data (550 5.7.20, 451 4.7.5
for a key lookup that times out) and the backend keeps no copy; a key lookup
that stalls costs its own message [dkim] timeout and nobody else anything.

Expected results per fixture: make_fixtures.EXPECTED (one table)."""
import json
import re
import subprocess
import sys

from harness import *

HOST = BACKSTOP_HOSTNAME
FIXSRC = os.path.join(srcdir(), "tests", "data", "dkim")
DKIM_TIMEOUT = 2.0          # [dkim] timeout
SLOW_DELAY = 8              # the slow selector's answer comes after this
REQUIRED = "example.org"    # [dkim] require_signed_by in enforce mode

# This script is called dkim.py: without its own directory on the path,
# "import dkim" finds python3-dkim and not this script again.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]

t = Test("dkim", watchdog=300, need=("postfix",))
try:
    import dkim    # noqa: F401  (the fixtures' signer; /usr/bin/python3 sees it)
    import dnslib  # noqa: F401
except ImportError as e:
    t.error("%s: install python3-dkim and python3-dnslib (tests/deps.sh)" % e)
t.check("python3-dkim is the module imported, not this script",
        os.path.dirname(os.path.abspath(dkim.__file__)) != HERE, dkim.__file__)
sys.path.insert(0, FIXSRC)
sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import make_fixtures  # noqa: E402

fixdir = t.tmpdir("fixtures")
t0 = time.monotonic()
r = subprocess.run(["/usr/bin/python3", os.path.join(FIXSRC, "make_fixtures.py"), fixdir],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
log("# " + r.stdout.decode(errors="replace").strip())
if r.returncode != 0:
    t.check("make_fixtures.py made the fixtures", False, r.stdout.decode(errors="replace"))
    t.done()
with open(os.path.join(fixdir, "fixtures.json")) as f:
    FX = {fx["name"]: fx for fx in json.load(f)}
for fx in FX.values():
    with open(fx["file"], "rb") as f:
        fx["raw"] = f.read()

dnslog = os.path.join(fixdir, "dns-queries.log")
dport = t.dns_server("--log", dnslog, "--delay", "%s=%d" % (make_fixtures.SLOW_NAME, SLOW_DELAY),
                     os.path.join(fixdir, "dkim.zone"))
pf = t.postfix()
log("# DNS on 127.0.0.1:%d, Postfix on %s" % (dport, pf.address))


def start(dkim_cfg, spf="off"):
    cfg = {"mode": "annotate", "timeout": "%gs" % DKIM_TIMEOUT}
    cfg.update(dkim_cfg)
    # [dns] timeout above [dkim] timeout: the per-message deadline is what
    # ends the slow lookup, not the resolver's own give-up
    return t.backstop({"backend": {"address": pf.address},
                       "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "5s"},
                       "spf": {"mode": spf},
                       "dkim": cfg})


def begin(bs, fx):
    """Connect and send fx up to and including the final dot; returns the
    client (the end-of-data reply is not read yet)."""
    c = bs.client(timeout=15)
    t.check_reply("%s: EHLO" % fx["name"], c.ehlo(), 250)
    replies = [c.cmd("MAIL FROM:<sender@%s>" % fx["from_domain"]),
               c.cmd("RCPT TO:<user@test.example>"), c.cmd("DATA")]
    if [x.code for x in replies] != [250, 250, 354]:
        raise RuntimeError("%s: transaction refused before end of data: %s" % (fx["name"], replies))
    c.send(dot_stuff(fx["raw"]) + b".\r\n")
    return c


def send(bs, fx):
    """One transaction; returns (end-of-data reply, seconds it took)."""
    c = begin(bs, fx)
    t0 = time.monotonic()
    r = c.reply(timeout=15)
    took = time.monotonic() - t0
    c.cmd("QUIT")
    c.close()
    return r, took


def delivered(fx, timeout=5.0):
    return delivered_by_id(pf, fx["message_id"], timeout)


def crlf(raw):
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def check_delivered(fx, spf=False, off=False):
    """The delivered copy: one A-R of ours, one dkim= clause per signature
    as EXPECTED, and the copy verifies as the original did."""
    name = fx["name"]
    m = delivered(fx)
    if not t.check("%s: delivered" % name, m is not None):
        return None
    ars = our_ar(m)
    if off:
        t.check("%s: mode=off: no dkim= clause" % name,
                all(not clauses(a, "dkim") for a in ars), ars)
        return m
    if not t.check("%s: exactly one Authentication-Results of %s" % (name, HOST), len(ars) == 1, ars):
        return m
    ar = ars[0]
    got = clauses(ar, "dkim")
    sigs = fx["signatures"]
    if not sigs:
        t.check("%s: dkim=none" % name, [g[0] for g in got] == ["none"], ar)
    else:
        t.check("%s: one dkim= clause per signature (%d)" % (name, len(sigs)), len(got) == len(sigs), ar)
        for s in sigs:
            mine = [g for g in got if g[1].get("header.b") == s["b8"]]
            want = "dkim=%s header.d=%s header.s=%s header.b=%s" % (s["expect"], s["d"], s["s"], s["b8"])
            t.check("%s: %s" % (name, want),
                    len(mine) == 1 and mine[0][0] == s["expect"] and
                    mine[0][1].get("header.d") == s["d"] and mine[0][1].get("header.s") == s["s"],
                    "got %s" % ar)
    if spf:
        # a loopback client is not SPF-checked (Received-SPF: none, no A-R
        # claim); dmarc.py shows spf= and dkim= together from a namespace
        t.check("%s: loopback client: Received-SPF none, no spf= claim" % name,
                len(clauses(ar, "spf")) == 0 and
                any(h.startswith("none") for h in m.headers("Received-SPF")), ar)
    hb = m.header_block()
    t.check("%s: A-R prepended above the message's own header" % name,
            -1 < hb.find(b"Authentication-Results:") < hb.find(b"\nFrom:"), hb[:400])
    # The relay changed nothing the signatures cover: python3-dkim's verdict
    # on the delivered copy is the original's (skip the key that stalls).
    for i, s in enumerate(sigs):
        if s["s"] == "slow":
            continue
        res, why = make_fixtures.verify_one(crlf(m.raw), i, dport)
        t.check("%s: delivered copy, signature %s/%s still verifies as %s" % (name, s["d"], s["s"], s["expect"]),
                res == s["expect"], "python3-dkim says %s (%s)" % (res, why))
    return m


def dns_log_mark():
    try:
        return os.path.getsize(dnslog)
    except OSError:
        return 0


def dns_queries_since(mark, rx):
    """Distinct names matching rx asked (TXT) since mark."""
    try:
        with open(dnslog) as f:
            f.seek(mark)
            lines = f.read().splitlines()
    except OSError:
        return set()
    return {l.split()[0] for l in lines if re.match(rx, l)}


def enforce_expect(fx):
    """(code, esc) the client must get at end of data in enforce mode."""
    if fx["from_domain"] != REQUIRED:
        return 250, None
    own = [s["expect"] for s in fx["signatures"] if s["d"] == REQUIRED]
    if "pass" in own:
        return 250, None
    if "temperror" in own:
        return 451, "4.7.5"
    return 550, "5.7.20"


# ------------------------------------------------------------------ cases

bs = None
with t.case("backstop starts with a [dkim] section (mode, timeout, require_signed_by)"):
    bs = start({})
if bs is None:
    log("# backstop refused the [dkim] configuration (no DKIM filter?): nothing else to test")
    t.done()

with t.case("annotate: one dkim= clause per signature, with spf= in the same field"):
    bs.stop()
    pf.clear_mail()
    bs = start({}, spf="annotate")
    for name in make_fixtures.EXPECTED:
        if name in ("slow-key", "many-sigs"):
            continue
        fx = FX[name]
        r, took = send(bs, fx)
        t.check_reply("%s: 250 at end of data (annotate)" % name, r, 250)
        check_delivered(fx, spf=True)
    bs.stop()

with t.case("annotate: [dkim] max_signatures bounds key lookups (default 5, and 2)"):
    for limit in (None, 2):
        pf.clear_mail()
        bs = start({} if limit is None else {"max_signatures": str(limit)})
        n = 5 if limit is None else limit
        mark = dns_log_mark()
        fx = FX["many-sigs"]
        r, took = send(bs, fx)
        t.check_reply("many-sigs, max %d: 250" % n, r, 250)
        m = delivered(fx)
        ars = our_ar(m) if m else []
        got = clauses(ars[0], "dkim") if len(ars) == 1 else []
        asked = dns_queries_since(mark, r"m\d\._domainkey\.example\.org\. TXT")
        t.check("many-sigs, max %d: at most %d selectors looked up" % (n, n),
                1 <= len(asked) <= n, sorted(asked))
        t.check("many-sigs, max %d: at most %d signatures pass, at least one" % (n, n),
                1 <= sum(g[0] == "pass" for g in got) <= n, ars)
        bs.stop()

with t.case("annotate: a stalled key lookup is temperror after [dkim] timeout, others go on"):
    pf.clear_mail()
    bs = start({})
    slow = begin(bs, FX["slow-key"])
    t_slow = time.monotonic()
    fast_fx = FX["unsigned-net"]
    t1 = time.monotonic()
    r2, _ = send(bs, fast_fx)
    fast = time.monotonic() - t1
    early = slow.try_reply(0.01)
    t.check_reply("meanwhile: another session's message gets 250", r2, 250)
    t.check("meanwhile: its whole session took < 1s (%.2fs)" % fast, fast < 1.0, fast)
    t.check("meanwhile: the slow message was still waiting for its key", early is None, early)
    r1 = early or slow.try_reply(DKIM_TIMEOUT + 5)
    took = time.monotonic() - t_slow
    t.check_reply("slow-key: 250 at end of data (annotate)", r1, 250)
    t.check("slow-key: answered after about [dkim] timeout (%gs): %.2fs" % (DKIM_TIMEOUT, took),
            DKIM_TIMEOUT - 0.5 <= took <= DKIM_TIMEOUT + 2.5, took)
    check_delivered(FX["slow-key"])
    check_delivered(fast_fx)
    bs.stop()

with t.case("data_min_rate does not charge the client for the key lookup backstop waits on"):
    # headers, then the body only after the end-of-header check (the slow
    # key, [dkim] timeout) is over: the content is due data_timeout (1 s)
    # plus its size at data_min_rate after DATA, the wait not counted
    pf.clear_mail()
    bs = t.backstop({"backend": {"address": pf.address},
                     "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "5s"},
                     "spf": {"mode": "off"},
                     "dkim": {"mode": "annotate", "timeout": "%gs" % DKIM_TIMEOUT},
                     "limits": {"data_timeout": "1s", "data_min_rate": "1000000"}})
    fx = FX["slow-key"]
    c = bs.client(timeout=15)
    c.ehlo()
    replies = [c.cmd("MAIL FROM:<sender@%s>" % fx["from_domain"]),
               c.cmd("RCPT TO:<user@test.example>"), c.cmd("DATA")]
    t.check("slow-key: DATA 354", [x.code for x in replies] == [250, 250, 354], replies)
    wire = dot_stuff(fx["raw"])
    cut = wire.index(b"\r\n\r\n") + 4
    c.send(wire[:cut])
    time.sleep(DKIM_TIMEOUT + 0.5)   # the check ends after [dkim] timeout
    early = c.try_reply(0.01)
    t.check("nothing refused while backstop itself waited", early is None, early)
    c.send(wire[cut:] + b".\r\n")
    r = c.reply(timeout=15)
    t.check_reply("slow-key: 250 at end of data (the wait was backstop's)", r, 250)
    t.check("no 'slower than data_min_rate' in the log",
            bs.count_log(r"slower than data_min_rate") == 0, bs.log()[-1500:])
    c.cmd("QUIT")
    bs.stop()

with t.case("enforce, require_signed_by = %s: refusals at end of data, no copy kept" % REQUIRED):
    pf.clear_mail()
    pf.mark()
    bs = start({"mode": "enforce", "require_signed_by": REQUIRED})
    accepted = []
    for name in make_fixtures.EXPECTED:
        fx = FX[name]
        code, esc = enforce_expect(fx)
        r, took = send(bs, fx)
        t.check_reply("%s: enforce: %d%s" % (name, code, " " + esc if esc else ""), r, code, esc)
        if code == 250:
            accepted.append(fx)
        elif name == "slow-key":
            t.check("slow-key: enforce: 451 after about [dkim] timeout: %.2fs" % took,
                    DKIM_TIMEOUT - 0.5 <= took <= DKIM_TIMEOUT + 2.5, took)
    msgs = pf.settle(1.0)
    got_ids = sorted(mid for m in msgs for mid in m.headers("Message-ID"))
    t.check("enforce: exactly the accepted messages were delivered (%d)" % len(accepted),
            got_ids == sorted(fx["message_id"] for fx in accepted),
            "delivered %s" % got_ids)
    t.check("enforce: Postfix queued only the accepted ones (qmgr saw %d)" % len(accepted),
            pf.queued_count() == len(accepted), pf.queued_count())
    t.check("enforce: Postfix's queue is empty", pf._queue_empty())
    for fx in accepted:
        if fx["name"] in ("valid-relaxed", "unsigned-net"):
            check_delivered(fx)   # SPF off: the A-R still carries dkim=
    bs.stop()

with t.case("mode = off: no verification, no key lookups, no dkim= clause"):
    pf.clear_mail()
    bs = start({"mode": "off", "require_signed_by": REQUIRED})
    mark = dns_log_mark()
    for name in ("valid-relaxed", "body-changed", "unsigned"):
        r, _ = send(bs, FX[name])
        t.check_reply("%s: off: 250" % name, r, 250)
        check_delivered(FX[name], off=True)
    asked = dns_queries_since(mark, r"\S+\._domainkey\.")
    t.check("off: no key looked up", not asked, sorted(asked))
    bs.stop()

t.done()

#!/usr/bin/python3
"""
make_dmarc - DMARC test data: a zone, DKIM-signed messages, and the one
table of expected results for tests/integration/dmarc.py.

    /usr/bin/python3 tests/data/dmarc/make_dmarc.py OUTDIR
    /usr/bin/python3 tests/data/dmarc/make_dmarc.py --verify OUTDIR

The first form makes a fresh RSA 2048 key (tests/data/dkim/make_fixtures.py
makes and signs; python3-dkim is the signer), the zone OUTDIR/dmarc.zone for
tests/lib/dns_server.py (the _dmarc records, SPF records that pass the
namespace client 198.51.100.0/24, the DKIM keys, a SERVFAIL for one _dmarc
name and for one SPF name), and one message per fixture in
OUTDIR/msgs/NAME.eml (CRLF, not dot-stuffed), described in
OUTDIR/fixtures.json (name, MAIL FROM, Message-ID, file, signatures).

--verify checks EXPECTED independently of backstop and of its C code: it
serves the zone with tests/lib/dns_server.py, and for every fixture
computes the DMARC verdict with a small reference model written from RFC
7489 (From: parsed by Python's email package, SPF for the records this zone
uses, DKIM verified by python3-dkim over real DNS, organizational domains
from /usr/share/publicsuffix/public_suffix_list.dat by the PSL algorithm,
record discovery 6.6.3, alignment 3.1, pct 6.6.4), then compares with
EXPECTED. For fixtures without a fixed draw it evaluates draws 0 and 99:
their verdict must not depend on the draw. Exit 1 on any difference.
"""

import email
import email.policy
import json
import os
import random
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "data", "dkim"))
sys.dont_write_bytecode = True
import make_fixtures  # noqa: E402  (rsa_key, sign, signatures, verify_one)

CLIENT_NET = "198.51.100.0/24"   # every netns /30 the harness hands out
CLIENT_IP = "198.51.100.2"       # the one --verify assumes (in CLIENT_NET)
PSL_FILE = "/usr/share/publicsuffix/public_suffix_list.dat"
ATTACKER = "bounce@attacker.com"     # SPF pass, never aligned with a From below

# ------------------------------------------------------------------ EXPECTED
#
# The one table. Per fixture:
#   From      a domain (the field is "From: Name <local@domain>"), or a tuple
#             of raw From: lines (malformed cases; () = no From: at all)
#   MAIL FROM the envelope sender (SPF checked in [spf] mode = annotate)
#   sigs      DKIM signatures, top first: (d=, "pass") or (d=, "fail") = body
#             changed after signing
#   dmarc     the dmarc= result in the A-R field
#   policy    policy.dmarc= (the applied policy after pct) or None: absent
#   enforce   the end-of-data reply in [dmarc] mode = enforce (with
#             malformed_from = reject): 250, (550, "5.7.1"), (451, "4.7.1");
#             "Q" = 250 and the delivered copy carries X-Backstop-DMARC:
#             quarantine. Annotate mode always gets 250 and no X-Backstop-DMARC.
#   draw      the pct draw the message must get ([dmarc] pct_seed), or None
#             when the verdict does not depend on it (pct=100 or no record)
#
# Records (dmarc.zone below) and organizational domains (PSL: com, org and
# net are public suffixes, so org(D) = the last two labels of every D here):
#   example.net        p=reject                    relaxed
#   example.com        p=reject; adkim=s; aspf=s   strict
#   x.com              p=reject
#   policy-none.org    p=none / policy-quarantine.org p=quarantine /
#   policy-reject.org  p=reject (beside an unrelated TXT record)
#   norecord.org       no _dmarc record at all
#   subpolicy.org      p=none; sp=reject;  decoy _dmarc.b.subpolicy.org p=none
#   sub.tworecords.org two v=DMARC1 records; _dmarc.tworecords.org p=reject
#   badp.org           v=DMARC1; p=bogus          (no rua=)
#   badprua.org        v=DMARC1; p=bogus; rua=mailto:...
#   pct50.org          p=reject; pct=50
#   pct0q.org          p=quarantine; pct=0
#   servfail.org       _dmarc.servfail.org answers SERVFAIL
#   spftemp.org        p=reject; its SPF record answers SERVFAIL
#
# Alignment by hand (RFC 7489 3.1.1/3.1.2: strict = the same FQDN, relaxed =
# the same organizational domain; only a "pass" counts, 6.6.2 step 5; pass
# if SPF or one DKIM signature passes aligned):
#   From example.net   SPF mail.example.net pass  relaxed: org = example.net both -> aligned -> pass
#   From example.net   DKIM mail.example.net pass relaxed: aligned -> pass
#   From example.net   DKIM attacker.com pass + example.net FAIL: the aligned one failed,
#                      the passing one is not aligned -> fail
#   From example.net   DKIM attacker.com pass + example.net pass -> pass (one aligned pass suffices)
#   From x.com         SPF attacker.com pass, DKIM attacker.com pass: org(x.com)=x.com,
#                      org(attacker.com)=attacker.com, different -> fail (libopendmarc: false pass)
#   From example.com   SPF mail.example.com pass, aspf=s: example.com != mail.example.com -> fail
#                      (libopendmarc with the PSL: false pass)
#   From example.com   DKIM mail.example.com pass, adkim=s: not the same FQDN -> fail
#   From example.com   DKIM example.com pass, adkim=s: same FQDN -> pass
#   From example.com   SPF example.com pass, aspf=s: same FQDN -> pass
#   From a.b.subpolicy.org: no _dmarc.a.b.subpolicy.org -> _dmarc.<org> = _dmarc.subpolicy.org
#                      (6.6.3 step 3; not b.subpolicy.org); record at the org domain for a
#                      subdomain: sp= applies (6.3 "sp") = reject
#   From subpolicy.org itself: p= applies = none
#   From sub.tworecords.org: two v=DMARC1 records -> 6.6.3 step 5 "DMARC processing is not
#                      applied", no fallback (the set was not empty, step 3 does not run);
#                      filters/dmarc_eval.c reports that as permerror (RFC 8601 2.7.1 / 7489 11.2:
#                      a permanent error in DMARC evaluation). No policy.
#   From badp.org:     p=bogus, no rua -> step 6.2: no DMARC processing -> permerror, no policy
#   From badprua.org:  p=bogus, a valid rua -> step 6.1: as if p=none -> fail, policy none
#   pct50.org:         6.6.4: in the sample when draw < pct: draw 49 -> reject (550);
#                      draw 50 -> out of the sample: reject becomes quarantine
#   pct0q.org:         pct=0: never in the sample; quarantine becomes none
#   servfail.org:      the record lookup fails temporarily -> temperror; no record, no
#                      policy known -> enforce accepts (only a known reject policy defers)
#   spftemp.org:       the aligned SPF check is temperror, nothing passed -> temperror (6.6.2,
#                      last paragraph); p=reject -> enforce 451 4.7.1; nothing applied:
#                      policy.dmarc=none
#   Malformed From: (6.6.1: exactly one From: address; "Multiple RFC5322.From fields ... are
#                      typically rejected"): permerror without header.from and without
#                      policy; enforce + malformed_from = reject: 550 5.7.1; mark: 250.
MALFORMED_MAIL_FROM = "bounce@policy-reject.org"   # SPF pass, would align with the From
EXPECTED = {
    # name                    From                 MAIL FROM                     sigs                                            dmarc        policy        enforce         draw
    "relaxed-spf":           ("Example.NET",       "bounce@mail.example.net",    (),                                             "pass",      "none",       250,            None),
    "relaxed-dkim":          ("example.net",       ATTACKER,                     (("mail.example.net", "pass"),),                "pass",      "none",       250,            None),
    "dkim-aligned-broken":   ("example.net",       ATTACKER,                     (("attacker.com", "pass"), ("example.net", "fail")), "fail", "reject",     (550, "5.7.1"), None),
    "dkim-one-aligned-of-2": ("example.net",       ATTACKER,                     (("attacker.com", "pass"), ("example.net", "pass")), "pass", "none",       250,            None),
    "x-com-pin":             ("x.com",             ATTACKER,                     (("attacker.com", "pass"),),                    "fail",      "reject",     (550, "5.7.1"), None),
    "strict-spf-pin":        ("example.com",       "bounce@mail.example.com",    (),                                             "fail",      "reject",     (550, "5.7.1"), None),
    "strict-dkim-pin":       ("example.com",       ATTACKER,                     (("mail.example.com", "pass"),),                "fail",      "reject",     (550, "5.7.1"), None),
    "strict-dkim-exact":     ("example.com",       ATTACKER,                     (("example.com", "pass"),),                     "pass",      "none",       250,            None),
    "strict-spf-exact":      ("example.com",       "bounce@example.com",         (),                                             "pass",      "none",       250,            None),
    "p-none-pass":           ("policy-none.org",   "bounce@policy-none.org",     (),                                             "pass",      "none",       250,            None),
    "p-none-fail":           ("policy-none.org",   ATTACKER,                     (),                                             "fail",      "none",       250,            None),
    "p-quarantine-pass":     ("policy-quarantine.org", "bounce@mail.policy-quarantine.org", (),                                  "pass",      "none",       250,            None),
    "p-quarantine-fail":     ("policy-quarantine.org", ATTACKER,                 (),                                             "fail",      "quarantine", "Q",            None),
    "p-reject-pass":         ("policy-reject.org", "bounce@policy-reject.org",   (),                                             "pass",      "none",       250,            None),
    "p-reject-fail":         ("policy-reject.org", ATTACKER,                     (),                                             "fail",      "reject",     (550, "5.7.1"), None),
    "no-record-sub":         ("sub.norecord.org",  ATTACKER,                     (),                                             "none",      None,         250,            None),   # before no-record: the resolver caches
    "no-record":             ("norecord.org",      ATTACKER,                     (),                                             "none",      None,         250,            None),
    "sp-reject":             ("a.b.subpolicy.org", ATTACKER,                     (),                                             "fail",      "reject",     (550, "5.7.1"), None),
    "sp-pass":               ("a.b.subpolicy.org", "bounce@subpolicy.org",       (),                                             "pass",      "none",       250,            None),
    "sp-org-itself":         ("subpolicy.org",     ATTACKER,                     (),                                             "fail",      "none",       250,            None),
    "two-records":           ("sub.tworecords.org", ATTACKER,                    (),                                             "permerror", None,         250,            None),
    "invalid-p":             ("badp.org",          ATTACKER,                     (),                                             "permerror", None,         250,            None),
    "invalid-p-rua":         ("badprua.org",       ATTACKER,                     (),                                             "fail",      "none",       250,            None),
    "pct50-in":              ("pct50.org",         ATTACKER,                     (),                                             "fail",      "reject",     (550, "5.7.1"), 49),
    "pct50-out":             ("pct50.org",         ATTACKER,                     (),                                             "fail",      "quarantine", "Q",            50),
    "pct0-quarantine":       ("pct0q.org",         ATTACKER,                     (),                                             "fail",      "none",       250,            None),
    "dmarc-servfail":        ("servfail.org",      "bounce@servfail.org",        (),                                             "temperror", None,         250,            None),
    "spf-temperror-reject":  ("spftemp.org",       "bounce@spftemp.org",         (),                                             "temperror", "none",       (451, "4.7.1"), None),
    "from-missing":          ((),                  MALFORMED_MAIL_FROM,          (),                                             "permerror", None,         (550, "5.7.1"), None),
    "from-two-fields":       (("From: A <a@policy-reject.org>", "From: B <b@policy-reject.org>"),
                                                   MALFORMED_MAIL_FROM,          (),                                             "permerror", None,         (550, "5.7.1"), None),
    "from-two-addresses":    (("From: A <a@policy-reject.org>, B <b@policy-reject.org>",),
                                                   MALFORMED_MAIL_FROM,          (),                                             "permerror", None,         (550, "5.7.1"), None),
    "from-unparseable":      (("From: A <a@policy-reject.org",),
                                                   MALFORMED_MAIL_FROM,          (),                                             "permerror", None,         (550, "5.7.1"), None),
    "from-group":            (("From: undisclosed-recipients:;",),
                                                   MALFORMED_MAIL_FROM,          (),                                             "permerror", None,         (550, "5.7.1"), None),
}
# the pct fixtures, in the order a fresh backstop with [dmarc] pct_seed =
# PCT_SEED must see them first. backstop.ini: "N > 0 makes the draws N-1, N,
# N+1, ... (mod 100), one per message": the first message draws N-1.
PCT_SEED = 50
PCT_ORDER = ("pct50-in", "pct50-out")


def row(name):
    f, mf, sigs, res, pol, enf, draw = EXPECTED[name]
    return {"from": f, "mail_from": mf, "sigs": sigs, "dmarc": res, "policy": pol,
            "enforce": enf, "draw": draw}


def malformed(name):
    return not isinstance(row(name)["from"], str)


def header_from(name):
    f = row(name)["from"]
    return f.lower() if isinstance(f, str) else None


# ------------------------------------------------------------------ zone

SPF_PASS = '"v=spf1 ip4:%s -all"' % CLIENT_NET
DMARC_RECORDS = [
    ("example.net", ["v=DMARC1; p=reject"]),
    ("example.com", ["v=DMARC1; p=reject; adkim=s; aspf=s"]),
    ("x.com", ["v=DMARC1; p=reject"]),
    ("policy-none.org", ["v=DMARC1; p=none"]),
    ("policy-quarantine.org", ["v=DMARC1; p=quarantine"]),
    ("policy-reject.org", ["v=DMARC1; p=reject", "some unrelated text"]),
    ("subpolicy.org", ["v=DMARC1; p=none; sp=reject"]),
    ("b.subpolicy.org", ["v=DMARC1; p=none"]),      # decoy: RFC 7489 never asks here
    ("sub.tworecords.org", ["v=DMARC1; p=reject", "v=DMARC1; p=reject; pct=100"]),
    ("tworecords.org", ["v=DMARC1; p=reject"]),     # must not be the fallback
    ("badp.org", ["v=DMARC1; p=bogus"]),
    ("badprua.org", ["v=DMARC1; p=bogus; rua=mailto:dmarc@badprua.org"]),
    ("pct50.org", ["v=DMARC1; p=reject; pct=50"]),
    ("pct0q.org", ["v=DMARC1; p=quarantine; pct=0"]),
    ("spftemp.org", ["v=DMARC1; p=reject"]),
    ("servfail.org", ["v=DMARC1; p=reject"]),       # never seen: SERVFAIL below
]
ZONES = ["example.net", "example.com", "x.com", "attacker.com", "policy-none.org",
         "policy-quarantine.org", "policy-reject.org", "norecord.org", "subpolicy.org",
         "tworecords.org", "badp.org", "badprua.org", "pct50.org", "pct0q.org",
         "servfail.org", "spftemp.org", "example.org"]
DKIM_DOMAINS = ["example.net", "mail.example.net", "example.com", "mail.example.com",
                "attacker.com"]
SELECTOR = "sel"


def zone_text(pub):
    z = ["; DMARC test zone for tests/lib/dns_server.py, made by make_dmarc.py",
         "; (fresh DKIM key on every run). SPF passes the namespace client %s." % CLIENT_NET]
    for d in ZONES:
        z.append("%s. 60 IN SOA ns.example.org. hostmaster.example.org. 1 60 60 600 30" % d)
    z.append("ns.example.org. 60 IN A 127.0.0.1")
    z.append("; the client's HELO name")
    z.append("client.example.org. 60 IN A %s" % CLIENT_IP)
    z.append("client.example.org. 60 IN TXT %s" % SPF_PASS)
    z.append("; SPF of every sender domain and its mail. host")
    for d in ZONES:
        if d == "spftemp.org":
            continue
        z.append("%s. 60 IN TXT %s" % (d, SPF_PASS))
        z.append("mail.%s. 60 IN TXT %s" % (d, SPF_PASS))
    z.append("spftemp.org. 60 IN TXT %s" % SPF_PASS)
    z.append("$SERVFAIL spftemp.org.")
    z.append("; DMARC records")
    for d, recs in DMARC_RECORDS:
        for r in recs:
            z.append('_dmarc.%s. 60 IN TXT "%s"' % (d, r))
    z.append("$SERVFAIL _dmarc.servfail.org.")
    z.append("; DKIM keys")
    for d in DKIM_DOMAINS:
        z.append('%s._domainkey.%s. 60 IN TXT "v=DKIM1; k=rsa; p=%s"' % (SELECTOR, d, pub))
    return "\n".join(z) + "\n"


# ------------------------------------------------------------------ messages

def message(name):
    r = row(name)
    f = r["from"]
    mid = "<dmarc-%s.%d@test.example>" % (name, random.randint(0, 1 << 40))
    if isinstance(f, str):
        froms = ["From: Sender <sender@%s>" % f]
    else:
        froms = list(f)
    hdr = froms + ["To: <user@test.example>", "Subject: dmarc fixture %s" % name,
                   "Date: Mon, 01 Jan 2024 12:00:00 +0000", "Message-ID: %s" % mid,
                   "MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii"]
    body = "Hello from the DMARC fixture %s.\r\nSecond line.\r\n" % name
    return ("\r\n".join(hdr) + "\r\n\r\n" + body).encode(), mid


def make(outdir):
    os.makedirs(os.path.join(outdir, "msgs"), exist_ok=True)
    pem, pub = make_fixtures.rsa_key(2048)
    with open(os.path.join(outdir, "dmarc.zone"), "w") as f:
        f.write(zone_text(pub))
    index = []
    for name in EXPECTED:
        r = row(name)
        msg, mid = message(name)
        # sign bottom-up so that the first listed signature ends on top;
        # a "fail" signature is broken by changing the body after signing
        # (signatures above it cover the changed body and still pass, so a
        # "fail" is never listed above a "pass")
        states = [w for _, w in r["sigs"]]
        assert "fail" not in states or "pass" not in states[states.index("fail"):], name
        for d, want in reversed(r["sigs"]):
            msg = make_fixtures.sign(msg, SELECTOR, d, pem)
            if want == "fail":
                msg = make_fixtures.replace_once(msg, b"Second line.", b"Second line, changed.")
        sigs = make_fixtures.signatures(msg)
        assert [s[0] for s in sigs] == [d for d, _ in r["sigs"]], (name, sigs)
        path = os.path.join(outdir, "msgs", name + ".eml")
        with open(path, "wb") as f:
            f.write(msg)
        index.append({"name": name, "file": path, "message_id": mid,
                      "mail_from": r["mail_from"],
                      "signatures": [{"d": d, "s": s, "b8": b8, "expect": e}
                                     for (d, s, b8), (_, e) in zip(sigs, r["sigs"])]})
    with open(os.path.join(outdir, "fixtures.json"), "w") as f:
        json.dump(index, f, indent=1)
    return index


# ------------------------------------------------------------------ reference model

class Psl:
    """Organizational domains by the PSL algorithm (publicsuffix.org/list:
    the longest matching rule, exceptions win, wildcards, "*" by default);
    ICANN and private sections alike, as libpsl's registrable domain."""

    def __init__(self, path=PSL_FILE):
        self.rules, self.wild, self.exc = set(), set(), set()
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("//"):
                    continue
                rule = line.split()[0].lower()
                if rule.startswith("!"):
                    self.exc.add(rule[1:])
                elif rule.startswith("*."):
                    self.wild.add(rule[2:])
                else:
                    self.rules.add(rule)

    def suffix_len(self, labels):
        best = 1   # the default rule "*"
        for i in range(len(labels)):
            cand = ".".join(labels[i:])
            n = len(labels) - i
            if cand in self.exc:
                return n - 1
            if cand in self.rules:
                best = max(best, n)
            if i > 0 and cand in self.wild:
                best = max(best, n + 1)
        return best

    def org(self, domain):
        labels = domain.lower().rstrip(".").split(".")
        n = self.suffix_len(labels)
        return ".".join(labels[-(n + 1):]) if len(labels) > n else None


def dns_answer(port, name):
    """("ok", [txt...]) / ("nx", []) / ("temp", [])."""
    from dnslib import QTYPE, RCODE, DNSRecord
    q = DNSRecord.question(name, "TXT")
    try:
        a = DNSRecord.parse(q.send("127.0.0.1", port, tcp=True, timeout=2))
    except OSError:
        return "temp", []
    if a.header.rcode == RCODE.NXDOMAIN:
        return "nx", []
    if a.header.rcode != RCODE.NOERROR:
        return "temp", []
    return "ok", [b"".join(r.rdata.data).decode() for r in a.rr if r.rtype == QTYPE.TXT]


def spf_reference(port, domain):
    """SPF for the records this zone uses: v=spf1 ip4:NET -all."""
    import ipaddress
    st, txts = dns_answer(port, domain)
    if st == "temp":
        return "temperror"
    recs = [t for t in txts if t == "v=spf1" or t.startswith("v=spf1 ")]
    if len(recs) != 1:
        return "none" if not recs else "permerror"
    m = re.fullmatch(r"v=spf1 ip4:(\S+) -all", recs[0])
    if not m:
        raise ValueError("reference SPF cannot evaluate %r" % recs[0])
    ok = ipaddress.ip_address(CLIENT_IP) in ipaddress.ip_network(m.group(1))
    return "pass" if ok else "fail"


def parse_record(txt):
    """RFC 7489 6.3/6.4 for the tags used here: dict, or None if invalid
    (no valid p= and no rua=)."""
    tags = {}
    for part in txt.split(";"):
        if "=" not in part:
            continue
        k, v = (x.strip() for x in part.split("=", 1))
        tags[k.lower()] = v
    pol = ("none", "quarantine", "reject")
    p, sp = tags.get("p", "").lower(), tags.get("sp", "").lower()
    if p not in pol or (sp and sp not in pol):
        if tags.get("rua", "").startswith("mailto:"):
            return {"p": "none", "sp": "none", "pct": 100, "adkim": "r", "aspf": "r"}
        return None
    pct = tags.get("pct", "100")
    return {"p": p, "sp": sp or p, "pct": int(pct) if pct.isdigit() and int(pct) <= 100 else 100,
            "adkim": tags.get("adkim", "r").lower(), "aspf": tags.get("aspf", "r").lower()}


def discover(port, psl, dom):
    """6.6.3: (status, record, at_org); status found/none/multiple/invalid/temp."""
    def at(d):
        st, txts = dns_answer(port, "_dmarc." + d)
        if st == "temp":
            return "temp", None
        recs = [t for t in txts if re.match(r"v\s*=\s*DMARC1\s*(;|$)", t)]
        if not recs:
            return "none", None
        if len(recs) > 1:
            return "multiple", None
        rec = parse_record(recs[0])
        return ("found", rec) if rec else ("invalid", None)
    st, rec = at(dom)
    org = psl.org(dom)
    if st == "none" and org and org != dom:
        st, rec = at(org)
        return st, rec, True
    return st, rec, False


def aligned(psl, a, b, mode):
    a, b = a.lower(), b.lower()
    return a == b if mode == "s" else (psl.org(a) is not None and psl.org(a) == psl.org(b))


def from_domain_reference(msg):
    """6.6.1 with Python's email package (not smtp/smtp_from.c): the one
    From: domain, or None when there is not exactly one parseable address."""
    m = email.message_from_bytes(msg, policy=email.policy.default)
    froms = m.get_all("From") or []
    if len(froms) != 1:
        return None
    h = froms[0]
    if h.defects or getattr(h, "groups", None) is None:
        return None
    if any(g.display_name is not None for g in h.groups):
        return None          # a group
    addrs = h.addresses
    if len(addrs) != 1 or not addrs[0].domain:
        return None
    return addrs[0].domain


def reference(port, psl, fx, msg, draw):
    """(dmarc, policy, enforce) by RFC 7489 for one fixture; raises
    AssertionError when python3-dkim's verdict on a signature is not the
    one the fixture was made for."""
    dom = from_domain_reference(msg)
    if dom is None:
        return "permerror", None, (550, "5.7.1")
    spf_dom = fx["mail_from"].rsplit("@", 1)[1]
    spf = spf_reference(port, spf_dom)
    dkims = []
    for i, s in enumerate(fx["signatures"]):
        res, why = make_fixtures.verify_one(msg, i, port)
        assert res == s["expect"], "%s: d=%s: python3-dkim says %s (%s), made for %s" % (
            fx["name"], s["d"], res, why, s["expect"])
        dkims.append((s["d"], res))
    st, rec, at_org = discover(port, psl, dom.lower())
    if st == "temp":
        return "temperror", None, 250
    if st == "none":
        return "none", None, 250
    if st in ("multiple", "invalid"):
        return "permerror", None, 250
    requested = rec["sp"] if at_org else rec["p"]
    ok = temp = False
    if aligned(psl, dom, spf_dom, rec["aspf"]):
        ok |= spf == "pass"
        temp |= spf == "temperror"
    for d, res in dkims:
        if aligned(psl, dom, d, rec["adkim"]):
            ok |= res == "pass"
            temp |= res == "temperror"
    if ok:
        return "pass", "none", 250
    if temp:
        return "temperror", "none", (451, "4.7.1") if requested == "reject" else 250
    applied = requested
    if not draw < rec["pct"]:
        applied = {"reject": "quarantine", "quarantine": "none", "none": "none"}[requested]
    enforce = {"reject": (550, "5.7.1"), "quarantine": "Q", "none": 250}[applied]
    return "fail", applied, enforce


def norm(enf):
    return tuple(enf) if isinstance(enf, (list, tuple)) else enf


def verify(outdir):
    with open(os.path.join(outdir, "fixtures.json")) as f:
        index = json.load(f)
    p, port = make_fixtures.start_dns(os.path.join(outdir, "dmarc.zone"), None)
    psl = Psl()
    assert psl.org("x.com") == "x.com" and psl.org("a.b.subpolicy.org") == "subpolicy.org" \
        and psl.org("a.b.example.co.uk") == "example.co.uk", "PSL reference broken"
    bad = 0
    try:
        print("%-22s %-10s %-10s %-12s %-10s %-10s %s" % ("fixture", "dmarc", "reference", "policy",
                                                          "reference", "enforce", "reference"))
        for fx in index:
            r = row(fx["name"])
            with open(fx["file"], "rb") as f:
                msg = f.read()
            draws = (r["draw"],) if r["draw"] is not None else (0, 99)
            got = {reference(port, psl, fx, msg, d) for d in draws}
            want = (r["dmarc"], r["policy"], norm(r["enforce"]))
            ok = got == {want}
            bad += not ok
            g = sorted(got, key=str)[0]
            print("%-22s %-10s %-10s %-12s %-10s %-10s %-10s%s" % (
                fx["name"], want[0], g[0], want[1], g[1], want[2], g[2],
                "" if ok else "   <-- differs %s" % sorted(got, key=str)))
    finally:
        p.terminate()
        p.wait()
    return 1 if bad else 0


def main():
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--verify":
        return verify(args[1])
    if len(args) != 1:
        sys.exit(__doc__)
    t0 = time.monotonic()
    index = make(args[0])
    print("made %d fixtures in %s (%.2fs)" % (len(index), args[0], time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""dmarc_from: DMARC enforce against forged From:
forms, from a client in a namespace (SPF passes for attacker.example only),
with _dmarc.victim.example at p=reject. Each case is a message whose From:
a mail reader shows as ceo@victim.example (or Postfix completes into a
forged From:); enforce must refuse it, 550 5.7.1, with the default
[dmarc] malformed_from. Under malformed_from = mark every case but the
baseline was delivered: enforce stopped nobody who added a second From:.

Also: a client's own X-Backstop-DMARC field (any X-Backstop-* field:
backstop's names) never reaches the backend, so the field the backend
files on always means backstop wrote it; qvictim.example publishes
p=quarantine for that case."""
import re
from harness import *

HOST = BACKSTOP_HOSTNAME
t = Test("dmarc_from", need=("postfix", "ip"))
try:
    import dnslib  # noqa: F401
except ImportError:
    t.error("python3-dnslib not installed (tests/deps.sh installs it)")
ns = t.netns()
zone = os.path.join(t.tmpdir("zones"), "dmarc.zone")
with open(zone, "w") as f:
    f.write("""\
victim.example.            60 IN SOA ns.victim.example. host.victim.example. 1 60 60 60 30
victim.example.            60 IN TXT "v=spf1 -all"
_dmarc.victim.example.     60 IN TXT "v=DMARC1; p=reject"
qvictim.example.           60 IN SOA ns.qvictim.example. host.qvictim.example. 1 60 60 60 30
qvictim.example.           60 IN TXT "v=spf1 -all"
_dmarc.qvictim.example.    60 IN TXT "v=DMARC1; p=quarantine"
attacker.example.          60 IN SOA ns.attacker.example. host.attacker.example. 1 60 60 60 30
attacker.example.          60 IN TXT "v=spf1 ip4:%s -all"
_dmarc.attacker.example.   60 IN TXT "v=DMARC1; p=none"
""" % ns.addr)
dport = t.dns_server(zone)
pf = t.postfix()
port = free_port(ns.host_addr)
bs = t.backstop({"backend": {"address": pf.address},
                 "server": {"listen": "%s:%d" % (ns.host_addr, port)},
                 "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "1s"},
                 "spf": {"mode": "annotate"},
                 "dmarc": {"mode": "enforce"}})


def send(subject, from_lines, mail_from="bounce@attacker.example"):
    c = ns.client(ns.host_addr, port)
    t.defer(c.close)
    c.greeting()
    c.ehlo("mail.attacker.example")
    r = c.cmd("MAIL FROM:<%s>" % mail_from, timeout=10)
    if r.code != 250:
        return r
    c.cmd("RCPT TO:<user@test.example>")
    c.cmd("DATA")
    msg = b"".join(l + b"\r\n" for l in from_lines)
    msg += b"To: user@test.example\r\nSubject: " + subject.encode() + b"\r\n\r\nhello\r\n.\r\n"
    c.send(msg)
    r = c.reply(timeout=15)
    c.cmd("QUIT")
    return r


def delivered(subject, timeout=3.0):
    def find():
        for m in pf.messages():
            if subject == (m.headers("Subject") or [""])[0]:
                return m
        return None
    return poll(find, timeout)


with t.case("baseline: From: ceo@victim.example is refused"):
    r = send("baseline", [b"From: ceo@victim.example"])
    t.check_reply("baseline 550 5.7.1", r, 550, "5.7.1")

with t.case("aligned attacker mail passes"):
    r = send("aligned", [b"From: x@attacker.example"])
    t.check("aligned 250", r.code == 250, r)

# A second From: field (RFC 5322 allows one): mail readers show the first
# (or either); backstop must not deliver ceo@victim.example unchecked.
with t.case("two From: fields"):
    r = send("two-fields", [b"From: ceo@victim.example", b"From: x@attacker.example"])
    t.check_reply("two-fields: 550 5.7.1", r, 550, "5.7.1")
    m = delivered("two-fields") if r.code == 250 else None
    t.check("two From: fields: not delivered under p=reject", m is None,
            "%r %r" % (r, m and m.headers("Authentication-Results")))

with t.case("two addresses in one From:"):
    r = send("two-addrs", [b"From: ceo@victim.example, x@attacker.example"])
    t.check_reply("two-addrs: 550 5.7.1", r, 550, "5.7.1")
    m = delivered("two-addrs") if r.code == 250 else None
    t.check("two addresses: not delivered under p=reject", m is None,
            "%r %r" % (r, m and m.headers("Authentication-Results")))

with t.case("From with a space before the colon"):
    r = send("space-colon", [b"From : ceo@victim.example", b"From: x@attacker.example"])
    t.check_reply("space-colon: 550 5.7.1", r, 550, "5.7.1")
    m = delivered("space-colon") if r.code == 250 else None
    t.check("'From :' counted: not delivered", m is None,
            "%r %r" % (r, m and (m.headers("From"), m.headers("Authentication-Results"))))

with t.case("From without a domain"):
    r = send("no-domain", [b"From: ceo"])
    t.check_reply("no-domain: 550 5.7.1", r, 550, "5.7.1")
    m = delivered("no-domain") if r.code == 250 else None
    t.check("From without domain: not delivered with a local domain added", m is None or
            all("@" not in v for v in m.headers("From")),
            "%r %r" % (r, m and (m.headers("From"), m.headers("Authentication-Results"))))

with t.case("no From at all"):
    r = send("no-from", [b"Sender: x@attacker.example"], mail_from="ceo@victim.example")
    t.check_reply("no-from: 550 5.7.1", r, 550, "5.7.1")
    m = delivered("no-from") if r.code == 250 else None
    t.check("no From: not delivered with From: ceo@victim.example added", m is None or
            all("victim" not in v for v in m.headers("From")),
            "%r %r" % (r, m and (m.headers("From"), m.headers("Authentication-Results"))))

# The backend files on X-Backstop-DMARC; the field should mean backstop
# wrote it (as Authentication-Results with our authserv-id does): a
# client's own copy is removed.
with t.case("client-forged X-Backstop-DMARC is removed"):
    r = send("forged-q", [b"From: x@attacker.example", b"X-Backstop-DMARC: pass (forged)"])
    t.check("forged-q: 250", r.code == 250, r)
    m = delivered("forged-q")
    t.check("forged-q: no X-Backstop-DMARC on a passing message", m is not None and
            m.headers("X-Backstop-DMARC") == [], m and m.headers("X-Backstop-DMARC"))
    r = send("forged-q2", [b"From: ceo@qvictim.example", b"X-Backstop-DMARC: pass (forged)"])
    m = delivered("forged-q2")
    t.check("forged-q2: exactly our quarantine field", m is not None and
            len(m.headers("X-Backstop-DMARC")) == 1, m and m.headers("X-Backstop-DMARC"))

t.done()

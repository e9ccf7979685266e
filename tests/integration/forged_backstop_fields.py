#!/usr/bin/python3
"""forged_backstop_fields: a client's own X-Backstop-DMARC field (and any
X-Backstop-* field: backstop's names) never reaches the backend, so the
field the backend files on always means backstop wrote it. From a client
in a namespace, with _dmarc.victim.example at p=quarantine and SPF passing
for attacker.example only: a passing message arrives without the client's
forged field, a quarantined one with backstop's field only."""
import re
from harness import *

HOST = BACKSTOP_HOSTNAME
t = Test("forged_backstop_fields", need=("postfix", "ip"))
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
_dmarc.victim.example.     60 IN TXT "v=DMARC1; p=quarantine"
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



# The backend files on X-Backstop-DMARC; the field should mean backstop
# wrote it (as Authentication-Results with our authserv-id does). A
# client's own copy reaches the mailbox today, below ours.
with t.case("client-forged X-Backstop-DMARC is removed"):
    r = send("forged-q", [b"From: x@attacker.example", b"X-Backstop-DMARC: pass (forged)"])
    t.check("forged-q: 250", r.code == 250, r)
    m = delivered("forged-q")
    t.check("forged-q: no X-Backstop-DMARC on a passing message", m is not None and
            m.headers("X-Backstop-DMARC") == [], m and m.headers("X-Backstop-DMARC"))
    r = send("forged-q2", [b"From: ceo@victim.example", b"X-Backstop-DMARC: pass (forged)"])
    m = delivered("forged-q2")
    t.check("forged-q2: exactly our quarantine field", m is not None and
            len(m.headers("X-Backstop-DMARC")) == 1, m and m.headers("X-Backstop-DMARC"))

t.done()

#!/usr/bin/python3
"""joejob: forged Received hops ([joejob] mode, filters/joejob.c).

The two published examples (C.P. Fuhrman, MCETECH 2008) rebuilt as
messages: a zombie sends spam with a From: address at talk21.com (NS
ns2.bt.net) or telesensventures.com (NS a.ns.joker.com) and a forged
topmost Received field "from [zombie] by <that NS host>". Here the zombie
is the test client at 127.0.0.1, so the forged field says from
[127.0.0.1]; the test DNS server serves the NS and MX records.

enforce refuses both at end of data (550 5.7.1) and the backend gets
nothing; mark delivers with an X-Backstop-Joejob field; off delivers
unchanged. Not triggered: ordinary multi-hop mail (the top field is from
another host: no MX/NS lookup at all), a top field from the client by a
host that is no MX/NS host of the domain, and a submission host whose own
field names itself (by = its HELO) even when it is an NS host. A DNS
failure never refuses."""
import os
import socket
import re
import time
from harness import *

t = Test("joejob")
try:
    import dnslib  # noqa: F401
except ImportError:
    t.error("python3-dnslib not installed (tests/deps.sh installs it)")

zone = os.path.join(t.tmpdir("zones"), "joejob.zone")
with open(zone, "w") as f:
    f.write("""\
talk21.com.             60 IN SOA ns1.bt.net. hostmaster.bt.net. 1 60 60 60 30
talk21.com.             60 IN NS ns1.bt.net.
talk21.com.             60 IN NS ns2.bt.net.
talk21.com.             60 IN MX 10 mx1.bt.net.
telesensventures.com.   60 IN SOA a.ns.joker.com. hostmaster.joker.com. 1 60 60 60 30
telesensventures.com.   60 IN NS a.ns.joker.com.
telesensventures.com.   60 IN NS b.ns.joker.com.
ordinary.example.       60 IN SOA ns.ordinary.example. host.ordinary.example. 1 60 60 60 30
ordinary.example.       60 IN NS ns.ordinary.example.
ordinary.example.       60 IN MX 10 mx.ordinary.example.
other.example.          60 IN SOA ns.other.example. host.other.example. 1 60 60 60 30
broken.example.         60 IN SOA ns.broken.example. host.broken.example. 1 60 60 60 30
$SERVFAIL broken.example.
slow.example.           60 IN SOA ns.slow.example. host.slow.example. 1 60 60 60 30
slow.example.           60 IN NS ns2.bt.net.
$DELAY slow.example. 3
""")
dnslog = os.path.join(t.tmpdir("dnslog"), "queries")
dport = t.dns_server("--log", dnslog, zone)
sink = t.sink()


MPORT = free_port()


def instance(mode, metrics=False):
    sections = {"backend": {"address": sink.address},
                "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "1s"},
                "joejob": {"mode": mode}}
    if metrics:
        sections["metrics"] = {"listen": "127.0.0.1:%d" % MPORT}
    return t.backstop(sections)


def refusals(check):
    """backstop_refusals_total{check=CHECK,class="5xx"} of the enforce instance"""
    return int(metrics_values(MPORT).get('backstop_refusals_total{check="%s",class="5xx"}' % check, 0))


enforce = instance("enforce", metrics=True)
mark = instance("mark")
off = instance("off")

DATE = "Mon, 07 Dec 2026 03:00:00 +0000"


def message(subject, sender, received):
    hdr = ["Received: %s" % r for r in received]
    hdr += ["From: <%s>" % sender, "To: <user@test.example>", "Subject: %s" % subject,
            "Date: %s" % DATE, "Message-ID: <%s@joejob.test>" % subject]
    return "\r\n".join(hdr) + "\r\n\r\nHello.\r\n"


def send(bs, subject, sender, received, mail_from=None, helo=CLIENT_HELO):
    c = bs.client()
    c.ehlo(helo)
    out = c.mail_transaction(mail_from if mail_from is not None else sender,
                             ["user@test.example"], message(subject, sender, received))
    c.cmd("QUIT")
    return out[-1]


def queries():
    try:
        with open(dnslog) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


# the published examples
TALK21 = ["from [127.0.0.1] by ns2.bt.net; " + DATE,
          "from zombie.example ([127.0.0.1]) by ns2.bt.net; " + DATE]
TELESENS = ["from [127.0.0.1] by a.ns.joker.com; " + DATE]

with t.case("enforce: talk21.com / ns2.bt.net is refused at end of data"):
    r = send(enforce, "talk21", "gladys@talk21.com", TALK21[:1])
    t.check_reply("talk21: 550 5.7.1", r, 550, "5.7.1")
    t.check("the reply names the claimed hop and the domain",
            "ns2.bt.net" in r.text and "talk21.com" in r.text and "NS" in r.text, r)
    t.check("the backend got nothing", sink.with_subject("talk21", timeout=1.0) == [],
            sink.messages())
    t.check("log line says why", enforce.wait_log(
        r"joejob: forged Received hop: .*\[127\.0\.0\.1\].*ns2\.bt\.net, an NS host of talk21\.com"),
        enforce.log()[-2000:])
    t.check("summary line carries joejob=forged",
            enforce.wait_log(r"joejob=forged"), enforce.log()[-2000:])

with t.case("enforce: telesensventures.com / a.ns.joker.com is refused"):
    r = send(enforce, "telesens", "info@telesensventures.com", TELESENS)
    t.check_reply("telesens: 550 5.7.1", r, 550, "5.7.1")
    t.check("reply names a.ns.joker.com", "a.ns.joker.com" in r.text, r)
    t.check("the backend got nothing", sink.with_subject("telesens", timeout=1.0) == [])
    t.check("/metrics counts both refusals under check=\"joejob\"",
            refusals("joejob") == 2 and refusals("other") == 0,
            (refusals("joejob"), refusals("other")))

with t.case("enforce: an MX host, a name in the from part, case and final dot"):
    r = send(enforce, "talk21-mx", "gladys@talk21.com",
             ["from " + CLIENT_HELO + " by MX1.BT.NET.; " + DATE, "from x by y; " + DATE])
    t.check_reply("talk21-mx: 550 5.7.1", r, 550, "5.7.1")
    t.check("reply says MX", "an MX host of talk21.com" in r.text, r)

with t.case("enforce: the MAIL FROM domain when From: differs"):
    r = send(enforce, "envelope", "someone@other.example", TALK21[:1],
             mail_from="bounce@talk21.com")
    t.check_reply("envelope: 550 5.7.1", r, 550, "5.7.1")

with t.case("mark: delivered with X-Backstop-Joejob"):
    r = send(mark, "talk21-mark", "gladys@talk21.com", TALK21[1:])
    t.check("mark: 250", r.code == 250, r)
    d = sink.with_subject("talk21-mark")
    t.check("mark: delivered once", len(d) == 1, d)
    m = re.search(rb"^X-Backstop-Joejob: (.*)$", d[0], re.M) if d else None
    t.check("mark: the field names the hop and the domain",
            m is not None and b"ns2.bt.net, an NS host of talk21.com" in m.group(1),
            d[0][:800] if d else None)
    t.check("mark: summary note", mark.wait_log(r"joejob=forged"), mark.log()[-2000:])

with t.case("off: delivered unchanged, nothing looked up"):
    before = len(queries())
    r = send(off, "talk21-off", "gladys@talk21.com", TALK21[:1])
    t.check("off: 250", r.code == 250, r)
    d = sink.with_subject("talk21-off")
    t.check("off: delivered without the field", len(d) == 1 and b"X-Backstop-Joejob" not in d[0],
            d)
    t.check("off: no DNS query", queries()[before:] == [], queries()[before:])

with t.case("ordinary multi-hop mail: not triggered, no DNS cost"):
    hops = ["from mail.ordinary.example (mail.ordinary.example [192.0.2.10])\r\n"
            "\tby mx.ordinary.example (Postfix) with ESMTPS id 4Ab; " + DATE,
            "from [192.0.2.77] (helo=pc.ordinary.example) by mail.ordinary.example "
            "with esmtpsa (Exim 4.96) id 1x; " + DATE,
            "from localhost (localhost [127.0.0.1]) by pc.ordinary.example; " + DATE]
    before = len(queries())
    r = send(enforce, "multihop", "alice@ordinary.example", hops)
    t.check("multihop: 250", r.code == 250, r)
    t.check("multihop: delivered", len(sink.with_subject("multihop")) == 1)
    t.check("multihop: no MX/NS query (the top field is from another host)",
            not [q for q in queries()[before:] if q.split()[-1] in ("MX", "NS")],
            queries()[before:])
    # the same shape as the forgery, but by a host that is no MX/NS host
    before = len(queries())
    r = send(enforce, "unlisted", "alice@ordinary.example",
             ["from [127.0.0.1] by relay.elsewhere.example; " + DATE] + hops)
    t.check("unlisted: MX and NS of ordinary.example looked up (so the log counts)",
            {"ordinary.example. MX", "ordinary.example. NS"} <= set(queries()[before:]),
            queries()[before:])
    t.check("unlisted by host: 250", r.code == 250, r)
    t.check("unlisted: delivered", len(sink.with_subject("unlisted")) == 1)
    t.check("unlisted: looked up, noted", enforce.wait_log(r"joejob=unlisted"),
            enforce.log()[-2000:])

with t.case("a submission host's own field (by = the client) is not a forged hop"):
    # the client itself is ns2.bt.net: its HELO is the by host of its field
    before = len(queries())
    r = send(enforce, "own-hop", "gladys@talk21.com",
             ["from pc.talk21.com (pc.talk21.com [127.0.0.1]) by ns2.bt.net; " + DATE],
             helo="ns2.bt.net")
    t.check("own hop: 250", r.code == 250, r)
    t.check("own hop: delivered", len(sink.with_subject("own-hop")) == 1)
    t.check("own hop: no MX/NS query",
            not [q for q in queries()[before:] if q.split()[-1] in ("MX", "NS")],
            queries()[before:])

with t.case("a HELO literal in the from part is no address of the connection"):
    # Postfix and Sendmail write the client's HELO first: "from [HELO] (rdns
    # [address])". A relay whose own client said HELO [relay's address] has
    # not forged anything: the hop came from 203.0.113.9
    r = send(enforce, "helo-literal", "gladys@talk21.com",
             ["from [127.0.0.1] (unknown [203.0.113.9]) by ns2.bt.net (Postfix); " + DATE])
    t.check("helo literal: 250", r.code == 250, r)
    t.check("helo literal: delivered", len(sink.with_subject("helo-literal")) == 1)

with t.case("a DNS failure does not refuse"):
    r = send(enforce, "servfail", "x@broken.example", TALK21[:1])
    t.check("servfail: 250", r.code == 250, r)
    t.check("servfail: delivered", len(sink.with_subject("servfail")) == 1)
    t.check("servfail: noted", enforce.wait_log(r"joejob=temperror"), enforce.log()[-2000:])

with t.case("a DNS timeout does not refuse"):
    # slow.example names ns2.bt.net as its NS, but answers after [dns] timeout
    r = send(enforce, "slow", "x@slow.example", TALK21[:1])
    t.check("timeout: 250", r.code == 250, r)
    t.check("timeout: delivered", len(sink.with_subject("slow")) == 1)
    t.check("timeout: logged as such", enforce.wait_log(
        r"joejob: cannot tell whether ns2\.bt\.net .*slow\.example: timeout"), enforce.log()[-2000:])

with t.case("the client leaves while the lookups are out"):
    c = enforce.client()
    c.ehlo()
    c.cmd("MAIL FROM:<x@slow.example>")
    c.cmd("RCPT TO:<user@test.example>")
    c.cmd("DATA")
    c.send(dot_stuff(message("gone", "x@slow.example", TALK21[:1])) + b".\r\n")
    c.close()
    time.sleep(2.5)   # the answers come to a session that is gone
    r = send(enforce, "after-gone", "alice@ordinary.example", ["from x by y; " + DATE])
    t.check("backstop still serves", r.code == 250, r)
    t.check("nothing of the gone session delivered", sink.with_subject("gone", timeout=0.5) == [])

with t.case("a client's own X-Backstop-Joejob field is removed"):
    c = off.client()
    c.ehlo()
    out = c.mail_transaction("alice@ordinary.example", ["user@test.example"],
                             "X-Backstop-Joejob: clean\r\nSubject: forged-field2\r\n\r\nHi.\r\n")
    c.cmd("QUIT")
    d = sink.with_subject("forged-field2")
    t.check("the client's field is gone", len(d) == 1 and b"X-Backstop-Joejob" not in d[0], d)

for bs in (enforce, mark, off):
    bs.stop()

t.done()

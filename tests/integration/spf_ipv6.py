#!/usr/bin/python3
"""spf_ipv6: SPF at MAIL FROM for an IPv6 client, end to end. The client
sits in a network namespace with an IPv6 documentation address (Netns with
ipv6=True: 2001:db8:0:K::2, backstop listens on [2001:db8:0:K::1]:port),
backstop asks tests/lib/dns_server.py and relays to Postfix with XCLIENT.

DNS data: tests/data/dns/spf.zone (pass.example.org has ip6:2001:db8::/32,
failnoexp.example.org only ip4) plus a zone written here for the /64 this
run was given (parallel runs get different ones): ip6 CIDR edges (/128 on
the client and on its neighbour, /127 either side, another /64), a:
against an AAAA record, exists: with the reversed nibble form of %{i},
and an explanation with %{c} and %{i} (RFC 7208 7.3: for IPv6, i is the
dot-separated nibble form, c the readable one)."""
import ipaddress
import re
import subprocess
from harness import *

HOST = BACKSTOP_HOSTNAME


def unfold(v):
    return re.sub(r"\s+", " ", v).strip()


t = Test("spf_ipv6", need=("postfix", "ip"))
if not os.path.exists("/proc/net/if_inet6"):
    t.skip("no IPv6 in this kernel", unfixable=True)


class Postfix6(Postfix):
    """XCLIENT ADDR=IPV6:...: Postfix parses the address with getaddrinfo()
    limited to inet_protocols, so with the harness's "ipv4" it answers
    "501 Bad ADDR syntax" (and backstop relays as itself). This backend
    still listens on 127.0.0.1 only."""

    def _write(self):
        super()._write()
        cf = os.path.join(self.T, "conf", "main.cf")
        with open(cf) as f:
            text = f.read()
        with open(cf, "w") as f:
            f.write(text.replace("inet_protocols = ipv4\n", "inet_protocols = ipv4, ipv6\n"))


pf = Postfix6(t.tmpdir("postfix"))
t.defer(pf.stop)
pf.start()
ns = t.netns(ipv6=True)
CLIENT = ns.addr6                              # canonical (compressed) text form
C = ipaddress.IPv6Address(CLIENT)
NET = ipaddress.IPv6Network(ns.net6)
NIBBLES = ".".join(C.exploded.replace(":", ""))           # %{i} for IPv6
NIBBLES_R = ".".join(reversed(C.exploded.replace(":", "")))  # %{ir}
OTHER64 = ipaddress.IPv6Network((int(NET.network_address) ^ (1 << 64), 64))


def zone6():
    """The per-run zone: records that name this run's addresses."""
    nb = C + 1                     # the client's neighbour (::3)
    lines = [
        # /128 exactly on the client: pass; on the neighbour: fail
        'exact128.v6.example.org. 60 IN TXT "v=spf1 ip6:%s/128 -all"' % C,
        'edge128.v6.example.org. 60 IN TXT "v=spf1 ip6:%s/128 -all"' % nb,
        # /127 given as the neighbour (::3/127 = ::2-::3): pass;
        # ::4/127 (::4-::5), just above the client: fail
        'cidr127.v6.example.org. 60 IN TXT "v=spf1 ip6:%s/127 -all"' % nb,
        'edge127.v6.example.org. 60 IN TXT "v=spf1 ip6:%s/127 -all"' % (C + 2),
        # this run's /64: pass; the /64 next to it: fail
        'net64.v6.example.org. 60 IN TXT "v=spf1 ip4:198.51.100.0/24 ip6:%s -all"' % NET,
        'other64.v6.example.org. 60 IN TXT "v=spf1 ip6:%s -all"' % OTHER64,
        # a: with an AAAA record (dual-cidr //128) and with an A record only
        'a6.v6.example.org. 60 IN TXT "v=spf1 a:host.v6.example.org//128 -all"',
        'host.v6.example.org. 60 IN AAAA %s' % C,
        'a4only.v6.example.org. 60 IN TXT "v=spf1 a:host4.v6.example.org -all"',
        'host4.v6.example.org. 60 IN A 198.51.100.2',
        # exists: with the nibble-reversed client address
        'exists.v6.example.org. 60 IN TXT "v=spf1 exists:%{ir}.allow.v6.example.org -all"',
        '%s.allow.v6.example.org. 60 IN A 127.0.0.2' % NIBBLES_R,
        # fail with an explanation carrying both IPv6 macro forms
        'explain.v6.example.org. 60 IN TXT "v=spf1 ip4:198.51.100.0/24 -all exp=exp.v6.example.org"',
        'exp.v6.example.org. 60 IN TXT "client c=%{c} i=%{i}"',
        # the null sender: postmaster@HELO, a HELO name whose SPF has the /64
        'helo6.v6.example.org. 60 IN TXT "v=spf1 ip6:%s -all"' % NET,
        'helo6.v6.example.org. 60 IN AAAA %s' % C,
    ]
    return "\n".join(lines) + "\n"


def dns_server():
    z6 = os.path.join(t.tmpdir("dns"), "spf_ipv6.zone")
    with open(z6, "w") as f:
        f.write(zone6())
    return t.dns_server(os.path.join(srcdir(), "tests", "data", "dns", "spf.zone"), z6)


dport = dns_server()
log("# client [%s] -> backstop on [%s]; DNS on 127.0.0.1:%d" % (CLIENT, ns.host_addr6, dport))


def start(spf, **extra):
    port = free_port(ns.host_addr6)
    sections = {"backend": {"address": pf.address},
                "server": {"listen": "[%s]:%d" % (ns.host_addr6, port)},
                "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "1s"},
                "spf": spf}
    for k, v in extra.items():
        sections.setdefault(k, {}).update(v)
    bs = t.backstop(sections)
    bs.port, bs.host = port, ns.host_addr6
    return bs


def send(bs, mail_from, subject, helo=CLIENT_HELO):
    """One transaction from the namespace over IPv6; returns the replies."""
    c = ns.client(bs.host, bs.port)
    t.defer(c.close)
    c.greeting()
    c.ehlo(helo)
    r = c.cmd("MAIL FROM:<%s>" % mail_from, timeout=10)
    out = [r]
    if r.code == 250:
        out.append(c.cmd("RCPT TO:<user@test.example>"))
        out.append(c.cmd("DATA"))
        c.send(dot_stuff(make_message(subject, mail_from or "mailer-daemon@example.org")) + b".\r\n")
        out.append(c.reply())
    c.cmd("QUIT")
    c.close()
    return out


def delivered(subject, timeout=5.0):
    def find():
        for m in pf.messages():
            if subject == (m.headers("Subject") or [""])[0]:
                return m
        return None
    return poll(find, timeout)


def check_accepted(bs, mail_from, result, subject, helo=CLIENT_HELO, prop=None):
    out = send(bs, mail_from, subject, helo=helo)
    t.check("%s: MAIL 250 and message accepted" % subject,
            out[0].code == 250 and out[-1].code == 250, out)
    m = delivered(subject)
    t.check("%s: delivered" % subject, m is not None)
    if m is None:
        return None
    rs = [unfold(h) for h in m.headers("Received-SPF")]
    ar = [unfold(h) for h in m.headers("Authentication-Results")]
    t.check("%s: one Received-SPF: %s" % (subject, result),
            len(rs) == 1 and rs[0].startswith(result + " ("), rs)
    # RFC 7208 9.1: a value that is no dot-atom (':') is a quoted-string
    t.check('%s: Received-SPF client-ip="%s" (quoted: an IPv6 address is no dot-atom)'
            % (subject, CLIENT), rs and ('client-ip="%s";' % CLIENT) in rs[0], rs)
    want = "%s; spf=%s %s" % (HOST, result, prop or "smtp.mailfrom=" + mail_from.rsplit("@", 1)[-1])
    t.check("%s: Authentication-Results: %s" % (subject, want), want in ar, ar)
    return m


def check_fail(bs, mail_from, subject, text=None):
    out = send(bs, mail_from, subject)
    t.check_reply("%s: MAIL 550 5.7.23" % subject, out[0], 550, "5.7.23")
    if text is not None:
        t.check("%s: reply text has %r" % (subject, text), text in out[0].text, out[0].text)
    return out[0]


with t.case("IPv6 client, SPF pass: headers, Received, XCLIENT"):
    pf.clear_mail()
    pf.mark()
    bs = start({"mode": "enforce"})
    t.check("backstop listens on [%s]" % ns.host_addr6,
            bs.wait_log(r"listening on \[?%s\]?" % re.escape(ns.host_addr6), 1), bs.log()[-1500:])
    m = check_accepted(bs, "sender@pass.example.org", "pass", "v6-pass")
    if m is not None:
        rs = unfold(m.headers("Received-SPF")[0])
        t.check("Received-SPF comment: designates %s" % CLIENT,
                ("designates %s as permitted sender" % CLIENT) in rs, rs)
        rcv = backstop_received(m) or ""
        log("# backstop's Received: %s" % rcv)
        # RFC 5321 4.4 TCP-info is an address-literal: [IPv6:2001:db8::2]
        t.check("backstop's Received: from %s (unknown [IPv6:%s])" % (CLIENT_HELO, CLIENT),
                ("from %s (unknown [IPv6:%s])" % (CLIENT_HELO, CLIENT)) in rcv, rcv)
        top = unfold(m.headers("Received")[0])
        log("# Postfix's Received: %s" % top)
        t.check("Postfix's Received (from XCLIENT) shows [IPv6:%s] and the HELO" % CLIENT,
                ("[IPv6:%s]" % CLIENT) in top and CLIENT_HELO in top, top)
        hb = m.header_block()
        t.check("Received-SPF and A-R above backstop's Received",
                -1 < hb.find(b"Received-SPF:") < hb.find(b"by " + HOST.encode()) and
                -1 < hb.find(b"Authentication-Results:") < hb.find(b"by " + HOST.encode()), hb[:800])
    t.check("backstop sent XCLIENT ... ADDR=IPV6:%s" % CLIENT,
            bs.wait_log(r"XCLIENT .*ADDR=IPV6:%s\b" % re.escape(CLIENT), 2), bs.log()[-3000:])
    t.check("Postfix logs client=unknown[%s]" % CLIENT,
            pf.wait_log(r"client=unknown\[%s\]" % re.escape(CLIENT)), pf.log(True))
    t.check("no XCLIENT refusal in Postfix's log",
            not re.search(r"insufficient authorization|Bad ADDR", pf.log(True)), pf.log(True))
    t.check("backstop logs spf: result=pass ... ip=%s" % CLIENT,
            bs.wait_log(r"spf: result=pass identity=mailfrom domain=pass\.example\.org ip=%s "
                        % re.escape(CLIENT)), bs.log()[-2000:])
    bs.stop()

with t.case("IPv6 client: fail (ip4-only record and CIDR edges) -> 550 5.7.23"):
    pf.clear_mail()
    bs = start({"mode": "enforce"})
    check_fail(bs, "sender@failnoexp.example.org", "v6-ip4-only",
               "does not designate %s as permitted sender" % CLIENT)
    check_fail(bs, "sender@edge128.v6.example.org", "v6-edge-128-neighbour")
    check_fail(bs, "sender@edge127.v6.example.org", "v6-edge-127-above")
    check_fail(bs, "sender@other64.v6.example.org", "v6-other-64")
    check_fail(bs, "sender@a4only.v6.example.org", "v6-a-mechanism-A-only")
    r = check_fail(bs, "sender@explain.v6.example.org", "v6-explanation")
    t.check("explanation: %%{c} = %s" % CLIENT, ("c=%s " % CLIENT) in r.text, r.text)
    t.check("explanation: %{i} = the 32 dot-separated nibbles", ("i=%s" % NIBBLES) in r.text, r.text)
    t.check("backstop logs spf: result=fail ... ip=%s" % CLIENT,
            bs.wait_log(r"spf: result=fail .*ip=%s " % re.escape(CLIENT)), bs.log()[-2000:])
    t.check("nothing delivered", not pf.settle(0.3), pf.messages())
    bs.stop()

with t.case("IPv6 client: pass on /128, /127, /64, a://128, exists:%{ir}, null sender"):
    pf.clear_mail()
    bs = start({"mode": "enforce"})
    check_accepted(bs, "sender@exact128.v6.example.org", "pass", "v6-exact-128")
    check_accepted(bs, "sender@cidr127.v6.example.org", "pass", "v6-cidr-127")
    check_accepted(bs, "sender@net64.v6.example.org", "pass", "v6-net-64")
    check_accepted(bs, "sender@a6.v6.example.org", "pass", "v6-a-aaaa-128")
    check_accepted(bs, "sender@exists.v6.example.org", "pass", "v6-exists-nibbles")
    m = check_accepted(bs, "", "pass", "v6-null-sender", helo="helo6.v6.example.org",
                       prop="smtp.helo=helo6.v6.example.org")
    if m is not None:
        rs = unfold(m.headers("Received-SPF")[0])
        t.check("null sender: identity=helo", "identity=helo" in rs, rs)
    bs.stop()

SMTPLIB_CLIENT = r"""
import smtplib, sys
host, port, sender, subject = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = smtplib.SMTP(host, port, local_hostname="client.example.org", timeout=10)
s.sendmail(sender, ["user@test.example"],
           "From: <%s>\r\nTo: <user@test.example>\r\nSubject: %s\r\n\r\nHello.\r\n" % (sender, subject))
s.quit()
print("sent")
"""

with t.case("python smtplib in the namespace over IPv6, annotate: fail accepted and marked"):
    pf.clear_mail()
    pf.mark()
    bs = start({"mode": "annotate"})
    r = ns.run(["/usr/bin/python3", "-c", SMTPLIB_CLIENT, ns.host_addr6, str(bs.port),
                "sender@failnoexp.example.org", "v6-smtplib-annotate"],
               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    out = r.stdout.decode(errors="replace")
    t.check("smtplib client in the namespace exits 0", r.returncode == 0 and "sent" in out, out)
    m = delivered("v6-smtplib-annotate")
    rs = [unfold(h) for h in (m.headers("Received-SPF") if m else [])]
    t.check("annotate: Received-SPF: fail with client-ip=\"%s\"" % CLIENT,
            len(rs) == 1 and rs[0].startswith("fail (") and ('client-ip="%s"' % CLIENT) in rs[0], rs)
    t.check("annotate: Postfix logs client=unknown[%s]" % CLIENT,
            pf.wait_log(r"client=unknown\[%s\]" % re.escape(CLIENT)), pf.log(True))
    bs.stop()

with t.case("[spf] trusted with an IPv6 CIDR skips SPF"):
    pf.clear_mail()
    bs = start({"mode": "enforce", "trusted": "192.0.2.0/24 %s" % NET})
    out = send(bs, "sender@failnoexp.example.org", "v6-trusted")
    t.check("trusted %s: fail domain accepted" % NET, out[0].code == 250 and out[-1].code == 250, out)
    m = delivered("v6-trusted")
    t.check("trusted: Received-SPF none with the reason, no Authentication-Results",
            m is not None and re.match(r"none \(backstop: not checked, client \S+ is in \[spf\] trusted\)",
                                       " ".join(m.headers("Received-SPF")))
            and not m.headers("Authentication-Results"), m and m.header_block())
    t.check("trusted: logged as skipped", bs.wait_log(r"spf: skipped, trusted client %s" % re.escape(CLIENT)),
            bs.log()[-2000:])
    bs.stop()
    # the neighbouring /64 is not trusted
    bs = start({"mode": "enforce", "trusted": "%s" % OTHER64})
    check_fail(bs, "sender@failnoexp.example.org", "v6-not-trusted-other-64")
    bs.stop()

t.done()

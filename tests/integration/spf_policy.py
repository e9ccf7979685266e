#!/usr/bin/python3
"""spf_policy: SPF at MAIL FROM end to end. A client in a network namespace
(198.51.100.x: libspf2 passes every loopback client, so loopback proves
nothing) talks to backstop, which asks tests/lib/dns_server.py (serving
tests/data/dns/spf.zone) through its resolver and relays to Postfix. Each
result is checked as the client sees it (reply code, enhanced code, text)
and as the backend receives it (Received-SPF and Authentication-Results
prepended, forged Authentication-Results removed)."""
import re
import subprocess
from harness import *

HOST = BACKSTOP_HOSTNAME


def dns_server(t, *extra):
    """Start the test DNS server; returns its port (stopped at the end)."""
    zone = os.path.join(srcdir(), "tests", "data", "dns", "spf.zone")
    return t.dns_server(*extra, zone)


def unfold(v):
    return re.sub(r"\s+", " ", v).strip()


t = Test("spf_policy", need=("postfix", "ip"))
try:
    import dnslib  # noqa: F401  (the server needs it; /usr/bin/python3 sees it)
except ImportError:
    t.error("python3-dnslib not installed (tests/deps.sh installs it)")
ns = t.netns()
# The "mx" mechanism against the client's real address: a parallel test may
# hold 198.51.100.1/.2, so the namespace's address is only known now. One
# zone made for it: MX hosts at another address and at the client's
# (pass), and a domain whose MX hosts are elsewhere (fail).
mxzone = os.path.join(t.tmpdir("zones"), "mx.zone")
with open(mxzone, "w") as f:
    f.write("""\
mxtest.example.net.          60 IN SOA ns.example.net. host.example.net. 1 60 60 60 30
mxpass.mxtest.example.net.   60 IN TXT "v=spf1 mx -all"
mxpass.mxtest.example.net.   60 IN MX  10 mail1.mxtest.example.net.
mxpass.mxtest.example.net.   60 IN MX  20 mail2.mxtest.example.net.
mxfail.mxtest.example.net.   60 IN TXT "v=spf1 mx -all"
mxfail.mxtest.example.net.   60 IN MX  10 mail1.mxtest.example.net.
mail1.mxtest.example.net.    60 IN A   192.0.2.10
mail2.mxtest.example.net.    60 IN A   %s
""" % ns.addr)
dport = dns_server(t, mxzone)
pf = t.postfix()
log("# client %s -> backstop on %s; DNS on 127.0.0.1:%d" % (ns.addr, ns.host_addr, dport))


def start(spf, **extra):
    port = free_port(ns.host_addr)
    sections = {"backend": {"address": pf.address},
                "server": {"listen": "%s:%d" % (ns.host_addr, port)},
                "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "1s"},
                "spf": spf}
    for k, v in extra.items():
        sections.setdefault(k, {}).update(v)
    bs = t.backstop(sections)
    bs.port, bs.host = port, ns.host_addr
    return bs


def send(bs, mail_from, subject, helo=CLIENT_HELO, extra_headers=()):
    """One transaction from the namespace; returns (replies, seconds to the
    MAIL reply)."""
    c = ns.client(bs.host, bs.port)
    t.defer(c.close)
    c.greeting()
    c.ehlo(helo)
    t0 = time.monotonic()
    r = c.cmd("MAIL FROM:<%s>" % mail_from, timeout=10)
    took = time.monotonic() - t0
    out = [r]
    if r.code == 250:
        out.append(c.cmd("RCPT TO:<user@test.example>"))
        out.append(c.cmd("DATA"))
        c.send(dot_stuff(make_message(subject, mail_from or "mailer-daemon@example.org",
                                      extra_headers=extra_headers)) + b".\r\n")
        out.append(c.reply())
    c.cmd("QUIT")
    c.close()
    return out, took


def delivered(subject, timeout=5.0):
    """The delivered message with this Subject (waits for it), or None."""
    def find():
        for m in pf.messages():
            if subject == (m.headers("Subject") or [""])[0]:
                return m
        return None
    return poll(find, timeout)


def check_accepted(bs, mail_from, result, subject, mailfrom_prop=None, helo=CLIENT_HELO):
    """MAIL accepted, message delivered with the SPF headers for result."""
    out, took = send(bs, mail_from, subject, helo=helo)
    t.check("%s: MAIL 250" % subject, out[0].code == 250, out)
    t.check("%s: message accepted" % subject, out[-1].code == 250, out)
    m = delivered(subject)
    t.check("%s: delivered" % subject, m is not None)
    if m is None:
        return None
    rs = [unfold(h) for h in m.headers("Received-SPF")]
    ar = [unfold(h) for h in m.headers("Authentication-Results")]
    t.check("%s: one Received-SPF: %s" % (subject, result),
            len(rs) == 1 and rs[0].startswith(result + " ("), rs)
    t.check("%s: Received-SPF names client-ip=%s" % (subject, ns.addr),
            rs and ("client-ip=%s;" % ns.addr) in rs[0], rs)
    prop = mailfrom_prop or "smtp.mailfrom=" + mail_from.rsplit("@", 1)[-1]
    want = "%s; spf=%s %s" % (HOST, result, prop)
    t.check("%s: Authentication-Results: %s" % (subject, want), want in ar, ar)
    hb = m.header_block()
    t.check("%s: Received-SPF and A-R prepended (above the message's own header)" % subject,
            -1 < hb.find(b"Received-SPF:") < hb.find(b"\nFrom:") and
            -1 < hb.find(b"Authentication-Results:") < hb.find(b"\nFrom:"), hb[:600])
    return m


def check_refused(bs, mail_from, code, esc, subject, text=None):
    out, took = send(bs, mail_from, subject)
    t.check_reply("%s: MAIL %s %s" % (subject, code, esc), out[0], code, esc)
    if text is not None:
        t.check("%s: reply text %r" % (subject, text), text in out[0].text, out[0].text)
    return out, took


with t.case("enforce: pass, softfail, neutral, none, include, redirect, null sender"):
    pf.clear_mail()
    bs = start({"mode": "enforce"})
    check_accepted(bs, "sender@pass.example.org", "pass", "spf-pass")
    check_accepted(bs, "sender@split.example.org", "pass", "spf-split-txt")
    check_accepted(bs, "sender@include.example.org", "pass", "spf-include")
    check_accepted(bs, "sender@redirect.example.org", "pass", "spf-redirect")
    check_accepted(bs, "sender@mxpass.mxtest.example.net", "pass", "spf-mx")
    check_accepted(bs, "sender@softfail.example.org", "softfail", "spf-softfail")
    check_accepted(bs, "sender@neutral.example.org", "neutral", "spf-neutral")
    check_accepted(bs, "sender@none.example.org", "none", "spf-none")
    check_accepted(bs, "sender@nx.example.org", "none", "spf-nxdomain")
    check_accepted(bs, "sender@permerror.example.org", "permerror", "spf-permerror-mark")
    check_accepted(bs, "sender@toomany.example.org", "permerror", "spf-toomany-mark")
    # the null sender: postmaster@HELO
    m = check_accepted(bs, "", "pass", "spf-null-sender", mailfrom_prop="smtp.helo=" + CLIENT_HELO)
    if m:
        rs = unfold(m.headers("Received-SPF")[0])
        t.check("null sender: identity=helo", "identity=helo" in rs, rs)
    t.check("log has spf result lines", bs.wait_log(r"spf: result=pass identity=mailfrom"), bs.log()[-2000:])
    bs.stop()

with t.case("enforce: fail 550 5.7.23 with the domain's explanation, temperror 451 4.7.24"):
    bs = start({"mode": "enforce"})
    check_refused(bs, "sender@fail.example.org", 550, "5.7.23", "spf-fail",
                  "Mail from fail.example.org is not accepted from %s, see https://www.example.org/spf" % ns.addr)
    check_refused(bs, "sender@failnoexp.example.org", 550, "5.7.23", "spf-fail-noexp",
                  "does not designate %s as permitted sender" % ns.addr)
    out, _ = check_refused(bs, "sender@failctl.example.org", 550, "5.7.23", "spf-fail-ctl-exp")
    t.check("explanation with CR/LF/TAB/DEL arrives as one clean line",
            out[0].raw.count(b"\r\n") == 1 and b"\t" not in out[0].raw and b"\x7f" not in out[0].raw,
            out[0].raw)
    check_refused(bs, "sender@redirectfail.example.org", 550, "5.7.23", "spf-redirect-fail")
    check_refused(bs, "sender@mxfail.mxtest.example.net", 550, "5.7.23", "spf-mx-fail",
                  "does not designate %s as permitted sender" % ns.addr)
    out, took = check_refused(bs, "sender@slow.example.org", 451, "4.7.24", "spf-temperror-timeout")
    t.check("temperror after about [dns] timeout (1s): %.2fs" % took, 0.8 < took < 2.5, took)
    check_refused(bs, "sender@broken.example.org", 451, "4.7.24", "spf-temperror-servfail")
    check_refused(bs, "sender@brokenmech.example.org", 451, "4.7.24", "spf-temperror-mech")
    # softfail and permerror (mark) are accepted in enforce mode: above
    bs.stop()

with t.case("permerror = reject: 550 5.7.24"):
    bs = start({"mode": "enforce", "permerror": "reject"})
    check_refused(bs, "sender@permerror.example.org", 550, "5.7.24", "spf-permerror-reject")
    check_refused(bs, "sender@two.example.org", 550, "5.7.24", "spf-two-records")
    check_refused(bs, "sender@loop.example.org", 550, "5.7.24", "spf-include-loop")
    bs.stop()

with t.case("annotate: fail and temperror are accepted and marked"):
    pf.clear_mail()
    bs = start({"mode": "annotate"})
    check_accepted(bs, "sender@fail.example.org", "fail", "annotate-fail")
    check_accepted(bs, "sender@slow.example.org", "temperror", "annotate-temperror")
    bs.stop()

with t.case("trusted relays skip SPF"):
    pf.clear_mail()
    bs = start({"mode": "enforce", "trusted": "192.0.2.0/24 %s/32" % ns.addr})
    out, _ = send(bs, "sender@fail.example.org", "trusted-relay")
    t.check("trusted: fail domain accepted", out[0].code == 250 and out[-1].code == 250, out)
    m = delivered("trusted-relay")
    t.check("trusted: Received-SPF none with the reason, no Authentication-Results",
            m is not None and re.match(r"none \(backstop: not checked, client \S+ is in \[spf\] trusted\)",
                                       " ".join(m.headers("Received-SPF")))
            and not m.headers("Authentication-Results"), m and m.header_block())
    bs.stop()

with t.case("mode = off: no check, no headers"):
    pf.clear_mail()
    bs = start({"mode": "off"})
    out, _ = send(bs, "sender@fail.example.org", "mode-off")
    t.check("off: fail domain accepted", out[-1].code == 250, out)
    m = delivered("mode-off")
    t.check("off: no Received-SPF", m is not None and not m.headers("Received-SPF"), m and m.header_block())
    bs.stop()

with t.case("forged Authentication-Results with our authserv-id are removed"):
    pf.clear_mail()
    bs = start({"mode": "enforce"})
    forged = ["Authentication-Results: %s; spf=pass smtp.mailfrom=fail.example.org" % HOST,
              "Authentication-Results: (sneaky)\r\n %s; dkim=pass" % HOST.upper(),
              "Authentication-Results: \"%s\"; dmarc=pass" % HOST,
              "Authentication-Results: other.example.net; spf=fail smtp.mailfrom=x.example",
              # RFC 5322 4.5.3 obsolete syntax: blanks before the colon
              "Authentication-Results : %s; spf=pass smtp.mailfrom=space-before-colon.example" % HOST,
              "Authentication-Results\t: %s; spf=pass smtp.mailfrom=tab-before-colon.example" % HOST]
    out, _ = send(bs, "sender@pass.example.org", "forged-ar", extra_headers=forged)
    t.check("forged: accepted", out[-1].code == 250, out)
    m = delivered("forged-ar")
    ar = [unfold(h) for h in (m.headers("Authentication-Results") if m else [])]
    t.check("forged: exactly ours and the foreign one remain",
            sorted(ar) == sorted(["%s; spf=pass smtp.mailfrom=pass.example.org" % HOST,
                                  "other.example.net; spf=fail smtp.mailfrom=x.example"]), ar)
    t.check("forged: the obsolete-syntax forgeries are gone too",
            m is not None and b"before-colon" not in m.raw, m.raw[:800] if m else None)
    t.check("forged: removal logged", bs.wait_log(r"removed forged Authentication-Results"), bs.log()[-2000:])
    bs.stop()

t.done()

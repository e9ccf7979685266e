#!/usr/bin/python3
"""spf_loopback: a loopback client (127.0.0.1, ::1) is not SPF-checked.
libspf2 answers "pass (... designates 127.0.0.1 ...)" for loopback without
any lookup, which the quick start showed as a real result. backstop says
"none" with the reason instead, makes no DNS query, adds no
Authentication-Results claim, and in enforce mode accepts a sender whose
domain would fail."""
import re
from harness import *

t = Test("spf_loopback", need=("smtp-sink",))
sink = t.sink()
# a DNS server that logs every query: the loopback case must ask nothing
dnslog = os.path.join(t.tmpdir("dns"), "queries.log")
dport = t.dns_server("--log", dnslog, os.path.join(srcdir(), "tests", "data", "dns", "spf.zone"))


def start(mode, listen=None):
    return t.backstop({"backend": {"address": sink.address},
                       "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "1s"},
                       "spf": {"mode": mode}},
                      listen=listen)


def send(bs, host, port, token):
    c = SmtpClient(host, port)
    t.defer(c.close)
    c.greeting()
    c.ehlo()
    body = make_message(subject=token, mail_from="sender@fail.example.org")
    out = c.mail_transaction("sender@fail.example.org", ["user@test.example"], body)
    c.cmd("QUIT")
    return out


def delivered(token):
    poll(lambda: any(token.encode() in m for m in sink.messages()), 5)
    for m in sink.messages():
        if token.encode() in m:
            return m.decode("utf-8", "replace")
    return None


def received_spf(msg):
    m = re.search(r"^Received-SPF: (.*(?:\r?\n[ \t].*)*)", msg, re.M)
    return re.sub(r"\s+", " ", m.group(1)) if m else None


for host, listen_fmt in (("127.0.0.1", "127.0.0.1:%d"), ("::1", "[::1]:%d")):
    with t.case("annotate: loopback %s gets none with the reason" % host):
        port = free_port(host)
        bs = start("annotate", listen_fmt % port)
        token = "loopback-v6" if ":" in host else "loopback-v4"
        out = send(bs, host, port, token)
        t.check("%s: accepted" % host, out and out[-1].code == 250, out)
        msg = delivered(token)
        spf = received_spf(msg or "")
        t.check("%s: Received-SPF: none (backstop: not checked, client %s is a loopback address)" % (host, host),
                spf is not None and spf.startswith(
                    "none (backstop: not checked, client %s is a loopback address)" % host), spf)
        t.check("%s: no 'designates' claim" % host, msg is not None and "designates" not in msg, msg)
        t.check("%s: no Authentication-Results spf= claim" % host,
                msg is not None and not re.search(r"^Authentication-Results:", msg, re.M), msg)
        t.check("%s: summary note spf=skipped" % host, bs.wait_log(r"spf=skipped"), bs.log()[-2000:])
        bs.stop()

with t.case("enforce: loopback is not refused, no DNS query made"):
    try:
        os.unlink(dnslog)
    except FileNotFoundError:
        pass
    port = free_port()
    bs = start("enforce", "127.0.0.1:%d" % port)
    out = send(bs, "127.0.0.1", port, "loop-enforce")
    t.check("enforce: fail domain from loopback accepted (250)", out and out[-1].code == 250, out)
    queries = open(dnslog).read() if os.path.exists(dnslog) else ""
    t.check("no DNS query for the loopback client", "fail.example.org" not in queries, queries)
    bs.stop()

t.done()

#!/usr/bin/python3
"""dnsbl: DNS block and allow lists ([dnsbl], filters/dnsbl.c) against
tests/lib/dns_server.py serving tests/data/dns/dnsbl.zone, where the client
(127.0.0.1, and ::1 on one list) is listed on bl, bl2 and bs, allowed on
wl, answered a code no filter counts on odd, delayed past the timeout on
slow, and SERVFAIL on broken. Nothing queries a real list.

Checked: a listed client gets its banner and then 550 5.7.1 "Service
unavailable; client [127.0.0.1] blocked using bl.example.org" to MAIL and
RCPT until it quits, with "; " and the list's TXT record, cleaned, when
it has one (counted as check dnsbl in /metrics); the filter drops
an answer it does not count; weights and threshold (one list of two below
threshold 2 passes, both refuse); an allow list cancels a listing; a slow
and a failing list score 0, are logged, and hold the greeting no longer
than the timeout; the null-sender list refuses MAIL FROM:<> naming the
list while MAIL FROM:<a@b> from the same client goes through, and
whitelist_threshold exempts an allowed client from it; the cache (a second
connection of a client not listed asks the resolver nothing: DNS answers in /metrics stay put,
and they do not with cache_ttl = 0); log mode refuses nothing; off asks
nothing; an IPv6 client is looked up by reversed nibbles."""
import re
import socket
import time

from harness import *

t = Test("dnsbl", watchdog=120, need=("smtp-sink",))
try:
    import dnslib  # noqa: F401
except ImportError as e:
    getattr(t, "error", t.skip)("%s: install python3-dnslib (tests/deps.sh)" % e)

qlog = os.path.join(t.tmpdir("dns"), "queries.log")
open(qlog, "w").close()
dport = t.dns_server("--log", qlog, os.path.join(srcdir(), "tests", "data", "dns", "dnsbl.zone"))
sink = t.sink()
MPORT = free_port()
REFUSAL = "Service unavailable; client [127.0.0.1] blocked using %s"


def queries():
    with open(qlog) as f:
        return [l.split()[0] for l in f if l.strip()]


def start(dnsbl, metrics=False, listen=None):
    sections = {"backend": {"address": sink.address},
                "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "3s"},
                "dnsbl": dict({"mode": "enforce", "timeout": "1s"}, **dnsbl)}
    if metrics:
        sections["metrics"] = {"listen": "127.0.0.1:%d" % MPORT}
    if listen:
        sections["server"] = {"listen": listen}
    return t.backstop(sections)


def scrape():
    return metrics_values(MPORT)


def dns_answers(m):
    return sum(v for k, v in m.items() if k.startswith("backstop_dns_answers_total"))


def deliver(c, sender="a@example.org", subject="dnsbl"):
    return c.mail_transaction(sender, ["user@example.net"], make_message(subject, mail_from=sender))[-1]


def refused_by(name, c, listname, reason=None):
    """MAIL and RCPT both get the list's 550 (with "; reason", the list's
    TXT record, when it has one); the client can still QUIT."""
    r = c.cmd("MAIL FROM:<a@example.org>")
    t.check_reply(name + ": MAIL 550 5.7.1", r, 550, "5.7.1")
    want = REFUSAL % listname + ("; " + reason if reason else "")
    t.check(name + ": the reply is '%s'" % want, len(r.lines) == 1 and r.lines[0] == "5.7.1 " + want, r)
    r = c.cmd("RCPT TO:<user@example.net>")
    t.check_reply(name + ": RCPT 550 5.7.1 as well", r, 550, "5.7.1")
    t.check_reply(name + ": QUIT 221", c.cmd("QUIT"), 221)


with t.case("a listed client is refused, naming the list, and counted as check dnsbl"):
    bs = start({"sites": "bl.example.org=127.0.0.[2..11]"}, metrics=True)
    c = bs.client()    # the banner comes: the refusal is at MAIL (as every connect refusal)
    t.check_reply("EHLO 250", c.ehlo(), 250)
    refused_by("bl", c, "bl.example.org", "listed for the test")
    t.check("logged with the score and the answer",
            bs.wait_log(r"dnsbl: client \[127\.0\.0\.1\] listed: score 1 >= threshold 1 "
                        r"\(bl\.example\.org=127\.0\.0\.2\)", 3), bs.log()[-1500:])
    c = bs.client()    # the answer comes from the cache now: the verdict is immediate
    c.ehlo()
    refused_by("bl, second connection (cached answer)", c, "bl.example.org", "listed for the test")
    m = scrape()
    t.check("/metrics: refusals counted under check=\"dnsbl\"",
            m.get('backstop_refusals_total{check="dnsbl",class="5xx"}', 0) >= 2,
            {k: v for k, v in m.items() if "refusals" in k and v})
    bs.stop()

with t.case("the filter counts only its codes; without one any 127/8 answer counts"):
    bs = start({"sites": "odd.example.org=127.0.0.[2..11]"})
    c = bs.client()
    c.ehlo()
    t.check_reply("odd.example.org answers 127.0.0.99, outside the filter: mail goes through",
                  deliver(c), 250)
    c.cmd("QUIT")
    bs.stop()
    bs = start({"sites": "odd.example.org"})
    c = bs.client()
    c.ehlo()
    # its TXT record has CR LF and a control character: one line, cleaned
    refused_by("odd.example.org without a filter", c, "odd.example.org", "see 250 2.0.0 ok there")
    bs.stop()

with t.case("weights and threshold"):
    bs = start({"sites": "bl.example.org clean.example.org", "threshold": "2"})
    c = bs.client()
    c.ehlo()
    t.check_reply("one of two weight-1 lists (score 1 < threshold 2): accepted", deliver(c), 250)
    c.cmd("QUIT")
    bs.stop()
    bs = start({"sites": "bl.example.org bl2.example.org", "threshold": "2"})
    c = bs.client()
    c.ehlo()
    refused_by("both lists (score 2)", c, "bl.example.org", "listed for the test")
    bs.stop()
    bs = start({"sites": "bl.example.org*1 bl2.example.org=127.0.0.4*3", "threshold": "2"})
    c = bs.client()
    c.ehlo()
    refused_by("the reply names the entry with the largest weight", c, "bl2.example.org")
    bs.stop()

with t.case("an allow list cancels a listing"):
    bs = start({"sites": "bl.example.org wl.example.org=127.0.[0..255].[0..255]*-1"})
    c = bs.client()
    c.ehlo()
    t.check_reply("listed (+1) and allowed (-1): score 0, accepted", deliver(c), 250)
    c.cmd("QUIT")
    bs.stop()

with t.case("a slow and a failing list count 0; the greeting waits at most the timeout"):
    bs = start({"sites": "slow.example.org broken.example.org"})
    t0 = time.monotonic()
    c = bs.client(timeout=10)
    dt = time.monotonic() - t0
    t.check("the greeting came after the 1 s timeout, not the 4 s answer (%.2f s)" % dt,
            0.8 < dt < 2.5, dt)
    c.ehlo()
    t.check_reply("mail goes through", deliver(c), 250)
    c.cmd("QUIT")
    t.check("the timeout is logged",
            bs.wait_log(r"dnsbl: slow\.example\.org for client \[127\.0\.0\.1\]: timeout; "
                        r"counted as not listed", 3), bs.log()[-1500:])
    t.check("the failure is logged",
            bs.wait_log(r"dnsbl: broken\.example\.org for client \[127\.0\.0\.1\]: servfail; "
                        r"counted as not listed", 3), bs.log()[-1500:])
    # clients that leave while their lookups are out: the answers come to
    # checks whose session is gone (the sanitizer build sees any misuse)
    for i in range(5):
        c = bs.client(greet=False)
        c.close()
    time.sleep(1.5)
    c = bs.client()
    t.check_reply("after 5 clients left mid-lookup, the next one is served", c.ehlo(), 250)
    c.cmd("QUIT")
    bs.stop()

with t.case("null-sender list: MAIL FROM:<> refused, the same client's other mail accepted"):
    bs = start({"null_sender_sites": "bs.example.org"})
    c = bs.client()
    c.ehlo()
    r = c.cmd("MAIL FROM:<>")
    t.check_reply("MAIL FROM:<> 550 5.7.1", r, 550, "5.7.1")
    t.check("the reply names bs.example.org", REFUSAL % "bs.example.org" in r.text, r)
    t.check_reply("MAIL FROM:<a@example.org> in the same session: delivered",
                  deliver(c, subject="after null"), 250)
    t.check_reply("MAIL FROM:<> again: refused again", c.cmd("MAIL FROM:<>"), 550, "5.7.1")
    c.cmd("QUIT")
    t.check("the summary line carries dnsbl=listed(bs.example.org)",
            bs.wait_log(r"from=<> .*checks=\[dnsbl=listed\(bs\.example\.org\)\].*refused at MAIL: 550", 3),
            bs.log()[-1500:])
    t.check("the delivered message reached the backend", len(sink.with_subject("after null")) == 1)
    bs.stop()
    bs = start({"sites": "wl.example.org=127.0.[0..255].[0..255]*-1", "whitelist_threshold": "-1",
                "null_sender_sites": "bs.example.org"})
    c = bs.client()
    c.ehlo()
    t.check_reply("whitelist_threshold = -1, the client scores -1: MAIL FROM:<> accepted",
                  c.cmd("MAIL FROM:<>"), 250)
    c.cmd("QUIT")
    bs.stop()

with t.case("cache: a second connection asks the resolver nothing"):
    bs = start({"sites": "bl.example.org wl.example.org=127.0.[0..255].[0..255]*-1 "
                         "clean.example.org"}, metrics=True)
    c = bs.client()
    c.ehlo()
    c.cmd("QUIT")
    n1 = dns_answers(scrape())
    q1 = len(queries())
    c = bs.client()
    c.ehlo()
    t.check_reply("second connection: score 0, accepted", deliver(c, subject="cached"), 250)
    c.cmd("QUIT")
    n2 = dns_answers(scrape())
    t.check("first connection: 3 DNS answers (%d)" % n1, n1 == 3, n1)
    t.check("second connection: no DNS answer more (%d -> %d)" % (n1, n2), n2 == n1, (n1, n2))
    t.check("and the test DNS saw no new query", len(queries()) == q1, queries()[q1:])
    bs.stop()
    bs = start({"sites": "clean.example.org", "cache_ttl": "0"}, metrics=True)
    for i in range(2):
        c = bs.client()
        c.cmd("QUIT")
    n = dns_answers(scrape())
    t.check("cache_ttl = 0: each connection asks (%d answers for 2)" % n, n == 2, n)
    bs.stop()

with t.case("log mode refuses nothing"):
    bs = start({"mode": "log", "sites": "bl.example.org"})
    c = bs.client()
    c.ehlo()
    t.check_reply("listed, mode = log: accepted", deliver(c), 250)
    c.cmd("QUIT")
    t.check("the verdict is logged", bs.wait_log(r"dnsbl: client \[127\.0\.0\.1\] listed: .*mode = log, "
                                                 r"not refused", 3), bs.log()[-1500:])
    bs.stop()

with t.case("off asks nothing"):
    q0 = len(queries())
    bs = start({"mode": "off", "sites": "bl.example.org", "null_sender_sites": "bs.example.org"})
    c = bs.client()
    c.ehlo()
    t.check_reply("accepted", deliver(c), 250)
    t.check_reply("MAIL FROM:<> accepted", c.cmd("MAIL FROM:<>"), 250)
    c.cmd("QUIT")
    t.check("no DNS query", len(queries()) == q0, queries()[q0:])
    bs.stop()

with t.case("an IPv6 client: reversed nibbles"):
    p6 = free_port("::1")
    bs = start({"sites": "bl.example.org"}, listen="[::1]:%d" % p6)
    c = bs.client(host="::1", port=p6)
    c.ehlo()
    r = c.cmd("MAIL FROM:<a@example.org>")
    t.check_reply("::1 listed: MAIL 550 5.7.1", r, 550, "5.7.1")
    t.check("the reply names the client [::1] and the list",
            "client [::1] blocked using bl.example.org" in r.text, r)
    c.cmd("QUIT")
    t.check("the query was 1.0.0.0...0.bl.example.org (32 nibbles)",
            "1." + "0." * 31 + "bl.example.org." in queries(), queries()[-3:])
    bs.stop()

t.done()

#!/usr/bin/python3
"""backend_pool: a backend connection outlives its client's session
([backend] pool_size) and is re-identified for the next client with
XCLIENT, against a real Postfix.

Each client connects from its own loopback address (127.0.0.N) and greets
with its own name, and its message says N in its Subject: Postfix's
Received header and its log (client=...[127.0.0.N]) prove which client the
backend believed it talked to, message by message. Postfix's "connect from"
lines count backstop's connections to it.

Cases: reuse and attribution over sequential clients; a client that aborts
mid-DATA (its connection is never kept: the next client gets a fresh one,
and no message of the aborted one is delivered); a session that left a
refused transaction behind (RSET before XCLIENT); pool_idle expiry; the
backend closing a kept connection (smtpd_timeout); a reload empties the
pool; pool_size = 0 is one backend connection per client."""
import re
import signal
import time
import urllib.request
from harness import *

t = Test("backend_pool", need=("postfix",))
pf = t.postfix()

CONNECT = r"postfix/smtpd\[\d+\]: connect from "


def client_addr(n):
    return "127.0.0.%d" % n


def send_one(bs, n, subject=None):
    """Client n: one message from its own address and HELO, then QUIT.
    Returns the end-of-data reply."""
    c = bs.client(source=(client_addr(n), 0))
    c.cmd("EHLO client-%d.example" % n)
    rs = c.mail_transaction("sender%d@example.org" % n, ["user@test.example"],
                            make_message(subject or "pool client %d" % n))
    c.cmd("QUIT")
    c.close()
    return rs[-1]


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        body = r.read().decode()
    return {l.split()[0]: float(l.split()[1]) for l in body.splitlines() if l and not l.startswith("#")}


def attribution(msgs):
    """(n, ok, detail) for each delivered message: does Postfix's own
    Received header name client n's address and HELO?"""
    out = []
    for m in msgs:
        subj = (m.msg.get("Subject") or "")
        mo = re.search(r"client (\d+)", subj)
        if not mo:
            continue
        n = int(mo.group(1))
        top = re.sub(r"\s+", " ", m.headers("Received")[0])
        ok = ("[%s]" % client_addr(n)) in top and ("client-%d.example" % n) in top
        out.append((n, ok, top))
    return out


with t.case("sequential clients share one backend connection, each one attributed"):
    pf.clear_mail()
    pf.mark()
    mport = free_port()
    bs = t.backstop({"backend": {"address": pf.address, "xclient": "on", "pool_size": "4"},
                     "metrics": {"listen": "127.0.0.1:%d" % mport}})
    bs.wait_backend_known()
    pf.wait_log(r"disconnect from", 5)   # the start-up probe
    pf.mark()
    bs.mark()
    clients = list(range(2, 10))
    for n in clients:
        r = send_one(bs, n)
        t.check("client %d: message accepted" % n, r is not None and r.code == 250, r)
    msgs = pf.wait_for_mail(len(clients), timeout=10)
    t.check("all %d messages delivered" % len(clients), len(msgs) == len(clients), len(msgs))
    seen = attribution(msgs)
    t.check("every message carries its own client's address and HELO (Postfix's Received)",
            len(seen) == len(clients) and all(ok for _, ok, _ in seen),
            [s for s in seen if not s[1]] or seen)
    log_text = pf.log(True)
    for n in clients:
        t.check("Postfix logs client=...[%s] exactly once" % client_addr(n),
                len(re.findall(r"client=\S*\[%s\]" % re.escape(client_addr(n)), log_text)) == 1,
                log_text[-3000:])
    conns = pf.count_log(CONNECT)
    t.check("Postfix saw fewer connections than clients (%d for %d)" % (conns, len(clients)),
            1 <= conns < len(clients), log_text[-3000:])
    t.check("backstop reused a kept connection for the later clients",
            bs.count_log(r"reusing a kept backend connection") >= len(clients) - 1, bs.log()[-3000:])
    m = scrape(mport)
    t.check("metrics: %d reuses, no failure, one connection kept idle" % (len(clients) - 1),
            m.get("backstop_backend_pool_reuses_total") == len(clients) - 1 and
            m.get("backstop_backend_pool_reuse_failures_total") == 0 and
            m.get("backstop_backend_pool_idle") == 1 and m.get("backstop_backend_connections") == 1,
            {k: v for k, v in m.items() if "backend" in k})
    bs.stop()
    t.check("the kept connection is closed at shutdown (Postfix logs its disconnect)",
            pf.wait_log(r"disconnect from \S*\[%s\]" % re.escape(client_addr(clients[-1])), 5),
            pf.log(True)[-2000:])

with t.case("a client that aborts mid-DATA leaves no connection in the pool"):
    pf.clear_mail()
    bs = t.backstop({"backend": {"address": pf.address, "xclient": "on", "pool_size": "4"}})
    bs.wait_backend_known()
    pf.wait_log(r"disconnect from", 5)
    r = send_one(bs, 20)
    t.check("client 20: accepted", r is not None and r.code == 250, r)
    pf.wait_for_mail(1)
    pf.mark()
    bs.mark()
    # client 21 takes the kept connection and breaks off inside DATA
    c = bs.client(source=(client_addr(21), 0))
    c.cmd("EHLO client-21.example")
    t.check_reply("client 21: MAIL", c.cmd("MAIL FROM:<aborter@example.org>"), 250)
    t.check_reply("client 21: RCPT", c.cmd("RCPT TO:<user2@test.example>"), 250)
    t.check_reply("client 21: DATA", c.cmd("DATA"), 354)
    c.send(b"Subject: pool client 21 aborted\r\n\r\nhalf a message\r\n")
    time.sleep(0.3)
    c.close()
    t.check("backstop saw client 21 leave inside DATA",
            bs.wait_log(r"lost connection from \[%s\]" % re.escape(client_addr(21)), 5), bs.log()[-2000:])
    t.check("client 21 had reused the kept connection",
            bs.count_log(r"reusing a kept backend connection") == 1, bs.log()[-3000:])
    t.check("Postfix lost that connection (never kept by backstop)",
            pf.wait_log(r"lost connection after DATA", 5), pf.log(True)[-2000:])
    pf.mark()
    bs.mark()
    r = send_one(bs, 22)
    t.check("client 22: accepted", r is not None and r.code == 250, r)
    t.check("client 22 got a fresh backend connection", pf.count_log(CONNECT) == 1, pf.log(True)[-2000:])
    t.check("backstop reused nothing for client 22",
            bs.count_log(r"reusing a kept backend connection") == 0, bs.log()[-3000:])
    pf.settle(1.0)
    msgs = pf.messages()
    t.check("client 21's half message was never delivered",
            not any("aborted" in (m.msg.get("Subject") or "") for m in msgs), [m.msg.get("Subject") for m in msgs])
    seen = attribution(msgs)
    t.check("clients 20 and 22 attributed to their own addresses",
            sorted(n for n, ok, _ in seen if ok) == [20, 22], seen)
    bs.stop()

with t.case("a session that leaves a transaction: the next client's RSET comes first"):
    pf.clear_mail()
    bs = t.backstop({"backend": {"address": pf.address, "xclient": "on", "pool_size": "4"}})
    bs.wait_backend_known()
    pf.wait_log(r"disconnect from", 5)
    pf.mark()
    bs.mark()
    c = bs.client(source=(client_addr(30), 0))
    c.cmd("EHLO client-30.example")
    t.check_reply("client 30: MAIL", c.cmd("MAIL FROM:<s30@example.org>"), 250)
    t.check_reply("client 30: RCPT", c.cmd("RCPT TO:<user@test.example>"), 250)
    t.check_reply("client 30: RSET", c.cmd("RSET"), 250)
    c.cmd("QUIT")
    c.close()
    bs.wait_log(r"disconnect from \[%s\]" % re.escape(client_addr(30)), 5)
    r = send_one(bs, 31)
    t.check("client 31: accepted on the kept connection", r is not None and r.code == 250, r)
    t.check("one backend connection for both", pf.count_log(CONNECT) == 1, pf.log(True)[-2000:])
    t.check("the kept connection got RSET before XCLIENT",
            re.search(r"backend <- RSET\n.*backend -> 250.*\n.*backend <- XCLIENT .*ADDR=127\.0\.0\.31",
                      bs.log(True)) is not None, bs.log(True)[-3000:])
    msgs = pf.wait_for_mail(1)
    seen = attribution(msgs)
    t.check("client 31's message attributed to 127.0.0.31",
            len(seen) == 1 and seen[0][0] == 31 and seen[0][1], seen)
    bs.stop()

with t.case("a client that pipelines QUIT after its end of data: its connection is still kept"):
    # the QUIT is read in the callback of the backend's reply to the dot,
    # which once left that reply unread in the connection's buffer: never
    # reusable, QUIT instead (found by tests/fuzz/fuzz_backend_pool)
    pf.clear_mail()
    bs = t.backstop({"backend": {"address": pf.address, "xclient": "on", "pool_size": "4"}})
    bs.wait_backend_known()
    pf.wait_log(r"disconnect from", 5)
    pf.mark()
    bs.mark()
    c = bs.client(source=(client_addr(32), 0))
    c.cmd("EHLO client-32.example")
    t.check_reply("client 32: MAIL", c.cmd("MAIL FROM:<s32@example.org>"), 250)
    t.check_reply("client 32: RCPT", c.cmd("RCPT TO:<user@test.example>"), 250)
    t.check_reply("client 32: DATA", c.cmd("DATA"), 354)
    c.send(dot_stuff(make_message("pool client 32")) + b".\r\nQUIT\r\n")
    t.check_reply("client 32: end of data", c.reply(), 250)
    t.check_reply("client 32: QUIT", c.reply(), 221)
    c.close()
    bs.wait_log(r"disconnect from \[%s\]" % re.escape(client_addr(32)), 5)
    r = send_one(bs, 33)
    t.check("client 33: accepted", r is not None and r.code == 250, r)
    t.check("client 33 reused client 32's connection: one Postfix connection for both",
            bs.count_log(r"reusing a kept backend connection") == 1 and pf.count_log(CONNECT) == 1,
            bs.log(True)[-3000:])
    seen = attribution(pf.wait_for_mail(2))
    t.check("clients 32 and 33 attributed to their own addresses",
            sorted(n for n, ok, _ in seen if ok) == [32, 33], seen)
    bs.stop()

with t.case("XCLIENT refused on a kept connection: closed, a fresh one tried for the client"):
    # Postfix (inet_protocols = ipv4) answers 501 to XCLIENT ADDR=IPV6:...:
    # the kept connection of an IPv4 client is refused for an IPv6 one
    p4, p6 = free_port("127.0.0.1"), free_port("::1")
    bs = t.backstop({"backend": {"address": pf.address, "xclient": "on", "pool_size": "4"},
                     "server": {"listen": "127.0.0.1:%d [::1]:%d" % (p4, p6)}}, start=False)
    bs.port = p4
    bs.start()
    bs.wait_backend_known()
    pf.wait_log(r"disconnect from", 5)
    pf.mark()
    bs.mark()
    r = send_one(bs, 35)
    t.check("client 35 (IPv4): accepted", r is not None and r.code == 250, r)
    c = bs.client(host="::1", port=p6)
    c.cmd("EHLO client-v6.example")
    r = c.cmd("MAIL FROM:<v6@example.org>")
    t.check("the IPv6 client gets the fresh connection's refusal (451), as without a pool",
            r is not None and r.code == 451, r)
    t.check("the kept connection's refusal is logged and it is not reused",
            bs.wait_log(r"pooled backend connection refused XCLIENT: 501", 3), bs.log(True)[-3000:])
    t.check("then backstop connects afresh",
            bs.wait_log(r"pooled backend connection failed \(refused the connection\); connecting afresh", 3),
            bs.log(True)[-3000:])
    t.check("the fresh connection's refusal says what to fix",
            bs.wait_log(r"backend refused XCLIENT: 501 .*inet_protocols must include ipv6", 3),
            bs.log(True)[-3000:])
    t.check("Postfix saw the fresh connection: two connects in all",
            pf.wait_log(CONNECT, 3, count=2) and pf.count_log(CONNECT) == 2, pf.log(True)[-3000:])
    c.cmd("QUIT")
    c.close()
    bs.mark()
    r = send_one(bs, 36)
    t.check("client 36 (IPv4) afterwards: accepted", r is not None and r.code == 250, r)
    bs.stop()

with t.case("pool_idle: a kept connection unused for that long is closed"):
    bs = t.backstop({"backend": {"address": pf.address, "xclient": "on", "pool_size": "4",
                                 "pool_idle": "1s"}})
    bs.wait_backend_known()
    pf.wait_log(r"disconnect from", 5)
    pf.mark()
    r = send_one(bs, 40)
    t.check("client 40: accepted", r is not None and r.code == 250, r)
    t.check("the kept connection is closed after pool_idle (QUIT: Postfix logs quit=1)",
            pf.wait_log(r"disconnect from \S*\[127\.0\.0\.40\].*quit=1", 4), pf.log(True)[-2000:])
    pf.mark()
    r = send_one(bs, 41)
    t.check("client 41: accepted on a fresh connection",
            r is not None and r.code == 250 and pf.count_log(CONNECT) == 1, pf.log(True)[-2000:])
    bs.stop()

with t.case("the backend closes a kept connection (its smtpd_timeout): dropped, next client unharmed"):
    pf2 = t.postfix(extra_main="smtpd_timeout = 2s\n")
    bs = t.backstop({"backend": {"address": pf2.address, "xclient": "on", "pool_size": "4",
                                 "pool_idle": "60s"}})
    bs.wait_backend_known()
    pf2.wait_log(r"disconnect from", 5)
    pf2.mark()
    bs.mark()
    r = send_one(bs, 50)
    t.check("client 50: accepted", r is not None and r.code == 250, r)
    t.check("Postfix times the kept connection out",
            pf2.wait_log(r"timeout after (END-OF-MESSAGE|QUIT|RSET|EHLO|XCLIENT)", 6), pf2.log(True)[-2000:])
    t.check("backstop drops it: the backend's 421 or close is logged",
            bs.wait_log(r"backend (said 421|127\.0\.0\.1:\d+ closed the connection)", 3), bs.log()[-2000:])
    pf2.mark()
    bs.mark()
    r = send_one(bs, 51)
    t.check("client 51: accepted on a fresh connection, no pooled failure seen",
            r is not None and r.code == 250 and pf2.count_log(CONNECT) == 1, pf2.log(True)[-2000:])
    t.check("nothing was taken from the pool", bs.count_log(r"reusing a kept backend connection") == 0,
            bs.log()[-2000:])
    bs.stop()
    pf2.stop()

with t.case("a reload empties the pool"):
    bs = t.backstop({"backend": {"address": pf.address, "xclient": "on", "pool_size": "4"}})
    bs.wait_backend_known()
    pf.wait_log(r"disconnect from", 5)
    pf.mark()
    r = send_one(bs, 60)
    t.check("client 60: accepted", r is not None and r.code == 250, r)
    bs.mark()
    bs.signal(signal.SIGHUP)
    t.check("reloaded", bs.wait_log(r"reload: configuration .* loaded", 5), bs.log()[-2000:])
    t.check("the kept connection got QUIT at the reload",
            pf.wait_log(r"disconnect from \S*\[127\.0\.0\.60\].*quit=1", 4), pf.log(True)[-2000:])
    bs.stop()

with t.case("identity = proxy: a kept connection serves only a client of the same address"):
    # the PROXY header went first and names its client for the connection's
    # life: XCLIENT or not, another client must not inherit it
    pfp = t.postfix(proxy_protocol=True)
    bs = t.backstop({"backend": {"address": pfp.address, "identity": "proxy", "pool_size": "4"}})
    bs.wait_backend_known()
    pfp.wait_log(r"disconnect from", 5)
    pfp.mark()
    bs.mark()
    for n in (80, 81, 80):
        r = send_one(bs, n)
        t.check("client %d: accepted" % n, r is not None and r.code == 250, r)
    msgs = pfp.wait_for_mail(3)
    log_text = pfp.log(True)
    t.check("Postfix: one connection from 127.0.0.80 (reused by its second session), one from .81",
            len(re.findall(CONNECT + r"\S*\[127\.0\.0\.80\]", log_text)) == 1 and
            len(re.findall(CONNECT + r"\S*\[127\.0\.0\.81\]", log_text)) == 1 and
            pfp.count_log(CONNECT) == 2, log_text[-3000:])
    t.check("backstop reused once (client 80's second session), with RSET, no XCLIENT",
            bs.count_log(r"reusing a kept backend connection") == 1 and
            not re.search(r"backend <- XCLIENT", bs.log(True)), bs.log(True)[-3000:])
    # (the HELO Postfix records is backstop's own: PROXY carries no name)
    seen = attribution(msgs)
    t.check("every message attributed to its own client's address",
            sorted(n for n, _, top in seen if "[%s]" % client_addr(n) in top) == [80, 80, 81], seen)
    bs.stop()
    pfp.stop()

with t.case("a connection the backend refused a command on is not kept (its error count)"):
    # Postfix counts a connection's errors (smtpd_soft_error_limit: error
    # sleep; smtpd_hard_error_limit: 421) across XCLIENT and RSET: kept,
    # one client's refused recipients would tarpit or cut off the next
    pfe = t.postfix(extra_main="smtpd_soft_error_limit = 2\nsmtpd_hard_error_limit = 4\n"
                               "smtpd_error_sleep_time = 0\n")
    bs = t.backstop({"backend": {"address": pfe.address, "xclient": "on", "pool_size": "4"}})
    bs.wait_backend_known()
    pfe.wait_log(r"disconnect from", 5)
    pfe.mark()
    bs.mark()
    c = bs.client(source=(client_addr(90), 0))
    c.cmd("EHLO client-90.example")
    t.check_reply("client 90: MAIL", c.cmd("MAIL FROM:<s90@example.org>"), 250)
    for i in range(3):
        t.check_reply("client 90: unknown recipient %d refused" % i,
                      c.cmd("RCPT TO:<nobody%d@test.example>" % i), 550)
    t.check_reply("client 90: RSET", c.cmd("RSET"), 250)
    c.cmd("QUIT")
    c.close()
    bs.wait_log(r"disconnect from \[%s\]" % re.escape(client_addr(90)), 5)
    c = bs.client(source=(client_addr(91), 0))
    c.cmd("EHLO client-91.example")
    t.check_reply("client 91: MAIL", c.cmd("MAIL FROM:<s91@example.org>"), 250)
    t.check_reply("client 91: one unknown recipient refused", c.cmd("RCPT TO:<typo@test.example>"), 550)
    try:
        r = c.cmd("RCPT TO:<user@test.example>")
    except (Closed, OSError) as e:
        r = e
    t.check("client 91's next recipient is accepted, not cut off by client 90's errors",
            getattr(r, "code", None) == 250, (r, pfe.log(True)[-1500:]))
    c.close()
    t.check("client 91 got a fresh backend connection", bs.count_log(r"reusing a kept backend connection") == 0,
            bs.log(True)[-2000:])
    bs.stop()
    pfe.stop()

with t.case("a connection is retired before the RSETs it carried make Postfix slow down the next client"):
    # Postfix counts RSET and NOOP per connection, across XCLIENT, until a
    # message is accepted; past smtpd_junk_command_limit each is an error,
    # and past smtpd_soft_error_limit every reply waits smtpd_error_sleep_time
    pfj = t.postfix(extra_main="smtpd_junk_command_limit = 50\nsmtpd_soft_error_limit = 1\n"
                               "smtpd_hard_error_limit = 100\nsmtpd_error_sleep_time = 1s\n")
    bs = t.backstop({"backend": {"address": pfj.address, "xclient": "on", "pool_size": "4"}})
    bs.wait_backend_known()
    pfj.wait_log(r"disconnect from", 5)
    bs.mark()
    slow = []
    for i in range(60):
        t0 = time.time()
        c = bs.client(source=(client_addr(100 + i % 100), 0))
        c.cmd("EHLO client-%d.example" % i)
        r1 = c.cmd("MAIL FROM:<j%d@example.org>" % i)
        r2 = c.cmd("RCPT TO:<user@test.example>")
        c.cmd("RSET")   # a transaction left at the backend: RSET at the next use
        c.cmd("QUIT")
        c.close()
        took = time.time() - t0
        if took > 0.8 or r1.code != 250 or r2.code != 250:
            slow.append((i, round(took, 2), r1.code, r2.code))
    t.check("no client of the 60 was slowed down or refused for the RSETs of those before it",
            not slow, (slow, pfj.log(True)[-1500:]))
    t.check("the connections were reused meanwhile", bs.count_log(r"reusing a kept backend connection") >= 40,
            bs.count_log(r"reusing a kept backend connection"))
    bs.stop()
    pfj.stop()

with t.case("pool_size = 0: one backend connection per client, as before"):
    pf.clear_mail()
    bs = t.backstop({"backend": {"address": pf.address, "xclient": "on", "pool_size": "0"}})
    bs.wait_backend_known()
    pf.wait_log(r"disconnect from", 5)
    pf.mark()
    bs.mark()
    for n in (70, 71, 72):
        r = send_one(bs, n)
        t.check("client %d: accepted" % n, r is not None and r.code == 250, r)
    msgs = pf.wait_for_mail(3)
    t.check("three Postfix connections for three clients", pf.count_log(CONNECT) == 3, pf.log(True)[-3000:])
    t.check("each one QUIT at its client's end",
            pf.wait_log(r"disconnect from .*quit=1", 3, count=3), pf.log(True)[-3000:])
    seen = attribution(msgs)
    t.check("each attributed", sorted(n for n, ok, _ in seen if ok) == [70, 71, 72], seen)
    t.check("no reuse logged", bs.count_log(r"reusing a kept backend connection") == 0)
    bs.stop()

t.done()

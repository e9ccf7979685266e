#!/usr/bin/python3
"""xclient: backstop passes the real client to Postfix with XCLIENT, so
Postfix logs and checks the client's address and HELO, not backstop's. The
client runs in its own network namespace (198.51.100.x), so the address is
distinguishable from backstop's own 127.0.0.1. With xclient = off Postfix
sees 127.0.0.1."""
import re
from harness import *

t = Test("xclient", need=("postfix", "swaks", "ip"))
pf = t.postfix()
ns = t.netns()
log("# client %s -> backstop on %s" % (ns.addr, ns.host_addr))

for mode in ("auto", "on", "off"):
    with t.case("xclient = %s" % mode):
        pf.clear_mail()
        pf.mark()
        port = free_port(ns.host_addr)
        bs = t.backstop({"backend": {"address": pf.address, "xclient": mode},
                         "server": {"listen": "%s:%d 127.0.0.1:%d" % (ns.host_addr, port, free_port())}})
        bs.port, bs.host = port, ns.host_addr
        rc, out = swaks(ns.host_addr, port, "--from", "sender@example.org", "--to", "user@test.example",
                        "--header", "Subject: xclient %s" % mode, netns=ns)
        t.check("%s: swaks from the namespace exits 0" % mode, rc == 0, out)
        msgs = pf.wait_for_mail(1)
        t.check("%s: delivered" % mode, len(msgs) == 1, msgs)
        if not msgs:
            bs.stop()
            continue
        m = msgs[0]
        rcv = backstop_received(m) or ""
        t.check("%s: backstop's Received names %s" % (mode, ns.addr), "[%s]" % ns.addr in rcv, rcv)
        top = re.sub(r"\s+", " ", m.headers("Received")[0])
        if mode == "off":
            t.check("off: Postfix logs client=...[127.0.0.1]",
                    pf.wait_log(r"client=\S*\[127\.0\.0\.1\]"), pf.log(True))
            t.check("off: Postfix never logs the client's address",
                    ns.addr not in pf.log(True), pf.log(True))
            t.check("off: Postfix's Received shows 127.0.0.1", "[127.0.0.1]" in top, top)
        else:
            rx = r"client=\S*\[%s\]" % re.escape(ns.addr)
            t.check("%s: Postfix logs client=...[%s]" % (mode, ns.addr), pf.wait_log(rx), pf.log(True))
            t.check("%s: Postfix's Received shows the client's address and HELO" % mode,
                    "[%s]" % ns.addr in top and CLIENT_HELO in top, top)
            t.check("%s: Postfix's Received not from 127.0.0.1" % mode, "[127.0.0.1]" not in top, top)
            t.check("%s: no XCLIENT refusal in Postfix's log" % mode,
                    "insufficient authorization" not in pf.log(True), pf.log(True))
        bs.stop()

with t.case("backend does not authorize backstop for XCLIENT"):
    # Postfix offers XCLIENT only to smtpd_authorized_xclient_hosts
    pf2 = t.postfix(extra_main="smtpd_authorized_xclient_hosts =\n")
    pf2.mark()
    bs = t.backstop({"backend": {"address": pf2.address, "xclient": "on"}})
    c = bs.client()
    c.ehlo()
    # the backend cannot take the client's identity: a temporary failure
    # of the route to it (RFC 3463 4.4.x), so the sender retries
    r = c.cmd("MAIL FROM:<sender@example.org>")
    t.check_reply("xclient = on: MAIL gets 451 4.4.x", r, 451, "")
    log("# xclient = on, not authorized: %s" % r)
    t.check("xclient = on: the enhanced code is 4.4.x", r.esc is not None and r.esc.startswith("4.4."), r)
    t.check("xclient = on: still in sync: RSET 250", c.cmd("RSET").code == 250)
    t.check("xclient = on: the log says what to fix",
            bs.wait_log(r"does not offer XCLIENT but \[backend\] xclient = on .*smtpd_authorized_xclient_hosts", 2),
            bs.log()[-1500:])
    c.cmd("QUIT")
    t.check("xclient = on: Postfix never took a MAIL from backstop's address",
            not re.search(r"client=\S*\[127\.0\.0\.1\]", pf2.log(True)), pf2.log(True))
    bs.stop()
    bs = t.backstop({"backend": {"address": pf2.address, "xclient": "auto"}})
    c = bs.client()
    c.ehlo()
    rs = c.mail_transaction("sender@example.org", ["user@test.example"], make_message("auto, no xclient"))
    t.check_reply("xclient = auto: relayed as backstop", rs[-1], 250)
    c.cmd("QUIT")
    t.check("xclient = auto: a warning says the backend sees backstop's address",
            bs.wait_log(r"offers neither XCLIENT nor XFORWARD: it sees every client as backstop's own address", 2),
            bs.log()[-1500:])
    bs.stop()

with t.case("XFORWARD fallback (smtp-sink -C offers XFORWARD only)"):
    sink = t.sink("-C")
    port = free_port(ns.host_addr)
    bs = t.backstop({"backend": {"address": sink.address},
                     "server": {"listen": "%s:%d" % (ns.host_addr, port)}})
    rc, out = swaks(ns.host_addr, port, "--from", "sender@example.org", "--to", "user@example.org", netns=ns)
    t.check("swaks exits 0", rc == 0, out)
    t.check("backstop sent XFORWARD with ADDR=%s (debug log of the backend dialogue)" % ns.addr,
            bs.wait_log(r"XFORWARD .*ADDR=%s" % re.escape(ns.addr), 2), bs.log()[-2000:])
    t.check("and no XCLIENT", not re.search(r"<- XCLIENT", bs.log()), bs.log()[-2000:])
    bs.stop()

with t.case("two transactions, one XCLIENT: the second also carries the client"):
    pf.clear_mail()
    pf.mark()
    port = free_port(ns.host_addr)
    bs = t.backstop({"backend": {"address": pf.address},
                     "server": {"listen": "%s:%d" % (ns.host_addr, port)}})
    c = ns.client(ns.host_addr, port)
    t.defer(c.close)
    c.greeting()
    c.ehlo()
    r1 = c.mail_transaction("a@example.org", ["user@test.example"], make_message("x1"))
    r2 = c.mail_transaction("b@example.org", ["user2@test.example"], make_message("x2"))
    t.check("both accepted", r1[-1].code == 250 and r2[-1].code == 250, (r1, r2))
    c.cmd("QUIT")
    msgs = pf.wait_for_mail(2)
    tops = [re.sub(r"\s+", " ", m.headers("Received")[0]) for m in msgs]
    t.check("both Postfix Received headers show %s" % ns.addr,
            len(tops) == 2 and all("[%s]" % ns.addr in x for x in tops), tops)
    bs.stop()

t.done()

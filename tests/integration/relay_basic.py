#!/usr/bin/python3
"""relay_basic: mail relayed through backstop to a real Postfix arrives with
backstop's Received header; the final 250 names the backend's queue id and
backstop's session id; the backend connection is opened lazily and reused
for a session's later transactions; EHLO advertises the ESMTP extensions."""
import re
import smtplib
from harness import *

t = Test("relay_basic", need=("postfix", "swaks"))
pf = t.postfix()
bs = t.backstop({"backend": {"address": pf.address},
                 "limits": {"max_message_size": "1m", "data_buffer": "4k"}})
# EHLO promises SMTPUTF8 and DSN once backstop knows the backend offers
# them: its start-up probe learns that (slow under ASan on a loaded machine)
t.check("start-up probe learnt the backend's capabilities",
        bs.wait_log(r"backend probe: EHLO answered", 20))

with t.case("greeting and EHLO"):
    c = bs.client()
    g = c.greeting_reply
    t.check("greeting is 220 with the configured hostname",
            g.code == 220 and g.lines[0].startswith(BACKSTOP_HOSTNAME), g)
    r = c.ehlo()
    t.check_reply("EHLO 250", r, 250)
    kw = [l.upper() for l in r.lines[1:]]
    for ext in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"):
        t.check("EHLO advertises %s" % ext, ext in kw, r)
    t.check("EHLO advertises SIZE 1048576", "SIZE 1048576" in kw, r)
    t.check("EHLO advertises SMTPUTF8 (Postfix offers it)", "SMTPUTF8" in kw, r)
    t.check("EHLO advertises DSN (Postfix offers it)", "DSN" in kw, r)
    t.check("EHLO does not advertise XCLIENT/XFORWARD to clients",
            not any(k.startswith(("XCLIENT", "XFORWARD")) for k in kw), r)
    t.check_reply("NOOP 250 2.0.0", c.cmd("NOOP"), 250, "2.0.0")
    t.check_reply("RSET 250 2.0.0", c.cmd("RSET"), 250, "2.0.0")
    t.check_reply("VRFY 252", c.cmd("VRFY user"), 252, "")
    t.check_reply("HELP 214", c.cmd("HELP"), 214, "")
    t.check_reply("QUIT 221 2.0.0", c.cmd("QUIT"), 221, "2.0.0")
    t.check("connection closed after QUIT", c.closed_within(2))

with t.case("listens on IPv4 and IPv6 at once"):
    p4, p6 = free_port("127.0.0.1"), free_port("::1")
    b2 = t.backstop({"backend": {"address": pf.address},
                     "server": {"listen": "127.0.0.1:%d [::1]:%d" % (p4, p6)}})
    for host, port in (("127.0.0.1", p4), ("::1", p6)):
        c = SmtpClient(host, port)
        t.defer(c.close)
        t.check_reply("greeting on %s port %d" % (host, port), c.greeting(), 220)
        c.cmd("QUIT")
    b2.stop()

with t.case("lazy backend connection: no transaction, no backend connect"):
    pf.mark()
    c = bs.client()
    c.ehlo()
    c.cmd("NOOP")
    c.cmd("MAIL FROM:bad-syntax")
    c.cmd("QUIT")
    c.closed_within(2)
    t.check("Postfix saw no connection",
            not pf.wait_log(r"smtpd\[\d+\]: connect from", timeout=1.0), pf.log(True))

with t.case("swaks: delivered with backstop's Received header"):
    pf.mark()
    bs.mark()
    rc, out = swaks(bs.host, bs.port, "--from", "sender@example.org", "--to", "user@test.example",
                    "--header", "Subject: swaks relay test")
    t.check("swaks exits 0", rc == 0, out)
    msgs = pf.wait_for_mail(1)
    t.check("one message delivered to user", len(msgs) == 1 and msgs[0].mailbox == "user", msgs)
    m = msgs[0]
    rcv = backstop_received(m)
    t.check("backstop's Received header present", rcv is not None, m.headers("Received"))
    t.check("Received names the client's HELO", CLIENT_HELO in (rcv or ""), rcv)
    t.check("Received names the client's address", "127.0.0.1" in (rcv or ""), rcv)
    t.check("Received has 'with' protocol ESMTP", re.search(r"\bwith E?SMTP", rcv or "") is not None, rcv)
    sid = received_id(rcv)
    t.check("Received has an id (session id)", sid is not None, rcv)
    t.check("Received below Postfix's own", m.headers("Received")[0].find("backend.test.example") >= 0,
            m.headers("Received"))
    final = [l for l in out.splitlines() if re.match(r"\s*<[-~]\s+250 ", l)]
    qid = postfix_queue_id(m)
    dot250 = [l for l in final if qid and qid in l]
    t.check("final 250 contains Postfix's queue id %s" % qid, bool(dot250), "\n".join(final))
    t.check("final 250 contains backstop's session id %s" % sid,
            bool(dot250) and sid is not None and sid in dot250[0], "\n".join(final))
    t.check("backstop log mentions the session id", sid is not None and sid in bs.log(True),
            bs.log(True)[-2000:])
    summary = [l for l in bs.log(True).splitlines()
               if qid and qid in l and "sender@example.org" in l and "user@test.example" in l]
    t.check("one summary line for the transaction", len(summary) == 1, bs.log(True)[-3000:])
    sl = summary[0] if summary else ""
    for what, val in (("session id", sid or "?"), ("client address", "127.0.0.1"), ("HELO", CLIENT_HELO),
                      ("size", "size="), ("duration", "duration=")):
        t.check("summary line has the %s" % what, val in sl, sl)

with t.case("smtplib: three transactions on one session share one backend connection"):
    pf.clear_mail()
    pf.mark()
    s = smtplib.SMTP(bs.host, bs.port, local_hostname=CLIENT_HELO, timeout=10)
    codes = []
    for i in range(3):
        s.mail("sender@example.org")
        s.rcpt("user%s@test.example" % ("" if i == 0 else str(i + 1)))
        codes.append(s.data(make_message("smtplib %d" % i, to="user@test.example"))[0])
    s.quit()
    t.check("all three accepted", codes == [250, 250, 250], codes)
    msgs = pf.wait_for_mail(3)
    t.check("three messages delivered", len(msgs) == 3, msgs)
    t.check("to user, user2, user3", sorted(m.mailbox for m in msgs) == ["user", "user2", "user3"],
            [m.mailbox for m in msgs])
    # the connection may be one the previous case's session left in the
    # pool ([backend] pool_size): at most one connect, one smtpd for all
    n = pf.count_log(r"smtpd\[\d+\]: connect from")
    t.check("Postfix logged at most one connect", n <= 1, pf.log(True))
    pids = set(re.findall(r"smtpd\[(\d+)\]: \w+: client=", pf.log(True)))
    t.check("one smtpd process took all three", len(pids) == 1, pf.log(True))

with t.case("HELO (not EHLO) session"):
    pf.clear_mail()
    c = bs.client()
    t.check_reply("HELO 250", c.cmd("HELO " + CLIENT_HELO), 250)
    rs = c.mail_transaction("sender@example.org", ["user@test.example"], make_message("helo"))
    t.check_reply("delivered after HELO", rs[-1], 250)
    c.cmd("QUIT")
    t.check("message arrived", len(pf.wait_for_mail(1)) == 1)

with t.case("dot-stuffing and 8-bit content arrive intact"):
    pf.clear_mail()
    body = ("first\n.leading dot\n..two dots\n.\nx.\n" "caf\u00e9 8-bit \u00fc\n" "last\n")
    msg = make_message("stuffing", body=body,
                       extra_headers=("MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
                                      "Content-Transfer-Encoding: 8bit"))
    c = bs.client()
    c.ehlo()
    t.check_reply("MAIL BODY=8BITMIME", c.cmd("MAIL FROM:<sender@example.org> BODY=8BITMIME"), 250)
    c.cmd("RCPT TO:<user@test.example>")
    t.check_reply("DATA 354", c.cmd("DATA"), 354)
    c.send(dot_stuff(msg) + b".\r\n")
    t.check_reply("accepted", c.reply(), 250)
    c.cmd("QUIT")
    m = pf.wait_for_mail(1)
    want = body.encode()
    t.check("body arrives byte-identical (unstuffed)", m and m[0].body() == want,
            (m[0].body() if m else None, want))

with t.case("SMTPUTF8 and DSN parameters pass through to Postfix"):
    pf.clear_mail()
    pf.mark()
    c = bs.client()
    c.ehlo()
    t.check_reply("MAIL ... SMTPUTF8 RET=HDRS ENVID",
                  c.cmd("MAIL FROM:<sender@example.org> SMTPUTF8 RET=HDRS ENVID=env123"), 250)
    t.check_reply("RCPT ... NOTIFY ORCPT",
                  c.cmd("RCPT TO:<user@test.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;user@test.example"), 250)
    t.check_reply("DATA", c.cmd("DATA"), 354)
    c.send(dot_stuff(make_message("utf8", body="gr\u00fc\u00dfe \u2603\n")) + b".\r\n")
    t.check_reply("accepted", c.reply(), 250)
    c.cmd("QUIT")
    m = pf.wait_for_mail(1)
    t.check("UTF-8 body intact", m and "gr\u00fc\u00dfe \u2603".encode() in m[0].body(), m and m[0].body())

with t.case("log lines all have the one log form (no raw newlines from peers)"):
    bad = [l for l in bs.log().splitlines()
           if l and not re.match(r"^\S+ backstop\[\d+\]: ", l)]
    t.check("every log line starts with 'time backstop[pid]: '", not bad, bad[:5])

with t.case("message larger than data_buffer arrives intact"):
    pf.clear_mail()
    lines = ["line %06d %s" % (i, "x" * 60) for i in range(5000)]  # ~360 KB
    body = "\n".join(lines) + "\n"
    c = bs.client()
    c.ehlo()
    rs = c.mail_transaction("sender@example.org", ["user@test.example"], make_message("big", body=body))
    t.check_reply("big message accepted", rs[-1], 250)
    c.cmd("QUIT")
    m = pf.wait_for_mail(1)
    t.check("big body byte-identical", m and m[0].body() == body.encode(),
            len(m[0].body()) if m else None)

bs.stop()
t.done()

#!/usr/bin/python3
"""size_limit: RFC 1870 SIZE is advertised and enforced at MAIL (552 5.3.4)
and during DATA (552 5.3.4, and the backend never gets the message); the
session goes on afterwards."""
from harness import *

LIMIT = 64 * 1024
t = Test("size_limit", need=("postfix",))
pf = t.postfix()
bs = t.backstop({"backend": {"address": pf.address},
                 "limits": {"max_message_size": "64k", "data_buffer": "4k"}})


def msg_of(size, subject):
    line = "x" * 70 + "\n"
    return make_message(subject, body=line * (size // 72 + 1))


with t.case("SIZE at MAIL"):
    c = bs.client()
    r = c.ehlo()
    t.check("EHLO advertises SIZE %d" % LIMIT, "SIZE %d" % LIMIT in [l.upper() for l in r.lines], r)
    r = c.cmd("MAIL FROM:<sender@example.org> SIZE=%d" % (LIMIT + 1))
    t.check_reply("SIZE=limit+1 refused 552 5.3.4", r, 552, "5.3.4")
    r = c.cmd("MAIL FROM:<sender@example.org> SIZE=99999999999999999999")
    t.check_reply("SIZE=huge refused 552 5.3.4 (or 501/555)", r, 5)
    # 2^64 + 1000: a parser that wraps would take it for SIZE=1000
    r = c.cmd("MAIL FROM:<sender@example.org> SIZE=18446744073709552616")
    t.check_reply("SIZE=2^64+1000 refused 552 5.3.4 (no wrap)", r, 552, "5.3.4")
    r = c.cmd("MAIL FROM:<sender@example.org> SIZE=abc")
    t.check_reply("SIZE=abc refused 501/555", r, 5)
    r = c.cmd("MAIL FROM:<sender@example.org> SIZE=1000")
    t.check_reply("SIZE=1000 accepted", r, 250)
    c.cmd("RSET")
    c.cmd("QUIT")

with t.case("message over the limit during DATA (no SIZE given)"):
    pf.mark()
    c = bs.client()
    c.ehlo()
    rs = c.mail_transaction("sender@example.org", ["user@test.example"], msg_of(3 * LIMIT, "too big"))
    t.check_reply("over-limit message refused 552 5.3.4", rs[-1], 552, "5.3.4")
    # the session goes on
    rs = c.mail_transaction("sender@example.org", ["user2@test.example"], msg_of(LIMIT // 2, "fits"))
    t.check_reply("next message on the same session accepted", rs[-1], 250)
    c.cmd("QUIT")
    msgs = pf.wait_for_mail(1)
    msgs = pf.settle(0.5)
    t.check("only the small message reached the backend",
            [m.mailbox for m in msgs] == ["user2"], [(m.mailbox, m.headers("Subject")) for m in msgs])
    t.check("Postfix queued exactly one message", pf.queued_count() == 1, pf.log(True))

with t.case("lying SIZE: declared small, sent big"):
    pf.clear_mail()
    pf.mark()
    c = bs.client()
    c.ehlo()
    t.check_reply("MAIL SIZE=100", c.cmd("MAIL FROM:<sender@example.org> SIZE=100"), 250)
    c.cmd("RCPT TO:<user@test.example>")
    t.check_reply("DATA", c.cmd("DATA"), 354)
    c.send(dot_stuff(msg_of(LIMIT + 4096, "liar")) + b".\r\n")
    t.check_reply("refused 552 5.3.4", c.reply(), 552, "5.3.4")
    c.cmd("QUIT")
    t.check("nothing at the backend", pf.settle(0.5) == [] and pf.queued_count() == 0, pf.log(True))

with t.case("just over the limit by a few bytes"):
    pf.mark()
    c = bs.client()
    c.ehlo()
    rs = c.mail_transaction("sender@example.org", ["user@test.example"], msg_of(LIMIT + 200, "edge"))
    t.check_reply("limit+200 bytes refused 552 5.3.4", rs[-1], 552, "5.3.4")
    c.cmd("QUIT")
    t.check("nothing at the backend", pf.settle(0.3) == [] and pf.queued_count() == 0)

bs.stop()
t.done()

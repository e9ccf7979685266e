#!/usr/bin/python3
"""backend_refusal: the backend's verdicts reach the client unchanged (code,
enhanced code, text): Postfix's 550 5.1.1 for an unknown user and 550 5.7.1
for a foreign domain at RCPT, Postfix's refusal at end of data (header_checks:
the content reached Postfix, which keeps nothing, and the session goes on),
smtp-sink's refusals at MAIL and at end of data (soft and hard, with custom
replies)."""
from harness import *

t = Test("backend_refusal", need=("postfix", "smtp-sink"))
pf = t.postfix()
bs = t.backstop({"backend": {"address": pf.address}})

with t.case("Postfix refusals at RCPT pass through"):
    c = bs.client()
    c.ehlo()
    t.check_reply("MAIL 250", c.cmd("MAIL FROM:<sender@example.org>"), 250)
    r = c.cmd("RCPT TO:<nosuchuser@test.example>")
    t.check_reply("unknown user: 550 5.1.1", r, 550, "5.1.1")
    t.check("unknown user: Postfix's text", "User unknown in virtual mailbox table" in r.text, r)
    r = c.cmd("RCPT TO:<someone@elsewhere.example.net>")
    t.check_reply("foreign domain: 550 5.7.1", r, 550, "5.7.1")
    t.check("foreign domain: Postfix's text", "outbound delivery disabled in tests" in r.text, r)
    r = c.cmd("DATA")
    t.check("DATA without an accepted recipient refused (503/554)",
            r.code in (503, 554) and r.esc is not None, r)
    t.check_reply("RSET", c.cmd("RSET"), 250)

    # mixed: one good, one bad recipient -> delivered to the good one only
    pf.mark()
    rs = c.mail_transaction("sender@example.org", ["user@test.example", "nosuch@test.example"],
                            make_message("mixed"))
    t.check_reply("mixed: good rcpt 250", rs[1], 250)
    t.check_reply("mixed: bad rcpt 550 5.1.1", rs[2], 550, "5.1.1")
    t.check_reply("mixed: message accepted", rs[-1], 250)
    c.cmd("QUIT")
    msgs = pf.wait_for_mail(1)
    t.check("mixed: delivered once, to user", [m.mailbox for m in pf.settle(0.5)] == ["user"],
            [m.mailbox for m in msgs])
    t.check("Postfix logged the refusal", pf.wait_log(r"reject: RCPT from .*nosuch@test\.example"),
            pf.log(True))

with t.case("only recipient refused: DATA refused, nothing at the backend"):
    pf.clear_mail()
    pf.mark()
    c = bs.client()
    c.ehlo()
    rs = c.mail_transaction("sender@example.org", ["nosuch@test.example"], make_message("refused"))
    t.check_reply("only recipient refused 550", rs[-1], 550, "5.1.1")
    t.check_reply("DATA then refused", c.cmd("DATA"), 5)
    c.cmd("QUIT")
    t.check("no message at Postfix", pf.settle(0.5) == [] and pf.queued_count() == 0)

with t.case("refused at end of data, after the content reached the backend: nothing kept"):
    # Postfix's cleanup reads the whole content and refuses it at the dot
    pf2 = t.postfix(extra_main="header_checks = regexp:{ {/^X-Refuse-Me:/ "
                               "REJECT refused by the backend's header_checks} }\n")
    bs2 = t.backstop({"backend": {"address": pf2.address}})
    c = bs2.client()
    c.ehlo()
    rs = c.mail_transaction("sender@example.org", ["user@test.example"],
                            make_message("refused at eod", extra_headers=["X-Refuse-Me: yes"]))
    t.check("MAIL, RCPT 250, DATA 354: the content went to Postfix",
            [r.code for r in rs[:-1]] == [250, 250, 354], rs)
    t.check_reply("end of data: Postfix's 550 5.7.1", rs[-1], 550, "5.7.1")
    t.check("with Postfix's text", "refused by the backend's header_checks" in rs[-1].text, rs[-1])
    t.check("Postfix read the content and refused it at the dot",
            pf2.wait_log(r"reject: header X-Refuse-Me: yes .*refused by the backend's header_checks"),
            pf2.log(True))
    # the same session goes on: the next message is delivered, once
    t.check_reply("RSET 250", c.cmd("RSET"), 250)
    rs = c.mail_transaction("sender@example.org", ["user@test.example"], make_message("after the refusal"))
    t.check_reply("the next message in the session: 250", rs[-1], 250)
    t.check_reply("QUIT 221", c.cmd("QUIT"), 221)
    pf2.wait_for_mail(1)
    msgs = pf2.settle(0.5)
    t.check("only the next message was delivered",
            [m.headers("Subject") for m in msgs] == [["after the refusal"]], msgs)
    t.check("Postfix queued exactly one message", pf2.queued_count() == 1, pf2.queued_count())
    bs2.stop()
    pf2.stop()

# smtp-sink refusals. -b/-B set the soft/hard reply text.
cases = [
    ("MAIL hard refused", ("-f", "MAIL", "-B", "553 5.7.9 sink says no sender"), "MAIL", 553, "5.7.9", "sink says no sender"),
    ("MAIL soft refused", ("-r", "MAIL", "-b", "451 4.7.9 sink says later"), "MAIL", 451, "4.7.9", "sink says later"),
    ("RCPT soft refused", ("-r", "RCPT", "-b", "450 4.2.1 mailbox busy"), "RCPT", 450, "4.2.1", "mailbox busy"),
    ("end of data hard refused", ("-f", ".", "-B", "554 5.6.0 content refused by sink"), ".", 554, "5.6.0", "content refused by sink"),
    ("end of data soft refused", ("-r", ".", "-b", "452 4.3.1 sink out of space"), ".", 452, "4.3.1", "sink out of space"),
    ("DATA hard refused", ("-f", "DATA", "-B", "554 5.5.0 no data today"), "DATA", 554, "5.5.0", "no data today"),
]
for name, opts, stage, code, esc, text in cases:
    with t.case("smtp-sink: " + name):
        sink = t.sink(*opts)
        b = t.backstop({"backend": {"address": sink.address}})
        c = b.client()
        c.ehlo()
        rs = c.mail_transaction("sender@example.org", ["user@example.org"], make_message(name))
        last = rs[-1]
        t.check_reply("%s: client gets %d %s" % (name, code, esc), last, code, esc)
        t.check("%s: with the backend's text" % name, text in last.text, last)
        t.check("%s: no earlier refusal" % name,
                all(r.code in (250, 354) for r in rs[:-1]), rs)
        t.check_reply("%s: session goes on (RSET)" % name, c.cmd("RSET"), 250)
        c.cmd("QUIT")
        if stage == ".":
            t.check("%s: no 250 for the message" % name, last.code != 250)
        b.stop()
        sink.stop()

bs.stop()
t.done()

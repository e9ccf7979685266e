#!/usr/bin/python3
"""errors_and_sequence: unknown command 500 5.5.1, bad sequence 503 5.5.1,
syntax errors 501 5.5.4 / 5.1.7 / 5.1.3, unsupported parameters 555 5.5.4,
over-long lines and NULs 500 5.5.2, too many errors 421 4.7.0 and close,
max_recipients 452 4.5.3, junk_command_limit (each with its exact code and enhanced code);
every reply after the greeting carries an RFC 3463 enhanced code; the
address parser accepts <>, quoted local parts and source routes."""
import re
from harness import *

t = Test("errors_and_sequence", need=("smtp-sink",))
sink = t.sink()
bs = t.backstop({"backend": {"address": sink.address},
                 "limits": {"max_errors": "20", "max_recipients": "3"},
                 "helo": {"required": "yes"}})

with t.case("sequence"):
    c = bs.client()
    t.check_reply("MAIL before EHLO: 503 5.5.1", c.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1")
    t.check_reply("EHLO", c.ehlo(), 250)
    t.check_reply("RCPT before MAIL: 503 5.5.1", c.cmd("RCPT TO:<user@example.org>"), 503, "5.5.1")
    t.check_reply("DATA before MAIL: 503 5.5.1", c.cmd("DATA"), 503, "5.5.1")
    t.check_reply("MAIL", c.cmd("MAIL FROM:<a@example.org>"), 250, "")
    t.check_reply("nested MAIL: 503 5.5.1", c.cmd("MAIL FROM:<b@example.org>"), 503, "5.5.1")
    t.check_reply("DATA before RCPT: 503 5.5.1", c.cmd("DATA"), 503, "5.5.1")
    c.cmd("QUIT")

with t.case("unknown commands and syntax"):
    c = bs.client()
    c.ehlo()
    t.check_reply("unknown command: 500 5.5.1", c.cmd("FROBNICATE now"), 500, "5.5.1")
    t.check_reply("EHLO without a name: 501 5.5.4", c.cmd("EHLO"), 501, "5.5.4")
    t.check_reply("EHLO with two words: 501 5.5.4", c.cmd("EHLO a b"), 501, "5.5.4")
    t.check_reply("HELO with two words: 501 5.5.4", c.cmd("HELO a b"), 501, "5.5.4")
    c.ehlo()
    t.check_reply("MAIL without FROM: 501 5.5.4", c.cmd("MAIL"), 501, "5.5.4")
    t.check_reply("MAIL FROM:<unterminated: 501 5.1.7 (bad sender address syntax)",
                  c.cmd("MAIL FROM:<a@example.org"), 501, "5.1.7")
    # RFC 5321 4.1.1.11 / RFC 3463 5.5.4: parameters not recognized
    t.check_reply("MAIL with an unknown parameter: 555 5.5.4", c.cmd("MAIL FROM:<a@example.org> FOO=BAR"),
                  555, "5.5.4")
    t.check_reply("still in sync after the refusals: MAIL 250", c.cmd("MAIL FROM:<a@example.org>"),
                  250, "2.1.0")
    c.cmd("QUIT")
    c = bs.client()
    c.ehlo()
    t.check_reply("MAIL", c.cmd("MAIL FROM:<a@example.org>"), 250)
    t.check_reply("RCPT TO:garbage: 501 5.1.3 (bad recipient address syntax)",
                  c.cmd("RCPT TO:user at example"), 501, "5.1.3")
    t.check_reply("lowercase commands accepted", c.cmd("rcpt to:<user@example.org>"), 250, "")
    t.check_reply("a 2000-byte unknown command (within the 2048 limit): 500 5.5.1",
                  c.cmd("X" * 2000), 500, "5.5.1")
    r = c.cmd("X" * 3000)
    t.check_reply("over-long line (3000 > 2048 bytes): 500 5.5.2", r, 500, "5.5.2")
    t.check("over-long line: says so", "line too long" in r.text, r)
    t.check_reply("still in sync after the overlong line", c.cmd("NOOP"), 250, "2.0.0")
    r = c.cmd(b"NO\x00OP")
    t.check_reply("NUL in a command: 500 5.5.2", r, 500, "5.5.2")
    t.check_reply("still in sync after the NUL", c.cmd("NOOP"), 250, "2.0.0")
    c.cmd("QUIT")

with t.case("addresses"):
    c = bs.client()
    c.ehlo()
    t.check_reply("null sender <>", c.cmd("MAIL FROM:<>"), 250, "")
    t.check_reply("quoted local part", c.cmd('RCPT TO:<"john doe"@example.org>'), 250, "")
    t.check_reply("source route accepted", c.cmd("RCPT TO:<@relay.example.net,@b.example.net:user@example.org>"), 250, "")
    c.cmd("DATA")
    c.send(dot_stuff(make_message("addresses")) + b".\r\n")
    t.check_reply("delivered", c.reply(), 250)
    c.cmd("QUIT")
    msgs = sink.wait_for(1)
    dump = msgs[-1] if msgs else b""
    t.check("sink got the null sender", b"X-Mail-Args: <>" in dump, dump[:400])
    t.check("sink got the quoted local part", b'X-Rcpt-Args: <"john doe"@example.org>' in dump, dump[:400])
    t.check("source route dropped towards the backend", b"X-Rcpt-Args: <user@example.org>" in dump, dump[:400])

with t.case("extensions follow the backend: smtp-sink offers DSN, not SMTPUTF8"):
    t.check("the start-up probe learnt the backend's EHLO", bs.wait_backend_known(), bs.log()[-1500:])
    c = bs.client()
    kw = [l.upper() for l in c.ehlo().lines[1:]]
    t.check("DSN advertised", "DSN" in kw, kw)
    t.check("SMTPUTF8 not advertised", "SMTPUTF8" not in kw, kw)
    t.check_reply("MAIL ... SMTPUTF8 refused: 555 5.5.4", c.cmd("MAIL FROM:<a@example.org> SMTPUTF8"),
                  555, "5.5.4")
    t.check_reply("MAIL with DSN parameters", c.cmd("MAIL FROM:<a@example.org> RET=HDRS ENVID=env42"), 250)
    t.check_reply("RCPT with DSN parameters",
                  c.cmd("RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.org"), 250)
    c.cmd("DATA")
    c.send(dot_stuff(make_message("dsn")) + b".\r\n")
    t.check_reply("delivered", c.reply(), 250)
    c.cmd("QUIT")
    found = sink.with_subject("dsn")
    dump = found[0] if found else b""
    t.check("sink got MAIL's RET and ENVID", re.search(rb"X-Mail-Args: <a@example.org> .*RET=HDRS", dump)
            and b"ENVID=env42" in dump, dump[:500])
    t.check("sink got RCPT's NOTIFY and ORCPT", re.search(
        rb"X-Rcpt-Args: <b@example.org> .*NOTIFY=SUCCESS,FAILURE", dump) and
        b"ORCPT=rfc822;b@example.org" in dump, dump[:500])
    bn = t.sink("-N")
    b2 = t.backstop({"backend": {"address": bn.address}})
    # before the probe's EHLO nothing is offered: the check below would pass for that reason
    t.check("the start-up probe learnt smtp-sink -N's EHLO", b2.wait_backend_known(), b2.log()[-1500:])
    c = b2.client()
    kw = [l.upper() for l in c.ehlo().lines[1:]]
    t.check("backend without DSN (smtp-sink -N): DSN not advertised", "DSN" not in kw, kw)
    c.cmd("QUIT")
    b2.stop()

with t.case("max_recipients = 3"):
    c = bs.client()
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.org>")
    codes = [c.cmd("RCPT TO:<u%d@example.org>" % i).code for i in range(3)]
    t.check("three recipients accepted", codes == [250] * 3, codes)
    t.check_reply("fourth: 452 4.5.3", c.cmd("RCPT TO:<u3@example.org>"), 452, "4.5.3")
    t.check_reply("DATA 354", c.cmd("DATA"), 354)
    before = len(sink.files())
    c.send(dot_stuff(make_message("rcpts")) + b".\r\n")
    t.check_reply("delivered to three", c.reply(), 250)
    # this transaction's dump, by its Subject (not "the last of at least 2":
    # earlier cases already left dumps, so that would not wait at all)
    msgs = sink.wait_for(before + 1)
    mine = [m for m in msgs if b"Subject: rcpts\r\n" in m or b"Subject: rcpts\n" in m]
    t.check("one dump of this transaction", len(mine) == 1, [m[:200] for m in msgs])
    t.check("the backend got three recipients",
            mine and mine[0].count(b"X-Rcpt-Args:") == 3, mine[0][:400] if mine else None)
    c.cmd("QUIT")

with t.case("max_errors = 5 -> 421 and close"):
    b5 = t.backstop({"backend": {"address": sink.address}, "limits": {"max_errors": "5"}})
    c = b5.client()
    c.ehlo()
    got, last = [], None
    for i in range(7):
        try:
            r = c.cmd("BOGUS%d" % i, timeout=3)
        except (Closed, OSError):
            got.append("closed")
            break
        got.append(r.code)
        last = r
        if r.code == 421:
            break
    # max_errors = 5: five errors are answered 500, the next command 421
    t.check("five errors get 500 5.5.1, the sixth command 421", got == [500] * 5 + [421], got)
    t.check_reply("the 421 is 421 4.7.0", last, 421, "4.7.0")
    t.check("connection closed after 421", c.closed_within(2))
    b5.stop()

with t.case("junk_command_limit = 4, max_errors = 2: RSET NOOP VRFY HELP past the limit are errors"):
    bj = t.backstop({"backend": {"address": sink.address},
                     "limits": {"junk_command_limit": "4", "max_errors": "2"}})
    c = bj.client()
    c.ehlo()
    got = [c.cmd(v).code for v in ("RSET", "NOOP", "VRFY user", "HELP")]
    t.check("four junk commands answered as usual", got == [250, 250, 252, 214], got)
    # a delivered message resets the count (as Postfix)
    replies = c.mail_transaction("a@example.org", ["user@example.org"], "Subject: j\r\n\r\nbody\r\n")
    t.check("a message is accepted", replies[-1].code == 250, replies[-1])
    got = [c.cmd(v).code for v in ("RSET", "NOOP", "RSET", "NOOP")]
    t.check("after it, four more junk commands answered as usual", got == [250] * 4, got)
    # past the limit each junk command counts as an error: two more, then 421
    got = []
    for v in ("RSET", "NOOP", "RSET"):
        try:
            got.append(c.cmd(v, timeout=3).code)
        except (Closed, OSError):
            got.append("closed")
            break
    t.check("the 5th and 6th are answered, then 421 (max_errors = 2)", got == [250, 250, 421], got)
    t.check("connection closed after 421", c.closed_within(2))
    t.check("the log says why", bj.wait_log(r"more than 4 junk commands"), bj.log()[-1500:])
    # 0: no limit
    b0 = t.backstop({"backend": {"address": sink.address},
                     "limits": {"junk_command_limit": "0", "max_errors": "2"}})
    c = b0.client()
    c.ehlo()
    got = [c.cmd("NOOP").code for i in range(30)]
    t.check("junk_command_limit = 0: 30 NOOPs all 250", got == [250] * 30, got)
    c.cmd("QUIT")
    bj.stop()
    b0.stop()

with t.case("max_errors = 3 counts over-long lines -> 421 and close"):
    # a line never completed never reached the max_errors check: over-long
    # lines got 500 after 500 until session_timeout
    b3 = t.backstop({"backend": {"address": sink.address}, "limits": {"max_errors": "3"}})
    c = b3.client()
    c.ehlo()
    got, last = [], None
    for i in range(6):
        try:
            last = c.cmd("X" * 3000, timeout=3)
            got.append(last.code)
        except (Closed, OSError):
            got.append("closed")
            break
        if last.code == 421:
            break
    t.check("three over-long lines get 500, the fourth 421", got == [500] * 3 + [421], got)
    t.check_reply("the 421 is 421 4.7.0", last, 421, "4.7.0")
    t.check("connection closed after 421", c.closed_within(2))
    # one over-long line is one error (it was counted twice)
    c = b3.client()
    c.ehlo()
    codes = [c.cmd("X" * 3000).code, c.cmd("BOGUS").code, c.cmd("NOOP").code]
    t.check("an over-long line and an unknown command are two errors: NOOP still 250", codes == [500, 500, 250],
            codes)
    c.cmd("QUIT")
    b3.stop()

with t.case("every reply after the greeting has an enhanced code"):
    c = bs.client()
    c.ehlo()
    rs = [c.cmd(x) for x in ("NOOP", "RSET", "VRFY someone", "HELP", "MAIL FROM:<a@example.org>",
                             "RCPT TO:<b@example.org>", "FOO", "MAIL FROM:<x@example.org>", "DATA")]
    c.send(dot_stuff(make_message("esc")) + b".\r\n")
    rs.append(c.reply())
    rs.append(c.cmd("QUIT"))
    bad = [r for r in rs if r.code != 354 and not r.esc_ok()]
    t.check("all replies carry x.y.z of their class", not bad, bad)

bs.stop()
t.done()

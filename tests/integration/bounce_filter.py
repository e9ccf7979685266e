#!/usr/bin/python3
"""bounce_filter: the bounce check ([bounce], filters/bounce.c) in front of a
real Postfix (issue 11).

Forged reports (a Postfix DSN and an Exim NDR quoting a spam run that used
user@test.example as its sender, an auto-reply from a non-null sender
answering a Message-ID we never sent) are refused in enforce mode with
550 5.7.1 after the content, before end of data is answered, and Postfix
keeps nothing of them (no cleanup, no queue, no delivery); in observe mode
they are delivered with an X-Backstop-Bounce field. Each kind of evidence
lets a genuine one through: a BATV-tagged recipient, the X-Backstop-Sig that
[outbound] put on the original (a real round trip: sent through [outbound],
delivered by Postfix, its headers quoted in the bounce), a tagged
Return-Path, our relay as the client of the topmost Received, an
In-Reply-To that left through [outbound]. Each is evidence only for the
address the original was sent from: the signature, the tagged Return-Path
and the sent Message-ID of user@'s message do not let a bounce to user2@
through (review 11), nor does a Received hop naming our relay below the
bouncing side's own, or our relay's name as a HELO. A report that quotes nothing follows
[bounce] unverifiable (refuse, mark, accept). postmaster@ and [bounce]
exempt are not judged. [batv] refuse_at = content lets a well-formed read
receipt or feedback report to an untagged recipient pass, while a forged DSN
is refused, also with [bounce] mode = off, and ordinary null-sender mail
still gets BATV's refusal; a report that only claims to be one (a DSN with
an MDN part, a report-type label, X-Apple-Unsubscribe, required fields
missing) is refused unless evidence says the original was ours. A vacation
reply without Auto-Submitted is judged; a mailing-list post pasting a
bounce is ordinary mail (issue 11 review: H2, H3, M2). The log
line of a refusal names the class, the original's sender, client address
and Message-ID, and what evidence was missing; the summary line carries
bounce=fail(dsn) / bounce=pass(dsn,tag)."""
import os
import re
from harness import *
from bounce_msgs import *

t = Test("bounce_filter", need=("postfix",), watchdog=150)

SECRET = "bounce-test-secret-0123456789"
kdir = t.tmpdir("keys")
KEYS = os.path.join(kdir, "batv.keys")
with open(KEYS, "w") as f:
    f.write("1 %s\n" % SECRET)
os.chmod(KEYS, 0o600)
state = t.tmpdir("state")

pf = t.postfix()
BATV = {"mode": "enforce", "domains": "test.example", "keys_file": KEYS, "sign_key": "1",
        "refuse_at": "content", "bounce_senders": "MAILER-DAEMON@*"}
RELAYS = "192.0.2.0/28"


def backstop(bounce, batv=None, outbound=False):
    sections = {"backend": {"address": pf.address}, "batv": dict(batv or BATV),
                "bounce": dict({"our_relays": RELAYS}, **bounce),
                "server": {"state_dir": state}}
    if outbound:
        sections["outbound"] = {"listen": "127.0.0.1:%d" % free_port(), "relay": pf.address}
    return t.backstop(sections)


enforce = backstop({"mode": "enforce", "unverifiable": "refuse", "exempt": "user3@test.example"},
                   outbound=True)
observe = backstop({"mode": "observe"}, batv=dict(BATV, mode="observe", refuse_at="data"))
# unverifiable applies where BATV does not decide: BATV off here
marking = backstop({"mode": "enforce", "unverifiable": "mark"}, batv=dict(BATV, mode="off"))
accepting = backstop({"mode": "enforce", "unverifiable": "accept"}, batv=dict(BATV, mode="off"))
batv_only = backstop({"mode": "off"})
# the same with a sent log ([outbound] on): In-Reply-To is then looked up
marking_sent = backstop({"mode": "enforce", "unverifiable": "mark"}, batv=dict(BATV, mode="off"),
                        outbound=True)
# [bounce] classes without autoreply: refuse_at = content still judges one
narrow = backstop({"mode": "enforce", "classes": "ndr dsn"})


def send(bs, mail_from, rcpt, body):
    """One transaction; the replies (MAIL, RCPT, DATA, end of data)."""
    c = bs.client()
    t.check_reply("EHLO", c.ehlo(), 250)
    rs = c.mail_transaction(mail_from, rcpt if isinstance(rcpt, list) else [rcpt], body)
    c.cmd("QUIT")
    return rs


def refused(name, bs, mail_from, rcpt, body, text=r"bounce for a message this domain did not send"):
    """Refused at end of data (MAIL, RCPT and DATA accepted), 550 5.7.1,
    and Postfix kept nothing."""
    pf.clear_mail()
    pf.mark()
    bs.mark()
    rs = send(bs, mail_from, rcpt, body)
    nrcpt = len(rcpt) if isinstance(rcpt, list) else 1
    t.check("%s: MAIL, RCPT, DATA accepted" % name,
            [r.code for r in rs[:-1]] == [250] * (1 + nrcpt) + [354], rs)
    last = rs[-1] if len(rs) == 3 + nrcpt else None
    t.check_reply("%s: 550 5.7.1 at end of data" % name, last, 550, "5.7.1")
    t.check("%s: the reply says why" % name, last is not None and re.search(text, last.text), last)
    pf.settle(0.3)
    t.check("%s: Postfix's cleanup saw no message" % name,
            pf.count_log(r"cleanup\[\d+\]: \w+: message-id=") == 0, pf.log(True)[-2000:])
    t.check("%s: nothing delivered" % name, pf.messages() == [], pf.messages())
    return last


def accepted(name, bs, mail_from, rcpt, body, user="user"):
    """Accepted and delivered; the delivered Message."""
    pf.clear_mail()
    pf.mark()
    bs.mark()
    rs = send(bs, mail_from, rcpt, body)
    t.check("%s: accepted (250 at end of data)" % name, [r.code for r in rs] == [250, 250, 354, 250], rs)
    msgs = pf.wait_for_mail(1, user=user)
    t.check("%s: delivered to %s" % (name, user), len(msgs) == 1, msgs)
    return msgs[0] if msgs else None


def note_in_summary(name, bs, note):
    t.check("%s: summary line has %s" % (name, note),
            bs.wait_log(r"checks=\[[^\]]*%s" % re.escape(note)), bs.log(True)[-2000:])


FORGED_MID = "<spam.4711@spammer.example>"
forged_orig = original_headers(mid=FORGED_MID)


def summary_checks(bs):
    """The checks=[...] of the last summary line since bs.mark()."""
    bs.wait_log(r"checks=\[")
    found = re.findall(r"checks=\[([^\]]*)\]", bs.log(True))
    return found[-1] if found else None


def feedback_report(rcpt="user@test.example", fields=("Feedback-Type: abuse", "User-Agent: fbl/1.0",
                                                       "Version: 1")):
    """An RFC 5965 feedback report (ARF) quoting a message of ours."""
    return crlf("""From: <fbl@remote.example>
To: <%(rcpt)s>
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARF.1"
Message-Id: <arf.1@remote.example>
Date: %(date)s

--ARF.1
Content-Type: text/plain

This is an email abuse report for a message received from 192.0.2.3.

--ARF.1
Content-Type: message/feedback-report

%(fields)s
Original-Mail-From: <user@test.example>

--ARF.1
Content-Type: text/rfc822-headers

From: <user@test.example>
Message-ID: <complained.1@test.example>
Subject: our newsletter

--ARF.1--
""" % {"rcpt": rcpt, "date": DATE, "fields": "\n".join(fields)})


# A member's post to a mailing list pasting a bounce, not '>'-quoted
# (issue 11 review, H3): a person's question, never an NDR
LIST_POST = """From: Alice Admin <alice@remote.example>
To: postfix-users@lists.example
Subject: Re: Why does my server reject this?
In-Reply-To: <q0@remote.example>
References: <q0@remote.example>
List-Id: <postfix-users.lists.example>
List-Post: <mailto:postfix-users@lists.example>
Precedence: list
Message-ID: <q1@remote.example>
Date: %s

Here is the bounce my users get back, what does it mean?

This is the mail system at host mail.remote.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<victim@remote.example>: host mx.remote.example[198.51.100.20] said: 550 5.1.1
    <victim@remote.example>: Recipient address rejected: User unknown

Final-Recipient: rfc822; victim@remote.example
Action: failed
Status: 5.1.1

Thanks, Alice
""" % DATE

with t.case("enforce: a forged DSN is refused before end of data is answered, Postfix keeps nothing"):
    r = refused("forged Postfix DSN", enforce, "", "user@test.example", postfix_dsn(forged_orig))
    t.check("reply names the recipient", r is not None and "<user@test.example>" in r.text, r)
    line = enforce.wait_log(r"bounce: refused dsn .*")
    log = enforce.log(True)
    m = re.search(r"bounce: refused dsn \([^)]*\) to user@test\.example: (.*)", log)
    t.check("one log line names the class and the recipient", m is not None, log[-3000:])
    detail = m.group(1) if m else ""
    for want in ["original from <user@test.example>", "client [203.0.113.66]",
                 "msgid " + FORGED_MID, "recipient: no BATV tag", "X-Backstop-Sig: none",
                 "Return-Path: none", "Received: the receiving hop (from 198.51.100.20) is not ours",
                 "Message-ID: 1 not sent from here by the recipient"]:
        t.check("log line: %s" % want, want in detail, detail)
    t.check("exactly one bounce log line", len(re.findall(r"bounce: refused", log)) == 1, log[-3000:])
    note_in_summary("forged DSN", enforce, "bounce=fail(dsn)")
    t.check("the BATV failure is in the summary too", "batv=fail(no_tag)" in log, log[-2000:])

with t.case("enforce: a forged Exim NDR (original quoted inline) is refused"):
    refused("forged Exim NDR", enforce, "", "user@test.example", exim_ndr(forged_orig))
    t.check("log: class ndr and the quoted original", enforce.wait_log(
        r"bounce: refused ndr .*original from <user@test\.example> client \[203\.0\.113\.66\]"),
        enforce.log(True)[-2000:])

with t.case("non-null sender: an auto-reply to a Message-ID we never sent is judged"):
    refused("forged vacation reply", enforce, "victim@remote.example", "user@test.example",
            vacation(FORGED_MID), text=r"auto-reply for a message this domain did not send")
    note_in_summary("vacation", enforce, "bounce=fail(autoreply)")
    refused("NDR from MAILER-DAEMON@ (bounce_senders)", enforce, "MAILER-DAEMON@mail.remote.example",
            "user@test.example", postfix_dsn(forged_orig))
    # no Auto-Submitted: the subject and In-Reply-To make it an auto-reply
    unmarked = b"\r\n".join(l for l in vacation(FORGED_MID).split(b"\r\n")
                             if not l.lower().startswith(b"auto-submitted"))
    refused("vacation reply without Auto-Submitted", enforce, "victim@remote.example",
            "user@test.example", unmarked, text=r"auto-reply for a message this domain did not send")
    note_in_summary("unmarked vacation", enforce, "bounce=fail(autoreply)")

with t.case("evidence: a BATV-tagged recipient"):
    tagged = py_tag("user@test.example", 1, SECRET)
    m = accepted("DSN to a tagged recipient", enforce, "", tagged, postfix_dsn(forged_orig, rcpt=tagged))
    note_in_summary("tagged", enforce, "bounce=pass(dsn,tag)")
    t.check("log: accepted with the evidence", enforce.wait_log(
        r"bounce: dsn \([^)]*\) to prvs=\S+ accepted: recipient has a valid BATV tag"),
        enforce.log(True)[-2000:])

with t.case("evidence: our relay in the original's Received chain"):
    orig = original_headers(received=[
        "from relay-out.test.example (relay-out.test.example [192.0.2.3])\n\tby mx.remote.example"
        " with ESMTPS id 1;\n\t" + DATE,
        "from pc.test.example (pc [10.0.0.5])\n\tby relay-out.test.example with ESMTP id 2;\n\t" + DATE])
    accepted("DSN via our relay (its address)", enforce, "", "user@test.example", postfix_dsn(orig))
    note_in_summary("relay", enforce, "bounce=pass(dsn,relay)")
    orig = original_headers(received=[
        "from unnamed (unknown [192.0.2.9])\n\tby mx.remote.example with ESMTP id 1;\n\t" + DATE])
    accepted("Exim NDR via our relay (address in our_relays CIDR)", enforce, "", "user@test.example",
             exim_ndr(orig))
    orig = original_headers(received=[
        "from unnamed (unknown [192.0.2.99])\n\tby mx.remote.example with ESMTP id 1;\n\t" + DATE])
    refused("an address just outside our_relays", enforce, "", "user@test.example", postfix_dsn(orig))
    # review 11, 1d: hops below the bouncing side's own are the spammer's text
    orig = original_headers(received=[
        "from spamhost.example (unknown [203.0.113.66])\n\tby mx.remote.example; " + DATE,
        "from x by relay-out.test.example; " + DATE,
        "from pc.test.example (pc [192.0.2.5])\n\tby relay-out.test.example; " + DATE])
    refused("a forged hop naming our relay below the receiving one", enforce, "", "user@test.example",
            postfix_dsn(orig))
    # the name in "from" is the client's HELO for Postfix: the address decides
    orig = original_headers(received=[
        "from relay-out.test.example (unknown [203.0.113.66])\n\tby mx.remote.example; " + DATE])
    refused("our relay's name as the spammer's HELO", enforce, "", "user@test.example",
            postfix_dsn(orig))
    t.check("log: the receiving hop named", enforce.wait_log(
        r"bounce: refused dsn .*Received: the receiving hop \(from 203\.0\.113\.66\) is not ours"),
        enforce.log(True)[-2000:])
    # rereview of issue 11: the HELO is the client's word. Postfix writes
    # "from [HELO literal] (name [real address])" for a client that said
    # EHLO [192.0.2.3]; Exchange and qmail write the address unbracketed;
    # a hop without an address proves nothing, whatever its name
    for name, rcv in (("Postfix, HELO our relay's literal",
                       "from [192.0.2.3] (unknown [203.0.113.9])\n\tby mx.remote.example; "),
                      ("Exim, HELO our relay's literal",
                       "from [203.0.113.9] (helo=[192.0.2.3])\n\tby mx.remote.example; "),
                      ("qmail, HELO our relay's literal",
                       "from relay-out.test.example (HELO [192.0.2.3]) (203.0.113.66)\n\tby mx; "),
                      ("Exchange, our relay's name, another address",
                       "from relay-out.test.example (203.0.113.66) by mx.remote.example; "),
                      ("no address, our relay's name", "from relay-out.test.example by mx; ")):
        orig = original_headers(received=[rcv + DATE])
        refused(name, enforce, "", "user@test.example", postfix_dsn(orig))
    # the bouncing side's content filter (a loopback hop) on top is skipped
    orig = original_headers(received=[
        "from localhost (localhost [127.0.0.1])\n\tby mx.remote.example (amavis); " + DATE,
        "from relay-out.test.example (relay-out.test.example [192.0.2.3])\n\tby mx.remote.example"
        " with ESMTPS id 1;\n\t" + DATE])
    accepted("our relay below the bouncing side's content filter", enforce, "", "user@test.example",
             postfix_dsn(orig))

with t.case("evidence: a tagged Return-Path in the original"):
    orig = original_headers(return_path=py_tag("user@test.example", 1, SECRET))
    accepted("DSN quoting a tagged Return-Path", enforce, "", "user@test.example", postfix_dsn(orig))
    note_in_summary("rpath", enforce, "bounce=pass(dsn,rpath)")
    orig = original_headers(return_path=py_tag("user@test.example", 1, "not-our-secret"))
    refused("a Return-Path tag made with another secret", enforce, "", "user@test.example",
            postfix_dsn(orig))
    # review 11, 1b: user@'s tagged Return-Path is no evidence for user2@
    orig = original_headers(sender="user2@test.example",
                            return_path=py_tag("user@test.example", 1, SECRET))
    refused("user@'s tagged Return-Path in a bounce to user2@", enforce, "", "user2@test.example",
            postfix_dsn(orig, rcpt="user2@test.example"))
    t.check("log: the tag is not the recipient's", enforce.wait_log(
        r"bounce: refused dsn .*Return-Path: tagged, but for user@test\.example, not the recipient"),
        enforce.log(True)[-2000:])

with t.case("round trip: sent through [outbound], the bounce quotes its X-Backstop-Sig"):
    out_port = int(enforce.sections["outbound"]["listen"].rsplit(":", 1)[1])
    pf.clear_mail()
    sent_mid = "<roundtrip.%d@test.example>" % os.getpid()
    c = SmtpClient("127.0.0.1", out_port, 5)
    t.check_reply("outbound greeting", c.greeting(), 220)
    t.check_reply("outbound EHLO", c.ehlo(), 250)
    msg = crlf("From: <user@test.example>\nTo: <user2@test.example>\nSubject: hello\n"
               "Date: %s\nMessage-ID: %s\n\nHello.\n" % (DATE, sent_mid))
    rs = c.mail_transaction("user@test.example", ["user2@test.example"], msg)
    c.cmd("QUIT")
    c.close()
    t.check("sent through [outbound]", [r.code for r in rs] == [250, 250, 354, 250], rs)
    got = pf.wait_for_mail(1, user="user2")
    sig = got[0].headers("X-Backstop-Sig") if got else []
    t.check("[outbound] added X-Backstop-Sig", len(sig) == 1, got and got[0].header_block())
    if got and sig:
        # the original as the remote end saw it, without the (tagged)
        # Return-Path: the signature alone is the evidence
        hdr = got[0].header_block().decode().replace("\r\n", "\n")
        hdr = "\n".join(l for l in hdr.split("\n") if not l.startswith(("Return-Path:",
                        "Delivered-To:", "X-Original-To:"))) + "\n"
        accepted("DSN quoting the signed original", enforce, "", "user@test.example",
                 postfix_dsn(hdr))
        note_in_summary("sig", enforce, "bounce=pass(dsn,sig)")
        # the MAC is base64url: its first character may be '-' (not \w),
        # which once left the field unchanged and the check flaky
        forged = re.sub(r"(X-Backstop-Sig:.*\bs=)([A-Za-z0-9_-])", lambda m: m.group(1) +
                        ("A" if m.group(2) != "A" else "B"), hdr)
        t.check("the MAC was changed", forged != hdr, hdr)
        # its Message-ID is in the sent log: that, not the changed MAC, passes
        accepted("the same with the MAC changed", enforce, "", "user@test.example",
                 postfix_dsn(forged))
        note_in_summary("MAC changed", enforce, "bounce=pass(dsn,sent)")
        refused("the MAC changed and another Message-ID", enforce, "", "user@test.example",
                postfix_dsn(forged.replace(sent_mid, "<other.1@test.example>")))
        refused("the signed original with another Message-ID", enforce, "", "user@test.example",
                postfix_dsn(hdr.replace(sent_mid, "<other.2@test.example>")))
        t.check("log: X-Backstop-Sig: bad", enforce.wait_log(r"bounce: refused dsn .*X-Backstop-Sig: bad"),
                enforce.log(True)[-2000:])
        t.check("the Python bsig of the delivered fields is [outbound]'s",
                py_bsig(SECRET, 1, sent_mid, DATE, "user@test.example") ==
                re.sub(r"\s+", " ", sig[0]).strip(), (sig, py_bsig(SECRET, 1, sent_mid, DATE,
                                                                 "user@test.example")))
        accepted("an auto-reply answering the sent Message-ID (sent log)", enforce,
                 "victim@remote.example", "user@test.example", vacation(sent_mid))
        note_in_summary("sent", enforce, "bounce=pass(autoreply,sent)")
        # review 11, 1a and 1c: all of that is evidence for user@ only
        refused("user@'s signed original in a bounce to user2@", enforce, "", "user2@test.example",
                postfix_dsn(hdr, rcpt="user2@test.example"))
        t.check("log: the signature is not the recipient's", enforce.wait_log(
            r"bounce: refused dsn .* to user2@test\.example: .*X-Backstop-Sig: bad \(or not made for "
            r"this recipient\).*Message-ID: 1 not sent from here by the recipient"),
            enforce.log(True)[-2000:])
        refused("a spam run reusing user@'s sent Message-ID, bounced to user2@", enforce, "",
                "user2@test.example", postfix_dsn(original_headers(sender="user2@test.example",
                                                                   mid=sent_mid),
                                                  rcpt="user2@test.example"))
        refused("an auto-reply to user2@ answering user@'s sent Message-ID", enforce,
                "victim@remote.example", "user2@test.example",
                vacation(sent_mid, rcpt="user2@test.example"),
                text=r"auto-reply for a message this domain did not send")
        refused("a bounce to user@ and user2@ (the evidence must hold for each)", enforce, "",
                ["user@test.example", "user2@test.example"], postfix_dsn(hdr))

with t.case("unverifiable: a report that quotes nothing"):
    refused("unverifiable = refuse", enforce, "", "user@test.example", bare_ndr(),
            text=r"quotes nothing of the original")
    note_in_summary("unverifiable", enforce, "bounce=unverifiable(ndr)")
    m = accepted("unverifiable = mark", marking, "", "user@test.example", bare_ndr())
    t.check("marked X-Backstop-Bounce: unverifiable",
            m is not None and [h for h in m.headers("X-Backstop-Bounce") if h.startswith("unverifiable")],
            m and m.header_block())
    # an NDR that quotes nothing but carries In-Reply-To (any sender can add
    # one) stays unverifiable: the id is looked up, and not finding it is
    # no evidence against a report
    ndr_irt = bare_ndr().replace(b"Date: ", b"In-Reply-To: <never.sent.1@test.example>\r\nDate: ", 1)
    m = accepted("unverifiable = mark, NDR with In-Reply-To only", marking_sent, "", "user@test.example", ndr_irt)
    t.check("marked unverifiable, not refused as 'no evidence'",
            m is not None and [h for h in m.headers("X-Backstop-Bounce") if h.startswith("unverifiable")],
            m and m.headers("X-Backstop-Bounce"))
    m = accepted("unverifiable = accept", accepting, "", "user@test.example", bare_ndr())
    t.check("not marked", m is not None and m.headers("X-Backstop-Bounce") == [], m and m.header_block())
    refused("unverifiable = mark still refuses a report with an original", marking, "",
            "user@test.example", postfix_dsn(forged_orig))

with t.case("observe: a forged DSN is delivered, marked and logged"):
    m = accepted("observe", observe, "", "user@test.example", postfix_dsn(forged_orig))
    mark = m.headers("X-Backstop-Bounce") if m else []
    t.check("one X-Backstop-Bounce field", len(mark) == 1, m and m.header_block())
    v = re.sub(r"\s+", " ", mark[0]) if mark else ""
    t.check("it says fail, the class and the original", v.startswith("fail (bounce for a message this "
            "domain did not send) class=dsn;") and "original from <user@test.example>" in v, v)
    block = m.header_block().decode() if m else ""
    t.check("the field is above backstop's Received (held, added at end of data)",
            0 <= block.find("X-Backstop-Bounce:") < block.find("by proxy.test.example (backstop)"),
            block[:900])
    t.check("log: observe ... would be refused", observe.wait_log(
        r"bounce: observe: dsn \([^)]*\) to user@test\.example would be refused: original from"),
        observe.log(True)[-2000:])
    note_in_summary("observe", observe, "bounce=fail(dsn)")
    m = accepted("observe: a client's own X-Backstop-Bounce is removed", observe, "",
                 "user@test.example", crlf("X-Backstop-Bounce: pass\n") + ordinary())
    t.check("no X-Backstop-Bounce on ordinary mail", m is not None and m.headers("X-Backstop-Bounce") == [],
            m and m.header_block())

with t.case("exempt recipients are not judged"):
    accepted("postmaster@", enforce, "", "postmaster@test.example",
             postfix_dsn(forged_orig, rcpt="postmaster@test.example"), user="postmaster")
    accepted("[bounce] exempt", enforce, "victim@remote.example", "user3@test.example",
             vacation(FORGED_MID, rcpt="user3@test.example"), user="user3")

with t.case("[batv] refuse_at = content: read receipts pass, forged bounces do not"):
    for bs, label in ((enforce, "[bounce] enforce"), (batv_only, "[bounce] off")):
        accepted("%s: read receipt to an untagged recipient" % label, bs, "", "user@test.example",
                 read_receipt())
        note_in_summary(label, bs, "batv=exempt(mdn)")
    refused("[bounce] off: forged DSN still refused (BATV's verdict at end of data)", batv_only, "",
            "user@test.example", postfix_dsn(forged_orig))
    refused("ordinary null-sender mail gets BATV's refusal", enforce, "", "user@test.example",
            ordinary(), text=r"address did not send this mail \(no BATV tag\)")
    accepted("a feedback report (RFC 5965) to an untagged recipient", enforce, "",
             "user@test.example", feedback_report())
    note_in_summary("arf", enforce, "batv=exempt(arf)")

with t.case("[batv] refuse_at = content: a claimed read receipt or feedback report waives nothing"):
    # issue 11 review, H2: only a well-formed MDN/ARF passes without a tag
    dsn = postfix_dsn(forged_orig)
    plus_mdn = dsn.replace(b"--B0UND.1--", b"--B0UND.1\r\nContent-Type: message/disposition-"
                           b"notification\r\n\r\nDisposition: manual-action/MDN-sent-manually;"
                           b" displayed\r\n\r\n--B0UND.1--")
    t.check("the forged DSN got its MDN part", plus_mdn != dsn)
    labelled = crlf("""From: <promo@spammer.example>
To: <user@test.example>
Subject: Cheap watches
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification; boundary=b

--b
Content-Type: text/html

<a href=x>BUY</a>
--b--
""")
    apple = crlf("From: <promo@spammer.example>\nTo: <user@test.example>\nSubject: Cheap watches\n"
                 "X-Apple-Unsubscribe: true\n\nBUY NOW\n")
    no_msgid = read_receipt().replace(b"Original-Message-ID: <lunch.1@test.example>\r\n", b"")
    t.check("the read receipt lost its Original-Message-ID", no_msgid != read_receipt())
    for bs, label in ((enforce, "[bounce] enforce"), (batv_only, "[bounce] off")):
        refused("%s: forged DSN plus a disposition-notification part" % label, bs, "",
                "user@test.example", plus_mdn)
        note_in_summary("DSN + MDN part", bs, "bounce=fail(dsn)")
        refused("%s: spam labelled report-type=disposition-notification" % label, bs, "",
                "user@test.example", labelled, text=r"read receipt for a message this domain did not send")
        refused("%s: spam with X-Apple-Unsubscribe: true" % label, bs, "", "user@test.example", apple,
                text=r"feedback report for a message this domain did not send")
        t.check("%s: the log says the report is not well formed" % label,
                bs.wait_log(r"bounce: refused arf \(X-Apple-Unsubscribe: true; not well formed"),
                bs.log(True)[-2000:])
        refused("%s: read receipt without Original-Message-ID" % label, bs, "", "user@test.example",
                no_msgid, text=r"read receipt for a message this domain did not send")
        refused("%s: feedback report without User-Agent and Version" % label, bs, "",
                "user@test.example", feedback_report(fields=("Feedback-Type: abuse",)),
                text=r"feedback report for a message this domain did not send")
    # only a well-formed MDN/ARF is waived, not a class [bounce] classes leaves out
    refused("classes = ndr dsn: a null-sender vacation reply still needs evidence", narrow, "",
            "user@test.example", vacation(FORGED_MID),
            text=r"auto-reply for a message this domain did not send")
    accepted("classes = ndr dsn: a read receipt passes", narrow, "", "user@test.example",
             read_receipt())
    # a report that is not well formed is judged like a bounce: evidence lets it through
    accepted("X-Apple-Unsubscribe answering a Message-ID sent through [outbound]", enforce, "",
             "user@test.example", crlf("In-Reply-To: %s\n" % sent_mid) + apple)
    note_in_summary("apple + sent", enforce, "bounce=pass(arf,sent)")

with t.case("a mailing-list post pasting a bounce is ordinary mail"):
    # issue 11 review, H3: refusing it would get the member unsubscribed
    for name, body in (("list reply pasting a bounce", LIST_POST),
                       ("list post (no In-Reply-To) pasting a bounce",
                        "\n".join(l for l in LIST_POST.split("\n")
                                  if not l.startswith(("In-Reply-To", "References"))))):
        accepted(name, enforce, "postfix-users-bounces@lists.example", "user@test.example", crlf(body))
        checks = summary_checks(enforce)
        t.check("%s: not judged (no bounce= in the summary)" % name,
                checks is not None and "bounce=" not in checks, checks)

with t.case("ordinary mail is never judged"):
    accepted("ordinary mail that mentions Undelivered Mail", enforce, "friend@remote.example",
             "user@test.example", ordinary(subject="Re: Undelivered Mail Returned to Sender"))

for bs in (enforce, observe, marking, accepting, batv_only, narrow):
    bs.stop()
t.done()

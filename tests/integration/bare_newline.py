#!/usr/bin/python3
"""bare_newline: a bare LF or bare CR in DATA is refused with 5xx by default
(bare_newline = reject) and nothing reaches the backend; with normalise the
message arrives CRLF-clean (bare LF ends a line, bare CR becomes a space)."""
from harness import *

HDRS = (b"From: <sender@example.org>\r\nTo: <user@test.example>\r\n"
        b"Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n")

CASES = [
    ("bare LF in body", HDRS + b"Subject: lf-body\r\nMessage-ID: <lf-body@example.org>\r\n\r\n"
     b"line one\nline two\r\nend\r\n"),
    ("bare CR in body", HDRS + b"Subject: cr-body\r\nMessage-ID: <cr-body@example.org>\r\n\r\n"
     b"left\rright\r\nend\r\n"),
    ("bare LF in a header", HDRS + b"Subject: lf-header\nMessage-ID: <lf-header@example.org>\r\n\r\n"
     b"body\r\n"),
    ("bare CR at end of line", HDRS + b"Subject: cr-eol\r\nMessage-ID: <cr-eol@example.org>\r\n\r\n"
     b"text\r\r\nend\r\n"),
    ("LF only message", HDRS.replace(b"\r\n", b"\n") + b"Subject: lf-only\nMessage-ID: <lf-only@example.org>\n\n"
     b"body\n"),
]


def send(bs, data):
    c = bs.client()
    c.ehlo()
    c.cmd("MAIL FROM:<sender@example.org>")
    c.cmd("RCPT TO:<user@test.example>")
    c.cmd("DATA")
    c.send(data + b"\r\n.\r\n" if not data.endswith(b"\r\n") else data + b".\r\n")
    r = c.try_reply(5)
    return c, r


t = Test("bare_newline", need=("postfix",))
pf = t.postfix()

with t.case("default (reject)"):
    pf.mark()
    bs = t.backstop({"backend": {"address": pf.address}})
    for name, data in CASES:
        c, r = send(bs, data)
        t.check_reply("reject: %s refused 5xx" % name, r, 5, "")
        # like Postfix's smtpd_forbid_bare_newline = reject, backstop hangs
        # up after the refusal: nothing the client sent after the bare
        # newline may be taken as a command
        t.check("reject: %s: connection closed after the refusal" % name, c.closed_by_peer(3))
        c2 = bs.client()
        c2.ehlo()
        rs = c2.mail_transaction("sender@example.org", ["user2@test.example"], make_message("clean after " + name))
        t.check_reply("reject: %s: next session's clean message accepted" % name, rs[-1], 250)
        c2.cmd("QUIT")
    msgs = pf.settle(1.0)
    t.check("reject: only the clean messages reached the backend",
            sorted(m.mailbox for m in msgs) == ["user2"] * len(CASES),
            [(m.mailbox, m.headers("Subject")) for m in msgs])
    t.check("reject: refusals are logged", bs.wait_log(r"(?i)bare", 2), bs.log()[-2000:])
    bs.stop()

with t.case("normalise"):
    pf.clear_mail()
    pf.mark()
    bs = t.backstop({"backend": {"address": pf.address}, "server": {"bare_newline": "normalise"}})
    for name, data in CASES:
        c, r = send(bs, data)
        t.check_reply("normalise: %s accepted" % name, r, 250)
        c.cmd("QUIT")
    msgs = pf.wait_for_mail(len(CASES))
    msgs = pf.settle(0.5)
    by = {m.headers("Subject")[0] if m.headers("Subject") else "?": m for m in msgs}
    t.check("normalise: all %d delivered" % len(CASES), len(msgs) == len(CASES), sorted(by))
    t.check("normalise: no CR anywhere at the backend (CRLF-clean)",
            not [s for s, m in by.items() if b"\r" in m.raw], [s for s, m in by.items() if b"\r" in m.raw])
    m = by.get("lf-body")
    t.check("normalise: bare LF ends a line", m is not None and m.body() == b"line one\nline two\nend\n",
            m and m.body())
    m = by.get("cr-body")
    t.check("normalise: bare CR becomes a space", m is not None and m.body() == b"left right\nend\n",
            m and m.body())
    m = by.get("lf-header")
    t.check("normalise: header with bare LF kept as a header",
            m is not None and m.headers("Message-ID") == ["<lf-header@example.org>"], m and m.header_block())
    m = by.get("lf-only")
    t.check("normalise: LF-only message delivered with its body", m is not None and m.body().rstrip(b"\n") == b"body",
            m and m.body())
    bs.stop()

t.done()

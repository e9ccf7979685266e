#!/usr/bin/python3
"""smuggling: in DATA the only end of data is <CRLF>.<CRLF>. For each
published variant of a fake end of data followed by a smuggled transaction,
the backend (a Postfix that itself accepts bare LF, so it would be fooled
by raw bytes) never receives an extra message, and backstop never answers
the smuggled commands. Under bare_newline = reject the message is refused;
under normalise it is delivered once, as one message, CRLF-clean."""
from harness import *

VARIANTS = [
    ("<LF>.<LF>", b"\n.\n"),
    ("<LF>.<CR><LF>", b"\n.\r\n"),
    ("<CR><LF>.<LF>", b"\r\n.\n"),
    ("<CR>.<CR>", b"\r.\r"),
    ("<CR><LF>.<CR>", b"\r\n.\r"),
    ("<CR><LF>.<CR><CR><LF>", b"\r\n.\r\r\n"),
    ("<CR>.<CR><LF>", b"\r.\r\n"),
    ("<CR>.<LF>", b"\r.\n"),
    ("<LF>.<CR>", b"\n.\r"),
]


def smuggled(tag):
    return (b"MAIL FROM:<smuggler@example.org>\r\n"
            b"RCPT TO:<user2@test.example>\r\n"
            b"DATA\r\n"
            b"From: <smuggler@example.org>\r\nTo: <user2@test.example>\r\n"
            b"Subject: smuggled " + tag + b"\r\n"
            b"Message-ID: <smuggled." + tag + b"@example.org>\r\n"
            b"Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n\r\n"
            b"smuggled body\r\n")


def payload(tag, fake):
    """outer message, fake end, smuggled transaction; form A ends with the
    smuggled message's '.' (the only real end), form B repeats the fake end
    after the smuggled message and then sends a real end."""
    outer = make_message("outer " + tag.decode(), body="outer body")  # no trailing newline
    a = outer + fake + smuggled(tag) + b".\r\n"
    b = outer + fake + smuggled(tag + b"-B") + b"x" + fake + b"\r\n.\r\n"
    return a, b


t = Test("smuggling", need=("postfix",))
pf = t.postfix()

for policy in ("reject", "normalise"):
    with t.case("bare_newline = %s" % policy):
        pf.clear_mail()
        pf.mark()
        bs = t.backstop({"backend": {"address": pf.address},
                         "server": {"bare_newline": policy}})
        sessions = 0
        for vname, fake in VARIANTS:
            tag = vname.replace("<", "").replace(">", "").replace(".", "dot").encode()
            for form, data in zip("AB", payload(tag, fake)):
                name = "%s %s form %s" % (policy, vname, form)
                with t.case(name):
                    c = bs.client()
                    c.ehlo()
                    c.cmd("MAIL FROM:<sender@example.org>")
                    c.cmd("RCPT TO:<user@test.example>")
                    if not t.check_reply("%s: DATA 354" % name, c.cmd("DATA"), 354):
                        raise RuntimeError("no 354")
                    sessions += 1
                    c.send(data)
                    r = c.try_reply(5)
                    if policy == "reject":
                        t.check("%s: refused with 5xx" % name, r is not None and 500 <= r.code < 600, r)
                    else:
                        t.check("%s: accepted once" % name, r is not None and r.code == 250, r)
                    # anything further before the QUIT reply was an answer to smuggled commands
                    extra = []
                    try:
                        c.send(b"QUIT\r\n")
                        while True:
                            x = c.try_reply(3)
                            if x is None or x.code == 221:
                                break
                            extra.append(x)
                    except OSError:
                        pass
                    t.check("%s: no replies to smuggled commands" % name, not extra, extra)
                    c.close()
        msgs = pf.settle(1.0)
        subjects = [m.headers("Subject") for m in msgs]
        t.check("%s: nothing in user2's mailbox (the smuggled recipient)" % policy,
                not [m for m in msgs if m.mailbox == "user2"], subjects)
        t.check("%s: no message has a 'smuggled' Subject" % policy,
                not [s for s in subjects if s and "smuggled" in s[0]], subjects)
        if policy == "reject":
            t.check("reject: no message reached the backend", msgs == [] and pf.queued_count() == 0,
                    (subjects, pf.queued_count()))
        else:
            t.check("normalise: exactly one message per session (%d)" % sessions,
                    len(msgs) == sessions and pf.queued_count() == sessions,
                    (len(msgs), pf.queued_count(), subjects))
            t.check("normalise: no bare CR reached the backend",
                    not [m for m in msgs if b"\r" in m.raw], [m.path for m in msgs if b"\r" in m.raw])
            t.check("normalise: the smuggled text is inside the outer messages",
                    all(b"smuggler@example.org" in m.body() for m in msgs), subjects)
        bs.stop()

t.done()

#!/usr/bin/python3
"""forged_authres: backstop and the backend agree on where the header
section ends, so an Authentication-Results field with backstop's
authserv-id that the client wrote never reaches the backend as a field.

Found in review: backstop judged lines on the client's bytes, the backend
on what backstop sent. A NUL (sent as a space) at the start of a line in
the header section made backstop take that line for the first body line,
while Postfix took it for a fold and read the next lines as fields; "Name
NUL :" and (bare_newline = normalise) "Name CR :" became fields at the
backend that backstop had taken for body. And a message whose first line
starts with a blank was folded by Postfix into backstop's own Received
field, after which the client's lines were fields again. In each case a
forged "Authentication-Results: <backstop's id>; dkim=pass" reached the
mailbox in the header section. Checked in hold mode ([dkim] annotate,
backstop's own field on top) and in stream mode ([dkim] off)."""
from harness import *

OURS = BACKSTOP_HOSTNAME.encode()
FORGED = (b"Authentication-Results: " + OURS +
          b"; dkim=pass header.d=forged.example; dmarc=pass\r\n")
TAIL = FORGED + b"From: <ceo@bank.example>\r\nSubject: forged\r\n\r\nbody\r\n.\r\n"

CASES = [
    ("first line starts with a blank", "reject", b" folded into the Received field\r\n" + TAIL),
    ("first line starts with a tab", "reject", b"\tfolded\r\n" + TAIL),
    ("NUL at the start of a header line", "reject",
     b"X-First: a\r\n\x00fold at the backend\r\n" + TAIL),
    ("NUL before the colon", "reject", b"X-First: a\r\nX-Name\x00: v\r\n" + TAIL),
    ("bare CR at the start of a header line (normalise)", "normalise",
     b"X-First: a\r\n\rfold at the backend\r\n" + TAIL),
    ("bare CR before the colon (normalise)", "normalise", b"X-First: a\r\nX-Name\r: v\r\n" + TAIL),
    ("NUL as the first byte", "reject", b"\x00x\r\n" + TAIL),
]

t = Test("forged_authres", watchdog=240, need=("postfix",))
pf = t.postfix()
for mode in ("annotate", "off"):
    for policy in ("reject", "normalise"):
        cases = [c for c in CASES if c[1] == policy]
        bs = t.backstop({"backend": {"address": pf.address}, "dkim": {"mode": mode},
                         "server": {"bare_newline": policy}})
        for name, _, data in cases:
            name = "%s, [dkim] mode=%s" % (name, mode)
            with t.case(name):
                pf.clear_mail()
                c = bs.client()
                c.ehlo()
                c.cmd("MAIL FROM:<sender@example.org>")
                c.cmd("RCPT TO:<user@test.example>")
                t.check_reply("%s: DATA" % name, c.cmd("DATA"), 354)
                c.send(data)
                t.check_reply("%s: accepted" % name, c.reply(10), 250)
                c.close()
                msgs = pf.wait_for_mail(1, 5)
                t.check("%s: one message" % name, len(msgs) == 1, len(msgs))
                for m in msgs:
                    head = m.header_block()
                    t.check("%s: no forged field in the header section" % name,
                            b"forged.example" not in head, head.decode(errors="replace"))
                    ars = m.headers("Authentication-Results")
                    t.check("%s: only backstop's own Authentication-Results (%s)" % (name, mode),
                            len(ars) == (1 if mode == "annotate" else 0), ars)
                    # removed as a field, or kept as body text: never a field
                    t.check("%s: the forged field is gone or body text" % name,
                            b"forged.example" not in m.raw or b"forged.example" in m.body())
        bs.stop()
t.done()

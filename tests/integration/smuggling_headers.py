#!/usr/bin/python3
"""smuggling_headers: header fields longer than the 8 KiB line segment, and
fields removed by a check, can never start a line at the backend that the
client did not start (issue: smuggling through the forged
Authentication-Results removal).

The original finding: after DATA, "Subject: first" + an
Authentication-Results field with backstop's authserv-id padded with "x"
to 8192 bytes + ".\\r\\nMAIL FROM:<ceo@bank.example>..." made the removal
drop the first 8 KiB piece and send the next piece, ".", unstuffed at the
start of a line: Postfix saw an end of data and queued a second message.

Against a real Postfix, for pad lengths around every piece boundary (CR and
LF split across pieces), folded continuation lines over 8 KiB, and forged
fields over 64 KiB: exactly one message per session reaches the backend,
it carries backstop's Received field, no forged Authentication-Results,
nothing reaches the smuggled recipient, and no smuggled command is
answered. A long field that is not removed arrives byte for byte."""
from harness import *

OURS = BACKSTOP_HOSTNAME.encode()
SEGMENT = 8192


def smuggled(tag):
    return (b"MAIL FROM:<ceo@bank.example>\r\n"
            b"RCPT TO:<user2@test.example>\r\n"
            b"DATA\r\n"
            b"From: <ceo@bank.example>\r\nTo: <user2@test.example>\r\n"
            b"Subject: smuggled " + tag + b"\r\n"
            b"Authentication-Results: " + OURS + b"; spf=pass; dkim=pass; dmarc=pass\r\n"
            b"\r\nwire the money\r\n")


def forged_ar_line(length):
    """An Authentication-Results line of exactly length bytes (no CRLF)."""
    head = b"Authentication-Results: " + OURS + b"; spf=pass "
    return head + b"x" * (length - len(head))


def send_data(t, bs, name, data, expect=250):
    """One session: EHLO, MAIL, RCPT user, DATA, data (which must hold its
    own end), QUIT. Returns the reply to the end of data."""
    c = bs.client()
    c.ehlo()
    c.cmd("MAIL FROM:<sender@example.org>")
    c.cmd("RCPT TO:<user@test.example>")
    if not t.check_reply("%s: DATA 354" % name, c.cmd("DATA"), 354):
        raise RuntimeError("no 354")
    c.send(data)
    r = c.try_reply(10)
    t.check_reply("%s: end of data answered %d" % (name, expect), r, expect)
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
    return r


t = Test("smuggling_headers", watchdog=240, need=("postfix",))
pf = t.postfix()
bs = t.backstop({"backend": {"address": pf.address}})

cases = []   # (name, data, marker that must be in the delivered body or None)

# 1. the reported transcript, and pad lengths around the piece boundary
#    (the "." lands in the same piece, the next one, after a split CRLF)
for length in list(range(SEGMENT - 4, SEGMENT + 5)) + [2 * SEGMENT - 1, 2 * SEGMENT, 2 * SEGMENT + 1]:
    tag = b"pad%d" % length
    data = (b"Subject: first " + tag + b"\r\n" + forged_ar_line(length) + b".\r\n" +
            smuggled(tag) + b"\r\n.\r\n")
    cases.append(("A-R line of %d bytes then '.'" % length, data))

# 2. the CRLF ending the forged line split by the segment boundary, then a
#    stuffed lone dot (content ".", which must reach the backend as "..")
for length in (SEGMENT - 2, SEGMENT - 1, SEGMENT):
    tag = b"crlf%d" % length
    data = (b"Subject: first " + tag + b"\r\n" + forged_ar_line(length) + b"\r\n..\r\n" +
            smuggled(tag) + b".\r\n")
    cases.append(("A-R line of %d bytes, CRLF, then a stuffed dot" % length, data))

# 3. folded continuation lines over 8 KiB, each followed by "." pieces
for length in (SEGMENT - 1, SEGMENT, SEGMENT + 1):
    tag = b"fold%d" % length
    data = (b"Subject: first " + tag + b"\r\n" +
            b"Authentication-Results: " + OURS + b";\r\n" +
            b"\t" + b"y" * (length - 1) + b".\r\n" +
            b" " + b"z" * (length - 1) + b".\r\n" +
            smuggled(tag) + b"\r\n.\r\n")
    cases.append(("folded A-R, continuation of %d bytes" % length, data))

# 4. a forged A-R over 64 KiB, folded over many lines (finding 3), and
#    one over 64 KiB on a single line
tag = b"big-folded"
big = (b"Authentication-Results: " + OURS + b"; spf=pass\r\n" +
       b"".join(b"\treason=" + b"w" * 990 + b"\r\n" for _ in range(80)))
cases.append(("forged A-R of %d bytes, folded" % len(big),
              b"Subject: first " + tag + b"\r\n" + big + b"..\r\n" + smuggled(tag) + b"\r\n.\r\n"))
tag = b"big-line"
cases.append(("forged A-R of 70000 bytes on one line",
              b"Subject: first " + tag + b"\r\n" + forged_ar_line(70000) + b".\r\n" +
              smuggled(tag) + b"\r\n.\r\n"))

sent = 0
for name, data in cases:
    with t.case(name):
        pf.mark()
        send_data(t, bs, name, data)
        sent += 1

msgs = pf.settle(1.5)
subjects = [m.headers("Subject") for m in msgs]
t.check("one message per session (%d)" % sent, len(msgs) == sent, (len(msgs), subjects))
t.check("nothing reached the smuggled recipient user2",
        not [m for m in msgs if m.mailbox == "user2"], [m.path for m in msgs if m.mailbox == "user2"])
t.check("no message has a 'smuggled' Subject field",
        not [s for s in subjects if s and "smuggled" in s[0]], subjects)
t.check("every message has backstop's Received field",
        all(backstop_received(m) for m in msgs), [m.path for m in msgs if not backstop_received(m)])
# the forged field is gone; the smuggled one inside the body is body text
# [dkim] mode = annotate (the default) holds the message and writes
# backstop's own field (dkim=...); every forged one says spf=pass
def forged_ar(m):
    ars = m.headers("Authentication-Results")
    return len(ars) > 1 or [a for a in ars if "spf=pass" in a]
t.check("no forged Authentication-Results in any header section",
        not [m for m in msgs if forged_ar(m)],
        [(m.path, m.headers("Authentication-Results")[:2]) for m in msgs if forged_ar(m)])
t.check("the smuggled commands arrived as body text of the one message",
        all(b"MAIL FROM:<ceo@bank.example>" in m.body() for m in msgs), subjects)

# 5. a long field that no check removes arrives whole, byte for byte
with t.case("a 100 KB folded field that is kept"):
    pf.clear_mail()
    value = b"".join(b"\tpart-%04d-" % i + b"v" * 980 + b"\r\n" for i in range(100))
    long_line = b"X-Long-Line: " + b"q" * 20000 + b".tail"
    data = (b"Subject: long kept\r\nX-Long: start\r\n" + value + long_line + b"\r\n" +
            b"\r\nbody\r\n.\r\n")
    send_data(t, bs, "long kept field", data)
    msgs = pf.settle(1.0)
    t.check("long kept: one message", len(msgs) == 1, len(msgs))
    if msgs:
        raw = msgs[0].raw.replace(b"\n", b"\r\n")
        t.check("long kept: the folded field arrived byte for byte",
                b"X-Long: start\r\n" + value in raw)
        t.check("long kept: the 20 KB line arrived whole", long_line + b"\r\n" in raw)

# 6. NUL bytes: a backend that dropped them would see "\0." as a "."
#    line; backstop sends them as spaces, so no line starts with the dot
with t.case("NUL before a dot"):
    pf.clear_mail()
    data = (b"Subject: nul dot\r\n\r\nbefore\r\n\x00.\r\n" + smuggled(b"nul") +
            b"\x00\x00.\r\n.\r\n")
    send_data(t, bs, "NUL dot", data)
    msgs = pf.settle(1.0)
    t.check("NUL dot: one message, to user only",
            len(msgs) == 1 and msgs[0].mailbox == "user", [m.path for m in msgs])
    if msgs:
        t.check("NUL dot: no NUL byte reached the backend", b"\x00" not in msgs[0].raw)
        t.check("NUL dot: the NULs arrived as spaces", b"\n .\n" in msgs[0].raw and b"\n  .\n" in msgs[0].raw)

# 7. our Received field is never left out, however long its parts are
with t.case("Received with a 250-byte HELO"):
    pf.clear_mail()
    helo = "h" * 60 + "." + "e" * 60 + "." + "l" * 60 + "." + "o" * 60 + ".example"
    c = bs.client()
    t.check_reply("long HELO: EHLO 250", c.cmd("EHLO " + helo), 250)
    c.cmd("MAIL FROM:<sender@example.org>")
    c.cmd("RCPT TO:<user@test.example>")
    c.cmd("DATA")
    c.send(dot_stuff(make_message("long helo")) + b".\r\n")
    t.check_reply("long HELO: accepted", c.reply(10), 250)
    c.close()
    msgs = pf.settle(1.0)
    t.check("long HELO: our Received field names the HELO",
            len(msgs) == 1 and helo in (backstop_received(msgs[0]) or ""),
            [backstop_received(m) for m in msgs])

t.done()

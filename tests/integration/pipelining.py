#!/usr/bin/python3
"""pipelining: RFC 2920. A pipelined batch in one write, or split at any
byte, is answered in order, one reply per command, with the backend's
verdicts in place."""
import time
from harness import *

t = Test("pipelining", need=("postfix",))
# many refused RCPTs on one backend connection: keep Postfix from
# hanging up on the test (smtpd_hard_error_limit) or sleeping
pf = t.postfix(extra_main="smtpd_hard_error_limit = 1000\nsmtpd_soft_error_limit = 1000\n"
                          "smtpd_error_sleep_time = 0\n")
# junk_command_limit off: "many commands in one write" pipelines 200 NOOPs
bs = t.backstop({"backend": {"address": pf.address}, "limits": {"junk_command_limit": "0"}})

BATCH = (b"MAIL FROM:<sender@example.org>\r\n"
         b"RCPT TO:<user@test.example>\r\n"
         b"RCPT TO:<nosuch@test.example>\r\n"
         b"RCPT TO:<user2@test.example>\r\n"
         b"DATA\r\n")
WANT = [(250, None), (250, None), (550, "5.1.1"), (250, None), (354, None)]


def check_batch(name, replies):
    got = [(r.code, r.esc) for r in replies]
    ok = len(got) == len(WANT) and all(g[0] == w[0] and (w[1] is None or g[1] == w[1])
                                        for g, w in zip(got, WANT))
    t.check("%s: replies in order %s" % (name, [w[0] for w in WANT]), ok, replies)


with t.case("one write"):
    pf.mark()
    c = bs.client()
    c.ehlo()
    c.send(BATCH)
    check_batch("one write", c.replies(5))
    c.send(dot_stuff(make_message("pipelined")) + b".\r\nQUIT\r\n")
    t.check_reply("message accepted", c.reply(), 250)
    t.check_reply("QUIT 221", c.reply(), 221)
    msgs = pf.wait_for_mail(2)
    t.check("delivered to user and user2", sorted(m.mailbox for m in msgs) == ["user", "user2"],
            [m.mailbox for m in msgs])

with t.case("byte by byte"):
    pf.clear_mail()
    c = bs.client()
    c.ehlo()
    c.send_bytewise(BATCH, delay=0.001)
    check_batch("byte by byte", c.replies(5))
    c.send_bytewise(dot_stuff(make_message("bytewise")) + b".\r\nQUIT\r\n")
    t.check_reply("message accepted", c.reply(), 250)
    t.check_reply("QUIT 221", c.reply(), 221)
    msgs = pf.wait_for_mail(2)
    t.check("delivered to user and user2", len(msgs) == 2, msgs)

with t.case("EHLO and the whole envelope in one write"):
    pf.clear_mail()
    c = bs.client()
    c.send(b"EHLO " + CLIENT_HELO.encode() + b"\r\n" + BATCH)
    t.check_reply("EHLO 250", c.reply(), 250)
    check_batch("EHLO+batch", c.replies(5))
    c.send(dot_stuff(make_message("ehlo-batch")) + b".\r\n")
    t.check_reply("message accepted", c.reply(), 250)
    c.cmd("QUIT")

with t.case("errors inside a batch keep the order"):
    c = bs.client()
    c.ehlo()
    c.send(b"NOOP\r\nFOO BAR\r\nMAIL FROM:<sender@example.org>\r\nRCPT TO:<user@test.example>\r\n"
           b"MAIL FROM:<again@example.org>\r\nRSET\r\nVRFY x\r\nNOOP\r\n")
    rs = c.replies(8)
    want = [250, 500, 250, 250, 503, 250, 252, 250]
    t.check("replies %s" % want, [r.code for r in rs] == want, rs)
    c.cmd("QUIT")

with t.case("split at every byte position"):
    # no refusals in this batch: Postfix disconnects after 20 errors
    # (smtpd_hard_error_limit) and sleeps after 10
    batch = (b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<user@test.example>\r\n"
             b"RCPT TO:<user2@test.example>\r\nRSET\r\n")
    want = [250, 250, 250, 250]
    c = bs.client()
    c.ehlo()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    bad = []
    for i in range(1, len(batch)):
        c.send(batch[:i])
        time.sleep(0.002)
        c.send(batch[i:])
        got = [r.code for r in c.replies(4)]
        if got != want:
            bad.append((i, got))
    t.check("all %d split positions answered %s" % (len(batch) - 1, want), not bad, bad[:5])
    c.cmd("QUIT")

with t.case("many commands in one write"):
    c = bs.client()
    c.ehlo()
    c.send(b"NOOP\r\n" * 200)
    rs = c.replies(200)
    t.check("200 NOOPs answered 250", all(r.code == 250 for r in rs), rs[:3])
    t.check_reply("still in sync (QUIT 221)", c.cmd("QUIT"), 221)

bs.stop()
t.done()

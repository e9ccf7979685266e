#!/usr/bin/python3
"""pipelined_refusals: a client pipelines a whole transaction (RFC 2920)
without waiting, and the transaction is refused before the content:

 - every RCPT refused (by the real Postfix behind backstop), then DATA, the
   body, the dot and QUIT in the same write;
 - a bounce to an untagged address with BATV refuse_at = data: DATA gets
   550 5.7.1 and the body follows in the same write.

There must be no 354; replies come in order, one per command line (the
body lines are taken as commands, as RFC 2920 3.1 and every MTA do, and
refused); Postfix never gets any content: nothing queued, nothing
delivered. A control with one valid recipient shows the same pipelined
write does deliver (so the checks can fail)."""
from harness import *

t = Test("pipelined_refusals", need=("postfix",))
pf = t.postfix()

kdir = t.tmpdir("keys")
KEYS = os.path.join(kdir, "batv.keys")
with open(KEYS, "w") as f:
    f.write("1 pipelined-refusals-secret-0123456789\n")
os.chmod(KEYS, 0o600)
BATV = {"mode": "enforce", "domains": "test.example", "keys_file": KEYS, "sign_key": "1",
        "validity_days": "7", "refuse_at": "data"}
bs = t.backstop({"backend": {"address": pf.address}, "batv": BATV,
                 "limits": {"max_errors": "50"}})

BODY_LINES = [b"From: <sender@example.org>", b"Subject: pipelined", b"", b"hello"]


def pipeline(mail_from, rcpts):
    """One write: EHLO .. QUIT. Returns (replies, command labels)."""
    cmds = [b"EHLO client.example.org", b"MAIL FROM:<%s>" % mail_from.encode()]
    cmds += [b"RCPT TO:<%s>" % r.encode() for r in rcpts]
    cmds += [b"DATA"] + BODY_LINES + [b".", b"QUIT"]
    c = bs.client()
    c.send(b"".join(x + b"\r\n" for x in cmds))
    replies = []
    while True:
        r = c.try_reply(10)
        if r is None:
            break
        replies.append(r)
        if r.code == 221:
            break
    return replies, cmds


def no_content_in_postfix(name):
    msgs = pf.settle(0.5)
    t.check("%s: Postfix's cleanup saw no message" % name,
            pf.count_log(r"cleanup\[\d+\]: \w+: message-id=") == 0, pf.log(True)[-2000:])
    t.check("%s: Postfix's qmgr queued nothing" % name, pf.queued_count() == 0, pf.log(True)[-2000:])
    t.check("%s: Postfix never got DATA" % name,
            not re.search(r"data=1\b", pf.log(True)), pf.log(True)[-2000:])
    t.check("%s: nothing delivered" % name, msgs == [], msgs)


def check_refused(name, replies, cmds, nrcpt, rcpt_code, data_code):
    codes = [r.code for r in replies]
    log("# replies: %s" % codes)
    t.check("%s: one reply per command line, ending with 221" % name,
            len(replies) == len(cmds) and codes[-1] == 221, codes)
    t.check("%s: no 354" % name, 354 not in codes, codes)
    t.check("%s: in order: EHLO 250, MAIL 250" % name, codes[:2] == [250, 250], codes)
    t.check("%s: in order: RCPT %s x%d" % (name, rcpt_code, nrcpt),
            [str(c).startswith(str(rcpt_code)) for c in codes[2:2 + nrcpt]] == [True] * nrcpt, codes)
    dr = replies[2 + nrcpt] if len(replies) > 2 + nrcpt else None
    t.check_reply("%s: DATA refused with %s" % (name, data_code), dr, data_code, "")
    after = codes[3 + nrcpt:-1]
    t.check("%s: every body line and the dot refused as a command (5xx)" % name,
            len(after) == len(BODY_LINES) + 1 and all(500 <= c < 600 for c in after), after)


with t.case("every RCPT refused by Postfix, DATA and body pipelined"):
    pf.mark()
    rcpts = ["nobody1@test.example", "nobody2@test.example", "someone@elsewhere.example"]
    replies, cmds = pipeline("sender@example.org", rcpts)
    check_refused("all RCPT refused", replies, cmds, len(rcpts), 550, 554)
    t.check("the RCPT refusals are Postfix's own", pf.wait_log(r"NOQUEUE: reject: RCPT", 5, count=3),
            pf.log(True)[-2000:])
    no_content_in_postfix("all RCPT refused")

with t.case("BATV refuse_at = data: DATA 55x, body pipelined after it"):
    pf.mark()
    bs.mark()
    replies, cmds = pipeline("", ["user@test.example"])
    check_refused("BATV at DATA", replies, cmds, 1, 250, 55)
    t.check("backstop logs the BATV refusal at DATA",
            bs.wait_log(r"batv: refused bounce to user@test\.example at DATA"), bs.log(True)[-2000:])
    no_content_in_postfix("BATV at DATA")

with t.case("control: one valid recipient, the same pipelined write delivers"):
    pf.mark()
    replies, cmds = pipeline("sender@example.org", ["nobody1@test.example", "user@test.example"])
    codes = [r.code for r in replies]
    t.check("control: EHLO, MAIL, 550, 250, 354, 250, 221", codes == [250, 250, 550, 250, 354, 250, 221],
            codes)
    msgs = pf.wait_for_mail(1, 10)
    t.check("control: one message delivered", len(msgs) == 1, msgs)

bs.stop()
t.done()

#!/usr/bin/python3
"""batv_routing: a bounce cannot reach a protected mailbox through the
backend's address rewriting (issue "Fix first", item 2).

Postfix strips a domain it considers local (its own address literals,
mydestination names), then rewrites what is left: user%test.example ->
user@test.example (allow_percent_hack), test.example!user ->
user@test.example (swap_bangpath), and it opens quoted local parts
(resolve_dequoted). backstop checks only [batv] domains, so MAIL FROM:<> to
<user%test.example@[127.0.0.1]> used to pass as "not ours" and land in
user@test.example's Maildir. The backend here is a real Postfix 3.7 with
its defaults for those settings, listening on 127.0.0.1 (so [127.0.0.1] is
local to it), mydestination = localhost, and test.example as a virtual
mailbox domain.

Checked: with [batv] refuse_routed = no (the old behaviour) every routed
form is delivered to user@test.example (the bypass is real on this
backend); with the default (yes) each gets 550 5.7.1 at RCPT although
refuse_at = data, Postfix never sees the recipient and nothing is
delivered; forms that Postfix would also rewrite but that are not valid
RFC 5321 paths (trailing dots, a second '@') get backstop's 501; ordinary
mail (non-null sender) to a routed address is left to the backend; observe
mode delivers and marks with X-Backstop-BATV."""
import os
import re
from harness import *

t = Test("batv_routing", need=("postfix",), watchdog=120)

kdir = t.tmpdir("keys")
KEYS = os.path.join(kdir, "batv.keys")
with open(KEYS, "w") as f:
    f.write("1 routing-test-secret-0123456789\n")
os.chmod(KEYS, 0o600)

pf = t.postfix(extra_main="mydestination = localhost\n")
BATV = {"mode": "enforce", "domains": "test.example", "keys_file": KEYS, "sign_key": "1",
        "refuse_at": "data"}

# Every form below is a valid RFC 5321 path for backstop's parser and is
# delivered by Postfix to user@test.example (checked with refuse_routed = no).
ROUTED = [
    "user%test.example@[127.0.0.1]",
    "test.example!user@[127.0.0.1]",
    '"user%test.example"@[127.0.0.1]',
    '"user@test.example"@[127.0.0.1]',
    '"test.example!user"@[127.0.0.1]',
    "user%test.example@localhost",                       # a mydestination name, not in [batv] domains
    "USER%TEST.EXAMPLE@[127.0.0.1]",
    "@relay.example,@relay2.example:user%test.example@[127.0.0.1]",   # source route: dropped by backstop
]
# Refused by backstop's own parser (Postfix alone would have rewritten them).
UNPARSABLE = [
    "user%test.example.@[127.0.0.1]",     # trailing dot in the local part
    "user%test.example@localhost.",       # trailing dot in the domain
    "user@test.example@[127.0.0.1]",      # a second '@' outside quotes
    "user%test.example%[127.0.0.1]@[127.0.0.1]",   # '[' is not atext
]


def bounce(bs, rcpt, subject):
    """One MAIL FROM:<> transaction to rcpt; returns the replies."""
    c = bs.client()
    c.ehlo()
    rs = c.mail_transaction("", [rcpt], make_message(subject, mail_from="MAILER-DAEMON@remote.example",
                                                     to="user@test.example"))
    c.cmd("QUIT")
    return rs


with t.case("refuse_routed = no: every routed form reaches user@test.example (the bypass)"):
    bs = t.backstop({"backend": {"address": pf.address}, "batv": dict(BATV, refuse_routed="no")})
    pf.clear_mail()
    pf.mark()
    for i, rcpt in enumerate(ROUTED):
        rs = bounce(bs, rcpt, "old %d" % i)
        t.check_reply("refuse_routed = no: bounce to %s accepted" % rcpt, rs[-1], 250)
    msgs = pf.wait_for_mail(len(ROUTED), timeout=10)
    t.check("Postfix delivered all %d to the user Maildir" % len(ROUTED),
            len(msgs) == len(ROUTED) and all(m.mailbox == "user" for m in msgs), msgs)
    t.check("each as Delivered-To: user@test.example (any case)",
            all([h.lower() for h in m.headers("Delivered-To")] == ["user@test.example"] for m in msgs),
            [m.headers("Delivered-To") for m in msgs])
    bs.stop()

with t.case("refuse_routed = yes (default): 550 5.7.1 at RCPT, nothing delivered"):
    b = dict(BATV)
    bs = t.backstop({"backend": {"address": pf.address}, "batv": b})
    pf.clear_mail()
    pf.mark()
    bs.mark()
    c = bs.client()
    t.check_reply("EHLO", c.ehlo(), 250)
    for rcpt in ROUTED:
        t.check_reply("%s: MAIL FROM:<> 250" % rcpt, c.cmd("MAIL FROM:<>"), 250)
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        t.check_reply("%s: RCPT 550 5.7.1 (although refuse_at = data)" % rcpt, r, 550, "5.7.1")
        t.check("%s: the reply says why" % rcpt,
                r is not None and "bounces to routed addresses" in r.text, r)
        t.check_reply("%s: DATA has no recipient (554)" % rcpt, c.cmd("DATA"), 554)
        t.check_reply("%s: RSET" % rcpt, c.cmd("RSET"), 250)
    for rcpt in UNPARSABLE:
        c.cmd("MAIL FROM:<>")
        t.check_reply("%s: RCPT 501 5.1.3 (not an RFC 5321 path)" % rcpt, c.cmd("RCPT TO:<%s>" % rcpt),
                      501, "5.1.3")
        c.cmd("RSET")
    # a literal that is not local to Postfix and a v6 literal: refused too
    for rcpt in ("user%test.example@[IPv6:::1]", "user@[127.0.0.1]"):
        c.cmd("MAIL FROM:<>")
        t.check_reply("%s: RCPT 550 5.7.1" % rcpt, c.cmd("RCPT TO:<%s>" % rcpt), 550, "5.7.1")
        c.cmd("RSET")
    c.cmd("QUIT")
    pf.settle(1.0)
    t.check("nothing delivered", pf.messages() == [], pf.messages())
    t.check("Postfix never saw any of the recipients (no RCPT logged, nothing queued)",
            "orig_to=" not in pf.log(True) and pf.queued_count() == 0
            and "test.example@" not in pf.log(True) and "!user" not in pf.log(True), pf.log(True)[-2000:])
    t.check("backstop logs each refusal",
            len(re.findall(r"batv: refused bounce to .* at RCPT: routed recipient address", bs.log(True)))
            == len(ROUTED) + 2, bs.log(True)[-3000:])
    t.check("summary lines say batv=fail(routed)", "batv=fail(routed)" in bs.log(True))
    # the ordinary ways still work on the same backstop
    rs = bounce(bs, "postmaster@test.example", "to postmaster")
    t.check_reply("a bounce to postmaster@test.example is still accepted", rs[-1], 250)
    c = bs.client()
    c.ehlo()
    rs = c.mail_transaction("sender@remote.example", ["user%test.example@[127.0.0.1]"],
                            make_message("not a bounce", mail_from="sender@remote.example"))
    c.cmd("QUIT")
    t.check_reply("a non-bounce to a routed address is left to the backend (Postfix accepts it)", rs[-1], 250)
    msgs = pf.wait_for_mail(2)
    t.check("those two delivered", len(msgs) == 2, msgs)
    bs.stop()

with t.case("observe: delivered and marked"):
    bs = t.backstop({"backend": {"address": pf.address}, "batv": dict(BATV, mode="observe")})
    pf.clear_mail()
    bs.mark()
    rs = bounce(bs, "test.example!user@[127.0.0.1]", "observe")
    t.check_reply("observe: accepted", rs[-1], 250)
    msgs = pf.wait_for_mail(1)
    m = msgs[0] if msgs else None
    t.check("observe: marked X-Backstop-BATV: fail (routed recipient address)",
            m is not None and any("fail (routed recipient address)" in h for h in m.headers("X-Backstop-BATV")),
            m and m.header_block())
    t.check("observe: logged 'would be refused'",
            bs.wait_log(r"batv: observe: bounce to test\.example!user@\[127\.0\.0\.1\] would be refused: "
                        r"routed recipient address"), bs.log(True)[-2000:])
    bs.stop()

t.done()

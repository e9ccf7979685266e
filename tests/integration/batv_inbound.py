#!/usr/bin/python3
"""batv_inbound: BATV verification on the inbound listener, in front of a
real Postfix (issue 5).

A bounce (MAIL FROM:<>) to a tagged address made by `backstop batv sign`
is accepted and reaches Postfix with the tag stripped (X-Original-To and
the maillog's to=<> name the bare address). Forged bounces (no tag,
unknown key, a tag made with another key's secret, a flipped MAC, an
expired tag, a malformed tag) get 550 5.7.1 at DATA with the reason, and
Postfix never takes their content; with refuse_at = rcpt they get it at
RCPT and Postfix never sees the recipient. A callout (MAIL FROM:<>, RCPT,
RSET/QUIT) succeeds; postmaster@ and abuse@ need no tag; a bounce to two
recipients is refused unless all verify; replies to the envelope (non-null
sender to a tagged address) are stripped even when expired; bounce_senders
patterns count as bounces; observe mode accepts and marks with
X-Backstop-BATV. A world-readable keys file is refused by -t; SIGHUP reloads
the keys file (and keeps the old keys when the new file is refused)."""
import hashlib
import hmac
import os
import re
import signal
import subprocess
import time
from harness import *

t = Test("batv_inbound", need=("postfix", "faketime"), watchdog=120)

SECRETS = {0: "zero-secret-0123456789", 1: "one-secret-abcdefghij", 2: "two-secret-KLMNOPQRST"}
kdir = t.tmpdir("keys")
KEYS = os.path.join(kdir, "batv.keys")


def write_keys(secrets, mode=0o600, path=KEYS):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write("# test keys\n\n")
        for k, s in sorted(secrets.items()):
            f.write("%d %s\n" % (k, s))
    os.chmod(tmp, mode)
    os.rename(tmp, path)


write_keys(SECRETS)

# "prvs=1=user" is a mailbox so that Postfix accepts the malformed tag at RCPT
# and the verdict is backstop's, at DATA
pf = t.postfix(users=USERS + ["abuse", "prvs=1=user"])
BATV = {"mode": "enforce", "domains": "test.example", "keys_file": KEYS, "sign_key": "1",
        "validity_days": "7", "bounce_senders": "MAILER-DAEMON@*"}
bs = t.backstop({"backend": {"address": pf.address}, "batv": dict(BATV)})


def cli(conf, *args, fake=None):
    argv = [t.bin, "-c", conf, "batv"] + list(args)
    if fake:
        argv = ["faketime", fake] + argv
    env = dict(os.environ, TZ="UTC")
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10, env=env)
    return r.returncode, r.stdout.decode().strip(), r.stderr.decode().strip()


def sign(addr, fake=None, conf=None):
    rc, out, err = cli(conf or bs.conf, "sign", addr, fake=fake)
    if rc != 0 or not out.startswith("prvs="):
        raise RuntimeError("batv sign %s: rc %d %s %s" % (addr, rc, out, err))
    return out


def py_tag(addr, key, secret, day_offset=0, validity=7):
    """The draft's tag, computed independently of backstop."""
    ddd = "%03d" % ((int(time.time()) // 86400 + day_offset + validity) % 1000)
    mac = hmac.new(secret.encode(), ("%d%s%s" % (key, ddd, addr)).encode(), hashlib.sha1).hexdigest()[:6]
    return "prvs=%d%s%s=%s" % (key, ddd, mac, addr)


def flip_mac(tag):
    """The same tag with the last hex digit of the MAC changed."""
    i = tag.index("=", 5) - 1
    return tag[:i] + ("0" if tag[i] != "0" else "1") + tag[i + 1:]


def session():
    c = bs.client()
    t.check_reply("EHLO", c.ehlo(), 250)
    return c


def no_content_in_postfix(name):
    """Postfix took no message since mark(): no cleanup message-id, no qmgr
    from= line, nothing delivered."""
    pf.settle(0.5)
    t.check("%s: Postfix's cleanup saw no message" % name,
            pf.count_log(r"cleanup\[\d+\]: \w+: message-id=") == 0, pf.log(True))
    t.check("%s: Postfix's qmgr queued nothing" % name, pf.queued_count() == 0, pf.log(True))
    t.check("%s: nothing delivered" % name, pf.messages() == [], pf.messages())


VALID = sign("user@test.example")

with t.case("the CLI's tags are the draft's tags"):
    t.check("backstop batv sign == HMAC-SHA1(secret 1, K DDD addr)[:6]",
            VALID == py_tag("user@test.example", 1, SECRETS[1]), (VALID, py_tag("user@test.example", 1, SECRETS[1])))
    rc, out, _ = cli(bs.conf, "verify", VALID)
    t.check("backstop batv verify accepts it", rc == 0 and out == "valid user@test.example", (rc, out))

with t.case("valid tagged bounce: accepted, backend gets the stripped recipient"):
    pf.clear_mail()
    pf.mark()
    bs.mark()
    c = session()
    rs = c.mail_transaction("", [VALID], make_message("bounce ok", mail_from="MAILER-DAEMON@remote.example",
                                                         to=VALID))
    t.check("MAIL, RCPT, DATA, dot all accepted", [r.code for r in rs] == [250, 250, 354, 250], rs)
    c.cmd("QUIT")
    msgs = pf.wait_for_mail(1)
    t.check("one message delivered to user", len(msgs) == 1 and msgs[0].mailbox == "user", msgs)
    m = msgs[0] if msgs else None
    t.check("Return-Path is the null sender", m and m.headers("Return-Path") == ["<>"], m and m.headers("Return-Path"))
    t.check("X-Original-To is the stripped address",
            m and m.headers("X-Original-To") == ["user@test.example"], m and m.headers("X-Original-To"))
    t.check("Delivered-To is the stripped address",
            m and m.headers("Delivered-To") == ["user@test.example"], m and m.headers("Delivered-To"))
    t.check("maillog: delivered to=<user@test.example>",
            pf.wait_log(r"virtual\[\d+\]: \w+: to=<user@test\.example>, relay=virtual.*status=sent"),
            pf.log(True))
    t.check("maillog never names the tagged form (no orig_to, no prvs=)",
            "prvs=" not in pf.log(True).lower() and "orig_to=" not in pf.log(True), pf.log(True))
    t.check("summary line says batv=pass", bs.wait_log(r"batv=pass"), bs.log(True)[-2000:])

FORGED = [
    ("no tag", "user@test.example", "no BATV tag"),
    ("unknown key", py_tag("user@test.example", 5, "some-other-secret"), "unknown BATV key"),
    ("wrong key's secret", py_tag("user@test.example", 0, SECRETS[2]), "invalid BATV signature"),
    ("flipped MAC", flip_mac(VALID), "invalid BATV signature"),
    ("expired (signed 30 days ago)", sign("user@test.example", fake="-30 days"), "BATV tag expired"),
    ("expired by one day", py_tag("user@test.example", 1, SECRETS[1], day_offset=-8), "BATV tag expired"),
    ("malformed", "prvs=1=user@test.example", "malformed BATV tag"),
    ("tag for another user", VALID.replace("=user@", "=user2@"), "invalid BATV signature"),
]

with t.case("forged bounces: 550 5.7.1 at DATA with the reason, Postfix never takes content"):
    pf.clear_mail()
    pf.mark()
    bs.mark()
    c = session()
    for name, rcpt, reason in FORGED:
        t.check_reply("%s: MAIL FROM:<> 250" % name, c.cmd("MAIL FROM:<>"), 250)
        t.check_reply("%s: RCPT 250 (refuse_at = data)" % name, c.cmd("RCPT TO:<%s>" % rcpt), 250)
        r = c.cmd("DATA")
        t.check_reply("%s: DATA 550 5.7.1" % name, r, 550, "5.7.1")
        t.check("%s: the reply says '%s'" % (name, reason),
                "<%s>: address did not send this mail (%s)" % (rcpt, reason) in r.text, r)
        # whatever the client sends now is not content
        t.check_reply("%s: RSET 250 afterwards" % name, c.cmd("RSET"), 250)
    # the session is still good for a legitimate bounce
    rs = c.mail_transaction("", [VALID], make_message("after forgeries"))
    t.check_reply("a valid bounce on the same session is still accepted", rs[-1], 250)
    c.cmd("QUIT")
    msgs = pf.wait_for_mail(1)
    pf.settle(0.5)
    t.check("Postfix delivered only the valid bounce", len(pf.messages()) == 1, pf.messages())
    t.check("Postfix's cleanup saw exactly one message",
            pf.count_log(r"cleanup\[\d+\]: \w+: message-id=") == 1, pf.log(True))
    t.check("Postfix's qmgr queued exactly one", pf.queued_count() == 1, pf.log(True))
    for name, rcpt, reason in FORGED:
        tok = {"no BATV tag": "no_tag", "unknown BATV key": "unknown_key", "invalid BATV signature": "bad_mac",
               "BATV tag expired": "expired", "malformed BATV tag": "malformed"}[reason]
        t.check("log: refused bounce to %s at DATA (%s)" % (name, reason),
                re.search(r"batv: refused bounce to %s at DATA: %s" % (re.escape(rcpt), re.escape(reason)),
                          bs.log(True)), bs.log(True)[-3000:])
        t.check("summary: batv=fail(%s) for %s" % (tok, name), "batv=fail(%s)" % tok in bs.log(True))

with t.case("forged bounce alone on a session: backend never gets content"):
    pf.clear_mail()
    pf.mark()
    c = session()
    rs = c.mail_transaction("", ["user@test.example"], make_message("forged"))
    t.check_reply("DATA refused 550 5.7.1", rs[-1], 550, "5.7.1")
    t.check_reply("QUIT 221", c.cmd("QUIT"), 221)
    no_content_in_postfix("untagged bounce")

with t.case("callout (MAIL FROM:<>, RCPT, RSET / QUIT) succeeds"):
    pf.mark()
    c = session()
    t.check_reply("callout MAIL FROM:<> 250", c.cmd("MAIL FROM:<>"), 250)
    t.check_reply("callout RCPT TO:<user@test.example> 250", c.cmd("RCPT TO:<user@test.example>"), 250, "2.1.5")
    t.check_reply("RSET 250", c.cmd("RSET"), 250)
    t.check_reply("second callout MAIL 250", c.cmd("MAIL FROM:<>"), 250)
    t.check_reply("second callout RCPT 250", c.cmd("RCPT TO:<user2@test.example>"), 250)
    t.check_reply("QUIT 221", c.cmd("QUIT"), 221)
    t.check("the callout reached Postfix (it verified the recipient)",
            pf.wait_log(r"smtpd\[\d+\]: \w+: client=", 3), pf.log(True))
    no_content_in_postfix("callout")
    # an unknown user is still unknown: the callout sees the backend's answer
    c = session()
    c.cmd("MAIL FROM:<>")
    t.check_reply("callout to an unknown user: the backend's 550 5.1.1",
                  c.cmd("RCPT TO:<nobody@test.example>"), 550, "5.1.1")
    c.cmd("QUIT")

with t.case("postmaster@ and abuse@ accept untagged bounces"):
    pf.clear_mail()
    pf.mark()
    bs.mark()
    c = session()
    for u in ("postmaster", "abuse", "Postmaster"):
        rs = c.mail_transaction("", ["%s@test.example" % u], make_message("to " + u))
        t.check("bounce to %s@ accepted" % u, [r.code for r in rs] == [250, 250, 354, 250], rs)
    c.cmd("QUIT")
    msgs = pf.wait_for_mail(3)
    t.check("three messages delivered (postmaster x2, abuse)",
            sorted(m.mailbox for m in msgs) == ["abuse", "postmaster", "postmaster"], msgs)
    t.check("summary says batv=exempt", bs.wait_log(r"batv=exempt", count=3), bs.log(True)[-2000:])

with t.case("multi-recipient bounces: refused unless every recipient verifies"):
    pf.clear_mail()
    pf.mark()
    v2 = sign("user2@test.example")
    c = session()
    rs = c.mail_transaction("", [VALID, "user2@test.example"], make_message("multi 1"))
    t.check("valid + untagged: both RCPTs 250", [r.code for r in rs[1:3]] == [250, 250], rs)
    t.check_reply("valid + untagged: DATA 550 5.7.1", rs[-1], 550, "5.7.1")
    t.check("names the untagged one: no BATV tag",
            "<user2@test.example>: address did not send this mail (no BATV tag)" in rs[-1].text, rs[-1])
    c.cmd("RSET")
    rs = c.mail_transaction("", [VALID, "postmaster@test.example"], make_message("multi 2"))
    t.check_reply("valid + postmaster: DATA 550 5.7.1 (a bounce has one recipient)", rs[-1], 550, "5.7.1")
    t.check("reason: not all with a valid BATV tag", "not all with a valid BATV tag" in rs[-1].text, rs[-1])
    c.cmd("RSET")
    rs = c.mail_transaction("", [VALID, flip_mac(v2)], make_message("multi 3"))
    t.check_reply("valid + bad MAC: DATA 550 5.7.1", rs[-1], 550, "5.7.1")
    t.check("reason: invalid BATV signature", "(invalid BATV signature)" in rs[-1].text, rs[-1])
    c.cmd("RSET")
    no_content_in_postfix("multi-recipient forged bounces")
    pf.mark()
    rs = c.mail_transaction("", [VALID, v2], make_message("multi ok"))
    t.check_reply("two recipients, both valid: accepted", rs[-1], 250)
    c.cmd("QUIT")
    msgs = pf.wait_for_mail(2)
    t.check("delivered to user and user2", sorted(m.mailbox for m in msgs) == ["user", "user2"], msgs)

with t.case("non-null sender to a tagged recipient: stripped and accepted, even expired"):
    pf.clear_mail()
    pf.mark()
    expired = sign("user2@test.example", fake="-30 days")
    c = session()
    rs = c.mail_transaction("someone@remote.example", [VALID], make_message("reply valid"))
    t.check_reply("reply to a valid tag: accepted", rs[-1], 250)
    rs = c.mail_transaction("someone@remote.example", [expired], make_message("reply expired"))
    t.check_reply("reply to an expired tag: accepted", rs[-1], 250)
    rs = c.mail_transaction("someone@remote.example", ["user3@test.example"], make_message("plain"))
    t.check_reply("ordinary mail to an untagged address: accepted", rs[-1], 250)
    c.cmd("QUIT")
    msgs = pf.wait_for_mail(3)
    t.check("three delivered", sorted(m.mailbox for m in msgs) == ["user", "user2", "user3"], msgs)
    for m in msgs:
        want = "%s@test.example" % m.mailbox
        t.check("%s: X-Original-To is stripped (%s)" % (m.mailbox, want),
                m.headers("X-Original-To") == [want], m.headers("X-Original-To"))
    t.check("maillog never names a tagged form", "prvs=" not in pf.log(True).lower(), pf.log(True))

with t.case("bounce_senders: MAILER-DAEMON@* is a bounce"):
    pf.clear_mail()
    pf.mark()
    c = session()
    rs = c.mail_transaction("MAILER-DAEMON@remote.example", ["user@test.example"], make_message("md forged"))
    t.check_reply("MAILER-DAEMON@ to an untagged address: DATA 550 5.7.1", rs[-1], 550, "5.7.1")
    t.check("reason: no BATV tag", "(no BATV tag)" in rs[-1].text, rs[-1])
    c.cmd("RSET")
    rs = c.mail_transaction("mailer-daemon@other.example", [flip_mac(VALID)], make_message("md bad mac"))
    t.check_reply("mailer-daemon@ (any case) with a bad MAC: DATA 550 5.7.1", rs[-1], 550, "5.7.1")
    c.cmd("RSET")
    no_content_in_postfix("bounce_senders forged")
    pf.mark()
    rs = c.mail_transaction("MAILER-DAEMON@remote.example", [VALID], make_message("md ok"))
    t.check_reply("MAILER-DAEMON@ to a valid tag: accepted", rs[-1], 250)
    c.cmd("QUIT")
    msgs = pf.wait_for_mail(1)
    t.check("delivered to user, stripped", len(msgs) == 1 and msgs[0].headers("X-Original-To") == ["user@test.example"],
            msgs)

with t.case("unprotected domains are not checked"):
    pf.mark()
    c = session()
    c.cmd("MAIL FROM:<>")
    r = c.cmd("RCPT TO:<user@elsewhere.example>")
    t.check("bounce to another domain: Postfix's own answer (550 5.7.1 outbound delivery disabled), not BATV's",
            r.code == 550 and "outbound delivery disabled" in r.text, r)
    c.cmd("QUIT")

with t.case("refuse_at = rcpt: 550 5.7.1 at RCPT, Postfix never sees the recipient"):
    bs2 = t.backstop({"backend": {"address": pf.address}, "batv": dict(BATV, refuse_at="rcpt")})
    pf.clear_mail()
    pf.mark()
    c = bs2.client()
    c.ehlo()
    for name, rcpt, reason in FORGED:
        t.check_reply("%s: MAIL FROM:<> 250" % name, c.cmd("MAIL FROM:<>"), 250)
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        t.check_reply("%s: RCPT 550 5.7.1" % name, r, 550, "5.7.1")
        t.check("%s: the reply says '%s'" % (name, reason),
                "<%s>: address did not send this mail (%s)" % (rcpt, reason) in r.text, r)
        t.check_reply("%s: DATA then 554 5.5.1 (no valid recipients)" % name, c.cmd("DATA"), 554, "5.5.1")
        c.cmd("RSET")
    c.cmd("MAIL FROM:<>")
    t.check_reply("callout to an untagged address is refused at RCPT too", c.cmd("RCPT TO:<user2@test.example>"),
                  550, "5.7.1")
    c.cmd("RSET")
    pf.settle(0.5)
    t.check("Postfix accepted no recipient (no smtpd client= line)",
            pf.count_log(r"smtpd\[\d+\]: \w+: client=") == 0, pf.log(True))
    no_content_in_postfix("refuse_at = rcpt")
    pf.mark()
    rs = c.mail_transaction("", ["postmaster@test.example"], make_message("pm rcpt mode"))
    t.check_reply("postmaster@ still accepted", rs[-1], 250)
    rs = c.mail_transaction("", [VALID], make_message("valid rcpt mode"))
    t.check_reply("valid tag still accepted", rs[-1], 250)
    c.cmd("QUIT")
    msgs = pf.wait_for_mail(2)
    t.check("both delivered", sorted(m.mailbox for m in msgs) == ["postmaster", "user"], msgs)
    bs2.stop()

with t.case("observe mode: forged bounces accepted and marked"):
    bs3 = t.backstop({"backend": {"address": pf.address}, "batv": dict(BATV, mode="observe")})
    pf.clear_mail()
    pf.mark()
    c = bs3.client()
    c.ehlo()
    rs = c.mail_transaction("", ["user@test.example"], make_message("observe no tag"))
    t.check("untagged bounce accepted", [r.code for r in rs] == [250, 250, 354, 250], rs)
    exp = sign("user2@test.example", fake="-30 days")
    rs = c.mail_transaction("", [exp], make_message("observe expired"))
    t.check_reply("expired bounce accepted", rs[-1], 250)
    rs = c.mail_transaction("", [VALID], make_message("observe valid"))
    t.check_reply("valid bounce accepted", rs[-1], 250)
    c.cmd("QUIT")
    msgs = pf.wait_for_mail(3)
    by = {}
    for m in msgs:
        by[m.msg["Subject"]] = m
    m = by.get("observe no tag")
    t.check("untagged: marked X-Backstop-BATV: fail (no BATV tag) rcpt=user@test.example",
            m is not None and m.headers("X-Backstop-BATV") == ["fail (no BATV tag) rcpt=user@test.example"],
            m and m.headers("X-Backstop-BATV"))
    m = by.get("observe expired")
    t.check("expired: marked fail (BATV tag expired), delivered to the stripped address",
            m is not None and m.headers("X-Backstop-BATV") == ["fail (BATV tag expired) rcpt=%s" % exp]
            and m.headers("X-Original-To") == ["user2@test.example"],
            m and (m.headers("X-Backstop-BATV"), m.headers("X-Original-To")))
    m = by.get("observe valid")
    t.check("valid: not marked", m is not None and m.headers("X-Backstop-BATV") == [], m and m.headers("X-Backstop-BATV"))
    t.check("log: observe ... would be refused",
            re.search(r"batv: observe: bounce to user@test\.example would be refused: no BATV tag", bs3.log()),
            bs3.log()[-3000:])
    bs3.stop()

with t.case("a world-readable keys file is refused by -t with a clear message"):
    bad = os.path.join(kdir, "readable.keys")
    write_keys(SECRETS, mode=0o644, path=bad)
    conf = os.path.join(kdir, "readable.ini")
    with open(bs.conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.replace(KEYS, bad))
    rc, out = bs.check_config(conf)
    t.check("backstop -t exits non-zero", rc != 0, out)
    t.check("message names the file, the mode and the fix",
            bad in out and "0644" in out and "chmod g-w,o-rwx" in out, out)
    t.check("message does not show a secret", not any(s in out for s in SECRETS.values()), out)
    rc, out = bs.check_config()
    t.check("the same config with the 0600 file passes -t", rc == 0, out)

with t.case("SIGHUP reloads a changed keys file"):
    pf.clear_mail()
    old1 = VALID
    tag2 = py_tag("user@test.example", 2, SECRETS[2])
    new = {0: SECRETS[0], 1: "one-secret-ROTATED-9876", 3: "three-secret-new"}
    write_keys(new)
    bs.mark()
    bs.signal(signal.SIGHUP)
    t.check("reload logged", bs.wait_log(r"reload: configuration .* loaded"), bs.log(True))
    new1 = sign("user@test.example")
    t.check("the CLI signs with the new secret", new1 == py_tag("user@test.example", 1, new[1]), new1)
    c = session()
    for name, rcpt, reason in (("old key 1 secret", old1, "invalid BATV signature"),
                               ("removed key 2", tag2, "unknown BATV key")):
        rs = c.mail_transaction("", [rcpt], make_message(name))
        t.check_reply("after reload, %s: DATA 550 5.7.1" % name, rs[-1], 550, "5.7.1")
        t.check("after reload, %s: %s" % (name, reason), "(%s)" % reason in rs[-1].text, rs[-1])
        c.cmd("RSET")
    for name, rcpt in (("new key 1 secret", new1),
                       ("new key 3", py_tag("user3@test.example", 3, new[3]))):
        rs = c.mail_transaction("", [rcpt], make_message(name))
        t.check_reply("after reload, %s: accepted" % name, rs[-1], 250)
    c.cmd("QUIT")
    t.check("both delivered", len(pf.wait_for_mail(2)) == 2, pf.messages())

    # a refused keys file (world-readable) keeps the keys in force
    write_keys({1: "yet-another-secret"}, mode=0o644)
    bs.mark()
    bs.signal(signal.SIGHUP)
    t.check("refused reload is logged with the reason",
            bs.wait_log(r"batv\.keys.*(0644|chmod o-rwx)"), bs.log(True))
    c = session()
    rs = c.mail_transaction("", [new1], make_message("kept keys"))
    t.check_reply("the previous keys stay in force", rs[-1], 250)
    c.cmd("QUIT")
    write_keys(SECRETS)
    t.check("backstop still running", bs.running())

bs.stop()
t.done()

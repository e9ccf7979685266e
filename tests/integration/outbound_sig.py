#!/usr/bin/python3
"""outbound_sig: the evidence backstop keeps of the mail it sends (issue 11).

Messages relayed through the [outbound] listener (smtp-sink as the next hop)
arrive with one X-Backstop-Sig field, checked here with Python's hmac - an
implementation independent of filters/bsig.c - for a normal message, a
message without Message-ID, the null sender, and a message whose client put
its own X-Backstop-Sig in (replaced). The (Message-ID, sender) pairs of the
messages the relay accepted are in the sentlog's state file after SIGTERM
(asked with `backstop sentlog contains ID SENDER`, and again after a
restart); the same Message-ID with another sender is not, nor is a null
sender's message, nor those of a message refused (over max_message_size)
and of one whose client went away mid-DATA; the log is also saved
periodically while backstop runs (a worker thread). The README's key
rotation (add key 2, sign_key = 2) keeps the log; a FIFO planted as the
state file does not block start-up. On the inbound listener a
client's X-Backstop-Sig never reaches the backend."""
import base64
import hashlib
import hmac
import os
import re
import socket
import time
from harness import *

t = Test("outbound_sig", need=("smtp-sink",), watchdog=90)

SECRETS = {0: b"sig-zero-secret", 1: b"sig-one-secret-0123456789"}
kdir = t.tmpdir("keys")
KEYS = os.path.join(kdir, "batv.keys")
with open(KEYS, "wb") as f:
    for k, s in sorted(SECRETS.items()):
        f.write(b"%d %s\n" % (k, s))
os.chmod(KEYS, 0o600)

# a flush every 700 ms instead of every minute (outbound_sig.c), so that the
# periodic flush on the worker thread is seen within the test
os.environ["BACKSTOP_SENTLOG_FLUSH_MS"] = "700"
sink = t.sink()
OUT_PORT = free_port()
bs = t.backstop({"backend": {"address": sink.address},
                 "limits": {"max_message_size": "20k"},
                 "batv": {"domains": "test.example", "keys_file": KEYS, "sign_key": "1"},
                 "bounce": {"remember": "30d", "sent_per_day": "1000"},
                 "outbound": {"listen": "127.0.0.1:%d" % OUT_PORT, "relay": sink.address}})
if not wait_port("127.0.0.1", OUT_PORT, 5):
    bs.dump_log()
    raise SystemExit("outbound listener not up")
STATE = os.path.join(bs.sections["server"]["state_dir"], "sentlog.state")


# ---------------------------------------------------------------- the check, in Python
def canon_msgid(v):
    v = v.replace("\r", "").replace("\n", "").strip(" \t")
    m = re.search(r"<[^>]*>", v)
    return m.group(0) if m else v


def canon_date(v):
    out, depth, i = [], 0, 0
    while i < len(v):
        c = v[i]
        if depth or c == "(":
            if c == "\\" and i + 1 < len(v):
                i += 1
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            out.append(" ")
        else:
            out.append(c)
        i += 1
    return " ".join("".join(out).split())


def canon_sender(v):
    v = v.strip(" \t\r\n")
    if len(v) >= 2 and v[0] == "<" and v[-1] == ">":
        v = v[1:-1]
    v = re.sub(r"^(?i:prvs)=[0-9]{4}[0-9a-fA-F]{6}=", "", v)
    local, at, dom = v.rpartition("@")
    return local + at + dom.lower() if at else v


def py_verify(value, msgid, date, sender):
    """(ok, why): value checked as bsig.h describes it."""
    m = re.fullmatch(r"v=1; k=(\d); t=(\d+); s=([A-Za-z0-9_-]{22})", value or "")
    if not m:
        return False, "malformed %r" % value
    k, day, mac = int(m.group(1)), int(m.group(2)), m.group(3)
    data = b"\0".join([b"backstop-sig v=1", b"%d" % k, b"%d" % day, canon_msgid(msgid).encode(),
                       canon_date(date).encode(), canon_sender(sender).encode()])
    want = base64.urlsafe_b64encode(hmac.new(SECRETS[k], data, hashlib.sha256).digest()[:16])
    today = int(time.time() // 86400)
    if want.rstrip(b"=").decode() != mac:
        return False, "MAC differs"
    if k != 1 or day not in (today, today - 1):
        return False, "key %d day %d" % (k, day)
    return True, ""


def sigs_of(dump):
    text = dump.decode("utf-8", "replace")
    return re.findall(r"^X-Backstop-Sig:[ \t]*(.*?)\r?$", text, re.M | re.I)


def mail_from_of(dump):
    m = re.search(r"^X-Mail-Args: <([^>]*)>", dump.decode("utf-8", "replace"), re.M)
    return m.group(1) if m else None


def header_of(msg, name):
    m = re.search(rb"^%s:[ \t]*(.*?)\r?$" % name.encode(), msg, re.M | re.I)
    return m.group(1).decode() if m else ""


def send_out(mail_from, subject, msg=None, extra=()):
    msg = msg or make_message(subject, mail_from=mail_from or "MAILER-DAEMON@test.example",
                              to="someone@remote.example", extra_headers=extra)
    c = bs.client(port=OUT_PORT)
    c.ehlo()
    rs = c.mail_transaction(mail_from, ["someone@remote.example"], msg)
    c.cmd("QUIT")
    return rs, msg


def contains(msgid, sender="user@test.example", conf=None):
    return t.run_backstop(["-c", conf or bs.conf, "sentlog", "contains", msgid, sender])


accepted = []   # Message-IDs the relay took (from user@test.example)

with t.case("outbound: a relayed message carries one valid X-Backstop-Sig"):
    rs, msg = send_out("user@test.example", "sig plain")
    t.check("accepted", [r.code for r in rs] == [250, 250, 354, 250], rs)
    d = sink.with_subject("sig plain")
    t.check("the next hop got it", len(d) == 1, sink.messages())
    sigs = sigs_of(d[0]) if d else []
    t.check("one X-Backstop-Sig field", len(sigs) == 1, sigs)
    sender = mail_from_of(d[0]) if d else ""
    t.check("the envelope sender went out BATV-tagged", re.match(r"prvs=1\d{3}[0-9a-f]{6}=user@test\.example$",
                                                             sender or ""), sender)
    ok, why = py_verify(sigs[0] if sigs else "", header_of(msg, "Message-ID"), header_of(msg, "Date"),
                        sender or "")
    t.check("Python's HMAC-SHA256 agrees with the signature", ok, (why, sigs))
    ok, _ = py_verify(sigs[0] if sigs else "", header_of(msg, "Message-ID").replace("<", "<x", 1),
                      header_of(msg, "Date"),
                      sender or "")
    t.check("... and disagrees for another Message-ID (the check can fail)", not ok)
    accepted.append(header_of(msg, "Message-ID"))

with t.case("outbound: a client's own X-Backstop-Sig is replaced by ours"):
    rs, msg = send_out("user@test.example", "sig forged",
                       extra=("X-Backstop-Sig: v=1; k=0; t=1; s=AAAAAAAAAAAAAAAAAAAAAA",))
    t.check("accepted", rs[-1].code == 250, rs)
    d = sink.with_subject("sig forged")
    sigs = sigs_of(d[0]) if d else []
    t.check("one X-Backstop-Sig field, not the client's", len(sigs) == 1 and "t=1;" not in sigs[0], sigs)
    ok, why = py_verify(sigs[0] if sigs else "", header_of(msg, "Message-ID"), header_of(msg, "Date"),
                        mail_from_of(d[0]) if d else "")
    t.check("ours verifies", ok, why)
    accepted.append(header_of(msg, "Message-ID"))

with t.case("outbound: no Message-ID, and the null sender: still signed"):
    body = b"From: <user@test.example>\r\nSubject: sig noid\r\nDate: Tue, 02 Jan 2024\r\n 10:00:00 +0000 (Coordinated Universal Time)\r\n\r\nx\r\n"
    rs, msg = send_out("user@test.example", "sig noid", msg=body)
    t.check("accepted", rs[-1].code == 250, rs)
    d = sink.with_subject("sig noid")
    sigs = sigs_of(d[0]) if d else []
    # as a bounce parser keeping 63 bytes of the Date would quote it
    ok, why = py_verify(sigs[0] if sigs else "", "", "Tue, 02 Jan 2024 10:00:00 +0000 (Coordinated Univ",
                        mail_from_of(d[0]) if d else "")
    t.check("signed over an empty Message-ID", len(sigs) == 1 and ok, (why, sigs))
    rs, msg = send_out("", "sig null")
    d = sink.with_subject("sig null")
    sigs = sigs_of(d[0]) if d else []
    ok, why = py_verify(sigs[0] if sigs else "", header_of(msg, "Message-ID"), header_of(msg, "Date"), "")
    t.check("null sender: signed over an empty sender", len(sigs) == 1 and ok, (why, sigs))
    null_mid = header_of(msg, "Message-ID")

refused = []
with t.case("outbound: refused and aborted messages"):
    big = make_message("sig big", mail_from="user@test.example", to="someone@remote.example",
                       body="x" * 100 + "\n" * 300 + ("y" * 70 + "\n") * 400)
    rs, _ = send_out("user@test.example", "sig big", msg=big)
    t.check("over max_message_size: 552", rs[-1].code == 552, rs)
    refused.append(header_of(big, "Message-ID"))
    aborted = make_message("sig aborted", mail_from="user@test.example", to="someone@remote.example")
    c = bs.client(port=OUT_PORT)
    c.ehlo()
    t.check_reply("MAIL", c.cmd("MAIL FROM:<user@test.example>"), 250)
    t.check_reply("RCPT", c.cmd("RCPT TO:<someone@remote.example>"), 250)
    t.check_reply("DATA", c.cmd("DATA"), 354)
    c.send(aborted)   # no final dot
    time.sleep(0.2)
    c.close()
    refused.append(header_of(aborted, "Message-ID"))
    t.check("backstop saw the client go", bs.wait_log(r"aborted|lost|closed", 5), bs.log(True)[-2000:])
    t.check("neither reached the next hop",
            not sink.with_subject("sig big", 0.5) and not sink.with_subject("sig aborted", 0.5),
            [dump_subject(x) for x in sink.messages()])

with t.case("inbound: a client's X-Backstop-Sig never reaches the backend"):
    c = bs.client()
    c.ehlo()
    rs = c.mail_transaction("someone@remote.example", ["user@test.example"],
                            make_message("sig inbound", extra_headers=(
                                "X-Backstop-Sig: v=1; k=1; t=20000; s=AAAAAAAAAAAAAAAAAAAAAA",)))
    t.check("accepted", rs[-1].code == 250, rs)
    d = sink.with_subject("sig inbound")
    t.check("the backend got it without the field", len(d) == 1 and sigs_of(d[0]) == [],
            d and d[0][:800])
    t.check("backstop logged the removal", bs.wait_log(r"removed forged X-Backstop-Sig"),
            bs.log(True)[-2000:])

with t.case("sentlog: saved periodically by a worker thread while backstop runs"):
    t.check("the state file appears", poll(lambda: os.path.exists(STATE), 5), bs.log()[-2000:])
    t.check("backstop logged the worker's save", bs.wait_log(r"sentlog: saved \(worker thread\)", 5),
            bs.log()[-2000:])
    rc, out = contains(accepted[0])
    t.check("%s: sent, before any shutdown" % accepted[0], rc == 0, (rc, out))

with t.case("sentlog: accepted Message-IDs are in the state file after SIGTERM"):
    bs.stop()
    t.check("state file written at shutdown", os.path.exists(STATE), os.listdir(os.path.dirname(STATE)))
    t.check("mode 0600", os.path.exists(STATE) and os.stat(STATE).st_mode & 0o777 == 0o600)
    for mid in accepted:
        rc, out = contains(mid)
        t.check("%s: sent" % mid, rc == 0 and out.strip() == "sent", (rc, out))
    for mid in refused + ["<never-sent@example.org>"]:
        rc, out = contains(mid)
        t.check("%s: not found" % mid, rc == 1 and out.strip() == "not found", (rc, out))
    rc, out = contains("  %s  " % accepted[0])
    t.check("the id is found in any form a bounce quotes it", rc == 0, (rc, out))
    rc, out = contains(accepted[0], "prvs=1999abcdef=USER@Test.Example")
    t.check("the sender in any form a bounce is addressed to", rc == 0, (rc, out))
    # review 11, 1c: user@'s Message-ID says nothing about user3@
    rc, out = contains(accepted[0], "user3@test.example")
    t.check("the same id from another sender: not found", rc == 1 and out.strip() == "not found",
            (rc, out))
    for sender in ("", "MAILER-DAEMON@test.example"):
        rc, out = contains(null_mid, sender)
        t.check("the null sender's message is not remembered (%r)" % sender, rc == 1, (rc, out))
    rc, out = t.run_backstop(["-c", bs.conf, "sentlog", "contains", accepted[0]])
    t.check("the CLI wants the sender too (usage, exit 2)", rc == 2 and "SENDER" in out, (rc, out))

with t.case("sentlog: a restart loads the state file and keeps it"):
    bs.mark()
    bs.start()
    t.check("backstop logged the load", bs.wait_log(r"sentlog: .*loaded %d ids of 1 days" % len(accepted)),
            bs.log(True)[-2000:])
    rs, msg = send_out("user@test.example", "sig after restart")
    accepted.append(header_of(msg, "Message-ID"))
    bs.stop()
    for mid in accepted:
        rc, out = contains(mid)
        t.check("%s: sent" % mid, rc == 0, (rc, out))

with t.case("sentlog: the README's key rotation (add key 2, sign_key = 2) keeps the log"):
    with open(KEYS, "ab") as f:
        f.write(b"2 sig-two-secret-rotated-in\n")
    bs.sections["batv"]["sign_key"] = "2"
    bs.write_config()
    bs.mark()
    bs.start()
    t.check("backstop loaded the log", bs.wait_log(r"sentlog: .*loaded %d ids" % len(accepted)),
            bs.log(True)[-2000:])
    rs, msg = send_out("user@test.example", "sig after rotation")
    d = sink.with_subject("sig after rotation")
    sigs = sigs_of(d[0]) if d else []
    t.check("signed with key 2 now", len(sigs) == 1 and "k=2;" in sigs[0], sigs)
    accepted.append(header_of(msg, "Message-ID"))
    bs.stop()
    for mid in accepted:
        rc, out = contains(mid)
        t.check("%s: still sent" % mid, rc == 0, (rc, out))

with t.case("sentlog: a damaged state file is ignored, never a crash"):
    with open(STATE, "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0xff]))
    rc, out = contains(accepted[0])
    t.check("the CLI says why and exits 2", rc == 2 and "checksum mismatch" in out, (rc, out))
    bs.mark()
    bs.start()
    t.check("backstop starts and logs why", bs.wait_log(r"sentlog: .*ignored .*checksum mismatch.*starting empty"),
            bs.log(True)[-2000:])
    bs.stop()

with t.case("sentlog: a FIFO as the state file does not block start-up"):
    os.unlink(STATE)
    os.mkfifo(STATE, 0o600)
    bs.mark()
    try:
        bs.start(timeout=5)
        started = True
    except RuntimeError as e:
        started = False
        log("# %s" % str(e)[:300])
    t.check("backstop starts", started)
    t.check("and logs that it is not a regular file",
            started and bs.wait_log(r"sentlog: .*is not a regular file; starting empty"),
            bs.log(True)[-2000:])
    if started:
        rs, _ = send_out("user@test.example", "sig after fifo")
        t.check("and relays", rs[-1].code == 250, rs)
        bs.stop()

with t.case("-t: state_dir must be a directory"):
    bad = dict(bs.sections)
    bad["server"] = dict(bad["server"], state_dir=os.path.join(kdir, "missing"))
    conf = os.path.join(kdir, "bad.ini")
    with open(conf, "w") as f:
        f.write(ini_text(bad))
    rc, out = t.run_backstop(["-t", "-c", conf])
    t.check("refused, naming state_dir", rc == 1 and "state_dir" in out and "not a directory" in out, (rc, out))

t.done()

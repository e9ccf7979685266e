#!/usr/bin/python3
"""bounce_corpus: the bounce check on real bounces (issue 11): every message
of sisimai's set-of-emails maildir/bsd/ (../shared/corpora, 629 bounces,
auto-replies and feedback reports from some 80 MTAs and providers) replayed
as CRLF, dot-stuffed, MAIL FROM:<>, to the untagged local recipient
user@test.example, through backstop with [bounce] mode = enforce,
unverifiable = refuse, [batv] mode = enforce, refuse_at = content (so BATV
does not refuse at DATA: the bounce check at end of data is what refuses),
in front of smtp-sink, over four connections of many transactions each.

Pass 1 prints a table per source MTA (the file name's prefix): messages,
the classes found, originals found, refused by the bounce check, refused
by BATV as ordinary null-sender mail (a class the classifier missed),
accepted. Target: at least 97 % of the bounces and auto-replies (every
file but the arf-* feedback reports, which [bounce] classes leaves out by
default) refused by the bounce check; each miss is listed.

Pass 2 replays the same messages with evidence planted in what the
classifier took for the original (the debug line "bounce: message N: class
... original ..." says what it found): in turn a Received field of one of
our_relays, a BATV tag on the original's Return-Path, a valid
X-Backstop-Sig over its Message-ID, Date and sender; a report that quotes
nothing gets an In-Reply-To of a Message-ID sent through [outbound] (so in
the sent log). All must be accepted.

Pass 3: maildir/not/ and the ordinary set tests/data/ordinary/ (if the
tree has it) from a non-null sender: never refused.

The corpus is required: missing under CI=true is a failure, elsewhere a
skip."""
import glob
import os
import re
import threading
import time
from harness import *
from bounce_msgs import py_tag, py_bsig

t = Test("bounce_corpus", need=("smtp-sink",), watchdog=170)


def corpus_dir():
    cands = [os.environ.get("BACKSTOP_CORPORA", ""),
             os.path.join(srcdir(), "..", "shared", "corpora"),
             os.path.join(srcdir(), "..", "..", "shared", "corpora")]
    for c in cands:
        d = os.path.join(c, "sisimai-set-of-emails", "maildir")
        if c and os.path.isdir(os.path.join(d, "bsd")):
            return os.path.abspath(d)
    return None


CORPUS = corpus_dir()
if CORPUS is None:
    why = "the corpus ../shared/corpora/sisimai-set-of-emails/maildir/bsd is missing " \
          "(or set BACKSTOP_CORPORA to the directory holding sisimai-set-of-emails)"
    if in_ci():
        t.check("corpus present", False, why)
        t.done()
    t.skip(why)

SECRET = "corpus-secret-0123456789abcdef"
kdir = t.tmpdir("keys")
KEYS = os.path.join(kdir, "batv.keys")
with open(KEYS, "w") as f:
    f.write("1 %s\n" % SECRET)
os.chmod(KEYS, 0o600)
RCPT = "user@test.example"
RELAY = "relay-out.test.example"
CONNS = 4

sink = t.sink(dump=False)
out_port = free_port()
bs = t.backstop({
    "backend": {"address": sink.address},
    "server": {"state_dir": t.tmpdir("state")},
    "limits": {"max_message_size": "10m"},
    "batv": {"mode": "enforce", "domains": "test.example", "keys_file": KEYS, "sign_key": "1",
             "refuse_at": "content"},
    "bounce": {"mode": "enforce", "unverifiable": "refuse", "our_relays": RELAY},
    "outbound": {"listen": "127.0.0.1:%d" % out_port, "relay": sink.address},
})


def wire(raw):
    """The message as an MTA would relay it: no mbox "From " line, CRLF."""
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return raw.replace(b"\n", b"\r\n")


def replay(items, mail_from):
    """items: [(name, bytes)]; sent over CONNS connections, in order on
    each. Returns {name: (local_port, nth transaction, final reply)}."""
    out = {}
    lock = threading.Lock()

    def worker(part):
        c = bs.client(timeout=20)
        c.ehlo()
        port = c.sock.getsockname()[1]
        for n, (name, body) in enumerate(part, 1):
            rs = c.mail_transaction(mail_from, [RCPT], body)
            last = rs[-1] if len(rs) == 4 else None
            if len(rs) != 4:
                last = ("early", rs)
            with lock:
                out[name] = (port, n, last)
        c.cmd("QUIT")
        c.close()

    threads = [threading.Thread(target=worker, args=(items[i::CONNS],)) for i in range(CONNS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return out


def analyse(sent, mark_text):
    """Per message: class, why, original description, verdict, notes."""
    log = mark_text
    sid_of = {int(p): s for s, p in re.findall(r"(\S+): connect from \[127\.0\.0\.1\]:(\d+)", log)}
    cls = {}
    for sid, n, c, why, rest in re.findall(
            r"(\S+): bounce: message (\d+): class (\w+) \((.*?)\); (no original|original .*)", log):
        cls[(sid, int(n))] = (c, why, rest)
    summ = {}
    for sid, n, checks, result in re.findall(r"txn (\S+?)\.(\d+) .*?checks=\[([^\]]*)\].*result: (.*)", log):
        summ[(sid, int(n))] = (checks, result)
    res = {}
    for name, (port, n, reply) in sent.items():
        key = (sid_of.get(port), n)
        c, why, orig = cls.get(key, ("?", "no classification line", ""))
        checks, result = summ.get(key, ("", ""))
        if isinstance(reply, tuple) or reply is None:
            verdict = "error"
        elif reply.code == 250:
            verdict = "accepted"
        elif reply.code == 550 and "did not send" in reply.text and "bounce=" in checks:
            verdict = "refused:bounce"
        elif reply.code == 550 and "address did not send this mail" in reply.text:
            verdict = "refused:batv"
        else:
            verdict = "other:%s" % reply
        res[name] = dict(cls=c, why=why, orig=orig, verdict=verdict, checks=checks,
                         found=orig.startswith("original"))
    return res


def source(name):
    m = re.match(r"(.*?)-\d+\.eml$", os.path.basename(name))
    return m.group(1) if m else name


files = sorted(glob.glob(os.path.join(CORPUS, "bsd", "*.eml")))
t.check("bsd/ holds the 629 messages", len(files) == 629, len(files))
msgs = [(os.path.basename(f), wire(open(f, "rb").read())) for f in files]

# ---------------------------------------------------------------- pass 1
t0 = time.time()
bs.mark()
sent = replay(msgs, "")
res1 = analyse(sent, bs.log(since_mark=True))
pass1_s = time.time() - t0

CLASSES = ["dsn", "ndr", "autoreply", "challenge", "mdn", "arf", "ordinary"]
rows = {}
for name, r in res1.items():
    row = rows.setdefault(source(name), dict(n=0, found=0, bounce=0, batv=0, acc=0, other=0,
                                             cls={}))
    row["n"] += 1
    row["found"] += r["found"]
    row["cls"][r["cls"]] = row["cls"].get(r["cls"], 0) + 1
    v = r["verdict"]
    row["bounce" if v == "refused:bounce" else "batv" if v == "refused:batv" else
        "acc" if v == "accepted" else "other"] += 1

log("")
log("pass 1 (%d messages in %.1f s): per source MTA" % (len(msgs), pass1_s))
log("%-24s %4s  %-34s %6s %8s %6s %5s %5s" % ("source", "n", "classes found", "orig", "refused",
                                            "batv", "acc", "err"))
tot = dict(n=0, found=0, bounce=0, batv=0, acc=0, other=0)
for src in sorted(rows):
    row = rows[src]
    cl = " ".join("%s:%d" % (c, row["cls"][c]) for c in CLASSES + ["?"] if c in row["cls"])
    log("%-24s %4d  %-34s %6d %8d %6d %5d %5d" % (src, row["n"], cl, row["found"], row["bounce"],
                                                row["batv"], row["acc"], row["other"]))
    for k in tot:
        tot[k] += row[k]
log("%-24s %4d  %-34s %6d %8d %6d %5d %5d" % ("total", tot["n"], "", tot["found"], tot["bounce"],
                                            tot["batv"], tot["acc"], tot["other"]))
judged = [n for n in res1 if not n.startswith("arf-")]
refused = [n for n in judged if res1[n]["verdict"] == "refused:bounce"]
rate = 100.0 * len(refused) / max(len(judged), 1)
log("bounces and auto-replies (all but arf-*): %d of %d refused by the bounce check = %.1f %%"
    % (len(refused), len(judged), rate))
log("misses (not refused by the bounce check):")
for n in sorted(set(judged) - set(refused)):
    r = res1[n]
    log("  %-32s class %-9s %-12s (%s) %s" % (n, r["cls"], r["verdict"], r["why"][:70], r["orig"][:80]))
arf = [n for n in res1 if n.startswith("arf-")]
log("arf-* (feedback reports, not in [bounce] classes): %s" % ", ".join(
    "%s %s" % (res1[n]["cls"], res1[n]["verdict"]) for n in sorted(arf)))
t.check("pass 1: >= 97 %% of bounces and auto-replies refused by the bounce check (%.1f %%)" % rate,
        rate >= 97.0)
t.check("pass 1: every message got a classification line and a verdict",
        all(r["cls"] != "?" and not r["verdict"].startswith(("error", "other")) for r in res1.values()),
        [(n, r["verdict"], r["cls"]) for n, r in res1.items()
         if r["cls"] == "?" or r["verdict"].startswith(("error", "other"))][:10])

# ---------------------------------------------------------------- pass 2
# one message through [outbound]: its Message-ID is in the sent log
SENT_MID = "<corpus-sent.%d@test.example>" % os.getpid()
c = SmtpClient("127.0.0.1", out_port, 10)
c.greeting()
c.ehlo()
rs = c.mail_transaction("user@test.example", ["someone@remote.example"], (
    "From: <user@test.example>\r\nTo: <someone@remote.example>\r\nSubject: hello\r\n"
    "Date: Mon, 07 Dec 2026 00:00:00 +0000\r\nMessage-ID: %s\r\n\r\nHello.\r\n" % SENT_MID).encode())
c.cmd("QUIT")
c.close()
t.check("a message went out through [outbound]", [r.code for r in rs] == [250, 250, 354, 250], rs)


def plant(name, body, r, i):
    """body with evidence in the original the classifier found; (kind, bytes)
    or (why not, None)."""
    m = re.match(r"original (quoted inline|in a MIME part): return-path <(.*?)> from <(.*?)> "
                 r"msgid (\S+) hops \d+(?: sig)? date (.*)$", r["orig"])
    head_end = body.find(b"\r\n\r\n")
    if not r["found"] or m is None:
        # quotes nothing: an In-Reply-To the sent log knows, on top
        return "in-reply-to", ("In-Reply-To: %s\r\n" % SENT_MID).encode() + body
    rpath, frm, mid, date = m.group(2), m.group(3), m.group(4), m.group(5)
    anchors = [a for a in (mid if mid != "-" else "", rpath, frm) if a]
    pos = -1
    for a in anchors:
        pos = body.find(a.encode(), head_end)
        if pos >= 0:
            break
    if pos < 0:
        return "no anchor for %s in the raw text" % anchors, None
    start = body.rfind(b"\r\n", 0, pos) + 2
    # a folded field: go up to the line that starts it
    while start > head_end + 4 and body[start:start + 1] in (b" ", b"\t") and \
            not re.match(rb"[ \t>]*[\w-]+:", body[start:body.find(b"\r\n", start)]):
        start = body.rfind(b"\r\n", 0, start - 2) + 2
    prefix = re.match(rb"[ \t>]*", body[start:]).group(0)
    kind = ("relay", "rpath", "sig")[i % 3]
    if kind == "rpath" and rpath:
        return kind, body[:head_end] + body[head_end:].replace(
            rpath.encode(), py_tag(rpath, 1, SECRET).encode())
    if kind == "rpath":
        line = "Return-Path: <%s>" % py_tag("user@test.example", 1, SECRET)
    elif kind == "relay":
        line = "Received: from %s (%s [192.0.2.3]) by mx.remote.example with ESMTP id PLANTED;" \
               " Mon, 07 Dec 2026 00:00:00 +0000" % (RELAY, RELAY)
    else:
        line = "X-Backstop-Sig: " + py_bsig(SECRET, 1, mid if mid != "-" else "", date, RCPT)
    return kind, body[:start] + prefix + line.encode() + b"\r\n" + body[start:]


planted, unplanted = [], []
for i, (name, body) in enumerate(msgs):
    kind, b = plant(name, body, res1[name], i)
    if b is None:
        unplanted.append((name, kind))
    else:
        planted.append((name, kind, b))
t0 = time.time()
bs.mark()
sent = replay([(n, b) for n, _, b in planted], "")
res2 = analyse(sent, bs.log(since_mark=True))
pass2_s = time.time() - t0
kinds = {}
for n, kind, _ in planted:
    k = kinds.setdefault(kind, [0, 0])
    k[0] += 1
    k[1] += res2[n]["verdict"] == "accepted"
log("")
log("pass 2 (evidence planted, %d messages in %.1f s): accepted per kind of evidence" % (
    len(planted), pass2_s))
for kind, (n, ok) in sorted(kinds.items()):
    log("  %-12s %4d planted, %4d accepted" % (kind, n, ok))
bad2 = sorted((n, res2[n]["verdict"], res2[n]["cls"], res2[n]["checks"]) for n, _, _ in planted
              if res2[n]["verdict"] != "accepted")
for b in bad2:
    log("  NOT accepted: %s %s class %s checks [%s]" % b)
for n, why in unplanted:
    log("  not planted: %s: %s" % (n, why))
t.check("pass 2: every message with evidence accepted (%d of %d)" % (
    len(planted) - len(bad2), len(msgs)), not bad2 and not unplanted, bad2[:10] + unplanted[:10])

# ---------------------------------------------------------------- pass 3
ordinary = sorted(glob.glob(os.path.join(CORPUS, "not", "*.eml")))
ordinary += sorted(glob.glob(os.path.join(srcdir(), "tests", "data", "ordinary", "*.eml")))
bs.mark()
sent = replay([(os.path.relpath(f, os.path.dirname(f) + "/../.."), wire(open(f, "rb").read()))
               for f in ordinary], "friend@remote.example")
res3 = analyse(sent, bs.log(since_mark=True))
log("")
log("pass 3: %d ordinary messages (maildir/not/ and tests/data/ordinary/) from a non-null sender"
    % len(ordinary))
for n in sorted(res3):
    r = res3[n]
    if r["verdict"] != "accepted" or r["cls"] != "ordinary":
        log("  %-40s class %-9s %s (%s)" % (n, r["cls"], r["verdict"], r["why"][:80]))
t.check("pass 3: no ordinary message refused", all(r["verdict"] == "accepted" for r in res3.values()),
        [(n, r["verdict"]) for n, r in res3.items() if r["verdict"] != "accepted"])
log("time: pass 1 %.1f s, pass 2 %.1f s" % (pass1_s, pass2_s))
bs.stop()
t.done()

#!/usr/bin/python3
"""log_formats: [log] destination = file and [log] format = json (issue 13).

backstop logs to a file as JSON in front of smtp-sink. A client with
hostile bytes in HELO and addresses (quotes, backslashes, a JSON fragment
that tries to add a key, 8-bit bytes, \\x01) sends one good message and
one too big: every line of the file parses with json.loads, holds the
stable keys, and the summary lines carry what the client sent (invalid
UTF-8 as U+FFFD) with result, reply code and enhanced code. Renaming the
file and sending SIGHUP (logrotate) makes a new file. A log file that
cannot be opened fails -t and start-up with a message naming [log] file; a
file whose writes fail (a full file system) drops lines, says so once on
stderr, and mail still flows. Text format to a file has the stderr line
form. JSON to syslog is cut below 8 KiB (rsyslog's default message size):
a summary with 100 long recipients leaves the recipients out whole, says
"truncated":true and keeps the other keys; to a file the same summary has
every key, the recipients that fit and "truncated":true.

With [server] user the file is opened and created as that user, never
through a symbolic link, and must be a regular file with one link owned by
it: a link the user plants to root's file is refused at start-up, by -t
and on SIGHUP, and the file is left alone; a file the user cannot create
is not created by root either; a created file is the user's without a
chown; logrotate's "create 0640 USER" file in root's directory works."""
import json
import pwd
import signal
import socket
import subprocess
from harness import *

t = Test("log_formats", need=("smtp-sink", "postfix"), watchdog=90)
sink = t.sink()
logdir = t.tmpdir("logs")
STABLE = ("ts", "level", "pid", "event", "session", "msg")
SUMMARY = ("txn", "client_ip", "client_port", "client_name", "helo", "tls_version", "tls_cipher",
           "tls_subject", "sender", "recipients", "recipients_count", "checks", "refused", "size",
           "duration_ms", "result_text", "result", "reply_code", "reply_enhanced", "reply_text",
           "queue_id")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def start(sections, logfile, ready=True):
    """A backstop whose log is not on stderr: started by hand, ready when
    its port answers (stderr still goes to bs.logfile)."""
    bs = t.backstop(sections, start=False)
    bs.logf = open(bs.logfile, "ab")
    bs.proc = subprocess.Popen([bs.bin, "-f", "-c", bs.conf], stdout=bs.logf,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if ready and not wait_port("127.0.0.1", bs.port, 10):
        t.error("backstop with log file %s did not start:\n%s" % (logfile, bs.log()))
    return bs


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def read_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().split(b"\n")[:-1]
    except FileNotFoundError:
        return []


def parse_all(name, path):
    """Every line a JSON object with the stable keys; returns the objects."""
    out, bad = [], []
    for raw in read_lines(path):
        if any(b < 0x20 for b in raw):
            bad.append(("raw control byte", raw))
            continue
        try:
            o = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            bad.append((str(e), raw))
            continue
        if not isinstance(o, dict) or any(k not in o for k in STABLE):
            bad.append(("stable keys missing", raw))
            continue
        out.append(o)
    t.check("%s: every line parses as one JSON object with %s" % (name, ", ".join(STABLE)),
            not bad and out, bad[:3] or "no lines")
    return out


# -- JSON to a file, hostile client text
jpath = os.path.join(logdir, "backstop.json")
bs = start({"backend": {"address": sink.address},
            "log": {"destination": "file", "file": jpath, "format": "json", "level": "info"},
            "helo": {"reject_invalid": "no"},
            "limits": {"max_message_size": "2000"}}, jpath)
HELO = b'h"q\\b\xe9\xff","event":"forged","x":"1.example'
SENDER = b'"q\\"u\\\\o"@example.org'
with t.case("a good and a refused message from a hostile client"):
    c = bs.client()
    t.check_reply("EHLO with \\x01: refused by the parser", c.cmd(b"EHLO a\x01b"), 500)
    t.check_reply("EHLO with quotes, backslash, 8-bit, a JSON fragment", c.cmd(b"EHLO " + HELO), 250)
    t.check_reply("MAIL with a quoted local part", c.cmd(b"MAIL FROM:<" + SENDER + b">"), 250)
    t.check_reply("RCPT with 8-bit refused", c.cmd(b"RCPT TO:<r\xc3\xa9@example.net>"), 553)
    t.check_reply("RCPT", c.cmd(b"RCPT TO:<user@example.net>"), 250)
    t.check_reply("DATA", c.cmd("DATA"), 354)
    c.send(dot_stuff(make_message("good one")) + b".\r\n")
    t.check_reply("good message accepted", c.reply(), 250)
    t.check_reply("MAIL", c.cmd(b"MAIL FROM:<big@example.org>"), 250)
    t.check_reply("RCPT", c.cmd(b"RCPT TO:<user2@example.net>"), 250)
    t.check_reply("DATA", c.cmd("DATA"), 354)
    c.send(dot_stuff(make_message("too big", body=("x" * 70 + "\n") * 60)) + b".\r\n")
    t.check_reply("big message: 552 5.3.4", c.reply(), 552, "5.3.4")
    c.cmd("QUIT")
    c.close()
    t.check("disconnect logged", poll(lambda: b"disconnect from" in b"".join(read_lines(jpath)), 5))

    objs = parse_all("json", jpath)
    sid = None
    for o in objs:
        t.check("ts is RFC 3339 UTC with ms: %s" % o["ts"], TS.match(o["ts"]), o)
        t.check("pid is backstop's", o["pid"] == bs.pid, o)
        if o["event"] == "connect_from":
            sid = o["session"]
    t.check("a connect_from event with the session id", sid and re.match(r"^[0-9A-F]{12}$", sid), objs)
    t.check("events not tied to a session have session null",
            any(o["event"] == "listening_on" and o["session"] is None for o in objs), objs)
    t.check("no key or event the client forged",
            all("x" not in o and o["event"] != "forged" for o in objs), objs)
    sums = [o for o in objs if o["event"] == "summary"]
    t.check("two summary lines", len(sums) == 2, sums)
    if len(sums) == 2:
        good, big = sums
        for o in sums:
            t.check("summary has every documented key", all(k in o for k in SUMMARY),
                    [k for k in SUMMARY if k not in o])
            t.check("summary belongs to the session", o["session"] == sid, o)
            t.check("summary msg is the text line", o["msg"].startswith("txn %s." % sid)
                    and " result: " in o["msg"], o["msg"])
            t.check("helo as sent (invalid UTF-8 as U+FFFD)",
                    o["helo"] == HELO.decode("utf-8", "replace"), (o["helo"], HELO))
            t.check("client_ip", o["client_ip"] == "127.0.0.1", o)
            t.check("no TLS: tls keys null", o["tls_version"] is None and o["tls_cipher"] is None, o)
            t.check("checks is an object", isinstance(o["checks"], dict), o)
            t.check("duration_ms is a number", isinstance(o["duration_ms"], int), o)
        t.check("good: txn id", good["txn"] == sid + ".1", good)
        t.check("good: sender as given", good["sender"] == SENDER.decode(), good["sender"])
        t.check("good: recipients", good["recipients"] == ["user@example.net"]
                and good["recipients_count"] == 1, good)
        t.check("good: accepted 250 2.0.0", good["result"] == "accepted" and good["reply_code"] == 250
                and good["reply_enhanced"] == "2.0.0", good)
        t.check("good: the refused recipient and its reply",
                good["refused"] and "553 5.6.7" in good["refused"], good["refused"])
        t.check("good: size", good["size"] > 100, good)
        t.check("big: refused 552 5.3.4", big["result"] == "refused" and big["reply_code"] == 552
                and big["reply_enhanced"] == "5.3.4" and "size" in big["reply_text"], big)
        t.check("big: sender, recipient, txn", big["sender"] == "big@example.org"
                and big["recipients"] == ["user2@example.net"] and big["txn"] == sid + ".2", big)
        t.check("big: no queue id", big["queue_id"] is None, big)
    t.check("nothing on stderr: the log is the file", bs.log().strip() == "", bs.log()[-2000:])

with t.case("logrotate: rename, SIGHUP, a new file"):
    rotated = jpath + ".1"
    os.rename(jpath, rotated)
    n_rotated = len(read_lines(rotated))
    bs.signal(signal.SIGHUP)
    t.check("a new file after SIGHUP", poll(lambda: b"reload: configuration" in b"".join(read_lines(jpath)), 5),
            read_lines(rotated)[-3:])
    c = bs.client()
    c.cmd("QUIT")
    c.close()
    t.check("the new session is logged in the new file",
            poll(lambda: b"connect_from" in b"".join(read_lines(jpath)), 5), read_lines(jpath))
    t.check("the renamed file gets nothing more", len(read_lines(rotated)) == n_rotated,
            read_lines(rotated)[n_rotated:])
    parse_all("json after reopen", jpath)
    t.check("new file mode 0640", os.stat(jpath).st_mode & 0o777 == 0o640 & ~_umask(),
            oct(os.stat(jpath).st_mode))
bs.stop()

with t.case("the backend's queue id (Postfix)"):
    pf = t.postfix()
    qpath = os.path.join(logdir, "queue.json")
    bs = start({"backend": {"address": pf.address},
                "log": {"destination": "file", "file": qpath, "format": "json"}}, qpath)
    c = bs.client()
    rs = c.mail_transaction("sender@example.org", ["user@test.example"], make_message("queue id"))
    m = re.search(r"queued as (\w+)", rs[-1].text) if rs[-1].code == 250 else None
    t.check("Postfix accepted and said its queue id", m, rs)
    c.cmd("QUIT")
    c.close()
    poll(lambda: b"disconnect from" in b"".join(read_lines(qpath)), 5)
    sums = [o for o in parse_all("json with Postfix", qpath) if o["event"] == "summary"]
    t.check("queue_id is Postfix's", m and len(sums) == 1 and sums[0]["queue_id"] == m.group(1), sums)
    bs.stop()

with t.case("text to a file: the stderr line form"):
    tpath = os.path.join(logdir, "backstop.txt")
    bs = start({"backend": {"address": sink.address},
                "log": {"destination": "file", "file": tpath, "format": "text", "level": "info"}}, tpath)
    c = bs.client()
    rs = c.mail_transaction("a@example.org", ["user@example.net"], make_message("text form"))
    t.check_reply("mail accepted", rs[-1], 250)
    c.cmd("QUIT")
    c.close()
    poll(lambda: b"disconnect from" in b"".join(read_lines(tpath)), 5)
    lines = [l.decode() for l in read_lines(tpath)]
    form = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z backstop\[%d\]: " % bs.pid)
    t.check("every line: TIMESTAMP backstop[PID]: ...", lines and all(form.match(l) for l in lines), lines)
    t.check("summary line as before", any(re.search(
        r": txn [0-9A-F]{12}\.1 from \[127\.0\.0\.1\]:\d+ helo=<\S*> from=<a@example\.org> "
        r"to=<user@example\.net> checks=\[\] size=\d+ duration=\d+ms result: accepted: backend said 250",
        l) for l in lines), lines)
    bs.stop()

with t.case("a log file that cannot be opened: -t and start-up fail"):
    for bad, why in ((os.path.join(logdir, "no-such-dir", "x.log"), "does not exist"),
                     (logdir, "Is a directory")):
        b = t.backstop({"backend": {"address": sink.address},
                        "log": {"destination": "file", "file": bad}}, start=False)
        rc, out = b.check_config()
        t.check("-t fails for %s" % bad, rc == 1 and "[log] file" in out and why in out, (rc, out))
        rc, out = t.run_backstop(["-f", "-c", b.conf])
        t.check("start-up fails for %s" % bad, rc == 1 and "[log] file" in out and why in out
                and "not starting" in out, (rc, out))
    b = t.backstop({"backend": {"address": sink.address},
                    "log": {"destination": "file", "file": ""}}, start=False)
    rc, out = b.check_config()
    t.check("-t: destination = file without a file", rc == 1 and "[log] file" in out, (rc, out))

def refused(name, sections, why, victim=None):
    """-t and start-up both refuse the log file, saying why; a victim file
    (root's) is left as it was."""
    before = open(victim, "rb").read() if victim else None
    b = t.backstop(sections, start=False)
    rc, out = b.check_config()
    t.check("-t refuses %s: %s" % (name, why), rc == 1 and "[log] file" in out and why in out, (rc, out))
    try:
        rc, out = t.run_backstop(["-f", "-c", b.conf], timeout=3)
    except subprocess.TimeoutExpired:
        rc, out = None, "it started (and ran for 3 s)"
    t.check("start-up refuses %s: %s" % (name, why), rc == 1 and "[log] file" in out and why in out
            and "not starting" in out, (rc, out))
    if victim:
        t.check("%s: %s is untouched" % (name, victim), open(victim, "rb").read() == before,
                open(victim, "rb").read()[-300:])


def as_nobody(*argv):
    subprocess.run(["setpriv", "--reuid=nobody", "--regid=%d" % nobody.pw_gid, "--clear-groups"]
                   + list(argv), check=True)


nobody = pwd.getpwnam("nobody")
NOBODY = {"user": "nobody"}

with t.case("as [server] user: opened and created as the user, not as root"):
    pdir = t.tmpdir("plogs")   # root's, 0755: nobody cannot create files in it
    ppath = os.path.join(pdir, "backstop.log")
    refused("a file nobody may not create", {"server": NOBODY, "backend": {"address": sink.address},
            "log": {"destination": "file", "file": ppath}}, "let that user create files")
    t.check("root did not create it", not os.path.exists(ppath), os.listdir(pdir))
    os.chown(pdir, nobody.pw_uid, nobody.pw_gid)   # the user's log directory
    b = t.backstop({"server": NOBODY, "backend": {"address": sink.address},
                    "log": {"destination": "file", "file": ppath}}, start=False)
    rc, out = b.check_config()
    t.check("-t: a directory nobody may create it in", rc == 0 and "configuration OK" in out, (rc, out))
    bs = start({"server": NOBODY, "backend": {"address": sink.address},
                "log": {"destination": "file", "file": ppath, "format": "json"}}, ppath)
    st = os.stat(ppath)
    t.check("created as nobody: nobody's (no chown), mode 0640",
            st.st_uid == nobody.pw_uid and st.st_gid == nobody.pw_gid
            and st.st_mode & 0o777 == 0o640 & ~_umask(), (st.st_uid, st.st_gid, oct(st.st_mode)))
    t.check("running as nobody", poll(lambda: b"running as user nobody" in b"".join(read_lines(ppath)), 5),
            read_lines(ppath))
    os.rename(ppath, ppath + ".1")
    bs.signal(signal.SIGHUP)
    t.check("rename, SIGHUP: a new file, created by nobody",
            poll(lambda: b"reload: configuration" in b"".join(read_lines(ppath)), 5)
            and os.stat(ppath).st_uid == nobody.pw_uid, read_lines(ppath + ".1")[-3:])
    # the user (say, a compromised backstop) plants a link to root's file
    # where logrotate's rename leaves room for a new log file
    victim = os.path.join(t.tmpdir("secret"), "shadow")
    with open(victim, "w") as f:
        f.write("root-only secret\n")
    os.chmod(victim, 0o600)
    os.rename(ppath, ppath + ".2")
    as_nobody("ln", "-s", victim, ppath)
    bs.signal(signal.SIGHUP)
    t.check("SIGHUP with a symbolic link there: refused, the old file stays",
            poll(lambda: re.search(rb"reload: \[log\] file \S+ cannot be opened .*symbolic link.*"
                                   rb"still writing to the old file", b"".join(read_lines(ppath + ".2"))), 5),
            read_lines(ppath + ".2")[-3:])
    bs.stop()
    parse_all("json as nobody", ppath + ".2")
    refused("a symbolic link to root's file (planted by the user)",
            {"server": NOBODY, "backend": {"address": sink.address},
             "log": {"destination": "file", "file": ppath}}, "symbolic link", victim)
    t.check("the victim is root's 0600 file still", open(victim).read() == "root-only secret\n",
            open(victim).read()[-300:])
    os.unlink(ppath)
    # a second name: a hard link (protected_hardlinks stops one to root's
    # files; one to a file of the user's is refused all the same)
    as_nobody("touch", ppath + ".other")
    os.link(ppath + ".other", ppath)
    refused("a file with two names", {"server": NOBODY, "backend": {"address": sink.address},
            "log": {"destination": "file", "file": ppath}}, "has 2 hard links")
    os.unlink(ppath)
    # root's file that anyone may write: not the user's, refused
    with open(ppath, "w"):
        pass
    os.chmod(ppath, 0o666)
    refused("root's world-writable file", {"server": NOBODY, "backend": {"address": sink.address},
            "log": {"destination": "file", "file": ppath}}, "belongs to uid 0, not to uid %d" % nobody.pw_uid)
    os.unlink(ppath)
    as_nobody("mkfifo", ppath)
    refused("a FIFO", {"server": NOBODY, "backend": {"address": sink.address},
            "log": {"destination": "file", "file": ppath}}, "not a regular file")
    os.unlink(ppath)

with t.case("logrotate's create: a 0640 file of the user's in root's directory"):
    os.chown(pdir, 0, 0)
    with open(ppath, "w"):
        pass
    os.chown(ppath, nobody.pw_uid, nobody.pw_gid)
    os.chmod(ppath, 0o640)
    b = t.backstop({"server": NOBODY, "backend": {"address": sink.address},
                    "log": {"destination": "file", "file": ppath}}, start=False)
    rc, out = b.check_config()
    t.check("-t: configuration OK", rc == 0 and "configuration OK" in out, (rc, out))
    bs = start({"server": NOBODY, "backend": {"address": sink.address},
                "log": {"destination": "file", "file": ppath, "format": "json"}}, ppath)
    t.check("started, writing to it", poll(lambda: b"running as user nobody" in b"".join(read_lines(ppath)), 5),
            (read_lines(ppath), bs.log()))
    os.rename(ppath, ppath + ".1")
    bs.signal(signal.SIGHUP)
    t.check("reopen without a file nobody may create: the old file stays, the reason logged",
            poll(lambda: re.search(rb"reload: \[log\] file \S+ cannot be opened for appending as uid \d+: "
                                   rb"Permission denied.*still writing to the old file",
                                   b"".join(read_lines(ppath + ".1"))), 5),
            read_lines(ppath + ".1")[-3:])
    with open(ppath, "w"):
        pass
    os.chown(ppath, nobody.pw_uid, nobody.pw_gid)
    os.chmod(ppath, 0o640)
    bs.signal(signal.SIGHUP)
    t.check("with the file created for it: reopened",
            poll(lambda: b"reload: configuration" in b"".join(read_lines(ppath)), 5), read_lines(ppath))
    parse_all("json after logrotate's create", ppath)
    bs.stop()
    os.chown(ppath, 0, 0)
    refused("a file logrotate gave to root", {"server": NOBODY, "backend": {"address": sink.address},
            "log": {"destination": "file", "file": ppath}}, "chown it to that user")

with t.case("writes fail (a full file system): lines dropped, reported once, mail flows"):
    # a 64 KiB tmpfs, filled, in a mount namespace of backstop's own: the
    # log file can be created (an inode) but not written
    fdir = t.tmpdir("full")
    fpath = os.path.join(fdir, "backstop.json")
    bs = t.backstop({"backend": {"address": sink.address},
                     "log": {"destination": "file", "file": fpath, "format": "json"}}, start=False)
    bs.logf = open(bs.logfile, "ab")
    bs.proc = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         'mount -t tmpfs -o size=64k tmpfs "$1" && { cat /dev/zero > "$1/fill"; } 2>/dev/null;'
         ' exec "$2" -f -c "$3"', "sh", fdir, bs.bin, bs.conf],
        stdout=bs.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if not wait_port("127.0.0.1", bs.port, 10):
        t.error("backstop on a full file system did not start:\n%s" % bs.log())
    for i in range(3):
        c = bs.client()
        rs = c.mail_transaction("a@example.org", ["user@example.net"], make_message("full %d" % i))
        t.check_reply("mail %d accepted while the log cannot be written" % i, rs[-1], 250)
        c.cmd("QUIT")
        c.close()
    time.sleep(0.3)
    t.check("the failure reported once on stderr",
            len(re.findall(r"log file %s: write failed: No space left on device" % re.escape(fpath),
                           bs.log())) == 1, bs.log()[-2000:])
    bs.stop()
def many_recipients(bs):
    """review13: a transaction whose summary is over 10 KB as JSON"""
    c = bs.client()
    c.cmd("EHLO client.example.org")
    c.cmd('MAIL FROM:<"%s"@example.org>' % ('\\"' * 28))
    for i in range(100):
        c.cmd('RCPT TO:<"%s%03d"@%s.example.net>' % ('\\"' * 28, i, "d" * 60))
    t.check_reply("DATA", c.cmd("DATA"), 354)
    c.send(dot_stuff(make_message("many recipients")) + b".\r\n")
    t.check_reply("accepted", c.reply(), 250)
    c.cmd("QUIT")
    c.close()


with t.case("JSON to a file: 100 long recipients, the summary keeps every key"):
    mpath = os.path.join(logdir, "many.json")
    bs = start({"backend": {"address": sink.address}, "limits": {"max_recipients": "1000"},
                "log": {"destination": "file", "file": mpath, "format": "json"}}, mpath)
    many_recipients(bs)
    poll(lambda: b'"event":"summary"' in b"".join(read_lines(mpath)), 5)
    sums = [o for o in parse_all("json, many recipients", mpath) if o["event"] == "summary"]
    if t.check("one summary", len(sums) == 1, sums):
        o = sums[0]
        t.check("every summary key, the recipients that fit, truncated",
                all(k in o for k in SUMMARY) and 0 < len(o["recipients"]) < 100 and o["recipients_count"] == 100
                and o["result"] == "accepted" and o.get("truncated") is True,
                ([k for k in SUMMARY if k not in o], len(o.get("recipients", [])), o.get("truncated")))
    bs.stop()

with t.case("JSON to syslog: every message under 8 KiB, members left out whole"):
    # a /dev/log of the test's own, in a mount namespace of backstop's: a
    # tmpfs over /dev with null, zero, random, urandom and the socket
    sdir = t.tmpdir("syslog")
    sock_path = os.path.join(sdir, "log.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(sock_path)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    t.defer(rx.close)
    bs = t.backstop({"backend": {"address": sink.address},
                     "log": {"destination": "syslog", "format": "json", "level": "info"},
                     "limits": {"max_recipients": "1000"}}, start=False)
    bs.logf = open(bs.logfile, "ab")
    bs.proc = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         'set -e; mkdir "$1/dev"; mount --rbind /dev "$1/dev"; mount -t tmpfs -o mode=0755 tmpfs /dev;'
         ' for f in null zero random urandom; do touch /dev/$f; mount --bind "$1/dev/$f" /dev/$f; done;'
         ' touch /dev/log; mount --bind "$2" /dev/log; shift 2; exec "$@"',
         "sh", sdir, sock_path, bs.bin, "-f", "-c", bs.conf],
        stdout=bs.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if not wait_port("127.0.0.1", bs.port, 10):
        t.error("backstop logging to the test's /dev/log did not start:\n%s" % bs.log())
    many_recipients(bs)
    msgs = []

    def summary_seen():
        rx.settimeout(0.2)
        try:
            while True:
                msgs.append(rx.recv(1 << 17))
        except (socket.timeout, BlockingIOError):
            pass
        return any(b'"event":"summary"' in m for m in msgs)
    t.check("the summary reached syslog", poll(summary_seen, 5), [m[:200] for m in msgs])
    objs, bad = [], []
    for m in msgs:
        try:
            objs.append(json.loads(m[m.index(b"]: {") + 3:].decode()))
        except ValueError as e:
            bad.append((str(e), m[:300]))
    t.check("every syslog message is one JSON object after the syslog header", not bad and objs, bad[:3])
    longest = max(msgs, key=len) if msgs else b""
    log("longest syslog message: %d bytes" % len(longest))
    t.check("every syslog message (header and object) is under 8 KiB", len(longest) < 8192, len(longest))
    sums = [o for o in objs if o.get("event") == "summary"]
    if t.check("one summary", len(sums) == 1, sums):
        o = sums[0]
        t.check("summary: truncated, the recipients left out whole, the rest kept",
                o.get("truncated") is True and "recipients" not in o and o["recipients_count"] == 100
                and o.get("result") == "accepted" and o.get("reply_code") == 250 and o.get("txn"), o)
    bs.stop()
t.done()

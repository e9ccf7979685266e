#!/usr/bin/python3
"""privdrop: started as root with [server] user = nobody, backstop binds,
then runs as nobody: Uid/Gid all 65534, no supplementary group but
nogroup, CapEff and CapPrm 0 (/proc/PID/status), and mail still flows. On
SIGHUP the certificate and key are read again as nobody: a pair nobody can
read is loaded (STARTTLS presents the new certificate), one it cannot read
gives a log line naming the file and keeps the old context. `-t` warns
about files the user could not read. Without [server] user, a start as
root is refused (start-up and -t), saying what to set; user = root runs
as root on purpose."""
import os
import pwd
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
from harness import *

t = Test("privdrop", need=("smtp-sink", "openssl"))
NOBODY = pwd.getpwnam("nobody")
sink = t.sink()
certs = t.tmpdir("certs")


def make_pair(sub):
    d = t.tmpdir("certs/" + sub)
    subprocess.run(["sh", os.path.join(srcdir(), "certs", "make-self-signed.sh"), BACKSTOP_HOSTNAME, d],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return os.path.join(d, "backstop.crt"), os.path.join(d, "backstop.key")


def readable_by_nobody(path):
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    os.chmod(path, 0o600)


def status(pid):
    out = {}
    for line in open("/proc/%d/status" % pid):
        k, _, v = line.partition(":")
        out[k] = v.split()
    return out


def starttls_cert(port):
    """DER certificate the server presents after STARTTLS."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo(CLIENT_HELO)
        s.starttls(context=ctx)
        return s.sock.getpeercert(binary_form=True)


def der(crt):
    pem = open(crt).read()
    return ssl.PEM_cert_to_DER_cert(pem)


# the live pair: files the config names, replaced in place for the reload cases
live_crt, live_key = os.path.join(certs, "live.crt"), os.path.join(certs, "live.key")
crt1, key1 = make_pair("one")
crt2, key2 = make_pair("two")
crt3, key3 = make_pair("three")
shutil.copy(crt1, live_crt)
shutil.copy(key1, live_key)
readable_by_nobody(live_key)

bs = t.backstop({"server": {"user": "nobody"},
                 "backend": {"address": sink.address},
                 "tls": {"certificate": live_crt, "key": live_key}})

with t.case("runs as nobody after binding"):
    st = status(bs.pid)
    t.check("Uid real/effective/saved/fs all %d" % NOBODY.pw_uid,
            st["Uid"] == [str(NOBODY.pw_uid)] * 4, st["Uid"])
    t.check("Gid real/effective/saved/fs all %d" % NOBODY.pw_gid,
            st["Gid"] == [str(NOBODY.pw_gid)] * 4, st["Gid"])
    t.check("supplementary groups: only %d" % NOBODY.pw_gid,
            st["Groups"] in ([], [str(NOBODY.pw_gid)]), st["Groups"])
    t.check("CapEff 0", int(st["CapEff"][0], 16) == 0, st["CapEff"])
    t.check("CapPrm 0", int(st["CapPrm"][0], 16) == 0, st["CapPrm"])
    t.check("NoNewPrivs 1", st.get("NoNewPrivs") == ["1"], st.get("NoNewPrivs"))
    t.check("logged 'running as user nobody'", bs.wait_log(r"running as user nobody \(uid %d\)" % NOBODY.pw_uid),
            bs.log())
    t.check("no 'running as root' warning", "running as root" not in bs.log(), bs.log())

with t.case("mail flows as nobody"):
    c = bs.client()
    c.ehlo()
    out = c.mail_transaction("sender@example.org", ["user@test.example"], make_message("privdrop"))
    t.check("250 after end of data", out[-1].code == 250, out)
    t.check("delivered", any(b"privdrop" in m for m in sink.wait_for(1)), sink.messages())
    c.cmd("QUIT")
    t.check("STARTTLS presents the first certificate", starttls_cert(bs.port) == der(crt1))

with t.case("SIGHUP: a pair nobody can read is loaded"):
    shutil.copy(crt2, live_crt)
    shutil.copy(key2, live_key)
    readable_by_nobody(live_key)
    bs.mark()
    bs.signal(signal.SIGHUP)
    t.check("reload logged as loaded", bs.wait_log(r"reload: configuration .* loaded", 5), bs.log(True))
    t.check("STARTTLS presents the second certificate", starttls_cert(bs.port) == der(crt2))

with t.case("SIGHUP: a key nobody cannot read keeps the old context"):
    shutil.copy(crt3, live_crt)
    shutil.copy(key3, live_key)
    os.chown(live_key, 0, 0)
    os.chmod(live_key, 0o600)
    bs.mark()
    bs.signal(signal.SIGHUP)
    m = bs.wait_log(r"error: reload: cannot read %s: Permission denied .*keeping the running configuration"
                    % re.escape(live_key), 5)
    t.check("one log line names the key, the reason and that the old one stays", m, bs.log(True))
    t.check("no 'loaded' line", bs.count_log(r"reload: configuration .* loaded") == 0, bs.log(True))
    t.check("STARTTLS still presents the second certificate", starttls_cert(bs.port) == der(crt2))
    c = bs.client()
    c.ehlo()
    out = c.mail_transaction("sender@example.org", ["user@test.example"], make_message("after-refused-reload"))
    t.check("mail still flows", out[-1].code == 250, out)
    bs.stop()

with t.case("-t warns about files nobody cannot read"):
    rc, out = bs.check_config()
    t.check("-t exits 0 (a warning, not an error)", rc == 0, out)
    t.check("-t: 'warning: %s is not readable by user nobody'" % live_key,
            re.search(r"warning: %s is not readable by user nobody \(Permission denied\)" % re.escape(live_key), out),
            out)
    readable_by_nobody(live_key)
    rc, out = bs.check_config()
    t.check("-t is quiet once nobody can read it", rc == 0 and "not readable" not in out, out)

with t.case("without [server] user, a start as root is refused; user = root is root on purpose"):
    b2 = t.backstop({"backend": {"address": sink.address}, "server": {"user": ""}}, start=False)
    for args in (["-t", "-c", b2.conf], ["-f", "-c", b2.conf]):
        rc, out = t.run_backstop(args)
        t.check("%s: refused, exit 1" % args[0], rc == 1, (rc, out))
        t.check("%s: says what to set" % args[0],
                "[server] user is not set and backstop was started as root" in out
                and "user = root" in out, out)
    t.check("nothing listens", not wait_port("127.0.0.1", b2.port, 0.5))
    b3 = t.backstop({"backend": {"address": sink.address}, "server": {"user": "root"}})
    st = status(b3.pid)
    t.check("user = root: uid 0, logged", st["Uid"][1] == "0" and b3.wait_log(r"running as user root \(uid 0\)"),
            (st["Uid"], b3.log()[-1500:]))
    t.check("user = root: warned", b3.wait_log(r"warning: \[server\] user is root: backstop keeps root"),
            b3.log()[-1500:])
    rc, out = b3.check_config()
    t.check("-t with user = root: OK, with a warning", rc == 0 and "warning: [server] user is root" in out, out)
    b3.stop()

t.done()

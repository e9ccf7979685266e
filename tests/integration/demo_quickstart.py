#!/usr/bin/python3
"""demo_quickstart: the README's first quick-start command, `bash
tests/demo.sh`, run from a checkout inside a 0700 directory (as in
/root/project on a fresh Debian 12): smtp-sink drops to nobody, which used
to die on the first message ("open /root/project/demo-mail/...: Permission
denied", swaks then got 421 4.4.2). Here swaks sends a plain and a STARTTLS
message through it, both reach ./demo-mail/ with backstop's Received:
header, and SIGTERM stops the script, backstop and smtp-sink.

The build itself is not repeated (BACKSTOP_BIN); ports and the resolver
are given with -o so the test runs beside others and sends no DNS query
off this machine."""
import glob
import os
import shutil
import signal
import subprocess
import tempfile
from harness import *

t = Test("demo_quickstart", need=("smtp-sink", "swaks", "openssl"))
BIN = os.path.abspath(t.bin)

parent = tempfile.mkdtemp(prefix="bs-demo-home-")   # 0700, like /root
t.defer(shutil.rmtree, parent, True)
project = os.path.join(parent, "project")
top = srcdir()
shutil.copytree(top, project, symlinks=True, ignore=lambda d, names: [
    n for n in names if d == top and (n.startswith("build") or n in (
        ".git", "autom4te.cache", "demo-mail", "demo-mail.previous"))
    or n in ("__pycache__",) or (d.endswith("certs") and n == "demo")])

listen_port, backend_port = free_port(), free_port()
log_path = os.path.join(t.tmpdir("demo"), "demo.out")
logf = open(log_path, "wb")
proc = subprocess.Popen(
    ["bash", "tests/demo.sh",
     "-o", "server.listen=127.0.0.1:%d" % listen_port,
     "-o", "backend.address=127.0.0.1:%d" % backend_port,
     "-o", "dns.servers=127.0.0.1:%d" % dead_port(),
     "-o", "dns.reverse_lookup=no"],
    cwd=project, env=dict(os.environ, BACKSTOP_BIN=BIN), stdout=logf, stderr=subprocess.STDOUT,
    stdin=subprocess.DEVNULL, start_new_session=True)


def cleanup():
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    logf.close()
    link = os.path.join(project, "demo-mail")
    if os.path.islink(link):
        shutil.rmtree(os.readlink(link), ignore_errors=True)


t.defer(cleanup)


def out():
    return open(log_path, "rb").read().decode("utf-8", "replace")


with t.case("the demo starts from a checkout under a 0700 directory"):
    t.check("the checkout's parent is mode 0700", os.stat(parent).st_mode & 0o777 == 0o700)
    started = poll(lambda: "listening on" in out() or proc.poll() is not None, 20)
    t.check("backstop listens", "listening on 127.0.0.1:%d" % listen_port in out(), out())
    t.check("the script prints the swaks commands",
            "swaks --server 127.0.0.1:%d --from you@example.net" % listen_port in out(), out())
    t.check("./demo-mail is a link to a directory nobody can write",
            os.path.islink(os.path.join(project, "demo-mail")), os.listdir(project))

for name, extra in (("plain", []), ("STARTTLS", ["--tls"])):
    with t.case("swaks %s: delivered into ./demo-mail/" % name):
        token = "demo-quickstart-%s" % name
        rc, transcript = swaks("127.0.0.1", listen_port, "--from", "you@example.net",
                               "--to", "someone@example.org", "--header", "Subject: " + token, *extra)
        t.check("swaks exits 0", rc == 0, transcript)
        if extra:
            t.check("STARTTLS was used", "<-  220 2.0.0" in transcript and "TLS started" in transcript,
                    transcript)
        files = poll(lambda: [p for p in glob.glob(os.path.join(project, "demo-mail", "*"))
                              if token in open(p, errors="replace").read()], 5)
        t.check("the message is a file under ./demo-mail/", files, out())
        if files:
            msg = open(files[0], errors="replace").read()
            t.check("with backstop's Received: header", "by mx.example.org (backstop)" in msg, msg)
            t.check("and Received-SPF: none for the loopback client",
                    "Received-SPF: none (backstop: not checked, client 127.0.0.1 is a loopback address)"
                    in msg, msg)
        t.check("smtp-sink did not die (no 'Permission denied')", "Permission denied" not in out(), out())

with t.case("SIGTERM stops the script, backstop and smtp-sink"):
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(15)
    except subprocess.TimeoutExpired:
        rc = None
    t.check("the script exits 0", rc == 0, "rc %s: %s" % (rc, out()[-2000:]))
    t.check("backstop stopped (nothing on %d)" % listen_port, not wait_port("127.0.0.1", listen_port, 1))
    t.check("smtp-sink stopped (nothing on %d)" % backend_port, not wait_port("127.0.0.1", backend_port, 1))

t.done()

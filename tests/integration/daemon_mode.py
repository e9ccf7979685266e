#!/usr/bin/python3
"""daemon_mode: without -f backstop binds and checks everything before it
detaches, so a port already in use exits 1 with the error on the terminal
(it exited 0, the error only in syslog); a relative -c path still works for
SIGHUP after daemon() changed to / (it silently did not). Reload (-f):
restoring the listen address that is bound is silent (it still warned
"listen addresses changed"); a changed [dns] section is not applied and
the log says so."""
import os
import random
import signal
import socket
import subprocess
import time
from harness import *

t = Test("daemon_mode", watchdog=120)
BIN = os.path.abspath(t.bin)   # the daemon runs from the config's directory
d = t.tmpdir("daemon")
BACKEND = "127.0.0.1:%d" % dead_port()
DNS = "127.0.0.1:%d" % dead_port()


def conf(port, banner="ESMTP"):
    return ("[server]\nlisten = 127.0.0.1:%d\nhostname = %s\nbanner = %s\nuser = root\n"
            "[backend]\naddress = %s\n[dns]\nservers = %s\nreverse_lookup = no\n"
            "[spf]\nmode = off\n[log]\nlevel = debug\n" % (port, BACKSTOP_HOSTNAME, banner, BACKEND, DNS))


def daemon_pids(name):
    """pids of backstop processes whose command line has -c name."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            argv = open("/proc/%s/cmdline" % p, "rb").read().split(b"\0")
        except OSError:
            continue
        if name.encode() in argv and any(a.endswith(b"backstop") for a in argv[:1]):
            out.append(int(p))
    return out


def kill_daemons(name):
    for pid in daemon_pids(name):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def greeting(port):
    c = SmtpClient("127.0.0.1", port, timeout=5)
    try:
        return c.greeting()
    finally:
        c.close()


with t.case("a port in use: exit 1, the error on the terminal, no daemon left"):
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = free_port()
    busy.bind(("127.0.0.1", port))
    busy.listen(1)
    t.defer(busy.close)
    name = "busy-%d.ini" % random.randint(0, 1 << 30)
    with open(os.path.join(d, name), "w") as f:
        f.write(conf(port))
    t.defer(kill_daemons, name)
    r = subprocess.run([BIN, "-c", name], cwd=d, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=10)
    out = r.stdout.decode("utf-8", "replace")
    t.check("exit status 1", r.returncode == 1, "rc %s: %s" % (r.returncode, out))
    t.check("'cannot listen on 127.0.0.1:%d: address already in use' on the terminal" % port,
            "cannot listen on 127.0.0.1:%d: address already in use" % port in out, out)
    time.sleep(0.5)
    t.check("no daemon left running", not daemon_pids(name), daemon_pids(name))

with t.case("relative -c: SIGHUP after daemon() reloads the same file"):
    port = free_port()
    name = "rel-%d.ini" % random.randint(0, 1 << 30)
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(conf(port, "ESMTP first"))
    t.defer(kill_daemons, name)
    r = subprocess.run([BIN, "-c", name], cwd=d, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=10)
    out = r.stdout.decode("utf-8", "replace")
    t.check("started, exit status 0", r.returncode == 0, "rc %s: %s" % (r.returncode, out))
    t.check("'listening on' reached the terminal before detaching", "listening on" in out, out)
    pids = poll(lambda: daemon_pids(name), 5)
    t.check("one daemon running", pids and len(pids) == 1, pids)
    t.check("it listens", wait_port("127.0.0.1", port, 5))
    g = greeting(port)
    t.check("greeting says 'ESMTP first'", g.code == 220 and "ESMTP first" in g.lines[0], g)
    if pids:
        t.check("the daemon's working directory is /", os.readlink("/proc/%d/cwd" % pids[0]) == "/")
        with open(path, "w") as f:
            f.write(conf(port, "ESMTP second"))
        os.kill(pids[0], signal.SIGHUP)
        ok = poll(lambda: "ESMTP second" in greeting(port).lines[0], 5, 0.2)
        t.check("after SIGHUP the greeting says 'ESMTP second' (the file was read again)", ok,
                greeting(port))
        os.kill(pids[0], signal.SIGTERM)
        t.check("SIGTERM stops the daemon", poll(lambda: not daemon_pids(name), 10))

with t.case("reload: restoring the bound listen address is silent"):
    bs = t.backstop({"backend": {"address": BACKEND}})
    orig = dict(bs.sections["server"])
    other = "127.0.0.1:%d" % free_port()
    bs.sections["server"]["listen"] = other
    bs.write_config()
    bs.mark()
    bs.signal(signal.SIGHUP)
    t.check("a changed listen address warns", bs.wait_log(r"listen addresses changed", 5), bs.log(True))
    bs.wait_log(r"reload: configuration .* loaded", 5)
    bs.sections["server"] = orig
    bs.write_config()
    bs.mark()
    bs.signal(signal.SIGHUP)
    t.check("restored reload logged", bs.wait_log(r"reload: configuration .* loaded", 5), bs.log(True))
    t.check("restoring the bound address does not warn",
            bs.count_log(r"listen addresses changed") == 0, bs.log(True))
    t.check("still listening on the bound address", greeting(bs.port).code == 220)

with t.case("reload: a changed [dns] section is not applied and says so"):
    bs.sections["dns"]["timeout"] = "2s"
    bs.sections["dns"]["servers"] = "127.0.0.1:%d" % dead_port()
    bs.write_config()
    bs.mark()
    bs.signal(signal.SIGHUP)
    t.check("reload logged", bs.wait_log(r"reload: configuration .* loaded", 5), bs.log(True))
    t.check("warning: [dns] ... take effect at the next restart",
            bs.wait_log(r"warning: reload: \[dns\] .*changed; they take effect at the next restart", 1),
            bs.log(True))
    bs.mark()
    bs.signal(signal.SIGHUP)
    bs.wait_log(r"reload: configuration .* loaded", 5)
    t.check("it keeps saying so while the file differs", bs.count_log(r"\[dns\] .*changed") == 1, bs.log(True))
    bs.stop()

t.done()

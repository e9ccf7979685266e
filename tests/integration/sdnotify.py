#!/usr/bin/python3
"""sdnotify: systemd's notification protocol (Type=notify), spoken to a
real unix datagram socket as systemd would listen on it. READY=1 comes
once, after the listener accepts and root is dropped (the port greets at
once, the process already runs as [server] user); SIGHUP sends RELOADING=1
(with MONOTONIC_USEC) and then READY=1 after the reload, also when the new
file is refused; SIGTERM sends STOPPING=1 before the exit. NOTIFY_SOCKET
may name an abstract socket (@name). A NOTIFY_SOCKET nobody listens on is
a warning in the log, not a reason to stop."""
import os
import pwd
import random
import re
import signal
import socket
import struct
import time
from harness import *

t = Test("sdnotify")
NOBODY = pwd.getpwnam("nobody")


class Listener:
    """The systemd side: a datagram socket, its NOTIFY_SOCKET value, and
    the messages received, each as a dict of its KEY=value lines, and as
    systemd does, the sender's pid, uid and gid when it sent (SO_PASSCRED):
    proof of the order of READY=1 and the privilege drop that a look at
    the process after the message arrived cannot give."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        t.defer(self.sock.close)
        if abstract:
            name = "backstop-test-notify-%d-%d" % (os.getpid(), random.randint(0, 1 << 30))
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            self.env = os.path.join(t.tmpdir("notify"), "notify.sock")
            self.sock.bind(self.env)
            # as systemd's: reload and stop are sent after the drop to nobody
            os.chmod(self.env, 0o777)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.received = []
        self.creds = []

    def next(self, timeout):
        """The next message (a dict), or None after timeout seconds."""
        self.sock.settimeout(timeout)
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return None
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                self.creds.append(struct.unpack("iII", value[:12]))
        msg = dict(line.partition("=")[::2] for line in data.decode().split("\n") if line)
        self.received.append(msg)
        return msg

    def quiet(self, seconds):
        """True if nothing arrives within seconds."""
        return self.next(seconds) is None


def start(notify, sections=None):
    """backstop (not yet started) with NOTIFY_SOCKET=notify in its
    environment, a backend nobody answers on (the greeting does not need
    one)."""
    bs = t.backstop(dict({"backend": {"address": "127.0.0.1:%d" % dead_port()}}, **(sections or {})),
                    start=False)
    os.environ["NOTIFY_SOCKET"] = notify
    try:
        bs.start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    return bs


def greets(bs):
    try:
        c = SmtpClient(bs.host, bs.port, 3)
    except OSError as e:
        return "connect: %s" % e
    try:
        r = c.reply(3)
        return r.code == 220 or "greeting %s" % r
    except (Closed, OSError) as e:
        return "no greeting: %s" % e
    finally:
        c.close()


with t.case("start-up, reload, shutdown on a socket file"):
    n = Listener()
    bs = start(n.env, {"server": {"user": "nobody"}})
    first = n.next(10)
    t.check("the first message is READY=1", first == {"READY": "1"}, first)
    # right after READY=1: what systemd's "started" promises must hold
    g = greets(bs)
    t.check("the port greets as soon as READY=1 arrives", g is True, g)
    creds = n.creds[-1] if n.creds else None
    t.check("READY=1 comes from backstop's pid, sent as nobody (root already dropped)",
            creds == (bs.pid, NOBODY.pw_uid, NOBODY.pw_gid),
            "sender pid/uid/gid %s, backstop pid %d" % (creds, bs.pid))
    t.check("READY=1 is sent once", n.quiet(0.5), n.received)

    bs.mark()
    t0 = time.monotonic()
    bs.signal(signal.SIGHUP)
    r = n.next(5)
    t.check("SIGHUP: RELOADING=1", r is not None and r.get("RELOADING") == "1", r)
    usec = int((r or {}).get("MONOTONIC_USEC", "0"))
    now = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
    t.check("RELOADING=1 has MONOTONIC_USEC, the time the reload began",
            now - 5e6 <= usec <= now, "%s vs now %d (sent at %d)" % (usec, now, t0 * 1e6))
    r = n.next(5)
    t.check("then READY=1", r == {"READY": "1"}, r)
    creds = n.creds[-1] if n.creds else None
    t.check("reload messages come from the main pid", creds and creds[0] == bs.pid, creds)
    t.check("READY=1 after the reload is done",
            re.search(r"reload: configuration .* loaded", bs.log(since_mark=True)), bs.log(since_mark=True))

    # a refused file: systemd must still see the reload end
    good = open(bs.conf).read()
    bs.write_config(text=good + "\n[limits]\nno_such_key = 1\n")
    bs.mark()
    bs.signal(signal.SIGHUP)
    r1, r2 = n.next(5), n.next(5)
    t.check("a refused reload: RELOADING=1, then READY=1",
            r1 is not None and r1.get("RELOADING") == "1" and r2 == {"READY": "1"}, (r1, r2))
    t.check("... and the old configuration runs on",
            re.search(r"keeping the running configuration", bs.log(since_mark=True)) and greets(bs) is True,
            bs.log(since_mark=True))
    bs.write_config(text=good)

    bs.signal(signal.SIGTERM)
    r = n.next(5)
    t.check("SIGTERM: STOPPING=1", r == {"STOPPING": "1"}, r)
    t.check("STOPPING=1 before the process is gone", bs.wait_exit(10) == 0, bs.log()[-2000:])
    t.check("nothing after STOPPING=1", n.quiet(0.3), n.received)

with t.case("abstract socket (@name)"):
    n = Listener(abstract=True)
    bs = start(n.env)
    first = n.next(10)
    t.check("READY=1 on %s" % n.env, first == {"READY": "1"}, first)
    bs.signal(signal.SIGTERM)
    r = n.next(5)
    t.check("STOPPING=1 on the abstract socket", r == {"STOPPING": "1"}, r)
    t.check("exits 0", bs.wait_exit(10) == 0, bs.log()[-2000:])

with t.case("NOTIFY_SOCKET nobody listens on"):
    gone = os.path.join(t.tmpdir("notify-gone"), "none.sock")
    bs = start(gone)
    t.check("a warning names the socket and the reason",
            bs.wait_log(r"cannot tell systemd READY=1 through NOTIFY_SOCKET=%s: " % re.escape(gone)),
            bs.log()[-2000:])
    g = greets(bs)
    t.check("and backstop serves anyway", g is True, g)
    bs.stop()

t.done()

#!/usr/bin/python3
"""idle_bench.py - hold many idle client connections on backstop; print its RSS.

Starts a fresh smtp-sink (the backend, used to count backend connections)
and backstop in front of it, both on loopback, with RLIMIT_NOFILE raised for
itself and for backstop. Opens BENCH_IDLE_CONNS (10000) TCP connections to
backstop, waits until every one has received its 220 banner, then sends
nothing more: the sessions sit idle. While they are held it prints
backstop's VmRSS and VmHWM and the number of connections the sink has seen
since backstop's startup probe (which is excluded: the sink's session count
is taken once the probe is over, and the established connections to the
sink's port are counted with ss as a second witness). Then it closes all
connections and stops backstop with SIGTERM.

Targets: RSS under 80 MB with 10,000 idle clients, and no backend connection.

Run by hand, not from make check:   tests/bench/idle_bench.py
Environment (all optional):
  BACKSTOP            backstop binary (default: build/backstop of this tree)
  BENCH_IDLE_CONNS    connections to hold (10000)
  BENCH_HOLD          seconds to hold them after the last banner (3)
  BENCH_IDLE_EHLO     1: each client sends EHLO after the banner and reads
                      the reply before it goes idle (a session that has
                      read and answered a command; 0)
  BENCH_IDLE_CONNECT_CHECK  1: [limits] conn_rate_per_ip set high enough
                      never to refuse, so a connect-stage check (the rate
                      limit filter) runs for every client (0)
  BENCH_MAX_TIME      seconds the whole script may take (180)
  BENCH_KEEP          1: keep the work directory (logs, config)
Exit status: 0 when the benchmark ran (targets met or not), 1 when something
failed to run (start-up, connections refused or not greeted).
"""
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from bench_proc import (Sink, die, established_to, free_port, raise_nofile,  # noqa: E402
                        start_backstop, status_kb)

HERE = os.path.dirname(os.path.abspath(__file__))
BACKSTOP = os.environ.get("BACKSTOP", os.path.join(HERE, "..", "..", "build", "backstop"))
SINK = os.environ.get("SMTP_SINK", "/usr/sbin/smtp-sink")
NCONN = int(os.environ.get("BENCH_IDLE_CONNS", "10000"))
HOLD = float(os.environ.get("BENCH_HOLD", "3"))
EHLO = os.environ.get("BENCH_IDLE_EHLO", "0") == "1"
CONNECT_CHECK = os.environ.get("BENCH_IDLE_CONNECT_CHECK", "0") == "1"
MAX_TIME = float(os.environ.get("BENCH_MAX_TIME", "180"))
RSS_TARGET_MB = 80
CONNECT_BATCH = 256         # connects in flight at once (backstop's backlog is 1024)

T0 = time.monotonic()


def deadline_left():
    return MAX_TIME - (time.monotonic() - T0)


def ehlo_all(socks):
    """Each socket sends EHLO and reads the reply up to its last line
    ("250 "), CONNECT_BATCH at a time."""
    sel = selectors.DefaultSelector()
    pending = {}
    todo = list(socks)
    while todo or pending:
        if deadline_left() < 10:
            die("EHLO not answered in time: %d left" % (len(todo) + len(pending)))
        while todo and len(pending) < CONNECT_BATCH:
            s = todo.pop()
            s.setblocking(True)
            s.sendall(b"EHLO bench.example\r\n")
            s.setblocking(False)
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ)
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                die("a connection closed after EHLO")
            pending[s] += data
            got = pending[s]
            if got.endswith(b"\r\n") and (got.startswith(b"250 ") or b"\r\n250 " in got):
                sel.unregister(s)
                del pending[s]
            elif not got.startswith(b"250"):
                die("EHLO refused: %r" % got[:100])
    sel.close()


def main():
    for exe in (BACKSTOP, SINK):
        if not os.access(exe, os.X_OK):
            die("%s: not found or not executable" % exe)
    if shutil.which("ss") is None:
        die("ss (iproute2) is needed")
    nofile = raise_nofile(max(65536, NCONN + 1000))
    if nofile < NCONN + 100:
        die("RLIMIT_NOFILE can only be raised to %d; need %d" % (nofile, NCONN + 100))
    signal.signal(signal.SIGALRM, lambda *a: die("BENCH_MAX_TIME (%g s) exceeded" % MAX_TIME))
    signal.alarm(int(MAX_TIME))

    work = tempfile.mkdtemp(prefix="idle_bench.")
    sink = bs = None
    socks = []
    try:
        sink = Sink(work, 100, SINK)
        port = free_port()
        bs, probe = start_backstop(BACKSTOP, work, """[server]
user = root
listen = 127.0.0.1:%d
hostname = mx.test.example
drain_time = 1s
[backend]
address = 127.0.0.1:%d
[limits]
max_connections = %d
max_connections_per_ip = %d
%s[spf]
mode = off
[log]
level = info
""" % (port, sink.port, NCONN + 1000, NCONN + 1000,
       "conn_rate_per_ip = %d\n" % (10 * NCONN) if CONNECT_CHECK else ""), [port], sink)
        log = os.path.join(work, "backstop.log")
        rss0 = status_kb(bs.pid, "VmRSS")

        print("idle_bench: %s on %s, %d CPU(s), %s" % (
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), os.uname().nodename,
            os.cpu_count(), os.uname().release))
        print("backstop %s (built %s), pid %d on 127.0.0.1:%d, RLIMIT_NOFILE %d;"
              " smtp-sink on 127.0.0.1:%d"
              % (BACKSTOP, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(BACKSTOP))),
                 bs.pid, port, nofile, sink.port))
        print("sink sessions after backstop's startup probe: %d (the baseline)" % probe)
        print("backstop RSS before clients: %.1f MB" % (rss0 / 1024))

        # open the connections, CONNECT_BATCH in flight at a time, and read
        # each one's banner
        sel = selectors.DefaultSelector()
        pending = {}             # socket -> bytes received so far
        greeted = 0
        failed = 0
        opened = 0
        t_start = time.monotonic()
        while greeted + failed < NCONN:
            if deadline_left() < 10:
                die("not all connections greeted in time: %d of %d" % (greeted, NCONN))
            while opened < NCONN and len(pending) < CONNECT_BATCH:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                pending[s] = b""
                sel.register(s, selectors.EVENT_READ)
                socks.append(s)
                opened += 1
            for key, _ in sel.select(timeout=1.0):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    failed += 1
                    sel.unregister(s)
                    del pending[s]
                    continue
                pending[s] += data
                if b"\r\n" in pending[s]:
                    sel.unregister(s)
                    if pending[s].startswith(b"220"):
                        greeted += 1
                    else:
                        failed += 1
                        if failed <= 3:
                            print("not greeted: %r" % pending[s][:100])
                    del pending[s]
        t_open = time.monotonic() - t_start
        sel.close()
        print("%d connections opened and greeted with 220 in %.2f s (%d failed)"
              % (greeted, t_open, failed))
        if failed:
            die("%d connection(s) were refused or not greeted" % failed)
        if EHLO:
            ehlo_all(socks)
            print("%d connections sent EHLO and read its 250 reply" % len(socks))

        time.sleep(HOLD)
        rss = status_kb(bs.pid, "VmRSS")
        hwm = status_kb(bs.pid, "VmHWM")
        fds = len(os.listdir("/proc/%d/fd" % bs.pid))
        be_sessions = sink.sessions() - probe
        be_estab = established_to(sink.port)
        alive = sum(1 for s in socks if s.fileno() >= 0)
        print("after holding %d idle connections for %g s:" % (alive, HOLD))
        print("  backstop VmRSS %.1f MB, VmHWM %.1f MB (%.2f KB per connection over the"
              " baseline), %d open fds" % (rss / 1024, hwm / 1024,
                                           (rss - rss0) / max(1, greeted), fds))
        print("  sink sessions since the probe: %d; established connections to the sink now: %d"
              % (be_sessions, be_estab))

        for s in socks:
            s.close()
        socks = []
        # stop backstop; at exit it logs how many backend connections it
        # opened in total (the probe is not one of them)
        bs.send_signal(signal.SIGTERM)
        try:
            bs.wait(15)
        except subprocess.TimeoutExpired:
            bs.kill()
            bs.wait()
            print("backstop did not stop on SIGTERM within 15 s")
        m = re.search(r"stopped; (\d+) backend connection\(s\) opened in total", open(log).read())
        total = m.group(1) if m else "?"
        print("  backstop's own count at exit: %s backend connection(s) opened" % total)

        ok_rss = hwm < RSS_TARGET_MB * 1024
        ok_be = be_sessions == 0 and be_estab == 0 and total == "0"
        print()
        print("summary: %d idle clients, backstop peak RSS %.1f MB (target < %d MB): %s;"
              " backend connections %d (target 0): %s"
              % (greeted, hwm / 1024, RSS_TARGET_MB, "PASS" if ok_rss else "FAIL",
                 max(be_sessions, be_estab), "PASS" if ok_be else "FAIL"))
        print("targets: " + ("met" if ok_rss and ok_be else "MISSED"))
    finally:
        for s in socks:
            s.close()
        if bs is not None and bs.poll() is None:
            bs.kill()
            bs.wait()
        if sink is not None:
            sink.stop()
        if os.environ.get("BENCH_KEEP") == "1":
            print("work directory kept: " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

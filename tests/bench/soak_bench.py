#!/usr/bin/python3
"""soak_bench.py - normal mail beside 1,000 slowloris and 1,000 silent clients.

Starts a fresh smtp-sink (the backend) and backstop in front of it, both on
loopback, with RLIMIT_NOFILE raised for itself and for backstop. Three phases:

 1. unloaded: BENCH_THREADS (4) threads send BENCH_MSGS (300) messages, one
    connection per message, BENCH_ROUNDS (8) times, 2 s apart; the latency of each
    message is connect -> the 250 after the final dot (p50/p95/p99).
 2. soak: a driver process (one thread, one selector) opens BENCH_SLOW (1000)
    slowloris and BENCH_SILENT (1000) silent connections and keeps them for
    BENCH_SOAK (80) seconds. Slowloris clients send one byte a second:
    BENCH_SLOW_DATA (50) of them inside DATA (after EHLO, MAIL, RCPT; 72-byte
    lines), the rest a command line that never ends ("EHLO aaaa..."). Silent
    clients read the banner and send nothing. A connection that backstop
    closes is opened again at once, so the counts hold for the whole soak.
    While they are held, the same normal load runs in rounds until the soak
    ends. Every second: backstop's VmRSS, VmHWM, CPU, the connections
    established to the sink's port (ss) and backstop's /metrics gauges.
 3. after: the driver closes everything; backstop's connections gauge must go
    to 0 and RSS is read again. Then the driver opens and closes the same
    2000 connections once more (BENCH_CYCLE2, 15 s) and reads it again. With
    gdb, malloc's own figures (malloc_stats(), called in backstop) are read
    after each cycle: bytes in use that grow from one cycle to the next would
    be a leak; RSS that stays above the phase-1 figure is memory malloc keeps
    for reuse.

Backend connections: every normal message opens one, every slow-DATA client
whose MAIL got 250 opens one; anything above that (sink sessions, and ss
while no normal message is in flight) is a backend connection of an idle or
line-slow client (target 0).

Targets: p95 with the soak <= 2 x p95 unloaded; peak RSS < 80 MB and RSS not
growing over the soak; no backend connection for idle or line-slow clients;
no failed normal message. Exit status 0 when the benchmark ran (targets met
or not), 1 when something failed to run.

backstop keeps its default limits except [limits] max_connections and
max_connections_per_ip (every client is 127.0.0.1), [spf] mode = off (no DNS)
and [metrics] listen. The timers that could end the slow clients are
greeting_timeout (60s: before the first command), command_timeout (300s),
data_timeout (180s) and session_timeout (3600s); each is restarted by every
byte read except session_timeout (see README.md here).

Run by hand, not from make check:   tests/bench/soak_bench.py
Environment (all optional): BACKSTOP (default build/backstop of this tree),
BENCH_MSGS, BENCH_THREADS, BENCH_ROUNDS, BENCH_SLOW, BENCH_SLOW_DATA,
BENCH_SILENT, BENCH_SOAK, BENCH_CYCLE2 (0: skip), BENCH_MAX_TIME (400),
BENCH_KEEP=1 (keep the work directory: logs, config, samples.csv).
"""
import json
import os
import random
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from bench_proc import (Sink, cpu_seconds, die, established_to, free_port,  # noqa: E402
                        raise_nofile, start_backstop, status_kb)

HERE = os.path.dirname(os.path.abspath(__file__))
BACKSTOP = os.environ.get("BACKSTOP", os.path.join(HERE, "..", "..", "build", "backstop"))
SINK = os.environ.get("SMTP_SINK", "/usr/sbin/smtp-sink")
MSGS = int(os.environ.get("BENCH_MSGS", "300"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "8"))
NSLOW = int(os.environ.get("BENCH_SLOW", "1000"))
NSLOW_DATA = int(os.environ.get("BENCH_SLOW_DATA", "50"))
NSILENT = int(os.environ.get("BENCH_SILENT", "1000"))
SOAK = float(os.environ.get("BENCH_SOAK", "80"))
QUIET = 10                  # seconds at the end of the soak without normal load
CYCLE2 = float(os.environ.get("BENCH_CYCLE2", "15"))
MAX_TIME = float(os.environ.get("BENCH_MAX_TIME", "400"))
RSS_TARGET_MB = 80
RSS_GROWTH_MB = 5           # allowed RSS growth from the start to the end of the soak
CONNECT_BATCH = 256         # driver connects in flight at once (backstop's backlog is 1024)
DRIP_BUCKETS = 100          # the driver spreads each second's bytes over 10 ms slots

T0 = time.monotonic()


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


# ---------------------------------------------------------------- the driver
# One process, one thread, one selector for every slow and silent socket:
# the normal clients in the main process do not share its interpreter lock.

class Conn:
    __slots__ = ("kind", "sock", "step", "buf", "sent", "bucket", "last_reply")


def driver(port, nline, ndata, nsilent, duration):
    """Run as a child: hold the connections for duration seconds; print a
    JSON status line every second and a final one; then close everything."""
    sel = selectors.DefaultSelector()
    kinds = ["data"] * ndata + ["line"] * nline + ["silent"] * nsilent
    want = {"data": ndata, "line": nline, "silent": nsilent}
    stats = {"open": {"data": 0, "line": 0, "silent": 0}, "greeted": 0, "in_data": 0,
             "dripping": 0, "opened": 0, "closed_by_server": {"data": 0, "line": 0, "silent": 0},
             "server_said": {}, "mail_refused": 0, "data_ok": 0, "bytes": 0,
             "connect_errors": 0}
    buckets = [set() for _ in range(DRIP_BUCKETS)]
    to_open = list(kinds)
    retry = []        # (when, kind): connections to open again later
    connecting = 0
    conns = set()
    line_bytes = b"EHLO " + b"a" * 100000
    data_bytes = b"Subject: slow\r\n\r\n" + (b"x" * 70 + b"\r\n") * 1500
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *a: stop.__setitem__(0, True))

    def close(c, by_server, said=b""):
        nonlocal connecting
        if c.step in ("connect", "banner"):
            connecting -= 1
        for b in buckets:
            b.discard(c)
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        conns.discard(c)
        if c.step != "banner":          # counted as open once greeted
            stats["open"][c.kind] -= 1
        if c.step == "drip":
            stats["dripping"] -= 1
            if c.kind == "data":
                stats["in_data"] -= 1
        if by_server:
            stats["closed_by_server"][c.kind] += 1
            key = said[:60].decode("ascii", "replace").strip() or "(closed without a reply)"
            stats["server_said"][key] = stats["server_said"].get(key, 0) + 1
            if not stop[0]:
                # keep the count: open another one; a slow-DATA client whose
                # MAIL was refused (every backend connection taken) comes
                # back after a second, as a client would retry
                if c.step == "mail":
                    retry.append((time.monotonic() + 1, c.kind))
                else:
                    to_open.append(c.kind)

    def start_drip(c):
        c.step = "drip"
        c.sent = 0
        c.bucket = random.randrange(DRIP_BUCKETS)
        buckets[c.bucket].add(c)
        stats["dripping"] += 1
        if c.kind == "data":
            stats["in_data"] += 1

    def send(c, data):
        try:
            c.sock.send(data)
            return True
        except OSError:
            close(c, True, c.last_reply)
            return False

    def on_reply(c, line):
        """One complete reply line (the last of a multi-line reply)."""
        nonlocal connecting
        c.last_reply = line
        code = line[:3]
        if c.step == "banner":
            connecting -= 1
            if code != b"220":
                close(c, True, line)
                return
            stats["greeted"] += 1
            stats["open"][c.kind] += 1
            if c.kind == "silent":
                c.step = "silent"
            elif c.kind == "line":
                start_drip(c)
            else:
                c.step = "ehlo"
                send(c, b"EHLO slow.example\r\n")
        elif c.step == "ehlo" and code == b"250":
            c.step = "mail"
            send(c, b"MAIL FROM:<slow@example.org>\r\n")
        elif c.step == "mail":
            if code != b"250":
                stats["mail_refused"] += 1
                close(c, True, line)
                return
            stats["data_ok"] += 1      # backstop opened a backend connection for it
            c.step = "rcpt"
            send(c, b"RCPT TO:<user@example.org>\r\n")
        elif c.step == "rcpt" and code == b"250":
            c.step = "data"
            send(c, b"DATA\r\n")
        elif c.step == "data" and code == b"354":
            start_drip(c)
        elif c.step in ("drip", "silent"):
            pass     # e.g. 500 line too long; a 421 comes with the close
        else:
            close(c, True, line)

    def on_readable(c):
        try:
            data = c.sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            close(c, True, c.buf or c.last_reply)
            return
        c.buf += data
        while b"\n" in c.buf:
            line, c.buf = c.buf.split(b"\n", 1)
            if len(line) >= 4 and line[3:4] == b"-":
                continue
            on_reply(c, line)
            if c not in conns:
                return

    t_start = time.monotonic()
    next_status = t_start + 1
    slot = 0
    next_slot = t_start
    while True:
        now = time.monotonic()
        if stop[0] or now - t_start >= duration:
            break
        while retry and retry[0][0] <= now:
            to_open.append(retry.pop(0)[1])
        while to_open and connecting < CONNECT_BATCH:
            c = Conn()
            c.kind = to_open.pop()
            c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.sock.setblocking(False)
            c.buf = b""
            c.last_reply = b""
            c.sent = 0
            c.step = "banner"
            err = c.sock.connect_ex(("127.0.0.1", port))
            if err not in (0, 115):     # EINPROGRESS
                stats["connect_errors"] += 1
                c.sock.close()
                to_open.append(c.kind)
                break
            sel.register(c.sock, selectors.EVENT_READ, c)
            conns.add(c)
            connecting += 1
            stats["opened"] += 1
        timeout = max(0.0, min(next_slot, next_status) - time.monotonic())
        for key, _ in sel.select(timeout):
            if key.data in conns:
                on_readable(key.data)
        now = time.monotonic()
        while now >= next_slot:
            for c in list(buckets[slot]):
                src = data_bytes if c.kind == "data" else line_bytes
                if send(c, src[c.sent % len(src):c.sent % len(src) + 1]):
                    c.sent += 1
                    stats["bytes"] += 1
            slot = (slot + 1) % DRIP_BUCKETS
            next_slot += 1.0 / DRIP_BUCKETS
        if now >= next_status:
            next_status += 1
            stats["t"] = round(now - t_start, 1)
            stats["want"] = want
            print(json.dumps(stats), flush=True)
    for c in list(conns):
        c.sock.close()
    stats["t"] = round(time.monotonic() - t_start, 1)
    stats["final"] = True
    print(json.dumps(stats), flush=True)


# ---------------------------------------------------------------- the bench

BODY = ("From: a@example.org\r\nTo: b@example.org\r\nSubject: soak\r\n\r\n"
        + ("0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 01234567\r\n" * 27)
        ).encode() + b".\r\n"


def reply(f):
    """Read one reply; return its code."""
    while True:
        line = f.readline()
        if not line:
            raise OSError("connection closed")
        if line[3:4] != b"-":
            return line[:3]


def one_message(port):
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        f = s.makefile("rb")
        steps = ((None, b"220"), (b"EHLO normal.example\r\n", b"250"),
                 (b"MAIL FROM:<a@example.org>\r\n", b"250"), (b"RCPT TO:<b@example.org>\r\n", b"250"),
                 (b"DATA\r\n", b"354"), (BODY, b"250"))
        for cmd, want in steps:
            if cmd:
                s.sendall(cmd)
            code = reply(f)
            if code != want:
                return None, "%s after %s" % (code.decode(), (cmd or b"connect")[:4].decode())
        latency = time.perf_counter() - t0
        s.sendall(b"QUIT\r\n")
        reply(f)
        return latency, None
    except OSError as e:
        return None, str(e)
    finally:
        s.close()


def load_round(port, nmsgs, nthreads):
    """nmsgs messages over nthreads threads; returns (latencies, errors, seconds)."""
    lat, errs = [], {}
    lock = threading.Lock()
    counter = [0]

    def worker():
        while True:
            with lock:
                if counter[0] >= nmsgs:
                    return
                counter[0] += 1
            l, e = one_message(port)
            with lock:
                if e:
                    errs[e] = errs.get(e, 0) + 1
                else:
                    lat.append(l)
    t0 = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat, errs, time.monotonic() - t0


def ms(v):
    return "%.1f" % (v * 1000)


def lat_line(lat):
    return "p50 %s / p95 %s / p99 %s / max %s ms" % (
        ms(percentile(lat, 50)), ms(percentile(lat, 95)), ms(percentile(lat, 99)),
        ms(max(lat) if lat else float("nan")))


class Sampler(threading.Thread):
    """Every second: backstop's memory, CPU, backend sockets and gauges."""

    def __init__(self, pid, sink_port, metrics_port, csv):
        super().__init__(daemon=True)
        self.pid, self.sink_port, self.metrics_port = pid, sink_port, metrics_port
        self.samples = []
        self.phase = "start"
        self.driver = {}
        self.normal_active = False
        self.stop = threading.Event()
        self.csv = open(csv, "w")
        self.csv.write("t,phase,vmrss_kb,vmhwm_kb,cpu_s,sink_estab,normal_active,"
                       "gauge_connections,gauge_backend,drv_line,drv_data,drv_silent\n")

    def gauges(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return -1, -1
        g = dict(re.findall(r"^(backstop_connections|backstop_backend_connections) (\d+)$", text, re.M))
        return int(g.get("backstop_connections", -1)), int(g.get("backstop_backend_connections", -1))

    def sample(self):
        conns, be = self.gauges()
        d = self.driver.get("open", {})
        s = {"t": time.monotonic() - T0, "phase": self.phase,
             "rss": status_kb(self.pid, "VmRSS"), "hwm": status_kb(self.pid, "VmHWM"),
             "cpu": cpu_seconds(self.pid), "estab": established_to(self.sink_port),
             "normal": self.normal_active, "conns": conns, "be": be,
             "line": d.get("line", 0), "data": d.get("data", 0), "silent": d.get("silent", 0),
             "in_data": self.driver.get("in_data", 0)}
        self.samples.append(s)
        self.csv.write("%.1f,%s,%d,%d,%.2f,%d,%d,%d,%d,%d,%d,%d\n" % (
            s["t"], s["phase"], s["rss"], s["hwm"], s["cpu"], s["estab"], s["normal"],
            conns, be, s["line"], s["data"], s["silent"]))
        self.csv.flush()
        return s

    def run(self):
        nxt = time.monotonic()
        while not self.stop.is_set():
            try:
                self.sample()
            except OSError:
                return
            nxt += 1
            self.stop.wait(max(0, nxt - time.monotonic()))


def malloc_in_use(pid, log):
    """(system bytes, in-use bytes) of backstop's malloc, from glibc's
    malloc_stats() called through gdb (it prints to backstop's stderr, the
    log); None without gdb or ptrace."""
    if shutil.which("gdb") is None:
        return None
    size = os.path.getsize(log)
    try:
        subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "call (void)malloc_stats()"],
                       capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None
    with open(log, "rb") as f:
        f.seek(size)
        text = f.read().decode("ascii", "replace")
    sysb = re.findall(r"system bytes\s+=\s+(\d+)", text)
    used = re.findall(r"in use bytes\s+=\s+(\d+)", text)
    return (int(sysb[-1]), int(used[-1])) if sysb and used else None


def heap_text(h):
    if not h:
        return ""
    return "; malloc: %.1f MB from the system, %.2f MB in use" % (h[0] / 1048576, h[1] / 1048576)


def start_driver(port, nline, ndata, nsilent, secs, sampler):
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--driver", str(port),
                             str(nline), str(ndata), str(nsilent), str(secs)],
                            stdout=subprocess.PIPE)
    final = {}

    def reader():
        for line in proc.stdout:
            st = json.loads(line)
            sampler.driver = st
            if st.get("final"):
                final.update(st)
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    return proc, th, final


def wait_all_open(sampler, total, secs):
    """Every connection open and dripping (or silent); slow-DATA clients
    that cannot get into DATA (MAIL refused) get 5 s more, then are left."""
    end = time.monotonic() + secs
    others_open = None
    while time.monotonic() < end:
        d = sampler.driver
        if d and d.get("dripping", 0) + d["open"]["silent"] >= total:
            return True
        if d and others_open is None and d["open"]["silent"] == d["want"]["silent"] and \
                d["dripping"] - d["in_data"] == d["want"]["line"]:
            others_open = time.monotonic()
        if others_open is not None and time.monotonic() - others_open > 5:
            return True
        time.sleep(0.2)
    return False


def gauge_zero(sampler, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        c, _ = sampler.gauges()
        if c == 0:
            return True
        time.sleep(0.2)
    return False


def main():
    for exe in (BACKSTOP, SINK):
        if not os.access(exe, os.X_OK):
            die("%s: not found or not executable" % exe)
    if shutil.which("ss") is None:
        die("ss (iproute2) is needed")
    total = NSLOW + NSILENT
    nofile = raise_nofile(max(65536, 2 * total + 1000))
    if nofile < 2 * total + 200:
        die("RLIMIT_NOFILE can only be raised to %d; need %d" % (nofile, 2 * total + 200))
    signal.signal(signal.SIGALRM, lambda *a: die("BENCH_MAX_TIME (%g s) exceeded" % MAX_TIME))
    signal.alarm(int(MAX_TIME))

    work = tempfile.mkdtemp(prefix="soak_bench.")
    sink = bs = sampler = drv = None
    try:
        sink = Sink(work, 1024, SINK)
        port = free_port()
        mport = free_port()
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
[spf]
mode = off
[metrics]
listen = 127.0.0.1:%d
[log]
level = warning
""" % (port, sink.port, total + 1000, total + 1000, mport), [port, mport], sink)
        log = os.path.join(work, "backstop.log")
        sampler = Sampler(bs.pid, sink.port, mport, os.path.join(work, "samples.csv"))
        rss_start = status_kb(bs.pid, "VmRSS")
        sampler.start()

        print("soak_bench: %s on %s, %d CPU(s), %s, load average %s" % (
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), os.uname().nodename,
            os.cpu_count(), os.uname().release, open("/proc/loadavg").read().split(" ", 3)[:3]))
        print("backstop %s (built %s), pid %d on 127.0.0.1:%d; smtp-sink on 127.0.0.1:%d;"
              " RLIMIT_NOFILE %d" % (BACKSTOP, time.strftime(
                  "%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(BACKSTOP))),
                  bs.pid, port, sink.port, nofile))
        print("normal load: %d threads, %d messages of %d bytes per round, one connection per message"
              % (THREADS, MSGS, len(BODY)))
        print("backstop RSS at start: %.1f MB" % (rss_start / 1024))

        # phase 1
        sampler.phase = "unloaded"
        load_round(port, 20, THREADS)        # warm-up, not counted
        lat1, errs1, nmsg1 = [], {}, 20
        cpu_a = cpu_seconds(bs.pid)
        sampler.normal_active = True
        for r in range(ROUNDS):
            lat, errs, secs = load_round(port, MSGS, THREADS)
            nmsg1 += MSGS
            lat1 += lat
            for k, v in errs.items():
                errs1[k] = errs1.get(k, 0) + v
            print("phase 1 (unloaded) round %d: %d messages in %.2f s, %s%s" % (
                r + 1, MSGS, secs, lat_line(lat), ", errors %s" % errs if errs else ""))
            if r + 1 < ROUNDS:
                time.sleep(2)     # as between the rounds of phase 2
        sampler.normal_active = False
        cpu1 = cpu_seconds(bs.pid) - cpu_a
        time.sleep(1.5)
        rss_base = status_kb(bs.pid, "VmRSS")
        print("phase 1: %s over %d messages; backstop CPU %.0f us per message;"
              " RSS after: %.1f MB" % (lat_line(lat1), len(lat1), cpu1 * 1e6 / max(1, nmsg1 - 20),
                                       rss_base / 1024))

        # phase 2
        sess_a = sink.sessions()
        sampler.phase = "soak-open"
        t_drv = time.monotonic()
        drv, drv_th, drv_final = start_driver(port, NSLOW - NSLOW_DATA, NSLOW_DATA, NSILENT, SOAK, sampler)
        if not wait_all_open(sampler, total, 60):
            die("the driver did not get all %d connections open: %s" % (total, sampler.driver))
        t_open = time.monotonic() - t_drv
        time.sleep(2)
        s_held = sampler.sample()
        d = dict(sampler.driver)
        excess_ss = s_held["estab"] - d["in_data"]
        print("phase 2: %d slow (%d in DATA, %d on a command line) + %d silent connections open"
              " in %.1f s; no normal load: %d connections established to the sink, %d of them"
              " slow-DATA clients; RSS %.1f MB (%.1f KB per connection over phase 1)"
              % (d["dripping"], d["in_data"], d["dripping"] - d["in_data"], d["open"]["silent"], t_open,
                 s_held["estab"], d["in_data"], s_held["rss"] / 1024,
                 (s_held["rss"] - rss_base) / max(1, total)))
        sampler.phase = "soak"
        rss_soak_first = s_held["rss"]
        lat2, errs2, nmsg2 = [], {}, 0
        cpu_a = cpu_seconds(bs.pid)
        busy = 0.0
        r = 0
        while time.monotonic() - t_drv < SOAK - QUIET - 4:
            r += 1
            sampler.normal_active = True
            lat, errs, secs = load_round(port, MSGS, THREADS)
            sampler.normal_active = False
            busy += secs
            nmsg2 += MSGS
            lat2 += lat
            for k, v in errs.items():
                errs2[k] = errs2.get(k, 0) + v
            dd = sampler.driver
            print("phase 2 round %d at %2.0f s: %s%s; held: line %d data %d silent %d;"
                  " closed by backstop so far: %s" % (
                      r, time.monotonic() - t_drv, lat_line(lat), ", errors %s" % errs if errs else "",
                      dd["open"]["line"], dd["open"]["data"], dd["open"]["silent"],
                      dd["closed_by_server"]))
            time.sleep(2)
        cpu2 = cpu_seconds(bs.pid) - cpu_a
        t_rounds = time.monotonic() - t_drv
        # the quiet end of the soak: only the slow and silent clients; what
        # backstop's CPU does with one byte a second from each slow client
        time.sleep(max(1.5, SOAK - QUIET - 2 - (time.monotonic() - t_drv)))
        # the last normal backend connections have ended (QUIT) by now: from
        # here on, every connection to the sink is a slow-DATA client's
        sampler.phase = "soak-quiet"
        q_cpu, q_bytes, q_t = cpu_seconds(bs.pid), sampler.driver["bytes"], time.monotonic()
        time.sleep(max(0, SOAK - 2 - (time.monotonic() - t_drv)))
        q_cpu = cpu_seconds(bs.pid) - q_cpu
        q_bytes = sampler.driver["bytes"] - q_bytes
        q_t = time.monotonic() - q_t
        soak_samples = [s for s in sampler.samples if s["phase"] in ("soak", "soak-quiet")]
        s_end = sampler.sample()    # the last sample while everything is still held
        quiet = [s for s in sampler.samples if s["phase"] == "soak-quiet"]
        soak_samples.append(s_end)
        drv.wait(30)
        drv_th.join(5)
        print("phase 2 driver: %s" % json.dumps(drv_final))
        sampler.phase = "after"
        sess_b = sink.sessions()
        # normal messages each opened one backend connection, slow-DATA
        # clients one each when their MAIL got 250
        expected = len(lat2) + drv_final.get("data_ok", 0)
        # sink sessions are counted at their end: wait until every one has ended
        ok_zero = gauge_zero(sampler, 15)
        end = time.monotonic() + 10
        while established_to(sink.port) and time.monotonic() < end:
            time.sleep(0.2)
        time.sleep(0.5)
        sess_b = sink.sessions()
        excess_sink = (sess_b - sess_a) - expected
        peak_hwm = max(s["hwm"] for s in sampler.samples)
        excess_ss_max = max([excess_ss] + [s["estab"] - s["in_data"] for s in quiet])
        rsses = [s["rss"] for s in soak_samples]
        print("phase 2: %d messages in rounds (normal load busy %.0f s of %.0f s); %s;"
              " backstop CPU %.1f s (%.0f %% of one core), %.0f us per normal message all included"
              % (len(lat2), busy, t_rounds, lat_line(lat2), cpu2, 100 * cpu2 / max(1, t_rounds),
                 cpu2 * 1e6 / max(1, nmsg2)))
        print("phase 2 quiet end (%.1f s, no normal load): backstop CPU %.2f s = %.1f %% of one core"
              " for %d bytes from the slow clients (%.0f us per byte)" % (
                  q_t, q_cpu, 100 * q_cpu / q_t, q_bytes, q_cpu * 1e6 / max(1, q_bytes)))
        print("phase 2 memory: VmRSS %.1f MB when all were open, min %.1f / max %.1f MB over the"
              " soak, %.1f MB at its end; VmHWM %.1f MB" % (
                  rss_soak_first / 1024, min(rsses) / 1024, max(rsses) / 1024, s_end["rss"] / 1024,
                  peak_hwm / 1024))
        print("phase 2 backend: sink sessions %d = %d normal messages relayed + %d slow-DATA clients whose"
              " MAIL got 250 %+d; ss while only slow clients were held (%d samples): at most %d"
              " connection(s) beyond the slow-DATA ones" % (
                  sess_b - sess_a, len(lat2), drv_final.get("data_ok", 0), excess_sink, len(quiet) + 1,
                  excess_ss_max))

        # phase 3
        time.sleep(3)
        rss_after1 = status_kb(bs.pid, "VmRSS")
        heap1 = malloc_in_use(bs.pid, log)
        print("phase 3: connections gauge %s after the soak; RSS %.1f MB (phase 1: %.1f MB,"
              " start %.1f MB)%s" % ("0" if ok_zero else "NOT 0", rss_after1 / 1024, rss_base / 1024,
                                     rss_start / 1024, heap_text(heap1)))
        rss_after2 = heap2 = None
        if CYCLE2 > 0:
            sampler.phase = "cycle2"
            drv, drv_th, final2 = start_driver(port, NSLOW - NSLOW_DATA, NSLOW_DATA, NSILENT, CYCLE2, sampler)
            drv.wait(CYCLE2 + 30)
            drv_th.join(5)
            sampler.phase = "after2"
            ok_zero2 = gauge_zero(sampler, 15)
            time.sleep(3)
            rss_after2 = status_kb(bs.pid, "VmRSS")
            heap2 = malloc_in_use(bs.pid, log)
            print("phase 3: a second cycle of the same %d connections (%g s): connections gauge %s;"
                  " RSS %.1f MB (%+.1f MB against the first cycle)%s" % (
                      total, CYCLE2, "0" if ok_zero2 else "NOT 0", rss_after2 / 1024,
                      (rss_after2 - rss_after1) / 1024, heap_text(heap2)))
            ok_zero = ok_zero and ok_zero2

        sampler.stop.set()
        sampler.join(3)
        bs.send_signal(signal.SIGTERM)
        try:
            bs.wait(15)
        except subprocess.TimeoutExpired:
            bs.kill()
            bs.wait()
            print("backstop did not stop on SIGTERM within 15 s")

        p95_1, p95_2 = percentile(lat1, 95), percentile(lat2, 95)
        ok_lat = bool(lat1) and bool(lat2) and p95_2 <= 2 * p95_1
        ok_err = not errs1 and not errs2
        ok_rss = peak_hwm < RSS_TARGET_MB * 1024 and (s_end["rss"] - rss_soak_first) < RSS_GROWTH_MB * 1024
        ok_be = excess_sink == 0 and excess_ss_max <= 0
        # a leak grows what malloc has handed out from one cycle to the next;
        # RSS alone also grows when freed chunks are reused at other places
        # (malloc keeps freed memory: RSS does not return to the phase-1 figure)
        if heap1 and heap2:
            leak_growth = heap2[1] - heap1[1]
            ok_leak = ok_zero and leak_growth < 64 * 1024
            leak_text = "malloc in-use bytes %+d from one cycle to the next (target < 64 KB)" % leak_growth
        elif rss_after2 is None:
            ok_leak = ok_zero
            leak_text = "one cycle only (BENCH_CYCLE2=0): no leak check"
        else:
            ok_leak = ok_zero and rss_after2 - rss_after1 < 1024
            leak_text = "RSS %+.1f MB from one cycle to the next (no gdb: target < 1 MB)" % (
                (rss_after2 - rss_after1) / 1024)
        verdict = lambda ok: "PASS" if ok else "FAIL"
        print()
        print("summary:")
        print("  p95 latency: unloaded %s ms, with %d slow + %d silent clients %s ms (%.2fx;"
              " target <= 2x): %s" % (ms(p95_1), NSLOW, NSILENT, ms(p95_2),
                                   p95_2 / p95_1 if lat1 and lat2 else float("nan"), verdict(ok_lat)))
        print("  normal messages failed: %d unloaded, %d soaked (target 0): %s" % (
            sum(errs1.values()), sum(errs2.values()), verdict(ok_err)))
        print("  memory: peak VmHWM %.1f MB (target < %d MB), RSS growth over the soak %+.1f MB"
              " (target < %d MB): %s" % (peak_hwm / 1024, RSS_TARGET_MB,
                                          (s_end["rss"] - rss_soak_first) / 1024, RSS_GROWTH_MB,
                                          verdict(ok_rss)))
        print("  backend connections of idle and line-slow clients: %d by sink sessions, %d by ss"
              " (target 0): %s" % (excess_sink, max(0, excess_ss_max), verdict(ok_be)))
        print("  after: connections gauge %s, %s: %s" % ("0" if ok_zero else "NOT 0", leak_text,
                                                          verdict(ok_leak)))
        print("targets: " + ("met" if ok_lat and ok_err and ok_rss and ok_be and ok_leak else "MISSED"))
    finally:
        if drv is not None and drv.poll() is None:
            drv.kill()
        if sampler is not None:
            sampler.stop.set()
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
    if len(sys.argv) == 7 and sys.argv[1] == "--driver":
        driver(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))
        sys.exit(0)
    sys.exit(main())

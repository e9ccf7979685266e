#!/usr/bin/python3
"""workers: [server] workers = 2 - a master and two worker processes with
SO_REUSEPORT listeners of their own. Both workers take connections and
relay mail; max_connections_per_ip holds exactly across them (the shared
table); a worker killed with SIGKILL is logged, restarted, and its
connections' counts are released; SIGHUP reaches both workers (and a
worker restarted after it runs the reloaded file); /metrics (worker 0)
adds up both workers; SIGTERM stops them all and the master exits 0."""
import os
import pwd
import re
import signal
import socket
import struct
import time
import urllib.request
from harness import *

t = Test("workers", need=("smtp-sink",), watchdog=100)
sink = t.sink()
mport = free_port()
bs = t.backstop({"backend": {"address": sink.address},
                 "server": {"workers": "2", "banner": "first banner"},
                 "limits": {"max_connections_per_ip": "3"},
                 "metrics": {"listen": "127.0.0.1:%d" % mport}})
master = bs.pid


def workers_now():
    """{worker number: pid} of the workers started last, from the log"""
    return {int(n): int(p) for n, p in re.findall(r"worker (\d+) started \(pid (\d+)\)", bs.log())}


def wait_listening(count=1):
    """the master's "2 workers listening", count times since the mark
    (wait_log returns the matches it found, perhaps fewer)"""
    return len(bs.wait_log(r"2 workers listening", 5, count=count)) >= count


def handler_of(c):
    """the pid whose log line says it took connection c"""
    port = c.sock.getsockname()[1]
    rx = r"backstop\[(\d+)\]: \w+: connect from \[127\.0\.0\.1\]:%d " % port
    m = poll(lambda: re.search(rx, bs.log()), 3)
    return int(m.group(1)) if m else None


def connect():
    c = SmtpClient(bs.host, bs.port, 5)
    t.defer(c.close)
    c.greeting_reply = c.greeting()
    return c


def connect_greeted(tries=20):
    """a connection greeted with 220: max_connections_per_ip (3) also
    counts the sessions a slow (ASan) build is still closing, so a 421 is
    tried again shortly"""
    for _ in range(tries):
        c = connect()
        if c.greeting_reply.code == 220:
            return c
        c.close()
        time.sleep(0.3)
    return c


def quit_and_close(c):
    try:
        c.cmd("QUIT")
    except (Closed, OSError):
        pass
    c.close()


def release(conns):
    for c in conns:
        try:
            c.cmd("QUIT")
        except (Closed, OSError):
            pass
        c.close()
    # the counts drop when each session has ended
    time.sleep(0.2)


def scrape():
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=3).read().decode()
    return {l.split()[0]: float(l.split()[1]) for l in body.splitlines()
            if l and not l.startswith("#")}


def wait_no_sessions(timeout=10):
    """until no worker has a session open (so none is counted per IP): an
    ASan build may still be closing the last case's sessions. Zero twice,
    WORKERS_GAUGES_MS (500 ms) apart: worker 0 sums the others' published
    gauges."""
    def zero():
        try:
            return scrape().get("backstop_connections", 1) == 0
        except OSError:
            return False
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if zero():
            time.sleep(0.6)
            if zero():
                return True
        time.sleep(0.1)
    return False


with t.case("two workers start, both take connections and relay mail"):
    t.check("the master logs both workers listening", wait_listening(), bs.log())
    w = workers_now()
    t.check("two worker pids, neither the master", len(w) == 2 and master not in w.values(), w)
    seen = set()
    for i in range(40):
        c = connect_greeted()
        seen.add(handler_of(c))
        if i < 6:
            c.ehlo()
            r = c.mail_transaction("a@example.org", ["b@example.org"], make_message("m%d" % i))
            t.check("message %d accepted" % i, r[-1].code == 250, r)
        quit_and_close(c)
        if i >= 6 and seen == set(w.values()):
            break
    t.check("sessions handled by both workers", seen == set(w.values()), (seen, w))
    t.check("the sink got the messages", len(sink.wait_for(6)) >= 6, len(sink.files()))

with t.case("max_connections_per_ip = 3 holds across workers"):
    t.check("the last case's sessions are gone", wait_no_sessions(), scrape().get("backstop_connections"))
    w = workers_now()
    split, refused_by = 0, set()
    for trial in range(16):
        held = [connect() for _ in range(3)]
        ok = all(c.greeting_reply.code == 220 for c in held)
        owners = {handler_of(c) for c in held}
        split += len(owners) > 1
        c4 = connect()
        t.check("trial %d: three greeted, the fourth gets 421" % trial,
                ok and c4.greeting_reply.code == 421, (c4.greeting_reply, owners))
        refused_by.add(handler_of(c4))
        c4.close()
        release(held)
        wait_no_sessions()   # nothing is held now: the next trial starts from 0
        if split >= 2 and refused_by == set(w.values()):
            break
    t.check("the three were spread over both workers in some trials", split >= 2, split)
    t.check("both workers refused a fourth", refused_by == set(w.values()), (refused_by, w))

with t.case("SIGKILL of a worker: logged, restarted, its counts released"):
    w = workers_now()
    victim_no, victim = 1, w[1]
    held, others = [], []
    for _ in range(40):
        if len(held) == 3:
            break
        c = connect()
        if c.greeting_reply.code != 220:
            c.close()
            release(others)
            others = []
            continue
        (held if handler_of(c) == victim else others).append(c)
        if len(held) + len(others) == 3 and len(held) < 3:
            release(others)
            others = []
    t.check("three connections held by worker %d" % victim_no, len(held) == 3, len(held))
    bs.mark()
    os.kill(victim, signal.SIGKILL)
    t.check("the kill is logged with the count released",
            bs.wait_log(r"worker %d \(pid %d\) killed by signal 9 .*6 per-IP/per-network count\(s\) released; "
                        r"restarting" % (victim_no, victim), 3), bs.log(True))
    t.check("the worker is restarted", bs.wait_log(r"worker %d started \(pid \d+\)" % victim_no, 4),
            bs.log(True))
    t.check("and listens again", wait_listening(), bs.log(True))
    for c in held:
        c.close()
    w2 = workers_now()
    t.check("a new pid for worker %d, the other unchanged" % victim_no,
            w2[victim_no] != victim and w2[0] == w[0], (w, w2))
    fresh = [connect() for _ in range(3)]
    t.check("three new connections are greeted (the dead worker's counts went with it)",
            [c.greeting_reply.code for c in fresh] == [220, 220, 220],
            [c.greeting_reply for c in fresh])
    c4 = connect()
    t.check("the limit still holds: the fourth gets 421", c4.greeting_reply.code == 421, c4.greeting_reply)
    c4.close()
    release(fresh)
    seen = set()
    for i in range(40):
        c = connect_greeted()
        seen.add(handler_of(c))
        quit_and_close(c)
        if seen == set(w2.values()):
            break
    t.check("both workers (the restarted one too) take connections", seen == set(w2.values()), (seen, w2))

with t.case("SIGHUP reaches both workers"):
    w = workers_now()
    bs.sections["server"]["banner"] = "second banner"
    bs.write_config()
    bs.mark()
    bs.signal(signal.SIGHUP)
    reloads = bs.wait_log(r"backstop\[(\d+)\]: reload: configuration .* loaded", 3, count=2)
    t.check("both workers reload", {int(m.group(1)) for m in reloads} == set(w.values()), bs.log(True))
    banners = {}
    for i in range(40):
        c = connect_greeted()
        banners.setdefault(handler_of(c), set()).add(c.greeting_reply.text.split(" ", 1)[1])
        quit_and_close(c)
        if set(banners) == set(w.values()):
            break
    t.check("both workers answer with the new banner",
            set(banners) == set(w.values()) and all(b == {"second banner"} for b in banners.values()),
            banners)
    # a worker restarted after the reload loads the file, not the master's copy
    bs.mark()
    os.kill(w[0], signal.SIGKILL)
    t.check("worker 0 restarted", wait_listening(), bs.log(True))
    w2 = workers_now()
    banners = {}
    for i in range(40):
        c = connect_greeted()
        banners.setdefault(handler_of(c), set()).add(c.greeting_reply.text.split(" ", 1)[1])
        quit_and_close(c)
        if w2[0] in banners:
            break
    t.check("the restarted worker answers with the reloaded banner", banners.get(w2[0]) == {"second banner"},
            (banners, w2))

with t.case("a stray SIGUSR1 (the master's ready signal) does not stop a worker"):
    w = workers_now()
    bs.mark()
    os.kill(w[1], signal.SIGUSR1)
    time.sleep(0.3)
    t.check("worker 1 still runs", os.path.exists("/proc/%d" % w[1]) and
            "Z" not in open("/proc/%d/stat" % w[1]).read().split(")")[1].split()[0])
    t.check("no worker restarted", not re.search(r"worker \d+ started", bs.log(True)), bs.log(True))

with t.case("/metrics adds up both workers"):
    w = workers_now()
    accepted = len(re.findall(r": connect from \[", bs.log()))
    m = scrape()
    t.check("backstop_connections_total is every worker's connections (%d)" % accepted,
            m.get("backstop_connections_total") == accepted, m.get("backstop_connections_total"))
    # one open session on each worker: the gauge adds up too
    wait_no_sessions()
    held, owners = [], set()
    for _ in range(40):
        c = connect_greeted()
        o = handler_of(c)
        if o in owners:
            quit_and_close(c)
            continue
        owners.add(o)
        held.append(c)
        if owners == set(w.values()):
            break
    # the gauges a worker publishes twice a second; sessions still closing
    two = poll(lambda: scrape().get("backstop_connections") == 2, 5, 0.2)
    m = scrape()
    t.check("backstop_connections counts the session open on each worker",
            two and m.get("backstop_connections") == 2, (m.get("backstop_connections"), owners))
    t.check("the relayed messages of both workers", m.get("backstop_messages_relayed_total") == 6,
            m.get("backstop_messages_relayed_total"))
    release(held)

with t.case("SIGTERM: every worker stops, the master exits 0"):
    w = workers_now()
    bs.signal(signal.SIGTERM)
    rc = bs.wait_exit(8)
    t.check("the master exits 0", rc == 0, (rc, bs.log()[-2000:]))
    gone = poll(lambda: not any(os.path.exists("/proc/%d" % p) for p in w.values()), 3)
    t.check("both workers are gone", gone, w)
    t.check("each worker logged its stop", len(re.findall(r"worker \d \(pid \d+\) stopped", bs.log())) == 2,
            bs.log()[-2000:])
    bs.check_sanitizers()

with t.case("systemd: READY=1 from the master once both workers listen, all as [server] user"):
    nobody = pwd.getpwnam("nobody")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    t.defer(notify.close)
    path = os.path.join(t.tmpdir("notify"), "notify.sock")
    notify.bind(path)
    os.chmod(path, 0o777)
    notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    messages = []

    def next_message(timeout):
        """(the KEY=value lines as a dict, the sender's pid and uid), or None"""
        notify.settimeout(timeout)
        try:
            data, anc, _, _ = notify.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return None
        pid = uid = None
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, uid, _ = struct.unpack("iII", value[:12])
        m = (dict(l.partition("=")[::2] for l in data.decode().split("\n") if l), pid, uid)
        messages.append(m)
        return m

    sd = t.backstop({"backend": {"address": sink.address},
                     "server": {"workers": "2", "user": "nobody"}}, start=False)
    os.environ["NOTIFY_SOCKET"] = path
    try:
        sd.start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    m = next_message(10)
    t.check("READY=1 first, from the master as nobody",
            m is not None and m[0] == {"READY": "1"} and m[1:] == (sd.pid, nobody.pw_uid), (m, sd.pid))
    t.check("both workers listened by then", "2 workers listening" in sd.log(), sd.log())
    pids = [int(p) for p in re.findall(r"worker \d started \(pid (\d+)\)", sd.log())]

    def uid_of(pid):
        with open("/proc/%d/status" % pid) as f:
            return int(re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1))
    t.check("the workers run as nobody", len(pids) == 2 and all(uid_of(p) == nobody.pw_uid for p in pids),
            pids)
    sd.signal(signal.SIGHUP)
    m1, m2 = next_message(5), next_message(5)
    t.check("SIGHUP: RELOADING=1 then READY=1, from the master",
            m1 and m1[0].get("RELOADING") == "1" and m2 and m2[0] == {"READY": "1"} and
            m1[1] == m2[1] == sd.pid, (m1, m2))
    t.check("both workers reloaded", len(sd.wait_log(r"reload: configuration .* loaded", 3, count=2)) == 2,
            sd.log())
    sd.signal(signal.SIGTERM)
    m = next_message(5)
    t.check("SIGTERM: STOPPING=1 from the master", m and m[0] == {"STOPPING": "1"} and m[1] == sd.pid, m)
    t.check("the master exits 0", sd.wait_exit(8) == 0, sd.log()[-2000:])
    t.check("nothing from the workers", next_message(0.3) is None and
            all(pid == sd.pid for _, pid, _ in messages), messages)

with t.case("a worker that keeps dying is given up after 10 restarts; the other serves"):
    gu = t.backstop({"backend": {"address": sink.address}, "server": {"workers": "2"}})
    t.check("listening", len(gu.wait_log(r"2 workers listening", 5)) == 1, gu.log())
    for n in range(11):
        pid = int(re.findall(r"worker 1 started \(pid (\d+)\)", gu.log())[-1])
        # wait until it runs its loop: killed earlier, it would count as a start-up failure
        poll(lambda: re.search(r"backstop\[%d\]: backstop .* started" % pid, gu.log()), 3)
        os.kill(pid, signal.SIGKILL)
        if n < 10:
            t.check("restart %d" % (n + 1),
                    len(gu.wait_log(r"worker 1 started", 3, count=n + 2)) == n + 2, gu.log()[-1500:])
    t.check("given up, and said why",
            gu.wait_log(r"worker 1: 10 restarts within a minute; giving up on it", 3), gu.log()[-1500:])
    ok = 0
    for i in range(20):
        try:
            c = SmtpClient(gu.host, gu.port, 3)
            ok += c.greeting().code == 220
            c.close()
        except (OSError, Closed):
            pass
    t.check("every new connection is served by worker 0 (the dead one's socket is closed)", ok == 20, ok)
    gu.stop()

with t.case("-t refuses workers > 1 with [outbound] listen (the sentlog is per process)"):
    kdir = t.tmpdir("keys")
    keys = os.path.join(kdir, "batv.keys")
    with open(keys, "wb") as f:
        f.write(b"1 sig-one-secret-0123456789\n")
    os.chmod(keys, 0o600)
    conf = os.path.join(kdir, "outbound.ini")
    sections = {k: dict(v) for k, v in bs.sections.items()}
    sections["outbound"] = {"listen": "127.0.0.1:%d" % free_port(), "relay": sink.address}
    sections["batv"] = {"domains": "test.example", "keys_file": keys, "sign_key": "1"}
    with open(conf, "w") as f:
        f.write(ini_text(sections))
    rc, out = t.run_backstop(["-t", "-c", conf])
    t.check("exit 1, naming the fix", rc == 1 and "set [server] workers = 1" in out, (rc, out))
    sections["server"]["workers"] = "1"
    with open(conf, "w") as f:
        f.write(ini_text(sections))
    rc, out = t.run_backstop(["-t", "-c", conf])
    t.check("workers = 1 with [outbound] listen is fine", rc == 0, (rc, out))

t.done()

#!/usr/bin/python3
"""pool_haproxy: a pool as deployed (issue 12). A real HAProxy (TCP mode,
send-proxy-v2, option smtpchk, round robin, redispatch on retries) in front
of three backstop instances (proxy_protocol = on, [limits] store in one
Redis) relaying to one real Postfix. Clients are threads with a small
raw-socket SMTP client (unlike smtplib it tells whether the connection died
before or after the end of DATA was sent) on loopback addresses (127.x.y.z,
the address in HAProxy's PROXY header), each message with its own
Message-ID, each outcome recorded; smtp-source adds background load from
127.0.0.1 (not counted: its messages carry no identity of their own).

  A  one client over msg_rate_per_ip, its connections spread over the
     three instances: limited across the pool (the count is Redis's).
  B  a stream: one instance SIGKILLed mid-stream, another SIGTERMed (it
     drains); HAProxy takes both out by its health checks.
  C  all three again, Redis SIGKILLed mid-stream: local counters, nothing
     refused, nothing lost.

After each phase, against Postfix's Maildirs: every message a client got
250 for at the end of DATA arrived exactly once; nothing arrived that got
no 250, except a "lost ack": the whole message was sent and the connection
died before the reply (SMTP's duplicate window), which is allowed only
across the SIGKILL instant. The accounting is itself checked on a copy of
the Maildir counts with one accepted message removed and one duplicated."""
import re
import signal
import subprocess
import threading
from harness import *
from haproxy import HAProxy

t = Test("pool_haproxy", watchdog=120,
         need=("postfix", "haproxy", "redis-server", "smtp-source"))

RATE_LIMIT = 5          # phase A: msg_rate_per_ip across the pool
STREAM_LIMIT = 10000    # phases B and C: a limit that is checked (in Redis) but never reached
PER_SOURCE = 4          # stream messages per client address (under RATE_LIMIT as well)
THREADS = 6
SENDER = "sender@example.org"
RCPT = "user@%s" % DOMAIN
LOAD_SUBJECT = "pool background load"

pf = t.postfix()

# ------------------------------------------------------------------ Redis

rport = free_port()
rdir = t.tmpdir("redis")
redis = {"proc": None}


def redis_cmd(*words):
    """One command in RESP; the reply's first line (None: no answer)."""
    try:
        s = socket.create_connection(("127.0.0.1", rport), timeout=1)
    except OSError:
        return None
    try:
        s.sendall(("*%d\r\n" % len(words) + "".join(
            "$%d\r\n%s\r\n" % (len(w), w) for w in words)).encode())
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        lines = data.decode(errors="replace").split("\r\n")
        if lines[0].startswith("$") and lines[0] != "$-1":
            while len(lines) < 3:      # a bulk string: its value
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
                lines = data.decode(errors="replace").split("\r\n")
            return lines[1] if len(lines) > 1 else None
        return lines[0] or None
    except OSError:
        return None
    finally:
        s.close()


def redis_start():
    redis["proc"] = subprocess.Popen(
        ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", rdir, "--daemonize", "no",
         "--logfile", os.path.join(rdir, "redis.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not poll(lambda: redis_cmd("PING") == "+PONG", 5):
        t.error("redis-server did not answer PING")


def redis_kill():
    p = redis["proc"]
    if p is not None and p.poll() is None:
        p.kill()
        p.wait()
    redis["proc"] = None


t.defer(redis_kill)
redis_start()

# ------------------------------------------------------------------ backstop x 3


def limits(msg_rate):
    return {"store": "redis://127.0.0.1:%d" % rport, "redis_timeout": "50ms",
            "rate_window": "60s", "msg_rate_per_ip": str(msg_rate),
            "max_connections_per_ip": "200"}


pool = []
for i in range(3):
    pool.append(t.backstop({
        "backend": {"address": pf.address},
        "server": {"proxy_protocol": "on", "proxy_trusted": "127.0.0.1/32",
                   "proxy_timeout": "2s", "drain_time": "3s"},
        "limits": limits(RATE_LIMIT),
        # debug: "limits: redis ... connected"
        "log": {"level": "debug"}}))
poll(lambda: all(re.search(r"limits: redis \S+ connected", b.log()) for b in pool), 5)

# ------------------------------------------------------------------ HAProxy


class PoolHAProxy(HAProxy):
    """haproxy -db: one frontend on 127.0.0.1, one backend with the three
    instances (send-proxy-v2, smtpchk every 300 ms, down after 2 failures,
    up after 2 successes), a stats socket to read the servers' states."""

    def __init__(self, servers):
        HAProxy.__init__(self, t, "haproxy")
        self.sock = os.path.join(self.dir, "stats.sock")
        self.port = free_port()
        text = HAProxy.tcp_defaults("1s", ["stats socket %s mode 600 level admin" % self.sock]) + [
                # a connection refused by a dead instance is tried again,
                # each time on another server
                "    retries 3",
                "    option redispatch 1",
                "frontend smtp",
                "    bind 127.0.0.1:%d" % self.port,
                "    default_backend pool",
                "backend pool",
                "    balance roundrobin",
                "    option smtpchk EHLO haproxy.test.example",
                "    default-server send-proxy-v2 check inter 300ms fall 2 rise 2"]
        text += ["    server %s 127.0.0.1:%d" % (name, port) for name, port in servers]
        self.start(text)
        if not poll(lambda: os.path.exists(self.sock) and self.states(), 5):
            t.error("haproxy did not start:\n%s" % self.log())

    def states(self):
        """{server: status} from `show stat` on the stats socket."""
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(2)
            s.connect(self.sock)
            s.sendall(b"show stat\n")
            data = recv_all(s)
            s.close()
        except OSError:
            return {}
        lines = data.decode(errors="replace").splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        cols = lines[0][2:].split(",")
        out = {}
        for l in lines[1:]:
            row = dict(zip(cols, l.split(",")))
            if row.get("pxname") == "pool" and row.get("svname") not in ("BACKEND", None):
                out[row["svname"]] = row.get("status", "")
        return out

    def wait_states(self, want, timeout):
        return poll(lambda: all(self.states().get(k, "").startswith(v) for k, v in want.items()),
                    timeout, 0.1)


names = ["bs1", "bs2", "bs3"]
hap = PoolHAProxy([(n, b.port) for n, b in zip(names, pool)])
log("# HAProxy on 127.0.0.1:%d -> %s" % (hap.port, ", ".join(
    "%s 127.0.0.1:%d" % (n, b.port) for n, b in zip(names, pool))))
if not hap.wait_states({n: "UP" for n in names}, 5):
    t.error("HAProxy does not see the three instances UP: %s\n%s" % (hap.states(), hap.log()))

# ------------------------------------------------------------------ clients and the ledger

ledger = []             # one dict per message attempt
ledger_lock = threading.Lock()
serial = [0]


class SessionDied(Exception):
    pass


class Client:
    """A minimal SMTP client (one connection) that knows at which step it
    lost the connection: before the end of DATA was sent, or after (the
    reply lost: the message may have arrived)."""

    def __init__(self, source):
        self.sock = socket.create_connection(("127.0.0.1", hap.port), timeout=10,
                                             source_address=(source, 0))
        self.buf = b""

    def reply(self):
        while True:
            m = re.search(rb"(?m)^(\d{3}) .*\r?\n", self.buf)
            if m:
                r, self.buf = self.buf[:m.end()], self.buf[m.end():]
                return int(m.group(1)), r.decode(errors="replace").strip()
            try:
                chunk = self.sock.recv(65536)
            except OSError as e:
                raise SessionDied(str(e))
            if not chunk:
                raise SessionDied("connection closed")
            self.buf += chunk

    def cmd(self, line):
        try:
            self.sock.sendall(line.encode() + b"\r\n")
        except OSError as e:
            raise SessionDied(str(e))
        return self.reply()

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.sendall(b"QUIT\r\n")
        with contextlib.suppress(OSError):
            self.sock.close()


def new_record(phase, source):
    with ledger_lock:
        serial[0] += 1
        n = serial[0]
    rec = {"mid": "<pool.%s.%d.%d@example.org>" % (phase, n, random.randint(0, 1 << 30)),
           "phase": phase, "src": source, "t0": time.monotonic(), "t_dot": None,
           "t1": None, "outcome": None, "detail": ""}
    with ledger_lock:
        ledger.append(rec)
    return rec


def send_message(c, rec):
    """One transaction on c; the outcome in rec: accepted (250 at the end of
    DATA), refused (a reply other than the one expected, at any step),
    died (connection lost before the end of DATA was sent) or in-doubt
    (lost after it). Returns False when the session cannot go on."""
    def done(outcome, detail):
        rec["outcome"], rec["detail"], rec["t1"] = outcome, detail, time.monotonic()
    try:
        for line, want in (("MAIL FROM:<%s>" % SENDER, 250), ("RCPT TO:<%s>" % RCPT, 250),
                           ("DATA", 354)):
            code, text = c.cmd(line)
            if code != want:
                done("refused", "%s: %s" % (line.split(" ")[0], text))
                with contextlib.suppress(SessionDied):
                    c.cmd("RSET")
                return code < 421 or code >= 500
        body = ("From: <%s>\r\nTo: <%s>\r\nSubject: pool %s\r\n"
                "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\nMessage-ID: %s\r\n\r\n"
                "Message %s from %s.\r\n" % (SENDER, RCPT, rec["mid"], rec["mid"], rec["mid"],
                                              rec["src"])).encode()
        try:
            c.sock.sendall(dot_stuff(body) + b".\r\n")
        except OSError as e:
            done("died", "sending the message: %s" % e)
            return False
        rec["t_dot"] = time.monotonic()
        try:
            code, text = c.reply()
        except SessionDied as e:
            done("in-doubt", "after the end of DATA: %s" % e)
            return False
        done("accepted" if code == 250 else "refused", text)
        return True
    except SessionDied as e:
        if rec["outcome"] is None:
            done("died", str(e))
        return False


def client_session(phase, source, count):
    """One connection from source, up to count messages; False when the
    connection could not be made."""
    try:
        c = Client(source)
    except OSError:
        return False
    try:
        code, _ = c.reply()
    except SessionDied as e:
        rec = new_record(phase, source)
        rec.update(outcome="died", detail="no greeting: %s" % e, t1=time.monotonic())
        c.close()
        return True
    if code == 220 and c.cmd("EHLO %s" % CLIENT_HELO)[0] == 250:
        for _ in range(count):
            if not send_message(c, new_record(phase, source)):
                break
    c.close()
    return True


class Stream:
    """THREADS client threads, each from its own run of loopback addresses
    (127.<phase>.<thread>.<n>, a new one every PER_SOURCE messages), two
    messages per connection, until stop(); plus smtp-source from 127.0.0.1
    started again whenever it ends (it gives up at a broken connection)."""

    def __init__(self, phase, phase_octet):
        self.phase = phase
        self.octet = phase_octet
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(THREADS)]
        self.threads.append(threading.Thread(target=self.load, daemon=True))
        self.load_runs = self.load_failed_runs = 0
        for th in self.threads:
            th.start()

    def run(self, i):
        per_session = 2
        sessions = 0
        while not self.halt.is_set():
            k = sessions * per_session // PER_SOURCE
            source = "127.%d.%d.%d" % (self.octet, 10 * (k // 250) + i + 1, k % 250 + 1)
            sessions += 1
            if not client_session(self.phase, source, per_session):
                time.sleep(0.05)

    def load(self):
        while not self.halt.is_set():
            r = subprocess.run(["smtp-source", "-s", "2", "-m", "20", "-l", "1024",
                                "-M", CLIENT_HELO, "-f", "load@example.org", "-t", RCPT,
                                "-S", LOAD_SUBJECT, "127.0.0.1:%d" % hap.port],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            self.load_runs += 1
            self.load_failed_runs += r.returncode != 0

    def stop(self):
        self.halt.set()
        for th in self.threads:
            th.join(40)


# ------------------------------------------------------------------ accounting


def arrivals():
    """{Message-ID: times delivered} over Postfix's Maildirs, and the number
    of smtp-source messages."""
    counts, load = {}, 0
    for p in glob.glob(os.path.join(pf.T, "mail", "*", "new", "*")):
        with open(p, "rb") as f:
            head = f.read().split(b"\n\n", 1)[0].decode(errors="replace")
        m = re.search(r"(?mi)^Message-ID:\s*(<pool\.[^>]*>)", head)
        if m:
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
        elif re.search(r"(?m)^Subject: %s" % re.escape(LOAD_SUBJECT), head):
            load += 1
    return counts, load


def settle(expect_ids):
    """Wait until Postfix has delivered what it accepted (its queue empty and
    every accepted message there, at most 10 s)."""
    def ready():
        counts, _ = arrivals()
        return all(m in counts for m in expect_ids) and pf._queue_empty()
    poll(ready, 10, 0.2)
    time.sleep(0.3)
    return arrivals()


def account(records, counts, kill_at=None):
    """The invariants over one phase's records and the Maildir counts:
    figures and a list of violations (empty: all held)."""
    fig = dict(sent=len(records), accepted=0, refused=0, died=0, in_doubt=0, arrived=0,
               duplicates=0, missing=0, lost_acks=0, unexplained=0)
    bad = []
    mine = set()
    for r in records:
        mine.add(r["mid"])
        n = counts.get(r["mid"], 0)
        fig["arrived"] += n > 0
        fig[r["outcome"].replace("-", "_")] += 1
        if r["outcome"] == "accepted":
            if n == 0:
                fig["missing"] += 1
                bad.append("250 but never arrived: %s (%s)" % (r["mid"], r["src"]))
            elif n > 1:
                fig["duplicates"] += 1
                bad.append("250 and arrived %d times: %s" % (n, r["mid"]))
        elif n > 0:
            # the backend took it, the client never heard: possible only if
            # the whole message was sent and the connection died while the
            # reply was on its way, across the SIGKILL
            across_kill = (r["outcome"] == "in-doubt" and kill_at is not None
                           and r["t_dot"] <= kill_at + 0.05 and r["t1"] >= kill_at)
            if across_kill:
                fig["lost_acks"] += 1
                log("# lost ack: %s from %s: end of DATA sent %.0f ms before the SIGKILL, "
                    "connection lost %.0f ms after it (%s)" % (
                        r["mid"], r["src"], 1000 * (kill_at - r["t_dot"]),
                        1000 * (r["t1"] - kill_at), r["detail"]))
            else:
                fig["unexplained"] += 1
                bad.append("arrived %d time(s) without a 250 (%s: %s) %s" % (
                    n, r["outcome"], r["detail"], r["mid"]))
            if n > 1:
                fig["duplicates"] += 1
                bad.append("arrived %d times: %s" % (n, r["mid"]))
    return fig, bad


def phase_records(phase):
    with ledger_lock:
        return [r for r in ledger if r["phase"] == phase]


def report(phase, fig, load=None):
    log("# figures %s: sent %d, 250 %d, refused %d, died before end of DATA %d, in doubt %d, "
        "arrived %d, duplicates %d, missing %d, lost acks %d, unexplained %d%s" % (
            phase, fig["sent"], fig["accepted"], fig["refused"], fig["died"], fig["in_doubt"],
            fig["arrived"], fig["duplicates"], fig["missing"], fig["lost_acks"],
            fig["unexplained"], "" if load is None else "; smtp-source: %s" % load))


def check_invariants(phase, fig, bad):
    t.check("%s: every 250 arrived exactly once, nothing arrived without one "
            "(beyond lost acks across the SIGKILL)" % phase, not bad, "\n".join(bad[:20]))


def served_by(source):
    """Per instance: connections from source in its log."""
    rx = r"connect from \[%s\]:\d+ to \S+ via proxy" % re.escape(source)
    return [len(re.findall(rx, b.log())) for b in pool]


# ------------------------------------------------------------------ A: the limit across the pool

with t.case("A: a client over msg_rate_per_ip = %d is limited across the pool" % RATE_LIMIT):
    src = "127.0.0.99"
    for _ in range(3 * RATE_LIMIT):
        client_session("A", src, 1)
    recs = phase_records("A")
    counts, _ = settle([r["mid"] for r in recs if r["outcome"] == "accepted"])
    fig, bad = account(recs, counts)
    report("A", fig)
    per = served_by(src)
    log("# A: connections per instance %s" % per)
    t.check("A: its %d connections reached all three instances" % len(recs),
            all(n > 0 for n in per), per)
    t.check("A: exactly %d of %d accepted across the pool (each instance alone would take %d)" % (
        RATE_LIMIT, len(recs), RATE_LIMIT), fig["accepted"] == RATE_LIMIT, fig)
    refused = [r for r in recs if r["outcome"] == "refused"]
    t.check("A: the others refused at MAIL with 451 4.7.1 naming msg_rate_per_ip",
            len(refused) == len(recs) - RATE_LIMIT and all(
                r["detail"].startswith("MAIL: 451 4.7.1") and "msg_rate_per_ip" in r["detail"]
                for r in refused), [r["detail"] for r in refused][:3])
    t.check("A: the count is Redis's (%d)" % len(recs),
            redis_cmd("GET", "backstop:rl:60000:msg:ip:%s" % src) == str(len(recs)),
            redis_cmd("GET", "backstop:rl:60000:msg:ip:%s" % src))
    t.check("A: no instance fell back to local counters",
            not any("local counters" in b.log() for b in pool))
    check_invariants("A", fig, bad)

    # the accounting itself: an accepted message removed from the Maildir
    # counts (one backstop said 250 and relayed nothing) and another
    # duplicated must both be caught
    accepted = [r["mid"] for r in recs if r["outcome"] == "accepted"]
    if len(accepted) >= 2:
        forged = dict(counts)
        del forged[accepted[0]]
        forged[accepted[1]] = 2
        f2, bad2 = account(recs, forged)
        t.check("A: the accounting catches a missing and a duplicated message",
                f2["missing"] == 1 and f2["duplicates"] == 1 and len(bad2) == 2, bad2)
        refused_mid = refused[0]["mid"] if refused else None
        if refused_mid:
            forged = dict(counts)
            forged[refused_mid] = 1
            f3, bad3 = account(recs, forged)
            t.check("A: ... and a refused message that arrived", f3["unexplained"] == 1, bad3)

# from here on a limit that the stream never reaches, still counted in Redis
for b in pool:
    b.sections["limits"] = limits(STREAM_LIMIT)
    b.write_config()
    b.mark()
    b.signal(signal.SIGHUP)
for b in pool:
    t.check("reloaded with msg_rate_per_ip = %d" % STREAM_LIMIT,
            b.wait_log(r"reload: configuration \S+ loaded", 5), b.log(True)[-1000:])

# ------------------------------------------------------------------ B: SIGKILL and SIGTERM mid-stream

with t.case("B: a stream; one instance SIGKILLed, another SIGTERMed"):
    killed, drained = pool[0], pool[1]
    stream = Stream("B", 1)
    time.sleep(2.0)
    kill_at = time.monotonic()
    killed.kill()
    log("# B: SIGKILL bs1 at %.1f s" % 2.0)
    time.sleep(2.0)
    log("# B: SIGTERM bs2")
    drained.signal(signal.SIGTERM)
    rc = drained.wait_exit(10)
    t.check("B: the SIGTERMed instance drained and exited 0", rc == 0, drained.log()[-1500:])
    t.check("B: HAProxy took both out (health checks: DOWN)",
            hap.wait_states({"bs1": "DOWN", "bs2": "DOWN", "bs3": "UP"}, 5), hap.states())
    t_after = time.monotonic()
    time.sleep(1.5)
    stream.stop()
    recs = phase_records("B")
    counts, load = settle([r["mid"] for r in recs if r["outcome"] == "accepted"])
    fig, bad = account(recs, counts, kill_at)
    report("B", fig, "%d runs (%d ended by an error), %d messages arrived" % (
        stream.load_runs, stream.load_failed_runs, load))
    t.check("B: the stream ran (at least 30 messages accepted)", fig["accepted"] >= 30, fig)
    t.check("B: mail accepted after both were gone (bs3 alone)",
            any(r["outcome"] == "accepted" and r["t0"] > t_after for r in recs))
    # a session that is between transactions at the drain gets 421; the
    # rate limit is never reached
    t.check("B: nothing refused but with 421 at the drain",
            all(re.match(r"\w+: 421 ", r["detail"]) for r in recs if r["outcome"] == "refused"),
            [r["detail"] for r in recs if r["outcome"] == "refused"][:5])
    t.check("B: smtp-source's load arrived too", load > 0, load)
    check_invariants("B", fig, bad)
    # the invariant must hold at the drain: lost acks only across the SIGKILL
    t.check("B: no lost ack other than across the SIGKILL", fig["unexplained"] == 0, fig)
    if drained.running() is False:
        drained.logf.close()
        drained.proc = None
    t.check("no sanitizer report in the SIGKILLed or SIGTERMed instance's log",
            sanitizer_report(killed.log() + drained.log()) is None)

# both back, on the same ports: HAProxy's checks bring them up again
for b in (pool[0], pool[1]):
    if not b.running():
        b.mark()
        b.start()
if not hap.wait_states({n: "UP" for n in names}, 8):
    t.error("HAProxy does not see the restarted instances UP: %s" % hap.states())
poll(lambda: all(b.count_log(r"limits: redis \S+ connected") for b in pool[:2]), 5)

# ------------------------------------------------------------------ C: Redis killed mid-stream

with t.case("C: a stream; Redis SIGKILLed mid-stream: nothing refused, nothing lost"):
    for b in pool:
        b.mark()
    stream = Stream("C", 2)
    time.sleep(1.5)
    redis_kill()
    redis_gone = time.monotonic()
    log("# C: SIGKILL redis-server")
    time.sleep(3.0)
    stream.stop()
    recs = phase_records("C")
    counts, load = settle([r["mid"] for r in recs if r["outcome"] == "accepted"])
    fig, bad = account(recs, counts)
    report("C", fig, "%d runs (%d ended by an error), %d messages arrived in all" % (
        stream.load_runs, stream.load_failed_runs, load))
    t.check("C: the stream ran (at least 30 messages accepted)", fig["accepted"] >= 30, fig)
    t.check("C: every message accepted (nothing refused, no connection lost)",
            fig["accepted"] == fig["sent"],
            [(r["outcome"], r["detail"]) for r in recs if r["outcome"] != "accepted"][:5])
    t.check("C: the instances noticed and counted locally",
            sum(b.count_log(r"redis unavailable, using local counters") for b in pool) >= 1,
            [b.log(True)[-800:] for b in pool])
    t.check("C: mail accepted after Redis was gone",
            any(r["outcome"] == "accepted" and r["t0"] > redis_gone + 0.5 for r in recs))
    check_invariants("C", fig, bad)
    t.check("C: no lost ack (nothing killed but Redis)", fig["lost_acks"] + fig["unexplained"] == 0,
            fig)

with t.case("nothing arrived that no client sent"):
    counts, _ = arrivals()
    sent = {r["mid"] for r in ledger}
    stray = [m for m in counts if m not in sent]
    t.check("every delivered test message is in the ledger", not stray, stray[:5])

for b in pool:
    b.stop()
t.done()

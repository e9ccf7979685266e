#!/usr/bin/python3
"""metrics: [metrics] listen serves /metrics and /health.

The counters match exactly what the test did (messages and bytes relayed,
transactions, a HELO check's refusals, size refusals at MAIL and at end of
data, a too-long command line, a per-IP connection refusal, backend
connects); /health is 200, then 503 once the backend's last
backend_failures connections failed before ready (refused, or accepted
but never greeted, or greeted 421), 200 again when one gets ready or,
without traffic, when a re-probe gets an answer; 503 from the start when
the start-up probe fails; 503 while draining after SIGTERM. Hostile scrapers (slowloris, a 1 MB head,
garbage, one that never reads, 100 at once) get bounded answers or are
closed, while mail goes on at its normal pace; idle connections at the cap make
room for a scraper (the oldest is closed), a head gets 1 s, and a
connection refused for too many reads its 503 whole. A bad listen address, one
shared with [server] listen, and a port in use are configuration errors
that say what to fix."""
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from harness import *

t = Test("metrics", watchdog=150, need=("smtp-sink", "ip", "openssl"))
sink = t.sink()
MPORT = free_port()


def http(path, method="GET", port=None, timeout=5.0, raw=None):
    """(status, headers text, body) of one request, or (None, '', error)."""
    return http_get(port or MPORT, path, method=method, raw=raw, timeout=timeout)


def scrape(port=None):
    st, _, body = http("/metrics", port=port)
    if st != 200:
        raise RuntimeError("scrape: %s %s" % (st, body[:200]))
    out = {}
    for line in body.splitlines():
        if line.startswith("#") or not line:
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def relay(c, subject, body="Hello.\n"):
    """One message through session c; returns its size as backstop counts
    it (content bytes, unstuffed, CRLF as 2) and the end-of-data reply."""
    msg = make_message(subject, body=body)
    rs = c.mail_transaction("sender@example.org", ["user@test.example"], msg)
    return len(dot_stuff(msg)), rs[-1]


def send_timed(bs, subject):
    """One session, one message: (seconds, final reply code)."""
    t0 = time.monotonic()
    c = bs.client()
    c.ehlo()
    _, r = relay(c, subject)
    c.cmd("QUIT")
    c.close()
    return time.monotonic() - t0, r.code


bs = t.backstop({"backend": {"address": sink.address, "connect_timeout": "1s"},
                 # "/health is 503 while draining" looks at it while a session is open
                 "server": {"drain_time": "5s"},
                 "metrics": {"listen": "127.0.0.1:%d" % MPORT, "backend_failures": "2"},
                 "helo": {"reject_invalid": "yes", "reject_own_name": "yes"},
                 "limits": {"max_message_size": "4k", "max_connections_per_ip": "4"}})

with t.case("endpoint basics"):
    st, head, body = http("/health")
    t.check("/health: 200 ok", st == 200 and body == "ok\n", (st, body))
    t.check("every answer says Connection: close", "Connection: close" in head, head)
    st, head, body = http("/metrics")
    t.check("/metrics: 200, Prometheus text 0.0.4",
            st == 200 and "text/plain; version=0.0.4" in head, head)
    t.check("HELP and TYPE lines, counters end in _total",
            "# HELP backstop_messages_relayed_total" in body and
            "# TYPE backstop_messages_relayed_total counter" in body and
            not re.search(r"# TYPE \S+(?<!_total) counter", body), body[:400])
    st, head, body = http("/metrics", method="HEAD")
    t.check("HEAD /metrics: 200 without a body", st == 200 and body == "", (st, len(body)))
    st, _, _ = http("/nope")
    t.check("unknown path: 404", st == 404, st)
    st, head, _ = http("/metrics", method="POST")
    t.check("POST: 405 with Allow", st == 405 and "Allow: GET, HEAD" in head, (st, head))
    st, _, _ = http(None, raw=b"GET /metrics\r\n\r\n")
    t.check("HTTP/0.9-style request: 400", st == 400, st)
    st, _, _ = http("/metrics?x=1")
    t.check("a query string is ignored", st == 200, st)
    # a client that half-closes after its request still gets the answer
    s = socket.create_connection(("127.0.0.1", MPORT), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"Content-Length: (\d+)", head)
    t.check("half-closed client: the whole answer", data.startswith(b"HTTP/1.1 200") and m and
            int(m.group(1)) == len(body), data[:100])

with t.case("counters match what was done"):
    before = scrape()
    sizes = []
    c = bs.client()
    t.check_reply("EHLO", c.ehlo(), 250)
    for i in range(3):
        n, r = relay(c, "metrics %d" % i, body="line %d\n" % i * (i + 1))
        t.check_reply("message %d relayed" % i, r, 250)
        sizes.append(n)
    # a too-long command line: 500 5.5.2 (protocol)
    t.check_reply("over-long line: 500", c.cmd("NOOP " + "x" * 3000), 500, "5.5.2")
    # SIZE over max_message_size at MAIL: 552 5.3.4 (size), a transaction
    t.check_reply("SIZE too big: 552", c.cmd("MAIL FROM:<a@example.org> SIZE=100000"), 552)
    # a message over the limit at end of data: 552 (size), a transaction
    big = make_message("too big", body=("y" * 70 + "\n") * 80)
    rs = c.mail_transaction("sender@example.org", ["user@test.example"], big)
    t.check_reply("message over max_message_size: 552 at end of data", rs[-1], 552, "5.3.4")
    c.cmd("QUIT")
    c.close()
    # HELO check: an invalid name and our own name (5xx each, check=helo)
    c = bs.client()
    t.check_reply("invalid HELO refused", c.cmd("EHLO not..valid"), 501)
    t.check_reply("our own name refused", c.cmd("EHLO " + BACKSTOP_HOSTNAME), 550)
    c.cmd("QUIT")
    c.close()
    # per-IP limit: 4 held from 127.0.0.9, the 5th is refused
    held = [bs.client(source=("127.0.0.9", 0)) for _ in range(4)]
    c5 = SmtpClient("127.0.0.1", bs.port, 5, source=("127.0.0.9", 0))
    t.defer(c5.close)
    t.check_reply("5th connection from 127.0.0.9: 421", c5.reply(), 421, "4.7.0")
    for h in held:
        h.cmd("QUIT")
        h.close()
    c5.close()
    poll(lambda: scrape()["backstop_connections"] == 0, 5)
    after = scrape()

    def d(name):
        return after.get(name, 0) - before.get(name, 0)
    conns = 1 + 1 + 4 + 1
    t.check("connections_total +%d" % conns, d("backstop_connections_total") == conns,
            d("backstop_connections_total"))
    t.check("connections gauge back to 0", after["backstop_connections"] == 0, after["backstop_connections"])
    t.check("refused by max_connections_per_ip: 1",
            d('backstop_connections_refused_total{reason="max_connections_per_ip"}') == 1)
    t.check("messages_relayed_total +3", d("backstop_messages_relayed_total") == 3,
            d("backstop_messages_relayed_total"))
    t.check("relayed_bytes_total = the messages' sizes (%d)" % sum(sizes),
            d("backstop_relayed_bytes_total") == sum(sizes), d("backstop_relayed_bytes_total"))
    t.check("message_size_bytes_count +3 and _sum the same bytes",
            d("backstop_message_size_bytes_count") == 3 and
            d("backstop_message_size_bytes_sum") == sum(sizes))
    t.check("end_of_data_seconds_count +4 (3 relayed, 1 refused at end of data)",
            d("backstop_end_of_data_seconds_count") == 4, d("backstop_end_of_data_seconds_count"))
    summaries = len(re.findall(r": txn \S+ from ", bs.log()))
    t.check("transactions_total +5, one per summary log line (%d)" % summaries,
            d("backstop_transactions_total") == 5 and after["backstop_transactions_total"] == summaries,
            (d("backstop_transactions_total"), summaries))
    t.check("refusals helo 5xx: 2", d('backstop_refusals_total{check="helo",class="5xx"}') == 2,
            d('backstop_refusals_total{check="helo",class="5xx"}'))
    t.check("refusals size 5xx: 2", d('backstop_refusals_total{check="size",class="5xx"}') == 2,
            d('backstop_refusals_total{check="size",class="5xx"}'))
    t.check("refusals protocol 5xx: 1 (the over-long line)",
            d('backstop_refusals_total{check="protocol",class="5xx"}') == 1,
            d('backstop_refusals_total{check="protocol",class="5xx"}'))
    t.check("refusals limits 4xx: 1 (per-IP)", d('backstop_refusals_total{check="limits",class="4xx"}') == 1,
            d('backstop_refusals_total{check="limits",class="4xx"}'))
    others = sum(v - before.get(k, 0) for k, v in after.items()
                 if k.startswith("backstop_refusals_total") and
                 not re.search(r'check="(helo|size|protocol|limits)"', k))
    t.check("no other refusal counted", others == 0, others)
    t.check("backend_connects: +1 (the one session that relayed reuses its connection)",
            d('backstop_backend_connects_total{target="backend"}') == 1,
            d('backstop_backend_connects_total{target="backend"}'))
    t.check("no backend connect error", d('backstop_backend_connect_errors_total{target="backend"}') == 0)

with t.case("/health follows the backend"):
    sink.stop()
    codes = []
    for i in range(2):
        c = bs.client()
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@example.org>")
        t.check_reply("backend down, MAIL %d: 451 4.4.1" % (i + 1), r, 451, "4.4.1")
        c.cmd("QUIT")
        c.close()
        codes.append(http("/health")[0])
    t.check("after 1 failed connect: still 200; after 2 ([metrics] backend_failures): 503",
            codes == [200, 503], codes)
    st, _, body = http("/health")
    t.check("503 says why", "backend cannot take mail" in body and "connect" in body, body)
    m = scrape()
    t.check("backend connect errors counted: 2",
            m['backstop_backend_connect_errors_total{target="backend"}'] == 2)
    t.check("the refusals count as backend 4xx: 2",
            m['backstop_refusals_total{check="backend",class="4xx"}'] == 2)
    t.check("backstop_healthy 0", m["backstop_healthy"] == 0)
    sink.start()
    c = bs.client()
    c.ehlo()
    _, r = relay(c, "backend back")
    t.check_reply("backend back: relayed", r, 250)
    c.cmd("QUIT")
    c.close()
    t.check("/health: 200 again after a successful connect", http("/health")[0] == 200)

class FakeBackend:
    """A TCP backend whose behaviour the test switches: "smtp" (greets,
    answers EHLO and the rest with 250), "silent" (accepts, never greets:
    Postfix waiting for a PROXY header), "421" (greets 421 and closes),
    "xclient" (offers XCLIENT, refuses it: backstop not authorized)."""

    def __init__(self):
        self.mode = "smtp"
        self.held = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.one, args=(c, self.mode), daemon=True).start()

    def one(self, c, mode):
        try:
            if mode == "silent":
                self.held.append(c)
                return
            if mode == "421":
                c.sendall(b"421 4.3.2 fake: not now\r\n")
                c.close()
                return
            c.sendall(b"220 fake ESMTP\r\n")
            for line in c.makefile("rb"):
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    c.sendall(b"250-fake\r\n%s250 8BITMIME\r\n" %
                              (b"250-XCLIENT NAME ADDR PROTO HELO PORT\r\n" if mode == "xclient" else b""))
                elif verb == b"XCLI" and mode == "xclient":
                    c.sendall(b"550 5.7.0 fake: not authorized\r\n")
                elif verb == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    break
                else:
                    c.sendall(b"250 ok\r\n")
            c.close()
        except OSError:
            pass

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


with t.case("/health: a backend that cannot take mail, and its recovery without traffic"):
    # dead from the start: the start-up probe decides, no client needed
    mport4 = free_port()
    bs4 = t.backstop({"backend": {"address": "127.0.0.1:%d" % dead_port(), "connect_timeout": "1s"},
                      "metrics": {"listen": "127.0.0.1:%d" % mport4}})
    ok = poll(lambda: http("/health", port=mport4)[0] == 503, 3, 0.1)
    st, _, body = http("/health", port=mport4)
    t.check("backend dead from the start: 503 without any client", ok and "probe failed" in body, (st, body))
    bs4.stop()

    fake = FakeBackend()
    t.defer(fake.close)
    mport5 = free_port()
    bs5 = t.backstop({"backend": {"address": fake.address, "connect_timeout": "1s"},
                      "metrics": {"listen": "127.0.0.1:%d" % mport5, "backend_failures": "2"}})
    health5 = lambda: http("/health", port=mport5)
    t.check("a backend that answers: 200", bs5.wait_log("backend probe: EHLO answered", 5) and
            health5()[0] == 200, health5())

    def sessions(n, mode):
        fake.mode = mode
        codes = []
        for i in range(n):
            c = bs5.client()
            c.ehlo()
            codes.append(c.cmd("MAIL FROM:<a%d@example.org>" % i, timeout=10).code)
            c.cmd("QUIT")
            c.close()
        return codes
    codes = sessions(2, "silent")
    t.check("accepted but never greeted: MAIL gets 451", codes == [451, 451], codes)
    st, _, body = health5()
    t.check("after 2 such connections ([metrics] backend_failures = 2): 503 naming the greeting",
            st == 503 and "greeting: timed out" in body, (st, body))
    codes = sessions(1, "smtp")
    t.check("a connection that gets ready: 250, and /health 200 again",
            codes == [250] and health5()[0] == 200, (codes, health5()))
    codes = sessions(2, "421")
    st, _, body = health5()
    t.check("greeted 421 twice: 451 to MAIL, /health 503", codes == [451, 451] and st == 503 and
            "greeting: refused" in body, (codes, st, body))
    # no client from now on: the re-probe (every 10 s) finds it answers
    fake.mode = "smtp"
    t0 = time.monotonic()
    ok = poll(lambda: health5()[0] == 200, 14, 0.2)
    t.check("the backend answers again, no traffic: /health 200 within 10 s + a probe (%.1fs)"
            % (time.monotonic() - t0), ok, health5())
    t.check("the recovery is logged", bs5.wait_log("the backend answers again", 1))
    # past the greeting: XCLIENT refused is a failure too
    codes = sessions(2, "xclient")
    st, _, body = health5()
    t.check("XCLIENT refused twice: 451 to MAIL, /health 503 naming XCLIENT",
            codes == [451, 451] and st == 503 and "XCLIENT: refused" in body, (codes, st, body))
    codes = sessions(1, "smtp")
    t.check("then a connection that gets ready: /health 200", codes == [250] and health5()[0] == 200,
            (codes, health5()))
    bs5.stop()

with t.case("hostile scrapers, mail flows"):
    base = [send_timed(bs, "baseline %d" % i) for i in range(3)]
    t.check("baseline messages relayed", all(code == 250 for _, code in base), base)
    base_max = max(s for s, _ in base)
    socks = []

    def conn():
        s = socket.create_connection(("127.0.0.1", MPORT), timeout=5)
        socks.append(s)
        t.defer(s.close)
        return s

    # slowloris: 4 connections, one byte each 0.3 s
    slow = [conn() for _ in range(4)]
    stop = threading.Event()

    def drip():
        data = b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 1000
        for i in range(len(data)):
            if stop.is_set():
                return
            for s in slow:
                try:
                    s.send(data[i:i + 1])
                except OSError:
                    pass
            time.sleep(0.3)
    th = threading.Thread(target=drip, daemon=True)
    th.start()
    # one that asks for /metrics and never reads, with a tiny receive buffer
    lazy = socket.socket()
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    lazy.connect(("127.0.0.1", MPORT))
    t.defer(lazy.close)
    lazy.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    # a 1 MB head
    st, _, body = http(None, raw=b"GET /metrics HTTP/1.1\r\nX-Big: " + b"b" * (1 << 20) + b"\r\n\r\n")
    t.check("1 MB head: 431 (or closed), never a 200 (got %s)" % st, st in (431, None, 503), (st, body[:100]))
    # garbage
    st, _, _ = http(None, raw=os.urandom(3000))
    t.check("garbage: 400 (or closed) (got %s)" % st, st in (400, None, 503), st)
    # 100 at once: at most 8 are served, the others get 503 or are closed
    results = []

    def one():
        results.append(http("/metrics", timeout=10)[0])
    ths = [threading.Thread(target=one) for _ in range(100)]
    mail = []
    for x in ths:
        x.start()
    for i in range(5):
        mail.append(send_timed(bs, "under attack %d" % i))
    for x in ths:
        x.join(15)
    t.check("100 parallel scrapers: each got 200, 503 or a close",
            len(results) == 100 and all(r in (200, 503, None) for r in results),
            sorted(set(map(str, results))))
    # how many are served depends on how fast each is answered (all 100 may
    # be, one after another); the cap itself is checked below with eight
    # requests held open
    log("# 100 parallel scrapers: %d served, %d 503, %d closed"
        % (results.count(200), results.count(503), results.count(None)))
    t.check("mail relayed under attack", all(code == 250 for _, code in mail), mail)
    worst = max(s for s, _ in mail)
    t.check("within normal latency (worst %.3fs, baseline worst %.3fs)" % (worst, base_max),
            worst < max(1.0, 5 * base_max), (worst, base_max))
    # the slowloris and the non-reader are closed by the 5 s deadline
    def closed(s):
        s.settimeout(0.2)
        try:
            while True:
                if not s.recv(65536):
                    return True
        except socket.timeout:
            return False
        except OSError:
            return True
    ok = poll(lambda: all(closed(s) for s in slow), 8, 0.2)
    t.check("slowloris connections closed by the deadline", ok)
    stop.set()
    ok = poll(lambda: closed(lazy), 8, 0.2)
    t.check("the scraper that does not read is closed too", ok)
    t.check("/health answers again afterwards", http("/health")[0] == 200)
    t.check("backstop still running", bs.running())

with t.case("idle connections cannot lock the endpoint; a refused one reads its 503"):
    def closed_now(s):
        s.settimeout(0.05)
        try:
            while True:
                if not s.recv(65536):
                    return True
        except socket.timeout:
            return False
        except OSError:
            return True
    idle = [socket.create_connection(("127.0.0.1", MPORT), timeout=5) for _ in range(8)]
    for s in idle:
        t.defer(s.close)
    time.sleep(0.1)
    t0 = time.monotonic()
    st, _, body = http("/health")
    took = time.monotonic() - t0
    t.check("8 idle connections (the cap): /health still answers 200 (in %.2fs)" % took,
            st == 200 and took < 1.0, (st, body, took))
    t.check("the oldest idle one was closed to make room", poll(lambda: closed_now(idle[0]), 1),
            "idle[0] still open")
    for s in idle:
        s.close()
    # an incomplete head gets a short deadline of its own, not the whole 5 s
    s = socket.create_connection(("127.0.0.1", MPORT), timeout=5)
    t.defer(s.close)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    ok = poll(lambda: closed_now(s), 6, 0.05)
    took = time.monotonic() - t0
    t.check("an incomplete request head is closed after about 1 s (%.2fs), not 5 s" % took,
            ok and 0.7 < took < 2.0, took)
    s.close()
    # 8 connections with complete requests, none reading: the 9th gets a
    # 503 it can read (writes shut down, its input drained) - not a reset
    busy = []
    for _ in range(8):
        b = socket.socket()
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        b.connect(("127.0.0.1", MPORT))
        b.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
        t.defer(b.close)
        busy.append(b)
    time.sleep(0.1)
    # a burst of 20 that each send their request before reading: closed at
    # once, the unread requests would turn each close into a reset
    burst = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", MPORT), timeout=5)
        t.defer(s.close)
        s.sendall(b"GET /health HTTP/1.1\r\nX-Pad: " + b"p" * 2000 + b"\r\n\r\n")
        burst.append(s)
    answers = {}
    for s in burst:
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            k = data.split(b"\r\n")[0].decode("latin-1") + " / " + data.partition(b"\r\n\r\n")[2].decode("latin-1")
        except OSError as e:
            k = "error: %s" % e
        answers[k] = answers.get(k, 0) + 1
        s.close()
    t.check("20 more while 8 requests are answered: each reads a whole 503 'too many scrapers',"
            " no reset", answers == {"HTTP/1.1 503 Service Unavailable / too many scrapers\n": 20}, answers)
    for b in busy:
        b.close()
    t.check("/health afterwards: 200", poll(lambda: http("/health")[0] == 200, 3, 0.1))

with t.case("TLS handshakes and failures by version"):
    ca = t.tmpdir("ca")
    r = subprocess.run(["sh", os.path.join(srcdir(), "certs", "make-test-ca.sh"), ca],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    t.check("test CA made", r.returncode == 0, r.stdout[-500:])
    mport2 = free_port()
    bs2 = t.backstop({"backend": {"address": sink.address},
                      "metrics": {"listen": "127.0.0.1:%d" % mport2},
                      "tls": {"certificate": os.path.join(ca, "backstop-fullchain.crt"),
                              "key": os.path.join(ca, "backstop.key"), "handshake_timeout": "1s"}})

    def handshake(maxver):
        c = bs2.client()
        c.ehlo()
        t.check_reply("STARTTLS: 220", c.cmd("STARTTLS"), 220)
        ctx = ssl.create_default_context(cafile=os.path.join(ca, "ca.crt"))
        ctx.maximum_version = maxver
        c.sock = ctx.wrap_socket(c.sock, server_hostname="backstop.test.example")
        c.buf = b""
        t.check_reply("EHLO after TLS", c.ehlo(), 250)
        c.cmd("QUIT")
        c.close()
    handshake(ssl.TLSVersion.TLSv1_3)
    handshake(ssl.TLSVersion.TLSv1_2)
    # a client that refuses the certificate (wrong name): a TLSv1.3 failure
    c = bs2.client()
    c.ehlo()
    c.cmd("STARTTLS")
    try:
        ssl.create_default_context(cafile=os.path.join(ca, "ca.crt")).wrap_socket(
            c.sock, server_hostname="wrong.example")
        t.check("the client refuses the certificate for another name", False)
    except ssl.SSLCertVerificationError:
        pass
    c.close()
    # a failed handshake (not TLS after STARTTLS) and one that times out
    c = bs2.client()
    c.ehlo()
    c.cmd("STARTTLS")
    c.send(b"EHLO plaintext\r\n" * 10)
    t.check("garbage instead of a ClientHello: closed", c.closed_within(3))
    c = bs2.client()
    c.ehlo()
    c.cmd("STARTTLS")
    t.check("silence after STARTTLS: closed after handshake_timeout", c.closed_within(4))
    m = scrape(mport2)
    ok = {k: v for k, v in m.items() if k.startswith("backstop_tls_handshakes_total") and v}
    t.check("handshakes: one TLSv1.3, one TLSv1.2",
            ok == {'backstop_tls_handshakes_total{version="TLSv1.3"}': 1,
                   'backstop_tls_handshakes_total{version="TLSv1.2"}': 1}, ok)
    fails = {k: v for k, v in m.items() if k.startswith("backstop_tls_handshake_failures") and v}
    want = {'backstop_tls_handshake_failures_total{version="unknown"}': 2,
            'backstop_tls_handshake_failures_total{version="TLSv1.3"}': 1}
    t.check("failures: garbage and timeout before a ClientHello (unknown), a refused certificate"
            " (TLSv1.3)", poll(lambda: {k: v for k, v in scrape(mport2).items()
                                        if k.startswith("backstop_tls_handshake_failures") and v} == want, 3),
            fails)
    bs2.stop()

with t.case("DNS answers by result (SPF lookups, on worker threads)"):
    dport = t.dns_server(os.path.join(srcdir(), "tests", "data", "dns", "spf.zone"))
    mport3 = free_port()
    ns = t.netns()   # SPF skips loopback clients: this one is 198.51.100.x
    nsport = free_port(ns.host_addr)
    bs3 = t.backstop({"backend": {"address": sink.address},
                      "server": {"listen": "%s:%d" % (ns.host_addr, nsport)},
                      "metrics": {"listen": "127.0.0.1:%d" % mport3},
                      "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "1s"},
                      "spf": {"mode": "annotate"}})

    def answers():
        m = scrape(mport3)
        return {k: int(m['backstop_dns_answers_total{result="%s"}' % k])
                for k in ("ok", "nodata", "nxdomain", "servfail", "timeout", "error")
                if m['backstop_dns_answers_total{result="%s"}' % k]}
    c = ns.client(ns.host_addr, nsport, timeout=10)
    t.defer(c.close)
    c.greeting()
    c.ehlo()
    # a record (ok), no name at all (nxdomain), an answer after 3 s, past
    # [dns] timeout (timeout): the SPF check's TXT lookups
    for dom in ("pass.example.org", "nx.example.org", "slow.example.org"):
        t.check_reply("MAIL from %s" % dom, c.cmd("MAIL FROM:<a@%s>" % dom, timeout=10), 250)
        c.cmd("RSET")
    c.cmd("QUIT")
    c.close()
    want = {"ok": 1, "nxdomain": 1, "timeout": 1}
    t.check("answers: 1 ok, 1 nxdomain, 1 timeout", poll(lambda: answers() == want, 3, 0.2), answers())
    bs3.stop()

with t.case("/health is 503 while draining"):
    c = bs.client()
    c.ehlo()
    bs.signal(signal.SIGTERM)
    ok = poll(lambda: http("/health")[0] == 503, 2, 0.05)
    t.check("SIGTERM with a session open: /health 503", ok)
    st, _, body = http("/health")
    t.check("it says draining", "draining" in body, body)
    m = scrape()
    t.check("backstop_draining 1", m.get("backstop_draining") == 1, m.get("backstop_draining"))
    c.cmd("QUIT")
    c.close()
    t.check("exits after the session", bs.wait_exit(10) == 0)
    bs.check_sanitizers()
    bs.proc = None
    bs.logf.close()

with t.case("configuration errors say what to fix"):
    d = t.tmpdir("cfg")
    base = ("[backend]\naddress = 127.0.0.1:%d\n[dns]\nservers = 127.0.0.1:%d\nreverse_lookup = no\n"
            "[spf]\nmode = off\n[dkim]\nmode = off\n[dmarc]\nmode = off\n" % (dead_port(), dead_port()))
    sport = free_port()

    def check_bad(name, text, rx):
        path = os.path.join(d, name + ".ini")
        with open(path, "w") as f:
            f.write(text)
        rc, out = t.run_backstop(["-t", "-c", path])
        t.check("%s: -t refuses it, naming the fix" % name, rc == 1 and re.search(rx, out), (rc, out))
    check_bad("host name", base + "[metrics]\nlisten = localhost:9125\n",
              r"\[metrics\] listen.*'localhost:9125' is not one or more IP address:port")
    check_bad("no port", base + "[metrics]\nlisten = 127.0.0.1\n", r"\[metrics\] listen")
    check_bad("same as the SMTP listener",
              base + "[server]\nlisten = 127.0.0.1:%d\n[metrics]\nlisten = 127.0.0.1:%d\n" % (sport, sport),
              r"\[metrics\] listen 127\.0\.0\.1:%d is also a \[server\] listen address" % sport)
    check_bad("backend_failures 0", base + "[metrics]\nbackend_failures = 0\n",
              r"backend_failures.*between 1 and 1000")
    # a port in use: start-up fails and says which key to change
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    bport = free_port()
    busy.bind(("127.0.0.1", bport))
    busy.listen(1)
    t.defer(busy.close)
    path = os.path.join(d, "busy.ini")
    with open(path, "w") as f:
        f.write(base + "[server]\nuser = root\nlisten = 127.0.0.1:%d\n[metrics]\nlisten = 127.0.0.1:%d\n" % (free_port(), bport))
    p = subprocess.run([t.bin, "-f", "-c", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=10)
    out = p.stdout.decode("utf-8", "replace")
    t.check("port in use: start-up fails naming [metrics] listen",
            p.returncode != 0 and re.search(r"\[metrics\] listen: cannot listen on 127\.0\.0\.1:%d: address already in use"
                                            % bport, out), (p.returncode, out))

t.done()

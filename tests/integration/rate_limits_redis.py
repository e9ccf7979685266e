#!/usr/bin/python3
"""rate_limits_redis: [limits] store = redis://... with a real redis-server
(started here on loopback, in the test's directory). Two backstop instances
share one Redis: a client that is under the limit at each instance but over
it across both is refused. Redis stopped (SIGSTOP: slow) and then killed
(SIGKILL: down): mail is still accepted at once, from local counters, and
"redis unavailable, using local counters" is logged once (not per check).
Redis restarted on the same port: backstop reconnects by itself and counts
in Redis again."""
import os
import re
import signal
import socket
import subprocess
import time
from harness import *

t = Test("rate_limits_redis", need=("smtp-sink", "redis-server"))
sink = t.sink()
rport = free_port()
rdir = t.tmpdir("redis")
redis = {"proc": None}


def redis_start():
    p = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", rdir, "--daemonize", "no",
                          "--logfile", os.path.join(rdir, "redis.log")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    redis["proc"] = p
    ok = poll(lambda: redis_cmd("PING") == "+PONG", 5, 0.05)
    if not ok:
        raise RuntimeError("redis-server did not answer PING")


def redis_stop():
    p = redis["proc"]
    if p is not None and p.poll() is None:
        os.kill(p.pid, signal.SIGCONT)
        p.kill()
        p.wait()
    redis["proc"] = None


t.defer(redis_stop)


def redis_cmd(*words):
    """One command in RESP; the first line of the answer (an array: the
    lines joined by spaces), or None when Redis does not answer."""
    try:
        s = socket.create_connection(("127.0.0.1", rport), timeout=1)
    except OSError:
        return None
    try:
        msg = "*%d\r\n" % len(words) + "".join("$%d\r\n%s\r\n" % (len(w), w) for w in words)
        s.sendall(msg.encode())
        data = b""
        end = time.monotonic() + 1
        while time.monotonic() < end:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
            if data.startswith(b"*"):
                n = int(data.split(b"\r\n", 1)[0][1:])
                if data.count(b"\r\n") >= 1 + 2 * max(n, 0):
                    break
            elif data.endswith(b"\r\n"):
                break
        return data.decode(errors="replace").strip().replace("\r\n", " ") or None
    except OSError:
        return None
    finally:
        s.close()


def start(limits):
    lim = {"rate_window": "60s", "max_connections_per_ip": "100",
           "store": "redis://127.0.0.1:%d" % rport, "redis_timeout": "50ms"}
    lim.update(limits)
    bs = t.backstop({"backend": {"address": sink.address}, "limits": lim})
    return bs


def session(bs, source):
    c = SmtpClient(bs.host, bs.port, 5, source=(source, 0))
    t.defer(c.close)
    t.check_reply("greeted (%s)" % source, c.greeting(), 220)
    t.check_reply("EHLO (%s)" % source, c.ehlo(), 250)
    return c


def timed_mail(c):
    t0 = time.monotonic()
    r = c.cmd("MAIL FROM:<a@example.org>")
    return r, time.monotonic() - t0


FALLBACK = r"redis unavailable, using local counters"

redis_start()
bs1 = start({"msg_rate_per_ip": "3"})
bs2 = start({"msg_rate_per_ip": "3"})
# connected: the first check after start-up may still count locally
poll(lambda: all(re.search(r"limits: redis \S+ connected", b.log()) for b in (bs1, bs2)), 5, 0.05)

with t.case("two instances share the counts: 2 + 1 MAILs pass, the 4th (at either) is refused"):
    a, b = session(bs1, "127.0.0.11"), session(bs2, "127.0.0.11")
    t.check_reply("MAIL 1 at instance 1", a.cmd("MAIL FROM:<a@example.org>"), 250)
    t.check_reply("RSET", a.cmd("RSET"), 250)
    t.check_reply("MAIL 2 at instance 1", a.cmd("MAIL FROM:<a@example.org>"), 250)
    t.check_reply("MAIL 3 at instance 2", b.cmd("MAIL FROM:<a@example.org>"), 250)
    t.check_reply("RSET", b.cmd("RSET"), 250)
    r = b.cmd("MAIL FROM:<a@example.org>")
    t.check("MAIL 4 at instance 2 (its 2nd): 451 4.7.1 naming msg_rate_per_ip",
            r.code == 451 and r.esc == "4.7.1" and "msg_rate_per_ip" in r.text, r)
    t.check("log: shared counters, count 4",
            bs2.wait_log(r"rate limit msg_rate_per_ip exceeded: 127\.0\.0\.11, 4 messages in the 60 s "
                         r"window \(limit 3, shared counters\)", 2), bs2.log()[-1500:])
    keys = redis_cmd("KEYS", "backstop:rl:*")
    t.check("the counter is in Redis", keys and "backstop:rl:60000:msg:ip:127.0.0.11" in keys, keys)
    ttl = redis_cmd("PTTL", "backstop:rl:60000:msg:ip:127.0.0.11")
    t.check("with an expiry of at most the window", ttl and ttl.startswith(":") and
            0 < int(ttl[1:]) <= 60000, ttl)
    t.check("no fallback while Redis answers", FALLBACK not in bs1.log() + bs2.log())

with t.case("Redis stopped (SIGSTOP): mail accepted without waiting, fallback logged once"):
    os.kill(redis["proc"].pid, signal.SIGSTOP)
    c = session(bs1, "127.0.0.12")
    worst = 0
    for i in range(3):
        r, took = timed_mail(c)
        worst = max(worst, took)
        t.check_reply("MAIL %d accepted" % (i + 1), r, 250)
        t.check_reply("RSET", c.cmd("RSET"), 250)
    t.check("each MAIL answered within 1 s (worst %.3f s)" % worst, worst < 1.0)
    t.check("fallback logged", bs1.wait_log(FALLBACK, 2), bs1.log()[-1500:])
    r, took = timed_mail(c)
    t.check("local counters still limit: 4th MAIL from the address refused",
            r.code == 451 and "msg_rate_per_ip" in r.text, r)
    t.check("the refusal says local counters",
            bs1.wait_log(r"127\.0\.0\.12, 4 messages .*local counters", 2), bs1.log()[-1500:])

with t.case("Redis killed (SIGKILL): mail still accepted, still one fallback line"):
    # backstop has reconnected meanwhile (the kernel completes the
    # handshake for a stopped server): the kill resets a live connection
    t.check("reconnected to the stopped server",
            bs1.wait_log(r"limits: redis \S+ connected", 3, count=2), bs1.log()[-1500:])
    os.kill(redis["proc"].pid, signal.SIGKILL)
    redis["proc"].wait()
    redis["proc"] = None
    t.check("the lost connection is noticed", bs1.wait_log(r"limits: redis \S+: connection lost", 3),
            bs1.log()[-1500:])
    # refused reconnects are seen (not left to the connect deadline)
    t.check("a refused reconnect is seen as refused",
            bs1.wait_log(r"limits: redis \S+: connect failed: Connection refused", 3), bs1.log()[-1500:])
    c = session(bs1, "127.0.0.13")
    worst = 0
    for i in range(3):
        r, took = timed_mail(c)
        worst = max(worst, took)
        t.check_reply("MAIL %d accepted" % (i + 1), r, 250)
        t.check_reply("RSET", c.cmd("RSET"), 250)
    t.check("each MAIL answered within 1 s (worst %.3f s)" % worst, worst < 1.0)
    n = bs1.log().count(FALLBACK)
    t.check("one fallback line for the whole outage (got %d)" % n, n == 1, bs1.log()[-2500:])

with t.case("Redis restarted: backstop reconnects and shares counts again"):
    redis_start()

    def shared_again(bs, ip):
        c = session(bs, ip)
        r = c.cmd("MAIL FROM:<a@example.org>")
        c.cmd("QUIT")
        return r.code == 250 and redis_cmd("EXISTS", "backstop:rl:60000:msg:ip:%s" % ip) == ":1"
    t.check("instance 1: a count reaches the new Redis within 10 s",
            poll(lambda: shared_again(bs1, "127.0.0.14"), 10, 0.3), bs1.log()[-2500:])
    t.check("logged: redis answers again", bs1.wait_log(r"redis answers again", 2), bs1.log()[-1500:])
    t.check("instance 2 too", poll(lambda: shared_again(bs2, "127.0.0.16"), 10, 0.3), bs2.log()[-2500:])
    # the shared limit holds again for a fresh address
    a, b = session(bs1, "127.0.0.15"), session(bs2, "127.0.0.15")
    for i in range(3):
        cl = a if i < 2 else b
        t.check_reply("MAIL %d" % (i + 1), cl.cmd("MAIL FROM:<a@example.org>"), 250)
        cl.cmd("RSET")
    r = b.cmd("MAIL FROM:<a@example.org>")
    t.check("4th MAIL across both: 451 naming msg_rate_per_ip",
            r.code == 451 and "msg_rate_per_ip" in r.text, r)
    t.check("from shared counters", bs2.wait_log(r"127\.0\.0\.15, 4 messages .*shared counters", 2),
            bs2.log()[-1500:])

with t.case("pipelined: MAIL/RSET x4 in one write, answered in order from Redis"):
    c = session(bs1, "127.0.0.18")
    c.send(b"MAIL FROM:<a@example.org>\r\nRSET\r\n" * 4)
    rs = c.replies(8, 5)
    t.check("250 x6, then 451 4.7.1 for the 4th MAIL, then 250 for RSET",
            [r.code for r in rs] == [250] * 6 + [451, 250] and "msg_rate_per_ip" in rs[6].text, rs)
    t.check("counted in Redis: 4", redis_cmd("GET", "backstop:rl:60000:msg:ip:127.0.0.18") == "$1 4",
            redis_cmd("GET", "backstop:rl:60000:msg:ip:127.0.0.18"))

with t.case("SIGHUP: store = memory -> redis:// connects, -> memory again drops the connection"):
    bs3 = start({"msg_rate_per_ip": "3", "store": "memory"})
    c = session(bs3, "127.0.0.17")
    t.check_reply("MAIL (memory)", c.cmd("MAIL FROM:<a@example.org>"), 250)
    c.cmd("QUIT")
    t.check("not in Redis", redis_cmd("EXISTS", "backstop:rl:60000:msg:ip:127.0.0.17") == ":0")
    bs3.sections["limits"]["store"] = "redis://127.0.0.1:%d" % rport
    bs3.write_config()
    bs3.signal(signal.SIGHUP)
    t.check("reloaded and connected", bs3.wait_log(r"limits: redis \S+ connected", 5), bs3.log()[-1500:])
    c = session(bs3, "127.0.0.17")
    t.check_reply("MAIL (redis)", c.cmd("MAIL FROM:<a@example.org>"), 250)
    c.cmd("QUIT")
    t.check("counted in Redis", redis_cmd("EXISTS", "backstop:rl:60000:msg:ip:127.0.0.17") == ":1")
    clients = lambda: redis_cmd("CLIENT", "LIST") or ""
    before = clients().count("cmd=")
    bs3.sections["limits"]["store"] = "memory"
    bs3.write_config()
    bs3.signal(signal.SIGHUP)
    t.check("back to memory: the connection is closed",
            poll(lambda: clients().count("cmd=") == before - 1, 5, 0.1), clients())
    bs3.stop()

bs1.stop()
bs2.stop()
t.done()

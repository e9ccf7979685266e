#!/usr/bin/python3
"""rate_limits: the per-client rate limits of [limits] with the memory
store. Each limit (connections, messages, recipients, null-sender
recipients; per address and per network) refuses the event over it with
its own reply (421 4.7.0 and close for a connection, 451 4.7.1 for MAIL and
RCPT) naming the limit, and logs limit, key, count and window; two
addresses of one /24 (127.0.0.1 and 127.0.0.2, both on loopback: no netns
needed) add up in the per-network counters while an address of another
/24 does not; counters start over after rate_window."""
import re
import time
import urllib.request
from harness import *

t = Test("rate_limits", need=("smtp-sink",))
sink = t.sink()
WINDOW = 3  # seconds: short, so the expiry case is quick


def start(limits, extra=None):
    lim = {"rate_window": "%ds" % WINDOW, "max_connections_per_ip": "100"}
    lim.update(limits)
    sections = {"backend": {"address": sink.address}, "limits": lim}
    sections.update(extra or {})
    return t.backstop(sections)


def limits_refusals(port):
    """backstop_refusals_total{check="limits",class="4xx"} from /metrics"""
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=3).read().decode()
    m = re.search(r'^backstop_refusals_total\{check="limits",class="4xx"\} (\S+)$', body, re.M)
    return float(m.group(1)) if m else None


def connect(bs, source):
    """(greeting reply or 'closed', client)"""
    c = SmtpClient(bs.host, bs.port, 3, source=(source, 0))
    t.defer(c.close)
    try:
        return c.reply(3), c
    except (Closed, OSError):
        return "closed", c


def session(bs, source):
    r, c = connect(bs, source)
    t.check("greeted from %s" % source, isinstance(r, Reply) and r.code == 220, r)
    t.check_reply("EHLO from %s" % source, c.ehlo(), 250)
    return c


def refused(reply, code, esc, limit):
    return isinstance(reply, Reply) and reply.code == code and reply.esc == esc and limit in reply.text


with t.case("conn_rate_per_ip = 3: the 4th connection gets 421 4.7.0 and is closed"):
    bs = start({"conn_rate_per_ip": "3"})
    for i in range(3):
        r, c = connect(bs, "127.0.0.1")
        t.check("connection %d greeted" % (i + 1), isinstance(r, Reply) and r.code == 220, r)
        c.cmd("QUIT")
    r, c = connect(bs, "127.0.0.1")
    t.check("4th: 421 4.7.0 naming conn_rate_per_ip", refused(r, 421, "4.7.0", "conn_rate_per_ip"), r)
    t.check("4th: closed", c.closed_within(2))
    r, c = connect(bs, "127.0.0.2")
    t.check("another address still greeted", isinstance(r, Reply) and r.code == 220, r)
    t.check("log: limit, key, count, window",
            bs.wait_log(r"rate limit conn_rate_per_ip exceeded: 127\.0\.0\.1, 4 connections in the "
                        r"%d s window \(limit 3, local counters\)" % WINDOW, 2), bs.log()[-1500:])
    c.cmd("QUIT")
    # the window passes: the counter starts over
    time.sleep(WINDOW + 0.3)
    r, c = connect(bs, "127.0.0.1")
    t.check("after rate_window: greeted again", isinstance(r, Reply) and r.code == 220, r)
    c.cmd("QUIT")
    bs.stop()

with t.case("conn_rate_per_net = 3: two addresses of one /24 add up, another /24 does not"):
    bs = start({"conn_rate_per_net": "3"})
    for i, src in enumerate(("127.0.0.1", "127.0.0.2", "127.0.0.1")):
        r, c = connect(bs, src)
        t.check("connection %d (%s) greeted" % (i + 1, src), isinstance(r, Reply) and r.code == 220, r)
        c.cmd("QUIT")
    r, c = connect(bs, "127.0.0.2")
    t.check("4th from the /24 (127.0.0.2): 421 4.7.0 naming conn_rate_per_net",
            refused(r, 421, "4.7.0", "conn_rate_per_net") and "127.0.0.0/24" in r.text, r)
    r, c = connect(bs, "127.0.1.1")
    t.check("127.0.1.1 (another /24) still greeted", isinstance(r, Reply) and r.code == 220, r)
    c.cmd("QUIT")
    t.check("log names the network",
            bs.wait_log(r"rate limit conn_rate_per_net exceeded: 127\.0\.0\.0/24, 4 connections", 2),
            bs.log()[-1500:])
    bs.stop()

with t.case("max_connections_per_net = 2: connections at once from one /24"):
    bs = start({"max_connections_per_net": "2"})
    held = []
    for src in ("127.0.0.1", "127.0.0.2"):
        r, c = connect(bs, src)
        t.check("%s greeted" % src, isinstance(r, Reply) and r.code == 220, r)
        held.append(c)
    r, c = connect(bs, "127.0.0.3")
    t.check("3rd at once from the /24: 421 4.7.0 naming max_connections_per_net",
            refused(r, 421, "4.7.0", "max_connections_per_net"), r)
    r, c = connect(bs, "127.0.1.1")
    t.check("another /24 still greeted", isinstance(r, Reply) and r.code == 220, r)
    held[0].cmd("QUIT")
    held[0].closed_within(2)
    t.check("after one QUIT, the /24 gets in again",
            poll(lambda: (lambda rc: isinstance(rc[0], Reply) and rc[0].code == 220 and
                          (rc[1].cmd("QUIT") or True))(connect(bs, "127.0.0.3")), 2, 0.2))
    t.check("logged", bs.wait_log(r"too many connections from this network \(max_connections_per_net = 2, "
                                  r"counted per /24\)", 2), bs.log()[-1500:])
    bs.stop()

with t.case("msg_rate_per_ip = 2: the 3rd MAIL gets 451 4.7.1"):
    mport = free_port()
    bs = start({"msg_rate_per_ip": "2"}, {"metrics": {"listen": "127.0.0.1:%d" % mport}})
    c = session(bs, "127.0.0.1")
    for i in range(2):
        t.check_reply("MAIL %d" % (i + 1), c.cmd("MAIL FROM:<a@example.org>"), 250)
        t.check_reply("RSET", c.cmd("RSET"), 250)
    r = c.cmd("MAIL FROM:<a@example.org>")
    t.check("3rd MAIL: 451 4.7.1 naming msg_rate_per_ip, try again later",
            refused(r, 451, "4.7.1", "msg_rate_per_ip") and "try again later" in r.text, r)
    t.check_reply("session goes on", c.cmd("NOOP"), 250)
    n = limits_refusals(mport)
    t.check("counted as a refusal of the limits check (metrics: %s)" % n, n == 1)
    c2 = session(bs, "127.0.0.3")
    t.check_reply("another address: MAIL accepted", c2.cmd("MAIL FROM:<a@example.org>"), 250)
    t.check("log", bs.wait_log(r"rate limit msg_rate_per_ip exceeded: 127\.0\.0\.1, 3 messages", 2),
            bs.log()[-1500:])
    bs.stop()

with t.case("msg_rate_per_net = 2 across two addresses of one /24"):
    bs = start({"msg_rate_per_net": "2"})
    a, b = session(bs, "127.0.0.1"), session(bs, "127.0.0.2")
    t.check_reply("MAIL from .1", a.cmd("MAIL FROM:<a@example.org>"), 250)
    t.check_reply("MAIL from .2", b.cmd("MAIL FROM:<a@example.org>"), 250)
    t.check_reply("RSET", b.cmd("RSET"), 250)
    r = b.cmd("MAIL FROM:<a@example.org>")
    t.check("3rd MAIL of the /24: 451 4.7.1 naming msg_rate_per_net",
            refused(r, 451, "4.7.1", "msg_rate_per_net"), r)
    bs.stop()

with t.case("rcpt_rate_per_ip = 3: the 4th RCPT gets 451 4.7.1; a whole message still goes through"):
    bs = start({"rcpt_rate_per_ip": "3"})
    c = session(bs, "127.0.0.1")
    t.check_reply("MAIL", c.cmd("MAIL FROM:<a@example.org>"), 250)
    for i in range(3):
        t.check_reply("RCPT %d" % (i + 1), c.cmd("RCPT TO:<u%d@test.example>" % i), 250)
    r = c.cmd("RCPT TO:<u9@test.example>")
    t.check("4th RCPT: 451 4.7.1 naming rcpt_rate_per_ip", refused(r, 451, "4.7.1", "rcpt_rate_per_ip"), r)
    t.check_reply("DATA for the accepted three", c.cmd("DATA"), 354)
    c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
    t.check_reply("message accepted", c.reply(5), 250)
    bs.stop()

with t.case("bounce_rcpt_rate_per_ip = 2: only null-sender recipients count"):
    bs = start({"bounce_rcpt_rate_per_ip": "2"})
    c = session(bs, "127.0.0.1")
    t.check_reply("MAIL FROM:<>", c.cmd("MAIL FROM:<>"), 250)
    for i in range(2):
        t.check_reply("bounce RCPT %d" % (i + 1), c.cmd("RCPT TO:<u%d@test.example>" % i), 250)
    r = c.cmd("RCPT TO:<u8@test.example>")
    t.check("3rd null-sender RCPT: 451 4.7.1 naming bounce_rcpt_rate_per_ip",
            refused(r, 451, "4.7.1", "bounce_rcpt_rate_per_ip") and "null sender" in r.text, r)
    t.check_reply("RSET", c.cmd("RSET"), 250)
    t.check_reply("MAIL with a sender", c.cmd("MAIL FROM:<a@example.org>"), 250)
    for i in range(4):
        t.check_reply("ordinary RCPT %d not limited" % (i + 1), c.cmd("RCPT TO:<v%d@test.example>" % i), 250)
    bs.stop()

with t.case("bounce_rcpt_rate_per_net = 2 and rcpt_rate_per_net = 3 over one /24"):
    bs = start({"bounce_rcpt_rate_per_net": "2", "rcpt_rate_per_net": "3"})
    a, b = session(bs, "127.0.0.1"), session(bs, "127.0.0.2")
    t.check_reply("MAIL FROM:<> (.1)", a.cmd("MAIL FROM:<>"), 250)
    t.check_reply("MAIL FROM:<> (.2)", b.cmd("MAIL FROM:<>"), 250)
    t.check_reply("bounce RCPT from .1", a.cmd("RCPT TO:<u1@test.example>"), 250)
    t.check_reply("bounce RCPT from .2", b.cmd("RCPT TO:<u2@test.example>"), 250)
    r = a.cmd("RCPT TO:<u3@test.example>")
    t.check("3rd null-sender RCPT of the /24: 451 naming bounce_rcpt_rate_per_net",
            refused(r, 451, "4.7.1", "bounce_rcpt_rate_per_net"), r)
    r = b.cmd("RCPT TO:<u4@test.example>")
    t.check("4th RCPT of the /24: 451 naming rcpt_rate_per_net (checked first)",
            refused(r, 451, "4.7.1", "rcpt_rate_per_net"), r)
    bs.stop()

t.done()

#!/usr/bin/python3
"""workers_drain: [server] workers = 2 in front of a real Postfix, with
sessions in flight in both workers. SIGHUP mid-DATA: each message still
ends with the backend's 250, once. SIGTERM mid-DATA: each worker lets its
session finish the message within drain_time (250, delivered once), then
says 421 to the next MAIL; a session still in DATA when drain_time ends
gets 421 and the backend never sees its dot (nothing delivered). SIGKILL of
a worker mid-DATA: its client loses the connection without a 250 and
nothing of its message is delivered. The master exits 0 at the end."""
import os
import re
import signal
import time
from harness import *

t = Test("workers_drain", need=("postfix",), watchdog=120)
pf = t.postfix()


def start(drain):
    pf.clear_mail()
    bs = t.backstop({"backend": {"address": pf.address},
                     "server": {"workers": "2", "drain_time": drain}})
    t.check("both workers listen", bs.wait_log(r"2 workers listening", 10), bs.log()[-2000:])
    return bs


def handler_of(bs, c):
    port = c.sock.getsockname()[1]
    rx = r"backstop\[(\d+)\]: \w+: connect from \[127\.0\.0\.1\]:%d " % port
    m = poll(lambda: re.search(rx, bs.log()), 3)
    return int(m.group(1)) if m else None


def in_data_per_worker(bs, subject):
    """one client in DATA (354, half a message sent) in each worker"""
    clients, owners = [], {}
    for i in range(60):
        c = bs.client()
        t.defer(c.close)
        pid = handler_of(bs, c)
        if pid in owners:
            c.cmd("QUIT")
            c.close()
            continue
        c.ehlo()
        c.cmd("MAIL FROM:<s%d@example.org>" % i)
        c.cmd("RCPT TO:<user@test.example>")
        t.check("%s: DATA 354 in worker %s" % (subject, pid), c.cmd("DATA").code == 354)
        msg = dot_stuff(make_message("%s %d" % (subject, len(clients)), body="line\n" * 200))
        half = len(msg) // 2
        c.send(msg[:half])
        owners[pid] = c
        clients.append((c, msg[half:], "%s %d" % (subject, len(clients))))
        if len(owners) == 2:
            break
    t.check("%s: one session in DATA in each worker" % subject, len(owners) == 2, owners.keys())
    return clients


def delivered(subject):
    return [m for m in pf.messages() if m.headers("Subject") == [subject]]


with t.case("SIGHUP with a session in DATA in each worker"):
    bs = start("3s")
    cs = in_data_per_worker(bs, "hup")
    bs.mark()
    bs.signal(signal.SIGHUP)
    t.check("both workers reloaded", len(bs.wait_log(r"reload: configuration .* loaded", 5, count=2)) >= 2,
            bs.log(True))
    for c, rest, subj in cs:
        c.send(rest + b".\r\n")
        t.check_reply("%s: 250 after the reload" % subj, c.reply(10), 250)
        t.check_reply("%s: the session goes on (MAIL)" % subj, c.cmd("MAIL FROM:<x@example.org>"), 250)
        c.cmd("QUIT")
    pf.settle(0.5)
    for _, _, subj in cs:
        t.check("%s delivered once" % subj, len(delivered(subj)) == 1, len(delivered(subj)))
    bs.stop()

with t.case("SIGTERM with a session in DATA in each worker: they finish within drain_time"):
    bs = start("5s")
    cs = in_data_per_worker(bs, "term")
    bs.mark()
    bs.signal(signal.SIGTERM)
    t.check("both workers drain", len(bs.wait_log(r"signal 15: stopping; 1 session", 5, count=2)) >= 2,
            bs.log(True))
    for c, rest, subj in cs:
        c.send(rest + b".\r\n")
        t.check_reply("%s: 250 while draining" % subj, c.reply(10), 250)
        t.check_reply("%s: then 421 (draining)" % subj, c.reply(5), 421)
    rc = bs.wait_exit(10)
    t.check("the master exits 0 once the sessions ended", rc == 0, (rc, bs.log()[-2000:]))
    bs.check_sanitizers()
    pf.settle(0.5)
    for _, _, subj in cs:
        t.check("%s delivered once" % subj, len(delivered(subj)) == 1, len(delivered(subj)))
    bs.proc = None

with t.case("SIGTERM: a session still in DATA at drain_time gets 421, nothing delivered"):
    bs = start("1s")
    cs = in_data_per_worker(bs, "late")
    bs.signal(signal.SIGTERM)
    for c, rest, subj in cs:
        r = c.try_reply(6)
        t.check_reply("%s: 421 at drain_time" % subj, r, 421)
        try:
            c.send(rest + b".\r\n")   # too late: the dot must go nowhere
        except OSError:
            pass
    rc = bs.wait_exit(10)
    t.check("the master exits 0", rc == 0, (rc, bs.log()[-2000:]))
    bs.check_sanitizers()
    bs.proc = None
    pf.settle(1.0)
    for _, _, subj in cs:
        t.check("%s never delivered" % subj, delivered(subj) == [], delivered(subj))

with t.case("SIGKILL of a worker with a session in DATA"):
    bs = start("2s")
    cs = in_data_per_worker(bs, "kill")
    victim_c, rest, subj = cs[0]
    victim = handler_of(bs, victim_c)
    os.kill(victim, signal.SIGKILL)
    t.check("the kill is logged, the worker restarted",
            bs.wait_log(r"pid %d\) killed by signal 9.*restarting" % victim, 3), bs.log(True))
    try:
        victim_c.send(rest + b".\r\n")
        r = victim_c.try_reply(3)
    except (OSError, Closed):
        r = None
    t.check("%s: no 250 from a dead worker" % subj, r is None or r.code != 250, r)
    c, rest2, subj2 = cs[1]
    c.send(rest2 + b".\r\n")
    t.check_reply("%s: the other worker's session is unharmed" % subj2, c.reply(10), 250)
    c.cmd("QUIT")
    pf.settle(1.0)
    t.check("%s never delivered" % subj, delivered(subj) == [], delivered(subj))
    t.check("%s delivered once" % subj2, len(delivered(subj2)) == 1, len(delivered(subj2)))
    bs.stop()

t.done()

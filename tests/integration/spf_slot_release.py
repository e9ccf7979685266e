#!/usr/bin/python3
"""spf_slot_release: the SPF checks of a closed session give back their
slots at once (issue "Fix first", item 6).

filters/spf.c runs at most 12 checks at once (4 per domain) and queues the
rest. Here 12 sessions stall all 12 slots on three domains whose nameserver
answers only after 20 s ([dns] timeout 5s), and 8 more wait in the queue.
One of the 12 stays; the other 19 hang up. A new session's check of
another domain must then get a slot at once: the closed sessions' queued
checks are dropped and their running checks stopped (their DNS queries end
now, their worker threads come back). Before, it waited until the stalled
queries timed out (5 s) and behind the 8 queued ones (another wave). The
session that stayed still gets its own verdict (temperror at ~5 s), and
Postfix is the real backend; clients come from a network namespace
(198.51.100.x), since libspf2 passes loopback clients without asking DNS."""
import threading
from harness import *

t = Test("spf_slot_release", need=("postfix", "ip"), watchdog=120)
zone = os.path.join(srcdir(), "tests", "data", "dns", "spf.zone")
STALL = ["stall%d.example.org" % k for k in (1, 2, 3, 4)]
dport = t.dns_server(*sum((["--delay", "%s.=20" % d] for d in STALL), []), zone)
pf = t.postfix()
ns = t.netns()         # libspf2 passes loopback clients without asking DNS
port = free_port(ns.host_addr)
bs = t.backstop({"backend": {"address": pf.address},
                 "server": {"listen": "%s:%d" % (ns.host_addr, port)},
                 "limits": {"max_connections_per_ip": "100"},
                 "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "5s"},
                 "spf": {"mode": "annotate"}})

with t.case("closed sessions' checks free their slots at once"):
    stalled = []
    # 12 running (4 each of stall1..3, the per-domain cap), 8 queued (stall4, stall1)
    senders = ["s%d@%s" % (i, STALL[i % 3]) for i in range(12)] + \
              ["q%d@%s" % (i, STALL[3] if i < 4 else STALL[0]) for i in range(8)]
    for snd in senders:
        c = ns.client(ns.host_addr, port, timeout=30)
        t.defer(c.close)
        c.greeting()
        c.ehlo()
        c.send(("MAIL FROM:<%s>\r\n" % snd).encode())
        stalled.append(c)
    time.sleep(0.5)       # all checks submitted: 12 on worker threads, 8 waiting
    keeper = stalled[0]
    kept = {}

    def wait_keeper():
        t0 = time.monotonic()
        kept["reply"] = keeper.reply(timeout=30)
        kept["s"] = time.monotonic() - t0 + 0.5

    th = threading.Thread(target=wait_keeper)
    th.start()
    bs.mark()
    for c in stalled[1:]:
        c.close()
    time.sleep(0.2)       # backstop notices the 19 closes
    t0 = time.monotonic()
    c = ns.client(ns.host_addr, port, timeout=30)
    t.defer(c.close)
    c.greeting()
    c.ehlo()
    r = c.cmd("MAIL FROM:<sender@pass.example.org>", timeout=30)
    dt = time.monotonic() - t0
    log("# new session's MAIL answered after %.2f s" % dt)
    t.check_reply("new session: MAIL 250 (annotate)", r, 250)
    t.check("new session's check ran at once (%.2f s < 1.5 s; the stalled queries time out at 5 s)" % dt,
            dt < 1.5, dt)
    rs = c.mail_transaction("sender@pass.example.org", ["user@test.example"], make_message("after"))
    c.cmd("QUIT")
    # each of the 19 closed sessions had one check: queued (dropped) or
    # running (stopped); a queued one may start in the moment between the
    # first stopped check's end and its own session's close
    closed = [(int(m.group(1)), int(m.group(2))) for m in
              bs.wait_log(r"spf: session closed: (\d+) queued check\(s\) dropped, (\d+) running stopped",
                          count=19)]
    dropped, stopped = sum(d for d, _ in closed), sum(r for _, r in closed)
    t.check("the 19 closed sessions' checks: %d queued dropped, %d running stopped" % (dropped, stopped),
            len(closed) == 19 and dropped + stopped == 19 and stopped >= 11, closed)
    ended = [int(m.group(1)) for m in bs.wait_log(r"spf: check of a closed session ended after (\d+)ms",
                                                   count=stopped)]
    t.check("the stopped checks ended at once, not at their 5 s timeout (%s ms)" % ended,
            len(ended) == stopped and max(ended) < 2000, ended)
    th.join()
    k = kept.get("reply")
    t.check("the session that stayed gets its own verdict at its timeout: MAIL 250 with spf=temperror "
            "(%.1f s)" % kept.get("s", -1), k is not None and k.code == 250 and 4.0 < kept["s"] < 8,
            (k, kept.get("s")))
    keeper.cmd("QUIT")
    t.check("its summary says spf=temperror", bs.wait_log(r"spf: result=temperror .*domain=stall1\.example\.org"),
            bs.log(True)[-2000:])

bs.stop()
t.done()

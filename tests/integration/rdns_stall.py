#!/usr/bin/python3
"""rdns_stall: with reverse_lookup = yes, a client whose PTR lookup stalls
(the test DNS server never answers in time) or fails (SERVFAIL) gets its
greeting at once, its transaction finishes within the DNS timeout, and its
mail goes on as from "unknown"; meanwhile another client (on loopback,
whose PTR libunbound answers locally) is served without any delay. The
slow clients sit in a network namespace; their names come from the test's
own DNS server (tests/lib/dns_server.py). A control where the PTR answers
shows the name does get through (so the checks can fail)."""
import threading
from harness import *

DNS_TIMEOUT = 2.0
t = Test("rdns_stall", need=("postfix", "ip"))
pf = t.postfix()
ns = t.netns()
rev = ".".join(reversed(ns.addr.split("."))) + ".in-addr.arpa."
arpa = ".".join(ns.addr.split(".")[2::-1]) + ".in-addr.arpa."
SOA = " 60 IN SOA ns.example.org. hostmaster.example.org. 1 60 60 600 30\n"
RECORDS = "%s 60 IN PTR mail.example.org.\nmail.example.org. 60 IN A %s\n" % (rev, ns.addr)


def start(extra):
    zone = os.path.join(t.tmpdir("dns%d" % free_port()), "rdns.zone")
    with open(zone, "w") as f:
        f.write("example.org." + SOA + arpa + SOA + RECORDS + extra)
    dport = t.dns_server(zone)
    nsport = free_port(ns.host_addr)
    bs = t.backstop({"backend": {"address": pf.address},
                     "server": {"listen": "127.0.0.1:%d %s:%d" % (free_port(), ns.host_addr, nsport)},
                     "dns": {"servers": "127.0.0.1:%d" % dport, "reverse_lookup": "yes",
                             "timeout": "%ds" % DNS_TIMEOUT}})
    bs.port = int(bs.listen[0].rsplit(":", 1)[1])
    return bs, nsport


def received_name(msg):
    rcv = re.sub(r"\s+", " ", backstop_received(msg) or "")
    m = re.search(r"from \S+ \((\S+) \[", rcv)
    return m.group(1) if m else rcv


def transaction(connect, subject, out):
    """Connect, time the greeting and the whole transaction."""
    t0 = time.monotonic()
    c = connect()
    t.defer(c.close)
    g = c.greeting()
    out["greeting"] = time.monotonic() - t0
    out["greeting_code"] = g.code
    c.ehlo()
    replies = c.mail_transaction("sender@example.org", ["user@test.example"],
                                 make_message(subject))
    out["codes"] = [r.code for r in replies]
    out["total"] = time.monotonic() - t0
    c.cmd("QUIT")


CASES = [
    ("stalled PTR", "$DELAY %s 60\n" % rev, "unknown"),
    ("SERVFAIL PTR", "$SERVFAIL %s\n" % rev, "unknown"),
    ("control: PTR answers", "", "mail.example.org"),
]

for kind, extra, want in CASES:
    with t.case(kind):
        pf.clear_mail()
        pf.mark()
        bs, nsport = start(extra)
        slow = [{} for _ in range(3)]
        threads = [threading.Thread(target=transaction, args=(
            lambda: ns.client(ns.host_addr, nsport, timeout=DNS_TIMEOUT * 4), "%s %d" % (kind, i), slow[i]))
            for i in range(3)]
        for th in threads:
            th.start()
        time.sleep(0.3)   # the slow sessions now wait for their names
        fast = {}
        transaction(lambda: SmtpClient("127.0.0.1", bs.port, timeout=5), "fast during %s" % kind, fast)
        for th in threads:
            th.join(DNS_TIMEOUT * 5)
        log("# %s: slow %s, fast %s" % (kind, slow, fast))
        for i, s in enumerate(slow):
            t.check("%s #%d: greeting 220 in under 1s" % (kind, i),
                    s.get("greeting_code") == 220 and s["greeting"] < 1.0, s)
            t.check("%s #%d: delivered (250 to the dot)" % (kind, i),
                    s.get("codes", [None])[-1:] == [250], s)
            t.check("%s #%d: whole transaction within the DNS timeout + 2s" % (kind, i),
                    s.get("total", 99) < DNS_TIMEOUT + 2, s)
            if kind == "stalled PTR":
                # the name is needed before MAIL goes to the backend (XCLIENT
                # NAME): the session waited for the query's timeout, so the
                # stall was real
                t.check("%s #%d: it did wait for the lookup (about the DNS timeout)" % (kind, i),
                        s.get("total", 0) >= DNS_TIMEOUT * 0.8, s)
        t.check("%s: the loopback client's transaction took under 1s" % kind,
                fast.get("codes", [None])[-1:] == [250] and fast["total"] < 1.0, fast)
        msgs = pf.wait_for_mail(4, 10)
        names = sorted(received_name(m) for m in msgs)
        t.check("%s: the namespace clients are %s, the loopback one localhost" % (kind, want),
                names == sorted(["localhost"] + [want] * 3), names)
        t.check("%s: Postfix sees the namespace clients as %s[%s] (XCLIENT)" % (kind, want, ns.addr),
                pf.wait_log(r"client=%s\[%s\]" % (re.escape(want), re.escape(ns.addr)), 5, count=3),
                pf.log(True)[-2000:])
        bs.stop()

t.done()

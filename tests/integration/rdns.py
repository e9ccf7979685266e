#!/usr/bin/python3
"""rdns: the client's name is looked up (PTR) and kept only when it
resolves back to the client's address (forward-confirmed). It appears in
backstop's Received header and reaches Postfix through XCLIENT NAME;
otherwise both say unknown. The client runs in a network namespace, the
names come from the test's own DNS server (tests/lib/dns_server.py)."""
import re
from harness import *

t = Test("rdns", need=("postfix", "swaks", "ip"))
pf = t.postfix()
ns = t.netns()
rev = ".".join(reversed(ns.addr.split("."))) + ".in-addr.arpa."
arpa = ".".join(ns.addr.split(".")[2::-1]) + ".in-addr.arpa."


def dns_server(records):
    zone = os.path.join(t.tmpdir("dns%d" % free_port()), "rdns.zone")
    with open(zone, "w") as f:
        f.write("example.org. 60 IN SOA ns.example.org. hostmaster.example.org. 1 60 60 600 30\n")
        f.write("%s 60 IN SOA ns.example.org. hostmaster.example.org. 1 60 60 600 30\n" % arpa)
        f.write(records)
    return t.dns_server(zone)


CASES = [
    ("forward-confirmed", "%s 60 IN PTR mail.example.org.\nmail.example.org. 60 IN A %s\n" % (rev, ns.addr),
     "mail.example.org"),
    ("PTR name that does not resolve back", "%s 60 IN PTR liar.example.org.\nliar.example.org. 60 IN A 192.0.2.1\n" % rev,
     "unknown"),
    ("no PTR", "", "unknown"),
]

for name, records, want in CASES:
    with t.case(name):
        pf.clear_mail()
        pf.mark()
        dport = dns_server(records)
        port = free_port(ns.host_addr)
        bs = t.backstop({"backend": {"address": pf.address},
                         "server": {"listen": "%s:%d" % (ns.host_addr, port)},
                         "dns": {"servers": "127.0.0.1:%d" % dport, "reverse_lookup": "yes"}})
        rc, out = swaks(ns.host_addr, port, "--from", "sender@example.org", "--to", "user@test.example",
                        "--header", "Subject: rdns %s" % name, netns=ns)
        t.check("%s: delivered" % name, rc == 0, out)
        msgs = pf.wait_for_mail(1)
        rcv = re.sub(r"\s+", " ", backstop_received(msgs[0]) or "") if msgs else ""
        t.check("%s: backstop's Received says (%s [%s])" % (name, want, ns.addr),
                "(%s [%s])" % (want, ns.addr) in rcv, rcv)
        rx = r"client=%s\[%s\]" % (re.escape(want), re.escape(ns.addr))
        t.check("%s: Postfix logs client=%s[%s] (XCLIENT NAME)" % (name, want, ns.addr),
                pf.wait_log(rx), pf.log(True))
        bs.stop()

t.done()

#!/usr/bin/python3
"""Self-test of the harness against the real peers (no backstop needed):
Postfix in a temp dir with XCLIENT, smtp-sink, a dead port, a netns client.
Run: /usr/bin/python3 tests/lib/selftest.py"""
import os, socket, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *

t = Test("harness-selftest", need=("postfix", "smtp-sink", "swaks", "ip"), need_backstop=False)

with t.case("postfix delivers, logs, refuses unknown users"):
    t0 = time.monotonic()
    pf = t.postfix()
    log("# postfix started in %.2fs" % (time.monotonic() - t0))
    c = SmtpClient("127.0.0.1", pf.port)
    t.check_reply("postfix greeting", c.greeting(), 220)
    r = c.cmd("EHLO " + CLIENT_HELO)
    t.check("postfix offers XCLIENT", "XCLIENT" in r.text, r)
    r = c.cmd("XCLIENT ADDR=198.51.100.2 NAME=[UNAVAILABLE] HELO=mx.client.example PROTO=ESMTP")
    t.check_reply("XCLIENT accepted (new greeting)", r, 220)
    c.cmd("EHLO mx.client.example")
    rs = c.mail_transaction("a@example.org", ["user@test.example", "nobody@test.example"],
                            make_message("selftest"))
    t.check_reply("unknown user 550 5.1.1", rs[2], 550, "5.1.1")
    t.check_reply("queued", rs[-1], 250, "2.0.0")
    c.cmd("QUIT")
    msgs = pf.wait_for_mail(1)
    t.check("one message delivered", len(msgs) == 1, msgs)
    t.check("Received shows the XCLIENT address", "198.51.100.2" in msgs[0].headers("Received")[0], msgs[0].headers("Received"))
    t.check("log shows client=unknown[198.51.100.2]", pf.wait_log(r"client=unknown\[198\.51\.100\.2\]"), pf.log())
    t.check("queued_count 1", poll(lambda: pf.queued_count() == 1, 3))
    t0 = time.monotonic()
    pf.stop()
    t.check("postfix stopped", not wait_port("127.0.0.1", pf.port, 0.3))
    log("# postfix stopped in %.2fs" % (time.monotonic() - t0))

with t.case("smtp-sink dumps messages"):
    s = t.sink()
    rc, out = swaks("127.0.0.1", s.port, "--to", "x@example.org", "--from", "y@example.org")
    t.check("swaks to sink ok", rc == 0, out)
    msgs = s.wait_for(1)
    t.check("sink dumped one message", len(msgs) == 1 and b"X-Rcpt-Args: <x@example.org>" in msgs[0], msgs)
    s2 = t.sink("-r", "RCPT")
    c = SmtpClient("127.0.0.1", s2.port); c.greeting(); c.cmd("EHLO a.example.org")
    c.cmd("MAIL FROM:<a@example.org>")
    t.check_reply("sink -r RCPT gives 4xx", c.cmd("RCPT TO:<b@example.org>"), 4)

with t.case("dead port refuses"):
    p = dead_port()
    try:
        socket.create_connection(("127.0.0.1", p), 1).close(); ok = False
    except ConnectionRefusedError:
        ok = True
    t.check("dead port refused", ok)

with t.case("netns client reaches a host listener"):
    n = t.netns()
    ls = socket.socket(); ls.bind((n.host_addr, 0)); ls.listen(1)
    port = ls.getsockname()[1]
    s = n.socket(n.host_addr, port)
    a, peer = ls.accept()
    t.check("peer address is the netns client", peer[0] == n.addr, peer)
    a.close(); s.close(); ls.close()
    r = n.run(["ip", "-o", "-4", "addr"], stdout=subprocess.PIPE)
    t.check("netns has its address", n.addr in r.stdout.decode(), r.stdout)
    n2 = t.netns()
    t.check("second netns gets another /30", n2.host_addr != n.host_addr, (n.host_addr, n2.host_addr))
    n2.destroy(); n.destroy()
    t.check("netns removed", n.name not in subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE).stdout.decode())

t.done()

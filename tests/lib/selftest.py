#!/usr/bin/python3
"""Self-test of the harness against the real peers (no backstop needed):
Postfix in a temp dir with XCLIENT, smtp-sink, a dead port, a netns client.
Run: /usr/bin/python3 tests/lib/selftest.py"""
import os, random, socket, subprocess, sys, time
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


# ---- the harness's own rules: a run that should fail does fail

def mini(body, env=None, bin=None):
    """Run a small test script using the harness; returns (exit status, output)."""
    d = t.tmpdir("mini")
    path = os.path.join(d, "mini.py")
    with open(path, "w") as f:
        f.write("import sys, time\nfrom harness import *\n" + body)
    e = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
    e.pop("CI", None)
    if bin:
        e["BACKSTOP_BIN"] = bin
    e.update(env or {})
    r = subprocess.run(["/usr/bin/python3", path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=e, timeout=60)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def fake_backstop(script):
    """An executable standing in for backstop (a shell script)."""
    d = t.tmpdir("fake")
    path = os.path.join(d, "fake-backstop-%d" % random.randint(0, 1 << 30))
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + script)
    os.chmod(path, 0o755)
    return path


NB = 'need_backstop=False'
with t.case("skips: a failure under CI=true unless unfixable"):
    body = 't = Test("m", %s)\nt.skip("peer not installed")\n' % NB
    rc, out = mini(body)
    t.check("without CI: exit 77", rc == 77, (rc, out))
    rc, out = mini(body, {"CI": "true"})
    t.check("CI=true: exit 1, says why", rc == 1 and "skipped under CI=true" in out, (rc, out))
    rc, out = mini('t = Test("m", %s)\nt.skip("no IPv6 in this kernel", unfixable=True)\n' % NB,
                   {"CI": "true"})
    t.check("CI=true, unfixable: exit 77", rc == 77, (rc, out))
    rc, out = mini('t = Test("m", %s)\nt.check("x", False)\nt.skip("later")\n' % NB)
    t.check("a skip after a failed check: exit 1", rc == 1, (rc, out))

with t.case("no check, an error, an exception: never a pass"):
    rc, out = mini('t = Test("m", %s)\nt.done()\n' % NB)
    t.check("zero checks: exit 1", rc == 1 and "no check ran" in out, (rc, out))
    rc, out = mini('t = Test("m", %s)\nt.check("x", True)\nt.error("fixture broke")\n' % NB)
    t.check("error(): exit 99", rc == 99, (rc, out))
    rc, out = mini('t = Test("m", %s)\nt.check("x", True)\nraise RuntimeError("boom")\n' % NB)
    t.check("uncaught exception after a pass: exit 1", rc == 1, (rc, out))
    rc, out = mini('t = Test("m", %s)\nt.check("x", True)\nsys.exit(0)\n' % NB)
    t.check("sys.exit(0) without done(): exit 1", rc == 1, (rc, out))
    rc, out = mini('t = Test("m", %s)\nt.dns_server("/nonexistent.zone")\nt.check("x", True)\nt.done()\n' % NB)
    t.check("a DNS server that does not start: exit 99", rc == 99, (rc, out))

with t.case("the watchdog cannot be swallowed"):
    t0 = time.monotonic()
    rc, out = mini('t = Test("m", %s, watchdog=1)\n'
                   'for i in range(3):\n'
                   '    try:\n        time.sleep(3)\n'
                   '    except Exception:\n        pass\n'
                   't.check("x", True)\nt.done()\n' % NB)
    t.check("except Exception does not catch it: exit 1 at once (%.1fs)" % (time.monotonic() - t0),
            rc == 1 and "watchdog expired" in out and time.monotonic() - t0 < 5, (rc, out))
    # the second alarm comes watchdog_grace (default 15) seconds after the first
    t0 = time.monotonic()
    rc, out = mini('t = Test("m", %s, watchdog=1, watchdog_grace=1)\n'
                   'while True:\n'
                   '    try:\n        time.sleep(3)\n'
                   '    except BaseException:\n        pass\n' % NB)
    t.check("even except BaseException: exit 1 after the second alarm (%.1fs)" % (time.monotonic() - t0),
            rc == 1 and "killed by signal" in out and time.monotonic() - t0 < 10, (rc, out))

with t.case("backstop fixture: exits and sanitizer reports fail"):
    gone = fake_backstop('echo "backstop: listening on 127.0.0.1:1"\nexit 0\n')
    rc, out = mini('t = Test("m")\nt.check("x", True)\n'
                   'with t.case("start"):\n    t.backstop({})\nt.done()\n', bin=gone)
    t.check("a backstop that exits after 'listening on' did not start", rc == 1
            and "backstop did not start (exited" in out, (rc, out))
    asan = fake_backstop('echo "backstop: listening on 127.0.0.1:1"\n'
                         'echo "==1==ERROR: AddressSanitizer: heap-use-after-free"\nexec sleep 60\n')
    rc, out = mini('t = Test("m")\nt.backstop({})\nt.check("x", True)\nt.done()\n', bin=asan)
    t.check("a sanitizer report seen only at kill() fails", rc == 1
            and "FAIL: no sanitizer report" in out, (rc, out))
    asan1 = fake_backstop('echo "runtime error: signed integer overflow"\nexit 1\n')
    rc, out = mini('t = Test("m")\nrc, _ = t.run_backstop(["-t"])\nt.check("exit 1", rc == 1)\nt.done()\n',
                   bin=asan1)
    t.check("run_backstop: exit 1 with a sanitizer report fails", rc == 1
            and "FAIL: no sanitizer report from backstop -t" in out, (rc, out))

t.done()

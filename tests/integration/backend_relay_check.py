#!/usr/bin/python3
"""[backend] relay_check (review12): under identity = xforward or none (or
auto resolving to XFORWARD or to nothing) the backend's access control sees
backstop's own address; XFORWARD only overrides Postfix's logging
attributes. Postfix trusting that address (mynetworks = 127.0.0.0/8, as in
most setups) would relay for any client. The start-up probe asks the
backend, as backstop, for RCPT TO:<...@relay-check.invalid>: accepted means
an ERROR naming the fix and 451 4.7.1 for every client RCPT. A client
192.0.2.9 comes in through a PROXY header (no netns needed)."""
import os, socket, struct, subprocess
from harness import *

t = Test("backend_relay_check", need=("postfix",))
OPEN_RELAY_RX = r"error: backend probe: backend 127\.0\.0\.1:\d+ relays for backstop's own address .* while %s"
GOOD_RX = r"relay check: backend 127\.0\.0\.1:\d+ refused a foreign recipient"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
# relays to any domain for mynetworks = 127.0.0.0/8; relayed mail queues for
# a loopback port nobody answers on (no DNS, no traffic out)
RELAYING = ("smtpd_authorized_xforward_hosts = 127.0.0.0/8\n"
            "default_transport = smtp:[127.0.0.1]:%d\n" % free_port())


def v2_header(src, sport, dst="127.0.0.1", dport=25):
    block = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    return V2_SIG + bytes([0x21, 0x11]) + struct.pack(">H", len(block)) + block


def start(pf, **backend):
    bs = t.backstop({"backend": dict({"address": pf.address, "relay_check": "on"}, **backend),
                     "server": {"proxy_protocol": "on", "proxy_trusted": "127.0.0.1"},
                     "metrics": {"listen": "127.0.0.1:%d" % free_port()}})
    bs.metrics_port = int(bs.sections["metrics"]["listen"].rsplit(":", 1)[1])
    return bs


def health(bs):
    """(status, body) of GET /health"""
    status, _, body = http_get(bs.metrics_port, "/health")
    return status, body


def client_rcpt(bs, rcpt):
    """MAIL and RCPT from 192.0.2.9; the RCPT reply"""
    s = socket.create_connection(("127.0.0.1", bs.port), timeout=10)
    s.sendall(v2_header("192.0.2.9", 40009))
    c = SmtpClient(sock=s, timeout=10)
    c.greeting(); c.ehlo()
    r1 = c.cmd("MAIL FROM:<spammer@example.net>")
    r2 = c.cmd("RCPT TO:<%s>" % rcpt)
    log("# MAIL %s / RCPT %s" % (r1, r2))
    if r2.code == 250:   # what a spammer would do next
        r3 = c.cmd("DATA")
        if r3.code == 354:
            s.sendall(b"Subject: relay test\r\n\r\nbody\r\n.\r\n")
            log("# DATA %s" % c.reply())
    c.cmd("QUIT")
    c.close()
    return r2


pf = t.postfix(extra_main=RELAYING)   # offers XCLIENT and XFORWARD

with t.case("identity = xforward, backend relays for 127.0.0.0/8: ERROR, RCPT 451 4.7.1, nothing relayed"):
    bs = start(pf, identity="xforward")
    t.check("the probe logs the open relay with the fix",
            bs.wait_log(OPEN_RELAY_RX % r"identity = xforward: any client could relay.*Fix: use identity = "
                        r"xclient or proxy", timeout=10), bs.log()[-2000:])
    pf.mark()
    r = client_rcpt(bs, "victim@elsewhere.example.com")
    t.check("foreign RCPT refused 451 4.7.1", r.code == 451 and "4.7.1" in r.text, r)
    r = client_rcpt(bs, "user@test.example")
    t.check("local RCPT refused too (the state refuses all mail)", r.code == 451, r)
    st, body = health(bs)
    t.check("/health 503 naming the open relay (a balancer skips this member)",
            st == 503 and "relays for backstop's own address" in body, (st, body))
    time.sleep(0.5)
    t.check("nothing queued at the backend", pf.queued_count() == 0, pf.queued_count())
    bs.stop()

with t.case("relay_check = off: the documented opt-out lets the RCPT through"):
    pf.mark()
    bs = start(pf, identity="xforward", relay_check="off")
    bs.wait_log(r"backend probe: EHLO answered", timeout=10)
    time.sleep(0.3)
    t.check("no relay-check ERROR", not re.search(r"relays for backstop's own address", bs.log()), bs.log()[-1500:])
    r = client_rcpt(bs, "victim@elsewhere.example.com")
    t.check("RCPT reaches the (open) backend: 250", r.code == 250, r)
    t.check("and the message is relayed (queued at the backend)", poll(lambda: pf.queued_count() >= 1, 5),
            pf.queued_count())
    bs.stop()

with t.case("identity = xclient: no check, no error; Postfix itself refuses the foreign domain"):
    bs = start(pf, identity="xclient")
    bs.wait_log(r"backend probe: EHLO answered", timeout=10)
    time.sleep(0.3)
    t.check("no relay-check ERROR", not re.search(r"relays for backstop's own address", bs.log()), bs.log()[-1500:])
    t.check("no relay check sent (the backend sees the client)", "relay check" not in bs.log(), bs.log()[-1500:])
    r = client_rcpt(bs, "victim@elsewhere.example.com")
    t.check("Postfix refuses relaying for 192.0.2.9 (454/554)", r.code in (454, 554), r)
    bs.stop()

pf_xfwd = t.postfix(extra_main=RELAYING + "smtpd_authorized_xclient_hosts =\n")   # XFORWARD only
with t.case("identity = auto, backend offers XFORWARD but not XCLIENT: ERROR, 451 4.7.1"):
    bs = start(pf_xfwd)
    t.check("the probe logs the open relay under auto",
            bs.wait_log(OPEN_RELAY_RX % r"identity = auto \(the backend offers XFORWARD but not XCLIENT\)",
                        timeout=10), bs.log()[-2000:])
    r = client_rcpt(bs, "victim@elsewhere.example.com")
    t.check("foreign RCPT refused 451 4.7.1", r.code == 451 and "4.7.1" in r.text, r)
    bs.stop()

pf_strict = t.postfix(extra_main=RELAYING + "mynetworks =\n")   # relay denied to backstop
with t.case("identity = xforward, backend denies relay to backstop's address: works, no error"):
    bs = start(pf_strict, identity="xforward")
    t.check("relay check passed", bs.wait_log(GOOD_RX, timeout=10), bs.log()[-2000:])
    t.check("no relay-check ERROR", not re.search(r"relays for backstop's own address", bs.log()), bs.log()[-1500:])
    r = client_rcpt(bs, "victim@elsewhere.example.com")
    t.check("Postfix refuses the foreign domain (454/554)", r.code in (454, 554), r)
    r = client_rcpt(bs, "user@test.example")
    t.check("a local recipient is accepted", r.code == 250, r)
    t.check("and delivered", len(pf_strict.wait_for_mail(1, user="user")) == 1)
    bs.stop()

with t.case("the backend fixed, then a reload: mail is accepted again"):
    bs = start(pf, identity="xforward")
    t.check("open relay seen", bs.wait_log(OPEN_RELAY_RX % "identity = xforward", timeout=10), bs.log()[-1500:])
    # as if the operator fixed the backend: the same backstop now reaches the strict one
    bs.sections["backend"]["address"] = pf_strict.address
    bs.write_config()
    bs.mark()
    bs.signal(signal.SIGHUP)
    t.check("the reload's probe says the backend no longer relays",
            bs.wait_log(r"relay check: backend \S+ no longer relays for backstop's own address", timeout=10),
            bs.log()[-1500:])
    r = client_rcpt(bs, "user2@test.example")
    t.check("a local recipient is accepted again", r.code == 250, r)
    t.check("/health 200 again", health(bs) == (200, "ok\n"), health(bs))
    bs.stop()

pf_fix = t.postfix(extra_main=RELAYING)
with t.case("without a reload: the 10 s re-probe finds the backend fixed; /health 200, mail accepted"):
    bs = start(pf_fix, identity="xforward")
    t.check("open relay seen", bs.wait_log(OPEN_RELAY_RX % "identity = xforward", timeout=10), bs.log()[-1500:])
    t.check("/health 503", health(bs)[0] == 503, health(bs))
    time.sleep(11)   # one re-probe while it still relays
    t.check("the error is logged once, not at each re-probe",
            len(re.findall(r"error: backend probe: backend \S+ relays for backstop's own address", bs.log())) == 1, bs.log()[-3000:])
    # the operator fixes the backend (no longer trusts backstop's address) and reloads Postfix only
    pf_fix.extra_main = RELAYING + "mynetworks =\n"
    pf_fix._write()
    subprocess.run(["postfix", "-c", os.path.join(pf_fix.T, "conf"), "reload"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    t.check("a re-probe says the backend no longer relays",
            bs.wait_log(r"relay check: backend \S+ no longer relays for backstop's own address", timeout=15),
            bs.log()[-1500:])
    t.check("/health 200 again without a reload", poll(lambda: health(bs) == (200, "ok\n"), 5), health(bs))
    r = client_rcpt(bs, "user@test.example")
    t.check("a local recipient is accepted", r.code == 250, r)
    bs.stop()

t.done()

#!/usr/bin/python3
"""backend_limits: clients cannot pin the backend's processes (issue "Fix
first", item 4), in front of a real Postfix 3.7.

- [backend] idle_timeout: 20 sessions from one address that each send MAIL,
  then RSET, and idle held 20 backend connections for as long as they
  liked. Now each backend connection closes idle_timeout after the
  transaction ended, and the next MAIL reconnects (every session then
  delivers a message).
- [backend] max_connections: a global cap; a MAIL that needs one more
  backend connection gets 421 4.3.2 and the client is disconnected; a
  connection freed by QUIT or by the idle timeout makes room again.
- [limits] max_connections_per_ip counts IPv6 clients per /64
  (ipv6_prefix): 16 addresses of one /64 in a network namespace are one
  client; with ipv6_prefix = 128 each is its own.
Backend connections are counted in /proc/net/tcp{,6} (established sockets
whose peer is Postfix's port)."""
import socket
from harness import *
from harness import _libc, CLONE_NEWNET

t = Test("backend_limits", need=("postfix", "ip"), watchdog=150)


def backend_conns(port):
    """Established TCP connections to 127.0.0.1:port (backstop's side)."""
    n = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                rem, st = fields[2], fields[3]
                if st == "01" and int(rem.split(":")[1], 16) == port:
                    n += 1
    return n


def wait_conns(port, want, timeout):
    return poll(lambda: backend_conns(port) == want, timeout)


pf = t.postfix()

with t.case("idle_timeout: MAIL + RSET + idle no longer holds backend connections"):
    bs = t.backstop({"backend": {"address": pf.address, "idle_timeout": "1500ms"},
                     "limits": {"max_connections_per_ip": "50"}})
    clients = []
    for i in range(20):
        c = bs.client()
        c.ehlo()
        t.check_reply("session %d: MAIL 250" % i, c.cmd("MAIL FROM:<sender%d@example.org>" % i), 250)
        t.check_reply("session %d: RSET 250" % i, c.cmd("RSET"), 250)
        clients.append(c)
    n_busy = backend_conns(pf.port)
    t.check("20 backend connections right after MAIL + RSET (%d)" % n_busy, n_busy == 20, n_busy)
    t0 = time.monotonic()
    t.check("all closed after idle_timeout (1.5 s)", wait_conns(pf.port, 0, 5), backend_conns(pf.port))
    log("# backend connections gone after %.2f s" % (time.monotonic() - t0))
    t.check("the log says why", bs.wait_log(r"backend connection idle for 1500ms outside a transaction; closing it",
                                            count=20), bs.log()[-1500:])
    t.check("the clients are still connected", all(not c.closed_within(0.05) for c in clients))
    pf.clear_mail()
    for i, c in enumerate(clients):
        rs = c.mail_transaction("sender%d@example.org" % i, ["user@test.example"], make_message("again %d" % i))
        t.check_reply("session %d: the next transaction reconnects and is accepted" % i, rs[-1], 250)
    t.check("20 messages delivered", len(pf.wait_for_mail(20, timeout=10)) == 20, len(pf.messages()))
    t.check_reply("session 0: MAIL again", clients[0].cmd("MAIL FROM:<a@example.org>"), 250)
    t.check_reply("session 0: RCPT", clients[0].cmd("RCPT TO:<user@test.example>"), 250)
    t.check("the 19 idle ones close", wait_conns(pf.port, 1, 5), backend_conns(pf.port))
    time.sleep(2.0)
    t.check("a session inside a transaction keeps its connection past idle_timeout",
            backend_conns(pf.port) == 1, backend_conns(pf.port))
    rs = clients[0].cmd("DATA")
    t.check_reply("and its transaction goes on (DATA 354)", rs, 354)
    clients[0].send(dot_stuff(make_message("kept")) + b".\r\n")
    t.check_reply("accepted", clients[0].reply(), 250)
    for c in clients:
        c.cmd("QUIT")
        c.close()
    bs.stop()

with t.case("max_connections: 421 4.3.2 at MAIL over the cap, room again after QUIT or idle"):
    wait_conns(pf.port, 0, 5)
    bs = t.backstop({"backend": {"address": pf.address, "max_connections": "3", "idle_timeout": "1s"}})
    held = []
    for i in range(3):
        c = bs.client()
        c.ehlo()
        t.check_reply("session %d: MAIL 250" % i, c.cmd("MAIL FROM:<s%d@example.org>" % i), 250)
        held.append(c)
    c = bs.client()
    c.ehlo()
    r = c.cmd("MAIL FROM:<fourth@example.org>")
    t.check_reply("fourth session: MAIL 421 4.3.2", r, 421, "4.3.2")
    t.check("fourth session: disconnected", c.closed_by_peer(3))
    t.check("the log names the limit", bs.wait_log(r"3 open \(\[backend\] max_connections = 3\)"), bs.log()[-1500:])
    t.check("still 3 backend connections", backend_conns(pf.port) == 3, backend_conns(pf.port))
    held[0].cmd("QUIT")
    t.check("QUIT frees one", wait_conns(pf.port, 2, 3), backend_conns(pf.port))
    c = bs.client()
    c.ehlo()
    t.check_reply("a new session now gets MAIL 250", c.cmd("MAIL FROM:<fifth@example.org>"), 250)
    held[1].cmd("RSET")      # out of its transaction: idle closes it
    t.check("the idle one is closed after idle_timeout", wait_conns(pf.port, 2, 4), backend_conns(pf.port))
    d = bs.client()
    d.ehlo()
    t.check_reply("and its place is taken by another session", d.cmd("MAIL FROM:<sixth@example.org>"), 250)
    bs.stop()


def socket_from(ns, src, host, port, timeout=5.0):
    """A TCP socket made in namespace ns, bound to src, connected to host:port."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open("/run/netns/%s" % ns.name, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError("setns")
        try:
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        finally:
            _libc.setns(own, CLONE_NEWNET)
    finally:
        os.close(own)
        os.close(target)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect((host, port))
    return s


with t.case("max_connections_per_ip counts IPv6 clients per /64"):
    ns = t.netns(ipv6=True)
    net = ipaddress.ip_network(ns.net6)
    sources = [str(net[k]) for k in range(3, 19)]      # ::3 .. ::12 (hex)
    for a in sources:
        ns.run(["ip", "-6", "addr", "add", a + "/64", "dev", ns.veth_ns, "nodad"], check=True)
    for prefix, allowed in (("64", 3), ("128", len(sources))):
        port = free_port(ns.host_addr6)
        bs = t.backstop({"backend": {"address": pf.address},
                         "server": {"listen": "[%s]:%d" % (ns.host_addr6, port)},
                         "limits": {"max_connections_per_ip": "3", "ipv6_prefix": prefix}})
        codes, socks = [], []
        for a in sources:
            s = socket_from(ns, a, ns.host_addr6, port)
            socks.append(s)
            c = SmtpClient(sock=s, timeout=5)
            t.defer(c.close)
            codes.append(c.greeting().code)
        t.check("ipv6_prefix = %s: %d of %d addresses of one /64 greeted, the rest 421" % (prefix, allowed, len(sources)),
                codes == [220] * allowed + [421] * (len(sources) - allowed), codes)
        if prefix == "64":
            t.check("the refusal names the /64 count", bs.wait_log(r"counted per /64"), bs.log()[-1000:])
        for s in socks:
            s.close()
        bs.stop()

t.done()

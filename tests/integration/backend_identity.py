#!/usr/bin/python3
"""backend_identity: [backend] identity (issue 12), how the backend learns
the client's address.

- proxy: a real Postfix with smtpd_upstream_proxy_protocol = haproxy logs
  the namespace client's address (the PROXY v2 header came first), and
  backstop's start-up probe gets through that port with a LOCAL header.
- none: the same client reaches a plain Postfix port as 127.0.0.1, and
  no XCLIENT is sent although Postfix offers it.
- xclient / xforward are required: smtp-sink without XCLIENT (-C) or
  without XFORWARD (-F) gets no MAIL, the client gets 451 4.3.0, the log
  says what to fix; xforward against a sink that offers both sends
  XFORWARD and never XCLIENT.
- transparent: three namespaces (dependencies-2.md 3.4): a client
  (198.51.100.2), backstop in a proxy namespace with the policy routing
  of README.md, and Postfix in a backend namespace whose route to the
  client goes through the proxy; Postfix logs the client's own address.
  backstop runs as nobody there: the privilege drop keeps CAP_NET_ADMIN.
"""
import os
import re
import subprocess
from harness import *

t = Test("backend_identity", watchdog=170, need=("postfix", "smtp-sink", "swaks", "ip", "nft"))


def swaks_mail(host, port, subject, netns):
    return swaks(host, port, "--from", "sender@example.org", "--to", "user@test.example",
                 "--header", "Subject: %s" % subject, netns=netns)


ns = t.netns()
log("# client %s -> backstop on %s" % (ns.addr, ns.host_addr))


def backstop_for(backend, identity, **extra):
    port = free_port(ns.host_addr)
    sections = {"backend": dict({"address": backend, "identity": identity}, **extra),
                "server": {"listen": "%s:%d" % (ns.host_addr, port)}}
    bs = t.backstop(sections)
    bs.port, bs.host = port, ns.host_addr
    return bs


with t.case("identity = proxy: Postfix with smtpd_upstream_proxy_protocol = haproxy"):
    pf = t.postfix(proxy_protocol=True)
    pf.mark()
    bs = backstop_for(pf.address, "proxy")
    t.check("proxy: the start-up probe passes the PROXY port (LOCAL header)",
            bs.wait_backend_known(10), bs.log()[-2000:])
    rc, out = swaks_mail(bs.host, bs.port, "identity proxy", ns)
    t.check("proxy: swaks from the namespace exits 0", rc == 0, out)
    msgs = pf.wait_for_mail(1)
    t.check("proxy: delivered", len(msgs) == 1, msgs)
    t.check("proxy: Postfix logs connect from ...[%s]" % ns.addr,
            pf.wait_log(r"connect from \S*\[%s\]" % re.escape(ns.addr)), pf.log(True))
    t.check("proxy: Postfix logs client=...[%s]" % ns.addr,
            pf.wait_log(r"client=\S*\[%s\]" % re.escape(ns.addr)), pf.log(True))
    t.check("proxy: no PROXY header error in Postfix's log",
            "haproxy read" not in pf.log(True), pf.log(True))
    t.check("proxy: nothing reached Postfix as 127.0.0.1 but the probe",
            not re.search(r"client=\S*\[127\.0\.0\.1\]", pf.log(True)), pf.log(True))
    if msgs:
        top = re.sub(r"\s+", " ", msgs[0].headers("Received")[0])
        t.check("proxy: Postfix's Received names the client's address",
                "[%s]" % ns.addr in top, top)
    t.check("proxy: no XCLIENT or XFORWARD sent",
            not re.search(r"backend <- (XCLIENT|XFORWARD)", bs.log()), bs.log()[-2000:])
    bs.stop()

with t.case("identity = none: the backend sees backstop"):
    pf = t.postfix()
    pf.mark()
    bs = backstop_for(pf.address, "none")
    rc, out = swaks_mail(bs.host, bs.port, "identity none", ns)
    t.check("none: swaks exits 0", rc == 0, out)
    msgs = pf.wait_for_mail(1)
    t.check("none: delivered", len(msgs) == 1, msgs)
    t.check("none: Postfix logs client=...[127.0.0.1]",
            pf.wait_log(r"client=\S*\[127\.0\.0\.1\]"), pf.log(True))
    t.check("none: Postfix never logs the client's address", ns.addr not in pf.log(True), pf.log(True))
    t.check("none: no XCLIENT although Postfix offers it",
            "backend <- XCLIENT" not in bs.log(), bs.log()[-2000:])
    bs.stop()

with t.case("identity = xclient against smtp-sink without XCLIENT: 451 4.3.0"):
    sink = t.sink("-C")
    bs = t.backstop({"backend": {"address": sink.address, "identity": "xclient"}})
    c = bs.client()
    c.ehlo()
    r = c.cmd("MAIL FROM:<sender@example.org>")
    t.check_reply("xclient: MAIL gets 451 4.3.0", r, 451, "4.3.0")
    t.check("xclient: still in sync: RSET 250", c.cmd("RSET").code == 250)
    c.cmd("QUIT")
    t.check("xclient: the log says what to fix",
            bs.wait_log(r"does not offer XCLIENT but \[backend\] identity = xclient "
                        r"\(allow backstop in smtpd_authorized_xclient_hosts\)", 2), bs.log()[-2000:])
    t.check("xclient: no MAIL reached the sink", "backend <- MAIL" not in bs.log(), bs.log()[-2000:])
    bs.stop()

with t.case("identity = xforward: required, and XFORWARD rather than XCLIENT"):
    sink = t.sink("-F")
    bs = t.backstop({"backend": {"address": sink.address, "identity": "xforward"}})
    c = bs.client()
    c.ehlo()
    r = c.cmd("MAIL FROM:<sender@example.org>")
    t.check_reply("xforward, not offered: MAIL gets 451 4.3.0", r, 451, "4.3.0")
    c.cmd("QUIT")
    t.check("xforward, not offered: the log says what to fix",
            bs.wait_log(r"does not offer XFORWARD but \[backend\] identity = xforward", 2), bs.log()[-2000:])
    bs.stop()
    sink = t.sink()   # offers XCLIENT and XFORWARD
    bs = t.backstop({"backend": {"address": sink.address, "identity": "xforward"}})
    c = bs.client()
    c.ehlo()
    rs = c.mail_transaction("sender@example.org", ["user@test.example"], make_message("identity xforward"))
    t.check_reply("xforward: relayed", rs[-1], 250)
    c.cmd("QUIT")
    t.check("xforward: XFORWARD ADDR=127.0.0.1 sent before MAIL",
            bs.wait_log(r"backend <- XFORWARD .*ADDR=127\.0\.0\.1", 2), bs.log()[-2000:])
    t.check("xforward: never XCLIENT, although the sink offers it",
            "backend <- XCLIENT" not in bs.log(), bs.log()[-2000:])
    bs.stop()


# ------------------------------------------------------------ transparent

class TransparentBed:
    """dependencies-2.md 3.4: client, proxy and backend namespaces joined by
    veth pairs through the proxy, addresses private to them (so nothing
    clashes with the host's or a parallel test's), and 3.3's policy
    routing inside the proxy namespace."""

    CLIENT, PROXY_C, PROXY_B, BACKEND = "198.51.100.2", "198.51.100.1", "192.0.2.1", "192.0.2.10"

    def __init__(self, test):
        tag = "%05x" % (os.getpid() & 0xfffff)
        self.client, self.proxy, self.backend = ("bti-c" + tag, "bti-p" + tag, "bti-b" + tag)
        test.defer(self.destroy)
        self.made = []
        for n in (self.client, self.proxy, self.backend):
            subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)   # a killed run's
            self.sh("ip", "netns", "add", n)
            self.made.append(n)
            self.sh("ip", "-n", n, "link", "set", "lo", "up")
        self.sh("ip", "link", "add", "c0", "netns", self.client, "type", "veth", "peer", "name", "pc",
                "netns", self.proxy)
        self.sh("ip", "link", "add", "b0", "netns", self.backend, "type", "veth", "peer", "name", "pb",
                "netns", self.proxy)
        for n, dev, addr in ((self.client, "c0", self.CLIENT), (self.proxy, "pc", self.PROXY_C),
                             (self.proxy, "pb", self.PROXY_B), (self.backend, "b0", self.BACKEND)):
            self.sh("ip", "-n", n, "addr", "add", addr + "/24", "dev", dev)
            self.sh("ip", "-n", n, "link", "set", dev, "up")
        self.sh("ip", "-n", self.client, "route", "add", "default", "via", self.PROXY_C)
        # the backend's replies to client addresses go back through the proxy
        self.sh("ip", "-n", self.backend, "route", "add", "default", "via", self.PROXY_B)

    @staticmethod
    def sh(*argv, stdin=None):
        r = subprocess.run(list(argv), input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(argv), r.stdout.decode(errors="replace")))
        return r.stdout.decode(errors="replace")

    def policy_routing(self):
        """README.md's recipe, in the proxy namespace: replies to a
        transparent socket are marked and delivered locally."""
        self.sh("ip", "netns", "exec", self.proxy, "nft", "-f", "-", stdin=(
            "table ip backstop_tproxy {\n"
            " chain prerouting {\n"
            "  type filter hook prerouting priority mangle; policy accept;\n"
            "  meta l4proto tcp socket transparent 1 meta mark set 0x1 accept\n"
            " }\n"
            "}\n").encode())
        self.sh("ip", "-n", self.proxy, "rule", "add", "fwmark", "0x1", "lookup", "100")
        self.sh("ip", "-n", self.proxy, "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100")

    def destroy(self):
        for n in self.made:
            for p in subprocess.run(["ip", "netns", "pids", n], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(p), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)
        self.made = []


def transparent_mail(bed, bs, port, subject):
    try:
        with SmtpClient(sock=netns_socket(bed.client, bed.PROXY_C, port, 10), timeout=10) as c:
            g = c.greeting()
            if g.code != 220:
                return [g]
            c.ehlo()
            return c.mail_transaction("sender@example.org", ["user@test.example"], make_message(subject))
    except (OSError, Closed) as e:
        return ["%s: %s" % (type(e).__name__, e)]


with t.case("identity = transparent: the backend sees the client's own address"):
    bed = TransparentBed(t)
    pf = Postfix(t.tmpdir("postfix-tp"), netns=bed.backend, host=bed.BACKEND,
                 extra_main="inet_interfaces = %s\n" % bed.BACKEND)
    t.defer(pf.stop)
    pf.start()
    pf.mark()
    port = free_port()
    conf = {"backend": {"address": pf.address, "identity": "transparent", "connect_timeout": "3s"},
            "server": {"listen": "%s:%d" % (bed.PROXY_C, port), "user": "nobody",
                       # as nobody: a spool directory it can write
                       "spool_dir": "/tmp"}}
    # without the policy routing the SYN-ACK never reaches backstop's socket:
    # the connect times out, the client gets 4xx, nothing is relayed
    bs = t.backstop(conf, netns=bed.proxy)
    t.check("transparent: started as root, runs as nobody keeping CAP_NET_ADMIN",
            bs.wait_log(r"running as user nobody .*keeping CAP_NET_ADMIN", 3), bs.log()[-2000:])
    rs = transparent_mail(bed, bs, port, "no policy routing")
    t.check("transparent, no policy routing: 4xx, not relayed",
            rs and isinstance(rs[-1], Reply) and rs[-1].code // 100 == 4, rs)
    t.check("transparent, no policy routing: the connect timed out",
            bs.wait_log(r"backend 192\.0\.2\.10:\d+ timed out", 5), bs.log()[-2000:])
    bed.policy_routing()
    rs = transparent_mail(bed, bs, port, "identity transparent")
    t.check_reply("transparent: relayed", rs[-1] if rs and isinstance(rs[-1], Reply) else None, 250)
    msgs = pf.wait_for_mail(1)
    t.check("transparent: delivered", len(msgs) == 1, msgs)
    t.check("transparent: Postfix logs connect from ...[%s]" % bed.CLIENT,
            pf.wait_log(r"connect from \S*\[%s\]" % re.escape(bed.CLIENT)), pf.log(True))
    t.check("transparent: Postfix logs client=...[%s]" % bed.CLIENT,
            pf.wait_log(r"client=\S*\[%s\]" % re.escape(bed.CLIENT)), pf.log(True))
    # (the start-up probe connects from it, as backstop's own connection)
    t.check("transparent: no mail came from the proxy's address %s" % bed.PROXY_B,
            not re.search(r"client=\S*\[%s\]" % re.escape(bed.PROXY_B), pf.log(True)), pf.log(True))
    t.check("transparent: no XCLIENT sent (Postfix offers it to 198.51.100.0/24)",
            "backend <- XCLIENT" not in bs.log(), bs.log()[-2000:])
    bs.stop()

with t.case("identity = transparent, an IPv6 client and an IPv4 backend: 451 4.3.0"):
    # a session that cannot get a transparent socket (here: no IPv4
    # address to bind for the client) is refused, never relayed as backstop
    ns6 = t.netns(ipv6=True)
    sink = t.sink()
    port = free_port()
    bs = t.backstop({"backend": {"address": sink.address, "identity": "transparent"},
                     "server": {"listen": "[%s]:%d" % (ns6.host_addr6, port)}})
    c = ns6.client(ns6.host_addr6, port)
    t.check("v6 client: greeted", c.greeting().code == 220)
    c.ehlo()
    r = c.cmd("MAIL FROM:<sender@example.org>")
    t.check_reply("v6 client, v4 backend: MAIL gets 451 4.3.0", r, 451, "4.3.0")
    c.cmd("QUIT")
    t.check("v6 client, v4 backend: the log says why",
            bs.wait_log(r"identity = transparent\): client %s is IPv6 but the backend is IPv4"
                        % re.escape(ns6.addr6), 2), bs.log()[-2000:])
    t.check("v6 client, v4 backend: nothing reached the sink", sink.files() == [], sink.files())
    bs.stop()

with t.case("identity = transparent without CAP_NET_ADMIN: refused at start-up"):
    bs = t.backstop({"backend": {"address": "127.0.0.1:%d" % free_port(), "identity": "transparent"}},
                    start=False)
    # capsh is not needed: setpriv drops the capability for the child
    r = subprocess.run(["setpriv", "--inh-caps=-all", "--bounding-set=-net_admin,-net_raw",
                        t.bin, "-t", "-c", bs.conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = r.stdout.decode(errors="replace")
    t.check("no CAP_NET_ADMIN: -t fails", r.returncode == 1, out)
    t.check("no CAP_NET_ADMIN: -t says IP_TRANSPARENT needs CAP_NET_ADMIN",
            re.search(r"identity = transparent: setsockopt\(IP_TRANSPARENT\): Operation not permitted: "
                      r"backstop needs CAP_NET_ADMIN", out), out)

t.done()

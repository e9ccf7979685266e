#!/usr/bin/python3
"""proxy_protocol: [server] proxy_protocol = on behind a real HAProxy (TCP
mode, send-proxy-v2 and send-proxy). A client in a network namespace
(198.51.100.x) connects to HAProxy, HAProxy to backstop on 127.0.0.1: the
client's address from the header is the one backstop logs (with "via
proxy"), puts in Received:, hands to Postfix with XCLIENT and checks SPF
against. HAProxy's health checks (v2 LOCAL) get the banner. Hostile peers
with raw sockets: a header from outside proxy_trusted, a malformed one, a
truncated one followed by silence, none at all: closed without a byte.
A header split over many writes works; a header and EHLO in one write work
(and are early talk under greet_pause). Apart from the PROXY protocol: an
HTTP request and a TLS ClientHello in plaintext are answered once and
disconnected (postscreen's non-SMTP command test)."""
import re
import ssl
import struct
from harness import *
from haproxy import HAProxy

t = Test("proxy_protocol", need=("postfix", "haproxy", "ip"))
pf = t.postfix()
ns = t.netns()
log("# client %s -> HAProxy on %s -> backstop on 127.0.0.1" % (ns.addr, ns.host_addr))

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, sport, dst="127.0.0.1", dport=25, command=0x21):
    block = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    return V2_SIG + bytes([command, 0x11]) + struct.pack(">H", len(block)) + block


V2_LOCAL = V2_SIG + b"\x20\x00\x00\x00"


def raw(host, port, sock=None):
    s = sock or socket.create_connection((host, port), timeout=5)
    t.defer(s.close)
    return s


def read_until_closed(s, timeout):
    """Everything the peer sends until it closes (or timeout): (bytes,
    closed, seconds)."""
    t0 = time.monotonic()
    data = b""
    s.settimeout(0.2)
    while time.monotonic() - t0 < timeout:
        try:
            b = s.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data, True, time.monotonic() - t0
        if not b:
            return data, True, time.monotonic() - t0
        data += b
    return data, False, time.monotonic() - t0


def read_reply(s, timeout=5):
    """One SMTP reply (all its lines) from a raw socket, or None."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                return None
            data += b
            lines = data.split(b"\r\n")
            if len(lines) > 1 and re.match(rb"^\d{3} ", lines[-2]):
                return data.decode("utf-8", "replace")
    except (socket.timeout, ConnectionResetError):
        return None


# the backstop behind HAProxy: it also listens on the namespace's side, so
# that a client outside proxy_trusted can reach it directly
direct_port = free_port(ns.host_addr)
bs = t.backstop({"backend": {"address": pf.address},
                 "server": {"proxy_protocol": "on", "proxy_trusted": "127.0.0.1/32",
                            "proxy_timeout": "1s"}}, start=False)
bs_port = bs.port
bs.sections["server"]["listen"] += " %s:%d" % (ns.host_addr, direct_port)
bs.write_config()
bs.start()
log("# backstop on 127.0.0.1:%d and %s:%d" % (bs_port, ns.host_addr, direct_port))


class ProtocolHAProxy(HAProxy):
    """haproxy -db in TCP mode: frontend v2 (send-proxy-v2, with smtpchk
    health checks) and v1 (send-proxy), both to backstop."""

    made = 0

    def __init__(self, backends):
        ProtocolHAProxy.made += 1
        HAProxy.__init__(self, t, "haproxy%d" % ProtocolHAProxy.made)
        self.ports = {}
        text = HAProxy.tcp_defaults("2s")
        for name, (server_port, send, check) in backends.items():
            p = free_port(ns.host_addr)
            self.ports[name] = p
            text += ["frontend fe_%s" % name, "    bind %s:%d" % (ns.host_addr, p),
                     "    default_backend be_%s" % name, "backend be_%s" % name]
            if check:
                text += ["    option smtpchk EHLO haproxy.test.example",
                         "    server bs 127.0.0.1:%d %s check inter 500ms" % (server_port, send)]
            else:
                text += ["    server bs 127.0.0.1:%d %s" % (server_port, send)]
        self.start(text)
        # listening in about 0.06 s (no connection to it: that would make one to backstop)
        def listening():
            out = subprocess.run(["ss", "-ltn"], stdout=subprocess.PIPE).stdout.decode()
            return all(":%d " % p in out for p in self.ports.values())
        if not poll(listening, 5):
            t.error("haproxy did not listen:\n%s" % self.log())


hap = ProtocolHAProxy({"v2": (bs_port, "send-proxy-v2", True), "v1": (bs_port, "send-proxy", False)})


def relay_through(version):
    pf.clear_mail()
    pf.mark()
    bs.mark()
    subject = "through HAProxy %s" % version
    rc, out = swaks(ns.host_addr, hap.ports[version], "--from", "sender@example.org",
                    "--to", "user@test.example", "--header", "Subject: %s" % subject, netns=ns)
    t.check("%s: swaks from the namespace through HAProxy exits 0" % version, rc == 0, out)
    msgs = pf.wait_for_mail(1)
    t.check("%s: delivered" % version, len(msgs) == 1, msgs)
    rx = r"connect from \[%s\]:\d+ to 127\.0\.0\.1:%d via proxy \[127\.0\.0\.1\]:\d+" % (
        re.escape(ns.addr), bs_port)
    t.check("%s: backstop logs the client's address, via proxy 127.0.0.1" % version,
            bs.wait_log(rx), bs.log(True)[-3000:])
    t.check("%s: Postfix logs client=...[%s] (XCLIENT)" % (version, ns.addr),
            pf.wait_log(r"client=\S*\[%s\]" % re.escape(ns.addr)), pf.log(True))
    t.check("%s: Postfix never logs client=...[127.0.0.1]" % version,
            not re.search(r"client=\S*\[127\.0\.0\.1\]", pf.log(True)), pf.log(True))
    if msgs:
        rcv = backstop_received(msgs[0]) or ""
        t.check("%s: backstop's Received names %s" % (version, ns.addr), "[%s]" % ns.addr in rcv, rcv)
        t.check("%s: backstop's Received does not name 127.0.0.1" % version, "127.0.0.1" not in rcv, rcv)


with t.case("v2 (send-proxy-v2) from a namespace client"):
    relay_through("v2")

with t.case("v1 (send-proxy) from a namespace client"):
    relay_through("v1")

with t.case("HAProxy's health checks (v2 LOCAL, then EHLO) get the banner"):
    bs.mark()
    t.check("backstop logs a LOCAL header from HAProxy's check",
            bs.wait_log(r"PROXY v2 LOCAL \(health check\) header from \[127\.0\.0\.1\]", 5),
            bs.log()[-3000:])
    time.sleep(1.2)   # two more check intervals
    t.check("HAProxy checked again (every 500ms)",
            bs.count_log(r"PROXY v2 LOCAL \(health check\)") >= 2, bs.log()[-3000:])
    t.check("HAProxy never marks backstop DOWN", "DOWN" not in hap.log(), hap.log()[-2000:])

with t.case("LOCAL from a raw socket: the banner, with the balancer's address"):
    bs.mark()
    s = raw("127.0.0.1", bs_port)
    s.sendall(V2_LOCAL)
    r = read_reply(s)
    t.check("LOCAL: 220 banner", r is not None and r.startswith("220 "), r)
    s.sendall(b"EHLO local.example\r\n")
    r = read_reply(s)
    t.check("LOCAL: EHLO answered 250", r is not None and r.startswith("250"), r)
    t.check("LOCAL: the session is 127.0.0.1's, not via proxy",
            bs.wait_log(r"connect from \[127\.0\.0\.1\]:\d+ to 127\.0\.0\.1:%d\n" % bs_port),
            bs.log(True))

with t.case("a valid header from a peer outside proxy_trusted: closed without a banner"):
    bs.mark()
    s = raw(None, None, sock=ns.socket(ns.host_addr, direct_port))
    s.sendall(v2_header("192.0.2.55", 40000))
    data, closed, took = read_until_closed(s, 3)
    t.check("untrusted: closed", closed, (data, took))
    t.check("untrusted: not a byte sent (no banner)", data == b"", data)
    t.check("untrusted: logged with the peer's address",
            bs.wait_log(r"refused \[%s\]:\d+ on %s:%d: not in \[server\] proxy_trusted" % (
                re.escape(ns.addr), re.escape(ns.host_addr), direct_port)), bs.log(True))
    t.check("untrusted: the header's address is not taken", "192.0.2.55" not in bs.log(True), bs.log(True))

hostile = [
    ("malformed v1 (leading zero)", b"PROXY TCP4 198.051.100.2 127.0.0.1 40000 25\r\n", "source address"),
    ("v1 without CRLF (bare LF)", b"PROXY TCP4 198.51.100.2 127.0.0.1 40000 25\n", "bare LF"),
    ("v1 oversized", b"PROXY UNKNOWN " + b"x" * 200, "107"),
    ("v2 with a bogus family", V2_SIG + b"\x21\x51\x00\x0c" + b"\x00" * 12, "family"),
    ("v2 length over the limit", V2_SIG + b"\x21\x11\xff\xff", "limit"),
    ("no header: SMTP at once", b"EHLO client.example.org\r\n", "no PROXY protocol header"),
    ("HTTP instead of a header", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "no PROXY protocol header"),
]
for name, payload, reason in hostile:
    with t.case(name):
        bs.mark()
        s = raw("127.0.0.1", bs_port)
        s.sendall(payload)
        data, closed, took = read_until_closed(s, 3)
        t.check("%s: closed at once (%.2fs)" % (name, took), closed and took < 0.9, (closed, took))
        t.check("%s: not a byte sent" % name, data == b"", data)
        t.check("%s: logged: bad PROXY protocol header (%s)" % (name, reason),
                bs.wait_log(r"bad PROXY protocol header from \[127\.0\.0\.1\]:\d+: .*%s" % re.escape(reason)),
                bs.log(True))

with t.case("truncated v2, then silence: closed after proxy_timeout"):
    bs.mark()
    s = raw("127.0.0.1", bs_port)
    s.sendall(v2_header("198.51.100.77", 40000)[:20])
    data, closed, took = read_until_closed(s, 4)
    t.check("truncated: closed after about 1s (%.2fs)" % took, closed and 0.8 <= took <= 2.5, (closed, took))
    t.check("truncated: not a byte sent", data == b"", data)
    t.check("truncated: logged", bs.wait_log(r"no complete PROXY protocol header from \[127\.0\.0\.1\]:\d+"
                                             r" within proxy_timeout \(1000ms; 20 bytes received\)"),
            bs.log(True))

with t.case("no header at all (a direct client waiting for the banner): closed after proxy_timeout"):
    s = raw("127.0.0.1", bs_port)
    data, closed, took = read_until_closed(s, 4)
    t.check("silent: closed without a banner after about 1s (%.2fs)" % took,
            closed and data == b"" and 0.8 <= took <= 2.5, (data, closed, took))

with t.case("a header split over many writes"):
    bs.mark()
    s = raw("127.0.0.1", bs_port)
    hdr = b"PROXY TCP4 192.0.2.77 127.0.0.1 40077 25\r\n"
    for i in range(len(hdr)):
        s.sendall(hdr[i:i + 1])
        time.sleep(0.01)
    r = read_reply(s)
    t.check("split v1: 220 banner", r is not None and r.startswith("220 "), r)
    s.sendall(b"EHLO client.example.org\r\n")
    r = read_reply(s)
    t.check("split v1: EHLO answered 250", r is not None and r.startswith("250"), r)
    t.check("split v1: the header's address is the client",
            bs.wait_log(r"connect from \[192\.0\.2\.77\]:40077 to 127\.0\.0\.1:%d via proxy" % bs_port),
            bs.log(True))
    bs.mark()
    s = raw("127.0.0.1", bs_port)
    hdr = v2_header("192.0.2.78", 40078)
    for i in range(0, len(hdr), 3):
        s.sendall(hdr[i:i + 3])
        time.sleep(0.01)
    r = read_reply(s)
    t.check("split v2: 220 banner", r is not None and r.startswith("220 "), r)
    t.check("split v2: the header's address is the client",
            bs.wait_log(r"connect from \[192\.0\.2\.78\]:40078 to 127\.0\.0\.1:%d via proxy" % bs_port),
            bs.log(True))

with t.case("header and EHLO in one write"):
    for label, hdr in (("v1", b"PROXY TCP4 192.0.2.79 127.0.0.1 40079 25\r\n"),
                       ("v2", v2_header("192.0.2.79", 40079))):
        s = raw("127.0.0.1", bs_port)
        s.sendall(hdr + b"EHLO client.example.org\r\n")
        r = read_reply(s)
        t.check("%s + EHLO: 220 banner first" % label, r is not None and r.startswith("220 "), r)
        r2 = r if r and "\r\n250" in r else read_reply(s)
        t.check("%s + EHLO: the EHLO is answered 250" % label, r2 is not None and "250" in r2, r2)

with t.case("greet_pause: bytes after the header in the same write are early talk"):
    gp = t.backstop({"backend": {"address": pf.address},
                     "server": {"proxy_protocol": "on", "proxy_trusted": "127.0.0.1",
                                "greet_pause": "1s"}})
    s = raw("127.0.0.1", gp.port)
    s.sendall(v2_header("192.0.2.80", 40080) + b"EHLO client.example.org\r\n")
    data, closed, took = read_until_closed(s, 4)
    t.check("header + EHLO under greet_pause: refused, no 220", closed and not data.startswith(b"220")
            and re.match(rb"5\d\d ", data), data)
    t.check("logged as PREGREET of the EHLO's 25 bytes from the header's client",
            gp.wait_log(r"PREGREET 25 bytes from \[192\.0\.2\.80\]:40080"), gp.log()[-2000:])
    s = raw("127.0.0.1", gp.port)
    t0 = time.monotonic()
    s.sendall(v2_header("192.0.2.81", 40081))
    r = read_reply(s)
    took = time.monotonic() - t0
    t.check("the header alone is not early talk: 220 after greet_pause (%.2fs)" % took,
            r is not None and r.startswith("220 ") and took >= 0.9, (r, took))

with t.case("IPv6 in the header, and IPv4-mapped IPv6 counted as IPv4"):
    bs.mark()
    s = raw("127.0.0.1", bs_port)
    s.sendall(b"PROXY TCP6 2001:db8::77 2001:db8::1 40083 25\r\n")
    t.check("TCP6: 220 banner", (read_reply(s) or "").startswith("220 "))
    t.check("TCP6: the client is 2001:db8::77",
            bs.wait_log(r"connect from \[2001:db8::77\]:40083 to 127\.0\.0\.1:%d via proxy" % bs_port),
            bs.log(True))
    s = raw("127.0.0.1", bs_port)
    s.sendall(b"PROXY TCP6 ::ffff:192.0.2.84 ::1 40084 25\r\n")
    t.check("mapped: 220 banner", (read_reply(s) or "").startswith("220 "))
    t.check("mapped: the client is 192.0.2.84",
            bs.wait_log(r"connect from \[192\.0\.2\.84\]:40084 to 127\.0\.0\.1:%d via proxy" % bs_port),
            bs.log(True))

with t.case("per-IP limits count the header's client, not the balancer"):
    lim = t.backstop({"backend": {"address": pf.address},
                      "server": {"proxy_protocol": "on", "proxy_trusted": "127.0.0.1"},
                      "limits": {"max_connections_per_ip": "1"}})
    held = []
    for i in range(3):   # three clients through one balancer address
        s = raw("127.0.0.1", lim.port)
        s.sendall(v2_header("192.0.2.%d" % (100 + i), 40100 + i))
        r = read_reply(s)
        t.check("client %d of 3 through the balancer: 220" % (i + 1), (r or "").startswith("220 "), r)
        held.append(s)
    s = raw("127.0.0.1", lim.port)
    s.sendall(v2_header("192.0.2.100", 40200))
    r = read_reply(s)
    t.check("a second connection of 192.0.2.100: 421 4.7.0", (r or "").startswith("421 4.7.0"), r)
    t.check("logged for 192.0.2.100", lim.wait_log(r"refused \[192\.0\.2\.100\]:40200: too many "
                                                   r"connections from this address"), lim.log()[-2000:])

with t.case("SPF checks the client from the header"):
    zone = os.path.join(srcdir(), "tests", "data", "dns", "spf.zone")
    dport = t.dns_server(zone)
    spf = t.backstop({"backend": {"address": pf.address},
                      "server": {"proxy_protocol": "on", "proxy_trusted": "127.0.0.1"},
                      "dns": {"servers": "127.0.0.1:%d" % dport},
                      "spf": {"mode": "enforce"}})
    hap2 = ProtocolHAProxy({"spf": (spf.port, "send-proxy-v2", False)})
    # fail.example.org permits only 192.0.2.1; libspf2 passes any loopback
    # client, so a 5xx here shows the namespace's address was checked
    c = ns.client(ns.host_addr, hap2.ports["spf"])
    t.defer(c.close)
    t.check_reply("greeting through HAProxy", c.greeting(), 220)
    c.ehlo()
    r = c.cmd("MAIL FROM:<someone@fail.example.org>", timeout=10)
    t.check_reply("SPF fail for the namespace client: 550", r, 550)
    r = c.cmd("RSET")
    r = c.cmd("MAIL FROM:<someone@pass.example.org>", timeout=10)
    t.check_reply("SPF pass (198.51.100.0/24): 250", r, 250)

with t.case("DNSBL looks up the header's client, not the balancer"):
    # tests/data/dns/dnsbl.zone lists 127.0.0.1 (the balancer here) on bl.example.org
    bl_dns = t.dns_server(os.path.join(srcdir(), "tests", "data", "dns", "dnsbl.zone"))
    bl = t.backstop({"backend": {"address": pf.address},
                     "server": {"proxy_protocol": "on", "proxy_trusted": "127.0.0.1"},
                     "dns": {"servers": "127.0.0.1:%d" % bl_dns, "timeout": "3s"},
                     "dnsbl": {"mode": "enforce", "timeout": "1s", "sites": "bl.example.org=127.0.0.[2..11]"}})
    for label, hdr, want in (("client 192.0.2.91 through the balancer", v2_header("192.0.2.91", 40091), "250"),
                             ("the balancer's own LOCAL connection", V2_LOCAL, "550")):
        s = raw("127.0.0.1", bl.port)
        s.sendall(hdr)
        t.check("%s: banner" % label, (read_reply(s) or "").startswith("220 "))
        s.sendall(b"EHLO client.example.org\r\n")
        read_reply(s)
        s.sendall(b"MAIL FROM:<a@example.org>\r\n")
        r = read_reply(s)
        t.check("%s: MAIL gets %s" % (label, want), (r or "").startswith(want), r)


class HeaderBackend(ThreadedServer):
    """A minimal SMTP backend behind a PROXY v2 header ([backend] identity
    = proxy): records each connection's header, accepts any mail."""

    def __init__(self):
        self.headers = []
        super().__init__(t)

    def session(self, c):
        try:
            c.settimeout(10)
            data = b""
            while len(data) < 16:
                b = c.recv(16 - len(data))
                if not b:
                    return
                data += b
            n = struct.unpack(">H", data[14:16])[0]
            while len(data) < 16 + n:
                data += c.recv(16 + n - len(data))
            self.headers.append(data)
            c.sendall(b"220 header.backend ESMTP\r\n")
            smtp_dialogue(c, "header.backend")
        except OSError:
            pass


with t.case("[backend] identity = proxy passes the header's client and destination on"):
    hb = HeaderBackend()
    idp = t.backstop({"backend": {"address": hb.address, "identity": "proxy"},
                      "server": {"proxy_protocol": "on", "proxy_trusted": "127.0.0.1"}})
    s = raw("127.0.0.1", idp.port)
    s.sendall(v2_header("192.0.2.90", 40090, dst="203.0.113.25", dport=25))
    t.check("banner", (read_reply(s) or "").startswith("220 "))
    for line in (b"EHLO client.example.org", b"MAIL FROM:<a@example.org>", b"RCPT TO:<b@example.net>",
                 b"DATA"):
        s.sendall(line + b"\r\n")
        r = read_reply(s)
    s.sendall(b"Subject: identity\r\n\r\nbody\r\n.\r\n")
    r = read_reply(s)
    t.check("the message is accepted", (r or "").startswith("250 "), r)
    want = v2_header("192.0.2.90", 40090, dst="203.0.113.25", dport=25)
    t.check("the backend's header: PROXY TCP4 192.0.2.90:40090 -> 203.0.113.25:25",
            want in hb.headers, [h.hex() for h in hb.headers])

with t.case("non-SMTP: an HTTP request"):
    bs.mark()
    s = raw("127.0.0.1", bs_port)
    s.sendall(V2_LOCAL)
    t.check("banner", (read_reply(s) or "").startswith("220 "))
    s.sendall(b"GET / HTTP/1.1\r\nHost: mx.example.org\r\nUser-Agent: scanner\r\n\r\n")
    data, closed, took = read_until_closed(s, 3)
    t.check("GET: one 521 reply and closed at once (%.2fs)" % took,
            closed and data == b"521 5.7.0 Error: I can break rules, too. Goodbye.\r\n" and took < 0.9,
            (data, closed, took))
    t.check("GET: logged", bs.wait_log(r"NON-SMTP COMMAND \(HTTP request\) from \[127\.0\.0\.1\]:\d+ "
                                       r"after CONNECTED: GET / HTTP/1\.1"), bs.log(True))

with t.case("non-SMTP: a TLS ClientHello in plaintext"):
    bs.mark()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inb, outb, server_hostname="mx.example.org")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outb.read()
    t.check("a ClientHello was made", hello[:2] == b"\x16\x03", hello[:8])
    s = raw("127.0.0.1", bs_port)
    s.sendall(v2_header("192.0.2.82", 40082))
    t.check("banner", (read_reply(s) or "").startswith("220 "))
    s.sendall(hello)
    data, closed, took = read_until_closed(s, 3)
    t.check("ClientHello: one 521 reply and closed at once (%.2fs)" % took,
            closed and data.startswith(b"521 5.7.0 ") and data.count(b"\r\n") == 1 and took < 0.9,
            (data, closed, took))
    t.check("ClientHello: logged", bs.wait_log(r"NON-SMTP COMMAND \(TLS handshake\) from "
                                               r"\[192\.0\.2\.82\]:40082 after CONNECTED"), bs.log(True))

with t.case("proxy_protocol = on without proxy_trusted is refused with what to fix"):
    bad = t.backstop({"backend": {"address": pf.address}, "server": {"proxy_protocol": "on"}},
                     start=False)
    rc, out = bad.check_config()
    t.check("backstop -t fails", rc != 0, out)
    t.check("the error names proxy_trusted", "proxy_protocol = on needs proxy_trusted" in out, out)

with t.case("a PROXY header that arrives after SIGTERM (listeners closed, session draining)"):
    # the session names its listener when its header arrives; SIGTERM has
    # closed the listeners by then (under ASan a freed listener was a
    # heap-use-after-free in that log line)
    dr = t.backstop({"backend": {"address": pf.address},
                     "server": {"proxy_protocol": "on", "proxy_trusted": "127.0.0.1/32",
                                "proxy_timeout": "5s", "drain_time": "5s"}})
    s = raw("127.0.0.1", dr.port)
    t.check("the balancer's connection is accepted, waiting for its header",
            dr.wait_log(r"waiting for its PROXY header|connection from load balancer") or True)
    time.sleep(0.3)
    dr.signal(signal.SIGTERM)
    t.check("SIGTERM: draining", dr.wait_log(r"signal 15: stopping"), dr.log()[-2000:])
    s.sendall(v2_header("203.0.113.9", 40001, dport=dr.port))
    r = read_reply(s)
    t.check("the header's client still gets an answer while draining",
            r is not None and r[:3] in ("220", "421"), r)
    t.check("its connect line names the listener it came in on",
            dr.wait_log(r"connect from \[203\.0\.113\.9\]:40001 to 127\.0\.0\.1:%d via proxy" % dr.port),
            dr.log()[-2000:])
    s.close()
    # the last session gone, it stops by itself (a second SIGTERM would
    # find its handlers gone)
    t.check("it exits once the session is gone", dr.wait_exit(10) is not None)
    dr.stop()

with t.case("backstop after all this"):
    t.check("backstop still runs", bs.running())
    bs.stop()
t.done()

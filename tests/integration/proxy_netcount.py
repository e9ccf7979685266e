#!/usr/bin/python3
"""proxy_netcount (review12): behind a PROXY header, max_connections_per_net
counts the header's client network, and the balancer's own network count
does not grow with each proxied session (it once moved only the per-IP
key: the balancer's net counter leaked one per session, so HAProxy's LOCAL
health checks got 421 after max_connections_per_net sessions, and the
clients' networks were never counted). The balancer's LOCAL health checks
are no client connections: conn_rate_per_ip does not count them."""
import re
import struct
from harness import *

t = Test("proxy_netcount", need=("postfix",))
pf = t.postfix()
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
V2_LOCAL = V2_SIG + b"\x20\x00\x00\x00"


def v2_header(src, sport, dst="127.0.0.1", dport=25):
    block = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    return V2_SIG + bytes([0x21, 0x11]) + struct.pack(">H", len(block)) + block


def read_reply(s, timeout=5):
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                return data.decode("utf-8", "replace") or None
            data += b
            lines = data.split(b"\r\n")
            if len(lines) > 1 and re.match(rb"^\d{3} ", lines[-2]):
                return data.decode("utf-8", "replace")
    except (socket.timeout, ConnectionResetError):
        return None


bs = t.backstop({"backend": {"address": pf.address},
                 "server": {"proxy_protocol": "on", "proxy_trusted": "127.0.0.1"},
                 "limits": {"max_connections_per_net": "2"}})

with t.case("max_connections_per_net counts the header's client network"):
    held = []
    replies = []
    for i in range(3):   # three clients of 192.0.2.0/24 through one balancer
        s = socket.create_connection(("127.0.0.1", bs.port), timeout=5)
        t.defer(s.close)
        s.sendall(v2_header("192.0.2.%d" % (10 + i), 41000 + i))
        replies.append(read_reply(s))
        held.append(s)
    t.check("clients 1 and 2 of 192.0.2.0/24: 220", all((r or "").startswith("220 ") for r in replies[:2]),
            replies)
    t.check("client 3 of 192.0.2.0/24: 421 4.7.0 (max_connections_per_net = 2)",
            (replies[2] or "").startswith("421 4.7.0"), replies[2])
    for s in held:
        s.close()

with t.case("proxied sessions do not use up the balancer's own network count"):
    for i in range(4):
        s = socket.create_connection(("127.0.0.1", bs.port), timeout=5)
        s.sendall(v2_header("198.51.100.%d" % (10 + i), 42000 + i))
        r = read_reply(s)
        s.sendall(b"QUIT\r\n")
        read_reply(s)
        s.close()
    time.sleep(0.5)
    s = socket.create_connection(("127.0.0.1", bs.port), timeout=5)
    t.defer(s.close)
    s.sendall(V2_LOCAL)
    r = read_reply(s)
    t.check("a LOCAL health check after 4 proxied sessions: 220", (r or "").startswith("220 "), r)

with t.case("conn_rate_per_ip does not count the balancer's LOCAL health checks"):
    # HAProxy checks every 2 s by default (30 a minute): a limit under that
    # answered its checks 421, and HAProxy took backstop out of service
    rl = t.backstop({"backend": {"address": pf.address},
                     "server": {"proxy_protocol": "on", "proxy_trusted": "127.0.0.1"},
                     "limits": {"conn_rate_per_ip": "3", "rate_window": "60s"}})
    replies = []
    for i in range(6):
        s = socket.create_connection(("127.0.0.1", rl.port), timeout=5)
        s.sendall(V2_LOCAL)
        replies.append(read_reply(s))
        s.close()
    t.check("six LOCAL health checks in a window of conn_rate_per_ip = 3: all 220",
            all((r or "").startswith("220 ") for r in replies), replies)
    replies = []
    for i in range(4):
        s = socket.create_connection(("127.0.0.1", rl.port), timeout=5)
        s.sendall(v2_header("192.0.2.50", 43000 + i))
        replies.append(read_reply(s))
        s.close()
    t.check("a client through the balancer is still limited: the 4th gets 421 4.7.0",
            all((r or "").startswith("220 ") for r in replies[:3]) and (replies[3] or "").startswith("421 4.7.0"),
            replies)

t.done()

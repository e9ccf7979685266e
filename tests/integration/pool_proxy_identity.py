#!/usr/bin/python3
"""pool_proxy_identity: [backend] identity = proxy with a backend pool
behind a load balancer ([server] proxy_protocol = on). A kept connection
carries its first client's PROXY header for good, so it may serve only a
client that header describes: the same client address *and* the same
destination the balancer was reached at (the header's dst, which
identity = proxy passes on). reviewx: the pool key held the client's
address and backstop's own listener only, so a client of the same address
that came in through another balancer front-end (another dst) was served
on a connection whose header named the first front-end."""
import re
import struct
import time
from harness import *

t = Test("pool_proxy_identity")

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, sport, dst, dport=25):
    block = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    return V2_SIG + bytes([0x21, 0x11]) + struct.pack(">H", len(block)) + block


def parse_v2(h):
    if h[12] & 0x0F == 0:
        # LOCAL: backstop's start-up probe, its own connection
        return ("LOCAL", 0, "LOCAL", 0)
    src, dst = socket.inet_ntoa(h[16:20]), socket.inet_ntoa(h[20:24])
    sport, dport = struct.unpack(">HH", h[24:28])
    return src, sport, dst, dport


class HeaderBackend(ThreadedServer):
    """SMTP behind a PROXY v2 header: for each message, the header of the
    connection it came over."""

    def __init__(self):
        self.headers = []
        self.messages = []   # (header of its connection, Subject)
        super().__init__(t)

    def session(self, c):
        try:
            c.settimeout(20)
            data = b""
            while len(data) < 16:
                b = c.recv(16 - len(data))
                if not b:
                    return
                data += b
            n = struct.unpack(">H", data[14:16])[0]
            while len(data) < 16 + n:
                data += c.recv(16 + n - len(data))
            hdr = parse_v2(data)
            self.headers.append(hdr)
            c.sendall(b"220 header.backend ESMTP\r\n")

            def message(lines):
                m = re.search(rb"Subject: (.*)\r\n", b"".join(lines))
                self.messages.append((hdr, m.group(1).decode() if m else ""))
            smtp_dialogue(c, "header.backend", message)
        except OSError:
            pass


def send(bs, src, sport, dst, subject):
    c = SmtpClient(bs.host, bs.port)
    c.send(v2_header(src, sport, dst))
    c.greeting()
    c.cmd("EHLO client.example.org")
    rs = c.mail_transaction("a@example.org", ["b@example.net"], make_message(subject))
    c.cmd("QUIT")
    c.close()
    return rs[-1]


with t.case("identity = proxy + pool: a kept connection serves only its header's client and destination"):
    hb = HeaderBackend()
    bs = t.backstop({"backend": {"address": hb.address, "identity": "proxy", "pool_size": "4"},
                     "server": {"proxy_protocol": "on", "proxy_trusted": "127.0.0.1"}})
    # the probe's LOCAL header is answered (a backend that never greeted it
    # kept this wait at its full 20 s)
    t.check("the start-up probe learnt the backend's EHLO", bs.wait_backend_known(5), bs.log()[-1500:])
    sent = [("192.0.2.90", 40090, "203.0.113.25", "m1"),
            ("192.0.2.90", 40091, "203.0.113.25", "m2"),    # may reuse m1's connection
            ("192.0.2.90", 40092, "203.0.113.26", "m3"),    # another front-end: must not
            ("192.0.2.91", 40093, "203.0.113.25", "m4")]    # another client: must not
    for src, sport, dst, subj in sent:
        r = send(bs, src, sport, dst, subj)
        t.check_reply("%s accepted" % subj, r, 250)
        time.sleep(0.2)
    poll(lambda: len(hb.messages) == len(sent), 5)
    got = {subj: hdr for hdr, subj in hb.messages}
    for src, sport, dst, subj in sent:
        h = got.get(subj)
        t.check("%s came over a connection whose header names client %s and destination %s" % (
            subj, src, dst), h is not None and h[0] == src and h[2] == dst, h)
    t.check("m2 reused m1's connection (the pool is on)", got.get("m2") == got.get("m1"), got)

t.done()

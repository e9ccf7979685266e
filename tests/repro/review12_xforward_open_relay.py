#!/usr/bin/python3
"""review12 reproduction (not fixed): [backend] identity = xforward makes
Postfix an open relay. XFORWARD only overrides Postfix's *logging*
attributes (XFORWARD_README: "overrides one or more client-related logging
attributes"); smtpd_relay_restrictions, permit_mynetworks, RBL checks and
check_client_access still see the real connection, i.e. backstop's own
address, which Postfix trusts (mynetworks = 127.0.0.0/8 here, as in most
setups). A client 192.0.2.9 (from a PROXY header, so no netns is needed)
gets "454 Relay access denied" through identity = xclient and "250 2.1.5
Ok" for a foreign recipient through identity = xforward. The same holds for
identity = auto against a backend offering XFORWARD but not XCLIENT.
Run: BACKSTOP_BUILDDIR=$PWD PYTHONPATH=$PWD/tests/lib /usr/bin/python3 tests/repro/review12_xforward_open_relay.py"""
import re, struct, socket
from harness import *
t = Test("xfwd_relay", need=("postfix",))
pf = t.postfix(extra_main="smtpd_authorized_xforward_hosts = 127.0.0.0/8\ndefault_transport = smtp\n")
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
def v2_header(src, sport, dst="127.0.0.1", dport=25):
    block = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    return V2_SIG + bytes([0x21, 0x11]) + struct.pack(">H", len(block)) + block
for ident in ("xclient", "xforward"):
    with t.case(ident):
        bs = t.backstop({"backend": {"address": pf.address, "identity": ident},
                         "server": {"proxy_protocol": "on", "proxy_trusted": "127.0.0.1"}})
        s = socket.create_connection(("127.0.0.1", bs.port), timeout=10)
        s.sendall(v2_header("192.0.2.9", 40009))
        c = SmtpClient(sock=s, timeout=10)
        c.greeting(); c.ehlo()
        r1 = c.cmd("MAIL FROM:<spammer@example.net>")
        r2 = c.cmd("RCPT TO:<victim@elsewhere.example.com>")
        log("# %s: MAIL %s / RCPT %s" % (ident, r1, r2))
        t.check("%s: relay to a foreign domain from 192.0.2.9 refused" % ident, r2.code >= 400, r2)
        c.close()
t.done()

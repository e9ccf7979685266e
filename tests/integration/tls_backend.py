#!/usr/bin/python3
"""tls_backend: [backend] tls = none|opportunistic|required, ca_file,
verify_name. Against a real Postfix (smtpd_tls_security_level = may, a
certificate from the test CA): Postfix logs the TLS connection from
backstop and its Received header says ESMTPS. Verification failure and a
backend without STARTTLS give the client 4xx when TLS is required.
Response injection (plaintext the backend sends after its 220 to
STARTTLS) is discarded, shown with a fake backend."""
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
from harness import *

t = Test("tls_backend", need=("postfix", "swaks", "openssl"))
ca = t.tmpdir("ca")
r = subprocess.run(["sh", os.path.join(srcdir(), "certs", "make-test-ca.sh"), ca],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
if r.returncode != 0:
    t.error("make-test-ca.sh failed: %s" % r.stdout.decode(errors="replace"))
# Postfix reads its key as root; the test CA's files are 0600 root
pf = t.postfix(extra_main="""
smtpd_tls_security_level = may
smtpd_tls_cert_file = {ca}/backend.crt
smtpd_tls_key_file = {ca}/backend.key
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
""".format(ca=ca))
pf_plain = t.postfix()   # smtpd_tls_security_level = none: no STARTTLS


def send(bs, subject, expect=250):
    """One transaction through backstop; returns the replies."""
    c = bs.client()
    c.ehlo()
    rs = c.mail_transaction("sender@example.org", ["user@test.example"], make_message(subject))
    with contextlib.suppress(Exception):
        c.cmd("QUIT")
    return rs


with t.case("opportunistic: STARTTLS to Postfix, Received says ESMTPS"):
    pf.clear_mail()
    pf.mark()
    bs = t.backstop({"backend": {"address": pf.address, "tls": "opportunistic",
                                 "ca_file": os.path.join(ca, "ca.crt")}})
    rs = send(bs, "backend tls opportunistic")
    t.check_reply("delivered", rs[-1], 250)
    msgs = pf.wait_for_mail(1)
    t.check("one message", len(msgs) == 1, msgs)
    top = re.sub(r"\s+", " ", msgs[0].headers("Received")[0]) if msgs else ""
    t.check("Postfix's Received says ESMTPS", re.search(r"\bwith ESMTPS\b", top), top)
    t.check("Postfix's Received names the TLS version and cipher",
            re.search(r"\(using TLSv1\.[23] with cipher \S+", top), top)
    t.check("Postfix logs the TLS connection from backstop",
            pf.wait_log(r"smtpd\[\d+\]: \w+ TLS connection established from \S+\[127\.0\.0\.1\]"),
            pf.log(True)[-2000:])
    t.check("backstop logs TLS to the backend, certificate verified",
            bs.wait_log(r"TLS to backend 127\.0\.0\.1:%d: TLSv1\.[23] \S+, certificate verified, "
                        r"subject=CN=backend\.test\.example" % pf.port), bs.log()[-2000:])
    t.check("XCLIENT still passed the client (Postfix logs the client's HELO)",
            re.search(r"helo=<%s>" % re.escape(CLIENT_HELO), pf.log(True)) or CLIENT_HELO in top, top)
    bs.stop()

with t.case("opportunistic: a 400 KB message and three transactions over one TLS connection"):
    pf.clear_mail()
    pf.mark()
    bs = t.backstop({"backend": {"address": pf.address, "tls": "opportunistic"},
                     "limits": {"data_buffer": "4k"}})
    body = "".join("line %06d %s\n" % (i, "y" * 60) for i in range(5500))
    c = bs.client()
    c.ehlo()
    for i in range(3):
        rs = c.mail_transaction("sender@example.org", ["user@test.example"],
                                make_message("big %d" % i, body=body if i == 1 else "small\n"))
        t.check_reply("transaction %d accepted" % i, rs[-1], 250)
    c.cmd("QUIT")
    msgs = pf.wait_for_mail(3)
    t.check("three delivered", len(msgs) == 3, msgs)
    big = [m for m in msgs if len(m.body()) > 100000]
    t.check("big body byte-identical", big and big[0].body() == body.encode(),
            len(big[0].body()) if big else None)
    t.check("one TLS connection to Postfix",
            len(pf.wait_log(r"TLS connection established from")) == 1, pf.log(True)[-2000:])
    bs.stop()

with t.case("required with verify_name: delivered over a verified channel"):
    pf.clear_mail()
    pf.mark()
    bs = t.backstop({"backend": {"address": pf.address, "tls": "required",
                                 "ca_file": os.path.join(ca, "ca.crt"),
                                 "verify_name": "backend.test.example"}})
    rc, out = swaks(bs.host, bs.port, "--from", "sender@example.org", "--to", "user@test.example")
    t.check("swaks exits 0", rc == 0, out)
    msgs = pf.wait_for_mail(1)
    top = re.sub(r"\s+", " ", msgs[0].headers("Received")[0]) if msgs else ""
    t.check("delivered with ESMTPS", msgs and "with ESMTPS" in top, top)
    t.check("backstop: certificate verified", bs.wait_log(r"TLS to backend .*certificate verified"),
            bs.log()[-2000:])
    # SIGHUP with an unreadable ca_file keeps the working backend context
    bs.sections["backend"]["ca_file"] = os.path.join(ca, "missing.crt")
    bs.write_config()
    bs.mark()
    bs.signal(signal.SIGHUP)
    t.check("reload with a missing ca_file: previous backend context kept, logged",
            bs.wait_log(r"backend TLS context: \[backend\] ca_file \S*missing\.crt.*; keeping the previous one"),
            bs.log(True))
    pf.clear_mail()
    rs = send(bs, "after bad reload")
    t.check_reply("still delivered over verified TLS", rs[-1], 250)
    t.check("still verified", bs.wait_log(r"TLS to backend .*certificate verified"), bs.log(True))
    # Postfix's 250 means queued: let it deliver before the next case
    # clears the mailbox and expects nothing
    t.check("Postfix delivered it", pf.wait_for_mail(1), pf.log()[-1500:])
    bs.stop()

with t.case("required, wrong verify_name: 4xx to the client, reason logged"):
    pf.clear_mail()
    bs = t.backstop({"backend": {"address": pf.address, "tls": "required",
                                 "ca_file": os.path.join(ca, "ca.crt"),
                                 "verify_name": "wrong.example.net"}})
    c = bs.client()
    c.ehlo()
    r = c.cmd("MAIL FROM:<sender@example.org>")
    t.check_reply("MAIL gets 4xx", r, 4)
    t.check("the reply says TLS", "TLS" in r.text, r)
    t.check("log names the verification failure",
            bs.wait_log(r"TLS handshake with backend .*certificate verify failed.*"
                        r"\((?i:hostname mismatch)\)"), bs.log()[-2000:])
    c.cmd("QUIT")
    t.check("nothing delivered", not pf.settle(0.3))
    bs.stop()

with t.case("required, untrusted CA: 4xx"):
    other = t.tmpdir("otherca")
    subprocess.run(["sh", os.path.join(srcdir(), "certs", "make-test-ca.sh"), other],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    bs = t.backstop({"backend": {"address": pf.address, "tls": "required",
                                 "ca_file": os.path.join(other, "ca.crt")}})
    rs = send(bs, "untrusted")
    t.check_reply("MAIL gets 4xx", rs[0], 4)
    t.check("log names the verification failure",
            bs.wait_log(r"certificate verify failed.*unable to get local issuer"), bs.log()[-2000:])
    bs.stop()

with t.case("required, backend without STARTTLS: 4xx; opportunistic: plaintext"):
    pf_plain.clear_mail()
    bs = t.backstop({"backend": {"address": pf_plain.address, "tls": "required",
                                 "ca_file": os.path.join(ca, "ca.crt")}})
    rs = send(bs, "no starttls required")
    t.check_reply("MAIL gets 4xx", rs[0], 4)
    t.check("log says STARTTLS not offered",
            bs.wait_log(r"does not offer STARTTLS but \[backend\] tls = required"), bs.log()[-2000:])
    bs.stop()
    bs = t.backstop({"backend": {"address": pf_plain.address, "tls": "opportunistic"}})
    rs = send(bs, "no starttls opportunistic")
    t.check_reply("opportunistic: delivered in plaintext", rs[-1], 250)
    msgs = pf_plain.wait_for_mail(1)
    top = re.sub(r"\s+", " ", msgs[0].headers("Received")[0]) if msgs else ""
    t.check("Received says ESMTP (no S)", re.search(r"\bwith ESMTP id\b", top), top)
    bs.stop()


class FakeBackend:
    """A minimal ESMTP server with STARTTLS (python ssl) that can send
    plaintext right after its 220 to STARTTLS (response injection)."""

    def __init__(self, certdir, inject=b""):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(certdir, "backend.crt"), os.path.join(certdir, "backend.key"))
        self.inject = inject
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.sessions = []   # per connection: list of (tls, command)
        self.messages = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.sock.close()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        cmds = []
        self.sessions.append(cmds)
        conn.settimeout(10)
        buf = b""
        tls = False

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                d = conn.recv(4096)
                if not d:
                    raise EOFError
                buf += d
            l, buf = buf.split(b"\r\n", 1)
            return l
        try:
            conn.sendall(b"220 fake.test.example ESMTP\r\n")
            while True:
                l = line()
                cmds.append((tls, l.decode(errors="replace")))
                verb = l.split(b" ")[0].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-fake.test.example\r\n250-PIPELINING\r\n" +
                                 (b"" if tls else b"250-STARTTLS\r\n") + b"250 8BITMIME\r\n")
                elif verb == b"STARTTLS" and not tls:
                    conn.sendall(b"220 2.0.0 go ahead\r\n" + self.inject)
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                    tls = True
                    buf = b""
                elif verb == b"DATA":
                    conn.sendall(b"354 go\r\n")
                    body = b""
                    while True:
                        d = line()
                        if d == b".":
                            break
                        body += d + b"\r\n"
                    self.messages.append((tls, body))
                    conn.sendall(b"250 2.0.0 Ok: queued as FAKE1\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 2.0.0 Bye\r\n")
                    break
                else:
                    conn.sendall(b"250 2.0.0 Ok\r\n")
        except (EOFError, OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()


with t.case("response injection after the backend's 220 to STARTTLS is discarded"):
    fb = FakeBackend(ca, inject=b"250-INJECTED\r\n250 XCLIENT NAME ADDR\r\n")
    t.defer(fb.close)
    bs = t.backstop({"backend": {"address": fb.address, "tls": "required",
                                 "ca_file": os.path.join(ca, "ca.crt"), "verify_name": "localhost"}})
    rs = send(bs, "injection")
    t.check_reply("delivered", rs[-1], 250)
    t.check("log says the plaintext was discarded",
            bs.wait_log(r"discarding 37 plaintext bytes the backend 127\.0\.0\.1:%d sent after 220 to "
                        r"STARTTLS" % fb.port), bs.log()[-2000:])
    # the first connection may be backstop's startup probe (EHLO, QUIT)
    cmds = ([c for c in fb.sessions if any(x == "STARTTLS" for _, x in c)] or [[]])[0]
    after = [c for tls, c in cmds if tls]
    before = [c for tls, c in cmds if not tls]
    t.check("plaintext part: EHLO, STARTTLS only", [c.split()[0] for c in before] == ["EHLO", "STARTTLS"],
            cmds)
    t.check("EHLO again over TLS, then the transaction",
            [c.split()[0] for c in after][:3] == ["EHLO", "MAIL", "RCPT"], cmds)
    t.check("no XCLIENT (the injected capability was not believed)",
            not any(c.startswith("XCLIENT") for _, c in cmds), cmds)
    t.check("message arrived over TLS", fb.messages and fb.messages[0][0], fb.messages)
    bs.stop()

t.done()

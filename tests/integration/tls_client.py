#!/usr/bin/python3
"""tls_client: STARTTLS towards clients (RFC 3207) with real clients
(openssl s_client, swaks --tls, Python smtplib); EHLO after TLS no longer
offers STARTTLS; plaintext pipelined after STARTTLS is discarded and the
session resets (the client must EHLO again); garbage, a stalled handshake
and a dropped handshake do not disturb a concurrent session; version,
cipher and client certificate subject reach the Received header and the
summary log line; SIGHUP keeps the old context on a bad key and gives new
sessions a new certificate while a session in flight goes on; the first
command after STARTTLS is due within greeting_timeout."""
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from harness import *

t = Test("tls_client", need=("postfix", "swaks", "openssl"))
ca = t.tmpdir("ca")
r = subprocess.run(["sh", os.path.join(srcdir(), "certs", "make-test-ca.sh"), ca],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
if r.returncode != 0:
    t.error("make-test-ca.sh failed: %s" % r.stdout.decode(errors="replace"))
CA = os.path.join(ca, "ca.crt")
NAME = "backstop.test.example"
# the listener's files are copies, so that the SIGHUP case can replace them
live = t.tmpdir("live")
CERT, KEY = os.path.join(live, "cert.pem"), os.path.join(live, "key.pem")
shutil.copy(os.path.join(ca, "backstop-fullchain.crt"), CERT)
shutil.copy(os.path.join(ca, "backstop.key"), KEY)

pf = t.postfix()
bs = t.backstop({"backend": {"address": pf.address},
                 "limits": {"data_buffer": "4k"},
                 "tls": {"certificate": CERT, "key": KEY, "handshake_timeout": "1s"}})


def ctx(verify=True):
    c = ssl.create_default_context(cafile=CA)
    if not verify:
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
    return c


def starttls(c, context=None):
    """STARTTLS on a harness SmtpClient: 220, then the handshake."""
    r = c.cmd("STARTTLS")
    if r.code != 220:
        raise RuntimeError("STARTTLS refused: %s" % r)
    c.sock = (context or ctx()).wrap_socket(c.sock, server_hostname=NAME)
    c.buf = b""
    return r


def summary_lines(log, sender):
    return [l for l in log.splitlines() if " txn " in l and "from=<%s>" % sender in l]


with t.case("openssl s_client -starttls smtp: verified, transaction delivered"):
    pf.clear_mail()
    msg = make_message("s_client").decode().replace("\r\n", "\n")
    stdin = ("EHLO %s\nMAIL FROM:<sclient@example.org>\nRCPT TO:<user@test.example>\nDATA\n%s.\nQUIT\n"
             % (CLIENT_HELO, msg))
    r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:%d" % bs.port,
                        "-CAfile", CA, "-verify_return_error", "-verify_hostname", NAME,
                        "-servername", NAME, "-brief", "-crlf", "-ign_eof"],
                       input=stdin.encode(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    out = r.stdout.decode(errors="replace")
    t.check("s_client exits 0", r.returncode == 0, out)
    t.check("certificate verified against the test CA", "Verification: OK" in out, out)
    t.check("TLS 1.3 by default", "Protocol version: TLSv1.3" in out, out)
    ehlo = re.findall(r"^250[- ].*$", out, re.M)
    t.check("EHLO over TLS answered", any(BACKSTOP_HOSTNAME in l for l in ehlo), out)
    t.check("EHLO over TLS does not offer STARTTLS", not any("STARTTLS" in l for l in ehlo), out)
    t.check("message accepted", re.search(r"^250 2\.0\.0 .*queued", out, re.M), out)
    msgs = pf.wait_for_mail(1)
    rcv = backstop_received(msgs[0]) if msgs else None
    t.check("backstop's Received says ESMTPS", rcv and re.search(r"\bwith ESMTPS\b", rcv), rcv)
    t.check("backstop's Received has version and cipher",
            rcv and re.search(r"\(using TLSv1\.3 with cipher TLS_\w+\)", rcv), rcv)

with t.case("openssl s_client -tls1_2 works; -tls1_1 is refused, logged with OpenSSL's reason"):
    r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:%d" % bs.port,
                        "-tls1_2", "-brief", "-crlf"], input=b"QUIT\n",
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    out = r.stdout.decode(errors="replace")
    t.check("TLS 1.2 negotiated with a forward-secret AEAD cipher",
            "Protocol version: TLSv1.2" in out and re.search(r"Ciphersuite: ECDHE-\w+-(AES\d+-GCM|CHACHA20)", out),
            out)
    bs.mark()
    r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:%d" % bs.port,
                        "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-brief", "-crlf"], input=b"QUIT\n",
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    t.check("TLS 1.1 handshake fails", r.returncode != 0, r.stdout.decode(errors="replace"))
    t.check("failure logged with OpenSSL's reason",
            bs.wait_log(r"TLS handshake failed with \[127\.0\.0\.1\]:\d+: .*unsupported protocol"),
            bs.log(True))

with t.case("swaks --tls with a client certificate: subject and cipher logged"):
    pf.clear_mail()
    bs.mark()
    rc, out = swaks(bs.host, bs.port, "--tls", "--tls-verify", "--tls-ca-path", CA,
                    "--tls-cert", os.path.join(ca, "client.crt"), "--tls-key", os.path.join(ca, "client.key"),
                    "--from", "swakstls@example.org", "--to", "user@test.example")
    t.check("swaks exits 0", rc == 0, out)
    t.check("swaks reports TLS started", "TLS started" in out, out)
    msgs = pf.wait_for_mail(1)
    rcv = backstop_received(msgs[0]) if msgs else None
    t.check("Received: ESMTPS with version and cipher",
            rcv and re.search(r"\(using TLSv1\.3 with cipher \S+\).* with ESMTPS\b", rcv), rcv)
    t.check("Received: names the client certificate subject",
            rcv and 'client certificate "CN=client.test.example,O=backstop test"' in rcv, rcv)
    t.check("TLS established line names the client certificate subject",
            bs.wait_log(r"TLS established with \[127\.0\.0\.1\]:\d+: TLSv1\.3 \S+ "
                        r"subject=CN=client\.test\.example,O=backstop test"), bs.log(True))
    bs.wait_log(r"txn .*from=<swakstls@example\.org>")
    sl = summary_lines(bs.log(True), "swakstls@example.org")
    t.check("summary line has tls=version/cipher",
            sl and re.search(r" tls=TLSv1\.3/TLS_\w+ ", sl[0]), sl)
    t.check("summary line has the client certificate subject",
            sl and "tls_subject=<CN=client.test.example,O=backstop\\x20test>" in sl[0], sl)

with t.case("smtplib.starttls(): EHLO after TLS, no STARTTLS offered, message delivered"):
    pf.clear_mail()
    bs.mark()
    s = smtplib.SMTP(bs.host, bs.port, local_hostname=CLIENT_HELO, timeout=10)
    s.ehlo()
    t.check("STARTTLS offered in plaintext", s.has_extn("starttls"), s.esmtp_features)
    code, _ = s.starttls(context=ctx())
    t.check("starttls 220", code == 220, code)
    code, text = s.ehlo()
    t.check("EHLO after TLS 250", code == 250, text)
    t.check("STARTTLS no longer offered", not s.has_extn("starttls"), s.esmtp_features)
    t.check("TLS 1.3", s.sock.version() == "TLSv1.3", s.sock.version())
    refused = s.sendmail("smtplib@example.org", ["user@test.example"], make_message("smtplib tls"))
    t.check("sendmail accepted", refused == {}, refused)
    # larger than the input buffer, the TLS record size and data_buffer
    big = "".join("line %06d %s\n" % (i, "z" * 60) for i in range(6000))
    refused = s.sendmail("smtplib@example.org", ["user2@test.example"], make_message("big", body=big))
    t.check("420 KB message over TLS accepted", refused == {}, refused)
    code, text = s.docmd("STARTTLS")
    t.check("a second STARTTLS is refused (5xx)", code // 100 == 5, (code, text))
    s.quit()
    msgs = pf.wait_for_mail(2)
    t.check("both delivered", len(msgs) == 2, msgs)
    bigm = [m for m in msgs if m.mailbox == "user2"]
    t.check("big body byte-identical", bigm and bigm[0].body() == big.encode(),
            len(bigm[0].body()) if bigm else None)
    bs.wait_log(r"txn .*from=<smtplib@example\.org>", count=2)
    sl = summary_lines(bs.log(True), "smtplib@example.org")
    t.check("summary line has tls=, no tls_subject (no client certificate)",
            sl and " tls=TLSv1.3/" in sl[0] and "tls_subject" not in sl[0], sl)

with t.case("STARTTLS command injection: pipelined plaintext discarded, state reset"):
    pf.clear_mail()
    bs.mark()
    c = bs.client()
    c.ehlo()
    t.check_reply("STARTTLS inside a transaction: 503", c.cmd("MAIL FROM:<before@example.org>") and
                  c.cmd("STARTTLS"), 503)
    t.check_reply("RSET", c.cmd("RSET"), 250)
    inj = b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<user@test.example>\r\nDATA\r\n"
    c.send(b"STARTTLS\r\n" + inj)
    t.check_reply("220 to STARTTLS", c.reply(), 220)
    c.sock = ctx().wrap_socket(c.sock, server_hostname=NAME)
    c.buf = b""
    t.check_reply("RCPT right after TLS: 503 (the injected MAIL did not count)",
                  c.cmd("RCPT TO:<user@test.example>"), 503)
    t.check_reply("MAIL before the new EHLO: 503", c.cmd("MAIL FROM:<early@example.org>"), 503)
    r = c.ehlo()
    t.check_reply("EHLO over TLS 250", r, 250)
    t.check("no STARTTLS in EHLO over TLS", not any("STARTTLS" in l.upper() for l in r.lines), r)
    rs = c.mail_transaction("after@example.org", ["user@test.example"], make_message("after injection"))
    t.check_reply("transaction after TLS accepted", rs[-1], 250)
    c.cmd("QUIT")
    t.check("injection logged with its size",
            bs.wait_log(r"discarding %d plaintext bytes pipelined after STARTTLS" % len(inj)), bs.log(True))
    msgs = pf.wait_for_mail(1)
    t.check("only the TLS transaction delivered", len(msgs) == 1, msgs)
    t.check("nothing from the injected or the pre-TLS MAIL reached Postfix",
            "evil@" not in pf.log() and "before@" not in pf.log() and "early@" not in pf.log(), pf.log(True))

with t.case("garbage, a stalled and a dropped handshake do not disturb a concurrent session"):
    pf.clear_mail()
    bs.mark()
    good = bs.client()
    good.ehlo()
    starttls(good)
    good.ehlo()
    t.check_reply("concurrent session: MAIL", good.cmd("MAIL FROM:<good@example.org>"), 250)
    # 1. garbage instead of a ClientHello
    g = bs.client()
    g.ehlo()
    g.cmd("STARTTLS")
    g.send(b"EHLO this is not TLS\r\n" * 20)
    t.check("garbage: connection closed", g.closed_by_peer(3))
    t.check("garbage: handshake failure logged with a reason",
            bs.wait_log(r"TLS handshake failed with \[127\.0\.0\.1\]:%d: \S+" % g.sock.getsockname()[1]),
            bs.log(True))
    t.check_reply("concurrent session: RCPT", good.cmd("RCPT TO:<user@test.example>"), 250)
    # 2. STARTTLS, then silence: handshake_timeout (1 s)
    st = bs.client()
    st.cmd("EHLO " + CLIENT_HELO)
    st.cmd("STARTTLS")
    # 3. half a ClientHello, then a drop
    d = bs.client()
    d.ehlo()
    d.cmd("STARTTLS")
    hello = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx(False).wrap_bio(hello[0], hello[1], server_hostname=NAME)
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    ch = hello[1].read()
    d.send(ch[:len(ch) // 2])
    time.sleep(0.1)
    d.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    d.close()
    # 4. a complete handshake dropped before the client's Finished
    d2 = bs.client()
    d2.ehlo()
    d2.cmd("STARTTLS")
    in2, out2 = ssl.MemoryBIO(), ssl.MemoryBIO()
    o2 = ctx(False).wrap_bio(in2, out2, server_hostname=NAME)
    with contextlib.suppress(ssl.SSLWantReadError):
        o2.do_handshake()
    d2.send(out2.read())
    d2.sock.settimeout(3)
    d2.sock.recv(65536)   # the server's flight; then vanish
    d2.close()
    t.check("stalled handshake: closed after handshake_timeout", st.closed_by_peer(4))
    t.check("stalled handshake: timeout logged",
            bs.wait_log(r"timeout after STARTTLS handshake from \[127\.0\.0\.1\]:%d" % st.sock.getsockname()[1]),
            bs.log(True))
    t.check("dropped handshakes: both sessions logged as gone",
            bs.wait_log(r"lost connection from \[127\.0\.0\.1\]:\d+ after", count=2), bs.log(True))
    t.check_reply("concurrent session: DATA", good.cmd("DATA"), 354)
    good.send(dot_stuff(make_message("concurrent")) + b".\r\n")
    t.check_reply("concurrent session: message accepted", good.reply(), 250)
    t.check_reply("concurrent session: QUIT", good.cmd("QUIT"), 221)
    t.check("concurrent message delivered", len(pf.wait_for_mail(1)) == 1)
    t.check("backstop still accepts new TLS sessions",
            starttls(bs.client()).code == 220)

with t.case("SIGHUP: a bad key keeps the old context; a new certificate for new sessions only"):
    def peer_der(c):
        return c.sock.getpeercert(binary_form=True)

    old_der = ssl.PEM_cert_to_DER_cert(open(os.path.join(ca, "backstop.crt")).read())
    inflight = bs.client()
    inflight.ehlo()
    starttls(inflight)
    inflight.ehlo()
    t.check_reply("in flight: MAIL", inflight.cmd("MAIL FROM:<inflight@example.org>"), 250)
    # a key that is not a key
    with open(KEY, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    bs.mark()
    bs.signal(signal.SIGHUP)
    t.check("bad key: reload refused, reason logged",
            bs.wait_log(r"reload: TLS: .*%s.*; keeping the running configuration" % re.escape(KEY)),
            bs.log(True))
    c = bs.client()
    c.ehlo()
    starttls(c, ctx(False))
    t.check("bad key: new sessions still get the old certificate", peer_der(c) == old_der)
    c.cmd("QUIT")
    # a new certificate and key (self-signed for the same name)
    newdir = t.tmpdir("new")
    r = subprocess.run(["sh", os.path.join(srcdir(), "certs", "make-self-signed.sh"), NAME, newdir],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    t.check("make-self-signed.sh", r.returncode == 0, r.stdout)
    shutil.copy(os.path.join(newdir, "backstop.crt"), CERT)
    shutil.copy(os.path.join(newdir, "backstop.key"), KEY)
    new_der = ssl.PEM_cert_to_DER_cert(open(CERT).read())
    bs.mark()
    bs.signal(signal.SIGHUP)
    t.check("good key: reloaded", bs.wait_log(r"reload: configuration \S+ loaded"), bs.log(True))
    c = bs.client()
    c.ehlo()
    starttls(c, ctx(False))
    t.check("new sessions get the new certificate", peer_der(c) == new_der)
    c.cmd("QUIT")
    t.check_reply("in flight: RCPT after both reloads", inflight.cmd("RCPT TO:<user@test.example>"), 250)
    t.check_reply("in flight: DATA", inflight.cmd("DATA"), 354)
    inflight.send(dot_stuff(make_message("inflight")) + b".\r\n")
    t.check_reply("in flight: accepted", inflight.reply(), 250)
    t.check("in flight kept its certificate", peer_der(inflight) == old_der)
    inflight.cmd("QUIT")

with t.case("[tls] require = yes: 530 5.7.0 before STARTTLS"):
    rq = t.backstop({"backend": {"address": pf.address},
                     "tls": {"certificate": CERT, "key": KEY, "require": "yes"}})
    c = rq.client()
    c.ehlo()
    t.check_reply("MAIL before STARTTLS: 530 5.7.0", c.cmd("MAIL FROM:<x@example.org>"), 530, "5.7.0")
    starttls(c, ctx(False))
    c.ehlo()
    t.check_reply("MAIL after STARTTLS: 250", c.cmd("MAIL FROM:<x@example.org>"), 250)
    c.cmd("QUIT")
    rq.stop()

with t.case("the first command after STARTTLS is due within greeting_timeout"):
    gt = t.backstop({"backend": {"address": pf.address},
                     "limits": {"greeting_timeout": "1s", "command_timeout": "10s"},
                     "tls": {"certificate": CERT, "key": KEY}})
    c = gt.client()
    c.ehlo()
    starttls(c, ctx(False))
    t0 = time.monotonic()
    r = c.try_reply(5)
    dt = time.monotonic() - t0
    t.check_reply("idle after the handshake: 421 4.4.2", r, 421, "4.4.2")
    t.check("after %.1fs: greeting_timeout (1 s), not command_timeout (10 s)" % dt, 0.8 <= dt <= 3.0, dt)
    gt.stop()

bs.stop()
t.done()

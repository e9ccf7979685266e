#!/usr/bin/python3
"""tls_line_deadline: command_timeout is a deadline from a command line's
first byte (Postfix's smtpd_per_record_deadline), under TLS too. reviewx:
with TLS the deadline started only once a record had been decrypted, and
every raw byte restarted the idle timer: a client dripping one TLS record
a byte at a time (a 16 kB record holds ~16,400 bytes) held its slot until
session_timeout, the slowloris the per-line deadline exists to stop."""
import ssl
import subprocess
from harness import *

t = Test("tls_line_deadline", need=("smtp-sink", "openssl"))
sink = t.sink()
d = t.tmpdir("certs")
subprocess.run(["bash", os.path.join(srcdir(), "certs", "make-self-signed.sh"), "mx.test.example", d],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
bs = t.backstop({"backend": {"address": sink.address},
                 "limits": {"command_timeout": "2s"},
                 "tls": {"certificate": os.path.join(d, "backstop.crt"), "key": os.path.join(d, "backstop.key")}})


def starttls(c):
    c.ehlo()
    t.check_reply("STARTTLS 220", c.cmd("STARTTLS"), 220)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inb, outb, server_hostname="mx.test.example")
    c.sock.settimeout(5)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            out = outb.read()
            if out:
                c.sock.sendall(out)
            inb.write(c.sock.recv(65536))
    out = outb.read()
    if out:
        c.sock.sendall(out)
    return tls, inb, outb


def drip(c, data, every):
    """Send data a byte at a time; seconds until the peer closed, or None."""
    t0 = time.monotonic()
    for b in data:
        try:
            c.sock.sendall(bytes([b]))
            c.sock.settimeout(every)
            while True:
                if c.sock.recv(4096) == b"":
                    return time.monotonic() - t0
        except socket.timeout:
            pass
        except OSError:
            return time.monotonic() - t0
        if time.monotonic() - t0 > 8:
            return None
    return None


with t.case("a command's TLS record dripped a byte every 0.3 s"):
    c = bs.client()
    tls, inb, outb = starttls(c)
    tls.write(b"EHLO client.example.org\r\n")
    c.sock.sendall(outb.read())
    got = b""
    while b"250 " not in got:
        inb.write(c.sock.recv(65536))
        try:
            got += tls.read(65536)
        except ssl.SSLWantReadError:
            pass
    t.check("EHLO over TLS answered", b"250 " in got, got)
    tls.write(b"NOOP " + b"x" * 400 + b"\r\n")
    rec = outb.read()
    closed = drip(c, rec, 0.3)
    t.check("cut off within command_timeout of the record's first byte (%s s)" % (
        closed and round(closed, 1)), closed is not None and closed < 3.5, closed)
    c.close()

with t.case("plaintext of the same line, for comparison"):
    c = bs.client()
    c.ehlo()
    closed = drip(c, b"NOOP " + b"x" * 400 + b"\r\n", 0.3)
    t.check("cut off within command_timeout (%s s)" % (closed and round(closed, 1)),
            closed is not None and closed < 3.5, closed)
    c.close()

bs.stop()
t.done()

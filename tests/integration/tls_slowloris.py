#!/usr/bin/python3
"""tls_slowloris: [tls] handshake_timeout is a deadline for the whole
handshake, not an idle time: a client that dribbles its ClientHello one
byte at a time is cut off when the deadline passes."""
import subprocess
from harness import *

t = Test("tls_slowloris", need=("smtp-sink", "openssl"))
sink = t.sink()
d = t.tmpdir("certs")
subprocess.run(["bash", os.path.join(srcdir(), "certs", "make-self-signed.sh"), "mx.test.example", d],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
bs = t.backstop({"backend": {"address": sink.address},
                 "tls": {"certificate": os.path.join(d, "backstop.crt"), "key": os.path.join(d, "backstop.key"),
                         "handshake_timeout": "1s"}})

with t.case("a ClientHello dribbled one byte every 0.3 s"):
    c = bs.client()
    c.ehlo()
    t.check_reply("STARTTLS 220", c.cmd("STARTTLS"), 220)
    # the start of a TLS record: handshake, TLS 1.0 record version, length
    hello = bytes([0x16, 0x03, 0x01, 0x02, 0x00]) + b"\x01" * 60
    t0 = time.monotonic()
    closed_at = None
    for b in hello:
        try:
            c.sock.sendall(bytes([b]))
        except OSError:
            closed_at = time.monotonic() - t0
            break
        try:
            c.sock.settimeout(0.3)
            if c.sock.recv(4096) == b"":
                closed_at = time.monotonic() - t0
                break
        except socket.timeout:
            pass
        except OSError:
            closed_at = time.monotonic() - t0
            break
    t.check("cut off at the deadline (%s s)" % (closed_at and round(closed_at, 1)),
            closed_at is not None and closed_at < 3.0, closed_at)
    t.check("logged as a STARTTLS handshake timeout",
            bs.wait_log(r"timeout after STARTTLS handshake", 2), bs.log()[-1500:])
    c.close()

bs.stop()
t.done()

#!/usr/bin/python3
"""tls_key_mode: the STARTTLS private key is refused when others can read
or write it, or its group can write it (as the BATV keys file is), at
start-up, by `backstop -t`, and on SIGHUP (the running key stays); a key
its group can only read is accepted."""
import subprocess
from harness import *

t = Test("tls_key_mode", need=("openssl",))
d = t.tmpdir("cert")
r = subprocess.run(["bash", os.path.join(srcdir(), "certs", "make-self-signed.sh"), "mx.test.example", d],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
if r.returncode != 0:
    t.error("make-self-signed.sh failed: %s" % r.stdout.decode(errors="replace"))
crt, key = os.path.join(d, "backstop.crt"), os.path.join(d, "backstop.key")
bs = t.backstop({"backend": {"address": "127.0.0.1:%d" % dead_port()},
                 "tls": {"certificate": crt, "key": key}}, start=False)

for mode, ok in ((0o600, True), (0o640, True), (0o644, False), (0o604, False), (0o660, False)):
    os.chmod(key, mode)
    rc, out = bs.check_config()
    if ok:
        t.check("key mode %04o: -t accepts it" % mode, rc == 0, out)
    else:
        t.check("key mode %04o: -t refuses it, naming the key, the mode and the fix" % mode,
                rc != 0 and key in out and "%04o" % mode in out and "chmod g-w,o-rwx" in out, out)

os.chmod(key, 0o600)
bs.start()
os.chmod(key, 0o644)
bs.mark()
bs.signal(signal.SIGHUP)
t.check("SIGHUP with a world-readable key: refused and logged", bs.wait_log(r"0644.*chmod g-w,o-rwx", 5),
        bs.log(True))
c = bs.client()
r = c.ehlo()
t.check("the running TLS context stays: STARTTLS still offered", "STARTTLS" in [l.upper() for l in r.lines], r)
t.done()

#!/usr/bin/python3
"""
make_fixtures - DKIM test data made by a real signer (python3-dkim).

    /usr/bin/python3 tests/data/dkim/make_fixtures.py OUTDIR
    /usr/bin/python3 tests/data/dkim/make_fixtures.py --verify OUTDIR [--delay S]

The first form makes fresh keys (RSA 2048, a second RSA 2048, RSA 512,
ed25519) into OUTDIR/keys, the zone OUTDIR/dkim.zone for tests/lib/dns_server.py
with their public keys, and one signed message per fixture in
OUTDIR/msgs/NAME.eml (CRLF, not dot-stuffed), described in
OUTDIR/fixtures.json: name, From domain, Message-ID, file, and per signature
(top to bottom) d=, s=, the first 8 characters of b= and the expected result.
Keys are made on every run (no private key lives in git); a run takes well
under a second.

--verify checks every fixture independently of backstop: it starts
tests/lib/dns_server.py on OUTDIR/dkim.zone (with --delay
slow._domainkey.example.org=S when given), fetches each key over real DNS
(dnslib client, 1 s timeout), lets python3-dkim verify every signature, and
prints python3-dkim's verdict next to EXPECTED. Exit 1 if any differs.

EXPECTED is the one table of expected results; tests/integration/dkim.py
imports it. Results are RFC 8601 dkim= values, one per signature, in the
order the DKIM-Signature fields appear (top first).
"""

import base64
import json
import os
import random
import subprocess
import sys
import time

import dkim
import nacl.encoding
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

# The delay the integration test gives the slow selector (longer than its
# [dkim] timeout); --verify uses it when asked to, to show temperror.
SLOW_NAME = "slow._domainkey.example.org"

# fixture -> expected dkim= result per signature (top first).
#   RFC 6376 6.1.2/6.1.3: no key record (NXDOMAIN), an empty p= (revoked,
#   3.6.1) and an unusable key are PERMFAIL -> permerror (RFC 8601 2.7.1);
#   a body hash or signature mismatch is fail; a key lookup that does not
#   finish is TEMPFAIL -> temperror. (libopendkim sets SIGFLAG_PROCESSED on
#   NOKEY and KEYREVOKED signatures too, so the opendkim milter's mapping
#   says "fail" for them: map sig errors 22/42/46 to permerror first.)
#   RFC 8301 3.2: RSA keys under 1024 bits MUST NOT be considered valid; the
#   issue says permerror (libopendkim says KEYTOOSMALL, which the opendkim
#   milter maps to "policy": the filter must map it to permerror).
#   l=: RFC 6376 6.1.3 only the first l octets are hashed, so appended text
#   still passes (the signed part verifies). A filter that reports l=
#   signatures as "policy" changes the l-appended row to ("policy",).
#   ed25519-sha256 (RFC 8463): libopendkim 2.11.0~beta2 in Debian 12 verifies
#   it (DKIM_FEATURE_ED25519 on, checked with opendkim_probe.c), so: pass.
EXPECTED = {
    "valid-simple":          ("pass",),
    "valid-relaxed":         ("pass",),
    "body-changed":          ("fail",),
    "header-changed":        ("fail",),
    "l-appended":            ("pass",),
    "l-signed-part-changed": ("fail",),
    "two-sigs-one-bad":      ("fail", "pass"),   # example.net bad (top), example.org good
    "two-sigs-org-bad":      ("pass", "fail"),   # example.net good (top), example.org bad
    "missing-key":           ("permerror",),
    "revoked-key":           ("permerror",),
    "rsa512":                ("permerror",),
    "ed25519":               ("pass",),
    "dot-lines":             ("pass",),
    "long-header":           ("pass",),
    "slow-key":              ("temperror",),     # only with the DNS delay; else pass
    "many-sigs":             ("pass",) * 6,      # before [dkim] max_signatures applies
    "unsigned":              (),                 # dkim=none
    "unsigned-net":          (),
}


def from_domain(name):
    return "example.net" if name == "unsigned-net" else "example.org"


# ---------------------------------------------------------------- keys

def rsa_key(bits):
    """(PEM PKCS#1 private key, base64 DER SubjectPublicKeyInfo)."""
    k = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(pub).decode()


def ed25519_key():
    """(base64 32-byte seed as python3-dkim wants it, base64 raw public key
    as RFC 8463 4 wants it in p=)."""
    sk = nacl.signing.SigningKey.generate()
    return (sk.encode(encoder=nacl.encoding.Base64Encoder),
            sk.verify_key.encode(encoder=nacl.encoding.Base64Encoder).decode())


# ---------------------------------------------------------------- messages

def message(name, body="Hello from the DKIM fixture %(name)s.\nSecond line.\n", extra=()):
    dom = from_domain(name)
    mid = "<dkim-%s.%d@%s>" % (name, random.randint(0, 1 << 40), dom)
    hdr = ["From: Sender <sender@%s>" % dom, "To: <user@test.example>",
           "Subject: dkim fixture %s" % name, "Date: Mon, 01 Jan 2024 12:00:00 +0000",
           "Message-ID: %s" % mid, "MIME-Version: 1.0",
           "Content-Type: text/plain; charset=us-ascii"] + list(extra)
    text = "\r\n".join(hdr) + "\r\n\r\n" + (body % {"name": name}).replace("\n", "\r\n")
    return text.encode(), mid


def sign(msg, selector, domain, key, canon=(b"relaxed", b"relaxed"), alg=b"rsa-sha256",
         length=False, headers=None):
    """msg with a new DKIM-Signature field on top."""
    if headers is None:
        headers = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version",
                   b"content-type"]
    sig = dkim.sign(msg, selector.encode(), domain.encode(), key, canonicalize=canon,
                    signature_algorithm=alg, include_headers=headers, length=length)
    return sig + msg


def replace_once(msg, old, new):
    assert msg.count(old) == 1, (old, msg)
    return msg.replace(old, new)


def signatures(msg):
    """[(d, s, b8)] of msg's DKIM-Signature fields, top first."""
    d = dkim.DKIM(msg)
    out = []
    for name, value in d.headers:
        if name.lower() != b"dkim-signature":
            continue
        tags = dkim.util.parse_tag_value(value)
        b = b"".join(tags[b"b"].split()).decode()
        out.append((tags[b"d"].decode(), tags[b"s"].decode(), b[:8]))
    return out


def make(outdir):
    os.makedirs(os.path.join(outdir, "keys"), exist_ok=True)
    os.makedirs(os.path.join(outdir, "msgs"), exist_ok=True)
    main_pem, main_pub = rsa_key(2048)
    other_pem, other_pub = rsa_key(2048)
    small_pem, small_pub = rsa_key(512)
    ed_priv, ed_pub = ed25519_key()
    for fn, data in (("main.pem", main_pem), ("other.pem", other_pem), ("rsa512.pem", small_pem),
                     ("ed25519.seed", ed_priv)):
        path = os.path.join(outdir, "keys", fn)
        with open(path, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)

    rsa_rec = lambda pub: '"v=DKIM1; k=rsa; p=%s"' % pub   # noqa: E731
    zone = [
        "; DKIM test zone for tests/lib/dns_server.py, made by make_fixtures.py",
        "; (fresh keys on every run). Selectors of example.org and example.net.",
        "example.org.  60 IN SOA ns.example.org. hostmaster.example.org. 1 60 60 600 30",
        "example.org.  60 IN NS  ns.example.org.",
        "ns.example.org. 60 IN A 127.0.0.1",
        "example.org.  60 IN TXT \"v=spf1 ip4:127.0.0.0/8 -all\"",
        "example.net.  60 IN SOA ns.example.org. hostmaster.example.org. 1 60 60 600 30",
        "example.net.  60 IN TXT \"v=spf1 ip4:127.0.0.0/8 -all\"",
        "sel2048._domainkey.example.org. 60 IN TXT " + rsa_rec(main_pub),
        "sel2048._domainkey.example.net. 60 IN TXT " + rsa_rec(main_pub),
        "; a key other than the one that signed: signatures by s=badkey fail",
        "badkey._domainkey.example.org. 60 IN TXT " + rsa_rec(other_pub),
        "badkey._domainkey.example.net. 60 IN TXT " + rsa_rec(other_pub),
        "; revoked (RFC 6376 3.6.1: empty p=)",
        "revoked._domainkey.example.org. 60 IN TXT \"v=DKIM1; k=rsa; p=\"",
        "sel512._domainkey.example.org. 60 IN TXT " + rsa_rec(small_pub),
        "ed._domainkey.example.org. 60 IN TXT \"v=DKIM1; k=ed25519; p=%s\"" % ed_pub,
        "; the test delays this name (dns_server.py --delay) beyond [dkim] timeout",
        "%s. 60 IN TXT %s" % (SLOW_NAME, rsa_rec(main_pub)),
        "; nokey._domainkey.example.org has no record: NXDOMAIN",
    ] + ["m%d._domainkey.example.org. 60 IN TXT %s" % (i, rsa_rec(main_pub)) for i in range(1, 7)]
    with open(os.path.join(outdir, "dkim.zone"), "w") as f:
        f.write("\n".join(zone) + "\n")

    S, R = (b"simple", b"simple"), (b"relaxed", b"relaxed")
    fx = {}

    m, mid = message("valid-simple")
    fx["valid-simple"] = (sign(m, "sel2048", "example.org", main_pem, S), mid)
    m, mid = message("valid-relaxed")
    fx["valid-relaxed"] = (sign(m, "sel2048", "example.org", main_pem, R), mid)
    m, mid = message("body-changed")
    m = sign(m, "sel2048", "example.org", main_pem, R)
    fx["body-changed"] = (replace_once(m, b"Second line.", b"Second line, changed."), mid)
    m, mid = message("header-changed")
    m = sign(m, "sel2048", "example.org", main_pem, R)
    fx["header-changed"] = (replace_once(m, b"Subject: dkim fixture header-changed",
                                         b"Subject: dkim fixture header-changed!"), mid)
    m, mid = message("l-appended")
    m = sign(m, "sel2048", "example.org", main_pem, R, length=True)
    fx["l-appended"] = (m + b"-- \r\nAppended by a mailing list after signing.\r\n", mid)
    m, mid = message("l-signed-part-changed")
    m = sign(m, "sel2048", "example.org", main_pem, R, length=True)
    fx["l-signed-part-changed"] = (replace_once(m, b"Second line.", b"Second lime."), mid)
    m, mid = message("two-sigs-one-bad")
    m = sign(m, "sel2048", "example.org", main_pem, R)
    fx["two-sigs-one-bad"] = (sign(m, "badkey", "example.net", main_pem, R), mid)
    m, mid = message("two-sigs-org-bad")
    m = sign(m, "badkey", "example.org", main_pem, R)
    fx["two-sigs-org-bad"] = (sign(m, "sel2048", "example.net", main_pem, R), mid)
    m, mid = message("missing-key")
    fx["missing-key"] = (sign(m, "nokey", "example.org", main_pem, R), mid)
    m, mid = message("revoked-key")
    fx["revoked-key"] = (sign(m, "revoked", "example.org", main_pem, R), mid)
    m, mid = message("rsa512")
    fx["rsa512"] = (sign(m, "sel512", "example.org", small_pem, R), mid)
    m, mid = message("ed25519")
    fx["ed25519"] = (sign(m, "ed", "example.org", ed_priv, R, alg=b"ed25519-sha256"), mid)
    # Lines that SMTP dot-stuffs: ".x", "..", and a lone "." that would end
    # DATA if the client did not stuff it. Simple body canonicalization so
    # that any change of a byte breaks the body hash.
    m, mid = message("dot-lines", body=".leading dot\n..two dots\n.\nbetween\n..\n. space\nend\n")
    fx["dot-lines"] = (sign(m, "sel2048", "example.org", main_pem, S), mid)
    # A header field of 1400 bytes, folded into lines under 80, signed with
    # simple header canonicalization (the folding must arrive unchanged).
    words = ["w%04d" % i for i in range(230)]
    lines, cur = [], "X-Long:"
    for w in words:
        if len(cur) + 1 + len(w) > 76:
            lines.append(cur)
            cur = "\t" + w
        else:
            cur += " " + w
    lines.append(cur)
    longhdr = "\r\n".join(lines)
    assert len(longhdr) > 1000
    m, mid = message("long-header", extra=[longhdr])
    fx["long-header"] = (sign(m, "sel2048", "example.org", main_pem, S,
                              headers=[b"from", b"to", b"subject", b"date", b"message-id",
                                       b"x-long"]), mid)
    m, mid = message("slow-key")
    fx["slow-key"] = (sign(m, "slow", "example.org", main_pem, R), mid)
    m, mid = message("many-sigs")
    for i in range(6, 0, -1):   # m1 ends on top
        m = sign(m, "m%d" % i, "example.org", main_pem, R)
    fx["many-sigs"] = (m, mid)
    fx["unsigned"] = message("unsigned")
    fx["unsigned-net"] = message("unsigned-net")

    assert set(fx) == set(EXPECTED), set(fx) ^ set(EXPECTED)
    index = []
    for name in EXPECTED:
        msg, mid = fx[name]
        path = os.path.join(outdir, "msgs", name + ".eml")
        with open(path, "wb") as f:
            f.write(msg)
        sigs = signatures(msg)
        assert len(sigs) == len(EXPECTED[name]), name
        index.append({"name": name, "file": path, "message_id": mid,
                      "from_domain": from_domain(name),
                      "signatures": [{"d": d, "s": s, "b8": b8, "expect": e}
                                     for (d, s, b8), e in zip(sigs, EXPECTED[name])]})
    with open(os.path.join(outdir, "fixtures.json"), "w") as f:
        json.dump(index, f, indent=1)
    return index


# ---------------------------------------------------------------- verify

class DnsTimeout(Exception):
    pass


def dns_txt(port, name, timeout=1.0):
    """The TXT record of name from 127.0.0.1:port over UDP/TCP (strings
    joined), None for NXDOMAIN/NODATA; DnsTimeout when no answer comes."""
    from dnslib import QTYPE, RCODE, DNSRecord
    q = DNSRecord.question(name, "TXT")
    try:
        raw = q.send("127.0.0.1", port, timeout=timeout)
        a = DNSRecord.parse(raw)
        if a.header.tc:
            a = DNSRecord.parse(q.send("127.0.0.1", port, tcp=True, timeout=timeout))
    except OSError as e:   # socket.timeout
        raise DnsTimeout(str(e))
    if a.header.rcode != RCODE.NOERROR:
        if a.header.rcode == RCODE.NXDOMAIN:
            return None
        raise DnsTimeout("rcode %s" % RCODE[a.header.rcode])
    recs = [b"".join(r.rdata.data) for r in a.rr if r.rtype == QTYPE.TXT]
    return recs[0] if len(recs) == 1 else None


def verify_one(msg, idx, port):
    """python3-dkim's verdict on signature idx, as an RFC 8601 result."""
    d = dkim.DKIM(msg, minkey=1024)
    tags = dkim.util.parse_tag_value(
        [v for n, v in d.headers if n.lower() == b"dkim-signature"][idx])
    name = (tags[b"s"] + b"._domainkey." + tags[b"d"]).decode()
    try:
        txt = dns_txt(port, name)
    except DnsTimeout:
        return "temperror", "key lookup timed out"
    if txt is None:
        return "permerror", "no key record"
    try:
        dkim.evaluate_pk(name, txt)
    except dkim.KeyFormatError as e:
        return "permerror", "key: %s" % e
    try:
        ok = d.verify(idx=idx, dnsfunc=lambda n, timeout=5: txt)
    except dkim.ValidationError as e:
        if "body hash mismatch" in str(e):
            return "fail", "body hash mismatch"
        return "permerror", str(e)
    except dkim.KeyFormatError as e:
        return "permerror", str(e)
    except dkim.DKIMException as e:
        return "permerror", "%s: %s" % (type(e).__name__, e)
    return ("pass", "") if ok else ("fail", "signature does not verify")


def start_dns(zone, delay):
    args = ["/usr/bin/python3", os.path.join(SRCDIR, "tests", "lib", "dns_server.py"),
            "--port", "0", zone]
    if delay:
        args += ["--delay", "%s=%s" % (SLOW_NAME, delay)]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    if not line.startswith("ready "):
        p.kill()
        sys.exit("dns_server.py did not start")
    return p, int(line.split()[1])


def verify(outdir, delay):
    with open(os.path.join(outdir, "fixtures.json")) as f:
        index = json.load(f)
    p, port = start_dns(os.path.join(outdir, "dkim.zone"), delay)
    bad = 0
    try:
        print("%-22s %-8s %-12s %-10s %-10s %s" % ("fixture", "d=", "s=", "expected", "python3-dkim", "why"))
        for fx in index:
            with open(fx["file"], "rb") as f:
                msg = f.read()
            if not fx["signatures"]:
                print("%-22s %-8s %-12s %-10s %-10s" % (fx["name"], "-", "-", "none",
                                                        "none" if not dkim.DKIM(msg).present() else "SIGNED"))
                continue
            for i, s in enumerate(fx["signatures"]):
                got, why = verify_one(msg, i, port)
                want = s["expect"]
                if fx["name"] == "slow-key" and not delay:
                    want = "pass"
                mark = "" if got == want else "   <-- differs"
                bad += got != want
                print("%-22s %-8s %-12s %-10s %-10s %s%s" % (fx["name"] if i == 0 else "", s["d"].split(".")[1],
                                                             s["s"], want, got, why, mark))
    finally:
        p.terminate()
        p.wait()
    return 1 if bad else 0


def main():
    args = sys.argv[1:]
    if args and args[0] == "--verify":
        delay = None
        if "--delay" in args:
            i = args.index("--delay")
            delay = args[i + 1]
            del args[i:i + 2]
        return verify(args[1], delay)
    if len(args) != 1:
        sys.exit(__doc__)
    t0 = time.monotonic()
    index = make(args[0])
    print("made %d fixtures in %s (%.2fs)" % (len(index), args[0], time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""
content_fixtures - signed messages and a DNS zone for content_bench.sh.

    /usr/bin/python3 tests/bench/content_fixtures.py OUTDIR SIZE...

SIZE is a byte count with an optional k or m suffix (2k, 100k, 50m). Makes
a fresh RSA 2048 key, OUTDIR/bench.zone for tests/lib/dns_server.py and,
per size, OUTDIR/msg-SIZE.eml: a message of about that many bytes (CRLF,
not dot-stuffed, plain text lines of 72 characters, a few of them starting
with a dot), From: sender@example.org, signed by python3-dkim with
d=example.org s=bench, rsa-sha256, relaxed/relaxed, over the usual header
fields. The zone has, with one-day TTLs (a resolver cache keeps them for
the whole benchmark): the DKIM key, "v=spf1 ip4:198.51.100.0/24 -all" for
example.org and for the HELO name client.example.org, and
"v=DMARC1; p=reject" at _dmarc.example.org. So a client in
198.51.100.0/24 gets spf=pass, dkim=pass and dmarc=pass.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "data", "dkim"))
sys.dont_write_bytecode = True
import make_fixtures  # noqa: E402  (rsa_key, sign: the DKIM tests' signer)

TTL = 86400
WORDS = ("the quick brown fox jumps over lazy dog message content check filter "
         "spool hold relay backend signature header body hash verify domain").split()


def parse_size(s):
    mult = {"k": 1024, "m": 1024 * 1024}.get(s[-1].lower(), 1)
    return int(s[:-1] if mult > 1 else s) * mult


def body(size):
    """About size bytes of CRLF text lines of 72 characters; every 50th line
    starts with a dot (SMTP dot-stuffing is part of the work)."""
    lines, n, i = [], 0, 0
    while n < size:
        w, line = i, ""
        while len(line) < 72:
            line += WORDS[w % len(WORDS)] + " "
            w = w * 7 + 3
        line = line[:72]
        if i % 50 == 49:
            line = "." + line[1:]
        lines.append(line)
        n += 74
        i += 1
    return "\r\n".join(lines) + "\r\n"


def message(label, size):
    hdr = ["From: Sender <sender@example.org>", "To: <user@test.example>",
           "Subject: content benchmark %s" % label, "Date: Mon, 01 Jan 2024 12:00:00 +0000",
           "Message-ID: <bench-%s@example.org>" % label, "MIME-Version: 1.0",
           "Content-Type: text/plain; charset=us-ascii"]
    head = "\r\n".join(hdr) + "\r\n\r\n"
    return (head + body(max(size - len(head) - 500, 74))).encode()   # ~500: the signature


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    pem, pub = make_fixtures.rsa_key(2048)
    zone = [
        "example.org. %d IN SOA ns.example.org. hostmaster.example.org. 1 %d %d %d %d"
        % (TTL, TTL, TTL, TTL, TTL),
        "example.org. %d IN TXT \"v=spf1 ip4:198.51.100.0/24 -all\"" % TTL,
        "client.example.org. %d IN TXT \"v=spf1 ip4:198.51.100.0/24 -all\"" % TTL,
        "bench._domainkey.example.org. %d IN TXT \"v=DKIM1; k=rsa; p=%s\"" % (TTL, pub),
        "_dmarc.example.org. %d IN TXT \"v=DMARC1; p=reject\"" % TTL,
    ]
    with open(os.path.join(out, "bench.zone"), "w") as f:
        f.write("\n".join(zone) + "\n")
    for label in sys.argv[2:]:
        m = make_fixtures.sign(message(label, parse_size(label)), "bench", "example.org", pem)
        with open(os.path.join(out, "msg-%s.eml" % label), "wb") as f:
            f.write(m)
        print("msg-%s.eml %d bytes" % (label, len(m)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

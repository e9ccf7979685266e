#!/usr/bin/python3
"""
dns_server - a small authoritative DNS server for tests (python3-dnslib).

    /usr/bin/python3 tests/lib/dns_server.py --port 0 ZONEFILE... \
        [--delay NAME=SECONDS]... [--servfail NAME]... [--log FILE]

Serves UDP and TCP on 127.0.0.1 (the same port), prints "ready PORT" on
stdout once both listen, and runs until SIGTERM. Each query runs in its own
thread (dnslib's ThreadingMixIn), so a delayed name delays only its own
queries. UDP answers longer than 1232 bytes are truncated (TC) so that the
resolver retries over TCP, as with a real server.

Zone file format (one record per line; ';' starts a comment outside quotes):
    NAME TTL [IN] TYPE DATA
    example.org.  60 IN SOA ns.example.org. host.example.org. 1 60 60 60 30
    example.org.  60 IN TXT "v=spf1 " "-all"      ; strings are concatenated
    x.example.org. 60 IN TXT "tab\\009 and cr\\013"  ; \\DDD (decimal) and \\X escapes
    $DELAY slow.example.org. 3.0                   ; every query for the name
    $SERVFAIL broken.example.org.
A TXT string longer than 255 bytes is split into 255-byte character-strings.
Types: A AAAA TXT MX PTR CNAME NS SOA. Names must be absolute. Names below
a zone (an SOA owner) that have no records get NXDOMAIN, existing names
without the type NODATA, both with the SOA (so resolvers cache them);
names outside every zone get REFUSED.

With --log, each query is appended as "NAME TYPE" (to count cache misses).
"""

import argparse
import socket
import sys
import threading
import time

from dnslib import AAAA, CNAME, MX, NS, PTR, QTYPE, RCODE, RR, SOA, TXT, A, DNSLabel
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

UDP_MAX = 1232


def tokenize(line, lineno):
    """Split a zone line into tokens; quoted strings become bytes."""
    out, i, n = [], 0, len(line)
    while i < n:
        c = line[i]
        if c in " \t\r\n":
            i += 1
        elif c == ";":
            break
        elif c == '"':
            i += 1
            buf = bytearray()
            while True:
                if i >= n:
                    raise ValueError(f"line {lineno}: unterminated string")
                c = line[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\":
                    if i + 3 < n and line[i + 1:i + 4].isdigit():
                        buf.append(int(line[i + 1:i + 4]))
                        i += 4
                        continue
                    if i + 1 >= n:
                        raise ValueError(f"line {lineno}: bad escape")
                    buf += line[i + 1].encode("latin-1")
                    i += 2
                    continue
                buf += c.encode("latin-1")
                i += 1
            out.append(bytes(buf))
        else:
            j = i
            while j < n and line[j] not in " \t\r\n;\"":
                j += 1
            out.append(line[i:j])
            i = j
    return out


def split255(b):
    if not b:
        return [b""]
    return [b[i:i + 255] for i in range(0, len(b), 255)]


def load_zone(path, records, delays, servfail):
    with open(path, encoding="latin-1") as f:
        for lineno, line in enumerate(f, 1):
            toks = tokenize(line, lineno)
            if not toks:
                continue
            if toks[0] == "$DELAY":
                delays[toks[1].lower()] = float(toks[2])
                continue
            if toks[0] == "$SERVFAIL":
                servfail.add(toks[1].lower())
                continue
            name, ttl = toks[0], int(toks[1])
            rest = toks[2:]
            if rest and rest[0] == "IN":
                rest = rest[1:]
            rtype, data = rest[0].upper(), rest[1:]
            if not name.endswith("."):
                raise ValueError(f"{path}:{lineno}: {name} is not absolute")
            if rtype == "A":
                rdata = A(data[0])
            elif rtype == "AAAA":
                rdata = AAAA(data[0])
            elif rtype == "TXT":
                strings = []
                for d in data:
                    strings += split255(d if isinstance(d, bytes) else d.encode())
                rdata = TXT(strings)
            elif rtype == "MX":
                rdata = MX(data[1], int(data[0]))
            elif rtype == "PTR":
                rdata = PTR(data[0])
            elif rtype == "CNAME":
                rdata = CNAME(data[0])
            elif rtype == "NS":
                rdata = NS(data[0])
            elif rtype == "SOA":
                rdata = SOA(data[0], data[1], tuple(int(x) for x in data[2:7]))
            else:
                raise ValueError(f"{path}:{lineno}: type {rtype} not supported")
            rr = RR(DNSLabel(name), getattr(QTYPE, rtype), rdata=rdata, ttl=ttl)
            records.setdefault(name.lower(), []).append(rr)


class Resolver(BaseResolver):
    def __init__(self, records, delays, servfail, logfile):
        self.records, self.delays, self.servfail = records, delays, servfail
        self.logfile = logfile
        self.loglock = threading.Lock()
        self.soas = {n: rrs for n, rrs in records.items()
                     if any(r.rtype == QTYPE.SOA for r in rrs)}

    def zone_of(self, name):
        labels = name.split(".")
        for i in range(len(labels)):
            cand = ".".join(labels[i:])
            if cand in self.soas:
                return cand
        return None

    def resolve(self, request, handler):
        q = request.q
        name = str(q.qname).lower()
        if self.logfile:
            with self.loglock, open(self.logfile, "a") as f:
                f.write(f"{name} {QTYPE[q.qtype]}\n")
        delay = self.delays.get(name, 0)
        if delay:
            time.sleep(delay)
        reply = request.reply()
        if name in self.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        zone = self.zone_of(name)
        if zone is None:
            reply.header.rcode = RCODE.REFUSED
            return reply
        reply.header.aa = 1
        rrs = self.records.get(name, [])
        answers = [r for r in rrs if r.rtype == q.qtype or q.qtype == QTYPE.ANY]
        if not answers:
            cname = [r for r in rrs if r.rtype == QTYPE.CNAME]
            if cname:
                answers = cname
                target = str(cname[0].rdata.label).lower()
                answers += [r for r in self.records.get(target, []) if r.rtype == q.qtype]
        for r in answers:
            reply.add_answer(r)
        if not answers:
            if not rrs and not any(n.endswith("." + name) for n in self.records):
                reply.header.rcode = RCODE.NXDOMAIN
            for soa in self.soas[zone]:
                if soa.rtype == QTYPE.SOA:
                    reply.add_auth(soa)
        return reply


class Handler(DNSHandler):
    udplen = UDP_MAX


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--delay", action="append", default=[], help="NAME=SECONDS")
    ap.add_argument("--servfail", action="append", default=[])
    ap.add_argument("--log")
    ap.add_argument("zones", nargs="+")
    a = ap.parse_args()

    records, delays, servfail = {}, {}, set()
    for z in a.zones:
        load_zone(z, records, delays, servfail)
    for d in a.delay:
        n, s = d.rsplit("=", 1)
        delays[n.lower() if n.endswith(".") else n.lower() + "."] = float(s)
    for n in a.servfail:
        servfail.add(n.lower() if n.endswith(".") else n.lower() + ".")

    port = a.port
    if port == 0:   # one free port for both UDP and TCP
        for _ in range(50):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((a.address, 0))
            port = s.getsockname()[1]
            s.close()
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind((a.address, port))
                u.close()
                break
            except OSError:
                u.close()
    resolver = Resolver(records, delays, servfail, a.log)
    logger = DNSLogger("-request,-reply,-truncated,-recv,-send,-data", prefix=False)
    for tcp in (False, True):
        srv = DNSServer(resolver, address=a.address, port=port, tcp=tcp,
                        logger=logger, handler=Handler)
        srv.server.daemon_threads = True
        srv.start_thread()
    print(f"ready {port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())

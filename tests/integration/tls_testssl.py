#!/usr/bin/python3
"""tls_testssl: testssl.sh (Debian package testssl.sh, command testssl)
against backstop's STARTTLS listener with the default [tls] settings and
the quick start's RSA self-signed certificate: protocols, cipher
categories, forward secrecy, server preference and the known
vulnerabilities (-p -s -f -P -U). No finding may be HIGH or CRITICAL.
Certificate trust (-S) is left out: a self-signed certificate is expected
to be untrusted. Skipped when testssl is not installed."""
import json
import os
import shutil
import subprocess
from harness import *

prog = shutil.which("testssl") or shutil.which("testssl.sh")
t = Test("tls_testssl", need=("openssl",))
if prog is None:
    t.error("testssl (Debian package testssl.sh) not installed: tests/deps.sh installs it")
d = t.tmpdir("cert")
r = subprocess.run(["sh", os.path.join(srcdir(), "certs", "make-self-signed.sh"), "localhost", d],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
if r.returncode != 0:
    t.error("make-self-signed.sh failed: %s" % r.stdout.decode(errors="replace"))
# no backend is needed: testssl never starts a mail transaction
bs = t.backstop({"backend": {"address": "127.0.0.1:%d" % dead_port()},
                 "tls": {"certificate": os.path.join(d, "backstop.crt"),
                         "key": os.path.join(d, "backstop.key")}})

with t.case("testssl -p -s -f -P -U --starttls smtp: nothing HIGH or CRITICAL"):
    jf = os.path.join(d, "testssl.json")
    r = subprocess.run([prog, "--quiet", "--warnings", "off", "--color", "0", "--jsonfile", jf,
                        "-p", "-s", "-f", "-P", "-U", "--starttls", "smtp",
                        "127.0.0.1:%d" % bs.port],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    out = r.stdout.decode(errors="replace")
    try:
        findings = json.load(open(jf))
    except (OSError, ValueError) as e:
        findings = []
        t.check("testssl wrote its JSON file", False, "%s\n%s" % (e, out[-3000:]))
    ids = {f.get("id") for f in findings}
    t.check("testssl ran the checks (protocols, ciphers, vulnerabilities)",
            {"TLS1_2", "TLS1_3", "PFS", "heartbleed", "ROBOT"} <= ids, sorted(ids))
    bad = [f for f in findings if f.get("severity") in ("HIGH", "CRITICAL")]
    t.check("no HIGH or CRITICAL finding", not bad, bad)
    sev = {}
    for f in findings:
        sev[f.get("severity")] = sev.get(f.get("severity"), 0) + 1
    log("# testssl severities: %s" % sev)
    for f in findings:
        if f.get("severity") in ("MEDIUM", "LOW"):
            log("# %s %s: %s" % (f.get("severity"), f.get("id"), f.get("finding")))
    byid = {f.get("id"): f for f in findings}
    for proto in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        t.check("%s not offered" % proto, "not offered" in byid.get(proto, {}).get("finding", ""),
                byid.get(proto))
    t.check("TLS 1.3 offered", "offered" in byid.get("TLS1_3", {}).get("finding", ""), byid.get("TLS1_3"))
    t.check("forward secrecy offered", byid.get("PFS", {}).get("severity") == "OK", byid.get("PFS"))

bs.stop()
t.done()

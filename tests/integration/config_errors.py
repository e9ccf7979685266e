#!/usr/bin/python3
"""config_errors: what `backstop -t` accepts, the daemon starts with, and
what it refuses, the daemon refuses too (every bad case below is run with
-t and with -f). Keys above the first [section] are errors (they were
silently ignored); listen and [dns] servers take IP addresses only (a host
name passed -t and failed at start-up); [dns] servers without a port get
53; TLSv1.0/1.1 are refused (every such handshake failed at run time);
[server] user must exist; --help and -h print the usage on stdout."""
import os
import re
import subprocess
from harness import *

t = Test("config_errors", watchdog=120)
d = t.tmpdir("configs")
BACKEND = "127.0.0.1:%d" % dead_port()


def write(text, name):
    path = os.path.join(d, name + ".ini")
    with open(path, "w") as f:
        f.write(text)
    return path


def run(*argv, timeout=10):
    r = subprocess.run([t.bin] + list(argv), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def start_f(path, *opts):
    """backstop -f: (exit status or None if still running after 3 s, output)."""
    port = free_port()
    p = subprocess.Popen([t.bin, "-f", "-c", path, "-o", "server.listen=127.0.0.1:%d" % port] + list(opts),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        out, _ = p.communicate(timeout=3)
        return p.returncode, out.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        p.terminate()
        out, _ = p.communicate(timeout=10)
        return None, out.decode("utf-8", "replace")


DNS = "127.0.0.1:%d" % dead_port()


def base(servers=DNS):
    # user = root: started as root, backstop refuses to keep root unless told
    # so by name (privdrop.py); last, so that line numbers above stay put
    return ("[backend]\naddress = %s\n[dns]\nservers = %s\nreverse_lookup = no\n"
            "[spf]\nmode = off\n[server]\nuser = root\n" % (BACKEND, servers))


BASE = base()

# (name, file text, -o options, regex the -t output must match)
BAD = [
    ("key before any section", "max_errors = 3\n" + BASE, [],
     r":1: 'max_errors' is outside any section: put it under \[limits\]"),
    ("unknown key before any section", "colour = blue\n" + BASE, [],
     r":1: 'colour' is outside any section"),
    ("-o dns.servers with a host name", BASE, ["-o", "dns.servers=ns.example.net:53"],
     r"-o: 'dns.servers=ns.example.net:53': 'ns.example.net:53' is not one or more IP addresses"),
    ("[dns] servers with a host name", base("localhost:53"), [],
     r":4: \[dns\] servers: 'localhost:53' is not one or more IP addresses"),
    ("listen with a host name", BASE, ["-o", "server.listen=localhost:2525"],
     r"'localhost:2525' is not one or more IP address:port"),
    ("protocols = TLSv1.0", BASE, ["-o", "tls.protocols=TLSv1.0"],
     r"\[tls\] protocols: TLSv1.0 is not supported"),
    ("protocols = TLSv1.1 TLSv1.2", BASE, ["-o", "tls.protocols=TLSv1.1 TLSv1.2"],
     r"\[tls\] protocols: TLSv1.1 is not supported"),
    ("protocols = TLSv1.4", BASE, ["-o", "tls.protocols=TLSv1.4"],
     r"\[tls\] protocols: unknown protocol \"TLSv1.4\""),
    ("user that does not exist", BASE, ["-o", "server.user=no-such-user-bs"],
     r"\[server\] user: no such user 'no-such-user-bs'"),
    ("group without user", BASE, ["-o", "server.group=nogroup", "-o", "server.user="],
     r"\[server\] group = nogroup needs \[server\] user"),
    ("group that does not exist", BASE, ["-o", "server.user=nobody", "-o", "server.group=no-such-group-bs"],
     r"\[server\] group: no such group 'no-such-group-bs'"),
]

for name, text, opts, rx in BAD:
    with t.case("refused by -t and by the daemon: " + name):
        path = write(text, re.sub(r"\W+", "_", name))
        rc, out = run("-t", "-c", path, *opts)
        t.check("-t exits 1", rc == 1, "rc %s: %s" % (rc, out))
        t.check("-t says %s" % rx, re.search(rx, out), out)
        t.check("-t does not say OK", "configuration OK" not in out, out)
        rc, out = start_f(path, *opts)
        t.check("-f refuses to start too (exit 1)", rc == 1, "rc %s: %s" % (rc, out))
        t.check("-f says the same", re.search(rx, out), out)

with t.case("-n refuses a key before any section (it showed the default)"):
    path = write("max_errors = 3\n" + BASE, "n_before_section")
    rc, out = run("-n", "-c", path)
    t.check("-n exits 1", rc == 1, out)
    t.check("-n does not print max_errors = 10", "max_errors = 10" not in out, out)

# accepted by -t and by the daemon
GOOD = [
    ("[dns] servers without a port", base("127.0.0.1 ::1 [::1] 192.0.2.53:5353"), [],
     r"servers = 127\.0\.0\.1:53 \[::1\]:53 \[::1\]:53 192\.0\.2\.53:5353"),
    ("protocols = TLSv1.2", BASE, ["-o", "tls.protocols=TLSv1.2"], r"protocols = TLSv1.2"),
    ("user = nobody", BASE, ["-o", "server.user=nobody"], r"user = nobody"),
]
for name, text, opts, rx in GOOD:
    with t.case("accepted by -t and by the daemon: " + name):
        path = write(text, re.sub(r"\W+", "_", name))
        rc, out = run("-t", "-c", path, *opts)
        t.check("-t exits 0", rc == 0, out)
        rc, out = run("-n", "-c", path, *opts)
        t.check("-n shows %s" % rx, rc == 0 and re.search(rx, out), out)
        rc, out = start_f(path, *opts)
        t.check("-f starts (still running after 3 s)", rc is None and "listening on" in out,
                "rc %s: %s" % (rc, out))

with t.case("[dns] servers = 127.0.0.1 reaches the resolver as port 53"):
    # the daemon used to refuse it: "[dns] servers: bad address 127.0.0.1"
    path = write(base("127.0.0.1"), "dns_no_port")
    rc, out = start_f(path)
    t.check("-f starts with servers = 127.0.0.1", rc is None and "listening on" in out, out)

with t.case("--help and -h"):
    for opt in ("--help", "-h"):
        r = subprocess.run([t.bin, opt], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        out = r.stdout.decode()
        t.check("%s exits 0" % opt, r.returncode == 0, r)
        t.check("%s prints the usage on stdout" % opt,
                out.startswith("usage: backstop") and "-t [-c FILE]" in out, out)
    r = subprocess.run([t.bin, "--no-such-option"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    t.check("an unknown option exits 2 with the usage on stderr",
            r.returncode == 2 and b"usage: backstop" in r.stderr, r)

with t.case("[server] spool_dir: a directory, writable by the user backstop runs as"):
    path = write(BASE, "spool")
    rc, out = run("-t", "-c", path, "-o", "server.spool_dir=%s" % os.path.join(d, "missing"))
    t.check("-t refuses a spool_dir that does not exist", rc != 0 and "spool_dir" in out, out)
    locked = os.path.join(d, "locked-spool")
    os.makedirs(locked, exist_ok=True)
    os.chmod(locked, 0o700)   # root's: user nobody cannot create files in it
    rc, out = run("-t", "-c", path, "-o", "server.spool_dir=%s" % locked, "-o", "server.user=nobody")
    t.check("-t warns when user nobody could not write spool_dir",
            "spool_dir %s is not writable by uid" % locked in out, out)
    os.chmod(locked, 0o1777)
    rc, out = run("-t", "-c", path, "-o", "server.spool_dir=%s" % locked, "-o", "server.user=nobody")
    t.check("-t is quiet about a spool_dir the user can write", rc == 0 and "spool_dir" not in out, out)

with t.case("README and backstop.ini agree"):
    readme = open(os.path.join(srcdir(), "README.md")).read()
    ini = open(os.path.join(srcdir(), "backstop.ini")).read()
    backend = re.search(r"^\[backend\][^\[]*?^address = (\S+)", ini, re.M | re.S).group(1)
    port = backend.rsplit(":", 1)[1]
    # (an smtpd that takes a PROXY header, for [backend] identity = proxy, or
    # one that does not trust backstop, for xforward, is a second port of its own)
    smtpd = set(re.findall(r"127\.0\.0\.1:(\d+)\s+inet[^\n]*\n"
                           r"(?!\s+-o (?:smtpd_upstream_proxy_protocol|mynetworks=))", readme))
    reinjection = set(re.findall(r"^relay = 127\.0\.0\.1:(\d+)", readme, re.M))
    t.check("README's inbound Postfix smtpd is on backstop.ini's backend port %s everywhere" % port,
            smtpd - reinjection == {port}, (smtpd, reinjection))
    t.check("README's [backend] address examples use port %s" % port,
            set(re.findall(r"^address = 127\.0\.0\.1:(\d+)", readme, re.M)) <= {port},
            re.findall(r"^address = 127\.0\.0\.1:(\d+)", readme, re.M))
    t.check("README does not call 127.0.0.1:5353 the DNS default",
            not re.search(r"127\.0\.0\.1:5353", readme), re.findall(r".*127\.0\.0\.1:5353.*", readme))

t.done()

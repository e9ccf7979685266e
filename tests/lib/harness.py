"""
harness - fixtures for backstop's integration tests (python3 stdlib only).

Each test script is standalone: it builds a Test, runs named cases inside
it, and exits 0 (all passed), 1 (a check failed, or nothing was checked),
77 (skipped: not root, or a peer program missing) or 99 (error: a fixture
such as the DNS server did not start). With CI=true in the environment a
skip is a failure (exit 1) unless the test says the reason cannot be fixed
on the machine (skip(why, unfixable=True)); a skip after a failed check is
a failure everywhere. Everything a test starts (backstop, Postfix,
smtp-sink, network namespaces, temporary directories) is registered with
the Test and torn down when it ends, also on exceptions, on SIGTERM from
make, and on the watchdog alarm. The watchdog cannot be swallowed: it
raises WatchdogExpired (not an Exception, so no `except Exception` or
`except OSError` catches it), cleans up and exits 15 s (watchdog_grace) later if the script
is still running, and a timer thread ends the process 60 s after that. Nothing uses fixed ports or names, so
tests run in parallel (make -j2 check).

    from harness import Test, Postfix, Backstop, SmtpClient
    t = Test("relay_basic")
    pf = t.postfix()
    bs = t.backstop({"backend": {"address": pf.address}})
    with t.case("delivered"):
        c = bs.client()
        t.check("EHLO 250", c.cmd("EHLO client.example.org").code == 250)
    t.done()

Peers as documented in /work/shared/notes/test-peers.md: a throwaway
Postfix in a temporary directory (XCLIENT allowed for 127.0.0.0/8 and
198.51.100.0/24, virtual Maildir delivery), smtp-sink, ip netns + veth.
"""

import atexit
import contextlib
import ctypes
import email
import email.policy
import fcntl
import glob
import ipaddress
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from procs import stop_process

SKIP = 77
ERROR = 99


def in_ci():
    """CI=true (or 1/yes): skips that could be fixed on the machine fail."""
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


class WatchdogExpired(BaseException):
    """The test's watchdog expired. A BaseException, so that the test's own
    `except Exception` / `except OSError` (socket timeouts) cannot swallow
    it."""


# A sanitizer's report in a process's output (ASan, LSan, UBSan).
SANITIZER_RX = r"(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer)"


def sanitizer_report(text):
    """The first line of a sanitizer report in text (str or bytes), or None."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    m = re.search(SANITIZER_RX + r".*", text or "")
    return m.group(0) if m else None

# Postfix's virtual mailbox domain and its users (each a Maildir).
DOMAIN = "test.example"
USERS = ["user", "user2", "user3", "postmaster"]
CLIENT_HELO = "client.example.org"
BACKSTOP_HOSTNAME = "proxy.test.example"


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- ports

_used_ports = set()


def free_port(host="127.0.0.1"):
    """A TCP port free on host, outside the kernel's ephemeral range (so
    that an outgoing connection cannot take it before the server binds)."""
    for _ in range(500):
        port = random.randint(12000, 32000)
        if port in _used_ports:
            continue
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
        except OSError:
            continue
        finally:
            s.close()
        _used_ports.add(port)
        return port
    raise RuntimeError("no free port")


def dead_port(host="127.0.0.1"):
    """A port nothing listens on (connections are refused)."""
    return free_port(host)


def wait_port(host, port, timeout=10.0):
    """Wait until something accepts on host:port (without speaking SMTP)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def poll(fn, timeout, interval=0.05):
    """Call fn until it returns a true value or timeout passes; returns the
    last value."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


def wait_regex_in_file(path, regex, timeout, start=0, count=1):
    """Wait until regex matches at least count times in path (from byte
    offset start). Returns the list of matches (possibly shorter)."""
    rx = re.compile(regex, re.M)

    def look():
        try:
            with open(path, "rb") as f:
                f.seek(start)
                text = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        m = list(rx.finditer(text))
        return m if len(m) >= count else None

    r = poll(look, timeout)
    if r is None:
        try:
            with open(path, "rb") as f:
                f.seek(start)
                return list(rx.finditer(f.read().decode("utf-8", "replace")))
        except FileNotFoundError:
            return []
    return r


# ---------------------------------------------------------------- SMTP client

class Reply:
    """One SMTP reply: code (int), lines (text after 'ddd-'/'ddd ')."""

    def __init__(self, code, lines, raw):
        self.code = code
        self.lines = lines
        self.raw = raw

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def esc(self):
        """The RFC 3463 enhanced status code of the first line, or None."""
        m = re.match(r"([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)", self.lines[0] if self.lines else "")
        if not m or int(m.group(1)) != self.code // 100:
            return None
        return m.group(0).strip()

    def esc_ok(self):
        """Every line carries an enhanced code of the reply's class."""
        for l in self.lines:
            m = re.match(r"([245])\.\d{1,3}\.\d{1,3}(\s|$)", l)
            if not m or int(m.group(1)) != self.code // 100:
                return False
        return True

    def is_(self, code, esc=None):
        return self.code == code and (esc is None or self.esc == esc)

    def __repr__(self):
        return repr(self.raw.decode("latin-1"))

    __str__ = __repr__


class Closed(Exception):
    pass


class SmtpClient:
    """A raw-socket SMTP client for byte-exact tests. send() writes bytes
    exactly as given; reply() reads one (multi-line) reply."""

    def __init__(self, host="127.0.0.1", port=25, timeout=5.0, sock=None, source=None):
        if sock is None:
            sock = socket.create_connection((host, port), timeout=timeout,
                                            source_address=source)
        self.sock = sock
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.transcript = []

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.transcript.append(b"C: " + data)
        self.sock.sendall(data)

    def send_bytewise(self, data, delay=0.0):
        """Send data one byte per write (TCP_NODELAY, so segments really
        are split)."""
        if isinstance(data, str):
            data = data.encode()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transcript.append(b"C(bytewise): " + data)
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])
            if delay:
                time.sleep(delay)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise Closed("connection closed by server")
        self.buf += chunk

    def _line(self, deadline):
        while b"\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def reply(self, timeout=None):
        """Read one reply. Raises socket.timeout, or Closed on EOF before
        a complete reply."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        raw = b""
        lines = []
        while True:
            line = self._line(deadline)
            raw += line
            s = line.rstrip(b"\r\n").decode("utf-8", "replace")
            m = re.match(r"(\d{3})([ -]?)(.*)", s)
            if not m:
                raise ValueError("malformed reply line %r" % line)
            lines.append(m.group(3))
            if m.group(2) != "-":
                r = Reply(int(m.group(1)), lines, raw)
                self.transcript.append(b"S: " + raw)
                return r

    def try_reply(self, timeout):
        """A reply, or None on timeout or close."""
        try:
            return self.reply(timeout)
        except (socket.timeout, Closed, OSError):
            return None

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def closed_by_peer(self, timeout=3.0):
        """True when the server closes the connection within timeout
        (anything it still sends is read and discarded)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
                self.buf = b""
        except Closed:
            return True
        except (socket.timeout, OSError):
            return self.eof

    def cmd(self, line, timeout=None):
        """Send one command line (CRLF appended) and read its reply."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply(timeout)

    def greeting(self, timeout=None):
        return self.reply(timeout)

    def closed_within(self, timeout):
        """True if the server closes the connection within timeout (any
        data it sends meanwhile is kept in self.buf)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except Closed:
            return True
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            return True

    def ehlo(self, helo=CLIENT_HELO):
        return self.cmd("EHLO " + helo)

    def mail_transaction(self, mail_from, rcpts, body, helo=None):
        """MAIL, RCPT..., DATA, body, end. Returns the list of replies (stops
        at the first refusal of MAIL/DATA, or if no RCPT was accepted)."""
        out = []
        r = self.cmd("MAIL FROM:<%s>" % mail_from)
        out.append(r)
        if r.code != 250:
            return out
        ok = 0
        for rc in rcpts:
            r = self.cmd("RCPT TO:<%s>" % rc)
            out.append(r)
            ok += r.code == 250
        if not ok:
            return out
        r = self.cmd("DATA")
        out.append(r)
        if r.code != 354:
            return out
        self.send(dot_stuff(body) + b".\r\n")
        out.append(self.reply())
        return out


def dot_stuff(body):
    """CRLF-terminated, dot-stuffed wire form of body (str or bytes)."""
    if isinstance(body, str):
        body = body.encode()
    lines = body.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)


def make_message(subject="test", mail_from="sender@example.org", to="user@test.example",
                 body="Hello.\n", extra_headers=()):
    mid = "<%s.%d@example.org>" % (subject.replace(" ", "-"), random.randint(0, 1 << 30))
    hdr = ["From: <%s>" % mail_from, "To: <%s>" % to, "Subject: %s" % subject,
           "Date: Mon, 01 Jan 2024 12:00:00 +0000", "Message-ID: %s" % mid]
    hdr.extend(extra_headers)
    return ("\r\n".join(hdr) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode()


# ---------------------------------------------------------------- the Test

class Test:
    """Checks, named cases, and cleanup for one test script."""

    def __init__(self, name, watchdog=150, need=(), need_backstop=True, watchdog_grace=15):
        """watchdog_grace: seconds between the watchdog's WatchdogExpired
        and the exit when the script swallowed it (selftest.py sets 1)."""
        self.name = name
        self.passed = 0
        self.failed = 0
        self.stack = contextlib.ExitStack()
        self._tmp = tempfile.mkdtemp(prefix="bs-%s-" % name)
        os.chmod(self._tmp, 0o755)
        self.stack.callback(self._rmtmp)
        self._done = False
        self.keep = bool(os.environ.get("BACKSTOP_KEEP"))
        atexit.register(self._atexit)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.alarm(watchdog)
        self.watchdog = watchdog
        self.watchdog_grace = watchdog_grace
        # the last resort, if the main thread never returns to the
        # interpreter or its cleanup hangs
        self._hard_timer = threading.Timer(watchdog + 75, self._hard_exit)
        self._hard_timer.daemon = True
        self._hard_timer.start()
        log("# %s (tmp %s)" % (name, self._tmp))
        if os.geteuid() != 0:
            self.skip("integration tests need root (Postfix, netns)")
        for prog in need:
            if not shutil.which(prog) and not os.path.exists(prog):
                self.skip("%s not installed" % prog)
        self.bin = backstop_bin()
        if need_backstop and not os.access(self.bin, os.X_OK):
            self.skip("backstop binary %s not built" % self.bin)

    # -- results
    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            log("PASS: %s" % name)
        else:
            self.failed += 1
            log("FAIL: %s%s" % (name, (" -- " + str(detail)) if detail != "" else ""))
        return bool(cond)

    def check_reply(self, name, reply, code, esc=None):
        """reply has code (int, or a str prefix such as '4' or '45'), and
        esc if given ('' means: any enhanced code of the right class)."""
        if reply is None:
            return self.check(name, False, "no reply (timeout or connection closed)")
        ok = str(reply.code).startswith(str(code))
        if esc == "":
            ok = ok and reply.esc is not None
        elif esc is not None:
            ok = ok and reply.esc == esc
        want = "%s%s" % (code, (" " + esc) if esc else (" x.y.z" if esc == "" else ""))
        return self.check(name, ok, "want %s, got %s" % (want, reply))

    @contextlib.contextmanager
    def case(self, name):
        """A named case: an exception inside fails it, and the script goes on
        with the next case."""
        log("## %s" % name)
        try:
            yield
        except Exception as e:
            self.check("%s: ran to completion" % name, False,
                       "%s: %s" % (type(e).__name__, e))
            traceback.print_exc(file=sys.stdout)

    def skip(self, why, unfixable=False):
        """Skip the test (exit 77). unfixable=True says that the reason
        cannot be fixed on the machine (a kernel without IPv6), not by
        installing or configuring something: only such a skip stays a
        skip under CI=true; any other is a failure there (exit 1). A skip
        after a failed check is a failure (the failure is not discarded)."""
        log("SKIP: %s" % why)
        self._cleanup()
        self._done = True
        if self.failed:
            log("%d passed, %d failed (then skipped: %s)" % (self.passed, self.failed, why))
            sys.stdout.flush()
            os._exit(1)
        if in_ci() and not unfixable:
            log("FAIL: skipped under CI=true, and the reason can be fixed on this machine: %s" % why)
            log("%d passed, 1 failed (skipped)" % self.passed)
            sys.stdout.flush()
            os._exit(1)
        log("%d passed, 0 failed (skipped)" % self.passed)
        sys.stdout.flush()
        os._exit(SKIP)

    def error(self, why):
        """A fixture failed (a peer did not start): a hard error (exit 99),
        never a skip."""
        log("ERROR: %s" % why)
        self._cleanup()
        self._done = True
        log("%d passed, %d failed (error: %s)" % (self.passed, self.failed + 1, why))
        sys.stdout.flush()
        os._exit(ERROR)

    def done(self):
        self._cleanup()
        self._done = True
        if self.passed == 0 and self.failed == 0:
            log("FAIL: no check ran")
        log("%d passed, %d failed" % (self.passed, self.failed))
        sys.stdout.flush()
        sys.exit(0 if self.failed == 0 and self.passed > 0 else 1)

    # -- cleanup
    def _rmtmp(self):
        if self.keep:
            log("# kept %s" % self._tmp)
        else:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _cleanup(self):
        signal.alarm(0)
        try:
            self.stack.close()
        except Exception:
            traceback.print_exc(file=sys.stdout)
        self._hard_timer.cancel()

    def _atexit(self):
        if not self._done:
            self._done = True
            self._cleanup()
            # the script ended without done() (an exception): never a pass
            log("%d passed, %d failed (the script did not reach done())" % (
                self.passed, self.failed + 1))
            sys.stdout.flush()
            os._exit(1)

    def _on_signal(self, signum, frame):
        log("# killed by signal %d, cleaning up" % signum)
        self._cleanup()
        self._done = True
        log("%d passed, %d failed" % (self.passed, self.failed + 1))
        os._exit(1)

    def _on_alarm(self, signum, frame):
        """First expiry: a failure, and WatchdogExpired raised where the
        script hangs (traceback; it ends the script, cleanup runs at exit);
        if the script still has not finished watchdog_grace (15) seconds
        later, clean up and exit."""
        if getattr(self, "_alarmed", False):
            self._on_signal(signum, frame)
        self._alarmed = True
        signal.alarm(self.watchdog_grace)
        self.failed += 1
        log("FAIL: test watchdog expired after %ds" % self.watchdog)
        raise WatchdogExpired("test watchdog expired after %ds" % self.watchdog)

    def _hard_exit(self):
        log("FAIL: the script still runs 75s after its watchdog (%ds) expired: exit" % self.watchdog)
        log("%d passed, %d failed" % (self.passed, self.failed + 1))
        sys.stdout.flush()
        os._exit(1)

    def dns_server(self, *args):
        """Start tests/lib/dns_server.py (zone files, --delay NAME=S,
        --servfail NAME, --log FILE) on a free loopback port and return the
        port; it stops with the test. Skips the test without python3-dnslib."""
        script = os.path.join(srcdir(), "tests", "lib", "dns_server.py")
        p = subprocess.Popen(["/usr/bin/python3", script, "--port", "0", *args],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.defer(lambda: (p.terminate(), p.wait()))
        line = p.stdout.readline().decode()
        if not line.startswith("ready "):
            try:
                p.wait(5)   # reaped, so that its exit status is known
            except subprocess.TimeoutExpired:
                pass
            self.error("tests/lib/dns_server.py did not start (exit status %s; needs "
                       "/usr/bin/python3 with python3-dnslib, which tests/deps.sh installs)"
                       % p.poll())
        return int(line.split()[1])

    def run_backstop(self, args, timeout=10, **kw):
        """Run the backstop binary with args to its end: (exit status,
        stdout and stderr as text). A sanitizer report in its output is a
        failed check: an ASan build exits 1 after a report, which is also
        the status of a refused config."""
        r = subprocess.run([self.bin] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout, **kw)
        out = r.stdout.decode("utf-8", "replace")
        m = sanitizer_report(out)
        if m:
            self.check("no sanitizer report from backstop %s" % " ".join(args), False,
                       out[-4000:])
        return r.returncode, out

    def tmpdir(self, name):
        d = os.path.join(self._tmp, name)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        return d

    def defer(self, fn, *a, **kw):
        self.stack.callback(fn, *a, **kw)

    # -- fixtures
    def postfix(self, **kw):
        p = Postfix(self.tmpdir("postfix%d" % random.randint(0, 1 << 20)), **kw)
        self.stack.callback(p.stop)
        p.start()
        return p

    def sink(self, *opts, **kw):
        s = SmtpSink(self.tmpdir("sink%d" % random.randint(0, 1 << 20)), *opts, **kw)
        self.stack.callback(s.stop)
        s.start()
        return s

    def backstop(self, sections, start=True, **kw):
        b = Backstop(self, self.tmpdir("backstop%d" % random.randint(0, 1 << 20)), sections, **kw)
        self.stack.callback(b.kill)
        if start:
            b.start()
        return b

    def netns(self, ipv6=False):
        n = Netns(ipv6=ipv6)
        self.stack.callback(n.destroy)
        n.create()
        return n


def backstop_bin():
    b = os.environ.get("BACKSTOP_BIN")
    if b:
        return b
    d = os.environ.get("BACKSTOP_BUILDDIR")
    if d:
        return os.path.join(d, "backstop")
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "backstop")


def srcdir():
    return os.environ.get("BACKSTOP_SRCDIR") or \
        os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


# ---------------------------------------------------------------- Postfix

MASTER_CF = """\
{listen} inet n - n - - smtpd{smtpd_opts}
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""

# PROXY protocol v2, LOCAL command (haproxy's proxy-protocol.txt 2.2): what
# a health check sends to a port with smtpd_upstream_proxy_protocol = haproxy
PROXY_V2_LOCAL = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00, 0x00, 0x00])

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {T}/queue
data_directory = {T}/data
maillog_file = {T}/log/maillog
maillog_file_prefixes = {T}/log
myhostname = backend.test.example
mydomain = test.example
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
smtpd_peername_lookup = no
smtpd_authorized_xclient_hosts = 127.0.0.0/8 198.51.100.0/24
virtual_mailbox_domains = test.example
virtual_mailbox_base = {T}/mail
virtual_mailbox_maps = texthash:{T}/conf/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
default_transport = error:5.7.1 outbound delivery disabled in tests
smtpd_forbid_bare_newline = no
smtpd_tls_security_level = none
"""


class Message:
    """A delivered message: path, raw bytes, parsed email.message."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.raw = f.read()
        self.msg = email.message_from_bytes(self.raw, policy=email.policy.compat32)
        parts = path.split(os.sep)
        self.mailbox = parts[-3] if len(parts) >= 3 else ""

    def headers(self, name):
        return [str(v) for v in (self.msg.get_all(name) or [])]

    def header_block(self):
        return self.raw.split(b"\n\n", 1)[0]

    def body(self):
        return self.raw.split(b"\n\n", 1)[1] if b"\n\n" in self.raw else b""

    def __repr__(self):
        return "<Message %s %d bytes>" % (self.path, len(self.raw))


class LogFile:
    """A fixture's log file (self.logfile), read since a mark."""
    _mark = 0

    def log(self, since_mark=False):
        try:
            with open(self.logfile, "rb") as f:
                if since_mark:
                    f.seek(self._mark)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def mark(self):
        """Later log() / wait_log() / count_log() look only after this point."""
        try:
            self._mark = os.path.getsize(self.logfile)
        except OSError:
            self._mark = 0

    def wait_log(self, regex, timeout=5.0, count=1):
        """Matches of regex in the log since mark(); waits for count of them."""
        return wait_regex_in_file(self.logfile, regex, timeout, self._mark, count)

    def count_log(self, regex):
        return len(re.findall(regex, self.log(since_mark=True), re.M))


class Postfix(LogFile):
    """A throwaway Postfix (test-peers.md 1) listening on 127.0.0.1:port,
    delivering test.example users to Maildirs."""

    def __init__(self, root, users=USERS, extra_main="", proxy_protocol=False, netns=None,
                 host="127.0.0.1"):
        """proxy_protocol: smtpd expects a PROXY header first
        (smtpd_upstream_proxy_protocol = haproxy, dependencies-2.md 4).
        netns: the name of a network namespace to run in, listening on
        host there (an address of that namespace)."""
        self.T = root
        self.port = free_port()
        self.host = host
        self.address = "%s:%d" % (host, self.port)
        self.users = users
        self.extra_main = extra_main
        self.proxy_protocol = proxy_protocol
        self.netns = netns
        self.running = False

    @property
    def logfile(self):
        return os.path.join(self.T, "log", "maillog")

    def _write(self):
        T = self.T
        for d in ("conf", "queue", "data", "mail", "log"):
            os.makedirs(os.path.join(T, d), exist_ok=True)
        shutil.chown(os.path.join(T, "data"), "postfix")
        shutil.chown(os.path.join(T, "mail"), "nobody", "nogroup")
        with open(os.path.join(T, "conf", "main.cf"), "w") as f:
            f.write(MAIN_CF.format(T=T) + self.extra_main)
        with open(os.path.join(T, "conf", "master.cf"), "w") as f:
            f.write(MASTER_CF.format(
                listen="%s:%d" % (self.host, self.port),
                smtpd_opts=" -o smtpd_upstream_proxy_protocol=haproxy" if self.proxy_protocol else ""))
        with open(os.path.join(T, "conf", "vmailbox"), "w") as f:
            for u in self.users:
                f.write("%s@%s %s/\n" % (u, DOMAIN, u))

    def _greets(self, timeout):
        """Does this instance's smtpd answer with its 220? (A port that is
        open is not enough: another test's process may hold it.)"""
        try:
            if self.netns:
                sock = netns_socket(self.netns, self.host, self.port, timeout)
            else:
                sock = socket.create_connection((self.host, self.port), timeout)
            with SmtpClient(sock=sock, timeout=timeout) as c:
                if self.proxy_protocol:
                    # a PROXY v2 LOCAL header: the probe is our own connection
                    c.send(PROXY_V2_LOCAL)
                return c.greeting(timeout).code == 220
        except (OSError, Closed):
            return False

    def start(self):
        for attempt in range(3):
            self._write()
            argv = ["postfix", "-c", os.path.join(self.T, "conf"), "start"]
            if self.netns:
                argv = ["ip", "netns", "exec", self.netns] + argv
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            self.running = True
            if self.netns:
                up = r.returncode == 0 and poll(lambda: self._greets(2), 10)
            else:
                up = r.returncode == 0 and wait_port(self.host, self.port, 10) and self._greets(30)
            if up:
                break
            log("# postfix on port %d did not greet (attempt %d, rc %d): %s\n%s" % (
                self.port, attempt + 1, r.returncode, r.stdout.decode(errors="replace"),
                self.log()[-3000:]))
            # `postfix stop` once hung here for over 30 s: what each of
            # this instance's processes was doing, then SIGKILL them all
            self._kill_all(diagnose=True)
            self.port = free_port()
            self.address = "%s:%d" % (self.host, self.port)
        else:
            raise RuntimeError("postfix did not start and greet on three ports:\n%s" % self.log())
        # the probes above are logged as connects: note where the test's log begins
        wait_regex_in_file(self.logfile, r"disconnect from", 5)
        self.mark()

    def _processes(self):
        """pids of this instance's processes: the master and its children
        carry MAIL_CONFIG=<this instance's conf> in their environment"""
        want = ("MAIL_CONFIG=" + os.path.join(self.T, "conf")).encode()
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    if want in f.read().split(b"\0"):
                        pids.append(int(d))
            except OSError:
                pass
        return pids

    def _kill_all(self, diagnose=False):
        """SIGKILL every process of this instance (logging, when diagnose,
        the state and kernel wait channel of each first)"""
        for pid in self._processes():
            if diagnose:
                try:
                    with open("/proc/%d/stat" % pid) as f:
                        state = f.read().rsplit(")", 1)[1].split()[0]
                    with open("/proc/%d/wchan" % pid) as f:
                        wchan = f.read().strip()
                    with open("/proc/%d/cmdline" % pid, "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                    log("#   postfix process %d state %s wchan %s: %s" % (pid, state, wchan, cmd))
                except OSError:
                    pass
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self):
        """SIGTERM to the master (faster than `postfix stop`, which sleeps);
        SIGKILL to all of the instance's processes as the fallback."""
        if not self.running:
            return
        self.running = False
        pidf = os.path.join(self.T, "queue", "pid", "master.pid")
        try:
            pid = int(open(pidf).read().strip())
        except (OSError, ValueError):
            pid = None

        def gone():
            # a zombie is gone too: the master is init's child (it
            # daemonized), and init here may reap it a second or two later
            try:
                with open("/proc/%d/stat" % pid) as f:
                    return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
            except (OSError, IndexError):
                return True
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if poll(gone, 5):
                return
        log("# postfix master %s did not exit on SIGTERM within 5 s" % pid)
        self._kill_all(diagnose=True)


    def queued_count(self):
        """Messages Postfix accepted since mark() (cleanup's message-id lines)."""
        # cleanup logs message-id for partial messages too; qmgr sees only
        # committed ones
        return self.count_log(r"postfix/qmgr\[\d+\]: \w+: from=")

    # -- mail
    def messages(self, user=None):
        pat = os.path.join(self.T, "mail", user or "*", "new", "*")
        return sorted((Message(p) for p in glob.glob(pat)), key=lambda m: os.path.getmtime(m.path))

    def wait_for_mail(self, n, timeout=5.0, user=None):
        """Wait until at least n messages are delivered; returns them all."""
        poll(lambda: len(self.messages(user)) >= n, timeout)
        return self.messages(user)

    def settle(self, seconds=1.0):
        """Give Postfix time to deliver anything still in flight; returns the
        messages delivered so far."""
        time.sleep(seconds)
        poll(lambda: self._queue_empty(), 3)
        return self.messages()

    def _queue_empty(self):
        r = subprocess.run(["postqueue", "-c", os.path.join(self.T, "conf"), "-j"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return r.returncode == 0 and not r.stdout.strip()

    def clear_mail(self):
        for p in glob.glob(os.path.join(self.T, "mail", "*", "new", "*")):
            os.unlink(p)


# ---------------------------------------------------------------- smtp-sink

class SmtpSink:
    """/usr/sbin/smtp-sink on 127.0.0.1:port, dumping each transaction to a
    file in dir (count them with messages()). opts are extra smtp-sink
    options, e.g. ("-r", "RCPT") to soft-reject RCPT, ("-q", ".") to
    disconnect at end of data."""

    def __init__(self, root, *opts, dump=True):
        self.root = root
        self.dir = os.path.join(root, "msgs")
        os.makedirs(self.dir, exist_ok=True)
        shutil.chown(self.dir, "nobody", "nogroup")
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.opts = list(opts)
        self.dump = dump
        self.proc = None

    def start(self):
        argv = ["smtp-sink", "-u", "nobody", "-4", "-t", "30"]
        if self.dump:
            argv += ["-d", os.path.join(self.dir, "m.")]
        argv += self.opts + ["127.0.0.1:%d" % self.port, "256"]
        self.errf = open(os.path.join(self.root, "sink.log"), "wb")
        self.proc = subprocess.Popen(argv, stdout=self.errf, stderr=subprocess.STDOUT)
        if not wait_port("127.0.0.1", self.port, 5):
            raise RuntimeError("smtp-sink did not start: %r" % argv)

    def stop(self):
        stop_process(self.proc)
        if self.proc:
            self.errf.close()
        self.proc = None

    def files(self):
        """Dump files, oldest first."""
        def key(p):
            try:
                return (os.stat(p).st_mtime_ns, p)
            except OSError:
                return (0, p)
        return sorted(glob.glob(os.path.join(self.dir, "m.*")), key=key)

    def messages(self):
        out = []
        for p in self.files():
            try:
                with open(p, "rb") as f:
                    out.append(f.read())
            except FileNotFoundError:
                # smtp-sink removes the dump of a transaction the client
                # aborted: it may go between the listing and the open
                continue
        return out

    def wait_for(self, n, timeout=5.0):
        poll(lambda: len(self.files()) >= n, timeout)
        return self.messages()

    def with_subject(self, subject, timeout=5.0):
        """The dumps whose Subject is subject, waiting up to timeout for at
        least one (smtp-sink may finish writing a dump after its 250 has
        reached backstop and the client: the newest file is not yet it)."""
        def look():
            return [d for d in self.messages() if dump_subject(d) == subject]
        return poll(look, timeout) or []


def dump_subject(dump):
    """The Subject of an smtp-sink dump (bytes), or None."""
    m = re.search(rb"^Subject: (.*?)\r?$", dump, re.M)
    return m.group(1).decode("utf-8", "replace") if m else None


class SilentServer:
    """A TCP listener that accepts and never says anything (a hung
    backend). close() drops all connections."""

    def __init__(self):
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- backstop

def ini_text(sections):
    out = []
    for sec, kv in sections.items():
        out.append("[%s]" % sec)
        for k, v in kv.items():
            out.append("%s = %s" % (k, v))
        out.append("")
    return "\n".join(out)


class Backstop(LogFile):
    """The daemon under test: INI from a dict of sections, run with -f -c,
    stderr captured to a file. Defaults: listen on a free 127.0.0.1 port,
    short timeouts, log level debug to stderr."""

    def __init__(self, test, root, sections, listen=None, netns=None):
        """netns: the name of a network namespace to run backstop in (give
        listen addresses of that namespace)."""
        self.test = test
        self.netns = netns
        self.root = root
        self.bin = test.bin
        self.port = free_port()
        self.host = "127.0.0.1"
        cfg = {
            "server": {"listen": "127.0.0.1:%d" % self.port, "hostname": BACKSTOP_HOSTNAME,
                       # a session a test left open holds bs.stop() for
                       # this long (then 421 and exit): short, as most
                       # stops are; signals.py, metrics.py and
                       # pool_haproxy.py set their own for their drains
                       "drain_time": "500ms",
                       # started as root, backstop refuses to keep root unless
                       # told so by name; the tests' files belong to root
                       "user": "root"},
            # relay_check off: most tests' backends (smtp-sink -C, fake
            # backends, Postfix with mynetworks = 127.0.0.0/8) would relay
            # for backstop's address under identity none/xforward, and the
            # probe's extra MAIL/RCPT would disturb scripted fakes;
            # backend_relay_check.py turns it on
            "backend": {"connect_timeout": "2s", "command_timeout": "5s", "data_timeout": "5s",
                        "relay_check": "off"},
            "limits": {"greeting_timeout": "10s", "command_timeout": "10s",
                       "data_timeout": "10s", "session_timeout": "60s"},
            "log": {"level": "debug", "destination": "stderr"},
            # Never the machine's resolver (/etc/resolv.conf names an address
            # outside this sandbox): a loopback port nobody answers on, and
            # no DNS-using check unless a test turns it on with its own server.
            "dns": {"servers": "127.0.0.1:%d" % free_port(), "timeout": "1s",
                    "reverse_lookup": "no"},
            "spf": {"mode": "off"},
            # DKIM and DMARC look up keys and records: off unless a test
            # turns them on with its own DNS server (like SPF)
            "dkim": {"mode": "off"},
            "dmarc": {"mode": "off"},
        }
        # the sent-message log of an [outbound] listener (issue 11): one
        # state directory per instance, never /var/lib/backstop
        cfg["server"]["state_dir"] = os.path.join(root, "state")
        os.makedirs(cfg["server"]["state_dir"], exist_ok=True)
        if listen:
            cfg["server"]["listen"] = listen
        for sec, kv in sections.items():
            cfg.setdefault(sec, {}).update(kv)
        self.sections = cfg
        self.conf = os.path.join(root, "backstop.ini")
        self.logfile = os.path.join(root, "backstop.log")
        self.write_config(cfg)
        self.proc = None
        self._mark = 0

    @property
    def listen(self):
        return self.sections["server"]["listen"].split()

    def write_config(self, sections=None, text=None):
        if text is None:
            text = ini_text(sections if sections is not None else self.sections)
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self, timeout=10.0):
        self.logf = open(self.logfile, "ab")
        argv = [self.bin, "-f", "-c", self.conf]
        if self.netns:
            # ip netns exec execs the command: proc is backstop itself
            argv = ["ip", "netns", "exec", self.netns] + argv
        self.proc = subprocess.Popen(argv,
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        n = len(self.listen)

        def ready():
            if self.proc.poll() is not None:
                return "exited"
            c = len(re.findall(r"listening on", self.log()))
            return c >= n
        r = poll(ready, timeout)
        if r != "exited" and not r and self.proc.poll() is None \
                and len(re.findall(r"listening on", self.log())) >= 1:
            r = True  # still running, listening on fewer lines than addresses: accept
        if r is True:
            # "listening on" is logged before the loop runs: a backstop that
            # dies right after it (a start-up step, an ASan exit) is caught
            # here rather than as a refused connection later
            try:
                self.proc.wait(0.2)
                r = "exited"
            except subprocess.TimeoutExpired:
                return
        raise RuntimeError("backstop did not start (%s):\n%s" % (
            "exited %s" % self.proc.returncode if r == "exited" else "no 'listening on'",
            self.log()))

    def client(self, timeout=5.0, greet=True, host=None, port=None, source=None):
        """An SmtpClient connected to the first listen address; with greet,
        the 220 greeting is read (and checked)."""
        try:
            c = SmtpClient(host or self.host, port or self.port, timeout, source=source)
        except OSError as e:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError("cannot connect (%s): backstop exited with status %s:\n%s" % (
                    e, self.proc.returncode, self.log()[-3000:])) from e
            raise
        self.test.defer(c.close)
        if greet:
            g = c.greeting()
            if g.code != 220:
                raise RuntimeError("greeting was %s" % g)
            c.greeting_reply = g
        return c


    def wait_backend_known(self, timeout=20.0):
        """Wait for the start-up probe's EHLO: until then backstop's own EHLO
        cannot offer what the backend offers (DSN, SMTPUTF8)."""
        return wait_regex_in_file(self.logfile, r"backend probe: EHLO answered", timeout)

    def signal(self, sig):
        self.proc.send_signal(sig)

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=None):
        """SIGTERM, wait, and check a clean exit (status 0, no sanitizer
        report). Records checks on the Test."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
        if timeout is None:
            timeout = 10
        rc = self.wait_exit(timeout)
        self.test.check("backstop exits 0 on SIGTERM", rc == 0,
                        "exit status %s\n%s" % (rc, self.log()[-3000:]))
        self.check_sanitizers()
        self.proc = None
        self.logf.close()

    def check_sanitizers(self):
        m = sanitizer_report(self.log())
        self.test.check("no sanitizer report in backstop's log", m is None, m or "")

    def kill(self):
        """Cleanup: kill whatever is still running. A sanitizer report in
        the log is a failed check (it is not only logged)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self.logf.close()
            m = sanitizer_report(self.log())
            if m:
                log("# sanitizer report in %s" % self.logfile)
                log(self.log()[-4000:])
                self.test.check("no sanitizer report in backstop's log", False, m)
            self.proc = None

    def dump_log(self, tail=4000):
        log("# backstop log (%s):" % self.logfile)
        for l in self.log()[-tail:].splitlines():
            log("#   " + l)

    def check_config(self, path=None):
        """backstop -t -c path: (exit status, output). A sanitizer report
        in the output is a failed check."""
        return self.test.run_backstop(["-t", "-c", path or self.conf])


# ---------------------------------------------------------------- netns

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
NETNS_LOCK = "/run/backstop-tests-netns.lock"


def _sh(*argv, check=True):
    r = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stdout.decode(errors="replace")))
    return r.stdout.decode(errors="replace")


def netns_socket(name, host, port, timeout=5.0):
    """A TCP socket created inside network namespace name (ip netns),
    connected to host:port (a socket stays in the namespace it was created
    in). host is an IPv4 or a bare IPv6 address (no brackets)."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open("/run/netns/%s" % name, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        try:
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                              socket.SOCK_STREAM)
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


class Netns:
    """A client network namespace joined to the host by a veth pair.
    host_addr (host side, backstop listens there) and addr (the client)
    form a /30 in 198.51.100.0/24; by default .1 and .2, another free /30
    if a parallel test holds that one. Names are unique per instance.

    With ipv6=True the pair also gets IPv6 documentation addresses:
    host_addr6 and addr6 are ::1 and ::2 of net6, a /64 2001:db8:0:K::/64
    (K = 0, i.e. 2001:db8::1 and 2001:db8::2, unless a parallel test holds
    it), added with nodad so they are usable at once (no duplicate address
    detection delay). Without it host_addr6 = addr6 = net6 = None."""

    _made = 0   # namespaces this process has named: a counter, not a random tag

    def __init__(self, ipv6=False):
        self._name_next()
        self.created = False
        self.ipv6 = ipv6
        self.host_addr6 = self.addr6 = self.net6 = None

    def _name_next(self):
        Netns._made += 1
        tag = "%05x%02x" % (os.getpid() & 0xfffff, Netns._made & 0xff)
        self.name = "bst-" + tag
        self.veth_host = "bh" + tag
        self.veth_ns = "bn" + tag

    def create(self):
        os.makedirs(os.path.dirname(NETNS_LOCK), exist_ok=True)
        with open(NETNS_LOCK, "a") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            used = set(re.findall(r"inet (198\.51\.100\.\d+)/", _sh("ip", "-o", "-4", "addr")))
            for k in range(64):
                h, c = "198.51.100.%d" % (4 * k + 1), "198.51.100.%d" % (4 * k + 2)
                if h not in used:
                    break
            else:
                raise RuntimeError("no free /30 in 198.51.100.0/24")
            self.host_addr, self.addr = h, c
            # a name left by a killed run whose pid this process now has
            # (pids are reused): take the next one
            existing = _sh("ip", "netns", "list")
            while re.search(r"^%s\b" % re.escape(self.name), existing, re.M):
                self._name_next()
            _sh("ip", "netns", "add", self.name)
            self.created = True
            _sh("ip", "link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_ns)
            _sh("ip", "link", "set", self.veth_ns, "netns", self.name)
            _sh("ip", "addr", "add", h + "/30", "dev", self.veth_host)
            _sh("ip", "link", "set", self.veth_host, "up")
            _sh("ip", "-n", self.name, "addr", "add", c + "/30", "dev", self.veth_ns)
            _sh("ip", "-n", self.name, "link", "set", self.veth_ns, "up")
            _sh("ip", "-n", self.name, "link", "set", "lo", "up")
            if self.ipv6:
                self._add_ipv6()
        # wait until the veth pair is usable (DAD does not apply to v4)
        ok = poll(lambda: "state UP" in _sh("ip", "link", "show", self.veth_host, check=False)
                  or "LOWER_UP" in _sh("ip", "link", "show", self.veth_host, check=False), 3)
        if not ok:
            raise RuntimeError("veth %s did not come up" % self.veth_host)

    def _add_ipv6(self):
        """Under NETNS_LOCK: the first 2001:db8:0:K::/64 no host interface
        holds, ::1 on the host side, ::2 in the namespace (nodad)."""
        used = set(str(ipaddress.ip_address(a)) for a in
                   re.findall(r"inet6 (2001:db8:[0-9a-f:]*)/", _sh("ip", "-o", "-6", "addr")))
        for k in range(256):
            net = ipaddress.ip_network("2001:db8:0:%x::/64" % k)
            h, c = str(net[1]), str(net[2])
            if h not in used:
                break
        else:
            raise RuntimeError("no free /64 in 2001:db8::/48")
        _sh("sysctl", "-q", "-w", "net.ipv6.conf.%s.disable_ipv6=0" % self.veth_host)
        for knob in ("all", "default", "lo", self.veth_ns):
            _sh("ip", "netns", "exec", self.name, "sysctl", "-q", "-w",
                "net.ipv6.conf.%s.disable_ipv6=0" % knob)
        _sh("ip", "-6", "addr", "add", h + "/64", "dev", self.veth_host, "nodad")
        _sh("ip", "-n", self.name, "-6", "addr", "add", c + "/64", "dev", self.veth_ns, "nodad")
        self.host_addr6, self.addr6, self.net6 = h, c, str(net)

    def run(self, argv, **kw):
        """subprocess.run(argv) inside the namespace."""
        return subprocess.run(["ip", "netns", "exec", self.name] + list(argv), **kw)

    def popen(self, argv, **kw):
        return subprocess.Popen(["ip", "netns", "exec", self.name] + list(argv), **kw)

    def socket(self, host, port, timeout=5.0):
        """A TCP socket created inside the namespace, connected to host:port
        (a socket stays in the namespace it was created in). host is an
        IPv4 or a bare IPv6 address (no brackets)."""
        return netns_socket(self.name, host, port, timeout)

    def client(self, host, port, timeout=5.0):
        return SmtpClient(sock=self.socket(host, port, timeout), timeout=timeout)

    def destroy(self):
        if not self.created:
            return
        self.created = False
        pids = _sh("ip", "netns", "pids", self.name, check=False).split()
        for p in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(p), signal.SIGKILL)
        _sh("ip", "netns", "del", self.name, check=False)
        _sh("ip", "link", "del", self.veth_host, check=False)


# ---------------------------------------------------------------- swaks

def swaks(server, port, *args, timeout=20, netns=None):
    """Run swaks; returns (exit status, transcript)."""
    argv = ["swaks", "--server", server, "--port", str(port), "--timeout", "10",
            "--helo", CLIENT_HELO] + list(args)
    if netns is not None:
        argv = ["ip", "netns", "exec", netns.name] + argv
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace")


# ---------------------------------------------------------------- helpers

def backstop_received(message):
    """backstop's Received header field on a delivered Message (the one
    'by' backstop's hostname), unfolded, or None."""
    for h in message.headers("Received"):
        h = re.sub(r"\s+", " ", h)
        if re.search(r"\bby %s\b" % re.escape(BACKSTOP_HOSTNAME), h):
            return h
    return None


def received_id(received):
    """The 'id' clause of a Received field value."""
    m = re.search(r"\bid\s+<?([^\s;>]+)", received or "")
    return m.group(1) if m else None


def postfix_queue_id(message):
    """The queue id in Postfix's own (topmost) Received header."""
    for h in message.headers("Received"):
        if "backend.test.example" in h:
            return received_id(h)
    return None


def free_port_on(host):
    return free_port(host)


# ------------------------------------------------ Authentication-Results

def delivered_by_id(pf, message_id, timeout=5.0):
    """The message pf delivered with this Message-ID, or None."""
    def find():
        for m in pf.messages():
            if message_id in m.headers("Message-ID"):
                return m
        return None
    return poll(find, timeout)


def unfold(v):
    return re.sub(r"\s+", " ", v).strip()


def our_ar(m):
    """Our Authentication-Results fields (authserv-id = backstop's hostname),
    unfolded."""
    out = []
    for v in m.headers("Authentication-Results"):
        v = unfold(v)
        if re.match(r"(\([^()]*\)\s*)*%s(\s+\d+)?\s*(;|$)" % re.escape(BACKSTOP_HOSTNAME), v, re.I):
            out.append(v)
    return out


def clauses(ar, method):
    """[(result, {property: value}, [comments])] of the method= clauses of
    an A-R value; property keys lower-case (ptype.property, or reason)."""
    out = []
    for part in ar.split(";")[1:]:
        comments = re.findall(r"\(([^()]*)\)", part)
        v = re.sub(r"\([^()]*\)", " ", part)
        m = re.match(r"\s*%s\s*=\s*(\w+)(.*)" % method, v, re.I)
        if m:
            props = {k.lower(): val.strip('"') for k, val in
                     re.findall(r"([\w-]+\.[\w-]+|reason)\s*=\s*(\"[^\"]*\"|[^\s;]+)", m.group(2))}
            out.append((m.group(1).lower(), props, comments))
    return out


# ------------------------------------------------ HTTP: /metrics and /health

def recv_all(sock):
    """Everything sock sends until it closes (an OSError after some bytes
    ends the read; with none it is raised)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            if not data:
                raise
            break
        if not chunk:
            break
        data += chunk
    return data


def http_get(port, path, method="GET", raw=None, timeout=5.0, host="127.0.0.1"):
    """(status, head text, body text) of one HTTP/1.1 request to backstop's
    [metrics] listener, or (None, "", the error) when it fails; raw: send
    these bytes instead of a request."""
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        return None, "", str(e)
    try:
        s.sendall(raw if raw is not None else
                  ("%s %s HTTP/1.1\r\nHost: x\r\n\r\n" % (method, path)).encode())
        data = recv_all(s)
    except OSError as e:
        return None, "", str(e)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
    return (int(m.group(1)) if m else None), head.decode("latin-1"), body.decode("utf-8", "replace")


def metrics_values(port):
    """{series (name and labels, as printed): value} of GET /metrics"""
    status, _, body = http_get(port, "/metrics")
    if status != 200:
        raise RuntimeError("GET /metrics: %s %s" % (status, body[:200]))
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


# ------------------------------------------------ scripted peers

def smtp_dialogue(c, name, on_message=None):
    """The backend side of a minimal SMTP session on socket c, after its
    220: EHLO gets PIPELINING, DATA 354 and then the content up to the
    dot, QUIT 221 (and the end), anything else 250. At each dot
    on_message(lines) may return the reply (bytes, CRLF-ended); the default
    is 250. For fake backends that only differ in what they note."""
    f = c.makefile("rb")
    body = None
    for line in f:
        if body is not None:
            if line == b".\r\n":
                r = on_message(body) if on_message else None
                body = None
                c.sendall(r or b"250 2.0.0 Ok: queued\r\n")
            else:
                body.append(line)
            continue
        verb = line[:4].upper()
        if verb == b"EHLO":
            c.sendall(b"250-%s\r\n250 PIPELINING\r\n" % name.encode())
        elif verb == b"DATA":
            body = []
            c.sendall(b"354 go\r\n")
        elif verb == b"QUIT":
            c.sendall(b"221 bye\r\n")
            return
        else:
            c.sendall(b"250 2.0.0 Ok\r\n")


class ThreadedServer:
    """A TCP listener on a free loopback port that runs session(conn) on a
    thread per connection; closed at the end of the test. Subclasses write
    session() (a fake backend that misbehaves on purpose). rcvbuf shrinks
    the listening socket's receive buffer (back-pressure tests)."""

    def __init__(self, test, backlog=16, rcvbuf=None):
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.ls.bind(("127.0.0.1", self.port))
        self.ls.listen(backlog)
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()
        test.defer(self.close)

    def close(self):
        for c in self.conns + [self.ls]:
            with contextlib.suppress(OSError):
                c.close()

    def _serve(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    def session(self, c):
        raise NotImplementedError

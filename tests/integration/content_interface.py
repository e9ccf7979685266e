#!/usr/bin/python3
"""content_interface: what the content interface for checks (filter
interface v2 and the spool) must do, each shown on the wire with real
peers (a real signer, the test DNS server, real Postfix backends):

- a message that ends inside its header section (no empty line, no body)
  still has an end of header for the checks: its DKIM signature verifies
  (dkim_eoh must run before dkim_eom);
- a header line over the 8 KiB line segment reaches the checks whole: a
  signature over a 20 KB X-Long line verifies (a check fed pieces, or a
  field cut short, would fail it);
- the fields a check adds at end of data reach the top of the message
  (dkim= is known only at the end), in hold mode;
- inbound and outbound relays keep their own backend capabilities: after
  an outbound relay without DSN, the inbound EHLO still offers DSN and
  MAIL ... RET=HDRS is accepted (it got 555 when the record was shared);
- a 50 MB message is held in a spool file, not in memory: backstop's peak
  RSS grows by far less than the message, the spool file is gone after
  the transaction, and the backend receives every byte."""
import json
import re
import subprocess
import sys
from harness import *

HERE = os.path.dirname(os.path.abspath(__file__))
FIXSRC = os.path.join(srcdir(), "tests", "data", "dkim")
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]

t = Test("content_interface", watchdog=300, need=("postfix", "ip"))
try:
    import dkim  # noqa: F401  (python3-dkim; /usr/bin/python3 sees it)
    import dnslib  # noqa: F401
except ImportError as e:
    t.error("python3-dkim / python3-dnslib missing: %s (tests/deps.sh installs them)" % e)
sys.path.insert(0, FIXSRC)
import make_fixtures  # noqa: E402

fixdir = t.tmpdir("fixtures")
r = subprocess.run(["/usr/bin/python3", os.path.join(FIXSRC, "make_fixtures.py"), fixdir],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
if r.returncode != 0:
    t.error("make_fixtures.py failed: %s" % r.stdout.decode(errors="replace")[-2000:])
with open(os.path.join(fixdir, "keys", "main.pem"), "rb") as f:
    main_pem = f.read()
dport = t.dns_server(os.path.join(fixdir, "dkim.zone"))
pf = t.postfix(extra_main="message_size_limit = 80000000\nvirtual_mailbox_limit = 0\n")


def dkim_results(m):
    """The dkim= results in our Authentication-Results field."""
    out = []
    for v in m.headers("Authentication-Results"):
        v = re.sub(r"\s+", " ", v)
        if v.lower().startswith(BACKSTOP_HOSTNAME):
            out += re.findall(r"dkim=(\w+)", v)
    return out


def send(bs, raw, mail_from="sender@example.org"):
    c = bs.client(timeout=30)
    c.ehlo()
    for line in ("MAIL FROM:<%s>" % mail_from, "RCPT TO:<user@test.example>", "DATA"):
        rr = c.cmd(line)
        if rr.code not in (250, 354):
            raise RuntimeError("%s: %s" % (line, rr))
    c.send(dot_stuff(raw) + b".\r\n")
    rr = c.reply(120)
    c.cmd("QUIT")
    c.close()
    return rr


def by_mid(mid, timeout=10.0):
    return poll(lambda: next((m for m in pf.messages() if mid in m.headers("Message-ID")), None),
                timeout)


bs = t.backstop({"backend": {"address": pf.address},
                 "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "2s"},
                 "dkim": {"mode": "annotate"}})

with t.case("a signed message without body or empty line: end of header still runs"):
    msg, mid = make_fixtures.message("header-only", body="")
    signed = make_fixtures.sign(msg, "sel2048", "example.org", main_pem)
    head = signed.split(b"\r\n\r\n", 1)[0] + b"\r\n"   # no empty line, no body
    rr = send(bs, head)
    t.check_reply("header-only: accepted", rr, 250)
    m = by_mid(mid)
    t.check("header-only: delivered", m is not None)
    t.check("header-only: dkim=pass (EOH ran before EOD)", m is not None and dkim_results(m) == ["pass"],
            m and m.headers("Authentication-Results"))

with t.case("a signed 20 KB header line reaches the checks whole"):
    longline = "X-Long: " + "".join("w%05d" % i for i in range(3400))   # ~20 KB, one line
    msg, mid = make_fixtures.message("long-line", extra=[longline])
    signed = make_fixtures.sign(msg, "sel2048", "example.org", main_pem, canon=(b"simple", b"simple"),
                                headers=[b"from", b"to", b"subject", b"date", b"message-id", b"x-long"])
    rr = send(bs, signed)
    t.check_reply("long line: accepted", rr, 250)
    m = by_mid(mid)
    t.check("long line: dkim=pass", m is not None and dkim_results(m) == ["pass"],
            m and m.headers("Authentication-Results"))
    t.check("long line: arrived whole", m is not None and longline.encode() in m.raw.replace(b"\n", b"\r\n"))
    # the field a check adds at end of data is on top, above our Received
    if m is not None:
        hdr = m.header_block().decode(errors="replace")
        ar_at = hdr.find("Authentication-Results: %s" % BACKSTOP_HOSTNAME)
        rcv_at = hdr.find("by %s (backstop)" % BACKSTOP_HOSTNAME)
        t.check("the end-of-data field sits above backstop's Received", 0 <= ar_at < rcv_at, hdr[:600])
bs.stop()

with t.case("inbound and outbound keep their own backend capabilities"):
    nodsn = t.postfix(extra_main="smtpd_discard_ehlo_keywords = dsn\n")
    out_port = free_port()
    keys = os.path.join(t.tmpdir("batvkeys"), "batv.keys")
    with open(keys, "w") as f:
        f.write("1 content-interface-test-secret\n")
    os.chmod(keys, 0o600)
    bs2 = t.backstop({"backend": {"address": pf.address},
                      "batv": {"mode": "enforce", "domains": "other.example", "keys_file": keys,
                               "sign_key": "1"},
                      "outbound": {"listen": "127.0.0.1:%d" % out_port, "relay": nodsn.address}})
    t.check("the start-up probe learnt the inbound backend's EHLO", bs2.wait_backend_known(), bs2.log()[-1500:])
    c = bs2.client()
    r0 = c.ehlo()
    t.check("inbound EHLO offers DSN (learnt from the inbound backend)",
            any(l.upper().startswith("DSN") for l in r0.lines), r0)
    c.close()
    # an outbound relay through the backend without DSN
    oc = bs2.client(port=out_port)
    replies = oc.mail_transaction("sender@test.example", ["user@test.example"], make_message("outbound"))
    t.check("outbound relay delivered", replies and replies[-1].code == 250, replies)
    oc.close()
    r1 = bs2.client(port=out_port).ehlo()
    t.check("outbound EHLO does not offer DSN (its relay has none)",
            not any(l.upper().startswith("DSN") for l in r1.lines), r1)
    c = bs2.client()
    r2 = c.ehlo()
    t.check("inbound EHLO still offers DSN after the outbound relay",
            any(l.upper().startswith("DSN") for l in r2.lines), r2)
    t.check_reply("inbound MAIL ... RET=HDRS accepted", c.cmd("MAIL FROM:<a@example.org> RET=HDRS"), 250)
    c.close()
    bs2.stop()

with t.case("a 50 MB message is held on disk, not in memory"):
    if "ASAN_OPTIONS" in os.environ:
        # the sanitizer build keeps freed blocks in a quarantine (256 MB by
        # default): without a small one, peak RSS measures ASan, not us
        os.environ["ASAN_OPTIONS"] += ":quarantine_size_mb=8:thread_local_quarantine_size_kb=256"
    spool = t.tmpdir("spool")
    bs3 = t.backstop({"backend": {"address": pf.address, "data_timeout": "120s"},
                      "server": {"spool_dir": spool},
                      "limits": {"max_message_size": "60m", "data_buffer": "64k",
                                 "data_timeout": "120s"},
                      "dns": {"servers": "127.0.0.1:%d" % dport},
                      "dkim": {"mode": "annotate"}})

    def vm(field):
        with open("/proc/%d/status" % bs3.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])   # kB
        return 0

    def spool_files():
        out = []
        for fd in os.listdir("/proc/%d/fd" % bs3.pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (bs3.pid, fd))
            except OSError:
                continue
            if target.startswith(spool):
                out.append(target)
        return out

    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,-0123456789abcd\r\n"
    body = line * (50 * 1024 * 1024 // len(line))
    mid = "<fifty-mb.%d@example.org>" % random.randint(0, 1 << 30)
    raw = ("From: <sender@example.org>\r\nTo: <user@test.example>\r\nSubject: fifty\r\n"
           "Message-ID: %s\r\n\r\n" % mid).encode() + body
    hwm0 = vm("VmHWM")
    c = bs3.client(timeout=120)
    c.ehlo()
    c.cmd("MAIL FROM:<sender@example.org>")
    c.cmd("RCPT TO:<user@test.example>")
    t.check_reply("50 MB: DATA 354", c.cmd("DATA"), 354)
    payload = dot_stuff(raw)
    half = len(payload) // 2
    c.send(payload[:half])
    held = poll(lambda: spool_files() or None, 10.0)
    t.check("50 MB: held in an anonymous spool file under spool_dir", held,
            os.listdir("/proc/%d/fd" % bs3.pid))
    t.check("50 MB: the spool file is not in the directory (O_TMPFILE / unlinked)",
            os.listdir(spool) == [], os.listdir(spool))
    c.send(payload[half:] + b".\r\n")
    rr = c.reply(120)
    t.check_reply("50 MB: accepted", rr, 250)
    c.close()
    hwm1 = vm("VmHWM")
    log("# backstop VmHWM %d kB before, %d kB after a %d-byte message" % (hwm0, hwm1, len(raw)))
    t.check("50 MB: peak RSS grew by under 16 MB (%d kB)" % (hwm1 - hwm0), hwm1 - hwm0 < 16 * 1024)
    t.check("50 MB: the spool file is closed after the transaction",
            poll(lambda: not spool_files(), 5.0), spool_files())
    m = by_mid(mid, 30.0)
    t.check("50 MB: delivered", m is not None)
    if m is not None:
        got = m.body().replace(b"\n", b"\r\n")
        t.check("50 MB: every byte of the body arrived", got == body, (len(got), len(body)))
    bs3.stop()

with t.case("[limits] spool_max: a held message that would go over it gets 452 4.3.1, never a silent drop"):
    pf.clear_mail()
    spool = t.tmpdir("spool-small")
    bs4 = t.backstop({"backend": {"address": pf.address},
                      "server": {"spool_dir": spool},
                      "limits": {"max_message_size": "10m", "data_buffer": "64k", "spool_max": "1m"},
                      "dns": {"servers": "127.0.0.1:%d" % dport},
                      "dkim": {"mode": "annotate"}})
    big = ("From: <sender@example.org>\r\nSubject: over spool_max\r\n\r\n" +
           ("x" * 78 + "\r\n") * 40000).encode()   # 3.2 MB
    rr = send(bs4, big)
    t.check_reply("over spool_max: 452 4.3.1 at end of data", rr, 452, "4.3.1")
    t.check("over spool_max: nothing delivered", pf.settle(1.0) == [])
    msg, mid = make_fixtures.message("after-spool-full")
    rr = send(bs4, msg)
    t.check_reply("after it: a small message is accepted (the spool bytes were given back)", rr, 250)
    t.check("after it: delivered", by_mid(mid) is not None)
    bs4.stop()

t.done()

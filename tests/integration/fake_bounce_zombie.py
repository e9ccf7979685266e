#!/usr/bin/python3
"""fake_bounce_zombie: no address reaches the rbldnsd zone on one site's word
(review15).

Anyone can send backstop a "bounce" whose quoted original names any address
as the client; and a spam run writes Received lines below the real one (the
joe-job pattern) that name whom it likes. So:
- the zombie is the address the bouncing site's entry MTA saw: a forged line
  below it is never taken (the bouncer's chain read from the top);
- `backstop report` lists a zombie only when bouncing servers in
  --min-servers (default 2) distinct networks (/24, /48) named it: fake
  bounces from one server, or from hosts of one /24, list nothing; the same
  address named by servers in two /24s is listed.
The bouncing servers are real connections from 127.0.0.1, 127.0.0.2 (the
same /24) and 127.0.1.1 (another /24), all on loopback.
"""
import os
import re
import subprocess
from harness import *

t = Test("fake_bounce_zombie", need=("smtp-sink",))
sink = t.sink(dump=False)
KEYS = os.path.join(t.tmpdir("keys"), "batv.keys")
with open(KEYS, "w") as f:
    f.write("1 report-secret-0123456789abcdef\n")
os.chmod(KEYS, 0o600)
bs = t.backstop({
    "backend": {"address": sink.address},
    "server": {"state_dir": t.tmpdir("state")},
    "log": {"format": "json", "level": "info"},
    "batv": {"mode": "enforce", "domains": "test.example", "keys_file": KEYS, "sign_key": "1",
             "refuse_at": "content"},
    "bounce": {"mode": "enforce", "unverifiable": "refuse"},
})


def bounce(received, n):
    return ("From: MAILER-DAEMON@mx.victim.example\r\nTo: user@test.example\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry.\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.victim.example\r\n\r\n"
            "Final-Recipient: rfc822; nobody@victim.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
            "--B\r\nContent-Type: message/rfc822\r\n\r\n" + received +
            "From: <user@test.example>\r\nTo: <nobody@victim.example>\r\nSubject: hello\r\n"
            "Message-ID: <fake%d@test.example>\r\n\r\nspam\r\n--B--\r\n" % n)


# review15's fake: a made-up top line, and a bottom line naming 8.8.8.8
FAKE = ("Received: from [203.0.113.50] by mx.victim.example; Mon, 7 Dec 2026 03:00:00 +0000\r\n"
        "Received: from innocent.example ([8.8.8.8]) by relay.innocent.example; "
        "Mon, 7 Dec 2026 02:59:00 +0000\r\n")
# a real bounce of a joe-job: the victim's relay and entry MTA, and below
# them the spammer's forged line naming 8.8.4.4
JOEJOB = ("Received: from mx-in.victim.example (mx-in.victim.example [81.2.69.10])\r\n"
          "\tby store.victim.example (Postfix) with ESMTP id 4A1; Mon, 7 Dec 2026 03:00:01 +0000\r\n"
          "Received: from mx.victim.example (dsl-5-6-7-8.isp.example [5.6.7.8])\r\n"
          "\tby mx-in.victim.example (Postfix) with ESMTP id 3B2; Mon, 7 Dec 2026 03:00:00 +0000\r\n"
          "Received: from relay.innocent.example (relay.innocent.example [8.8.4.4])\r\n"
          "\tby mx.forwarder.example; Mon, 7 Dec 2026 02:59:00 +0000\r\n")
sent = [0]


def send_bounces(source, received, count):
    c = bs.client(source=(source, 0))
    c.ehlo()
    for _ in range(count):
        sent[0] += 1
        rs = c.mail_transaction("", ["user@test.example"], bounce(received, sent[0]))
        t.check("the fake bounce from %s is refused" % source,
                rs[-1].code == 550, rs[-1])
    c.cmd("QUIT")
    c.close()
    bs.wait_log(r'"event":"bounce_refused"', 10, sent[0])


def report(*args, ok=True):
    p = subprocess.run([backstop_bin(), "report"] + list(args) + [bs.logfile],
                       capture_output=True, timeout=30)
    if ok:
        t.check("report %s exits 0" % " ".join(args), p.returncode == 0, p.stderr[-300:])
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def zone_lines(out):
    return [line for line in out.splitlines() if line and line[0] not in "#:"]


def csv_zombie(out, ip):
    for line in out.splitlines():
        f = line.split(",")
        if f[0] == "zombie" and f[4] == '"%s"' % ip:
            return f
    return None


with t.case("one fake bounce does not list its address"):
    send_bounces("127.0.0.1", FAKE, 1)
    t.check("the record names what the fake says",
            re.search(r'"server_ip":"127\.0\.0\.1".*"orig_client_ip":"8\.8\.8\.8"', bs.log()),
            bs.log()[-1500:])
    _, out, _ = report("--format", "rbldnsd")
    t.check("not in the zone", "8.8.8.8" not in out and zone_lines(out) == [], out)
    t.check("the zone says why", "named it (--min-servers)" in out and "1 named by fewer" in out,
            out)
    _, out, _ = report()
    t.check("the text report shows 1 server, not listed",
            re.search(r"^\s+1\s+1\s+-\s+\S+\s+\S+\s+8\.8\.8\.8$", out, re.M), out)

with t.case("many fake bounces from one /24 do not list it"):
    send_bounces("127.0.0.1", FAKE, 3)
    send_bounces("127.0.0.2", FAKE, 2)
    _, out, _ = report("--format", "rbldnsd")
    t.check("not in the zone", "8.8.8.8" not in out, out)
    _, out, _ = report("--format", "csv")
    f = csv_zombie(out, "8.8.8.8")
    t.check("csv: 6 bounces, 1 server network, not listed",
            f is not None and f[1] == "6" and f[6:] == ["1", "no"], f)

with t.case("bouncing servers in two /24s list it"):
    send_bounces("127.0.1.1", FAKE, 1)
    _, out, _ = report("--format", "rbldnsd")
    t.check("in the zone", "\n8.8.8.8 :127.0.0.2:7 refused bounces from 2 servers" in out, out)
    _, out, _ = report("--format", "csv")
    f = csv_zombie(out, "8.8.8.8")
    t.check("csv: 7 bounces, 2 server networks, listed",
            f is not None and f[1] == "7" and f[6:] == ["2", "yes"], f)
    _, out, _ = report("--format", "html")
    t.check("html: the zombie row has 2 servers, listed",
            re.search(r"<tr><td>7</td><td>2</td><td>yes</td>.*?<td>8\.8\.8\.8</td>", out) is not None,
            out[-1500:])
    _, out, _ = report("--format", "rbldnsd", "--min-servers", "3")
    t.check("--min-servers 3: not listed", "8.8.8.8" not in out, out)
    _, out, _ = report("--format", "rbldnsd", "--min-servers", "1")
    t.check("--min-servers 1: listed", "\n8.8.8.8 :127.0.0.2:" in out, out)

with t.case("a joe-job's forged line below the entry MTA is not the zombie"):
    send_bounces("127.0.0.1", JOEJOB, 1)
    send_bounces("127.0.1.1", JOEJOB, 1)
    t.check("the record names the entry MTA's client",
            '"orig_client_ip":"5.6.7.8"' in bs.log() and "8.8.4.4\"" not in bs.log(),
            bs.log()[-1500:])
    _, out, _ = report("--format", "rbldnsd")
    t.check("the zone lists the zombie, not the forged address",
            "\n5.6.7.8 :127.0.0.2:2 refused bounces from 2 servers" in out and "8.8.4.4" not in out,
            out)

with t.case("--min-servers out of range says what to write"):
    for bad in ("0", "9", "-1", "two", ""):
        rc, _, err = report("--min-servers", bad, ok=False)
        t.check("--min-servers %r: exit 2, names the range" % bad,
                rc == 2 and "from 1 to 8" in err, (rc, err))

t.done()

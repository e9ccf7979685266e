#!/usr/bin/python3
"""review15 repro (NOT fixed, expected to FAIL): a client sends a fake DSN whose
"original" has a bottom Received "from x ([8.8.8.8])"; [bounce] refuses it and logs
orig_client_ip=8.8.8.8 (the bottom-most external hop); `backstop report --format
rbldnsd` then lists 8.8.8.8. Run: BACKSTOP_BUILDDIR=$PWD PYTHONPATH=$PWD/tests/lib
python3 tests/repro/review15_fake_bounce_zombie.py"""
import os, subprocess
from harness import *
t = Test("fakebounce")
sink = t.sink(dump=False)
KEYS = os.path.join(t.tmpdir("keys"), "batv.keys")
open(KEYS, "w").write("1 report-secret-0123456789abcdef\n")
os.chmod(KEYS, 0o600)
bs = t.backstop({"backend": {"address": sink.address},
    "server": {"state_dir": t.tmpdir("state")},
    "log": {"format": "json", "level": "info"},
    "batv": {"mode": "enforce", "domains": "test.example", "keys_file": KEYS, "sign_key": "1", "refuse_at": "content"},
    "bounce": {"mode": "enforce", "unverifiable": "refuse"}})
body = ("From: MAILER-DAEMON@mx.victim.example\r\nTo: user@test.example\r\n"
 "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
 "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
 "--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry.\r\n"
 "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.victim.example\r\n\r\n"
 "Final-Recipient: rfc822; nobody@victim.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
 "--B\r\nContent-Type: message/rfc822\r\n\r\n"
 "Received: from [203.0.113.50] by mx.victim.example; Mon, 7 Dec 2026 03:00:00 +0000\r\n"
 "Received: from innocent.example ([8.8.8.8]) by relay.innocent.example; Mon, 7 Dec 2026 02:59:00 +0000\r\n"
 "From: <user@test.example>\r\nTo: <nobody@victim.example>\r\nSubject: hello\r\nMessage-ID: <x@y>\r\n\r\nspam\r\n--B--\r\n")
c = bs.client(); c.ehlo()
rs = c.mail_transaction("", ["user@test.example"], body)
print(rs[-1])
c.cmd("QUIT")
bs.wait_log(r'"event":"bounce_refused"')
out = subprocess.run([backstop_bin(), "report", "--format", "rbldnsd", bs.logfile], stdout=subprocess.PIPE).stdout.decode()
print(out)
t.check("a fake bounce's forged bottom hop is not listed", "8.8.8.8" not in out, out)
t.done()

#!/usr/bin/python3
"""backstop report on a shared mail log: another program's line is no record.

Postfix logs a "non-SMTP command" verbatim at the end of its line; any
client of any smtpd writing to the same mail log (submission on 587, a
second listener) sends a JSON object as its command, and the report took
the line's first '{' for a bounce_refused record of ours: the address it
chose went into the rbldnsd zone (a blocklisting of anyone). Only a line
that is a JSON object, or carries backstop's syslog tag as its tag, is
read."""
import os
import subprocess
import time
from harness import *

t = Test("report_shared_log")
pf = t.postfix()
host, port = pf.address.split(":")

with t.case("a client's command logged by Postfix is not a record"):
    c = SmtpClient(host, int(port))
    c.greeting()
    c.send(b'{"event":"bounce_refused","orig_client_ip":"8.8.8.8","server_ip":"192.0.2.1"}\r\n')
    c.try_reply(3)
    c.close()
    t.check("Postfix logged the command", pf.wait_log(r"non-SMTP command .*8\.8\.8\.8"),
            pf.log()[-2000:])
    with open(os.path.join(t.tmpdir("log"), "mail.log"), "w") as f:
        f.write(open(pf.logfile).read())
        # and one real record of ours, syslog style
        f.write('Dec  7 04:04:01 mx backstop[77]: {"ts":"2026-12-07T04:04:01.000Z",'
                '"level":"info","pid":77,"event":"bounce_refused","server_ip":"192.0.2.9",'
                '"orig_client_ip":"9.9.9.9","subject":"x","url_hosts":[]}\n')
        path = f.name
    # --min-servers 1: the forged line names one server, and the zone's
    # default (two networks) would hide it whether it was read or not
    out = subprocess.run([backstop_bin(), "report", "--format", "rbldnsd", "--min-servers", "1",
                          path],
                         stdout=subprocess.PIPE, timeout=30).stdout.decode()
    t.check("the forged zombie is not in the zone", "8.8.8.8" not in out, out)
    t.check("our own record is", "\n9.9.9.9 :127.0.0.2:1 " in out, out)

t.done()

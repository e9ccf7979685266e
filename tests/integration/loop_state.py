#!/usr/bin/python3
"""loop_state: the state issue 14 moved from globals into the loop's owner
(BATV keys, the outbound signature's sentlog, the [limits] spool_max
budget), attacked where it lives and dies, in front of a real Postfix.

spool_max: every path gives the bytes of a spool file back (the gauge
backstop_spool_bytes is 0 again, never wrapped below zero): a client that
disconnects mid-DATA, a data_timeout mid-DATA, Postfix's 5xx and 4xx at end
of data, a message over spool_max (452 4.3.1 at end of data) then RSET, and
an accepted one. A reload that lowers spool_max below what open spools hold
gives the next DATA 452 4.3.1, the open transaction 452 at its end, and mail
flows again once the bytes are back.

BATV keys read by the bounce filter ([batv] mode = off, [bounce] enforce: a
DSN quoting a tagged Return-Path): a reload that rotates the secret while a
session is mid-transaction judges its end of data with the new keys; a
reload whose keys_file is missing, then unreadable garbage, keeps the keys
in force and says why. With [server] workers = 2 each worker reloads its
own keys. The [outbound] sentlog flushed every 20 ms on the thread pool
while messages go out, a reload replaces the log (sent_per_day changed) and
SIGTERM arrives: exit 0, no sanitizer report (run it with the ASan build)."""
import os
import re
import signal
import time
import urllib.request
from harness import *
from bounce_msgs import *

t = Test("loop_state", need=("postfix", "smtp-sink"), watchdog=150)

pf = t.postfix(extra_main=(
    "smtpd_end_of_data_restrictions = check_sender_access inline:{"
    " {tempfail@example.org = 451 4.3.0 not now},"
    " {refuse@example.org = 554 5.7.1 not wanted} }\n"))

LINE = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,-0123456789ab\r\n"


def body_of(nbytes, subject="spool"):
    return (("From: <sender@example.org>\r\nTo: <user@test.example>\r\nSubject: %s\r\n"
             "Message-ID: <%s.%d@example.org>\r\n\r\n") % (subject, subject.replace(" ", "-"),
                                                         random.randint(0, 1 << 30))).encode() + \
        LINE * (nbytes // len(LINE))


def scrape(port):
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=3).read().decode()
    m = re.search(r"^backstop_spool_bytes (\d+)$", body, re.M)
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------- spool_max

MPORT = free_port()
spool = t.tmpdir("spool")
sp = t.backstop({"backend": {"address": pf.address},
                 "server": {"spool_dir": spool},
                 # observe: every message is held (spooled), none refused by it
                 "bounce": {"mode": "observe"},
                 "batv": {"mode": "off", "domains": "test.example"},
                 "limits": {"data_buffer": "64k", "spool_max": "2m", "max_message_size": "10m",
                            "data_timeout": "1s"},
                 "metrics": {"listen": "127.0.0.1:%d" % MPORT}})
seen = []


def spool_bytes():
    n = scrape(MPORT)
    seen.append(n)
    return n


def back_to_zero(name):
    t.check("%s: the spool bytes are given back (gauge 0)" % name,
            poll(lambda: spool_bytes() == 0, 5.0), seen[-3:])


def open_data(mail_from="sender@example.org", timeout=10):
    c = sp.client(timeout=timeout)
    c.ehlo()
    t.check_reply("MAIL", c.cmd("MAIL FROM:<%s>" % mail_from), 250)
    t.check_reply("RCPT", c.cmd("RCPT TO:<user@test.example>"), 250)
    return c


def spooled(at_least):
    return poll(lambda: (spool_bytes() or 0) >= at_least, 5.0)


with t.case("spool_max: every way a held transaction ends gives its bytes back"):
    t.check("gauge 0 at start", spool_bytes() == 0, seen)

    c = open_data()
    t.check_reply("mid-DATA disconnect: DATA 354", c.cmd("DATA"), 354)
    c.send(dot_stuff(body_of(300000)))
    t.check("mid-DATA disconnect: bytes in a spool file", spooled(200000), seen[-3:])
    c.close()
    back_to_zero("client disconnect mid-DATA")

    c = open_data()
    t.check_reply("data_timeout: DATA 354", c.cmd("DATA"), 354)
    c.send(dot_stuff(body_of(300000)))
    t.check("data_timeout: bytes in a spool file", spooled(200000), seen[-3:])
    r = c.try_reply(5)
    t.check_reply("data_timeout: 421 mid-DATA", r, 421)
    back_to_zero("data_timeout mid-DATA")

    for who, code in (("refuse@example.org", 554), ("tempfail@example.org", 451),
                      ("sender@example.org", 250)):
        c = open_data(who)
        t.check_reply("%s: DATA 354" % who, c.cmd("DATA"), 354)
        c.send(dot_stuff(body_of(300000)) + b".\r\n")
        t.check_reply("%s: Postfix's %d at end of data" % (who, code), c.reply(15), code)
        t.check_reply("%s: RSET" % who, c.cmd("RSET"), 250)
        back_to_zero("end of data %d" % code)
        c.cmd("QUIT")

    c = open_data()
    t.check_reply("over spool_max: DATA 354", c.cmd("DATA"), 354)
    c.send(dot_stuff(body_of(3 * 1024 * 1024)) + b".\r\n")
    t.check_reply("over spool_max: 452 4.3.1 at end of data", c.reply(15), 452, "4.3.1")
    t.check_reply("over spool_max: RSET", c.cmd("RSET"), 250)
    back_to_zero("over spool_max")
    c.cmd("QUIT")
    t.check("the gauge never wrapped below zero", all(n is not None and n < 1 << 40 for n in seen),
            max(n for n in seen if n is not None))

with t.case("spool_max lowered by a reload below what open spools hold"):
    a = open_data(timeout=15)
    t.check_reply("A: DATA 354", a.cmd("DATA"), 354)
    big = dot_stuff(body_of(1900 * 1024))
    a.send(big[:1500 * 1024])
    t.check("A: 1.4 MB in its spool file", spooled(1400 * 1024), seen[-3:])
    sp.sections["limits"]["spool_max"] = "1m"
    sp.sections["limits"]["data_timeout"] = "10s"
    sp.write_config()
    sp.mark()
    sp.signal(signal.SIGHUP)
    t.check("reloaded", sp.wait_log(r"reload: configuration .* loaded"), sp.log(True))
    b = open_data()
    t.check_reply("B: 452 4.3.1 at DATA (the budget is spent)", b.cmd("DATA"), 452, "4.3.1")
    b.cmd("QUIT")
    a.send(big[1500 * 1024:] + b".\r\n")
    t.check_reply("A: 452 4.3.1 at end of data (its spool would go over)", a.reply(15), 452, "4.3.1")
    a.cmd("QUIT")
    back_to_zero("after the lowered limit")
    c = open_data()
    rs = c.cmd("DATA")
    t.check_reply("then: DATA 354 again", rs, 354)
    c.send(dot_stuff(body_of(200000)) + b".\r\n")
    t.check_reply("then: a 200 KB message is accepted", c.reply(15), 250)
    c.cmd("QUIT")
    back_to_zero("after an accepted message")
    sp.stop()

# ---------------------------------------------------------------- BATV keys

kdir = t.tmpdir("keys")
KEYS = os.path.join(kdir, "batv.keys")
OLD, NEW = "loop-state-old-secret-0123456789", "loop-state-new-secret-9876543210"


def write_keys(text, mode=0o600):
    tmp = KEYS + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.rename(tmp, KEYS)


def dsn_with_rpath(secret):
    """A DSN to untagged user@ quoting a Return-Path tagged with secret:
    the bounce filter's only evidence is that tag (its keys are BATV's)."""
    return postfix_dsn(original_headers(return_path=py_tag("user@test.example", 1, secret)))


def keyed_backstop(extra_server=None):
    return t.backstop({"backend": {"address": pf.address},
                       "server": dict({"drain_time": "5s"}, **(extra_server or {})),
                       "batv": {"mode": "off", "domains": "test.example", "keys_file": KEYS,
                                "sign_key": "1"},
                       "bounce": {"mode": "enforce", "unverifiable": "refuse"}})


def verdict(bs, body):
    c = bs.client(timeout=10)
    c.ehlo()
    rs = c.mail_transaction("", ["user@test.example"], body)
    c.cmd("QUIT")
    c.close()
    return rs[-1]


def reload(bs, pattern=r"reload: configuration .* loaded", count=1):
    bs.mark()
    bs.signal(signal.SIGHUP)
    return len(bs.wait_log(pattern, 5, count=count)) >= count


with t.case("BATV keys: a reload rotating them, one losing the file, one breaking it"):
    write_keys("1 %s\n" % OLD)
    kb = keyed_backstop()
    t.check_reply("old secret's Return-Path tag: accepted", verdict(kb, dsn_with_rpath(OLD)), 250)
    t.check_reply("new secret's: refused", verdict(kb, dsn_with_rpath(NEW)), 550, "5.7.1")

    # a session mid-transaction across the rotation: its end of data is
    # judged with the keys in force then
    c = kb.client(timeout=10)
    c.ehlo()
    t.check_reply("mid-transaction: MAIL", c.cmd("MAIL FROM:<>"), 250)
    t.check_reply("mid-transaction: RCPT", c.cmd("RCPT TO:<user@test.example>"), 250)
    t.check_reply("mid-transaction: DATA", c.cmd("DATA"), 354)
    pending = dot_stuff(dsn_with_rpath(NEW))
    c.send(pending[:200])
    write_keys("1 %s\n" % NEW)
    t.check("rotation: reloaded", reload(kb), kb.log(True))
    c.send(pending[200:] + b".\r\n")
    t.check_reply("mid-transaction: judged with the new secret (accepted)", c.reply(10), 250)
    c.cmd("QUIT")
    t.check_reply("after the rotation: old secret refused", verdict(kb, dsn_with_rpath(OLD)),
                  550, "5.7.1")

    os.unlink(KEYS)
    t.check("keys file missing: the reload is refused and says why",
            reload(kb, r"reload: batv: .*batv\.keys.*keeping the running configuration"),
            kb.log(True))
    t.check_reply("keys file missing: the new secret stays in force",
                  verdict(kb, dsn_with_rpath(NEW)), 250)

    write_keys("this is not a keys file\n\x00\xff garbage\n")
    t.check("keys file garbage: the reload is refused and says why",
            reload(kb, r"reload: batv: .*keeping the running configuration"), kb.log(True))
    t.check_reply("keys file garbage: the new secret stays in force",
                  verdict(kb, dsn_with_rpath(NEW)), 250)
    t.check_reply("keys file garbage: the old secret stays refused",
                  verdict(kb, dsn_with_rpath(OLD)), 550, "5.7.1")

    # the operator withdraws the keys (a leaked secret): keys_file unset.
    # The bounce check says tags cannot be evidence; they must not be
    write_keys("1 %s\n" % NEW)
    del kb.sections["batv"]["keys_file"]
    kb.write_config()
    t.check("keys_file unset: reloaded, and the log says tags are no evidence",
            reload(kb, r"bounce: \[batv\] keys_file is not set") and
            kb.wait_log(r"reload: configuration .* loaded"), kb.log(True))
    t.check_reply("keys_file unset: the withdrawn secret's tag is no evidence any more",
                  verdict(kb, dsn_with_rpath(NEW)), 550, "5.7.1")
    kb.stop()

with t.case("BATV keys with [server] workers = 2: each worker reloads its own"):
    write_keys("1 %s\n" % OLD)
    wb = keyed_backstop({"workers": "2"})
    t.check("2 workers listening", wb.wait_log(r"2 workers listening", 10), wb.log())
    for i in range(6):
        t.check_reply("before: old secret accepted (%d)" % i, verdict(wb, dsn_with_rpath(OLD)), 250)
    write_keys("1 %s\n" % NEW)
    t.check("both workers reload", reload(wb, count=2), wb.log(True))
    for i in range(6):
        t.check_reply("after: new secret accepted (%d)" % i, verdict(wb, dsn_with_rpath(NEW)), 250)
        t.check_reply("after: old secret refused (%d)" % i, verdict(wb, dsn_with_rpath(OLD)),
                      550, "5.7.1")
    wb.stop()

with t.case("a reload refused for another filter applies none of it (keys rotated in place, psl_file missing)"):
    write_keys("1 %s\n" % OLD)
    ab = keyed_backstop()
    t.check_reply("before: old secret accepted", verdict(ab, dsn_with_rpath(OLD)), 250)
    write_keys("1 %s\n" % NEW)
    ab.sections["dmarc"] = {"mode": "annotate", "psl_file": os.path.join(kdir, "missing.dat")}
    ab.write_config()
    t.check("the reload is refused, naming dmarc",
            reload(ab, r"reload: dmarc: .*missing\.dat.*keeping the running configuration"), ab.log(True))
    t.check("nothing says the new configuration was loaded",
            not re.search(r"reload: configuration .* loaded", ab.log(True)), ab.log(True))
    t.check_reply("the running keys stay: old secret still accepted", verdict(ab, dsn_with_rpath(OLD)), 250)
    t.check_reply("the new file's secret is not in force", verdict(ab, dsn_with_rpath(NEW)), 550, "5.7.1")
    del ab.sections["dmarc"]
    ab.write_config()
    t.check("fixed: the next reload takes the new keys", reload(ab), ab.log(True))
    t.check_reply("then the new secret is accepted", verdict(ab, dsn_with_rpath(NEW)), 250)
    ab.stop()

# ------------------------------------------------ a refused reload, sentlog

with t.case("a refused reload keeps the sentlog (sent_per_day changed, [dmarc] psl_file missing)"):
    write_keys("1 %s\n" % OLD)
    sink2 = t.sink()
    state2 = t.tmpdir("state2")
    out2 = free_port()
    rb = t.backstop({"backend": {"address": pf.address},
                     "server": {"state_dir": state2},
                     "batv": {"mode": "enforce", "domains": "test.example", "keys_file": KEYS,
                              "sign_key": "1"},
                     "bounce": {"mode": "enforce", "sent_per_day": "1000"},
                     "outbound": {"listen": "127.0.0.1:%d" % out2, "relay": sink2.address}})
    mid = "<kept.%d@test.example>" % random.randint(0, 1 << 30)
    c = rb.client(timeout=10, port=out2)
    c.ehlo()
    rs = c.mail_transaction("user@test.example", ["victim@remote.example"],
                            ("From: <user@test.example>\r\nTo: <victim@remote.example>\r\n"
                             "Subject: hello\r\nMessage-ID: %s\r\n\r\nhi\r\n" % mid).encode())
    t.check_reply("sent through [outbound]", rs[-1], 250)
    c.cmd("QUIT")

    def auto_reply():
        c = rb.client(timeout=10)
        c.ehlo()
        rs = c.mail_transaction("victim@remote.example", ["user@test.example"], vacation(mid))
        c.cmd("QUIT")
        return rs[-1]
    t.check_reply("an auto-reply to it: accepted (its id is in the sentlog)", auto_reply(), 250)
    rb.sections["bounce"]["sent_per_day"] = "2000"
    rb.sections["dmarc"] = {"mode": "annotate", "psl_file": os.path.join(state2, "missing.dat")}
    rb.write_config()
    t.check("the reload is refused", reload(rb, r"reload: dmarc: .*keeping the running configuration"),
            rb.log(True))
    t.check_reply("after the refused reload: the auto-reply is still accepted (sentlog kept)",
                  auto_reply(), 250)
    rb.stop()

# ------------------------------------------------- sentlog flush at SIGTERM

with t.case("sentlog: flushes in flight, a reload replacing the log, then SIGTERM"):
    write_keys("1 %s\n" % OLD)
    os.environ["BACKSTOP_SENTLOG_FLUSH_MS"] = "20"
    sink = t.sink()
    state = t.tmpdir("state")
    out_port = free_port()
    ob = t.backstop({"backend": {"address": pf.address},
                     "server": {"state_dir": state, "drain_time": "5s"},
                     "batv": {"mode": "enforce", "domains": "test.example", "keys_file": KEYS,
                              "sign_key": "1"},
                     "bounce": {"mode": "enforce", "sent_per_day": "1000"},
                     "outbound": {"listen": "127.0.0.1:%d" % out_port, "relay": sink.address}})
    del os.environ["BACKSTOP_SENTLOG_FLUSH_MS"]
    t.check("the outbound listener is up", poll(lambda: len(re.findall(r"listening on", ob.log())) >= 2, 5))

    def send_out(i):
        c = ob.client(timeout=10, port=out_port)
        c.ehlo()
        rs = c.mail_transaction("user@test.example", ["someone@remote.example"],
                                make_message("out %d" % i))
        return c, rs[-1]

    for i in range(20):
        c, r = send_out(i)
        t.check_reply("sent %d" % i, r, 250)
        c.cmd("QUIT")
        c.close()
        if i == 10:
            ob.sections["bounce"]["sent_per_day"] = "2000"
            ob.write_config()
            ob.signal(signal.SIGHUP)
    t.check("the reload replaced the log", ob.wait_log(r"reload: configuration .* loaded"), ob.log())
    t.check("the sentlog was saved by a worker", ob.wait_log(r"sentlog: saved|sentlog: \d+ days"),
            ob.log()[-2000:])
    c, r = send_out(99)   # SIGTERM right after a message went out (a flush due)
    ob.signal(signal.SIGTERM)
    c.cmd("QUIT")
    c.close()
    rc = ob.wait_exit(10)
    t.check("exits 0", rc == 0, (rc, ob.log()[-3000:]))
    ob.check_sanitizers()

t.done()

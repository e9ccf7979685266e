#!/usr/bin/python3
"""summary_log: every transaction and every refusal gets exactly one
summary line ("txn ID ... result: ..."), and that line quotes the reply the
client was given, in the reply's own words. Refusals before a transaction
(SIZE 552, bad address 501, bad BODY 501, SPF 550 at MAIL) get their own
line; refused recipients (by the backend's 550 5.1.1, by syntax, by BATV)
appear in their transaction's line with the address and the reply."""
import re
from harness import *

t = Test("summary_log", watchdog=200, need=("postfix", "ip"))
try:
    import dnslib  # noqa: F401
except ImportError:
    t.error("python3-dnslib not installed (tests/deps.sh installs it)")
pf = t.postfix()
zone = os.path.join(srcdir(), "tests", "data", "dns", "spf.zone")
dport = t.dns_server(zone)
ns = t.netns()
port = free_port(ns.host_addr)
keys = os.path.join(t.tmpdir("keys"), "batv.keys")
with open(keys, "w") as f:
    f.write("1 summary-log-test-secret\n")
os.chmod(keys, 0o600)
bs = t.backstop({"backend": {"address": pf.address},
                 "server": {"listen": "%s:%d" % (ns.host_addr, port)},
                 "limits": {"max_message_size": "100000"},
                 "dns": {"servers": "127.0.0.1:%d" % dport, "timeout": "1s"},
                 "spf": {"mode": "enforce"},
                 "batv": {"mode": "enforce", "domains": "test.example", "keys_file": keys, "sign_key": "1",
                          "refuse_at": "rcpt"}})


def summaries(since):
    return [l for l in bs.log()[since:].splitlines() if re.search(r": txn \S+ from \[", l)]


def session(lines):
    """Run commands from the namespace; returns the replies."""
    c = ns.client(ns.host_addr, port)
    c.greeting()
    c.ehlo()
    out = []
    for line in lines:
        if isinstance(line, bytes):
            c.send(line)
            out.append(c.reply(10))
        else:
            out.append(c.cmd(line, timeout=10))
    c.cmd("QUIT")
    c.close()
    time.sleep(0.3)
    return out


def one_line(name, lines, want_replies, want_in_line):
    since = len(bs.log())
    out = session(lines)
    for (code, esc), r in zip(want_replies, out):
        t.check_reply("%s: reply %d %s" % (name, code, esc), r, code, esc)
    got = summaries(since)
    t.check("%s: exactly one summary line" % name, len(got) == 1, got)
    for want in want_in_line:
        t.check("%s: line has %r" % (name, want), got and want in got[0], got)


one_line("SIZE too big at MAIL", ["MAIL FROM:<sender@pass.example.org> SIZE=200000"],
         [(552, "5.3.4")], ["refused at MAIL: 552 5.3.4 Error: message size exceeds fixed maximum",
                            "from=<sender@pass.example.org>"])
one_line("bad sender address", ["MAIL FROM:<a b@pass.example.org>"],
         [(501, "5.1.7")], ["refused at MAIL: 501 5.1.7 Error: bad sender address syntax"])
one_line("bad BODY", ["MAIL FROM:<sender@pass.example.org> BODY=BINARYMIME"],
         [(501, "5.5.4")], ["refused at MAIL: 501 5.5.4 Error: BODY must be 7BIT or 8BITMIME"])
one_line("SPF fail at MAIL", ["MAIL FROM:<sender@failnoexp.example.org>"],
         [(550, "5.7.23")], ["refused at MAIL: 550 5.7.23", "spf=fail", "from=<sender@failnoexp.example.org>"])

msg = dot_stuff(make_message("summary one", mail_from="sender@pass.example.org")) + b".\r\n"
one_line("backend 550 5.1.1 and a syntax refusal beside an accepted recipient",
         ["MAIL FROM:<sender@pass.example.org>", "RCPT TO:<nosuchuser@test.example>",
          "RCPT TO:<bad address@test.example>", "RCPT TO:<user@test.example>", "DATA", msg],
         [(250, "2.1.0"), (550, "5.1.1"), (501, "5.1.3"), (250, "2.1.5"), (354, None), (250, None)],
         ["to=<user@test.example>", "refused=[<nosuchuser@test.example>: 550 5.1.1",
          "<bad address@test.example>: 501 5.1.3 Error: bad recipient address syntax",
          "result: accepted"])
one_line("BATV refusal at RCPT, then the client quits",
         ["MAIL FROM:<>", "RCPT TO:<user@test.example>", "DATA"],
         [(250, "2.1.0"), (550, "5.7.1"), (554, "5.5.1")],
         ["batv=fail(no_tag)", "<user@test.example>: 550 5.7.1 <user@test.example>: address did not send this mail (no BATV tag)",
          "DATA: 554 5.5.1 Error: no valid recipients", "to=none"])
one_line("RSET after MAIL", ["MAIL FROM:<sender@pass.example.org>", "RSET"],
         [(250, "2.1.0"), (250, None)], ["result: reset by client"])
one_line("EHLO in a transaction", ["MAIL FROM:<sender@pass.example.org>", "RCPT TO:<user@test.example>",
                                   "EHLO again.example.org"],
         [(250, "2.1.0"), (250, "2.1.5"), (250, None)], ["to=<user@test.example>", "result: ended without a message"])

with t.case("a refused MAIL after a transaction ended by RSET: two lines, two ids"):
    # the refused MAIL's line used to carry the previous transaction's number
    since = len(bs.log())
    session(["MAIL FROM:<sender@pass.example.org>", "RSET", "MAIL FROM:<a b@pass.example.org>"])
    got = summaries(since)
    ids = [m.group(1) for m in (re.search(r": txn (\S+) from \[", l) for l in got) if m]
    t.check("two summary lines with different ids", len(ids) == 2 and ids[0] != ids[1], got)

with t.case("a sender cannot write fields into its summary line"):
    # a valid quoted local part that carries the summary's own delimiters
    forged = '"x> to=<ceo@corp.example> checks=[spf=pass] result: accepted"@test.example'
    since = len(bs.log())
    c = ns.client(ns.host_addr, port)
    t.defer(c.close)
    c.greeting()
    c.ehlo()
    t.check_reply("MAIL with the forged quoted local part", c.cmd("MAIL FROM:<%s> SIZE=200000" % forged), 552)
    c.cmd("QUIT")
    lines = poll(lambda: summaries(since), 5) or []
    line = lines[-1] if lines else ""
    m = re.search(r"result: (\w+)", line)
    t.check("the first 'result:' is the real one", m is not None and m.group(1) == "refused", line)
    t.check("from=<...> holds the whole sender, its delimiters escaped",
            re.search(r"from=<([^>]*)>", line) is not None
            and "\\x3e\\x20to=\\x3cceo@corp.example\\x3e" in re.search(r"from=<([^>]*)>", line).group(1)
            and line.count(" to=") == 1, line)

with t.case("a BATV refusal writes one line at info level"):
    bs.stop()
    bs = t.backstop({"backend": {"address": pf.address},
                     "server": {"listen": "%s:%d" % (ns.host_addr, port)},
                     "log": {"level": "info"},
                     "batv": {"mode": "enforce", "domains": "test.example", "keys_file": keys,
                              "sign_key": "1", "refuse_at": "rcpt"}})
    since = len(bs.log())
    session(["MAIL FROM:<>", "RCPT TO:<user2@test.example>"])
    lines = [l for l in bs.log()[since:].splitlines() if "user2@test.example" in l]
    t.check("BATV refusal: one log line names the recipient", len(lines) == 1, lines)

t.done()

#!/usr/bin/python3
"""helo_reserved: what the backend is told about the client's HELO
(issue "Fix first", item 7).

XCLIENT_README and XFORWARD_README reserve [UNAVAILABLE] and [TEMPUNAVAIL]
(any case). A client that greets with one of them (possible with [helo]
reject_invalid = no) used to have it passed on literally: Postfix then
took it for "no HELO". And XFORWARD sent an empty HELO= for a client that
never greeted, where XCLIENT says [UNAVAILABLE]. Now the name the backend
records is the client's own word with the reserved brackets neutered
("?UNAVAILABLE?"), through XCLIENT and the EHLO after it alike (so never
backstop's name for a client that did greet), and a client without HELO
is [UNAVAILABLE] in both XCLIENT and XFORWARD. Checked with real Postfix
3.7 backends (one authorizing backstop for XCLIENT, one for XFORWARD
only): the Received header Postfix writes carries the HELO it recorded
from XCLIENT and the EHLO after it; XFORWARD values go only into the queue
file (log_helo_name, read with postcat on held messages). Postfix answers
an empty XFORWARD HELO= with 501 5.5.4, so a client without HELO used to
get 451 at MAIL through an XFORWARD backend."""
import os
import re
import subprocess
from harness import *

t = Test("helo_reserved", need=("postfix", "postcat"), watchdog=120)


def postfix_received(m):
    """Postfix's own (topmost) Received field, unfolded."""
    return re.sub(r"\s+", " ", m.headers("Received")[0]) if m and m.headers("Received") else ""


def deliver(bs, pf, verb, name, subject):
    """One transaction after `verb name` (verb None: no greeting at all);
    returns (greeting reply, Postfix's Received field)."""
    pf.clear_mail()
    c = bs.client()
    g = c.cmd("%s %s" % (verb, name)) if verb else None
    rs = c.mail_transaction("sender@example.org", ["user@test.example"], make_message(subject))
    c.cmd("QUIT")
    t.check_reply("%s: accepted" % subject, rs[-1], 250)
    msgs = pf.wait_for_mail(1)
    return g, postfix_received(msgs[0] if msgs else None)


RESERVED = [("HELO", "[UNAVAILABLE]", "?UNAVAILABLE?"), ("EHLO", "[tempunavail]", "?tempunavail?"),
            ("EHLO", "[TempUnavail]", "?TempUnavail?"), ("HELO", "[Unavailable]", "?Unavailable?")]

with t.case("XCLIENT: a reserved HELO token reaches Postfix as the client's word, neutered"):
    pf = t.postfix()
    bs = t.backstop({"backend": {"address": pf.address, "xclient": "on"},
                     "helo": {"reject_invalid": "no"}})
    for verb, name, want in RESERVED:
        bs.mark()
        g, rcv = deliver(bs, pf, verb, name, "xclient %s" % name)
        t.check_reply("%s %s: 250 (reject_invalid = no)" % (verb, name), g, 250)
        t.check("%s: XCLIENT HELO=%s, not the reserved token" % (name, want),
                bs.wait_log(r"<- XCLIENT .*HELO=%s " % re.escape(want), 2)
                and not re.search(r"HELO=\[(UNAVAILABLE|TEMPUNAVAIL)\]", bs.log(True), re.I),
                bs.log(True)[-1500:])
        t.check("%s: Postfix recorded 'from %s'" % (name, want), rcv.startswith("from %s (" % want), rcv)
        t.check("%s: not taken for 'no HELO', not backstop's name" % name,
                not rcv.startswith("from unknown") and BACKSTOP_HOSTNAME not in rcv.split(" by ")[0], rcv)
    # an ordinary name is passed as it is, and a client without HELO is unavailable
    bs.mark()
    g, rcv = deliver(bs, pf, "EHLO", CLIENT_HELO, "xclient ordinary")
    t.check("ordinary name: Postfix recorded 'from %s'" % CLIENT_HELO, rcv.startswith("from %s (" % CLIENT_HELO), rcv)
    bs.mark()
    g, rcv = deliver(bs, pf, None, None, "xclient no helo")
    t.check("no HELO: XCLIENT HELO=[UNAVAILABLE]",
            bs.wait_log(r"<- XCLIENT .*HELO=\[UNAVAILABLE\] ", 2), bs.log(True)[-1500:])
    bs.stop()
    # with the default reject_invalid = yes the tokens never get that far
    bs = t.backstop({"backend": {"address": pf.address}})
    c = bs.client()
    t.check_reply("reject_invalid = yes: HELO [UNAVAILABLE] gets 501 5.5.2", c.cmd("HELO [UNAVAILABLE]"), 501, "5.5.2")
    c.cmd("QUIT")
    bs.stop()

def held_attrs(pf, rs):
    """The named attributes of the held message that reply rs[-1] queued
    (postcat -q): XFORWARD values live only there and in the log."""
    m = re.search(r"queued as (\w+)", rs[-1].text) if rs and rs[-1].code == 250 else None
    if not m:
        return {}
    r = subprocess.run(["postcat", "-c", os.path.join(pf.T, "conf"), "-q", m.group(1)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    return dict(re.findall(r"named_attribute: (\w+)=(.*)", r.stdout.decode(errors="replace")))


def xforward_session(bs, verb, name, subject):
    c = bs.client()
    if verb:
        c.cmd("%s %s" % (verb, name))
    rs = c.mail_transaction("sender@example.org", ["user@test.example"], make_message(subject))
    c.cmd("QUIT")
    return rs


with t.case("XFORWARD: the same value, and [UNAVAILABLE] (not an empty HELO=) without HELO"):
    # XFORWARD only, and every message held so that postcat shows what
    # Postfix recorded from XFORWARD (log_helo_name)
    pf = t.postfix(extra_main="smtpd_authorized_xclient_hosts =\n"
                   "smtpd_authorized_xforward_hosts = 127.0.0.0/8\n"
                   "smtpd_recipient_restrictions = check_recipient_access static:HOLD, permit\n")
    bs = t.backstop({"backend": {"address": pf.address}, "helo": {"reject_invalid": "no"}})
    for verb, name, want in RESERVED[:2] + [("EHLO", CLIENT_HELO, CLIENT_HELO)]:
        bs.mark()
        rs = xforward_session(bs, verb, name, "xforward %s" % name)
        t.check_reply("%s: accepted" % name, rs[-1], 250)
        t.check("%s: XFORWARD HELO=%s" % (name, want),
                bs.wait_log(r"<- XFORWARD .*HELO=%s " % re.escape(want), 2), bs.log(True)[-1500:])
        a = held_attrs(pf, rs)
        t.check("%s: Postfix recorded log_helo_name=%s" % (name, want), a.get("log_helo_name") == want, a)
    bs.mark()
    rs = xforward_session(bs, None, None, "xforward no helo")
    t.check_reply("no HELO: accepted (Postfix refuses an empty HELO= with 501 5.5.4)", rs[-1], 250)
    t.check("no HELO: XFORWARD HELO=[UNAVAILABLE], as XCLIENT says it",
            bs.wait_log(r"<- XFORWARD .*HELO=\[UNAVAILABLE\] ", 2), bs.log(True)[-1500:])
    t.check("no HELO: never an empty HELO=", not re.search(r"<- XFORWARD .*HELO= ", bs.log(True)),
            bs.log(True)[-1500:])
    a = held_attrs(pf, rs)
    t.check("no HELO: Postfix recorded the forwarded client with no HELO name",
            a.get("log_client_address") == "127.0.0.1" and "log_helo_name" not in a, a)
    bs.stop()

t.done()

#!/usr/bin/python3
"""batv_outbound: BATV signing on the [outbound] listener, with real Postfix
instances as the internal MTA (issue 5). This test is the tested Postfix
snippet of README.md ("BATV" section): RELAYHOST_* and LOOPBACK_* below are
what that README shows; keep the two in step.

1. relayhost: one Postfix is both the inbound backend (its smtpd behind
   backstop's [server] listener) and the internal MTA, whose outgoing mail
   goes to backstop's [outbound] listener with `relayhost`; smtp-sink is
   the next hop ([outbound] relay). Checked: the message reaches the sink
   with a prvs= sender that `backstop batv verify` accepts; a sign_exempt
   recipient gets an untagged sender; a message to an exempt and a
   non-exempt recipient is split in two transactions (452 4.5.3 defers the
   second recipient until Postfix's next queue run, forced here with
   postqueue -f); an already tagged sender is not tagged
   twice; the null sender and senders outside [batv] domains are never
   tagged; a client outside [outbound] allow (a network namespace) is
   refused with 5.7.1; then the round trip: a bounce to the signed sender
   through the inbound listener is accepted and Postfix delivers it to the
   stripped address.
2. loop-back: a Postfix without a smarthost hands mail it originates
   (sendmail/pickup, and an smtpd port standing in for submission) to
   backstop with content_filter, and takes it back tagged on a reinjection
   smtpd, from where it is delivered normally (here: to smtp-sink)."""
import os
import re
import subprocess
import time
from harness import *

t = Test("batv_outbound", need=("postfix", "smtp-sink", "sendmail"), watchdog=120)

SECRETS = {0: "out-zero-secret-0123", 1: "out-one-secret-4567", 2: "out-two-secret-89ab"}
kdir = t.tmpdir("keys")
KEYS = os.path.join(kdir, "batv.keys")
with open(KEYS, "w") as f:
    for k, s in sorted(SECRETS.items()):
        f.write("%d %s\n" % (k, s))
os.chmod(KEYS, 0o600)
BATV = {"mode": "enforce", "domains": "test.example", "keys_file": KEYS, "sign_key": "2",
        "sign_exempt": "lists.example.net .greylist.example"}

# ---------------------------------------------------------------- the Postfix snippets
# relayhost form: main.cf only (PORT = backstop's [outbound] listen port).
# default_transport is smtp in a real main.cf; the harness sets it to error.
RELAYHOST_MAIN_CF = """\
relayhost = [127.0.0.1]:{PORT}
"""

# loop-back form: master.cf lines. {SUBMIT} stands in for the submission
# service (without TLS and SASL, which the test does not set up), {PORT}
# for backstop's [outbound] listen port, {REINJECT} for [outbound] relay.
LOOPBACK_MASTER_CF = """\
127.0.0.1:{SUBMIT} inet n - n - - smtpd
    -o syslog_name=postfix/submission
    -o content_filter=batvsign:[127.0.0.1]:{PORT}
pickup    unix  n       -       n       60      1       pickup
    -o content_filter=batvsign:[127.0.0.1]:{PORT}

# the path to backstop's [outbound] listener
batvsign  unix  -       -       n       -       10      smtp
    -o syslog_name=postfix/batvsign
    -o smtp_send_xforward_command=no

# backstop's [outbound] relay: mail comes back here, tagged, and is
# delivered like any other (no content_filter: no loop)
127.0.0.1:{REINJECT} inet n  -       n       -       -       smtpd
    -o syslog_name=postfix/batv-reinject
    -o content_filter=
    -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
    -o smtpd_helo_restrictions=
    -o smtpd_client_restrictions=
    -o smtpd_sender_restrictions=
    -o smtpd_recipient_restrictions=permit_mynetworks,reject
    -o smtpd_relay_restrictions=permit_mynetworks,reject
    -o mynetworks=127.0.0.0/8
"""


class InternalPostfix(Postfix):
    """The harness Postfix plus an smtp client service (the harness's
    master.cf has none), outgoing mail enabled, and extra master.cf lines.
    Later main.cf entries override the harness's."""

    def __init__(self, root, extra_master="", pickup_override=False, **kw):
        super().__init__(root, **kw)
        self.extra_master = extra_master
        self.pickup_override = pickup_override

    def _write(self):
        super()._write()
        path = os.path.join(self.T, "conf", "master.cf")
        with open(path) as f:
            text = f.read()
        if self.pickup_override:
            text = re.sub(r"^pickup .*\n", "", text, flags=re.M)
        text += "smtp unix - - n - - smtp\n" + self.extra_master
        with open(path, "w") as f:
            f.write(text)


def internal_postfix(name, extra_main, extra_master="", pickup_override=False):
    p = InternalPostfix(t.tmpdir(name), extra_main=extra_main, extra_master=extra_master,
                        pickup_override=pickup_override)
    t.defer(p.stop)
    p.start()
    return p


def env_of(dump):
    """(sender, [recipients]) of an smtp-sink dump."""
    text = dump.decode("utf-8", "replace")
    m = re.search(r"^X-Mail-Args: <([^>]*)>", text, re.M)
    return (m.group(1) if m else None), re.findall(r"^X-Rcpt-Args: <([^>]*)>", text, re.M)


def verify(conf, addr):
    r = subprocess.run([t.bin, "-c", conf, "batv", "verify", addr], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    return r.returncode, r.stdout.decode().strip()


def wait_sink(sink, subject, timeout=30.0):
    return sink.with_subject(subject, timeout)


def inject(pf, mail_from, rcpts, subject):
    """Submit a message to the internal Postfix over SMTP; True if queued."""
    # 30 s: the internal Postfix's first smtpd may take seconds to start
    # while another test runs beside this one (make check -j2, ASan)
    c = SmtpClient(pf.host, pf.port, 30)
    t.defer(c.close)
    try:
        c.greeting()
    except (OSError, Closed):
        # what the internal Postfix was doing: its log and its processes
        log("# no greeting from %s; its maillog ends:\n%s" % (pf.address, pf.log()[-4000:]))
        log(subprocess.run(["ps", "-eo", "pid,ppid,stat,etime,args"], stdout=subprocess.PIPE,
                           timeout=10).stdout.decode(errors="replace"))
        raise
    c.ehlo()
    rs = c.mail_transaction(mail_from, rcpts, make_message(subject, mail_from=mail_from or "MAILER-DAEMON@x",
                                                           to=rcpts[0]))
    c.cmd("QUIT")
    return rs[-1].code == 250, rs


TAG_RX = r"prvs=2\d{3}[0-9a-f]{6}=user@test\.example"

# ---------------------------------------------------------------- 1. relayhost
ns = t.netns()
sink = t.sink()
OUT_PORT = free_port()
mta = internal_postfix("mta", RELAYHOST_MAIN_CF.format(PORT=OUT_PORT) +
                       "myhostname = mta.test.example\ndefault_transport = smtp\n")
# the internal Postfix spawns its smtpd on demand: on a loaded machine (the
# suite runs two tests at once) that can take longer than the harness's 5 s
bs = t.backstop({"backend": {"address": mta.address, "command_timeout": "20s",
                             "connect_timeout": "20s"},
                 "batv": dict(BATV),
                 "outbound": {"listen": "127.0.0.1:%d %s:%d" % (OUT_PORT, ns.host_addr, OUT_PORT),
                              "relay": sink.address, "allow": "127.0.0.0/8"}})
if not (wait_port("127.0.0.1", OUT_PORT, 5) and wait_port(ns.host_addr, OUT_PORT, 5)):
    bs.dump_log()
    raise SystemExit("outbound listener not up")

signed = None
with t.case("relayhost: outgoing mail reaches the next hop with a prvs sender"):
    mta.mark()
    bs.mark()
    ok, rs = inject(mta, "user@test.example", ["someone@remote.example"], "out signed")
    t.check("internal Postfix queued it", ok, rs)
    d = wait_sink(sink, "out signed")
    t.check("the next hop got it", len(d) == 1, sink.messages())
    sender, rcpts = env_of(d[0]) if d else (None, [])
    t.check("envelope sender is prvs= with sign_key 2", sender and re.fullmatch(TAG_RX, sender), sender)
    t.check("recipient unchanged", rcpts == ["someone@remote.example"], rcpts)
    rc, out = verify(bs.conf, sender or "")
    t.check("backstop batv verify accepts the sender", rc == 0 and out == "valid user@test.example", (rc, out))
    t.check("the header From: is untouched", d and b"From: <user@test.example>" in d[0], d and d[0][:600])
    t.check("Postfix logged the relay through backstop",
            mta.wait_log(r"smtp\[\d+\]: \w+: to=<someone@remote\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d.*"
                         r"status=sent" % OUT_PORT), mta.log(True))
    t.check("backstop's summary says batv=signed", bs.wait_log(r"batv=signed"), bs.log(True)[-2000:])
    signed = sender

with t.case("relayhost: sign_exempt recipients get an untagged sender"):
    for rcpt, subj in (("members@lists.example.net", "out exempt domain"),
                       ("peer@mx.greylist.example", "out exempt subdomain")):
        ok, rs = inject(mta, "user@test.example", [rcpt], subj)
        t.check("%s: queued" % rcpt, ok, rs)
        d = wait_sink(sink, subj)
        sender, rcpts = env_of(d[0]) if d else (None, [])
        t.check("%s: sender untagged" % rcpt, sender == "user@test.example", sender)

with t.case("relayhost: exempt and non-exempt recipients are split in two transactions"):
    mta.mark()
    ok, rs = inject(mta, "user@test.example", ["someone@remote.example", "members@lists.example.net"], "out mixed")
    t.check("queued", ok, rs)
    # Postfix sends the recipients sorted: the exempt one decides the first
    # transaction, the other gets 452 4.5.3 and is deferred
    t.check("Postfix: one recipient deferred with backstop's 452 4.5.3",
            mta.wait_log(r"smtp\[\d+\]: \w+: to=<someone@remote\.example>, .*dsn=4\.5\.3, status=deferred "
                         r".*452 4\.5\.3 send mail to <someone@remote\.example> in a separate transaction", 10),
            mta.log(True))
    d = wait_sink(sink, "out mixed")
    t.check("the first transaction arrived, untagged, to the exempt recipient",
            [env_of(x) for x in d] == [("user@test.example", ["members@lists.example.net"])],
            [env_of(x) for x in d])
    # the deferred recipient goes at the next queue run; flush instead of
    # waiting minimal_backoff_time
    subprocess.run(["postqueue", "-c", os.path.join(mta.T, "conf"), "-f"], timeout=10,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = poll(lambda: len(wait_sink(sink, "out mixed", 0.1)) >= 2 and wait_sink(sink, "out mixed", 0.1), 10) or []
    envs = [env_of(x) for x in d]
    t.check("after a queue run: two transactions in all", len(envs) == 2, envs)
    tagged = [e for e in envs if e[1] == ["someone@remote.example"]]
    t.check("the second to someone@remote.example, tagged",
            len(tagged) == 1 and re.fullmatch(TAG_RX, tagged[0][0] or ""), envs)

with t.case("relayhost: tagged, null and foreign senders are not tagged"):
    pretagged = subprocess.run([t.bin, "-c", bs.conf, "batv", "sign", "user2@test.example"],
                               stdout=subprocess.PIPE, timeout=10).stdout.decode().strip()
    for frm, subj, want in ((pretagged, "out pretagged", pretagged),
                            ("", "out null", ""),
                            ("someone@elsewhere.example", "out foreign", "someone@elsewhere.example")):
        ok, rs = inject(mta, frm, ["someone@remote.example"], subj)
        t.check("%s: queued" % subj, ok, rs)
        d = wait_sink(sink, subj)
        sender, _ = env_of(d[0]) if d else (None, [])
        t.check("%s: sender arrives as <%s>" % (subj, want), sender == want, sender)
    t.check("a pretagged sender carries one tag", pretagged.count("prvs=") == 1, pretagged)

with t.case("outbound: a client outside [outbound] allow is refused 5.7.1"):
    n0 = len(sink.files())
    c = ns.client(ns.host_addr, OUT_PORT)
    t.defer(c.close)
    t.check_reply("greeted (the refusal comes at MAIL, as Postfix's smtpd_delay_reject)", c.try_reply(5), 220)
    c.ehlo()
    r = c.cmd("MAIL FROM:<user@test.example>")
    t.check_reply("MAIL refused with 550 5.7.1", r, 550, "5.7.1")
    t.check("the reply says relay access denied", r is not None and "relay access denied" in r.text, r)
    t.check_reply("RCPT refused too", c.cmd("RCPT TO:<someone@remote.example>"), 550, "5.7.1")
    t.check_reply("DATA refused too", c.cmd("DATA"), 550, "5.7.1")
    t.check_reply("QUIT 221", c.cmd("QUIT"), 221)
    t.check("the next hop got nothing", len(sink.files()) == n0, sink.files())
    t.check("backstop logged the refusal", bs.wait_log(r"outbound: refused client %s" % re.escape(ns.addr)),
            bs.log(True)[-2000:])

with t.case("round trip: the bounce to the signed sender reaches the backend, stripped"):
    mta.clear_mail()
    mta.mark()
    c = bs.client()
    c.ehlo()
    rs = c.mail_transaction("", [signed or "missing@test.example"],
                            make_message("round trip bounce", mail_from="MAILER-DAEMON@remote.example",
                                         to=signed or ""))
    t.check("bounce accepted", [r.code for r in rs] == [250, 250, 354, 250], rs)
    c.cmd("QUIT")
    msgs = mta.wait_for_mail(1)
    m = msgs[0] if msgs else None
    t.check("Postfix delivered it to user", m is not None and m.mailbox == "user", msgs)
    t.check("X-Original-To is the stripped address",
            m is not None and m.headers("X-Original-To") == ["user@test.example"], m and m.headers("X-Original-To"))
    t.check("maillog: to=<user@test.example>, no orig_to",
            mta.wait_log(r"virtual\[\d+\]: \w+: to=<user@test\.example>, relay=virtual")
            and "orig_to=" not in mta.log(True), mta.log(True))
    c = bs.client()
    c.ehlo()
    rs = c.mail_transaction("", ["user@test.example"], make_message("round trip forged"))
    t.check_reply("the same bounce untagged: 550 5.7.1", rs[-1], 550, "5.7.1")
    c.cmd("QUIT")

# ---------------------------------------------------------------- 2. loop-back
with t.case("loop-back: originated mail goes through backstop and comes back tagged"):
    sink2 = t.sink()
    out2, submit, reinject = free_port(), free_port(), free_port()
    lb = internal_postfix("loopback",
                          "myhostname = lb.test.example\ndefault_transport = smtp\n"
                          # "delivered normally": here, to the sink
                          "relayhost = [127.0.0.1]:%d\n" % sink2.port,
                          LOOPBACK_MASTER_CF.format(SUBMIT=submit, PORT=out2, REINJECT=reinject),
                          pickup_override=True)
    bs2 = t.backstop({"backend": {"address": lb.address}, "batv": dict(BATV),
                      "outbound": {"listen": "127.0.0.1:%d" % out2, "relay": "127.0.0.1:%d" % reinject}})
    t.check("outbound listener up", wait_port("127.0.0.1", out2, 5))
    t.check("loop-back Postfix's submission and reinjection ports up",
            wait_port("127.0.0.1", submit, 15) and wait_port("127.0.0.1", reinject, 15), lb.log())
    # local sendmail -> postdrop -> pickup (content_filter) -> backstop
    msg = make_message("lb sendmail", mail_from="user@test.example", to="someone@remote.example")
    r = subprocess.run(["sendmail", "-C", os.path.join(lb.T, "conf"), "-f", "user@test.example", "-i",
                        "someone@remote.example"], input=msg, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    t.check("sendmail exits 0", r.returncode == 0, r.stdout)
    # postdrop wakes pickup through a FIFO; on a loaded machine pickup may
    # not be listening yet and would only look again after 60 s: kick it
    d = []
    for _ in range(10):
        d = wait_sink(sink2, "lb sendmail", 2)
        if d:
            break
        # postkick blocks while pickup's FIFO has no reader yet (a busy
        # machine): that is a reason to try again, not a failure
        for cmd in (["postkick", "-c", os.path.join(lb.T, "conf"), "public", "pickup", "W"],
                    ["postqueue", "-c", os.path.join(lb.T, "conf"), "-f"]):
            try:
                subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
            except subprocess.TimeoutExpired:
                log("# %s timed out; trying again" % cmd[0])
    sender, rcpts = env_of(d[0]) if d else (None, [])
    t.check("sendmail: the final hop got a prvs sender", sender and re.fullmatch(TAG_RX, sender), (sender, lb.log()))
    t.check("sendmail: it passed batvsign and batv-reinject",
            lb.wait_log(r"postfix/batvsign/smtp\[\d+\]: .*relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d.*status=sent" % out2)
            and lb.wait_log(r"postfix/batv-reinject/smtpd\[\d+\]"), lb.log(True))
    # the submission stand-in
    c = SmtpClient("127.0.0.1", submit, 5)
    t.defer(c.close)
    try:
        c.greeting()
    except (OSError, Closed):
        # what the internal Postfix was doing: its log and its processes
        log("# no greeting from %s; its maillog ends:\n%s" % (pf.address, pf.log()[-4000:]))
        log(subprocess.run(["ps", "-eo", "pid,ppid,stat,etime,args"], stdout=subprocess.PIPE,
                           timeout=10).stdout.decode(errors="replace"))
        raise
    c.ehlo()
    rs = c.mail_transaction("user@test.example", ["someone@remote.example"], make_message("lb submission"))
    c.cmd("QUIT")
    t.check_reply("submission: queued", rs[-1], 250)
    d = wait_sink(sink2, "lb submission", 15)
    sender, _ = env_of(d[0]) if d else (None, [])
    t.check("submission: the final hop got a prvs sender", sender and re.fullmatch(TAG_RX, sender), sender)
    rc, out = verify(bs2.conf, sender or "")
    t.check("submission: backstop batv verify accepts it", rc == 0, (rc, out))
    t.check("no mail loops: each message passed backstop once",
            len(re.findall(r"batv=signed", bs2.log())) == 2, bs2.log()[-3000:])
    bs2.stop()

bs.stop()
t.done()

#!/usr/bin/python3
"""hostile_streams: byte streams that stress the session's and the backend
client's state machines.

 - A backend that sends every reply one byte per TCP segment: the replies
   are reassembled, the message is accepted (250) and the client's replies
   are intact.
 - A backend that puts garbage in the middle of a multi-line reply (to
   EHLO, to RCPT, to the final dot): the client gets 4xx for what depended
   on it, never 250 (invariant 1), and backstop keeps running.
 - A client that sends its commands and content one byte per segment:
   the message reaches a real Postfix intact.
 - Slowloris clients that trickle a command one byte at a time: another
   session's whole transaction through a real Postfix stays fast, and the
   slow sessions are cut by session_timeout (bounded time per session).
"""
import socket
import threading
from harness import *

t = Test("hostile_streams", need=("postfix",))


class ScriptedBackend(ThreadedServer):
    """SMTP server on a free loopback port. replies maps a command word
    (EHLO, MAIL, RCPT, DATA, DOT, GREETING) to the bytes sent for it;
    bytewise sends each byte in its own segment."""

    DEFAULT = {"GREETING": b"220 scripted ESMTP\r\n",
               "EHLO": b"250-scripted\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n",
               "MAIL": b"250 2.1.0 Ok\r\n", "RCPT": b"250 2.1.5 Ok\r\n", "DATA": b"354 go ahead\r\n",
               "DOT": b"250 2.0.0 Ok: queued as SCRIPTED\r\n", "RSET": b"250 2.0.0 Ok\r\n",
               "QUIT": b"221 2.0.0 Bye\r\n", "OTHER": b"250 Ok\r\n"}

    def __init__(self, bytewise=False, **replies):
        self.replies = dict(self.DEFAULT, **replies)
        self.bytewise = bytewise
        self.dots = 0
        ThreadedServer.__init__(self, t)


    def say(self, c, what):
        data = self.replies[what]
        if not self.bytewise:
            return c.sendall(data)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            c.sendall(data[i:i + 1])
            time.sleep(0.001)

    def session(self, c):
        try:
            f = c.makefile("rb")
            self.say(c, "GREETING")
            data = False
            while True:
                line = f.readline()
                if not line:
                    return
                if data:
                    if line == b".\r\n":
                        data = False
                        self.dots += 1
                        self.say(c, "DOT")
                    continue
                word = line.split(b" ", 1)[0].split(b":", 1)[0].strip().upper().decode("latin-1")
                self.say(c, word if word in self.replies else "OTHER")
                if word == "DATA":
                    data = True
                if word == "QUIT":
                    return c.close()
        except OSError:
            return


def transaction(bs, name):
    """EHLO..dot, one command at a time; the replies (None once closed)."""
    c = bs.client()
    out = {"EHLO": c.ehlo()}
    for word, line in (("MAIL", "MAIL FROM:<sender@example.org>"), ("RCPT", "RCPT TO:<user@test.example>"),
                       ("DATA", "DATA")):
        out[word] = c.cmd(line) if not c.eof else None
        if out[word].code // 100 not in (2, 3):
            return out
    c.send(dot_stuff(make_message(name)) + b".\r\n")
    out["DOT"] = c.try_reply(15)
    return out


with t.case("backend replies split at every byte"):
    be = ScriptedBackend(bytewise=True)
    bs = t.backstop({"backend": {"address": be.address, "xclient": "off"}})
    r = transaction(bs, "bytewise")
    log("# %s" % r)
    t.check_reply("bytewise: RCPT 250 with the backend's text", r.get("RCPT"), 250, "2.1.5")
    t.check_reply("bytewise: end of data 250", r.get("DOT"), 250, "2.0.0")
    t.check("bytewise: the backend's queue id reaches the client",
            r.get("DOT") is not None and "SCRIPTED" in r["DOT"].text, r.get("DOT"))
    t.check("bytewise: no protocol error logged", not re.search(r"garbage|sent .* bytes more", bs.log()),
            bs.log()[-2000:])
    bs.stop()

GARBAGE = [
    ("garbage in the EHLO reply", "EHLO", b"250-scripted\r\nPIPELINING\r\n250 8BITMIME\r\n", "MAIL"),
    ("garbage in the RCPT reply", "RCPT", b"250-2.1.5 Ok\r\n\x00\xff\x01 junk\r\n250 2.1.5 Ok\r\n", "RCPT"),
    ("garbage in the reply to the dot", "DOT", b"250-2.0.0 Ok\r\n25O oops\r\n250 2.0.0 Ok: queued\r\n", "DOT"),
    ("mixed codes in the reply to the dot", "DOT", b"250-2.0.0 Ok\r\n550 5.0.0 no\r\n", "DOT"),
]

for name, where, reply, hit in GARBAGE:
    with t.case(name):
        be = ScriptedBackend(**{where: reply})
        bs = t.backstop({"backend": {"address": be.address, "xclient": "off"}})
        r = transaction(bs, name)
        log("# %s" % r)
        got = r.get(hit)
        t.check("%s: %s gets 4xx (451/421), never 250" % (name, hit),
                got is not None and got.code in (421, 451), r)
        t.check("%s: no 250 to the end of data" % name, r.get("DOT") is None or r["DOT"].code != 250, r)
        t.check("%s: logged as a backend protocol error" % name,
                bs.wait_log(r"backend sent garbage|backend .*(protocol|malformed|sent .* bytes more)", 3),
                bs.log(True)[-2000:])
        t.check("%s: backstop still serves (new session greets)" % name, bs.client().greeting_reply.code == 220)
        bs.stop()

pf = t.postfix()

with t.case("client commands and content split at every byte"):
    pf.mark()
    bs = t.backstop({"backend": {"address": pf.address}})
    c = bs.client()
    msg = make_message("bytewise client", body="line one\n.leading dot\nlast\n")
    script = (b"EHLO client.example.org\r\nMAIL FROM:<sender@example.org>\r\n"
              b"RCPT TO:<user@test.example>\r\nDATA\r\n")
    c.send_bytewise(script)
    codes = [r.code for r in c.replies(4)]
    t.check("bytewise client: EHLO, MAIL, RCPT, DATA answered 250 250 250 354", codes == [250, 250, 250, 354],
            codes)
    c.send_bytewise(dot_stuff(msg) + b".\r\n")
    t.check_reply("bytewise client: end of data 250", c.reply(10), 250)
    msgs = pf.wait_for_mail(1, 10)
    t.check("bytewise client: delivered with its content intact (dot-stuffing undone once)",
            len(msgs) == 1 and b"\n.leading dot\n" in msgs[0].raw and b"\nlast\n" in msgs[0].raw,
            msgs[0].raw[-200:] if msgs else msgs)
    bs.stop()
    pf.clear_mail()

with t.case("slowloris clients in the command phase, another session's latency"):
    SESSION_TIMEOUT = 6
    bs = t.backstop({"backend": {"address": pf.address},
                     "limits": {"session_timeout": "%ds" % SESSION_TIMEOUT, "command_timeout": "3s"}})
    ends = {}

    def slowloris(i):
        c = bs.client(timeout=SESSION_TIMEOUT + 5)
        t0 = time.monotonic()
        c.send(b"EHLO ")
        line = b"x" * 200
        try:
            for k in range(len(line)):
                c.send(line[k:k + 1])
                time.sleep(0.5)   # well inside command_timeout: the idle timer never fires
                if c.closed_within(0.01):
                    break
        except OSError:
            pass
        ends[i] = (time.monotonic() - t0, c.buf)

    slow = [threading.Thread(target=slowloris, args=(i,), daemon=True) for i in range(5)]
    for th in slow:
        th.start()
    time.sleep(1.0)
    lat = []
    for k in range(5):
        t0 = time.monotonic()
        c = bs.client()
        c.ehlo()
        codes = [x.code for x in c.mail_transaction("sender@example.org", ["user@test.example"],
                                                    make_message("latency %d" % k))]
        c.cmd("QUIT")
        lat.append(time.monotonic() - t0)
        t.check("slowloris: a normal transaction #%d is accepted" % k, codes[-1:] == [250], codes)
        time.sleep(0.3)
    log("# latencies %s" % ["%.3f" % x for x in lat])
    t.check("slowloris: each normal transaction took under 1s (max %.3fs)" % max(lat), max(lat) < 1.0, lat)
    for th in slow:
        th.join(SESSION_TIMEOUT + 10)
    log("# slowloris ends %s" % ends)
    t.check("slowloris: every slow session was cut within session_timeout + 2s",
            len(ends) == 5 and all(d < SESSION_TIMEOUT + 2 for d, _ in ends.values()), ends)
    t.check("slowloris: with a 421 4.4.2 timeout reply",
            len(ends) == 5 and all(b"421 4.4.2" in b for _, b in ends.values()), ends)
    t.check("slowloris: delivered the normal messages", len(pf.wait_for_mail(5, 10)) == 5)
    bs.stop()

t.done()

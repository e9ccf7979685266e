#!/usr/bin/python3
"""hostile_peers: regressions for a client that never reads its replies
(memory stays bounded), a backend that answers more than it was asked (a
stale 250 must never accept the next message), a backend that stalls in the
middle of DATA (the client gets 4xx, the session does not hang), and a
legitimate message with a very large header section (accepted)."""
import socket
import threading
from harness import *

t = Test("hostile_peers", need=("smtp-sink",))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class FakeBackend(ThreadedServer):
    """A scripted SMTP server on a free loopback port: after the dot it
    answers `after_dot` (bytes); with stall, it stops reading in DATA."""

    def __init__(self, after_dot=b"250 2.0.0 queued\r\n", stall=False):
        self.after_dot, self.stall = after_dot, stall
        ThreadedServer.__init__(self, t, backlog=8, rcvbuf=4096)


    def session(self, c):
        try:
            f = c.makefile("rb")
            c.sendall(b"220 fake ESMTP\r\n")
            data = False
            while True:
                line = f.readline()
                if not line:
                    return
                if data:
                    if line == b".\r\n":
                        data = False
                        c.sendall(self.after_dot)
                    continue
                u = line.strip().upper()
                if u.startswith(b"EHLO"):
                    c.sendall(b"250-fake\r\n250 PIPELINING\r\n")
                elif u == b"DATA":
                    c.sendall(b"354 go\r\n")
                    data = True
                    if self.stall:
                        time.sleep(30)
                        return
                elif u == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"250 2.0.0 ok\r\n")
        except OSError:
            return


with t.case("a client that never reads its replies"):
    sink = t.sink()
    # junk_command_limit off: thousands of NOOPs are the load here
    bs = t.backstop({"backend": {"address": sink.address}, "limits": {"junk_command_limit": "0"}})
    base = rss_kb(bs.proc.pid)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((bs.host, bs.port))
    s.settimeout(0.5)
    t0, sent, chunk = time.monotonic(), 0, b"NOOP\r\n" * 2000
    send_error = None
    while time.monotonic() - t0 < 4:
        try:
            sent += s.send(chunk)
        except socket.timeout:
            pass          # backstop stopped reading: what we want
        except OSError as e:
            send_error = e  # reset or broken pipe: backstop dropped us
            break
    rss = rss_kb(bs.proc.pid)
    log("# sent %d bytes of NOOPs without reading; backstop RSS %d kB (%d kB before)" % (sent, rss, base))
    t.check("the connection stays up while the client does not read", send_error is None, send_error)
    t.check("backstop stops reading (sent less than 8 MB in 4 s)", sent < 8 << 20, sent)
    t.check("backstop's memory stays bounded (RSS grew < 16 MB)", rss - base < 16 * 1024, (base, rss))
    # Now read: every NOOP is answered, in order, then the commands after
    # them (the session is in sync), then QUIT closes.
    got = []

    def reader():
        buf = b""
        s.settimeout(20)
        try:
            while True:
                d = s.recv(1 << 16)
                if not d:
                    break
                buf += d
        except OSError as e:
            got.append(e)
        got.append(buf)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    t1 = time.monotonic()
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    s.settimeout(20)
    rest = b"NOOP\r\n"[sent % 6:] if sent % 6 else b""   # finish a partly sent NOOP
    try:
        s.sendall(rest + b"MAIL FROM:<sync@example.org>\r\nQUIT\r\n")
    except OSError as e:
        got.append(e)
    th.join(60)
    log("# read the replies in %.1fs" % (time.monotonic() - t1))
    out = got[-1] if got and isinstance(got[-1], bytes) else b""
    noops = (sent + 5) // 6
    want = b"220 " + BACKSTOP_HOSTNAME.encode()
    lines = out.split(b"\r\n")
    t.check("no error while reading the replies", not th.is_alive() and len(got) == 1, got[:-1])
    t.check("greeting first", lines[0].startswith(want), lines[:1])
    t.check("all %d NOOPs answered 250 2.0.0, in order" % noops,
            lines[1:1 + noops] == [b"250 2.0.0 Ok"] * noops and len(lines) >= noops + 3,
            (len(lines), [l for l in lines[1:1 + noops] if l != b"250 2.0.0 Ok"][:3]))
    t.check("then MAIL 250 2.1.0 and QUIT 221, and the end",
            [l[:9] for l in lines[1 + noops:]] == [b"250 2.1.0", b"221 2.0.0", b""],
            lines[1 + noops:])
    s.close()
    bs.stop()

with t.case("a backend that answers more than it was asked"):
    be = FakeBackend(after_dot=b"250 2.0.0 queued\r\n250 2.0.0 STALE\r\n")
    bs = t.backstop({"backend": {"address": "127.0.0.1:%d" % be.port, "xclient": "off"}})
    c = bs.client()
    c.ehlo()
    r1 = c.mail_transaction("a@example.org", ["b@example.org"], make_message("one"))[-1]
    r2 = c.mail_transaction("a@example.org", ["b@example.org"], make_message("two"))
    t.check_reply("first message: 4xx (the backend is confused)", r1, 4, "")
    t.check("second message never gets the stale 250", not any(r.code == 250 and "STALE" in r.text for r in r2),
            r2)
    t.check_reply("second message: also 4xx (the backend adds its stale line again)", r2[-1], 4, "")
    t.check_reply("the session still answers: NOOP 250", c.cmd("NOOP"), 250, "2.0.0")
    t.check("logged", bs.wait_log(r"sent \d+ bytes more than the reply to our command", 2), bs.log()[-1500:])
    c.close()
    bs.stop()

with t.case("a backend that stalls in the middle of DATA"):
    be = FakeBackend(stall=True)
    bs = t.backstop({"backend": {"address": "127.0.0.1:%d" % be.port, "xclient": "off",
                                 "data_timeout": "2s"},
                     "limits": {"data_buffer": "16k"}})
    c = bs.client(timeout=15)
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.org>")
    t.check_reply("DATA 354", c.cmd("DATA"), 354)
    body = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 2000 + b".\r\n"
    t0 = time.monotonic()
    sender = threading.Thread(target=lambda: c.sock.sendall(body), daemon=True)
    sender.start()
    r = c.try_reply(12)
    dt = time.monotonic() - t0
    t.check_reply("the client gets 4xx", r, 4, "")
    t.check("within the backend's data_timeout, not the session's (%.1fs)" % dt, dt < 8, dt)
    log("# after the stall: %s" % r)
    if r is not None and r.code == 421:
        t.check("421: then the connection closes", c.closed_within(3))
    else:
        # 451: the session goes on; the rest of the body (still being
        # sent) is read and dropped up to its dot, and the next command
        # is answered
        sender.join(10)
        t.check("the client's whole body was taken", not sender.is_alive())
        t.check_reply("the session still answers: NOOP 250", c.cmd("NOOP", timeout=10), 250, "2.0.0")
    c.close()
    bs.stop()

with t.case("a legitimate message with a 140 KB header section"):
    sink = t.sink()
    bs = t.backstop({"backend": {"address": sink.address}})
    pad = "".join("X-Pad-%d: %s\r\n" % (i, "p" * 80) for i in range(620))
    to = "To: a@example.org" + "".join(",\r\n b%d@example.org" % i for i in range(4000))
    msg = (pad + to + "\r\nSubject: big header\r\n\r\nbody\r\n").encode()
    c = bs.client()
    c.ehlo()
    rs = c.mail_transaction("a@example.org", ["b@example.org"], msg)
    t.check_reply("accepted", rs[-1], 250)
    dumps = sink.wait_for(1)
    t.check("the backend got the whole header section",
            len(dumps) == 1 and b"b3999@example.org" in dumps[0] and b"X-Pad-619:" in dumps[0],
            len(dumps))
    t.check_reply("QUIT 221", c.cmd("QUIT"), 221)
    bs.stop()

t.done()

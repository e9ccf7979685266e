#!/usr/bin/python3
"""backend_reset: the backend dies while the message content streams to it
(RST via SO_LINGER 0, or a plain close), or resets right after the final
dot before answering. The client must get 451 or 421 for that message,
never 250 (invariant 1), and backstop must keep serving: the next message
through a well-behaved backend is accepted with 250 (so the checks can
fail). The misbehaving backend is a small scripted server (a real MTA does
not reset on demand)."""
import socket
import struct
import threading
from harness import *

t = Test("backend_reset")


class ScriptedBackend(ThreadedServer):
    """SMTP server on a free loopback port. mode:
      ok         answer everything, 250 after the dot
      rst_body   RST after receiving `after` bytes of content
      fin_body   close (FIN) after receiving `after` bytes of content
      rst_dot    RST right after reading the final dot, no reply"""

    def __init__(self, mode="ok", after=8192):
        self.mode, self.after = mode, after
        self.content = 0
        self.dots = 0
        ThreadedServer.__init__(self, t)


    def reset(self, c):
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()

    def session(self, c):
        try:
            f = c.makefile("rb")
            c.sendall(b"220 scripted ESMTP\r\n")
            data = False
            while True:
                line = f.readline()
                if not line:
                    return
                if data:
                    if line == b".\r\n":
                        data = False
                        self.dots += 1
                        if self.mode == "rst_dot":
                            return self.reset(c)
                        c.sendall(b"250 2.0.0 Ok: queued as SCRIPTED\r\n")
                        continue
                    self.content += len(line)
                    if self.content >= self.after and self.mode == "rst_body":
                        return self.reset(c)
                    if self.content >= self.after and self.mode == "fin_body":
                        c.shutdown(socket.SHUT_RDWR)
                        return c.close()
                    continue
                u = line.strip().upper()
                if u.startswith(b"EHLO"):
                    c.sendall(b"250-scripted\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif u == b"DATA":
                    c.sendall(b"354 go ahead\r\n")
                    data = True
                elif u == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    return c.close()
                else:
                    c.sendall(b"250 2.0.0 ok\r\n")
        except OSError:
            return


BODY = dot_stuff(make_message("reset", body="".join("line %05d %s\n" % (i, "y" * 89)
                                                     for i in range(1000))))  # ~100 kB


def one_message(bs, name):
    """A full transaction; the reply to the end of data (or None if the
    connection closed without one), and whether the client saw a 250 after
    the 354."""
    c = bs.client()
    t.check_reply("%s: EHLO" % name, c.ehlo(), 250)
    t.check_reply("%s: MAIL" % name, c.cmd("MAIL FROM:<sender@example.org>"), 250)
    t.check_reply("%s: RCPT" % name, c.cmd("RCPT TO:<user@test.example>"), 250)
    t.check_reply("%s: DATA" % name, c.cmd("DATA"), 354)
    try:
        c.send(BODY + b".\r\n")
    except OSError:
        pass   # backstop may close after its 421 while we still send
    r = c.try_reply(15)
    rest = []
    while True:   # anything after (a 421 after 451, say) must not be 250 either
        x = c.try_reply(1)
        if x is None:
            break
        rest.append(x)
    return r, rest


CASES = [
    ("RST while the body streams", "rst_body"),
    ("close (FIN) while the body streams", "fin_body"),
    ("RST right after the final dot", "rst_dot"),
]

for name, mode in CASES:
    with t.case(name):
        be = ScriptedBackend(mode, after=20000)
        bs = t.backstop({"backend": {"address": be.address, "xclient": "off"},
                         "limits": {"data_buffer": "4k"}})
        r, rest = one_message(bs, name)
        t.check("%s: the end of data gets 451 or 421, never 250" % name,
                r is not None and r.code in (451, 421), "got %s then %s" % (r, rest))
        t.check("%s: with an enhanced status code" % name, r is not None and r.esc_ok(), r)
        t.check("%s: no 250 follows" % name, all(x.code != 250 for x in rest), rest)
        if mode == "rst_dot":
            t.check("%s: the backend did see the dot" % name, be.dots == 1, be.dots)
        else:
            t.check("%s: the backend died mid-content (%d bytes)" % (name, be.content),
                    20000 <= be.content < len(BODY) and be.dots == 0)
        t.check("%s: backstop logs the backend's failure" % name,
                bs.wait_log(r"backend .*(closed the connection|reset|lost)|connection reset", 5),
                bs.log(True)[-2000:])
        # backstop keeps serving: the same message through a sane backend
        be.mode = "ok"
        r2, _ = one_message(bs, name + " (then a sane backend)")
        t.check_reply("%s: the next message is accepted" % name, r2, 250)
        bs.stop()

t.done()

#!/usr/bin/python3
"""redis_hostile (review12): [limits] store pointing at a server that is
not a well-behaved Redis (a fake one on loopback). Whatever it says, mail
goes on (counted in memory) and backstop stays up: a reply nobody asked for
(a "+OK" greeting, as a POP3 server's; a second reply to one call), a
protocol error, a huge bulk length, a huge array length (hiredis would
allocate 16 GB for "*2000000000"), an endless bulk string (memory stays
bounded), a close in the middle of a reply."""
import re
import socket
import threading
from harness import *

t = Test("redis_hostile", need=("smtp-sink",))
sink = t.sink()


class FakeRedis:
    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.stop = False
        threading.Thread(target=self.run, daemon=True).start()
        t.defer(self.close)

    def close(self):
        self.stop = True
        self.srv.close()

    def run(self):
        while not self.stop:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.conn, args=(c,), daemon=True).start()

    def conn(self, c):
        try:
            c.settimeout(30)
            b = self.behaviour
            if b == "greeting":
                c.sendall(b"+OK POP3 server ready\r\n")
            while True:
                data = c.recv(65536)
                if not data:
                    return
                if b"EVAL" not in data:
                    continue
                if b == "twice":
                    c.sendall(b"*1\r\n:1\r\n+OK\r\n")
                elif b == "garbage":
                    c.sendall(b"\x00\x01garbage\r\n")
                elif b == "hugebulk":
                    c.sendall(b"$2000000000\r\n" + b"x" * 65536)
                elif b == "hugearray":
                    c.sendall(b"*2000000000\r\n:1\r\n")
                elif b == "endless":
                    c.sendall(b"$900000000\r\n")
                    try:
                        while True:
                            c.sendall(b"x" * 65536)
                    except OSError:
                        return
                elif b == "midclose":
                    c.sendall(b"*2\r\n:1\r\n")
                    c.close()
                    return
                elif b == "greeting":
                    c.sendall(b"*1\r\n:1\r\n")
        except OSError:
            pass
        finally:
            c.close()


for behaviour in ("greeting", "twice", "garbage", "hugebulk", "hugearray", "endless", "midclose"):
    with t.case("fake Redis: %s" % behaviour):
        fr = FakeRedis(behaviour)
        bs = t.backstop({"backend": {"address": sink.address},
                         "limits": {"store": "redis://127.0.0.1:%d" % fr.port, "redis_timeout": "300ms",
                                    "msg_rate_per_ip": "100"}})
        time.sleep(0.5)
        ok = True
        for i in range(3):
            try:
                c = SmtpClient(bs.host, bs.port, 5)
                g = c.greeting()
                c.ehlo()
                r = c.cmd("MAIL FROM:<a@example.org>")
                c.close()
                ok = ok and r is not None and r.code == 250
            except Exception as e:
                ok = False
                log("# %s" % e)
            time.sleep(0.3)
        t.check("%s: MAIL accepted each time" % behaviour, ok, bs.log()[-2000:])
        t.check("%s: backstop still running" % behaviour, bs.proc.poll() is None, bs.log()[-2000:])
        rss = 0
        try:
            with open("/proc/%d/status" % bs.proc.pid) as f:
                rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        except (OSError, AttributeError):
            pass
        t.check("%s: resident memory under 300 MB (%d kB)" % (behaviour, rss), rss < 300000)

t.done()

#!/usr/bin/python3
"""client_abort: a client that drops the connection in the middle of DATA,
with a FIN (close) or an RST (SO_LINGER 0), after part of a large body has
already been streamed to the backend (data_buffer = 4k, the minimum). A real
Postfix behind backstop must keep nothing: no truncated message queued or
delivered. A complete message sent the same way afterwards is delivered
(the fixture works, so the checks above can fail)."""
import struct
from harness import *

t = Test("client_abort", need=("postfix",))
pf = t.postfix()
bs = t.backstop({"backend": {"address": pf.address},
                 "limits": {"data_buffer": "4k", "max_message_size": "10m"}})

# 400 lines of 100 bytes: about 40 kB, ten times data_buffer
BODY = make_message("abort", body="".join("line %04d %s\n" % (i, "x" * 89) for i in range(400)))
WIRE = dot_stuff(BODY)


def start_data():
    c = bs.client()
    t.check_reply("EHLO", c.ehlo(), 250)
    t.check_reply("MAIL", c.cmd("MAIL FROM:<sender@example.org>"), 250)
    t.check_reply("RCPT", c.cmd("RCPT TO:<user@test.example>"), 250)
    t.check_reply("DATA 354", c.cmd("DATA"), 354)
    return c


def no_message(name):
    msgs = pf.settle(1.0)
    t.check("%s: Postfix's qmgr queued nothing" % name, pf.queued_count() == 0, pf.log(True)[-2000:])
    t.check("%s: Postfix's queue is empty" % name, pf._queue_empty())
    t.check("%s: nothing delivered" % name, msgs == [], msgs)


for how in ("FIN", "RST"):
    with t.case("client %s mid-DATA after 30 kB of 40 kB" % how):
        pf.mark()
        bs.mark()
        c = start_data()
        c.send(WIRE[:30000])
        # Postfix must have started to take the content: it is streamed, so
        # the abort really happens in the middle of the backend's DATA
        t.check("%s: Postfix received part of the content before the abort" % how,
                poll(lambda: bs.count_log(r"backend -> 354") >= 1, 5), bs.log(True)[-2000:])
        time.sleep(0.3)
        if how == "RST":
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        m = pf.wait_log(r"lost connection after DATA \((\d+) bytes\)", 10)
        t.check("%s: Postfix lost the connection in DATA after more than data_buffer bytes" % how,
                m and int(m[0].group(1)) > 4096, pf.log(True)[-2000:])
        no_message(how)
        t.check("%s: backstop is still running" % how, bs.running())

with t.case("control: the same message completed is delivered once"):
    pf.mark()
    c = start_data()
    c.send(WIRE + b".\r\n")
    t.check_reply("end of data 250", c.reply(15), 250)
    msgs = pf.wait_for_mail(1, 10)
    t.check("one message delivered", len(msgs) == 1, msgs)
    t.check("its body is complete", len(msgs) == 1 and msgs[0].raw.count(b"line 0399") == 1)
    t.check_reply("QUIT", c.cmd("QUIT"), 221)

bs.stop()
t.done()

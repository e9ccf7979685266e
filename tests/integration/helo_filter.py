#!/usr/bin/python3
"""helo_filter: the example check (filters/helo.c) on the wire: invalid
HELO names get 501 5.5.2, a client claiming to be us gets 550 5.7.1, the
session goes on after either, and [helo] keys turn the checks off."""
from harness import *

t = Test("helo_filter", need=("smtp-sink",))
sink = t.sink()
bs = t.backstop({"backend": {"address": sink.address},
                 "server": {"hostname": "mx.backstop.example"}})

with t.case("refusals"):
    c = bs.client()
    t.check_reply("EHLO with invalid name: 501 5.5.2", c.cmd("EHLO bad_name!"), 501, "5.5.2")
    t.check_reply("HELO [300.1.1.1]: 501 5.5.2", c.cmd("HELO [300.1.1.1]"), 501, "5.5.2")
    t.check_reply("EHLO as our own name: 550 5.7.1", c.cmd("EHLO MX.Backstop.Example"), 550, "5.7.1")
    t.check_reply("MAIL after a refused HELO: accepted ([helo] required = no)", c.cmd("MAIL FROM:<a@example.org>"), 250)
    c.cmd("RSET")
    t.check_reply("a good EHLO afterwards: 250", c.ehlo("client.example.org"), 250)
    rs = c.mail_transaction("a@example.org", ["b@example.net"], make_message("after helo refusals"))
    t.check_reply("and mail goes through", rs[-1], 250)
    c.cmd("QUIT")
    t.check("refusals logged with the filter's name", bs.wait_log(r"helo reject from \[127\.0\.0\.1\]", 2),
            bs.log()[-1500:])

bs.stop()
bs = t.backstop({"backend": {"address": sink.address},
                 "server": {"hostname": "mx.backstop.example"},
                 "helo": {"reject_invalid": "no", "reject_own_name": "no"}})
with t.case("checks off"):
    c = bs.client()
    t.check_reply("invalid name accepted when reject_invalid = no", c.cmd("EHLO bad_name!"), 250)
    t.check_reply("own name accepted when reject_own_name = no", c.cmd("EHLO mx.backstop.example"), 250)
    c.cmd("QUIT")
bs.stop()
t.done()

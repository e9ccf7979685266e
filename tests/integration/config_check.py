#!/usr/bin/python3
"""config_check: `backstop -t` accepts good configs and refuses bad ones
with file:line: messages and exit status 1 (unknown section or key, bad
value, duplicate key, missing [backend] address); backstop refuses to start
on an invalid config; the shipped backstop.ini passes -t and documents
every key of the table in proxy/config.c; -V prints a version."""
import os
import re
import subprocess
import time
from harness import *

t = Test("config_check", watchdog=60)
d = t.tmpdir("configs")


def check_file(text, name):
    path = os.path.join(d, name + ".ini")
    with open(path, "w") as f:
        f.write(text)
    # run_backstop fails the test on a sanitizer report: an ASan build
    # exits 1 after one, the same status as a refused config
    # started as root, backstop refuses to keep root unless told so by name
    rc, out = t.run_backstop(["-t", "-c", path, "-o", "server.user=root"])
    return rc, out, path


GOOD = """\
# a comment
[server]
listen = 127.0.0.1:2525 [::1]:2525
hostname = mx.example.org

[backend]
address = 127.0.0.1:10025
xclient = auto

[limits]
max_message_size = 25m
command_timeout = 300s
greeting_timeout = 500ms

[log]
level = info
destination = stderr
"""

with t.case("good config"):
    rc, out, _ = check_file(GOOD, "good")
    t.check("-t on a good config exits 0", rc == 0, out)
    rc, out, _ = check_file("[backend]\naddress = 127.0.0.1:25\n", "minimal")
    t.check("-t on a minimal config (only [backend] address) exits 0", rc == 0, out)


def bad(name, text, line, rx):
    """line: the expected line number, or a tuple of acceptable ones."""
    lines = line if isinstance(line, tuple) else (line,)
    rc, out, path = check_file(text, name)
    t.check("%s: exit status 1" % name, rc == 1, (rc, out))
    want = r"%s:(%s): .*%s" % (re.escape(path), "|".join(map(str, lines)), rx)
    t.check("%s: '%s:%s: ...%s'" % (name, os.path.basename(path), "|".join(map(str, lines)), rx),
            re.search(want, out) is not None, out)


with t.case("bad configs"):
    bad("unknown key", GOOD.replace("hostname = mx.example.org", "hostname = mx.example.org\nfrobnicate = yes"),
        5, r"frobnicate")
    bad("unknown section", GOOD + "\n[nosuchsection]\nkey = 1\n", 19, r"nosuchsection")
    bad("bad number", GOOD.replace("[limits]\n", "[limits]\nmax_recipients = many\n"), 11, r"max_recipients")
    bad("bad size", GOOD.replace("25m", "25 parsecs"), 11, r"max_message_size")
    bad("bad duration", GOOD.replace("300s", "5 fortnights"), 12, r"command_timeout")
    bad("duration out of range", GOOD.replace("500ms", "1ms"), 13, r"greeting_timeout")
    bad("bad enum", GOOD.replace("xclient = auto", "xclient = sometimes"), 8, r"xclient")
    bad("bad listen address", GOOD.replace("[::1]:2525", "[::1]:99999"), 3, r"listen")
    bad("bad backend address", GOOD.replace("127.0.0.1:10025", "127.0.0.1"), 7, r"address")
    bad("duplicate key", GOOD.replace("xclient = auto", "xclient = auto\nxclient = off"), 9, r"[Dd]uplicate")
    rc, out, path = check_file(GOOD.replace("address = 127.0.0.1:10025\n", ""), "missing-address")
    t.check("missing [backend] address: exit status 1", rc == 1, (rc, out))
    t.check("missing [backend] address: named in a file: message",
            re.search(r"%s(:\d+)?: .*address" % re.escape(path), out) is not None, out)
    text = GOOD.replace("level = info", "level = chatty").replace("hostname = mx.example.org",
                                                                  "hostname = mx.example.org\nbogus = 1")
    rc, out, path = check_file(text, "two-errors")
    t.check("two errors: both reported", rc == 1 and re.search(r":5: .*bogus", out)
            and re.search(r":17: .*level", out), out)
    rc, out, path = check_file("[server]\nlisten = " + "1" * 5000 + "\n[backend]\naddress = 127.0.0.1:25\n",
                               "long-line")
    t.check("over-long line refused with its line number", rc == 1 and re.search(r":2: ", out), out[:300])
    rc, out = t.run_backstop(["-t", "-c", os.path.join(d, "does-not-exist.ini")])
    t.check("missing file: exit status 1 with the file name", rc == 1 and
            "does-not-exist.ini" in out, out)

with t.case("backstop refuses to start on an invalid config"):
    _, _, path = check_file(GOOD.replace("xclient = auto", "xclient = sometimes"), "nostart")
    t0 = time.monotonic()
    try:
        rc, out = t.run_backstop(["-f", "-c", path], timeout=5)
        t.check("exits 1 at once", rc == 1, rc)
        t.check("says why, with file:line", re.search(r"nostart\.ini:8: ", out), out)
    except subprocess.TimeoutExpired:
        t.check("exits non-zero at once", False, "still running after 5s")

with t.case("-V"):
    rc, out = t.run_backstop(["-V"], timeout=5)
    t.check("-V exits 0 and prints a version", rc == 0 and
            re.search(r"backstop.*\d+\.\d+", out), out)

with t.case("shipped backstop.ini"):
    src = srcdir()
    ini = os.path.join(src, "backstop.ini")
    t.check("backstop.ini exists at the top of the source tree", os.path.exists(ini), ini)
    if os.path.exists(ini):
        rc, out = t.run_backstop(["-t", "-c", ini])
        t.check("as root, -t refuses the shipped backstop.ini until [server] user is set",
                rc == 1 and "[server] user is not set" in out, out)
        rc, out = t.run_backstop(["-t", "-c", ini, "-o", "server.user=nobody"])
        t.check("backstop -t accepts the shipped backstop.ini (user = nobody)", rc == 0, out)
        # every key of the table is documented (set or commented out) in its section
        table = open(os.path.join(src, "proxy", "config.c")).read()
        keys = re.findall(r'^\s*\{"(\w+)",\s*"(\w+)",', table, re.M)
        t.check("found the key table in proxy/config.c (%d keys)" % len(keys), len(keys) > 20, len(keys))
        text = open(ini).read()
        sections = {}
        cur = None
        for l in text.splitlines():
            m = re.match(r"\s*[#;]*\s*\[(\w+)\]\s*$", l)
            if m:
                cur = m.group(1)
                continue
            m = re.match(r"\s*[#;]*\s*(\w+)\s*=", l)
            if m and cur:
                sections.setdefault(cur, set()).add(m.group(1))
        missing = ["[%s] %s" % (s, k) for s, k in keys if k not in sections.get(s, set())]
        t.check("every key is documented in backstop.ini", not missing, missing)

t.done()

#!/usr/bin/python3
"""manpages: backstop.ini(5) documents exactly the keys backstop has, with
backstop's defaults, and so does the shipped backstop.ini; backstop(8)
names every option of the usage text, the default configuration file and
every signal backstop handles; both pages render without a warning
(groff -ww, man --warnings, mandoc -T lint).

The keys come from backstop itself (-n prints every key of the table in
proxy/config.c). A default is checked by backstop too: a file that sets
every key to the page's default must give the same -n output as a file
that sets none."""
import os
import re
import subprocess
from harness import *

t = Test("manpages", need=("groff", "man", "mandoc"))
build = os.environ.get("BACKSTOP_BUILDDIR") or os.path.dirname(os.path.abspath(t.bin))
src = srcdir()
page5 = os.path.join(build, "proxy", "backstop.ini.5")
page8 = os.path.join(build, "proxy", "backstop.8")
work = t.tmpdir("work")


def dump(text):
    """backstop -n on a file with text: {(section, key): value}, in order."""
    path = os.path.join(work, "dump.ini")
    with open(path, "w") as f:
        f.write(text)
    rc, out = t.run_backstop(["-n", "-c", path])
    if rc != 0:
        raise RuntimeError("backstop -n failed:\n%s\n--- file:\n%s" % (out, text))
    keys, sec = {}, None
    for line in out.splitlines():
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            sec = m.group(1)
            continue
        m = re.match(r"^(\w+) = ?(.*)$", line)
        if m:
            keys[(sec, m.group(1))] = m.group(2)
    return keys


def roff_text(s):
    """The text of roff source s: escapes a reader does not see removed."""
    s = s.replace("\\\n", "")
    s = re.sub(r"\\f[BIRP]", "", s)
    return s.replace("\\-", "-").replace("\\:", "").replace("\\&", "")


def page_keys(path):
    """backstop.ini(5): {(section, key): default}, default being the text
    after "Default:" (None for "Required"), read from the KEYS section:
    .SS "[section]", then per entry .TP/.TQ, .B key, then its text. Two
    keys under one paragraph (.TQ) say "Defaults: A and B"."""
    text = open(path).read().replace("\\\n", "")
    body = text.split("\n.SH KEYS\n", 1)[1].split("\n.SH ", 1)[0]
    found, sec, group, para = {}, None, [], []

    def close():
        if not group:
            return
        p = roff_text("\n".join(para))
        m = re.search(r"^Defaults?: (.*?)\.?$", p, re.M)
        if re.search(r"^Required", p, re.M):
            vals = [None] * len(group)
        elif m and len(group) > 1 and " and " in m.group(1):
            vals = [x.strip() for x in m.group(1).split(" and ")]
        elif m and m.group(1).startswith("empty"):
            vals = [""] * len(group)
        elif m:
            d = m.group(1)
            vals = ["" if d.startswith("empty") else d]
        else:
            vals = ["?no Default: line"] * len(group)
        for k, d in zip(group, vals + ["?"] * len(group)):
            found[(sec, k)] = d
    lines = body.split("\n")
    for i, line in enumerate(lines):
        m = re.match(r'^\.SS "?\[(\w+)\]"?$', line)
        if m:
            close()
            sec, group, para = m.group(1), [], []
            continue
        if line in (".TP", ".TQ"):
            if line == ".TP":
                close()
                group, para = [], []
            m = re.match(r"^\.B (\w+)$", lines[i + 1]) if i + 1 < len(lines) else None
            if m:
                group.append(m.group(1))
            continue
        if re.match(r"^\.B \w+$", line) and lines[i - 1] in (".TP", ".TQ"):
            continue
        para.append(line)
    close()
    return found


def ini_keys(path):
    """The shipped backstop.ini: (keys set, keys set or commented out). A
    comment may look like a key by chance ("; default_process_limit = 100),
    whose..."): only a key that is set counts as documenting one that the
    table does not have."""
    found, live, sec = set(), set(), None
    for line in open(path):
        m = re.match(r"\s*[#;]*\s*\[(\w+)\]\s*$", line)
        if m:
            sec = m.group(1)
            continue
        m = re.match(r"\s*([#;]*)\s*(\w+)\s*=", line)
        if m and sec:
            found.add((sec, m.group(2)))
            if not m.group(1):
                live.add((sec, m.group(2)))
    return live, found


def fmt(keys):
    return ", ".join("[%s] %s" % k for k in sorted(keys)) or "none"


minimal = "[backend]\naddress = 127.0.0.1:25\n"
table = dump(minimal)
t.check("backstop -n lists the keys (%d)" % len(table), len(table) > 50, table)

with t.case("backstop.ini(5) and the key table"):
    t.check("the page was made (%s)" % page5, os.path.exists(page5))
    documented = page_keys(page5)
    t.check("every key of the table is in backstop.ini(5)",
            not set(table) - set(documented), fmt(set(table) - set(documented)))
    t.check("every key in backstop.ini(5) is in the table",
            not set(documented) - set(table), fmt(set(documented) - set(table)))
    # the page's defaults, given to backstop: the same effective values
    lines, sec = [], None
    for (s, k), d in sorted(documented.items()):
        if (s, k) not in table:
            continue
        if d is None:   # required: the minimal file's value
            d = {"address": "127.0.0.1:25"}.get(k, "")
        if s != sec:
            lines.append("[%s]" % s)
            sec = s
        if len(d) > 150 and ":" in d:   # a CFG_COLON list: repeated keys append
            parts = d.split(":")
            for i in range(0, len(parts), 3):
                lines.append("%s = %s" % (k, ":".join(parts[i:i + 3])))
        else:
            lines.append("%s = %s" % (k, d))
    try:
        given = dump("\n".join(lines) + "\n")
        wrong = sorted(k for k in table if given.get(k) != table[k])
        t.check("every default in backstop.ini(5) is backstop's",
                not wrong, "; ".join("[%s] %s: page %r gives %r, backstop's default is %r"
                                     % (k[0], k[1], documented.get(k), given.get(k), table[k])
                                     for k in wrong))
    except RuntimeError as e:
        t.check("backstop accepts the page's defaults", False, e)

with t.case("the shipped backstop.ini and the key table"):
    live, shipped = ini_keys(os.path.join(src, "backstop.ini"))
    t.check("every key of the table is in backstop.ini",
            not set(table) - shipped, fmt(set(table) - shipped))
    t.check("every key set in backstop.ini is in the table",
            not live - set(table), fmt(live - set(table)))

with t.case("backstop(8) and the program"):
    text = open(page8).read()
    plain = roff_text(text)
    rc, usage = t.run_backstop(["-h"])
    opts = sorted(set(re.findall(r"(?<![\w-])(-[a-zA-Z]|--[a-z]+)\b", usage)))
    t.check("the usage text has options (%s)" % " ".join(opts), len(opts) >= 8, usage)
    # each under OPTIONS, as the tag of its own paragraph
    options = text.split("\n.SH OPTIONS\n", 1)[-1].split("\n.SH ", 1)[0].split("\n")
    tags = " ".join(roff_text(options[i + 1]) for i, l in enumerate(options[:-1]) if l == ".TP")
    missing = [o for o in opts if not re.search(r"(?<![\w-])%s\b" % re.escape(o), tags)]
    t.check("every option of the usage has a paragraph under OPTIONS in backstop(8)", not missing,
            "%s not in the tags: %s" % (missing, tags))
    t.check("batv sign and verify are in backstop(8)", "batv sign" in plain and "batv verify" in plain)
    m = re.search(r"default FILE: (\S+)", usage)
    t.check("backstop(8) names the default file %s" % (m and m.group(1)), m and m.group(1) in plain, usage)
    handled = set(re.findall(r"uv_signal_start\([^;]*\b(SIG[A-Z]+)\)",
                             open(os.path.join(src, "proxy", "server.c")).read()))
    signals = plain.split("\n.SH SIGNALS", 1)[-1].split("\n.SH ", 1)[0]
    t.check("every signal backstop handles (%s) is under SIGNALS" % " ".join(sorted(handled)),
            handled and all(s in signals for s in handled), handled)
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS", "EXIT STATUS", "FILES"):
        t.check("backstop(8) has %s" % section, "\n.SH %s\n" % section in text
                or '\n.SH "%s"\n' % section in text)

with t.case("rendering without warnings"):
    for page in (page8, page5):
        name = os.path.basename(page)
        r = subprocess.run(["groff", "-man", "-ww", "-z", page], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=dict(os.environ, LC_ALL="C.UTF-8"), timeout=30)
        t.check("groff -man -ww -z %s: silent" % name, r.returncode == 0 and not r.stdout, r.stdout)
        for width in ("80", "60"):
            r = subprocess.run(["man", "--warnings", "-l", page], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30,
                               env=dict(os.environ, MANWIDTH=width, LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING=""))
            t.check("man --warnings -l %s at %s columns: no warning" % (name, width),
                    r.returncode == 0 and not r.stderr and len(r.stdout) > 2000, r.stderr)
        r = subprocess.run(["mandoc", "-T", "lint", "-W", "all", page], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        t.check("mandoc -T lint -W all %s: silent" % name, r.returncode == 0 and not r.stdout, r.stdout)

t.done()

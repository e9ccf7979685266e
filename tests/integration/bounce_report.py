#!/usr/bin/python3
"""bounce_report: the refused-bounce record and `backstop report` (issue 15).

The corpus messages that carry an original in a MIME part (message/rfc822,
message/global, text/rfc822-headers with Received fields; sisimai's
set-of-emails maildir/bsd/ in ../shared/corpora) are replayed, null sender,
to backstop with [bounce] mode = enforce and [log] format = json. Then
`backstop report` reads the log, and its zombie counts are compared with an
independent count in Python over the corpus files: for each message
backstop refused, the address the bouncing site's entry MTA saw (the
Received fields read from the top; hops whose from-clause address is not
global by Python's ipaddress skipped, and the site's own relays: a hop
whose client's reverse name, as the receiving MTA wrote it, is in the
registered domain of its `by` host) - every address found, every count
right, and nothing else. Every record names one bouncing server
(127.0.0.1): the zone lists nothing by default (--min-servers 2), all of
them with --min-servers 1.

Also: the record's fields; csv and rbldnsd output parsed back; --since and
--until on a log of records at known times (with hostile lines: syslog
prefixes, truncated JSON, a 100 KB line, deep nesting, \\u0000); the html
page loaded in headless Chromium (the runs table, the zombie table, an
<svg> chart with bars) with a subject and a host carrying <script> and an
<img onerror>: they must come out as text, no element of theirs in the DOM.
The corpus is required: missing under CI=true is a failure, elsewhere a skip.
"""
import collections
import csv
import email
import glob
import io
import email.parser
import email.policy
import ipaddress
import json
import os
import re
import shutil
import subprocess
import threading
from harness import *
from corpus import require_sisimai_maildir

t = Test("bounce_report", need=("smtp-sink",), watchdog=120)


CORPUS = require_sisimai_maildir(t)


# ------------------------------------------------ the independent count
def wire(raw):
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return raw.replace(b"\n", b"\r\n")


def original_headers(raw):
    """The header section of the first original attached as a MIME part
    among the message's own parts (not inside an attached message)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)

    def walk(part):
        ct = part.get_content_type()
        if ct in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return payload[0]
            data = part.get_payload(decode=True)
            return email.message_from_bytes(data) if data else None
        if ct in ("text/rfc822-headers", "message/global-headers", "text/rfc822-header"):
            data = part.get_payload(decode=True) or b""
            return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(data)
        if part.is_multipart():
            for sub in part.get_payload():
                found = walk(sub)
                if found is not None:
                    return found
        return None
    return walk(msg)


ADDR = re.compile(r"\[(?:ipv6:)?([0-9a-f:.]+)\]|\(([0-9a-f:.]+)\)", re.I)
# the receiving MTA's name for its client: "(name [addr])" (Postfix,
# Sendmail "(user@name [addr])", Gmail "(name. [addr])")
RDNS_COMMENT = re.compile(r"\((?:[^()\s@]*@)?([A-Za-z0-9_.-]+)\s+\[", re.I)
# Exim "from name ([addr]... helo=H)", qmail "from name (HELO H) (addr)"
RDNS_HELO_APART = re.compile(r"^from ([A-Za-z0-9_.-]+) \((?:\[[^\]]*\][^)]*\bhelo=|helo )", re.I)


def from_clause(received):
    v = re.sub(r"\s+", " ", str(received)).strip()
    if not v.lower().startswith("from "):
        return None, None
    m = re.search(r" by ", v, re.I)
    clause = v[:m.start() + 1] if m else v
    by = None
    if m:
        by = re.match(r"[^\s(;]*", v[m.end():].lstrip()).group(0)
    return clause, by


def hop_address(clause):
    """The client address of one from clause: its last address literal,
    not the client's HELO."""
    found = None
    for mm in ADDR.finditer(clause):
        before = clause[max(0, mm.start() - 5):mm.start()].lower()
        if before in ("helo=", "helo "):
            continue
        try:
            found = ipaddress.ip_address(mm.group(1) or mm.group(2))
        except ValueError:
            continue
    return found


def hop_rdns(clause):
    m = RDNS_COMMENT.search(clause)
    if m and m.group(1).lower() != "unknown":
        return m.group(1)
    m = RDNS_HELO_APART.match(clause)
    if m and m.group(1).lower() != "unknown":
        return m.group(1)
    return None


def site(name):
    """The registered domain, approximated as backstop does without the
    PSL: 2 labels, 3 under a 2-letter ccTLD whose second level has 2-3
    letters (co.uk)."""
    if not name:
        return None
    name = name.rstrip(".").lower() if name.endswith(".") and not name.endswith("..") else name.lower()
    labels = name.split(".")
    if any(not l or not re.fullmatch(r"[a-z0-9_-]+", l) for l in labels) or \
            all(re.fullmatch(r"[0-9]+", l) for l in labels):
        return None
    want = 3 if (len(labels) >= 2 and re.fullmatch(r"[a-z]{2}", labels[-1]) and
                 re.fullmatch(r"[a-z]{2,3}", labels[-2])) else 2
    return ".".join(labels[-want:]) if len(labels) >= want else None


relays_skipped = []   # the registered domains of the relays skipped, for the log


def entry_address(hdrs):
    """From the top: skip hops without a global client address and the
    site's own relays; the first hop left is the entry MTA's."""
    hops = hdrs.get_all("Received") or []
    # backstop keeps 16 fields; of a longer chain the top 8 and the bottom
    # ones: only the top 8 are the next hops down
    for r in hops[:16] if len(hops) <= 16 else hops[:8]:
        clause, by = from_clause(r)
        if clause is None:
            continue
        a = hop_address(clause)
        if a is None:
            continue
        if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped:
            a = a.ipv4_mapped
        if not a.is_global or a.is_multicast:
            continue
        s = site(hop_rdns(clause))
        if s is not None and s == site(by):
            relays_skipped.append(s)
            continue
        return str(a)
    return None


def bottom_external(hdrs):
    """The old rule (before review15): the bottom-most global hop."""
    for r in reversed(hdrs.get_all("Received") or []):
        clause, _ = from_clause(r)
        a = hop_address(clause) if clause else None
        if a is None:
            continue
        if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped:
            a = a.ipv4_mapped
        if a.is_global and not a.is_multicast:
            return str(a)
    return None


files = sorted(glob.glob(os.path.join(CORPUS, "bsd", "*.eml")))
items, expect_ip, old_ip = [], {}, {}
for f in files:
    raw = wire(open(f, "rb").read())
    try:
        h = original_headers(raw)
    except Exception:
        h = None
    if h is None or not h.get_all("Received"):
        continue
    name = os.path.basename(f)
    items.append((name, raw))
    expect_ip[name] = entry_address(h)
    old_ip[name] = bottom_external(h)
with_ip = sum(1 for v in expect_ip.values() if v)
log("# %d corpus messages carry an original with Received fields, %d with an external hop"
    % (len(items), with_ip))
# sisimai's corpus writes most addresses in the documentation ranges
# (192.0.2.0/24, ...): not external, as in real mail
t.check("the corpus has originals with an external hop to count", len(items) > 100 and with_ip >= 25,
        (len(items), with_ip))

# ------------------------------------------------ replay, refused
kdir = t.tmpdir("keys")
KEYS = os.path.join(kdir, "batv.keys")
with open(KEYS, "w") as f:
    f.write("1 report-secret-0123456789abcdef\n")
os.chmod(KEYS, 0o600)
RCPT = "user@test.example"
logdir = t.tmpdir("jsonlog")
sink = t.sink(dump=False)
bs = t.backstop({
    "backend": {"address": sink.address},
    "server": {"state_dir": t.tmpdir("state")},
    "limits": {"max_message_size": "10m"},
    "log": {"format": "json", "level": "info"},   # to stderr: the harness's log file
    "batv": {"mode": "enforce", "domains": "test.example", "keys_file": KEYS, "sign_key": "1",
             "refuse_at": "content"},
    "bounce": {"mode": "enforce", "unverifiable": "refuse"},
})

JLOG = bs.logfile
refused = {}
lock = threading.Lock()


def worker(part):
    c = bs.client(timeout=20)
    c.ehlo()
    for name, body in part:
        rs = c.mail_transaction("", [RCPT], body)
        ok = len(rs) == 4 and rs[-1].code == 550 and "did not send" in rs[-1].text
        with lock:
            refused[name] = ok
    c.cmd("QUIT")
    c.close()


threads = [threading.Thread(target=worker, args=(items[i::4],)) for i in range(4)]
for th in threads:
    th.start()
for th in threads:
    th.join()
nrefused = sum(refused.values())
log("# %d of %d refused by the bounce check" % (nrefused, len(items)))
t.check("most corpus bounces with an original are refused", nrefused >= 0.9 * len(items),
        (nrefused, len(items)))
wait_regex_in_file(JLOG, r'"event":"summary"', 10, 0, len(items))

records = []
for line in open(JLOG, "rb"):
    try:
        o = json.loads(line)
    except ValueError:
        continue   # not backstop's (a sanitizer's report would be)
    if o.get("event") == "bounce_refused":
        records.append(o)
t.check("one bounce_refused record per refused bounce", len(records) == nrefused,
        (len(records), nrefused))
if records:
    log("# a record: %s" % json.dumps([r for r in records if r["url_hosts"]][:1] or records[0])[:700])
KEYS_WANTED = ("ts", "server_ip", "server_name", "helo", "rcpt", "sender", "class", "reason",
               "orig_sender", "orig_client_ip", "message_id", "url_hosts", "subject")
t.check("every record has every key", all(all(k in r for k in KEYS_WANTED) for r in records),
        [k for k in KEYS_WANTED if records and k not in records[0]])
t.check("the records name the recipient and the bouncing server",
        all(r["rcpt"] == RCPT and r["server_ip"] == "127.0.0.1" for r in records))
t.check("the records have URL hosts of the originals' text",
        sum(1 for r in records if r["url_hosts"]) >= 5,
        sum(1 for r in records if r["url_hosts"]))
t.check("the records have subjects", sum(1 for r in records if r["subject"]) >= 0.8 * len(records))


# the text format: the same record as one key=value line
bs_text = t.backstop({
    "backend": {"address": sink.address},
    "server": {"state_dir": t.tmpdir("state-text")},
    "limits": {"max_message_size": "10m"},
    "log": {"format": "text", "level": "info"},
    "batv": {"mode": "enforce", "domains": "test.example", "keys_file": KEYS, "sign_key": "1",
             "refuse_at": "content"},
    "bounce": {"mode": "enforce", "unverifiable": "refuse"},
})
name = next(n for n, r in sorted(refused.items()) if r and expect_ip[n])
c = bs_text.client(timeout=20)
c.ehlo()
rs = c.mail_transaction("", [RCPT], dict(items)[name])
c.cmd("QUIT")
c.close()
m = bs_text.wait_log(r"bounce refused: server_ip=127\.0\.0\.1 server_name=\S+ helo=\S+ "
                     r"rcpt=user@test\.example sender=<> class=\w+ reason=\w+ orig_sender=\S+ "
                     r"orig_client_ip=(\S+) message_id=\S+ url_hosts=\S+ subject=", 10)
t.check("the text log has the record as key=value (%s)" % name,
        m and expect_ip[name] in bs_text.log(), bs_text.log()[-600:])


def report(*args, ok=True):
    p = subprocess.run([backstop_bin(), "report"] + list(args), capture_output=True, timeout=60)
    if ok and p.returncode != 0:
        log("# report %s: exit %d: %s" % (args, p.returncode, p.stderr.decode(errors="replace")))
    return p


# ------------------------------------------------ zombies counted right
want = collections.Counter(expect_ip[n] for n, r in refused.items() if r and expect_ip[n])
p = report("--format", "csv", JLOG)
t.check("report --format csv exits 0", p.returncode == 0, p.stderr[-300:])
rows = list(csv.reader(io.StringIO(p.stdout.decode("utf-8"), newline="")))
t.check("csv header", rows and rows[0] == ["section", "count", "first_seen", "last_seen", "key",
                                           "extra", "servers", "listed"], rows[:1])
t.check("csv: each zombie named by one server (127.0.0.1), none listed",
        all(r[6] == "1" and r[7] == "no" for r in rows[1:] if r[0] == "zombie"),
        [r for r in rows[1:] if r[0] == "zombie"][:3])
got = {r[4]: int(r[1]) for r in rows[1:] if r[0] == "zombie"}
missing = {ip: n for ip, n in want.items() if got.get(ip) != n}
extra = {ip: n for ip, n in got.items() if ip not in want}
if missing or extra:
    for name, r in sorted(refused.items()):
        if r and expect_ip[name] in missing:
            log("#   %s: expected %s" % (name, expect_ip[name]))
old = collections.Counter(old_ip[n] for n, r in refused.items() if r and old_ip[n])
log("# entry-MTA rule: %d addresses, %d bounces; the old bottom-most rule: %d addresses, "
    "%d bounces; %d bounces name another address" % (
        len(want), sum(want.values()), len(old), sum(old.values()),
        sum(1 for n, r in refused.items() if r and expect_ip[n] != old_ip[n])))
log("# relays of the bouncing site skipped in the corpus (all messages): %d, %s"
    % (len(relays_skipped), dict(collections.Counter(relays_skipped).most_common(8))))
t.check("every original client address is found and counted right (%d addresses, %d bounces)"
        % (len(want), sum(want.values())), not missing, missing)
t.check("no address the corpus does not quote", not extra, extra)
runs = [r for r in rows[1:] if r[0] == "run"]
t.check("runs add up to the refused bounces", sum(int(r[1]) for r in runs) == nrefused,
        (sum(int(r[1]) for r in runs), nrefused))
hours = [r for r in rows[1:] if r[0] == "hour"]
t.check("per-hour rows add up", sum(int(r[1]) for r in hours) == nrefused)

p = report("--format", "rbldnsd", JLOG)
zone = p.stdout.decode()
t.check("one bouncing server lists nothing (--min-servers 2 by default)",
        p.returncode == 0 and not [l for l in zone.splitlines() if l and l[0] not in "#:"],
        zone[:600])
p = report("--format", "rbldnsd", "--min-servers", "1", JLOG)
zone = p.stdout.decode()
listed = {}
for line in zone.splitlines():
    if not line or line.startswith("#") or line.startswith(":"):
        continue
    m = re.match(r"^(\d+\.\d+\.\d+\.\d+) :127\.0\.0\.2:(\d+) refused bounces", line)
    t.check("rbldnsd line well formed: %r" % line[:80], m is not None) if m is None else None
    if m:
        listed[m.group(1)] = int(m.group(2))
t.check("the rbldnsd zone lists the IPv4 zombies with their counts",
        listed == {ip: n for ip, n in want.items() if ":" not in ip}, (len(listed), len(want)))
t.check("the zone has its default A/TXT line", "\n:127.0.0.2:" in "\n" + zone)

p = report(JLOG)
text = p.stdout.decode()
for line in text.splitlines()[:14]:
    log("#   " + line[:150])
t.check("the text report counts the refused bounces",
        ("refused bounces: %d," % nrefused) in text and "Zombies" in text and "Runs" in text,
        text[:300])

# ------------------------------------------------ hostile log, --since/--until
HOST = 'x.example"><img src=x onerror=alert(1)>'
SUBJ = '<script>document.title="pwned"</script>Cheap <b>meds</b> & more'


def rec(ts, ip, subject="Meds", hosts=("meds.example",), server="198.51.100.7"):
    return json.dumps({"ts": ts, "level": "info", "pid": 1, "event": "bounce_refused",
                       "session": "s1", "msg": "bounce refused", "server_ip": server,
                       "server_name": "mx.bouncer.example", "helo": "mx", "rcpt": RCPT,
                       "sender": "", "class": "ndr", "reason": "no_evidence",
                       "orig_sender": "x@test.example", "orig_client_ip": ip,
                       "message_id": "<a@b>", "url_hosts": list(hosts), "subject": subject})


hostile = os.path.join(logdir, "hostile.json")
with open(hostile, "w") as f:
    f.write(rec("2026-01-01T10:00:00.000Z", "203.0.113.99") + "\n")            # out of range
    f.write(rec("2026-01-02T10:15:00.000Z", "8.8.8.8", SUBJ, (HOST,)) + "\n")
    f.write("Jan  2 10:20:00 mx backstop[12]: " +
            rec("2026-01-02T10:20:00.000Z", "8.8.8.8", SUBJ, (HOST,)) + "\n")  # syslog prefix
    f.write(rec("2026-01-02T11:59:59.000Z", "9.9.9.9") + "\n")
    f.write(rec("2026-01-03T00:00:00.000Z", "9.9.9.9") + "\n")                 # --until: excluded
    f.write(rec("2026-01-02T11:00:00.000Z", "1.1.1.1")[:-20] + "\n")          # truncated
    f.write('{"event":"bounce_refused","subject":"' + "A" * 100000 + '"}\n')   # too long a line
    f.write('{"event":"bounce_refused","x":' + "[" * 200 + "]" * 200 + "}\n")  # too deep
    f.write('{"event":"bounce_refused","ts":"2026-01-02T11:00:00Z","orig_client_ip":"1.1.1.1",'
            '"subject":"nul\\u0000here\\ud800"}\n')                            # counted, escaped
    f.write('{"event":"bounce_refused","orig_client_ip":"1.1.1.1\\n2.2.2.2 :127.0.0.2:x",'
            '"ts":"2026-01-02T11:00:00Z"}\n')                                  # not an address
    f.write("\x00\xff garbage\n")
p = report("--format", "csv", "--since", "2026-01-02", "--until", "2026-01-03", hostile)
rows = list(csv.reader(io.StringIO(p.stdout.decode("utf-8"), newline="")))
zomb = {r[4]: int(r[1]) for r in rows[1:] if r[0] == "zombie"}
t.check("--since/--until keep the records between (hostile lines skipped)",
        zomb == {"8.8.8.8": 2, "9.9.9.9": 1, "1.1.1.1": 1},
        zomb)
p = report("--format", "rbldnsd", "--min-servers", "1", "--since", "2026-01-02", "--until",
           "2026-01-03", hostile)
t.check("only addresses reach the zone", "2.2.2.2" not in p.stdout.decode() and
        "8.8.8.8 :127.0.0.2:2 refused" in p.stdout.decode(), p.stdout.decode())
p = report("--since", "2026-01-02T11:00", hostile)
t.check("--since with an hour; a client address that is none is not a zombie",
        "refused bounces: 4," in p.stdout.decode() and
        "1 with a client address that is none" in p.stdout.decode(), p.stdout.decode()[:300])
p = report("--format", "csv", "--until", "2000-01-01", JLOG)
t.check("--until before everything: nothing", p.returncode == 0 and
        len(p.stdout.decode().splitlines()) == 1, p.stdout[:200])
p = report("--since", "yesterday", JLOG, ok=False)
t.check("a bad --since says what to write", p.returncode == 2 and b"2026-12-07" in p.stderr, p.stderr)
p = report(os.path.join(logdir, "missing.json"), ok=False)
t.check("a missing log is an error", p.returncode == 1 and b"cannot read" in p.stderr, p.stderr)

# ------------------------------------------------ html in a real browser
chromium = shutil.which("chromium") or shutil.which("chromium-browser")
if chromium is None:
    if in_ci():
        t.check("chromium installed (tests/deps.sh)", False)
    else:
        log("# chromium missing: the HTML checks are skipped (apt-get install chromium)")
else:
    page = os.path.join(logdir, "report.html")
    p = report("--format", "html", JLOG, hostile)
    with open(page, "wb") as f:
        f.write(p.stdout)
    prof = t.tmpdir("chromium")
    d = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        "--user-data-dir=" + prof, "--dump-dom", "file://" + page],
                       capture_output=True, timeout=60)
    dom = d.stdout.decode("utf-8", errors="replace")
    t.check("chromium rendered the page", d.returncode == 0 and "<body" in dom, d.stderr[-400:])
    t.check("the DOM has the runs table with rows", re.search(
        r'<table id="runs">.*?<tbody>\s*<tr>', dom, re.S) is not None)
    t.check("the DOM has the zombies table", '<table id="zombies">' in dom)
    t.check("the DOM has an <svg> chart with bars",
            re.search(r'<svg id="chart"[^>]*>.*?<rect class="bar"', dom, re.S) is not None)
    t.check("the hostile subject is text: no <script> element, title unchanged",
            "<script" not in dom and "&lt;script&gt;" in dom and
            "<title>backstop report: refused bounces</title>" in dom)
    t.check("the hostile host is text: no <img> element", "<img" not in dom and
            "&lt;img src=x onerror" in dom)
    t.check("the page has no script at all", b"<script" not in p.stdout)

t.done()

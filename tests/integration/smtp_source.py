#!/usr/bin/python3
"""smtp_source: Postfix's smtp-source sends 200 messages at concurrency 20
through backstop into smtp-sink: all accepted, all counted at the sink."""
import subprocess
import time
from harness import *

N, CONC = 200, 20
t = Test("smtp_source", need=("smtp-sink", "smtp-source"))
sink = t.sink()
bs = t.backstop({"backend": {"address": sink.address},
                 "limits": {"max_connections_per_ip": "100"}, "log": {"level": "info"}})

with t.case("%d messages at concurrency %d" % (N, CONC)):
    t0 = time.monotonic()
    r = subprocess.run(["smtp-source", "-c", "-M", CLIENT_HELO, "-m", str(N), "-s", str(CONC), "-l", "4096",
                        "-f", "sender@example.org", "-t", "user@example.org",
                        "-S", "smtp-source test", "127.0.0.1:%d" % bs.port],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    dt = time.monotonic() - t0
    out = r.stdout.decode("utf-8", "replace")
    log("# %d messages in %.2fs (%.0f/s)" % (N, dt, N / dt))
    t.check("smtp-source exits 0 without errors", r.returncode == 0 and "fatal" not in out
            and "warning" not in out, out[-1500:])
    files = poll(lambda: len(sink.files()) >= N, 5) and sink.files()
    t.check("the sink got all %d" % N, len(sink.files()) == N, len(sink.files()))
    msgs = sink.messages()
    t.check("each carries backstop's Received header",
            all(b"by " + BACKSTOP_HOSTNAME.encode() in m for m in msgs), msgs[0][:600] if msgs else None)

with t.case("smtp-source -d: several messages per session"):
    n0 = len(sink.files())
    r = subprocess.run(["smtp-source", "-d", "-M", CLIENT_HELO, "-m", "50", "-s", "5", "-l", "1024",
                        "-f", "sender@example.org", "-t", "user@example.org",
                        "127.0.0.1:%d" % bs.port],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    t.check("smtp-source exits 0", r.returncode == 0 and "fatal" not in out, out[-1500:])
    poll(lambda: len(sink.files()) >= n0 + 50, 5)
    t.check("the sink got 50 more", len(sink.files()) == n0 + 50, len(sink.files()) - n0)

bs.stop()
t.done()

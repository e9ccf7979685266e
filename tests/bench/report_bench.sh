#!/bin/bash
# report_bench.sh - `backstop report` over a large log: time and peak
# memory (issue 15: 1 GB of logs in under a minute, bounded memory).
#
# Run by hand (no root needed):   tests/bench/report_bench.sh
# Quick (CI, a smoke test):       BENCH_QUICK=1 tests/bench/report_bench.sh
#
# Makes BENCH_SIZE_MB (default 1024; quick: 32) of JSON log lines as
# [log] format = json writes them: 3 in 4 "bounce_refused" records (20000
# zombie addresses, 3000 runs of subject and URL host, 4000 bouncing
# servers, a ts per second over 30 days), the rest "summary" lines, one in
# 500 a syslog-prefixed record and one in 1000 malformed (cut JSON). Then
# runs `backstop report` in text, csv, html and rbldnsd form, each once,
# under /usr/bin/time -v, and the text form also on a file half the size:
# peak RSS must not grow with the log (streaming, fixed tables).
# Prints per run: seconds, MB/s, peak RSS; exit 1 when a run failed, the
# 1 GB text run took 60 s or more (full size only), or the peak RSS of the
# full log exceeds the half log's by more than 8 MB.
# Environment: BACKSTOP (default ./backstop of this tree, else build/),
# BENCH_SIZE_MB, BENCH_QUICK=1, BENCH_KEEP=1 (keep the log in the scratch dir).
set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
if [ -z "${BACKSTOP:-}" ]; then
	BACKSTOP=$src/backstop
	[ -x "$BACKSTOP" ] || BACKSTOP=$src/build/backstop
fi
[ -x "$BACKSTOP" ] || { echo "report_bench: no backstop binary (build it, or set BACKSTOP)"; exit 1; }
[ -x /usr/bin/time ] || { echo "report_bench: needs /usr/bin/time (apt-get install time)"; exit 1; }
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	size_mb=${BENCH_SIZE_MB:-32}
else
	size_mb=${BENCH_SIZE_MB:-1024}
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/report-bench.XXXXXX") || exit 1
[ "${BENCH_KEEP:-0}" = 1 ] || trap 'rm -rf "$dir"' EXIT INT TERM
log=$dir/backstop.json
half=$dir/half.json

echo "report_bench: making $size_mb MB of JSON log in $dir"
/usr/bin/python3 - "$log" "$size_mb" <<'PY'
import json, random, sys, time
path, size = sys.argv[1], int(sys.argv[2]) << 20
rnd = random.Random(15)
zombies = ["%d.%d.%d.%d" % (rnd.randint(1, 223), rnd.randint(0, 255), rnd.randint(0, 255),
                             rnd.randint(1, 254)) for _ in range(20000)]
runs = [("Cheap meds %d \u00e9" % i, "meds%d.example" % i) for i in range(3000)]
servers = [("198.%d.%d.%d" % (18 + i % 2, (i >> 8) & 255, i & 255), "mx%d.bouncer.example" % i)
           for i in range(4000)]
t0 = 1796601600
block = []
for i in range(20000):
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + i * 7)) + ".000Z"
    if i % 4 == 3:
        line = json.dumps({"ts": ts, "level": "info", "pid": 7, "event": "summary",
                           "session": "S%d" % i, "msg": "txn S.1 from [127.0.0.1]:1 result: x",
                           "client_ip": "127.0.0.1", "recipients": ["u@test.example"],
                           "checks": {"bounce": "fail(ndr)"}, "size": 2345}, ensure_ascii=False)
    else:
        subj, host = rnd.choice(runs)
        sip, sname = rnd.choice(servers)
        line = json.dumps({"ts": ts, "level": "info", "pid": 7, "event": "bounce_refused",
                           "session": "S%d" % i, "msg": "bounce refused: server_ip=%s ..." % sip,
                           "server_ip": sip, "server_name": sname, "helo": sname,
                           "rcpt": "user%d@test.example" % (i % 50), "sender": "",
                           "class": "ndr", "reason": "no_evidence",
                           "orig_sender": "user%d@test.example" % (i % 50),
                           "orig_client_ip": rnd.choice(zombies),
                           "message_id": "<%d.%d@test.example>" % (i, rnd.randint(0, 1 << 30)),
                           "url_hosts": [host, "cdn.example"], "subject": subj},
                          ensure_ascii=False)
        if i % 500 == 1:
            line = "Dec  7 03:40:46 mx backstop[7]: " + line
    if i % 1000 == 2:
        line = line[:len(line) // 2]
    block.append(line)
written = 0
with open(path, "w", encoding="utf-8") as f:
    day = 0
    while written < size:
        # the same lines a day later each time: new hours, same tables
        shift = time.strftime("%Y-%m-%d", time.gmtime(t0 + day * 86400))
        text = "\n".join(l.replace("2026-12-07", shift, 1) for l in block) + "\n"
        f.write(text)
        written += len(text.encode("utf-8"))
        day = (day + 1) % 30
PY
actual=$(stat -c %s "$log")
head -c $((actual / 2)) "$log" | sed '$d' > "$half"
echo "report_bench: log $((actual >> 20)) MB, $(wc -l < "$log") lines"

fail=0
run() {   # run NAME FILE FORMAT: prints seconds, MB/s, peak RSS; sets secs and rss
	local name=$1 file=$2 format=$3 out=$dir/out.$1 tv=$dir/time.$1
	if ! /usr/bin/time -v "$BACKSTOP" report --format "$format" "$file" > "$out" 2> "$tv"; then
		echo "report_bench: $name failed:"; tail -5 "$tv"; fail=1; return
	fi
	secs=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0;
		for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$tv")
	rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tv")
	local mb=$(($(stat -c %s "$file") >> 20))
	printf "%-10s %6d MB  %7.2f s  %7.1f MB/s  peak RSS %6d KB  output %d bytes\n" "$name" "$mb" \
		"$secs" "$(awk -v m="$mb" -v s="$secs" 'BEGIN { print (s > 0 ? m / s : 0) }')" "$rss" \
		"$(stat -c %s "$out")"
}
run text "$log" text; text_secs=${secs:-999}; full_rss=${rss:-0}
run csv "$log" csv
run html "$log" html
run rbldnsd "$log" rbldnsd
run half "$half" text; half_rss=${rss:-0}
sed -n 1,3p "$dir/out.text"
if [ "$size_mb" -ge 1024 ] && awk -v s="$text_secs" 'BEGIN { exit !(s >= 60) }'; then
	echo "report_bench: FAIL: the text report of $size_mb MB took $text_secs s (target < 60 s)"
	fail=1
fi
if [ "$full_rss" -gt $((half_rss + 8192)) ]; then
	echo "report_bench: FAIL: peak RSS grows with the log: $half_rss KB (half) -> $full_rss KB"
	fail=1
fi
[ "$fail" = 0 ] && echo "report_bench: ok"
exit "$fail"

#!/bin/bash
# bounce_bench.sh - the cost of the bounce check ([bounce], issue 11):
# ordinary messages straight to smtp-sink, through backstop with the check
# off, and through backstop with it on; all in one run, on the same sink.
#
# Run by hand, as root (smtp-sink runs as nobody):
#     tests/bench/bounce_bench.sh
#
# Paths (each its own backstop in front of the same sink, all on loopback;
# [spf], [dkim], [dmarc] off, [log] level warning):
#   direct   the sink itself
#   off      [bounce] mode = off (and [batv] off): content is streamed,
#            nothing reads it
#   on       [bounce] mode = enforce, unverifiable = refuse: every message
#            to [batv] domains goes through the classifier (streamed: no
#            field is ever added, so nothing is held)
#   held     [bounce] mode = observe: the same, and the message is held
#            until end of data (the mark goes on top), as it is whenever
#            DKIM or DMARC are on (their defaults)
# Messages (made here, CRLF): 2k, a 2 KB plain text message; 20m, a 20 MB
# multipart/mixed message (a text part and a 20 MB base64 attachment, what
# a large message mostly is); 20mtext, 20 MB of plain text (the worst case
# for a walker that looks at text). Each is sent from sender@example.org
# to user@test.example (in [batv] domains: the check classifies it).
# smtp_blast (smtp_blast.c) sends each message N times, one connection per
# message, CONC at once. For each (message, concurrency) BENCH_REPEAT
# rounds of direct, off, on, held; per run messages/s, latency, backstop
# CPU. Summary: best messages/s per path, ratios to direct, on/off and
# held/off, backstop CPU per message (all rounds); target: on costs at most
# 10 % over off (on/off >= 90 % in messages/s at c=50 for 2k, and for the
# 20 MB messages). Then peak RSS of "on" and "held" while one 20 MB message
# goes through (fresh backstops; the check's memory is bounded).
#
# Environment: BACKSTOP (default build/backstop, else ./backstop of this
# tree), BENCH_CASES ("2k:50 20m:4 20mtext:4": message:concurrency),
# BENCH_N_<message> (2k: 3000, 20m and 20mtext: 20), BENCH_REPEAT (3),
# BENCH_RUN_TIMEOUT (120 s a run), BENCH_MAX_TIME (900 s), BENCH_KEEP=1.
# Exit status: 0 when every run completed (targets met or not), 1 otherwise.

set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
if [ -z "${BACKSTOP:-}" ]; then
	BACKSTOP=$src/build/backstop
	[ -x "$BACKSTOP" ] || BACKSTOP=$src/backstop
fi
SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
PY=/usr/bin/python3
CASES=${BENCH_CASES:-"2k:50 20m:4 20mtext:4"}
REPEAT=${BENCH_REPEAT:-3}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-120}
MAX_TIME=${BENCH_MAX_TIME:-900}
HZ=$(getconf CLK_TCK)

die() { echo "bounce_bench: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (smtp-sink is started as nobody)"
for t in "$BACKSTOP" "$SINK" "$PY"; do
	[ -x "$t" ] || die "$t: not found or not executable"
done
for t in ss cc; do
	command -v "$t" >/dev/null || die "$t is needed"
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

work=$(mktemp -d /tmp/bounce_bench.XXXXXX) || die "mktemp failed"
chmod 755 "$work"
pids=() dog_pid=
cleanup() {
	local p
	[ -n "$dog_pid" ] && kill "$dog_pid" 2>/dev/null
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
# shared helpers: watchdog, ports, /proc readings
. "$here/bench_lib.sh"
bench_watchdog bounce_bench "$MAX_TIME"

cc -O2 -std=c17 -Wall -Wextra -o "$work/smtp_blast" "$here/smtp_blast.c" 2> "$work/cc.err" ||
    { cat "$work/cc.err" >&2; die "smtp_blast.c did not compile"; }

# ---- messages ----
"$PY" - "$work" <<'EOF' || die "making the messages failed"
import base64, os, sys
out = sys.argv[1]
WORDS = ("the quick brown fox jumps over lazy dog message content check filter "
         "spool hold relay backend signature header body hash verify domain").split()
def text(size):
    lines, n, i = [], 0, 0
    while n < size:
        w, line = i, ""
        while len(line) < 72:
            line += WORDS[w % len(WORDS)] + " "
            w = w * 7 + 3
        line = line[:72]
        if i % 50 == 49:
            line = "." + line[1:]
        lines.append(line)
        n += 74
        i += 1
    return "\r\n".join(lines) + "\r\n"
def head(label, extra=""):
    return ("From: Sender <sender@example.org>\r\nTo: <user@test.example>\r\n"
            "Subject: bounce benchmark %s\r\nDate: Mon, 07 Dec 2026 12:00:00 +0000\r\n"
            "Message-ID: <bench-%s@example.org>\r\nMIME-Version: 1.0\r\n%s" % (label, label, extra))
msgs = {
    "2k": head("2k", "Content-Type: text/plain; charset=us-ascii\r\n\r\n") + text(2048 - 300),
    "20mtext": head("20mtext", "Content-Type: text/plain; charset=us-ascii\r\n\r\n") + text(20 << 20),
}
blob = base64.encodebytes(os.urandom(15 << 20)).decode().replace("\n", "\r\n")
msgs["20m"] = head("20m", 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n') + \
    "--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" + text(2000) + \
    "--b1\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n" \
    "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment\r\n\r\n" + blob + "--b1--\r\n"
for k, v in msgs.items():
    with open(os.path.join(out, "msg-%s.eml" % k), "w", newline="") as f:
        f.write(v)
EOF
size_bytes() { stat -c %s "$work/msg-$1.eml"; }
keys=$work/batv.keys
echo "1 bench-secret-0123456789abcdef" > "$keys"
chmod 600 "$keys"

# ---- sink and backstops ----
sink_port=$(free_port) || die "no free port"
"$SINK" -u nobody -c -m 300 "127.0.0.1:$sink_port" 300 > "$work/sink.out" 2> "$work/sink.err" &
sink_pid=$!
pids+=("$sink_pid")
wait_listen "$sink_port" "$sink_pid" 10 || { cat "$work/sink.err" >&2; die "smtp-sink did not start"; }

# start_backstop NAME off|on|held: sets bs_port, bs_pid
start_backstop() {
	local name=$1 mode=$2 bounce batv
	case $mode in
	off) bounce="mode = off" batv="mode = off" ;;
	on) bounce="mode = enforce
unverifiable = refuse" batv="mode = off" ;;
	held) bounce="mode = observe" batv="mode = off" ;;
	esac
	bs_port=$(free_port) || die "no free port"
	cat > "$work/$name.ini" <<EOF
[server]
user = root
listen = 127.0.0.1:$bs_port
hostname = mx.test.example
drain_time = 2s
spool_dir = $work
state_dir = $work
[backend]
address = 127.0.0.1:$sink_port
xclient = auto
[limits]
max_connections = 20000
max_connections_per_ip = 20000
max_message_size = 64m
[dns]
servers = 127.0.0.1:9
reverse_lookup = no
[spf]
mode = off
[dkim]
mode = off
[dmarc]
mode = off
[batv]
$batv
domains = test.example
keys_file = $keys
[bounce]
$bounce
[log]
level = warning
EOF
	"$BACKSTOP" -f -c "$work/$name.ini" 2> "$work/$name.log" &
	bs_pid=$!
	pids+=("$bs_pid")
	wait_listen "$bs_port" "$bs_pid" 10 || { cat "$work/$name.log" >&2; die "backstop ($name) did not start"; }
	sleep 0.3
}
stop_pid() {
	local i
	kill -TERM "$1" 2>/dev/null
	for i in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
blast() {   # PORT MSG CONC N
	timeout "$RUN_TIMEOUT" "$work/smtp_blast" -c "$3" -n "$4" -H client.example.org \
	    -f sender@example.org -t user@test.example -T "$RUN_TIMEOUT" \
	    "127.0.0.1:$1" "$work/msg-$2.eml" > "$work/blast.out" 2> "$work/blast.err"
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$work/blast.out"; }

echo "bounce_bench: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $(nproc) CPU(s), $(uname -r)"
echo "backstop: $BACKSTOP (built $(date -u -r "$BACKSTOP" +%Y-%m-%dT%H:%M:%SZ)); load average at start: $(loadavg)"
for m in 2k 20m 20mtext; do echo "message $m: $(size_bytes $m) bytes"; done

declare -A port pid
for p in off on held; do
	start_backstop "$p" "$p"
	port[$p]=$bs_port pid[$p]=$bs_pid
done
port[direct]=$sink_port
for c in $CASES; do
	m=${c%%:*}
	blast "${port[on]}" "$m" 1 1 || { cat "$work/blast.out" "$work/blast.err" >&2; die "warm-up ($m) failed"; }
done
grep -q "bounce: " "$work/on.log" 2>/dev/null && echo "note: the on backstop logged bounce lines (warning level)"

echo
printf '%-8s %-4s %-6s %5s %8s %9s %12s %8s\n' msg conc path N wall_s msg/s p50/p95_ms bs_cpu_s
failed=0
declare -A best cpu_sum n_sum
run() {   # MSG CONC N PATH
	local m=$1 c=$2 n=$3 path=$4 p=${pid[$4]:-} c0=0 c1=0 rc
	[ -n "$p" ] && c0=$(cpu_ticks "$p")
	blast "${port[$path]}" "$m" "$c" "$n"
	rc=$?
	[ -n "$p" ] && c1=$(cpu_ticks "$p")
	printf '%-8s %-4s %-6s %5s %8s %9s %12s %8s\n' "$m" "$c" "$path" "$n" "$(field wall)" \
	    "$(awk -v n="$n" -v w="$(field wall)" 'BEGIN { if (w > 0) printf "%.2f", n / w }')" \
	    "$(field lat_ms_p50)/$(field lat_ms_p95)" \
	    "$(awk -v t=$(( c1 - c0 )) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')"
	if [ "$rc" != 0 ]; then
		echo "      ^ FAILED (exit $rc): $(cat "$work/blast.out" "$work/blast.err" | tr '\n' ' ')"
		failed=1
		return
	fi
	local key=$m/$c/$path rate
	# messages/s from the wall time (smtp_blast's own rate is a whole
	# number: too coarse for 20 MB messages)
	rate=$(awk -v n="$n" -v w="$(field wall)" 'BEGIN { if (w > 0) printf "%.2f", n / w; else print 0 }')
	awk -v a="$rate" -v b="${best[$key]:-0}" 'BEGIN { exit !(a > b) }' && best[$key]=$rate
	cpu_sum[$key]=$(( ${cpu_sum[$key]:-0} + c1 - c0 ))
	n_sum[$key]=$(( ${n_sum[$key]:-0} + n ))
}
for c in $CASES; do
	m=${c%%:*} conc=${c##*:}
	nvar=BENCH_N_$m
	n=${!nvar:-}
	[ -n "$n" ] || case $m in 2k) n=3000 ;; *) n=20 ;; esac
	for r in $(seq 1 "$REPEAT"); do
		for path in direct off on held; do
			run "$m" "$conc" "$n" "$path"
		done
	done
done

echo
echo "summary: best messages/s of $REPEAT round(s); backstop CPU per message over all rounds"
printf '%-8s %-4s %9s %9s %9s %9s %8s %8s %8s %8s %8s %9s %9s %9s\n' msg conc direct/s off/s on/s held/s \
    off/dir on/dir held/dir on/off held/off off_us on_us held_us
verdict=0
us() { awk -v t="${cpu_sum[$1]:-0}" -v n="${n_sum[$1]:-1}" -v hz="$HZ" 'BEGIN { printf "%.0f", 1e6 * t / hz / n }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", 100 * a / b; else print "-" }'; }
for c in $CASES; do
	m=${c%%:*} conc=${c##*:}
	d=${best[$m/$conc/direct]:-0} o=${best[$m/$conc/off]:-0} a=${best[$m/$conc/on]:-0} h=${best[$m/$conc/held]:-0}
	printf '%-8s %-4s %9s %9s %9s %9s %7s%% %7s%% %7s%% %7s%% %7s%% %9s %9s %9s\n' "$m" "$conc" "$d" "$o" "$a" "$h" \
	    "$(pct "$o" "$d")" "$(pct "$a" "$d")" "$(pct "$h" "$d")" "$(pct "$a" "$o")" "$(pct "$h" "$o")" \
	    "$(us "$m/$conc/off")" "$(us "$m/$conc/on")" "$(us "$m/$conc/held")"
	r=$(pct "$a" "$o")
	if awk -v r="$r" 'BEGIN { exit !(r >= 90) }'; then res=PASS; else res=FAIL verdict=1; fi
	echo "  target $m c=$conc: on >= 90 % of off in messages/s: $r %: $res;" \
	    "CPU per message on - off: $(( $(us "$m/$conc/on") - $(us "$m/$conc/off") )) us" \
	    "($(pct "$(( $(us "$m/$conc/on") - $(us "$m/$conc/off") ))" "$(us "$m/$conc/off")") % of off)"
done
echo "peak RSS (VmHWM) over the runs: off $(mb "$(vm "${pid[off]}" VmHWM)") MB, on $(mb "$(vm "${pid[on]}" VmHWM)") MB, held $(mb "$(vm "${pid[held]}" VmHWM)") MB"
for p in off on held; do stop_pid "${pid[$p]}"; done

# ---- memory with one 20 MB message, fresh backstops ----
echo
echo "memory: one 20 MB message (20mtext, then 20m) through a fresh backstop each"
printf '%-6s %-8s %14s %14s\n' path msg rss_before_MB hwm_after_MB
for p in on held; do
	for m in 20mtext 20m; do
		start_backstop "mem-$p" "$p"
		blast "$bs_port" 2k 1 1 || die "warm-up failed"
		before=$(vm "$bs_pid" VmRSS)
		blast "$bs_port" "$m" 1 1 || { cat "$work/blast.err" >&2; failed=1; }
		printf '%-6s %-8s %14s %14s\n' "$p" "$m" "$(mb "$before")" "$(mb "$(vm "$bs_pid" VmHWM)")"
		stop_pid "$bs_pid"
	done
done

echo
echo "load average at end: $(loadavg)"
[ "$verdict" = 0 ] && echo "targets: met" || echo "targets: MISSED"
[ "$failed" = 0 ] || { echo "bounce_bench: some runs failed" >&2; exit 1; }
exit 0

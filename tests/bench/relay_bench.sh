#!/bin/bash
# relay_bench.sh - messages/s straight to smtp-sink versus through backstop.
#
# One smtp-sink is started on loopback; backstop is started in front of it.
# For each concurrency (default 1, 50, 500) smtp-source sends N messages
# straight to the sink, then the same N through backstop, with the very same
# smtp-source flags (BENCH_REPEAT times, alternating). Printed per run:
# messages/s, backstop's CPU seconds for the run (utime+stime from
# /proc/PID/stat), its peak RSS so far (VmHWM) and the connections the sink
# saw (its -c counters; through backstop these are backstop's backend
# connections). Then a summary with the ratio via/direct and the targets:
#   concurrency 50: via >= 45% of direct;  concurrency 1: via >= 40% of direct.
#
# Run by hand, not from make check:   tests/bench/relay_bench.sh
# Environment (all optional):
#   BACKSTOP            backstop binary (default: build/backstop of this tree)
#   BENCH_CONCURRENCY   "1 50 500"
#   BENCH_N_<conc>      messages per run at that concurrency
#                       (defaults: N_1=2000, N_50=4000, N_500=4000)
#   BENCH_N             messages per run for every concurrency (overrides)
#   BENCH_SIZE          message body bytes, smtp-source -l (4096)
#   BENCH_REPEAT        direct/via pairs per concurrency (3); the summary
#                       uses the best (highest) messages/s of each side
#   BENCH_REUSE         1: smtp-source -d, all messages of a session over one
#                       connection; 0 (default): one connection per message
#   BENCH_LOG_LEVEL     backstop [log] level (warning)
#   BENCH_XCLIENT       backstop [backend] xclient = auto|on|off (auto)
#   BENCH_POOL_SIZE     backstop [backend] pool_size (32; 0 = no connection
#                       pool: every client session opens its own)
#   BENCH_DNS_CACHE_SIZE backstop [dns] cache_size (10000; 0 = every client's
#                       reverse lookup goes through libunbound)
#   BENCH_RUN_TIMEOUT   seconds one smtp-source run may take (120)
#   BENCH_MAX_TIME      seconds the whole script may take (900)
#   BENCH_KEEP          1: keep the work directory (logs, config)
#
# Exit status: 0 when every run completed (whether or not targets are met),
# 1 when something failed to start or a run failed.
#
# Note on connection churn: without -d every message is a new TCP connection
# (two through backstop). The sink's port sees 2*N connections per pair, each
# leaving a TIME_WAIT for 60 s; keep the total per minute well below the
# ephemeral port range (ip_local_port_range, ~28000 by default) or connects
# start to collide with TIME_WAIT entries. The defaults stay below it.

set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
BACKSTOP=${BACKSTOP:-$here/../../build/backstop}
SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
CONCS=${BENCH_CONCURRENCY:-"1 50 500"}
SIZE=${BENCH_SIZE:-4096}
REPEAT=${BENCH_REPEAT:-3}
REUSE=${BENCH_REUSE:-0}
LOG_LEVEL=${BENCH_LOG_LEVEL:-warning}
XCLIENT=${BENCH_XCLIENT:-auto}
POOL_SIZE=${BENCH_POOL_SIZE:-32}
DNS_CACHE_SIZE=${BENCH_DNS_CACHE_SIZE:-10000}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-120}
MAX_TIME=${BENCH_MAX_TIME:-900}
HZ=$(getconf CLK_TCK)

die() { echo "relay_bench: $*" >&2; exit 1; }

for t in "$BACKSTOP" "$SINK" "$SOURCE"; do
	[ -x "$t" ] || die "$t: not found or not executable"
done
command -v ss >/dev/null || die "ss (iproute2) is needed"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

work=$(mktemp -d /tmp/relay_bench.XXXXXX) || die "mktemp failed"
sink_pid= bs_pid= dog_pid= src_pid=
cleanup() {
	[ -n "$src_pid" ] && kill "$src_pid" 2>/dev/null
	[ -n "$dog_pid" ] && kill "$dog_pid" 2>/dev/null
	[ -n "$bs_pid" ] && kill -TERM "$bs_pid" 2>/dev/null
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
	wait 2>/dev/null
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
# the whole script is bounded: a watchdog sends it SIGTERM after
# BENCH_MAX_TIME (bench_lib.sh; it keeps no descriptor of ours open, so a
# pipe reading our output sees EOF when we end); ports and /proc readings
. "$here/bench_lib.sh"
bench_watchdog relay_bench "$MAX_TIME"
now() { date +%s.%N; }
# sink_sessions: sessions the sink has seen so far (its -c counter line)
sink_sessions() {
	tr '\r' '\n' < "$work/sink.out" | awk -F'[ =]' '/^sess=/ { s = $2 } END { print s + 0 }'
}
sink_messages() {
	tr '\r' '\n' < "$work/sink.out" | awk -F'[ =]' '/^sess=/ { m = $6 } END { print m + 0 }'
}
# the sink updates its counters when a session ends: let it settle
sink_settle() {
	local a b i
	a=$(sink_sessions)
	for i in $(seq 1 40); do
		sleep 0.05
		b=$(sink_sessions)
		[ "$a" = "$b" ] && return 0
		a=$b
	done
}

maxconc=1
for c in $CONCS; do [ "$c" -gt "$maxconc" ] && maxconc=$c; done

# ---- smtp-sink ----
sink_port=$(free_port) || die "no free port"
sink_user=()
[ "$(id -u)" = 0 ] && sink_user=(-u nobody)   # smtp-sink refuses to run as root
# -c: counters (sessions, messages) on stdout; -m: accept up to twice the
# concurrency at once (client sessions and backstop's backend connections
# during a switch-over); backlog as large as that.
"$SINK" "${sink_user[@]}" -c -m $(( maxconc * 2 + 64 )) "127.0.0.1:$sink_port" $(( maxconc * 2 + 64 )) \
    > "$work/sink.out" 2> "$work/sink.err" &
sink_pid=$!
wait_listen "$sink_port" "$sink_pid" 10 || { cat "$work/sink.err" >&2; die "smtp-sink did not start"; }

# ---- backstop ----
bs_port=$(free_port) || die "no free port"
cat > "$work/backstop.ini" <<EOF
[server]
user = root
listen = 127.0.0.1:$bs_port
hostname = mx.test.example
drain_time = 2s
[backend]
address = 127.0.0.1:$sink_port
xclient = $XCLIENT
pool_size = $POOL_SIZE
[limits]
max_connections = 20000
max_connections_per_ip = 20000
[dns]
cache_size = $DNS_CACHE_SIZE
[spf]
# no DNS traffic: the benchmark stays on loopback
mode = off
[log]
level = $LOG_LEVEL
EOF
"$BACKSTOP" -f -c "$work/backstop.ini" 2> "$work/backstop.log" &
bs_pid=$!
wait_listen "$bs_port" "$bs_pid" 10 || { cat "$work/backstop.log" >&2; die "backstop did not start"; }
# the startup probe (one EHLO/QUIT connection to the sink) must be over
# before the first measurement
for i in $(seq 1 40); do [ "$(sink_sessions)" -ge 1 ] && break; sleep 0.05; done
sink_settle

src_flags=(-l "$SIZE" -f a@example.org -t b@example.org -M client.example.org)
[ "$REUSE" = 1 ] && src_flags+=(-d)

echo "relay_bench: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $(nproc) CPU(s), $(uname -r)"
echo "backstop: $BACKSTOP (built $(date -u -r "$BACKSTOP" +%Y-%m-%dT%H:%M:%SZ); pid $bs_pid, listening 127.0.0.1:$bs_port)"
echo "smtp-sink: 127.0.0.1:$sink_port (pid $sink_pid); startup probe: $(sink_sessions) sink connection(s), excluded below"
echo "smtp-source flags: -s CONC -m N ${src_flags[*]}" \
    "($([ "$REUSE" = 1 ] && echo "sessions reuse their connection" || echo "one connection per message"))"
echo "backstop: log level $LOG_LEVEL, xclient $XCLIENT, pool_size $POOL_SIZE, spf off; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-5s %-6s %6s %8s %8s %7s %8s %7s %9s %8s %10s %9s\n' \
    conc path N wall_s msg/s ratio bs_cpu_s bs_cpu% peak_rss sink_cpu sink_conns sink_msgs
failed=0
declare -A best_direct best_via ratios cpu_via msgs_via conns_via
last_direct=

# run CONC N PORT PATHNAME
run() {
	local c=$1 n=$2 port=$3 path=$4 t0 t1 c0 c1 k0 k1 s0 s1 m0 m1 rc wall rate cpu kcpu hwm ratio=-
	s0=$(sink_sessions); m0=$(sink_messages)
	c0=$(cpu_ticks "$bs_pid"); k0=$(cpu_ticks "$sink_pid")
	t0=$(now)
	# in the background: a signal (the watchdog) interrupts the wait at once
	timeout "$RUN_TIMEOUT" "$SOURCE" -s "$c" -m "$n" "${src_flags[@]}" "127.0.0.1:$port" \
	    > "$work/source.out" 2>&1 &
	src_pid=$!
	wait "$src_pid"
	rc=$?
	src_pid=
	t1=$(now)
	c1=$(cpu_ticks "$bs_pid"); k1=$(cpu_ticks "$sink_pid")
	sink_settle
	s1=$(sink_sessions); m1=$(sink_messages)
	hwm=$(vm "$bs_pid" VmHWM)
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	rate=$(awk -v n="$n" -v w="$wall" 'BEGIN { printf "%.0f", n / w }')
	# backstop's CPU in the run (direct runs: it is idle, ~0) and the sink's
	cpu=$(awk -v t=$(( c1 - c0 )) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
	kcpu=$(awk -v t=$(( k1 - k0 )) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
	[ "$path" = via ] && [ -n "$last_direct" ] &&
	    ratio=$(awk -v d="$last_direct" -v v="$rate" 'BEGIN { printf "%.1f%%", 100 * v / d }')
	printf '%-5s %-6s %6s %8s %8s %7s %8s %6.0f%% %7.1fMB %8s %10s %9s\n' \
	    "$c" "$path" "$n" "$wall" "$rate" "$ratio" "$cpu" \
	    "$(awk -v c="$cpu" -v w="$wall" 'BEGIN { print 100 * c / w }')" \
	    "$(awk -v k="$hwm" 'BEGIN { print k / 1024 }')" "$kcpu" $(( s1 - s0 )) $(( m1 - m0 ))
	if [ "$rc" != 0 ] || [ $(( m1 - m0 )) -lt "$n" ]; then
		echo "      ^ FAILED: smtp-source exit $rc, sink got $(( m1 - m0 ))/$n messages:" \
		    "$(tail -n 2 "$work/source.out" | tr '\n' ' ')"
		failed=1
		last_direct=
		return
	fi
	if [ "$path" = direct ]; then
		last_direct=$rate
		awk -v a="$rate" -v b="${best_direct[$c]:-0}" 'BEGIN { exit !(a > b) }' && best_direct[$c]=$rate
	else
		awk -v a="$rate" -v b="${best_via[$c]:-0}" 'BEGIN { exit !(a > b) }' && best_via[$c]=$rate
		[ "$ratio" != - ] && ratios[$c]="${ratios[$c]:-} ${ratio%\%}"
		cpu_via[$c]=$(( ${cpu_via[$c]:-0} + c1 - c0 ))
		msgs_via[$c]=$(( ${msgs_via[$c]:-0} + n ))
		conns_via[$c]=$(( ${conns_via[$c]:-0} + s1 - s0 ))
		last_direct=
	fi
}

for c in $CONCS; do
	nvar=BENCH_N_$c
	n=${BENCH_N:-${!nvar:-}}
	if [ -z "$n" ]; then
		case $c in 1) n=2000 ;; *) n=4000 ;; esac
	fi
	for r in $(seq 1 "$REPEAT"); do
		run "$c" "$n" "$sink_port" direct
		run "$c" "$n" "$bs_port" via
		kill -0 "$bs_pid" 2>/dev/null || { echo "backstop died:" >&2; tail "$work/backstop.log" >&2; exit 1; }
	done
done

total_cpu=$(awk -v t="$(cpu_ticks "$bs_pid")" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
hwm=$(vm "$bs_pid" VmHWM)
kill -TERM "$bs_pid"
for i in $(seq 1 100); do kill -0 "$bs_pid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$bs_pid" 2>/dev/null && { kill -KILL "$bs_pid"; echo "backstop did not stop on SIGTERM" >&2; failed=1; }
wait "$bs_pid" 2>/dev/null
bs_pid=
bs_total=$(sed -n 's/.*stopped; \([0-9]*\) backend connection(s) opened in total.*/\1/p' "$work/backstop.log")

echo
echo "summary, ${SIZE}-byte messages, $REPEAT direct/via pair(s) per concurrency:"
echo "  best = highest messages/s of each side; ratio = best via / best direct (judged);"
echo "  pair median = median of the via/direct ratios of adjacent pairs; us/msg = backstop CPU per message"
printf '%-5s %9s %9s %7s %8s %12s %7s %9s  %s\n' conc direct/s via/s ratio target "pair median" us/msg be_conns result
verdict=0
for c in $CONCS; do
	d=${best_direct[$c]:-} v=${best_via[$c]:-}
	if [ -z "$d" ] || [ -z "$v" ]; then
		printf '%-5s %9s %9s %7s %8s %12s %7s %9s  %s\n' "$c" "${d:--}" "${v:--}" - - - - - "no result"
		verdict=1
		continue
	fi
	ratio=$(awk -v d="$d" -v v="$v" 'BEGIN { printf "%.1f%%", 100 * v / d }')
	med=$(echo ${ratios[$c]:-} | tr ' ' '\n' | sort -g |
	    awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) printf "%.1f%%", a[(NR + 1) / 2];
	        else printf "%.1f%%", (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
	us=$(awk -v t="${cpu_via[$c]}" -v hz="$HZ" -v n="${msgs_via[$c]}" 'BEGIN { printf "%.0f", 1e6 * t / hz / n }')
	case $c in 1) tgt=40 ;; 50) tgt=45 ;; *) tgt= ;; esac
	if [ -n "$tgt" ]; then
		if awk -v d="$d" -v v="$v" -v t="$tgt" 'BEGIN { exit !(100 * v / d >= t) }'; then res=PASS
		else res=FAIL; verdict=1; fi
		tgts=">=$tgt%"
	else
		res="(no target)" tgts=-
	fi
	printf '%-5s %9s %9s %7s %8s %12s %7s %9s  %s\n' "$c" "$d" "$v" "$ratio" "$tgts" "$med" "$us" \
	    "${conns_via[$c]}" "$res"
done
echo
echo "backstop: ${total_cpu} CPU s in total (all runs), peak RSS (VmHWM) $(awk -v k="$hwm" 'BEGIN { printf "%.1f MB", k / 1024 }')"
echo "backend connections: be_conns = sessions the sink saw during the via runs (the startup probe excluded);" \
    "backstop's own count at exit: ${bs_total:-"not logged ([log] level = info logs it)"}"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$verdict" = 0 ] && echo "targets: met" || echo "targets: MISSED"
[ "$failed" = 0 ] || { echo "relay_bench: some runs failed" >&2; exit 1; }
exit 0

#!/bin/bash
# content_bench.sh - DKIM-signed messages straight to smtp-sink versus through
# backstop with SPF, DKIM and DMARC off, versus all three on; and backstop's
# memory while one 50 MB message goes through.
#
# Run by hand, as root (the client lives in a network namespace):
#     tests/bench/content_bench.sh
#
# One run, all on the same machine state:
#  * a client network namespace joined by a veth pair (a free /30 in
#    198.51.100.0/24, host side .1, client .2): SPF does not check loopback
#    clients, so the client must not be one;
#  * tests/lib/dns_server.py on 127.0.0.1 serving a zone made by
#    content_fixtures.py (DKIM key, SPF for example.org and the HELO name,
#    _dmarc.example.org; one-day TTLs);
#  * one smtp-sink on the host side of the veth;
#  * two backstops in front of it on the host side: "off" ([spf], [dkim],
#    [dmarc] mode = off; messages are streamed) and "on" (all three in
#    annotate mode; messages are held until end of data). Both have
#    [dns] reverse_lookup = no (the client's name is not what is measured).
#  * smtp_blast (smtp_blast.c, compiled here) in the namespace sends one
#    prepared DKIM-signed message (content_fixtures.py) N times, a new
#    connection per message, CONC at once.
# Before the measurement, one message of each size goes through "on" to a
# second sink that keeps what it receives (-D): the script checks that
# backstop added spf=pass, dkim=pass and dmarc=pass, and that first message
# fills backstop's resolver cache. DNS queries are counted during the
# measured runs (they must be 0: "DNS cached").
#
# For each size (2k, 100k) and concurrency (1, 50), BENCH_REPEAT rounds of
# direct, off, on. Printed per run: messages/s, latency p50/p95, the CPU
# seconds of backstop, of the sink and of the generator in the run
# (utime+stime from /proc/PID/stat; the generator's own getrusage), DNS
# queries. The summary takes the best messages/s of each path and the CPU
# per message summed over all rounds, and judges the targets:
#   all on >= 40 % of direct at concurrency 50, for 2 KB and for 100 KB;
#   backstop CPU per 2 KB message (all on) <= 2 x the floor, the floor being
#   one RSA-2048 verification plus SHA-256 over the message, both from
#   `openssl speed` on this machine in this run. Shown both ways: the total
#   CPU per message, and the increment of "on" over "off".
# Then the memory test: a fresh "on" backstop (max_message_size 64m) and a
# fresh "off" one, one 50 MB message each; VmRSS sampled every 20 ms during
# the transfer, VmHWM after it, and the RSS before.
#
# Environment (all optional):
#   BACKSTOP           backstop binary (default: build/backstop of this tree)
#   BACKSTOP_B         a second binary, for an A/B comparison within one run:
#                      a third backstop, all on, runs it and is measured in
#                      every round right after "on" (path "on-b"); the
#                      summary adds its us/msg and messages/s (not judged)
#   BENCH_SIZES        "2k 100k"
#   BENCH_CONCURRENCY  "1 50"
#   BENCH_N_<size>_<conc>  messages per run (defaults: 2k: 600 at c=1,
#                      3000 at c=50; 100k: 300 at c=1, 1500 at c=50)
#   BENCH_REPEAT       rounds (3)
#   BENCH_BIG          size of the memory test message (50m); 0: skip it
#   BENCH_RUN_TIMEOUT  seconds one generator run may take (120)
#   BENCH_MAX_TIME     seconds the whole script may take (900)
#   BENCH_KEEP         1: keep the work directory
# Exit status: 0 when every run completed (whether or not targets are met),
# 1 when something failed to start, a run failed or a check failed.

set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
BACKSTOP=${BACKSTOP:-$src/build/backstop}
SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
PY=/usr/bin/python3
SIZES=${BENCH_SIZES:-"2k 100k"}
CONCS=${BENCH_CONCURRENCY:-"1 50"}
REPEAT=${BENCH_REPEAT:-3}
BIG=${BENCH_BIG:-50m}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-120}
MAX_TIME=${BENCH_MAX_TIME:-900}
HZ=$(getconf CLK_TCK)
NETNS_LOCK=/run/backstop-tests-netns.lock

die() { echo "content_bench: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (the client needs a network namespace)"
for t in "$BACKSTOP" "$SINK" "$PY"; do
	[ -x "$t" ] || die "$t: not found or not executable"
done
for t in ip ss cc openssl flock; do
	command -v "$t" >/dev/null || die "$t is needed"
done
"$PY" -c 'import dkim, dnslib' 2>/dev/null || die "$PY needs python3-dkim and python3-dnslib"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

work=$(mktemp -d /tmp/content_bench.XXXXXX) || die "mktemp failed"
chmod 755 "$work"
ns= vh= pids=() dog_pid=
cleanup() {
	local p
	[ -n "$dog_pid" ] && kill "$dog_pid" 2>/dev/null
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	if [ -n "$ns" ]; then
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	fi
	wait 2>/dev/null
	[ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
	[ -n "$vh" ] && ip link del "$vh" 2>/dev/null
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
# shared helpers: watchdog, ports, /proc readings
. "$here/bench_lib.sh"
bench_watchdog content_bench "$MAX_TIME"
size_bytes() { stat -c %s "$work/msg-$1.eml"; }

# ---- the generator ----
cc -O2 -std=c17 -Wall -Wextra -o "$work/smtp_blast" "$here/smtp_blast.c" 2> "$work/cc.err" ||
    { cat "$work/cc.err" >&2; die "smtp_blast.c did not compile"; }

# ---- client namespace: a free /30 in 198.51.100.0/24 (the lock and the
# choice are those of tests/lib/harness.py's Netns, so parallel tests and
# this script do not take the same addresses) ----
tag=$(printf '%05x' $(( $$ & 0xfffff )))
ns=bsb-$tag vh=bbh$tag vn=bbn$tag
exec 9>>"$NETNS_LOCK"
flock 9
used=$(ip -o -4 addr | grep -o 'inet 198\.51\.100\.[0-9]*/' | sed 's/inet //; s/\/$//')
host_addr= cli_addr=
for k in $(seq 0 63); do
	h=198.51.100.$(( 4 * k + 1 ))
	if ! grep -qx "$h" <<< "$used"; then host_addr=$h cli_addr=198.51.100.$(( 4 * k + 2 )); break; fi
done
[ -n "$host_addr" ] || die "no free /30 in 198.51.100.0/24"
ip netns add "$ns" || die "ip netns add failed"
ip link add "$vh" type veth peer name "$vn" &&
ip link set "$vn" netns "$ns" &&
ip addr add "$host_addr/30" dev "$vh" &&
ip link set "$vh" up &&
ip -n "$ns" addr add "$cli_addr/30" dev "$vn" &&
ip -n "$ns" link set "$vn" up &&
ip -n "$ns" link set lo up || die "setting up the veth pair failed"
flock -u 9
exec 9>&-
# The client opens a connection per message: in its own namespace (these
# settings are per namespace) it may reuse TIME_WAIT ports and has the
# whole port range.
ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="10000 65000" ||
    die "sysctl in the namespace failed"
for i in $(seq 1 60); do
	ip link show "$vh" | grep -q LOWER_UP && break
	sleep 0.05
done
inns() { ip netns exec "$ns" "$@"; }

# ---- fixtures, DNS ----
fx_sizes="$SIZES"
[ "$BIG" != 0 ] && fx_sizes="$fx_sizes $BIG"
"$PY" "$here/content_fixtures.py" "$work" $fx_sizes > "$work/fixtures.out" 2>&1 ||
    { cat "$work/fixtures.out" >&2; die "content_fixtures.py failed"; }
"$PY" "$src/tests/lib/dns_server.py" --port 0 --log "$work/dns.log" "$work/bench.zone" \
    > "$work/dns.out" 2> "$work/dns.err" &
pids+=($!)
for i in $(seq 1 100); do grep -q '^ready ' "$work/dns.out" && break; sleep 0.05; done
dns_port=$(awk '/^ready / { print $2 }' "$work/dns.out")
[ -n "$dns_port" ] || { cat "$work/dns.err" >&2; die "dns_server.py did not start"; }
dns_queries() { [ -f "$work/dns.log" ] && wc -l < "$work/dns.log" || echo 0; }

# ---- sinks ----
# start_sink NAME [smtp-sink options]: sets sink_port, sink_pid
start_sink() {
	local name=$1
	shift
	sink_port=$(free_port) || die "no free port"
	"$SINK" -u nobody "$@" -c -m 300 "$host_addr:$sink_port" 300 \
	    > "$work/$name.out" 2> "$work/$name.err" &
	sink_pid=$!
	pids+=("$sink_pid")
	wait_listen "$sink_port" "$sink_pid" 10 || { cat "$work/$name.err" >&2; die "smtp-sink ($name) did not start"; }
}

# ---- backstops ----
# start_backstop NAME on|off BACKEND_PORT [extra ini lines]: sets bs_port, bs_pid
start_backstop() {
	local name=$1 mode=$2 be=$3 extra=${4:-}
	bs_port=$(free_port) || die "no free port"
	[ "$mode" = on ] && mode=annotate
	cat > "$work/$name.ini" <<EOF
[server]
user = root
listen = $host_addr:$bs_port
hostname = mx.test.example
drain_time = 2s
spool_dir = $work
[backend]
address = $host_addr:$be
xclient = auto
[limits]
max_connections = 20000
max_connections_per_ip = 20000
$extra
[dns]
servers = 127.0.0.1:$dns_port
timeout = 2s
reverse_lookup = no
[spf]
mode = $mode
[dkim]
mode = $mode
[dmarc]
mode = $mode
[log]
level = warning
EOF
	"${bs_bin:-$BACKSTOP}" -f -c "$work/$name.ini" 2> "$work/$name.log" &
	bs_pid=$!
	pids+=("$bs_pid")
	wait_listen "$bs_port" "$bs_pid" 10 || { cat "$work/$name.log" >&2; die "backstop ($name) did not start"; }
	sleep 0.3   # its startup probe of the backend
}
stop_pid() {
	local i
	kill -TERM "$1" 2>/dev/null
	for i in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
# blast PORT SIZE CONC N: runs the generator in the namespace; its output
# line in $work/blast.out
blast() {
	inns timeout "$RUN_TIMEOUT" "$work/smtp_blast" -c "$3" -n "$4" -H client.example.org \
	    -f sender@example.org -t user@test.example -T "$RUN_TIMEOUT" \
	    "$host_addr:$1" "$work/msg-$2.eml" > "$work/blast.out" 2> "$work/blast.err"
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$work/blast.out"; }

echo "content_bench: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $(nproc) CPU(s), $(uname -r)"
echo "backstop: $BACKSTOP (built $(date -u -r "$BACKSTOP" +%Y-%m-%dT%H:%M:%SZ))"
echo "client $cli_addr (namespace $ns) -> $host_addr; DNS 127.0.0.1:$dns_port; load average at start: $(loadavg)"
sed 's/^/fixture: /' "$work/fixtures.out"

# ---- check: "on" really checks (a sink that keeps the content) ----
mkdir -m 1777 "$work/checked"   # smtp-sink writes there as nobody
start_sink checksink -d "$work/checked/m."
check_sink_pid=$sink_pid
start_backstop check on "$sink_port"
check_bs_pid=$bs_pid
ok_check=1
for s in $SIZES; do
	rm -f "$work"/checked/*
	blast "$bs_port" "$s" 1 1 || { cat "$work/blast.out" "$work/blast.err" >&2; die "check message ($s) failed"; }
	for i in $(seq 1 40); do cat "$work"/checked/* 2>/dev/null | grep -q '^Authentication-Results' && break; sleep 0.05; done
	cat "$work"/checked/* > "$work/checked.eml" 2>/dev/null
	ar=$(sed -n '/^Authentication-Results:/,/^[^ \t]/p' "$work/checked.eml" | sed '$d' | tr -s ' \t\r\n' ' ')
	for want in spf=pass dkim=pass dmarc=pass; do
		case $ar in *"$want"*) ;; *) ok_check=0 ;; esac
	done
	echo "check ($s, all on): ${ar:-no Authentication-Results field}"
	# the copy the sink got (held, and past data_buffer for 100k: through
	# the spool file) is the message sent, byte for byte, below the fields
	# backstop and the sink put on top (smtp-sink's dump has LF line ends
	# and one empty line after the message)
	"$PY" -c '
import sys
got = open(sys.argv[1], "rb").read().replace(b"\n", b"\r\n")
sent = open(sys.argv[2], "rb").read()
got = got[got.find(b"DKIM-Signature:"):]
sys.exit(0 if got in (sent, sent + b"\r\n") else 1)
' "$work/checked.eml" "$work/msg-$s.eml" && echo "check ($s): the delivered copy is the message sent, byte for byte" ||
	    { echo "check ($s): the delivered copy DIFFERS from the message sent"; ok_check=0; }
done
[ "$ok_check" = 1 ] || die "the \"on\" backstop did not give spf=pass dkim=pass dmarc=pass, or changed the message"
stop_pid "$check_bs_pid"
stop_pid "$check_sink_pid"

# ---- the floor: openssl on this machine, now ----
openssl speed -seconds 3 rsa2048 > "$work/rsa.out" 2>/dev/null
verify_s=$(awk '/^rsa 2048 bits/ { print $NF }' "$work/rsa.out")
declare -A sha_kbs floor_us
for s in $SIZES; do
	b=$(size_bytes "$s")
	openssl speed -seconds 3 -bytes "$b" sha256 > "$work/sha-$s.out" 2>/dev/null
	# the last line: "sha256  NNNN.NNk" (1000s of bytes per second)
	sha_kbs[$s]=$(awk '/^sha256/ { v = $NF; sub(/k$/, "", v); print v }' "$work/sha-$s.out" | tail -n 1)
	floor_us[$s]=$(awk -v v="$verify_s" -v k="${sha_kbs[$s]}" -v b="$b" \
	    'BEGIN { printf "%.1f", 1e6 / v + 1e6 * b / (k * 1000) }')
	echo "floor ($s = $b bytes): RSA-2048 verify $(awk -v v="$verify_s" 'BEGIN { printf "%.1f", 1e6 / v }') us" \
	    "($verify_s verify/s) + SHA-256 $(awk -v k="${sha_kbs[$s]}" -v b="$b" 'BEGIN { printf "%.1f", 1e6 * b / (k * 1000) }') us" \
	    "(${sha_kbs[$s]} kB/s) = ${floor_us[$s]} us"
done

# ---- the measured setup ----
start_sink sink
main_sink_port=$sink_port main_sink_pid=$sink_pid
start_backstop off off "$main_sink_port"
off_port=$bs_port off_pid=$bs_pid
start_backstop on on "$main_sink_port"
on_port=$bs_port on_pid=$bs_pid
paths="direct off on"
onb_pid=
if [ -n "${BACKSTOP_B:-}" ]; then
	[ -x "$BACKSTOP_B" ] || die "$BACKSTOP_B: not found or not executable"
	bs_bin=$BACKSTOP_B start_backstop on-b on "$main_sink_port"
	onb_port=$bs_port onb_pid=$bs_pid
	paths="direct off on on-b"
	echo "backstop B (path on-b): $BACKSTOP_B"
fi
# warm-up: every size once through each (fills the "on" resolver cache)
for s in $SIZES; do
	blast "$off_port" "$s" 1 5 && blast "$on_port" "$s" 1 5 &&
	    { [ -z "$onb_pid" ] || blast "$onb_port" "$s" 1 5; } ||
	    { cat "$work/blast.out" "$work/blast.err" >&2; die "warm-up ($s) failed"; }
done
echo "warm-up done: $(dns_queries) DNS queries so far (the measured runs must add none)"
echo
printf '%-5s %-4s %-6s %5s %7s %7s %12s %8s %8s %8s %8s %6s\n' \
    size conc path N wall_s msg/s p50/p95_ms bs_cpu_s sink_cpu gen_cpu gen/bs dnsq
failed=0
declare -A best cpu_sum n_sum gen_sum summary_on summary_inc ratio_on
load_runs=

run() {   # SIZE CONC N PATH
	local s=$1 c=$2 n=$3 path=$4 port pid= c0=0 c1=0 k0 k1 q0 q1 rc rate wall bcpu kcpu gcpu
	case $path in direct) port=$main_sink_port ;; off) port=$off_port pid=$off_pid ;; on) port=$on_port pid=$on_pid ;; on-b) port=$onb_port pid=$onb_pid ;; esac
	[ -n "$pid" ] && c0=$(cpu_ticks "$pid")
	k0=$(cpu_ticks "$main_sink_pid"); q0=$(dns_queries)
	blast "$port" "$s" "$c" "$n"
	rc=$?
	[ -n "$pid" ] && c1=$(cpu_ticks "$pid")
	k1=$(cpu_ticks "$main_sink_pid"); q1=$(dns_queries)
	load_runs="$load_runs $(cut -d' ' -f1 /proc/loadavg)"
	wall=$(field wall); rate=$(field rate)
	bcpu=$(awk -v t=$(( c1 - c0 )) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
	kcpu=$(awk -v t=$(( k1 - k0 )) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
	gcpu=$(awk -v u="$(field cpu_user)" -v s="$(field cpu_sys)" 'BEGIN { printf "%.2f", u + s }')
	printf '%-5s %-4s %-6s %5s %7s %7s %12s %8s %8s %8s %8s %6s\n' "$s" "$c" "$path" "$n" "${wall:--}" "${rate:--}" \
	    "$(field lat_ms_p50)/$(field lat_ms_p95)" "$bcpu" "$kcpu" "$gcpu" \
	    "$(awk -v g="$gcpu" -v b="$bcpu" 'BEGIN { if (b > 0) printf "%.2f", g / b; else print "-" }')" $(( q1 - q0 ))
	if [ "$rc" != 0 ]; then
		echo "      ^ FAILED (exit $rc): $(cat "$work/blast.out" "$work/blast.err" | tr '\n' ' ')"
		failed=1
		return
	fi
	[ $(( q1 - q0 )) = 0 ] || [ "$path" = direct ] || echo "      ^ note: $(( q1 - q0 )) DNS queries during the run (not cached?)"
	local key=$s/$c/$path
	awk -v a="$rate" -v b="${best[$key]:-0}" 'BEGIN { exit !(a > b) }' && best[$key]=$rate
	cpu_sum[$key]=$(( ${cpu_sum[$key]:-0} + c1 - c0 ))
	n_sum[$key]=$(( ${n_sum[$key]:-0} + n ))
	gen_sum[$key]=$(awk -v a="${gen_sum[$key]:-0}" -v g="$gcpu" 'BEGIN { print a + g }')
}

for s in $SIZES; do
	for c in $CONCS; do
		nvar=BENCH_N_${s}_$c
		n=${!nvar:-}
		if [ -z "$n" ]; then
			case $s/$c in 2k/1) n=600 ;; 2k/*) n=3000 ;; */1) n=300 ;; *) n=1500 ;; esac
		fi
		for r in $(seq 1 "$REPEAT"); do
			for path in $paths; do
				run "$s" "$c" "$n" "$path"
			done
			for p in "$off_pid" "$on_pid" $onb_pid; do
				kill -0 "$p" 2>/dev/null || { echo "a backstop died:" >&2; tail "$work"/o*.log >&2; exit 1; }
			done
		done
	done
done
off_hwm=$(vm "$off_pid" VmHWM) on_hwm=$(vm "$on_pid" VmHWM)

echo
echo "summary: best messages/s of $REPEAT round(s) per path; CPU per message = CPU over all rounds / messages"
echo "(us/msg: backstop's, gen us/msg: the generator's; floor: RSA-2048 verify + SHA-256 of the message)"
printf '%-5s %-4s %9s %9s %9s %8s %8s %10s %10s %11s %11s %7s\n' \
    size conc direct/s off/s on/s off/dir on/dir off_us/msg on_us/msg on-off_us gen_us/msg floor_us
verdict=0
us() { awk -v t="${cpu_sum[$1]:-0}" -v n="${n_sum[$1]:-1}" -v hz="$HZ" 'BEGIN { printf "%.0f", 1e6 * t / hz / n }'; }
for s in $SIZES; do
	for c in $CONCS; do
		d=${best[$s/$c/direct]:-} o=${best[$s/$c/off]:-} a=${best[$s/$c/on]:-}
		if [ -z "$d" ] || [ -z "$o" ] || [ -z "$a" ]; then
			echo "$s c=$c: no result"; verdict=1; continue
		fi
		ou=$(us "$s/$c/off") au=$(us "$s/$c/on")
		gu=$(awk -v g="${gen_sum[$s/$c/on]}" -v n="${n_sum[$s/$c/on]}" 'BEGIN { printf "%.0f", 1e6 * g / n }')
		printf '%-5s %-4s %9s %9s %9s %7s%% %7s%% %10s %10s %11s %11s %7s\n' "$s" "$c" "$d" "$o" "$a" \
		    "$(awk -v d="$d" -v v="$o" 'BEGIN { printf "%.1f", 100 * v / d }')" \
		    "$(awk -v d="$d" -v v="$a" 'BEGIN { printf "%.1f", 100 * v / d }')" \
		    "$ou" "$au" $(( au - ou )) "$gu" "${floor_us[$s]}"
		[ -z "$onb_pid" ] || echo "$s    $c     on-b: $(us "$s/$c/on-b") us/msg (on: $au), best ${best[$s/$c/on-b]:-?} msg/s (on: $a)"
		summary_on[$s/$c]=$au summary_inc[$s/$c]=$(( au - ou ))
		ratio_on[$s/$c]=$(awk -v d="$d" -v v="$a" 'BEGIN { printf "%.1f", 100 * v / d }')
	done
done
echo
echo "targets:"
for s in $SIZES; do
	r=${ratio_on[$s/50]:-}
	[ -n "$r" ] || continue
	if awk -v r="$r" 'BEGIN { exit !(r >= 40) }'; then res=PASS; else res=FAIL verdict=1; fi
	echo "  $s, c=50: all on = $r % of direct (>= 40 %): $res"
done
if [ -n "${floor_us[2k]:-}" ]; then
	for c in $CONCS; do
		[ -n "${summary_on[2k/$c]:-}" ] || continue
		for what in total increment; do
			if [ $what = total ]; then v=${summary_on[2k/$c]}; else v=${summary_inc[2k/$c]}; fi
			x=$(awk -v v="$v" -v f="${floor_us[2k]}" 'BEGIN { printf "%.1f", v / f }')
			if awk -v x="$x" 'BEGIN { exit !(x <= 2) }'; then res=PASS; else res=FAIL; fi
			echo "  2k, c=$c: backstop CPU per message, $what ($what = on$([ $what = increment ] && echo " - off")):" \
			    "$v us = ${x} x the floor (${floor_us[2k]} us; <= 2x): $res"
		done
	done
fi
echo "peak RSS (VmHWM) over the runs: off $(mb "$off_hwm") MB, on $(mb "$on_hwm") MB"
echo "load average (1 min) after each run:$load_runs"
stop_pid "$off_pid"
stop_pid "$on_pid"
[ -z "$onb_pid" ] || stop_pid "$onb_pid"

# ---- memory with one big message ----
if [ "$BIG" != 0 ]; then
	echo
	echo "memory: one $BIG message ($(size_bytes "$BIG") bytes), fresh backstop each, [limits] max_message_size = 64m"
	printf '%-28s %12s %14s %14s %12s %8s %s\n' backstop rss_before_MB max_rss_during hwm_after_MB spool_max_MB wall_s result
	for mode in on off; do
		start_backstop "big-$mode" "$mode" "$main_sink_port" "max_message_size = 64m"
		blast "$bs_port" "$(set -- $SIZES; echo "$1")" 1 1 || { cat "$work/blast.err" >&2; die "warm-up failed"; }
		before=$(vm "$bs_pid" VmRSS)
		# sample VmRSS and the size of backstop's open files in spool_dir
		# (anonymous: O_TMPFILE or unlinked, seen only through /proc/PID/fd)
		# every 10 ms, in one process (no fork per sample)
		"$PY" -c '
import os, signal, sys, time
pid, work, out = sys.argv[1], sys.argv[2], sys.argv[3]
rss = spool = n = 0
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
while not stop:
    try:
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = max(rss, int(line.split()[1]))
        total = 0
        for fd in os.listdir("/proc/%s/fd" % pid):
            p = "/proc/%s/fd/%s" % (pid, fd)
            try:
                if os.readlink(p).startswith(work + "/"):
                    total += os.stat(p).st_size
            except OSError:
                pass
        spool = max(spool, total)
    except OSError:
        break
    n += 1
    time.sleep(0.01)
with open(out, "w") as f:
    f.write("%d %d %d\n" % (rss, spool, n))
' "$bs_pid" "$work" "$work/rss-$mode.out" &
		sampler=$!
		sleep 0.2
		blast "$bs_port" "$BIG" 1 1
		rc=$?
		kill -TERM "$sampler" 2>/dev/null
		wait "$sampler" 2>/dev/null
		read -r maxrss spool samples < "$work/rss-$mode.out"
		spool=$(awk -v b="$spool" 'BEGIN { printf "%.1f", b / 1048576 }')
		hwm=$(vm "$bs_pid" VmHWM)
		label="$mode ($([ $mode = on ] && echo "held, DKIM+SPF+DMARC" || echo "streamed, checks off"))"
		[ "$rc" = 0 ] && res=ok || { res="FAILED: $(cat "$work/blast.err")"; failed=1; }
		printf '%-28s %12s %14s %14s %12s %8s %s\n' "$label" "$(mb "$before")" "$(mb "$maxrss")" "$(mb "$hwm")" \
		    "$spool" "$(field wall)" "$res"
		stop_pid "$bs_pid"
	done
	echo "(max_rss_during: highest VmRSS sampled every 10 ms ($samples samples in the last run); spool_max: largest total size of backstop's open files in [server] spool_dir)"
fi

echo
echo "load average at end: $(loadavg)"
[ "$verdict" = 0 ] && echo "targets: met" || echo "targets: MISSED"
[ "$failed" = 0 ] || { echo "content_bench: some runs failed" >&2; exit 1; }
exit 0

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
#                       pool: every client session opens its own). A list
#                       ("0 32") starts one backstop per size; each round
#                       then runs direct and every backstop in turn
#                       (interleaved), and the summary compares them
#   BACKSTOP_B          a second backstop build: every configuration runs
#                       once with each build in every round (labels -a,
#                       -b), and the summary gives b's CPU saving over a
#   BENCH_CLIENT        loopback (default; smtp-source on 127.0.0.1) or netns:
#                       the client in a network namespace joined by a veth
#                       pair (198.51.100.0/24, bench_lib.sh), the generator
#                       smtp_blast.c with a BENCH_SIZE-byte message, and
#                       tests/lib/dns_server.py serving SPF records for the
#                       sender domain and HELO name and the client's PTR/A.
#                       Needs root. SPF passes every loopback client
#                       unevaluated, so only netns measures SPF
#   BENCH_SPF           backstop [spf] mode: off (default) or annotate
#                       (default client with annotate: netns)
#   BENCH_DKIM_DMARC    backstop [dkim] and [dmarc] mode: unset (default):
#                       not written, backstop's default (annotate; the
#                       message is unsigned); off; annotate
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
BACKSTOP_B=${BACKSTOP_B:-}
SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
CONCS=${BENCH_CONCURRENCY:-"1 50 500"}
SIZE=${BENCH_SIZE:-4096}
REPEAT=${BENCH_REPEAT:-3}
REUSE=${BENCH_REUSE:-0}
SPF=${BENCH_SPF:-off}
DKIM_DMARC=${BENCH_DKIM_DMARC:-}
if [ "$SPF" = off ]; then CLIENT=${BENCH_CLIENT:-loopback}; else CLIENT=${BENCH_CLIENT:-netns}; fi
LOG_LEVEL=${BENCH_LOG_LEVEL:-warning}
XCLIENT=${BENCH_XCLIENT:-auto}
POOL_SIZES=${BENCH_POOL_SIZE:-32}
DNS_CACHE_SIZE=${BENCH_DNS_CACHE_SIZE:-10000}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-120}
MAX_TIME=${BENCH_MAX_TIME:-900}
HZ=$(getconf CLK_TCK)

die() { echo "relay_bench: $*" >&2; exit 1; }

case $CLIENT in loopback|netns) ;; *) die "BENCH_CLIENT must be loopback or netns" ;; esac
case $SPF in off|annotate) ;; *) die "BENCH_SPF must be off or annotate" ;; esac
for t in "$BACKSTOP" ${BACKSTOP_B:+"$BACKSTOP_B"} "$SINK"; do
	[ -x "$t" ] || die "$t: not found or not executable"
done
command -v ss >/dev/null || die "ss (iproute2) is needed"
if [ "$CLIENT" = netns ]; then
	[ "$(id -u)" = 0 ] || die "BENCH_CLIENT=netns needs root (a network namespace)"
	for t in ip cc flock; do command -v "$t" >/dev/null || die "$t is needed"; done
	/usr/bin/python3 -c 'import dnslib' 2>/dev/null || die "/usr/bin/python3 needs python3-dnslib"
else
	[ -x "$SOURCE" ] || die "$SOURCE: not found or not executable"
fi

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

work=$(mktemp -d /tmp/relay_bench.XXXXXX) || die "mktemp failed"
chmod 755 "$work"
sink_pid= dog_pid= src_pid= dns_pid= ns= vh=
declare -A bs_pid bs_port bs_bin
labels=()
cleanup() {
	local l
	[ -n "$src_pid" ] && kill "$src_pid" 2>/dev/null
	[ -n "$dog_pid" ] && kill "$dog_pid" 2>/dev/null
	for l in "${labels[@]}"; do [ -n "${bs_pid[$l]:-}" ] && kill -TERM "${bs_pid[$l]}" 2>/dev/null; done
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
	[ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null
	bench_netns_down
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
# pipe reading our output sees EOF when we end); ports, /proc readings, the
# client namespace and the DNS server
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
dns_queries() { [ -f "$work/dns.log" ] && wc -l < "$work/dns.log" || echo 0; }

maxconc=1
for c in $CONCS; do [ "$c" -gt "$maxconc" ] && maxconc=$c; done

# ---- the client side: loopback, or a namespace with DNS for SPF ----
listen_addr=127.0.0.1 dns_ini=
if [ "$CLIENT" = netns ]; then
	bench_netns_up bsr || die "the client namespace could not be set up"
	listen_addr=$host_addr
	bench_build_blast "$work/smtp_blast" || die "smtp_blast.c did not compile"
	# one-day TTLs: after the warm-up every answer is cached
	ptr=$(awk -F. '{ print $4 "." $3 "." $2 "." $1 }' <<< "$cli_addr")
	cat > "$work/bench.zone" <<EOF
example.org. 86400 IN SOA ns.example.org. hostmaster.example.org. 1 60 60 600 86400
example.org. 86400 IN TXT "v=spf1 ip4:198.51.100.0/24 -all"
client.example.org. 86400 IN TXT "v=spf1 ip4:198.51.100.0/24 -all"
client.example.org. 86400 IN A $cli_addr
100.51.198.in-addr.arpa. 86400 IN SOA ns.example.org. hostmaster.example.org. 1 60 60 600 86400
$ptr.in-addr.arpa. 86400 IN PTR client.example.org.
EOF
	bench_dns_start "$work/bench.zone" "$work/dns.log" "$work/dns" || die "dns_server.py did not start"
	dns_ini="servers = 127.0.0.1:$dns_port
timeout = 2s"
	# a message of SIZE bytes: a few header fields, then 70-character text lines
	/usr/bin/python3 - "$work/msg.eml" "$SIZE" <<'EOF'
import sys
size = int(sys.argv[2])
head = (b"From: <a@example.org>\r\nTo: <b@example.org>\r\nSubject: relay_bench\r\n"
        b"Date: Mon, 7 Dec 2026 07:00:00 +0000\r\nMessage-ID: <relay-bench@example.org>\r\n\r\n")
line = b"abcdefghijklmnopqrstuvwxyz0123456789 " * 2
out = head
while len(out) + 72 <= size:
    out += line[:70] + b"\r\n"
out += b"x" * max(0, size - len(out) - 2) + b"\r\n"
open(sys.argv[1], "wb").write(out)
EOF
fi

# ---- smtp-sink ----
sink_port=$(free_port) || die "no free port"
sink_user=()
[ "$(id -u)" = 0 ] && sink_user=(-u nobody)   # smtp-sink refuses to run as root
# -c: counters (sessions, messages) on stdout; -m: accept up to twice the
# concurrency at once per backstop (client sessions and backstop's backend
# connections during a switch-over); backlog as large as that.
npools=$(wc -w <<< "$POOL_SIZES")
sink_max=$(( maxconc * 2 * npools + 64 ))
"$SINK" "${sink_user[@]}" -c -m "$sink_max" "$listen_addr:$sink_port" "$sink_max" \
    > "$work/sink.out" 2> "$work/sink.err" &
sink_pid=$!
wait_listen "$sink_port" "$sink_pid" 10 || { cat "$work/sink.err" >&2; die "smtp-sink did not start"; }

# ---- backstop(s): one per pool size ----
# BACKSTOP_B: a second build, each pool size started once per build
builds=(a)
[ -n "$BACKSTOP_B" ] && builds+=(b)
for p in $POOL_SIZES; do
for b in "${builds[@]}"; do
	if [ "$npools" -gt 1 ]; then l=pool$p; else l=via; fi
	[ -n "$BACKSTOP_B" ] && l=$l-$b
	labels+=("$l")
	if [ "$b" = b ]; then bs_bin[$l]=$BACKSTOP_B; else bs_bin[$l]=$BACKSTOP; fi
	port=$(free_port) || die "no free port"
	cat > "$work/$l.ini" <<EOF
[server]
user = root
listen = $listen_addr:$port
hostname = mx.test.example
drain_time = 2s
[backend]
address = $listen_addr:$sink_port
xclient = $XCLIENT
pool_size = $p
[limits]
max_connections = 20000
max_connections_per_ip = 20000
[dns]
cache_size = $DNS_CACHE_SIZE
$dns_ini
[spf]
mode = $SPF
$([ -n "$DKIM_DMARC" ] && printf '[dkim]\nmode = %s\n[dmarc]\nmode = %s\n' "$DKIM_DMARC" "$DKIM_DMARC")
[log]
level = $LOG_LEVEL
EOF
	s0=$(sink_sessions)
	"${bs_bin[$l]}" -f -c "$work/$l.ini" 2> "$work/$l.log" &
	bs_pid[$l]=$!
	bs_port[$l]=$port
	wait_listen "$port" "${bs_pid[$l]}" 10 || { cat "$work/$l.log" >&2; die "backstop ($l) did not start"; }
	# the startup probe (one EHLO/QUIT connection to the sink) must be over
	# before the first measurement
	for i in $(seq 1 40); do [ "$(sink_sessions)" -gt "$s0" ] && break; sleep 0.05; done
	sink_settle
done
done

src_flags=(-l "$SIZE" -f a@example.org -t b@example.org -M client.example.org)
[ "$REUSE" = 1 ] && src_flags+=(-d)
[ "$REUSE" = 1 ] && [ "$CLIENT" = netns ] && die "BENCH_REUSE=1 needs BENCH_CLIENT=loopback (smtp-source)"

# gen CONC N PORT: one generator run, its output in $work/source.out; sets gen_wall (s)
gen() {
	local c=$1 n=$2 port=$3 t0 t1 rc w
	t0=$(now)
	# in the background: a signal (the watchdog) interrupts the wait at once
	if [ "$CLIENT" = netns ]; then
		ip netns exec "$ns" timeout "$RUN_TIMEOUT" "$work/smtp_blast" -c "$c" -n "$n" -H client.example.org \
		    -f a@example.org -t b@example.org -T "$RUN_TIMEOUT" "$listen_addr:$port" "$work/msg.eml" \
		    > "$work/source.out" 2>&1 &
	else
		timeout "$RUN_TIMEOUT" "$SOURCE" -s "$c" -m "$n" "${src_flags[@]}" "127.0.0.1:$port" \
		    > "$work/source.out" 2>&1 &
	fi
	src_pid=$!
	wait "$src_pid"
	rc=$?
	src_pid=
	t1=$(now)
	gen_wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	# smtp_blast times itself (without the namespace switch and the exec)
	w=$(sed -n 's/.*wall=\([0-9.]*\).*/\1/p' "$work/source.out")
	[ -n "$w" ] && gen_wall=$w
	return $rc
}

if [ "$CLIENT" = netns ]; then
	# warm-up: fills the resolver caches; with SPF on, the checks must have
	# asked for the sender domain's and the HELO name's SPF records
	for l in "${labels[@]}"; do
		gen 5 20 "${bs_port[$l]}" || { cat "$work/source.out" >&2; die "warm-up through $l failed"; }
	done
	gen 5 20 "$sink_port" || { cat "$work/source.out" >&2; die "warm-up direct failed"; }
	if [ "$SPF" != off ]; then
		grep -qi '^example\.org\.\? TXT' "$work/dns.log" ||
		    { cat "$work/dns.log" >&2; die "SPF is on but nobody asked for example.org's SPF record: the check did not run"; }
	fi
	sink_settle
fi

echo "relay_bench: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $(nproc) CPU(s), $(uname -r)"
for l in "${labels[@]}"; do
	echo "  $l: ${bs_bin[$l]} (built $(date -u -r "${bs_bin[$l]}" +%Y-%m-%dT%H:%M:%SZ)), pid ${bs_pid[$l]}, listening $listen_addr:${bs_port[$l]}"
done
echo "smtp-sink: $listen_addr:$sink_port (pid $sink_pid); startup probes and warm-up excluded below"
if [ "$CLIENT" = netns ]; then
	echo "client: smtp_blast in namespace $ns ($cli_addr -> $host_addr), -c CONC -n N, $(stat -c %s "$work/msg.eml")-byte message," \
	    "one connection per message; DNS 127.0.0.1:$dns_port ($(dns_queries) queries in the warm-up)"
else
	echo "client: smtp-source on loopback, -s CONC -m N ${src_flags[*]}" \
	    "($([ "$REUSE" = 1 ] && echo "sessions reuse their connection" || echo "one connection per message"))"
fi
echo "backstop: log level $LOG_LEVEL, xclient $XCLIENT, pool_size $POOL_SIZES, spf $SPF, dkim/dmarc ${DKIM_DMARC:-default (annotate)}; load average at start: $(loadavg)"
[ "$SPF" != off ] && [ "$CLIENT" = loopback ] &&
    echo "note: SPF passes loopback clients without evaluating them; BENCH_CLIENT=netns measures the check"
echo
printf '%-5s %-7s %6s %8s %8s %7s %8s %7s %7s %9s %8s %10s %9s %5s\n' \
    conc path N wall_s msg/s ratio bs_cpu_s bs_cpu% us/msg peak_rss sink_cpu sink_conns sink_msgs dnsq
failed=0
declare -A best rounds_us ratios cpu_sum msgs_sum conns_sum
last_direct=

# run CONC N PATH (direct or a backstop label)
run() {
	local c=$1 n=$2 path=$3 port pid= c0=0 c1=0 k0 k1 s0 s1 m0 m1 q0 q1 rc wall rate cpu kcpu hwm=0 ratio=- us=-
	if [ "$path" = direct ]; then port=$sink_port; else port=${bs_port[$path]} pid=${bs_pid[$path]}; fi
	s0=$(sink_sessions); m0=$(sink_messages); q0=$(dns_queries)
	[ -n "$pid" ] && c0=$(cpu_ticks "$pid")
	k0=$(cpu_ticks "$sink_pid")
	gen "$c" "$n" "$port"
	rc=$?
	[ -n "$pid" ] && c1=$(cpu_ticks "$pid")
	k1=$(cpu_ticks "$sink_pid")
	sink_settle
	s1=$(sink_sessions); m1=$(sink_messages); q1=$(dns_queries)
	[ -n "$pid" ] && hwm=$(vm "$pid" VmHWM)
	wall=$gen_wall
	rate=$(awk -v n="$n" -v w="$wall" 'BEGIN { printf "%.0f", n / w }')
	cpu=$(awk -v t=$(( c1 - c0 )) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
	kcpu=$(awk -v t=$(( k1 - k0 )) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
	[ -n "$pid" ] && us=$(awk -v t=$(( c1 - c0 )) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.0f", 1e6 * t / hz / n }')
	[ "$path" != direct ] && [ -n "$last_direct" ] &&
	    ratio=$(awk -v d="$last_direct" -v v="$rate" 'BEGIN { printf "%.1f%%", 100 * v / d }')
	printf '%-5s %-7s %6s %8s %8s %7s %8s %6.0f%% %7s %7.1fMB %8s %10s %9s %5s\n' \
	    "$c" "$path" "$n" "$wall" "$rate" "$ratio" "$cpu" \
	    "$(awk -v c="$cpu" -v w="$wall" 'BEGIN { print 100 * c / w }')" "$us" \
	    "$(awk -v k="$hwm" 'BEGIN { print k / 1024 }')" "$kcpu" $(( s1 - s0 )) $(( m1 - m0 )) $(( q1 - q0 ))
	if [ "$rc" != 0 ] || [ $(( m1 - m0 )) -lt "$n" ]; then
		echo "      ^ FAILED: generator exit $rc, sink got $(( m1 - m0 ))/$n messages:" \
		    "$(tail -n 2 "$work/source.out" | tr '\n' ' ')"
		failed=1
		[ "$path" = direct ] && last_direct=
		return
	fi
	awk -v a="$rate" -v b="${best[$c/$path]:-0}" 'BEGIN { exit !(a > b) }' && best[$c/$path]=$rate
	if [ "$path" = direct ]; then
		last_direct=$rate
	else
		[ "$ratio" != - ] && ratios[$c/$path]="${ratios[$c/$path]:-} ${ratio%\%}"
		rounds_us[$c/$path]="${rounds_us[$c/$path]:-} $us"
		cpu_sum[$c/$path]=$(( ${cpu_sum[$c/$path]:-0} + c1 - c0 ))
		msgs_sum[$c/$path]=$(( ${msgs_sum[$c/$path]:-0} + n ))
		conns_sum[$c/$path]=$(( ${conns_sum[$c/$path]:-0} + s1 - s0 ))
	fi
}

for c in $CONCS; do
	nvar=BENCH_N_$c
	n=${BENCH_N:-${!nvar:-}}
	if [ -z "$n" ]; then
		case $c in 1) n=2000 ;; *) n=4000 ;; esac
	fi
	for r in $(seq 1 "$REPEAT"); do
		run "$c" "$n" direct
		for l in "${labels[@]}"; do
			run "$c" "$n" "$l"
			kill -0 "${bs_pid[$l]}" 2>/dev/null || { echo "backstop $l died:" >&2; tail "$work/$l.log" >&2; exit 1; }
		done
	done
done

declare -A bs_total total_cpu hwm_end
for l in "${labels[@]}"; do
	total_cpu[$l]=$(awk -v t="$(cpu_ticks "${bs_pid[$l]}")" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
	hwm_end[$l]=$(vm "${bs_pid[$l]}" VmHWM)
	kill -TERM "${bs_pid[$l]}"
	for i in $(seq 1 100); do kill -0 "${bs_pid[$l]}" 2>/dev/null || break; sleep 0.05; done
	kill -0 "${bs_pid[$l]}" 2>/dev/null && { kill -KILL "${bs_pid[$l]}"; echo "backstop $l did not stop on SIGTERM" >&2; failed=1; }
	wait "${bs_pid[$l]}" 2>/dev/null
	bs_pid[$l]=
	bs_total[$l]=$(sed -n 's/.*stopped; \([0-9]*\) backend connection(s) opened in total.*/\1/p' "$work/$l.log")
done

echo
echo "summary, ${SIZE}-byte messages, $REPEAT round(s) per concurrency (direct, then ${labels[*]}), client $CLIENT, spf $SPF:"
echo "  best = highest messages/s of each path; ratio = best via / best direct (judged);"
echo "  pair median = median of the via/direct ratios within rounds; us/msg = backstop CPU per message over all rounds"
printf '%-5s %-7s %9s %9s %7s %8s %12s %7s %-22s %9s  %s\n' conc path direct/s via/s ratio target "pair median" us/msg "us/msg per round" be_conns result
verdict=0
for c in $CONCS; do
	d=${best[$c/direct]:-}
	for l in "${labels[@]}"; do
		v=${best[$c/$l]:-}
		if [ -z "$d" ] || [ -z "$v" ]; then
			printf '%-5s %-7s %9s %9s %7s %8s %12s %7s %-22s %9s  %s\n' "$c" "$l" "${d:--}" "${v:--}" - - - - - - "no result"
			verdict=1
			continue
		fi
		ratio=$(awk -v d="$d" -v v="$v" 'BEGIN { printf "%.1f%%", 100 * v / d }')
		med=$(echo ${ratios[$c/$l]:-} | tr ' ' '\n' | sort -g |
		    awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) printf "%.1f%%", a[(NR + 1) / 2];
		        else printf "%.1f%%", (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
		us=$(awk -v t="${cpu_sum[$c/$l]}" -v hz="$HZ" -v n="${msgs_sum[$c/$l]}" 'BEGIN { printf "%.0f", 1e6 * t / hz / n }')
		case $c in 1) tgt=40 ;; 50) tgt=45 ;; *) tgt= ;; esac
		if [ -n "$tgt" ]; then
			if awk -v d="$d" -v v="$v" -v t="$tgt" 'BEGIN { exit !(100 * v / d >= t) }'; then res=PASS
			else res=FAIL; verdict=1; fi
			tgts=">=$tgt%"
		else
			res="(no target)" tgts=-
		fi
		printf '%-5s %-7s %9s %9s %7s %8s %12s %7s %-22s %9s  %s\n' "$c" "$l" "$d" "$v" "$ratio" "$tgts" "$med" "$us" \
		    "$(echo ${rounds_us[$c/$l]:-} | tr ' ' '/')" "${conns_sum[$c/$l]:-}" "$res"
	done
done
# pool comparison: the first backstop (the smallest pool) against each other,
# round by round (interleaved: the same machine state within a round)
if [ "$npools" -gt 1 ] && [ -z "$BACKSTOP_B" ]; then
	echo
	echo "CPU saving of each pool against ${labels[0]} (1 - us_pool / us_${labels[0]}), per round and over all rounds:"
	for c in $CONCS; do
		base=(${rounds_us[$c/${labels[0]}]:-})
		for l in "${labels[@]:1}"; do
			other=(${rounds_us[$c/$l]:-})
			per=
			for i in "${!base[@]}"; do
				[ -n "${other[$i]:-}" ] || continue
				per="$per $(awk -v a="${base[$i]}" -v b="${other[$i]}" 'BEGIN { printf "%.0f%%", 100 * (1 - b / a) }')"
			done
			all=$(awk -v a="${cpu_sum[$c/${labels[0]}]:-0}" -v na="${msgs_sum[$c/${labels[0]}]:-1}" \
			    -v b="${cpu_sum[$c/$l]:-0}" -v nb="${msgs_sum[$c/$l]:-1}" \
			    'BEGIN { if (a > 0) printf "%.1f%%", 100 * (1 - (b / nb) / (a / na)); else print "-" }')
			echo "  c=$c $l vs ${labels[0]}: per round$per; all rounds $all"
		done
	done
fi
if [ -n "$BACKSTOP_B" ]; then
	echo
	echo "CPU saving of build b ($BACKSTOP_B) against build a ($BACKSTOP), per round and over all rounds:"
	for c in $CONCS; do
		for la in "${labels[@]}"; do
			case $la in *-a) ;; *) continue ;; esac
			lb=${la%-a}-b
			base=(${rounds_us[$c/$la]:-}) other=(${rounds_us[$c/$lb]:-}) per=
			for i in "${!base[@]}"; do
				[ -n "${other[$i]:-}" ] || continue
				per="$per $(awk -v a="${base[$i]}" -v b="${other[$i]}" 'BEGIN { printf "%.0f%%", 100 * (1 - b / a) }')"
			done
			all=$(awk -v a="${cpu_sum[$c/$la]:-0}" -v na="${msgs_sum[$c/$la]:-1}" \
			    -v b="${cpu_sum[$c/$lb]:-0}" -v nb="${msgs_sum[$c/$lb]:-1}" \
			    'BEGIN { if (a > 0) printf "%.1f%%", 100 * (1 - (b / nb) / (a / na)); else print "-" }')
			echo "  c=$c ${la%-a}: per round$per; all rounds $all"
		done
	done
fi
echo
for l in "${labels[@]}"; do
	echo "backstop $l: ${total_cpu[$l]} CPU s in total (warm-up and all runs), peak RSS (VmHWM) $(mb "${hwm_end[$l]}") MB," \
	    "its own count of backend connections at exit: ${bs_total[$l]:-"not logged ([log] level = info logs it)"}"
done
echo "be_conns = sessions the sink saw during that backstop's runs (startup probe excluded)"
echo "load average at end: $(loadavg)"
[ "$verdict" = 0 ] && echo "targets: met" || echo "targets: MISSED"
[ "$failed" = 0 ] || { echo "relay_bench: some runs failed" >&2; exit 1; }
exit 0

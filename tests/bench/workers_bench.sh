#!/bin/bash
# workers_bench.sh - messages/s over STARTTLS with [server] workers = 1
# against workers = 2 (or BENCH_WORKERS), same load, alternating runs.
#
# smtp-sink is the backend; tls_blast (tls_blast.c, threads and blocking
# OpenSSL: a few times cheaper per session than Python's asyncio) runs N
# sessions, C at a time, each: greeting, EHLO, STARTTLS, handshake, EHLO,
# one message, QUIT. Printed per run: messages/s, backstop's CPU seconds
# (master and workers, utime+stime from /proc) and the generator's own.
# On a machine with few cores the generator and the sink share them with
# backstop: read the CPU columns to see who used the cores.
#
# Run by hand, not from make check:   tests/bench/workers_bench.sh
# Environment (all optional):
#   BACKSTOP        backstop binary (default: build/backstop of this tree)
#   BENCH_N         messages per run (3000)
#   BENCH_C         sessions at once (50)
#   BENCH_WORKERS   worker counts compared ("1 2")
#   BENCH_REPEAT    runs per worker count, alternating (3); best is reported
#   BENCH_KEY_TYPE  ec (P-256, default), rsa (2048) or rsa4096: the larger
#                   the server key, the more of a session's CPU is
#                   backstop's (an RSA-4096 signature is about 5 ms, the
#                   client's verification 0.1 ms), so on a machine whose
#                   cores the generator shares, rsa4096 shows how the
#                   workers scale rather than how the generator does
# Exit status: 0 when every run completed, 1 otherwise.
set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
BACKSTOP=${BACKSTOP:-$here/../../build/backstop}
N=${BENCH_N:-3000}
C=${BENCH_C:-50}
COUNTS=${BENCH_WORKERS:-1 2}
REPEAT=${BENCH_REPEAT:-3}
KEY_TYPE=${BENCH_KEY_TYPE:-ec}
HZ=$(getconf CLK_TCK)

die() { echo "workers_bench: $*" >&2; exit 1; }
[ -x "$BACKSTOP" ] || die "no backstop binary at $BACKSTOP (build first, or set BACKSTOP)"
command -v smtp-sink >/dev/null || die "smtp-sink not installed (postfix)"
ulimit -n 65536 2>/dev/null

work=$(mktemp -d /tmp/workers_bench.XXXXXX)
bs_pid= sink_pid=
cleanup() {
	[ -n "$bs_pid" ] && kill "$bs_pid" 2>/dev/null && wait "$bs_pid" 2>/dev/null
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

cc -O2 -std=c17 -Wall -Wextra -o "$work/tls_blast" "$here/tls_blast.c" -lssl -lcrypto -lpthread \
	2> "$work/cc.err" || { cat "$work/cc.err" >&2; die "tls_blast.c did not compile"; }
case $KEY_TYPE in
rsa4096)   # make-self-signed.sh keeps a key it finds and certifies it
	openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out "$work/backstop.key" ||
		die "openssl could not make an RSA-4096 key"
	cert_key_type=rsa ;;
ec|rsa) cert_key_type=$KEY_TYPE ;;
*) die "BENCH_KEY_TYPE must be ec, rsa or rsa4096" ;;
esac
BACKSTOP_KEY_TYPE=$cert_key_type sh "$here/../../certs/make-self-signed.sh" localhost "$work" >/dev/null ||
	die "make-self-signed.sh failed"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
sink_port=$(free_port)
smtp-sink -u "$(id -un)" "127.0.0.1:$sink_port" 1000 >/dev/null 2>"$work/sink.log" &
sink_pid=$!

# start_backstop W: a fresh backstop with W workers on a new port
start_backstop() {
	[ -n "$bs_pid" ] && { kill "$bs_pid"; wait "$bs_pid" 2>/dev/null; bs_pid=; }
	port=$(free_port)
	cat > "$work/backstop.ini" <<EOI
[server]
user = root
listen = 127.0.0.1:$port
hostname = bench.test.example
workers = $1
[backend]
address = 127.0.0.1:$sink_port
[limits]
max_connections = 2000
max_connections_per_ip = 2000
[tls]
certificate = $work/backstop.crt
key = $work/backstop.key
[spf]
mode = off
[dkim]
mode = off
[dmarc]
mode = off
[dns]
servers = 127.0.0.1:$(free_port)
reverse_lookup = no
[log]
level = warning
destination = stderr
EOI
	"$BACKSTOP" -f -c "$work/backstop.ini" 2>>"$work/backstop.log" &
	bs_pid=$!
	for _ in $(seq 100); do
		[ "$(pgrep -c -P "$bs_pid")" -ge "$1" ] || [ "$1" = 1 ] &&
			python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2).close()" 2>/dev/null &&
			{ sleep 0.3; return 0; }
		sleep 0.05
	done
	die "backstop did not start: $(tail -5 "$work/backstop.log")"
}

cpu_ticks() {
	for p in $bs_pid $(pgrep -P "$bs_pid"); do cat "/proc/$p/stat"; done | awk '{t += $14 + $15} END {print t}'
}

echo "workers_bench: $N messages over STARTTLS at concurrency $C, key $KEY_TYPE, $(nproc) CPUs," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A best
failed=0
for r in $(seq "$REPEAT"); do
	for w in $COUNTS; do
		start_backstop "$w"
		t0=$(cpu_ticks)
		out=$(timeout 300 "$work/tls_blast" -c "$C" -n "$N" -m "127.0.0.1:$port") || failed=1
		t1=$(cpu_ticks)
		rate=$(sed -n 's/.*rate=\([0-9.]*\).*/\1/p' <<<"$out")
		printf '  run %d workers %d: %s  backstop CPU %.2f s\n' "$r" "$w" "$out" \
			"$(awk -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN {print t / hz}')"
		if awk -v a="${rate:-0}" -v b="${best[$w]:-0}" 'BEGIN {exit !(a > b)}'; then best[$w]=$rate; fi
	done
done
echo "workers_bench summary (best messages/s):"
base=
for w in $COUNTS; do
	[ -z "$base" ] && base=${best[$w]:-0}
	printf '  workers %d: %8.1f messages/s  (x%.2f)\n' "$w" "${best[$w]:-0}" \
		"$(awk -v a="${best[$w]:-0}" -v b="$base" 'BEGIN {print (b > 0) ? a / b : 0}')"
done
if grep -qE "AddressSanitizer|LeakSanitizer|runtime error" "$work/backstop.log"; then
	echo "workers_bench: sanitizer report in backstop's log"; failed=1
fi
exit $failed

#!/bin/bash
# tls_bench.sh - STARTTLS cost through backstop, against plaintext in the
# same run.
#
# 1. Sessions per second: a Python asyncio load generator runs N sessions
#    with C at a time, each "greeting, EHLO, QUIT" (plaintext) or
#    "greeting, EHLO, STARTTLS, handshake, EHLO, QUIT" (TLS), against one
#    backstop. Printed: sessions/s, and backstop's own CPU time per session
#    (utime+stime from /proc/PID/stat), which does not depend on how fast
#    the client is (the client's handshakes share the same machine).
# 2. Memory per idle session: a fresh backstop per kind; M sessions are
#    opened and left idle after their (last) EHLO; (VmRSS with M idle -
#    VmRSS before) / M.
# No backend is contacted (no session starts a transaction).
#
# Run by hand, not from make check:   tests/bench/tls_bench.sh
# Environment (all optional):
#   BACKSTOP          backstop binary (default: build/backstop of this tree)
#   BENCH_N           sessions per rate run (2000)
#   BENCH_C           sessions at once in a rate run (16)
#   BENCH_IDLE        idle sessions for the memory figure (1000)
#   BENCH_KEY_TYPE    ec (P-256, default) or rsa (2048): the listener's key
#   BENCH_REPEAT      rate runs per kind, alternating; best is reported (2)
#   BENCH_KEEP        1: keep the work directory
#   BENCH_WORKERS     backstop [server] workers (1); CPU time and VmRSS are
#                     then the sums over the master and its workers
#   BENCH_CLIENTS     load generator processes for a rate run (1), each
#                     with N/CLIENTS sessions at C/CLIENTS at once: one
#                     Python process does a few hundred handshakes a second
#                     and would measure itself, not backstop's workers
# Exit status: 0 when every run completed, 1 otherwise.
set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
BACKSTOP=${BACKSTOP:-$here/../../build/backstop}
N=${BENCH_N:-2000}
C=${BENCH_C:-16}
IDLE=${BENCH_IDLE:-1000}
KEY_TYPE=${BENCH_KEY_TYPE:-ec}
REPEAT=${BENCH_REPEAT:-2}
WORKERS=${BENCH_WORKERS:-1}
CLIENTS=${BENCH_CLIENTS:-1}
HZ=$(getconf CLK_TCK)

die() { echo "tls_bench: $*" >&2; exit 1; }
[ -x "$BACKSTOP" ] || die "no backstop binary at $BACKSTOP (build first, or set BACKSTOP)"
command -v openssl >/dev/null || die "openssl not installed"
command -v python3 >/dev/null || die "python3 not installed"
ulimit -n $((IDLE * 2 + 1024)) 2>/dev/null || die "cannot raise the open files limit to $((IDLE * 2 + 1024))"

work=$(mktemp -d /tmp/tls_bench.XXXXXX)
bs_pid=
cleanup() {
	[ -n "$bs_pid" ] && kill "$bs_pid" 2>/dev/null && wait "$bs_pid" 2>/dev/null
	if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

BACKSTOP_KEY_TYPE=$KEY_TYPE sh "$here/../../certs/make-self-signed.sh" localhost "$work" >/dev/null ||
	die "make-self-signed.sh failed"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_backstop: a fresh backstop on a new port ($port, $bs_pid)
start_backstop() {
	[ -n "$bs_pid" ] && { kill "$bs_pid"; wait "$bs_pid" 2>/dev/null; bs_pid=; }
	port=$(free_port)
	cat > "$work/backstop.ini" <<EOF
[server]
user = root
listen = 127.0.0.1:$port
hostname = bench.test.example
workers = $WORKERS
[backend]
address = 127.0.0.1:$(free_port)
[limits]
max_connections = $((IDLE + 100))
max_connections_per_ip = $((IDLE + 100))
greeting_timeout = 120s
command_timeout = 120s
session_timeout = 600s
[tls]
certificate = $work/backstop.crt
key = $work/backstop.key
[log]
level = warning
destination = stderr
EOF
	"$BACKSTOP" -f -c "$work/backstop.ini" 2>>"$work/backstop.log" &
	bs_pid=$!
	for _ in $(seq 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2).close()" 2>/dev/null &&
			{ [ "$WORKERS" = 1 ] || sleep 0.5; return 0; }   # the other workers
		sleep 0.05
	done
	die "backstop did not start: $(tail -5 "$work/backstop.log")"
}

# backstop's processes: with workers, the master and its children
bs_pids() { echo "$bs_pid" $(pgrep -P "$bs_pid"); }
cpu_ticks() { for p in $(bs_pids); do cat "/proc/$p/stat"; done | awk '{t += $14 + $15} END {print t}'; }
rss_kb() { for p in $(bs_pids); do cat "/proc/$p/status"; done | awk '/^VmRSS:/ {t += $2} END {print t}'; }

# rate KIND: CLIENTS load generators at once; "sessions/s failures seconds"
# over all of them (the slowest one's time)
rate() {
	local i pids=() outs=()
	for i in $(seq "$CLIENTS"); do
		timeout 300 python3 "$work/load.py" "$1" "$port" $((N / CLIENTS)) $((C / CLIENTS)) >"$work/rate.$i" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || return 1; done
	cat "$work"/rate.* | awk -v n=$((N / CLIENTS * CLIENTS)) \
		'{f += $2; if ($3 > s) s = $3} END {printf "%.1f %d %.3f\n", n / s, f, s}'
	rm -f "$work"/rate.*
}

cat > "$work/load.py" <<'EOF'
import asyncio, ssl, sys, time

mode, port, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.options |= ssl.OP_NO_TICKET


async def reply(r):
    while True:
        line = await r.readline()
        if not line:
            raise EOFError("closed")
        if line[3:4] != b"-":
            return int(line[:3])


async def session(idle=None):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    assert await reply(r) == 220
    w.write(b"EHLO bench.client.example\r\n")
    assert await reply(r) == 250
    if mode == "tls":
        w.write(b"STARTTLS\r\n")
        assert await reply(r) == 220
        await w.start_tls(ctx)
        w.write(b"EHLO bench.client.example\r\n")
        assert await reply(r) == 250
    if idle is not None:
        idle.append(w)
        return
    w.write(b"QUIT\r\n")
    assert await reply(r) == 221
    w.close()
    try:
        await w.wait_closed()
    except (ssl.SSLError, ConnectionError):
        pass


async def rate():
    todo = iter(range(n))
    fails = 0

    async def worker():
        nonlocal fails
        for _ in todo:
            try:
                await session()
            except Exception:
                fails += 1
    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(c)))
    dt = time.monotonic() - t0
    print("%.1f %d %.3f" % (n / dt, fails, dt), flush=True)


async def idle():
    held = []
    sem = asyncio.Semaphore(c)

    async def one():
        async with sem:
            await session(held)
    await asyncio.gather(*(one() for _ in range(n)))
    print("ready %d" % len(held), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for w in held:
        w.transport.abort()

asyncio.run(rate() if c > 0 and sys.argv[5:] != ["idle"] else idle())
EOF

echo "tls_bench: backstop $BACKSTOP, key $KEY_TYPE, $N sessions x $REPEAT runs at concurrency $C ($CLIENTS client process(es)), $IDLE idle sessions, $WORKERS worker(s)"
echo "tls_bench: $(openssl version), $(nproc) CPUs"
failed=0

# ---- rate ----
start_backstop
declare -A best_rate best_cpu
for kind in plain tls; do best_rate[$kind]=0; best_cpu[$kind]=; done
for r in $(seq "$REPEAT"); do
	for kind in plain tls; do
		t0=$(cpu_ticks)
		out=$(rate "$kind") || { echo "  $kind run failed"; failed=1; continue; }
		t1=$(cpu_ticks)
		read -r sps fails secs <<<"$out"
		cpu_us=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$N" 'BEGIN {printf "%.0f", t / hz * 1e6 / n}')
		printf '  run %d %-5s %8.1f sessions/s  %5.2f s  backstop CPU %6d us/session  failures %d\n' \
			"$r" "$kind" "$sps" "$secs" "$cpu_us" "$fails"
		[ "$fails" = 0 ] || failed=1
		if awk -v a="$sps" -v b="${best_rate[$kind]}" 'BEGIN {exit !(a > b)}'; then
			best_rate[$kind]=$sps
		fi
		if [ -z "${best_cpu[$kind]}" ] || [ "$cpu_us" -lt "${best_cpu[$kind]}" ]; then
			best_cpu[$kind]=$cpu_us
		fi
	done
done

# ---- idle memory ----
declare -A per_sess
for kind in plain tls; do
	start_backstop
	sleep 0.2
	before=$(rss_kb)
	coproc LOAD { timeout 600 python3 "$work/load.py" "$kind" "$port" "$IDLE" 50 idle; }
	read -r -t 300 ready count <&"${LOAD[0]}" || { echo "  $kind idle run failed"; failed=1; continue; }
	sleep 0.5
	after=$(rss_kb)
	echo >&"${LOAD[1]}"
	wait "$LOAD_PID" 2>/dev/null
	per_sess[$kind]=$(awk -v a="$after" -v b="$before" -v n="$count" 'BEGIN {printf "%.1f", (a - b) / n}')
	printf '  idle %-5s %d sessions: VmRSS %d kB -> %d kB, %s kB per session\n' \
		"$kind" "$count" "$before" "$after" "${per_sess[$kind]}"
done

echo "tls_bench summary:"
printf '  sessions/s (best):        plaintext %8.1f   STARTTLS %8.1f   ratio %.2f\n' \
	"${best_rate[plain]}" "${best_rate[tls]}" \
	"$(awk -v a="${best_rate[tls]}" -v b="${best_rate[plain]}" 'BEGIN {print (b > 0) ? a / b : 0}')"
printf '  backstop CPU per session: plaintext %6s us   STARTTLS %6s us\n' "${best_cpu[plain]}" "${best_cpu[tls]}"
printf '  memory per idle session:  plaintext %6s kB   STARTTLS %6s kB\n' "${per_sess[plain]:-?}" "${per_sess[tls]:-?}"
if grep -qE "AddressSanitizer|LeakSanitizer|runtime error" "$work/backstop.log"; then
	echo "tls_bench: sanitizer report in backstop's log"; failed=1
fi
exit $failed

# bench_lib.sh - what the shell benchmarks share; sourced, not run.
#   bench_watchdog NAME SECONDS  - SIGTERM to this shell after SECONDS (sets dog_pid;
#                                  the caller's cleanup kills "$dog_pid")
#   listening PORT, free_port, wait_listen PORT PID SECONDS
#   cpu_ticks PID (user+system clock ticks), vm PID FIELD (kB from /proc/PID/status),
#   mb KB, loadavg

bench_watchdog() {
	# expanded now: when the trap runs, $1 and $2 are the script's
	trap "echo '$1: stopped by a signal (or BENCH_MAX_TIME = $2 s exceeded)' >&2; exit 1" INT TERM
	local main_pid=$$
	(
		exec </dev/null >/dev/null 2>&1
		sleep "$2" &
		sp=$!
		trap 'kill $sp; exit 0' TERM
		wait $sp && kill -TERM "$main_pid"
	) &
	dog_pid=$!
}

listening() { [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; }
free_port() {
	local p i
	for i in $(seq 1 200); do
		p=$(( 10000 + RANDOM % 22000 ))
		listening "$p" || { echo "$p"; return 0; }
	done
	return 1
}
wait_listen() {   # PORT PID SECONDS
	local i
	for i in $(seq 1 $(( $3 * 20 ))); do
		kill -0 "$2" 2>/dev/null || return 1
		listening "$1" && return 0
		sleep 0.05
	done
	return 1
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
vm() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

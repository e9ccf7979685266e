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

# ---- client network namespace (for checks that skip loopback clients) ----
# bench_netns_up TAG: a namespace joined to the host by a veth pair in a
# free /30 of 198.51.100.0/24 (the lock and the address choice are those of
# tests/lib/harness.py's Netns, so parallel tests and benchmarks do not take
# the same addresses). Sets ns, vh, host_addr (host side, .1 of the /30) and
# cli_addr (.2, in the namespace). The client opens a connection per
# message: inside the namespace only, it may reuse TIME_WAIT ports and has
# the whole port range. Root only. The caller's cleanup runs bench_netns_down.
BENCH_NETNS_LOCK=/run/backstop-tests-netns.lock
bench_netns_up() {
	local tag vn used h k i
	tag=$(printf '%05x' $(( $$ & 0xfffff )))
	ns=$1-$tag vh=bbh$tag vn=bbn$tag
	exec 9>>"$BENCH_NETNS_LOCK"
	flock 9
	used=$(ip -o -4 addr | grep -o 'inet 198\.51\.100\.[0-9]*/' | sed 's/inet //; s/\/$//')
	host_addr= cli_addr=
	for k in $(seq 0 63); do
		h=198.51.100.$(( 4 * k + 1 ))
		if ! grep -qx "$h" <<< "$used"; then host_addr=$h cli_addr=198.51.100.$(( 4 * k + 2 )); break; fi
	done
	if [ -z "$host_addr" ]; then flock -u 9; exec 9>&-; ns= vh=; echo "no free /30 in 198.51.100.0/24" >&2; return 1; fi
	ip netns add "$ns" || { flock -u 9; exec 9>&-; ns= vh=; return 1; }
	ip link add "$vh" type veth peer name "$vn" &&
	ip link set "$vn" netns "$ns" &&
	ip addr add "$host_addr/30" dev "$vh" &&
	ip link set "$vh" up &&
	ip -n "$ns" addr add "$cli_addr/30" dev "$vn" &&
	ip -n "$ns" link set "$vn" up &&
	ip -n "$ns" link set lo up || { flock -u 9; exec 9>&-; echo "setting up the veth pair failed" >&2; return 1; }
	flock -u 9
	exec 9>&-
	ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="10000 65000" ||
	    { echo "sysctl in the namespace failed" >&2; return 1; }
	for i in $(seq 1 60); do
		ip link show "$vh" | grep -q LOWER_UP && break
		sleep 0.05
	done
	return 0
}
bench_netns_down() {   # kills what still runs in the namespace, removes it and the veth
	local p
	if [ -n "${ns:-}" ]; then
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	fi
	[ -n "${vh:-}" ] && ip link del "$vh" 2>/dev/null
	ns= vh=
}
# bench_dns_start ZONE LOG OUTPREFIX: tests/lib/dns_server.py on 127.0.0.1
# serving ZONE, each query appended to LOG; sets dns_port and dns_pid (the
# caller kills dns_pid)
bench_dns_start() {
	local i lib
	lib=$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)
	/usr/bin/python3 "$lib/dns_server.py" --port 0 --log "$2" "$1" > "$3.out" 2> "$3.err" &
	dns_pid=$!
	for i in $(seq 1 100); do grep -q '^ready ' "$3.out" && break; sleep 0.05; done
	dns_port=$(awk '/^ready / { print $2 }' "$3.out")
	[ -n "$dns_port" ] || { cat "$3.err" >&2; return 1; }
}
# bench_build_blast OUT: compiles tests/bench/smtp_blast.c to OUT
bench_build_blast() {
	cc -O2 -std=c17 -Wall -Wextra -o "$1" "$(dirname "${BASH_SOURCE[0]}")/smtp_blast.c" 2> "$1.cc.err" ||
	    { cat "$1.cc.err" >&2; return 1; }
}

#!/bin/bash
# run.sh - run every libFuzzer target for a bounded time.
#
# Usage: tests/fuzz/run.sh [BUILDDIR]   (default: the current directory)
# Runs each BUILDDIR/tests/fuzz/fuzz_* binary (built by "make fuzz") for
# FUZZ_SECONDS (default 60) with its seed corpus tests/fuzz/corpus/<target>/
# (read only: new inputs go to a scratch directory), prints one line per
# target and a final "N passed, N failed" line. Exits non-zero when any
# target crashed, reported a sanitizer error (ASan, UBSan: the targets are
# built with -fno-sanitize-recover=all and run with halt_on_error=1, and
# the log is scanned as well) or could not run; crash inputs are left in
# BUILDDIR/tests/fuzz/crash-<target>-*, a failed target's whole log in
# BUILDDIR/tests/fuzz/<target>.log. Builds nothing itself.
# FUZZ_JOBS targets run at once (default: the number of CPUs, nproc; each
# target is one single-threaded process, so each still gets a CPU of its
# own for its FUZZ_SECONDS); the lines come in the targets' order.
set -u
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1
# a sanitizer report, whatever the exit status
SANITIZER_RX='ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer'

builddir=${1:-.}
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
srcdir=$(cd "$(dirname "$0")" && pwd)
passed=0
failed=0

scratch=$(mktemp -d "${TMPDIR:-/tmp}/backstop-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$scratch"' EXIT INT TERM

# run_target BIN: fuzz it; its result line (and, when it failed, what to
# look at) in $scratch/<target>.result, written last
run_target() {
	local bin=$1 name target work seeds log rc runs
	name=$(basename "$bin")
	target=${name#fuzz_}
	work="$scratch/$target"
	mkdir -p "$work"
	seeds=
	[ -d "$srcdir/corpus/$target" ] && seeds="$srcdir/corpus/$target"
	log="$scratch/$target.log"
	# shellcheck disable=SC2086 # $seeds is empty or one directory
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 \
		-artifact_prefix="$builddir/tests/fuzz/crash-$target-" \
		"$work" $seeds >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ] && ! grep -q -E "$SANITIZER_RX" "$log" && [ -n "$runs" ]; then
		echo "PASS $name: $runs runs in ${seconds}s" >"$scratch/$target.tmp"
	else
		{
			echo "FAIL $name: exit $rc after ${runs:-?} runs (log: $builddir/tests/fuzz/$target.log)"
			grep -E "$SANITIZER_RX|^artifact_prefix|^Test unit written" "$log" | head -n 8 | sed 's/^/    /'
		} >"$scratch/$target.tmp"
		cp "$log" "$builddir/tests/fuzz/$target.log"
	fi
	mv "$scratch/$target.tmp" "$scratch/$target.result"
}

targets=()
for bin in "$builddir"/tests/fuzz/fuzz_*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	case "$bin" in *.c | *.o | *.sh) continue ;; esac
	targets+=("$bin")
done
if [ "${#targets[@]}" -eq 0 ]; then
	echo "no fuzz targets in $builddir/tests/fuzz (run \"make fuzz\" first)"
	exit 2
fi

# report: the finished targets' lines, in the targets' order, up to the
# first one still running
shown=0
report() {
	local result
	while [ "$shown" -lt "${#targets[@]}" ]; do
		result="$scratch/$(basename "${targets[$shown]}" | sed 's/^fuzz_//').result"
		[ -f "$result" ] || return
		cat "$result"
		if grep -q '^PASS ' "$result"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
		shown=$((shown + 1))
	done
}

for bin in "${targets[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n
		report
	done
	run_target "$bin" &
done
wait
report
# a target whose run ended without a result line (its shell was killed)
while [ "$shown" -lt "${#targets[@]}" ]; do
	echo "FAIL $(basename "${targets[$shown]}"): no result"
	failed=$((failed + 1))
	shown=$((shown + 1))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
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
set -u
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1
# a sanitizer report, whatever the exit status
SANITIZER_RX='ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer'

builddir=${1:-.}
seconds=${FUZZ_SECONDS:-60}
srcdir=$(cd "$(dirname "$0")" && pwd)
passed=0
failed=0
found=0

scratch=$(mktemp -d "${TMPDIR:-/tmp}/backstop-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$scratch"' EXIT INT TERM

for bin in "$builddir"/tests/fuzz/fuzz_*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	case "$bin" in *.c | *.o | *.sh) continue ;; esac
	found=$((found + 1))
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
		passed=$((passed + 1))
		echo "PASS $name: $runs runs in ${seconds}s"
	else
		failed=$((failed + 1))
		echo "FAIL $name: exit $rc after ${runs:-?} runs (log: $builddir/tests/fuzz/$target.log)"
		cp "$log" "$builddir/tests/fuzz/$target.log"
		grep -E "$SANITIZER_RX|^artifact_prefix|^Test unit written" "$log" | head -n 8 | sed 's/^/    /'
	fi
done

if [ "$found" -eq 0 ]; then
	echo "no fuzz targets in $builddir/tests/fuzz (run \"make fuzz\" first)"
	exit 2
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# run.sh - run every libFuzzer target for a bounded time.
#
# Usage: tests/fuzz/run.sh [BUILDDIR]   (default: the current directory)
# Runs each BUILDDIR/tests/fuzz/fuzz_* binary (built by "make fuzz") for
# FUZZ_SECONDS (default 60) with its seed corpus tests/fuzz/corpus/<target>/
# (read only: new inputs go to a scratch directory), prints one line per
# target and a final "N passed, N failed" line. Exits non-zero when any
# target crashed or could not run; crash inputs are left in
# BUILDDIR/tests/fuzz/crash-<target>-*. Builds nothing itself.
set -u

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
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "PASS $name: ${runs:-?} runs in ${seconds}s"
	else
		failed=$((failed + 1))
		echo "FAIL $name: exit $rc after ${runs:-?} runs"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix)' "$log" | head -n 5 | sed 's/^/    /'
	fi
done

if [ "$found" -eq 0 ]; then
	echo "no fuzz targets in $builddir/tests/fuzz (run \"make fuzz\" first)"
	exit 2
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# campaign.sh - the long fuzzing campaign: every libFuzzer target for a
# number of executions (default 10 million each), one after the other.
#
# Usage: tests/fuzz/campaign.sh [BUILDDIR [TARGET...]]
#   BUILDDIR  where "make fuzz" built the targets (default: .)
#   TARGET    names without "fuzz_" (default: every target built)
# Environment: FUZZ_RUNS (default 10000000), FUZZ_TIMEOUT (seconds per
# input, default 10).
#
# Each target starts from its seed corpus tests/fuzz/corpus/<target>/ and
# keeps what it finds in BUILDDIR/tests/fuzz/campaign/<target>/ (so a second
# campaign continues the first); crash inputs go to
# BUILDDIR/tests/fuzz/crash-<target>-*. Prints one line per target:
# executions, seconds, executions per second, coverage (edges, features)
# and corpus size, and exits non-zero if any target crashed.
set -u

builddir=${1:-.}
[ $# -gt 0 ] && shift
runs=${FUZZ_RUNS:-10000000}
srcdir=$(cd "$(dirname "$0")" && pwd)
failed=0

if [ $# -eq 0 ]; then
	set --
	for bin in "$builddir"/tests/fuzz/fuzz_*; do
		[ -f "$bin" ] && [ -x "$bin" ] || continue
		case "$bin" in *.c | *.h | *.o | *.sh) continue ;; esac
		name=$(basename "$bin")
		set -- "$@" "${name#fuzz_}"
	done
fi
[ $# -gt 0 ] || { echo "no fuzz targets in $builddir/tests/fuzz (run \"make fuzz\" first)"; exit 2; }

for target in "$@"; do
	bin="$builddir/tests/fuzz/fuzz_$target"
	corpus="$builddir/tests/fuzz/campaign/$target"
	log="$builddir/tests/fuzz/campaign/$target.log"
	mkdir -p "$corpus"
	start=$(date +%s)
	"$bin" -runs="$runs" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$builddir/tests/fuzz/crash-$target-" \
		"$corpus" "$srcdir/corpus/$target" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(grep -E '^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED)' "$log" | tail -n 1 |
		sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*/edges \1, features \2, corpus \3/p')
	if [ "$rc" -eq 0 ]; then
		echo "PASS fuzz_$target: ${execs:-?} runs in ${secs}s (${rate:-?}/s), $cov"
	else
		failed=$((failed + 1))
		echo "FAIL fuzz_$target: exit $rc after ${execs:-?} runs in ${secs}s, $cov (log: $log)"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix)' "$log" | head -n 5 | sed 's/^/    /'
	fi
done
[ "$failed" -eq 0 ]

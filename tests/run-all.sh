#!/bin/bash
# run-all.sh - the whole test suite: install what is missing, then build
# twice (-Werror, and -fsanitize=address,undefined) and run `make check`
# under both, then build the libFuzzer targets and run each for
# FUZZ_SECONDS (default 60). Prints "N passed, N failed" at the end.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash tests/deps.sh || exit 1
autoreconf -fi >/dev/null 2>&1 || { autoreconf -fi; exit 1; }
jobs=$(nproc)
passed=0 failed=0 skipped=0

count() {   # count DIR: add automake's per-test results of DIR
	local log=$1/test-suite.log
	[ -f "$log" ] || return
	local p f s
	p=$(find "$1/tests" -name '*.trs' -exec grep -h '^:test-result: PASS' {} + | wc -l)
	f=$(find "$1/tests" -name '*.trs' -exec grep -h -E '^:test-result: (FAIL|ERROR|XPASS)' {} + | wc -l)
	s=$(find "$1/tests" -name '*.trs' -exec grep -h '^:test-result: SKIP' {} + | wc -l)
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

run_build() {   # run_build NAME CONFIGURE-ARGS...
	local dir=$top/build-$1; shift
	echo "=== build $dir: configure $*"
	rm -rf "$dir" && mkdir -p "$dir"
	(cd "$dir" && "$top/configure" "$@" >configure.out 2>&1) || { cat "$dir/configure.out"; failed=$((failed + 1)); return; }
	if ! make -C "$dir" -j"$jobs" >"$dir/make.out" 2>&1; then
		tail -50 "$dir/make.out"; failed=$((failed + 1)); return
	fi
	make -C "$dir" -j"$jobs" check || { find "$dir/tests" -name '*.log' -newer "$dir/make.out" \
		-exec grep -l -E '^(FAIL|ERROR)' {} + 2>/dev/null | head -5 | xargs -r tail -40; }
	count "$dir"
}

run_build werror --enable-werror
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_build asan --enable-werror --enable-sanitizers

echo "=== fuzz targets (${FUZZ_SECONDS:-60} s each)"
if make -C "$top/build-werror" fuzz >"$top/build-werror/fuzz.out" 2>&1; then
	if FUZZ_SECONDS=${FUZZ_SECONDS:-60} bash tests/fuzz/run.sh "$top/build-werror"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
else
	tail -30 "$top/build-werror/fuzz.out"; failed=$((failed + 1))
fi

echo
echo "suite: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

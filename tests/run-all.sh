#!/bin/bash
# run-all.sh - the whole test suite: install what is missing, then build
# twice (-Werror, and -fsanitize=address,undefined) and run `make check`
# under both, then build the libFuzzer targets and run each for
# FUZZ_SECONDS (default 60), nproc of them at a time, then `make
# distcheck-quick` (the release tarball builds, installs, uninstalls and
# passes the tests that need its files), then docker/test.sh if a Docker engine is reachable (`docker info`;
# DOCKER_TIME_LIMIT, default 1200 s; otherwise it says "docker: no engine,
# docker/test.sh not run"). Ends with the line
#   suite: N passed, N failed, N skipped
# and exits non-zero when anything failed: a test, a configure, a build, a
# `make check` that did not finish, a fuzz target, distcheck, or the time
# limit.
#
# Time limits: the whole run SUITE_TIME_LIMIT seconds (default 2400), each
# `make check` CHECK_TIME_LIMIT (default 1200); each test has its own
# (unit tests: tests/unit/local.mk; integration tests: their watchdog).
# SUITE_TESTS="tests/unit/test_x ..." runs only those tests (make check
# TESTS=...), for trying the suite itself out.
# With CI=true a skipped test is a failure unless it names a reason that
# cannot be fixed on the machine (tests/lib/harness.py, Test.skip).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# The whole run under a time limit: timeout(1) signals the whole process
# group (make, the tests), and the trap below still prints the closing line.
if [ -z "${BACKSTOP_SUITE_TIMED:-}" ]; then
	export BACKSTOP_SUITE_TIMED=1
	timeout -k 30 "${SUITE_TIME_LIMIT:-2400}" bash "$0" "$@"
	rc=$?
	[ "$rc" -eq 124 ] && echo "run-all.sh: killed after SUITE_TIME_LIMIT=${SUITE_TIME_LIMIT:-2400}s"
	exit "$rc"
fi

passed=0 failed=0 skipped=0
summary() { echo; echo "suite: $passed passed, $failed failed, $skipped skipped"; }
problem() { echo "run-all.sh: FAIL: $*"; failed=$((failed + 1)); }
trap 'problem "time limit (SUITE_TIME_LIMIT=${SUITE_TIME_LIMIT:-2400}s) reached"; summary; exit 124' TERM
trap 'problem "interrupted"; summary; exit 130' INT

# The bounce corpus is ../shared/corpora beside the checkout (the tests also
# look beside every parent). A clone made elsewhere (mktemp -d) finds it
# beside the repository it was cloned from.
if [ -z "${BACKSTOP_CORPORA:-}" ]; then
	origin=$(git config --get remote.origin.url 2>/dev/null || true)
	for d in "$top/.." "${origin:+$origin/..}"; do
		c="$d/shared/corpora"
		if [ -n "$d" ] && [ -d "$c/sisimai-set-of-emails/maildir/bsd" ]; then
			export BACKSTOP_CORPORA=$(cd "$c" && pwd)
			export BOUNCE_CORPUS=$BACKSTOP_CORPORA/sisimai-set-of-emails/maildir
			break
		fi
	done
fi

bash tests/deps.sh || { problem "tests/deps.sh could not install the dependencies"; summary; exit 1; }
autoreconf -fi >/dev/null 2>&1 || { autoreconf -fi; problem "autoreconf"; summary; exit 1; }
jobs=$(nproc)

show_failures() {   # show_failures DIR: the last lines of each failed test's log
	local trs n=0
	while IFS= read -r trs; do
		n=$((n + 1))
		[ "$n" -le 10 ] || { echo "(more failed tests: see $1/test-suite.log)"; break; }
		echo "--- ${trs%.trs}.log (last 40 lines)"
		tail -n 40 "${trs%.trs}.log"
	done < <(find "$1/tests" -name '*.trs' -exec grep -l -E '^:test-result: (FAIL|ERROR|XPASS)' {} + 2>/dev/null | sort)
}

count() {   # count DIR CHECK-STATUS: add automake's per-test results of DIR
	local dir=$1 rc=$2 p=0 f=0 s=0
	if [ -f "$dir/test-suite.log" ]; then
		p=$(find "$dir/tests" -name '*.trs' -exec grep -h '^:test-result: PASS' {} + | wc -l)
		f=$(find "$dir/tests" -name '*.trs' -exec grep -h -E '^:test-result: (FAIL|ERROR|XPASS)' {} + | wc -l)
		s=$(find "$dir/tests" -name '*.trs' -exec grep -h '^:test-result: SKIP' {} + | wc -l)
		passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
		find "$dir/tests" -name '*.trs' -exec grep -l '^:test-result: SKIP' {} + 2>/dev/null |
			while IFS= read -r trs; do
				echo "skipped: ${trs%.trs}: $(grep -m1 '^SKIP' "${trs%.trs}.log")"
			done
	else
		problem "$dir: make check wrote no test-suite.log (a test program did not build?)"
		return
	fi
	# make check failed but no test did: a build step of make check, a
	# time limit, or a test harness error
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && problem "$dir: make check exited $rc with no failed test"
	[ "$p" -gt 0 ] || problem "$dir: no test passed"
}

run_build() {   # run_build NAME CONFIGURE-ARGS...
	local dir=$top/build-$1 rc; shift
	echo "=== build $dir: configure $*"
	rm -rf "$dir" && mkdir -p "$dir"
	(cd "$dir" && "$top/configure" "$@" >configure.out 2>&1) ||
		{ tail -n 40 "$dir/configure.out"; problem "$dir: configure"; return; }
	if ! make -C "$dir" -j"$jobs" >"$dir/make.out" 2>&1; then
		tail -n 50 "$dir/make.out"; problem "$dir: make"; return
	fi
	timeout -k 30 "${CHECK_TIME_LIMIT:-1200}" make -C "$dir" -j"$jobs" check \
		${SUITE_TESTS:+TESTS="$SUITE_TESTS"}
	rc=$?
	[ "$rc" -eq 124 ] && echo "run-all.sh: make check in $dir killed after ${CHECK_TIME_LIMIT:-1200}s"
	[ "$rc" -ne 0 ] && show_failures "$dir"
	count "$dir" "$rc"
}

run_build werror --enable-werror
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_build asan --enable-werror --enable-sanitizers

echo "=== fuzz targets (${FUZZ_SECONDS:-60} s each, $jobs at a time)"
if [ ! -f "$top/build-werror/Makefile" ]; then
	problem "fuzz: build-werror was not configured"
elif make -C "$top/build-werror" -j"$jobs" fuzz >"$top/build-werror/fuzz.out" 2>&1; then
	FUZZ_SECONDS=${FUZZ_SECONDS:-60} FUZZ_JOBS=$jobs bash tests/fuzz/run.sh "$top/build-werror" |
		tee "$top/build-werror/fuzz-run.out"
	rc=${PIPESTATUS[0]}
	p=$(grep -c '^PASS ' "$top/build-werror/fuzz-run.out")
	f=$(grep -c '^FAIL ' "$top/build-werror/fuzz-run.out")
	passed=$((passed + p)) failed=$((failed + f))
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && problem "fuzz: tests/fuzz/run.sh exited $rc"
else
	tail -n 30 "$top/build-werror/fuzz.out"; problem "fuzz: make fuzz"
fi

# The release tarball: make dist, then in the unpacked copy (read-only
# sources) configure, build, the tests that need the tarball's own files,
# install, uninstall and clean (Makefile.am, distcheck-quick; about a minute).
echo "=== make distcheck-quick"
if [ ! -f "$top/build-werror/Makefile" ]; then
	problem "distcheck: build-werror was not configured"
elif timeout -k 30 "${DISTCHECK_TIME_LIMIT:-600}" make -C "$top/build-werror" -j"$jobs" distcheck-quick \
		DISTCHECK_CONFIGURE_FLAGS=--enable-werror >"$top/build-werror/distcheck.out" 2>&1; then
	echo "PASS: make distcheck-quick"
	passed=$((passed + 1))
else
	grep -E '^(FAIL|ERROR|XPASS|SKIP):' "$top/build-werror/distcheck.out"
	tail -n 40 "$top/build-werror/distcheck.out"
	problem "make distcheck-quick (log: build-werror/distcheck.out)"
fi

# The container packaging (docker/test.sh: images, compose stacks with Postfix and HAProxy),
# only where a Docker engine is already reachable: this script never starts one (CI has none).
echo "=== docker"
if command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; then
	if timeout -k 30 "${DOCKER_TIME_LIMIT:-1200}" bash docker/test.sh; then
		passed=$((passed + 1))
	else
		problem "docker/test.sh"
	fi
else
	echo "docker: no engine, docker/test.sh not run"
fi

summary
[ "$failed" -eq 0 ]

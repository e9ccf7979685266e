#!/bin/bash
# batv_exim - backstop's prvs tags and Exim's are interchangeable (issue 5).
#
# Exim 4 is the reference, recorded: tests/data/batv_exim/vectors.tsv holds
# what Debian 12's exim4-daemon-light (4.96) computed, under faketime, for
# several fixed dates and every key number 0-9 (made once by
# tests/data/batv_exim/make-vectors.sh, which says how; the test needs
# neither Exim nor a network). Under faketime for the same dates:
#   - Exim's ${prvs{addr}{secret}{key}} verifies with
#     "backstop -c CONFIG batv verify TAG" (valid on the day and 7 days
#     later, expired 8 days later);
#   - "backstop -c CONFIG batv sign ADDR" gives Exim's tag, which Exim's
#     ${prvscheck{tag}{secret}{...}} accepted on the day and 7 days later;
#   - a tag made with another secret is refused by both.
# backstop runs under faketime too: the real clock path, no test hook.
# Every backstop run must exit as expected with no sanitizer report.
# BATV_EXIM_LIVE=1 also remakes the vectors with Exim (apt-get download)
# and compares them with the stored ones.
#
# Environment (set by the harness): BACKSTOP_BIN, BACKSTOP_SRCDIR.
# Exit: 0 pass, 1 fail, 77 skip (faketime missing, outside CI only), 99
# error (the vectors are missing). Time limit: BATV_EXIM_TIME_LIMIT (400 s; the ASan build takes
# about 90 s on a loaded 2-core machine).
set -u

if [ -z "${BATV_EXIM_TIMED:-}" ]; then
	export BATV_EXIM_TIMED=1
	timeout -k 10 "${BATV_EXIM_TIME_LIMIT:-400}" bash "$0" "$@"
	rc=$?
	[ "$rc" -eq 124 ] && echo "FAIL: batv_exim.sh killed after ${BATV_EXIM_TIME_LIMIT:-400}s"
	exit "$rc"
fi

BACKSTOP_BIN=${BACKSTOP_BIN:?BACKSTOP_BIN is not set}
SRCDIR=${BACKSTOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
VECTORS=$SRCDIR/tests/data/batv_exim/vectors.tsv
T=$(mktemp -d /tmp/batv_exim.XXXXXX)
trap 'rm -rf "$T"' EXIT
export TZ=UTC
# an ASan build under faketime's LD_PRELOAD: ASan must not insist on
# being first in the library list
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

skip() {   # the harness's rule: under CI=true a fixable skip is a failure
	echo "SKIP: $*"
	case ${CI:-} in true | 1 | yes) echo "FAIL: skipped under CI=true: $*"; exit 1 ;; esac
	exit 77
}
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

command -v faketime >/dev/null || skip "faketime is not installed (tests/deps.sh installs it)"
[ -s "$VECTORS" ] || { echo "ERROR: $VECTORS is missing"; exit 99; }

backstop_at() {   # backstop_at DATE CONFIG ARGS...: stdout in $out, exit status in $bs_rc
	local date=$1 cfg=$2
	shift 2
	out=$(faketime "$date 12:00:00" "$BACKSTOP_BIN" -c "$cfg" batv "$@" 2>>"$T/stderr")
	bs_rc=$?
}
expect() {   # expect WHAT WANT-OUTPUT WANT-STATUS GOT-OUTPUT
	checks=$((checks + 1))
	[ "$4" = "$2" ] && [ "$bs_rc" = "$3" ] ||
		fail "$1: backstop said '$4' (exit $bs_rc), want '$2' (exit $3)"
}
plus() { date -u -d "$1 + $2 days" +%F; }

config() {   # config KEY SECRET: a config signing with KEY, path on stdout
	local k=$1 cfg=$T/backstop-$1.ini
	if [ ! -f "$cfg" ]; then
		printf '%s %s\n' "$k" "$2" >"$T/keys-$k"
		chmod 600 "$T/keys-$k"
		cat >"$cfg" <<EOC
[backend]
address = 127.0.0.1:25
[batv]
mode = enforce
domains = example.com example.org
keys_file = $T/keys-$k
sign_key = $k
validity_days = 7
EOC
	fi
	echo "$cfg"
}

# --- the comparisons ---------------------------------------------------------
failures=0 checks=0 tags=0 wraps=0
echo "reference: $(grep -m1 '^# oracle:' "$VECTORS")"
while IFS=$'\t' read -r kind a b c d e f g h i; do
	case $kind in
	tag)
		date=$a k=$b s=$c addr=$d tag=$e forged=$f check=$g check7=$h checkf=$i
		tags=$((tags + 1))
		cfg=$(config "$k" "$s")
		d7=$(plus "$date" 7)
		d8=$(plus "$date" 8)

		# Exim signed, backstop verifies: on the day, the last day, expired after
		backstop_at "$date" "$cfg" verify "$tag"
		echo "$date key $k: exim \${prvs} $addr -> $tag; backstop verify -> $out"
		expect "exim's $tag on $date" "valid $addr" 0 "$out"
		backstop_at "$d7" "$cfg" verify "$tag"
		expect "exim's $tag on $d7 (last day)" "valid $addr" 0 "$out"
		backstop_at "$d8" "$cfg" verify "$tag"
		expect "exim's $tag on $d8" "BATV tag expired" 1 "$out"

		# backstop signs the same address: Exim's tag, which Exim accepted
		backstop_at "$date" "$cfg" sign "$addr"
		mine=$out
		echo "$date key $k: backstop sign $addr -> $mine"
		expect "backstop sign $addr on $date" "$tag" 0 "$mine"
		checks=$((checks + 2))
		[ "$check" = "[1] $k $addr" ] || fail "vectors: exim's \${prvscheck} of $tag on $date gave '$check'"
		[ "$check7" = "[1]" ] || fail "vectors: exim's \${prvscheck} of $tag on $d7 gave '$check7'"

		# another secret: both refuse
		backstop_at "$date" "$cfg" verify "$forged"
		expect "forged $forged" "invalid BATV signature" 1 "$out"
		checks=$((checks + 1))
		[ "$checkf" = "[]" ] || fail "vectors: exim accepted the forged $forged: $checkf"
		;;
	wrap)
		# The draft's wrap rule where Exim differs: a tag that expired on
		# day 19998 (made on 2024-09-25) is valid again for Exim on
		# 2024-10-04 (day 20000); backstop keeps refusing it.
		made=$a on=$b k=$c s=$d addr=$e tag=$f res=$g
		wraps=$((wraps + 1))
		cfg=$(config "$k" "$s")
		backstop_at "$made" "$cfg" sign "$addr"
		mine=$out
		expect "backstop sign $addr on $made" "$tag" 0 "$mine"
		backstop_at "$on" "$cfg" verify "$tag"
		echo "wrap: $tag on $on: exim says '$res' (its wrap rule), backstop says '$out'"
		expect "$tag after it expired across the wrap" "BATV tag expired" 1 "$out"
		;;
	\#* | '') ;;
	*) fail "vectors: unknown line kind '$kind'" ;;
	esac
done <"$VECTORS"

# the vectors are all there: 6 dates x 10 keys, and the wrap case
[ "$tags" = 60 ] && [ "$wraps" = 1 ] || fail "vectors: $tags tag lines and $wraps wrap lines, want 60 and 1"
if grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer' "$T/stderr"; then
	fail "sanitizer report from backstop:"
	head -n 40 "$T/stderr"
fi

if [ -n "${BATV_EXIM_LIVE:-}" ]; then
	bash "$SRCDIR/tests/data/batv_exim/make-vectors.sh" >"$T/live.tsv" ||
		fail "make-vectors.sh (BATV_EXIM_LIVE)"
	checks=$((checks + 1))
	diff <(grep -v '^#' "$VECTORS") <(grep -v '^#' "$T/live.tsv") ||
		fail "Exim today computes other vectors than tests/data/batv_exim/vectors.tsv"
fi

echo "batv_exim: $checks checks, $failures failed"
[ "$failures" = 0 ] && [ "$checks" -gt 0 ]

#!/bin/bash
# batv_exim - backstop's prvs tags and Exim's are interchangeable (issue 5).
#
# Exim 4 is the reference: Debian's exim4-daemon-light is downloaded and
# unpacked into a temp dir (never installed: installing it would remove
# postfix, see tests notes test-peers.md section 6), then, under faketime
# for several fixed dates and every key number 0-9:
#   - Exim's ${prvs{addr}{secret}{key}} verifies with
#     "backstop -c CONFIG batv verify TAG" (valid on the day and 7 days
#     later, expired 8 days later);
#   - "backstop -c CONFIG batv sign ADDR" is accepted by Exim's
#     ${prvscheck{tag}{secret}{...}} on the day and 7 days later;
#   - a tag made with another secret is refused by both.
# backstop runs under faketime too: the real clock path, no test hook.
#
# Environment (set by the harness): BACKSTOP_BIN, BACKSTOP_SRCDIR.
# Exit: 0 pass, 1 fail, 77 skip (apt cannot provide exim4 at all).
set -u

BACKSTOP_BIN=${BACKSTOP_BIN:?BACKSTOP_BIN is not set}
T=$(mktemp -d /tmp/batv_exim.XXXXXX)
trap 'rm -rf "$T"' EXIT
export TZ=UTC
# an ASan build under faketime's LD_PRELOAD: ASan must not insist on
# being first in the library list
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

# --- the oracle ------------------------------------------------------------
if ! command -v faketime >/dev/null; then
	as_root apt-get install -y faketime >/dev/null 2>&1 ||
		skip "faketime is not installed and apt cannot install it"
fi
(cd "$T" && apt-get download exim4-daemon-light >/dev/null 2>&1) ||
	{ as_root apt-get update >/dev/null 2>&1;
	  (cd "$T" && apt-get download exim4-daemon-light >/dev/null 2>&1); } ||
	skip "apt cannot provide exim4-daemon-light"
dpkg-deb -x "$T"/exim4-daemon-light_*.deb "$T/root" || { echo "FAIL: dpkg-deb -x"; exit 1; }
EXIM=$T/root/usr/sbin/exim4
if ldd "$EXIM" | grep -q 'not found'; then
	echo "installing exim's shared libraries: $(ldd "$EXIM" | awk '/not found/ {print $1}' | tr '\n' ' ')"
	as_root apt-get install -y libdb5.3 libgnutls-dane0 libgnutls30 libidn12 \
		libidn2-0 libnsl2 libpcre2-8-0 >/dev/null 2>&1
	if ldd "$EXIM" | grep 'not found'; then
		echo "FAIL: exim4's shared libraries are missing (see above)"
		exit 1
	fi
fi
# exim drops privileges to Debian-exim and exits if the user is missing
if ! id -u Debian-exim >/dev/null 2>&1; then
	as_root useradd --system --user-group --no-create-home \
		--home-dir /nonexistent --shell /usr/sbin/nologin Debian-exim ||
		{ echo "FAIL: cannot create the Debian-exim user exim needs"; exit 1; }
fi
printf 'keep_environment =\n' >"$T/exim.conf"
exim_at() {   # exim_at DATE EXPANSION
	faketime "$1 12:00:00" "$EXIM" -C "$T/exim.conf" -be "$2"
}
backstop_at() {   # backstop_at DATE CONFIG ARGS...
	local date=$1 cfg=$2
	shift 2
	faketime "$date 12:00:00" "$BACKSTOP_BIN" -c "$cfg" batv "$@"
}
# shellcheck disable=SC2016  # an Exim expansion, not a shell one
got=$(exim_at 2024-01-01 '${prvs{user@example.com}{secret}{1}}')
[ "$got" = "prvs=173025a701=user@example.com" ] ||
	{ echo "FAIL: the oracle itself: got '$got', want prvs=173025a701=user@example.com"; exit 1; }
echo "oracle: $("$EXIM" -C "$T/exim.conf" -bV 2>/dev/null | head -1)"

# --- keys and configs: one secret per key number, one config per sign_key --
secret() { printf 'interop-secret-%s-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ' "$1" | cut -c1-$((19 + $1 * 5)); }
: >"$T/keys"
chmod 600 "$T/keys"
for k in 0 1 2 3 4 5 6 7 8 9; do
	printf '%s %s\n' "$k" "$(secret "$k")" >>"$T/keys"
done
for k in 0 1 2 3 4 5 6 7 8 9; do
	cat >"$T/backstop-$k.ini" <<EOF
[backend]
address = 127.0.0.1:25
[batv]
mode = enforce
domains = example.com example.org
keys_file = $T/keys
sign_key = $k
validity_days = 7
EOF
done

# --- the comparisons ---------------------------------------------------------
# 2024-01-01 day 19723 (the reference vector), 2024-02-29 (leap day),
# 2024-09-29 day 19995 (expiry day 002: the tag wraps), 2024-10-03 day
# 19999 (today 999), 2024-10-04 day 20000 (today 000), 2038-01-20 (past
# 32-bit time_t)
dates="2024-01-01 2024-02-29 2024-09-29 2024-10-03 2024-10-04 2038-01-20"
addrs=("user@example.com" "Us+e=r@Example.COM" "x=y=z@example.org" "MiXeD.Case@example.com" '"j doe"@example.com')
failures=0 checks=0
plus() { date -u -d "$1 + $2 days" +%F; }
for date in $dates; do
	i=0
	for k in 0 1 2 3 4 5 6 7 8 9; do
		addr=${addrs[$((i++ % ${#addrs[@]}))]}
		s=$(secret "$k")
		cfg=$T/backstop-$k.ini
		d7=$(plus "$date" 7)
		d8=$(plus "$date" 8)

		# Exim signs, backstop verifies
		tag=$(exim_at "$date" "\${prvs{$addr}{$s}{$k}}")
		out=$(backstop_at "$date" "$cfg" verify "$tag")
		checks=$((checks + 1))
		echo "$date key $k: exim \${prvs} $addr -> $tag; backstop verify -> $out"
		[ "$out" = "valid $addr" ] || fail "backstop did not verify exim's $tag on $date"
		out=$(backstop_at "$d7" "$cfg" verify "$tag")
		checks=$((checks + 1))
		[ "$out" = "valid $addr" ] || fail "backstop: exim's $tag on $d7 (last day): $out"
		out=$(backstop_at "$d8" "$cfg" verify "$tag")
		checks=$((checks + 1))
		[ "$out" = "BATV tag expired" ] || fail "backstop: exim's $tag on $d8: '$out', want expired"

		# backstop signs the same address: the same tag as Exim's
		mine=$(backstop_at "$date" "$cfg" sign "$addr")
		checks=$((checks + 1))
		echo "$date key $k: backstop sign $addr -> $mine"
		[ "$mine" = "$tag" ] || fail "backstop sign gave $mine, exim gave $tag"

		# Exim checks backstop's tag
		res=$(exim_at "$date" "\${prvscheck{$mine}{$s}{[\$prvscheck_result] \$prvscheck_keynum \$prvscheck_address}}")
		checks=$((checks + 1))
		echo "$date key $k: exim \${prvscheck} $mine -> $res"
		[ "$res" = "[1] $k $addr" ] || fail "exim refused backstop's $mine on $date: $res"
		res=$(exim_at "$d7" "\${prvscheck{$mine}{$s}{[\$prvscheck_result]}}")
		checks=$((checks + 1))
		[ "$res" = "[1]" ] || fail "exim refused backstop's $mine on $d7 (last day): $res"

		# another secret: both refuse
		forged=$(exim_at "$date" "\${prvs{$addr}{not-the-secret}{$k}}")
		out=$(backstop_at "$date" "$cfg" verify "$forged")
		checks=$((checks + 1))
		[ "$out" = "invalid BATV signature" ] || fail "backstop: forged $forged: '$out'"
		res=$(exim_at "$date" "\${prvscheck{$forged}{$s}{[\$prvscheck_result]}}")
		checks=$((checks + 1))
		[ "$res" = "[]" ] || fail "exim accepted the forged $forged: $res"
	done
done
# The draft's wrap rule where Exim differs: a tag that expired on day 19998
# (made on 2024-09-25) is valid again for Exim on 2024-10-04 (day 20000);
# backstop keeps refusing it.
tag=$(exim_at 2024-09-25 "\${prvs{user@example.com}{$(secret 1)}{1}}")
res=$(exim_at 2024-10-04 "\${prvscheck{$tag}{$(secret 1)}{[\$prvscheck_result]}}")
out=$(backstop_at 2024-10-04 "$T/backstop-1.ini" verify "$tag")
checks=$((checks + 1))
echo "wrap: $tag on 2024-10-04: exim says '$res' (its wrap rule), backstop says '$out'"
[ "$out" = "BATV tag expired" ] || fail "backstop accepted $tag after it expired across the wrap"

echo "batv_exim: $checks checks, $failures failed"
[ "$failures" = 0 ]

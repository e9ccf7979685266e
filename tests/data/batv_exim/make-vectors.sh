#!/bin/bash
# make-vectors.sh - write the Exim reference vectors that
# tests/integration/batv_exim.sh checks backstop against (run once, by
# hand, as root; the output is kept in tests/data/batv_exim/vectors.tsv so
# that the test needs neither Exim nor a network):
#
#   bash tests/data/batv_exim/make-vectors.sh > tests/data/batv_exim/vectors.tsv
#
# Exim is Debian 12's exim4-daemon-light, fetched with `apt-get download`
# and unpacked into a temp dir, never installed (installing it removes
# postfix: both provide mail-transport-agent); it starts no daemon. It runs
# under faketime for each date. Lines (tab-separated; # lines are comments):
#   tag   DATE KEY SECRET ADDR  EXIM-TAG  EXIM-FORGED-TAG
#         EXIM-CHECK-ON-DATE  EXIM-CHECK-7-DAYS-LATER  EXIM-CHECK-OF-FORGED
#   wrap  MADE-ON CHECKED-ON KEY SECRET ADDR  EXIM-TAG  EXIM-CHECK
# EXIM-FORGED-TAG is made with the secret "not-the-secret"; a check is the
# expansion ${prvscheck{TAG}{SECRET}{[$prvscheck_result] $prvscheck_keynum
# $prvscheck_address}} (the 7-days-later and forged checks print only
# [$prvscheck_result]).
set -euo pipefail
T=$(mktemp -d /tmp/batv_vectors.XXXXXX)
trap 'rm -rf "$T"' EXIT
export TZ=UTC
(cd "$T" && apt-get download exim4-daemon-light >/dev/null) ||
	{ echo "apt-get download exim4-daemon-light failed" >&2; exit 1; }
dpkg-deb -x "$T"/exim4-daemon-light_*.deb "$T/root"
EXIM=$T/root/usr/sbin/exim4
if ldd "$EXIM" | grep -q 'not found'; then
	apt-get install -y -q libdb5.3 libgnutls-dane0 libgnutls30 libidn12 \
		libidn2-0 libnsl2 libpcre2-8-0 >&2
fi
id -u Debian-exim >/dev/null 2>&1 ||
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin Debian-exim
printf 'keep_environment =\n' >"$T/exim.conf"
exim_at() { faketime "$1 12:00:00" "$EXIM" -C "$T/exim.conf" -be "$2"; }
# shellcheck disable=SC2016  # an Exim expansion, not a shell one
got=$(exim_at 2024-01-01 '${prvs{user@example.com}{secret}{1}}')
[ "$got" = "prvs=173025a701=user@example.com" ] ||
	{ echo "the oracle itself: got '$got', want prvs=173025a701=user@example.com" >&2; exit 1; }

secret() { printf 'interop-secret-%s-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ' "$1" | cut -c1-$((19 + $1 * 5)); }
# 2024-01-01 day 19723 (the reference vector), 2024-02-29 (leap day),
# 2024-09-29 day 19995 (expiry day 002: the tag wraps), 2024-10-03 day
# 19999 (today 999), 2024-10-04 day 20000 (today 000), 2038-01-20 (past
# 32-bit time_t)
dates="2024-01-01 2024-02-29 2024-09-29 2024-10-03 2024-10-04 2038-01-20"
addrs=("user@example.com" "Us+e=r@Example.COM" "x=y=z@example.org" "MiXeD.Case@example.com" '"j doe"@example.com')
plus() { date -u -d "$1 + $2 days" +%F; }

echo "# made by tests/data/batv_exim/make-vectors.sh on $(date -u +%F)"
echo "# oracle: $("$EXIM" -C "$T/exim.conf" -bV 2>/dev/null | head -1)"
echo "# package: $(dpkg-deb -f "$T"/exim4-daemon-light_*.deb Package Version | paste -sd' ')"
for date in $dates; do
	i=0
	for k in 0 1 2 3 4 5 6 7 8 9; do
		addr=${addrs[$((i++ % ${#addrs[@]}))]}
		s=$(secret "$k")
		tag=$(exim_at "$date" "\${prvs{$addr}{$s}{$k}}")
		forged=$(exim_at "$date" "\${prvs{$addr}{not-the-secret}{$k}}")
		check=$(exim_at "$date" "\${prvscheck{$tag}{$s}{[\$prvscheck_result] \$prvscheck_keynum \$prvscheck_address}}")
		check7=$(exim_at "$(plus "$date" 7)" "\${prvscheck{$tag}{$s}{[\$prvscheck_result]}}")
		checkf=$(exim_at "$date" "\${prvscheck{$forged}{$s}{[\$prvscheck_result]}}")
		printf 'tag\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$date" "$k" "$s" "$addr" \
			"$tag" "$forged" "$check" "$check7" "$checkf"
	done
done
# The draft's wrap rule where Exim differs: a tag that expired on day 19998
# (made on 2024-09-25) is valid again for Exim on 2024-10-04 (day 20000).
s=$(secret 1)
tag=$(exim_at 2024-09-25 "\${prvs{user@example.com}{$s}{1}}")
res=$(exim_at 2024-10-04 "\${prvscheck{$tag}{$s}{[\$prvscheck_result]}}")
printf 'wrap\t2024-09-25\t2024-10-04\t1\t%s\tuser@example.com\t%s\t%s\n' "$s" "$tag" "$res"

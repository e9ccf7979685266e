#!/bin/bash
# demo.sh - the quick start: install what is missing, build, start a local
# backend (Postfix's smtp-sink, keeping every message it receives, reachable
# as ./demo-mail/) and backstop on the shipped backstop.ini in front of it.
# Ctrl-C (or SIGTERM) stops both.
#
#   bash tests/demo.sh [-o section.key=value]...
#
# Extra arguments go to backstop (e.g. -o server.listen=127.0.0.1:2526 when
# 2525 is taken); the addresses printed are the effective ones. Works from
# any checkout location, also one only root can enter (/root is 0700):
# smtp-sink runs as nobody, so the messages go to a directory of their own
# under /tmp, and ./demo-mail is a symbolic link to it.
# BACKSTOP_BIN=path skips installing and building (the tests use it).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ -n "${BACKSTOP_BIN:-}" ]; then
	bin=$BACKSTOP_BIN
else
	bash tests/deps.sh
	[ -x configure ] || autoreconf -fi
	mkdir -p build && cd build
	[ -f Makefile ] || ../configure
	make -j"$(nproc)" backstop
	cd "$top"
	bin=$top/build/backstop
fi

# the effective configuration: backstop.ini with the -o settings given
effective() { "$bin" -n -c backstop.ini "$@"; }
host=$(effective "$@" | sed -n 's/^hostname = //p' | head -1)
backend=$(effective "$@" | sed -n '/^\[backend\]/,/^\[/s/^address = //p')
listen=$(effective "$@" | sed -n '/^\[server\]/,/^\[/s/^listen = //p' | cut -d' ' -f1)

# a self-signed certificate for STARTTLS (kept if it exists already)
bash certs/make-self-signed.sh "${host:-localhost}" certs/demo >/dev/null

# smtp-sink drops to nobody before it writes a message: the directory must
# be one nobody can reach, which the checkout may not be
mail=$(mktemp -d /tmp/backstop-demo-mail.XXXXXX)
chmod 0755 "$mail"
chown nobody: "$mail"
if [ -d demo-mail ] && [ ! -L demo-mail ]; then
	rm -rf demo-mail.previous && mv demo-mail demo-mail.previous
fi
ln -sfn "$mail" demo-mail

sink= bs= rc=0
stop() {
	trap - INT TERM EXIT
	if [ -n "$bs" ]; then kill "$bs" 2>/dev/null; wait "$bs" 2>/dev/null || true; fi
	if [ -n "$sink" ]; then kill "$sink" 2>/dev/null; wait "$sink" 2>/dev/null || true; fi
	exit "$rc"
}
trap stop INT TERM EXIT
/usr/sbin/smtp-sink -u nobody -d "$mail/%H%M." "$backend" 100 &
sink=$!
cat <<MSG

backstop listens on $listen and relays to a local backend (smtp-sink) on $backend.
Send a message through it from another terminal:

    swaks --server $listen --from you@example.net --to someone@example.org
    swaks --server $listen --from you@example.net --to someone@example.org --tls

(the second with STARTTLS, on the self-signed certificate in certs/demo/).

Every message the backend receives lands as a file under $top/demo-mail/
(a link to $mail; look for backstop's Received: header). Stop with Ctrl-C.

MSG
# backstop.ini names no [server] user, and backstop refuses to keep root
# unless told so by name: the demo, started as root from a checkout whose
# files only root may read, says so here (a real installation sets user)
asroot=()
[ "$(id -u)" = 0 ] && asroot=(-o server.user=root)
"$bin" -f -c backstop.ini "${asroot[@]}" \
	-o tls.certificate="$top/certs/demo/backstop.crt" -o tls.key="$top/certs/demo/backstop.key" "$@" &
bs=$!
wait "$bs" || rc=$?   # backstop ended by itself (a start-up error): its status
bs=

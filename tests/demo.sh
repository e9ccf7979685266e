#!/bin/bash
# demo.sh - the quick start: install what is missing, build, start a local
# backend (Postfix's smtp-sink, writing every message it receives to
# ./demo-mail/) and backstop on the shipped backstop.ini in front of it.
# Ctrl-C stops both.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash tests/deps.sh
[ -x configure ] || autoreconf -fi
mkdir -p build && cd build
[ -f Makefile ] || ../configure
make -j"$(nproc)" backstop
cd "$top"

# a self-signed certificate for STARTTLS (kept if it exists already)
host=$(sed -n 's/^hostname *= *//p' backstop.ini | head -1)
bash certs/make-self-signed.sh "${host:-localhost}" certs/demo >/dev/null

backend=$(sed -n 's/^address *= *//p' backstop.ini | head -1)
listen=$(sed -n 's/^listen *= *//p' backstop.ini | head -1 | cut -d' ' -f1)
mkdir -p demo-mail && chmod 1777 demo-mail
/usr/sbin/smtp-sink -u nobody -d "$top/demo-mail/%H%M." "$backend" 100 &
sink=$!
trap 'kill $sink 2>/dev/null; exit 0' INT TERM EXIT
cat <<MSG

backstop listens on $listen and relays to a local backend (smtp-sink) on $backend.
Send a message through it from another terminal:

    swaks --server $listen --from you@example.net --to someone@example.org
    swaks --server $listen --from you@example.net --to someone@example.org --tls

(the second with STARTTLS, on the self-signed certificate in certs/demo/).

Every message the backend receives lands as a file under $top/demo-mail/
(look for backstop's Received: header). Stop with Ctrl-C.

MSG
./build/backstop -f -c backstop.ini \
	-o tls.certificate="$top/certs/demo/backstop.crt" -o tls.key="$top/certs/demo/backstop.key"

#!/bin/sh
# make-self-signed.sh - a self-signed certificate and key for backstop's
# STARTTLS, for the quick start and for tests.
#
# Usage: certs/make-self-signed.sh HOSTNAME [DIR]
#   Writes DIR/backstop.key (mode 0600) and DIR/backstop.crt (self-signed,
#   subjectAltName DNS:HOSTNAME, or IP:HOSTNAME for an address). DIR
#   defaults to the current directory.
#
# An existing DIR/backstop.key is never overwritten: it is kept, and a
# certificate is only made for it when DIR/backstop.crt is missing. Remove
# the key yourself to start over. Environment: BACKSTOP_KEY_TYPE=rsa (the
# default: every SMTP client speaks RSA) or ec (P-256), BACKSTOP_DAYS=365.
set -eu

usage() { echo "usage: $0 HOSTNAME [DIR]" >&2; exit 2; }
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
host=$1
dir=${2:-.}
days=${BACKSTOP_DAYS:-365}
keytype=${BACKSTOP_KEY_TYPE:-rsa}

# The name goes into openssl's -subj and -addext: allow only what a host
# name or an address can contain.
case $host in
	''|*[!A-Za-z0-9.:-]*|.*|-*) echo "$0: invalid host name: $host" >&2; exit 2 ;;
esac
case $host in
	*:*) san="IP:$host" ;;          # IPv6 literal
	*[!0-9.]*) san="DNS:$host" ;;
	*) san="IP:$host" ;;            # IPv4 literal
esac

key=$dir/backstop.key
crt=$dir/backstop.crt
mkdir -p "$dir"

if [ -e "$key" ]; then
	if [ -e "$crt" ]; then
		echo "kept existing $key and $crt (nothing to do)"
		exit 0
	fi
	echo "kept existing $key; making $crt for it"
else
	umask 077
	tmp=$(mktemp "$dir/.backstop.key.XXXXXX")
	trap 'rm -f "$tmp"' EXIT
	case $keytype in
		rsa) openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp" ;;
		ec) openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp" ;;
		*) echo "$0: BACKSTOP_KEY_TYPE must be rsa or ec" >&2; exit 2 ;;
	esac
	chmod 600 "$tmp"
	# ln fails if the key appeared meanwhile: never clobber a key.
	if ! ln "$tmp" "$key" 2>/dev/null; then
		echo "$0: $key appeared meanwhile; kept it" >&2
		exit 1
	fi
	rm -f "$tmp"
	trap - EXIT
	umask 022
	echo "made $key"
fi

openssl req -x509 -new -key "$key" -out "$crt" -days "$days" -sha256 \
	-subj "/CN=$host" -addext "subjectAltName=$san" \
	-addext "basicConstraints=critical,CA:FALSE" \
	-addext "keyUsage=critical,digitalSignature,keyEncipherment" \
	-addext "extendedKeyUsage=serverAuth"
chmod 644 "$crt"
echo "made $crt (self-signed for $host, $san, $days days)"

#!/bin/sh
# make-test-ca.sh - the small test CA the suite uses. Never for production.
#
# Usage: certs/make-test-ca.sh DIR
#   DIR/ca.crt, ca.key                 the test CA
#   DIR/backstop.crt, backstop.key     backstop.test.example (+ localhost,
#                                      127.0.0.1, ::1): the listener
#   DIR/backstop-fullchain.crt         backstop.crt followed by ca.crt
#   DIR/backend.crt, backend.key       backend.test.example (+ localhost,
#                                      127.0.0.1): a Postfix backend
#   DIR/client.crt, client.key         client.test.example, clientAuth
# Keys are P-256 (fast to make and to handshake with), certificates valid
# for BACKSTOP_DAYS (default 30) days. Existing files in DIR are replaced:
# call it on a fresh temporary directory.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
days=${BACKSTOP_DAYS:-30}
mkdir -p "$dir"
cd "$dir"
umask 077

newkey() { openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
serial() { echo "0x$(openssl rand -hex 8)"; }

newkey ca.key
openssl req -x509 -new -key ca.key -out ca.crt -days "$days" -sha256 \
	-subj "/O=backstop test/CN=backstop test CA" \
	-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-addext "subjectKeyIdentifier=hash"

# issue NAME CN EKU SAN: NAME.key and NAME.crt signed by the CA.
issue() {
	newkey "$1.key"
	printf '%s\n' \
		"basicConstraints=critical,CA:FALSE" \
		"keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=$3" \
		"subjectKeyIdentifier=hash" \
		"authorityKeyIdentifier=keyid" > "$1.ext"
	[ -n "$4" ] && echo "subjectAltName=$4" >> "$1.ext"
	openssl req -new -key "$1.key" -subj "/O=backstop test/CN=$2" -out "$1.csr"
	openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "$(serial)" \
		-days "$days" -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
}

issue backstop backstop.test.example serverAuth \
	"DNS:backstop.test.example,DNS:localhost,IP:127.0.0.1,IP:::1"
issue backend backend.test.example serverAuth \
	"DNS:backend.test.example,DNS:localhost,IP:127.0.0.1"
issue client client.test.example clientAuth ""
cat backstop.crt ca.crt > backstop-fullchain.crt
chmod 644 ./*.crt
chmod 600 ./*.key

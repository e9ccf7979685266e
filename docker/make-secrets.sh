#!/bin/sh
# backstop-make-secrets DIR - make backstop's secrets in DIR (a volume) when they are missing:
#   DIR/backstop.key, DIR/backstop.crt  self-signed, for STARTTLS (certs/make-self-signed.sh)
#   DIR/batv.keys                      "0 <48 random hex digits>": BATV key 0
# Existing files are kept, so a restart or a second `compose up` changes nothing; delete a file
# to make a new one. The private files are made mode 0600 and owned by BACKSTOP_UID (2525, the
# image's backstop user), as backstop wants them; the certificate is world-readable.
# Environment: BACKSTOP_HOSTNAME (the certificate's name, default mx.example.test),
# BACKSTOP_UID (default 2525). Runs as root in compose.yml's one-shot `secrets` service.
set -eu
dir=${1:?usage: backstop-make-secrets DIR}
host=${BACKSTOP_HOSTNAME:-mx.example.test}
uid=${BACKSTOP_UID:-2525}
umask 077
mkdir -p "$dir"
sh /usr/local/share/backstop/make-self-signed.sh "$host" "$dir"
if [ ! -e "$dir/batv.keys" ]; then
	printf '0 %s\n' "$(openssl rand -hex 24)" >"$dir/batv.keys.new"
	mv "$dir/batv.keys.new" "$dir/batv.keys"
	echo "made $dir/batv.keys (key 0)"
else
	echo "kept existing $dir/batv.keys"
fi
chown "$uid:$uid" "$dir/backstop.key" "$dir/batv.keys"
chmod 0600 "$dir/backstop.key" "$dir/batv.keys"
chmod 0644 "$dir/backstop.crt"
chmod 0755 "$dir"

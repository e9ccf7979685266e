#!/bin/bash
# deps.sh - install what building and testing backstop needs on Debian 12
# (root). Installs only what is missing; never starts a daemon.
set -euo pipefail
pkgs=(build-essential autoconf automake libtool pkg-config
      libuv1-dev libssl-dev libspf2-dev libopendkim-dev libinih-dev libunbound-dev
      postfix swaks libnet-ssleay-perl unbound python3 python3-dnslib python3-dkim faketime bind9-dnsutils
      haproxy
      clang libclang-rt-14-dev openssl iproute2 procps psmisc util-linux testssl.sh
      libpsl-dev publicsuffix
      systemd groff-base man-db mandoc
      chromium)
# backend_identity.py: the transparent mode's policy routing (nft)
pkgs+=(nftables)
# [limits] store = redis:// (hiredis), rate_limits_redis.py (a real Redis)
pkgs+=(libhiredis-dev redis-server)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# postfix is used as a test backend only: no system configuration
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	# installing packages must not start daemons (unbound, postfix) on this host
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
	fi
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

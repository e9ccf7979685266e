#!/bin/bash
# backstop-healthcheck - the image's HEALTHCHECK: connect to backstop's first [server] listen
# address and expect the 220 greeting, then say QUIT. Bash only (/dev/tcp): the image has no
# nc or curl.
#
# The address comes from the effective configuration (`backstop -n` through the entrypoint, so
# with the BACKSTOP_* variables applied), so a mounted config or BACKSTOP_LISTEN with another
# port needs no change here; BACKSTOP_HEALTHCHECK_ADDRESS=host:port overrides it.
# The greeting is awaited for up to 10 s, which covers any sensible [server] greet_pause.
# Each probe is one short session in the log ("connect from [127.0.0.1]", then QUIT).
# With [server] proxy_protocol = on (behind HAProxy) the probe starts with a PROXY v2 LOCAL
# header, as HAProxy's own checks do: then proxy_trusted must include 127.0.0.1
# (compose.haproxy.yml's does).
set -u
conf=${BACKSTOP_CONFIG:-/etc/backstop/backstop.ini}
addr=${BACKSTOP_HEALTHCHECK_ADDRESS:-}

listen=
proxy_protocol=off
section=
while IFS= read -r line; do
	case $line in
	'['*']') section=$line ;;
	'listen = '*)
		[[ $section == '[server]' && -z $listen ]] && read -r listen _ <<<"${line#listen = }"
		;;
	'proxy_protocol = '*)
		[[ $section == '[server]' ]] && proxy_protocol=${line#proxy_protocol = }
		;;
	esac
done < <(backstop-entrypoint -n -c "$conf" 2>/dev/null)
if [[ -z $addr ]]; then
	addr=$listen
	[[ -n $addr ]] || { echo "unhealthy: no [server] listen address in $conf (backstop -t -c $conf)"; exit 1; }
fi

host=${addr%:*}
port=${addr##*:}
host=${host#[}
host=${host%]}
case $host in
'' | 0.0.0.0) host=127.0.0.1 ;;
::) host=::1 ;;
esac

if ! exec 3<>"/dev/tcp/$host/$port"; then
	echo "unhealthy: cannot connect to $host port $port"
	exit 1
fi
# backstop -n prints booleans as yes/no
if [[ $proxy_protocol == @(on|yes|true|1) ]]; then
	# PROXY v2 signature, version 2 command LOCAL, family unspecified, no address block
	printf '\r\n\r\n\0\r\nQUIT\n\x20\0\0\0' >&3
fi
if ! IFS= read -r -t 10 greeting <&3; then
	echo "unhealthy: no greeting from $host port $port within 10s"
	exit 1
fi
greeting=${greeting%$'\r'}
printf 'QUIT\r\n' >&3
IFS= read -r -t 2 _ <&3
exec 3>&-
case $greeting in
'220 '* | '220-'*) echo "healthy: $greeting"; exit 0 ;;
*) echo "unhealthy: greeting was: $greeting"; exit 1 ;;
esac

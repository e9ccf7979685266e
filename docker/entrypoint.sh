#!/bin/bash
# backstop-entrypoint - the image's ENTRYPOINT: turns BACKSTOP_* environment variables into
# `-o section.key=value` options (as Postfix's -o: they win over the file) and runs backstop
# with them before the command's own arguments:
#
#   docker run -e BACKSTOP_BACKEND=mail.internal:25 -e BACKSTOP__LIMITS__MAX_RECIPIENTS=50 backstop
#     runs  backstop -o backend.address=mail.internal:25 -o limits.max_recipients=50 \
#                    -f -c /etc/backstop/backstop.ini
#
# The common keys have short names (the table below); any key can be set as
# BACKSTOP__SECTION__KEY (two underscores around the section; case does not matter, the key
# keeps its single underscores: BACKSTOP__LIMITS__MAX_CONNECTIONS_PER_IP). A variable that is
# set, even to the empty string, sets its key: BACKSTOP_HOSTNAME= means "the container's host
# name", as an empty value in the file does. Values go to backstop as separate arguments,
# never through a shell, so spaces, quotes, $ or ; arrive as they are; backstop checks them as
# it checks the file (`docker run --rm -e ... backstop -n` prints the result).
#
# A BACKSTOP_ variable that is neither in the table nor of the BACKSTOP__SECTION__KEY form, or
# two variables for the same key, stop the container with a message: a misspelt name would
# otherwise be ignored without a word. BACKSTOP_CONFIG and BACKSTOP_HEALTHCHECK_ADDRESS
# belong to the healthcheck (healthcheck.sh) and are left alone.
#
# The same options apply to every backstop command run through this script: -t, -n,
# `batv sign ADDRESS` (docker exec CONTAINER backstop-entrypoint batv sign user@example.org),
# and the healthcheck's `-n`. A first argument that is not an option or `batv` is run as a
# command instead (docker run --rm -it backstop bash).
set -euo pipefail

backstop=/usr/local/bin/backstop

# Short names for the keys most deployments set; names in proxy/config.c.
declare -A common_keys=(
	[BACKSTOP_LISTEN]=server.listen
	[BACKSTOP_HOSTNAME]=server.hostname
	[BACKSTOP_BANNER]=server.banner
	[BACKSTOP_BACKEND]=backend.address
	[BACKSTOP_BACKEND_HELO]=backend.helo
	[BACKSTOP_BACKEND_XCLIENT]=backend.xclient
	[BACKSTOP_BACKEND_TLS]=backend.tls
	[BACKSTOP_MAX_CONNECTIONS_PER_IP]=limits.max_connections_per_ip
	[BACKSTOP_MAX_MESSAGE_SIZE]=limits.max_message_size
	[BACKSTOP_LOG_LEVEL]=log.level
	[BACKSTOP_TLS_CERTIFICATE]=tls.certificate
	[BACKSTOP_TLS_KEY]=tls.key
	[BACKSTOP_DNS_SERVERS]=dns.servers
	[BACKSTOP_SPF_MODE]=spf.mode
	[BACKSTOP_DKIM_MODE]=dkim.mode
	[BACKSTOP_DMARC_MODE]=dmarc.mode
	[BACKSTOP_BATV_MODE]=batv.mode
	[BACKSTOP_BATV_DOMAINS]=batv.domains
	[BACKSTOP_BATV_KEYS_FILE]=batv.keys_file
)

die() {
	echo "backstop-entrypoint: $*" >&2
	exit 2
}

# Not backstop: run it as it is (a shell in the image, for instance).
if [[ $# -gt 0 && $1 != -* && $1 != batv ]]; then
	exec "$@"
fi

options=()
declare -A set_by=()
# ${!prefix@}: the names of the variables that start with BACKSTOP_ (sorted); this script's own
# variables are all lower case, so these are the environment's.
for name in "${!BACKSTOP_@}"; do
	case $name in
	BACKSTOP_CONFIG | BACKSTOP_HEALTHCHECK_ADDRESS) continue ;;
	BACKSTOP__*)
		rest=${name#BACKSTOP__}
		section=${rest%%__*}
		key=${rest#*__}
		if [[ $rest != *__* || -z $section || -z $key || $key == *__* ]]; then
			die "$name: expected BACKSTOP__SECTION__KEY, e.g. BACKSTOP__LIMITS__MAX_RECIPIENTS"
		fi
		setting=${section,,}.${key,,}
		;;
	*)
		setting=${common_keys[$name]:-}
		if [[ -z $setting ]]; then
			known=$(printf '%s\n' "${!common_keys[@]}" | sort | tr '\n' ' ')
			die "unknown variable $name: the image knows ${known}and BACKSTOP__SECTION__KEY for any key"
		fi
		;;
	esac
	if [[ -n ${set_by[$setting]:-} ]]; then
		die "$name and ${set_by[$setting]} both set $setting: keep one"
	fi
	set_by[$setting]=$name
	options+=(-o "$setting=${!name}")
done

# Say where the settings came from when the daemon starts (not for -n, -t or batv, whose
# output scripts read).
if ((${#options[@]})); then
	for arg in "$@"; do
		if [[ $arg == -f ]]; then
			echo "backstop-entrypoint: from the environment: $(printf '%s\n' "${!set_by[@]}" | sort | tr '\n' ' ')" >&2
			break
		fi
	done
fi

exec "$backstop" "${options[@]}" "$@"

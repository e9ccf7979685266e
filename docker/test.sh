#!/bin/bash
# docker/test.sh - end-to-end test of the container packaging. One command:
#
#   bash docker/test.sh
#
# on any Docker engine that `docker info` reaches (DOCKER_HOST is honoured; on a machine without
# one, /work/shared/tools/local-docker-engine or Debian's docker.io). tests/run-all.sh runs it
# when an engine is reachable. Exits non-zero on the first failure; prints PASS or FAILED last.
#
#  1. builds the images (backstop, backstop-postfix, backstop-haproxy; the layer cache is reused);
#  2. the image: runs as `backstop`, `-t` passes, BACKSTOP_* variables reach backstop intact
#     (spaces, quotes, $), a misspelt variable stops it with a message;
#  3. compose.yml (backstop in front of Postfix) on a free port of 127.0.0.1: a message over
#     STARTTLS lands in Postfix's Maildir with backstop's Received: header and the client's
#     HELO passed on by XCLIENT; a forged bounce (MAIL FROM:<> to an untagged address, BATV
#     enforce) gets 5xx and is not delivered; a bounce to an address tagged with
#     `backstop batv sign` in the container is delivered; the healthcheck script says healthy;
#     metrics are scraped if the image knows [metrics] listen; SIGTERM stops backstop with 0;
#  4. compose.haproxy.yml (send-proxy-v2, proxy_protocol = on): messages through HAProxy reach
#     Postfix through all three replicas (each replica's log has one), with the client address
#     HAProxy's header names (logged "via proxy [HAProxy]"), not HAProxy's; the image's
#     healthcheck (a v2 LOCAL header) says healthy; a PROXY header from outside the balancer
#     network (the Postfix container) is refused without a banner;
#  5. removes both stacks and their volumes (also on failure or ^C).
#
# Needs: docker, docker-compose or `docker compose`, /usr/bin/python3 (SMTP client, free port).
# BACKSTOP_PORT=N publishes on 127.0.0.1:N instead of a free port. The images are kept, so a
# second run reuses the layer cache; KEEP_STACK=1 leaves the stacks running for a look around.
#
# No traffic leaves the machine: the stacks' backstop services get SPF, DKIM and DMARC off, no
# reverse lookups and [dns] servers = 127.0.0.1 (nothing listens there) through a compose
# override written here; Postfix makes no lookups and delivers only to its mailboxes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
project=backstoptest$$
token=bstest$$x$RANDOM
tmp=$(mktemp -d)
t0=$SECONDS
started=()   # "base" and/or "haproxy": stacks to take down
python=/usr/bin/python3

say() { echo "docker/test.sh: $*"; }
fail() {
	echo "docker/test.sh: FAIL: $*" >&2
	local stack
	for stack in "${started[@]}"; do
		echo "---- $stack stack: docker logs (last 30 lines per service)" >&2
		dc "$stack" logs --no-color --tail 30 >&2 || true
	done
	exit 1
}

cleanup() {
	local rc=$? stack
	trap - EXIT INT TERM
	if [[ ${KEEP_STACK:-0} != 1 ]]; then
		for stack in "${started[@]}"; do
			dc "$stack" down -v --remove-orphans >/dev/null 2>&1 || say "warning: compose down ($stack) failed"
		done
	else
		for stack in "${started[@]}"; do say "KEEP_STACK=1: left running: $(dc_cmd "$stack")"; done
	fi
	rm -rf "$tmp"
	say "$( ((rc == 0)) && echo PASS || echo FAILED) in $((SECONDS - t0))s"
	exit "$rc"
}
trap cleanup EXIT
# set -e ends the script at a failing command that no check handled: say which
trap 'echo "docker/test.sh: FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

for cmd in docker "$python"; do
	command -v "$cmd" >/dev/null || fail "$cmd not found"
done
docker info >/dev/null 2>&1 || fail "no Docker engine reachable (docker info fails; set DOCKER_HOST?)"
if docker compose version >/dev/null 2>&1; then
	compose=(docker compose)
elif command -v docker-compose >/dev/null; then
	compose=(docker-compose)
else
	fail "neither docker compose nor docker-compose found"
fi
export BACKSTOP_PORT=${BACKSTOP_PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}

# dc STACK ARGS...: compose on one of the two stacks, each its own project, with the test's
# override (written below) on top.
dc_files() {
	case $1 in
	base) echo "-f $here/compose.yml -f $tmp/base.override.yml" ;;
	haproxy) echo "-f $here/compose.haproxy.yml -f $tmp/haproxy.override.yml" ;;
	esac
}
dc_cmd() { echo "${compose[*]} -p $project-$1 $(dc_files "$1")"; }
dc() {
	local stack=$1
	shift
	# shellcheck disable=SC2046 # the file names have no spaces (mktemp, the checkout's path)
	"${compose[@]}" -p "$project-$stack" $(dc_files "$stack") "$@"
}

# override SERVICE...: no DNS traffic from backstop (see the top), plus $extra_env lines.
extra_env=()
override() {
	local svc
	echo "services:"
	for svc in "$@"; do
		echo "  $svc:"
		echo "    environment:"
		echo "      BACKSTOP_SPF_MODE: \"off\""
		echo "      BACKSTOP_DKIM_MODE: \"off\""
		echo "      BACKSTOP_DMARC_MODE: \"off\""
		echo "      BACKSTOP_DNS_SERVERS: \"127.0.0.1\""
		echo "      BACKSTOP__DNS__REVERSE_LOOKUP: \"no\""
		local line
		for line in "${extra_env[@]}"; do echo "      $line"; done
	done
}

# smtp_send PORT FROM TO SUBJECT [tls]: one SMTP session from the host; prints the reply that
# decided it ("250 2.0.0 Ok: queued ...", or the refusal, prefixed with the command it answered
# when that was not the end of DATA).
smtp_send() {
	"$python" - "$@" <<'EOF'
import email.utils, smtplib, ssl, sys
port, sender, rcpt, subject = sys.argv[1:5]
tls = len(sys.argv) > 5 and sys.argv[5] == "tls"
msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@client.example.net>\r\n"
       "\r\nbody of %s\r\n" % (sender or "MAILER-DAEMON@example.net", rcpt, subject,
                               email.utils.formatdate(), subject, subject))
s = smtplib.SMTP("127.0.0.1", int(port), local_hostname="client.example.net", timeout=60)
def said(code, text, what=""):
    print(("%s: " % what if what else "") + "%d %s" % (code, text.decode(errors="replace").replace("\n", " ")))
try:
    s.ehlo()
    if tls:
        if not s.has_extn("starttls"):
            print("EHLO: no STARTTLS offered")
            sys.exit(0)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE   # the stack's self-signed certificate
        s.starttls(context=ctx)
        s.ehlo()
    code, text = s.mail(sender)
    if code != 250:
        said(code, text, "MAIL"); sys.exit(0)
    code, text = s.rcpt(rcpt)
    if code not in (250, 251):
        said(code, text, "RCPT"); sys.exit(0)
    try:
        code, text = s.data(msg)
    except smtplib.SMTPDataError as e:
        said(e.smtp_code, e.smtp_error, "DATA"); sys.exit(0)
    said(code, text)
finally:
    try:
        s.quit()
    except Exception:
        pass
EOF
}

# unfold: header lines joined with their continuation lines
unfold() { awk '/^[ \t]/ { sub(/^[ \t]+/, " "); printf "%s", $0; next } { if (NR > 1) print ""; printf "%s", $0 } END { print "" }'; }

# wait_greeting NAME: until backstop (or HAProxy) on the published port says 220 NAME.
wait_greeting() {
	local greeting=
	for _ in $(seq 1 120); do
		# (the 2>/dev/null on a group: on exec itself it would stay for the rest of the script)
		if { exec 3<>"/dev/tcp/127.0.0.1/$BACKSTOP_PORT"; } 2>/dev/null; then
			IFS= read -r -t 5 greeting <&3 || true
			printf 'QUIT\r\n' >&3 2>/dev/null || true
			exec 3>&-
			[[ $greeting == 220* ]] && break
		fi
		sleep 0.5
	done
	greeting=${greeting%$'\r'}
	[[ $greeting == "220 $1 "* ]] || fail "no '220 $1' greeting from 127.0.0.1:$BACKSTOP_PORT (got '$greeting')"
	say "greeting: $greeting"
}

# wait_postfix STACK: until Postfix's master has started (its log is on stdout).
wait_postfix() {
	for _ in $(seq 1 60); do
		dc "$1" logs --no-color postfix 2>/dev/null | grep -q 'daemon started' && return 0
		sleep 0.5
	done
	fail "Postfix did not start (no 'daemon started' in its log)"
}

# mailbox_file STACK TEXT [TRIES]: the file in user@example.test's Maildir that holds TEXT
# (polled TRIES times, default 20, every 0.5 s: delivery follows the 250 by some
# milliseconds), or nothing.
mailbox_file() {
	local file
	for _ in $(seq 1 "${3:-20}"); do
		file=$(dc "$1" exec -T postfix sh -c "grep -rlF -- '$2' /var/mail/vhosts/example.test/user/new 2>/dev/null | head -n1" | tr -d '\r') || true
		[[ -n $file ]] && { echo "$file"; return 0; }
		sleep 0.5
	done
}

# ---------------------------------------------------------------------------- build
say "building the images (backstop, backstop-postfix, backstop-haproxy)"
override backstop >"$tmp/base.override.yml"
override backstop1 backstop2 backstop3 >"$tmp/haproxy.override.yml"
t=$SECONDS
{ dc base build && dc haproxy build haproxy; } >"$tmp/build.log" 2>&1 ||
	{ tail -40 "$tmp/build.log" >&2; fail "build failed"; }
say "built in $((SECONDS - t))s"

# ---------------------------------------------------------------------------- the image
user=$(docker image inspect -f '{{.Config.User}}' backstop:latest)
[[ $user == backstop ]] || fail "image user is '$user', not backstop"
out=$(docker run --rm backstop:latest -t 2>&1) || fail "backstop -t in the image: $out"
say "image: $out"

# Variables become -o options as they are: a banner with spaces, quotes and shell syntax
# must arrive byte for byte (backstop -n prints it back).
# shellcheck disable=SC2016 # literal $ and backquotes: they must reach backstop unexpanded
banner='ESMTP "quoted" it'\''s $HOME; $(id) `id` *'
out=$(docker run --rm -e BACKSTOP_BANNER="$banner" -e BACKSTOP__LIMITS__MAX_RECIPIENTS=7 backstop:latest -n 2>&1) ||
	fail "backstop -n with BACKSTOP_ variables: $out"
grep -qxF "banner = $banner" <<<"$out" || { grep -F banner <<<"$out" >&2; fail "BACKSTOP_BANNER did not arrive intact"; }
grep -qx 'max_recipients = 7' <<<"$out" || fail "BACKSTOP__LIMITS__MAX_RECIPIENTS did not set [limits] max_recipients"
if out=$(docker run --rm -e BACKSTOP_BAKEND=x:25 backstop:latest -t 2>&1); then
	fail "a misspelt BACKSTOP_BAKEND was accepted: $out"
fi
grep -q 'unknown variable BACKSTOP_BAKEND' <<<"$out" || fail "no message for a misspelt variable: $out"
if out=$(docker run --rm -e BACKSTOP__LIMITS__NO_SUCH_KEY=1 backstop:latest -t 2>&1); then
	fail "BACKSTOP__LIMITS__NO_SUCH_KEY was accepted: $out"
fi
say "environment: values arrive intact; misspelt names are refused ($(head -n1 <<<"$out"))"

# [metrics] listen (on main since the 'metrics' merge): the stack's backstop gets it on the
# container's loopback, and its counters are checked after the messages below. An image built
# from a tree without the key skips that part, saying so.
metrics_listen=
out=$(docker run --rm backstop:latest -t -o metrics.listen=127.0.0.1:9325 2>&1) || true
if grep -q "no key 'listen' in section \[metrics\]" <<<"$out"; then
	say "metrics: this backstop has no [metrics] listen; not scraped"
else
	grep -q 'configuration OK' <<<"$out" || fail "backstop -t -o metrics.listen=...: $out"
	metrics_listen=127.0.0.1:9325
	extra_env=("BACKSTOP__METRICS__LISTEN: \"$metrics_listen\"")
	override backstop >"$tmp/base.override.yml"
fi

# ---------------------------------------------------------------------------- compose.yml
say "starting compose.yml (project $project-base, backstop on 127.0.0.1:$BACKSTOP_PORT)"
started+=(base)
dc base up -d >"$tmp/up.log" 2>&1 || { cat "$tmp/up.log" >&2; fail "compose up failed"; }
wait_greeting mx.example.test
wait_postfix base
uid=$(dc base exec -T backstop id -u | tr -d '\r')
[[ $uid == 2525 ]] || fail "backstop runs as uid '$uid', not 2525"
dc base logs --no-color secrets | grep -q 'made /secrets/batv.keys' || fail "the secrets service made no BATV keys"

say "a message over STARTTLS to user@example.test"
reply=$(smtp_send "$BACKSTOP_PORT" sender@example.net user@example.test "$token-plain" tls)
[[ $reply == "250 "* ]] || fail "message refused: $reply"
file=$(mailbox_file base "$token-plain")
[[ -n $file ]] || fail "the message did not reach user@example.test's Maildir"
msg=$(dc base exec -T postfix cat "$file" | tr -d '\r')
# Postfix's Received: names the client's HELO (XCLIENT), not backstop; backstop's says ESMTPS
grep -q '^Received: from client.example.net (.* by mail.example.test (Postfix)' <<<"$(unfold <<<"$msg")" ||
	{ echo "$msg" >&2; fail "Postfix's Received: does not name client.example.net (XCLIENT not used?)"; }
grep -q 'by mx.example.test (backstop) with ESMTPS' <<<"$msg" ||
	{ echo "$msg" >&2; fail "no 'by mx.example.test (backstop) with ESMTPS' in the delivered message"; }
say "delivered: $file"

say "a forged bounce: MAIL FROM:<> to the untagged user@example.test"
reply=$(smtp_send "$BACKSTOP_PORT" "" user@example.test "$token-forged")
[[ $reply == 5* || $reply == *": 5"* ]] || fail "a forged bounce was not refused with 5xx: $reply"
say "refused: $reply"

tagged=$(dc base exec -T backstop backstop-entrypoint batv sign user@example.test | tr -d '\r')
[[ $tagged == prvs=*=user@example.test ]] || fail "backstop batv sign printed '$tagged'"
say "a bounce to $tagged (signed in the container)"
reply=$(smtp_send "$BACKSTOP_PORT" "" "$tagged" "$token-tagged")
[[ $reply == "250 "* ]] || fail "a bounce to a tagged address was refused: $reply"
[[ -n $(mailbox_file base "$token-tagged") ]] || fail "the tagged bounce did not reach user@example.test"
# sent before the tagged one, so it would be there by now
[[ -z $(mailbox_file base "$token-forged" 1) ]] || fail "the forged bounce was delivered"
say "accepted and delivered: $reply"

logs=$(dc base logs --no-color backstop)
grep -q 'connect from \[' <<<"$logs" || { echo "$logs" >&2; fail "no 'connect from' in backstop's log"; }
grep -q 'from the environment: .*backend.address' <<<"$logs" || fail "the entrypoint did not log the settings it took from the environment"
grep -q 'status=sent (delivered to maildir)' <<<"$(dc base logs --no-color postfix)" ||
	fail "no 'delivered to maildir' in Postfix's log (docker logs)"

out=$(dc base exec -T backstop backstop-healthcheck | tr -d '\r') || fail "healthcheck: $out"
[[ $out == "healthy: 220 mx.example.test "* ]] || fail "healthcheck said: $out"
say "healthcheck: $out"

# http_get PATH: GET http://$metrics_listen/PATH inside the backstop container (bash's /dev/tcp:
# the image has no curl), the answer with its status line
# shellcheck disable=SC2016 # $1..$3 are the inner bash's arguments
http_get() {
	dc base exec -T backstop bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "GET /$3 HTTP/1.0\r\nHost: backstop\r\n\r\n" >&3 && cat <&3' \
		http_get "${metrics_listen%:*}" "${metrics_listen##*:}" "$1" | tr -d '\r'
}
if [[ -n $metrics_listen ]]; then
	out=$(http_get health) || fail "metrics: cannot GET /health from $metrics_listen in the container"
	head -n1 <<<"$out" | grep -q '^HTTP/1\.[01] 200' || fail "GET /health: $(head -n1 <<<"$out")"
	out=$(http_get metrics) || fail "metrics: cannot GET /metrics from $metrics_listen in the container"
	head -n1 <<<"$out" | grep -q '^HTTP/1\.[01] 200' || fail "GET /metrics: $(head -n1 <<<"$out")"
	# the STARTTLS message and the tagged bounce relayed, the forged bounce refused by BATV
	grep -qx 'backstop_messages_relayed_total 2' <<<"$out" ||
		fail "metrics: $(grep '^backstop_messages_relayed_total' <<<"$out" || echo 'no backstop_messages_relayed_total'), not 2"
	grep -qx 'backstop_refusals_total{check="batv",class="5xx"} 1' <<<"$out" ||
		fail "metrics: $(grep '^backstop_refusals_total{check="batv",class="5xx"}' <<<"$out" || echo 'no BATV refusal count'), not 1"
	say "metrics: /health 200; /metrics: 2 relayed, 1 BATV refusal ($(grep -c '^backstop_' <<<"$out") samples)"
fi

cid=$(dc base ps -q backstop)
t=$SECONDS
dc base stop backstop >/dev/null 2>&1 || fail "compose stop failed"
code=$(docker inspect -f '{{.State.ExitCode}}' "$cid")
[[ $code == 0 ]] || fail "backstop exited with status $code on SIGTERM"
docker logs "$cid" 2>&1 | grep -q 'stopped;' || fail "no 'stopped' line in backstop's log after SIGTERM"
say "backstop stopped on SIGTERM in $((SECONDS - t))s, exit status 0"
dc base down -v --remove-orphans >/dev/null 2>&1 || fail "compose down failed"
started=()

# ---------------------------------------------------------------------------- compose.haproxy.yml
say "starting compose.haproxy.yml (project $project-haproxy, HAProxy on 127.0.0.1:$BACKSTOP_PORT)"
started+=(haproxy)
dc haproxy up -d >"$tmp/up.log" 2>&1 || { cat "$tmp/up.log" >&2; fail "compose up failed"; }
wait_greeting mx.example.test
wait_postfix haproxy

# Round robin over the replicas HAProxy has found (by DNS) and seen healthy: one message per
# connection until each replica's log has one of them, at most 15. Each replica's log is read
# again every time (docker logs may show a line some milliseconds after the session).
declare -A replica_cid=() hit=()
for r in backstop1 backstop2 backstop3; do
	replica_cid[$r]=$(dc haproxy ps -q "$r")
done
for i in $(seq 1 15); do
	reply=$(smtp_send "$BACKSTOP_PORT" "sender$i@$token.example.net" user@example.test "$token-ha$i")
	[[ $reply == "250 "* ]] || fail "message $i through HAProxy refused: $reply"
	for r in backstop1 backstop2 backstop3; do
		hit[$r]=$(docker logs "${replica_cid[$r]}" 2>&1 | grep -o "from=<sender[0-9]*@$token.example.net>" |
			sed 's/from=<sender\([0-9]*\)@.*/\1/' | tr '\n' ' ') || true
	done
	[[ -n ${hit[backstop1]} && -n ${hit[backstop2]} && -n ${hit[backstop3]} ]] && break
done
for r in backstop1 backstop2 backstop3; do
	[[ -n ${hit[$r]} ]] || fail "$r relayed none of messages 1-$i through HAProxy"
	say "$r relayed message(s) ${hit[$r]}"
done
file=$(mailbox_file haproxy "$token-ha$i")
[[ -n $file ]] || fail "message $i through HAProxy did not reach the Maildir"
haproxy_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(dc haproxy ps -q haproxy)")
# the replica that relayed message $i logged its client from HAProxy's header
for r in backstop1 backstop2 backstop3; do
	[[ " ${hit[$r]} " == *" $i "* ]] && last=$r
done
line=$(docker logs "${replica_cid[$last]}" 2>&1 | grep -E "connect from \[[0-9.]+\]:[0-9]+ to .* via proxy \[$haproxy_ip\]" | tail -n1) ||
	fail "$last logged no 'connect from ... via proxy [$haproxy_ip]' (PROXY protocol not used?)"
client_ip=$(sed -E 's/.*connect from \[([0-9.]+)\].*/\1/' <<<"$line")
[[ $client_ip != "$haproxy_ip" ]] || fail "the client address in HAProxy's header is HAProxy's own ($haproxy_ip)"
dc haproxy exec -T postfix cat "$file" | grep -qF "[$client_ip]" ||
	fail "the client address Postfix got is not $client_ip (the one HAProxy's header named)"
say "delivered through HAProxy with the PROXY protocol: client [$client_ip] via proxy [$haproxy_ip] ($last)"

out=$(dc haproxy exec -T backstop1 backstop-healthcheck | tr -d '\r') || fail "healthcheck behind HAProxy: $out"
[[ $out == "healthy: 220 mx.example.test "* ]] || fail "healthcheck behind HAProxy said: $out"
say "healthcheck with proxy_protocol = on (v2 LOCAL header): $out"

# Postfix is on the default network only, outside proxy_trusted: its forged header gets nothing
# (a trusted peer would get the banner within a second)
# shellcheck disable=SC2016 # the inner bash expands nothing of ours
out=$(dc haproxy exec -T postfix bash -c 'exec 3<>/dev/tcp/backstop1/2525 && printf "PROXY TCP4 192.0.2.1 10.0.0.1 1234 25\r\n" >&3 && timeout 8 cat <&3' | tr -d '\r') || true
[[ -z $out ]] || fail "a PROXY header from outside the balancer network was answered: $out"
docker logs "${replica_cid[backstop1]}" 2>&1 | grep -q "not in \[server\] proxy_trusted" ||
	fail "backstop1 did not log the refused connection from the Postfix container (not in proxy_trusted)"
say "a PROXY header from the Postfix container (not in proxy_trusted) got no banner"

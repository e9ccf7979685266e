#!/bin/bash
# docker/test.sh - end-to-end test of the container packaging, run by hand (CI has no Docker
# engine). Builds the images, starts docker-compose.yml (backstop in front of smtp-sink), sends
# a message with swaks from the host through the port published on 127.0.0.1, checks that it
# reached the backend with backstop's Received: header, that backstop runs as its own user and
# logs to `docker logs`, that the HEALTHCHECK turns healthy and that SIGTERM stops it cleanly;
# then tears the stack down. Exits non-zero on the first failure.
#
# Engine: any Docker engine that `docker info` reaches (DOCKER_HOST is honoured). Needs:
# docker, docker-compose (or `docker compose`), swaks, python3 (to pick a free port). BACKSTOP_PORT=N publishes on 127.0.0.1:N
# instead of a free port. The images (backstop:latest, backstop-sink:latest) are kept, so a
# second run reuses the layer cache; KEEP_STACK=1 leaves the stack running for a look around.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
project=backstoptest$$
token=backstop-docker-test-$$-$RANDOM
t0=$SECONDS
compose_up=no

say() { echo "docker/test.sh: $*"; }
fail() {
	echo "docker/test.sh: FAIL: $*" >&2
	if [[ $compose_up == yes ]]; then
		echo "---- docker logs (last 40 lines per service)" >&2
		dc logs --no-color --tail 40 >&2 || true
	fi
	exit 1
}

cleanup() {
	local rc=$?
	if [[ $compose_up == yes && ${KEEP_STACK:-0} != 1 ]]; then
		dc down -v --remove-orphans >/dev/null 2>&1 || say "warning: compose down failed"
	fi
	say "$( ((rc == 0)) && echo PASS || echo FAILED) in $((SECONDS - t0))s"
	exit "$rc"
}
trap cleanup EXIT

for cmd in docker swaks python3; do
	command -v "$cmd" >/dev/null || fail "$cmd not found (swaks: apt-get install swaks)"
done

# ---- engine
docker info >/dev/null 2>&1 || fail "no Docker engine reachable (docker info fails; set DOCKER_HOST?)"

if docker compose version >/dev/null 2>&1; then
	compose=(docker compose)
elif command -v docker-compose >/dev/null; then
	compose=(docker-compose)
else
	fail "neither docker compose nor docker-compose found"
fi
export BACKSTOP_PORT=${BACKSTOP_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
dc() { "${compose[@]}" -p "$project" -f "$here/docker-compose.yml" "$@"; }

# ---- build
# The quick start's key (certs/demo/, made here if missing, as tests/demo.sh does) must stay out
# of the build context: the Dockerfile fails the build if .dockerignore lets a private key in.
[[ -e $top/certs/demo/backstop.key ]] || bash "$top/certs/make-self-signed.sh" localhost "$top/certs/demo" >/dev/null
say "building the images (backstop, backstop-sink)"
t=$SECONDS
dc build >"/tmp/$project-build.log" 2>&1 || { tail -40 "/tmp/$project-build.log" >&2; fail "build failed (log: /tmp/$project-build.log)"; }
rm -f "/tmp/$project-build.log"
say "built in $((SECONDS - t))s"

user=$(docker image inspect -f '{{.Config.User}}' backstop:latest)
[[ $user == backstop ]] || fail "image user is '$user', not backstop"
out=$(docker run --rm backstop:latest -t 2>&1) || fail "backstop -t in the image: $out"
say "image: $out"

# ---- start
say "starting the stack (project $project, backstop on 127.0.0.1:$BACKSTOP_PORT)"
compose_up=yes
dc up -d >/dev/null 2>&1 || fail "compose up failed"
cid=$(dc ps -q backstop)
[[ -n $cid ]] || fail "no backstop container"

greeting=
for _ in $(seq 1 60); do
	if exec 3<>"/dev/tcp/127.0.0.1/$BACKSTOP_PORT" 2>/dev/null; then
		IFS= read -r -t 5 greeting <&3 || true
		printf 'QUIT\r\n' >&3 2>/dev/null || true
		exec 3>&-
		[[ $greeting == 220* ]] && break
	fi
	sleep 0.5
done
greeting=${greeting%$'\r'}
[[ $greeting == "220 mx.example.org "* ]] || fail "no 220 greeting from 127.0.0.1:$BACKSTOP_PORT (got '$greeting')"
say "greeting: $greeting"

uid=$(dc exec -T backstop id -u | tr -d '\r')
[[ $uid == 2525 ]] || fail "backstop runs as uid '$uid', not 2525"

# ---- a message through backstop into the sink
say "sending a message with swaks"
if ! out=$(swaks --server "127.0.0.1:$BACKSTOP_PORT" --helo client.example.net \
	--from sender@example.net --to rcpt@example.org \
	--header "Subject: $token" --body "test body $token" --timeout 60 2>&1); then
	echo "$out" >&2
	fail "swaks failed"
fi
grep -q '^<-  250 .*' <<<"$(sed -n '/^ -> \./,$p' <<<"$out")" || { echo "$out" >&2; fail "no 250 after the message"; }

file=
for _ in $(seq 1 20); do
	file=$(dc exec -T backend sh -c "grep -l -- '$token' /mail/* 2>/dev/null | head -n1" | tr -d '\r') || true
	[[ -n $file ]] && break
	sleep 0.5
done
[[ -n $file ]] || fail "the message did not reach the sink"
msg=$(dc exec -T backend cat "$file" | tr -d '\r')
grep -q '^Received: from client.example.net ' <<<"$msg" || { echo "$msg" >&2; fail "no Received: from client.example.net in the delivered message"; }
grep -q 'by mx.example.org (backstop) with E\?SMTP' <<<"$msg" || { echo "$msg" >&2; fail "no 'by mx.example.org (backstop)' in the Received: header"; }
grep -q "^Subject: $token" <<<"$msg" || fail "Subject lost"
say "delivered to the sink as $file with:"
sed -n '/^Received: from client.example.net /,/(backstop)/p' <<<"$msg" | sed 's/^/    /'

logs=$(docker logs "$cid" 2>&1)
grep -q 'connect from \[' <<<"$logs" || { echo "$logs" >&2; fail "no 'connect from' in docker logs"; }
grep -q 'rcpt@example.org' <<<"$logs" || { echo "$logs" >&2; fail "no transaction line in docker logs"; }
say "docker logs: $(grep -c . <<<"$logs") line(s), e.g.: $(grep 'rcpt@example.org' <<<"$logs" | tail -n1)"

# ---- healthcheck (first probe after --interval, 30s)
say "waiting for the healthcheck"
status=
for _ in $(seq 1 120); do
	status=$(docker inspect -f '{{.State.Health.Status}}' "$cid")
	[[ $status == healthy || $status == unhealthy ]] && break
	sleep 1
done
[[ $status == healthy ]] || {
	docker inspect -f '{{json .State.Health}}' "$cid" >&2
	fail "health status is '$status'"
}
say "health: $status ($(docker inspect -f '{{with index .State.Health.Log 0}}{{.Output}}{{end}}' "$cid" | head -n1))"

# ---- SIGTERM: an idle backstop exits at once, with status 0
t=$SECONDS
dc stop backstop >/dev/null 2>&1 || fail "compose stop failed"
code=$(docker inspect -f '{{.State.ExitCode}}' "$cid")
[[ $code == 0 ]] || fail "backstop exited with status $code on SIGTERM"
docker logs "$cid" 2>&1 | grep -q 'stopped;' || fail "no 'stopped' line in docker logs after SIGTERM"
say "stopped on SIGTERM in $((SECONDS - t))s, exit status 0"

size=$(docker image inspect -f '{{.Size}}' backstop:latest)
base=$(docker image inspect -f '{{.Size}}' debian:bookworm-slim 2>/dev/null || echo 0)
say "image backstop:latest: $((size / 1000000)) MB ($(((size - base) / 1000000)) MB over debian:bookworm-slim)"

# Integration tests: real backstop, real backends, real clients.
# Each is a standalone python3 script (exit 0 pass, 1 fail, 77 skip) using
# tests/lib/harness.py; run one by hand with
#   BACKSTOP_BIN=./backstop PYTHONPATH=tests/lib /usr/bin/python3 tests/integration/NAME.py
INTEGRATION_TESTS = \
	tests/integration/config_check.py \
	tests/integration/rdns.py \
	tests/integration/helo_filter.py \
	tests/integration/relay_basic.py \
	tests/integration/backend_refusal.py \
	tests/integration/backend_down.py \
	tests/integration/size_limit.py \
	tests/integration/pipelining.py \
	tests/integration/smuggling.py \
	tests/integration/smuggling_headers.py \
	tests/integration/summary_log.py \
	tests/integration/bare_newline.py \
	tests/integration/errors_and_sequence.py \
	tests/integration/timeouts.py \
	tests/integration/conn_limits.py \
	tests/integration/xclient.py \
	tests/integration/signals.py \
	tests/integration/smtp_source.py \
	tests/integration/batv_exim.sh \
	tests/integration/batv_inbound.py \
	tests/integration/batv_outbound.py \
	tests/integration/outbound_sig.py \
	tests/integration/workers.py
# the harness's own rules (a skip in CI, a zero-check test, a swallowed
# watchdog, a sanitizer report at cleanup: each must fail). Before the
# integration tests: make check -j starts the tests in this order, and this
# one (about 23 s) started last kept one CPU idle at the end of the run
TESTS += tests/lib/selftest.py
TESTS += $(INTEGRATION_TESTS)
EXTRA_DIST += $(INTEGRATION_TESTS) tests/lib
# Exim's BATV vectors for batv_exim.sh (and the script that made them)
EXTRA_DIST += tests/data/batv_exim
INTEGRATION_TESTS += tests/integration/dmarc_from.py
INTEGRATION_TESTS += tests/integration/spf_policy.py tests/integration/spf_slow_dns.py \
	tests/integration/spf_hostile.py
EXTRA_DIST += tests/data/dns
INTEGRATION_TESTS += tests/integration/tls_client.py tests/integration/tls_backend.py \
	tests/integration/tls_testssl.py
INTEGRATION_TESTS += tests/integration/spf_ipv6.py
INTEGRATION_TESTS += tests/integration/hostile_peers.py
INTEGRATION_TESTS += tests/integration/idle_memory.py
INTEGRATION_TESTS += tests/integration/tls_slowloris.py
INTEGRATION_TESTS += tests/integration/tls_line_deadline.py
INTEGRATION_TESTS += tests/integration/dkim.py
EXTRA_DIST += tests/data/dkim
INTEGRATION_TESTS += tests/integration/batv_routing.py
INTEGRATION_TESTS += tests/integration/helo_reserved.py
INTEGRATION_TESTS += tests/integration/backend_limits.py
INTEGRATION_TESTS += tests/integration/spf_slot_release.py
INTEGRATION_TESTS += tests/integration/spf_loopback.py
INTEGRATION_TESTS += tests/integration/config_errors.py tests/integration/daemon_mode.py \
	tests/integration/privdrop.py
INTEGRATION_TESTS += tests/integration/demo_quickstart.py
INTEGRATION_TESTS += tests/integration/content_interface.py
INTEGRATION_TESTS += tests/integration/forged_authres.py
INTEGRATION_TESTS += tests/integration/hold_slow_client.py
INTEGRATION_TESTS += tests/integration/client_abort.py tests/integration/backend_reset.py
INTEGRATION_TESTS += tests/integration/pipelined_refusals.py
INTEGRATION_TESTS += tests/integration/rdns_stall.py
INTEGRATION_TESTS += tests/integration/hostile_streams.py
INTEGRATION_TESTS += tests/integration/dmarc.py
EXTRA_DIST += tests/data/dmarc
INTEGRATION_TESTS += tests/integration/tls_key_mode.py
INTEGRATION_TESTS += tests/integration/log_formats.py
INTEGRATION_TESTS += tests/integration/sdnotify.py
# make install into a DESTDIR, the systemd unit (systemd-analyze), and the
# manual pages against the key table and the usage text
INTEGRATION_TESTS += tests/integration/install.py tests/integration/manpages.py
# the bounce check (issue 11): verdicts against a real Postfix, and the
# sisimai corpus (../shared/corpora) replayed through it
INTEGRATION_TESTS += tests/integration/bounce_filter.py tests/integration/bounce_corpus.py
INTEGRATION_TESTS += tests/integration/metrics.py
INTEGRATION_TESTS += tests/integration/keepalive_failures.py
# the refused-bounce record and `backstop report` over the corpus (issue 15)
INTEGRATION_TESTS += tests/integration/bounce_report.py
INTEGRATION_TESTS += tests/integration/report_shared_log.py
# fake bounces and forged Received lines do not list an address (review15)
INTEGRATION_TESTS += tests/integration/fake_bounce_zombie.py
# [backend] identity (issue 12): PROXY v2 to Postfix, none, required
# xclient/xforward, transparent in three network namespaces
INTEGRATION_TESTS += tests/integration/backend_identity.py
# review12: the probe's relay check against a Postfix that relays for
# backstop's address (identity xforward/auto: refused) and one that does not
INTEGRATION_TESTS += tests/integration/backend_relay_check.py
# forged Received hops (issue 15): the published examples against test DNS
INTEGRATION_TESTS += tests/integration/joejob.py
# DNS block and allow lists (issue 12), against the test DNS server
INTEGRATION_TESTS += tests/integration/dnsbl.py
INTEGRATION_TESTS += tests/integration/rate_limits.py tests/integration/rate_limits_redis.py
INTEGRATION_TESTS += tests/integration/redis_hostile.py
# issue 12: PROXY protocol in (behind a real HAProxy), non-SMTP commands
INTEGRATION_TESTS += tests/integration/proxy_protocol.py
# issue 12, the pool: HAProxy (send-proxy-v2, smtpchk) in front of three
# instances sharing Redis, one Postfix; SIGKILL, SIGTERM and Redis down mid-stream
INTEGRATION_TESTS += tests/integration/pool_haproxy.py
INTEGRATION_TESTS += tests/integration/pool_proxy_identity.py
INTEGRATION_TESTS += tests/integration/proxy_netcount.py
# the event loop's DNS answer cache ([dns] cache_size): one query per TTL
INTEGRATION_TESTS += tests/integration/dns_cache.py
# issue 14: no file-scope mutable state in libproxy.a/libfilters.a outside
# the loop's owner (struct worker) but what the allowlist names, with why
INTEGRATION_TESTS += tests/integration/no_loop_globals.sh
EXTRA_DIST += tests/integration/loop_globals.allow
# [server] workers = 2 with sessions in DATA in each worker: SIGHUP, SIGTERM
# within and past drain_time, SIGKILL of one worker (real Postfix)
INTEGRATION_TESTS += tests/integration/workers_drain.py
# review7 of issue 14: the loop's BATV keys, sentlog and spool budget across
# reloads, refusals, timeouts, two workers and SIGTERM
INTEGRATION_TESTS += tests/integration/loop_state.py

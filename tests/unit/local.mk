# Unit tests: one program per module, named test_<module>.
UNIT_TESTS = \
	tests/unit/test_smtp_line \
	tests/unit/test_smtp_cmd \
	tests/unit/test_smtp_addr \
	tests/unit/test_smtp_reply \
	tests/unit/test_smtp_data \
	tests/unit/test_smtp_wire \
	tests/unit/test_authres \
	tests/unit/test_smtp_server \
	tests/unit/test_config \
	tests/unit/test_tls \
	tests/unit/test_batv_filter \
	tests/unit/test_batv_tag \
	tests/unit/test_filter_helo \
	tests/unit/test_spf
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)
# Every unit test runs under a time limit (the slowest, test_spf, takes
# about 20 s under ASan): a hang fails with timeout's status 124 (137
# after the KILL) instead of blocking the suite. Tests without a file
# extension (the unit tests) run through LOG_COMPILER.
UNIT_TIME_LIMIT = 180
LOG_COMPILER = $(SHELL) $(srcdir)/tests/unit/time-limit.sh $(UNIT_TIME_LIMIT)
EXTRA_DIST += tests/unit/time-limit.sh
tests_unit_test_smtp_line_LDADD = $(UNIT_LDADD)
tests_unit_test_smtp_cmd_LDADD = $(UNIT_LDADD)
tests_unit_test_smtp_addr_LDADD = $(UNIT_LDADD)
tests_unit_test_smtp_reply_LDADD = $(UNIT_LDADD)
tests_unit_test_smtp_data_LDADD = $(UNIT_LDADD)
tests_unit_test_smtp_wire_LDADD = $(UNIT_LDADD)
tests_unit_test_authres_LDADD = $(UNIT_LDADD)
tests_unit_test_smtp_server_LDADD = $(UNIT_LDADD)
tests_unit_test_config_LDADD = $(UNIT_LDADD)
tests_unit_test_tls_LDADD = $(UNIT_LDADD)
tests_unit_test_batv_filter_LDADD = $(UNIT_LDADD)
tests_unit_test_batv_tag_LDADD = $(UNIT_LDADD)
EXTRA_DIST += tests/unit/check.h
tests_unit_test_filter_helo_LDADD = $(UNIT_LDADD)
tests_unit_test_spf_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_smtp_from
tests_unit_test_smtp_from_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_dmarc
tests_unit_test_dmarc_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_dkim_pubkey
tests_unit_test_dkim_pubkey_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_spool
tests_unit_test_spool_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_log_json
tests_unit_test_log_json_LDADD = $(UNIT_LDADD)
EXTRA_DIST += tests/unit/json_check.h tests/unit/dkim_libsign.h
UNIT_TESTS += tests/unit/test_sdnotify
tests_unit_test_sdnotify_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_http_request tests/unit/test_metrics
tests_unit_test_http_request_LDADD = $(UNIT_LDADD)
tests_unit_test_metrics_LDADD = $(UNIT_LDADD)
# issue 11: MIME walker, bounce classifier, and the classifier against the
# sisimai corpus (../shared/corpora; missing = failure) and tests/data/ordinary
UNIT_TESTS += tests/unit/test_mime tests/unit/test_bounce tests/unit/test_bounce_corpus
tests_unit_test_mime_LDADD = $(UNIT_LDADD)
tests_unit_test_bounce_LDADD = $(UNIT_LDADD)
tests_unit_test_bounce_corpus_LDADD = $(UNIT_LDADD)
EXTRA_DIST += tests/unit/bounce_feed.h tests/data/ordinary
UNIT_TESTS += tests/unit/test_bounce_evidence
tests_unit_test_bounce_evidence_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_bsig
tests_unit_test_bsig_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_sentlog
tests_unit_test_sentlog_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_bounce_rules_scan
tests_unit_test_bounce_rules_scan_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_outbound_sig
tests_unit_test_outbound_sig_LDADD = $(UNIT_LDADD)
# backstop report (issue 15): the log reader and tables; the URL hosts and
# the entry MTA's client of a refused bounce's original
UNIT_TESTS += tests/unit/test_report_reader tests/unit/test_bounce_record
tests_unit_test_report_reader_LDADD = $(UNIT_LDADD)
tests_unit_test_bounce_record_LDADD = $(UNIT_LDADD)

# issue 12: the PROXY v2 header towards the backend ([backend] identity = proxy)
UNIT_TESTS += tests/unit/test_proxy_out
tests_unit_test_proxy_out_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_smtp_received
tests_unit_test_smtp_received_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_joejob
tests_unit_test_joejob_LDADD = $(UNIT_LDADD)
# DNS lists (issue 12): postscreen's site syntax, query names, the answer cache
UNIT_TESTS += tests/unit/test_dnsbl
tests_unit_test_dnsbl_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_ratelimit
tests_unit_test_ratelimit_LDADD = $(UNIT_LDADD)
# issue 12: the PROXY protocol header, HTTP/TLS spoken to the SMTP port
UNIT_TESTS += tests/unit/test_proxy_proto tests/unit/test_smtp_foreign
tests_unit_test_proxy_proto_LDADD = $(UNIT_LDADD)
tests_unit_test_smtp_foreign_LDADD = $(UNIT_LDADD)
# the workers' shared per-IP connection table (proxy/ipcount_shared.c)
UNIT_TESTS += tests/unit/test_ipcount_shared
tests_unit_test_ipcount_shared_LDADD = $(UNIT_LDADD)
# a worker killed holding the table's lock in mid-update (review14)
UNIT_TESTS += tests/unit/test_ipcount_ownerdead
tests_unit_test_ipcount_ownerdead_LDADD = $(UNIT_LDADD)
# the loop thread's DNS answer cache (proxy/dns_cache.c)
UNIT_TESTS += tests/unit/test_dns_cache
tests_unit_test_dns_cache_LDADD = $(UNIT_LDADD)
# the filter runner's deadline for a lost callback (filters/README.md),
# through the real sessions, with a filter table of its own
UNIT_TESTS += tests/unit/test_filter_deadline
tests_unit_test_filter_deadline_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_dkim_bodyhash
tests_unit_test_dkim_bodyhash_LDADD = $(UNIT_LDADD)

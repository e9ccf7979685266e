# libFuzzer targets: built by "make fuzz" with clang (FUZZ_CC), run by
# tests/fuzz/run.sh for a bounded time each.
FUZZ_TARGETS = smtp_line smtp_cmd smtp_addr smtp_reply smtp_data batv_tag config smtp_from dmarc_record \
	smtp_fields log_json http_request bounce bsig sentlog_load report_reader url_hosts smtp_received
# the PROXY v2 header towards the backend (issue 12)
FUZZ_TARGETS += proxy_out
# DNS lists (issue 12): postscreen's site syntax and the answer cache
FUZZ_TARGETS += dnsbl_sites
# [limits] store = redis://... (issue 12)
FUZZ_TARGETS += config_redis_url
FUZZ_SMTP_SRCS = $(srcdir)/smtp/smtp_line.c $(srcdir)/smtp/smtp_cmd.c \
	$(srcdir)/smtp/smtp_addr.c $(srcdir)/smtp/smtp_reply.c \
	$(srcdir)/smtp/smtp_data.c $(srcdir)/smtp/smtp_server.c \
	$(srcdir)/smtp/smtp_wire.c $(srcdir)/smtp/smtp_fields.c $(srcdir)/smtp/smtp_from.c \
	$(srcdir)/smtp/smtp_received.c
# issue 12: other protocols spoken to the SMTP port (HTTP, plaintext TLS)
FUZZ_SMTP_SRCS += $(srcdir)/smtp/smtp_foreign.c
FUZZ_TARGETS += smtp_foreign proxy_proto
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I$(srcdir) -I$(builddir) $(OPENSSL_CFLAGS)

fuzz: $(FUZZ_TARGETS:%=tests/fuzz/fuzz_%)

tests/fuzz/fuzz_%: $(srcdir)/tests/fuzz/fuzz_%.c $(FUZZ_SMTP_SRCS)
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SMTP_SRCS) \
		$(if $(findstring batv,$*),$(srcdir)/filters/batv_tag.c $(OPENSSL_LIBS)) \
		$(if $(findstring config,$*),$(srcdir)/proxy/config.c $(srcdir)/filters/dnsbl_sites.c \
			$(FUZZ_MIME_SRCS) $(INIH_CFLAGS) $(INIH_LIBS))

CLEANFILES += $(FUZZ_TARGETS:%=tests/fuzz/fuzz_%)
EXTRA_DIST += tests/fuzz
.PHONY: fuzz

# Targets whose sources are not all in FUZZ_SMTP_SRCS: explicit rules,
# which take precedence over the pattern rule above.
tests/fuzz/fuzz_smtp_from: $(srcdir)/tests/fuzz/fuzz_smtp_from.c $(srcdir)/smtp/smtp_from.c \
		$(srcdir)/smtp/smtp_addr.c
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_smtp_from.c \
		$(srcdir)/smtp/smtp_from.c $(srcdir)/smtp/smtp_addr.c
tests/fuzz/fuzz_proxy_out: $(srcdir)/tests/fuzz/fuzz_proxy_out.c $(srcdir)/smtp/proxy_out.c
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_proxy_out.c \
		$(srcdir)/smtp/proxy_out.c
tests/fuzz/fuzz_http_request: $(srcdir)/tests/fuzz/fuzz_http_request.c $(srcdir)/proxy/http_request.c
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_http_request.c \
		$(srcdir)/proxy/http_request.c
tests/fuzz/fuzz_dmarc_record: $(srcdir)/tests/fuzz/fuzz_dmarc_record.c \
		$(srcdir)/filters/dmarc_record.c $(srcdir)/filters/dmarc_org.c
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) $(PSL_CFLAGS) -o $@ \
		$(srcdir)/tests/fuzz/fuzz_dmarc_record.c $(srcdir)/filters/dmarc_record.c \
		$(srcdir)/filters/dmarc_org.c $(PSL_LIBS)
tests/fuzz/fuzz_log_json: $(srcdir)/tests/fuzz/fuzz_log_json.c $(srcdir)/proxy/log_json.c \
		$(srcdir)/proxy/log_json.h $(srcdir)/tests/unit/json_check.h
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_log_json.c \
		$(srcdir)/proxy/log_json.c
# The MIME walker and bounce classifier (smtp/, named without the smtp_
# prefix the object rules below expect).
FUZZ_MIME_SRCS = $(srcdir)/smtp/mime.c $(srcdir)/smtp/bounce.c $(srcdir)/smtp/bounce_rules.c \
	$(srcdir)/smtp/bounce_fields.c $(srcdir)/smtp/url_hosts.c $(srcdir)/smtp/received_ip.c
# (bounce_fields.c reads a hop's reverse name with smtp_received.c, which is
# not in FUZZ_MIME_SRCS: the proxy targets have it from FUZZ_SMTP_SRCS)
tests/fuzz/fuzz_bounce: $(srcdir)/tests/fuzz/fuzz_bounce.c $(FUZZ_MIME_SRCS) \
		$(srcdir)/tests/unit/bounce_feed.h
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_bounce.c $(FUZZ_MIME_SRCS) \
		$(srcdir)/smtp/smtp_received.c
tests/fuzz/fuzz_bsig: $(srcdir)/tests/fuzz/fuzz_bsig.c $(srcdir)/filters/bsig.c \
		$(srcdir)/filters/bsig.h
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_bsig.c \
		$(srcdir)/filters/bsig.c $(OPENSSL_LIBS)
tests/fuzz/fuzz_sentlog_load: $(srcdir)/tests/fuzz/fuzz_sentlog_load.c \
		$(srcdir)/filters/sentlog.c $(srcdir)/filters/sentlog.h $(srcdir)/filters/bsig.c
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_sentlog_load.c \
		$(srcdir)/filters/sentlog.c $(srcdir)/filters/bsig.c $(OPENSSL_LIBS) -lm
# the log reader of backstop report, and the refused-bounce record's extractions (issue 15)
tests/fuzz/fuzz_report_reader: $(srcdir)/tests/fuzz/fuzz_report_reader.c \
		$(srcdir)/proxy/report_reader.c $(srcdir)/proxy/report_agg.c
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_report_reader.c \
		$(srcdir)/proxy/report_reader.c $(srcdir)/proxy/report_agg.c
tests/fuzz/fuzz_url_hosts: $(srcdir)/tests/fuzz/fuzz_url_hosts.c $(srcdir)/smtp/url_hosts.c \
		$(srcdir)/smtp/received_ip.c
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_url_hosts.c \
		$(srcdir)/smtp/url_hosts.c $(srcdir)/smtp/received_ip.c
# Targets on proxy/ and filters/ code: linked with every module (built once
# with the fuzzer's instrumentation into tests/fuzz/libbackstop-fuzz.a) and
# backstop's libraries. fuzz_session and fuzz_backend run the real server
# in-process (tests/fuzz/fuzz_peers.h).
FUZZ_PROXY_TARGETS = session backend config_ini spf_ar spf_text bounce_filter
# issue 12: the session behind a PROXY protocol header
FUZZ_PROXY_TARGETS += session_proxy
# issue 14: the backend connection pool's reuse path, sessions in turn
FUZZ_PROXY_TARGETS += backend_pool
# issue 10: DKIM's body hash against libopendkim's
FUZZ_PROXY_TARGETS += dkim_bodyhash
FUZZ_ALL_OBJS := $(patsubst %.c,tests/fuzz/obj/%.o,$(notdir $(FUZZ_SMTP_SRCS)) \
	$(subst /,_,$(filter %.c,$(libfilters_a_SOURCES) $(libproxy_a_SOURCES))))
# the MIME walker and classifier, for filters that use them
FUZZ_ALL_OBJS += $(patsubst %.c,tests/fuzz/obj/smtpmime_%.o,$(notdir $(FUZZ_MIME_SRCS)))
# the backend's PROXY v2 header (backend.c, backend_probe.c)
FUZZ_ALL_OBJS += tests/fuzz/obj/smtpmime_proxy_out.o
# the PROXY protocol parser (proxy/session_proxy.c uses it)
FUZZ_ALL_OBJS += tests/fuzz/obj/smtpmime_proxy_proto.o
FUZZ_PROXY_CFLAGS = $(FUZZ_CFLAGS) -DSYSCONFDIR='"$(sysconfdir)"' $(LIBUV_CFLAGS) \
	$(INIH_CFLAGS) $(OPENDKIM_CFLAGS) $(PSL_CFLAGS)
FUZZ_PROXY_LIBS = $(LIBUV_LIBS) $(OPENSSL_LIBS) $(INIH_LIBS) $(OPENDKIM_LIBS) \
	$(SPF2_LIBS) $(UNBOUND_LIBS) $(PSL_LIBS) $(HIREDIS_LIBS) -lpthread -lm

fuzz: $(FUZZ_PROXY_TARGETS:%=tests/fuzz/fuzz_%)

tests/fuzz/obj/smtp_%.o: $(srcdir)/smtp/smtp_%.c
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz/obj
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_PROXY_CFLAGS) -MMD -MP -c -o $@ $<
tests/fuzz/obj/smtpmime_%.o: $(srcdir)/smtp/%.c
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz/obj
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_PROXY_CFLAGS) -MMD -MP -c -o $@ $<
tests/fuzz/obj/filters_%.o: $(srcdir)/filters/%.c
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz/obj
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_PROXY_CFLAGS) -MMD -MP -c -o $@ $<
tests/fuzz/obj/proxy_%.o: $(srcdir)/proxy/%.c
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz/obj
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_PROXY_CFLAGS) -MMD -MP -c -o $@ $<

# the objects' header dependencies (-MMD): a changed header rebuilds them;
# stale objects with an old struct layout crashed fuzz_session at start
-include $(FUZZ_ALL_OBJS:.o=.d)

tests/fuzz/libbackstop-fuzz.a: $(FUZZ_ALL_OBJS)
	$(AM_V_AR)rm -f $@ && $(AR) cr $@ $(FUZZ_ALL_OBJS) && $(RANLIB) $@

$(FUZZ_PROXY_TARGETS:%=tests/fuzz/fuzz_%): tests/fuzz/fuzz_%: $(srcdir)/tests/fuzz/fuzz_%.c \
		$(srcdir)/tests/fuzz/fuzz_peers.h tests/fuzz/libbackstop-fuzz.a
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_PROXY_CFLAGS) -o $@ $< tests/fuzz/libbackstop-fuzz.a \
		$(FUZZ_PROXY_LIBS)

CLEANFILES += $(FUZZ_PROXY_TARGETS:%=tests/fuzz/fuzz_%) tests/fuzz/libbackstop-fuzz.a \
	$(FUZZ_ALL_OBJS) $(FUZZ_ALL_OBJS:.o=.d)
tests/fuzz/fuzz_dnsbl_sites: $(srcdir)/tests/fuzz/fuzz_dnsbl_sites.c $(srcdir)/filters/dnsbl_sites.c \
		$(srcdir)/filters/dnsbl_cache.c $(srcdir)/filters/dnsbl_sites.h $(srcdir)/filters/dnsbl_cache.h
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_dnsbl_sites.c \
		$(srcdir)/filters/dnsbl_sites.c $(srcdir)/filters/dnsbl_cache.c
# issue 12: the PROXY protocol header parser (smtp/, named without the
# smtp_ prefix the pattern rule expects)
tests/fuzz/fuzz_proxy_proto: $(srcdir)/tests/fuzz/fuzz_proxy_proto.c $(srcdir)/smtp/proxy_proto.c \
		$(srcdir)/smtp/proxy_proto.h
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(srcdir)/tests/fuzz/fuzz_proxy_proto.c \
		$(srcdir)/smtp/proxy_proto.c

# proxy/ - the daemon: sockets, loop, config, sessions, relaying.
noinst_LIBRARIES += libproxy.a
libproxy_a_SOURCES = \
	proxy/config.c proxy/config.h \
	proxy/dns.c proxy/dns.h proxy/dns_cache.c proxy/dns_cache.h \
	proxy/rdns.c proxy/rdns.h \
	proxy/log.c proxy/log.h proxy/log_json.c proxy/log_json.h \
	proxy/buf.c proxy/buf.h \
	proxy/siphash.h \
	proxy/spool.c proxy/spool.h \
	proxy/server.c proxy/server.h proxy/worker.h \
	proxy/session.c proxy/session.h \
	proxy/session_cmd.c proxy/session_data.c proxy/session_filter.c proxy/session_backend.c \
	proxy/backend.c proxy/backend.h proxy/backend_probe.c proxy/backend_pool.c proxy/backend_pool.h \
	proxy/backend_identity.c proxy/backend_identity.h \
	proxy/tls.c proxy/tls.h \
	proxy/privs.c proxy/privs.h \
	proxy/sdnotify.c proxy/sdnotify.h \
	proxy/metrics.c proxy/metrics.h \
	proxy/metrics_http.c proxy/metrics_http.h \
	proxy/http_request.c proxy/http_request.h
# [server] workers > 1: the master and the table the workers share
libproxy_a_SOURCES += proxy/workers.c proxy/workers.h proxy/ipcount_shared.c proxy/ipcount_shared.h
# backstop report (the backscatter report): reader, tables, writers
libproxy_a_SOURCES += proxy/report.c proxy/report.h proxy/report_reader.c proxy/report_reader.h \
	proxy/report_agg.c proxy/report_agg.h proxy/report_out.c proxy/report_out.h

sbin_PROGRAMS += backstop
backstop_SOURCES = proxy/main.c
backstop_LDADD = $(BACKSTOP_LIBS)

# Installation (see README.md, Install): the daemon in sbindir, the example
# configuration as $(sysconfdir)/backstop/backstop.ini (never over an
# existing one) and, always current, as $(pkgdatadir)/backstop.ini, the
# systemd unit, the manual pages, and the certificate helper.
# The unit and the pages name installed paths: made from *.in by sed, so
# that make's prefix (make prefix=... install) is what they say.
backstopconfdir = $(sysconfdir)/backstop
dist_pkgdata_DATA = backstop.ini
dist_pkgdata_SCRIPTS = certs/make-self-signed.sh
man_MANS = proxy/backstop.8 proxy/backstop.ini.5
if HAVE_SYSTEMD_UNITDIR
systemdsystemunit_DATA = proxy/backstop.service
endif
PROXY_GENERATED = proxy/backstop.service proxy/backstop.8 proxy/backstop.ini.5
EXTRA_DIST += $(PROXY_GENERATED:=.in)
CLEANFILES += $(PROXY_GENERATED)
proxy_edit = sed -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	-e 's|@pkgdatadir[@]|$(pkgdatadir)|g' -e 's|@PACKAGE_VERSION[@]|$(PACKAGE_VERSION)|g'
$(PROXY_GENERATED): %: $(srcdir)/%.in Makefile
	$(AM_V_GEN)$(MKDIR_P) proxy && rm -f $@ $@.tmp && \
		$(proxy_edit) $(srcdir)/$@.in > $@.tmp && mv $@.tmp $@
all-local: $(PROXY_GENERATED)

install-data-local:
	$(MKDIR_P) '$(DESTDIR)$(backstopconfdir)'
	@if test -f '$(DESTDIR)$(backstopconfdir)/backstop.ini'; then \
		echo "$(DESTDIR)$(backstopconfdir)/backstop.ini exists: kept (the new example is $(pkgdatadir)/backstop.ini)"; \
	else \
		echo " $(INSTALL_DATA) backstop.ini '$(DESTDIR)$(backstopconfdir)/backstop.ini'"; \
		$(INSTALL_DATA) $(srcdir)/backstop.ini '$(DESTDIR)$(backstopconfdir)/backstop.ini'; \
	fi
# an edited configuration stays
uninstall-local:
	@if cmp -s $(srcdir)/backstop.ini '$(DESTDIR)$(backstopconfdir)/backstop.ini'; then \
		echo " rm -f '$(DESTDIR)$(backstopconfdir)/backstop.ini'"; \
		rm -f '$(DESTDIR)$(backstopconfdir)/backstop.ini'; \
		rmdir '$(DESTDIR)$(backstopconfdir)' 2>/dev/null || :; \
	fi
# issue 12: the PROXY protocol phase of a session
libproxy_a_SOURCES += proxy/session_proxy.c

# proxy/ - the daemon: sockets, loop, config, sessions, relaying.
noinst_LIBRARIES += libproxy.a
libproxy_a_SOURCES = \
	proxy/config.c proxy/config.h \
	proxy/dns.c proxy/dns.h \
	proxy/rdns.c proxy/rdns.h \
	proxy/log.c proxy/log.h \
	proxy/buf.c proxy/buf.h \
	proxy/spool.c proxy/spool.h \
	proxy/server.c proxy/server.h \
	proxy/session.c proxy/session.h \
	proxy/session_cmd.c proxy/session_data.c proxy/session_filter.c \
	proxy/backend.c proxy/backend.h proxy/backend_probe.c \
	proxy/tls.c proxy/tls.h \
	proxy/privs.c proxy/privs.h \
	proxy/metrics.c proxy/metrics.h \
	proxy/metrics_http.c proxy/metrics_http.h \
	proxy/http_request.c proxy/http_request.h

bin_PROGRAMS += backstop
backstop_SOURCES = proxy/main.c
backstop_LDADD = $(BACKSTOP_LIBS)

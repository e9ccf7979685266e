# filters/ - the checks, each behind struct filter_ops (filters/filter.h).
noinst_LIBRARIES += libfilters.a
libfilters_a_SOURCES = \
	filters/filter.h filters/filters.c \
	filters/authres.c filters/authres.h \
	filters/helo.c \
	filters/ratelimit.c filters/ratelimit.h filters/ratelimit_redis.c filters/ratelimit_filter.c \
	filters/batv_tag.c filters/batv_tag.h \
	filters/batv.c filters/batv.h \
	filters/bsig.c filters/bsig.h \
	filters/sentlog.c filters/sentlog.h \
	filters/outbound_sig.c filters/outbound_sig.h \
	filters/spf.c filters/spf.h \
	filters/dkim.c filters/dkim_pubkey.c filters/dkim_pubkey.h \
	filters/dkim_bodyhash.c filters/dkim_bodyhash.h \
	filters/dmarc.c
EXTRA_DIST += filters/README.md
libfilters_a_SOURCES += filters/dmarc_record.c filters/dmarc_record.h \
	filters/dmarc_org.c filters/dmarc_org.h \
	filters/dmarc_eval.c filters/dmarc_eval.h
libfilters_a_SOURCES += filters/bounce.c filters/bounce_evidence.c filters/bounce_evidence.h
libfilters_a_SOURCES += filters/bounce_record.c filters/bounce_record.h
# forged Received hops (issue 15)
libfilters_a_SOURCES += filters/joejob.c
# DNS block and allow lists (issue 12): the filter, postscreen's site
# syntax (pure), the answer cache (pure)
libfilters_a_SOURCES += filters/dnsbl.c filters/dnsbl_sites.c filters/dnsbl_sites.h \
	filters/dnsbl_cache.c filters/dnsbl_cache.h

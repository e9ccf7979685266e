/*
 * metrics - backstop's counters, and their Prometheus text form.
 *
 * One struct metrics per event loop, owned by the server (server.c) and
 * reached through session->metrics: no file-scope counters, so that a loop
 * of its own (a worker) gets its own struct and a scrape can add them up.
 * Only the loop thread touches it: plain integers. The resolver, which
 * threads share, keeps its own atomic counts (dns_counts(), proxy/dns.h).
 *
 * Label sets are fixed and small (checks, reasons, code classes, TLS
 * versions): nothing a client says (addresses, names) becomes a label.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/buf.h"

/* What a 4xx/5xx reply to a client is counted under. AUTO: classified by
 * the reply itself (metrics_check_of_reply). */
enum metrics_check {
	METRICS_CHECK_AUTO = 0,
	METRICS_CHECK_SPF,
	METRICS_CHECK_DKIM,
	METRICS_CHECK_DMARC,
	METRICS_CHECK_BATV,
	METRICS_CHECK_HELO,
	METRICS_CHECK_DNSBL,
	METRICS_CHECK_BOUNCE,    /* a bounce without evidence of our mail */
	METRICS_CHECK_JOEJOB,    /* a forged Received hop */
	METRICS_CHECK_LIMITS,    /* [limits], [backend] max_connections, timeouts */
	METRICS_CHECK_PROTOCOL,  /* the client's protocol errors */
	METRICS_CHECK_SIZE,      /* max_message_size */
	METRICS_CHECK_BACKEND,   /* the backend's refusal, relayed, or its failure */
	METRICS_CHECK_OTHER,
	METRICS_CHECK_COUNT
};

/* Why a connection was refused (closed before or at its banner). */
enum metrics_refused {
	METRICS_REFUSED_MAX_CONNECTIONS = 0,
	METRICS_REFUSED_MAX_CONNECTIONS_PER_IP,
	METRICS_REFUSED_PREGREET,
	METRICS_REFUSED_CONNECT_CHECK,   /* a check's tempfail at connect */
	METRICS_REFUSED_MAX_CONNECTIONS_PER_NET,
	METRICS_REFUSED_PROXY_HEADER,    /* PROXY protocol: untrusted, bad or no header */
	METRICS_REFUSED_NON_SMTP,        /* HTTP or TLS spoken to the SMTP port */
	METRICS_REFUSED_COUNT
};

enum metrics_tls_version {
	METRICS_TLS_1_0 = 0,
	METRICS_TLS_1_1,
	METRICS_TLS_1_2,
	METRICS_TLS_1_3,
	METRICS_TLS_UNKNOWN,
	METRICS_TLS_COUNT
};

#define METRICS_LATENCY_BUCKETS 11   /* upper bounds in ms, +Inf last */
#define METRICS_SIZE_BUCKETS 9       /* upper bounds in bytes, +Inf last */

struct metrics_histogram {
	uint64_t count[12];   /* per bucket, not cumulative; the last is +Inf */
	uint64_t n;
	uint64_t sum;         /* in the observed unit (ms, bytes) */
};

struct metrics {
	uint64_t connections;                 /* accepted */
	uint64_t refused[METRICS_REFUSED_COUNT];
	uint64_t transactions;                /* summary lines: each ended transaction */
	uint64_t messages_relayed;            /* the backend said 2xx to the dot */
	uint64_t bytes_relayed;               /* their sizes as received */
	uint64_t refusals[METRICS_CHECK_COUNT][2];   /* [check][0: 4xx, 1: 5xx] */
	uint64_t backend_connects[2];         /* [0 inbound backend, 1 outbound relay] */
	uint64_t backend_connect_errors[2];
	/* [backend] pool_size: kept connections a session took, and those of
	 * them that failed to re-identify (then it connected afresh) */
	uint64_t backend_pool_reuses;
	uint64_t backend_pool_reuse_failures;
	/* /health's view of the inbound backend (metrics_backend_ready() and
	 * friends): connections and probes that failed before the backend
	 * could take mail, since the last one that could */
	unsigned backend_failed_in_a_row;
	const char *backend_failed_stage;     /* static text: where the latest failed */
	const char *backend_failed_why;       /* static text: how */
	bool backend_failed_past_ehlo;        /* one failed at STARTTLS/TLS/XCLIENT (or
	                                         after EHLO): a probe, which stops at
	                                         EHLO, cannot tell that it is fixed */
	bool backend_probe_failed;            /* the latest probe failed, no success since */
	uint64_t tls_handshakes[METRICS_TLS_COUNT];
	uint64_t tls_failures[METRICS_TLS_COUNT];
	struct metrics_histogram eod_latency; /* ms: client's dot to our reply */
	struct metrics_histogram message_size;/* bytes, relayed messages */
};

/* What a scrape reads from elsewhere at that moment. */
struct metrics_gauges {
	unsigned long connections;       /* sessions open */
	unsigned long backend_connections;
	unsigned long backend_pool_idle;  /* kept idle for the next client */
	uint64_t spool_bytes;
	bool draining;
	bool healthy;
	char unhealthy[200];             /* why not, for /health */
	bool dns;                        /* the resolver runs: dns_answers is valid */
	uint64_t dns_answers[6];         /* by enum dns_status */
	unsigned long dns_inflight;
	bool dns_cache;                  /* [dns] cache_size > 0: the two below are valid */
	uint64_t dns_cache_hits, dns_cache_misses;
};

/* metrics_check_of_reply - the class of a reply nobody labelled: RFC 3463
 * subject X.5.x (and 500-503, 555) is the protocol, X.3.4 and X.2.3 (and
 * 552) the size, X.4.x (network) the backend; the rest is "other". */
enum metrics_check metrics_check_of_reply(int code, const char *esc);
/* metrics_check_of_filter - a filter's name ("spf") to its label. */
enum metrics_check metrics_check_of_filter(const char *name);
const char *metrics_check_name(enum metrics_check c);
enum metrics_tls_version metrics_tls_version_of(const char *name);

void metrics_refusal(struct metrics *m, enum metrics_check check, int code);
void metrics_backend_connect(struct metrics *m, bool outbound, bool ok);
/* The inbound backend's readiness, for /health. A connection counts when
 * it reaches the ready state (greeting 2xx, EHLO, TLS and XCLIENT done) or
 * fails on the way there; a probe (greeting and EHLO) counts as well. */
void metrics_backend_ready(struct metrics *m);
/* stage: "connect", "greeting", ...; why: backend_err_text(); both static.
 * past_ehlo: it failed where a probe does not go. */
void metrics_backend_failed(struct metrics *m, const char *stage, const char *why, bool past_ehlo);
/* metrics_backend_probed - a probe's result: a failure makes /health 503
 * at once (there is no history to weigh it against at start-up); a success
 * clears the failures a probe can see (not those past EHLO) */
void metrics_backend_probed(struct metrics *m, bool ok, const char *stage, const char *why);
/* metrics_backend_healthy - whether /health may say 200 for the backend:
 * not when the latest probe failed, nor after limit failures in a row;
 * why (len bytes) says which. */
bool metrics_backend_healthy(const struct metrics *m, unsigned long limit, char *why, size_t len);
/* metrics_backend_probe_useful - unhealthy in a way a probe can tell is over */
bool metrics_backend_probe_useful(const struct metrics *m, unsigned long limit);
void metrics_tls_handshake(struct metrics *m, const char *version, bool ok);
void metrics_eod(struct metrics *m, uint64_t ms);
void metrics_relayed(struct metrics *m, uint64_t bytes);

/* metrics_add - add m's counters and histograms to sum (the health
 * fields, which do not add up, stay sum's): a scrape over the worker
 * processes' counters (proxy/workers.c). */
void metrics_add(struct metrics *sum, const struct metrics *m);
/* metrics_gauges_add - add g to sum: counts add, draining if any is,
 * healthy only if both are (sum keeps the first reason why not). */
void metrics_gauges_add(struct metrics_gauges *sum, const struct metrics_gauges *g);

/* metrics_render - the Prometheus text format 0.0.4 of m and g into out
 * (at most limit bytes). 0, or -1 when it does not fit. */
int metrics_render(const struct metrics *m, const struct metrics_gauges *g, struct buf *out,
    size_t limit);

#endif

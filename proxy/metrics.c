/*
 * metrics - see metrics.h. Counting is a few additions on the loop
 * thread; the text is built only when scraped.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proxy/metrics.h"

/* end of data latency: upper bounds in ms (rendered in seconds) */
static const uint64_t latency_le_ms[METRICS_LATENCY_BUCKETS - 1] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000,
};
/* message size: upper bounds in bytes */
static const uint64_t size_le[METRICS_SIZE_BUCKETS - 1] = {
	1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216,
};

static const char *const check_names[METRICS_CHECK_COUNT] = {
	"other",   /* AUTO: never counted as such (metrics_refusal) */ "spf", "dkim", "dmarc", "batv", "helo", "dnsbl", "bounce", "joejob", "limits", "protocol", "size", "backend", "other",
};
static const char *const refused_names[METRICS_REFUSED_COUNT] = {
	"max_connections", "max_connections_per_ip", "pregreet", "connect_check",
	"max_connections_per_net", "proxy_header", "non_smtp",
};
static const char *const tls_names[METRICS_TLS_COUNT] = {
	"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3", "unknown",
};
static const char *const dns_status_names[6] = {
	"ok", "nodata", "nxdomain", "servfail", "timeout", "error",
};

const char *metrics_check_name(enum metrics_check c)
{
	return (unsigned)c < METRICS_CHECK_COUNT ? check_names[c] : "other";
}

enum metrics_check metrics_check_of_reply(int code, const char *esc)
{
	if (esc != NULL && esc[0] && esc[1] == '.') {
		if (strncmp(esc + 2, "5.", 2) == 0)
			return METRICS_CHECK_PROTOCOL;
		if (strcmp(esc + 2, "3.4") == 0 || strcmp(esc + 2, "2.3") == 0)
			return METRICS_CHECK_SIZE;
		/* network and routing: backstop says these only of its backend
		 * (a client's timeout is labelled "limits" where it happens) */
		if (strncmp(esc + 2, "4.", 2) == 0)
			return METRICS_CHECK_BACKEND;
		return METRICS_CHECK_OTHER;
	}
	if ((code >= 500 && code <= 503) || code == 555)
		return METRICS_CHECK_PROTOCOL;
	if (code == 552)
		return METRICS_CHECK_SIZE;
	return METRICS_CHECK_OTHER;
}

enum metrics_check metrics_check_of_filter(const char *name)
{
	/* the rate limits' filter is named "limits": its refusals count there */
	for (int c = METRICS_CHECK_SPF; c <= METRICS_CHECK_LIMITS; c++)
		if (name != NULL && strcmp(name, check_names[c]) == 0)
			return (enum metrics_check)c;
	return METRICS_CHECK_OTHER;
}

enum metrics_tls_version metrics_tls_version_of(const char *name)
{
	for (int v = 0; v < METRICS_TLS_UNKNOWN; v++)
		if (name != NULL && strcmp(name, tls_names[v]) == 0)
			return (enum metrics_tls_version)v;
	return METRICS_TLS_UNKNOWN;
}

void metrics_refusal(struct metrics *m, enum metrics_check check, int code)
{
	if (code < 400 || code > 599)
		return;
	if ((unsigned)check >= METRICS_CHECK_COUNT || check == METRICS_CHECK_AUTO)
		check = METRICS_CHECK_OTHER;
	m->refusals[check][code >= 500]++;
}

void metrics_backend_connect(struct metrics *m, bool outbound, bool ok)
{
	/* TCP only: a backend that accepts and never greets is not healthy
	 * for it (metrics_backend_ready/failed decide that) */
	if (ok)
		m->backend_connects[outbound]++;
	else
		m->backend_connect_errors[outbound]++;
}

void metrics_backend_ready(struct metrics *m)
{
	m->backend_failed_in_a_row = 0;
	m->backend_failed_past_ehlo = false;
	m->backend_probe_failed = false;
	m->backend_failed_stage = m->backend_failed_why = NULL;
}

void metrics_backend_failed(struct metrics *m, const char *stage, const char *why, bool past_ehlo)
{
	if (m->backend_failed_in_a_row < UINT_MAX)
		m->backend_failed_in_a_row++;
	m->backend_failed_stage = stage;
	m->backend_failed_why = why;
	/* sticky until a connection gets ready: a later connect failure must
	 * not let a probe's success hide a refused XCLIENT */
	m->backend_failed_past_ehlo |= past_ehlo;
}

void metrics_backend_probed(struct metrics *m, bool ok, const char *stage, const char *why)
{
	if (!ok) {
		metrics_backend_failed(m, stage, why, false);
		m->backend_probe_failed = true;
		return;
	}
	m->backend_probe_failed = false;
	if (!m->backend_failed_past_ehlo) {
		m->backend_failed_in_a_row = 0;
		m->backend_failed_stage = m->backend_failed_why = NULL;
	}
}

static bool backend_unhealthy(const struct metrics *m, unsigned long limit)
{
	return m->backend_probe_failed || m->backend_failed_in_a_row >= limit;
}

bool metrics_backend_healthy(const struct metrics *m, unsigned long limit, char *why, size_t len)
{
	const char *stage = m->backend_failed_stage ? m->backend_failed_stage : "?";
	const char *how = m->backend_failed_why ? m->backend_failed_why : "?";

	if (m->backend_probe_failed) {
		snprintf(why, len, "backend cannot take mail: the latest probe failed (%u failures in a row, "
		    "the latest at %s: %s)", m->backend_failed_in_a_row, stage, how);
		return false;
	}
	if (backend_unhealthy(m, limit)) {
		snprintf(why, len, "backend cannot take mail: its last %u connections failed before ready "
		    "(the latest at %s: %s)",
		    m->backend_failed_in_a_row, stage, how);
		return false;
	}
	return true;
}

bool metrics_backend_probe_useful(const struct metrics *m, unsigned long limit)
{
	return backend_unhealthy(m, limit) && !m->backend_failed_past_ehlo;
}

void metrics_tls_handshake(struct metrics *m, const char *version, bool ok)
{
	enum metrics_tls_version v = metrics_tls_version_of(version);
	if (ok)
		m->tls_handshakes[v]++;
	else
		m->tls_failures[v]++;
}

static void observe(struct metrics_histogram *h, const uint64_t *le, size_t nle, uint64_t value)
{
	size_t i = 0;
	while (i < nle && value > le[i])
		i++;
	h->count[i]++;
	h->n++;
	h->sum += value;
}

void metrics_eod(struct metrics *m, uint64_t ms)
{
	observe(&m->eod_latency, latency_le_ms, METRICS_LATENCY_BUCKETS - 1, ms);
}

void metrics_relayed(struct metrics *m, uint64_t bytes)
{
	m->messages_relayed++;
	m->bytes_relayed += bytes;
	observe(&m->message_size, size_le, METRICS_SIZE_BUCKETS - 1, bytes);
}

/* ---- Prometheus text format 0.0.4 ---- */

struct out {
	struct buf *b;
	size_t limit;
	bool full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line || buf_append(o->b, line, (size_t)n, o->limit) < 0)
		o->full = true;
}

static void head(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP backstop_%s %s\n# TYPE backstop_%s %s\n", name, help, name, type);
}

static void histogram(struct out *o, const char *name, const char *help,
    const struct metrics_histogram *h, const uint64_t *le, size_t nle, bool ms_to_seconds)
{
	uint64_t cum = 0;

	head(o, name, "histogram", help);
	for (size_t i = 0; i < nle; i++) {
		cum += h->count[i];
		if (ms_to_seconds)
			put(o, "backstop_%s_bucket{le=\"%g\"} %llu\n", name, (double)le[i] / 1000.0,
			    (unsigned long long)cum);
		else
			put(o, "backstop_%s_bucket{le=\"%llu\"} %llu\n", name, (unsigned long long)le[i],
			    (unsigned long long)cum);
	}
	put(o, "backstop_%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->n);
	if (ms_to_seconds)
		put(o, "backstop_%s_sum %.3f\n", name, (double)h->sum / 1000.0);
	else
		put(o, "backstop_%s_sum %llu\n", name, (unsigned long long)h->sum);
	put(o, "backstop_%s_count %llu\n", name, (unsigned long long)h->n);
}

int metrics_render(const struct metrics *m, const struct metrics_gauges *g, struct buf *out,
    size_t limit)
{
	struct out o = {out, limit, false};
	static const char *const target[2] = {"backend", "relay"};

	head(&o, "up", "gauge", "1 while backstop serves; see /health for readiness.");
	put(&o, "backstop_up 1\n");
	head(&o, "healthy", "gauge", "1 when /health answers 200 (listening, not draining, backend reachable).");
	put(&o, "backstop_healthy %d\n", g->healthy ? 1 : 0);
	head(&o, "draining", "gauge", "1 after SIGTERM while sessions finish.");
	put(&o, "backstop_draining %d\n", g->draining ? 1 : 0);

	head(&o, "connections", "gauge", "Client connections open now.");
	put(&o, "backstop_connections %lu\n", g->connections);
	head(&o, "connections_total", "counter", "Client connections accepted.");
	put(&o, "backstop_connections_total %llu\n", (unsigned long long)m->connections);
	head(&o, "connections_refused_total", "counter",
	    "Client connections refused at or before the banner (or, non_smtp, for speaking HTTP or"
	    " TLS to the SMTP port), by reason.");
	for (int r = 0; r < METRICS_REFUSED_COUNT; r++)
		put(&o, "backstop_connections_refused_total{reason=\"%s\"} %llu\n", refused_names[r],
		    (unsigned long long)m->refused[r]);

	head(&o, "transactions_total", "counter",
	    "Mail transactions ended (one per summary log line), however they ended.");
	put(&o, "backstop_transactions_total %llu\n", (unsigned long long)m->transactions);
	head(&o, "messages_relayed_total", "counter", "Messages the backend accepted (2xx to the final dot).");
	put(&o, "backstop_messages_relayed_total %llu\n", (unsigned long long)m->messages_relayed);
	head(&o, "relayed_bytes_total", "counter", "Bytes of the relayed messages, as received.");
	put(&o, "backstop_relayed_bytes_total %llu\n", (unsigned long long)m->bytes_relayed);

	head(&o, "refusals_total", "counter",
	    "4xx and 5xx replies to clients, by the check or limit that caused them.");
	for (int c = METRICS_CHECK_SPF; c < METRICS_CHECK_COUNT; c++)
		for (int k = 0; k < 2; k++)
			put(&o, "backstop_refusals_total{check=\"%s\",class=\"%s\"} %llu\n", check_names[c],
			    k ? "5xx" : "4xx", (unsigned long long)m->refusals[c][k]);

	head(&o, "backend_connects_total", "counter",
	    "TCP connections opened to the backend (target=backend) or the outbound relay.");
	for (int t = 0; t < 2; t++)
		put(&o, "backstop_backend_connects_total{target=\"%s\"} %llu\n", target[t],
		    (unsigned long long)m->backend_connects[t]);
	head(&o, "backend_connect_errors_total", "counter",
	    "Connection attempts that failed (refused, unreachable, timed out, unresolvable).");
	for (int t = 0; t < 2; t++)
		put(&o, "backstop_backend_connect_errors_total{target=\"%s\"} %llu\n", target[t],
		    (unsigned long long)m->backend_connect_errors[t]);
	head(&o, "backend_connect_failures_in_a_row", "gauge",
	    "Backend connections and probes that failed before ready (greeting, EHLO, TLS, XCLIENT) in a row.");
	put(&o, "backstop_backend_connect_failures_in_a_row %u\n", m->backend_failed_in_a_row);
	head(&o, "backend_connections", "gauge", "Connections to the backend open now.");
	put(&o, "backstop_backend_connections %lu\n", g->backend_connections);
	head(&o, "backend_pool_idle", "gauge",
	    "Backend connections kept idle for the next client ([backend] pool_size; counted in backend_connections).");
	put(&o, "backstop_backend_pool_idle %lu\n", g->backend_pool_idle);
	head(&o, "backend_pool_reuses_total", "counter",
	    "Kept backend connections a client's session took instead of connecting.");
	put(&o, "backstop_backend_pool_reuses_total %llu\n", (unsigned long long)m->backend_pool_reuses);
	head(&o, "backend_pool_reuse_failures_total", "counter",
	    "Kept connections that failed to re-identify (closed, RSET or XCLIENT refused): the session connected afresh.");
	put(&o, "backstop_backend_pool_reuse_failures_total %llu\n",
	    (unsigned long long)m->backend_pool_reuse_failures);

	head(&o, "tls_handshakes_total", "counter", "STARTTLS handshakes with clients that completed.");
	for (int v = 0; v < METRICS_TLS_COUNT; v++)
		put(&o, "backstop_tls_handshakes_total{version=\"%s\"} %llu\n", tls_names[v],
		    (unsigned long long)m->tls_handshakes[v]);
	head(&o, "tls_handshake_failures_total", "counter",
	    "STARTTLS handshakes with clients that failed (version: as far as negotiated).");
	for (int v = 0; v < METRICS_TLS_COUNT; v++)
		put(&o, "backstop_tls_handshake_failures_total{version=\"%s\"} %llu\n", tls_names[v],
		    (unsigned long long)m->tls_failures[v]);

	if (g->dns) {
		head(&o, "dns_answers_total", "counter", "DNS lookups answered, by result.");
		for (int s = 0; s < 6; s++)
			put(&o, "backstop_dns_answers_total{result=\"%s\"} %llu\n", dns_status_names[s],
			    (unsigned long long)g->dns_answers[s]);
		head(&o, "dns_queries_in_flight", "gauge", "DNS queries waiting for an answer.");
		put(&o, "backstop_dns_queries_in_flight %lu\n", g->dns_inflight);
	}
	if (g->dns_cache) {
		head(&o, "dns_cache_hits_total", "counter",
		    "DNS lookups answered from backstop's own answer cache (counted in dns_answers_total too).");
		put(&o, "backstop_dns_cache_hits_total %llu\n", (unsigned long long)g->dns_cache_hits);
		head(&o, "dns_cache_misses_total", "counter",
		    "DNS lookups not in backstop's answer cache, sent on to the resolver.");
		put(&o, "backstop_dns_cache_misses_total %llu\n", (unsigned long long)g->dns_cache_misses);
	}

	head(&o, "spool_bytes", "gauge", "Bytes of held messages in the spool directory now.");
	put(&o, "backstop_spool_bytes %llu\n", (unsigned long long)g->spool_bytes);

	histogram(&o, "end_of_data_seconds",
	    "Time from a message's final dot to backstop's reply to it (checks and backend).",
	    &m->eod_latency, latency_le_ms, METRICS_LATENCY_BUCKETS - 1, true);
	histogram(&o, "message_size_bytes", "Sizes of the relayed messages, as received.",
	    &m->message_size, size_le, METRICS_SIZE_BUCKETS - 1, false);
	return o.full ? -1 : 0;
}

static void histogram_add(struct metrics_histogram *sum, const struct metrics_histogram *h)
{
	for (size_t i = 0; i < sizeof h->count / sizeof h->count[0]; i++)
		sum->count[i] += h->count[i];
	sum->n += h->n;
	sum->sum += h->sum;
}

void metrics_add(struct metrics *sum, const struct metrics *m)
{
	sum->connections += m->connections;
	for (int i = 0; i < METRICS_REFUSED_COUNT; i++)
		sum->refused[i] += m->refused[i];
	sum->transactions += m->transactions;
	sum->messages_relayed += m->messages_relayed;
	sum->bytes_relayed += m->bytes_relayed;
	for (int i = 0; i < METRICS_CHECK_COUNT; i++) {
		sum->refusals[i][0] += m->refusals[i][0];
		sum->refusals[i][1] += m->refusals[i][1];
	}
	for (int i = 0; i < 2; i++) {
		sum->backend_connects[i] += m->backend_connects[i];
		sum->backend_connect_errors[i] += m->backend_connect_errors[i];
	}
	sum->backend_pool_reuses += m->backend_pool_reuses;
	sum->backend_pool_reuse_failures += m->backend_pool_reuse_failures;
	for (int i = 0; i < METRICS_TLS_COUNT; i++) {
		sum->tls_handshakes[i] += m->tls_handshakes[i];
		sum->tls_failures[i] += m->tls_failures[i];
	}
	histogram_add(&sum->eod_latency, &m->eod_latency);
	histogram_add(&sum->message_size, &m->message_size);
}

void metrics_gauges_add(struct metrics_gauges *sum, const struct metrics_gauges *g)
{
	sum->connections += g->connections;
	sum->backend_connections += g->backend_connections;
	sum->backend_pool_idle += g->backend_pool_idle;
	sum->spool_bytes += g->spool_bytes;
	sum->draining = sum->draining || g->draining;
	if (sum->healthy && !g->healthy) {
		sum->healthy = false;
		snprintf(sum->unhealthy, sizeof sum->unhealthy, "%s", g->unhealthy);
	}
	if (g->dns) {
		sum->dns = true;
		for (size_t i = 0; i < sizeof g->dns_answers / sizeof g->dns_answers[0]; i++)
			sum->dns_answers[i] += g->dns_answers[i];
		sum->dns_inflight += g->dns_inflight;
	}
	if (g->dns_cache) {
		sum->dns_cache = true;
		sum->dns_cache_hits += g->dns_cache_hits;
		sum->dns_cache_misses += g->dns_cache_misses;
	}
}

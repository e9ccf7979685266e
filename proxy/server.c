/*
 * server - listeners, configuration ownership, signals, per-IP counts.
 *
 * SIGTERM: listeners close at once; every session may go on until [server]
 * drain_time (it gets 421 at its next MAIL, or after its current
 * transaction), then everyone left gets 421. SIGHUP: the new file is loaded and checked
 * in full before anything changes; an invalid one is logged and ignored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/ratelimit.h"
#include "proxy/backend.h"
#include "proxy/backend_pool.h"
#include "proxy/dns.h"
#include "proxy/log.h"
#include "proxy/metrics_http.h"
#include "proxy/privs.h"
#include "proxy/sdnotify.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/spool.h"
#include "proxy/tls.h"
#include "proxy/ipcount_shared.h"
#include "proxy/worker.h"
#include "proxy/workers.h"

#define IPCOUNT_BUCKETS WORKER_IPCOUNT_BUCKETS

struct ipcount {
	char key[20];
	unsigned n;
	struct ipcount *next;
};

/* /health's re-probe: while the backend is unhealthy and no client brings
 * traffic that would tell, or while the relay check finds it relaying for
 * backstop (client traffic never tells: every RCPT is refused here), one
 * probe every BACKEND_REPROBE_MS (each one bounded by [backend]
 * connect_timeout, never two at once) */
#define BACKEND_REPROBE_MS 10000

void worker_init(struct worker *w, uv_loop_t *loop)
{
	memset(w, 0, sizeof *w);
	w->loop = loop;
	w->backend.loop = loop;
	w->filters.loop = loop;
	spool_budget_init(&w->spool);
	w->metrics = &w->own_metrics;
}

struct config *server_config(struct worker *w)
{
	return w->current;
}

struct tls_server *server_tls(struct worker *w)
{
	return w->tls;
}

bool server_draining(struct worker *w)
{
	return w->draining;
}

/* metrics_gauges - what a scrape reads besides the counters; /health is
 * 200 while listening, not draining, and the backend can take mail (the
 * latest probe did not fail nor find it relaying for backstop, and its
 * last [metrics] backend_failures connections did not all fail before
 * ready: metrics_backend_healthy). */
static void metrics_gauges(void *arg, struct metrics_gauges *g)
{
	struct worker *w = arg;

	g->connections = sessions_count(w);
	g->backend_connections = backend_connections(&w->backend);
	g->backend_pool_idle = w->backend_pool.n;
	g->spool_bytes = w->spool.in_use;
	g->draining = w->draining;
	g->dns = dns_counts(w->dns, g->dns_answers, &g->dns_inflight);
	g->dns_cache = dns_cache_counts(w->dns, &g->dns_cache_hits, &g->dns_cache_misses);
	if (w->draining) {
		g->healthy = false;
		snprintf(g->unhealthy, sizeof g->unhealthy, "draining: shutting down");
	} else if (w->current->backend.relay_check && w->backend_known.relays_for_backstop) {
		/* every client RCPT gets 451 (session_cmd.c): a pool member in
		 * that state takes no mail, so the balancer should skip it */
		g->healthy = false;
		snprintf(g->unhealthy, sizeof g->unhealthy,
		    "backend relays for backstop's own address: every RCPT gets 451 4.7.1 "
		    "(see the backend probe's error in the log; [backend] identity, relay_check)");
	} else {
		g->healthy = metrics_backend_healthy(w->metrics, w->current->metrics.backend_failures,
		    g->unhealthy, sizeof g->unhealthy);
	}
}

/* worker_metrics_gauges - worker 0's scrape: its own gauges now, the
 * others' as they published them (at most WORKERS_GAUGES_MS old), and
 * everyone's counters; /health's backend view is worker 0's */
static void worker_metrics_gauges(void *arg, struct metrics_gauges *g)
{
	struct worker *w = arg;

	metrics_gauges(arg, g);
	w->metrics_sum = *w->metrics;
	for (unsigned i = 0; i < w->ctx->count; i++) {
		if (i == w->ctx->index)
			continue;
		metrics_add(&w->metrics_sum, &w->ctx->slots[i].metrics);
		metrics_gauges_add(g, &w->ctx->slots[i].gauges);
	}
}

static void on_gauges_timer(uv_timer_t *t)
{
	struct worker *w = t->data;

	metrics_gauges(w, &w->ctx->slots[w->ctx->index].gauges);
}

void server_set_worker(struct worker *w, const struct worker_context *ctx)
{
	w->ctx = ctx;
	w->metrics = &ctx->slots[ctx->index].metrics;
}

static void on_probed(void *arg, bool ok, const char *stage, const char *why)
{
	char was[8];
	struct worker *w = arg;
	bool was_healthy = metrics_backend_healthy(w->metrics, w->current->metrics.backend_failures, was, sizeof was);

	w->probes_inflight--;
	metrics_backend_probed(w->metrics, ok, stage, why);
	if (!was_healthy && metrics_backend_healthy(w->metrics, w->current->metrics.backend_failures, was, sizeof was))
		log_info("backend probe: the backend answers again; /health is 200");
}

/* backend_probe_start - the probe at start-up and reload (quiet: false),
 * or a re-probe of an unhealthy backend */
static void backend_probe_start(struct worker *w, bool quiet)
{
	/* counted first: a probe that fails at once reports before it returns */
	w->probes_inflight++;
	if (!backend_probe(&w->backend, w->current, &w->backend_known, quiet, on_probed, w))
		w->probes_inflight--;   /* no probe (a host name): no report either */
}

static void on_reprobe_timer(uv_timer_t *t)
{
	struct worker *w = t->data;

	bool relaying = w->current->backend.relay_check && w->backend_known.relays_for_backstop;

	if (w->draining || w->probes_inflight > 0)
		return;
	/* with backend connections open, their outcome will tell */
	if (!relaying && (backend_connections(&w->backend) > 0 ||
	    !metrics_backend_probe_useful(w->metrics, w->current->metrics.backend_failures)))
		return;
	log_debug("backend probe: the backend %s; probing it again",
	    relaying ? "relayed for backstop's own address" : "was unhealthy and has had no traffic");
	backend_probe_start(w, true);
}

static size_t ipkey_hash(const char *key)
{
	size_t h = 5381;
	for (int i = 0; i < 20; i++)
		h = h * 33 + (unsigned char)key[i];
	return h % IPCOUNT_BUCKETS;
}

unsigned ipcount_add(struct worker *w, const char *key, int delta)
{
	if (w->ctx != NULL) {
		/* once a minute at most: a full table is full for every new address */
		uint64_t now = uv_now(w->loop);
		int full;
		unsigned n = ipcount_shared_add(w->ctx->ipcounts, w->ctx->index, key, delta, &full);
		if (full && (w->ipcount_full_warned_ms == 0 || now - w->ipcount_full_warned_ms >= 60000)) {
			w->ipcount_full_warned_ms = now;
			log_warn("the workers' shared per-IP connection table is full: new addresses are not"
			    " counted for [limits] max_connections_per_ip / _per_net until some leave");
		}
		return n;
	}
	struct ipcount **pp = &w->ipcounts[ipkey_hash(key)], *e;
	for (; (e = *pp) != NULL; pp = &e->next)
		if (memcmp(e->key, key, 20) == 0)
			break;
	if (e == NULL) {
		if (delta <= 0)
			return 0;
		if ((e = calloc(1, sizeof *e)) == NULL)
			return 0;
		memcpy(e->key, key, 20);
		e->next = w->ipcounts[ipkey_hash(key)];
		w->ipcounts[ipkey_hash(key)] = e;
		pp = &w->ipcounts[ipkey_hash(key)];
	}
	if (delta < 0 && e->n < (unsigned)-delta)
		e->n = 0;
	else
		e->n = (unsigned)((int)e->n + delta);
	if (e->n == 0) {
		/* forget addresses that have no connection left */
		for (pp = &w->ipcounts[ipkey_hash(key)]; *pp != e; pp = &(*pp)->next)
			;
		*pp = e->next;
		free(e);
		return 0;
	}
	return e->n;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct listener *l = server->data;
	if (status < 0) {
		/* EMFILE and friends: shed load, keep listening */
		log_warn("accept on %s failed: %s", l->addr, uv_strerror(status));
		return;
	}
	if (l->worker->draining)
		return;
	session_accept(l, server);
}

/* listen_prebound - a worker's socket for addr, bound with SO_REUSEPORT
 * by the master (proxy/workers.c) */
static int listen_prebound(struct worker *w, uv_tcp_t *tcp, const char *addr)
{
	for (size_t i = 0; i < w->ctx->nfds; i++)
		if (strcmp(w->ctx->addrs[i], addr) == 0 && w->ctx->fds[i] >= 0)
			return uv_tcp_open(tcp, w->ctx->fds[i]);
	return UV_EADDRNOTAVAIL;   /* not bound at start-up: a restart binds it */
}

static int listen_one(struct worker *w, const char *addr, bool outbound)
{
	char host[128];
	unsigned port;
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} sa;
	struct listener *l;
	int rc;

	if (hostport_split(addr, host, sizeof host, &port) < 0) {
		log_error("bad listen address %s", addr);
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	if (uv_ip4_addr(host, (int)port, &sa.in4) != 0 && uv_ip6_addr(host, (int)port, &sa.in6) != 0) {
		log_error("listen address %s: not an IP address", addr);
		return -1;
	}
	if ((l = calloc(1, sizeof *l)) == NULL)
		return -1;
	snprintf(l->addr, sizeof l->addr, "%s", addr);
	l->outbound = outbound;
	l->worker = w;
	uv_tcp_init(w->loop, &l->tcp);
	l->tcp.data = l;
	if (w->ctx != NULL)
		rc = listen_prebound(w, &l->tcp, addr);
	else
		rc = uv_tcp_bind(&l->tcp, &sa.sa, sa.sa.sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
	if (rc != 0) {
		log_error("cannot listen on %s: %s", addr, uv_strerror(rc));
		uv_close((uv_handle_t *)&l->tcp, (uv_close_cb)free);
		return -1;
	}
	l->next = w->listeners;
	w->listeners = l;
	log_info("listening on %s%s", addr, outbound ? " (outbound: signing, relay to next hop)" : "");
	return 0;
}

/* listeners_close - stop accepting. The structs stay (on
 * listeners_closed, freed by server_release) because the sessions still
 * draining point to theirs. */
static void listeners_close(struct worker *w)
{
	struct listener *l = w->listeners, *next;
	for (; l; l = next) {
		next = l->next;
		uv_close((uv_handle_t *)&l->tcp, NULL);
		l->next = w->listeners_closed;
		w->listeners_closed = l;
	}
	w->listeners = NULL;
}

static void on_drain_timer(uv_timer_t *t)
{
	struct worker *w = t->data;
	unsigned left;

	if (w->drain_eod_grace) {
		log_info("end-of-data grace over: closing %u remaining session(s)", sessions_count(w));
		sessions_close_all(w, "shutdown", true);
		server_stop(w);
		return;
	}
	log_info("drain time over: closing %u remaining session(s)", sessions_count(w));
	/* a session whose final dot is already at the backend gets the
	 * backend's reply (for up to drain_reply_grace), not a 421 that its
	 * client would answer by sending the message again */
	left = sessions_close_all(w, "shutdown", false);
	if (left > 0) {
		uint64_t grace = w->current->server.drain_reply_grace;
		log_info("%u session(s) whose message is at the backend wait up to %llums for its reply "
		    "([server] drain_reply_grace)", left, (unsigned long long)grace);
		w->drain_eod_grace = true;
		uv_timer_start(&w->drain_timer, on_drain_timer, grace, 0);
		return;
	}
	server_stop(w);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* server_stop - last step of a shutdown: close what is left so uv_run ends. */
void server_stop(struct worker *w)
{
	if (w->stopped)
		return;
	if (sessions_count(w) > 0)
		return;
	w->stopped = true;
	backend_pool_configure(&w->backend_pool, NULL);   /* QUIT the idle ones; no more */
	uv_signal_stop(&w->sig_term);
	uv_signal_stop(&w->sig_int);
	uv_signal_stop(&w->sig_hup);
	uv_close((uv_handle_t *)&w->sig_term, NULL);
	uv_close((uv_handle_t *)&w->sig_int, NULL);
	uv_close((uv_handle_t *)&w->sig_hup, NULL);
	if (!uv_is_closing((uv_handle_t *)&w->drain_timer))
		uv_close((uv_handle_t *)&w->drain_timer, NULL);
	if (!uv_is_closing((uv_handle_t *)&w->reprobe_timer))
		uv_close((uv_handle_t *)&w->reprobe_timer, NULL);
	if (w->ctx != NULL && !uv_is_closing((uv_handle_t *)&w->gauges_timer))
		uv_close((uv_handle_t *)&w->gauges_timer, NULL);
	/* open until here: /health says 503 while the sessions drain */
	metrics_http_stop(w->metrics_http);
	w->metrics_http = NULL;
	ratelimit_stop(w->ratelimit);
	(void)close_walk;
}

static void on_sigterm(uv_signal_t *h, int signum)
{
	struct worker *w = h->data;

	if (w->draining) {
		log_info("second signal %d: closing all sessions now", signum);
		sessions_close_all(w, "shutdown", true);
		server_stop(w);
		return;
	}
	w->draining = true;
	(void)sd_notify_state("STOPPING=1");
	log_info("signal %d: stopping; %u session(s) get up to %llums to finish", signum, sessions_count(w),
	    (unsigned long long)w->current->server.drain_time);
	listeners_close(w);
	/* idle backend connections hold the backend's processes for nothing now */
	backend_pool_configure(&w->backend_pool, NULL);
	sessions_drain(w);
	if (sessions_count(w) == 0) {
		server_stop(w);
		return;
	}
	uv_timer_start(&w->drain_timer, on_drain_timer, w->current->server.drain_time, 0);
}

static bool words_equal(const struct cfg_words *a, const struct cfg_words *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return false;
	return true;
}

static bool str_list_equal(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* restart_needed - warn about each setting a reload cannot apply: what
 * differs from the configuration the process started with (restoring the
 * started value is silence, not a warning). */
static void restart_needed(struct worker *w, const struct config *next)
{
	if (!words_equal(&next->server.listen, &w->bound->server.listen) ||
	    !words_equal(&next->outbound.listen, &w->bound->outbound.listen))
		log_warn("reload: listen addresses changed; they take effect at the next restart");
	if (!words_equal(&next->metrics.listen, &w->bound->metrics.listen))
		log_warn("reload: [metrics] listen changed; it takes effect at the next restart");
	if (!words_equal(&next->dns.servers, &w->bound->dns.servers) ||
	    next->dns.timeout != w->bound->dns.timeout ||
	    next->dns.max_queries != w->bound->dns.max_queries ||
	    next->dns.cache_size != w->bound->dns.cache_size ||
	    next->dns.cache_max_ttl != w->bound->dns.cache_max_ttl)
		log_warn("reload: [dns] servers, timeout, max_queries or cache_* changed; they take effect at"
		    " the next restart (the resolver keeps its start-up settings)");
	if (!str_list_equal(next->server.user, w->bound->server.user) ||
	    !str_list_equal(next->server.group, w->bound->server.group))
		log_warn("reload: [server] user or group changed; it takes effect at the next restart");
	if (next->server.workers != w->bound->server.workers)
		log_warn("reload: [server] workers changed; it takes effect at the next restart");
	if (next->limits.rate_table_size != w->bound->limits.rate_table_size)
		log_warn("reload: [limits] rate_table_size changed; it takes effect at the next restart");
}

void server_reload(struct worker *w)
{
	char err[4096], ferr[512];
	struct config *next;
	struct tls_server *tls = NULL;

	if (w->draining) {
		/* a reload would reopen the backend pool SIGTERM has emptied and
		 * probe the backend: the sessions left finish as they are */
		log_info("reload: ignored while shutting down (%u session(s) draining)", sessions_count(w));
		return;
	}
	next = config_load(w->current->path, err, sizeof err);
	if (next == NULL) {
		log_error("reload: %s has errors, keeping the running configuration:\n%s", w->current->path, err);
		return;
	}
	/* after the privilege drop files are read as [server] user: name the
	 * one it cannot read, rather than OpenSSL's "system lib" */
	if (privs_unreadable(next, ferr, sizeof ferr) < 0) {
		log_error("reload: cannot read %s; keeping the running configuration"
		    " (and its certificates and keys)", ferr);
		config_unref(next);
		return;
	}
	tls = tls_server_new(next, ferr, sizeof ferr);
	if (tls == NULL && ferr[0]) {
		log_error("reload: TLS: %s; keeping the running configuration", ferr);
		config_unref(next);
		return;
	}
	/* every filter's files first: a reload refused for one filter must
	 * not have applied another's (new BATV keys from the same path) */
	if (filters_check(next, ferr, sizeof ferr) < 0) {
		log_error("reload: %s; keeping the running configuration", ferr);
		if (tls)
			tls_server_unref(tls);
		config_unref(next);
		return;
	}
	if (filters_init(&w->filters, next, ferr, sizeof ferr) < 0) {
		/* the check passed, so something changed since (or memory): the
		 * running configuration again, as far as it can be */
		log_error("reload: %s; keeping the running configuration", ferr);
		filters_init(&w->filters, w->current, ferr, sizeof ferr);
		if (tls)
			tls_server_unref(tls);
		config_unref(next);
		return;
	}
	restart_needed(w, next);
	if (log_configure(next, w->detached, ferr, sizeof ferr) < 0)
		log_error("reload: %s; the log stays where it was", ferr);
	config_unref(w->current);
	w->current = next;
	spool_budget_set_limit(&w->spool, w->current->spool.max_size);   /* [limits] spool_max, reloaded */
	/* a kept connection was set up under the old settings (address, TLS,
	 * XCLIENT, HELO): none is reused after a reload */
	backend_pool_configure(&w->backend_pool, w->current);
	ratelimit_configure(w->ratelimit, w->current);     /* [limits] store, reloaded */
	if (w->tls)
		tls_server_unref(w->tls);
	w->tls = tls;
	backend_probe_start(w, false);
	log_info("reload: configuration %s loaded; new sessions use it", w->current->path);
}

static void on_sighup(uv_signal_t *h, int signum)
{
	char err[512];
	struct worker *w = h->data;

	(void)signum;
	/* first, and whatever the new file says: logrotate renamed the log
	 * file and sent SIGHUP for a new one */
	if (log_reopen(err, sizeof err) < 0)
		log_error("reload: %s; still writing to the old file", err);
	/* systemd waits for READY=1 again, whether the new file was taken or not */
	(void)sd_notify_reloading();
	server_reload(w);
	(void)sd_notify_state("READY=1");
}

int server_listen(struct worker *w, struct config *cfg)
{
	char err[512];
	uv_loop_t *loop = w->loop;

	w->current = cfg;
	spool_budget_set_limit(&w->spool, w->current->spool.max_size);
	w->bound = config_ref(cfg);
	backend_pool_configure(&w->backend_pool, cfg);
	/* signals before the first "listening on": a SIGTERM that follows it
	 * is a drain, never the default action (uv_loop_fork() carries the
	 * handlers over daemon()) */
	uv_signal_init(loop, &w->sig_term);
	uv_signal_init(loop, &w->sig_int);
	uv_signal_init(loop, &w->sig_hup);
	uv_timer_init(loop, &w->drain_timer);
	uv_timer_init(loop, &w->reprobe_timer);
	w->sig_term.data = w->sig_int.data = w->sig_hup.data = w;
	w->drain_timer.data = w->reprobe_timer.data = w;
	uv_signal_start(&w->sig_term, on_sigterm, SIGTERM);
	uv_signal_start(&w->sig_int, on_sigterm, SIGINT);
	uv_signal_start(&w->sig_hup, on_sighup, SIGHUP);
	w->ratelimit_table = ratelimit_table_new(cfg->limits.rate_table_size);
	if (w->ratelimit_table == NULL || (w->ratelimit = ratelimit_new(loop, w->ratelimit_table)) == NULL) {
		log_error("out of memory for [limits] rate_table_size = %lu entries", cfg->limits.rate_table_size);
		return -1;
	}
	w->tls = tls_server_new(cfg, err, sizeof err);
	if (w->tls == NULL && err[0]) {
		log_error("TLS: %s", err);
		return -1;
	}
	for (size_t i = 0; i < cfg->server.listen.n; i++)
		if (listen_one(w, cfg->server.listen.v[i], false) < 0)
			return -1;
	for (size_t i = 0; i < cfg->outbound.listen.n; i++)
		if (listen_one(w, cfg->outbound.listen.v[i], true) < 0)
			return -1;
	if (w->ctx != NULL) {
		/* worker 0 serves the sum; every worker publishes its gauges */
		uv_timer_init(loop, &w->gauges_timer);
		w->gauges_timer.data = w;
		uv_timer_start(&w->gauges_timer, on_gauges_timer, 0, WORKERS_GAUGES_MS);
	}
	if (cfg->metrics.listen.n > 0 && w->ctx != NULL && w->ctx->index == 0) {
		w->metrics_http = metrics_http_start(loop, &cfg->metrics.listen, &w->metrics_sum, worker_metrics_gauges,
		    w, err, sizeof err);
		if (w->metrics_http == NULL) {
			log_error("%s", err);
			return -1;
		}
	} else if (cfg->metrics.listen.n > 0 && w->ctx == NULL) {
		w->metrics_http = metrics_http_start(loop, &cfg->metrics.listen, w->metrics, metrics_gauges, w,
		    err, sizeof err);
		if (w->metrics_http == NULL) {
			log_error("%s", err);
			return -1;
		}
	}
	return 0;
}

void server_run(struct worker *w, bool daemon_mode)
{
	w->detached = daemon_mode;
	/* a worker restarted after a SIGHUP: the master holds the start-up
	 * file's configuration; the others run the reloaded one */
	if (w->ctx != NULL && w->ctx->restarted)
		server_reload(w);   /* probes the backend too */
	else
		backend_probe_start(w, false);
	/* after daemon(): the Redis connection is the running process's */
	ratelimit_configure(w->ratelimit, w->current);
	/* only /health needs to know without traffic */
	if (w->metrics_http != NULL)
		uv_timer_start(&w->reprobe_timer, on_reprobe_timer, BACKEND_REPROBE_MS, BACKEND_REPROBE_MS);
}

void server_release(struct worker *w)
{
	backend_pool_configure(&w->backend_pool, NULL);
	config_unref(w->bound);
	w->bound = NULL;
	config_unref(w->current);
	w->current = NULL;
	/* after the loop's last run: its handles are closed */
	ratelimit_free(w->ratelimit);
	w->ratelimit = NULL;
	ratelimit_table_free(w->ratelimit_table);
	w->ratelimit_table = NULL;
	backend_loop_release(&w->backend);
	/* after the loop's last run: their handles are closed */
	while (w->listeners_closed != NULL) {
		struct listener *l = w->listeners_closed;
		w->listeners_closed = l->next;
		free(l);
	}
	/* the sessions' references are gone with them */
	if (w->tls != NULL)
		tls_server_unref(w->tls);
	w->tls = NULL;
}

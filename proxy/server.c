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
#include "proxy/workers.h"

#define IPCOUNT_BUCKETS 4096

struct ipcount {
	char key[20];
	unsigned n;
	struct ipcount *next;
};

static struct config *current;
static struct config *bound;     /* the config the listeners, resolver and user come from */
static bool detached;            /* daemon mode: the log stays on syslog */
static struct tls_server *current_tls;
static struct listener *listeners;
static uv_signal_t sig_term, sig_int, sig_hup;
static uv_timer_t drain_timer;
static bool draining, stopped;
static struct ipcount *ipcounts[IPCOUNT_BUCKETS];
/* the loop's counters (sessions reach them as s->metrics) and their
 * HTTP endpoint ([metrics] listen) */
static struct metrics own_metrics;
static struct metrics *metrics = &own_metrics;   /* a worker's: its shared slot */
static struct metrics_http *metrics_http;
/* [server] workers > 1: this process is worker ctx->index (proxy/workers.h);
 * NULL in a single process */
static const struct worker_context *worker;
/* worker 0's scrape: every worker's counters added up */
static struct metrics metrics_sum;
static uv_timer_t gauges_timer;
/* what the backend and the outbound relay offered at their latest EHLO:
 * the loop's, like the counters (sessions reach it as s->backend_known,
 * each backend connection and probe gets it passed) */
static struct backend_known backend_known;
/* the loop's idle backend connections, kept for the next client
 * (sessions reach it as s->backend_pool) */
static struct backend_pool backend_pool;
/* /health's re-probe: while the backend is unhealthy and no client brings
 * traffic that would tell, one probe every BACKEND_REPROBE_MS (each one
 * bounded by [backend] connect_timeout, never two at once) */
#define BACKEND_REPROBE_MS 10000
static uv_timer_t reprobe_timer;
static unsigned probes_inflight;
/* the rate limits' counters ([limits] *_rate_*): the table is the
 * process's (shared by loops, locked), the state with the Redis
 * connection is the loop's; sessions' checks reach it through the filter
 * environment (server_ratelimit) */
static struct ratelimit_table *ratelimit_table;
static struct ratelimit *ratelimit;

struct config *server_config(void)
{
	return current;
}

struct tls_server *server_tls(void)
{
	return current_tls;
}

bool server_draining(void)
{
	return draining;
}

struct metrics *server_metrics(void)
{
	return metrics;
}

struct backend_known *server_backend_known(void)
{
	return &backend_known;
}

struct backend_pool *server_backend_pool(void)
{
	return &backend_pool;
}

struct ratelimit *server_ratelimit(void)
{
	return ratelimit;
}

/* metrics_gauges - what a scrape reads besides the counters; /health is
 * 200 while listening, not draining, and the backend can take mail (the
 * latest probe did not fail, and its last [metrics] backend_failures
 * connections did not all fail before ready: metrics_backend_healthy). */
static void metrics_gauges(void *arg, struct metrics_gauges *g)
{
	(void)arg;

	g->connections = sessions_count();
	g->backend_connections = backend_connections();
	g->backend_pool_idle = backend_pool.n;
	g->spool_bytes = spool_bytes_in_use();
	g->draining = draining;
	g->dns = dns_counts(g->dns_answers, &g->dns_inflight);
	g->dns_cache = dns_cache_counts(&g->dns_cache_hits, &g->dns_cache_misses);
	if (draining) {
		g->healthy = false;
		snprintf(g->unhealthy, sizeof g->unhealthy, "draining: shutting down");
	} else {
		g->healthy = metrics_backend_healthy(metrics, current->metrics.backend_failures,
		    g->unhealthy, sizeof g->unhealthy);
	}
}

/* worker_metrics_gauges - worker 0's scrape: its own gauges now, the
 * others' as they published them (at most WORKERS_GAUGES_MS old), and
 * everyone's counters; /health's backend view is worker 0's */
static void worker_metrics_gauges(void *arg, struct metrics_gauges *g)
{
	metrics_gauges(arg, g);
	metrics_sum = *metrics;
	for (unsigned i = 0; i < worker->count; i++) {
		if (i == worker->index)
			continue;
		metrics_add(&metrics_sum, &worker->slots[i].metrics);
		metrics_gauges_add(g, &worker->slots[i].gauges);
	}
}

static void on_gauges_timer(uv_timer_t *t)
{
	(void)t;
	metrics_gauges(NULL, &worker->slots[worker->index].gauges);
}

void server_set_worker(const struct worker_context *ctx)
{
	worker = ctx;
	metrics = &ctx->slots[ctx->index].metrics;
}

static void on_probed(void *arg, bool ok, const char *stage, const char *why)
{
	char was[8];
	bool was_healthy = metrics_backend_healthy(metrics, current->metrics.backend_failures, was, sizeof was);

	(void)arg;
	probes_inflight--;
	metrics_backend_probed(metrics, ok, stage, why);
	if (!was_healthy && metrics_backend_healthy(metrics, current->metrics.backend_failures, was, sizeof was))
		log_info("backend probe: the backend answers again; /health is 200");
}

/* backend_probe_start - the probe at start-up and reload (quiet: false),
 * or a re-probe of an unhealthy backend */
static void backend_probe_start(bool quiet)
{
	/* counted first: a probe that fails at once reports before it returns */
	probes_inflight++;
	if (!backend_probe(current, &backend_known, quiet, on_probed, NULL))
		probes_inflight--;   /* no probe (a host name): no report either */
}

static void on_reprobe_timer(uv_timer_t *t)
{
	(void)t;
	/* with backend connections open, their outcome will tell */
	if (draining || probes_inflight > 0 || backend_connections() > 0 ||
	    !metrics_backend_probe_useful(metrics, current->metrics.backend_failures))
		return;
	log_debug("backend probe: the backend was unhealthy and has had no traffic; probing it again");
	backend_probe_start(true);
}

static size_t ipkey_hash(const char *key)
{
	size_t h = 5381;
	for (int i = 0; i < 20; i++)
		h = h * 33 + (unsigned char)key[i];
	return h % IPCOUNT_BUCKETS;
}

unsigned ipcount_add(const char *key, int delta)
{
	if (worker != NULL) {
		/* once a minute at most: a full table is full for every new address */
		static uint64_t full_warned_ms;
		uint64_t now = uv_now(uv_default_loop());
		int full;
		unsigned n = ipcount_shared_add(worker->ipcounts, worker->index, key, delta, &full);
		if (full && (full_warned_ms == 0 || now - full_warned_ms >= 60000)) {
			full_warned_ms = now;
			log_warn("the workers' shared per-IP connection table is full: new addresses are not"
			    " counted for [limits] max_connections_per_ip / _per_net until some leave");
		}
		return n;
	}
	struct ipcount **pp = &ipcounts[ipkey_hash(key)], *e;
	for (; (e = *pp) != NULL; pp = &e->next)
		if (memcmp(e->key, key, 20) == 0)
			break;
	if (e == NULL) {
		if (delta <= 0)
			return 0;
		if ((e = calloc(1, sizeof *e)) == NULL)
			return 0;
		memcpy(e->key, key, 20);
		e->next = ipcounts[ipkey_hash(key)];
		ipcounts[ipkey_hash(key)] = e;
		pp = &ipcounts[ipkey_hash(key)];
	}
	if (delta < 0 && e->n < (unsigned)-delta)
		e->n = 0;
	else
		e->n = (unsigned)((int)e->n + delta);
	if (e->n == 0) {
		/* forget addresses that have no connection left */
		for (pp = &ipcounts[ipkey_hash(key)]; *pp != e; pp = &(*pp)->next)
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
	if (draining)
		return;
	session_accept(l, server);
}

/* listen_prebound - a worker's socket for addr, bound with SO_REUSEPORT
 * by the master (proxy/workers.c) */
static int listen_prebound(uv_tcp_t *tcp, const char *addr)
{
	for (size_t i = 0; i < worker->nfds; i++)
		if (strcmp(worker->addrs[i], addr) == 0 && worker->fds[i] >= 0)
			return uv_tcp_open(tcp, worker->fds[i]);
	return UV_EADDRNOTAVAIL;   /* not bound at start-up: a restart binds it */
}

static int listen_one(const char *addr, bool outbound)
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
	uv_tcp_init(uv_default_loop(), &l->tcp);
	l->tcp.data = l;
	if (worker != NULL)
		rc = listen_prebound(&l->tcp, addr);
	else
		rc = uv_tcp_bind(&l->tcp, &sa.sa, sa.sa.sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
	if (rc != 0) {
		log_error("cannot listen on %s: %s", addr, uv_strerror(rc));
		uv_close((uv_handle_t *)&l->tcp, (uv_close_cb)free);
		return -1;
	}
	l->next = listeners;
	listeners = l;
	log_info("listening on %s%s", addr, outbound ? " (outbound: signing, relay to next hop)" : "");
	return 0;
}

static void listeners_close(void)
{
	struct listener *l = listeners, *next;
	for (; l; l = next) {
		next = l->next;
		uv_close((uv_handle_t *)&l->tcp, (uv_close_cb)free);
	}
	listeners = NULL;
}

static void on_drain_timer(uv_timer_t *t)
{
	(void)t;
	log_info("drain time over: closing %u remaining session(s)", sessions_count());
	sessions_close_all("shutdown");
	server_stop();
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* server_stop - last step of a shutdown: close what is left so uv_run ends. */
void server_stop(void)
{
	if (stopped)
		return;
	if (sessions_count() > 0)
		return;
	stopped = true;
	backend_pool_configure(&backend_pool, NULL);   /* QUIT the idle ones; no more */
	uv_signal_stop(&sig_term);
	uv_signal_stop(&sig_int);
	uv_signal_stop(&sig_hup);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
	uv_close((uv_handle_t *)&sig_hup, NULL);
	if (!uv_is_closing((uv_handle_t *)&drain_timer))
		uv_close((uv_handle_t *)&drain_timer, NULL);
	if (!uv_is_closing((uv_handle_t *)&reprobe_timer))
		uv_close((uv_handle_t *)&reprobe_timer, NULL);
	if (worker != NULL && !uv_is_closing((uv_handle_t *)&gauges_timer))
		uv_close((uv_handle_t *)&gauges_timer, NULL);
	/* open until here: /health says 503 while the sessions drain */
	metrics_http_stop(metrics_http);
	metrics_http = NULL;
	ratelimit_stop(ratelimit);
	(void)close_walk;
}

static void on_sigterm(uv_signal_t *h, int signum)
{
	(void)h;
	if (draining) {
		log_info("second signal %d: closing all sessions now", signum);
		sessions_close_all("shutdown");
		server_stop();
		return;
	}
	draining = true;
	(void)sd_notify_state("STOPPING=1");
	log_info("signal %d: stopping; %u session(s) get up to %llums to finish", signum, sessions_count(),
	    (unsigned long long)current->server.drain_time);
	listeners_close();
	/* idle backend connections hold the backend's processes for nothing now */
	backend_pool_configure(&backend_pool, NULL);
	sessions_drain();
	if (sessions_count() == 0) {
		server_stop();
		return;
	}
	uv_timer_start(&drain_timer, on_drain_timer, current->server.drain_time, 0);
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
static void restart_needed(const struct config *next)
{
	if (!words_equal(&next->server.listen, &bound->server.listen) ||
	    !words_equal(&next->outbound.listen, &bound->outbound.listen))
		log_warn("reload: listen addresses changed; they take effect at the next restart");
	if (!words_equal(&next->metrics.listen, &bound->metrics.listen))
		log_warn("reload: [metrics] listen changed; it takes effect at the next restart");
	if (!words_equal(&next->dns.servers, &bound->dns.servers) ||
	    next->dns.timeout != bound->dns.timeout ||
	    next->dns.max_queries != bound->dns.max_queries ||
	    next->dns.cache_size != bound->dns.cache_size ||
	    next->dns.cache_max_ttl != bound->dns.cache_max_ttl)
		log_warn("reload: [dns] servers, timeout, max_queries or cache_* changed; they take effect at"
		    " the next restart (the resolver keeps its start-up settings)");
	if (!str_list_equal(next->server.user, bound->server.user) ||
	    !str_list_equal(next->server.group, bound->server.group))
		log_warn("reload: [server] user or group changed; it takes effect at the next restart");
	if (next->server.workers != bound->server.workers)
		log_warn("reload: [server] workers changed; it takes effect at the next restart");
	if (next->limits.rate_table_size != bound->limits.rate_table_size)
		log_warn("reload: [limits] rate_table_size changed; it takes effect at the next restart");
}

void server_reload(void)
{
	char err[4096], ferr[512];
	struct config *next = config_load(current->path, err, sizeof err);
	struct tls_server *tls = NULL;

	if (next == NULL) {
		log_error("reload: %s has errors, keeping the running configuration:\n%s", current->path, err);
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
	if (filters_init(next, ferr, sizeof ferr) < 0) {
		log_error("reload: %s; keeping the running configuration", ferr);
		filters_init(current, ferr, sizeof ferr);
		if (tls)
			tls_server_unref(tls);
		config_unref(next);
		return;
	}
	restart_needed(next);
	if (log_configure(next, detached, ferr, sizeof ferr) < 0)
		log_error("reload: %s; the log stays where it was", ferr);
	config_unref(current);
	current = next;
	spool_set_limit(current->spool.max_size);   /* [limits] spool_max, reloaded */
	/* a kept connection was set up under the old settings (address, TLS,
	 * XCLIENT, HELO): none is reused after a reload */
	backend_pool_configure(&backend_pool, current);
	ratelimit_configure(ratelimit, current);     /* [limits] store, reloaded */
	if (current_tls)
		tls_server_unref(current_tls);
	current_tls = tls;
	backend_probe_start(false);
	log_info("reload: configuration %s loaded; new sessions use it", current->path);
}

static void on_sighup(uv_signal_t *h, int signum)
{
	char err[512];

	(void)h;
	(void)signum;
	/* first, and whatever the new file says: logrotate renamed the log
	 * file and sent SIGHUP for a new one */
	if (log_reopen(err, sizeof err) < 0)
		log_error("reload: %s; still writing to the old file", err);
	/* systemd waits for READY=1 again, whether the new file was taken or not */
	(void)sd_notify_reloading();
	server_reload();
	(void)sd_notify_state("READY=1");
}

int server_listen(struct config *cfg)
{
	char err[512];
	uv_loop_t *loop = uv_default_loop();

	current = cfg;
	spool_set_limit(current->spool.max_size);
	bound = config_ref(cfg);
	backend_pool_configure(&backend_pool, cfg);
	/* signals before the first "listening on": a SIGTERM that follows it
	 * is a drain, never the default action (uv_loop_fork() carries the
	 * handlers over daemon()) */
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_init(loop, &sig_hup);
	uv_timer_init(loop, &drain_timer);
	uv_timer_init(loop, &reprobe_timer);
	uv_signal_start(&sig_term, on_sigterm, SIGTERM);
	uv_signal_start(&sig_int, on_sigterm, SIGINT);
	uv_signal_start(&sig_hup, on_sighup, SIGHUP);
	ratelimit_table = ratelimit_table_new(cfg->limits.rate_table_size);
	if (ratelimit_table == NULL || (ratelimit = ratelimit_new(loop, ratelimit_table)) == NULL) {
		log_error("out of memory for [limits] rate_table_size = %lu entries", cfg->limits.rate_table_size);
		return -1;
	}
	current_tls = tls_server_new(cfg, err, sizeof err);
	if (current_tls == NULL && err[0]) {
		log_error("TLS: %s", err);
		return -1;
	}
	for (size_t i = 0; i < cfg->server.listen.n; i++)
		if (listen_one(cfg->server.listen.v[i], false) < 0)
			return -1;
	for (size_t i = 0; i < cfg->outbound.listen.n; i++)
		if (listen_one(cfg->outbound.listen.v[i], true) < 0)
			return -1;
	if (worker != NULL) {
		/* worker 0 serves the sum; every worker publishes its gauges */
		uv_timer_init(loop, &gauges_timer);
		uv_timer_start(&gauges_timer, on_gauges_timer, 0, WORKERS_GAUGES_MS);
	}
	if (cfg->metrics.listen.n > 0 && worker != NULL && worker->index == 0) {
		metrics_http = metrics_http_start(&cfg->metrics.listen, &metrics_sum, worker_metrics_gauges,
		    NULL, err, sizeof err);
		if (metrics_http == NULL) {
			log_error("%s", err);
			return -1;
		}
	} else if (cfg->metrics.listen.n > 0 && worker == NULL) {
		metrics_http = metrics_http_start(&cfg->metrics.listen, metrics, metrics_gauges, NULL,
		    err, sizeof err);
		if (metrics_http == NULL) {
			log_error("%s", err);
			return -1;
		}
	}
	return 0;
}

void server_run(bool daemon_mode)
{
	detached = daemon_mode;
	/* a worker restarted after a SIGHUP: the master holds the start-up
	 * file's configuration; the others run the reloaded one */
	if (worker != NULL && worker->restarted)
		server_reload();   /* probes the backend too */
	else
		backend_probe_start(false);
	/* after daemon(): the Redis connection is the running process's */
	ratelimit_configure(ratelimit, current);
	/* only /health needs to know without traffic */
	if (metrics_http != NULL)
		uv_timer_start(&reprobe_timer, on_reprobe_timer, BACKEND_REPROBE_MS, BACKEND_REPROBE_MS);
}

void server_release(void)
{
	backend_pool_configure(&backend_pool, NULL);
	config_unref(bound);
	bound = NULL;
	config_unref(current);
	current = NULL;
	/* after the loop's last run: its handles are closed */
	ratelimit_free(ratelimit);
	ratelimit = NULL;
	ratelimit_table_free(ratelimit_table);
	ratelimit_table = NULL;
}

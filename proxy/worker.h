/*
 * worker - everything one event loop owns (issue 14: "one owner for a
 * loop's state"). One per process today: a single process has one, and
 * with [server] workers = N every worker process has its own (forked after
 * bind, proxy/workers.c). main() creates the loop (uv_default_loop(), there
 * and only there) and the struct, and everything below it is handed the
 * struct, or the loop, explicitly: sessions keep it as s->worker, backend
 * connections get the loop in struct backend_params, filters get it (and
 * their own per-loop state) through struct filter_env.
 *
 * What stays at file scope outside it is process-wide and says why at its
 * definition; tests/integration/no_loop_globals.sh fails on any other
 * writable data symbol in libproxy.a and libfilters.a
 * (tests/integration/loop_globals.allow names each allowed one and why).
 */
#ifndef WORKER_H
#define WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "filters/filter.h"
#include "proxy/backend.h"
#include "proxy/backend_pool.h"
#include "proxy/metrics.h"
#include "proxy/spool.h"

struct config;
struct dns;
struct ipcount;
struct listener;
struct metrics_http;
struct ratelimit;
struct ratelimit_table;
struct session;
struct tls_server;
struct worker_context;

#define WORKER_IPCOUNT_BUCKETS 4096
#define WORKER_SESSION_BUCKETS 4096
#define WORKER_TLS_SCRATCH 16384

struct worker {
	uv_loop_t *loop;
	/* [server] workers > 1: this process is worker ctx->index
	 * (proxy/workers.h); NULL in a single process */
	const struct worker_context *ctx;

	/* configuration and TLS context in use (server.c) */
	struct config *current;
	struct config *bound;       /* the config the listeners, resolver and user come from */
	bool detached;              /* daemon mode: the log stays on syslog */
	struct tls_server *tls;

	/* listeners, signals, shutdown (server.c) */
	struct listener *listeners;
	/* closed at SIGTERM but kept until exit: a draining session still
	 * names its listener (s->listener->addr in log lines, pool keys) */
	struct listener *listeners_closed;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t drain_timer;
	bool draining, stopped;
	bool drain_eod_grace;       /* drain_time is over; only sessions whose
	                               final dot is at the backend are left */

	/* per-IP connection counts of a single process (server.c; workers
	 * share theirs: ctx->ipcounts) */
	struct ipcount *ipcounts[WORKER_IPCOUNT_BUCKETS];
	uint64_t ipcount_full_warned_ms;

	/* the loop's counters (sessions reach them as s->metrics) and their
	 * HTTP endpoint ([metrics] listen); with workers, metrics points to
	 * this worker's shared slot and worker 0 serves metrics_sum */
	struct metrics own_metrics;
	struct metrics *metrics;
	struct metrics_http *metrics_http;
	struct metrics metrics_sum;
	uv_timer_t gauges_timer;

	/* what the backend and the outbound relay offered at their latest
	 * EHLO (sessions reach it as s->backend_known) and the idle backend
	 * connections kept for the next client (s->backend_pool) */
	struct backend_known backend_known;
	struct backend_pool backend_pool;
	/* what the backend connections share: the loop, their count, the
	 * client TLS context, the read buffer (proxy/backend.h) */
	struct backend_loop backend;
	/* /health's re-probe of an unhealthy backend (server.c) */
	uv_timer_t reprobe_timer;
	unsigned probes_inflight;

	/* the rate limits' counters ([limits] *_rate_*): the table (locked)
	 * and the state with the Redis connection; filters reach it through
	 * their environment */
	struct ratelimit_table *ratelimit_table;
	struct ratelimit *ratelimit;

	/* the resolver (proxy/dns.h): created in run_loop after daemon() */
	struct dns *dns;
	/* the filters' own per-loop state (filters/filter.h): made at
	 * start-up, updated at reloads, freed at exit */
	struct filter_loop filters;
	/* the bytes this loop's held messages have on disk, against [limits]
	 * spool_max (proxy/spool.h): per worker process, so with [server]
	 * workers = N the disk bound is N x spool_max */
	struct spool_budget spool;

	/* the session registry (session.c): by id, and all of them */
	struct session *sessions_by_id[WORKER_SESSION_BUCKETS];
	struct session *sessions;
	unsigned nsessions;
	uint64_t next_session_id;
	uint64_t session_id_base;
	/* ciphertext read buffer of the loop's TLS sessions: filled and
	 * drained within one read callback */
	char session_tls_scratch[WORKER_TLS_SCRATCH];

	/* the filters' run queue (session_filter.c): sessions whose async
	 * verdict arrived, resumed from a zero timer */
	struct {
		uv_timer_t timer;
		bool init;
		uint64_t *ids;
		size_t n, cap;
	} runq;
};

/* worker_init - w for loop; the counters are its own until
 * server_set_worker() points them to a worker's shared slot. */
void worker_init(struct worker *w, uv_loop_t *loop);

#endif

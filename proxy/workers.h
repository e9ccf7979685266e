/*
 * workers - [server] workers = N > 1: a master process and N worker
 * processes, each worker running today's single-process event loop on
 * listening sockets of its own (SO_REUSEPORT: the kernel spreads the
 * connections over them).
 *
 * Processes rather than threads: the proxy keeps its loop state in
 * file-scope statics (server.c, session.c, dns.c, rdns.c, the SPF
 * queue) and libunbound, libspf2 and OpenSSL keep state per process; a
 * fork per worker isolates all of it without a refactor, and a crash kills
 * one worker, which the master restarts. What the workers must share lives
 * in anonymous MAP_SHARED memory made before the fork: the per-IP and
 * per-network connection counts (proxy/ipcount_shared.h: the limits stay
 * exact) and each worker's counters and gauges (worker 0 serves [metrics]
 * listen with their sum). The rate limits' memory table stays per worker:
 * a client can reach N times a limit ([limits] store = redis is exact).
 *
 * The master binds every worker's sockets (as root), drops privileges
 * like a single process, forks the workers and then only handles signals:
 * SIGCHLD (log, take the dead worker's connection counts out, restart it:
 * at most one start per second per worker, and not after
 * WORKERS_RESTARTS_MAX restarts within a minute), SIGHUP and SIGTERM /
 * SIGINT (forwarded to every worker: each reloads or drains as a single
 * process does; the master exits 0 once they all have). It tells systemd
 * READY=1 when every worker listens.
 */
#ifndef WORKERS_H
#define WORKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/config.h"
#include "proxy/metrics.h"

struct ipcount_shared;

/* a worker's part of the shared memory */
struct worker_slot {
	struct metrics metrics;          /* the worker's counters (server.c uses them in place) */
	struct metrics_gauges gauges;    /* published by the worker every WORKERS_GAUGES_MS */
	uint32_t pid;
	bool ready;                      /* its listeners accept */
};

#define WORKERS_GAUGES_MS 500

/* what a worker process knows of the others (server.c) */
struct worker_context {
	unsigned index;                 /* 0 .. count-1; worker 0 serves [metrics] listen */
	unsigned count;
	const char *const *addrs;       /* this worker's pre-bound listeners, by address */
	const int *fds;
	size_t nfds;
	struct ipcount_shared *ipcounts;
	struct worker_slot *slots;      /* [count] */
	bool restarted;                 /* a restart after a SIGHUP: load the file again */
};

struct workers;

/* workers_resolve - [server] workers as a number (auto: online CPUs). */
unsigned workers_resolve(const struct config *cfg);

/* workers_bind - as root: the shared memory and, per worker, a socket
 * for every [server] and [outbound] listen address (SO_REUSEPORT, bound,
 * not yet listening). NULL with a reason in err. */
struct workers *workers_bind(const struct config *cfg, unsigned count, char *err, size_t errlen);

/* workers_run - the master, after the privilege drop and daemon(): fork
 * the workers, each of which calls hooks->listen(cfg, ctx, arg) (its
 * loop, signal handlers and listeners; with the signals still blocked;
 * non-zero: it exits 1), then hooks->run(cfg, ctx, arg) and exits with
 * its result; handle signals until they have all ended. The master's exit
 * status. */
typedef int (*worker_run_fn)(struct config *cfg, const struct worker_context *ctx, void *arg);
struct worker_hooks {
	worker_run_fn listen;
	worker_run_fn run;
	void *arg;
};
int workers_run(struct workers *w, struct config *cfg, const struct worker_hooks *hooks);

/* workers_free - the master at its end (closes the sockets, frees the
 * shared memory), or a worker at its end (master: false; unmaps only). */
void workers_free(struct workers *w, bool master);

/* workers_worker_ready - a worker's listeners accept: tell the master */
void workers_worker_ready(const struct worker_context *ctx);

#endif

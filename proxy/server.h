/*
 * server - listeners, the current configuration, per-IP connection counts,
 * signals (SIGTERM drain, SIGHUP reload), for one loop: struct worker
 * (proxy/worker.h).
 */
#ifndef SERVER_H
#define SERVER_H

#include <stdbool.h>
#include <uv.h>

#include "proxy/config.h"

struct tls_server;
struct worker;

struct listener {
	uv_tcp_t tcp;
	char addr[80];      /* as configured */
	bool outbound;      /* [outbound] listen: signs, relays to [outbound] relay */
	struct worker *worker;   /* the loop's owner; sessions accepted here are its */
	struct listener *next;
};

/* Every function below works on one loop's state: w (proxy/worker.h). */

/* server_listen - install the signal handlers, load cfg's TLS context and
 * bind every listener (as root, before the privilege drop); takes over the
 * reference to cfg. */
int server_listen(struct worker *w, struct config *cfg);
/* server_run - after the drop and daemon(): the backend probe (on the
 * thread pool, which a fork would lose). daemon_mode keeps the log on
 * syslog across reloads. */
void server_run(struct worker *w, bool daemon_mode);
/* server_release - at exit: drop the configurations still held. */
void server_release(struct worker *w);
/* server_set_worker - before server_listen, in a worker process of
 * [server] workers > 1 (proxy/workers.h): listen on the master's sockets,
 * count connections per IP in the shared table, keep the counters in the
 * shared slot; worker 0 serves [metrics] listen with everyone's sum. */
struct worker_context;
void server_set_worker(struct worker *w, const struct worker_context *ctx);
/* server_config - the configuration new sessions get. */
struct config *server_config(struct worker *w);
struct tls_server *server_tls(struct worker *w);
bool server_draining(struct worker *w);
/* server_reload - SIGHUP: load, validate, swap; keep the old one on error. */
void server_reload(struct worker *w);
void server_stop(struct worker *w);

/* Per-IP connection counting (key: family, address masked to [limits]
 * ipv4_prefix / ipv6_prefix, prefix length; see session.c). */
unsigned ipcount_add(struct worker *w, const char *key, int delta);

/* The loop's counters (w->metrics), record of the backend's capabilities
 * (w->backend_known), idle backend connections (w->backend_pool) and
 * rate-limit state (w->ratelimit) are reached through struct worker;
 * sessions keep the pointers they need. */

#endif

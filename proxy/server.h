/*
 * server - listeners, the current configuration, per-IP connection counts,
 * signals (SIGTERM drain, SIGHUP reload). One libuv loop: uv_default_loop().
 */
#ifndef SERVER_H
#define SERVER_H

#include <stdbool.h>
#include <uv.h>

#include "proxy/config.h"

struct tls_server;
struct backend_known;

struct listener {
	uv_tcp_t tcp;
	char addr[80];      /* as configured */
	bool outbound;      /* [outbound] listen: signs, relays to [outbound] relay */
	struct listener *next;
};

/* server_listen - install the signal handlers, load cfg's TLS context and
 * bind every listener (as root, before the privilege drop); takes over the
 * reference to cfg. */
int server_listen(struct config *cfg);
/* server_run - after the drop and daemon(): the backend probe (on the
 * thread pool, which a fork would lose). daemon_mode keeps the log on
 * syslog across reloads. */
void server_run(bool daemon_mode);
/* server_release - at exit: drop the configurations still held. */
void server_release(void);
/* server_set_worker - before server_listen, in a worker process of
 * [server] workers > 1 (proxy/workers.h): listen on the master's sockets,
 * count connections per IP in the shared table, keep the counters in the
 * shared slot; worker 0 serves [metrics] listen with everyone's sum. */
struct worker_context;
void server_set_worker(const struct worker_context *ctx);
/* server_config - the configuration new sessions get. */
struct config *server_config(void);
struct tls_server *server_tls(void);
bool server_draining(void);
/* server_reload - SIGHUP: load, validate, swap; keep the old one on error. */
void server_reload(void);
void server_stop(void);

/* Per-IP connection counting (key: family, address masked to [limits]
 * ipv4_prefix / ipv6_prefix, prefix length; see session.c). */
unsigned ipcount_add(const char *key, int delta);

/* server_metrics - the loop's counters (proxy/metrics.h); sessions keep
 * the pointer (session->metrics). */
struct metrics *server_metrics(void);
/* server_backend_known - the loop's record of what the backend and the
 * outbound relay offer (proxy/backend.h); sessions keep the pointer
 * (session->backend_known) and hand it to their backend connections. */
struct backend_known *server_backend_known(void);
/* server_backend_pool - the loop's idle backend connections
 * (proxy/backend_pool.h); sessions keep the pointer (session->backend_pool) */
struct backend_pool;
struct backend_pool *server_backend_pool(void);
/* server_ratelimit - the loop's rate-limit state (filters/ratelimit.h);
 * the filter environment carries it to the limits check */
struct ratelimit *server_ratelimit(void);


#endif

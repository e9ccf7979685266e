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

struct listener {
	uv_tcp_t tcp;
	char addr[80];      /* as configured */
	bool outbound;      /* [outbound] listen: signs, relays to [outbound] relay */
	struct listener *next;
};

/* server_start - bind every listener of cfg, install signals. */
int server_start(struct config *cfg);
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

/* Counters for the benchmark's and operators' eyes (logged on exit). */
extern unsigned long long stat_backend_connects;


#endif

/*
 * session_backend - the session as the owner of its backend connection.
 *
 * backend.c knows nothing of struct session: it is told what it needs at
 * backend_open (struct backend_params, copied from the session) and
 * reports through session_backend_ops. The session keeps the continuation
 * of its one request in flight (s->be_then); the backend answers it
 * through ops->reply.
 *
 * Lifetime: the connection counts as one of the session's handles from
 * backend_open until ops->released, so the session outlives every
 * callback of its connection, even after closed() made it forget s->be.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "proxy/backend.h"
#include "proxy/backend_pool.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/worker.h"

static void on_backend_reply(void *owner, const struct smtp_reply *r, int err)
{
	struct session *s = owner;
	session_backend_then then = s->be_then;

	/* cleared first: the continuation may make the next request */
	s->be_then = NULL;
	if (s->be_pooled) {
		s->be_pooled = false;
		if (err != 0 && !s->closing) {
			int rc;
			s->metrics->backend_pool_reuse_failures++;
			/* the pooled connection's failure (closed by the backend
			 * meanwhile, RSET or XCLIENT refused) is not the client's
			 * concern: a fresh connection is what it would have got */
			log_info("%s: pooled backend connection failed (%s); connecting afresh", s->sid,
			    backend_err_text(err));
			if ((rc = session_backend_open(s, then)) != 0 && then != NULL)
				then(s, NULL, rc);
			return;
		}
	}
	if (then != NULL)
		then(s, r, err);
}

static void on_backend_writable(void *owner)
{
	struct session *s = owner;

	/* content waits for the backend to take more (or to be found gone:
	 * the next send fails, 451 at the end of data) */
	if (s->wait == WAIT_DRAIN)
		session_resume(s);
}

static void on_backend_closed(void *owner)
{
	struct session *s = owner;

	s->be = NULL;
}

static void on_backend_idle(void *owner)
{
	struct session *s = owner;

	/* a transaction the backend has not heard of yet (outbound: MAIL is
	 * answered here, and relayed with the first recipient) needs it */
	if (s->txn.active)
		return;
	log_info("%s: backend connection idle for %llums outside a transaction; closing it",
	    s->sid, (unsigned long long)s->cfg->backend.idle_timeout);
	backend_quit(s->be);
}

static void on_backend_released(void *owner)
{
	session_release(owner);
}

static const struct backend_owner_ops session_backend_ops = {
	.reply = on_backend_reply,
	.writable = on_backend_writable,
	.closed = on_backend_closed,
	.idle = on_backend_idle,
	.released = on_backend_released,
};

/* backend_params_of - what the connection is told of s: its log id, the
 * session's config (referenced for the session's life, which outlasts the
 * connection) and counters, and the client as XCLIENT gives it. The
 * session waits while its connection opens (and for its client's name
 * before that), so these are the values XCLIENT would have read. */
static void backend_params_of(const struct session *s, struct backend_params *p)
{
	memset(p, 0, sizeof *p);
	snprintf(p->log_id, sizeof p->log_id, "%s", s->sid);
	p->bl = &s->worker->backend;
	p->cfg = s->cfg;
	p->metrics = s->metrics;
	p->known = s->backend_known;
	p->outbound = s->outbound;
	snprintf(p->client_ip, sizeof p->client_ip, "%s", s->ip);
	p->client_port = s->port;
	snprintf(p->client_helo, sizeof p->client_helo, "%s", s->helo);
	p->client_esmtp = s->esmtp;
	snprintf(p->client_name, sizeof p->client_name, "%s", s->client_name);
	p->client_name_tempfail = s->rdns_temporary;
	memcpy(&p->client_addr, &s->peer, sizeof p->client_addr);
	int namelen = sizeof p->local_addr;
	if (uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&p->local_addr, &namelen) != 0)
		p->local_addr.ss_family = AF_UNSPEC;   /* [backend] identity = proxy refuses it */
	if (s->proxied)   /* behind a balancer: what the client connected to */
		memcpy(&p->local_addr, &s->proxy_dst, sizeof p->local_addr);
}

/* pool_identity - what a connection without XCLIENT carries of its client,
 * so who may reuse it: the client's address, and the listener it came to
 * (a PROXY header names it too) */
static const char *pool_identity(const struct session *s, char *key, size_t cap)
{
	char dst[INET6_ADDRSTRLEN] = "";
	unsigned dport = 0;

	/* behind a balancer, identity = proxy passes the header's destination
	 * on (backend_params_of): a connection whose header names one
	 * front-end must not serve a client that came in through another */
	if (s->proxied && s->proxy_dst.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&s->proxy_dst;
		inet_ntop(AF_INET, &a->sin_addr, dst, sizeof dst);
		dport = ntohs(a->sin_port);
	} else if (s->proxied && s->proxy_dst.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&s->proxy_dst;
		inet_ntop(AF_INET6, &a->sin6_addr, dst, sizeof dst);
		dport = ntohs(a->sin6_port);
	}
	snprintf(key, cap, "%s %s %s:%u", s->ip, s->listener != NULL ? s->listener->addr : "", dst, dport);
	return key;
}

/* pool_identity_fixed - does the connection itself carry its client's
 * identity, which no command can change? [backend] identity = proxy (the
 * PROXY header went first) and transparent (the client's own source
 * address): then only a client of the same pool_identity may reuse it. */
static bool pool_identity_fixed(const struct session *s)
{
	return !s->outbound && (s->cfg->backend.identity == IDENTITY_PROXY ||
	    s->cfg->backend.identity == IDENTITY_TRANSPARENT);
}

bool session_backend_pool_put(struct session *s)
{
	char key[BACKEND_POOL_KEY_MAX];

	if (s->be == NULL || s->be_pooled || s->be_then != NULL || server_draining(s->worker))
		return false;
	if (!backend_pool_put(s->backend_pool, s->be, s->cfg, s->outbound, pool_identity(s, key, sizeof key),
	    pool_identity_fixed(s), s->be_rset_pending))
		return false;
	log_debug("%s: backend connection kept for the next client", s->sid);
	return true;
}

int session_backend_open(struct session *s, session_backend_then then)
{
	struct backend_params p;
	struct backend *pooled;
	char key[BACKEND_POOL_KEY_MAX];
	bool txn_left = false;
	int rc;

	if (s->be != NULL)
		return 0;
	backend_params_of(s, &p);
	s->be_then = then;
	s->be_rset_pending = false;   /* a new connection holds no transaction */
	s->open_handles++;            /* until on_backend_released */
	pooled = backend_pool_take(s->backend_pool, s->cfg, s->outbound, pool_identity(s, key, sizeof key), &txn_left);
	if (pooled != NULL) {
		log_debug("%s: reusing a kept backend connection", s->sid);
		s->metrics->backend_pool_reuses++;
		s->be = pooled;
		s->be_pooled = true;
		backend_reuse(pooled, &p, &session_backend_ops, s, txn_left);
		return 0;
	}
	/* kept connections count towards [backend] max_connections: a client
	 * that needs one more takes the place of the oldest kept one */
	while ((rc = backend_open(&s->be, &p, &session_backend_ops, s)) == BACKEND_EBUSY &&
	    backend_pool_evict(s->backend_pool))
		;
	if (rc != 0) {
		s->be_then = NULL;
		s->open_handles--;
	}
	return rc;
}

void session_backend_command(struct session *s, const char *line, session_backend_then then)
{
	s->be_then = then;
	if (s->be == NULL) {
		on_backend_reply(s, NULL, BACKEND_ELOST);
		return;
	}
	backend_command(s->be, line);
}

void session_backend_data_end(struct session *s, struct buf *b, session_backend_then then)
{
	s->be_then = then;
	if (s->be == NULL) {
		on_backend_reply(s, NULL, BACKEND_ELOST);
		return;
	}
	backend_data_end(s->be, b);
}

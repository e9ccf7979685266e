/*
 * backend_pool - a loop's idle backend connections, kept after their
 * client's session ended cleanly so that the next client skips the
 * connect, greeting and EHLO (and the backend a new smtpd process).
 *
 * A connection enters only when idle between transactions with nothing
 * in flight (backend_reusable), opened under the pool's configuration
 * (any reload empties the pool and keeps no older connection), while the
 * loop is not draining. It leaves when taken (backend_reuse re-identifies
 * it: RSET, then XCLIENT and EHLO), after [backend] pool_idle, when the
 * backend closes it or says anything (a 421 at its own idle timeout), or
 * when the pool is full (the oldest goes). A connection that told its
 * client with XCLIENT serves any client; one without (XFORWARD, or
 * nothing) only a client of the same identity key.
 *
 * One per loop, owned by the server state and passed explicitly.
 */
#ifndef BACKEND_POOL_H
#define BACKEND_POOL_H

#include <stdbool.h>
#include <stddef.h>

struct backend;
struct config;
struct pool_entry;

/* room for an identity key: a client address, a listener address and a
 * PROXY header's destination */
#define BACKEND_POOL_KEY_MAX 256

struct backend_pool {
	struct config *cfg;         /* connections of this config only; NULL: closed */
	struct pool_entry *head, *tail; /* oldest first */
	size_t n;
};

/* backend_pool_configure - the loop's configuration changed (startup,
 * reload): drop (QUIT) every idle connection, keep the new config's
 * reference; cfg NULL closes the pool for good (shutdown). */
void backend_pool_configure(struct backend_pool *pool, struct config *cfg);
/* backend_pool_put - take be (its owner is told closed and released)
 * and keep it; false when it may not be kept: the caller still owns it
 * and quits it. identity: what a connection without XCLIENT carries of
 * its client (its address, or the identity mode's key); identity_fixed:
 * the connection itself carries it (a PROXY header, a transparent source
 * address), so even XCLIENT cannot make it another client's. txn_left: the
 * backend may still hold a transaction (MAIL relayed, no RSET or final
 * dot since): the next owner must RSET. */
bool backend_pool_put(struct backend_pool *pool, struct backend *be, const struct config *cfg,
    bool outbound, const char *identity, bool identity_fixed, bool txn_left);
/* backend_pool_take - an idle connection for a client of identity, or
 * NULL; the caller gives it a new owner at once (backend_reuse, with
 * RSET when *txn_left). */
struct backend *backend_pool_take(struct backend_pool *pool, const struct config *cfg,
    bool outbound, const char *identity, bool *txn_left);
/* backend_pool_evict - QUIT the oldest idle connection (the backend's
 * connection cap is reached and a client needs one); false when empty */
bool backend_pool_evict(struct backend_pool *pool);

#endif

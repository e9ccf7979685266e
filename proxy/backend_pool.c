/*
 * backend_pool - a loop's idle backend connections (see backend_pool.h).
 *
 * Each kept connection is owned by its pool_entry (backend_owner_ops): the
 * entry is unlinked when the connection ends or is taken (closed), and
 * freed, with its config reference, when the connection holds no
 * reference to it any more (released).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/backend.h"
#include "proxy/backend_pool.h"
#include "proxy/config.h"
#include "proxy/log.h"

struct pool_entry {
	struct backend_pool *pool;  /* NULL once unlinked */
	struct backend *be;
	struct config *cfg;         /* the connection's be->p.cfg, held until released */
	bool outbound;
	bool reidentifies;          /* XCLIENT: any client may take it */
	bool txn_left;              /* the backend may hold a transaction: RSET first */
	char identity[BACKEND_POOL_KEY_MAX];
	struct pool_entry *prev, *next;
};

static void entry_unlink(struct pool_entry *e)
{
	struct backend_pool *pool = e->pool;

	if (pool == NULL)
		return;
	if (e->prev)
		e->prev->next = e->next;
	else
		pool->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		pool->tail = e->prev;
	e->prev = e->next = NULL;
	e->pool = NULL;
	pool->n--;
}

static void entry_reply(void *owner, const struct smtp_reply *r, int err)
{
	/* an idle connection is asked nothing */
	(void)owner, (void)r, (void)err;
}

static void entry_writable(void *owner)
{
	(void)owner;
}

static void entry_closed(void *owner)
{
	struct pool_entry *e = owner;

	/* the backend closed it, or it said something (its idle 421): gone */
	entry_unlink(e);
	e->be = NULL;
}

static void entry_idle(void *owner)
{
	struct pool_entry *e = owner;
	struct backend *be = e->be;

	log_debug("pooled backend connection idle for [backend] pool_idle; closing it");
	entry_unlink(e);
	backend_quit(be);
}

static void entry_released(void *owner)
{
	struct pool_entry *e = owner;

	config_unref(e->cfg);
	free(e);
}

static const struct backend_owner_ops pool_entry_ops = {
	.reply = entry_reply,
	.writable = entry_writable,
	.closed = entry_closed,
	.idle = entry_idle,
	.released = entry_released,
};

static void quit_all(struct backend_pool *pool)
{
	while (pool->head != NULL)
		backend_pool_evict(pool);
}

bool backend_pool_evict(struct backend_pool *pool)
{
	struct pool_entry *e = pool->head;
	struct backend *be;

	if (e == NULL)
		return false;
	be = e->be;
	entry_unlink(e);
	backend_quit(be);   /* closed() and, later, released() */
	return true;
}

void backend_pool_configure(struct backend_pool *pool, struct config *cfg)
{
	quit_all(pool);
	if (pool->cfg)
		config_unref(pool->cfg);
	pool->cfg = cfg ? config_ref(cfg) : NULL;
}

bool backend_pool_put(struct backend_pool *pool, struct backend *be, const struct config *cfg,
    bool outbound, const char *identity, bool identity_fixed, bool txn_left)
{
	struct pool_entry *e;

	if (pool->cfg == NULL || cfg != pool->cfg || pool->cfg->backend.pool_size == 0 ||
	    !backend_reusable(be))
		return false;
	if ((e = calloc(1, sizeof *e)) == NULL)
		return false;
	if (pool->n >= pool->cfg->backend.pool_size)
		backend_pool_evict(pool);   /* the oldest has the least time left */
	e->be = be;
	e->cfg = config_ref(pool->cfg);
	e->outbound = outbound;
	e->reidentifies = !identity_fixed && backend_reidentifies(be);
	e->txn_left = txn_left;
	snprintf(e->identity, sizeof e->identity, "%s", identity);
	backend_handover(be, &pool_entry_ops, e);
	e->pool = pool;
	e->prev = pool->tail;
	if (pool->tail)
		pool->tail->next = e;
	else
		pool->head = e;
	pool->tail = e;
	pool->n++;
	backend_idle_after(be, pool->cfg->backend.pool_idle);
	return true;
}

struct backend *backend_pool_take(struct backend_pool *pool, const struct config *cfg,
    bool outbound, const char *identity, bool *txn_left)
{
	/* the newest first: the furthest from the backend's idle timeout */
	for (struct pool_entry *e = pool->tail; e; e = e->prev) {
		if (cfg != pool->cfg || e->outbound != outbound)
			continue;
		if (!e->reidentifies && strcmp(e->identity, identity) != 0)
			continue;
		entry_unlink(e);
		*txn_left = e->txn_left;
		return e->be;   /* the caller's backend_reuse tells e closed and released */
	}
	return NULL;
}

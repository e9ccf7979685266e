/*
 * ratelimit_redis - the rate limits' Redis connection: hiredis' async API
 * on the session's libuv loop, never blocking it.
 *
 * Debian 12 ships hiredis 0.14.1, which has no command or connect timeout
 * and whose libuv adapter drops socket errors (shared notes,
 * dependencies-2.md section 2), so:
 *  - the adapter is our own (below), with upstream's fix 9ce15c4: on a poll
 *    error hiredis still gets to read and write, and so sees the refused
 *    connect or the reset; and with no leak when uv_poll_init fails;
 *  - every call has its own deadline timer. A late call is answered as
 *    failed (the caller counts in memory) and the connection is dropped:
 *    a server that does not answer one call will not answer the next, and
 *    a dropped context answers every pending call at once. A timeout is
 *    no cancellation: a stopped server that resumes still runs the calls
 *    it had read (counts too high by those, never too low);
 *  - the connect has a deadline too, and a lost connection is retried
 *    with backoff (RECONNECT_MIN_MS doubling to RECONNECT_MAX_MS; back to
 *    the minimum once a call is answered).
 * While not connected, rlredis_incr refuses at once and the caller counts
 * in memory: no call waits for a connection.
 */
#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "filters/ratelimit.h"
#include "proxy/log.h"

/* exported by hiredis (0.14 and 1.x) though its async.h does not declare it */
void redisProcessCallbacks(redisAsyncContext *ac);

#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 5000
#define CONNECT_TIMEOUT_MIN_MS 1000
#define KEY_PREFIX "backstop:rl:"

/* INCR every key; a key's first event starts its window (PEXPIRE). Run
 * whole by Redis (a script is atomic), so no key is left without expiry. */
static const char count_script[] =
	"local out = {} "
	"for i, k in ipairs(KEYS) do "
	"local n = redis.call('INCR', k) "
	"if n == 1 then redis.call('PEXPIRE', k, ARGV[1]) end "
	"out[i] = n "
	"end "
	"return out";

struct ratelimit_redis {
	uv_loop_t *loop;
	char host[64];
	unsigned port, db;
	uint64_t timeout_ms;
	redisAsyncContext *ac;      /* NULL while disconnected */
	bool connected;
	bool closing;
	uv_timer_t timer;           /* the connect deadline, or the next reconnect */
	uint64_t backoff_ms;
	char why[160];              /* why it is not connected */
	/* the same bytes as hiredis' reader, to count the replies before
	 * hiredis sees them: hiredis asserts (aborts the process) on a reply
	 * that no command is waiting for */
	redisReader *shadow;
};

/* ---- the libuv adapter (hiredis' adapters/libuv.h, fixed) ---- */

struct rl_poll {
	redisAsyncContext *ac;      /* NULL once hiredis let go of it */
	uv_poll_t handle;
	int events;
};

static void rl_drop(struct ratelimit_redis *r, const char *why);

/* The shadow reader builds no replies, it only checks their shape: the
 * counting script answers an array of at most 8 integers, and an error or
 * status line; anything much larger is no answer to us (hiredis would
 * allocate whatever length a server announces: "*2000000000" is 16 GB). */
#define SHADOW_MAX_ELEMENTS 8
#define SHADOW_MAX_STRING 1024
#define SHADOW_MAX_BUFFERED (64 * 1024)
static char shadow_obj;

static void *shadow_string(const redisReadTask *task, char *str, size_t len)
{
	(void)task;
	(void)str;
	return len > SHADOW_MAX_STRING ? NULL : &shadow_obj;
}

static void *shadow_array(const redisReadTask *task, int elements)
{
	(void)task;
	return elements < 0 || elements > SHADOW_MAX_ELEMENTS ? NULL : &shadow_obj;
}

static void *shadow_integer(const redisReadTask *task, long long value)
{
	(void)task;
	(void)value;
	return &shadow_obj;
}

static void *shadow_nil(const redisReadTask *task)
{
	(void)task;
	return &shadow_obj;
}

static void shadow_free(void *obj)
{
	(void)obj;
}

static redisReplyObjectFunctions shadow_fns = {
	shadow_string, shadow_array, shadow_integer, shadow_nil, shadow_free,
};

/* rl_read - redisAsyncHandleRead, but a reply nobody asked for (a server
 * that greets, as POP3's "+OK", or answers one call twice) drops the
 * connection instead of reaching hiredis' assert */
static void rl_read(redisAsyncContext *ac)
{
	struct ratelimit_redis *r = ac->data;
	redisContext *c = &ac->c;
	char buf[16 * 1024];
	size_t pending = 0, complete = 0;
	void *reply;
	ssize_t n;

	if (r == NULL || r->shadow == NULL || !(c->flags & REDIS_CONNECTED)) {
		redisAsyncHandleRead(ac);
		return;
	}
	n = read(c->fd, buf, sizeof buf);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		/* the end or an error: hiredis reads it again and disconnects */
		redisAsyncHandleRead(ac);
		return;
	}
	for (const redisCallback *cb = ac->replies.head; cb != NULL; cb = cb->next)
		pending++;
	if (redisReaderFeed(r->shadow, buf, (size_t)n) == REDIS_OK)
		while (redisReaderGetReply(r->shadow, &reply) == REDIS_OK && reply != NULL)
			complete++;
	if (complete > pending) {
		rl_drop(r, "the server sent a reply no command asked for (is it Redis?)");
		return;
	}
	if (r->shadow->err || r->shadow->len - r->shadow->pos > SHADOW_MAX_BUFFERED) {
		rl_drop(r, "the server's reply is not one to the counting script (too large or malformed)");
		return;
	}
	if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK) {
		redisAsyncHandleRead(ac);
		return;
	}
	redisProcessCallbacks(ac);
}

static void rl_poll_cb(uv_poll_t *h, int status, int events)
{
	struct rl_poll *p = h->data;

	/* libuv reports POLLERR as an error status: let hiredis try both
	 * directions so that it reads the error off the socket */
	if (status != 0)
		events = p->events;
	/* the connect completes on the write side first, so that every read
	 * goes through rl_read's count */
	if (p->ac != NULL && !(p->ac->c.flags & REDIS_CONNECTED) && (events & UV_READABLE))
		redisAsyncHandleWrite(p->ac);
	if (p->ac != NULL && (events & UV_READABLE))
		rl_read(p->ac);
	if (p->ac != NULL && (events & UV_WRITABLE))
		redisAsyncHandleWrite(p->ac);
}

static void rl_poll_update(struct rl_poll *p)
{
	if (p->events)
		uv_poll_start(&p->handle, p->events, rl_poll_cb);
	else
		uv_poll_stop(&p->handle);
}

static void rl_add_read(void *data)
{
	struct rl_poll *p = data;
	p->events |= UV_READABLE;
	rl_poll_update(p);
}

static void rl_del_read(void *data)
{
	struct rl_poll *p = data;
	p->events &= ~UV_READABLE;
	rl_poll_update(p);
}

static void rl_add_write(void *data)
{
	struct rl_poll *p = data;
	p->events |= UV_WRITABLE;
	rl_poll_update(p);
}

static void rl_del_write(void *data)
{
	struct rl_poll *p = data;
	p->events &= ~UV_WRITABLE;
	rl_poll_update(p);
}

static void rl_poll_closed(uv_handle_t *h)
{
	free(h->data);
}

static void rl_cleanup(void *data)
{
	struct rl_poll *p = data;
	p->ac = NULL;
	uv_close((uv_handle_t *)&p->handle, rl_poll_closed);
}

static int rl_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
	struct rl_poll *p;

	if (ac->ev.data != NULL || (p = calloc(1, sizeof *p)) == NULL)
		return REDIS_ERR;
	if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
		free(p);
		return REDIS_ERR;
	}
	p->handle.data = p;
	p->ac = ac;
	ac->ev.addRead = rl_add_read;
	ac->ev.delRead = rl_del_read;
	ac->ev.addWrite = rl_add_write;
	ac->ev.delWrite = rl_del_write;
	ac->ev.cleanup = rl_cleanup;
	ac->ev.data = p;
	return REDIS_OK;
}

/* ---- the connection ---- */

static void rl_connect(struct ratelimit_redis *r);

static void on_reconnect_timer(uv_timer_t *t)
{
	struct ratelimit_redis *r = t->data;
	rl_connect(r);
}

static void schedule_reconnect(struct ratelimit_redis *r)
{
	if (r->closing)
		return;
	log_debug("limits: redis %s:%u: %s; reconnecting in %llu ms", r->host, r->port, r->why,
	    (unsigned long long)r->backoff_ms);
	uv_timer_start(&r->timer, on_reconnect_timer, r->backoff_ms, 0);
	r->backoff_ms = r->backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : r->backoff_ms * 2;
}

/* rl_drop - free the context: hiredis answers every pending call (reply
 * NULL) before redisAsyncFree returns; then reconnect later */
static void rl_drop(struct ratelimit_redis *r, const char *why)
{
	redisAsyncContext *ac = r->ac;

	snprintf(r->why, sizeof r->why, "%s", why);
	r->ac = NULL;
	r->connected = false;
	uv_timer_stop(&r->timer);
	if (ac != NULL)
		redisAsyncFree(ac);
	schedule_reconnect(r);
}

static void on_connect_timeout(uv_timer_t *t)
{
	struct ratelimit_redis *r = t->data;
	rl_drop(r, "connect timed out");
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct ratelimit_redis *r = ac->data;

	if (r == NULL || r->ac != ac)
		return;
	uv_timer_stop(&r->timer);
	if (status != REDIS_OK) {
		/* hiredis frees the context itself after this callback */
		snprintf(r->why, sizeof r->why, "connect failed: %s", ac->errstr[0] ? ac->errstr : "error");
		r->ac = NULL;
		r->connected = false;
		schedule_reconnect(r);
		return;
	}
	r->connected = true;
	log_debug("limits: redis %s:%u connected", r->host, r->port);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct ratelimit_redis *r = ac->data;

	/* our own redisAsyncFree (rl_drop, rlredis_close) has let go already */
	if (r == NULL || r->ac != ac)
		return;
	snprintf(r->why, sizeof r->why, "connection lost: %s",
	    status == REDIS_OK ? "closed" : ac->errstr[0] ? ac->errstr : "error");
	r->ac = NULL;
	r->connected = false;
	schedule_reconnect(r);
}

static void on_select(redisAsyncContext *ac, void *reply, void *arg)
{
	const redisReply *rep = reply;
	struct ratelimit_redis *r = arg;

	(void)ac;
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
		log_warn("limits: redis %s:%u refused SELECT %u: %s (check the database number in [limits] store)",
		    r->host, r->port, r->db, rep->str);
}

static void rl_connect(struct ratelimit_redis *r)
{
	redisAsyncContext *ac;

	if (r->closing)
		return;
	/* r->host is an address ([limits] store takes no names): hiredis'
	 * getaddrinfo does not block on it */
	ac = redisAsyncConnect(r->host, (int)r->port);
	if (ac == NULL) {
		snprintf(r->why, sizeof r->why, "out of memory");
		schedule_reconnect(r);
		return;
	}
	if (ac->err) {
		snprintf(r->why, sizeof r->why, "connect failed: %s", ac->errstr);
		redisAsyncFree(ac);
		schedule_reconnect(r);
		return;
	}
	if (rl_attach(ac, r->loop) != REDIS_OK) {
		snprintf(r->why, sizeof r->why, "cannot watch the socket");
		redisAsyncFree(ac);
		schedule_reconnect(r);
		return;
	}
	ac->data = r;
	r->ac = ac;
	r->connected = false;
	if (r->shadow != NULL)
		redisReaderFree(r->shadow);
	r->shadow = redisReaderCreateWithFunctions(&shadow_fns);   /* NULL: unchecked, as hiredis alone */
	/* right after the attach: setting it starts the write poll that
	 * completes the connect */
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	if (r->db != 0)
		redisAsyncCommand(ac, on_select, r, "SELECT %u", r->db);
	uv_timer_start(&r->timer, on_connect_timeout,
	    r->timeout_ms > CONNECT_TIMEOUT_MIN_MS ? r->timeout_ms : CONNECT_TIMEOUT_MIN_MS, 0);
}

struct ratelimit_redis *rlredis_new(uv_loop_t *loop, const char *host, unsigned port, unsigned db,
    uint64_t timeout_ms)
{
	struct ratelimit_redis *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->loop = loop;
	snprintf(r->host, sizeof r->host, "%s", host);
	r->port = port;
	r->db = db;
	r->timeout_ms = timeout_ms;
	r->backoff_ms = RECONNECT_MIN_MS;
	snprintf(r->why, sizeof r->why, "connecting");
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	rl_connect(r);
	return r;
}

static void on_redis_closed(uv_handle_t *h)
{
	struct ratelimit_redis *r = h->data;

	if (r->shadow != NULL)
		redisReaderFree(r->shadow);
	free(r);
}

void rlredis_close(struct ratelimit_redis *r)
{
	redisAsyncContext *ac = r->ac;

	r->closing = true;
	r->ac = NULL;
	r->connected = false;
	if (ac != NULL)
		redisAsyncFree(ac);
	uv_close((uv_handle_t *)&r->timer, on_redis_closed);
}

bool rlredis_same(const struct ratelimit_redis *r, const char *host, unsigned port, unsigned db,
    uint64_t timeout_ms)
{
	return strcmp(r->host, host) == 0 && r->port == port && r->db == db && r->timeout_ms == timeout_ms;
}

bool rlredis_ready(const struct ratelimit_redis *r)
{
	return r->ac != NULL && r->connected;
}

const char *rlredis_why(const struct ratelimit_redis *r)
{
	return r->why;
}

/* ---- calls ---- */

struct rl_call {
	uv_timer_t deadline;
	struct ratelimit_redis *r;
	rlredis_cb cb;
	void *arg;
	bool answered;              /* cb has run */
	bool replied;               /* hiredis has called back (it always does) */
};

static void call_closed(uv_handle_t *h)
{
	struct rl_call *call = h->data;
	/* hiredis is done with it: the timer is closed only after its reply */
	free(call);
}

static void call_answer(struct rl_call *call, bool ok, const long long *counts, size_t n, const char *why)
{
	if (call->answered)
		return;
	call->answered = true;
	call->cb(call->arg, ok, counts, n, why);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct rl_call *call = arg;
	const redisReply *rep = reply;
	long long counts[8];
	size_t n = 0;

	(void)ac;
	call->replied = true;
	if (rep == NULL) {
		call_answer(call, false, NULL, 0, call->r->why[0] ? call->r->why : "connection lost");
	} else if (rep->type == REDIS_REPLY_ERROR) {
		char why[200];
		snprintf(why, sizeof why, "redis error: %s", rep->str);
		call_answer(call, false, NULL, 0, why);
	} else if (rep->type != REDIS_REPLY_ARRAY || rep->elements > sizeof counts / sizeof counts[0]) {
		call_answer(call, false, NULL, 0, "unexpected reply to the counting script");
	} else {
		for (; n < rep->elements; n++) {
			if (rep->element[n]->type != REDIS_REPLY_INTEGER)
				break;
			counts[n] = rep->element[n]->integer;
		}
		if (n == rep->elements) {
			call->r->backoff_ms = RECONNECT_MIN_MS;
			call_answer(call, true, counts, n, NULL);
		} else {
			call_answer(call, false, NULL, 0, "unexpected reply to the counting script");
		}
	}
	uv_timer_stop(&call->deadline);
	if (!uv_is_closing((uv_handle_t *)&call->deadline))
		uv_close((uv_handle_t *)&call->deadline, call_closed);
}

static void on_call_deadline(uv_timer_t *t)
{
	struct rl_call *call = t->data;
	struct ratelimit_redis *r = call->r;
	char why[120];

	snprintf(why, sizeof why, "no answer within %llu ms", (unsigned long long)r->timeout_ms);
	call_answer(call, false, NULL, 0, why);
	/* a server that is this late for one call is late for all: drop the
	 * connection (hiredis then replies NULL to every pending call, this
	 * one included, before redisAsyncFree returns) */
	if (r->ac != NULL)
		rl_drop(r, why);
}

int rlredis_incr(struct ratelimit_redis *r, const char *const *keys, size_t n, uint64_t window_ms,
    rlredis_cb cb, void *arg)
{
	char nkeys[8], window[24], names[8][RATELIMIT_KEY_MAX + 32];
	const char *argv[3 + 8 + 1];
	size_t argc = 0;
	struct rl_call *call;

	if (!rlredis_ready(r) || n == 0 || n > 8)
		return -1;
	if ((call = calloc(1, sizeof *call)) == NULL)
		return -1;
	call->r = r;
	call->cb = cb;
	call->arg = arg;
	snprintf(nkeys, sizeof nkeys, "%zu", n);
	snprintf(window, sizeof window, "%llu", (unsigned long long)window_ms);
	argv[argc++] = "EVAL";
	argv[argc++] = count_script;
	argv[argc++] = nkeys;
	for (size_t i = 0; i < n; i++) {
		/* the window's length is part of the key: a reload that changes
		 * it starts fresh counters rather than reinterpreting old ones */
		snprintf(names[i], sizeof names[i], KEY_PREFIX "%s:%s", window, keys[i]);
		argv[argc++] = names[i];
	}
	argv[argc++] = window;
	/* hiredis formats (copies) the command before it returns */
	if (redisAsyncCommandArgv(r->ac, on_reply, call, (int)argc, argv, NULL) != REDIS_OK) {
		free(call);
		return -1;
	}
	uv_timer_init(r->loop, &call->deadline);
	call->deadline.data = call;
	uv_timer_start(&call->deadline, on_call_deadline, r->timeout_ms, 0);
	return 0;
}

/*
 * dns - a loop's resolver (struct dns, one per struct worker): one
 * libunbound context behind a blocking API for worker threads and a
 * callback API for the loop thread.
 *
 * The choice, and why:
 *   - libunbound rather than c-ares: it caches answers for their TTL,
 *     negative answers included (c-ares 1.18 has no cache), one cache is
 *     shared by every thread, and it can validate DNSSEC later. c-ares
 *     channels are not thread-safe, and libspf2 needs a blocking lookup on
 *     a worker thread (its API is synchronous).
 *   - Every query, blocking or not, goes through ub_resolve_async() on a
 *     context running in threaded mode (ub_ctx_async(ctx, 1)). Plain
 *     ub_resolve() has no timeout of its own (unbound retries a slow server
 *     for up to minutes), and a thread blocked inside it cannot be woken.
 *     So one dispatcher thread owns ub_process(): it polls ub_fd(), runs
 *     the completion callbacks, and cancels (ub_cancel) every query whose
 *     deadline has passed, completing it as DNS_TIMEOUT. Because answers
 *     and timeouts are both decided on that one thread, each query
 *     completes exactly once: after ub_cancel() libunbound never calls the
 *     callback (it marks the query cancelled and drops the late answer).
 *   - A blocking caller waits on its own condition variable; a loop caller
 *     gets its callback through a uv_async_t. Neither holds the event loop.
 *   - max_queries bounds queries submitted to libunbound: a blocking caller
 *     waits for a slot until its deadline, a loop caller gets DNS_ERROR at
 *     once (shedding load rather than queueing without bound).
 *
 * The loop thread's answer cache (proxy/dns_cache.h, [dns] cache_size):
 * libunbound's own cache still costs a trip through its threads and pipes
 * per query (about 40 us of CPU), so the loop keeps the answers it was
 * given and answers a repeat itself. A hit is queued and delivered from a
 * uv_idle handle on the loop's next turn, through the same path as an
 * answer from libunbound, so the callback never runs inside
 * dns_query_async() and a caller that has given up on a lookup (its
 * session gone) handles a hit exactly as any late answer. The cache is
 * touched on the loop thread only (lookups in dns_query_async and
 * dns_cache_peek, stores in async_cb and dns_cache_offer); blocking lookups
 * (SPF, worker threads) do not use it, but SPF hands their answers to the
 * loop (dns_cache_offer) and evaluates on the loop when they are all kept.
 *
 * Locking: d->mu protects the in-flight list, counters and completion
 * queue. It is never held while calling into libunbound except ub_cancel()
 * from the dispatcher, and libunbound calls our callback without its own
 * lock held, so there is no lock-order cycle.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* clock_gettime, pthread_condattr_setclock, strdup under -std=c17 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unbound.h>
#include <unistd.h>
#include <uv.h>

#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/dns_cache.h"
#include "proxy/log.h"

#define DNS_CLASS_IN 1
#define DNS_NAME_MAX 1025     /* presentation form incl. NUL */

struct dns_q {
	struct dns *d;               /* the resolver it went to */
	struct dns_q *prev, *next;   /* in-flight list */
	struct dns_q *done_next;     /* async completion queue */
	uint64_t deadline;
	const atomic_bool *cancel;   /* raised: end it now (dns_query_sync_cancel) */
	int type;
	int ub_id;
	bool submitted;              /* ub_id valid: the dispatcher may cancel */
	bool done;
	struct dns_answer ans;
	pthread_cond_t *cv;          /* blocking caller; NULL for async */
	dns_cb cb;
	void *arg;
	char *cache_name;            /* async with the cache on: keep the answer under it */
};

/* one per loop (struct worker's dns): the libunbound context and its
 * dispatcher thread, the loop's completion handle and answer cache */
struct dns {
	bool inited;
	uv_loop_t *loop;
	pthread_mutex_t mu;
	pthread_cond_t slot_cv;
	struct ub_ctx *ctx;
	pthread_t thread;
	int wake[2];
	bool stop;
	struct dns_q *inflight;
	size_t n_inflight;
	size_t max_inflight;
	uint64_t timeout_ms;
	struct dns_q *done_head, *done_tail;
	uv_async_t async;
	bool async_inited;
	/* answers by enum dns_status: counted where a caller gets one, on
	 * worker threads (sync) and the loop (async) */
	atomic_ullong answers[DNS_ERROR + 1];
	/* the loop thread's answer cache (NULL: [dns] cache_size = 0) and the
	 * hits waiting for the loop's next turn; loop thread only */
	struct dns_cache *cache;
	struct dns_q *hits_head, *hits_tail;
	uv_idle_t hits_idle;
	bool hits_idle_inited;
	atomic_ullong cache_hits, cache_misses;  /* read by scrapes */
	/* the loop handles not yet closed: the struct is freed with the last
	 * close callback once dns_free() has run (libuv rule) */
	unsigned handles_open;
	bool freeing;
};

static void handle_closed(uv_handle_t *h)
{
	struct dns *d = h->data;

	if (--d->handles_open == 0 && d->freeing)
		free(d);
}

uint64_t dns_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void ms_to_timespec(uint64_t ms, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ms / 1000);
	ts->tv_nsec = (long)(ms % 1000) * 1000000;
}

const char *dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK: return "ok";
	case DNS_NODATA: return "nodata";
	case DNS_NXDOMAIN: return "nxdomain";
	case DNS_SERVFAIL: return "servfail";
	case DNS_TIMEOUT: return "timeout";
	case DNS_ERROR: return "error";
	}
	return "?";
}

void dns_answer_free(struct dns_answer *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->rr[i].data);
		free(a->rr[i].text);
	}
	free(a->rr);
	a->rr = NULL;
	a->n = 0;
}

static struct dns_answer answer_status(enum dns_status s)
{
	struct dns_answer a = {.status = s, .rcode = -1};
	return a;
}

/*
 * name_decode - uncompressed wire name -> "a.b.c" (no final dot; "." for
 * the root). Labels holding '.', controls, spaces or non-ASCII bytes are
 * refused: every consumer wants host names, and a name that cannot be
 * written back unambiguously must not reach a policy engine.
 */
static char *name_decode(const unsigned char *p, size_t len)
{
	char out[DNS_NAME_MAX];
	size_t o = 0, i = 0;

	while (i < len) {
		size_t l = p[i++];
		if (l == 0) {
			if (o == 0)
				out[o++] = '.';
			out[o] = '\0';
			return strdup(out);
		}
		if (l > 63 || i + l > len || o + l + 2 > sizeof out)
			return NULL;
		if (o > 0)
			out[o++] = '.';
		for (size_t k = 0; k < l; k++) {
			unsigned char c = p[i + k];
			if (c <= 0x20 || c >= 0x7f || c == '.')
				return NULL;
			out[o++] = (char)c;
		}
		i += l;
	}
	return NULL;
}

/* txt_decode - concatenate the character-strings (RFC 7208 3.3). */
static char *txt_decode(const unsigned char *p, size_t len, size_t *outlen)
{
	char *out = malloc(len + 1);
	size_t o = 0, i = 0;

	if (out == NULL)
		return NULL;
	while (i < len) {
		size_t l = p[i++];
		if (l > len - i)
			l = len - i;     /* malformed: keep what is there */
		memcpy(out + o, p + i, l);
		o += l;
		i += l;
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

static bool rr_fill(struct dns_rr *rr, int type, const unsigned char *p, size_t len)
{
	rr->data = malloc(len ? len : 1);
	if (rr->data == NULL)
		return false;
	memcpy(rr->data, p, len);
	rr->len = len;
	switch (type) {
	case DNS_T_TXT:
		rr->text = txt_decode(p, len, &rr->text_len);
		return rr->text != NULL;
	case DNS_T_MX:
		if (len < 3)
			return false;
		rr->pref = (unsigned)p[0] << 8 | p[1];
		rr->text = name_decode(p + 2, len - 2);
		break;
	case DNS_T_PTR:
	case DNS_T_CNAME:
	case DNS_T_NS:
		rr->text = name_decode(p, len);
		break;
	case DNS_T_A:
		return len == 4;
	case DNS_T_AAAA:
		return len == 16;
	default:
		return true;
	}
	if (rr->text == NULL)
		return false;
	rr->text_len = strlen(rr->text);
	return true;
}

/* answer_from_ub - convert (and free) a libunbound result. */
static struct dns_answer answer_from_ub(int type, int err, struct ub_result *res)
{
	struct dns_answer a = answer_status(DNS_ERROR);
	size_t n = 0;

	if (err != 0 || res == NULL) {
		if (res)
			ub_resolve_free(res);
		return a;
	}
	a.rcode = res->rcode;
	a.ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
	a.secure = res->secure != 0;
	if (res->bogus)
		a.status = DNS_SERVFAIL;
	else if (res->rcode == 3)
		a.status = DNS_NXDOMAIN;
	else if (res->rcode != 0)
		a.status = DNS_SERVFAIL;
	else if (!res->havedata)
		a.status = DNS_NODATA;
	else
		a.status = DNS_OK;
	if (a.status == DNS_OK) {
		while (res->data[n] != NULL)
			n++;
		a.rr = calloc(n, sizeof *a.rr);
		if (a.rr == NULL) {
			ub_resolve_free(res);
			return answer_status(DNS_ERROR);
		}
		for (size_t i = 0; i < n; i++) {
			struct dns_rr *rr = &a.rr[a.n];
			if (rr_fill(rr, type, (const unsigned char *)res->data[i],
			    (size_t)res->len[i])) {
				a.n++;
			} else {
				free(rr->data);
				free(rr->text);
				memset(rr, 0, sizeof *rr);
			}
		}
		if (a.n == 0)
			a.status = DNS_NODATA;   /* every record was malformed */
	}
	ub_resolve_free(res);
	return a;
}

static void wake_dispatcher(struct dns *d)
{
	char c = 0;

	if (d->wake[1] >= 0 && write(d->wake[1], &c, 1) < 0 && errno != EAGAIN)
		log_warn("dns: wake: %s", strerror(errno));
}

/* list_remove - take q off the in-flight list and free its slot. mu held. */
static void list_remove(struct dns_q *q)
{
	struct dns *d = q->d;

	if (q->prev)
		q->prev->next = q->next;
	else
		d->inflight = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	d->n_inflight--;
	pthread_cond_signal(&d->slot_cv);
}

/* complete - hand q's answer to its owner. mu held; q already removed.
 * Returns true when the loop must be woken. */
static bool complete(struct dns_q *q, struct dns_answer ans)
{
	struct dns *d = q->d;

	q->ans = ans;
	q->done = true;
	if (q->cv != NULL) {
		pthread_cond_signal(q->cv);
		return false;
	}
	q->done_next = NULL;
	if (d->done_tail)
		d->done_tail->done_next = q;
	else
		d->done_head = q;
	d->done_tail = q;
	return true;
}

/* ub_done_cb - libunbound's callback; runs on the dispatcher thread inside
 * ub_process(). Never called for a cancelled query. */
static void ub_done_cb(void *arg, int err, struct ub_result *res)
{
	struct dns_q *q = arg;
	struct dns *d = q->d;
	struct dns_answer a = answer_from_ub(q->type, err, res);
	bool wake_loop;

	pthread_mutex_lock(&d->mu);
	list_remove(q);
	wake_loop = complete(q, a);
	pthread_mutex_unlock(&d->mu);
	if (wake_loop)
		uv_async_send(&d->async);
}

/* expire - cancel and complete every submitted query past its deadline;
 * returns the next deadline (0 = none). Dispatcher thread. */
static uint64_t expire(struct dns *d)
{
	struct dns_q *expired = NULL, *q, *next;
	uint64_t now = dns_now_ms(), soonest = 0;
	bool wake_loop = false;

	pthread_mutex_lock(&d->mu);
	for (q = d->inflight; q != NULL; q = next) {
		next = q->next;
		if (!q->submitted)
			continue;
		if (q->deadline <= now || (q->cancel != NULL && atomic_load(q->cancel))) {
			list_remove(q);
			q->done_next = expired;
			expired = q;
		} else if (soonest == 0 || q->deadline < soonest) {
			soonest = q->deadline;
		}
	}
	pthread_mutex_unlock(&d->mu);

	/* ub_cancel() before completing: once it returns, libunbound will not
	 * call ub_done_cb for the query, so q may be freed by its owner. */
	for (q = expired; q != NULL; q = q->done_next)
		ub_cancel(d->ctx, q->ub_id);

	pthread_mutex_lock(&d->mu);
	for (q = expired; q != NULL; q = next) {
		next = q->done_next;
		wake_loop |= complete(q, answer_status(DNS_TIMEOUT));
	}
	pthread_mutex_unlock(&d->mu);
	if (wake_loop)
		uv_async_send(&d->async);
	return soonest;
}

static void *dispatcher_main(void *arg)
{
	struct dns *d = arg;
	struct pollfd pfd[2];
	char buf[64];

	pfd[0].fd = ub_fd(d->ctx);
	pfd[0].events = POLLIN;
	pfd[1].fd = d->wake[0];
	pfd[1].events = POLLIN;
	for (;;) {
		uint64_t next = expire(d), now;
		int timeout = -1;
		bool stop;

		pthread_mutex_lock(&d->mu);
		stop = d->stop;
		pthread_mutex_unlock(&d->mu);
		if (stop)
			break;
		if (next != 0) {
			now = dns_now_ms();
			timeout = next > now ? (int)(next - now) : 0;
		}
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
			log_error("dns: poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents & POLLIN)
			while (read(d->wake[0], buf, sizeof buf) > 0)
				;
		if (pfd[0].revents & POLLIN) {
			int r = ub_process(d->ctx);
			if (r != 0)
				log_warn("dns: ub_process: %s", ub_strerror(r));
		}
	}
	return NULL;
}

static void count_answer(struct dns *d, const struct dns_answer *a)
{
	if ((unsigned)a->status <= DNS_ERROR)
		atomic_fetch_add_explicit(&d->answers[a->status], 1, memory_order_relaxed);
}

bool dns_cache_counts(struct dns *d, uint64_t *hits, uint64_t *misses)
{
	if (d == NULL || !d->inited || d->cache == NULL)
		return false;
	*hits = atomic_load_explicit(&d->cache_hits, memory_order_relaxed);
	*misses = atomic_load_explicit(&d->cache_misses, memory_order_relaxed);
	return true;
}

bool dns_counts(struct dns *d, uint64_t answers[6], unsigned long *inflight)
{
	_Static_assert(DNS_ERROR == 5, "dns_counts: six statuses");
	if (d == NULL || !d->inited)
		return false;
	for (int i = 0; i <= DNS_ERROR; i++)
		answers[i] = atomic_load_explicit(&d->answers[i], memory_order_relaxed);
	pthread_mutex_lock(&d->mu);
	*inflight = d->n_inflight;
	pthread_mutex_unlock(&d->mu);
	return true;
}

/* async_cb - loop thread: run the callbacks of completed async queries. */
static void async_cb(uv_async_t *h)
{
	struct dns *d = h->data;
	struct dns_q *q, *next;

	pthread_mutex_lock(&d->mu);
	q = d->done_head;
	d->done_head = d->done_tail = NULL;
	pthread_mutex_unlock(&d->mu);
	for (; q != NULL; q = next) {
		next = q->done_next;
		if (q->cache_name != NULL) {
			dns_cache_put(d->cache, q->type, q->cache_name, &q->ans, dns_now_ms());
			free(q->cache_name);
		}
		count_answer(d, &q->ans);
		q->cb(q->arg, &q->ans);
		dns_answer_free(&q->ans);
		free(q);
	}
}

/* hits_deliver - loop thread, the turn after the lookups: answer the cache
 * hits queued by dns_query_async(). Hits queued by these callbacks (a
 * lookup that leads to another) wait for the next turn. */
static void hits_deliver(uv_idle_t *h)
{
	struct dns *d = h->data;
	struct dns_q *q = d->hits_head, *next;

	d->hits_head = d->hits_tail = NULL;
	uv_idle_stop(h);
	for (; q != NULL; q = next) {
		next = q->done_next;
		count_answer(d, &q->ans);
		q->cb(q->arg, &q->ans);
		dns_answer_free(&q->ans);
		free(q);
	}
}

/* cache_answer - a kept answer for (type, name) queued for the loop's next
 * turn; false when there is none. Loop thread. */
static bool cache_answer(struct dns *d, int type, const char *name, dns_cb cb, void *arg)
{
	struct dns_answer ans;
	struct dns_q *q;

	if (!dns_cache_get(d->cache, type, name, dns_now_ms(), &ans))
		return false;
	if ((q = calloc(1, sizeof *q)) == NULL) {
		dns_answer_free(&ans);
		return false;
	}
	q->d = d;
	q->type = type;
	q->ans = ans;
	q->cb = cb;
	q->arg = arg;
	if (d->hits_tail)
		d->hits_tail->done_next = q;
	else
		d->hits_head = q;
	d->hits_tail = q;
	uv_idle_start(&d->hits_idle, hits_deliver);
	return true;
}

bool dns_cache_peek(struct dns *d, int type, const char *name, struct dns_answer *out)
{
	if (d == NULL || !d->inited || d->cache == NULL || name == NULL ||
	    !dns_cache_get(d->cache, type, name, dns_now_ms(), out))
		return false;
	atomic_fetch_add_explicit(&d->cache_hits, 1, memory_order_relaxed);
	count_answer(d, out);
	return true;
}

void dns_cache_offer(struct dns *d, int type, const char *name, const struct dns_answer *a)
{
	if (d != NULL && d->inited && d->cache != NULL && name != NULL)
		dns_cache_put_cold(d->cache, type, name, a, dns_now_ms());
}

/*
 * submit - take a slot (waiting until the deadline if wait), register q and
 * hand it to libunbound. Returns false with q->ans set if it never went in
 * flight; true if it completes (or has completed) through the dispatcher.
 */
static bool submit(struct dns_q *q, int type, const char *name, bool wait)
{
	struct dns *d = q->d;
	struct timespec ts;
	int r, id = 0;

	q->type = type;
	if (name == NULL || name[0] == '\0' || strlen(name) >= DNS_NAME_MAX) {
		q->ans = answer_status(DNS_ERROR);
		return false;
	}
	pthread_mutex_lock(&d->mu);
	if (!d->inited || d->stop) {
		pthread_mutex_unlock(&d->mu);
		q->ans = answer_status(DNS_ERROR);
		return false;
	}
	while (d->n_inflight >= d->max_inflight) {
		if (!wait || dns_now_ms() >= q->deadline) {
			pthread_mutex_unlock(&d->mu);
			q->ans = answer_status(wait ? DNS_TIMEOUT : DNS_ERROR);
			return false;
		}
		ms_to_timespec(q->deadline, &ts);
		pthread_cond_timedwait(&d->slot_cv, &d->mu, &ts);
		if (d->stop) {
			pthread_mutex_unlock(&d->mu);
			q->ans = answer_status(DNS_ERROR);
			return false;
		}
	}
	d->n_inflight++;
	q->prev = NULL;
	q->next = d->inflight;
	if (d->inflight)
		d->inflight->prev = q;
	d->inflight = q;
	pthread_mutex_unlock(&d->mu);

	r = ub_resolve_async(d->ctx, name, type, DNS_CLASS_IN, q, ub_done_cb, &id);

	pthread_mutex_lock(&d->mu);
	if (r != 0) {
		list_remove(q);
		pthread_mutex_unlock(&d->mu);
		log_warn("dns: %s: %s", name, ub_strerror(r));
		q->ans = answer_status(DNS_ERROR);
		return false;
	}
	if (!q->done) {
		q->ub_id = id;
		q->submitted = true;
	}
	pthread_mutex_unlock(&d->mu);
	wake_dispatcher(d);   /* it may need an earlier poll timeout now */
	return true;
}

static uint64_t effective_deadline(struct dns *d, uint64_t deadline)
{
	uint64_t latest = dns_now_ms() + d->timeout_ms;

	return (deadline != 0 && deadline < latest) ? deadline : latest;
}

struct dns_answer dns_query_sync(struct dns *d, int type, const char *name, uint64_t deadline)
{
	return dns_query_sync_cancel(d, type, name, deadline, NULL);
}

struct dns_answer dns_query_sync_cancel(struct dns *d, int type, const char *name, uint64_t deadline,
    const atomic_bool *cancel)
{
	struct dns_q q;
	pthread_cond_t cv;
	pthread_condattr_t ca;

	memset(&q, 0, sizeof q);
	if (d == NULL)
		return answer_status(DNS_ERROR);
	q.d = d;
	q.deadline = effective_deadline(d, deadline);
	q.cancel = cancel;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &ca);
	pthread_condattr_destroy(&ca);
	q.cv = &cv;
	if (submit(&q, type, name, true)) {
		pthread_mutex_lock(&d->mu);
		while (!q.done)
			pthread_cond_wait(&cv, &d->mu);
		pthread_mutex_unlock(&d->mu);
	}
	pthread_cond_destroy(&cv);
	count_answer(d, &q.ans);
	return q.ans;
}

/* dns_cancel_wake - a cancel flag was raised: the dispatcher completes the
 * queries that carry it (as DNS_TIMEOUT, the timeout path, so each still
 * completes exactly once). A query submitted after the flag was raised is
 * caught too: submit() wakes the dispatcher. */
void dns_cancel_wake(struct dns *d)
{
	if (d != NULL && d->inited)
		wake_dispatcher(d);
}

/* An immediate failure is still delivered from the loop, later: no callback
 * ever runs inside dns_query_async(). */
int dns_query_async(struct dns *d, int type, const char *name, uint64_t deadline,
    dns_cb cb, void *arg)
{
	struct dns_q *q;

	if (d == NULL || !d->inited || !d->async_inited)
		return -1;
	if (d->cache != NULL && name != NULL) {
		if (cache_answer(d, type, name, cb, arg)) {
			atomic_fetch_add_explicit(&d->cache_hits, 1, memory_order_relaxed);
			return 0;
		}
		atomic_fetch_add_explicit(&d->cache_misses, 1, memory_order_relaxed);
	}
	q = calloc(1, sizeof *q);
	if (q == NULL)
		return -1;
	q->d = d;
	q->deadline = effective_deadline(d, deadline);
	q->cb = cb;
	q->arg = arg;
	/* without memory for the name the answer is simply not kept */
	if (d->cache != NULL && name != NULL)
		q->cache_name = strdup(name);
	if (!submit(q, type, name, false)) {
		pthread_mutex_lock(&d->mu);
		complete(q, q->ans);
		pthread_mutex_unlock(&d->mu);
		uv_async_send(&d->async);
	}
	return 0;
}

static int set_forwarders(struct dns *d, const struct config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->dns.servers.n; i++) {
		const char *s = cfg->dns.servers.v[i];
		char host[256], fwd[300];
		unsigned port;
		int r;

		if (hostport_split(s, host, sizeof host, &port) < 0) {
			snprintf(err, errlen, "[dns] servers: bad address %s", s);
			return -1;
		}
		snprintf(fwd, sizeof fwd, "%s@%u", host, port);
		r = ub_ctx_set_fwd(d->ctx, fwd);
		if (r != 0) {
			snprintf(err, errlen, "[dns] servers: %s: %s (an IP address is required)",
			    s, ub_strerror(r));
			return -1;
		}
	}
	return 0;
}

/* cache_close - answer the queued hits, close their handle, drop the
 * cache. Loop thread. */
static void cache_close(struct dns *d)
{
	if (d->hits_idle_inited) {
		hits_deliver(&d->hits_idle);
		uv_close((uv_handle_t *)&d->hits_idle, handle_closed);
		d->hits_idle_inited = false;
	}
	dns_cache_free(d->cache);
	d->cache = NULL;
}

struct dns *dns_new(uv_loop_t *loop, const struct config *cfg, char *err, size_t errlen)
{
	pthread_condattr_t ca;
	char num[32];
	int r;
	struct dns *d = calloc(1, sizeof *d);

	if (d == NULL) {
		snprintf(err, errlen, "dns: out of memory");
		return NULL;
	}
	pthread_mutex_init(&d->mu, NULL);
	d->wake[0] = d->wake[1] = -1;
	d->loop = loop;
	d->stop = false;
	d->timeout_ms = cfg->dns.timeout;
	d->max_inflight = cfg->dns.max_queries;
	d->ctx = ub_ctx_create();
	if (d->ctx == NULL) {
		snprintf(err, errlen, "dns: cannot create resolver context");
		goto fail;
	}
	/* threaded, not forked: the background resolver shares our memory */
	r = ub_ctx_async(d->ctx, 1);
	snprintf(num, sizeof num, "%zu", d->max_inflight < 1024 ? (size_t)1024 : d->max_inflight);
	if (r == 0)
		r = ub_ctx_set_option(d->ctx, "num-queries-per-thread:", num);
	/* libunbound always forwards here (to [dns] servers or to the
	 * resolv.conf nameservers), and those servers answer for private and
	 * documentation reverse zones (10.in-addr.arpa, 100.51.198.in-addr.arpa,
	 * ...): without this, libunbound answers them NXDOMAIN itself and SPF
	 * ptr/%{p} never sees a local PTR record. */
	if (r == 0)
		r = ub_ctx_set_option(d->ctx, "unblock-lan-zones:", "yes");
	if (r != 0) {
		snprintf(err, errlen, "dns: %s", ub_strerror(r));
		goto fail;
	}
	if (cfg->dns.servers.n > 0) {
		if (set_forwarders(d, cfg, err, errlen) < 0)
			goto fail;
	} else if ((r = ub_ctx_resolvconf(d->ctx, NULL)) != 0) {
		snprintf(err, errlen, "dns: /etc/resolv.conf: %s", ub_strerror(r));
		goto fail;
	}
	if (pipe(d->wake) < 0) {
		snprintf(err, errlen, "dns: pipe: %s", strerror(errno));
		goto fail;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(d->wake[i], F_SETFL, fcntl(d->wake[i], F_GETFL) | O_NONBLOCK);
		fcntl(d->wake[i], F_SETFD, FD_CLOEXEC);
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->slot_cv, &ca);
	pthread_condattr_destroy(&ca);

	d->async.data = d;
	if (uv_async_init(loop, &d->async, async_cb) == 0) {
		d->async.data = d;
		uv_unref((uv_handle_t *)&d->async);  /* idle resolver keeps no loop alive */
		d->async_inited = true;
		d->handles_open++;
	}
	atomic_store(&d->cache_hits, 0);
	atomic_store(&d->cache_misses, 0);
	d->cache = NULL;
	if (cfg->dns.cache_size > 0 && cfg->dns.cache_max_ttl > 0 &&
	    uv_idle_init(loop, &d->hits_idle) == 0) {
		d->hits_idle.data = d;
		d->hits_idle_inited = true;
		d->handles_open++;
		/* out of memory: no cache, every lookup goes to libunbound */
		d->cache = dns_cache_new(cfg->dns.cache_size, cfg->dns.cache_max_ttl);
		if (d->cache == NULL)
			log_warn("dns: no memory for a %lu-entry answer cache; running without",
			    cfg->dns.cache_size);
	}
	d->inited = true;
	/* ub_fd() exists from creation; the context finalises on first use */
	if ((r = pthread_create(&d->thread, NULL, dispatcher_main, d)) != 0) {
		snprintf(err, errlen, "dns: pthread_create: %s", strerror(r));
		d->inited = false;
		if (d->async_inited) {
			uv_close((uv_handle_t *)&d->async, handle_closed);
			d->async_inited = false;
		}
		cache_close(d);
		pthread_cond_destroy(&d->slot_cv);
		goto fail;
	}
	return d;

fail:
	for (int i = 0; i < 2; i++) {
		if (d->wake[i] >= 0)
			close(d->wake[i]);
		d->wake[i] = -1;
	}
	if (d->ctx != NULL)
		ub_ctx_delete(d->ctx);
	pthread_mutex_destroy(&d->mu);
	d->freeing = true;
	if (d->handles_open == 0)
		free(d);
	return NULL;
}

void dns_free(struct dns *d)
{
	struct dns_q *q, *next;

	if (d == NULL)
		return;
	pthread_mutex_lock(&d->mu);
	d->stop = true;
	pthread_cond_broadcast(&d->slot_cv);
	pthread_mutex_unlock(&d->mu);
	wake_dispatcher(d);
	pthread_join(d->thread, NULL);

	/* what is still in flight ends now (cancelled: no libunbound callback) */
	pthread_mutex_lock(&d->mu);
	for (q = d->inflight; q != NULL; q = next) {
		next = q->next;
		if (q->submitted)
			ub_cancel(d->ctx, q->ub_id);
		list_remove(q);
		complete(q, answer_status(DNS_ERROR));
	}
	pthread_mutex_unlock(&d->mu);
	if (d->async_inited) {
		async_cb(&d->async);
		uv_close((uv_handle_t *)&d->async, handle_closed);
		d->async_inited = false;
	}
	cache_close(d);
	ub_ctx_delete(d->ctx);
	d->ctx = NULL;
	for (int i = 0; i < 2; i++) {
		close(d->wake[i]);
		d->wake[i] = -1;
	}
	pthread_cond_destroy(&d->slot_cv);
	pthread_mutex_destroy(&d->mu);
	/* the handles were closed above: the last close callback, on the
	 * loop's next turn (the caller's uv_run), frees d */
	d->freeing = true;
	if (d->handles_open == 0)
		free(d);
}

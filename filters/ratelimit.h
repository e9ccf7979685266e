/*
 * ratelimit - per-client rate limits ([limits] *_rate_per_ip, *_rate_per_net):
 * connections, messages (MAIL), recipients (RCPT) and null-sender
 * recipients (bounce floods) per rate_window, counted per client address
 * and per client network.
 *
 * Counting: a fixed window per key that starts at the key's first event
 * and lasts rate_window; every event counts, refused ones too (a client
 * that keeps hammering stays limited until its window ends). The same rule
 * in both stores, so a fallback changes where counts live, not what they
 * mean.
 *
 * Stores:
 *  - the memory table (struct ratelimit_table): bounded, one per process,
 *    shared by every event loop; a mutex guards it because the loops may
 *    run as threads (one table, so one client's counts are the process's
 *    and not split per thread; each operation touches at most
 *    RATELIMIT_WAYS entries, so the lock is held for a few hundred ns).
 *  - Redis ([limits] store = redis://...): one EVAL per check (INCR and, at
 *    a key's first event, PEXPIRE of every key; ratelimit_redis.c), so
 *    several backstop instances share the counts. Each call has its own
 *    deadline ([limits] redis_timeout); a call that fails or is late is
 *    answered from the memory table, which counts every event in any case,
 *    so the fallback starts from this instance's own traffic. Mail is
 *    never refused because Redis is away.
 *
 * State is passed explicitly: struct ratelimit is one event loop's (its
 * Redis connection lives on that loop), the table it points to is shared.
 */
#ifndef RATELIMIT_H
#define RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct config;

enum ratelimit_event {
	RATELIMIT_CONN = 0,     /* a connection */
	RATELIMIT_MSG,          /* a MAIL command */
	RATELIMIT_RCPT,         /* a RCPT command */
	RATELIMIT_BOUNCE_RCPT,  /* a RCPT command in a null-sender transaction */
	RATELIMIT_EVENT_COUNT
};

/* ---- memory table ---- */

/* entries are looked up in sets of this many (set-associative) */
#define RATELIMIT_WAYS 8
#define RATELIMIT_KEY_MAX 72

struct ratelimit_table;

/* ratelimit_table_new - room for max_entries counters (at least
 * RATELIMIT_WAYS); NULL when out of memory. When a key's set is full, the
 * new key takes the place of an expired counter, else of the one whose
 * window started first (its window is the nearest to its end): under a
 * flood of distinct keys a counter can be forgotten early (the sets are
 * chosen by a keyed hash, so no client can aim at one), never one of
 * another key's counts. */
struct ratelimit_table *ratelimit_table_new(size_t max_entries);
void ratelimit_table_free(struct ratelimit_table *t);
/* ratelimit_table_hit - count one event of key at now_ms; returns the
 * count in the key's current window, this event included. */
unsigned long ratelimit_table_hit(struct ratelimit_table *t, const char *key, uint64_t now_ms,
    uint64_t window_ms);
/* ratelimit_table_used - counters in use (whether expired or not) */
size_t ratelimit_table_used(struct ratelimit_table *t);
size_t ratelimit_table_capacity(const struct ratelimit_table *t);

/* ratelimit_key - "EVENT:ip:ADDRESS" or "EVENT:net:NETWORK/PREFIX" for
 * the client at sa, the address masked to prefix4 or prefix6 (an
 * IPv4-mapped IPv6 address counts as IPv4); where is the address or
 * network alone (for replies and logs). 0, or -1 for another family. */
int ratelimit_key(char *key, size_t keylen, char *where, size_t wherelen, enum ratelimit_event ev,
    bool net, const struct sockaddr *sa, unsigned prefix4, unsigned prefix6);

/* ratelimit_limit_name - the [limits] key of an event's limit:
 * "conn_rate_per_ip", "bounce_rcpt_rate_per_net", ... */
const char *ratelimit_limit_name(enum ratelimit_event ev, bool net);
/* ratelimit_limit - that key's value under cfg (0 = off) */
unsigned long ratelimit_limit(const struct config *cfg, enum ratelimit_event ev, bool net);
/* ratelimit_any - is any rate limit on under cfg? */
bool ratelimit_any(const struct config *cfg);

/* ---- checks ---- */

struct ratelimit;

/* The answer to a check: over says whether a limit is exceeded; the rest
 * describes the first limit exceeded (or nothing when none). */
struct ratelimit_result {
	bool over;
	bool shared;                /* counted in Redis (false: memory table) */
	enum ratelimit_event event;
	const char *limit;          /* ratelimit_limit_name() */
	char where[64];             /* the address or network counted */
	unsigned long count;        /* in the window, this event included */
	unsigned long max;
	uint64_t window_ms;
};

typedef void (*ratelimit_cb)(void *arg, const struct ratelimit_result *r);

/* ratelimit_new - one loop's state over the shared table; the Redis
 * connection, if any, comes with ratelimit_configure. */
struct ratelimit *ratelimit_new(uv_loop_t *loop, struct ratelimit_table *table);
/* ratelimit_configure - follow cfg's [limits] store: connect to Redis,
 * reconnect elsewhere, or drop the connection (start-up and reload) */
void ratelimit_configure(struct ratelimit *rl, const struct config *cfg);
/* ratelimit_stop - drop the Redis connection and close the loop's handles
 * (the loop must run once more before ratelimit_free) */
void ratelimit_stop(struct ratelimit *rl);
void ratelimit_free(struct ratelimit *rl);

/*
 * ratelimit_check - count events[0..n) for the client at sa under cfg's
 * limits. Returns 1 when the answer is in *r already (memory store, every
 * limit off, or Redis not connected), or 0 when cb(arg, result) will be
 * called from the loop (Redis; at the latest after [limits]
 * redis_timeout, or synchronously from ratelimit_stop).
 */
int ratelimit_check(struct ratelimit *rl, const struct config *cfg, const enum ratelimit_event *events,
    size_t n, const struct sockaddr *sa, struct ratelimit_result *r, ratelimit_cb cb, void *arg);

/* ---- the Redis connection (ratelimit_redis.c) ---- */

struct ratelimit_redis;

/* rlredis_new - connect to host:port (an address), SELECT db, and
 * reconnect with backoff whenever the connection fails; NULL when out of
 * memory. */
struct ratelimit_redis *rlredis_new(uv_loop_t *loop, const char *host, unsigned port, unsigned db,
    uint64_t timeout_ms);
/* rlredis_close - drop the connection (pending calls are answered, as
 * failed, before it returns) and close the handles; frees r once they
 * are closed. */
void rlredis_close(struct ratelimit_redis *r);
bool rlredis_same(const struct ratelimit_redis *r, const char *host, unsigned port, unsigned db,
    uint64_t timeout_ms);
/* rlredis_ready - connected (commands would be sent now) */
bool rlredis_ready(const struct ratelimit_redis *r);
/* rlredis_why - why it is not ready (for the fallback's log line) */
const char *rlredis_why(const struct ratelimit_redis *r);

/* counts[i] of keys[i] after the increment, or ok false (error, lost
 * connection, deadline passed); called exactly once per call */
typedef void (*rlredis_cb)(void *arg, bool ok, const long long *counts, size_t n, const char *why);
/* rlredis_incr - one EVAL: INCR every key, PEXPIRE window_ms at a key's
 * first event. 0 when sent (cb comes later), -1 when not (cb is not
 * called). */
int rlredis_incr(struct ratelimit_redis *r, const char *const *keys, size_t n, uint64_t window_ms,
    rlredis_cb cb, void *arg);

#endif

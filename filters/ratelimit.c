/*
 * ratelimit - the counting (memory table), the keys and the checks;
 * filters/ratelimit.h says what the limits mean. The Redis connection is
 * in ratelimit_redis.c, the filter that applies the verdicts in
 * ratelimit_filter.c.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/ratelimit.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/siphash.h"

/* the fallback's log line: at most one per this many ms */
#define FALLBACK_LOG_INTERVAL_MS 60000
/* at most this many keys per check: two events (RCPT and its null-sender
 * count), each per address and per network */
#define CHECK_KEYS_MAX 4

struct ratelimit_entry {
	char key[RATELIMIT_KEY_MAX];
	uint64_t start_ms;          /* the window's start; 0 = unused */
	unsigned long count;
	uint64_t window_ms;
};

struct ratelimit_table {
	pthread_mutex_t lock;       /* the loops may be threads: see ratelimit.h */
	size_t nsets;
	size_t used;
	struct siphash_key key;     /* the set hash's secret key */
	struct ratelimit_entry *entries;   /* nsets * RATELIMIT_WAYS */
};

struct ratelimit {
	uv_loop_t *loop;
	struct ratelimit_table *table;
	struct ratelimit_redis *redis;     /* NULL: memory store */
	uint64_t fallback_logged_ms;       /* the last "redis unavailable" line */
	bool fallback_logged;
	bool fell_back;                    /* since the last answer from Redis */
};

struct ratelimit_table *ratelimit_table_new(size_t max_entries)
{
	struct ratelimit_table *t = calloc(1, sizeof *t);

	if (t == NULL)
		return NULL;
	t->nsets = max_entries / RATELIMIT_WAYS;
	if (t->nsets == 0)
		t->nsets = 1;
	/* a secret key: a client that could compute which keys share a set
	 * could pick its addresses (IPv6 /64s of its /48) to evict its own
	 * counters from the table */
	siphash_key_random(&t->key, t);
	/* calloc: pages of an idle table are never touched */
	t->entries = calloc(t->nsets * RATELIMIT_WAYS, sizeof *t->entries);
	if (t->entries == NULL || pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t->entries);
		free(t);
		return NULL;
	}
	return t;
}

void ratelimit_table_free(struct ratelimit_table *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->entries);
	free(t);
}

size_t ratelimit_table_capacity(const struct ratelimit_table *t)
{
	return t->nsets * RATELIMIT_WAYS;
}

size_t ratelimit_table_used(struct ratelimit_table *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->used;
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* key_hash - SipHash-2-4 of the key under the table's secret key */
static uint64_t key_hash(const struct ratelimit_table *t, const char *key)
{
	return siphash24(&t->key, key, strlen(key));
}

static bool entry_expired(const struct ratelimit_entry *e, uint64_t now_ms)
{
	return now_ms - e->start_ms >= e->window_ms;
}

/* entry_rank - which entry a new key takes first: an unused one (0), an
 * expired one (1), else the live one whose window started first (2) */
static int entry_rank(const struct ratelimit_entry *e, uint64_t now_ms)
{
	return e->start_ms == 0 ? 0 : entry_expired(e, now_ms) ? 1 : 2;
}

unsigned long ratelimit_table_hit(struct ratelimit_table *t, const char *key, uint64_t now_ms,
    uint64_t window_ms)
{
	struct ratelimit_entry *set, *e = NULL, *victim = NULL;
	unsigned long n;

	/* 0 marks an unused entry */
	if (now_ms == 0)
		now_ms = 1;
	pthread_mutex_lock(&t->lock);
	set = &t->entries[(key_hash(t, key) % t->nsets) * RATELIMIT_WAYS];
	for (size_t i = 0; i < RATELIMIT_WAYS; i++) {
		struct ratelimit_entry *c = &set[i];
		if (c->start_ms != 0 && strcmp(c->key, key) == 0) {
			e = c;
			break;
		}
		if (victim == NULL || entry_rank(c, now_ms) < entry_rank(victim, now_ms) ||
		    (entry_rank(c, now_ms) == entry_rank(victim, now_ms) && c->start_ms < victim->start_ms))
			victim = c;
	}
	if (e == NULL) {
		e = victim;
		if (e->start_ms == 0)
			t->used++;
		snprintf(e->key, sizeof e->key, "%s", key);
		e->start_ms = 0;
	}
	if (e->start_ms == 0 || entry_expired(e, now_ms) || e->window_ms != window_ms) {
		e->start_ms = now_ms;
		e->window_ms = window_ms;
		e->count = 0;
	}
	n = ++e->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static const char *const event_names[RATELIMIT_EVENT_COUNT] = {"conn", "msg", "rcpt", "bounce_rcpt"};

const char *ratelimit_limit_name(enum ratelimit_event ev, bool net)
{
	static const char *const names[RATELIMIT_EVENT_COUNT][2] = {
		{"conn_rate_per_ip", "conn_rate_per_net"},
		{"msg_rate_per_ip", "msg_rate_per_net"},
		{"rcpt_rate_per_ip", "rcpt_rate_per_net"},
		{"bounce_rcpt_rate_per_ip", "bounce_rcpt_rate_per_net"},
	};
	return (unsigned)ev < RATELIMIT_EVENT_COUNT ? names[ev][net] : "?";
}

unsigned long ratelimit_limit(const struct config *cfg, enum ratelimit_event ev, bool net)
{
	switch (ev) {
	case RATELIMIT_CONN:
		return net ? cfg->limits.conn_rate_per_net : cfg->limits.conn_rate_per_ip;
	case RATELIMIT_MSG:
		return net ? cfg->limits.msg_rate_per_net : cfg->limits.msg_rate_per_ip;
	case RATELIMIT_RCPT:
		return net ? cfg->limits.rcpt_rate_per_net : cfg->limits.rcpt_rate_per_ip;
	case RATELIMIT_BOUNCE_RCPT:
		return net ? cfg->limits.bounce_rcpt_rate_per_net : cfg->limits.bounce_rcpt_rate_per_ip;
	default:
		return 0;
	}
}

bool ratelimit_any(const struct config *cfg)
{
	for (int ev = 0; ev < RATELIMIT_EVENT_COUNT; ev++)
		if (ratelimit_limit(cfg, (enum ratelimit_event)ev, false) ||
		    ratelimit_limit(cfg, (enum ratelimit_event)ev, true))
			return true;
	return false;
}

static void mask_bytes(unsigned char *b, size_t len, unsigned prefix)
{
	for (size_t i = 0; i < len; i++) {
		if (prefix >= 8 * (i + 1))
			continue;
		b[i] = prefix <= 8 * i ? 0 : (unsigned char)(b[i] & (0xff << (8 - (prefix - 8 * i))));
	}
}

int ratelimit_key(char *key, size_t keylen, char *where, size_t wherelen, enum ratelimit_event ev,
    bool net, const struct sockaddr *sa, unsigned prefix4, unsigned prefix6)
{
	unsigned char b[16];
	char text[INET6_ADDRSTRLEN];
	unsigned prefix;
	int family;

	if ((unsigned)ev >= RATELIMIT_EVENT_COUNT)
		return -1;
	if (sa->sa_family == AF_INET) {
		memcpy(b, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(b, a6->s6_addr + 12, 4);
			family = AF_INET;
		} else {
			memcpy(b, a6->s6_addr, 16);
			family = AF_INET6;
		}
	} else {
		return -1;
	}
	prefix = family == AF_INET ? (prefix4 > 32 ? 32 : prefix4) : (prefix6 > 128 ? 128 : prefix6);
	mask_bytes(b, family == AF_INET ? 4 : 16, prefix);
	if (inet_ntop(family, b, text, sizeof text) == NULL)
		return -1;
	if (prefix == (family == AF_INET ? 32u : 128u))
		snprintf(where, wherelen, "%s", text);
	else
		snprintf(where, wherelen, "%s/%u", text, prefix);
	snprintf(key, keylen, "%s:%s:%s", event_names[ev], net ? "net" : "ip", where);
	return 0;
}

/* ---- checks ---- */

struct ratelimit *ratelimit_new(uv_loop_t *loop, struct ratelimit_table *table)
{
	struct ratelimit *rl = calloc(1, sizeof *rl);

	if (rl == NULL)
		return NULL;
	rl->loop = loop;
	rl->table = table;
	return rl;
}

void ratelimit_configure(struct ratelimit *rl, const struct config *cfg)
{
	const char *host = cfg->limits.redis_host;

	if (rl->redis != NULL && host[0] &&
	    rlredis_same(rl->redis, host, cfg->limits.redis_port, cfg->limits.redis_db, cfg->limits.redis_timeout))
		return;
	if (rl->redis != NULL) {
		rlredis_close(rl->redis);
		rl->redis = NULL;
	}
	if (host[0]) {
		rl->redis = rlredis_new(rl->loop, host, cfg->limits.redis_port, cfg->limits.redis_db,
		    cfg->limits.redis_timeout);
		if (rl->redis == NULL)
			log_error("limits: out of memory for the Redis connection; counting in memory");
	}
	rl->fell_back = false;
}

void ratelimit_stop(struct ratelimit *rl)
{
	if (rl != NULL && rl->redis != NULL) {
		rlredis_close(rl->redis);
		rl->redis = NULL;
	}
}

void ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	ratelimit_stop(rl);
	free(rl);
}

/* One check's keys and what they count. */
struct check {
	struct ratelimit *rl;
	size_t n;
	char keys[CHECK_KEYS_MAX][RATELIMIT_KEY_MAX];
	char where[CHECK_KEYS_MAX][64];
	enum ratelimit_event event[CHECK_KEYS_MAX];
	bool net[CHECK_KEYS_MAX];
	unsigned long max[CHECK_KEYS_MAX];
	unsigned long local[CHECK_KEYS_MAX];   /* the memory table's counts */
	uint64_t window_ms;
	ratelimit_cb cb;
	void *arg;
};

/* verdict - the first key over its limit */
static void verdict(const struct check *c, const unsigned long *counts, bool shared,
    struct ratelimit_result *r)
{
	memset(r, 0, sizeof *r);
	r->shared = shared;
	r->window_ms = c->window_ms;
	for (size_t i = 0; i < c->n; i++) {
		if (counts[i] <= c->max[i])
			continue;
		r->over = true;
		r->event = c->event[i];
		r->limit = ratelimit_limit_name(c->event[i], c->net[i]);
		snprintf(r->where, sizeof r->where, "%s", c->where[i]);
		r->count = counts[i];
		r->max = c->max[i];
		return;
	}
}

static void fallback_log(struct ratelimit *rl, const char *why)
{
	uint64_t now = uv_now(rl->loop);

	rl->fell_back = true;
	if (rl->fallback_logged && now - rl->fallback_logged_ms < FALLBACK_LOG_INTERVAL_MS)
		return;
	rl->fallback_logged = true;
	rl->fallback_logged_ms = now;
	log_warn("limits: redis unavailable, using local counters (%s); mail is not refused "
	    "for it, the counts are this instance's only until Redis answers again", why);
}

static void redis_answered(void *arg, bool ok, const long long *counts, size_t n, const char *why)
{
	struct check *c = arg;
	struct ratelimit_result r;
	unsigned long shared[CHECK_KEYS_MAX];

	if (ok && n == c->n) {
		for (size_t i = 0; i < n; i++)
			shared[i] = counts[i] < 0 ? 0 : (unsigned long)counts[i];
		if (c->rl->fell_back) {
			c->rl->fell_back = false;
			log_info("limits: redis answers again; counting in Redis");
		}
		verdict(c, shared, true, &r);
	} else {
		fallback_log(c->rl, ok ? "unexpected reply to the counting script" : why);
		verdict(c, c->local, false, &r);
	}
	c->cb(c->arg, &r);
	free(c);
}

int ratelimit_check(struct ratelimit *rl, const struct config *cfg, const enum ratelimit_event *events,
    size_t n, const struct sockaddr *sa, struct ratelimit_result *r, ratelimit_cb cb, void *arg)
{
	struct check local, *c = &local;
	const char *keys[CHECK_KEYS_MAX];
	uint64_t now = uv_now(rl->loop);

	memset(c, 0, sizeof *c);
	c->rl = rl;
	c->window_ms = cfg->limits.rate_window;
	for (size_t e = 0; e < n; e++) {
		for (int net = 0; net <= 1; net++) {
			unsigned long max = ratelimit_limit(cfg, events[e], net);
			size_t i = c->n;
			if (max == 0 || i >= CHECK_KEYS_MAX)
				continue;
			if (ratelimit_key(c->keys[i], sizeof c->keys[i], c->where[i], sizeof c->where[i], events[e],
			    net, sa, net ? (unsigned)cfg->limits.net_ipv4_prefix : (unsigned)cfg->limits.ipv4_prefix,
			    net ? (unsigned)cfg->limits.net_ipv6_prefix : (unsigned)cfg->limits.ipv6_prefix) < 0)
				continue;
			c->event[i] = events[e];
			c->net[i] = net;
			c->max[i] = max;
			/* always counted here too: the fallback's starting point */
			c->local[i] = ratelimit_table_hit(rl->table, c->keys[i], now, c->window_ms);
			keys[i] = c->keys[i];
			c->n++;
		}
	}
	if (c->n == 0 || rl->redis == NULL) {
		verdict(c, c->local, false, r);
		return 1;
	}
	if (!rlredis_ready(rl->redis)) {
		fallback_log(rl, rlredis_why(rl->redis));
		verdict(c, c->local, false, r);
		return 1;
	}
	if ((c = malloc(sizeof *c)) == NULL) {
		verdict(&local, local.local, false, r);
		return 1;
	}
	*c = local;
	c->cb = cb;
	c->arg = arg;
	/* keys[] point into local: rlredis_incr copies them into its command */
	if (rlredis_incr(rl->redis, keys, c->n, c->window_ms, redis_answered, c) < 0) {
		free(c);
		fallback_log(rl, rlredis_why(rl->redis));
		verdict(&local, local.local, false, r);
		return 1;
	}
	return 0;
}

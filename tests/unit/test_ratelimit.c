/* test_ratelimit - the rate limits' counting (filters/ratelimit.h): the
 * window, the bounded table and its eviction, the keys, a check with the
 * memory store, the table under two threads; and the [limits] store
 * parser (config_redis_url_parse) with hostile input. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "filters/ratelimit.h"
#include "proxy/config.h"

static void test_window(void)
{
	struct ratelimit_table *t = ratelimit_table_new(1000);

	CHECK(t != NULL);
	CHECK_INT(ratelimit_table_hit(t, "msg:ip:192.0.2.1", 1000, 60000), 1);
	CHECK_INT(ratelimit_table_hit(t, "msg:ip:192.0.2.1", 1000, 60000), 2);
	CHECK_INT(ratelimit_table_hit(t, "msg:ip:192.0.2.2", 1000, 60000), 1);   /* another key */
	CHECK_INT(ratelimit_table_hit(t, "msg:ip:192.0.2.1", 60999, 60000), 3);  /* last ms of the window */
	CHECK_INT(ratelimit_table_hit(t, "msg:ip:192.0.2.1", 61000, 60000), 1);  /* a new window */
	CHECK_INT(ratelimit_table_hit(t, "msg:ip:192.0.2.1", 61001, 60000), 2);
	/* the window starts at the key's first event, not on a clock grid */
	CHECK_INT(ratelimit_table_hit(t, "msg:ip:192.0.2.1", 120999, 60000), 3);
	/* a different window length (a reload) starts over */
	CHECK_INT(ratelimit_table_hit(t, "msg:ip:192.0.2.1", 121000, 10000), 1);
	/* time 0 is no special case for the caller */
	CHECK_INT(ratelimit_table_hit(t, "conn:ip:192.0.2.9", 0, 1000), 1);
	CHECK_INT(ratelimit_table_hit(t, "conn:ip:192.0.2.9", 0, 1000), 2);
	ratelimit_table_free(t);
}

static void test_bounded(void)
{
	struct ratelimit_table *t = ratelimit_table_new(64);
	char key[64];

	CHECK_INT(ratelimit_table_capacity(t), 64);
	unsigned long counted = 0;
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof key, "rcpt:ip:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		counted += ratelimit_table_hit(t, key, 5, 60000);
	}
	CHECK_INT(counted, 100000);   /* each a new key, counted once */
	CHECK(ratelimit_table_used(t) <= 64);
	CHECK_INT(ratelimit_table_used(t), 64);
	ratelimit_table_free(t);
	/* a size under one set is one set */
	t = ratelimit_table_new(1);
	CHECK_INT(ratelimit_table_capacity(t), RATELIMIT_WAYS);
	ratelimit_table_free(t);
}

static void test_eviction(void)
{
	/* one set of RATELIMIT_WAYS: every key competes for it */
	struct ratelimit_table *t = ratelimit_table_new(RATELIMIT_WAYS);
	char key[32];

	/* k0: the oldest window, but a long one, still running at 20 */
	CHECK_INT(ratelimit_table_hit(t, "k0", 1, 100000), 1);
	for (int i = 1; i < RATELIMIT_WAYS; i++) {
		snprintf(key, sizeof key, "k%d", i);
		CHECK_INT(ratelimit_table_hit(t, key, (uint64_t)(1 + i), 10), 1);  /* over at 11..17 */
	}
	/* a new key takes an expired counter, not k0's */
	CHECK_INT(ratelimit_table_hit(t, "new", 20, 100000), 1);
	CHECK_INT(ratelimit_table_hit(t, "k0", 21, 100000), 2);
	/* with no expired counter, the one whose window started first goes */
	t = (ratelimit_table_free(t), ratelimit_table_new(RATELIMIT_WAYS));
	for (int i = 0; i < RATELIMIT_WAYS; i++) {
		snprintf(key, sizeof key, "k%d", i);
		CHECK_INT(ratelimit_table_hit(t, key, (uint64_t)(1 + i), 100000), 1);
		CHECK_INT(ratelimit_table_hit(t, key, (uint64_t)(1 + i), 100000), 2);
	}
	CHECK_INT(ratelimit_table_hit(t, "new", 50, 100000), 1);
	CHECK_INT(ratelimit_table_hit(t, "k1", 51, 100000), 3);   /* kept */
	CHECK_INT(ratelimit_table_hit(t, "k7", 51, 100000), 3);   /* kept */
	CHECK_INT(ratelimit_table_hit(t, "k0", 52, 100000), 1);   /* was the oldest: forgotten */
	ratelimit_table_free(t);
}

static void sa4(struct sockaddr_storage *ss, const char *ip)
{
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof *ss);
	a->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &a->sin_addr);
}

static void sa6(struct sockaddr_storage *ss, const char *ip)
{
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	a->sin6_family = AF_INET6;
	inet_pton(AF_INET6, ip, &a->sin6_addr);
}

static void test_keys(void)
{
	struct sockaddr_storage ss;
	char key[RATELIMIT_KEY_MAX], where[64];

	sa4(&ss, "198.51.100.77");
	CHECK_INT(ratelimit_key(key, sizeof key, where, sizeof where, RATELIMIT_CONN, false,
	    (struct sockaddr *)&ss, 32, 64), 0);
	CHECK_STR(key, "conn:ip:198.51.100.77");
	CHECK_STR(where, "198.51.100.77");
	CHECK_INT(ratelimit_key(key, sizeof key, where, sizeof where, RATELIMIT_MSG, true,
	    (struct sockaddr *)&ss, 24, 48), 0);
	CHECK_STR(key, "msg:net:198.51.100.0/24");
	CHECK_STR(where, "198.51.100.0/24");
	CHECK_INT(ratelimit_key(key, sizeof key, where, sizeof where, RATELIMIT_RCPT, true,
	    (struct sockaddr *)&ss, 13, 48), 0);
	CHECK_STR(where, "198.48.0.0/13");
	/* an IPv4-mapped client counts as IPv4 */
	sa6(&ss, "::ffff:198.51.100.77");
	CHECK_INT(ratelimit_key(key, sizeof key, where, sizeof where, RATELIMIT_BOUNCE_RCPT, true,
	    (struct sockaddr *)&ss, 24, 48), 0);
	CHECK_STR(key, "bounce_rcpt:net:198.51.100.0/24");
	sa6(&ss, "2001:db8:1:2:3:4:5:6");
	CHECK_INT(ratelimit_key(key, sizeof key, where, sizeof where, RATELIMIT_CONN, false,
	    (struct sockaddr *)&ss, 32, 64), 0);
	CHECK_STR(key, "conn:ip:2001:db8:1:2::/64");
	CHECK_INT(ratelimit_key(key, sizeof key, where, sizeof where, RATELIMIT_CONN, true,
	    (struct sockaddr *)&ss, 32, 48), 0);
	CHECK_STR(where, "2001:db8:1::/48");
	CHECK_INT(ratelimit_key(key, sizeof key, where, sizeof where, RATELIMIT_CONN, false,
	    (struct sockaddr *)&ss, 32, 128), 0);
	CHECK_STR(where, "2001:db8:1:2:3:4:5:6");
	/* the longest key fits */
	sa6(&ss, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	CHECK_INT(ratelimit_key(key, sizeof key, where, sizeof where, RATELIMIT_BOUNCE_RCPT, true,
	    (struct sockaddr *)&ss, 32, 127), 0);
	CHECK_STR(key, "bounce_rcpt:net:ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127");
	/* out-of-range prefixes are clamped, other families refused */
	sa4(&ss, "192.0.2.1");
	CHECK_INT(ratelimit_key(key, sizeof key, where, sizeof where, RATELIMIT_CONN, false,
	    (struct sockaddr *)&ss, 99, 999), 0);
	CHECK_STR(where, "192.0.2.1");
	ss.ss_family = AF_UNIX;
	CHECK_INT(ratelimit_key(key, sizeof key, where, sizeof where, RATELIMIT_CONN, false,
	    (struct sockaddr *)&ss, 32, 64), -1);
	sa4(&ss, "192.0.2.1");
	CHECK_INT(ratelimit_key(key, sizeof key, where, sizeof where, RATELIMIT_EVENT_COUNT, false,
	    (struct sockaddr *)&ss, 32, 64), -1);
	CHECK_STR(ratelimit_limit_name(RATELIMIT_BOUNCE_RCPT, true), "bounce_rcpt_rate_per_net");
	CHECK_STR(ratelimit_limit_name(RATELIMIT_CONN, false), "conn_rate_per_ip");
}

static void never(void *arg, const struct ratelimit_result *r)
{
	(void)arg;
	(void)r;
	CHECK(!"the memory store answers synchronously");
}

static void test_check_memory(void)
{
	struct config *cfg = config_defaults();
	struct ratelimit_table *t = ratelimit_table_new(1000);
	struct ratelimit *rl = ratelimit_new(uv_default_loop(), t);
	struct sockaddr_storage a, b, other;
	struct ratelimit_result r;
	enum ratelimit_event msg = RATELIMIT_MSG;
	enum ratelimit_event rcpt[] = {RATELIMIT_RCPT, RATELIMIT_BOUNCE_RCPT};

	CHECK(!ratelimit_any(cfg));
	sa4(&a, "203.0.113.1");
	sa4(&b, "203.0.113.2");
	sa4(&other, "203.0.114.1");
	/* every limit off: nothing counted, nothing over */
	CHECK_INT(ratelimit_check(rl, cfg, &msg, 1, (struct sockaddr *)&a, &r, never, NULL), 1);
	CHECK(!r.over);
	CHECK_INT(ratelimit_table_used(t), 0);

	cfg->limits.msg_rate_per_ip = 2;
	cfg->limits.msg_rate_per_net = 3;
	cfg->limits.rcpt_rate_per_ip = 100;
	cfg->limits.bounce_rcpt_rate_per_ip = 1;
	CHECK(ratelimit_any(cfg));
	ratelimit_configure(rl, cfg);   /* store = memory: no connection */
	CHECK_INT(ratelimit_check(rl, cfg, &msg, 1, (struct sockaddr *)&a, &r, never, NULL), 1);
	CHECK(!r.over);
	CHECK_INT(ratelimit_check(rl, cfg, &msg, 1, (struct sockaddr *)&a, &r, never, NULL), 1);
	CHECK(!r.over);
	CHECK_INT(ratelimit_check(rl, cfg, &msg, 1, (struct sockaddr *)&a, &r, never, NULL), 1);
	CHECK(r.over);
	CHECK_STR(r.limit, "msg_rate_per_ip");
	CHECK_STR(r.where, "203.0.113.1");
	CHECK_INT(r.count, 3);
	CHECK_INT(r.max, 2);
	CHECK_INT(r.window_ms, 60000);
	CHECK(!r.shared);
	/* b: its own address is fine, its /24 has 4 */
	CHECK_INT(ratelimit_check(rl, cfg, &msg, 1, (struct sockaddr *)&b, &r, never, NULL), 1);
	CHECK(r.over);
	CHECK_STR(r.limit, "msg_rate_per_net");
	CHECK_STR(r.where, "203.0.113.0/24");
	CHECK_INT(r.count, 4);
	CHECK_INT(ratelimit_check(rl, cfg, &msg, 1, (struct sockaddr *)&other, &r, never, NULL), 1);
	CHECK(!r.over);
	/* a null-sender RCPT counts as a recipient and as a bounce recipient */
	CHECK_INT(ratelimit_check(rl, cfg, rcpt, 2, (struct sockaddr *)&a, &r, never, NULL), 1);
	CHECK(!r.over);
	CHECK_INT(ratelimit_check(rl, cfg, rcpt, 2, (struct sockaddr *)&a, &r, never, NULL), 1);
	CHECK(r.over);
	CHECK_STR(r.limit, "bounce_rcpt_rate_per_ip");
	CHECK_INT(r.event, RATELIMIT_BOUNCE_RCPT);
	/* an ordinary one only as a recipient */
	CHECK_INT(ratelimit_check(rl, cfg, rcpt, 1, (struct sockaddr *)&a, &r, never, NULL), 1);
	CHECK(!r.over);
	ratelimit_free(rl);
	ratelimit_table_free(t);
	config_unref(cfg);
}

/* two threads on one key: no count lost (the table's lock) */
#define THREAD_HITS 200000
static void *hammer(void *arg)
{
	for (int i = 0; i < THREAD_HITS; i++)
		ratelimit_table_hit(arg, "conn:ip:192.0.2.50", 10, 1000000);
	return NULL;
}

static void test_threads(void)
{
	struct ratelimit_table *t = ratelimit_table_new(1000);
	pthread_t a, b;

	pthread_create(&a, NULL, hammer, t);
	pthread_create(&b, NULL, hammer, t);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	CHECK_INT(ratelimit_table_hit(t, "conn:ip:192.0.2.50", 10, 1000000), 2 * THREAD_HITS + 1);
	ratelimit_table_free(t);
}

static int url(const char *s, char *host, unsigned *port, unsigned *db)
{
	size_t len = strlen(s);
	char *g = guarded_copy(s, len + 1);   /* a read past the NUL faults */
	int rc = config_redis_url_parse(g, host, INET6_ADDRSTRLEN, port, db);
	guarded_free(g, len + 1);
	return rc;
}

static void test_store_url(void)
{
	char host[INET6_ADDRSTRLEN];
	unsigned port, db;
	static const char *const bad[] = {
		"", "memory ", "redis://", "redis:/127.0.0.1:6379", "REDIS://127.0.0.1:6379", "rediss://127.0.0.1:6379",
		"redis://localhost:6379", "redis://127.0.0.1", "redis://127.0.0.1:", "redis://127.0.0.1:0",
		"redis://127.0.0.1:65536", "redis://127.0.0.1:99999999999999999999999", "redis://127.0.0.1:+5",
		"redis://127.0.0.1: 5", "redis://127.0.0.1:-1", "redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/x",
		"redis://127.0.0.1:6379/-1", "redis://127.0.0.1:6379/1/2", "redis://127.0.0.1:6379 ",
		"redis://127.0.0.1:6379/99999999999999999999", "redis://127.0.0.1:6379/1000001",
		"redis://:6379", "redis://::1:6379", "redis://[::1]", "redis://[::1:6379", "redis://[::1]6379",
		"redis://[127.0.0.1]:6379", "redis://[]:6379", "redis://256.0.0.1:6379", "redis://1.2.3:6379",
		"redis://[fe80::1%eth0]:6379", "redis://user@127.0.0.1:6379",
		"redis://[1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb]:6379",
	};

	CHECK_INT(url("redis://127.0.0.1:6379", host, &port, &db), 0);
	CHECK_STR(host, "127.0.0.1");
	CHECK_INT(port, 6379);
	CHECK_INT(db, 0);
	CHECK_INT(url("redis://[::1]:16379/2", host, &port, &db), 0);
	CHECK_STR(host, "::1");
	CHECK_INT(port, 16379);
	CHECK_INT(db, 2);
	CHECK_INT(url("redis://192.0.2.1:1/1000000", host, &port, &db), 0);
	CHECK_INT(db, 1000000);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = url(bad[i], host, &port, &db);
		if (rc != -1)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK_INT(rc, -1);
	}
	/* a host that does not fit the caller's buffer */
	CHECK_INT(config_redis_url_parse("redis://[1111:2222:3333:4444:5555:6666:7777:8888]:1", host, 8, &port, &db), -1);
}

/* the public FNV-1a the table once used for its sets */
static uint64_t public_fnv(const char *key)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	return h;
}

static void test_targeted_eviction(void)
{
	/* review12: an IPv6 client with a /48 rotates /64s chosen offline so
	 * that their keys fall into its own per-network key's set: with a
	 * public hash, RATELIMIT_WAYS connections reset its count (an escape
	 * from *_rate_per_net). The set must not be predictable. */
	struct ratelimit_table *t = ratelimit_table_new(100000);
	const char *victim = "msg:net:2001:db8:1::/48";
	size_t nsets = ratelimit_table_capacity(t) / RATELIMIT_WAYS;
	uint64_t want = public_fnv(victim) % nsets;
	char key[RATELIMIT_KEY_MAX];
	int found = 0;

	for (int i = 0; i < 10; i++)
		ratelimit_table_hit(t, victim, 1000 + (uint64_t)i, 3600000);
	/* each of its 65536 /64s makes four per-address keys (conn, msg,
	 * rcpt, bounce_rcpt): about 20 of them share the victim's set */
	for (unsigned x = 0; x < 4 * 0x10000 && found < 2 * RATELIMIT_WAYS; x++) {
		static const char *const ev[] = {"conn", "msg", "rcpt", "bounce_rcpt"};
		snprintf(key, sizeof key, "%s:ip:2001:db8:1:%x::/64", ev[x & 3], x >> 2);
		if (public_fnv(key) % nsets != want)
			continue;
		found++;
		ratelimit_table_hit(t, key, 2000 + (uint64_t)found, 3600000);
	}
	CHECK(found == 2 * RATELIMIT_WAYS);
	CHECK_INT(ratelimit_table_hit(t, victim, 5000, 3600000), 11);
	ratelimit_table_free(t);
}

int main(void)
{
	test_targeted_eviction();
	test_window();
	test_bounded();
	test_eviction();
	test_keys();
	test_check_memory();
	test_threads();
	test_store_url();
	return check_finish("test_ratelimit");
}

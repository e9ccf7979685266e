/*
 * test_dns_cache - the loop thread's DNS answer cache (proxy/dns_cache.c):
 * what is kept and for how long (an injected clock), negative answers,
 * failures never kept, the entry and size bounds, least-recently-used
 * eviction, and hostile names (long, 8-bit, case, final dot).
 */
#include <stdlib.h>
#include <string.h>

#include "proxy/dns_cache.h"
#include "tests/unit/check.h"

/* answer_a - DNS_OK with one A record 192.0.2.last, ttl seconds */
static struct dns_answer answer_a(unsigned char last, uint32_t ttl)
{
	struct dns_answer a = {.status = DNS_OK, .rcode = 0, .ttl = ttl, .n = 1};

	a.rr = calloc(1, sizeof *a.rr);
	a.rr[0].data = malloc(4);
	memcpy(a.rr[0].data, (unsigned char[]){192, 0, 2, last}, 4);
	a.rr[0].len = 4;
	return a;
}

static struct dns_answer answer_txt(const char *text, uint32_t ttl)
{
	struct dns_answer a = {.status = DNS_OK, .rcode = 0, .ttl = ttl, .n = 1};
	size_t len = strlen(text);

	a.rr = calloc(1, sizeof *a.rr);
	a.rr[0].data = malloc(len + 1);
	a.rr[0].data[0] = (unsigned char)(len > 255 ? 255 : len);
	memcpy(a.rr[0].data + 1, text, len);
	a.rr[0].len = len + 1;
	a.rr[0].text = strdup(text);
	a.rr[0].text_len = len;
	return a;
}

/* last_octet - the kept A answer's last byte, -1 when none is kept */
static int last_octet(struct dns_cache *c, int type, const char *name, uint64_t now)
{
	struct dns_answer got;
	int v;

	if (!dns_cache_get(c, type, name, now, &got))
		return -1;
	v = got.status == DNS_OK && got.n == 1 && got.rr[0].len == 4 ? got.rr[0].data[3] : -2;
	dns_answer_free(&got);
	return v;
}

static void test_ttl(void)
{
	struct dns_cache *c = dns_cache_new(100, 300000);
	struct dns_answer a = answer_a(7, 10), got;

	CHECK(dns_cache_put(c, DNS_T_A, "mail.example.org", &a, 1000));
	CHECK(dns_cache_get(c, DNS_T_A, "mail.example.org", 1000, &got));
	CHECK_INT(got.status, DNS_OK);
	CHECK_INT(got.n, 1);
	CHECK_INT(got.ttl, 10);
	CHECK(got.rr != a.rr && got.rr[0].data != a.rr[0].data);   /* a copy */
	dns_answer_free(&got);
	/* the TTL counts down */
	CHECK(dns_cache_get(c, DNS_T_A, "mail.example.org", 5500, &got));
	CHECK_INT(got.ttl, 5);
	dns_answer_free(&got);
	CHECK_INT(last_octet(c, DNS_T_A, "mail.example.org", 10999), 7);
	/* expired at TTL: gone, and dropped */
	CHECK_INT(last_octet(c, DNS_T_A, "mail.example.org", 11000), -1);
	CHECK_INT(dns_cache_entries(c), 0);
	/* another type or name is another key */
	CHECK(dns_cache_put(c, DNS_T_A, "mail.example.org", &a, 20000));
	CHECK_INT(last_octet(c, DNS_T_AAAA, "mail.example.org", 20000), -1);
	CHECK_INT(last_octet(c, DNS_T_A, "mail.example.com", 20000), -1);
	CHECK_INT(last_octet(c, DNS_T_A, "ail.example.org", 20000), -1);
	/* a new answer replaces the old one */
	dns_answer_free(&a);
	a = answer_a(8, 10);
	CHECK(dns_cache_put(c, DNS_T_A, "mail.example.org", &a, 21000));
	CHECK_INT(last_octet(c, DNS_T_A, "mail.example.org", 21000), 8);
	CHECK_INT(dns_cache_entries(c), 1);
	/* TTL 0: never kept */
	a.ttl = 0;
	CHECK(!dns_cache_put(c, DNS_T_A, "zero.example.org", &a, 21000));
	CHECK_INT(last_octet(c, DNS_T_A, "zero.example.org", 21000), -1);
	/* a long TTL is capped by max_ttl (300 s) */
	a.ttl = 86400;
	CHECK(dns_cache_put(c, DNS_T_A, "day.example.org", &a, 0));
	CHECK_INT(last_octet(c, DNS_T_A, "day.example.org", 299999), 8);
	CHECK_INT(last_octet(c, DNS_T_A, "day.example.org", 300000), -1);
	dns_answer_free(&a);
	dns_cache_free(c);

	/* no table, no cache */
	CHECK(dns_cache_new(0, 300000) == NULL);
	a = answer_a(1, 10);
	CHECK(!dns_cache_put(NULL, DNS_T_A, "x.example.org", &a, 0));
	CHECK(!dns_cache_get(NULL, DNS_T_A, "x.example.org", 0, &got));
	c = dns_cache_new(10, 0);                 /* cache_max_ttl = 0 */
	CHECK(!dns_cache_put(c, DNS_T_A, "x.example.org", &a, 0));
	dns_cache_free(c);
	dns_answer_free(&a);
}

static void test_negative_and_failures(void)
{
	struct dns_cache *c = dns_cache_new(100, 300000);
	struct dns_answer nx = {.status = DNS_NXDOMAIN, .rcode = 3, .ttl = 30};
	struct dns_answer nodata = {.status = DNS_NODATA, .rcode = 0, .ttl = 20};
	struct dns_answer noneg = {.status = DNS_NXDOMAIN, .rcode = 3, .ttl = 0};  /* no SOA */
	struct dns_answer got;
	enum dns_status failures[] = {DNS_SERVFAIL, DNS_TIMEOUT, DNS_ERROR};

	CHECK(dns_cache_put(c, DNS_T_PTR, "1.2.0.192.in-addr.arpa", &nx, 0));
	CHECK(dns_cache_get(c, DNS_T_PTR, "1.2.0.192.in-addr.arpa", 29999, &got));
	CHECK_INT(got.status, DNS_NXDOMAIN);
	CHECK_INT(got.rcode, 3);
	CHECK_INT(got.n, 0);
	dns_answer_free(&got);
	CHECK(!dns_cache_get(c, DNS_T_PTR, "1.2.0.192.in-addr.arpa", 30000, &got));
	CHECK(dns_cache_put(c, DNS_T_TXT, "_dmarc.example.org", &nodata, 0));
	CHECK(dns_cache_get(c, DNS_T_TXT, "_dmarc.example.org", 19999, &got));
	CHECK_INT(got.status, DNS_NODATA);
	dns_answer_free(&got);
	CHECK(!dns_cache_get(c, DNS_T_TXT, "_dmarc.example.org", 20000, &got));
	CHECK(!dns_cache_put(c, DNS_T_PTR, "2.2.0.192.in-addr.arpa", &noneg, 0));
	for (size_t i = 0; i < sizeof failures / sizeof failures[0]; i++) {
		struct dns_answer f = {.status = failures[i], .rcode = 2, .ttl = 60};
		CHECK(!dns_cache_put(c, DNS_T_A, "fail.example.org", &f, 0));
		CHECK(!dns_cache_get(c, DNS_T_A, "fail.example.org", 0, &got));
	}
	/* a failure does not drop what is kept either: it is not stored at all */
	CHECK_INT(dns_cache_entries(c), 0);
	dns_cache_free(c);
}

static void test_bounds(void)
{
	struct dns_cache *c = dns_cache_new(3, 300000);
	struct dns_answer a = answer_a(1, 60), got;
	char big[DNS_CACHE_ENTRY_MAX + 1];
	struct dns_answer t;

	CHECK(dns_cache_put(c, DNS_T_A, "a.example.org", &a, 0));
	CHECK(dns_cache_put(c, DNS_T_A, "b.example.org", &a, 0));
	CHECK(dns_cache_put(c, DNS_T_A, "c.example.org", &a, 0));
	CHECK_INT(dns_cache_entries(c), 3);
	/* a is used: b is now the least recently used and goes first */
	CHECK_INT(last_octet(c, DNS_T_A, "a.example.org", 1), 1);
	CHECK(dns_cache_put(c, DNS_T_A, "d.example.org", &a, 2));
	CHECK_INT(dns_cache_entries(c), 3);
	CHECK_INT(last_octet(c, DNS_T_A, "b.example.org", 3), -1);
	CHECK_INT(last_octet(c, DNS_T_A, "a.example.org", 3), 1);
	CHECK_INT(last_octet(c, DNS_T_A, "c.example.org", 3), 1);
	CHECK_INT(last_octet(c, DNS_T_A, "d.example.org", 3), 1);
	/* then c, the least recently used */
	CHECK_INT(last_octet(c, DNS_T_A, "a.example.org", 4), 1);
	CHECK_INT(last_octet(c, DNS_T_A, "d.example.org", 4), 1);
	CHECK(dns_cache_put(c, DNS_T_A, "e.example.org", &a, 5));
	CHECK_INT(last_octet(c, DNS_T_A, "c.example.org", 6), -1);
	CHECK_INT(dns_cache_entries(c), 3);
	dns_answer_free(&a);

	/* an answer over the size bound is not kept; one just under it is */
	memset(big, 'v', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	t = answer_txt(big, 60);
	CHECK(!dns_cache_put(c, DNS_T_TXT, "big.example.org", &t, 0));
	dns_answer_free(&t);
	big[(DNS_CACHE_ENTRY_MAX - sizeof(struct dns_rr) - 2) / 2] = '\0';
	t = answer_txt(big, 60);
	CHECK(dns_cache_put(c, DNS_T_TXT, "big.example.org", &t, 0));
	CHECK(dns_cache_get(c, DNS_T_TXT, "big.example.org", 0, &got));
	CHECK_INT(got.n, 1);
	CHECK(got.rr[0].text != NULL && strcmp(got.rr[0].text, big) == 0);
	CHECK_INT(got.rr[0].text_len, strlen(big));
	dns_answer_free(&got);
	dns_answer_free(&t);
	dns_cache_free(c);

	/* many names through a small table: it stays at its bound */
	c = dns_cache_new(50, 300000);
	a = answer_a(9, 60);
	for (int i = 0; i < 5000; i++) {
		char name[64];
		snprintf(name, sizeof name, "h%d.example.org", i);
		dns_cache_put(c, DNS_T_A, name, &a, (uint64_t)i);
	}
	CHECK_INT(dns_cache_entries(c), 50);
	CHECK_INT(last_octet(c, DNS_T_A, "h4999.example.org", 5000), 9);
	CHECK_INT(last_octet(c, DNS_T_A, "h4950.example.org", 5000), 9);
	CHECK_INT(last_octet(c, DNS_T_A, "h4949.example.org", 5000), -1);
	dns_answer_free(&a);
	dns_cache_free(c);
}

static void test_hostile_names(void)
{
	struct dns_cache *c = dns_cache_new(100, 300000);
	struct dns_answer a = answer_a(3, 60), b = answer_a(4, 60);
	char longname[DNS_CACHE_NAME_MAX + 2];

	/* case: ASCII letters fold, both ways */
	CHECK(dns_cache_put(c, DNS_T_A, "MiXeD.Example.ORG", &a, 0));
	CHECK_INT(last_octet(c, DNS_T_A, "mixed.example.org", 0), 3);
	CHECK_INT(last_octet(c, DNS_T_A, "MIXED.EXAMPLE.ORG", 0), 3);
	/* a final dot is the same absolute name */
	CHECK_INT(last_octet(c, DNS_T_A, "mixed.example.org.", 0), 3);
	CHECK_INT(last_octet(c, DNS_T_A, "mixed.example.org..", 0), -1);
	/* 8-bit bytes compare exactly (no locale folding): \xC4 and \xE4 differ */
	CHECK(dns_cache_put(c, DNS_T_A, "\xC4.example.org", &a, 0));
	CHECK(dns_cache_put(c, DNS_T_A, "\xE4.example.org", &b, 0));
	CHECK_INT(last_octet(c, DNS_T_A, "\xC4.example.org", 0), 3);
	CHECK_INT(last_octet(c, DNS_T_A, "\xE4.example.org", 0), 4);
	CHECK_INT(last_octet(c, DNS_T_A, "\xC4.EXAMPLE.org", 0), 3);
	/* '@' and '[' sit next to 'A' and 'Z': not folded */
	CHECK(dns_cache_put(c, DNS_T_A, "@[.example.org", &a, 0));
	CHECK_INT(last_octet(c, DNS_T_A, "`{.example.org", 0), -1);
	CHECK_INT(last_octet(c, DNS_T_A, "@[.example.org", 0), 3);
	/* long: at the limit kept, past it not (and no overflow: ASan) */
	memset(longname, 'x', sizeof longname);
	longname[DNS_CACHE_NAME_MAX] = '\0';
	CHECK(dns_cache_put(c, DNS_T_A, longname, &a, 0));
	CHECK_INT(last_octet(c, DNS_T_A, longname, 0), 3);
	longname[DNS_CACHE_NAME_MAX] = 'x';
	longname[DNS_CACHE_NAME_MAX + 1] = '\0';
	CHECK(!dns_cache_put(c, DNS_T_A, longname, &a, 0));
	CHECK_INT(last_octet(c, DNS_T_A, longname, 0), -1);
	/* with a final dot, one more byte is the same name */
	longname[DNS_CACHE_NAME_MAX] = '.';
	CHECK_INT(last_octet(c, DNS_T_A, longname, 0), 3);
	/* empty, the root */
	CHECK(!dns_cache_put(c, DNS_T_A, "", &a, 0));
	CHECK(dns_cache_put(c, DNS_T_NS, ".", &a, 0));
	CHECK_INT(last_octet(c, DNS_T_NS, ".", 0), 3);
	CHECK(!dns_cache_put(c, DNS_T_A, NULL, &a, 0));
	dns_answer_free(&a);
	dns_answer_free(&b);
	dns_cache_free(c);
}

/* answers put cold (a worker's SPF lookups, names the sender chose) evict
 * each other, not the entries in use; one that is found again is in use */
static void test_cold(void)
{
	struct dns_cache *c = dns_cache_new(4, 300000);
	struct dns_answer hot = answer_a(1, 60), cold = answer_a(2, 60);

	CHECK(dns_cache_put(c, DNS_T_TXT, "sel._domainkey.example.org", &hot, 0));
	CHECK(dns_cache_put(c, DNS_T_TXT, "_dmarc.example.org", &hot, 0));
	for (int i = 0; i < 100; i++) {
		char name[64];
		snprintf(name, sizeof name, "i%d.spf.example.net", i);
		CHECK(dns_cache_put_cold(c, DNS_T_TXT, name, &cold, (uint64_t)i));
	}
	CHECK_INT(dns_cache_entries(c), 4);
	CHECK_INT(last_octet(c, DNS_T_TXT, "sel._domainkey.example.org", 100), 1);
	CHECK_INT(last_octet(c, DNS_T_TXT, "_dmarc.example.org", 100), 1);
	/* the newest cold one is there until the next cold one */
	CHECK_INT(last_octet(c, DNS_T_TXT, "i99.spf.example.net", 100), 2);
	/* ... and having been found, it is in use: the flood passes it by */
	CHECK(dns_cache_put_cold(c, DNS_T_TXT, "x1.spf.example.net", &cold, 101));
	CHECK(dns_cache_put_cold(c, DNS_T_TXT, "x2.spf.example.net", &cold, 102));
	CHECK_INT(last_octet(c, DNS_T_TXT, "i99.spf.example.net", 103), 2);
	CHECK_INT(last_octet(c, DNS_T_TXT, "x1.spf.example.net", 103), -1);
	/* a key already kept is replaced where it is, not made cold */
	CHECK(dns_cache_put_cold(c, DNS_T_TXT, "_dmarc.example.org", &cold, 104));
	CHECK(dns_cache_put_cold(c, DNS_T_TXT, "x3.spf.example.net", &cold, 105));
	CHECK(dns_cache_put_cold(c, DNS_T_TXT, "x4.spf.example.net", &cold, 106));
	CHECK_INT(last_octet(c, DNS_T_TXT, "_dmarc.example.org", 107), 2);
	CHECK_INT(last_octet(c, DNS_T_TXT, "sel._domainkey.example.org", 107), 1);
	CHECK_INT(dns_cache_entries(c), 4);
	/* the same flood put hot evicts what was in use */
	for (int i = 0; i < 4; i++) {
		char name[64];
		snprintf(name, sizeof name, "h%d.spf.example.net", i);
		CHECK(dns_cache_put(c, DNS_T_TXT, name, &cold, 200));
	}
	CHECK_INT(last_octet(c, DNS_T_TXT, "sel._domainkey.example.org", 201), -1);
	dns_answer_free(&hot);
	dns_answer_free(&cold);
	dns_cache_free(c);
}

/* one SPF check's answers (a worker offers them together, cold) into a
 * full cache: the next check of the domain finds every one of them on
 * the loop, or it goes to a worker again and again. Cold answers take at
 * most a quarter of the cache: a flood of them evicts at most that many
 * entries in use. */
static void test_cold_batch(void)
{
	struct dns_cache *c = dns_cache_new(64, 300000);
	struct dns_answer hot = answer_a(1, 60), cold = answer_a(2, 60);
	char name[64];
	int hot_left = 0;

	for (int i = 0; i < 64; i++) {
		snprintf(name, sizeof name, "k%d._domainkey.example.org", i);
		CHECK(dns_cache_put(c, DNS_T_TXT, name, &hot, 0));
	}
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof name, "inc%d.spf.example.net", i);
		CHECK(dns_cache_put_cold(c, DNS_T_TXT, name, &cold, 1));
	}
	CHECK_INT(dns_cache_entries(c), 64);
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof name, "inc%d.spf.example.net", i);
		CHECK_INT(last_octet(c, DNS_T_TXT, name, 2), 2);
	}
	/* a flood of cold names after that: they evict each other */
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "f%d.spf.example.net", i);
		CHECK(dns_cache_put_cold(c, DNS_T_TXT, name, &cold, 3));
	}
	CHECK_INT(dns_cache_entries(c), 64);
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof name, "inc%d.spf.example.net", i);
		CHECK_INT(last_octet(c, DNS_T_TXT, name, 4), 2);   /* found: in use */
	}
	for (int i = 0; i < 64; i++) {
		snprintf(name, sizeof name, "k%d._domainkey.example.org", i);
		hot_left += last_octet(c, DNS_T_TXT, name, 4) == 1;
	}
	CHECK(hot_left >= 64 - 64 / 4 - 5);
	/* the newest cold ones are still there */
	CHECK_INT(last_octet(c, DNS_T_TXT, "f999.spf.example.net", 4), 2);
	CHECK_INT(last_octet(c, DNS_T_TXT, "f990.spf.example.net", 4), 2);
	dns_answer_free(&hot);
	dns_answer_free(&cold);
	dns_cache_free(c);
}

/* the use lists under every mix of cold and hot puts, hits, expiry and
 * replacement in tiny caches (max_entries 1 to 3): the count stays right,
 * every entry kept is found, and ASan sees every entry freed once */
static void test_cold_small(void)
{
	struct dns_answer a = answer_a(3, 60), brief = answer_a(4, 1);

	for (size_t max = 1; max <= 3; max++) {
		struct dns_cache *c = dns_cache_new(max, 300000);
		char name[32];
		unsigned seed = 7;

		/* one cold entry alone; replaced cold; found; replaced hot */
		CHECK(dns_cache_put_cold(c, DNS_T_A, "a.example", &a, 0));
		CHECK_INT(dns_cache_entries(c), 1);
		CHECK(dns_cache_put_cold(c, DNS_T_A, "a.example", &a, 0));
		CHECK_INT(dns_cache_entries(c), 1);
		CHECK_INT(last_octet(c, DNS_T_A, "a.example", 1), 3);
		CHECK(dns_cache_put(c, DNS_T_A, "a.example", &brief, 1));
		CHECK_INT(last_octet(c, DNS_T_A, "a.example", 3000), -1);   /* expired, dropped */
		CHECK_INT(dns_cache_entries(c), 0);
		for (int i = 0; i < 2000; i++) {
			seed = seed * 1103515245u + 12345u;
			snprintf(name, sizeof name, "n%u.example", (seed >> 16) % 6);
			switch ((seed >> 8) % 4) {
			case 0: CHECK(dns_cache_put(c, DNS_T_A, name, (seed & 1) ? &a : &brief, (uint64_t)i)); break;
			case 1: CHECK(dns_cache_put_cold(c, DNS_T_A, name, (seed & 1) ? &a : &brief, (uint64_t)i)); break;
			default: (void)last_octet(c, DNS_T_A, name, (uint64_t)i * 600); break;
			}
			CHECK(dns_cache_entries(c) <= max);
		}
		/* the newest put is always kept, hot or cold */
		CHECK(dns_cache_put_cold(c, DNS_T_A, "last.example", &a, 0));
		CHECK_INT(last_octet(c, DNS_T_A, "last.example", 0), 3);
		CHECK(dns_cache_put(c, DNS_T_A, "hot.example", &a, 0));
		CHECK(dns_cache_put_cold(c, DNS_T_A, "cold.example", &a, 0));
		CHECK_INT(last_octet(c, DNS_T_A, "cold.example", 0), 3);
		if (max >= 2)   /* a cold put evicts the other cold one first */
			CHECK_INT(last_octet(c, DNS_T_A, "hot.example", 0), 3);
		dns_cache_free(c);
	}
	dns_answer_free(&a);
	dns_answer_free(&brief);
}

int main(void)
{
	test_ttl();
	test_negative_and_failures();
	test_bounds();
	test_hostile_names();
	test_cold();
	test_cold_batch();
	test_cold_small();
	return check_finish("test_dns_cache");
}

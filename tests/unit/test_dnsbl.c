/*
 * test_dnsbl - the DNS list pieces without DNS: postscreen's dnsbl_sites
 * syntax (good and hostile entries), answer filters, query names for IPv4
 * and IPv6, the answer cache (expiry, replacement, eviction, size 0), and
 * the [dnsbl] keys through config_load. The lookups themselves are tested
 * on the wire by tests/integration/dnsbl.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "filters/dnsbl_cache.h"
#include "filters/dnsbl_sites.h"
#include "proxy/config.h"

static bool parse(const char *text, struct dnsbl_site *s, char *err, size_t errlen)
{
	/* exact-size copy behind a guard page: a read past the entry faults */
	size_t len = strlen(text);
	char *g = guarded_copy(text, len);
	bool ok = dnsbl_site_parse(g, len, s, err, errlen);
	guarded_free(g, len);
	return ok;
}

static bool ok_entry(const char *text, struct dnsbl_site *s)
{
	char err[300] = "";
	bool ok = parse(text, s, err, sizeof err);
	if (!ok)
		fprintf(stderr, "  '%s' refused: %s\n", text, err);
	return ok;
}

/* bad - the entry is refused with an error that contains words */
static void bad(const char *text, const char *words)
{
	struct dnsbl_site s;
	char err[300] = "";
	bool ok = parse(text, &s, err, sizeof err);

	CHECK(!ok);
	CHECK(strstr(err, words) != NULL);
	if (ok || strstr(err, words) == NULL)
		fprintf(stderr, "  '%s': got %s, '%s'; wanted an error with '%s'\n", text,
		    ok ? "accepted" : "refused", err, words);
}

static bool match(const struct dnsbl_site *s, unsigned a, unsigned b, unsigned c, unsigned d)
{
	const unsigned char q[4] = {(unsigned char)a, (unsigned char)b, (unsigned char)c, (unsigned char)d};
	return dnsbl_site_matches(s, q);
}

static void test_syntax(void)
{
	struct dnsbl_site s;

	CHECK(ok_entry("zen.example", &s));
	CHECK_STR(s.domain, "zen.example");
	CHECK_INT(s.weight, 1);
	CHECK(!s.has_filter);
	CHECK(match(&s, 127, 0, 0, 2));
	CHECK(match(&s, 127, 255, 1, 1));
	CHECK(!match(&s, 10, 0, 0, 2));     /* not 127/8: not an answer that counts */

	CHECK(ok_entry("Zen.Example.=127.0.0.[2..11]*3", &s));
	CHECK_STR(s.domain, "zen.example");  /* lowered, final dot gone */
	CHECK_INT(s.weight, 3);
	CHECK(s.has_filter);
	CHECK(match(&s, 127, 0, 0, 2));
	CHECK(match(&s, 127, 0, 0, 11));
	CHECK(!match(&s, 127, 0, 0, 1));
	CHECK(!match(&s, 127, 0, 0, 12));
	CHECK(!match(&s, 127, 0, 1, 2));

	CHECK(ok_entry("wl.example=127.0.[0..255].[0..255]*-2", &s));
	CHECK_INT(s.weight, -2);
	CHECK(match(&s, 127, 0, 0, 0));
	CHECK(match(&s, 127, 0, 255, 255));
	CHECK(!match(&s, 127, 1, 0, 0));

	CHECK(ok_entry("b.example=127.0.0.[2;4;10..12]", &s));
	CHECK(match(&s, 127, 0, 0, 2));
	CHECK(!match(&s, 127, 0, 0, 3));
	CHECK(match(&s, 127, 0, 0, 4));
	CHECK(match(&s, 127, 0, 0, 10));
	CHECK(match(&s, 127, 0, 0, 12));
	CHECK(!match(&s, 127, 0, 0, 13));

	CHECK(ok_entry("b.example=[127;128].0.0.2", &s));
	CHECK(match(&s, 128, 0, 0, 2));
	CHECK(ok_entry("b.example*+5", &s));
	CHECK_INT(s.weight, 5);
	CHECK(ok_entry("b.example*-1000", &s));
	CHECK_INT(s.weight, -1000);
	CHECK(ok_entry("x_y-z.0.example=127.0.0.[0..0]", &s));
	CHECK(match(&s, 127, 0, 0, 0));
	CHECK(!match(&s, 127, 0, 0, 1));

	/* hostile and wrong entries: each refused, saying what is wrong */
	bad("", "domain is missing");
	bad("=127.0.0.2", "domain is missing");
	bad("*2", "domain is missing");
	bad(".", "domain is missing");
	bad("a..example", "not a domain name");
	bad(".a.example", "not a domain name");
	bad("a.example..", "not a domain name");
	bad("a b.example", "not a domain name");
	bad("a/b.example", "not a domain name");
	bad("zen.example\x01", "not a domain name");
	bad("zen.\xc3\xa9xample", "not a domain name");
	bad("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", "not a domain name");
	bad("zen.example=", "not an address pattern");
	bad("zen.example=127.0.0", "not an address pattern");
	bad("zen.example=127.0.0.2.5", "not an address pattern");
	bad("zen.example=127.0.0.256", "not an address pattern");
	bad("zen.example=127.0.0.0002", "not an address pattern");
	bad("zen.example=127.0.0.[", "not an address pattern");
	bad("zen.example=127.0.0.[2", "not an address pattern");
	bad("zen.example=127.0.0.[]", "not an address pattern");
	bad("zen.example=127.0.0.[11..2]", "not an address pattern");
	bad("zen.example=127.0.0.[2..]", "not an address pattern");
	bad("zen.example=127.0.0.[2;]", "not an address pattern");
	bad("zen.example=127.0.0.[2..300]", "not an address pattern");
	bad("zen.example=127.0.0.-1", "not an address pattern");
	bad("zen.example=127.0.0.2=127.0.0.3", "not an address pattern");
	bad("zen.example*", "weight");
	bad("zen.example*0", "weight");
	bad("zen.example*-", "weight");
	bad("zen.example*1001", "weight");
	bad("zen.example*99999999999999999999", "weight");
	bad("zen.example*1.5", "weight");
	bad("zen.example*2*3", "weight");
	bad("zen.example*2=127.0.0.2", "filter (=...) comes before the weight");
	{
		char longname[300];
		memset(longname, 'a', sizeof longname);
		for (int i = 60; i < 290; i += 61)
			longname[i] = '.';
		longname[DNSBL_DOMAIN_MAX + 1] = '\0';   /* one over */
		bad(longname, "longer than");
		longname[DNSBL_DOMAIN_MAX] = '\0';
		if (longname[DNSBL_DOMAIN_MAX - 1] == '.')
			longname[DNSBL_DOMAIN_MAX - 1] = 'a';
		CHECK(ok_entry(longname, &s));
	}
}

static void test_query_names(void)
{
	static const unsigned char v4[4] = {192, 0, 2, 99};
	static const unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x3f};
	char name[DNSBL_QNAME_MAX + 1], small[20];
	struct dnsbl_site s;

	CHECK_INT(dnsbl_query_name(v4, 4, "zen.example", name, sizeof name), strlen("99.2.0.192.zen.example"));
	CHECK_STR(name, "99.2.0.192.zen.example");
	CHECK(dnsbl_query_name(v6, 16, "zen.example", name, sizeof name) > 0);
	CHECK_STR(name, "f.3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.example");
	CHECK_INT(dnsbl_query_name(v4, 4, "zen.example", small, sizeof small), 0);   /* does not fit */
	CHECK_INT(dnsbl_query_name(v4, 5, "zen.example", name, sizeof name), 0);
	/* the longest domain the parser takes still makes an IPv6 name */
	memset(s.domain, 'a', DNSBL_DOMAIN_MAX);
	for (int i = 60; i < DNSBL_DOMAIN_MAX; i += 61)
		s.domain[i] = '.';
	s.domain[DNSBL_DOMAIN_MAX] = '\0';
	CHECK_INT(dnsbl_query_name(v6, 16, s.domain, name, sizeof name), 64 + DNSBL_DOMAIN_MAX);
	CHECK_INT(strlen(name), DNSBL_QNAME_MAX);
}

static struct dnsbl_answer listed(unsigned last)
{
	struct dnsbl_answer a;

	memset(&a, 0, sizeof a);
	a.n = 1;
	a.addr[0][0] = 127;
	a.addr[0][3] = (unsigned char)last;
	return a;
}

/* the public FNV-1a the cache once used for its buckets */
static uint64_t public_fnv(const char *s)
{
	uint64_t h = 14695981039346656037ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* review12: an IPv6 client picks addresses of its /64 whose query names
 * share one bucket under the public hash (FNV-1a): every store and lookup
 * walked the whole chain. With the keyed hash they spread: counted in the
 * buckets themselves, not timed. */
static void test_cache_flood(void)
{
	enum { N = 200 };
	static const char hex[] = "0123456789abcdef";
	static const char tail[] = "2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.example.org";
	static char names[N][80];
	struct dnsbl_cache c;
	struct dnsbl_answer a;
	size_t used = 0;
	int n = 0;

	memset(&a, 0, sizeof a);
	for (uint64_t x = 0; n < N; x++) {
		char *p = names[n];
		uint64_t v = x;
		for (int i = 0; i < 16; i++, v >>= 4) {
			*p++ = hex[v & 15];
			*p++ = '.';
		}
		memcpy(p, tail, sizeof tail);
		if ((public_fnv(names[n]) & 16383) == 77)
			n++;
	}
	dnsbl_cache_init(&c, 10000);   /* 16384 buckets */
	for (int i = 0; i < N; i++)
		CHECK(dnsbl_cache_put(&c, names[i], &a, 1000));
	for (int i = 0; i < N; i++)
		CHECK(dnsbl_cache_get(&c, names[i], 0, &a));
	CHECK(c.nbuckets >= 16384);
	for (size_t i = 0; i < c.nbuckets; i++)
		used += c.buckets[i] != NULL;
	/* one bucket under the public hash; about N under a random key */
	if (used < N / 2)
		fprintf(stderr, "%d chosen names in %zu buckets\n", N, used);
	CHECK(used >= N / 2);
	dnsbl_cache_clear(&c);
}

static void test_cache(void)
{
	struct dnsbl_cache c;
	struct dnsbl_answer a = listed(2), none, out;
	char name[32];

	memset(&none, 0, sizeof none);
	dnsbl_cache_init(&c, 3);
	CHECK(!dnsbl_cache_get(&c, "1.0.0.127.bl.example", 0, &out));
	CHECK(dnsbl_cache_put(&c, "1.0.0.127.bl.example", &a, 1000));
	CHECK(dnsbl_cache_put(&c, "2.0.0.127.bl.example", &none, 1000));
	CHECK(dnsbl_cache_get(&c, "1.0.0.127.bl.example", 999, &out));
	CHECK_INT(out.n, 1);
	CHECK_INT(out.addr[0][3], 2);
	CHECK(dnsbl_cache_get(&c, "2.0.0.127.bl.example", 10, &out));
	CHECK_INT(out.n, 0);
	/* expired: gone, and removed */
	CHECK(!dnsbl_cache_get(&c, "1.0.0.127.bl.example", 1000, &out));
	CHECK_INT(c.n, 1);
	/* replaced: the new answer and expiry, one entry */
	a = listed(5);
	CHECK(dnsbl_cache_put(&c, "2.0.0.127.bl.example", &a, 5000));
	CHECK_INT(c.n, 1);
	CHECK(dnsbl_cache_get(&c, "2.0.0.127.bl.example", 4000, &out));
	CHECK_INT(out.addr[0][3], 5);
	/* full: the entry stored first goes */
	CHECK(dnsbl_cache_put(&c, "a", &a, 9000));
	CHECK(dnsbl_cache_put(&c, "b", &a, 9000));
	CHECK(dnsbl_cache_put(&c, "c", &a, 9000));
	CHECK_INT(c.n, 3);
	CHECK(!dnsbl_cache_get(&c, "2.0.0.127.bl.example", 0, &out));
	CHECK(dnsbl_cache_get(&c, "a", 0, &out) && dnsbl_cache_get(&c, "c", 0, &out));
	/* many more than max: bounded, the newest kept */
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "n%d.example", i);
		dnsbl_cache_put(&c, name, &a, 9000);
	}
	CHECK_INT(c.n, 3);
	CHECK(dnsbl_cache_get(&c, "n999.example", 0, &out));
	CHECK(!dnsbl_cache_get(&c, "n996.example", 0, &out));
	/* an answer with too many addresses is cut, not overrun */
	a.n = 1000;
	CHECK(dnsbl_cache_put(&c, "big", &a, 9000));
	CHECK(dnsbl_cache_get(&c, "big", 0, &out));
	CHECK_INT(out.n, DNSBL_ANSWER_ADDRS);
	dnsbl_cache_clear(&c);
	CHECK_INT(c.n, 0);
	CHECK(!dnsbl_cache_get(&c, "big", 0, &out));
	/* usable again after clear; size 0 stores nothing */
	CHECK(dnsbl_cache_put(&c, "again", &a, 9000));
	dnsbl_cache_clear(&c);
	dnsbl_cache_init(&c, 0);
	CHECK(!dnsbl_cache_put(&c, "x", &a, 9000));
	CHECK(!dnsbl_cache_get(&c, "x", 0, &out));
	dnsbl_cache_clear(&c);
	/* many entries in a large table: all found */
	dnsbl_cache_init(&c, 5000);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof name, "%d.0.0.127.bl.example", i);
		dnsbl_cache_put(&c, name, &a, 9000);
	}
	int found = 0;
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof name, "%d.0.0.127.bl.example", i);
		found += dnsbl_cache_get(&c, name, 0, &out);
	}
	CHECK_INT(found, 5000);
	dnsbl_cache_clear(&c);
}

static struct config *load(const char *text, char *err, size_t errlen)
{
	char path[64] = "/tmp/test_dnsbl_XXXXXX";
	int fd = mkstemp(path);
	FILE *f;
	struct config *c;

	if (fd < 0 || (f = fdopen(fd, "w")) == NULL)
		exit(99);
	fprintf(f, "[backend]\naddress = 127.0.0.1:10025\n%s", text);
	fclose(f);
	c = config_load(path, err, errlen);
	unlink(path);
	return c;
}

static void config_bad(const char *text, const char *words)
{
	char err[4096] = "";
	struct config *c = load(text, err, sizeof err);

	CHECK(c == NULL);
	CHECK(strstr(err, words) != NULL);
	if (c != NULL || strstr(err, words) == NULL)
		fprintf(stderr, "  config %s: got '%s', wanted '%s'\n", text, err, words);
	config_unref(c);
}

static void test_config(void)
{
	char err[4096] = "";
	struct config *c;

	c = load("", err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_INT(c->dnsbl.mode, DNSBL_MODE_OFF);
		CHECK_INT(c->dnsbl.nsites, 0);
		CHECK_INT(c->dnsbl.threshold, 1);
		CHECK(!c->dnsbl.has_allow_threshold);
		CHECK_INT(c->dnsbl.timeout, 3000);
		CHECK_INT(c->dnsbl.cache_ttl, 3600000);
		CHECK_INT(c->dnsbl.cache_size, 10000);
	}
	config_unref(c);
	c = load("[dnsbl]\nmode = enforce\nsites = zen.example=127.0.0.[2..11]*3 wl.example*-2\n"
	    "sites = third.example\nnull_sender_sites = bs.example\nwhitelist_threshold = -1\n"
	    "threshold = 3\n", err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_INT(c->dnsbl.nsites, 3);   /* the repeated key extends the list */
		CHECK_STR(c->dnsbl.site_list[0].domain, "zen.example");
		CHECK_INT(c->dnsbl.site_list[0].weight, 3);
		CHECK_INT(c->dnsbl.site_list[1].weight, -2);
		CHECK_STR(c->dnsbl.site_list[2].domain, "third.example");
		CHECK_INT(c->dnsbl.nnull_sites, 1);
		CHECK(c->dnsbl.has_allow_threshold);
		CHECK_INT(c->dnsbl.allow_threshold, -1);
		CHECK_INT(c->dnsbl.threshold, 3);
	} else {
		fprintf(stderr, "  %s\n", err);
	}
	config_unref(c);
	config_bad("[dnsbl]\nsites = zen.example=127.0.0.[2..1]\n", "[dnsbl] sites: '127.0.0.[2..1]'");
	config_bad("[dnsbl]\nnull_sender_sites = bad!name\n", "[dnsbl] null_sender_sites: 'bad!name'");
	config_bad("[dnsbl]\nwhitelist_threshold = 1\n", "whitelist_threshold: '1' is not 0 or a negative");
	config_bad("[dnsbl]\nwhitelist_threshold = -x\n", "whitelist_threshold");
	config_bad("[dnsbl]\nmode = log\n", "[dnsbl] mode is log but sites and null_sender_sites are empty");
	config_bad("[dnsbl]\nmode = block\n", "[dnsbl] mode");
	config_bad("[dnsbl]\nthreshold = 0\n", "[dnsbl] threshold");
	{
		char text[2048] = "[dnsbl]\n";
		for (int i = 0; i < DNSBL_SITES_MAX + 1; i++)   /* the key repeated: one a line */
			snprintf(text + strlen(text), sizeof text - strlen(text), "sites = l%d.example\n", i);
		config_bad(text, "at most 32");
	}
}

int main(void)
{
	test_syntax();
	test_query_names();
	test_cache();
	test_cache_flood();
	test_config();
	return check_finish("test_dnsbl");
}

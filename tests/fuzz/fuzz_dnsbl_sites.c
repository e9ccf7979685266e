/*
 * fuzz_dnsbl_sites - arbitrary bytes as one [dnsbl] sites entry
 * (dnsbl_site_parse, exact-size copy), then, after a NUL, as operations on
 * a small answer cache (dnsbl_cache). Oracles: an accepted entry has a
 * lower-case domain of letters, digits, '-', '_' and dots within
 * DNSBL_DOMAIN_MAX, a weight in -1000..1000 other than 0, makes a query
 * name for IPv4 and IPv6 clients, matches without a filter exactly the
 * 127/8 answers, and parses the same twice; a refused one says why. The
 * cache never holds more than its size, and an entry just stored is found
 * until its expiry.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/dnsbl_cache.h"
#include "filters/dnsbl_sites.h"

#define CACHE_SIZE 4

static void site_check(const uint8_t *data, size_t size)
{
	static const unsigned char v4[4] = {192, 0, 2, 1};
	static const unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	struct dnsbl_site a, b;
	char err[300], err2[300], name[DNSBL_QNAME_MAX + 1];
	char *copy = malloc(size ? size : 1);
	bool ok;

	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	err[0] = '\0';
	ok = dnsbl_site_parse(copy, size, &a, err, sizeof err);
	if (ok != dnsbl_site_parse(copy, size, &b, err2, sizeof err2) ||
	    (ok && memcmp(&a, &b, sizeof a) != 0))
		abort();
	free(copy);
	if (!ok) {
		if (err[0] == '\0' || strlen(err) >= sizeof err)
			abort();
		return;
	}
	size_t len = strlen(a.domain);
	if (len == 0 || len > DNSBL_DOMAIN_MAX || a.domain[0] == '.' || a.domain[len - 1] == '.')
		abort();
	for (size_t i = 0; i < len; i++) {
		char c = a.domain[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			abort();
	}
	if (a.weight == 0 || a.weight > DNSBL_WEIGHT_MAX || a.weight < -DNSBL_WEIGHT_MAX)
		abort();
	if (dnsbl_query_name(v4, 4, a.domain, name, sizeof name) == 0 ||
	    dnsbl_query_name(v6, 16, a.domain, name, sizeof name) == 0)
		abort();
	if (!a.has_filter)
		for (unsigned x = 0; x < 256; x++) {
			const unsigned char q[4] = {(unsigned char)x, 0, 0, 2};
			if (dnsbl_site_matches(&a, q) != (x == 127))
				abort();
		}
}

/* each 3 bytes: op (bit 0: put, else get), a name byte, a time step */
static void cache_check(const uint8_t *data, size_t size)
{
	struct dnsbl_cache c;
	struct dnsbl_answer ans, out;
	uint64_t now = 0;
	char name[8];

	dnsbl_cache_init(&c, CACHE_SIZE);
	memset(&ans, 0, sizeof ans);
	for (size_t i = 0; i + 3 <= size; i += 3) {
		snprintf(name, sizeof name, "n%u", data[i + 1] & 15u);
		now += data[i + 2] & 7u;
		if (data[i] & 1) {
			ans.n = data[i] >> 5;   /* 0..7 addresses */
			ans.addr[0][3] = data[i + 1];
			if (!dnsbl_cache_put(&c, name, &ans, now + 1 + (data[i] >> 1 & 15u)))
				abort();
			if (!dnsbl_cache_get(&c, name, now, &out) || out.n != ans.n ||
			    (ans.n && out.addr[0][3] != data[i + 1]))
				abort();
		} else if (dnsbl_cache_get(&c, name, now, &out) && out.n > DNSBL_ANSWER_ADDRS) {
			abort();
		}
		if (c.n > CACHE_SIZE)
			abort();
	}
	dnsbl_cache_clear(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t n = nul ? (size_t)(nul - data) : size;

	site_check(data, n);
	if (nul)
		cache_check(nul + 1, size - n - 1);
	return 0;
}

/*
 * dnsbl_cache - DNS list answers per query name (one name is one list and
 * one client address), each kept until its expiry, at most max entries:
 * when full, the entry stored first goes. No I/O, no clock of its own (the
 * caller passes the time), no globals: the filter owns one.
 */
#ifndef DNSBL_CACHE_H
#define DNSBL_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNSBL_ANSWER_ADDRS 8   /* A records kept per answer: lists give one or a few */

/* A list's answer for one client: listed (n > 0: its A records) or not. */
struct dnsbl_answer {
	size_t n;
	unsigned char addr[DNSBL_ANSWER_ADDRS][4];
};

struct dnsbl_cache_entry;

struct dnsbl_cache {
	struct dnsbl_cache_entry **buckets;   /* allocated at the first store */
	size_t nbuckets;                      /* a power of two */
	struct dnsbl_cache_entry *oldest, *newest;   /* in the order stored */
	size_t n, max;
	uint64_t k0, k1;                      /* the buckets' hash key (secret) */
};

/* dnsbl_cache_init - an empty cache of at most max entries (0: stores
 * nothing). */
void dnsbl_cache_init(struct dnsbl_cache *c, size_t max);

/* dnsbl_cache_clear - forget everything and free the memory; the cache can
 * be initialised again. */
void dnsbl_cache_clear(struct dnsbl_cache *c);

/* dnsbl_cache_get - the answer for name while now_ms < its expiry. An
 * expired entry is removed. */
bool dnsbl_cache_get(struct dnsbl_cache *c, const char *name, uint64_t now_ms,
    struct dnsbl_answer *out);

/* dnsbl_cache_put - store (or replace) the answer for name until
 * expires_ms. False when it was not stored (max 0, out of memory). */
bool dnsbl_cache_put(struct dnsbl_cache *c, const char *name, const struct dnsbl_answer *a,
    uint64_t expires_ms);

#endif

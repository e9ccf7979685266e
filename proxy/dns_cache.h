/*
 * dns_cache - answers of the loop thread's lookups, kept for their TTL so
 * that a repeated lookup (each client's reverse name, a DKIM key, a DMARC
 * record) is answered without a trip through libunbound's threads and
 * pipes (about 40 us of CPU per query even when libunbound answers from
 * its own cache).
 *
 * Pure: no I/O, no clock of its own (the caller passes now_ms), no locking
 * (one owner thread). Keys are (name lowercased in ASCII, without a final
 * dot; type; class); the table is a SipHash table under a random key, so a
 * client choosing names cannot pile them into one bucket.
 *
 * What is kept: DNS_OK, DNS_NODATA and DNS_NXDOMAIN answers whose TTL is
 * above 0 (for a negative answer libunbound reports the negative TTL of
 * RFC 2308: the SOA's TTL capped by its minimum field; without an SOA it
 * is 0 and the answer is not kept), for min(TTL, max_ttl_ms), and only
 * answers whose records total at most DNS_CACHE_ENTRY_MAX bytes. Failures
 * (SERVFAIL, timeouts, local errors) are never kept. When the table holds
 * max_entries, the least recently used entry goes.
 */
#ifndef PROXY_DNS_CACHE_H
#define PROXY_DNS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/dns.h"

/* an answer bigger than this (RDATA and decoded text) is not kept: a few
 * thousand entries then cost at most tens of MB */
#define DNS_CACHE_ENTRY_MAX 4096
/* names longer than a presentation-form name can be are never kept */
#define DNS_CACHE_NAME_MAX 1024

struct dns_cache;

/* dns_cache_new - a table for max_entries answers (0: NULL, no cache),
 * kept at most max_ttl_ms. NULL also when out of memory. */
struct dns_cache *dns_cache_new(size_t max_entries, uint64_t max_ttl_ms);
void dns_cache_free(struct dns_cache *c);

/*
 * dns_cache_get - a copy of the kept answer for (type, name, class IN) in
 * *out (the caller frees it with dns_answer_free), its ttl the seconds
 * left. false when there is none or it has expired at now_ms (an expired
 * entry is dropped).
 */
bool dns_cache_get(struct dns_cache *c, int type, const char *name, uint64_t now_ms,
    struct dns_answer *out);

/* dns_cache_put - keep a copy of a if it qualifies (see above); replaces
 * what was kept for the key. Returns whether it was kept. */
bool dns_cache_put(struct dns_cache *c, int type, const char *name, const struct dns_answer *a,
    uint64_t now_ms);

/* dns_cache_put_cold - the same, but a key not kept yet goes in cold:
 * cold entries take at most a quarter of max_entries (at least one) and
 * are the first to go, oldest first, once they fill it, until a
 * dns_cache_get finds one (then it is in use). For answers a lookup
 * outside the cache got, whose names the sender chose (an SPF record's
 * includes): a flood of them evicts each other, and at most a quarter of
 * the keys and records in use; the answers one check put together stay
 * for its next run. */
bool dns_cache_put_cold(struct dns_cache *c, int type, const char *name, const struct dns_answer *a,
    uint64_t now_ms);

/* dns_cache_entries - how many answers are kept now (expired ones that
 * nobody asked for again included) */
size_t dns_cache_entries(const struct dns_cache *c);

#endif

/*
 * dnsbl_cache - see dnsbl_cache.h. A chained hash table (FNV-1a of the
 * name) and a list in the order entries were stored, for eviction.
 */
#include <stdlib.h>
#include <string.h>

#include "filters/dnsbl_cache.h"
#include "proxy/siphash.h"

struct dnsbl_cache_entry {
	struct dnsbl_cache_entry *chain;          /* same bucket */
	struct dnsbl_cache_entry *older, *newer;  /* storage order */
	uint64_t expires_ms;
	struct dnsbl_answer answer;
	char name[];
};

/* hash - SipHash under the cache's secret key: the names hold client
 * addresses, and an IPv6 client chooses among 2^64 of them; with a public
 * hash it could put every entry in one bucket (each lookup a walk) */
static size_t hash(const struct dnsbl_cache *c, const char *s)
{
	struct siphash_key k = {c->k0, c->k1};
	return (size_t)siphash24(&k, s, strlen(s));
}

void dnsbl_cache_init(struct dnsbl_cache *c, size_t max)
{
	struct siphash_key k;

	memset(c, 0, sizeof *c);
	c->max = max;
	siphash_key_random(&k, c);
	c->k0 = k.k0;
	c->k1 = k.k1;
}

void dnsbl_cache_clear(struct dnsbl_cache *c)
{
	struct dnsbl_cache_entry *e = c->oldest;
	size_t max = c->max;

	while (e != NULL) {
		struct dnsbl_cache_entry *next = e->newer;
		free(e);
		e = next;
	}
	free(c->buckets);
	dnsbl_cache_init(c, max);
}

static struct dnsbl_cache_entry **slot_of(struct dnsbl_cache *c, const char *name)
{
	struct dnsbl_cache_entry **pp = &c->buckets[hash(c, name) & (c->nbuckets - 1)];

	while (*pp != NULL && strcmp((*pp)->name, name) != 0)
		pp = &(*pp)->chain;
	return pp;
}

static void entry_remove(struct dnsbl_cache *c, struct dnsbl_cache_entry **slot)
{
	struct dnsbl_cache_entry *e = *slot;

	*slot = e->chain;
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	c->n--;
	free(e);
}

bool dnsbl_cache_get(struct dnsbl_cache *c, const char *name, uint64_t now_ms,
    struct dnsbl_answer *out)
{
	struct dnsbl_cache_entry **slot;

	if (c->buckets == NULL)
		return false;
	slot = slot_of(c, name);
	if (*slot == NULL)
		return false;
	if (now_ms >= (*slot)->expires_ms) {
		entry_remove(c, slot);
		return false;
	}
	*out = (*slot)->answer;
	return true;
}

bool dnsbl_cache_put(struct dnsbl_cache *c, const char *name, const struct dnsbl_answer *a,
    uint64_t expires_ms)
{
	struct dnsbl_cache_entry **slot, *e;
	size_t len = strlen(name);

	if (c->max == 0)
		return false;
	if (c->buckets == NULL) {
		size_t nb = 16;
		while (nb < c->max && nb < ((size_t)1 << 20))
			nb <<= 1;
		if ((c->buckets = calloc(nb, sizeof *c->buckets)) == NULL)
			return false;
		c->nbuckets = nb;
	}
	slot = slot_of(c, name);
	if (*slot != NULL)
		entry_remove(c, slot);   /* replaced: it becomes the newest */
	while (c->n >= c->max && c->oldest != NULL)
		entry_remove(c, slot_of(c, c->oldest->name));
	if ((e = malloc(sizeof *e + len + 1)) == NULL)
		return false;
	memcpy(e->name, name, len + 1);
	e->expires_ms = expires_ms;
	e->answer = *a;
	if (e->answer.n > DNSBL_ANSWER_ADDRS)
		e->answer.n = DNSBL_ANSWER_ADDRS;
	slot = slot_of(c, name);   /* the evictions may have changed the chain */
	e->chain = NULL;
	*slot = e;
	e->older = c->newest;
	e->newer = NULL;
	if (c->newest)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
	c->n++;
	return true;
}

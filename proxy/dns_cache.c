/*
 * dns_cache - see dns_cache.h.
 *
 * A chained hash table (buckets: a power of two, at least max_entries, so
 * chains stay short) plus two doubly linked lists in order of use, the
 * most recently used first: the entries in use (put hot, or found) and
 * the cold ones (put cold, not found since). A hit moves its entry to the
 * front of the first list. A full table drops the back of the cold list
 * once the cold entries fill their share (a quarter), else the back of
 * the first: a flood of cold names evicts at most a quarter of the
 * entries in use, and one check's cold answers (a worker's SPF lookups,
 * put together) do not evict each other. Each entry is one allocation for
 * the key and the header, plus the deep copy of the answer.
 */
#include <stdlib.h>
#include <string.h>

#include "proxy/dns_cache.h"
#include "proxy/siphash.h"

#define DNS_CLASS_IN 1

struct entry {
	struct entry *hash_next;
	struct entry *newer, *older;  /* use order, in its list */
	bool cold;                    /* in the cold list */
	uint64_t hash;
	uint64_t expires_ms;
	struct dns_answer answer;
	size_t key_len;
	unsigned char key[];          /* type (2), class (2), lowercased name */
};

struct dns_cache {
	struct siphash_key sip;
	struct entry **buckets;
	size_t mask;                  /* buckets - 1 */
	size_t n, max_entries;
	uint64_t max_ttl_ms;
	struct entry *newest, *oldest;            /* in use */
	struct entry *cold_newest, *cold_oldest;  /* put cold, not found since */
	size_t cold_n, cold_max;
};

struct dns_cache *dns_cache_new(size_t max_entries, uint64_t max_ttl_ms)
{
	struct dns_cache *c;
	size_t nb = 16;

	if (max_entries == 0)
		return NULL;
	while (nb < max_entries && nb < ((size_t)1 << 30))
		nb <<= 1;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	if ((c->buckets = calloc(nb, sizeof *c->buckets)) == NULL) {
		free(c);
		return NULL;
	}
	siphash_key_random(&c->sip, c);
	c->mask = nb - 1;
	c->max_entries = max_entries;
	c->cold_max = max_entries / 4 ? max_entries / 4 : 1;
	c->max_ttl_ms = max_ttl_ms;
	return c;
}

static void entry_free(struct entry *e)
{
	dns_answer_free(&e->answer);
	free(e);
}

void dns_cache_free(struct dns_cache *c)
{
	struct entry *e, *next;

	if (c == NULL)
		return;
	for (e = c->newest; e != NULL; e = next) {
		next = e->older;
		entry_free(e);
	}
	for (e = c->cold_newest; e != NULL; e = next) {
		next = e->older;
		entry_free(e);
	}
	free(c->buckets);
	free(c);
}

size_t dns_cache_entries(const struct dns_cache *c)
{
	return c ? c->n : 0;
}

/*
 * make_key - type, class and the name as a resolver compares it: ASCII
 * letters folded to lower case (RFC 4343: other bytes, 8-bit ones
 * included, compare exactly), one final dot dropped ("a.example." and
 * "a.example" are the same absolute name to libunbound). Returns the key
 * length, 0 for a name that is never kept (empty or too long).
 */
static size_t make_key(unsigned char *key, int type, const char *name)
{
	size_t len = strlen(name);

	if (len > 1 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_CACHE_NAME_MAX)
		return 0;
	key[0] = (unsigned char)(type >> 8);
	key[1] = (unsigned char)type;
	key[2] = 0;
	key[3] = DNS_CLASS_IN;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		key[4 + i] = (ch >= 'A' && ch <= 'Z') ? (unsigned char)(ch - 'A' + 'a') : ch;
	}
	return 4 + len;
}

static struct entry **find_link(struct dns_cache *c, const unsigned char *key, size_t key_len,
    uint64_t hash)
{
	struct entry **link = &c->buckets[hash & c->mask];

	for (; *link != NULL; link = &(*link)->hash_next) {
		struct entry *e = *link;
		if (e->hash == hash && e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
			break;
	}
	return link;
}

static void use_unlink(struct dns_cache *c, struct entry *e)
{
	struct entry **newest = e->cold ? &c->cold_newest : &c->newest;
	struct entry **oldest = e->cold ? &c->cold_oldest : &c->oldest;

	if (e->newer)
		e->newer->older = e->older;
	else
		*newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		*oldest = e->newer;
	e->newer = e->older = NULL;
	if (e->cold)
		c->cold_n--;
	e->cold = false;
}

/* use_push_front - e (in no list) to the front of the cold list or of
 * the list in use */
static void use_push_front(struct dns_cache *c, struct entry *e, bool cold)
{
	struct entry **newest = cold ? &c->cold_newest : &c->newest;
	struct entry **oldest = cold ? &c->cold_oldest : &c->oldest;

	e->cold = cold;
	e->newer = NULL;
	e->older = *newest;
	if (*newest)
		(*newest)->newer = e;
	else
		*oldest = e;
	*newest = e;
	if (cold)
		c->cold_n++;
}

/* drop - take e (found through *link) out of the table and free it */
static void drop(struct dns_cache *c, struct entry **link)
{
	struct entry *e = *link;

	*link = e->hash_next;
	use_unlink(c, e);
	c->n--;
	entry_free(e);
}

/* answer_copy - a deep copy; false (dst emptied) when out of memory */
static bool answer_copy(struct dns_answer *dst, const struct dns_answer *src)
{
	*dst = *src;
	dst->rr = NULL;
	dst->n = 0;
	if (src->n == 0)
		return true;
	if ((dst->rr = calloc(src->n, sizeof *dst->rr)) == NULL)
		return false;
	for (size_t i = 0; i < src->n; i++) {
		const struct dns_rr *s = &src->rr[i];
		struct dns_rr *d = &dst->rr[i];

		d->len = s->len;
		d->pref = s->pref;
		d->text_len = s->text_len;
		dst->n = i + 1;   /* dns_answer_free frees what is filled in */
		if ((d->data = malloc(s->len ? s->len : 1)) == NULL)
			goto fail;
		memcpy(d->data, s->data, s->len);
		if (s->text != NULL) {
			if ((d->text = malloc(s->text_len + 1)) == NULL)
				goto fail;
			memcpy(d->text, s->text, s->text_len + 1);
		}
	}
	return true;
fail:
	dns_answer_free(dst);
	return false;
}

static size_t answer_size(const struct dns_answer *a)
{
	size_t size = 0;

	for (size_t i = 0; i < a->n; i++)
		size += sizeof a->rr[i] + a->rr[i].len + (a->rr[i].text ? a->rr[i].text_len + 1 : 0);
	return size;
}

bool dns_cache_get(struct dns_cache *c, int type, const char *name, uint64_t now_ms,
    struct dns_answer *out)
{
	unsigned char key[4 + DNS_CACHE_NAME_MAX];
	size_t key_len;
	uint64_t hash;
	struct entry **link, *e;

	if (c == NULL || name == NULL || (key_len = make_key(key, type, name)) == 0)
		return false;
	hash = siphash24(&c->sip, key, key_len);
	link = find_link(c, key, key_len, hash);
	if ((e = *link) == NULL)
		return false;
	if (e->expires_ms <= now_ms) {
		drop(c, link);
		return false;
	}
	if (!answer_copy(out, &e->answer))
		return false;
	out->ttl = (uint32_t)((e->expires_ms - now_ms) / 1000);
	use_unlink(c, e);
	use_push_front(c, e, false);
	return true;
}

static bool put(struct dns_cache *c, int type, const char *name, const struct dns_answer *a,
    uint64_t now_ms, bool cold)
{
	unsigned char key[4 + DNS_CACHE_NAME_MAX];
	size_t key_len;
	uint64_t hash, ttl_ms;
	struct entry **link, *e;

	if (c == NULL || name == NULL || (key_len = make_key(key, type, name)) == 0)
		return false;
	if (a->status != DNS_OK && a->status != DNS_NODATA && a->status != DNS_NXDOMAIN)
		return false;
	ttl_ms = (uint64_t)a->ttl * 1000;
	if (ttl_ms > c->max_ttl_ms)
		ttl_ms = c->max_ttl_ms;
	if (ttl_ms == 0 || answer_size(a) > DNS_CACHE_ENTRY_MAX)
		return false;

	hash = siphash24(&c->sip, key, key_len);
	link = find_link(c, key, key_len, hash);
	if (*link != NULL) {
		cold = false;   /* the key was in use already: not a new name */
		drop(c, link);
	}
	if ((e = calloc(1, sizeof *e + key_len)) == NULL)
		return false;
	if (!answer_copy(&e->answer, a)) {
		free(e);
		return false;
	}
	if (c->n >= c->max_entries) {
		/* the cold entries' share full (or nothing else kept): the
		 * oldest cold one, else the least recently used in use */
		struct entry *old = c->cold_n >= c->cold_max || c->oldest == NULL ? c->cold_oldest : c->oldest;
		drop(c, find_link(c, old->key, old->key_len, old->hash));
	}
	e->hash = hash;
	e->expires_ms = now_ms + ttl_ms;
	e->key_len = key_len;
	memcpy(e->key, key, key_len);
	link = &c->buckets[hash & c->mask];
	e->hash_next = *link;
	*link = e;
	use_push_front(c, e, cold);
	c->n++;
	return true;
}

bool dns_cache_put(struct dns_cache *c, int type, const char *name, const struct dns_answer *a,
    uint64_t now_ms)
{
	return put(c, type, name, a, now_ms, false);
}

bool dns_cache_put_cold(struct dns_cache *c, int type, const char *name, const struct dns_answer *a,
    uint64_t now_ms)
{
	return put(c, type, name, a, now_ms, true);
}

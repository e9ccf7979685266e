/*
 * ipcount_shared - see ipcount_shared.h.
 *
 * Deletion is Knuth's backward shift for linear probing, so there are no
 * tombstones and a full scan needs no rehash. Every operation holds the
 * one mutex: they are a few dozen memory accesses, at connect and close.
 */
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "proxy/ipcount_shared.h"
#include "proxy/siphash.h"

struct ipcount_entry {
	char key[IPCOUNT_KEY_LEN];
	uint32_t total;          /* 0: the slot is free */
	uint32_t per_worker[];   /* [workers] */
};

struct ipcount_shared {
	pthread_mutex_t lock;
	size_t map_len;
	size_t slots;            /* a power of two */
	size_t used;
	size_t entry_size;
	unsigned workers;
	/* keys are what clients choose (an IPv6 client has a /48 of /64s): a
	 * secret hash key, made before the fork, so that none can line its
	 * addresses up into one long probe run, which every worker would
	 * walk under the lock */
	struct siphash_key hash_key;
	unsigned char entries[];  /* slots x entry_size */
};

static struct ipcount_entry *entry_at(struct ipcount_shared *t, size_t i)
{
	return (struct ipcount_entry *)(void *)(t->entries + i * t->entry_size);
}

static size_t key_slot(const struct ipcount_shared *t, const char *key)
{
	return (size_t)siphash24(&t->hash_key, key, IPCOUNT_KEY_LEN) & (t->slots - 1);
}

/* repair - the lock's owner died in an update (SIGKILL, a crash): the
 * table may hold a half-done change - a per-worker count moved but not the
 * total (an entry that would never reach 0 again, or a live one that looks
 * free), a key copied by a backward shift but not yet cleared behind it
 * (the same key twice), used off by one. Each entry's total is made the
 * sum of its per-worker counts again, and the table is built anew. */
static void repair(struct ipcount_shared *t)
{
	size_t es = t->entry_size, n = 0, mask = t->slots - 1;
	unsigned char *copy = malloc(t->slots * es);

	for (size_t i = 0; i < t->slots; i++) {
		struct ipcount_entry *e = entry_at(t, i);
		uint64_t sum = 0;
		for (unsigned w = 0; w < t->workers; w++)
			sum += e->per_worker[w];
		e->total = (uint32_t)sum;
		if (sum == 0)
			memset(e, 0, es);
		else if (copy != NULL)
			memcpy(copy + n++ * es, e, es);
	}
	if (copy == NULL)
		return;   /* totals are right again; the rest waits for memory */
	memset(t->entries, 0, t->slots * es);
	t->used = 0;
	for (size_t k = 0; k < n; k++) {
		struct ipcount_entry *src = (struct ipcount_entry *)(void *)(copy + k * es), *e;
		size_t i = key_slot(t, src->key);
		for (;; i = (i + 1) & mask) {
			e = entry_at(t, i);
			if (e->total == 0 || memcmp(e->key, src->key, IPCOUNT_KEY_LEN) == 0)
				break;
		}
		if (e->total != 0)
			continue;   /* the second copy of a half-done shift */
		memcpy(e, src, es);
		t->used++;
	}
	free(copy);
}

static void lock(struct ipcount_shared *t)
{
	/* the owner died holding it (SIGKILL in an update): mend the table
	 * before anything reads it */
	if (pthread_mutex_lock(&t->lock) == EOWNERDEAD) {
		repair(t);
		pthread_mutex_consistent(&t->lock);
	}
}

struct ipcount_shared *ipcount_shared_new(size_t capacity, unsigned workers)
{
	size_t slots = 64, entry_size, len;
	pthread_mutexattr_t attr;
	struct ipcount_shared *t;

	if (workers == 0)
		return NULL;
	while (slots < capacity * 2)
		slots *= 2;
	entry_size = sizeof(struct ipcount_entry) + workers * sizeof(uint32_t);
	entry_size = (entry_size + 7) & ~(size_t)7;
	len = sizeof *t + slots * entry_size;
	t = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED)
		return NULL;
	/* mmap gave zeroes: every slot is free */
	t->map_len = len;
	t->slots = slots;
	t->entry_size = entry_size;
	t->workers = workers;
	siphash_key_random(&t->hash_key, t);
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	if (pthread_mutex_init(&t->lock, &attr) != 0) {
		pthread_mutexattr_destroy(&attr);
		munmap(t, len);
		return NULL;
	}
	pthread_mutexattr_destroy(&attr);
	return t;
}

void ipcount_shared_free(struct ipcount_shared *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->lock);
	munmap(t, t->map_len);
}

void ipcount_shared_unmap(struct ipcount_shared *t)
{
	if (t != NULL)
		munmap(t, t->map_len);
}

/* remove_at - free slot i and shift back the entries of its probe run
 * that would no longer be found */
static void remove_at(struct ipcount_shared *t, size_t i)
{
	size_t mask = t->slots - 1, j = i;

	for (;;) {
		j = (j + 1) & mask;
		struct ipcount_entry *e = entry_at(t, j);
		if (e->total == 0)
			break;
		size_t home = key_slot(t, e->key);
		/* e may move to i when its home is not in (i, j] (cyclically) */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		memcpy(entry_at(t, i), e, t->entry_size);
		i = j;
	}
	memset(entry_at(t, i), 0, t->entry_size);
	t->used--;
}

unsigned ipcount_shared_add(struct ipcount_shared *t, unsigned worker, const char *key, int delta,
    int *full)
{
	size_t mask = t->slots - 1, i;
	struct ipcount_entry *e;
	unsigned total = 0;

	if (full)
		*full = 0;
	if (worker >= t->workers)
		return 0;
	lock(t);
	for (i = key_slot(t, key);; i = (i + 1) & mask) {
		e = entry_at(t, i);
		if (e->total == 0 || memcmp(e->key, key, IPCOUNT_KEY_LEN) == 0)
			break;
	}
	if (e->total == 0) {
		/* half the slots at most: probe runs stay short */
		if (delta <= 0 || t->used >= t->slots / 2) {
			if (delta > 0 && full)
				*full = 1;
			goto out;
		}
		memset(e, 0, t->entry_size);
		memcpy(e->key, key, IPCOUNT_KEY_LEN);
		t->used++;
	}
	if (delta < 0 && e->per_worker[worker] < (uint32_t)-delta) {
		/* never below this worker's own count */
		e->total -= e->per_worker[worker];
		e->per_worker[worker] = 0;
	} else {
		e->per_worker[worker] = (uint32_t)((int64_t)e->per_worker[worker] + delta);
		e->total = (uint32_t)((int64_t)e->total + delta);
	}
	total = e->total;
	if (total == 0)
		remove_at(t, i);
out:
	pthread_mutex_unlock(&t->lock);
	return total;
}

unsigned long ipcount_shared_forget_worker(struct ipcount_shared *t, unsigned worker)
{
	unsigned long released = 0;

	if (worker >= t->workers)
		return 0;
	lock(t);
	/* a backward shift can move a not yet visited entry into slot i:
	 * look at i again after a removal */
	for (size_t i = 0; i < t->slots;) {
		struct ipcount_entry *e = entry_at(t, i);
		if (e->total == 0 || e->per_worker[worker] == 0) {
			i++;
			continue;
		}
		released += e->per_worker[worker];
		e->total -= e->per_worker[worker];
		e->per_worker[worker] = 0;
		if (e->total == 0)
			remove_at(t, i);
		else
			i++;
	}
	pthread_mutex_unlock(&t->lock);
	return released;
}

size_t ipcount_shared_keys(struct ipcount_shared *t)
{
	size_t n;

	lock(t);
	n = t->used;
	pthread_mutex_unlock(&t->lock);
	return n;
}

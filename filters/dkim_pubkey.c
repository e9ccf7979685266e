/*
 * dkim_pubkey - parsed DKIM public keys kept by their bytes; see
 * dkim_pubkey.h for why backstop defines d2i_PUBKEY_bio().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* RTLD_DEFAULT */
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "filters/dkim_pubkey.h"

struct pubkey_slot {
	unsigned char *der;     /* NULL: free slot */
	size_t len;
	size_t consumed;        /* bytes the parse read (taken from the BIO) */
	uint64_t hash;
	uint64_t used;          /* the table's clock at the last hit */
	EVP_PKEY *pkey;         /* the table's reference */
};

/* Process-wide by nature: it sits behind a library's global function. */
static struct {
	pthread_mutex_t mu;
	struct pubkey_slot slot[DKIM_PUBKEY_SLOTS];
	uint64_t clock;
	atomic_ullong hits, parsed;
} table = {.mu = PTHREAD_MUTEX_INITIALIZER};

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* lookup - the kept key for these bytes with a reference for the caller,
 * or NULL. */
static EVP_PKEY *lookup(const unsigned char *der, size_t len, uint64_t hash, size_t *consumed)
{
	EVP_PKEY *pkey = NULL;

	pthread_mutex_lock(&table.mu);
	for (size_t i = 0; i < DKIM_PUBKEY_SLOTS; i++) {
		struct pubkey_slot *s = &table.slot[i];
		if (s->der != NULL && s->hash == hash && s->len == len && memcmp(s->der, der, len) == 0) {
			if (EVP_PKEY_up_ref(s->pkey) == 1) {
				pkey = s->pkey;
				*consumed = s->consumed;
				s->used = ++table.clock;
			}
			break;
		}
	}
	pthread_mutex_unlock(&table.mu);
	return pkey;
}

/* keep - remember pkey (one more reference) under these bytes, in a free
 * slot or the least recently used one. */
static void keep(const unsigned char *der, size_t len, size_t consumed, uint64_t hash,
    EVP_PKEY *pkey)
{
	unsigned char *copy = malloc(len);
	struct pubkey_slot *victim = NULL;

	if (copy == NULL)
		return;
	memcpy(copy, der, len);
	pthread_mutex_lock(&table.mu);
	for (size_t i = 0; i < DKIM_PUBKEY_SLOTS; i++) {
		struct pubkey_slot *s = &table.slot[i];
		if (s->der != NULL && s->hash == hash && s->len == len && memcmp(s->der, der, len) == 0) {
			goto out;   /* another thread kept it meanwhile */
		}
		if (victim == NULL || (victim->der != NULL && (s->der == NULL || s->used < victim->used)))
			victim = s;
	}
	if (EVP_PKEY_up_ref(pkey) != 1)
		goto out;
	free(victim->der);
	if (victim->pkey != NULL)
		EVP_PKEY_free(victim->pkey);
	victim->der = copy;
	victim->len = len;
	victim->consumed = consumed;
	victim->hash = hash;
	victim->pkey = pkey;
	victim->used = ++table.clock;
	copy = NULL;
out:
	pthread_mutex_unlock(&table.mu);
	free(copy);
}

/* bio_skip - take n bytes out of bp, as a parse reading them would */
static void bio_skip(BIO *bp, size_t n)
{
	char sink[256];

	while (n > 0) {
		int r = BIO_read(bp, sink, n > sizeof sink ? (int)sizeof sink : (int)n);
		if (r <= 0)
			break;
		n -= (size_t)r;
	}
}

/*
 * d2i_PUBKEY_bio - OpenSSL's function (x509.h), with the table in front
 * for the call libopendkim makes: a memory BIO holding the key's DER, no
 * object to reuse. What it reads is taken out of the BIO as OpenSSL's
 * does; other calls run OpenSSL's own code (ASN1_d2i_bio_of over
 * d2i_PUBKEY, exactly its definition in crypto/x509/x_all.c).
 */
EVP_PKEY *d2i_PUBKEY_bio(BIO *bp, EVP_PKEY **a)
{
	char *data = NULL;
	long n;
	const unsigned char *der, *p;
	size_t consumed = 0;
	uint64_t hash;
	EVP_PKEY *pkey;

	if (bp == NULL || a != NULL || BIO_method_type(bp) != BIO_TYPE_MEM ||
	    (n = BIO_get_mem_data(bp, &data)) <= 0 || data == NULL || n > DKIM_PUBKEY_DER_MAX)
		return ASN1_d2i_bio_of(EVP_PKEY, EVP_PKEY_new, d2i_PUBKEY, bp, a);
	der = (const unsigned char *)data;
	hash = fnv1a(der, (size_t)n);
	if ((pkey = lookup(der, (size_t)n, hash, &consumed)) != NULL) {
		atomic_fetch_add_explicit(&table.hits, 1, memory_order_relaxed);
	} else {
		p = der;
		pkey = d2i_PUBKEY(NULL, &p, n);
		atomic_fetch_add_explicit(&table.parsed, 1, memory_order_relaxed);
		if (pkey == NULL)
			return NULL;   /* not kept: a bad key costs its parse each time */
		consumed = (size_t)(p - der);
		keep(der, (size_t)n, consumed, hash, pkey);
	}
	bio_skip(bp, consumed);   /* der is invalid from here */
	return pkey;
}

bool dkim_pubkey_interposed(void)
{
	void *bound = dlsym(RTLD_DEFAULT, "d2i_PUBKEY_bio");

	return bound == (void *)d2i_PUBKEY_bio;
}

void dkim_pubkey_counts(uint64_t *hits, uint64_t *parsed)
{
	*hits = atomic_load_explicit(&table.hits, memory_order_relaxed);
	*parsed = atomic_load_explicit(&table.parsed, memory_order_relaxed);
}

void dkim_pubkey_flush(void)
{
	pthread_mutex_lock(&table.mu);
	for (size_t i = 0; i < DKIM_PUBKEY_SLOTS; i++) {
		struct pubkey_slot *s = &table.slot[i];
		free(s->der);
		if (s->pkey != NULL)
			EVP_PKEY_free(s->pkey);
		memset(s, 0, sizeof *s);
	}
	pthread_mutex_unlock(&table.mu);
}

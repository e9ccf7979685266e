/*
 * siphash - SipHash-2-4 (Aumasson, Bernstein 2012) for hash tables whose
 * keys a client chooses (its address, or a name made of it): under a
 * secret key no client can aim its keys at one bucket or set.
 */
#ifndef PROXY_SIPHASH_H
#define PROXY_SIPHASH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

struct siphash_key {
	uint64_t k0, k1;
};

/* siphash_key_random - a fresh secret key (getrandom, else time and pid) */
static inline void siphash_key_random(struct siphash_key *k, const void *salt)
{
	if (getrandom(k, sizeof *k, GRND_NONBLOCK) != (ssize_t)sizeof *k) {
		k->k0 = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
		k->k1 = (uint64_t)(uintptr_t)salt * 0xbf58476d1ce4e5b9ULL ^ (uint64_t)clock();
	}
}

#define SIPHASH_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPHASH_ROUND \
	do { \
		v0 += v1; v1 = SIPHASH_ROTL(v1, 13); v1 ^= v0; v0 = SIPHASH_ROTL(v0, 32); \
		v2 += v3; v3 = SIPHASH_ROTL(v3, 16); v3 ^= v2; \
		v0 += v3; v3 = SIPHASH_ROTL(v3, 21); v3 ^= v0; \
		v2 += v1; v1 = SIPHASH_ROTL(v1, 17); v1 ^= v2; v2 = SIPHASH_ROTL(v2, 32); \
	} while (0)

static inline uint64_t siphash24(const struct siphash_key *k, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t v0 = 0x736f6d6570736575ULL ^ k->k0, v1 = 0x646f72616e646f6dULL ^ k->k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k->k0, v3 = 0x7465646279746573ULL ^ k->k1;
	size_t i = 0;
	uint64_t m;

	for (; i + 8 <= len; i += 8) {
		m = 0;
		for (int j = 7; j >= 0; j--)
			m = m << 8 | p[i + (size_t)j];
		v3 ^= m;
		SIPHASH_ROUND;
		SIPHASH_ROUND;
		v0 ^= m;
	}
	m = (uint64_t)(len & 0xff) << 56;
	for (size_t j = 0; i + j < len; j++)
		m |= (uint64_t)p[i + j] << (8 * j);
	v3 ^= m;
	SIPHASH_ROUND;
	SIPHASH_ROUND;
	v0 ^= m;
	v2 ^= 0xff;
	SIPHASH_ROUND;
	SIPHASH_ROUND;
	SIPHASH_ROUND;
	SIPHASH_ROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

#undef SIPHASH_ROUND
#undef SIPHASH_ROTL

#endif

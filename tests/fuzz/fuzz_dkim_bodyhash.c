/*
 * fuzz_dkim_bodyhash - backstop's DKIM body hash (filters/dkim_bodyhash.c)
 * against libopendkim's, the hash DKIM verification used before it.
 *
 * Input: a first byte choosing the canonicalisation, the digest and the
 * chunk size, then the body. Checks:
 *   - any bytes: the hash is the same whatever the chunks (whole, the
 *     chosen size, byte by byte), and nothing crashes;
 *   - the body as the session hands it to DKIM (CRLF line ends only, a bare
 *     CR made a space, a bare LF made CRLF, ending in CRLF): the hash is
 *     the bh= libopendkim signs the same body with.
 * A mismatch aborts with the two hashes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "filters/dkim_bodyhash.h"
#include "tests/unit/dkim_libsign.h"

static DKIM_LIB *lib;
static char *pem;

static void setup(void)
{
	if (lib != NULL)
		return;
	if ((lib = dkim_init(NULL, NULL)) == NULL || (pem = libsign_key_pem()) == NULL)
		abort();
}

static void ours(enum dkim_body_canon canon, const EVP_MD *md, const uint8_t *body, size_t len,
    size_t chunk, char *out)
{
	struct dkim_bodyhash h;
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;

	if (!dkim_bodyhash_init(&h, canon, md))
		abort();
	for (size_t at = 0; at < len; at += chunk)
		dkim_bodyhash_update(&h, body + at, len - at < chunk ? len - at : chunk);
	if (!dkim_bodyhash_final(&h, dig, &dlen))
		abort();
	dkim_bodyhash_free(&h);
	if (dkim_bodyhash_matches(NULL, dig, dlen))
		abort();
	EVP_EncodeBlock((unsigned char *)out, dig, (int)dlen);
	if (!dkim_bodyhash_matches(out, dig, dlen))
		abort();   /* its own encoding must match */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char whole[128], cut[128], bytes[128], lib_bh[128];
	enum dkim_body_canon canon;
	const EVP_MD *md;
	uint8_t *norm;
	size_t chunk, n = 0;

	if (size < 1 || size > 8192)
		return 0;
	setup();
	canon = data[0] & 1 ? DKIM_BODY_RELAXED : DKIM_BODY_SIMPLE;
	md = data[0] & 2 ? EVP_sha1() : EVP_sha256();
	chunk = (size_t)(data[0] >> 2) + 1;
	data++;
	size--;

	ours(canon, md, data, size, size ? size : 1, whole);
	ours(canon, md, data, size, chunk, cut);
	ours(canon, md, data, size, 1, bytes);
	if (strcmp(whole, cut) != 0 || strcmp(whole, bytes) != 0) {
		fprintf(stderr, "chunking changes the hash: %s %s %s\n", whole, cut, bytes);
		abort();
	}

	/* the session's form of the body */
	if ((norm = malloc(2 * size + 2)) == NULL)
		return 0;
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\r' && i + 1 < size && data[i + 1] == '\n') {
			norm[n++] = '\r';
			norm[n++] = '\n';
			i++;
		} else if (data[i] == '\n') {
			norm[n++] = '\r';
			norm[n++] = '\n';
		} else {
			norm[n++] = data[i] == '\r' ? ' ' : data[i];
		}
	}
	if (n > 0 && (n < 2 || norm[n - 2] != '\r' || norm[n - 1] != '\n')) {
		norm[n++] = '\r';
		norm[n++] = '\n';
	}
	ours(canon, md, norm, n, chunk, whole);
	if (!libsign_bh(lib, pem, canon == DKIM_BODY_RELAXED ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
	    md == EVP_sha1() ? DKIM_SIGN_RSASHA1 : DKIM_SIGN_RSASHA256, norm, n, lib_bh, sizeof lib_bh))
		abort();
	free(norm);
	if (strcmp(whole, lib_bh) != 0) {
		fprintf(stderr, "body hash %s, libopendkim's %s\n", whole, lib_bh);
		abort();
	}
	return 0;
}

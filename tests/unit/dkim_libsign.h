/*
 * dkim_libsign.h - libopendkim as the oracle for backstop's DKIM body hash:
 * a throwaway RSA key, and the bh= libopendkim signs a body with. Shared by
 * tests/unit/test_dkim_bodyhash.c and tests/fuzz/fuzz_dkim_bodyhash.c.
 */
#ifndef DKIM_LIBSIGN_H
#define DKIM_LIBSIGN_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <opendkim/dkim.h>

/* libsign_key_pem - a new RSA-1024 private key in PEM (malloc'd), or NULL */
static char *libsign_key_pem(void)
{
	EVP_PKEY *pkey = EVP_RSA_gen(1024);
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *pem = NULL;
	long n;

	if (pkey != NULL && bio != NULL && PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) &&
	    (n = BIO_get_mem_data(bio, &data)) > 0 && (pem = malloc((size_t)n + 1)) != NULL) {
		memcpy(pem, data, (size_t)n);
		pem[n] = '\0';
	}
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return pem;
}

/* libsign_bh - the bh= value (FWS removed) libopendkim signs body with,
 * into out; false on any library error. */
static bool libsign_bh(DKIM_LIB *lib, const char *pem, dkim_canon_t body_canon, dkim_alg_t alg,
    const void *body, size_t len, char *out, size_t cap)
{
	static const char from[] = "From: a@example.org";
	unsigned char hdr[4096];
	DKIM_STAT st;
	DKIM *d = dkim_sign(lib, (const unsigned char *)"t", NULL, (dkim_sigkey_t)pem,
	    (const unsigned char *)"sel", (const unsigned char *)"example.org", DKIM_CANON_RELAXED,
	    body_canon, alg, -1, &st);
	bool ok;
	char *p;
	size_t n = 0;

	if (d == NULL)
		return false;
	ok = dkim_header(d, (unsigned char *)from, sizeof from - 1) == DKIM_STAT_OK &&
	    dkim_eoh(d) == DKIM_STAT_OK &&
	    (len == 0 || dkim_body(d, (unsigned char *)body, len) == DKIM_STAT_OK) &&
	    dkim_eom(d, NULL) == DKIM_STAT_OK &&
	    dkim_getsighdr(d, hdr, sizeof hdr, 16) == DKIM_STAT_OK &&
	    (p = strstr((char *)hdr, "bh=")) != NULL;
	dkim_free(d);
	if (!ok)
		return false;
	for (p += 3; *p && *p != ';' && n + 1 < cap; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			out[n++] = *p;
	out[n] = '\0';
	return true;
}

#endif

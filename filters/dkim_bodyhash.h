/*
 * dkim_bodyhash - a DKIM body hash (RFC 6376 3.4.3, 3.4.4 and 3.7: the
 * body canonicalised "simple" or "relaxed", then SHA-1 or SHA-256), fed in
 * chunks as the body arrives.
 *
 * Why backstop hashes the body itself: libopendkim canonicalises a byte at
 * a time through its dynamic strings, about 6.6 ns a byte (a 100 KB
 * message cost 661 us of the loop thread, ten times its SHA-256). Here a
 * run of ordinary bytes goes to the hash in one piece. libopendkim still
 * parses the signatures, fetches the keys and verifies the header hash;
 * filters/dkim.c compares this hash with each signature's bh=.
 *
 * Input: any bytes. A line ends at CR LF; a CR or LF alone is an ordinary
 * byte of the line (the session hands DKIM CRLF lines only, but nothing
 * here depends on it). No l= limit: a signature with l= is verified by
 * libopendkim's own body hash (filters/dkim.c).
 */
#ifndef DKIM_BODYHASH_H
#define DKIM_BODYHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

enum dkim_body_canon { DKIM_BODY_SIMPLE, DKIM_BODY_RELAXED };

#define DKIM_BODYHASH_BUF 4096

struct dkim_bodyhash {
	EVP_MD_CTX *md;
	enum dkim_body_canon canon;
	bool line_start;      /* nothing of the current line is out yet */
	bool pending_cr;      /* the last byte was a CR: a line end if LF follows */
	bool pending_wsp;     /* relaxed: WSP seen, out as one SP if content follows */
	bool any_line;        /* a non-empty line went out */
	uint64_t blanks;      /* empty lines held back: out only if content follows */
	size_t n;             /* bytes in buf */
	unsigned char buf[DKIM_BODYHASH_BUF];
};

/* dkim_bodyhash_init - canon and digest (EVP_sha1() or EVP_sha256());
 * false when out of memory. */
bool dkim_bodyhash_init(struct dkim_bodyhash *h, enum dkim_body_canon canon, const EVP_MD *md);

/* dkim_bodyhash_update - the next len bytes of the body. */
void dkim_bodyhash_update(struct dkim_bodyhash *h, const void *data, size_t len);

/* dkim_bodyhash_final - the digest (EVP_MAX_MD_SIZE bytes room) and its
 * length; false on a library error. Call once. */
bool dkim_bodyhash_final(struct dkim_bodyhash *h, unsigned char *out, unsigned *outlen);

/* dkim_bodyhash_free - release the digest context (also after final). */
void dkim_bodyhash_free(struct dkim_bodyhash *h);

/* dkim_bodyhash_matches - whether a bh= tag value (base64, FWS allowed
 * anywhere, RFC 6376 3.5) decodes to exactly digest. */
bool dkim_bodyhash_matches(const char *bh_tag, const unsigned char *digest, unsigned len);

#endif

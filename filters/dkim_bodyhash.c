/*
 * dkim_bodyhash - the DKIM body hash, fed in chunks; see dkim_bodyhash.h.
 *
 * Both canonicalisations are one state machine over the bytes:
 *   - a CR is held until the next byte says whether it ends the line;
 *   - an empty line (relaxed: a line of WSP only) is counted, not hashed,
 *     and the count goes out as CRLFs only when content follows, which
 *     drops the empty lines at the end of the body (3.4.3, 3.4.4 b);
 *   - relaxed: a run of WSP is held and goes out as one SP only when
 *     content follows on the same line, which drops trailing WSP and
 *     reduces runs (3.4.4 a).
 * Bytes go through a 4 KiB buffer to the digest, and a run of bytes with
 * nothing to decide is copied at once.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "filters/dkim_bodyhash.h"

static void flush(struct dkim_bodyhash *h)
{
	if (h->n > 0)
		EVP_DigestUpdate(h->md, h->buf, h->n);
	h->n = 0;
}

static void put(struct dkim_bodyhash *h, const unsigned char *p, size_t len)
{
	if (len >= sizeof h->buf) {
		flush(h);
		EVP_DigestUpdate(h->md, p, len);
		return;
	}
	if (h->n + len > sizeof h->buf)
		flush(h);
	memcpy(h->buf + h->n, p, len);
	h->n += len;
}

/* line_content - the current line has content from here: what was held
 * back for it goes out first (the empty lines before it, relaxed's SP). */
static void line_content(struct dkim_bodyhash *h)
{
	if (h->line_start) {
		for (; h->blanks > 0; h->blanks--)
			put(h, (const unsigned char *)"\r\n", 2);
		h->line_start = false;
		h->any_line = true;
	}
	if (h->pending_wsp) {
		put(h, (const unsigned char *)" ", 1);
		h->pending_wsp = false;
	}
}

static void line_end(struct dkim_bodyhash *h)
{
	h->pending_wsp = false;   /* trailing WSP is dropped */
	if (h->line_start) {
		h->blanks++;
	} else {
		put(h, (const unsigned char *)"\r\n", 2);
		h->line_start = true;
	}
}

/* special - a byte the state machine decides on; any other is copied */
static bool special(const struct dkim_bodyhash *h, unsigned char c)
{
	return c == '\r' || (h->canon == DKIM_BODY_RELAXED && (c == ' ' || c == '\t'));
}

bool dkim_bodyhash_init(struct dkim_bodyhash *h, enum dkim_body_canon canon, const EVP_MD *md)
{
	memset(h, 0, offsetof(struct dkim_bodyhash, buf));
	h->canon = canon;
	h->line_start = true;
	if ((h->md = EVP_MD_CTX_new()) == NULL)
		return false;
	if (EVP_DigestInit_ex(h->md, md, NULL) != 1) {
		EVP_MD_CTX_free(h->md);
		h->md = NULL;
		return false;
	}
	return true;
}

void dkim_bodyhash_update(struct dkim_bodyhash *h, const void *data, size_t len)
{
	const unsigned char *p = data, *end = p + len;

	while (p < end) {
		unsigned char c = *p;

		if (h->pending_cr) {
			h->pending_cr = false;
			if (c == '\n') {
				line_end(h);
				p++;
				continue;
			}
			line_content(h);   /* a CR alone is content */
			put(h, (const unsigned char *)"\r", 1);
		}
		if (c == '\r') {
			h->pending_cr = true;
			p++;
		} else if (h->canon == DKIM_BODY_RELAXED && (c == ' ' || c == '\t')) {
			h->pending_wsp = true;
			p++;
		} else {
			/* content: this byte and every ordinary one after it */
			const unsigned char *run = p++;

			while (p < end && !special(h, *p))
				p++;
			line_content(h);
			put(h, run, (size_t)(p - run));
		}
	}
}

bool dkim_bodyhash_final(struct dkim_bodyhash *h, unsigned char *out, unsigned *outlen)
{
	if (h->pending_cr) {
		h->pending_cr = false;
		line_content(h);
		put(h, (const unsigned char *)"\r", 1);
	}
	if (!h->line_start)   /* a last line without CRLF gets one */
		line_end(h);
	/* an empty body: "simple" is one CRLF (3.4.3), "relaxed" nothing
	 * (3.4.4; RFC 6376 erratum 3133 on RFC 4871's wording) */
	if (!h->any_line && h->canon == DKIM_BODY_SIMPLE)
		put(h, (const unsigned char *)"\r\n", 2);
	flush(h);
	return EVP_DigestFinal_ex(h->md, out, outlen) == 1;
}

void dkim_bodyhash_free(struct dkim_bodyhash *h)
{
	EVP_MD_CTX_free(h->md);
	h->md = NULL;
}

bool dkim_bodyhash_matches(const char *bh_tag, const unsigned char *digest, unsigned len)
{
	unsigned char compact[128], decoded[96];
	size_t n = 0;
	int dlen;

	if (bh_tag == NULL || len == 0 || len > sizeof decoded)
		return false;
	for (const char *s = bh_tag; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			continue;   /* FWS */
		if (n == sizeof compact)
			return false;
		compact[n++] = (unsigned char)*s;
	}
	/* base64 of the digest: 4 characters per 3 bytes, padded */
	if (n != 4 * ((len + 2) / 3))
		return false;
	if ((dlen = EVP_DecodeBlock(decoded, compact, (int)n)) < 0)
		return false;
	/* EVP_DecodeBlock counts the padding as zero bytes */
	if ((size_t)dlen < len || (size_t)dlen - len > 2)
		return false;
	for (size_t i = len; i < (size_t)dlen; i++)
		if (decoded[i] != 0)
			return false;
	return CRYPTO_memcmp(decoded, digest, len) == 0;
}

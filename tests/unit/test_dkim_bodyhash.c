/*
 * test_dkim_bodyhash - filters/dkim_bodyhash.c: RFC 6376's example bodies
 * and empty bodies by known digests, every split of a body into two
 * chunks, bh= decoding (FWS, padding, wrong lengths), and a differential
 * run against libopendkim's own body hash: random bodies signed by
 * libopendkim (its bh= is its canonicalisation) under the four body
 * canonicalisation and digest pairs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "filters/dkim_bodyhash.h"
#include "tests/unit/check.h"
#include "tests/unit/dkim_libsign.h"

static char *b64(const unsigned char *d, unsigned n)
{
	static char out[128];

	EVP_EncodeBlock((unsigned char *)out, d, (int)n);
	return out;
}

/* hash_chunks - the body hash of body fed in pieces cut at cuts[] */
static char *hash_chunks(enum dkim_body_canon canon, const EVP_MD *md, const char *body,
    size_t len, const size_t *cuts, size_t ncuts)
{
	struct dkim_bodyhash h;
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	size_t at = 0;

	CHECK(dkim_bodyhash_init(&h, canon, md));
	for (size_t i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : len;
		dkim_bodyhash_update(&h, body + at, to - at);
		at = to;
	}
	CHECK(dkim_bodyhash_final(&h, dig, &dlen));
	dkim_bodyhash_free(&h);
	return b64(dig, dlen);
}

static char *hash_of(enum dkim_body_canon canon, const EVP_MD *md, const char *body, size_t len)
{
	return hash_chunks(canon, md, body, len, NULL, 0);
}

static char *sha(const EVP_MD *md, const char *data)
{
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;

	EVP_Digest(data, strlen(data), dig, &dlen, md, NULL);
	return b64(dig, dlen);
}

static void test_known(void)
{
	const EVP_MD *s256 = EVP_sha256(), *s1 = EVP_sha1();
	/* RFC 6376 3.4.5 */
	const char *ex = " C \r\nD \t E\r\n\r\n\r\n";
	char want[128];

	snprintf(want, sizeof want, "%s", sha(s256, " C\r\nD E\r\n"));
	CHECK_STR(hash_of(DKIM_BODY_RELAXED, s256, ex, strlen(ex)), want);
	snprintf(want, sizeof want, "%s", sha(s256, " C \r\nD \t E\r\n"));
	CHECK_STR(hash_of(DKIM_BODY_SIMPLE, s256, ex, strlen(ex)), want);
	/* empty bodies: simple is one CRLF, relaxed nothing */
	CHECK_STR(hash_of(DKIM_BODY_SIMPLE, s256, "", 0), "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
	CHECK_STR(hash_of(DKIM_BODY_RELAXED, s256, "", 0), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	CHECK_STR(hash_of(DKIM_BODY_SIMPLE, s1, "", 0), "uoq1oCgLlTqpdDX/iUbLy7J1Wic=");
	CHECK_STR(hash_of(DKIM_BODY_RELAXED, s1, "", 0), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
	/* only empty lines, or lines of WSP: empty */
	CHECK_STR(hash_of(DKIM_BODY_SIMPLE, s256, "\r\n\r\n\r\n", 6), "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
	CHECK_STR(hash_of(DKIM_BODY_RELAXED, s256, " \t\r\n\t\r\n\r\n", 9), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	/* simple keeps a WSP line */
	snprintf(want, sizeof want, "%s", sha(s256, " \r\n"));
	CHECK_STR(hash_of(DKIM_BODY_SIMPLE, s256, " \r\n\r\n", 5), want);
	/* a last line without CRLF gets one */
	snprintf(want, sizeof want, "%s", sha(s256, "a b\r\n"));
	CHECK_STR(hash_of(DKIM_BODY_RELAXED, s256, "a  b  ", 6), want);
	snprintf(want, sizeof want, "%s", sha(s256, "a  b  \r\n"));
	CHECK_STR(hash_of(DKIM_BODY_SIMPLE, s256, "a  b  ", 6), want);
	/* empty lines inside the body stay; a CR or LF alone is content */
	snprintf(want, sizeof want, "%s", sha(s256, "a\r\n\r\n\r\n b\r\n"));
	CHECK_STR(hash_of(DKIM_BODY_RELAXED, s256, "a\r\n \r\n\r\n  b \r\n\r\n", 16), want);
	{
		const char *in = "a\rb\r\nc\nd\r\n\r\r\n";
		snprintf(want, sizeof want, "%s", sha(s256, in));
		CHECK_STR(hash_of(DKIM_BODY_SIMPLE, s256, in, strlen(in)), want);
		in = "a \t\rb \r\n\r";
		snprintf(want, sizeof want, "%s", sha(s256, "a \rb\r\n\r\r\n"));
		CHECK_STR(hash_of(DKIM_BODY_RELAXED, s256, in, strlen(in)), want);
	}
	/* NUL bytes are content */
	{
		unsigned char d[EVP_MAX_MD_SIZE];
		unsigned n = 0;
		EVP_Digest("a\0b\r\n", 5, d, &n, s256, NULL);
		CHECK_STR(hash_of(DKIM_BODY_RELAXED, s256, "a\0b", 3), b64(d, n));
	}
}

/* every cut of a body into two and three pieces gives the one-piece hash */
static void test_splits(void)
{
	const char *body = "  a \t b\r\n\r\n \r\n\tc\r\r\n\r\n.\r\n..x \r\n\r\n\r\n";
	size_t len = strlen(body);

	for (int canon = 0; canon < 2; canon++) {
		char whole[128];
		snprintf(whole, sizeof whole, "%s", hash_of(canon, EVP_sha256(), body, len));
		for (size_t i = 0; i <= len; i++) {
			size_t cut[2] = {i, i};
			CHECK_STR(hash_chunks(canon, EVP_sha256(), body, len, cut, 1), whole);
			for (size_t j = i; j <= len; j += 3) {
				cut[1] = j;
				CHECK_STR(hash_chunks(canon, EVP_sha256(), body, len, cut, 2), whole);
			}
		}
		/* and byte by byte */
		{
			size_t cuts[64];
			for (size_t i = 0; i < len; i++)
				cuts[i] = i + 1;
			CHECK_STR(hash_chunks(canon, EVP_sha256(), body, len, cuts, len - 1), whole);
		}
	}
	/* a body longer than the buffer, in one piece and in odd pieces */
	{
		size_t n = 3 * DKIM_BODYHASH_BUF + 17, cuts[8];
		char *big = malloc(n);
		char whole[128];
		for (size_t i = 0; i < n; i++)
			big[i] = i % 61 == 60 ? '\n' : i % 61 == 59 ? '\r' : i % 7 == 0 ? ' ' : 'x';
		snprintf(whole, sizeof whole, "%s", hash_of(DKIM_BODY_RELAXED, EVP_sha256(), big, n));
		for (size_t i = 0; i < 8; i++)
			cuts[i] = (i + 1) * (n / 9) + i;
		CHECK_STR(hash_chunks(DKIM_BODY_RELAXED, EVP_sha256(), big, n, cuts, 8), whole);
		free(big);
	}
}

static void test_matches(void)
{
	unsigned char d[32];
	char enc[128], folded[256];

	for (int i = 0; i < 32; i++)
		d[i] = (unsigned char)(i * 37 + 1);
	snprintf(enc, sizeof enc, "%s", b64(d, 32));
	CHECK(dkim_bodyhash_matches(enc, d, 32));
	/* FWS anywhere (RFC 6376 3.5 bh=) */
	snprintf(folded, sizeof folded, "%.10s\r\n\t %.20s \t%s", enc, enc + 10, enc + 30);
	CHECK(dkim_bodyhash_matches(folded, d, 32));
	/* one bit off, shorter, longer, no padding, junk, empty, NULL */
	d[31] ^= 1;
	CHECK(!dkim_bodyhash_matches(enc, d, 32));
	d[31] ^= 1;
	CHECK(!dkim_bodyhash_matches(enc, d, 31));
	snprintf(folded, sizeof folded, "%sAAAA", enc);
	CHECK(!dkim_bodyhash_matches(folded, d, 32));
	snprintf(folded, sizeof folded, "%.43s", enc);
	CHECK(!dkim_bodyhash_matches(folded, d, 32));
	snprintf(folded, sizeof folded, "%.42s!=", enc);
	CHECK(!dkim_bodyhash_matches(folded, d, 32));
	CHECK(!dkim_bodyhash_matches("", d, 32));
	CHECK(!dkim_bodyhash_matches(NULL, d, 32));
	/* the SHA-1 length */
	snprintf(enc, sizeof enc, "%s", b64(d, 20));
	CHECK(dkim_bodyhash_matches(enc, d, 20));
	CHECK(!dkim_bodyhash_matches(enc, d, 32));
}

/* ---- against libopendkim ---- */

static void test_against_libopendkim(void)
{
	/* the session hands DKIM CRLF lines only: the bodies are made of
	 * these pieces (a bare CR or LF is not compared: libopendkim drops a
	 * bare CR in relaxed mode, which RFC 6376 does not define) */
	static const char *const pieces[] = {
		"a", "Zz9", " ", "\t", "  \t ", "\r\n", "\r\n", "\r\n\r\n", ".", "-- ", "\x80\xff",
	};
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	char *pem = libsign_key_pem();
	char body[2048];
	unsigned seed = 12345, compared = 0;

	CHECK(lib != NULL && pem != NULL);
	if (lib == NULL || pem == NULL)
		return;
	for (int round = 0; round < 300; round++) {
		size_t len = 0, npieces;
		seed = seed * 1103515245u + 12345u;
		npieces = (seed >> 16) % 120;
		for (size_t i = 0; i < npieces; i++) {
			const char *pc;
			seed = seed * 1103515245u + 12345u;
			pc = pieces[(seed >> 16) % (sizeof pieces / sizeof pieces[0])];
			if (len + strlen(pc) + 2 >= sizeof body)
				break;
			memcpy(body + len, pc, strlen(pc));
			len += strlen(pc);
		}
		/* and end in CRLF, as every SMTP body does (a body without one is
		 * RFC 6376's "a CRLF is added", which libopendkim's relaxed mode
		 * does not do: not compared) */
		if (len > 0 && (len < 2 || memcmp(body + len - 2, "\r\n", 2) != 0)) {
			memcpy(body + len, "\r\n", 2);
			len += 2;
		}
		for (int k = 0; k < 4; k++) {
			dkim_canon_t bc = k & 1 ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
			dkim_alg_t alg = k & 2 ? DKIM_SIGN_RSASHA1 : DKIM_SIGN_RSASHA256;
			const EVP_MD *md = k & 2 ? EVP_sha1() : EVP_sha256();
			char want[128];
			size_t cut = len / 3;
			bool signed_ok = libsign_bh(lib, pem, bc, alg, body, len, want, sizeof want);

			CHECK(signed_ok);
			if (!signed_ok)
				continue;
			CHECK_STR(hash_chunks(k & 1 ? DKIM_BODY_RELAXED : DKIM_BODY_SIMPLE, md, body, len, &cut, 1),
			    want);
			compared++;
		}
	}
	CHECK_INT(compared, 1200);
	free(pem);
	dkim_close(lib);
}

int main(void)
{
	test_known();
	test_splits();
	test_matches();
	test_against_libopendkim();
	return check_finish("test_dkim_bodyhash");
}

/*
 * test_dkim_pubkey - the parsed-key table behind d2i_PUBKEY_bio
 * (filters/dkim_pubkey.c): a repeat of the same bytes gives the same key
 * without a parse, different bytes a different key, bad bytes NULL and
 * nothing kept, the BIO is consumed as OpenSSL's function does, the table
 * stays bounded, and libopendkim's own calls come here (a message signed
 * and verified twice: the second verification parses no key, and a
 * changed body still fails with the kept key).
 */
#include <opendkim/dkim.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "filters/dkim_pubkey.h"
#include "tests/unit/check.h"

static void fixture_failed(const char *why)
{
	exit(check_error("test_dkim_pubkey", why));
}

static unsigned char *der_of(EVP_PKEY *k, int *len)
{
	unsigned char *der = NULL;

	*len = i2d_PUBKEY(k, &der);
	return *len > 0 ? der : NULL;
}

static EVP_PKEY *parse_bio(const unsigned char *der, int len, int *left)
{
	BIO *b = BIO_new_mem_buf(der, len);
	EVP_PKEY *k = d2i_PUBKEY_bio(b, NULL);

	*left = (int)BIO_pending(b);
	BIO_free(b);
	return k;
}

static void test_table(void)
{
	EVP_PKEY *gen = EVP_EC_gen("P-256"), *gen2 = EVP_EC_gen("P-256"), *k1, *k2, *k3;
	uint64_t hits0, parsed0, hits, parsed;
	unsigned char *der, *der2, buf[512];
	int len, len2, left;

	if (gen == NULL || gen2 == NULL || (der = der_of(gen, &len)) == NULL ||
	    (der2 = der_of(gen2, &len2)) == NULL)
		fixture_failed("cannot make test keys");
	CHECK(dkim_pubkey_interposed());
	dkim_pubkey_flush();
	dkim_pubkey_counts(&hits0, &parsed0);

	k1 = parse_bio(der, len, &left);
	CHECK(k1 != NULL && EVP_PKEY_eq(k1, gen) == 1);
	CHECK_INT(left, 0);
	/* the key's bytes and 3 more: other bytes, parsed; the BIO keeps
	 * what the key did not use, on a miss and on a hit */
	memcpy(buf, der, (size_t)len);
	memcpy(buf + len, "xyz", 3);
	k2 = parse_bio(buf, len + 3, &left);
	CHECK(k2 != NULL && k2 != k1 && EVP_PKEY_eq(k2, gen) == 1);
	CHECK_INT(left, 3);
	k3 = parse_bio(buf, len + 3, &left);
	CHECK(k3 == k2);
	CHECK_INT(left, 3);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
	k2 = parse_bio(der, len, &left);
	CHECK(k2 == k1);
	CHECK_INT(left, 0);
	dkim_pubkey_counts(&hits, &parsed);
	CHECK_INT(hits - hits0, 2);
	CHECK_INT(parsed - parsed0, 2);

	k3 = parse_bio(der2, len2, &left);
	CHECK(k3 != NULL && k3 != k1 && EVP_PKEY_eq(k3, gen2) == 1);
	EVP_PKEY_free(k3);

	/* freeing the caller's references leaves the kept one usable */
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	k1 = parse_bio(der, len, &left);
	CHECK(k1 != NULL && EVP_PKEY_eq(k1, gen) == 1);
	EVP_PKEY_free(k1);

	/* bad bytes: NULL each time, never kept */
	dkim_pubkey_counts(&hits0, &parsed0);
	memset(buf, 0x30, 64);
	CHECK(parse_bio(buf, 64, &left) == NULL);
	CHECK(parse_bio(buf, 64, &left) == NULL);
	dkim_pubkey_counts(&hits, &parsed);
	CHECK_INT(hits - hits0, 0);
	CHECK_INT(parsed - parsed0, 2);

	/* a reuse object or another BIO type: OpenSSL's own path, no table */
	{
		BIO *b = BIO_new_mem_buf(der, len);
		EVP_PKEY *into = NULL, *r;
		dkim_pubkey_counts(&hits0, &parsed0);
		r = d2i_PUBKEY_bio(b, &into);
		CHECK(r != NULL && r == into && EVP_PKEY_eq(r, gen) == 1);
		dkim_pubkey_counts(&hits, &parsed);
		CHECK_INT(hits - hits0 + parsed - parsed0, 0);
		EVP_PKEY_free(r);
		BIO_free(b);
	}

	/* bounded: after DKIM_PUBKEY_SLOTS other keys the first is parsed again */
	for (int i = 0; i < DKIM_PUBKEY_SLOTS; i++) {
		EVP_PKEY *g = EVP_EC_gen("P-256");
		unsigned char *d;
		int n;
		if (g == NULL || (d = der_of(g, &n)) == NULL)
			fixture_failed("cannot make test keys");
		EVP_PKEY_free(parse_bio(d, n, &left));
		OPENSSL_free(d);
		EVP_PKEY_free(g);
	}
	dkim_pubkey_counts(&hits0, &parsed0);
	EVP_PKEY_free(parse_bio(der, len, &left));
	dkim_pubkey_counts(&hits, &parsed);
	CHECK_INT(parsed - parsed0, 1);

	dkim_pubkey_flush();
	OPENSSL_free(der);
	OPENSSL_free(der2);
	EVP_PKEY_free(gen);
	EVP_PKEY_free(gen2);
}

/* ---- through libopendkim ---- */

static char key_txt[1024];

static DKIM_CBSTAT key_cb(DKIM *d, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
	(void)d;
	(void)sig;
	if (strlen(key_txt) + 1 > buflen)
		return DKIM_CBSTAT_ERROR;
	memcpy(buf, key_txt, strlen(key_txt) + 1);
	return DKIM_CBSTAT_CONTINUE;
}

static const char *hdrs[] = {
	"From: a@example.org",
	"To: b@example.net",
	"Subject: key table",
	"Message-ID: <1@example.org>",
};

/* verify - the message with sighdr on top; the first signature's result */
static bool verify(DKIM_LIB *lib, const char *sighdr, const char *body)
{
	DKIM_STAT st;
	DKIM *d = dkim_verify(lib, (const u_char *)"v", NULL, &st);
	DKIM_SIGINFO **sigs;
	int nsigs;
	bool pass = false;

	if (d == NULL)
		return false;
	dkim_header(d, (u_char *)sighdr, strlen(sighdr));
	for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++)
		dkim_header(d, (u_char *)hdrs[i], strlen(hdrs[i]));
	if (dkim_eoh(d) == DKIM_STAT_OK) {
		dkim_body(d, (u_char *)body, strlen(body));
		dkim_eom(d, NULL);
		if (dkim_getsiglist(d, &sigs, &nsigs) == DKIM_STAT_OK && nsigs == 1)
			pass = DKIM_SIG_CHECK(sigs[0]);
	}
	dkim_free(d);
	return pass;
}

static void test_libopendkim(void)
{
	const char *body = "hello\r\nworld\r\n";
	EVP_PKEY *priv = EVP_RSA_gen(2048);
	BIO *pem = BIO_new(BIO_s_mem());
	char *pem_data, sighdr[2048] = "DKIM-Signature: ", *p;
	long pem_len;
	unsigned char *der;
	int der_len;
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	DKIM_STAT st;
	DKIM *s;
	uint64_t hits0, parsed0, hits, parsed;

	if (priv == NULL || pem == NULL || lib == NULL ||
	    !PEM_write_bio_PrivateKey(pem, priv, NULL, NULL, 0, NULL, NULL) ||
	    (der = der_of(priv, &der_len)) == NULL)
		fixture_failed("cannot make the signing key");
	pem_len = BIO_get_mem_data(pem, &pem_data);
	strcpy(key_txt, "v=DKIM1; k=rsa; p=");
	EVP_EncodeBlock((unsigned char *)key_txt + strlen(key_txt), der, der_len);
	dkim_set_key_lookup(lib, key_cb);

	{
		char *key = strndup(pem_data, (size_t)pem_len);
		s = dkim_sign(lib, (const u_char *)"s", NULL, (dkim_sigkey_t)key, (const u_char *)"sel",
		    (const u_char *)"example.org", DKIM_CANON_RELAXED, DKIM_CANON_RELAXED,
		    DKIM_SIGN_RSASHA256, -1, &st);
		if (s == NULL)
			fixture_failed("dkim_sign failed");
		for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++)
			dkim_header(s, (u_char *)hdrs[i], strlen(hdrs[i]));
		dkim_eoh(s);
		dkim_body(s, (u_char *)body, strlen(body));
		if (dkim_eom(s, NULL) != DKIM_STAT_OK ||
		    dkim_getsighdr(s, (u_char *)sighdr + strlen(sighdr), sizeof sighdr - strlen(sighdr),
		    strlen("DKIM-Signature: ")) != DKIM_STAT_OK)
			fixture_failed("signing failed");
		dkim_free(s);
		free(key);
	}
	/* unfold: dkim_header takes the field as received, inner CRLFs fine */
	for (p = sighdr; *p; p++)
		if (*p == '\n' && p[-1] != '\r')
			fixture_failed("unexpected bare LF in the signature");

	dkim_pubkey_flush();
	dkim_pubkey_counts(&hits0, &parsed0);
	CHECK(verify(lib, sighdr, body));
	dkim_pubkey_counts(&hits, &parsed);
	CHECK_INT(parsed - parsed0, 1);   /* libopendkim's parse came here */
	CHECK_INT(hits - hits0, 0);
	CHECK(verify(lib, sighdr, body));
	dkim_pubkey_counts(&hits, &parsed);
	CHECK_INT(parsed - parsed0, 1);   /* the second one parsed nothing */
	CHECK_INT(hits - hits0, 1);
	CHECK(!verify(lib, sighdr, "hello\r\nworld!\r\n"));   /* the kept key still checks */

	dkim_pubkey_flush();
	dkim_close(lib);
	OPENSSL_free(der);
	BIO_free(pem);
	EVP_PKEY_free(priv);
}

int main(void)
{
	test_table();
	test_libopendkim();
	return check_finish("test_dkim_pubkey");
}

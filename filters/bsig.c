/*
 * bsig - make and check X-Backstop-Sig values. See bsig.h for the format.
 *
 * The value is read from mail that anyone can send us (a bounce quoting a
 * forged original), so the parser accepts exactly one shape and nothing
 * else: no unknown tags, no reordering, no duplicate tags, no leading
 * zeros, no padding, no non-canonical base64 (the unused low bits of the
 * last character must be zero, so each MAC has exactly one spelling).
 *
 * HMAC: OpenSSL's one-shot HMAC() with SHA-256, as batv_tag.c uses it with
 * SHA-1; the comparison is CRYPTO_memcmp (constant time).
 */
#define _POSIX_C_SOURCE 200809L  /* strncasecmp */

#include "filters/bsig.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define BSIG_DOMAIN "backstop-sig v=1"
#define BSIG_SENTLOG_LABEL "backstop sentlog v1"
#define BSIG_MAC_CHARS 22        /* base64url of 16 bytes, unpadded */
#define BSIG_DAY_DIGITS 10
#define BSIG_PARSE_MAX 512       /* a longer value is not one of ours */

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* b64url_encode16 - 16 bytes as 22 base64url characters and a NUL. */
static void b64url_encode16(const unsigned char in[BSIG_MAC_BYTES], char out[BSIG_MAC_CHARS + 1])
{
	size_t o = 0;
	unsigned i;

	for (i = 0; i + 3 <= BSIG_MAC_BYTES; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		out[o++] = b64url[v >> 6 & 63];
		out[o++] = b64url[v & 63];
	}
	/* one byte left (16 = 5 * 3 + 1): two characters */
	out[o++] = b64url[in[i] >> 2];
	out[o++] = b64url[(in[i] & 3) << 4];
	out[o] = '\0';
}

/* b64url_decode16 - 22 characters to 16 bytes; -1 unless canonical. */
static int b64url_decode16(const char *in, unsigned char out[BSIG_MAC_BYTES])
{
	int v[BSIG_MAC_CHARS];
	unsigned o = 0, i;

	for (i = 0; i < BSIG_MAC_CHARS; i++)
		if ((v[i] = b64url_value(in[i])) < 0)
			return -1;
	if (v[BSIG_MAC_CHARS - 1] & 15)
		return -1;   /* bits beyond the 128th set: another spelling */
	for (i = 0; i + 4 <= 20; i += 4) {
		uint32_t w = (uint32_t)v[i] << 18 | (uint32_t)v[i + 1] << 12 |
		    (uint32_t)v[i + 2] << 6 | (uint32_t)v[i + 3];
		out[o++] = (unsigned char)(w >> 16);
		out[o++] = (unsigned char)(w >> 8);
		out[o++] = (unsigned char)w;
	}
	out[o] = (unsigned char)(v[20] << 2 | v[21] >> 4);
	return 0;
}

/* unix_day - days since 1970-01-01, rounding towards minus infinity. */
static long long unix_day(time_t now)
{
	long long t = (long long)now;
	return t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
}

/* put - append byte c to out if there is room for it and a NUL. */
static void put(char *out, size_t cap, size_t *n, char c)
{
	if (*n + 1 < cap)
		out[(*n)++] = c;
}

size_t bsig_canon_msgid(const char *in, char *out, size_t cap)
{
	const char *s = in ? in : "", *e, *lt, *gt;
	size_t n = 0;

	if (cap == 0)
		return 0;
	while (is_blank(*s))
		s++;
	e = s + strlen(s);
	while (e > s && is_blank(e[-1]))
		e--;
	lt = memchr(s, '<', (size_t)(e - s));
	gt = lt ? memchr(lt, '>', (size_t)(e - lt)) : NULL;
	if (lt != NULL && gt != NULL) {
		s = lt;
		e = gt + 1;
	}
	for (; s < e; s++)
		if (*s != '\r' && *s != '\n')   /* folding inside a long id */
			put(out, cap, &n, *s);
	out[n] = '\0';
	return n;
}

size_t bsig_canon_date(const char *in, char *out, size_t cap)
{
	const char *s = in ? in : "";
	bool blank = false;
	unsigned depth = 0;
	size_t n = 0;

	if (cap == 0)
		return 0;
	while (is_blank(*s))
		s++;
	for (; *s; s++) {
		/* comments (nested, with quoted pairs) are left out: a reader
		 * that keeps only the first 63 bytes of "... +0000 (Coordinated
		 * Universal Time)" still gets the same date */
		if (depth > 0 || *s == '(') {
			if (*s == '\\' && s[1] != '\0')
				s++;
			else if (*s == '(')
				depth++;
			else if (*s == ')')
				depth--;
			blank = true;
			continue;
		}
		if (is_blank(*s)) {
			blank = true;
			continue;
		}
		if (blank && n > 0)
			put(out, cap, &n, ' ');
		blank = false;
		put(out, cap, &n, *s);
	}
	out[n] = '\0';
	return n;
}

/* prvs_tag_len - 16 when s starts with a well-formed "prvs=KDDDHHHHHH=". */
static size_t prvs_tag_len(const char *s, size_t len)
{
	if (len < 17 || strncasecmp(s, "prvs=", 5) != 0 || s[15] != '=')
		return 0;
	for (int i = 5; i < 9; i++)
		if (!is_digit(s[i]))
			return 0;
	for (int i = 9; i < 15; i++)
		if (!is_hex(s[i]))
			return 0;
	return 16;
}

size_t bsig_canon_sender(const char *in, char *out, size_t cap)
{
	const char *s = in ? in : "", *e, *at;
	size_t n = 0;

	if (cap == 0)
		return 0;
	while (is_blank(*s))
		s++;
	e = s + strlen(s);
	while (e > s && is_blank(e[-1]))
		e--;
	if (e - s >= 2 && s[0] == '<' && e[-1] == '>') {
		s++;
		e--;
	}
	s += prvs_tag_len(s, (size_t)(e - s));
	at = NULL;
	for (const char *p = s; p < e; p++)
		if (*p == '@')
			at = p;
	for (const char *p = s; p < e; p++) {
		char c = *p;
		if (at != NULL && p > at && c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		put(out, cap, &n, c);
	}
	out[n] = '\0';
	return n;
}

/* sig_mac - the 16-byte MAC of (key, day, message-id, date, sender). */
static int sig_mac(const struct batv_keys *keys, unsigned key, long long day,
    const char *message_id, const char *date, const char *sender,
    unsigned char mac[BSIG_MAC_BYTES])
{
	char data[sizeof BSIG_DOMAIN + 2 + 2 + 24 + BSIG_MSGID_MAX + 1 + BSIG_DATE_MAX + 1 +
	    BSIG_SENDER_MAX + 1];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t n;
	int w;

	if (key >= BATV_NKEYS || !keys->present[key])
		return -1;
	/* NUL separators: no field can contain one, so the split is unique */
	w = snprintf(data, sizeof data, "%s%c%u%c%lld%c", BSIG_DOMAIN, 0, key, 0, day, 0);
	if (w < 0)
		return -1;
	n = (size_t)w;
	n += bsig_canon_msgid(message_id, data + n, BSIG_MSGID_MAX + 1) + 1;
	n += bsig_canon_date(date, data + n, BSIG_DATE_MAX + 1) + 1;
	n += bsig_canon_sender(sender, data + n, BSIG_SENDER_MAX + 1);
	if (HMAC(EVP_sha256(), keys->secret[key], (int)keys->len[key], (unsigned char *)data, n,
	    md, &mdlen) == NULL || mdlen < BSIG_MAC_BYTES)
		return -1;
	memcpy(mac, md, BSIG_MAC_BYTES);
	OPENSSL_cleanse(md, sizeof md);
	return 0;
}

int bsig_make(const struct batv_keys *keys, unsigned key, time_t now, const char *message_id,
    const char *date, const char *sender, char *out, size_t cap)
{
	unsigned char mac[BSIG_MAC_BYTES];
	char enc[BSIG_MAC_CHARS + 1];
	long long day = unix_day(now);
	int n;

	if (cap == 0 || sig_mac(keys, key, day, message_id, date, sender, mac) < 0)
		return -1;
	b64url_encode16(mac, enc);
	n = snprintf(out, cap, "v=1; k=%u; t=%lld; s=%s", key, day, enc);
	if (n < 0 || (size_t)n >= cap) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

/* skip_blanks - past blanks (and folding); */
static const char *skip_blanks(const char *p)
{
	while (is_blank(*p))
		p++;
	return p;
}

/* expect_tag - `B* name B* "=" B*` at p: the byte after it, or NULL. */
static const char *expect_tag(const char *p, char name)
{
	p = skip_blanks(p);
	if (*p != name)
		return NULL;
	p = skip_blanks(p + 1);
	if (*p != '=')
		return NULL;
	return skip_blanks(p + 1);
}

/* expect_semicolon - `B* ";"` at p: the byte after it, or NULL. */
static const char *expect_semicolon(const char *p)
{
	p = skip_blanks(p);
	return *p == ';' ? p + 1 : NULL;
}

/*
 * parse_value - the strict grammar:
 *   B* "v" B* "=" B* "1" B* ";" B* "k" B* "=" B* DIGIT B* ";"
 *   B* "t" B* "=" B* DAY B* ";" B* "s" B* "=" B* 22*B64URL B* END
 * B = SP / HTAB / CR / LF; DAY = "0" / %x31-39 0*9DIGIT.
 */
static int parse_value(const char *value, unsigned *key, long long *day,
    unsigned char mac[BSIG_MAC_BYTES])
{
	const char *p = value;
	long long d = 0;
	int digits = 0;

	if (strnlen(value, BSIG_PARSE_MAX + 1) > BSIG_PARSE_MAX)
		return -1;
	if ((p = expect_tag(p, 'v')) == NULL || *p != '1' || (p = expect_semicolon(p + 1)) == NULL)
		return -1;
	if ((p = expect_tag(p, 'k')) == NULL || !is_digit(*p))
		return -1;
	*key = (unsigned)(*p - '0');
	if ((p = expect_semicolon(p + 1)) == NULL)
		return -1;
	if ((p = expect_tag(p, 't')) == NULL || !is_digit(*p) || (p[0] == '0' && is_digit(p[1])))
		return -1;
	for (; is_digit(*p); p++) {
		if (++digits > BSIG_DAY_DIGITS)
			return -1;
		d = d * 10 + (*p - '0');
	}
	*day = d;
	if ((p = expect_semicolon(p)) == NULL || (p = expect_tag(p, 's')) == NULL)
		return -1;
	for (int i = 0; i < BSIG_MAC_CHARS; i++)
		if (b64url_value(p[i]) < 0)
			return -1;
	if (b64url_decode16(p, mac) < 0)
		return -1;
	p = skip_blanks(p + BSIG_MAC_CHARS);
	return *p == '\0' ? 0 : -1;
}

enum bsig_status bsig_check(const struct batv_keys *keys, time_t now, unsigned max_age_days,
    const char *value, const char *message_id, const char *date, const char *sender)
{
	unsigned char got[BSIG_MAC_BYTES], want[BSIG_MAC_BYTES];
	long long day, today = unix_day(now);
	unsigned key;
	int same;

	if (value == NULL || *skip_blanks(value) == '\0')
		return BSIG_NONE;
	if (parse_value(value, &key, &day, got) < 0)
		return BSIG_BAD;
	if (key >= BATV_NKEYS || !keys->present[key])
		return BSIG_BAD;
	if (sig_mac(keys, key, day, message_id, date, sender, want) < 0)
		return BSIG_BAD;
	same = CRYPTO_memcmp(got, want, BSIG_MAC_BYTES) == 0;
	OPENSSL_cleanse(want, sizeof want);
	if (!same)
		return BSIG_BAD;
	/* the MAC is good: only now does the day mean anything */
	if (day > today + BSIG_FUTURE_DAYS)
		return BSIG_BAD;
	if (today - day > (long long)max_age_days)
		return BSIG_EXPIRED;
	return BSIG_VALID;
}

const char *bsig_status_name(enum bsig_status st)
{
	switch (st) {
	case BSIG_NONE: return "none";
	case BSIG_VALID: return "valid";
	case BSIG_EXPIRED: return "expired";
	case BSIG_BAD: return "bad";
	}
	return "unknown";
}

int bsig_sentlog_key(const struct batv_keys *keys, unsigned char out[BSIG_SENTLOG_KEY_BYTES])
{
	unsigned int len = 0;
	unsigned key = 0;

	while (key < BATV_NKEYS && !keys->present[key])
		key++;
	if (key >= BATV_NKEYS)
		return -1;
	if (HMAC(EVP_sha256(), keys->secret[key], (int)keys->len[key],
	    (const unsigned char *)BSIG_SENTLOG_LABEL, sizeof BSIG_SENTLOG_LABEL - 1, out,
	    &len) == NULL || len != BSIG_SENTLOG_KEY_BYTES)
		return -1;
	return (int)key;
}

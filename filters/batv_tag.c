/*
 * batv_tag - BATV "prvs" tags: make, check and strip them; read the keys
 * file. See batv_tag.h for the tag format and the contract.
 *
 * Interoperability with Exim 4.96 (${prvs}, ${prvscheck}), checked against
 * the real binary by tests/integration/batv_exim.sh:
 *   - the "prvs=" prefix is matched case-insensitively (Exim's prvscheck
 *     regex is caseless: "PRVS=..." is checked like "prvs=...");
 *   - the hash is written in lowercase hex; Exim compares it as a string,
 *     so it refuses uppercase hex, while we accept either case (the draft
 *     does not forbid a relay from changing case; a tag we accept and Exim
 *     refuses costs nothing, the MAC bytes are the same);
 *   - the address after the tag is hashed byte for byte, case preserved
 *     (Exim does not lowercase it: "USER@" and "user@" have different MACs);
 *   - the address is everything after "prvs=KDDDHHHHHH=", split at its last
 *     '@' (Exim's regex is "(.+)\@(.+)$", greedy), both parts non-empty.
 * Validity follows draft-levine-smtp-batv-01 section 4.1, not Exim:
 * (DDD - today) mod 1000 <= validity, so a tag stays valid across the wrap
 * from day 999 to 000 and an expired tag never becomes valid again.
 *
 * DIAGNOSTICS: batv_keys_load() explains failures as "path:line: reason" and
 * never copies secret bytes into the message.
 */
#define _POSIX_C_SOURCE 200809L  /* getline, strncasecmp, O_CLOEXEC */

#include "filters/batv_tag.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define PRVS_PREFIX "prvs="
#define PRVS_PREFIX_LEN 5
#define PRVS_TAG_LEN 16          /* "prvs=" K DDD HHHHHH "=" */
#define PRVS_MAC_BYTES 3
#define BATV_HASHED_MAX 1024     /* bound on the hashed address; SMTP allows 254 */
#define KEYS_LINE_MAX 512

/* hexval - value of one hex digit, either case, or -1. */
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * prvs_mac - first three bytes of HMAC-SHA1(secret, K DDD addr).
 * Returns 0, or -1 when the address is too long or OpenSSL fails.
 */
static int prvs_mac(const struct batv_keys *keys, unsigned key, unsigned ddd,
    const char *addr, size_t addrlen, unsigned char mac[PRVS_MAC_BYTES])
{
	unsigned char data[4 + BATV_HASHED_MAX];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (addrlen > BATV_HASHED_MAX || key >= BATV_NKEYS)
		return -1;
	data[0] = (unsigned char)('0' + key);
	data[1] = (unsigned char)('0' + ddd / 100);
	data[2] = (unsigned char)('0' + ddd / 10 % 10);
	data[3] = (unsigned char)('0' + ddd % 10);
	memcpy(data + 4, addr, addrlen);
	if (HMAC(EVP_sha1(), keys->secret[key], (int)keys->len[key], data,
	    4 + addrlen, md, &mdlen) == NULL || mdlen < PRVS_MAC_BYTES)
		return -1;
	memcpy(mac, md, PRVS_MAC_BYTES);
	OPENSSL_cleanse(md, sizeof md);
	return 0;
}

long batv_today(void)
{
	return (long)(time(NULL) / 86400);
}

/* day_mod - today's day number modulo 1000, also for negative inputs. */
static unsigned day_mod(long day)
{
	long m = day % 1000;
	return (unsigned)(m < 0 ? m + 1000 : m);
}

long batv_sign(const struct batv_keys *keys, unsigned key, const char *addr,
    long today, unsigned validity_days, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[PRVS_MAC_BYTES];
	size_t addrlen = strlen(addr);
	const char *at = strrchr(addr, '@');
	unsigned ddd;

	if (key >= BATV_NKEYS || !keys->present[key])
		return -1;
	if (at == NULL || at == addr || at[1] == '\0')
		return -1;
	if (PRVS_TAG_LEN + addrlen + 1 > cap)
		return -1;
	/* draft section 4.1: the tag carries the expiry day, not today */
	ddd = (day_mod(today) + validity_days % 1000) % 1000;
	if (prvs_mac(keys, key, ddd, addr, addrlen, mac) < 0)
		return -1;
	memcpy(out, PRVS_PREFIX, PRVS_PREFIX_LEN);
	out[5] = (char)('0' + key);
	out[6] = (char)('0' + ddd / 100);
	out[7] = (char)('0' + ddd / 10 % 10);
	out[8] = (char)('0' + ddd % 10);
	for (int i = 0; i < PRVS_MAC_BYTES; i++) {
		out[9 + 2 * i] = hex[mac[i] >> 4];
		out[10 + 2 * i] = hex[mac[i] & 15];
	}
	out[15] = '=';
	memcpy(out + PRVS_TAG_LEN, addr, addrlen + 1);
	return (long)(PRVS_TAG_LEN + addrlen);
}

/* copy_capped - strlcpy: copy what fits, always NUL-terminate if cap > 0. */
static void copy_capped(char *dst, const char *src, size_t cap)
{
	size_t n;

	if (cap == 0)
		return;
	n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * batv_check - see batv_tag.h. When the address does not fit in stripped,
 * it is cut (NUL-terminated) and a well-formed tag reports BATV_MALFORMED:
 * a cut address is never handed over as a verified one.
 */
enum batv_status batv_check(const struct batv_keys *keys, const char *addr,
    long today, unsigned validity_days, char *stripped, size_t cap)
{
	unsigned char want[PRVS_MAC_BYTES], got[PRVS_MAC_BYTES];
	const char *rest, *at;
	size_t restlen;
	unsigned key, ddd, ahead;

	if (strncasecmp(addr, PRVS_PREFIX, PRVS_PREFIX_LEN) != 0) {
		/* SRS0=, btv1==, msprvs1= ...: other schemes, not ours */
		copy_capped(stripped, addr, cap);
		return BATV_NO_TAG;
	}
	/* "prvs=" K DDD HHHHHH "=" local "@" domain, nothing else */
	for (int i = 5; i < 9; i++)
		if (!is_digit(addr[i]))
			goto malformed;
	for (int i = 9; i < 15; i++)
		if (hexval(addr[i]) < 0)
			goto malformed;
	if (addr[15] != '=')
		goto malformed;
	rest = addr + PRVS_TAG_LEN;
	restlen = strlen(rest);
	at = strrchr(rest, '@');
	if (at == NULL || at == rest || at[1] == '\0' || restlen > BATV_HASHED_MAX)
		goto malformed;
	if (restlen >= cap)
		goto malformed;
	memcpy(stripped, rest, restlen + 1);

	key = (unsigned)(addr[5] - '0');
	ddd = (unsigned)((addr[6] - '0') * 100 + (addr[7] - '0') * 10 + (addr[8] - '0'));
	if (!keys->present[key])
		return BATV_UNKNOWN_KEY;
	for (int i = 0; i < PRVS_MAC_BYTES; i++)
		got[i] = (unsigned char)(hexval(addr[9 + 2 * i]) << 4 | hexval(addr[10 + 2 * i]));
	if (prvs_mac(keys, key, ddd, rest, restlen, want) < 0)
		return BATV_MALFORMED;
	if (CRYPTO_memcmp(want, got, PRVS_MAC_BYTES) != 0)
		return BATV_BAD_MAC;
	/* draft section 4.1: unsigned subtraction mod 1000 survives the wrap */
	ahead = (ddd + 1000 - day_mod(today)) % 1000;
	if (ahead > validity_days)
		return BATV_EXPIRED;
	return BATV_VALID;

malformed:
	copy_capped(stripped, addr, cap);
	return BATV_MALFORMED;
}

const char *batv_status_text(enum batv_status st)
{
	switch (st) {
	case BATV_VALID: return "valid";
	case BATV_NO_TAG: return "no BATV tag";
	case BATV_MALFORMED: return "malformed BATV tag";
	case BATV_UNKNOWN_KEY: return "unknown BATV key";
	case BATV_BAD_MAC: return "invalid BATV signature";
	case BATV_EXPIRED: return "BATV tag expired";
	}
	return "unknown BATV status";
}

/* keys_error - format "path:line: reason" (line 0: "path: reason"). */
static int keys_error(char *err, size_t errlen, const char *path,
    unsigned line, const char *reason)
{
	if (errlen == 0)
		return -1;
	if (line)
		snprintf(err, errlen, "%s:%u: %s", path, line, reason);
	else
		snprintf(err, errlen, "%s: %s", path, reason);
	return -1;
}

/*
 * keys_parse_line - one line: blank, '#' comment, or "K secret". The secret
 * is the rest of the line after the blanks that follow K, trailing blanks
 * (and CR) removed; inner blanks are part of it. Returns 0 or -1 with a
 * reason that never quotes the secret.
 */
static int keys_parse_line(char *s, struct batv_keys *k, const char **why)
{
	size_t len;
	unsigned key;

	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
	    s[len - 1] == '\r' || s[len - 1] == '\n'))
		s[--len] = '\0';
	if (len == 0 || s[0] == '#')
		return 0;
	if (!is_digit(s[0]) || (s[1] != ' ' && s[1] != '\t')) {
		*why = is_digit(s[0]) && is_digit(s[1])
		    ? "key number must be one digit, 0-9"
		    : "expected \"<key number 0-9> <secret>\"";
		return -1;
	}
	key = (unsigned)(s[0] - '0');
	s += 2;
	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	if (len == 0) {
		*why = "empty secret";
		return -1;
	}
	if (len > BATV_SECRET_MAX) {
		*why = "secret longer than 64 bytes (Exim refuses those)";
		return -1;
	}
	if (k->present[key]) {
		*why = "key number defined twice";
		return -1;
	}
	k->present[key] = true;
	memcpy(k->secret[key], s, len);
	k->len[key] = len;
	return 0;
}

int batv_keys_load(const char *path, struct batv_keys *keys, char *err,
    size_t errlen)
{
	struct batv_keys k;
	char *line = NULL, why[160], iobuf[4096];
	size_t linecap = 0;
	ssize_t n;
	const char *reason = NULL;
	struct stat st;
	unsigned lineno = 0, nkeys = 0;
	int fd, rc = -1;
	FILE *fp;

	if (errlen)
		err[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, sizeof why, "cannot open: %s", strerror(errno));
		return keys_error(err, errlen, path, 0, why);
	}
	/* fstat the open file: no window between the check and the read */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return keys_error(err, errlen, path, 0, "not a regular file");
	}
	/* others must have no access, and the group no write access (one
	 * who can write the keys can make tags that pass); a group may read,
	 * so that keys can be shared with the user backstop runs as */
	if (st.st_mode & (S_IWGRP | S_IRWXO)) {
		close(fd);
		snprintf(why, sizeof why, "mode %04o gives %s access to the "
		    "secrets; chmod g-w,o-rwx it", (unsigned)(st.st_mode & 07777),
		    st.st_mode & S_IRWXO ? "others" : "the group write");
		return keys_error(err, errlen, path, 0, why);
	}
	if ((fp = fdopen(fd, "r")) == NULL) {
		close(fd);
		return keys_error(err, errlen, path, 0, "cannot read");
	}
	/* stdio's own buffer holds the secrets too: ours, to be cleansed
	 * (fclose would free a malloc'd one as it is) */
	setvbuf(fp, iobuf, _IOFBF, sizeof iobuf);
	memset(&k, 0, sizeof k);
	while ((n = getline(&line, &linecap, fp)) >= 0) {
		lineno++;
		if (n > KEYS_LINE_MAX) {
			reason = "line too long";
			break;
		}
		if (memchr(line, '\0', (size_t)n) != NULL) {
			reason = "NUL byte in line";
			break;
		}
		if (keys_parse_line(line, &k, &reason) < 0)
			break;
	}
	if (reason == NULL && ferror(fp)) {
		lineno = 0;
		reason = "read error";
	}
	fclose(fp);
	OPENSSL_cleanse(iobuf, sizeof iobuf);
	if (line != NULL)
		OPENSSL_cleanse(line, linecap);
	free(line);
	if (reason != NULL) {
		keys_error(err, errlen, path, lineno, reason);
		goto out;
	}
	for (unsigned i = 0; i < BATV_NKEYS; i++)
		nkeys += k.present[i];
	if (nkeys == 0) {
		keys_error(err, errlen, path, 0, "no keys (expected \"<key number> <secret>\" lines)");
		goto out;
	}
	*keys = k;
	rc = 0;
out:
	OPENSSL_cleanse(&k, sizeof k);
	return rc;
}

/*
 * test_batv_tag - prvs tags against vectors made by Exim 4.96 (Debian
 * exim4-daemon-light, "${prvs{addr}{secret}{key}}" under faketime), the
 * draft's day-number wrap, malformed and foreign tags, and the keys file.
 *
 * Day numbers: 2024-01-01 is day 19723; 2024-09-25 is 19991; 2024-09-29 is
 * 19995; 2024-10-03 is 19999; 2024-10-04 is 20000.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* MAP_ANONYMOUS in check.h */
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filters/batv_tag.h"
#include "tests/unit/check.h"

#define DAY_20240101 19723L

static void keys_set(struct batv_keys *k, unsigned key, const char *secret)
{
	k->present[key] = true;
	k->len[key] = strlen(secret);
	memcpy(k->secret[key], secret, k->len[key]);
}

/* One Exim vector: addr signed under secret/key on day gives tag. */
struct vector {
	const char *secret;
	unsigned key;
	long day;
	const char *addr;
	const char *tag;
};

static const struct vector vectors[] = {
	/* the reference vector (test-peers.md section 6), also python hmac */
	{"secret", 1, DAY_20240101, "user@example.com", "prvs=173025a701=user@example.com"},
	/* every key number, each with its own secret */
	{"secret-0", 0, DAY_20240101, "user@example.com", "prvs=0730408689=user@example.com"},
	{"secret-1", 1, DAY_20240101, "user@example.com", "prvs=173059abb2=user@example.com"},
	{"secret-2", 2, DAY_20240101, "user@example.com", "prvs=2730c8c233=user@example.com"},
	{"secret-3", 3, DAY_20240101, "user@example.com", "prvs=373067f938=user@example.com"},
	{"secret-4", 4, DAY_20240101, "user@example.com", "prvs=47302a02b6=user@example.com"},
	{"secret-5", 5, DAY_20240101, "user@example.com", "prvs=5730e8f4cf=user@example.com"},
	{"secret-6", 6, DAY_20240101, "user@example.com", "prvs=6730002bce=user@example.com"},
	{"secret-7", 7, DAY_20240101, "user@example.com", "prvs=77308844ea=user@example.com"},
	{"secret-8", 8, DAY_20240101, "user@example.com", "prvs=87300a6f65=user@example.com"},
	{"secret-9", 9, DAY_20240101, "user@example.com", "prvs=9730028c23=user@example.com"},
	/* expiry day wraps: day 19995 + 7 = 20002 -> DDD 002 */
	{"secret", 1, 19995, "user@example.com", "prvs=1002a76786=user@example.com"},
	{"secret", 1, 19991, "user@example.com", "prvs=1998a637d8=user@example.com"},
	/* local parts with '+', '=', quotes, mixed case: hashed as written */
	{"secret", 3, DAY_20240101, "Us+e=r@Example.COM", "prvs=3730d6e76a=Us+e=r@Example.COM"},
	{"secret", 3, DAY_20240101, "a+b@example.com", "prvs=3730de2b43=a+b@example.com"},
	{"secret", 3, DAY_20240101, "x=y=z@example.org", "prvs=3730dd982e=x=y=z@example.org"},
	{"secret", 3, DAY_20240101, "\"j doe\"@example.com", "prvs=373015982b=\"j doe\"@example.com"},
	{"secret", 3, DAY_20240101, "\"a@b\"@example.com", "prvs=3730a80fec=\"a@b\"@example.com"},
	{"secret", 3, DAY_20240101, "MiXeD.Case@Example.Com", "prvs=37306eacb2=MiXeD.Case@Example.Com"},
};

/* test_vectors - batv_sign reproduces Exim; batv_check accepts Exim's tag. */
static void test_vectors(void)
{
	char out[300], stripped[300];

	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		const struct vector *t = &vectors[i];
		struct batv_keys k;
		memset(&k, 0, sizeof k);
		keys_set(&k, t->key, t->secret);
		CHECK_INT(batv_sign(&k, t->key, t->addr, t->day, 7, out, sizeof out),
		    (long)strlen(t->tag));
		CHECK_STR(out, t->tag);
		CHECK_INT(batv_check(&k, t->tag, t->day, 7, stripped, sizeof stripped), BATV_VALID);
		CHECK_STR(stripped, t->addr);
		/* last valid day, then the day after */
		CHECK_INT(batv_check(&k, t->tag, t->day + 7, 7, stripped, sizeof stripped), BATV_VALID);
		CHECK_INT(batv_check(&k, t->tag, t->day + 8, 7, stripped, sizeof stripped), BATV_EXPIRED);
		CHECK_STR(stripped, t->addr);
		/* the wrong key number for the same secret set */
		struct batv_keys other;
		memset(&other, 0, sizeof other);
		keys_set(&other, (t->key + 1) % 10, t->secret);
		CHECK_INT(batv_check(&other, t->tag, t->day, 7, stripped, sizeof stripped), BATV_UNKNOWN_KEY);
		CHECK_STR(stripped, t->addr);
		/* same key number, another secret */
		keys_set(&other, t->key, "not the secret");
		CHECK_INT(batv_check(&other, t->tag, t->day, 7, stripped, sizeof stripped), BATV_BAD_MAC);
	}
}

/* test_wrap - draft 4.1: (DDD - today) mod 1000 <= validity. */
static void test_wrap(void)
{
	struct batv_keys k;
	char out[300], s[300];

	memset(&k, 0, sizeof k);
	keys_set(&k, 1, "secret");
	/* made on day ...995, DDD 002: valid on 995..999 and 000..002 */
	const char *t = "prvs=1002a76786=user@example.com";
	for (long d = 19995; d <= 20002; d++)
		CHECK_INT(batv_check(&k, t, d, 7, s, sizeof s), BATV_VALID);
	CHECK_INT(batv_check(&k, t, 20003, 7, s, sizeof s), BATV_EXPIRED);
	CHECK_INT(batv_check(&k, t, 20500, 7, s, sizeof s), BATV_EXPIRED);
	/* a day before it was made: ahead by 8 > 7 */
	CHECK_INT(batv_check(&k, t, 19994, 7, s, sizeof s), BATV_EXPIRED);
	/*
	 * DDD 998 expired on day 19998. Three days past it, after the wrap
	 * (day 20001, today mod 1000 = 1), it stays expired; Exim's
	 * "iexpire >= inow" takes it again there (seen with the oracle).
	 */
	const char *old = "prvs=1998a637d8=user@example.com";
	CHECK_INT(batv_check(&k, old, 19998, 7, s, sizeof s), BATV_VALID);
	CHECK_INT(batv_check(&k, old, 19999, 7, s, sizeof s), BATV_EXPIRED);
	CHECK_INT(batv_check(&k, old, 20000, 7, s, sizeof s), BATV_EXPIRED);
	CHECK_INT(batv_check(&k, old, 20001, 7, s, sizeof s), BATV_EXPIRED);
	/* another validity period: sign with 30, valid for 30 */
	CHECK(batv_sign(&k, 1, "user@example.com", 19990, 30, out, sizeof out) > 0);
	CHECK_MEM(out + 6, 3, "020");
	CHECK_INT(batv_check(&k, out, 20020, 30, s, sizeof s), BATV_VALID);
	CHECK_INT(batv_check(&k, out, 20021, 30, s, sizeof s), BATV_EXPIRED);
	/* a 7-day verifier refuses a 30-day tag early in its life */
	CHECK_INT(batv_check(&k, out, 19990, 7, s, sizeof s), BATV_EXPIRED);
	/* day numbers before 1970 still reduce into 0..999 */
	CHECK(batv_sign(&k, 1, "user@example.com", -3, 7, out, sizeof out) > 0);
	CHECK_MEM(out + 6, 3, "004");
}

/* test_case - prefix and hex case-insensitive, the address is not. */
static void test_case(void)
{
	struct batv_keys k;
	char s[300];

	memset(&k, 0, sizeof k);
	keys_set(&k, 1, "secret");
	CHECK_INT(batv_check(&k, "PRVS=173025a701=user@example.com", DAY_20240101, 7, s, sizeof s), BATV_VALID);
	CHECK_STR(s, "user@example.com");
	CHECK_INT(batv_check(&k, "Prvs=173025A701=user@example.com", DAY_20240101, 7, s, sizeof s), BATV_VALID);
	CHECK_INT(batv_check(&k, "prvs=173025a701=USER@example.com", DAY_20240101, 7, s, sizeof s), BATV_BAD_MAC);
	CHECK_STR(s, "USER@example.com");
	CHECK_INT(batv_check(&k, "prvs=173025a701=user@Example.com", DAY_20240101, 7, s, sizeof s), BATV_BAD_MAC);
	/* one hex digit changed */
	CHECK_INT(batv_check(&k, "prvs=173025a700=user@example.com", DAY_20240101, 7, s, sizeof s), BATV_BAD_MAC);
	/* the day changed: the MAC covers it */
	CHECK_INT(batv_check(&k, "prvs=173125a701=user@example.com", DAY_20240101, 7, s, sizeof s), BATV_BAD_MAC);
}

/* test_malformed - foreign schemes are NO_TAG, broken prvs is MALFORMED. */
static void test_malformed(void)
{
	struct batv_keys k;
	char s[300];
	static const char *const no_tag[] = {
		"user@example.com",
		"SRS0=HHH=TT=example.org=user@example.com",
		"SRS1=HHH=example.net==HHH=TT=example.org=user@example.com",
		"btv1==1234567890==user@example.com",
		"msprvs1=19723abcdef=bounces-1@example.com",
		"prv=173025a701=user@example.com",
		"xprvs=173025a701=user@example.com",
		"",
		"prvs",
		"postmaster",
	};
	static const char *const malformed[] = {
		"prvs=",
		"prvs=173025a701",
		"prvs=173025a701=",
		"prvs=173025a701=user",
		"prvs=173025a701=@example.com",
		"prvs=173025a701=user@",
		"prvs=173025a70=user@example.com",      /* 5 hex digits */
		"prvs=173025a7011=user@example.com",    /* 7 hex digits */
		"prvs=17325a701=user@example.com",      /* 2 day digits */
		"prvs=1730x5a701=user@example.com",
		"prvs=a73025a701=user@example.com",
		"prvs=173025a701+user@example.com",
		"prvs==173025a701=user@example.com",
		"prvs=173025a701==",
		"prvs=1730 25a701=user@example.com",
		"prvs=0123456789abcdef=user@example.com",  /* another length */
	};

	memset(&k, 0, sizeof k);
	keys_set(&k, 1, "secret");
	for (size_t i = 0; i < sizeof no_tag / sizeof no_tag[0]; i++) {
		CHECK_INT(batv_check(&k, no_tag[i], DAY_20240101, 7, s, sizeof s), BATV_NO_TAG);
		CHECK_STR(s, no_tag[i]);
	}
	for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
		size_t len = strlen(malformed[i]);
		char *g = guarded_copy(malformed[i], len + 1);
		CHECK_INT(batv_check(&k, g, DAY_20240101, 7, s, sizeof s), BATV_MALFORMED);
		CHECK_STR(s, malformed[i]);
		guarded_free(g, len + 1);
	}
	/* "prvs=...=a@b@c": split at the last '@', like Exim's greedy regex */
	CHECK_INT(batv_check(&k, "prvs=173025a701=a@b@example.com", DAY_20240101, 7, s, sizeof s), BATV_BAD_MAC);
	CHECK_STR(s, "a@b@example.com");
	/* a tag inside a tag: the outer one is checked, the inner one kept */
	char tt[300], t2[300];
	CHECK(batv_sign(&k, 1, "user@example.com", DAY_20240101, 7, tt, sizeof tt) > 0);
	CHECK(batv_sign(&k, 1, tt, DAY_20240101, 7, t2, sizeof t2) > 0);
	CHECK_INT(batv_check(&k, t2, DAY_20240101, 7, s, sizeof s), BATV_VALID);
	CHECK_STR(s, tt);
	/* stripped too small: cut, NUL-terminated, never VALID */
	char small[8];
	CHECK_INT(batv_check(&k, "prvs=173025a701=user@example.com", DAY_20240101, 7, small, sizeof small), BATV_MALFORMED);
	CHECK_STR(small, "prvs=17");
	CHECK_INT(batv_check(&k, "user@example.com", DAY_20240101, 7, small, sizeof small), BATV_NO_TAG);
	CHECK_STR(small, "user@ex");
	CHECK_INT(batv_check(&k, "prvs=173025a701=user@example.com", DAY_20240101, 7, small, 0), BATV_MALFORMED);
	/* an over-long address is malformed, not hashed */
	char *big = malloc(3000);
	memcpy(big, "prvs=173025a701=", 16);
	memset(big + 16, 'a', 2900);
	memcpy(big + 2916, "@example.com", 13);
	char *bigout = malloc(4000);
	CHECK_INT(batv_check(&k, big, DAY_20240101, 7, bigout, 4000), BATV_MALFORMED);
	CHECK_INT(batv_sign(&k, 1, big + 16, DAY_20240101, 7, bigout, 4000), -1);
	free(big);
	free(bigout);
}

/* test_sign_errors - batv_sign refuses what it cannot tag. */
static void test_sign_errors(void)
{
	struct batv_keys k;
	char out[300];

	memset(&k, 0, sizeof k);
	keys_set(&k, 1, "secret");
	CHECK_INT(batv_sign(&k, 2, "user@example.com", DAY_20240101, 7, out, sizeof out), -1);
	CHECK_INT(batv_sign(&k, 10, "user@example.com", DAY_20240101, 7, out, sizeof out), -1);
	CHECK_INT(batv_sign(&k, 1, "", DAY_20240101, 7, out, sizeof out), -1);
	CHECK_INT(batv_sign(&k, 1, "user", DAY_20240101, 7, out, sizeof out), -1);
	CHECK_INT(batv_sign(&k, 1, "@example.com", DAY_20240101, 7, out, sizeof out), -1);
	CHECK_INT(batv_sign(&k, 1, "user@", DAY_20240101, 7, out, sizeof out), -1);
	/* cap: 16 + 16 + NUL = 33 bytes needed */
	CHECK_INT(batv_sign(&k, 1, "user@example.com", DAY_20240101, 7, out, 32), -1);
	CHECK_INT(batv_sign(&k, 1, "user@example.com", DAY_20240101, 7, out, 33), 32);
	/* a 64-byte secret works (Exim's limit) */
	keys_set(&k, 9, "0123456789012345678901234567890123456789012345678901234567890123");
	CHECK_INT(batv_sign(&k, 9, "user@example.com", DAY_20240101, 7, out, sizeof out), 32);
	CHECK_STR(out, "prvs=9730a80292=user@example.com");
	CHECK_STR(batv_status_text(BATV_VALID), "valid");
	CHECK_STR(batv_status_text(BATV_NO_TAG), "no BATV tag");
	CHECK_STR(batv_status_text(BATV_EXPIRED), "BATV tag expired");
	CHECK_STR(batv_status_text(BATV_BAD_MAC), "invalid BATV signature");
	CHECK_STR(batv_status_text(BATV_UNKNOWN_KEY), "unknown BATV key");
	CHECK_STR(batv_status_text(BATV_MALFORMED), "malformed BATV tag");
}

/* write_keys - a temp file with contents and mode; returns its path. */
static char *write_keys(const char *contents, size_t len, mode_t mode)
{
	static char path[64];
	strcpy(path, "/tmp/test_batv_keys.XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		exit(2);
	}
	if (write(fd, contents, len) != (ssize_t)len || fchmod(fd, mode) < 0) {
		perror("write");
		exit(2);
	}
	close(fd);
	return path;
}

/* load - load contents; returns batv_keys_load's result, err filled. */
static int load(const char *contents, mode_t mode, struct batv_keys *k,
    char *err, size_t errlen, char *pathout)
{
	char *path = write_keys(contents, strlen(contents), mode);
	int rc;
	memset(k, 0, sizeof *k);
	rc = batv_keys_load(path, k, err, errlen);
	strcpy(pathout, path);
	unlink(path);
	return rc;
}

/* expect_err - load fails with "path:line: ..." containing want. */
static void expect_err(const char *contents, mode_t mode, unsigned line,
    const char *want)
{
	struct batv_keys k;
	char err[256], path[64], prefix[96];

	CHECK_INT(load(contents, mode, &k, err, sizeof err, path), -1);
	if (line)
		snprintf(prefix, sizeof prefix, "%s:%u: ", path, line);
	else
		snprintf(prefix, sizeof prefix, "%s: ", path);
	CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
	CHECK(strstr(err, want) != NULL);
	if (strstr(err, want) == NULL)
		fprintf(stderr, "  got: %s\n", err);
	/* never the secret bytes in the message */
	CHECK(strstr(err, "s3cr3t") == NULL);
}

/* test_keys_file - the keys file format and its refusals. */
static void test_keys_file(void)
{
	struct batv_keys k;
	char err[256], path[64], s[300];

	CHECK_INT(load("# backstop BATV keys\n\n1 secret\n  2\tsecret two  \r\n"
	    "\t# old key\n0 x\n9 #not-a-comment\n", 0600, &k, err, sizeof err, path), 0);
	CHECK(k.present[0] && k.present[1] && k.present[2] && k.present[9]);
	CHECK(!k.present[3]);
	CHECK_MEM(k.secret[2], k.len[2], "secret two");
	CHECK_MEM(k.secret[9], k.len[9], "#not-a-comment");
	CHECK_INT(batv_check(&k, "prvs=173025a701=user@example.com", DAY_20240101, 7, s, sizeof s), BATV_VALID);
	/* no final newline; owner and group may read */
	CHECK_INT(load("1 secret", 0640, &k, err, sizeof err, path), 0);
	CHECK_MEM(k.secret[1], k.len[1], "secret");
	CHECK_INT(load("1 0123456789012345678901234567890123456789012345678901234567890123\n",
	    0400, &k, err, sizeof err, path), 0);
	CHECK_INT(k.len[1], 64);

	expect_err("1 s3cr3t\n", 0644, 0, "mode 0644");
	expect_err("1 s3cr3t\n", 0601, 0, "chmod g-w,o-rwx");
	expect_err("1 s3cr3t\n", 0620, 0, "the group write access");
	expect_err("1 s3cr3t\n", 0660, 0, "mode 0660");
	expect_err("1 s3cr3t\n", 0602, 0, "mode 0602");
	expect_err("1 s3cr3t0123456789012345678901234567890123456789012345678901234567890\n",
	    0600, 1, "longer than 64");
	expect_err("# keys\n1 s3cr3t\n1 s3cr3t\n", 0600, 3, "defined twice");
	expect_err("10 s3cr3t\n", 0600, 1, "one digit");
	expect_err("k s3cr3t\n", 0600, 1, "expected");
	expect_err("1s3cr3t\n", 0600, 1, "expected");
	expect_err("1\n", 0600, 1, "expected");
	expect_err("1   \n", 0600, 1, "expected");  /* no secret */
	expect_err("", 0600, 0, "no keys");
	expect_err("# only a comment\n\n", 0600, 0, "no keys");
	/* a NUL inside a line would silently cut the secret */
	{
		static const char nul[] = "1 s3cr3t\0tail\n";
		char *p = write_keys(nul, sizeof nul - 1, 0600);
		memset(&k, 0, sizeof k);
		CHECK_INT(batv_keys_load(p, &k, err, sizeof err), -1);
		CHECK(strstr(err, ":1: NUL byte") != NULL);
		unlink(p);
	}
	/* an over-long line */
	{
		char longline[2000];
		memset(longline, 'x', sizeof longline - 2);
		longline[0] = '1';
		longline[1] = ' ';
		longline[sizeof longline - 2] = '\n';
		longline[sizeof longline - 1] = '\0';
		expect_err(longline, 0600, 1, "line too long");
	}
	/* missing file, directory */
	memset(&k, 0, sizeof k);
	CHECK_INT(batv_keys_load("/nonexistent/keys", &k, err, sizeof err), -1);
	CHECK(strstr(err, "/nonexistent/keys: cannot open") == err);
	CHECK_INT(batv_keys_load("/tmp", &k, err, sizeof err), -1);
	CHECK(strstr(err, "not a regular file") != NULL);
	/* a failed load leaves the caller's keys untouched */
	keys_set(&k, 4, "kept");
	CHECK_INT(batv_keys_load("/nonexistent/keys", &k, err, sizeof err), -1);
	CHECK(k.present[4] && k.len[4] == 4);
	/* a small err buffer is still NUL-terminated */
	char tiny[10];
	CHECK_INT(batv_keys_load("/nonexistent/keys", &k, tiny, sizeof tiny), -1);
	CHECK_INT(strlen(tiny), 9);
}

int main(void)
{
	test_vectors();
	test_wrap();
	test_case();
	test_malformed();
	test_sign_errors();
	test_keys_file();
	return check_finish("test_batv_tag");
}

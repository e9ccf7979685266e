/*
 * test_bsig - X-Backstop-Sig values: a known answer computed outside
 * backstop (Python's hmac), round trips, canonical forms, expiry, and
 * hostile values (every one BAD, never a crash: the fuzzer goes further).
 */
#include <stdio.h>
#include <string.h>

#include "filters/bsig.h"
#include "tests/unit/check.h"

#define DAY 20429L
#define NOW ((time_t)DAY * 86400 + 3600)

static struct batv_keys keys;

static void keys_init(void)
{
	memset(&keys, 0, sizeof keys);
	keys.present[0] = keys.present[3] = true;
	memcpy(keys.secret[0], "secret0", keys.len[0] = 7);
	memcpy(keys.secret[3], "another secret", keys.len[3] = 14);
}

static enum bsig_status check(const char *v, const char *id, const char *date, const char *from)
{
	return bsig_check(&keys, NOW, 7, v, id, date, from);
}

static void test_known_answer(void)
{
	char v[BSIG_VALUE_MAX];

	/* python3: base64.urlsafe_b64encode(hmac.new(b"secret0", b"backstop-sig v=1\0" b"0\0"
	 * b"20429\0<a@b.example>\0Mon, 7 Dec 2026 01:00:00 +0000\0user@example.org",
	 * "sha256").digest()[:16]).rstrip(b"=") */
	CHECK_INT(bsig_make(&keys, 0, NOW, "<a@b.example>", "Mon, 7 Dec 2026 01:00:00 +0000",
	    "user@example.org", v, sizeof v), 0);
	CHECK_STR(v, "v=1; k=0; t=20429; s=m1VA2_XfrOao3hkda6Lr8Q");
}

static void test_round_trip(void)
{
	char v[BSIG_VALUE_MAX];
	const char *id = "<1234.abc@mail.example.org>", *date = "Mon, 7 Dec 2026 01:00:00 +0000";

	CHECK_INT(bsig_make(&keys, 3, NOW, id, date, "user@example.org", v, sizeof v), 0);
	CHECK_INT(check(v, id, date, "user@example.org"), BSIG_VALID);
	/* what relays do: refold, add blanks, tag the sender, upper-case a domain */
	CHECK_INT(check(v, " <1234.abc@mail.example.org>\r\n ", "Mon, 7 Dec 2026\r\n\t01:00:00  +0000",
	    "<prvs=0123abcdef=user@EXAMPLE.org>"), BSIG_VALID);
	CHECK_INT(check(v, "(comment) <1234.abc@mail.example.org> (x)", date, "user@example.org"),
	    BSIG_VALID);
	/* the value itself refolded */
	{
		char folded[128];
		snprintf(folded, sizeof folded, " %.9s\r\n\t%s ", v, v + 9);
		CHECK_INT(check(folded, id, date, "user@example.org"), BSIG_VALID);
	}
	/* any change of what is covered breaks it */
	CHECK_INT(check(v, "<1234.ABC@mail.example.org>", date, "user@example.org"), BSIG_BAD);
	CHECK_INT(check(v, id, "Mon, 7 Dec 2026 01:00:01 +0000", "user@example.org"), BSIG_BAD);
	CHECK_INT(check(v, id, date, "User@example.org"), BSIG_BAD);
	CHECK_INT(check(v, id, date, ""), BSIG_BAD);
	CHECK_INT(check(v, "", date, "user@example.org"), BSIG_BAD);
	/* another key number with the same MAC */
	{
		char other[BSIG_VALUE_MAX];
		snprintf(other, sizeof other, "%s", v);
		other[8] = '0';
		CHECK_INT(check(other, id, date, "user@example.org"), BSIG_BAD);
		other[8] = '5';   /* not in the file */
		CHECK_INT(check(other, id, date, "user@example.org"), BSIG_BAD);
	}
	/* no Message-ID, null sender: still signed */
	CHECK_INT(bsig_make(&keys, 0, NOW, "", "", "", v, sizeof v), 0);
	CHECK_INT(check(v, "", "", ""), BSIG_VALID);
	CHECK_INT(check(v, "<x@y>", "", ""), BSIG_BAD);
	/* no such key, no room */
	CHECK_INT(bsig_make(&keys, 1, NOW, id, date, "", v, sizeof v), -1);
	CHECK_INT(bsig_make(&keys, 10, NOW, id, date, "", v, sizeof v), -1);
	CHECK_INT(bsig_make(&keys, 0, NOW, id, date, "", v, 20), -1);
	CHECK_STR(v, "");
}

static void test_expiry(void)
{
	char v[BSIG_VALUE_MAX];
	const char *id = "<x@y>", *d = "date";

	CHECK_INT(bsig_make(&keys, 0, NOW, id, d, "a@b", v, sizeof v), 0);
	CHECK_INT(bsig_check(&keys, NOW + 7 * 86400, 7, v, id, d, "a@b"), BSIG_VALID);
	CHECK_INT(bsig_check(&keys, NOW + 8 * 86400, 7, v, id, d, "a@b"), BSIG_EXPIRED);
	CHECK_INT(bsig_check(&keys, NOW + 8 * 86400, 30, v, id, d, "a@b"), BSIG_VALID);
	/* a checker one day behind the signer is tolerated, two are not */
	CHECK_INT(bsig_check(&keys, NOW - 86400, 7, v, id, d, "a@b"), BSIG_VALID);
	CHECK_INT(bsig_check(&keys, NOW - 2 * 86400, 7, v, id, d, "a@b"), BSIG_BAD);
	/* an expired forgery is BAD, not EXPIRED: the MAC is checked first */
	CHECK_INT(bsig_check(&keys, NOW + 30 * 86400, 7,
	    "v=1; k=0; t=20429; s=AAAAAAAAAAAAAAAAAAAAAA", id, d, "a@b"), BSIG_BAD);
}

static void test_canon(void)
{
	char out[64];

	CHECK_INT(bsig_canon_msgid("  <a@b>\r\n", out, sizeof out), 5);
	CHECK_STR(out, "<a@b>");
	bsig_canon_msgid("no brackets here ", out, sizeof out);
	CHECK_STR(out, "no brackets here");
	bsig_canon_msgid("<a@b> <c@d>", out, sizeof out);
	CHECK_STR(out, "<a@b>");
	bsig_canon_msgid("<unclosed@x", out, sizeof out);
	CHECK_STR(out, "<unclosed@x");
	bsig_canon_msgid("<long.\r\n id@x>", out, sizeof out);
	CHECK_STR(out, "<long. id@x>");
	CHECK_INT(bsig_canon_msgid("<abcdef@x>", out, 4), 3);
	CHECK_STR(out, "<ab");
	CHECK_INT(bsig_canon_msgid(NULL, out, sizeof out), 0);
	bsig_canon_date(" Mon,  7 Dec\r\n\t2026 ", out, sizeof out);
	CHECK_STR(out, "Mon, 7 Dec 2026");
	bsig_canon_date("Mon, 7 Dec 2026 01:00 +0000 (Coordinated (nested \\) x) Time)", out, sizeof out);
	CHECK_STR(out, "Mon, 7 Dec 2026 01:00 +0000");
	bsig_canon_date("Mon, 7 Dec 2026 01:00 +0000 (Coordinated Univ", out, sizeof out);
	CHECK_STR(out, "Mon, 7 Dec 2026 01:00 +0000");
	bsig_canon_date("(lead)Mon,(x)7 Dec", out, sizeof out);
	CHECK_STR(out, "Mon, 7 Dec");
	bsig_canon_date("a\\", out, sizeof out);
	CHECK_STR(out, "a\\");
	bsig_canon_sender(" <PRVS=1234abcdef=Joe@Example.ORG> ", out, sizeof out);
	CHECK_STR(out, "Joe@example.org");
	bsig_canon_sender("prvs=12=x@Y", out, sizeof out);   /* not a tag */
	CHECK_STR(out, "prvs=12=x@y");
	bsig_canon_sender("a@b@C", out, sizeof out);
	CHECK_STR(out, "a@b@c");
	bsig_canon_sender("<>", out, sizeof out);
	CHECK_STR(out, "");
	bsig_canon_sender("NoDomain", out, sizeof out);
	CHECK_STR(out, "NoDomain");
}

static void test_hostile(void)
{
	char v[BSIG_VALUE_MAX], buf[700];
	const char *id = "<x@y>", *d = "date", *s;

	CHECK_INT(bsig_make(&keys, 0, NOW, id, d, "a@b", v, sizeof v), 0);
	s = strstr(v, "s=") + 2;
	CHECK_INT(check(NULL, id, d, "a@b"), BSIG_NONE);
	CHECK_INT(check("", id, d, "a@b"), BSIG_NONE);
	CHECK_INT(check(" \r\n\t", id, d, "a@b"), BSIG_NONE);
	static const char *const bad[] = {
		"v=2; k=0; t=20429; s=AAAAAAAAAAAAAAAAAAAAAA",
		"v=1; k=10; t=20429; s=AAAAAAAAAAAAAAAAAAAAAA",
		"v=1; k=; t=20429; s=AAAAAAAAAAAAAAAAAAAAAA",
		"v=1; k=0; t=020429; s=AAAAAAAAAAAAAAAAAAAAAA",
		"v=1; k=0; t=-1; s=AAAAAAAAAAAAAAAAAAAAAA",
		"v=1; k=0; t=12345678901; s=AAAAAAAAAAAAAAAAAAAAAA",
		"v=1; k=0; t=20429; s=AAAAAAAAAAAAAAAAAAAAA",
		"v=1; k=0; t=20429; s=AAAAAAAAAAAAAAAAAAAAAAA",
		"v=1; k=0; t=20429; s=AAAAAAAAAAAAAAAAAAAAA=",
		"v=1; k=0; t=20429; s=AAAAAAAAAAAAAAAAAAAAA+",
		"v=1; k=0; t=20429; s=AAAAAAAAAAAAAAAAAAAAAB",   /* non-canonical last char */
		"v=1; k=0; t=20429; s=AAAAAAAAAAAAAAAAAAAAAA;",
		"v=1; k=0; t=20429; s=AAAAAAAAAAAAAAAAAAAAAA; x=1",
		"k=0; v=1; t=20429; s=AAAAAAAAAAAAAAAAAAAAAA",
		"v=1; k=0; k=0; t=20429; s=AAAAAAAAAAAAAAAAAAAAAA",
		"V=1; k=0; t=20429; s=AAAAAAAAAAAAAAAAAAAAAA",
		"v=1 k=0 t=20429 s=AAAAAAAAAAAAAAAAAAAAAA",
		"v=1;;k=0; t=20429; s=AAAAAAAAAAAAAAAAAAAAAA",
		"v=1; k=0; t=20429; s=",
		"v=1; k=0; t=20429",
		"v=1",
		";",
		"=",
		"garbage",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum bsig_status st = check(bad[i], id, d, "a@b");
		if (st != BSIG_BAD)
			fprintf(stderr, "not BAD: \"%s\"\n", bad[i]);
		CHECK_INT(st, BSIG_BAD);
	}
	/* the real MAC in a value of the wrong shape is still BAD */
	snprintf(buf, sizeof buf, "v=1; k=0; t=20429; s=%s; ", s);
	CHECK_INT(check(buf, id, d, "a@b"), BSIG_BAD);
	snprintf(buf, sizeof buf, "v=1; k=0; t=20429; s=%s x", s);
	CHECK_INT(check(buf, id, d, "a@b"), BSIG_BAD);
	snprintf(buf, sizeof buf, "v=1;k=0;t=20429;s=%s", s);
	CHECK_INT(check(buf, id, d, "a@b"), BSIG_VALID);   /* blanks are optional */
	snprintf(buf, sizeof buf, "v = 1 ; k = 0 ; t = 20429 ; s = %s", s);
	CHECK_INT(check(buf, id, d, "a@b"), BSIG_VALID);
	/* over-long values and inputs: BAD or cut, never a crash */
	memset(buf, ' ', sizeof buf - 1);
	buf[sizeof buf - 1] = '\0';
	memcpy(buf + sizeof buf - 1 - strlen(v), v, strlen(v));
	CHECK_INT(check(buf, id, d, "a@b"), BSIG_BAD);
	{
		static char longid[5000];
		memset(longid, 'x', sizeof longid - 1);
		CHECK_INT(bsig_make(&keys, 0, NOW, longid, longid, longid, v, sizeof v), 0);
		CHECK_INT(check(v, longid, longid, longid), BSIG_VALID);
	}
	/* a guarded copy: any read past the end faults */
	{
		char *g = guarded_copy("v=1; k=0; t=1", 14);
		CHECK_INT(check(g, id, d, "a@b"), BSIG_BAD);
		guarded_free(g, 14);
	}
}

/* the sentlog key comes from the lowest-numbered key, whatever sign_key
 * is: a rotation (add key 5, sign with it) keeps it; removing key 0
 * changes it; no key, no log key */
static void test_sentlog_key(void)
{
	unsigned char a[BSIG_SENTLOG_KEY_BYTES], b[BSIG_SENTLOG_KEY_BYTES];
	struct batv_keys k = keys;

	CHECK_INT(bsig_sentlog_key(&keys, a), 0);
	k.present[5] = true;
	memcpy(k.secret[5], "rotated in", k.len[5] = 10);
	CHECK_INT(bsig_sentlog_key(&k, b), 0);
	CHECK(memcmp(a, b, sizeof a) == 0);
	k.present[0] = false;
	CHECK_INT(bsig_sentlog_key(&k, b), 3);
	CHECK(memcmp(a, b, sizeof a) != 0);
	memset(&k, 0, sizeof k);
	CHECK_INT(bsig_sentlog_key(&k, b), -1);
}

int main(void)
{
	keys_init();
	test_known_answer();
	test_round_trip();
	test_expiry();
	test_canon();
	test_hostile();
	test_sentlog_key();
	CHECK_STR(bsig_status_name(BSIG_EXPIRED), "expired");
	return check_finish("test_bsig");
}

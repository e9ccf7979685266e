/*
 * test_dmarc - DMARC records, record choice, organizational domains,
 * alignment and verdicts. Includes a pin for each libopendmarc 1.4.2 false
 * pass and parser leniency measured in shared/notes/dependencies-2.md 1.2
 * and 1.3 (probe case numbers quoted): each is a correct answer here.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS for guarded_copy */
#include <fcntl.h>

#include "filters/dmarc_eval.h"
#include "filters/dmarc_org.h"
#include "filters/dmarc_record.h"
#include "tests/unit/check.h"

#define R(x) DMARC_RECORD_##x
#define N DMARC_POLICY_NONE
#define Q DMARC_POLICY_QUARANTINE
#define J DMARC_POLICY_REJECT

struct record_case {
	const char *in;
	enum dmarc_record_status st;
	enum dmarc_policy p, sp;
	unsigned pct;
	bool adkim_strict, aspf_strict, p_from_rua;
	const char *note;
};

static const struct record_case record_cases[] = {
	{ "v=DMARC1; p=reject", R(OK), J, J, 100, false, false, false, "minimal" },
	{ "v=DMARC1;p=quarantine;sp=none;pct=20;adkim=s;aspf=s", R(OK), Q, N, 20, true, true, false, "all tags, no spaces" },
	{ "v = DMARC1 ;\tp = none ; sp=reject ;", R(OK), N, J, 100, false, false, false, "WSP around = and ;, trailing ;" },
	{ "v=DMARC1; p=reject ", R(OK), J, J, 100, false, false, false, "trailing space" },
	{ "V=DMARC1; P=Reject; SP=NONE; ADKIM=S", R(OK), J, N, 100, true, false, false, "tag names and keywords any case" },
	{ "v=DMARC1; rua=mailto:d@example.com; p=reject", R(OK), J, J, 100, false, false, false, "p after rua (v before p)" },
	{ "v=DMARC1; p=reject; foo=bar; x_1=; adkim=s", R(OK), J, J, 100, true, false, false, "unknown tags ignored" },
	{ "v=DMARC1; p=reject; ruf=mailto:x@y; fo=1; rf=afrf; ri=86400", R(OK), J, J, 100, false, false, false, "report tags ignored" },
	{ "v=DMARC1; p=reject; =x; 9a=b; junk; ;", R(OK), J, J, 100, false, false, false, "malformed tag-specs skipped" },
	{ "v=DMARC1; p=reject; pct=0", R(OK), J, J, 0, false, false, false, "pct 0" },
	{ "v=DMARC1; p=reject; pct=100", R(OK), J, J, 100, false, false, false, "pct 100" },
	{ "v=DMARC1; p=reject; pct=007", R(OK), J, J, 7, false, false, false, "pct 3 digits" },
	{ "v=DMARC1; p=reject; pct=101", R(OK), J, J, 100, false, false, false, "pct over 100: default" },
	{ "v=DMARC1; p=reject; pct=0100", R(OK), J, J, 100, false, false, false, "pct 4 digits: default" },
	{ "v=DMARC1; p=reject; pct=-1", R(OK), J, J, 100, false, false, false, "pct negative: default" },
	{ "v=DMARC1; p=reject; pct=", R(OK), J, J, 100, false, false, false, "pct empty: default" },
	{ "v=DMARC1; p=reject; pct=50%", R(OK), J, J, 100, false, false, false, "pct with junk: default" },
	/* libopendmarc (1.2): pct=abc -> 0, pct=4294967297 -> 1 */
	{ "v=DMARC1; p=reject; pct=abc", R(OK), J, J, 100, false, false, false, "pin: pct=abc is 100, not 0" },
	{ "v=DMARC1; p=reject; pct=4294967297", R(OK), J, J, 100, false, false, false, "pin: pct overflow is 100, not 1" },
	{ "v=DMARC1; p=reject; adkim=x; aspf=strict", R(OK), J, J, 100, false, false, false, "bad modes: relaxed" },
	/* v= rules: first, exactly DMARC1 */
	{ "p=reject", R(NOT_DMARC), N, N, 100, false, false, false, "pin: no v= (libopendmarc: REJECT)" },
	{ "p=reject; v=DMARC1", R(NOT_DMARC), N, N, 100, false, false, false, "pin: v= not first (libopendmarc: REJECT)" },
	{ "v=DMARC2; p=reject", R(NOT_DMARC), N, N, 100, false, false, false, "other version" },
	{ "v=DMARC10; p=reject", R(NOT_DMARC), N, N, 100, false, false, false, "DMARC10" },
	{ "v=dmarc1; p=reject", R(NOT_DMARC), N, N, 100, false, false, false, "DMARC1 is case-sensitive (6.4 %x)" },
	{ " v=DMARC1; p=reject", R(NOT_DMARC), N, N, 100, false, false, false, "leading space" },
	{ "v=DMARC1p=reject", R(NOT_DMARC), N, N, 100, false, false, false, "no separator" },
	{ "v=spf1 -all", R(NOT_DMARC), N, N, 100, false, false, false, "SPF record" },
	{ "", R(NOT_DMARC), N, N, 100, false, false, false, "empty" },
	/* p/sp invalid: 6.6.3 step 6 */
	{ "v=DMARC1", R(INVALID), N, N, 100, false, false, false, "no p, no rua" },
	{ "v=DMARC1;", R(INVALID), N, N, 100, false, false, false, "no p, trailing ;" },
	{ "v=DMARC1; p=r", R(INVALID), N, N, 100, false, false, false, "pin: p=r is no policy (libopendmarc: reject)" },
	{ "v=DMARC1; p=bogus", R(INVALID), N, N, 100, false, false, false, "p bogus" },
	{ "v=DMARC1; p=", R(INVALID), N, N, 100, false, false, false, "p empty" },
	{ "v=DMARC1; p=re ject", R(INVALID), N, N, 100, false, false, false, "space inside value" },
	{ "v=DMARC1 p=reject", R(INVALID), N, N, 100, false, false, false, "no ; after version" },
	{ "v=DMARC1; p=reject; sp=bogus", R(INVALID), N, N, 100, false, false, false, "invalid sp, no rua" },
	{ "v=DMARC1; rua=mailto:d@example.com", R(OK), N, N, 100, false, false, true, "no p, rua: p=none" },
	{ "v=DMARC1; p=bogus; rua=mailto:d@example.com!10m", R(OK), N, N, 100, false, false, true, "bad p, rua with size" },
	{ "v=DMARC1; p=reject; sp=bogus; rua=mailto:d@example.com", R(OK), N, N, 100, false, false, true, "bad sp, rua: p=none, sp=none" },
	{ "v=DMARC1; p=bogus; rua=bogus, mailto:d@example.com", R(OK), N, N, 100, false, false, true, "second rua URI valid" },
	{ "v=DMARC1; p=bogus; rua=mailto", R(INVALID), N, N, 100, false, false, false, "rua without scheme" },
	{ "v=DMARC1; p=bogus; rua=mailto:", R(INVALID), N, N, 100, false, false, false, "rua scheme only" },
	{ "v=DMARC1; p=bogus; rua=mailto:a b", R(INVALID), N, N, 100, false, false, false, "rua with space" },
	{ "v=DMARC1; p=bogus; rua=mailto:a%zz", R(INVALID), N, N, 100, false, false, false, "rua bad escape" },
	{ "v=DMARC1; p=bogus; rua=mailto:a!", R(INVALID), N, N, 100, false, false, false, "rua size without digits" },
	{ "v=DMARC1; p=bogus; rua=1ailto:a", R(INVALID), N, N, 100, false, false, false, "rua scheme starts with digit" },
	/* duplicates: RFC 6376 3.2 via 6.3 */
	{ "v=DMARC1; p=none; p=reject", R(INVALID), N, N, 100, false, false, false, "p twice" },
	{ "v=DMARC1; p=reject; P=none", R(INVALID), N, N, 100, false, false, false, "p twice, other case" },
	{ "v=DMARC1; p=reject; v=DMARC1", R(INVALID), N, N, 100, false, false, false, "v twice" },
	{ "v=DMARC1; p=reject; pct=10; pct=100", R(INVALID), N, N, 100, false, false, false, "pct twice" },
	{ "v=DMARC1; p=reject; foo=1; foo=2", R(OK), J, J, 100, false, false, false, "unknown twice: not tracked" },
};

static void test_record_parse(void)
{
	for (size_t i = 0; i < sizeof record_cases / sizeof record_cases[0]; i++) {
		const struct record_case *c = &record_cases[i];
		struct dmarc_record r;
		size_t len = strlen(c->in);
		char *in = guarded_copy(c->in, len);
		enum dmarc_record_status st = dmarc_record_parse(in, len, &r);
		if (st != c->st)
			fprintf(stderr, "case \"%s\" (%s): status %d, note %s\n", c->note, c->in, st,
			    r.note ? r.note : "-");
		CHECK_INT(st, c->st);
		if (st == R(OK)) {
			CHECK_INT(r.p, c->p);
			CHECK_INT(r.sp, c->sp);
			CHECK_INT(r.pct, c->pct);
			CHECK_INT(r.adkim_strict, c->adkim_strict);
			CHECK_INT(r.aspf_strict, c->aspf_strict);
			CHECK_INT(r.p_from_rua, c->p_from_rua);
		} else
			CHECK(r.note != NULL);
		guarded_free(in, len);
	}
}

/* A NUL or 8-bit byte in a value makes the value invalid, not the parse unsafe. */
static void test_record_bytes(void)
{
	struct dmarc_record r;

	CHECK_INT(dmarc_record_parse("v=DMARC1; p=reject\0x", 20, &r), R(INVALID));
	CHECK_INT(dmarc_record_parse("v=DMARC1; p=reject; x=\0", 23, &r), R(OK));
	CHECK_INT(r.p, J);
	CHECK_INT(dmarc_record_parse("v=DMARC1; p=reject; pct=5\xc3\xa9", 28, &r), R(OK));
	CHECK_INT(r.pct, 100);
	CHECK_INT(dmarc_record_parse("v=DMARC1; p=reject", 8, &r), R(INVALID)); /* len cuts */
	CHECK_INT(dmarc_record_parse("v=DMARC1; p=reject; pct=5", 17, &r), R(INVALID));
	CHECK_INT(dmarc_record_parse("v=DMARC1; p=reject; pct=5", 18, &r), R(OK));
	CHECK_INT(r.p, J);
	/* a long record of many tags: linear, no limit needed */
	static char big[65536];
	size_t len = 0;
	memcpy(big, "v=DMARC1; p=quarantine", 22);
	len = 22;
	while (len + 8 < sizeof big) {
		memcpy(big + len, "; x=abc", 7);
		len += 7;
	}
	CHECK_INT(dmarc_record_parse(big, len, &r), R(OK));
	CHECK_INT(r.p, Q);
}

static void test_record_select(void)
{
	struct dmarc_record r;
	struct dmarc_txt one[] = {
		{ "v=spf1 -all", 11 },
		{ "google-site-verification=abc", 28 },
		{ "v=DMARC1; p=reject; pct=50", 26 },
	};
	struct dmarc_txt two[] = {
		{ "v=DMARC1; p=none", 16 },
		{ "v=DMARC1; p=reject", 18 },
	};
	struct dmarc_txt two_one_bad[] = {
		{ "v=DMARC1; p=reject", 18 },
		{ "v=DMARC1; p=bogus", 17 }, /* still a v=DMARC1 record: counts */
	};
	struct dmarc_txt none[] = {
		{ "v=spf1 -all", 11 },
		{ "p=reject; v=DMARC1", 18 },
		{ "v=DMARC2; p=reject", 18 },
	};
	struct dmarc_txt invalid[] = {
		{ "v=DMARC1; p=bogus", 17 },
	};

	CHECK_INT(dmarc_record_select(one, 3, &r), DMARC_DISCOVERY_FOUND);
	CHECK_INT(r.p, J);
	CHECK_INT(r.pct, 50);
	CHECK_INT(dmarc_record_select(two, 2, &r), DMARC_DISCOVERY_MULTIPLE);
	CHECK_INT(dmarc_record_select(two_one_bad, 2, &r), DMARC_DISCOVERY_MULTIPLE);
	CHECK_INT(dmarc_record_select(none, 3, &r), DMARC_DISCOVERY_EMPTY);
	CHECK_INT(dmarc_record_select(NULL, 0, &r), DMARC_DISCOVERY_EMPTY);
	CHECK_INT(dmarc_record_select(invalid, 1, &r), DMARC_DISCOVERY_INVALID);
	CHECK(r.note != NULL);
}

static void test_normalize(void)
{
	char out[DMARC_DOMAIN_MAX + 1];
	static char big[300];

	CHECK(dmarc_domain_normalize("Mail.Example.COM.", 17, out));
	CHECK_STR(out, "mail.example.com");
	CHECK(dmarc_domain_normalize("_spf.x-y.example", 16, out));
	CHECK(!dmarc_domain_normalize("", 0, out));
	CHECK(!dmarc_domain_normalize(".", 1, out));
	CHECK(!dmarc_domain_normalize("example.com..", 13, out));
	CHECK(!dmarc_domain_normalize(".example.com", 12, out));
	CHECK(!dmarc_domain_normalize("a..example.com", 14, out));
	CHECK(!dmarc_domain_normalize("b\xc3\xbc" "cher.example", 14, out));
	CHECK_STR(out, "");
	CHECK(!dmarc_domain_normalize("[192.0.2.1]", 11, out));
	CHECK(!dmarc_domain_normalize("exa mple.com", 12, out));
	CHECK(!dmarc_domain_normalize("example.com\0evil.com", 20, out));
	memset(big, 'a', 63);
	CHECK(dmarc_domain_normalize(big, 63, out));
	memset(big, 'a', 64);
	CHECK(!dmarc_domain_normalize(big, 64, out));
	/* 253 bytes: four labels of 63 and one of 1; 254 is too long */
	memset(big, 'a', sizeof big);
	for (int k = 1; k <= 4; k++)
		big[k * 64 - 1] = '.';
	CHECK(dmarc_domain_normalize(big, 253, out));
	CHECK_INT(strlen(out), 253);
	big[253] = '.';
	CHECK(dmarc_domain_normalize(big, 254, out)); /* trailing dot */
	big[253] = 'a';
	CHECK(!dmarc_domain_normalize(big, 254, out));
}

static void test_org_before_init(void)
{
	char out[DMARC_DOMAIN_MAX + 1];

	CHECK_INT(dmarc_org_domain("example.com", out), DMARC_ORG_NO_LIST);
	CHECK(!dmarc_aligned("example.com", "example.com", true));
}

static void test_org_init_errors(void)
{
	char err[512];
	char path[] = "/tmp/test_dmarc_psl_XXXXXX";
	int fd;

	/* 1.4: libopendmarc reported a missing file as success */
	CHECK_INT(dmarc_org_init("/nonexistent/public_suffix_list.dat", err, sizeof err), -1);
	CHECK(strstr(err, "/nonexistent/public_suffix_list.dat") != NULL);
	CHECK(strstr(err, "publicsuffix") != NULL);
	/* an empty file: libpsl refuses it */
	fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	CHECK_INT(dmarc_org_init(path, err, sizeof err), -1);
	CHECK(strstr(err, path) != NULL);
	/* a file that is not the list loads, but gives wrong answers */
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(write(fd, "// not a list\nfoo\n", 19) == 19);
	close(fd);
	CHECK_INT(dmarc_org_init(path, err, sizeof err), -1);
	CHECK(strstr(err, "expected example.co.uk") != NULL);
	/* a list without the wildcard and exception rules */
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(write(fd, "com\nuk\nco.uk\njp\n", 16) == 16);
	close(fd);
	CHECK_INT(dmarc_org_init(path, err, sizeof err), -1);
	CHECK(strstr(err, "kawasaki.jp") != NULL);
	unlink(path);
	char out[DMARC_DOMAIN_MAX + 1];
	CHECK_INT(dmarc_org_domain("example.com", out), DMARC_ORG_NO_LIST);
}

/* dmarc_org_check (a reload's check): the same verdicts as init, the
 * list in use untouched, every list it loads freed (ASan's leak check) */
static void test_org_check(const char *good)
{
	char err[512], out[DMARC_DOMAIN_MAX + 1];
	char path[] = "/tmp/test_dmarc_psl_XXXXXX";
	int fd = mkstemp(path);

	CHECK_INT(dmarc_org_check(good, err, sizeof err), 0);
	CHECK(fd >= 0);
	CHECK(write(fd, "com\nuk\nco.uk\njp\n", 16) == 16);   /* loads, answers wrongly */
	close(fd);
	CHECK_INT(dmarc_org_check(path, err, sizeof err), -1);
	CHECK(strstr(err, "kawasaki.jp") != NULL);
	unlink(path);
	CHECK_INT(dmarc_org_check("/nonexistent/public_suffix_list.dat", err, sizeof err), -1);
	CHECK_INT(dmarc_org_domain("mail.example.co.uk", out), DMARC_ORG_OK);
	CHECK_STR(out, "example.co.uk");
}

struct org_case {
	const char *in;
	enum dmarc_org_status st;
	const char *org;
};

static const struct org_case org_cases[] = {
	{ "example.com", DMARC_ORG_OK, "example.com" },
	{ "Mail.Example.COM.", DMARC_ORG_OK, "example.com" },
	{ "a.b.c.example.co.uk", DMARC_ORG_OK, "example.co.uk" },
	{ "x.com", DMARC_ORG_OK, "x.com" },          /* 1.3: libopendmarc: "com" */
	{ "q.co.uk", DMARC_ORG_OK, "q.co.uk" },
	{ "a.b.c.kawasaki.jp", DMARC_ORG_OK, "b.c.kawasaki.jp" }, /* 1.3: libopendmarc: c.kawasaki.jp */
	{ "www.city.kawasaki.jp", DMARC_ORG_OK, "city.kawasaki.jp" },
	{ "a.b.unlistedtld", DMARC_ORG_OK, "b.unlistedtld" },  /* implicit "*" rule */
	{ "com", DMARC_ORG_SUFFIX, "com" },
	{ "CO.UK.", DMARC_ORG_SUFFIX, "co.uk" },
	{ "localhost", DMARC_ORG_SUFFIX, "localhost" },
	{ "b\xc3\xbc" "cher.example", DMARC_ORG_BAD_DOMAIN, "" },
	{ "[192.0.2.1]", DMARC_ORG_BAD_DOMAIN, "" },
	{ "", DMARC_ORG_BAD_DOMAIN, "" },
};

static void test_org_domain(void)
{
	for (size_t i = 0; i < sizeof org_cases / sizeof org_cases[0]; i++) {
		char out[DMARC_DOMAIN_MAX + 1];
		enum dmarc_org_status st = dmarc_org_domain(org_cases[i].in, out);
		CHECK_INT(st, org_cases[i].st);
		CHECK_STR(out, org_cases[i].org);
	}
}

struct align_case {
	const char *from, *auth;
	bool strict, aligned;
	const char *note;
};

static const struct align_case align_cases[] = {
	{ "example.com", "example.com", true, true, "strict equal" },
	{ "Example.COM", "example.com.", true, true, "strict: case and trailing dot" },
	{ "example.com", "mail.example.com", false, true, "relaxed: subdomain" },
	{ "a.example.com", "b.example.com", false, true, "relaxed: siblings" },
	{ "a.example.co.uk", "evil.co.uk", false, false, "relaxed: other registrant under co.uk (case 10)" },
	/* libopendmarc false passes, each a correct fail here (notes 1.2/1.3) */
	{ "x.com", "attacker.com", false, false, "pin case 31/32: one-letter label" },
	{ "x.com", "anything.com", false, false, "pin: any .com domain" },
	{ "q.co.uk", "evil.co.uk", false, false, "pin case 33" },
	{ "a.example.com", "b.example.com", true, false, "pin case 28: strict siblings" },
	{ "example.com", "mail.example.com", true, false, "pin case 6: aspf=s subdomain" },
	{ "example.com", "sub.example.com", true, false, "pin case 8: adkim=s subdomain" },
	{ "mail.example.com", "example.com", true, false, "strict: the other direction (case 26)" },
	{ "a.b.c.kawasaki.jp", "z.c.kawasaki.jp", false, false, "wildcard: c.kawasaki.jp is a suffix" },
	{ "x.b.c.kawasaki.jp", "y.b.c.kawasaki.jp", false, true, "wildcard: same registrant" },
	/* public suffixes align only with themselves */
	{ "co.uk", "evil.co.uk", false, false, "suffix From" },
	{ "evil.co.uk", "co.uk", false, false, "suffix auth" },
	{ "com", "com", false, true, "suffix equal" },
	{ "a.blogspot.com", "b.blogspot.com", false, false, "private-section suffix" },
	/* not domain names: never aligned */
	{ "b\xc3\xbc" "cher.example", "b\xc3\xbc" "cher.example", true, false, "U-label strict" },
	{ "b\xc3\xbc" "cher.example", "b\xc3\xbc" "cher.example", false, false, "U-label relaxed" },
	{ "[192.0.2.1]", "[192.0.2.1]", true, false, "literal" },
	{ "", "", true, false, "empty" },
	{ "example.com", "", false, false, "empty auth" },
};

static void test_aligned(void)
{
	for (size_t i = 0; i < sizeof align_cases / sizeof align_cases[0]; i++) {
		const struct align_case *c = &align_cases[i];
		bool got = dmarc_aligned(c->from, c->auth, c->strict);
		if (got != c->aligned)
			fprintf(stderr, "alignment case \"%s\": %s vs %s %s gave %d\n", c->note,
			    c->from, c->auth, c->strict ? "strict" : "relaxed", got);
		CHECK_INT(got, c->aligned);
	}
	CHECK(!dmarc_aligned(NULL, "example.com", false));
	CHECK(!dmarc_aligned("example.com", NULL, false));
}

/* record - a parsed record for the verdict tests. */
static struct dmarc_record record(const char *txt)
{
	struct dmarc_record r;
	CHECK_INT(dmarc_record_parse(txt, strlen(txt), &r), R(OK));
	return r;
}

static struct dmarc_input input(const char *from, const struct dmarc_record *r)
{
	struct dmarc_input in;
	memset(&in, 0, sizeof in);
	in.from_domain = from;
	in.discovery = DMARC_DISCOVERY_FOUND;
	in.record = r;
	in.spf = DMARC_AUTH_FAIL;
	return in;
}

static void test_evaluate(void)
{
	struct dmarc_record reject = record("v=DMARC1; p=reject");
	struct dmarc_record strict = record("v=DMARC1; p=reject; adkim=s; aspf=s");
	struct dmarc_record org = record("v=DMARC1; p=reject; sp=none");
	struct dmarc_record org_nosp = record("v=DMARC1; p=quarantine");
	struct dmarc_record pct10 = record("v=DMARC1; p=reject; pct=10");
	struct dmarc_record pct0 = record("v=DMARC1; p=reject; pct=0");
	struct dmarc_record q50 = record("v=DMARC1; p=quarantine; pct=50");
	struct dmarc_verdict v;
	struct dmarc_input in;

	/* case 1: SPF pass, aligned */
	in = input("Example.COM", &reject);
	in.spf = DMARC_AUTH_PASS;
	in.spf_domain = "example.com";
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_PASS);
	CHECK_INT(v.applied, N);
	CHECK(v.spf_aligned && !v.dkim_aligned);
	CHECK_STR(v.header_from, "example.com");
	CHECK_STR(v.policy_dmarc, "none");
	CHECK_STR(dmarc_result_name(v.result), "pass");

	/* case 2: SPF pass, unaligned */
	in.spf_domain = "other.example";
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	CHECK_INT(v.requested, J);
	CHECK_INT(v.applied, J);
	CHECK_STR(v.policy_dmarc, "reject");
	CHECK(!v.sampled_out);

	/* case 31/32 pins through the whole verdict */
	in = input("x.com", &reject);
	in.spf = DMARC_AUTH_PASS;
	in.spf_domain = "attacker.com";
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	CHECK_INT(v.applied, J);
	struct dmarc_dkim_sig attacker = { DMARC_AUTH_PASS, "attacker.com" };
	in = input("x.com", &reject);
	in.dkim = &attacker;
	in.ndkim = 1;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	/* case 33 */
	in = input("q.co.uk", &reject);
	in.spf = DMARC_AUTH_PASS;
	in.spf_domain = "evil.co.uk";
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	/* case 6: aspf=s, SPF for mail.example.com */
	in = input("example.com", &strict);
	in.spf = DMARC_AUTH_PASS;
	in.spf_domain = "mail.example.com";
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	/* case 8: adkim=s, d=sub.example.com */
	struct dmarc_dkim_sig sub = { DMARC_AUTH_PASS, "sub.example.com" };
	in = input("example.com", &strict);
	in.dkim = &sub;
	in.ndkim = 1;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	/* case 28: strict siblings */
	in = input("a.example.com", &strict);
	in.spf = DMARC_AUTH_PASS;
	in.spf_domain = "b.example.com";
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	/* case 5: relaxed, SPF for mail.example.com */
	in = input("example.com", &reject);
	in.spf = DMARC_AUTH_PASS;
	in.spf_domain = "mail.example.com";
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_PASS);

	/* 1.1: a failing aligned signature and a passing unaligned one: fail,
	 * in either order; one aligned pass among failures: pass */
	struct dmarc_dkim_sig mixed[] = {
		{ DMARC_AUTH_FAIL, "example.org" }, { DMARC_AUTH_PASS, "evil.example" },
	};
	struct dmarc_dkim_sig mixed_rev[] = { mixed[1], mixed[0] };
	struct dmarc_dkim_sig good[] = {
		{ DMARC_AUTH_PASS, "evil.example" }, { DMARC_AUTH_FAIL, "example.org" },
		{ DMARC_AUTH_PASS, "mail.example.org" },
	};
	in = input("example.org", &reject);
	in.dkim = mixed;
	in.ndkim = 2;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	in.dkim = mixed_rev;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	in.dkim = good;
	in.ndkim = 3;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_PASS);
	CHECK(v.dkim_aligned && !v.spf_aligned);
	CHECK_STR(v.reason, "aligned DKIM pass");

	/* case 4: SPF temperror for an aligned domain, nothing passed:
	 * temperror, no policy (libopendmarc: REJECT) */
	in = input("example.com", &reject);
	in.spf = DMARC_AUTH_TEMPERROR;
	in.spf_domain = "example.com";
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_TEMPERROR);
	CHECK_INT(v.applied, N);
	/* ... but an unaligned temperror changes nothing */
	in.spf_domain = "other.example";
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	/* an aligned DKIM temperror, and an aligned pass beside it */
	struct dmarc_dkim_sig dtemp[] = {
		{ DMARC_AUTH_TEMPERROR, "example.com" }, { DMARC_AUTH_PASS, "example.com" },
	};
	in = input("example.com", &reject);
	in.dkim = dtemp;
	in.ndkim = 1;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_TEMPERROR);
	in.ndkim = 2;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_PASS);
	/* a signature without d= is skipped */
	struct dmarc_dkim_sig nod = { DMARC_AUTH_PASS, NULL };
	in = input("example.com", &reject);
	in.dkim = &nod;
	in.ndkim = 1;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);

	/* case 11: sub From, record from the org domain with sp=none */
	in = input("sub.example.com", &org);
	in.record_at_org = true;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	CHECK(v.policy_is_sp);
	CHECK_INT(v.requested, N);
	CHECK_INT(v.applied, N);
	/* case 12: the same record found at the From domain itself: p */
	in.record_at_org = false;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.applied, J);
	CHECK(!v.policy_is_sp);
	/* case 13: org record without sp=: sp is p */
	in = input("sub.example.com", &org_nosp);
	in.record_at_org = true;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.applied, Q);

	/* pct (case 14/15: libopendmarc does not apply it): draw < pct is in */
	in = input("example.com", &pct10);
	in.pct_draw = 9;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.applied, J);
	CHECK(!v.sampled_out);
	in.pct_draw = 10;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.applied, Q); /* 6.6.4: reject sampled out -> quarantine */
	CHECK(v.sampled_out);
	CHECK_INT(v.requested, J);
	CHECK_STR(v.policy_dmarc, "quarantine");
	in.pct_draw = 105; /* modulo 100: 5 */
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.applied, J);
	in = input("example.com", &pct0);
	for (unsigned d = 0; d < 100; d++) {
		in.pct_draw = d;
		dmarc_evaluate(&in, &v);
		CHECK_INT(v.applied, Q);
	}
	in = input("example.com", &q50);
	in.pct_draw = 49;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.applied, Q);
	in.pct_draw = 50;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.applied, N); /* quarantine sampled out -> no action */
	CHECK_INT(v.result, DMARC_RESULT_FAIL);

	/* discovery outcomes */
	in = input("example.com", NULL);
	in.discovery = DMARC_DISCOVERY_EMPTY;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_NONE);
	CHECK(v.policy_dmarc == NULL);
	CHECK_STR(v.header_from, "example.com");
	in.discovery = DMARC_DISCOVERY_MULTIPLE;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_PERMERROR);
	CHECK_INT(v.applied, N);
	in.discovery = DMARC_DISCOVERY_INVALID;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_PERMERROR);
	in.discovery = DMARC_DISCOVERY_TEMPERROR;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_TEMPERROR);
	in.discovery = DMARC_DISCOVERY_FOUND; /* but no record given */
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_PERMERROR);
	/* a From domain that is not an ASCII domain name */
	in = input("b\xc3\xbc" "cher.example", &reject);
	in.spf = DMARC_AUTH_PASS;
	in.spf_domain = "b\xc3\xbc" "cher.example";
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_NONE);
	CHECK_STR(v.header_from, "");
	CHECK_INT(v.applied, N);

	/* 6.6.3 step 6.1: p=none from rua: fail, no action */
	struct dmarc_record from_rua = record("v=DMARC1; p=bogus; rua=mailto:d@example.com");
	in = input("example.com", &from_rua);
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	CHECK_INT(v.applied, N);
	CHECK_STR(v.policy_dmarc, "none");

	CHECK_STR(dmarc_result_name(DMARC_RESULT_PERMERROR), "permerror");
	CHECK_STR(dmarc_policy_name(Q), "quarantine");
}

int main(void)
{
	char err[512];
	const char *path = getenv("BACKSTOP_PSL");

	test_record_parse();
	test_record_bytes();
	test_record_select();
	test_normalize();
	test_org_before_init();
	test_org_init_errors();

	/* Both sources of the list: the Debian file (if installed) and libpsl's built-in. */
	const char *sources[] = { path ? path : DMARC_PSL_DEBIAN, NULL };
	for (size_t k = 0; k < 2; k++) {
		if (dmarc_org_init(sources[k], err, sizeof err) != 0) {
			fprintf(stderr, "dmarc_org_init: %s\n", err);
			check_failed++;
			continue;
		}
		test_org_check(sources[k]);
		test_org_domain();
		test_aligned();
		test_evaluate();
	}
	dmarc_org_end();
	test_org_before_init();
	return check_finish("test_dmarc");
}

/*
 * test_smtp_addr - paths, ESMTP parameters, xtext and HELO domains, as
 * tables with one case per line. Inputs live at the end of a guarded page.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS for guarded_copy */
#include "smtp/smtp_addr.h"
#include "tests/unit/check.h"

#define NUL_OK SMTP_PATH_ALLOW_NULL
#define PM SMTP_PATH_ALLOW_POSTMASTER
#define U8 SMTP_PATH_ALLOW_UTF8
#define NB SMTP_PATH_ALLOW_NO_BRACKETS
#define P(x) SMTP_PATH_##x

struct path_case {
	const char *in;
	unsigned flags;
	enum smtp_path_status st;
	const char *addr;   /* expected addr when OK */
	size_t local_len;
	int nparams;
	const char *note;
};

static const struct path_case cases[] = {
	{ "<a@b>", 0, P(OK), "a@b", 1, 0, "minimal" },
	{ "<user.name+tag@mail.example.com>", 0, P(OK), "user.name+tag@mail.example.com", 13, 0, "dot-atom" },
	{ "<\"a b\"@x.org>", 0, P(OK), "\"a b\"@x.org", 5, 0, "quoted local kept with quotes" },
	{ "<\"a>b\"@x.org>", 0, P(OK), "\"a>b\"@x.org", 5, 0, "> inside quotes" },
	{ "<\"a\\\"b\"@x>", 0, P(OK), "\"a\\\"b\"@x", 6, 0, "quoted-pair" },
	{ "<\"\"@x>", 0, P(OK), "\"\"@x", 2, 0, "empty quoted string" },
	{ "<\"a@x>", 0, P(SYNTAX), "", 0, 0, "unterminated quote" },
	{ "<\"a\\", 0, P(SYNTAX), "", 0, 0, "truncated quoted-pair" },
	{ "<@r1,@r2:a@b>", 0, P(OK), "a@b", 1, 0, "source route dropped" },
	{ "<@r1:a@b>", 0, P(OK), "a@b", 1, 0, "one-hop route" },
	{ "<@r1,a@b>", 0, P(SYNTAX), "", 0, 0, "route without colon" },
	{ "<@:a@b>", 0, P(SYNTAX), "", 0, 0, "empty route domain" },
	{ "<a@[1.2.3.4]>", 0, P(OK), "a@[1.2.3.4]", 1, 0, "IPv4 literal" },
	{ "<a@[256.1.1.1]>", 0, P(SYNTAX), "", 0, 0, "IPv4 out of range" },
	{ "<a@[1.2.3]>", 0, P(SYNTAX), "", 0, 0, "IPv4 too short" },
	{ "<a@[IPv6:2001:db8::1]>", 0, P(OK), "a@[IPv6:2001:db8::1]", 1, 0, "IPv6 literal" },
	{ "<a@[ipv6:::1]>", 0, P(OK), "a@[ipv6:::1]", 1, 0, "IPv6 loopback" },
	{ "<a@[IPv6:1:2:3:4:5:6:7:8]>", 0, P(OK), "a@[IPv6:1:2:3:4:5:6:7:8]", 1, 0, "IPv6 full" },
	{ "<a@[IPv6:::ffff:1.2.3.4]>", 0, P(OK), "a@[IPv6:::ffff:1.2.3.4]", 1, 0, "IPv6 with IPv4" },
	{ "<a@[IPv6:1::2::3]>", 0, P(SYNTAX), "", 0, 0, "two ::" },
	{ "<a@[IPv6:12345::]>", 0, P(SYNTAX), "", 0, 0, "group too long" },
	{ "<a@[IPv6:1:2:3:4:5:6:7]>", 0, P(SYNTAX), "", 0, 0, "7 groups without ::" },
	{ "<a@[x:y]>", 0, P(SYNTAX), "", 0, 0, "general literal refused" },
	{ "<a@[1.2.3.4>", 0, P(SYNTAX), "", 0, 0, "unclosed literal" },
	{ "<>", NUL_OK, P(OK), "", 0, 0, "null path" },
	{ "<>", 0, P(SYNTAX), "", 0, 0, "null path not allowed" },
	{ "<> SIZE=0", NUL_OK, P(OK), "", 0, 1, "null path with param" },
	{ "<Postmaster>", PM, P(OK), "Postmaster", 10, 0, "postmaster" },
	{ "<pOsTmAsTeR>", PM, P(OK), "Postmaster", 10, 0, "postmaster any case" },
	{ "<Postmaster>", 0, P(SYNTAX), "", 0, 0, "postmaster not allowed" },
	{ "<postmaster@x.org>", PM, P(OK), "postmaster@x.org", 10, 0, "postmaster with domain" },
	{ "<Postmasters>", PM, P(SYNTAX), "", 0, 0, "not postmaster" },
	{ "a@b", 0, P(SYNTAX), "", 0, 0, "no brackets" },
	{ "a@b", NB, P(OK), "a@b", 1, 0, "no brackets allowed" },
	{ "a@b SIZE=1", NB, P(OK), "a@b", 1, 1, "no brackets with param" },
	{ "<a@b", 0, P(SYNTAX), "", 0, 0, "missing >" },
	{ "<a@b>>", 0, P(SYNTAX), "", 0, 0, "double >" },
	{ "<a@b>x", 0, P(SYNTAX), "", 0, 0, "junk after >" },
	{ "<a>", 0, P(SYNTAX), "", 0, 0, "no domain" },
	{ "<a@>", 0, P(SYNTAX), "", 0, 0, "empty domain" },
	{ "<@b>", 0, P(SYNTAX), "", 0, 0, "empty local" },
	{ "<.a@b>", 0, P(SYNTAX), "", 0, 0, "leading dot" },
	{ "<a.@b>", 0, P(SYNTAX), "", 0, 0, "trailing dot" },
	{ "<a..b@c>", 0, P(SYNTAX), "", 0, 0, "double dot" },
	{ "<a@b.>", 0, P(SYNTAX), "", 0, 0, "domain trailing dot" },
	{ "<a@.b>", 0, P(SYNTAX), "", 0, 0, "domain leading dot" },
	{ "<a@-b.c>", 0, P(SYNTAX), "", 0, 0, "label starts with hyphen" },
	{ "<a@b-.c>", 0, P(SYNTAX), "", 0, 0, "label ends with hyphen" },
	{ "<a@b_c.d>", 0, P(SYNTAX), "", 0, 0, "underscore in domain" },
	{ "<a b@c>", 0, P(SYNTAX), "", 0, 0, "space in local" },
	{ "<a@b c>", 0, P(SYNTAX), "", 0, 0, "space in domain" },
	{ "<a(b)@c>", 0, P(SYNTAX), "", 0, 0, "comment" },
	{ "", 0, P(SYNTAX), "", 0, 0, "empty" },
	{ "<", 0, P(SYNTAX), "", 0, 0, "lone <" },
	{ "<\xc3\xa9@b>", 0, P(8BIT), "", 0, 0, "8-bit local without SMTPUTF8" },
	{ "<a@\xc3\xa9.fr>", 0, P(8BIT), "", 0, 0, "8-bit domain without SMTPUTF8" },
	{ "<\xc3\xa9@\xc3\xa9.fr>", U8, P(OK), "\xc3\xa9@\xc3\xa9.fr", 2, 0, "UTF-8 address" },
	{ "<\xc3@b>", U8, P(SYNTAX), "", 0, 0, "truncated UTF-8" },
	{ "<\xc0\xaf@b>", U8, P(SYNTAX), "", 0, 0, "overlong UTF-8" },
	{ "<\xed\xa0\x80@b>", U8, P(SYNTAX), "", 0, 0, "surrogate" },
	{ "<\xff@b>", U8, P(SYNTAX), "", 0, 0, "invalid byte" },
	{ "<a@b> SIZE=100 BODY=8BITMIME", 0, P(OK), "a@b", 1, 2, "two params" },
	{ "<a@b>   SIZE=1   ", 0, P(OK), "a@b", 1, 1, "extra spaces" },
	{ "<a@b> SMTPUTF8", 0, P(OK), "a@b", 1, 1, "param without value" },
	{ "<a@b> SIZE=1 SIZE=2", 0, P(OK), "a@b", 1, 2, "duplicates left to the session" },
	{ "<a@b> X-FOO=bar", 0, P(OK), "a@b", 1, 1, "hyphen in keyword" },
	{ "<a@b> -X=1", 0, P(BAD_PARAM), "", 0, 0, "keyword starts with hyphen" },
	{ "<a@b> SIZE=", 0, P(BAD_PARAM), "", 0, 0, "empty value" },
	{ "<a@b> SIZE==1", 0, P(BAD_PARAM), "", 0, 0, "= in value" },
	{ "<a@b> =1", 0, P(BAD_PARAM), "", 0, 0, "no keyword" },
	{ "<a@b> SI_ZE=1", 0, P(BAD_PARAM), "", 0, 0, "underscore in keyword" },
	{ "<a@b> ENVID=\x01", 0, P(BAD_PARAM), "", 0, 0, "control in value" },
	{ "<a@b> ENVID=\xc3\xa9", 0, P(BAD_PARAM), "", 0, 0, "8-bit value without SMTPUTF8" },
	{ "<a@b> ENVID=\xc3\xa9", U8, P(OK), "a@b", 1, 1, "UTF-8 value with SMTPUTF8" },
	{ "<a@b> A B C D E F G H I J K L M N O P", 0, P(OK), "a@b", 1, 16, "16 params fit" },
	{ "<a@b> A B C D E F G H I J K L M N O P Q", 0, P(TOO_MANY_PARAMS), "", 0, 0, "17 params" },
};

/* run_cases - each case in a guarded buffer, parameters checked to be
 * slices of the input. */
static void run_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct path_case *t = &cases[i];
		size_t len = strlen(t->in);
		char *buf = guarded_copy(t->in, len);
		struct smtp_path path;
		struct smtp_param params[SMTP_PARAMS_MAX];
		size_t np = SMTP_PARAMS_MAX;
		int before = check_failed;
		enum smtp_path_status st = smtp_path_parse(buf, len, t->flags, &path, params, &np);
		CHECK_INT(st, t->st);
		CHECK_STR(path.addr, t->addr);
		CHECK_INT(path.addr_len, strlen(path.addr));
		CHECK_INT(np, t->nparams);
		if (st == SMTP_PATH_OK) {
			CHECK_INT(path.local_len, t->local_len);
			CHECK(path.domain >= path.addr && path.domain <= path.addr + path.addr_len);
			for (size_t k = 0; k < np; k++)
				CHECK(params[k].key >= buf && params[k].key + params[k].key_len <= buf + len);
		} else {
			CHECK(!path.is_null && !path.is_postmaster && path.domain == path.addr);
		}
		if (check_failed != before)
			fprintf(stderr, "  case %zu: %s\n", i, t->note);
		guarded_free(buf, len);
	}
}

/* test_details - fields the table does not show. */
static void test_details(void)
{
	struct smtp_path path;
	struct smtp_param params[4];
	size_t np = 4;
	const char *in = "<a@x.org> SIZE=123 body=8BITMIME SMTPUTF8";

	CHECK_INT(smtp_path_parse(in, strlen(in), 0, &path, params, &np), SMTP_PATH_OK);
	CHECK_STR(path.domain, "x.org");
	CHECK_INT(np, 3);
	CHECK_MEM(params[0].key, params[0].key_len, "SIZE");
	CHECK_MEM(params[0].value, params[0].value_len, "123");
	CHECK(smtp_param_is(&params[1], "BODY"));
	CHECK(!smtp_param_is(&params[1], "BOD"));
	CHECK(!smtp_param_is(&params[1], "BODYX"));
	CHECK(params[2].value == NULL);

	np = 1; /* caller capacity below SMTP_PARAMS_MAX */
	CHECK_INT(smtp_path_parse(in, strlen(in), 0, &path, params, &np), SMTP_PATH_TOO_MANY_PARAMS);
	CHECK_INT(smtp_path_parse("<a@b> X", 7, 0, &path, NULL, NULL), SMTP_PATH_TOO_MANY_PARAMS);
	CHECK_INT(smtp_path_parse("<a@b>", 5, 0, &path, NULL, NULL), SMTP_PATH_OK);

	CHECK_INT(smtp_path_parse("<>", 2, NUL_OK, &path, NULL, NULL), SMTP_PATH_OK);
	CHECK(path.is_null && path.addr_len == 0 && path.domain[0] == '\0');
	CHECK_INT(smtp_path_parse("<Postmaster>", 12, PM, &path, NULL, NULL), SMTP_PATH_OK);
	CHECK(path.is_postmaster && path.domain[0] == '\0');
	CHECK_INT(smtp_path_parse("<\xc3\xa9@b>", 6, U8, &path, NULL, NULL), SMTP_PATH_OK);
	CHECK(path.has_8bit);
	CHECK_INT(smtp_path_parse("<a\0b@c>", 7, 0, &path, NULL, NULL), SMTP_PATH_SYNTAX);
}

/* test_limits - RFC 5321 4.5.3.1 lengths, exactly at and one past. */
static void test_limits(void)
{
	char in[1024], local[80], label[70], dom[300];
	struct smtp_path path;

	memset(local, 'l', 64); local[64] = '\0';
	snprintf(in, sizeof(in), "<%s@x>", local);
	CHECK_INT(smtp_path_parse(in, strlen(in), 0, &path, NULL, NULL), SMTP_PATH_OK);
	memset(local, 'l', 65); local[65] = '\0';
	snprintf(in, sizeof(in), "<%s@x>", local);
	CHECK_INT(smtp_path_parse(in, strlen(in), 0, &path, NULL, NULL), SMTP_PATH_TOO_LONG);

	memset(label, 'd', 63); label[63] = '\0';
	snprintf(in, sizeof(in), "<a@%s.x>", label);
	CHECK_INT(smtp_path_parse(in, strlen(in), 0, &path, NULL, NULL), SMTP_PATH_OK);
	memset(label, 'd', 64); label[64] = '\0';
	snprintf(in, sizeof(in), "<a@%s.x>", label);
	CHECK_INT(smtp_path_parse(in, strlen(in), 0, &path, NULL, NULL), SMTP_PATH_SYNTAX);

	/* 252-byte domain: "a@" + 252 = 254, the longest path */
	size_t d = 0;
	while (d < 252) {
		size_t n = 252 - d >= 50 ? 49 : 252 - d;
		memset(dom + d, 'd', n);
		d += n;
		if (d < 252)
			dom[d++] = '.';
	}
	dom[d] = '\0';
	snprintf(in, sizeof(in), "<a@%s>", dom);
	CHECK_INT(smtp_path_parse(in, strlen(in), 0, &path, NULL, NULL), SMTP_PATH_OK);
	CHECK_INT(path.addr_len, 254);
	snprintf(in, sizeof(in), "<ab@%s>", dom);
	CHECK_INT(smtp_path_parse(in, strlen(in), 0, &path, NULL, NULL), SMTP_PATH_TOO_LONG);
	CHECK(smtp_domain_valid(dom, strlen(dom)));

	/* 4 KB of atext never overflows the fixed addr buffer */
	char *big = malloc(4096);
	big[0] = '<';
	memset(big + 1, 'a', 4000);
	memcpy(big + 4001, "@b>", 3);
	char *g = guarded_copy(big, 4004);
	CHECK_INT(smtp_path_parse(g, 4004, 0, &path, NULL, NULL), SMTP_PATH_TOO_LONG);
	CHECK_INT(smtp_path_parse(g, 4003, 0, &path, NULL, NULL), SMTP_PATH_TOO_LONG);
	guarded_free(g, 4004);
	free(big);
}

static void test_xtext(void)
{
	char out[64];

	CHECK_INT(smtp_xtext_encode("abc", 3, out, sizeof(out)), 3);
	CHECK_STR(out, "abc");
	CHECK_INT(smtp_xtext_encode("a+b=c d", 7, out, sizeof(out)), 13);
	CHECK_STR(out, "a+2Bb+3Dc+20d");
	CHECK_INT(smtp_xtext_encode("\0\x7f\xff", 3, out, sizeof(out)), 9);
	CHECK_STR(out, "+00+7F+FF");
	CHECK_INT(smtp_xtext_encode("", 0, out, sizeof(out)), 0);
	CHECK_STR(out, "");
	CHECK_INT(smtp_xtext_encode("abc", 3, out, 4), 3);   /* exactly fits */
	CHECK_INT(smtp_xtext_encode("abc", 3, out, 3), -1);  /* no room for NUL */
	CHECK_INT(smtp_xtext_encode("+", 1, out, 3), -1);    /* "+2B" needs 4 */
	CHECK_INT(smtp_xtext_encode("", 0, out, 0), -1);
	memset(out, 'Z', sizeof(out));
	CHECK_INT(smtp_xtext_encode("++++", 4, out, 10), -1);
	CHECK(out[10] == 'Z'); /* nothing past cap */
}

static const struct { const char *in; bool ok; const char *note; } domains[] = {
	{ "mail.example.com", true, "FQDN" },
	{ "localhost", true, "single label" },
	{ "a-b.c0", true, "hyphen and digit" },
	{ "123.example", true, "digit-leading label" },
	{ "[192.0.2.1]", true, "IPv4 literal" },
	{ "[IPv6:2001:db8::1]", true, "IPv6 literal" },
	{ "", false, "empty" },
	{ "a..b", false, "empty label" },
	{ "a.", false, "trailing dot" },
	{ ".a", false, "leading dot" },
	{ "-a", false, "leading hyphen" },
	{ "a_b", false, "underscore" },
	{ "a b", false, "space" },
	{ "[1.2.3.4", false, "unclosed literal" },
	{ "[1.2.3.4]x", false, "junk after literal" },
	{ "\xc3\xa9.fr", false, "U-label" },
	{ "1.2.3.4", true, "bare IPv4 is a valid-looking domain" },
};

static void test_domains(void)
{
	for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++) {
		size_t len = strlen(domains[i].in);
		char *g = guarded_copy(domains[i].in, len);
		int before = check_failed;
		CHECK_INT(smtp_domain_valid(g, len), domains[i].ok);
		if (check_failed != before)
			fprintf(stderr, "  domain %s\n", domains[i].note);
		guarded_free(g, len);
	}
	char longd[300];
	memset(longd, 'a', 256);
	CHECK(!smtp_domain_valid(longd, 256));
}

int main(void)
{
	run_cases();
	test_details();
	test_limits();
	test_xtext();
	test_domains();
	return check_finish("test_smtp_addr");
}

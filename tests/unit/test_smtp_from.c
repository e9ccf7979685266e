/*
 * test_smtp_from - the domains of From: field bodies, one case per line,
 * hostile input included. Inputs live at the end of a guarded page, so a
 * read past the body faults.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS for guarded_copy */
#include "smtp/smtp_from.h"
#include "tests/unit/check.h"

#define F(x) SMTP_FROM_##x

struct from_case {
	const char *in;
	enum smtp_from_status st;
	size_t n;            /* addresses found */
	const char *d0, *d1; /* first two domains, when found */
	const char *note;
};

static const struct from_case cases[] = {
	{ "joe@example.com", F(OK), 1, "example.com", NULL, "bare addr-spec" },
	{ " Joe <joe@Example.COM>", F(OK), 1, "Example.COM", NULL, "name-addr, case kept" },
	{ "<joe@example.com>", F(OK), 1, "example.com", NULL, "angle without name" },
	{ "\"Joe Q. Public\" <joe@example.com>", F(OK), 1, "example.com", NULL, "quoted name" },
	{ "Joe Q. Public <joe@example.com>", F(OK), 1, "example.com", NULL, "obs-phrase period" },
	{ "\"attacker@evil.example\" <joe@victim.example>", F(OK), 1, "victim.example", NULL,
	  "address inside the display name is only text" },
	{ "\"<x@evil.example>\" <joe@victim.example>", F(OK), 1, "victim.example", NULL,
	  "angle address inside the display name is only text" },
	{ "joe@evil.example (<joe@victim.example>)", F(OK), 1, "evil.example", NULL,
	  "address inside a comment is only text" },
	{ "(a (nested (comment)) here) joe@example.com (x)", F(OK), 1, "example.com", NULL, "nested comments" },
	{ "(\\) escaped) joe@example.com", F(OK), 1, "example.com", NULL, "quoted-pair in comment" },
	{ "\"a\\\"b\" <joe@example.com>", F(OK), 1, "example.com", NULL, "quoted-pair in name" },
	{ "\"joe smith\"@example.com", F(OK), 1, "example.com", NULL, "quoted local part" },
	{ "joe . smith @ example . com", F(OK), 1, "example.com", NULL, "obs-local-part, obs-domain" },
	{ "joe@example.com.", F(SYNTAX), 0, NULL, NULL, "trailing period in domain" },
	{ "joe@(c)example(c).(c)com", F(OK), 1, "example.com", NULL, "comments inside obs-domain" },
	{ "Joe\r\n <joe@example.com>", F(OK), 1, "example.com", NULL, "folded" },
	{ "Joe\n\t<joe@example.com>", F(OK), 1, "example.com", NULL, "folded with LF" },
	{ "Joe <joe@example.com>\r\n", F(OK), 1, "example.com", NULL, "final CRLF" },
	{ "joe@example.com\r\nBcc: x@y.example", F(SYNTAX), 0, NULL, NULL, "CRLF not folding: smuggled field" },
	{ "Joe\r\n<joe@example.com>", F(SYNTAX), 0, NULL, NULL, "CRLF without WSP after it is no fold" },
	{ "Joe\n<joe@example.com>", F(SYNTAX), 0, NULL, NULL, "LF without WSP after it is no fold" },
	{ "joe@example.com\r\n\r\n", F(SYNTAX), 0, NULL, NULL, "two line ends at the end" },
	{ "joe@example.com\rx", F(SYNTAX), 0, NULL, NULL, "bare CR" },
	{ "joe@exam\nple.com", F(SYNTAX), 0, NULL, NULL, "bare LF" },
	{ "a@one.example, b@two.example", F(OK), 2, "one.example", "two.example", "two mailboxes" },
	{ "A <a@one.example>,B <b@two.example>", F(OK), 2, "one.example", "two.example", "two name-addrs" },
	{ ", a@one.example,, ,b@two.example,", F(OK), 2, "one.example", "two.example", "obs-mbox-list empty elements" },
	{ "<@relay.example,@r2.example:joe@example.com>", F(OK), 1, "example.com", NULL, "obs-route dropped" },
	{ "<,@relay.example:joe@example.com>", F(OK), 1, "example.com", NULL, "obs-route leading comma" },
	{ "<@relay.example joe@example.com>", F(SYNTAX), 0, NULL, NULL, "obs-route without colon" },
	{ "joe@[192.0.2.1]", F(OK), 1, "[192.0.2.1]", NULL, "domain literal" },
	{ "joe@[ 192.0.2.1 ]", F(OK), 1, "[192.0.2.1]", NULL, "whitespace in literal dropped" },
	{ "joe@[a[b]", F(SYNTAX), 0, NULL, NULL, "[ inside literal" },
	{ "joe@[192.0.2.1", F(SYNTAX), 0, NULL, NULL, "unclosed literal" },
	{ "j\xc3\xb6rg@b\xc3\xbc" "cher.example", F(OK), 1, "b\xc3\xbc" "cher.example", NULL, "UTF-8 (RFC 6532)" },
	{ "\"J\xc3\xb6rg\" <j@example.com>", F(OK), 1, "example.com", NULL, "UTF-8 name" },
	{ "j@ex\xc3" "ample.com", F(SYNTAX), 0, NULL, NULL, "invalid UTF-8 in domain" },
	{ "\"\xff\" <j@example.com>", F(SYNTAX), 0, NULL, NULL, "invalid UTF-8 in name" },
	{ "(\xc0\xaf) j@example.com", F(SYNTAX), 0, NULL, NULL, "overlong UTF-8 in comment" },
	{ "", F(EMPTY), 0, NULL, NULL, "empty" },
	{ "   (only a comment) ", F(EMPTY), 0, NULL, NULL, "no address" },
	{ " , , ", F(EMPTY), 0, NULL, NULL, "only commas" },
	{ "undisclosed-recipients:;", F(GROUP), 0, NULL, NULL, "empty group" },
	{ "Friends: a@b.example, c@d.example;", F(GROUP), 0, NULL, NULL, "group" },
	{ "a@b.example, Friends: c@d.example;", F(GROUP), 0, NULL, NULL, "group after a mailbox" },
	{ ":;", F(SYNTAX), 0, NULL, NULL, "group without name" },
	{ "<>", F(SYNTAX), 0, NULL, NULL, "null address" },
	{ "Joe <joe>", F(SYNTAX), 0, NULL, NULL, "no domain" },
	{ "joe", F(SYNTAX), 0, NULL, NULL, "bare word" },
	{ "joe@", F(SYNTAX), 0, NULL, NULL, "empty domain" },
	{ "@example.com", F(SYNTAX), 0, NULL, NULL, "empty local part" },
	{ "joe smith@example.com", F(SYNTAX), 0, NULL, NULL, "two words as local part" },
	{ "joe..smith@example.com", F(SYNTAX), 0, NULL, NULL, "double period" },
	{ ".joe@example.com", F(SYNTAX), 0, NULL, NULL, "leading period" },
	{ "joe.@example.com", F(SYNTAX), 0, NULL, NULL, "trailing period in local part" },
	{ "joe@a..example", F(SYNTAX), 0, NULL, NULL, "empty label" },
	{ "a@evil.example <b@victim.example>", F(SYNTAX), 0, NULL, NULL, "addr-spec then angle" },
	{ "Joe <a@one.example> <b@two.example>", F(SYNTAX), 0, NULL, NULL, "two angles, no comma" },
	{ "Joe <a@b.example", F(SYNTAX), 0, NULL, NULL, "unclosed angle" },
	{ "Joe a@b.example>", F(SYNTAX), 0, NULL, NULL, "unopened angle" },
	{ ". Joe <a@b.example>", F(SYNTAX), 0, NULL, NULL, "display name starting with a period" },
	{ "Smith, John <j@example.com>", F(SYNTAX), 0, NULL, NULL, "unquoted comma in name" },
	{ "\"unterminated <j@example.com>", F(SYNTAX), 0, NULL, NULL, "unterminated quote" },
	{ "(unterminated j@example.com", F(SYNTAX), 0, NULL, NULL, "unterminated comment" },
	{ "j@example.com)", F(SYNTAX), 0, NULL, NULL, "stray )" },
	{ "j@example.com\\", F(SYNTAX), 0, NULL, NULL, "stray backslash" },
	{ "\"a\\", F(SYNTAX), 0, NULL, NULL, "truncated quoted-pair" },
	{ "j@example.com;", F(SYNTAX), 0, NULL, NULL, "stray semicolon" },
	{ "j@exa\x01mple.com", F(SYNTAX), 0, NULL, NULL, "control in atom" },
	{ "\"a\x01\" <j@example.com>", F(OK), 1, "example.com", NULL, "obs-qtext control" },
};

static void run_cases(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct from_case *c = &cases[i];
		struct smtp_from_addr addrs[4];
		size_t n = 4, len = strlen(c->in);
		char *in = guarded_copy(c->in, len);
		enum smtp_from_status st = smtp_from_parse(in, len, addrs, &n);
		if (st != c->st || n != c->n)
			fprintf(stderr, "case \"%s\" (%s): status %d n %zu\n", c->note, c->in, st, n);
		CHECK_INT(st, c->st);
		CHECK_INT(n, c->n);
		if (st == SMTP_FROM_OK && n >= 1 && c->d0) {
			CHECK_STR(addrs[0].domain, c->d0);
			CHECK_INT(addrs[0].domain_len, strlen(c->d0));
		}
		if (st == SMTP_FROM_OK && n >= 2 && c->d1)
			CHECK_STR(addrs[1].domain, c->d1);
		guarded_free(in, len);
	}
}

/* The parts of a case that a string table cannot carry: NUL, flags. */
static void test_nul_and_flags(void)
{
	struct smtp_from_addr a[2];
	size_t n = 2;

	CHECK_INT(smtp_from_parse("j@example.com\0x", 15, a, &n), F(SYNTAX));
	CHECK_INT(n, 0);
	n = 2;
	CHECK_INT(smtp_from_parse("\"a\0b\" <j@example.com>", 22, a, &n), F(SYNTAX));
	n = 2;
	CHECK_INT(smtp_from_parse("(a\\\0) j@example.com", 19, a, &n), F(SYNTAX));
	n = 2;
	CHECK_INT(smtp_from_parse("j@[192.0.2.1]", 13, a, &n), F(OK));
	CHECK(a[0].is_literal && !a[0].has_8bit);
	n = 2;
	CHECK_INT(smtp_from_parse("j@b\xc3\xbc.example", 13, a, &n), F(OK));
	CHECK(a[0].has_8bit && !a[0].is_literal);
	n = 2;
	CHECK_INT(smtp_from_parse("\"\xc3\xbc\" <j@example.com>", 20, a, &n), F(OK));
	CHECK(!a[0].has_8bit); /* 8-bit only in the name */
}

/* More addresses than the caller has room for: counted, not stored. */
static void test_capacity(void)
{
	struct smtp_from_addr a[2];
	size_t n = 1;

	a[1].domain_len = 12345;
	CHECK_INT(smtp_from_parse("a@one.example, b@two.example, c@three.example", 44, a, &n), F(OK));
	CHECK_INT(n, 3);
	CHECK_STR(a[0].domain, "one.example");
	CHECK_INT(a[1].domain_len, 12345); /* untouched */
	n = 0;
	CHECK_INT(smtp_from_parse("a@one.example", 13, NULL, &n), F(OK));
	CHECK_INT(n, 1);
	n = 1;
	CHECK_INT(smtp_from_parse("a@one.example, bad", 18, a, &n), F(SYNTAX));
	CHECK_INT(n, 0);
}

/* Limits: body, address, domain, comment depth. */
static void test_limits(void)
{
	static char buf[SMTP_FROM_BODY_MAX + 2];
	struct smtp_from_addr a[1];
	size_t n, len;
	char *in;

	/* domain of exactly 255 bytes parses, but with a 1-byte local part
	 * the address is 257 > 254 */
	len = 0;
	buf[len++] = 'j';
	buf[len++] = '@';
	for (int label = 0; label < 4; label++) {
		memset(buf + len, 'a', 63);
		len += 63;
		buf[len++] = '.';
	}
	len--; /* 4*63+3 = 255 */
	n = 1;
	in = guarded_copy(buf, len);
	CHECK_INT(smtp_from_parse(in, len, a, &n), F(TOO_LONG));
	guarded_free(in, len);
	/* 256-byte domain */
	buf[len++] = 'b';
	n = 1;
	in = guarded_copy(buf, len);
	CHECK_INT(smtp_from_parse(in, len, a, &n), F(TOO_LONG));
	guarded_free(in, len);
	/* 254 bytes exactly: local 64 + "@" + domain 189 */
	len = 0;
	memset(buf, 'l', 64);
	len = 64;
	buf[len++] = '@';
	memset(buf + len, 'd', 185);
	len += 185;
	memcpy(buf + len, ".com", 4);
	len += 4;
	CHECK_INT(len, 254);
	n = 1;
	in = guarded_copy(buf, len);
	CHECK_INT(smtp_from_parse(in, len, a, &n), F(OK));
	CHECK_INT(a[0].domain_len, 189);
	guarded_free(in, len);
	buf[len++] = 'x';
	n = 1;
	in = guarded_copy(buf, len);
	CHECK_INT(smtp_from_parse(in, len, a, &n), F(TOO_LONG));
	guarded_free(in, len);

	/* body over 64 KiB: refused before it is read */
	memset(buf, ' ', sizeof buf);
	memcpy(buf, "j@example.com", 13);
	n = 1;
	CHECK_INT(smtp_from_parse(buf, SMTP_FROM_BODY_MAX, a, &n), F(OK));
	n = 1;
	CHECK_INT(smtp_from_parse(buf, SMTP_FROM_BODY_MAX + 1, a, &n), F(TOO_LONG));

	/* comment nesting: the limit parses, one more does not */
	len = 0;
	for (int i = 0; i < SMTP_FROM_COMMENT_DEPTH; i++)
		buf[len++] = '(';
	for (int i = 0; i < SMTP_FROM_COMMENT_DEPTH; i++)
		buf[len++] = ')';
	memcpy(buf + len, "j@example.com", 13);
	len += 13;
	n = 1;
	CHECK_INT(smtp_from_parse(buf, len, a, &n), F(OK));
	len = 0;
	for (int i = 0; i <= SMTP_FROM_COMMENT_DEPTH; i++)
		buf[len++] = '(';
	for (int i = 0; i <= SMTP_FROM_COMMENT_DEPTH; i++)
		buf[len++] = ')';
	memcpy(buf + len, "j@example.com", 13);
	len += 13;
	n = 1;
	CHECK_INT(smtp_from_parse(buf, len, a, &n), F(SYNTAX));

	/* 64 KiB of one comment's nesting does not recurse or overflow */
	memset(buf, '(', SMTP_FROM_BODY_MAX);
	n = 1;
	CHECK_INT(smtp_from_parse(buf, SMTP_FROM_BODY_MAX, a, &n), F(SYNTAX));
	/* 64 KiB of commas and of periods: linear, bounded */
	memset(buf, ',', SMTP_FROM_BODY_MAX);
	n = 1;
	CHECK_INT(smtp_from_parse(buf, SMTP_FROM_BODY_MAX, a, &n), F(EMPTY));
	memset(buf, '.', SMTP_FROM_BODY_MAX);
	n = 1;
	CHECK_INT(smtp_from_parse(buf, SMTP_FROM_BODY_MAX, a, &n), F(SYNTAX));
}

/* Every prefix of a valid body: no read past len, no crash. */
static void test_prefixes(void)
{
	const char *full = "\"Jo\\\"e\" (c (d)) <@r.example:j.x@[192.0.2.1]>, k@b\xc3\xbc.example\r\n";
	size_t full_len = strlen(full);

	for (size_t len = 0; len <= full_len; len++) {
		struct smtp_from_addr a[2];
		size_t n = 2;
		char *in = guarded_copy(full, len);
		enum smtp_from_status st = smtp_from_parse(in, len, a, &n);
		CHECK(st == F(OK) || n == 0);
		guarded_free(in, len);
	}
}

int main(void)
{
	run_cases();
	test_nul_and_flags();
	test_capacity();
	test_limits();
	test_prefixes();
	CHECK_STR(smtp_from_strerror(F(GROUP)), "a group, not a mailbox");
	return check_finish("test_smtp_from");
}

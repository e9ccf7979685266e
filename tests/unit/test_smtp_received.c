/*
 * test_smtp_received - the from and by parts of Received: field bodies as
 * real MTAs and forgers write them, then hostile input. Inputs live at the
 * end of a guarded page, so a read past the body faults.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS for guarded_copy */
#include "smtp/smtp_received.h"
#include "tests/unit/check.h"

#define R(x) SMTP_RECEIVED_##x

struct received_case {
	const char *in;
	enum smtp_received_status st;
	const char *from_name, *rdns, *helo;
	const char *addr0, *addr1;   /* NULL: no such address */
	const char *by_name, *by_addr;
	const char *note;
};

static const struct received_case cases[] = {
	/* the published forgeries (Fuhrman, MCETECH 2008) */
	{ "from [91.122.24.126] by ns2.bt.net; Mon, 7 Dec 2026 03:00:00 +0000", R(OK),
	  "", "", "", "91.122.24.126", NULL, "ns2.bt.net", "", "talk21.com forgery" },
	{ "from [198.51.100.7] by a.ns.joker.com;\r\n\tMon, 7 Dec 2026 03:00:00 +0000", R(OK),
	  "", "", "", "198.51.100.7", NULL, "a.ns.joker.com", "", "telesensventures.com forgery" },
	/* RFC 5321 4.4 / Postfix */
	{ "from mail.example.org (mail.example.org [192.0.2.1])\r\n\tby mx.example.net (Postfix) "
	  "with ESMTPS id 4AbC; Mon, 7 Dec 2026 03:00:00 +0000", R(OK),
	  "mail.example.org", "mail.example.org", "", "192.0.2.1", NULL, "mx.example.net", "", "Postfix" },
	{ "from helo.example (unknown [192.0.2.1]) by mx.example.net (Postfix) with SMTP id X", R(OK),
	  "helo.example", "", "", "192.0.2.1", NULL, "mx.example.net", "", "Postfix, no rdns" },
	{ "from h (unknown [IPv6:2001:DB8:0:0::1]) by mx.example.net", R(OK),
	  "h", "", "", "2001:db8::1", NULL, "mx.example.net", "", "IPv6 literal, canonical" },
	{ "from x.example (x.example [192.0.2.1]) (using TLSv1.3 with cipher "
	  "TLS_AES_256_GCM_SHA384 (256/256 bits)) (Client CN \"a (b)\", Issuer \"c\" (not verified))"
	  " by mx.example.net (Postfix) with ESMTPS", R(OK),
	  "x.example", "x.example", "", "192.0.2.1", NULL, "mx.example.net", "", "Postfix TLS comments" },
	/* Sendmail */
	{ "from helo.example (user@rdns.example [192.0.2.9] (may be forged))\r\n\tby "
	  "sm.example.net (8.17.1/8.17.1) with ESMTP id 1234; Mon, 7 Dec 2026", R(OK),
	  "helo.example", "rdns.example", "", "192.0.2.9", NULL, "sm.example.net", "", "Sendmail ident" },
	/* the client's HELO as a literal: Postfix and Sendmail write it first;
	 * the connection's address is the one in the comment */
	{ "from [192.0.2.200] (unknown [192.0.2.1]) by mx.example.net (Postfix)", R(OK),
	  "", "", "", "192.0.2.1", NULL, "mx.example.net", "", "Postfix, HELO literal is no address" },
	{ "from 192.0.2.200 (rdns.example [192.0.2.1]) by mx.example.net", R(OK),
	  "", "rdns.example", "", "192.0.2.1", NULL, "mx.example.net", "", "bare HELO address" },
	{ "from [192.0.2.200] (may be forged) by sm.example.net", R(OK),
	  "", "", "", "192.0.2.200", NULL, "sm.example.net", "", "a literal alone counts" },
	{ "from helo ([192.0.2.9]) by sm.example.net", R(OK),
	  "helo", "", "", "192.0.2.9", NULL, "sm.example.net", "", "Sendmail no rdns" },
	/* Exim */
	{ "from [192.0.2.3] (helo=zombie.example)\r\n\tby exim.example.net with esmtp (Exim 4.96)\r\n\t"
	  "(envelope-from <a@b.example>) id 1abc; Mon, 7 Dec 2026", R(OK),
	  "", "", "zombie.example", "192.0.2.3", NULL, "exim.example.net", "", "Exim, no rdns" },
	{ "from host.example ([192.0.2.3]:51234 helo=h.example) by exim.example.net", R(OK),
	  "host.example", "", "h.example", "192.0.2.3", NULL, "exim.example.net", "", "Exim with port" },
	{ "from host.example (helo=[192.0.2.200]) by exim.example.net", R(OK),
	  "host.example", "", "", NULL, NULL, "exim.example.net", "", "Exim HELO literal is no address" },
	/* qmail, Exchange, Gmail */
	{ "from unknown (HELO qh.example) (192.0.2.4) by qmail.example.net with SMTP", R(OK),
	  "unknown", "", "qh.example", "192.0.2.4", NULL, "qmail.example.net", "", "qmail" },
	{ "(qmail 1234 invoked from network); 7 Dec 2026 03:00:00 -0000", R(OK),
	  "", "", "", NULL, NULL, "", "", "qmail local: no clauses" },
	{ "from EXCH1.corp.example (10.1.2.3) by EXCH2.corp.example (10.1.2.4) with Microsoft SMTP "
	  "Server (version=TLS1_2) id 15.1.2; Mon, 7 Dec 2026", R(OK),
	  "EXCH1.corp.example", "", "", "10.1.2.3", NULL, "EXCH2.corp.example", "", "Exchange" },
	{ "from mail.example.com (mail.example.com. [209.85.220.41]) by mx.google.com with "
	  "ESMTPS id x; Mon, 7 Dec 2026", R(OK),
	  "mail.example.com", "mail.example.com", "", "209.85.220.41", NULL, "mx.google.com", "", "Gmail" },
	{ "by 2002:a05:6a10:1234::1 with SMTP id x; Mon, 7 Dec 2026", R(OK),
	  "", "", "", NULL, NULL, "", "2002:a05:6a10:1234::1", "by only, address" },
	{ "by mx.example.net from [192.0.2.5]; x", R(OK),
	  "", "", "", "192.0.2.5", NULL, "mx.example.net", "", "by before from" },
	{ "FROM [192.0.2.5] BY NS2.BT.NET.", R(OK),
	  "", "", "", "192.0.2.5", NULL, "NS2.BT.NET", "", "keywords any case, trailing dot" },
	{ "from [IPv6:::ffff:192.0.2.6] by h.example", R(OK),
	  "", "", "", "192.0.2.6", NULL, "h.example", "", "IPv4-mapped becomes IPv4" },
	{ "from 192.0.2.7 by h.example", R(OK),
	  "", "", "", "192.0.2.7", NULL, "h.example", "", "bare address after from" },
	{ "from h.example [192.0.2.8] by [192.0.2.9]", R(OK),
	  "h.example", "", "", "192.0.2.8", NULL, "", "192.0.2.9", "top-level literal, by literal" },
	{ "from a (b [192.0.2.1]) (c [192.0.2.2]) by d", R(OK),
	  "a", "b", "", "192.0.2.1", "192.0.2.2", "d", "", "two comments, two addresses" },
	/* the date part and what follows ';' is never read */
	{ "from [192.0.2.1] ; by evil.example", R(OK),
	  "", "", "", "192.0.2.1", NULL, "", "", "by after ';' ignored" },
	/* hostile */
	{ "from [192.0.2.1] (unterminated by ns2.bt.net", R(MALFORMED),
	  "", "", "", "192.0.2.1", NULL, "", "", "unterminated comment swallows the rest" },
	{ "from [192.0.2.1 by ns2.bt.net", R(MALFORMED),
	  "", "", "", NULL, NULL, "", "", "unterminated literal" },
	{ "from \"quoted by ns2.bt.net", R(MALFORMED),
	  "", "", "", NULL, NULL, "", "", "unterminated quoted string" },
	{ "from x ((((nested) (more)) ok) [192.0.2.1]) by y", R(OK),
	  "x", "", "", "192.0.2.1", NULL, "y", "", "nested comments, address after them" },
	{ "from x (a \\) [192.0.2.66] b) by y", R(OK),
	  "x", "", "", "192.0.2.66", NULL, "y", "", "quoted-pair closes nothing" },
	{ "from [192.0.2.1] by a.example from [192.0.2.2] by b.example", R(MALFORMED),
	  "", "", "", "192.0.2.1", NULL, "a.example", "", "repeated clauses: the first counts" },
	{ "from h\xc3\xa9.example (r\xc3\xa9 [192.0.2.1]) by b\xc3\xa9.example", R(OK),
	  "", "", "", "192.0.2.1", NULL, "", "", "8-bit names are not stored" },
	{ "from [192.0.2.1] by ns2.bt.net\x01", R(OK),
	  "", "", "", "192.0.2.1", NULL, "", "", "control byte: name not stored" },
	{ "from [999.0.2.1] by h.example", R(OK),
	  "", "", "", NULL, NULL, "h.example", "", "not an address" },
	{ "from [IPv6:zz::1] (x [1.2.3]) by h.example", R(OK),
	  "", "", "", NULL, NULL, "h.example", "", "bad IPv6, bad IPv4" },
	{ "from a..b (x [192.0.2.1]) by -", R(OK),
	  "", "x", "", "192.0.2.1", NULL, "-", "", "empty label not a name; '-' is (harmless)" },
	{ ") ] from [192.0.2.1] by h.example", R(MALFORMED),
	  "", "", "", "192.0.2.1", NULL, "h.example", "", "stray closers" },
	{ "from a.example.. by b.example.", R(OK), "", "", "", NULL, NULL, "b.example", "",
	  "two final dots: not a name (found by fuzz_smtp_received)" },
	{ "", R(OK), "", "", "", NULL, NULL, "", "", "empty" },
	{ "from", R(OK), "", "", "", NULL, NULL, "", "", "keyword only" },
	{ "from by by", R(MALFORMED), "", "", "", NULL, NULL, "", "", "keywords as names" },
};

static void check_case(const struct received_case *c)
{
	struct smtp_received r;
	size_t len = strlen(c->in);
	char *in = guarded_copy(c->in, len);
	enum smtp_received_status st = smtp_received_parse(in, len, &r);
	int failed_before = check_failed;

	CHECK_INT(st, c->st);
	CHECK_STR(r.from_name, c->from_name);
	CHECK_STR(r.from_rdns, c->rdns);
	CHECK_STR(r.from_helo, c->helo);
	CHECK_STR(r.by_name, c->by_name);
	CHECK_STR(r.by_addr, c->by_addr);
	CHECK_INT(r.from_naddrs, (c->addr0 != NULL) + (c->addr1 != NULL));
	if (c->addr0)
		CHECK_STR(r.from_addrs[0], c->addr0);
	if (c->addr1)
		CHECK_STR(r.from_addrs[1], c->addr1);
	if (check_failed != failed_before)
		fprintf(stderr, "  (after case: %s)\n", c->note);
	guarded_free(in, len);
}

/* NUL bytes: a name or address with one is never stored, whatever follows */
static void test_nul(void)
{
	static const char in[] = "from [192.0.2.1\0x] (a\0b [192.0.2.2]) by ns2\0.bt.net";
	struct smtp_received r;
	char *g = guarded_copy(in, sizeof in - 1);

	smtp_received_parse(g, sizeof in - 1, &r);
	CHECK_INT(r.from_naddrs, 1);
	CHECK_STR(r.from_addrs[0], "192.0.2.2");
	CHECK_STR(r.from_rdns, "");
	CHECK_STR(r.by_name, "");
	guarded_free(g, sizeof in - 1);
}

/* deep nesting stops the parse; a field at the size cap still parses, one
 * byte over is refused without reading */
static void test_sizes(void)
{
	struct smtp_received r;
	size_t n = SMTP_RECEIVED_BODY_MAX;
	char *big = malloc(n + 1), *g;
	size_t off = 0;

	if (big == NULL)
		exit(check_error("test_smtp_received", "malloc"));
	off += (size_t)sprintf(big, "from [192.0.2.1] (");
	while (off < n - 40)
		big[off++] = '(';
	big[off] = '\0';
	off += (size_t)sprintf(big + off, "x) by h.example");
	g = guarded_copy(big, off);
	CHECK_INT(smtp_received_parse(g, off, &r), R(MALFORMED));
	CHECK_STR(r.from_addrs[0], "192.0.2.1");
	CHECK_STR(r.by_name, "");
	guarded_free(g, off);

	/* a long but harmless field: many comments, all skipped */
	off = (size_t)sprintf(big, "from [192.0.2.1] ");
	while (off < n - 20) {
		memcpy(big + off, "(c) ", 4);
		off += 4;
	}
	off += (size_t)sprintf(big + off, "by h.example");
	g = guarded_copy(big, off);
	CHECK_INT(smtp_received_parse(g, off, &r), R(OK));
	CHECK_STR(r.by_name, "h.example");
	guarded_free(g, off);

	memset(big, 'a', n + 1);
	memcpy(big, "from [192.0.2.1] by x ", 22);
	g = guarded_copy(big, n + 1);
	CHECK_INT(smtp_received_parse(g, n + 1, &r), R(TOO_LONG));
	CHECK_INT(r.from_naddrs, 0);
	guarded_free(g, n + 1);

	/* a name of 254 bytes is not a host name; 253 is */
	memset(big, 'a', 300);
	for (size_t i = 3 + 63; i < 300; i += 64)
		big[i] = '.';
	memcpy(big, "by ", 3);
	g = guarded_copy(big, 3 + 253);
	smtp_received_parse(g, 3 + 253, &r);
	CHECK_INT(strlen(r.by_name), 253);
	guarded_free(g, 3 + 253);
	g = guarded_copy(big, 3 + 254);
	smtp_received_parse(g, 3 + 254, &r);
	CHECK_STR(r.by_name, "");
	guarded_free(g, 3 + 254);
	free(big);
}

/* more addresses than kept: the first SMTP_RECEIVED_ADDRS, no overflow */
static void test_many_addresses(void)
{
	static const char in[] = "from x (a [192.0.2.1]) (b [192.0.2.2]) (c [192.0.2.3]) "
	    "(d [192.0.2.4]) (e [192.0.2.5]) [192.0.2.6] by h.example";
	struct smtp_received r;

	CHECK_INT(smtp_received_parse(in, sizeof in - 1, &r), R(OK));
	CHECK_INT(r.from_naddrs, SMTP_RECEIVED_ADDRS);
	CHECK_STR(r.from_addrs[SMTP_RECEIVED_ADDRS - 1], "192.0.2.4");
	CHECK_STR(r.by_name, "h.example");
}

static void test_addr_canon(void)
{
	char out[SMTP_RECEIVED_ADDR_MAX];

	CHECK(smtp_received_addr_canon("IPv6:2001:0db8::0001", 20, out));
	CHECK_STR(out, "2001:db8::1");
	CHECK(smtp_received_addr_canon("ipv6:::1", 8, out));
	CHECK_STR(out, "::1");
	CHECK(smtp_received_addr_canon("127.0.0.1", 9, out));
	CHECK_STR(out, "127.0.0.1");
	CHECK(!smtp_received_addr_canon("127.0.0.1", 8, out) || strcmp(out, "127.0.0.") != 0);
	CHECK(!smtp_received_addr_canon("", 0, out));
	CHECK(!smtp_received_addr_canon("IPv6:", 5, out));
	CHECK(!smtp_received_addr_canon("01.2.3.4", 8, out));
	CHECK(!smtp_received_addr_canon("1.2.3.4 ", 8, out));
}

int main(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_case(&cases[i]);
	test_nul();
	test_sizes();
	test_many_addresses();
	test_addr_canon();
	return check_finish("test_smtp_received");
}

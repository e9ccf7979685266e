/*
 * test_bounce_evidence - the pure parts of the bounce check: our_relays
 * (names, .domains, addresses, CIDRs) against hops of an original's
 * Received chain, the first external hop, covered and exempt recipients,
 * and the [bounce] keys as config_load() reads and refuses them. Hops are
 * filled the way the classifier fills them, including hostile values
 * (over-long, bracketed, IPv6: literals, garbage, control bytes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "filters/bounce_evidence.h"
#include "smtp/bounce_fields.h"
#include "proxy/config.h"
#include "tests/unit/check.h"

static char ini_path[64];

/* load - a config from ini text ([backend] address added); NULL and the
 * errors in err when refused. */
static struct config *load(const char *text, char *err, size_t errlen)
{
	FILE *f = fopen(ini_path, "w");
	if (f == NULL) {
		perror(ini_path);
		exit(99);
	}
	fprintf(f, "[backend]\naddress = 127.0.0.1:25\n%s", text);
	fclose(f);
	return config_load(ini_path, err, errlen);
}

static struct bounce_hop hop(const char *by, const char *from, const char *ip)
{
	struct bounce_hop h;
	memset(&h, 0, sizeof h);
	snprintf(h.by, sizeof h.by, "%s", by);
	snprintf(h.from, sizeof h.from, "%s", from);
	snprintf(h.ip, sizeof h.ip, "%s", ip);
	return h;
}

/* ours - an original whose one Received is this hop: from one of ours? */
static bool ours(const struct config *cfg, const char *by, const char *from, const char *ip,
    char *what, size_t cap)
{
	static struct bounce_original o;
	memset(&o, 0, sizeof o);
	o.found = true;
	o.nhops = 1;
	o.hops[0] = hop(by, from, ip);
	return bounce_relay_hop(cfg, &o, what, cap);
}

static void test_config(void)
{
	char err[2048];
	struct config *cfg;

	cfg = load("", err, sizeof err);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_INT(cfg->bounce.mode, BOUNCE_MODE_OFF);
		CHECK_INT(cfg->bounce.unverifiable, BOUNCE_UNVERIFIABLE_MARK);
		CHECK_INT(cfg->bounce.class_mask, (1u << BOUNCE_NDR) | (1u << BOUNCE_DSN) |
		    (1u << BOUNCE_AUTOREPLY) | (1u << BOUNCE_CHALLENGE));
		config_unref(cfg);
	}
	cfg = load("[batv]\ndomains = example.com\nrefuse_at = content\n"
	    "[bounce]\nmode = enforce\nunverifiable = refuse\nclasses = NDR dsn mdn\n"
	    "our_relays = 192.0.2.25 198.51.100.0/24 2001:db8::/32\n",
	    err, sizeof err);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_INT(cfg->batv.refuse_at, BATV_REFUSE_CONTENT);
		CHECK_INT(cfg->bounce.class_mask, (1u << BOUNCE_NDR) | (1u << BOUNCE_DSN) |
		    (1u << BOUNCE_MDN));
		CHECK_INT(cfg->bounce.relay_nets.n, 3);
		config_unref(cfg);
	}
	/* refusals say what to fix */
	CHECK(load("[bounce]\nclasses = ndr bogus\n", err, sizeof err) == NULL);
	CHECK(strstr(err, "[bounce] classes: 'bogus' is not a class") != NULL);
	CHECK(load("[bounce]\nclasses = ordinary\n", err, sizeof err) == NULL);
	CHECK(strstr(err, "'ordinary'") != NULL);
	CHECK(load("[bounce]\nour_relays = 192.0.2.0/33\n", err, sizeof err) == NULL);
	CHECK(strstr(err, "'192.0.2.0/33' is not an address or CIDR") != NULL);
	CHECK(load("[bounce]\nour_relays = 999.1.1.1\n", err, sizeof err) == NULL);
	/* names are the sender's to choose (HELO, PTR): refused, saying why */
	CHECK(load("[bounce]\nour_relays = mx1.example.com\n", err, sizeof err) == NULL);
	CHECK(strstr(err, "'mx1.example.com': list the addresses") != NULL);
	CHECK(load("[bounce]\nour_relays = .out.example.com\n", err, sizeof err) == NULL);
	CHECK(load("[bounce]\nour_relays = a..b\n", err, sizeof err) == NULL);
	CHECK(load("[bounce]\nour_relays = .\n", err, sizeof err) == NULL);
	CHECK(load("[bounce]\nmode = observe\n", err, sizeof err) == NULL);
	CHECK(strstr(err, "[bounce] mode is observe but [batv] domains is empty") != NULL);
	CHECK(load("[bounce]\nmode = sometimes\n", err, sizeof err) == NULL);
	CHECK(load("[bounce]\nunverifiable = maybe\n", err, sizeof err) == NULL);
	CHECK(load("[batv]\nrefuse_at = later\n", err, sizeof err) == NULL);
}

static void test_relays(void)
{
	char err[2048], what[120];
	struct config *cfg = load("[batv]\ndomains = example.com\n[bounce]\n"
	    "our_relays = 192.0.2.25 198.51.100.0/24 2001:db8::/32\n",
	    err, sizeof err);

	CHECK(cfg != NULL);
	if (cfg == NULL) {
		fprintf(stderr, "%s", err);
		return;
	}
	/* a hop without an address: its name is the client's HELO or PTR,
	 * never evidence (rereview of issue 11: Exchange and qmail forms) */
	CHECK(!ours(cfg, "", "mx1.example.com", "", what, sizeof what));
	CHECK_STR(what, "from mx1.example.com");
	CHECK(!ours(cfg, "", "a.b.out.example.com", "", what, sizeof what));
	CHECK(!ours(cfg, "", "192.0.2.25", "", what, sizeof what));
	CHECK(!ours(cfg, "", "out.example.com", "", what, sizeof what));   /* .domain: below only */
	CHECK(!ours(cfg, "", "xmx1.example.com", "", what, sizeof what));
	CHECK(!ours(cfg, "", "mx1.example.com.evil.example", "", what, sizeof what));
	CHECK(!ours(cfg, "", "notout.example.com", "", what, sizeof what));
	CHECK(!ours(cfg, "", "mx1.example.co", "", what, sizeof what));
	/* "by" is who wrote the hop, not who sent: never ours */
	CHECK(!ours(cfg, "mx1.example.com", "", "", what, sizeof what));
	CHECK(!ours(cfg, "mx1.example.com", "spam.example", "203.0.113.66", what, sizeof what));
	/* a name beside an address is the client's HELO: the address decides */
	CHECK(!ours(cfg, "mx.remote.example", "mx1.example.com", "203.0.113.66", what, sizeof what));
	CHECK_STR(what, "from 203.0.113.66");
	CHECK(ours(cfg, "mx.remote.example", "unknown", "192.0.2.25", what, sizeof what));
	/* addresses: the hop's ip, and address literals in from */
	CHECK(ours(cfg, "", "", "192.0.2.25", what, sizeof what));
	CHECK_STR(what, "from 192.0.2.25");
	CHECK(!ours(cfg, "", "", "192.0.2.26", what, sizeof what));
	CHECK(ours(cfg, "", "", "198.51.100.200", what, sizeof what));
	CHECK(ours(cfg, "", "", "[198.51.100.1]", what, sizeof what));
	CHECK(ours(cfg, "", "", "IPv6:2001:db8::25", what, sizeof what));
	CHECK(ours(cfg, "", "", "[IPv6:2001:DB8:1::1]", what, sizeof what));
	CHECK(ours(cfg, "", "", "::ffff:192.0.2.25", what, sizeof what));
	CHECK(!ours(cfg, "", "", "2001:db9::1", what, sizeof what));
	CHECK(!ours(cfg, "[192.0.2.25]", "", "", what, sizeof what));
	/* a literal as the from word with no ip: the parser puts a hop's
	 * address in ip (bounce_parse_received); from alone is a name */
	CHECK(!ours(cfg, "", "[IPv6:2001:db8::7]", "", what, sizeof what));
	/* hostile: garbage, half brackets, overlong, control bytes */
	CHECK(!ours(cfg, "", "", "[192.0.2.25", what, sizeof what));
	CHECK(!ours(cfg, "", "", "192.0.2.25]", what, sizeof what));
	CHECK(!ours(cfg, "", "", "IPv6:", what, sizeof what));
	CHECK(!ours(cfg, "", "", "[]", what, sizeof what));
	CHECK(!ours(cfg, "", "", "192.0.2.25/24", what, sizeof what));
	CHECK(!ours(cfg, "\r\n", "\t", " ", what, sizeof what));
	{
		char long_name[300];
		memset(long_name, 'a', sizeof long_name - 1);
		long_name[sizeof long_name - 1] = '\0';
		strcpy(long_name + sizeof long_name - 18, ".out.example.com");
		/* bounce_hop fields are 256 bytes: the name is cut there */
		CHECK(!ours(cfg, long_name, long_name, "", what, sizeof what));
		CHECK(!ours(cfg, "", "x\x01y.out.example.com", "", what, sizeof what));
		CHECK(strchr(what, '\x01') == NULL);                 /* logged printable */
	}
	/* a tiny what buffer is still terminated */
	CHECK(ours(cfg, "", "", "192.0.2.25", what, 4));
	CHECK_STR(what, "fro");
	config_unref(cfg);

	/* no our_relays: nothing matches */
	cfg = load("", err, sizeof err);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK(!ours(cfg, "mx1.example.com", "mx1.example.com", "192.0.2.25", what, sizeof what));
		config_unref(cfg);
	}
}

/* only the hops the bouncing side wrote count: the topmost, and below it
 * those from internal addresses (its own filters); a forged hop further
 * down naming our relay is the spammer's text */
static void test_relay_chain(void)
{
	char err[2048], what[120];
	struct config *cfg = load("[bounce]\nour_relays = 192.0.2.0/28\n",
	    err, sizeof err);
	struct bounce_original o;

	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	memset(&o, 0, sizeof o);
	o.found = true;
	CHECK(!bounce_relay_hop(cfg, &o, what, sizeof what));
	CHECK_STR(what, "");
	/* review 11, 1d: "Received: from x by relay-out" below the remote's hop */
	o.nhops = 2;
	o.hops[0] = hop("mx.remote.example", "spamhost.example", "203.0.113.66");
	o.hops[1] = hop("relay-out.example.com", "x", "");
	CHECK(!bounce_relay_hop(cfg, &o, what, sizeof what));
	CHECK_STR(what, "from 203.0.113.66");
	o.hops[1] = hop("mx.remote.example", "relay-out.example.com", "192.0.2.3");
	CHECK(!bounce_relay_hop(cfg, &o, what, sizeof what));
	/* the genuine chain: the remote received from our relay */
	o.hops[0] = hop("mx.remote.example", "relay-out.example.com", "192.0.2.3");
	o.hops[1] = hop("relay-out.example.com", "pc.example.com", "10.0.0.5");
	CHECK(bounce_relay_hop(cfg, &o, what, sizeof what));
	CHECK_STR(what, "from 192.0.2.3");
	/* the remote's content filter and internal relay on top: skipped */
	o.nhops = 4;
	o.hops[0] = hop("mail.remote.example", "localhost", "127.0.0.1");
	o.hops[1] = hop("mail.remote.example", "mx.remote.example", "10.1.1.1");
	o.hops[2] = hop("mx.remote.example", "relay-out.example.com", "192.0.2.3");
	o.hops[3] = hop("relay-out.example.com", "pc.example.com", "10.0.0.5");
	CHECK(bounce_relay_hop(cfg, &o, what, sizeof what));
	/* ... but a public hop on top decides (it is not ours) */
	o.hops[1] = hop("mail.remote.example", "mx.remote.example", "198.51.100.20");
	CHECK(!bounce_relay_hop(cfg, &o, what, sizeof what));
	CHECK_STR(what, "from 198.51.100.20");
	/* a hop with neither address nor from: not ours, and it decides */
	o.hops[1] = hop("mail.remote.example", "", "");
	CHECK(!bounce_relay_hop(cfg, &o, what, sizeof what));
	/* nhops beyond the array is bounded */
	o.nhops = 1000;
	CHECK(!bounce_relay_hop(cfg, &o, what, sizeof what));
	config_unref(cfg);
}

static void test_origin(void)
{
	char err[2048];
	struct config *cfg = load("[bounce]\nour_relays = 203.0.113.5\n", err, sizeof err);
	struct bounce_original o;

	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	memset(&o, 0, sizeof o);
	CHECK(bounce_origin_ip(cfg, &o) == NULL);
	/* topmost first: the earliest hop is the last; internal ones skipped */
	o.nhops = 4;
	o.hops[0] = hop("mx.remote.example", "out.spam.example", "203.0.113.9");
	o.hops[1] = hop("out.spam.example", "relay", "198.51.100.7");
	o.hops[2] = hop("relay", "pc", "10.1.2.3");
	o.hops[3] = hop("pc", "localhost", "127.0.0.1");
	CHECK_STR(bounce_origin_ip(cfg, &o), "198.51.100.7");
	o.hops[1] = hop("x", "y", "192.168.0.1");
	CHECK_STR(bounce_origin_ip(cfg, &o), "203.0.113.9");
	o.hops[0] = hop("x", "y", "203.0.113.5");   /* ours: not the origin */
	CHECK(bounce_origin_ip(cfg, &o) == NULL);
	o.hops[0] = hop("x", "y", "IPv6:fe80::1");
	o.hops[1] = hop("x", "y", "fd00::7");
	o.hops[2] = hop("x", "y", "100.64.1.1");
	o.hops[3] = hop("x", "y", "2001:db8::99");
	CHECK_STR(bounce_origin_ip(cfg, &o), "2001:db8::99");
	o.hops[3] = hop("x", "y", "::1");
	CHECK(bounce_origin_ip(cfg, &o) == NULL);
	o.hops[2] = hop("x", "y", "not an address");
	o.hops[1] = hop("x", "y", "172.20.0.1");
	o.hops[0] = hop("x", "y", "172.32.0.1");   /* outside 172.16/12 */
	CHECK_STR(bounce_origin_ip(cfg, &o), "172.32.0.1");
	/* nhops beyond the array is never read past */
	o.nhops = 1000;
	CHECK(bounce_origin_ip(cfg, &o) != NULL);
	config_unref(cfg);
}

static void test_rcpts(void)
{
	char err[2048], out[64];
	struct config *cfg = load("[batv]\ndomains = example.com Example.NET\n[bounce]\n"
	    "exempt = noc@example.com list-*@example.com partner.example .sub.example.com\n",
	    err, sizeof err);

	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	CHECK(bounce_domain_covered(cfg, "user@example.com"));
	CHECK(bounce_domain_covered(cfg, "user@EXAMPLE.net"));
	CHECK(!bounce_domain_covered(cfg, "user@example.org"));
	CHECK(!bounce_domain_covered(cfg, "user@mail.example.com"));
	CHECK(!bounce_domain_covered(cfg, "user@"));
	CHECK(!bounce_domain_covered(cfg, "no-at-sign"));
	CHECK(bounce_rcpt_exempt(cfg, "postmaster@example.com"));
	CHECK(bounce_rcpt_exempt(cfg, "PostMaster@anything.example"));
	CHECK(bounce_rcpt_exempt(cfg, "abuse@example.com"));
	CHECK(bounce_rcpt_exempt(cfg, "noc@example.com"));
	CHECK(bounce_rcpt_exempt(cfg, "list-owner@example.com"));
	CHECK(bounce_rcpt_exempt(cfg, "user@partner.example"));
	CHECK(bounce_rcpt_exempt(cfg, "user@a.sub.example.com"));
	CHECK(!bounce_rcpt_exempt(cfg, "user@sub.example.com"));
	CHECK(!bounce_rcpt_exempt(cfg, "user@example.com"));
	CHECK(!bounce_rcpt_exempt(cfg, "postmasterx@example.com"));
	CHECK(!bounce_rcpt_exempt(cfg, "user@xpartner.example"));
	config_unref(cfg);

	bounce_addr_bare("<a@b.example>", out, sizeof out);
	CHECK_STR(out, "a@b.example");
	bounce_addr_bare("  <prvs=1234abcdef=a@b.example> (via x)", out, sizeof out);
	CHECK_STR(out, "prvs=1234abcdef=a@b.example");
	bounce_addr_bare("a@b.example (comment)", out, sizeof out);
	CHECK_STR(out, "a@b.example");
	bounce_addr_bare("<>", out, sizeof out);
	CHECK_STR(out, "");
	bounce_addr_bare("<unterminated@x y", out, sizeof out);
	CHECK_STR(out, "unterminated@x");
	bounce_addr_bare("", out, sizeof out);
	CHECK_STR(out, "");
	bounce_addr_bare("<0123456789012345678901234567890123456789@example.com>", out, 8);
	CHECK_STR(out, "0123456");
}

/* The address of a Received hop is the one the receiving side saw, never
 * the client's HELO (rereview of issue 11: "EHLO [our relay]" made Postfix
 * write "from [192.0.2.3] (unknown [127.0.0.1])" and the first literal
 * won). Each MTA's form: */
static void test_received_address(void)
{
	static const struct {
		const char *field, *ip;
	} cases[] = {
		/* Postfix, Sendmail: from HELO (name [ip]) */
		{"from [192.0.2.3] (unknown [127.0.0.1]) by backend.test.example (Postfix)", "127.0.0.1"},
		{"from relay-out.example.com (relay-out.example.com [192.0.2.3]) by mx.remote.example", "192.0.2.3"},
		{"from [IPv6:::ffff:192.0.2.3] (unknown [203.0.113.9]) by mx", "203.0.113.9"},
		{"from helo.example (user@host.example [203.0.113.9] (may be forged)) by mx", "203.0.113.9"},
		/* Exim: from [ip] (helo=H), from name ([H]) [ip] */
		{"from [203.0.113.9] (helo=[192.0.2.3]) by mx.remote.example with esmtp", "203.0.113.9"},
		{"from host.example ([192.0.2.3]) [203.0.113.9] by mx.remote.example", "203.0.113.9"},
		{"from host.example ([192.0.2.3] helo=[192.0.2.4]) [203.0.113.9] by mx", "203.0.113.9"},
		/* Exchange: from HELO (ip); qmail: from name (HELO H) (ip) */
		{"from relay-out.example.com (203.0.113.66) by mx.remote.example", "203.0.113.66"},
		{"from relay-out.example.com (HELO [192.0.2.3]) (203.0.113.66) by mx", "203.0.113.66"},
		{"from unknown (HELO 192.0.2.3) (203.0.113.66) by mx", "203.0.113.66"},
		{"from mail.example (HELO mail.example) ([203.0.113.66]) by mx", "203.0.113.66"},
		/* IPv6 */
		{"from x (unknown [IPv6:2001:db8::25]) by mx", "2001:db8::25"},
		/* no address at all; words that are not addresses */
		{"from relay-out.example.com by mx.remote.example", ""},
		{"from x (Postfix) (ESMTP) (dead) by mx", ""},
		{"from x (helo=[192.0.2.3]) by mx", ""},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct bounce_hop hop;
		bounce_parse_received(cases[i].field, strlen(cases[i].field), &hop);
		if (strcmp(hop.ip, cases[i].ip) != 0)
			fprintf(stderr, "case %zu: '%s' gave ip '%s'\n", i, cases[i].field, hop.ip);
		CHECK_STR(hop.ip, cases[i].ip);
	}
}

int main(void)
{
	strcpy(ini_path, "/tmp/test_bounce_evidence.XXXXXX");
	int fd = mkstemp(ini_path);
	if (fd < 0) {
		perror("mkstemp");
		return 99;
	}
	close(fd);
	test_config();
	test_relays();
	test_relay_chain();
	test_received_address();
	test_origin();
	test_rcpts();
	unlink(ini_path);
	return check_finish("test_bounce_evidence");
}

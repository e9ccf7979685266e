/*
 * test_bounce_record - what the refused-bounce record takes from the
 * original: the hosts of its URLs (smtp/url_hosts.c) against hostile text
 * (userinfo, ports, IPv6 literals, junk hosts, URLs cut by the line,
 * repeats, more hosts than kept, never a read past the line), the
 * address its bouncing site's entry MTA saw (smtp/received_ip.c: every
 * special-purpose range skipped, the chain read from the top, the site's
 * relays skipped by reverse name and registered domain, never a forged
 * line below the entry nor the kept bottom of a long chain, garbage
 * refused), and both through the classifier: an attached original,
 * Gmail-, Exchange Online- and Postfix-like chains with forged lines below
 * them, inline quoted text, and the budget on the original's text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/bounce.h"
#include "smtp/received_ip.h"
#include "smtp/url_hosts.h"
#include "tests/unit/bounce_feed.h"
#include "tests/unit/check.h"

static void hosts_of(const char *line, struct url_hosts *u)
{
	size_t n = strlen(line);
	char *g = guarded_copy(line, n);
	memset(u, 0, sizeof *u);
	url_hosts_line(u, g, n);
	guarded_free(g, n);
}

static void test_url_hosts(void)
{
	struct url_hosts u;

	hosts_of("Buy now at http://Meds.Example./buy?x=1 or HTTPS://pills.example:8443 today", &u);
	CHECK_INT(u.n, 2);
	CHECK_STR(u.host[0], "meds.example");
	CHECK_STR(u.host[1], "pills.example");
	/* userinfo: the host is after the last @ */
	hosts_of("<a href=\"http://www.bank.example@evil.example/login\">", &u);
	CHECK_INT(u.n, 1);
	CHECK_STR(u.host[0], "evil.example");
	/* IPv6 literal, IPv4 host, repeats, quotes and brackets ending it */
	hosts_of("http://[2001:db8::1]:80/ http://192.0.2.1/x 'http://a.example' (http://a.example)", &u);
	CHECK_INT(u.n, 3);
	CHECK_STR(u.host[0], "[2001:db8::1]");
	CHECK_STR(u.host[1], "192.0.2.1");
	CHECK_STR(u.host[2], "a.example");
	/* junk: no host, bad characters, only dots, scheme alone, cut */
	hosts_of("http:// http://... http://<script>/ http://a%62.example/ http://x!y/ https:/ http", &u);
	CHECK_INT(u.n, 0);
	hosts_of("http://[::1 http://[zz]/ ftp://files.example/ mailto:a@b.example", &u);
	CHECK_INT(u.n, 0);
	/* a host longer than kept is skipped, not cut */
	char longhost[400];
	snprintf(longhost, sizeof longhost, "http://%0300d.example/", 7);
	hosts_of(longhost, &u);
	CHECK_INT(u.n, 0);
	/* more hosts than kept: the first ones, the rest counted */
	char many[2048];
	size_t n = 0;
	for (int i = 0; i < 20; i++)
		n += (size_t)snprintf(many + n, sizeof many - n, "http://h%d.example ", i);
	hosts_of(many, &u);
	CHECK_INT(u.n, URL_HOSTS_MAX);
	CHECK_STR(u.host[URL_HOSTS_MAX - 1], "h7.example");
	CHECK_INT(u.dropped, 20 - URL_HOSTS_MAX);
	/* NUL ends a URL as a blank does; a URL at the very end of the line */
	static const char nul[] = "http://a.exa\0mple http://end.example";
	char *g = guarded_copy(nul, sizeof nul - 1);
	memset(&u, 0, sizeof u);
	url_hosts_line(&u, g, sizeof nul - 1);
	guarded_free(g, sizeof nul - 1);
	CHECK_INT(u.n, 2);
	CHECK_STR(u.host[0], "a.exa");
	CHECK_STR(u.host[1], "end.example");
	/* every prefix of a URL: no read past the line */
	static const char url[] = "https://user:pw@[2001:db8::2]:25/p";
	for (size_t i = 0; i <= sizeof url - 1; i++) {
		g = guarded_copy(url, i);
		memset(&u, 0, sizeof u);
		url_hosts_line(&u, g, i);
		guarded_free(g, i);
	}
	CHECK_INT(u.n, 1);
}

static void test_received_ip(void)
{
	static const char *const internal[] = {
		"0.1.2.3", "10.0.0.1", "100.64.0.1", "100.127.255.255", "127.0.0.1", "169.254.1.1",
		"172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.2.1", "192.88.99.1", "192.168.1.1",
		"198.18.0.1", "198.19.255.1", "198.51.100.9", "203.0.113.5", "224.0.0.1", "239.1.1.1",
		"240.0.0.1", "255.255.255.255", "::", "::1", "::ffff:10.0.0.1", "IPv6:::ffff:127.0.0.1",
		"fc00::1", "fd12::1", "fe80::1", "ff02::1", "2001:db8::25", "100::1", "2001:2::1",
		"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", " 1.2.3.4", "abc", "1.2.3.4/24",
		"IPv6:", "::g", "01.2.3.4x",
	};
	static const char *const external[] = {
		"1.2.3.4", "8.8.8.8", "100.63.255.255", "100.128.0.1", "172.15.1.1", "172.32.0.1",
		"192.0.3.1", "198.17.1.1", "198.20.0.1", "223.255.255.255", "2a00:1450::1",
		"IPv6:2a00:1450::1", "ipv6:2606:4700::1", "::ffff:8.8.8.8",
	};
	for (size_t i = 0; i < sizeof internal / sizeof internal[0]; i++) {
		if (received_ip_external(internal[i]))
			fprintf(stderr, "taken as external: %s\n", internal[i]);
		CHECK(!received_ip_external(internal[i]));
	}
	for (size_t i = 0; i < sizeof external / sizeof external[0]; i++) {
		if (!received_ip_external(external[i]))
			fprintf(stderr, "not taken as external: %s\n", external[i]);
		CHECK(received_ip_external(external[i]));
	}
	CHECK(!received_ip_external(NULL));
	char longip[200];
	memset(longip, '1', sizeof longip - 1);
	longip[sizeof longip - 1] = '\0';
	CHECK(!received_ip_external(longip));
}

static void hop(struct bounce_original *o, size_t i, const char *ip, const char *rdns, const char *by)
{
	snprintf(o->hops[i].ip, sizeof o->hops[i].ip, "%s", ip);
	snprintf(o->hops[i].by, sizeof o->hops[i].by, "%s", by);
	o->hops[i].site_relay = received_same_registered_domain(rdns, by);
	if (o->nhops < i + 1)
		o->nhops = o->hops_seen = i + 1;
}

static void test_registered_domain(void)
{
	static const char *const same[][2] = {
		{"mx1.bouncer.example", "MAIL.Bouncer.Example."}, {"a.b.c.google.com", "mx.google.com"},
		{"relay.mail.bouncer.co.uk", "mx.bouncer.co.uk"}, {"x.y.isp.com.au", "isp.com.au"},
		{"bouncer.example", "bouncer.example"}, {"a.example.de", "b.example.de"},
	};
	static const char *const differ[][2] = {
		{"mx.bouncer.example", "mx.other.example"}, {"evil.co.uk", "mx.bouncer.co.uk"},
		{"co.uk", "mx.co.uk"},               /* a registry is no site */
		{"x.evilbouncer.example", "mx.bouncer.example"},
		{"localhost", "localhost"}, {"example", "example"}, {"", ""}, {".", "."},
		{"1.2.3.4", "5.6.3.4"}, {"[1.2.3.4]", "[1.2.3.4]"}, {"a..example", "b..example"},
		{"a.example.", "a.example.."}, {"x (y.example)", "z.y.example"}, {"mx.abc.de", "mail.abc.de"},
		{".bouncer.example", "mx.bouncer.example"}, {"bouncer.example", "bouncer.exampl"},
	};
	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
		if (!received_same_registered_domain(same[i][0], same[i][1]))
			fprintf(stderr, "not one site: %s %s\n", same[i][0], same[i][1]);
		CHECK(received_same_registered_domain(same[i][0], same[i][1]));
	}
	for (size_t i = 0; i < sizeof differ / sizeof differ[0]; i++) {
		if (received_same_registered_domain(differ[i][0], differ[i][1]))
			fprintf(stderr, "taken as one site: %s %s\n", differ[i][0], differ[i][1]);
		CHECK(!received_same_registered_domain(differ[i][0], differ[i][1]));
	}
	CHECK(!received_same_registered_domain(NULL, "a.example"));
	char longname[400];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	longname[390] = '.';
	CHECK(!received_same_registered_domain(longname, longname));
}

static void test_entry_ip(void)
{
	/* from the top: the site's private and public relays skipped, the
	 * entry MTA's client taken, the lines below it (the sender's) never */
	struct bounce_original *o = calloc(1, sizeof *o);
	if (o == NULL)
		abort();
	CHECK(received_entry_ip(o) == NULL);
	hop(o, 0, "10.1.1.1", "", "store.bouncer.example");                      /* private */
	hop(o, 1, "5.5.5.5", "mx-in3.bouncer.example", "filter.bouncer.example"); /* public relay */
	hop(o, 2, "1.2.3.4", "dsl-1-2-3-4.isp.example", "mx-in3.bouncer.example"); /* the entry */
	hop(o, 3, "8.8.8.8", "relay.innocent.example", "mx.innocent.example");   /* forged */
	hop(o, 4, "9.9.9.9", "", "relay.innocent.example");                      /* forged */
	CHECK_STR(received_entry_ip(o), "1.2.3.4");
	o->nhops = 2;
	CHECK(received_entry_ip(o) == NULL);
	o->nhops = 5;
	/* a client whose reverse name is in another domain is no relay */
	hop(o, 1, "5.5.5.5", "mx-in3.bouncer-evil.example", "filter.bouncer.example");
	CHECK_STR(received_entry_ip(o), "5.5.5.5");
	/* no reverse name: a stranger */
	hop(o, 1, "5.5.5.5", "", "filter.bouncer.example");
	CHECK_STR(received_entry_ip(o), "5.5.5.5");
	/* a ccTLD's second level: bouncer.co.uk is one site, other.co.uk another */
	memset(o, 0, sizeof *o);
	hop(o, 0, "81.2.69.1", "relay.mail.bouncer.co.uk", "mx.bouncer.co.uk");
	hop(o, 1, "81.2.69.2", "spam.other.co.uk", "relay.mail.bouncer.co.uk");
	hop(o, 2, "8.8.8.8", "x.innocent.example", "spam.other.co.uk");
	CHECK_STR(received_entry_ip(o), "81.2.69.2");
	/* a chain longer than kept: past the top ones, the kept hops are the
	 * bottom-most (the sender's own lines), never taken */
	memset(o, 0, sizeof *o);
	for (size_t i = 0; i < BOUNCE_RECEIVED_MAX; i++)
		hop(o, i, i < BOUNCE_RECEIVED_TOP ? "10.0.0.1" : "8.8.8.8", "", "relay.bouncer.example");
	CHECK_STR(received_entry_ip(o), "8.8.8.8");   /* 16 fields: all kept, in order */
	o->hops_seen = BOUNCE_RECEIVED_MAX + 3;
	CHECK(received_entry_ip(o) == NULL);
	snprintf(o->hops[BOUNCE_RECEIVED_TOP - 1].ip, sizeof o->hops[0].ip, "2a00:1450::1");
	CHECK_STR(received_entry_ip(o), "2a00:1450::1");
	free(o);
}

static struct bounce_result *classify(const char *msg)
{
	size_t n;
	char *crlf = to_crlf(msg, strlen(msg), &n);
	struct bounce_scan *s = bounce_scan_new();
	struct bounce_result *r = calloc(1, sizeof *r);

	if (s == NULL || r == NULL)
		abort();
	feed_message(s, crlf, n, 7, NULL, 0, NULL);
	bounce_scan_end(s, "", r);
	bounce_scan_free(s);
	free(crlf);
	return r;
}

static void test_classifier(void)
{
	struct bounce_result *r;

	/* an attached original: its text's URLs, not the report's */
	r = classify(
	    "From: MAILER-DAEMON@mx.example\nTo: user@test.example\n"
	    "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n"
	    "--b\nContent-Type: text/plain\n\nThis is the mail system at host mx.example.\n"
	    "See http://help.mx.example/bounce for help.\n\n"
	    "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
	    "Final-Recipient: rfc822; nobody@mx.example\nAction: failed\nStatus: 5.1.1\n\n"
	    "--b\nContent-Type: message/rfc822\n\n"
	    "Received: from mx.test.example (mx.test.example [198.51.100.1]) by mx.example\n"
	    "Received: from zombie (dsl-1-2-3-4.isp.example [1.2.3.4]) by mx.test.example\n"
	    "Received: from [192.168.0.5] by zombie\n"
	    "From: user@test.example\nSubject: Cheap meds\nMessage-ID: <spam1@test.example>\n"
	    "Content-Type: multipart/alternative; boundary=\"c\"\n\n"
	    "--c\nContent-Type: text/plain\n\nBuy at http://meds.example/x now\n"
	    "--c\nContent-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n"
	    "<a href=3D\"https://pills.example/?a=3Db\">x</a>\n--c--\n"
	    "--b--\n");
	CHECK(r->cls != BOUNCE_ORDINARY);
	CHECK(r->orig.found);
	CHECK_STR(r->orig.subject, "Cheap meds");
	CHECK_STR(received_entry_ip(&r->orig), "1.2.3.4");
	CHECK_INT(r->orig.urls.n, 2);
	CHECK_STR(r->orig.urls.host[0], "meds.example");
	CHECK_STR(r->orig.urls.host[1], "pills.example");
	free(r);

	/* inline-quoted headers: the text after them */
	r = classify(
	    "From: MAILER-DAEMON@mx.example\nTo: user@test.example\n"
	    "Subject: failure notice\n\n"
	    "Hi. This is the qmail-send program at mx.example.\n"
	    "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
	    "See http://help.mx.example/ for why.\n\n"
	    "<nobody@mx.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
	    "--- Below this line is a copy of the message.\n\n"
	    "Received: from zombie (HELO 8.8.4.4) (9.9.9.9)\n  by mx.test.example\n"
	    "From: user@test.example\nSubject: Rolex\nMessage-ID: <spam2@test.example>\n\n"
	    "Watches at http://watches.example/ and http://watches.example/again\n");
	CHECK(r->orig.found);
	CHECK_STR(received_entry_ip(&r->orig), "9.9.9.9");
	CHECK_INT(r->orig.urls.n, 1);
	CHECK_STR(r->orig.urls.n ? r->orig.urls.host[0] : "", "watches.example");
	free(r);

	/* real chains, attached; below each entry hop, forged lines naming
	 * 8.8.8.8 (the joe-job pattern): never the zombie */
	static const char *const chains[][2] = {
	    /* Gmail-like: internal relays with public addresses and names in
	     * google.com, an IPv6 "by"-only hop, the entry from a zombie whose
	     * HELO claims to be Google (the HELO is not what is compared) */
	    {"Received: by 2002:a05:6402:1d4b:b0:1a2:3b4c:5d6e with SMTP id x1csp123;\n"
	     "        Mon, 7 Dec 2026 02:59:10 -0800 (PST)\n"
	     "Received: from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41])\n"
	     "        by mx.google.com with SMTPS id a1sor1;\n        Mon, 7 Dec 2026 02:59:09 -0800 (PST)\n"
	     "Received: from mx.google.com (dsl-81-2-69-77.isp.example. [81.2.69.77])\n"
	     "        by mx.google.com with ESMTPS id b2si3;\n        Mon, 7 Dec 2026 02:59:08 -0800 (PST)\n",
	     "81.2.69.77"},
	    /* Postfix edge and Sendmail relays of one site in co.uk */
	    {"Received: from relay2.bouncer.co.uk (relay2.bouncer.co.uk [81.2.69.10]) by store.bouncer.co.uk\n"
	     "Received: from edge.bouncer.co.uk (edge.bouncer.co.uk [81.2.69.11] (may be forged))\n"
	     "  by relay2.bouncer.co.uk (8.17.1/8.17.1) with ESMTP id 5B7\n"
	     "Received: from bouncer.co.uk (unknown [203.0.113.9]) by edge.bouncer.co.uk (Postfix)\n"
	     "Received: from helo.example (cpe-5-6-7-8.cable.example [5.6.7.8]) by edge.bouncer.co.uk (Postfix)\n",
	     "5.6.7.8"},
	    /* Exchange Online writes the client's HELO, no reverse name: its
	     * relays with public addresses cannot be told from the entry's
	     * client and the topmost is taken (received_ip.h: a limit); the
	     * sender's lines below are still never reached */
	    {"Received: from AM0PR07CA0021.eurprd07.prod.outlook.com (2603:10a6:208:ac::34) by\n"
	     " DB7PR07MB5676.eurprd07.prod.outlook.com (2603:10a6:10:7d::13) with Microsoft SMTP\n"
	     " Server (version=TLS1_2) id 15.20.2516.12; Mon, 7 Dec 2026 02:59:09 +0000\n"
	     "Received: from zombie-pc (81.2.69.99) by AM5EUR02FT041.mail.protection.outlook.com\n"
	     " (10.152.8.163) with Microsoft SMTP Server id 15.20.2516.12 via Frontend Transport\n",
	     "2603:10a6:208:ac::34"},
	    /* Exim, qmail: the name after "from" is the receiver's lookup when
	     * the HELO is written apart */
	    {"Received: from mx2.bouncer.example ([192.0.2.99] helo=mx2) by hub.bouncer.example with esmtp\n"
	     "Received: from relay.bouncer.example ([81.2.69.20] helo=whatever) by hub.bouncer.example with esmtp\n"
	     "Received: from relay.bouncer.example (HELO relay) (81.2.69.21) by relay.bouncer.example\n"
	     "Received: from unknown (HELO relay.bouncer.example) (81.2.69.22) by relay.bouncer.example\n",
	     "81.2.69.22"},
	};
	for (size_t i = 0; i < sizeof chains / sizeof chains[0]; i++) {
		char msg[4096];
		snprintf(msg, sizeof msg,
		    "From: MAILER-DAEMON@bouncer.example\nTo: user@test.example\n"
		    "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
		    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n"
		    "--b\nContent-Type: text/plain\n\nThis is the mail system.\n\n"
		    "--b\nContent-Type: message/rfc822\n\n%s"
		    "Received: from relay.innocent.example (relay.innocent.example [8.8.8.8])\n"
		    "  by mx.bouncer.example\nReceived: from [8.8.4.4] by relay.innocent.example\n"
		    "From: user@test.example\nSubject: s\nMessage-ID: <c%zu@test.example>\n\nx\n--b--\n",
		    chains[i][0], i);
		r = classify(msg);
		CHECK(r->orig.found);
		const char *ip = received_entry_ip(&r->orig);
		if (ip == NULL || strcmp(ip, chains[i][1]) != 0)
			fprintf(stderr, "chain %zu: %s, not %s\n", i, ip ? ip : "(none)", chains[i][1]);
		CHECK_STR(ip ? ip : "", chains[i][1]);
		free(r);
	}

	/* the original's text is read up to its budget only */
	size_t pad = 200 * 1024, n = 0;
	char *big = malloc(pad + 2048);
	if (big == NULL)
		abort();
	n += (size_t)sprintf(big, "From: MAILER-DAEMON@mx.example\nSubject: Undelivered Mail Returned "
	    "to Sender\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain"
	    "\n\nThis is the mail system at host mx.example.\n\n--b\nContent-Type: message/rfc822\n\n"
	    "Received: from z (z [1.2.3.4]) by mx.test.example\nSubject: s\n\n"
	    "http://first.example/\n");
	for (size_t i = 0; i < pad / 64; i++)
		n += (size_t)sprintf(big + n, "%063d\n", 0);
	n += (size_t)sprintf(big + n, "http://late.example/\n--b--\n");
	r = classify(big);
	CHECK_INT(r->orig.urls.n, 1);
	CHECK_STR(r->orig.urls.host[0], "first.example");
	free(r);
	free(big);
}

int main(void)
{
	test_url_hosts();
	test_received_ip();
	test_registered_domain();
	test_entry_ip();
	test_classifier();
	return check_finish("test_bounce_record");
}

/*
 * test_bounce_record - what the refused-bounce record takes from the
 * original: the hosts of its URLs (smtp/url_hosts.c) against hostile text
 * (userinfo, ports, IPv6 literals, junk hosts, URLs cut by the line,
 * repeats, more hosts than kept, never a read past the line), its first
 * external Received hop (smtp/received_ip.c: every special-purpose range
 * skipped, the bottom-most public hop chosen, garbage refused), and both
 * through the classifier: an attached original, a base64 copy, inline
 * quoted text, and the budget on the original's text.
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

	/* the bottom-most external hop; internal ones below it skipped */
	struct bounce_original *o = calloc(1, sizeof *o);
	if (o == NULL)
		abort();
	CHECK(received_first_external(o) == NULL);
	snprintf(o->hops[0].ip, sizeof o->hops[0].ip, "198.51.100.1");  /* topmost: the bouncer's own */
	snprintf(o->hops[1].ip, sizeof o->hops[1].ip, "5.6.7.8");       /* our MX got it from here? */
	snprintf(o->hops[2].ip, sizeof o->hops[2].ip, "1.2.3.4");       /* the zombie */
	snprintf(o->hops[3].ip, sizeof o->hops[3].ip, "192.168.0.5");   /* the zombie's LAN */
	o->nhops = 5;                                                    /* hop 4: no address */
	CHECK_STR(received_first_external(o), "1.2.3.4");
	o->nhops = 1;
	CHECK(received_first_external(o) == NULL);
	o->nhops = 1000;   /* more than kept: only the kept ones */
	CHECK_STR(received_first_external(o), "1.2.3.4");
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
	CHECK_STR(received_first_external(&r->orig), "1.2.3.4");
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
	CHECK_STR(received_first_external(&r->orig), "9.9.9.9");
	CHECK_INT(r->orig.urls.n, 1);
	CHECK_STR(r->orig.urls.n ? r->orig.urls.host[0] : "", "watches.example");
	free(r);

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
	test_classifier();
	return check_finish("test_bounce_record");
}

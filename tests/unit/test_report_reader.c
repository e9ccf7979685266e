/*
 * test_report_reader - the log side of `backstop report`
 * (proxy/report_reader.c, report_agg.c): a record read whole, syslog
 * prefixes, and hostile lines - truncated JSON at every length, huge
 * strings, \u0000 and unpaired surrogates, raw controls, deep nesting,
 * junk after the object, keys repeated - each skipped or read safely,
 * never past the input (guarded_copy); the streaming reader's bounded
 * buffer against an over-long line; times; bounded tables when full; the
 * bouncing servers' networks counted per zombie (/24, /48, bounded).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/report_agg.h"
#include "proxy/report_reader.h"
#include "tests/unit/check.h"

static const char GOOD[] =
    "{\"ts\":\"2026-12-07T03:40:46.123Z\",\"level\":\"info\",\"pid\":12,\"event\":\"bounce_refused\","
    "\"session\":\"ABC\",\"msg\":\"bounce refused: x\",\"server_ip\":\"198.51.100.7\","
    "\"server_name\":\"mx.example\",\"helo\":\"mx\",\"rcpt\":\"u@test.example\",\"sender\":\"\","
    "\"class\":\"ndr\",\"reason\":\"no_evidence\",\"orig_sender\":\"u@test.example\","
    "\"orig_client_ip\":\"8.8.8.8\",\"message_id\":\"<a@b>\",\"nested\":{\"a\":[1,2.5e3,-1,true,"
    "false,null,{\"b\":\"c\"}]},\"url_hosts\":[\"meds.example\",\"pills.example\"],"
    "\"subject\":\"Cheap \\\"meds\\\" \\u00e9\\ud83d\\ude00\"}";

static enum report_line_kind parse(const char *s, struct report_event *ev)
{
	size_t n = strlen(s);
	char *g = guarded_copy(s, n);
	enum report_line_kind k = report_parse_line(g, n, ev);
	guarded_free(g, n);
	return k;
}

static void test_good(void)
{
	struct report_event ev;
	char line[sizeof GOOD + 64];

	CHECK_INT(parse(GOOD, &ev), REPORT_LINE_RECORD);
	CHECK_INT(ev.ts, 1796614846LL);   /* 2026-12-07T03:40:46Z, the milliseconds dropped */
	CHECK_STR(ev.server_ip, "198.51.100.7");
	CHECK_STR(ev.server_name, "mx.example");
	CHECK_STR(ev.rcpt, "u@test.example");
	CHECK_STR(ev.cls, "ndr");
	CHECK_STR(ev.orig_client_ip, "8.8.8.8");
	CHECK_STR(ev.message_id, "<a@b>");
	CHECK_INT(ev.nurl_hosts, 2);
	CHECK_STR(ev.url_hosts[1], "pills.example");
	CHECK_STR(ev.subject, "Cheap \"meds\" \xc3\xa9\xf0\x9f\x98\x80");
	/* a syslog prefix and trailing blanks */
	snprintf(line, sizeof line, "Dec  7 03:40:46 mx backstop[12]: %s  \r", GOOD);
	CHECK_INT(parse(line, &ev), REPORT_LINE_RECORD);
	CHECK_STR(ev.orig_client_ip, "8.8.8.8");
	snprintf(line, sizeof line, "2026-12-07T03:40:46.123+00:00 mx backstop: %s", GOOD);
	CHECK_INT(parse(line, &ev), REPORT_LINE_RECORD);
	/* another program's line in a shared mail log ends with what a client
	 * sent (Postfix logs a "non-SMTP command" verbatim): no record, even
	 * when the client's text imitates our tag */
	CHECK_INT(parse("Dec  7 04:04:00 mx postfix/smtpd[4628]: warning: non-SMTP command from "
	    "unknown[192.0.2.1]: {\"event\":\"bounce_refused\",\"orig_client_ip\":\"8.8.8.8\"}", &ev),
	    REPORT_LINE_MALFORMED);
	CHECK_INT(parse("Dec  7 04:04:00 mx postfix/smtpd[4628]: warning: non-SMTP command from "
	    "unknown[192.0.2.1]: x backstop[1]: {\"event\":\"bounce_refused\"}", &ev),
	    REPORT_LINE_MALFORMED);
	CHECK_INT(parse("Dec  7 04:04:00 mx backstop[x]: {\"event\":\"bounce_refused\"}", &ev),
	    REPORT_LINE_MALFORMED);
	/* another event */
	CHECK_INT(parse("{\"event\":\"summary\",\"subject\":\"x\"}", &ev), REPORT_LINE_OTHER);
	CHECK_INT(parse("{}", &ev), REPORT_LINE_OTHER);
	/* no time: a record all the same, ts -1 */
	CHECK_INT(parse("{\"event\":\"bounce_refused\",\"ts\":\"yesterday\"}", &ev), REPORT_LINE_RECORD);
	CHECK_INT(ev.ts, -1);
	CHECK_INT(parse("{\"event\":\"bounce_refused\",\"subject\":null,\"url_hosts\":null}", &ev),
	    REPORT_LINE_RECORD);
	CHECK_STR(ev.subject, "");
	CHECK_INT(ev.nurl_hosts, 0);
}

static void test_truncated(void)
{
	struct report_event ev;
	size_t n = strlen(GOOD);

	/* every prefix of a record is malformed: never half-read */
	for (size_t i = 0; i < n; i++) {
		char *g = guarded_copy(GOOD, i);
		enum report_line_kind k = report_parse_line(g, i, &ev);
		guarded_free(g, i);
		if (k != REPORT_LINE_MALFORMED) {
			CHECK_INT(i, -1);
			return;
		}
	}
	CHECK(1);
}

static void test_hostile(void)
{
	struct report_event ev;
	static const char *const bad[] = {
		"",
		"no json here",
		"{\"event\":\"bounce_refused\"} trailing",
		"{\"event\":\"bounce_refused\",}",
		"{\"event\":\"bounce_refused\" \"x\":1}",
		"{\"event\":bounce_refused}",
		"{\"event\":\"bounce_refused\",\"subject\":\"raw\ttab\"}",       /* raw control */
		"{\"event\":\"bounce_refused\",\"subject\":\"bad \\x escape\"}",
		"{\"event\":\"bounce_refused\",\"subject\":\"\\u12\"}",
		"{\"event\":\"bounce_refused\",\"subject\":\"\\u12zz\"}",
		"{\"event\":\"bounce_refused\",\"x\":[1,2}",
		"{\"event\":\"bounce_refused\",\"x\":tru}",
		"{\"event\":\"bounce_refused\",\"x\":-}",
		"{\"event\":\"bounce_refused\",\"url_hosts\":[\"a\",]}",
		"{\"event\":\"bounce_refused\",\"url_hosts\":[\"a\"",
		"{\"event\":\"bounce_refused\",\"subject\":\"ends in a backslash\\",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum report_line_kind k = parse(bad[i], &ev);
		if (k != REPORT_LINE_MALFORMED)
			fprintf(stderr, "case %zu: %s\n", i, bad[i]);
		CHECK_INT(k, REPORT_LINE_MALFORMED);
	}

	/* \u0000 and unpaired surrogates: U+FFFD, never a NUL inside */
	CHECK_INT(parse("{\"event\":\"bounce_refused\",\"subject\":\"a\\u0000b\\ud800c\\udc00\"}", &ev),
	    REPORT_LINE_RECORD);
	CHECK_STR(ev.subject, "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd");
	/* a high surrogate followed by another escape: both read */
	CHECK_INT(parse("{\"event\":\"bounce_refused\",\"subject\":\"\\ud800\\u0041\"}", &ev),
	    REPORT_LINE_RECORD);
	CHECK_STR(ev.subject, "\xef\xbf\xbd" "A");

	/* nesting: up to the limit read, past it malformed (no deep recursion) */
	char deep[4096];
	size_t n = 0;
	n += (size_t)snprintf(deep, sizeof deep, "{\"event\":\"bounce_refused\",\"x\":");
	for (int i = 0; i < 1000; i++)
		deep[n++] = '[';
	for (int i = 0; i < 1000; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	deep[n] = '\0';
	CHECK_INT(parse(deep, &ev), REPORT_LINE_MALFORMED);
	n = (size_t)snprintf(deep, sizeof deep, "{\"event\":\"bounce_refused\",\"x\":");
	for (int i = 0; i < REPORT_JSON_DEPTH - 2; i++)
		deep[n++] = '[';
	for (int i = 0; i < REPORT_JSON_DEPTH - 2; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	deep[n] = '\0';
	CHECK_INT(parse(deep, &ev), REPORT_LINE_RECORD);

	/* huge strings: cut to the field, at a character boundary */
	size_t big = 100000;
	char *huge = malloc(big + 2000);
	if (huge == NULL)
		abort();
	n = (size_t)sprintf(huge, "{\"event\":\"bounce_refused\",\"subject\":\"");
	for (size_t i = 0; i < big / 2; i++) {
		huge[n++] = '\xc3';
		huge[n++] = '\xa9';
	}
	n += (size_t)sprintf(huge + n, "\",\"orig_client_ip\":\"");
	for (size_t i = 0; i < 1000; i++)
		huge[n++] = '9';
	n += (size_t)sprintf(huge + n, "\"}");
	char *g = guarded_copy(huge, n);
	CHECK_INT(report_parse_line(g, n, &ev), REPORT_LINE_RECORD);
	guarded_free(g, n);
	CHECK_INT(strlen(ev.subject) % 2, 0);
	CHECK(strlen(ev.subject) < sizeof ev.subject);
	CHECK(strlen(ev.orig_client_ip) < sizeof ev.orig_client_ip);
	free(huge);

	/* more URL hosts than kept: the first ones */
	CHECK_INT(parse("{\"event\":\"bounce_refused\",\"url_hosts\":[\"1\",\"2\",\"3\",\"4\",\"5\","
	    "\"6\",\"7\",\"8\",\"9\",\"10\",5,{}]}", &ev), REPORT_LINE_RECORD);
	CHECK_INT(ev.nurl_hosts, REPORT_URL_HOSTS);
	CHECK_STR(ev.url_hosts[7], "8");
	/* a NUL byte in the line: inside a string it is a control (malformed) */
	static const char nul[] = "{\"event\":\"bounce_refused\",\"subject\":\"a\0b\"}";
	g = guarded_copy(nul, sizeof nul - 1);
	CHECK_INT(report_parse_line(g, sizeof nul - 1, &ev), REPORT_LINE_MALFORMED);
	guarded_free(g, sizeof nul - 1);
}

static void test_time(void)
{
	long long t;

	CHECK(report_parse_time("1970-01-01", 10, &t));
	CHECK_INT(t, 0);
	CHECK(report_parse_time("2026-12-07T03:40", 16, &t));
	CHECK_INT(t, 1796614800LL);
	CHECK(report_parse_time("2026-12-07T03:40:00Z", 20, &t));
	CHECK_INT(t, 1796614800LL);
	CHECK(report_parse_time("@1796617200", 11, &t));
	CHECK_INT(t, 1796617200LL);
	CHECK(!report_parse_time("2026-13-01", 10, &t));
	CHECK(!report_parse_time("2026-12-07T25:00", 16, &t));
	CHECK(!report_parse_time("2026-12-07X", 11, &t));
	CHECK(!report_parse_time("@", 1, &t));
	CHECK(!report_parse_time("@99999999999999999999", 21, &t));
	CHECK(!report_parse_time("", 0, &t));
}

static void test_stream(void)
{
	/* a line longer than the buffer is skipped whole, the next one read */
	size_t big = REPORT_LINE_MAX * 2 + 10;
	char *data = malloc(big + 100);
	struct report_reader *r = calloc(1, sizeof *r);
	const char *line;
	size_t len, n;

	if (data == NULL || r == NULL)
		abort();
	memset(data, 'x', big);
	n = big;
	n += (size_t)sprintf(data + n, "\nsecond\r\n\nlast");
	report_reader_reset(r, fmemopen(data, n, "r"));
	CHECK(r->f != NULL);
	CHECK(report_reader_next(r, &line, &len));
	CHECK_INT(len, 0);
	CHECK_INT(r->long_lines, 1);
	CHECK(report_reader_next(r, &line, &len));
	CHECK_MEM(line, len, "second");
	CHECK(report_reader_next(r, &line, &len));
	CHECK_INT(len, 0);
	CHECK(report_reader_next(r, &line, &len));
	CHECK_MEM(line, len, "last");
	CHECK(!report_reader_next(r, &line, &len));
	CHECK_INT(r->lines, 4);
	fclose(r->f);
	free(data);

	/* lines across the read-ahead chunk's edges, each read whole and in order */
	size_t count = 3 * REPORT_READ_CHUNK / 8, bad = 0, k = 0;
	data = malloc(count * 16);
	if (data == NULL)
		abort();
	n = 0;
	for (size_t i = 0; i < count; i++)
		n += (size_t)sprintf(data + n, "line %zu\n", i);
	memset(r, 0, sizeof *r);
	report_reader_reset(r, fmemopen(data, n, "r"));
	while (report_reader_next(r, &line, &len)) {
		char want[32];
		int wl = snprintf(want, sizeof want, "line %zu", k++);
		bad += len != (size_t)wl || memcmp(line, want, len) != 0;
	}
	CHECK_INT(k, count);
	CHECK_INT(bad, 0);
	fclose(r->f);
	free(r);
	free(data);
}

static void test_agg(void)
{
	struct report_agg *a = report_agg_new();
	struct report_event ev;
	size_t n;

	CHECK(a != NULL);
	memset(&ev, 0, sizeof ev);
	ev.ts = 3600 * 10 + 5;
	snprintf(ev.subject, sizeof ev.subject, "  Cheap\t meds ");
	snprintf(ev.orig_client_ip, sizeof ev.orig_client_ip, "2001:DB8::0:1");
	report_agg_add(a, &ev);
	snprintf(ev.subject, sizeof ev.subject, "Cheap meds");
	snprintf(ev.orig_client_ip, sizeof ev.orig_client_ip, "2001:db8::1");
	ev.ts = 3600 * 12;
	report_agg_add(a, &ev);
	struct report_entry **v = report_sorted(&a->runs, &n);
	CHECK_INT(n, 1);     /* blanks collapsed: one run */
	CHECK_STR(v[0]->key, "Cheap meds");
	CHECK_INT(v[0]->count, 2);
	CHECK_INT(v[0]->first, 3600 * 10 + 5);
	CHECK_INT(v[0]->last, 3600 * 12);
	free(v);
	v = report_sorted(&a->zombies, &n);
	CHECK_INT(n, 1);     /* the canonical form: one zombie */
	CHECK_STR(v[0]->key, "2001:db8::1");
	free(v);
	/* an IPv4-mapped address (Sendmail on a dual-stack socket writes
	 * [IPv6:::ffff:a.b.c.d]) is the IPv4 zombie: one row, in the ip4set */
	snprintf(ev.orig_client_ip, sizeof ev.orig_client_ip, "::ffff:8.8.8.8");
	report_agg_add(a, &ev);
	snprintf(ev.orig_client_ip, sizeof ev.orig_client_ip, "8.8.8.8");
	report_agg_add(a, &ev);
	v = report_sorted(&a->zombies, &n);
	CHECK_INT(n, 2);
	CHECK_STR(v[1]->key, "8.8.8.8");   /* ties by key: after 2001:db8::1 */
	CHECK_INT(v[1]->count, 2);
	free(v);
	snprintf(ev.orig_client_ip, sizeof ev.orig_client_ip, "2001:db8::1");
	struct report_hour *h = report_hours_sorted(a, &n);
	CHECK_INT(n, 2);
	CHECK_INT(h[0].hour, 10);
	free(h);

	/* a server name longer than the table's extra (253 bytes is a valid
	 * PTR name; extra holds 127): the same server is one row, counted
	 * each time, not a new row per record (nor a full table) */
	memset(ev.server_name, 'n', 200);
	ev.server_name[200] = '\0';
	snprintf(ev.server_ip, sizeof ev.server_ip, "192.0.2.7");
	for (int k = 0; k < 3; k++)
		report_agg_add(a, &ev);
	v = report_sorted(&a->servers, &n);
	CHECK_INT(n, 2);     /* "?" with no name from above (4), and this one */
	CHECK_STR(v[1]->key, "192.0.2.7");
	CHECK_INT(v[1]->count, 3);
	free(v);
	ev.server_name[0] = '\0';
	ev.server_ip[0] = '\0';

	/* a full table: counted in the totals and as untracked, not grown */
	for (unsigned i = 0; i < 40000; i++) {
		snprintf(ev.orig_client_ip, sizeof ev.orig_client_ip, "10.%u.%u.%u", i >> 16,
		    (i >> 8) & 255, i & 255);
		report_agg_add(a, &ev);
	}
	CHECK_INT(a->records, 40007);
	CHECK(a->zombies.used <= a->zombies.cap / 4 * 3);
	CHECK_INT(a->zombies.used + a->zombies.untracked, 40002);
	report_agg_free(a);
}

/* the bouncing servers that named a zombie: distinct networks, bounded */
static void test_zombie_servers(void)
{
	struct report_agg *a = report_agg_new();
	struct report_event ev;
	unsigned char net[REPORT_NET_BYTES], net2[REPORT_NET_BYTES];
	size_t n;

	CHECK(a != NULL);
	CHECK(report_server_net("192.0.2.7", net));
	CHECK(report_server_net("::ffff:192.0.2.200", net2));
	CHECK(memcmp(net, net2, sizeof net) == 0);       /* mapped: the same /24 */
	CHECK(report_server_net("2001:db8:1:ffff::1", net));
	CHECK(report_server_net("2001:db8:1::2", net2));
	CHECK(memcmp(net, net2, sizeof net) == 0);       /* one /48 */
	CHECK(report_server_net("2001:db8:2::2", net2));
	CHECK(memcmp(net, net2, sizeof net) != 0);
	static const char *const junk[] = {"", "?", "192.0.2", "192.0.2.1/24", "1.2.3.4 ", "x::y",
	    "192.0.2.1\n", "::ffff:1.2.3"};
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
		CHECK(!report_server_net(junk[i], net));

	memset(&ev, 0, sizeof ev);
	ev.ts = 3600;
	snprintf(ev.subject, sizeof ev.subject, "s");
	/* one server, many fake bounces naming 8.8.8.8: one reporter */
	snprintf(ev.orig_client_ip, sizeof ev.orig_client_ip, "8.8.8.8");
	snprintf(ev.server_ip, sizeof ev.server_ip, "198.51.100.7");
	for (int i = 0; i < 50; i++)
		report_agg_add(a, &ev);
	/* the same /24 from other hosts, and records naming no server */
	snprintf(ev.server_ip, sizeof ev.server_ip, "198.51.100.200");
	report_agg_add(a, &ev);
	ev.server_ip[0] = '\0';
	report_agg_add(a, &ev);
	snprintf(ev.server_ip, sizeof ev.server_ip, "not an address");
	report_agg_add(a, &ev);
	struct report_entry **v = report_sorted(&a->zombies, &n);
	CHECK_INT(n, 1);
	CHECK_INT(v[0]->count, 53);
	CHECK_INT(v[0]->nservers, 1);
	CHECK(!report_zombie_listed(v[0], 2));
	CHECK(report_zombie_listed(v[0], 1));
	free(v);
	/* a second network: listed at 2; then more networks than kept */
	snprintf(ev.server_ip, sizeof ev.server_ip, "203.0.113.9");
	report_agg_add(a, &ev);
	v = report_sorted(&a->zombies, &n);
	CHECK_INT(v[0]->nservers, 2);
	CHECK(report_zombie_listed(v[0], 2));
	CHECK(!report_zombie_listed(v[0], 3));
	free(v);
	for (unsigned i = 0; i < 20; i++) {
		snprintf(ev.server_ip, sizeof ev.server_ip, "2001:db8:%x::1", i);
		report_agg_add(a, &ev);
	}
	v = report_sorted(&a->zombies, &n);
	CHECK_INT(v[0]->nservers, REPORT_SERVER_NETS);
	CHECK(report_zombie_listed(v[0], REPORT_SERVER_NETS));
	free(v);
	/* another zombie's servers are its own */
	snprintf(ev.orig_client_ip, sizeof ev.orig_client_ip, "9.9.9.9");
	report_agg_add(a, &ev);
	v = report_sorted(&a->zombies, &n);
	CHECK_INT(n, 2);
	CHECK_STR(v[1]->key, "9.9.9.9");
	CHECK_INT(v[1]->nservers, 1);
	free(v);
	report_agg_free(a);
}

int main(void)
{
	test_good();
	test_truncated();
	test_hostile();
	test_time();
	test_stream();
	test_agg();
	test_zombie_servers();
	return check_finish("test_report_reader");
}

/*
 * test_log_json - the JSON log pieces (proxy/log_json.c): the string
 * escaper against hostile bytes (quotes, backslashes, every control
 * character, C1 controls, line separators, invalid and overlong UTF-8,
 * surrogates), escapes never cut by a small buffer; the two-form record
 * builder (text and JSON from the same calls), key injection, records cut
 * at every capacity still valid; the envelope; event names.
 */
#include <stdio.h>

#include "proxy/log_json.h"
#include "tests/unit/check.h"
#include "tests/unit/json_check.h"

struct esc_case {
	const char *in;
	size_t len;        /* 0: strlen */
	const char *out;
};

static const struct esc_case esc_cases[] = {
	{"plain text", 0, "plain text"},
	{"a\"b", 0, "a\\\"b"},
	{"a\\b", 0, "a\\\\b"},
	{"\"\\\"", 0, "\\\"\\\\\\\""},
	{"a\x01z", 0, "a\\u0001z"},
	{"\n\r\t\b\f", 0, "\\u000a\\u000d\\u0009\\u0008\\u000c"},
	{"nul\0x", 5, "nul\\u0000x"},
	{"\x1f\x7f", 0, "\\u001f\\u007f"},
	{"caf\xc3\xa9", 0, "caf\xc3\xa9"},                       /* valid UTF-8 kept */
	{"\xf0\x9f\x98\x80", 0, "\xf0\x9f\x98\x80"},             /* 4 bytes, U+1F600 */
	{"\xc2\x85", 0, "\\u0085"},                              /* C1 control NEL */
	{"\xc2\x9b[2J", 0, "\\u009b[2J"},                        /* C1 CSI */
	{"\xc2\xa0", 0, "\xc2\xa0"},                             /* first non-C1 */
	{"\xe2\x80\xa8\xe2\x80\xa9", 0, "\\u2028\\u2029"},       /* line separators */
	{"\xff", 0, "\\ufffd"},
	{"\xe9t\xe9", 0, "\\ufffdt\\ufffd"},                     /* Latin-1 */
	{"\xc0\xaf", 0, "\\ufffd\\ufffd"},                       /* overlong '/' */
	{"\xe0\x80\xaf", 0, "\\ufffd\\ufffd\\ufffd"},            /* overlong, 3 bytes */
	{"\xed\xa0\x80", 0, "\\ufffd\\ufffd\\ufffd"},            /* surrogate U+D800 */
	{"\xf4\x90\x80\x80", 0, "\\ufffd\\ufffd\\ufffd\\ufffd"}, /* over U+10FFFF */
	{"\xe2\x82", 0, "\\ufffd\\ufffd"},                       /* cut sequence */
	{"\xe2\x82\"", 0, "\\ufffd\\ufffd\\\""},                 /* cut before a quote */
	{"\x80", 0, "\\ufffd"},                                  /* stray continuation */
	{"\xef\xbf\xbd", 0, "\xef\xbf\xbd"},                     /* a real U+FFFD */
	{"", 0, ""},
};

static void test_escape_cases(void)
{
	for (size_t i = 0; i < sizeof esc_cases / sizeof esc_cases[0]; i++) {
		const struct esc_case *c = &esc_cases[i];
		size_t len = c->len ? c->len : strlen(c->in), consumed = 99, n;
		char *in = guarded_copy(c->in, len);
		char out[256];

		n = json_escape(out, sizeof out, in, len, &consumed);
		CHECK_STR(out, c->out);
		CHECK_INT(n, strlen(c->out));
		CHECK_INT(consumed, len);
		guarded_free(in, len);
	}
}

/* a small buffer stops before an escape, never inside one */
static void test_escape_small_buffers(void)
{
	const char *in = "a\x01\"\xc3\xa9\xff" "b";
	size_t len = strlen(in);
	char full[64];

	json_escape(full, sizeof full, in, len, NULL);
	for (size_t cap = 0; cap <= strlen(full) + 1; cap++) {
		char out[64];
		size_t consumed = 99, n;

		memset(out, 'X', sizeof out);
		n = json_escape(out, cap, in, len, &consumed);
		if (cap == 0) {
			CHECK_INT(n, 0);
			CHECK_INT(consumed, 0);
			continue;
		}
		CHECK(n < cap);
		CHECK_INT(out[n], '\0');
		/* a prefix of the full output that decodes to a prefix of the input */
		CHECK(memcmp(out, full, n) == 0);
		char quoted[80];
		snprintf(quoted, sizeof quoted, "\"%s\"", out);
		struct jc j = {(const unsigned char *)quoted, (const unsigned char *)quoted + strlen(quoted), 0};
		CHECK(jc_string(&j, NULL, 0, NULL));
		CHECK(consumed <= len);
	}
}

/* every byte value alone and after each other one: valid JSON string that
 * decodes to the sanitized input */
static void test_escape_all_pairs(void)
{
	for (int a = 0; a < 256; a++) {
		for (int b = 0; b < 256; b += (a < 0x80 ? 17 : 1)) {
			unsigned char in[3] = {(unsigned char)a, (unsigned char)b, 0xa9};
			unsigned char want[16], got[64];
			char out[64], quoted[72];
			size_t wl = jc_sanitize(in, 3, want), gl = 0;

			json_escape(out, sizeof out, (const char *)in, 3, NULL);
			snprintf(quoted, sizeof quoted, "\"%s\"", out);
			struct jc j = {(const unsigned char *)quoted, (const unsigned char *)quoted + strlen(quoted), 0};
			bool ok = jc_string(&j, got, sizeof got, &gl) && j.p == j.end;
			if (!ok || gl != wl || memcmp(got, want, wl) != 0) {
				CHECK(!"escape round trip");
				fprintf(stderr, "  bytes %02x %02x a9 -> %s\n", a, b, out);
				return;
			}
			for (const char *p = out; *p; p++)
				if ((unsigned char)*p < 0x20 || *p == 0x7f) {
					CHECK(!"raw control character in output");
					return;
				}
		}
	}
	CHECK(1);
}

static size_t make_line(char *line, size_t cap, const struct log_rec *r, const char *msg)
{
	return json_envelope(line, cap, "2026-01-02T03:04:05.678Z", "info", 42, "summary",
	    "0123456789AB", msg, r->json, r->json_cut);
}

static void test_record_hostile(void)
{
	const char *helo = "h\"q\\b\x01\xe9\xff\",\"event\":\"forged\",\"x\":\"";
	char text[512], json[2048], line[4096];
	unsigned char got[256], want[256];
	size_t n, gl, wl;
	struct log_rec r;

	log_rec_init(&r, text, sizeof text, json, sizeof json);
	log_rec_str(&r, "txn ", "txn", "0123456789AB.1", LOG_REC_VERBATIM, "");
	log_rec_str(&r, " helo=<", "helo", helo, 300, ">");
	log_rec_uint(&r, " size=", "size", 1234, "");
	log_rec_null(&r, "tls_version");
	log_rec_bool(&r, "cut", false);
	log_rec_array_begin(&r, "recipients");
	log_rec_str(&r, " to=<", NULL, "a\"@b", 300, ">");
	log_rec_str(&r, NULL, NULL, "c\n@d", 0, NULL);
	log_rec_end(&r);
	log_rec_checks(&r, " checks=[", "checks", "spf=pass dkim=pass batv=fail(no_tag) dkim=fail", "]");
	CHECK_STR(text, "txn 0123456789AB.1 helo=<h\"q\\x5cb\\x01\\xe9\\xff\",\"event\":\"forged\",\"x\":\"> "
	    "size=1234 to=<a\"@b> checks=[spf=pass dkim=pass batv=fail(no_tag) dkim=fail]");
	CHECK(!r.json_cut);
	CHECK_STR(json, "\"txn\":\"0123456789AB.1\",\"helo\":\"h\\\"q\\\\b\\u0001\\ufffd\\ufffd\\\",\\\"event\\\":"
	    "\\\"forged\\\",\\\"x\\\":\\\"\",\"size\":1234,\"tls_version\":null,\"cut\":false,"
	    "\"recipients\":[\"a\\\"@b\",\"c\\u000a@d\"],"
	    "\"checks\":{\"spf\":\"pass\",\"dkim\":\"pass fail\",\"batv\":\"fail(no_tag)\"}");
	n = make_line(line, sizeof line, &r, text);
	CHECK(n > 0);
	CHECK(jc_log_line(line, n));   /* also: no duplicate "event" key */
	CHECK(jc_find_string(line, n, "helo", got, sizeof got, &gl));
	wl = jc_sanitize((const unsigned char *)helo, strlen(helo), want);
	CHECK(gl == wl && memcmp(got, want, wl) == 0);
	CHECK(jc_find_string(line, n, "event", got, sizeof got, &gl));
	CHECK_MEM(got, gl, "summary");
	CHECK(jc_find_string(line, n, "msg", got, sizeof got, &gl));
	CHECK_MEM(got, gl, text);
}

/* records cut at every capacity: the members and the line stay valid */
static void test_record_every_capacity(void)
{
	for (size_t cap = 0; cap < 400; cap++) {
		char text[128], json[400], line[1024];
		struct log_rec r;
		size_t n;

		log_rec_init(&r, text, sizeof text, json, cap);
		log_rec_str(&r, "a=", "a", "\x01\x02\"\\", 100, "");
		log_rec_array_begin(&r, "list");
		for (int i = 0; i < 10; i++)
			log_rec_str(&r, NULL, NULL, "\xff\xfe element", 0, NULL);
		log_rec_object_begin(&r, NULL);
		log_rec_uint(&r, NULL, "n", 7, NULL);
		log_rec_end(&r);
		log_rec_end(&r);
		log_rec_checks(&r, NULL, "checks", "spf=pass dmarc=fail", NULL);
		log_rec_str(&r, NULL, "last", "z", 0, NULL);
		CHECK_INT(r.depth, 0);
		if (cap == 0)
			continue;   /* json with no room: nothing at all */
		CHECK(strlen(json) < cap);
		n = make_line(line, sizeof line, &r, "m");
		if (!jc_log_line(line, n)) {
			CHECK(!"line valid at this capacity");
			fprintf(stderr, "  cap %zu: %s", cap, line);
			return;
		}
		if (cap < 200)
			CHECK(r.json_cut);
	}
	CHECK(1);
}

/* check names are words: others are left out, so no two keys collide */
static void test_checks_names(void)
{
	char text[256], json[256], line[1024];
	struct log_rec r;

	log_rec_init(&r, text, sizeof text, json, sizeof json);
	log_rec_checks(&r, "[", "checks", "\xed=a \x80=b spf=pass x\"y=1 =z dkim.d=ok  spf", "]");
	CHECK_STR(json, "\"checks\":{\"spf\":\"pass \",\"dkim.d\":\"ok\"}");
	CHECK(jc_log_line(line, make_line(line, sizeof line, &r, text)));
}

static void test_record_text_only(void)
{
	char text[16];
	struct log_rec r;

	log_rec_init(&r, text, sizeof text, NULL, 0);
	log_rec_str(&r, "k=<", "k", "abc\x01", 100, ">");
	log_rec_array_begin(&r, "x");
	log_rec_end(&r);
	log_rec_uint(&r, " n=", "n", 12345678, "");
	CHECK_STR(text, "k=<abc\\x01> n=1");   /* cut at the capacity */
}

static void test_envelope(void)
{
	char line[512];
	size_t n;

	n = json_envelope(line, sizeof line, "2026-01-02T03:04:05.678Z", "warning", 7, "listening_on", NULL,
	    "quote \" backslash \\ nl \n", NULL, false);
	CHECK_STR(line, "{\"ts\":\"2026-01-02T03:04:05.678Z\",\"level\":\"warning\",\"pid\":7,"
	    "\"event\":\"listening_on\",\"session\":null,\"msg\":\"quote \\\" backslash \\\\ nl \\u000a\"}\n");
	CHECK(jc_log_line(line, n));
	/* members that do not fit: replaced, the line still whole */
	char members[600];
	memset(members, 'a', sizeof members);
	memcpy(members, "\"k\":\"", 5);
	members[sizeof members - 2] = '"';
	members[sizeof members - 1] = '\0';
	n = json_envelope(line, sizeof line, "t", "info", 1, "e", "S", "m", members, false);
	CHECK(jc_log_line(line, n));
	CHECK(strstr(line, "\"truncated\":true}") != NULL);
	/* a msg too long for the line is cut between escapes */
	char msg[2000];
	memset(msg, '\x01', sizeof msg - 1);
	msg[sizeof msg - 1] = '\0';
	n = json_envelope(line, sizeof line, "t", "info", 1, "e", NULL, msg, "\"k\":1", false);
	CHECK(n > 0 && n < sizeof line);
	CHECK(jc_log_line(line, n));
	CHECK_INT(json_envelope(line, 100, "t", "info", 1, "e", NULL, "m", NULL, false), 0);
}

/* members that do not all fit (a syslog line's cap): each top-level member
 * that fits is kept whole, in order; commas, brackets and braces inside
 * strings and nested values do not split a member */
static void test_envelope_drops_members(void)
{
	char big[700], members[1200], line[400];
	size_t n;

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	snprintf(members, sizeof members, "\"a\":1,\"big\":\"%s\",\"c\":[1,{\"d\":\"x,y]}\\\",\"}],"
	    "\"e\":\"q\\\",}\",\"f\":null", big);
	n = json_envelope(line, sizeof line, "t", "info", 1, "summary", "S", "m", members, false);
	CHECK(n > 0 && n < sizeof line);
	CHECK(jc_log_line(line, n));
	CHECK_STR(line, "{\"ts\":\"t\",\"level\":\"info\",\"pid\":1,\"event\":\"summary\",\"session\":\"S\","
	    "\"msg\":\"m\",\"a\":1,\"c\":[1,{\"d\":\"x,y]}\\\",\"}],\"e\":\"q\\\",}\",\"f\":null,"
	    "\"truncated\":true}\n");
	/* all of them fit: as they are, no "truncated" */
	n = json_envelope(line, sizeof line, "t", "info", 1, "e", NULL, "m", "\"a\":1,\"b\":[2]", false);
	CHECK_STR(line, "{\"ts\":\"t\",\"level\":\"info\",\"pid\":1,\"event\":\"e\",\"session\":null,"
	    "\"msg\":\"m\",\"a\":1,\"b\":[2]}\n");
	/* the record left something out itself: said too */
	n = json_envelope(line, sizeof line, "t", "info", 1, "e", NULL, "m", "\"a\":1", true);
	CHECK_STR(line, "{\"ts\":\"t\",\"level\":\"info\",\"pid\":1,\"event\":\"e\",\"session\":null,"
	    "\"msg\":\"m\",\"a\":1,\"truncated\":true}\n");
	/* every capacity: a whole line or nothing, never over cap */
	for (size_t cap = 256; cap <= sizeof line; cap++) {
		n = json_envelope(line, cap, "t", "info", 1, "summary", "S", "m", members, false);
		if (n == 0 || n >= cap || !jc_log_line(line, n)) {
			CHECK(!"envelope at every capacity");
			fprintf(stderr, "  cap %zu: %zu %s\n", cap, n, line);
			return;
		}
	}
	CHECK(1);
}

/* a list that could fill the record leaves the reserved room for the
 * members after it */
static void test_record_reserve(void)
{
	char text[256], json[300];
	struct log_rec r;

	log_rec_init(&r, text, sizeof text, json, sizeof json);
	log_rec_reserve(&r, 100);
	log_rec_array_begin(&r, "list");
	for (int i = 0; i < 100; i++)
		log_rec_str(&r, NULL, NULL, "element", 0, NULL);
	log_rec_end(&r);
	log_rec_reserve(&r, 0);
	CHECK(r.json_cut);
	CHECK(r.json_len + 100 <= sizeof json);
	log_rec_str(&r, NULL, "result", "accepted", 0, NULL);
	log_rec_uint(&r, NULL, "reply_code", 250, NULL);
	CHECK(strstr(json, ",\"result\":\"accepted\",\"reply_code\":250") != NULL);
	char line[700];
	size_t n = json_envelope(line, sizeof line, "t", "info", 1, "summary", NULL, "m", json, r.json_cut);
	CHECK(jc_log_line(line, n) && strstr(line, ",\"truncated\":true}\n") != NULL);
}

static void test_event_names(void)
{
	static const struct { const char *fmt, *want; } cases[] = {
		{"%s: connect from [%s]:%u to %s%s", "connect_from"},
		{"%s: batv: refused bounce to %s at RCPT: %s", "batv"},
		{"listening on %s%s", "listening_on"},
		{"%s: TLS handshake failed with [%s]:%u: %s", "tls_handshake_failed_with"},
		{"%s: removed forged Authentication-Results (%zu%s bytes)", "removed_forged_authentication_results"},
		{"reload: configuration %s loaded; new sessions use it", "reload"},
		{"%s", "log"},
		{"", "log"},
		{"%s: %s result of filter", "log"},
		{"one two three four five six", "one_two_three_four"},
		{"  Lead   Space", "lead_space"},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[48];
		log_event_name(cases[i].fmt, out, sizeof out);
		CHECK_STR(out, cases[i].want);
	}
	char tiny[4];
	log_event_name("connect from", tiny, sizeof tiny);
	CHECK_STR(tiny, "con");
}

int main(void)
{
	test_escape_cases();
	test_escape_small_buffers();
	test_escape_all_pairs();
	test_record_hostile();
	test_record_every_capacity();
	test_record_text_only();
	test_checks_names();
	test_envelope();
	test_envelope_drops_members();
	test_record_reserve();
	test_event_names();
	return check_finish("test_log_json");
}

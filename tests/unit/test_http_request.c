/*
 * test_http_request - the metrics endpoint's request head parser with
 * well-formed and hostile input: every method, target and version form it
 * must refuse, control bytes, CR inside lines, heads at and over the size
 * limit, and a valid head split at every byte (INCOMPLETE until the last).
 * Inputs live at the end of a guarded page: a read past them faults.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS for guarded_copy */
#include "proxy/http_request.h"
#include "tests/unit/check.h"

static enum http_parse parse_n(const char *in, size_t len, size_t max, struct http_request *r)
{
	char *g = guarded_copy(in, len);
	enum http_parse st = http_request_parse(g, len, max, r);
	guarded_free(g, len);
	return st;
}

static enum http_parse parse(const char *in, struct http_request *r)
{
	return parse_n(in, strlen(in), 4096, r);
}

struct bad_case {
	const char *in;
	const char *note;
};

static const struct bad_case bad[] = {
	{ "GET /metrics HTTP/1.1\r\nHost\r\n\r\n", "field without a colon" },
	{ "GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", "blank before the colon (RFC 9112 5.1)" },
	{ "GET /metrics HTTP/1.1\r\n folded\r\n\r\n", "obsolete line folding" },
	{ ": x\r\n", "request line is a field" },
	{ "GET /metrics HTTP/2.0\r\n\r\n", "HTTP/2.0 in a request line" },
	{ "GET /metrics HTTP/1.10\r\n\r\n", "version with a third digit" },
	{ "GET /metrics http/1.1\r\n\r\n", "lower-case version" },
	{ "GET /metrics\r\n\r\n", "HTTP/0.9 (no version)" },
	{ "GET  /metrics HTTP/1.1\r\n\r\n", "two spaces after the method" },
	{ "GET /metrics  HTTP/1.1\r\n\r\n", "two spaces before the version" },
	{ "GET http://x/metrics HTTP/1.1\r\n\r\n", "absolute-form target" },
	{ "GET * HTTP/1.1\r\n\r\n", "asterisk-form target" },
	{ "GET metrics HTTP/1.1\r\n\r\n", "target without a slash" },
	{ " GET /metrics HTTP/1.1\r\n\r\n", "blank before the method" },
	{ "\r\nGET /metrics HTTP/1.1\r\n\r\n", "empty line before the request line" },
	{ "G(T /metrics HTTP/1.1\r\n\r\n", "non-token byte in the method" },
	{ "GETGETGETGETGETGET /metrics HTTP/1.1\r\n\r\n", "method over 16 bytes" },
	{ "GET /met\x01rics HTTP/1.1\r\n\r\n", "control byte in the target" },
	{ "GET /met\x80rics HTTP/1.1\r\n\r\n", "8-bit byte in the target" },
	{ "GET /metrics HTTP/1.1\r\nX: a\x7f\r\n\r\n", "DEL in a field" },
	{ "GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n", "CR inside a field" },
	{ "GET /metrics HTTP/1.1\r\r\n\r\n", "CR CR LF" },
	{ "GET /metrics HTTP/1.1\r\n\r\r\n", "final line CR CR LF" },
	{ "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "a TLS ClientHello (no line end)" },
};

int main(void)
{
	struct http_request r;
	char big[8192];

	/* well-formed */
	CHECK_INT(parse("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9125\r\nAccept: */*\r\n\r\n", &r),
	    HTTP_COMPLETE);
	CHECK_INT(r.method, HTTP_GET);
	CHECK_STR(r.path, "/metrics");
	CHECK_INT(r.head_len, strlen("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9125\r\nAccept: */*\r\n\r\n"));
	CHECK_INT(parse("HEAD /health HTTP/1.0\n\n", &r), HTTP_COMPLETE);
	CHECK_INT(r.method, HTTP_HEAD);
	CHECK_STR(r.path, "/health");
	CHECK_INT(r.head_len, 23);
	CHECK_INT(parse("GET /metrics?name[]=x&y=%20 HTTP/1.1\r\n\r\n", &r), HTTP_COMPLETE);
	CHECK_STR(r.path, "/metrics");
	CHECK_INT(parse("GET /health#frag HTTP/1.1\r\n\r\n", &r), HTTP_COMPLETE);
	CHECK_STR(r.path, "/health");
	CHECK_INT(parse("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", &r), HTTP_COMPLETE);
	CHECK_INT(r.method, HTTP_OTHER);
	CHECK_INT(parse("get /metrics HTTP/1.1\r\n\r\n", &r), HTTP_COMPLETE);
	CHECK_INT(r.method, HTTP_OTHER);   /* methods are case-sensitive */
	CHECK_INT(parse("GET /metrics HTTP/1.1\r\nX-Tab:\ta\tb\r\nEmpty:\r\n\r\n", &r), HTTP_COMPLETE);
	/* bytes after the head (a body, a pipelined request) are not looked at */
	CHECK_INT(parse("GET / HTTP/1.1\r\n\r\n\x01\x02garbage", &r), HTTP_COMPLETE);
	CHECK_INT(r.head_len, 18);

	/* incomplete, so far clean */
	CHECK_INT(parse("", &r), HTTP_INCOMPLETE);
	CHECK_INT(parse("GET /metrics HTTP/1.1\r\n", &r), HTTP_INCOMPLETE);
	CHECK_INT(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r", &r), HTTP_INCOMPLETE);
	CHECK_INT(parse("GE", &r), HTTP_INCOMPLETE);

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum http_parse st = parse(bad[i].in, &r);
		if (st != HTTP_BAD)
			fprintf(stderr, "not refused: %s\n", bad[i].note);
		CHECK_INT(st, HTTP_BAD);
	}
	/* NUL inside the bytes (not as a C string) */
	CHECK_INT(parse_n("GET /a\0b HTTP/1.1\r\n\r\n", 21, 4096, &r), HTTP_BAD);
	CHECK_INT(parse_n("GET /metrics HTTP/1.1\r\nX: \0\r\n\r\n", 31, 4096, &r), HTTP_BAD);
	/* a target longer than the path buffer */
	memset(big, 'a', sizeof big);
	memcpy(big, "GET /", 5);
	memcpy(big + 5 + HTTP_PATH_MAX, " HTTP/1.1\r\n\r\n", 13);
	CHECK_INT(parse_n(big, 5 + HTTP_PATH_MAX + 13, 4096, &r), HTTP_BAD);
	memcpy(big + 5 + HTTP_PATH_MAX - 2, " HTTP/1.1\r\n\r\n", 13);
	CHECK_INT(parse_n(big, 5 + HTTP_PATH_MAX - 2 + 13, 4096, &r), HTTP_COMPLETE);
	CHECK_INT(strlen(r.path), HTTP_PATH_MAX - 1);

	/* size limit: a head that ends exactly at max passes; one byte more
	 * does not; a never-ending field is TOO_LARGE at max, never read past */
	{
		const char *pre = "GET /metrics HTTP/1.1\r\nX: ";
		size_t max = 200, pl = strlen(pre);
		memcpy(big, pre, pl);
		memset(big + pl, 'v', max - pl - 4);
		memcpy(big + max - 4, "\r\n\r\n", 4);
		CHECK_INT(parse_n(big, max, max, &r), HTTP_COMPLETE);
		CHECK_INT(r.head_len, max);
		memset(big + pl, 'v', max - pl - 3);
		memcpy(big + max - 3, "\r\n\r\n", 4);
		CHECK_INT(parse_n(big, max + 1, max, &r), HTTP_TOO_LARGE);
		CHECK_INT(parse_n(big, max, max, &r), HTTP_TOO_LARGE);
		CHECK_INT(parse_n(big, max - 1, max, &r), HTTP_INCOMPLETE);
		memset(big + pl, 'v', sizeof big - pl);
		CHECK_INT(parse_n(big, sizeof big, 4096, &r), HTTP_TOO_LARGE);
		/* many short fields: the same */
		memcpy(big, "GET / HTTP/1.1\r\n", 16);
		for (size_t i = 16; i + 6 <= sizeof big; i += 6)
			memcpy(big + i, "A: b\r\n", 6);
		CHECK_INT(parse_n(big, sizeof big, 4096, &r), HTTP_TOO_LARGE);
	}

	/* a valid head split at every byte: INCOMPLETE up to the last byte */
	{
		const char *head = "GET /health?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: Prometheus/2.45\r\n\r\n";
		size_t n = strlen(head);
		int early = 0;
		for (size_t i = 0; i < n; i++)
			if (parse_n(head, i, 4096, &r) != HTTP_INCOMPLETE)
				early++;
		CHECK_INT(early, 0);
		CHECK_INT(parse_n(head, n, 4096, &r), HTTP_COMPLETE);
		CHECK_STR(r.path, "/health");
	}
	return check_finish("test_http_request");
}

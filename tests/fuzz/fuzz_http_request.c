/*
 * fuzz_http_request - http_request_parse() over arbitrary bytes. The first
 * two bytes pick max (1..65536). Invariants: a known result; a complete
 * head lies within the input and max, its path starts with '/' and holds
 * no '?' or control byte; the verdict on a prefix is kept by the whole
 * input (COMPLETE with the same head, BAD stays BAD, TOO_LARGE only at
 * max); the head alone parses the same, one byte less is INCOMPLETE.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/http_request.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request r, r2;
	enum http_parse st, st2;
	const char *buf;
	size_t max, len, cut;

	if (size < 2)
		return 0;
	max = 1 + ((size_t)data[0] << 8 | data[1]);
	buf = (const char *)data + 2;
	len = size - 2;
	st = http_request_parse(buf, len, max, &r);
	REQUIRE(st == HTTP_INCOMPLETE || st == HTTP_COMPLETE || st == HTTP_BAD || st == HTTP_TOO_LARGE);
	if (st == HTTP_TOO_LARGE)
		REQUIRE(len >= max);
	if (st == HTTP_INCOMPLETE)
		REQUIRE(len < max);
	if (st == HTTP_COMPLETE) {
		size_t pl = strnlen(r.path, sizeof r.path);
		REQUIRE(r.head_len > 0 && r.head_len <= len && r.head_len <= max);
		REQUIRE(buf[r.head_len - 1] == '\n');
		REQUIRE(pl < sizeof r.path && r.path[0] == '/');
		for (size_t i = 0; i < pl; i++)
			REQUIRE((unsigned char)r.path[i] > 0x20 && (unsigned char)r.path[i] < 0x7f &&
			    r.path[i] != '?' && r.path[i] != '#');
		REQUIRE(r.method == HTTP_GET || r.method == HTTP_HEAD || r.method == HTTP_OTHER);
		/* the head alone: the same; one byte less: not yet */
		st2 = http_request_parse(buf, r.head_len, max, &r2);
		REQUIRE(st2 == HTTP_COMPLETE && r2.head_len == r.head_len && strcmp(r2.path, r.path) == 0 &&
		    r2.method == r.method);
		st2 = http_request_parse(buf, r.head_len - 1, max, &r2);
		REQUIRE(st2 == HTTP_INCOMPLETE);
	}
	/* a prefix's verdict holds for the whole input */
	cut = len / 2;
	if (cut < max) {
		st2 = http_request_parse(buf, cut, max, &r2);
		if (st2 == HTTP_COMPLETE)
			REQUIRE(st == HTTP_COMPLETE && r2.head_len == r.head_len);
		if (st2 == HTTP_BAD)
			REQUIRE(st == HTTP_BAD);
	}
	/* nothing past max is looked at */
	if (len > max) {
		st2 = http_request_parse(buf, max, max, &r2);
		REQUIRE(st2 == st);
	}
	return 0;
}

/*
 * fuzz_smtp_reply - backend reply parsing and the reply formatter.
 * Input: 2 bytes of code, 1 byte of cap, then "esc\0text". Invariants:
 * parsed slices stay in the line and esc classes match; the formatted
 * reply fits cap, ends in CRLF, every line starts with a 3-digit code in
 * 200..599 and a separator, is at most SMTP_REPLY_LINE_MAX bytes, has no
 * bare CR/LF nor control byte, and carries an enhanced code of the reply's
 * class unless esc was "" (no code asked for) or the code is 3xx.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_line.h"
#include "smtp/smtp_reply.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static void parse_all(const char *buf, size_t size)
{
	struct smtp_line_reader lr = { 0 };
	struct smtp_reply r = { 0 };
	size_t off = 0;

	while (off < size) {
		struct smtp_line l;
		struct smtp_reply_line rl;
		size_t n = smtp_line_next(&lr, buf + off, size - off, 1000, &l);
		if (n == 0)
			break;
		off += n;
		if (smtp_reply_line_parse(l.data, l.len, &rl) != 0)
			continue;
		REQUIRE(rl.code >= 200 && rl.code <= 599);
		REQUIRE(rl.text >= l.data && rl.text + rl.text_len <= l.data + l.len);
		if (rl.esc[0])
			REQUIRE(rl.esc[0] - '0' == rl.code / 100 &&
			    smtp_esc_valid(rl.esc, strlen(rl.esc)));
		int ret = smtp_reply_add(&r, &rl);
		REQUIRE(r.text_len < SMTP_REPLY_TEXT_MAX && r.text[r.text_len] == '\0');
		if (ret != 0)
			memset(&r, 0, sizeof(r));
	}
}

/* check_reply - the formatted reply out[0..n) is well-formed. */
static void check_reply(const char *out, size_t n, int code, bool want_esc)
{
	size_t i = 0;

	REQUIRE(n >= 5 && out[n - 2] == '\r' && out[n - 1] == '\n');
	while (i < n) {
		size_t end = i;
		while (end < n && out[end] != '\r')
			end++;
		REQUIRE(end + 1 < n && out[end + 1] == '\n');
		REQUIRE(end - i + 2 <= SMTP_REPLY_LINE_MAX && end - i >= 3);
		for (size_t k = 0; k < 3; k++)
			REQUIRE(out[i + k] >= '0' && out[i + k] <= '9');
		int c = (out[i] - '0') * 100 + (out[i + 1] - '0') * 10 + (out[i + 2] - '0');
		REQUIRE(c >= 200 && c <= 599);
		REQUIRE(code < 200 || code > 599 ? c == 451 : c == code);
		bool last = end + 2 == n;
		if (end - i > 3)
			REQUIRE(out[i + 3] == (last ? ' ' : '-'));
		else
			REQUIRE(last);
		for (size_t k = i; k < end; k++)
			REQUIRE((unsigned char)out[k] >= 0x20 && (unsigned char)out[k] < 0x7f);
		/* an enhanced code of the class unless "" asked for none (text may
		 * look like one, so nothing can be said then) */
		if (c / 100 != 3 && want_esc)
			REQUIRE(end - i >= 9 && out[i + 4] == (char)('0' + c / 100) && out[i + 5] == '.');
		i = end + 2;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char esc[64], *text, *out;
	size_t elen = 0, cap;
	int code;

	parse_all((const char *)data, size);
	if (size < 3)
		return 0;
	code = (int)((data[0] << 8 | data[1]) % 700) - 50;
	cap = data[2] % 64 == 0 ? 1 << 16 : data[2];
	data += 3;
	size -= 3;
	while (elen < size && elen < sizeof(esc) - 1 && data[elen] != 0)
		elen++;
	memcpy(esc, data, elen);
	esc[elen] = '\0';
	/* the text follows the NUL that ends esc; it may hold more NULs, the
	 * formatter stops at the first */
	size_t t0 = elen < size ? elen + 1 : size;
	text = malloc(size - t0 + 1);
	memcpy(text, data + t0, size - t0);
	text[size - t0] = '\0';
	out = malloc(cap);
	long n = smtp_reply_format(out, cap, code, elen & 1 ? NULL : esc, text);
	if (n >= 0) {
		REQUIRE((size_t)n < cap && out[n] == '\0');
		/* NULL esc: the default; "": none, except for a replaced bad code */
		check_reply(out, (size_t)n, code, (elen & 1) || elen > 0 || code < 200 || code > 599);
	}
	free(out);
	free(text);
	return 0;
}

/*
 * fuzz_smtp_line - smtp_line_next() over arbitrary bytes. The first byte
 * picks max (2..257). Invariants: progress, consumed <= len, segments within
 * max, exactly one of CRLF / BARE_LF / PARTIAL, no LF in content, flags
 * describe the content, CONTINUED exactly after PARTIAL.
 */
#include <stdint.h>
#include <stdlib.h>

#include "smtp/smtp_line.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_line_reader r = { 0 };
	const char *buf;
	size_t max, off = 0;
	int prev_partial = 0;

	if (size < 1)
		return 0;
	max = 2 + data[0];
	buf = (const char *)data + 1;
	size--;
	while (off < size) {
		struct smtp_line l;
		size_t n = smtp_line_next(&r, buf + off, size - off, max, &l);
		unsigned ends;
		if (n == 0) {
			REQUIRE(size - off < max); /* only "need more" below max */
			break;
		}
		REQUIRE(n <= size - off && n <= max);
		REQUIRE(l.data == buf + off && l.len <= n && l.len <= max);
		ends = l.flags & (SMTP_LINE_CRLF | SMTP_LINE_BARE_LF | SMTP_LINE_PARTIAL);
		REQUIRE(ends == SMTP_LINE_CRLF || ends == SMTP_LINE_BARE_LF ||
		    ends == SMTP_LINE_PARTIAL);
		REQUIRE(n == l.len + (ends == SMTP_LINE_CRLF ? 2 : ends == SMTP_LINE_BARE_LF ? 1 : 0));
		REQUIRE(!!(l.flags & SMTP_LINE_CONTINUED) == prev_partial);
		int cr = 0, nul = 0;
		for (size_t i = 0; i < l.len; i++) {
			REQUIRE(l.data[i] != '\n');
			cr |= l.data[i] == '\r';
			nul |= l.data[i] == '\0';
		}
		REQUIRE(!!(l.flags & SMTP_LINE_BARE_CR) == cr);
		REQUIRE(!!(l.flags & SMTP_LINE_NUL) == nul);
		prev_partial = ends == SMTP_LINE_PARTIAL;
		off += n;
	}
	return 0;
}

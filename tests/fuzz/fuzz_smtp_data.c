/*
 * fuzz_smtp_data - the DATA scanner and the one content writer (smtp_wire)
 * over arbitrary bytes, as the proxy chains them. The first byte picks the
 * policy and max; the second, when header pieces are dropped (as a check
 * removing a field would). Invariants: END only for
 * "." CRLF starting a line; the output has no bare CR or LF and no "." line
 * (so nothing the backend reads can end the message early: smuggling); and
 * re-scanning the output (plus ".\r\n") gives the same bytes and ends
 * exactly at its end (the wire form is canonical).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"
#include "smtp/smtp_wire.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

struct sink {
	char *out;
	size_t len;
};

static int emit(void *ctx, const char *data, size_t len)
{
	struct sink *k = ctx;
	memcpy(k->out + k->len, data, len);
	k->len += len;
	return 0;
}

/* scan - run line + data + wire over buf; returns output length, *end_at
 * the offset after END (0 if none), *bad whether BAD_NEWLINE occurred.
 * Header segments whose index has its bit set in drop are not written. */
static size_t scan(const char *buf, size_t size, size_t max,
    enum smtp_newline_policy pol, char *out, size_t *end_at, int *bad, unsigned drop)
{
	struct smtp_line_reader lr = { 0 };
	struct smtp_data d = { 0 };
	struct smtp_wire w;
	struct sink k = { out, 0 };
	size_t off = 0, o = 0;
	unsigned seg = 0;
	char *c = malloc(size + 1);   /* a segment's content is never longer */

	smtp_wire_init(&w, emit, &k);
	*end_at = 0;
	*bad = 0;
	while (off < size) {
		struct smtp_line l;
		size_t n = smtp_line_next(&lr, buf + off, size - off, max, &l), cl = 0;
		bool eol = false;
		if (n == 0)
			break;
		off += n;
		enum smtp_data_kind kind = smtp_data_line(&d, &l, pol, c, &cl, &eol);
		REQUIRE(cl <= l.len);
		if (kind == SMTP_DATA_HEADER || kind == SMTP_DATA_HEADER_CONT) {
			if (seg < 32 && (drop >> seg) & 1)
				kind = SMTP_DATA_END + 100; /* dropped: write nothing */
			seg++;
		}
		if (kind == SMTP_DATA_END) {
			REQUIRE(cl == 0 && l.len == 1 && l.data[0] == '.' &&
			    (l.flags & SMTP_LINE_CRLF) && !(l.flags & SMTP_LINE_CONTINUED));
			REQUIRE(l.data == buf || l.data[-1] == '\n');
			REQUIRE(l.data < buf + 2 || l.data[-2] == '\r');
			*end_at = off;
			break;
		}
		if (kind == SMTP_DATA_BAD_NEWLINE) {
			REQUIRE(pol == SMTP_NEWLINE_REJECT && cl == 0);
			*bad = 1;
		} else if (kind != SMTP_DATA_END + 100) {
			smtp_wire_text(&w, c, cl);
			if (eol)
				smtp_wire_eol(&w);
		}
	}
	free(c);
	o = k.len;
	REQUIRE(w.error == 0 && w.bytes == o);
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum smtp_newline_policy pol;
	size_t max, o, o2, end_at, end2;
	int bad, bad2;
	unsigned drop;
	char *out, *again, *out2;

	if (size < 2)
		return 0;
	pol = data[0] & 1 ? SMTP_NEWLINE_NORMALISE : SMTP_NEWLINE_REJECT;
	max = data[0] & 2 ? 1000 : 2 + (data[0] >> 2);
	drop = data[1] * 0x01010101u;   /* a pattern of dropped header pieces */
	data += 2;
	size -= 2;
	out = malloc(size * 2 + 8);
	o = scan((const char *)data, size, max, pol, out, &end_at, &bad, drop);
	REQUIRE(o <= size * 2 + 3);

	/* The wire form: CRLF only, and no line that is exactly "." */
	for (size_t i = 0; i < o; i++) {
		if (out[i] == '\r')
			REQUIRE(i + 1 < o && out[i + 1] == '\n');
		if (out[i] == '\n')
			REQUIRE(i > 0 && out[i - 1] == '\r');
		if (out[i] == '.' && (i == 0 || out[i - 1] == '\n'))
			REQUIRE(!(i + 1 < o && out[i + 1] == '\r'));
	}

	/* Canonical: scanning the output again changes nothing. An unfinished
	 * last line (input ended inside it) is closed with CRLF first. */
	if (!bad) {
		size_t open = o > 0 && out[o - 1] != '\n' ? 2 : 0, alen = o + open + 3;
		again = malloc(alen);
		memcpy(again, out, o);
		memcpy(again + o, &"\r\n.\r\n"[open ? 0 : 2], open + 3);
		out2 = malloc(alen * 2 + 8);
		o2 = scan(again, alen, alen + 8, SMTP_NEWLINE_REJECT, out2, &end2, &bad2, 0);
		REQUIRE(!bad2 && end2 == alen && o2 == o + open && memcmp(out, out2, o) == 0);
		free(again);
		free(out2);
	}
	free(out);
	return 0;
}

/*
 * fuzz_smtp_fields - the header/body feeding path as the proxy chains it:
 * smtp_line -> smtp_data -> smtp_fields (whole fields, judged, some
 * dropped, long ones cut) -> smtp_wire. The first byte picks the newline
 * policy and the segment size, the second the field limit and which
 * fields are dropped. Invariants on what the backend would receive: CRLF
 * only, no line that is exactly "." (no end of data but the writer's
 * own), and it is canonical: scanning it again and writing it out again
 * gives the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"
#include "smtp/smtp_fields.h"
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

struct judge_ctx {
	unsigned pattern;
	unsigned n;
	bool keep_all;
};

/* judge - drops by pattern, and every Authentication-Results field; a
 * judged field is never empty (a cut one may end inside its name). */
static bool judge(void *ctx, const char *field, size_t len, bool cut)
{
	struct judge_ctx *j = ctx;
	(void)cut;
	REQUIRE(len > 0 && (cut || smtp_header_name_len(field, len) > 0));
	if (j->keep_all)
		return true;
	if (len >= 22 && memcmp(field, "Authentication-Results", 22) == 0)
		return false;
	return !((j->pattern >> (j->n++ % 8)) & 1);
}

static size_t run(const char *buf, size_t size, size_t seg, size_t max, unsigned pattern,
    bool keep_all, enum smtp_newline_policy pol, char *out, int *bad)
{
	struct smtp_line_reader lr = { 0 };
	struct smtp_data d = { 0 };
	struct smtp_wire w;
	struct smtp_fields f = { 0 };
	struct judge_ctx j = { pattern, 0, keep_all };
	struct sink k = { out, 0 };
	char *c = malloc(size + 1);
	size_t off = 0;

	*bad = 0;
	smtp_wire_init(&w, emit, &k);
	smtp_fields_init(&f, max, &w, judge, &j);
	while (off < size) {
		struct smtp_line l;
		size_t cl = 0, n = smtp_line_next(&lr, buf + off, size - off, seg, &l);
		bool eol = false;
		if (n == 0)
			break;
		off += n;
		enum smtp_data_kind kind = smtp_data_line(&d, &l, pol, c, &cl, &eol);
		if (kind == SMTP_DATA_END)
			break;
		if (kind == SMTP_DATA_BAD_NEWLINE) {
			*bad = 1;
			continue;
		}
		if (kind == SMTP_DATA_HEADER) {
			if (!(l.flags & SMTP_LINE_CONTINUED))
				smtp_fields_start(&f);
			REQUIRE(smtp_fields_add(&f, c, cl, eol));
			continue;
		}
		if (kind == SMTP_DATA_HEADER_CONT && smtp_fields_add(&f, c, cl, eol))
			continue;
		smtp_fields_finish(&f);
		smtp_wire_text(&w, c, cl);
		if (eol)
			smtp_wire_eol(&w);
	}
	smtp_fields_finish(&f);
	smtp_fields_free(&f);
	free(c);
	REQUIRE(w.error == 0 && w.bytes == k.len);
	return k.len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum smtp_newline_policy pol;
	size_t seg, max, o, o2;
	unsigned pattern;
	int bad, bad2;
	char *out, *out2, *again;

	if (size < 2)
		return 0;
	pol = data[0] & 1 ? SMTP_NEWLINE_NORMALISE : SMTP_NEWLINE_REJECT;
	seg = data[0] & 2 ? 1000 : 2 + (data[0] >> 2);
	max = 8 + (data[1] & 0x3f) * 4;        /* small: the cut path runs */
	pattern = data[1] >> 6 ? data[1] : 0;
	data += 2;
	size -= 2;
	/* each input byte gives at most one output byte plus a CRLF per line
	 * and a stuffing dot, and a field written again after a cut */
	out = malloc(size * 4 + 16);
	o = run((const char *)data, size, seg, max, pattern, false, pol, out, &bad);

	for (size_t i = 0; i < o; i++) {
		if (out[i] == '\r')
			REQUIRE(i + 1 < o && out[i + 1] == '\n');
		if (out[i] == '\n')
			REQUIRE(i > 0 && out[i - 1] == '\r');
		if (out[i] == '.' && (i == 0 || out[i - 1] == '\n'))
			REQUIRE(!(i + 1 < o && out[i + 1] == '\r'));
		REQUIRE(out[i] != '\0');
	}
	/* canonical: through the same chain again, keeping every field and
	 * with room for all of them, nothing changes */
	if (!bad) {
		size_t open = o > 0 && out[o - 1] != '\n' ? 2 : 0, alen = o + open + 3;
		again = malloc(alen);
		memcpy(again, out, o);
		memcpy(again + o, &"\r\n.\r\n"[open ? 0 : 2], open + 3);
		out2 = malloc(alen * 4 + 16);
		o2 = run(again, alen, alen + 8, alen + 8, 0, true, SMTP_NEWLINE_REJECT, out2, &bad2);
		REQUIRE(!bad2 && o2 == o + open && memcmp(out, out2, o) == 0);
		free(again);
		free(out2);
	}
	free(out);
	return 0;
}

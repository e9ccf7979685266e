/*
 * test_smtp_line - smtp_line_next() framing: terminators, bare CR/LF, NUL,
 * over-long lines, CR at the edge of the buffer or of max, and a stream
 * split at every byte position. Inputs live at the end of a guarded page.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS for guarded_copy */
#include "smtp/smtp_line.h"
#include "tests/unit/check.h"

enum { CR = SMTP_LINE_CRLF, LF = SMTP_LINE_BARE_LF, PART = SMTP_LINE_PARTIAL,
	BCR = SMTP_LINE_BARE_CR, NUL = SMTP_LINE_NUL, CONT = SMTP_LINE_CONTINUED };

struct line_case {
	const char *in;
	size_t in_len;  /* 0: strlen(in) */
	size_t max;
	size_t consumed;
	const char *content;
	unsigned flags;
	const char *note;
};

static const struct line_case cases[] = {
	{ "abc\r\n", 0, 100, 5, "abc", CR, "plain CRLF line" },
	{ "\r\n", 0, 100, 2, "", CR, "empty line" },
	{ "abc\n", 0, 100, 4, "abc", LF, "bare LF terminator" },
	{ "\n", 0, 100, 1, "", LF, "lone LF" },
	{ "abc\r\r\n", 0, 100, 6, "abc\r", CR | BCR, "CR CR LF: content keeps one bare CR" },
	{ "a\rb\r\n", 0, 100, 5, "a\rb", CR | BCR, "bare CR inside" },
	{ "a\rb\n", 0, 100, 4, "a\rb", LF | BCR, "bare CR and bare LF" },
	{ "abc", 0, 100, 0, "", 0, "no terminator yet" },
	{ "abc\r", 0, 100, 0, "", 0, "final CR not yet judged" },
	{ "", 0, 100, 0, "", 0, "empty buffer" },
	{ "a\0b\r\n", 5, 100, 5, "a\0b", CR | NUL, "NUL reported" },
	{ "abcd", 0, 4, 4, "abcd", PART, "exactly max bytes, no LF: PARTIAL" },
	{ "abcdef", 0, 4, 4, "abcd", PART, "longer than max" },
	{ "abc\r", 0, 4, 3, "abc", PART, "CR as max-th byte is kept back" },
	{ "abc\rX", 0, 4, 3, "abc", PART, "same with more data" },
	{ "ab\r\n", 0, 4, 4, "ab", CR, "CRLF ending exactly at max" },
	{ "abc\n", 0, 4, 4, "abc", LF, "LF as max-th byte" },
	{ "abc\r\n", 0, 4, 3, "abc", PART, "CRLF straddling max" },
	{ "\r\r\r\r", 0, 4, 3, "\r\r\r", PART | BCR, "all CRs" },
	{ "x\r", 0, 2, 1, "x", PART, "max 2, CR kept back" },
	{ "\r\n", 0, 2, 2, "", CR, "max 2, empty line" },
	{ "ab\nc\n", 0, 100, 3, "ab", LF, "only the first line" },
	{ "\x80\xff\r\n", 0, 100, 4, "\x80\xff", CR, "8-bit is content" },
};

/* run_cases - the table above, each input in a guarded buffer. */
static void run_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct line_case *t = &cases[i];
		size_t len = t->in_len ? t->in_len : strlen(t->in);
		char *buf = guarded_copy(t->in, len);
		struct smtp_line_reader r = { 0 };
		struct smtp_line line;
		size_t n = smtp_line_next(&r, buf, len, t->max, &line);
		size_t clen = t->in_len && t->consumed ? len - 2 : strlen(t->content);
		if (n != t->consumed)
			fprintf(stderr, "case: %s\n", t->note);
		CHECK_INT(n, t->consumed);
		if (n > 0) {
			CHECK_INT(line.flags, t->flags);
			CHECK_INT(line.len, clen);
			CHECK(line.data == buf);
			CHECK(memcmp(line.data, t->content, clen) == 0);
		}
		guarded_free(buf, len);
	}
}

/* test_continued - CONTINUED marks segments after a PARTIAL one. */
static void test_continued(void)
{
	const char *in = "abcdefghij\r\nxy\r\n";
	size_t len = strlen(in);
	char *buf = guarded_copy(in, len);
	struct smtp_line_reader r = { 0 };
	struct smtp_line l;
	size_t off = 0, n;

	n = smtp_line_next(&r, buf + off, len - off, 4, &l);
	CHECK_INT(n, 4); CHECK_INT(l.flags, PART); off += n;
	n = smtp_line_next(&r, buf + off, len - off, 4, &l);
	CHECK_INT(n, 4); CHECK_INT(l.flags, PART | CONT); off += n;
	n = smtp_line_next(&r, buf + off, len - off, 4, &l);
	CHECK_INT(n, 4); CHECK_INT(l.flags, CR | CONT); CHECK_MEM(l.data, l.len, "ij"); off += n;
	n = smtp_line_next(&r, buf + off, len - off, 4, &l);
	CHECK_INT(n, 4); CHECK_INT(l.flags, CR); CHECK_MEM(l.data, l.len, "xy"); off += n;
	CHECK_INT(off, len);

	/* reset forgets the pending segment */
	r.continuing = 1;
	smtp_line_reset(&r);
	n = smtp_line_next(&r, buf + 12, 4, 4, &l);
	CHECK_INT(l.flags, CR);
	guarded_free(buf, len);
}

/* test_split - a stream fed to a caller buffer that grows one chunk at a
 * time gives the same lines for every split position. */
static void test_split(void)
{
	const char in[] = "EHLO x\r\nA\rB\nlong-line-here\r\n\r\n.\r\n\0z\r\nend\r";
	size_t len = sizeof(in) - 1;
	char ref[512], got[512];
	size_t ref_len = 0;

	for (size_t split = 0; split <= len; split++) {
		struct smtp_line_reader r = { 0 };
		size_t off = 0, avail, glen = 0;
		char *buf = guarded_copy(in, len);
		for (int phase = 0; phase < 2; phase++) {
			avail = phase == 0 ? split : len;
			for (;;) {
				struct smtp_line l;
				size_t n = smtp_line_next(&r, buf + off, avail - off, 8, &l);
				if (n == 0)
					break;
				CHECK(n <= avail - off);
				glen += (size_t)snprintf(got + glen, sizeof(got) - glen, "[%u:", l.flags);
				memcpy(got + glen, l.data, l.len);
				glen += l.len;
				got[glen++] = ']';
				off += n;
			}
		}
		if (split == 0) {
			memcpy(ref, got, glen);
			ref_len = glen;
		}
		CHECK_INT(glen, ref_len);
		CHECK(memcmp(got, ref, glen) == 0);
		CHECK_INT(off, len - 4); /* "end\r": no LF yet, below max */
		guarded_free(buf, len);
	}
}

/* test_hostile - 1 MB of junk without LF never returns more than max and
 * always makes progress. */
static void test_hostile(void)
{
	size_t len = 1 << 20;
	char *junk = malloc(len);
	for (size_t i = 0; i < len; i++)
		junk[i] = (char)(i % 7 == 0 ? '\r' : i % 5 == 0 ? '\0' : 'A' + i % 26);
	char *buf = guarded_copy(junk, len);
	struct smtp_line_reader r = { 0 };
	size_t off = 0, calls = 0, bad = 0;
	while (off < len) {
		struct smtp_line l;
		size_t n = smtp_line_next(&r, buf + off, len - off, 1000, &l);
		if (n == 0)
			break;
		if (l.len > 1000 || n > 1000 || (calls > 0 && !(l.flags & CONT)))
			bad++;
		off += n;
		calls++;
	}
	CHECK_INT(bad, 0);
	CHECK(len - off < 1000);
	guarded_free(buf, len);
	free(junk);
}

int main(void)
{
	run_cases();
	test_continued();
	test_split();
	test_hostile();
	return check_finish("test_smtp_line");
}

/*
 * test_smtp_wire - the one writer of content: dot-stuffing at every line
 * start however the caller cut its pieces, no line break but through
 * smtp_wire_eol, the end always CRLF "." CRLF, sticky errors.
 */
#include "smtp/smtp_wire.h"
#include "tests/unit/check.h"

struct sink {
	char out[4096];
	size_t len;
	int fail_after; /* emit calls allowed; -1: any */
	int calls;
};

static int emit(void *ctx, const char *data, size_t len)
{
	struct sink *k = ctx;
	if (k->fail_after >= 0 && k->calls >= k->fail_after)
		return 7;
	k->calls++;
	if (len > sizeof k->out - k->len)
		return -1;
	memcpy(k->out + k->len, data, len);
	k->len += len;
	return 0;
}

static void start(struct smtp_wire *w, struct sink *k)
{
	memset(k, 0, sizeof *k);
	k->fail_after = -1;
	smtp_wire_init(w, emit, k);
}

static void test_stuffing(void)
{
	struct smtp_wire w;
	struct sink k;

	start(&w, &k);
	smtp_wire_text(&w, ".", 1);
	smtp_wire_eol(&w);
	smtp_wire_text(&w, "x.", 2);
	smtp_wire_text(&w, ".y", 2);    /* mid-line: never stuffed */
	smtp_wire_eol(&w);
	smtp_wire_text(&w, "", 0);      /* an empty piece starts nothing */
	smtp_wire_text(&w, ".z", 2);
	smtp_wire_eol(&w);
	smtp_wire_end(&w);
	CHECK_MEM(k.out, k.len, "..\r\nx..y\r\n..z\r\n.\r\n");
	CHECK_INT(w.bytes, k.len);

	/* A dropped piece (a removed header field) followed by one that
	 * starts a line with a dot: the writer stuffs it, whatever the
	 * caller thought it was continuing. */
	start(&w, &k);
	smtp_wire_text(&w, "Subject: a", 10);
	smtp_wire_eol(&w);
	/* piece "Authentication-Results: ..." dropped here */
	smtp_wire_text(&w, ".", 1);
	smtp_wire_eol(&w);
	smtp_wire_text(&w, "MAIL FROM:<a@b>", 15);
	smtp_wire_eol(&w);
	smtp_wire_end(&w);
	CHECK_MEM(k.out, k.len, "Subject: a\r\n..\r\nMAIL FROM:<a@b>\r\n.\r\n");
}

static void test_line_breaks(void)
{
	struct smtp_wire w;
	struct sink k;

	/* text cannot carry a line break, nor a NUL */
	start(&w, &k);
	smtp_wire_text(&w, "a\r\n.\r\nb\n.\nc\r.\r\0.", 16);
	smtp_wire_end(&w);
	CHECK_MEM(k.out, k.len, "a  .  b . c .  .\r\n.\r\n");
	CHECK_INT(w.replaced, 9);

	/* prepared lines: CRLF and LF end lines, a stray CR does not */
	start(&w, &k);
	smtp_wire_lines(&w, "A: 1\r\n\tfold\n.B: 2\r\nC: x\ry\r\n", 27);
	CHECK_MEM(k.out, k.len, "A: 1\r\n\tfold\r\n..B: 2\r\nC: x y\r\n");
	smtp_wire_lines(&w, "open", 4);
	smtp_wire_end(&w);  /* closes the open line first */
	CHECK_MEM(k.out, k.len, "A: 1\r\n\tfold\r\n..B: 2\r\nC: x y\r\nopen\r\n.\r\n");
}

static void test_errors(void)
{
	struct smtp_wire w;
	struct sink k;

	start(&w, &k);
	k.fail_after = 1;
	CHECK_INT(smtp_wire_text(&w, "abc", 3), 0);
	CHECK_INT(smtp_wire_eol(&w), 7);
	CHECK_INT(smtp_wire_text(&w, "d", 1), 7);   /* sticky */
	CHECK_INT(smtp_wire_end(&w), 7);
	CHECK_MEM(k.out, k.len, "abc");

	/* nothing goes out after the end */
	start(&w, &k);
	smtp_wire_end(&w);
	CHECK(smtp_wire_text(&w, "x", 1) != 0);
	CHECK(smtp_wire_eol(&w) != 0);
	CHECK_MEM(k.out, k.len, ".\r\n");
}

/* A long line given in pieces of every size keeps one stuffed start. */
static void test_pieces(void)
{
	const char line[] = ".abc.def..ghi.";
	size_t n = sizeof line - 1;

	for (size_t cut = 0; cut <= n; cut++) {
		struct smtp_wire w;
		struct sink k;
		start(&w, &k);
		smtp_wire_text(&w, line, cut);
		smtp_wire_text(&w, line + cut, n - cut);
		smtp_wire_eol(&w);
		CHECK_MEM(k.out, k.len, "..abc.def..ghi.\r\n");
	}
}

int main(void)
{
	test_stuffing();
	test_line_breaks();
	test_errors();
	test_pieces();
	return check_finish("test_smtp_wire");
}

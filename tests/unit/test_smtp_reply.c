/*
 * test_smtp_reply - backend reply lines, the multi-line accumulator, and
 * the reply formatter that every reply backstop sends goes through.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS for guarded_copy */
#include "smtp/smtp_reply.h"
#include "tests/unit/check.h"

struct line_case {
	const char *in;
	int ret, code, last;
	const char *esc, *text, *note;
};

static const struct line_case lines[] = {
	{ "250 ok", 0, 250, 1, "", "ok", "simple last line" },
	{ "250-PIPELINING", 0, 250, 0, "", "PIPELINING", "continuation" },
	{ "250", 0, 250, 1, "", "", "code alone is a last line" },
	{ "250-", 0, 250, 0, "", "", "empty continuation" },
	{ "250 ", 0, 250, 1, "", "", "empty text" },
	{ "550 5.1.1 No such user", 0, 550, 1, "5.1.1", "No such user", "enhanced code" },
	{ "550 5.1.1", 0, 550, 1, "5.1.1", "", "enhanced code, no text" },
	{ "451-4.3.0  two spaces", 0, 451, 0, "4.3.0", "two spaces", "spaces after esc skipped" },
	{ "250 2.1.5.x", 0, 250, 1, "", "2.1.5.x", "esc not followed by space" },
	{ "550 4.1.1 x", 0, 550, 1, "", "4.1.1 x", "esc class mismatch is text" },
	{ "354 3.0.0 go", 0, 354, 1, "", "3.0.0 go", "no class 3" },
	{ "250 2.1234.5 x", 0, 250, 1, "", "2.1234.5 x", "subject too long" },
	{ "250 2.123.456 x", 0, 250, 1, "2.123.456", "x", "longest esc" },
	{ "220 mx ESMTP", 0, 220, 1, "", "mx ESMTP", "greeting" },
	{ "199 x", -1, 0, 0, "", "", "code below 200" },
	{ "600 x", -1, 0, 0, "", "", "code above 599" },
	{ "25", -1, 0, 0, "", "", "too short" },
	{ "", -1, 0, 0, "", "", "empty" },
	{ "25x ok", -1, 0, 0, "", "", "non-digit" },
	{ "250_ok", -1, 0, 0, "", "", "bad separator" },
	{ "2500 ok", -1, 0, 0, "", "", "four digits" },
	{ " 250 ok", -1, 0, 0, "", "", "leading space" },
	{ "+OK", -1, 0, 0, "", "", "POP3" },
};

static void run_lines(void)
{
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		const struct line_case *t = &lines[i];
		size_t len = strlen(t->in);
		char *g = guarded_copy(t->in, len);
		struct smtp_reply_line l;
		int before = check_failed;
		CHECK_INT(smtp_reply_line_parse(g, len, &l), t->ret);
		if (t->ret == 0) {
			CHECK_INT(l.code, t->code);
			CHECK_INT(l.last, t->last);
			CHECK_STR(l.esc, t->esc);
			CHECK_MEM(l.text, l.text_len, t->text);
			CHECK(l.text >= g && l.text + l.text_len <= g + len);
		}
		if (check_failed != before)
			fprintf(stderr, "  line case %zu: %s\n", i, t->note);
		guarded_free(g, len);
	}
	struct smtp_reply_line l;
	CHECK_INT(smtp_reply_line_parse("250 a\0b", 7, &l), -1); /* NUL */
}

/* add - parse and add one line; the parse must succeed. */
static int add(struct smtp_reply *r, const char *s)
{
	struct smtp_reply_line l;
	if (smtp_reply_line_parse(s, strlen(s), &l) != 0)
		return -2;
	return smtp_reply_add(r, &l);
}

static void test_accumulate(void)
{
	struct smtp_reply r = { 0 };
	CHECK_INT(add(&r, "250-mx.example"), 0);
	CHECK_INT(add(&r, "250-PIPELINING"), 0);
	CHECK_INT(add(&r, "250 8BITMIME"), 1);
	CHECK(r.complete);
	CHECK_INT(r.nlines, 3);
	CHECK_STR(r.text, "mx.example\nPIPELINING\n8BITMIME");
	CHECK_INT(r.text_len, strlen(r.text));
	CHECK_INT(add(&r, "250 again"), -1); /* complete already */

	struct smtp_reply r2 = { 0 };
	CHECK_INT(add(&r2, "550-5.1.1 first"), 0);
	CHECK_INT(add(&r2, "550 5.1.2 second"), 1);
	CHECK_STR(r2.esc, "5.1.1");
	CHECK_STR(r2.text, "first\nsecond");

	struct smtp_reply r3 = { 0 };
	CHECK_INT(add(&r3, "250-a"), 0);
	CHECK_INT(add(&r3, "550 b"), -1); /* confused server */

	/* truncation, never overflow */
	struct smtp_reply r4 = { 0 };
	char line[600];
	memcpy(line, "250-", 4);
	memset(line + 4, 'x', 500);
	line[504] = '\0';
	int ret = 0;
	for (int i = 0; i < 20; i++)
		ret = add(&r4, line);
	CHECK_INT(ret, 0);
	CHECK_INT(r4.text_len, SMTP_REPLY_TEXT_MAX - 1);
	CHECK_INT(strlen(r4.text), SMTP_REPLY_TEXT_MAX - 1);
	CHECK_INT(r4.nlines, 20);
}

struct fmt_case {
	int code;
	const char *esc, *text, *out, *note;
};

static const struct fmt_case fmts[] = {
	{ 250, "2.1.0", "Ok", "250 2.1.0 Ok\r\n", "simple" },
	{ 250, NULL, "Ok", "250 2.0.0 Ok\r\n", "default esc" },
	{ 250, "", "Ok", "250 Ok\r\n", "empty esc: none (EHLO keywords, greeting)" },
	{ 220, "", "mx ESMTP", "220 mx ESMTP\r\n", "greeting without esc" },
	{ 250, "", "mx\nPIPELINING\n8BITMIME", "250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n", "EHLO reply" },
	{ 199, "", "x", "451 4.3.0 x\r\n", "bad code gets its esc even when none asked" },
	{ 550, "4.1.1", "No", "550 5.0.0 No\r\n", "class mismatch replaced" },
	{ 550, "5.1", "No", "550 5.0.0 No\r\n", "malformed esc replaced" },
	{ 550, "5.1.1x", "No", "550 5.0.0 No\r\n", "junk after esc" },
	{ 354, NULL, "End data with <CR><LF>.<CR><LF>", "354 End data with <CR><LF>.<CR><LF>\r\n", "3xx has no esc" },
	{ 354, "3.0.0", "go", "354 go\r\n", "no class 3" },
	{ 250, "2.0.0", "a\nb\nc", "250-2.0.0 a\r\n250-2.0.0 b\r\n250 2.0.0 c\r\n", "multi-line" },
	{ 250, "2.0.0", "a\n", "250 2.0.0 a\r\n", "trailing newline" },
	{ 250, "2.0.0", "a\n\nb", "250-2.0.0 a\r\n250-2.0.0\r\n250 2.0.0 b\r\n", "empty middle line" },
	{ 250, "2.0.0", "", "250 2.0.0\r\n", "empty text" },
	{ 250, "2.0.0", NULL, "250 2.0.0\r\n", "NULL text" },
	{ 354, NULL, "", "354\r\n", "empty text, no esc" },
	{ 354, NULL, "a\n\nb", "354-a\r\n354-\r\n354 b\r\n", "empty line, no esc" },
	{ 550, "5.7.1", "evil\r\n250 ok", "550-5.7.1 evil?\r\n550 5.7.1 250 ok\r\n", "CR LF cannot inject a reply" },
	{ 550, "5.7.1", "t\tab\x01\x7f\xc3\xa9", "550 5.7.1 t?ab????\r\n", "controls and 8-bit" },
	{ 199, "2.0.0", "x", "451 4.3.0 x\r\n", "bad code becomes 451" },
	{ 600, NULL, "x", "451 4.3.0 x\r\n", "code too big" },
	{ -5, NULL, "x", "451 4.3.0 x\r\n", "negative code" },
};

static void run_formats(void)
{
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		const struct fmt_case *t = &fmts[i];
		char out[4096];
		int before = check_failed;
		long n = smtp_reply_format(out, sizeof(out), t->code, t->esc, t->text);
		CHECK_INT(n, strlen(t->out));
		CHECK_STR(out, t->out);
		if (check_failed != before)
			fprintf(stderr, "  format case %zu: %s\n", i, t->note);
	}
}

/* test_format_limits - long lines are cut to 512 with CRLF; a small cap
 * gives -1 and nothing past cap is written. */
static void test_format_limits(void)
{
	static char text[3000], out[8192];
	memset(text, 'x', 2000);
	text[2000] = '\0';
	long n = smtp_reply_format(out, sizeof(out), 550, "5.7.1", text);
	CHECK_INT(n, SMTP_REPLY_LINE_MAX);
	CHECK(memcmp(out + n - 2, "\r\n", 2) == 0);
	n = smtp_reply_format(out, sizeof(out), 354, NULL, text);
	CHECK_INT(n, SMTP_REPLY_LINE_MAX);

	const char *want = "250 2.0.0 Ok\r\n";
	size_t wl = strlen(want);
	for (size_t cap = 0; cap <= wl + 1; cap++) {
		char buf[64];
		memset(buf, 'Z', sizeof(buf));
		n = smtp_reply_format(buf, cap, 250, "2.0.0", "Ok");
		CHECK_INT(n, cap > wl ? (long)wl : -1);
		CHECK(buf[cap] == 'Z');
	}
	CHECK_STR(smtp_esc_default(250), "2.0.0");
	CHECK_STR(smtp_esc_default(451), "4.0.0");
	CHECK_STR(smtp_esc_default(554), "5.0.0");
	CHECK_STR(smtp_esc_default(354), "");
	CHECK(smtp_esc_valid("5.7.1", 5));
	CHECK(smtp_esc_valid("2.123.456", 9));
	CHECK(!smtp_esc_valid("3.0.0", 5));
	CHECK(!smtp_esc_valid("5.7", 3));
	CHECK(!smtp_esc_valid("5.7.", 4));
	CHECK(!smtp_esc_valid("5..1", 4));
	CHECK(!smtp_esc_valid("5.1234.1", 8));
	CHECK(!smtp_esc_valid("", 0));
	CHECK(!smtp_esc_valid(NULL, 0));
}

int main(void)
{
	run_lines();
	test_accumulate();
	run_formats();
	test_format_limits();
	return check_finish("test_smtp_reply");
}

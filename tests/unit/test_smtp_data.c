/*
 * test_smtp_data - the DATA scanner: end of data, dot (un)stuffing, header
 * classification, both newline policies, every published SMTP smuggling
 * terminator, and a message split at every byte position.
 * Kinds are written as one letter per line: H header, C continuation,
 * E end of header, B body, . end of data, X bad newline. The output is
 * what the backend would get: the scanner's content through smtp_wire.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS for guarded_copy */
#include "smtp/smtp_data.h"
#include "smtp/smtp_line.h"
#include "smtp/smtp_wire.h"
#include "tests/unit/check.h"

#define OUT_MAX 16384

struct run {
	char out[OUT_MAX];
	size_t out_len;
	char kinds[512];
	size_t nkinds;
	size_t end_at; /* bytes consumed up to and including END; 0: none */
	struct smtp_data d;
	struct smtp_wire w;
};

struct sink {
	char *out;
	size_t *len;
	size_t cap;
};

static int sink_emit(void *ctx, const char *data, size_t len)
{
	struct sink *k = ctx;
	if (len > k->cap - *k->len)
		return -1;
	memcpy(k->out + *k->len, data, len);
	*k->len += len;
	return 0;
}

/* feed - one scanned segment through the writer, as the proxy does. */
static void feed(struct smtp_wire *w, enum smtp_data_kind k, const char *c, size_t n, bool eol)
{
	if (k == SMTP_DATA_END || k == SMTP_DATA_BAD_NEWLINE)
		return;
	smtp_wire_text(w, c, n);
	if (eol)
		smtp_wire_eol(w);
}

static char kind_letter(enum smtp_data_kind k)
{
	return "HCEB.X"[k];
}

/* run_data - feed in[0..len) (a guarded copy) through line + data. */
static void run_data(const char *in, size_t len, size_t max,
    enum smtp_newline_policy pol, struct run *r)
{
	char *buf = guarded_copy(in, len);
	struct smtp_line_reader lr = { 0 };
	size_t off = 0;

	struct sink sink;

	memset(r, 0, sizeof(*r));
	sink = (struct sink){ r->out, &r->out_len, OUT_MAX };
	smtp_wire_init(&r->w, sink_emit, &sink);
	for (;;) {
		struct smtp_line l;
		char tmp[2048];
		bool eol = true;
		size_t n = smtp_line_next(&lr, buf + off, len - off, max, &l), olen = 99;
		if (n == 0)
			break;
		off += n;
		enum smtp_data_kind k = smtp_data_line(&r->d, &l, pol, tmp, &olen, &eol);
		CHECK(olen <= l.len);
		if (r->nkinds < sizeof(r->kinds) - 1)
			r->kinds[r->nkinds++] = kind_letter(k);
		feed(&r->w, k, tmp, olen, eol);
		if (k == SMTP_DATA_END) {
			CHECK_INT(olen, 0);
			r->end_at = off;
			break;
		}
	}
	guarded_free(buf, len);
}

struct data_case {
	const char *in;
	size_t in_len; /* 0: strlen */
	enum smtp_newline_policy pol;
	const char *out;
	const char *kinds;
	const char *note;
};

#define REJ SMTP_NEWLINE_REJECT
#define NORM SMTP_NEWLINE_NORMALISE

static const struct data_case cases[] = {
	{ ".\r\n", 0, REJ, "", ".", "empty message: end right after 354" },
	{ "A: b\r\n\r\nhi\r\n.\r\n", 0, REJ, "A: b\r\n\r\nhi\r\n", "HEB.", "simple" },
	{ "A: b\r\n c\r\n\td\r\n\r\nx\r\n.\r\n", 0, REJ, "A: b\r\n c\r\n\td\r\n\r\nx\r\n", "HCCEB.", "folding" },
	{ "hello\r\nA: b\r\n.\r\n", 0, REJ, "hello\r\nA: b\r\n", "BB.", "no header: implicit EOH" },
	{ " x\r\n.\r\n", 0, REJ, " x\r\n", "B.", "fold with no header before is body" },
	{ "A: b\r\nnot a header\r\n.\r\n", 0, REJ, "A: b\r\nnot a header\r\n", "HB.", "header section cut short" },
	{ "Subject : x\r\n.\r\n", 0, REJ, "Subject : x\r\n", "H.", "obsolete space before colon" },
	{ ": x\r\n.\r\n", 0, REJ, ": x\r\n", "B.", "empty field name" },
	{ "\r\n\r\n.\r\n", 0, REJ, "\r\n\r\n", "EB.", "empty header, empty body line" },
	{ "..\r\n.\r\n", 0, REJ, "..\r\n", "B.", "stuffed lone dot stays stuffed" },
	{ ".x\r\n.\r\n", 0, REJ, "x\r\n", "B.", "one dot removed" },
	{ "..x\r\n.\r\n", 0, REJ, "..x\r\n", "B.", "double dot restuffed" },
	{ "...\r\n.\r\n", 0, REJ, "...\r\n", "B.", "three dots" },
	{ "x\r\n.\r\nMAIL FROM:<a@b>\r\n", 0, REJ, "x\r\n", "B.", "stops at the end" },
	{ "A: b\0c\r\n.\r\n", 11, REJ, "A: b c\r\n", "H.", "NUL sent as a space" },
	{ "\0.\r\n.\r\n", 7, REJ, " .\r\n", "B.", "NUL before a dot: no line starts with the dot" },
	{ "A: b\r\n\0Authentication-Results: x\r\nB: c\r\n.\r\n", 43, REJ,
	  "A: b\r\n Authentication-Results: x\r\nB: c\r\n", "HCH.",
	  "NUL at a line start is a fold at the backend, so a fold here" },
	{ "A: b\r\nName\0: v\r\nB: c\r\n.\r\n", 25, REJ, "A: b\r\nName : v\r\nB: c\r\n", "HHH.",
	  "NUL before the colon: a field at the backend, so a field here" },
	{ "A: b\r\nName\r: v\r\nB: c\r\n.\r\n", 0, NORM, "A: b\r\nName : v\r\nB: c\r\n", "HHH.",
	  "bare CR before the colon: a field at the backend, so a field here" },
	{ "\x80\xff\r\n.\r\n", 0, REJ, "\x80\xff\r\n", "B.", "8-bit passed through" },
	{ "a\nb\r\n.\r\n", 0, REJ, "b\r\n", "XB.", "bare LF rejected" },
	{ "a\nb\r\n.\r\n", 0, NORM, "a\r\nb\r\n", "BB.", "bare LF normalised" },
	{ "a\rb\r\n.\r\n", 0, REJ, "", "X.", "bare CR rejected" },
	{ "a\rb\r\n.\r\n", 0, NORM, "a b\r\n", "B.", "bare CR becomes space" },
	{ "A: b\n\n.\r\n", 0, NORM, "A: b\r\n\r\n..\r\n", "HEB", "LF-only lines: dot after bare LF is no end" },
	{ "A: b\n\r\n.\r\n", 0, NORM, "A: b\r\n\r\n", "HE.", "bare LF header, then a real end" },
	{ "A: b\r\n\rc\r\n.\r\n", 0, NORM, "A: b\r\n c\r\n", "HC.", "bare CR fold classified as space" },
	{ "x\r\n.\n.\r\n", 0, NORM, "x\r\n..\r\n..\r\n", "BBB", "dot-LF is content, and so is the dot after it" },
	{ "x\r\n.\r\r\n.\r\n", 0, NORM, "x\r\n \r\n", "BB.", "dot CR CR LF" },
	{ "x\r\n.\r\r\n.\r\n", 0, REJ, "x\r\n", "BX.", "dot CR CR LF rejected" },
};

static void run_cases(void)
{
	static struct run r;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct data_case *t = &cases[i];
		size_t len = t->in_len ? t->in_len : strlen(t->in);
		size_t olen = strlen(t->out);
		int before = check_failed;
		run_data(t->in, len, 1000, t->pol, &r);
		CHECK_INT(r.out_len, olen);
		CHECK(memcmp(r.out, t->out, olen < r.out_len ? olen : r.out_len) == 0);
		r.kinds[r.nkinds] = '\0';
		CHECK_STR(r.kinds, t->kinds);
		if (check_failed != before)
			fprintf(stderr, "  case %zu: %s\n", i, t->note);
	}
}

/* Published end-of-data variants (SEC Consult 2023, Postfix, Exim,
 * Sendmail advisories); none but CRLF.CRLF may end a message. */
static const struct { const char *seq; size_t len; const char *note; } smuggle[] = {
	{ "\n.\n", 0, "<LF>.<LF>" },
	{ "\n.\r\n", 0, "<LF>.<CR><LF>" },
	{ "\r\n.\n", 0, "<CR><LF>.<LF>" },
	{ "\r.\r", 0, "<CR>.<CR>" },
	{ "\r\n.\r", 0, "<CR><LF>.<CR>" },
	{ "\r\n.\r\r\n", 0, "<CR><LF>.<CR><CR><LF>" },
	{ "\r.\r\n", 0, "<CR>.<CR><LF>" },
	{ "\r.\n", 0, "<CR>.<LF>" },
	{ "\n.\r", 0, "<LF>.<CR>" },
	{ "\r\r\n.\r\r\n", 0, "<CR><CR><LF>.<CR><CR><LF>" },
	{ "\r\n\0.\r\n", 6, "<CR><LF><NUL>.<CR><LF>" },
	{ "\r\n.\0\r\n", 6, "<CR><LF>.<NUL><CR><LF>" },
	{ "\r\n .\r\n", 0, "<CR><LF><SP>.<CR><LF>" },
	{ "\r\n..\r\n", 0, "stuffed dot" },
	{ "\r\n.\n\r\n", 0, "<CR><LF>.<LF><CR><LF>" },
	{ "\n\n.\n\n", 0, "<LF><LF>.<LF><LF>" },
	{ "\r\n\n.\r\n", 0, "<CR><LF><LF>.<CR><LF>" },
};

/* wire_clean - no bare CR or LF, and no end-of-data inside out[0..n). */
static bool wire_clean(const char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (out[i] == '\r' && (i + 1 >= n || out[i + 1] != '\n'))
			return false;
		if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
			return false;
		if (out[i] == '.' && (i == 0 || out[i - 1] == '\n') &&
		    i + 1 < n && out[i + 1] == '\r')
			return false; /* a "." line reaching the backend */
	}
	return true;
}

static void test_smuggling(void)
{
	static struct run r;
	const char *head = "From: a@b\r\n\r\nhello";
	const char *tail = "MAIL FROM:<evil@x>\r\nRCPT TO:<v@x>\r\nDATA\r\nspoof\r\n.\r\n";

	for (size_t i = 0; i < sizeof(smuggle) / sizeof(smuggle[0]); i++) {
		char in[256];
		const char *s = smuggle[i].seq;
		size_t sl = smuggle[i].len ? smuggle[i].len : strlen(s);
		size_t len = 0;
		memcpy(in + len, head, strlen(head)); len += strlen(head);
		memcpy(in + len, s, sl); len += sl;
		memcpy(in + len, tail, strlen(tail)); len += strlen(tail);
		for (int p = 0; p < 2; p++) {
			int before = check_failed;
			enum smtp_newline_policy pol = p ? NORM : REJ;
			run_data(in, len, 1000, pol, &r);
			/* the only end is the real one, at the very end */
			CHECK_INT(r.end_at, len);
			CHECK(wire_clean(r.out, r.out_len));
			if (check_failed != before)
				fprintf(stderr, "  smuggling %s, policy %d\n", smuggle[i].note, p);
		}
	}
}

/* test_split - a message arriving in two reads split at every position
 * through an accumulating buffer gives byte-identical output. */
static void test_split(void)
{
	static const char msg[] =
	    "Received: from x\r\n\tby y\r\nSubject: hi\r\n\r\n"
	    ".leading dot\r\n..two\r\nbare\nlf\r\nbare\rcr\r\n"
	    "a-line-longer-than-sixteen-bytes-to-go-partial\r\n"
	    "fifteen-bytes!\r\r\n.\n\r\n.\r\nQUIT\r\n";
	size_t len = sizeof(msg) - 1;
	static struct run ref;
	static char acc[sizeof(msg)];

	for (size_t max = 16; max <= 1000; max += 984) {
		for (int p = 0; p < 2; p++) {
			enum smtp_newline_policy pol = p ? NORM : REJ;
			size_t bad = 0;
			run_data(msg, len, max, pol, &ref);
			CHECK(ref.end_at == len - 6);
			for (size_t split = 0; split <= len; split++) {
				struct smtp_line_reader lr = { 0 };
				struct smtp_data d = { 0 };
				struct smtp_wire w;
				char out[OUT_MAX];
				size_t have = 0, off = 0, olen = 0, end_at = 0;
				struct sink sink = { out, &olen, OUT_MAX };
				smtp_wire_init(&w, sink_emit, &sink);
				for (int rd = 0; rd < 2 && !end_at; rd++) {
					size_t chunk = rd == 0 ? split : len - split;
					memcpy(acc + have, msg + (rd ? split : 0), chunk);
					have += chunk;
					char *g = guarded_copy(acc, have);
					for (;;) {
						struct smtp_line l;
						char c[OUT_MAX];
						size_t n = smtp_line_next(&lr, g + off, have - off, max, &l), cl;
						bool eol;
						if (n == 0)
							break;
						off += n;
						enum smtp_data_kind k = smtp_data_line(&d, &l, pol, c, &cl, &eol);
						if (k == SMTP_DATA_END) {
							end_at = off;
							break;
						}
						feed(&w, k, c, cl, eol);
					}
					guarded_free(g, have);
				}
				if (end_at != ref.end_at || olen != ref.out_len ||
				    memcmp(out, ref.out, olen) != 0 || d.bytes != ref.d.bytes)
					bad++;
			}
			CHECK_INT(bad, 0);
		}
	}
}

/* test_bytes - the counters and the PARTIAL kind inheritance. */
static void test_counters(void)
{
	static struct run r;
	run_data("A: b\r\n\r\n.x\r\n.\r\n", 15, 1000, REJ, &r);
	CHECK_INT(r.d.bytes, 6 + 2 + 3);
	CHECK_INT(r.d.lines, 3);
	CHECK(!r.d.implicit_eoh);
	run_data("Subject: 0123456789abcdef\r\n.\r\n", 30, 8, REJ, &r);
	r.kinds[r.nkinds] = '\0';
	CHECK_STR(r.kinds, "HHHH.");
	CHECK_MEM(r.out, r.out_len, "Subject: 0123456789abcdef\r\n");
	run_data("xxxxxxxx.\r\n.\r\n", 14, 8, REJ, &r);
	CHECK_MEM(r.out, r.out_len, "xxxxxxxx.\r\n"); /* continued "." not the end */
	CHECK_INT(r.end_at, 14);
	/* the tail of a rejected long line is rejected too, never written */
	run_data("\rxxxxxxx.\r\n.\r\n", 14, 8, REJ, &r);
	r.kinds[r.nkinds] = '\0';
	CHECK_STR(r.kinds, "XX.");
	CHECK_INT(r.out_len, 0);
	CHECK_INT(smtp_header_name_len("Subject: x", 10), 7);
	CHECK_INT(smtp_header_name_len("Sub ject: x", 11), 0);
	CHECK_INT(smtp_header_name_len("X-\x80: x", 6), 0);
	CHECK_INT(smtp_header_name_len("Subject", 7), 0);
	CHECK_INT(smtp_header_name_len("", 0), 0);
}

int main(void)
{
	run_cases();
	test_smuggling();
	test_split();
	test_counters();
	return check_finish("test_smtp_data");
}

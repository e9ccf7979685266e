/*
 * test_mime - the streaming MIME walker: structure, decoding, and hostile
 * input (deep nesting, 100k parts, missing and never-closing boundaries,
 * huge header fields, long lines, broken base64/QP, NUL, bare CR/LF).
 * Every case is fed whole, byte by byte and in odd chunks: the events must
 * be the same. Also times a 20 MB message with a base64 attachment.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smtp/mime.h"
#include "tests/unit/check.h"

/* The events, written into a log: "B<depth>:<type>[/<report-type>] m<msg_depth>"
 * at part_begin, "H<depth>:<field>" per header, "L<depth>:<line>", "E<depth>". */
struct rec {
	char *log;
	size_t len, cap;
	size_t lines, line_bytes, max_line, headers, max_header;
	bool decode;
};

static void rec_add(struct rec *r, const char *s, size_t n)
{
	if (r->len + n + 2 > r->cap) {
		r->cap = (r->len + n + 2) * 2;
		r->log = realloc(r->log, r->cap);
	}
	memcpy(r->log + r->len, s, n);
	r->len += n;
	r->log[r->len++] = '|';
	r->log[r->len] = '\0';
}

static void on_header(void *ctx, const struct mime_part *p, const char *f, size_t n, bool cut)
{
	struct rec *r = ctx;
	char buf[128];
	int k = snprintf(buf, sizeof buf, "H%u%s:%.*s", p->depth, cut ? "cut" : "",
	    (int)(n < 60 ? n : 60), f);
	r->headers++;
	if (n > r->max_header)
		r->max_header = n;
	rec_add(r, buf, (size_t)k);
}

static bool on_begin(void *ctx, const struct mime_part *p)
{
	struct rec *r = ctx;
	char buf[160];
	int k = snprintf(buf, sizeof buf, "B%u:%s%s%s m%u%s", p->depth, p->type,
	    p->report_type[0] ? "/" : "", p->report_type, p->msg_depth, p->message_top ? " top" : "");
	rec_add(r, buf, (size_t)k);
	return r->decode;
}

static void on_line(void *ctx, const struct mime_part *p, const char *l, size_t n)
{
	struct rec *r = ctx;
	char buf[1100];
	int k = snprintf(buf, sizeof buf, "L%u:", p->depth);
	/* NUL and CR shown as \0 and \r so that the log stays a string */
	for (size_t i = 0; i < n && k < 1090; i++) {
		if (l[i] == '\0') { buf[k++] = '\\'; buf[k++] = '0'; }
		else if (l[i] == '\r') { buf[k++] = '\\'; buf[k++] = 'r'; }
		else buf[k++] = l[i];
	}
	r->lines++;
	r->line_bytes += n;
	if (n > r->max_line)
		r->max_line = n;
	rec_add(r, buf, (size_t)k);
}

static void on_end(void *ctx, const struct mime_part *p)
{
	char buf[16];
	int k = snprintf(buf, sizeof buf, "E%u", p->depth);
	rec_add(ctx, buf, (size_t)k);
}

static const struct mime_callbacks cbs = { on_header, on_begin, on_line, on_end };

struct run {
	struct rec rec;
	unsigned flags, parts;
};

/* walk - fields (NUL-separated list ending in an empty string) then body,
 * in chunks of chunk bytes (0 = whole). */
static struct run walk(const char *const *fields, const char *body, size_t blen, size_t chunk,
    const struct mime_limits *lim, bool decode)
{
	struct run r = { .rec = { .decode = decode } };
	struct mime_walker *w = mime_walker_new(lim, &cbs, &r.rec);
	for (; fields && *fields; fields++)
		mime_header(w, *fields, strlen(*fields));
	mime_eoh(w);
	if (chunk == 0)
		chunk = blen ? blen : 1;
	for (size_t i = 0; i < blen; i += chunk) {
		size_t n = blen - i < chunk ? blen - i : chunk;
		char *copy = guarded_copy(body + i, n);
		mime_body(w, copy, n);
		guarded_free(copy, n);
	}
	mime_end(w);
	r.flags = mime_flags(w);
	r.parts = mime_parts(w);
	mime_walker_free(w);
	if (!r.rec.log)
		r.rec.log = strdup("");
	return r;
}

/* same_whatever_split - the log of a whole feed, checked against byte by byte
 * and chunks of 7 and 1001; returns the whole run (caller frees log). */
static struct run same_whatever_split(const char *const *fields, const char *body, size_t blen,
    const struct mime_limits *lim)
{
	struct run whole = walk(fields, body, blen, 0, lim, true);
	size_t chunks[] = { 1, 7, 1001 };
	for (size_t c = 0; c < 3; c++) {
		if (blen > 300000 && chunks[c] == 1)
			continue;   /* byte by byte on the big ones costs too much under ASan */
		struct run other = walk(fields, body, blen, chunks[c], lim, true);
		CHECK(strcmp(whole.rec.log, other.rec.log) == 0);
		CHECK_INT(whole.flags, other.flags);
		free(other.rec.log);
	}
	return whole;
}

static bool has(const struct run *r, const char *s)
{
	bool found = strstr(r->rec.log, s) != NULL;
	if (!found)
		fprintf(stderr, "missing \"%s\" in log: %.600s\n", s, r->rec.log);
	return found;
}

#define BODY(s) s, sizeof(s) - 1

static void test_structure(void)
{
	const char *fields[] = { "Subject: x",
		"Content-Type: multipart/mixed;\r\n boundary=\"outer b\"", NULL };
	const char body[] =
	    "preamble, not a part\r\n"
	    "--outer b\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "caf=C3=A9 soft=\r\n"
	    "break, =3D sign\r\n"
	    "--outer b\r\n"
	    "Content-Type: text/plain\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "aGVsbG8Kd29y\r\n"
	    "bGQ=\r\n"
	    "--outer b\r\n"
	    "Content-Type: message/rfc822\r\n"
	    "\r\n"
	    "From: a@b.example\r\n"
	    "Subject: inner\r\n"
	    "Content-Type: multipart/alternative; boundary=inner\r\n"
	    "\r\n"
	    "--inner\r\n"
	    "\r\n"
	    "inner text\r\n"
	    "--inner--\r\n"
	    "--outer b--\r\n"
	    "epilogue\r\n";
	struct run r = same_whatever_split(fields, BODY(body), NULL);
	CHECK(has(&r, "B0:multipart/mixed m0 top|"));
	CHECK(has(&r, "L1:caf\xc3\xa9 softbreak, = sign|"));
	CHECK(has(&r, "L1:hello|L1:world|E1"));
	CHECK(has(&r, "B1:message/rfc822 m0|H2:From: a@b.example|H2:Subject: inner|"));
	CHECK(has(&r, "B2:multipart/alternative m1 top|B3:text/plain m1|L3:inner text|E3|E2|E1|E0"));
	CHECK(!strstr(r.rec.log, "preamble") && !strstr(r.rec.log, "epilogue"));
	CHECK_INT(r.flags, 0);
	CHECK_INT(r.parts, 6);
	free(r.rec.log);
}

static void test_report_and_digest(void)
{
	const char *fields[] = {
		"Content-Type: multipart/report; report-type=Delivery-Status; boundary=\"r\"", NULL };
	const char body[] =
	    "--r\r\n\r\nexplanation\r\n"
	    "--r\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n"
	    "--r\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n"
	    "--d\r\n\r\nSubject: digest one\r\n\r\nbody one\r\n"
	    "--d\r\nContent-Type: text/plain\r\n\r\nplain in digest\r\n"
	    "--d--\r\n--r--\r\n";
	struct run r = same_whatever_split(fields, BODY(body), NULL);
	CHECK(has(&r, "B0:multipart/report/delivery-status m0 top|"));
	CHECK(has(&r, "B1:message/delivery-status m0|L1:Action: failed|"));
	/* a digest's part without Content-Type is a message */
	CHECK(has(&r, "B2:message/rfc822 m0|H3:Subject: digest one|B3:text/plain m1 top|L3:body one|"));
	CHECK(has(&r, "B2:text/plain m0|L2:plain in digest|"));
	CHECK_INT(r.flags, 0);
	free(r.rec.log);
}

static void test_deep_nesting(void)
{
	/* 5000 nested multiparts, each opening the next: depth capped at 8,
	 * the rest skipped, every level closed at the end */
	size_t levels = 5000, cap = levels * 80 + 64, n = 0;
	char *body = malloc(cap);
	const char *fields[] = { "Content-Type: multipart/mixed; boundary=b0x", NULL };
	for (size_t i = 0; i < levels; i++)
		n += (size_t)snprintf(body + n, cap - n,
		    "--b%zux\r\nContent-Type: multipart/mixed; boundary=b%zux\r\n\r\n", i, i + 1);
	n += (size_t)snprintf(body + n, cap - n, "--b%zux\r\n\r\ndeepest\r\n", levels);
	struct run r = same_whatever_split(fields, body, n, NULL);
	CHECK(r.flags & MIME_F_DEPTH);
	CHECK(r.flags & MIME_F_UNCLOSED);
	CHECK_INT(r.parts, MIME_DEPTH_DEFAULT + 1);
	CHECK(!strstr(r.rec.log, "deepest"));
	free(r.rec.log);

	/* message/rfc822 inside message/rfc822 ... */
	n = 0;
	for (size_t i = 0; i < levels; i++)
		n += (size_t)snprintf(body + n, cap - n, "Content-Type: message/rfc822\r\n\r\n");
	const char *msg[] = { "Content-Type: message/rfc822", NULL };
	struct run m = same_whatever_split(msg, body, n, NULL);
	CHECK(m.flags & MIME_F_DEPTH);
	CHECK_INT(m.parts, MIME_DEPTH_DEFAULT + 1);
	free(m.rec.log);
	free(body);
}

static void test_many_parts(void)
{
	/* 100k parts: 256 announced, the rest skipped, time linear */
	size_t nparts = 100000, cap = nparts * 40 + 64, n = 0;
	char *body = malloc(cap);
	const char *fields[] = { "Content-Type: multipart/mixed; boundary=p", NULL };
	for (size_t i = 0; i < nparts; i++)
		n += (size_t)snprintf(body + n, cap - n, "--p\r\n\r\npart %zu\r\n", i);
	n += (size_t)snprintf(body + n, cap - n, "--p--\r\n");
	clock_t t0 = clock();
	struct run r = same_whatever_split(fields, body, n, NULL);
	double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	CHECK(r.flags & MIME_F_PARTS);
	CHECK_INT(r.parts, MIME_PARTS_DEFAULT);
	CHECK_INT(r.rec.lines, MIME_PARTS_DEFAULT - 1);
	CHECK(!(r.flags & MIME_F_UNCLOSED));
	printf("100k parts, 4 feeds (one byte by byte): %.3f s\n", secs);
	CHECK(secs < 20.0);
	free(r.rec.log);

	/* a limit of 1000 parts: 999 text parts */
	struct mime_limits lim = { .max_parts = 1000 };
	struct run l = walk(fields, body, n, 0, &lim, true);
	CHECK_INT(l.parts, 1000);
	CHECK_INT(l.rec.lines, 999);
	free(l.rec.log);
	free(body);
}

static void test_boundaries(void)
{
	/* no boundary parameter: the content is skipped, flagged */
	const char *nob[] = { "Content-Type: multipart/mixed", NULL };
	const char b1[] = "--x\r\n\r\nhidden\r\n--x--\r\n";
	struct run r = same_whatever_split(nob, BODY(b1), NULL);
	CHECK(r.flags & MIME_F_BOUNDARY);
	CHECK(!strstr(r.rec.log, "hidden"));
	free(r.rec.log);

	/* 71 characters: over RFC 2046's 70 */
	char field[200];
	snprintf(field, sizeof field, "Content-Type: multipart/mixed; boundary=%071d", 0);
	const char *longb[] = { field, NULL };
	r = same_whatever_split(longb, BODY(b1), NULL);
	CHECK(r.flags & MIME_F_BOUNDARY);
	free(r.rec.log);

	/* 70: fine */
	snprintf(field, sizeof field, "Content-Type: multipart/mixed; boundary=%070d", 0);
	char b70[300];
	int k = snprintf(b70, sizeof b70, "--%070d\r\n\r\nseventy\r\n--%070d--\r\n", 0, 0);
	r = same_whatever_split(longb, b70, (size_t)k, NULL);
	CHECK_INT(r.flags, 0);
	CHECK(has(&r, "L1:seventy|"));
	free(r.rec.log);

	/* never closed: the text still comes, the multipart is flagged */
	const char *f2[] = { "Content-Type: multipart/mixed; boundary=\"q\"", NULL };
	const char b2[] = "--q\r\n\r\nopen forever\r\nmore";
	r = same_whatever_split(f2, BODY(b2), NULL);
	CHECK(r.flags & MIME_F_UNCLOSED);
	CHECK(has(&r, "L1:open forever|L1:more|E1|E0"));
	free(r.rec.log);

	/* a boundary inside a part's header section: an empty part; a
	 * boundary with trailing blanks and junk still counts (Postfix's
	 * prefix match); an outer boundary closes the inner multipart */
	const char *f3[] = { "Content-Type: multipart/mixed; boundary=o", NULL };
	const char b3[] =
	    "--o\r\nContent-Type: text/plain\r\n--o   \r\n\r\nsecond\r\n"
	    "--o\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\ninner\r\n"
	    "--o--\r\n";
	r = same_whatever_split(f3, BODY(b3), NULL);
	CHECK(has(&r, "B1:text/plain m0|E1|B1:text/plain m0|L1:second|E1|"));
	CHECK(has(&r, "L2:inner|E2|E1|E0"));
	CHECK(r.flags & MIME_F_UNCLOSED);
	free(r.rec.log);

	/* an unindented "boundary=" line under a Content-Type (seen from
	 * Verizon's gateway) goes with the field */
	const char b4[] =
	    "--o\r\nContent-Type: multipart/alternative;\r\nboundary=\"alt\"\r\n\r\n"
	    "--alt\r\n\r\nlenient\r\n--alt--\r\n--o--\r\n";
	r = same_whatever_split(f3, BODY(b4), NULL);
	CHECK(has(&r, "B1:multipart/alternative m0|B2:text/plain m0|L2:lenient|"));
	CHECK_INT(r.flags, 0);
	free(r.rec.log);
}

static void test_huge_fields_and_lines(void)
{
	/* a part header field of 1 MB: handed over cut at 16 KiB */
	size_t big = 1 << 20, n = 0;
	char *body = malloc(big + 200);
	const char *f[] = { "Content-Type: multipart/mixed; boundary=h", NULL };
	n += (size_t)snprintf(body, 200, "--h\r\nX-Big: ");
	for (size_t i = 0; i < big; i++)
		body[n++] = (i % 1000 == 999) ? '\n' : 'a';   /* bare LF line ends, lines of 1000 */
	n += (size_t)snprintf(body + n, 200, "\r\n\r\nafter\r\n--h--\r\n");
	struct run r = same_whatever_split(f, body, n, NULL);
	CHECK(r.flags & MIME_F_FIELD_CUT);
	CHECK(r.rec.max_header <= MIME_FIELD_DEFAULT);
	CHECK(has(&r, "H1cut:X-Big: aaa"));
	free(r.rec.log);

	/* one line of 1 MB in a text part: pieces of at most MIME_LINE_MAX,
	 * decoded bytes capped at 64 KiB */
	n = (size_t)snprintf(body, 200, "--h\r\n\r\n");
	memset(body + n, 'b', big);
	n += big;
	n += (size_t)snprintf(body + n, 200, "\r\n--h--\r\n");
	r = same_whatever_split(f, body, n, NULL);
	CHECK(r.flags & MIME_F_LONG_LINE);
	CHECK(r.flags & MIME_F_TEXT_CUT);
	CHECK(r.rec.max_line <= MIME_LINE_MAX);
	CHECK(r.rec.line_bytes <= MIME_TEXT_DEFAULT);
	CHECK(r.rec.line_bytes >= MIME_TEXT_DEFAULT - MIME_LINE_MAX);
	free(r.rec.log);

	/* a top-level field longer than the limit */
	char *huge = malloc(100000);
	memcpy(huge, "Subject: ", 9);
	memset(huge + 9, 's', 100000 - 10);
	huge[100000 - 1] = '\0';
	const char *hf[] = { huge, NULL };
	r = same_whatever_split(hf, BODY("x\r\n"), NULL);
	CHECK(r.flags & MIME_F_FIELD_CUT);
	CHECK(r.rec.max_header == MIME_FIELD_DEFAULT);
	free(r.rec.log);
	free(huge);
	free(body);
}

static void test_broken_encodings(void)
{
	const char *f[] = { "Content-Type: multipart/mixed; boundary=e", NULL };
	const char body[] =
	    "--e\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	    "aGVs!!bG8=\r\n@@@@\r\nQ\r\n"      /* junk skipped, "hello", a lone char */
	    "--e\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "a=ZZb=4\r\nc= \r\nd=\r\n"          /* bad escapes kept, soft break with blank */
	    "--e\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nas is\r\n"
	    "--e--\r\n";
	struct run r = same_whatever_split(f, BODY(body), NULL);
	CHECK(r.flags & MIME_F_ENCODING);
	CHECK(has(&r, "L1:hello|E1"));
	CHECK(has(&r, "L1:a=ZZb=4|L1:cd|E1"));
	CHECK(has(&r, "L1:as is|E1"));
	free(r.rec.log);
}

static void test_nul_and_bare_cr(void)
{
	const char *f[] = { "Content-Type: text/plain", NULL };
	/* a CR right before the line end goes with it, even two */
	const char body[] = "a\0b\r\nbare\rcr\r\nbare lf\nlast\r\r\n";
	struct run r = same_whatever_split(f, body, sizeof body - 1, NULL);
	CHECK(has(&r, "L0:a\\0b|L0:bare\\rcr|L0:bare lf|L0:last|E0"));
	free(r.rec.log);
	/* no header section at all, no body */
	r = same_whatever_split(NULL, "", 0, NULL);
	CHECK(has(&r, "B0:text/plain m0 top|E0"));
	free(r.rec.log);
	/* not asked to decode: no line at all */
	struct run q = walk(f, BODY("text\r\n"), 0, NULL, false);
	CHECK_INT(q.rec.lines, 0);
	free(q.rec.log);
}

static void test_speed(void)
{
	/* 20 MB: a short text part and a base64 attachment; only the text
	 * part is decoded (as the classifier asks) */
	size_t target = 20u << 20, n = 0;
	char *body = malloc(target + 4096);
	const char *f[] = { "Content-Type: multipart/mixed; boundary=\"=_speed\"", NULL };
	n += (size_t)snprintf(body, 4096, "--=_speed\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
	    "--=_speed\r\nContent-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n");
	while (n + 80 < target) {
		for (int i = 0; i < 76; i++)
			body[n + (size_t)i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(n + (size_t)i) % 64];
		memcpy(body + n + 76, "\r\n", 2);
		n += 78;
	}
	n += (size_t)snprintf(body + n, 4096, "--=_speed--\r\n");
	struct rec rec = { .decode = false };
	struct mime_walker *w = mime_walker_new(NULL, &cbs, &rec);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	mime_header(w, f[0], strlen(f[0]));
	mime_eoh(w);
	for (size_t i = 0; i < n; i += 65536)
		mime_body(w, body + i, n - i < 65536 ? n - i : 65536);
	mime_end(w);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double us = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
	printf("20 MB base64 attachment: %.0f us, %.0f us/MB\n", us, us / ((double)n / (1 << 20)));
	CHECK_INT(mime_parts(w), 3);
	CHECK_INT(mime_flags(w), 0);
	CHECK(us < 5e6);    /* a gross regression (quadratic, decoding it) fails */
	mime_walker_free(w);
	free(rec.log);
	free(body);
}

int main(void)
{
	test_structure();
	test_report_and_digest();
	test_deep_nesting();
	test_many_parts();
	test_boundaries();
	test_huge_fields_and_lines();
	test_broken_encodings();
	test_nul_and_bare_cr();
	test_speed();
	return check_finish("test_mime");
}

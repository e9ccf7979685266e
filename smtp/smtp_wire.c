/*
 * smtp_wire - the one writer of message content; see smtp_wire.h.
 *
 * The writer keeps a single bit of line state (mid_line). Whether a "." is
 * stuffed depends only on that bit, never on how a caller split its data,
 * which is what makes the rule structural: a caller that drops a piece of
 * a line (a removed header field, a cut segment) can only ever make the
 * next piece continue a line or start one, and a line start is stuffed.
 */
#include <string.h>

#include "smtp/smtp_wire.h"

#define WIRE_CHUNK 4096 /* scratch for text that needs bytes replaced */

void smtp_wire_init(struct smtp_wire *w, smtp_wire_emit_fn emit, void *ctx)
{
	memset(w, 0, sizeof *w);
	w->emit = emit;
	w->ctx = ctx;
}

static int put(struct smtp_wire *w, const char *data, size_t len)
{
	int err;

	if (w->error || len == 0)
		return w->error;
	if (w->ended)
		return w->error = -1;   /* a caller bug; never silently extend */
	if ((err = w->emit(w->ctx, data, len)) != 0)
		return w->error = err;
	w->bytes += len;
	return 0;
}

/* line_break_byte - the bytes that must never reach the wire as content */
static bool line_break_byte(char c)
{
	return c == '\r' || c == '\n' || c == '\0';
}

/* clean_run - how many bytes of data[0..len) come before the first
 * line-break byte; memchr, not a byte loop: this sees every byte of every
 * message, and content lines almost never hold one */
static size_t clean_run(const char *data, size_t len)
{
	const char *p;

	if (len > 0 && (p = memchr(data, '\r', len)) != NULL)
		len = (size_t)(p - data);
	if (len > 0 && (p = memchr(data, '\n', len)) != NULL)
		len = (size_t)(p - data);
	if (len > 0 && (p = memchr(data, '\0', len)) != NULL)
		len = (size_t)(p - data);
	return len;
}

int smtp_wire_text(struct smtp_wire *w, const char *data, size_t len)
{
	char scratch[WIRE_CHUNK];
	size_t i = 0;

	if (w->error || len == 0)
		return w->error;
	if (!w->mid_line && data[0] == '.' && put(w, ".", 1) != 0)
		return w->error;   /* RFC 5321 4.5.2 transparency */
	w->mid_line = true;
	while (i < len) {
		size_t run = i + clean_run(data + i, len - i), n = 0;
		/* pass clean runs straight through */
		if (put(w, data + i, run - i) != 0)
			return w->error;
		i = run;
		/* then a chunk with the line-break bytes made spaces */
		while (i < len && n < sizeof scratch && line_break_byte(data[i])) {
			scratch[n++] = ' ';
			w->replaced++;
			i++;
		}
		if (put(w, scratch, n) != 0)
			return w->error;
	}
	return 0;
}

int smtp_wire_eol(struct smtp_wire *w)
{
	if (put(w, "\r\n", 2) != 0)
		return w->error;
	w->mid_line = false;
	return 0;
}

int smtp_wire_lines(struct smtp_wire *w, const char *text, size_t len)
{
	while (len > 0) {
		const char *lf = memchr(text, '\n', len);
		size_t n = lf ? (size_t)(lf - text) : len, content = n;
		if (content > 0 && text[content - 1] == '\r')
			content--;
		if (smtp_wire_text(w, text, content) != 0)
			return w->error;
		if (lf == NULL)
			break;
		if (smtp_wire_eol(w) != 0)
			return w->error;
		text += n + 1;
		len -= n + 1;
	}
	return w->error;
}

int smtp_wire_end(struct smtp_wire *w)
{
	if (w->mid_line && smtp_wire_eol(w) != 0)
		return w->error;
	if (put(w, ".\r\n", 3) != 0)
		return w->error;
	w->ended = true;
	return 0;
}

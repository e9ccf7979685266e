/*
 * smtp_reply - parse the backend's replies and format every reply backstop
 * sends (RFC 5321 4.2, RFC 3463 / RFC 2034 enhanced status codes).
 *
 * Contract (see smtp_reply.h): the parser never reads past len and keeps
 * slices of the caller's line; the accumulator truncates, never overflows;
 * the formatter never writes past cap and its output is always well-formed
 * whatever it is given: a code outside 200..599 becomes 451 (our bug must
 * not reach the wire as garbage), an enhanced code of the wrong class is
 * replaced by the default, text bytes outside printable ASCII become '?',
 * and each line fits SMTP_REPLY_LINE_MAX including CRLF.
 */
#include <string.h>

#include "smtp/smtp_reply.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* bounded_len - strlen of s, looking at no more than max bytes. */
static size_t bounded_len(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n] != '\0')
		n++;
	return n;
}

/* esc_span - length of "C.SSS.DDD" at s[0..n) (RFC 3463 2), or 0. */
static size_t esc_span(const char *s, size_t n)
{
	size_t i = 0;

	if (n < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		if (part == 1) {
			if (i >= n || s[i] != '.')
				return 0;
			start = ++i;
		}
		while (i < n && is_digit(s[i]) && i - start < 3)
			i++;
		if (i == start)
			return 0;
	}
	return i;
}

/* smtp_esc_valid - "C.SSS.DDD" with C in 2,4,5 and 1-3 digit parts. */
bool smtp_esc_valid(const char *esc, size_t len)
{
	return esc != 0 && esc_span(esc, len) == len && len > 0;
}

/* smtp_esc_default - the class-only enhanced code for code. */
const char *smtp_esc_default(int code)
{
	switch (code / 100) {
	case 2:
		return "2.0.0";
	case 4:
		return "4.0.0";
	case 5:
		return "5.0.0";
	default:
		return ""; /* RFC 3463 has no class for 3xx */
	}
}

/* smtp_reply_line_parse - parse one reply line (RFC 5321 4.2). */
int smtp_reply_line_parse(const char *line, size_t len,
    struct smtp_reply_line *out)
{
	size_t i, n;

	memset(out, 0, sizeof(*out));
	out->text = line;
	if (len < 3 || !is_digit(line[0]) || !is_digit(line[1]) ||
	    !is_digit(line[2]))
		return -1;
	for (i = 0; i < len; i++)
		if (line[i] == '\0')
			return -1;
	out->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (out->code < 200 || out->code > 599)
		return -1;
	/* RFC 5321 4.2: Reply-code [ SP textstring ] CRLF on the last line,
	 * Reply-code "-" [ textstring ] CRLF before it. */
	if (len == 3) {
		out->last = true;
		out->text = line + 3;
		return 0;
	}
	if (line[3] != ' ' && line[3] != '-')
		return -1;
	out->last = line[3] == ' ';
	i = 4;
	/* RFC 2034 4: the enhanced code follows the separator; only trusted
	 * when its class agrees with the reply code's. */
	n = esc_span(line + i, len - i);
	if (n > 0 && line[i] == line[0] && (i + n == len || line[i + n] == ' ')) {
		memcpy(out->esc, line + i, n);
		out->esc[n] = '\0';
		i += n;
		while (i < len && line[i] == ' ')
			i++;
	}
	out->text = line + i;
	out->text_len = len - i;
	return 0;
}

/* smtp_reply_add - add one parsed line to a multi-line reply. */
int smtp_reply_add(struct smtp_reply *r, const struct smtp_reply_line *line)
{
	size_t room, n;

	if (r->complete || (r->nlines > 0 && line->code != r->code))
		return -1;
	if (r->nlines == 0)
		r->code = line->code;
	if (r->esc[0] == '\0' && line->esc[0] != '\0') {
		n = bounded_len(line->esc, SMTP_ESC_MAX - 1);
		memcpy(r->esc, line->esc, n);
		r->esc[n] = '\0';
	}
	/* Keep one byte for the NUL; truncate, never overflow. */
	if (r->nlines > 0 && r->text_len + 1 < SMTP_REPLY_TEXT_MAX)
		r->text[r->text_len++] = '\n';
	room = SMTP_REPLY_TEXT_MAX - 1 - r->text_len;
	n = line->text_len < room ? line->text_len : room;
	memcpy(r->text + r->text_len, line->text, n);
	r->text_len += n;
	r->text[r->text_len] = '\0';
	r->nlines++;
	if (line->last) {
		r->complete = true;
		return 1;
	}
	return 0;
}

/* put - append n bytes to out[*o..cap), keeping room for the final NUL. */
static bool put(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
	if (*o + n + 1 > cap)
		return false;
	memcpy(out + *o, s, n);
	*o += n;
	return true;
}

/* smtp_reply_format - the one place that builds reply bytes. */
long smtp_reply_format(char *out, size_t cap, int code, const char *esc,
    const char *text)
{
	char head[4 + SMTP_ESC_MAX + 1];
	size_t o = 0, hlen, elen = 0, p = 0, tlen;

	if (cap > 0)
		out[0] = '\0';
	if (code < 200 || code > 599) {
		code = 451; /* a bad code is our bug; 451 4.3.0 is the safe answer */
		esc = "4.3.0";
	}
	if (esc != 0)
		elen = bounded_len(esc, SMTP_ESC_MAX);
	/* RFC 3463 2: the class must equal the reply code's first digit.
	 * An empty esc asks for none: the greeting and EHLO keyword lines,
	 * which clients parse word by word (RFC 2034 3). */
	if (esc != 0 && elen == 0) {
		/* no enhanced code */
	} else if (!smtp_esc_valid(esc, elen) || esc[0] - '0' != code / 100) {
		esc = smtp_esc_default(code);
		elen = strlen(esc);
	}
	if (text == 0)
		text = "";
	tlen = strlen(text);
	if (tlen > 0 && text[tlen - 1] == '\n')
		tlen--; /* a trailing newline ends the text, adds no empty line */

	head[0] = (char)('0' + code / 100);
	head[1] = (char)('0' + code / 10 % 10);
	head[2] = (char)('0' + code % 10);
	memcpy(head + 4, esc, elen);
	hlen = 4 + elen;

	do {
		size_t end = p, n, room;
		bool last;
		while (end < tlen && text[end] != '\n')
			end++;
		last = end >= tlen;
		head[3] = last ? ' ' : '-';
		n = end - p;
		if (elen > 0 && n > 0) {
			head[hlen] = ' ';
			if (!put(out, cap, &o, head, hlen + 1))
				goto small;
		} else if (!put(out, cap, &o, head, elen > 0 || n > 0 || !last ? hlen : 3))
			goto small;
		/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with CRLF. */
		room = SMTP_REPLY_LINE_MAX - 2 - (elen > 0 ? hlen + 1 : hlen);
		if (n > room)
			n = room;
		if (o + n + 3 > cap)
			goto small;
		for (size_t k = 0; k < n; k++) {
			unsigned char c = (unsigned char)text[p + k];
			out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
		}
		if (!put(out, cap, &o, "\r\n", 2))
			goto small;
		p = end + 1;
	} while (p <= tlen);
	out[o] = '\0';
	return (long)o;
small:
	if (cap > 0)
		out[0] = '\0';
	return -1;
}

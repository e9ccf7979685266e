/*
 * smtp_line - split an SMTP byte stream into lines.
 *
 * Contract (see smtp_line.h): one call returns at most one line or one
 * PARTIAL segment of at most max bytes, as a slice of the caller's buffer.
 * Never reads buf[len] or beyond, never reads more than max bytes. Bare CR,
 * bare LF and NUL are reported in flags; nothing is repaired here.
 */
#include <string.h>

#include "smtp/smtp_line.h"

/* line_flags - BARE_CR and NUL flags for content[0..n). Any CR inside the
 * content is bare: a CR followed by LF would have been the terminator.
 * memchr, not a byte loop: every line of every message passes here, and
 * almost none holds either byte. */
static unsigned line_flags(const char *s, size_t n)
{
	unsigned flags = 0;

	if (n == 0)
		return 0;
	if (memchr(s, '\r', n) != NULL)
		flags |= SMTP_LINE_BARE_CR;
	if (memchr(s, '\0', n) != NULL)
		flags |= SMTP_LINE_NUL;
	return flags;
}

/* smtp_line_next - take the next line from buf[0..len). */
size_t smtp_line_next(struct smtp_line_reader *r, const char *buf, size_t len,
    size_t max, struct smtp_line *line)
{
	size_t scan, i, content, used;
	unsigned flags = 0;

	line->data = buf;
	line->len = 0;
	line->flags = 0;
	if (max < 2)
		max = 2; /* contract violation; keep progress guaranteed */
	scan = len < max ? len : max;

	{
		const char *lf = scan > 0 ? memchr(buf, '\n', scan) : NULL;

		i = lf != NULL ? (size_t)(lf - buf) : scan;
	}

	if (i < scan) {
		/* RFC 5321 2.3.8: only CRLF ends a line; a lone LF is flagged. */
		if (i > 0 && buf[i - 1] == '\r') {
			content = i - 1;
			flags = SMTP_LINE_CRLF;
		} else {
			content = i;
			flags = SMTP_LINE_BARE_LF;
		}
		used = i + 1;
	} else if (len < max) {
		return 0; /* no LF yet (a final CR may still become CRLF) */
	} else {
		/* Over-long: hand out max bytes, keeping a final CR back since
		 * it may be the first half of the CRLF that ends this line. */
		content = buf[max - 1] == '\r' ? max - 1 : max;
		used = content;
		flags = SMTP_LINE_PARTIAL;
	}

	flags |= line_flags(buf, content);
	if (r->continuing)
		flags |= SMTP_LINE_CONTINUED;
	r->continuing = (flags & SMTP_LINE_PARTIAL) != 0;

	line->len = content;
	line->flags = flags;
	return used;
}

/* smtp_line_reset - forget a pending PARTIAL segment (new protocol phase). */
void smtp_line_reset(struct smtp_line_reader *r)
{
	r->continuing = 0;
}

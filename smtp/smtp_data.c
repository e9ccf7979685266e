/*
 * smtp_data - the DATA content scanner: the only place that decides where a
 * message ends, and what the backend receives.
 *
 * Contract (see smtp_data.h): one call per line from smtp_line_next(); the
 * content (at most line->len bytes) has one leading dot removed (RFC 5321
 * 4.5.2); smtp_wire puts it back for the backend. The end of data is exactly "." + CRLF on a line that starts after a CRLF (or
 * is the first line), so that no variant of the SMTP smuggling terminators
 * (CVE-2023-51764 class: <LF>.<LF>, <LF>.<CR><LF>, <CR><LF>.<LF>,
 * <CR>.<CR>, <CR><LF>.<CR><CR><LF>, ...) ends a message here, and the
 * backend never sees a bare CR or LF from us. A "." line that is not the
 * end is content "." and goes out as "..".
 *
 * d->bytes counts every non-END line, rejected ones included, so a caller
 * that drains a refused message can still enforce its size limit.
 */
#include <string.h>

#include "smtp/smtp_data.h"

/* smtp_header_name_len - length of the field name starting line[0..len). */
size_t smtp_header_name_len(const char *line, size_t len)
{
	size_t i = 0, name;

	/* RFC 5322 3.6.8: ftext = %d33-57 / %d59-126 */
	while (i < len && (unsigned char)line[i] >= 33 &&
	    (unsigned char)line[i] <= 126 && line[i] != ':')
		i++;
	name = i;
	/* RFC 5322 4.5 obs-optional: WSP allowed before the colon. */
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (name == 0 || i >= len || line[i] != ':')
		return 0;
	return name;
}

/* classify - the kind of a new (not CONTINUED) line with content c[0..n)
 * as the backend receives it (bare CR and NUL already spaces): a line the
 * backend takes for a field or a fold is one here too, or a field could
 * follow what we took for the body (forged fields). */
static enum smtp_data_kind classify(struct smtp_data *d, const char *c,
    size_t n, bool terminated)
{
	if (d->in_body)
		return SMTP_DATA_BODY;
	if (n == 0 && terminated) {
		d->in_body = true; /* RFC 5322 2.1: empty line ends the header */
		return SMTP_DATA_EOH;
	}
	if (d->lines > 0 && n > 0 && (c[0] == ' ' || c[0] == '\t'))
		return SMTP_DATA_HEADER_CONT; /* RFC 5322 2.2.3 folding */
	if (smtp_header_name_len(c, n) > 0)
		return SMTP_DATA_HEADER;
	/* Not a header: the header section ended without its empty line. */
	d->in_body = true;
	d->implicit_eoh = true;
	return SMTP_DATA_BODY;
}

/* smtp_data_line - classify one line and write its wire form to out. */
enum smtp_data_kind smtp_data_line(struct smtp_data *d,
    const struct smtp_line *line, enum smtp_newline_policy policy,
    char *out, size_t *out_len, bool *eol)
{
	bool continued = d->continuing || (line->flags & SMTP_LINE_CONTINUED);
	bool partial = (line->flags & SMTP_LINE_PARTIAL) != 0;
	bool terminated = (line->flags & (SMTP_LINE_CRLF | SMTP_LINE_BARE_LF)) != 0;
	bool after_bare_lf = d->after_bare_lf;
	const char *c = line->data;
	size_t n = line->len, o = 0;
	enum smtp_data_kind kind;

	*out_len = 0;
	*eol = false;
	d->continuing = partial;
	if (terminated)
		d->after_bare_lf = (line->flags & SMTP_LINE_BARE_LF) != 0;

	/* RFC 5321 4.1.1.4: the end is CRLF "." CRLF, and nothing else. */
	if (!continued && !after_bare_lf && (line->flags & SMTP_LINE_CRLF) &&
	    n == 1 && c[0] == '.')
		return SMTP_DATA_END;

	d->bytes += n + (terminated ? 2 : 0);
	/* A rejected line stays rejected in all its segments, so no tail of
	 * it is ever written on its own (it could start with a "."). */
	if ((policy == SMTP_NEWLINE_REJECT &&
	    (line->flags & (SMTP_LINE_BARE_LF | SMTP_LINE_BARE_CR))) ||
	    (continued && d->partial_kind == SMTP_DATA_BAD_NEWLINE)) {
		d->lines += terminated ? 1 : 0;
		d->partial_kind = SMTP_DATA_BAD_NEWLINE;
		return SMTP_DATA_BAD_NEWLINE;
	}

	kind = d->partial_kind;
	if (!continued) {
		/* RFC 5321 4.5.2: drop the transparency dot, except from a lone
		 * "." that is not the end: that one is content and stays. */
		if (n >= 1 && c[0] == '.' && !(n == 1 && terminated)) {
			c++;
			n--;
			d->bytes--;
		}
	}

	/* Postfix cleanup_replace_stray_cr_lf: a bare CR becomes a space
	 * (smtp_line flags every CR left in the content as bare), and so does
	 * a NUL. Most lines hold neither: one copy, no byte loop. */
	if (n > 0)
		memcpy(out, c, n);
	if (n > 0 && (memchr(out, '\r', n) != NULL || memchr(out, '\0', n) != NULL)) {
		for (size_t i = 0; i < n; i++) {
			d->nul_replaced += out[i] == '\0';
			if (out[i] == '\r' || out[i] == '\0')
				out[i] = ' ';
		}
	}
	o = n;
	if (!continued) {
		kind = classify(d, out, o, terminated);
		d->partial_kind = kind;
	}
	*eol = terminated; /* a bare LF (normalise) ends the line as CRLF */
	d->lines += terminated ? 1 : 0;
	*out_len = o;
	return kind;
}

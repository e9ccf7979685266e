/*
 * smtp_data - the DATA content scanner: the only place that decides where a
 * message ends, and what the backend receives.
 *
 * Input: lines from smtp_line_next() read after the 354. Output, per line
 * (or per segment of a line longer than the reader's max): its kind, its
 * content with the transparency dot removed (RFC 5321 4.5.2) and no line
 * terminator, and whether the line ends with this segment. The content is
 * what checks see and what goes to smtp_wire (smtp_wire.h), the one writer
 * that re-stuffs and re-terminates it for the backend: no client byte is
 * spliced through, so nothing ambiguous reaches the backend (SMTP
 * smuggling, CVE-2023-51764 class).
 *
 * The only end of data is a line "." terminated by CRLF, preceded by a CRLF
 * (or first after the 354). Policy for a bare LF or bare CR anywhere:
 *   SMTP_NEWLINE_REJECT:    the line's kind is SMTP_DATA_BAD_NEWLINE; the
 *                           caller refuses the message.
 *   SMTP_NEWLINE_NORMALISE: a bare LF ends the line as if it were CRLF (but a
 *                           "." line ended by a bare LF is content, not the
 *                           end, as in Postfix's "normalize"), and a bare CR
 *                           is replaced by a space.
 * A NUL byte is replaced by a space under both policies (counted in
 * nul_replaced): a backend that dropped NULs could otherwise see a line
 * start where the client sent "\0." (smuggling through a stripping MTA).
 */
#ifndef SMTP_DATA_H
#define SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp_line.h"

enum smtp_newline_policy {
	SMTP_NEWLINE_REJECT = 0,
	SMTP_NEWLINE_NORMALISE,
};

enum smtp_data_kind {
	SMTP_DATA_HEADER,      /* first line of a header field "Name: value" */
	SMTP_DATA_HEADER_CONT, /* folded continuation of the current field */
	SMTP_DATA_EOH,         /* the empty line ending the header section */
	SMTP_DATA_BODY,        /* body line (also: first non-header line when
	                          the header section had no empty line) */
	SMTP_DATA_END,         /* "." CRLF: end of data; nothing written */
	SMTP_DATA_BAD_NEWLINE, /* bare CR or LF under SMTP_NEWLINE_REJECT;
	                          nothing written */
};

/* Per message; zero-initialise at each DATA. */
struct smtp_data {
	bool in_body;          /* header section is over */
	bool implicit_eoh;     /* it ended without an empty line */
	bool continuing;       /* last line was PARTIAL */
	enum smtp_data_kind partial_kind; /* kind of the PARTIAL line */
	uint64_t bytes;        /* content bytes, unstuffed, CRLF counted as 2 */
	uint64_t lines;
	bool after_bare_lf;    /* previous line ended by a bare LF: the next
	                          line does not follow a CRLF, so a "." there
	                          is content, never the end (smuggling) */
	uint64_t nul_replaced; /* NUL bytes sent as spaces */
};

/*
 * smtp_data_line - classify one line (segment) and write its content to
 * out (room for line->len bytes is enough), setting *out_len, and *eol
 * when the line ends with this segment. A PARTIAL segment keeps the kind
 * of the line it starts; CONTINUED segments are never dot-unstuffed nor
 * taken for a header or the end. Nothing is written for END and
 * BAD_NEWLINE.
 */
enum smtp_data_kind smtp_data_line(struct smtp_data *d,
    const struct smtp_line *line, enum smtp_newline_policy policy,
    char *out, size_t *out_len, bool *eol);

/* smtp_header_name_len - length of the field name if line[0..len) starts a
 * header field ("Name:" with printable ASCII name), else 0. */
size_t smtp_header_name_len(const char *line, size_t len);

#endif

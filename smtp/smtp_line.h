/*
 * smtp_line - split an SMTP byte stream into lines.
 *
 * Pure: no I/O, no allocation, no globals. The caller owns the buffer; a
 * returned line is a slice of it. Every irregularity (bare CR, bare LF, NUL,
 * a line longer than the caller's limit) is reported in flags, never
 * silently repaired: what to do with it is the caller's policy (RFC 5321
 * 2.3.8 allows only CRLF as a line terminator).
 */
#ifndef SMTP_LINE_H
#define SMTP_LINE_H

#include <stddef.h>

enum smtp_line_flag {
	SMTP_LINE_CRLF = 1 << 0,      /* ended by CR LF */
	SMTP_LINE_BARE_LF = 1 << 1,   /* ended by an LF without CR before it */
	SMTP_LINE_PARTIAL = 1 << 2,   /* no terminator within max bytes: one
	                                 segment of a longer line */
	SMTP_LINE_BARE_CR = 1 << 3,   /* contains a CR not followed by LF */
	SMTP_LINE_NUL = 1 << 4,       /* contains a NUL byte */
	SMTP_LINE_CONTINUED = 1 << 5, /* continues a PARTIAL segment returned
	                                 by the previous call */
};

/* Zero-initialise; reset with smtp_line_reset() between protocol phases. */
struct smtp_line_reader {
	int continuing; /* previous segment was PARTIAL */
};

struct smtp_line {
	const char *data; /* line content, terminator excluded */
	size_t len;
	unsigned flags;   /* enum smtp_line_flag bits */
};

/*
 * smtp_line_next - take the next line from buf[0..len).
 *
 * Returns the number of bytes consumed (content plus terminator) and fills
 * *line, or 0 when buf holds no complete line yet and len < max (read more).
 * When the first max bytes hold no LF, a PARTIAL segment is returned: max
 * bytes, or max - 1 when the last of them is a CR (it may start a CRLF).
 * A CR at the very end of buf with len < max is not yet judged: returns 0.
 * max must be >= 2.
 */
size_t smtp_line_next(struct smtp_line_reader *r, const char *buf, size_t len,
    size_t max, struct smtp_line *line);

void smtp_line_reset(struct smtp_line_reader *r);

#endif

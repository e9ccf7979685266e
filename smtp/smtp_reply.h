/*
 * smtp_reply - parse the replies of a server (the backend) and build the
 * replies backstop sends. RFC 5321 4.2, RFC 3463 / RFC 2034 enhanced codes.
 *
 * Pure. A parsed reply keeps its lines joined by '\n' (enhanced code removed
 * from each line), so that it can be re-emitted with the same structure.
 */
#ifndef SMTP_REPLY_H
#define SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_REPLY_TEXT_MAX 2048 /* joined text of all lines kept */
#define SMTP_REPLY_LINE_MAX 512  /* RFC 5321 4.5.3.1.5 */
#define SMTP_ESC_MAX 16          /* "5.7.123" and a NUL, with room */

/* One line of a reply: "250-8BITMIME" or "550 5.1.1 No such user". */
struct smtp_reply_line {
	int code;          /* 200..599 */
	bool last;         /* "CODE " rather than "CODE-" */
	char esc[SMTP_ESC_MAX]; /* enhanced code at the start of the text, whose
	                       class matches the code's; "" if none */
	const char *text;  /* after the code, separator and enhanced code */
	size_t text_len;
};

/*
 * smtp_reply_line_parse - parse line[0..len) (no terminator). Returns 0, or
 * -1 for anything that is not a reply line (no 3-digit code in 200..599,
 * bad separator, NUL).
 */
int smtp_reply_line_parse(const char *line, size_t len,
    struct smtp_reply_line *out);

/* A whole, possibly multi-line, reply. Zero-initialise before the first line. */
struct smtp_reply {
	int code;
	char esc[SMTP_ESC_MAX];          /* of the first line that had one */
	char text[SMTP_REPLY_TEXT_MAX];  /* lines joined by '\n', NUL-terminated;
	                                    truncated (not overflowed) when long */
	size_t text_len;
	unsigned nlines;
	bool complete;
};

/*
 * smtp_reply_add - add one parsed line. Returns 1 when the reply is complete
 * (the line was the last), 0 when more lines follow, -1 when the line's code
 * differs from the first line's (a confused server).
 */
int smtp_reply_add(struct smtp_reply *r, const struct smtp_reply_line *line);

/*
 * smtp_reply_format - write a reply to out: one "CODE-ESC text\r\n" line per
 * '\n'-separated line of text, the last with "CODE ESC text\r\n". A NULL esc
 * uses smtp_esc_default(code); an empty one ("") means no enhanced code
 * (the greeting, EHLO keyword lines, 354); an esc whose class differs from the
 * code's class is replaced by the default (one choke point: no reply ever
 * leaves with a mismatched class). Control characters and 8-bit bytes in
 * text are replaced by '?', lines are cut at SMTP_REPLY_LINE_MAX.
 * Returns the number of bytes written (without NUL), or -1 if cap is too small.
 */
long smtp_reply_format(char *out, size_t cap, int code, const char *esc,
    const char *text);

/* smtp_esc_default - "2.0.0", "4.0.0" or "5.0.0" for code's class
 * (3xx gets "" as RFC 3463 codes do not exist for it). */
const char *smtp_esc_default(int code);

/* smtp_esc_valid - "C.SSS.DDD" with C in 2,4,5 and 1-3 digit parts. */
bool smtp_esc_valid(const char *esc, size_t len);

#endif

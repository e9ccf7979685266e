/*
 * smtp_wire - the one writer of message content towards the backend.
 *
 * Every content byte that backstop sends after the backend's 354 passes
 * through one struct smtp_wire: the trace and result header fields the
 * checks add, the Received field, the client's header fields and body,
 * and the final dot. The writer owns line boundaries and dot-stuffing, so
 * no caller can start a line, end a line or end the data except through
 * it (SMTP smuggling, CVE-2023-51764 class):
 *
 *   - text never contains a line break: a CR, LF or NUL handed to
 *     smtp_wire_text() goes out as a space (callers that mean a line
 *     break call smtp_wire_eol(), or smtp_wire_lines() for prepared text);
 *   - a "." at the start of a line is doubled (RFC 5321 4.5.2), whoever
 *     wrote it and however the caller cut the line into pieces;
 *   - smtp_wire_end() closes an open line with CRLF before the ".",
 *     so the end of data is always CRLF "." CRLF and nothing else is.
 *
 * Pure: no I/O. Bytes go to the caller's emit function (a buffer for the
 * backend, later a spool); a non-zero return from emit stops the writer
 * and is returned by every later call.
 */
#ifndef SMTP_WIRE_H
#define SMTP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int (*smtp_wire_emit_fn)(void *ctx, const char *data, size_t len);

struct smtp_wire {
	smtp_wire_emit_fn emit;
	void *ctx;
	bool mid_line;      /* bytes written since the last CRLF */
	bool ended;         /* "." CRLF written: nothing more goes out */
	int error;          /* first non-zero emit result, sticky */
	uint64_t bytes;     /* wire bytes emitted */
	uint64_t replaced;  /* CR, LF or NUL bytes sent as spaces */
};

/* smtp_wire_init - a writer at the start of a line. */
void smtp_wire_init(struct smtp_wire *w, smtp_wire_emit_fn emit, void *ctx);

/* smtp_wire_text - content of the current line (any length, any number of
 * pieces). Returns 0 or the sticky error. */
int smtp_wire_text(struct smtp_wire *w, const char *data, size_t len);

/* smtp_wire_eol - end the current line (CRLF). */
int smtp_wire_eol(struct smtp_wire *w);

/* smtp_wire_lines - prepared text whose lines end in CRLF or LF (header
 * fields built by backstop): each line goes through text + eol. A last
 * line without a terminator is left open. */
int smtp_wire_lines(struct smtp_wire *w, const char *text, size_t len);

/* smtp_wire_end - the end of data: CRLF if a line is open, then "." CRLF. */
int smtp_wire_end(struct smtp_wire *w);

#endif

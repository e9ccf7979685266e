/*
 * smtp_fields - header fields of a message in DATA, assembled whole and
 * judged whole before any byte of them goes out.
 *
 * The DATA scanner (smtp_data.h) hands over a header section in pieces:
 * lines, segments of lines longer than its segment size, folded
 * continuation lines. A check must judge a whole field, never a piece
 * (judging pieces let a removed piece make the next one start a line at
 * the backend: the smuggling of the forged Authentication-Results removal).
 * So each field is collected here, up to max bytes, then judged once:
 * kept, it goes to the one content writer (smtp_wire) as prepared lines;
 * dropped, all of it is gone. A field longer than max is judged on its
 * first max bytes (name and first line) and that verdict covers the rest,
 * which then passes (or is dropped) piece by piece as it comes: memory
 * stays bounded, and the writer still owns every line start.
 *
 * No I/O. The buffer grows up to max (malloc); smtp_fields_free() frees it.
 */
#ifndef SMTP_FIELDS_H
#define SMTP_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/smtp_wire.h"

/* judge - keep (true) or drop the field in field[0..len): its content as
 * received, un-dot-stuffed, CRLF between (and after) its lines; cut when
 * it is only the first max bytes of a longer field. */
typedef bool (*smtp_field_judge_fn)(void *ctx, const char *field, size_t len, bool cut);

enum smtp_field_state {
	SMTP_FIELD_NONE = 0,
	SMTP_FIELD_COLLECTING,  /* held whole until it ends */
	SMTP_FIELD_PASSING,     /* over max, judged and kept: the rest goes out */
	SMTP_FIELD_DROPPING,    /* judged and removed: so is the rest */
};

struct smtp_fields {
	char *buf;
	size_t len, size, max;
	enum smtp_field_state state;
	bool oom;               /* memory ran out: the caller refuses the message */
	struct smtp_wire *wire;
	smtp_field_judge_fn judge;
	void *ctx;
};

void smtp_fields_init(struct smtp_fields *f, size_t max, struct smtp_wire *wire,
    smtp_field_judge_fn judge, void *ctx);

/* smtp_fields_start - a new field begins (the scanner's SMTP_DATA_HEADER at
 * the start of a line): the previous one is finished first. */
void smtp_fields_start(struct smtp_fields *f);

/* smtp_fields_add - a piece of the current field (a segment of its line or
 * a continuation line); eol when its line ends with it. Returns false when
 * there is no current field (the caller writes the piece as content). */
bool smtp_fields_add(struct smtp_fields *f, const char *data, size_t len, bool eol);

/* smtp_fields_finish - the current field is over (next field, the end of
 * the header section, or the end of data): judge and write it. */
void smtp_fields_finish(struct smtp_fields *f);

void smtp_fields_free(struct smtp_fields *f);

#endif

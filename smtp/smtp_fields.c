/*
 * smtp_fields - whole header fields for the checks; see smtp_fields.h.
 */
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_fields.h"

void smtp_fields_init(struct smtp_fields *f, size_t max, struct smtp_wire *wire,
    smtp_field_judge_fn judge, void *ctx)
{
	char *keep = f->buf;
	size_t size = f->size;

	memset(f, 0, sizeof *f);
	f->buf = keep;      /* the storage is reused from message to message */
	f->size = size;
	f->max = max;
	f->wire = wire;
	f->judge = judge;
	f->ctx = ctx;
}

static bool append(struct smtp_fields *f, const char *data, size_t len)
{
	if (len == 0)
		return true;
	if (f->len + len > f->size) {
		size_t nsize = f->size ? f->size : 1024;
		char *p;
		while (nsize < f->len + len)
			nsize *= 2;
		if (nsize > f->max)
			nsize = f->max;
		if ((p = realloc(f->buf, nsize)) == NULL) {
			f->oom = true;
			return false;
		}
		f->buf = p;
		f->size = nsize;
	}
	memcpy(f->buf + f->len, data, len);
	f->len += len;
	return true;
}

void smtp_fields_finish(struct smtp_fields *f)
{
	if (f->state == SMTP_FIELD_COLLECTING && f->judge(f->ctx, f->buf, f->len, false))
		smtp_wire_lines(f->wire, f->buf, f->len);
	f->state = SMTP_FIELD_NONE;
	f->len = 0;
}

void smtp_fields_start(struct smtp_fields *f)
{
	smtp_fields_finish(f);
	f->state = SMTP_FIELD_COLLECTING;
}

bool smtp_fields_add(struct smtp_fields *f, const char *data, size_t len, bool eol)
{
	if (f->state == SMTP_FIELD_NONE)
		return false;
	if (f->state == SMTP_FIELD_COLLECTING) {
		if (f->len + len + 2 <= f->max) {
			if (append(f, data, len) && eol)
				append(f, "\r\n", 2);
			return true;
		}
		/* Too long to hold whole: fill the buffer, judge the field on
		 * that (its name and first line), and let that decide for all
		 * of it. */
		size_t take = f->max > f->len ? f->max - f->len : 0;
		if (take > len)
			take = len;
		append(f, data, take);
		data += take;
		len -= take;
		if (f->judge(f->ctx, f->buf, f->len, true)) {
			f->state = SMTP_FIELD_PASSING;
			smtp_wire_lines(f->wire, f->buf, f->len);
		} else {
			f->state = SMTP_FIELD_DROPPING;
		}
		f->len = 0;
	}
	if (f->state == SMTP_FIELD_PASSING) {
		/* pieces of a kept field: the writer decides where lines start */
		smtp_wire_text(f->wire, data, len);
		if (eol)
			smtp_wire_eol(f->wire);
	}
	return true;
}

void smtp_fields_free(struct smtp_fields *f)
{
	free(f->buf);
	f->buf = NULL;
	f->len = f->size = 0;
	f->state = SMTP_FIELD_NONE;
}

/* buf - bounded byte buffers; see buf.h. */
#include <stdlib.h>
#include <string.h>

#include "proxy/buf.h"

int buf_reserve(struct buf *b, size_t extra, size_t limit)
{
	size_t want, nsize;
	char *p;

	if (extra > limit || b->len > limit - extra)
		return -1;
	want = b->len + extra;
	if (want <= b->size)
		return 0;
	nsize = b->size ? b->size : 256;
	while (nsize < want)
		nsize *= 2;
	if (nsize > limit)
		nsize = limit;
	if ((p = realloc(b->data, nsize)) == NULL)
		return -1;
	b->data = p;
	b->size = nsize;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t len, size_t limit)
{
	if (len == 0)
		return 0;   /* memcpy(NULL, ..., 0) is undefined (C17 7.24.1) */
	if (buf_reserve(b, len, limit) < 0)
		return -1;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

char *buf_steal(struct buf *b, size_t *len)
{
	char *p = b->data;
	*len = b->len;
	b->data = NULL;
	b->len = b->size = 0;
	return p;
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->size = 0;
}

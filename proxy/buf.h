/*
 * buf - a byte buffer with a hard capacity limit: every append says how much
 * may be held, so no peer can make a session grow without bound.
 */
#ifndef BUF_H
#define BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t len;   /* bytes held, from data[0] */
	size_t size;  /* bytes allocated */
};

/* buf_reserve - make room for extra more bytes, never growing beyond limit.
 * Returns 0, or -1 when len + extra > limit or memory is short. */
int buf_reserve(struct buf *b, size_t extra, size_t limit);
int buf_append(struct buf *b, const void *data, size_t len, size_t limit);
/* buf_consume - drop n bytes from the front. */
void buf_consume(struct buf *b, size_t n);
/* buf_steal - hand the storage over to the caller (e.g. a write request),
 * leaving b empty. */
char *buf_steal(struct buf *b, size_t *len);
void buf_free(struct buf *b);

#endif

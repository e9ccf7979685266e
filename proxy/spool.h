/*
 * spool - where a held message waits for its end of data.
 *
 * A message that a check must see whole before the backend does (DKIM,
 * DMARC: their results go in a header field on top) is held: its wire form
 * is kept in memory up to mem_max bytes, then in an unlinked temporary
 * file (O_TMPFILE, or unlink right after open) under the spool directory,
 * mode 0600. Nothing survives a crash by design: a message no one was told
 * 250 for is the client's to send again.
 *
 * The bytes on disk of every spool in the process are counted against one
 * limit (spool_max): a transaction that would go over it is told 452 at
 * DATA. Loop thread only (local disk I/O on the loop, like nginx's
 * temporary files: page-cached and bounded per write).
 */
#ifndef SPOOL_H
#define SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/buf.h"

struct spool {
	struct buf mem;         /* the first mem_max bytes */
	size_t mem_max;
	bool file;              /* fd is open: the message outgrew memory
	                           (a zeroed struct spool is a valid, empty one) */
	int fd;
	uint64_t file_bytes;    /* bytes in the file (counted in the total),
	                           wbuf's included */
	char *wbuf;             /* file bytes not written yet: small appends
	                           (a line at a time) reach the file in
	                           writes of SPOOL_WRITE_CHUNK */
	size_t wlen;
	const char *dir;
	int error;              /* errno of the first failure, sticky */
};

/* spool_open - an empty spool; nothing is allocated until written. */
void spool_open(struct spool *sp, const char *dir, size_t mem_max);

/* spool_write - append; 0, or -1 (sp->error says why: ENOSPC also when
 * the process-wide limit is reached). */
int spool_write(struct spool *sp, const char *data, size_t len);

/* spool_size - bytes held, memory and file. */
uint64_t spool_size(const struct spool *sp);

/* spool_read - copy up to len bytes from offset; bytes read, or -1. */
long spool_read(struct spool *sp, uint64_t offset, char *out, size_t len);

/* spool_close - free memory, close (and so remove) the file. */
void spool_close(struct spool *sp);

/* The process-wide limit on bytes in spool files, and what is in use. */
void spool_set_limit(uint64_t max_bytes);
uint64_t spool_bytes_in_use(void);
/* spool_has_room - may a new transaction be held? (below the limit) */
int spool_has_room(void);

#endif

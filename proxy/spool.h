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
 * The bytes on disk of every spool of a loop are counted against its
 * budget (struct spool_budget, in proxy's struct worker): [limits]
 * spool_max is per worker process, so with [server] workers = N the disk
 * bound is N x spool_max. A transaction that finds the budget spent is
 * told 452 at DATA. Loop thread only (local disk I/O on the loop, like nginx's
 * temporary files: page-cached and bounded per write).
 */
#ifndef SPOOL_H
#define SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/buf.h"

/* What the spool files of one loop may hold on disk, and hold now. */
struct spool_budget {
	uint64_t in_use;        /* bytes in the loop's spool files */
	uint64_t limit;         /* [limits] spool_max */
};

struct spool {
	struct spool_budget *budget;  /* the loop's, counted in; NULL only in a
	                           zeroed spool, which never reaches a file */
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

/* spool_budget_init - an empty budget without a limit (until set). */
void spool_budget_init(struct spool_budget *b);

/* spool_budget_set_limit - [limits] spool_max, at start-up and reload. */
void spool_budget_set_limit(struct spool_budget *b, uint64_t max_bytes);

/* spool_budget_has_room - may a new transaction be held? (below the limit) */
bool spool_budget_has_room(const struct spool_budget *b);

/* spool_open - an empty spool whose file bytes count against budget
 * (which must outlive it); nothing is allocated until written. */
void spool_open(struct spool *sp, struct spool_budget *budget, const char *dir, size_t mem_max);

/* spool_write - append; 0, or -1 (sp->error says why: ENOSPC also when
 * the budget's limit is reached). */
int spool_write(struct spool *sp, const char *data, size_t len);

/* spool_size - bytes held, memory and file. */
uint64_t spool_size(const struct spool *sp);

/* spool_read - copy up to len bytes from offset; bytes read, or -1. */
long spool_read(struct spool *sp, uint64_t offset, char *out, size_t len);

/* spool_close - free memory, close (and so remove) the file. */
void spool_close(struct spool *sp);

#endif

/*
 * spool - held messages: memory first, then an unlinked file; see spool.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* O_TMPFILE, mkostemp */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxy/log.h"
#include "proxy/spool.h"

void spool_budget_init(struct spool_budget *b)
{
	b->in_use = 0;
	b->limit = UINT64_MAX;
}

void spool_budget_set_limit(struct spool_budget *b, uint64_t max_bytes)
{
	b->limit = max_bytes;
}

bool spool_budget_has_room(const struct spool_budget *b)
{
	return b->in_use < b->limit;
}

void spool_open(struct spool *sp, struct spool_budget *budget, const char *dir, size_t mem_max)
{
	memset(sp, 0, sizeof *sp);
	sp->budget = budget;
	sp->dir = dir;
	sp->mem_max = mem_max;
}

/* file_open - an anonymous file in dir: O_TMPFILE where the file system
 * has it, else a named one unlinked at once. Mode 0600 either way. */
static int file_open(const char *dir)
{
	char path[4096];
	int fd;

#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC | O_EXCL, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -1;
#endif
	if (snprintf(path, sizeof path, "%s/backstop-spool.XXXXXX", dir) >= (int)sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);   /* gone from the directory; ours until close */
	return fd;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

#define SPOOL_WRITE_CHUNK 16384

static int wbuf_flush(struct spool *sp)
{
	if (sp->wlen > 0 && write_all(sp->fd, sp->wbuf, sp->wlen) < 0) {
		sp->error = errno ? errno : EIO;
		log_warn("spool: write failed in %s: %s", sp->dir, strerror(sp->error));
		return -1;
	}
	sp->wlen = 0;
	return 0;
}

int spool_write(struct spool *sp, const char *data, size_t len)
{
	if (sp->error)
		return -1;
	if (len == 0)
		return 0;
	if (!sp->file && sp->mem.len + len <= sp->mem_max) {
		if (buf_append(&sp->mem, data, len, sp->mem_max) < 0) {
			sp->error = ENOMEM;
			return -1;
		}
		return 0;
	}
	if (sp->budget == NULL || sp->dir == NULL) {
		sp->error = EINVAL;   /* a zeroed spool: memory only */
		return -1;
	}
	if (sp->budget->in_use + len > sp->budget->limit) {
		sp->error = ENOSPC;
		return -1;
	}
	if (!sp->file) {
		if ((sp->fd = file_open(sp->dir)) < 0) {
			sp->error = errno;
			log_warn("spool: cannot create a file in %s: %s", sp->dir, strerror(sp->error));
			return -1;
		}
		sp->wbuf = malloc(SPOOL_WRITE_CHUNK);
		if (sp->wbuf == NULL) {
			close(sp->fd);
			sp->error = ENOMEM;
			return -1;
		}
		sp->wlen = 0;
		sp->file = true;
	}
	if (sp->wlen + len > SPOOL_WRITE_CHUNK && wbuf_flush(sp) < 0)
		return -1;
	if (len >= SPOOL_WRITE_CHUNK) {
		if (write_all(sp->fd, data, len) < 0) {
			sp->error = errno ? errno : EIO;
			log_warn("spool: write failed in %s: %s", sp->dir, strerror(sp->error));
			return -1;
		}
	} else {
		memcpy(sp->wbuf + sp->wlen, data, len);
		sp->wlen += len;
	}
	sp->file_bytes += len;
	sp->budget->in_use += len;
	return 0;
}

uint64_t spool_size(const struct spool *sp)
{
	return sp->mem.len + sp->file_bytes;
}

long spool_read(struct spool *sp, uint64_t offset, char *out, size_t len)
{
	size_t done = 0;

	if (offset < sp->mem.len) {
		size_t n = sp->mem.len - (size_t)offset;
		if (n > len)
			n = len;
		memcpy(out, sp->mem.data + offset, n);
		done = n;
		offset += n;
	}
	if (done < len && sp->file && offset - sp->mem.len < sp->file_bytes) {
		if (wbuf_flush(sp) < 0)
			return -1;
		uint64_t foff = offset - sp->mem.len;
		size_t want = len - done;
		if (want > sp->file_bytes - foff)
			want = (size_t)(sp->file_bytes - foff);
		while (want > 0) {
			ssize_t n = pread(sp->fd, out + done, want, (off_t)foff);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return -1;
			done += (size_t)n;
			foff += (uint64_t)n;
			want -= (size_t)n;
		}
	}
	return (long)done;
}

void spool_close(struct spool *sp)
{
	buf_free(&sp->mem);
	if (sp->file)
		close(sp->fd);
	free(sp->wbuf);
	sp->wbuf = NULL;
	sp->wlen = 0;
	sp->file = false;
	if (sp->budget != NULL)
		sp->budget->in_use -= sp->file_bytes;
	sp->file_bytes = 0;
}

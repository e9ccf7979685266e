/*
 * bounce_feed.h - feeds a stored message (a file's bytes) to the bounce
 * classifier as the proxy does: header fields whole (folding kept, no
 * final CRLF), the end of the header section, then the body in chunks.
 * Shared by test_bounce, test_bounce_corpus and fuzz_bounce.
 *
 * Stored mail has LF line ends (mbox, maildir): they are turned into CRLF,
 * as SMTP carries them; an mbox "From " line at the top is dropped.
 */
#ifndef BOUNCE_FEED_H
#define BOUNCE_FEED_H

#include <stdlib.h>
#include <string.h>

#include "smtp/bounce.h"

/* to_crlf - a malloc'd copy with every LF (bare or after CR) as CRLF. */
static inline char *to_crlf(const char *in, size_t n, size_t *outlen)
{
	char *out = malloc(n * 2 + 1);
	size_t o = 0;
	if (!out)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = in[i];
	}
	*outlen = o;
	return out;
}

/* feed_message_split - msg (CRLF) to s: fields, eoh, then the body in
 * chunks whose sizes are 1 + pattern[k] cycling over pattern (plen > 0),
 * or chunk bytes (pattern NULL; 0: all at once). The body starts after the
 * first empty line. The Return-Path field's address goes to rp (cap bytes)
 * when rp is not NULL: the envelope sender the final MTA recorded;
 * rp_found tells whether there was one. */
static inline void feed_message_split(struct bounce_scan *s, const char *msg, size_t n,
    size_t chunk, const unsigned char *pattern, size_t plen, char *rp, size_t cap, int *rp_found)
{
	size_t i = 0;
	if (rp_found)
		*rp_found = 0;
	if (n >= 5 && memcmp(msg, "From ", 5) == 0) {
		const char *nl = memchr(msg, '\n', n);
		i = nl ? (size_t)(nl - msg) + 1 : n;
	}
	while (i < n) {
		/* one field: a line and its continuation lines */
		size_t start = i, end;
		if (msg[i] == '\r' && i + 1 < n && msg[i + 1] == '\n') {
			i += 2;
			break;      /* the empty line */
		}
		for (;;) {
			const char *nl = memchr(msg + i, '\n', n - i);
			end = nl ? (size_t)(nl - msg) + 1 : n;
			i = end;
			if (i >= n || (msg[i] != ' ' && msg[i] != '\t'))
				break;
		}
		size_t flen = end - start;
		if (flen >= 2 && msg[end - 2] == '\r' && msg[end - 1] == '\n')
			flen -= 2;
		else if (flen >= 1 && msg[end - 1] == '\n')
			flen -= 1;
		bounce_scan_header(s, msg + start, flen);
		if (rp && rp_found && !*rp_found && flen > 12 &&
		    strncasecmp(msg + start, "Return-Path:", 12) == 0) {
			const char *lt = memchr(msg + start, '<', flen), *gt;
			*rp_found = 1;
			rp[0] = '\0';
			if (lt && (gt = memchr(lt, '>', (size_t)(msg + start + flen - lt))) &&
			    (size_t)(gt - lt - 1) < cap) {
				memcpy(rp, lt + 1, (size_t)(gt - lt - 1));
				rp[gt - lt - 1] = '\0';
			}
		}
	}
	bounce_scan_eoh(s);
	if (chunk == 0)
		chunk = n;
	for (size_t k = 0; i < n; k++) {
		size_t want = pattern && plen ? 1 + (size_t)pattern[k % plen] : chunk;
		size_t c = n - i < want ? n - i : want;
		bounce_scan_body(s, msg + i, c);
		i += c;
	}
}

static inline void feed_message(struct bounce_scan *s, const char *msg, size_t n, size_t chunk,
    char *rp, size_t cap, int *rp_found)
{
	feed_message_split(s, msg, n, chunk, NULL, 0, rp, cap, rp_found);
}

#endif

/*
 * report_reader - the input side of `backstop report`: a streaming line
 * reader with a bounded line buffer, and a parser that takes one log line
 * and says whether it is a "bounce_refused" record (filters/bounce_record.h)
 * and what it holds. No allocation per line; the log is hostile (its
 * strings are what spammers wrote), so every field is cut to its buffer and
 * every malformed line is skipped, never half-read.
 *
 * Accepted lines: one JSON object ([log] format = json), optionally after a
 * syslog or journal prefix (anything before the first '{'); trailing blanks
 * allowed. Nesting deeper than REPORT_JSON_DEPTH, invalid escapes, raw
 * control characters in strings, anything after the object: the line is
 * malformed. String escapes are decoded to UTF-8 (a \u0000 or an unpaired
 * surrogate becomes U+FFFD, so a value never holds a NUL).
 */
#ifndef REPORT_READER_H
#define REPORT_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define REPORT_LINE_MAX (64 * 1024)  /* a longer line is skipped whole */
#define REPORT_JSON_DEPTH 16
#define REPORT_URL_HOSTS 8
#define REPORT_HOST_MAX 128

struct report_event {
	long long ts;                  /* unix seconds of "ts", -1 when missing or invalid */
	char server_ip[64];            /* the bouncing server */
	char server_name[256];
	char rcpt[256];
	char cls[16];
	char orig_sender[256];
	char orig_client_ip[64];       /* the zombie: the original's entry MTA's client */
	char subject[256];
	char message_id[256];
	size_t nurl_hosts;
	char url_hosts[REPORT_URL_HOSTS][REPORT_HOST_MAX];
};

enum report_line_kind {
	REPORT_LINE_RECORD = 0,   /* a bounce_refused record: ev is filled */
	REPORT_LINE_OTHER,        /* valid JSON, another event */
	REPORT_LINE_MALFORMED,    /* no JSON object, or invalid JSON */
};

/* report_parse_line - line[0..len) (no line end needed; NUL allowed) */
enum report_line_kind report_parse_line(const char *line, size_t len, struct report_event *ev);

/* report_parse_time - "2026-12-07T03:40:46.123Z", "2026-12-07T03:40:46Z",
 * "2026-12-07T03:40", "2026-12-07" (UTC) or "@SECONDS" to unix seconds;
 * false when s is none of those. */
bool report_parse_time(const char *s, size_t len, long long *out);

#define REPORT_READ_CHUNK (256 * 1024)

/* zeroed, then f set; for the next file, f and the chunk state reset
 * (report_reader_reset) */
struct report_reader {
	FILE *f;
	char buf[REPORT_LINE_MAX + 2];
	char chunk[REPORT_READ_CHUNK];  /* read ahead: fread, then memchr for line ends */
	size_t pos, fill;
	unsigned long long lines;       /* lines read */
	unsigned long long long_lines;  /* skipped: longer than REPORT_LINE_MAX */
};

/* report_reader_next - the next line of r->f without its line end, into
 * line and len (valid until the next call); false at the end of the file or
 * on a read error (ferror(r->f) tells). */
bool report_reader_next(struct report_reader *r, const char **line, size_t *len);
/* report_reader_reset - read from f next (the counts stay) */
void report_reader_reset(struct report_reader *r, FILE *f);

#endif

/*
 * log_json - JSON text for the log: a string escaper and a record builder
 * that writes one record in both log forms at once. I/O-free (unit tests,
 * tests/fuzz/fuzz_log_json.c).
 *
 * Escaping (json_escape): '"' and '\' get a backslash; C0 controls, DEL,
 * the C1 controls U+0080..U+009F and U+2028/U+2029 are written \u00XX /
 * \u2028; other valid UTF-8 (shortest form, no surrogates, at most
 * U+10FFFF) is copied as is; every byte that is not part of valid UTF-8 is
 * replaced by U+FFFD, written "\ufffd". The output therefore never holds a
 * control character or a raw newline, and a client's text cannot end the
 * string it is in: it cannot add keys or start a second line.
 */
#ifndef LOG_JSON_H
#define LOG_JSON_H

#include <stdbool.h>
#include <stddef.h>

/*
 * json_escape - in[0..len) as the inside of a JSON string (no quotes) into
 * out (cap bytes, always NUL-terminated when cap > 0). Stops before an
 * escape or character that would not fit whole; *consumed (may be NULL)
 * says how many input bytes were written. Returns the bytes written.
 */
size_t json_escape(char *out, size_t cap, const char *in, size_t len, size_t *consumed);

/*
 * log_escape - copy untrusted bytes for a text log line: printable ASCII
 * kept, everything else (and '\\') as \xHH; cut at cap-1 with "..." when
 * longer. Returns out.
 */
char *log_escape(const char *in, size_t len, char *out, size_t cap);

/* log_escape_field - log_escape, and the text summary's delimiters too
 * (space < > [ ] = ,) as \xHH: a value between them cannot fake a field. */
char *log_escape_field(const char *in, size_t len, char *out, size_t cap);

#define LOG_REC_DEPTH 4

/*
 * log_rec - one record built once for both forms: the human text (the
 * "msg", and the whole line in text format) and, when json is given, the
 * object's members (without braces). Text is cut silently at its capacity;
 * a JSON member, array element or object entry that does not fit is left
 * out whole (json_cut is set), so the members always form valid JSON.
 */
struct log_rec {
	char *text;
	size_t text_cap, text_len;
	char *json;               /* NULL: text only */
	size_t json_cap, json_len;
	bool json_cut;            /* something was left out */
	int depth;                /* open arrays and objects */
	int skip;                 /* open containers that were left out */
	bool comma[LOG_REC_DEPTH + 1];   /* a value was written at this depth */
	char close[LOG_REC_DEPTH + 1];   /* ']' or '}' of the container at a depth */
};

void log_rec_init(struct log_rec *r, char *text, size_t text_cap, char *json, size_t json_cap);

/* text form only: literal text, or printf */
void log_rec_text(struct log_rec *r, const char *s);
void log_rec_textf(struct log_rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_REC_VERBATIM 0   /* text_max: the value is ours or escaped already */

/*
 * log_rec_str - a string field: text form pre + value escaped with
 * log_escape_field (cap text_max, or as is with LOG_REC_VERBATIM) + post; JSON
 * "key":"value" from the raw bytes. A NULL value is JSON null and text "".
 * key NULL: text only; pre and post NULL: JSON only.
 */
void log_rec_str(struct log_rec *r, const char *pre, const char *key, const char *value,
    size_t text_max, const char *post);
/* log_rec_uint - a number: text pre + decimal + post, JSON "key":N. */
void log_rec_uint(struct log_rec *r, const char *pre, const char *key, unsigned long long v,
    const char *post);
/* log_rec_null - JSON "key":null (the key is always present: stable keys). */
void log_rec_null(struct log_rec *r, const char *key);
void log_rec_bool(struct log_rec *r, const char *key, bool v);

/* Arrays and objects (JSON only; the text form is written by the caller).
 * begin writes "key":[ or "key":{ (key NULL inside an array); end closes
 * it. An element that does not fit is dropped; begin reserves the room for
 * its end. */
void log_rec_array_begin(struct log_rec *r, const char *key);
void log_rec_object_begin(struct log_rec *r, const char *key);
void log_rec_end(struct log_rec *r);

/*
 * log_rec_checks - the per-check results "spf=pass batv=fail(no_tag)" as
 * the JSON object "key":{"spf":"pass","batv":"fail(no_tag)"}; a check
 * named twice gets its values joined by a space; a name with other
 * characters than letters, digits, '_', '-', '.' is left out (two
 * such names could be one key once escaped). The text form gets pre +
 * notes + post as they are.
 */
void log_rec_checks(struct log_rec *r, const char *pre, const char *key, const char *notes,
    const char *post);

/*
 * json_envelope - a whole JSON log line: {"ts":..,"level":..,"pid":..,
 * "event":..,"session":..|null,"msg":..[,members]}\n into out. members
 * that do not fit are replaced by "truncated":true. Returns the length
 * (always a complete line when cap >= 256), or 0 if cap is too small.
 */
size_t json_envelope(char *out, size_t cap, const char *ts, const char *level, long pid,
    const char *event, const char *session, const char *msg, const char *members);

/*
 * log_event_name - a stable event name from a printf format (never from
 * its arguments, so a client cannot choose it): a leading "%s: " (the
 * session id) is skipped, then the first words (letters, digits, '-',
 * '_', at most 4 words, 40 bytes) up to any other character, lowercased,
 * words joined by '_'. "%s: connect from [%s]:%u" gives "connect_from",
 * "%s: batv: ..." gives "batv". "log" when nothing is left.
 */
void log_event_name(const char *fmt, char *out, size_t cap);

#endif

/*
 * mime - a streaming, bounded MIME walker (RFC 2045, 2046, 5322), no I/O.
 *
 * Fed the top-level header fields whole (as the proxy's filters get them),
 * then the body in chunks split anywhere, it walks the entity tree as the
 * bytes pass: multiparts by their boundaries, message/rfc822 and
 * message/global by their embedded header section, and hands the user
 * (callbacks) every header field of every entity and, for the parts the
 * user asks for, their content decoded (base64, quoted-printable) line by
 * line. Nothing is kept of a part it was not asked to decode: a 20 MB
 * base64 attachment only costs a scan for line ends and boundaries.
 *
 * Bounded: nesting depth, part count, boundary length (70, RFC 2046 5.1.1),
 * header field length (a longer one is handed over cut), decoded bytes per
 * part, line length (longer lines come in pieces). Whatever goes past a
 * bound is skipped and flagged (mime_flags), never buffered. Memory per
 * walker: one struct of about 10 KiB (a frame stack of MIME_DEPTH_MAX + 1
 * entries, two line buffers) plus one field buffer of max_field bytes (16
 * KiB by default): 26 KiB measured, whatever the input. Time: linear in
 * the input (every byte is looked at a bounded number of times: once for
 * the line end, at most depth boundary comparisons per line that starts
 * with "--").
 *
 * The same bytes give the same events whatever the chunk split: lines are
 * cut into pieces at fixed offsets from their start, never at chunk ends.
 */
#ifndef SMTP_MIME_H
#define SMTP_MIME_H

#include <stdbool.h>
#include <stddef.h>

#define MIME_DEPTH_DEFAULT 8          /* nesting: the message is depth 0 */
#define MIME_DEPTH_MAX 32             /* the frame stack's size: limits above are clamped */
#define MIME_PARTS_DEFAULT 256        /* entities announced, the message included */
#define MIME_BOUNDARY_MAX 70          /* RFC 2046 5.1.1 */
#define MIME_FIELD_DEFAULT 16384      /* a header field, whole (folding kept) */
#define MIME_TEXT_DEFAULT 65536       /* decoded bytes handed over per part */
#define MIME_LINE_MAX 1000            /* longer lines (raw or decoded) come in pieces */

enum mime_encoding {
	MIME_ENC_7BIT = 0,  /* also 8bit, binary, and no Content-Transfer-Encoding */
	MIME_ENC_BASE64,
	MIME_ENC_QP,
	MIME_ENC_UNKNOWN,   /* an encoding we cannot decode: content handed over as is */
};

/* mime_flags: what went past a bound or was broken (cumulative). */
enum {
	MIME_F_DEPTH = 1 << 0,      /* an entity deeper than max_depth was skipped */
	MIME_F_PARTS = 1 << 1,      /* entities past max_parts were skipped */
	MIME_F_FIELD_CUT = 1 << 2,  /* a header field longer than max_field was cut */
	MIME_F_BOUNDARY = 1 << 3,   /* a multipart without a usable boundary (missing,
	                               longer than 70): its content was skipped */
	MIME_F_UNCLOSED = 1 << 4,   /* a multipart never closed ("--b--" missing) */
	MIME_F_ENCODING = 1 << 5,   /* broken base64 or quoted-printable */
	MIME_F_TEXT_CUT = 1 << 6,   /* a part decoded past max_text: the rest skipped */
	MIME_F_LONG_LINE = 1 << 7,  /* a line longer than MIME_LINE_MAX (RFC 5322: 998) */
};

/* One entity (the message, a part, an encapsulated message), as far as its
 * header section told. Valid during the callback only. */
struct mime_part {
	unsigned depth;          /* 0 = the message; one more per multipart or message/rfc822 level */
	unsigned index;          /* order of appearance, the message is 0 */
	unsigned msg_depth;      /* message/rfc822 or message/global levels above: 0 = the message's
	                            own parts, 1 = parts of an attached message, ... */
	bool message_top;        /* the top entity of a message: the message itself or the content of
	                            a message/rfc822 (its header fields are a message's fields) */
	char type[64];           /* "type/subtype", lowercased; text/plain when absent or invalid,
	                            message/rfc822 in a multipart/digest */
	char report_type[40];    /* multipart/report's report-type parameter, lowercased */
	enum mime_encoding encoding;
	const struct mime_part *parent;  /* NULL for the message */
};

struct mime_callbacks {
	/* header - one header field of entity p, whole ("Name: value", inner CRLF
	 * folding kept, no final CRLF), cut to max_field when longer. For the
	 * message's own fields, called from mime_header(). p's type is not known
	 * yet (the section is not over). May be NULL. */
	void (*header)(void *ctx, const struct mime_part *p, const char *field, size_t len, bool cut);
	/* part_begin - p's header section is over. Return true to get its content
	 * decoded line by line. Multiparts and unencoded message/rfc822 parts are
	 * walked into whatever it returns (their content is entities, not lines).
	 * May be NULL (nothing decoded). */
	bool (*part_begin)(void *ctx, const struct mime_part *p);
	/* line - a decoded line of p without its line end (CRLF or LF); a line
	 * longer than MIME_LINE_MAX comes as several calls. May contain NUL. */
	void (*line)(void *ctx, const struct mime_part *p, const char *line, size_t len);
	/* part_end - p is over (its boundary, an outer boundary, or the end). */
	void (*part_end)(void *ctx, const struct mime_part *p);
};

struct mime_limits {
	unsigned max_depth;   /* 0 = MIME_DEPTH_DEFAULT; at most MIME_DEPTH_MAX */
	unsigned max_parts;   /* 0 = MIME_PARTS_DEFAULT */
	size_t max_field;     /* 0 = MIME_FIELD_DEFAULT; at least 256 */
	size_t max_text;      /* 0 = MIME_TEXT_DEFAULT */
};

struct mime_walker;

/* mime_walker_new - NULL when out of memory. limits may be NULL. */
struct mime_walker *mime_walker_new(const struct mime_limits *limits,
    const struct mime_callbacks *cb, void *ctx);
/* mime_header - one top-level field, whole, as mime_callbacks.header describes. */
void mime_header(struct mime_walker *w, const char *field, size_t len);
/* mime_eoh - the end of the top-level header section. */
void mime_eoh(struct mime_walker *w);
/* mime_body - body bytes, any split (CRLF line ends; a bare LF ends a line too). */
void mime_body(struct mime_walker *w, const char *data, size_t len);
/* mime_end - the end of data: every open entity ends. */
void mime_end(struct mime_walker *w);
unsigned mime_flags(const struct mime_walker *w);
unsigned mime_parts(const struct mime_walker *w);   /* entities announced */
void mime_walker_free(struct mime_walker *w);

/* mime_field_name_is - whether field ("Name: ...") has this name (ASCII case-insensitive). */
bool mime_field_name_is(const char *field, size_t len, const char *name);
/* mime_field_value - the value after the colon, leading whitespace skipped; NULL when no colon. */
const char *mime_field_value(const char *field, size_t len, size_t *vlen);

#endif

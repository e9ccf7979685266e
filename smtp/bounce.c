/*
 * bounce - classifier and original extraction (see bounce.h).
 *
 * How the class is decided (bounce_scan_end), strongest evidence first:
 *
 * 1. Structure. A multipart/report among the message's own parts (not
 *    inside an attached message: a forwarded bounce is ordinary mail) with
 *    report-type delivery-status, feedback-report or disposition-
 *    notification, or a message/(global-)delivery-status, message/feedback-
 *    report, message/disposition-notification part: DSN, ARF, MDN, in that
 *    order (a delivery status wins: one more part must not turn a forged
 *    DSN into a read receipt). Machines write these; a person forwarding
 *    one attaches it as message/rfc822, where it does not count. An MDN or
 *    ARF is also checked for the parts and fields its RFC requires
 *    (bounce_result.well_formed); a label alone makes the class, not a
 *    well-formed report.
 * 2. Challenge: a challenge header (X-Challenge, X-TMDA, X-Spamarrest,
 *    X-Boxbe) or challenge phrases in the text with an automatic sender.
 * 3. Non-delivery score: several independent signals must agree, because
 *    each alone is in ordinary mail now and then:
 *      null envelope sender                               3
 *      daemon sender (MAILER-DAEMON@, postmaster@, "Mail Delivery System") 3
 *      bounce subject ("Undelivered Mail Returned to Sender", ...)  3
 *        (0 when it starts with Re:/Fwd:/AW:/WG:...: a person answering or
 *        forwarding a bounce writes ordinary mail)
 *      X-Failed-Recipients, X-MS-Exchange-Message-Is-NDR  4
 *      the explanation an MTA writes ("This is the mail system at host",
 *        "Hi. This is the qmail-send program", ...), unquoted    3
 *      delivery-status fields in the text (Final-Recipient:, Status: 5.)  3
 *      SMTP error texts ("550 5.1.1", "User unknown")          1
 *      an original attached or quoted ("This is a copy of the message") 1
 *    NDR when the score reaches 6 and at least one signal is not about the
 *    sender: a person (3 at most from the subject alone, 4 with a pasted
 *    copy) stays ordinary; MAILER-DAEMON with a bounce subject, or an
 *    unknown sender with subject, explanation and copy, does not. Never
 *    a mailing list's post (List-Id, List-Post, List-Unsubscribe) whose
 *    envelope sender is not null and neither sender is a daemon: members
 *    paste bounces to ask about them.
 * 4. Auto-reply: Auto-Submitted: auto-replied (RFC 3834), X-Autoreply,
 *    X-Autorespond, Precedence: auto_reply, X-Apple-Action: VACATION; or
 *    an auto-reply subject ("Automatic reply:", "Out of Office",
 *    "Abwesenheit") backed by an automatic marker (Auto-Submitted of any
 *    kind, X-Auto-Response-Suppress, null sender, Precedence: bulk/junk)
 *    or by auto-reply text ("I am out of the office"), or answering a
 *    message (In-Reply-To, References: a person answering writes "Re:").
 *    A subject alone is a person talking about their holiday; a mailing
 *    list (List-Id) with only a subject stays ordinary too.
 * 5. Anything else is ordinary. Auto-Submitted: auto-generated alone is a
 *    notification (cron, monitoring), not an answer to a message.
 *
 * The original is taken from the first message/rfc822 (message/global)
 * or text/rfc822-headers part among the message's own parts, else from
 * header fields quoted in the text (a block of "Name: value" lines,
 * '>'-quoted or indented), and its envelope sender and Message-ID from the
 * report fields (X-Postfix-Sender, Original-Envelope-Id's neighbours
 * X-Original-Message-ID, ARF's Original-Mail-From) when the copy lacks them.
 */
#include "smtp/bounce.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/bounce_fields.h"
#include "smtp/bounce_rules.h"
#include "smtp/mime.h"

/* The text looked at for phrases and quoted headers: the start of the
 * message's own text parts. A bounce explains itself at the top; past this
 * the text is not read (and not decoded: part_begin says no). */
#define TEXT_SCAN_BUDGET (96 * 1024)
/* The text of an attached original read for URL hosts (url_hosts.h): a
 * spam's links are near its top. */
#define ORIG_TEXT_BUDGET (64 * 1024)
#define QFIELD_MAX 2048            /* a quoted header field being collected */

/* header signals (top level) */
enum {
	H_FAILED_RCPTS = 1 << 0,     /* X-Failed-Recipients (Exim), X-MS-Exchange-Message-Is-NDR */
	H_AUTO_REPLIED = 1 << 1,     /* Auto-Submitted: auto-replied */
	H_AUTO_OTHER = 1 << 2,       /* Auto-Submitted: auto-generated, auto-notified, ... */
	H_AUTOREPLY = 1 << 3,        /* X-Autoreply, X-Autorespond, Precedence: auto_reply, X-Apple-Action: VACATION */
	H_AUTO_SUPPRESS = 1 << 4,    /* X-Auto-Response-Suppress (Exchange sets it on what it generates) */
	H_PREC_BULK = 1 << 5,        /* Precedence: bulk, junk, list */
	H_LIST = 1 << 6,             /* List-Id, List-Unsubscribe: a mailing list or newsletter */
	H_CHALLENGE = 1 << 7,        /* X-Challenge*, X-TMDA*, X-Spamarrest*, X-Boxbe* */
	H_UNSUBSCRIBE = 1 << 8,      /* X-Apple-Unsubscribe: true: Apple Mail's automatic opt-out */
};

/* text signals (the message's own text parts) */
enum {
	T_BOUNCE = 1 << 0,
	T_SMTP_ERROR = 1 << 1,
	T_DSN_FIELD = 1 << 2,
	T_AUTOREPLY = 1 << 3,
	T_CHALLENGE = 1 << 4,
	T_ORIGINAL = 1 << 5,
	T_FAILURE = 1 << 6,
};

/* what the parts of the message are */
enum {
	P_DELIVERY_STATUS = 1 << 0,
	P_DISPOSITION = 1 << 1,
	P_FEEDBACK = 1 << 2,
	P_ORIGINAL = 1 << 3,         /* message/rfc822, message/global, text/rfc822-headers */
};

/* the fields RFC 8098 (MDN) and RFC 5965 (ARF) require of their report
 * part, seen with a value */
enum {
	F_FINAL_RECIPIENT = 1 << 0,
	F_DISPOSITION = 1 << 1,
	F_ORIGINAL_MESSAGE_ID = 1 << 2,
	F_FEEDBACK_TYPE = 1 << 3,
	F_USER_AGENT = 1 << 4,
	F_VERSION = 1 << 5,
};
#define MDN_REQUIRED (F_FINAL_RECIPIENT | F_DISPOSITION | F_ORIGINAL_MESSAGE_ID)
#define ARF_REQUIRED (F_FEEDBACK_TYPE | F_USER_AGENT | F_VERSION)

enum part_kind { K_NONE, K_TEXT, K_HTML, K_REPORT_FIELDS, K_HEADERS, K_ORIG_TEXT };

/* What a multipart/report holds, for bounce_result.well_formed. */
struct report_shape {
	unsigned disposition_parts;   /* message/(global-)disposition-notification parts */
	unsigned feedback_parts;      /* message/feedback-report parts */
	unsigned outside_report;      /* of those, not inside a multipart/report */
	unsigned current;             /* P_* of the report part being read, 0 for none */
	unsigned fields;              /* F_* found in disposition and feedback parts */
	bool text;                    /* a human-readable text part in the multipart/report */
	bool original;                /* an original (message/rfc822, headers) in it */
	unsigned extra;               /* parts that are none of those: HTML, images, files */
};

struct quoted {
	/* a header field being collected from lines (text/rfc822-headers or
	 * quoted text) */
	char buf[QFIELD_MAX];
	size_t len;
	bool active;        /* a field is being collected */
	bool in_block;      /* in a block of header lines */
	size_t indent;      /* the block's indentation after the quote marks */
	unsigned quote;     /* the block's '>' count */
};

struct bounce_scan {
	struct mime_walker *walker;
	/* top level */
	char from_addr[256];
	char from_name[128];
	char subject[256];          /* RFC 2047 decoded, unfolded */
	bool subject_seen, from_seen;
	char report_type[40];
	unsigned hdr, text, parts;
	char in_reply_to[256];
	size_t nrefs;
	char refs[8][256];
	/* parts */
	enum part_kind kind;        /* of the part being delivered */
	size_t text_budget;
	size_t orig_text_budget;    /* of the original's text, for URL hosts */
	unsigned orig_index;        /* the encapsulated message captured (index + 1, 0 = none) */
	struct bounce_original orig_part, orig_quoted;
	char ds_sender[256], ds_msgid[256];
	struct report_shape shape;
	struct quoted q;            /* quoted headers in text */
	struct quoted h;            /* text/rfc822-headers lines */
	char lowered[MIME_LINE_MAX + 1];
};

const char *bounce_class_name(enum bounce_class c)
{
	static const char *const names[BOUNCE_CLASS_COUNT] = {
		"ordinary", "dsn", "ndr", "autoreply", "challenge", "mdn", "arf",
	};
	return (unsigned)c < BOUNCE_CLASS_COUNT ? names[c] : "ordinary";
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (lower(*a) != lower(*b))
			return false;
	return *a == *b;
}

bool bounce_class_parse(const char *name, enum bounce_class *out)
{
	for (unsigned c = 0; c < BOUNCE_CLASS_COUNT; c++)
		if (ieq(name, bounce_class_name((enum bounce_class)c))) {
			*out = (enum bounce_class)c;
			return true;
		}
	return false;
}

static bool name_is(const char *field, size_t len, const char *name)
{
	return mime_field_name_is(field, len, name);
}

/* ---- header fields collected from lines ---- */

static void q_finish(struct quoted *q, struct bounce_original *o)
{
	if (q->active)
		bounce_capture(o, q->buf, q->len);
	q->active = false;
	q->len = 0;
}

static void q_append(struct quoted *q, const char *s, size_t n)
{
	size_t room = sizeof q->buf - q->len;
	if (n > room)
		n = room;
	memcpy(q->buf + q->len, s, n);
	q->len += n;
}

/* field_name_len - the length of "Name:" at s (a field name of printable
 * ASCII, no blanks), 0 when s does not start a header field. */
static size_t field_name_len(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && i < 64 && s[i] > ' ' && s[i] < 127 && s[i] != ':')
		i++;
	if (i == 0 || i >= n || s[i] != ':')
		return 0;
	return i;
}

/* orig_urls - a line of the original's text: its URL hosts, within budget */
static void orig_urls(struct bounce_scan *s, struct bounce_original *o, const char *line, size_t n)
{
	if (n > s->orig_text_budget)
		n = s->orig_text_budget;
	s->orig_text_budget -= n;
	url_hosts_line(&o->urls, line, n);
}

/* headers_line - a line of a text/rfc822-headers part (or an encoded
 * message/rfc822): plain header section syntax, ends at the first empty line. */
static void headers_line(struct bounce_scan *s, const char *line, size_t n)
{
	struct quoted *h = &s->h;
	if (h->in_block) {
		/* past the header section: an encoded copy's body */
		orig_urls(s, &s->orig_part, line, n);
		return;
	}
	if (n == 0) {
		q_finish(h, &s->orig_part);
		h->in_block = true;
		return;
	}
	if ((line[0] == ' ' || line[0] == '\t') && h->active) {
		q_append(h, "\r\n", 2);
		q_append(h, line, n);
		return;
	}
	q_finish(h, &s->orig_part);
	if (field_name_len(line, n)) {
		h->active = true;
		q_append(h, line, n);
	}
}

/* quoted_line - a line of text: header fields quoted in it ('>'-quoted,
 * indented, or as they are after "This is a copy of the message"). A block
 * is a run of "Name: value" lines and their continuations (lines indented
 * deeper than the block); anything else ends it. */
static void quoted_line(struct bounce_scan *s, const char *line, size_t n)
{
	struct quoted *q = &s->q;
	unsigned quote = 0;
	size_t i = 0, indent;

	while (i < n && (line[i] == '>' || (quote && line[i] == ' ' && i + 1 < n && line[i + 1] == '>'))) {
		if (line[i] == '>')
			quote++;
		i++;
	}
	size_t after_quote = i;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	indent = i - after_quote;
	if (q->in_block && quote == q->quote && indent > q->indent && i < n && q->active) {
		/* a continuation of the field (the folding whitespace kept) */
		q_append(q, "\r\n", 2);
		q_append(q, line + after_quote, n - after_quote);
		return;
	}
	q_finish(q, &s->orig_quoted);
	if (i < n && field_name_len(line + i, n - i)) {
		/* a bounce text's own "Subject: x" line counts like a quoted one:
		 * it is about the original too */
		q->in_block = true;
		q->quote = quote;
		q->indent = indent;
		q->active = true;
		q_append(q, line + i, n - i);
		return;
	}
	q->in_block = false;
}

/* ---- walker callbacks ---- */

static bool is_type(const struct mime_part *p, const char *t)
{
	return strcmp(p->type, t) == 0;
}

static void on_header(void *ctx, const struct mime_part *p, const char *field, size_t len, bool cut)
{
	struct bounce_scan *s = ctx;
	(void)cut;
	if (p->depth == 0)
		return;     /* the top-level fields: bounce_scan_header */
	if (p->message_top && p->msg_depth == 1) {
		/* the first message attached to the message itself is the original */
		if (s->orig_index == 0)
			s->orig_index = p->index + 1;
		if (s->orig_index == p->index + 1)
			bounce_capture(&s->orig_part, field, len);
	} else if (p->msg_depth == 0) {
		/* a part of the message whose header section is a message's
		 * (Received, Message-ID: some MTAs forget the message/rfc822
		 * wrapper and the empty line): as good as quoted headers. A
		 * part's own fields (Content-*) are not captured. */
		bounce_capture(&s->orig_quoted, field, len);
	}
}

/* inside_report - p is a part (at any depth) of a multipart/report */
static bool inside_report(const struct mime_part *p)
{
	for (const struct mime_part *q = p->parent; q != NULL; q = q->parent)
		if (is_type(q, "multipart/report"))
			return true;
	return false;
}

/* original_index - the index of the top entity of the attached message p
 * is in (at the first level) */
static unsigned original_index(const struct mime_part *p)
{
	while (p != NULL && !(p->message_top && p->msg_depth == 1))
		p = p->parent;
	return p != NULL ? p->index : (unsigned)-1;
}

static bool on_part_begin(void *ctx, const struct mime_part *p)
{
	struct bounce_scan *s = ctx;
	struct report_shape *shape = &s->shape;
	bool in_report;

	s->kind = K_NONE;
	shape->current = 0;
	if (p->msg_depth > 0) {
		/* inside an attached message: only the original's text, for the
		 * hosts of its URLs */
		if (strncmp(p->type, "text/", 5) == 0 && s->orig_text_budget > 0 &&
		    original_index(p) + 1 == s->orig_index)
			s->kind = K_ORIG_TEXT;
		return s->kind != K_NONE;
	}
	if (strcmp(p->type, "multipart/report") == 0 && !s->report_type[0])
		bounce_copy(s->report_type, sizeof s->report_type, p->report_type, strlen(p->report_type));
	memset(&s->q, 0, sizeof s->q);
	in_report = inside_report(p);
	if (is_type(p, "message/delivery-status") || is_type(p, "message/global-delivery-status")) {
		s->parts |= P_DELIVERY_STATUS;
		s->kind = K_REPORT_FIELDS;
		shape->current = P_DELIVERY_STATUS;
	} else if (is_type(p, "message/disposition-notification") ||
	    is_type(p, "message/global-disposition-notification")) {
		s->parts |= P_DISPOSITION;
		s->kind = K_REPORT_FIELDS;
		shape->current = P_DISPOSITION;
		shape->disposition_parts++;
		shape->outside_report += !in_report;
	} else if (is_type(p, "message/feedback-report")) {
		s->parts |= P_FEEDBACK;
		s->kind = K_REPORT_FIELDS;
		shape->current = P_FEEDBACK;
		shape->feedback_parts++;
		shape->outside_report += !in_report;
	} else if (is_type(p, "text/rfc822-headers") || is_type(p, "message/global-headers") ||
	    is_type(p, "text/rfc822-header") ||   /* sic, seen in feedback reports */
	    ((is_type(p, "message/rfc822") || is_type(p, "message/global")) &&
	     p->encoding != MIME_ENC_7BIT)) {
		/* headers as lines: a text part of headers, or an encoded copy
		 * the walker does not walk into */
		s->parts |= P_ORIGINAL;
		shape->original |= in_report;
		if (s->orig_index == 0 && !s->orig_part.found) {
			s->orig_index = p->index + 1;
			memset(&s->h, 0, sizeof s->h);
			s->kind = K_HEADERS;
		}
	} else if (is_type(p, "message/rfc822") || is_type(p, "message/global")) {
		s->parts |= P_ORIGINAL;
		shape->original |= in_report;
	} else if (strncmp(p->type, "text/", 5) == 0) {
		if (is_type(p, "text/plain"))
			shape->text |= in_report;
		else
			shape->extra++;
		if (s->text_budget > 0)
			s->kind = is_type(p, "text/html") ? K_HTML : K_TEXT;
	} else if (strncmp(p->type, "multipart/", 10) != 0) {
		shape->extra++;   /* an image, a program, ...: no report carries one */
	}
	return s->kind != K_NONE;
}

/* report_field - the F_* flag of a field an MDN or ARF report part must
 * have (with a value), 0 for any other line */
static unsigned report_field(const char *line, size_t n)
{
	static const struct { const char *name; unsigned flag; } required[] = {
		{"Final-Recipient", F_FINAL_RECIPIENT}, {"Disposition", F_DISPOSITION},
		{"Original-Message-ID", F_ORIGINAL_MESSAGE_ID}, {"Feedback-Type", F_FEEDBACK_TYPE},
		{"User-Agent", F_USER_AGENT}, {"Version", F_VERSION},
	};
	size_t vlen;
	const char *v = mime_field_value(line, n, &vlen);

	while (v != NULL && vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	if (v == NULL || vlen == 0)
		return 0;
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
		if (name_is(line, n, required[i].name))
			return required[i].flag;
	return 0;
}

static void report_line(struct bounce_scan *s, const char *line, size_t n)
{
	size_t vlen;
	const char *v;
	if (s->shape.current == P_DISPOSITION || s->shape.current == P_FEEDBACK)
		s->shape.fields |= report_field(line, n);
	if (name_is(line, n, "X-Postfix-Sender") || name_is(line, n, "Original-Mail-From") ||
	    name_is(line, n, "X-Original-Sender")) {
		if (!s->ds_sender[0] && (v = mime_field_value(line, n, &vlen))) {
			/* "rfc822; addr" */
			const char *semi = memchr(v, ';', vlen);
			if (semi) {
				vlen -= (size_t)(semi + 1 - v);
				v = semi + 1;
			}
			bounce_addr_spec(v, vlen, s->ds_sender, sizeof s->ds_sender, NULL, 0);
		}
	} else if (name_is(line, n, "X-Original-Message-ID") || name_is(line, n, "Original-Message-ID")) {
		if (!s->ds_msgid[0] && (v = mime_field_value(line, n, &vlen)))
			bounce_first_msgid(v, vlen, s->ds_msgid, sizeof s->ds_msgid);
	}
}

static void text_line(struct bounce_scan *s, const char *line, size_t n, bool html)
{
	if (n > s->text_budget)
		n = s->text_budget;
	s->text_budget -= n;
	if (!html)
		quoted_line(s, line, n);
	if (n > 0 && line[0] == '>')
		return;     /* quoted by a person: their words about it, not the MTA's */
	/* the seven text tables in one pass over the line */
	static const struct { enum bounce_rule_table table; unsigned flag; } text_tables[] = {
		{RULES_TEXT_BOUNCE, T_BOUNCE}, {RULES_TEXT_FAILURE, T_FAILURE},
		{RULES_TEXT_SMTP_ERROR, T_SMTP_ERROR}, {RULES_TEXT_DSN_FIELD, T_DSN_FIELD},
		{RULES_TEXT_AUTOREPLY, T_AUTOREPLY}, {RULES_TEXT_CHALLENGE, T_CHALLENGE},
		{RULES_TEXT_ORIGINAL, T_ORIGINAL},
	};
	unsigned want = 0, hit;
	for (size_t i = 0; i < sizeof text_tables / sizeof text_tables[0]; i++)
		if (!(s->text & text_tables[i].flag))
			want |= 1u << text_tables[i].table;
	if (want == 0)
		return;
	bounce_lowercase(line, n, s->lowered, sizeof s->lowered);
	hit = bounce_rule_scan(s->lowered, want);
	for (size_t i = 0; i < sizeof text_tables / sizeof text_tables[0]; i++)
		if (hit & (1u << text_tables[i].table))
			s->text |= text_tables[i].flag;
}

static void on_line(void *ctx, const struct mime_part *p, const char *line, size_t n)
{
	struct bounce_scan *s = ctx;
	(void)p;
	switch (s->kind) {
	case K_TEXT:
	case K_HTML:
		if (s->text_budget > 0) {
			/* after quoted header fields, the text is the original's */
			if (s->orig_quoted.found)
				orig_urls(s, &s->orig_quoted, line, n < s->text_budget ? n : s->text_budget);
			text_line(s, line, n, s->kind == K_HTML);
		}
		break;
	case K_ORIG_TEXT:
		orig_urls(s, &s->orig_part, line, n);
		break;
	case K_REPORT_FIELDS:
		report_line(s, line, n);
		/* some MTAs append the original's header fields to the status
		 * fields instead of attaching them */
		quoted_line(s, line, n);
		break;
	case K_HEADERS:
		headers_line(s, line, n);
		break;
	default:
		break;
	}
}

static void on_part_end(void *ctx, const struct mime_part *p)
{
	struct bounce_scan *s = ctx;
	(void)p;
	if (s->kind == K_TEXT || s->kind == K_REPORT_FIELDS)
		q_finish(&s->q, &s->orig_quoted);
	else if (s->kind == K_HEADERS)
		q_finish(&s->h, &s->orig_part);
	s->kind = K_NONE;
	s->shape.current = 0;
}

/* ---- the API ---- */

struct bounce_scan *bounce_scan_new(void)
{
	static const struct mime_callbacks cb = {
		.header = on_header, .part_begin = on_part_begin, .line = on_line,
		.part_end = on_part_end,
	};
	struct bounce_scan *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->walker = mime_walker_new(NULL, &cb, s);
	if (!s->walker) {
		free(s);
		return NULL;
	}
	s->text_budget = TEXT_SCAN_BUDGET;
	s->orig_text_budget = ORIG_TEXT_BUDGET;
	return s;
}

static void top_references(struct bounce_scan *s, const char *v, size_t n)
{
	/* the last 8: the parent (the message answered) is the last one, the
	 * thread's root the first */
	const char *p = v, *end = v + n;
	while (p < end) {
		const char *lt = memchr(p, '<', (size_t)(end - p));
		if (!lt)
			break;
		const char *gt = memchr(lt, '>', (size_t)(end - lt));
		if (!gt)
			break;
		char id[256] = { 0 };
		if (bounce_first_msgid(lt, (size_t)(gt - lt + 1), id, sizeof id)) {
			if (s->nrefs == 8) {
				memmove(s->refs[0], s->refs[1], sizeof s->refs[0] * 7);
				s->nrefs = 7;
			}
			memcpy(s->refs[s->nrefs++], id, sizeof id);
		}
		p = gt + 1;
	}
}

void bounce_scan_header(struct bounce_scan *s, const char *field, size_t len)
{
	size_t vlen;
	const char *v = mime_field_value(field, len, &vlen);
	char low[128];

	mime_header(s->walker, field, len);
	if (!v)
		return;
	if (name_is(field, len, "From") && !s->from_seen) {
		s->from_seen = true;
		char raw_name[256];
		bounce_addr_spec(v, vlen, s->from_addr, sizeof s->from_addr, raw_name, sizeof raw_name);
		bounce_rfc2047_decode(raw_name, s->from_name, sizeof s->from_name);
	} else if (name_is(field, len, "Subject") && !s->subject_seen) {
		char raw[512];
		s->subject_seen = true;
		bounce_unfold(v, vlen, raw, sizeof raw);
		bounce_rfc2047_decode(raw, s->subject, sizeof s->subject);
	} else if (name_is(field, len, "Auto-Submitted")) {
		bounce_lowercase(v, vlen, low, sizeof low);
		if (strncmp(low, "auto-replied", 12) == 0)
			s->hdr |= H_AUTO_REPLIED;
		else if (strncmp(low, "no", 2) != 0)
			s->hdr |= H_AUTO_OTHER;
	} else if (name_is(field, len, "X-Failed-Recipients") ||
	    name_is(field, len, "X-MS-Exchange-Message-Is-NDR")) {
		s->hdr |= H_FAILED_RCPTS;
	} else if (name_is(field, len, "X-Autoreply") || name_is(field, len, "X-Autorespond") ||
	    name_is(field, len, "X-Autoresponder") || name_is(field, len, "X-Auto-Reply") ||
	    name_is(field, len, "X-Vacation")) {
		bounce_lowercase(v, vlen, low, sizeof low);
		if (strncmp(low, "no", 2) != 0 && strncmp(low, "false", 5) != 0)
			s->hdr |= H_AUTOREPLY;
	} else if (name_is(field, len, "X-Apple-Unsubscribe")) {
		bounce_lowercase(v, vlen, low, sizeof low);
		if (strncmp(low, "true", 4) == 0)
			s->hdr |= H_UNSUBSCRIBE;
	} else if (name_is(field, len, "X-Apple-Action")) {
		bounce_lowercase(v, vlen, low, sizeof low);
		if (strstr(low, "vacation"))
			s->hdr |= H_AUTOREPLY;
	} else if (name_is(field, len, "Precedence")) {
		bounce_lowercase(v, vlen, low, sizeof low);
		if (strncmp(low, "auto_reply", 10) == 0 || strncmp(low, "auto-reply", 10) == 0)
			s->hdr |= H_AUTOREPLY;
		else if (strncmp(low, "bulk", 4) == 0 || strncmp(low, "junk", 4) == 0 ||
		    strncmp(low, "list", 4) == 0)
			s->hdr |= H_PREC_BULK;
	} else if (name_is(field, len, "X-Auto-Response-Suppress")) {
		s->hdr |= H_AUTO_SUPPRESS;
	} else if (name_is(field, len, "List-Id") || name_is(field, len, "List-Unsubscribe") ||
	    name_is(field, len, "List-Post")) {
		s->hdr |= H_LIST;
	} else if (name_is(field, len, "In-Reply-To")) {
		if (!s->in_reply_to[0])
			bounce_first_msgid(v, vlen, s->in_reply_to, sizeof s->in_reply_to);
	} else if (name_is(field, len, "References")) {
		top_references(s, v, vlen);
	} else {
		bounce_lowercase(field, len < 16 ? len : 16, low, sizeof low);
		if (strncmp(low, "x-challenge", 11) == 0 || strncmp(low, "x-tmda", 6) == 0 ||
		    strncmp(low, "x-spamarrest", 12) == 0 || strncmp(low, "x-boxbe", 7) == 0)
			s->hdr |= H_CHALLENGE;
	}
}

void bounce_scan_eoh(struct bounce_scan *s)
{
	mime_eoh(s->walker);
}

void bounce_scan_body(struct bounce_scan *s, const char *data, size_t len)
{
	mime_body(s->walker, data, len);
}

/* a reply or a forward: a person's message about whatever it quotes */
static bool subject_is_reply(const char *subject)
{
	static const char *const prefixes[] = {
		"re:", "re :", "fw:", "fwd:", "fw :", "fwd :", "aw:", "wg:", "tr:", "sv:", "vs:",
		"antw:", "rif:", "r:", "rv:", "odp:", "res:", "enc:", NULL,
	};
	char low[16];
	while (*subject == ' ' || *subject == '\t')
		subject++;
	bounce_lowercase(subject, strnlen(subject, sizeof low - 1), low, sizeof low);
	for (const char *const *p = prefixes; *p; p++)
		if (strncmp(low, *p, strlen(*p)) == 0)
			return true;
	return false;
}

/* subject_lead - whether the phrase leads the subject, as MTAs write it
 * ("Undeliverable: x", "[Postmaster] Email Delivery Failure", "host.example
 * Mail delivery failed"), rather than standing in a sentence of a person's
 * ("Contract draft, with delivery status notification requested"). */
static bool subject_lead(const char *subj)
{
	const char *p = subj;
	while (*p == ' ' || *p == '*' || *p == '"')
		p++;
	if (*p == '[') {
		const char *close = strchr(p, ']');
		if (close)
			p = close + 1;
		while (*p == ' ')
			p++;
	}
	return bounce_rule_find_near(RULES_SUBJECT_BOUNCE, p, 16) != NULL;
}

/* envelope_daemon - the envelope sender is a daemon's (MAILER-DAEMON@x) */
static bool envelope_daemon(const char *mail_from)
{
	char local[256];
	const char *at;

	if (mail_from == NULL || mail_from[0] == '\0')
		return false;
	at = strrchr(mail_from, '@');
	bounce_lowercase(mail_from, at ? (size_t)(at - mail_from) : strlen(mail_from), local,
	    sizeof local);
	return bounce_rule_find(RULES_SENDER_LOCAL, local) != NULL;
}

static bool daemon_sender(const struct bounce_scan *s)
{
	char local[256], name[128];
	const char *at = strchr(s->from_addr, '@');
	size_t ll = at ? (size_t)(at - s->from_addr) : strlen(s->from_addr);
	if (s->from_seen && s->from_addr[0] == '\0' && s->from_name[0] == '\0')
		return true;    /* From: <> */
	bounce_lowercase(s->from_addr, ll, local, sizeof local);
	if (bounce_rule_find(RULES_SENDER_LOCAL, local))
		return true;
	bounce_lowercase(s->from_name, strlen(s->from_name), name, sizeof name);
	return bounce_rule_find(RULES_SENDER_NAME, name) != NULL;
}

/* report_missing - what keeps an MDN or ARF from being well formed
 * (bounce.h, bounce_result.well_formed), NULL when nothing does */
static const char *report_missing(const struct bounce_scan *s, enum bounce_class c)
{
	const struct report_shape *sh = &s->shape;
	bool mdn = c == BOUNCE_MDN;
	unsigned own = mdn ? sh->disposition_parts : sh->feedback_parts;
	unsigned other = mdn ? sh->feedback_parts : sh->disposition_parts;
	unsigned fields = sh->fields;

	if (mdn ? strcmp(s->report_type, "disposition-notification") != 0 &&
	    strcmp(s->report_type, "global-disposition-notification") != 0 :
	    strcmp(s->report_type, "feedback-report") != 0)
		return "report-type";
	if (own == 0)
		return mdn ? "no disposition-notification part" : "no feedback-report part";
	if (own > 1 || other > 0)
		return "more than one report part";
	if (sh->outside_report > 0)
		return "report part outside the multipart/report";
	if (!sh->text)
		return "no human-readable text/plain part";
	/* a waiver of BATV must not carry anything but the report itself
	 * (rereview of issue 11: an HTML body and an .exe rode along) */
	if (sh->extra > 0)
		return "a part besides the text, the report and the original";
	if (mdn) {
		if (!(fields & F_FINAL_RECIPIENT))
			return "no Final-Recipient";
		if (!(fields & F_DISPOSITION))
			return "no Disposition";
		if (!(fields & F_ORIGINAL_MESSAGE_ID))
			return "no Original-Message-ID";
		return NULL;
	}
	if (!(fields & F_FEEDBACK_TYPE))
		return "no Feedback-Type";
	if (!(fields & F_USER_AGENT))
		return "no User-Agent";
	if (!(fields & F_VERSION))
		return "no Version";
	if (!sh->original)
		return "no original attached";
	return NULL;
}

__attribute__((format(printf, 2, 3)))
static void set_why(struct bounce_result *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->why, sizeof out->why, fmt, ap);
	va_end(ap);
}

/* responder_prefix - the subject starts with what responders put before
 * the original subject ("Automatic reply: ...", Exchange; "Auto: ...",
 * Lotus; "Out of Office: ..."), colon included: a person's "Out of office
 * coverage next week" does not. */
static bool responder_prefix(const char *subj)
{
	static const char *const prefixes[] = {
		"automatic reply:", "auto:", "autoreply:", "auto-reply:", "out of office:",
		"out of office reply:", "out of the office:", "automatische antwort:",
		"abwesenheitsnotiz:", "r\xc3\xa9ponse automatique :", "r\xc3\xa9ponse automatique:",
		"respuesta autom\xc3\xa1tica:", "risposta automatica:",
	};
	for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
		if (strncasecmp(subj, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}


void bounce_scan_end(struct bounce_scan *s, const char *mail_from, struct bounce_result *out)
{
	char subj[256];
	bool null_sender = mail_from && !mail_from[0];
	bool daemon = daemon_sender(s);
	bool reply = subject_is_reply(s->subject);

	mime_end(s->walker);
	q_finish(&s->q, &s->orig_quoted);
	memset(out, 0, sizeof *out);
	memcpy(out->in_reply_to, s->in_reply_to, sizeof out->in_reply_to);
	out->nrefs = s->nrefs;
	memcpy(out->refs, s->refs, sizeof out->refs);
	bounce_lowercase(s->subject, strlen(s->subject), subj, sizeof subj);

	/* the original: an attached copy, else quoted headers; the report's own
	 * fields fill what the copy lacks */
	if (s->orig_part.found || !s->orig_quoted.found) {
		out->orig = s->orig_part;
	} else {
		out->orig = s->orig_quoted;
		out->orig.quoted_headers = true;
	}
	if (!out->orig.return_path[0] && s->ds_sender[0])
		memcpy(out->orig.return_path, s->ds_sender, sizeof s->ds_sender);
	if (!out->orig.message_id[0] && s->ds_msgid[0])
		memcpy(out->orig.message_id, s->ds_msgid, sizeof s->ds_msgid);
	if (out->orig.return_path[0] || out->orig.message_id[0])
		out->orig.found = true;

	/* 1. structure. A delivery status decides first: a forged DSN
	 * must not turn into a read receipt (a class [batv] refuse_at =
	 * content lets pass) by one more part or another report-type. */
	const char *rt = s->report_type;
	bool ds_type = strcmp(rt, "delivery-status") == 0 || strcmp(rt, "global-delivery-status") == 0;
	if (ds_type || (s->parts & P_DELIVERY_STATUS)) {
		out->cls = BOUNCE_DSN;
		if (ds_type)
			set_why(out, "multipart/report %s", rt);
		else
			set_why(out, "message/delivery-status part%s%s", rt[0] ? " in multipart/report " : "",
			    rt);
		return;
	}
	if (strcmp(rt, "feedback-report") == 0 || (s->parts & P_FEEDBACK)) {
		const char *missing = report_missing(s, BOUNCE_ARF);
		out->cls = BOUNCE_ARF;
		out->well_formed = missing == NULL;
		set_why(out, "%s%s%s%s", rt[0] ? "multipart/report " : "message/feedback-report part",
		    rt[0] ? rt : "", missing ? "; not well formed: " : "", missing ? missing : "");
		return;
	}
	if (strcmp(rt, "disposition-notification") == 0 || (s->parts & P_DISPOSITION)) {
		const char *missing = report_missing(s, BOUNCE_MDN);
		out->cls = BOUNCE_MDN;
		out->well_formed = missing == NULL;
		set_why(out, "%s%s%s%s", rt[0] ? "multipart/report " : "message/disposition-notification part",
		    rt[0] ? rt : "", missing ? "; not well formed: " : "", missing ? missing : "");
		return;
	}

	/* 1b. feedback that is not RFC 5965: an abuse desk's complaint with
	 * the message complained about attached (Hotmail's JMRP), Apple
	 * Mail's automatic unsubscribe request (an opt-out is feedback about
	 * the message it answers) */
	if (!reply && (s->parts & P_ORIGINAL) && bounce_rule_find(RULES_SUBJECT_FEEDBACK, subj)) {
		out->cls = BOUNCE_ARF;
		set_why(out, "subject '%.60s' + attached message; not well formed: no RFC 5965 report",
		    s->subject);
		return;
	}
	if (s->hdr & H_UNSUBSCRIBE) {
		out->cls = BOUNCE_ARF;
		set_why(out, "X-Apple-Unsubscribe: true; not well formed: no RFC 5965 report");
		return;
	}

	/* 2. challenge. Automatic: marked as generated by a machine (a bulk
	 * precedence only off a mailing list: newsletters say bulk too) */
	const char *ch_subj = bounce_rule_find(RULES_SUBJECT_CHALLENGE, subj);
	bool list = s->hdr & H_LIST;
	bool automatic = null_sender || (s->hdr & (H_AUTO_REPLIED | H_AUTO_OTHER | H_AUTOREPLY |
	    H_AUTO_SUPPRESS | H_CHALLENGE)) || ((s->hdr & H_PREC_BULK) && !list);
	if ((s->hdr & H_CHALLENGE) ||
	    ((s->text & T_CHALLENGE) && (automatic || ch_subj) && !list && !reply)) {
		out->cls = BOUNCE_CHALLENGE;
		set_why(out, "%s%s", (s->hdr & H_CHALLENGE) ? "challenge header" :
		    automatic ? "challenge text + automatic sender" : "challenge text + subject", "");
		return;
	}

	/* 3. non-delivery score (weights: see the top of this file) */
	const char *bsubj = reply ? NULL : bounce_rule_find(RULES_SUBJECT_BOUNCE, subj);
	int subject_weight = bsubj ? subject_lead(subj) ? 3 : 1 : 0;
	int score = 0, content = 0;
	char why[160] = "";
	size_t wl = 0;
#define SIGNAL(cond, w, is_content, text) do { if (cond) { score += (w); content += (is_content) ? (w) : 0; \
	wl += (size_t)snprintf(why + wl, wl < sizeof why ? sizeof why - wl : 0, "%s%s", wl ? " + " : "", text); \
	if (wl >= sizeof why) wl = sizeof why - 1; } } while (0)
	SIGNAL(null_sender, 3, false, "null sender");
	SIGNAL(daemon, 3, false, "daemon sender");
	SIGNAL(subject_weight > 0, subject_weight, true, "subject");
	SIGNAL(s->hdr & H_FAILED_RCPTS, 4, true, "X-Failed-Recipients");
	SIGNAL(s->text & T_BOUNCE, 3, true, "bounce text");
	SIGNAL(s->text & T_DSN_FIELD, 3, true, "status fields");
	SIGNAL(s->text & T_FAILURE, 1, true, "failure words");
	SIGNAL(s->text & T_SMTP_ERROR, 1, true, "SMTP error");
	SIGNAL((s->parts & P_ORIGINAL) || (s->text & T_ORIGINAL) || s->orig_quoted.found, 1, true,
	    "original attached");
#undef SIGNAL
	/* a mailing list's post from a person (List-Id and a sender that is
	 * neither null nor a daemon) is someone pasting a bounce to ask about
	 * it; refusing it would get the member unsubscribed */
	bool list_post = list && !null_sender && !daemon && !envelope_daemon(mail_from);
	if (score >= 6 && content > 0 && !list_post) {
		out->cls = BOUNCE_NDR;
		if (bsubj)
			snprintf(out->why, sizeof out->why, "%.100s (subject '%.44s')", why, s->subject);
		else
			snprintf(out->why, sizeof out->why, "%s", why);
		return;
	}

	/* 4. auto-reply */
	const char *asubj = reply ? NULL : bounce_rule_find_near(RULES_SUBJECT_AUTOREPLY, subj, 16);
	if (s->hdr & H_AUTO_REPLIED) {
		out->cls = BOUNCE_AUTOREPLY;
		set_why(out, "Auto-Submitted: auto-replied");
		return;
	}
	if (s->hdr & H_AUTOREPLY) {
		out->cls = BOUNCE_AUTOREPLY;
		set_why(out, "auto-reply header");
		return;
	}
	/* a subject alone is a person writing about a holiday: an automatic
	 * marker must back it, and a mailing list's subject never counts; */
	/* auto-reply text without such a subject ("Re: lunch" answered by a
	 * responder): only with the null sender, which RFC 3834 asks of
	 * responders; a transactional mail marked auto-generated may well say
	 * "out of office" */
	/* An auto-reply subject that answers a message (In-Reply-To,
	 * References) and says so in its text ("I am out of the office") is
	 * a responder too, marked or not: a person answering writes "Re:".
	 * The subject and In-Reply-To alone are a person's new message in a
	 * thread ("Out of office coverage next week"). */
	bool answers = (s->in_reply_to[0] != '\0' || s->nrefs > 0) &&
	    ((s->text & T_AUTOREPLY) || responder_prefix(subj));
	if (((asubj && (automatic || answers)) || ((s->text & T_AUTOREPLY) && null_sender)) &&
	    !list) {
		out->cls = BOUNCE_AUTOREPLY;
		if (asubj)
			set_why(out, "subject '%.60s' + %s", s->subject,
			    automatic ? "automatic sender" : "answers a message");
		else
			set_why(out, "auto-reply text + automatic sender");
		return;
	}
	set_why(out, "ordinary");
}

void bounce_scan_free(struct bounce_scan *s)
{
	if (!s)
		return;
	mime_walker_free(s->walker);
	free(s);
}

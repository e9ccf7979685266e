/*
 * bounce - is this message a bounce (or an auto-reply, a challenge, a
 * report), and what is known of the message it answers; no I/O.
 *
 * Fed like the walker (smtp/mime.h): the top-level header fields whole,
 * the end of the header section, the body in chunks split anywhere, then
 * the envelope sender at the end. The class comes from a combination of
 * signals (see bounce.c: structure, envelope sender, sender address,
 * subject, header fields, phrases of the text), never from one weak one:
 * an ordinary message whose subject merely mentions "Undelivered Mail"
 * stays ordinary. The original message is taken from a message/rfc822,
 * message/global, text/rfc822-headers part, or from header fields quoted
 * in the text ("------ This is a copy of the message, including all the
 * headers. ------"), and from the report fields (X-Postfix-Sender,
 * X-Original-Message-ID) when nothing better says.
 *
 * Memory: a bounce_scan is one allocation of about 32 KiB plus its MIME
 * walker (26 KiB): 56 KiB measured (test_bounce) before the URL hosts of
 * the two originals it keeps (2 x 1 KiB) were added; allocated at
 * bounce_scan_new and never grown, whatever the message. A bounce_result
 * is 14 KiB. Time: linear; about 1 ms per MB for a 20 MB message that is
 * mostly a base64 attachment (only text and report parts are decoded, and
 * of text only the first 96 KiB are read).
 */
#ifndef SMTP_BOUNCE_H
#define SMTP_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/url_hosts.h"

enum bounce_class {
	BOUNCE_ORDINARY = 0,  /* ordinary mail */
	BOUNCE_DSN,           /* RFC 3464 multipart/report; report-type=delivery-status */
	BOUNCE_NDR,           /* non-standard non-delivery report (Postfix, Exim, qmail, Exchange, ...) */
	BOUNCE_AUTOREPLY,     /* RFC 3834 Auto-Submitted: auto-replied, vacation / out-of-office */
	BOUNCE_CHALLENGE,     /* challenge-response request */
	BOUNCE_MDN,           /* RFC 8098 disposition notification */
	BOUNCE_ARF,           /* RFC 5965 feedback report */
};
#define BOUNCE_CLASS_COUNT 7

/* "ordinary", "dsn", "ndr", "autoreply", "challenge", "mdn", "arf" */
const char *bounce_class_name(enum bounce_class c);
/* bounce_class_parse - one of the names above (ASCII case-insensitive). */
bool bounce_class_parse(const char *name, enum bounce_class *out);

/* A longer chain keeps its topmost BOUNCE_RECEIVED_TOP hops (the receiving
 * side's relays, for bounce_relay_hop, and its entry, for the zombie's
 * address: smtp/received_ip.h) and its bottom-most ones (where the message
 * claims to come from): the middle is dropped. */
#define BOUNCE_RECEIVED_MAX 16
#define BOUNCE_RECEIVED_TOP 8
/* one Received: of the original. from is the word after "from" (the
 * client's HELO in most MTAs' format), ip the client address the receiving
 * side saw. site_relay: the reverse name the receiving side looked up for
 * that address (the name in the TCP-info comment; Exim's and qmail's name
 * after "from" when they write the HELO apart; never the HELO, which the
 * client chooses) is in the registered domain of the by host: the client
 * is one of the receiving site's own relays (smtp/received_ip.h). */
struct bounce_hop { char by[256]; char from[256]; char ip[64]; bool site_relay; };
struct bounce_original {
	bool found;              /* an original (part or quoted headers) was found */
	bool quoted_headers;     /* from inline-quoted text rather than a MIME part */
	char return_path[256];   /* envelope sender of the original ("" if unknown) */
	char message_id[256];    /* "<...>" */
	char from[256];          /* addr-spec of From: */
	char subject[256];
	char date[64];
	char backstop_sig[512];  /* value of the original's X-Backstop-Sig field, "" if none */
	size_t nhops;            /* hops kept (at most BOUNCE_RECEIVED_MAX) */
	size_t hops_seen;        /* Received: fields seen */
	/* read through bounce_hop_at(): past BOUNCE_RECEIVED_MAX fields, the
	 * slots after the top ones are a ring of the bottom-most */
	struct bounce_hop hops[BOUNCE_RECEIVED_MAX];
	/* hosts of the http(s) URLs in the original's text (the first
	 * ORIG_TEXT_BUDGET bytes of an attached copy's text parts, or the text
	 * after inline-quoted headers): the sites a spam run advertises */
	struct url_hosts urls;
};
/* bounce_hop_at - the i-th kept hop of o, topmost first (i < o->nhops).
 * Inline: the pure modules that read hops (received_ip.c) need no more of
 * the classifier than this. */
static inline const struct bounce_hop *bounce_hop_at(const struct bounce_original *o, size_t i)
{
	const size_t ring = BOUNCE_RECEIVED_MAX - BOUNCE_RECEIVED_TOP;

	if (i < BOUNCE_RECEIVED_TOP || o->hops_seen <= BOUNCE_RECEIVED_MAX)
		return &o->hops[i];
	/* the ring's oldest slot is the one the next field would take */
	return &o->hops[BOUNCE_RECEIVED_TOP +
	    ((o->hops_seen - BOUNCE_RECEIVED_TOP) + (i - BOUNCE_RECEIVED_TOP)) % ring];
}

struct bounce_result {
	enum bounce_class cls;
	char why[160];            /* what decided the class, for the log */
	/* MDN and ARF only: the report is complete as its RFC writes it (a
	 * multipart/report of the right report-type holding a human-readable
	 * text part and exactly one report part with the required fields:
	 * RFC 8098 Final-Recipient, Disposition and Original-Message-ID;
	 * RFC 5965 Feedback-Type, User-Agent, Version and the original
	 * attached). An arf from header heuristics (X-Apple-Unsubscribe, a
	 * complaint subject) never is. [batv] refuse_at = content waives BATV
	 * for well-formed ones only: a forger can label anything a report. */
	bool well_formed;
	char in_reply_to[256];    /* top-level In-Reply-To (first msg-id) */
	size_t nrefs;             /* top-level References, up to 8, "<...>" each */
	char refs[8][256];
	struct bounce_original orig;
};

struct bounce_scan;           /* opaque, bounded memory */
/* bounce_scan_new - NULL when out of memory. */
struct bounce_scan *bounce_scan_new(void);
/* one top-level field, "Name: value", inner CRLF folding kept, no final CRLF */
void bounce_scan_header(struct bounce_scan *s, const char *field, size_t len);
void bounce_scan_eoh(struct bounce_scan *s);
/* body bytes, CRLF line ends, any split */
void bounce_scan_body(struct bounce_scan *s, const char *data, size_t len);
/* bounce_scan_end - the verdict; mail_from is the envelope sender, "" for
 * the null sender, NULL when unknown (counted as not null). Call once;
 * feeding after it is ignored. */
void bounce_scan_end(struct bounce_scan *s, const char *mail_from, struct bounce_result *out);
void bounce_scan_free(struct bounce_scan *s);

#endif

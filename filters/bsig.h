/*
 * bsig - the signed header field backstop adds to every message that
 * leaves through [outbound]: evidence, when a bounce comes back quoting
 * it, that the original was ours (issue 11).
 *
 *   X-Backstop-Sig: v=1; k=<key>; t=<day>; s=<mac>
 *
 *   k    key number 0-9 in the BATV keys file ([batv] keys_file)
 *   t    the day the message was signed, days since 1970-01-01 (UTC)
 *   s    base64url (no padding, 22 characters) of the first 16 bytes of
 *        HMAC-SHA256(secret_k, "backstop-sig v=1" NUL k NUL t NUL
 *                    message-id NUL date NUL sender)
 *
 * The MAC covers the key number and the day, so neither can be changed
 * without the secret. Inputs are canonicalised the same way when signing
 * and when checking (bsig_canon_*): what a relay may do to a header field
 * (refold, add blanks) or to an envelope (BATV tag, case of the domain)
 * does not break the signature.
 *
 * Pure apart from the clock being a parameter: no I/O, no globals. Secrets
 * never leave this module.
 */
#ifndef BSIG_H
#define BSIG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "filters/batv_tag.h"

#define BSIG_FIELD "X-Backstop-Sig"
#define BSIG_MAC_BYTES 16
#define BSIG_VALUE_MAX 64          /* "v=1; k=9; t=" 20 digits "; s=" 22: fits */
#define BSIG_MSGID_MAX 1000        /* longer Message-IDs are cut (RFC 5322: 998 a line) */
#define BSIG_DATE_MAX 200
#define BSIG_SENDER_MAX 320
#define BSIG_FUTURE_DAYS 1         /* clock skew allowed between signer and checker */

enum bsig_status {
	BSIG_NONE,      /* no value ("" or NULL): the message carries no field */
	BSIG_VALID,     /* MAC good, signed within max_age_days */
	BSIG_EXPIRED,   /* MAC good, signed more than max_age_days ago */
	BSIG_BAD,       /* malformed, unknown key, wrong MAC, or a day in the future */
};

/*
 * bsig_make - the field's value for a message signed now with key `key`:
 * "v=1; k=K; t=DAY; s=MAC" into out (cap bytes, BSIG_VALUE_MAX is enough).
 * message_id, date: the field values as found (folding and blanks allowed;
 * "" when the message has none); sender: the envelope sender as relayed
 * ("" for the null sender). Returns 0, or -1 (no such key, cap too small).
 */
int bsig_make(const struct batv_keys *keys, unsigned key, time_t now, const char *message_id,
    const char *date, const char *sender, char *out, size_t cap);

/*
 * bsig_check - verify a field value against the message's Message-ID,
 * Date and envelope sender (any form bsig_make accepts). The parser is
 * strict: exactly the four tags in order, blanks (and folding) only around
 * ';' and '=' and at the ends, one-digit key, decimal day without leading
 * zeros, 22 base64url characters in canonical form. MAC compared in
 * constant time. Expired: the day is more than max_age_days before now's
 * day (the caller passes [batv] validity_days or [bounce] remember, as
 * batv_check takes validity_days); a day more than BSIG_FUTURE_DAYS ahead
 * is BAD.
 */
enum bsig_status bsig_check(const struct batv_keys *keys, time_t now, unsigned max_age_days,
    const char *value, const char *message_id, const char *date, const char *sender);

/* bsig_status_name - "none", "valid", "expired", "bad". */
const char *bsig_status_name(enum bsig_status st);

/*
 * Canonical forms (also used by the sentlog, so that a Message-ID is the
 * same key wherever it is read). Each writes at most cap-1 bytes and a NUL;
 * an input longer than that is cut. Returns the length written.
 *   msgid:  folding removed, blanks trimmed; then the first "<...>" if
 *           there is one (comments around it dropped), else the whole
 *           trimmed value. Case kept (RFC 5322: the id is exact).
 *   date:   comments "(...)" removed (nested; an unclosed one runs to the
 *           end), folding removed, runs of blanks made one space, trimmed.
 *   sender: blanks trimmed, one pair of enclosing <> removed, a BATV prvs
 *           tag ("prvs=KDDDHHHHHH=", any case) removed, domain (after the
 *           last '@') lower-cased; local part kept.
 */
size_t bsig_canon_msgid(const char *in, char *out, size_t cap);
size_t bsig_canon_date(const char *in, char *out, size_t cap);
size_t bsig_canon_sender(const char *in, char *out, size_t cap);

/*
 * bsig_sentlog_key - the sentlog's secret, derived from the lowest-numbered
 * key of the BATV keys file: HMAC-SHA256(secret, "backstop sentlog v1"). An
 * outsider who does not know the secret cannot predict which Bloom bits an
 * entry sets. Not sign_key's: the key rotation (add key N, sign_key = N)
 * must not throw away `remember` days of sent mail; removing the lowest key
 * (the retired one, at the end of a rotation) does start the log afresh.
 * Returns the key number used, or -1 (no key at all). out gets 32 bytes.
 */
#define BSIG_SENTLOG_KEY_BYTES 32
int bsig_sentlog_key(const struct batv_keys *keys, unsigned char out[BSIG_SENTLOG_KEY_BYTES]);

#endif

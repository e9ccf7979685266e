/*
 * authres - the message's authentication results (RFC 8601), and the one
 * writer of its Authentication-Results field.
 *
 * Each check that authenticates something (SPF, DKIM per signature,
 * DMARC) adds one struct auth_result to the transaction's record; checks
 * that depend on others (DMARC needs SPF's and DKIM's) read the record.
 * proxy/ writes the single Authentication-Results field from it, with
 * backstop's authserv-id, and removes every field the client sent that
 * claims that authserv-id (RFC 8601 5).
 */
#ifndef AUTHRES_H
#define AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

#define AUTHRES_MAX 12           /* results per message */
#define AUTHRES_DOMAIN_MAX 256
#define AUTHRES_PROPS_MAX 320

struct auth_result {
	char method[8];          /* "spf", "dkim", "dmarc"; "" = unset */
	char result[16];         /* RFC 8601 result word: pass, fail, ... */
	char domain[AUTHRES_DOMAIN_MAX]; /* the authenticated identifier's
	                            domain (spf: MAIL FROM or HELO domain,
	                            dkim: d=, dmarc: From:), lowercase */
	char reason[96];         /* a comment, already safe for "( )"; may be "" */
	char props[AUTHRES_PROPS_MAX]; /* "ptype.property=value ...", every
	                            value already a dot-atom or quoted-string */
};

struct auth_results {
	struct auth_result r[AUTHRES_MAX];
	size_t n;
};

/* authres_add - append a copy of one result; false when the record is
 * full or a is NULL (filter_env's auth outside a transaction): the result
 * is then left out and the caller may log it. */
bool authres_add(struct auth_results *a, const struct auth_result *r);

/* authres_find - the index-th result of method, or NULL (also when a is
 * NULL: no transaction, no results). */
const struct auth_result *authres_find(const struct auth_results *a,
    const char *method, size_t index);

/* authres_format - "Authentication-Results: <id>;\r\n\t<method>=<result>
 * ...\r\n" (one folded line per result; "none" when there are none,
 * or a is NULL).
 * Returns its length, or -1 when it does not fit in cap. */
int authres_format(const struct auth_results *a, const char *authserv_id,
    char *out, size_t cap);

/* authres_is_ours - does an Authentication-Results field value (as
 * received, without the name) carry authserv-id hostname? Case-insensitive;
 * leading CFWS and a quoted-string authserv-id are understood, a trailing
 * dot names the same host (RFC 8601 2.2). */
bool authres_is_ours(const char *value, size_t len, const char *hostname);

/* authres_value - append a property value to out (at most max bytes of
 * s): a dot-atom as is, else a quoted-string; controls and non-ASCII
 * become '?' (RFC 8601 2.2 pvalue). Returns false when out is full. */
bool authres_value(char *out, size_t cap, const char *s, size_t max);

#endif

/*
 * spf - SPF (RFC 7208) at MAIL FROM, evaluated by libspf2 on a worker
 * thread over proxy/dns.c. The filter is `filter_spf`; the rest of this
 * header is the pure part, exposed for tests/unit/test_spf.c.
 */
#ifndef SPF_H
#define SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filters/filter.h"

extern const struct filter_ops filter_spf;

/* The result, as RFC 7208 section 2.6 names it. */
enum spf_outcome {
	SPF_OUT_NONE = 0,
	SPF_OUT_NEUTRAL,
	SPF_OUT_PASS,
	SPF_OUT_FAIL,
	SPF_OUT_SOFTFAIL,
	SPF_OUT_TEMPERROR,
	SPF_OUT_PERMERROR,
};

#define SPF_DOMAIN_MAX 256
#define SPF_EXPLANATION_MAX 200

/* One evaluation: its input and what came out. Plain data, no pointers. */
struct spf_report {
	enum spf_outcome result;
	bool helo_identity;               /* null sender: postmaster@HELO checked */
	char ip[46];                      /* client address, textual */
	char helo[SPF_DOMAIN_MAX];
	char sender[FILTER_ADDR_MAX + 16];/* identity checked: local@domain */
	char domain[SPF_DOMAIN_MAX];      /* its domain */
	char receiver[SPF_DOMAIN_MAX];    /* [server] hostname */
	char problem[128];                /* temperror/permerror detail */
	char explanation[SPF_EXPLANATION_MAX]; /* the domain's exp=, cleaned; "" if none */
	char not_checked[96];             /* why no check ran (loopback, trusted); "" if one did */
};

/* spf_outcome_name - "none", "neutral", "pass", ... (RFC 8601 spf= values) */
const char *spf_outcome_name(enum spf_outcome r);

/*
 * spf_result_map - libspf2's (SPF_result_t, SPF_errcode_t) to a result.
 * libspf2 returns SPF_RESULT_INVALID for a DNS error on the top-level
 * record and for a record that does not compile: the first is temperror
 * (RFC 7208 4.4), the second permerror (4.6).
 */
enum spf_outcome spf_result_map(int spf_result, int spf_errcode);

/*
 * spf_text_clean - copy in to out (cap bytes incl. NUL), replacing
 * CR, LF, other controls, DEL and non-ASCII bytes by '?'; cut at cap-1.
 * For DNS-supplied text (exp=) that ends up in replies and headers.
 */
size_t spf_text_clean(char *out, size_t cap, const char *in);

/*
 * spf_headers_build - the Received-SPF (RFC 7208 9.1) and
 * Authentication-Results (RFC 8601) fields for r, each ending in CRLF,
 * folded, untrusted values quoted or cleaned. Returns the length, or -1 if
 * they cannot fit in cap even with long values shortened.
 */
int spf_headers_build(const struct spf_report *r, char *out, size_t cap);

/*
 * spf_verdict_build - the verdict for r under mode (enum spf_mode) and
 * permerror (enum spf_permerror): note, headers, and in enforce mode the
 * refusal (fail 550 5.7.23, temperror 451 4.7.24, permerror 550 5.7.24 when
 * configured). v is overwritten.
 */
void spf_verdict_build(const struct spf_report *r, int mode, int permerror,
    struct filter_verdict *v);

/* spf_auth_result - the spf= result for the message's authentication
 * record (written once, by proxy/, into Authentication-Results). */
void spf_auth_result(const struct spf_report *r, struct auth_result *a);

/*
 * spf_ar_is_ours - does an Authentication-Results field value (as
 * received, without the name) carry authserv-id hostname? Case-insensitive;
 * leading CFWS and a quoted-string authserv-id are understood (RFC 8601 2.2).
 */
bool spf_ar_is_ours(const char *value, size_t len, const char *hostname);

/*
 * spf_evaluate - run libspf2 for (ip, helo, mail_from) now, blocking, on
 * the calling thread, with deadline (dns_now_ms() based). Needs the state
 * filter_spf's init() made (sl: its *loop_state) and a resolver, dns
 * (dns_new()). Worker threads only (and tests).
 */
struct dns;
struct spf_loop;
void spf_evaluate(const struct spf_loop *sl, struct dns *dns, const char *ip, const char *helo,
    const char *mail_from, uint64_t deadline, struct spf_report *r);

#endif

/*
 * dmarc_eval - the DMARC verdict for one message (RFC 7489 6.6.2-6.6.4)
 * from what the caller already has: the From: domain, the outcome of policy
 * discovery, the SPF and DKIM results, and a random draw for pct=. Pure:
 * no DNS, no clock, no randomness of its own (the caller seeds and draws,
 * so tests can fix the draw). Needs dmarc_org_init() for alignment.
 */
#ifndef DMARC_EVAL_H
#define DMARC_EVAL_H

#include <stdbool.h>
#include <stddef.h>

#include "filters/dmarc_org.h"
#include "filters/dmarc_record.h"

/* An authentication result as DMARC sees it: only "pass" counts (6.6.2);
 * fail, softfail, neutral, none and permerror are all FAIL here. */
enum dmarc_auth {
	DMARC_AUTH_FAIL = 0,
	DMARC_AUTH_PASS,
	DMARC_AUTH_TEMPERROR, /* a DNS timeout or SERVFAIL while checking */
};

struct dmarc_dkim_sig {
	enum dmarc_auth result;
	const char *domain;   /* the signature's d=, NUL-terminated */
};

struct dmarc_input {
	const char *from_domain;          /* the RFC5322.From domain (one) */
	enum dmarc_discovery discovery;   /* how policy discovery ended, after
	                                     the organizational-domain fallback */
	const struct dmarc_record *record;/* read only when discovery is FOUND */
	bool record_at_org;               /* the record came from _dmarc.<org>,
	                                     not _dmarc.<from>: sp= applies (6.3) */
	enum dmarc_auth spf;
	const char *spf_domain;           /* the domain SPF checked: MAIL FROM's,
	                                     HELO's for the null sender; NULL if
	                                     none was checked */
	const struct dmarc_dkim_sig *dkim;/* every DKIM-Signature verified, in
	                                     any order; NULL when ndkim is 0 */
	size_t ndkim;
	unsigned pct_draw;                /* uniform in 0..99 from the caller
	                                     (taken modulo 100) */
};

/* RFC 8601 2.7.1 / RFC 7489 11.2 result words. */
enum dmarc_result {
	DMARC_RESULT_NONE = 0, /* no record, or no usable From domain */
	DMARC_RESULT_PASS,
	DMARC_RESULT_FAIL,
	DMARC_RESULT_TEMPERROR,/* record lookup failed, or an aligned SPF/DKIM
	                          check failed temporarily and nothing passed */
	DMARC_RESULT_PERMERROR,/* several records, or one that is invalid */
};

struct dmarc_verdict {
	enum dmarc_result result;
	enum dmarc_policy requested;  /* p= or sp= as published; NONE without a record */
	enum dmarc_policy applied;    /* what to do with the message: requested,
	                                 lowered by pct= sampling (6.6.4); NONE
	                                 unless result is FAIL */
	bool policy_is_sp;            /* requested came from sp= */
	bool sampled_out;             /* pct= excluded this message */
	bool spf_aligned;             /* SPF passed for an aligned domain */
	bool dkim_aligned;            /* a DKIM signature passed for an aligned d= */
	const char *reason;           /* static phrase for log lines */
	/* Authentication-Results (RFC 8601, RFC 7489 11.2): "dmarc=<result>
	 * header.from=<header_from>" and, when policy_dmarc is not NULL,
	 * "policy.dmarc=<policy_dmarc>" */
	char header_from[DMARC_DOMAIN_MAX + 1]; /* normalized; "" when the From
	                                           domain is not a domain name */
	const char *policy_dmarc;     /* applied policy's name when a record was
	                                 evaluated, else NULL */
};

/* dmarc_evaluate - fill *out from *in. Keeps no pointer into *in. */
void dmarc_evaluate(const struct dmarc_input *in, struct dmarc_verdict *out);

/* dmarc_result_name - "none", "pass", "fail", "temperror", "permerror". */
const char *dmarc_result_name(enum dmarc_result r);

#endif

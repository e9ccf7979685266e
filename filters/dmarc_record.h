/*
 * dmarc_record - the DMARC policy record (RFC 7489 6.3, 6.4) and the
 * choice among the TXT records at _dmarc.<domain> (6.6.3). Pure: no DNS,
 * no allocation, no globals; the caller does the lookups.
 *
 * Only the tags that decide what happens to a message are kept: v, p, sp,
 * pct, adkim, aspf, and whether rua holds a usable URI (6.6.3 step 6 needs
 * that). Reports (rua/ruf/ri/fo/rf) are not sent, so their values are not
 * kept; unknown tags are ignored (6.3).
 */
#ifndef DMARC_RECORD_H
#define DMARC_RECORD_H

#include <stdbool.h>
#include <stddef.h>

enum dmarc_policy {
	DMARC_POLICY_NONE = 0,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

enum dmarc_record_status {
	DMARC_RECORD_OK = 0,
	DMARC_RECORD_NOT_DMARC, /* does not start with "v=DMARC1": not a DMARC
	                           record at all, discarded (6.6.3 steps 2, 4) */
	DMARC_RECORD_INVALID,   /* a DMARC record, but without a valid p= (or
	                           with an invalid sp=) and without a usable rua=,
	                           or with a tag twice: no DMARC processing
	                           (6.6.3 step 6.2) */
};

struct dmarc_record {
	enum dmarc_policy p;
	enum dmarc_policy sp;    /* p when the record has no sp= (6.3) */
	bool has_sp;
	unsigned pct;            /* 0..100; 100 when absent or invalid */
	bool adkim_strict;       /* adkim=s; relaxed when absent or invalid */
	bool aspf_strict;        /* aspf=s; relaxed when absent or invalid */
	bool has_rua;            /* rua= has at least one syntactically valid URI */
	bool p_from_rua;         /* p= missing or invalid, or sp= invalid, but rua=
	                            usable: taken as p=none, sp=none (6.6.3 step 6.1) */
	const char *note;        /* first problem found and tolerated (an invalid
	                            pct=, a malformed unknown tag, ...), a static
	                            string for log lines; NULL when none */
};

/*
 * dmarc_record_parse - parse one TXT record (its character-strings already
 * joined, RFC 7489 6.6.3 via RFC 7208 3.3) from txt[0..len). *out is
 * always filled (defaults on error); out->note says why when not OK.
 */
enum dmarc_record_status dmarc_record_parse(const char *txt, size_t len,
    struct dmarc_record *out);

/* One TXT record as the resolver returned it, character-strings joined. */
struct dmarc_txt {
	const char *txt;
	size_t len;
};

/* How policy discovery ended (RFC 7489 6.6.3). */
enum dmarc_discovery {
	DMARC_DISCOVERY_EMPTY = 0, /* no record starting with v=DMARC1: at the
	                              From domain look at the organizational domain
	                              next (step 3); there, no DMARC (step 5) */
	DMARC_DISCOVERY_FOUND,     /* exactly one, valid (or p=none by step 6.1) */
	DMARC_DISCOVERY_MULTIPLE,  /* several v=DMARC1 records: no DMARC, and no
	                              fallback to the organizational domain (step 5) */
	DMARC_DISCOVERY_INVALID,   /* exactly one, invalid: no DMARC, no fallback
	                              (step 6.2) */
	DMARC_DISCOVERY_TEMPERROR, /* not returned here: for the caller to report
	                              a DNS failure (timeout, SERVFAIL) */
};

/*
 * dmarc_record_select - steps 2 and 5-6 of 6.6.3 over all TXT records
 * found at one _dmarc.<domain> (n may be 0 for NXDOMAIN/NODATA). *out is
 * filled when FOUND or INVALID (then out->note says why).
 */
enum dmarc_discovery dmarc_record_select(const struct dmarc_txt *txts, size_t n,
    struct dmarc_record *out);

/* dmarc_policy_name - "none", "quarantine", "reject". */
const char *dmarc_policy_name(enum dmarc_policy p);

#endif

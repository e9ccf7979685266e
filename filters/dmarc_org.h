/*
 * dmarc_org - organizational domains (RFC 7489 3.2) from libpsl, and
 * identifier alignment (3.1).
 *
 * Domains here are ASCII: A-labels, letters, digits, "-" and "_", labels of
 * 1..63 bytes, at most 253 bytes, one trailing dot ignored, case ignored.
 * Anything else (a U-label, an address literal, an empty label) is not a
 * domain name to us and never aligns: we do no IDNA conversion, and
 * comparing raw bytes of U-labels with the A-labels in DNS (d=, MAIL FROM)
 * could only give wrong answers. The caller decides what a From: domain
 * that is not one means (RFC 7489 6.6.1: malformed From).
 *
 * The public suffix list is loaded once by dmarc_org_init() before any
 * lookup and is read-only afterwards, so lookups may run on any thread.
 */
#ifndef DMARC_ORG_H
#define DMARC_ORG_H

#include <stdbool.h>
#include <stddef.h>

#define DMARC_DOMAIN_MAX 253 /* RFC 1035 2.3.4, without the trailing dot */
#define DMARC_PSL_DEBIAN "/usr/share/publicsuffix/public_suffix_list.dat"

/*
 * dmarc_org_init - load the public suffix list from path (the Debian
 * package publicsuffix installs DMARC_PSL_DEBIAN), or use libpsl's
 * built-in copy when path is NULL. Then check known answers (a plain
 * suffix, a wildcard and an exception rule), because a list that is
 * missing, truncated or not a list would otherwise make every sibling
 * domain unaligned or every domain its own organization without a word.
 * Returns 0, or -1 with a message naming the file and what to fix in
 * err[0..errlen). Calling it again replaces the list (not thread-safe).
 */
int dmarc_org_init(const char *path, char *err, size_t errlen);

/* dmarc_org_check - would dmarc_org_init(path) succeed? Loads and checks
 * the list, then frees it; the list in use is untouched. */
int dmarc_org_check(const char *path, char *err, size_t errlen);

/* dmarc_org_end - release the list; lookups fail afterwards. */
void dmarc_org_end(void);

/*
 * dmarc_domain_normalize - check s[0..len) is an ASCII domain name (see
 * above) and write it lower-cased, without a trailing dot, to out
 * (NUL-terminated). False, with out "", if it is not one.
 */
bool dmarc_domain_normalize(const char *s, size_t len, char out[DMARC_DOMAIN_MAX + 1]);

enum dmarc_org_status {
	DMARC_ORG_OK = 0,    /* out is the organizational domain (may equal the domain) */
	DMARC_ORG_SUFFIX,    /* the domain is itself a public suffix ("co.uk",
	                        "com") or a single label: it has no organizational
	                        domain; out is the normalized domain itself */
	DMARC_ORG_BAD_DOMAIN,/* not an ASCII domain name; out "" */
	DMARC_ORG_NO_LIST,   /* dmarc_org_init() has not succeeded; out "" */
};

/*
 * dmarc_org_domain - the organizational domain of domain (any case,
 * trailing dot allowed): libpsl's registrable domain, i.e. the public
 * suffix plus one label, private-section suffixes (blogspot.com) included.
 */
enum dmarc_org_status dmarc_org_domain(const char *domain, char out[DMARC_DOMAIN_MAX + 1]);

/*
 * dmarc_aligned - RFC 7489 3.1.1/3.1.2 identifier alignment of an
 * authenticated domain (DKIM d=, SPF MAIL FROM or HELO domain) with the
 * RFC5322.From domain. strict: equal names. relaxed: equal organizational
 * domains; a domain without one (a public suffix) aligns only with itself.
 * False when either is not an ASCII domain name or there is no list.
 */
bool dmarc_aligned(const char *from_domain, const char *auth_domain, bool strict);

#endif

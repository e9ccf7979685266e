/*
 * dmarc_org - organizational domains and alignment (see dmarc_org.h).
 *
 * Why not libopendmarc's: its reverse-label comparison drops a one-letter
 * leftmost label, so From "x.com" aligned with "attacker.com", and in
 * strict mode it reduced the second domain to its organizational domain,
 * so "example.com" aligned strictly with "mail.example.com"
 * (shared/notes/dependencies-2.md 1.3). Here strict alignment is a
 * comparison of whole normalized names and relaxed alignment a comparison
 * of whole registrable domains from libpsl; no prefix or suffix matching.
 *
 * Why libpsl's psl_registrable_domain(): it implements the list's
 * wildcard and exception rules, and it leaves domains under unlisted TLDs
 * to the implicit "*" rule (a.b.invalidtld -> b.invalidtld), which is what
 * RFC 7489 3.2 asks. It does not lower-case and treats "example.com." and
 * "example.com" differently (the file and built-in lists even disagree on
 * the former), so names are normalized before they reach it.
 */
#include <libpsl.h>
#include <stdio.h>
#include <string.h>

#include "filters/dmarc_org.h"

static psl_ctx_t *org_loaded;        /* from a file, ours to free */
static const psl_ctx_t *org_psl;     /* the list in use, or NULL */

static bool is_ldh_(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool dmarc_domain_normalize(const char *s, size_t len, char out[DMARC_DOMAIN_MAX + 1])
{
	size_t label = 0;

	out[0] = '\0';
	if (len > 0 && s[len - 1] == '.')
		len--; /* the root: "example.com." is "example.com" */
	if (len == 0 || len > DMARC_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0)
				return (out[0] = '\0', false); /* empty label */
			label = 0;
		} else if (is_ldh_(c)) {
			if (++label > 63)
				return (out[0] = '\0', false);
			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
		} else
			return (out[0] = '\0', false); /* 8-bit, NUL, "[", space... */
		out[i] = c;
	}
	if (label == 0)
		return (out[0] = '\0', false); /* "example.com.." */
	out[len] = '\0';
	return true;
}

enum dmarc_org_status dmarc_org_domain(const char *domain, char out[DMARC_DOMAIN_MAX + 1])
{
	char norm[DMARC_DOMAIN_MAX + 1];
	const char *reg;

	out[0] = '\0';
	if (org_psl == NULL)
		return DMARC_ORG_NO_LIST;
	if (!dmarc_domain_normalize(domain, strlen(domain), norm))
		return DMARC_ORG_BAD_DOMAIN;
	/* a pointer into norm, or NULL when norm is a public suffix itself */
	reg = psl_registrable_domain(org_psl, norm);
	if (reg == NULL) {
		memcpy(out, norm, strlen(norm) + 1);
		return DMARC_ORG_SUFFIX;
	}
	memmove(out, reg, strlen(reg) + 1);
	return DMARC_ORG_OK;
}

bool dmarc_aligned(const char *from_domain, const char *auth_domain, bool strict)
{
	char from[DMARC_DOMAIN_MAX + 1], auth[DMARC_DOMAIN_MAX + 1];

	if (org_psl == NULL || from_domain == NULL || auth_domain == NULL)
		return false;
	if (strict) {
		if (!dmarc_domain_normalize(from_domain, strlen(from_domain), from) ||
		    !dmarc_domain_normalize(auth_domain, strlen(auth_domain), auth))
			return false;
		return strcmp(from, auth) == 0;
	}
	enum dmarc_org_status fs = dmarc_org_domain(from_domain, from);
	enum dmarc_org_status as = dmarc_org_domain(auth_domain, auth);
	if ((fs != DMARC_ORG_OK && fs != DMARC_ORG_SUFFIX) ||
	    (as != DMARC_ORG_OK && as != DMARC_ORG_SUFFIX))
		return false;
	/* for a public suffix, out is the suffix itself: equal only to itself */
	return strcmp(from, auth) == 0;
}

/* Known answers every complete list gives; from the list's own tests
 * (publicsuffix/list tests/test_psl.txt). */
static const struct {
	const char *domain;
	const char *org;    /* NULL: a public suffix */
} org_known[] = {
	{ "www.example.co.uk", "example.co.uk" }, /* plain rule */
	{ "x.com", "x.com" },                     /* one-letter label (libopendmarc) */
	{ "co.uk", NULL },
	{ "a.b.c.kawasaki.jp", "b.c.kawasaki.jp" },   /* wildcard *.kawasaki.jp */
	{ "www.city.kawasaki.jp", "city.kawasaki.jp" }, /* exception !city.kawasaki.jp */
};

/* list_open - the list at path (or the built-in one), checked against
 * org_known; *loaded is what the caller frees (NULL for the built-in) */
static const psl_ctx_t *list_open(const char *path, psl_ctx_t **loaded, char *err, size_t errlen)
{
	const char *what = path ? path : "libpsl's built-in list";
	const psl_ctx_t *psl;

	*loaded = NULL;
	if (path) {
		if ((*loaded = psl_load_file(path)) == NULL) {
			snprintf(err, errlen, "public suffix list %s cannot be loaded (missing or "
			    "unreadable): install the Debian package publicsuffix or fix the path", path);
			return NULL;
		}
		psl = *loaded;
	} else if ((psl = psl_builtin()) == NULL) {
		snprintf(err, errlen, "libpsl has no built-in public suffix list: "
		    "configure the file (Debian package publicsuffix, %s)", DMARC_PSL_DEBIAN);
		return NULL;
	}
	for (size_t k = 0; k < sizeof org_known / sizeof org_known[0]; k++) {
		const char *got = psl_registrable_domain(psl, org_known[k].domain);
		const char *want = org_known[k].org;
		if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0)) {
			snprintf(err, errlen, "public suffix list %s gives %s for the organizational "
			    "domain of %s, expected %s: the list is incomplete or not a public suffix "
			    "list (reinstall the Debian package publicsuffix)", what,
			    got ? got : "none", org_known[k].domain, want ? want : "none");
			if (*loaded)
				psl_free(*loaded);
			*loaded = NULL;
			return NULL;
		}
	}
	return psl;
}

int dmarc_org_init(const char *path, char *err, size_t errlen)
{
	dmarc_org_end();
	if ((org_psl = list_open(path, &org_loaded, err, errlen)) == NULL)
		return -1;
	return 0;
}

int dmarc_org_check(const char *path, char *err, size_t errlen)
{
	psl_ctx_t *loaded;

	if (list_open(path, &loaded, err, errlen) == NULL)
		return -1;
	if (loaded)
		psl_free(loaded);
	return 0;
}

void dmarc_org_end(void)
{
	if (org_loaded)
		psl_free(org_loaded);
	org_loaded = NULL;
	org_psl = NULL;
}

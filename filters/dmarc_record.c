/*
 * dmarc_record - parse a DMARC policy record and choose among the TXT
 * records of one name (see dmarc_record.h).
 *
 * The rules, with the text they come from (RFC 7489):
 *  - 6.3: "the "v" and "p" tags MUST be present and MUST appear in that
 *    order": v first (6.4 dmarc-record starts with dmarc-version, and 6.6.3
 *    step 2 discards records that do not start with it); p anywhere after v
 *    (the ABNF puts it second, but "in that order" only asks for v before p,
 *    and refusing "v=DMARC1; rua=...; p=reject" would turn a published
 *    reject policy into no policy at all).
 *  - 6.4: dmarc-version = "v" *WSP "=" *WSP %x44 %x4d %x41 %x52 %x43 %x31:
 *    "DMARC1" is case-sensitive, tag names and the keyword values (ABNF
 *    quoted strings, RFC 5234 2.3) are not. Whitespace is SP and HTAB only,
 *    around "=" and ";" (dmarc-sep = *WSP ";" *WSP); none before "v" and
 *    none inside a value. Trailing whitespace is allowed.
 *  - 6.3: "Unknown tags MUST be ignored. Syntax errors in the remainder of
 *    the record SHOULD be discarded in favor of default values (if any) or
 *    ignored outright": a bad pct= is 100, a bad adkim=/aspf= is relaxed, a
 *    malformed tag-spec (no "=", bad name) or an empty one (";;") is
 *    skipped.
 *  - 6.6.3 step 6: no valid p=, or an invalid sp=: with a syntactically
 *    valid rua= URI, act as if the record were "v=DMARC1; p=none" (so sp is
 *    none too); without, no DMARC processing (INVALID).
 *  - 6.3 takes its tag-value syntax from DKIM (RFC 6376 3.2): "if a tag name
 *    does occur more than once, the entire tag-list is invalid". A known tag
 *    twice is INVALID (which one would apply is the question an attacker
 *    wants left open); repeated unknown tags are not tracked.
 *  - 6.4 pct = 1*3DIGIT, 6.3 "integer between 0 and 100, inclusive".
 */
#include <string.h>

#include "filters/dmarc_record.h"

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ci_equal - does s[0..n) equal the lower-case ASCII word w, ignoring case? */
static bool ci_equal(const char *s, size_t n, const char *w)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (w[i] == '\0' || ascii_lower(s[i]) != w[i])
			return false;
	return w[i] == '\0';
}

static bool parse_policy(const char *v, size_t n, enum dmarc_policy *p)
{
	if (ci_equal(v, n, "none"))
		*p = DMARC_POLICY_NONE;
	else if (ci_equal(v, n, "quarantine"))
		*p = DMARC_POLICY_QUARANTINE;
	else if (ci_equal(v, n, "reject"))
		*p = DMARC_POLICY_REJECT;
	else
		return false;
	return true;
}

/* parse_pct - 1*3DIGIT with a value of at most 100. */
static bool parse_pct(const char *v, size_t n, unsigned *pct)
{
	unsigned x = 0;

	if (n < 1 || n > 3)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(v[i]))
			return false;
		x = x * 10 + (unsigned)(v[i] - '0');
	}
	if (x > 100)
		return false;
	*pct = x;
	return true;
}

/* parse_mode - "r" or "s" (adkim, aspf). */
static bool parse_mode(const char *v, size_t n, bool *strict)
{
	if (ci_equal(v, n, "r"))
		*strict = false;
	else if (ci_equal(v, n, "s"))
		*strict = true;
	else
		return false;
	return true;
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * uri_valid - RFC 7489 6.4 dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" /
 * "g" / "t" ] ], the URI checked as far as RFC 3986 3 allows without
 * knowing the scheme: scheme ":" then at least one URI character, with
 * complete %-escapes. "," and "!" must be %-encoded inside the URI
 * (6.2), so a "!" starts the size limit.
 */
static bool uri_valid(const char *u, size_t n)
{
	size_t i = 0, rest;

	if (n == 0 || !is_alpha(u[0]))
		return false;
	while (i < n && (is_alpha(u[i]) || is_digit(u[i]) || u[i] == '+' ||
	    u[i] == '-' || u[i] == '.'))
		i++;
	if (i >= n || u[i] != ':')
		return false;
	rest = ++i;
	while (i < n && u[i] != '!') {
		char c = u[i];
		if (c == '%') {
			if (i + 2 >= n || !is_hex(u[i + 1]) || !is_hex(u[i + 2]))
				return false;
			i += 3;
		} else if (is_alpha(c) || is_digit(c) ||
		    (c != 0 && strchr("-._~$&'()*+=:@/?#[]", c)))
			i++;
		else
			return false;
	}
	if (i == rest)
		return false;
	if (i < n) { /* "!" size */
		size_t digits = 0;
		for (i++; i < n && is_digit(u[i]); i++)
			digits++;
		if (digits == 0)
			return false;
		if (i < n && u[i] != 0 && strchr("kmgtKMGT", u[i]))
			i++;
	}
	return i == n;
}

/* rua_usable - does the rua= value hold at least one valid dmarc-uri?
 * dmarc-auri = "rua" *WSP "=" *WSP dmarc-uri *(*WSP "," *WSP dmarc-uri) */
static bool rua_usable(const char *v, size_t n)
{
	size_t i = 0;

	while (i <= n) {
		size_t start = i, end;
		while (i < n && v[i] != ',')
			i++;
		end = i;
		while (start < end && is_wsp(v[start]))
			start++;
		while (end > start && is_wsp(v[end - 1]))
			end--;
		if (uri_valid(v + start, end - start))
			return true;
		i++; /* past the "," (or past the end) */
	}
	return false;
}

static void defaults(struct dmarc_record *r)
{
	memset(r, 0, sizeof *r);
	r->p = DMARC_POLICY_NONE;
	r->sp = DMARC_POLICY_NONE;
	r->pct = 100;
}

/* note - keep the first tolerated problem for the log line. */
static void note(struct dmarc_record *r, const char *why)
{
	if (r->note == NULL)
		r->note = why;
}

/*
 * version_end - if txt starts with "v" *WSP "=" *WSP "DMARC1" followed by
 * WSP, ";" or the end, the offset after "DMARC1"; else 0.
 */
static size_t version_end(const char *txt, size_t len)
{
	size_t i = 0;

	if (len < 1 || ascii_lower(txt[0]) != 'v')
		return 0;
	for (i = 1; i < len && is_wsp(txt[i]); i++)
		;
	if (i >= len || txt[i] != '=')
		return 0;
	for (i++; i < len && is_wsp(txt[i]); i++)
		;
	if (len - i < 6 || memcmp(txt + i, "DMARC1", 6) != 0)
		return 0;
	i += 6;
	if (i < len && !is_wsp(txt[i]) && txt[i] != ';')
		return 0; /* "DMARC10", "DMARC1p=reject" */
	return i;
}

enum known_tag { TAG_P, TAG_SP, TAG_PCT, TAG_ADKIM, TAG_ASPF, TAG_RUA, TAG_V, TAG_COUNT };

static int known_tag(const char *name, size_t n)
{
	static const char *const names[TAG_COUNT] = { "p", "sp", "pct", "adkim", "aspf", "rua", "v" };

	for (int t = 0; t < TAG_COUNT; t++)
		if (ci_equal(name, n, names[t]))
			return t;
	return -1;
}

enum dmarc_record_status dmarc_record_parse(const char *txt, size_t len,
    struct dmarc_record *out)
{
	bool seen[TAG_COUNT] = { false };
	bool p_valid = false, sp_invalid = false, duplicate = false;
	size_t i;

	defaults(out);
	if ((i = version_end(txt, len)) == 0) {
		out->note = "does not start with v=DMARC1";
		return DMARC_RECORD_NOT_DMARC;
	}
	seen[TAG_V] = true;
	/* now at *WSP, ";" or the end; each round takes one tag-spec */
	while (i < len) {
		size_t spec, spec_end, name_end, val, val_end;
		int tag;

		while (i < len && is_wsp(txt[i]))
			i++;
		if (i >= len)
			break;
		if (txt[i] != ';') {
			note(out, "text after a value");
			while (i < len && txt[i] != ';')
				i++;
			continue;
		}
		i++; /* the dmarc-sep's ";" */
		while (i < len && is_wsp(txt[i]))
			i++;
		spec = i;
		while (i < len && txt[i] != ';')
			i++;
		spec_end = i; /* the tag-spec is txt[spec..spec_end) */
		while (spec_end > spec && is_wsp(txt[spec_end - 1]))
			spec_end--;
		if (spec == spec_end) {
			if (i < len)
				note(out, "empty tag");
			continue; /* ";;" or the trailing [dmarc-sep] */
		}
		/* tag-name = ALPHA *ALNUMPUNC (RFC 6376 3.2) */
		name_end = spec;
		if (!is_alpha(txt[name_end])) {
			note(out, "malformed tag ignored");
			continue;
		}
		while (name_end < spec_end && (is_alpha(txt[name_end]) ||
		    is_digit(txt[name_end]) || txt[name_end] == '_'))
			name_end++;
		val = name_end;
		while (val < spec_end && is_wsp(txt[val]))
			val++;
		if (val >= spec_end || txt[val] != '=') {
			note(out, "malformed tag ignored");
			continue;
		}
		for (val++; val < spec_end && is_wsp(txt[val]); val++)
			;
		val_end = spec_end;
		tag = known_tag(txt + spec, name_end - spec);
		if (tag < 0)
			continue; /* unknown tags MUST be ignored */
		if (seen[tag]) {
			duplicate = true;
			continue;
		}
		seen[tag] = true;
		const char *v = txt + val;
		size_t vn = val_end - val;
		switch ((enum known_tag)tag) {
		case TAG_P:
			p_valid = parse_policy(v, vn, &out->p);
			if (!p_valid)
				note(out, "invalid p=");
			break;
		case TAG_SP:
			out->has_sp = true;
			if (!parse_policy(v, vn, &out->sp)) {
				sp_invalid = true;
				note(out, "invalid sp=");
			}
			break;
		case TAG_PCT:
			if (!parse_pct(v, vn, &out->pct)) {
				out->pct = 100;
				note(out, "invalid pct= taken as 100");
			}
			break;
		case TAG_ADKIM:
			if (!parse_mode(v, vn, &out->adkim_strict)) {
				out->adkim_strict = false;
				note(out, "invalid adkim= taken as r");
			}
			break;
		case TAG_ASPF:
			if (!parse_mode(v, vn, &out->aspf_strict)) {
				out->aspf_strict = false;
				note(out, "invalid aspf= taken as r");
			}
			break;
		case TAG_RUA:
			out->has_rua = rua_usable(v, vn);
			if (!out->has_rua)
				note(out, "no valid URI in rua=");
			break;
		case TAG_V:
		case TAG_COUNT:
			break; /* v is seen[] from the start: a second one is a duplicate */
		}
	}
	if (duplicate) {
		out->note = "a tag appears twice";
		return DMARC_RECORD_INVALID;
	}
	if (!seen[TAG_P])
		note(out, "no p=");
	if (!p_valid || sp_invalid) {
		if (!out->has_rua)
			return DMARC_RECORD_INVALID;
		/* 6.6.3 step 6.1 */
		out->p = DMARC_POLICY_NONE;
		out->sp = DMARC_POLICY_NONE;
		out->p_from_rua = true;
		return DMARC_RECORD_OK;
	}
	if (!out->has_sp)
		out->sp = out->p;
	return DMARC_RECORD_OK;
}

enum dmarc_discovery dmarc_record_select(const struct dmarc_txt *txts, size_t n,
    struct dmarc_record *out)
{
	size_t found = 0, which = 0;

	defaults(out);
	for (size_t k = 0; k < n; k++) {
		/* step 2/4: keep only records that start with v=DMARC1 */
		if (version_end(txts[k].txt, txts[k].len) == 0)
			continue;
		if (found++ == 0)
			which = k;
	}
	if (found == 0)
		return DMARC_DISCOVERY_EMPTY;
	if (found > 1) {
		out->note = "several v=DMARC1 records";
		return DMARC_DISCOVERY_MULTIPLE;
	}
	if (dmarc_record_parse(txts[which].txt, txts[which].len, out) != DMARC_RECORD_OK)
		return DMARC_DISCOVERY_INVALID;
	return DMARC_DISCOVERY_FOUND;
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_NONE:
		return "none";
	case DMARC_POLICY_QUARANTINE:
		return "quarantine";
	case DMARC_POLICY_REJECT:
		return "reject";
	}
	return "none";
}

/*
 * smtp_addr - the one parser for SMTP paths and ESMTP parameters
 * (RFC 5321 4.1.2, RFC 6531 for SMTPUTF8).
 *
 * Contract (see smtp_addr.h): every byte of s[0..len) is judged; nothing
 * past len is read. Each part is first scanned and validated, its length
 * checked against the RFC 5321 4.5.3.1 limits, and only then copied into
 * path->addr, so the fixed buffer can never overflow. On any error *path is
 * reset (addr "", domain "") and *nparams is 0. With SMTP_PATH_ALLOW_UTF8,
 * 8-bit bytes must form valid UTF-8 (RFC 6531 3.3); invalid sequences are
 * SYNTAX. General address literals ("[tag:...]") other than IPv6 are
 * refused: no other tag is registered.
 */
#include <string.h>

#include "smtp/smtp_addr.h"

static bool is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ci_prefix - does s[0..n) start with the lower-case ASCII word w? */
static bool ci_prefix(const char *s, size_t n, const char *w)
{
	size_t i;

	for (i = 0; w[i]; i++)
		if (i >= n || ascii_lower(s[i]) != w[i])
			return false;
	return true;
}

/* is_atext - RFC 5322 3.2.3 atext, the ASCII part. */
static bool is_atext(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* smtp_utf8_len - see smtp_addr.h */
size_t smtp_utf8_len(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need;

	if (n == 0)
		return 0;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;
		else if (s[0] == 0xed)
			hi = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need;
}

/* eight_bit - judge the 8-bit sequence at s[i..len): its length, or 0 with
 * *st set (8BIT without ALLOW_UTF8, SYNTAX when not UTF-8). */
static size_t eight_bit(const char *s, size_t len, size_t i, unsigned flags,
    enum smtp_path_status *st)
{
	size_t n;

	if (!(flags & SMTP_PATH_ALLOW_UTF8)) {
		*st = SMTP_PATH_8BIT;
		return 0;
	}
	if ((n = smtp_utf8_len(s + i, len - i)) == 0)
		*st = SMTP_PATH_SYNTAX;
	return n;
}

/* ipv4_valid - RFC 5321 4.1.3 IPv4-address-literal: 4 Snum of 0..255. */
static bool ipv4_valid(const char *s, size_t n)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0, digits = 0;
		if (part > 0) {
			if (i >= n || s[i] != '.')
				return false;
			i++;
		}
		while (i < n && is_digit((unsigned char)s[i]) && digits < 3) {
			v = v * 10 + (unsigned)(s[i] - '0');
			digits++;
			i++;
		}
		if (digits == 0 || v > 255)
			return false;
	}
	return i == n;
}

/* ipv6_valid - RFC 5321 4.1.3 IPv6-addr: hex groups, at most one "::",
 * optionally ending in an IPv4 address (two groups). */
static bool ipv6_valid(const char *s, size_t n)
{
	size_t i = 0;
	unsigned groups = 0;
	bool compressed = false;

	if (n >= 2 && s[0] == ':' && s[1] == ':') {
		compressed = true;
		i = 2;
		if (i == n)
			return true;
	}
	for (;;) {
		size_t start = i;
		while (i < n && is_hex((unsigned char)s[i]))
			i++;
		if (i < n && s[i] == '.') {
			/* trailing IPv4 part */
			if (!ipv4_valid(s + start, n - start))
				return false;
			groups += 2;
			break;
		}
		if (i == start || i - start > 4)
			return false;
		groups++;
		if (i == n)
			break;
		if (s[i] != ':' || ++i == n)
			return false;
		if (s[i] == ':') {
			if (compressed)
				return false;
			compressed = true;
			if (++i == n)
				break;
		}
	}
	return compressed ? groups <= 7 : groups == 8;
}

/* literal_valid - the inside of "[...]": IPv4 or "IPv6:" address. */
static bool literal_valid(const char *s, size_t n)
{
	if (ci_prefix(s, n, "ipv6:"))
		return ipv6_valid(s + 5, n - 5);
	return ipv4_valid(s, n);
}

/*
 * scan_domain - validate the Domain or address literal starting at s[i];
 * *end is set past it. RFC 5321 4.1.2: sub-domain = Let-dig [Ldh-str],
 * RFC 1035 2.3.4: labels of at most 63 octets. U-labels with ALLOW_UTF8.
 */
static enum smtp_path_status scan_domain(const char *s, size_t len, size_t i,
    unsigned flags, size_t *end, bool *has8)
{
	enum smtp_path_status st = SMTP_PATH_OK;

	if (i < len && s[i] == '[') {
		size_t j = i + 1;
		while (j < len && s[j] != ']' && s[j] != '[')
			j++;
		if (j >= len || s[j] != ']' || !literal_valid(s + i + 1, j - i - 1))
			return SMTP_PATH_SYNTAX;
		*end = j + 1;
		return SMTP_PATH_OK;
	}
	for (;;) {
		size_t start = i;
		bool hyphen_last = false;
		while (i < len) {
			unsigned char c = (unsigned char)s[i];
			size_t n;
			if (is_alpha(c) || is_digit(c) || c == '-') {
				if (c == '-' && i == start)
					return SMTP_PATH_SYNTAX;
				hyphen_last = c == '-';
				i++;
			} else if (c >= 0x80) {
				if ((n = eight_bit(s, len, i, flags, &st)) == 0)
					return st;
				*has8 = true;
				hyphen_last = false;
				i += n;
			} else
				break;
		}
		if (i == start || hyphen_last || i - start > 63)
			return SMTP_PATH_SYNTAX;
		if (i >= len || s[i] != '.')
			break;
		i++; /* a label must follow: no trailing dot */
	}
	*end = i;
	return SMTP_PATH_OK;
}

/* scan_local - validate the Local-part (Dot-string or Quoted-string,
 * RFC 5321 4.1.2) starting at s[i]; *end is set past it. */
static enum smtp_path_status scan_local(const char *s, size_t len, size_t i,
    unsigned flags, size_t *end, bool *has8)
{
	enum smtp_path_status st = SMTP_PATH_OK;
	size_t n;

	if (i < len && s[i] == '"') {
		for (i++;; ) {
			unsigned char c;
			if (i >= len)
				return SMTP_PATH_SYNTAX;
			c = (unsigned char)s[i];
			if (c == '"') {
				*end = i + 1;
				return SMTP_PATH_OK;
			}
			if (c == '\\') {
				/* quoted-pairSMTP = "\" %d32-126 */
				if (i + 1 >= len || (unsigned char)s[i + 1] < 32 ||
				    (unsigned char)s[i + 1] > 126)
					return SMTP_PATH_SYNTAX;
				i += 2;
			} else if (c >= 32 && c <= 126) {
				i++;
			} else if (c >= 0x80) {
				if ((n = eight_bit(s, len, i, flags, &st)) == 0)
					return st;
				*has8 = true;
				i += n;
			} else
				return SMTP_PATH_SYNTAX;
		}
	}

	bool need_atom = true; /* at the start or after a dot */
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (is_atext(c)) {
			i++;
			need_atom = false;
		} else if (c == '.') {
			if (need_atom)
				return SMTP_PATH_SYNTAX; /* leading or double dot */
			need_atom = true;
			i++;
		} else if (c >= 0x80) {
			if ((n = eight_bit(s, len, i, flags, &st)) == 0)
				return st;
			*has8 = true;
			need_atom = false;
			i += n;
		} else
			break;
	}
	if (need_atom)
		return SMTP_PATH_SYNTAX; /* empty, or trailing dot */
	*end = i;
	return SMTP_PATH_OK;
}

/* scan_route - skip an obsolete source route "@a,@b:" (RFC 5321 4.1.2
 * A-d-l, to be accepted and ignored, RFC 5321 C). */
static enum smtp_path_status scan_route(const char *s, size_t len, size_t i,
    unsigned flags, size_t *end, bool *has8)
{
	enum smtp_path_status st;

	for (;;) {
		if (i >= len || s[i] != '@')
			return SMTP_PATH_SYNTAX;
		if ((st = scan_domain(s, len, i + 1, flags, &i, has8)) != SMTP_PATH_OK)
			return st;
		if (i < len && s[i] == ':') {
			*end = i + 1;
			return SMTP_PATH_OK;
		}
		if (i >= len || s[i] != ',')
			return SMTP_PATH_SYNTAX;
		i++;
	}
}

/* scan_params - RFC 5321 4.1.2 Mail-parameters: esmtp-keyword
 * ["=" esmtp-value], separated by spaces. */
static enum smtp_path_status scan_params(const char *s, size_t len, size_t i,
    unsigned flags, struct smtp_param *params, size_t cap, size_t *count)
{
	enum smtp_path_status st = SMTP_PATH_OK;
	size_t n = 0;

	if (i < len && s[i] != ' ')
		return SMTP_PATH_SYNTAX; /* "<a@b>x" */
	for (;;) {
		size_t key, vstart;
		while (i < len && s[i] == ' ')
			i++;
		if (i >= len)
			break;
		key = i;
		/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
		while (i < len && (is_alpha((unsigned char)s[i]) ||
		    is_digit((unsigned char)s[i]) || (s[i] == '-' && i > key)))
			i++;
		if (i == key)
			return SMTP_PATH_BAD_PARAM;
		if (n >= cap)
			return SMTP_PATH_TOO_MANY_PARAMS;
		params[n].key = s + key;
		params[n].key_len = i - key;
		params[n].value = 0;
		params[n].value_len = 0;
		if (i < len && s[i] == '=') {
			vstart = ++i;
			/* esmtp-value = 1*(%d33-60 / %d62-126), UTF-8 with SMTPUTF8 */
			while (i < len && s[i] != ' ') {
				unsigned char c = (unsigned char)s[i];
				size_t m;
				if (c >= 33 && c <= 126 && c != '=')
					i++;
				else if (c >= 0x80 && (m = eight_bit(s, len, i, flags, &st)) != 0)
					i += m;
				else
					return SMTP_PATH_BAD_PARAM;
			}
			if (i == vstart)
				return SMTP_PATH_BAD_PARAM;
			params[n].value = s + vstart;
			params[n].value_len = i - vstart;
		}
		if (i < len && s[i] != ' ')
			return SMTP_PATH_BAD_PARAM;
		n++;
	}
	*count = n;
	return SMTP_PATH_OK;
}

static void path_reset(struct smtp_path *path)
{
	memset(path, 0, sizeof(*path));
	path->domain = path->addr;
}

/* path_copy - append local "@" domain (lengths already checked). */
static void path_copy(struct smtp_path *path, const char *local, size_t llen,
    const char *domain, size_t dlen)
{
	memcpy(path->addr, local, llen);
	path->local_len = llen;
	path->addr_len = llen;
	if (domain) {
		path->addr[llen] = '@';
		memcpy(path->addr + llen + 1, domain, dlen);
		path->addr_len = llen + 1 + dlen;
		path->domain = path->addr + llen + 1;
	} else
		path->domain = path->addr + llen;
	path->addr[path->addr_len] = '\0';
}

/* parse_path - the body of smtp_path_parse, without the error reset. */
static enum smtp_path_status parse_path(const char *s, size_t len,
    unsigned flags, struct smtp_path *path, struct smtp_param *params,
    size_t cap, size_t *count)
{
	enum smtp_path_status st;
	bool bracket = false, has8 = false;
	size_t i = 0, lend = 0, dend = 0;	/* set by scan_local/scan_domain; 0 quiets -O1 */

	while (i < len && s[i] == ' ')
		i++;
	if (i < len && s[i] == '<') {
		bracket = true;
		i++;
	} else if (!(flags & SMTP_PATH_ALLOW_NO_BRACKETS))
		return SMTP_PATH_SYNTAX; /* RFC 5321 4.1.2: Path = "<" ... ">" */

	if (bracket && i < len && s[i] == '>') {
		if (!(flags & SMTP_PATH_ALLOW_NULL))
			return SMTP_PATH_SYNTAX;
		path->is_null = true;
		return scan_params(s, len, i + 1, flags, params, cap, count);
	}
	if (bracket && i < len && s[i] == '@' &&
	    (st = scan_route(s, len, i, flags, &i, &has8)) != SMTP_PATH_OK)
		return st;

	/* RFC 5321 4.1.1.3: "<Postmaster>" without a domain, any case. */
	if ((flags & SMTP_PATH_ALLOW_POSTMASTER) && ci_prefix(s + i, len - i, "postmaster") &&
	    (bracket ? i + 10 < len && s[i + 10] == '>' : i + 10 == len || s[i + 10] == ' ')) {
		path->is_postmaster = true;
		path_copy(path, "Postmaster", 10, 0, 0);
		i += 10 + (bracket ? 1 : 0);
		return scan_params(s, len, i, flags, params, cap, count);
	}

	if ((st = scan_local(s, len, i, flags, &lend, &has8)) != SMTP_PATH_OK)
		return st;
	if (lend - i > SMTP_LOCAL_MAX)
		return SMTP_PATH_TOO_LONG;
	if (lend >= len || s[lend] != '@')
		return SMTP_PATH_SYNTAX;
	if ((st = scan_domain(s, len, lend + 1, flags, &dend, &has8)) != SMTP_PATH_OK)
		return st;
	if (dend - (lend + 1) > SMTP_DOMAIN_MAX || dend - i > SMTP_ADDR_MAX)
		return SMTP_PATH_TOO_LONG;
	if (bracket && (dend >= len || s[dend] != '>'))
		return SMTP_PATH_SYNTAX;
	path_copy(path, s + i, lend - i, s + lend + 1, dend - lend - 1);
	path->has_8bit = has8;
	return scan_params(s, len, dend + (bracket ? 1 : 0), flags, params, cap,
	    count);
}

/* smtp_path_parse - parse s[0..len) into *path and up to *nparams params. */
enum smtp_path_status smtp_path_parse(const char *s, size_t len,
    unsigned flags, struct smtp_path *path, struct smtp_param *params,
    size_t *nparams)
{
	size_t cap = nparams && params ? *nparams : 0, count = 0;
	enum smtp_path_status st;

	path_reset(path);
	st = parse_path(s, len, flags, path, params, cap, &count);
	if (st != SMTP_PATH_OK) {
		path_reset(path);
		count = 0;
	}
	if (nparams)
		*nparams = count;
	return st;
}

/* smtp_param_is - case-insensitive key comparison. */
bool smtp_param_is(const struct smtp_param *p, const char *key)
{
	size_t i;

	for (i = 0; i < p->key_len; i++)
		if (key[i] == '\0' || ascii_lower(p->key[i]) != ascii_lower(key[i]))
			return false;
	return key[i] == '\0';
}

/* smtp_xtext_encode - RFC 3461 4 xtext, NUL-terminated into out[cap]. */
long smtp_xtext_encode(const char *in, size_t len, char *out, size_t cap)
{
	const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		bool plain = c >= '!' && c <= '~' && c != '+' && c != '=';
		size_t need = plain ? 1 : 3;
		if (o + need + 1 > cap) { /* room for the NUL too */
			if (cap > 0)
				out[0] = '\0';
			return -1;
		}
		if (plain)
			out[o++] = (char)c;
		else {
			out[o++] = '+';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (o + 1 > cap)
		return -1;
	out[o] = '\0';
	return (long)o;
}

/* smtp_domain_valid - RFC 5321 Domain or address literal, ASCII only (a
 * HELO name in U-labels is not accepted: clients send A-labels). */
bool smtp_domain_valid(const char *s, size_t len)
{
	size_t end = 0;
	bool has8 = false;

	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	return scan_domain(s, len, 0, 0, &end, &has8) == SMTP_PATH_OK && end == len;
}

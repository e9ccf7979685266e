/*
 * dnsbl_sites - postscreen's dnsbl_sites entries (see dnsbl_sites.h).
 */
#include <stdio.h>
#include <string.h>

#include "filters/dnsbl_sites.h"

#define SYNTAX_HINT "write domain[=filter][*weight], e.g. zen.example=127.0.0.[2..11]*2"

static void set_bit(uint8_t set[32], unsigned v)
{
	set[v >> 3] |= (uint8_t)(1u << (v & 7));
}

static bool has_bit(const uint8_t set[32], unsigned v)
{
	return (set[v >> 3] >> (v & 7)) & 1u;
}

/* number - 1 to 3 decimal digits, 0..255. */
static bool number(const char **p, const char *end, unsigned *out)
{
	unsigned v = 0;
	size_t n = 0;

	while (*p < end && **p >= '0' && **p <= '9' && n < 4) {
		v = v * 10 + (unsigned)(**p - '0');
		(*p)++;
		n++;
	}
	if (n == 0 || n > 3 || v > 255)
		return false;
	*out = v;
	return true;
}

/* octet - N, or [item;item...] with item N or N..M (N <= M). */
static bool octet(const char **p, const char *end, uint8_t set[32])
{
	unsigned a, b;

	if (*p < end && **p != '[') {
		if (!number(p, end, &a))
			return false;
		set_bit(set, a);
		return true;
	}
	(*p)++;
	for (;;) {
		if (!number(p, end, &a))
			return false;
		b = a;
		if (end - *p >= 2 && (*p)[0] == '.' && (*p)[1] == '.') {
			*p += 2;
			if (!number(p, end, &b) || b < a)
				return false;
		}
		for (unsigned v = a; v <= b; v++)
			set_bit(set, v);
		if (*p < end && **p == ';') {
			(*p)++;
			continue;
		}
		if (*p < end && **p == ']') {
			(*p)++;
			return true;
		}
		return false;
	}
}

static bool filter_parse(const char *p, const char *end, struct dnsbl_site *out)
{
	for (int i = 0; i < 4; i++) {
		if (i > 0) {
			if (p >= end || *p != '.')
				return false;
			p++;
		}
		if (!octet(&p, end, out->octet[i]))
			return false;
	}
	return p == end;
}

static bool weight_parse(const char *p, const char *end, int *out)
{
	bool neg = false;
	long v = 0;

	if (p < end && (*p == '-' || *p == '+')) {
		neg = *p == '-';
		p++;
	}
	if (p == end)
		return false;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (*p - '0');
		if (v > DNSBL_WEIGHT_MAX)
			return false;
	}
	*out = neg ? (int)-v : (int)v;
	return *out != 0;
}

/* domain_parse - letters, digits, '-' and '_' in labels of 1..63; one
 * final dot allowed; lowered. */
static bool domain_parse(const char *p, const char *end, char *out, char *err, size_t errlen)
{
	size_t len = (size_t)(end - p), label = 0;

	if (len > 0 && p[len - 1] == '.')
		len--;
	if (len == 0) {
		snprintf(err, errlen, "the list's domain is missing; " SYNTAX_HINT);
		return false;
	}
	if (len > DNSBL_DOMAIN_MAX) {
		snprintf(err, errlen, "the list's domain is longer than %d characters", DNSBL_DOMAIN_MAX);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		if (c == '.') {
			if (label == 0)
				break;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_') {
			if (++label > 63)
				break;
		} else {
			snprintf(err, errlen, "'%.*s' is not a domain name (character '%c'); " SYNTAX_HINT,
			    (int)len, p, c >= ' ' && c < 127 ? c : '?');
			return false;
		}
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		if (i + 1 == len && label > 0) {
			out[len] = '\0';
			return true;
		}
	}
	snprintf(err, errlen, "'%.*s' is not a domain name (empty or over-long label)", (int)len, p);
	return false;
}

bool dnsbl_site_parse(const char *text, size_t len, struct dnsbl_site *out,
    char *err, size_t errlen)
{
	const char *end = text + len, *eq, *star;

	memset(out, 0, sizeof *out);
	out->weight = 1;
	eq = memchr(text, '=', len);
	star = memchr(text, '*', len);
	if (eq != NULL && star != NULL && star < eq) {
		snprintf(err, errlen, "'%.*s': the filter (=...) comes before the weight (*N); " SYNTAX_HINT,
		    (int)len, text);
		return false;
	}
	if (!domain_parse(text, eq ? eq : star ? star : end, out->domain, err, errlen))
		return false;
	if (eq != NULL) {
		if (!filter_parse(eq + 1, star ? star : end, out)) {
			snprintf(err, errlen, "'%.*s': the filter is not an address pattern (four octets, "
			    "each N, or [N..M;N...] with numbers 0..255, e.g. 127.0.0.[2..11])",
			    (int)(((star ? star : end) - eq) - 1), eq + 1);
			return false;
		}
		out->has_filter = true;
	}
	if (star != NULL && !weight_parse(star + 1, end, &out->weight)) {
		snprintf(err, errlen, "'%.*s': the weight is not a whole number from -%d to %d other than 0 "
		    "(negative: an allow list)", (int)(end - star - 1), star + 1, DNSBL_WEIGHT_MAX,
		    DNSBL_WEIGHT_MAX);
		return false;
	}
	return true;
}

bool dnsbl_site_matches(const struct dnsbl_site *site, const unsigned char a[4])
{
	if (!site->has_filter)
		return a[0] == 127;
	for (int i = 0; i < 4; i++)
		if (!has_bit(site->octet[i], a[i]))
			return false;
	return true;
}

size_t dnsbl_query_name(const unsigned char *addr, size_t addr_len, const char *domain,
    char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	char name[DNSBL_QNAME_MAX + 2];
	size_t n = 0;
	int w;

	if (addr_len == 4) {
		w = snprintf(name, sizeof name, "%u.%u.%u.%u.", addr[3], addr[2], addr[1], addr[0]);
		n = (size_t)w;
	} else if (addr_len == 16) {
		for (size_t i = 16; i-- > 0;) {
			name[n++] = hex[addr[i] & 15];
			name[n++] = '.';
			name[n++] = hex[addr[i] >> 4];
			name[n++] = '.';
		}
	} else {
		return 0;
	}
	w = snprintf(name + n, sizeof name - n, "%s", domain);
	if (w <= 0 || n + (size_t)w > DNSBL_QNAME_MAX || n + (size_t)w >= size)
		return 0;
	n += (size_t)w;
	memcpy(out, name, n + 1);
	return n;
}

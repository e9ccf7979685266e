/*
 * received_ip - see received_ip.h. The special-purpose ranges are those
 * of the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890)
 * that are not globally reachable, plus multicast.
 */
#include "smtp/received_ip.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

struct range {
	unsigned char prefix[16];
	unsigned bits;
};

static bool in_range(const unsigned char *a, const struct range *r)
{
	unsigned full = r->bits / 8, rest = r->bits % 8;

	if (memcmp(a, r->prefix, full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (r->prefix[full] & mask);
}

static bool v4_external(const unsigned char *a)
{
	static const struct range special[] = {
		{{0}, 8},                  /* "this network" */
		{{10}, 8},
		{{100, 64}, 10},           /* shared address space (CGNAT) */
		{{127}, 8},
		{{169, 254}, 16},
		{{172, 16}, 12},
		{{192, 0, 0}, 24},         /* IETF protocol assignments */
		{{192, 0, 2}, 24},         /* TEST-NET-1 */
		{{192, 88, 99}, 24},       /* 6to4 relay anycast (deprecated) */
		{{192, 168}, 16},
		{{198, 18}, 15},           /* benchmarking */
		{{198, 51, 100}, 24},      /* TEST-NET-2 */
		{{203, 0, 113}, 24},       /* TEST-NET-3 */
		{{224}, 4},                /* multicast */
		{{240}, 4},                /* reserved, and the broadcast address */
	};
	for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
		if (in_range(a, &special[i]))
			return false;
	return true;
}

static bool v6_external(const unsigned char *a)
{
	static const struct range special[] = {
		{{0}, 96},                                  /* ::, ::1, IPv4-compatible (deprecated) */
		{{0x01, 0x00}, 64},                         /* discard-only 100::/64 */
		{{0x20, 0x01, 0x0d, 0xb8}, 32},             /* documentation */
		{{0x20, 0x01, 0x00, 0x02, 0, 0}, 48},       /* benchmarking */
		{{0x20, 0x01, 0x00}, 23},                   /* IETF protocol assignments */
		{{0xfc}, 7},                                /* unique local */
		{{0xfe, 0x80}, 10},                         /* link-local */
		{{0xff}, 8},                                /* multicast */
	};
	static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (memcmp(a, v4mapped, 12) == 0)
		return v4_external(a + 12);
	for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
		if (in_range(a, &special[i]))
			return false;
	return true;
}

bool received_ip_external(const char *ip)
{
	unsigned char a[16];
	char buf[64];
	size_t n;

	if (ip == NULL)
		return false;
	if (strncasecmp(ip, "IPv6:", 5) == 0)
		ip += 5;
	n = strlen(ip);
	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, ip, n + 1);
	if (inet_pton(AF_INET, buf, a) == 1)
		return v4_external(a);
	if (inet_pton(AF_INET6, buf, a) == 1)
		return v6_external(a);
	return false;
}

static bool letters(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return n > 0;
}

/* registered_domain - where the registered domain of name starts, and its
 * length without a trailing dot; false when name has too few labels, an
 * empty label, or is an address (all digits and dots, or a literal) */
static bool registered_domain(const char *name, const char **start, size_t *len)
{
	size_t n = strlen(name), labels = 0;
	const char *dot[4] = {NULL, NULL, NULL, NULL};  /* the dots before the last 1..3 labels */
	bool digits_only = true;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || name[0] == '.')
		return false;
	for (size_t i = n; i-- > 0;) {
		char c = name[i];
		if (c == '.') {
			if (i + 1 == n || name[i + 1] == '.')
				return false;   /* an empty label */
			if (labels < 3)
				dot[labels] = &name[i];
			labels++;
		} else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_')) {
			return false;   /* a literal, a comment, anything not a host name */
		} else if (c < '0' || c > '9') {
			digits_only = false;
		}
	}
	labels++;
	if (digits_only || labels < 2)
		return false;
	const char *tld = dot[0] + 1;
	const char *second = labels > 2 ? dot[1] + 1 : name;
	size_t tld_len = (size_t)(name + n - tld), second_len = (size_t)(dot[0] - second);
	size_t want = 2;
	if (tld_len == 2 && letters(tld, 2) && (second_len == 2 || second_len == 3) &&
	    letters(second, second_len))
		want = 3;   /* co.uk, com.au: the registry's second level */
	if (labels < want)
		return false;
	*start = want < labels ? dot[want - 1] + 1 : name;
	*len = (size_t)(name + n - *start);
	return true;
}

bool received_same_registered_domain(const char *a, const char *b)
{
	const char *sa, *sb;
	size_t la, lb;

	if (a == NULL || b == NULL || !registered_domain(a, &sa, &la) || !registered_domain(b, &sb, &lb))
		return false;
	return la == lb && strncasecmp(sa, sb, la) == 0;
}

const char *received_entry_ip(const struct bounce_original *o)
{
	size_t n = o->nhops < BOUNCE_RECEIVED_MAX ? o->nhops : BOUNCE_RECEIVED_MAX;

	/* past the top ones, a longer chain kept its bottom-most hops: those
	 * are not the next hops down, and may all be the sender's */
	if (o->hops_seen > BOUNCE_RECEIVED_MAX && n > BOUNCE_RECEIVED_TOP)
		n = BOUNCE_RECEIVED_TOP;
	for (size_t i = 0; i < n; i++) {
		const struct bounce_hop *h = bounce_hop_at(o, i);
		if (!received_ip_external(h->ip))
			continue;      /* the site's private network, or no address */
		if (h->site_relay)
			continue;      /* one of the site's relays handing it on */
		return h->ip;
	}
	return NULL;
}

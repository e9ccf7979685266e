/*
 * bounce_evidence - recipients covered by the bounce check, our relays in
 * the original's Received chain, the original's client address. Pure
 * functions over the configuration and the classifier's result
 * (smtp/bounce.h): everything they read came from a stranger's message,
 * so every string is bounded and nothing is trusted to be well formed.
 */
#define _POSIX_C_SOURCE 200809L  /* strcasecmp, strncasecmp */

#include "filters/bounce_evidence.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "filters/batv.h"
#include "proxy/config.h"

static const char *addr_domain(const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;
	return at != NULL && at[1] != '\0' ? at + 1 : NULL;
}

/* domain_matches - entry "example.org" is the domain itself, ".example.org"
 * any name below it; a final dot on name is ignored. */
static bool domain_matches(const char *entry, const char *name, size_t len)
{
	size_t el = strlen(entry);

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (entry[0] == '.')
		return len > el && strncasecmp(name + len - el, entry, el) == 0;
	return len == el && strncasecmp(name, entry, el) == 0;
}

bool bounce_rcpt_exempt(const struct config *cfg, const char *addr)
{
	const char *d = addr_domain(addr);

	if (strncasecmp(addr, "postmaster@", 11) == 0 || strncasecmp(addr, "abuse@", 6) == 0)
		return true;
	for (size_t i = 0; i < cfg->bounce.exempt.n; i++) {
		const char *e = cfg->bounce.exempt.v[i];
		if (strchr(e, '@') != NULL) {
			if (batv_glob_ci(e, addr))
				return true;
		} else if (d != NULL && domain_matches(e, d, strlen(d))) {
			return true;
		}
	}
	return false;
}

bool bounce_domain_covered(const struct config *cfg, const char *addr)
{
	const char *d = addr_domain(addr);
	return d != NULL && words_contains_ci(&cfg->batv.domains, d);
}

/*
 * ip_parse - "192.0.2.1", "[192.0.2.1]", "IPv6:2001:db8::1",
 * "[IPv6:2001:db8::1]" or "2001:db8::1" into a socket address.
 */
static bool ip_parse(const char *text, struct sockaddr_storage *ss)
{
	char buf[64];
	size_t n = strnlen(text, 256);
	const char *p = text;

	if (n > 0 && p[0] == '[') {
		if (p[n - 1] != ']')
			return false;
		p++;
		n -= 2;
	}
	if (n >= 5 && strncasecmp(p, "IPv6:", 5) == 0) {
		p += 5;
		n -= 5;
	}
	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, p, n);
	buf[n] = '\0';
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, buf, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, buf, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		return true;
	}
	return false;
}

static bool ip_ours(const struct config *cfg, const char *text)
{
	struct sockaddr_storage ss;

	return cfg->bounce.relay_nets.n > 0 && ip_parse(text, &ss) &&
	    cidrs_match(&cfg->bounce.relay_nets, (const struct sockaddr *)&ss);
}

static void what_set(char *what, size_t cap, const char *clause, const char *value)
{
	char v[80];
	size_t n = 0;

	if (what == NULL || cap == 0)
		return;
	/* printable ASCII only: it goes to a log line */
	for (const char *p = value; *p && n + 1 < sizeof v; p++)
		v[n++] = (*p > ' ' && *p < 0x7f) ? *p : '?';
	v[n] = '\0';
	snprintf(what, cap, "%s %s", clause, v);
}

/* internal - loopback, private ... (below) */
static bool internal(const struct sockaddr_storage *ss);

bool bounce_relay_hop(const struct config *cfg, const struct bounce_original *o,
    char *what, size_t cap)
{
	size_t n = o->nhops < BOUNCE_RECEIVED_MAX ? o->nhops : BOUNCE_RECEIVED_MAX;

	if (what != NULL && cap > 0)
		what[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const struct bounce_hop *hop = bounce_hop_at(o, i);
		struct sockaddr_storage ss;
		if (hop->ip[0]) {
			/* the address the receiving side saw; the name beside it
			 * is often the client's HELO, which anyone can claim */
			what_set(what, cap, "from", hop->ip);
			if (ip_ours(cfg, hop->ip))
				return true;
			if (ip_parse(hop->ip, &ss) && internal(&ss))
				continue;   /* the receiving side's own filters and relays */
			return false;
		}
		/* no address: the name is the client's HELO or its PTR, both
		 * the sender's to choose; nothing to trust */
		what_set(what, cap, "from", hop->from[0] ? hop->from : "(none)");
		return false;
	}
	return false;
}

/* internal - loopback, private, shared, link-local, unique-local or
 * unspecified: not where a message came from on the Internet. */
static bool internal(const struct sockaddr_storage *ss)
{
	const unsigned char *a;

	if (ss->ss_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
		static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		static const unsigned char zero[15];
		if (memcmp(a, v4mapped, 12) == 0) {
			a += 12;
		} else {
			if (memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1))
				return true;                           /* :: and ::1 */
			return (a[0] & 0xfe) == 0xfc ||                /* fc00::/7 */
			    (a[0] == 0xfe && (a[1] & 0xc0) == 0x80);   /* fe80::/10 */
		}
	} else {
		a = (const unsigned char *)&((const struct sockaddr_in *)ss)->sin_addr;
	}
	return a[0] == 0 || a[0] == 10 || a[0] == 127 ||
	    (a[0] == 172 && (a[1] & 0xf0) == 16) ||
	    (a[0] == 192 && a[1] == 168) ||
	    (a[0] == 169 && a[1] == 254) ||
	    (a[0] == 100 && (a[1] & 0xc0) == 64);          /* 100.64.0.0/10 */
}

const char *bounce_origin_ip(const struct config *cfg, const struct bounce_original *orig)
{
	size_t n = orig->nhops < BOUNCE_RECEIVED_MAX ? orig->nhops : BOUNCE_RECEIVED_MAX;

	for (size_t i = n; i-- > 0;) {
		const char *ip = bounce_hop_at(orig, i)->ip;
		struct sockaddr_storage ss;
		if (ip[0] == '\0' || !ip_parse(ip, &ss) || internal(&ss) || ip_ours(cfg, ip))
			continue;
		return ip;
	}
	return NULL;
}

void bounce_addr_bare(const char *addr, char *out, size_t cap)
{
	const char *p = addr, *end;
	size_t n;

	if (cap == 0)
		return;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '<') {
		p++;
		end = strchr(p, '>');
		n = end != NULL ? (size_t)(end - p) : strcspn(p, " \t");
	} else {
		n = strcspn(p, " \t(");
	}
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

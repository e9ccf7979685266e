/*
 * config - the key table, the typed value parsers and the inih glue.
 *
 * Contract: config_load() either returns a complete, validated config or
 * NULL with every error as "file:line: message". Unknown sections and keys,
 * bad values, duplicate keys and over-long lines are errors: a postmaster
 * never runs on a half-understood file.
 *
 * inih (Debian's libinih) silently truncates lines over 200 bytes and does
 * not report line numbers to the handler, so the file is fed through a
 * reader that counts lines and refuses over-long ones itself.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "filters/dnsbl_sites.h"
#include "proxy/config.h"
#include "smtp/bounce.h"
#include "smtp/smtp_data.h"

enum cfg_type {
	CFG_STR,       /* any text, may be empty */
	CFG_BOOL,      /* yes/no/true/false/on/off/1/0 */
	CFG_UINT,      /* decimal, within min..max */
	CFG_UINT_AUTO, /* "auto" (stored as 0) or decimal within min..max */
	CFG_SIZE,      /* bytes, suffix k/m/g (1024-based) */
	CFG_DURATION,  /* ms; suffix ms/s/m/h, bare number = seconds */
	CFG_ENUM,      /* one of names */
	CFG_HOSTPORT,  /* host:port or [v6]:port; may be empty if min == 0 */
	CFG_LISTEN,    /* list of address:port (IP literals: nothing resolves them) */
	CFG_NAMESERVERS, /* list of address[:port], port 53 if none; kept as address:port */
	CFG_WORDS,     /* list of words */
	CFG_CIDRS,     /* list of address[/prefix] */
	CFG_COLON,     /* text; a repeated key appends ":value" (cipher lists
	                  outgrow one INI line) */
};

struct cfg_key {
	const char *section;
	const char *name;
	enum cfg_type type;
	const char *def;           /* default, as text */
	size_t offset;
	unsigned long long min, max;
	const char *const *names;  /* CFG_ENUM */
};

static const char *const log_levels[] = {"error", "warning", "info", "debug", NULL};
static const char *const log_dests[] = {"stderr", "syslog", "file", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const xclient_modes[] = {"auto", "on", "off", NULL};
static const char *const identity_modes[] = {"auto", "xclient", "xforward", "proxy", "transparent",
	"none", NULL};
static const char *const backend_tls_modes[] = {"none", "opportunistic", "required", NULL};
static const char *const newline_policies[] = {"reject", "normalise", NULL};
static const char *const spf_modes[] = {"off", "annotate", "enforce", NULL};
static const char *const spf_permerrors[] = {"mark", "reject", NULL};
static const char *const batv_modes[] = {"off", "observe", "enforce", NULL};
static const char *const batv_refuse[] = {"data", "rcpt", "content", NULL};
static const char *const dkim_modes[] = {"off", "annotate", "enforce", NULL};
static const char *const dmarc_modes[] = {"off", "annotate", "enforce", NULL};
static const char *const dmarc_malformed[] = {"mark", "reject", NULL};
static const char *const joejob_modes[] = {"off", "mark", "enforce", NULL};
static const char *const bounce_modes[] = {"off", "observe", "enforce", NULL};
static const char *const bounce_unverifiable[] = {"refuse", "mark", "accept", NULL};
static const char *const dnsbl_modes[] = {"off", "log", "enforce", NULL};

#define O(field) offsetof(struct config, field)
#define DAY_MS (24ULL * 3600 * 1000)

static const struct cfg_key cfg_keys[] = {
	{"server", "listen", CFG_LISTEN, "127.0.0.1:2525", O(server.listen), 1, 0, NULL},
	{"server", "hostname", CFG_STR, "", O(server.hostname), 0, 255, NULL},
	{"server", "banner", CFG_STR, "ESMTP", O(server.banner), 0, 200, NULL},
	{"server", "greet_pause", CFG_DURATION, "0s", O(server.greet_pause), 0, 60000, NULL},
	{"server", "bare_newline", CFG_ENUM, "reject", O(server.bare_newline), 0, 0, newline_policies},
	{"server", "drain_time", CFG_DURATION, "30s", O(server.drain_time), 0, DAY_MS, NULL},
	{"server", "drain_reply_grace", CFG_DURATION, "10s", O(server.drain_reply_grace), 0, DAY_MS, NULL},
	{"server", "user", CFG_STR, "", O(server.user), 0, 64, NULL},
	{"server", "group", CFG_STR, "", O(server.group), 0, 64, NULL},
	{"server", "proxy_protocol", CFG_BOOL, "off", O(server.proxy_protocol), 0, 0, NULL},
	{"server", "proxy_trusted", CFG_CIDRS, "", O(server.proxy_trusted), 0, 0, NULL},
	{"server", "workers", CFG_UINT_AUTO, "1", O(server.workers), 1, 256, NULL},
	{"server", "proxy_timeout", CFG_DURATION, "5s", O(server.proxy_timeout), 100, 600000, NULL},

	{"backend", "address", CFG_HOSTPORT, NULL, O(backend.address), 1, 0, NULL},
	{"backend", "helo", CFG_STR, "", O(backend.helo), 0, 255, NULL},
	{"backend", "connect_timeout", CFG_DURATION, "10s", O(backend.connect_timeout), 100, 600000, NULL},
	{"backend", "command_timeout", CFG_DURATION, "60s", O(backend.command_timeout), 100, 3600000, NULL},
	{"backend", "data_timeout", CFG_DURATION, "600s", O(backend.data_timeout), 100, 3600000, NULL},
	{"backend", "xclient", CFG_ENUM, "auto", O(backend.xclient), 0, 0, xclient_modes},
	{"backend", "identity", CFG_ENUM, "auto", O(backend.identity), 0, 0, identity_modes},
	{"backend", "relay_check", CFG_BOOL, "on", O(backend.relay_check), 0, 0, NULL},
	{"backend", "tls", CFG_ENUM, "none", O(backend.tls), 0, 0, backend_tls_modes},
	{"backend", "ca_file", CFG_STR, "", O(backend.ca_file), 0, 4096, NULL},
	{"backend", "verify_name", CFG_STR, "", O(backend.verify_name), 0, 255, NULL},
	{"backend", "max_connections", CFG_UINT, "100", O(backend.max_connections), 1, 1000000, NULL},
	{"backend", "idle_timeout", CFG_DURATION, "10s", O(backend.idle_timeout), 0, DAY_MS, NULL},
	{"backend", "keepalive", CFG_DURATION, "60s", O(backend.keepalive), 0, 3600000, NULL},
	{"backend", "pool_size", CFG_UINT, "32", O(backend.pool_size), 0, 100000, NULL},
	{"backend", "pool_idle", CFG_DURATION, "30s", O(backend.pool_idle), 1000, 3600000, NULL},

	{"limits", "max_connections", CFG_UINT, "1000", O(limits.max_connections), 1, 1000000, NULL},
	{"limits", "max_connections_per_ip", CFG_UINT, "20", O(limits.max_connections_per_ip), 1, 1000000, NULL},
	{"limits", "max_connections_per_net", CFG_UINT, "0", O(limits.max_connections_per_net), 0, 1000000, NULL},
	{"limits", "max_recipients", CFG_UINT, "100", O(limits.max_recipients), 1, 100000, NULL},
	{"limits", "max_message_size", CFG_SIZE, "25m", O(limits.max_message_size), 1024, 1ULL << 40, NULL},
	{"limits", "max_errors", CFG_UINT, "10", O(limits.max_errors), 1, 1000, NULL},
	{"limits", "junk_command_limit", CFG_UINT, "100", O(limits.junk_command_limit), 0, 100000, NULL},
	{"limits", "greeting_timeout", CFG_DURATION, "60s", O(limits.greeting_timeout), 100, DAY_MS, NULL},
	{"limits", "command_timeout", CFG_DURATION, "300s", O(limits.command_timeout), 100, DAY_MS, NULL},
	{"limits", "data_timeout", CFG_DURATION, "180s", O(limits.data_timeout), 100, DAY_MS, NULL},
	{"limits", "data_min_rate", CFG_UINT, "500", O(limits.data_min_rate), 0, 1000000000, NULL},
	{"limits", "session_timeout", CFG_DURATION, "3600s", O(limits.session_timeout), 1000, DAY_MS, NULL},
	{"limits", "data_buffer", CFG_SIZE, "64k", O(limits.data_buffer), 4096, 64ULL << 20, NULL},
	{"limits", "ipv4_prefix", CFG_UINT, "32", O(limits.ipv4_prefix), 8, 32, NULL},
	{"limits", "ipv6_prefix", CFG_UINT, "64", O(limits.ipv6_prefix), 16, 128, NULL},
	{"limits", "rate_window", CFG_DURATION, "60s", O(limits.rate_window), 1000, DAY_MS, NULL},
	{"limits", "conn_rate_per_ip", CFG_UINT, "0", O(limits.conn_rate_per_ip), 0, 100000000, NULL},
	{"limits", "msg_rate_per_ip", CFG_UINT, "0", O(limits.msg_rate_per_ip), 0, 100000000, NULL},
	{"limits", "rcpt_rate_per_ip", CFG_UINT, "0", O(limits.rcpt_rate_per_ip), 0, 100000000, NULL},
	{"limits", "bounce_rcpt_rate_per_ip", CFG_UINT, "0", O(limits.bounce_rcpt_rate_per_ip), 0, 100000000, NULL},
	{"limits", "conn_rate_per_net", CFG_UINT, "0", O(limits.conn_rate_per_net), 0, 100000000, NULL},
	{"limits", "msg_rate_per_net", CFG_UINT, "0", O(limits.msg_rate_per_net), 0, 100000000, NULL},
	{"limits", "rcpt_rate_per_net", CFG_UINT, "0", O(limits.rcpt_rate_per_net), 0, 100000000, NULL},
	{"limits", "bounce_rcpt_rate_per_net", CFG_UINT, "0", O(limits.bounce_rcpt_rate_per_net), 0, 100000000, NULL},
	{"limits", "net_ipv4_prefix", CFG_UINT, "24", O(limits.net_ipv4_prefix), 8, 32, NULL},
	{"limits", "net_ipv6_prefix", CFG_UINT, "48", O(limits.net_ipv6_prefix), 16, 128, NULL},
	{"limits", "rate_table_size", CFG_UINT, "100000", O(limits.rate_table_size), 64, 100000000, NULL},
	{"limits", "store", CFG_STR, "memory", O(limits.store), 1, 200, NULL},
	{"limits", "redis_timeout", CFG_DURATION, "50ms", O(limits.redis_timeout), 1, 10000, NULL},

	{"log", "level", CFG_ENUM, "info", O(log.level), 0, 0, log_levels},
	{"log", "destination", CFG_ENUM, "stderr", O(log.destination), 0, 0, log_dests},
	{"log", "format", CFG_ENUM, "text", O(log.format), 0, 0, log_formats},
	{"log", "file", CFG_STR, "/var/log/backstop/backstop.log", O(log.file), 0, 4096, NULL},

	{"helo", "required", CFG_BOOL, "no", O(helo.required), 0, 0, NULL},
	{"helo", "reject_invalid", CFG_BOOL, "yes", O(helo.reject_invalid), 0, 0, NULL},
	{"helo", "reject_own_name", CFG_BOOL, "yes", O(helo.reject_own_name), 0, 0, NULL},

	{"tls", "certificate", CFG_STR, "", O(tls.certificate), 0, 4096, NULL},
	{"tls", "key", CFG_STR, "", O(tls.key), 0, 4096, NULL},
	{"tls", "protocols", CFG_STR, "TLSv1.2 TLSv1.3", O(tls.protocols), 0, 100, NULL},
	{"tls", "ciphers", CFG_COLON,
	    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
	    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384",
	    O(tls.ciphers), 0, 1000, NULL},
	{"tls", "ciphersuites", CFG_COLON,
	    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
	    O(tls.ciphersuites), 0, 1000, NULL},
	{"tls", "groups", CFG_COLON, "X25519:prime256v1:secp384r1", O(tls.groups), 0, 200, NULL},
	{"tls", "sni", CFG_WORDS, "", O(tls.sni), 0, 0, NULL},
	{"tls", "require", CFG_BOOL, "no", O(tls.require), 0, 0, NULL},
	{"tls", "handshake_timeout", CFG_DURATION, "30s", O(tls.handshake_timeout), 100, 600000, NULL},

	{"dns", "servers", CFG_NAMESERVERS, "", O(dns.servers), 0, 0, NULL},
	{"dns", "timeout", CFG_DURATION, "5s", O(dns.timeout), 100, 120000, NULL},
	{"dns", "reverse_lookup", CFG_BOOL, "yes", O(dns.reverse_lookup), 0, 0, NULL},
	{"dns", "max_queries", CFG_UINT, "1000", O(dns.max_queries), 1, 1000000, NULL},
	{"dns", "cache_size", CFG_UINT, "10000", O(dns.cache_size), 0, 1000000, NULL},
	{"dns", "cache_max_ttl", CFG_DURATION, "5m", O(dns.cache_max_ttl), 0, DAY_MS, NULL},

	{"spf", "mode", CFG_ENUM, "annotate", O(spf.mode), 0, 0, spf_modes},
	{"spf", "permerror", CFG_ENUM, "mark", O(spf.permerror), 0, 0, spf_permerrors},
	{"spf", "trusted", CFG_CIDRS, "", O(spf.trusted), 0, 0, NULL},

	{"batv", "mode", CFG_ENUM, "off", O(batv.mode), 0, 0, batv_modes},
	{"batv", "domains", CFG_WORDS, "", O(batv.domains), 0, 0, NULL},
	{"batv", "keys_file", CFG_STR, "", O(batv.keys_file), 0, 4096, NULL},
	{"batv", "sign_key", CFG_UINT, "0", O(batv.sign_key), 0, 9, NULL},
	{"batv", "validity_days", CFG_UINT, "7", O(batv.validity_days), 1, 999, NULL},
	{"batv", "refuse_at", CFG_ENUM, "data", O(batv.refuse_at), 0, 0, batv_refuse},
	{"batv", "exempt", CFG_WORDS, "", O(batv.exempt), 0, 0, NULL},
	{"batv", "bounce_senders", CFG_WORDS, "", O(batv.bounce_senders), 0, 0, NULL},
	{"batv", "sign_exempt", CFG_WORDS, "", O(batv.sign_exempt), 0, 0, NULL},
	{"batv", "refuse_routed", CFG_BOOL, "yes", O(batv.refuse_routed), 0, 0, NULL},

	{"outbound", "listen", CFG_LISTEN, "", O(outbound.listen), 0, 0, NULL},
	{"outbound", "relay", CFG_HOSTPORT, "", O(outbound.relay), 0, 0, NULL},
	{"outbound", "allow", CFG_CIDRS, "127.0.0.0/8 ::1/128", O(outbound.allow), 0, 0, NULL},

	{"server", "spool_dir", CFG_STR, "/var/tmp", O(spool.directory), 1, 4096, NULL},
	{"server", "state_dir", CFG_STR, "/var/lib/backstop", O(sentlog.state_dir), 1, 4096, NULL},
	{"limits", "spool_max", CFG_SIZE, "1g", O(spool.max_size), 1 << 20, 1ULL << 50, NULL},

	{"dkim", "mode", CFG_ENUM, "annotate", O(dkim.mode), 0, 0, dkim_modes},
	{"dkim", "require_signed_by", CFG_WORDS, "", O(dkim.require_signed_by), 0, 0, NULL},
	{"dkim", "max_signatures", CFG_UINT, "5", O(dkim.max_signatures), 1, 50, NULL},
	{"dkim", "timeout", CFG_DURATION, "5s", O(dkim.timeout), 100, 120000, NULL},

	{"dmarc", "mode", CFG_ENUM, "annotate", O(dmarc.mode), 0, 0, dmarc_modes},
	{"dmarc", "malformed_from", CFG_ENUM, "reject", O(dmarc.malformed_from), 0, 0, dmarc_malformed},
	{"dmarc", "psl_file", CFG_STR, "/usr/share/publicsuffix/public_suffix_list.dat",
	    O(dmarc.psl_file), 0, 4096, NULL},
	{"dmarc", "pct_seed", CFG_UINT, "0", O(dmarc.pct_seed), 0, 1000000, NULL},

	{"joejob", "mode", CFG_ENUM, "off", O(joejob.mode), 0, 0, joejob_modes},

	{"bounce", "mode", CFG_ENUM, "off", O(bounce.mode), 0, 0, bounce_modes},
	{"bounce", "unverifiable", CFG_ENUM, "mark", O(bounce.unverifiable), 0, 0, bounce_unverifiable},
	{"bounce", "classes", CFG_WORDS, "ndr dsn autoreply challenge", O(bounce.classes), 0, 0, NULL},
	{"bounce", "our_relays", CFG_WORDS, "", O(bounce.our_relays), 0, 0, NULL},
	{"bounce", "exempt", CFG_WORDS, "", O(bounce.exempt), 0, 0, NULL},
	{"bounce", "remember", CFG_DURATION, "30d", O(sentlog.remember), DAY_MS, 366 * DAY_MS, NULL},
	{"bounce", "sent_per_day", CFG_UINT, "100000", O(sentlog.sent_per_day), 1, 10000000, NULL},
	{"dnsbl", "mode", CFG_ENUM, "off", O(dnsbl.mode), 0, 0, dnsbl_modes},
	{"dnsbl", "sites", CFG_WORDS, "", O(dnsbl.sites), 0, 0, NULL},
	{"dnsbl", "threshold", CFG_UINT, "1", O(dnsbl.threshold), 1, DNSBL_WEIGHT_MAX * DNSBL_SITES_MAX, NULL},
	{"dnsbl", "whitelist_threshold", CFG_STR, "", O(dnsbl.whitelist_threshold), 0, 16, NULL},
	{"dnsbl", "null_sender_sites", CFG_WORDS, "", O(dnsbl.null_sender_sites), 0, 0, NULL},
	{"dnsbl", "timeout", CFG_DURATION, "3s", O(dnsbl.timeout), 100, 60000, NULL},
	{"dnsbl", "cache_ttl", CFG_DURATION, "1h", O(dnsbl.cache_ttl), 0, DAY_MS, NULL},
	{"dnsbl", "cache_size", CFG_UINT, "10000", O(dnsbl.cache_size), 0, 10000000, NULL},
	{"metrics", "listen", CFG_LISTEN, "", O(metrics.listen), 0, 0, NULL},
	{"metrics", "backend_failures", CFG_UINT, "3", O(metrics.backend_failures), 1, 1000, NULL},
};
#define NKEYS (sizeof cfg_keys / sizeof cfg_keys[0])

/* Parse state: errors accumulate; seen[] detects duplicates. */
struct cfg_parse {
	struct config *cfg;
	const char *file;
	unsigned line;
	char *err;
	size_t errlen, errused;
	int nerrors;
	bool seen[NKEYS];
	FILE *fp;
};

static void cfg_error(struct cfg_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void cfg_error(struct cfg_parse *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	p->nerrors++;
	if (p->err == NULL || p->errused + 1 >= p->errlen)
		return;
	if (p->line)
		n = snprintf(p->err + p->errused, p->errlen - p->errused, "%s:%u: ",
		    p->file, p->line);
	else
		n = snprintf(p->err + p->errused, p->errlen - p->errused, "%s: ", p->file);
	if (n > 0)
		p->errused += (size_t)n;
	if (p->errused + 1 >= p->errlen) {
		p->errused = p->errlen - 1;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(p->err + p->errused, p->errlen - p->errused, fmt, ap);
	va_end(ap);
	if (n > 0)
		p->errused += (size_t)n;
	if (p->errused + 2 < p->errlen) {
		p->err[p->errused++] = '\n';
		p->err[p->errused] = '\0';
	} else {
		p->errused = p->errlen - 1;
	}
}

static void words_free(struct cfg_words *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i]);
	free(w->v);
	w->v = NULL;
	w->n = 0;
}

static int words_add(struct cfg_words *w, const char *s, size_t len)
{
	char **nv = realloc(w->v, (w->n + 1) * sizeof *nv);
	if (nv == NULL)
		return -1;
	w->v = nv;
	if ((w->v[w->n] = strndup(s, len)) == NULL)
		return -1;
	w->n++;
	return 0;
}

bool words_contains_ci(const struct cfg_words *w, const char *s)
{
	for (size_t i = 0; i < w->n; i++)
		if (strcasecmp(w->v[i], s) == 0)
			return true;
	return false;
}

int hostport_split(const char *s, char *host, size_t hostlen, unsigned *port)
{
	const char *colon, *hs, *he;
	char *end;
	unsigned long v;

	if (s[0] == '[') {
		he = strchr(s, ']');
		if (he == NULL || he[1] != ':')
			return -1;
		hs = s + 1;
		colon = he + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || strchr(s, ':') != colon)
			return -1;
		hs = s;
		he = colon;
	}
	if (he == hs || (size_t)(he - hs) >= hostlen)
		return -1;
	errno = 0;
	v = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || v == 0 || v > 65535)
		return -1;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	*port = (unsigned)v;
	return 0;
}

static int hostport_check(const char *s)
{
	char host[256];
	unsigned port;
	struct in6_addr a6;
	struct in_addr a4;

	if (hostport_split(s, host, sizeof host, &port) < 0)
		return -1;
	if (s[0] == '[')
		return inet_pton(AF_INET6, host, &a6) == 1 ? 0 : -1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return 0;
	/* a host name: letters, digits, '-', '.' */
	for (const char *c = host; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.')
			return -1;
	return 0;
}

static int cidr_parse(const char *s, struct cidr *c)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned maxp;

	if (alen == 0 || alen >= sizeof buf)
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(c, 0, sizeof *c);
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		maxp = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		maxp = 128;
	} else {
		return -1;
	}
	c->prefix = maxp;
	if (slash) {
		char *end;
		unsigned long v;
		errno = 0;
		v = strtoul(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || errno || v > maxp)
			return -1;
		c->prefix = (unsigned)v;
	}
	return 0;
}

static bool prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

bool cidrs_match(const struct cfg_cidrs *list, const struct sockaddr *sa)
{
	unsigned char a[16];
	int family;

	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			family = AF_INET;
			memcpy(a, a6->s6_addr + 12, 4);
		} else {
			family = AF_INET6;
			memcpy(a, a6->s6_addr, 16);
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < list->n; i++)
		if (list->v[i].family == family &&
		    prefix_match(a, list->v[i].addr, list->v[i].prefix))
			return true;
	return false;
}

static int parse_uint(const char *v, unsigned long long *out)
{
	char *end;
	if (!isdigit((unsigned char)v[0]))
		return -1;
	errno = 0;
	*out = strtoull(v, &end, 10);
	if (errno || *end)
		return -1;
	return 0;
}

static int parse_scaled(const char *v, unsigned long long *out, bool duration)
{
	char *end;
	unsigned long long n, mul;

	if (!isdigit((unsigned char)v[0]))
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno)
		return -1;
	if (duration) {
		if (*end == '\0' || strcmp(end, "s") == 0)
			mul = 1000;
		else if (strcmp(end, "ms") == 0)
			mul = 1;
		else if (strcmp(end, "m") == 0)
			mul = 60000;
		else if (strcmp(end, "h") == 0)
			mul = 3600000;
		else if (strcmp(end, "d") == 0)
			mul = DAY_MS;
		else
			return -1;
	} else {
		if (*end == '\0')
			mul = 1;
		else if (strcasecmp(end, "k") == 0)
			mul = 1024;
		else if (strcasecmp(end, "m") == 0)
			mul = 1024 * 1024;
		else if (strcasecmp(end, "g") == 0)
			mul = 1024ULL * 1024 * 1024;
		else
			return -1;
	}
	if (n > ~0ULL / mul)
		return -1;
	*out = n * mul;
	return 0;
}

/* Splits value at whitespace; calls fn for each word. */
static int for_each_word(const char *v, int (*fn)(void *, const char *), void *arg)
{
	char word[512];
	while (*v) {
		while (isspace((unsigned char)*v) || *v == ',')
			v++;
		if (!*v)
			break;
		size_t n = 0;
		while (v[n] && !isspace((unsigned char)v[n]) && v[n] != ',')
			n++;
		if (n >= sizeof word)
			return -1;
		memcpy(word, v, n);
		word[n] = '\0';
		if (fn(arg, word) < 0)
			return -1;
		v += n;
	}
	return 0;
}

/* ip_literal - is host an IPv4 address, or (bracketed) an IPv6 one? */
static bool ip_literal(const char *host, bool bracketed)
{
	unsigned char a[16];

	return inet_pton(bracketed ? AF_INET6 : AF_INET, host, a) == 1;
}

/* listen addresses are bound as given: a host name would pass here and
 * fail at start-up, so only IP literals are taken */
static int add_listen(void *arg, const char *w)
{
	char host[256];
	unsigned port;

	if (hostport_split(w, host, sizeof host, &port) < 0 || !ip_literal(host, w[0] == '['))
		return -1;
	return words_add(arg, w, strlen(w));
}

/* add_nameserver - "192.0.2.53", "192.0.2.53:5353", "2001:db8::53",
 * "[2001:db8::53]:5353"; stored with the port (53 when none is given).
 * The resolver forwards to addresses only. */
static int add_nameserver(void *arg, const char *w)
{
	char host[256], full[300];
	unsigned port = 53;

	if (ip_literal(w, false)) {
		snprintf(full, sizeof full, "%s:53", w);
	} else if (ip_literal(w, true)) {
		snprintf(full, sizeof full, "[%s]:53", w);
	} else if (w[0] == '[' && w[strlen(w) - 1] == ']' && strlen(w) < sizeof host + 2) {
		memcpy(host, w + 1, strlen(w) - 2);
		host[strlen(w) - 2] = '\0';
		if (!ip_literal(host, true))
			return -1;
		snprintf(full, sizeof full, "%s:53", w);
	} else {
		if (hostport_split(w, host, sizeof host, &port) < 0 || !ip_literal(host, w[0] == '['))
			return -1;
		snprintf(full, sizeof full, "%s", w);
	}
	return words_add(arg, full, strlen(full));
}

static int add_word(void *arg, const char *w)
{
	return words_add(arg, w, strlen(w));
}

static int add_cidr(void *arg, const char *w)
{
	struct cfg_cidrs *l = arg;
	struct cidr c, *nv;
	if (cidr_parse(w, &c) < 0)
		return -1;
	nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	if (nv == NULL)
		return -1;
	l->v = nv;
	l->v[l->n++] = c;
	return 0;
}

static const char *type_hint(const struct cfg_key *k)
{
	switch (k->type) {
	case CFG_BOOL: return "yes or no";
	case CFG_UINT: return "a whole number";
	case CFG_UINT_AUTO: return "auto or a whole number";
	case CFG_SIZE: return "a size such as 512k or 25m";
	case CFG_DURATION: return "a duration such as 500ms, 30s, 5m or 1h";
	case CFG_HOSTPORT: return "host:port, or [IPv6]:port";
	case CFG_LISTEN: return "one or more IP address:port, or [IPv6]:port";
	case CFG_NAMESERVERS: return "one or more IP addresses, each with an optional :port (default 53)";
	case CFG_CIDRS: return "addresses or networks such as 192.0.2.0/24 2001:db8::/32";
	default: return "text";
	}
}

/* set_value - parse text for key k into cfg. Returns 0 or -1 (message in why). */
static int set_value(struct config *cfg, const struct cfg_key *k, const char *v,
    bool append, char *why, size_t whylen)
{
	char *field = (char *)cfg + k->offset;
	unsigned long long n;

	why[0] = '\0';
	switch (k->type) {
	case CFG_COLON:
		if (append) {
			char *old = *(char **)field, *s;
			size_t total = strlen(old) + strlen(v) + 2;
			if (total > k->max + 1) {
				snprintf(why, whylen, "value longer than %llu characters", k->max);
				return -1;
			}
			if ((s = malloc(total)) == NULL)
				return -1;
			snprintf(s, total, "%s:%s", old, v);
			free(old);
			*(char **)field = s;
			return 0;
		}
		/* fall through */
	case CFG_STR: {
		if (k->max && strlen(v) > k->max) {
			snprintf(why, whylen, "value longer than %llu characters", k->max);
			return -1;
		}
		char *s = strdup(v);
		if (s == NULL)
			return -1;
		free(*(char **)field);
		*(char **)field = s;
		return 0;
	}
	case CFG_BOOL:
		if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on") || !strcmp(v, "1"))
			*(bool *)field = true;
		else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcasecmp(v, "off") || !strcmp(v, "0"))
			*(bool *)field = false;
		else
			goto bad;
		return 0;
	case CFG_UINT_AUTO:
		if (strcasecmp(v, "auto") == 0) {   /* as the enums */
			*(unsigned long *)field = 0;
			return 0;
		}
		/* fall through */
	case CFG_UINT:
		if (parse_uint(v, &n) < 0)
			goto bad;
		if (n < k->min || n > k->max) {
			snprintf(why, whylen, "must be between %llu and %llu", k->min, k->max);
			return -1;
		}
		*(unsigned long *)field = (unsigned long)n;
		return 0;
	case CFG_SIZE:
	case CFG_DURATION:
		if (parse_scaled(v, &n, k->type == CFG_DURATION) < 0)
			goto bad;
		if (n < k->min || n > k->max) {
			if (k->type == CFG_DURATION)
				snprintf(why, whylen, "must be between %llums and %llums", k->min, k->max);
			else
				snprintf(why, whylen, "must be between %llu and %llu bytes", k->min, k->max);
			return -1;
		}
		*(uint64_t *)field = n;
		return 0;
	case CFG_ENUM:
		for (int i = 0; k->names[i]; i++) {
			if (strcasecmp(v, k->names[i]) == 0) {
				*(int *)field = i;
				return 0;
			}
		}
		{
			size_t used = (size_t)snprintf(why, whylen, "must be one of:");
			for (int i = 0; k->names[i] && used < whylen; i++)
				used += (size_t)snprintf(why + used, whylen - used, " %s", k->names[i]);
		}
		return -1;
	case CFG_HOSTPORT:
		if (v[0] == '\0' && k->min == 0) {
			free(*(char **)field);
			*(char **)field = strdup("");
			return 0;
		}
		if (hostport_check(v) < 0)
			goto bad;
		free(*(char **)field);
		*(char **)field = strdup(v);
		return 0;
	case CFG_LISTEN:
	case CFG_NAMESERVERS:
	case CFG_WORDS: {
		struct cfg_words *w = (struct cfg_words *)field;
		if (!append)
			words_free(w);
		if (for_each_word(v, k->type == CFG_LISTEN ? add_listen :
		    k->type == CFG_NAMESERVERS ? add_nameserver : add_word, w) < 0)
			goto bad;
		return 0;
	}
	case CFG_CIDRS: {
		struct cfg_cidrs *l = (struct cfg_cidrs *)field;
		if (!append) {
			free(l->v);
			l->v = NULL;
			l->n = 0;
		}
		if (for_each_word(v, add_cidr, l) < 0)
			goto bad;
		return 0;
	}
	}
bad:
	snprintf(why, whylen, "'%s' is not %s", v, type_hint(k));
	return -1;
}

static const struct cfg_key *key_find(const char *section, const char *name, size_t *idx)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(cfg_keys[i].section, section) == 0 && strcmp(cfg_keys[i].name, name) == 0) {
			*idx = i;
			return &cfg_keys[i];
		}
	}
	return NULL;
}

static bool section_known(const char *section)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(cfg_keys[i].section, section) == 0)
			return true;
	return false;
}

static bool is_list(enum cfg_type t)
{
	return t == CFG_LISTEN || t == CFG_NAMESERVERS || t == CFG_WORDS || t == CFG_CIDRS ||
	    t == CFG_COLON;
}

static int cfg_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_parse *p = user;
	const struct cfg_key *k;
	size_t idx;
	char why[256];

	if (section[0] == '\0') {
		/* inih hands keys above the first [section] over with an empty
		 * section name: say where they belong instead of dropping them */
		const char *where = NULL;
		for (size_t i = 0; i < NKEYS && where == NULL; i++)
			if (strcmp(cfg_keys[i].name, name) == 0)
				where = cfg_keys[i].section;
		if (where)
			cfg_error(p, "'%s' is outside any section: put it under [%s]", name, where);
		else
			cfg_error(p, "'%s' is outside any section (and no section has such a key)", name);
		return 1;
	}
	if (!section_known(section))
		return 1;   /* reported by counting_reader at the section line */
	if ((k = key_find(section, name, &idx)) == NULL) {
		cfg_error(p, "unknown key '%s' in section [%s]", name, section);
		return 1;
	}
	if (p->seen[idx] && !is_list(k->type)) {
		cfg_error(p, "duplicate key '%s' in section [%s]", name, section);
		return 1;
	}
	if (set_value(p->cfg, k, value, p->seen[idx], why, sizeof why) < 0)
		cfg_error(p, "[%s] %s: %s", section, name, why[0] ? why : "out of memory");
	p->seen[idx] = true;
	return 1;
}

/* A line reader for ini_parse_stream that counts lines and refuses the
 * lines inih would silently truncate. */
static char *counting_reader(char *str, int num, void *stream)
{
	struct cfg_parse *p = stream;
	char *r = fgets(str, num, p->fp);
	size_t len;

	if (r == NULL)
		return NULL;
	p->line++;
	len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n' && !feof(p->fp)) {
		int c;
		cfg_error(p, "line longer than %d characters (split a list over several lines with the same key)", num - 2);
		while ((c = fgetc(p->fp)) != EOF && c != '\n')
			;
		str[0] = '\0';
		return str;
	}
	/* Detect unknown (and empty) sections here, since inih only reports a
	 * section when a key follows it. */
	{
		const char *s = str;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '[') {
			const char *e = strchr(s, ']');
			if (e != NULL && e - s - 1 < 64) {
				char sec[64];
				memcpy(sec, s + 1, (size_t)(e - s - 1));
				sec[e - s - 1] = '\0';
				if (!section_known(sec)) {
					cfg_error(p, "unknown section [%s]", sec);
					/* keep inih from reporting the keys of this section again */
				}
			}
		}
	}
	return str;
}

static void config_free(struct config *cfg)
{
	for (size_t i = 0; i < NKEYS; i++) {
		char *field = (char *)cfg + cfg_keys[i].offset;
		switch (cfg_keys[i].type) {
		case CFG_STR:
		case CFG_COLON:
		case CFG_HOSTPORT:
			free(*(char **)field);
			break;
		case CFG_LISTEN:
		case CFG_NAMESERVERS:
		case CFG_WORDS:
			words_free((struct cfg_words *)field);
			break;
		case CFG_CIDRS:
			free(((struct cfg_cidrs *)field)->v);
			break;
		default:
			break;
		}
	}
	free(cfg->bounce.relay_nets.v);
	free(cfg->dnsbl.site_list);
	free(cfg->dnsbl.null_site_list);
	free(cfg->path);
	free(cfg);
}

static struct config *config_new_defaults(struct cfg_parse *p)
{
	struct config *cfg = calloc(1, sizeof *cfg);
	char why[256];

	if (cfg == NULL)
		return NULL;
	cfg->refs = 1;
	for (size_t i = 0; i < NKEYS; i++) {
		if (cfg_keys[i].def == NULL)
			continue;
		if (set_value(cfg, &cfg_keys[i], cfg_keys[i].def, false, why, sizeof why) < 0) {
			/* a bad default is our bug */
			fprintf(stderr, "backstop: bad default for %s.%s: %s\n",
			    cfg_keys[i].section, cfg_keys[i].name, why);
			abort();
		}
	}
	(void)p;
	return cfg;
}

/* check_protocols - [tls] protocols names versions this OpenSSL can
 * serve. TLS 1.0 and 1.1 are refused: OpenSSL 3 at its default security
 * level 1 cannot sign their handshakes (SHA-1/MD5), so every such
 * handshake would fail with "no ciphers available" at run time. */
static void check_protocols(struct cfg_parse *p)
{
	const char *v = p->cfg->tls.protocols;

	while (*v) {
		size_t n;
		v += strspn(v, " ,\t");
		n = strcspn(v, " ,\t");
		if (n == 0)
			break;
		if ((n == 7 && strncasecmp(v, "TLSv1.2", 7) == 0) ||
		    (n == 7 && strncasecmp(v, "TLSv1.3", 7) == 0)) {
			/* fine */
		} else if ((n == 5 && strncasecmp(v, "TLSv1", 5) == 0) ||
		    (n == 7 && (strncasecmp(v, "TLSv1.0", 7) == 0 || strncasecmp(v, "TLSv1.1", 7) == 0))) {
			cfg_error(p, "[tls] protocols: %.*s is not supported: OpenSSL 3 refuses"
			    " TLS 1.0 and 1.1 handshakes at its default security level"
			    " (use TLSv1.2 TLSv1.3)", (int)n, v);
		} else {
			cfg_error(p, "[tls] protocols: unknown protocol \"%.*s\" (use TLSv1.2 TLSv1.3)",
			    (int)n, v);
		}
		v += n;
	}
}

/* The directory relative paths are taken from: the one backstop was
 * started in, recorded at the first load, so that a reload after daemon()
 * (which changes to /) reads the same files. */
static char basedir[4096];

static void basedir_init(void)
{
	if (basedir[0] == '\0' && getcwd(basedir, sizeof basedir) == NULL)
		strcpy(basedir, "/");
}

/* absolute - path made absolute against basedir (malloc'd; NULL on OOM). */
static char *absolute(const char *path)
{
	size_t n;
	char *s;

	if (path[0] == '/' || path[0] == '\0')
		return strdup(path);
	basedir_init();
	n = strlen(basedir) + strlen(path) + 2;
	if ((s = malloc(n)) == NULL)
		return NULL;
	snprintf(s, n, "%s%s%s", basedir, basedir[strlen(basedir) - 1] == '/' ? "" : "/", path);
	return s;
}

static void absolute_paths(struct cfg_parse *p)
{
	char **paths[] = {&p->cfg->tls.certificate, &p->cfg->tls.key, &p->cfg->backend.ca_file,
	    &p->cfg->batv.keys_file, &p->cfg->log.file, &p->cfg->sentlog.state_dir};

	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		char *a = absolute(*paths[i]);
		if (a == NULL) {
			cfg_error(p, "out of memory");
			return;
		}
		free(*paths[i]);
		*paths[i] = a;
	}
}

/* check_bounce - [bounce]: the class names, our_relays as networks, and
 * what the check needs from [batv]. */
static void check_bounce(struct cfg_parse *p)
{
	struct config *cfg = p->cfg;

	cfg->bounce.class_mask = 0;
	for (size_t i = 0; i < cfg->bounce.classes.n; i++) {
		enum bounce_class c;
		const char *w = cfg->bounce.classes.v[i];
		if (!bounce_class_parse(w, &c) || c == BOUNCE_ORDINARY)
			cfg_error(p, "[bounce] classes: '%s' is not a class that can be checked "
			    "(use: ndr dsn autoreply challenge mdn arf)", w);
		else
			cfg->bounce.class_mask |= 1u << c;
	}
	free(cfg->bounce.relay_nets.v);
	cfg->bounce.relay_nets.v = NULL;
	cfg->bounce.relay_nets.n = 0;
	for (size_t i = 0; i < cfg->bounce.our_relays.n; i++) {
		const char *w = cfg->bounce.our_relays.v[i];
		if (strchr(w, '/') != NULL || strchr(w, ':') != NULL ||
		    strspn(w, "0123456789.") == strlen(w)) {
			if (add_cidr(&cfg->bounce.relay_nets, w) < 0)
				cfg_error(p, "[bounce] our_relays: '%s' is not an address or CIDR "
				    "(192.0.2.25, 198.51.100.0/24, 2001:db8::/32)", w);
		} else {
			/* a name in a Received field is the client's HELO or its
			 * PTR: the sender's to choose, so never evidence */
			cfg_error(p, "[bounce] our_relays: '%s': list the addresses your outgoing "
			    "relays send from (192.0.2.25, 198.51.100.0/24, 2001:db8::/32), not names: "
			    "a name in a Received field is the sender's HELO or reverse name", w);
		}
	}
	if (cfg->bounce.mode != BOUNCE_MODE_OFF && cfg->batv.domains.n == 0)
		cfg_error(p, "[bounce] mode is %s but [batv] domains is empty: the bounce check "
		    "covers the recipients in [batv] domains (list your domains there)",
		    cfg->bounce.mode == BOUNCE_MODE_OBSERVE ? "observe" : "enforce");
}

/* dnsbl_list - parse the entries of [dnsbl] key into a new array. */
static void dnsbl_list(struct cfg_parse *p, const char *key, const struct cfg_words *w,
    struct dnsbl_site **list, size_t *n)
{
	char why[300];

	free(*list);
	*list = NULL;
	*n = 0;
	if (w->n == 0)
		return;
	if (w->n > DNSBL_SITES_MAX) {
		cfg_error(p, "[dnsbl] %s: %zu lists; at most %d (each is a DNS query per client)",
		    key, w->n, DNSBL_SITES_MAX);
		return;
	}
	if ((*list = calloc(w->n, sizeof **list)) == NULL) {
		cfg_error(p, "[dnsbl] %s: out of memory", key);
		return;
	}
	for (size_t i = 0; i < w->n; i++) {
		if (!dnsbl_site_parse(w->v[i], strlen(w->v[i]), &(*list)[*n], why, sizeof why))
			cfg_error(p, "[dnsbl] %s: %s", key, why);
		else
			(*n)++;
	}
}

/* check_dnsbl - [dnsbl]: the lists in postscreen's syntax, the allow
 * threshold as a signed number. */
static void check_dnsbl(struct cfg_parse *p)
{
	struct config *cfg = p->cfg;
	const char *wl = cfg->dnsbl.whitelist_threshold;

	dnsbl_list(p, "sites", &cfg->dnsbl.sites, &cfg->dnsbl.site_list, &cfg->dnsbl.nsites);
	dnsbl_list(p, "null_sender_sites", &cfg->dnsbl.null_sender_sites, &cfg->dnsbl.null_site_list,
	    &cfg->dnsbl.nnull_sites);
	cfg->dnsbl.has_allow_threshold = false;
	if (wl[0] != '\0') {
		char *end;
		long v = strtol(wl, &end, 10);
		if (*end != '\0' || end == wl || v > 0 || v < -(long)DNSBL_WEIGHT_MAX * DNSBL_SITES_MAX)
			cfg_error(p, "[dnsbl] whitelist_threshold: '%s' is not 0 or a negative whole number "
			    "(a client scoring this low is on an allow list; leave it empty for none)", wl);
		cfg->dnsbl.has_allow_threshold = true;
		cfg->dnsbl.allow_threshold = v;
	}
	if (cfg->dnsbl.mode != DNSBL_MODE_OFF && cfg->dnsbl.sites.n == 0 &&
	    cfg->dnsbl.null_sender_sites.n == 0)
		cfg_error(p, "[dnsbl] mode is %s but sites and null_sender_sites are empty: list the DNS "
		    "lists to query (e.g. sites = zen.example=127.0.0.[2..11])",
		    cfg->dnsbl.mode == DNSBL_MODE_LOG ? "log" : "enforce");
}

int config_redis_url_parse(const char *url, char *host, size_t hostlen, unsigned *port, unsigned *db)
{
	static const char scheme[] = "redis://";
	const char *h, *end, *rest;
	char addr[INET6_ADDRSTRLEN + 2];
	unsigned char bin[sizeof(struct in6_addr)];
	unsigned long n;
	char *stop;

	if (strncmp(url, scheme, sizeof scheme - 1) != 0)
		return -1;
	h = url + sizeof scheme - 1;
	if (*h == '[') {
		/* [v6]:port */
		if ((end = strchr(h, ']')) == NULL || end[1] != ':')
			return -1;
		h++;
		rest = end + 2;
	} else {
		if ((end = strchr(h, ':')) == NULL)
			return -1;
		rest = end + 1;
	}
	if ((size_t)(end - h) >= sizeof addr || end == h)
		return -1;
	memcpy(addr, h, (size_t)(end - h));
	addr[end - h] = '\0';
	/* an address only: hiredis resolves names with a blocking getaddrinfo */
	if (inet_pton(strchr(addr, ':') ? AF_INET6 : AF_INET, addr, bin) != 1)
		return -1;
	if (h[-1] == '[' && strchr(addr, ':') == NULL)
		return -1;
	if (!isdigit((unsigned char)*rest))
		return -1;
	errno = 0;
	n = strtoul(rest, &stop, 10);
	if (errno != 0 || n == 0 || n > 65535)
		return -1;
	*port = (unsigned)n;
	*db = 0;
	if (*stop == '/') {
		rest = stop + 1;
		if (!isdigit((unsigned char)*rest))
			return -1;
		n = strtoul(rest, &stop, 10);
		if (errno != 0 || n > 1000000)
			return -1;
		*db = (unsigned)n;
	}
	if (*stop != '\0' || strlen(addr) >= hostlen)
		return -1;
	strcpy(host, addr);
	return 0;
}

/* check_limits - [limits] store: memory, or a Redis server by address */
static void check_limits(struct cfg_parse *p)
{
	struct config *cfg = p->cfg;

	cfg->limits.redis_host[0] = '\0';
	if (strcmp(cfg->limits.store, "memory") == 0)
		return;
	if (config_redis_url_parse(cfg->limits.store, cfg->limits.redis_host, sizeof cfg->limits.redis_host,
	    &cfg->limits.redis_port, &cfg->limits.redis_db) < 0) {
		cfg->limits.redis_host[0] = '\0';
		cfg_error(p, "[limits] store: '%s' is neither memory nor redis://ADDRESS:PORT[/DB] "
		    "(an IP address, not a name: redis://127.0.0.1:6379, redis://[::1]:6379/2)",
		    cfg->limits.store);
	}
}

/* Cross-key checks and derived defaults. */
/* check_identity - [backend] identity against the keys it replaces or
 * needs: xclient decides only under identity = auto (and for the
 * [outbound] relay), and a backend port that expects a PROXY header cannot
 * also be the [outbound] relay, whose connections carry none. */
static void check_identity(struct cfg_parse *p)
{
	const struct config *cfg = p->cfg;

	if (cfg->backend.identity != IDENTITY_AUTO && cfg->backend.xclient != XCLIENT_AUTO)
		cfg_error(p, "[backend] identity = %s and xclient = %s: identity replaces xclient for the "
		    "backend; remove xclient (or set identity = auto)", identity_modes[cfg->backend.identity],
		    xclient_modes[cfg->backend.xclient]);
	if (cfg->backend.identity == IDENTITY_PROXY && cfg->outbound.listen.n > 0 &&
	    cfg->backend.address != NULL && strcmp(cfg->outbound.relay, cfg->backend.address) == 0)
		cfg_error(p, "[backend] identity = proxy: [outbound] relay is [backend] address %s, which "
		    "expects a PROXY header the [outbound] listener does not send; set [outbound] relay to a "
		    "port of the MTA without smtpd_upstream_proxy_protocol", cfg->backend.address);
}

static void config_finish(struct cfg_parse *p)
{
	struct config *cfg = p->cfg;

	for (size_t i = 0; i < NKEYS; i++) {
		if (cfg_keys[i].type == CFG_LISTEN && cfg_keys[i].min > 0 &&
		    ((struct cfg_words *)((char *)cfg + cfg_keys[i].offset))->n == 0)
			cfg_error(p, "[%s] %s: at least one address is required",
			    cfg_keys[i].section, cfg_keys[i].name);
	}
	if (cfg->server.hostname[0] == '\0') {
		char host[256];
		if (gethostname(host, sizeof host) < 0 || host[0] == '\0')
			strcpy(host, "localhost");
		host[sizeof host - 1] = '\0';
		free(cfg->server.hostname);
		cfg->server.hostname = strdup(host);
	}
	if (cfg->backend.helo[0] == '\0') {
		free(cfg->backend.helo);
		cfg->backend.helo = strdup(cfg->server.hostname);
	}
	check_protocols(p);
	absolute_paths(p);
	if (cfg->log.destination == LOG_DEST_FILE && cfg->log.file[0] == '\0')
		cfg_error(p, "[log] destination = file needs [log] file (the path of the log file)");
	if ((cfg->tls.certificate[0] == '\0') != (cfg->tls.key[0] == '\0'))
		cfg_error(p, "[tls] certificate and key must be set together");
	if (cfg->tls.require && cfg->tls.certificate[0] == '\0')
		cfg_error(p, "[tls] require = yes needs a certificate and key");
	if (cfg->backend.tls == BACKEND_TLS_REQUIRED && cfg->backend.ca_file[0] == '\0')
		cfg_error(p, "[backend] tls = required needs ca_file to verify the backend");
	if (cfg->batv.mode != BATV_MODE_OFF) {
		if (cfg->batv.domains.n == 0)
			cfg_error(p, "[batv] mode is %s but domains is empty", cfg->batv.mode == BATV_MODE_OBSERVE ? "observe" : "enforce");
		if (cfg->batv.keys_file[0] == '\0')
			cfg_error(p, "[batv] mode is on but keys_file is not set");
	}
	if (cfg->outbound.listen.n > 0 && cfg->batv.keys_file[0] == '\0')
		cfg_error(p, "[outbound] listen is set but [batv] keys_file is not: nothing to sign with");
	check_bounce(p);
	check_dnsbl(p);
	check_limits(p);
	if (cfg->server.proxy_protocol && cfg->server.proxy_trusted.n == 0)
		cfg_error(p, "[server] proxy_protocol = on needs proxy_trusted: the addresses of the load"
		    " balancers that send the header (such as 127.0.0.1 or 192.0.2.10/32); a header"
		    " from anyone else is refused");
	for (size_t i = 0; i < cfg->metrics.listen.n; i++) {
		const char *a = cfg->metrics.listen.v[i];
		for (size_t j = 0; j < cfg->server.listen.n; j++)
			if (strcmp(a, cfg->server.listen.v[j]) == 0)
				cfg_error(p, "[metrics] listen %s is also a [server] listen address: give the"
				    " metrics endpoint a port of its own", a);
		for (size_t j = 0; j < cfg->outbound.listen.n; j++)
			if (strcmp(a, cfg->outbound.listen.v[j]) == 0)
				cfg_error(p, "[metrics] listen %s is also an [outbound] listen address: give the"
				    " metrics endpoint a port of its own", a);
	}
	if (cfg->outbound.relay[0] == '\0') {
		free(cfg->outbound.relay);
		cfg->outbound.relay = strdup(cfg->backend.address ? cfg->backend.address : "");
	}
	check_identity(p);
}

static const char *const *overrides;
static size_t noverrides;

void config_set_overrides(const char *const *ov, size_t n)
{
	overrides = ov;
	noverrides = n;
}

/* apply_overrides - the -o settings, each reported as "-o TEXT: reason". */
static void apply_overrides(struct cfg_parse *p)
{
	const char *file = p->file;

	p->line = 0;
	for (size_t i = 0; i < noverrides; i++) {
		const char *o = overrides[i], *dot = strchr(o, '.'), *eq = strchr(o, '=');
		char section[64], name[64], why[256];
		const struct cfg_key *k;
		size_t idx;

		p->file = "-o";
		if (dot == NULL || eq == NULL || dot > eq || dot - o >= (long)sizeof section ||
		    eq - dot - 1 >= (long)sizeof name || dot == o || eq == dot + 1) {
			cfg_error(p, "'%s': expected section.key=value", o);
			continue;
		}
		memcpy(section, o, (size_t)(dot - o));
		section[dot - o] = '\0';
		memcpy(name, dot + 1, (size_t)(eq - dot - 1));
		name[eq - dot - 1] = '\0';
		if ((k = key_find(section, name, &idx)) == NULL) {
			cfg_error(p, "'%s': no key '%s' in section [%s]", o, name, section);
			continue;
		}
		if (set_value(p->cfg, k, eq + 1, false, why, sizeof why) < 0)
			cfg_error(p, "'%s': %s", o, why[0] ? why : "out of memory");
		p->seen[idx] = true;
	}
	p->file = file;
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
	struct cfg_parse p;
	int rc;

	memset(&p, 0, sizeof p);
	p.file = path;
	p.err = err;
	p.errlen = errlen;
	if (errlen)
		err[0] = '\0';
	if ((p.cfg = config_new_defaults(&p)) == NULL)
		return NULL;
	basedir_init();
	if ((p.fp = fopen(path, "r")) == NULL) {
		cfg_error(&p, "cannot open: %s", strerror(errno));
		config_free(p.cfg);
		return NULL;
	}
	rc = ini_parse_stream(counting_reader, &p, cfg_ini_handler, &p);
	fclose(p.fp);
	if (rc > 0 && p.nerrors == 0) {
		p.line = (unsigned)rc;
		cfg_error(&p, "syntax error (expected [section] or key = value)");
	} else if (rc < 0 && p.nerrors == 0) {
		cfg_error(&p, "cannot read the file");
	}
	apply_overrides(&p);
	p.line = 0;
	for (size_t i = 0; i < NKEYS; i++)
		if (cfg_keys[i].def == NULL && !p.seen[i])
			cfg_error(&p, "missing required key '%s' in section [%s]",
			    cfg_keys[i].name, cfg_keys[i].section);
	if (p.nerrors == 0)
		config_finish(&p);
	if (p.nerrors) {
		config_free(p.cfg);
		return NULL;
	}
	/* absolute: SIGHUP reloads it after daemon() changed to / */
	if ((p.cfg->path = absolute(path)) == NULL) {
		config_free(p.cfg);
		return NULL;
	}
	return p.cfg;
}

struct config *config_defaults(void)
{
	struct cfg_parse p;
	memset(&p, 0, sizeof p);
	p.file = "(defaults)";
	p.cfg = config_new_defaults(&p);
	if (p.cfg == NULL)
		return NULL;
	free(p.cfg->backend.address);
	p.cfg->backend.address = strdup("127.0.0.1:25");
	p.seen[0] = true;
	for (size_t i = 0; i < NKEYS; i++)
		p.seen[i] = true;
	config_finish(&p);
	return p.cfg;
}

struct config *config_ref(struct config *cfg)
{
	cfg->refs++;
	return cfg;
}

void config_unref(struct config *cfg)
{
	if (cfg != NULL && --cfg->refs == 0)
		config_free(cfg);
}

const char *config_key_name(size_t i)
{
	static char buf[128];
	if (i >= NKEYS)
		return NULL;
	snprintf(buf, sizeof buf, "%s.%s", cfg_keys[i].section, cfg_keys[i].name);
	return buf;
}

void config_dump(const struct config *cfg, FILE *out)
{
	const char *section = "";
	for (size_t i = 0; i < NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		const char *field = (const char *)cfg + k->offset;
		if (strcmp(section, k->section) != 0) {
			fprintf(out, "%s[%s]\n", i ? "\n" : "", k->section);
			section = k->section;
		}
		fprintf(out, "%s = ", k->name);
		switch (k->type) {
		case CFG_STR:
		case CFG_COLON:
		case CFG_HOSTPORT:
			fputs(*(char *const *)field ? *(char *const *)field : "", out);
			break;
		case CFG_BOOL:
			fputs(*(const bool *)field ? "yes" : "no", out);
			break;
		case CFG_UINT_AUTO:
			if (*(const unsigned long *)field == 0) {
				fputs("auto", out);
				break;
			}
			/* fall through */
		case CFG_UINT:
			fprintf(out, "%lu", *(const unsigned long *)field);
			break;
		case CFG_SIZE:
			fprintf(out, "%llu", (unsigned long long)*(const uint64_t *)field);
			break;
		case CFG_DURATION:
			fprintf(out, "%llums", (unsigned long long)*(const uint64_t *)field);
			break;
		case CFG_ENUM:
			fputs(k->names[*(const int *)field], out);
			break;
		case CFG_LISTEN:
		case CFG_NAMESERVERS:
		case CFG_WORDS: {
			const struct cfg_words *w = (const struct cfg_words *)field;
			for (size_t j = 0; j < w->n; j++)
				fprintf(out, "%s%s", j ? " " : "", w->v[j]);
			break;
		}
		case CFG_CIDRS: {
			const struct cfg_cidrs *l = (const struct cfg_cidrs *)field;
			for (size_t j = 0; j < l->n; j++) {
				char a[INET6_ADDRSTRLEN];
				inet_ntop(l->v[j].family, l->v[j].addr, a, sizeof a);
				fprintf(out, "%s%s/%u", j ? " " : "", a, l->v[j].prefix);
			}
			break;
		}
		}
		fputc('\n', out);
	}
}

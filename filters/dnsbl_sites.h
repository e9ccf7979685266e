/*
 * dnsbl_sites - one DNS list entry in Postfix postscreen's dnsbl_sites
 * syntax, the query name for a client, and whether an answer matches.
 * Pure: no DNS, no allocation, no globals.
 *
 *   domain[=filter][*weight]
 *
 *   zen.example                      any 127.x.x.x answer lists, weight 1
 *   zen.example=127.0.0.[2..11]*3    answers 127.0.0.2 to .11, weight 3
 *   wl.example=127.0.[0..255].[0..255]*-2   an allow list (negative weight)
 *   b.example=127.0.0.[2;4;10..12]   a list of numbers and ranges
 *
 * The filter is a dotted quad whose octets are each a number, or a
 * bracketed list of numbers and a..b ranges separated by ';'. Without a
 * filter an entry matches any answer in 127.0.0.0/8 (RFC 5782 2.1: lists
 * answer in 127/8; 127.0.0.1 is reserved, but postscreen counts it too,
 * and so do we for the same configuration to mean the same thing). The
 * weight is a decimal integer, -1000..1000, not 0; 1 by default.
 */
#ifndef DNSBL_SITES_H
#define DNSBL_SITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The domain leaves room for 32 reversed IPv6 nibbles ("x." each) in a
 * 253-character query name. */
#define DNSBL_DOMAIN_MAX 189
#define DNSBL_QNAME_MAX 253
#define DNSBL_WEIGHT_MAX 1000
#define DNSBL_SITES_MAX 32     /* entries per list: each is a query per client */

struct dnsbl_site {
	char domain[DNSBL_DOMAIN_MAX + 1];   /* lower case, no final dot */
	uint8_t octet[4][32];                /* allowed values, a bit per 0..255 */
	bool has_filter;
	int weight;
};

/*
 * dnsbl_site_parse - parse one entry (len bytes, need not be
 * NUL-terminated). Returns true and fills *out, or false with what to fix
 * in err.
 */
bool dnsbl_site_parse(const char *text, size_t len, struct dnsbl_site *out,
    char *err, size_t errlen);

/* dnsbl_site_matches - does the list's answer (an A record, 4 bytes in
 * network order) count for this entry? */
bool dnsbl_site_matches(const struct dnsbl_site *site, const unsigned char a[4]);

/*
 * dnsbl_query_name - the name to look up for a client address (4 bytes
 * for IPv4: reversed octets, 16 for IPv6: reversed nibbles, RFC 5782 2.1,
 * 2.4) under domain. Returns its length, or 0 when it does not fit in
 * size or in a DNS name, or the address length is neither 4 nor 16.
 */
size_t dnsbl_query_name(const unsigned char *addr, size_t addr_len, const char *domain,
    char *out, size_t size);

#endif

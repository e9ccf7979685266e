/*
 * smtp_received - the `from` and `by` parts of a Received: field body
 * (RFC 5321 4.4, RFC 5322 3.6.7), for the forged-hop check
 * (filters/joejob.c).
 *
 * Input is the field body after "Received:", folded or not. Read:
 *   from NAME [(TCP-info)]...   NAME a domain, an address literal
 *                               "[1.2.3.4]" / "[IPv6:2001:db8::1]", or a
 *                               bare address; TCP-info comments as real
 *                               MTAs write them:
 *       RFC 5321 / Postfix      (rdns.example [192.0.2.1]), (unknown [192.0.2.1])
 *       Sendmail                (user@rdns [192.0.2.1] (may be forged))
 *       Exim                    ([192.0.2.1]:25 helo=x), (helo=x)
 *       qmail, Exchange         (HELO x) (192.0.2.1), (192.0.2.1)
 *       Gmail                   (rdns.example. [192.0.2.1])
 *   by NAME [(comment)]         the receiving host
 *   via/with/id/for ... ; date  not read (the `;` ends the parse)
 * Clauses may come in any order (a first "by" then "from" is accepted);
 * a repeated clause keeps the first. Comments nest (RFC 5322 3.2.2) up to
 * SMTP_RECEIVED_COMMENT_DEPTH. A name is stored only when it is a plain
 * ASCII host name (letters, digits, '-', '_', dots; trailing dot removed),
 * so nothing stored holds 8-bit, control or comment bytes; addresses are
 * stored in inet_ntop's canonical form (IPv6 without "IPv6:").
 *
 * No I/O, no allocation; nothing past len is read.
 */
#ifndef SMTP_RECEIVED_H
#define SMTP_RECEIVED_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_RECEIVED_BODY_MAX 65536     /* longer bodies are not parsed */
#define SMTP_RECEIVED_NAME_MAX 253       /* RFC 1035 2.3.4, without the final dot */
#define SMTP_RECEIVED_ADDR_MAX 46        /* INET6_ADDRSTRLEN */
#define SMTP_RECEIVED_ADDRS 4            /* addresses kept from the from part */
#define SMTP_RECEIVED_COMMENT_DEPTH 32   /* deeper nesting: malformed */

enum smtp_received_status {
	SMTP_RECEIVED_OK = 0,
	SMTP_RECEIVED_MALFORMED,  /* unterminated comment, quote or literal,
	                             nesting too deep, NUL, a repeated clause:
	                             what came before is still filled in */
	SMTP_RECEIVED_TOO_LONG,   /* over SMTP_RECEIVED_BODY_MAX: nothing read */
};

struct smtp_received {
	bool has_from;            /* a from clause was seen */
	bool has_by;              /* a by clause was seen */
	/* from part; "" = absent, or not a plain host name */
	char from_name[SMTP_RECEIVED_NAME_MAX + 1];  /* the name after "from" */
	char from_rdns[SMTP_RECEIVED_NAME_MAX + 1];  /* the name in TCP-info
	                                                ("unknown" left out) */
	char from_helo[SMTP_RECEIVED_NAME_MAX + 1];  /* Exim helo=, qmail HELO */
	/* the addresses of the from part: those of its comments (TCP-info)
	 * and literals, in order; the literal (or bare address) right after
	 * "from" only when there is no other (Exim "from [192.0.2.1]
	 * (helo=x)"): in Postfix and Sendmail it is the client's HELO */
	char from_addrs[SMTP_RECEIVED_ADDRS][SMTP_RECEIVED_ADDR_MAX];
	size_t from_naddrs;
	/* by part: a host name, or an address literal */
	char by_name[SMTP_RECEIVED_NAME_MAX + 1];
	char by_addr[SMTP_RECEIVED_ADDR_MAX];
};

/* smtp_received_parse - parse body[0..len) into *r (always zeroed first). */
enum smtp_received_status smtp_received_parse(const char *body, size_t len,
    struct smtp_received *r);

/* smtp_received_addr_canon - the canonical text of an address written as
 * s[0..len) ("192.0.2.1", "IPv6:2001:DB8::1", "2001:db8::1") into
 * out[SMTP_RECEIVED_ADDR_MAX]; false when it is not an IPv4 or IPv6
 * address. An IPv4-mapped IPv6 address becomes its IPv4 form. */
bool smtp_received_addr_canon(const char *s, size_t len, char *out);

/* smtp_received_strerror - a short phrase for a status, for log lines. */
const char *smtp_received_strerror(enum smtp_received_status st);

#endif

/*
 * smtp_from - the domains of an RFC 5322 From: field body, for DMARC
 * (RFC 7489 6.6.1: the RFC5322.From domain is the one DMARC evaluates).
 *
 * Input is the field body after "From:", unfolded or still folded (CRLF or
 * LF followed by a space or tab is folding whitespace). It must be a
 * mailbox-list (RFC 5322 3.6.2): display names, quoted strings, nested
 * comments, angle addresses and the obsolete forms of 4.4 (periods in
 * display names, CFWS around the dots of a local part or domain, source
 * routes, empty list elements) are accepted; a group ("name: a@b;") is not,
 * From: must not be one. UTF-8 (RFC 6532 3.2) is accepted where text is;
 * invalid UTF-8, NUL, and CR or LF that are not folding are syntax errors.
 *
 * Only the domains are returned: DMARC needs nothing else, and a domain
 * copied into the fixed-size struct can outlive the message buffer.
 */
#ifndef SMTP_FROM_H
#define SMTP_FROM_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_FROM_BODY_MAX 65536   /* longer field bodies are refused */
#define SMTP_FROM_ADDR_MAX 254     /* local "@" domain, RFC 5321 4.5.3.1.3 */
#define SMTP_FROM_DOMAIN_MAX 255   /* RFC 5321 4.5.3.1.2 */
#define SMTP_FROM_COMMENT_DEPTH 32 /* nested comments deeper than this: syntax */

enum smtp_from_status {
	SMTP_FROM_OK = 0,
	SMTP_FROM_EMPTY,     /* no address at all (RFC 5322 needs one) */
	SMTP_FROM_SYNTAX,    /* not a mailbox-list */
	SMTP_FROM_GROUP,     /* a group: "name: a@b;" */
	SMTP_FROM_TOO_LONG,  /* body over 64 KiB, address over 254, domain over 255 */
};

struct smtp_from_addr {
	char domain[SMTP_FROM_DOMAIN_MAX + 1]; /* NUL-terminated, as written
	                                          minus CFWS; case kept */
	size_t domain_len;
	bool is_literal;   /* "[192.0.2.1]": no domain name, brackets kept */
	bool has_8bit;     /* UTF-8 in the domain (a U-label, RFC 6532) */
};

/*
 * smtp_from_parse - parse body[0..len). *naddrs is in: capacity of addrs,
 * out: number of addresses found, which may exceed the capacity (only the
 * first capacity ones are stored, the rest are still checked). On any
 * error *naddrs is 0. Nothing past len is read; no allocation.
 */
enum smtp_from_status smtp_from_parse(const char *body, size_t len,
    struct smtp_from_addr *addrs, size_t *naddrs);

/* smtp_from_strerror - a short phrase for a status, for log lines. */
const char *smtp_from_strerror(enum smtp_from_status st);

#endif

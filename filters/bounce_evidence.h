/*
 * bounce_evidence - the pure parts of the bounce check (filters/bounce.c):
 * which recipients it covers, whether the original reached the bouncing
 * side from one of [bounce] our_relays, and which hop the original came
 * from. No I/O, no keys: unit-tested on their own (tests/unit).
 */
#ifndef BOUNCE_EVIDENCE_H
#define BOUNCE_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/bounce.h"

struct config;

/* bounce_rcpt_exempt - postmaster@ and abuse@ of every domain (RFC 5321
 * 4.5.1, RFC 2142), and the [bounce] exempt entries: with '@' an address
 * pattern ('*' globs), without one a domain (".example.org": its
 * subdomains). addr is the recipient without its BATV tag. */
bool bounce_rcpt_exempt(const struct config *cfg, const char *addr);

/* bounce_domain_covered - is addr's domain in [batv] domains? */
bool bounce_domain_covered(const struct config *cfg, const char *addr);

/*
 * bounce_relay_hop - did the original reach the side that wrote the report
 * from one of [bounce] our_relays? Only Received fields that side wrote
 * count: the topmost, and below it those whose client address is internal
 * (loopback, private: its own content filters and relays); the first hop
 * with another client decides. Hops below that one are the sender's text:
 * a spammer writes "by our-relay" there as easily as anything else. The
 * client is the hop's address literal ("from x (y [192.0.2.25])") when it
 * has one, compared with the addresses and CIDRs; the name is often what
 * the client said in HELO, so it counts only in a hop without an address
 * ("mx.example.com" exactly, ".example.com" any host below it; case and a
 * final dot ignored). what gets "from 192.0.2.25" or "from name" of the
 * deciding hop for the log ("" with no hop).
 */
bool bounce_relay_hop(const struct config *cfg, const struct bounce_original *o,
    char *what, size_t cap);

/*
 * bounce_origin_ip - the address the original came from: the earliest hop
 * (the last of the chain, which is topmost first) whose address is neither
 * internal (loopback, RFC 1918, CGNAT, link-local, unique-local) nor one of
 * our_relays. NULL when no hop has one.
 */
const char *bounce_origin_ip(const struct config *cfg, const struct bounce_original *orig);

/* bounce_addr_bare - addr without angle brackets, comments or blanks
 * around it ("<a@b> (x)" -> "a@b"), into out. */
void bounce_addr_bare(const char *addr, char *out, size_t cap);

#endif

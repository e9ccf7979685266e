/*
 * received_ip - where a message came from on the Internet: the address
 * the bouncing site's entry MTA saw on its TCP connection (the record of
 * refused bounces, filters/bounce_record.c). No I/O.
 *
 * The original quoted in a bounce carries Received fields written from
 * the bottom up: first by the sender's machine (a spam run's zombie, and
 * whatever it chose to write: forged fields naming anyone, the joe-job
 * pattern), then by each MTA that passed it on, last by the bouncing
 * site. Only the fields the bouncing site added are its own text, and its
 * entry MTA's field names the zombie's address as that MTA saw it on the
 * connection: a zombie cannot forge that. So the chain is read from the
 * top: hops whose client address is not external (loopback, RFC 1918,
 * CGNAT, link-local, unique-local, documentation, benchmarking,
 * multicast, reserved, IPv4-mapped forms of those; or none) are skipped,
 * and so are the site's own relays, which may have public addresses
 * (Exchange Online, Gmail): a hop whose client's reverse name (the name
 * the receiving MTA looked up; never the HELO, which the client chooses)
 * is in the same registered domain as the hop's `by` host (struct
 * bounce_hop .site_relay, set by bounce_parse_received). The first hop
 * left is the entry MTA's.
 *
 * Limits: a site whose relays have no reverse name in its fields
 * (Exchange writes only the HELO) or whose relays sit in another domain
 * than their receiver (outlook.com handing to office365.com) gives one of
 * its own relays' addresses; a spammer who controls the reverse zone of
 * the address it sends from can name a host of the bouncing site there
 * (Sendmail and Gmail write an unconfirmed name) and push the choice one
 * hop down, to a line it wrote: backstop report therefore lists an
 * address only when several unrelated bouncing servers name it.
 */
#ifndef SMTP_RECEIVED_IP_H
#define SMTP_RECEIVED_IP_H

#include <stdbool.h>

#include "smtp/bounce.h"

/* received_ip_external - ip (IPv4 dotted quad or IPv6 text, optionally
 * "IPv6:"-prefixed as in RFC 5321 address literals) parses and is a
 * public unicast address. */
bool received_ip_external(const char *ip);

/* received_same_registered_domain - a and b (host names, a trailing dot
 * allowed, any case) end in the same registered domain, approximated
 * without the public suffix list (which lives in filters/, and this
 * library does no I/O): the last 2 labels, or the last 3 when the last is
 * 2 letters (a ccTLD) and the one before it 2 or 3 letters (co.uk,
 * com.au, ne.jp, gov.br: the second-level registries most ccTLDs have).
 * False when either is not a name of at least that many labels, or an
 * address. The approximation errs towards too long a domain (mail.abc.de
 * and mx.abc.de differ): a site's relay then counts as a stranger, never
 * a stranger as the site. Under shared public suffixes the PSL knows and
 * this does not (amazonaws.com), two customers look like one site. */
bool received_same_registered_domain(const char *a, const char *b);

/* received_entry_ip - the address of the topmost hop of o whose address
 * is external and which is not one of the bouncing site's own relays (see
 * above); NULL when no kept hop is. When the chain was longer than
 * BOUNCE_RECEIVED_MAX, only the topmost BOUNCE_RECEIVED_TOP hops are
 * read: the kept bottom ones are not the next hops down. */
const char *received_entry_ip(const struct bounce_original *o);

#endif

/*
 * rdns - the client's name, forward-confirmed (FCrDNS): the PTR of its
 * address, accepted only when that name resolves back to the address.
 * The name goes into backstop's Received header and XCLIENT NAME; without
 * one they say "unknown" and [UNAVAILABLE] (or [TEMPUNAVAIL] after a
 * temporary DNS failure), as Postfix does.
 *
 * Started at connect, in parallel with the greeting; a session waits for
 * it only when it needs it (before its first backend connection).
 */
#ifndef RDNS_H
#define RDNS_H

struct session;

/* rdns_start - look the client up (if [dns] reverse_lookup). */
void rdns_start(struct session *s);

#endif

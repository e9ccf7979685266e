/*
 * rdns - the client's name, forward-confirmed (FCrDNS): the PTR of its
 * address, accepted only when that name resolves back to the address.
 * The name goes into backstop's Received header and XCLIENT NAME; without
 * one they say "unknown" and [UNAVAILABLE] (or [TEMPUNAVAIL] after a
 * temporary DNS failure), as Postfix does.
 *
 * Started at connect, in parallel with the greeting; a session waits for
 * it only when it needs it (before its first backend connection).
 *
 * Below session: the answer goes by the owner's id to a callback, never
 * to a pointer, so an owner that went away meanwhile is simply not found
 * (the session looks itself up in its registry).
 */
#ifndef RDNS_H
#define RDNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* rdns_done_cb - the answer for owner_id of owner (the loop's owner,
 * which outlives every lookup: the registry to find owner_id in): the
 * forward-confirmed name, or NULL for none (temporary: the lookup failed
 * in a way that may pass) */
typedef void (*rdns_done_cb)(void *owner, uint64_t owner_id, const char *name, bool temporary);

/* rdns_start - look up the client address peer (AF_INET or AF_INET6);
 * done is called once, later, on the loop thread (never from inside
 * rdns_start). Returns 0, or -1 when no lookup could start (out of memory,
 * no resolver): then done is never called. */
struct dns;
/* dns: the loop's resolver (proxy/dns.h) */
int rdns_start(struct dns *dns, const struct sockaddr_storage *peer, void *owner, uint64_t owner_id, rdns_done_cb done);

#endif

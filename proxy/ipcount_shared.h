/*
 * ipcount_shared - per-IP (and per-network) connection counts shared by
 * the worker processes ([server] workers > 1), so that [limits]
 * max_connections_per_ip and max_connections_per_net hold exactly across
 * workers.
 *
 * The table lives in anonymous MAP_SHARED memory made before the fork:
 * fixed size, open addressing with linear probing (SipHash under a key
 * made before the fork: clients choose the keys), one process-shared
 * robust mutex (a worker killed while holding it does not block the
 * others). Each entry keeps a count per worker besides the total, so that
 * the master can take a dead worker's connections out
 * (ipcount_shared_forget_worker). Keys are the 20-byte ipkey/netkey of
 * session.c.
 */
#ifndef IPCOUNT_SHARED_H
#define IPCOUNT_SHARED_H

#include <stddef.h>

#define IPCOUNT_KEY_LEN 20

struct ipcount_shared;

/* ipcount_shared_new - room for capacity different keys (rounded up to a
 * power of two, twice over for the probing), counted for workers workers.
 * NULL if the memory cannot be had. */
struct ipcount_shared *ipcount_shared_new(size_t capacity, unsigned workers);
void ipcount_shared_free(struct ipcount_shared *t);
/* ipcount_shared_unmap - a process that did not make the table (a worker)
 * lets go of its view; the table goes on for the others */
void ipcount_shared_unmap(struct ipcount_shared *t);

/* ipcount_shared_add - worker's connections for key change by delta; the
 * total over all workers after that. When the table is full a new key is
 * not counted (0 is returned, and *full set if full is not NULL): the
 * limit then does not apply to that address rather than refusing it (and
 * that connection's later -1 may take one off a count made meanwhile:
 * never below the worker's own count). */
unsigned ipcount_shared_add(struct ipcount_shared *t, unsigned worker, const char *key, int delta,
    int *full);
/* ipcount_shared_forget_worker - a worker died: take its counts out. The
 * number of connections released. */
unsigned long ipcount_shared_forget_worker(struct ipcount_shared *t, unsigned worker);
/* ipcount_shared_keys - the keys counted now */
size_t ipcount_shared_keys(struct ipcount_shared *t);

#endif

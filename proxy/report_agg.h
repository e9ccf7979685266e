/*
 * report_agg - the counts of `backstop report`: refused bounces grouped into
 * runs (same subject and first URL host), zombies (the original's first
 * external client address), bouncing servers, and per hour.
 *
 * Bounded: each table has a fixed capacity, allocated once (report_agg_new)
 * and filled to 3/4 at most; a record whose key is new when its table is
 * full is still counted in the totals, but not in that table, and
 * "untracked" says how many such records there were (the report prints
 * it). Memory: runs 16384 x 480 B, zombies 32768 x 480 B, servers 8192 x
 * 480 B, hours 16384 x 24 B: about 27 MiB of address space at most, of
 * which only the pages used are touched. The hash is SipHash-2-4
 * (proxy/siphash.h) under a key drawn at start: keys come from hostile
 * logs, and a hash without a secret would let them be chosen to collide.
 */
#ifndef REPORT_AGG_H
#define REPORT_AGG_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/report_reader.h"
#include "proxy/siphash.h"

#define REPORT_KEY_MAX 256
#define REPORT_EXTRA_MAX 128
/* zombies: the distinct bouncing servers' networks kept per row (IPv4 /24,
 * IPv6 /48: one site's several outbound hosts are one reporter); more
 * are not told apart, so --min-servers goes up to this */
#define REPORT_SERVER_NETS 8
#define REPORT_NET_BYTES 7            /* family (4, 6), then 3 or 6 bytes of prefix */

struct report_entry {
	unsigned long long hash;
	unsigned long long count;
	long long first, last;        /* unix seconds, -1 when unknown */
	char key[REPORT_KEY_MAX];     /* run: subject; zombie, server: address */
	char extra[REPORT_EXTRA_MAX]; /* run: URL host; server: its name */
	unsigned char used;
	/* zombie: the networks of the servers whose bounces named it */
	unsigned char nservers;
	unsigned char server_nets[REPORT_SERVER_NETS][REPORT_NET_BYTES];
};

struct report_table {
	const char *name;
	struct report_entry *e;
	size_t cap, used;
	unsigned long long untracked;  /* records not counted here: the table was full */
};

struct report_hour {
	long long hour;                /* unix seconds / 3600 */
	unsigned long long count;
	unsigned char used;
};

struct report_agg {
	struct siphash_key key;        /* the tables' hash key */
	unsigned long long records;    /* bounce_refused records counted */
	unsigned long long no_time;    /* of those, without a valid ts */
	unsigned long long bad_addresses;  /* an orig_client_ip that is no address */
	long long first, last;         /* over all records with a time */
	struct report_table runs, zombies, servers;
	struct report_hour *hours;
	size_t hours_cap, hours_used;
	unsigned long long hours_untracked;
};

/* report_agg_new - NULL when out of memory */
struct report_agg *report_agg_new(void);
void report_agg_add(struct report_agg *a, const struct report_event *ev);
void report_agg_free(struct report_agg *a);

/* report_server_net - the network (IPv4 /24, IPv6 /48; an IPv4-mapped
 * address as IPv4) of a bouncing server's address into net; false when
 * ip is no address (a record without one names no server). */
bool report_server_net(const char *ip, unsigned char net[REPORT_NET_BYTES]);
/* report_zombie_listed - e (a zombie) was named by bouncing servers in at
 * least min_servers distinct networks: what goes into the rbldnsd zone */
bool report_zombie_listed(const struct report_entry *e, unsigned min_servers);

/* report_sorted - the used entries of t, most counted first (ties: key),
 * in an array the caller frees; *n gets their number. NULL on no memory. */
struct report_entry **report_sorted(const struct report_table *t, size_t *n);
/* report_hours_sorted - the used hours, oldest first; caller frees. */
struct report_hour *report_hours_sorted(const struct report_agg *a, size_t *n);

#endif

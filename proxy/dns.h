/*
 * dns - the one resolver every check uses (SPF, later DKIM keys, DMARC
 * records, DNS blocklists).
 *
 * Two ways in, one cache:
 *   dns_query_sync()  - blocking; for worker threads only (libspf2's DNS
 *                       layer runs inside uv_queue_work jobs). Never call it
 *                       on the event-loop thread.
 *   dns_query_async() - loop thread only; the callback runs later on the
 *                       loop thread (never inside dns_query_async itself).
 *
 * Both honour [dns] timeout per query (or the caller's earlier deadline)
 * and [dns] max_queries in flight, and return a struct dns_answer that the
 * caller owns and releases with dns_answer_free().
 *
 * Two caches: libunbound's serves both ways in; dns_query_async() also
 * answers repeats from the loop thread's own answer cache ([dns]
 * cache_size, cache_max_ttl; proxy/dns_cache.h) - on a later loop turn
 * too, never inside the call.
 *
 * Lifetime: dns_new() once per loop, on its thread, before the first query
 * (it starts one dispatcher thread; the loop's owner keeps it: struct
 * worker's dns, which filters get as filter_env.dns); dns_free() after
 * every user is gone,
 * on the loop thread, before the loop's final uv_run()/uv_loop_close().
 * [dns] settings are read at dns_new() only: a reload does not change them.
 */
#ifndef DNS_H
#define DNS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct config;
struct dns;

/* RR types used by backstop (values from RFC 1035 / 3596). */
enum {
	DNS_T_A = 1,
	DNS_T_NS = 2,
	DNS_T_CNAME = 5,
	DNS_T_PTR = 12,
	DNS_T_MX = 15,
	DNS_T_TXT = 16,
	DNS_T_AAAA = 28,
};

enum dns_status {
	DNS_OK = 0,      /* NOERROR with at least one record of the type */
	DNS_NODATA,      /* NOERROR, no record of that type */
	DNS_NXDOMAIN,    /* the name does not exist */
	DNS_SERVFAIL,    /* SERVFAIL, REFUSED, other rcodes, DNSSEC bogus */
	DNS_TIMEOUT,     /* no answer before the deadline */
	DNS_ERROR,       /* local: overload, bad name, resolver failure */
};

struct dns_rr {
	unsigned char *data;  /* raw RDATA (uncompressed names) */
	size_t len;
	/* decoded, NUL-terminated, or NULL for other types:
	 * TXT: the character-strings concatenated (RFC 7208 3.3);
	 * MX/PTR/CNAME/NS: the target name without the final dot. */
	char *text;
	size_t text_len;
	unsigned pref;        /* MX preference */
};

struct dns_answer {
	enum dns_status status;
	int rcode;            /* as received; -1 when there was none */
	uint32_t ttl;         /* of the answer (0 when none) */
	bool secure;          /* DNSSEC-validated (only with a trust anchor) */
	size_t n;
	struct dns_rr *rr;
};

/*
 * dns_new - create a resolver for loop from [dns]: servers (forwarders,
 * "addr:port"), else /etc/resolv.conf; timeout; max_queries. NULL with a
 * message in err.
 */
struct dns *dns_new(uv_loop_t *loop, const struct config *cfg, char *err, size_t errlen);

/* dns_free - cancel what is in flight (callbacks get DNS_ERROR), stop the
 * dispatcher thread, close the loop handles (d's memory goes with the
 * last close callback, on the loop's next turn). NULL is fine. */
void dns_free(struct dns *d);

/* dns_now_ms - the monotonic clock deadlines are expressed in. */
uint64_t dns_now_ms(void);

/*
 * dns_query_sync - look up (name, type), class IN. deadline is an absolute
 * dns_now_ms() value (0 = none); the query ends at the earlier of it and
 * [dns] timeout from now. Thread-safe. Blocks: worker threads only.
 */
struct dns_answer dns_query_sync(struct dns *d, int type, const char *name, uint64_t deadline);

/*
 * dns_query_sync_cancel - dns_query_sync() that also ends, as DNS_TIMEOUT,
 * as soon as *cancel is true and dns_cancel_wake() has been called after
 * raising it (from any thread): a check whose session has gone frees its
 * worker thread at once instead of at its deadline. cancel may be NULL.
 */
struct dns_answer dns_query_sync_cancel(struct dns *d, int type, const char *name, uint64_t deadline,
    const atomic_bool *cancel);
void dns_cancel_wake(struct dns *d);

typedef void (*dns_cb)(void *arg, const struct dns_answer *answer);

/*
 * dns_query_async - the same from the loop thread: cb(arg, answer) runs on
 * d's loop thread later; answer is freed after cb returns. Returns 0, or
 * -1 if d is NULL (cb is then never called).
 */
int dns_query_async(struct dns *d, int type, const char *name, uint64_t deadline,
    dns_cb cb, void *arg);

void dns_answer_free(struct dns_answer *a);

/*
 * dns_cache_peek - loop thread: the loop cache's answer for (type, name)
 * now, in *out (the caller frees it), without a query and without
 * waiting for the next loop turn; false when none is kept or the cache is
 * off. For a check that can run at once when every answer it needs is
 * kept (SPF), and otherwise goes to a worker thread. A hit counts as one.
 */
bool dns_cache_peek(struct dns *d, int type, const char *name, struct dns_answer *out);

/*
 * dns_cache_offer - loop thread: keep a copy of an answer that a worker
 * thread's blocking lookup got (dns_query_sync), under the same rules as
 * dns_query_async()'s answers, so that the next check finds it with
 * dns_cache_peek(). Nothing when the cache is off. A name not kept yet
 * goes in cold (dns_cache_put_cold): the sender chose it.
 */
void dns_cache_offer(struct dns *d, int type, const char *name, const struct dns_answer *a);

/*
 * dns_counts - answers handed to callers since dns_new(), by enum
 * dns_status (answers[6]), and queries in flight now. Any thread (the
 * counts are atomics: worker threads answer too). false without
 * dns_new(), loop cache hits included (dns_cache_counts).
 */
bool dns_counts(struct dns *d, uint64_t answers[6], unsigned long *inflight);

/* dns_cache_counts - dns_query_async() lookups answered from the loop's
 * answer cache (hits) and sent on to libunbound with the cache on
 * (misses), since dns_new(). false without dns_new() or with the cache
 * off. Loop thread (the metrics scrape). */
bool dns_cache_counts(struct dns *d, uint64_t *hits, uint64_t *misses);

/* dns_status_name - "ok", "nodata", "nxdomain", ... */
const char *dns_status_name(enum dns_status s);

#endif

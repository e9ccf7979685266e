/*
 * report_agg - see report_agg.h. Open addressing with linear probing over
 * fixed tables: no rehash, no growth.
 */
#define _DEFAULT_SOURCE
#include "proxy/report_agg.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUNS_CAP 16384
#define ZOMBIES_CAP 32768
#define SERVERS_CAP 8192
#define HOURS_CAP 16384

/* key_hash - key and extra, NUL between them (neither holds one): the
 * same pair, the same hash; another split of the same bytes, another */
static unsigned long long key_hash(const struct siphash_key *k, const char *key, const char *extra)
{
	char buf[REPORT_KEY_MAX + REPORT_EXTRA_MAX];
	size_t kl = strnlen(key, REPORT_KEY_MAX - 1), xl = strnlen(extra, REPORT_EXTRA_MAX - 1);

	memcpy(buf, key, kl);
	buf[kl] = '\0';
	memcpy(buf + kl + 1, extra, xl);
	return siphash24(k, buf, kl + 1 + xl);
}

static int table_init(struct report_table *t, const char *name, size_t cap)
{
	t->name = name;
	t->cap = cap;
	t->e = calloc(cap, sizeof *t->e);
	return t->e != NULL ? 0 : -1;
}

bool report_server_net(const char *ip, unsigned char net[REPORT_NET_BYTES])
{
	static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	unsigned char bin[16];

	memset(net, 0, REPORT_NET_BYTES);
	if (inet_pton(AF_INET, ip, bin) == 1) {
		net[0] = 4;
		memcpy(net + 1, bin, 3);
		return true;
	}
	if (inet_pton(AF_INET6, ip, bin) != 1)
		return false;
	if (memcmp(bin, v4mapped, sizeof v4mapped) == 0) {
		net[0] = 4;
		memcpy(net + 1, bin + 12, 3);
		return true;
	}
	net[0] = 6;
	memcpy(net + 1, bin, 6);
	return true;
}

bool report_zombie_listed(const struct report_entry *e, unsigned min_servers)
{
	return e->nservers >= min_servers;
}

/* add_server_net - net into e's set, unless there or the set is full */
static void add_server_net(struct report_entry *e, const unsigned char net[REPORT_NET_BYTES])
{
	for (unsigned i = 0; i < e->nservers; i++)
		if (memcmp(e->server_nets[i], net, REPORT_NET_BYTES) == 0)
			return;
	if (e->nservers < REPORT_SERVER_NETS)
		memcpy(e->server_nets[e->nservers++], net, REPORT_NET_BYTES);
}

/* count - one record for key/extra in t at time ts; the entry counted,
 * NULL when the table was full */
static struct report_entry *count(struct report_agg *a, struct report_table *t, const char *key_in,
    const char *extra_in, long long ts)
{
	/* cut to the entry's sizes before hashing and comparing: a longer
	 * value (a 253-byte server name in a 128-byte extra) must find its
	 * stored, cut self again, not make a new row per record */
	char key[sizeof t->e->key], extra[sizeof t->e->extra];
	unsigned long long h;
	size_t i;
	struct report_entry *e;

	snprintf(key, sizeof key, "%s", key_in);
	snprintf(extra, sizeof extra, "%s", extra_in);
	h = key_hash(&a->key, key, extra);
	i = (size_t)(h % t->cap);

	for (;;) {
		e = &t->e[i];
		if (!e->used)
			break;
		if (e->hash == h && strcmp(e->key, key) == 0 && strcmp(e->extra, extra) == 0)
			goto found;
		i = (i + 1) % t->cap;
	}
	if (t->used >= t->cap / 4 * 3) {
		t->untracked++;
		return NULL;
	}
	e->used = 1;
	e->hash = h;
	e->first = e->last = -1;
	memcpy(e->key, key, sizeof e->key);
	memcpy(e->extra, extra, sizeof e->extra);
	t->used++;
found:
	e->count++;
	if (ts >= 0) {
		if (e->first < 0 || ts < e->first)
			e->first = ts;
		if (ts > e->last)
			e->last = ts;
	}
	return e;
}

static void count_hour(struct report_agg *a, long long ts)
{
	long long hour = ts / 3600;
	size_t i = (size_t)(siphash24(&a->key, &hour, sizeof hour) % a->hours_cap);

	for (;;) {
		struct report_hour *h = &a->hours[i];
		if (h->used && h->hour == hour) {
			h->count++;
			return;
		}
		if (!h->used)
			break;
		i = (i + 1) % a->hours_cap;
	}
	if (a->hours_used >= a->hours_cap / 4 * 3) {
		a->hours_untracked++;
		return;
	}
	a->hours[i].used = 1;
	a->hours[i].hour = hour;
	a->hours[i].count = 1;
	a->hours_used++;
}

/* run_subject - the subject with blanks collapsed and trimmed: the same
 * run folded or re-encoded differently is one run */
static void run_subject(const char *s, char *out, size_t cap)
{
	size_t n = 0;
	bool blank = false;

	for (; *s && n + 1 < cap; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
			blank = n > 0;
			continue;
		}
		if (blank && n + 2 < cap)
			out[n++] = ' ';
		blank = false;
		out[n++] = *s;
	}
	out[n] = '\0';
}

struct report_agg *report_agg_new(void)
{
	struct report_agg *a = calloc(1, sizeof *a);

	if (a == NULL)
		return NULL;
	siphash_key_random(&a->key, a);
	a->first = a->last = -1;
	a->hours_cap = HOURS_CAP;
	a->hours = calloc(a->hours_cap, sizeof *a->hours);
	if (a->hours == NULL || table_init(&a->runs, "runs", RUNS_CAP) < 0 ||
	    table_init(&a->zombies, "zombies", ZOMBIES_CAP) < 0 ||
	    table_init(&a->servers, "servers", SERVERS_CAP) < 0) {
		report_agg_free(a);
		return NULL;
	}
	return a;
}

void report_agg_add(struct report_agg *a, const struct report_event *ev)
{
	char subject[REPORT_KEY_MAX];

	a->records++;
	if (ev->ts < 0) {
		a->no_time++;
	} else {
		if (a->first < 0 || ev->ts < a->first)
			a->first = ev->ts;
		if (ev->ts > a->last)
			a->last = ev->ts;
		count_hour(a, ev->ts);
	}
	run_subject(ev->subject, subject, sizeof subject);
	count(a, &a->runs, subject, ev->nurl_hosts > 0 ? ev->url_hosts[0] : "", ev->ts);
	if (ev->orig_client_ip[0]) {
		/* an address, written canonically (one zombie, one row), or not counted */
		static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		unsigned char bin[16];
		char canon[INET6_ADDRSTRLEN];
		if (inet_pton(AF_INET, ev->orig_client_ip, bin) == 1)
			inet_ntop(AF_INET, bin, canon, sizeof canon);
		else if (inet_pton(AF_INET6, ev->orig_client_ip, bin) == 1 &&
		    memcmp(bin, v4mapped, sizeof v4mapped) == 0)
			inet_ntop(AF_INET, bin + 12, canon, sizeof canon);   /* Sendmail's [IPv6:::ffff:a.b.c.d] */
		else if (inet_pton(AF_INET6, ev->orig_client_ip, bin) == 1)
			inet_ntop(AF_INET6, bin, canon, sizeof canon);
		else
			canon[0] = '\0';
		unsigned char net[REPORT_NET_BYTES];
		struct report_entry *z = canon[0] ? count(a, &a->zombies, canon, "", ev->ts) : NULL;
		if (!canon[0])
			a->bad_addresses++;
		/* who named it: one fake bounce is one server, and a site's
		 * several outbound hosts in one network are one */
		if (z != NULL && report_server_net(ev->server_ip, net))
			add_server_net(z, net);
	}
	count(a, &a->servers, ev->server_ip[0] ? ev->server_ip : "?", ev->server_name, ev->ts);
}

void report_agg_free(struct report_agg *a)
{
	if (a == NULL)
		return;
	free(a->runs.e);
	free(a->zombies.e);
	free(a->servers.e);
	free(a->hours);
	free(a);
}

static int by_count(const void *x, const void *y)
{
	const struct report_entry *a = *(const struct report_entry *const *)x;
	const struct report_entry *b = *(const struct report_entry *const *)y;
	int c;

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	if ((c = strcmp(a->key, b->key)) != 0)
		return c;
	return strcmp(a->extra, b->extra);
}

struct report_entry **report_sorted(const struct report_table *t, size_t *n)
{
	struct report_entry **v = malloc((t->used + 1) * sizeof *v);
	size_t k = 0;

	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < t->cap; i++)
		if (t->e[i].used)
			v[k++] = &t->e[i];
	qsort(v, k, sizeof *v, by_count);
	*n = k;
	return v;
}

static int by_hour(const void *x, const void *y)
{
	const struct report_hour *a = x, *b = y;
	return a->hour < b->hour ? -1 : a->hour > b->hour;
}

struct report_hour *report_hours_sorted(const struct report_agg *a, size_t *n)
{
	struct report_hour *v = malloc((a->hours_used + 1) * sizeof *v);
	size_t k = 0;

	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < a->hours_cap; i++)
		if (a->hours[i].used)
			v[k++] = a->hours[i];
	qsort(v, k, sizeof *v, by_hour);
	*n = k;
	return v;
}

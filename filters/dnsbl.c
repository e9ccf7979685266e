/*
 * dnsbl - DNS block and allow lists, scored as Postfix postscreen does
 * (postscreen_dnsbl_sites, _threshold, _whitelist_threshold).
 *
 * At connect (inbound listener only: outbound clients are our own) every
 * list in [dnsbl] sites is asked about the client at once, on the shared
 * resolver (proxy/dns.h), each lookup bounded by [dnsbl] timeout. Each
 * entry whose filter matches an answer adds its weight (negative: an
 * allow list); at [dnsbl] threshold or more the client is listed. The
 * greeting waits for the answers. A list that times out or fails counts 0
 * and is logged: a broken list never refuses mail.
 *
 * A listed client, in enforce mode, gets the banner like every other
 * client, and then 550 5.7.1 "Service unavailable; client [ADDR] blocked
 * using LIST" (postscreen's words; then "; " and the list's TXT record,
 * printable ASCII only, when it has one, as Postfix's default_rbl_reply) to
 * every MAIL, RCPT, DATA, VRFY and EXPN until it quits: the behaviour of every connect-stage refusal
 * (proxy/session.c, connect_filtered: a client logs a refused command
 * better than a refused greeting). In log mode the verdict is only logged.
 *
 * At MAIL FROM:<> the lists in [dnsbl] null_sender_sites (backscatter
 * lists) are asked the same way, and a listed client's transaction is
 * refused with the same reply naming that list; the session goes on. With
 * [dnsbl] whitelist_threshold set, a client whose [dnsbl] sites score is
 * that low or lower is exempt from the null-sender lists.
 *
 * Answers (listed with its A records, or not listed) are kept per query
 * name for the answer's TTL, at most [dnsbl] cache_ttl, at most
 * [dnsbl] cache_size of them: a client that comes back costs no query.
 * Failures are not kept. The TXT record of a refusing list is asked at
 * each refusal (the resolver's cache keeps it).
 *
 * State: one struct (the cache and the checks in flight), loop thread
 * only. A check never points at a session: it keeps the session's token,
 * and the disconnect hook orphans it (its answers still fill the cache).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/dnsbl_cache.h"
#include "filters/dnsbl_sites.h"
#include "filters/filter.h"
#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/log.h"

enum check_kind { CHECK_CONNECT, CHECK_NULL_SENDER };
enum { GROUP_SITES = 0, GROUP_NULL_SENDER = 1 };

struct dnsbl_check;

/* One entry of a list, for one client: its query and answer. */
struct dnsbl_slot {
	struct dnsbl_check *check;
	const struct dnsbl_site *site;   /* in check->cfg: not read once orphaned */
	int group;
	long shares;                     /* index of the slot with the same
	                                    domain that queries for it, or -1 */
	enum dns_status status;
	bool cached;
	struct dnsbl_answer answer;
	char name[DNSBL_QNAME_MAX + 1];
};

struct dnsbl_check {
	struct dnsbl_check *prev, *next;   /* the checks in flight */
	struct dnsbl_loop *dl;             /* whose list and cache */
	struct filter_async token;
	enum check_kind kind;
	bool orphan;                       /* the session has gone */
	const struct config *cfg;
	struct dns *dns;                   /* the loop's resolver */
	uint64_t cache_ttl;                /* ms: the config's, for after it */
	char sid[40];
	char ip[64];
	size_t nslots, outstanding;
	/* a refusal waiting for the list's TXT record (its reason) */
	bool txt_pending;
	uint64_t deadline;
	struct filter_verdict v;
	char txt_name[DNSBL_QNAME_MAX + 1];
	struct dnsbl_slot slot[];
};

/* The filter's state, loop thread only. */
/* the loop's (filter_env.loop_state): the answer cache and the checks in
 * flight. After shutdown it lives on until the last check in flight ends
 * (the resolver answers them as it stops). */
struct dnsbl_loop {
	struct dnsbl_cache cache;
	bool cache_ready;
	bool down;                          /* after shutdown: keep nothing */
	struct dnsbl_check *checks;
};

static bool dnsbl_enabled(const struct config *cfg)
{
	return cfg->dnsbl.mode != DNSBL_MODE_OFF;
}

static bool outbound(const struct filter_env *env)
{
	return env->listener != NULL && strcmp(env->listener, "outbound") == 0;
}

static void answer_keep(struct dnsbl_loop *dl, struct dnsbl_slot *sl, const struct dns_answer *a,
    uint64_t cache_ttl)
{
	uint64_t ttl;

	if (dl->down || !dl->cache_ready || cache_ttl == 0)
		return;
	if (sl->status != DNS_OK && sl->status != DNS_NXDOMAIN && sl->status != DNS_NODATA)
		return;   /* a failure is asked again next time */
	ttl = (uint64_t)a->ttl * 1000;
	if (ttl > cache_ttl)
		ttl = cache_ttl;
	if (ttl > 0)
		dnsbl_cache_put(&dl->cache, sl->name, &sl->answer, dns_now_ms() + ttl);
}

/* detail_add - "domain=127.0.0.2" to the log line's list of hits. */
static void detail_add(char *detail, size_t size, const char *domain, const unsigned char a[4])
{
	size_t used = strlen(detail);

	if (used + 1 < size)
		snprintf(detail + used, size - used, "%s%s=%u.%u.%u.%u", used ? " " : "", domain,
		    a[0], a[1], a[2], a[3]);
}

/*
 * evaluate - the scores of both groups and, per group, the listing entry
 * with the largest weight (the one the reply names, as postscreen's).
 */
static void evaluate(struct dnsbl_check *c, long score[2], const struct dnsbl_site *named[2],
    char *detail, size_t size)
{
	score[0] = score[1] = 0;
	named[0] = named[1] = NULL;
	detail[0] = '\0';
	for (size_t i = 0; i < c->nslots; i++) {
		struct dnsbl_slot *sl = &c->slot[i];
		const struct dnsbl_slot *r = sl->shares >= 0 ? &c->slot[sl->shares] : sl;

		if (sl->shares < 0 && r->status != DNS_OK && r->status != DNS_NXDOMAIN &&
		    r->status != DNS_NODATA)
			log_warn("%s: dnsbl: %s for client [%s]: %s; counted as not listed", c->sid,
			    sl->site->domain, c->ip, dns_status_name(r->status));
		if (r->status != DNS_OK)
			continue;
		for (size_t k = 0; k < r->answer.n; k++) {
			if (!dnsbl_site_matches(sl->site, r->answer.addr[k]))
				continue;
			score[sl->group] += sl->site->weight;
			if (sl->site->weight > 0 &&
			    (named[sl->group] == NULL || sl->site->weight > named[sl->group]->weight))
				named[sl->group] = sl->site;
			detail_add(detail, size, sl->site->domain, r->answer.addr[k]);
			break;   /* an entry counts once */
		}
	}
}

/* verdict - decide the check under the session's configuration. */
/* query_name_of - the query name of the (first) slot of site's domain. */
static const char *query_name_of(const struct dnsbl_check *c, const struct dnsbl_site *site)
{
	for (size_t i = 0; i < c->nslots; i++)
		if (c->slot[i].shares < 0 && strcmp(c->slot[i].site->domain, site->domain) == 0)
			return c->slot[i].name;
	return "";
}

static void verdict(struct dnsbl_check *c, struct filter_verdict *v)
{
	const struct config *cfg = c->cfg;
	long score[2];
	const struct dnsbl_site *named[2];
	char detail[512];
	int g = c->kind == CHECK_CONNECT ? GROUP_SITES : GROUP_NULL_SENDER;
	bool enforce = cfg->dnsbl.mode == DNSBL_MODE_ENFORCE;
	const char *what = c->kind == CHECK_CONNECT ? "client" : "null sender from client";

	evaluate(c, score, named, detail, sizeof detail);
	if (c->kind == CHECK_NULL_SENDER && cfg->dnsbl.has_allow_threshold &&
	    score[GROUP_SITES] <= cfg->dnsbl.allow_threshold) {
		log_info("%s: dnsbl: client [%s] allowed: sites score %ld <= whitelist_threshold %ld%s%s",
		    c->sid, c->ip, score[GROUP_SITES], cfg->dnsbl.allow_threshold,
		    detail[0] ? "; " : "", detail);
		snprintf(v->note, sizeof v->note, "dnsbl=allowed");
		return;
	}
	if (score[g] < (long)cfg->dnsbl.threshold || named[g] == NULL) {
		log_debug("%s: dnsbl: %s [%s] not listed: score %ld < threshold %lu%s%s", c->sid, what,
		    c->ip, score[g], cfg->dnsbl.threshold, detail[0] ? "; " : "", detail);
		if (c->kind == CHECK_NULL_SENDER)
			snprintf(v->note, sizeof v->note, "dnsbl=pass");
		return;
	}
	log_info("%s: dnsbl: %s [%s] listed: score %ld >= threshold %lu (%s)%s", c->sid, what, c->ip,
	    score[g], cfg->dnsbl.threshold, detail, enforce ? "" : "; mode = log, not refused");
	/* a note belongs to a transaction: at connect there is none yet (the
	 * log line above is the record) */
	if (c->kind == CHECK_NULL_SENDER)
		snprintf(v->note, sizeof v->note, "dnsbl=listed(%.120s)", named[g]->domain);
	if (!enforce)
		return;
	v->result = FILTER_REJECT;
	v->code = 550;
	snprintf(v->esc, sizeof v->esc, "5.7.1");
	snprintf(v->text, sizeof v->text, "Service unavailable; client [%s] blocked using %s",
	    c->ip, named[g]->domain);
	snprintf(c->txt_name, sizeof c->txt_name, "%s", query_name_of(c, named[g]));
}

/*
 * reason_add - "; REASON" from the list's TXT record (RFC 5782 2.1), as
 * Postfix's default_rbl_reply has it: printable ASCII only (the list's
 * text goes into our reply), white space collapsed, cut at 200 bytes.
 */
static void reason_add(struct filter_verdict *v, const struct dns_answer *a)
{
	char reason[201];
	size_t n = 0;
	const char *t;

	if (a->status != DNS_OK || a->n == 0 || (t = a->rr[0].text) == NULL)
		return;
	for (size_t i = 0; i < a->rr[0].text_len && n < sizeof reason - 1; i++) {
		unsigned char ch = (unsigned char)t[i];
		if (ch < 0x20 || ch > 0x7e)
			ch = ' ';
		if (ch == ' ' && (n == 0 || reason[n - 1] == ' '))
			continue;
		reason[n++] = (char)ch;
	}
	while (n > 0 && reason[n - 1] == ' ')
		n--;
	reason[n] = '\0';
	if (n > 0) {
		size_t used = strlen(v->text);
		snprintf(v->text + used, sizeof v->text - used, "; %s", reason);
	}
}

static void check_unlink(struct dnsbl_check *c);

static void txt_answered(void *arg, const struct dns_answer *a)
{
	struct dnsbl_check *c = arg;

	check_unlink(c);
	if (!c->orphan) {
		reason_add(&c->v, a);
		filter_async_done(&c->token, &c->v);
	}
	free(c);
}

/* reason_start - ask for the refusing list's TXT record before the
 * refusal goes out; false when it cannot be asked (refuse without). */
static bool reason_start(struct dnsbl_check *c)
{
	if (c->v.result != FILTER_REJECT || c->txt_name[0] == '\0')
		return false;
	if (dns_query_async(c->dns, DNS_T_TXT, c->txt_name, c->deadline, txt_answered, c) != 0)
		return false;
	c->txt_pending = true;
	return true;
}

static void check_unlink(struct dnsbl_check *c)
{
	struct dnsbl_loop *dl = c->dl;

	if (c->prev)
		c->prev->next = c->next;
	else if (dl->checks == c)
		dl->checks = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	if (dl->down && dl->checks == NULL)
		free(dl);   /* the last one after shutdown */
}

static void answered(void *arg, const struct dns_answer *a)
{
	struct dnsbl_slot *sl = arg;
	struct dnsbl_check *c = sl->check;

	sl->status = a->status;
	for (size_t i = 0; a->status == DNS_OK && i < a->n && sl->answer.n < DNSBL_ANSWER_ADDRS; i++)
		if (a->rr[i].len == 4)
			memcpy(sl->answer.addr[sl->answer.n++], a->rr[i].data, 4);
	if (sl->status == DNS_OK && sl->answer.n == 0)
		sl->status = DNS_NODATA;
	answer_keep(c->dl, sl, a, c->cache_ttl);
	if (--c->outstanding > 0)
		return;
	if (!c->orphan) {
		verdict(c, &c->v);
		if (reason_start(c))
			return;   /* txt_answered delivers it */
		filter_async_done(&c->token, &c->v);
	}
	check_unlink(c);
	free(c);
}

/* client_addr - the client's address as bytes (4 or 16); 0 if neither. */
static size_t client_addr(const struct filter_env *env, unsigned char out[16])
{
	if (inet_pton(AF_INET, env->client_ip, out) == 1)
		return 4;
	if (inet_pton(AF_INET6, env->client_ip, out) == 1)
		return 16;
	return 0;
}

static enum filter_result check_start(const struct filter_env *env, struct filter_verdict *v,
    const struct filter_async *async, enum check_kind kind)
{
	const struct config *cfg = env->cfg;
	struct dnsbl_loop *dl = env->loop_state;
	const struct dnsbl_site *lists[2] = {cfg->dnsbl.site_list, cfg->dnsbl.null_site_list};
	size_t counts[2] = {cfg->dnsbl.nsites, cfg->dnsbl.nnull_sites};
	unsigned char addr[16];
	size_t alen = client_addr(env, addr), n;
	struct dnsbl_check *c;
	uint64_t deadline = dns_now_ms() + cfg->dnsbl.timeout;

	if (dl == NULL)
		return FILTER_CONTINUE;   /* no init: not configured */
	if (alen == 0) {
		log_warn("%s: dnsbl: client address '%s' is neither IPv4 nor IPv6; not checked",
		    env->sid, env->client_ip);
		return FILTER_CONTINUE;
	}
	if (kind == CHECK_CONNECT)
		counts[GROUP_NULL_SENDER] = 0;
	else if (!cfg->dnsbl.has_allow_threshold)
		counts[GROUP_SITES] = 0;   /* the sites score is needed only to exempt */
	n = counts[0] + counts[1];
	if (n == 0)
		return FILTER_CONTINUE;
	if ((c = calloc(1, sizeof *c + n * sizeof c->slot[0])) == NULL) {
		log_error("%s: dnsbl: out of memory; client not checked", env->sid);
		return FILTER_CONTINUE;
	}
	c->kind = kind;
	c->dl = dl;
	c->cfg = cfg;
	c->dns = env->dns;
	c->cache_ttl = cfg->dnsbl.cache_ttl;
	c->token = *async;
	c->nslots = n;
	c->deadline = deadline;
	snprintf(c->sid, sizeof c->sid, "%s", env->sid ? env->sid : "-");
	snprintf(c->ip, sizeof c->ip, "%s", env->client_ip);
	for (size_t g = 0, i = 0; g < 2; g++)
		for (size_t k = 0; k < counts[g]; k++, i++) {
			struct dnsbl_slot *sl = &c->slot[i];
			sl->check = c;
			sl->group = (int)g;
			sl->site = &lists[g][k];
			sl->shares = -1;
			for (size_t j = 0; j < i && sl->shares < 0; j++)
				if (strcmp(c->slot[j].site->domain, sl->site->domain) == 0)
					sl->shares = (long)j;
			if (sl->shares >= 0)
				continue;
			if (dnsbl_query_name(addr, alen, sl->site->domain, sl->name, sizeof sl->name) == 0)
				sl->status = DNS_ERROR;   /* cannot happen: the domain's length is bounded */
			else if (dl->cache_ready && dnsbl_cache_get(&dl->cache, sl->name, dns_now_ms(),
			    &sl->answer)) {
				sl->status = sl->answer.n ? DNS_OK : DNS_NXDOMAIN;
				sl->cached = true;
			} else {
				c->outstanding++;
			}
		}
	for (size_t i = 0, started = 0, want = c->outstanding; started < want && i < n; i++) {
		struct dnsbl_slot *sl = &c->slot[i];
		if (sl->shares >= 0 || sl->cached || sl->status == DNS_ERROR)
			continue;
		started++;
		if (dns_query_async(c->dns, DNS_T_A, sl->name, deadline, answered, sl) != 0) {
			sl->status = DNS_ERROR;
			c->outstanding--;
		}
	}
	if (c->outstanding == 0) {
		verdict(c, &c->v);
		if (!reason_start(c)) {
			*v = c->v;
			free(c);
			return v->result;
		}
	}
	c->next = dl->checks;
	if (dl->checks)
		dl->checks->prev = c;
	dl->checks = c;
	return FILTER_ASYNC;
}

static enum filter_result dnsbl_connect(const struct filter_env *env,
    struct filter_verdict *v, const struct filter_async *async)
{
	if (outbound(env))
		return FILTER_CONTINUE;
	return check_start(env, v, async, CHECK_CONNECT);
}

static enum filter_result dnsbl_mail(const struct filter_env *env,
    struct filter_verdict *v, const struct filter_async *async)
{
	if (outbound(env) || !env->null_sender || env->cfg->dnsbl.nnull_sites == 0)
		return FILTER_CONTINUE;
	return check_start(env, v, async, CHECK_NULL_SENDER);
}

/* the session has gone: its checks' answers only fill the cache now */
static void dnsbl_disconnect(const struct filter_env *env)
{
	struct dnsbl_loop *dl = env->loop_state;

	if (dl == NULL)
		return;
	for (struct dnsbl_check *c = dl->checks; c; c = c->next)
		if (c->token.session_id == env->session_id)
			c->orphan = true;
}

static int dnsbl_init(void **loop_state, struct uv_loop_s *loop, const struct config *cfg, char *err,
    size_t errlen)
{
	(void)loop;
	struct dnsbl_loop *dl = *loop_state;
	size_t size = dnsbl_enabled(cfg) ? cfg->dnsbl.cache_size : 0;

	if (dl == NULL && (dl = *loop_state = calloc(1, sizeof *dl)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	dl->down = false;
	/* a reload keeps the answers unless the cache's size changes; a
	 * changed list or filter uses them as they are (they are per name) */
	if (dl->cache_ready && dl->cache.max == size)
		return 0;
	if (dl->cache_ready)
		dnsbl_cache_clear(&dl->cache);
	dnsbl_cache_init(&dl->cache, size);
	dl->cache_ready = true;
	return 0;
}

static void dnsbl_shutdown(void **loop_state)
{
	struct dnsbl_loop *dl = *loop_state;

	if (dl == NULL)
		return;
	*loop_state = NULL;
	if (dl->cache_ready)
		dnsbl_cache_clear(&dl->cache);
	dl->cache_ready = false;
	dl->down = true;
	if (dl->checks == NULL)
		free(dl);   /* else the last check in flight frees it */
}

/* each lookup ends at [dnsbl] timeout (or [dns] timeout, if shorter); the
 * runner's deadline only catches a lost callback, and then goes on */
static uint64_t dnsbl_async_timeout(const struct config *cfg)
{
	return cfg->dnsbl.timeout + 1000;
}

const struct filter_ops filter_dnsbl = {
	.name = "dnsbl",
	.enabled = dnsbl_enabled,
	.init = dnsbl_init,
	.shutdown = dnsbl_shutdown,
	.hook = {[FILTER_CONNECT] = dnsbl_connect, [FILTER_MAIL] = dnsbl_mail},
	.disconnect = dnsbl_disconnect,
	.async_timeout = dnsbl_async_timeout,
	.timeout_continues = true,
};

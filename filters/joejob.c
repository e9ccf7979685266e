/*
 * joejob - forged Received hops (issue 15).
 *
 * The spam behind massive backscatter (C.P. Fuhrman, MCETECH 2008) carries
 * a forged Received field right under the real one, claiming a hop through
 * a host of the forged From: domain, one of its MX or NS hosts:
 *     Received: from [91.122.24.126] by ns2.bt.net       (zombie 91.122.24.126)
 *     From: ...@talk21.com                               (NS: ns2.bt.net)
 * so that the bounces look as if the domain's own server had sent it. The
 * chain does not link: the host that handed us the message is the zombie
 * itself, not the claimed `by` host.
 *
 * Flow per message:
 *   header hook - keeps the topmost Received field of the message as the
 *                 client sent it (backstop's own Received field is written
 *                 by proxy/, never seen here) and the first From: field;
 *   FILTER_EOH  - the structural test, no DNS: its `from` part names the
 *                 client (its address, or without an address its reverse
 *                 name or HELO) and its `by` host is a name that is not the
 *                 client's. Only then: MX and NS of the From: domain (and
 *                 of the MAIL FROM domain when different and not null)
 *                 through the shared resolver, and the verdict when `by` is
 *                 one of them: enforce 550 5.7.1, mark a header field.
 *                 A DNS failure never refuses (joejob=temperror).
 * Inbound only: mail through [outbound] is our own users'.
 * The lookups are self-contained (they hold the async token, never the
 * message), so a session gone meanwhile just drops the verdict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filters/filter.h"
#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/log.h"
#include "smtp/smtp_from.h"
#include "smtp/smtp_received.h"

#define JOEJOB_DOMAINS 2          /* From: and MAIL FROM */
#define JOEJOB_CLAIM_MAX 240          /* "by, an MX host of domain", names cut at 100 */

struct joejob_msg {
	char *received;               /* the topmost Received field's body */
	size_t received_len;
	bool received_seen;
	unsigned from_fields;
	char *from_body;              /* the first From: field's body */
	size_t from_len;
	bool from_cut;
};

/* one message's lookups: outlives the message, freed by the last answer */
struct joejob_lookup {
	struct filter_async token;
	char sid[40];
	int mode;                     /* enum joejob_mode at EOH */
	char by[SMTP_RECEIVED_NAME_MAX + 1];
	char client[SMTP_RECEIVED_ADDR_MAX];
	char domains[JOEJOB_DOMAINS][SMTP_FROM_DOMAIN_MAX + 1];
	unsigned pending;
	bool answered;                /* the verdict went out */
	bool failed;                  /* a lookup failed */
	char failure[120];
};

struct joejob_query {
	struct joejob_lookup *lookup;
	int type;                     /* DNS_T_MX or DNS_T_NS */
	size_t domain;                /* index in lookup->domains */
};

static bool joejob_enabled(const struct config *cfg)
{
	return cfg->joejob.mode != JOEJOB_MODE_OFF;
}

/* inbound only: what [outbound] takes is our own users' mail */
static bool inbound(const char *listener)
{
	return listener == NULL || strcmp(listener, "outbound") != 0;
}

static bool joejob_hold_listener(const struct config *cfg, const char *listener)
{
	return cfg->joejob.mode == JOEJOB_MODE_MARK && inbound(listener);   /* its field goes on top */
}

static struct joejob_msg *msg_get(const struct filter_env *env)
{
	struct joejob_msg *m;

	if (env->txn_state == NULL)
		return NULL;
	if (*env->txn_state != NULL)
		return *env->txn_state;
	if ((m = calloc(1, sizeof *m)) == NULL)
		return NULL;
	*env->txn_state = m;
	return m;
}

static bool name_is(const struct filter_header *h, const char *name)
{
	return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

static char *copy_value(const struct filter_header *h)
{
	char *s = malloc(h->value_len + 1);

	if (s != NULL) {
		memcpy(s, h->value, h->value_len);
		s[h->value_len] = '\0';
	}
	return s;
}

static bool joejob_header(const struct filter_env *env, const struct filter_header *h)
{
	struct joejob_msg *m;

	if (!name_is(h, "Received") && !name_is(h, "From"))
		return true;
	if ((m = msg_get(env)) == NULL)
		return true;
	if (name_is(h, "Received")) {
		if (!m->received_seen && h->value_len <= SMTP_RECEIVED_BODY_MAX &&
		    (m->received = copy_value(h)) != NULL)
			m->received_len = h->value_len;
		m->received_seen = true;   /* only the topmost counts */
		return true;
	}
	if (m->from_fields++ == 0 && h->value_len <= SMTP_FROM_BODY_MAX &&
	    (m->from_body = copy_value(h)) != NULL)
		m->from_len = h->value_len;
	m->from_cut |= h->cut;
	return true;
}

/* same_host - host names equal but for case and a final dot */
static bool same_host(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la > 0 && la == lb && strncasecmp(a, b, la) == 0;
}

/* names_client - a name the client goes by: its reverse name or HELO */
static bool names_client(const struct filter_env *env, const char *name)
{
	if (!name[0])
		return false;
	if (env->client_name && strcmp(env->client_name, "unknown") != 0 &&
	    same_host(name, env->client_name))
		return true;
	return env->helo && same_host(name, env->helo);
}

/* from_is_client - the Received field's from part names the client: one
 * of its addresses is the client's; without an address, a name of it is
 * the client's reverse name or HELO */
static bool from_is_client(const struct filter_env *env, const struct smtp_received *r,
    const char *client)
{
	if (r->from_naddrs > 0) {
		for (size_t i = 0; i < r->from_naddrs; i++)
			if (strcmp(r->from_addrs[i], client) == 0)
				return true;
		return false;
	}
	return names_client(env, r->from_name) || names_client(env, r->from_rdns) ||
	    names_client(env, r->from_helo);
}

/* domain_copy - d[0..len) lower-cased into out when it is a plain
 * domain name to look up (final dot removed); false otherwise */
static bool domain_copy(const char *d, size_t len, char *out)
{
	if (len > 0 && d[len - 1] == '.')
		len--;
	if (len == 0 || len > SMTP_FROM_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.'))
			return false;
		out[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
	}
	out[len] = '\0';
	return true;
}

/* domains_of - the From: domain (the first address of the first field)
 * and the MAIL FROM domain when different and not null */
static size_t domains_of(const struct filter_env *env, const struct joejob_msg *m,
    char out[JOEJOB_DOMAINS][SMTP_FROM_DOMAIN_MAX + 1])
{
	struct smtp_from_addr addr;
	size_t n = 0, naddrs = 1;
	const char *at;

	if (m->from_body != NULL && !m->from_cut &&
	    smtp_from_parse(m->from_body, m->from_len, &addr, &naddrs) == SMTP_FROM_OK &&
	    naddrs >= 1 && !addr.is_literal && !addr.has_8bit &&
	    domain_copy(addr.domain, addr.domain_len, out[n]))
		n++;
	if (!env->null_sender && env->mail_from && (at = strrchr(env->mail_from, '@')) != NULL &&
	    domain_copy(at + 1, strlen(at + 1), out[n]) && (n == 0 || strcmp(out[0], out[n]) != 0))
		n++;
	return n;
}

static void lookup_release(struct joejob_lookup *l)
{
	if (--l->pending == 0)
		free(l);
}

static void verdict_forged(struct joejob_lookup *l, const char *kind, const char *domain,
    struct filter_verdict *v)
{
	char claim[JOEJOB_CLAIM_MAX];

	snprintf(claim, sizeof claim, "%.100s, an %s host of %.100s", l->by, kind, domain);
	snprintf(v->note, sizeof v->note, "joejob=forged");
	log_info("%s: joejob: forged Received hop: the topmost Received field claims the message "
	    "from [%s] passed through %s, but [%s] handed it to us directly",
	    l->sid, l->client, claim, l->client);
	if (l->mode == JOEJOB_MODE_ENFORCE) {
		v->result = FILTER_REJECT;
		v->code = 550;
		snprintf(v->esc, sizeof v->esc, "5.7.1");
		snprintf(v->text, sizeof v->text,
		    "Message refused: forged Received hop: it claims to have passed through %s, "
		    "but came directly from [%s]", claim, l->client);
	} else {
		snprintf(v->headers, sizeof v->headers,
		    "X-Backstop-Joejob: forged Received hop (by %s; the message came directly "
		    "from [%s])\r\n", claim, l->client);
	}
}

static void answered(void *arg, const struct dns_answer *a)
{
	struct joejob_query *q = arg;
	struct joejob_lookup *l = q->lookup;
	const char *kind = q->type == DNS_T_MX ? "MX" : "NS";
	const char *domain = l->domains[q->domain];
	struct filter_verdict v;

	free(q);
	if (l->answered) {
		lookup_release(l);
		return;
	}
	memset(&v, 0, sizeof v);
	if (a->status == DNS_OK) {
		for (size_t i = 0; i < a->n; i++)
			if (a->rr[i].text != NULL && same_host(a->rr[i].text, l->by)) {
				verdict_forged(l, kind, domain, &v);
				l->answered = true;
				filter_async_done(&l->token, &v);
				lookup_release(l);
				return;
			}
	} else if (a->status != DNS_NODATA && a->status != DNS_NXDOMAIN && !l->failed) {
		l->failed = true;
		snprintf(l->failure, sizeof l->failure, "%s %s: %s", kind, domain,
		    dns_status_name(a->status));
	}
	if (l->pending == 1) {   /* the last answer */
		if (l->failed) {
			snprintf(v.note, sizeof v.note, "joejob=temperror");
			log_info("%s: joejob: cannot tell whether %s is a host of the sender's domain "
			    "(%s); message not judged", l->sid, l->by, l->failure);
		} else {
			snprintf(v.note, sizeof v.note, "joejob=unlisted");
			log_debug("%s: joejob: %s is no MX or NS host of the sender's domain", l->sid, l->by);
		}
		l->answered = true;
		filter_async_done(&l->token, &v);
	}
	lookup_release(l);
}

static enum filter_result joejob_eoh(const struct filter_env *env,
    struct filter_verdict *v, const struct filter_async *async)
{
	struct joejob_msg *m = msg_get(env);
	struct smtp_received r;
	struct joejob_lookup *l;
	char client[SMTP_RECEIVED_ADDR_MAX];
	size_t ndomains;

	if (m == NULL || m->received == NULL || env->client_ip == NULL || !inbound(env->listener))
		return FILTER_CONTINUE;
	smtp_received_parse(m->received, m->received_len, &r);
	if (!r.by_name[0] || names_client(env, r.by_name))
		return FILTER_CONTINUE;   /* no claimed hop through another host */
	if (!smtp_received_addr_canon(env->client_ip, strlen(env->client_ip), client) ||
	    !from_is_client(env, &r, client))
		return FILTER_CONTINUE;   /* the chain links (or says nothing) */
	if ((l = calloc(1, sizeof *l)) == NULL)
		return FILTER_CONTINUE;
	ndomains = domains_of(env, m, l->domains);
	if (ndomains == 0) {
		free(l);
		return FILTER_CONTINUE;
	}
	l->token = *async;
	l->mode = env->cfg->joejob.mode;
	snprintf(l->sid, sizeof l->sid, "%s", env->sid ? env->sid : "-");
	snprintf(l->by, sizeof l->by, "%s", r.by_name);
	snprintf(l->client, sizeof l->client, "%s", client);
	log_debug("%s: joejob: the topmost Received field names the client [%s] and claims a hop "
	    "by %s: looking up MX and NS of %s%s%s", l->sid, client, l->by, l->domains[0],
	    ndomains > 1 ? " and " : "", ndomains > 1 ? l->domains[1] : "");
	/* one reference held while starting, so no answer frees l meanwhile
	 * (answers come later from the loop anyway: dns.h) */
	l->pending = 1;
	for (size_t d = 0; d < ndomains; d++)
		for (int k = 0; k < 2; k++) {
			struct joejob_query *q = calloc(1, sizeof *q);
			if (q == NULL) {
				l->failed = true;
				snprintf(l->failure, sizeof l->failure, "out of memory");
				continue;
			}
			q->lookup = l;
			q->type = k == 0 ? DNS_T_MX : DNS_T_NS;
			q->domain = d;
			l->pending++;
			if (dns_query_async(env->dns, q->type, l->domains[d], dns_now_ms() + env->cfg->dns.timeout,
			    answered, q) != 0) {
				l->pending--;
				free(q);
				l->failed = true;
				snprintf(l->failure, sizeof l->failure, "the resolver is not running");
			}
		}
	if (l->pending == 1) {   /* nothing started */
		snprintf(v->note, sizeof v->note, "joejob=temperror");
		log_warn("%s: joejob: no lookup started (%s); message not judged", l->sid, l->failure);
		free(l);
		return FILTER_CONTINUE;
	}
	l->pending--;   /* the answers hold it now */
	return FILTER_ASYNC;
}

static void joejob_txn_end(const struct filter_env *env, enum filter_outcome outcome)
{
	struct joejob_msg *m;

	(void)outcome;
	if (env->txn_state == NULL || (m = *env->txn_state) == NULL)
		return;
	free(m->received);
	free(m->from_body);
	free(m);
	*env->txn_state = NULL;
}

/* the lookups run in parallel and end at [dns] timeout; the runner's
 * deadline is the backstop for a lost answer, and it never refuses */
static uint64_t joejob_async_timeout(const struct config *cfg)
{
	return cfg->dns.timeout + 1000;
}

const struct filter_ops filter_joejob = {
	.name = "joejob",
	.enabled = joejob_enabled,
	.hook = {[FILTER_EOH] = joejob_eoh},
	.header = joejob_header,
	.txn_end = joejob_txn_end,
	.hold_listener = joejob_hold_listener,
	.async_timeout = joejob_async_timeout,
	.timeout_continues = true,
};

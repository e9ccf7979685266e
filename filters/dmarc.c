/*
 * dmarc - DMARC (RFC 7489) without libopendmarc (its alignment gives false
 * passes, its lookups block, CVE-2024-25768 is unpatched in Debian 12; see
 * ../shared/notes/dependencies-2.md section 1).
 *
 * Flow per message (filter interface v2):
 *   header hook - counts From: fields and keeps the first one's body;
 *   FILTER_EOH  - parses From: (smtp/smtp_from.c); with exactly one
 *                 domain, starts the lookup of _dmarc.<From domain> on the
 *                 shared resolver and goes on (the body keeps coming);
 *   lookup      - RFC 7489 6.6.3: exactly one v=DMARC1 record, else none;
 *                 no record at the From domain: the organizational domain
 *                 (libpsl, filters/dmarc_org.c);
 *   FILTER_EOD  - waits for the lookup if it is still running, then
 *                 evaluates with the SPF and DKIM results already in the
 *                 message's authentication record (filters/dmarc_eval.c),
 *                 adds dmarc= to it, and in enforce mode applies the
 *                 policy: reject 550 5.7.1, quarantine a header field the
 *                 backend can file on, temperror under a reject policy
 *                 451 4.7.1.
 *
 * The filter runs after SPF and DKIM in the table: it reads their results.
 * It holds the message while on (its result goes in a field on top).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filters/authres.h"
#include "filters/dmarc_eval.h"
#include "filters/dmarc_org.h"
#include "filters/dmarc_record.h"
#include "filters/filter.h"
#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/log.h"
#include "smtp/smtp_from.h"

#define DMARC_TXT_MAX 8           /* TXT records looked at per name */
#define DMARC_WHY_MAX 96

enum lookup_phase { LOOKUP_NONE, LOOKUP_FROM, LOOKUP_ORG, LOOKUP_DONE };

struct dmarc_msg;

struct dmarc_query {              /* outlives the message: msg NULL = dropped */
	struct dmarc_msg *msg;
};

struct dmarc_msg {
	char sid[40];
	struct dns *dns;              /* the loop's resolver */
	unsigned from_fields;
	char *from_body;              /* the first From: field's body */
	size_t from_len;
	bool from_cut;
	bool malformed;               /* RFC 7489 6.6.1: not exactly one From domain */
	char why[DMARC_WHY_MAX];
	char from_domain[DMARC_DOMAIN_MAX + 1];
	char org_domain[DMARC_DOMAIN_MAX + 1];
	enum lookup_phase phase;
	struct dmarc_query *query;    /* in flight */
	enum dmarc_discovery discovery;
	struct dmarc_record record;
	bool record_at_org;
	bool waiting;                 /* FILTER_EOD waits for the lookup */
	struct filter_async token;
	struct filter_env env;        /* for the finish after waiting: only
	                                 the parts that outlive the call */
	const struct config *cfg;
};

static char psl_path_loaded[4097];
static bool psl_loaded;
/* the loop's (filter_env.loop_state) */
struct dmarc_loop {
	unsigned long message_seq;   /* for [dmarc] pct_seed */
};

static bool dmarc_enabled(const struct config *cfg)
{
	return cfg->dmarc.mode != DMARC_MODE_OFF;
}

static struct dmarc_msg *msg_get(const struct filter_env *env)
{
	struct dmarc_msg *m;

	if (env->txn_state == NULL)
		return NULL;
	if (*env->txn_state != NULL)
		return *env->txn_state;
	if ((m = calloc(1, sizeof *m)) == NULL)
		return NULL;
	snprintf(m->sid, sizeof m->sid, "%s", env->sid ? env->sid : "-");
	m->cfg = env->cfg;
	m->dns = env->dns;
	*env->txn_state = m;
	return m;
}

static bool dmarc_header(const struct filter_env *env, const struct filter_header *h)
{
	struct dmarc_msg *m;

	if (h->name_len != 4 || strncasecmp(h->name, "From", 4) != 0)
		return true;
	if ((m = msg_get(env)) == NULL)
		return true;
	if (m->from_fields++ == 0 && h->value_len <= SMTP_FROM_BODY_MAX) {
		m->from_body = malloc(h->value_len + 1);
		if (m->from_body != NULL) {
			memcpy(m->from_body, h->value, h->value_len);
			m->from_len = h->value_len;
		}
	}
	m->from_cut |= h->cut;
	return true;
}

static void lookup_start(struct dmarc_msg *m, const char *domain, enum lookup_phase phase);
static void finish(struct dmarc_msg *m, const struct filter_env *env, struct filter_verdict *v);

static void record_answered(void *arg, const struct dns_answer *a)
{
	struct dmarc_query *q = arg;
	struct dmarc_msg *m = q->msg;
	struct dmarc_txt txts[DMARC_TXT_MAX];
	size_t n = 0;

	free(q);
	if (m == NULL)
		return;   /* the transaction is over */
	m->query = NULL;
	if (a->status == DNS_OK) {
		for (size_t i = 0; i < a->n && n < DMARC_TXT_MAX; i++)
			if (a->rr[i].text != NULL) {
				txts[n].txt = a->rr[i].text;
				txts[n].len = a->rr[i].text_len;
				n++;
			}
		m->discovery = dmarc_record_select(txts, n, &m->record);
	} else if (a->status == DNS_NXDOMAIN || a->status == DNS_NODATA) {
		m->discovery = DMARC_DISCOVERY_EMPTY;
	} else {
		m->discovery = DMARC_DISCOVERY_TEMPERROR;
	}
	log_debug("%s: dmarc: _dmarc.%s: %s", m->sid, m->phase == LOOKUP_ORG ? m->org_domain :
	    m->from_domain, dns_status_name(a->status));
	/* 6.6.3: no record at the From domain: ask its organizational domain */
	if (m->phase == LOOKUP_FROM && m->discovery == DMARC_DISCOVERY_EMPTY &&
	    dmarc_org_domain(m->from_domain, m->org_domain) == DMARC_ORG_OK &&
	    strcmp(m->org_domain, m->from_domain) != 0) {
		lookup_start(m, m->org_domain, LOOKUP_ORG);
		if (m->query != NULL)
			return;
	}
	m->record_at_org = m->phase == LOOKUP_ORG;
	m->phase = LOOKUP_DONE;
	if (m->waiting) {
		struct filter_verdict v;
		memset(&v, 0, sizeof v);
		m->waiting = false;
		finish(m, &m->env, &v);
		filter_async_done(&m->token, &v);
	}
}

static void lookup_start(struct dmarc_msg *m, const char *domain, enum lookup_phase phase)
{
	char name[DMARC_DOMAIN_MAX + 16];
	struct dmarc_query *q = calloc(1, sizeof *q);

	m->phase = phase;
	snprintf(name, sizeof name, "_dmarc.%s", domain);
	if (q == NULL) {
		m->discovery = DMARC_DISCOVERY_TEMPERROR;
		m->phase = LOOKUP_DONE;
		return;
	}
	q->msg = m;
	if (dns_query_async(m->dns, DNS_T_TXT, name, dns_now_ms() + m->cfg->dns.timeout,
	    record_answered, q) != 0) {
		free(q);
		m->discovery = DMARC_DISCOVERY_TEMPERROR;
		m->phase = LOOKUP_DONE;
		return;
	}
	m->query = q;
}

/* from_check - RFC 7489 6.6.1: exactly one From: field with one address
 * whose domain is a domain name; sets malformed and why otherwise. */
static void from_check(struct dmarc_msg *m)
{
	struct smtp_from_addr addrs[2];
	size_t n = 2;
	enum smtp_from_status st;

	if (m->from_fields != 1) {
		m->malformed = true;
		snprintf(m->why, sizeof m->why, "%u From: fields", m->from_fields);
		return;
	}
	if (m->from_body == NULL || m->from_cut) {
		m->malformed = true;
		snprintf(m->why, sizeof m->why, "From: field too long");
		return;
	}
	st = smtp_from_parse(m->from_body, m->from_len, addrs, &n);
	if (st != SMTP_FROM_OK) {
		m->malformed = true;
		snprintf(m->why, sizeof m->why, "From: %s", smtp_from_strerror(st));
	} else if (n != 1) {
		m->malformed = true;
		snprintf(m->why, sizeof m->why, "From: with %zu addresses", n);
	} else if (addrs[0].is_literal || addrs[0].has_8bit ||
	    !dmarc_domain_normalize(addrs[0].domain, addrs[0].domain_len, m->from_domain)) {
		/* no DNS name to look up (IDN From domains need A-labels) */
		m->malformed = true;
		snprintf(m->why, sizeof m->why, "From: domain is not an ASCII domain name");
	}
}

static enum filter_result dmarc_eoh(const struct filter_env *env,
    struct filter_verdict *v, const struct filter_async *async)
{
	struct dmarc_msg *m = msg_get(env);

	(void)v;
	(void)async;
	if (m == NULL || m->phase != LOOKUP_NONE)
		return FILTER_CONTINUE;
	from_check(m);
	if (m->malformed)
		m->phase = LOOKUP_DONE;
	else
		lookup_start(m, m->from_domain, LOOKUP_FROM);   /* while the body comes */
	return FILTER_CONTINUE;
}

static enum dmarc_auth auth_of(const char *result)
{
	if (strcmp(result, "pass") == 0)
		return DMARC_AUTH_PASS;
	if (strcmp(result, "temperror") == 0)
		return DMARC_AUTH_TEMPERROR;
	return DMARC_AUTH_FAIL;
}

static void add_result(const struct filter_env *env, const char *result, const char *reason,
    const char *from, const char *policy)
{
	struct auth_result a;

	memset(&a, 0, sizeof a);
	snprintf(a.method, sizeof a.method, "dmarc");
	snprintf(a.result, sizeof a.result, "%s", result);
	snprintf(a.reason, sizeof a.reason, "%s", reason ? reason : "");
	if (from != NULL && from[0]) {
		snprintf(a.domain, sizeof a.domain, "%s", from);
		strcpy(a.props, "header.from=");
		if (!authres_value(a.props, sizeof a.props, from, DMARC_DOMAIN_MAX))
			a.props[0] = '\0';
		else if (policy != NULL)
			snprintf(a.props + strlen(a.props), sizeof a.props - strlen(a.props),
			    " policy.dmarc=%s", policy);
	}
	if (!authres_add(env->auth, &a))
		log_warn("%s: dmarc: result left out: too many results", env->sid);
}

/* pct_draw - the message's draw for pct= sampling. Only a pct strictly
 * between 0 and 100 lets the draw decide anything (dmarc_eval: sampled
 * out when draw >= pct), so no random number is made otherwise: glibc
 * 2.36's arc4random_uniform() is one or more getrandom(2) calls (seen
 * with strace, about 1.25 per message with p=reject and no pct=). */
static unsigned pct_draw(struct dmarc_loop *dl, const struct config *cfg, unsigned pct)
{
	unsigned long seq = dl != NULL ? ++dl->message_seq : 1;
	if (cfg->dmarc.pct_seed != 0)   /* tests: a fixed sequence of draws */
		return (unsigned)((cfg->dmarc.pct_seed - 1 + seq - 1) % 100);   /* N-1, N, ... */
	if (pct == 0 || pct >= 100)
		return 0;   /* any draw gives the same outcome */
	return arc4random_uniform(100);
}

/* finish - evaluate, record dmarc=, and decide under [dmarc] mode. */
static void finish(struct dmarc_msg *m, const struct filter_env *env, struct filter_verdict *v)
{
	const struct config *cfg = m->cfg;
	struct dmarc_dkim_sig sigs[AUTHRES_MAX];
	struct dmarc_input in;
	struct dmarc_verdict out;
	const struct auth_result *r;
	bool enforce = cfg->dmarc.mode == DMARC_MODE_ENFORCE;

	if (m->malformed) {
		add_result(env, "permerror", m->why, NULL, NULL);
		snprintf(v->note, sizeof v->note, "dmarc=permerror");
		log_info("%s: dmarc: %s", m->sid, m->why);
		if (enforce && cfg->dmarc.malformed_from == DMARC_MALFORMED_REJECT) {
			v->result = FILTER_REJECT;
			v->code = 550;
			snprintf(v->esc, sizeof v->esc, "5.7.1");
			snprintf(v->text, sizeof v->text,
			    "Message refused: %s; exactly one From: address is required (RFC 7489 6.6.1)", m->why);
		}
		return;
	}
	memset(&in, 0, sizeof in);
	in.from_domain = m->from_domain;
	in.discovery = m->discovery;
	in.record = &m->record;
	in.record_at_org = m->record_at_org;
	in.spf = DMARC_AUTH_FAIL;
	if ((r = authres_find(env->auth, "spf", 0)) != NULL) {
		in.spf = auth_of(r->result);
		in.spf_domain = r->domain[0] ? r->domain : NULL;
	}
	for (size_t i = 0; (r = authres_find(env->auth, "dkim", i)) != NULL && i < AUTHRES_MAX; i++) {
		sigs[in.ndkim].result = auth_of(r->result);
		sigs[in.ndkim].domain = r->domain;
		if (r->domain[0])
			in.ndkim++;
	}
	in.dkim = in.ndkim ? sigs : NULL;
	in.pct_draw = pct_draw(env->loop_state, cfg, m->record.pct);
	dmarc_evaluate(&in, &out);
	add_result(env, dmarc_result_name(out.result), out.result == DMARC_RESULT_PASS ? "" : out.reason,
	    out.header_from, out.policy_dmarc);
	snprintf(v->note, sizeof v->note, "dmarc=%s", dmarc_result_name(out.result));
	if (!enforce)
		return;
	if (out.result == DMARC_RESULT_FAIL && out.applied == DMARC_POLICY_REJECT) {
		v->result = FILTER_REJECT;
		v->code = 550;
		snprintf(v->esc, sizeof v->esc, "5.7.1");
		snprintf(v->text, sizeof v->text,
		    "Message refused: the DMARC policy of %s is reject and the message is not "
		    "authenticated for it (%s)", out.header_from, out.reason);
	} else if (out.result == DMARC_RESULT_FAIL && out.applied == DMARC_POLICY_QUARANTINE) {
		snprintf(v->headers, sizeof v->headers,
		    "X-Backstop-DMARC: quarantine (the DMARC policy of %s; %s)\r\n",
		    out.header_from, out.reason);
	} else if (out.result == DMARC_RESULT_TEMPERROR && out.requested == DMARC_POLICY_REJECT) {
		/* 6.6.3: a temporary failure may be retried; never a 5xx */
		v->result = FILTER_TEMPFAIL;
		v->code = 451;
		snprintf(v->esc, sizeof v->esc, "4.7.1");
		snprintf(v->text, sizeof v->text,
		    "DMARC evaluation for %s failed temporarily, try again later", out.header_from);
	}
}

static enum filter_result dmarc_eod(const struct filter_env *env,
    struct filter_verdict *v, const struct filter_async *async)
{
	struct dmarc_msg *m = msg_get(env);

	if (m == NULL) {
		add_result(env, "temperror", "internal error", NULL, NULL);
		return FILTER_CONTINUE;
	}
	if (m->phase == LOOKUP_NONE)   /* no EOH ran: cannot happen, but be sure */
		dmarc_eoh(env, v, async);
	if (m->phase != LOOKUP_DONE) {
		/* the lookup is still out: finish when it answers */
		m->waiting = true;
		m->token = *async;
		m->env = *env;   /* auth and txn_state point into the session's txn,
		                    which lives until txn_end (which drops us) */
		return FILTER_ASYNC;
	}
	finish(m, env, v);
	return v->result;
}

static void dmarc_txn_end(const struct filter_env *env, enum filter_outcome outcome)
{
	struct dmarc_msg *m;

	(void)outcome;
	if (env->txn_state == NULL || (m = *env->txn_state) == NULL)
		return;
	if (m->query != NULL)
		m->query->msg = NULL;   /* record_answered frees it */
	free(m->from_body);
	free(m);
	*env->txn_state = NULL;
}

static int dmarc_init(void **loop_state, struct uv_loop_s *loop, const struct config *cfg, char *err,
    size_t errlen)
{
	(void)loop;
	const char *path = cfg->dmarc.psl_file[0] ? cfg->dmarc.psl_file : NULL;
	char old[sizeof psl_path_loaded];
	bool had = psl_loaded;

	if (*loop_state == NULL && (*loop_state = calloc(1, sizeof(struct dmarc_loop))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (!dmarc_enabled(cfg))
		return 0;
	if (psl_loaded && strcmp(psl_path_loaded, path ? path : "") == 0)
		return 0;
	snprintf(old, sizeof old, "%s", psl_path_loaded);
	if (dmarc_org_init(path, err, errlen) < 0) {
		char ignored[256];
		/* a reload with a bad list: the running one stays */
		psl_loaded = had && dmarc_org_init(old[0] ? old : NULL, ignored, sizeof ignored) == 0;
		return -1;
	}
	snprintf(psl_path_loaded, sizeof psl_path_loaded, "%s", path ? path : "");
	psl_loaded = true;
	return 0;
}

static int dmarc_check(const struct config *cfg, char *err, size_t errlen)
{
	const char *path = cfg->dmarc.psl_file[0] ? cfg->dmarc.psl_file : NULL;

	if (!dmarc_enabled(cfg) || (psl_loaded && strcmp(psl_path_loaded, path ? path : "") == 0))
		return 0;   /* as init: nothing to load */
	return dmarc_org_check(path, err, errlen);
}

static void dmarc_shutdown(void **loop_state)
{
	free(*loop_state);
	*loop_state = NULL;
	dmarc_org_end();
	psl_loaded = false;
}

static bool dmarc_hold(const struct config *cfg)
{
	return dmarc_enabled(cfg);
}

/* the lookups end at [dns] timeout, twice at most (the From domain, then
 * its organizational domain); the runner's deadline is the backstop */
static uint64_t dmarc_async_timeout(const struct config *cfg)
{
	return 2 * cfg->dns.timeout + 1000;
}

const struct filter_ops filter_dmarc = {
	.name = "dmarc",
	.enabled = dmarc_enabled,
	.init = dmarc_init,
	.check = dmarc_check,
	.shutdown = dmarc_shutdown,
	.hook = {[FILTER_EOH] = dmarc_eoh, [FILTER_EOD] = dmarc_eod},
	.header = dmarc_header,
	.txn_end = dmarc_txn_end,
	.hold = dmarc_hold,
	.async_timeout = dmarc_async_timeout,
};

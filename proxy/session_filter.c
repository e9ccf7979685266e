/*
 * session_filter - running the filter chain for a session (filters/filter.h).
 *
 * At each stage the enabled filters' hooks run in table order; the first
 * verdict that is not CONTINUE ends the stage and goes to the stage's
 * continuation. A hook that answers FILTER_ASYNC parks the session
 * (WAIT_FILTER); its verdict comes back through filter_async_done(), which
 * finds the session by id and drops verdicts for sessions that closed or
 * moved on (call sequence number).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/worker.h"
#include "proxy/tls.h"

/* notes_add - a check's note for the transaction's summary line. Before
 * MAIL there is no transaction (nor a summary) to carry it. */
static void notes_add(struct session *s, const char *note)
{
	size_t len, nl = strlen(note);
	const char *p;

	if (!note[0] || s->txn.rec == NULL)
		return;
	len = strlen(s->txn.rec->notes);
	p = s->txn.rec->notes;
	/* the same verdict from several stages is noted once */
	while ((p = strstr(p, note)) != NULL) {
		if ((p == s->txn.rec->notes || p[-1] == ' ') && (p[nl] == ' ' || p[nl] == '\0'))
			return;
		p += nl;
	}
	snprintf(s->txn.rec->notes + len, sizeof s->txn.rec->notes - len, "%s%s", len ? " " : "", note);
}


static void build_env(struct session *s, struct filter_env *e, size_t index)
{
	const struct txn_record *rec = s->txn.rec;   /* NULL before MAIL */

	memset(e, 0, sizeof *e);
	e->txn_number = s->txn.number;
	e->txn_state = index < FILTER_TABLE_MAX ? &s->txn.filter_state[index] : NULL;
	e->auth = s->txn.rec ? &s->txn.rec->auth : NULL;
	e->hold = s->txn.hold;
	e->loop = s->worker->loop;
	e->session_id = s->id;
	e->sid = s->sid;
	e->listener = s->outbound ? "outbound" : "inbound";
	e->client_sa = (const struct sockaddr *)&s->peer;
	e->client_ip = s->ip;
	e->client_port = s->port;
	e->client_name = s->client_name;
	e->helo = s->helo;
	e->esmtp = s->esmtp;
	e->tls = s->tls != NULL && tls_conn_handshake_done(s->tls);
	e->proxy_local = s->proxy_local;
	e->mail_from = rec == NULL ? "" : rec->from_relayed[0] ? rec->from_relayed : rec->from.addr;
	e->null_sender = rec != NULL && rec->from.is_null;
	e->rcpt = rec != NULL && rec->rcpt.addr[0] ? rec->rcpt.addr : NULL;
	e->rcpts = s->txn.rcpt_view;
	e->rcpts_orig = s->txn.rcpt_orig_view;
	e->nrcpts = s->txn.nrcpts;
	e->cfg = s->cfg;
	e->ratelimit = s->worker->ratelimit;
	e->dns = s->worker->dns;
	e->loop_state = index < FILTER_TABLE_MAX ? s->worker->filters.state[index] : NULL;
	e->filters = &s->worker->filters;
}

static uint64_t filter_deadline_ms(const struct filter_ops *f, const struct config *cfg)
{
	uint64_t ms = f->async_timeout ? f->async_timeout(cfg) : 0;
	return ms ? ms : FILTER_ASYNC_TIMEOUT_DEFAULT;
}

static bool filter_on(const struct filter_ops *f, const struct config *cfg)
{
	return f->enabled == NULL || f->enabled(cfg);
}

/* apply_verdict - merge what a hook decided; true when it ends the stage. */
static bool apply_verdict(struct session *s, const char *name)
{
	struct filter_verdict *v = s->verdict;
	size_t hl = strnlen(v->headers, sizeof v->headers);

	if (hl && (s->filter_stage == FILTER_EOH || s->filter_stage == FILTER_EOD)) {
		/* content has begun: only a held message can still take a field
		 * on top; a filter that adds one must declare hold */
		if (!s->txn.hold)
			log_warn("%s: header field of filter %s at %s dropped: the message is not held",
			    s->sid, name, filter_stage_name(s->filter_stage));
		else if (buf_append(&s->txn.late_headers, v->headers, hl, 16 * FILTER_HEADERS_MAX) < 0)
			log_warn("%s: headers of filter %s dropped: too many", s->sid, name);
	} else if (hl && buf_append(&s->txn.headers, v->headers, hl, 16 * FILTER_HEADERS_MAX) < 0) {
		log_warn("%s: headers of filter %s dropped: too many", s->sid, name);
	}
	/* a result before MAIL has no message to go on: left out, as the
	 * record of a transaction starts empty */
	if (v->auth.method[0] && s->txn.rec != NULL && !authres_add(&s->txn.rec->auth, &v->auth))
		log_warn("%s: %s result of filter %s left out: too many results", s->sid,
		    v->auth.method, name);
	notes_add(s, v->note);
	if (v->rewrite[0])
		snprintf(s->rewrite, sizeof s->rewrite, "%s", v->rewrite);
	if (v->result == FILTER_CONTINUE)
		return false;
	v->filter = name;
	if (v->result == FILTER_TEMPFAIL) {
		if (v->code < 400 || v->code > 499)
			v->code = 451;
		if (!v->esc[0])
			strcpy(v->esc, "4.7.1");
	} else {
		v->result = FILTER_REJECT;
		if (v->code < 500 || v->code > 599)
			v->code = 550;
		if (!v->esc[0])
			strcpy(v->esc, "5.7.1");
	}
	if (!v->text[0])
		snprintf(v->text, sizeof v->text, "Error: refused by policy (%s)", name);
	/* the transaction's summary line carries the reply; this is detail */
	log_debug("%s: %s %s from [%s]:%u: %d %s %s", s->sid, name,
	    v->result == FILTER_TEMPFAIL ? "tempfail" : "reject", s->ip, s->port,
	    v->code, v->esc, v->text);
	return true;
}

/* stage_done - the stage's verdict to its continuation. The verdict is
 * the continuation's to read and is freed after it: the session holds
 * none between stages (an idle session does not pay for its 3.6 kB), and
 * a stage the continuation starts allocates its own. */
static void stage_done(struct session *s)
{
	struct filter_verdict *v = s->verdict;

	s->verdict = NULL;
	s->filter_then(s, v);
	free(v);
}

static void filters_continue(struct session *s)
{
	enum filter_stage stage = s->filter_stage;
	struct filter_env env;

	while (s->filter_next < filter_table_len) {
		const struct filter_ops *f = filter_table[s->filter_next++];
		struct filter_async token;
		enum filter_result r;

		if (f->hook[stage] == NULL || !filter_on(f, s->cfg))
			continue;
		memset(s->verdict, 0, sizeof *s->verdict);
		build_env(s, &env, s->filter_next - 1);
		token.session_id = s->id;
		token.owner = s->worker;
		token.call_seq = ++s->call_seq;
		s->verdict_ready = false;
		/* waiting already while the hook runs: a filter may deliver its
		 * verdict from inside the hook (it then waits in the run queue) */
		s->wait = WAIT_FILTER;
		r = f->hook[stage](&env, s->verdict, &token);
		if (r != FILTER_ASYNC) {
			s->wait = WAIT_NONE;
			s->verdict_ready = false;
		}
		if (r == FILTER_ASYNC) {
			/* the runner keeps the time: a lost callback cannot park
			 * the session beyond the filter's deadline */
			s->wait = WAIT_FILTER;
			s->filter_deadline = uv_now(s->worker->loop) + filter_deadline_ms(f, s->cfg);
			session_timer_arm(s);
			return;
		}
		s->verdict->result = r;
		if (apply_verdict(s, f->name)) {
			stage_done(s);
			return;
		}
	}
	memset(s->verdict, 0, sizeof *s->verdict);
	stage_done(s);
}

void filters_run(struct session *s, enum filter_stage stage,
    void (*then)(struct session *, const struct filter_verdict *))
{
	static const struct filter_verdict pass;
	bool any = false;

	for (size_t i = 0; i < filter_table_len && !any; i++)
		any = filter_table[i]->hook[stage] != NULL && filter_on(filter_table[i], s->cfg);
	if (!any) {
		s->rewrite[0] = '\0';
		then(s, &pass);
		return;
	}
	/* allocated per stage (freed by stage_done): an idle connection does
	 * not pay for it */
	if (s->verdict == NULL && (s->verdict = malloc(sizeof *s->verdict)) == NULL) {
		session_reply(s, 421, "4.3.0", "%s Error: out of memory", s->cfg->server.hostname);
		session_close(s, "out of memory");
		return;
	}
	s->filter_stage = stage;
	s->filter_next = 0;
	s->filter_then = then;
	s->rewrite[0] = '\0';
	filters_continue(s);
}

/*
 * The run queue: asynchronous verdicts resume their session from the
 * loop (a zero timer), never on the stack of the filter that delivered
 * them, which may be inside its own hook or inside a library callback.
 * Sessions are queued by id. One queue per loop: w->runq.
 */
static void runq_run(uv_timer_t *t)
{
	struct worker *w = t->data;

	while (w->runq.n > 0) {
		uint64_t *ids = w->runq.ids;
		size_t n = w->runq.n;
		w->runq.ids = NULL;
		w->runq.n = w->runq.cap = 0;
		for (size_t i = 0; i < n; i++) {
			struct session *s = session_find(w, ids[i]);
			const struct filter_ops *f;
			if (s == NULL || s->closing || s->wait != WAIT_FILTER || !s->verdict_ready)
				continue;
			s->verdict_ready = false;
			s->wait = WAIT_NONE;
			f = filter_table[s->filter_next - 1];
			if (!apply_verdict(s, f->name))
				filters_continue(s);
			else
				stage_done(s);
			session_process(s);
		}
		free(ids);
	}
}

static void runq_push(struct worker *w, uint64_t id)
{
	if (!w->runq.init) {
		uv_timer_init(w->loop, &w->runq.timer);
		w->runq.timer.data = w;
		uv_unref((uv_handle_t *)&w->runq.timer);   /* never keeps the loop alive */
		w->runq.init = true;
	}
	if (w->runq.n == w->runq.cap) {
		size_t cap = w->runq.cap ? w->runq.cap * 2 : 16;
		uint64_t *ids = realloc(w->runq.ids, cap * sizeof *ids);
		if (ids == NULL)
			return;   /* the filter deadline still ends the wait */
		w->runq.ids = ids;
		w->runq.cap = cap;
	}
	w->runq.ids[w->runq.n++] = id;
	if (!uv_is_closing((uv_handle_t *)&w->runq.timer) && !uv_is_active((uv_handle_t *)&w->runq.timer))
		uv_timer_start(&w->runq.timer, runq_run, 0, 0);
}

void filter_async_done(const struct filter_async *async, const struct filter_verdict *v)
{
	struct session *s = async->owner != NULL ? session_find(async->owner, async->session_id) : NULL;

	if (s == NULL || s->closing || s->wait != WAIT_FILTER || async->call_seq != s->call_seq ||
	    s->verdict_ready) {
		log_debug("late filter verdict for session %llu dropped",
		    (unsigned long long)async->session_id);
		return;
	}
	*s->verdict = *v;
	s->verdict_ready = true;
	runq_push(s->worker, s->id);
}

void filters_timed_out(struct session *s)
{
	const struct filter_ops *f = filter_table[s->filter_next - 1];
	unsigned long long ms = (unsigned long long)filter_deadline_ms(f, s->cfg);

	log_warn("%s: check %s did not answer within %llu ms at %s; %s", s->sid, f->name, ms,
	    filter_stage_name(s->filter_stage), f->timeout_continues ? "going on without it" :
	    "temporary failure");
	s->call_seq++;   /* its verdict, if it ever comes, is dropped */
	s->verdict_ready = false;
	memset(s->verdict, 0, sizeof *s->verdict);
	if (!f->timeout_continues) {
		s->verdict->result = FILTER_TEMPFAIL;
		s->verdict->code = 451;
		snprintf(s->verdict->esc, sizeof s->verdict->esc, "4.7.1");
		snprintf(s->verdict->text, sizeof s->verdict->text,
		    "Error: the %s check timed out, try again later", f->name);
	}
	s->wait = WAIT_NONE;
	if (!apply_verdict(s, f->name))
		filters_continue(s);
	else
		stage_done(s);
	session_process(s);
}

/* ---- content hooks (synchronous) ---- */

bool filters_header(struct session *s, const struct filter_header *h)
{
	struct filter_env env;
	bool keep = true;

	for (size_t i = 0; i < filter_table_len; i++) {
		const struct filter_ops *f = filter_table[i];
		if (f->header == NULL || !filter_on(f, s->cfg))
			continue;
		build_env(s, &env, i);
		/* every filter sees every field (DKIM hashes what arrived) */
		if (!f->header(&env, h))
			keep = false;
	}
	return keep;
}

void filters_body(struct session *s, const char *data, size_t len)
{
	struct filter_env env;

	for (size_t i = 0; i < filter_table_len; i++) {
		const struct filter_ops *f = filter_table[i];
		if (f->body == NULL || !filter_on(f, s->cfg))
			continue;
		build_env(s, &env, i);
		f->body(&env, data, len);
	}
}

bool filters_body_wanted(const struct session *s)
{
	for (size_t i = 0; i < filter_table_len; i++)
		if (filter_table[i]->body != NULL && filter_on(filter_table[i], s->cfg))
			return true;
	return false;
}

bool filters_hold(const struct session *s)
{
	for (size_t i = 0; i < filter_table_len; i++) {
		const struct filter_ops *f = filter_table[i];
		if (f->hold != NULL && filter_on(f, s->cfg) && f->hold(s->cfg))
			return true;
		if (f->hold_listener != NULL && filter_on(f, s->cfg) &&
		    f->hold_listener(s->cfg, s->outbound ? "outbound" : "inbound"))
			return true;
	}
	return false;
}

void filters_txn_end(struct session *s)
{
	struct filter_env env;

	for (size_t i = 0; i < filter_table_len && i < FILTER_TABLE_MAX; i++) {
		const struct filter_ops *f = filter_table[i];
		if (f->txn_end != NULL && (s->txn.filter_state[i] != NULL || s->txn.active)) {
			build_env(s, &env, i);
			f->txn_end(&env, s->txn.outcome);
		}
		/* the filter freed its state; a slot left set is a leak to
		 * report, never memory to reuse */
		if (s->txn.filter_state[i] != NULL) {
			log_warn("%s: filter %s left per-message state after txn_end", s->sid, f->name);
			s->txn.filter_state[i] = NULL;
		}
	}
}

void filters_session_end(struct session *s)
{
	struct filter_env env;

	if (s->txn.active || s->state == SMTP_STATE_DATA)
		s->txn.outcome = FILTER_TXN_ABORTED;
	filters_txn_end(s);
	for (size_t i = 0; i < filter_table_len; i++) {
		const struct filter_ops *f = filter_table[i];
		if (f->disconnect != NULL && filter_on(f, s->cfg)) {
			build_env(s, &env, i);
			f->disconnect(&env);
		}
	}
}

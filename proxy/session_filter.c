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
#include "proxy/session.h"
#include "proxy/tls.h"

static void notes_add(struct session *s, const char *note)
{
	size_t len = strlen(s->txn.notes), nl = strlen(note);
	const char *p = s->txn.notes;

	if (!note[0])
		return;
	/* the same verdict from several stages is noted once */
	while ((p = strstr(p, note)) != NULL) {
		if ((p == s->txn.notes || p[-1] == ' ') && (p[nl] == ' ' || p[nl] == '\0'))
			return;
		p += nl;
	}
	snprintf(s->txn.notes + len, sizeof s->txn.notes - len, "%s%s", len ? " " : "", note);
}


static void build_env(struct session *s, struct filter_env *e)
{
	memset(e, 0, sizeof *e);
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
	e->mail_from = s->txn.from_relayed[0] ? s->txn.from_relayed : s->txn.from.addr;
	e->null_sender = s->txn.from.is_null;
	e->rcpt = s->txn.rcpt.addr[0] ? s->txn.rcpt.addr : NULL;
	e->rcpts = s->txn.rcpt_view;
	e->rcpts_orig = s->txn.rcpt_orig_view;
	e->nrcpts = s->txn.nrcpts;
	e->cfg = s->cfg;
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

	if (hl && buf_append(&s->txn.headers, v->headers, hl, 16 * FILTER_HEADERS_MAX) < 0)
		log_warn("%s: headers of filter %s dropped: too many", s->sid, name);
	notes_add(s, v->note);
	if (v->rewrite[0])
		snprintf(s->rewrite, sizeof s->rewrite, "%s", v->rewrite);
	if (v->result == FILTER_CONTINUE)
		return false;
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
		build_env(s, &env);
		token.session_id = s->id;
		token.call_seq = ++s->call_seq;
		r = f->hook[stage](&env, s->verdict, &token);
		if (r == FILTER_ASYNC) {
			s->wait = WAIT_FILTER;
			session_timer_arm(s);
			return;
		}
		s->verdict->result = r;
		if (apply_verdict(s, f->name)) {
			s->filter_then(s, s->verdict);
			return;
		}
	}
	memset(s->verdict, 0, sizeof *s->verdict);
	s->filter_then(s, s->verdict);
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
	/* allocated at the first use: an idle connection does not pay for it */
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

void filter_async_done(const struct filter_async *async, const struct filter_verdict *v)
{
	struct session *s = session_find(async->session_id);
	const struct filter_ops *f;

	if (s == NULL || s->closing || s->wait != WAIT_FILTER || async->call_seq != s->call_seq) {
		log_debug("late filter verdict for session %llu dropped",
		    (unsigned long long)async->session_id);
		return;
	}
	f = filter_table[s->filter_next - 1];
	*s->verdict = *v;
	s->wait = WAIT_NONE;
	if (!apply_verdict(s, f->name))
		filters_continue(s);
	else
		s->filter_then(s, s->verdict);
	session_process(s);
}



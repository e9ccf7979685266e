/*
 * session_data - message content: from the 354 to the final reply.
 *
 * Lines are classified by smtp_data_line(), which also produces the exact
 * bytes the backend receives (re-stuffed, CRLF only): no client byte is
 * spliced through. Content is gathered in s->dbuf and written to the
 * backend in large writes (data_buffer bytes); a small message therefore
 * travels in one write together with the final dot. The dot is held back
 * until the end-of-data checks agree, so a refusal at that point reaches
 * the backend as a dropped connection without a dot, never as a message.
 *
 * Invariant 1: the client hears 250 only after the backend said 250 to
 * this message's dot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/backend.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/tls.h"

#define DATA_LINE_SEGMENT 8192   /* longer lines pass in segments */

static size_t data_limit(const struct session *s)
{
	/* unsent content, plus a whole header field that can join it at once */
	return (size_t)s->cfg->limits.data_buffer + DATA_LINE_SEGMENT + SESSION_HEADER_MAX +
	    16 * FILTER_HEADERS_MAX + 4096;
}

static void dbuf_add(struct session *s, const char *data, size_t len);

/* txn_fail - refuse the message at its end; stop sending it anywhere. */
static void txn_fail(struct session *s, int code, const char *esc, const char *text)
{
	if (s->txn.failed_code)
		return;
	s->txn.failed_code = code;
	snprintf(s->txn.failed_esc, sizeof s->txn.failed_esc, "%s", esc);
	snprintf(s->txn.failed_text, sizeof s->txn.failed_text, "%s", text);
	if (s->be)
		backend_abort(s);
	s->dbuf.len = 0;
}

static void received_header(struct session *s)
{
	char date[64], helo[300], tlsinfo[512] = "";
	time_t now = time(NULL);
	struct tm tm;
	const char *proto;
	bool tls = s->tls && tls_conn_handshake_done(s->tls);
	int n;

	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	/* the HELO is the client's text: keep it printable and unfoldable */
	log_escape(s->helo, strlen(s->helo), helo, sizeof helo);
	for (char *p = helo; *p; p++)
		if (*p == '(' || *p == ')' || *p == ';')
			*p = '_';
	proto = s->esmtp ? (tls ? "ESMTPS" : "ESMTP") : "SMTP";
	if (tls) {
		char subject[256], esc[200];
		int n2 = snprintf(tlsinfo, sizeof tlsinfo, "\r\n\t(using %s with cipher %s)",
		    tls_conn_version(s->tls), tls_conn_cipher(s->tls));
		if (tls_conn_peer_subject(s->tls, subject, sizeof subject) > 0 && n2 > 0 &&
		    (size_t)n2 < sizeof tlsinfo) {
			/* the subject is the client's text: escaped, and kept out of
			 * the comment syntax */
			log_escape(subject, strlen(subject), esc, sizeof esc);
			for (char *p = esc; *p; p++)
				if (*p == '(' || *p == ')' || *p == ';' || *p == '"' || *p == '\\')
					*p = '_';
			snprintf(tlsinfo + n2, sizeof tlsinfo - (size_t)n2,
			    "\r\n\t(client certificate \"%s\")", esc);
		}
	}
	if (buf_reserve(&s->dbuf, 1024, data_limit(s)) < 0)
		return;
	/* RFC 5321 4.4: from (HELO, reverse name, address), by, with, id, date */
	n = snprintf(s->dbuf.data + s->dbuf.len, s->dbuf.size - s->dbuf.len,
	    "Received: from %s (%s [%s%s])%s\r\n\tby %s (backstop) with %s id %s.%u;\r\n\t%s\r\n",
	    helo[0] ? helo : "unknown", s->client_name,
	    strchr(s->ip, ':') ? "IPv6:" : "", s->ip,   /* RFC 5321 4.1.3 address literal */
	    tlsinfo, s->cfg->server.hostname,
	    proto, s->sid, s->txn.number, date);
	if (n > 0 && (size_t)n < s->dbuf.size - s->dbuf.len)
		s->dbuf.len += (size_t)n;
}

void session_data_start(struct session *s)
{
	s->state = SMTP_STATE_DATA;
	memset(&s->txn.data, 0, sizeof s->txn.data);
	s->txn.field.len = 0;
	s->txn.field_open = false;
	s->txn.failed_code = 0;
	s->dbuf.len = 0;
	smtp_line_reset(&s->lr);
	/* RFC 7208 9.1: Received-SPF (and the other trace fields the filters
	 * add) go above the Received: field of this receiver */
	if (s->txn.headers.len)
		buf_append(&s->dbuf, s->txn.headers.data, s->txn.headers.len, data_limit(s));
	received_header(s);
}

/* field_finish - a header field is complete: ask the filters whether it
 * stays (e.g. a forged Authentication-Results), then pass it on. */
static void field_finish(struct session *s)
{
	struct txn *t = &s->txn;
	const char *f = t->field.data;
	size_t len = t->field.len, off = 0, nlen;
	bool keep = true;
	struct filter_env env;

	if (!t->field_open)
		return;
	t->field_open = false;
	if (len >= 2 && f[0] == '.' && f[1] == '.')
		off = 1;    /* the wire form is dot-stuffed */
	nlen = smtp_header_name_len(f + off, len - off);
	/* the value starts after the colon, which may follow blanks
	 * (RFC 5322 4.5.3 obsolete syntax "Name : value") */
	const char *colon = nlen > 0 ? memchr(f + off + nlen, ':', len - off - nlen) : NULL;
	if (colon != NULL) {
		const char *value = colon + 1;
		size_t vlen = len - (size_t)(value - f);
		if (vlen >= 2)
			vlen -= 2;  /* final CRLF */
		memset(&env, 0, sizeof env);
		env.session_id = s->id;
		env.sid = s->sid;
		env.listener = s->outbound ? "outbound" : "inbound";
		env.client_ip = s->ip;
		env.cfg = s->cfg;
		for (size_t i = 0; i < filter_table_len && keep; i++) {
			const struct filter_ops *fo = filter_table[i];
			if (fo->header && (fo->enabled == NULL || fo->enabled(s->cfg)))
				keep = fo->header(&env, f + off, nlen, value, vlen);
		}
	}
	if (keep) {
		dbuf_add(s, f, len);
	} else {
		char name[80];
		log_info("%s: removed header %s from [%s]:%u", s->sid,
		    log_escape(f + off, nlen < 60 ? nlen : 60, name, sizeof name), s->ip, s->port);
	}
	t->field.len = 0;
}

static void dot_relayed(struct session *s, const struct smtp_reply *r, int err)
{
	char result[2600];

	s->state = SMTP_STATE_READY;
	if (err) {
		/* no (complete) answer to our dot: the message may or may not
		 * be queued at the backend; 4xx makes the sender retry rather
		 * than lose it (RFC 1047) */
		log_warn("%s: backend %s after end of data", s->sid, backend_err_text(err));
		session_reply(s, 451, "4.4.2", "Error: backend %s, message not accepted; try again later",
		    backend_err_text(err));
		snprintf(result, sizeof result, "451 backend %s", backend_err_text(err));
	} else if (r->code / 100 == 2) {
		session_reply(s, 250, r->esc[0] ? r->esc : "2.0.0", "%s (backstop id %s.%u)", r->text,
		    s->sid, s->txn.number);
		snprintf(result, sizeof result, "accepted: backend said %d %s %s", r->code, r->esc, r->text);
	} else if (r->code / 100 == 4 || r->code / 100 == 5) {
		session_reply_smtp(s, r);
		snprintf(result, sizeof result, "refused by backend: %d %s %s", r->code, r->esc, r->text);
	} else {
		session_reply(s, 451, "4.3.0", "Error: unexpected reply from the backend, try again later");
		snprintf(result, sizeof result, "451 unexpected backend reply %d", r->code);
		backend_abort(s);
	}
	session_summary(s, result);
	txn_reset(s);
	s->be_rset_pending = false;   /* the dot ended the backend's transaction */
	if (s->drain_after_txn) {
		session_reply(s, 421, "4.3.2", "%s Service shutting down, try again later",
		    s->cfg->server.hostname);
		session_close(s, "shutdown");
		return;
	}
	session_resume(s);
}

static void eod_filtered(struct session *s, const struct filter_verdict *v)
{
	if (v->result != FILTER_CONTINUE) {
		txn_fail(s, v->code, v->esc, v->text);
		session_reply(s, v->code, v->esc, "%s", v->text);
		session_summary(s, "refused at end of data");
		s->state = SMTP_STATE_READY;
		txn_reset(s);
		s->be_rset_pending = false;
		return;
	}
	s->wait = WAIT_BACKEND;
	backend_data_end(s, &s->dbuf, dot_relayed);
}

static void data_end(struct session *s)
{
	field_finish(s);
	if (s->txn.failed_code) {
		char result[2600];
		session_reply(s, s->txn.failed_code, s->txn.failed_esc, "%s", s->txn.failed_text);
		snprintf(result, sizeof result, "refused: %d %s %s", s->txn.failed_code,
		    s->txn.failed_esc, s->txn.failed_text);
		session_summary(s, result);
		s->state = SMTP_STATE_READY;
		txn_reset(s);
		s->be_rset_pending = false;
		return;
	}
	filters_run(s, FILTER_EOD, eod_filtered);
}

static void eoh_filtered(struct session *s, const struct filter_verdict *v)
{
	if (v->result != FILTER_CONTINUE)
		txn_fail(s, v->code, v->esc, v->text);
}

/* dbuf_add - content for the backend, unless the message is refused. */
static void dbuf_add(struct session *s, const char *data, size_t len)
{
	if (s->txn.failed_code)
		return;
	if (buf_append(&s->dbuf, data, len, data_limit(s)) < 0)
		txn_fail(s, 452, "4.3.1", "Error: insufficient system resources");
}

bool session_data_process(struct session *s)
{
	static char line_out[DATA_LINE_SEGMENT + 4];
	struct txn *t = &s->txn;
	const struct config *c = s->cfg;
	struct smtp_line line;
	size_t n, outlen;
	enum smtp_data_kind kind;
	char *out;

	n = smtp_line_next(&s->lr, s->in.data + s->inpos, s->in.len - s->inpos, DATA_LINE_SEGMENT, &line);
	if (n == 0)
		return false;
	s->inpos += n;
	/* the wire form goes to a scratch line first: a finished header field
	 * may have to go into dbuf before this line does */
	out = line_out;
	kind = smtp_data_line(&t->data, &line, (enum smtp_newline_policy)c->server.bare_newline, out, &outlen);
	switch (kind) {
	case SMTP_DATA_END:
		data_end(s);
		return true;
	case SMTP_DATA_BAD_NEWLINE:
		/* RFC 5321 2.3.8, CVE-2023-51764: a bare CR or LF makes the end
		 * of data ambiguous; refuse and hang up, like Postfix's
		 * smtpd_forbid_bare_newline = reject */
		log_info("%s: bare <CR> or <LF> in message content from [%s]:%u", s->sid, s->ip, s->port);
		txn_fail(s, 550, "5.5.2", "Error: bare <CR> or <LF> received");
		session_reply(s, 550, "5.5.2", "Error: bare <CR> or <LF> received (RFC 5321 section 2.3.8)");
		session_summary(s, "refused: bare CR or LF in content");
		session_close(s, "bare newline in content");
		return false;
	case SMTP_DATA_HEADER:
		field_finish(s);
		/* fall through */
	case SMTP_DATA_HEADER_CONT:
		if (!t->field_open && kind == SMTP_DATA_HEADER_CONT) {
			/* a continuation without a field: pass it on as is */
			dbuf_add(s, out, outlen);
			break;
		}
		t->field_open = true;
		if (t->field.len + outlen > SESSION_HEADER_MAX) {
			/* too long to inspect: pass on what we have, unfiltered */
			dbuf_add(s, t->field.data, t->field.len);
			t->field.len = 0;
			dbuf_add(s, out, outlen);
			break;
		}
		buf_append(&t->field, out, outlen, SESSION_HEADER_MAX);
		break;
	case SMTP_DATA_EOH:
	case SMTP_DATA_BODY:
		field_finish(s);
		dbuf_add(s, out, outlen);
		break;
	}
	if (!t->eoh_done && (kind == SMTP_DATA_EOH || kind == SMTP_DATA_BODY) && !t->failed_code) {
		t->eoh_done = true;
		filters_run(s, FILTER_EOH, eoh_filtered);
		if (s->wait != WAIT_NONE)
			return false;
	}
	if (t->failed_code) {
		s->dbuf.len = 0;
		return true;
	}
	if (t->data.bytes > c->limits.max_message_size) {
		log_info("%s: message from [%s]:%u exceeds max_message_size (%llu)", s->sid, s->ip, s->port,
		    (unsigned long long)c->limits.max_message_size);
		txn_fail(s, 552, "5.3.4", "Error: message size exceeds fixed maximum message size");
		return true;
	}
	if (s->dbuf.len >= c->limits.data_buffer) {
		int err = backend_data_send(s, &s->dbuf);
		if (err) {
			txn_fail(s, 451, "4.4.2", "Error: backend connection lost, try again later");
			return true;
		}
		if (backend_queued(s) > c->limits.data_buffer) {
			/* the backend is slower than the client: stop reading
			 * until it catches up (bounded memory per session) */
			s->wait = WAIT_DRAIN;
			return false;
		}
	}
	return true;
}

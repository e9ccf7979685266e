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
#include <strings.h>
#include <time.h>

#include "proxy/backend.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/worker.h"
#include "proxy/tls.h"
#include "filters/authres.h"
#include "smtp/smtp_wire.h"

#define DATA_LINE_SEGMENT 8192   /* longer lines pass in segments */
#define RECEIVED_MAX 4096        /* our Received field; its parts are capped */

static size_t data_limit(const struct session *s)
{
	/* unsent content, plus a whole header field that can join it at once */
	return (size_t)s->cfg->limits.data_buffer + DATA_LINE_SEGMENT + SESSION_HEADER_MAX +
	    16 * FILTER_HEADERS_MAX + RECEIVED_MAX + 4096;
}

static bool spool_pump(struct session *s);
static bool field_judge(void *ctx, const char *f, size_t len, bool cut);
static void dot_relayed(struct session *s, const struct smtp_reply *r, int err);

/* txn_fail - refuse the message at its end; stop sending it anywhere. */
static void txn_fail(struct session *s, int code, const char *esc, const char *text)
{
	if (s->txn.failed_code)
		return;
	s->txn.failed_code = code;
	snprintf(s->txn.rec->failed_esc, sizeof s->txn.rec->failed_esc, "%s", esc);
	snprintf(s->txn.rec->failed_text, sizeof s->txn.rec->failed_text, "%s", text);
	if (s->be)
		backend_abort(s->be);
	s->dbuf.len = 0;
}

/* wire_emit - where smtp_wire puts the backend's bytes: the content
 * buffer, flushed to the backend in large writes. Nothing else appends to
 * s->dbuf during DATA. A refused message is dropped here. */
static int wire_emit(void *ctx, const char *data, size_t len)
{
	struct session *s = ctx;

	if (s->txn.failed_code)
		return 0;
	if (s->txn.hold && !s->txn.spool_sending) {
		if (spool_write(&s->txn.spool, data, len) < 0)
			txn_fail(s, 452, "4.3.1", "Error: insufficient system resources (message spool)");
		return 0;
	}
	if (buf_append(&s->dbuf, data, len, data_limit(s)) < 0) {
		txn_fail(s, 452, "4.3.1", "Error: insufficient system resources");
		return 0;   /* the failure is the transaction's, not the writer's */
	}
	return 0;
}

/* received_header - our trace field (RFC 5321 4.4). Every part is capped
 * so that it always fits: a message never leaves without it. */
static int received_header(struct session *s)
{
	char date[64], helo[300], name[300], field[RECEIVED_MAX], tlsinfo[600] = "";
	time_t now = time(NULL);
	struct tm tm;
	const char *proto;
	bool tls = s->tls && tls_conn_handshake_done(s->tls);
	int n;

	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	/* the HELO and the reverse name are the client's text (the name is
	 * forward-confirmed, but a DNS label may hold any byte): printable,
	 * unfoldable and outside the comment syntax */
	log_escape(s->helo, strlen(s->helo), helo, sizeof helo);
	log_escape(s->client_name, strlen(s->client_name), name, sizeof name);
	for (char *p = helo; *p; p++)
		if (*p == '(' || *p == ')' || *p == ';')
			*p = '_';
	for (char *p = name; *p; p++)
		if (*p == '(' || *p == ')' || *p == ';' || *p == '[' || *p == ']')
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
	/* RFC 5321 4.4: from (HELO, reverse name, address), by, with, id, date */
	n = snprintf(field, sizeof field,
	    "Received: from %s (%s [%s%s])%s\r\n\tby %s (backstop) with %s id %s.%u;\r\n\t%s\r\n",
	    helo[0] ? helo : "unknown", name,
	    strchr(s->ip, ':') ? "IPv6:" : "", s->ip,   /* RFC 5321 4.1.3 address literal */
	    tlsinfo, s->cfg->server.hostname,
	    proto, s->sid, s->txn.number, date);
	if (n < 0 || (size_t)n >= sizeof field) {
		/* cannot happen with the caps above; never send without it */
		log_warn("%s: Received header does not fit (%d bytes)", s->sid, n);
		return -1;
	}
	return smtp_wire_lines(&s->txn.wire, field, (size_t)n);
}

/* authres_header - the message's one Authentication-Results field, from
 * the transaction's record, with our authserv-id (RFC 8601). */
static void authres_header(struct session *s, struct smtp_wire *w)
{
	char field[AUTHRES_MAX * (AUTHRES_PROPS_MAX + 160) + 512];
	int n;

	if (s->txn.rec->auth.n == 0)
		return;   /* no method ran (SPF off, a trusted client): no field */
	n = authres_format(&s->txn.rec->auth, s->cfg->server.hostname, field, sizeof field);
	if (n < 0) {
		log_warn("%s: Authentication-Results does not fit; left out", s->sid);
		return;
	}
	smtp_wire_lines(w, field, (size_t)n);
}

void session_data_start(struct session *s)
{
	struct txn *t = &s->txn;

	s->state = SMTP_STATE_DATA;
	t->data_started_ms = uv_now(s->tcp.loop);
	t->data_paused_ms = t->data_paused_since = 0;
	memset(&t->data, 0, sizeof t->data);
	t->failed_code = 0;
	s->dbuf.len = 0;
	smtp_line_reset(&s->lr);
	/* hold or stream: a check that adds its fields or decides only at
	 * the end needs the message held; otherwise it streams */
	t->hold = filters_hold(s);
	t->feed_body = filters_body_wanted(s);
	if (t->hold)
		spool_open(&t->spool, &s->worker->spool, s->cfg->spool.directory, (size_t)s->cfg->limits.data_buffer);
	smtp_wire_init(&t->wire, wire_emit, s);
	smtp_fields_init(&t->fields, SESSION_HEADER_MAX, &t->wire, field_judge, s);
	/* streaming: every authentication result is known now (SPF) */
	if (!t->hold)
		authres_header(s, &t->wire);
	/* RFC 7208 9.1: Received-SPF (and the other trace fields the filters
	 * add) go above the Received: field of this receiver */
	if (t->headers.len)
		smtp_wire_lines(&t->wire, t->headers.data, t->headers.len);
	if (received_header(s) != 0)
		txn_fail(s, 451, "4.3.0", "Error: internal error adding the trace header, try again later");
}

/* field_judge - is this header field kept? The Authentication-Results
 * owner (this file) removes every field that claims our authserv-id
 * (RFC 8601 5), then every check sees the field and may drop it. A field
 * over SESSION_HEADER_MAX is judged on its first SESSION_HEADER_MAX bytes
 * (cut: name and first line); the verdict covers all of it. */
static bool field_judge(void *ctx, const char *f, size_t len, bool cut)
{
	static const char ar[] = "Authentication-Results";
	struct session *s = ctx;
	size_t nlen = smtp_header_name_len(f, len);
	struct filter_header h;
	bool keep;

	/* the value starts after the colon, which may follow blanks
	 * (RFC 5322 4.5.3 obsolete syntax "Name : value") */
	const char *colon = nlen > 0 ? memchr(f + nlen, ':', len - nlen) : NULL;
	if (colon == NULL)
		return true;
	memset(&h, 0, sizeof h);
	h.name = f;
	h.name_len = nlen;
	h.value = colon + 1;
	h.value_len = len - (size_t)(h.value - f);
	h.field = f;
	h.field_len = len;
	if (h.value_len >= 2 && h.value[h.value_len - 2] == '\r' && h.value[h.value_len - 1] == '\n') {
		h.value_len -= 2;  /* final CRLF */
		h.field_len -= 2;
	}
	h.cut = cut;
	if (nlen == sizeof ar - 1 && strncasecmp(f, ar, nlen) == 0 &&
	    authres_is_ours(h.value, h.value_len, s->cfg->server.hostname)) {
		log_info("%s: removed forged Authentication-Results (%zu%s bytes, our authserv-id) "
		    "from [%s]:%u", s->sid, len, cut ? "+" : "", s->ip, s->port);
		return false;
	}
	if (nlen > 11 && strncasecmp(f, "X-Backstop-", 11) == 0) {
		/* our own fields (X-Backstop-DMARC: quarantine, X-Backstop-BATV)
		 * mean backstop wrote them: a client's copy is removed */
		log_info("%s: removed forged %.*s field from [%s]:%u", s->sid,
		    (int)(nlen < 60 ? nlen : 60), f, s->ip, s->port);
		return false;
	}
	keep = filters_header(s, &h);
	if (!keep) {
		char name[80];
		log_info("%s: removed header %s (%zu%s bytes) from [%s]:%u", s->sid,
		    log_escape(f, nlen < 60 ? nlen : 60, name, sizeof name), len,
		    cut ? "+" : "", s->ip, s->port);
	}
	return keep;
}

static void field_finish(struct session *s)
{
	smtp_fields_finish(&s->txn.fields);
	if (s->txn.fields.oom)
		txn_fail(s, 452, "4.3.1", "Error: insufficient system resources");
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
		s->txn.outcome = FILTER_TXN_ACCEPTED;
		s->junk_commands = 0;   /* as Postfix: reset once mail is delivered */
		metrics_relayed(s->metrics, s->txn.data.bytes);
		session_reply(s, 250, r->esc[0] ? r->esc : "2.0.0", "%s (backstop id %s.%u)", r->text,
		    s->sid, s->txn.number);
		snprintf(result, sizeof result, "accepted: backend said %d %s %s", r->code, r->esc, r->text);
	} else if (r->code / 100 == 4 || r->code / 100 == 5) {
		session_reply_smtp(s, r);
		snprintf(result, sizeof result, "refused by backend: %d %s %s", r->code, r->esc, r->text);
	} else {
		session_reply(s, 451, "4.3.0", "Error: unexpected reply from the backend, try again later");
		snprintf(result, sizeof result, "451 unexpected backend reply %d", r->code);
		backend_abort(s->be);
	}
	if (s->txn.outcome != FILTER_TXN_ACCEPTED)
		s->txn.outcome = FILTER_TXN_REFUSED;
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

/* head_emit - our fields on top of a held message: into the content
 * buffer, before the spool's bytes (the held content ends at a line end:
 * our Received field comes first in it). */
static int head_emit(void *ctx, const char *data, size_t len)
{
	struct session *s = ctx;
	return buf_append(&s->dbuf, data, len, data_limit(s)) < 0 ? -1 : 0;
}

#define SPOOL_CHUNK 65536

/* spool_pump - send the held message to the backend in large writes,
 * waiting for the backend to take each data_buffer's worth; then the
 * final dot. Returns false: the session waits (drain or the reply). */
static bool spool_pump(struct session *s)
{
	struct txn *t = &s->txn;
	uint64_t total = spool_size(&t->spool);

	while (t->spool_sent < total) {
		size_t want = total - t->spool_sent < SPOOL_CHUNK ? (size_t)(total - t->spool_sent) : SPOOL_CHUNK;
		long n;
		if (buf_reserve(&s->dbuf, want, data_limit(s) + SPOOL_CHUNK) < 0 ||
		    (n = spool_read(&t->spool, t->spool_sent, s->dbuf.data + s->dbuf.len, want)) <= 0) {
			log_warn("%s: reading the held message failed", s->sid);
			backend_abort(s->be);
			dot_relayed(s, NULL, BACKEND_ELOST);
			return false;
		}
		s->dbuf.len += (size_t)n;
		t->spool_sent += (uint64_t)n;
		if (s->dbuf.len >= s->cfg->limits.data_buffer) {
			if (backend_data_send(s->be, &s->dbuf) != 0) {
				dot_relayed(s, NULL, BACKEND_ELOST);
				return false;
			}
			if (backend_queued(s->be) > s->cfg->limits.data_buffer) {
				s->wait = WAIT_DRAIN;
				return false;
			}
		}
	}
	/* the content writer ends the data: it knows whether a line is open */
	if (smtp_wire_end(&t->wire) != 0) {
		backend_abort(s->be);
		dot_relayed(s, NULL, BACKEND_ELOST);
		return false;
	}
	spool_close(&t->spool);
	s->wait = WAIT_BACKEND;
	t->dot_at_backend = true;
	session_backend_data_end(s, &s->dbuf, dot_relayed);
	return false;
}

/* held_data_relayed - the backend's reply to DATA for a held message:
 * after 354 the checks' fields go on top, then the held message; a
 * refusal of DATA is the reply to the client's end of data. */
static void held_data_relayed(struct session *s, const struct smtp_reply *r, int err)
{
	struct smtp_wire head;

	if (err) {
		dot_relayed(s, NULL, err);
		return;
	}
	if (r->code != 354) {
		char what[80];
		if (r->code / 100 != 4 && r->code / 100 != 5) {
			/* a backend that "accepts" DATA without 354 is confused */
			backend_abort(s->be);
			dot_relayed(s, NULL, BACKEND_EPROTO);
			return;
		}
		s->txn.outcome = FILTER_TXN_REFUSED;
		session_reply_smtp(s, r);
		snprintf(what, sizeof what, "DATA (held message) by the backend");
		session_summary_refused(s, what);
		s->state = SMTP_STATE_READY;
		txn_reset(s);   /* the backend holds MAIL and RCPT: RSET next time */
		session_resume(s);
		return;
	}
	smtp_wire_init(&head, head_emit, s);
	authres_header(s, &head);
	if (s->txn.late_headers.len)
		smtp_wire_lines(&head, s->txn.late_headers.data, s->txn.late_headers.len);
	if (head.mid_line)
		smtp_wire_eol(&head);
	s->txn.spool_sending = true;
	s->txn.spool_sent = 0;
	s->wait = WAIT_NONE;
	if (head.error || s->txn.spool.error) {
		backend_abort(s->be);   /* it holds a 354: never reuse it */
		dot_relayed(s, NULL, BACKEND_ELOST);
		return;
	}
	spool_pump(s);
	session_process(s);   /* WAIT_DRAIN or WAIT_BACKEND: nothing is read */
}

static void eod_filtered(struct session *s, const struct filter_verdict *v)
{
	if (v->result != FILTER_CONTINUE) {
		txn_fail(s, v->code, v->esc, v->text);
		session_reply_verdict(s, v);
		session_summary_refused(s, "end of data");
		s->state = SMTP_STATE_READY;
		txn_reset(s);
		s->be_rset_pending = false;
		return;
	}
	if (s->txn.hold) {
		/* the backend gets DATA now, then the whole message */
		s->wait = WAIT_BACKEND;
		session_backend_command(s, "DATA", held_data_relayed);
		return;
	}
	if (smtp_wire_end(&s->txn.wire) != 0 || s->txn.failed_code) {
		/* no room for the final dot: the backend never sees an end */
		txn_fail(s, 451, "4.3.0", "Error: internal error, try again later");
		session_reply(s, 451, "4.3.0", "Error: internal error at end of data, try again later");
		session_summary_refused(s, "end of data");
		s->state = SMTP_STATE_READY;
		txn_reset(s);
		s->be_rset_pending = false;
		return;
	}
	s->wait = WAIT_BACKEND;
	s->txn.dot_at_backend = true;
	session_backend_data_end(s, &s->dbuf, dot_relayed);
}

static void body_flush(struct session *s)
{
	struct buf *b = &s->txn.body_chunk;
	if (b->len > 0 && !s->txn.failed_code)
		filters_body(s, b->data, b->len);
	b->len = 0;
}

static void eod_checks(struct session *s)
{
	if (s->txn.failed_code) {
		s->reply_check = s->txn.failed_check;
		session_reply(s, s->txn.failed_code, s->txn.rec->failed_esc, "%s", s->txn.rec->failed_text);
		session_summary_refused(s, "end of data");
		s->state = SMTP_STATE_READY;
		txn_reset(s);
		s->be_rset_pending = false;
		return;
	}
	filters_run(s, FILTER_EOD, eod_filtered);
}

static void eoh_filtered(struct session *s, const struct filter_verdict *v)
{
	if (v->result != FILTER_CONTINUE && !s->txn.failed_code) {
		s->txn.failed_check = metrics_check_of_filter(v->filter);
		txn_fail(s, v->code, v->esc, v->text);
	}
}

/* eoh_then_eod - a message that ended inside its header section still
 * has an end of header for the checks, then its end of data. */
static void eoh_then_eod(struct session *s, const struct filter_verdict *v)
{
	eoh_filtered(s, v);
	eod_checks(s);
}

static void data_end(struct session *s)
{
	s->txn.eod_started_ms = uv_now(s->worker->loop);
	s->txn.eod_pending = true;
	field_finish(s);
	body_flush(s);
	if (!s->txn.eoh_done && !s->txn.failed_code) {
		s->txn.eoh_done = true;
		filters_run(s, FILTER_EOH, eoh_then_eod);
		return;
	}
	eod_checks(s);
}

#define BODY_CHUNK 16384

/* body_add - body content for the checks' body hooks, un-dot-stuffed with
 * CRLF line ends, handed over in chunks of BODY_CHUNK. */
static void body_add(struct session *s, const char *data, size_t len, bool eol)
{
	struct buf *b = &s->txn.body_chunk;

	if (s->txn.failed_code)
		return;
	if (b->len + len + 2 > BODY_CHUNK)
		body_flush(s);
	if (len + 2 > BODY_CHUNK) {
		filters_body(s, data, len);   /* a long segment goes as it is */
		if (eol)
			filters_body(s, "\r\n", 2);
		return;
	}
	if (buf_append(b, data, len, BODY_CHUNK) < 0 ||
	    (eol && buf_append(b, "\r\n", 2, BODY_CHUNK) < 0))
		txn_fail(s, 452, "4.3.1", "Error: insufficient system resources");
}

bool session_data_process(struct session *s)
{
	char content[DATA_LINE_SEGMENT];
	struct txn *t = &s->txn;
	const struct config *c = s->cfg;
	struct smtp_line line;
	size_t n, len;
	bool eol, starts_line;
	enum smtp_data_kind kind;

	if (t->spool_sending)
		return spool_pump(s);   /* resumed after the backend drained */
	n = smtp_line_next(&s->lr, s->in.data + s->inpos, s->in.len - s->inpos, DATA_LINE_SEGMENT, &line);
	if (n == 0)
		return false;
	s->inpos += n;
	starts_line = !(line.flags & SMTP_LINE_CONTINUED);
	kind = smtp_data_line(&t->data, &line, (enum smtp_newline_policy)c->server.bare_newline,
	    content, &len, &eol);
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
		session_summary_refused(s, "DATA content");
		session_close(s, "bare newline in content");
		return false;
	case SMTP_DATA_HEADER:
		if (starts_line)   /* a new field: the previous one is complete */
			smtp_fields_start(&t->fields);
		smtp_fields_add(&t->fields, content, len, eol);
		if (t->fields.oom)
			txn_fail(s, 452, "4.3.1", "Error: insufficient system resources");
		break;
	case SMTP_DATA_HEADER_CONT:
		if (smtp_fields_add(&t->fields, content, len, eol))
			break;
		/* not reached (a continuation always follows a field); written
		 * as content all the same */
		/* fall through */
	case SMTP_DATA_EOH:
	case SMTP_DATA_BODY:
		field_finish(s);
		if (kind == SMTP_DATA_BODY && starts_line && !t->eoh_done && len > 0 &&
		    (content[0] == ' ' || content[0] == '\t')) {
			/* the first line starts with a blank: the backend would
			 * fold it into our Received field and take the next lines
			 * for fields (a forged Authentication-Results); end our
			 * header section first, as Postfix's smtpd does */
			smtp_wire_eol(&t->wire);
		}
		smtp_wire_text(&t->wire, content, len);
		if (eol)
			smtp_wire_eol(&t->wire);
		if (kind == SMTP_DATA_BODY && t->feed_body)
			body_add(s, content, len, eol);
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
		int err = backend_data_send(s->be, &s->dbuf);
		if (err) {
			txn_fail(s, 451, "4.4.2", "Error: backend connection lost, try again later");
			return true;
		}
		if (backend_queued(s->be) > c->limits.data_buffer) {
			/* the backend is slower than the client: stop reading
			 * until it catches up (bounded memory per session) */
			s->wait = WAIT_DRAIN;
			return false;
		}
	}
	return true;
}

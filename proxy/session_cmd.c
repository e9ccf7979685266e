/*
 * session_cmd - the SMTP commands: check -> filters -> relay -> reply
 * (OpenSMTPD's check/filter/proceed). Sequencing rules come from
 * smtp/smtp_server.c, parsing from smtp/, every reply goes through
 * session_reply().
 *
 * A command that waits (filter verdict, backend reply) sets s->wait; its
 * continuation replies and calls session_resume(), which carries on with
 * the commands the client pipelined meanwhile.
 */
#include <limits.h>
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

#define MAX_ESMTP_PARAMS SMTP_PARAMS_MAX

/* ---- transaction state ---- */

void txn_free(struct session *s)
{
	struct txn *t = &s->txn;
	for (size_t i = 0; i < t->nrcpts; i++) {
		free(t->rcpts[i].orig);
		free(t->rcpts[i].relayed);
	}
	free(t->rcpts);
	free(t->rcpt_view);
	free(t->rcpt_orig_view);
	buf_free(&t->headers);
	smtp_fields_free(&t->fields);
	buf_free(&t->late_headers);
	buf_free(&t->body_chunk);
	spool_close(&t->spool);
	free(t->rec);
	t->rec = NULL;
	t->rcpts = NULL;
	t->rcpt_view = t->rcpt_orig_view = NULL;
	t->nrcpts = 0;
}

/* txn_reset - forget the transaction. The backend is told lazily (RSET
 * before its next MAIL), which saves a round trip per RSET. */
void txn_reset(struct session *s)
{
	unsigned number = s->txn.number;
	/* every transaction gets its one summary line, however it ends */
	if (s->txn.active)
		session_summary(s, "ended without a message");
	filters_txn_end(s);
	/* a held message's keepalive ends with its transaction: between
	 * transactions [backend] idle_timeout decides */
	backend_keepalive(s->be, 0);
	if (s->txn.mail_relayed)
		s->be_rset_pending = true;
	txn_free(s);
	memset(&s->txn, 0, sizeof s->txn);
	s->txn.number = number;
	/* content left over (a refused message): freed, not kept for the
	 * next transaction, which may never come */
	buf_free(&s->dbuf);
	if (s->state != SMTP_STATE_CONNECTED)
		s->state = SMTP_STATE_READY;
	backend_idle(s->be);
}

static int txn_add_rcpt(struct session *s, const char *orig, const char *relayed)
{
	struct txn *t = &s->txn;
	struct txn_rcpt *nr = realloc(t->rcpts, (t->nrcpts + 1) * sizeof *nr);
	const char **v1, **v2;
	if (nr == NULL)
		return -1;
	t->rcpts = nr;
	v1 = realloc(t->rcpt_view, (t->nrcpts + 2) * sizeof *v1);
	if (v1 == NULL)
		return -1;
	t->rcpt_view = v1;
	v2 = realloc(t->rcpt_orig_view, (t->nrcpts + 2) * sizeof *v2);
	if (v2 == NULL)
		return -1;
	t->rcpt_orig_view = v2;
	nr[t->nrcpts].orig = strdup(orig);
	nr[t->nrcpts].relayed = strdup(relayed);
	if (!nr[t->nrcpts].orig || !nr[t->nrcpts].relayed)
		return -1;
	t->nrcpts++;
	for (size_t i = 0; i < t->nrcpts; i++) {
		v1[i] = nr[i].relayed;
		v2[i] = nr[i].orig;
	}
	v1[t->nrcpts] = v2[t->nrcpts] = NULL;
	return 0;
}


/* ---- logging ---- */

void txn_refusal(struct session *s, const char *what)
{
	char *r;
	size_t used, cap = sizeof s->txn.rec->refusals;
	int n;

	if (s->txn.rec == NULL)
		return;   /* no transaction: no summary line to carry it */
	r = s->txn.rec->refusals;
	used = strlen(r);
	if (used + 4 >= cap)
		return;   /* full: the "..." below already says so */
	n = snprintf(r + used, cap - used, "%s%s: %s", used ? "; " : "", what, s->last_refusal);
	if (n < 0 || (size_t)n >= cap - used)
		memcpy(r + cap - 4, "...", 4);
}

void session_summary_refused(struct session *s, const char *stage)
{
	char result[SESSION_REPLY_LOG_MAX + 64];
	snprintf(result, sizeof result, "refused at %s: %s", stage, s->last_refusal);
	s->txn.outcome = FILTER_TXN_REFUSED;
	session_summary(s, result);
}

/* reply_parse - "550 5.7.1 text" (session_reply's last_refusal, or the
 * backend's reply in an "accepted" result) into its parts. */
static bool reply_parse(const char *line, unsigned *code, char *esc, size_t esccap, const char **text)
{
	size_t n = 0;

	if (strspn(line, "0123456789") != 3 || (line[3] != ' ' && line[3] != '\0'))
		return false;
	*code = (unsigned)strtoul(line, NULL, 10);
	line += 3;
	line += strspn(line, " ");
	esc[0] = '\0';
	/* enhanced code: class.subject.detail (RFC 3463) */
	if ((line[0] == '2' || line[0] == '4' || line[0] == '5') && line[1] == '.') {
		n = 2 + strspn(line + 2, "0123456789");
		if (line[n] == '.' && n > 2) {
			size_t d = strspn(line + n + 1, "0123456789");
			if (d > 0 && (line[n + 1 + d] == ' ' || line[n + 1 + d] == '\0') && n + 1 + d < esccap) {
				n += 1 + d;
				memcpy(esc, line, n);
				esc[n] = '\0';
				line += n;
				line += strspn(line, " ");
			}
		}
	}
	*text = line;
	return true;
}

/* queue_id - the backend's queue id in its 2xx text: Postfix "queued as
 * ID", Exim and others "id=ID". */
static bool queue_id(const char *text, char *id, size_t cap)
{
	const char *p = strstr(text, "queued as ");
	size_t n;

	if (p)
		p += 10;
	else if ((p = strstr(text, "id=")) != NULL)
		p += 3;
	else
		return false;
	n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._");
	if (n == 0 || n >= cap)
		return false;
	memcpy(id, p, n);
	id[n] = '\0';
	return true;
}

/* summary_result - how the transaction ended, for JSON: "result"
 * (accepted, refused, ended), the reply the client got for it, the
 * backend's queue id. The text form has the words in result_text. */
static void summary_result(struct log_rec *r, const struct session *s, const char *result)
{
	static const char accepted[] = "accepted: backend said ";
	const char *kind = "ended", *line = NULL, *text = NULL;
	char esc[16], id[128];
	unsigned code = 0;

	if (s->txn.outcome == FILTER_TXN_ACCEPTED && strncmp(result, accepted, sizeof accepted - 1) == 0) {
		kind = "accepted";
		line = result + sizeof accepted - 1;
	} else if (s->txn.outcome == FILTER_TXN_REFUSED) {
		kind = "refused";
		line = s->last_refusal;
	}
	log_rec_str(r, NULL, "result", kind, 0, NULL);
	if (line && reply_parse(line, &code, esc, sizeof esc, &text)) {
		log_rec_uint(r, NULL, "reply_code", code, NULL);
		log_rec_str(r, NULL, "reply_enhanced", esc[0] ? esc : NULL, 0, NULL);
		log_rec_str(r, NULL, "reply_text", text, 0, NULL);
	} else {
		log_rec_null(r, "reply_code");
		log_rec_null(r, "reply_enhanced");
		log_rec_null(r, "reply_text");
	}
	log_rec_str(r, NULL, "queue_id",
	    strcmp(kind, "accepted") == 0 && queue_id(text ? text : "", id, sizeof id) ? id : NULL, 0, NULL);
}

/* session_summary - the one builder of the summary line: each call below
 * writes a field in both forms (log_rec, proxy/log_json.h), so the text
 * line and the JSON object cannot drift apart. The text form is the line
 * operators grep: "txn ID from [ip]:port helo=<..> from=<..> to=<..>
 * checks=[..] size=N duration=Nms result: ..." (README.md "Logging"). */
void session_summary(struct session *s, const char *result)
{
	char text[LOG_REC_TEXT_MAX], json[LOG_REC_JSON_MAX], txn_id[48];
	uint64_t ms = s->txn.started_ms ? uv_now(s->worker->loop) - s->txn.started_ms : 0;
	/* without a record (between transactions) the line says what a
	 * transaction that recorded nothing would */
	const struct txn_record *rec = s->txn.rec;
	struct log_rec r;
	size_t to_start;

	if (s->txn.summarized)
		return;
	s->txn.summarized = true;
	s->metrics->transactions++;
	/* the line is logged at info: below that, building it (some 2 kB of
	 * formatting per transaction) would be thrown away */
	if (log_get_level() < LOG_LEVEL_INFO)
		return;

	log_rec_init(&r, text, sizeof text, log_json_wanted() ? json : NULL, sizeof json);
	snprintf(txn_id, sizeof txn_id, "%s.%u", s->sid, s->txn.number);
	log_rec_str(&r, "txn ", "txn", txn_id, LOG_REC_VERBATIM, "");
	log_rec_str(&r, " from [", "client_ip", s->ip, LOG_REC_VERBATIM, "]");
	log_rec_uint(&r, ":", "client_port", s->port, "");
	log_rec_str(&r, NULL, "client_name", s->client_name[0] ? s->client_name : NULL, 0, NULL);
	log_rec_str(&r, " helo=<", "helo", s->helo, 300, ">");
	if (s->tls && tls_conn_handshake_done(s->tls)) {
		/* the peer chose its subject: escaped (RFC 2253 form, then log_escape) */
		char subject[256];
		log_rec_str(&r, " tls=", "tls_version", tls_conn_version(s->tls), LOG_REC_VERBATIM, "/");
		log_rec_str(&r, "", "tls_cipher", tls_conn_cipher(s->tls), LOG_REC_VERBATIM, "");
		if (tls_conn_peer_subject(s->tls, subject, sizeof subject) > 0)
			log_rec_str(&r, " tls_subject=<", "tls_subject", subject, 300, ">");
		else
			log_rec_null(&r, "tls_subject");
	} else {
		log_rec_null(&r, "tls_version");
		log_rec_null(&r, "tls_cipher");
		log_rec_null(&r, "tls_subject");
	}
	log_rec_str(&r, " from=<", "sender", rec ? rec->from.addr : "", 300, ">");
	/* recipients: the text form holds what fits in 1200 bytes, the JSON
	 * array all that fit in the record but the room kept for the members
	 * after it (the result); recipients_count says how many */
	log_rec_text(&r, " to=");
	to_start = r.text_len;
	log_rec_reserve(&r, LOG_REC_JSON_MAX / 4);
	log_rec_array_begin(&r, "recipients");
	for (size_t i = 0; i < s->txn.nrcpts; i++) {
		if (r.text_len - to_start + 8 < 1200)
			log_rec_str(&r, i ? ",<" : "<", NULL, s->txn.rcpts[i].orig, 300, ">");
		else
			log_rec_str(&r, NULL, NULL, s->txn.rcpts[i].orig, 0, NULL);
	}
	log_rec_end(&r);
	log_rec_reserve(&r, 0);
	if (s->txn.nrcpts == 0)
		log_rec_text(&r, "none");
	log_rec_uint(&r, NULL, "recipients_count", s->txn.nrcpts, NULL);
	log_rec_checks(&r, " checks=[", "checks", rec ? rec->notes : "", "]");
	if (rec && rec->refusals[0])
		log_rec_str(&r, " refused=[", "refused", rec->refusals, LOG_REC_VERBATIM, "]");
	else
		log_rec_null(&r, "refused");
	log_rec_uint(&r, " size=", "size", (unsigned long long)s->txn.data.bytes, "");
	log_rec_uint(&r, " duration=", "duration_ms", (unsigned long long)ms, "ms");
	log_rec_str(&r, " result: ", "result_text", result, LOG_REC_VERBATIM, "");
	if (r.json)
		summary_result(&r, s, result);
	log_record(LOG_LEVEL_INFO, "summary", s->sid, &r);
}

/* ---- backend helpers ---- */

static int backend_fail_code(int err)
{
	return err == BACKEND_ETIMEOUT ? 2 : err == BACKEND_ECONNECT ? 1 : 0;
}

/* Backend trouble during a transaction: the client is asked to come back
 * (4xx), never told yes. */
static void backend_trouble(struct session *s, int err, bool fatal)
{
	log_warn("%s: backend %s during %s for [%s]:%u", s->sid, backend_err_text(err),
	    smtp_state_name(s->state), s->ip, s->port);
	if (err == BACKEND_EBUSY) {
		/* RFC 3463 X.3.2: the system cannot take mail now; the
		 * client comes back later, and its connection is freed */
		s->reply_check = METRICS_CHECK_LIMITS;
		session_reply(s, 421, "4.3.2", "%s Error: too many connections to the backend, "
		    "try again later", s->cfg->server.hostname);
		session_close(s, "backend max_connections");
		return;
	}
	if (fatal) {
		session_summary(s, "backend failure");
		session_reply(s, 421, "4.4.2", "%s Error: backend %s, try again later",
		    s->cfg->server.hostname, backend_err_text(err));
		session_close(s, "backend failure");
		return;
	}
	if (err == BACKEND_EIDENTITY) {
		/* [backend] identity cannot be honoured (the backend lacks
		 * XCLIENT/XFORWARD, or no PROXY header or transparent socket):
		 * a local configuration error (RFC 3463 X.3.0), never a relay
		 * as backstop's own address */
		session_reply(s, 451, "4.3.0", "Error: backend %s, try again later", backend_err_text(err));
		return;
	}
	session_reply(s, 451, backend_fail_code(err) == 1 ? "4.4.1" : "4.4.2",
	    "Error: backend %s, try again later", backend_err_text(err));
}

/* relay_reply - pass a backend reply on; a reply of a class the command
 * cannot have (e.g. 354 to MAIL) becomes a generic 451 (Postfix
 * smtpd_proxy). Returns the class (2, 4, 5) or 0 for a replaced reply. */
static int relay_reply(struct session *s, const struct smtp_reply *r, bool allow3)
{
	int cls = r->code / 100;
	if (r->code == 421) {
		/* the backend hung up on this session (e.g. its error limit):
		 * the client is told to come back, and the session ends */
		log_warn("%s: backend closed the session: %d %s", s->sid, r->code, r->text);
		if (s->txn.active)
			session_summary(s, "backend closed the session");
		session_reply(s, 421, "4.4.2", "%s Error: backend closed the connection, try again later",
		    s->cfg->server.hostname);
		session_close(s, "backend 421");
		return 0;
	}
	if (cls == 2 || cls == 4 || cls == 5 || (allow3 && cls == 3)) {
		session_reply_smtp(s, r);
		return cls;
	}
	log_warn("%s: backend gave an unexpected reply %d: %s", s->sid, r->code, r->text);
	session_reply(s, 451, "4.3.0", "Error: unexpected reply from the backend, try again later");
	return 0;
}

/* ---- HELO / EHLO ---- */

static void helo_filtered(struct session *s, const struct filter_verdict *v)
{
	const struct config *c = s->cfg;

	if (v->result != FILTER_CONTINUE) {
		s->helo[0] = '\0';
		session_reply_verdict(s, v);
		return;
	}
	if (s->state == SMTP_STATE_CONNECTED)
		s->state = SMTP_STATE_READY;
	if (!s->esmtp) {
		session_reply(s, 250, "", "%s", c->server.hostname);
		return;
	}
	char text[1024];
	const struct backend_caps *caps = backend_known_caps(s->backend_known, s->outbound);
	int n = snprintf(text, sizeof text, "%s\nPIPELINING\nSIZE %llu\n8BITMIME\nENHANCEDSTATUSCODES",
	    c->server.hostname, (unsigned long long)c->limits.max_message_size);
	if (s->tls_server && !s->tls)
		n += snprintf(text + n, sizeof text - (size_t)n, "\nSTARTTLS");
	if (caps && caps->dsn)
		n += snprintf(text + n, sizeof text - (size_t)n, "\nDSN");
	if (caps && caps->smtputf8)
		snprintf(text + n, sizeof text - (size_t)n, "\nSMTPUTF8");
	/* the EHLO reply lines carry no enhanced codes (RFC 2034 is about
	 * status replies; keywords must stay parseable) */
	session_reply(s, 250, "", "%s", text);
}

static void cmd_helo(struct session *s, const struct smtp_cmd *cmd, bool esmtp)
{
	for (size_t i = 0; i < cmd->arg_len; i++) {
		if (cmd->arg[i] == ' ') {
			session_reply(s, 501, "5.5.4", "Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
			return;
		}
	}
	if (s->txn.active)
		txn_reset(s);
	if (s->state != SMTP_STATE_CONNECTED)
		s->state = SMTP_STATE_READY;
	snprintf(s->helo, sizeof s->helo, "%.*s", (int)(cmd->arg_len < 255 ? cmd->arg_len : 255), cmd->arg);
	s->esmtp = esmtp;
	filters_run(s, FILTER_HELO, helo_filtered);
}

void session_banner(struct session *s)
{
	s->greeted = true;
	session_reply(s, 220, "", "%s %s", s->cfg->server.hostname, s->cfg->server.banner);
}

/* ---- MAIL ---- */

static void mail_relay(struct session *s, void (*then)(struct session *, const struct smtp_reply *, int));
static void rcpt_relay(struct session *s);

/* mail_params - check the client's MAIL parameters and build the ones
 * passed to the backend. Returns 0, or replies and returns -1. */
static int mail_params(struct session *s, const struct smtp_param *p, size_t np)
{
	const struct backend_caps *caps = backend_known_caps(s->backend_known, s->outbound);
	char *out = s->txn.rec->mail_params;
	size_t used = 0, cap = sizeof s->txn.rec->mail_params;
	bool seen_size = false, seen_body = false, seen_utf8 = false, seen_ret = false, seen_envid = false;

	out[0] = '\0';
	for (size_t i = 0; i < np; i++) {
		bool *seen = NULL, pass = true;
		if (smtp_param_is(&p[i], "SIZE")) {
			unsigned long long v = 0;
			seen = &seen_size;
			if (p[i].value == NULL || p[i].value_len == 0 || p[i].value_len > 20) {
				session_reply(s, 501, "5.5.4", "Error: bad SIZE parameter");
				return -1;
			}
			for (size_t j = 0; j < p[i].value_len; j++) {
				if (p[i].value[j] < '0' || p[i].value[j] > '9') {
					session_reply(s, 501, "5.5.4", "Error: bad SIZE parameter");
					return -1;
				}
				/* saturate: a 20-digit value must not wrap to a small one */
				unsigned digit = (unsigned)(p[i].value[j] - '0');
				v = v > (ULLONG_MAX - digit) / 10 ? ULLONG_MAX : v * 10 + digit;
			}
			/* RFC 1870 6.1: refuse at MAIL what will not fit */
			if (v > s->cfg->limits.max_message_size) {
				session_reply(s, 552, "5.3.4", "Error: message size exceeds fixed maximum message size");
				return -1;
			}
			s->txn.declared_size = v;
		} else if (smtp_param_is(&p[i], "BODY")) {
			seen = &seen_body;
			if (!p[i].value || (!(p[i].value_len == 4 && !strncasecmp(p[i].value, "7BIT", 4)) &&
			    !(p[i].value_len == 8 && !strncasecmp(p[i].value, "8BITMIME", 8)))) {
				session_reply(s, 501, "5.5.4", "Error: BODY must be 7BIT or 8BITMIME");
				return -1;
			}
		} else if (smtp_param_is(&p[i], "SMTPUTF8")) {
			seen = &seen_utf8;
			if (!caps || !caps->smtputf8) {
				session_reply(s, 555, "5.5.4", "Error: SMTPUTF8 is not supported");
				return -1;
			}
		} else if (smtp_param_is(&p[i], "RET") || smtp_param_is(&p[i], "ENVID")) {
			seen = smtp_param_is(&p[i], "RET") ? &seen_ret : &seen_envid;
			if (!caps || !caps->dsn) {
				session_reply(s, 555, "5.5.4", "Error: DSN is not supported");
				return -1;
			}
		} else if (smtp_param_is(&p[i], "AUTH")) {
			pass = false;   /* we offer no AUTH; RFC 4954 5: ignore it */
		} else {
			session_reply(s, 555, "5.5.4", "Error: unsupported parameter %.*s",
			    (int)(p[i].key_len > 40 ? 40 : p[i].key_len), p[i].key);
			return -1;
		}
		if (seen && *seen) {
			session_reply(s, 501, "5.5.4", "Error: duplicate parameter %.*s", (int)p[i].key_len, p[i].key);
			return -1;
		}
		if (seen)
			*seen = true;
		if (pass) {
			int n = snprintf(out + used, cap - used, " %.*s%s%.*s", (int)p[i].key_len, p[i].key,
			    p[i].value ? "=" : "", p[i].value ? (int)p[i].value_len : 0, p[i].value ? p[i].value : "");
			if (n < 0 || (size_t)n >= cap - used) {
				session_reply(s, 501, "5.5.4", "Error: parameters too long");
				return -1;
			}
			used += (size_t)n;
		}
	}
	if (s->txn.rec->from.has_8bit && !seen_utf8) {
		session_reply(s, 553, "5.6.7", "Error: non-ASCII address without SMTPUTF8");
		return -1;
	}
	return 0;
}

static void mail_refused(struct session *s, const struct smtp_cmd *cmd);
static void rcpt_refused(struct session *s, const struct smtp_cmd *cmd);

static void mail_relayed(struct session *s, const struct smtp_reply *r, int err)
{
	if (err) {
		backend_trouble(s, err, false);
		session_summary(s, "backend failure at MAIL");
		txn_reset(s);
		session_resume(s);
		return;
	}
	if (relay_reply(s, r, false) == 2) {
		s->txn.active = true;
		s->txn.mail_relayed = true;
		s->state = SMTP_STATE_MAIL;
	} else if (!s->closing) {
		/* the backend never started this transaction: nothing to RSET */
		s->txn.mail_relayed = false;
		mail_refused(s, NULL);
	}
	session_resume(s);
}

static void mail_filtered(struct session *s, const struct filter_verdict *v)
{
	if (v->result != FILTER_CONTINUE) {
		session_reply_verdict(s, v);
		mail_refused(s, NULL);
		return;
	}
	if (s->rewrite[0])
		snprintf(s->txn.rec->from_relayed, sizeof s->txn.rec->from_relayed, "%s", s->rewrite);
	mail_relay(s, mail_relayed);
}

/* mail_refused - the one summary line of a MAIL refused before any
 * transaction began: the sender as the client wrote it, and the reply. */
static void mail_refused(struct session *s, const struct smtp_cmd *cmd)
{
	if (cmd != NULL && s->txn.rec && !s->txn.rec->from.addr[0] && !s->txn.rec->from.is_null) {
		char raw[SMTP_ADDR_MAX + 1];
		log_escape(cmd->arg, cmd->arg_len, raw, sizeof raw);
		snprintf(s->txn.rec->from.addr, sizeof s->txn.rec->from.addr, "%s", raw);
	}
	session_summary_refused(s, "MAIL");
	txn_reset(s);
}

static void cmd_mail(struct session *s, const struct smtp_cmd *cmd)
{
	struct smtp_param params[MAX_ESMTP_PARAMS];
	size_t np = MAX_ESMTP_PARAMS;
	enum smtp_path_status st;

	if (server_draining(s->worker)) {
		session_reply(s, 421, "4.3.2", "%s Service shutting down, try again later", s->cfg->server.hostname);
		session_close(s, "shutdown");
		return;
	}
	txn_reset(s);
	/* the transaction's record, from here to its end (txn_free) */
	if ((s->txn.rec = calloc(1, sizeof *s->txn.rec)) == NULL) {
		log_warn("%s: out of memory for a transaction of [%s]:%u", s->sid, s->ip, s->port);
		session_reply(s, 452, "4.3.1", "Error: insufficient system resources");
		mail_refused(s, NULL);
		return;
	}
	/* every MAIL gets its own transaction number, a refused one too: its
	 * summary line must not share the previous transaction's id */
	s->txn.number = ++s->txn_count;
	s->txn.started_ms = uv_now(s->worker->loop);
	st = smtp_path_parse(cmd->arg, cmd->arg_len, SMTP_PATH_ALLOW_NULL | SMTP_PATH_ALLOW_UTF8,
	    &s->txn.rec->from, params, &np);
	switch (st) {
	case SMTP_PATH_OK:
		break;
	case SMTP_PATH_BAD_PARAM:
	case SMTP_PATH_TOO_MANY_PARAMS:
		session_reply(s, 501, "5.5.4", "Error: bad parameters");
		mail_refused(s, cmd);
		return;
	case SMTP_PATH_8BIT:
		session_reply(s, 553, "5.6.7", "Error: non-ASCII address without SMTPUTF8");
		mail_refused(s, cmd);
		return;
	default:
		session_reply(s, 501, "5.1.7", "Error: bad sender address syntax");
		mail_refused(s, cmd);
		return;
	}
	if (mail_params(s, params, np) < 0) {
		mail_refused(s, cmd);
		return;
	}
	if (s->outbound) {
		/* the outbound listener decides how to sign the sender by the
		 * first recipient: MAIL goes to the next hop with it */
		s->txn.active = true;
		s->state = SMTP_STATE_MAIL;
		session_reply(s, 250, "2.1.0", "Ok");
		return;
	}
	filters_run(s, FILTER_MAIL, mail_filtered);
}

/* ---- getting the backend ready for a transaction ---- */

static void mail_send(struct session *s);

static void prepare_step(struct session *s, const struct smtp_reply *r, int err)
{
	if (err) {
		s->wait = WAIT_NONE;
		s->txn.mail_relayed = false;
		s->mail_then(s, NULL, err);
		return;
	}
	if (r != NULL && r->code / 100 != 2) {
		/* RSET or XFORWARD refused: never go on as backstop's own address
		 * or inside a transaction the backend still holds */
		log_warn("%s: backend refused %s: %d %s", s->sid, s->xforward_sent ? "XFORWARD" : "RSET",
		    r->code, r->text);
		s->wait = WAIT_NONE;
		s->xforward_sent = false;
		backend_abort(s->be);
		s->mail_then(s, NULL, BACKEND_EPROTO);
		return;
	}
	mail_send(s);
}

static void mail_send(struct session *s)
{
	char line[1024];
	const char *from = s->txn.rec->from_relayed[0] ? s->txn.rec->from_relayed : s->txn.rec->from.addr;

	if (!backend_ready(s->be) && s->rdns == RDNS_PENDING) {
		/* XCLIENT NAME needs the client's name */
		s->wait = WAIT_RDNS;
		session_timer_arm(s);
		return;
	}
	if (!backend_ready(s->be)) {
		int rc;
		s->wait = WAIT_BACKEND;
		if ((rc = session_backend_open(s, prepare_step)) != 0)
			s->mail_then(s, NULL, rc);
		return;
	}
	if (s->be_rset_pending) {
		s->be_rset_pending = false;
		s->wait = WAIT_BACKEND;
		session_backend_command(s, "RSET", prepare_step);
		return;
	}
	if (backend_wants_xforward(s->be) && !s->xforward_sent) {
		/* XFORWARD attributes last one transaction: send before each MAIL */
		char helo[600], xf[1024];
		s->xforward_sent = true;
		backend_helo_attr(s->helo, helo, sizeof helo);
		snprintf(xf, sizeof xf, "XFORWARD NAME=%s ADDR=%s%s PORT=%u PROTO=%s HELO=%s SOURCE=REMOTE",
		    strcmp(s->client_name, "unknown") ? s->client_name :
		    s->rdns_temporary ? "[TEMPUNAVAIL]" : "[UNAVAILABLE]",
		    strchr(s->ip, ':') ? "IPV6:" : "", s->ip, s->port, s->esmtp ? "ESMTP" : "SMTP", helo);
		s->wait = WAIT_BACKEND;
		session_backend_command(s, xf, prepare_step);
		return;
	}
	s->xforward_sent = false;
	snprintf(line, sizeof line, "MAIL FROM:<%s>%s", from, s->txn.rec->mail_params);
	s->wait = WAIT_BACKEND;
	session_backend_command(s, line, s->mail_then);
}

static void mail_relay(struct session *s, void (*then)(struct session *, const struct smtp_reply *, int))
{
	s->mail_then = then;
	mail_send(s);
}

void session_rdns_done(struct session *s)
{
	if (s->wait == WAIT_RDNS) {
		s->wait = WAIT_NONE;
		mail_send(s);
		session_process(s);
	}
}

/* ---- RCPT ---- */

static void rcpt_relayed(struct session *s, const struct smtp_reply *r, int err)
{
	if (err) {
		backend_trouble(s, err, true);
		return;
	}
	if (relay_reply(s, r, false) == 2) {
		const char *relayed = s->rewrite[0] ? s->rewrite : s->txn.rec->rcpt.addr;
		if (txn_add_rcpt(s, s->txn.rec->rcpt.addr, relayed) < 0) {
			/* the backend holds a recipient we cannot account for:
			 * end everything, the client retries the whole message */
			session_summary(s, "out of memory");
			session_reply(s, 421, "4.3.0", "%s Error: out of memory", s->cfg->server.hostname);
			session_close(s, "out of memory");
			return;
		} else {
			s->state = SMTP_STATE_RCPT;
		}
	} else {
		s->txn.rcpts_refused++;
		rcpt_refused(s, NULL);
	}
	s->txn.rec->rcpt.addr[0] = '\0';
	session_resume(s);
}

/* rcpt_refused - note the refused recipient (as parsed, or as the client
 * wrote it) with the reply given, for the transaction's summary. */
static void rcpt_refused(struct session *s, const struct smtp_cmd *cmd)
{
	char what[SMTP_ADDR_MAX + 8], addr[SMTP_ADDR_MAX + 1];

	if (s->txn.rec->rcpt.addr[0])
		log_escape(s->txn.rec->rcpt.addr, strlen(s->txn.rec->rcpt.addr), addr, sizeof addr);
	else if (cmd != NULL)
		log_escape(cmd->arg, cmd->arg_len > 200 ? 200 : cmd->arg_len, addr, sizeof addr);
	else
		addr[0] = '\0';
	/* the client's own text keeps its own brackets, if any */
	snprintf(what, sizeof what, addr[0] == '<' ? "%s" : "<%s>", addr);
	txn_refusal(s, what);
}

static void rcpt_relay(struct session *s)
{
	char line[1024];
	const char *to = s->rewrite[0] ? s->rewrite : s->txn.rec->rcpt.addr;
	snprintf(line, sizeof line, "RCPT TO:<%s>%s", to, s->txn.rec->rcpt_params);
	s->wait = WAIT_BACKEND;
	session_backend_command(s, line, rcpt_relayed);
}

static void rcpt_filtered(struct session *s, const struct filter_verdict *v)
{
	if (v->result != FILTER_CONTINUE) {
		session_reply_verdict(s, v);
		s->txn.rcpts_refused++;
		rcpt_refused(s, NULL);
		s->txn.rec->rcpt.addr[0] = '\0';
		return;
	}
	rcpt_relay(s);
}

static void outbound_mail_relayed(struct session *s, const struct smtp_reply *r, int err)
{
	if (err) {
		backend_trouble(s, err, true);
		return;
	}
	if (r->code / 100 != 2) {
		/* the next hop refused the sender: say so at this first RCPT,
		 * and end the transaction */
		relay_reply(s, r, false);
		session_summary_refused(s, "MAIL by the next hop");
		txn_reset(s);
		session_resume(s);
		return;
	}
	s->txn.mail_relayed = true;
	s->wait = WAIT_NONE;
	filters_run(s, FILTER_RCPT, rcpt_filtered);
	session_process(s);
}

static void outbound_mail_filtered(struct session *s, const struct filter_verdict *v)
{
	if (v->result != FILTER_CONTINUE) {
		session_reply_verdict(s, v);
		session_summary_refused(s, "MAIL");
		txn_reset(s);
		return;
	}
	if (s->rewrite[0])
		snprintf(s->txn.rec->from_relayed, sizeof s->txn.rec->from_relayed, "%s", s->rewrite);
	mail_relay(s, outbound_mail_relayed);
}

static void cmd_rcpt(struct session *s, const struct smtp_cmd *cmd)
{
	struct smtp_param params[MAX_ESMTP_PARAMS];
	size_t np = MAX_ESMTP_PARAMS, used = 0;
	enum smtp_path_status st;
	const struct backend_caps *caps = backend_known_caps(s->backend_known, s->outbound);

	if (!s->outbound && s->cfg->backend.relay_check && s->backend_known->relays_for_backstop) {
		/* the probe's relay check: the backend relays for backstop's
		 * own address, so it would relay anything for anyone (logged
		 * at each probe, with the fix) */
		s->reply_check = METRICS_CHECK_BACKEND;
		session_reply(s, 451, "4.7.1", "Error: relaying is suspended (mail system misconfigured), try again later");
		rcpt_refused(s, cmd);
		return;
	}
	if (s->txn.nrcpts >= s->cfg->limits.max_recipients) {
		/* RFC 5321 4.5.3.1.10: 452, the client sends the rest later */
		s->reply_check = METRICS_CHECK_LIMITS;
		session_reply(s, 452, "4.5.3", "Error: too many recipients");
		s->txn.rec->rcpt.addr[0] = '\0';
		rcpt_refused(s, cmd);
		return;
	}
	st = smtp_path_parse(cmd->arg, cmd->arg_len, SMTP_PATH_ALLOW_POSTMASTER | SMTP_PATH_ALLOW_UTF8,
	    &s->txn.rec->rcpt, params, &np);
	if (st == SMTP_PATH_BAD_PARAM || st == SMTP_PATH_TOO_MANY_PARAMS) {
		session_reply(s, 501, "5.5.4", "Error: bad parameters");
		rcpt_refused(s, cmd);
		return;
	}
	if (st == SMTP_PATH_8BIT || (st == SMTP_PATH_OK && s->txn.rec->rcpt.has_8bit &&
	    !strstr(s->txn.rec->mail_params, "SMTPUTF8") && !strstr(s->txn.rec->mail_params, "smtputf8"))) {
		session_reply(s, 553, "5.6.7", "Error: non-ASCII address without SMTPUTF8");
		rcpt_refused(s, cmd);
		s->txn.rec->rcpt.addr[0] = '\0';
		return;
	}
	if (st != SMTP_PATH_OK) {
		session_reply(s, 501, "5.1.3", "Error: bad recipient address syntax");
		rcpt_refused(s, cmd);
		s->txn.rec->rcpt.addr[0] = '\0';
		return;
	}
	s->txn.rec->rcpt_params[0] = '\0';
	for (size_t i = 0; i < np; i++) {
		if ((smtp_param_is(&params[i], "NOTIFY") || smtp_param_is(&params[i], "ORCPT"))) {
			if (!caps || !caps->dsn) {
				session_reply(s, 555, "5.5.4", "Error: DSN is not supported");
				rcpt_refused(s, cmd);
				s->txn.rec->rcpt.addr[0] = '\0';
				return;
			}
		} else {
			session_reply(s, 555, "5.5.4", "Error: unsupported parameter %.*s",
			    (int)(params[i].key_len > 40 ? 40 : params[i].key_len), params[i].key);
			rcpt_refused(s, cmd);
			s->txn.rec->rcpt.addr[0] = '\0';
			return;
		}
		int n = snprintf(s->txn.rec->rcpt_params + used, sizeof s->txn.rec->rcpt_params - used, " %.*s%s%.*s",
		    (int)params[i].key_len, params[i].key, params[i].value ? "=" : "",
		    params[i].value ? (int)params[i].value_len : 0, params[i].value ? params[i].value : "");
		if (n < 0 || (size_t)n >= sizeof s->txn.rec->rcpt_params - used) {
			session_reply(s, 501, "5.5.4", "Error: parameters too long");
			rcpt_refused(s, cmd);
			s->txn.rec->rcpt.addr[0] = '\0';
			return;
		}
		used += (size_t)n;
	}
	if (s->outbound && !s->txn.mail_relayed) {
		filters_run(s, FILTER_MAIL, outbound_mail_filtered);
		return;
	}
	filters_run(s, FILTER_RCPT, rcpt_filtered);
}

/* ---- DATA ---- */

static void data_relayed(struct session *s, const struct smtp_reply *r, int err)
{
	if (err) {
		backend_trouble(s, err, true);
		return;
	}
	if (r->code == 354) {
		session_data_start(s);
		session_reply(s, 354, "", "End data with <CR><LF>.<CR><LF>");
	} else if (r->code / 100 != 4 && r->code / 100 != 5) {
		/* a backend that "accepts" DATA without 354 is confused */
		log_warn("%s: backend answered DATA with %d %s", s->sid, r->code, r->text);
		session_reply(s, 451, "4.3.0", "Error: unexpected reply from the backend, try again later");
		session_summary_refused(s, "DATA (unexpected backend reply)");
		backend_abort(s->be);
		txn_reset(s);
		s->be_rset_pending = false;
	} else {
		relay_reply(s, r, false);
		session_summary_refused(s, "DATA by the backend");
		txn_reset(s);
	}
	session_resume(s);
}

static void data_filtered(struct session *s, const struct filter_verdict *v)
{
	if (v->result != FILTER_CONTINUE) {
		session_reply_verdict(s, v);
		session_summary_refused(s, "DATA");
		/* the backend holds MAIL and RCPTs: RSET it before the next MAIL */
		txn_reset(s);
		return;
	}
	if (filters_hold(s)) {
		/* Held: the backend gets DATA at end of data, with the whole
		 * message right after its 354, so a slow upload never meets its
		 * data timeout; meanwhile NOOPs keep the connection alive. The
		 * client's 354 is ours; the backend's refusal of DATA, if any,
		 * is the reply to the end of data. */
		session_data_start(s);
		session_reply(s, 354, "", "End data with <CR><LF>.<CR><LF>");
		backend_keepalive(s->be, s->cfg->backend.keepalive);
		return;
	}
	s->wait = WAIT_BACKEND;
	session_backend_command(s, "DATA", data_relayed);
}

static void cmd_data(struct session *s)
{
	if (s->txn.nrcpts == 0) {
		session_reply(s, s->txn.rcpts_refused ? 554 : 503, "5.5.1",
		    s->txn.rcpts_refused ? "Error: no valid recipients" : "Error: need RCPT command");
		txn_refusal(s, "DATA");
		return;
	}
	if (filters_hold(s) && !spool_budget_has_room(&s->worker->spool)) {
		/* never a silent drop: the client keeps the message and retries */
		log_warn("%s: spool full (%llu bytes in use, [limits] spool_max)", s->sid,
		    (unsigned long long)s->worker->spool.in_use);
		s->reply_check = METRICS_CHECK_LIMITS;
		session_reply(s, 452, "4.3.1", "Error: insufficient system resources, try again later");
		txn_refusal(s, "DATA");
		return;
	}
	filters_run(s, FILTER_DATA, data_filtered);
}

/* ---- STARTTLS ---- */

static void cmd_starttls(struct session *s)
{
	if (s->tls_server == NULL || s->tls) {
		session_reply(s, 502, "5.5.1", "Error: command not implemented");
		return;
	}
	session_reply(s, 220, "2.0.0", "Ready to start TLS");
	session_flush(s);
	/* RFC 3207 4, CVE-2011-0411: whatever the client pipelined after
	 * STARTTLS was sent in plaintext and must not be taken as commands. */
	if (s->in.len > s->inpos)
		log_info("%s: discarding %zu plaintext bytes pipelined after STARTTLS from [%s]:%u",
		    s->sid, s->in.len - s->inpos, s->ip, s->port);
	s->inpos = s->in.len;
	smtp_line_reset(&s->lr);
	s->tls = tls_conn_new_server(s->tls_server);
	if (s->tls == NULL) {
		session_close(s, "TLS setup failed");
		return;
	}
	s->wait = WAIT_TLS;
	s->tls_deadline = uv_now(s->worker->loop) + s->cfg->tls.handshake_timeout;
	session_timer_arm(s);
}

void session_starttls_done(struct session *s, bool ok)
{
	char subject[256] = "";
	if (!ok)
		return;
	tls_conn_peer_subject(s->tls, subject, sizeof subject);
	log_info("%s: TLS established with [%s]:%u: %s %s%s%s", s->sid, s->ip, s->port,
	    tls_conn_version(s->tls), tls_conn_cipher(s->tls), subject[0] ? " subject=" : "", subject);
	/* RFC 3207 4.2: forget everything learnt before TLS -- the backend
	 * connection too, which carries the old HELO and PROTO (XCLIENT) */
	txn_reset(s);
	if (s->be)
		backend_quit(s->be);
	s->state = SMTP_STATE_CONNECTED;
	s->helo[0] = '\0';
	s->esmtp = false;
	s->wait = WAIT_NONE;
}

/* ---- dispatch ---- */

void session_non_smtp(struct session *s, enum smtp_foreign what, const char *data, size_t len)
{
	char esc[128];

	/* postscreen's log line and reply (its non_smtp_command test, action
	 * drop): such a client will not understand anything else either */
	log_info("%s: NON-SMTP COMMAND (%s) from [%s]:%u after %s: %s", s->sid, smtp_foreign_name(what),
	    s->ip, s->port, smtp_state_name(s->state),
	    log_escape(data, len < 60 ? len : 60, esc, sizeof esc));
	s->metrics->refused[METRICS_REFUSED_NON_SMTP]++;
	s->reply_check = METRICS_CHECK_PROTOCOL;
	session_reply(s, 521, "5.7.0", "Error: I can break rules, too. Goodbye.");
	session_close(s, "non-SMTP command");
}

/* count_junk - a command that moves no mail (RSET NOOP VRFY EXPN HELP).
 * Past [limits] junk_command_limit since the last accepted message, each
 * one is an error, so max_errors ends the session: as Postfix's
 * smtpd_junk_command_limit. It bounds what one session can make the loop
 * do between messages (each MAIL after an RSET is an SPF evaluation). */
static void count_junk(struct session *s)
{
	unsigned long limit = s->cfg->limits.junk_command_limit;

	if (limit > 0 && ++s->junk_commands > limit) {
		s->errors++;
		if (s->junk_commands == limit + 1)
			log_info("%s: more than %lu junk commands (RSET NOOP VRFY EXPN HELP) from [%s]:%u;"
			    " each one now counts as an error", s->sid, limit, s->ip, s->port);
	}
}

bool session_errors_exceeded(struct session *s)
{
	const struct config *c = s->cfg;

	if (s->errors < c->limits.max_errors)
		return false;
	log_info("%s: too many errors from [%s]:%u after %s", s->sid, s->ip, s->port,
	    smtp_state_name(s->state));
	s->reply_check = METRICS_CHECK_LIMITS;
	session_reply(s, 421, "4.7.0", "%s Error: too many errors", c->server.hostname);
	session_close(s, "too many errors");
	return true;
}

void session_command(struct session *s, const struct smtp_line *line)
{
	struct smtp_cmd cmd;
	enum smtp_cmd_status st;
	enum smtp_seq seq;
	const struct config *c = s->cfg;

	if (session_errors_exceeded(s))
		return;
	/* before the bare newline check: scanners often end lines with LF */
	if (smtp_foreign_line(line->data, line->len) != SMTP_FOREIGN_NONE) {
		session_non_smtp(s, smtp_foreign_line(line->data, line->len), line->data, line->len);
		return;
	}
	if ((line->flags & (SMTP_LINE_BARE_LF | SMTP_LINE_BARE_CR)) &&
	    c->server.bare_newline == SMTP_NEWLINE_REJECT) {
		/* RFC 5321 2.3.8: only CRLF ends a line; a client that sends
		 * bare LF or CR could smuggle commands (CVE-2023-51764) */
		log_info("%s: bare <CR> or <LF> in a command from [%s]:%u", s->sid, s->ip, s->port);
		session_reply(s, 500, "5.5.2", "Error: bare <CR> or <LF> received");
		session_close(s, "bare newline");
		return;
	}
	st = smtp_cmd_parse(line->data, line->len, &cmd);
	if (st == SMTP_CMD_EMPTY) {
		session_reply(s, 500, "5.5.2", "Error: empty command");
		return;
	}
	if (st == SMTP_CMD_BAD_CHAR || (line->flags & SMTP_LINE_NUL)) {
		session_reply(s, 500, "5.5.2", "Error: invalid character in command");
		return;
	}
	if (st == SMTP_CMD_UNKNOWN) {
		char esc[64];
		log_info("%s: unknown command from [%s]:%u: %s", s->sid, s->ip, s->port,
		    log_escape(line->data, line->len < 40 ? line->len : 40, esc, sizeof esc));
		session_reply(s, 500, "5.5.1", "Error: command not recognized");
		return;
	}
	if (st == SMTP_CMD_SYNTAX) {
		session_reply(s, 501, "5.5.4", "Syntax error in parameters or arguments to %s",
		    smtp_verb_name(cmd.verb));
		return;
	}
	if (c->tls.require && !s->tls && s->tls_server &&
	    cmd.verb != SMTP_VERB_EHLO && cmd.verb != SMTP_VERB_HELO && cmd.verb != SMTP_VERB_STARTTLS &&
	    cmd.verb != SMTP_VERB_NOOP && cmd.verb != SMTP_VERB_QUIT && cmd.verb != SMTP_VERB_RSET) {
		session_reply(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		return;
	}
	/* Postfix's smtpd_helo_required = no; but after STARTTLS the client
	 * must EHLO again (RFC 3207 4.2) */
	if (s->state == SMTP_STATE_CONNECTED && cmd.verb == SMTP_VERB_MAIL && !c->helo.required && !s->tls)
		s->state = SMTP_STATE_READY;
	if (s->refusal && (cmd.verb == SMTP_VERB_MAIL || cmd.verb == SMTP_VERB_RCPT ||
	    cmd.verb == SMTP_VERB_DATA || cmd.verb == SMTP_VERB_VRFY || cmd.verb == SMTP_VERB_EXPN)) {
		session_reply_verdict(s, s->refusal);
		return;
	}
	if (cmd.verb == SMTP_VERB_DATA && s->state == SMTP_STATE_MAIL && s->txn.rcpts_refused) {
		/* RFC 5321 3.3: every recipient refused; 554 rather than 503 */
		cmd_data(s);
		return;
	}
	seq = smtp_server_check(s->state, cmd.verb);
	if (seq != SMTP_SEQ_OK) {
		session_reply(s, 503, "5.5.1", "%s", smtp_seq_text(seq));
		return;
	}
	switch (cmd.verb) {
	case SMTP_VERB_HELO:
		cmd_helo(s, &cmd, false);
		break;
	case SMTP_VERB_EHLO:
		cmd_helo(s, &cmd, true);
		break;
	case SMTP_VERB_MAIL:
		cmd_mail(s, &cmd);
		break;
	case SMTP_VERB_RCPT:
		cmd_rcpt(s, &cmd);
		break;
	case SMTP_VERB_DATA:
		cmd_data(s);
		break;
	case SMTP_VERB_RSET:
		count_junk(s);
		if (s->txn.active)
			session_summary(s, "reset by client");
		txn_reset(s);
		session_reply(s, 250, "2.0.0", "Ok");
		break;
	case SMTP_VERB_NOOP:
		count_junk(s);
		session_reply(s, 250, "2.0.0", "Ok");
		break;
	case SMTP_VERB_QUIT:
		if (s->txn.active)
			session_summary(s, "quit during transaction");
		session_reply(s, 221, "2.0.0", "Bye");
		session_close(s, "QUIT");
		break;
	case SMTP_VERB_VRFY:
		count_junk(s);
		/* RFC 5321 3.5.3: 252 when we will not verify but accept */
		session_reply(s, 252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery");
		break;
	case SMTP_VERB_EXPN:
		count_junk(s);
		session_reply(s, 502, "5.5.1", "Error: EXPN not supported");
		break;
	case SMTP_VERB_HELP:
		count_junk(s);
		session_reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP%s",
		    s->tls_server && !s->tls ? " STARTTLS" : "");
		break;
	case SMTP_VERB_STARTTLS:
		cmd_starttls(s);
		break;
	case SMTP_VERB_AUTH:
	case SMTP_VERB_BDAT:
	default:
		session_reply(s, 502, "5.5.1", "Error: command not implemented");
		break;
	}
	if (s->drain_after_txn && !s->closing && !s->txn.active && s->wait == WAIT_NONE) {
		session_reply(s, 421, "4.3.2", "%s Service shutting down, try again later", c->server.hostname);
		session_close(s, "shutdown");
	}
}

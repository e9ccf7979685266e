/*
 * backend - the SMTP client towards the backend MTA (see backend.h).
 *
 * Dialogue states follow nginx's mail proxy: each state knows which reply
 * it waits for. Every wait has a timer ([backend] connect_timeout,
 * command_timeout, data_timeout); every failure ends the connection and is
 * reported once to the waiting callback. The struct is freed when both its
 * handles are closed; the owner is told released() then, so it outlives
 * every callback (a session counts it among its own handles).
 *
 * The owner is opaque here: what the connection needs of it is copied into
 * be->p at backend_open, and it reports through be->ops (backend.h).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "proxy/backend.h"
#include "proxy/backend_identity.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/tls.h"
#include "smtp/smtp_addr.h"
#include "smtp/smtp_line.h"
#include "smtp/proxy_out.h"

/* the layering rule (README.md, Layout), checked by the compiler */
#ifdef SESSION_H
#error "backend sits below session: report through struct backend_owner_ops"
#endif

#define BACKEND_IN_MAX 8192

enum be_state {
	BE_CONNECTING,
	BE_GREETING,
	BE_EHLO,
	BE_STARTTLS,    /* 220 to STARTTLS awaited */
	BE_TLS,         /* TLS handshake in progress */
	BE_XCLIENT,
	BE_EHLO_AGAIN,
	BE_RSET,        /* a pooled connection's RSET before its new owner's XCLIENT */
	BE_READY,       /* idle, transaction commands may be sent */
	BE_COMMAND,     /* a command's reply is awaited */
	BE_QUIT,
	BE_DEAD,
};

struct backend;
/* be_done_fn - what the current wait's answer goes to: the owner
 * (be_owner_reply) or the keepalive's own NOOP (keepalive_replied) */
typedef void (*be_done_fn)(struct backend *be, const struct smtp_reply *r, int err);

struct backend {
	struct backend_params p;    /* the owner's, copied at backend_open */
	const struct backend_owner_ops *ops;
	void *owner;
	bool attached;          /* the owner holds its pointer: closed() not called yet */
	int owner_handles;      /* tcp and timer not closed yet: released() at 0 */
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t creq;
	uv_getaddrinfo_t gai;
	int handles;
	enum be_state state;
	bool dead;
	bool xclient_done;
	bool xclient_early;     /* XCLIENT sent right after the greeting */
	bool via_xclient;
	bool ehlo_answered;     /* a 2xx to our first EHLO: past what a probe checks */
	bool in_content;        /* the backend said 354: it takes content until the dot */
	bool refused_any;       /* it answered a command 4xx/5xx: never pooled. Its error
	                           count (Postfix's smtpd_soft/hard_error_limit, the
	                           error sleep) outlives RSET and XCLIENT, and would
	                           tarpit or 421 the next client for this one's errors */
	unsigned junk;          /* EHLOs, RSETs, NOOPs sent since the backend last accepted a
	                           message: Postfix counts them the same way
	                           (smtpd_junk_command_limit, then as errors) */
	bool reusing;           /* a pooled connection re-identifying for a new owner:
	                           its failure is the connection's, not the backend's */
	struct backend_caps caps;
	struct tls_conn *tls;   /* after STARTTLS: all traffic goes through it */
	struct tls_client *cli; /* the context chosen at STARTTLS (a reload
	                           may change the shared one meanwhile) */
	struct buf in;
	struct smtp_line_reader lr;
	struct smtp_reply reply;
	be_done_fn done;
	uint64_t timeout;       /* of the current wait */
	char host[256];
	unsigned port;
	bool counted;           /* in be_count ([backend] max_connections) */
	/* keepalive: while a held message uploads, the backend sits after
	 * RCPT; a NOOP every keepalive_ms keeps its idle timer (Postfix's
	 * smtpd_timeout) from closing it */
	uint64_t keepalive_ms;
	bool noop_inflight;
	char *pending_line;     /* the owner's command, asked for while the NOOP is out */
};

struct be_write {
	uv_write_t req;
	struct backend *be;
	char *data;
};

const struct backend_caps *backend_known_caps(const struct backend_known *k, bool outbound)
{
	return k->target[outbound].known ? &k->target[outbound].caps : NULL;
}

void backend_known_forget(struct backend_known *k, bool outbound)
{
	memset(&k->target[outbound], 0, sizeof k->target[outbound]);
}

void backend_known_learnt(struct backend_known *k, bool outbound, const struct backend_caps *caps)
{
	k->target[outbound].caps = *caps;
	k->target[outbound].known = true;
}

/* A connection that has sent this many EHLOs, RSETs and NOOPs since its
 * last accepted message is not kept: Postfix counts them per connection,
 * across XCLIENT, and past smtpd_junk_command_limit (100) as errors, which
 * slow down (smtpd_soft_error_limit) and then cut off every later client's
 * session on it. A reuse sends EHLO, and RSET when a transaction was left
 * (review14) */
#define BACKEND_POOL_JUNK_MAX 40

/* What the loop's connections share (the count, the client TLS context,
 * the read buffer) is struct backend_loop, be->p.bl (backend.h). */

static void be_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);
static void be_fail(struct backend *be, int err);

const char *backend_err_text(int err)
{
	switch (err) {
	case BACKEND_ECONNECT: return "unreachable";
	case BACKEND_ETIMEOUT: return "timed out";
	case BACKEND_ELOST: return "closed the connection";
	case BACKEND_EPROTO: return "protocol error";
	case BACKEND_EGREET: return "refused the connection";
	case BACKEND_ETLS: return "TLS failure";
	case BACKEND_EBUSY: return "has too many connections";
	case BACKEND_EIDENTITY: return "cannot be told who the client is";
	default: return "error";
	}
}

static void be_free(struct backend *be)
{
	if (be->tls)
		tls_conn_free(be->tls);
	if (be->cli)
		tls_client_unref(be->cli);
	buf_free(&be->in);
	free(be);
}

static void be_owner_reply(struct backend *be, const struct smtp_reply *r, int err)
{
	be->ops->reply(be->owner, r, err);
}

/* be_detach - the owner is told to forget its pointer (once) */
static void be_detach(struct backend *be)
{
	if (!be->attached)
		return;
	be->attached = false;
	be->ops->closed(be->owner);
}

static void be_handle_closed(uv_handle_t *h)
{
	struct backend *be = h->data;
	const struct backend_owner_ops *ops = be->ops;
	void *owner = be->owner;
	bool released = --be->owner_handles == 0;

	if (--be->handles == 0)
		be_free(be);
	if (released)
		ops->released(owner);
}

/* be_close - end the connection; callbacks are not called any more. */
static void be_close(struct backend *be)
{
	if (be->dead)
		return;
	be->dead = true;
	be->state = BE_DEAD;
	if (be->counted) {
		be->counted = false;
		be->p.bl->count--;
	}
	be->done = NULL;
	free(be->pending_line);
	be->pending_line = NULL;
	be_detach(be);
	uv_timer_stop(&be->timer);
	uv_close((uv_handle_t *)&be->timer, be_handle_closed);
	uv_close((uv_handle_t *)&be->tcp, be_handle_closed);
}

/* be_stage - where a connection that is not ready yet is, for /health */
static const char *be_stage(const struct backend *be)
{
	switch (be->state) {
	case BE_CONNECTING: return "connect";
	case BE_GREETING: return "greeting";
	case BE_EHLO: return be->ehlo_answered ? "EHLO (after its reply)" : "EHLO";
	case BE_STARTTLS: return "STARTTLS";
	case BE_TLS: return "TLS handshake";
	case BE_XCLIENT: return "XCLIENT";
	case BE_EHLO_AGAIN: return "EHLO after XCLIENT";
	case BE_RSET: return "RSET of a pooled connection";
	default: return "ready";
	}
}

/* be_identity - how this connection tells the backend who the client is
 * (enum backend_identity): [backend] identity for the [backend] address;
 * under identity = auto, and for the [outbound] relay, [backend] xclient
 * as before identity existed (on: XCLIENT required, off: nothing). */
static int be_identity(const struct backend *be)
{
	const struct config *c = be->p.cfg;

	if (!be->p.outbound && c->backend.identity != IDENTITY_AUTO)
		return c->backend.identity;
	return c->backend.xclient == XCLIENT_ON ? IDENTITY_XCLIENT :
	    c->backend.xclient == XCLIENT_OFF ? IDENTITY_NONE : IDENTITY_AUTO;
}

/* be_by_identity_key - be_identity() comes from [backend] identity (its
 * failures are 451 4.3.0), not from [backend] xclient (4.4.x, as before) */
static bool be_by_identity_key(const struct backend *be)
{
	return !be->p.outbound && be->p.cfg->backend.identity != IDENTITY_AUTO;
}

static void be_fail(struct backend *be, int err)
{
	be_done_fn done = be->done;
	bool attached = be->attached;
	/* a command the owner queued behind a keepalive NOOP is owed its
	 * answer: be_close drops the queue, and the NOOP's own callback
	 * answers nobody once the owner is detached */
	bool owed = attached && be->pending_line != NULL;

	/* every way a connection attempt fails ends here: refused,
	 * unreachable, unresolvable, timed out */
	if (be->state == BE_CONNECTING && !be->dead)
		metrics_backend_connect(be->p.metrics, be->p.outbound, false);
	/* /health: any failure between the start and the ready state (no
	 * greeting, 4xx/5xx, TLS, XCLIENT); those after it are about one
	 * transaction, and a session's own abort is no failure (be_close) */
	if (!be->p.outbound && !be->dead && be->state < BE_READY && !be->reusing)
		metrics_backend_failed(be->p.metrics, be_stage(be), backend_err_text(err),
		    be->ehlo_answered || be->state > BE_EHLO || be->tls != NULL);
	be_close(be);
	if (owed)
		be->ops->reply(be->owner, NULL, err);
	else if (done)
		done(be, NULL, err);
	else if (attached)
		be->ops->writable(be->owner);   /* content the owner streams: the next send finds no backend */
}

static void be_on_timer(uv_timer_t *t)
{
	struct backend *be = t->data;
	log_warn("%s: backend %s:%u timed out (state %d)", be->p.log_id, be->host, be->port, be->state);
	be_fail(be, BACKEND_ETIMEOUT);
}

static void be_wait(struct backend *be, uint64_t ms)
{
	uv_timer_start(&be->timer, be_on_timer, ms, 0);
}

static void be_on_write(uv_write_t *req, int status)
{
	struct be_write *w = (struct be_write *)req;
	struct backend *be = w->be;
	free(w->data);
	free(w);
	if (be->dead)
		return;
	if (status < 0) {
		log_warn("%s: write to backend failed: %s", be->p.log_id, uv_strerror(status));
		be_fail(be, BACKEND_ELOST);
		return;
	}
	/* the owner may be waiting for the backend to take more content */
	if (be->attached &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&be->tcp) <= be->p.cfg->limits.data_buffer / 2)
		be->ops->writable(be->owner);
}

static int be_write_raw(struct backend *be, char *data, size_t len);

/* be_tls_flush - write the ciphertext the TLS engine holds. */
static int be_tls_flush(struct backend *be)
{
	const char *p;
	size_t n;
	while ((n = tls_conn_pending(be->tls, &p)) > 0) {
		char *copy = malloc(n);
		int rc;
		if (copy == NULL)
			return BACKEND_ELOST;
		memcpy(copy, p, n);
		tls_conn_consume(be->tls, n);
		if ((rc = be_write_raw(be, copy, n)) != 0)
			return rc;
	}
	return 0;
}

/* be_write - queue data (ownership taken); encrypted once TLS is on. */
static int be_write(struct backend *be, char *data, size_t len)
{
	int rc;
	if (be->tls == NULL || be->dead)
		return be_write_raw(be, data, len);
	rc = tls_conn_write(be->tls, data, len);
	free(data);
	if (rc != TLS_OK) {
		log_warn("%s: TLS write to backend %s:%u failed: %s", be->p.log_id, be->host, be->port,
		    tls_conn_error(be->tls));
		be_tls_flush(be);
		return BACKEND_ELOST;
	}
	return be_tls_flush(be);
}

static int be_write_raw(struct backend *be, char *data, size_t len)
{
	struct be_write *w;
	uv_buf_t b;

	int n;

	if (be->dead) {
		free(data);
		return BACKEND_ELOST;
	}
	/* a whole small message usually fits the socket buffer: no request,
	 * no epoll re-arm */
	b = uv_buf_init(data, (unsigned)len);
	n = uv_try_write((uv_stream_t *)&be->tcp, &b, 1);
	if (n == (int)len) {
		free(data);
		return 0;
	}
	if (n > 0) {
		memmove(data, data + n, len - (size_t)n);
		len -= (size_t)n;
	} else if (n != UV_EAGAIN) {
		free(data);
		return BACKEND_ELOST;
	}
	if ((w = malloc(sizeof *w)) == NULL) {
		free(data);
		return BACKEND_ELOST;
	}
	w->be = be;
	w->data = data;
	b = uv_buf_init(data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&be->tcp, &b, 1, be_on_write) != 0) {
		free(data);
		free(w);
		return BACKEND_ELOST;
	}
	return 0;
}

static int be_send_line(struct backend *be, const char *line)
{
	size_t len = strlen(line);
	char *d = malloc(len + 2);
	if (d == NULL)
		return BACKEND_ELOST;
	memcpy(d, line, len);
	memcpy(d + len, "\r\n", 2);
	log_debug("%s: backend <- %s", be->p.log_id, line);
	if (strcmp(line, "RSET") == 0 || strcmp(line, "NOOP") == 0 || strncmp(line, "EHLO ", 5) == 0 ||
	    strncmp(line, "HELO ", 5) == 0)
		be->junk++;
	return be_write(be, d, len + 2);
}

void backend__caps_parse(struct backend_caps *caps, const char *text)
{
	const char *line = strchr(text, '\n');   /* skip the greeting line */
	memset(caps, 0, sizeof *caps);
	while (line) {
		const char *kw = line + 1, *end = strchr(kw, '\n');
		size_t len = end ? (size_t)(end - kw) : strlen(kw), wl = 0;
		while (wl < len && kw[wl] != ' ')
			wl++;
#define KW(name) (wl == sizeof(name) - 1 && strncasecmp(kw, name, wl) == 0)
		if (KW("PIPELINING")) caps->pipelining = true;
		else if (KW("8BITMIME")) caps->eightbitmime = true;
		else if (KW("SMTPUTF8")) caps->smtputf8 = true;
		else if (KW("DSN")) caps->dsn = true;
		else if (KW("XCLIENT")) caps->xclient = true;
		else if (KW("XFORWARD")) caps->xforward = true;
		else if (KW("STARTTLS")) caps->starttls = true;
		else if (KW("ENHANCEDSTATUSCODES")) caps->enhancedstatuscodes = true;
		else if (KW("SIZE")) {
			caps->size = true;
			caps->max_size = wl < len ? strtoull(kw + wl + 1, NULL, 10) : 0;
		}
#undef KW
		line = end;
	}
}

/*
 * backend_client_helo - the client's HELO/EHLO name as the backend is told
 * it: in XCLIENT/XFORWARD HELO and in the EHLO after XCLIENT (which
 * replaces XCLIENT's HELO at Postfix). What the client said, never a name
 * of backstop's; "" when it said nothing. Bytes outside '!'..'~' become
 * '?' (what Postfix's own neuter() does to XCLIENT values), so the name is
 * one token on a command line. XCLIENT_README and XFORWARD_README reserve
 * "[UNAVAILABLE]" and "[TEMPUNAVAIL]" in any case: the backend would read a
 * client that greeted with one of them as "no HELO" (or as a lookup
 * failure), so their brackets become '?' too ("?UNAVAILABLE?"): still
 * visibly the client's word, and no longer a protocol token.
 */
void backend_client_helo(const char *helo, char *out, size_t cap)
{
	size_t n = 0;

	if (cap == 0)
		return;
	for (; helo[n] != '\0' && n + 1 < cap && n < SMTP_DOMAIN_MAX; n++)
		out[n] = helo[n] >= '!' && helo[n] <= '~' ? helo[n] : '?';
	out[n] = '\0';
	if (strcasecmp(out, "[UNAVAILABLE]") == 0 || strcasecmp(out, "[TEMPUNAVAIL]") == 0) {
		out[0] = '?';
		out[n - 1] = '?';
	}
}

/* backend_helo_attr - the client's HELO as an XCLIENT/XFORWARD attribute
 * value: the xtext of backend_client_helo(), or [UNAVAILABLE] when the
 * client said nothing or the value would exceed the 255 characters both
 * READMEs allow. */
void backend_helo_attr(const char *helo, char *out, size_t cap)
{
	char name[SMTP_DOMAIN_MAX + 1];

	backend_client_helo(helo, name, sizeof name);
	if (name[0] == '\0' || smtp_xtext_encode(name, strlen(name), out, cap) < 0 ||
	    strlen(out) > 255)
		snprintf(out, cap, "[UNAVAILABLE]");
}

static void be_send_xclient(struct backend *be)
{
	const struct backend_params *p = &be->p;
	char helo[600], line[1100];

	backend_helo_attr(p->client_helo, helo, sizeof helo);
	/* XCLIENT_README: ADDR goes last, a line stays within 512 bytes */
	for (int pass = 0; pass < 2; pass++) {
		snprintf(line, sizeof line, "XCLIENT NAME=%s HELO=%s PROTO=%s PORT=%u ADDR=%s%s",
		    strcmp(p->client_name, "unknown") ? p->client_name :
		    p->client_name_tempfail ? "[TEMPUNAVAIL]" : "[UNAVAILABLE]", helo,
		    p->client_esmtp ? "ESMTP" : "SMTP", p->client_port, strchr(p->client_ip, ':') ? "IPV6:" : "",
		    p->client_ip);
		if (strlen(line) <= 510)
			break;
		strcpy(helo, "[UNAVAILABLE]");
	}
	be->state = BE_XCLIENT;
	be_wait(be, p->cfg->backend.connect_timeout);
	if (be_send_line(be, line) != 0)
		be_fail(be, BACKEND_ELOST);
}

static void be_send_ehlo(struct backend *be, enum be_state next)
{
	const char *helo = be->p.cfg->backend.helo;
	char line[300], client[SMTP_DOMAIN_MAX + 1];

	/* after XCLIENT our EHLO replaces the client's HELO at the backend
	 * (Postfix): say the client's name, as nginx does - the same one
	 * XCLIENT gave, valid or not, so the backend's own HELO checks judge
	 * what the client said. Only a client that said nothing gets ours. */
	backend_client_helo(be->p.client_helo, client, sizeof client);
	if (next == BE_EHLO_AGAIN && client[0] != '\0')
		helo = client;
	snprintf(line, sizeof line, "EHLO %s", helo);
	be->state = next;
	be_wait(be, be->p.cfg->backend.connect_timeout);
	if (be_send_line(be, line) != 0)
		be_fail(be, BACKEND_ELOST);
}

static void be_ready(struct backend *be);

/* backend__tls_client_for - the client context for config c; NULL when [backend]
 * tls = none or it cannot be built (logged once per config: at startup and
 * reload, from backend_probe, or at the first STARTTLS). */
struct tls_client *backend__tls_client_for(struct backend_loop *bl, struct config *c)
{
	char err[320];
	struct tls_client *cli;

	if (bl->tls_cli_cfg == c)
		return bl->tls_cli;
	cli = tls_client_new(c, err, sizeof err);
	if (cli == NULL && err[0] && bl->tls_cli != NULL) {
		/* like the listener's context on SIGHUP: a bad new ca_file
		 * keeps the one that worked */
		log_error("backend TLS context: %s; keeping the previous one", err);
		cli = bl->tls_cli;
		tls_client_ref(cli);
	} else if (cli == NULL && err[0]) {
		log_error("backend TLS context: %s; %s", err,
		    c->backend.tls == BACKEND_TLS_REQUIRED ? "mail will get 4xx" :
		    "STARTTLS to the backend is off");
	}
	if (bl->tls_cli)
		tls_client_unref(bl->tls_cli);
	if (bl->tls_cli_cfg)
		config_unref(bl->tls_cli_cfg);
	bl->tls_cli = cli;
	bl->tls_cli_cfg = config_ref(c);
	return bl->tls_cli;
}

static struct tls_client *be_tls_client(struct backend *be)
{
	return backend__tls_client_for(be->p.bl, be->p.cfg);
}

/* be_after_ehlo - EHLO (or STARTTLS) done: XCLIENT, or ready. */
static void be_after_ehlo(struct backend *be)
{
	int identity = be_identity(be);

	if (be->state == BE_EHLO_AGAIN || be->via_xclient) {
		be_ready(be);
		return;
	}
	if (identity == IDENTITY_XFORWARD && !be->caps.xforward) {
		/* required: never relay as backstop's own address instead */
		log_error("%s: backend %s:%u does not offer XFORWARD but [backend] identity = xforward; mail "
		    "gets 451 4.3.0 (allow backstop in Postfix's smtpd_authorized_xforward_hosts)",
		    be->p.log_id, be->host, be->port);
		be_fail(be, BACKEND_EIDENTITY);
		return;
	}
	if (identity == IDENTITY_AUTO || identity == IDENTITY_XCLIENT) {
		if (be->caps.xclient) {
			be_send_xclient(be);
			return;
		}
		if (identity == IDENTITY_XCLIENT) {
			/* required: never relay as backstop's own address instead */
			bool by_identity = be_by_identity_key(be);
			log_error("%s: backend %s:%u does not offer XCLIENT but %s (allow backstop in "
			    "smtpd_authorized_xclient_hosts); mail gets 451", be->p.log_id, be->host, be->port,
			    by_identity ? "[backend] identity = xclient" : "[backend] xclient = on");
			be_fail(be, by_identity ? BACKEND_EIDENTITY : BACKEND_EGREET);
			return;
		}
		if (!be->caps.xforward) {
			/* Postfix offers XCLIENT only to authorized clients: this is
			 * what a missing smtpd_authorized_xclient_hosts looks like */
			if (!be->p.bl->warned_no_identity)
				log_warn("backend %s:%u offers neither XCLIENT nor XFORWARD: it sees every client as "
				    "backstop's own address (allow backstop in smtpd_authorized_xclient_hosts and set "
				    "[backend] identity = xclient, or another identity (README.md), or make sure the "
				    "backend does not trust that address)",
				    be->host, be->port);
			be->p.bl->warned_no_identity = true;
		}
	}
	be_ready(be);
}

/* be_starttls - the backend offers STARTTLS and [backend] tls wants it:
 * returns true when STARTTLS was sent (or the connection failed). */
static bool be_starttls(struct backend *be)
{
	const struct config *c = be->p.cfg;
	bool required = c->backend.tls == BACKEND_TLS_REQUIRED;

	if (be->tls != NULL || c->backend.tls == BACKEND_TLS_NONE)
		return false;
	if (!be->caps.starttls) {
		if (!required) {
			log_debug("%s: backend %s:%u does not offer STARTTLS; continuing in plaintext",
			    be->p.log_id, be->host, be->port);
			return false;
		}
		log_error("%s: backend %s:%u does not offer STARTTLS but [backend] tls = required",
		    be->p.log_id, be->host, be->port);
		be_fail(be, BACKEND_ETLS);
		return true;
	}
	if ((be->cli = be_tls_client(be)) == NULL) {
		if (!required)
			return false;
		be_fail(be, BACKEND_ETLS);
		return true;
	}
	tls_client_ref(be->cli);
	be->state = BE_STARTTLS;
	be_wait(be, c->backend.connect_timeout);
	if (be_send_line(be, "STARTTLS") != 0)
		be_fail(be, BACKEND_ELOST);
	return true;
}

/* be_tls_begin - 220 to STARTTLS: start the handshake (the ClientHello). */
static void be_tls_begin(struct backend *be)
{
	const struct config *c = be->p.cfg;
	bool required = c->backend.tls == BACKEND_TLS_REQUIRED;
	size_t got;

	/* without [backend] verify_name the certificate must name the host
	 * we connect to: a chain alone proves nothing with a public CA file */
	be->tls = tls_conn_new_client(be->cli, c->backend.verify_name[0] ? c->backend.verify_name : be->host,
	    required);
	if (be->tls == NULL) {
		log_error("%s: backend TLS: cannot make a connection (out of memory, or a bad "
		    "[backend] verify_name)", be->p.log_id);
		be_fail(be, BACKEND_ETLS);
		return;
	}
	be->state = BE_TLS;
	be_wait(be, c->backend.connect_timeout);
	if (tls_conn_read(be->tls, NULL, 0, &got) == TLS_ERROR) {
		log_warn("%s: TLS handshake with backend %s:%u failed: %s", be->p.log_id, be->host, be->port,
		    tls_conn_error(be->tls));
		be_tls_flush(be);
		be_fail(be, BACKEND_ETLS);
		return;
	}
	if (be_tls_flush(be) != 0)
		be_fail(be, BACKEND_ELOST);
}

/* be_tls_established - handshake complete: log it, EHLO again (RFC 3207
 * 4.2: the backend forgot everything, and its capabilities may differ). */
static void be_tls_established(struct backend *be)
{
	char subject[256];
	tls_conn_peer_subject(be->tls, subject, sizeof subject);
	log_info("%s: TLS to backend %s:%u: %s %s, certificate %s%s%s", be->p.log_id, be->host, be->port,
	    tls_conn_version(be->tls), tls_conn_cipher(be->tls),
	    tls_conn_verified(be->tls) ? "verified" : "not verified",
	    subject[0] ? ", subject=" : "", subject);
	be_send_ehlo(be, BE_EHLO);
}

static void be_ready(struct backend *be)
{
	be_done_fn done = be->done;
	/* the one place a connection counts as the backend taking mail */
	if (!be->p.outbound)
		metrics_backend_ready(be->p.metrics);
	be->state = BE_READY;
	be->done = NULL;
	be->reusing = false;
	uv_timer_stop(&be->timer);
	if (done)
		done(be, NULL, 0);
}

/* be_reply - a complete reply arrived: move the dialogue on. */
static void be_reply(struct backend *be)
{
	struct smtp_reply *r = &be->reply;
	const struct config *c = be->p.cfg;
	const struct backend_caps *known = backend_known_caps(be->p.known, be->p.outbound);

	log_debug("%s: backend -> %d%s%s %s", be->p.log_id, r->code, r->esc[0] ? " " : "", r->esc, r->text);
	switch (be->state) {
	case BE_GREETING:
		if (r->code != 220) {
			log_warn("%s: backend %s:%u greeted with %d %s", be->p.log_id, be->host, be->port, r->code, r->text);
			be_fail(be, BACKEND_EGREET);
			return;
		}
		/* XCLIENT_README: XCLIENT may come at any time outside a
		 * transaction. A backend known to offer it gets it at once,
		 * which saves the EHLO before it (one round trip per
		 * connection); with STARTTLS to do, the usual order stays. */
		if ((be_identity(be) == IDENTITY_AUTO || be_identity(be) == IDENTITY_XCLIENT) &&
		    c->backend.tls == BACKEND_TLS_NONE && known != NULL && known->xclient) {
			be->xclient_early = true;
			be_send_xclient(be);
			return;
		}
		be_send_ehlo(be, BE_EHLO);
		return;
	case BE_EHLO:
	case BE_EHLO_AGAIN:
		if (r->code / 100 != 2) {
			log_warn("%s: backend refused EHLO: %d %s", be->p.log_id, r->code, r->text);
			be_fail(be, BACKEND_EGREET);
			return;
		}
		backend__caps_parse(&be->caps, r->text);
		be->ehlo_answered = true;
		if (be->state == BE_EHLO) {
			backend_known_learnt(be->p.known, be->p.outbound, &be->caps);
			if (be_starttls(be))
				return;
		}
		be_after_ehlo(be);
		return;
	case BE_STARTTLS:
		if (r->code == 220) {
			be_tls_begin(be);
			return;
		}
		if (c->backend.tls == BACKEND_TLS_REQUIRED) {
			log_error("%s: backend %s:%u refused STARTTLS: %d %s ([backend] tls = required)",
			    be->p.log_id, be->host, be->port, r->code, r->text);
			be_fail(be, BACKEND_ETLS);
			return;
		}
		log_warn("%s: backend %s:%u refused STARTTLS: %d %s; continuing in plaintext",
		    be->p.log_id, be->host, be->port, r->code, r->text);
		be->state = BE_EHLO;
		be_after_ehlo(be);
		return;
	case BE_XCLIENT:
		if (r->code == 220) {
			/* XCLIENT resets the backend to the greeting: EHLO again */
			be->via_xclient = true;
			be_send_ehlo(be, BE_EHLO_AGAIN);
			return;
		}
		if (r->code / 100 == 2) {
			/* smtp-sink and some others answer 250 and stay as they are */
			be->via_xclient = true;
			if (be->xclient_early)
				be_send_ehlo(be, BE_EHLO_AGAIN);
			else
				be_ready(be);
			return;
		}
		if (be->xclient_early && (r->code == 500 || r->code == 502)) {
			/* the backend no longer knows XCLIENT (it changed since
			 * we learnt its capabilities): greet it the usual way */
			log_warn("%s: backend does not know XCLIENT any more: %d %s; greeting it with EHLO",
			    be->p.log_id, r->code, r->text);
			be->xclient_early = false;
			be->p.known->target[be->p.outbound].caps.xclient = false;
			/* the backend counted the unknown command as an error,
			 * which the next owner would inherit: never pooled */
			be->refused_any = true;
			be_send_ehlo(be, BE_EHLO);
			return;
		}
		if (be->reusing) {
			/* the owner connects afresh: a fresh connection's refusal
			 * is the one that tells the operator what to fix */
			log_info("%s: pooled backend connection refused XCLIENT: %d %s; not reusing it",
			    be->p.log_id, r->code, r->text);
			be_fail(be, BACKEND_EGREET);
			return;
		}
		/* Offered but refused: never relay as backstop's own address,
		 * which a backend usually trusts (mynetworks) -- that would make
		 * every client a trusted local one. Fail closed: the client gets
		 * 4xx until the backend is fixed or [backend] xclient = off. */
		log_error("%s: backend refused XCLIENT: %d %s (%s); not relaying as backstop's own address",
		    be->p.log_id, r->code, r->text,
		    r->code == 501 && strchr(be->p.client_ip, ':') ?
		    "the backend cannot take IPv6 client addresses: with Postfix, inet_protocols must include ipv6" :
		    be_by_identity_key(be) ? "allow backstop in Postfix's smtpd_authorized_xclient_hosts" :
		    "allow backstop in Postfix's smtpd_authorized_xclient_hosts, or set [backend] xclient = off");
		be_fail(be, be_by_identity_key(be) ? BACKEND_EIDENTITY : BACKEND_EGREET);
		return;
	case BE_RSET:
		if (r->code / 100 != 2) {
			log_info("%s: pooled backend connection answered RSET with %d %s; not reusing it",
			    be->p.log_id, r->code, r->text);
			be_fail(be, BACKEND_EPROTO);
			return;
		}
		if (be->via_xclient) {
			/* the new owner's client, as a fresh connection would say */
			be->xclient_early = false;
			be_send_xclient(be);
			return;
		}
		be_ready(be);
		return;
	case BE_COMMAND: {
		be_done_fn done = be->done;
		be->done = NULL;
		be->state = BE_READY;
		uv_timer_stop(&be->timer);
		if (r->code == 421) {
			/* the backend is closing: this connection is finished */
			struct smtp_reply copy = *r;
			be_close(be);
			if (done)
				done(be, &copy, 0);
			return;
		}
		/* after 354 the backend reads content, not commands, until the
		 * dot's reply: never reusable in between */
		if (be->in_content && r->code / 100 == 2)
			be->junk = 0;   /* a message accepted: Postfix forgives the junk */
		be->in_content = r->code == 354;
		if (r->code >= 400)
			be->refused_any = true;
		if (done)
			done(be, r, 0);
		return;
	}
	case BE_QUIT:
		be_close(be);
		return;
	default:
		/* a reply nobody asked for (e.g. an idle timeout 421) */
		log_info("%s: backend said %d %s while idle; closing it", be->p.log_id, r->code, r->text);
		be_close(be);
		return;
	}
}

static void be_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct backend *be = h->data;
	(void)suggested;
	if (be->tls) {
		/* ciphertext: the engine copies it at once */
		b->base = be->p.bl->tls_scratch;
		b->len = sizeof be->p.bl->tls_scratch;
		return;
	}
	if (buf_reserve(&be->in, BACKEND_IN_MAX - be->in.len, BACKEND_IN_MAX) < 0 || be->in.len >= BACKEND_IN_MAX) {
		b->base = NULL;
		b->len = 0;
		return;
	}
	b->base = be->in.data + be->in.len;
	b->len = BACKEND_IN_MAX - be->in.len;
}

/* be_parse - take the complete replies in be->in. */
static void be_parse(struct backend *be)
{
	size_t pos = 0;

	while (!be->dead && pos < be->in.len) {
		struct smtp_line line;
		struct smtp_reply_line rl;
		size_t used = smtp_line_next(&be->lr, be->in.data + pos, be->in.len - pos, SMTP_REPLY_LINE_MAX * 2, &line);
		int rc;
		if (used == 0)
			break;
		pos += used;
		if ((line.flags & SMTP_LINE_PARTIAL) || smtp_reply_line_parse(line.data, line.len, &rl) < 0) {
			char esc[120];
			log_warn("%s: backend sent garbage: %s", be->p.log_id,
			    log_escape(line.data, line.len < 80 ? line.len : 80, esc, sizeof esc));
			be_fail(be, BACKEND_EPROTO);
			return;
		}
		rc = smtp_reply_add(&be->reply, &rl);
		if (rc < 0) {
			be_fail(be, BACKEND_EPROTO);
			return;
		}
		if (rc == 1) {
			bool plain = be->tls == NULL;
			if (pos < be->in.len && !(be->state == BE_STARTTLS && be->reply.code == 220)) {
				/* backstop never pipelines to the backend: bytes after a
				 * complete reply answer nothing we asked, and must not be
				 * taken for the reply to our next command (a stale 250
				 * could accept a message the backend never saw) */
				log_warn("%s: backend %s:%u sent %zu bytes more than the reply to our command",
				    be->p.log_id, be->host, be->port, be->in.len - pos);
				be_fail(be, BACKEND_EPROTO);
				return;
			}
			/* the reply is taken before its owner hears of it: a session
			 * that ends in the callback (a QUIT pipelined after the dot)
			 * finds nothing unread, so backend_reusable() may keep it */
			buf_consume(&be->in, pos);
			pos = 0;
			be_reply(be);
			memset(&be->reply, 0, sizeof be->reply);
			if (plain && be->tls != NULL) {
				/* STARTTLS response injection: what the backend
				 * (or a man in the middle) sent after its 220 in
				 * plaintext must not count as a TLS-protected reply */
				if (be->in.len > pos)
					log_warn("%s: discarding %zu plaintext bytes the backend %s:%u sent after "
					    "220 to STARTTLS", be->p.log_id, be->in.len - pos, be->host, be->port);
				pos = be->in.len;
				smtp_line_reset(&be->lr);
				break;
			}
		}
	}
	if (be->dead)
		return;
	buf_consume(&be->in, pos);
	if (be->state == BE_READY && be->in.len == 0 && be->reply.nlines > 0) {
		/* a reply's first lines (250-x) while nothing was asked: the
		 * bytes are consumed, but the lines would open the reply to our
		 * next command */
		log_info("%s: backend sent %u line(s) of a reply while idle; closing it", be->p.log_id,
		    (unsigned)be->reply.nlines);
		be_fail(be, BACKEND_EPROTO);
		return;
	}
	if (be->state == BE_READY && be->in.len > 0) {
		/* part of a line while nothing was asked (a kept connection's
		 * idle time, between a session's commands): it would prefix the
		 * reply to our next command, and "220 x" + "550 no" reads as a
		 * 220. Whole replies end in be_reply's default case. (be_fail:
		 * an owner streaming content hears of it at once.) */
		char esc[120];
		log_info("%s: backend sent %zu bytes while idle (%s); closing it", be->p.log_id, be->in.len,
		    log_escape(be->in.data, be->in.len < 80 ? be->in.len : 80, esc, sizeof esc));
		be_fail(be, BACKEND_EPROTO);
	}
}

/* be_tls_pump - decrypt what the engine holds, drive the handshake. */
static void be_tls_pump(struct backend *be)
{
	while (!be->dead) {
		bool was_done = tls_conn_handshake_done(be->tls);
		size_t got = 0;
		int rc;

		if (buf_reserve(&be->in, BACKEND_IN_MAX - be->in.len, BACKEND_IN_MAX) < 0 ||
		    be->in.len >= BACKEND_IN_MAX) {
			be_fail(be, BACKEND_EPROTO);
			return;
		}
		rc = tls_conn_read(be->tls, be->in.data + be->in.len, BACKEND_IN_MAX - be->in.len, &got);
		be->in.len += got;
		if (be_tls_flush(be) != 0) {
			be_fail(be, BACKEND_ELOST);
			return;
		}
		if (rc == TLS_ERROR) {
			log_warn("%s: TLS %s backend %s:%u failed: %s", be->p.log_id,
			    was_done ? "connection to" : "handshake with", be->host, be->port,
			    tls_conn_error(be->tls));
			be_fail(be, was_done ? BACKEND_ELOST : BACKEND_ETLS);
			return;
		}
		if (!was_done && tls_conn_handshake_done(be->tls)) {
			be_tls_established(be);
			if (be->dead)
				return;
		}
		if (got > 0)
			be_parse(be);
		if (rc == TLS_CLOSED) {
			if (be->dead)
				return;
			if (be->state == BE_QUIT) {
				be_close(be);
				return;
			}
			log_info("%s: backend %s:%u closed the TLS connection", be->p.log_id, be->host, be->port);
			be_fail(be, BACKEND_ELOST);
			return;
		}
		if (rc == TLS_WANT)
			return;
	}
}

static void be_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct backend *be = st->data;

	if (be->dead)
		return;
	if (n < 0) {
		if (be->state == BE_QUIT) {
			be_close(be);
			return;
		}
		log_info("%s: backend %s:%u closed the connection%s%s%s", be->p.log_id, be->host, be->port,
		    n == UV_EOF ? "" : ": ", n == UV_EOF ? "" : uv_strerror((int)n),
		    be->state == BE_TLS ? " during the TLS handshake" : "");
		be_fail(be, be->state == BE_TLS ? BACKEND_ETLS : BACKEND_ELOST);
		return;
	}
	if (n == 0)
		return;
	if (be->tls) {
		if (tls_conn_feed(be->tls, b->base, (size_t)n) != TLS_OK) {
			be_fail(be, BACKEND_ELOST);
			return;
		}
		be_tls_pump(be);
		return;
	}
	be->in.len += (size_t)n;
	be_parse(be);
}

/* be_send_proxy_header - [backend] identity = proxy: the PROXY v2 header
 * goes first, before the greeting (the backend says nothing until it has
 * it). 0, or the connection failed (reported). */
static int be_send_proxy_header(struct backend *be)
{
	unsigned char hdr[PROXY_OUT_V2_MAX];
	char *copy;
	int n = backend_identity_proxy_header((const struct sockaddr *)&be->p.client_addr,
	    (const struct sockaddr *)&be->p.local_addr, hdr, sizeof hdr);

	if (n < 0) {
		log_error("%s: cannot make a PROXY header for client [%s]:%u ([backend] identity = proxy): "
		    "no usable client or local address; mail gets 451 4.3.0", be->p.log_id, be->p.client_ip,
		    be->p.client_port);
		be_fail(be, BACKEND_EIDENTITY);
		return -1;
	}
	/* before STARTTLS, if any: the header is outside the SMTP stream */
	if ((copy = malloc((size_t)n)) == NULL) {
		be_fail(be, BACKEND_ELOST);
		return -1;
	}
	memcpy(copy, hdr, (size_t)n);
	if (be_write_raw(be, copy, (size_t)n) != 0) {
		be_fail(be, BACKEND_ELOST);
		return -1;
	}
	log_debug("%s: backend <- PROXY v2 header for [%s]:%u (%d bytes)", be->p.log_id, be->p.client_ip,
	    be->p.client_port, n);
	return 0;
}

static void be_on_connect(uv_connect_t *req, int status)
{
	struct backend *be = req->data;
	if (be->dead)
		return;
	if (status < 0) {
		log_warn("%s: cannot connect to backend %s:%u: %s", be->p.log_id, be->host, be->port, uv_strerror(status));
		be_fail(be, BACKEND_ECONNECT);
		return;
	}
	metrics_backend_connect(be->p.metrics, be->p.outbound, true);
	/* Nagle plus delayed ACKs would add ~40 ms to each small write */
	uv_tcp_nodelay(&be->tcp, 1);
	if (be_identity(be) == IDENTITY_PROXY && be_send_proxy_header(be) != 0)
		return;
	be->state = BE_GREETING;
	be_wait(be, be->p.cfg->backend.connect_timeout);
	if (uv_read_start((uv_stream_t *)&be->tcp, be_alloc, be_on_read) != 0)
		be_fail(be, BACKEND_ECONNECT);
}

/* be_socket_for_identity - the socket a connection to sa starts from:
 * libuv's own (made at connect), or under [backend] identity =
 * transparent one bound to the client's address. 0, or the connection
 * failed (reported). */
static int be_socket_for_identity(struct backend *be, const struct sockaddr *sa)
{
	char err[512];
	int fd, rc;

	if (be_identity(be) != IDENTITY_TRANSPARENT)
		return 0;
	fd = backend_identity_transparent_socket((const struct sockaddr *)&be->p.client_addr, sa, err, sizeof err);
	if (fd < 0) {
		log_error("%s: cannot connect to backend %s:%u as client [%s]:%u ([backend] identity = "
		    "transparent): %s; mail gets 451 4.3.0", be->p.log_id, be->host, be->port, be->p.client_ip,
		    be->p.client_port, err);
		be_fail(be, BACKEND_EIDENTITY);
		return -1;
	}
	if ((rc = uv_tcp_open(&be->tcp, fd)) != 0) {
		log_error("%s: uv_tcp_open: %s", be->p.log_id, uv_strerror(rc));
		close(fd);
		be_fail(be, BACKEND_ECONNECT);
		return -1;
	}
	return 0;
}

static void be_connect_addr(struct backend *be, const struct sockaddr *sa)
{
	be->creq.data = be;
	if (be_socket_for_identity(be, sa) != 0)
		return;
	if (uv_tcp_connect(&be->creq, &be->tcp, sa, be_on_connect) != 0)
		be_fail(be, BACKEND_ECONNECT);
}

static void be_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct backend *be = req->data;
	be->handles--;   /* the lookup held the struct */
	if (be->dead) {
		uv_freeaddrinfo(res);
		if (be->handles == 0)
			be_free(be);
		return;
	}
	if (status < 0 || res == NULL) {
		log_warn("%s: cannot resolve backend %s: %s", be->p.log_id, be->host, uv_strerror(status));
		uv_freeaddrinfo(res);
		be_fail(be, BACKEND_ECONNECT);
		return;
	}
	be_connect_addr(be, res->ai_addr);
	uv_freeaddrinfo(res);
}

int backend_open(struct backend **bep, const struct backend_params *p,
    const struct backend_owner_ops *ops, void *owner)
{
	struct backend *be;
	const char *addr = p->outbound ? p->cfg->outbound.relay : p->cfg->backend.address;
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} sa;

	/* Postfix's default_process_limit is 100 and its per-client limits
	 * exempt backstop: without a cap of our own, clients that hold
	 * transactions open would take every backend process */
	if (!p->outbound && p->bl->count >= p->cfg->backend.max_connections) {
		log_warn("%s: refused a backend connection for [%s]:%u: %lu open ([backend] max_connections = %lu)",
		    p->log_id, p->client_ip, p->client_port, p->bl->count, p->cfg->backend.max_connections);
		return BACKEND_EBUSY;
	}
	if ((be = calloc(1, sizeof *be)) == NULL)
		return BACKEND_ECONNECT;
	if (hostport_split(addr, be->host, sizeof be->host, &be->port) < 0) {
		free(be);
		return BACKEND_ECONNECT;
	}
	if (!p->outbound) {
		be->counted = true;
		p->bl->count++;
	}
	be->p = *p;
	be->ops = ops;
	be->owner = owner;
	be->attached = true;
	be->done = be_owner_reply;
	be->state = BE_CONNECTING;
	uv_tcp_init(p->bl->loop, &be->tcp);
	uv_timer_init(p->bl->loop, &be->timer);
	be->tcp.data = be->timer.data = be;
	be->handles = 2;
	be->owner_handles = 2;
	*bep = be;   /* before any callback: a failure below reports at once */
	be_wait(be, p->cfg->backend.connect_timeout);
	memset(&sa, 0, sizeof sa);
	if (uv_ip4_addr(be->host, (int)be->port, &sa.in4) == 0) {
		be_connect_addr(be, &sa.sa);
	} else if (uv_ip6_addr(be->host, (int)be->port, &sa.in6) == 0) {
		be_connect_addr(be, &sa.sa);
	} else {
		/* a host name (e.g. a container's service name): resolved on
		 * libuv's thread pool, never on the loop */
		struct addrinfo hints;
		char port[8];
		memset(&hints, 0, sizeof hints);
		hints.ai_socktype = SOCK_STREAM;
		snprintf(port, sizeof port, "%u", be->port);
		be->gai.data = be;
		be->handles++;
		if (uv_getaddrinfo(p->bl->loop, &be->gai, be_on_resolved, be->host, port, &hints) != 0) {
			be->handles--;
			be_fail(be, BACKEND_ECONNECT);
		}
	}
	return 0;
}

bool backend_ready(const struct backend *be)
{
	/* a keepalive NOOP in flight is no obstacle: the owner's command
	 * waits for its reply (backend_command queues one) */
	return be != NULL && !be->dead &&
	    (be->state == BE_READY || (be->noop_inflight && be->pending_line == NULL));
}

const struct backend_caps *backend_caps(const struct backend *be)
{
	return be ? &be->caps : NULL;
}

bool backend_wants_xforward(const struct backend *be)
{
	return be && !be->via_xclient && be->caps.xforward &&
	    (be_identity(be) == IDENTITY_AUTO || be_identity(be) == IDENTITY_XFORWARD);
}

void backend_command(struct backend *be, const char *line)
{
	if (!be->dead && be->noop_inflight && be->pending_line == NULL) {
		/* a keepalive NOOP is out: this command follows its reply */
		if ((be->pending_line = strdup(line)) != NULL) {
			be->keepalive_ms = 0;
			return;
		}
	}
	if (be->dead || be->state != BE_READY) {
		be->ops->reply(be->owner, NULL, BACKEND_ELOST);
		return;
	}
	be->keepalive_ms = 0;   /* a real command: the keepalive is over */
	be->done = be_owner_reply;
	be->state = BE_COMMAND;
	be_wait(be, be->p.cfg->backend.command_timeout);
	if (be_send_line(be, line) != 0)
		be_fail(be, BACKEND_ELOST);
}

int backend_data_send(struct backend *be, struct buf *b)
{
	size_t len;
	char *data;
	if (be == NULL || be->dead) {
		b->len = 0;
		return BACKEND_ELOST;
	}
	if (b->len == 0)
		return 0;
	data = buf_steal(b, &len);
	/* while content flows, the backend has data_timeout to take it */
	be_wait(be, be->p.cfg->backend.data_timeout);
	return be_write(be, data, len);
}

size_t backend_queued(const struct backend *be)
{
	if (be == NULL || be->dead)
		return 0;
	return uv_stream_get_write_queue_size((const uv_stream_t *)&be->tcp);
}

void backend_data_end(struct backend *be, struct buf *b)
{
	size_t len;
	char *data;

	/* b ends with the final dot, written by the session's smtp_wire:
	 * the one writer of content owns the end of data too */
	if (be->dead) {
		be->ops->reply(be->owner, NULL, BACKEND_ELOST);
		return;
	}
	be->done = be_owner_reply;
	be->state = BE_COMMAND;
	/* RFC 5321 4.5.3.2.6: up to 10 minutes for the reply to the dot */
	be_wait(be, be->p.cfg->backend.data_timeout);
	data = buf_steal(b, &len);
	if (be_write(be, data, len) != 0)
		be_fail(be, BACKEND_ELOST);
}

void backend_abort(struct backend *be)
{
	if (be) {
		log_debug("%s: aborting the backend connection", be->p.log_id);
		be_close(be);
	}
}

unsigned long backend_connections(const struct backend_loop *bl)
{
	return bl->count;
}

void backend_loop_release(struct backend_loop *bl)
{
	if (bl->tls_cli)
		tls_client_unref(bl->tls_cli);
	if (bl->tls_cli_cfg)
		config_unref(bl->tls_cli_cfg);
	bl->tls_cli = NULL;
	bl->tls_cli_cfg = NULL;
}

static void be_on_idle(uv_timer_t *t)
{
	struct backend *be = t->data;

	if (be->dead || be->state != BE_READY || !be->attached)
		return;
	be->ops->idle(be->owner);
}

void backend_idle(struct backend *be)
{
	if (be != NULL)
		backend_idle_after(be, be->p.cfg->backend.idle_timeout);
}

void backend_idle_after(struct backend *be, uint64_t ms)
{
	if (be == NULL || be->dead || be->state != BE_READY || ms == 0)
		return;
	/* the timer is free while READY: every command re-arms it with its
	 * own timeout (be_wait) */
	uv_timer_start(&be->timer, be_on_idle, ms, 0);
}

bool backend_reusable(const struct backend *be)
{
	/* idle between transactions, nothing of the old owner's in flight
	 * or unread: no keepalive NOOP, no queued command, no bytes */
	return be != NULL && !be->dead && be->state == BE_READY && !be->in_content && !be->refused_any &&
	    be->junk < BACKEND_POOL_JUNK_MAX && !be->noop_inflight &&
	    be->pending_line == NULL && be->keepalive_ms == 0 && be->in.len == 0 &&
	    backend_queued(be) == 0;
}

bool backend_reidentifies(const struct backend *be)
{
	return be != NULL && be->via_xclient;
}

/* be_rehome - the connection changes owner: the old one forgets it
 * (closed) and holds no reference any more (released, at once: the
 * connection stays open, and its handles now count for the new owner) */
static void be_rehome(struct backend *be, const struct backend_owner_ops *ops, void *owner)
{
	const struct backend_owner_ops *old_ops = be->ops;
	void *old_owner = be->owner;

	be_detach(be);
	uv_timer_stop(&be->timer);
	be->ops = ops;
	be->owner = owner;
	be->attached = true;
	old_ops->released(old_owner);
}

void backend_handover(struct backend *be, const struct backend_owner_ops *ops, void *owner)
{
	be_rehome(be, ops, owner);
	be->done = NULL;
}

void backend_reuse(struct backend *be, const struct backend_params *p,
    const struct backend_owner_ops *ops, void *owner, bool rset)
{
	be_rehome(be, ops, owner);
	/* the new client's attributes, log id and config (the same as the
	 * old one's: the pool only keeps connections of the current one) */
	be->p = *p;
	be->reusing = true;
	be->done = be_owner_reply;
	if (!rset && be->via_xclient) {
		/* no transaction left at the backend: XCLIENT may come at once
		 * (XCLIENT_README: at any time outside a transaction), and
		 * resets the backend's session like a new connection */
		be->xclient_early = false;
		be_send_xclient(be);
		return;
	}
	be->state = BE_RSET;
	be_wait(be, p->cfg->backend.connect_timeout);
	if (be_send_line(be, "RSET") != 0)
		be_fail(be, BACKEND_ELOST);
}

static void keepalive_arm(struct backend *be);

static void keepalive_replied(struct backend *be, const struct smtp_reply *r, int err)
{
	char *line;

	if (!be->attached)
		return;   /* gone: the owner's next command finds no backend (451) */
	be->noop_inflight = false;
	line = be->pending_line;
	be->pending_line = NULL;
	if (err || r == NULL || r->code / 100 != 2) {
		log_warn("%s: backend answered the keepalive NOOP with %d; closing it", be->p.log_id,
		    r ? r->code : 0);
		be_close(be);
		if (line != NULL)
			be->ops->reply(be->owner, NULL, BACKEND_ELOST);
		free(line);
		return;
	}
	if (line != NULL) {
		backend_command(be, line);
		free(line);
		return;
	}
	keepalive_arm(be);
}

static void keepalive_fire(uv_timer_t *t)
{
	struct backend *be = t->data;

	if (be->dead || be->state != BE_READY || be->keepalive_ms == 0 || !be->attached)
		return;
	log_debug("%s: keepalive NOOP to the backend while the message uploads", be->p.log_id);
	be->noop_inflight = true;
	be->done = keepalive_replied;
	be->state = BE_COMMAND;
	be_wait(be, be->p.cfg->backend.command_timeout);
	if (be_send_line(be, "NOOP") != 0)
		be_fail(be, BACKEND_ELOST);
}

static void keepalive_arm(struct backend *be)
{
	if (!be->dead && be->state == BE_READY && be->keepalive_ms > 0)
		uv_timer_start(&be->timer, keepalive_fire, be->keepalive_ms, 0);
}

void backend_keepalive(struct backend *be, uint64_t interval_ms)
{
	if (be == NULL || be->dead)
		return;
	be->keepalive_ms = interval_ms;
	if (interval_ms > 0)
		keepalive_arm(be);
	else if (be->state == BE_READY && !be->noop_inflight)
		uv_timer_stop(&be->timer);
}

void backend_quit(struct backend *be)
{
	if (be == NULL || be->dead)
		return;
	if (be->state != BE_READY) {
		be_close(be);
		return;
	}
	be->done = NULL;
	be->state = BE_QUIT;
	be_detach(be);   /* the owner is done with it; it closes itself */
	be_wait(be, 5000);
	if (be_send_line(be, "QUIT") != 0)
		be_close(be);
}

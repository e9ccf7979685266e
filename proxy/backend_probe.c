/*
 * backend_probe - one connection at startup (and after a reload) to learn
 * the backend's capabilities, so that the first client's EHLO already
 * offers what the backend does (SMTPUTF8, DSN) and XCLIENT can be sent
 * right after the greeting. Never blocks. Its outcome goes to the
 * caller's callback (the server: /health starts from it, and re-probes an
 * unhealthy backend with it while no client brings traffic).
 *
 * The relay check ([backend] relay_check): when the backend sees
 * backstop's own address for access control (identity xforward or none,
 * or auto resolving to XFORWARD or to nothing), the probe asks it, as
 * backstop, to relay to a domain that cannot exist (MAIL FROM:<>, RCPT
 * TO:<...@relay-check.invalid>, RSET; never DATA). A 2xx means every
 * client could relay through backstop: logged as an error, and inbound
 * RCPTs are refused (known->relays_for_backstop) until a probe finds the
 * backend fixed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "proxy/backend.h"
#include "proxy/buf.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "smtp/proxy_out.h"
#include "smtp/smtp_line.h"
#include "smtp/smtp_reply.h"

#define PROBE_IN_MAX 8192
#define RELAY_CHECK_RCPT "backstop-relay-check@relay-check.invalid"

enum probe_step {
	STEP_GREETING, STEP_EHLO, STEP_QUIT,
	STEP_MAIL, STEP_RCPT, STEP_RSET    /* the relay check */
};


struct probe {
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_timer_t timer;
	struct buf in;
	struct smtp_line_reader lr;
	struct smtp_reply reply;
	enum probe_step step;
	int handles;
	bool connected;
	bool reported; /* cb called: once per probe */
	bool quiet;    /* a re-probe: failures at debug level */
	backend_probe_cb cb;
	void *arg;
	struct backend_known *known;   /* what the EHLO reply is learnt into */
	char helo[256];
	bool proxy_header;   /* send a PROXY v2 LOCAL header first */
	bool relay_check;    /* [backend] relay_check */
	int identity;        /* [backend] identity */
	int xclient;         /* [backend] xclient (decides under identity = auto) */
	char address[300];   /* [backend] address, for the log */
	char check_as[120];  /* the identity in effect, as the relay check's log says it */
	uint64_t command_timeout;   /* [backend] command_timeout: bounds the relay check */
};

static void probe_send(struct probe *p, const char *text);

static const char *probe_stage(const struct probe *p)
{
	if (!p->connected)
		return "connect";
	return p->step == STEP_GREETING ? "greeting" : "EHLO";
}

/* sees_backstop - the backend's access control sees backstop's own
 * address under the identity in effect (caps: its EHLO); says which in
 * p->check_as */
static bool sees_backstop(struct probe *p, const struct backend_caps *caps)
{
	switch (p->identity) {
	case IDENTITY_XFORWARD:
		snprintf(p->check_as, sizeof p->check_as, "identity = xforward");
		return true;
	case IDENTITY_NONE:
		snprintf(p->check_as, sizeof p->check_as, "identity = none");
		return true;
	case IDENTITY_AUTO:
		if (p->xclient == XCLIENT_OFF) {
			snprintf(p->check_as, sizeof p->check_as, "identity = auto and xclient = off");
			return true;
		}
		if (p->xclient == XCLIENT_ON || caps->xclient)
			return false;
		snprintf(p->check_as, sizeof p->check_as, "identity = auto (the backend offers %s)",
		    caps->xforward ? "XFORWARD but not XCLIENT" : "neither XCLIENT nor XFORWARD");
		return true;
	default:   /* xclient, proxy, transparent: the backend sees the client */
		return false;
	}
}

/* relay_check_unfinished - the connection failed or timed out during the
 * relay check: the previous finding stands (none at start-up: mail is not
 * refused on a guess, nor let through again after an open relay was seen) */
static void relay_check_unfinished(const struct probe *p, const char *why)
{
	if (p->step != STEP_MAIL && p->step != STEP_RCPT)
		return;
	log_msg(p->quiet ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARNING, "backend probe: relay check: backend %s %s "
	    "before answering %s; cannot tell whether it relays for backstop's own address (%s)",
	    p->address, why, p->step == STEP_MAIL ? "MAIL FROM:<>" : "the RCPT", p->check_as);
}

/* relay_check_reply - the answer to the relay check's MAIL or RCPT */
static void relay_check_reply(struct probe *p)
{
	char esc[120];
	const char *text = p->reply.text;

	if (p->step == STEP_MAIL && p->reply.code / 100 == 2) {
		probe_send(p, "RCPT TO:<" RELAY_CHECK_RCPT ">\r\n");
		p->step = STEP_RCPT;
		return;
	}
	log_escape(text, strlen(text) < 80 ? strlen(text) : 80, esc, sizeof esc);
	if (p->step == STEP_MAIL) {
		/* inconclusive: the previous finding stands */
		log_msg(p->quiet ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARNING, "backend probe: relay check: "
		    "backend %s answered MAIL FROM:<> with %d %s; cannot tell whether it relays for "
		    "backstop's own address (%s)", p->address, p->reply.code, esc, p->check_as);
	} else if (p->reply.code / 100 == 2) {
		bool news = !p->quiet || !p->known->relays_for_backstop;
		p->known->relays_for_backstop = true;
		/* an error when found; a re-probe that finds it still so says
		 * it at debug level, not every 10 s */
		log_msg(news ? LOG_LEVEL_ERROR : LOG_LEVEL_DEBUG, "backend probe: backend %s relays for backstop's own address (RCPT "
		    "to relay-check.invalid accepted: %d %s) while %s: any client could relay through "
		    "backstop, so every RCPT gets 451 4.7.1. Fix: use identity = xclient or proxy, or "
		    "remove backstop's address from the backend's mynetworks / relay permissions "
		    "(README.md, Client identity towards the backend); [backend] relay_check = off "
		    "only for a backend that delivers locally and never relays",
		    p->address, p->reply.code, esc, p->check_as);
	} else {
		if (p->known->relays_for_backstop)
			log_info("backend probe: relay check: backend %s no longer relays for backstop's own "
			    "address; mail is accepted again", p->address);
		p->known->relays_for_backstop = false;
		log_msg(LOG_LEVEL_DEBUG, "backend probe: relay check: backend %s refused a foreign recipient "
		    "from backstop's own address (%d %s): good", p->address, p->reply.code, esc);
	}
	probe_send(p, "RSET\r\n");
	p->step = STEP_RSET;
}

/* probe_report - the outcome, once; a failure is logged saying what it means */
static void probe_report(struct probe *p, bool ok, const char *why)
{
	if (p->reported)
		return;
	p->reported = true;
	if (!ok && !p->connected)
		log_msg(p->quiet ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARNING, "backend probe: cannot connect: %s (mail "
		    "will get 4xx, and /health says 503, until the backend is up)", why);
	else if (!ok)
		log_msg(p->quiet ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARNING, "backend probe: %s at the %s (mail will "
		    "get 4xx, and /health says 503, until the backend answers)", why, probe_stage(p));
	if (p->cb)
		p->cb(p->arg, ok, probe_stage(p), why);
}

static void probe_closed(uv_handle_t *h)
{
	struct probe *p = h->data;
	if (--p->handles == 0) {
		buf_free(&p->in);
		free(p);
	}
}

static void probe_end(struct probe *p)
{
	if (uv_is_closing((uv_handle_t *)&p->tcp))
		return;
	probe_report(p, false, "error");
	uv_close((uv_handle_t *)&p->tcp, probe_closed);
	uv_close((uv_handle_t *)&p->timer, probe_closed);
}

static void probe_timer(uv_timer_t *t)
{
	relay_check_unfinished(t->data, "gave no answer in time");
	probe_report(t->data, false, "no answer in time");
	probe_end(t->data);
}

static void probe_write_done(uv_write_t *req, int status)
{
	(void)status;
	free(req->data);
	free(req);
}

static void probe_send_bytes(struct probe *p, const void *data, size_t len)
{
	uv_write_t *w = malloc(sizeof *w);
	char *d = malloc(len);
	uv_buf_t b;
	if (d)
		memcpy(d, data, len);
	if (!w || !d) {
		free(w);
		free(d);
		probe_end(p);
		return;
	}
	w->data = d;
	b = uv_buf_init(d, (unsigned)len);
	if (uv_write(w, (uv_stream_t *)&p->tcp, &b, 1, probe_write_done) != 0) {
		free(d);
		free(w);
		probe_end(p);
	}
}

static void probe_send(struct probe *p, const char *text)
{
	probe_send_bytes(p, text, strlen(text));
}

static void probe_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
	struct probe *p = h->data;
	(void)sz;
	if (buf_reserve(&p->in, PROBE_IN_MAX - p->in.len, PROBE_IN_MAX) < 0 || p->in.len >= PROBE_IN_MAX) {
		b->base = NULL;
		b->len = 0;
		return;
	}
	b->base = p->in.data + p->in.len;
	b->len = PROBE_IN_MAX - p->in.len;
}

static void probe_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct probe *p = st->data;
	size_t pos = 0;
	(void)b;
	if (n < 0) {
		relay_check_unfinished(p, "closed the connection");
		probe_report(p, false, "closed the connection");
		probe_end(p);
		return;
	}
	p->in.len += (size_t)n;
	while (pos < p->in.len) {
		struct smtp_line line;
		struct smtp_reply_line rl;
		size_t used = smtp_line_next(&p->lr, p->in.data + pos, p->in.len - pos, PROBE_IN_MAX, &line);
		if (used == 0)
			break;
		pos += used;
		if (smtp_reply_line_parse(line.data, line.len, &rl) < 0 || smtp_reply_add(&p->reply, &rl) < 0) {
			probe_report(p, false, "not SMTP");
			probe_end(p);
			return;
		}
		if (!p->reply.complete)
			continue;
		if (p->step == STEP_MAIL || p->step == STEP_RCPT) {
			relay_check_reply(p);
		} else if (p->step == STEP_RSET) {
			probe_send(p, "QUIT\r\n");
			p->step = STEP_QUIT;
		} else if (p->step == STEP_GREETING && p->reply.code == 220) {
			char ehlo[300];
			snprintf(ehlo, sizeof ehlo, "EHLO %s\r\n", p->helo);
			probe_send(p, ehlo);
			p->step = STEP_EHLO;
		} else if (p->step == STEP_EHLO && p->reply.code / 100 == 2) {
			struct backend_caps caps;
			memset(&caps, 0, sizeof caps);
			backend__caps_parse(&caps, p->reply.text);
			backend_known_learnt(p->known, false, &caps);   /* the probe asks [backend] address */
			log_msg(p->quiet ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, "backend probe: EHLO answered; SMTPUTF8 %s, DSN %s, XCLIENT %s",
			    caps.smtputf8 ? "yes" : "no", caps.dsn ? "yes" : "no",
			    caps.xclient ? "yes" : "no");
			probe_report(p, true, NULL);
			if (p->relay_check && sees_backstop(p, &caps)) {
				/* [backend] connect_timeout bounded the probe so far */
				uv_timer_start(&p->timer, probe_timer, 3 * p->command_timeout, 0);
				probe_send(p, "MAIL FROM:<>\r\n");
				p->step = STEP_MAIL;
			} else {
				p->known->relays_for_backstop = false;
				probe_send(p, "QUIT\r\n");
				p->step = STEP_QUIT;
			}
		} else if (p->step != STEP_QUIT) {
			char esc[120];
			log_msg(p->quiet ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARNING, "backend probe: the %s got %d %s", probe_stage(p),
			    p->reply.code, log_escape(p->reply.text, strlen(p->reply.text) < 80 ?
			    strlen(p->reply.text) : 80, esc, sizeof esc));
			probe_report(p, false, p->step == STEP_GREETING ? "refused the connection" : "refused EHLO");
			probe_end(p);
			return;
		}
		memset(&p->reply, 0, sizeof p->reply);
	}
	buf_consume(&p->in, pos);
}

static void probe_connected(uv_connect_t *req, int status)
{
	struct probe *p = req->data;
	if (status < 0) {
		probe_report(p, false, uv_strerror(status));
		probe_end(p);
		return;
	}
	p->connected = true;
	if (p->proxy_header) {
		/* [backend] identity = proxy: the port expects a header before
		 * it greets; LOCAL (the probe is backstop's own connection) */
		unsigned char hdr[PROXY_OUT_V2_MAX];
		int n = proxy_out_v2(PROXY_OUT_LOCAL, NULL, NULL, hdr, sizeof hdr);
		if (n > 0)
			probe_send_bytes(p, hdr, (size_t)n);
	}
	if (uv_read_start((uv_stream_t *)&p->tcp, probe_alloc, probe_read) != 0)
		probe_end(p);
}

bool backend_probe(struct backend_loop *bl, const struct config *cfg, struct backend_known *known, bool quiet,
    backend_probe_cb cb, void *arg)
{
	struct probe *p;
	char host[256];
	unsigned port;
	struct sockaddr_storage ss;

	/* the backend TLS context is made now, so that a bad ca_file is
	 * reported at startup and reload rather than at the first mail */
	(void)backend__tls_client_for(bl, (struct config *)cfg);
	if (hostport_split(cfg->backend.address, host, sizeof host, &port) < 0)
		return false;
	memset(&ss, 0, sizeof ss);
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss) != 0)
		return false;   /* names are learnt at the first real connection */
	if ((p = calloc(1, sizeof *p)) == NULL)
		return false;
	snprintf(p->helo, sizeof p->helo, "%s", cfg->backend.helo);
	p->quiet = quiet;
	p->proxy_header = cfg->backend.identity == IDENTITY_PROXY;
	p->relay_check = cfg->backend.relay_check;
	p->identity = cfg->backend.identity;
	p->xclient = cfg->backend.xclient;
	p->command_timeout = cfg->backend.command_timeout;
	snprintf(p->address, sizeof p->address, "%s", cfg->backend.address);
	p->known = known;
	p->cb = cb;
	p->arg = arg;
	uv_tcp_init(bl->loop, &p->tcp);
	uv_timer_init(bl->loop, &p->timer);
	p->tcp.data = p->timer.data = p->creq.data = p;
	p->handles = 2;
	uv_timer_start(&p->timer, probe_timer, cfg->backend.connect_timeout, 0);
	if (uv_tcp_connect(&p->creq, &p->tcp, (struct sockaddr *)&ss, probe_connected) != 0)
		probe_end(p);
	return true;
}

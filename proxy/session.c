/*
 * session - a client connection's lifecycle: accept, read, reply, time out,
 * close; and the client's name (rdns.c answers by session id). The SMTP
 * dialogue itself is in session_cmd.c and session_data.c.
 *
 * Contract: the only way out is session_close(), which flushes pending
 * replies, aborts an unfinished backend transaction, unregisters the
 * session (so late asynchronous verdicts find nothing) and closes its
 * handles; the memory goes in the last close callback (libuv rule: free
 * only in or after close_cb).
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/backend.h"
#include "proxy/log.h"
#include "proxy/rdns.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/tls.h"
#include "proxy/worker.h"

/* the registry and the TLS read buffer are the loop's (struct worker) */
#define REGISTRY_BUCKETS WORKER_SESSION_BUCKETS

struct write_req {
	uv_write_t req;
	struct session *s;
	char *data;
};

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b);
static void on_timer(uv_timer_t *t);

unsigned sessions_count(struct worker *w)
{
	return w->nsessions;
}

static void registry_add(struct session *s)
{
	struct worker *w = s->worker;
	size_t b = s->id % REGISTRY_BUCKETS;
	s->hnext = w->sessions_by_id[b];
	w->sessions_by_id[b] = s;
	s->next = w->sessions;
	if (w->sessions)
		w->sessions->prev = s;
	w->sessions = s;
	w->nsessions++;
}

static void registry_del(struct session *s)
{
	struct worker *w = s->worker;
	struct session **pp = &w->sessions_by_id[s->id % REGISTRY_BUCKETS];
	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp == NULL)
		return;
	*pp = s->hnext;
	if (s->prev)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	w->nsessions--;
}

struct session *session_find(struct worker *w, uint64_t id)
{
	for (struct session *s = w->sessions_by_id[id % REGISTRY_BUCKETS]; s; s = s->hnext)
		if (s->id == id)
			return s;
	return NULL;
}

void session_release(struct session *s)
{
	if (--s->open_handles > 0)
		return;
	txn_free(s);
	free(s->verdict);
	free(s->refusal);
	buf_free(&s->in);
	buf_free(&s->out);
	buf_free(&s->dbuf);
	if (s->tls)
		tls_conn_free(s->tls);
	if (s->tls_server)
		tls_server_unref(s->tls_server);
	config_unref(s->cfg);
	free(s);
}

/* Issue 14: an idle session (greeted, no MAIL yet) holds at most 4 kB.
 * Between commands it holds this struct only (no input buffer, no
 * verdict, no transaction record; tests/bench/idle_bench.py measures the
 * whole); the rest of the 4 kB is libuv's and malloc's share. What a
 * transaction needs goes in struct txn_record, what a stage needs is
 * allocated for it. */
_Static_assert(sizeof(struct session) <= 3584, "struct session grew past an idle session's budget");

static void on_handle_closed(uv_handle_t *h)
{
	session_release(h->data);
}

/* ipkey_mask - keep the first prefix bits of the address bytes a[0..len) */
static void ipkey_mask(char *a, size_t len, unsigned prefix)
{
	for (size_t i = 0; i < len; i++) {
		unsigned keep = prefix > 8 * i ? prefix - 8 * (unsigned)i : 0;
		if (keep < 8)
			a[i] = (char)((unsigned char)a[i] & (0xff00u >> keep));
	}
}

/* session_peer_describe - fill ip, port and the per-IP key, unmapping IPv4-mapped
 * IPv6 addresses (a dual-stack listener reports them; SPF and logs want
 * the IPv4 form, and they count as IPv4). The key is the network of
 * [limits] ipv4_prefix / ipv6_prefix bits (family, address, prefix): one
 * IPv6 host usually holds a whole /64, so counting single addresses would
 * give it 2^64 allowances. */
void session_peer_describe(struct session *s)
{
	struct sockaddr_storage *ss = &s->peer;
	memset(s->ipkey, 0, sizeof s->ipkey);
	if (ss->ss_family == AF_INET6) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
			struct sockaddr_in a4;
			memset(&a4, 0, sizeof a4);
			a4.sin_family = AF_INET;
			a4.sin_port = a6->sin6_port;
			memcpy(&a4.sin_addr, a6->sin6_addr.s6_addr + 12, 4);
			memcpy(ss, &a4, sizeof a4);
		}
	}
	if (ss->ss_family == AF_INET) {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a4->sin_addr, s->ip, sizeof s->ip);
		s->port = ntohs(a4->sin_port);
		s->ipkey[0] = 4;
		memcpy(s->ipkey + 1, &a4->sin_addr, 4);
		ipkey_mask(s->ipkey + 1, 4, (unsigned)s->cfg->limits.ipv4_prefix);
		s->ipkey[17] = (char)s->cfg->limits.ipv4_prefix;
	} else {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a6->sin6_addr, s->ip, sizeof s->ip);
		s->port = ntohs(a6->sin6_port);
		s->ipkey[0] = 6;
		memcpy(s->ipkey + 1, &a6->sin6_addr, 16);
		ipkey_mask(s->ipkey + 1, 16, (unsigned)s->cfg->limits.ipv6_prefix);
		s->ipkey[17] = (char)s->cfg->limits.ipv6_prefix;
	}
	/* [limits] max_connections_per_net: the same from the address, per
	 * net_ipv4_prefix / net_ipv6_prefix bits, its family byte marked so
	 * that it never meets a per-IP key of the same network */
	memset(s->netkey, 0, sizeof s->netkey);
	if (ss->ss_family == AF_INET) {
		s->netkey[0] = 4 | 0x40;
		memcpy(s->netkey + 1, &((struct sockaddr_in *)ss)->sin_addr, 4);
		ipkey_mask(s->netkey + 1, 4, (unsigned)s->cfg->limits.net_ipv4_prefix);
		s->netkey[17] = (char)s->cfg->limits.net_ipv4_prefix;
	} else {
		s->netkey[0] = 6 | 0x40;
		memcpy(s->netkey + 1, &((struct sockaddr_in6 *)ss)->sin6_addr, 16);
		ipkey_mask(s->netkey + 1, 16, (unsigned)s->cfg->limits.net_ipv6_prefix);
		s->netkey[17] = (char)s->cfg->limits.net_ipv6_prefix;
	}
}

static void connect_filtered(struct session *s, const struct filter_verdict *v)
{
	if (v->result == FILTER_TEMPFAIL) {
		s->metrics->refused[METRICS_REFUSED_CONNECT_CHECK]++;
		s->reply_check = metrics_check_of_filter(v->filter);
		session_reply(s, 421, v->esc[0] ? v->esc : NULL, "%s %s", s->cfg->server.hostname,
		    v->text[0] ? v->text : "Service not available");
		session_close(s, "tempfail at connect");
		return;
	}
	if (v->result == FILTER_REJECT) {
		/* Refuse at MAIL, RCPT and DATA with the check's own reply rather
		 * than with a 554 greeting (which is the only refusal a greeting
		 * may carry): clients log a 5xx to a command better than one to
		 * the greeting, as Postfix's smtpd_delay_reject argues. */
		s->refusal = malloc(sizeof *s->refusal);
		if (s->refusal == NULL) {
			session_close(s, "out of memory");
			return;
		}
		*s->refusal = *v;
	}
	session_banner(s);
}

/* rdns_answered - the client's name (proxy/rdns.h), found by session id:
 * a session that closed meanwhile is simply not found */
static void rdns_answered(void *owner, uint64_t id, const char *name, bool temporary)
{
	struct session *s = session_find(owner, id);

	if (s == NULL || s->closing)
		return;
	snprintf(s->client_name, sizeof s->client_name, "%s", name ? name : "unknown");
	s->rdns_temporary = name == NULL && temporary;
	s->rdns = RDNS_DONE;
	session_rdns_done(s);
}

/* session_rdns_start - look the client up (if [dns] reverse_lookup; an
 * outbound client is one of ours, its name is not needed) */
static void session_rdns_start(struct session *s)
{
	if (!s->cfg->dns.reverse_lookup || s->outbound) {
		s->rdns = RDNS_DONE;
		return;
	}
	s->rdns = RDNS_PENDING;
	if (rdns_start(s->worker->dns, &s->peer, s->worker, s->id, rdns_answered) < 0)
		s->rdns = RDNS_DONE;
}

void session_accept(struct listener *l, uv_stream_t *server)
{
	struct session *s = calloc(1, sizeof *s);
	struct worker *w = l->worker;
	uv_loop_t *loop = w->loop;
	int namelen = sizeof s->peer;

	if (s == NULL) {
		log_error("out of memory accepting a connection");
		return;
	}
	s->worker = w;
	s->cfg = config_ref(server_config(w));
	s->metrics = w->metrics;
	s->backend_known = &w->backend_known;
	s->backend_pool = &w->backend_pool;
	s->listener = l;
	s->outbound = l->outbound;
	uv_tcp_init(loop, &s->tcp);
	s->tcp.data = s;
	s->open_handles = 1;
	if (uv_accept(server, (uv_stream_t *)&s->tcp) != 0) {
		uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
		return;
	}
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
	s->open_handles++;
	uv_tcp_nodelay(&s->tcp, 1);
	if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&s->peer, &namelen) != 0) {
		s->closing = true;
		uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
		uv_close((uv_handle_t *)&s->timer, on_handle_closed);
		return;
	}
	session_peer_describe(s);
	if (w->session_id_base == 0)
		w->session_id_base = ((uint64_t)uv_hrtime() & 0xffffff) << 24;
	s->id = ++w->next_session_id;
	snprintf(s->sid, sizeof s->sid, "%012llX",
	    (unsigned long long)((w->session_id_base + s->id) & 0xffffffffffffULL));
	strcpy(s->client_name, "unknown");
	s->started_ms = uv_now(loop);
	s->state = SMTP_STATE_CONNECTED;
	if ((s->tls_server = server_tls(w)) != NULL)
		tls_server_ref(s->tls_server);
	registry_add(s);
	session_ipcount(s, +1);
	s->metrics->connections++;
	if (session_proxy_wanted(s)) {
		/* the PROXY protocol header comes first: it names the client */
		session_proxy_begin(s);
		return;
	}
	session_connected(s);
}

void session_ipcount(struct session *s, int delta)
{
	if (delta > 0) {
		s->ip_counted = ipcount_add(s->worker, s->ipkey, +1) > 0;
		s->net_counted = ipcount_add(s->worker, s->netkey, +1) > 0;
		return;
	}
	if (s->ip_counted)
		ipcount_add(s->worker, s->ipkey, -1);
	if (s->net_counted)
		ipcount_add(s->worker, s->netkey, -1);
	s->ip_counted = s->net_counted = false;
}

void session_connected(struct session *s)
{
	char via[96] = "";

	if (s->proxied)
		snprintf(via, sizeof via, " via proxy [%s]:%u", s->proxy_ip, s->proxy_port);
	log_info("%s: connect from [%s]:%u to %s%s%s", s->sid, s->ip, s->port, s->listener->addr,
	    s->outbound ? " (outbound)" : "", via);

	if (s->worker->nsessions > s->cfg->limits.max_connections) {
		log_warn("%s: refused [%s]:%u: too many connections (max_connections = %lu)",
		    s->sid, s->ip, s->port, s->cfg->limits.max_connections);
		s->metrics->refused[METRICS_REFUSED_MAX_CONNECTIONS]++;
		s->reply_check = METRICS_CHECK_LIMITS;
		session_reply(s, 421, "4.3.2", "%s Too many connections, try again later",
		    s->cfg->server.hostname);
		session_close(s, "max_connections");
		return;
	}
	if (ipcount_add(s->worker, s->ipkey, 0) > s->cfg->limits.max_connections_per_ip) {
		log_warn("%s: refused [%s]:%u: too many connections from this address (max_connections_per_ip = %lu, "
		    "counted per /%u)", s->sid, s->ip, s->port, s->cfg->limits.max_connections_per_ip,
		    (unsigned char)s->ipkey[17]);
		s->metrics->refused[METRICS_REFUSED_MAX_CONNECTIONS_PER_IP]++;
		s->reply_check = METRICS_CHECK_LIMITS;
		session_reply(s, 421, "4.7.0", "%s Too many connections from your address, try again later",
		    s->cfg->server.hostname);
		session_close(s, "max_connections_per_ip");
		return;
	}
	if (s->cfg->limits.max_connections_per_net > 0 &&
	    ipcount_add(s->worker, s->netkey, 0) > s->cfg->limits.max_connections_per_net) {
		log_warn("%s: refused [%s]:%u: too many connections from this network (max_connections_per_net = %lu, "
		    "counted per /%u)", s->sid, s->ip, s->port, s->cfg->limits.max_connections_per_net,
		    (unsigned char)s->netkey[17]);
		s->metrics->refused[METRICS_REFUSED_MAX_CONNECTIONS_PER_NET]++;
		s->reply_check = METRICS_CHECK_LIMITS;
		session_reply(s, 421, "4.7.0", "%s Too many connections from your network (max_connections_per_net), "
		    "try again later", s->cfg->server.hostname);
		session_close(s, "max_connections_per_net");
		return;
	}
	session_rdns_start(s);
	session_read_start(s);
	if (s->cfg->server.greet_pause > 0) {
		/* postscreen's pregreet test: a client that talks before the
		 * banner is a bot that does not wait for the server (RFC 5321 3.1). */
		s->wait = WAIT_GREET;
		uv_timer_start(&s->timer, on_timer, s->cfg->server.greet_pause, 0);
		return;
	}
	filters_run(s, FILTER_CONNECT, connect_filtered);
	session_flush(s);
	session_timer_arm(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct session *s = h->data;
	(void)suggested;

	if (s->tls) {
		b->base = s->worker->session_tls_scratch;
		b->len = sizeof s->worker->session_tls_scratch;
		return;
	}
	/* The input buffer is allocated at the first byte a client sends: an
	 * idle connection costs no buffer. */
	if (s->in.size < SESSION_IN_MAX && buf_reserve(&s->in, SESSION_IN_MAX - s->in.len, SESSION_IN_MAX) < 0) {
		b->base = NULL;
		b->len = 0;
		return;
	}
	b->base = s->in.data + s->in.len;
	b->len = SESSION_IN_MAX - s->in.len;
}

void session_read_start(struct session *s)
{
	if (!s->reading && !s->closing) {
		if (uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read) == 0)
			s->reading = true;
	}
}

void session_read_stop(struct session *s)
{
	if (s->reading) {
		uv_read_stop((uv_stream_t *)&s->tcp);
		s->reading = false;
	}
}

static void tls_send_pending(struct session *s);

/* tls_pump - decrypt what the TLS engine holds into the input buffer. */
static void tls_pump(struct session *s)
{
	bool was_done = tls_conn_handshake_done(s->tls);

	if (s->in.size < SESSION_IN_MAX &&
	    buf_reserve(&s->in, SESSION_IN_MAX - s->in.len, SESSION_IN_MAX) < 0) {
		session_close(s, "out of memory");
		return;
	}
	for (;;) {
		size_t room = SESSION_IN_MAX - s->in.len, got = 0;
		int rc;
		if (room == 0)
			break;
		rc = tls_conn_read(s->tls, s->in.data + s->in.len, room, &got);
		s->in.len += got;
		if (!was_done && tls_conn_handshake_done(s->tls)) {
			was_done = true;
			metrics_tls_handshake(s->metrics, tls_conn_version(s->tls), true);
			tls_send_pending(s);
			session_starttls_done(s, true);
		}
		if (rc == TLS_WANT)
			break;
		if (rc == TLS_CLOSED) {
			session_close(s, "TLS closed by client");
			return;
		}
		if (rc == TLS_ERROR) {
			if (!was_done) {
				log_info("%s: TLS handshake failed with [%s]:%u: %s", s->sid, s->ip, s->port,
				    tls_conn_error(s->tls));
				metrics_tls_handshake(s->metrics, tls_conn_version_tried(s->tls), false);
				session_starttls_done(s, false);
			} else {
				log_info("%s: TLS error with [%s]:%u: %s", s->sid, s->ip, s->port,
				    tls_conn_error(s->tls));
			}
			tls_send_pending(s);
			session_close(s, "TLS error");
			return;
		}
		if (got == 0 && rc == TLS_OK && was_done)
			continue;
	}
	tls_send_pending(s);
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b)
{
	struct session *s = stream->data;

	if (s->closing)
		return;
	if (n < 0) {
		if (n == UV_ENOBUFS) {
			session_read_stop(s);
			return;
		}
		log_info("%s: lost connection from [%s]:%u after %s%s%s", s->sid, s->ip, s->port,
		    smtp_state_name(s->state), n == UV_EOF ? "" : ": ", n == UV_EOF ? "" : uv_strerror((int)n));
		if (s->txn.active)
			session_summary(s, "lost connection");
		session_close(s, NULL);
		return;
	}
	if (n == 0)
		return;
	if (s->tls) {
		size_t before = s->in.len;
		if (tls_conn_feed(s->tls, b->base, (size_t)n) != 0) {
			session_close(s, "TLS input error");
			return;
		}
		tls_pump(s);
		if (s->closing)
			return;
		/* a record dripped a byte at a time decrypts to nothing until
		 * its last byte: its first starts the line's deadline */
		s->tls_rx_raw = tls_conn_handshake_done(s->tls) && s->in.len == before;
	} else {
		s->in.len += (size_t)n;
	}
	/* the header is not complete yet, or it was refused, or it came
	 * without any of the client's bytes after it */
	if (s->wait == WAIT_PROXY && (!session_proxy_input(s) || s->in.len == 0))
		return;
	if (s->wait == WAIT_GREET) {
		char esc[128];
		/* s->in: what came after a PROXY header in the same read, too */
		log_info("%s: PREGREET %zu bytes from [%s]:%u: %s", s->sid, s->in.len, s->ip, s->port,
		    log_escape(s->in.data, s->in.len < 64 ? s->in.len : 64, esc, sizeof esc));
		s->metrics->refused[METRICS_REFUSED_PREGREET]++;
		s->reply_check = METRICS_CHECK_PROTOCOL;
		session_reply(s, 554, "5.5.1", "%s Error: SMTP protocol violation: talked before the greeting",
		    s->cfg->server.hostname);
		session_close(s, "pregreet");
		return;
	}
	session_process(s);
}

void session_process(struct session *s)
{
	if (s->in_process)
		return;
	s->in_process = true;
	bool line_done = false;   /* a command line was completed in this call */
again:
	while (!s->closing && s->wait == WAIT_NONE) {
		struct smtp_line line;
		size_t n;

		/* a client that sends commands without reading the replies waits
		 * until it reads them: replies never pile up without bound */
		if (s->out.len + uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) > SESSION_OUT_MAX) {
			s->out_blocked = true;
			break;
		}

		if (s->state == SMTP_STATE_DATA) {
			if (!session_data_process(s))
				break;
			continue;
		}
		if (s->inpos >= s->in.len)
			break;
		/* a TLS handshake in plaintext: it need not hold a line feed for
		 * a long while, so it is recognised by its first bytes */
		if (!s->skip_to_eol && smtp_foreign_start(s->in.data + s->inpos, s->in.len - s->inpos)
		    == SMTP_FOREIGN_TLS) {
			session_non_smtp(s, SMTP_FOREIGN_TLS, s->in.data + s->inpos, s->in.len - s->inpos);
			break;
		}
		n = smtp_line_next(&s->lr, s->in.data + s->inpos, s->in.len - s->inpos,
		    SESSION_CMD_MAX, &line);
		if (n == 0)
			break;
		s->inpos += n;
		if (!(line.flags & SMTP_LINE_PARTIAL))
			line_done = true;
		if (s->skip_to_eol) {
			if (!(line.flags & SMTP_LINE_PARTIAL))
				s->skip_to_eol = false;
			continue;
		}
		if (line.flags & SMTP_LINE_PARTIAL) {
			/* a line never completed never reaches session_command:
			 * max_errors is checked here too, or over-long lines got
			 * 500 after 500 until session_timeout. (session_reply
			 * counts the 500.) */
			s->skip_to_eol = true;
			if (session_errors_exceeded(s))
				break;
			session_reply(s, 500, "5.5.2", "Error: line too long (limit %d)", SESSION_CMD_MAX);
			continue;
		}
		session_command(s, &line);
	}
	if (s->inpos > 0) {
		buf_consume(&s->in, s->inpos);
		s->inpos = 0;
	}
	/* everything read is processed: the input buffer (SESSION_IN_MAX)
	 * goes until the client sends again (on_alloc), so a session idle
	 * between commands holds none. Content keeps it: it streams. */
	if (s->in.len == 0 && s->state != SMTP_STATE_DATA)
		buf_free(&s->in);
	if (s->tls && !s->closing && s->in.len < SESSION_IN_MAX && s->wait == WAIT_NONE) {
		size_t before = s->in.len;
		tls_pump(s);
		if (s->in.len > before && !s->closing)
			goto again;
	}
	s->in_process = false;
	if (s->closing)
		return;
	/* a command line is due within command_timeout of its first byte (as
	 * Postfix's smtpd_per_record_deadline): otherwise a client dripping
	 * one byte a second into a line that never ends restarts the idle
	 * timer with each byte and holds its slot until session_timeout.
	 * Under TLS a line starts with its record: a record dripped a byte at
	 * a time decrypts to nothing until its last byte */
	if (s->state != SMTP_STATE_DATA && (s->in.len > 0 || s->skip_to_eol ||
	    (s->tls != NULL && tls_conn_handshake_done(s->tls) &&
	    (s->tls_rx_raw || tls_conn_input_pending(s->tls))))) {
		if (line_done || s->line_started_ms == 0)
			s->line_started_ms = uv_now(s->worker->loop);
	} else {
		s->line_started_ms = 0;
	}
	session_flush(s);
	/* also while waiting: TLS records that only make output (KeyUpdate
	 * requests, renegotiation refusals) must not pile up either */
	if (uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) > SESSION_OUT_MAX)
		s->out_blocked = true;
	if (s->in.len >= SESSION_IN_MAX || s->out_blocked)
		session_read_stop(s);
	else
		session_read_start(s);
	session_timer_arm(s);
}

void session_resume(struct session *s)
{
	s->wait = WAIT_NONE;
	session_process(s);
}

/* data_clock - data_min_rate charges the client only for the time
 * backstop was ready to take its content: the clock stops while a check or
 * the backend holds the session (wait) or reading is stopped (the input
 * buffer full, replies not read), and goes on when both end. Called
 * wherever the timer is armed. */
static void data_clock(struct session *s)
{
	uint64_t now = uv_now(s->worker->loop);
	bool held = s->wait != WAIT_NONE || !s->reading;

	if (s->state != SMTP_STATE_DATA) {
		s->txn.data_paused_since = 0;
		return;
	}
	if (held && s->txn.data_paused_since == 0) {
		s->txn.data_paused_since = now > 0 ? now : 1;
	} else if (!held && s->txn.data_paused_since != 0) {
		s->txn.data_paused_ms += now - s->txn.data_paused_since;
		s->txn.data_paused_since = 0;
	}
}

/* data_rate_due - when the content must be complete at data_min_rate,
 * the time backstop held it not counted */
static uint64_t data_rate_due(const struct session *s)
{
	const struct config *c = s->cfg;
	uint64_t paused = s->txn.data_paused_ms, now = uv_now(s->worker->loop);

	if (s->txn.data_paused_since != 0 && now > s->txn.data_paused_since)
		paused += now - s->txn.data_paused_since;
	return s->txn.data_started_ms + paused + c->limits.data_timeout +
	    s->txn.data.bytes * 1000 / c->limits.data_min_rate;
}

void session_timer_arm(struct session *s)
{
	const struct config *c = s->cfg;
	uint64_t now = uv_now(s->worker->loop), t, left;

	if (s->closing || s->wait == WAIT_GREET)
		return;
	data_clock(s);
	if (s->wait == WAIT_PROXY) {   /* a deadline for the whole header */
		t = s->proxy_deadline > now ? s->proxy_deadline - now : 1;
		uv_timer_start(&s->timer, on_timer, t, 0);
		return;
	}
	if (s->state == SMTP_STATE_DATA) {
		t = c->limits.data_timeout;
		if (c->limits.data_min_rate > 0) {
			/* data_timeout is an idle time: a client dripping a byte
			 * now and then would hold its backend connection until
			 * session_timeout. The content as a whole is due by
			 * data_timeout plus its size at data_min_rate (Postfix's
			 * smtpd_min_data_rate), so a fast sender is never cut. */
			uint64_t due = data_rate_due(s);
			uint64_t rate_left = due > now ? due - now : 1;
			if (rate_left < t)
				t = rate_left;
		}
	} else if (s->state == SMTP_STATE_CONNECTED)
		t = c->limits.greeting_timeout;
	else
		t = c->limits.command_timeout;
	if (s->state != SMTP_STATE_DATA && s->line_started_ms != 0) {
		/* a deadline for the incomplete line, not an idle time */
		uint64_t due = s->line_started_ms + t;
		t = due > now ? due - now : 1;
	}
	if (s->wait == WAIT_TLS)   /* a deadline, not an idle time */
		t = s->tls_deadline > now ? s->tls_deadline - now : 1;
	left = now - s->started_ms >= c->limits.session_timeout ? 1 :
	    c->limits.session_timeout - (now - s->started_ms);
	if (s->wait == WAIT_BACKEND || s->wait == WAIT_RDNS)
		t = left;    /* the backend keeps its own time */
	if (s->wait == WAIT_FILTER)   /* the runner's deadline for the filter */
		t = s->filter_deadline > now ? s->filter_deadline - now : 1;
	uv_timer_start(&s->timer, on_timer, t < left ? t : left, 0);
}

static void on_timer(uv_timer_t *t)
{
	struct session *s = t->data;

	if (s->closing) {
		/* the peer does not read our last reply: stop waiting for it */
		if (!uv_is_closing((uv_handle_t *)&s->tcp))
			uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
		if (!uv_is_closing((uv_handle_t *)&s->timer))
			uv_close((uv_handle_t *)&s->timer, on_handle_closed);
		return;
	}
	if (s->wait == WAIT_PROXY) {
		session_proxy_timeout(s);
		return;
	}
	if (s->wait == WAIT_GREET) {
		s->wait = WAIT_NONE;
		filters_run(s, FILTER_CONNECT, connect_filtered);
		session_process(s);
		return;
	}
	if (s->wait == WAIT_FILTER && uv_now(s->worker->loop) >= s->filter_deadline) {
		filters_timed_out(s);
		return;
	}
	if (s->wait == WAIT_TLS)
		metrics_tls_handshake(s->metrics, tls_conn_version_tried(s->tls), false);
	if (s->state == SMTP_STATE_DATA && s->wait == WAIT_NONE && s->cfg->limits.data_min_rate > 0 &&
	    uv_now(s->tcp.loop) >= data_rate_due(s))
		log_info("%s: timeout after DATA from [%s]:%u: %llu bytes in %llu ms, slower than "
		    "data_min_rate (%lu bytes/s after data_timeout)", s->sid, s->ip, s->port,
		    (unsigned long long)s->txn.data.bytes,
		    (unsigned long long)(uv_now(s->tcp.loop) - s->txn.data_started_ms),
		    s->cfg->limits.data_min_rate);
	else
		log_info("%s: timeout after %s from [%s]:%u", s->sid,
		    s->wait == WAIT_TLS ? "STARTTLS handshake" : smtp_state_name(s->state), s->ip, s->port);
	if (s->txn.active)
		session_summary(s, "timeout");
	if (!s->tls || tls_conn_handshake_done(s->tls)) {
		s->reply_check = METRICS_CHECK_LIMITS;
		session_reply(s, 421, "4.4.2", "%s Error: timeout exceeded", s->cfg->server.hostname);
	}
	session_close(s, "timeout");
}

/* ---- output ---- */

static void on_write(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct session *s = w->s;
	free(w->data);
	free(w);
	if (status < 0 && !s->closing) {
		log_info("%s: write to [%s]:%u failed: %s", s->sid, s->ip, s->port, uv_strerror(status));
		session_close(s, NULL);
		return;
	}
	if (s->out_blocked && !s->closing &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) <= SESSION_OUT_MAX / 2) {
		s->out_blocked = false;
		session_process(s);
	}
}

static void write_raw(struct session *s, char *data, size_t len)
{
	struct write_req *w;
	uv_buf_t b = uv_buf_init(data, (unsigned)len);
	int n;

	/* most replies fit the socket buffer at once: no request, no epoll
	 * re-arm (libuv queues nothing when there is nothing left) */
	n = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
	if (n == (int)len) {
		free(data);
		return;
	}
	if (n > 0) {
		memmove(data, data + n, len - (size_t)n);
		len -= (size_t)n;
	} else if (n != UV_EAGAIN) {
		/* the connection is broken: the read side reports it */
		free(data);
		return;
	}
	if ((w = malloc(sizeof *w)) == NULL) {
		free(data);
		return;
	}
	w->s = s;
	w->data = data;
	b = uv_buf_init(data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_write) != 0) {
		free(data);
		free(w);
	}
}

static void tls_send_pending(struct session *s)
{
	const char *p;
	size_t n;
	while ((n = tls_conn_pending(s->tls, &p)) > 0) {
		char *copy = malloc(n);
		if (copy == NULL)
			return;
		memcpy(copy, p, n);
		tls_conn_consume(s->tls, n);
		write_raw(s, copy, n);
	}
}

void session_flush(struct session *s)
{
	size_t len;
	char *data;

	if (s->out.len == 0 || uv_is_closing((uv_handle_t *)&s->tcp))
		return;
	if (s->tls) {
		tls_conn_write(s->tls, s->out.data, s->out.len);
		buf_free(&s->out);   /* the engine holds a copy; idle holds none */
		tls_send_pending(s);
		return;
	}
	data = buf_steal(&s->out, &len);
	write_raw(s, data, len);
}

void session_reply(struct session *s, int code, const char *esc, const char *fmt, ...)
{
	char text[1024], wire[2048];
	va_list ap;
	long n;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	n = smtp_reply_format(wire, sizeof wire, code, esc, text);
	if (n < 0)
		n = smtp_reply_format(wire, sizeof wire, code, esc, "Error");
	if (code >= 400) {
		/* the summary log line quotes the reply as the client got it */
		char esc_text[SESSION_REPLY_LOG_MAX - 32];
		log_escape(text, strcspn(text, "\n"), esc_text, sizeof esc_text);
		snprintf(s->last_refusal, sizeof s->last_refusal, "%d%s%s %s", code,
		    esc && esc[0] ? " " : "", esc ? esc : "", esc_text);
	}
	/* RFC 5321 4.2.2: 500-503 and 555 are the client's protocol errors;
	 * refusals (550 for an unknown user, ...) do not count */
	if ((code >= 500 && code <= 503) || code == 555)
		s->errors++;
	if (s->txn.eod_pending) {
		/* the first reply after the final dot is the answer to it */
		s->txn.eod_pending = false;
		metrics_eod(s->metrics, uv_now(s->worker->loop) - s->txn.eod_started_ms);
	}
	if (code >= 400)
		metrics_refusal(s->metrics, s->reply_check != METRICS_CHECK_AUTO ? s->reply_check :
		    metrics_check_of_reply(code, esc), code);
	s->reply_check = METRICS_CHECK_AUTO;
	if (buf_append(&s->out, wire, (size_t)n, SESSION_OUT_MAX) < 0) {
		/* the client sends commands but does not read the replies */
		log_warn("%s: [%s]:%u does not read its replies; closing", s->sid, s->ip, s->port);
		session_close(s, NULL);
	}
}

void session_reply_smtp(struct session *s, const struct smtp_reply *r)
{
	s->reply_check = METRICS_CHECK_BACKEND;
	session_reply(s, r->code, r->esc[0] ? r->esc : NULL, "%s", r->text);
}

void session_reply_verdict(struct session *s, const struct filter_verdict *v)
{
	s->reply_check = metrics_check_of_filter(v->filter);
	session_reply(s, v->code, v->esc, "%s", v->text);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct session *s = req->data;
	(void)status;
	if (!uv_is_closing((uv_handle_t *)&s->tcp))
		uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
	if (!uv_is_closing((uv_handle_t *)&s->timer))
		uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

void session_close(struct session *s, const char *why)
{
	if (s->closing)
		return;
	if (why)
		log_info("%s: disconnect from [%s]:%u after %s (%s)", s->sid, s->ip, s->port,
		    smtp_state_name(s->state), why);
	session_flush(s);
	s->closing = true;
	if (s->tls) {
		tls_conn_shutdown(s->tls);
		tls_send_pending(s);
	}
	filters_session_end(s);
	registry_del(s);
	session_ipcount(s, -1);
	if (s->be) {
		if (s->txn.active || s->state == SMTP_STATE_DATA)
			backend_abort(s->be);
		else if (!session_backend_pool_put(s))
			backend_quit(s->be);
	}
	session_read_stop(s);
	s->shutdown_req.data = s;
	if (!s->tls && uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) == 0) {
		/* the last reply has left (write_raw wrote it at once): close
		 * now; close(2) sends the FIN a shutdown would, and there is no
		 * queue to wait for (saves the shutdown, its epoll round and the
		 * timer per session) */
		on_shutdown(&s->shutdown_req, 0);
	} else {
		/* give the last reply 5 s to leave, then close regardless */
		uv_timer_start(&s->timer, on_timer, 5000, 0);
		if (uv_shutdown(&s->shutdown_req, (uv_stream_t *)&s->tcp, on_shutdown) != 0)
			on_shutdown(&s->shutdown_req, 0);
	}
	/* s is freed by its handles' close callbacks, on a later loop turn */
	if (server_draining(s->worker) && s->worker->nsessions == 0)
		server_stop(s->worker);
}

/* ---- the loop's ---- */

void sessions_drain(struct worker *w)
{
	/* every session may finish what it is doing until drain_time; it
	 * gets 421 at its next MAIL or after its current transaction */
	for (struct session *s = w->sessions; s; s = s->next)
		s->drain_after_txn = true;
}

unsigned sessions_close_all(struct worker *w, const char *why, bool force)
{
	struct session *s, *next;
	unsigned left = 0;

	for (s = w->sessions; s; s = next) {
		next = s->next;
		if (!force && s->txn.eod_pending && s->txn.dot_at_backend && s->wait == WAIT_BACKEND) {
			/* a 421 now and the backend's 250 later would be a message
			 * delivered that the client sends again */
			left++;
			continue;
		}
		if (s->txn.active)
			session_summary(s, "shutdown");
		if (s->wait != WAIT_PROXY)   /* nothing before a PROXY header */
			session_reply(s, 421, "4.3.2", "%s Service shutting down, try again later",
			    s->cfg->server.hostname);
		session_close(s, why);
	}
	return left;
}

/*
 * fuzz_peers - the real backstop (config, server, sessions, backend client)
 * in this process, on one libuv loop with a fake client and a fake backend
 * MTA, over real loopback TCP. Used by fuzz_session (the client's bytes
 * come from the input) and fuzz_backend (the backend's bytes do).
 *
 * No seam in proxy/ is needed: backstop listens on a loopback port as in
 * production; the harness is another socket user of the same loop.
 *
 * One exchange: the client connects and writes its script at once (a
 * pipelining client); whenever the loop goes idle (nothing read by any
 * peer for a few iterations), the fake backend gets a tick (fuzz_backend:
 * its next chunk, or the close); when it has nothing to do, the client
 * half-closes and the exchange runs until every connection is gone.
 * backstop's own timers (1-2 s) bound every wait; a hang beyond them is a
 * finding (libFuzzer -timeout).
 *
 * A target may watch the fake backend (fuzz_backend_pool does): define,
 * before including this file, FP_CONN_EXTRA (fields added to struct
 * fp_conn, zeroed at accept), FP_ON_ACCEPT(c), FP_ON_SEND(c, data, len)
 * (each write towards backstop), FP_ON_LINE(c, line) (each command line
 * backstop sends, outside content; true: handled, no scripted answer) and
 * FP_TICK_SKIP(c) (true: the idle tick leaves this connection alone).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "filters/filter.h"
#include "proxy/backend.h"
#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/worker.h"

#define FP_MAX_CHUNKS 64
/* how the oracle knows backstop's 250 to an end of data (its reply text) */
#define FP_MARK "(backstop id "
#define FP_MARK_LEN (sizeof FP_MARK - 1)

/* what the fake backend says: scripted (chunks, fuzz_backend) or a
 * well-behaved responder with a few refusal modes (fuzz_session) */
struct fp_backend_script {
	bool scripted;
	const uint8_t *chunk[FP_MAX_CHUNKS];
	size_t chunk_len[FP_MAX_CHUNKS];
	size_t nchunks;
	bool close_with_rst;
	unsigned mode;          /* responder: refusal mode, see fp_respond() */
};

struct fp_conn {
	uv_tcp_t tcp;
	char line[1024];
	size_t linelen;
	bool in_data;
	bool closed;
	size_t next_chunk;
	bool dot_seen;          /* a final dot arrived, nothing sent since */
	char sent_tail[FP_MARK_LEN - 1];   /* the last bytes sent towards backstop */
	size_t sent_tail_len;
	struct fp_conn *next;
#ifdef FP_CONN_EXTRA
	FP_CONN_EXTRA
#endif
};

static uv_loop_t *fp_loop;
static struct worker fp_worker;   /* backstop's loop state, on fp_loop */
static uv_tcp_t fp_listener;
static struct fp_conn *fp_conns;
static struct fp_backend_script fp_script;
static unsigned long fp_progress;
static unsigned fp_backend_accepts;   /* dots answered with 2xx first byte */

static uv_tcp_t fp_client;
static uv_connect_t fp_creq;
static uv_write_t fp_wreq;
static uv_shutdown_t fp_sreq;
static bool fp_client_open, fp_client_shut;
/* the client's own address (NULL: the kernel's choice, 127.0.0.1) */
static const char *fp_client_ip;
/* fp_exchange leaves the backend connections open (a pool target parks
 * them for the next exchange) */
static bool fp_keep_backend;
static char *fp_client_rx;
static size_t fp_client_rxlen, fp_client_rxcap;

static void fp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	static char scratch[65536];
	(void)h;
	(void)suggested;
	b->base = scratch;
	b->len = sizeof scratch;
}

static void fp_conn_closed(uv_handle_t *h)
{
	struct fp_conn *c = h->data, **pp;
	for (pp = &fp_conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	free(c);
}

static void fp_conn_close(struct fp_conn *c, bool rst)
{
	if (c->closed)
		return;
	c->closed = true;
	if (rst)
		uv_tcp_close_reset(&c->tcp, fp_conn_closed);
	else
		uv_close((uv_handle_t *)&c->tcp, fp_conn_closed);
}

static void fp_written(uv_write_t *req, int status)
{
	(void)status;
	free(req->data);
	free(req);
}

/* fp_unmark - the oracle recognises backstop's 250 to an end of data by
 * its FP_MARK text, which backstop also relays from the backend's replies
 * to other commands: the backend may not forge it, not even split over
 * two sends (one line arrives at backstop in pieces). So every FP_MARK in
 * the stream this connection sends that ends inside buf loses its last
 * byte (always in buf); the tail of the stream is kept for the next send. */
static void fp_unmark(struct fp_conn *c, char *buf, size_t len)
{
	char joined[2 * FP_MARK_LEN];
	size_t tail = c->sent_tail_len, head = len < FP_MARK_LEN - 1 ? len : FP_MARK_LEN - 1;

	/* a mark that straddles the old tail and buf */
	memcpy(joined, c->sent_tail, tail);
	memcpy(joined + tail, buf, head);
	for (size_t i = 0; i + FP_MARK_LEN <= tail + head; i++)
		if (i + FP_MARK_LEN > tail && memcmp(joined + i, FP_MARK, FP_MARK_LEN) == 0)
			buf[i + FP_MARK_LEN - 1 - tail] = '-';
	/* marks wholly inside buf */
	for (char *p = buf; (p = memmem(p, len - (size_t)(p - buf), FP_MARK, FP_MARK_LEN)) != NULL; )
		p[FP_MARK_LEN - 1] = '-';
	/* the new tail: the last FP_MARK_LEN - 1 bytes of tail + buf */
	if (len >= FP_MARK_LEN - 1) {
		memcpy(c->sent_tail, buf + len - (FP_MARK_LEN - 1), FP_MARK_LEN - 1);
		c->sent_tail_len = FP_MARK_LEN - 1;
	} else {
		size_t keep = tail + len > FP_MARK_LEN - 1 ? FP_MARK_LEN - 1 - len : tail;
		memmove(c->sent_tail, c->sent_tail + tail - keep, keep);
		memcpy(c->sent_tail + keep, buf, len);
		c->sent_tail_len = keep + len;
	}
}

static void fp_send(struct fp_conn *c, const void *data, size_t len)
{
	uv_write_t *req;
	uv_buf_t b;

	if (c->closed || len == 0)
		return;
#ifdef FP_ON_SEND
	FP_ON_SEND(c, (const char *)data, len);
#endif
	if (c->dot_seen) {
		if (((const char *)data)[0] == '2')
			fp_backend_accepts++;
		c->dot_seen = false;
	}
	req = malloc(sizeof *req);
	b.base = malloc(len);
	if (req == NULL || b.base == NULL)
		abort();
	memcpy(b.base, data, len);
	fp_unmark(c, b.base, len);
	b.len = len;
	req->data = b.base;
	if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, fp_written) != 0) {
		free(b.base);
		free(req);
	}
}

static void fp_say(struct fp_conn *c, const char *s)
{
	fp_send(c, s, strlen(s));
}

/* scripted backend: the next chunk, or the end of the script */
static bool fp_next_chunk(struct fp_conn *c)
{
	if (c->closed)
		return false;
	if (c->next_chunk >= fp_script.nchunks) {
		fp_conn_close(c, fp_script.close_with_rst);
		return true;
	}
	fp_send(c, fp_script.chunk[c->next_chunk], fp_script.chunk_len[c->next_chunk]);
	c->next_chunk++;
	return true;
}

/* the well-behaved responder; mode bits make it refuse at one stage */
static void fp_respond(struct fp_conn *c, const char *line)
{
	unsigned m = fp_script.mode;

	if (strncasecmp(line, "EHLO", 4) == 0) {
		char ehlo[512];
		/* one write: a reply split over segments is fuzz_backend's job */
		snprintf(ehlo, sizeof ehlo, "%s%s%s",
		    "250-fake.example.net\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250-8BITMIME\r\n",
		    (m & 8) ? "250-XCLIENT NAME ADDR PROTO HELO\r\n" :
		    (m & 16) ? "250-XFORWARD NAME ADDR PROTO HELO SOURCE\r\n" : "",
		    "250 ENHANCEDSTATUSCODES\r\n");
		fp_say(c, ehlo);
	} else if (strncasecmp(line, "XCLIENT", 7) == 0) {
		fp_say(c, (m & 32) ? "550 5.7.0 not authorized\r\n" : "220 fake.example.net ESMTP\r\n");
	} else if (strncasecmp(line, "MAIL", 4) == 0) {
		fp_say(c, (m & 7) == 1 ? "421 4.3.0 going down\r\n" : "250 2.1.0 Ok\r\n");
		if ((m & 7) == 1)
			fp_conn_close(c, false);
	} else if (strncasecmp(line, "RCPT", 4) == 0 && strcasestr(line, "@relay-check.invalid") != NULL) {
		/* the startup probe's relay check ([backend] relay_check): a
		 * backend that relayed for backstop's own address would make
		 * backstop refuse every RCPT for the rest of the run */
		fp_say(c, "554 5.7.1 Relay access denied\r\n");
	} else if (strncasecmp(line, "RCPT", 4) == 0) {
		fp_say(c, (m & 7) == 2 ? "550 5.1.1 unknown\r\n" : (m & 7) == 3 ? "451 4.3.0 later\r\n" :
		    "250 2.1.5 Ok\r\n");
	} else if (strncasecmp(line, "DATA", 4) == 0) {
		if ((m & 7) == 4) {
			fp_say(c, "554 5.5.1 no\r\n");
		} else {
			fp_say(c, "354 go\r\n");
			c->in_data = true;
		}
	} else if (strncasecmp(line, "QUIT", 4) == 0) {
		fp_say(c, "221 2.0.0 Bye\r\n");
		fp_conn_close(c, false);
	} else {
		fp_say(c, "250 2.0.0 Ok\r\n");
	}
}

static void fp_end_of_data(struct fp_conn *c)
{
	unsigned m = fp_script.mode;
	c->dot_seen = true;
	if ((m & 7) == 5)
		fp_say(c, "452 4.3.1 full\r\n");
	else if ((m & 7) == 6)
		fp_conn_close(c, true);
	else
		fp_say(c, "250 2.0.0 Ok: queued as FUZZ\r\n");
}

static void fp_backend_line(struct fp_conn *c, const char *line)
{
	if (c->dot_seen) {
		/* backstop never pipelines to the backend: a command before the
		 * answer to the dot means it took some other reply for it */
		fprintf(stderr, "fuzz_peers: backstop sent \"%.40s\" before the backend answered "
		    "the end of data\n", line);
		abort();
	}
	if (c->in_data) {
		if (strcmp(line, ".") == 0) {
			c->in_data = false;
			if (fp_script.scripted) {
				/* the answer waits for the next idle tick: a 250
				 * the client gets before it was taken from the
				 * buffer, not from this answer */
				c->dot_seen = true;
			} else {
				fp_end_of_data(c);
			}
		}
		return;
	}
#ifdef FP_ON_LINE
	if (FP_ON_LINE(c, line))
		return;
#endif
	if (fp_script.scripted) {
		if (strncasecmp(line, "DATA", 4) == 0)
			c->in_data = true;   /* a scripted 354 or not: content follows */
		fp_next_chunk(c);
		return;
	}
	fp_respond(c, line);
}

static void fp_backend_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct fp_conn *c = st->data;

	if (c->closed)
		return;
	if (n < 0) {
		fp_conn_close(c, false);
		return;
	}
	fp_progress++;
	for (ssize_t i = 0; i < n && !c->closed; i++) {
		char ch = b->base[i];
		if (ch == '\n') {
			if (c->linelen > 0 && c->line[c->linelen - 1] == '\r')
				c->linelen--;
			c->line[c->linelen] = '\0';
			c->linelen = 0;
			fp_backend_line(c, c->line);
		} else if (c->linelen + 1 < sizeof c->line) {
			c->line[c->linelen++] = ch;
		}
	}
}

static void fp_on_backend_conn(uv_stream_t *server, int status)
{
	struct fp_conn *c;

	if (status < 0 || (c = calloc(1, sizeof *c)) == NULL)
		return;
	uv_tcp_init(fp_loop, &c->tcp);
	c->tcp.data = c;
	c->next = fp_conns;
	fp_conns = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		fp_conn_close(c, false);
		return;
	}
	/* each chunk leaves at once: with Nagle, a chunk written while the
	 * previous one waits for backstop's delayed ACK arrived some 40 ms
	 * later, after the idle tick had moved on */
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, fp_alloc, fp_backend_read);
#ifdef FP_ON_ACCEPT
	FP_ON_ACCEPT(c);
#endif
	if (fp_script.scripted)
		fp_next_chunk(c);
	else
		fp_say(c, "220 fake.example.net ESMTP\r\n");
}

/* fp_count_accepts - backstop's 250 replies to an end of data */
static unsigned fp_count_accepts(const char *rx, size_t len)
{
	unsigned n = 0;
	for (size_t i = 0; i + 4 <= len; i++) {
		if ((i == 0 || rx[i - 1] == '\n') && memcmp(rx + i, "250 ", 4) == 0) {
			const char *eol = memchr(rx + i, '\n', len - i);
			size_t l = eol ? (size_t)(eol - (rx + i)) : len - i;
			if (memmem(rx + i, l, FP_MARK, FP_MARK_LEN) != NULL)
				n++;
		}
	}
	return n;
}

/* ---- the client ---- */

static void fp_client_closed(uv_handle_t *h)
{
	(void)h;
	fp_client_open = false;
}

static void fp_client_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	(void)st;
	if (n < 0) {
		if (!uv_is_closing((uv_handle_t *)&fp_client))
			uv_close((uv_handle_t *)&fp_client, fp_client_closed);
		return;
	}
	fp_progress++;
	if (fp_client_rxlen + (size_t)n > fp_client_rxcap) {
		size_t cap = (fp_client_rxlen + (size_t)n) * 2;
		char *p = realloc(fp_client_rx, cap);
		if (p == NULL)
			abort();
		fp_client_rx = p;
		fp_client_rxcap = cap;
	}
	memcpy(fp_client_rx + fp_client_rxlen, b->base, (size_t)n);
	fp_client_rxlen += (size_t)n;
	/* invariant 1, in time: a 250 to an end of data only after the
	 * backend answered that dot with 2xx (a stale reply taken from the
	 * buffer would come before the backend even read the dot) */
	unsigned acc = fp_count_accepts(fp_client_rx, fp_client_rxlen);
	if (acc > fp_backend_accepts) {
		fprintf(stderr, "fuzz_peers: the client got %u end-of-data 250 replies, the backend "
		    "had accepted %u at that time\n", acc, fp_backend_accepts);
		abort();
	}
}

static void fp_client_written(uv_write_t *req, int status)
{
	(void)req;
	(void)status;
}

static const uint8_t *fp_client_data;
static size_t fp_client_len;

static void fp_client_connected(uv_connect_t *req, int status)
{
	(void)req;
	if (status < 0) {
		uv_close((uv_handle_t *)&fp_client, fp_client_closed);
		return;
	}
	uv_read_start((uv_stream_t *)&fp_client, fp_alloc, fp_client_read);
	if (fp_client_len > 0) {
		uv_buf_t b = uv_buf_init((char *)fp_client_data, (unsigned)fp_client_len);
		uv_write(&fp_wreq, (uv_stream_t *)&fp_client, &b, 1, fp_client_written);
	}
}

static void fp_shut_done(uv_shutdown_t *req, int status)
{
	(void)req;
	(void)status;
}

/* ---- setup ---- */

static uv_timer_t fp_heartbeat;
static unsigned long fp_beats;

static void fp_beat(uv_timer_t *t)
{
	(void)t;
	fp_beats++;
}

static unsigned fp_listen_port;

static unsigned fp_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		abort();
	close(fd);
	return ntohs(sa.sin_port);
}

/* fp_init - start backstop with extra INI lines (extra_backend: keys in
 * [backend]) and the fake backend. */
static void fp_init(const char *extra_backend)
{
	struct sockaddr_in sa;
	int namelen = sizeof sa;
	char path[] = "/tmp/fuzz-backstop-XXXXXX";
	static char err[8192];
	struct config *cfg;
	FILE *f;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	fp_loop = uv_default_loop();
	worker_init(&fp_worker, fp_loop);
	uv_ip4_addr("127.0.0.1", 0, &sa);
	uv_tcp_init(fp_loop, &fp_listener);
	if (uv_tcp_bind(&fp_listener, (struct sockaddr *)&sa, 0) != 0 ||
	    uv_listen((uv_stream_t *)&fp_listener, 128, fp_on_backend_conn) != 0 ||
	    uv_tcp_getsockname(&fp_listener, (struct sockaddr *)&sa, &namelen) != 0)
		abort();
	uv_timer_init(fp_loop, &fp_heartbeat);
	fp_listen_port = fp_free_port();
	if ((fd = mkstemp(path)) < 0 || (f = fdopen(fd, "w")) == NULL)
		abort();
	fprintf(f,
	    "[server]\nlisten = 127.0.0.1:%u\nhostname = fuzz.example.org\ndrain_time = 1s\n"
	    "[backend]\naddress = 127.0.0.1:%u\nconnect_timeout = 1s\ncommand_timeout = 1s\n"
	    "data_timeout = 1s\n%s%s\n"
	    "[limits]\nmax_connections_per_ip = 100000\nmax_recipients = 4\nmax_message_size = 20k\n"
	    "max_errors = 8\ngreeting_timeout = 1s\ncommand_timeout = 1s\ndata_timeout = 1s\n"
	    "session_timeout = 2s\ndata_buffer = 4k\n"
	    /* the rate limits' check runs (memory store), never refuses */
	    "conn_rate_per_net = 100000000\nmsg_rate_per_ip = 100000000\n"
	    "bounce_rcpt_rate_per_ip = 100000000\n"
	    "[log]\nlevel = %s\ndestination = stderr\n"
	    "[dns]\nservers = 127.0.0.1:%u\ntimeout = 1s\nreverse_lookup = no\n"
	    "[spf]\nmode = off\n"
	    "[joejob]\nmode = enforce\n",   /* a top Received from 127.0.0.1 reaches its lookups */
	    /* no pool unless the target configures one (one session per input) */
	    fp_listen_port, ntohs(sa.sin_port), strstr(extra_backend, "pool_size") ? "" : "pool_size = 0\n",
	    extra_backend,
	    getenv("FUZZ_LOG") ? getenv("FUZZ_LOG") : "error", fp_free_port());
	fclose(f);
	cfg = config_load(path, err, sizeof err);
	unlink(path);
	if (cfg == NULL) {
		fputs(err, stderr);
		abort();
	}
	log_open(LOG_DEST_STDERR, cfg->log.level);
	if (filters_init(&fp_worker.filters, cfg, err, sizeof err) < 0 || (fp_worker.dns = dns_new(fp_loop, cfg, err, sizeof err)) == NULL ||
	    server_listen(&fp_worker, cfg) < 0) {
		fprintf(stderr, "fuzz_peers: %s\n", err);
		abort();
	}
	server_run(&fp_worker, false);   /* foreground: starts the backend probe */
	/* the startup probe talks to the fake backend */
	for (int i = 0; i < 200; i++)
		uv_run(fp_loop, UV_RUN_NOWAIT);
}

static bool fp_backend_tick(void)
{
	if (!fp_script.scripted)
		return false;
	for (struct fp_conn *c = fp_conns; c; c = c->next) {
#ifdef FP_TICK_SKIP
		if (FP_TICK_SKIP(c))
			continue;
#endif
		if (!c->closed)
			return fp_next_chunk(c);
	}
	return false;
}

/* fp_exchange - one client connection carrying data; returns what the
 * client received (valid until the next call). */
static const char *fp_exchange(const uint8_t *data, size_t len, size_t *rxlen)
{
	struct sockaddr_in sa;
	unsigned idle = 0;
	unsigned long last = 0;

	fp_client_data = data;
	fp_client_len = len;
	fp_client_rxlen = 0;
	fp_client_shut = false;
	fp_backend_accepts = 0;
	uv_ip4_addr("127.0.0.1", (int)fp_listen_port, &sa);
	uv_tcp_init(fp_loop, &fp_client);
	if (fp_client_ip != NULL) {
		struct sockaddr_in from;
		uv_ip4_addr(fp_client_ip, 0, &from);
		if (uv_tcp_bind(&fp_client, (struct sockaddr *)&from, 0) != 0)
			abort();
	}
	fp_client_open = true;
	if (uv_tcp_connect(&fp_creq, &fp_client, (struct sockaddr *)&sa, fp_client_connected) != 0)
		abort();
	last = fp_progress;
	uv_timer_start(&fp_heartbeat, fp_beat, 1, 1);
	/* pipelined phase: run while anything moves; idle (three heartbeats of
	 * 1 ms without a byte read: the resolver's getaddrinfo runs on a
	 * thread, so loop iterations alone do not tell) gives the backend its
	 * tick, then the client half-closes */
	while (fp_client_open && !fp_client_shut) {
		unsigned long beats = fp_beats;
		uv_run(fp_loop, UV_RUN_ONCE);
		if (fp_progress != last) {
			last = fp_progress;
			idle = 0;
			continue;
		}
		if (fp_beats == beats || ++idle < 3)
			continue;
		idle = 0;
		if (fp_backend_tick())
			continue;
		if (uv_is_closing((uv_handle_t *)&fp_client))
			continue;
		fp_client_shut = true;
		uv_shutdown(&fp_sreq, (uv_stream_t *)&fp_client, fp_shut_done);
	}
	/* until the session is gone (its timers bound this) */
	while (fp_client_open || sessions_count(&fp_worker) > 0) {
		if (fp_progress == last && fp_backend_tick()) {
			uv_run(fp_loop, UV_RUN_NOWAIT);
		} else {
			last = fp_progress;
			uv_run(fp_loop, UV_RUN_ONCE);
		}
	}
	uv_timer_stop(&fp_heartbeat);
	*rxlen = fp_client_rxlen;
	if (fp_keep_backend)
		return fp_client_rx;
	/* the backend connections the session left behind */
	for (struct fp_conn *c = fp_conns; c; c = c->next)
		fp_conn_close(c, false);
	while (fp_conns)
		uv_run(fp_loop, UV_RUN_ONCE);
	*rxlen = fp_client_rxlen;
	return fp_client_rx;
}


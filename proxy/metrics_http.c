/*
 * metrics_http - a minimal GET-only HTTP/1.x responder on the event loop.
 *
 * Why not libmicrohttpd on a thread of its own: the counters belong to the
 * loop and are plain integers (metrics.h); a second thread would need
 * atomics or a lock on every count, or a copy handed over, for the sake of
 * a server that answers two fixed paths. On the loop, a scrape reads them
 * directly. The price is that the responder must never block the loop,
 * hence its bounds, each of which a hostile scraper meets:
 *   - the request head: at most METRICS_HEAD_MAX bytes (431 beyond), parsed
 *     by the I/O-free http_request.c;
 *   - the request head must be complete within METRICS_HEAD_DEADLINE_MS
 *     (a scraper sends it at once), the answer written within the rest of
 *     METRICS_DEADLINE_MS: a slowloris or an idle connection goes first;
 *   - at most METRICS_MAX_SCRAPERS connections at once: one more evicts
 *     the oldest that has not sent a complete request (idle connections
 *     cannot lock the endpoint); when all have, it gets a 503, then the
 *     write side is shut down and its input drained for up to
 *     METRICS_REFUSED_LINGER_MS, so that the peer reads the 503 rather
 *     than a reset. At most METRICS_MAX_REFUSING of those at once; beyond,
 *     the 503 is tried once without waiting and the connection closed;
 *   - writes go through uv_write and are never waited for; every answer
 *     carries Connection: close.
 * None of it touches a session: mail flows whatever the scrapers do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "proxy/http_request.h"
#include "proxy/log.h"
#include "proxy/metrics_http.h"

#define METRICS_HEAD_MAX 4096
#define METRICS_HEAD_DEADLINE_MS 1000  /* connect to the end of the request head */
#define METRICS_DEADLINE_MS 5000       /* connect to the answer written */
#define METRICS_LINGER_MS 1000         /* after the answer: wait for the peer's FIN */
#define METRICS_REFUSED_LINGER_MS 500  /* the same after a 503 for too many */
#define METRICS_MAX_SCRAPERS 8
#define METRICS_MAX_REFUSING 32
#define METRICS_BODY_MAX (256 * 1024)

struct metrics_listener {
	uv_tcp_t tcp;
	struct metrics_http *mh;
	char addr[80];
	struct metrics_listener *next;
};

struct scraper {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shutdown;
	struct metrics_http *mh;
	int handles;
	bool answered;               /* the answer is queued: reads are discarded */
	bool writing;                /* the answer is not all with the kernel yet */
	bool peer_done;              /* the peer's EOF came */
	bool refused;                /* one over METRICS_MAX_SCRAPERS: its 503 */
	bool closing;                /* scraper_close() called: no longer counted */
	uint64_t accepted_at;        /* uv_now() at accept */
	size_t len;
	char in[METRICS_HEAD_MAX];
	struct scraper *prev, *next;
};

struct metrics_http {
	uv_loop_t *loop;
	const struct metrics *m;
	metrics_gauges_fn gauges;
	void *arg;
	struct metrics_listener *listeners;
	struct scraper *scrapers;    /* the newest first */
	unsigned nscrapers;          /* open and not refused: the cap's count */
	unsigned nrefusing;          /* 503s for too many, lingering */
	int handles;                 /* listeners not yet closed */
	bool stopped;
};

struct answer {
	uv_write_t req;
	struct scraper *sc;
	char *data;
};

static void mh_maybe_free(struct metrics_http *mh)
{
	if (mh->stopped && mh->handles == 0 && mh->scrapers == NULL)
		free(mh);
}

static void scraper_closed(uv_handle_t *h)
{
	struct scraper *sc = h->data;
	struct metrics_http *mh = sc->mh;

	if (--sc->handles > 0)
		return;
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		mh->scrapers = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	free(sc);
	mh_maybe_free(mh);
}

static void scraper_close(struct scraper *sc)
{
	if (!sc->closing) {
		/* no longer counted from now: an evicted one's place is free at once */
		sc->closing = true;
		if (sc->refused)
			sc->mh->nrefusing--;
		else
			sc->mh->nscrapers--;
	}
	if (!uv_is_closing((uv_handle_t *)&sc->tcp))
		uv_close((uv_handle_t *)&sc->tcp, scraper_closed);
	if (!uv_is_closing((uv_handle_t *)&sc->timer))
		uv_close((uv_handle_t *)&sc->timer, scraper_closed);
}

static void on_deadline(uv_timer_t *t)
{
	struct scraper *sc = t->data;
	if (!sc->answered)
		log_debug("metrics: closing a connection that sent no complete request in %dms",
		    METRICS_HEAD_DEADLINE_MS);
	scraper_close(sc);
}

/* http_answer - status line, headers, and the body unless HEAD. */
static char *http_answer(int status, const char *reason, const char *type, const char *extra,
    const char *body, size_t body_len, bool head_only, size_t *len)
{
	char hdr[512];
	int n = snprintf(hdr, sizeof hdr,
	    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
	    "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
	    status, reason, type, body_len, extra ? extra : "");
	char *out;

	if (n < 0 || (size_t)n >= sizeof hdr)
		return NULL;
	if (head_only)
		body_len = 0;
	if ((out = malloc((size_t)n + body_len)) == NULL)
		return NULL;
	memcpy(out, hdr, (size_t)n);
	if (body_len)
		memcpy(out + n, body, body_len);
	*len = (size_t)n + body_len;
	return out;
}

static char *text_answer(int status, const char *reason, const char *text, const char *extra,
    bool head_only, size_t *len)
{
	return http_answer(status, reason, "text/plain; charset=utf-8", extra, text, strlen(text),
	    head_only, len);
}

/* respond - the answer to a complete head (or to a bad one). */
static char *respond(struct metrics_http *mh, enum http_parse st, const struct http_request *req,
    size_t *len)
{
	struct metrics_gauges g;
	bool head = st == HTTP_COMPLETE && req->method == HTTP_HEAD;

	if (st == HTTP_TOO_LARGE)
		return text_answer(431, "Request Header Fields Too Large", "request head too large\n", NULL,
		    false, len);
	if (st != HTTP_COMPLETE)
		return text_answer(400, "Bad Request", "bad request\n", NULL, false, len);
	if (req->method == HTTP_OTHER)
		return text_answer(405, "Method Not Allowed", "only GET and HEAD\n", "Allow: GET, HEAD\r\n",
		    false, len);
	if (strcmp(req->path, "/metrics") != 0 && strcmp(req->path, "/health") != 0)
		return text_answer(404, "Not Found", "not found: try /metrics or /health\n", NULL, head, len);
	memset(&g, 0, sizeof g);
	mh->gauges(mh->arg, &g);
	if (strcmp(req->path, "/health") == 0) {
		char text[sizeof g.unhealthy + 2];
		snprintf(text, sizeof text, "%s\n", g.healthy ? "ok" : g.unhealthy);
		return text_answer(g.healthy ? 200 : 503, g.healthy ? "OK" : "Service Unavailable", text, NULL,
		    head, len);
	}
	struct buf body = {0};
	char *out;
	if (metrics_render(mh->m, &g, &body, METRICS_BODY_MAX) < 0) {
		buf_free(&body);
		log_warn("metrics: the text does not fit in %d bytes", METRICS_BODY_MAX);
		return text_answer(500, "Internal Server Error", "metrics too large\n", NULL, head, len);
	}
	out = http_answer(200, "OK", "text/plain; version=0.0.4; charset=utf-8", NULL, body.data, body.len,
	    head, len);
	buf_free(&body);
	return out;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct scraper *sc = req->data;
	(void)status;
	/* the answer is out: wait a little for the peer's FIN, so that a
	 * close with unread input (an RST) cannot destroy the answer */
	if (!uv_is_closing((uv_handle_t *)&sc->timer))
		uv_timer_start(&sc->timer, on_deadline,
		    sc->refused ? METRICS_REFUSED_LINGER_MS : METRICS_LINGER_MS, 0);
}

static void on_written(uv_write_t *req, int status)
{
	struct answer *a = (struct answer *)req;
	struct scraper *sc = a->sc;

	free(a->data);
	free(a);
	sc->writing = false;
	if (status < 0 || sc->peer_done) {
		scraper_close(sc);   /* all sent, or never will be */
		return;
	}
	sc->shutdown.data = sc;
	if (uv_shutdown(&sc->shutdown, (uv_stream_t *)&sc->tcp, on_shutdown) != 0)
		scraper_close(sc);
}

static void answer_send(struct scraper *sc, char *data, size_t len)
{
	struct answer *a = malloc(sizeof *a);
	uv_buf_t b = uv_buf_init(data, (unsigned)len);

	if (a == NULL) {
		free(data);
		scraper_close(sc);
		return;
	}
	a->sc = sc;
	a->data = data;
	sc->writing = true;
	if (uv_write(&a->req, (uv_stream_t *)&sc->tcp, &b, 1, on_written) != 0) {
		free(data);
		free(a);
		scraper_close(sc);
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct scraper *sc = h->data;
	(void)suggested;
	if (sc->answered) {
		/* discarded: the head buffer is free for it */
		*b = uv_buf_init(sc->in, sizeof sc->in);
		return;
	}
	*b = uv_buf_init(sc->in + sc->len, (unsigned)(sizeof sc->in - sc->len));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct scraper *sc = st->data;
	struct http_request req;
	enum http_parse ps;
	char *out;
	size_t len = 0;

	(void)b;
	if (n < 0) {
		if (sc->writing) {
			/* a client that half-closed after its request still gets
			 * the answer: close once it is written */
			sc->peer_done = true;
			uv_read_stop(st);
			return;
		}
		scraper_close(sc);
		return;
	}
	if (n == 0 || sc->answered)
		return;
	sc->len += (size_t)n;
	ps = http_request_parse(sc->in, sc->len, sizeof sc->in, &req);
	if (ps == HTTP_INCOMPLETE)
		return;
	sc->answered = true;
	{
		/* the head is in: the answer has what is left of the whole deadline */
		uint64_t spent = uv_now(st->loop) - sc->accepted_at;
		uv_timer_start(&sc->timer, on_deadline,
		    spent < METRICS_DEADLINE_MS ? METRICS_DEADLINE_MS - spent : 1, 0);
	}
	if (ps != HTTP_COMPLETE) {
		char esc[64];
		log_debug("metrics: %s request: %s", ps == HTTP_TOO_LARGE ? "too large a" : "bad",
		    log_escape(sc->in, sc->len < 40 ? sc->len : 40, esc, sizeof esc));
	}
	out = respond(sc->mh, ps, &req, &len);
	if (out == NULL) {
		scraper_close(sc);
		return;
	}
	answer_send(sc, out, len);
}

static const char busy_answer[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    "Content-Length: 18\r\nRetry-After: 1\r\nConnection: close\r\n\r\ntoo many scrapers\n";

/* refuse_at_once - past METRICS_MAX_REFUSING too: a 503 if the socket
 * takes it at once, then close. Never queued, never waited for. */
static void refuse_at_once(uv_stream_t *server)
{
	uv_buf_t b = uv_buf_init((char *)busy_answer, sizeof busy_answer - 1);
	uv_tcp_t *tcp = malloc(sizeof *tcp);

	if (tcp == NULL)
		return;
	uv_tcp_init(server->loop, tcp);
	if (uv_accept(server, (uv_stream_t *)tcp) == 0)
		uv_try_write((uv_stream_t *)tcp, &b, 1);
	uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
}

/* oldest_without_request - the connection to evict at the cap: the oldest
 * that has not sent a complete request, or NULL when all have */
static struct scraper *oldest_without_request(struct metrics_http *mh)
{
	struct scraper *sc, *oldest = NULL;

	for (sc = mh->scrapers; sc; sc = sc->next)
		if (!sc->closing && !sc->answered && !sc->refused)
			oldest = sc;
	return oldest;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct metrics_listener *l = server->data;
	struct metrics_http *mh = l->mh;
	struct scraper *sc;
	bool refused = false;

	if (status < 0) {
		log_warn("metrics: accept on %s failed: %s", l->addr, uv_strerror(status));
		return;
	}
	if (mh->nscrapers >= METRICS_MAX_SCRAPERS) {
		struct scraper *idle = oldest_without_request(mh);
		if (idle != NULL) {
			log_debug("metrics: %d connections open; closing the oldest, which has sent no "
			    "complete request, for a new one", METRICS_MAX_SCRAPERS);
			scraper_close(idle);
		} else if (mh->nrefusing >= METRICS_MAX_REFUSING) {
			refuse_at_once(server);
			return;
		} else {
			log_debug("metrics: %d connections open with requests; refusing one more (503)",
			    METRICS_MAX_SCRAPERS);
			refused = true;
		}
	}
	if ((sc = calloc(1, sizeof *sc)) == NULL)
		return;
	sc->mh = mh;
	uv_tcp_init(server->loop, &sc->tcp);
	uv_timer_init(server->loop, &sc->timer);
	sc->tcp.data = sc->timer.data = sc;
	sc->handles = 2;
	sc->accepted_at = uv_now(server->loop);
	sc->refused = refused;
	sc->next = mh->scrapers;
	if (mh->scrapers)
		mh->scrapers->prev = sc;
	mh->scrapers = sc;
	if (refused)
		mh->nrefusing++;
	else
		mh->nscrapers++;
	if (uv_accept(server, (uv_stream_t *)&sc->tcp) != 0 ||
	    uv_read_start((uv_stream_t *)&sc->tcp, on_alloc, on_read) != 0) {
		scraper_close(sc);
		return;
	}
	if (refused) {
		/* its input is read and discarded (answered) until the peer's
		 * FIN or the linger: closing on unread input would be a reset */
		char *busy = malloc(sizeof busy_answer - 1);
		sc->answered = true;
		uv_timer_start(&sc->timer, on_deadline, METRICS_REFUSED_LINGER_MS * 2, 0);
		if (busy == NULL) {
			scraper_close(sc);
			return;
		}
		memcpy(busy, busy_answer, sizeof busy_answer - 1);
		answer_send(sc, busy, sizeof busy_answer - 1);
		return;
	}
	uv_timer_start(&sc->timer, on_deadline, METRICS_HEAD_DEADLINE_MS, 0);
}

static void listener_closed(uv_handle_t *h)
{
	struct metrics_listener *l = h->data;
	struct metrics_http *mh = l->mh;
	free(l);
	mh->handles--;
	mh_maybe_free(mh);
}

static int listen_one(struct metrics_http *mh, const char *addr, char *err, size_t errlen)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} sa;
	char host[128];
	unsigned port;
	struct metrics_listener *l;
	int rc;

	/* the configuration parser accepted it as an IP address:port */
	memset(&sa, 0, sizeof sa);
	if (hostport_split(addr, host, sizeof host, &port) < 0 ||
	    (uv_ip4_addr(host, (int)port, &sa.in4) != 0 && uv_ip6_addr(host, (int)port, &sa.in6) != 0)) {
		snprintf(err, errlen, "[metrics] listen: %s is not an IP address:port", addr);
		return -1;
	}
	if ((l = calloc(1, sizeof *l)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(l->addr, sizeof l->addr, "%s", addr);
	l->mh = mh;
	uv_tcp_init(mh->loop, &l->tcp);
	l->tcp.data = l;
	mh->handles++;
	l->next = mh->listeners;
	mh->listeners = l;
	rc = uv_tcp_bind(&l->tcp, &sa.sa, sa.sa.sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&l->tcp, 64, on_connection);
	if (rc != 0) {
		snprintf(err, errlen, "[metrics] listen: cannot listen on %s: %s (choose a free address"
		    " and port, or leave listen empty to turn the endpoint off)", addr, uv_strerror(rc));
		return -1;
	}
	log_info("metrics and health on http://%s/metrics and /health", addr);
	return 0;
}

struct metrics_http *metrics_http_start(uv_loop_t *loop, const struct cfg_words *listen, const struct metrics *m,
    metrics_gauges_fn gauges, void *arg, char *err, size_t errlen)
{
	struct metrics_http *mh = calloc(1, sizeof *mh);

	if (mh == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	mh->loop = loop;
	mh->m = m;
	mh->gauges = gauges;
	mh->arg = arg;
	for (size_t i = 0; i < listen->n; i++) {
		if (listen_one(mh, listen->v[i], err, errlen) < 0) {
			metrics_http_stop(mh);
			return NULL;
		}
	}
	return mh;
}

void metrics_http_stop(struct metrics_http *mh)
{
	struct metrics_listener *l, *next;

	if (mh == NULL || mh->stopped)
		return;
	mh->stopped = true;
	for (l = mh->listeners; l; l = next) {
		next = l->next;
		uv_close((uv_handle_t *)&l->tcp, listener_closed);
	}
	mh->listeners = NULL;
	for (struct scraper *sc = mh->scrapers; sc; sc = sc->next)
		scraper_close(sc);
	mh_maybe_free(mh);
}

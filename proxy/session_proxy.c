/*
 * session_proxy - the PROXY protocol phase of a session: on a [server]
 * listener with proxy_protocol = on, a connection starts with a header
 * from a load balancer (HAProxy's send-proxy / send-proxy-v2) naming the
 * real client. It is its own phase, before anything else: the per-IP
 * counting, the client's name, the connect checks, greet_pause and the
 * banner all see the client from the header (session_connected).
 *
 * Nothing is sent before the header is complete (doc/proxy-protocol.txt:
 * the receiver must not start processing before it): a peer outside
 * proxy_trusted, a malformed or oversized header, or no complete header
 * within proxy_timeout closes the connection without a banner. The header
 * is taken off the input alone; the client's bytes that came in the same
 * read stay there for the SMTP side (and count as talking first under
 * greet_pause, as they would without a balancer).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/worker.h"
#include "smtp/proxy_proto.h"

bool session_proxy_wanted(const struct session *s)
{
	/* the [outbound] listener is for our own users, never behind one */
	return !s->outbound && s->cfg->server.proxy_protocol;
}

static void proxy_refused(struct session *s, const char *why)
{
	s->metrics->refused[METRICS_REFUSED_PROXY_HEADER]++;
	session_close(s, why);
}

void session_proxy_begin(struct session *s)
{
	if (!cidrs_match(&s->cfg->server.proxy_trusted, (const struct sockaddr *)&s->peer)) {
		log_warn("%s: refused [%s]:%u on %s: not in [server] proxy_trusted (this listener takes"
		    " only connections with a PROXY protocol header from a trusted load balancer)",
		    s->sid, s->ip, s->port, s->listener->addr);
		proxy_refused(s, "PROXY protocol: untrusted peer");
		return;
	}
	log_debug("%s: connection from load balancer [%s]:%u to %s: waiting for its PROXY header",
	    s->sid, s->ip, s->port, s->listener->addr);
	s->wait = WAIT_PROXY;
	s->proxy_deadline = uv_now(s->worker->loop) + s->cfg->server.proxy_timeout;
	session_read_start(s);
	session_timer_arm(s);
}

/* client_from_header - make the header's source the session's client */
static void sockaddr_of(struct sockaddr_storage *ss, int family, const unsigned char *addr,
    uint16_t port)
{
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET) {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		a4->sin_family = AF_INET;
		memcpy(&a4->sin_addr, addr, 4);
		a4->sin_port = htons(port);
	} else {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		a6->sin6_family = AF_INET6;
		memcpy(&a6->sin6_addr, addr, 16);
		a6->sin6_port = htons(port);
	}
}

static void client_from_header(struct session *s, const struct proxy_proto_result *r)
{
	sockaddr_of(&s->peer, r->family, r->src, r->src_port);
	/* [backend] identity = proxy passes it on as the header's destination */
	sockaddr_of(&s->proxy_dst, r->family, r->dst, r->dst_port);
	/* the per-IP and per-network counts move from the balancer to the
	 * client (both keys: session_close takes both off the client's) */
	session_ipcount(s, -1);
	session_peer_describe(s);
	session_ipcount(s, +1);
}

bool session_proxy_input(struct session *s)
{
	struct proxy_proto_result r;
	char esc[80];

	switch (proxy_proto_parse((const unsigned char *)s->in.data, s->in.len, &r)) {
	case PROXY_PROTO_NEED_MORE:
		return false;
	case PROXY_PROTO_ERROR:
		log_warn("%s: bad PROXY protocol header from [%s]:%u: %s (first bytes: %s)", s->sid,
		    s->ip, s->port, r.reason,
		    log_escape(s->in.data, s->in.len < 32 ? s->in.len : 32, esc, sizeof esc));
		proxy_refused(s, "PROXY protocol: bad header");
		return false;
	case PROXY_PROTO_DONE:
		break;
	}
	buf_consume(&s->in, r.consumed);
	s->wait = WAIT_NONE;
	if (r.command == PROXY_PROTO_PROXY) {
		snprintf(s->proxy_ip, sizeof s->proxy_ip, "%s", s->ip);
		s->proxy_port = s->port;
		s->proxied = true;
		client_from_header(s, &r);
	} else {
		s->proxy_local = r.command == PROXY_PROTO_LOCAL;
		/* LOCAL: the balancer's own connection (HAProxy's health check);
		 * UNKNOWN: it could not tell. Either way the session goes on with
		 * the balancer's address, as the specification says. */
		log_info("%s: PROXY v%d %s header from [%s]:%u: the session keeps the balancer's address",
		    s->sid, r.version, r.command == PROXY_PROTO_LOCAL ? "LOCAL (health check)" : "UNKNOWN",
		    s->ip, s->port);
	}
	session_connected(s);
	return !s->closing;
}

void session_proxy_timeout(struct session *s)
{
	log_warn("%s: no complete PROXY protocol header from [%s]:%u within proxy_timeout (%llums;"
	    " %zu bytes received)", s->sid, s->ip, s->port,
	    (unsigned long long)s->cfg->server.proxy_timeout, s->in.len);
	proxy_refused(s, "PROXY protocol: timeout");
}

/*
 * ratelimit_filter - the rate limits as a check ([limits] *_rate_per_ip,
 * *_rate_per_net; filters/ratelimit.h): counts each connection, MAIL and
 * RCPT of an inbound client and refuses what is over a limit.
 *
 *   connection over a limit:  421 4.7.0 and the connection is closed
 *   MAIL or RCPT over one:    451 4.7.1 "..., try again later"
 *
 * A filter rather than calls in the session: the filter runner already
 * has the asynchronous step a Redis answer needs (FILTER_ASYNC, the
 * session waits without reading, verdicts found by session id), its
 * deadline, and the replies and summary lines of refusals; the hooks run
 * first in the table, before any check that costs DNS lookups. The loop's
 * state comes in the filter environment (env->ratelimit), not from a
 * global. The outbound listener's clients are our own hosts: not counted.
 *
 * Fail open: if the runner's deadline passes (a Redis call lost past its
 * own deadline), the command continues (timeout_continues).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/filter.h"
#include "filters/ratelimit.h"
#include "proxy/config.h"
#include "proxy/log.h"

static bool ratelimit_enabled(const struct config *cfg)
{
	return ratelimit_any(cfg);
}

static const char *what_of(enum ratelimit_event ev)
{
	switch (ev) {
	case RATELIMIT_CONN:
		return "connections";
	case RATELIMIT_MSG:
		return "messages";
	case RATELIMIT_RCPT:
		return "recipients";
	default:
		return "recipients of bounces (null sender)";
	}
}

/* to_verdict - the reply and the log line for a result over a limit */
static enum filter_result to_verdict(const char *sid, const struct ratelimit_result *r, struct filter_verdict *v)
{
	unsigned long long secs = (unsigned long long)(r->window_ms / 1000);

	if (!r->over)
		return FILTER_CONTINUE;
	log_info("%s: rate limit %s exceeded: %s, %lu %s in the %llu s window (limit %lu, %s counters)", sid,
	    r->limit, r->where, r->count, what_of(r->event), secs, r->max, r->shared ? "shared" : "local");
	if (r->event == RATELIMIT_CONN) {
		v->code = 421;
		snprintf(v->esc, sizeof v->esc, "4.7.0");
	} else {
		v->code = 451;
		snprintf(v->esc, sizeof v->esc, "4.7.1");
	}
	snprintf(v->text, sizeof v->text, "Too many %s from %s (%s: %lu per %llu s), try again later",
	    what_of(r->event), r->where, r->limit, r->max, secs);
	snprintf(v->note, sizeof v->note, "limit=%s", r->limit);
	return FILTER_TEMPFAIL;
}

struct pending {
	struct filter_async token;
	char sid[24];
};

static void answered(void *arg, const struct ratelimit_result *r)
{
	struct pending *p = arg;
	struct filter_verdict v;

	memset(&v, 0, sizeof v);
	v.result = to_verdict(p->sid, r, &v);
	filter_async_done(&p->token, &v);
	free(p);
}

static enum filter_result check(const struct filter_env *env, struct filter_verdict *v,
    const struct filter_async *async, const enum ratelimit_event *events, size_t n)
{
	struct ratelimit_result r;
	struct pending *p;
	int rc;

	if (env->ratelimit == NULL || strcmp(env->listener, "outbound") == 0)
		return FILTER_CONTINUE;
	if ((p = malloc(sizeof *p)) == NULL)
		return FILTER_CONTINUE;
	p->token = *async;
	snprintf(p->sid, sizeof p->sid, "%s", env->sid);
	rc = ratelimit_check(env->ratelimit, env->cfg, events, n, env->client_sa, &r, answered, p);
	if (rc == 0)
		return FILTER_ASYNC;
	free(p);
	return to_verdict(env->sid, &r, v);
}

static enum filter_result on_connect(const struct filter_env *env, struct filter_verdict *v,
    const struct filter_async *async)
{
	static const enum ratelimit_event ev[] = {RATELIMIT_CONN};
	/* the balancer's health checks (PROXY v2 LOCAL) are no client's
	 * connections: counted, a limit under their rate answers them 421 and
	 * the balancer takes backstop out of service */
	if (env->proxy_local)
		return FILTER_CONTINUE;
	return check(env, v, async, ev, 1);
}

static enum filter_result on_mail(const struct filter_env *env, struct filter_verdict *v,
    const struct filter_async *async)
{
	static const enum ratelimit_event ev[] = {RATELIMIT_MSG};
	return check(env, v, async, ev, 1);
}

static enum filter_result on_rcpt(const struct filter_env *env, struct filter_verdict *v,
    const struct filter_async *async)
{
	static const enum ratelimit_event ev[] = {RATELIMIT_RCPT, RATELIMIT_BOUNCE_RCPT};
	return check(env, v, async, ev, env->null_sender ? 2 : 1);
}

static uint64_t ratelimit_async_timeout(const struct config *cfg)
{
	/* the Redis call's own deadline answers first; this is the runner's
	 * backstop for a lost callback */
	return cfg->limits.redis_timeout + 1000;
}

const struct filter_ops filter_ratelimit = {
	.name = "limits",
	.enabled = ratelimit_enabled,
	.hook = {
		[FILTER_CONNECT] = on_connect,
		[FILTER_MAIL] = on_mail,
		[FILTER_RCPT] = on_rcpt,
	},
	.async_timeout = ratelimit_async_timeout,
	.timeout_continues = true,
};

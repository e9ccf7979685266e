/*
 * metrics_http - the [metrics] listen endpoint: GET /metrics (Prometheus
 * text) and GET /health, served on the event loop. See metrics_http.c for
 * why it is a small responder of its own and for its bounds.
 */
#ifndef METRICS_HTTP_H
#define METRICS_HTTP_H

#include <uv.h>

#include "proxy/config.h"
#include "proxy/metrics.h"

struct metrics_http;

/* fills g at each request: the values that live outside struct metrics */
typedef void (*metrics_gauges_fn)(void *arg, struct metrics_gauges *g);

/* metrics_http_start - listen on every address of listen (bound now, as
 * root, like the SMTP listeners), on loop. NULL with a reason in err on
 * failure. */
struct metrics_http *metrics_http_start(uv_loop_t *loop, const struct cfg_words *listen, const struct metrics *m,
    metrics_gauges_fn gauges, void *arg, char *err, size_t errlen);
/* metrics_http_stop - close the listeners and every scraper's connection;
 * the memory goes with the last close callback. */
void metrics_http_stop(struct metrics_http *mh);

#endif

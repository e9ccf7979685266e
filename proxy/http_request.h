/*
 * http_request - the head of an HTTP/1.x request, parsed without I/O, for
 * the metrics endpoint (proxy/metrics_http.c).
 *
 * Only what a GET-only responder needs: the method, the path (without the
 * query) and whether the head is complete. The parser is strict: a
 * request line "METHOD SP origin-form SP HTTP/1.0|1.1" ended by CRLF (or a
 * bare LF), then header fields "name: value" up to an empty line. Header
 * fields are checked for syntax but not kept (the responder answers every
 * request with Connection: close and reads no body).
 */
#ifndef HTTP_REQUEST_H
#define HTTP_REQUEST_H

#include <stddef.h>

#define HTTP_PATH_MAX 256

enum http_parse {
	HTTP_INCOMPLETE = 0,  /* no end of head yet: read more (up to max) */
	HTTP_COMPLETE,        /* a whole, valid head */
	HTTP_BAD,             /* malformed: 400 */
	HTTP_TOO_LARGE,       /* no end of head within max bytes: 431 */
};

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_OTHER };

struct http_request {
	enum http_method method;
	char path[HTTP_PATH_MAX];  /* "/metrics"; the query string dropped */
	size_t head_len;           /* bytes of the head, final empty line included */
};

/*
 * http_request_parse - look at the first len bytes received on a
 * connection. max is the largest head accepted. The result only depends
 * on data[0..min(len, max)): call again with more bytes when it says
 * HTTP_INCOMPLETE. req is filled on HTTP_COMPLETE.
 */
enum http_parse http_request_parse(const char *data, size_t len, size_t max,
    struct http_request *req);

#endif

/*
 * http_request - see http_request.h. Pure: no I/O, no allocation, reads
 * only data[0..min(len, max)).
 */
#include <stdbool.h>
#include <string.h>

#include "proxy/http_request.h"

#define METHOD_MAX 16

/* RFC 9110 5.6.2 tchar */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* a byte no line of a head may hold: controls other than HTAB (CR only
 * before LF, checked by the line splitter), DEL */
static bool is_forbidden(unsigned char c)
{
	return (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f;
}

static bool parse_request_line(const char *p, size_t n, struct http_request *req)
{
	size_t i = 0, mlen, tstart, tlen, plen;

	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	mlen = i;
	if (mlen == 0 || mlen > METHOD_MAX || i >= n || p[i] != ' ')
		return false;
	if (mlen == 3 && memcmp(p, "GET", 3) == 0)
		req->method = HTTP_GET;
	else if (mlen == 4 && memcmp(p, "HEAD", 4) == 0)
		req->method = HTTP_HEAD;
	else
		req->method = HTTP_OTHER;
	tstart = ++i;
	/* origin-form only (RFC 9112 3.2.1): a path, an optional query */
	while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
		i++;
	tlen = i - tstart;
	if (tlen == 0 || p[tstart] != '/' || i >= n || p[i] != ' ')
		return false;
	i++;
	if (n - i != 8 || (memcmp(p + i, "HTTP/1.1", 8) != 0 && memcmp(p + i, "HTTP/1.0", 8) != 0))
		return false;
	for (plen = 0; plen < tlen && p[tstart + plen] != '?' && p[tstart + plen] != '#'; plen++)
		;
	if (plen >= sizeof req->path)
		return false;
	memcpy(req->path, p + tstart, plen);
	req->path[plen] = '\0';
	return true;
}

/* a field line "name: value" (RFC 9112 5): no blank before the colon, no
 * obsolete line folding (a line starting with a blank) */
static bool valid_field_line(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	return i > 0 && i < n && p[i] == ':';
}

enum http_parse http_request_parse(const char *data, size_t len, size_t max,
    struct http_request *req)
{
	size_t window = len < max ? len : max, pos = 0;
	bool first = true;

	memset(req, 0, sizeof *req);
	while (pos < window) {
		const char *line = data + pos;
		const char *lf = memchr(line, '\n', window - pos);
		size_t n = lf ? (size_t)(lf - line) : window - pos;

		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)line[i];
			/* a CR is a line end's first half, never content */
			if (is_forbidden(c) || (c == '\r' && i + 1 < n))
				return HTTP_BAD;
		}
		if (lf == NULL)
			break;   /* an incomplete line, so far clean */
		if (n > 0 && line[n - 1] == '\r')
			n--;
		pos += (size_t)(lf - line) + 1;
		if (first) {
			if (!parse_request_line(line, n, req))
				return HTTP_BAD;
			first = false;
			continue;
		}
		if (n == 0) {
			req->head_len = pos;
			return HTTP_COMPLETE;
		}
		if (!valid_field_line(line, n))
			return HTTP_BAD;
	}
	return len >= max ? HTTP_TOO_LARGE : HTTP_INCOMPLETE;
}

/*
 * report_reader - see report_reader.h. A small recursive-descent JSON
 * reader over one line: only the members a record needs are kept, the
 * rest is checked and skipped.
 */
#define _DEFAULT_SOURCE   /* timegm */
#include "proxy/report_reader.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

struct cursor {
	const char *p, *end;
};

static void skip_blanks(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
		c->p++;
}

/* put - one code point as UTF-8 into out, whole or not at all */
static void put(char *out, size_t cap, size_t *n, uint32_t cp)
{
	char u[4];
	size_t l;

	if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		cp = 0xfffd;
	if (cp < 0x80) {
		u[0] = (char)cp;
		l = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		l = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		l = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		l = 4;
	}
	if (out != NULL && *n + l < cap) {
		memcpy(out + *n, u, l);
		*n += l;
	}
}

static bool hex4(struct cursor *c, uint32_t *v)
{
	*v = 0;
	if (c->end - c->p < 4)
		return false;
	for (int i = 0; i < 4; i++) {
		char h = *c->p++;
		*v <<= 4;
		if (h >= '0' && h <= '9')
			*v |= (uint32_t)(h - '0');
		else if (h >= 'a' && h <= 'f')
			*v |= (uint32_t)(h - 'a' + 10);
		else if (h >= 'A' && h <= 'F')
			*v |= (uint32_t)(h - 'A' + 10);
		else
			return false;
	}
	return true;
}

/* string - a JSON string at c (at its '"'), decoded into out (NULL: only
 * checked), cut at a character boundary when longer than cap - 1. */
static bool string(struct cursor *c, char *out, size_t cap)
{
	size_t n = 0;

	if (c->p >= c->end || *c->p != '"')
		return false;
	c->p++;
	for (;;) {
		if (c->p >= c->end)
			return false;
		unsigned char ch = (unsigned char)*c->p++;
		if (ch == '"')
			break;
		if (ch < 0x20)
			return false;   /* JSON has no raw control characters in strings */
		if (ch != '\\') {
			if (ch == 0x7f)
				ch = '?';
			/* other bytes as they are (the writer made UTF-8; a cut
			 * sequence at the end of out is dropped below) */
			if (out != NULL && n + 1 < cap)
				out[n++] = (char)ch;
			continue;
		}
		if (c->p >= c->end)
			return false;
		char e = *c->p++;
		uint32_t cp, lo;
		switch (e) {
		case '"': case '\\': case '/': put(out, cap, &n, (uint32_t)e); break;
		case 'b': put(out, cap, &n, '\b'); break;
		case 'f': put(out, cap, &n, '\f'); break;
		case 'n': put(out, cap, &n, '\n'); break;
		case 'r': put(out, cap, &n, '\r'); break;
		case 't': put(out, cap, &n, '\t'); break;
		case 'u':
			if (!hex4(c, &cp))
				return false;
			if (cp >= 0xd800 && cp <= 0xdbff && c->end - c->p >= 6 && c->p[0] == '\\' &&
			    c->p[1] == 'u') {
				struct cursor save = *c;
				c->p += 2;
				if (!hex4(c, &lo))
					return false;
				if (lo >= 0xdc00 && lo <= 0xdfff)
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				else
					*c = save;   /* unpaired: U+FFFD, the next escape read on its own */
			}
			put(out, cap, &n, cp);
			break;
		default:
			return false;
		}
	}
	if (out != NULL && cap > 0) {
		/* a multi-byte sequence cut by the buffer's end is dropped */
		size_t k = n;
		while (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0 && (unsigned char)out[k - 1] >= 0xc0) {
			unsigned char lead = (unsigned char)out[k - 1];
			size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
			if (n - (k - 1) < want)
				n = k - 1;
		}
		out[n] = '\0';
	}
	return true;
}

static bool literal(struct cursor *c, const char *word)
{
	size_t l = strlen(word);
	if ((size_t)(c->end - c->p) < l || memcmp(c->p, word, l) != 0)
		return false;
	c->p += l;
	return true;
}

static bool number(struct cursor *c)
{
	const char *start = c->p;
	if (c->p < c->end && *c->p == '-')
		c->p++;
	while (c->p < c->end && ((*c->p >= '0' && *c->p <= '9') || *c->p == '.' || *c->p == 'e' ||
	    *c->p == 'E' || *c->p == '+' || *c->p == '-'))
		c->p++;
	return c->p > start && (c->p[-1] >= '0' && c->p[-1] <= '9');
}

static bool value(struct cursor *c, int depth);

/* container - an object or array at c, checked and skipped */
static bool container(struct cursor *c, int depth, bool object)
{
	char close = object ? '}' : ']';

	if (depth >= REPORT_JSON_DEPTH)
		return false;
	c->p++;
	skip_blanks(c);
	if (c->p < c->end && *c->p == close) {
		c->p++;
		return true;
	}
	for (;;) {
		skip_blanks(c);
		if (object) {
			if (!string(c, NULL, 0))
				return false;
			skip_blanks(c);
			if (c->p >= c->end || *c->p++ != ':')
				return false;
		}
		if (!value(c, depth + 1))
			return false;
		skip_blanks(c);
		if (c->p >= c->end)
			return false;
		if (*c->p == close) {
			c->p++;
			return true;
		}
		if (*c->p++ != ',')
			return false;
	}
}

static bool value(struct cursor *c, int depth)
{
	skip_blanks(c);
	if (c->p >= c->end)
		return false;
	switch (*c->p) {
	case '"': return string(c, NULL, 0);
	case '{': return container(c, depth, true);
	case '[': return container(c, depth, false);
	case 't': return literal(c, "true");
	case 'f': return literal(c, "false");
	case 'n': return literal(c, "null");
	default: return number(c);
	}
}

/* field - a member kept as a string (null leaves it empty) */
static bool field(struct cursor *c, char *out, size_t cap, int depth)
{
	skip_blanks(c);
	out[0] = '\0';
	if (c->p < c->end && *c->p == '"')
		return string(c, out, cap);
	return value(c, depth);
}

static bool url_hosts(struct cursor *c, struct report_event *ev, int depth)
{
	char host[REPORT_HOST_MAX];

	skip_blanks(c);
	if (c->p >= c->end || *c->p != '[')
		return value(c, depth);
	c->p++;
	skip_blanks(c);
	if (c->p < c->end && *c->p == ']') {
		c->p++;
		return true;
	}
	for (;;) {
		skip_blanks(c);
		if (c->p < c->end && *c->p == '"') {
			if (!string(c, host, sizeof host))
				return false;
			if (host[0] && ev->nurl_hosts < REPORT_URL_HOSTS)
				memcpy(ev->url_hosts[ev->nurl_hosts++], host, sizeof host);
		} else if (!value(c, depth + 1)) {
			return false;
		}
		skip_blanks(c);
		if (c->p >= c->end)
			return false;
		if (*c->p == ']') {
			c->p++;
			return true;
		}
		if (*c->p++ != ',')
			return false;
	}
}

/* record_start - where a backstop line's JSON object begins: at the start
 * (a log file, blanks allowed), or right after the syslog tag "backstop[PID]: "
 * or "backstop: ", which is the first ": " of a syslog line (the time has
 * no ": "). NULL for anything else: a line of another program in a shared
 * mail log ends with text a client chose (Postfix: "non-SMTP command from
 * unknown[192.0.2.1]: {...}"), so its first '{' is no record of ours. */
static const char *record_start(const char *line, size_t len)
{
	const char *p = line, *end = line + len;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < end && *p == '{')
		return p;
	for (const char *q = line; q + 1 < end; q++) {
		const char *w = q;
		bool ok;

		if (q[0] != ':' || q[1] != ' ')
			continue;
		while (w > line && w[-1] != ' ' && w[-1] != '\t')
			w--;
		ok = q - w == 8 && memcmp(w, "backstop", 8) == 0;
		if (!ok && q - w > 10 && memcmp(w, "backstop[", 9) == 0 && q[-1] == ']') {
			ok = true;
			for (const char *d = w + 9; d < q - 1; d++)
				ok &= *d >= '0' && *d <= '9';
		}
		if (!ok)
			return NULL;
		for (q += 2; q < end && (*q == ' ' || *q == '\t'); q++)
			;
		return q < end && *q == '{' ? q : NULL;
	}
	return NULL;
}

enum report_line_kind report_parse_line(const char *line, size_t len, struct report_event *ev)
{
	const char *brace = record_start(line, len);
	struct cursor c;
	char key[32], event[32] = "", ts[40] = "";

	memset(ev, 0, sizeof *ev);
	ev->ts = -1;
	if (brace == NULL)
		return REPORT_LINE_MALFORMED;
	c.p = brace + 1;
	c.end = line + len;
	skip_blanks(&c);
	if (c.p < c.end && *c.p == '}') {
		c.p++;
	} else {
		for (;;) {
			bool ok;
			skip_blanks(&c);
			if (!string(&c, key, sizeof key))
				return REPORT_LINE_MALFORMED;
			skip_blanks(&c);
			if (c.p >= c.end || *c.p++ != ':')
				return REPORT_LINE_MALFORMED;
			if (strcmp(key, "event") == 0)
				ok = field(&c, event, sizeof event, 1);
			else if (strcmp(key, "ts") == 0)
				ok = field(&c, ts, sizeof ts, 1);
			else if (strcmp(key, "server_ip") == 0)
				ok = field(&c, ev->server_ip, sizeof ev->server_ip, 1);
			else if (strcmp(key, "server_name") == 0)
				ok = field(&c, ev->server_name, sizeof ev->server_name, 1);
			else if (strcmp(key, "rcpt") == 0)
				ok = field(&c, ev->rcpt, sizeof ev->rcpt, 1);
			else if (strcmp(key, "class") == 0)
				ok = field(&c, ev->cls, sizeof ev->cls, 1);
			else if (strcmp(key, "orig_sender") == 0)
				ok = field(&c, ev->orig_sender, sizeof ev->orig_sender, 1);
			else if (strcmp(key, "orig_client_ip") == 0)
				ok = field(&c, ev->orig_client_ip, sizeof ev->orig_client_ip, 1);
			else if (strcmp(key, "subject") == 0)
				ok = field(&c, ev->subject, sizeof ev->subject, 1);
			else if (strcmp(key, "message_id") == 0)
				ok = field(&c, ev->message_id, sizeof ev->message_id, 1);
			else if (strcmp(key, "url_hosts") == 0)
				ok = url_hosts(&c, ev, 1);
			else
				ok = value(&c, 1);
			if (!ok)
				return REPORT_LINE_MALFORMED;
			skip_blanks(&c);
			if (c.p >= c.end)
				return REPORT_LINE_MALFORMED;
			if (*c.p == '}') {
				c.p++;
				break;
			}
			if (*c.p++ != ',')
				return REPORT_LINE_MALFORMED;
		}
	}
	skip_blanks(&c);
	if (c.p != c.end)
		return REPORT_LINE_MALFORMED;
	if (strcmp(event, "bounce_refused") != 0)
		return REPORT_LINE_OTHER;
	if (!report_parse_time(ts, strlen(ts), &ev->ts))
		ev->ts = -1;
	return REPORT_LINE_RECORD;
}

static bool digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool report_parse_time(const char *s, size_t len, long long *out)
{
	struct tm tm;
	int y, mo, d, h = 0, mi = 0, se = 0;
	size_t i;

	if (len > 1 && s[0] == '@') {
		long long v = 0;
		for (i = 1; i < len; i++) {
			if (s[i] < '0' || s[i] > '9' || v > 100000000000LL)
				return false;
			v = v * 10 + (s[i] - '0');
		}
		*out = v;
		return true;
	}
	if (len < 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) || !digits(s + 5, 2, &mo) ||
	    !digits(s + 8, 2, &d))
		return false;
	i = 10;
	if (i < len && (s[i] == 'T' || s[i] == ' ')) {
		if (len < i + 6 || !digits(s + i + 1, 2, &h) || s[i + 3] != ':' ||
		    !digits(s + i + 4, 2, &mi))
			return false;
		i += 6;
		if (i < len && s[i] == ':') {
			if (len < i + 3 || !digits(s + i + 1, 2, &se))
				return false;
			i += 3;
			if (i < len && s[i] == '.') {
				i++;
				while (i < len && s[i] >= '0' && s[i] <= '9')
					i++;
			}
		}
	}
	if (i < len && s[i] == 'Z')
		i++;
	if (i != len || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    se > 60)
		return false;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	*out = (long long)timegm(&tm);
	return true;
}

void report_reader_reset(struct report_reader *r, FILE *f)
{
	r->f = f;
	r->pos = r->fill = 0;
}

bool report_reader_next(struct report_reader *r, const char **line, size_t *len)
{
	size_t n = 0;
	bool too_long = false, any = false;

	for (;;) {
		if (r->pos == r->fill) {
			r->pos = 0;
			r->fill = fread(r->chunk, 1, sizeof r->chunk, r->f);
			if (r->fill == 0) {
				if (!any)
					return false;
				break;   /* the last line has no line end */
			}
		}
		any = true;
		const char *start = r->chunk + r->pos;
		const char *nl = memchr(start, '\n', r->fill - r->pos);
		size_t take = nl ? (size_t)(nl - start) : r->fill - r->pos;
		/* bounded: the part of a line past REPORT_LINE_MAX is dropped */
		if (!too_long && n + take <= REPORT_LINE_MAX) {
			memcpy(r->buf + n, start, take);
			n += take;
		} else {
			too_long = true;
		}
		r->pos += take + (nl != NULL);
		if (nl != NULL)
			break;
	}
	r->lines++;
	if (too_long) {
		r->long_lines++;
		n = 0;   /* an empty line: not a record */
	}
	if (n > 0 && r->buf[n - 1] == '\r')
		n--;
	r->buf[n] = '\0';
	*line = r->buf;
	*len = n;
	return true;
}

/*
 * log_json - the JSON string escaper and the two-form record builder
 * (see log_json.h for the escaping rules).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proxy/log_json.h"

static const char hex[] = "0123456789abcdef";

/* utf8_decode - the length of the valid UTF-8 sequence at in (len > 0
 * bytes, in[0] >= 0x80) and its code point, or 0 when it is not one:
 * overlong forms, surrogates, values over U+10FFFF, stray or missing
 * continuation bytes (RFC 3629 section 4). */
static size_t utf8_decode(const unsigned char *in, size_t len, uint32_t *cp)
{
	unsigned char c = in[0];
	size_t n;
	uint32_t v, min;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 2; v = c & 0x1f; min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3; v = c & 0x0f; min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4; v = c & 0x07; min = 0x10000;
	} else {
		return 0;   /* continuation byte, C0/C1 (overlong), F5..FF */
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((in[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (in[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

size_t json_escape(char *out, size_t cap, const char *in, size_t len, size_t *consumed)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0, i = 0;

	if (cap == 0) {
		if (consumed)
			*consumed = 0;
		return 0;
	}
	while (i < len) {
		unsigned char c = p[i];
		char esc[8];
		size_t need, step = 1;
		const char *src = esc;
		uint32_t cp = c;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			need = 2;
		} else if (c >= 0x20 && c < 0x7f) {
			esc[0] = (char)c;
			need = 1;
		} else {
			if (c >= 0x80) {
				step = utf8_decode(p + i, len - i, &cp);
				if (step == 0) {
					step = 1;
					cp = 0xfffd;   /* not UTF-8: replaced */
				} else if (cp > 0x9f && cp != 0x2028 && cp != 0x2029) {
					src = (const char *)p + i;   /* valid: as is */
					need = step;
					goto put;
				}
			}
			/* controls, DEL, C1 controls, line separators, U+FFFD */
			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = hex[(cp >> 12) & 15];
			esc[3] = hex[(cp >> 8) & 15];
			esc[4] = hex[(cp >> 4) & 15];
			esc[5] = hex[cp & 15];
			need = 6;
		}
put:
		if (o + need >= cap)
			break;
		memcpy(out + o, src, need);
		o += need;
		i += step;
	}
	out[o] = '\0';
	if (consumed)
		*consumed = i;
	return o;
}

/* ---- the record builder ---- */

/* room kept for the closing brackets of open containers */
#define CLOSE_RESERVE (LOG_REC_DEPTH + 1)

void log_rec_init(struct log_rec *r, char *text, size_t text_cap, char *json, size_t json_cap)
{
	memset(r, 0, sizeof *r);
	r->text = text;
	r->text_cap = text_cap;
	r->json = json_cap ? json : NULL;   /* no room at all: text only */
	r->json_cap = json_cap;
	if (text_cap)
		text[0] = '\0';
	if (json && json_cap)
		json[0] = '\0';
}

void log_rec_text(struct log_rec *r, const char *s)
{
	size_t n;

	if (s == NULL || r->text_cap == 0 || r->text_len + 1 >= r->text_cap)
		return;
	n = strlen(s);
	if (n > r->text_cap - 1 - r->text_len)
		n = r->text_cap - 1 - r->text_len;
	memcpy(r->text + r->text_len, s, n);
	r->text_len += n;
	r->text[r->text_len] = '\0';
}

void log_rec_textf(struct log_rec *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->text_cap == 0 || r->text_len + 1 >= r->text_cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(r->text + r->text_len, r->text_cap - r->text_len, fmt, ap);
	va_end(ap);
	if (n < 0)
		r->text[r->text_len] = '\0';
	else if ((size_t)n >= r->text_cap - r->text_len)
		r->text_len = r->text_cap - 1;
	else
		r->text_len += (size_t)n;
}

/* json room left for content: the closers of open containers stay free */
static size_t json_room(const struct log_rec *r)
{
	size_t limit = r->json_cap > CLOSE_RESERVE + 1 ? r->json_cap - CLOSE_RESERVE - 1 : 0;
	return r->json_len < limit ? limit - r->json_len : 0;
}

static bool json_put(struct log_rec *r, const char *s, size_t n)
{
	if (n > json_room(r))
		return false;
	memcpy(r->json + r->json_len, s, n);
	r->json_len += n;
	r->json[r->json_len] = '\0';
	return true;
}

/* json_put_string - "text" whole, or false */
static bool json_put_string(struct log_rec *r, const char *s, size_t len)
{
	size_t room = json_room(r), consumed, n;

	if (room < 2)
		return false;
	r->json[r->json_len] = '"';
	/* +1: json_escape's NUL lands where the closing quote goes */
	n = json_escape(r->json + r->json_len + 1, room - 1, s, len, &consumed);
	if (consumed < len || 1 + n + 1 > room) {
		r->json[r->json_len] = '\0';
		return false;
	}
	r->json[r->json_len + 1 + n] = '"';
	r->json_len += n + 2;
	r->json[r->json_len] = '\0';
	return true;
}

/* member_begin - the comma and "key": of a new value; false (and nothing
 * written) when it does not fit. The caller rolls back to *start. */
static bool member_begin(struct log_rec *r, const char *key, size_t *start)
{
	*start = r->json_len;
	if (r->comma[r->depth] && !json_put(r, ",", 1))
		return false;
	if (key && (!json_put_string(r, key, strlen(key)) || !json_put(r, ":", 1))) {
		r->json_len = *start;
		r->json[r->json_len] = '\0';
		return false;
	}
	return true;
}

static void member_end(struct log_rec *r, size_t start, bool ok)
{
	if (ok) {
		r->comma[r->depth] = true;
		return;
	}
	r->json_len = start;
	r->json[start] = '\0';
	r->json_cut = true;
}

static void json_value(struct log_rec *r, const char *key, const char *raw, const char *str, size_t len)
{
	size_t start;
	bool ok;

	if (r->json == NULL || (key == NULL && r->depth == 0))
		return;
	if (r->skip > 0) {
		r->json_cut = true;
		return;
	}
	ok = member_begin(r, key, &start);
	if (ok)
		ok = str ? json_put_string(r, str, len) : json_put(r, raw, strlen(raw));
	member_end(r, start, ok);
}

/* escape_into - printable ASCII kept except '\\' and the bytes in also;
 * anything else as \\xHH; cut with "..." when out is too small. */
static char *escape_into(const char *in, size_t len, char *out, size_t cap, const char *also)
{
	size_t o = 0;

	if (cap == 0)
		return out;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\' && !(also && strchr(also, c))) ? 1 : 4;
		if (o + need + 4 > cap) {
			if (cap >= 4 && o + 3 < cap) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o < cap ? o : cap - 1] = '\0';
	return out;
}

char *log_escape(const char *in, size_t len, char *out, size_t cap)
{
	return escape_into(in, len, out, cap, NULL);
}

/* The text summary line is read by people and by scripts that split it on
 * its own delimiters: a value the client chose (a quoted local part, a
 * HELO) must not contain them, or it could write "result: accepted" or a
 * second to=<...> into the line. */
#define LOG_FIELD_DELIMITERS " <>[]=,"

char *log_escape_field(const char *in, size_t len, char *out, size_t cap)
{
	return escape_into(in, len, out, cap, LOG_FIELD_DELIMITERS);
}

void log_rec_str(struct log_rec *r, const char *pre, const char *key, const char *value,
    size_t text_max, const char *post)
{
	if (pre || post) {
		log_rec_text(r, pre);
		if (value && text_max == LOG_REC_VERBATIM) {
			log_rec_text(r, value);
		} else if (value) {
			char esc[1024];
			if (text_max > sizeof esc)
				text_max = sizeof esc;
			log_rec_text(r, log_escape_field(value, strlen(value), esc, text_max));
		}
		log_rec_text(r, post);
	}
	if (value)
		json_value(r, key, NULL, value, strlen(value));
	else
		json_value(r, key, "null", NULL, 0);
}

void log_rec_uint(struct log_rec *r, const char *pre, const char *key, unsigned long long v,
    const char *post)
{
	char num[24];

	snprintf(num, sizeof num, "%llu", v);
	if (pre || post) {
		log_rec_text(r, pre);
		log_rec_text(r, num);
		log_rec_text(r, post);
	}
	json_value(r, key, num, NULL, 0);
}

void log_rec_null(struct log_rec *r, const char *key)
{
	json_value(r, key, "null", NULL, 0);
}

void log_rec_bool(struct log_rec *r, const char *key, bool v)
{
	json_value(r, key, v ? "true" : "false", NULL, 0);
}

/* container_begin - "key":[ or "key":{. A container that does not fit,
 * or one nested too deep, is skipped: its elements and end write nothing. */
static void container_begin(struct log_rec *r, const char *key, char open)
{
	size_t start;

	if (r->json == NULL)
		return;
	if (r->skip > 0 || r->depth >= LOG_REC_DEPTH) {
		r->json_cut = true;
		r->skip++;
		return;
	}
	if (!member_begin(r, key, &start) || !json_put(r, &open, 1)) {
		member_end(r, start, false);
		r->skip++;
		return;
	}
	r->comma[r->depth] = true;
	r->depth++;
	r->comma[r->depth] = false;
	r->close[r->depth] = open == '[' ? ']' : '}';
	/* its end is always written: CLOSE_RESERVE keeps room for it */
}

void log_rec_array_begin(struct log_rec *r, const char *key)
{
	container_begin(r, key, '[');
}

void log_rec_object_begin(struct log_rec *r, const char *key)
{
	container_begin(r, key, '{');
}

void log_rec_end(struct log_rec *r)
{
	if (r->json == NULL)
		return;
	if (r->skip > 0) {
		r->skip--;
		return;
	}
	if (r->depth == 0)
		return;
	r->json[r->json_len++] = r->close[r->depth];
	r->json[r->json_len] = '\0';
	r->depth--;
}

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."

void log_rec_checks(struct log_rec *r, const char *pre, const char *key, const char *notes,
    const char *post)
{
	const char *p = notes, *q;

	if (pre || post) {
		log_rec_text(r, pre);
		log_rec_text(r, notes);
		log_rec_text(r, post);
	}
	if (r->json == NULL)
		return;
	log_rec_object_begin(r, key);
	/* each name once, its values in order */
	for (; *p; p = *q ? q + 1 : q) {
		const char *eq, *w;
		char name[64], value[512];
		size_t nlen, vlen = 0;
		bool seen = false;

		q = p + strcspn(p, " ");
		if (q == p)
			continue;
		eq = memchr(p, '=', (size_t)(q - p));
		nlen = eq ? (size_t)(eq - p) : (size_t)(q - p);
		/* names are the checks' own words; anything else would be a
		 * key that could collide after escaping: left out */
		if (nlen == 0 || nlen >= sizeof name || strspn(p, NAME_CHARS) < nlen)
			continue;
		memcpy(name, p, nlen);
		name[nlen] = '\0';
		/* named before? then it was written with all its values */
		for (w = notes; w < p; ) {
			size_t wl = strcspn(w, " "), wn = strcspn(w, "= ");
			if (wn == nlen && memcmp(w, name, nlen) == 0)
				seen = true;
			w += wl + (w[wl] ? 1 : 0);
		}
		if (seen)
			continue;
		for (w = p; *w; ) {
			size_t wl = strcspn(w, " "), wn = strcspn(w, "= ");
			if (wn == nlen && memcmp(w, name, nlen) == 0) {
				const char *v = w[wn] == '=' ? w + wn + 1 : w + wn;
				size_t vl = (size_t)(w + wl - v);
				if (vlen + 1 + vl < sizeof value) {
					if (vlen)
						value[vlen++] = ' ';
					memcpy(value + vlen, v, vl);
					vlen += vl;
				}
			}
			w += wl + (w[wl] ? 1 : 0);
		}
		value[vlen] = '\0';
		json_value(r, name, NULL, value, vlen);
	}
	log_rec_end(r);
}

size_t json_envelope(char *out, size_t cap, const char *ts, const char *level, long pid,
    const char *event, const char *session, const char *msg, const char *members)
{
	size_t o = 0, n, mlen = members ? strlen(members) : 0;
	/* the tail that always fits: the msg string's end, "truncated", "}\n" */
	const size_t tail = 2 + sizeof ",\"truncated\":true}\n";
	char head[256];
	int h;

	if (cap < 256)
		return 0;
	/* ts, level and event are ours (no escaping needed, checked by the
	 * callers' construction); session ids are hex */
	h = snprintf(head, sizeof head, "{\"ts\":\"%s\",\"level\":\"%s\",\"pid\":%ld,\"event\":\"%s\","
	    "\"session\":%s%s%s,\"msg\":\"", ts, level, pid, event, session ? "\"" : "",
	    session ? session : "null", session ? "\"" : "");
	if (h < 0 || (size_t)h >= sizeof head || (size_t)h + tail >= cap)
		return 0;
	memcpy(out, head, (size_t)h);
	o = (size_t)h;
	n = json_escape(out + o, cap - o - tail, msg, strlen(msg), NULL);
	o += n;
	out[o++] = '"';
	if (mlen && o + 1 + mlen + 2 < cap) {
		out[o++] = ',';
		memcpy(out + o, members, mlen);
		o += mlen;
	} else if (mlen) {
		memcpy(out + o, ",\"truncated\":true", 17);
		o += 17;
	}
	out[o++] = '}';
	out[o++] = '\n';
	out[o] = '\0';
	return o;
}

void log_event_name(const char *fmt, char *out, size_t cap)
{
	const char *p = fmt;
	size_t o = 0;
	int words = 0;
	bool gap = false;

	if (cap == 0)
		return;
	if (strncmp(p, "%s: ", 4) == 0)
		p += 4;
	for (; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == ' ') {
			gap = o > 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_'))
			break;
		if (gap) {
			if (++words >= 4 || o + 2 >= cap || o >= 40)
				break;
			out[o++] = '_';
			gap = false;
		}
		if (o + 1 >= cap || o >= 40)
			break;
		out[o++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c == '-' ? '_' : c);
	}
	while (o > 0 && out[o - 1] == '_')
		o--;
	if (o == 0)
		snprintf(out, cap, "log");
	else
		out[o] = '\0';
}

/*
 * json_check.h - an independent strict JSON reader for the log tests
 * (test_log_json, fuzz_log_json): RFC 8259 values, strings decoded to
 * UTF-8, raw bytes checked against RFC 3629's table of well-formed
 * sequences, duplicate keys in an object refused. Written apart from
 * proxy/log_json.c on purpose: it judges that code's output.
 */
#ifndef JSON_CHECK_H
#define JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* utf8_wellformed - length of the well-formed sequence at p (RFC 3629
 * section 4 / Unicode table 3-7), 0 if there is none */
static inline size_t jc_utf8_len(const unsigned char *p, size_t n)
{
	static const struct { unsigned char lo0, hi0, lo1, hi1; size_t len; } rows[] = {
		{0xc2, 0xdf, 0x80, 0xbf, 2},
		{0xe0, 0xe0, 0xa0, 0xbf, 3}, {0xe1, 0xec, 0x80, 0xbf, 3},
		{0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3},
		{0xf0, 0xf0, 0x90, 0xbf, 4}, {0xf1, 0xf3, 0x80, 0xbf, 4},
		{0xf4, 0xf4, 0x80, 0x8f, 4},
	};
	if (n == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
		if (p[0] < rows[r].lo0 || p[0] > rows[r].hi0)
			continue;
		if (n < rows[r].len || p[1] < rows[r].lo1 || p[1] > rows[r].hi1)
			return 0;
		for (size_t i = 2; i < rows[r].len; i++)
			if (p[i] < 0x80 || p[i] > 0xbf)
				return 0;
		return rows[r].len;
	}
	return 0;
}

/* jc_sanitize - what a JSON string of in must decode to: in, with each
 * byte that is not part of a well-formed sequence replaced by U+FFFD.
 * out needs 3 * n bytes. Returns its length. */
static inline size_t jc_sanitize(const unsigned char *in, size_t n, unsigned char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; ) {
		size_t l = jc_utf8_len(in + i, n - i);
		if (l == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(out + o, in + i, l);
			o += l;
			i += l;
		}
	}
	return o;
}

static inline size_t jc_put_utf8(uint32_t cp, unsigned char *o)
{
	if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
	if (cp < 0x800) { o[0] = (unsigned char)(0xc0 | cp >> 6); o[1] = (unsigned char)(0x80 | (cp & 63)); return 2; }
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | cp >> 12); o[1] = (unsigned char)(0x80 | ((cp >> 6) & 63));
		o[2] = (unsigned char)(0x80 | (cp & 63)); return 3;
	}
	o[0] = (unsigned char)(0xf0 | cp >> 18); o[1] = (unsigned char)(0x80 | ((cp >> 12) & 63));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 63)); o[3] = (unsigned char)(0x80 | (cp & 63));
	return 4;
}

static inline int jc_hex4(const unsigned char *p, uint32_t *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned char c = p[i];
		*v <<= 4;
		if (c >= '0' && c <= '9') *v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f') *v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F') *v |= (uint32_t)(c - 'A' + 10);
		else return -1;
	}
	return 0;
}

struct jc {
	const unsigned char *p, *end;
	int depth;
};

/*
 * jc_string - a string at j->p (which is at '"'): decoded into out (NULL:
 * not kept; else cap bytes, *olen set). Lone surrogates are refused.
 */
static inline bool jc_string(struct jc *j, unsigned char *out, size_t cap, size_t *olen)
{
	size_t o = 0;
	unsigned char tmp[4];

	if (j->p >= j->end || *j->p != '"')
		return false;
	j->p++;
	while (j->p < j->end && *j->p != '"') {
		unsigned char c = *j->p;
		size_t l;
		const unsigned char *src = tmp;

		if (c < 0x20)
			return false;   /* raw control character */
		if (c == '\\') {
			uint32_t cp;
			if (j->end - j->p < 2)
				return false;
			switch (j->p[1]) {
			case '"': case '\\': case '/': tmp[0] = j->p[1]; l = 1; j->p += 2; break;
			case 'b': tmp[0] = '\b'; l = 1; j->p += 2; break;
			case 'f': tmp[0] = '\f'; l = 1; j->p += 2; break;
			case 'n': tmp[0] = '\n'; l = 1; j->p += 2; break;
			case 'r': tmp[0] = '\r'; l = 1; j->p += 2; break;
			case 't': tmp[0] = '\t'; l = 1; j->p += 2; break;
			case 'u':
				if (j->end - j->p < 6 || jc_hex4(j->p + 2, &cp) < 0)
					return false;
				j->p += 6;
				if (cp >= 0xdc00 && cp <= 0xdfff)
					return false;
				if (cp >= 0xd800 && cp <= 0xdbff) {
					uint32_t lo;
					if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
					    jc_hex4(j->p + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
						return false;
					j->p += 6;
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
				l = jc_put_utf8(cp, tmp);
				break;
			default:
				return false;
			}
		} else {
			l = jc_utf8_len(j->p, (size_t)(j->end - j->p));
			if (l == 0)
				return false;   /* not UTF-8 */
			src = j->p;
			j->p += l;
		}
		if (out) {
			if (o + l > cap)
				return false;
			memcpy(out + o, src, l);
		}
		o += l;
	}
	if (j->p >= j->end)
		return false;
	j->p++;
	if (olen)
		*olen = o;
	return true;
}

static inline void jc_ws(struct jc *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static inline bool jc_value(struct jc *j);

static inline bool jc_number(struct jc *j)
{
	const unsigned char *s = j->p;
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (j->p < j->end && *j->p >= '1' && *j->p <= '9')
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	else
		return false;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return false;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return false;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	return j->p > s;
}

#define JC_MAX_KEYS 128
#define JC_KEY_MAX 256   /* a check name: 63 bytes, each up to 3 decoded */

static inline bool jc_object(struct jc *j)
{
	static unsigned char keys[8][JC_MAX_KEYS][JC_KEY_MAX];
	size_t klen[JC_MAX_KEYS], nkeys = 0;
	int d = j->depth;

	j->p++;
	jc_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return true;
	}
	for (;;) {
		unsigned char key[JC_KEY_MAX];
		size_t kl;
		jc_ws(j);
		if (!jc_string(j, key, sizeof key, &kl))
			return false;
		/* duplicate keys: a client that could add one could override */
		if (d < 8) {
			for (size_t i = 0; i < nkeys; i++)
				if (klen[i] == kl && memcmp(keys[d][i], key, kl) == 0)
					return false;
			if (nkeys < JC_MAX_KEYS) {
				memcpy(keys[d][nkeys], key, kl);
				klen[nkeys++] = kl;
			}
		}
		jc_ws(j);
		if (j->p >= j->end || *j->p != ':')
			return false;
		j->p++;
		if (!jc_value(j))
			return false;
		jc_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			return true;
		}
		return false;
	}
}

static inline bool jc_array(struct jc *j)
{
	j->p++;
	jc_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return true;
	}
	for (;;) {
		if (!jc_value(j))
			return false;
		jc_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return true;
		}
		return false;
	}
}

static inline bool jc_value(struct jc *j)
{
	bool ok;

	jc_ws(j);
	if (j->p >= j->end || j->depth > 32)
		return false;
	j->depth++;
	switch (*j->p) {
	case '{': ok = jc_object(j); break;
	case '[': ok = jc_array(j); break;
	case '"': ok = jc_string(j, NULL, 0, NULL); break;
	case 't': ok = j->end - j->p >= 4 && memcmp(j->p, "true", 4) == 0 && (j->p += 4); break;
	case 'f': ok = j->end - j->p >= 5 && memcmp(j->p, "false", 5) == 0 && (j->p += 5); break;
	case 'n': ok = j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0 && (j->p += 4); break;
	default: ok = jc_number(j); break;
	}
	j->depth--;
	return ok;
}

/* jc_log_line - s[0..n) is exactly one JSON object and a final "\n",
 * with no other newline and no raw control character anywhere. */
static inline bool jc_log_line(const char *s, size_t n)
{
	struct jc j = {(const unsigned char *)s, (const unsigned char *)s + n, 0};

	if (n < 3 || s[n - 1] != '\n' || s[0] != '{')
		return false;
	for (size_t i = 0; i + 1 < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	j.end--;
	if (!jc_value(&j))
		return false;
	return j.p == j.end;
}

/* jc_find_string - the decoded value of top-level key in an object line
 * (a shallow scan good enough for the tests' own lines). */
static inline bool jc_find_string(const char *line, size_t n, const char *key, unsigned char *out,
    size_t cap, size_t *olen)
{
	struct jc j = {(const unsigned char *)line, (const unsigned char *)line + n, 0};
	size_t kl = strlen(key);

	if (j.p >= j.end || *j.p != '{')
		return false;
	j.p++;
	for (;;) {
		unsigned char k[JC_KEY_MAX];
		size_t got;
		jc_ws(&j);
		if (!jc_string(&j, k, sizeof k, &got))
			return false;
		jc_ws(&j);
		if (j.p >= j.end || *j.p != ':')
			return false;
		j.p++;
		jc_ws(&j);
		if (got == kl && memcmp(k, key, kl) == 0)
			return j.p < j.end && *j.p == '"' && jc_string(&j, out, cap, olen);
		if (!jc_value(&j))
			return false;
		jc_ws(&j);
		if (j.p >= j.end || *j.p != ',')
			return false;
		j.p++;
	}
}

#endif

/*
 * bounce_fields - what the classifier (bounce.c) reads out of header
 * fields: unfolded values, message ids, addresses, RFC 2047 subjects,
 * Received hops, and the fields of an original message. No I/O; every
 * output is bounded by the caller's buffer and NUL-terminated.
 */
#include "smtp/bounce_fields.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtp/mime.h"
#include "smtp/received_ip.h"
#include "smtp/smtp_received.h"

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* lowercase - s[0..n) into out (cap), lowercased, NUL and other controls as blanks. */
void bounce_lowercase(const char *s, size_t n, char *out, size_t cap)
{
	size_t i;
	if (n >= cap)
		n = cap - 1;
	for (i = 0; i < n; i++) {
		char c = s[i];
		out[i] = (unsigned char)c < ' ' ? ' ' : lower(c);
	}
	out[i] = '\0';
}

/* unfold - the value without its line breaks (RFC 5322 2.2.3), trimmed, into out. */
void bounce_unfold(const char *v, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	while (n > 0 && is_blank(*v))
		v++, n--;
	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		if (v[i] == '\r' || v[i] == '\n')
			continue;
		out[o++] = v[i] == '\0' ? ' ' : v[i];
	}
	while (o > 0 && is_blank(out[o - 1]))
		o--;
	out[o] = '\0';
}

void bounce_copy(char *dst, size_t cap, const char *src, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* first_msgid - the first "<...>" of v into out; when there is none, a bare
 * id without blanks is wrapped ("id@host" -> "<id@host>"). */
bool bounce_first_msgid(const char *v, size_t n, char *out, size_t cap)
{
	const char *lt = memchr(v, '<', n);
	if (lt) {
		const char *gt = memchr(lt, '>', (size_t)(v + n - lt));
		if (gt && gt - lt > 1 && (size_t)(gt - lt + 1) < cap) {
			size_t k = 0;
			for (const char *p = lt; p <= gt; p++)
				if (!is_blank(*p))
					out[k++] = *p;
			out[k] = '\0';
			return true;
		}
		return false;
	}
	char tmp[256];
	bounce_unfold(v, n, tmp, sizeof tmp);
	if (!tmp[0] || strpbrk(tmp, " \t") || !strchr(tmp, '@') || strlen(tmp) + 3 > cap)
		return false;
	snprintf(out, cap, "<%s>", tmp);
	return true;
}

/* addr_spec - the address of a From:/Return-Path: value: inside <...> when
 * there, else the first word with an '@'. Comments and quoted display
 * names before it are skipped well enough for logging and matching. */
void bounce_addr_spec(const char *v, size_t n, char *out, size_t cap, char *name, size_t name_cap)
{
	char tmp[512];
	bounce_unfold(v, n, tmp, sizeof tmp);
	out[0] = '\0';
	if (name)
		name[0] = '\0';
	char *lt = strrchr(tmp, '<');
	if (lt) {
		char *gt = strchr(lt, '>');
		if (gt) {
			bounce_copy(out, cap, lt + 1, (size_t)(gt - lt - 1));
			if (name)
				bounce_copy(name, name_cap, tmp, (size_t)(lt - tmp));
			return;
		}
	}
	/* "addr (Display Name)" or a bare address */
	char *at = strchr(tmp, '@');
	char *start = at ? at : tmp, *end;
	if (!at) {
		/* "MAILER-DAEMON" without a domain */
		start = tmp;
		while (*start && is_blank(*start))
			start++;
		end = start;
		while (*end && !is_blank(*end) && *end != '(')
			end++;
		bounce_copy(out, cap, start, (size_t)(end - start));
	} else {
		while (start > tmp && !is_blank(start[-1]) && start[-1] != '"' && start[-1] != ',')
			start--;
		end = at;
		while (*end && !is_blank(*end) && *end != ',' && *end != '(' && *end != '>')
			end++;
		bounce_copy(out, cap, start, (size_t)(end - start));
	}
	if (name) {
		char *lp = strchr(tmp, '('), *rp = lp ? strchr(lp, ')') : NULL;
		if (lp && rp)
			bounce_copy(name, name_cap, lp + 1, (size_t)(rp - lp - 1));
	}
}

/* rfc2047_decode - encoded-words decoded to their bytes (charset ignored:
 * only ASCII and UTF-8 phrases are matched), whitespace between adjacent
 * encoded words dropped, into out. Bounded by cap; malformed words are
 * kept as they are. */
void bounce_rfc2047_decode(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	bool last_was_word = false;
	while (*s && o + 1 < cap) {
		if (s[0] == '=' && s[1] == '?') {
			const char *q1 = strchr(s + 2, '?');
			const char *q2 = q1 && q1[1] && q1[2] == '?' ? q1 + 2 : NULL;
			const char *end = q2 ? strstr(q2 + 1, "?=") : NULL;
			if (end) {
				char enc = lower(q1[1]);
				const char *p = q2 + 1;
				if (enc == 'b') {
					uint32_t acc = 0;
					unsigned nb = 0;
					for (; p < end && o + 1 < cap; p++) {
						int v = -1;
						char c = *p;
						if (c >= 'A' && c <= 'Z') v = c - 'A';
						else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
						else if (c >= '0' && c <= '9') v = c - '0' + 52;
						else if (c == '+') v = 62;
						else if (c == '/') v = 63;
						if (v < 0)
							continue;
						acc = acc << 6 | (uint32_t)v;
						if (++nb % 4 == 0) {
							out[o++] = (char)(acc >> 16);
							if (o + 1 < cap) out[o++] = (char)(acc >> 8);
							if (o + 1 < cap) out[o++] = (char)acc;
							acc = 0;
						}
					}
					if (nb % 4 == 2 && o + 1 < cap)
						out[o++] = (char)(acc >> 4);
					else if (nb % 4 == 3 && o + 2 < cap) {
						out[o++] = (char)(acc >> 10);
						out[o++] = (char)(acc >> 2);
					}
				} else {
					for (; p < end && o + 1 < cap; p++) {
						static const char hex[] = "0123456789abcdef";
						const char *h1, *h2;
						if (*p == '_')
							out[o++] = ' ';
						else if (*p == '=' && p + 2 < end && p[1] && p[2] &&
						    (h1 = strchr(hex, lower(p[1]))) && (h2 = strchr(hex, lower(p[2])))) {
							out[o++] = (char)((h1 - hex) << 4 | (h2 - hex));
							p += 2;
						} else
							out[o++] = *p;
					}
				}
				s = end + 2;
				last_was_word = true;
				continue;
			}
		}
		if (last_was_word && is_blank(*s)) {
			/* blanks between two encoded words go, before anything else stay */
			const char *t = s;
			while (is_blank(*t))
				t++;
			if (t[0] == '=' && t[1] == '?') {
				s = t;
				continue;
			}
		}
		last_was_word = false;
		out[o++] = *s++;
	}
	out[o] = '\0';
}

/* bounce_hop_slot - where the seen-th Received: field (0 = topmost) is
 * stored: in order up to BOUNCE_RECEIVED_MAX, then over the oldest of the
 * bottom ring, so a chain of any length costs one parse per field and no
 * copying. */
static size_t bounce_hop_slot(size_t seen)
{
	if (seen < BOUNCE_RECEIVED_MAX)
		return seen;
	return BOUNCE_RECEIVED_TOP + (seen - BOUNCE_RECEIVED_TOP) %
	    (BOUNCE_RECEIVED_MAX - BOUNCE_RECEIVED_TOP);
}

void bounce_parse_received(const char *v, size_t n, struct bounce_hop *hop)
{
	char tmp[1024], low[1024];
	bounce_unfold(v, n, tmp, sizeof tmp);
	bounce_lowercase(tmp, strlen(tmp), low, sizeof low);
	memset(hop, 0, sizeof *hop);
	/* from: the word after a leading "from" */
	if (strncmp(low, "from ", 5) == 0) {
		const char *p = tmp + 5, *e;
		while (*p == ' ')
			p++;
		e = p;
		while (*e && !is_blank(*e) && *e != '(' && *e != ';')
			e++;
		bounce_copy(hop->from, sizeof hop->from, p, (size_t)(e - p));
	}
	/* by: the word after " by " (or a leading "by") */
	const char *by = strncmp(low, "by ", 3) == 0 ? low : strstr(low, " by ");
	size_t by_off = by ? (size_t)(by - low) + (by == low ? 3 : 4) : 0;
	if (by) {
		const char *p = tmp + by_off, *e;
		while (*p == ' ')
			p++;
		e = p;
		while (*e && !is_blank(*e) && *e != '(' && *e != ';')
			e++;
		bounce_copy(hop->by, sizeof hop->by, p, (size_t)(e - p));
	}
	/* ip: the address the receiving side saw. The from clause opens with
	 * the client's HELO (Postfix, Sendmail, Exchange: "from HELO (name
	 * [ip])", "from HELO (ip)") or, in Exim, the address itself or the
	 * reverse name ("from [ip] (helo=H)", "from name ([H]) [ip]"); qmail
	 * writes "from name (HELO H) (ip)". The client chooses its HELO, so
	 * the address is the LAST address-like token of the clause, bracketed
	 * or alone in parentheses, never one that follows "helo=" or "HELO ". */
	const char *limit = by ? tmp + by_off : tmp + strlen(tmp);
	for (const char *p = tmp; p < limit; p++) {
		const char *ip, *e;
		if (*p == '[') {
			ip = p + 1;
			if ((e = memchr(ip, ']', (size_t)(limit - ip))) == NULL)
				break;
		} else if (*p == '(') {
			ip = p + 1;
			e = ip + strspn(ip, "0123456789abcdefABCDEF.:");
			if (e >= limit || *e != ')')
				continue;
		} else {
			continue;
		}
		/* the client's own word: "helo=H", "(HELO H)" */
		size_t at = (size_t)(p - tmp);
		bool helo = (at >= 5 && strncmp(low + at - 5, "helo=", 5) == 0) ||
		    (at >= 5 && strncmp(low + at - 5, "helo ", 5) == 0);
		const char *a = ip;
		if ((size_t)(e - a) > 5 && strncmp(low + (a - tmp), "ipv6:", 5) == 0)
			a += 5;
		bool ok = e > a && !helo;
		for (const char *c = a; c < e && ok; c++)
			if (!strchr("0123456789abcdefABCDEF.:", *c))
				ok = false;
		if (ok && (memchr(a, '.', (size_t)(e - a)) != NULL || memchr(a, ':', (size_t)(e - a)) != NULL))
			bounce_copy(hop->ip, sizeof hop->ip, a, (size_t)(e - a));
		p = e;
	}
	/* site_relay: the receiving side's reverse lookup of its client, from
	 * the TCP-info comment ("from HELO (rdns [ip])": Postfix, Sendmail,
	 * Gmail); Exim ("from rdns ([ip] helo=H)") and qmail ("from rdns (HELO
	 * H) (ip)") write the HELO apart, so their name after "from" is their
	 * lookup. Decided here, while the text is at hand: the name is not
	 * kept (16 more names per original would cost the scan 8 KiB). */
	struct smtp_received r;
	const char *rdns = NULL;
	smtp_received_parse(tmp, strlen(tmp), &r);
	if (r.from_rdns[0])
		rdns = r.from_rdns;
	else if (r.from_helo[0] && r.from_name[0] && strcasecmp(r.from_name, "unknown") != 0)
		rdns = r.from_name;
	hop->site_relay = rdns != NULL && received_same_registered_domain(rdns, hop->by);
}

/* capture - a field of the original into o (the first of each kind wins;
 * Received fields are appended, topmost first). */
void bounce_capture(struct bounce_original *o, const char *field, size_t len)
{
	size_t vlen;
	const char *v = mime_field_value(field, len, &vlen);
	if (!v)
		return;
	if (mime_field_name_is(field, len, "Return-Path")) {
		if (!o->return_path[0])
			bounce_addr_spec(v, vlen, o->return_path, sizeof o->return_path, NULL, 0);
	} else if (mime_field_name_is(field, len, "Message-ID")) {
		if (!o->message_id[0])
			bounce_first_msgid(v, vlen, o->message_id, sizeof o->message_id);
	} else if (mime_field_name_is(field, len, "From")) {
		if (!o->from[0])
			bounce_addr_spec(v, vlen, o->from, sizeof o->from, NULL, 0);
	} else if (mime_field_name_is(field, len, "Subject")) {
		if (!o->subject[0])
			bounce_unfold(v, vlen, o->subject, sizeof o->subject);
	} else if (mime_field_name_is(field, len, "Date")) {
		if (!o->date[0])
			bounce_unfold(v, vlen, o->date, sizeof o->date);
	} else if (mime_field_name_is(field, len, "X-Backstop-Sig")) {
		if (!o->backstop_sig[0])
			bounce_unfold(v, vlen, o->backstop_sig, sizeof o->backstop_sig);
	} else if (mime_field_name_is(field, len, "Received")) {
		bounce_parse_received(v, vlen, &o->hops[bounce_hop_slot(o->hops_seen)]);
		o->hops_seen++;
		if (o->nhops < BOUNCE_RECEIVED_MAX)
			o->nhops++;
	} else
		return;
	/* a copy with any of these is an original we can name */
	if (o->message_id[0] || o->return_path[0] || o->nhops || o->backstop_sig[0] ||
	    (o->from[0] && (o->subject[0] || o->date[0])))
		o->found = true;
}


/*
 * smtp_received - see smtp_received.h. A small tokenizer (atoms, address
 * literals, quoted strings, nested comments, ';'), then the clauses read
 * off its top-level tokens and the from clause's comments read as TCP-info.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_received.h"

enum tok_kind { TOK_END, TOK_SEMI, TOK_ATOM, TOK_LITERAL, TOK_QUOTED, TOK_COMMENT };

struct tok {
	enum tok_kind kind;
	const char *s;   /* ATOM: the atom; LITERAL: inside the brackets;
	                    COMMENT: inside the parentheses */
	size_t len;
};

struct cursor {
	const char *p, *end;
	bool malformed;
};

static bool is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_special(unsigned char c)
{
	return c == '(' || c == ')' || c == '[' || c == ']' || c == ';' || c == '"';
}

/* comment_end - c->p is at '('; moves past the matching ')'. false when
 * it is unterminated or nests too deep (malformed; c->p at the end). */
static bool comment_end(struct cursor *c)
{
	unsigned depth = 0;

	while (c->p < c->end) {
		unsigned char ch = (unsigned char)*c->p++;
		if (ch == '\\') {          /* quoted-pair */
			if (c->p < c->end)
				c->p++;
		} else if (ch == '(') {
			if (++depth > SMTP_RECEIVED_COMMENT_DEPTH)
				break;
		} else if (ch == ')') {
			if (--depth == 0)
				return true;
		} else if (ch == '\0') {
			c->malformed = true;
		}
	}
	c->malformed = true;
	c->p = c->end;
	return false;
}

static void next_token(struct cursor *c, struct tok *t)
{
	const char *start;

	while (c->p < c->end && is_blank((unsigned char)*c->p))
		c->p++;
	t->s = c->p;
	t->len = 0;
	if (c->p >= c->end) {
		t->kind = TOK_END;
		return;
	}
	start = c->p;
	switch (*c->p) {
	case ';':
		c->p++;
		t->kind = TOK_SEMI;
		return;
	case '(':
		if (!comment_end(c)) {
			t->kind = TOK_END;
			return;
		}
		t->kind = TOK_COMMENT;
		t->s = start + 1;
		t->len = (size_t)(c->p - start) - 2;
		return;
	case '"':
		for (c->p++; c->p < c->end && *c->p != '"'; c->p++)
			if (*c->p == '\\' && c->p + 1 < c->end)
				c->p++;
		if (c->p >= c->end) {
			c->malformed = true;
			t->kind = TOK_END;
			return;
		}
		c->p++;
		t->kind = TOK_QUOTED;
		return;
	case '[':
		for (c->p++; c->p < c->end && *c->p != ']'; c->p++)
			if (*c->p == '[' || *c->p == '(' || is_blank((unsigned char)*c->p))
				break;
		if (c->p >= c->end || *c->p != ']') {
			c->malformed = true;
			c->p = c->end;
			t->kind = TOK_END;
			return;
		}
		t->kind = TOK_LITERAL;
		t->s = start + 1;
		t->len = (size_t)(c->p - start) - 1;
		c->p++;
		/* Exim: "[192.0.2.1]:2525", the client's port */
		if (c->p + 1 < c->end && *c->p == ':' && *(c->p + 1) >= '0' && *(c->p + 1) <= '9')
			for (c->p++; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++)
				;
		return;
	case ')':
	case ']':
		/* a stray closer: skipped as a one-byte atom nobody reads */
		c->malformed = true;
		c->p++;
		t->kind = TOK_ATOM;
		t->len = 1;
		return;
	default:
		break;
	}
	while (c->p < c->end && !is_blank((unsigned char)*c->p) && !is_special((unsigned char)*c->p)) {
		if (*c->p == '\0')
			c->malformed = true;
		c->p++;
	}
	t->kind = TOK_ATOM;
	t->len = (size_t)(c->p - start);
}

/* host_name - copy s[0..len) to out when it is a plain ASCII host name
 * (trailing dot removed); false otherwise, out untouched. */
static bool host_name(const char *s, size_t len, char *out)
{
	size_t label = 0;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > SMTP_RECEIVED_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	if (label == 0)
		return false;   /* "a.." */
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

bool smtp_received_addr_canon(const char *s, size_t len, char *out)
{
	char buf[64];
	unsigned char bin[16];

	if (len >= 5 && strncasecmp(s, "IPv6:", 5) == 0) {
		s += 5;
		len -= 5;
	}
	if (len == 0 || len >= sizeof buf || memchr(s, '\0', len) != NULL)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (memchr(buf, ':', len) == NULL)
		return inet_pton(AF_INET, buf, bin) == 1 &&
		    inet_ntop(AF_INET, bin, out, SMTP_RECEIVED_ADDR_MAX) != NULL;
	if (inet_pton(AF_INET6, buf, bin) != 1)
		return false;
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (memcmp(bin, mapped, sizeof mapped) == 0)
		return inet_ntop(AF_INET, bin + 12, out, SMTP_RECEIVED_ADDR_MAX) != NULL;
	return inet_ntop(AF_INET6, bin, out, SMTP_RECEIVED_ADDR_MAX) != NULL;
}

static bool from_addr_add(struct smtp_received *r, const char *s, size_t len)
{
	char canon[SMTP_RECEIVED_ADDR_MAX];

	if (!smtp_received_addr_canon(s, len, canon))
		return false;
	if (r->from_naddrs < SMTP_RECEIVED_ADDRS)
		snprintf(r->from_addrs[r->from_naddrs++], SMTP_RECEIVED_ADDR_MAX, "%s", canon);
	return true;
}

static bool atom_is(const struct tok *t, const char *word)
{
	return t->kind == TOK_ATOM && t->len == strlen(word) && strncasecmp(t->s, word, t->len) == 0;
}

/* tcp_info - a comment of the from part: addresses, the reverse name
 * (the word just before an address), the HELO name (Exim "helo=x",
 * qmail "HELO x"). A HELO literal is the client's claim, not an address
 * of the connection: it is never taken as one. Nested comments
 * (Sendmail's "(may be forged)") are skipped. */
static void tcp_info(struct smtp_received *r, const char *s, size_t len)
{
	struct cursor c = {s, s + len, false};
	struct tok t;
	const char *word = NULL;   /* the last plain word, for the rdns */
	size_t word_len = 0;
	bool want_helo = false;

	for (next_token(&c, &t); t.kind != TOK_END; next_token(&c, &t)) {
		bool addr = false;
		if (want_helo) {
			want_helo = false;
			if (t.kind == TOK_ATOM && !r->from_helo[0])
				host_name(t.s, t.len, r->from_helo);
			continue;
		}
		if (t.kind == TOK_LITERAL) {
			addr = from_addr_add(r, t.s, t.len);
		} else if (t.kind == TOK_ATOM) {
			const char *at = memchr(t.s, '@', t.len);
			if (atom_is(&t, "HELO")) {
				want_helo = true;
			} else if (t.len >= 5 && strncasecmp(t.s, "helo=", 5) == 0) {
				if (t.len == 5)
					want_helo = true;   /* helo=[192.0.2.1] */
				else if (!r->from_helo[0])
					host_name(t.s + 5, t.len - 5, r->from_helo);
			} else if (memchr(t.s, '=', t.len) != NULL) {
				/* port=, ident=, ...: not names */
			} else if (from_addr_add(r, t.s, t.len)) {
				addr = true;   /* Exchange, qmail: "(192.0.2.1)" */
			} else if (at != NULL) {
				word = at + 1;   /* Sendmail ident: user@rdns */
				word_len = t.len - (size_t)(word - t.s);
			} else {
				word = t.s;
				word_len = t.len;
			}
		}
		if (addr && word != NULL && !r->from_rdns[0] &&
		    !(word_len == 7 && strncasecmp(word, "unknown", 7) == 0))
			host_name(word, word_len, r->from_rdns);
		if (t.kind != TOK_ATOM || addr)
			word = NULL;
	}
}

enum clause { CLAUSE_NONE, CLAUSE_FROM, CLAUSE_BY, CLAUSE_OTHER };

enum smtp_received_status smtp_received_parse(const char *body, size_t len,
    struct smtp_received *r)
{
	static const char *const others[] = {"via", "with", "id", "for", NULL};
	struct cursor c = {body, body + len, false};
	enum clause clause = CLAUSE_NONE;
	bool want_name = false;
	struct tok t;
	char name_lit[64] = "", name_addr[SMTP_RECEIVED_ADDR_MAX] = "";

	memset(r, 0, sizeof *r);
	if (len > SMTP_RECEIVED_BODY_MAX)
		return SMTP_RECEIVED_TOO_LONG;
	for (next_token(&c, &t); t.kind != TOK_END && t.kind != TOK_SEMI; next_token(&c, &t)) {
		if (atom_is(&t, "from") || atom_is(&t, "by")) {
			bool from = t.len == 4;
			bool *seen = from ? &r->has_from : &r->has_by;
			want_name = !*seen;
			clause = *seen ? CLAUSE_OTHER : from ? CLAUSE_FROM : CLAUSE_BY;
			if (*seen)
				c.malformed = true;   /* a second from or by: the first counts */
			*seen = true;
			continue;
		}
		bool other = false;
		for (size_t i = 0; others[i] && !other; i++)
			other = atom_is(&t, others[i]);
		if (other) {
			clause = CLAUSE_OTHER;
			want_name = false;
			continue;
		}
		if (want_name && (t.kind == TOK_ATOM || t.kind == TOK_LITERAL)) {
			want_name = false;
			if (clause == CLAUSE_FROM) {
				/* a literal here is the client's HELO in Postfix and
				 * Sendmail ("from [192.0.2.200] (unknown [192.0.2.1])"),
				 * the address only in Exim's "from [192.0.2.1] (helo=x)":
				 * taken at the end, when the TCP-info gave none */
				if (t.kind == TOK_LITERAL || !smtp_received_addr_canon(t.s, t.len, name_addr))
					name_addr[0] = '\0';
				if (t.kind == TOK_LITERAL)
					snprintf(name_lit, sizeof name_lit, "%.*s",
					    (int)(t.len < sizeof name_lit ? t.len : 0), t.s);
				else if (!name_addr[0])
					host_name(t.s, t.len, r->from_name);
			} else if (!smtp_received_addr_canon(t.s, t.len, r->by_addr)) {
				r->by_addr[0] = '\0';
				if (t.kind == TOK_ATOM)
					host_name(t.s, t.len, r->by_name);
			}
			continue;
		}
		if (clause != CLAUSE_FROM || want_name)
			continue;
		if (t.kind == TOK_LITERAL)
			from_addr_add(r, t.s, t.len);   /* "from name [192.0.2.1]" */
		else if (t.kind == TOK_COMMENT)
			tcp_info(r, t.s, t.len);
	}
	if (r->from_naddrs == 0 && name_lit[0])
		from_addr_add(r, name_lit, strlen(name_lit));
	if (r->from_naddrs == 0 && name_addr[0])
		from_addr_add(r, name_addr, strlen(name_addr));
	return c.malformed ? SMTP_RECEIVED_MALFORMED : SMTP_RECEIVED_OK;
}

const char *smtp_received_strerror(enum smtp_received_status st)
{
	switch (st) {
	case SMTP_RECEIVED_OK:
		return "ok";
	case SMTP_RECEIVED_MALFORMED:
		return "malformed";
	case SMTP_RECEIVED_TOO_LONG:
		return "too long";
	}
	return "?";
}

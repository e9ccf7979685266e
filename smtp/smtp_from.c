/*
 * smtp_from - the domains of an RFC 5322 From: field body (see smtp_from.h).
 *
 * Two layers. The lexer turns the body into tokens (atom, quoted-string,
 * domain-literal, one special character) and skips CFWS, comments
 * included; comments nest by counting, not by recursion, and deeper than
 * SMTP_FROM_COMMENT_DEPTH is a syntax error. The parser walks RFC 5322
 * 3.4 mailbox-list over those tokens with one token of lookahead and no
 * recursion either. Every byte is judged once; nothing is allocated; a
 * domain is length-checked before each append into its fixed buffer.
 *
 * What is refused, and why: NUL and bare CR/LF anywhere (they are how
 * header smuggling starts, RFC 5322 obs-qp would allow them in quoted
 * pairs); invalid UTF-8 (RFC 6532 3.2 allows only UTF-8); groups (RFC
 * 5322 3.6.2: From is a mailbox-list); a mailbox without addr-spec ("<>").
 */
#include <string.h>

#include "smtp/smtp_addr.h"
#include "smtp/smtp_from.h"

enum tok_type {
	TOK_END,
	TOK_ATOM,       /* 1*atext, UTF-8 included */
	TOK_QSTRING,    /* "...", slice includes the quotes */
	TOK_LITERAL,    /* [...], slice includes the brackets */
	TOK_SPECIAL,    /* one of < > : ; @ , . */
	TOK_ERROR,
};

struct tok {
	enum tok_type type;
	const char *p;
	size_t n;
	char special;
	bool has_8bit;
};

struct lexer {
	const char *s;
	size_t len;
	size_t i;
	enum smtp_from_status err; /* set with TOK_ERROR */
};

static bool is_alnum(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* is_atext - RFC 5322 3.2.3, ASCII part. */
static bool is_atext(unsigned char c)
{
	return is_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c));
}


/*
 * fold_len - length of the line break of folding whitespace at s[i]: CRLF
 * or LF followed by SP or HTAB (RFC 5322 3.2.2; LF alone for bodies that
 * were already converted to local line ends). 0 when s[i] is no fold.
 */
static size_t fold_len(const char *s, size_t len, size_t i)
{
	size_t n = 0;

	if (i < len && s[i] == '\r')
		n = 1;
	if (i + n >= len || s[i + n] != '\n')
		return 0;
	n++;
	if (i + n >= len || (s[i + n] != ' ' && s[i + n] != '\t'))
		return 0;
	return n;
}

/* final_break - is s[i..len) exactly the CRLF (or LF) ending the field? */
static bool final_break(const char *s, size_t len, size_t i)
{
	return (len - i == 1 && s[i] == '\n') ||
	    (len - i == 2 && s[i] == '\r' && s[i + 1] == '\n');
}

static bool lex_fail(struct lexer *lx, enum smtp_from_status st)
{
	lx->err = st;
	return false;
}

/*
 * lex_text_byte - judge one byte of quoted-string, comment or literal
 * text at lx->i that is not a delimiter, advancing past it (a UTF-8
 * sequence, a fold, a quoted-pair). False on a byte that may not appear.
 */
static bool lex_text_byte(struct lexer *lx, bool *has8)
{
	const char *s = lx->s;
	unsigned char c = (unsigned char)s[lx->i];
	size_t n;

	if (c == '\\') {
		/* quoted-pair = "\" (VCHAR / WSP) / obs-qp, minus NUL, CR, LF */
		if (lx->i + 1 >= lx->len)
			return lex_fail(lx, SMTP_FROM_SYNTAX);
		c = (unsigned char)s[lx->i + 1];
		if (c >= 0x80) {
			if ((n = smtp_utf8_len(s + lx->i + 1, lx->len - lx->i - 1)) == 0)
				return lex_fail(lx, SMTP_FROM_SYNTAX);
			*has8 = true;
			lx->i += 1 + n;
			return true;
		}
		if (c == 0 || c == '\r' || c == '\n')
			return lex_fail(lx, SMTP_FROM_SYNTAX);
		lx->i += 2;
		return true;
	}
	if (c == '\r' || c == '\n') {
		if ((n = fold_len(s, lx->len, lx->i)) == 0)
			return lex_fail(lx, SMTP_FROM_SYNTAX);
		lx->i += n;
		return true;
	}
	if (c >= 0x80) {
		if ((n = smtp_utf8_len(s + lx->i, lx->len - lx->i)) == 0)
			return lex_fail(lx, SMTP_FROM_SYNTAX);
		*has8 = true;
		lx->i += n;
		return true;
	}
	if (c == 0)
		return lex_fail(lx, SMTP_FROM_SYNTAX);
	lx->i++; /* VCHAR, SP, HTAB, and the obs-NO-WS-CTL controls of
	            * obs-qtext, obs-ctext, obs-dtext (RFC 5322 4.1) */
	return true;
}

/* lex_comment - skip the comment opening at lx->i, nested ones included. */
static bool lex_comment(struct lexer *lx)
{
	unsigned depth = 0;
	bool has8 = false;

	for (;;) {
		if (lx->i >= lx->len)
			return lex_fail(lx, SMTP_FROM_SYNTAX);
		switch (lx->s[lx->i]) {
		case '(':
			if (++depth > SMTP_FROM_COMMENT_DEPTH)
				return lex_fail(lx, SMTP_FROM_SYNTAX);
			lx->i++;
			break;
		case ')':
			lx->i++;
			if (--depth == 0)
				return true;
			break;
		default:
			if (!lex_text_byte(lx, &has8))
				return false;
		}
	}
}

/* lex_cfws - skip CFWS (RFC 5322 3.2.2) at lx->i. */
static bool lex_cfws(struct lexer *lx)
{
	size_t n;

	while (lx->i < lx->len) {
		char c = lx->s[lx->i];
		if (c == ' ' || c == '\t')
			lx->i++;
		else if (c == '(') {
			if (!lex_comment(lx))
				return false;
		} else if (c == '\r' || c == '\n') {
			if (final_break(lx->s, lx->len, lx->i)) {
				lx->i = lx->len;
				break;
			}
			if ((n = fold_len(lx->s, lx->len, lx->i)) == 0)
				return lex_fail(lx, SMTP_FROM_SYNTAX);
			lx->i += n;
		} else
			break;
	}
	return true;
}

/* lex_delimited - a quoted-string or domain-literal from its opening
 * character to the closing one. */
static bool lex_delimited(struct lexer *lx, char close, struct tok *t)
{
	size_t start = lx->i;

	for (lx->i++;; ) {
		if (lx->i >= lx->len)
			return lex_fail(lx, SMTP_FROM_SYNTAX);
		char c = lx->s[lx->i];
		if (c == close) {
			lx->i++;
			break;
		}
		if (close == ']' && c == '[') /* dtext excludes "[" */
			return lex_fail(lx, SMTP_FROM_SYNTAX);
		if (!lex_text_byte(lx, &t->has_8bit))
			return false;
	}
	t->p = lx->s + start;
	t->n = lx->i - start;
	return true;
}

/* lex_next - the next token after CFWS. */
static void lex_next(struct lexer *lx, struct tok *t)
{
	unsigned char c;
	size_t n;

	memset(t, 0, sizeof *t);
	if (!lex_cfws(lx)) {
		t->type = TOK_ERROR;
		return;
	}
	if (lx->i >= lx->len) {
		t->type = TOK_END;
		return;
	}
	c = (unsigned char)lx->s[lx->i];
	if (c == '"' || c == '[') {
		t->type = c == '"' ? TOK_QSTRING : TOK_LITERAL;
		if (!lex_delimited(lx, c == '"' ? '"' : ']', t))
			t->type = TOK_ERROR;
		return;
	}
	if (c != 0 && strchr("<>:;@,.", c)) {
		t->type = TOK_SPECIAL;
		t->special = (char)c;
		t->p = lx->s + lx->i++;
		t->n = 1;
		return;
	}
	if (!is_atext(c) && c < 0x80) {
		/* ")", "\", "]" out of place, or a control character */
		lx->err = SMTP_FROM_SYNTAX;
		t->type = TOK_ERROR;
		return;
	}
	t->type = TOK_ATOM;
	t->p = lx->s + lx->i;
	while (lx->i < lx->len) {
		c = (unsigned char)lx->s[lx->i];
		if (is_atext(c))
			lx->i++;
		else if (c >= 0x80) {
			if ((n = smtp_utf8_len(lx->s + lx->i, lx->len - lx->i)) == 0) {
				lx->err = SMTP_FROM_SYNTAX;
				t->type = TOK_ERROR;
				return;
			}
			t->has_8bit = true;
			lx->i += n;
		} else
			break;
	}
	t->n = (size_t)(lx->s + lx->i - t->p);
}

/* lex_peek - the next token without consuming it. */
static void lex_peek(struct lexer *lx, struct tok *t)
{
	size_t save = lx->i;

	lex_next(lx, t);
	lx->i = save;
}

static bool is_special(const struct tok *t, char c)
{
	return t->type == TOK_SPECIAL && t->special == c;
}

static bool is_word(const struct tok *t)
{
	return t->type == TOK_ATOM || t->type == TOK_QSTRING;
}

/*
 * A run of words and periods: a display name (phrase, obs-phrase) or a
 * local part (dot-atom, quoted-string, obs-local-part: word *("." word)).
 * Which one it was is known only from the token after it.
 */
struct word_run {
	size_t tokens;
	size_t bytes;          /* words and periods, CFWS not counted */
	bool starts_with_word;
	bool dot_atom_shape;   /* word *("." word): usable as a local part */
};

static enum smtp_from_status scan_words(struct lexer *lx, struct word_run *w)
{
	struct tok t;
	bool last_word = false, last_dot = false;

	memset(w, 0, sizeof *w);
	w->dot_atom_shape = true;
	for (;;) {
		lex_peek(lx, &t);
		if (t.type == TOK_ERROR)
			return lx->err;
		if (is_word(&t)) {
			if (last_word)
				w->dot_atom_shape = false; /* "john doe" */
			last_word = true;
			last_dot = false;
		} else if (is_special(&t, '.')) {
			if (!last_word)
				w->dot_atom_shape = false; /* leading or double period */
			last_dot = true;
			last_word = false;
		} else
			break;
		if (w->tokens++ == 0)
			w->starts_with_word = is_word(&t);
		/* a run longer than the body cannot be; bytes stays below 64 KiB */
		w->bytes += t.n;
		lex_next(lx, &t);
	}
	if (last_dot || w->tokens == 0)
		w->dot_atom_shape = false;
	return SMTP_FROM_OK;
}

/* append - add n bytes to the domain, refusing to outgrow it. */
static bool append(struct smtp_from_addr *a, const char *p, size_t n)
{
	if (n > SMTP_FROM_DOMAIN_MAX - a->domain_len)
		return false;
	memcpy(a->domain + a->domain_len, p, n);
	a->domain_len += n;
	a->domain[a->domain_len] = '\0';
	return true;
}

/*
 * parse_domain - RFC 5322 3.4.1 domain: dot-atom, domain-literal or
 * obs-domain (CFWS around the periods), into a->domain without CFWS.
 * Folds and whitespace inside a literal are dropped too.
 */
static enum smtp_from_status parse_domain(struct lexer *lx, struct smtp_from_addr *a)
{
	struct tok t;

	a->domain_len = 0;
	a->domain[0] = '\0';
	a->is_literal = false;
	a->has_8bit = false;
	lex_next(lx, &t);
	if (t.type == TOK_ERROR)
		return lx->err;
	if (t.type == TOK_LITERAL) {
		a->is_literal = true;
		a->has_8bit = t.has_8bit;
		for (size_t i = 0; i < t.n; i++) {
			char c = t.p[i];
			if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
				continue;
			if (!append(a, &c, 1))
				return SMTP_FROM_TOO_LONG;
		}
		return SMTP_FROM_OK;
	}
	for (;;) {
		if (t.type != TOK_ATOM)
			return SMTP_FROM_SYNTAX;
		if (!append(a, t.p, t.n))
			return SMTP_FROM_TOO_LONG;
		a->has_8bit |= t.has_8bit;
		lex_peek(lx, &t);
		if (t.type == TOK_ERROR)
			return lx->err;
		if (!is_special(&t, '.'))
			return SMTP_FROM_OK;
		lex_next(lx, &t);
		if (!append(a, ".", 1))
			return SMTP_FROM_TOO_LONG;
		lex_next(lx, &t);
		if (t.type == TOK_ERROR)
			return lx->err;
	}
}

/* parse_addr_spec - local-part "@" domain, the local part already scanned. */
static enum smtp_from_status parse_addr_spec(struct lexer *lx,
    const struct word_run *local, struct smtp_from_addr *a)
{
	enum smtp_from_status st;

	if (!local->dot_atom_shape)
		return SMTP_FROM_SYNTAX;
	if ((st = parse_domain(lx, a)) != SMTP_FROM_OK)
		return st;
	if (local->bytes + 1 + a->domain_len > SMTP_FROM_ADDR_MAX)
		return SMTP_FROM_TOO_LONG;
	return SMTP_FROM_OK;
}

/*
 * parse_obs_route - RFC 5322 4.4 obs-route after "<":
 * *(CFWS / ",") "@" domain *("," [CFWS] ["@" domain]) ":". The route's
 * domains are checked and dropped.
 */
static enum smtp_from_status parse_obs_route(struct lexer *lx)
{
	struct smtp_from_addr scratch;
	enum smtp_from_status st;
	struct tok t;

	for (;;) {
		lex_next(lx, &t);
		if (t.type == TOK_ERROR)
			return lx->err;
		if (!is_special(&t, ','))
			break;
	}
	if (!is_special(&t, '@'))
		return SMTP_FROM_SYNTAX;
	if ((st = parse_domain(lx, &scratch)) != SMTP_FROM_OK)
		return st;
	for (;;) {
		lex_next(lx, &t);
		if (t.type == TOK_ERROR)
			return lx->err;
		if (is_special(&t, ':'))
			return SMTP_FROM_OK;
		if (!is_special(&t, ','))
			return SMTP_FROM_SYNTAX;
		lex_peek(lx, &t);
		if (is_special(&t, '@')) {
			lex_next(lx, &t);
			if ((st = parse_domain(lx, &scratch)) != SMTP_FROM_OK)
				return st;
		}
	}
}

/* parse_angle_addr - after "<": [obs-route] addr-spec ">". */
static enum smtp_from_status parse_angle_addr(struct lexer *lx, struct smtp_from_addr *a)
{
	enum smtp_from_status st;
	struct word_run local;
	struct tok t;

	lex_peek(lx, &t);
	if (t.type == TOK_ERROR)
		return lx->err;
	if (is_special(&t, '@') || is_special(&t, ',')) {
		if ((st = parse_obs_route(lx)) != SMTP_FROM_OK)
			return st;
	}
	if ((st = scan_words(lx, &local)) != SMTP_FROM_OK)
		return st;
	lex_next(lx, &t);
	if (t.type == TOK_ERROR)
		return lx->err;
	if (!is_special(&t, '@'))
		return SMTP_FROM_SYNTAX; /* "<>", "<local>", "<a b@c>" */
	if ((st = parse_addr_spec(lx, &local, a)) != SMTP_FROM_OK)
		return st;
	lex_next(lx, &t);
	if (t.type == TOK_ERROR)
		return lx->err;
	return is_special(&t, '>') ? SMTP_FROM_OK : SMTP_FROM_SYNTAX;
}

/* parse_mailbox - RFC 5322 3.4 mailbox = name-addr / addr-spec. */
static enum smtp_from_status parse_mailbox(struct lexer *lx, struct smtp_from_addr *a)
{
	enum smtp_from_status st;
	struct word_run words;
	struct tok t;

	if ((st = scan_words(lx, &words)) != SMTP_FROM_OK)
		return st;
	lex_next(lx, &t);
	if (t.type == TOK_ERROR)
		return lx->err;
	if (is_special(&t, '<')) {
		/* display-name = phrase (obs-phrase: a word first, then words,
		 * periods and CFWS), or none */
		if (words.tokens > 0 && !words.starts_with_word)
			return SMTP_FROM_SYNTAX;
		return parse_angle_addr(lx, a);
	}
	if (is_special(&t, '@'))
		return parse_addr_spec(lx, &words, a);
	if (is_special(&t, ':') && words.tokens > 0 && words.starts_with_word)
		return SMTP_FROM_GROUP;
	return SMTP_FROM_SYNTAX;
}

enum smtp_from_status smtp_from_parse(const char *body, size_t len,
    struct smtp_from_addr *addrs, size_t *naddrs)
{
	struct lexer lx = { .s = body, .len = len, .i = 0, .err = SMTP_FROM_SYNTAX };
	struct smtp_from_addr scratch;
	enum smtp_from_status st;
	size_t cap = *naddrs, found = 0;
	struct tok t;

	*naddrs = 0;
	if (len > SMTP_FROM_BODY_MAX)
		return SMTP_FROM_TOO_LONG;
	/* mailbox-list = mailbox *("," mailbox) / obs-mbox-list, which also
	 * allows empty elements: *([CFWS] ",") mailbox *("," [mailbox / CFWS]) */
	for (;;) {
		lex_peek(&lx, &t);
		if (t.type == TOK_ERROR)
			return lx.err;
		if (t.type == TOK_END)
			break;
		if (is_special(&t, ',')) {
			lex_next(&lx, &t);
			continue;
		}
		struct smtp_from_addr *a = found < cap ? &addrs[found] : &scratch;
		if ((st = parse_mailbox(&lx, a)) != SMTP_FROM_OK)
			return st;
		found++;
		lex_next(&lx, &t);
		if (t.type == TOK_ERROR)
			return lx.err;
		if (t.type == TOK_END)
			break;
		if (!is_special(&t, ','))
			return SMTP_FROM_SYNTAX;
	}
	if (found == 0)
		return SMTP_FROM_EMPTY;
	*naddrs = found;
	return SMTP_FROM_OK;
}

const char *smtp_from_strerror(enum smtp_from_status st)
{
	switch (st) {
	case SMTP_FROM_OK:
		return "ok";
	case SMTP_FROM_EMPTY:
		return "no address";
	case SMTP_FROM_SYNTAX:
		return "not a mailbox list";
	case SMTP_FROM_GROUP:
		return "a group, not a mailbox";
	case SMTP_FROM_TOO_LONG:
		return "too long";
	}
	return "unknown";
}

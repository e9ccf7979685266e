/*
 * spf - SPF (RFC 7208) at MAIL FROM with libspf2.
 *
 * Flow: the FILTER_MAIL hook (inbound listener, mode != off, client not in
 * [spf] trusted) first evaluates on the loop thread with answers from the
 * loop's DNS cache only (proxy/dns.h dns_cache_peek): when every answer
 * the evaluation needs is kept, the verdict is returned at once - no
 * thread hop, no lock, no query. At the first answer not kept it gives up
 * (nothing is asked on the loop) and copies what the check needs into a
 * job, queues it on libuv's thread pool and returns FILTER_ASYNC. The worker runs libspf2,
 * whose DNS layer (spf_layer_lookup) asks proxy/dns.c synchronously under
 * a per-check deadline. The after-work callback, on the loop thread, turns
 * the result into a verdict and hands it to filter_async_done() with the
 * token copied at submission: if the session has closed or moved on, the
 * proxy drops it; the job never touches a session. The worker's definite
 * answers (found, no data, no such name) go back with the job and are
 * offered to the loop's cache (dns_cache_offer), under its TTL rules.
 *
 * libspf2 is used defensively (see /work/shared/notes/dependencies.md 1):
 *   - SPF_RESULT_INVALID is mapped here (spf_result_map), every getter may
 *     return NULL;
 *   - IPv4-mapped IPv6 clients are checked as IPv4 (ip4: would never match);
 *   - the DNS layer never returns NULL (libspf2 aborts on NULL), concatenates
 *     TXT strings, and answers type SPF (99) with NO_DATA without asking;
 *   - the domain's explanation is DNS data: cleaned of CR/LF/CTLs and
 *     bounded before it reaches a reply;
 *   - the Received-SPF and Authentication-Results fields are built here,
 *     folded and quoted, not taken from libspf2 (480-byte, unfolded);
 *   - libspf2's default explanation (openspf.org) is replaced by a marker so
 *     that "the domain gave no explanation" can be told apart.
 * libspf2 1.2.10 in Debian 12 lacks the candidate fix for CVE-2023-42118
 * (macro parsing); filters/README-spf.md says what that means to operators.
 *
 * Threading: one SPF_server_t per configuration (spf_srv), shared by the
 * workers (libspf2 keeps no mutable state in it with our layer), reference-
 * counted on the loop thread so a reload never frees it under a job.
 */
#ifndef _GNU_SOURCE
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* clock_gettime, pthread_condattr_setclock, strdup under -std=c17 */
#endif
#endif
#include <netinet/in.h>          /* before spf2: its headers need in_addr */
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <spf2/spf.h>
#include <spf2/spf_dns.h>
#include <uv.h>

#include "filters/filter.h"
#include "filters/authres.h"
#include "filters/spf.h"
#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/log.h"

/* RFC 7208 4.6.4 suggests a 20 s limit for the whole evaluation. */
#define SPF_CHECK_BUDGET_MS 20000
/* DNS lookups one evaluation may make. libspf2 bounds mechanisms (10), MX
 * (10 each) and PTR names (10); 10 x (MX + 10 A) + includes + exp stays
 * under this. It only stops a runaway evaluation (answered temperror). */
#define SPF_MAX_LOOKUPS 150
/*
 * Explanation records libspf2 may see. Debian 12's libspf2 1.2.10-7.2
 * overflows a stack buffer in SPF_record_compile_macro() when it compiles
 * an explanation with many macro/literal alternations (reproduced: 43 x
 * "%{i}x", 215 bytes, "stack smashing detected"; no crash below 215 bytes
 * in a sweep of 11,340 shaped and 24,000 random strings). The compile
 * buffer's remaining size is computed as data_avail - data_used and
 * underflows - consistent with CVE-2023-42118, whose candidate fix
 * (shevek/libspf2 d14abff) Debian does not carry. So an explanation over
 * these limits is replaced by "" before libspf2 sees it (the reply then
 * uses backstop's own text). Legitimate explanations are short sentences.
 */
#define SPF_EXP_MAX_LEN 160       /* bytes, after escaping spaces as %_ */
#define SPF_EXP_MAX_MACROS 8
/* Set as libspf2's default explanation: recognises "no exp= given". */
#define SPF_NO_EXP_MARKER "backstop-no-explanation"

struct spf_srv {
	SPF_server_t *spf;
	SPF_dns_server_t *layer;
	int refs;                 /* loop thread only */
};

/* Answers a worker's evaluation hands back to the loop's DNS cache (at
 * most SPF_KEEP_MAX per check; the rest are not offered). */
#define SPF_KEEP_MAX 16

/* An evaluation on the loop thread (every answer kept) uses at most this
 * many kept answers and this much record text; past either it goes to a
 * worker as a missed one would. A record an attacker writes (nine 2 KB
 * includes, or mx mechanisms of ten hosts each, all kept by earlier
 * checks) cost the loop up to 140 us per MAIL without them; an ordinary
 * domain (a few includes of a few hundred bytes) stays well inside. */
#define SPF_LOOP_MAX_ANSWERS SPF_KEEP_MAX
#define SPF_LOOP_MAX_TEXT 8192

struct spf_kept {
	struct spf_kept *next;
	int type;
	char *name;
	struct dns_answer ans;
	uint64_t got_ms;   /* dns_now_ms() when the answer came: ans.ttl counts from here */
};

/* Per thread: the evaluation in progress (thread-local: each of libuv's
 * pool threads runs one evaluation at a time, the loop thread its cached
 * ones, and libspf2's DNS layer callback has no argument of ours to carry
 * it). */
static _Thread_local struct {
	uint64_t deadline;
	unsigned lookups;
	const atomic_bool *abandoned;   /* the job's session has closed */
	struct dns *dns;                /* the job's loop's resolver */
	/* on the loop thread: answers from the loop's DNS cache only; the
	 * first one not kept there ends the attempt (missed) */
	bool cache_only;
	bool missed;
	unsigned loop_answers;     /* kept answers used so far (cache_only) */
	size_t loop_text;          /* bytes of their TXT records */
	/* on a worker: the answers it got, for the loop's cache */
	struct spf_kept **kept;
	unsigned nkept;
} spf_tls;

const char *spf_outcome_name(enum spf_outcome r)
{
	switch (r) {
	case SPF_OUT_NONE: return "none";
	case SPF_OUT_NEUTRAL: return "neutral";
	case SPF_OUT_PASS: return "pass";
	case SPF_OUT_FAIL: return "fail";
	case SPF_OUT_SOFTFAIL: return "softfail";
	case SPF_OUT_TEMPERROR: return "temperror";
	case SPF_OUT_PERMERROR: return "permerror";
	}
	return "none";
}

enum spf_outcome spf_result_map(int spf_result, int spf_errcode)
{
	switch ((SPF_result_t)spf_result) {
	case SPF_RESULT_NEUTRAL: return SPF_OUT_NEUTRAL;
	case SPF_RESULT_PASS: return SPF_OUT_PASS;
	case SPF_RESULT_FAIL: return SPF_OUT_FAIL;
	case SPF_RESULT_SOFTFAIL: return SPF_OUT_SOFTFAIL;
	case SPF_RESULT_NONE: return SPF_OUT_NONE;
	case SPF_RESULT_TEMPERROR: return SPF_OUT_TEMPERROR;
	case SPF_RESULT_PERMERROR: return SPF_OUT_PERMERROR;
	case SPF_RESULT_INVALID:
	default:
		/* RFC 7208 4.4: a DNS error fetching the record is temperror;
		 * 4.6: a record that does not parse is permerror. */
		if (spf_errcode == SPF_E_DNS_ERROR)
			return SPF_OUT_TEMPERROR;
		if (spf_errcode == SPF_E_NO_MEMORY)
			return SPF_OUT_TEMPERROR;
		return SPF_OUT_PERMERROR;
	}
}

size_t spf_text_clean(char *out, size_t cap, const char *in)
{
	size_t o = 0;

	if (cap == 0)
		return 0;
	for (; in != NULL && *in != '\0' && o + 1 < cap; in++) {
		unsigned char c = (unsigned char)*in;
		out[o++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	out[o] = '\0';
	return o;
}

/* ---- header building ---- */

struct sbuf {
	char *p;
	size_t cap, len;
	bool overflow;
};

static void sb_putn(struct sbuf *b, const char *s, size_t n)
{
	if (b->overflow || b->len + n + 1 > b->cap) {
		b->overflow = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_putn(b, s, strlen(s));
}

static void sb_putc(struct sbuf *b, char c)
{
	sb_putn(b, &c, 1);
}

/* sb_comment - text for inside "( )": ctext only (RFC 5322 3.2.2). */
static void sb_comment(struct sbuf *b, const char *s, size_t max)
{
	for (size_t i = 0; s[i] != '\0' && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		sb_putc(b, (c < 0x20 || c >= 0x7f || c == '(' || c == ')' || c == '\\')
		    ? '?' : (char)c);
	}
}

static bool is_atext(unsigned char c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* is_dot_atom - RFC 5322 dot-atom-text (what may stay unquoted). */
static bool is_dot_atom(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.' ? s[i + 1] == '.' : !is_atext(c))
			return false;
	}
	return true;
}

/* sb_value - dot-atom as is, else a quoted-string (RFC 7208 9.1,
 * RFC 8601 2.2); controls and non-ASCII become '?'. */
static void sb_value(struct sbuf *b, const char *s, size_t max)
{
	if (is_dot_atom(s, max)) {
		sb_puts(b, s);
		return;
	}
	sb_putc(b, '"');
	for (size_t i = 0; s[i] != '\0' && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			sb_putc(b, '\\');
		sb_putc(b, (c < 0x20 || c >= 0x7f) ? '?' : (char)c);
	}
	sb_putc(b, '"');
}

/* spf_comment - RFC 7208 9.1's human-readable part, libspf2's wording. */
static void spf_comment(struct sbuf *b, const struct spf_report *r, size_t max)
{
	if (r->not_checked[0] != '\0') {
		sb_puts(b, "backstop: ");
		sb_comment(b, r->not_checked, max);
		return;
	}
	sb_comment(b, r->receiver, max);
	sb_puts(b, ": ");
	switch (r->result) {
	case SPF_OUT_PASS:
	case SPF_OUT_FAIL:
	case SPF_OUT_SOFTFAIL:
		if (r->result == SPF_OUT_SOFTFAIL)
			sb_puts(b, "transitioning ");
		sb_puts(b, "domain of ");
		sb_comment(b, r->sender, max);
		sb_puts(b, r->result == SPF_OUT_PASS ? " designates " : " does not designate ");
		sb_comment(b, r->ip, max);
		sb_puts(b, " as permitted sender");
		break;
	case SPF_OUT_NEUTRAL:
		sb_comment(b, r->ip, max);
		sb_puts(b, " is neither permitted nor denied by domain of ");
		sb_comment(b, r->sender, max);
		break;
	case SPF_OUT_NONE:
		sb_puts(b, "domain of ");
		sb_comment(b, r->sender, max);
		sb_puts(b, " does not provide an SPF record");
		break;
	case SPF_OUT_TEMPERROR:
		sb_puts(b, "temporary error in processing during lookup of ");
		sb_comment(b, r->sender, max);
		break;
	case SPF_OUT_PERMERROR:
		sb_puts(b, "permanent error in processing domain of ");
		sb_comment(b, r->sender, max);
		break;
	}
}

static int headers_try(const struct spf_report *r, char *out, size_t cap, size_t max)
{
	struct sbuf b = {out, cap, 0, false};
	const char *res = spf_outcome_name(r->result);

	if (cap > 0)
		out[0] = '\0';
	/* RFC 7208 9.1: result FWS [comment FWS] key-value-list */
	sb_puts(&b, "Received-SPF: ");
	sb_puts(&b, res);
	sb_puts(&b, " (");
	spf_comment(&b, r, max);
	sb_puts(&b, ")\r\n\treceiver=");
	sb_value(&b, r->receiver, max);
	sb_puts(&b, ";\r\n\tclient-ip=");
	sb_value(&b, r->ip, max);
	sb_puts(&b, ";\r\n\tenvelope-from=");
	sb_value(&b, r->helo_identity ? "" : r->sender, max);
	sb_puts(&b, ";\r\n\thelo=");
	sb_value(&b, r->helo, max);
	sb_puts(&b, ";\r\n\tidentity=");
	sb_puts(&b, r->helo_identity ? "helo" : "mailfrom");
	if ((r->result == SPF_OUT_TEMPERROR || r->result == SPF_OUT_PERMERROR) &&
	    r->problem[0] != '\0') {
		sb_puts(&b, ";\r\n\tproblem=");
		sb_value(&b, r->problem, max);
	}
	sb_puts(&b, "\r\n");
	return b.overflow ? -1 : (int)b.len;
}

/* spf_auth_result - the spf= part of the message's Authentication-Results
 * (RFC 8601 2.7.2): spf=result smtp.mailfrom=domain (or smtp.helo=). */
void spf_auth_result(const struct spf_report *r, struct auth_result *a)
{
	const char *id = r->helo_identity ? r->helo : r->domain;

	memset(a, 0, sizeof *a);
	snprintf(a->method, sizeof a->method, "spf");
	snprintf(a->result, sizeof a->result, "%s", spf_outcome_name(r->result));
	for (size_t i = 0; id[i] != '\0' && i + 1 < sizeof a->domain; i++)
		a->domain[i] = (char)tolower((unsigned char)id[i]);
	snprintf(a->props, sizeof a->props, "%s", r->helo_identity ? "smtp.helo=" : "smtp.mailfrom=");
	if (!authres_value(a->props, sizeof a->props, id, 255)) {
		a->props[0] = '\0';   /* hostile length: the result alone */
		a->domain[0] = '\0';
	}
}

int spf_headers_build(const struct spf_report *r, char *out, size_t cap)
{
	int n = headers_try(r, out, cap, 255);

	if (n < 0)   /* hostile lengths: shorten every untrusted value */
		n = headers_try(r, out, cap, 64);
	if (n < 0 && cap > 0)
		out[0] = '\0';
	return n;
}

void spf_verdict_build(const struct spf_report *r, int mode, int permerror,
    struct filter_verdict *v)
{
	char dom[80], ip[64];

	memset(v, 0, sizeof *v);
	v->result = FILTER_CONTINUE;
	snprintf(v->note, sizeof v->note, "spf=%s", spf_outcome_name(r->result));
	if (spf_headers_build(r, v->headers, sizeof v->headers) < 0)
		v->headers[0] = '\0';
	if (r->not_checked[0] == '\0')   /* nothing authenticated: no A-R claim */
		spf_auth_result(r, &v->auth);
	if (mode != SPF_MODE_ENFORCE)
		return;   /* annotate: never refuse */

	spf_text_clean(dom, sizeof dom, r->domain);
	spf_text_clean(ip, sizeof ip, r->ip);
	switch (r->result) {
	case SPF_OUT_FAIL:
		/* RFC 7372 3.2: 5.7.23 SPF validation failed */
		v->result = FILTER_REJECT;
		v->code = 550;
		snprintf(v->esc, sizeof v->esc, "5.7.23");
		if (r->explanation[0] != '\0')
			snprintf(v->text, sizeof v->text, "SPF fail: %s explains: %s",
			    dom, r->explanation);
		else
			snprintf(v->text, sizeof v->text,
			    "SPF fail: %s does not designate %s as permitted sender", dom, ip);
		break;
	case SPF_OUT_TEMPERROR:
		/* RFC 7372 3.3: 4.7.24 SPF validation error */
		v->result = FILTER_TEMPFAIL;
		v->code = 451;
		snprintf(v->esc, sizeof v->esc, "4.7.24");
		snprintf(v->text, sizeof v->text,
		    "Temporary SPF error checking %s, try again later", dom);
		break;
	case SPF_OUT_PERMERROR:
		if (permerror != SPF_PERMERROR_REJECT)
			break;
		v->result = FILTER_REJECT;
		v->code = 550;
		snprintf(v->esc, sizeof v->esc, "5.7.24");
		snprintf(v->text, sizeof v->text, "SPF record of %s is invalid%s%s", dom,
		    r->problem[0] ? ": " : "", r->problem);
		break;
	default:
		break;   /* pass, softfail (marked), neutral, none: accept */
	}
}

bool spf_ar_is_ours(const char *value, size_t len, const char *hostname)
{
	return authres_is_ours(value, len, hostname);   /* moved: the A-R owner decides */
}

/* ---- libspf2 DNS layer over proxy/dns.c ---- */

static size_t macros(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += s[0] == '%' && s[1] == '{';
	return n;
}

static size_t spaces(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == ' ';
	return n;
}

/*
 * exp_escape - write s with every space as "%_". libspf2 1.2.10 compiles an
 * explanation (RFC 7208 6.2: explain-string = *( macro-string / SP )) with
 * its domain-spec parser, which turns a space into '%' and then skips the
 * next macro ("Mail from %{o}" comes out "Mail%from%{o}"). "%_" is the
 * macro for a space, so the text means the same and compiles correctly.
 * Only TXT records that are not SPF records get here: libspf2 uses those
 * solely as explanations. dst holds strlen(s) + 2 * spaces(s) + 1 bytes.
 */
static void exp_escape(char *dst, const char *s)
{
	for (; *s; s++) {
		if (*s == ' ') {
			*dst++ = '%';
			*dst++ = '_';
		} else {
			*dst++ = *s;
		}
	}
	*dst = '\0';
}

/* answer_done - a worker keeps a definite answer for the loop's cache
 * (spf_after_work offers it there); anything else is freed. */
static void answer_done(int type, const char *domain, struct dns_answer *a)
{
	struct spf_kept *k = NULL;

	if (spf_tls.kept == NULL || spf_tls.nkept >= SPF_KEEP_MAX ||
	    (a->status != DNS_OK && a->status != DNS_NODATA && a->status != DNS_NXDOMAIN) ||
	    (k = calloc(1, sizeof *k)) == NULL || (k->name = strdup(domain)) == NULL) {
		if (k != NULL && k->name == NULL)
			free(k);
		dns_answer_free(a);
		return;
	}
	k->type = type;
	k->got_ms = dns_now_ms();
	k->ans = *a;
	k->next = *spf_tls.kept;
	*spf_tls.kept = k;
	spf_tls.nkept++;
}

static SPF_dns_rr_t *spf_layer_lookup(SPF_dns_server_t *s, const char *domain,
    ns_type type, int should_cache)
{
	SPF_dns_rr_t *rr;
	struct dns_answer a;
	int herrno, cnt = 0;

	/* The SPF RR type is obsolete (RFC 7208 3.1): never asked. */
	if (type == ns_t_spf)
		return SPF_dns_rr_new_init(s, domain, type, 0, NO_DATA);
	if (type != ns_t_a && type != ns_t_aaaa && type != ns_t_txt &&
	    type != ns_t_mx && type != ns_t_ptr)
		return SPF_dns_rr_new_init(s, domain, type, 0, NO_DATA);
	if (++spf_tls.lookups > SPF_MAX_LOOKUPS || dns_now_ms() >= spf_tls.deadline ||
	    (spf_tls.abandoned != NULL && atomic_load(spf_tls.abandoned)))
		return SPF_dns_rr_new_init(s, domain, type, 0, TRY_AGAIN);

	if (spf_tls.cache_only) {
		/* the loop thread: never a query, never a wait */
		if (spf_tls.missed || ++spf_tls.loop_answers > SPF_LOOP_MAX_ANSWERS ||
		    !dns_cache_peek(spf_tls.dns, (int)type, domain, &a)) {
			spf_tls.missed = true;
			return SPF_dns_rr_new_init(s, domain, type, 0, TRY_AGAIN);
		}
		for (size_t i = 0; type == ns_t_txt && i < a.n; i++)
			spf_tls.loop_text += a.rr[i].text_len;
		if (spf_tls.loop_text > SPF_LOOP_MAX_TEXT) {
			/* too much for the loop: a worker evaluates it */
			dns_answer_free(&a);
			spf_tls.missed = true;
			return SPF_dns_rr_new_init(s, domain, type, 0, TRY_AGAIN);
		}
	} else {
		a = dns_query_sync_cancel(spf_tls.dns, (int)type, domain, spf_tls.deadline,
		    spf_tls.abandoned);
	}
	switch (a.status) {
	case DNS_OK: herrno = NETDB_SUCCESS; break;
	case DNS_NODATA: herrno = NO_DATA; break;
	case DNS_NXDOMAIN: herrno = HOST_NOT_FOUND; break;
	default: herrno = TRY_AGAIN; break;
	}
	rr = SPF_dns_rr_new_init(s, domain, type, (int)a.ttl, herrno);
	if (rr == NULL || herrno != NETDB_SUCCESS) {
		answer_done((int)type, domain, &a);
		return rr;   /* NULL only when out of memory: libspf2 aborts */
	}
	for (size_t i = 0; i < a.n; i++) {
		const struct dns_rr *d = &a.rr[i];
		size_t need;
		switch (type) {
		case ns_t_a: need = sizeof(struct in_addr); break;
		case ns_t_aaaa: need = sizeof(struct in6_addr); break;
		default: need = d->text_len + 1; break;
		}
		bool exp_text = type == ns_t_txt && strncasecmp(d->text, "v=spf1", 6) != 0;
		bool spf_unsafe = type == ns_t_txt && !exp_text && macros(d->text) > SPF_EXP_MAX_MACROS;
		if (spf_unsafe) {
			/* libspf2 compiles whatever TXT an exp= names as an
			 * explanation, "v=spf1" prefix or not, so the macro cap
			 * holds for records too. A record this macro-heavy is
			 * replaced by one that fails to parse: permerror. */
			static const char refused[] = "v=spf1 backstop-refused-too-many-macros";
			if (SPF_dns_rr_buf_realloc(rr, cnt, sizeof refused) != SPF_E_SUCCESS)
				break;
			memcpy(rr->rr[cnt]->txt, refused, sizeof refused);
			cnt++;
			continue;
		}
		if (exp_text) {
			need += 2 * spaces(d->text);
			if (need > SPF_EXP_MAX_LEN + 1 || macros(d->text) > SPF_EXP_MAX_MACROS)
				need = 1;   /* unsafe for libspf2: an empty string */
		}
		if (SPF_dns_rr_buf_realloc(rr, cnt, need) != SPF_E_SUCCESS)
			break;
		switch (type) {
		case ns_t_a: memcpy(&rr->rr[cnt]->a, d->data, need); break;
		case ns_t_aaaa: memcpy(&rr->rr[cnt]->aaaa, d->data, need); break;
		default:
			if (exp_text && need == 1)
				rr->rr[cnt]->txt[0] = '\0';
			else if (exp_text)
				exp_escape(rr->rr[cnt]->txt, d->text);
			else
				memcpy(rr->rr[cnt]->txt, d->text, need);
			break;
		}
		cnt++;
	}
	rr->num_rr = cnt;
	if (cnt == 0)
		rr->herrno = NO_DATA;
	answer_done((int)type, domain, &a);
	return rr;
}

/* ---- libspf2 diagnostics ---- */

__attribute__((noreturn))
static void spf_log_error(const char *file, int line, const char *msg)
{
	/* libspf2 abort()s after this: say why first. */
	log_error("spf: libspf2 fatal error at %s:%d: %s", file ? file : "?", line,
	    msg ? msg : "");
	abort();
}

static void spf_log_warning(const char *file, int line, const char *msg)
{
	log_debug("spf: libspf2: %s", msg ? msg : "");
}

static void spf_log_info(const char *file, int line, const char *msg)
{
	log_debug("spf: libspf2: %s", msg ? msg : "");
}

/* ---- evaluation ---- */

static void srv_unref(struct spf_srv *srv)
{
	if (srv == NULL || --srv->refs > 0)
		return;
	SPF_server_free(srv->spf);
	free(srv->layer);   /* SPF_server_new_dns() does not own the layer */
	free(srv);
}

static struct spf_srv *srv_new(const struct config *cfg, char *err, size_t errlen)
{
	struct spf_srv *srv = calloc(1, sizeof *srv);
	SPF_response_t *resp = NULL;

	if (srv == NULL)
		goto oom;
	srv->layer = calloc(1, sizeof *srv->layer);
	if (srv->layer == NULL)
		goto oom;
	srv->layer->destroy = NULL;   /* freed by srv_unref */
	srv->layer->lookup = spf_layer_lookup;
	srv->layer->name = "backstop";
	srv->spf = SPF_server_new_dns(srv->layer, 0);
	if (srv->spf == NULL)
		goto oom;
	srv->refs = 1;
	SPF_server_set_rec_dom(srv->spf, cfg->server.hostname);
	SPF_server_set_sanitize(srv->spf, 1);
	if (SPF_server_set_explanation(srv->spf, SPF_NO_EXP_MARKER, &resp) != SPF_E_SUCCESS) {
		snprintf(err, errlen, "spf: cannot set the default explanation");
		if (resp)
			SPF_response_free(resp);
		srv_unref(srv);
		return NULL;
	}
	if (resp)
		SPF_response_free(resp);
	return srv;
oom:
	snprintf(err, errlen, "spf: out of memory");
	if (srv) {
		free(srv->layer);
		free(srv);
	}
	return NULL;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

static void evaluate(SPF_server_t *spf, const char *ip, const char *helo,
    const char *mail_from, uint64_t deadline, struct spf_report *r)
{
	SPF_request_t *req;
	SPF_response_t *resp = NULL;
	SPF_errcode_t e;
	struct in_addr a4;
	struct in6_addr a6;
	const char *at;

	copy_str(r->ip, sizeof r->ip, ip);
	copy_str(r->helo, sizeof r->helo, helo);
	r->result = SPF_OUT_NONE;
	r->problem[0] = r->explanation[0] = '\0';
	if (mail_from == NULL || mail_from[0] == '\0') {
		/* RFC 7208 2.4: the null sender is checked as postmaster@HELO */
		r->helo_identity = true;
		snprintf(r->sender, sizeof r->sender, "postmaster@%s", r->helo);
		copy_str(r->domain, sizeof r->domain, r->helo);
	} else {
		r->helo_identity = false;
		copy_str(r->sender, sizeof r->sender, mail_from);
		at = strrchr(mail_from, '@');
		copy_str(r->domain, sizeof r->domain, at ? at + 1 : mail_from);
	}
	if (r->domain[0] == '\0') {
		copy_str(r->problem, sizeof r->problem, "no domain to check");
		return;
	}

	req = SPF_request_new(spf);
	if (req == NULL) {
		r->result = SPF_OUT_TEMPERROR;
		copy_str(r->problem, sizeof r->problem, "out of memory");
		return;
	}
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		SPF_request_set_ipv4(req, a4);
	} else if (inet_pton(AF_INET6, ip, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			/* ::ffff:a.b.c.d is an IPv4 client (ip4: must match) */
			memcpy(&a4, &a6.s6_addr[12], 4);
			SPF_request_set_ipv4(req, a4);
			inet_ntop(AF_INET, &a4, r->ip, sizeof r->ip);
		} else {
			SPF_request_set_ipv6(req, a6);
		}
	} else {
		SPF_request_free(req);
		copy_str(r->problem, sizeof r->problem, "no client IP address");
		return;
	}
	/* HELO first: an empty env_from then means postmaster@HELO */
	if (r->helo[0] != '\0')
		SPF_request_set_helo_dom(req, r->helo);
	if (SPF_request_set_env_from(req, r->helo_identity ? r->helo : mail_from) != 0) {
		SPF_request_free(req);
		r->result = SPF_OUT_PERMERROR;
		copy_str(r->problem, sizeof r->problem, "invalid sender identity");
		return;
	}

	spf_tls.deadline = deadline;
	spf_tls.lookups = 0;
	e = SPF_request_query_mailfrom(req, &resp);
	r->result = spf_result_map(resp ? (int)SPF_response_result(resp) : SPF_RESULT_INVALID, e);
	if (r->result == SPF_OUT_TEMPERROR || r->result == SPF_OUT_PERMERROR) {
		SPF_errcode_t re = resp ? SPF_response_errcode(resp) : e;
		if (r->result == SPF_OUT_TEMPERROR && dns_now_ms() >= deadline)
			copy_str(r->problem, sizeof r->problem, "DNS timeout");
		else
			spf_text_clean(r->problem, sizeof r->problem,
			    SPF_strerror(re != SPF_E_SUCCESS ? re : e));
	}
	if (r->result == SPF_OUT_FAIL && resp != NULL) {
		const char *exp = SPF_response_get_explanation(resp);
		if (exp != NULL && strcmp(exp, SPF_NO_EXP_MARKER) != 0)
			spf_text_clean(r->explanation, sizeof r->explanation, exp);
	}
	if (resp)
		SPF_response_free(resp);
	SPF_request_free(req);
}

/* ---- the filter ---- */

struct spf_job {
	uv_work_t req;
	struct spf_loop *sl;        /* the scheduler it runs under */
	struct spf_job *next;       /* in the wait queue */
	char domain[SPF_DOMAIN_MAX];/* checked domain, for the per-domain cap */
	struct filter_async token;
	struct spf_srv *srv;
	struct dns *dns;            /* the session's loop's resolver */
	int mode, permerror;
	uint64_t start, deadline;
	char sid[64];
	char ip[64];
	char helo[SPF_DOMAIN_MAX];
	char mail_from[FILTER_ADDR_MAX + 1];
	char receiver[SPF_DOMAIN_MAX];
	struct spf_report rep;
	atomic_bool abandoned;      /* set on the loop when the session closes */
	struct spf_kept *kept;      /* the worker's answers, for the loop's cache */
};

static void spf_work(uv_work_t *req)
{
	struct spf_job *job = req->data;

	spf_tls.abandoned = &job->abandoned;
	spf_tls.dns = job->dns;
	spf_tls.kept = &job->kept;
	spf_tls.nkept = 0;
	evaluate(job->srv->spf, job->ip, job->helo, job->mail_from, job->deadline,
	    &job->rep);
	spf_tls.abandoned = NULL;
	spf_tls.dns = NULL;
	spf_tls.kept = NULL;
	copy_str(job->rep.receiver, sizeof job->rep.receiver, job->receiver);
}

/* kept_release - loop thread: offer the worker's answers to the loop's
 * DNS cache (the next check of the domain then runs on the loop), free
 * them. An answer's TTL counts from when the worker got it, and the rest
 * of the evaluation (up to its budget) has passed since: only what is
 * left of it is offered (whole seconds, rounded down; nothing when less
 * than one is left), or the loop would use an answer past its TTL. */
static void kept_release(struct spf_job *job)
{
	struct spf_kept *k, *next;
	uint64_t now = dns_now_ms();

	for (k = job->kept; k != NULL; k = next) {
		uint64_t ttl_ms = (uint64_t)k->ans.ttl * 1000, spent = now - k->got_ms;

		next = k->next;
		k->ans.ttl = ttl_ms > spent ? (uint32_t)((ttl_ms - spent) / 1000) : 0;
		if (k->ans.ttl > 0)
			dns_cache_offer(job->dns, k->type, k->name, &k->ans);
		dns_answer_free(&k->ans);
		free(k->name);
		free(k);
	}
	job->kept = NULL;
}

/*
 * evaluate_cached - on the loop thread, the whole evaluation when every
 * answer it needs is in the loop's DNS cache (the usual case for a
 * domain that sends a lot): no thread hop, no lock, no wait. false at the
 * first answer not kept, and the check goes to a worker as before (its
 * answers then fill the cache). libspf2's work with kept answers is a few
 * microseconds, bounded like any evaluation (SPF_MAX_LOOKUPS).
 */
static bool evaluate_cached(struct spf_srv *srv, struct dns *dns, const char *ip,
    const char *helo, const char *mail_from, uint64_t deadline, struct spf_report *r)
{
	memset(r, 0, sizeof *r);
	spf_tls.dns = dns;
	spf_tls.cache_only = true;
	spf_tls.missed = false;
	spf_tls.loop_answers = 0;
	spf_tls.loop_text = 0;
	spf_tls.abandoned = NULL;
	spf_tls.kept = NULL;
	evaluate(srv->spf, ip, helo, mail_from, deadline, r);
	spf_tls.cache_only = false;
	spf_tls.dns = NULL;
	return !spf_tls.missed;
}

static void spf_log_result(const char *sid, const struct spf_report *r, uint64_t ms)
{
	char dom[128], prob[160];

	log_escape(r->domain, strlen(r->domain), dom, sizeof dom);
	log_escape(r->problem, strlen(r->problem), prob, sizeof prob);
	log_info("%s: spf: result=%s identity=%s domain=%s ip=%s ms=%llu%s%s", sid,
	    spf_outcome_name(r->result), r->helo_identity ? "helo" : "mailfrom",
	    dom, r->ip, (unsigned long long)ms, r->problem[0] ? " problem=" : "",
	    r->problem[0] ? prob : "");
}

/*
 * The scheduler. A check can hold a worker thread for its whole budget
 * (a nameserver that never answers), and libuv's pool is shared (16
 * threads, set in main): so at most SPF_MAX_RUNNING checks run at once,
 * at most SPF_MAX_PER_DOMAIN of them for one domain, and the others wait
 * here, on the loop, in order. One slow domain then holds 4 threads, not
 * the pool, and other domains' checks go on (invariant 3).
 */
#define SPF_MAX_RUNNING 12
#define SPF_MAX_PER_DOMAIN 4
#define SPF_MAX_WAITING 5000

/* the loop's SPF state (filter_env.loop_state): the libspf2 server of
 * the current configuration and the scheduler's queue and slots */
struct spf_loop {
	struct spf_srv *cur;
	uv_loop_t *loop;            /* the loop the checks are queued from */
	struct spf_job *waiting_head, *waiting_tail;
	unsigned n_running, n_waiting;
	struct spf_job *running[SPF_MAX_RUNNING];
};

void spf_evaluate(const struct spf_loop *sl, struct dns *dns, const char *ip, const char *helo,
    const char *mail_from, uint64_t deadline, struct spf_report *r)
{
	memset(r, 0, sizeof *r);
	if (sl == NULL || sl->cur == NULL) {
		r->result = SPF_OUT_TEMPERROR;
		copy_str(r->problem, sizeof r->problem, "SPF not initialised");
		return;
	}
	spf_tls.dns = dns;
	evaluate(sl->cur->spf, ip, helo, mail_from, deadline, r);
	spf_tls.dns = NULL;
}

static unsigned running_for(const struct spf_loop *sl, const char *domain)
{
	unsigned n = 0;
	for (unsigned i = 0; i < SPF_MAX_RUNNING; i++)
		n += sl->running[i] != NULL && strcasecmp(sl->running[i]->domain, domain) == 0;
	return n;
}

static void job_finish(struct spf_job *job)
{
	struct filter_verdict v;

	spf_log_result(job->sid, &job->rep, dns_now_ms() - job->start);
	spf_verdict_build(&job->rep, job->mode, job->permerror, &v);
	filter_async_done(&job->token, &v);
	srv_unref(job->srv);
	free(job);
}

static void spf_after_work(uv_work_t *req, int status);

/* schedule - start waiting checks while there is room; expire the ones
 * whose budget ran out while they waited. */
static void schedule(struct spf_loop *sl)
{
	struct spf_job **pp = &sl->waiting_head, *job, *prev = NULL;
	uint64_t now = dns_now_ms();

	while ((job = *pp) != NULL && sl->n_running < SPF_MAX_RUNNING) {
		bool expired = now >= job->deadline;
		if (!expired && running_for(sl, job->domain) >= SPF_MAX_PER_DOMAIN) {
			prev = job;
			pp = &job->next;
			continue;
		}
		*pp = job->next;
		if (sl->waiting_tail == job)
			sl->waiting_tail = prev;
		sl->n_waiting--;
		job->next = NULL;
		if (expired) {
			job->rep.result = SPF_OUT_TEMPERROR;
			copy_str(job->rep.problem, sizeof job->rep.problem,
			    "no time left: waited behind other checks of the domain");
			job_finish(job);
			continue;
		}
		for (unsigned i = 0; i < SPF_MAX_RUNNING; i++) {
			if (sl->running[i] == NULL) {
				sl->running[i] = job;
				break;
			}
		}
		sl->n_running++;
		if (uv_queue_work(sl->loop, &job->req, spf_work, spf_after_work) != 0)
			spf_after_work(&job->req, UV_ECANCELED);
	}
}

static void spf_after_work(uv_work_t *req, int status)
{
	struct spf_job *job = req->data;
	struct spf_loop *sl = job->sl;

	if (atomic_load(&job->abandoned)) {
		/* the session closed: nobody waits for this verdict */
		for (unsigned i = 0; i < SPF_MAX_RUNNING; i++)
			if (sl->running[i] == job)
				sl->running[i] = NULL;
		sl->n_running--;
		log_debug("%s: spf: check of a closed session ended after %llums", job->sid,
		    (unsigned long long)(dns_now_ms() - job->start));
		kept_release(job);
		srv_unref(job->srv);
		free(job);
		schedule(sl);
		return;
	}
	if (status != 0) {   /* UV_ECANCELED: never ran */
		job->rep.result = SPF_OUT_TEMPERROR;
		copy_str(job->rep.problem, sizeof job->rep.problem, "check cancelled");
	}
	kept_release(job);
	for (unsigned i = 0; i < SPF_MAX_RUNNING; i++)
		if (sl->running[i] == job)
			sl->running[i] = NULL;
	sl->n_running--;
	job_finish(job);
	schedule(sl);
}

/*
 * spf_disconnect - the session's queued checks leave the queue at once;
 * its running checks are told to stop (their DNS queries end now, further
 * lookups are not made), so their worker threads and slots come back
 * within milliseconds instead of at their deadline. A slot is given back
 * only when its thread is: the scheduler's count stays the truth about
 * the pool.
 */
static void spf_disconnect(const struct filter_env *env)
{
	uint64_t session_id = env->session_id;
	struct spf_loop *sl = env->loop_state;
	struct spf_job **pp, *job, *prev = NULL;
	unsigned dropped = 0, stopped = 0;

	if (sl == NULL)
		return;
	pp = &sl->waiting_head;

	while ((job = *pp) != NULL) {
		if (job->token.session_id != session_id) {
			prev = job;
			pp = &job->next;
			continue;
		}
		*pp = job->next;
		if (sl->waiting_tail == job)
			sl->waiting_tail = prev;
		sl->n_waiting--;
		dropped++;
		srv_unref(job->srv);
		free(job);
	}
	for (unsigned i = 0; i < SPF_MAX_RUNNING; i++) {
		if (sl->running[i] != NULL && sl->running[i]->token.session_id == session_id &&
		    !atomic_load(&sl->running[i]->abandoned)) {
			atomic_store(&sl->running[i]->abandoned, true);
			stopped++;
		}
	}
	if (stopped > 0)
		dns_cancel_wake(env->dns);
	if (dropped + stopped > 0)
		log_debug("spf: session closed: %u queued check(s) dropped, %u running stopped",
		    dropped, stopped);
}

/* client_addr - env->client_ip as a sockaddr (it is the real client, after
 * PROXY/XCLIENT handling), for the [spf] trusted match. */
static bool client_addr(const struct filter_env *env, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	if (env->client_ip == NULL)
		return false;
	if (inet_pton(AF_INET, env->client_ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, env->client_ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

/* is_loopback - 127.0.0.0/8 or ::1 (IPv4-mapped addresses are unmapped
 * before they reach env->client_ip). */
static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	return ss->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static uint64_t check_budget(const struct config *cfg)
{
	uint64_t b = 4 * cfg->dns.timeout;

	return b < SPF_CHECK_BUDGET_MS ? b : SPF_CHECK_BUDGET_MS;
}

static enum filter_result spf_mail(const struct filter_env *env,
    struct filter_verdict *v, const struct filter_async *async)
{
	const struct config *cfg = env->cfg;
	struct spf_loop *sl = env->loop_state;
	struct sockaddr_storage ss;
	struct spf_job *job;

	if (cfg->spf.mode == SPF_MODE_OFF || env->listener == NULL ||
	    strcmp(env->listener, "inbound") != 0)
		return FILTER_CONTINUE;
	/* Loopback: libspf2 passes it without a lookup ("designates
	 * 127.0.0.1"), a claim nobody checked. Trusted relays: skipped by
	 * configuration. Either way the header says "none" and why. */
	{
		const char *why = NULL, *kind = NULL;
		bool have = client_addr(env, &ss);

		if (have && is_loopback(&ss)) {
			kind = "loopback";
			why = "is a loopback address";
		} else if (have && cidrs_match(&cfg->spf.trusted, (struct sockaddr *)&ss)) {
			kind = "trusted";
			why = "is in [spf] trusted";
		}
		if (why != NULL) {
			struct spf_report rep = {.result = SPF_OUT_NONE};
			const char *at = env->null_sender ? NULL : strrchr(env->mail_from, '@');

			snprintf(rep.not_checked, sizeof rep.not_checked, "not checked, client %s %s",
			    env->client_ip, why);
			copy_str(rep.receiver, sizeof rep.receiver, cfg->server.hostname);
			copy_str(rep.ip, sizeof rep.ip, env->client_ip);
			copy_str(rep.helo, sizeof rep.helo, env->helo);
			copy_str(rep.sender, sizeof rep.sender, env->null_sender ? "" : env->mail_from);
			copy_str(rep.domain, sizeof rep.domain, at ? at + 1 : env->helo);
			spf_verdict_build(&rep, cfg->spf.mode, cfg->spf.permerror, v);
			snprintf(v->note, sizeof v->note, "spf=skipped");
			log_debug("%s: spf: skipped, %s client %s", env->sid, kind, env->client_ip);
			return FILTER_CONTINUE;
		}
	}

	if (sl != NULL && sl->cur != NULL && env->dns != NULL) {
		/* the same inputs, cut to the same sizes, as a job's */
		char ip[64], helo[SPF_DOMAIN_MAX], from[FILTER_ADDR_MAX + 1];
		struct spf_report rep;
		uint64_t start = dns_now_ms();

		copy_str(ip, sizeof ip, env->client_ip);
		copy_str(helo, sizeof helo, env->helo);
		copy_str(from, sizeof from, env->null_sender ? "" : env->mail_from);
		if (evaluate_cached(sl->cur, env->dns, ip, helo, from, start + check_budget(cfg), &rep)) {
			copy_str(rep.receiver, sizeof rep.receiver, cfg->server.hostname);
			spf_log_result(env->sid, &rep, dns_now_ms() - start);
			spf_verdict_build(&rep, cfg->spf.mode, cfg->spf.permerror, v);
			return v->result;
		}
	}

	job = calloc(1, sizeof *job);
	if (job == NULL || sl == NULL || sl->cur == NULL) {
		struct spf_report rep = {.result = SPF_OUT_TEMPERROR};
		free(job);
		copy_str(rep.problem, sizeof rep.problem, "internal error");
		copy_str(rep.receiver, sizeof rep.receiver, cfg->server.hostname);
		copy_str(rep.ip, sizeof rep.ip, env->client_ip);
		copy_str(rep.helo, sizeof rep.helo, env->helo);
		copy_str(rep.sender, sizeof rep.sender, env->mail_from);
		spf_verdict_build(&rep, cfg->spf.mode, cfg->spf.permerror, v);
		return v->result;
	}
	job->req.data = job;
	atomic_init(&job->abandoned, false);
	job->token = *async;
	job->dns = env->dns;
	job->mode = cfg->spf.mode;
	job->permerror = cfg->spf.permerror;
	job->start = dns_now_ms();
	job->deadline = job->start + check_budget(cfg);
	copy_str(job->sid, sizeof job->sid, env->sid);
	copy_str(job->ip, sizeof job->ip, env->client_ip);
	copy_str(job->helo, sizeof job->helo, env->helo);
	copy_str(job->mail_from, sizeof job->mail_from,
	    env->null_sender ? "" : env->mail_from);
	copy_str(job->receiver, sizeof job->receiver, cfg->server.hostname);
	{
		const char *at = env->null_sender ? NULL : strrchr(env->mail_from, '@');
		copy_str(job->domain, sizeof job->domain, at ? at + 1 : env->helo);
	}
	if (sl->n_waiting >= SPF_MAX_WAITING) {
		struct spf_report rep = {.result = SPF_OUT_TEMPERROR};
		log_warn("%s: spf: %u checks waiting already; answering temperror", env->sid, sl->n_waiting);
		free(job);
		copy_str(rep.problem, sizeof rep.problem, "too many checks waiting");
		copy_str(rep.receiver, sizeof rep.receiver, cfg->server.hostname);
		spf_verdict_build(&rep, cfg->spf.mode, cfg->spf.permerror, v);
		return v->result;
	}
	job->sl = sl;
	sl->loop = env->loop;
	job->srv = sl->cur;
	job->srv->refs++;
	/* a check that needs DNS goes through the queue: its verdict comes
	 * later, from a callback, never from inside this hook */
	if (sl->waiting_tail)
		sl->waiting_tail->next = job;
	else
		sl->waiting_head = job;
	sl->waiting_tail = job;
	sl->n_waiting++;
	schedule(sl);
	return FILTER_ASYNC;
}


static int spf_init(void **loop_state, struct uv_loop_s *loop, const struct config *cfg, char *err,
    size_t errlen)
{
	(void)loop;
	struct spf_loop *sl = *loop_state;
	struct spf_srv *srv;

	/* libspf2's handlers are process globals: set before any worker runs */
	SPF_error_handler = spf_log_error;
	SPF_warning_handler = spf_log_warning;
	SPF_info_handler = spf_log_info;
	SPF_debug_handler = NULL;
	srv = srv_new(cfg, err, errlen);
	if (srv == NULL)
		return -1;
	if (sl == NULL && (sl = *loop_state = calloc(1, sizeof *sl)) == NULL) {
		srv_unref(srv);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	srv_unref(sl->cur);   /* a reload: running jobs keep the old one */
	sl->cur = srv;
	return 0;
}

static void spf_shutdown(void **loop_state)
{
	struct spf_loop *sl = *loop_state;

	/* after the loop's end: no check is queued or running */
	if (sl == NULL)
		return;
	srv_unref(sl->cur);
	free(sl);
	*loop_state = NULL;
}

/* a check ends at its own budget (451 4.7.24); the runner's deadline is
 * the backstop for a verdict that never comes */
static uint64_t spf_async_timeout(const struct config *cfg)
{
	return check_budget(cfg) + 1000;
}

const struct filter_ops filter_spf = {
	.name = "spf",
	.enabled = NULL,   /* spf_mail reads [spf] mode */
	.init = spf_init,
	.shutdown = spf_shutdown,
	.hook = {[FILTER_MAIL] = spf_mail},
	.disconnect = spf_disconnect,
	.async_timeout = spf_async_timeout,
};

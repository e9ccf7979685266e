/*
 * bounce - refuse bounces and auto-replies that answer mail this domain
 * never sent (issue 11), by their content.
 *
 * BATV (filters/batv.c) judges a bounce by its envelope recipient alone;
 * this check reads the message. Flow per message (filter interface v2):
 *   header, body  - on the inbound listener, when a recipient is in
 *                   [batv] domains, every top-level field and body chunk
 *                   goes to the classifier (smtp/bounce.c: bounded
 *                   streaming MIME walk, class + what the report quotes
 *                   of the original);
 *   FILTER_EOD    - a message of a class in [bounce] classes to a covered
 *                   recipient (in [batv] domains; not postmaster@, abuse@
 *                   or [bounce] exempt) is genuine only with evidence that
 *                   the original left from here:
 *                     tag       every covered recipient carries a valid
 *                               BATV tag (as the client gave it);
 *                     sig       the original carries a valid X-Backstop-Sig
 *                               (filters/bsig.c, added by [outbound])
 *                               made for the recipient as its sender;
 *                     rpath     the original's Return-Path has a valid
 *                               BATV tag and is the recipient;
 *                     relay     the topmost Received (the bouncing side's
 *                               own) is from one of [bounce] our_relays;
 *                     sent      In-Reply-To, References or the original's
 *                               Message-ID left through [outbound] with
 *                               the recipient as its sender
 *                               (filters/sentlog.c).
 *                   "the recipient": every covered recipient, BATV tag
 *                   removed - the evidence must be about mail that
 *                   address sent, not any address of ours.
 *                   Without evidence: enforce refuses (550 5.7.1, before
 *                   the backend sees the final dot), observe accepts and
 *                   marks (X-Backstop-Bounce). A report that quotes
 *                   nothing to check ("unverifiable": no original, and no
 *                   Message-ID the sent log could confirm) follows
 *                   [bounce] unverifiable.
 *   [batv] refuse_at = content (mode enforce): batv.c leaves a failed
 *                   bounce to this hook. Here a class the check does not
 *                   judge (read receipts, feedback reports) passes, a
 *                   judged class is refused unless other evidence says the
 *                   original was ours, and ordinary mail from the null
 *                   sender gets BATV's refusal, as at DATA.
 * Non-null senders are judged the same way: an auto-reply or an NDR from
 * MAILER-DAEMON@ is classified by its content, not its envelope.
 *
 * One log line per judged message names the class, what decided it, the
 * original's sender, Message-ID and client address (the entry MTA's client)
 * when the report quotes them, and the evidence found or what was missing.
 *
 * Holding: only a mark (observe, unverifiable = mark) needs the message
 * held; a refusal at end of data works on a streamed message too (the
 * final dot waits for the EOD verdicts).
 *
 * State per message: the classifier (bounded, see smtp/bounce.h),
 * allocated for covered messages only, freed in txn_end; its result lives
 * on the stack of the end-of-data hook.
 */
#define _POSIX_C_SOURCE 200809L  /* strcasecmp, strncasecmp */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "filters/batv.h"
#include "filters/batv_tag.h"
#include "filters/bounce_evidence.h"
#include "filters/bounce_record.h"
#include "filters/bsig.h"
#include "filters/filter.h"
#include "filters/outbound_sig.h"
#include "filters/sentlog.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "smtp/bounce.h"

#define ESC_ADDR 300
#define BOUNCE_FIELD "X-Backstop-Bounce"

struct bounce_msg {
	bool covered;               /* a recipient in [batv] domains */
	bool no_memory;             /* covered, but the classifier could not start */
	struct bounce_scan *scan;
};

enum evidence { EV_NONE, EV_TAG, EV_SIG, EV_RPATH, EV_RELAY, EV_SENT };

static const char *const evidence_token[] = {
	[EV_NONE] = "none", [EV_TAG] = "tag", [EV_SIG] = "sig",
	[EV_RPATH] = "rpath", [EV_RELAY] = "relay", [EV_SENT] = "sent",
};

/* What the checks found, for the verdict and the log line. */
struct judgement {
	enum evidence ev;
	char ev_detail[200];        /* the evidence found */
	char missing[480];          /* each check that failed, and why */
	bool checkable;             /* something of the original to check */
	size_t covered;             /* covered recipients */
	const char *rcpt;           /* the first one, as the client gave it */
};

static bool listener_inbound(const struct filter_env *env)
{
	return env->listener == NULL || strcmp(env->listener, "inbound") == 0;
}

/* batv_content - [batv] refuse_at = content: BATV's verdict is given here. */
static bool batv_content(const struct config *cfg)
{
	return cfg->batv.mode == BATV_MODE_ENFORCE && cfg->batv.refuse_at == BATV_REFUSE_CONTENT;
}

static bool bounce_enabled(const struct config *cfg)
{
	return cfg->bounce.mode != BOUNCE_MODE_OFF || batv_content(cfg);
}

static char *esc(const char *s, char *out, size_t cap)
{
	return log_escape(s ? s : "", s ? strlen(s) : 0, out, cap);
}

/* rcpt_bare - the recipient without its BATV tag (any status). */
static void rcpt_bare(const struct filter_env *env, const char *rcpt, char *out, size_t cap)
{
	const struct batv_keys *keys = batv_keys_current(env->filters);
	static const struct batv_keys none;

	batv_check(keys ? keys : &none, rcpt, batv_today(), 1, out, cap);
}

/* any_rcpt_covered - is the content worth classifying? */
static bool any_rcpt_covered(const struct filter_env *env)
{
	const char *const *rcpts = env->rcpts_orig ? env->rcpts_orig : env->rcpts;
	char bare[FILTER_ADDR_MAX];

	for (size_t i = 0; rcpts != NULL && i < env->nrcpts; i++) {
		rcpt_bare(env, rcpts[i], bare, sizeof bare);
		if (bounce_domain_covered(env->cfg, bare))
			return true;
	}
	return false;
}

/* msg_get - the message's state; the classifier only when covered. NULL
 * when there is nothing to do (outbound, out of memory). */
static struct bounce_msg *msg_get(const struct filter_env *env)
{
	struct bounce_msg *m;

	if (env->txn_state == NULL || !listener_inbound(env))
		return NULL;
	if (*env->txn_state != NULL)
		return *env->txn_state;
	if ((m = calloc(1, sizeof *m)) == NULL) {
		log_warn("%s: bounce: out of memory; message not classified", env->sid);
		return NULL;
	}
	m->covered = any_rcpt_covered(env);
	if (m->covered && (m->scan = bounce_scan_new()) == NULL) {
		log_warn("%s: bounce: out of memory; message not classified", env->sid);
		m->no_memory = true;
	}
	*env->txn_state = m;
	return m;
}

static bool bounce_header(const struct filter_env *env, const struct filter_header *h)
{
	struct bounce_msg *m = msg_get(env);

	if (m != NULL && m->scan != NULL)
		bounce_scan_header(m->scan, h->field, h->field_len);
	return true;
}

static enum filter_result bounce_eoh(const struct filter_env *env,
    struct filter_verdict *v, const struct filter_async *async)
{
	struct bounce_msg *m = msg_get(env);

	(void)v;
	(void)async;
	if (m != NULL && m->scan != NULL)
		bounce_scan_eoh(m->scan);
	return FILTER_CONTINUE;
}

static void bounce_body(const struct filter_env *env, const char *data, size_t len)
{
	struct bounce_msg *m = env->txn_state ? *env->txn_state : NULL;

	if (m != NULL && m->scan != NULL)
		bounce_scan_body(m->scan, data, len);
}

/* missing_add - ", what" onto j->missing. */
static void missing_add(struct judgement *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void missing_add(struct judgement *j, const char *fmt, ...)
{
	size_t used = strlen(j->missing);
	va_list ap;

	if (used + 3 >= sizeof j->missing)
		return;
	if (used > 0) {
		memcpy(j->missing + used, ", ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(j->missing + used, sizeof j->missing - used, fmt, ap);
	va_end(ap);
}

/* check_tag - (1) every covered recipient carries a valid BATV tag. */
static bool check_tag(const struct filter_env *env, const struct batv_keys *keys,
    struct judgement *j)
{
	const struct config *cfg = env->cfg;
	const char *const *rcpts = env->rcpts_orig ? env->rcpts_orig : env->rcpts;
	enum batv_status first_bad = BATV_VALID;
	char bare[FILTER_ADDR_MAX];
	size_t valid = 0;

	for (size_t i = 0; rcpts != NULL && i < env->nrcpts; i++) {
		enum batv_status st;
		static const struct batv_keys none;
		st = batv_check(keys ? keys : &none, rcpts[i], batv_today(),
		    (unsigned)cfg->batv.validity_days, bare, sizeof bare);
		if (!bounce_domain_covered(cfg, bare) || bounce_rcpt_exempt(cfg, bare))
			continue;
		if (j->covered++ == 0)
			j->rcpt = rcpts[i];
		if (st == BATV_VALID && keys != NULL)
			valid++;
		else if (first_bad == BATV_VALID)
			first_bad = keys != NULL ? st : BATV_UNKNOWN_KEY;
	}
	if (j->covered > 0 && valid == j->covered) {
		snprintf(j->ev_detail, sizeof j->ev_detail, "recipient has a valid BATV tag");
		return true;
	}
	if (keys == NULL)
		missing_add(j, "recipient tag: no [batv] keys_file");
	else
		missing_add(j, "recipient: %s", batv_status_text(first_bad));
	return false;
}

/* judged_bare - recipient i without its BATV tag, into bare, when the
 * evidence must be for it: covered and not exempt, or (all: BATV refused a
 * message with no such recipient) any recipient. */
static bool judged_bare(const struct filter_env *env, size_t i, bool all, char *bare, size_t cap)
{
	const char *const *rcpts = env->rcpts_orig ? env->rcpts_orig : env->rcpts;

	if (rcpts == NULL || i >= env->nrcpts)
		return false;
	rcpt_bare(env, rcpts[i], bare, cap);
	return all || (bounce_domain_covered(env->cfg, bare) && !bounce_rcpt_exempt(env->cfg, bare));
}

/* check_sig - (2) the original carries a valid X-Backstop-Sig made for
 * the bounce's recipient: the MAC covers the original's envelope sender,
 * and a bounce or an auto-reply goes back to that sender. Only the
 * recipient (BATV tag removed) is tried, for every judged recipient: the
 * quoted From and Return-Path are the sender's text, and a signature
 * copied from user@'s message must not open user3@'s mailbox. */
static bool check_sig(const struct filter_env *env, const struct batv_keys *keys,
    const struct bounce_original *o, bool all, struct judgement *j)
{
	enum bsig_status worst = BSIG_VALID;
	char bare[FILTER_ADDR_MAX], first[FILTER_ADDR_MAX] = "";
	size_t n = 0;
	time_t now = time(NULL);

	if (!o->found || o->backstop_sig[0] == '\0') {
		missing_add(j, "%s: none", BSIG_FIELD);
		return false;
	}
	if (keys == NULL) {
		missing_add(j, "%s: no [batv] keys_file", BSIG_FIELD);
		return false;
	}
	for (size_t i = 0; i < env->nrcpts; i++) {
		if (!judged_bare(env, i, all, bare, sizeof bare))
			continue;
		if (n++ == 0)
			snprintf(first, sizeof first, "%s", bare);
		enum bsig_status st = bsig_check(keys, now, (unsigned)env->cfg->batv.validity_days,
		    o->backstop_sig, o->message_id, o->date, bare);
		if (st != BSIG_VALID && worst != BSIG_BAD)
			worst = st;
	}
	if (n > 0 && worst == BSIG_VALID) {
		char e[ESC_ADDR];
		snprintf(j->ev_detail, sizeof j->ev_detail, "original has a valid %s (sender %s)",
		    BSIG_FIELD, esc(first, e, sizeof e));
		return true;
	}
	missing_add(j, "%s: %s", BSIG_FIELD, n == 0 ? "no recipient to check it for" :
	    worst == BSIG_EXPIRED ? "expired" : "bad (or not made for this recipient)");
	return false;
}

/* check_rpath - (3) the original's Return-Path carries a valid tag, and
 * is the recipient's own address: a tagged Return-Path of user@ copied
 * into a bounce to user3@ is no evidence for user3@. */
static bool check_rpath(const struct filter_env *env, const struct batv_keys *keys,
    const struct bounce_original *o, bool all, struct judgement *j)
{
	char rpath[256], bare[256], rcpt[FILTER_ADDR_MAX], e[ESC_ADDR];
	enum batv_status st;
	size_t n = 0;

	bounce_addr_bare(o->return_path, rpath, sizeof rpath);
	if (!o->found || rpath[0] == '\0') {
		missing_add(j, "Return-Path: none");
		return false;
	}
	if (keys == NULL) {
		missing_add(j, "Return-Path: no [batv] keys_file");
		return false;
	}
	st = batv_check(keys, rpath, batv_today(), (unsigned)env->cfg->batv.validity_days,
	    bare, sizeof bare);
	if (st != BATV_VALID) {
		missing_add(j, "Return-Path: %s", batv_status_text(st));
		return false;
	}
	for (size_t i = 0; i < env->nrcpts; i++) {
		if (!judged_bare(env, i, all, rcpt, sizeof rcpt))
			continue;
		n++;
		if (strcasecmp(rcpt, bare) != 0) {
			missing_add(j, "Return-Path: tagged, but for %s, not the recipient",
			    esc(bare, e, sizeof e));
			return false;
		}
	}
	if (n == 0) {
		missing_add(j, "Return-Path: no recipient to check it for");
		return false;
	}
	snprintf(j->ev_detail, sizeof j->ev_detail, "original's Return-Path %s has a valid BATV tag",
	    esc(rpath, e, sizeof e));
	return true;
}

/* check_relay - (4) the original reached the bouncing side from one of
 * our_relays (bounce_relay_hop: only the hop that side wrote counts). The
 * weakest evidence: whoever writes the whole report writes that hop too. */
static bool check_relay(const struct filter_env *env, const struct bounce_original *o,
    struct judgement *j)
{
	const struct config *cfg = env->cfg;
	char what[120];

	if (cfg->bounce.relay_nets.n == 0) {
		missing_add(j, "Received: no [bounce] our_relays");
		return false;
	}
	if (!o->found || o->nhops == 0) {
		missing_add(j, "Received: none");
		return false;
	}
	if (bounce_relay_hop(cfg, o, what, sizeof what)) {
		snprintf(j->ev_detail, sizeof j->ev_detail,
		    "original reached the bouncing side from our relay (Received %s)", what);
		return true;
	}
	missing_add(j, "Received: the receiving hop (%s) is not ours", what);
	return false;
}

/* check_sent - (5) a Message-ID it answers or quotes left through
 * [outbound] from the recipient: In-Reply-To, References, the original's
 * Message-ID, each looked up with every judged recipient (the sentlog
 * holds (Message-ID, sender) pairs: an id user@ sent says nothing about a
 * bounce to user3@). */
static bool check_sent(const struct filter_env *env, const struct bounce_result *r, bool all,
    struct judgement *j)
{
	struct sentlog *log = outbound_sig_sentlog(env->filters);
	const char *ids[2 + 8], *found = NULL;
	char bare[FILTER_ADDR_MAX];
	size_t n = 0, nrcpt = 0;
	time_t now = time(NULL);

	if (r->in_reply_to[0])
		ids[n++] = r->in_reply_to;
	for (size_t i = 0; i < r->nrefs && i < 8; i++)
		if (r->refs[i][0])
			ids[n++] = r->refs[i];
	if (r->orig.found && r->orig.message_id[0])
		ids[n++] = r->orig.message_id;
	if (n == 0) {
		missing_add(j, "Message-ID: none to look up");
		return false;
	}
	if (log == NULL) {
		missing_add(j, "Message-ID: no sent log ([server] state_dir)");
		return false;
	}
	/* An auto-reply or challenge quotes nothing but In-Reply-To and
	 * References: there they are what can be checked. A report (NDR,
	 * DSN) is checkable by its original; In-Reply-To alone is a header
	 * any sender adds (a list reply pasting a bounce), so without an
	 * original it stays unverifiable ([bounce] unverifiable decides). */
	if (r->cls == BOUNCE_AUTOREPLY || r->cls == BOUNCE_CHALLENGE)
		j->checkable = true;
	for (size_t i = 0; i < env->nrcpts; i++) {
		const char *hit = NULL;
		if (!judged_bare(env, i, all, bare, sizeof bare))
			continue;
		nrcpt++;
		for (size_t k = 0; k < n && hit == NULL; k++)
			if (sentlog_contains(log, ids[k], bare, now))
				hit = ids[k];
		if (hit == NULL) {
			missing_add(j, "Message-ID: %zu not sent from here by the recipient", n);
			return false;
		}
		if (found == NULL)
			found = hit;
	}
	if (nrcpt == 0) {
		missing_add(j, "Message-ID: no recipient to look up");
		return false;
	}
	char e[ESC_ADDR];
	snprintf(j->ev_detail, sizeof j->ev_detail, "%s %s was sent from here by the recipient",
	    found == r->in_reply_to ? "In-Reply-To" :
	    found == r->orig.message_id ? "original Message-ID" : "References",
	    esc(found, e, sizeof e));
	return true;
}

/* judge - look for evidence, in order of cost and strength. */
static void judge(const struct filter_env *env, const struct bounce_result *r,
    struct judgement *j)
{
	const struct batv_keys *keys = batv_keys_current(env->filters);
	const struct bounce_original *o = &r->orig;

	bool all;

	memset(j, 0, sizeof *j);
	j->checkable = o->found;
	if (check_tag(env, keys, j)) {
		j->ev = EV_TAG;
		return;
	}
	/* BATV refused a message whose recipients [bounce] all exempts: the
	 * evidence must then be for each of them */
	all = j->covered == 0;
	if (check_sig(env, keys, o, all, j))
		j->ev = EV_SIG;
	else if (check_rpath(env, keys, o, all, j))
		j->ev = EV_RPATH;
	else if (check_relay(env, o, j))
		j->ev = EV_RELAY;
	else if (check_sent(env, r, all, j))
		j->ev = EV_SENT;
}

/* noun - what the class is called in a reply. */
static const char *noun(enum bounce_class c)
{
	switch (c) {
	case BOUNCE_DSN:
	case BOUNCE_NDR: return "bounce";
	case BOUNCE_AUTOREPLY: return "auto-reply";
	case BOUNCE_CHALLENGE: return "challenge";
	case BOUNCE_MDN: return "read receipt";
	case BOUNCE_ARF: return "feedback report";
	case BOUNCE_ORDINARY: break;
	}
	return "message";
}

/* original_text - "original from <a@b> client [ip] msgid <id>" or
 * "no original quoted", for the log line and the mark. */
static void original_text(const struct filter_env *env, const struct bounce_original *o,
    char *out, size_t cap)
{
	char sender[256], e1[ESC_ADDR], e2[ESC_ADDR], e3[80];
	const char *ip;
	int n;

	if (!o->found) {
		snprintf(out, cap, "no original quoted");
		return;
	}
	bounce_addr_bare(o->return_path, sender, sizeof sender);
	if (sender[0] == '\0')
		snprintf(sender, sizeof sender, "%s", o->from);
	ip = bounce_origin_ip(env->cfg, o);
	n = snprintf(out, cap, "original from <%s>", sender[0] ? esc(sender, e1, sizeof e1) : "?");
	if (n > 0 && (size_t)n < cap && ip != NULL)
		n += snprintf(out + n, cap - (size_t)n, " client [%s]", esc(ip, e3, sizeof e3));
	if (n > 0 && (size_t)n < cap && o->message_id[0])
		snprintf(out + n, cap - (size_t)n, " msgid %s", esc(o->message_id, e2, sizeof e2));
}

/* mark - the X-Backstop-Bounce field (a held message only: bounce_hold). */
static void mark(struct filter_verdict *v, const char *result, enum bounce_class c,
    const char *orig)
{
	int n = snprintf(v->headers, sizeof v->headers, "%s: %s (%s for a message this domain "
	    "did not send) class=%s; %s\r\n", BOUNCE_FIELD, result, noun(c), bounce_class_name(c), orig);

	if (n < 0 || (size_t)n >= sizeof v->headers)
		snprintf(v->headers, sizeof v->headers, "%s: %s class=%s\r\n", BOUNCE_FIELD, result,
		    bounce_class_name(c));
}

static void refuse(struct filter_verdict *v, const char *rcpt, enum bounce_class c,
    const char *why)
{
	char e[ESC_ADDR];

	v->result = FILTER_REJECT;
	v->code = 550;
	snprintf(v->esc, sizeof v->esc, "5.7.1");
	snprintf(v->text, sizeof v->text, "<%s>: %s for a message this domain did not send (%s)",
	    esc(rcpt, e, sizeof e), noun(c), why);
}

/* note_add - one more "name=value" in the verdict's note. */
static void note_add(struct filter_verdict *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note_add(struct filter_verdict *v, const char *fmt, ...)
{
	size_t used = strlen(v->note);
	va_list ap;

	if (used > 0 && used + 1 < sizeof v->note)
		v->note[used++] = ' ';
	va_start(ap, fmt);
	vsnprintf(v->note + used, sizeof v->note - used, fmt, ap);
	va_end(ap);
}

#define NO_EVIDENCE "no evidence that the original was sent from here"
#define UNVERIFIABLE "it quotes nothing of the original to verify"

/*
 * decide - the verdict on a classified message. batv_failed: refuse_at =
 * content and BATV refused it (bv holds BATV's verdict).
 */
static enum filter_result decide(const struct filter_env *env, const struct bounce_result *r,
    struct filter_verdict *v, bool batv_failed, const struct filter_verdict *bv)
{
	const struct config *cfg = env->cfg;
	enum bounce_class c = r->cls;
	bool judged_class = c != BOUNCE_ORDINARY && (cfg->bounce.class_mask & (1u << c)) != 0;
	/* refuse_at = content waives BATV only for a read receipt or a
	 * feedback report complete as its RFC writes it (bounce.h,
	 * well_formed): those answer the From: address, which carries no tag.
	 * A report that only claims to be one (a forged DSN with an MDN part,
	 * a report-type label, X-Apple-Unsubscribe) and any other class,
	 * judged by [bounce] classes or not, needs evidence. */
	bool waived = batv_failed && !judged_class && (c == BOUNCE_MDN || c == BOUNCE_ARF) &&
	    r->well_formed;
	struct judgement j;
	char orig[700], e[ESC_ADDR], why[200];

	esc(r->why, why, sizeof why);
	if (batv_failed && c == BOUNCE_ORDINARY) {
		/* not a report of any kind: BATV's verdict, as at DATA */
		*v = *bv;
		log_info("%s: bounce: null-sender message without a valid BATV tag is no report "
		    "of a known kind: refused ([batv] refuse_at = content)", env->sid);
		return FILTER_REJECT;
	}
	if (waived) {
		snprintf(v->note, sizeof v->note, "batv=exempt(%s)", bounce_class_name(c));
		log_info("%s: bounce: %s (%s) without a valid BATV tag accepted: a well-formed "
		    "report, and [bounce] classes does not judge %s ([batv] refuse_at = content)",
		    env->sid, bounce_class_name(c), why, bounce_class_name(c));
		return FILTER_CONTINUE;
	}
	if (!batv_failed && (!judged_class || cfg->bounce.mode == BOUNCE_MODE_OFF)) {
		if (c != BOUNCE_ORDINARY)
			log_debug("%s: bounce: %s (%s) not judged", env->sid, bounce_class_name(c), why);
		return FILTER_CONTINUE;
	}
	judge(env, r, &j);
	if (j.covered == 0 && !batv_failed)
		return FILTER_CONTINUE;   /* only exempt recipients */
	if (j.rcpt == NULL)   /* BATV failed on a recipient [bounce] exempts */
		j.rcpt = env->rcpts_orig && env->nrcpts ? env->rcpts_orig[0] : "";
	original_text(env, &r->orig, orig, sizeof orig);
	if (j.ev != EV_NONE) {
		if (batv_failed)
			snprintf(v->note, sizeof v->note, "%s", bv->note);
		note_add(v, "bounce=pass(%s,%s)", bounce_class_name(c), evidence_token[j.ev]);
		log_info("%s: bounce: %s (%s) to %s accepted: %s; %s", env->sid, bounce_class_name(c),
		    why, esc(j.rcpt, e, sizeof e), j.ev_detail, orig);
		return FILTER_CONTINUE;
	}
	if (batv_failed) {
		/* BATV's verdict stands, whatever [bounce] mode and unverifiable say */
		refuse(v, j.rcpt, c, j.checkable ? NO_EVIDENCE : UNVERIFIABLE);
		snprintf(v->note, sizeof v->note, "%s", bv->note);
		note_add(v, "bounce=%s(%s)", j.checkable ? "fail" : "unverifiable", bounce_class_name(c));
		log_info("%s: bounce: refused %s (%s) to %s: %s%s; %s ([batv] refuse_at = content)",
		    env->sid, bounce_class_name(c), why, esc(j.rcpt, e, sizeof e),
		    j.checkable ? "" : "unverifiable, ", orig, j.missing);
		bounce_record_refused(env, r, j.rcpt, "batv");
		return FILTER_REJECT;
	}
	if (!j.checkable) {
		note_add(v, "bounce=unverifiable(%s)", bounce_class_name(c));
		if (cfg->bounce.mode == BOUNCE_MODE_ENFORCE &&
		    cfg->bounce.unverifiable == BOUNCE_UNVERIFIABLE_REFUSE) {
			refuse(v, j.rcpt, c, UNVERIFIABLE);
			log_info("%s: bounce: refused %s (%s) to %s: unverifiable, %s; %s", env->sid,
			    bounce_class_name(c), why, esc(j.rcpt, e, sizeof e), orig, j.missing);
			bounce_record_refused(env, r, j.rcpt, "unverifiable");
			return FILTER_REJECT;
		}
		if (cfg->bounce.mode == BOUNCE_MODE_OBSERVE ||
		    cfg->bounce.unverifiable == BOUNCE_UNVERIFIABLE_MARK)
			mark(v, "unverifiable", c, orig);
		log_info("%s: bounce: %s%s (%s) to %s accepted%s: unverifiable, %s; %s", env->sid,
		    cfg->bounce.mode == BOUNCE_MODE_OBSERVE ? "observe: " : "", bounce_class_name(c),
		    why, esc(j.rcpt, e, sizeof e), v->headers[0] ? " and marked" : "", orig, j.missing);
		return FILTER_CONTINUE;
	}
	note_add(v, "bounce=fail(%s)", bounce_class_name(c));
	if (cfg->bounce.mode == BOUNCE_MODE_OBSERVE) {
		mark(v, "fail", c, orig);
		log_info("%s: bounce: observe: %s (%s) to %s would be refused: %s; %s", env->sid,
		    bounce_class_name(c), why, esc(j.rcpt, e, sizeof e), orig, j.missing);
		return FILTER_CONTINUE;
	}
	refuse(v, j.rcpt, c, NO_EVIDENCE);
	log_info("%s: bounce: refused %s (%s) to %s: %s; %s", env->sid, bounce_class_name(c), why,
	    esc(j.rcpt, e, sizeof e), orig, j.missing);
	bounce_record_refused(env, r, j.rcpt, "no_evidence");
	return FILTER_REJECT;
}

/* log_classified - what the classifier found, per message (debug): the
 * class and why, and what it took for the original. */
static void log_classified(const struct filter_env *env, const struct bounce_result *r)
{
	const struct bounce_original *o = &r->orig;
	char why[200], rp[ESC_ADDR], from[ESC_ADDR], mid[ESC_ADDR], date[200];

	if (log_get_level() < LOG_LEVEL_DEBUG)
		return;
	if (!o->found) {
		log_debug("%s: bounce: message %u: class %s (%s); no original", env->sid,
		    env->txn_number, bounce_class_name(r->cls), esc(r->why, why, sizeof why));
		return;
	}
	log_debug("%s: bounce: message %u: class %s (%s); original %s: return-path <%s> "
	    "from <%s> msgid %s hops %zu%s date %s", env->sid, env->txn_number,
	    bounce_class_name(r->cls), esc(r->why, why, sizeof why),
	    o->quoted_headers ? "quoted inline" : "in a MIME part",
	    esc(o->return_path, rp, sizeof rp), esc(o->from, from, sizeof from),
	    o->message_id[0] ? esc(o->message_id, mid, sizeof mid) : "-", o->nhops,
	    o->backstop_sig[0] ? " sig" : "", esc(o->date, date, sizeof date));
}

static enum filter_result bounce_eod(const struct filter_env *env,
    struct filter_verdict *v, const struct filter_async *async)
{
	struct bounce_msg *m = msg_get(env);
	struct bounce_result res;   /* ~14 KB, filled by bounce_scan_end: not
	                               kept (or zeroed) per message */
	struct filter_verdict bv;
	bool batv_failed = false;

	(void)async;
	if ((m == NULL && env->txn_state != NULL && listener_inbound(env)) ||
	    (m != NULL && m->no_memory)) {
		/* unjudged, a forged bounce would pass (BATV's verdict too, with
		 * refuse_at = content): the sender tries again later */
		if (env->cfg->bounce.mode != BOUNCE_MODE_ENFORCE && !batv_content(env->cfg))
			return FILTER_CONTINUE;
		v->code = 451;
		snprintf(v->esc, sizeof v->esc, "4.3.0");
		snprintf(v->text, sizeof v->text,
		    "Error: insufficient system resources to check the message, try again later");
		return FILTER_TEMPFAIL;
	}
	if (m == NULL || !m->covered)
		return FILTER_CONTINUE;
	bounce_scan_end(m->scan, env->mail_from ? env->mail_from : "", &res);
	log_classified(env, &res);
	if (batv_content(env->cfg)) {
		memset(&bv, 0, sizeof bv);
		batv_failed = batv_bounce_verdict(env, &bv, "end of data") == FILTER_REJECT;
	}
	return decide(env, &res, v, batv_failed, &bv);
}

static void bounce_txn_end(const struct filter_env *env, enum filter_outcome outcome)
{
	struct bounce_msg *m;

	(void)outcome;
	if (env->txn_state == NULL || (m = *env->txn_state) == NULL)
		return;
	if (m->scan != NULL)
		bounce_scan_free(m->scan);
	free(m);
	*env->txn_state = NULL;
}

/* bounce_hold - a mark goes on top of the message: held when one may come */
static bool bounce_hold(const struct config *cfg)
{
	return cfg->bounce.mode == BOUNCE_MODE_OBSERVE ||
	    (cfg->bounce.mode == BOUNCE_MODE_ENFORCE &&
	    cfg->bounce.unverifiable == BOUNCE_UNVERIFIABLE_MARK);
}

static int bounce_init(void **loop_state, struct uv_loop_s *loop, const struct config *cfg, char *err,
    size_t errlen)
{
	(void)loop;
	(void)loop_state;   /* no per-loop state (yet) */
	(void)err;
	(void)errlen;
	if (cfg->bounce.mode != BOUNCE_MODE_OFF && cfg->batv.keys_file[0] == '\0')
		log_warn("bounce: [batv] keys_file is not set: BATV tags and %s cannot be evidence",
		    BSIG_FIELD);
	return 0;
}

const struct filter_ops filter_bounce = {
	.name = "bounce",
	.enabled = bounce_enabled,
	.init = bounce_init,
	.hook = {[FILTER_EOH] = bounce_eoh, [FILTER_EOD] = bounce_eod},
	.header = bounce_header,
	.body = bounce_body,
	.txn_end = bounce_txn_end,
	.hold = bounce_hold,
};

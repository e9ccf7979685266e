/*
 * batv - refuse backscatter, sign outgoing envelope senders (issue 5,
 * draft-levine-smtp-batv-01 "prvs", tags made by filters/batv_tag.c).
 *
 * Inbound listener:
 *   RCPT  a recipient in [batv] domains whose local part carries a
 *         well-formed tag is rewritten to the untagged address (the backend
 *         sees local@domain). For a bounce (null sender, or a sender that
 *         matches bounce_senders) to a protected, non-exempt recipient
 *         without a VALID tag: refuse_at = rcpt and mode = enforce give
 *         550 5.7.1 here; otherwise the verdict waits for DATA, so that
 *         recipient-verification callouts (MAIL FROM:<>, RCPT, QUIT) work.
 *         Tagged recipients of non-bounces (replies to the envelope) are
 *         stripped and accepted whatever the tag's status.
 *   DATA  for a bounce, every recipient as the client gave it is checked:
 *         a protected non-exempt one without a VALID tag, or more than one
 *         recipient and not all VALID (a real bounce has one), refuses the
 *         message (enforce: 550 5.7.1 before any content) or marks it
 *         (observe: X-Backstop-BATV header, log line).
 *         refuse_at = content (enforce): the verdict waits for end of
 *         data, where filters/bounce.c asks for it (batv_bounce_verdict)
 *         and lets well-formed read receipts and feedback reports of a
 *         class it does not judge pass.
 *   Exempt: postmaster@ and abuse@ of every domain (RFC 5321 4.5.1,
 *   RFC 2142) and [batv] exempt ("user@domain" or "local@*", '*' globs).
 *   Routed recipients ([batv] refuse_routed): the backend may deliver a
 *   recipient outside [batv] domains to a protected mailbox by rewriting
 *   it - Postfix turns user%example.com@[192.0.2.1] and
 *   example.com!user@[192.0.2.1] into user@example.com when the domain
 *   is local to it (an address literal of its own, a mydestination name).
 *   So a bounce to a recipient outside [batv] domains whose local part
 *   holds a routing operator ('%', '!', and '@' or ':' inside quotes), or
 *   whose domain is an address literal, is refused at RCPT in enforce
 *   mode (550 5.7.1, whatever refuse_at says: no callout has a reason to
 *   verify such an address) and marked in observe mode. Source routes
 *   ("@a,@b:user@d") never get here: smtp_addr drops them, and the rest
 *   is judged like any other address.
 * Outbound listener:
 *   CONNECT  clients outside [outbound] allow get 550 5.7.1.
 *   MAIL     a non-null, untagged sender in [batv] domains is rewritten to
 *            its prvs form with sign_key. The session runs this hook lazily
 *            at the first RCPT, with env->rcpt set to that recipient: if it
 *            matches sign_exempt, the sender is left untagged.
 *   RCPT     a later recipient of the other sign_exempt class than the
 *            first gets 452 4.5.3 (separate transaction), so tagged and
 *            untagged recipients never share one envelope.
 *
 * State: the keys, loaded by init() on every (re)load into the loop's
 * state (struct filter_loop: one copy per event loop, made on its thread);
 * a failed reload keeps the previous keys, one without keys_file withdraws
 * them. Every reader finds them through
 * the loop's filter state (batv_keys_current(env->filters)), the hooks
 * here as much as the bounce filter, which asks for batv_bounce_verdict()
 * with its own environment. Hooks are synchronous (an HMAC is cheap) and
 * keep no per-session state.
 * Secrets are never logged; addresses in logs, replies and headers go
 * through log_escape().
 */
#define _POSIX_C_SOURCE 200809L  /* strcasecmp, strncasecmp */

#include "filters/batv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "filters/batv_tag.h"
#include "proxy/config.h"
#include "proxy/log.h"

#define BATV_ESC_ADDR 300   /* an escaped address, for replies and logs */

/* What the checks conclude about one recipient of a bounce. */
enum rcpt_class {
	RCPT_UNPROTECTED,  /* domain not in [batv] domains */
	RCPT_EXEMPT,       /* postmaster@, abuse@, [batv] exempt */
	RCPT_PASS,         /* protected, VALID tag */
	RCPT_FAIL,         /* protected, not exempt, no VALID tag */
	RCPT_ROUTED,       /* unprotected, but the backend may route it to a
	                      protected mailbox (refuse_routed) */
};

/* fail_token - the short reason in "batv=fail(...)" notes. */
static const char *fail_token(enum batv_status st)
{
	switch (st) {
	case BATV_VALID: return "pass";
	case BATV_NO_TAG: return "no_tag";
	case BATV_MALFORMED: return "malformed";
	case BATV_UNKNOWN_KEY: return "unknown_key";
	case BATV_BAD_MAC: return "bad_mac";
	case BATV_EXPIRED: return "expired";
	}
	return "unknown";
}

static bool listener_is(const struct filter_env *env, const char *name)
{
	return env->listener != NULL && strcmp(env->listener, name) == 0;
}

/* addr_domain - the part after the last '@', or NULL. */
static const char *addr_domain(const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;
	return at != NULL && at[1] != '\0' ? at + 1 : NULL;
}

/*
 * local_part_routed - does the local part hold a routing operator the
 * backend may act on? '%' (Postfix allow_percent_hack), '!' (swap_bangpath);
 * '@' and ':' can only be there inside quotes, which Postfix opens
 * (resolve_dequoted) to find a further address or a source route.
 */
static bool local_part_routed(const char *addr)
{
	const char *at = strrchr(addr, '@');

	for (const char *p = addr; at != NULL && p < at; p++)
		if (*p == '%' || *p == '!' || *p == '@' || *p == ':')
			return true;
	return false;
}

/* has_tag - does the local part start with a prvs tag (any form)? */
static bool has_tag(const char *addr)
{
	return strncasecmp(addr, "prvs=", 5) == 0;
}

static bool domain_protected(const struct config *cfg, const char *addr)
{
	const char *d = addr_domain(addr);
	return d != NULL && words_contains_ci(&cfg->batv.domains, d);
}

/*
 * batv_glob_ci - match s against pattern, '*' = any run of bytes, ASCII case
 * ignored. Iterative with one backtrack point: linear in practice, never
 * exponential on hostile input.
 */
bool batv_glob_ci(const char *pat, const char *s)
{
	const char *star = NULL, *resume = NULL;

	while (*s != '\0') {
		if (*pat == '*') {
			star = pat++;
			resume = s;
		} else if (*pat != '\0' && strncasecmp(pat, s, 1) == 0) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

static bool words_glob_ci(const struct cfg_words *w, const char *s)
{
	for (size_t i = 0; i < w->n; i++)
		if (batv_glob_ci(w->v[i], s))
			return true;
	return false;
}

/* is_bounce - null sender, or a sender that matches bounce_senders. */
static bool is_bounce(const struct filter_env *env)
{
	if (env->null_sender || env->mail_from == NULL || env->mail_from[0] == '\0')
		return true;
	return words_glob_ci(&env->cfg->batv.bounce_senders, env->mail_from);
}

/* is_exempt - postmaster@/abuse@ anywhere, or a [batv] exempt entry. */
static bool is_exempt(const struct config *cfg, const char *addr)
{
	/* RFC 5321 4.5.1 (postmaster) and RFC 2142 (abuse) must reach a human */
	if (strncasecmp(addr, "postmaster@", 11) == 0 || strncasecmp(addr, "abuse@", 6) == 0)
		return true;
	return words_glob_ci(&cfg->batv.exempt, addr);
}

/*
 * sign_exempt - is rcpt in [batv] sign_exempt? An entry with '@' is an
 * address (globs allowed), one without is a domain; ".example.org" also
 * matches its subdomains.
 */
static bool sign_exempt(const struct config *cfg, const char *rcpt)
{
	const char *d = addr_domain(rcpt);

	for (size_t i = 0; i < cfg->batv.sign_exempt.n; i++) {
		const char *e = cfg->batv.sign_exempt.v[i];
		if (strchr(e, '@') != NULL) {
			if (batv_glob_ci(e, rcpt))
				return true;
		} else if (d != NULL) {
			size_t el = strlen(e), dl = strlen(d);
			if (strcasecmp(e, d) == 0)
				return true;
			if (e[0] == '.' && dl > el && strcasecmp(d + dl - el, e) == 0)
				return true;
		}
	}
	return false;
}

static char *esc(const char *s, char *out, size_t cap)
{
	return log_escape(s ? s : "", s ? strlen(s) : 0, out, cap);
}

/*
 * routed_elsewhere - a recipient outside [batv] domains that the backend
 * may still deliver to a protected mailbox: a routing operator in the
 * local part, or an address literal as the domain (the backend's own
 * address is local to it: user@[192.0.2.1] is its local user). postmaster@
 * and abuse@ of a literal are their own exemption, as everywhere.
 */
static bool routed_elsewhere(const struct config *cfg, const char *rcpt)
{
	const char *d = addr_domain(rcpt);

	if (!cfg->batv.refuse_routed)
		return false;
	if (local_part_routed(rcpt))
		return true;
	return d != NULL && d[0] == '[' && !is_exempt(cfg, rcpt);
}

/* env_keys - the loop's keys; without any, a table of none (every tag is
 * then of an unknown key). */
static const struct batv_keys *env_keys(const struct filter_env *env)
{
	static const struct batv_keys none;
	const struct batv_keys *k = batv_keys_current(env->filters);

	return k != NULL ? k : &none;
}

/* classify - verify one bounce recipient; stripped gets the bare address. */
static enum rcpt_class classify(const struct filter_env *env, const char *rcpt,
    enum batv_status *st, char *stripped, size_t cap)
{
	const struct config *cfg = env->cfg;

	*st = batv_check(env_keys(env), rcpt, batv_today(),
	    (unsigned)cfg->batv.validity_days, stripped, cap);
	if (!domain_protected(cfg, rcpt))
		return routed_elsewhere(cfg, rcpt) ? RCPT_ROUTED : RCPT_UNPROTECTED;
	if (*st == BATV_VALID)
		return RCPT_PASS;
	if (is_exempt(cfg, stripped))
		return RCPT_EXEMPT;
	return RCPT_FAIL;
}

/* refusal_text - "<addr>: address did not send this mail (reason)". */
static void refusal_text(struct filter_verdict *v, const char *rcpt,
    enum batv_status st)
{
	char e[BATV_ESC_ADDR];
	snprintf(v->text, sizeof v->text, "<%s>: address did not send this mail (%s)",
	    esc(rcpt, e, sizeof e), batv_status_text(st));
}

#define ROUTED_REASON "routed recipient address"

/*
 * inbound_routed - a bounce to a recipient the backend may route to a
 * protected mailbox (routed_elsewhere): enforce refuses it here, at RCPT,
 * whatever refuse_at says; observe lets it on to the mark at DATA.
 * 550 5.7.1 rather than 553 5.1.3: the address is valid syntax, its use
 * for a bounce is what policy refuses (RFC 3463 X.7.1).
 */
static enum filter_result inbound_routed(const struct filter_env *env,
    struct filter_verdict *v)
{
	char e[BATV_ESC_ADDR];

	esc(env->rcpt, e, sizeof e);
	if (env->cfg->batv.mode != BATV_MODE_ENFORCE) {
		log_info("%s: batv: observe: bounce to %s would be refused: %s", env->sid, e,
		    ROUTED_REASON);
		return FILTER_CONTINUE;
	}
	v->code = 550;
	snprintf(v->esc, sizeof v->esc, "5.7.1");
	snprintf(v->text, sizeof v->text,
	    "<%s>: bounces to routed addresses (%%, !, quoted @ or :, address literals) "
	    "are not accepted", e);
	snprintf(v->note, sizeof v->note, "batv=fail(routed)");
	log_info("%s: batv: refused bounce to %s at RCPT: %s", env->sid, e, ROUTED_REASON);
	return FILTER_REJECT;
}

/* inbound_rcpt - strip tags; refuse a failing bounce when refuse_at = rcpt. */
static enum filter_result inbound_rcpt(const struct filter_env *env,
    struct filter_verdict *v)
{
	const struct config *cfg = env->cfg;
	char stripped[FILTER_ADDR_MAX], e[BATV_ESC_ADDR];
	enum batv_status st;
	enum rcpt_class c;

	if (env->rcpt == NULL)
		return FILTER_CONTINUE;
	if (!domain_protected(cfg, env->rcpt))
		return is_bounce(env) && routed_elsewhere(cfg, env->rcpt) ?
		    inbound_routed(env, v) : FILTER_CONTINUE;
	c = classify(env, env->rcpt, &st, stripped, sizeof stripped);
	/* a well-formed tag is stripped, whatever its status: the backend
	 * knows local@domain, not the tagged form */
	if (st != BATV_NO_TAG && st != BATV_MALFORMED)
		snprintf(v->rewrite, sizeof v->rewrite, "%s", stripped);
	if (!is_bounce(env)) {
		/* issue 5: replies to the envelope are accepted even when the
		 * tag has expired */
		if (v->rewrite[0] != '\0')
			log_info("%s: batv: tagged recipient %s of a non-bounce stripped (%s)",
			    env->sid, esc(env->rcpt, e, sizeof e), batv_status_text(st));
		return FILTER_CONTINUE;
	}
	switch (c) {
	case RCPT_PASS:
		snprintf(v->note, sizeof v->note, "batv=pass");
		log_info("%s: batv: bounce to %s: valid tag", env->sid, esc(env->rcpt, e, sizeof e));
		return FILTER_CONTINUE;
	case RCPT_EXEMPT:
		snprintf(v->note, sizeof v->note, "batv=exempt");
		return FILTER_CONTINUE;
	case RCPT_UNPROTECTED:
	case RCPT_ROUTED:      /* not for a protected domain: handled above */
		return FILTER_CONTINUE;
	case RCPT_FAIL:
		break;
	}
	if (cfg->batv.mode != BATV_MODE_ENFORCE || cfg->batv.refuse_at != BATV_REFUSE_RCPT) {
		/* the verdict comes at DATA: callouts that stop here succeed */
		log_info("%s: batv: bounce to %s: %s (decided at %s)", env->sid,
		    esc(env->rcpt, e, sizeof e), batv_status_text(st),
		    cfg->batv.mode == BATV_MODE_ENFORCE && cfg->batv.refuse_at == BATV_REFUSE_CONTENT ?
		    "end of data" : "DATA");
		return FILTER_CONTINUE;
	}
	v->rewrite[0] = '\0';
	v->code = 550;
	snprintf(v->esc, sizeof v->esc, "5.7.1");
	refusal_text(v, env->rcpt, st);
	snprintf(v->note, sizeof v->note, "batv=fail(%s)", fail_token(st));
	log_debug("%s: batv: refused bounce to %s at RCPT: %s", env->sid,
	    esc(env->rcpt, e, sizeof e), batv_status_text(st));
	return FILTER_REJECT;
}

/* add_header - append one X-Backstop-BATV field if it fits whole. */
static void add_header(struct filter_verdict *v, const char *reason, const char *rcpt)
{
	char e[BATV_ESC_ADDR], field[FILTER_TEXT_MAX];
	size_t used = strlen(v->headers);
	int n = snprintf(field, sizeof field, "X-Backstop-BATV: fail (%s) rcpt=%s\r\n",
	    reason, esc(rcpt, e, sizeof e));

	if (n > 0 && (size_t)n < sizeof field && used + (size_t)n < sizeof v->headers)
		memcpy(v->headers + used, field, (size_t)n + 1);
}

/* inbound_data - the verdict on a bounce, before any of its content (or
 * at end of data for refuse_at = content: stage says which). */
static enum filter_result inbound_data(const struct filter_env *env,
    struct filter_verdict *v, const char *stage)
{
	const struct config *cfg = env->cfg;
	const char *const *rcpts = env->rcpts_orig ? env->rcpts_orig : env->rcpts;
	char stripped[FILTER_ADDR_MAX], e[BATV_ESC_ADDR], reason[96];
	const char *bad = NULL, *bad_reason = "";
	enum batv_status bad_st = BATV_VALID;
	bool bad_routed = false;
	const char *other = NULL;   /* first unprotected or exempt recipient */
	size_t npass = 0, nexempt = 0, nfail = 0;

	if (!is_bounce(env) || rcpts == NULL || env->nrcpts == 0)
		return FILTER_CONTINUE;
	for (size_t i = 0; i < env->nrcpts; i++) {
		enum batv_status st;
		enum rcpt_class c = classify(env, rcpts[i], &st, stripped, sizeof stripped);
		if (c == RCPT_PASS) {
			npass++;
			continue;
		}
		nexempt += c == RCPT_EXEMPT;
		if (c == RCPT_FAIL || c == RCPT_ROUTED) {
			const char *why = c == RCPT_ROUTED ? ROUTED_REASON : batv_status_text(st);
			if (nfail++ == 0) {
				bad = rcpts[i];
				bad_st = st;
				bad_reason = why;
				bad_routed = c == RCPT_ROUTED;
			}
			if (cfg->batv.mode == BATV_MODE_OBSERVE)
				add_header(v, why, rcpts[i]);
		} else if (other == NULL) {
			other = rcpts[i];
		}
	}
	if (bad == NULL)
		bad = other;   /* no failure: the multi-recipient rule names this one */
	if (nfail == 0 && (env->nrcpts == 1 || npass == env->nrcpts)) {
		if (npass > 0)
			snprintf(v->note, sizeof v->note, "batv=pass");
		else if (nexempt > 0)
			snprintf(v->note, sizeof v->note, "batv=exempt");
		return FILTER_CONTINUE;
	}
	if (nfail == 0) {
		/* a real bounce has exactly one recipient: with several, every
		 * one must verify, or a stolen tag would carry a spray */
		snprintf(reason, sizeof reason, "bounce to %zu recipients, not all with a valid BATV tag",
		    env->nrcpts);
		snprintf(v->note, sizeof v->note, "batv=fail(multi_rcpt)");
		if (cfg->batv.mode == BATV_MODE_OBSERVE)
			add_header(v, reason, bad);
	} else {
		snprintf(reason, sizeof reason, "%s", bad_reason);
		snprintf(v->note, sizeof v->note, "batv=fail(%s)",
		    bad_routed ? "routed" : fail_token(bad_st));
	}
	if (cfg->batv.mode == BATV_MODE_OBSERVE) {
		log_info("%s: batv: observe: bounce to %s would be refused: %s", env->sid,
		    esc(bad, e, sizeof e), reason);
		return FILTER_CONTINUE;
	}
	v->code = 550;
	snprintf(v->esc, sizeof v->esc, "5.7.1");
	snprintf(v->text, sizeof v->text, "<%s>: address did not send this mail (%s)",
	    esc(bad, e, sizeof e), reason);
	log_debug("%s: batv: refused bounce to %s at %s: %s", env->sid,
	    esc(bad, e, sizeof e), stage, reason);
	return FILTER_REJECT;
}

enum filter_result batv_bounce_verdict(const struct filter_env *env,
    struct filter_verdict *v, const char *stage)
{
	if (listener_is(env, "outbound") || env->cfg->batv.mode == BATV_MODE_OFF)
		return FILTER_CONTINUE;
	return inbound_data(env, v, stage);
}

const struct batv_keys *batv_keys_current(const struct filter_loop *filters)
{
	return filter_loop_state(filters, &filter_batv);
}

/* outbound_connect - only the internal MTAs may send through us. */
static enum filter_result outbound_connect(const struct filter_env *env,
    struct filter_verdict *v)
{
	char e[BATV_ESC_ADDR];

	if (env->client_sa != NULL && cidrs_match(&env->cfg->outbound.allow, env->client_sa))
		return FILTER_CONTINUE;
	v->code = 550;
	snprintf(v->esc, sizeof v->esc, "5.7.1");
	snprintf(v->text, sizeof v->text, "relay access denied: %s is not an internal MTA",
	    esc(env->client_ip, e, sizeof e));
	log_info("%s: batv: outbound: refused client %s (not in [outbound] allow)",
	    env->sid, e);
	return FILTER_REJECT;
}

/* sender_signable - a non-null sender in a protected domain. */
static bool sender_signable(const struct filter_env *env)
{
	return !env->null_sender && env->mail_from != NULL && env->mail_from[0] != '\0' &&
	    domain_protected(env->cfg, env->mail_from);
}

/* outbound_mail - tag the sender, unless the first recipient is exempt. */
static enum filter_result outbound_mail(const struct filter_env *env,
    struct filter_verdict *v)
{
	const struct config *cfg = env->cfg;
	const struct batv_keys *keys = batv_keys_current(env->filters);
	unsigned key = (unsigned)cfg->batv.sign_key;
	char e[BATV_ESC_ADDR], er[BATV_ESC_ADDR];

	/* issue 5: the null sender is never tagged, a tag never doubled */
	if (!sender_signable(env) || has_tag(env->mail_from))
		return FILTER_CONTINUE;
	if (env->rcpt != NULL && sign_exempt(cfg, env->rcpt)) {
		snprintf(v->note, sizeof v->note, "batv=exempt");
		log_info("%s: batv: sender %s left untagged: recipient %s is sign_exempt",
		    env->sid, esc(env->mail_from, e, sizeof e), esc(env->rcpt, er, sizeof er));
		return FILTER_CONTINUE;
	}
	if (keys == NULL || key >= BATV_NKEYS || !keys->present[key]) {
		/* relaying untagged would get the bounces refused later */
		v->code = 451;
		snprintf(v->esc, sizeof v->esc, "4.3.5");
		snprintf(v->text, sizeof v->text, "BATV signing key not available");
		log_error("%s: batv: sign_key %u is not loaded; refusing to relay untagged",
		    env->sid, key);
		return FILTER_TEMPFAIL;
	}
	if (batv_sign(keys, key, env->mail_from, batv_today(),
	    (unsigned)cfg->batv.validity_days, v->rewrite, sizeof v->rewrite) < 0) {
		v->rewrite[0] = '\0';
		log_warn("%s: batv: sender %s too long to tag; relayed untagged",
		    env->sid, esc(env->mail_from, e, sizeof e));
		return FILTER_CONTINUE;
	}
	snprintf(v->note, sizeof v->note, "batv=signed");
	log_info("%s: batv: sender %s tagged with key %u", env->sid,
	    esc(env->mail_from, e, sizeof e), key);
	return FILTER_CONTINUE;
}

/*
 * outbound_rcpt - keep one signing class per transaction. The decision was
 * taken on the first recipient (outbound_mail); a recipient of the other
 * class waits for its own transaction. Limit: when the next hop refused the
 * first recipient, nrcpts is still 0 and the second is not compared.
 */
static enum filter_result outbound_rcpt(const struct filter_env *env,
    struct filter_verdict *v)
{
	const char *const *rcpts = env->rcpts_orig ? env->rcpts_orig : env->rcpts;
	char e[BATV_ESC_ADDR];

	if (!sender_signable(env) || env->rcpt == NULL || rcpts == NULL || env->nrcpts == 0)
		return FILTER_CONTINUE;
	if (sign_exempt(env->cfg, rcpts[0]) == sign_exempt(env->cfg, env->rcpt))
		return FILTER_CONTINUE;
	v->code = 452;
	snprintf(v->esc, sizeof v->esc, "4.5.3");
	snprintf(v->text, sizeof v->text, "send mail to <%s> in a separate transaction",
	    esc(env->rcpt, e, sizeof e));
	log_info("%s: batv: recipient %s deferred: other sign_exempt class than the first",
	    env->sid, e);
	return FILTER_TEMPFAIL;
}

static enum filter_result batv_connect(const struct filter_env *env,
    struct filter_verdict *v, const struct filter_async *async)
{
	(void)async;
	return listener_is(env, "outbound") ? outbound_connect(env, v) : FILTER_CONTINUE;
}

static enum filter_result batv_mail(const struct filter_env *env,
    struct filter_verdict *v, const struct filter_async *async)
{
	(void)async;
	return listener_is(env, "outbound") ? outbound_mail(env, v) : FILTER_CONTINUE;
}

static enum filter_result batv_rcpt(const struct filter_env *env,
    struct filter_verdict *v, const struct filter_async *async)
{
	(void)async;
	if (listener_is(env, "outbound"))
		return outbound_rcpt(env, v);
	if (env->cfg->batv.mode == BATV_MODE_OFF)
		return FILTER_CONTINUE;
	return inbound_rcpt(env, v);
}

static enum filter_result batv_data(const struct filter_env *env,
    struct filter_verdict *v, const struct filter_async *async)
{
	(void)async;
	if (listener_is(env, "outbound") || env->cfg->batv.mode == BATV_MODE_OFF)
		return FILTER_CONTINUE;
	if (env->cfg->batv.mode == BATV_MODE_ENFORCE && env->cfg->batv.refuse_at == BATV_REFUSE_CONTENT)
		return FILTER_CONTINUE;   /* filters/bounce.c decides at end of data */
	return inbound_data(env, v, "DATA");
}

static bool batv_enabled(const struct config *cfg)
{
	return cfg->batv.mode != BATV_MODE_OFF || cfg->outbound.listen.n > 0;
}

static void batv_shutdown(void **loop_state);

/* batv_init - (re)load the keys into the loop's state (a struct
 * batv_keys, allocated at the first load); on failure the old ones stay
 * in force. A reload without keys_file withdraws them: an operator who
 * unsets it (a leaked secret) is told by the bounce check that tags are
 * no evidence any more, and they must not be. Every reader asks for the
 * keys within one callback, so none holds them across the reload. */
/* keys_read - the keys init would take under cfg, in *k (the caller
 * cleanses it); 0 with *have false when cfg names no file */
static int keys_read(const struct config *cfg, struct batv_keys *k, bool *have, char *err, size_t errlen)
{
	unsigned key = (unsigned)cfg->batv.sign_key;

	*have = false;
	if (cfg->batv.keys_file == NULL || cfg->batv.keys_file[0] == '\0')
		return 0;   /* config_load() insists on it where BATV or [outbound] runs */
	if (batv_keys_load(cfg->batv.keys_file, k, err, errlen) < 0)
		return -1;
	if (cfg->outbound.listen.n > 0 && (key >= BATV_NKEYS || !k->present[key])) {
		snprintf(err, errlen, "%s: sign_key %u is not in the file", cfg->batv.keys_file, key);
		OPENSSL_cleanse(k, sizeof *k);
		return -1;
	}
	*have = true;
	return 0;
}

static int batv_check_keys(const struct config *cfg, char *err, size_t errlen)
{
	struct batv_keys k;
	bool have;
	int rc = keys_read(cfg, &k, &have, err, errlen);

	OPENSSL_cleanse(&k, sizeof k);
	return rc;
}

static int batv_init(void **loop_state, struct uv_loop_s *loop, const struct config *cfg, char *err,
    size_t errlen)
{
	(void)loop;
	struct batv_keys k, *held = *loop_state;
	bool have;

	if (keys_read(cfg, &k, &have, err, errlen) < 0)
		return -1;
	if (!have) {
		/* no keys_file: the keys are withdrawn (a leaked secret) */
		batv_shutdown(loop_state);
		return 0;
	}
	if (held == NULL && (held = malloc(sizeof *held)) == NULL) {
		snprintf(err, errlen, "out of memory for the keys of %s", cfg->batv.keys_file);
		OPENSSL_cleanse(&k, sizeof k);
		return -1;
	}
	*held = k;
	*loop_state = held;
	OPENSSL_cleanse(&k, sizeof k);
	return 0;
}

static void batv_shutdown(void **loop_state)
{
	struct batv_keys *held = *loop_state;

	if (held == NULL)
		return;
	OPENSSL_cleanse(held, sizeof *held);
	free(held);
	*loop_state = NULL;
}

const struct filter_ops filter_batv = {
	.name = "batv",
	.enabled = batv_enabled,
	.init = batv_init,
	.check = batv_check_keys,
	.shutdown = batv_shutdown,
	.hook = {
		[FILTER_CONNECT] = batv_connect,
		[FILTER_MAIL] = batv_mail,
		[FILTER_RCPT] = batv_rcpt,
		[FILTER_DATA] = batv_data,
	},
};

/* cli_addr - ADDRESS or <ADDRESS> as typed, into out. */
static int cli_addr(const char *in, char *out, size_t cap)
{
	size_t n = strlen(in);

	if (n >= 2 && in[0] == '<' && in[n - 1] == '>') {
		in++;
		n -= 2;
	}
	if (n == 0 || n >= cap)
		return -1;
	memcpy(out, in, n);
	out[n] = '\0';
	return 0;
}

int batv_cli(int argc, char **argv, const struct config *cfg)
{
	struct batv_keys k;
	char err[512], addr[FILTER_ADDR_MAX], out[FILTER_ADDR_MAX + 32];
	unsigned validity = (unsigned)cfg->batv.validity_days;
	unsigned key = (unsigned)cfg->batv.sign_key;
	bool sign;
	int rc;

	if (argc > 0 && strcmp(argv[0], "batv") == 0) {
		argc--;
		argv++;
	}
	if (argc != 2 || (strcmp(argv[0], "sign") != 0 && strcmp(argv[0], "verify") != 0)) {
		fprintf(stderr, "usage: backstop batv sign|verify ADDRESS [-c CONFIG]\n");
		return 2;
	}
	sign = strcmp(argv[0], "sign") == 0;
	if (cli_addr(argv[1], addr, sizeof addr) < 0) {
		fprintf(stderr, "backstop: batv: not an address: %s\n", argv[1]);
		return 2;
	}
	if (cfg->batv.keys_file == NULL || cfg->batv.keys_file[0] == '\0') {
		fprintf(stderr, "backstop: batv: [batv] keys_file is not set\n");
		return 2;
	}
	if (batv_keys_load(cfg->batv.keys_file, &k, err, sizeof err) < 0) {
		fprintf(stderr, "backstop: %s\n", err);
		return 2;
	}
	if (sign) {
		if (has_tag(addr)) {
			fprintf(stderr, "backstop: batv: %s already carries a prvs tag\n", addr);
			rc = 1;
		} else if (!k.present[key]) {
			fprintf(stderr, "backstop: batv: sign_key %u is not in %s\n", key,
			    cfg->batv.keys_file);
			rc = 2;
		} else if (batv_sign(&k, key, addr, batv_today(), validity, out, sizeof out) < 0
		    || strlen(out) >= FILTER_ADDR_MAX) {
			fprintf(stderr, "backstop: batv: cannot tag %s (not local@domain, or too long)\n",
			    addr);
			rc = 1;
		} else {
			printf("%s\n", out);
			rc = 0;
		}
	} else {
		enum batv_status st = batv_check(&k, addr, batv_today(), validity, out, sizeof out);
		if (st == BATV_VALID)
			printf("valid %s\n", out);
		else
			printf("%s\n", batv_status_text(st));
		rc = st == BATV_VALID ? 0 : 1;
	}
	OPENSSL_cleanse(&k, sizeof k);
	return rc;
}

/*
 * dkim - DKIM verification (RFC 6376) with libopendkim, fed as the message
 * arrives, so the verdict is ready at end of data without re-reading.
 *
 * Flow per message (filter interface v2, filters/filter.h):
 *   header hook  - dkim_verify() on the first field, then dkim_header() per
 *                  whole field as received;
 *   FILTER_EOH   - dkim_eoh(). The library asks for each signature's key
 *                  through key_lookup(); a key in the loop's DNS cache is
 *                  used at once (dns_cache_peek), a key not yet known
 *                  starts a query on the shared resolver and answers TRYAGAIN, so
 *                  dkim_eoh() returns CBTRYAGAIN and the hook goes
 *                  asynchronous; when every query has answered, dkim_eoh()
 *                  runs again (re-entry is supported at EOH only; see
 *                  ../shared/notes/dependencies.md, libopendkim 2.3). The
 *                  prescreen callback starts every lookup at once and
 *                  ignores signatures beyond [dkim] max_signatures;
 *   body hook    - the body hashes (filters/dkim_bodyhash.c), one per
 *                  canonicalisation and digest the signatures use, compared
 *                  with each bh= at end of data; libopendkim is given no
 *                  body (its byte-wise canonicalisation cost ten times the
 *                  hash). A message with an l= signature is fed to
 *                  dkim_body() instead and libopendkim checks every bh=;
 *   FILTER_EOD   - dkim_eom(), one result per signature into the message's
 *                  authentication record (Authentication-Results is written
 *                  by proxy/), and in enforce mode require_signed_by.
 *   txn_end      - dkim_free(); queries still in flight are orphaned.
 *
 * Holding: the results go in a field on top of the message, so the filter
 * holds the message (hold hook) whenever it is on.
 *
 * Results (RFC 8601 2.7.1): pass when the header signature and the body
 * hash verify; permerror for a missing or revoked key and for an RSA key
 * under 1024 bits (RFC 6376 6.1.2 and 3.6.1 PERMFAIL; RFC 8301 3.2), and
 * for signatures that do not parse; temperror when the key lookup failed
 * or timed out; fail when the signature or body hash does not verify;
 * neutral otherwise. libopendkim sets PROCESSED even without a key, so the
 * key errors are mapped before the fail test (the milter's mapping would
 * say "fail" for a missing key).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <opendkim/dkim.h>

#include "filters/authres.h"
#include "filters/dkim_bodyhash.h"
#include "filters/dkim_pubkey.h"
#include "filters/filter.h"
#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/log.h"

#define DKIM_QNAME_MAX 320
#define DKIM_KEY_MAX 1024   /* the library's key buffer is BUFRSZ + 1 */
#define DKIM_MIN_RSA_BITS 1024   /* RFC 8301 3.2 */

enum key_state { KEY_PENDING, KEY_FOUND, KEY_NOTFOUND, KEY_TEMPFAIL };

struct dkim_key {
	struct dkim_key *next;
	char qname[DKIM_QNAME_MAX];
	enum key_state state;
	char *txt;
};

struct dkim_msg;

/* A query in flight. It outlives the message when the transaction ends
 * first: then msg is NULL and the answer is dropped. */
struct dkim_query {
	struct dkim_query *next;   /* the message's list of queries */
	struct dkim_msg *msg;
	struct dkim_key *key;
};

/* What the prescreen saw of a signature: enough to report it when the
 * library gives up on the message (a failed key lookup). */
struct dkim_seen {
	char domain[254];
	char selector[64];
	char b8[9];
};

/* A body hash the message's signatures need: one per canonicalisation
 * and digest (at most 2 x 2). */
#define DKIM_BODYHASH_MAX 4

struct dkim_bh_slot {
	enum dkim_body_canon canon;
	bool sha1;
	struct dkim_bodyhash h;
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned digest_len;      /* 0 until end of data (or on an error) */
};

/* The loop's digests, fetched once (an EVP_sha256() at every
 * EVP_DigestInit_ex is an implicit fetch under a lock in OpenSSL 3). */
struct dkim_loop {
	EVP_MD *sha1, *sha256;
};

struct dkim_msg {
	DKIM *d;
	const struct dkim_loop *dl;
	struct dkim_bh_slot *bh;   /* NULL: libopendkim hashes the body */
	unsigned nbh;
	struct dns *dns;           /* the loop's resolver, for key lookups */
	struct dkim_seen *seen;
	unsigned nseen;
	const struct config *cfg;
	char sid[40];
	struct dkim_key *keys;
	struct dkim_query *queries;
	unsigned pending;
	unsigned nkeys;
	bool waiting;              /* FILTER_EOH is waiting for keys */
	struct filter_async token;
	bool feeding;              /* headers accepted: feed the body */
	bool nosig;                /* no signature: dkim=none */
	unsigned sig_fields;       /* DKIM-Signature fields seen */
	bool keyfail;              /* a key lookup failed: the signatures
	                              cannot be verified now (temperror) */
	bool broken;               /* the library refused the message */
	char broken_why[64];
	uint64_t deadline;         /* dns_now_ms(): the key lookups' end */
};

/* The library handle: process-wide, options set before first use. */
static DKIM_LIB *dkim_lib;

static bool dkim_enabled(const struct config *cfg)
{
	return cfg->dkim.mode != DKIM_MODE_OFF;
}

static bool dkim_hold(const struct config *cfg)
{
	return dkim_enabled(cfg);
}

static struct dkim_key *key_find(struct dkim_msg *m, const char *qname)
{
	for (struct dkim_key *k = m->keys; k; k = k->next)
		if (strcasecmp(k->qname, qname) == 0)
			return k;
	return NULL;
}

static void eoh_resume(struct dkim_msg *m);

/* key_set - the key's state from its DNS answer. */
static void key_set(struct dkim_msg *m, struct dkim_key *k, const struct dns_answer *a)
{
	if (a->status == DNS_OK && a->n == 1 && a->rr[0].text != NULL &&
	    a->rr[0].text_len < DKIM_KEY_MAX) {
		k->txt = strdup(a->rr[0].text);
		k->state = k->txt ? KEY_FOUND : KEY_TEMPFAIL;
	} else if (a->status == DNS_OK && a->n > 1) {
		k->state = KEY_TEMPFAIL;   /* RFC 6376 3.6.2.2: more than one key */
	} else if (a->status == DNS_OK || a->status == DNS_NXDOMAIN || a->status == DNS_NODATA) {
		k->state = KEY_NOTFOUND;   /* incl. a key record over 1 KB */
	} else {
		k->state = KEY_TEMPFAIL;
	}
	log_debug("%s: dkim: key %s: %s", m->sid, k->qname,
	    k->state == KEY_FOUND ? "found" : k->state == KEY_NOTFOUND ? "not found" :
	    dns_status_name(a->status));
}

static void key_answered(void *arg, const struct dns_answer *a)
{
	struct dkim_query *q = arg, **pp;
	struct dkim_msg *m = q->msg;
	struct dkim_key *k = q->key;

	if (m == NULL) {          /* the transaction is over */
		free(q);
		return;
	}
	for (pp = &m->queries; *pp && *pp != q; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = q->next;
	free(q);
	key_set(m, k, a);
	if (m->pending > 0)
		m->pending--;
	if (m->pending == 0 && m->waiting)
		eoh_resume(m);
}

/* key_start - ask the resolver for qname once per message; a key in the
 * loop's DNS cache is taken at once (dkim_eoh() then needs no second
 * round), anything else is asked for asynchronously. */
static struct dkim_key *key_start(struct dkim_msg *m, const char *qname)
{
	struct dkim_key *k = key_find(m, qname);
	struct dkim_query *q;
	struct dns_answer kept;

	if (k != NULL)
		return k;
	if (m->nkeys >= 2 * m->cfg->dkim.max_signatures + 2 || strlen(qname) >= DKIM_QNAME_MAX)
		return NULL;
	if ((k = calloc(1, sizeof *k)) == NULL || (q = calloc(1, sizeof *q)) == NULL) {
		free(k);
		return NULL;
	}
	snprintf(k->qname, sizeof k->qname, "%s", qname);
	k->state = KEY_PENDING;
	k->next = m->keys;
	m->keys = k;
	m->nkeys++;
	if (dns_cache_peek(m->dns, DNS_T_TXT, qname, &kept)) {
		key_set(m, k, &kept);
		dns_answer_free(&kept);
		free(q);
		return k;
	}
	q->msg = m;
	q->key = k;
	if (dns_query_async(m->dns, DNS_T_TXT, qname, m->deadline, key_answered, q) != 0) {
		k->state = KEY_TEMPFAIL;
		free(q);
		return k;
	}
	q->next = m->queries;
	m->queries = q;
	m->pending++;
	return k;
}

static bool sig_qname(DKIM_SIGINFO *sig, char *out, size_t cap)
{
	const char *sel = (const char *)dkim_sig_getselector(sig);
	const char *dom = (const char *)dkim_sig_getdomain(sig);
	int n;

	if (sel == NULL || dom == NULL)
		return false;
	n = snprintf(out, cap, "%s._domainkey.%s", sel, dom);
	return n > 0 && (size_t)n < cap;
}

static void sig_b8(DKIM_SIGINFO *sig, char *out);

/* prescreen - every key lookup at once; signatures over the limit are
 * ignored (each costs a query and an RSA verification). */
static DKIM_CBSTAT prescreen(DKIM *d, DKIM_SIGINFO **sigs, int nsigs)
{
	struct dkim_msg *m = dkim_get_user_context(d);
	char qname[DKIM_QNAME_MAX];

	for (int i = 0; i < nsigs; i++) {
		if (m == NULL || (unsigned long)i >= m->cfg->dkim.max_signatures) {
			dkim_sig_ignore(sigs[i]);
			continue;
		}
		if (sig_qname(sigs[i], qname, sizeof qname))
			key_start(m, qname);
		if (m->seen == NULL)
			m->seen = calloc(m->cfg->dkim.max_signatures, sizeof *m->seen);
		if (m->seen != NULL) {
			struct dkim_seen *e = &m->seen[m->nseen++];
			const char *dom = (const char *)dkim_sig_getdomain(sigs[i]);
			const char *sel = (const char *)dkim_sig_getselector(sigs[i]);
			snprintf(e->domain, sizeof e->domain, "%s", dom ? dom : "");
			snprintf(e->selector, sizeof e->selector, "%s", sel ? sel : "");
			sig_b8(sigs[i], e->b8);
		}
	}
	if (m != NULL && (unsigned long)nsigs > m->cfg->dkim.max_signatures)
		log_info("%s: dkim: %d signatures, %lu checked ([dkim] max_signatures)", m->sid,
		    nsigs, m->cfg->dkim.max_signatures);
	return DKIM_CBSTAT_CONTINUE;
}

static DKIM_CBSTAT key_lookup(DKIM *d, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
	struct dkim_msg *m = dkim_get_user_context(d);
	char qname[DKIM_QNAME_MAX];
	struct dkim_key *k;

	if (m == NULL)
		return DKIM_CBSTAT_ERROR;
	/* a selector and domain that make no DNS name (a label over 63 bytes,
	 * a name over 255), or keys beyond the message's limit: no key for
	 * this signature (permerror), never a temporary error for all */
	if (!sig_qname(sig, qname, sizeof qname) || strlen(qname) > 255)
		return DKIM_CBSTAT_NOTFOUND;
	if ((k = key_start(m, qname)) == NULL)
		return DKIM_CBSTAT_NOTFOUND;
	switch (k->state) {
	case KEY_PENDING:
		return DKIM_CBSTAT_TRYAGAIN;
	case KEY_NOTFOUND:
		return DKIM_CBSTAT_NOTFOUND;
	case KEY_TEMPFAIL:
		return DKIM_CBSTAT_ERROR;
	case KEY_FOUND:
		break;
	}
	if (strlen(k->txt) + 1 > buflen)
		return DKIM_CBSTAT_NOTFOUND;
	memcpy(buf, k->txt, strlen(k->txt) + 1);
	return DKIM_CBSTAT_CONTINUE;
}

static struct dkim_msg *msg_get(const struct filter_env *env)
{
	struct dkim_msg *m;
	char id[64];
	DKIM_STAT st;

	if (env->txn_state == NULL)
		return NULL;
	if (*env->txn_state != NULL)
		return *env->txn_state;
	if (dkim_lib == NULL || (m = calloc(1, sizeof *m)) == NULL)
		return NULL;
	m->cfg = env->cfg;
	m->dns = env->dns;
	m->dl = env->loop_state;
	snprintf(m->sid, sizeof m->sid, "%s", env->sid ? env->sid : "-");
	snprintf(id, sizeof id, "%s.%u", m->sid, env->txn_number);
	m->d = dkim_verify(dkim_lib, (const unsigned char *)id, NULL, &st);
	if (m->d == NULL) {
		m->broken = true;
		snprintf(m->broken_why, sizeof m->broken_why, "internal error %d", st);
	} else {
		dkim_set_user_context(m->d, m);
	}
	m->deadline = dns_now_ms() + env->cfg->dkim.timeout;
	*env->txn_state = m;
	return m;
}

static void msg_free(struct dkim_msg *m)
{
	struct dkim_key *k, *kn;

	for (struct dkim_query *q = m->queries; q; q = q->next)
		q->msg = NULL;   /* key_answered frees it */
	for (k = m->keys; k; k = kn) {
		kn = k->next;
		free(k->txt);
		free(k);
	}
	if (m->d)
		dkim_free(m->d);
	for (unsigned i = 0; i < m->nbh; i++)
		dkim_bodyhash_free(&m->bh[i].h);
	free(m->bh);
	free(m->seen);
	free(m);
}

static bool dkim_header_hook(const struct filter_env *env, const struct filter_header *h)
{
	struct dkim_msg *m = msg_get(env);

	if (m == NULL || m->broken || m->nosig)
		return true;
	if (h->name_len == 14 && strncasecmp(h->name, "DKIM-Signature", 14) == 0)
		m->sig_fields++;
	if (h->cut) {
		/* over 64 KiB: a signature over it cannot verify here */
		log_info("%s: dkim: a header field over 64 KiB is not hashed", m->sid);
		return true;
	}
	if (dkim_header(m->d, (u_char *)h->field, h->field_len) != DKIM_STAT_OK) {
		m->broken = true;
		snprintf(m->broken_why, sizeof m->broken_why, "header not accepted");
	}
	return true;   /* DKIM never removes a field */
}

/* sig_canon - the body canonicalisation and digest of a signature. */
static bool sig_canon(DKIM_SIGINFO *sig, enum dkim_body_canon *canon, bool *sha1)
{
	dkim_canon_t hc, bc;
	dkim_alg_t alg;

	if (dkim_sig_getcanons(sig, &hc, &bc) != DKIM_STAT_OK ||
	    dkim_sig_getsignalg(sig, &alg) != DKIM_STAT_OK)
		return false;
	if (bc == DKIM_CANON_SIMPLE)
		*canon = DKIM_BODY_SIMPLE;
	else if (bc == DKIM_CANON_RELAXED)
		*canon = DKIM_BODY_RELAXED;
	else
		return false;
	if (alg == DKIM_SIGN_RSASHA1)
		*sha1 = true;
	else if (alg == DKIM_SIGN_RSASHA256 || alg == DKIM_SIGN_ED25519SHA256)
		*sha1 = false;
	else
		return false;
	return true;
}

/* sig_bh_slot - the body hash slot of a signature, or NULL. */
static struct dkim_bh_slot *sig_bh_slot(const struct dkim_msg *m, DKIM_SIGINFO *sig)
{
	enum dkim_body_canon canon;
	bool sha1;

	if (m->bh == NULL || !sig_canon(sig, &canon, &sha1))
		return NULL;
	for (unsigned i = 0; i < m->nbh; i++)
		if (m->bh[i].canon == canon && m->bh[i].sha1 == sha1)
			return &m->bh[i];
	return NULL;
}

/* bodyhash_setup - after dkim_eoh: the body hashes the signatures need.
 * Any signature with l= (a hash of part of the body), or anything
 * unexpected, leaves the body to libopendkim (m->bh NULL). */
static void bodyhash_setup(struct dkim_msg *m)
{
	DKIM_SIGINFO **sigs = NULL;
	int nsigs = 0;
	struct dkim_bh_slot *bh;

	if (m->bh != NULL || m->dl == NULL || m->dl->sha1 == NULL || m->dl->sha256 == NULL ||
	    dkim_getsiglist(m->d, &sigs, &nsigs) != DKIM_STAT_OK || nsigs <= 0 ||
	    (bh = calloc(DKIM_BODYHASH_MAX, sizeof *bh)) == NULL)
		return;
	for (int i = 0; i < nsigs; i++) {
		enum dkim_body_canon canon;
		bool sha1, have = false;

		if (dkim_sig_getflags(sigs[i]) & DKIM_SIGFLAG_IGNORE)
			continue;
		if (dkim_sig_gettagvalue(sigs[i], false, (u_char *)"l") != NULL ||
		    !sig_canon(sigs[i], &canon, &sha1))
			goto library;
		for (unsigned j = 0; j < m->nbh; j++)
			have |= bh[j].canon == canon && bh[j].sha1 == sha1;
		if (have)
			continue;
		if (m->nbh == DKIM_BODYHASH_MAX ||
		    !dkim_bodyhash_init(&bh[m->nbh].h, canon, sha1 ? m->dl->sha1 : m->dl->sha256))
			goto library;
		bh[m->nbh].canon = canon;
		bh[m->nbh].sha1 = sha1;
		m->nbh++;
	}
	m->bh = bh;
	return;
library:
	for (unsigned j = 0; j < m->nbh; j++)
		dkim_bodyhash_free(&bh[j].h);
	free(bh);
	m->nbh = 0;
}

/* eoh_step - run (or re-run) dkim_eoh; true when it is finished. */
static bool eoh_step(struct dkim_msg *m)
{
	DKIM_STAT st = dkim_eoh(m->d);

	log_debug("%s: dkim: end of header: %s (%u lookups pending)", m->sid,
	    st == DKIM_STAT_CBTRYAGAIN ? "waiting for keys" : dkim_getresultstr(st), m->pending);
	if (st == DKIM_STAT_CBTRYAGAIN && m->pending > 0)
		return false;
	if (st == DKIM_STAT_OK) {
		m->feeding = true;
		bodyhash_setup(m);
	} else if (st == DKIM_STAT_NOSIG || m->sig_fields == 0) {
		/* no signature (the library may also say SYNTAX first, e.g. for
		 * a message without From:): nothing to verify */
		m->nosig = true;
	} else if (st == DKIM_STAT_CBERROR) {
		/* key_lookup said ERROR: a lookup failed or timed out; the
		 * library gives up on the whole message, we report temperror */
		m->keyfail = true;
	} else {
		m->broken = true;
		snprintf(m->broken_why, sizeof m->broken_why, "%s", dkim_getresultstr(st));
	}
	return true;
}

static void eoh_resume(struct dkim_msg *m)
{
	struct filter_verdict v;

	if (!eoh_step(m))
		return;   /* the library asked for another key */
	m->waiting = false;
	memset(&v, 0, sizeof v);
	filter_async_done(&m->token, &v);
}

static enum filter_result dkim_eoh_hook(const struct filter_env *env,
    struct filter_verdict *v, const struct filter_async *async)
{
	struct dkim_msg *m = msg_get(env);

	(void)v;
	if (m == NULL || m->broken)
		return FILTER_CONTINUE;
	if (eoh_step(m))
		return FILTER_CONTINUE;
	m->waiting = true;
	m->token = *async;
	return FILTER_ASYNC;
}

static void dkim_body_hook(const struct filter_env *env, const char *data, size_t len)
{
	struct dkim_msg *m = msg_get(env);

	if (m == NULL || !m->feeding || m->broken)
		return;
	if (m->bh != NULL) {
		for (unsigned i = 0; i < m->nbh; i++)
			dkim_bodyhash_update(&m->bh[i].h, data, len);
		return;
	}
	if (dkim_body(m->d, (u_char *)data, len) != DKIM_STAT_OK) {
		m->broken = true;
		snprintf(m->broken_why, sizeof m->broken_why, "body not accepted");
	}
}

/* sig_bh_match - whether the signature's bh= is the body's hash: ours
 * when we hashed the body, else libopendkim's verdict. */
static bool sig_bh_match(const struct dkim_msg *m, DKIM_SIGINFO *sig)
{
	const struct dkim_bh_slot *slot;

	if (m->bh == NULL)
		return dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH;
	slot = sig_bh_slot(m, sig);
	return slot != NULL && slot->digest_len > 0 &&
	    dkim_bodyhash_matches((const char *)dkim_sig_gettagvalue(sig, false, (u_char *)"bh"),
	    slot->digest, slot->digest_len);
}

/* sig_rsa_key_ok - false for an RSA signature whose key is under
 * DKIM_MIN_RSA_BITS (or of unknown size). */
static bool sig_rsa_key_ok(DKIM_SIGINFO *sig)
{
	dkim_alg_t alg;
	unsigned int bits = 0;

	if (dkim_sig_getsignalg(sig, &alg) != DKIM_STAT_OK)
		return false;
	if (alg != DKIM_SIGN_RSASHA1 && alg != DKIM_SIGN_RSASHA256)
		return true;
	return dkim_sig_getkeysize(sig, &bits) == DKIM_STAT_OK && bits >= DKIM_MIN_RSA_BITS;
}

/* sig_result - the RFC 8601 word for one signature, and a reason. */
static const char *sig_result(const struct dkim_msg *m, DKIM_SIGINFO *sig, const char **reason)
{
	int err = dkim_sig_geterror(sig);
	unsigned flags = dkim_sig_getflags(sig);
	bool bh_match = sig_bh_match(m, sig);

	/* libopendkim, given no body, found its bh= wrong (BADSIG with the
	 * header signature PASSED): the body hash is ours to judge */
	if (m->bh != NULL && (flags & DKIM_SIGFLAG_PASSED) && err == DKIM_SIGERROR_BADSIG)
		err = DKIM_SIGERROR_OK;
	*reason = "";
	/* libopendkim applies DKIM_OPTS_MINKEYBITS only to a signature without
	 * any other error, and the body hash it could not match is one: so
	 * the key size is checked here too (RFC 8301 3.2) */
	if ((flags & DKIM_SIGFLAG_PASSED) && !sig_rsa_key_ok(sig)) {
		*reason = "key too small";
		return "permerror";
	}
	if ((flags & DKIM_SIGFLAG_PASSED) && bh_match &&
	    (err == DKIM_SIGERROR_OK || err == DKIM_SIGERROR_UNKNOWN))
		return "pass";
	switch (err) {
	case DKIM_SIGERROR_KEYFAIL:
	case DKIM_SIGERROR_DNSSYNTAX:
	case DKIM_SIGERROR_MULTIREPLY:
		*reason = "key lookup failed";
		return "temperror";
	case DKIM_SIGERROR_NOKEY:
		*reason = "no key";
		return "permerror";
	case DKIM_SIGERROR_KEYREVOKED:
		*reason = "key revoked";
		return "permerror";
	case DKIM_SIGERROR_KEYTOOSMALL:
		*reason = "key too small";
		return "permerror";
	default:
		break;
	}
	if ((flags & DKIM_SIGFLAG_PROCESSED) && (!(flags & DKIM_SIGFLAG_PASSED) || !bh_match)) {
		*reason = (flags & DKIM_SIGFLAG_PASSED) ? "body hash mismatch" : "signature mismatch";
		return "fail";
	}
	if (err != DKIM_SIGERROR_OK) {
		*reason = dkim_sig_geterrorstr(err);
		return "permerror";
	}
	return "neutral";
}

/* sig_b8 - the first 8 characters of b= (RFC 6008 header.b), folding
 * whitespace left out. */
static void sig_b8(DKIM_SIGINFO *sig, char *out)
{
	const u_char *b = dkim_sig_gettagvalue(sig, false, (u_char *)"b");
	size_t n = 0;

	for (; b != NULL && *b && n < 8; b++)
		if (isalnum(*b) || *b == '+' || *b == '/' || *b == '=')
			out[n++] = (char)*b;
	out[n] = '\0';
}

static void add_result(const struct filter_env *env, const char *result, const char *reason,
    const char *domain, const char *selector, const char *b8)
{
	struct auth_result a;

	memset(&a, 0, sizeof a);
	snprintf(a.method, sizeof a.method, "dkim");
	snprintf(a.result, sizeof a.result, "%s", result);
	for (size_t i = 0; i < sizeof a.reason - 1 && reason[i]; i++)
		a.reason[i] = (reason[i] == '(' || reason[i] == ')' || reason[i] == '\\' ||
		    (unsigned char)reason[i] < 0x20 || (unsigned char)reason[i] >= 0x7f) ? '?' : reason[i];
	if (domain != NULL) {
		for (size_t i = 0; domain[i] && i + 1 < sizeof a.domain; i++)
			a.domain[i] = (char)tolower((unsigned char)domain[i]);
		strcpy(a.props, "header.d=");
		if (!authres_value(a.props, sizeof a.props, domain, 253) ||
		    (selector && (strlen(a.props) + 11 < sizeof a.props) &&
		    (strcat(a.props, " header.s="), !authres_value(a.props, sizeof a.props, selector, 63))) ||
		    (b8 && b8[0] && strlen(a.props) + 20 < sizeof a.props &&
		    (strcat(a.props, " header.b="), !authres_value(a.props, sizeof a.props, b8, 8))))
			a.props[0] = '\0';
	}
	if (!authres_add(env->auth, &a))
		log_warn("%s: dkim: result left out: too many results", env->sid);
}

static bool domain_listed(const struct cfg_words *w, const char *domain)
{
	for (size_t i = 0; domain && i < w->n; i++)
		if (strcasecmp(w->v[i], domain) == 0)
			return true;
	return false;
}

static enum filter_result dkim_eod_hook(const struct filter_env *env,
    struct filter_verdict *v, const struct filter_async *async)
{
	struct dkim_msg *m = msg_get(env);
	const struct config *cfg = env->cfg;
	DKIM_SIGINFO **sigs = NULL;
	int nsigs = 0;
	const char *from_domain = NULL;
	bool required, required_pass = false, required_temp = false;
	char summary[FILTER_NOTE_MAX] = "dkim=";

	(void)async;
	if (m == NULL) {
		add_result(env, "temperror", "internal error", NULL, NULL, NULL);
		snprintf(v->note, sizeof v->note, "dkim=temperror");
		return FILTER_CONTINUE;
	}
	if (m->d != NULL && !m->broken && !m->nosig && m->feeding) {
		DKIM_STAT st;

		for (unsigned i = 0; i < m->nbh; i++)
			if (!dkim_bodyhash_final(&m->bh[i].h, m->bh[i].digest, &m->bh[i].digest_len))
				m->bh[i].digest_len = 0;   /* no match: fail, never pass */
		st = dkim_eom(m->d, NULL);
		if (st != DKIM_STAT_OK && st != DKIM_STAT_BADSIG && st != DKIM_STAT_NOKEY &&
		    st != DKIM_STAT_CANTVRFY && st != DKIM_STAT_REVOKED && st != DKIM_STAT_KEYFAIL &&
		    st != DKIM_STAT_NOSIG)
			log_info("%s: dkim: end of message: %s", m->sid, dkim_getresultstr(st));
		if (dkim_getsiglist(m->d, &sigs, &nsigs) != DKIM_STAT_OK)
			nsigs = 0;
	}
	if (m->d != NULL)
		from_domain = (const char *)dkim_getdomain(m->d);
	if (m->broken && !m->nosig) {
		add_result(env, "permerror", m->broken_why, NULL, NULL, NULL);
		strncat(summary, "permerror", sizeof summary - strlen(summary) - 1);
	}
	for (unsigned i = 0; m->keyfail && i < m->nseen; i++) {
		/* the library gave up at a failed key lookup: every signature is
		 * unverified for now (RFC 8601 temperror) */
		const struct dkim_seen *e = &m->seen[i];
		char qname[DKIM_QNAME_MAX];
		struct dkim_key *k = NULL;
		if (snprintf(qname, sizeof qname, "%s._domainkey.%s", e->selector, e->domain) < (int)sizeof qname)
			k = key_find(m, qname);
		add_result(env, "temperror", k != NULL && k->state == KEY_TEMPFAIL ? "key lookup failed" :
		    "not verified: another key lookup failed", e->domain, e->selector, e->b8);
		if (from_domain != NULL && strcasecmp(e->domain, from_domain) == 0)
			required_temp = true;
		snprintf(summary + strlen(summary), sizeof summary - strlen(summary), "%stemperror",
		    summary[5] ? "," : "");
	}
	for (int i = 0; i < nsigs; i++) {
		const char *reason, *res, *d;
		char b8[9];
		if (dkim_sig_getflags(sigs[i]) & DKIM_SIGFLAG_IGNORE)
			continue;
		res = sig_result(m, sigs[i], &reason);
		d = (const char *)dkim_sig_getdomain(sigs[i]);
		sig_b8(sigs[i], b8);
		add_result(env, res, reason, d, (const char *)dkim_sig_getselector(sigs[i]), b8);
		if (d != NULL && from_domain != NULL && strcasecmp(d, from_domain) == 0) {
			required_pass |= strcmp(res, "pass") == 0;
			required_temp |= strcmp(res, "temperror") == 0;
		}
		snprintf(summary + strlen(summary), sizeof summary - strlen(summary), "%s%s",
		    summary[5] ? "," : "", res);
	}
	if (!summary[5]) {
		add_result(env, "none", "", NULL, NULL, NULL);
		strcpy(summary, "dkim=none");
	}
	snprintf(v->note, sizeof v->note, "%s", summary);

	required = cfg->dkim.mode == DKIM_MODE_ENFORCE &&
	    domain_listed(&cfg->dkim.require_signed_by, from_domain);
	if (!required || required_pass)
		return FILTER_CONTINUE;
	if (required_temp) {
		v->code = 451;
		snprintf(v->esc, sizeof v->esc, "4.7.5");
		snprintf(v->text, sizeof v->text,
		    "DKIM key lookup for %s failed temporarily, try again later", from_domain);
		return FILTER_TEMPFAIL;
	}
	/* RFC 7372 3.1: no valid signature by a required domain */
	v->code = 550;
	snprintf(v->esc, sizeof v->esc, "5.7.20");
	snprintf(v->text, sizeof v->text, "No valid DKIM signature by %s, which signs all its mail",
	    from_domain);
	return FILTER_REJECT;
}

static void dkim_txn_end(const struct filter_env *env, enum filter_outcome outcome)
{
	(void)outcome;
	if (env->txn_state != NULL && *env->txn_state != NULL) {
		msg_free(*env->txn_state);
		*env->txn_state = NULL;
	}
}

static int dkim_init_lib(void **loop_state, struct uv_loop_s *loop, const struct config *cfg, char *err,
    size_t errlen)
{
	unsigned int bits = DKIM_MIN_RSA_BITS;
	unsigned int flags = DKIM_LIBFLAGS_NONE;

	(void)loop;
	(void)cfg;
	if (*loop_state == NULL) {
		struct dkim_loop *dl = calloc(1, sizeof *dl);

		if (dl == NULL || (dl->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL)) == NULL ||
		    (dl->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
			if (dl != NULL)
				EVP_MD_free(dl->sha1);
			free(dl);
			snprintf(err, errlen, "OpenSSL: no SHA-1 or SHA-256 for DKIM body hashes");
			return -1;
		}
		*loop_state = dl;
	}
	if (dkim_lib != NULL)
		return 0;   /* options are set once, before the first message */
	if ((dkim_lib = dkim_init(NULL, NULL)) == NULL) {
		snprintf(err, errlen, "libopendkim: dkim_init failed");
		return -1;
	}
	if (dkim_options(dkim_lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &bits, sizeof bits) != DKIM_STAT_OK ||
	    dkim_options(dkim_lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags) != DKIM_STAT_OK ||
	    dkim_set_key_lookup(dkim_lib, key_lookup) != DKIM_STAT_OK ||
	    dkim_set_prescreen(dkim_lib, prescreen) != DKIM_STAT_OK) {
		snprintf(err, errlen, "libopendkim: cannot set options");
		dkim_close(dkim_lib);
		dkim_lib = NULL;
		return -1;
	}
	/* libopendkim's key parsing goes through filters/dkim_pubkey.c */
	if (!dkim_pubkey_interposed())
		log_warn("dkim: parsed keys are not kept (d2i_PUBKEY_bio is not backstop's: a"
		    " static or -Bsymbolic link?); every signature costs a key parse");
	return 0;
}

static void dkim_shutdown_lib(void **loop_state)
{
	struct dkim_loop *dl = *loop_state;

	if (dl != NULL) {
		EVP_MD_free(dl->sha1);
		EVP_MD_free(dl->sha256);
		free(dl);
		*loop_state = NULL;
	}
	if (dkim_lib != NULL)
		dkim_close(dkim_lib);
	dkim_lib = NULL;
	dkim_pubkey_flush();
}

/* key lookups end at [dkim] timeout through the resolver; the runner's
 * deadline is the backstop for an answer that never comes */
static uint64_t dkim_async_timeout(const struct config *cfg)
{
	return cfg->dkim.timeout + 1000;
}

const struct filter_ops filter_dkim = {
	.name = "dkim",
	.enabled = dkim_enabled,
	.init = dkim_init_lib,
	.shutdown = dkim_shutdown_lib,
	.hook = {[FILTER_EOH] = dkim_eoh_hook, [FILTER_EOD] = dkim_eod_hook},
	.header = dkim_header_hook,
	.body = dkim_body_hook,
	.txn_end = dkim_txn_end,
	.hold = dkim_hold,
	.async_timeout = dkim_async_timeout,
};

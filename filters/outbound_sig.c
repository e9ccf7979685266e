/*
 * outbound_sig - evidence that a message was ours (issue 11), made where
 * mail leaves: the [outbound] listener.
 *
 *   header  Message-ID and Date of the message (the first of each) are
 *           kept in the transaction's state.
 *   EOH     X-Backstop-Sig: v=1; k=[batv] sign_key; t=today; s=MAC over
 *           Message-ID, Date and the envelope sender as relayed (BATV
 *           tagged: bsig canonicalises the tag away). A message without a
 *           Message-ID is signed all the same (message id ""). The field
 *           goes on top of the message, which therefore is held until end
 *           of data (hold_listener: on [outbound] only; inbound mail keeps
 *           streaming unless another check holds it).
 *   txn_end the relay took the message (FILTER_TXN_ACCEPTED): its
 *           Message-ID and envelope sender (BATV tag removed) go into the
 *           sentlog as a pair, so that the id vouches only for bounces to
 *           that sender. Refused, reset or aborted messages are not
 *           remembered, nor are messages without a Message-ID or from
 *           the null sender (nothing answers those).
 * A client's own X-Backstop-* fields never reach here: session_data.c
 * removes them on every listener, so nobody can hand us a signature to
 * relay, nor forge one to the inbound side at top level.
 *
 * State: the keys and the sentlog are the loop's (struct outsig_loop, the
 * filter's slot in struct filter_loop), used from the loop thread only
 * (hooks, the flush timer, the after-work callback); the bounce filter
 * reads the sentlog through outbound_sig_sentlog(env->filters). [outbound]
 * listen refuses [server] workers > 1 (main.c), so one loop has one. A
 * reload (init again) keeps the open sentlog when state_dir, remember,
 * sent_per_day and the key (from the lowest-numbered key of the keys file,
 * not sign_key's: a rotation keeps the log) are unchanged; otherwise the old one is
 * flushed (on the loop: a reload is an operator's rare act) and a new one
 * opened, which starts empty (its geometry or key differs from the file).
 *
 * Flushing: every SENTLOG_FLUSH_INTERVAL when something was added, the
 * loop copies the state (sentlog_snapshot, a memcpy: 8.3 MB at the
 * defaults, 6 ms measured) and a libuv worker checksums and writes it (tmp
 * file, fsync, rename): no disk I/O on the loop. At shutdown, after the
 * loop has ended, the last flush is synchronous. A crash loses at most
 * one interval of ids: their bounces then count as unverified, not as
 * ours. The state outlives shutdown while the timer closes or a worker's
 * write is in flight (a flush job points to it): whichever of the two
 * finishes last frees it (state_release).
 */
#define _POSIX_C_SOURCE 200809L  /* strncasecmp */

#include "filters/outbound_sig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uv.h>

#include <openssl/crypto.h>

#include "filters/batv_tag.h"
#include "filters/bsig.h"
#include "proxy/config.h"
#include "proxy/log.h"

#define SENTLOG_FLUSH_INTERVAL 60000   /* ms */
/* tests/integration/outbound_sig.py shortens the interval to see a periodic
 * flush happen within a test's time; nothing else sets it */
#define SENTLOG_FLUSH_ENV "BACKSTOP_SENTLOG_FLUSH_MS"
#define DAY_MS (24ULL * 3600 * 1000)

/* Per message: the fields the signature covers. */
struct outsig_txn {
	bool have_id, have_date;
	char message_id[BSIG_MSGID_MAX + 1];
	char date[BSIG_DATE_MAX + 1];
};

/* The loop's (its filter_loop slot), loop thread only (see the top of the
 * file). */
struct outsig_loop {
	struct batv_keys keys;
	bool have_keys;
	unsigned sign_key;
	struct sentlog *log;
	/* what the open log was made from: a reload with the same keeps it */
	char *state_dir;
	unsigned remember_days;
	size_t per_day;
	unsigned char log_key[BSIG_SENTLOG_KEY_BYTES];
	unsigned generation;           /* bumped when the log is replaced */
	uv_timer_t timer;
	bool timer_on;
	uint64_t interval;             /* ms between flushes */
	bool note_pending;             /* the open's note is not logged yet */
	char note[600];
	bool flushing;                 /* a worker write is in flight */
	long long overfull_day;        /* the day "overfull" was last logged */
	bool ended;                    /* shut down: freed once the timer is
	                                  closed and no write is in flight */
};

static bool listener_outbound(const struct filter_env *env)
{
	return env->listener != NULL && strcmp(env->listener, "outbound") == 0;
}

unsigned outbound_sig_remember_days(const struct config *cfg)
{
	return (unsigned)((cfg->sentlog.remember + DAY_MS - 1) / DAY_MS);
}

struct sentlog *outbound_sig_sentlog(const struct filter_loop *filters)
{
	const struct outsig_loop *o = filter_loop_state(filters, &filter_outbound_sig);

	return o != NULL ? o->log : NULL;
}

/* state_release - free o once shut down and nothing refers to it any
 * more: the timer's close callback and a worker's write in flight both
 * hold it. */
static void state_release(struct outsig_loop *o)
{
	if (!o->ended || o->timer_on || o->flushing)
		return;
	OPENSSL_cleanse(o, sizeof *o);
	free(o);
}

/* ---- flushing ---- */

struct flush_job {
	uv_work_t req;
	struct outsig_loop *o;         /* kept alive while the job runs (flushing) */
	struct sentlog_snapshot *snap;
	unsigned generation;
	int rc;
	char err[512];
};

static void flush_work(uv_work_t *req)
{
	struct flush_job *j = req->data;
	j->rc = sentlog_snapshot_write(j->snap, j->err, sizeof j->err);
}

static void flush_done(uv_work_t *req, int status)
{
	struct flush_job *j = req->data;
	struct outsig_loop *o = j->o;

	o->flushing = false;
	if (status != 0 || j->rc != 0) {
		log_error("sentlog: saving failed: %s; trying again in %llu s", status ?
		    uv_strerror(status) : j->err, (unsigned long long)(o->interval / 1000));
		if (o->log != NULL && j->generation == o->generation)
			sentlog_mark_dirty(o->log);
	} else {
		log_debug("sentlog: saved (worker thread)");
	}
	sentlog_snapshot_free(j->snap);
	free(j);
	state_release(o);   /* shut down while the write ran */
}

static void flush_tick(uv_timer_t *t)
{
	struct outsig_loop *o = t->data;
	struct flush_job *j;

	if (o->note_pending) {
		/* logged from the loop: the daemon's log, not the terminal of -t
		 * or of a "backstop batv" command, which also run init */
		log_info("%s", o->note);
		o->note_pending = false;
	}
	if (o->log == NULL || o->flushing || !sentlog_dirty(o->log))
		return;
	if ((j = calloc(1, sizeof *j)) == NULL || (j->snap = sentlog_snapshot(o->log)) == NULL) {
		free(j);
		log_warn("sentlog: no memory for a snapshot; saving later");
		return;
	}
	j->req.data = j;
	j->o = o;
	j->generation = o->generation;
	if (uv_queue_work(t->loop, &j->req, flush_work, flush_done) != 0) {
		sentlog_mark_dirty(o->log);
		sentlog_snapshot_free(j->snap);
		free(j);
		return;
	}
	o->flushing = true;
}

static void timer_closed(uv_handle_t *h)
{
	struct outsig_loop *o = h->data;

	o->timer_on = false;
	state_release(o);
}

/* timer_start - flushes every interval, and logs a new log's note at
 * once, from loop (the one init is given: init runs before the loop does,
 * and on reload, on it). Never keeps the loop alive: shutdown flushes by
 * itself. Without a loop (NULL) nothing is flushed until shutdown. */
static void timer_start(struct outsig_loop *o, uv_loop_t *loop)
{
	const char *ms = getenv(SENTLOG_FLUSH_ENV);

	o->interval = ms != NULL && atoi(ms) > 0 ? (uint64_t)atoi(ms) : SENTLOG_FLUSH_INTERVAL;
	if (loop == NULL && !o->timer_on)
		return;
	if (!o->timer_on) {
		uv_timer_init(loop, &o->timer);
		o->timer.data = o;
		uv_unref((uv_handle_t *)&o->timer);
		o->timer_on = true;
	}
	uv_timer_start(&o->timer, flush_tick, 0, o->interval);
}

/* log_close_now - flush synchronously and close (reload, shutdown). */
static void log_close_now(struct outsig_loop *o)
{
	char err[512];

	if (o->log == NULL)
		return;
	if (o->flushing) {
		/* a reload while a worker writes: each write has a tmp file of
		 * its own, but the worker's older copy could be renamed over a
		 * newer one written here; the worker's copy is what is saved */
		log_warn("sentlog: a save is under way; messages sent since it began are not saved");
	} else if (sentlog_dirty(o->log)) {
		if (sentlog_flush(o->log, err, sizeof err) < 0)
			log_error("sentlog: saving failed: %s", err);
		else
			log_info("sentlog: saved to %s/%s", o->state_dir, SENTLOG_FILE);
	}
	sentlog_close(o->log);
	o->log = NULL;
	o->generation++;
	free(o->state_dir);
	o->state_dir = NULL;
}

/* ---- hooks ---- */

static struct outsig_txn *txn_get(const struct filter_env *env)
{
	return env->txn_state != NULL ? *env->txn_state : NULL;
}

static enum filter_result outsig_data(const struct filter_env *env, struct filter_verdict *v,
    const struct filter_async *async)
{
	struct outsig_txn *t;

	(void)async;
	if (!listener_outbound(env) || env->txn_state == NULL || *env->txn_state != NULL)
		return FILTER_CONTINUE;
	if ((t = calloc(1, sizeof *t)) == NULL) {
		/* unsigned mail would have its bounces refused later */
		v->code = 451;
		snprintf(v->esc, sizeof v->esc, "4.3.0");
		snprintf(v->text, sizeof v->text, "Error: out of memory, try again later");
		return FILTER_TEMPFAIL;
	}
	*env->txn_state = t;
	return FILTER_CONTINUE;
}

/* field_copy - the value of a field, as found (folding kept), cut to cap. */
static void field_copy(char *dst, size_t cap, const char *v, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
	/* a NUL inside the value would cut it differently from a later reader:
	 * make it a blank, which the canonical forms treat as such */
	for (size_t i = 0; i < len; i++)
		if (dst[i] == '\0')
			dst[i] = ' ';
}

static bool name_is(const struct filter_header *h, const char *name)
{
	size_t n = strlen(name);
	return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

static bool outsig_header(const struct filter_env *env, const struct filter_header *h)
{
	struct outsig_txn *t = txn_get(env);

	if (t == NULL || !listener_outbound(env))
		return true;
	if (!t->have_id && name_is(h, "Message-ID")) {
		field_copy(t->message_id, sizeof t->message_id, h->value, h->value_len);
		t->have_id = true;
	} else if (!t->have_date && name_is(h, "Date")) {
		field_copy(t->date, sizeof t->date, h->value, h->value_len);
		t->have_date = true;
	}
	return true;
}

static enum filter_result outsig_eoh(const struct filter_env *env, struct filter_verdict *v,
    const struct filter_async *async)
{
	struct outsig_txn *t = txn_get(env);
	const struct outsig_loop *o = env->loop_state;
	unsigned sign_key = (unsigned)env->cfg->batv.sign_key;
	char value[BSIG_VALUE_MAX];

	(void)async;
	if (t == NULL || !listener_outbound(env))
		return FILTER_CONTINUE;
	if (o != NULL && o->have_keys)
		sign_key = o->sign_key;
	if (o == NULL || !o->have_keys || bsig_make(&o->keys, sign_key, time(NULL),
	    t->message_id, t->date, env->null_sender ? "" : env->mail_from, value,
	    sizeof value) < 0) {
		/* as batv refuses to relay an untagged sender */
		v->code = 451;
		snprintf(v->esc, sizeof v->esc, "4.3.5");
		snprintf(v->text, sizeof v->text, "signing key not available, try again later");
		log_error("%s: outbound: cannot sign: [batv] sign_key %u is not loaded", env->sid,
		    sign_key);
		return FILTER_TEMPFAIL;
	}
	snprintf(v->headers, sizeof v->headers, "%s: %s\r\n", BSIG_FIELD, value);
	return FILTER_CONTINUE;
}

static void outsig_txn_end(const struct filter_env *env, enum filter_outcome outcome)
{
	struct outsig_txn *t = txn_get(env);
	struct outsig_loop *o = env->loop_state;
	time_t now = time(NULL);
	char id[BSIG_MSGID_MAX + 1], e[300];

	if (t == NULL)
		return;
	if (outcome == FILTER_TXN_ACCEPTED && o != NULL && o->log != NULL && !env->null_sender &&
	    env->mail_from != NULL && bsig_canon_msgid(t->message_id, id, sizeof id) > 0) {
		char sender[BSIG_SENDER_MAX + 1], e2[400];
		bsig_canon_sender(env->mail_from, sender, sizeof sender);
		sentlog_add(o->log, id, sender, now);
		log_debug("%s: sentlog: remembered %s from %s", env->sid,
		    log_escape(id, strlen(id), e, sizeof e), log_escape(sender, strlen(sender), e2, sizeof e2));
		uint64_t over = sentlog_overfull(o->log, now);
		if (over > 0 && o->overfull_day != (long long)(now / 86400)) {
			o->overfull_day = (long long)(now / 86400);
			log_warn("sentlog: more than [bounce] sent_per_day = %zu messages today: the false "
			    "positive rate of the bounce check rises; raise sent_per_day", o->per_day);
		}
	}
	free(t);
	*env->txn_state = NULL;
}

static bool outsig_enabled(const struct config *cfg)
{
	return cfg->outbound.listen.n > 0;
}

static bool outsig_hold_listener(const struct config *cfg, const char *listener)
{
	return outsig_enabled(cfg) && strcmp(listener, "outbound") == 0;
}

/* open_log - (re)open the sentlog for cfg; keep the open one when nothing
 * it was made from changed. */
static int open_log(struct outsig_loop *o, uv_loop_t *loop, const struct config *cfg,
    const unsigned char key[BSIG_SENTLOG_KEY_BYTES], char *err, size_t errlen)
{
	unsigned days = outbound_sig_remember_days(cfg);
	size_t per_day = (size_t)cfg->sentlog.sent_per_day;
	struct sentlog *l;
	char why[512];

	if (o->log != NULL && strcmp(o->state_dir, cfg->sentlog.state_dir) == 0 &&
	    o->remember_days == days && o->per_day == per_day &&
	    CRYPTO_memcmp(o->log_key, key, BSIG_SENTLOG_KEY_BYTES) == 0)
		return 0;
	l = sentlog_open(cfg->sentlog.state_dir, key, BSIG_SENTLOG_KEY_BYTES, days, per_day, why,
	    sizeof why);
	if (l == NULL) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	log_close_now(o);
	o->log = l;
	if ((o->state_dir = strdup(cfg->sentlog.state_dir)) == NULL) {
		sentlog_close(l);
		o->log = NULL;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	o->remember_days = days;
	o->per_day = per_day;
	memcpy(o->log_key, key, BSIG_SENTLOG_KEY_BYTES);
	snprintf(o->note, sizeof o->note, "sentlog: %u days of up to %zu messages a day, "
	    "%zu KB, %u hashes: %s", days, per_day, sentlog_memory(l) >> 10, sentlog_nhashes(l),
	    sentlog_load_note(l));
	o->note_pending = true;
	timer_start(o, loop);
	return 0;
}

/* outsig_check - what init would refuse: the keys, the sentlog key
 * derived from them and the sentlog's size (its file is not an error) */
static int outsig_check(const struct config *cfg, char *err, size_t errlen)
{
	struct batv_keys k;
	unsigned char key[BSIG_SENTLOG_KEY_BYTES];
	unsigned sign_key = (unsigned)cfg->batv.sign_key;
	int rc = 0;

	if (!outsig_enabled(cfg))
		return 0;
	if (batv_keys_load(cfg->batv.keys_file, &k, err, errlen) < 0)
		return -1;
	if (sign_key >= BATV_NKEYS || !k.present[sign_key] || bsig_sentlog_key(&k, key) < 0) {
		snprintf(err, errlen, "%s: sign_key %u is not in the file", cfg->batv.keys_file, sign_key);
		rc = -1;
	} else {
		rc = sentlog_check(outbound_sig_remember_days(cfg), (size_t)cfg->sentlog.sent_per_day,
		    err, errlen);
	}
	OPENSSL_cleanse(&k, sizeof k);
	OPENSSL_cleanse(key, sizeof key);
	return rc;
}

static int outsig_init(void **loop_state, struct uv_loop_s *loop, const struct config *cfg, char *err,
    size_t errlen)
{
	struct outsig_loop *o = *loop_state;
	struct batv_keys k;
	unsigned char key[BSIG_SENTLOG_KEY_BYTES];
	unsigned sign_key = (unsigned)cfg->batv.sign_key;
	int rc;

	if (!outsig_enabled(cfg)) {
		/* a reload without [outbound] listen: save what was sent */
		if (o != NULL)
			log_close_now(o);
		return 0;
	}
	/* config_load() insists on keys_file with an [outbound] listener */
	if (batv_keys_load(cfg->batv.keys_file, &k, err, errlen) < 0)
		return -1;
	if (sign_key >= BATV_NKEYS || !k.present[sign_key] || bsig_sentlog_key(&k, key) < 0) {
		snprintf(err, errlen, "%s: sign_key %u is not in the file", cfg->batv.keys_file, sign_key);
		OPENSSL_cleanse(&k, sizeof k);
		return -1;
	}
	if (o == NULL && (o = *loop_state = calloc(1, sizeof *o)) == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	} else {
		rc = open_log(o, loop, cfg, key, err, errlen);
	}
	if (rc == 0) {
		o->keys = k;
		o->have_keys = true;
		o->sign_key = sign_key;
	}
	OPENSSL_cleanse(&k, sizeof k);
	OPENSSL_cleanse(key, sizeof key);
	return rc;
}

/* outsig_shutdown - the last flush (synchronous: the loop has ended),
 * then the state goes: at once, or when the timer's close callback and a
 * write still in flight are done (state_release). */
static void outsig_shutdown(void **loop_state)
{
	struct outsig_loop *o = *loop_state;

	if (o == NULL)
		return;
	*loop_state = NULL;
	log_close_now(o);
	OPENSSL_cleanse(&o->keys, sizeof o->keys);
	o->have_keys = false;
	o->ended = true;
	if (o->timer_on)
		uv_close((uv_handle_t *)&o->timer, timer_closed);
	state_release(o);
}

const struct filter_ops filter_outbound_sig = {
	.name = "outbound_sig",
	.enabled = outsig_enabled,
	.init = outsig_init,
	.check = outsig_check,
	.shutdown = outsig_shutdown,
	.hook = {
		[FILTER_DATA] = outsig_data,
		[FILTER_EOH] = outsig_eoh,
	},
	.header = outsig_header,
	.txn_end = outsig_txn_end,
	.hold_listener = outsig_hold_listener,
};

/* ---- backstop sentlog contains ID ---- */

int outbound_sig_cli(int argc, char **argv, const struct config *cfg)
{
	struct batv_keys k;
	unsigned char key[BSIG_SENTLOG_KEY_BYTES];
	char err[512];
	struct sentlog *l;
	int rc;

	if (argc > 0 && strcmp(argv[0], "sentlog") == 0) {
		argc--;
		argv++;
	}
	if (argc != 3 || strcmp(argv[0], "contains") != 0) {
		fprintf(stderr, "usage: backstop [-c CONFIG] sentlog contains MESSAGE-ID SENDER\n");
		return 2;
	}
	if (cfg->batv.keys_file == NULL || cfg->batv.keys_file[0] == '\0') {
		fprintf(stderr, "backstop: sentlog: [batv] keys_file is not set\n");
		return 2;
	}
	if (batv_keys_load(cfg->batv.keys_file, &k, err, sizeof err) < 0) {
		fprintf(stderr, "backstop: %s\n", err);
		return 2;
	}
	rc = bsig_sentlog_key(&k, key);
	OPENSSL_cleanse(&k, sizeof k);
	if (rc < 0) {
		fprintf(stderr, "backstop: sentlog: no key in %s\n", cfg->batv.keys_file);
		return 2;
	}
	l = sentlog_open(cfg->sentlog.state_dir, key, sizeof key, outbound_sig_remember_days(cfg),
	    (size_t)cfg->sentlog.sent_per_day, err, sizeof err);
	OPENSSL_cleanse(key, sizeof key);
	if (l == NULL) {
		fprintf(stderr, "backstop: %s\n", err);
		return 2;
	}
	if (strncmp(sentlog_load_note(l), "loaded", 6) != 0) {
		fprintf(stderr, "backstop: sentlog: %s\n", sentlog_load_note(l));
		sentlog_close(l);
		return 2;
	}
	rc = sentlog_contains(l, argv[1], argv[2], time(NULL)) ? 0 : 1;
	printf("%s\n", rc == 0 ? "sent" : "not found");
	sentlog_close(l);
	return rc;
}

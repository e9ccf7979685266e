/*
 * test_outbound_sig - filter_outbound_sig's hooks called directly: the
 * field added at EOH verifies (bsig_check) over the Message-ID and Date the
 * header hook saw; only messages the relay accepted reach the sentlog; the
 * inbound listener is left alone; hold only on [outbound]; shutdown saves
 * the log, init loads it again, and the CLI finds the id.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* MAP_ANONYMOUS in check.h, mkdtemp */
#endif

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "filters/bsig.h"
#include "filters/outbound_sig.h"
#include "proxy/config.h"
#include "tests/unit/check.h"

/* the loop's filter state (filters/filter.h: struct filter_loop); the
 * filter's own slot in it is what its init and shutdown are given */
static struct filter_loop filters;
#define SLOT (&filters.state[filter_index(&filter_outbound_sig)])

static struct config *cfg;
static struct batv_keys keys;
static char dir[64], keys_path[128], state_dir[128];
static const char *mail_from = "prvs=1234abcdef=user@test.example";

static struct filter_env env_for(const char *listener, void **slot)
{
	struct filter_env e;

	memset(&e, 0, sizeof e);
	e.session_id = 1;
	e.sid = "T1";
	e.listener = listener;
	e.client_ip = "127.0.0.1";
	e.mail_from = mail_from;
	e.null_sender = mail_from[0] == '\0';
	e.cfg = cfg;
	e.txn_number = 1;
	e.txn_state = slot;
	e.loop_state = *SLOT;
	e.filters = &filters;
	return e;
}

static void header(const struct filter_env *e, const char *field)
{
	struct filter_header h;
	const char *colon = strchr(field, ':');

	memset(&h, 0, sizeof h);
	h.name = field;
	h.name_len = (size_t)(colon - field);
	h.value = colon + 1;
	h.value_len = strlen(colon + 1);
	h.field = field;
	h.field_len = strlen(field);
	CHECK(filter_outbound_sig.header(e, &h));   /* never drops a field */
}

/* one_message - DATA, the fields, EOH, txn_end(outcome); the verdict's
 * headers at EOH go to added. */
static void one_message(const char *listener, const char *const *fields,
    enum filter_outcome outcome, char *added, size_t cap)
{
	void *slot = NULL;
	struct filter_env e = env_for(listener, &slot);
	struct filter_verdict v;

	memset(&v, 0, sizeof v);
	CHECK_INT(filter_outbound_sig.hook[FILTER_DATA](&e, &v, NULL), FILTER_CONTINUE);
	for (size_t i = 0; fields[i] != NULL; i++)
		header(&e, fields[i]);
	memset(&v, 0, sizeof v);
	CHECK_INT(filter_outbound_sig.hook[FILTER_EOH](&e, &v, NULL), FILTER_CONTINUE);
	snprintf(added, cap, "%s", v.headers);
	filter_outbound_sig.txn_end(&e, outcome);
	CHECK(slot == NULL);
}

/* sig_of - the value of the X-Backstop-Sig field in added, or "". */
static const char *sig_of(const char *added)
{
	static char v[256];
	const char *p = strstr(added, BSIG_FIELD ": ");
	size_t n;

	if (p == NULL)
		return "";
	p += strlen(BSIG_FIELD ": ");
	n = strcspn(p, "\r");
	snprintf(v, sizeof v, "%.*s", (int)n, p);
	return v;
}

int main(void)
{
	static const char *const plain[] = {
		"From: <user@test.example>", "Message-ID: <one@test.example>",
		"Date: Mon, 7 Dec 2026\r\n 01:00:00 +0000", "Message-ID: <second-ignored@x>", NULL};
	static const char *const refused[] = {"Message-ID: <refused@test.example>", "Date: x", NULL};
	static const char *const noid[] = {"Subject: no id", NULL};
	static const char *const inbound[] = {"Message-ID: <inbound@x>", NULL};
	static const char *const nullsender[] = {"Message-ID: <null@test.example>", NULL};
	char err[512], added[FILTER_HEADERS_MAX];
	struct sentlog *l;
	FILE *f;

	snprintf(dir, sizeof dir, "/tmp/test_outbound_sig.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 99;
	snprintf(keys_path, sizeof keys_path, "%s/keys", dir);
	snprintf(state_dir, sizeof state_dir, "%s/state", dir);
	mkdir(state_dir, 0700);
	if ((f = fopen(keys_path, "w")) == NULL)
		return 99;
	fputs("0 zero-secret\n3 three-secret\n", f);
	fclose(f);
	chmod(keys_path, 0600);
	keys.present[3] = true;
	memcpy(keys.secret[3], "three-secret", keys.len[3] = 12);

	cfg = config_defaults();
	free(cfg->batv.keys_file);
	cfg->batv.keys_file = strdup(keys_path);
	cfg->batv.sign_key = 3;
	free(cfg->sentlog.state_dir);
	cfg->sentlog.state_dir = strdup(state_dir);
	cfg->sentlog.sent_per_day = 1000;
	cfg->outbound.listen.v = calloc(2, sizeof *cfg->outbound.listen.v);
	cfg->outbound.listen.v[0] = strdup("127.0.0.1:2526");
	cfg->outbound.listen.n = 1;

	CHECK(filter_outbound_sig.enabled(cfg));
	CHECK(filter_outbound_sig.hold_listener(cfg, "outbound"));
	CHECK(!filter_outbound_sig.hold_listener(cfg, "inbound"));
	CHECK(filter_outbound_sig.hold == NULL);
	CHECK_INT(filter_outbound_sig.init(SLOT, NULL, cfg, err, sizeof err), 0);
	CHECK((l = outbound_sig_sentlog(&filters)) != NULL);

	one_message("outbound", plain, FILTER_TXN_ACCEPTED, added, sizeof added);
	CHECK(strncmp(added, "X-Backstop-Sig: v=1; k=3; t=", 28) == 0);
	CHECK(strstr(added, "\r\n") == added + strlen(added) - 2);
	CHECK_INT(bsig_check(&keys, time(NULL), 7, sig_of(added), "<one@test.example>",
	    "Mon, 7 Dec 2026 01:00:00 +0000", "user@test.example"), BSIG_VALID);
	CHECK_INT(bsig_check(&keys, time(NULL), 7, sig_of(added), "<second-ignored@x>",
	    "Mon, 7 Dec 2026 01:00:00 +0000", "user@test.example"), BSIG_BAD);
	/* remembered as (Message-ID, sender without its tag): for user@ only */
	CHECK(sentlog_contains(l, "<one@test.example>", "user@test.example", time(NULL)));
	CHECK(sentlog_contains(l, "<one@test.example>", "User@Test.Example", time(NULL)));
	CHECK(!sentlog_contains(l, "<one@test.example>", "user3@test.example", time(NULL)));
	CHECK(!sentlog_contains(l, "<second-ignored@x>", "user@test.example", time(NULL)));

	one_message("outbound", refused, FILTER_TXN_REFUSED, added, sizeof added);
	CHECK(sig_of(added)[0] != '\0');
	CHECK(!sentlog_contains(l, "<refused@test.example>", "user@test.example", time(NULL)));
	one_message("outbound", refused, FILTER_TXN_ABORTED, added, sizeof added);
	CHECK(!sentlog_contains(l, "<refused@test.example>", "user@test.example", time(NULL)));
	/* the null sender: nothing answers it, nothing to remember */
	mail_from = "";
	one_message("outbound", nullsender, FILTER_TXN_ACCEPTED, added, sizeof added);
	CHECK(!sentlog_contains(l, "<null@test.example>", "", time(NULL)));
	mail_from = "prvs=1234abcdef=user@test.example";

	one_message("outbound", noid, FILTER_TXN_ACCEPTED, added, sizeof added);
	CHECK_INT(bsig_check(&keys, time(NULL), 7, sig_of(added), "", "", "user@test.example"),
	    BSIG_VALID);

	one_message("inbound", inbound, FILTER_TXN_ACCEPTED, added, sizeof added);
	CHECK_STR(added, "");
	CHECK(!sentlog_contains(l, "<inbound@x>", "user@test.example", time(NULL)));

	/* shutdown saves; init loads; the CLI reads the file */
	filter_outbound_sig.shutdown(SLOT);
	CHECK(outbound_sig_sentlog(&filters) == NULL);
	{
		char path[256];
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", state_dir, SENTLOG_FILE);
		CHECK_INT(stat(path, &st), 0);
	}
	CHECK_INT(filter_outbound_sig.init(SLOT, NULL, cfg, err, sizeof err), 0);
	CHECK(outbound_sig_sentlog(&filters) != NULL && sentlog_contains(outbound_sig_sentlog(&filters),
	    "<one@test.example>", "user@test.example", time(NULL)));
	{
		char *yes[] = {"sentlog", "contains", "<one@test.example>", "prvs=1111abcdef=user@test.example"};
		char *other[] = {"contains", "<one@test.example>", "user3@test.example"};
		char *no[] = {"contains", "<refused@test.example>", "user@test.example"};
		char *bad[] = {"contains", "<one@test.example>"};
		CHECK_INT(outbound_sig_cli(4, yes, cfg), 0);
		CHECK_INT(outbound_sig_cli(3, other, cfg), 1);
		CHECK_INT(outbound_sig_cli(3, no, cfg), 1);
		CHECK_INT(outbound_sig_cli(2, bad, cfg), 2);
	}
	/* key rotation (README: add key 4, sign_key = 4, reload): the log is
	 * kept - its key comes from the lowest-numbered key, 0 */
	l = outbound_sig_sentlog(&filters);
	if ((f = fopen(keys_path, "w")) == NULL)
		return 99;
	fputs("0 zero-secret\n3 three-secret\n4 four-secret\n", f);
	fclose(f);
	cfg->batv.sign_key = 4;
	CHECK_INT(filter_outbound_sig.init(SLOT, NULL, cfg, err, sizeof err), 0);
	CHECK(outbound_sig_sentlog(&filters) == l);
	CHECK(sentlog_contains(outbound_sig_sentlog(&filters), "<one@test.example>", "user@test.example",
	    time(NULL)));
	filter_outbound_sig.shutdown(SLOT);
	CHECK_INT(filter_outbound_sig.init(SLOT, NULL, cfg, err, sizeof err), 0);
	CHECK(strstr(sentlog_load_note(outbound_sig_sentlog(&filters)), "loaded") != NULL);
	CHECK(sentlog_contains(outbound_sig_sentlog(&filters), "<one@test.example>", "user@test.example",
	    time(NULL)));
	/* removing the lowest key (the end of a rotation) starts afresh */
	if ((f = fopen(keys_path, "w")) == NULL)
		return 99;
	fputs("3 three-secret\n4 four-secret\n", f);
	fclose(f);
	CHECK_INT(filter_outbound_sig.init(SLOT, NULL, cfg, err, sizeof err), 0);
	CHECK(!sentlog_contains(outbound_sig_sentlog(&filters), "<one@test.example>", "user@test.example",
	    time(NULL)));
	CHECK(strstr(sentlog_load_note(outbound_sig_sentlog(&filters)), "another key") != NULL);
	cfg->batv.sign_key = 3;
	/* a reload with other settings starts afresh, after saving */
	cfg->sentlog.sent_per_day = 2000;
	CHECK_INT(filter_outbound_sig.init(SLOT, NULL, cfg, err, sizeof err), 0);
	CHECK(!sentlog_contains(outbound_sig_sentlog(&filters), "<one@test.example>", "user@test.example",
	    time(NULL)));
	/* a key that is not in the file: init fails, the running log stays */
	l = outbound_sig_sentlog(&filters);
	cfg->batv.sign_key = 5;
	CHECK_INT(filter_outbound_sig.init(SLOT, NULL, cfg, err, sizeof err), -1);
	CHECK(strstr(err, "sign_key 5") != NULL);
	CHECK(outbound_sig_sentlog(&filters) == l);
	CHECK_INT(filter_outbound_sig.check(cfg, err, sizeof err), -1);
	/* check refuses what init would: a reload refused after BATV's init
	 * took new keys from the same path would keep them (the rollback
	 * reads that path again). A sentlog over its memory bound: */
	cfg->batv.sign_key = 3;
	CHECK_INT(filter_outbound_sig.check(cfg, err, sizeof err), 0);
	cfg->sentlog.remember = 366ULL * 86400000;
	cfg->sentlog.sent_per_day = 10000000;
	CHECK_INT(filter_outbound_sig.init(SLOT, NULL, cfg, err, sizeof err), -1);
	CHECK(strstr(err, "memory") != NULL);
	CHECK(outbound_sig_sentlog(&filters) == l);
	err[0] = '\0';
	CHECK_INT(filter_outbound_sig.check(cfg, err, sizeof err), -1);
	CHECK(strstr(err, "memory") != NULL);
	filter_outbound_sig.shutdown(SLOT);

	{
		char cmd[200];
		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup of %s failed\n", dir);
	}
	config_unref(cfg);
	return check_finish("test_outbound_sig");
}

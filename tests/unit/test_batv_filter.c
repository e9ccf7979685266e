/*
 * test_batv_filter - filter_batv's hooks called directly, with a filled
 * struct filter_env and a config from config_defaults(): tag stripping,
 * refusals at RCPT and at DATA, exemptions, observe mode, the outbound
 * listener (allow list, signing, sign_exempt), key reloads and the CLI.
 * Tags are made with the real clock (batv_today()), as the filter does.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* MAP_ANONYMOUS in check.h */
#endif

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filters/batv.h"
#include "filters/batv_tag.h"
#include "proxy/config.h"
#include "tests/unit/check.h"

/* the loop's filter state (filters/filter.h: struct filter_loop): the
 * hooks find the keys there (batv_keys_current) */
static struct filter_loop filters;
#define SLOT (&filters.state[filter_index(&filter_batv)])

static struct config *cfg;
static struct batv_keys keys;  /* the same secrets as the keys file */
static char keys_path[64];
static struct sockaddr_in sin_local, sin_remote;

static void words_set(struct cfg_words *w, const char *const *v)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i]);
	free(w->v);
	w->n = 0;
	w->v = NULL;
	while (v != NULL && v[w->n] != NULL)
		w->n++;
	w->v = calloc(w->n + 1, sizeof *w->v);
	for (size_t i = 0; i < w->n; i++)
		w->v[i] = strdup(v[i]);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    fchmod(fd, mode) < 0) {
		perror(path);
		exit(2);
	}
	close(fd);
}

/* tag - a tag for addr made today (plus offset days) with key. */
static const char *tag(const char *addr, unsigned key, long offset)
{
	static char out[8][300];
	static int n;
	char *o = out[n++ % 8];
	if (batv_sign(&keys, key, addr, batv_today() + offset, 7, o, 300) < 0)
		strcpy(o, "(sign failed)");
	return o;
}

/* env_in - an inbound environment for one transaction. */
static struct filter_env env_in(const char *from, const char *rcpt,
    const char *const *rcpts, size_t n)
{
	struct filter_env e;
	memset(&e, 0, sizeof e);
	e.session_id = 1;
	e.sid = "T1";
	e.listener = "inbound";
	e.client_sa = (const struct sockaddr *)&sin_remote;
	e.client_ip = "192.0.2.7";
	e.client_name = "unknown";
	e.helo = "mx.remote.example";
	e.mail_from = from;
	e.null_sender = from[0] == '\0';
	e.rcpt = rcpt;
	e.rcpts = rcpts;
	e.rcpts_orig = rcpts;
	e.nrcpts = n;
	e.cfg = cfg;
	return e;
}

static enum filter_result run(enum filter_stage stage, const struct filter_env *e,
    struct filter_verdict *v)
{
	struct filter_async a = {e->session_id, 1, NULL};
	struct filter_env in_loop = *e;

	in_loop.loop_state = *SLOT;
	in_loop.filters = &filters;
	memset(v, 0, sizeof *v);
	if (filter_batv.hook[stage] == NULL)
		return FILTER_CONTINUE;
	return filter_batv.hook[stage](&in_loop, v, &a);
}

/* rcpt - the RCPT hook for one recipient of the given sender. */
static enum filter_result rcpt(const char *from, const char *to, struct filter_verdict *v)
{
	struct filter_env e = env_in(from, to, NULL, 0);
	return run(FILTER_RCPT, &e, v);
}

/* data - the DATA hook for the recipients given (NULL-terminated). */
static enum filter_result data(const char *from, const char *const *to, struct filter_verdict *v)
{
	size_t n = 0;
	while (to[n] != NULL)
		n++;
	struct filter_env e = env_in(from, NULL, to, n);
	return run(FILTER_DATA, &e, v);
}

static void set_mode(int mode, int refuse_at)
{
	cfg->batv.mode = mode;
	cfg->batv.refuse_at = refuse_at;
}

/* test_rcpt_stage - stripping and refuse_at = rcpt. */
static void test_rcpt_stage(void)
{
	struct filter_verdict v;

	set_mode(BATV_MODE_ENFORCE, BATV_REFUSE_DATA);
	/* refuse_at = data: a failing bounce passes RCPT (callouts work) */
	CHECK_INT(rcpt("", "user@example.com", &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "");
	/* a valid tag is stripped */
	CHECK_INT(rcpt("", tag("user@example.com", 1, 0), &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "user@example.com");
	CHECK_STR(v.note, "batv=pass");
	/* the old key still verifies (rotation) */
	CHECK_INT(rcpt("", tag("Jane.Doe+x@Example.COM", 0, -3), &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "Jane.Doe+x@Example.COM");
	/* an expired tag on a bounce is stripped too, decided at DATA */
	CHECK_INT(rcpt("", tag("user@example.com", 1, -20), &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "user@example.com");
	/* a domain outside [batv] domains is not touched */
	CHECK_INT(rcpt("", tag("user@other.org", 1, 0), &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "");
	/* a reply (non-null sender) to an expired or bad tag: stripped, accepted */
	CHECK_INT(rcpt("someone@remote.org", tag("user@example.com", 1, -40), &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "user@example.com");
	CHECK_INT(rcpt("someone@remote.org", "prvs=1730000000=user@example.com", &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "user@example.com");
	/* a malformed tag is not stripped */
	CHECK_INT(rcpt("someone@remote.org", "prvs=17300=user@example.com", &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "");

	set_mode(BATV_MODE_ENFORCE, BATV_REFUSE_RCPT);
	CHECK_INT(rcpt("", "user@example.com", &v), FILTER_REJECT);
	CHECK_INT(v.code, 550);
	CHECK_STR(v.esc, "5.7.1");
	CHECK_STR(v.text, "<user@example.com>: address did not send this mail (no BATV tag)");
	CHECK_STR(v.note, "batv=fail(no_tag)");
	CHECK_STR(v.rewrite, "");
	CHECK_INT(rcpt("", "user@EXAMPLE.COM", &v), FILTER_REJECT);
	const char *t = tag("user@example.com", 1, -20);
	CHECK_INT(rcpt("", t, &v), FILTER_REJECT);
	CHECK(strstr(v.text, "(BATV tag expired)") != NULL);
	CHECK(strncmp(v.text, "<prvs=1", 7) == 0);
	CHECK_STR(v.note, "batv=fail(expired)");
	CHECK_INT(rcpt("", "prvs=1730000000=user@example.com", &v), FILTER_REJECT);
	CHECK(strstr(v.text, "(invalid BATV signature)") != NULL);
	CHECK_INT(rcpt("", "prvs=5730000000=user@example.com", &v), FILTER_REJECT);
	CHECK(strstr(v.text, "(unknown BATV key)") != NULL);
	CHECK_INT(rcpt("", "prvs=17300=user@example.com", &v), FILTER_REJECT);
	CHECK(strstr(v.text, "(malformed BATV tag)") != NULL);
	CHECK_STR(v.note, "batv=fail(malformed)");
	CHECK_INT(rcpt("", tag("user@example.com", 1, 0), &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "user@example.com");
	/* exempt: postmaster@, abuse@ everywhere, and the configured list */
	CHECK_INT(rcpt("", "postmaster@example.com", &v), FILTER_CONTINUE);
	CHECK_STR(v.note, "batv=exempt");
	CHECK_INT(rcpt("", "Abuse@Example.Com", &v), FILTER_CONTINUE);
	CHECK_INT(rcpt("", "noc@example.com", &v), FILTER_CONTINUE);
	CHECK_INT(rcpt("", "list-owner@example.net", &v), FILTER_CONTINUE);
	CHECK_INT(rcpt("", "noc@example.net", &v), FILTER_REJECT);
	/* a tagged postmaster is stripped and accepted even with a bad tag */
	CHECK_INT(rcpt("", "prvs=1730000000=postmaster@example.com", &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "postmaster@example.com");
	/* bounce_senders: MAILER-DAEMON@* is a bounce, its case ignored */
	CHECK_INT(rcpt("mailer-daemon@mx.remote.org", "user@example.com", &v), FILTER_REJECT);
	CHECK_INT(rcpt("someone@remote.org", "user@example.com", &v), FILTER_CONTINUE);
	/* observe mode never refuses at RCPT */
	set_mode(BATV_MODE_OBSERVE, BATV_REFUSE_RCPT);
	CHECK_INT(rcpt("", "user@example.com", &v), FILTER_CONTINUE);
	/* mode off: nothing */
	set_mode(BATV_MODE_OFF, BATV_REFUSE_RCPT);
	CHECK_INT(rcpt("", "user@example.com", &v), FILTER_CONTINUE);
	CHECK_INT(rcpt("", tag("user@example.com", 1, 0), &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "");
}

/* test_data_stage - the verdict on a bounce at DATA. */
static void test_data_stage(void)
{
	struct filter_verdict v;

	set_mode(BATV_MODE_ENFORCE, BATV_REFUSE_DATA);
	{
		const char *to[] = {"user@example.com", NULL};
		CHECK_INT(data("", to, &v), FILTER_REJECT);
		CHECK_INT(v.code, 550);
		CHECK_STR(v.esc, "5.7.1");
		CHECK_STR(v.text, "<user@example.com>: address did not send this mail (no BATV tag)");
		CHECK_STR(v.note, "batv=fail(no_tag)");
		CHECK_STR(v.headers, "");
		/* the same from a real sender is not a bounce */
		CHECK_INT(data("someone@remote.org", to, &v), FILTER_CONTINUE);
		CHECK_STR(v.note, "");
	}
	{
		const char *to[] = {tag("user@example.com", 1, 0), NULL};
		CHECK_INT(data("", to, &v), FILTER_CONTINUE);
		CHECK_STR(v.note, "batv=pass");
	}
	{
		const char *to[] = {tag("user@example.com", 1, -8), NULL};
		CHECK_INT(data("", to, &v), FILTER_REJECT);
		CHECK(strstr(v.text, "(BATV tag expired)") != NULL);
		CHECK_STR(v.note, "batv=fail(expired)");
	}
	{
		const char *to[] = {"postmaster@example.com", NULL};
		CHECK_INT(data("", to, &v), FILTER_CONTINUE);
		CHECK_STR(v.note, "batv=exempt");
	}
	{
		const char *to[] = {"user@other.org", NULL};
		CHECK_INT(data("", to, &v), FILTER_CONTINUE);
		CHECK_STR(v.note, "");
	}
	{
		/* two valid tags: every recipient verifies */
		const char *to[] = {tag("a@example.com", 1, 0), tag("b@example.com", 0, 0), NULL};
		CHECK_INT(data("", to, &v), FILTER_CONTINUE);
		CHECK_STR(v.note, "batv=pass");
	}
	{
		/* valid + exempt: a bounce has one recipient */
		const char *to[] = {tag("a@example.com", 1, 0), "postmaster@example.com", NULL};
		CHECK_INT(data("", to, &v), FILTER_REJECT);
		CHECK_STR(v.text, "<postmaster@example.com>: address did not send this mail "
		    "(bounce to 2 recipients, not all with a valid BATV tag)");
		CHECK_STR(v.note, "batv=fail(multi_rcpt)");
	}
	{
		/* valid + failing: the failing one is named */
		const char *to[] = {"user@other.org", tag("a@example.com", 1, 0),
		    "prvs=1730000000=b@example.com", NULL};
		CHECK_INT(data("", to, &v), FILTER_REJECT);
		CHECK_STR(v.text, "<prvs=1730000000=b@example.com>: address did not send this mail "
		    "(invalid BATV signature)");
	}
	{
		/* a bounce_senders match is a bounce at DATA too */
		const char *to[] = {"user@example.com", NULL};
		CHECK_INT(data("MAILER-DAEMON@mx.remote.org", to, &v), FILTER_REJECT);
	}

	/* observe: accepted, marked, noted */
	set_mode(BATV_MODE_OBSERVE, BATV_REFUSE_DATA);
	{
		const char *to[] = {"user@example.com", NULL};
		CHECK_INT(data("", to, &v), FILTER_CONTINUE);
		CHECK_STR(v.headers, "X-Backstop-BATV: fail (no BATV tag) rcpt=user@example.com\r\n");
		CHECK_STR(v.note, "batv=fail(no_tag)");
		CHECK_STR(v.text, "");
	}
	{
		const char *to[] = {"x@example.com", tag("y@example.com", 1, -9), NULL};
		CHECK_INT(data("", to, &v), FILTER_CONTINUE);
		CHECK(strstr(v.headers, "X-Backstop-BATV: fail (no BATV tag) rcpt=x@example.com\r\n"
		    "X-Backstop-BATV: fail (BATV tag expired) rcpt=prvs=") == v.headers);
	}
	{
		/* a hostile address cannot inject a header field */
		const char *to[] = {"a\r\nX-Evil: 1@example.com", NULL};
		CHECK_INT(data("", to, &v), FILTER_CONTINUE);
		CHECK(strstr(v.headers, "\r\nX-Evil") == NULL);
		CHECK(strstr(v.headers, "\r\n") == v.headers + strlen(v.headers) - 2);
	}
	{
		const char *to[] = {tag("a@example.com", 1, 0), NULL};
		CHECK_INT(data("", to, &v), FILTER_CONTINUE);
		CHECK_STR(v.headers, "");
		CHECK_STR(v.note, "batv=pass");
	}
	set_mode(BATV_MODE_OFF, BATV_REFUSE_DATA);
	{
		const char *to[] = {"user@example.com", NULL};
		CHECK_INT(data("", to, &v), FILTER_CONTINUE);
		CHECK_STR(v.headers, "");
	}
}

/* env_out - an outbound environment: MAIL hook called at the first RCPT. */
static struct filter_env env_out(const char *from, const char *to,
    const char *const *rcpts, size_t n, const struct sockaddr_in *sa)
{
	struct filter_env e = env_in(from, to, rcpts, n);
	e.listener = "outbound";
	e.client_sa = (const struct sockaddr *)sa;
	e.client_ip = sa == &sin_local ? "127.0.0.1" : "192.0.2.7";
	return e;
}

/*
 * test_routed - bounces to recipients outside [batv] domains that the
 * backend could route to a protected mailbox (% hack, bang path, quoted
 * '@' or ':', address literals): refused at RCPT in enforce mode whatever
 * refuse_at says, marked at DATA in observe mode, left alone with
 * refuse_routed = no and for non-bounces.
 */
static void test_routed(void)
{
	static const char *const routed[] = {
		"user%example.com@[127.0.0.1]", "example.com!user@[127.0.0.1]",
		"\"user%example.com\"@[127.0.0.1]", "\"user@example.com\"@[127.0.0.1]",
		"\"@example.com:user\"@[127.0.0.1]", "user%example.com@localhost",
		"USER%EXAMPLE.COM@[127.0.0.1]", "user%example.com@[IPv6:::1]",
		"user%example.com%[127.0.0.1]@[127.0.0.1]", "example.com!user@mx.other.org",
		"user@[127.0.0.1]", "User@[IPv6:2001:db8::25]",
		"prvs=1730000000=user%example.com@[127.0.0.1]", "postmaster%example.com@[127.0.0.1]",
		NULL};
	static const char *const fine[] = {
		"user@other.org", "postmaster@[127.0.0.1]", "Abuse@[IPv6:::1]", "user@localhost",
		"\"john smith\"@other.org", "user+tag@other.org", NULL};
	struct filter_verdict v;

	for (int refuse_at = BATV_REFUSE_DATA; refuse_at <= BATV_REFUSE_RCPT; refuse_at++) {
		set_mode(BATV_MODE_ENFORCE, refuse_at);
		for (size_t i = 0; routed[i] != NULL; i++) {
			CHECK_INT(rcpt("", routed[i], &v), FILTER_REJECT);
			CHECK_INT(v.code, 550);
			CHECK_STR(v.esc, "5.7.1");
			CHECK(strstr(v.text, "bounces to routed addresses") != NULL);
			CHECK_STR(v.note, "batv=fail(routed)");
			CHECK_STR(v.rewrite, "");
			/* bounce_senders count as bounces */
			CHECK_INT(rcpt("MAILER-DAEMON@mx.remote.org", routed[i], &v), FILTER_REJECT);
			/* not a bounce: routing is the backend's business */
			CHECK_INT(rcpt("someone@remote.org", routed[i], &v), FILTER_CONTINUE);
		}
		for (size_t i = 0; fine[i] != NULL; i++)
			CHECK_INT(rcpt("", fine[i], &v), FILTER_CONTINUE);
	}
	/* a routed address inside a protected domain is BATV's ordinary case */
	set_mode(BATV_MODE_ENFORCE, BATV_REFUSE_RCPT);
	CHECK_INT(rcpt("", "user%other.org@example.com", &v), FILTER_REJECT);
	CHECK_STR(v.note, "batv=fail(no_tag)");
	CHECK_INT(rcpt("", "postmaster%other.org@example.com", &v), FILTER_REJECT);
	/* a literal listed in [batv] domains is ours: BATV decides */
	{
		static const char *const with_literal[] = {"example.com", "example.net",
		    "[127.0.0.1]", NULL};
		static const char *const domains[] = {"example.com", "example.net", NULL};
		words_set(&cfg->batv.domains, with_literal);
		CHECK_INT(rcpt("", "user@[127.0.0.1]", &v), FILTER_REJECT);
		CHECK_STR(v.note, "batv=fail(no_tag)");
		CHECK_INT(rcpt("", tag("user@[127.0.0.1]", 1, 0), &v), FILTER_CONTINUE);
		CHECK_STR(v.rewrite, "user@[127.0.0.1]");
		words_set(&cfg->batv.domains, domains);
	}
	/* observe: accepted at RCPT, marked at DATA */
	set_mode(BATV_MODE_OBSERVE, BATV_REFUSE_RCPT);
	CHECK_INT(rcpt("", routed[0], &v), FILTER_CONTINUE);
	{
		const char *one[] = {routed[0], NULL};
		CHECK_INT(data("", one, &v), FILTER_CONTINUE);
		CHECK_STR(v.note, "batv=fail(routed)");
		CHECK(strstr(v.headers, "X-Backstop-BATV: fail (routed recipient address) rcpt=user%example.com@[127.0.0.1]\r\n") != NULL);
	}
	/* enforce at DATA (a recipient that got in some other way): refused */
	set_mode(BATV_MODE_ENFORCE, BATV_REFUSE_DATA);
	{
		const char *one[] = {"example.com!user@[127.0.0.1]", NULL};
		CHECK_INT(data("", one, &v), FILTER_REJECT);
		CHECK_STR(v.note, "batv=fail(routed)");
		CHECK(strstr(v.text, "(routed recipient address)") != NULL);
	}
	/* refuse_routed = no: the old behaviour */
	cfg->batv.refuse_routed = false;
	for (size_t i = 0; routed[i] != NULL; i++)
		CHECK_INT(rcpt("", routed[i], &v), FILTER_CONTINUE);
	cfg->batv.refuse_routed = true;
	/* mode off: nothing */
	set_mode(BATV_MODE_OFF, BATV_REFUSE_RCPT);
	CHECK_INT(rcpt("", routed[0], &v), FILTER_CONTINUE);
	set_mode(BATV_MODE_ENFORCE, BATV_REFUSE_DATA);
}

/* test_outbound - allow list, signing, sign_exempt. */
static void test_outbound(void)
{
	struct filter_verdict v;
	struct filter_env e;
	char s[300];

	set_mode(BATV_MODE_ENFORCE, BATV_REFUSE_DATA);
	e = env_out("alice@example.com", NULL, NULL, 0, &sin_local);
	CHECK_INT(run(FILTER_CONNECT, &e, &v), FILTER_CONTINUE);
	e = env_out("alice@example.com", NULL, NULL, 0, &sin_remote);
	CHECK_INT(run(FILTER_CONNECT, &e, &v), FILTER_REJECT);
	CHECK_INT(v.code, 550);
	CHECK_STR(v.esc, "5.7.1");
	CHECK_STR(v.text, "relay access denied: 192.0.2.7 is not an internal MTA");
	/* the inbound listener has no allow list */
	e = env_in("alice@example.com", NULL, NULL, 0);
	CHECK_INT(run(FILTER_CONNECT, &e, &v), FILTER_CONTINUE);

	/* signing with sign_key 1 */
	e = env_out("Alice+x@Example.com", "bob@remote.org", NULL, 0, &sin_local);
	CHECK_INT(run(FILTER_MAIL, &e, &v), FILTER_CONTINUE);
	CHECK(strncmp(v.rewrite, "prvs=1", 6) == 0);
	CHECK_STR(v.note, "batv=signed");
	CHECK_INT(batv_check(&keys, v.rewrite, batv_today(), 7, s, sizeof s), BATV_VALID);
	CHECK_STR(s, "Alice+x@Example.com");
	CHECK_STR(v.rewrite, tag("Alice+x@Example.com", 1, 0));
	/* the lead may call it eagerly, without a recipient */
	e = env_out("alice@example.com", NULL, NULL, 0, &sin_local);
	CHECK_INT(run(FILTER_MAIL, &e, &v), FILTER_CONTINUE);
	CHECK_STR(v.note, "batv=signed");
	/* never: the null sender, a tagged sender, another domain, inbound */
	e = env_out("", "bob@remote.org", NULL, 0, &sin_local);
	CHECK_INT(run(FILTER_MAIL, &e, &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "");
	e = env_out(tag("alice@example.com", 1, 0), "bob@remote.org", NULL, 0, &sin_local);
	CHECK_INT(run(FILTER_MAIL, &e, &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "");
	e = env_out("PRVS=0000000000=alice@example.com", "bob@remote.org", NULL, 0, &sin_local);
	CHECK_INT(run(FILTER_MAIL, &e, &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "");
	e = env_out("carol@other.org", "bob@remote.org", NULL, 0, &sin_local);
	CHECK_INT(run(FILTER_MAIL, &e, &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "");
	e = env_in("alice@example.com", "bob@remote.org", NULL, 0);
	CHECK_INT(run(FILTER_MAIL, &e, &v), FILTER_CONTINUE);
	CHECK_STR(v.rewrite, "");
	/* an over-long sender goes out untagged rather than cut */
	{
		char longaddr[260];
		memset(longaddr, 'a', 240);
		strcpy(longaddr + 240, "@example.com");
		e = env_out(longaddr, "bob@remote.org", NULL, 0, &sin_local);
		CHECK_INT(run(FILTER_MAIL, &e, &v), FILTER_CONTINUE);
		CHECK_STR(v.rewrite, "");
	}

	/* sign_exempt: domain, subdomain pattern, address */
	static const char *const exempt_first[] = {"news@lists.example.net", "x@a.greylist.org",
	    "Peer@Friend.org"};
	for (size_t i = 0; i < 3; i++) {
		e = env_out("alice@example.com", exempt_first[i], NULL, 0, &sin_local);
		CHECK_INT(run(FILTER_MAIL, &e, &v), FILTER_CONTINUE);
		CHECK_STR(v.rewrite, "");
		CHECK_STR(v.note, "batv=exempt");
	}
	e = env_out("alice@example.com", "x@greylist.org", NULL, 0, &sin_local);
	CHECK_INT(run(FILTER_MAIL, &e, &v), FILTER_CONTINUE);
	CHECK(v.rewrite[0] != '\0');   /* ".greylist.org" is subdomains only */
	e = env_out("alice@example.com", "other@friend.org", NULL, 0, &sin_local);
	CHECK_INT(run(FILTER_MAIL, &e, &v), FILTER_CONTINUE);
	CHECK(v.rewrite[0] != '\0');

	/* one class per transaction */
	{
		const char *first_exempt[] = {"news@lists.example.net"};
		const char *first_normal[] = {"bob@remote.org"};
		e = env_out("alice@example.com", "carol@remote.org", first_exempt, 1, &sin_local);
		CHECK_INT(run(FILTER_RCPT, &e, &v), FILTER_TEMPFAIL);
		CHECK_INT(v.code, 452);
		CHECK_STR(v.esc, "4.5.3");
		CHECK_STR(v.text, "send mail to <carol@remote.org> in a separate transaction");
		e = env_out("alice@example.com", "digest@lists.example.net", first_exempt, 1, &sin_local);
		CHECK_INT(run(FILTER_RCPT, &e, &v), FILTER_CONTINUE);
		e = env_out("alice@example.com", "news@lists.example.net", first_normal, 1, &sin_local);
		CHECK_INT(run(FILTER_RCPT, &e, &v), FILTER_TEMPFAIL);
		e = env_out("alice@example.com", "carol@remote.org", first_normal, 1, &sin_local);
		CHECK_INT(run(FILTER_RCPT, &e, &v), FILTER_CONTINUE);
		/* the first recipient itself, and unsigned senders: no constraint */
		e = env_out("alice@example.com", "carol@remote.org", NULL, 0, &sin_local);
		CHECK_INT(run(FILTER_RCPT, &e, &v), FILTER_CONTINUE);
		e = env_out("carol@other.org", "carol@remote.org", first_exempt, 1, &sin_local);
		CHECK_INT(run(FILTER_RCPT, &e, &v), FILTER_CONTINUE);
		e = env_out("", "carol@remote.org", first_exempt, 1, &sin_local);
		CHECK_INT(run(FILTER_RCPT, &e, &v), FILTER_CONTINUE);
		/* outbound recipients are never BATV-checked or stripped */
		e = env_out("alice@example.com", tag("x@example.com", 1, -30), first_normal, 1, &sin_local);
		CHECK_INT(run(FILTER_RCPT, &e, &v), FILTER_CONTINUE);
		CHECK_STR(v.rewrite, "");
		const char *to[] = {"user@example.com"};
		e = env_out("", NULL, to, 1, &sin_local);
		CHECK_INT(run(FILTER_DATA, &e, &v), FILTER_CONTINUE);
	}
}

/* test_reload - init keeps the old keys when the new file is refused. */
static void test_reload(void)
{
	struct filter_verdict v;
	struct filter_env e;
	char err[512];

	CHECK(filter_batv.enabled(cfg));
	chmod(keys_path, 0644);
	CHECK_INT(filter_batv.init(SLOT, NULL, cfg, err, sizeof err), -1);
	CHECK(strstr(err, keys_path) == err);
	CHECK(strstr(err, "mode 0644") != NULL);
	CHECK(strstr(err, "secret") == NULL || strstr(err, "secrets") != NULL);
	/* the old keys are still in force */
	e = env_out("alice@example.com", "bob@remote.org", NULL, 0, &sin_local);
	CHECK_INT(run(FILTER_MAIL, &e, &v), FILTER_CONTINUE);
	CHECK_STR(v.note, "batv=signed");
	chmod(keys_path, 0600);

	/* sign_key must be in the file when [outbound] listens */
	cfg->batv.sign_key = 5;
	CHECK_INT(filter_batv.init(SLOT, NULL, cfg, err, sizeof err), -1);
	CHECK(strstr(err, "sign_key 5") != NULL);
	cfg->batv.sign_key = 1;

	/* a good reload: a new file with key 2 only; old tags now unknown */
	char path2[64];
	strcpy(path2, "/tmp/test_batv_filter_keys2.XXXXXX");
	int fd = mkstemp(path2);
	close(fd);
	write_file(path2, "2 rotated secret\n", 0600);
	free(cfg->batv.keys_file);
	cfg->batv.keys_file = strdup(path2);
	cfg->batv.sign_key = 2;
	CHECK_INT(filter_batv.init(SLOT, NULL, cfg, err, sizeof err), 0);
	set_mode(BATV_MODE_ENFORCE, BATV_REFUSE_RCPT);
	CHECK_INT(rcpt("", tag("user@example.com", 1, 0), &v), FILTER_REJECT);
	CHECK(strstr(v.text, "(unknown BATV key)") != NULL);
	unlink(path2);
	/* back to the first file */
	free(cfg->batv.keys_file);
	cfg->batv.keys_file = strdup(keys_path);
	cfg->batv.sign_key = 1;
	CHECK_INT(filter_batv.init(SLOT, NULL, cfg, err, sizeof err), 0);

	/* a reload without keys_file withdraws the keys (a leaked secret):
	 * the bounce check, which reads them, must not take its tags */
	free(cfg->batv.keys_file);
	cfg->batv.keys_file = strdup("");
	CHECK_INT(filter_batv.init(SLOT, NULL, cfg, err, sizeof err), 0);
	CHECK(batv_keys_current(&filters) == NULL);
	free(cfg->batv.keys_file);
	cfg->batv.keys_file = strdup(keys_path);
	CHECK_INT(filter_batv.init(SLOT, NULL, cfg, err, sizeof err), 0);
	CHECK(batv_keys_current(&filters) != NULL);

	/* shutdown forgets the keys: signing then tempfails */
	filter_batv.shutdown(SLOT);
	e = env_out("alice@example.com", "bob@remote.org", NULL, 0, &sin_local);
	CHECK_INT(run(FILTER_MAIL, &e, &v), FILTER_TEMPFAIL);
	CHECK_INT(v.code, 451);
	CHECK_INT(filter_batv.init(SLOT, NULL, cfg, err, sizeof err), 0);
}

/* cli - run batv_cli with stdout captured into out. */
static int cli(const char *verb, const char *addr, char *out, size_t cap)
{
	char *argv[] = {"batv", (char *)verb, (char *)addr, NULL};
	FILE *tmp = tmpfile();
	int saved = dup(1), rc;
	size_t n;

	fflush(stdout);
	dup2(fileno(tmp), 1);
	rc = batv_cli(addr ? 3 : 2, argv, cfg);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, cap - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	return rc;
}

/* test_cli - "backstop batv sign|verify ADDRESS". */
static void test_cli(void)
{
	char out[512], want[512];

	CHECK_INT(cli("sign", "alice@example.com", out, sizeof out), 0);
	snprintf(want, sizeof want, "%s\n", tag("alice@example.com", 1, 0));
	CHECK_STR(out, want);
	CHECK_INT(cli("sign", "<alice@example.com>", out, sizeof out), 0);
	CHECK_STR(out, want);
	CHECK_INT(cli("verify", tag("alice@example.com", 0, -2), out, sizeof out), 0);
	CHECK_STR(out, "valid alice@example.com\n");
	CHECK_INT(cli("verify", "alice@example.com", out, sizeof out), 1);
	CHECK_STR(out, "no BATV tag\n");
	CHECK_INT(cli("verify", tag("alice@example.com", 1, -30), out, sizeof out), 1);
	CHECK_STR(out, "BATV tag expired\n");
	CHECK_INT(cli("verify", "prvs=1730000000=alice@example.com", out, sizeof out), 1);
	CHECK_STR(out, "invalid BATV signature\n");
	CHECK_INT(cli("sign", tag("alice@example.com", 1, 0), out, sizeof out), 1);
	CHECK_STR(out, "");
	CHECK_INT(cli("sign", "alice", out, sizeof out), 1);
	CHECK_INT(cli("sign", "", out, sizeof out), 2);
	CHECK_INT(cli("frob", "alice@example.com", out, sizeof out), 2);
	CHECK_INT(cli("verify", NULL, out, sizeof out), 2);
}

int main(void)
{
	static const char *const domains[] = {"example.com", "example.net", NULL};
	static const char *const exempt[] = {"noc@example.com", "list-owner@*", NULL};
	static const char *const bounce_senders[] = {"MAILER-DAEMON@*", NULL};
	static const char *const sign_exempt[] = {"lists.example.net", ".greylist.org",
	    "peer@friend.org", NULL};
	static const char *const listen[] = {"127.0.0.1:10025", NULL};
	char err[512];

	sin_local.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &sin_local.sin_addr);
	sin_remote.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.7", &sin_remote.sin_addr);

	strcpy(keys_path, "/tmp/test_batv_filter_keys.XXXXXX");
	int fd = mkstemp(keys_path);
	close(fd);
	write_file(keys_path, "# rotation: 0 is the old key, 1 the current\n"
	    "0 old secret\n1 current secret\n", 0600);
	memset(&keys, 0, sizeof keys);
	keys.present[0] = keys.present[1] = true;
	memcpy(keys.secret[0], "old secret", keys.len[0] = 10);
	memcpy(keys.secret[1], "current secret", keys.len[1] = 14);

	cfg = config_defaults();
	CHECK(cfg != NULL);
	CHECK(!filter_batv.enabled(cfg));   /* off by default */
	words_set(&cfg->batv.domains, domains);
	words_set(&cfg->batv.exempt, exempt);
	words_set(&cfg->batv.bounce_senders, bounce_senders);
	words_set(&cfg->batv.sign_exempt, sign_exempt);
	words_set(&cfg->outbound.listen, listen);
	free(cfg->batv.keys_file);
	cfg->batv.keys_file = strdup(keys_path);
	cfg->batv.sign_key = 1;
	cfg->batv.validity_days = 7;
	set_mode(BATV_MODE_ENFORCE, BATV_REFUSE_DATA);
	CHECK_INT(filter_batv.init(SLOT, NULL, cfg, err, sizeof err), 0);

	test_rcpt_stage();
	test_data_stage();
	test_routed();
	test_outbound();
	test_reload();
	test_cli();

	filter_batv.shutdown(SLOT);
	unlink(keys_path);
	config_unref(cfg);
	return check_finish("test_batv_filter");
}

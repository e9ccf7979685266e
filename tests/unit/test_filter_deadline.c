/*
 * test_filter_deadline - the filter runner's deadline for a lost callback
 * (filters/README.md, "Asynchronous checks"), through the real session
 * code: backstop's server, sessions and runner in this process on its
 * libuv loop, a client and a fake backend MTA in threads over loopback TCP.
 *
 * The filter table is this file's own (it replaces filters/filters.c, whose
 * symbols all are defined here, so the linker never takes that member of
 * libfilters.a): two checks at MAIL FROM that answer FILTER_ASYNC and never
 * call filter_async_done() for senders lost@ (tempfail on timeout) and
 * soft@ (timeout_continues). The test checks that the runner answers after
 * the filter's async_timeout: 451 4.7.1 (or the backend's 250 with
 * timeout_continues), the log line naming the check, the pipelined command
 * behind it served, and that a verdict delivered after the deadline is
 * dropped, both while the session is idle and while the same check waits
 * again on a newer call (no second reply, no crash: run it under ASan too).
 * Without the deadline the session would sit until command_timeout (30 s
 * here) and every reply below would be missing.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "filters/filter.h"
#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/worker.h"
#include "tests/unit/check.h"

#define DEADLINE_MS 300      /* the test filters' async_timeout */
#define REPLY_WAIT_MS 5000   /* a reply later than this counts as missing */

/* ---- the filters: answer later, or never ---- */

/* The tokens of the calls left unanswered (the loop thread writes them
 * inside the hook, the client thread reads them after the reply that
 * follows, so the loop's write happened before). */
static struct filter_async lost_tokens[8];
static unsigned lost_calls, soft_calls;
static struct filter_async soft_token;

static uint64_t deadline_ms(const struct config *cfg)
{
	(void)cfg;
	return DEADLINE_MS;
}

static enum filter_result lost_mail(const struct filter_env *env, struct filter_verdict *v,
    const struct filter_async *async)
{
	(void)v;
	if (strncmp(env->mail_from, "lost@", 5) != 0)
		return FILTER_CONTINUE;
	if (lost_calls < sizeof lost_tokens / sizeof lost_tokens[0])
		lost_tokens[lost_calls] = *async;
	/* release: the client thread reads the token after it sees the count */
	__atomic_store_n(&lost_calls, lost_calls + 1, __ATOMIC_RELEASE);
	return FILTER_ASYNC;   /* and no callback: the runner must end the wait */
}

static enum filter_result soft_mail(const struct filter_env *env, struct filter_verdict *v,
    const struct filter_async *async)
{
	(void)v;
	if (strncmp(env->mail_from, "soft@", 5) != 0)
		return FILTER_CONTINUE;
	soft_token = *async;
	__atomic_store_n(&soft_calls, soft_calls + 1, __ATOMIC_RELEASE);
	return FILTER_ASYNC;
}

static const struct filter_ops filter_lost = {
	.name = "lost",
	.hook = { [FILTER_MAIL] = lost_mail },
	.async_timeout = deadline_ms,
};

static const struct filter_ops filter_soft = {
	.name = "soft",
	.hook = { [FILTER_MAIL] = soft_mail },
	.async_timeout = deadline_ms,
	.timeout_continues = true,
};

/* filters/filters.c's symbols, for this program */
const struct filter_ops *const filter_table[] = { &filter_lost, &filter_soft };
const size_t filter_table_len = sizeof filter_table / sizeof filter_table[0];

int filters_init(struct filter_loop *fl, const struct config *cfg, char *err, size_t errlen)
{
	(void)fl;
	(void)cfg;
	(void)err;
	(void)errlen;
	return 0;
}

void filters_shutdown(struct filter_loop *fl)
{
	(void)fl;
}

int filters_check(const struct config *cfg, char *err, size_t errlen)
{
	(void)cfg;
	(void)err;
	(void)errlen;
	return 0;
}

const char *filter_stage_name(enum filter_stage stage)
{
	static const char *const names[FILTER_STAGE_COUNT] = {
		"connect", "helo", "mail", "rcpt", "data", "eoh", "eod",
	};
	return (unsigned)stage < FILTER_STAGE_COUNT ? names[stage] : "?";
}

/* ---- late verdicts: delivered on the loop thread, on the client's word ---- */

struct late_request {
	const struct filter_async *tokens[2];
	struct filter_verdict verdicts[2];
	size_t n;
};

static uv_async_t late_async, stop_async;
static struct worker loop_owner;   /* the loop's state (proxy/worker.h) */
static struct late_request *late_pending;
static sem_t late_done;

static void on_late(uv_async_t *h)
{
	(void)h;
	if (late_pending == NULL)
		return;
	for (size_t i = 0; i < late_pending->n; i++)
		filter_async_done(late_pending->tokens[i], &late_pending->verdicts[i]);
	late_pending = NULL;
	sem_post(&late_done);
}

/* deliver - the verdicts, in order, in one loop callback (so nothing runs
 * between them); returns once they are delivered. */
static void deliver(struct late_request *r)
{
	late_pending = r;
	uv_async_send(&late_async);
	while (sem_wait(&late_done) < 0 && errno == EINTR)
		;
}

static void verdict_set(struct filter_verdict *v, enum filter_result result, int code,
    const char *text)
{
	memset(v, 0, sizeof *v);
	v->result = result;
	v->code = code;
	snprintf(v->text, sizeof v->text, "%s", text);
}

static void on_stop(uv_async_t *h)
{
	(void)h;
	uv_stop(uv_default_loop());
}

/* ---- the fake backend: one thread per connection ---- */

static void *backend_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char line[1024], c;
	size_t len = 0;
	bool in_data = false;

	dprintf(fd, "220 fake.example.net ESMTP\r\n");
	while (read(fd, &c, 1) == 1) {
		if (c != '\n') {
			if (len + 1 < sizeof line)
				line[len++] = c;
			continue;
		}
		if (len > 0 && line[len - 1] == '\r')
			len--;
		line[len] = '\0';
		len = 0;
		if (in_data) {
			if (strcmp(line, ".") == 0) {
				in_data = false;
				dprintf(fd, "250 2.0.0 Ok: queued\r\n");
			}
		} else if (strncasecmp(line, "EHLO", 4) == 0) {
			dprintf(fd, "250-fake.example.net\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n");
		} else if (strncasecmp(line, "MAIL", 4) == 0) {
			dprintf(fd, "250 2.1.0 backend says Ok\r\n");
		} else if (strncasecmp(line, "RCPT", 4) == 0) {
			/* a backend that does not relay for backstop's address
			 * (the start-up probe's relay check) */
			dprintf(fd, strstr(line, "relay-check.invalid") ? "554 5.7.1 Relay access denied\r\n" :
			    "250 2.1.5 Ok\r\n");
		} else if (strncasecmp(line, "DATA", 4) == 0) {
			dprintf(fd, "354 go\r\n");
			in_data = true;
		} else if (strncasecmp(line, "QUIT", 4) == 0) {
			dprintf(fd, "221 2.0.0 Bye\r\n");
			break;
		} else {
			dprintf(fd, "250 2.0.0 Ok\r\n");
		}
	}
	close(fd);
	return NULL;
}

static void *backend_accept(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd;
	pthread_t t;

	while ((fd = accept(lfd, NULL, NULL)) >= 0) {
		if (pthread_create(&t, NULL, backend_conn, (void *)(intptr_t)fd) != 0)
			close(fd);
		else
			pthread_detach(t);
	}
	return NULL;
}

static int listen_loopback(unsigned *port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	*port = ntohs(sa.sin_port);
	return fd;
}

/* ---- the client ---- */

static unsigned listen_port;
static char log_path[] = "/tmp/test_filter_deadline-XXXXXX";

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct client {
	int fd;
	char buf[8192];
	size_t len;
};

/* reply - the next whole reply (its last line, "NNN ..."), waiting at most
 * ms; "" when none came. */
static const char *reply(struct client *c, int ms, char *out, size_t outlen)
{
	uint64_t until = now_ms() + (uint64_t)ms;

	out[0] = '\0';
	for (;;) {
		char *eol;
		while ((eol = memmem(c->buf, c->len, "\r\n", 2)) != NULL) {
			size_t l = (size_t)(eol - c->buf);
			bool last = l >= 4 && c->buf[3] == ' ';
			if (last)
				snprintf(out, outlen, "%.*s", (int)l, c->buf);
			memmove(c->buf, eol + 2, c->len - l - 2);
			c->len -= l + 2;
			if (last)
				return out;
		}
		uint64_t now = now_ms();
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		if (now >= until || poll(&p, 1, (int)(until - now)) <= 0)
			return out;
		ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
		if (n <= 0)
			return out;
		c->len += (size_t)n;
	}
}

static void say(struct client *c, const char *s)
{
	if (write(c->fd, s, strlen(s)) != (ssize_t)strlen(s))
		perror("write");
}

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* log_has - does the log file hold a line containing text? */
static bool log_has(const char *text)
{
	char line[2048];
	bool found = false;
	FILE *f = fopen(log_path, "r");

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof line, f) != NULL)
		found = strstr(line, text) != NULL;
	fclose(f);
	return found;
}

static void *client_main(void *arg)
{
	struct client c = { .fd = -1 };
	struct sockaddr_in sa;
	struct late_request late;
	char r[1024];
	uint64_t t0, took;

	(void)arg;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)listen_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c.fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c.fd < 0 || connect(c.fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("connect");
		check_failed++;
		goto out;
	}
	CHECK(starts(reply(&c, REPLY_WAIT_MS, r, sizeof r), "220 "));
	say(&c, "EHLO client.example.com\r\n");
	CHECK(starts(reply(&c, REPLY_WAIT_MS, r, sizeof r), "250 "));

	/* 1. a lost callback: the runner's tempfail after the deadline; the
	 * NOOP pipelined behind MAIL waits for it and is served after */
	t0 = now_ms();
	say(&c, "MAIL FROM:<lost@example.com>\r\nNOOP\r\n");
	reply(&c, REPLY_WAIT_MS, r, sizeof r);
	took = now_ms() - t0;
	CHECK_STR(r, "451 4.7.1 Error: the lost check timed out, try again later");
	CHECK(took >= DEADLINE_MS - 50);
	CHECK(took < REPLY_WAIT_MS);
	CHECK_INT(lost_calls, 1);
	CHECK(starts(reply(&c, REPLY_WAIT_MS, r, sizeof r), "250 "));
	CHECK(log_has("check lost did not answer within 300 ms at mail; temporary failure"));

	/* 2. its verdict, delivered now (the session idle between commands),
	 * is dropped: no reply of its own, the next command's reply is the
	 * next reply */
	late.n = 1;
	late.tokens[0] = &lost_tokens[0];
	verdict_set(&late.verdicts[0], FILTER_REJECT, 550, "late verdict 1");
	deliver(&late);
	CHECK_STR(reply(&c, 300, r, sizeof r), "");
	say(&c, "NOOP\r\n");
	CHECK(starts(reply(&c, REPLY_WAIT_MS, r, sizeof r), "250 "));

	/* 3. the same check waits again (a second MAIL): the first call's
	 * verdict comes first and is dropped (an older call), the second
	 * call's is the answer */
	say(&c, "MAIL FROM:<lost@example.com>\r\n");
	while (__atomic_load_n(&lost_calls, __ATOMIC_ACQUIRE) < 2 && now_ms() - t0 < 30000)
		usleep(1000);
	CHECK_INT(lost_calls, 2);
	late.n = 2;
	late.tokens[0] = &lost_tokens[0];
	verdict_set(&late.verdicts[0], FILTER_REJECT, 550, "late verdict 1 again");
	late.tokens[1] = &lost_tokens[1];
	verdict_set(&late.verdicts[1], FILTER_TEMPFAIL, 452, "the answer to the second call");
	deliver(&late);
	CHECK_STR(reply(&c, REPLY_WAIT_MS, r, sizeof r), "452 4.7.1 the answer to the second call");
	/* and no reply from the deadline of that call: it was answered */
	CHECK_STR(reply(&c, 2 * DEADLINE_MS, r, sizeof r), "");

	/* 4. timeout_continues: the runner goes on without the check, the
	 * MAIL reaches the backend */
	t0 = now_ms();
	say(&c, "MAIL FROM:<soft@example.com>\r\n");
	reply(&c, REPLY_WAIT_MS, r, sizeof r);
	took = now_ms() - t0;
	CHECK_STR(r, "250 2.1.0 backend says Ok");
	CHECK(took >= DEADLINE_MS - 50);
	CHECK_INT(soft_calls, 1);
	CHECK(log_has("check soft did not answer within 300 ms at mail; going on without it"));
	/* its late refusal is dropped too: the transaction goes on */
	late.n = 1;
	late.tokens[0] = &soft_token;
	verdict_set(&late.verdicts[0], FILTER_REJECT, 550, "late verdict soft");
	deliver(&late);
	CHECK_STR(reply(&c, 300, r, sizeof r), "");
	say(&c, "RCPT TO:<someone@example.net>\r\n");
	CHECK(starts(reply(&c, REPLY_WAIT_MS, r, sizeof r), "250 "));
	say(&c, "QUIT\r\n");
	CHECK(starts(reply(&c, REPLY_WAIT_MS, r, sizeof r), "221 "));
out:
	if (c.fd >= 0)
		close(c.fd);
	uv_async_send(&stop_async);
	return NULL;
}

int main(void)
{
	static char err[8192];
	char cfg_path[] = "/tmp/test_filter_deadline-cfg-XXXXXX";
	unsigned backend_port, dns_port;
	struct config *cfg;
	pthread_t backend_t, client_t;
	int backend_fd, dns_fd, fd;
	FILE *f;

	signal(SIGPIPE, SIG_IGN);
	if ((backend_fd = listen_loopback(&backend_port)) < 0 ||
	    (dns_fd = listen_loopback(&dns_port)) < 0 ||   /* a port nobody answers on */
	    (fd = listen_loopback(&listen_port)) < 0) {
		perror("test_filter_deadline: loopback socket");
		return 99;
	}
	close(fd);   /* backstop binds it */
	if ((fd = mkstemp(log_path)) < 0) {
		perror("mkstemp");
		return 99;
	}
	close(fd);
	unlink(log_path);   /* log_configure creates it */
	if ((fd = mkstemp(cfg_path)) < 0 || (f = fdopen(fd, "w")) == NULL) {
		perror("mkstemp");
		return 99;
	}
	/* the session's own timers far beyond the filters' deadline: only
	 * the runner can answer within REPLY_WAIT_MS */
	fprintf(f,
	    "[server]\nlisten = 127.0.0.1:%u\nhostname = test.example.org\n"
	    "[backend]\naddress = 127.0.0.1:%u\nconnect_timeout = 5s\ncommand_timeout = 5s\n"
	    "pool_size = 0\n"
	    "[limits]\ngreeting_timeout = 30s\ncommand_timeout = 30s\nsession_timeout = 60s\n"
	    "[log]\nlevel = info\ndestination = file\nfile = %s\n"
	    "[dns]\nservers = 127.0.0.1:%u\ntimeout = 1s\nreverse_lookup = no\n",
	    listen_port, backend_port, log_path, dns_port);
	fclose(f);
	cfg = config_load(cfg_path, err, sizeof err);
	unlink(cfg_path);
	if (cfg == NULL) {
		fprintf(stderr, "test_filter_deadline: %s\n", err);
		return 99;
	}
	worker_init(&loop_owner, uv_default_loop());
	loop_owner.filters.loop = loop_owner.loop;
	if (log_configure(cfg, false, err, sizeof err) < 0 ||
	    (loop_owner.dns = dns_new(loop_owner.loop, cfg, err, sizeof err)) == NULL ||
	    server_listen(&loop_owner, cfg) < 0) {
		fprintf(stderr, "test_filter_deadline: %s\n", err);
		return 99;
	}
	sem_init(&late_done, 0, 0);
	uv_async_init(uv_default_loop(), &late_async, on_late);
	uv_async_init(uv_default_loop(), &stop_async, on_stop);
	if (pthread_create(&backend_t, NULL, backend_accept, (void *)(intptr_t)backend_fd) != 0)
		return 99;
	pthread_detach(backend_t);
	server_run(&loop_owner, false);
	if (pthread_create(&client_t, NULL, client_main, NULL) != 0)
		return 99;
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	pthread_join(client_t, NULL);
	if (check_failed) {
		fprintf(stderr, "--- %s\n", log_path);
		f = fopen(log_path, "r");
		while (f != NULL && fgets(err, sizeof err, f) != NULL)
			fputs(err, stderr);
		if (f != NULL)
			fclose(f);
	}
	unlink(log_path);
	close(dns_fd);
	return check_finish("test_filter_deadline");
}

/*
 * smtp_blast - send one prepared message N times, one new connection per
 * message, CONC transactions at once (a load generator for content_bench.sh;
 * smtp-source cannot send a prepared, DKIM-signed message).
 *
 *   smtp_blast -c CONC -n N [-H helo] [-f sender] [-t rcpt] [-T seconds] HOST:PORT FILE
 *
 * FILE is the message as it should arrive (CRLF line ends, not
 * dot-stuffed); smtp_blast dot-stuffs it once, up front, and ends it with
 * CRLF.CRLF. Each transaction: connect, 220, EHLO, MAIL, RCPT, DATA, 354,
 * content, 250, QUIT, close; no pipelining, like smtp-source. Every reply
 * must be the expected 2xx/3xx, else the transaction counts as failed (the
 * first failure is printed). One thread and epoll: the generator costs as
 * little CPU as the protocol allows; it prints its own CPU time (getrusage)
 * so that the caller can compare it with the server's.
 *
 * Output, one line:
 *   ok=K failed=F wall=S rate=R/s lat_ms_p50=A lat_ms_p95=B cpu_user=U cpu_sys=V
 * (latency: connect to the reply after the final dot). Exit 0 when all N
 * transactions succeeded, 1 otherwise, 2 on a usage or setup error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum step { S_CONNECT, S_GREETING, S_EHLO, S_MAIL, S_RCPT, S_DATA, S_CONTENT, S_QUIT, S_IDLE };

struct conn {
	int fd;
	enum step step;
	const char *out;	/* pending output (a command or the message) */
	size_t outlen;
	char in[4096];		/* reply bytes not yet parsed */
	size_t inlen;
	double t0;
};

static struct sockaddr_in target;
static const char *helo = "client.example.org", *sender = "sender@example.org",
		  *rcpt = "user@test.example";
static char *content;		/* dot-stuffed message ending in CRLF.CRLF */
static size_t content_len;
static char cmd_ehlo[600], cmd_mail[600], cmd_rcpt[600];
static long total, started, ok, failed;
static double *lat;
static int ep;
static char first_error[512];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(struct conn *c, const char *fmt, ...)
{
	if (!first_error[0]) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(first_error, sizeof(first_error), fmt, ap);
		va_end(ap);
	}
	failed++;
	close(c->fd);
	c->fd = -1;
	c->step = S_IDLE;
}

static void set_events(struct conn *c, unsigned ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) < 0) {
		perror("epoll_ctl");
		exit(2);
	}
}

static void start(struct conn *c)
{
	struct epoll_event e = { .events = EPOLLOUT, .data.ptr = c };
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		perror("socket");
		exit(2);
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	started++;
	c->step = S_CONNECT;
	c->inlen = 0;
	c->outlen = 0;
	c->t0 = now();
	if (connect(c->fd, (struct sockaddr *)&target, sizeof(target)) < 0 && errno != EINPROGRESS) {
		fail(c, "connect: %s", strerror(errno));
		return;
	}
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) < 0) {
		perror("epoll_ctl");
		exit(2);
	}
}

static void send_out(struct conn *c, const char *data, size_t len)
{
	c->out = data;
	c->outlen = len;
	set_events(c, EPOLLOUT);
}

static void flush_out(struct conn *c)
{
	while (c->outlen > 0) {
		ssize_t n = write(c->fd, c->out, c->outlen);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			fail(c, "write: %s", strerror(errno));
			return;
		}
		c->out += n;
		c->outlen -= (size_t)n;
	}
	set_events(c, EPOLLIN);
}

/* one complete reply with this code arrived in step c->step */
static void on_reply(struct conn *c, int code, const char *line)
{
	static const int want[] = { [S_GREETING] = 220, [S_EHLO] = 250, [S_MAIL] = 250,
				    [S_RCPT] = 250, [S_DATA] = 354, [S_CONTENT] = 250, [S_QUIT] = 221 };

	if (code != want[c->step]) {
		fail(c, "step %d: expected %d, got: %.200s", c->step, want[c->step], line);
		return;
	}
	switch (c->step) {
	case S_GREETING:
		c->step = S_EHLO;
		send_out(c, cmd_ehlo, strlen(cmd_ehlo));
		break;
	case S_EHLO:
		c->step = S_MAIL;
		send_out(c, cmd_mail, strlen(cmd_mail));
		break;
	case S_MAIL:
		c->step = S_RCPT;
		send_out(c, cmd_rcpt, strlen(cmd_rcpt));
		break;
	case S_RCPT:
		c->step = S_DATA;
		send_out(c, "DATA\r\n", 6);
		break;
	case S_DATA:
		c->step = S_CONTENT;
		send_out(c, content, content_len);
		break;
	case S_CONTENT:
		lat[ok] = now() - c->t0;
		ok++;
		c->step = S_QUIT;
		send_out(c, "QUIT\r\n", 6);
		break;
	case S_QUIT:
		close(c->fd);
		c->fd = -1;
		c->step = S_IDLE;
		break;
	default:
		break;
	}
}

static void on_readable(struct conn *c)
{
	for (;;) {
		ssize_t n = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);

		if (n == 0) {
			fail(c, "step %d: connection closed by the server", c->step);
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			fail(c, "step %d: read: %s", c->step, strerror(errno));
			return;
		}
		c->inlen += (size_t)n;
		/* complete lines: "ddd-..." continues, "ddd ..." ends the reply */
		char *p = c->in, *end = c->in + c->inlen, *nl;

		while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
			char *line = p;

			p = nl + 1;
			if (nl - line >= 3 && (nl - line == 3 || line[3] != '-')) {
				int code = atoi(line);
				enum step was = c->step;

				*nl = '\0';
				on_reply(c, code, line);
				if (c->step == S_IDLE || c->step == was)
					return;
				if (p != end) {	/* a reply before we asked: not SMTP as we know it */
					fail(c, "step %d: unexpected extra reply bytes", was);
					return;
				}
				c->inlen = 0;
				return;
			}
		}
		memmove(c->in, p, (size_t)(end - p));
		c->inlen = (size_t)(end - p);
		if (c->inlen == sizeof(c->in)) {
			fail(c, "step %d: reply line too long", c->step);
			return;
		}
	}
}

static void on_event(struct conn *c, unsigned ev)
{
	if (c->step == S_CONNECT) {
		int err = 0;
		socklen_t l = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			fail(c, "connect: %s", strerror(err));
			return;
		}
		c->step = S_GREETING;
		set_events(c, EPOLLIN);
		return;
	}
	if (c->outlen > 0) {
		if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			flush_out(c);
		return;
	}
	on_readable(c);
}

static void load(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;

	if (!f || fstat(fileno(f), &st) < 0) {
		perror(path);
		exit(2);
	}
	char *raw = malloc((size_t)st.st_size + 1);

	if (!raw || fread(raw, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		perror(path);
		exit(2);
	}
	fclose(f);
	/* worst case every line starts with a dot: at most doubles, plus the end */
	content = malloc(2 * (size_t)st.st_size + 8);
	if (!content) {
		perror("malloc");
		exit(2);
	}
	size_t o = 0;
	int bol = 1;

	for (off_t i = 0; i < st.st_size; i++) {
		if (bol && raw[i] == '.')
			content[o++] = '.';
		content[o++] = raw[i];
		bol = raw[i] == '\n';
	}
	if (o > 0 && !bol) {
		content[o++] = '\r';
		content[o++] = '\n';
	}
	memcpy(content + o, ".\r\n", 3);
	content_len = o + 3;
	free(raw);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void usage(void)
{
	fprintf(stderr, "usage: smtp_blast -c CONC -n N [-H helo] [-f sender] [-t rcpt] "
			"[-T seconds] HOST:PORT FILE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long conc = 1;
	double limit = 120;
	int opt;

	while ((opt = getopt(argc, argv, "c:n:H:f:t:T:")) != -1) {
		switch (opt) {
		case 'c': conc = atol(optarg); break;
		case 'n': total = atol(optarg); break;
		case 'H': helo = optarg; break;
		case 'f': sender = optarg; break;
		case 't': rcpt = optarg; break;
		case 'T': limit = atof(optarg); break;
		default: usage();
		}
	}
	if (argc - optind != 2 || conc < 1 || total < 1)
		usage();
	char *hp = strdup(argv[optind]), *colon = strrchr(hp, ':');

	if (!colon)
		usage();
	*colon = '\0';
	target.sin_family = AF_INET;
	target.sin_port = htons((unsigned short)atoi(colon + 1));
	if (inet_pton(AF_INET, hp, &target.sin_addr) != 1)
		usage();
	load(argv[optind + 1]);
	snprintf(cmd_ehlo, sizeof(cmd_ehlo), "EHLO %s\r\n", helo);
	snprintf(cmd_mail, sizeof(cmd_mail), "MAIL FROM:<%s>\r\n", sender);
	snprintf(cmd_rcpt, sizeof(cmd_rcpt), "RCPT TO:<%s>\r\n", rcpt);
	if (conc > total)
		conc = total;
	lat = calloc((size_t)total, sizeof(*lat));
	struct conn *conns = calloc((size_t)conc, sizeof(*conns));
	struct epoll_event *evs = calloc((size_t)conc, sizeof(*evs));

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!lat || !conns || !evs || ep < 0) {
		perror("setup");
		return 2;
	}
	double t0 = now(), deadline = t0 + limit;

	for (long i = 0; i < conc; i++)
		start(&conns[i]);
	long active = conc;

	while (active > 0) {
		int n = epoll_wait(ep, evs, (int)conc, 1000);

		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			return 2;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->fd >= 0)
				on_event(c, evs[i].events);
		}
		/* finished connections start the next message, or retire */
		active = 0;
		for (long i = 0; i < conc; i++) {
			struct conn *c = &conns[i];

			while (c->step == S_IDLE && started < total)
				start(c);
			if (c->step != S_IDLE)
				active++;
		}
		if (now() > deadline) {
			fprintf(stderr, "smtp_blast: time limit (%.0f s) reached, %ld active\n", limit, active);
			failed += total - ok - failed;
			break;
		}
	}
	double wall = now() - t0;
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	qsort(lat, (size_t)ok, sizeof(*lat), cmp_double);
	printf("ok=%ld failed=%ld wall=%.3f rate=%.0f/s lat_ms_p50=%.2f lat_ms_p95=%.2f "
	       "cpu_user=%.3f cpu_sys=%.3f\n",
	       ok, failed, wall, (double)ok / wall, ok ? 1e3 * lat[ok / 2] : 0,
	       ok ? 1e3 * lat[(size_t)((double)ok * 0.95)] : 0,
	       (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	if (first_error[0])
		fprintf(stderr, "smtp_blast: first failure: %s\n", first_error);
	return ok == total && failed == 0 ? 0 : 1;
}

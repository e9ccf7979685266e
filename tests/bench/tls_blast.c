/*
 * tls_blast - STARTTLS sessions against an SMTP server as cheaply as a
 * client can: CONC threads, each running whole sessions one after the
 * other until N are done. A session: connect, 220, EHLO, STARTTLS, 220,
 * TLS handshake (no session resumption, no certificate check), EHLO, then
 * with -m one transaction (MAIL, RCPT, DATA, a small message, 250), QUIT.
 * (The Python generator of tls_bench.sh costs several times backstop's own
 * CPU per session: on a small machine it, not backstop, set the rate.)
 *
 *   tls_blast -c CONC -n N [-m] HOST:PORT
 *
 * Output, one line:  ok=K failed=F wall=S rate=R/s cpu=U
 * (cpu: the generator's own user+system seconds). Exit 0 when all N
 * succeeded, 1 otherwise, 2 on a usage or setup error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in server;
static SSL_CTX *ctx;
static atomic_long next_session, ok_count, failed_count;
static long total;
static bool with_message;
static char first_error[256];
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;

struct conn {
	int fd;
	SSL *ssl;
	char buf[4096];
	size_t len;
};

static void fail(const char *what)
{
	pthread_mutex_lock(&error_lock);
	if (first_error[0] == '\0')
		snprintf(first_error, sizeof first_error, "%s", what);
	pthread_mutex_unlock(&error_lock);
}

static int io_read(struct conn *c, char *p, size_t n)
{
	return c->ssl ? SSL_read(c->ssl, p, (int)n) : (int)read(c->fd, p, n);
}

static int send_line(struct conn *c, const char *s)
{
	size_t n = strlen(s);
	int w = c->ssl ? SSL_write(c->ssl, s, (int)n) : (int)write(c->fd, s, n);
	return w == (int)n ? 0 : -1;
}

/* reply - read one whole reply; its code, or -1 */
static int reply(struct conn *c)
{
	for (;;) {
		char *nl;
		while ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
			size_t line = (size_t)(nl - c->buf) + 1;
			bool last = line >= 4 && c->buf[3] != '-';
			int code = atoi(c->buf);
			memmove(c->buf, nl + 1, c->len - line);
			c->len -= line;
			if (last)
				return code;
		}
		if (c->len == sizeof c->buf)
			return -1;
		int r = io_read(c, c->buf + c->len, sizeof c->buf - c->len);
		if (r <= 0)
			return -1;
		c->len += (size_t)r;
	}
}

static int cmd(struct conn *c, const char *line, int want)
{
	if (send_line(c, line) < 0)
		return -1;
	return reply(c) == want ? 0 : -1;
}

static const char message[] =
    "From: <bench@client.example>\r\nTo: <user@test.example>\r\nSubject: tls_blast\r\n\r\n"
    "A short message, sent over STARTTLS.\r\n.\r\n";

static int session(void)
{
	struct conn c = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
	int one = 1, rc = -1;

	if (c.fd < 0)
		return -1;
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c.fd, (struct sockaddr *)&server, sizeof server) < 0) {
		fail("connect");
		goto out;
	}
	if (reply(&c) != 220 || cmd(&c, "EHLO bench.client.example\r\n", 250) < 0 ||
	    cmd(&c, "STARTTLS\r\n", 220) < 0) {
		fail("greeting, EHLO or STARTTLS");
		goto out;
	}
	c.ssl = SSL_new(ctx);
	SSL_set_fd(c.ssl, c.fd);
	if (c.len != 0 || SSL_connect(c.ssl) != 1) {
		fail("TLS handshake");
		goto out;
	}
	if (cmd(&c, "EHLO bench.client.example\r\n", 250) < 0) {
		fail("EHLO after STARTTLS");
		goto out;
	}
	if (with_message && (cmd(&c, "MAIL FROM:<bench@client.example>\r\n", 250) < 0 ||
	    cmd(&c, "RCPT TO:<user@test.example>\r\n", 250) < 0 || cmd(&c, "DATA\r\n", 354) < 0 ||
	    cmd(&c, message, 250) < 0)) {
		fail("the transaction");
		goto out;
	}
	if (cmd(&c, "QUIT\r\n", 221) < 0) {
		fail("QUIT");
		goto out;
	}
	rc = 0;
out:
	if (c.ssl) {
		SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	close(c.fd);
	return rc;
}

static void *worker(void *arg)
{
	(void)arg;
	while (atomic_fetch_add(&next_session, 1) < total) {
		if (session() == 0)
			atomic_fetch_add(&ok_count, 1);
		else
			atomic_fetch_add(&failed_count, 1);
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int conc = 16, opt;
	char host[64];
	unsigned port;

	total = 1000;
	while ((opt = getopt(argc, argv, "c:n:m")) != -1) {
		switch (opt) {
		case 'c': conc = atoi(optarg); break;
		case 'n': total = atol(optarg); break;
		case 'm': with_message = true; break;
		default: goto usage;
		}
	}
	if (optind + 1 != argc || sscanf(argv[optind], "%63[^:]:%u", host, &port) != 2 || conc < 1)
		goto usage;
	server.sin_family = AF_INET;
	server.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &server.sin_addr) != 1)
		goto usage;
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		return 2;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* a full handshake each time, as from a new client */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);

	pthread_t *threads = calloc((size_t)conc, sizeof *threads);
	double t0 = now();
	for (int i = 0; i < conc; i++)
		pthread_create(&threads[i], NULL, worker, NULL);
	for (int i = 0; i < conc; i++)
		pthread_join(threads[i], NULL);
	double wall = now() - t0;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("ok=%ld failed=%ld wall=%.3f rate=%.1f/s cpu=%.2f%s%s\n", (long)ok_count, (long)failed_count,
	    wall, (double)ok_count / wall,
	    (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
	    first_error[0] ? " first_error=" : "", first_error);
	return failed_count == 0 ? 0 : 1;
usage:
	fprintf(stderr, "usage: tls_blast -c CONC -n N [-m] HOST:PORT\n");
	return 2;
}

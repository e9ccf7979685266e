/*
 * test_tls - the TLS engine end to end in memory: a server tls_conn and a
 * client tls_conn (or a raw OpenSSL client for what backstop must refuse)
 * with the ciphertext shuttled between them at odd sizes.
 *
 * Certificates come from certs/make-test-ca.sh and certs/make-self-signed.sh
 * run into a temporary directory ($srcdir is honoured, as automake sets it);
 * no key is committed. Run under ASan: every case frees everything.
 */
#ifndef _GNU_SOURCE
#define _DEFAULT_SOURCE  /* mkdtemp, and MAP_ANONYMOUS in check.h */
#endif
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proxy/config.h"
#include "proxy/tls.h"
#include "tests/unit/check.h"

static char dir[64];
static int queue_dirty;     /* reads that left the OpenSSL error queue dirty */

static char **paths;
static size_t npaths;

/* path - a file in the temporary certificate directory; the strings live
 * until paths_free() so that configs can point at them. */
static char *path(const char *name)
{
	char *b = malloc(strlen(dir) + strlen(name) + 2);
	sprintf(b, "%s/%s", dir, name);
	paths = realloc(paths, (npaths + 1) * sizeof *paths);
	paths[npaths++] = b;
	return b;
}

static void paths_free(void)
{
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
}

/* base_cfg - the config.c defaults for [tls] and [backend], test CA certs. */
static void base_cfg(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->tls.certificate = path("backstop-fullchain.crt");
	cfg->tls.key = path("backstop.key");
	cfg->tls.protocols = "TLSv1.2 TLSv1.3";
	cfg->tls.ciphers =
	    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
	    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";
	cfg->tls.ciphersuites =
	    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
	cfg->tls.groups = "X25519:prime256v1:secp384r1";
	cfg->backend.tls = BACKEND_TLS_REQUIRED;
	cfg->backend.ca_file = path("ca.crt");
	cfg->backend.verify_name = "backstop.test.example";
}

/* ---- one end of a connection, collecting its plaintext ------------------ */

struct end {
	struct tls_conn *conn;
	size_t rcap;          /* read buffer size, odd on purpose */
	char *in;             /* plaintext received */
	size_t inlen;
	int last;             /* last tls_conn_read status */
	bool failed, closed;
};

/* end_read - read until the engine wants more, appending plaintext. */
static void end_read(struct end *e)
{
	char buf[70000];
	size_t got;
	int rc;

	do {
		size_t cap = e->rcap < sizeof buf ? e->rcap : sizeof buf;
		rc = tls_conn_read(e->conn, buf, cap, &got);
		if (got > 0) {
			e->in = realloc(e->in, e->inlen + got);
			memcpy(e->in + e->inlen, buf, got);
			e->inlen += got;
		}
	} while (rc == TLS_OK);
	e->last = rc;
	if (rc == TLS_ERROR)
		e->failed = true;
	if (rc == TLS_CLOSED)
		e->closed = true;
	if (ERR_peek_error() != 0)   /* the queue is always left empty */
		queue_dirty++;
}

/* move - ciphertext from a to b in chunks of `chunk`, reading after each,
 * half through pending/consume and half through take. Returns bytes moved. */
static size_t move(struct end *a, struct end *b, size_t chunk)
{
	size_t total = 0;
	const char *p;
	size_t n;

	while ((n = tls_conn_pending(a->conn, &p)) > 0) {
		char buf[65536];
		if (n > chunk)
			n = chunk;
		if (n > sizeof buf)
			n = sizeof buf;
		if (total % 2 == 0) {
			memcpy(buf, p, n);
			tls_conn_consume(a->conn, n);
		} else {
			n = tls_conn_take(a->conn, buf, n);
		}
		total += n;
		if (tls_conn_feed(b->conn, buf, n) != TLS_OK)
			b->failed = true;
		end_read(b);
	}
	return total;
}

/* run - shuttle until neither side has anything to say. */
static void run(struct end *s, struct end *c, size_t chunk)
{
	end_read(c); /* the client speaks first */
	for (int i = 0; i < 1000; i++)
		if (move(c, s, chunk) + move(s, c, chunk) == 0)
			break;
}

static void end_free(struct end *e)
{
	if (getenv("TEST_VERBOSE") != NULL && e->conn != NULL && tls_conn_error(e->conn)[0] != '\0')
		fprintf(stderr, "  %s: %s\n", __func__, tls_conn_error(e->conn));
	tls_conn_free(e->conn);
	free(e->in);
	memset(e, 0, sizeof *e);
}

/* pair - a server and client conn over cfg; NULL ends on failure. */
static void pair(const struct config *cfg, struct end *s, struct end *c,
    const char *name, bool verify)
{
	char err[512];
	struct tls_server *srv = tls_server_new(cfg, err, sizeof err);
	struct tls_client *cli = tls_client_new(cfg, err, sizeof err);

	memset(s, 0, sizeof *s);
	memset(c, 0, sizeof *c);
	s->rcap = c->rcap = 16384;
	CHECK(srv != NULL);
	CHECK(cli != NULL);
	if (srv == NULL || cli == NULL) {
		fprintf(stderr, "pair: %s\n", err);
		exit(1);
	}
	s->conn = tls_conn_new_server(srv);
	c->conn = tls_conn_new_client(cli, name, verify);
	/* the conns hold their own references, as sessions do */
	tls_server_unref(srv);
	tls_client_unref(cli);
}

/* ---- cases -------------------------------------------------------------- */

static void test_handshake(void)
{
	struct config cfg;
	struct end s, c;
	char subj[256];

	base_cfg(&cfg);
	pair(&cfg, &s, &c, "backstop.test.example", true);
	CHECK(!tls_conn_handshake_done(s.conn));
	CHECK_STR(tls_conn_version(s.conn), "");
	CHECK_INT(tls_conn_write(s.conn, "x", 1), TLS_WANT);
	run(&s, &c, 65536);
	CHECK(tls_conn_handshake_done(s.conn));
	CHECK(tls_conn_handshake_done(c.conn));
	CHECK(!s.failed && !c.failed);
	CHECK_STR(tls_conn_version(s.conn), "TLSv1.3");
	CHECK_STR(tls_conn_version(c.conn), "TLSv1.3");
	CHECK_STR(tls_conn_cipher(s.conn), "TLS_AES_128_GCM_SHA256");
	CHECK_INT(tls_conn_cipher_bits(s.conn), 128);
	CHECK(tls_conn_verified(c.conn));
	CHECK(!tls_conn_verified(s.conn));         /* no client certificate */
	CHECK_INT(tls_conn_peer_subject(s.conn, subj, sizeof subj), 0);
	CHECK_STR(subj, "");
	CHECK(tls_conn_peer_subject(c.conn, subj, sizeof subj) > 0);
	CHECK_STR(subj, "CN=backstop.test.example,O=backstop test");
	CHECK_INT(tls_conn_peer_subject(c.conn, subj, 4), 3);  /* truncated */
	CHECK_STR(subj, "CN=");
	CHECK_STR(tls_conn_error(s.conn), "");
	end_free(&s);
	end_free(&c);
}

/* test_data - both directions, odd write sizes, odd transport chunks and
 * odd read buffers, records split across feeds. */
static void test_data(void)
{
	static const size_t writes[] = {1, 2, 3, 17, 1000, 4093, 16383, 16384, 16385, 40000, 7};
	static const size_t chunks[] = {1, 7, 1500, 65536};
	struct config cfg;
	struct end s, c;

	base_cfg(&cfg);
	for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
		size_t total = 0, off = 0;
		char *data;
		pair(&cfg, &s, &c, "backstop.test.example", true);
		s.rcap = 13;
		c.rcap = 4097;
		run(&s, &c, chunks[k]);
		CHECK(tls_conn_handshake_done(c.conn));
		for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
			total += writes[i];
		data = malloc(total);
		for (size_t i = 0; i < total; i++)
			data[i] = (char)(i * 7 + i / 256);
		for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
			CHECK_INT(tls_conn_write(c.conn, data + off, writes[i]), TLS_OK);
			CHECK_INT(tls_conn_write(s.conn, data + off, writes[i]), TLS_OK);
			off += writes[i];
			if (i % 3 == 0)
				run(&s, &c, chunks[k]);
		}
		run(&s, &c, chunks[k]);
		CHECK_INT(s.inlen, total);
		CHECK_INT(c.inlen, total);
		CHECK(s.inlen == total && memcmp(s.in, data, total) == 0);
		CHECK(c.inlen == total && memcmp(c.in, data, total) == 0);
		CHECK(!s.failed && !c.failed);
		free(data);
		end_free(&s);
		end_free(&c);
	}
}

/* test_early_data - the client's first command arrives in the same read as
 * its Finished: the call that completes the handshake returns it. */
static void test_pipelined_after_finished(void)
{
	struct config cfg;
	struct end s, c;
	const char *p;
	size_t n;
	char buf[100], all[8192];
	size_t got;

	base_cfg(&cfg);
	cfg.tls.protocols = "TLSv1.3";
	pair(&cfg, &s, &c, "backstop.test.example", true);
	end_read(&c);                       /* ClientHello */
	move(&c, &s, 65536);                /* server flight back */
	n = tls_conn_pending(s.conn, &p);
	CHECK(n > 0);
	tls_conn_feed(c.conn, p, n);
	tls_conn_consume(s.conn, n);
	end_read(&c);                       /* client Finished, done */
	CHECK(tls_conn_handshake_done(c.conn));
	CHECK_INT(tls_conn_write(c.conn, "EHLO x\r\n", 8), TLS_OK);
	n = tls_conn_take(c.conn, all, sizeof all);   /* Finished + EHLO, one read */
	CHECK(n > 0 && n < sizeof all);
	CHECK_INT(tls_conn_feed(s.conn, all, n), TLS_OK);
	CHECK_INT(tls_conn_read(s.conn, buf, sizeof buf, &got), TLS_OK);
	CHECK_INT(got, 8);
	CHECK(tls_conn_handshake_done(s.conn));
	CHECK_INT(tls_conn_read(s.conn, buf, sizeof buf, &got), TLS_WANT);
	CHECK_INT(got, 0);
	end_free(&s);
	end_free(&c);
}

static void test_tls12_only(void)
{
	struct config cfg;
	struct end s, c;

	base_cfg(&cfg);
	cfg.tls.protocols = "TLSv1.2";
	pair(&cfg, &s, &c, "backstop.test.example", true);
	run(&s, &c, 999);
	CHECK_STR(tls_conn_version(s.conn), "TLSv1.2");
	CHECK_STR(tls_conn_cipher(s.conn), "ECDHE-ECDSA-AES128-GCM-SHA256");
	CHECK(tls_conn_verified(c.conn));
	end_free(&s);
	end_free(&c);
}

static void test_client_cert(void)
{
	struct config cfg;
	struct end s, c;
	char subj[256], err[512];
	struct tls_server *srv;
	struct tls_client *cli;

	base_cfg(&cfg);
	srv = tls_server_new(&cfg, err, sizeof err);
	cli = tls_client_new(&cfg, err, sizeof err);
	CHECK_INT(tls_client_set_certificate(cli, path("client.crt"), path("client.key"),
	    err, sizeof err), 0);
	memset(&s, 0, sizeof s);
	memset(&c, 0, sizeof c);
	s.rcap = c.rcap = 100;
	s.conn = tls_conn_new_server(srv);
	c.conn = tls_conn_new_client(cli, "backstop.test.example", true);
	/* too late now: the context is live */
	CHECK_INT(tls_client_set_certificate(cli, path("client.crt"), path("client.key"),
	    err, sizeof err), -1);
	run(&s, &c, 500);
	CHECK(tls_conn_handshake_done(s.conn));
	CHECK(tls_conn_peer_subject(s.conn, subj, sizeof subj) > 0);
	CHECK_STR(subj, "CN=client.test.example,O=backstop test");
	CHECK(!tls_conn_verified(s.conn));  /* recorded, not trusted */
	tls_server_unref(srv);
	tls_client_unref(cli);
	end_free(&s);
	end_free(&c);
}

static void test_verify(void)
{
	struct config cfg;
	struct end s, c;

	base_cfg(&cfg);
	/* wrong name, verify: the client aborts with the reason */
	pair(&cfg, &s, &c, "wrong.example", true);
	run(&s, &c, 65536);
	CHECK(c.failed);
	CHECK(!tls_conn_handshake_done(c.conn));
	CHECK(strstr(tls_conn_error(c.conn), "certificate verify failed") != NULL);
	CHECK(strstr(tls_conn_error(c.conn), "hostname mismatch") != NULL);
	CHECK(s.failed);       /* the server got the client's alert */
	CHECK(strstr(tls_conn_error(s.conn), "alert") != NULL);
	CHECK_INT(tls_conn_write(c.conn, "x", 1), TLS_ERROR);  /* sticky */
	tls_conn_shutdown(c.conn);                             /* harmless */
	CHECK(ERR_peek_error() == 0);
	end_free(&s);
	end_free(&c);

	/* wrong name, opportunistic: completes, not verified */
	pair(&cfg, &s, &c, "wrong.example", false);
	run(&s, &c, 65536);
	CHECK(tls_conn_handshake_done(c.conn));
	CHECK(!tls_conn_verified(c.conn));
	end_free(&s);
	end_free(&c);

	/* an IP literal is checked against the IP SANs (and not sent as SNI) */
	pair(&cfg, &s, &c, "127.0.0.1", true);
	run(&s, &c, 65536);
	CHECK(tls_conn_verified(c.conn));
	end_free(&s);
	end_free(&c);
	pair(&cfg, &s, &c, "192.0.2.1", true);
	run(&s, &c, 65536);
	CHECK(c.failed);
	CHECK(strstr(tls_conn_error(c.conn), "IP address mismatch") != NULL);
	end_free(&s);
	end_free(&c);

	/* no name: chain only */
	pair(&cfg, &s, &c, NULL, true);
	run(&s, &c, 65536);
	CHECK(tls_conn_verified(c.conn));
	end_free(&s);
	end_free(&c);

	/* a self-signed server certificate is not trusted by the test CA */
	cfg.tls.certificate = path("ss/backstop.crt");
	cfg.tls.key = path("ss/backstop.key");
	pair(&cfg, &s, &c, "mx.test.example", true);
	run(&s, &c, 65536);
	CHECK(c.failed);
	CHECK(strstr(tls_conn_error(c.conn), "self-signed certificate") != NULL);
	end_free(&s);
	end_free(&c);
}

static void test_sni(void)
{
	struct config cfg;
	struct end s, c;
	char subj[256];
	char *sni[2];

	base_cfg(&cfg);
	sni[0] = malloc(600);
	snprintf(sni[0], 600, "*.other.example:%s:%s", path("client.crt"), path("client.key"));
	sni[1] = malloc(600);
	snprintf(sni[1], 600, "Backend.Test.Example:%s:%s", path("backend.crt"), path("backend.key"));
	cfg.tls.sni.n = 2;
	cfg.tls.sni.v = sni;

	pair(&cfg, &s, &c, "backend.test.example", true);
	run(&s, &c, 65536);
	CHECK(tls_conn_verified(c.conn));
	tls_conn_peer_subject(c.conn, subj, sizeof subj);
	CHECK_STR(subj, "CN=backend.test.example,O=backstop test");
	end_free(&s);
	end_free(&c);

	pair(&cfg, &s, &c, "a.other.example", false);
	run(&s, &c, 65536);
	tls_conn_peer_subject(c.conn, subj, sizeof subj);
	CHECK_STR(subj, "CN=client.test.example,O=backstop test");
	end_free(&s);
	end_free(&c);

	pair(&cfg, &s, &c, "a.b.other.example", false);  /* one label only */
	run(&s, &c, 65536);
	tls_conn_peer_subject(c.conn, subj, sizeof subj);
	CHECK_STR(subj, "CN=backstop.test.example,O=backstop test");
	end_free(&s);
	end_free(&c);

	pair(&cfg, &s, &c, "backstop.test.example", true);  /* the default */
	run(&s, &c, 65536);
	CHECK(tls_conn_verified(c.conn));
	end_free(&s);
	end_free(&c);
	free(sni[0]);
	free(sni[1]);
}

/* test_garbage - non-TLS bytes where a ClientHello belongs (a client that
 * keeps talking plaintext after STARTTLS) and inside an open session. */
static void test_garbage(void)
{
	struct config cfg;
	struct end s, c;
	char err[512], buf[64], junk[300];
	struct tls_server *srv;
	size_t got;
	const char *p;

	base_cfg(&cfg);
	srv = tls_server_new(&cfg, err, sizeof err);
	memset(&s, 0, sizeof s);
	s.conn = tls_conn_new_server(srv);
	s.rcap = 64;
	CHECK_INT(tls_conn_feed(s.conn, "EHLO x\r\nMAIL FROM:<a@b>\r\n", 25), TLS_OK);
	CHECK_INT(tls_conn_read(s.conn, buf, sizeof buf, &got), TLS_ERROR);
	CHECK_INT(got, 0);
	CHECK(tls_conn_error(s.conn)[0] != '\0');
	CHECK(ERR_peek_error() == 0);
	(void)tls_conn_pending(s.conn, &p);  /* no alert: not even a record */
	CHECK_INT(tls_conn_feed(s.conn, "x", 1), TLS_ERROR);
	CHECK_INT(tls_conn_read(s.conn, buf, sizeof buf, &got), TLS_ERROR);
	tls_conn_shutdown(s.conn);
	end_free(&s);

	/* random bytes */
	srand(42);
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (char)rand();
	/* a handshake record header, 200 bytes of noise as the body */
	junk[0] = 0x16; junk[1] = 0x03; junk[2] = 0x01; junk[3] = 0; junk[4] = (char)200;
	s.conn = tls_conn_new_server(srv);
	tls_conn_feed(s.conn, junk, sizeof junk);
	CHECK_INT(tls_conn_read(s.conn, buf, sizeof buf, &got), TLS_ERROR);
	CHECK(ERR_peek_error() == 0);
	end_free(&s);

	/* a client that stops mid-handshake: nothing leaks on free */
	s.conn = tls_conn_new_server(srv);
	tls_conn_feed(s.conn, "\x16\x03\x01\x00\xff\x01", 6);
	CHECK_INT(tls_conn_read(s.conn, buf, sizeof buf, &got), TLS_WANT);
	end_free(&s);
	tls_server_unref(srv);

	/* garbage inside an established session */
	pair(&cfg, &s, &c, "backstop.test.example", true);
	run(&s, &c, 65536);
	CHECK(tls_conn_handshake_done(s.conn));
	junk[0] = 0x17; junk[1] = 0x03; junk[2] = 0x03; junk[3] = 0x00; junk[4] = 100;
	tls_conn_feed(s.conn, junk, 105);
	CHECK_INT(tls_conn_read(s.conn, buf, sizeof buf, &got), TLS_ERROR);
	CHECK(strstr(tls_conn_error(s.conn), "bad record mac") != NULL ||
	    strstr(tls_conn_error(s.conn), "decrypt") != NULL);
	CHECK_INT(tls_conn_write(s.conn, "250 ok\r\n", 8), TLS_ERROR);
	end_free(&s);
	end_free(&c);
}

static void test_shutdown(void)
{
	struct config cfg;
	struct end s, c;

	base_cfg(&cfg);
	pair(&cfg, &s, &c, "backstop.test.example", true);
	run(&s, &c, 65536);
	CHECK_INT(tls_conn_write(c.conn, "QUIT\r\n", 6), TLS_OK);
	tls_conn_shutdown(c.conn);
	run(&s, &c, 65536);
	CHECK(s.inlen == 6 && memcmp(s.in, "QUIT\r\n", 6) == 0);
	CHECK(s.closed);
	CHECK_INT(s.last, TLS_CLOSED);
	tls_conn_shutdown(s.conn);
	run(&s, &c, 65536);
	CHECK(c.closed);
	end_free(&s);
	end_free(&c);
}

/* test_reload - a connection keeps the context it started with. */
static void test_reload(void)
{
	struct config cfg;
	struct end s, c;
	char err[512];
	struct tls_server *old, *fresh;
	struct tls_client *cli;

	base_cfg(&cfg);
	old = tls_server_new(&cfg, err, sizeof err);
	cli = tls_client_new(&cfg, err, sizeof err);
	memset(&s, 0, sizeof s);
	memset(&c, 0, sizeof c);
	s.rcap = c.rcap = 512;
	s.conn = tls_conn_new_server(old);
	c.conn = tls_conn_new_client(cli, "backstop.test.example", true);
	end_read(&c);
	move(&c, &s, 65536);                 /* mid-handshake */
	cfg.tls.key = path("backend.key");   /* a bad new key: reload fails */
	fresh = tls_server_new(&cfg, err, sizeof err);
	CHECK(fresh == NULL);
	CHECK(strstr(err, "backend.key") != NULL);
	cfg.tls.key = path("backstop.key");  /* a good one: swap and drop the old */
	fresh = tls_server_new(&cfg, err, sizeof err);
	CHECK(fresh != NULL);
	tls_server_unref(old);
	run(&s, &c, 65536);
	CHECK(tls_conn_verified(c.conn));
	end_free(&s);
	end_free(&c);
	tls_server_unref(fresh);
	tls_client_unref(cli);
}

/* ---- a raw OpenSSL client, for what backstop must refuse ---------------- */

struct raw {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *r, *w;
	int reason;           /* of the last failed handshake step */
};

static void raw_new(struct raw *r, int maxver)
{
	memset(r, 0, sizeof *r);
	r->ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_security_level(r->ctx, 0);   /* allow TLS 1.1 at all */
	SSL_CTX_set_cipher_list(r->ctx, "DEFAULT:@SECLEVEL=0");
	SSL_CTX_set_min_proto_version(r->ctx, TLS1_VERSION);
	SSL_CTX_set_max_proto_version(r->ctx, maxver);
	r->ssl = SSL_new(r->ctx);
	r->r = BIO_new(BIO_s_mem());
	r->w = BIO_new(BIO_s_mem());
	SSL_set_bio(r->ssl, r->r, r->w);
	SSL_set_connect_state(r->ssl);
}

static void raw_free(struct raw *r)
{
	SSL_free(r->ssl);
	SSL_CTX_free(r->ctx);
}

/* raw_step - raw client handshake step, bytes to and from server end s. */
static int raw_step(struct raw *r, struct end *s)
{
	char buf[65536];
	int n, rc;
	const char *p;
	size_t len;

	ERR_clear_error();
	rc = SSL_do_handshake(r->ssl);
	/* read the raw client's error now: the server's calls below clear
	 * this thread's queue, as they must */
	if (rc != 1 && ERR_peek_last_error() != 0)
		r->reason = ERR_GET_REASON(ERR_peek_last_error());
	ERR_clear_error();
	while ((n = BIO_read(r->w, buf, sizeof buf)) > 0) {
		tls_conn_feed(s->conn, buf, (size_t)n);
		end_read(s);
	}
	while ((len = tls_conn_pending(s->conn, &p)) > 0) {
		BIO_write(r->r, p, (int)len);
		tls_conn_consume(s->conn, len);
	}
	return rc;
}

static void test_old_protocols(void)
{
	struct config cfg;
	struct end s;
	struct raw r;
	char err[512];
	struct tls_server *srv;
	int rc = 0;

	base_cfg(&cfg);
	srv = tls_server_new(&cfg, err, sizeof err);
	memset(&s, 0, sizeof s);
	s.rcap = 100;
	s.conn = tls_conn_new_server(srv);
	raw_new(&r, TLS1_1_VERSION);
	for (int i = 0; i < 5 && rc != 1 && !s.failed; i++)
		rc = raw_step(&r, &s);
	rc = raw_step(&r, &s);               /* deliver the alert */
	CHECK(rc != 1);
	CHECK(s.failed);
	CHECK(strstr(tls_conn_error(s.conn), "unsupported protocol") != NULL);
	CHECK_INT(r.reason, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
	raw_free(&r);
	end_free(&s);
	tls_server_unref(srv);
}

/* test_renegotiation - a TLS 1.2 client asking to renegotiate is refused
 * (SSL_OP_NO_RENEGOTIATION): the server answers no_renegotiation. */
static void test_renegotiation(void)
{
	struct config cfg;
	struct end s;
	struct raw r;
	char err[512];
	struct tls_server *srv;
	int rc = 0;

	base_cfg(&cfg);
	srv = tls_server_new(&cfg, err, sizeof err);
	memset(&s, 0, sizeof s);
	s.rcap = 100;
	s.conn = tls_conn_new_server(srv);
	raw_new(&r, TLS1_2_VERSION);
	for (int i = 0; i < 5 && rc != 1; i++)
		rc = raw_step(&r, &s);
	CHECK_INT(rc, 1);
	CHECK_STR(tls_conn_version(s.conn), "TLSv1.2");
	CHECK_INT(SSL_renegotiate(r.ssl), 1);
	rc = raw_step(&r, &s);               /* ClientHello out, alert back */
	rc = raw_step(&r, &s);
	CHECK(rc != 1);
	CHECK_INT(r.reason, SSL_R_NO_RENEGOTIATION);
	CHECK(s.failed);                     /* the client's fatal alert */
	CHECK(SSL_renegotiate_pending(r.ssl));  /* never completed */
	raw_free(&r);
	end_free(&s);
	tls_server_unref(srv);
}

/* ---- configuration errors ----------------------------------------------- */

static void expect_error(struct config *cfg, const char *want1, const char *want2)
{
	char err[512];
	struct tls_server *srv = tls_server_new(cfg, err, sizeof err);

	CHECK(srv == NULL);
	tls_server_unref(srv);
	if (getenv("TEST_VERBOSE") != NULL)
		fprintf(stderr, "  %s: %s\n", __func__, err);
	if (strstr(err, want1) == NULL || (want2 && strstr(err, want2) == NULL)) {
		fprintf(stderr, "error \"%s\" lacks \"%s\" / \"%s\"\n", err, want1,
		    want2 ? want2 : "");
		CHECK(0);
	} else {
		CHECK(1);
	}
	CHECK(ERR_peek_error() == 0);
}

static void test_config_errors(void)
{
	struct config cfg;
	char err[512];
	FILE *f;
	char *sni[1];

	base_cfg(&cfg);
	cfg.tls.certificate = "";
	cfg.tls.key = "";
	CHECK(tls_server_new(&cfg, err, sizeof err) == NULL);
	CHECK_STR(err, "");                  /* TLS off, not an error */

	f = fopen(path("bad.key"), "w");
	fputs("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n", f);
	fclose(f);
	base_cfg(&cfg);
	cfg.tls.key = path("bad.key");
	expect_error(&cfg, path("bad.key"), "[tls] key");
	cfg.tls.key = path("missing.key");
	expect_error(&cfg, path("missing.key"), "No such file");
	cfg.tls.key = path("backend.key");
	expect_error(&cfg, path("backend.key"), "key values mismatch");
	base_cfg(&cfg);
	cfg.tls.certificate = path("backstop.key");
	expect_error(&cfg, path("backstop.key"), "certificate");

	base_cfg(&cfg);
	cfg.tls.protocols = "TLSv1.4";
	expect_error(&cfg, "unknown protocol \"TLSv1.4\"", NULL);
	cfg.tls.protocols = "TLSv1.1 TLSv1.3";
	expect_error(&cfg, "gap", NULL);
	cfg.tls.protocols = " ";
	expect_error(&cfg, "empty", NULL);
	base_cfg(&cfg);
	cfg.tls.ciphers = "NOPE-NOPE";
	expect_error(&cfg, "[tls] ciphers", "no cipher match");
	base_cfg(&cfg);
	cfg.tls.groups = "P-999";
	expect_error(&cfg, "[tls] groups", NULL);

	base_cfg(&cfg);
	sni[0] = "nocolons";
	cfg.tls.sni.n = 1;
	cfg.tls.sni.v = sni;
	expect_error(&cfg, "name:certfile:keyfile", NULL);
	sni[0] = malloc(600);
	snprintf(sni[0], 600, "a.example:%s:%s", path("backstop.crt"), path("bad.key"));
	expect_error(&cfg, "sni a.example", path("bad.key"));
	free(sni[0]);

	base_cfg(&cfg);
	cfg.backend.tls = BACKEND_TLS_NONE;
	CHECK(tls_client_new(&cfg, err, sizeof err) == NULL);
	CHECK_STR(err, "");
	cfg.backend.tls = BACKEND_TLS_OPPORTUNISTIC;
	cfg.backend.ca_file = path("missing-ca.crt");
	CHECK(tls_client_new(&cfg, err, sizeof err) == NULL);
	CHECK(strstr(err, path("missing-ca.crt")) != NULL);
	CHECK(ERR_peek_error() == 0);
}

int main(void)
{
	const char *srcdir = getenv("srcdir");
	char cmd[1024];

	snprintf(dir, sizeof dir, "/tmp/test_tls.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	snprintf(cmd, sizeof cmd,
	    "%s/certs/make-test-ca.sh %s && %s/certs/make-self-signed.sh mx.test.example %s/ss >/dev/null",
	    srcdir ? srcdir : ".", dir, srcdir ? srcdir : ".", dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_tls: %s failed\n", cmd);
		return 99;       /* automake: hard error */
	}

	test_handshake();
	test_data();
	test_pipelined_after_finished();
	test_tls12_only();
	test_client_cert();
	test_verify();
	test_sni();
	test_garbage();
	test_shutdown();
	test_reload();
	test_old_protocols();
	test_renegotiation();
	test_config_errors();

	CHECK_INT(queue_dirty, 0);
	paths_free();
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_tls: could not remove %s\n", dir);
	return check_finish("test_tls");
}

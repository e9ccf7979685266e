/*
 * tls - TLS engine over OpenSSL memory BIOs (see tls.h for the calling
 * order). Used for STARTTLS on the listener (RFC 3207) and towards the
 * backend.
 *
 * Contract: no function blocks or touches a socket; the caller moves
 * ciphertext between the socket and the engine. Every SSL_* I/O call is
 * preceded by ERR_clear_error() and followed at once by SSL_get_error(),
 * because the error queue is per thread and SSL_get_error(3) requires it
 * to be empty before the call; failures are copied into the connection
 * and the queue is cleared again, so no stale error leaks into another
 * session served by the same thread.
 *
 * Ownership: tls_server and tls_client own their SSL_CTXs and are
 * immutable after construction (a reload builds a new one: OpenSSL does not
 * allow changing a context that connections use). A tls_conn holds a
 * reference to its context, and its SSL owns both memory BIOs.
 *
 * Memory: SSL_MODE_RELEASE_BUFFERS frees the record buffers of an idle
 * connection, and a memory BIO that grew beyond TLS_BIO_KEEP bytes is
 * replaced by a fresh one once drained, so an idle TLS session holds the
 * SSL object and little else.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L  /* strdup, strndup under -std=c17 */
#endif
#include "proxy/tls.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "proxy/config.h"

/* A drained memory BIO whose buffer grew beyond this is replaced. */
#define TLS_BIO_KEEP 512

/* Session id context: required for resumption when the server sends a
 * CertificateRequest (SSL_CTX_set_session_id_context(3)). */
static const unsigned char tls_sid_ctx[] = "backstop";

struct tls_sni {
	char *name;          /* "mx.example.org" or "*.example.org" */
	SSL_CTX *ctx;
};

struct tls_server {
	atomic_int refs;
	SSL_CTX *ctx;        /* default certificate; SNI callback lives here */
	size_t nsni;
	struct tls_sni *sni;
};

struct tls_client {
	atomic_int refs;
	SSL_CTX *ctx;
	bool used;           /* a conn was made: the context is live */
};

enum tls_conn_state {
	TLS_ST_HANDSHAKE,
	TLS_ST_OPEN,
	TLS_ST_CLOSED,       /* close_notify received */
	TLS_ST_FAILED,
};

struct tls_conn {
	SSL *ssl;
	BIO *rbio, *wbio;    /* owned by ssl */
	struct tls_server *srv;
	struct tls_client *cli;
	unsigned char state; /* enum tls_conn_state */
	char *err;           /* allocated on the first failure only */
};

/* ---- error reporting ---------------------------------------------------- */

/* ssl_reasons - drain the thread's error queue into buf as "reason: reason"
 * (oldest first, repeats dropped); "unknown error" when the queue is empty. */
static void ssl_reasons(char *buf, size_t cap)
{
	unsigned long e;
	size_t used = 0;
	const char *last = NULL;

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		const char *r = ERR_reason_error_string(e);
		char num[32];
		if (ERR_SYSTEM_ERROR(e)) {
			/* fopen() failures carry errno as the reason */
			r = strerror(ERR_GET_REASON(e));
		} else if (r == NULL) {
			snprintf(num, sizeof num, "error %lx", e);
			r = num;
		} else if (last != NULL && strcmp(last, r) == 0) {
			continue;
		}
		if (used < cap) {
			int n = snprintf(buf + used, cap - used, "%s%s", used ? ": " : "", r);
			if (n > 0)
				used += (size_t)n;
		}
		last = r == num ? NULL : r;
	}
	if (buf[0] == '\0')
		snprintf(buf, cap, "unknown error");
}

/* set_err - "what: OpenSSL reasons" into err, and clear the queue. */
__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	char reasons[256];
	va_list ap;
	int n;

	ssl_reasons(reasons, sizeof reasons);
	if (errlen == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < errlen)
		snprintf(err + n, errlen - (size_t)n, ": %s", reasons);
}

/* conn_fail - record why c failed (first failure wins) and make it sticky. */
static void conn_fail(struct tls_conn *c, int sslerr)
{
	char buf[320];
	size_t n;
	long vr;

	if (sslerr == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		snprintf(buf, sizeof buf, "unexpected end of input");
	else
		ssl_reasons(buf, sizeof buf);
	/* "certificate verify failed" alone does not say what to fix. */
	vr = SSL_get_verify_result(c->ssl);
	if (c->cli != NULL && vr != X509_V_OK && strstr(buf, "certificate verify failed")) {
		n = strlen(buf);
		snprintf(buf + n, sizeof buf - n, " (%s)", X509_verify_cert_error_string(vr));
	}
	if (c->err == NULL)
		c->err = strdup(buf);
	c->state = TLS_ST_FAILED;
	ERR_clear_error();
}

/* ---- contexts ----------------------------------------------------------- */

/* proto_version - "TLSv1.2" -> TLS1_2_VERSION; 0 if unknown. */
static int proto_version(const char *s, size_t n)
{
	static const struct { const char *name; int v; } t[] = {
		{"TLSv1", TLS1_VERSION}, {"TLSv1.0", TLS1_VERSION},
		{"TLSv1.1", TLS1_1_VERSION}, {"TLSv1.2", TLS1_2_VERSION},
		{"TLSv1.3", TLS1_3_VERSION},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (strlen(t[i].name) == n && strncasecmp(t[i].name, s, n) == 0)
			return t[i].v;
	return 0;
}

/* set_protocols - [tls] protocols ("TLSv1.2 TLSv1.3") as a min..max range.
 * A gap ("TLSv1 TLSv1.3") is refused: OpenSSL only has a range. */
static int set_protocols(SSL_CTX *ctx, const char *list, char *err, size_t errlen)
{
	int min = 0, max = 0, seen = 0;
	const char *p = list;

	while (*p != '\0') {
		size_t n;
		int v;
		p += strspn(p, " ,\t");
		n = strcspn(p, " ,\t");
		if (n == 0)
			break;
		if ((v = proto_version(p, n)) == 0) {
			snprintf(err, errlen, "[tls] protocols: unknown protocol \"%.*s\""
			    " (use TLSv1.2, TLSv1.3)", (int)n, p);
			return -1;
		}
		seen |= 1 << (v - TLS1_VERSION);
		if (min == 0 || v < min)
			min = v;
		if (v > max)
			max = v;
		p += n;
	}
	if (min == 0) {
		snprintf(err, errlen, "[tls] protocols: empty");
		return -1;
	}
	for (int v = min; v <= max; v++)
		if (!(seen & (1 << (v - TLS1_VERSION)))) {
			snprintf(err, errlen, "[tls] protocols: \"%s\" has a gap;"
			    " list a contiguous range", list);
			return -1;
		}
	/* An explicit minimum makes old clients get a protocol_version alert
	 * instead of an internal_error (dependencies.md section 4). */
	if (!SSL_CTX_set_min_proto_version(ctx, min) || !SSL_CTX_set_max_proto_version(ctx, max)) {
		set_err(err, errlen, "[tls] protocols \"%s\"", list);
		return -1;
	}
	return 0;
}

/* ctx_common - settings shared by server, SNI and client contexts. */
static int ctx_common(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
	/* Renegotiation is refused outright (TLS 1.2 renegotiation has been a
	 * DoS and injection vector, RFC 5746); IGNORE_UNEXPECTED_EOF because
	 * many SMTP clients close without close_notify; compression: CRIME. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_PRIORITIZE_CHACHA);
	/* RELEASE_BUFFERS: free the ~34 KB of record buffers while idle. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

	if (set_protocols(ctx, cfg->tls.protocols, err, errlen) < 0)
		return -1;
	if (cfg->tls.ciphers[0] != '\0' && !SSL_CTX_set_cipher_list(ctx, cfg->tls.ciphers)) {
		set_err(err, errlen, "[tls] ciphers \"%s\"", cfg->tls.ciphers);
		return -1;
	}
	if (cfg->tls.ciphersuites[0] != '\0' && !SSL_CTX_set_ciphersuites(ctx, cfg->tls.ciphersuites)) {
		set_err(err, errlen, "[tls] ciphersuites \"%s\"", cfg->tls.ciphersuites);
		return -1;
	}
	if (cfg->tls.groups[0] != '\0' && !SSL_CTX_set1_groups_list(ctx, cfg->tls.groups)) {
		set_err(err, errlen, "[tls] groups \"%s\"", cfg->tls.groups);
		return -1;
	}
	return 0;
}

/* accept_any_cert - record the client certificate, never fail on it: the
 * certificate is asked for logging, it authenticates nothing here. */
static int accept_any_cert(int preverify_ok, X509_STORE_CTX *x)
{
	return 1;
}

/* load_pair - certificate chain and key into ctx, checked to match. */
static int load_pair(SSL_CTX *ctx, const char *cert, const char *key, const char *what,
    char *err, size_t errlen)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		set_err(err, errlen, "%s certificate %s", what, cert);
		return -1;
	}
	/* the key must not be readable by others nor writable by the group
	 * (as for the BATV keys file): a group may read it, so that it can be
	 * shared with the user backstop runs as */
	struct stat st;
	if (stat(key, &st) == 0 && (st.st_mode & (S_IWGRP | S_IRWXO))) {
		snprintf(err, errlen, "%s key %s: mode %04o gives %s access to the private key; "
		    "chmod g-w,o-rwx it", what, key, (unsigned)(st.st_mode & 07777),
		    st.st_mode & S_IRWXO ? "others" : "the group write");
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		set_err(err, errlen, "%s key %s", what, key);
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		set_err(err, errlen, "%s key %s does not match certificate %s", what, key, cert);
		return -1;
	}
	return 0;
}

/* server_ctx - one server context with cert/key; NULL + reason. */
static SSL_CTX *server_ctx(const struct config *cfg, const char *cert, const char *key,
    const char *what, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		set_err(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	if (ctx_common(ctx, cfg, err, errlen) < 0)
		goto fail;
	/* DHE-RSA suites in the default list need parameters; "auto" picks
	 * RFC 7919 groups matching the key size (SSL_CTX_set_dh_auto(3)). */
	SSL_CTX_set_dh_auto(ctx, 1);
	/* Ask for a client certificate so its subject can be logged and put
	 * in Received (issue 3); never require it on port 25. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, accept_any_cert);
	SSL_CTX_set_session_id_context(ctx, tls_sid_ctx, sizeof tls_sid_ctx - 1);
	/* No server-side session cache: it grows with the connection rate
	 * (up to 20480 sessions for 300 s). Resumption still works through
	 * stateless tickets; one TLS 1.3 ticket is enough for SMTP. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 1);
	if (load_pair(ctx, cert, key, what, err, errlen) < 0)
		goto fail;
	return ctx;
fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

/* sni_match - does the SNI entry name (maybe "*.domain") cover host? */
static bool sni_match(const char *pattern, const char *host)
{
	if (strcasecmp(pattern, host) == 0)
		return true;
	/* A wildcard covers exactly one label, as in RFC 6125 6.4.3. */
	if (pattern[0] == '*' && pattern[1] == '.') {
		const char *dot = strchr(host, '.');
		return dot != NULL && dot != host && strcasecmp(dot + 1, pattern + 2) == 0;
	}
	return false;
}

/* servername_cb - switch to the SNI entry's certificate (RFC 6066 3). An
 * unknown name keeps the default certificate: MTAs rarely verify names,
 * and an alert would only make them fall back to plaintext. */
static int servername_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls_server *srv = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	if (name == NULL)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 0; i < srv->nsni; i++)
		if (sni_match(srv->sni[i].name, name)) {
			if (SSL_set_SSL_CTX(ssl, srv->sni[i].ctx) == NULL)
				return SSL_TLSEXT_ERR_ALERT_FATAL;
			break;
		}
	return SSL_TLSEXT_ERR_OK;
}

static void server_free(struct tls_server *srv)
{
	for (size_t i = 0; i < srv->nsni; i++) {
		free(srv->sni[i].name);
		SSL_CTX_free(srv->sni[i].ctx);
	}
	free(srv->sni);
	SSL_CTX_free(srv->ctx);
	free(srv);
}

/* sni_add - parse "name:certfile:keyfile" and load it. The name ends at the
 * first colon, the key file starts after the last one. */
static int sni_add(struct tls_server *srv, const struct config *cfg, const char *spec,
    char *err, size_t errlen)
{
	const char *c1 = strchr(spec, ':'), *c2 = strrchr(spec, ':');
	char *name, *cert, *key, what[300];
	struct tls_sni *e = &srv->sni[srv->nsni];

	if (c1 == NULL || c2 == c1 || c1 == spec || c2[1] == '\0' || c2 == c1 + 1) {
		snprintf(err, errlen, "[tls] sni \"%s\": expected name:certfile:keyfile", spec);
		return -1;
	}
	name = strndup(spec, (size_t)(c1 - spec));
	cert = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
	key = strdup(c2 + 1);
	if (name == NULL || cert == NULL || key == NULL) {
		snprintf(err, errlen, "[tls] sni: out of memory");
		goto fail;
	}
	snprintf(what, sizeof what, "[tls] sni %s", name);
	if ((e->ctx = server_ctx(cfg, cert, key, what, err, errlen)) == NULL)
		goto fail;
	e->name = name;
	srv->nsni++;
	free(cert);
	free(key);
	return 0;
fail:
	free(name);
	free(cert);
	free(key);
	return -1;
}

/* tls_server_new - build the listener's contexts from [tls]. */
struct tls_server *tls_server_new(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_server *srv;

	if (errlen > 0)
		err[0] = '\0';
	if (cfg->tls.certificate == NULL || cfg->tls.certificate[0] == '\0')
		return NULL;
	ERR_clear_error();
	if ((srv = calloc(1, sizeof *srv)) == NULL ||
	    (cfg->tls.sni.n > 0 && (srv->sni = calloc(cfg->tls.sni.n, sizeof *srv->sni)) == NULL)) {
		snprintf(err, errlen, "[tls]: out of memory");
		free(srv);
		return NULL;
	}
	atomic_init(&srv->refs, 1);
	srv->ctx = server_ctx(cfg, cfg->tls.certificate, cfg->tls.key, "[tls]", err, errlen);
	if (srv->ctx == NULL)
		goto fail;
	for (size_t i = 0; i < cfg->tls.sni.n; i++)
		if (sni_add(srv, cfg, cfg->tls.sni.v[i], err, errlen) < 0)
			goto fail;
	if (srv->nsni > 0) {
		SSL_CTX_set_tlsext_servername_callback(srv->ctx, servername_cb);
		SSL_CTX_set_tlsext_servername_arg(srv->ctx, srv);
	}
	return srv;
fail:
	server_free(srv);
	ERR_clear_error();
	return NULL;
}

void tls_server_ref(struct tls_server *srv)
{
	atomic_fetch_add(&srv->refs, 1);
}

void tls_server_unref(struct tls_server *srv)
{
	if (srv != NULL && atomic_fetch_sub(&srv->refs, 1) == 1)
		server_free(srv);
}

/* tls_client_new - the backend context from [backend] and [tls]. */
struct tls_client *tls_client_new(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_client *cli;
	const char *ca = cfg->backend.ca_file;

	if (errlen > 0)
		err[0] = '\0';
	if (cfg->backend.tls == BACKEND_TLS_NONE)
		return NULL;
	ERR_clear_error();
	if ((cli = calloc(1, sizeof *cli)) == NULL) {
		snprintf(err, errlen, "[backend] tls: out of memory");
		return NULL;
	}
	atomic_init(&cli->refs, 1);
	if ((cli->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		set_err(err, errlen, "[backend] tls: SSL_CTX_new");
		goto fail;
	}
	if (ctx_common(cli->ctx, cfg, err, errlen) < 0)
		goto fail;
	if (ca != NULL && ca[0] != '\0') {
		if (SSL_CTX_load_verify_locations(cli->ctx, ca, NULL) != 1) {
			set_err(err, errlen, "[backend] ca_file %s", ca);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(cli->ctx) != 1) {
		set_err(err, errlen, "[backend] tls: system trust store");
		goto fail;
	}
	return cli;
fail:
	SSL_CTX_free(cli->ctx);
	free(cli);
	ERR_clear_error();
	return NULL;
}

/* tls_client_set_certificate - load a client certificate for the backend. */
int tls_client_set_certificate(struct tls_client *cli, const char *cert, const char *key,
    char *err, size_t errlen)
{
	int rc;

	if (cli->used) {
		snprintf(err, errlen, "[backend] client certificate: context already in use");
		return -1;
	}
	ERR_clear_error();
	rc = load_pair(cli->ctx, cert, key, "[backend] client", err, errlen);
	ERR_clear_error();
	return rc;
}

void tls_client_ref(struct tls_client *cli)
{
	atomic_fetch_add(&cli->refs, 1);
}

void tls_client_unref(struct tls_client *cli)
{
	if (cli != NULL && atomic_fetch_sub(&cli->refs, 1) == 1) {
		SSL_CTX_free(cli->ctx);
		free(cli);
	}
}

/* ---- connections -------------------------------------------------------- */

/* conn_new - an SSL with two memory BIOs; NULL when out of memory. */
static struct tls_conn *conn_new(SSL_CTX *ctx)
{
	struct tls_conn *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	ERR_clear_error();
	c->ssl = SSL_new(ctx);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		SSL_free(c->ssl);
		free(c);
		ERR_clear_error();
		return NULL;
	}
	/* An empty memory BIO must mean "retry later", never EOF
	 * (BIO_s_mem(3): the default eof_return of -1 already does this). */
	BIO_set_mem_eof_return(c->rbio, -1);
	BIO_set_mem_eof_return(c->wbio, -1);
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	return c;
}

/* tls_conn_new_server - a server-side connection (after "220 Ready"). */
struct tls_conn *tls_conn_new_server(struct tls_server *srv)
{
	struct tls_conn *c = conn_new(srv->ctx);

	if (c == NULL)
		return NULL;
	SSL_set_accept_state(c->ssl);
	tls_server_ref(srv);
	c->srv = srv;
	return c;
}

/* tls_conn_new_client - a client-side connection to the backend. */
struct tls_conn *tls_conn_new_client(struct tls_client *cli, const char *verify_name,
    bool verify)
{
	struct tls_conn *c = conn_new(cli->ctx);
	unsigned char addr[16];

	if (c == NULL)
		return NULL;
	cli->used = true;
	SSL_set_connect_state(c->ssl);
	/* SSL_VERIFY_NONE on a client still verifies and records the result
	 * (SSL_CTX_set_verify(3)); only PEER aborts the handshake on failure. */
	SSL_set_verify(c->ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if (verify_name != NULL && verify_name[0] != '\0') {
		bool ip = inet_pton(AF_INET, verify_name, addr) == 1 ||
		    inet_pton(AF_INET6, verify_name, addr) == 1;
		int ok;
		if (ip) {
			/* RFC 6066 3: literal IP addresses are not permitted in SNI. */
			ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), verify_name);
		} else {
			ok = SSL_set1_host(c->ssl, verify_name) &&
			    SSL_set_tlsext_host_name(c->ssl, verify_name);
		}
		if (!ok) {
			ERR_clear_error();
			SSL_free(c->ssl);
			free(c);
			return NULL;
		}
	}
	tls_client_ref(cli);
	c->cli = cli;
	return c;
}

/* tls_conn_free - release c (no close_notify: call tls_conn_shutdown). */
void tls_conn_free(struct tls_conn *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl);
	tls_server_unref(c->srv);
	tls_client_unref(c->cli);
	free(c->err);
	free(c);
}

/* bio_trim - replace a drained memory BIO whose buffer grew large. A memory
 * BIO keeps its peak allocation forever; a connection that once received a
 * 64 KB read would otherwise hold it for its lifetime. */
static void bio_trim(struct tls_conn *c, bool wbio)
{
	BIO *old = wbio ? c->wbio : c->rbio, *fresh;
	BUF_MEM *bm = NULL;

	if (BIO_ctrl_pending(old) != 0 || BIO_get_mem_ptr(old, &bm) <= 0 ||
	    bm == NULL || bm->max <= TLS_BIO_KEEP)
		return;
	/* The write side is only swapped once the handshake is over: during it
	 * OpenSSL chains a buffering BIO in front of the write BIO. */
	if (wbio && !SSL_is_init_finished(c->ssl))
		return;
	if ((fresh = BIO_new(BIO_s_mem())) == NULL) {
		ERR_clear_error();
		return; /* keep the big one; correctness does not depend on it */
	}
	BIO_set_mem_eof_return(fresh, -1);
	if (wbio) {
		SSL_set0_wbio(c->ssl, fresh);
		c->wbio = fresh;
	} else {
		SSL_set0_rbio(c->ssl, fresh);
		c->rbio = fresh;
	}
}

bool tls_conn_input_pending(const struct tls_conn *c)
{
	/* SSL_has_pending counts a partial record in OpenSSL's own buffer */
	return BIO_ctrl_pending(c->rbio) > 0 || SSL_has_pending(c->ssl);
}

/* tls_conn_feed - append ciphertext from the socket. */
int tls_conn_feed(struct tls_conn *c, const char *data, size_t len)
{
	if (c->state == TLS_ST_FAILED)
		return TLS_ERROR;
	while (len > 0) {
		int n = len > INT_MAX ? INT_MAX : (int)len;
		ERR_clear_error();
		if (BIO_write(c->rbio, data, n) != n) {
			conn_fail(c, SSL_ERROR_SSL);
			return TLS_ERROR;
		}
		data += n;
		len -= (size_t)n;
	}
	return TLS_OK;
}

/* tls_conn_read - handshake, then decrypt as much as fits into out. */
int tls_conn_read(struct tls_conn *c, char *out, size_t cap, size_t *got)
{
	bool progressed = false;
	int r, e;

	*got = 0;
	if (c->state == TLS_ST_FAILED)
		return TLS_ERROR;
	if (c->state == TLS_ST_CLOSED)
		return TLS_CLOSED;
	if (c->state == TLS_ST_HANDSHAKE) {
		ERR_clear_error();
		r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				ERR_clear_error();
				return TLS_WANT;
			}
			conn_fail(c, e);
			return TLS_ERROR;
		}
		c->state = TLS_ST_OPEN;
		progressed = true;
		/* Fall through: the peer's first application data may already
		 * be in the read BIO (a client pipelining EHLO after Finished). */
	}
	while (*got < cap) {
		size_t n = 0;
		ERR_clear_error();
		if (SSL_read_ex(c->ssl, out + *got, cap - *got, &n) == 1) {
			*got += n;
			continue;
		}
		e = SSL_get_error(c->ssl, 0);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			ERR_clear_error();
			bio_trim(c, false);
			break;
		}
		if (e == SSL_ERROR_ZERO_RETURN) {
			ERR_clear_error();
			c->state = TLS_ST_CLOSED;
		} else {
			conn_fail(c, e);
		}
		/* Plaintext already decrypted is delivered first; the close or
		 * failure is reported by the next call (the state is sticky). */
		if (*got > 0)
			return TLS_OK;
		return c->state == TLS_ST_CLOSED ? TLS_CLOSED : TLS_ERROR;
	}
	if (*got > 0 || progressed)
		return TLS_OK;
	return TLS_WANT;
}

/* tls_conn_write - encrypt all of data into the write BIO. */
int tls_conn_write(struct tls_conn *c, const char *data, size_t len)
{
	if (c->state == TLS_ST_FAILED)
		return TLS_ERROR;
	if (c->state == TLS_ST_HANDSHAKE)
		return TLS_WANT;
	while (len > 0) {
		size_t n = 0;
		ERR_clear_error();
		if (SSL_write_ex(c->ssl, data, len, &n) != 1) {
			conn_fail(c, SSL_get_error(c->ssl, 0));
			return TLS_ERROR;
		}
		data += n;
		len -= n;
	}
	return TLS_OK;
}

/* tls_conn_pending - ciphertext in the write BIO, without copying. */
size_t tls_conn_pending(struct tls_conn *c, const char **data)
{
	char *p = NULL;
	long n = BIO_get_mem_data(c->wbio, &p);

	*data = p;
	return n > 0 ? (size_t)n : 0;
}

/* tls_conn_consume - drop n bytes written to the socket from the BIO. */
void tls_conn_consume(struct tls_conn *c, size_t n)
{
	char scratch[4096];

	while (n > 0) {
		int chunk = n > sizeof scratch ? (int)sizeof scratch : (int)n;
		int r = BIO_read(c->wbio, scratch, chunk);
		if (r <= 0)
			break;
		n -= (size_t)r;
	}
	bio_trim(c, true);
}

/* tls_conn_take - move up to cap pending bytes into out. */
size_t tls_conn_take(struct tls_conn *c, char *out, size_t cap)
{
	size_t done = 0;

	while (done < cap) {
		int chunk = cap - done > INT_MAX ? INT_MAX : (int)(cap - done);
		int r = BIO_read(c->wbio, out + done, chunk);
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	bio_trim(c, true);
	return done;
}

/* tls_conn_shutdown - queue our close_notify (RFC 8446 6.1). OpenSSL
 * refuses SSL_shutdown during the handshake and after a fatal error
 * (SSL_shutdown(3)); in both cases there is nothing to say. */
void tls_conn_shutdown(struct tls_conn *c)
{
	if (c->state != TLS_ST_OPEN && c->state != TLS_ST_CLOSED)
		return;
	ERR_clear_error();
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
}

bool tls_conn_handshake_done(const struct tls_conn *c)
{
	return c->state == TLS_ST_OPEN || c->state == TLS_ST_CLOSED;
}

const char *tls_conn_version(const struct tls_conn *c)
{
	return tls_conn_handshake_done(c) ? SSL_get_version(c->ssl) : "";
}

const char *tls_conn_version_tried(const struct tls_conn *c)
{
	/* the session exists once the ClientHello chose a version; before,
	 * SSL_get_version() names the highest one enabled, not the peer's */
	SSL_SESSION *sess = SSL_get_session(c->ssl);

	switch (sess ? SSL_SESSION_get_protocol_version(sess) : 0) {
	case TLS1_VERSION: return "TLSv1";
	case TLS1_1_VERSION: return "TLSv1.1";
	case TLS1_2_VERSION: return "TLSv1.2";
	case TLS1_3_VERSION: return "TLSv1.3";
	default: return "unknown";
	}
}

const char *tls_conn_cipher(const struct tls_conn *c)
{
	const char *s = tls_conn_handshake_done(c) ? SSL_get_cipher_name(c->ssl) : NULL;
	return s != NULL ? s : "";
}

int tls_conn_cipher_bits(const struct tls_conn *c)
{
	return tls_conn_handshake_done(c) ? SSL_get_cipher_bits(c->ssl, NULL) : 0;
}

/* tls_conn_peer_subject - RFC 2253 subject with unsafe bytes escaped. */
int tls_conn_peer_subject(const struct tls_conn *c, char *buf, size_t cap)
{
	X509 *x = SSL_get0_peer_certificate(c->ssl);
	BIO *b;
	char *p;
	long n;

	if (cap == 0)
		return 0;
	buf[0] = '\0';
	if (x == NULL || (b = BIO_new(BIO_s_mem())) == NULL)
		return 0;
	/* XN_FLAG_RFC2253 includes ASN1_STRFLGS_ESC_CTRL | ESC_MSB: the peer
	 * chose these bytes, and they end up in logs and headers. */
	X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
	n = BIO_get_mem_data(b, &p);
	if (n < 0)
		n = 0;
	if ((size_t)n >= cap)
		n = (long)cap - 1;
	memcpy(buf, p, (size_t)n);
	buf[n] = '\0';
	BIO_free(b);
	ERR_clear_error();
	return (int)n;
}

const char *tls_conn_error(const struct tls_conn *c)
{
	return c->err != NULL ? c->err : "";
}

/* tls_conn_verified - chain and name verified (SSL_get_verify_result(3)
 * is only meaningful together with a peer certificate). */
bool tls_conn_verified(const struct tls_conn *c)
{
	return tls_conn_handshake_done(c) && SSL_get0_peer_certificate(c->ssl) != NULL &&
	    SSL_get_verify_result(c->ssl) == X509_V_OK;
}

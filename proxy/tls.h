/*
 * tls - a transport-independent TLS engine over OpenSSL memory BIOs, for
 * STARTTLS towards clients (RFC 3207) and towards the backend.
 *
 * The engine never touches a socket. The session feeds it the ciphertext it
 * read, takes plaintext out, hands plaintext in, and writes whatever
 * ciphertext is pending. Calling order for one socket read:
 *
 *   tls_conn_feed(c, bytes, n);
 *   do {
 *           rc = tls_conn_read(c, buf, cap, &got);
 *           drain: tls_conn_pending()/tls_conn_take() -> uv_write
 *           if (got) hand buf[0..got) to the SMTP parser
 *   } while (rc == TLS_OK);
 *   TLS_WANT: wait for the next read. TLS_CLOSED: peer said close_notify.
 *   TLS_ERROR: log tls_conn_error(), send what is pending, close.
 *
 * ALWAYS drain the pending ciphertext after every tls_conn_* call that may
 * produce output (read: handshake flights, alerts, session tickets,
 * KeyUpdate; write; shutdown), also when the call failed: a failed
 * handshake leaves the fatal alert there.
 *
 * Contexts: a tls_server (server SSL_CTX plus SNI contexts) and a tls_client
 * (client SSL_CTX for the backend) are built once from a config and are
 * immutable afterwards; they are reference counted. A SIGHUP reload builds
 * a new one and swaps the caller's pointer; a connection keeps a reference
 * to the context it started with, so sessions in flight are unaffected.
 *
 * Errors: constructors return NULL and a one-line reason (OpenSSL's reason
 * and the file name) in err. Connection failures are sticky: after
 * TLS_ERROR every call fails again, and tls_conn_error() says why. The
 * thread's OpenSSL error queue is left empty after every call.
 */
#ifndef TLS_H
#define TLS_H

#include <stdbool.h>
#include <stddef.h>

struct config;

enum tls_status {
	TLS_OK = 0,      /* progress: plaintext returned or handshake advanced */
	TLS_WANT = 1,    /* needs more input from the peer */
	TLS_CLOSED = 2,  /* peer sent close_notify */
	TLS_ERROR = -1,  /* connection failed; see tls_conn_error() */
};

/*
 * Server side. tls_server_new builds a context from [tls]. Returns NULL
 * with err[0] == '\0' when no certificate is configured (TLS off), NULL
 * with a reason on error. The result has one reference.
 */
struct tls_server;
struct tls_server *tls_server_new(const struct config *cfg, char *err, size_t errlen);
void tls_server_ref(struct tls_server *srv);
void tls_server_unref(struct tls_server *srv);

/*
 * Client side, for the backend. Returns NULL with err[0] == '\0' when
 * [backend] tls = none. The trust anchors are [backend] ca_file (the
 * system store when empty); protocols, ciphers and groups come from [tls].
 */
struct tls_client;
struct tls_client *tls_client_new(const struct config *cfg, char *err, size_t errlen);
/* tls_client_set_certificate - present cert/key to the backend; only before
 * the first tls_conn is made from cli. 0 or -1 with a reason in err. */
int tls_client_set_certificate(struct tls_client *cli, const char *cert,
    const char *key, char *err, size_t errlen);
void tls_client_ref(struct tls_client *cli);
void tls_client_unref(struct tls_client *cli);

/*
 * Connections. Both constructors return NULL only when out of memory.
 * A server connection asks for (but never requires) a client certificate,
 * so that its subject can be logged. A client connection sends verify_name
 * as SNI and checks it against the certificate (an IP literal is checked
 * as an IP address and not sent as SNI); verify = false still records the
 * result (tls_conn_verified) but lets the handshake complete.
 */
struct tls_conn;
struct tls_conn *tls_conn_new_server(struct tls_server *srv);
struct tls_conn *tls_conn_new_client(struct tls_client *cli, const char *verify_name,
    bool verify);
void tls_conn_free(struct tls_conn *c);

/* tls_conn_feed - copy ciphertext read from the socket into the engine. */
int tls_conn_feed(struct tls_conn *c, const char *data, size_t len);
/* tls_conn_read - advance the handshake and decrypt up to cap bytes into
 * out. TLS_OK with *got > 0 (plaintext), or with *got == 0 only in the
 * call that completed the handshake; TLS_WANT, TLS_CLOSED, TLS_ERROR. */
int tls_conn_read(struct tls_conn *c, char *out, size_t cap, size_t *got);
/* tls_conn_write - encrypt all of data (memory BIOs never block).
 * TLS_WANT (nothing written) before the handshake is done; TLS_ERROR. */
int tls_conn_write(struct tls_conn *c, const char *data, size_t len);
/* tls_conn_pending - ciphertext waiting for the socket; *data is valid
 * until the next tls_conn_* call on c. Copy it, then tls_conn_consume. */
size_t tls_conn_pending(struct tls_conn *c, const char **data);
void tls_conn_consume(struct tls_conn *c, size_t n);
/* tls_conn_take - copy up to cap pending bytes into out and consume them
 * (pending + copy + consume in one call); returns the count. */
size_t tls_conn_take(struct tls_conn *c, char *out, size_t cap);
/* tls_conn_shutdown - queue close_notify if the handshake completed and no
 * error occurred; then drain pending before closing the socket. */
void tls_conn_shutdown(struct tls_conn *c);

bool tls_conn_handshake_done(const struct tls_conn *c);
/* tls_conn_input_pending - does the engine hold ciphertext not yet
 * decrypted (a record only partly received)? */
bool tls_conn_input_pending(const struct tls_conn *c);
const char *tls_conn_version(const struct tls_conn *c);  /* "TLSv1.3", "" before */
/* tls_conn_version_tried - the version negotiated so far, also of a failed
 * handshake ("TLSv1.2"; "unknown" before a ClientHello chose one) */
const char *tls_conn_version_tried(const struct tls_conn *c);
const char *tls_conn_cipher(const struct tls_conn *c);   /* "TLS_AES_256_GCM_SHA384" */
int tls_conn_cipher_bits(const struct tls_conn *c);      /* 256; 0 before */
/* tls_conn_peer_subject - the peer certificate's subject, RFC 2253 form
 * with control and 8-bit bytes escaped ("CN=x,O=y"); returns its length
 * (truncated to cap-1), 0 and "" if the peer sent no certificate. */
int tls_conn_peer_subject(const struct tls_conn *c, char *buf, size_t cap);
const char *tls_conn_error(const struct tls_conn *c);    /* "" if none */
/* tls_conn_verified - chain (and name, if one was given) verified against
 * the trust anchors. Server side: false unless a client certificate
 * chained to a trusted CA (none is configured, so false). */
bool tls_conn_verified(const struct tls_conn *c);

#endif

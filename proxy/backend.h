/*
 * backend - backstop's client connection to the backend MTA.
 *
 * Opened lazily for the first transaction of a session and reused for the
 * next ones. Opening means: connect, 220, EHLO, then XCLIENT with the real
 * client's attributes and EHLO again (Postfix), or XFORWARD before each
 * MAIL as the fallback. Each command has one completion callback that
 * gets the backend's whole reply, or an error (connect failure, timeout,
 * disconnect, garbage) with reply NULL.
 *
 * Content: backend_data_write() queues message bytes; backend_data_end()
 * appends the final dot in the same write, so the backend commits only
 * when backstop decides to (checks at end of data can still refuse:
 * backend_abort() closes the connection without the dot, and the backend
 * discards the message).
 */
#ifndef BACKEND_H
#define BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "proxy/buf.h"
#include "smtp/smtp_reply.h"

struct session;
struct config;

enum backend_err {
	BACKEND_OK = 0,
	BACKEND_ECONNECT = -1,   /* could not connect */
	BACKEND_ETIMEOUT = -2,
	BACKEND_ELOST = -3,      /* disconnected */
	BACKEND_EPROTO = -4,     /* not SMTP, or an unexpected reply */
	BACKEND_EGREET = -5,     /* refused us at greeting/EHLO/XCLIENT */
	BACKEND_ETLS = -6,       /* STARTTLS required and failed */
	BACKEND_EBUSY = -7,      /* [backend] max_connections reached */
};

struct backend_caps {
	bool pipelining, size, eightbitmime, smtputf8, dsn, xclient, xforward,
	    starttls, enhancedstatuscodes;
	unsigned long long max_size;
};

typedef void (*backend_cb)(struct session *s, const struct smtp_reply *r, int err);

/* backend_known_caps - the capabilities seen at the latest EHLO of the
 * inbound backend or of the outbound relay (one record per relay target:
 * a relay without DSN must not take DSN from the inbound EHLO), or NULL
 * before the first one. What EHLO to clients may promise (SMTPUTF8, DSN). */
const struct backend_caps *backend_known_caps(bool outbound);
void backend__caps_learnt(bool outbound, const struct backend_caps *caps);
/* backend__caps_forget - as before the first EHLO (fuzz targets start
 * each run from what their input says) */
void backend__caps_forget(bool outbound);

/* backend_open - connect for s (inbound: [backend] address, outbound:
 * [outbound] relay); cb gets the ready connection or the error. Returns 0,
 * BACKEND_EBUSY when [backend] max_connections inbound connections are
 * open already (cb is not called), or BACKEND_ECONNECT. */
int backend_open(struct session *s, backend_cb cb);
/* backend_idle - s is outside a transaction: close its backend connection
 * after [backend] idle_timeout unless a command comes first (the next MAIL
 * reconnects), so idle clients do not pin the backend's processes */
void backend_idle(struct session *s);
/* backend_connections - inbound backend connections open (the cap's count) */
unsigned long backend_connections(void);
bool backend_ready(const struct session *s);
const struct backend_caps *backend_caps(const struct session *s);
/* backend_keepalive - while a held message uploads (no command to send),
 * send NOOP every interval_ms so the backend's idle timer does not close
 * the connection; 0 stops it. The next backend_command() ends it (and
 * waits for an outstanding NOOP's reply first). */
void backend_keepalive(struct session *s, uint64_t interval_ms);
/* one command line (CRLF appended here) and its reply */
void backend_command(struct session *s, const char *line, backend_cb cb);
/* before MAIL, when the backend only offers XFORWARD */
bool backend_wants_xforward(const struct session *s);
/* backend_data_send - write the content in b (its storage is taken over,
 * b is left empty). Returns 0 or a backend_err. */
int backend_data_send(struct session *s, struct buf *b);
size_t backend_queued(const struct session *s);   /* bytes not yet written */
/* backend_data_end - send b, which ends with the final dot written by the
 * session's smtp_wire, in one write; wait for
 * the reply to the whole message. */
void backend_data_end(struct session *s, struct buf *b, backend_cb cb);
/* close without QUIT: discards an unfinished transaction */
void backend_abort(struct session *s);
/* QUIT and close (after the session's last transaction) */
void backend_quit(struct session *s);
const char *backend_err_text(int err);
/* backend_client_helo - the client's HELO name as the backend is told it
 * (cap >= 256): bytes outside '!'..'~' and the brackets of the reserved
 * [UNAVAILABLE]/[TEMPUNAVAIL] become '?'; "" when the client said nothing */
void backend_client_helo(const char *helo, char *out, size_t cap);
/* backend_helo_attr - the same as an XCLIENT/XFORWARD HELO value (xtext,
 * or [UNAVAILABLE] when there is none or it is over 255 characters) */
void backend_helo_attr(const char *helo, char *out, size_t cap);
/* backend_probe - one connection to [backend] address (greeting, EHLO,
 * QUIT): learns the capabilities, so the first client's EHLO is right, and
 * tells cb (once) whether the backend answered: ok, or at which stage
 * ("connect", "greeting", "EHLO") and why it failed (static strings).
 * Never blocks; bounded by [backend] connect_timeout. quiet: failures are
 * logged at debug level (a periodic re-probe). false when it cannot probe
 * (a host name: learnt at the first real connection); cb is not called. */
typedef void (*backend_probe_cb)(void *arg, bool ok, const char *stage, const char *why);
bool backend_probe(const struct config *cfg, bool quiet, backend_probe_cb cb, void *arg);

/* backend__caps_parse - EHLO reply text (lines joined by '\n') to caps;
 * shared by backend.c and backend_probe.c */
void backend__caps_parse(struct backend_caps *caps, const char *text);

/* backend__tls_client_for - the backend TLS context for a configuration
 * (built once per config; backend.c and the probe) */
struct tls_client;
struct tls_client *backend__tls_client_for(struct config *c);

#endif

/*
 * backend - backstop's client connection to the backend MTA.
 *
 * Opened lazily for the first transaction of a session and reused for the
 * next ones. Opening means: connect, 220, EHLO, then XCLIENT with the real
 * client's attributes and EHLO again (Postfix), or XFORWARD before each
 * MAIL as the fallback. Each request (open, command, end of data) gets
 * one answer through the owner's ops->reply: the backend's whole reply, or
 * an error (connect failure, timeout, disconnect, garbage) with reply NULL.
 *
 * Content: backend_data_send() queues message bytes; backend_data_end()
 * appends the final dot in the same write, so the backend commits only
 * when backstop decides to (checks at end of data can still refuse:
 * backend_abort() closes the connection without the dot, and the backend
 * discards the message).
 *
 * The connection knows nothing of its owner (a session) but what
 * struct backend_params copies and the ops table it reports to: backend
 * sits below session, never includes it.
 */
#ifndef BACKEND_H
#define BACKEND_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include <uv.h>

#include "proxy/buf.h"
#include "smtp/smtp_reply.h"

struct backend;
struct config;
struct metrics;

enum backend_err {
	BACKEND_OK = 0,
	BACKEND_ECONNECT = -1,   /* could not connect */
	BACKEND_ETIMEOUT = -2,
	BACKEND_ELOST = -3,      /* disconnected */
	BACKEND_EPROTO = -4,     /* not SMTP, or an unexpected reply */
	BACKEND_EGREET = -5,     /* refused us at greeting/EHLO/XCLIENT */
	BACKEND_ETLS = -6,       /* STARTTLS required and failed */
	BACKEND_EBUSY = -7,      /* [backend] max_connections reached */
	BACKEND_EIDENTITY = -8,  /* cannot tell it who the client is as [backend] identity says */
};

struct backend_caps {
	bool pipelining, size, eightbitmime, smtputf8, dsn, xclient, xforward,
	    starttls, enhancedstatuscodes;
	unsigned long long max_size;
};

/* backend_known - the capabilities seen at the latest EHLO of each relay
 * target: the inbound backend and the outbound relay (a relay without DSN
 * must not take DSN from the inbound EHLO). What EHLO to clients may
 * promise (SMTPUTF8, DSN), and whether a new connection may send XCLIENT
 * at once. One per loop, owned by its struct worker (w->backend_known)
 * and passed to every connection and probe; all zero: nothing known. */
struct backend_known {
	struct {
		struct backend_caps caps;
		bool known;
	} target[2];    /* [0] [backend] address, [1] [outbound] relay */
	/* the latest probe's relay check ([backend] relay_check): the backend,
	 * which sees backstop's own address (identity xforward or none),
	 * accepted a recipient in a foreign domain from it; inbound RCPTs get
	 * 451 4.7.1 until a probe finds otherwise */
	bool relays_for_backstop;
};

/* backend_known_caps - k's record for the target, or NULL before its first EHLO */
const struct backend_caps *backend_known_caps(const struct backend_known *k, bool outbound);
void backend_known_learnt(struct backend_known *k, bool outbound, const struct backend_caps *caps);
/* backend_known_forget - as before the first EHLO (fuzz targets start
 * each run from what their input says) */
void backend_known_forget(struct backend_known *k, bool outbound);

/* backend_params - what a connection needs to know of its owner, copied
 * at backend_open. cfg and metrics must stay valid until the owner is
 * told released(); known until then too. */
/*
 * backend_loop - what one loop's backend connections share (proxy's struct
 * worker holds it; every backend_params points to it): the loop, the
 * count [backend] max_connections caps (inbound connections from
 * backend_open() until closed, QUIT included), the client TLS context for
 * [backend] tls (built at the first STARTTLS or probe, rebuilt when the
 * configuration changes; the config reference keeps the pointer
 * comparison meaningful) and the ciphertext read buffer.
 */
#define BACKEND_TLS_SCRATCH 16384
struct tls_client;
struct backend_loop {
	uv_loop_t *loop;
	unsigned long count;
	struct config *tls_cli_cfg;
	struct tls_client *tls_cli;
	bool warned_no_identity;    /* said once: neither XCLIENT nor XFORWARD */
	char tls_scratch[BACKEND_TLS_SCRATCH];
};

/* backend_loop_release - at exit: the TLS context and its config */
void backend_loop_release(struct backend_loop *bl);

struct backend_params {
	char log_id[24];            /* the owner's id in log lines */
	struct backend_loop *bl;    /* the loop's (struct backend_loop) */
	struct config *cfg;
	struct metrics *metrics;
	struct backend_known *known;
	bool outbound;              /* to [outbound] relay, not [backend] address */
	/* the client, as XCLIENT tells the backend */
	char client_ip[INET6_ADDRSTRLEN];
	unsigned client_port;
	char client_helo[256];      /* as the client said it; "" for none */
	bool client_esmtp;
	char client_name[256];      /* forward-confirmed, or "unknown" */
	bool client_name_tempfail;  /* "unknown" after a temporary DNS failure */
	/* the client's connection as sockets see it, for [backend] identity
	 * = proxy (both, in the PROXY header) and transparent (client) */
	struct sockaddr_storage client_addr;
	struct sockaddr_storage local_addr;   /* where it connected to backstop */
};

/*
 * backend_owner_ops - how a connection reports to its owner (a session).
 * owner is the pointer given to backend_open; every call is made from the
 * loop, some from inside a backend_* call the owner made.
 */
struct backend_owner_ops {
	/* the answer to the owner's backend_open (ready: r NULL, err 0),
	 * backend_command or backend_data_end (the whole reply, err 0), or
	 * the failure that ended the connection (r NULL, err < 0). One per
	 * request. A 421 reply ends the connection too: closed() first. */
	void (*reply)(void *owner, const struct smtp_reply *r, int err);
	/* the owner may send content again: what backend_data_send queued
	 * drained to half of [limits] data_buffer, or the connection failed
	 * while no reply was awaited (the next send finds it gone) */
	void (*writable)(void *owner);
	/* the owner must forget its pointer to the connection: it ended
	 * (failure, 421, an unasked reply, backend_abort) or is quitting on
	 * its own (backend_quit). Once, before any reply() for the failure. */
	void (*closed)(void *owner);
	/* [backend] idle_timeout passed since backend_idle() with the
	 * connection unused: the owner quits it (backend_quit) unless it is
	 * about to use it */
	void (*idle)(void *owner);
	/* the connection holds no reference to owner, params.cfg or
	 * params.metrics any more: once per successful backend_open, from a
	 * close callback, after closed() */
	void (*released)(void *owner);
};

/* backend_open - connect (inbound: [backend] address, outbound: [outbound]
 * relay); ops->reply gets the ready connection or the error. *bep is set
 * before any callback, which may come before backend_open returns. Returns
 * 0, BACKEND_EBUSY when [backend] max_connections inbound connections are
 * open already, or BACKEND_ECONNECT (then no callback, *bep untouched). */
int backend_open(struct backend **bep, const struct backend_params *p,
    const struct backend_owner_ops *ops, void *owner);
/* backend_idle - the owner is outside a transaction: tell it (ops->idle)
 * after [backend] idle_timeout unless a command comes first, so idle
 * clients do not pin the backend's processes */
void backend_idle(struct backend *be);
/* backend_idle_after - the same after ms instead of [backend] idle_timeout
 * (a pooled connection: [backend] pool_idle) */
void backend_idle_after(struct backend *be, uint64_t ms);

/*
 * Reuse (proxy/backend_pool.h keeps the idle connections of a loop).
 *
 * backend_reusable - be is idle between transactions with nothing of its
 * owner's in flight: it may go to a pool. Every failure closes a
 * connection, so an open one has seen no error.
 * backend_reidentifies - be told the backend its client with XCLIENT, so
 * XCLIENT can tell it another client; without, only a client of the same
 * identity may reuse it.
 * backend_handover - give be to a new owner as it is (idle, to a pool):
 * the old owner is told closed() and released() now.
 * backend_reuse - give be to a new owner that uses it at once: the old
 * owner is told closed() and released(), then the connection re-identifies
 * with p's client (RSET, then XCLIENT and EHLO when it used XCLIENT; rset
 * false: the old owner left no transaction at the backend, and XCLIENT
 * alone, which resets the backend's session, saves the RSET) and
 * answers ops->reply like a backend_open (ready, or the failure; a 4xx or
 * 5xx to RSET or XCLIENT is a failure and closes it). p->cfg must be the
 * configuration the connection was opened with.
 */
bool backend_reusable(const struct backend *be);
bool backend_reidentifies(const struct backend *be);
void backend_handover(struct backend *be, const struct backend_owner_ops *ops, void *owner);
void backend_reuse(struct backend *be, const struct backend_params *p,
    const struct backend_owner_ops *ops, void *owner, bool rset);

/* backend_connections - inbound backend connections open (the cap's count) */
unsigned long backend_connections(const struct backend_loop *bl);
/* be may be NULL in these (no connection) */
bool backend_ready(const struct backend *be);
const struct backend_caps *backend_caps(const struct backend *be);
/* backend_keepalive - while a held message uploads (no command to send),
 * send NOOP every interval_ms so the backend's idle timer does not close
 * the connection; 0 stops it. The next backend_command() ends it (and
 * waits for an outstanding NOOP's reply first). */
void backend_keepalive(struct backend *be, uint64_t interval_ms);
/* one command line (CRLF appended here); its reply to ops->reply */
void backend_command(struct backend *be, const char *line);
/* before MAIL, when the backend only offers XFORWARD */
bool backend_wants_xforward(const struct backend *be);
/* backend_data_send - write the content in b (its storage is taken over,
 * b is left empty). Returns 0 or a backend_err. */
int backend_data_send(struct backend *be, struct buf *b);
size_t backend_queued(const struct backend *be);   /* bytes not yet written */
/* backend_data_end - send b, which ends with the final dot written by the
 * session's smtp_wire, in one write; the reply to the whole message goes
 * to ops->reply. */
void backend_data_end(struct backend *be, struct buf *b);
/* close without QUIT: discards an unfinished transaction */
void backend_abort(struct backend *be);
/* QUIT and close (after the owner's last transaction) */
void backend_quit(struct backend *be);
const char *backend_err_text(int err);
/* backend_client_helo - the client's HELO name as the backend is told it
 * (cap >= 256): bytes outside '!'..'~' and the brackets of the reserved
 * [UNAVAILABLE]/[TEMPUNAVAIL] become '?'; "" when the client said nothing */
void backend_client_helo(const char *helo, char *out, size_t cap);
/* backend_helo_attr - the same as an XCLIENT/XFORWARD HELO value (xtext,
 * or [UNAVAILABLE] when there is none or it is over 255 characters) */
void backend_helo_attr(const char *helo, char *out, size_t cap);
/* backend_probe - one connection to [backend] address (greeting, EHLO,
 * QUIT): learns the capabilities into known, so that the first client's
 * EHLO is right, and tells cb (once) whether the backend answered: ok, or at which stage
 * ("connect", "greeting", "EHLO") and why it failed (static strings).
 * Never blocks; bounded by [backend] connect_timeout. quiet: failures are
 * logged at debug level (a periodic re-probe). false when it cannot probe
 * (a host name: learnt at the first real connection); cb is not called. */
typedef void (*backend_probe_cb)(void *arg, bool ok, const char *stage, const char *why);
bool backend_probe(struct backend_loop *bl, const struct config *cfg, struct backend_known *known, bool quiet,
    backend_probe_cb cb, void *arg);

/* backend__caps_parse - EHLO reply text (lines joined by '\n') to caps;
 * shared by backend.c and backend_probe.c */
void backend__caps_parse(struct backend_caps *caps, const char *text);

/* backend__tls_client_for - the backend TLS context for a configuration
 * (built once per config; backend.c and the probe) */
struct tls_client *backend__tls_client_for(struct backend_loop *bl, struct config *c);

#endif

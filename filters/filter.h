/*
 * filter - the interface every check implements.
 *
 * A check is a table of hooks (struct filter_ops), one per SMTP stage it
 * cares about. proxy/ calls the hooks of every enabled filter in order at
 * each stage; the first verdict that is not CONTINUE decides, and the
 * session replies with it. A hook may also finish later (FILTER_ASYNC): the
 * session stops reading the client until filter_async_done() delivers the
 * verdict; the event loop never waits.
 *
 * Ownership and lifetime: a filter never holds a pointer to a session. For
 * asynchronous work it keeps the struct filter_async token it was given (a
 * copy of session id and call sequence number); if the session has gone, or
 * moved on, by the time the verdict arrives, the verdict is dropped (the
 * OpenSMTPD rule: asynchronous answers are found by id, not by pointer).
 *
 * Hooks run on the event-loop thread and must not block. Blocking library
 * calls (libspf2, key lookups) go to worker threads (uv_queue_work) and come
 * back through filter_async_done(), which must be called on the loop thread.
 */
#ifndef FILTER_H
#define FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "filters/authres.h"

struct config;
struct filter_loop;
struct ratelimit;
struct uv_loop_s;

enum filter_stage {
	FILTER_CONNECT = 0,
	FILTER_HELO,
	FILTER_MAIL,   /* MAIL FROM accepted syntactically, before the backend */
	FILTER_RCPT,   /* each RCPT TO, before the backend */
	FILTER_DATA,   /* DATA command, before the backend's 354 */
	FILTER_EOH,    /* end of the header section */
	FILTER_EOD,    /* end of data, before the final dot reaches the backend */
	FILTER_STAGE_COUNT
};

enum filter_result {
	FILTER_CONTINUE = 0,
	FILTER_TEMPFAIL,  /* 4xx: code/esc default to 451 4.7.1 */
	FILTER_REJECT,    /* 5xx: code/esc default to 550 5.7.1 */
	FILTER_ASYNC,     /* verdict comes later through filter_async_done() */
};

#define FILTER_TEXT_MAX 400
#define FILTER_HEADERS_MAX 2048
#define FILTER_ADDR_MAX 255
#define FILTER_NOTE_MAX 160

/*
 * What a hook decides. Zeroed by the caller before each hook: a hook that
 * does nothing continues. code/esc/text are the SMTP reply (defaults by
 * result when 0/""), note is a short "name=value" for the transaction's
 * summary log line (e.g. "spf=fail"); headers are complete header fields
 * ("Name: value\r\n"...) to prepend to the message (at EOH and EOD only by
 * a filter that holds, see hold below); rewrite, when not empty, replaces
 * the address of the current MAIL FROM or RCPT TO (BATV).
 */
struct filter_verdict {
	enum filter_result result;
	int code;
	char esc[16];
	char text[FILTER_TEXT_MAX];
	char note[FILTER_NOTE_MAX];
	char headers[FILTER_HEADERS_MAX];
	char rewrite[FILTER_ADDR_MAX];
	/* an authentication result for the message's record (method "" =
	 * none): the way an asynchronous check reports one */
	struct auth_result auth;
	/* set by the runner, not by the filter: the name of the check whose
	 * verdict this is (the refusal counts of proxy/metrics.h) */
	const char *filter;
};

/* How a transaction ended, for the txn_end hook. */
enum filter_outcome {
	FILTER_TXN_ACCEPTED = 0, /* the backend took the message */
	FILTER_TXN_REFUSED,      /* refused by a check, by the backend, or on error */
	FILTER_TXN_RESET,        /* RSET, HELO, STARTTLS, or no message sent */
	FILTER_TXN_ABORTED,      /* the client went away mid-transaction */
};

/* A whole header field as received (un-dot-stuffed, CRLF between folded
 * lines, no final CRLF). A field longer than SESSION_HEADER_MAX (64 KiB)
 * is given once, cut: name and the first 64 KiB; the verdict covers all
 * of it. */
struct filter_header {
	const char *name;      /* without the colon */
	size_t name_len;
	const char *value;     /* after the colon, inner folding kept */
	size_t value_len;
	const char *field;     /* the whole field, "Name: value..." */
	size_t field_len;
	bool cut;
};

/* The view of a session that hooks get: the same at every stage. */
struct filter_env {
	uint64_t session_id;
	const char *sid;           /* printable session id, for log lines */
	const char *listener;      /* "inbound" or "outbound" */
	const struct sockaddr *client_sa;
	const char *client_ip;     /* textual, IPv4-mapped IPv6 already unmapped */
	unsigned client_port;
	const char *client_name;   /* reverse name, or "unknown" */
	const char *helo;          /* "" before HELO/EHLO */
	bool esmtp;
	bool tls;
	bool proxy_local;          /* the load balancer's own connection (PROXY v2 LOCAL) */
	/* transaction; valid from FILTER_MAIL on */
	const char *mail_from;     /* "local@domain", "" for the null sender */
	bool null_sender;
	const char *rcpt;          /* FILTER_RCPT: the recipient being judged */
	const char *const *rcpts;  /* recipients accepted so far (as relayed) */
	const char *const *rcpts_orig; /* same recipients as the client gave them */
	size_t nrcpts;
	const struct config *cfg;  /* the configuration this session runs on */
	struct uv_loop_s *loop;    /* the session's event loop: a filter's own
	                              timers and handles go on it */
	/* per transaction (NULL outside one) */
	unsigned txn_number;
	void **txn_state;          /* this filter's per-message slot: allocate on
	                              first use, free in txn_end */
	struct auth_results *auth; /* the message's authentication results:
	                              checks write theirs, read the others';
	                              NULL before MAIL (authres_add and
	                              authres_find take NULL) */
	bool hold;                 /* the message is held until end of data */
	struct ratelimit *ratelimit; /* the loop's rate-limit state
	                              (filters/ratelimit.h), for that check */
	struct dns *dns;           /* the loop's resolver (proxy/dns.h): lookups
	                              go to it; NULL: none (lookups fail) */
	void *loop_state;          /* this filter's per-loop state (its init's
	                              *loop_state; struct filter_loop) */
	const struct filter_loop *filters; /* the whole loop's filter state:
	                              another filter's, read through that
	                              filter's accessor (batv_keys_current(),
	                              outbound_sig_sentlog()); NULL: none */
};

/* Token for an asynchronous verdict. Copy it; it holds no pointer to the
 * session (which may be gone when the verdict comes), only the loop's
 * owner, which outlives every session (proxy's struct worker; opaque). */
struct filter_async {
	uint64_t session_id;
	uint32_t call_seq;
	void *owner;
};

struct filter_ops {
	const char *name;
	/* is the filter on under this configuration? NULL = always */
	bool (*enabled)(const struct config *cfg);
	/* setup after a (re)load, teardown at exit; may be NULL. init returns
	 * 0 or -1 with a message in err. loop_state is the filter's slot in
	 * the loop's struct filter_loop (NULL the first time): a filter keeps
	 * there what is the loop's (queues, caches, handles: on loop) and
	 * hooks see it as env->loop_state; shutdown frees it. */
	int (*init)(void **loop_state, struct uv_loop_s *loop, const struct config *cfg, char *err,
	    size_t errlen);
	void (*shutdown)(void **loop_state);
	/* check: would init succeed under cfg? Reads what init would read
	 * (files), applies nothing; 0, or -1 with the reason in err. Run for
	 * every filter before a reload's first init, so that a reload refused
	 * for one filter leaves every other filter's state as it was. May be
	 * NULL (init cannot fail but for memory). */
	int (*check)(const struct config *cfg, char *err, size_t errlen);
	/* per stage; NULL = not interested */
	enum filter_result (*hook[FILTER_STAGE_COUNT])(const struct filter_env *env,
	    struct filter_verdict *v, const struct filter_async *async);
	/* Content, during DATA. header: every field, whole; return false to
	 * drop it (every filter sees every field; one false drops it). body:
	 * the body as received, un-dot-stuffed, CRLF line ends, in chunks as
	 * they arrive. Both synchronous; may be NULL. */
	bool (*header)(const struct filter_env *env, const struct filter_header *h);
	void (*body)(const struct filter_env *env, const char *data, size_t len);
	/* txn_end: the transaction is over, however it ended; always runs for
	 * a filter whose txn_state slot is set (free it here). disconnect:
	 * the session ends. May be NULL. */
	void (*txn_end)(const struct filter_env *env, enum filter_outcome outcome);
	void (*disconnect)(const struct filter_env *env);
	/* hold: the filter adds header fields or decides only at end of data
	 * and needs the message held (spooled) until then, so its fields go
	 * on top. NULL = never. */
	bool (*hold)(const struct config *cfg);
	/* hold_listener: the same for the messages of one listener only
	 * ("inbound" or "outbound"): the outbound signature holds what leaves
	 * without holding what arrives. NULL = never. */
	bool (*hold_listener)(const struct config *cfg, const char *listener);
	/* The runner's deadline for FILTER_ASYNC under cfg, in ms (NULL or 0:
	 * 10 s); a filter with its own budget (SPF, DKIM key lookups) returns
	 * a little more than that budget, so the runner is the backstop for a
	 * lost callback. When it passes, the verdict is a tempfail (451
	 * 4.7.1), or CONTINUE when timeout_continues is set, and the log
	 * names the filter. */
	uint64_t (*async_timeout)(const struct config *cfg);
	bool timeout_continues;
};

#define FILTER_ASYNC_TIMEOUT_DEFAULT 10000

/*
 * filter_async_done - deliver a verdict for a hook that returned
 * FILTER_ASYNC. Loop thread only; may be called from inside the hook
 * itself: the session resumes from the loop's run queue, never on the
 * caller's stack. Implemented by proxy/ (session_filter.c).
 */
void filter_async_done(const struct filter_async *async,
    const struct filter_verdict *v);

/* The filters compiled in, in the order they run (filters/filters.c). */
#define FILTER_TABLE_MAX 16
extern const struct filter_ops *const filter_table[];
extern const size_t filter_table_len;

/* The filters' state that belongs to one event loop (proxy's struct
 * worker holds it): state[i] is filter_table[i]'s, made by its init at
 * start-up, updated at a reload, freed by its shutdown at exit. */
struct filter_loop {
	struct uv_loop_s *loop;
	void *state[FILTER_TABLE_MAX];
};

/* filters_init - (re)initialise every filter for cfg, in table order,
 * with fl's state; 0, or -1 with "filter: reason" in err. */
int filters_init(struct filter_loop *fl, const struct config *cfg, char *err, size_t errlen);

/* filters_check - every filter's check for cfg, in table order; 0, or -1
 * with "filter: reason" in err. Changes nothing. */
int filters_check(const struct config *cfg, char *err, size_t errlen);

/* filters_shutdown - every filter's shutdown, in reverse table order, once
 * the event loop has ended (the sentlog's last flush). */
void filters_shutdown(struct filter_loop *fl);

/* filter_index - ops's index in filter_table (its slot in struct
 * filter_loop), or filter_table_len when it is not in the table. */
size_t filter_index(const struct filter_ops *ops);

/* filter_loop_state - ops's per-loop state in fl (what its init made), or
 * NULL when fl is NULL, ops is not in the table or has no state. The way
 * one filter reads what another keeps for the loop. */
void *filter_loop_state(const struct filter_loop *fl, const struct filter_ops *ops);


/* filter_stage_name - "connect", "helo", "mail", ... */
const char *filter_stage_name(enum filter_stage stage);

#endif

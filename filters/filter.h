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

struct config;

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
 * ("Name: value\r\n"...) to prepend to the message; rewrite, when not empty,
 * replaces the address of the current MAIL FROM or RCPT TO (BATV).
 */
struct filter_verdict {
	enum filter_result result;
	int code;
	char esc[16];
	char text[FILTER_TEXT_MAX];
	char note[FILTER_NOTE_MAX];
	char headers[FILTER_HEADERS_MAX];
	char rewrite[FILTER_ADDR_MAX];
};

/* The read-only view of a session that hooks get. */
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
	/* transaction; valid from FILTER_MAIL on */
	const char *mail_from;     /* "local@domain", "" for the null sender */
	bool null_sender;
	const char *rcpt;          /* FILTER_RCPT: the recipient being judged */
	const char *const *rcpts;  /* recipients accepted so far (as relayed) */
	const char *const *rcpts_orig; /* same recipients as the client gave them */
	size_t nrcpts;
	const struct config *cfg;  /* the configuration this session runs on */
};

/* Token for an asynchronous verdict. Copy it; it holds no pointers. */
struct filter_async {
	uint64_t session_id;
	uint32_t call_seq;
};

struct filter_ops {
	const char *name;
	/* is the filter on under this configuration? NULL = always */
	bool (*enabled)(const struct config *cfg);
	/* process-wide setup/teardown, after a (re)load; may be NULL. Returns 0
	 * or -1 with a message in err. */
	int (*init)(const struct config *cfg, char *err, size_t errlen);
	void (*shutdown)(void);
	/* per stage; NULL = not interested */
	enum filter_result (*hook[FILTER_STAGE_COUNT])(const struct filter_env *env,
	    struct filter_verdict *v, const struct filter_async *async);
	/* header fields as received, during DATA: return false to drop the
	 * field (e.g. a forged Authentication-Results). name/value exclude the
	 * colon and the final CRLF; value keeps inner folding. May be NULL. */
	bool (*header)(const struct filter_env *env, const char *name,
	    size_t name_len, const char *value, size_t value_len);
	/* the session has closed: drop its asynchronous work (queued checks,
	 * the worker threads of running ones); verdicts for it would be
	 * dropped anyway. Loop thread. May be NULL. Interim: the v2 filter
	 * interface will carry a disconnect stage. */
	void (*session_closed)(uint64_t session_id);
};

/*
 * filter_async_done - deliver a verdict for a hook that returned
 * FILTER_ASYNC. Loop thread only. Implemented by proxy/ (session.c).
 */
void filter_async_done(const struct filter_async *async,
    const struct filter_verdict *v);

/* The filters compiled in, in the order they run (filters/filters.c). */
extern const struct filter_ops *const filter_table[];
extern const size_t filter_table_len;

/* filters_init - (re)initialise every filter for cfg, in table order;
 * 0, or -1 with "filter: reason" in err. */
int filters_init(const struct config *cfg, char *err, size_t errlen);

/* filters_session_closed - call every filter's session_closed hook;
 * proxy/ calls it once per session, when it closes. */
void filters_session_closed(uint64_t session_id);

/* filter_stage_name - "connect", "helo", "mail", ... */
const char *filter_stage_name(enum filter_stage stage);

#endif

/*
 * session - one client connection: the SMTP server side of backstop.
 *
 * A session owns its client socket, its timer, its transaction and (lazily)
 * its backend connection. Commands are taken from the input buffer one at a
 * time: a command that needs a filter verdict or a backend reply makes the
 * session "wait"; pipelined commands stay in the buffer until the answer
 * arrives, so replies always go out in order (RFC 2920 3.1).
 *
 * Lifetime: a session is freed only after the close callbacks of all its
 * handles ran (session_release). Asynchronous verdicts find it by id
 * (session_find), never by a pointer kept elsewhere.
 *
 * Split over files by concern: session.c (I/O, lifecycle, timers, replies,
 * the client's name), session_cmd.c (commands), session_data.c (message
 * content), session_filter.c (the filter chain), session_backend.c (the
 * session as owner of its backend connection).
 *
 * Below the session, and never including this file: backend.c and
 * backend_probe.c (the client side towards the backend MTA: told what it
 * needs in struct backend_params, it reports through an ops table) and
 * rdns.c (the client's name: answers by session id).
 */
#ifndef SESSION_H
#define SESSION_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "filters/filter.h"
#include "proxy/buf.h"
#include "proxy/config.h"
#include "proxy/metrics.h"
#include "proxy/spool.h"
#include "smtp/smtp_addr.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_fields.h"
#include "smtp/smtp_foreign.h"
#include "smtp/smtp_line.h"
#include "smtp/smtp_reply.h"
#include "smtp/smtp_server.h"
#include "smtp/smtp_wire.h"

struct backend;
struct backend_known;
struct listener;
struct tls_conn;
struct tls_server;
struct worker;

#define SESSION_IN_MAX 16384      /* input held at most: commands or content */
#define SESSION_CMD_MAX 2048      /* command line limit (Postfix line_length_limit) */
#define SESSION_OUT_MAX 65536     /* replies held before the client reads them */
#define SESSION_HEADER_MAX 65536  /* one header field, when filters inspect it */
#define SESSION_NOTES_MAX 512
#define SESSION_REFUSALS_MAX 1024
#define SESSION_REPLY_LOG_MAX 300

enum session_rdns { RDNS_NONE = 0, RDNS_PENDING, RDNS_DONE };

enum session_wait {
	WAIT_NONE = 0,
	WAIT_FILTER,    /* a filter's asynchronous verdict */
	WAIT_BACKEND,   /* the backend's reply */
	WAIT_DRAIN,     /* the backend's write queue to drain (DATA) */
	WAIT_GREET,     /* greet_pause before the banner */
	WAIT_TLS,       /* STARTTLS handshake */
	WAIT_RDNS,      /* the client's name, before the backend needs it */
	WAIT_PROXY,     /* the PROXY protocol header (session_proxy.c) */
};

/* Recipient as the client gave it and as relayed (after filter rewrites). */
struct txn_rcpt {
	char *orig;
	char *relayed;
};

/* What a transaction records that an idle session need not hold: the
 * sender and recipient as parsed, their parameters, the checks' notes and
 * authentication results, the refusals and a content refusal's reply.
 * About 12 kB, so it lives out of line (struct txn's rec): allocated when
 * MAIL is taken (cmd_mail) and freed with the transaction (txn_free). */
struct txn_record {
	struct smtp_path from;   /* as given */
	char from_relayed[SMTP_ADDR_MAX + 1];
	char mail_params[512];   /* parameters passed on to the backend */
	char notes[SESSION_NOTES_MAX]; /* "spf=pass batv=pass" */
	char refusals[SESSION_REFUSALS_MAX]; /* "<rcpt> 550 5.1.1 text; ..." */
	struct auth_results auth;    /* spf, dkim, dmarc: one A-R field */
	char failed_esc[16];     /* content refused (failed_code): the reply */
	char failed_text[FILTER_TEXT_MAX];
	/* current command (RCPT) */
	struct smtp_path rcpt;
	char rcpt_params[512];
};

/* One mail transaction: from MAIL to end of data, RSET or HELO.
 *
 * rec is NULL between transactions (an idle session holds only this
 * struct's few hundred bytes). It is set from cmd_mail on; whenever the
 * session's state is MAIL, RCPT or DATA it is set (txn_reset, which frees
 * it, always leaves those states). Code that can run between transactions
 * (summaries, the filter env, verdicts at connect and HELO) checks it. */
struct txn {
	bool active;             /* MAIL accepted */
	unsigned number;         /* per session, for ids */
	struct txn_record *rec;  /* NULL between transactions */
	uint64_t declared_size;
	bool mail_relayed;       /* the backend has seen MAIL */
	struct txn_rcpt *rcpts;
	size_t nrcpts;
	const char **rcpt_view;      /* for struct filter_env */
	const char **rcpt_orig_view;
	unsigned rcpts_refused;
	struct buf headers;      /* prepended header fields from filters */
	bool summarized;         /* its one summary line is written */
	/* checks */
	void *filter_state[FILTER_TABLE_MAX]; /* per filter, per message */
	enum filter_outcome outcome; /* for txn_end: how it ended */
	/* content */
	bool hold;               /* held in the spool until end of data */
	struct spool spool;      /* the held message (wire form) */
	uint64_t spool_sent;     /* bytes of it sent to the backend */
	bool spool_sending;      /* end of data agreed: sending the spool */
	struct buf late_headers; /* fields the checks add at EOH/EOD (hold) */
	struct buf body_chunk;   /* body for the body hooks, in chunks */
	bool feed_body;          /* some enabled check has a body hook */
	struct smtp_data data;
	struct smtp_wire wire;   /* the one writer of content to the backend */
	struct smtp_fields fields; /* header fields, judged whole */
	bool eoh_done;
	int failed_code;         /* content refused: reply at end of data */
	enum metrics_check failed_check; /* and what refused it */
	uint64_t started_ms;
	uint64_t data_started_ms; /* when DATA's 354 went (data_min_rate) */
	uint64_t data_paused_ms;  /* time since then backstop held the content
	                             (a check, the backend, a full buffer) */
	uint64_t data_paused_since; /* 0, or when the current hold began */
	bool eod_pending;        /* the final dot came; the next reply answers it */
	bool dot_at_backend;     /* ... and went to the backend: closing now could
	                            leave it delivered and the client retrying */
	uint64_t eod_started_ms; /* when (for the end-of-data latency) */
};

struct session {
	uint64_t id;
	char sid[24];
	struct config *cfg;         /* reference held for the whole session */
	struct worker *worker;      /* the loop's owner (proxy/worker.h) */
	struct metrics *metrics;    /* the loop's counters */
	struct backend_known *backend_known; /* the loop's record of what the backend offers */
	struct backend_pool *backend_pool;   /* the loop's idle backend connections */
	struct listener *listener;
	bool outbound;              /* the listener's role */
	uv_tcp_t tcp;
	uv_timer_t timer;
	int open_handles;           /* freed when the last close_cb ran */
	struct session *hnext;      /* registry hash chain */
	struct session *prev, *next;/* list of all sessions */

	struct sockaddr_storage peer;
	char ip[INET6_ADDRSTRLEN];
	unsigned port;
	char ipkey[20];             /* family, network bytes, prefix: per-IP counting */
	char netkey[20];            /* the same per network (max_connections_per_net) */
	bool ip_counted, net_counted;/* their +1 was stored (a full shared table
	                               stores none): only those are taken off */
	char client_name[256];      /* forward-confirmed, or "unknown" */
	enum session_rdns rdns;
	bool rdns_temporary;        /* the lookup failed temporarily */
	/* PROXY protocol (session_proxy.c): the load balancer's own address
	 * when peer/ip/port are the client's from its header */
	bool proxied;
	bool proxy_local;           /* a PROXY v2 LOCAL header: the balancer's own (health check) */
	char proxy_ip[INET6_ADDRSTRLEN];
	unsigned proxy_port;
	uint64_t proxy_deadline;    /* ms: the header must be complete by then */
	struct sockaddr_storage proxy_dst; /* the header's destination: the
	                                      address the client connected to */

	enum smtp_state state;
	enum session_wait wait;
	char helo[256];
	bool esmtp;
	bool greeted;               /* banner sent */
	bool closing;
	bool reading;
	bool drain_after_txn;       /* SIGTERM: close after this transaction */
	bool skip_to_eol;           /* discarding the rest of an over-long line */
	uint64_t line_started_ms;   /* when the pending, incomplete command line
	                               began (0 = none): its deadline */
	bool tls_rx_raw;            /* TLS bytes came that decrypted to nothing yet
	                               (a record in progress: the line deadline runs) */
	bool out_blocked;           /* the client does not read its replies */
	unsigned errors;
	unsigned junk_commands;     /* RSET NOOP VRFY EXPN HELP since the last
	                               accepted message ([limits] junk_command_limit) */
	char last_refusal[SESSION_REPLY_LOG_MAX]; /* "550 5.7.1 text" of the
	                                          last 4xx/5xx reply, for logs */
	enum metrics_check reply_check; /* what the next 4xx/5xx reply is
	                                   counted under; session_reply resets
	                                   it (AUTO: by the reply's code) */
	uint32_t call_seq;          /* filter calls; stale verdicts are dropped */
	uint64_t filter_deadline;   /* ms: the async filter call must answer by then */
	bool verdict_ready;         /* an async verdict waits in the run queue */
	size_t filter_next;         /* next filter to run at the current stage */
	enum filter_stage filter_stage;
	void (*filter_then)(struct session *, const struct filter_verdict *);
	struct filter_verdict *verdict;  /* of the filter stage in progress;
	                                    NULL between stages */
	uint64_t started_ms;
	unsigned txn_count;

	uv_shutdown_t shutdown_req;
	bool in_process;            /* session_process() is on the stack */
	bool be_rset_pending;       /* the backend still holds an ended transaction */
	bool be_pooled;             /* s->be came from the pool and is re-identifying */
	bool xforward_sent;         /* for the current transaction */
	/* what to do with the backend's reply to MAIL */
	void (*mail_then)(struct session *, const struct smtp_reply *, int);
	/* what to do with the backend's answer to the request in flight
	 * (session_backend.c) */
	void (*be_then)(struct session *, const struct smtp_reply *, int);
	char rewrite[FILTER_ADDR_MAX]; /* address rewrite from the filters */
	size_t inpos;               /* processed bytes at the front of in */
	struct buf in;              /* client bytes not yet processed */
	struct smtp_line_reader lr;
	struct buf out;             /* replies not yet written */

	struct tls_conn *tls;
	uint64_t tls_deadline;      /* the handshake must be over by then (ms) */
	struct tls_server *tls_server;

	/* a connect-stage refusal, given to every MAIL/RCPT/DATA (Postfix's
	 * smtpd_delay_reject): allocated only for refused clients */
	struct filter_verdict *refusal;

	struct txn txn;
	struct buf dbuf;            /* message content not yet sent to the backend */
	struct backend *be;
};

/* session_accept - take a new connection from listener. */
void session_accept(struct listener *l, uv_stream_t *server);
/* session_connected - the connection's client is known (the socket's
 * peer, or a PROXY protocol header's source): per-IP limits, the client's
 * name, greet_pause or the connect checks and the banner. */
void session_connected(struct session *s);
/* session_peer_describe - ip, port and the per-IP key from s->peer */
void session_peer_describe(struct session *s);
/* session_ipcount - +1: count the session under its ipkey and netkey;
 * -1: take off what its +1 stored, nothing else (a full shared table
 * stores nothing, and the close of such a session must not take off the
 * count another session of the same address added) */
void session_ipcount(struct session *s, int delta);

/* session_reply - the one place replies are built (smtp_reply_format),
 * and refusals counted (s->reply_check). */
void session_reply(struct session *s, int code, const char *esc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* session_reply_smtp - a backend's reply, passed on (counted as the
 * backend's refusal when it is one) */
void session_reply_smtp(struct session *s, const struct smtp_reply *r);
/* session_reply_verdict - a check's refusal (filter verdict) */
void session_reply_verdict(struct session *s, const struct filter_verdict *v);
/* session_close - flush replies, then close (and abort the backend). */
void session_close(struct session *s, const char *why);
void session_process(struct session *s);
void session_resume(struct session *s);
void session_timer_arm(struct session *s);
void session_read_start(struct session *s);
void session_read_stop(struct session *s);
void session_flush(struct session *s);
struct session *session_find(struct worker *w, uint64_t id);
void session_release(struct session *s);    /* a handle closed */

/* the loop's shutdown: SIGTERM */
void sessions_drain(struct worker *w);
/* sessions_close_all - 421 and close every session; unless force, a
 * session whose final dot is at the backend is left to get the backend's
 * reply first (it closes right after it). The number left. */
unsigned sessions_close_all(struct worker *w, const char *why, bool force);
unsigned sessions_count(struct worker *w);

/* session_cmd.c */
void session_command(struct session *s, const struct smtp_line *line);
/* session_errors_exceeded - at max_errors: 421, close, true (before the next
 * command line, whole or over-long) */
bool session_errors_exceeded(struct session *s);
/* session_non_smtp - a client speaking another protocol (HTTP, TLS in
 * plaintext): logged, told once (postscreen's reply) and disconnected */
void session_non_smtp(struct session *s, enum smtp_foreign what, const char *data, size_t len);
void session_banner(struct session *s);
void txn_reset(struct session *s);
void txn_free(struct session *s);
void filters_run(struct session *s, enum filter_stage stage,
    void (*then)(struct session *, const struct filter_verdict *));
/* session_summary - the transaction's one summary line (later calls for
 * the same transaction write nothing); result says how it ended. */
void session_summary(struct session *s, const char *result);
/* session_filter.c: the v2 hooks (filters/filter.h) */
bool filters_header(struct session *s, const struct filter_header *h);
void filters_body(struct session *s, const char *data, size_t len);
bool filters_hold(const struct session *s);
bool filters_body_wanted(const struct session *s);
void filters_txn_end(struct session *s);
void filters_session_end(struct session *s);
void filters_timed_out(struct session *s);
/* session_summary_refused - the summary of a transaction refused at stage:
 * "refused at STAGE: <the reply given>". */
void session_summary_refused(struct session *s, const char *stage);
/* txn_refusal - note a refused command of the transaction (a recipient,
 * DATA) with the reply given, for its summary line. */
void txn_refusal(struct session *s, const char *what);
void session_starttls_done(struct session *s, bool ok);
void session_rdns_done(struct session *s);

/* session_backend.c: the session's backend connection (s->be, NULL when
 * there is none; backend.h for the calls without a continuation). then
 * gets the answer: the reply, or r NULL with err (backend_err) */
typedef void (*session_backend_then)(struct session *s, const struct smtp_reply *r, int err);
/* session_backend_open - connect unless s has a connection (then nothing
 * happens); returns 0, or BACKEND_EBUSY / BACKEND_ECONNECT (then is not
 * called) */
int session_backend_open(struct session *s, session_backend_then then);
/* session_backend_pool_put - the session ends cleanly: its connection goes
 * to the loop's pool (true; s->be is NULL then) or stays s's to quit */
bool session_backend_pool_put(struct session *s);
/* one command line; without a connection then gets BACKEND_ELOST at once */
void session_backend_command(struct session *s, const char *line, session_backend_then then);
/* the content in b, ending with the final dot (backend_data_end) */
void session_backend_data_end(struct session *s, struct buf *b, session_backend_then then);

/* session_proxy.c: the PROXY protocol phase, before anything else on a
 * [server] listener with proxy_protocol = on */
bool session_proxy_wanted(const struct session *s);
/* session_proxy_begin - refuse a peer outside proxy_trusted, else wait
 * (WAIT_PROXY) for the header, at most [server] proxy_timeout */
void session_proxy_begin(struct session *s);
/* session_proxy_input - the bytes read so far (s->in): false while the
 * header is incomplete or when the session was closed; true once the
 * header is consumed and session_connected() ran, with the client's own
 * bytes (if any came in the same read) left in s->in */
bool session_proxy_input(struct session *s);
void session_proxy_timeout(struct session *s);

/* session_data.c */
void session_data_start(struct session *s);
/* returns true when it consumed input and may be called again */
bool session_data_process(struct session *s);

#endif

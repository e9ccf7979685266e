/*
 * fuzz_backend_pool - the backend connection pool's reuse path (issue 14:
 * proxy/backend_pool.c, backend_reuse in proxy/backend.c, the session's
 * side in proxy/session_backend.c) with arbitrary backend replies, in one
 * process over loopback TCP (fuzz_peers.h).
 *
 * One input is two or three client sessions in turn ([backend] pool_size
 * = 4, so a connection that session 1 leaves idle is kept):
 *   session 1: EHLO, a transaction; then (flag) MAIL, RCPT, RSET, which
 *     leaves a transaction at the backend (the next owner owes RSET); then
 *     (flag) QUIT or a bare disconnect;
 *   between sessions: the kept connection gets the input's "pooled" bytes
 *     (unsolicited: an idle timeout 421, garbage, a partial line), and
 *     (flag) the backend closes it, with a FIN or an RST;
 *   session 2, from 127.0.0.2 or (flag) 127.0.0.1: EHLO, a transaction,
 *     QUIT: it takes the kept connection (RSET when owed, XCLIENT, EHLO);
 *   session 3 (flag), from 127.0.0.1: the same as session 2.
 *
 * Input: byte 0 the flags (FL_*), then three parts separated by "\n==\n":
 * the backend's replies on the connections of session 1, the pooled bytes,
 * the replies of sessions 2 and 3 (a kept connection starts this part
 * over at each reuse, a new connection in those sessions too). Each reply
 * part is cut into chunks at "\n--\n" as in fuzz_backend: chunk 0 is the
 * greeting of a new connection (or the answer to a reuse's first command),
 * each line backstop sends gets the next chunk, and while backstop waits
 * for a reply that is not complete yet the backend sends the next chunk;
 * after the last one it closes. QUIT is answered 221 and closed, always.
 *
 * Checks, beyond ASan/UBSan/leaks and hangs:
 *  - invariant 1, per session: never a 250 to the client's end of data
 *    before the backend answered THAT dot with a '2' (fuzz_peers.h), so a
 *    reply meant for session 1 is never taken as session 2's;
 *  - a kept connection that got a reply line not 2xx/3xx, garbage, or any
 *    byte while kept is never reused (no command but QUIT reaches it in a
 *    later session);
 *  - on a reused connection no MAIL before every reuse command (RSET,
 *    XCLIENT, EHLO) got an answer starting with '2', and none without a
 *    new XCLIENT when the connection had one accepted before: the new
 *    client is never relayed under the old one's identity.
 */
#define _GNU_SOURCE   /* memmem, as in fuzz_peers.h */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>

struct pool_watch {
	unsigned opened_in;     /* the session during which it was accepted */
	bool owed;              /* backstop sent a line (or connected) and waits for a whole reply */
	bool parked;            /* kept by backstop between sessions: no line since */
	bool tainted;           /* a reply line not 2xx/3xx, garbage, or bytes while kept */
	char awaiting[8];       /* the command whose answer is the next byte sent */
	bool xclient_ok;        /* an XCLIENT got a '2' answer on it, ever */
	bool reusing;           /* reused: from the first line of the new session to MAIL */
	bool reuse_refused;     /* a reuse command got an answer not starting with '2' */
	bool reuse_xclient_ok;  /* this reuse's XCLIENT got a '2' answer */
	char head[4];           /* the first bytes of the reply line being sent */
	size_t head_len;
};

#define FP_CONN_EXTRA struct pool_watch w;
#define FP_ON_ACCEPT(c) pool_on_accept(c)
#define FP_ON_SEND(c, data, len) pool_on_send(c, data, len)
#define FP_ON_LINE(c, line) pool_on_line(c, line)
#define FP_TICK_SKIP(c) ((c)->w.parked || (!(c)->w.owed && !(c)->dot_seen))

struct fp_conn;
static void pool_on_accept(struct fp_conn *c);
static void pool_on_send(struct fp_conn *c, const char *data, size_t len);
static bool pool_on_line(struct fp_conn *c, const char *line);

#include "tests/fuzz/fuzz_peers.h"
#include "proxy/backend_pool.h"
#include "proxy/metrics.h"

enum {
	FL_QUIT = 1,            /* session 1 ends with QUIT, else the client just closes */
	FL_TXN_LEFT = 2,        /* session 1 ends after MAIL, RCPT, RSET: RSET is owed */
	FL_SAME_CLIENT = 4,     /* session 2 from 127.0.0.1 (same identity), else 127.0.0.2 */
	FL_KNOWN = 8,           /* the backend's capabilities are known (early XCLIENT) */
	FL_KNOWN_XCLIENT = 16,  /* ... and include XCLIENT */
	FL_CLOSE_POOLED = 32,   /* the backend closes the kept connection */
	FL_RST = 64,            /* every close of the backend's is an RST */
	FL_THIRD = 128,         /* a third session */
};

static unsigned pool_session;   /* 1, 2, 3: the exchange running */

static void die(const char *why, const char *line)
{
	fprintf(stderr, "fuzz_backend_pool: session %u: %s%s%.60s%s\n", pool_session, why,
	    line ? " (\"" : "", line ? line : "", line ? "\")" : "");
	abort();
}

static void pool_on_accept(struct fp_conn *c)
{
	c->w.opened_in = pool_session;
	c->w.owed = true;   /* its greeting */
}

/* a reply line begins with [23]dd to keep the connection reusable; the
 * line is final (the whole reply sent) unless its 4th byte is '-' */
static void reply_line_done(struct fp_conn *c)
{
	const char *h = c->w.head;
	size_t n = c->w.head_len;
	bool well = n >= 3 && (h[0] == '2' || h[0] == '3') && isdigit((unsigned char)h[1]) &&
	    isdigit((unsigned char)h[2]);

	if (!well)
		c->w.tainted = true;
	if (!(n == 4 && h[3] == '-'))
		c->w.owed = false;
	c->w.head_len = 0;
}

static void pool_on_send(struct fp_conn *c, const char *data, size_t len)
{
	if (c->w.parked)
		c->w.tainted = true;   /* whatever a kept connection says ends it */
	if (c->w.awaiting[0] != '\0') {
		bool two = data[0] == '2';
		if (c->w.reusing && !two)
			c->w.reuse_refused = true;
		if (strcmp(c->w.awaiting, "XCLIENT") == 0 && two) {
			c->w.xclient_ok = true;
			c->w.reuse_xclient_ok = c->w.reusing;
		}
		c->w.awaiting[0] = '\0';
	}
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			reply_line_done(c);
			continue;
		}
		if (c->w.head_len < sizeof c->w.head)
			c->w.head[c->w.head_len++] = data[i];
	}
}

static bool is_cmd(const char *line, const char *cmd)
{
	size_t n = strlen(cmd);
	return strncasecmp(line, cmd, n) == 0 && (line[n] == '\0' || line[n] == ' ' || line[n] == ':');
}

static bool pool_on_line(struct fp_conn *c, const char *line)
{
	if (is_cmd(line, "QUIT")) {
		/* backstop ends a connection it does not keep (or evicts one) */
		fp_say(c, "221 2.0.0 Bye\r\n");
		fp_conn_close(c, false);
		return true;
	}
	c->w.owed = true;
	if (c->w.parked) {
		/* the first command since the connection was kept: a reuse */
		c->w.parked = false;
		if (c->w.tainted)
			die("reused a kept connection that had sent a refusal, garbage or bytes while kept", line);
		c->w.reusing = true;
		c->w.reuse_refused = false;
		c->w.reuse_xclient_ok = false;
	}
	if (c->w.reusing && (is_cmd(line, "MAIL") || is_cmd(line, "XFORWARD"))) {
		if (c->w.reuse_refused)
			die("a transaction on a reused connection whose RSET/XCLIENT/EHLO was not answered 2xx", line);
		if (c->w.xclient_ok && !c->w.reuse_xclient_ok)
			die("a transaction on a reused XCLIENT connection without a new accepted XCLIENT", line);
		c->w.reusing = false;
	}
	if (is_cmd(line, "RSET") || is_cmd(line, "XCLIENT") || is_cmd(line, "EHLO"))
		snprintf(c->w.awaiting, sizeof c->w.awaiting, "%.7s", line);
	else
		c->w.awaiting[0] = '\0';
	return false;
}

/* ---- the sessions ---- */

static const char session1[] =
    "EHLO one.example.org\r\n"
    "MAIL FROM:<a@example.org>\r\n"
    "RCPT TO:<b@example.net>\r\n"
    "DATA\r\n"
    "Subject: one\r\n\r\nfrom session one\r\n.\r\n";
static const char session1_txn_left[] =
    "MAIL FROM:<left@example.org>\r\n"
    "RCPT TO:<b@example.net>\r\n"
    "RSET\r\n";
static const char session2[] =
    "EHLO two.example.org\r\n"
    "MAIL FROM:<c@example.org>\r\n"
    "RCPT TO:<d@example.net>\r\n"
    "DATA\r\n"
    "Subject: two\r\n\r\nfrom session two\r\n.\r\n"
    "QUIT\r\n";

/* cut part [from, to) of data into the script's chunks at "\n--\n" */
static void script_of(const uint8_t *data, size_t from, size_t to, bool rst)
{
	size_t pos = from;

	memset(&fp_script, 0, sizeof fp_script);
	fp_script.scripted = true;
	fp_script.close_with_rst = rst;
	while (pos <= to && fp_script.nchunks < FP_MAX_CHUNKS) {
		const uint8_t *sep = memmem(data + pos, to - pos, "\n--\n", 4);
		size_t end = sep ? (size_t)(sep - data) : to;
		fp_script.chunk[fp_script.nchunks] = data + pos;
		fp_script.chunk_len[fp_script.nchunks++] = end - pos;
		if (sep == NULL)
			break;
		pos = end + 4;
	}
}

/* run the loop until nothing has moved for a few milliseconds: what
 * backstop does with a closed or talkative kept connection is done */
static void settle(void)
{
	unsigned long last = fp_progress, beats;
	unsigned idle = 0;

	uv_timer_start(&fp_heartbeat, fp_beat, 1, 1);
	while (idle < 5) {
		beats = fp_beats;
		uv_run(fp_loop, UV_RUN_ONCE);
		if (fp_progress != last) {
			last = fp_progress;
			idle = 0;
		} else if (fp_beats != beats) {
			idle++;
		}
	}
	uv_timer_stop(&fp_heartbeat);
}

static void session(unsigned number, const char *client_ip, const char *script, size_t len)
{
	size_t rxlen;
	const char *rx;

	pool_session = number;
	fp_client_ip = client_ip;
	rx = fp_exchange((const uint8_t *)script, len, &rxlen);
	if (fp_count_accepts(rx, rxlen) > fp_backend_accepts)
		die("more end-of-data 250s to the client than the backend accepted", NULL);
	settle();
	/* what is still open now is kept by backstop: nothing since */
	for (struct fp_conn *c = fp_conns; c; c = c->next)
		if (!c->closed) {
			c->w.parked = true;
			c->w.reusing = false;
			c->w.awaiting[0] = '\0';
			c->next_chunk = 0;   /* a reuse starts the replies part over */
		}
}

/* The server state this target reads, in one place (the pool and the
 * capabilities record are the loop's; their accessors may change). */
static struct backend_known *pool_known(void)
{
	return &fp_worker.backend_known;
}

static size_t pool_kept(void)
{
	return fp_worker.backend_pool.n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fp_keep_backend = true;
	fp_init("xclient = auto\npool_size = 4\npool_idle = 30s");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s1[sizeof session1 + sizeof session1_txn_left + 8];
	size_t a_end, b_start, b_end, c_start;
	const uint8_t *sep;
	unsigned flags;

	if (size < 1 || size > 16384)
		return 0;
	flags = data[0];
	sep = memmem(data + 1, size - 1, "\n==\n", 4);
	a_end = sep ? (size_t)(sep - data) : size;
	b_start = b_end = c_start = size;
	if (sep != NULL) {
		b_start = a_end + 4;
		sep = memmem(data + b_start, size - b_start, "\n==\n", 4);
		b_end = sep ? (size_t)(sep - data) : size;
		c_start = sep ? b_end + 4 : size;
	}

	if ((flags & FL_KNOWN) != 0) {
		struct backend_caps caps;
		memset(&caps, 0, sizeof caps);
		caps.xclient = (flags & FL_KNOWN_XCLIENT) != 0;
		caps.pipelining = true;
		backend_known_learnt(pool_known(), false, &caps);
	} else {
		backend_known_forget(pool_known(), false);
	}

	/* session 1 */
	script_of(data, 1, a_end, (flags & FL_RST) != 0);
	snprintf(s1, sizeof s1, "%s%s%s", session1, (flags & FL_TXN_LEFT) ? session1_txn_left : "",
	    (flags & FL_QUIT) ? "QUIT\r\n" : "");
	session(1, NULL, s1, strlen(s1));

	/* kept: the pooled bytes, then maybe the backend's close */
	for (struct fp_conn *c = fp_conns; c; c = c->next) {
		if (c->closed || !c->w.parked)
			continue;
		fp_send(c, data + b_start, b_end - b_start);
		if ((flags & FL_CLOSE_POOLED) != 0)
			fp_conn_close(c, (flags & FL_RST) != 0);
	}
	settle();

	/* sessions 2 and 3: the replies part, over again for each connection */
	script_of(data, c_start, size, (flags & FL_RST) != 0);
	session(2, (flags & FL_SAME_CLIENT) ? "127.0.0.1" : "127.0.0.2", session2, sizeof session2 - 1);
	if ((flags & FL_THIRD) != 0)
		session(3, "127.0.0.1", session2, sizeof session2 - 1);

	/* the next input starts with an empty pool */
	for (struct fp_conn *c = fp_conns; c; c = c->next)
		fp_conn_close(c, false);
	while (fp_conns != NULL || pool_kept() > 0)
		uv_run(fp_loop, UV_RUN_ONCE);
	return 0;
}

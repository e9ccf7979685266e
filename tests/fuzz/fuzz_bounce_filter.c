/*
 * fuzz_bounce_filter - the bounce check (filters/bounce.c) end to end on a
 * hostile message: header fields and body through the filter's own hooks
 * (classifier included), then its end-of-data verdict, which reads what
 * the classifier took from the message (the original's Return-Path, From,
 * Message-ID, Date, Received hops, X-Backstop-Sig) and matches it against
 * [bounce] our_relays, exempt, BATV tags and X-Backstop-Sig with real
 * keys, and writes the log line, the reply and the X-Backstop-Bounce
 * field from it. Byte 0 chooses the mode, the sender, the recipient and
 * the log level; the rest is the message (CRLF, header section up to the
 * first empty line, fields split as proxy/ splits them), given to the body
 * hook in pieces whose sizes come from byte 1.
 *
 * Checks: no crash, leak or over-read; a refusal is 550 5.7.1 with a text;
 * the reply text and the added field hold no CR, LF or NUL (a header
 * field that ends early would let the message write our fields).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filters/filter.h"
#include "proxy/config.h"
#include "proxy/log.h"

/* the loop's filter state (filters/filter.h: struct filter_loop): the
 * bounce filter reads the BATV filter's keys from it */
static struct filter_loop filters;

extern const struct filter_ops filter_bounce;
extern const struct filter_ops filter_batv;

static struct config *cfg[2];   /* [bounce] enforce, observe */

static struct config *load(const char *text)
{
	char path[] = "/tmp/fuzz_bounce_filter.XXXXXX", err[2048];
	int fd = mkstemp(path);
	struct config *c;

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	c = config_load(path, err, sizeof err);
	unlink(path);
	if (c == NULL) {
		fprintf(stderr, "fuzz_bounce_filter: %s", err);
		abort();
	}
	return c;
}

static void init(void)
{
	char keys[] = "/tmp/fuzz_bounce_keys.XXXXXX", text[1024], err[512];
	int fd = mkstemp(keys);
	static const char secret[] = "1 fuzz-secret-0123456789\n";

	if (fd < 0 || write(fd, secret, sizeof secret - 1) != (ssize_t)(sizeof secret - 1))
		abort();
	fchmod(fd, 0600);
	close(fd);
	for (int i = 0; i < 2; i++) {
		snprintf(text, sizeof text, "[backend]\naddress = 127.0.0.1:25\n"
		    "[batv]\nmode = enforce\nrefuse_at = content\ndomains = test.example\nkeys_file = %s\n"
		    "[bounce]\nmode = %s\nunverifiable = %s\n"
		    "our_relays = 192.0.2.0/24 2001:db8::/32\n"
		    "exempt = noc@test.example .lists.test.example\n",
		    keys, i ? "observe" : "enforce", i ? "mark" : "refuse");
		cfg[i] = load(text);
	}
	/* the BATV filter holds the keys both filters verify with */
	if (filter_batv.init(&filters.state[filter_index(&filter_batv)], NULL, cfg[0], err, sizeof err) < 0)
		abort();
	unlink(keys);
}

static void check_text(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	if (n == cap)
		abort();   /* not terminated */
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\r' || s[i] == '\n')
			abort();
}

static void check_fields(const char *h, size_t cap)
{
	size_t n = strnlen(h, cap);
	if (n == cap)
		abort();
	/* complete fields: every CR is a CRLF that ends one, and each line
	 * starts with a name (no field folded or cut open) */
	for (size_t i = 0; i < n; i++) {
		if (h[i] == '\r' && h[i + 1] != '\n')
			abort();
		if (h[i] == '\n' && (h[i - 1] != '\r' || (i + 1 < n && (h[i + 1] == ' ' || h[i + 1] == '\t'))))
			abort();
	}
	if (n > 0 && (n < 2 || h[n - 2] != '\r' || h[n - 1] != '\n'))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const senders[] = {"", "MAILER-DAEMON@remote.example", "friend@remote.example", ""};
	static const char *const rcpts[] = {"user@test.example", "postmaster@test.example",
	    "prvs=1234abcdef=user@test.example", "user@other.example"};
	struct filter_verdict v;
	struct filter_async async = {1, 1};
	struct filter_env env;
	void *state = NULL;
	const char *rcpt_list[1];
	const char *msg, *end, *p;

	if (cfg[0] == NULL) {
		log_open(LOG_DEST_STDERR, LOG_LEVEL_ERROR);
		init();
	}
	if (size < 2)
		return 0;
	uint8_t sel = data[0], chunk = data[1];
	log_set_level(sel & 0x40 ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	msg = (const char *)data + 2;
	end = (const char *)data + size;

	memset(&env, 0, sizeof env);
	env.session_id = 1;
	env.sid = "FUZZ";
	env.listener = "inbound";
	env.client_ip = "203.0.113.1";
	env.client_name = "unknown";
	env.helo = "mx.remote.example";
	env.mail_from = senders[sel & 3];
	env.null_sender = env.mail_from[0] == '\0';
	rcpt_list[0] = rcpts[(sel >> 2) & 3];
	env.rcpts = rcpt_list;
	env.rcpts_orig = rcpt_list;
	env.nrcpts = 1;
	env.cfg = cfg[(sel >> 4) & 1];
	env.txn_number = 1;
	env.txn_state = &state;
	env.filters = &filters;

	/* header fields: a line, and the lines that fold into it */
	p = msg;
	while (p < end) {
		const char *line_end = memchr(p, '\n', (size_t)(end - p));
		const char *f_end;
		if (line_end == NULL || line_end == p || (line_end == p + 1 && p[0] == '\r')) {
			p = line_end ? line_end + 1 : end;
			break;
		}
		f_end = line_end;
		while (f_end + 1 < end && (f_end[1] == ' ' || f_end[1] == '\t')) {
			const char *n = memchr(f_end + 1, '\n', (size_t)(end - f_end - 1));
			if (n == NULL)
				break;
			f_end = n;
		}
		size_t flen = (size_t)(f_end - p);
		if (flen > 0 && p[flen - 1] == '\r')
			flen--;
		const char *colon = memchr(p, ':', flen);
		if (colon != NULL) {
			struct filter_header h = {.name = p, .name_len = (size_t)(colon - p),
			    .value = colon + 1, .value_len = flen - (size_t)(colon + 1 - p),
			    .field = p, .field_len = flen};
			filter_bounce.header(&env, &h);
		}
		p = f_end + 1;
	}
	memset(&v, 0, sizeof v);
	filter_bounce.hook[FILTER_EOH](&env, &v, &async);
	size_t step = chunk ? chunk : 1;
	while (p < end) {
		size_t n = (size_t)(end - p) < step ? (size_t)(end - p) : step;
		filter_bounce.body(&env, p, n);
		p += n;
	}
	memset(&v, 0, sizeof v);
	enum filter_result r = filter_bounce.hook[FILTER_EOD](&env, &v, &async);
	if (r == FILTER_REJECT && (v.code != 550 || strcmp(v.esc, "5.7.1") != 0 || v.text[0] == '\0'))
		abort();
	if (r != FILTER_REJECT && r != FILTER_CONTINUE)
		abort();
	check_text(v.text, sizeof v.text);
	check_text(v.note, sizeof v.note);
	check_fields(v.headers, sizeof v.headers);
	filter_bounce.txn_end(&env, FILTER_TXN_ACCEPTED);
	if (state != NULL)
		abort();
	return 0;
}

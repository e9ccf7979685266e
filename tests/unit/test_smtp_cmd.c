/*
 * test_smtp_cmd - smtp_cmd_parse() as a table (one case per line), then a
 * pipelined batch fed through smtp_line_next() split at every byte.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS for guarded_copy */
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_line.h"
#include "tests/unit/check.h"

struct cmd_case {
	const char *in;
	size_t in_len; /* 0: strlen(in) */
	enum smtp_cmd_status st;
	enum smtp_verb verb;
	const char *arg; /* NULL: no argument */
	const char *note;
};

#define V(x) SMTP_VERB_##x
#define S(x) SMTP_CMD_##x

static const struct cmd_case cases[] = {
	{ "EHLO mail.example.com", 0, S(OK), V(EHLO), "mail.example.com", "EHLO" },
	{ "helo x", 0, S(OK), V(HELO), "x", "case-insensitive verb" },
	{ "HeLo   x  ", 0, S(OK), V(HELO), "x", "spaces trimmed" },
	{ "EHLO\tx\t", 0, S(OK), V(EHLO), "x", "HTAB is a space" },
	{ "HELO", 0, S(SYNTAX), V(HELO), NULL, "HELO needs a name" },
	{ "EHLO   ", 0, S(SYNTAX), V(EHLO), NULL, "blank name" },
	{ "MAIL FROM:<a@b>", 0, S(OK), V(MAIL), "<a@b>", "MAIL" },
	{ "mail from:<a@b> SIZE=10", 0, S(OK), V(MAIL), "<a@b> SIZE=10", "params kept" },
	{ "MAIL FROM: <a@b>", 0, S(OK), V(MAIL), "<a@b>", "space after colon" },
	{ "MAIL  FROM:<a@b>", 0, S(OK), V(MAIL), "<a@b>", "two spaces before FROM" },
	{ "MAIL FROM:", 0, S(SYNTAX), V(MAIL), NULL, "no path" },
	{ "MAIL", 0, S(SYNTAX), V(MAIL), NULL, "MAIL alone" },
	{ "MAIL TO:<a@b>", 0, S(SYNTAX), V(MAIL), NULL, "wrong keyword" },
	{ "MAIL FROM <a@b>", 0, S(SYNTAX), V(MAIL), NULL, "no colon" },
	{ "MAILFROM:<a@b>", 0, S(UNKNOWN), V(UNKNOWN), NULL, "glued verb" },
	{ "MAIL FRO", 0, S(SYNTAX), V(MAIL), NULL, "truncated keyword" },
	{ "RCPT TO:<c@d>", 0, S(OK), V(RCPT), "<c@d>", "RCPT" },
	{ "rcpt to:<c@d> NOTIFY=NEVER", 0, S(OK), V(RCPT), "<c@d> NOTIFY=NEVER", "RCPT params" },
	{ "RCPT FROM:<c@d>", 0, S(SYNTAX), V(RCPT), NULL, "wrong keyword" },
	{ "RCPT T", 0, S(SYNTAX), V(RCPT), NULL, "truncated" },
	{ "DATA", 0, S(OK), V(DATA), NULL, "DATA" },
	{ "data  ", 0, S(OK), V(DATA), NULL, "DATA trailing space" },
	{ "DATA x", 0, S(SYNTAX), V(DATA), "x", "DATA takes nothing" },
	{ "RSET", 0, S(OK), V(RSET), NULL, "RSET" },
	{ "RSET now", 0, S(SYNTAX), V(RSET), "now", "RSET takes nothing" },
	{ "QUIT", 0, S(OK), V(QUIT), NULL, "QUIT" },
	{ "QUIT x", 0, S(SYNTAX), V(QUIT), "x", "QUIT takes nothing" },
	{ "STARTTLS", 0, S(OK), V(STARTTLS), NULL, "STARTTLS" },
	{ "STARTTLS x", 0, S(SYNTAX), V(STARTTLS), "x", "STARTTLS takes nothing" },
	{ "NOOP", 0, S(OK), V(NOOP), NULL, "NOOP" },
	{ "NOOP hello", 0, S(OK), V(NOOP), "hello", "NOOP with arg" },
	{ "HELP", 0, S(OK), V(HELP), NULL, "HELP" },
	{ "HELP MAIL", 0, S(OK), V(HELP), "MAIL", "HELP topic" },
	{ "VRFY root", 0, S(OK), V(VRFY), "root", "VRFY" },
	{ "VRFY", 0, S(OK), V(VRFY), NULL, "VRFY without arg" },
	{ "EXPN list", 0, S(OK), V(EXPN), "list", "EXPN" },
	{ "AUTH PLAIN", 0, S(OK), V(AUTH), "PLAIN", "AUTH" },
	{ "BDAT 10 LAST", 0, S(OK), V(BDAT), "10 LAST", "BDAT" },
	{ "", 0, S(EMPTY), V(UNKNOWN), NULL, "empty line" },
	{ "   \t ", 0, S(EMPTY), V(UNKNOWN), NULL, "blank line" },
	{ "XYZZY", 0, S(UNKNOWN), V(UNKNOWN), NULL, "unknown verb" },
	{ "HELOX x", 0, S(UNKNOWN), V(UNKNOWN), NULL, "verb prefix" },
	{ "HEL", 0, S(UNKNOWN), V(UNKNOWN), NULL, "truncated verb" },
	{ "H", 0, S(UNKNOWN), V(UNKNOWN), NULL, "one letter" },
	{ " HELO x", 0, S(UNKNOWN), V(UNKNOWN), NULL, "leading space" },
	{ "HELO1 x", 0, S(UNKNOWN), V(UNKNOWN), NULL, "digit in verb" },
	{ "HEL\xc3\x96 x", 0, S(UNKNOWN), V(UNKNOWN), NULL, "8-bit in verb" },
	{ "\xff", 0, S(UNKNOWN), V(UNKNOWN), NULL, "8-bit only" },
	{ "GET / HTTP/1.0", 0, S(UNKNOWN), V(UNKNOWN), NULL, "HTTP" },
	{ "HELO \xc3\xa9x.example", 0, S(OK), V(HELO), "\xc3\xa9x.example", "8-bit in arg" },
	{ "HELO a\0b", 8, S(BAD_CHAR), V(UNKNOWN), NULL, "NUL in arg" },
	{ "\0", 1, S(BAD_CHAR), V(UNKNOWN), NULL, "NUL alone" },
	{ "DATA\r", 0, S(BAD_CHAR), V(UNKNOWN), NULL, "bare CR smuggled" },
	{ "MAIL FROM:<a@b>\rRCPT TO:<c@d>", 0, S(BAD_CHAR), V(UNKNOWN), NULL, "CR injection" },
	{ "NOOP \x1b[31m", 0, S(BAD_CHAR), V(UNKNOWN), NULL, "escape sequence" },
	{ "NOOP \x7f", 0, S(BAD_CHAR), V(UNKNOWN), NULL, "DEL" },
	{ "QUIT\n", 0, S(BAD_CHAR), V(UNKNOWN), NULL, "LF inside" },
};

/* run_cases - every case in a guarded buffer. */
static void run_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct cmd_case *t = &cases[i];
		size_t len = t->in_len ? t->in_len : strlen(t->in);
		char *buf = guarded_copy(t->in, len);
		struct smtp_cmd cmd;
		enum smtp_cmd_status st = smtp_cmd_parse(buf, len, &cmd);
		int before = check_failed;
		CHECK_INT(st, t->st);
		CHECK_INT(cmd.verb, t->verb);
		if (t->arg == NULL || st != SMTP_CMD_OK) {
			if (st == SMTP_CMD_OK)
				CHECK(cmd.arg == NULL);
		} else {
			CHECK(cmd.arg != NULL);
			if (cmd.arg) {
				CHECK_MEM(cmd.arg, cmd.arg_len, t->arg);
				CHECK(cmd.arg >= buf && cmd.arg + cmd.arg_len <= buf + len);
			}
		}
		if (check_failed != before)
			fprintf(stderr, "  case %zu: %s\n", i, t->note);
		guarded_free(buf, len);
	}
}

static void test_names(void)
{
	CHECK_STR(smtp_verb_name(SMTP_VERB_MAIL), "MAIL");
	CHECK_STR(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS");
	CHECK_STR(smtp_verb_name(SMTP_VERB_UNKNOWN), "UNKNOWN");
	CHECK_STR(smtp_verb_name(SMTP_VERB_COUNT), "UNKNOWN");
	for (int v = SMTP_VERB_HELO; v < SMTP_VERB_COUNT; v++) {
		struct smtp_cmd cmd;
		const char *name = smtp_verb_name((enum smtp_verb)v);
		smtp_cmd_parse(name, strlen(name), &cmd);
		CHECK_INT(cmd.verb, v); /* every name parses back to its verb */
	}
}

/* test_pipelined_split - "EHLO..DATA" arrives in two reads split at every
 * position; the caller's buffer accumulates; the commands are the same. */
static void test_pipelined_split(void)
{
	const char batch[] = "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n";
	const enum smtp_verb want[] = { V(EHLO), V(MAIL), V(RCPT), V(DATA) };
	const char *want_arg[] = { "x", "<a@b>", "<c@d>", NULL };
	size_t len = sizeof(batch) - 1, bad = 0;

	for (size_t split = 0; split <= len; split++) {
		char acc[128];
		size_t have = 0, off = 0, ncmd = 0;
		struct smtp_line_reader r = { 0 };
		for (int read = 0; read < 2; read++) {
			size_t chunk = read == 0 ? split : len - split;
			memcpy(acc + have, batch + (read == 0 ? 0 : split), chunk);
			have += chunk;
			/* parse from a guarded copy of what has arrived so far */
			char *g = guarded_copy(acc + off, have - off);
			size_t goff = 0;
			for (;;) {
				struct smtp_line l;
				struct smtp_cmd cmd;
				size_t n = smtp_line_next(&r, g + goff, have - off - goff, 512, &l);
				if (n == 0)
					break;
				goff += n;
				if (smtp_cmd_parse(l.data, l.len, &cmd) != SMTP_CMD_OK ||
				    l.flags != SMTP_LINE_CRLF || ncmd >= 4 ||
				    cmd.verb != want[ncmd])
					bad++;
				else if (want_arg[ncmd] == NULL ? cmd.arg != NULL :
				    cmd.arg == NULL || cmd.arg_len != strlen(want_arg[ncmd]) ||
				    memcmp(cmd.arg, want_arg[ncmd], cmd.arg_len) != 0)
					bad++;
				ncmd++;
			}
			guarded_free(g, have - off);
			off += goff;
		}
		CHECK_INT(ncmd, 4);
		CHECK_INT(off, len);
	}
	CHECK_INT(bad, 0);
}

int main(void)
{
	run_cases();
	test_names();
	test_pipelined_split();
	return check_finish("test_smtp_cmd");
}

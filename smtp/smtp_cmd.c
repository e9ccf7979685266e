/*
 * smtp_cmd - parse one SMTP command line (RFC 5321 4.1.1).
 *
 * Contract (see smtp_cmd.h): line[0..len) is a command without its
 * terminator. *cmd is always filled (verb UNKNOWN and arg NULL at worst);
 * the argument is a slice of line. Checks, in order: control characters
 * anywhere (BAD_CHAR), blank line (EMPTY), verb (UNKNOWN), then the verb's
 * argument rules (SYNTAX). The verb must start in column 0 and consists of
 * letters only; HTAB counts as a space.
 */
#include <stdbool.h>

#include "smtp/smtp_cmd.h"

enum arg_rule {
	ARG_NONE,     /* "DATA": nothing may follow */
	ARG_REQUIRED, /* "HELO name" */
	ARG_OPTIONAL, /* "NOOP [x]" */
	ARG_PATH,     /* "MAIL FROM:<...>", "RCPT TO:<...>" */
};

struct verb_def {
	enum smtp_verb verb;
	const char *name;
	enum arg_rule rule;
	const char *prefix; /* for ARG_PATH: "FROM:" or "TO:" */
};

static const struct verb_def verbs[] = {
	{ SMTP_VERB_HELO, "HELO", ARG_REQUIRED, 0 },
	{ SMTP_VERB_EHLO, "EHLO", ARG_REQUIRED, 0 },
	{ SMTP_VERB_MAIL, "MAIL", ARG_PATH, "FROM:" },
	{ SMTP_VERB_RCPT, "RCPT", ARG_PATH, "TO:" },
	{ SMTP_VERB_DATA, "DATA", ARG_NONE, 0 },
	{ SMTP_VERB_RSET, "RSET", ARG_NONE, 0 },
	{ SMTP_VERB_NOOP, "NOOP", ARG_OPTIONAL, 0 },
	{ SMTP_VERB_QUIT, "QUIT", ARG_NONE, 0 },
	{ SMTP_VERB_VRFY, "VRFY", ARG_OPTIONAL, 0 },
	{ SMTP_VERB_EXPN, "EXPN", ARG_OPTIONAL, 0 },
	{ SMTP_VERB_HELP, "HELP", ARG_OPTIONAL, 0 },
	{ SMTP_VERB_STARTTLS, "STARTTLS", ARG_NONE, 0 },
	{ SMTP_VERB_AUTH, "AUTH", ARG_OPTIONAL, 0 },
	{ SMTP_VERB_BDAT, "BDAT", ARG_OPTIONAL, 0 },
};

#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static char ascii_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* ci_equal - does s[0..n) equal the upper-case ASCII word w? */
static bool ci_equal(const char *s, size_t n, const char *w)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (w[i] == '\0' || ascii_upper(s[i]) != w[i])
			return false;
	return w[i] == '\0';
}

/* smtp_cmd_parse - parse line[0..len) (terminator excluded). */
enum smtp_cmd_status smtp_cmd_parse(const char *line, size_t len,
    struct smtp_cmd *cmd)
{
	const struct verb_def *def = 0;
	size_t i, vlen, start, end;
	bool blank = true;

	cmd->verb = SMTP_VERB_UNKNOWN;
	cmd->arg = 0;
	cmd->arg_len = 0;

	/* RFC 5321 4.1.1: commands are printable text; a NUL or control byte
	 * is never legitimate and may be an injection attempt (bare CR). */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return SMTP_CMD_BAD_CHAR;
		if (!is_space(line[i]))
			blank = false;
	}
	if (blank)
		return SMTP_CMD_EMPTY;

	/* The verb: letters up to a space or the end. */
	for (vlen = 0; vlen < len && !is_space(line[vlen]); vlen++)
		if (!is_alpha(line[vlen]))
			break;
	if (vlen == 0 || (vlen < len && !is_space(line[vlen])))
		return SMTP_CMD_UNKNOWN; /* 8-bit, digit or punctuation in verb */
	for (i = 0; i < NVERBS; i++)
		if (ci_equal(line, vlen, verbs[i].name)) {
			def = &verbs[i];
			break;
		}
	if (def == 0)
		return SMTP_CMD_UNKNOWN;
	cmd->verb = def->verb;

	start = vlen;
	while (start < len && is_space(line[start]))
		start++;
	if (def->rule == ARG_PATH) {
		/* "MAIL FROM:" / "RCPT TO:": a space must separate the verb. */
		size_t plen = 0;
		while (def->prefix[plen])
			plen++;
		if (start == vlen || len - start < plen ||
		    !ci_equal(line + start, plen, def->prefix))
			return SMTP_CMD_SYNTAX;
		start += plen;
		/* Postfix tolerates "MAIL FROM: <a@b>"; so do we. */
		while (start < len && is_space(line[start]))
			start++;
	}
	end = len;
	while (end > start && is_space(line[end - 1]))
		end--;
	if (end > start) {
		cmd->arg = line + start;
		cmd->arg_len = end - start;
	}

	switch (def->rule) {
	case ARG_NONE:
		if (cmd->arg)
			return SMTP_CMD_SYNTAX; /* RFC 5321 4.1.1.4 "DATA" CRLF */
		break;
	case ARG_REQUIRED:
	case ARG_PATH:
		if (cmd->arg == 0)
			return SMTP_CMD_SYNTAX; /* RFC 5321 4.1.1.1: a domain is required */
		break;
	case ARG_OPTIONAL:
		break;
	}
	return SMTP_CMD_OK;
}

/* smtp_verb_name - "MAIL", "RCPT", ...; "UNKNOWN" for SMTP_VERB_UNKNOWN. */
const char *smtp_verb_name(enum smtp_verb verb)
{
	for (size_t i = 0; i < NVERBS; i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "UNKNOWN";
}

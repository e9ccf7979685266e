/*
 * smtp_cmd - parse one SMTP command line (RFC 5321 4.1.1).
 *
 * Pure: the argument is a slice of the caller's line. The verb is matched
 * case-insensitively. "MAIL FROM:" and "RCPT TO:" are recognised as a whole;
 * the argument then starts after the colon (spaces after the colon are
 * skipped, as Postfix does, because many clients send "MAIL FROM: <a@b>").
 */
#ifndef SMTP_CMD_H
#define SMTP_CMD_H

#include <stddef.h>

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_BDAT,
	SMTP_VERB_COUNT
};

enum smtp_cmd_status {
	SMTP_CMD_OK = 0,
	SMTP_CMD_EMPTY,    /* empty or blank line */
	SMTP_CMD_UNKNOWN,  /* verb not recognised: 500 5.5.1 */
	SMTP_CMD_SYNTAX,   /* known verb, malformed (e.g. "MAIL" without
	                      "FROM:", "DATA x", "HELO" without a name): 501 5.5.4 */
	SMTP_CMD_BAD_CHAR, /* NUL or control character in the line: 500 5.5.2 */
};

struct smtp_cmd {
	enum smtp_verb verb;
	const char *arg;   /* after the verb (and after "FROM:"/"TO:"), leading
	                      and trailing spaces removed; NULL when none */
	size_t arg_len;
};

/* smtp_cmd_parse - parse line[0..len) (terminator excluded). */
enum smtp_cmd_status smtp_cmd_parse(const char *line, size_t len,
    struct smtp_cmd *cmd);

/* smtp_verb_name - "MAIL", "RCPT", ...; "UNKNOWN" for SMTP_VERB_UNKNOWN. */
const char *smtp_verb_name(enum smtp_verb verb);

#endif

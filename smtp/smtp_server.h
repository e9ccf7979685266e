/*
 * smtp_server - the RFC 5321 server-side command sequencing rules, as a
 * table: which command is allowed in which state. The session in proxy/
 * owns the state; this module only judges.
 */
#ifndef SMTP_SERVER_H
#define SMTP_SERVER_H

#include "smtp/smtp_cmd.h"

enum smtp_state {
	SMTP_STATE_CONNECTED = 0, /* greeting sent, no HELO/EHLO yet */
	SMTP_STATE_READY,         /* after HELO/EHLO, no transaction */
	SMTP_STATE_MAIL,          /* MAIL accepted, no recipient accepted yet */
	SMTP_STATE_RCPT,          /* at least one recipient accepted */
	SMTP_STATE_DATA,          /* receiving content */
	SMTP_STATE_COUNT
};

enum smtp_seq {
	SMTP_SEQ_OK = 0,
	SMTP_SEQ_NEED_HELO,   /* 503 5.5.1 Error: send HELO/EHLO first */
	SMTP_SEQ_NEED_MAIL,   /* 503 5.5.1 Error: need MAIL command */
	SMTP_SEQ_NEED_RCPT,   /* 503 5.5.1 Error: need RCPT command */
	SMTP_SEQ_NESTED_MAIL, /* 503 5.5.1 Error: nested MAIL command */
	SMTP_SEQ_IN_TXN,      /* 503 5.5.1 Error: command not allowed inside a
	                         transaction (e.g. STARTTLS) */
};

/* smtp_server_check - may verb be given in state? */
enum smtp_seq smtp_server_check(enum smtp_state state, enum smtp_verb verb);

/* smtp_seq_text - the reply text for a refusal ("Error: need MAIL command"). */
const char *smtp_seq_text(enum smtp_seq seq);

const char *smtp_state_name(enum smtp_state state);

#endif

/*
 * smtp_server - the RFC 5321 server-side command sequencing rules
 * (RFC 5321 4.1.4 and 4.3.2), as one table: verb x state -> verdict.
 *
 * Contract (see smtp_server.h): pure lookup. HELO/EHLO are allowed in every
 * command state (they reset the transaction, RFC 5321 4.1.4); RSET, NOOP,
 * QUIT, VRFY, EXPN, HELP anywhere; AUTH, BDAT and unknown verbs are judged
 * OK here because the session refuses them itself. SMTP_STATE_DATA is not a
 * command state (lines are content then): every verb is refused there with
 * SMTP_SEQ_IN_TXN, and out-of-range arguments get the same answer.
 */
#include "smtp/smtp_server.h"

#define OK SMTP_SEQ_OK
#define HELO SMTP_SEQ_NEED_HELO
#define MAIL SMTP_SEQ_NEED_MAIL
#define RCPT SMTP_SEQ_NEED_RCPT
#define NEST SMTP_SEQ_NESTED_MAIL
#define TXN SMTP_SEQ_IN_TXN

/* Columns: CONNECTED, READY, MAIL, RCPT, DATA. */
static const unsigned char seq_table[SMTP_VERB_COUNT][SMTP_STATE_COUNT] = {
	[SMTP_VERB_UNKNOWN] = { OK, OK, OK, OK, TXN },
	[SMTP_VERB_HELO] = { OK, OK, OK, OK, TXN },
	[SMTP_VERB_EHLO] = { OK, OK, OK, OK, TXN },
	/* RFC 5321 4.1.4: MAIL needs a HELO/EHLO and no open transaction. */
	[SMTP_VERB_MAIL] = { HELO, OK, NEST, NEST, TXN },
	/* RFC 5321 3.3: RCPT only after MAIL (Postfix: "need MAIL command"). */
	[SMTP_VERB_RCPT] = { MAIL, MAIL, OK, OK, TXN },
	/* RFC 5321 3.3: DATA needs at least one accepted recipient. */
	[SMTP_VERB_DATA] = { MAIL, MAIL, RCPT, OK, TXN },
	[SMTP_VERB_RSET] = { OK, OK, OK, OK, TXN },
	[SMTP_VERB_NOOP] = { OK, OK, OK, OK, TXN },
	[SMTP_VERB_QUIT] = { OK, OK, OK, OK, TXN },
	[SMTP_VERB_VRFY] = { OK, OK, OK, OK, TXN },
	[SMTP_VERB_EXPN] = { OK, OK, OK, OK, TXN },
	[SMTP_VERB_HELP] = { OK, OK, OK, OK, TXN },
	/* RFC 3207 4: STARTTLS outside a mail transaction only. */
	[SMTP_VERB_STARTTLS] = { OK, OK, TXN, TXN, TXN },
	[SMTP_VERB_AUTH] = { OK, OK, OK, OK, TXN },
	[SMTP_VERB_BDAT] = { OK, OK, OK, OK, TXN },
};

#undef OK
#undef HELO
#undef MAIL
#undef RCPT
#undef NEST
#undef TXN

/* smtp_server_check - may verb be given in state? */
enum smtp_seq smtp_server_check(enum smtp_state state, enum smtp_verb verb)
{
	if ((unsigned)state >= SMTP_STATE_COUNT || (unsigned)verb >= SMTP_VERB_COUNT)
		return SMTP_SEQ_IN_TXN;
	return (enum smtp_seq)seq_table[verb][state];
}

/* smtp_seq_text - the reply text for a refusal. */
const char *smtp_seq_text(enum smtp_seq seq)
{
	switch (seq) {
	case SMTP_SEQ_OK:
		return "Ok";
	case SMTP_SEQ_NEED_HELO:
		return "Error: send HELO/EHLO first";
	case SMTP_SEQ_NEED_MAIL:
		return "Error: need MAIL command";
	case SMTP_SEQ_NEED_RCPT:
		return "Error: need RCPT command";
	case SMTP_SEQ_NESTED_MAIL:
		return "Error: nested MAIL command";
	case SMTP_SEQ_IN_TXN:
		return "Error: command not allowed inside a transaction";
	}
	return "Error: bad sequence of commands";
}

/* smtp_state_name - for logs: "CONNECTED", "READY", ... */
const char *smtp_state_name(enum smtp_state state)
{
	switch (state) {
	case SMTP_STATE_CONNECTED:
		return "CONNECTED";
	case SMTP_STATE_READY:
		return "READY";
	case SMTP_STATE_MAIL:
		return "MAIL";
	case SMTP_STATE_RCPT:
		return "RCPT";
	case SMTP_STATE_DATA:
		return "DATA";
	case SMTP_STATE_COUNT:
		break;
	}
	return "UNKNOWN";
}

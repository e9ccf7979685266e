/*
 * test_smtp_server - the sequencing table, one row per verb: the verdict
 * in each state CONNECTED, READY, MAIL, RCPT, DATA.
 */
#define _DEFAULT_SOURCE
#include "smtp/smtp_server.h"
#include "tests/unit/check.h"

#define OK SMTP_SEQ_OK
#define HELO SMTP_SEQ_NEED_HELO
#define NMAIL SMTP_SEQ_NEED_MAIL
#define NRCPT SMTP_SEQ_NEED_RCPT
#define NEST SMTP_SEQ_NESTED_MAIL
#define TXN SMTP_SEQ_IN_TXN

static const struct {
	enum smtp_verb verb;
	enum smtp_seq want[SMTP_STATE_COUNT];
	const char *note;
} rows[] = {
	{ SMTP_VERB_HELO, { OK, OK, OK, OK, TXN }, "HELO anywhere, resets the transaction" },
	{ SMTP_VERB_EHLO, { OK, OK, OK, OK, TXN }, "EHLO anywhere" },
	{ SMTP_VERB_MAIL, { HELO, OK, NEST, NEST, TXN }, "MAIL after HELO, not nested" },
	{ SMTP_VERB_RCPT, { NMAIL, NMAIL, OK, OK, TXN }, "RCPT after MAIL" },
	{ SMTP_VERB_DATA, { NMAIL, NMAIL, NRCPT, OK, TXN }, "DATA after RCPT" },
	{ SMTP_VERB_RSET, { OK, OK, OK, OK, TXN }, "RSET anywhere" },
	{ SMTP_VERB_NOOP, { OK, OK, OK, OK, TXN }, "NOOP anywhere" },
	{ SMTP_VERB_QUIT, { OK, OK, OK, OK, TXN }, "QUIT anywhere" },
	{ SMTP_VERB_VRFY, { OK, OK, OK, OK, TXN }, "VRFY anywhere" },
	{ SMTP_VERB_EXPN, { OK, OK, OK, OK, TXN }, "EXPN anywhere" },
	{ SMTP_VERB_HELP, { OK, OK, OK, OK, TXN }, "HELP anywhere" },
	{ SMTP_VERB_STARTTLS, { OK, OK, TXN, TXN, TXN }, "STARTTLS outside a transaction" },
	{ SMTP_VERB_AUTH, { OK, OK, OK, OK, TXN }, "AUTH: the session refuses it" },
	{ SMTP_VERB_BDAT, { OK, OK, OK, OK, TXN }, "BDAT: the session refuses it" },
	{ SMTP_VERB_UNKNOWN, { OK, OK, OK, OK, TXN }, "unknown: the session answers 500" },
};

int main(void)
{
	CHECK_INT(sizeof(rows) / sizeof(rows[0]), SMTP_VERB_COUNT);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		for (int s = 0; s < SMTP_STATE_COUNT; s++) {
			int before = check_failed;
			CHECK_INT(smtp_server_check((enum smtp_state)s, rows[i].verb), rows[i].want[s]);
			if (check_failed != before)
				fprintf(stderr, "  %s in %s: %s\n", smtp_verb_name(rows[i].verb),
				    smtp_state_name((enum smtp_state)s), rows[i].note);
		}
	/* out of range arguments are refused, not read out of bounds */
	CHECK_INT(smtp_server_check(SMTP_STATE_COUNT, SMTP_VERB_NOOP), TXN);
	CHECK_INT(smtp_server_check(SMTP_STATE_READY, SMTP_VERB_COUNT), TXN);
	CHECK_INT(smtp_server_check((enum smtp_state)-1, SMTP_VERB_NOOP), TXN);

	CHECK_STR(smtp_seq_text(SMTP_SEQ_NEED_MAIL), "Error: need MAIL command");
	CHECK_STR(smtp_seq_text(SMTP_SEQ_NEED_RCPT), "Error: need RCPT command");
	CHECK_STR(smtp_seq_text(SMTP_SEQ_NEED_HELO), "Error: send HELO/EHLO first");
	CHECK_STR(smtp_seq_text(SMTP_SEQ_NESTED_MAIL), "Error: nested MAIL command");
	CHECK(strlen(smtp_seq_text(SMTP_SEQ_IN_TXN)) > 0);
	CHECK_STR(smtp_state_name(SMTP_STATE_CONNECTED), "CONNECTED");
	CHECK_STR(smtp_state_name(SMTP_STATE_RCPT), "RCPT");
	CHECK_STR(smtp_state_name(SMTP_STATE_COUNT), "UNKNOWN");
	return check_finish("test_smtp_server");
}

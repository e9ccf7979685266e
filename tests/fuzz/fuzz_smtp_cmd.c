/*
 * fuzz_smtp_cmd - smtp_cmd_parse() on every line of the input (and on the
 * whole input as one line). Invariants: the argument is a non-empty slice
 * of the line without surrounding spaces; OK implies a known verb; a
 * control byte always gives BAD_CHAR.
 */
#include <stdint.h>
#include <stdlib.h>

#include "smtp/smtp_cmd.h"
#include "smtp/smtp_line.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static void one(const char *s, size_t len)
{
	struct smtp_cmd cmd;
	enum smtp_cmd_status st = smtp_cmd_parse(s, len, &cmd);
	int ctl = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		ctl |= (c < 0x20 && c != '\t') || c == 0x7f;
	}
	REQUIRE(ctl == (st == SMTP_CMD_BAD_CHAR));
	REQUIRE(st <= SMTP_CMD_BAD_CHAR && cmd.verb < SMTP_VERB_COUNT);
	if (st == SMTP_CMD_OK)
		REQUIRE(cmd.verb != SMTP_VERB_UNKNOWN);
	if (cmd.arg) {
		REQUIRE(cmd.arg >= s && cmd.arg_len > 0 && cmd.arg + cmd.arg_len <= s + len);
		REQUIRE(cmd.arg[0] != ' ' && cmd.arg[0] != '\t');
		REQUIRE(cmd.arg[cmd.arg_len - 1] != ' ' && cmd.arg[cmd.arg_len - 1] != '\t');
	} else
		REQUIRE(cmd.arg_len == 0);
	REQUIRE(smtp_verb_name(cmd.verb) != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct smtp_line_reader r = { 0 };
	size_t off = 0;

	one(buf, size);
	while (off < size) {
		struct smtp_line l;
		size_t n = smtp_line_next(&r, buf + off, size - off, 512, &l);
		if (n == 0)
			break;
		one(l.data, l.len);
		off += n;
	}
	return 0;
}

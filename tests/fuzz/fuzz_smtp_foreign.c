/*
 * fuzz_smtp_foreign - smtp_foreign_line() and smtp_foreign_start() on
 * arbitrary bytes. Invariants: the results are one of the enum's values;
 * a line is TLS exactly when its first bytes are; an HTTP answer needs a
 * space in the line; a prefix of a line never reads past it (ASan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_foreign.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	enum smtp_foreign l = smtp_foreign_line(p, size), s = smtp_foreign_start(p, size);

	REQUIRE(l == SMTP_FOREIGN_NONE || l == SMTP_FOREIGN_HTTP || l == SMTP_FOREIGN_TLS);
	REQUIRE(s == SMTP_FOREIGN_NONE || s == SMTP_FOREIGN_TLS);
	REQUIRE((l == SMTP_FOREIGN_TLS) == (s == SMTP_FOREIGN_TLS));
	if (l == SMTP_FOREIGN_HTTP)
		REQUIRE(memchr(p, ' ', size) != NULL);
	for (size_t cut = 0; cut < size && cut < 64; cut++)
		(void)smtp_foreign_line(p, cut);
	REQUIRE(strcmp(smtp_foreign_name(l), "") != 0);
	return 0;
}

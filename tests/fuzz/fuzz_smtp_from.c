/*
 * fuzz_smtp_from - smtp_from_parse(). The first byte gives the caller's
 * capacity (0..7). Invariants: on success at least one address, each
 * stored domain NUL-terminated within SMTP_FROM_DOMAIN_MAX, non-empty, free
 * of CFWS bytes, 8-bit only when has_8bit says so, brackets exactly when
 * is_literal; on failure no address; the result does not depend on the
 * capacity.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_from.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_from_addr addrs[8], big[8];
	const char *s;
	size_t cap, n, n8;

	if (size < 1)
		return 0;
	cap = data[0] % 8;
	s = (const char *)data + 1;
	size--;

	n = cap;
	enum smtp_from_status st = smtp_from_parse(s, size, addrs, &n);
	n8 = 8;
	REQUIRE(smtp_from_parse(s, size, big, &n8) == st);
	REQUIRE(n8 == n);
	if (st != SMTP_FROM_OK) {
		REQUIRE(n == 0);
		return 0;
	}
	REQUIRE(n >= 1);
	for (size_t i = 0; i < n && i < cap; i++) {
		const struct smtp_from_addr *a = &addrs[i];
		bool eight = false;
		REQUIRE(a->domain_len >= 1 && a->domain_len <= SMTP_FROM_DOMAIN_MAX);
		REQUIRE(a->domain[a->domain_len] == '\0' && strlen(a->domain) == a->domain_len);
		REQUIRE(strcmp(a->domain, big[i].domain) == 0 &&
		    a->is_literal == big[i].is_literal && a->has_8bit == big[i].has_8bit);
		for (size_t k = 0; k < a->domain_len; k++) {
			unsigned char c = (unsigned char)a->domain[k];
			REQUIRE(c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != 0);
			if (c >= 0x80)
				eight = true;
			if (!a->is_literal)
				REQUIRE(c != '(' && c != ')' && c != '"' && c != '[');
		}
		REQUIRE(eight == a->has_8bit);
		REQUIRE(a->is_literal == (a->domain[0] == '['));
	}
	return 0;
}

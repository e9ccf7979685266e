/*
 * fuzz_smtp_received - smtp_received_parse(). Invariants: every stored
 * name is a NUL-terminated plain host name (letters, digits, '-', '_',
 * dots; no 8-bit, control, blank or comment byte, no trailing dot) within
 * SMTP_RECEIVED_NAME_MAX; every stored address is canonical (parsing it
 * again gives the same text); at most SMTP_RECEIVED_ADDRS addresses;
 * by is a name or an address, never both; the parse is deterministic and
 * reads nothing past the input (ASan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_received.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static void name_ok(const char *s)
{
	size_t n = strnlen(s, SMTP_RECEIVED_NAME_MAX + 1);

	REQUIRE(n <= SMTP_RECEIVED_NAME_MAX);
	REQUIRE(n == 0 || (s[0] != '.' && s[n - 1] != '.'));
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		REQUIRE((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.');
	}
}

static void addr_ok(const char *s)
{
	char again[SMTP_RECEIVED_ADDR_MAX];
	size_t n = strnlen(s, SMTP_RECEIVED_ADDR_MAX);

	REQUIRE(n < SMTP_RECEIVED_ADDR_MAX);
	if (n == 0)
		return;
	REQUIRE(smtp_received_addr_canon(s, n, again));
	REQUIRE(strcmp(again, s) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_received r, r2;
	const char *s = (const char *)data;
	enum smtp_received_status st = smtp_received_parse(s, size, &r);

	REQUIRE(smtp_received_parse(s, size, &r2) == st);
	REQUIRE(memcmp(&r, &r2, sizeof r) == 0);
	if (st == SMTP_RECEIVED_TOO_LONG) {
		REQUIRE(!r.has_from && !r.has_by && r.from_naddrs == 0);
		return 0;
	}
	name_ok(r.from_name);
	name_ok(r.from_rdns);
	name_ok(r.from_helo);
	name_ok(r.by_name);
	addr_ok(r.by_addr);
	REQUIRE(!(r.by_name[0] && r.by_addr[0]));
	REQUIRE(r.from_naddrs <= SMTP_RECEIVED_ADDRS);
	for (size_t i = 0; i < r.from_naddrs; i++) {
		REQUIRE(r.from_addrs[i][0] != '\0');
		addr_ok(r.from_addrs[i]);
	}
	if (!r.has_from)
		REQUIRE(r.from_naddrs == 0 && !r.from_name[0] && !r.from_rdns[0] && !r.from_helo[0]);
	if (!r.has_by)
		REQUIRE(!r.by_name[0] && !r.by_addr[0]);
	return 0;
}

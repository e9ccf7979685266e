/*
 * fuzz_smtp_addr - smtp_path_parse(), smtp_xtext_encode() and
 * smtp_domain_valid(). The first byte gives the path flags and the
 * parameter capacity. Invariants: addr NUL-terminated within the RFC 5321
 * limits, domain inside addr, parameters are slices of the input, no 8-bit
 * without SMTPUTF8; xtext output is printable, decodes back to the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_addr.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_path path;
	struct smtp_param params[SMTP_PARAMS_MAX];
	const char *s;
	size_t np, cap;
	unsigned flags;

	if (size < 1)
		return 0;
	flags = data[0] & 15;
	cap = (data[0] >> 4) % (SMTP_PARAMS_MAX + 1);
	s = (const char *)data + 1;
	size--;

	np = cap;
	enum smtp_path_status st = smtp_path_parse(s, size, flags, &path, params, &np);
	REQUIRE(np <= cap);
	REQUIRE(path.addr_len <= SMTP_ADDR_MAX && path.addr[path.addr_len] == '\0');
	REQUIRE(strlen(path.addr) == path.addr_len);
	REQUIRE(path.domain >= path.addr && path.domain <= path.addr + path.addr_len);
	if (st == SMTP_PATH_OK) {
		REQUIRE(path.local_len <= SMTP_LOCAL_MAX);
		REQUIRE(path.is_null == (path.addr_len == 0));
		if (!(flags & SMTP_PATH_ALLOW_UTF8))
			for (size_t i = 0; i < path.addr_len; i++)
				REQUIRE((unsigned char)path.addr[i] < 0x80);
		for (size_t i = 0; i < np; i++) {
			REQUIRE(params[i].key >= s && params[i].key_len > 0 &&
			    params[i].key + params[i].key_len <= s + size);
			if (params[i].value)
				REQUIRE(params[i].value >= s && params[i].value_len > 0 &&
				    params[i].value + params[i].value_len <= s + size);
		}
	} else {
		REQUIRE(np == 0 && path.addr_len == 0);
	}
	(void)smtp_domain_valid(s, size);

	/* xtext: bounded, printable, and reversible */
	size_t xcap = size * 3 + 1;
	char *x = malloc(xcap);
	long n = smtp_xtext_encode(s, size, x, xcap);
	REQUIRE(n >= 0 && (size_t)n < xcap && x[n] == '\0');
	size_t k = 0;
	for (long i = 0; i < n; i++, k++) {
		REQUIRE(x[i] >= '!' && x[i] <= '~' && x[i] != '=');
		if (x[i] == '+') {
			REQUIRE(i + 2 < n);
			int v = hexval(x[i + 1]) * 16 + hexval(x[i + 2]);
			REQUIRE(k < size && (unsigned char)s[k] == v);
			i += 2;
		} else
			REQUIRE(k < size && s[k] == x[i]);
	}
	REQUIRE(k == size);
	REQUIRE(smtp_xtext_encode(s, size, x, (size_t)n) == -1);
	free(x);
	return 0;
}

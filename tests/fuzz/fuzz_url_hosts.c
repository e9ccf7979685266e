/*
 * fuzz_url_hosts - the two extractions of the refused-bounce record on
 * hostile text: URL hosts (smtp/url_hosts.c) and the external-address test
 * of a Received hop (smtp/received_ip.c).
 *
 * Input: text, fed line by line (split on '\n', each line its own
 * allocation) into one url_hosts; the whole input to received_ip_external.
 * Invariants: no read past a line; at most URL_HOSTS_MAX hosts, each
 * non-empty, shorter than URL_HOST_MAX, lowercase, only [a-z0-9._-] or a
 * bracketed IPv6 literal, no final dot, no two alike; an address taken as
 * external parses (inet_pton) after an optional "IPv6:".
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/received_ip.h"
#include "smtp/url_hosts.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static void check_host(const char *h)
{
	size_t n = strnlen(h, URL_HOST_MAX);

	REQUIRE(n > 0 && n < URL_HOST_MAX);
	if (h[0] == '[') {
		REQUIRE(h[n - 1] == ']');
		for (size_t i = 1; i + 1 < n; i++)
			REQUIRE(strchr("0123456789abcdefABCDEF:.", h[i]) != NULL && h[i] != '\0');
		return;
	}
	REQUIRE(h[n - 1] != '.');
	for (size_t i = 0; i < n; i++)
		REQUIRE((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= '0' && h[i] <= '9') || h[i] == '.' ||
		    h[i] == '-' || h[i] == '_');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct url_hosts u;
	size_t start = 0;

	memset(&u, 0, sizeof u);
	for (size_t i = 0; i <= size; i++) {
		if (i == size || data[i] == '\n') {
			size_t len = i - start;
			char *line = malloc(len ? len : 1);
			REQUIRE(line != NULL);
			memcpy(line, data + start, len);
			url_hosts_line(&u, line, len);
			free(line);
			start = i + 1;
		}
	}
	REQUIRE(u.n <= URL_HOSTS_MAX);
	for (size_t i = 0; i < u.n; i++) {
		check_host(u.host[i]);
		for (size_t j = 0; j < i; j++)
			REQUIRE(strcmp(u.host[i], u.host[j]) != 0);
	}

	char ip[80];
	size_t n = size < sizeof ip - 1 ? size : sizeof ip - 1;
	memcpy(ip, data, n);
	ip[n] = '\0';
	if (received_ip_external(ip)) {
		unsigned char bin[16];
		const char *a = strncasecmp(ip, "IPv6:", 5) == 0 ? ip + 5 : ip;
		REQUIRE(inet_pton(AF_INET, a, bin) == 1 || inet_pton(AF_INET6, a, bin) == 1);
	}
	return 0;
}

/*
 * fuzz_config_redis_url - arbitrary bytes as [limits] store for
 * config_redis_url_parse(): no crash or over-read (ASan; the input is
 * copied to a buffer of its exact size), and what it accepts is sound: an
 * address inet_pton takes, a port 1..65535, a database up to 1000000, and
 * the URL made again from them parses to the same.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char host[INET6_ADDRSTRLEN], again[INET6_ADDRSTRLEN], url[128];
	unsigned char bin[16];
	unsigned port, db, port2, db2;
	char *s = malloc(size + 1);

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (config_redis_url_parse(s, host, sizeof host, &port, &db) == 0) {
		int v6 = strchr(host, ':') != NULL;
		if (inet_pton(v6 ? AF_INET6 : AF_INET, host, bin) != 1 || port < 1 || port > 65535 || db > 1000000)
			abort();
		snprintf(url, sizeof url, v6 ? "redis://[%s]:%u/%u" : "redis://%s:%u/%u", host, port, db);
		if (config_redis_url_parse(url, again, sizeof again, &port2, &db2) != 0 ||
		    strcmp(host, again) != 0 || port != port2 || db != db2)
			abort();
	}
	free(s);
	return 0;
}

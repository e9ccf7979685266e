/*
 * fuzz_batv_tag - arbitrary bytes as a recipient address for batv_check
 * with a fixed key set: no crash, no over-read (ASan), and the stripped
 * address is always NUL-terminated within its capacity. A VALID verdict
 * must come with a stripped address that signs back to the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filters/batv_tag.h"

#define DAY 19723L

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct batv_keys keys;
	static const size_t caps[] = {0, 1, 17, 64, 255, 2048};
	char *addr, stripped[2048 + 1], resigned[4096];

	if (!keys.present[1]) {
		keys.present[1] = keys.present[7] = true;
		memcpy(keys.secret[1], "secret", keys.len[1] = 6);
		memcpy(keys.secret[7], "another secret", keys.len[7] = 14);
	}
	/* an exact-size NUL-terminated copy: ASan sees any over-read */
	if ((addr = malloc(size + 1)) == NULL)
		return 0;
	memcpy(addr, data, size);
	addr[size] = '\0';
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		memset(stripped, 'X', sizeof stripped);
		enum batv_status st = batv_check(&keys, addr, DAY, 7, stripped, caps[i]);
		if (st > BATV_EXPIRED)
			abort();
		if (caps[i] > 0 && memchr(stripped, '\0', caps[i]) == NULL)
			abort();
		if (caps[i] == 0 && stripped[0] != 'X')
			abort();   /* cap 0: nothing written */
		if (st == BATV_VALID) {
			/* only a real tag verifies: re-signing gives the input back */
			unsigned key = (unsigned)(addr[5] - '0');
			long ddd = (addr[6] - '0') * 100 + (addr[7] - '0') * 10 + (addr[8] - '0');
			/* sign on the day that gives the same expiry day DDD */
			if (batv_sign(&keys, key, stripped, ddd + 1000 - 7, 7, resigned, sizeof resigned) < 0)
				abort();
			if (strcasecmp(resigned, addr) != 0 || strcmp(resigned + 16, addr + 16) != 0)
				abort();
		}
	}
	free(addr);
	return 0;
}

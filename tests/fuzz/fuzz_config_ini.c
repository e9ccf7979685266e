/*
 * fuzz_config_ini - arbitrary bytes as backstop.ini through the real
 * config_load (inih and every key's value parser: durations, sizes, lists,
 * CIDRs, host:port, enums), read from a memfd so no file is left behind.
 * Checks: no crash, leak or undefined behaviour; a refused file always
 * comes with an error message; an accepted one has a backend address.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proxy/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char err[65536];
	char path[64];
	struct config *cfg;
	int fd = memfd_create("fuzz.ini", 0);

	if (fd < 0)
		abort();
	if (size > 0 && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	err[0] = '\0';
	cfg = config_load(path, err, sizeof err);
	close(fd);
	if (cfg == NULL) {
		if (err[0] == '\0')
			abort();   /* refused without saying why */
		return 0;
	}
	if (cfg->backend.address == NULL || cfg->backend.address[0] == '\0')
		abort();       /* "address" is required */
	config_unref(cfg);
	return 0;
}

/*
 * fuzz_config - arbitrary bytes as a configuration file for config_load():
 * no crash, no over-read or leak (ASan), and either a config or a non-empty
 * error text (cut at the buffer's size: a file can hold any number of
 * errors). A loaded config survives config_dump() (every list, [dns]
 * servers with the port added). The dump is not loaded back: -n prints the
 * default cipher list on one line longer than a config line may be.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64], dump[64];
	static char err[8192];
	struct config *cfg;
	FILE *f;

	if (path[0] == '\0') {
		snprintf(path, sizeof path, "/tmp/fuzz_config.%ld.ini", (long)getpid());
		snprintf(dump, sizeof dump, "/tmp/fuzz_config.%ld.dump", (long)getpid());
	}
	if ((f = fopen(path, "wb")) == NULL)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	cfg = config_load(path, err, sizeof err);
	if (cfg == NULL) {
		if (err[0] == '\0')
			abort();   /* every refusal says why */
		return 0;
	}
	if ((f = fopen(dump, "w")) != NULL) {
		config_dump(cfg, f);
		fclose(f);
	}
	config_unref(cfg);
	return 0;
}

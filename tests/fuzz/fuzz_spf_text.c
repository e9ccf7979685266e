/*
 * fuzz_spf_text - the cleaning of DNS-supplied text (filters/spf.c
 * spf_text_clean: SPF explanations and problem strings before they reach a
 * reply, a header field or the log). Checks, for several output sizes: the
 * output is NUL-terminated within its capacity, holds only printable ASCII
 * (no CR, LF or other control: no reply or header injection), keeps every
 * printable input byte in place, and the returned length is strlen(out).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filters/spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t caps[] = {1, 2, 16, 256, 1024, 4096};
	char *in = malloc(size + 1), out[4096 + 1];

	if (in == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	size_t inlen = strlen(in);
	if (spf_text_clean(out, 0, in) != 0)
		abort();
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		size_t cap = caps[i];
		memset(out, 'Z', sizeof out);
		size_t n = spf_text_clean(out, cap, in);
		if (n >= cap || out[n] != '\0' || strlen(out) != n)
			abort();
		if (n != (inlen < cap - 1 ? inlen : cap - 1))
			abort();
		for (size_t k = 0; k < n; k++) {
			unsigned char c = (unsigned char)out[k], o = (unsigned char)in[k];
			if (c < 0x20 || c >= 0x7f)
				abort();
			if (o >= 0x20 && o < 0x7f && c != o)
				abort();
		}
	}
	free(in);
	return 0;
}

/*
 * fuzz_sentlog_load - arbitrary bytes as a sentlog state file image: the
 * loader either refuses it (and the log stays as it was: empty) or loads
 * it, never crashes or reads outside it. The first byte steers past the
 * two gates random bytes never pass: bit 0 pads or cuts the image to the
 * exact size, bit 1 reseals it with the right checksum (computed here from
 * the format in sentlog.h, independently of sentlog.c), so the slot table
 * checks and the load itself are fuzzed too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "filters/sentlog.h"

#define NOW ((time_t)20429 * 86400)

static const unsigned char key[32] = "fuzzing key, thirty-two bytes..";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], why[512];
	struct sentlog *l;
	unsigned char *img, fkey[32];
	unsigned int n = 0;
	size_t want, len;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	/* 3 days of 10 ids: an image of a few hundred bytes */
	if ((l = sentlog_open(NULL, key, sizeof key, 2, 10, err, sizeof err)) == NULL)
		abort();
	want = sentlog_image_size(l);
	len = (flags & 1) ? want : size;
	if ((img = calloc(1, len ? len : 1)) == NULL)
		abort();
	memcpy(img, data, size < len ? size : len);
	if ((flags & 2) && len >= 32) {
		HMAC(EVP_sha256(), key, sizeof key, (const unsigned char *)"backstop sentlog file v1",
		    24, fkey, &n);
		HMAC(EVP_sha256(), fkey, sizeof fkey, img, len - 32, img + len - 32, &n);
	}
	if (sentlog_load_image(l, img, len, why, sizeof why) == 0) {
		/* a loaded state answers queries and takes adds */
		sentlog_contains(l, "<a@b>", "s@b", NOW);
		sentlog_add(l, "<a@b>", "s@b", NOW);
		if (!sentlog_contains(l, "<a@b>", "s@b", NOW))
			abort();
	} else if (sentlog_contains(l, "<a@b>", "s@b", NOW)) {
		abort();   /* a refused image left something behind */
	}
	if (memchr(why, '\0', sizeof why) == NULL)
		abort();
	free(img);
	sentlog_close(l);
	return 0;
}

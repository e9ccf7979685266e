/*
 * fuzz_bsig - arbitrary bytes as an X-Backstop-Sig value and the fields it
 * covers, split at NUL bytes: value, Message-ID, Date, sender. No crash, no
 * over-read (exact-size copies under ASan); a VALID or EXPIRED verdict must
 * come from a value bsig_make would write for those fields on its day (a
 * MAC nobody forged), and every canonical form stays within its capacity.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/bsig.h"

#define NOW ((time_t)20429 * 86400 + 600)

static char *part(const uint8_t **data, size_t *size)
{
	const uint8_t *nul = memchr(*data, '\0', *size);
	size_t n = nul ? (size_t)(nul - *data) : *size;
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memcpy(s, *data, n);
	s[n] = '\0';
	*data += nul ? n + 1 : n;
	*size -= nul ? n + 1 : n;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct batv_keys keys;
	static const size_t caps[] = {1, 2, 7, 64, 1001};
	char *value, *id, *date, *sender, out[1001], again[BSIG_VALUE_MAX];

	if (!keys.present[0]) {
		keys.present[0] = keys.present[4] = true;
		memcpy(keys.secret[0], "secret", keys.len[0] = 6);
		memcpy(keys.secret[4], "another secret", keys.len[4] = 14);
	}
	value = part(&data, &size);
	id = part(&data, &size);
	date = part(&data, &size);
	sender = part(&data, &size);
	enum bsig_status st = bsig_check(&keys, NOW, 7, value, id, date, sender);
	if (st > BSIG_BAD)
		abort();
	if (st == BSIG_VALID || st == BSIG_EXPIRED) {
		/* only a real signature verifies: sign again on its day */
		const char *k = strstr(value, "k"), *t = strstr(value, "t");
		long day;
		unsigned key;
		if (k == NULL || t == NULL || sscanf(k, "k = %u", &key) != 1 ||
		    sscanf(t, "t = %ld", &day) != 1)
			abort();
		if (bsig_make(&keys, key, (time_t)day * 86400, id, date, sender, again,
		    sizeof again) < 0)
			abort();
		/* the strict grammar ends with "s" B* "=" B* MAC B* */
		const char *mac = strrchr(value, '=') + 1;
		mac += strspn(mac, " \t\r\n");
		if (strncmp(mac, strstr(again, "s=") + 2, 22) != 0)
			abort();
	}
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		if (bsig_canon_msgid(value, out, caps[i]) >= caps[i] || strlen(out) >= caps[i])
			abort();
		if (bsig_canon_date(value, out, caps[i]) >= caps[i] || strlen(out) >= caps[i])
			abort();
		if (bsig_canon_sender(value, out, caps[i]) >= caps[i] || strlen(out) >= caps[i])
			abort();
	}
	free(value);
	free(id);
	free(date);
	free(sender);
	return 0;
}

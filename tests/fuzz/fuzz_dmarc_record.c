/*
 * fuzz_dmarc_record - dmarc_record_parse(), dmarc_record_select(),
 * dmarc_domain_normalize() and dmarc_aligned() (libpsl's built-in list).
 *
 * The input is split at its first LF: the whole input is one record, and
 * the two halves are a From domain and an authenticated domain.
 * Invariants: fields in range; one record alone is selected exactly as it
 * parses; step 6.1's p=none implies a usable rua=; absent sp= is p;
 * alignment is symmetric, strict implies relaxed, a normalizable domain
 * aligns with itself, normalization is idempotent and lower-case.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/dmarc_org.h"
#include "filters/dmarc_record.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static void check_record(const char *s, size_t n)
{
	struct dmarc_record r, r2, sel;
	enum dmarc_record_status st = dmarc_record_parse(s, n, &r);
	struct dmarc_txt one = { s, n };
	enum dmarc_discovery d = dmarc_record_select(&one, 1, &sel);

	REQUIRE(dmarc_record_parse(s, n, &r2) == st && memcmp(&r, &r2, sizeof r) == 0);
	REQUIRE(r.pct <= 100);
	REQUIRE(r.p <= DMARC_POLICY_REJECT && r.sp <= DMARC_POLICY_REJECT);
	switch (st) {
	case DMARC_RECORD_OK:
		REQUIRE(d == DMARC_DISCOVERY_FOUND && memcmp(&r, &sel, sizeof r) == 0);
		if (r.p_from_rua)
			REQUIRE(r.has_rua && r.p == DMARC_POLICY_NONE && r.sp == DMARC_POLICY_NONE);
		else if (!r.has_sp)
			REQUIRE(r.sp == r.p);
		break;
	case DMARC_RECORD_NOT_DMARC:
		REQUIRE(d == DMARC_DISCOVERY_EMPTY && r.note != NULL);
		break;
	case DMARC_RECORD_INVALID:
		REQUIRE(d == DMARC_DISCOVERY_INVALID && r.note != NULL);
		break;
	}
	/* the same record twice is never FOUND */
	struct dmarc_txt two[2] = { one, one };
	d = dmarc_record_select(two, 2, &sel);
	REQUIRE(d == (st == DMARC_RECORD_NOT_DMARC ? DMARC_DISCOVERY_EMPTY : DMARC_DISCOVERY_MULTIPLE));
}

static void check_domains(const char *a, size_t an, const char *b, size_t bn)
{
	char sa[512], sb[512], na[DMARC_DOMAIN_MAX + 1], nb[DMARC_DOMAIN_MAX + 1];
	char again[DMARC_DOMAIN_MAX + 1];

	if (an >= sizeof sa || bn >= sizeof sb)
		return;
	memcpy(sa, a, an);
	sa[an] = '\0';
	memcpy(sb, b, bn);
	sb[bn] = '\0';
	bool a_ok = dmarc_domain_normalize(a, an, na);
	(void)dmarc_domain_normalize(b, bn, nb);
	if (a_ok) {
		size_t len = strlen(na);
		REQUIRE(len >= 1 && len <= DMARC_DOMAIN_MAX);
		REQUIRE(dmarc_domain_normalize(na, len, again) && strcmp(na, again) == 0);
		for (size_t i = 0; i < len; i++)
			REQUIRE(!(na[i] >= 'A' && na[i] <= 'Z') && (unsigned char)na[i] < 0x80);
	} else
		REQUIRE(na[0] == '\0');
	for (int strict = 0; strict <= 1; strict++) {
		bool ab = dmarc_aligned(sa, sb, strict);
		REQUIRE(ab == dmarc_aligned(sb, sa, strict));
		if (strict && ab)
			REQUIRE(dmarc_aligned(sa, sb, false));
		/* strlen(sa) < an when a holds a NUL: then sa is a shorter name */
		if (strlen(sa) == an)
			REQUIRE(dmarc_aligned(sa, sa, strict) == a_ok);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	const char *s = (const char *)data;
	char err[512];

	if (!ready) {
		if (dmarc_org_init(NULL, err, sizeof err) != 0) {
			fprintf(stderr, "%s\n", err);
			abort();
		}
		ready = 1;
	}
	check_record(s, size);
	const char *lf = memchr(s, '\n', size);
	if (lf)
		check_domains(s, (size_t)(lf - s), lf + 1, size - (size_t)(lf - s) - 1);
	return 0;
}

/*
 * opendkim_probe - what libopendkim itself says about the DKIM fixtures
 * (a developer's tool, not part of the test suite).
 *
 *   cc -o /tmp/opendkim_probe tests/data/dkim/opendkim_probe.c \
 *      $(pkg-config --cflags --libs opendkim)
 *   /tmp/opendkim_probe KEYFILE MESSAGE...
 *
 * KEYFILE is libopendkim's file query method format, one key a line:
 * "selector._domainkey.domain v=DKIM1; k=rsa; p=..." (make it from the
 * zone: sed -n 's/^\([^ ]*\)\. .* TXT "\(.*\)"$/\1 \2/p' dkim.zone).
 * Prints whether the library has ed25519 (DKIM_FEATURE_ED25519), then per
 * message and signature the RFC result (see rfc_result), the result the
 * opendkim milter would give, the flags and the library's error.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <opendkim/dkim.h>

/* The opendkim milter's mapping (opendkim.c, dkimf_add_ar_fields). */
static const char *milter_result(DKIM_SIGINFO *sig)
{
	int err = dkim_sig_geterror(sig);
	unsigned int flags = dkim_sig_getflags(sig);

	if (DKIM_SIG_CHECK(sig))
		return "pass";
	if (err == DKIM_SIGERROR_MULTIREPLY || err == DKIM_SIGERROR_KEYFAIL ||
	    err == DKIM_SIGERROR_DNSSYNTAX)
		return "temperror";
	if (err == DKIM_SIGERROR_KEYTOOSMALL)
		return "policy";
	if ((flags & DKIM_SIGFLAG_PROCESSED) != 0 &&
	    ((flags & DKIM_SIGFLAG_PASSED) == 0 || dkim_sig_getbh(sig) != DKIM_SIGBH_MATCH))
		return "fail";
	if (err != DKIM_SIGERROR_OK)
		return "permerror";
	return "neutral";
}

/* RFC 6376 6.1 / RFC 8301 / RFC 8601 2.7.1: only a signature or body hash
 * that does not verify is "fail"; a missing, revoked, unusable or too small
 * key is PERMFAIL (permerror) although the library sets PROCESSED then too. */
static const char *rfc_result(DKIM_SIGINFO *sig)
{
	int err = dkim_sig_geterror(sig);
	unsigned int flags = dkim_sig_getflags(sig);

	if (DKIM_SIG_CHECK(sig))
		return "pass";
	if (err == DKIM_SIGERROR_MULTIREPLY || err == DKIM_SIGERROR_KEYFAIL ||
	    err == DKIM_SIGERROR_DNSSYNTAX)
		return "temperror";
	if ((err == DKIM_SIGERROR_OK || err == DKIM_SIGERROR_BADSIG) &&
	    (flags & DKIM_SIGFLAG_PROCESSED) != 0)
		return "fail";
	return "permerror";
}

static int probe(DKIM_LIB *lib, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return 1;
	}
	static unsigned char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);

	DKIM_STAT st;
	DKIM *d = dkim_verify(lib, (unsigned char *)"probe", NULL, &st);
	if (d == NULL)
		return 1;
	st = dkim_chunk(d, buf, n);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	DKIM_STAT eom = st == DKIM_STAT_OK ? dkim_eom(d, NULL) : st;
	DKIM_SIGINFO **sigs;
	int nsigs = 0;
	if (dkim_getsiglist(d, &sigs, &nsigs) != DKIM_STAT_OK || nsigs == 0) {
		printf("%s: dkim=none (%s)\n", path, dkim_getresultstr(eom));
	}
	for (int i = 0; i < nsigs; i++) {
		unsigned char b[9];
		size_t blen = sizeof b;
		if (dkim_get_sigsubstring(d, sigs[i], (char *)b, &blen) != DKIM_STAT_OK)
			strcpy((char *)b, "?");
		unsigned int bits = 0;
		(void)dkim_sig_getkeysize(sigs[i], &bits);
		printf("%s: dkim=%s (milter: %s) header.d=%s header.s=%s header.b=%s "
		       "(%u-bit key; flags %#x bh %d; error %d %s; eom %s)\n",
		       path, rfc_result(sigs[i]), milter_result(sigs[i]), dkim_sig_getdomain(sigs[i]),
		       dkim_sig_getselector(sigs[i]), b, bits, dkim_sig_getflags(sigs[i]),
		       dkim_sig_getbh(sigs[i]), dkim_sig_geterror(sigs[i]),
		       dkim_sig_geterrorstr(dkim_sig_geterror(sigs[i])) ?
		       dkim_sig_geterrorstr(dkim_sig_geterror(sigs[i])) : "",
		       dkim_getresultstr(eom));
	}
	dkim_free(d);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s KEYFILE MESSAGE...\n", argv[0]);
		return 2;
	}
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	dkim_query_t q = DKIM_QUERY_FILE;
	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &q, sizeof q);
	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, argv[1], strlen(argv[1]));
	printf("libopendkim %#lx: DKIM_FEATURE_ED25519 %s, DKIM_FEATURE_SHA256 %s\n",
	       (unsigned long)dkim_libversion(),
	       dkim_libfeature(lib, DKIM_FEATURE_ED25519) ? "yes" : "no",
	       dkim_libfeature(lib, DKIM_FEATURE_SHA256) ? "yes" : "no");
	int rc = 0;
	for (int i = 2; i < argc; i++)
		rc |= probe(lib, argv[i]);
	dkim_close(lib);
	return rc;
}

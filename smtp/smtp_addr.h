/*
 * smtp_addr - the one parser for SMTP paths and ESMTP parameters
 * (RFC 5321 4.1.2, RFC 6531 for SMTPUTF8).
 *
 * Input is the text after "MAIL FROM:" or "RCPT TO:":
 *   "<local@domain> SIZE=123 BODY=8BITMIME"
 * Quoted local parts are kept exactly as given (with their quotes), source
 * routes ("<@a,@b:user@d>") are accepted and dropped, "<>" is the null path.
 * Parameters are slices of the input; the address is copied into the
 * fixed-size struct so it can outlive the input line.
 */
#ifndef SMTP_ADDR_H
#define SMTP_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_LOCAL_MAX 64    /* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX 255  /* RFC 5321 4.5.3.1.2 */
#define SMTP_ADDR_MAX 254    /* path of 256 minus the brackets, 4.5.3.1.3 */
#define SMTP_PARAMS_MAX 16   /* more parameters than any extension uses */

enum smtp_path_flag {
	SMTP_PATH_ALLOW_NULL = 1 << 0,       /* "<>" accepted (MAIL FROM) */
	SMTP_PATH_ALLOW_POSTMASTER = 1 << 1, /* "<Postmaster>" without domain
	                                        (RCPT TO, RFC 5321 4.1.1.3) */
	SMTP_PATH_ALLOW_UTF8 = 1 << 2,       /* 8-bit in the address (SMTPUTF8) */
	SMTP_PATH_ALLOW_NO_BRACKETS = 1 << 3,/* "user@domain" without <> */
};

enum smtp_path_status {
	SMTP_PATH_OK = 0,
	SMTP_PATH_SYNTAX,      /* 501 5.1.3 (MAIL: 5.1.7, RCPT: 5.1.3) */
	SMTP_PATH_TOO_LONG,    /* 501 5.1.3: local part, domain or path too long */
	SMTP_PATH_8BIT,        /* 8-bit without SMTP_PATH_ALLOW_UTF8: 553 5.6.7 */
	SMTP_PATH_BAD_PARAM,   /* malformed parameter: 501 5.5.4 */
	SMTP_PATH_TOO_MANY_PARAMS, /* 501 5.5.4 */
};

struct smtp_path {
	bool is_null;              /* "<>" */
	bool is_postmaster;        /* bare "<Postmaster>" */
	bool has_8bit;
	char addr[SMTP_ADDR_MAX + 1]; /* "local@domain", NUL-terminated; "" for <> */
	size_t addr_len;
	size_t local_len;          /* bytes of addr before the '@' */
	const char *domain;        /* points into addr after the '@'; "" if none */
};

struct smtp_param {
	const char *key;     /* e.g. "SIZE"; slice of the input */
	size_t key_len;
	const char *value;   /* NULL when the parameter has no "=" */
	size_t value_len;
};

/*
 * smtp_path_parse - parse s[0..len) into *path and up to *nparams
 * parameters (in: capacity of params, out: number found).
 */
enum smtp_path_status smtp_path_parse(const char *s, size_t len,
    unsigned flags, struct smtp_path *path, struct smtp_param *params,
    size_t *nparams);

/* smtp_param_is - case-insensitive key comparison. */
bool smtp_param_is(const struct smtp_param *p, const char *key);

/*
 * smtp_xtext_encode - RFC 3461 4: "+XX" for '+', '=' and bytes outside
 * '!'..'~'. Writes a NUL-terminated string; returns its length, or -1 when
 * out (cap bytes) is too small.
 */
long smtp_xtext_encode(const char *in, size_t len, char *out, size_t cap);

/* smtp_domain_valid - RFC 5321 Domain or address literal ("[1.2.3.4]",
 * "[IPv6:...]"), as in HELO/EHLO. */
bool smtp_domain_valid(const char *s, size_t len);

/* smtp_utf8_len - length of the well-formed UTF-8 sequence at s[0..n), or 0
 * (RFC 3629 4: no overlongs, no surrogates, nothing above U+10FFFF). */
size_t smtp_utf8_len(const char *s, size_t n);

#endif

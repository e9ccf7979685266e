/*
 * batv_tag - BATV "prvs" tags (draft-levine-smtp-batv-01), interchangeable
 * with Exim's ${prvs} / ${prvscheck}.
 *
 *   prvs=KDDDHHHHHH=local@domain
 *   K      key number, one digit 0-9
 *   DDD    last three digits of the expiry day number
 *          (days since 1970-01-01 + validity days) mod 1000
 *   HHHHHH first three bytes, lowercase hex, of
 *          HMAC-SHA1(secret_K, "K" "DDD" "local@domain")
 *
 * Pure apart from reading the keys file: the day number is a parameter, so
 * tests fix it. Secrets never leave this module (not even in errors).
 */
#ifndef BATV_TAG_H
#define BATV_TAG_H

#include <stdbool.h>
#include <stddef.h>

#define BATV_SECRET_MAX 64   /* Exim refuses longer secrets */
#define BATV_NKEYS 10

struct batv_keys {
	bool present[BATV_NKEYS];
	unsigned char secret[BATV_NKEYS][BATV_SECRET_MAX];
	size_t len[BATV_NKEYS];
};

enum batv_status {
	BATV_VALID = 0,
	BATV_NO_TAG,       /* the local part carries no prvs tag */
	BATV_MALFORMED,    /* "prvs=" but not K DDD HHHHHH */
	BATV_UNKNOWN_KEY,  /* key number not in the keys file */
	BATV_BAD_MAC,      /* HMAC does not match */
	BATV_EXPIRED,      /* (DDD - today) mod 1000 > validity */
};

/*
 * batv_keys_load - read "<key number> <secret>" lines (blank lines and '#'
 * comments allowed). Refuses a file readable or writable by others (mode &
 * 007), duplicate or out-of-range key numbers, empty or over-long secrets.
 * Returns 0, or -1 with "path:line: reason" in err.
 */
int batv_keys_load(const char *path, struct batv_keys *keys, char *err,
    size_t errlen);

/* batv_today - days since 1970-01-01 (UTC) now. */
long batv_today(void);

/*
 * batv_sign - write "prvs=KDDDHHHHHH=addr" to out (cap bytes). addr is
 * "local@domain" exactly as it will be sent. Returns the length, or -1 (no
 * such key, address too long, cap too small).
 */
long batv_sign(const struct batv_keys *keys, unsigned key, const char *addr,
    long today, unsigned validity_days, char *out, size_t cap);

/*
 * batv_check - if addr's local part is a prvs tag, verify it against keys
 * for day today; the tagged-free address is written to stripped (cap bytes)
 * whenever the tag is well-formed (also when expired or bad), otherwise
 * addr itself is copied. MAC compared in constant time, hex
 * case-insensitively. Validity: (DDD - today) mod 1000 <= validity_days.
 */
enum batv_status batv_check(const struct batv_keys *keys, const char *addr,
    long today, unsigned validity_days, char *stripped, size_t cap);

/* batv_status_text - "valid", "no BATV tag", "BATV tag expired", ... */
const char *batv_status_text(enum batv_status st);

#endif

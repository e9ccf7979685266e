/*
 * bounce_fields - field reading for the bounce classifier (internal to
 * smtp/bounce.c; see bounce_fields.c). Outputs go to the caller's buffer of
 * cap bytes, always NUL-terminated, cut when longer.
 */
#ifndef SMTP_BOUNCE_FIELDS_H
#define SMTP_BOUNCE_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/bounce.h"

/* s[0..n) lowercased (ASCII), NUL and other controls as blanks */
void bounce_lowercase(const char *s, size_t n, char *out, size_t cap);
/* a field value without its line breaks (RFC 5322 2.2.3), trimmed */
void bounce_unfold(const char *v, size_t n, char *out, size_t cap);
void bounce_copy(char *dst, size_t cap, const char *src, size_t n);
/* the first "<...>" of v (blanks inside dropped); a bare "id@host" is wrapped */
bool bounce_first_msgid(const char *v, size_t n, char *out, size_t cap);
/* the address of a From:/Return-Path: value; name (may be NULL) gets the
 * display name or the trailing "(comment)" */
void bounce_addr_spec(const char *v, size_t n, char *out, size_t cap, char *name, size_t name_cap);
/* RFC 2047 encoded words decoded to their bytes (charset ignored) */
void bounce_rfc2047_decode(const char *s, char *out, size_t cap);
/* from / by / ip of one Received: value */
void bounce_parse_received(const char *v, size_t n, struct bounce_hop *hop);
/* a field of an original message into o: Return-Path, Message-ID, From,
 * Subject, Date, X-Backstop-Sig (the first of each), Received (appended,
 * up to BOUNCE_RECEIVED_MAX); sets o->found once the copy can be named */
void bounce_capture(struct bounce_original *o, const char *field, size_t len);

#endif

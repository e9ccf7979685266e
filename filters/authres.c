/*
 * authres - the authentication results record and the one
 * Authentication-Results writer; see authres.h.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "filters/authres.h"

bool authres_add(struct auth_results *a, const struct auth_result *r)
{
	if (a == NULL || a->n >= AUTHRES_MAX)
		return false;
	a->r[a->n++] = *r;
	return true;
}

const struct auth_result *authres_find(const struct auth_results *a,
    const char *method, size_t index)
{
	if (a == NULL)
		return NULL;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->r[i].method, method) == 0 && index-- == 0)
			return &a->r[i];
	return NULL;
}

static bool is_atext(unsigned char c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool is_dot_atom(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.' ? s[i + 1] == '.' : !is_atext(c))
			return false;
	}
	return true;
}

bool authres_value(char *out, size_t cap, const char *s, size_t max)
{
	size_t used = strlen(out), n = strnlen(s, max);

	if (is_dot_atom(s, n)) {
		if (used + n + 1 > cap)
			return false;
		memcpy(out + used, s, n);
		out[used + n] = '\0';
		return true;
	}
	/* quoted: at most 2 bytes per input byte, plus the quotes */
	if (used + 2 * n + 3 > cap)
		return false;
	out[used++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			out[used++] = '\\';
		out[used++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	out[used++] = '"';
	out[used] = '\0';
	return true;
}

int authres_format(const struct auth_results *a, const char *authserv_id,
    char *out, size_t cap)
{
	size_t used;
	int n;

	if (cap == 0)
		return -1;
	out[0] = '\0';
	n = snprintf(out, cap, "Authentication-Results: ");
	if (n < 0 || (size_t)n >= cap || !authres_value(out, cap, authserv_id, 255))
		return -1;
	used = strlen(out);
	if (a == NULL || a->n == 0) {
		/* RFC 8601 2.2: no method was applied */
		n = snprintf(out + used, cap - used, "; none\r\n");
		return n < 0 || (size_t)n >= cap - used ? -1 : (int)(used + (size_t)n);
	}
	for (size_t i = 0; i < a->n; i++) {
		const struct auth_result *r = &a->r[i];
		n = snprintf(out + used, cap - used, ";\r\n\t%s=%s%s%s%s%s%s", r->method, r->result,
		    r->reason[0] ? " (" : "", r->reason, r->reason[0] ? ")" : "",
		    r->props[0] ? " " : "", r->props);
		if (n < 0 || (size_t)n >= cap - used)
			return -1;
		used += (size_t)n;
	}
	n = snprintf(out + used, cap - used, "\r\n");
	return n < 0 || (size_t)n >= cap - used ? -1 : (int)(used + (size_t)n);
}

/* skip_cfws - whitespace and (nested) comments, RFC 5322 3.2.2 */
static size_t skip_cfws(const char *s, size_t len, size_t i)
{
	while (i < len) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
			i++;
		} else if (s[i] == '(') {
			int depth = 0;
			for (; i < len; i++) {
				if (s[i] == '\\' && i + 1 < len)
					i++;
				else if (s[i] == '(')
					depth++;
				else if (s[i] == ')' && --depth == 0) {
					i++;
					break;
				}
			}
		} else {
			break;
		}
	}
	return i;
}

bool authres_is_ours(const char *value, size_t len, const char *hostname)
{
	char id[AUTHRES_DOMAIN_MAX + 2];
	size_t i = skip_cfws(value, len, 0), n = 0;

	if (hostname == NULL || hostname[0] == '\0')
		return false;
	if (i < len && value[i] == '"') {
		for (i++; i < len && value[i] != '"'; i++) {
			if (value[i] == '\\' && i + 1 < len)
				i++;
			if (n + 1 >= sizeof id)
				return false;
			id[n++] = value[i];
		}
	} else {
		for (; i < len && value[i] != ';' && value[i] != '(' &&
		    !isspace((unsigned char)value[i]); i++) {
			if (n + 1 >= sizeof id)
				return false;
			id[n++] = value[i];
		}
	}
	id[n] = '\0';
	/* a trailing dot names the same host */
	if (n > 1 && id[n - 1] == '.')
		id[--n] = '\0';
	size_t hl = strlen(hostname);
	if (hl > 1 && hostname[hl - 1] == '.')
		hl--;
	return n == hl && strncasecmp(id, hostname, hl) == 0;
}

/*
 * url_hosts - see url_hosts.h. Looks for "http://" and "https://" (any
 * case) and reads the authority after them; everything else is skipped.
 */
#include "smtp/url_hosts.h"

#include <stdbool.h>
#include <string.h>

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* scheme_len - length of "http://" or "https://" at s (case-insensitive), else 0 */
static size_t scheme_len(const char *s, size_t n)
{
	static const char *const schemes[] = {"http://", "https://"};
	for (size_t k = 0; k < 2; k++) {
		size_t l = strlen(schemes[k]), i;
		if (n < l)
			continue;
		for (i = 0; i < l && lower(s[i]) == schemes[k][i]; i++)
			;
		if (i == l)
			return l;
	}
	return 0;
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '.' || c == '_';
}

static bool authority_end(char c)
{
	return c == '/' || c == '?' || c == '#' || c == '\\';
}

static void add(struct url_hosts *u, const char *host, size_t len)
{
	char h[URL_HOST_MAX];
	bool alnum = false;

	while (len > 0 && host[len - 1] == '.')
		len--;
	if (len == 0 || len >= URL_HOST_MAX)
		return;
	for (size_t i = 0; i < len; i++) {
		h[i] = lower(host[i]);
		alnum |= (h[i] >= 'a' && h[i] <= 'z') || (h[i] >= '0' && h[i] <= '9');
	}
	h[len] = '\0';
	if (!alnum)
		return;
	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->host[i], h) == 0)
			return;
	if (u->n == URL_HOSTS_MAX) {
		if (u->dropped < 1000000)
			u->dropped++;
		return;
	}
	memcpy(u->host[u->n++], h, len + 1);
}

/* authority - the host of the authority at s[0..n); returns the bytes read */
static size_t authority(struct url_hosts *u, const char *s, size_t n)
{
	size_t end = 0, start = 0, i;

	/* the authority: up to '/', '?', '#', a blank, a quote or a control */
	while (end < n && !authority_end(s[end]) && (unsigned char)s[end] > ' ' &&
	    s[end] != '"' && s[end] != '\'' && s[end] != '<' && s[end] != '>' && s[end] != 127)
		end++;
	/* userinfo: the host follows the last '@' ("http://bank.com@evil.example/") */
	for (i = 0; i < end; i++)
		if (s[i] == '@')
			start = i + 1;
	if (start < end && s[start] == '[') {
		/* an IPv6 literal: hex digits, ':' and '.' up to ']' */
		for (i = start + 1; i < end && s[i] != ']'; i++)
			if (!((s[i] >= '0' && s[i] <= '9') || (lower(s[i]) >= 'a' && lower(s[i]) <= 'f') ||
			    s[i] == ':' || s[i] == '.'))
				return end;
		if (i < end)
			add(u, s + start, i + 1 - start);
		return end;
	}
	for (i = start; i < end && name_char(s[i]); i++)
		;
	/* the name must end the authority or be followed by ":port" */
	if (i == end || s[i] == ':')
		add(u, s + start, i - start);
	return end;
}

void url_hosts_line(struct url_hosts *u, const char *line, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t l = lower(line[i]) == 'h' ? scheme_len(line + i, len - i) : 0;
		if (l == 0) {
			i++;
			continue;
		}
		i += l;
		i += authority(u, line + i, len - i);
	}
}

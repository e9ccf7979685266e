/*
 * smtp_foreign - HTTP and TLS spoken to the SMTP port (see smtp_foreign.h).
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_foreign.h"

/* Postfix's smtpd_forbidden_commands default: never an SMTP verb, so
 * whatever follows them they end the session */
static const char *const forbidden[] = {"GET", "POST", "CONNECT", NULL};
/* HTTP/1.1 methods (RFC 9110 9.3) and HTTP/2's connection preface
 * ("PRI * HTTP/2.0"): recognised only as a full request line */
static const char *const http_methods[] = {"HEAD", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH",
	"PRI", NULL};

enum smtp_foreign smtp_foreign_start(const char *data, size_t len)
{
	/* record type 22 (handshake), protocol major version 3 (SSL 3.0 up
	 * to TLS 1.3 all say 3 here) */
	if (len >= 2 && (unsigned char)data[0] == 0x16 && (unsigned char)data[1] == 0x03)
		return SMTP_FOREIGN_TLS;
	return SMTP_FOREIGN_NONE;
}

/* http_version_at_end - the line ends with " HTTP/d.d" after a target */
static bool http_version_at_end(const char *line, size_t len, size_t target)
{
	static const char tail[] = " HTTP/";
	const size_t tlen = sizeof tail - 1;
	const char *v;

	if (len < target + 1 + tlen + 3)
		return false;
	v = line + len - (tlen + 3);
	return memcmp(v, tail, tlen) == 0 && v[tlen] >= '0' && v[tlen] <= '9' &&
	    v[tlen + 1] == '.' && v[tlen + 2] >= '0' && v[tlen + 2] <= '9' &&
	    line[target] != ' ';
}

enum smtp_foreign smtp_foreign_line(const char *line, size_t len)
{
	size_t word = 0;

	if (smtp_foreign_start(line, len) != SMTP_FOREIGN_NONE)
		return smtp_foreign_start(line, len);
	while (word < len && line[word] != ' ')
		word++;
	if (word == len)
		return SMTP_FOREIGN_NONE;   /* no argument: "GET" alone is just unknown */
	for (size_t i = 0; forbidden[i]; i++)
		if (word == strlen(forbidden[i]) && strncasecmp(line, forbidden[i], word) == 0)
			return SMTP_FOREIGN_HTTP;
	for (size_t i = 0; http_methods[i]; i++)
		if (word == strlen(http_methods[i]) && memcmp(line, http_methods[i], word) == 0 &&
		    http_version_at_end(line, len, word + 1))
			return SMTP_FOREIGN_HTTP;
	return SMTP_FOREIGN_NONE;
}

const char *smtp_foreign_name(enum smtp_foreign f)
{
	switch (f) {
	case SMTP_FOREIGN_HTTP:
		return "HTTP request";
	case SMTP_FOREIGN_TLS:
		return "TLS handshake";
	default:
		return "none";
	}
}

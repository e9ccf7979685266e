/*
 * smtp_foreign - recognise a client that speaks another protocol to the
 * SMTP port: an HTTP request (a browser, a proxy scanner sending CONNECT,
 * a web form abused to relay) or a TLS ClientHello sent in plaintext (an
 * implicit-TLS client on the port 25/587 listener). Such a client is not
 * answered command by command; it is told once and disconnected (Postfix
 * postscreen's "NON-SMTP COMMAND", smtpd_forbidden_commands).
 *
 * Pure: no I/O, no allocation, no globals.
 */
#ifndef SMTP_FOREIGN_H
#define SMTP_FOREIGN_H

#include <stddef.h>

enum smtp_foreign {
	SMTP_FOREIGN_NONE = 0,
	SMTP_FOREIGN_HTTP,    /* an HTTP request line */
	SMTP_FOREIGN_TLS,     /* a TLS handshake record */
};

/* smtp_foreign_start - the first bytes of a command line, complete or
 * not: a TLS handshake record starts 0x16 0x03 (and a ClientHello need
 * not contain a line feed for a long while, so this cannot wait for the
 * end of the line). NONE for fewer than 2 bytes. */
enum smtp_foreign smtp_foreign_start(const char *data, size_t len);

/* smtp_foreign_line - a complete command line (without its CRLF): GET,
 * POST or CONNECT followed by a space (Postfix's default forbidden
 * commands, case-insensitive like SMTP verbs), or any HTTP method in
 * upper case followed by " target HTTP/d.d", or what
 * smtp_foreign_start() recognises. */
enum smtp_foreign smtp_foreign_line(const char *line, size_t len);

/* smtp_foreign_name - "HTTP request", "TLS handshake" (for logs) */
const char *smtp_foreign_name(enum smtp_foreign f);

#endif

/*
 * test_smtp_foreign - HTTP request lines and TLS handshakes spoken to the
 * SMTP port are recognised; SMTP commands (also ones that share a word
 * with HTTP, or carry "HTTP/1.1" in an argument) are not.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS for guarded_copy */
#include "smtp/smtp_foreign.h"
#include "tests/unit/check.h"

static enum smtp_foreign line(const char *s, size_t len)
{
	char *g = guarded_copy(s, len);
	enum smtp_foreign f = smtp_foreign_line(g, len);
	guarded_free(g, len);
	return f;
}

#define LINE(s) line((s), sizeof(s) - 1)

int main(void)
{
	/* HTTP */
	CHECK_INT(LINE("GET / HTTP/1.1"), SMTP_FOREIGN_HTTP);
	CHECK_INT(LINE("POST /cgi-bin/formmail HTTP/1.0"), SMTP_FOREIGN_HTTP);
	CHECK_INT(LINE("CONNECT mx.example.com:25 HTTP/1.1"), SMTP_FOREIGN_HTTP);
	CHECK_INT(LINE("get /"), SMTP_FOREIGN_HTTP);          /* Postfix: any arguments */
	CHECK_INT(LINE("HEAD / HTTP/1.1"), SMTP_FOREIGN_HTTP);
	CHECK_INT(LINE("OPTIONS * HTTP/1.1"), SMTP_FOREIGN_HTTP);
	CHECK_INT(LINE("PRI * HTTP/2.0"), SMTP_FOREIGN_HTTP);
	CHECK_INT(LINE("PUT /x HTTP/1.1"), SMTP_FOREIGN_HTTP);
	/* not HTTP */
	CHECK_INT(LINE("GET"), SMTP_FOREIGN_NONE);            /* no argument: an unknown command */
	CHECK_INT(LINE("HEAD /"), SMTP_FOREIGN_NONE);
	CHECK_INT(LINE("PUT  HTTP/1.1"), SMTP_FOREIGN_NONE);  /* no target */
	CHECK_INT(LINE("head / HTTP/1.1"), SMTP_FOREIGN_NONE); /* HTTP methods are case-sensitive */
	CHECK_INT(LINE("HEAD / HTTP/1."), SMTP_FOREIGN_NONE);
	CHECK_INT(LINE("HEAD / HTTP/x.1"), SMTP_FOREIGN_NONE);
	CHECK_INT(LINE("EHLO GET"), SMTP_FOREIGN_NONE);
	CHECK_INT(LINE("MAIL FROM:<a@b> HTTP/1.1"), SMTP_FOREIGN_NONE);
	CHECK_INT(LINE("RCPT TO:<get@example.com>"), SMTP_FOREIGN_NONE);
	CHECK_INT(LINE("GETX / HTTP/1.1"), SMTP_FOREIGN_NONE);
	CHECK_INT(LINE(""), SMTP_FOREIGN_NONE);
	CHECK_INT(LINE(" GET / HTTP/1.1"), SMTP_FOREIGN_NONE);
	/* TLS: a ClientHello record header, whole line or first bytes */
	CHECK_INT(LINE("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), SMTP_FOREIGN_TLS);
	CHECK_INT(smtp_foreign_start("\x16\x03", 2), SMTP_FOREIGN_TLS);
	CHECK_INT(smtp_foreign_start("\x16", 1), SMTP_FOREIGN_NONE);
	CHECK_INT(smtp_foreign_start("\x16\x02", 2), SMTP_FOREIGN_NONE);
	CHECK_INT(smtp_foreign_start("", 0), SMTP_FOREIGN_NONE);
	CHECK_INT(smtp_foreign_start("EH", 2), SMTP_FOREIGN_NONE);
	CHECK_STR(smtp_foreign_name(SMTP_FOREIGN_HTTP), "HTTP request");
	CHECK_STR(smtp_foreign_name(SMTP_FOREIGN_TLS), "TLS handshake");
	return check_finish("test_smtp_foreign");
}

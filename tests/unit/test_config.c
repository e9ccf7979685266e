/*
 * test_config - the configuration table and parser: every error is
 * reported with file:line, defaults come from the table, lists extend.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "check.h"
#include "proxy/config.h"

static char path[64];

static struct config *load(const char *text, char *err, size_t errlen)
{
	FILE *f;
	strcpy(path, "/tmp/test_config_XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL)
		exit(2);
	fputs(text, f);
	fclose(f);
	struct config *c = config_load(path, err, errlen);
	unlink(path);
	return c;
}

/* expect_error - loading text fails, and err names line and words */
static void expect_error(const char *text, unsigned line, const char *words)
{
	char err[4096], want[128];
	struct config *c = load(text, err, sizeof err);
	CHECK(c == NULL);
	config_unref(c);
	if (line)
		snprintf(want, sizeof want, "%s:%u: ", path, line);
	else
		snprintf(want, sizeof want, "%s: ", path);
	CHECK(strstr(err, want) != NULL);
	CHECK(strstr(err, words) != NULL);
	if (!strstr(err, want) || !strstr(err, words))
		fprintf(stderr, "  got: %s  wanted %s ... %s\n", err, want, words);
}

int main(void)
{
	char err[4096];
	struct config *c;

	/* minimal config: defaults from the table */
	c = load("[backend]\naddress = 127.0.0.1:10025\n", err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_INT(c->limits.max_recipients, 100);
		CHECK_INT(c->limits.max_message_size, 25 * 1024 * 1024);
		CHECK_INT(c->limits.command_timeout, 300000);
		CHECK_INT(c->backend.xclient, XCLIENT_AUTO);
		CHECK_INT(c->server.listen.n, 1);
		CHECK_STR(c->server.listen.v[0], "127.0.0.1:2525");
		CHECK(c->server.hostname[0] != '\0');
		CHECK_STR(c->backend.helo, c->server.hostname);
		CHECK_STR(c->outbound.relay, "127.0.0.1:10025");
		config_unref(c);
	}

	/* [server] workers: auto (kept as 0) or 1..256; nothing else */
	c = load("[backend]\naddress = 127.0.0.1:10025\n", err, sizeof err);
	CHECK(c != NULL && c->server.workers == 1);
	config_unref(c);
	c = load("[server]\nworkers = auto\n[backend]\naddress = 127.0.0.1:10025\n", err, sizeof err);
	CHECK(c != NULL && c->server.workers == 0);
	config_unref(c);
	c = load("[server]\nworkers = 256\n[backend]\naddress = 127.0.0.1:10025\n", err, sizeof err);
	CHECK(c != NULL && c->server.workers == 256);
	config_unref(c);
	expect_error("[server]\nworkers = 0\n[backend]\naddress = 127.0.0.1:10025\n", 2, "between 1 and 256");
	expect_error("[server]\nworkers = 257\n[backend]\naddress = 127.0.0.1:10025\n", 2, "between 1 and 256");
	c = load("[server]\nworkers = AUTO\n[backend]\naddress = 127.0.0.1:10025\n", err, sizeof err);
	CHECK(c != NULL && c->server.workers == 0);   /* as the enums: any case */
	config_unref(c);
	expect_error("[server]\nworkers = auto2\n[backend]\naddress = 127.0.0.1:10025\n", 2,
	    "auto or a whole number");
	expect_error("[server]\nworkers = -1\n[backend]\naddress = 127.0.0.1:10025\n", 2,
	    "auto or a whole number");

	/* [backend] identity (issue 12): the mode, and the keys it conflicts with */
	CHECK_INT(IDENTITY_AUTO, 0);
	c = load("[backend]\naddress = 127.0.0.1:10026\nidentity = transparent\n", err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_INT(c->backend.identity, IDENTITY_TRANSPARENT);
		config_unref(c);
	}
	expect_error("[backend]\naddress = 127.0.0.1:10025\nidentity = sometimes\n", 3, "identity");
	expect_error("[backend]\naddress = 127.0.0.1:10025\nidentity = xclient\nxclient = off\n", 0,
	    "identity = xclient and xclient = off: identity replaces xclient");
	expect_error("[backend]\naddress = 127.0.0.1:10026\nidentity = proxy\n[outbound]\n"
	    "listen = 127.0.0.1:10027\n[batv]\nkeys_file = /k\n", 0,
	    "[backend] identity = proxy: [outbound] relay is [backend] address 127.0.0.1:10026");
	c = load("[backend]\naddress = 127.0.0.1:10026\nidentity = proxy\n[outbound]\n"
	    "listen = 127.0.0.1:10027\nrelay = 127.0.0.1:10025\n[batv]\nkeys_file = /k\n", err, sizeof err);
	CHECK(c != NULL);
	if (c == NULL)
		fprintf(stderr, "  got: %s\n", err);
	config_unref(c);

	/* typed values, lists extended by repetition, comments */
	c = load("; comment\n[server]\nlisten = 127.0.0.1:25 [::1]:25\nlisten = 0.0.0.0:2525\n"
	    "greet_pause = 1500ms\n[backend]\naddress = [::1]:25\nxclient = OFF\n"
	    "[limits]\nmax_message_size = 10m\nsession_timeout = 1h\n[spf]\ntrusted = 192.0.2.0/24 2001:db8::/32\n"
	    "[tls]\nciphers = A\nciphers = B\n", err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_INT(c->server.listen.n, 3);
		CHECK_STR(c->server.listen.v[1], "[::1]:25");
		CHECK_INT(c->server.greet_pause, 1500);
		CHECK_INT(c->backend.xclient, XCLIENT_OFF);
		CHECK_INT(c->limits.max_message_size, 10 * 1024 * 1024);
		CHECK_INT(c->limits.session_timeout, 3600000);
		CHECK_STR(c->tls.ciphers, "A:B");
		CHECK_INT(c->spf.trusted.n, 2);
		struct sockaddr_in a4 = {.sin_family = AF_INET};
		inet_pton(AF_INET, "192.0.2.77", &a4.sin_addr);
		CHECK(cidrs_match(&c->spf.trusted, (struct sockaddr *)&a4));
		inet_pton(AF_INET, "192.0.3.1", &a4.sin_addr);
		CHECK(!cidrs_match(&c->spf.trusted, (struct sockaddr *)&a4));
		struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
		inet_pton(AF_INET6, "::ffff:192.0.2.1", &a6.sin6_addr);   /* v4-mapped */
		CHECK(cidrs_match(&c->spf.trusted, (struct sockaddr *)&a6));
		inet_pton(AF_INET6, "2001:db8:1::1", &a6.sin6_addr);
		CHECK(cidrs_match(&c->spf.trusted, (struct sockaddr *)&a6));
		config_unref(c);
	}

	/* errors, each with its line */
	expect_error("[backend]\naddress = 127.0.0.1:25\nbogus = 1\n", 3, "unknown key 'bogus'");
	expect_error("[backend]\naddress = 127.0.0.1:25\n[nosuch]\n", 3, "unknown section [nosuch]");
	expect_error("[backend]\naddress = 127.0.0.1:25\naddress = 127.0.0.1:26\n", 3, "duplicate key");
	expect_error("[backend]\naddress = nohost\n", 2, "host:port");
	expect_error("[backend]\naddress = 127.0.0.1:99999\n", 2, "host:port");
	expect_error("[backend]\naddress = 127.0.0.1:25\n[limits]\nmax_recipients = 0\n", 4, "between 1 and");
	expect_error("[backend]\naddress = 127.0.0.1:25\n[limits]\nmax_recipients = -1\n", 4, "whole number");
	expect_error("[backend]\naddress = 127.0.0.1:25\n[limits]\ncommand_timeout = 5 parsecs\n", 4, "duration");
	expect_error("[backend]\naddress = 127.0.0.1:25\n[limits]\nmax_message_size = 99999999999999999999999\n", 4, "size");
	expect_error("[backend]\naddress = 127.0.0.1:25\n[log]\nlevel = loud\n", 4, "one of: error warning info debug");
	expect_error("[backend]\naddress = 127.0.0.1:25\n[helo]\nreject_invalid = maybe\n", 4, "yes or no");
	expect_error("[backend]\naddress = 127.0.0.1:25\n[spf]\ntrusted = 300.1.1.1/8\n", 4, "networks");
	expect_error("[server]\nlisten = 127.0.0.1:25\n", 0, "missing required key 'address' in section [backend]");
	expect_error("[backend]\naddress = 127.0.0.1:25\nthis is not ini\n", 3, "");
	expect_error("[backend]\naddress = 127.0.0.1:25\n[tls]\nrequire = yes\n", 0, "require = yes needs a certificate");
	{
		/* over-long line: inih would truncate it silently */
		char text[600];
		snprintf(text, sizeof text, "[backend]\naddress = 127.0.0.1:25\n[batv]\ndomains = %0400d\n", 7);
		expect_error(text, 4, "line longer than");
	}
	/* keys above the first section were dropped silently */
	expect_error("max_errors = 3\n[backend]\naddress = 127.0.0.1:25\n", 1,
	    "'max_errors' is outside any section: put it under [limits]");
	expect_error("\xff\x01 = 3\n[backend]\naddress = 127.0.0.1:25\n", 1, "outside any section");
	/* listen and [dns] servers: IP literals only, nothing resolves names */
	expect_error("[server]\nlisten = localhost:25\n[backend]\naddress = 127.0.0.1:25\n", 2, "IP address:port");
	expect_error("[server]\nlisten = [::1:25\n[backend]\naddress = 127.0.0.1:25\n", 2, "IP address:port");
	expect_error("[server]\nlisten = [127.0.0.1]:25\n[backend]\naddress = 127.0.0.1:25\n", 2, "IP address:port");
	{
		static const char *const bad_ns[] = {"ns.example.net", "ns.example.net:53", "127.0.0.1:0",
		    "127.0.0.1:65536", "127.0.0.1:", "[::1", "[::1]:", "[]", "[]:53", "::1:53:x",
		    "[127.0.0.1]", "1.2.3.4.5", "[::1]x", "[%s]", "\xff", "127.0.0.1:53x", "[::1]]:53"};
		for (size_t i = 0; i < sizeof bad_ns / sizeof bad_ns[0]; i++) {
			char text[256];
			snprintf(text, sizeof text, "[backend]\naddress = 127.0.0.1:25\n[dns]\nservers = %s\n",
			    bad_ns[i]);
			expect_error(text, 4, "not one or more IP addresses");
		}
	}
	c = load("[backend]\naddress = 127.0.0.1:25\n[dns]\nservers = 192.0.2.1 2001:db8::1\n"
	    "servers = [2001:db8::2] [2001:db8::3]:5353 192.0.2.4:54\n", err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_INT(c->dns.servers.n, 5);
		CHECK_STR(c->dns.servers.v[0], "192.0.2.1:53");
		CHECK_STR(c->dns.servers.v[1], "[2001:db8::1]:53");
		CHECK_STR(c->dns.servers.v[2], "[2001:db8::2]:53");
		CHECK_STR(c->dns.servers.v[3], "[2001:db8::3]:5353");
		CHECK_STR(c->dns.servers.v[4], "192.0.2.4:54");
		/* the config path is absolute, for reloads after daemon() */
		CHECK(c->path[0] == '/');
		config_unref(c);
	}
	/* TLS 1.0/1.1 would fail every handshake at OpenSSL 3's security level 1 */
	expect_error("[backend]\naddress = 127.0.0.1:25\n[tls]\nprotocols = TLSv1.0 TLSv1.2\n", 0,
	    "TLSv1.0 is not supported");
	expect_error("[backend]\naddress = 127.0.0.1:25\n[tls]\nprotocols = TLSv1\n", 0, "TLSv1 is not supported");
	expect_error("[backend]\naddress = 127.0.0.1:25\n[tls]\nprotocols = SSLv3\n", 0, "unknown protocol \"SSLv3\"");
	/* relative file paths are taken from the start directory */
	c = load("[backend]\naddress = 127.0.0.1:25\nca_file = ca.pem\n[tls]\ncertificate = c.pem\nkey = /k.pem\n",
	    err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		char cwd[4096], want[4200];
		CHECK(getcwd(cwd, sizeof cwd) != NULL);
		snprintf(want, sizeof want, "%s/c.pem", strcmp(cwd, "/") ? cwd : "");
		CHECK_STR(c->tls.certificate, want);
		CHECK_STR(c->tls.key, "/k.pem");
		snprintf(want, sizeof want, "%s/ca.pem", strcmp(cwd, "/") ? cwd : "");
		CHECK_STR(c->backend.ca_file, want);
		config_unref(c);
	}

	/* NUL and 8-bit bytes are values like others: refused where typed */
	expect_error("[backend]\naddress = 127.0.0.1:25\n[limits]\nmax_errors = \xff\n", 4, "whole number");

	/* the table can be listed (the example config must document it all) */
	size_t n = 0;
	while (config_key_name(n))
		n++;
	CHECK(n > 40);
	CHECK_STR(config_key_name(0), "server.listen");

	c = config_defaults();
	CHECK(c != NULL);
	config_unref(c);
	return check_finish("test_config");
}

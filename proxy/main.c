/*
 * main - command line, startup, the event loop.
 *
 *   backstop [-f] [-c FILE] [-o section.key=value]...
 *                               run (-f: stay in the foreground; -o sets a
 *                               key over the file's value, as Postfix's -o)
 *   backstop -t [-c FILE]       check the configuration, exit 0 or 1
 *   backstop -n [-c FILE]       print the effective configuration
 *   backstop -V                 version
 *   backstop [-c FILE] batv sign|verify ADDRESS
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "filters/batv.h"
#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/tls.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/backstop/backstop.ini"

static void usage(void)
{
	fprintf(stderr,
	    "usage: backstop [-f] [-c FILE] [-o section.key=value ...]   run the proxy\n"
	    "       backstop -t [-c FILE]          check the configuration\n"
	    "       backstop -n [-c FILE]          print the effective configuration\n"
	    "       backstop [-c FILE] batv sign|verify ADDRESS\n"
	    "       backstop -V                    print the version\n"
	    "default FILE: %s\n", DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	bool foreground = false, check = false, dump = false;
	static char err[65536];
	struct config *cfg;
	int opt, rc;

	/* blocking library calls (libspf2, key lookups) run on libuv's pool:
	 * a few slow DNS servers must not starve the others (invariant 3) */
	if (getenv("UV_THREADPOOL_SIZE") == NULL)
		setenv("UV_THREADPOOL_SIZE", "16", 1);
	static const char *ov[64];
	size_t nov = 0;

	while ((opt = getopt(argc, argv, "c:o:ftnVh")) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'o':
			if (nov == sizeof ov / sizeof ov[0]) {
				fprintf(stderr, "backstop: too many -o options\n");
				return 2;
			}
			ov[nov++] = optarg;
			break;
		case 'f': foreground = true; break;
		case 't': check = true; break;
		case 'n': dump = true; break;
		case 'V': printf("backstop %s\n", PACKAGE_VERSION); return 0;
		default: usage(); return 2;
		}
	}
	config_set_overrides(ov, nov);
	cfg = config_load(path, err, sizeof err);
	if (cfg == NULL) {
		fputs(err, stderr);
		if (!check)
			fprintf(stderr, "backstop: not starting: fix the configuration above\n");
		return 1;
	}
	if (filters_init(cfg, err, sizeof err) < 0) {
		fprintf(stderr, "%s: %s\n", path, err);
		config_unref(cfg);
		return 1;
	}
	if (check) {
		/* the certificate and key must load too, not only parse */
		struct tls_server *tls = tls_server_new(cfg, err, sizeof err);
		if (tls == NULL && err[0]) {
			fprintf(stderr, "%s: %s\n", path, err);
			config_unref(cfg);
			return 1;
		}
		if (tls)
			tls_server_unref(tls);
		printf("%s: configuration OK\n", path);
		config_unref(cfg);
		return 0;
	}
	if (dump) {
		config_dump(cfg, stdout);
		config_unref(cfg);
		return 0;
	}
	if (optind < argc) {
		if (strcmp(argv[optind], "batv") == 0) {
			rc = batv_cli(argc - optind - 1, argv + optind + 1, cfg);
			config_unref(cfg);
			return rc;
		}
		usage();
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);   /* libuv writes with write(2) on Linux */
	log_open(foreground ? cfg->log.destination : LOG_DEST_SYSLOG, cfg->log.level);
	if (!foreground && daemon(0, 0) < 0) {
		perror("backstop: daemon");
		return 1;
	}
	/* after daemon(): the resolver starts threads, which a fork loses */
	if (dns_init(cfg, err, sizeof err) < 0) {
		log_error("DNS: %s", err);
		return 1;
	}
	if (server_start(cfg) < 0) {
		log_error("not starting");
		return 1;
	}
	log_info("backstop %s started; backend %s", PACKAGE_VERSION, cfg->backend.address);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	log_info("stopped; %llu backend connection(s) opened in total", stat_backend_connects);
	dns_shutdown();
	uv_run(uv_default_loop(), UV_RUN_NOWAIT);   /* the resolver's handle */
	config_unref(server_config());
	rc = uv_loop_close(uv_default_loop());
	return rc == 0 ? 0 : 0;
}

/*
 * main - command line, startup, the event loop.
 *
 *   backstop [-f] [-c FILE] [-o section.key=value]...
 *                               run (-f: stay in the foreground; -o sets a
 *                               key over the file's value, as Postfix's -o)
 *   backstop -t [-c FILE]       check the configuration, exit 0 or 1: every
 *                               check start-up makes except binding
 *   backstop -n [-c FILE]       print the effective configuration
 *   backstop -V                 version
 *   backstop [-c FILE] batv sign|verify ADDRESS
 *   backstop [-c FILE] sentlog contains MESSAGE-ID SENDER
 *   backstop report [--format F] [--since T] [--until T] LOG...
 *                               the backscatter report (proxy/report.c)
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "filters/batv.h"
#include "filters/outbound_sig.h"
#include "proxy/backend_identity.h"
#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/report.h"
#include "proxy/privs.h"
#include "proxy/sdnotify.h"
#include "proxy/server.h"
#include "proxy/tls.h"
#include "proxy/worker.h"
#include "proxy/workers.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/backstop/backstop.ini"

static void usage(FILE *out)
{
	fprintf(out,
	    "usage: backstop [-f] [-c FILE] [-o section.key=value ...]   run the proxy\n"
	    "       backstop -t [-c FILE] [-o ...]   check the configuration (every start-up\n"
	    "                                        check except binding the listeners)\n"
	    "       backstop -n [-c FILE] [-o ...]   print the effective configuration\n"
	    "       backstop [-c FILE] batv sign|verify ADDRESS\n"
	    "       backstop [-c FILE] sentlog contains MESSAGE-ID SENDER\n"
	    "       backstop report [--format text|csv|rbldnsd|html] [--since T] [--until T] LOG...\n"
	    "       backstop -V                    print the version\n"
	    "       backstop -h, --help            this text\n"
	    "default FILE: %s\n", DEFAULT_CONFIG);
}

/* resolver_check - what dns_init() will need, without starting the
 * resolver's thread (which a later daemon() would lose). libunbound
 * forwards to 127.0.0.1 when resolv.conf names no nameserver, but fails
 * when it cannot read the file. */
static int resolver_check(const struct config *cfg, char *err, size_t errlen)
{
	FILE *f;

	if (cfg->dns.servers.n > 0)
		return 0;   /* IP addresses, checked by the parser */
	if ((f = fopen("/etc/resolv.conf", "r")) == NULL) {
		snprintf(err, errlen, "[dns] servers is empty and /etc/resolv.conf cannot be read: %s"
		    " (set [dns] servers)", strerror(errno));
		return -1;
	}
	fclose(f);
	return 0;
}

/* startup_checks - everything start-up checks before it binds, shared with
 * -t so that a configuration -t accepts is one the daemon starts with.
 * The filters' state it makes (filters) becomes the loop's. */
static int startup_checks(const struct config *cfg, struct filter_loop *filters, struct privs *pv,
    char *err, size_t errlen)
{
	struct tls_server *tls;

	err[0] = '\0';
	if (filters_init(filters, cfg, err, errlen) < 0)
		return -1;
	/* the certificate and key must load too, not only parse */
	tls = tls_server_new(cfg, err, errlen);
	if (tls == NULL && err[0])
		return -1;
	if (tls)
		tls_server_unref(tls);
	if (resolver_check(cfg, err, errlen) < 0)
		return -1;
	/* a transparent socket needs CAP_NET_ADMIN: said now, not as 451s */
	if (cfg->backend.identity == IDENTITY_TRANSPARENT &&
	    backend_identity_transparent_check(err, errlen) < 0)
		return -1;
	if (privs_lookup(cfg, pv, err, errlen) < 0)
		return -1;
	/* with [server] user the log file is checked as that user
	 * (privs_check_as_user), as start-up opens it */
	if (cfg->log.destination == LOG_DEST_FILE && !pv->drop &&
	    log_file_check(cfg->log.file, err, errlen) < 0)
		return -1;
	/* held messages need it (DKIM, DMARC); writable is checked as the user */
	struct stat st;
	if (stat(cfg->spool.directory, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "[server] spool_dir %s is not a directory", cfg->spool.directory);
		return -1;
	}
	/* each worker would keep a sentlog of its own and overwrite the
	 * others' file: a bounce reaching another worker than the message
	 * went out through would not be recognised */
	if (cfg->outbound.listen.n > 0 && workers_resolve(cfg) > 1) {
		snprintf(err, errlen, "[server] workers = %u with [outbound] listen: the sentlog of sent"
		    " Message-IDs is not shared between worker processes yet; set [server] workers = 1"
		    " (or run the [outbound] listener in a backstop of its own)", workers_resolve(cfg));
		return -1;
	}
	/* the sent-message log of the [outbound] listener lives there */
	if (cfg->outbound.listen.n > 0 &&
	    (stat(cfg->sentlog.state_dir, &st) < 0 || !S_ISDIR(st.st_mode))) {
		snprintf(err, errlen, "[server] state_dir %s is not a directory (the [outbound] "
		    "listener keeps its sent-message log there): create it, owned by [server] user,"
		    " mode 0700", cfg->sentlog.state_dir);
		return -1;
	}
	return 0;
}

/* worker_new - this process's loop and its owner. main.c is the one file
 * that names uv_default_loop() (issue 14; everything else is handed w,
 * w->loop or the filters' loop). NULL when out of memory. */
static struct worker *worker_new(void)
{
	struct worker *w = malloc(sizeof *w);

	if (w == NULL)
		log_error("out of memory for the event loop's state");
	else
		worker_init(w, uv_default_loop());
	return w;
}

/* run_loop - the event loop of a single process, or of one worker, once
 * the listeners are bound and root is gone. The exit status. */
static int run_loop(struct worker *w, struct config *cfg, bool foreground, const struct worker_context *worker)
{
	char err[512];
	int rc;

	/* after daemon(): the resolver starts threads, which a fork loses */
	if ((w->dns = dns_new(w->loop, cfg, err, sizeof err)) == NULL) {
		log_error("DNS: %s", err);
		return 1;
	}
	server_run(w, !foreground);
	log_info("backstop %s started; backend %s", PACKAGE_VERSION, cfg->backend.address);
	/* systemd (Type=notify): the listeners accept and root is gone; with
	 * workers the master says it once they all do */
	if (worker != NULL)
		workers_worker_ready(worker);
	else
		(void)sd_notify_state("READY=1");
	uv_run(w->loop, UV_RUN_DEFAULT);
	log_info("stopped; %llu backend connection(s) opened in total",
	    (unsigned long long)(w->metrics->backend_connects[0] + w->metrics->backend_connects[1]));
	filters_shutdown(&w->filters);   /* the sentlog's last flush */
	dns_free(w->dns);
	w->dns = NULL;
	uv_run(w->loop, UV_RUN_NOWAIT);   /* the resolver's handles */
	server_release(w);
	rc = uv_loop_close(w->loop);
	free(w);
	return rc == 0 ? 0 : 0;
}

/* a worker process of [server] workers > 1 (proxy/workers.h): its loop
 * and listeners, then its run */
struct worker_start {
	bool foreground;
	const struct filter_loop *filters;   /* made by startup_checks */
	struct worker *w;
};

static int worker_listen(struct config *cfg, const struct worker_context *ctx, void *arg)
{
	struct worker_start *start = arg;

	if ((start->w = worker_new()) == NULL)
		return -1;
	start->w->filters = *start->filters;
	start->w->filters.loop = start->w->loop;
	server_set_worker(start->w, ctx);
	return server_listen(start->w, cfg);
}

static int worker_loop(struct config *cfg, const struct worker_context *ctx, void *arg)
{
	struct worker_start *start = arg;

	return run_loop(start->w, cfg, start->foreground, ctx);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *path = DEFAULT_CONFIG;
	bool foreground = false, check = false, dump = false;
	static char err[65536];
	struct config *cfg;
	struct privs pv;
	/* the filters' state: startup_checks makes it, the loop's owner takes
	 * it over (and frees it when its loop ends); static, so that what a
	 * process without a loop keeps (the workers' master, -t, an exit on an
	 * error) is still reachable at its exit, as before issue 14 */
	static struct filter_loop filters;
	int opt, rc;


	/* the report reads logs, not the configuration */
	if (argc > 1 && strcmp(argv[1], "report") == 0)
		return report_main(argc - 1, argv + 1);
	/* blocking library calls (libspf2, key lookups) run on libuv's pool:
	 * a few slow DNS servers must not starve the others (invariant 3) */
	if (getenv("UV_THREADPOOL_SIZE") == NULL)
		setenv("UV_THREADPOOL_SIZE", "16", 1);
	static const char *ov[64];
	size_t nov = 0;

	while ((opt = getopt_long(argc, argv, "c:o:ftnVh", longopts, NULL)) != -1) {
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
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	config_set_overrides(ov, nov);
	/* config_load() keeps the path absolute: SIGHUP reloads it after
	 * daemon() changed to / */
	cfg = config_load(path, err, sizeof err);
	if (cfg == NULL) {
		fputs(err, stderr);
		if (!check)
			fprintf(stderr, "backstop: not starting: fix the configuration above\n");
		return 1;
	}
	if (dump) {
		config_dump(cfg, stdout);
		config_unref(cfg);
		return 0;
	}
	if (optind < argc) {
		if (strcmp(argv[optind], "batv") == 0) {
			if (filters_init(&filters, cfg, err, sizeof err) < 0) {
				fprintf(stderr, "%s: %s\n", cfg->path, err);
				config_unref(cfg);
				return 1;
			}
			rc = batv_cli(argc - optind - 1, argv + optind + 1, cfg);
			config_unref(cfg);
			return rc;
		}
		if (strcmp(argv[optind], "sentlog") == 0) {
			rc = outbound_sig_cli(argc - optind - 1, argv + optind + 1, cfg);
			config_unref(cfg);
			return rc;
		}
		usage(stderr);
		config_unref(cfg);
		return 2;
	}
	/* the loop worker_new() will give a single process's worker; none
	 * yet for [server] workers > 1: the master must not create one (each
	 * worker makes its own after the fork, and takes the filters over) */
	filters.loop = workers_resolve(cfg) > 1 ? NULL : uv_default_loop();
	if (startup_checks(cfg, &filters, &pv, err, sizeof err) < 0) {
		fprintf(stderr, "%s: %s\n", cfg->path, err);
		if (!check)
			fprintf(stderr, "backstop: not starting: fix the configuration above\n");
		config_unref(cfg);
		return 1;
	}
	/* Root only when asked for by name: a forgotten [server] user must not
	 * leave an internet-facing parser running with every privilege. */
	if (!pv.drop && geteuid() == 0) {
		fprintf(stderr, "%s: [server] user is not set and backstop was started as root:"
		    " set user to the account to run as after binding (adduser --system"
		    " backstop; user = backstop), or user = root to keep root deliberately\n",
		    cfg->path);
		if (!check)
			fprintf(stderr, "backstop: not starting: fix the configuration above\n");
		config_unref(cfg);
		return 1;
	}
	if (check) {
		/* files read again on SIGHUP are read as [server] user, and the
		 * log file is opened as that user */
		rc = privs_check_as_user(cfg, &pv, err, sizeof err);
		if (rc < 0) {
			fprintf(stderr, "%s: %s\n", cfg->path, err);
			config_unref(cfg);
			return 1;
		}
		if (pv.drop && (pv.uid == 0 || pv.gid == 0))
			fprintf(stderr, "warning: [server] %s: backstop would keep %s after binding\n",
			    pv.uid == 0 ? "user is root" : "group is root (gid 0)",
			    pv.uid == 0 ? "root" : "group root");
		printf("%s: configuration OK\n", cfg->path);
		config_unref(cfg);
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);   /* libuv writes with write(2) on Linux */
	/* Until detached, errors also reach the terminal, and the exit status
	 * says whether start-up worked: bind and drop first, daemon() last. */
	/* the log file is opened (created) as [server] user, not as root: a
	 * symbolic link or another file that user could plant there must not
	 * get root's writes, and a file it creates is that user's */
	bool log_as_user = cfg->log.destination == LOG_DEST_FILE;
	if (log_as_user && privs_fs_enter(&pv, err, sizeof err) < 0) {
		fprintf(stderr, "%s\nbackstop: not starting\n", err);
		config_unref(cfg);
		return 1;
	}
	rc = log_configure(cfg, !foreground, err, sizeof err);
	if (rc < 0) {
		fprintf(stderr, "%s: %s\nbackstop: not starting: fix the configuration above\n", cfg->path, err);
		config_unref(cfg);
		return 1;
	}
	if (log_as_user && privs_fs_leave(&pv, err, sizeof err) < 0) {
		fprintf(stderr, "%s\nbackstop: not starting\n", err);
		config_unref(cfg);
		return 1;
	}
	if (!foreground)
		log_echo_stderr(true);
	/* [server] workers > 1: this process becomes their master; it binds
	 * their sockets now, as root, and they listen on them */
	unsigned nworkers = workers_resolve(cfg);
	struct workers *workers = NULL;
	struct worker *w = NULL;
	if (nworkers > 1) {
		if ((workers = workers_bind(cfg, nworkers, err, sizeof err)) == NULL) {
			log_error("%s; not starting", err);
			return 1;
		}
	} else {
		if ((w = worker_new()) != NULL)
			w->filters = filters;
		if (w == NULL || server_listen(w, cfg) < 0) {
			log_error("not starting");
			return 1;
		}
	}
	if (pv.drop) {
		if (privs_drop(&pv, err, sizeof err) < 0) {
			log_error("%s; not starting", err);
			return 1;
		}
		log_info("running as user %s (uid %lu), group %s (gid %lu)%s", pv.user,
		    (unsigned long)pv.uid, pv.group, (unsigned long)pv.gid,
		    pv.keep_net_admin && pv.uid != 0 ? ", keeping CAP_NET_ADMIN for [backend] identity = transparent" : "");
		if (cfg->backend.identity == IDENTITY_TRANSPARENT &&
		    backend_identity_transparent_check(err, sizeof err) < 0) {
			log_error("after dropping to user %s: %s; not starting", pv.user, err);
			return 1;
		}
		if (pv.uid == 0 || pv.gid == 0)
			log_warn("[server] %s: backstop keeps %s after binding: every parser"
			    " that reads a client runs with it; use a dedicated user and group",
			    pv.uid == 0 ? "user is root" : "group is root (gid 0)",
			    pv.uid == 0 ? "root" : "group root");
		if (privs_unreadable(cfg, err, sizeof err) < 0)
			log_warn("cannot read %s now: a reload (SIGHUP) will fail until that is fixed", err);
		if (privs_spool_unwritable(cfg, err, sizeof err) < 0)
			log_warn("%s", err);
		if (privs_state_unwritable(cfg, err, sizeof err) < 0)
			log_warn("%s", err);
	}
	if (!foreground) {
		if (daemon(0, 0) < 0) {
			log_error("daemon: %s; not starting", strerror(errno));
			return 1;
		}
		log_echo_stderr(false);
		/* the listeners' epoll set and the signal pipe belong to the child
		 * now (a master has no loop: its workers make theirs) */
		if (workers == NULL && (rc = uv_loop_fork(w->loop)) != 0) {
			log_error("uv_loop_fork: %s", uv_strerror(rc));
			return 1;
		}
	}
	if (workers != NULL) {
		struct worker_start start = {.foreground = foreground, .filters = &filters};
		const struct worker_hooks hooks = {.listen = worker_listen, .run = worker_loop, .arg = &start};
		rc = workers_run(workers, cfg, &hooks);
		workers_free(workers, true);
		config_unref(cfg);
		return rc;
	}
	return run_loop(w, cfg, foreground, NULL);
}

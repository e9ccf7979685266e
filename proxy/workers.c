/*
 * workers - the master process of [server] workers > 1; see workers.h.
 *
 * The master runs no event loop: it blocks the signals it handles and
 * takes them with sigtimedwait(), so that a forked worker starts with an
 * untouched libuv (its uv_default_loop() is created in the child).
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "proxy/ipcount_shared.h"
#include "proxy/log.h"
#include "proxy/sdnotify.h"
#include "proxy/server.h"
#include "proxy/workers.h"

/* a crash loop is given up after this many restarts within a minute */
#define WORKERS_RESTARTS_MAX 10
#define WORKERS_RESTART_GAP_MS 1000
/* distinct client addresses and networks the shared table counts at once:
 * at least this many, and room for every connection the workers may hold
 * (each holds two keys, address and network), up to the largest below. A
 * full table stops counting new addresses, which would switch
 * max_connections_per_ip off for them (review14): sized from the config, it
 * cannot fill until a reload raises max_connections past it. */
#ifndef WORKERS_IPCOUNT_CAPACITY
#define WORKERS_IPCOUNT_CAPACITY 65536
#endif
#ifndef WORKERS_IPCOUNT_CAPACITY_MAX
#define WORKERS_IPCOUNT_CAPACITY_MAX (1u << 22)
#endif

static size_t ipcount_capacity(const struct config *cfg, unsigned count)
{
	uint64_t need = 2ull * count * cfg->limits.max_connections;

	if (need < WORKERS_IPCOUNT_CAPACITY)
		need = WORKERS_IPCOUNT_CAPACITY;
	if (need > WORKERS_IPCOUNT_CAPACITY_MAX) {
		log_warn("[server] workers = %u with [limits] max_connections = %u: the shared per-IP"
		    " table holds %u addresses, fewer than those connections may use; addresses past"
		    " it are not counted for max_connections_per_ip", count,
		    (unsigned)cfg->limits.max_connections, WORKERS_IPCOUNT_CAPACITY_MAX);
		need = WORKERS_IPCOUNT_CAPACITY_MAX;
	}
	return (size_t)need;
}

struct worker_proc {
	pid_t pid;                   /* 0: not running */
	int *fds;                    /* [nlisteners], -1 once given up */
	uint64_t started_ms;
	uint64_t restarts_ms[WORKERS_RESTARTS_MAX];   /* ring of restart times */
	unsigned nrestarts;
	bool ever_ready;
	bool restart_pending;
	bool gave_up;
};

struct workers {
	unsigned count;
	size_t nlisteners;
	const char **addrs;          /* [nlisteners]: the configuration's strings */
	struct worker_proc *procs;   /* [count] */
	struct ipcount_shared *ipcounts;
	struct worker_slot *slots;   /* [count], MAP_SHARED */
	size_t slots_len;
	unsigned hups;               /* SIGHUPs so far: a restarted worker reloads */
	bool stopping;
	bool start_failed;
	bool notified_ready;
	bool all_ready;              /* every worker (not given up) listens */
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

unsigned workers_resolve(const struct config *cfg)
{
	long cpus;

	if (cfg->server.workers > 0)
		return (unsigned)cfg->server.workers;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return cpus > 0 ? (unsigned)cpus : 1;
}

/* reuseport_socket - a TCP socket bound to addr with SO_REUSEPORT, so that
 * every worker's socket for the address can be bound at once */
static int reuseport_socket(const char *addr, char *err, size_t errlen)
{
	char host[128];
	unsigned port;
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} sa;
	int fd, one = 1;
	socklen_t len;

	if (hostport_split(addr, host, sizeof host, &port) < 0) {
		snprintf(err, errlen, "bad listen address %s", addr);
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	if (uv_ip4_addr(host, (int)port, &sa.in4) == 0)
		len = sizeof sa.in4;
	else if (uv_ip6_addr(host, (int)port, &sa.in6) == 0)
		len = sizeof sa.in6;
	else {
		snprintf(err, errlen, "listen address %s: not an IP address", addr);
		return -1;
	}
	fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s: socket: %s", addr, strerror(errno));
		return -1;
	}
	/* as libuv's bind does: no TIME_WAIT delay at a restart; IPv6 only
	 * on an IPv6 address, like UV_TCP_IPV6ONLY */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
	    (sa.sa.sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)) {
		snprintf(err, errlen, "cannot listen on %s: setsockopt: %s", addr, strerror(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, &sa.sa, len) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void close_fds(struct worker_proc *p, size_t n)
{
	for (size_t j = 0; j < n; j++)
		if (p->fds[j] >= 0) {
			close(p->fds[j]);
			p->fds[j] = -1;
		}
}

struct workers *workers_bind(const struct config *cfg, unsigned count, char *err, size_t errlen)
{
	struct workers *w = calloc(1, sizeof *w);
	size_t n = cfg->server.listen.n + cfg->outbound.listen.n;

	if (w == NULL)
		goto nomem;
	w->count = count;
	w->nlisteners = n;
	w->addrs = calloc(n, sizeof *w->addrs);
	w->procs = calloc(count, sizeof *w->procs);
	if (w->addrs == NULL || w->procs == NULL)
		goto nomem;
	for (size_t i = 0; i < cfg->server.listen.n; i++)
		w->addrs[i] = cfg->server.listen.v[i];
	for (size_t i = 0; i < cfg->outbound.listen.n; i++)
		w->addrs[cfg->server.listen.n + i] = cfg->outbound.listen.v[i];
	w->ipcounts = ipcount_shared_new(ipcount_capacity(cfg, count), count);
	w->slots_len = count * sizeof *w->slots;
	w->slots = mmap(NULL, w->slots_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (w->ipcounts == NULL || w->slots == MAP_FAILED) {
		snprintf(err, errlen, "[server] workers = %u: cannot map the shared memory: %s", count,
		    strerror(errno));
		workers_free(w, true);
		return NULL;
	}
	for (unsigned i = 0; i < count; i++) {
		if ((w->procs[i].fds = malloc(n * sizeof(int))) == NULL)
			goto nomem;
		for (size_t j = 0; j < n; j++)
			w->procs[i].fds[j] = -1;
		for (size_t j = 0; j < n; j++)
			if ((w->procs[i].fds[j] = reuseport_socket(w->addrs[j], err, errlen)) < 0) {
				workers_free(w, true);
				return NULL;
			}
	}
	return w;
nomem:
	snprintf(err, errlen, "out of memory for [server] workers = %u", count);
	workers_free(w, true);
	return NULL;
}

void workers_free(struct workers *w, bool master)
{
	if (w == NULL)
		return;
	for (unsigned i = 0; w->procs && i < w->count; i++) {
		if (w->procs[i].fds == NULL)
			continue;
		if (master)
			close_fds(&w->procs[i], w->nlisteners);
		free(w->procs[i].fds);
	}
	if (w->slots != NULL && w->slots != MAP_FAILED)
		munmap(w->slots, w->slots_len);
	/* the master's table; a worker only unmaps its view of it */
	if (w->ipcounts != NULL) {
		if (master)
			ipcount_shared_free(w->ipcounts);
		else
			ipcount_shared_unmap(w->ipcounts);
	}
	free(w->procs);
	free(w->addrs);
	free(w);
}

void workers_worker_ready(const struct worker_context *ctx)
{
	ctx->slots[ctx->index].ready = true;
	kill(getppid(), SIGUSR1);
}

/* child_main - in the new worker process: keep its own sockets only, then
 * today's server on them */
static void child_main(struct workers *w, unsigned i, pid_t master, struct config *cfg,
    const struct worker_hooks *hooks)
{
	struct worker_context ctx = {
		.index = i, .count = w->count, .addrs = w->addrs, .fds = w->procs[i].fds,
		.nfds = w->nlisteners, .ipcounts = w->ipcounts, .slots = w->slots,
		.restarted = w->hups > 0,
	};
	sigset_t set;

	/* the master's death (even SIGKILL) ends the workers like a SIGTERM */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != master)
		exit(1);
	for (unsigned j = 0; j < w->count; j++)
		if (j != i)
			close_fds(&w->procs[j], w->nlisteners);
	/* systemd hears from the master only (NotifyAccess=main) */
	unsetenv("NOTIFY_SOCKET");
	if (hooks->listen(cfg, &ctx, hooks->arg) != 0) {
		log_error("worker %u: not starting", i);
		exit(1);
	}
	/* blocked in the master: from here on libuv's handlers take them */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	/* SIGUSR1 is the master's "worker ready"; a worker has no use for it,
	 * and left blocked with the default action a stray one would stay
	 * pending, unblocked it would kill the worker: ignore it */
	signal(SIGUSR1, SIG_IGN);
	int rc = hooks->run(cfg, &ctx, hooks->arg);
	workers_free(w, false);
	exit(rc);
}

static int start_worker(struct workers *w, unsigned i, struct config *cfg, const struct worker_hooks *hooks)
{
	struct worker_proc *p = &w->procs[i];
	pid_t master = getpid(), pid;

	w->slots[i].ready = false;
	pid = fork();
	if (pid < 0) {
		log_error("worker %u: fork: %s", i, strerror(errno));
		return -1;
	}
	if (pid == 0)
		child_main(w, i, master, cfg, hooks);
	p->pid = pid;
	p->started_ms = now_ms();
	p->restart_pending = false;
	w->slots[i].pid = (uint32_t)pid;
	log_info("worker %u started (pid %ld)", i, (long)pid);
	return 0;
}

static unsigned running(const struct workers *w)
{
	unsigned n = 0;
	for (unsigned i = 0; i < w->count; i++)
		n += w->procs[i].pid != 0;
	return n;
}

static void forward(struct workers *w, int signum)
{
	for (unsigned i = 0; i < w->count; i++)
		if (w->procs[i].pid != 0)
			kill(w->procs[i].pid, signum);
}

/* schedule_restart - a worker died: restart it, or give up on it after
 * WORKERS_RESTARTS_MAX restarts within a minute */
static void schedule_restart(struct workers *w, unsigned i)
{
	struct worker_proc *p = &w->procs[i];
	uint64_t now = now_ms(), oldest = p->restarts_ms[p->nrestarts % WORKERS_RESTARTS_MAX];

	if (p->nrestarts >= WORKERS_RESTARTS_MAX && now - oldest < 60000) {
		log_error("worker %u: %d restarts within a minute; giving up on it: its listening sockets are"
		    " closed and the other workers take its share (see its errors above; restart backstop"
		    " once fixed)", i, WORKERS_RESTARTS_MAX);
		p->gave_up = true;
		close_fds(p, w->nlisteners);
		return;
	}
	p->restarts_ms[p->nrestarts % WORKERS_RESTARTS_MAX] = now;
	p->nrestarts++;
	p->restart_pending = true;
}

static void reap(struct workers *w)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		unsigned i;
		for (i = 0; i < w->count && w->procs[i].pid != pid; i++)
			;
		if (i == w->count)
			continue;
		struct worker_proc *p = &w->procs[i];
		p->pid = 0;
		/* it listened, even if its SIGUSR1 was not taken yet */
		if (w->slots[i].ready)
			p->ever_ready = true;
		/* the dead worker's connections are gone: so are their counts */
		unsigned long released = ipcount_shared_forget_worker(w->ipcounts, i);
		memset(&w->slots[i].gauges, 0, sizeof w->slots[i].gauges);
		w->slots[i].gauges.healthy = true;
		w->slots[i].ready = false;
		w->slots[i].pid = 0;
		if (w->stopping) {
			if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
				log_info("worker %u (pid %ld) stopped", i, (long)pid);
			else
				log_warn("worker %u (pid %ld) ended with %s %d while stopping", i, (long)pid,
				    WIFEXITED(status) ? "status" : "signal",
				    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			continue;
		}
		if (!p->ever_ready && p->nrestarts == 0) {
			/* start-up failed (it logged why): as a single process would */
			log_error("worker %u (pid %ld) could not start; stopping backstop", i, (long)pid);
			w->start_failed = true;
			w->stopping = true;
			forward(w, SIGTERM);
			continue;
		}
		if (WIFSIGNALED(status))
			log_error("worker %u (pid %ld) killed by signal %d (%s); %lu per-IP/per-network count(s)"
			    " released; restarting", i, (long)pid, WTERMSIG(status), strsignal(WTERMSIG(status)), released);
		else
			log_error("worker %u (pid %ld) exited with status %d; %lu per-IP/per-network count(s)"
			    " released; restarting", i, (long)pid, WEXITSTATUS(status), released);
		schedule_restart(w, i);
	}
}

static void check_ready(struct workers *w)
{
	unsigned listening = 0;

	for (unsigned i = 0; i < w->count; i++) {
		if (w->procs[i].pid != 0 && w->slots[i].ready) {
			w->procs[i].ever_ready = true;
			listening++;
		} else if (!w->procs[i].gave_up) {
			w->all_ready = false;
			return;
		}
	}
	if (w->all_ready)
		return;
	w->all_ready = true;
	/* at start-up, and again once a restarted worker listens */
	log_info("%u workers listening", listening);
	if (w->notified_ready)
		return;
	w->notified_ready = true;
	/* systemd (Type=notify): every worker accepts and root is gone */
	(void)sd_notify_state("READY=1");
}

int workers_run(struct workers *w, struct config *cfg, const struct worker_hooks *hooks)
{
	sigset_t set;
	siginfo_t info;
	char err[512];

	/* blocked before the fork: a signal that comes before a worker's
	 * handlers are installed waits for them */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (unsigned i = 0; i < w->count; i++)
		if (start_worker(w, i, cfg, hooks) < 0) {
			w->stopping = w->start_failed = true;
			forward(w, SIGTERM);
			break;
		}
	log_info("master (pid %ld): %u workers", (long)getpid(), w->count);
	for (;;) {
		uint64_t now = now_ms();
		struct timespec wait = {.tv_sec = 1, .tv_nsec = 0};
		bool given_up_all = true;

		for (unsigned i = 0; i < w->count; i++) {
			struct worker_proc *p = &w->procs[i];
			given_up_all = given_up_all && p->gave_up;
			if (!p->restart_pending || w->stopping)
				continue;
			if (now - p->started_ms < WORKERS_RESTART_GAP_MS) {
				uint64_t left = WORKERS_RESTART_GAP_MS - (now - p->started_ms);
				if (left < 1000) {
					wait.tv_sec = 0;
					wait.tv_nsec = (long)left * 1000000;
				}
				continue;
			}
			if (start_worker(w, i, cfg, hooks) < 0)
				schedule_restart(w, i);
		}
		if (given_up_all) {
			log_error("every worker was given up; backstop stops");
			return 1;
		}
		if (w->stopping && running(w) == 0)
			break;
		int sig = sigtimedwait(&set, &info, &wait);
		switch (sig) {
		case SIGCHLD:
			reap(w);
			break;
		case SIGUSR1:
			check_ready(w);
			break;
		case SIGHUP:
			/* logrotate renamed the file: the master's lines too */
			if (log_reopen(err, sizeof err) < 0)
				log_error("reload: %s; still writing to the old file", err);
			(void)sd_notify_reloading();
			w->hups++;
			log_info("signal %d: every worker reloads", sig);
			forward(w, SIGHUP);
			(void)sd_notify_state("READY=1");
			break;
		case SIGTERM:
		case SIGINT:
			if (!w->stopping)
				(void)sd_notify_state("STOPPING=1");
			log_info("signal %d: stopping %u worker(s)", sig, running(w));
			w->stopping = true;
			/* a second one closes every session at once, as in a worker */
			forward(w, sig);
			break;
		default:
			break;   /* the timeout, or EINTR */
		}
		check_ready(w);
	}
	log_info("every worker stopped");
	return w->start_failed ? 1 : 0;
}

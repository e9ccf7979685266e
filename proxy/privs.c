/*
 * privs - dropping root after the listeners are bound (see privs.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxy/privs.h"

int privs_lookup(const struct config *cfg, struct privs *pv, char *err, size_t errlen)
{
	const struct passwd *pw;
	const struct group *gr;

	memset(pv, 0, sizeof *pv);
	if (cfg->server.user[0] == '\0') {
		if (cfg->server.group[0] != '\0') {
			snprintf(err, errlen, "[server] group = %s needs [server] user", cfg->server.group);
			return -1;
		}
		return 0;
	}
	errno = 0;
	if ((pw = getpwnam(cfg->server.user)) == NULL) {
		snprintf(err, errlen, "[server] user: no such user '%s'%s%s", cfg->server.user,
		    errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	pv->drop = true;
	pv->uid = pw->pw_uid;
	pv->gid = pw->pw_gid;
	snprintf(pv->user, sizeof pv->user, "%s", cfg->server.user);
	if (cfg->server.group[0] != '\0') {
		errno = 0;
		if ((gr = getgrnam(cfg->server.group)) == NULL) {
			snprintf(err, errlen, "[server] group: no such group '%s'%s%s", cfg->server.group,
			    errno ? ": " : "", errno ? strerror(errno) : "");
			return -1;
		}
		pv->gid = gr->gr_gid;
		snprintf(pv->group, sizeof pv->group, "%s", cfg->server.group);
	} else if ((gr = getgrgid(pv->gid)) != NULL) {
		snprintf(pv->group, sizeof pv->group, "%s", gr->gr_name);
	} else {
		snprintf(pv->group, sizeof pv->group, "%lu", (unsigned long)pv->gid);
	}
	return 0;
}

/* status_caps_zero - CapEff and CapPrm in /proc/self/status are all 0.
 * 1 yes, 0 no (what in err), -1 cannot tell. */
static int status_caps_zero(char *err, size_t errlen)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	int seen = 0, zero = 1;

	if (f == NULL) {
		snprintf(err, errlen, "cannot read /proc/self/status to verify: %s", strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, "CapEff:", 7) != 0 && strncmp(line, "CapPrm:", 7) != 0)
			continue;
		seen++;
		if (strtoull(line + 7, NULL, 16) != 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(err, errlen, "capabilities left after the drop: %s", line);
			zero = 0;
		}
	}
	fclose(f);
	if (seen != 2) {
		snprintf(err, errlen, "/proc/self/status has no CapEff/CapPrm lines");
		return -1;
	}
	return zero;
}

int privs_drop(const struct privs *pv, char *err, size_t errlen)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg, groups[4];
	int n;

	if (!pv->drop)
		return 0;
	if (geteuid() != 0 && (geteuid() != pv->uid || getegid() != pv->gid)) {
		snprintf(err, errlen, "cannot become user %s (uid %lu, gid %lu): not started as root",
		    pv->user, (unsigned long)pv->uid, (unsigned long)pv->gid);
		return -1;
	}
	if (geteuid() == 0) {
		/* groups first: after setresuid() they cannot be changed */
		if (setgroups(1, &pv->gid) < 0 || setresgid(pv->gid, pv->gid, pv->gid) < 0 ||
		    setresuid(pv->uid, pv->uid, pv->uid) < 0) {
			snprintf(err, errlen, "cannot become user %s: %s", pv->user, strerror(errno));
			return -1;
		}
	}
	/* never gain anything back through an exec (there is none; belt and braces) */
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

	/* verify, rather than trust the return values */
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
	    ru != pv->uid || eu != pv->uid || su != pv->uid ||
	    rg != pv->gid || eg != pv->gid || sg != pv->gid) {
		snprintf(err, errlen, "privilege drop to %s did not take: uids %lu/%lu/%lu gids %lu/%lu/%lu",
		    pv->user, (unsigned long)ru, (unsigned long)eu, (unsigned long)su,
		    (unsigned long)rg, (unsigned long)eg, (unsigned long)sg);
		return -1;
	}
	n = getgroups(4, groups);
	if (n < 0 || n > 1 || (n == 1 && groups[0] != pv->gid)) {
		snprintf(err, errlen, "privilege drop to %s: supplementary groups remain", pv->user);
		return -1;
	}
	if (pv->uid != 0) {
		if (setuid(0) == 0) {
			snprintf(err, errlen, "privilege drop to %s: setuid(0) still works", pv->user);
			return -1;
		}
		if (status_caps_zero(err, errlen) != 1)
			return -1;
	}
	return 0;
}

/* for_each_file - call fn for every file cfg names; stops at fn's first
 * nonzero return and returns it. */
static int for_each_file(const struct config *cfg, int (*fn)(void *, const char *), void *arg)
{
	const char *files[] = {cfg->path, cfg->tls.certificate, cfg->tls.key,
	    cfg->backend.ca_file, cfg->batv.keys_file, cfg->dmarc.psl_file};
	int r;

	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		if (files[i] != NULL && files[i][0] != '\0' && (r = fn(arg, files[i])) != 0)
			return r;
	/* [tls] sni entries: name:certfile:keyfile */
	for (size_t i = 0; i < cfg->tls.sni.n; i++) {
		const char *e = cfg->tls.sni.v[i], *c1 = strchr(e, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		char path[4096];

		if (c2 == NULL)
			continue;   /* tls.c reports the syntax */
		snprintf(path, sizeof path, "%.*s", (int)(c2 - c1 - 1), c1 + 1);
		if ((r = fn(arg, path)) != 0)
			return r;
		if ((r = fn(arg, c2 + 1)) != 0)
			return r;
	}
	return 0;
}

struct unreadable {
	char *err;
	size_t errlen;
	int count;
	const char *user;   /* -t: print a warning per file instead of stopping */
};

static int try_open(void *arg, const char *path)
{
	struct unreadable *u = arg;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno == ENOENT)
		return 0;   /* missing files are the loaders' errors, not a permission problem */
	u->count++;
	if (u->user != NULL) {
		fprintf(stderr, "warning: %s is not readable by user %s (%s):"
		    " a reload (SIGHUP) after start-up would fail\n", path, u->user, strerror(errno));
		return 0;
	}
	snprintf(u->err, u->errlen, "%s: %s (backstop runs as uid %lu)", path, strerror(errno),
	    (unsigned long)geteuid());
	return 1;
}

int privs_unreadable(const struct config *cfg, char *err, size_t errlen)
{
	struct unreadable u = {err, errlen, 0, NULL};

	return for_each_file(cfg, try_open, &u) ? -1 : 0;
}

int privs_check_as_user(const struct config *cfg, const struct privs *pv, char *err, size_t errlen)
{
	int pfd[2], status;
	pid_t pid;
	ssize_t n;

	if (!pv->drop)
		return 0;
	if (pipe(pfd) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		char cerr[512];
		struct unreadable u = {cerr, sizeof cerr, 0, pv->user};

		close(pfd[0]);
		if (privs_drop(pv, cerr, sizeof cerr) < 0) {
			if (write(pfd[1], cerr, strlen(cerr)) < 0)
				_exit(255);
			_exit(255);
		}
		for_each_file(cfg, try_open, &u);
		if (privs_spool_unwritable(cfg, cerr, sizeof cerr) < 0) {
			fprintf(stderr, "warning: %s\n", cerr);
			u.count++;
		}
		if (privs_state_unwritable(cfg, cerr, sizeof cerr) < 0) {
			fprintf(stderr, "warning: %s\n", cerr);
			u.count++;
		}
		/* start-up opens the log file as root; the reopen on SIGHUP
		 * (logrotate) is done as the user */
		if (cfg->log.destination == LOG_DEST_FILE && access(cfg->log.file, F_OK) == 0 &&
		    access(cfg->log.file, W_OK) < 0) {
			fprintf(stderr, "warning: [log] file %s is not writable by user %s (%s):"
			    " reopening it on SIGHUP (logrotate) would fail\n", cfg->log.file, pv->user,
			    strerror(errno));
			u.count++;
		}
		fflush(stderr);
		_exit(u.count > 200 ? 200 : u.count);
	}
	close(pfd[1]);
	n = read(pfd[0], err, errlen > 0 ? errlen - 1 : 0);
	close(pfd[0]);
	if (n > 0)
		err[n] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) == 255) {
		if (n <= 0)
			snprintf(err, errlen, "the privilege drop check did not finish");
		return -1;
	}
	return WEXITSTATUS(status);
}

int privs_spool_unwritable(const struct config *cfg, char *err, size_t errlen)
{
	const char *dir = cfg->spool.directory;
	struct stat st;

	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "[server] spool_dir %s is not a directory%s%s", dir,
		    errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	if (access(dir, W_OK | X_OK) < 0) {
		snprintf(err, errlen, "[server] spool_dir %s is not writable by uid %lu (%s): held "
		    "messages over [limits] data_buffer would get 452", dir,
		    (unsigned long)geteuid(), strerror(errno));
		return -1;
	}
	return 0;
}

int privs_state_unwritable(const struct config *cfg, char *err, size_t errlen)
{
	const char *dir = cfg->sentlog.state_dir;
	struct stat st;

	if (cfg->outbound.listen.n == 0)
		return 0;   /* only the [outbound] listener's sentlog writes there */
	errno = 0;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "[server] state_dir %s is not a directory%s%s", dir,
		    errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	if (access(dir, W_OK | X_OK) < 0) {
		snprintf(err, errlen, "[server] state_dir %s is not writable by uid %lu (%s): the "
		    "sent-message log cannot be saved, and bounces of mail sent before a restart "
		    "will not be recognised; chown it to [server] user", dir,
		    (unsigned long)geteuid(), strerror(errno));
		return -1;
	}
	return 0;
}

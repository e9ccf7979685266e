/*
 * privs - dropping root after the listeners are bound (see privs.h).
 */
#ifndef _GNU_SOURCE   /* setresuid/getresuid and friends: the fuzz build has no -D from configure */
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proxy/backend_identity.h"
#include "proxy/log.h"
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
	pv->keep_net_admin = cfg->backend.identity == IDENTITY_TRANSPARENT;
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

/* status_caps_are - CapEff and CapPrm in /proc/self/status are exactly
 * mask. 1 yes, 0 no (what in err), -1 cannot tell. */
static int status_caps_are(unsigned long long mask, char *err, size_t errlen)
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
		if (strtoull(line + 7, NULL, 16) != mask) {
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

/* keep_only_net_admin - after the uid change under KEEPCAPS: permitted
 * and effective become CAP_NET_ADMIN alone, inheritable nothing (so an
 * exec would carry none), and KEEPCAPS is off again */
static int keep_only_net_admin(char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof data);
	data[CAP_TO_INDEX(CAP_NET_ADMIN)].permitted = CAP_TO_MASK(CAP_NET_ADMIN);
	data[CAP_TO_INDEX(CAP_NET_ADMIN)].effective = CAP_TO_MASK(CAP_NET_ADMIN);
	if (syscall(SYS_capset, &hdr, data) < 0) {
		snprintf(err, errlen, "cannot keep CAP_NET_ADMIN for [backend] identity = transparent: "
		    "capset: %s", strerror(errno));
		return -1;
	}
	(void)prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	return 0;
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
		bool keep = pv->keep_net_admin && pv->uid != 0;
		/* the permitted set survives setresuid() only with KEEPCAPS */
		if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
			snprintf(err, errlen, "cannot keep CAP_NET_ADMIN for [backend] identity = transparent: "
			    "prctl(PR_SET_KEEPCAPS): %s", strerror(errno));
			return -1;
		}
		/* groups first: after setresuid() they cannot be changed */
		if (setgroups(1, &pv->gid) < 0 || setresgid(pv->gid, pv->gid, pv->gid) < 0 ||
		    setresuid(pv->uid, pv->uid, pv->uid) < 0) {
			snprintf(err, errlen, "cannot become user %s: %s", pv->user, strerror(errno));
			return -1;
		}
		if (keep && keep_only_net_admin(err, errlen) < 0)
			return -1;
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
		if (status_caps_are(pv->keep_net_admin ? 1ULL << CAP_NET_ADMIN : 0, err, errlen) != 1)
			return -1;
	}
	return 0;
}

/* fs_ids_are - the file system ids in effect are uid and gid (setfsuid
 * and setfsgid with an invalid id change nothing and return the current) */
static bool fs_ids_are(uid_t uid, gid_t gid)
{
	return (uid_t)setfsuid((uid_t)-1) == uid && (gid_t)setfsgid((gid_t)-1) == gid;
}

int privs_fs_enter(const struct privs *pv, char *err, size_t errlen)
{
	if (!pv->drop || geteuid() != 0)
		return 0;
	/* the groups first (the drop sets the same ones later): a file only a
	 * group of root's may write stays out of reach */
	if (setgroups(1, &pv->gid) < 0) {
		snprintf(err, errlen, "cannot take the groups of user %s to open files as it: %s",
		    pv->user, strerror(errno));
		return -1;
	}
	(void)setfsgid(pv->gid);
	(void)setfsuid(pv->uid);
	if (!fs_ids_are(pv->uid, pv->gid)) {
		snprintf(err, errlen, "cannot open files as user %s (uid %lu, gid %lu): setfsuid/setfsgid"
		    " did not take (a seccomp filter without setfsuid and setfsgid?)", pv->user,
		    (unsigned long)pv->uid, (unsigned long)pv->gid);
		char ignored[256];
		(void)privs_fs_leave(pv, ignored, sizeof ignored);
		return -1;
	}
	return 0;
}

int privs_fs_leave(const struct privs *pv, char *err, size_t errlen)
{
	if (!pv->drop || geteuid() != 0)
		return 0;
	(void)setfsuid(geteuid());
	(void)setfsgid(getegid());
	if (!fs_ids_are(geteuid(), getegid())) {
		snprintf(err, errlen, "the file system ids did not return to uid %lu gid %lu after opening"
		    " files as user %s", (unsigned long)geteuid(), (unsigned long)getegid(), pv->user);
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
		char cerr[1024];
		struct unreadable u = {cerr, sizeof cerr, 0, pv->user};

		close(pfd[0]);
		if (privs_drop(pv, cerr, sizeof cerr) < 0) {
			char msg[1200];
			snprintf(msg, sizeof msg, "[server] user %s: %s", pv->user, cerr);
			if (write(pfd[1], msg, strlen(msg)) < 0)
				_exit(255);
			_exit(255);
		}
		/* [backend] identity = transparent: the capability the drop
		 * keeps must work as that user, as start-up checks it */
		if (pv->keep_net_admin && backend_identity_transparent_check(cerr, sizeof cerr) < 0) {
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
		/* start-up opens (or creates) the log file as the user: the
		 * same open here gives the same verdict */
		if (cfg->log.destination == LOG_DEST_FILE &&
		    log_file_check(cfg->log.file, cerr, sizeof cerr) < 0) {
			fflush(stderr);
			if (write(pfd[1], cerr, strlen(cerr)) < 0)
				_exit(255);
			_exit(255);
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

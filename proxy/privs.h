/*
 * privs - run as [server] user / group once the listeners are bound.
 *
 * Postfix's model: port 25 is bound as root, then the process becomes an
 * unprivileged user before it reads a byte from a client, so a bug in a
 * parser or in a library (libspf2) cannot act as root. Everything read
 * later (SIGHUP: the config, certificates, keys) is read as that user.
 */
#ifndef PRIVS_H
#define PRIVS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "proxy/config.h"

struct privs {
	bool drop;          /* [server] user is set */
	uid_t uid;
	gid_t gid;
	char user[65];
	char group[65];
	/* [backend] identity = transparent: CAP_NET_ADMIN survives the drop
	 * (IP_TRANSPARENT needs it), and nothing else */
	bool keep_net_admin;
};

/* privs_lookup - resolve [server] user / group; 0, or -1 with a reason. */
int privs_lookup(const struct config *cfg, struct privs *pv, char *err, size_t errlen);

/*
 * privs_drop - become pv's user and group for good: supplementary groups
 * replaced by the group, real/effective/saved ids all set, then verified
 * (getresuid, getresgid, getgroups, setuid(0) refused, CapEff and CapPrm 0
 * in /proc/self/status). With keep_net_admin, CapEff and CapPrm are
 * exactly CAP_NET_ADMIN instead (PR_SET_KEEPCAPS across the uid change,
 * then capset). 0, or -1 with a reason: the caller must not go on.
 */
int privs_drop(const struct privs *pv, char *err, size_t errlen);

/*
 * privs_fs_enter - until privs_fs_leave(): open and create files as pv's
 * user and group (setfsuid/setfsgid, verified), so that root at start-up
 * opens only what that user could and a file it creates is the user's.
 * The file capabilities (CAP_DAC_OVERRIDE, ...) are off meanwhile, and the
 * supplementary groups become the group for good (as the drop leaves
 * them). Nothing to do without [server] user, or when not running as
 * root. 0, or -1 with the reason: the caller must not go on.
 */
int privs_fs_enter(const struct privs *pv, char *err, size_t errlen);
/* privs_fs_leave - the file system identity back to the effective ids
 * (verified); 0, or -1 with the reason. */
int privs_fs_leave(const struct privs *pv, char *err, size_t errlen);

/*
 * privs_unreadable - the first file cfg names (the config itself,
 * certificates, keys, CA file, BATV keys) that this process cannot open for
 * reading; 0 when all can be read, else -1 with "FILE: reason" in err.
 */
int privs_unreadable(const struct config *cfg, char *err, size_t errlen);
/* privs_spool_unwritable - is [server] spool_dir a directory this process
 * can create files in? 0, or -1 with the reason. */
int privs_spool_unwritable(const struct config *cfg, char *err, size_t errlen);
/* privs_state_unwritable - with an [outbound] listener, is [server]
 * state_dir a directory this process can write the sentlog in? 0, or -1
 * with the reason (and what to do). */
int privs_state_unwritable(const struct config *cfg, char *err, size_t errlen);

/*
 * privs_check_as_user - for -t: in a child process that drops to pv's user,
 * try every file privs_unreadable() tries, and print a warning for each one
 * that user could not read (a reload after start-up would fail). Returns
 * the number of such files, or -1 if the drop itself failed or [log] file
 * cannot be opened as that user (start-up would fail too; reason in err).
 */
int privs_check_as_user(const struct config *cfg, const struct privs *pv, char *err, size_t errlen);

#endif

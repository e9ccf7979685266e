/*
 * log - one log form for the whole daemon: "sid: event: details".
 * To stderr (foreground, containers), syslog (mail facility) or a file
 * ([log] file, reopened on SIGHUP); as text or as one JSON object per line
 * ([log] format; the keys are documented in README.md "Logging").
 */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <sys/types.h>

#include "proxy/config.h"
#include "proxy/log_json.h"

/* log_open - text to stderr or syslog at level (enum log_dest, enum
 * log_level): the simple sink, for tools and fuzzers. */
void log_open(int destination, int level);
/*
 * log_configure - the sink cfg's [log] section asks for. detached (daemon
 * mode, stderr is gone): stderr means syslog. A file is opened for
 * appending (created 0640) as the file system uid in effect (at start-up
 * the caller sets it to [server] user: privs_fs_enter()), never through a
 * symbolic link, and must be a regular file with one link owned by that
 * uid; if not, -1 with what to fix in err and the previous sink stays.
 */
int log_configure(const struct config *cfg, bool detached, char *err, size_t errlen);
/* log_reopen - SIGHUP: open the log file again by its name (logrotate
 * renamed it). On failure the old file stays in use; -1 with the reason. */
int log_reopen(char *err, size_t errlen);
/* log_file_check - for -t, run as the identity that will write it: would
 * log_configure() take [log] file? An existing file is opened (not
 * created) and checked as log_configure() checks it; a missing one needs
 * a directory this process may create it in. 0, or -1 with what to fix. */
int log_file_check(const char *path, char *err, size_t errlen);
/* log_file_name - the log file in use, or NULL. */
const char *log_file_name(void);
/* log_echo_stderr - also copy syslog lines to stderr (until daemon()
 * detaches, so start-up errors reach the terminal that started it) */
void log_echo_stderr(bool on);
void log_set_level(int level);
int log_get_level(void);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_get_level() >= LOG_LEVEL_DEBUG) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); } while (0)

#define LOG_REC_TEXT_MAX 2048   /* a record's text (the text line) */
#define LOG_REC_JSON_MAX 8192   /* a record's JSON members */

/* log_json_wanted - is the sink writing JSON (so a record's members are
 * worth building)? */
bool log_json_wanted(void);
/*
 * log_record - one event built with log_rec (log_json.h): text format
 * "sid: TEXT"; JSON format the envelope with event, session sid (may be
 * NULL), msg TEXT and the record's members.
 */
void log_record(int level, const char *event, const char *sid, const struct log_rec *rec);

#endif

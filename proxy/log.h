/*
 * log - one log form for the whole daemon: "sid: event: details".
 * To stderr (foreground, containers) or syslog (mail facility).
 */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "proxy/config.h"

void log_open(int destination, int level);  /* enum log_dest, enum log_level */
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

/*
 * log_escape - copy untrusted bytes for a log line: printable ASCII kept,
 * everything else as \xHH; cut at cap-1 with "..." when longer. Returns out.
 */
char *log_escape(const char *in, size_t len, char *out, size_t cap);

#endif

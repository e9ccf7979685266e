/*
 * log - the daemon's log sink. Lines go to stderr (foreground, containers,
 * tests) or syslog's mail facility. Untrusted text is escaped by the
 * caller with log_escape() so a client cannot forge log lines.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "proxy/log.h"

static int log_destination = LOG_DEST_STDERR;
static int log_level = LOG_LEVEL_INFO;
static bool log_opened;
static bool log_echo;   /* syslog lines also on stderr (daemon start-up) */

static const char *const level_names[] = {"error", "warning", "info", "debug"};
static const int syslog_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

void log_open(int destination, int level)
{
	if (log_opened && log_destination == LOG_DEST_SYSLOG && destination != LOG_DEST_SYSLOG)
		closelog();
	log_destination = destination;
	log_level = level;
	if (destination == LOG_DEST_SYSLOG)
		openlog("backstop", LOG_PID | LOG_NDELAY, LOG_MAIL);
	log_opened = true;
}

void log_echo_stderr(bool on)
{
	log_echo = on;
}

void log_set_level(int level)
{
	log_level = level;
}

int log_get_level(void)
{
	return log_level;
}

void log_msg(int level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* one event, one line: multi-line texts (backend replies, config
	 * errors) are joined */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = (p[1] == '\0') ? '\0' : ' ';
	if (log_destination == LOG_DEST_SYSLOG) {
		syslog(syslog_prio[level], "%s", line);
		if (log_echo)
			fprintf(stderr, "backstop: %s%s%s\n",
			    level <= LOG_LEVEL_WARNING ? level_names[level] : "",
			    level <= LOG_LEVEL_WARNING ? ": " : "", line);
		return;
	}
	struct timeval tv;
	struct tm tm;
	char ts[32];
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ backstop[%ld]: %s%s%s\n", ts, (long)(tv.tv_usec / 1000),
	    (long)getpid(), level <= LOG_LEVEL_WARNING ? level_names[level] : "",
	    level <= LOG_LEVEL_WARNING ? ": " : "", line);
}

char *log_escape(const char *in, size_t len, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (cap == 0)
		return out;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;
		if (o + need + 4 > cap) {
			if (cap >= 4 && o + 3 < cap) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o < cap ? o : cap - 1] = '\0';
	return out;
}

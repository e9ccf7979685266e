/*
 * log - the daemon's log sink. Lines go to stderr (foreground, containers,
 * tests), syslog's mail facility or a file, as text or JSON. Untrusted
 * text is escaped by the caller with log_escape() so a client cannot forge
 * text log lines; in JSON every string goes through json_escape().
 *
 * A line is written with one write(2) (the file is opened O_APPEND), never
 * through stdio buffers: lines from a crash are not lost in a buffer and
 * never interleave. A write that fails (disk full, a FIFO nobody reads)
 * drops the line: the event loop never waits for the log. Dropped lines
 * are counted; the first failure is reported on syslog (and stderr before
 * detaching), the count when writing works again.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "proxy/log.h"

#define LOG_TEXT_MAX LOG_REC_TEXT_MAX
#define LOG_LINE_MAX 24576     /* a JSON line: envelope, msg (escaped), members */
/* a JSON line to syslog: relays cut longer messages (rsyslog's default
 * maxMessageSize is 8 KiB, with its header), and a cut object is not JSON;
 * members that do not fit are left out whole ("truncated":true) */
#define LOG_SYSLOG_JSON_MAX (8192 - 512)

/* The process has one log: this is its state (set up at start-up and on
 * SIGHUP, written by the loop thread only). */
struct log_sink {
	int destination;        /* enum log_dest, as in use */
	int level;
	int format;             /* enum log_format */
	bool syslog_open;
	bool echo;              /* also copy lines to stderr (daemon start-up) */
	bool detached;          /* stderr is gone */
	int fd;                 /* LOG_DEST_FILE */
	char *path;
	unsigned long long dropped;   /* lines lost since the last report */
	int drop_errno;
};

static struct log_sink sink = {
	.destination = LOG_DEST_STDERR, .level = LOG_LEVEL_INFO, .fd = -1,
};

static const char *const level_names[] = {"error", "warning", "info", "debug"};
static const int syslog_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

static void syslog_start(void)
{
	if (!sink.syslog_open)
		openlog("backstop", LOG_PID | LOG_NDELAY, LOG_MAIL);
	sink.syslog_open = true;
}

static void syslog_stop(void)
{
	if (sink.syslog_open)
		closelog();
	sink.syslog_open = false;
}

void log_open(int destination, int level)
{
	sink.destination = destination == LOG_DEST_SYSLOG ? LOG_DEST_SYSLOG : LOG_DEST_STDERR;
	sink.level = level;
	sink.format = LOG_FORMAT_TEXT;
	if (sink.destination == LOG_DEST_SYSLOG)
		syslog_start();
	else
		syslog_stop();
}

/* file_verify - what fd (opened as path) must be to be written as the log:
 * a regular file with one name, owned by the uid that opened it (a file
 * system uid: setfsuid() at start-up, the user after the drop). Anything
 * else may be a file someone else wants written: refused, with what to
 * fix. 0, or -1 (fd left open). */
static int file_verify(int fd, const char *path, char *err, size_t errlen)
{
	uid_t opener = (uid_t)setfsuid((uid_t)-1);   /* -1 changes nothing: the current one */
	struct stat st;

	if (opener == (uid_t)-1)
		opener = geteuid();   /* a seccomp filter refused even the query: no switch in force */

	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "[log] file %s: fstat: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "[log] file %s is not a regular file: name a file (a missing one"
		    " is created)", path);
		return -1;
	}
	if (st.st_nlink != 1) {
		snprintf(err, errlen, "[log] file %s has %lu hard links: another name for it may be a file"
		    " that is not a log; remove it (backstop creates a new one) or name another file", path,
		    (unsigned long)st.st_nlink);
		return -1;
	}
	if (st.st_uid != opener) {
		snprintf(err, errlen, "[log] file %s belongs to uid %lu, not to uid %lu that backstop writes"
		    " it as ([server] user): chown it to that user (logrotate: \"create 0640 USER GROUP\"),"
		    " or remove it (backstop creates it)", path, (unsigned long)st.st_uid,
		    (unsigned long)opener);
		return -1;
	}
	return 0;
}

static const char *open_hint(int e)
{
	switch (e) {
	case ENOENT: return " (its directory does not exist: create it, or change [log] file)";
	case ELOOP: return " (it is a symbolic link, which backstop does not follow there: whoever can"
	    " write the directory could point it at any file; name the file itself)";
	case EACCES: return " (backstop opens and creates it as [server] user: chown it to that user"
	    " (logrotate: \"create 0640 USER GROUP\"), or let that user create files in the directory)";
	case ENXIO: return " (a FIFO or socket, not a regular file: name a file)";
	case EROFS: return " (under systemd, ProtectSystem=strict leaves only the unit's LogsDirectory="
	    " /var/log/backstop and ReadWritePaths= writable: log there, or add the directory to"
	    " ReadWritePaths=)";
	default: return "";
	}
}

/* file_open - the log file for appending, created 0640 when missing, as
 * the file system uid in effect (the [server] user: the caller arranges
 * it). Never through a symbolic link, never a terminal, never blocking. */
static int file_open(const char *path, bool create, char *err, size_t errlen)
{
	int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW;
	int fd = open(path, create ? flags | O_CREAT : flags, 0640);

	if (fd < 0) {
		snprintf(err, errlen, "[log] file %s cannot be opened for appending as uid %lu: %s%s", path,
		    (unsigned long)setfsuid((uid_t)-1), strerror(errno), open_hint(errno));
		return -1;
	}
	if (file_verify(fd, path, err, errlen) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int log_configure(const struct config *cfg, bool detached, char *err, size_t errlen)
{
	int destination = cfg->log.destination;

	if (destination == LOG_DEST_STDERR && detached)
		destination = LOG_DEST_SYSLOG;
	if (destination == LOG_DEST_FILE &&
	    (sink.fd < 0 || sink.path == NULL || strcmp(sink.path, cfg->log.file) != 0)) {
		char *path = strdup(cfg->log.file);
		int fd = path ? file_open(path, true, err, errlen) : -1;

		if (fd < 0) {
			if (path == NULL)
				snprintf(err, errlen, "out of memory");
			free(path);
			return -1;
		}
		if (sink.fd >= 0)
			close(sink.fd);
		free(sink.path);
		sink.fd = fd;
		sink.path = path;
	} else if (destination != LOG_DEST_FILE && sink.fd >= 0) {
		close(sink.fd);
		sink.fd = -1;
		free(sink.path);
		sink.path = NULL;
	}
	sink.destination = destination;
	sink.level = cfg->log.level;
	sink.format = cfg->log.format;
	sink.detached = detached;
	sink.echo = false;
	if (destination == LOG_DEST_SYSLOG)
		syslog_start();
	else
		syslog_stop();
	return 0;
}

int log_reopen(char *err, size_t errlen)
{
	int fd;

	if (sink.destination != LOG_DEST_FILE || sink.path == NULL)
		return 0;
	if ((fd = file_open(sink.path, true, err, errlen)) < 0)
		return -1;
	close(sink.fd);
	sink.fd = fd;
	return 0;
}

int log_file_check(const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *copy, *dir;
	int fd, rc = 0;

	if ((fd = file_open(path, false, err, errlen)) >= 0) {
		close(fd);
		return 0;
	}
	if (lstat(path, &st) == 0 || errno != ENOENT)
		return -1;   /* it is there, and err says what is wrong with it */
	/* missing: start-up creates it, if this identity may */
	if ((copy = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	dir = dirname(copy);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "[log] file %s cannot be created: directory %s does not exist"
		    " (create it, or change [log] file)", path, dir);
		rc = -1;
	} else if (access(dir, W_OK | X_OK) < 0) {
		snprintf(err, errlen, "[log] file %s cannot be created by uid %lu: no write access to %s (%s)%s",
		    path, (unsigned long)getuid(), dir, strerror(errno), open_hint(EACCES));
		rc = -1;
	}
	free(copy);
	return rc;
}

const char *log_file_name(void)
{
	return sink.fd >= 0 ? sink.path : NULL;
}

void log_echo_stderr(bool on)
{
	sink.echo = on;
}

void log_set_level(int level)
{
	sink.level = level;
}

int log_get_level(void)
{
	return sink.level;
}

bool log_json_wanted(void)
{
	return sink.format == LOG_FORMAT_JSON;
}

/* write_line - one write(2) of a whole line; a short write is finished
 * once (a signal), anything else is an error. */
static int write_line(int fd, const char *line, size_t len)
{
	size_t done = 0;
	int tries = 0;

	while (done < len && tries++ < 3) {
		ssize_t n = write(fd, line + done, len - done);
		if (n < 0 && errno != EINTR)
			return -1;
		if (n > 0)
			done += (size_t)n;
	}
	if (done < len) {
		errno = EAGAIN;
		return -1;
	}
	return 0;
}

static void file_write(const char *line, size_t len)
{
	if (write_line(sink.fd, line, len) == 0) {
		if (sink.dropped) {
			unsigned long long n = sink.dropped;
			int e = sink.drop_errno;
			sink.dropped = 0;
			log_warn("log: %llu line(s) were dropped: writing to %s failed (%s)", n, sink.path,
			    strerror(e));
		}
		return;
	}
	if (sink.dropped++ == 0) {
		/* once per failure episode, where someone may see it */
		sink.drop_errno = errno;
		syslog(LOG_MAIL | LOG_ERR, "log file %s: write failed: %s; log lines are dropped"
		    " (and counted) until writing works again", sink.path, strerror(errno));
		if (!sink.detached) {
			char msg[512];
			int n = snprintf(msg, sizeof msg, "backstop: log file %s: write failed: %s; log lines"
			    " are dropped (and counted) until writing works again\n", sink.path,
			    strerror(sink.drop_errno));
			if (n > 0 && write(STDERR_FILENO, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1) < 0)
				return;
		}
	}
}

static void timestamp(char *ts, size_t cap)
{
	struct timeval tv;
	struct tm tm;
	char sec[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts, cap, "%.20s.%03dZ", sec, (int)(tv.tv_usec / 1000) % 1000);
}

/* emit - one event to the sink. text is the human line ("sid: ..." when
 * sid is set), msg the same without the session prefix. */
static void emit(int level, const char *event, const char *sid, const char *text, const char *msg,
    const char *members, bool members_cut)
{
	/* per thread: the loop, libuv's pool (libspf2's diagnostics) and the
	 * resolver's dispatcher all log */
	static _Thread_local char out[LOG_LINE_MAX];
	const char *lvl = level <= LOG_LEVEL_WARNING ? level_names[level] : "";
	const char *sep = level <= LOG_LEVEL_WARNING ? ": " : "";
	char ts[48];
	size_t len = 0;
	int n;

	if (sink.echo && sink.destination != LOG_DEST_STDERR) {
		n = snprintf(out, sizeof out, "backstop: %s%s%s\n", lvl, sep, text);
		if (n > 0 && write_line(STDERR_FILENO, out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1) < 0)
			sink.echo = false;
	}
	timestamp(ts, sizeof ts);
	if (sink.format == LOG_FORMAT_JSON) {
		len = json_envelope(out, sink.destination == LOG_DEST_SYSLOG ? LOG_SYSLOG_JSON_MAX : sizeof out,
		    ts, level_names[level], (long)getpid(), event, sid, msg, members, members_cut);
		if (len == 0)
			return;
		if (sink.destination == LOG_DEST_SYSLOG) {
			out[len - 1] = '\0';   /* the object is the message, without the newline */
			syslog(syslog_prio[level], "%s", out);
			return;
		}
	} else {
		if (sink.destination == LOG_DEST_SYSLOG) {
			syslog(syslog_prio[level], "%s", text);
			return;
		}
		n = snprintf(out, sizeof out, "%s backstop[%ld]: %s%s%s\n", ts, (long)getpid(), lvl, sep, text);
		if (n <= 0)
			return;
		len = (size_t)n < sizeof out ? (size_t)n : sizeof out - 1;
		out[len - 1] = '\n';
	}
	if (sink.destination == LOG_DEST_FILE && sink.fd >= 0)
		file_write(out, len);
	else
		(void)write_line(STDERR_FILENO, out, len);   /* failed: nowhere to say so */
}

/* session_prefix - the session id a line starts with ("%s: " first in the
 * format, then 12 upper-case hex digits, session.c's form), or NULL. */
static const char *session_prefix(const char *fmt, const char *line, char *sid, size_t cap)
{
	size_t n = 0;

	if (strncmp(fmt, "%s: ", 4) != 0)
		return NULL;
	while (n < 12 && ((line[n] >= '0' && line[n] <= '9') || (line[n] >= 'A' && line[n] <= 'F')))
		n++;
	if (n != 12 || line[12] != ':' || line[13] != ' ' || cap <= n)
		return NULL;
	memcpy(sid, line, n);
	sid[n] = '\0';
	return sid;
}

/* one event, one line: multi-line texts (backend replies, config errors)
 * are joined */
static void join_lines(char *line)
{
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = (p[1] == '\0') ? '\0' : ' ';
}

void log_msg(int level, const char *fmt, ...)
{
	char line[LOG_TEXT_MAX], event[48], sidbuf[16];
	const char *sid;
	va_list ap;

	if (level > sink.level || level < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	join_lines(line);
	if (sink.format != LOG_FORMAT_JSON) {
		emit(level, NULL, NULL, line, line, NULL, false);
		return;
	}
	log_event_name(fmt, event, sizeof event);
	sid = session_prefix(fmt, line, sidbuf, sizeof sidbuf);
	emit(level, event, sid, line, sid ? line + 14 : line, NULL, false);
}

void log_record(int level, const char *event, const char *sid, const struct log_rec *rec)
{
	char line[LOG_TEXT_MAX + 32];
	size_t off = 0;

	if (level > sink.level || level < 0)
		return;
	if (sid)
		off = (size_t)snprintf(line, sizeof line, "%s: ", sid) % sizeof line;
	snprintf(line + off, sizeof line - off, "%s", rec->text);
	join_lines(line);
	emit(level, event, sid, line, line + off,
	    sink.format == LOG_FORMAT_JSON && rec->json ? rec->json : NULL, rec->json_cut);
}

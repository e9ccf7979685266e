/*
 * sdnotify - systemd's notification protocol (see sdnotify.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proxy/log.h"
#include "proxy/sdnotify.h"

/* send_state - one datagram to path; 1, or -1 with errno */
static int send_state(const char *path, const char *state)
{
	struct sockaddr_un sun;
	socklen_t len;
	size_t plen;
	ssize_t n;
	int fd, saved;

	plen = strlen(path);
	/* an absolute path, or "@name": the abstract namespace (a leading NUL,
	 * and the address length counts the name exactly, no terminator) */
	if ((path[0] != '/' && path[0] != '@') || plen < 2 || plen >= sizeof sun.sun_path) {
		errno = EINVAL;
		return -1;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, plen);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/'));

	/* a socket per message: a few messages per process lifetime, and no
	 * descriptor to carry over daemon() or keep track of */
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&sun, len);
	saved = errno;
	close(fd);
	errno = saved;
	if (n < 0)
		return -1;
	if ((size_t)n != strlen(state)) {
		errno = EMSGSIZE;
		return -1;
	}
	return 1;
}

int sd_notify_state(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");

	if (path == NULL || path[0] == '\0')
		return 0;
	if (send_state(path, state) < 0) {
		int saved = errno;
		log_warn("cannot tell systemd %.*s through NOTIFY_SOCKET=%s: %s",
		    (int)strcspn(state, "\n"), state, path, strerror(saved));
		errno = saved;
		return -1;
	}
	return 1;
}

int sd_notify_reloading(void)
{
	struct timespec ts;
	char msg[64];

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return sd_notify_state("RELOADING=1");
	snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	return sd_notify_state(msg);
}

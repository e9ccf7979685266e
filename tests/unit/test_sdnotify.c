/*
 * test_sdnotify - NOTIFY_SOCKET values as systemd sets them (a path, an
 * abstract "@name") get the message, exactly; unset or empty means "not
 * under systemd"; hostile values (relative, "@" or "/" alone, longer than
 * sun_path, a socket nobody listens on) are an error, never a crash or a
 * datagram somewhere else.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "proxy/sdnotify.h"

/* receiver - a datagram socket bound to addr (a path, or "@name"), as
 * systemd's; -1 when that cannot be made */
static int receiver(const char *addr)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t n = strlen(addr);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || n >= sizeof sun.sun_path)
		return -1;
	memcpy(sun.sun_path, addr, n);
	if (addr[0] == '@')
		sun.sun_path[0] = '\0';
	if (bind(fd, (struct sockaddr *)&sun, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	    (addr[0] == '/'))) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static const char *received(int fd)
{
	static char buf[256];
	ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

int main(void)
{
	char dir[] = "/tmp/test_sdnotify.XXXXXX", path[200], abstract[80], longpath[300];
	int fd;

	if (mkdtemp(dir) == NULL)
		return check_error("test_sdnotify", "mkdtemp failed");

	unsetenv("NOTIFY_SOCKET");
	CHECK_INT(sd_notify_state("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	CHECK_INT(sd_notify_state("READY=1"), 0);

	/* a socket file */
	snprintf(path, sizeof path, "%s/notify", dir);
	if ((fd = receiver(path)) < 0)
		return check_error("test_sdnotify", "cannot bind a unix datagram socket file");
	setenv("NOTIFY_SOCKET", path, 1);
	CHECK_INT(sd_notify_state("READY=1"), 1);
	CHECK_STR(received(fd), "READY=1");
	CHECK_INT(sd_notify_reloading(), 1);
	CHECK(strncmp(received(fd), "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
	CHECK_INT(sd_notify_state("STOPPING=1"), 1);
	CHECK_STR(received(fd), "STOPPING=1");
	close(fd);
	unlink(path);
	/* gone: an error, not a crash */
	errno = 0;
	CHECK_INT(sd_notify_state("READY=1"), -1);
	CHECK(errno == ENOENT);

	/* the abstract namespace: the name is exactly what follows '@', no
	 * terminator (a receiver bound with one would not get it) */
	snprintf(abstract, sizeof abstract, "@test_sdnotify-%ld", (long)getpid());
	if ((fd = receiver(abstract)) < 0)
		return check_error("test_sdnotify", "cannot bind an abstract unix datagram socket");
	setenv("NOTIFY_SOCKET", abstract, 1);
	CHECK_INT(sd_notify_state("READY=1"), 1);
	CHECK_STR(received(fd), "READY=1");
	close(fd);

	/* hostile values */
	const char *bad[] = {"relative/notify", "notify", "@", "/", "\x01", "-@x"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		setenv("NOTIFY_SOCKET", bad[i], 1);
		errno = 0;
		CHECK_INT(sd_notify_state("READY=1"), -1);
		CHECK(errno == EINVAL);
	}
	memset(longpath, 'a', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	for (size_t len = sizeof ((struct sockaddr_un *)0)->sun_path - 1; len < sizeof longpath; len += 50) {
		char save = longpath[len];
		longpath[len] = '\0';
		setenv("NOTIFY_SOCKET", longpath, 1);
		errno = 0;
		CHECK_INT(sd_notify_state("READY=1"), -1);
		longpath[len] = save;
	}
	longpath[0] = '@';
	setenv("NOTIFY_SOCKET", longpath, 1);
	CHECK_INT(sd_notify_state("READY=1"), -1);

	rmdir(dir);
	return check_finish("test_sdnotify");
}

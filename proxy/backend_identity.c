/*
 * backend_identity - connection-level client identity towards the backend
 * (see backend_identity.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proxy/backend_identity.h"
#include "smtp/proxy_out.h"

const char *backend_identity_name(int identity)
{
	static const char *const names[] = {"auto", "xclient", "xforward", "proxy", "transparent", "none"};

	return identity >= 0 && identity < (int)(sizeof names / sizeof names[0]) ? names[identity] : "?";
}

int backend_identity_proxy_header(const struct sockaddr *client, const struct sockaddr *local,
    unsigned char *out, size_t cap)
{
	/* never LOCAL for a client: the backend would take backstop's own
	 * (trusted) address for the client's */
	return proxy_out_v2(PROXY_OUT_PROXY, client, local, out, cap);
}

/* transparent_errno_hint - what to fix after setsockopt or bind failed */
static const char *transparent_errno_hint(int err)
{
	if (err == EPERM || err == EACCES)
		return "backstop needs CAP_NET_ADMIN for [backend] identity = transparent (start it as root: it "
		    "keeps only CAP_NET_ADMIN after dropping to [server] user; under systemd "
		    "AmbientCapabilities=CAP_NET_ADMIN; in Docker --cap-add NET_ADMIN)";
	return "see README.md, Client identity towards the backend";
}

int backend_identity_transparent_socket(const struct sockaddr *client, const struct sockaddr *backend,
    char *err, size_t errlen)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} src;
	socklen_t srclen;
	int family = backend->sa_family, one = 1, fd, rc;
	char ip[INET6_ADDRSTRLEN] = "?";

	memset(&src, 0, sizeof src);
	if (client->sa_family == AF_INET6) {
		const struct sockaddr_in6 *c6 = (const struct sockaddr_in6 *)client;
		if (IN6_IS_ADDR_V4MAPPED(&c6->sin6_addr)) {
			src.in4.sin_family = AF_INET;
			memcpy(&src.in4.sin_addr, c6->sin6_addr.s6_addr + 12, 4);
		} else {
			src.in6.sin6_family = AF_INET6;
			src.in6.sin6_addr = c6->sin6_addr;
			src.in6.sin6_scope_id = c6->sin6_scope_id;
		}
	} else if (client->sa_family == AF_INET) {
		src.in4.sin_family = AF_INET;
		src.in4.sin_addr = ((const struct sockaddr_in *)client)->sin_addr;
	} else {
		snprintf(err, errlen, "the client has no IP address");
		return -1;
	}
	if (src.sa.sa_family == AF_INET)
		inet_ntop(AF_INET, &src.in4.sin_addr, ip, sizeof ip);
	else
		inet_ntop(AF_INET6, &src.in6.sin6_addr, ip, sizeof ip);
	if (src.sa.sa_family != family) {
		snprintf(err, errlen, "client %s is IPv%c but the backend is IPv%c: a transparent connection "
		    "keeps the client's family (give the backend an address of both families)", ip,
		    src.sa.sa_family == AF_INET ? '4' : '6', family == AF_INET ? '4' : '6');
		return -1;
	}
	srclen = family == AF_INET ? sizeof src.in4 : sizeof src.in6;
	if ((fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* before bind(): the kernel's tproxy.rst; without it bind refuses a
	 * foreign address (EADDRNOTAVAIL) */
	rc = family == AF_INET ? setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) :
	    setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one);
	if (rc < 0) {
		int e = errno;
		snprintf(err, errlen, "setsockopt(%s): %s: %s", family == AF_INET ? "IP_TRANSPARENT" :
		    "IPV6_TRANSPARENT", strerror(e), transparent_errno_hint(e));
		close(fd);
		return -1;
	}
	if (bind(fd, &src.sa, srclen) < 0) {
		int e = errno;
		snprintf(err, errlen, "bind to the client's address %s: %s: %s", ip, strerror(e),
		    transparent_errno_hint(e));
		close(fd);
		return -1;
	}
	return fd;
}

int backend_identity_transparent_check(char *err, size_t errlen)
{
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(err, errlen, "[backend] identity = transparent: socket: %s", strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) < 0) {
		int e = errno;
		snprintf(err, errlen, "[backend] identity = transparent: setsockopt(IP_TRANSPARENT): %s: %s",
		    strerror(e), transparent_errno_hint(e));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

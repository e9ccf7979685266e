/*
 * backend_identity - how a backend connection carries the client's
 * identity at the connection level ([backend] identity = proxy or
 * transparent); XCLIENT and XFORWARD are commands, in backend.c.
 *
 * proxy: a PROXY v2 header (smtp/proxy_out.h) as the first bytes, before
 * the greeting. transparent: the socket is bound to the client's own
 * address (IP_TRANSPARENT / IPV6_TRANSPARENT, CAP_NET_ADMIN), so the
 * backend sees the client itself; replies reach backstop only with the
 * policy routing in README.md (Client identity towards the backend).
 */
#ifndef BACKEND_IDENTITY_H
#define BACKEND_IDENTITY_H

#include <stddef.h>
#include <sys/socket.h>

#include "proxy/config.h"

/* backend_identity_name - "auto", "xclient", ... (the config word) */
const char *backend_identity_name(int identity);

/*
 * backend_identity_proxy_header - the PROXY v2 header for a client that
 * came from client to local (where it connected to backstop), into out
 * (PROXY_OUT_V2_MAX bytes). Returns its length, or -1 (unusable
 * addresses).
 */
int backend_identity_proxy_header(const struct sockaddr *client, const struct sockaddr *local,
    unsigned char *out, size_t cap);

/*
 * backend_identity_transparent_socket - a new non-blocking TCP socket for
 * backend's family, made transparent and bound to the client's address
 * (port 0: the kernel picks one), ready for connect. IPv4-mapped client
 * addresses are used as IPv4. Returns the descriptor, or -1 with the
 * reason (and what to fix) in err.
 */
int backend_identity_transparent_socket(const struct sockaddr *client, const struct sockaddr *backend,
    char *err, size_t errlen);

/*
 * backend_identity_transparent_check - can this process make transparent
 * sockets (CAP_NET_ADMIN)? 0, or -1 with what to fix in err. Start-up and
 * -t call it under [backend] identity = transparent, before and after the
 * privilege drop.
 */
int backend_identity_transparent_check(char *err, size_t errlen);

#endif

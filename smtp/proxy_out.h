/*
 * proxy_out - the PROXY protocol version 2 header backstop writes as the
 * first bytes of a backend connection under [backend] identity = proxy
 * (haproxy's doc/proxy-protocol.txt, section 2.2). No I/O: bytes in a
 * caller's buffer. Postfix 3.5 and later read it on a port with
 * smtpd_upstream_proxy_protocol = haproxy, Exim on proxy_protocol_hosts.
 */
#ifndef PROXY_OUT_H
#define PROXY_OUT_H

#include <stddef.h>
#include <sys/socket.h>

/* the longest header proxy_out_v2 writes: 16 fixed bytes + two IPv6
 * addresses and two ports (no TLVs) */
#define PROXY_OUT_V2_MAX 52

enum proxy_out_cmd {
	/* the connection is the proxy's own (a health probe): the backend
	 * uses the real peer address; never for client traffic, which
	 * would then look like the proxy's (trusted) address */
	PROXY_OUT_LOCAL = 0,
	/* relayed for a client: src is the client, dst where it connected */
	PROXY_OUT_PROXY = 1,
};

/*
 * proxy_out_v2 - write the header into out (cap bytes). PROXY needs src
 * and dst (AF_INET or AF_INET6, TCP). IPv4-mapped IPv6 addresses
 * (::ffff:a.b.c.d, a dual-stack listener) are written as IPv4. When the
 * families still differ, dst becomes the unspecified address of src's
 * family with dst's port: the header has one family, and the client's
 * address is what the backend needs. LOCAL ignores src and dst (may be
 * NULL). Returns the length written, or -1: an address family other than
 * AF_INET/AF_INET6, a NULL address for PROXY, or cap too small.
 */
int proxy_out_v2(enum proxy_out_cmd cmd, const struct sockaddr *src, const struct sockaddr *dst,
    unsigned char *out, size_t cap);

#endif

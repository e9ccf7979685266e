/*
 * proxy_out - PROXY protocol v2 header writer (see proxy_out.h).
 */
#include <netinet/in.h>
#include <string.h>

#include "smtp/proxy_out.h"

/* proxy-protocol.txt 2.2: the 12-byte signature, then version 2 (high
 * nibble) with the command, the family with the transport, the length of
 * what follows in network byte order */
static const unsigned char v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};
#define V2_FAM_UNSPEC 0x00
#define V2_FAM_TCP4 0x11
#define V2_FAM_TCP6 0x21

/* endpoint - one side of the connection, IPv4-mapped IPv6 unmapped */
struct endpoint {
	int family;                /* AF_INET or AF_INET6 */
	unsigned char addr[16];    /* 4 or 16 bytes used, network order */
	unsigned char port[2];     /* network order */
};

static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int endpoint_of(const struct sockaddr *sa, struct endpoint *e)
{
	memset(e, 0, sizeof *e);
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		e->family = AF_INET;
		memcpy(e->addr, &in->sin_addr, 4);
		memcpy(e->port, &in->sin_port, 2);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		const unsigned char *a = in6->sin6_addr.s6_addr;
		memcpy(e->port, &in6->sin6_port, 2);
		if (memcmp(a, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0) {
			e->family = AF_INET;
			memcpy(e->addr, a + 12, 4);
		} else {
			e->family = AF_INET6;
			memcpy(e->addr, a, 16);
		}
		return 0;
	}
	return -1;
}

int proxy_out_v2(enum proxy_out_cmd cmd, const struct sockaddr *src, const struct sockaddr *dst,
    unsigned char *out, size_t cap)
{
	struct endpoint s, d;
	size_t alen, len;

	if (cmd == PROXY_OUT_LOCAL) {
		if (cap < 16)
			return -1;
		memcpy(out, v2_sig, sizeof v2_sig);
		out[12] = 0x20;
		out[13] = V2_FAM_UNSPEC;
		out[14] = out[15] = 0;
		return 16;
	}
	if (cmd != PROXY_OUT_PROXY || endpoint_of(src, &s) < 0 || endpoint_of(dst, &d) < 0)
		return -1;
	if (d.family != s.family) {
		/* one family per header: keep the client's, dst unspecified */
		d.family = s.family;
		memset(d.addr, 0, sizeof d.addr);
	}
	alen = s.family == AF_INET ? 4 : 16;
	len = 16 + 2 * alen + 4;
	if (cap < len)
		return -1;
	memcpy(out, v2_sig, sizeof v2_sig);
	out[12] = 0x21;
	out[13] = s.family == AF_INET ? V2_FAM_TCP4 : V2_FAM_TCP6;
	out[14] = (unsigned char)((len - 16) >> 8);
	out[15] = (unsigned char)((len - 16) & 0xff);
	memcpy(out + 16, s.addr, alen);
	memcpy(out + 16 + alen, d.addr, alen);
	memcpy(out + 16 + 2 * alen, s.port, 2);
	memcpy(out + 16 + 2 * alen + 2, d.port, 2);
	return (int)len;
}

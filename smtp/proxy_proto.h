/*
 * proxy_proto - the PROXY protocol header (HAProxy's doc/proxy-protocol.txt,
 * versions 1 and 2) that a load balancer sends before the client's first
 * byte: the real client's address.
 *
 * Pure: no I/O, no allocation, no globals. The caller feeds everything it
 * has read so far (the header is small, so parsing it again from the start
 * after each read is cheaper than keeping state); the answer is "need
 * more", "done" (the header is buf[0..consumed); the bytes after it are
 * the client's own and belong to the SMTP side) or an error with a reason
 * for the log. A listener either requires the header or does not expect
 * one: there is no auto-detection (the specification forbids it).
 *
 * Strict by design: v1 is one line of at most 107 bytes ending in CRLF
 * with exactly one space between fields, IPv4 as four decimal numbers
 * without leading zeros, ports without leading zeros; v2 is bounded by
 * PROXY_PROTO_V2_MAX_LEN and its TLVs are walked (a TLV that runs past
 * the header is an error) but otherwise skipped.
 */
#ifndef SMTP_PROXY_PROTO_H
#define SMTP_PROXY_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROXY_PROTO_V1_MAX 107       /* "PROXY TCP6 <39> <39> 65535 65535\r\n" */
#define PROXY_PROTO_V2_FIXED 16      /* signature, ver/cmd, family, length */
/* what a v2 header may carry after its fixed part: addresses (216 bytes
 * for AF_UNIX) and TLVs. The 16-bit length field allows 65535; HAProxy's
 * own TLVs (ALPN, authority, unique id up to 128 bytes, SSL with its sub
 * fields) stay far below this. */
#define PROXY_PROTO_V2_MAX_LEN 1024
#define PROXY_PROTO_MAX (PROXY_PROTO_V2_FIXED + PROXY_PROTO_V2_MAX_LEN)

enum proxy_proto_status {
	PROXY_PROTO_NEED_MORE = 0,  /* a valid beginning: read more */
	PROXY_PROTO_DONE,           /* a complete header: see the result */
	PROXY_PROTO_ERROR,          /* not a valid header: r->reason says why */
};

enum proxy_proto_command {
	PROXY_PROTO_PROXY = 1,  /* relayed connection: src/dst are the client's */
	PROXY_PROTO_LOCAL,      /* v2 LOCAL: the proxy's own connection (health
	                           checks): use the real peer address */
	PROXY_PROTO_UNKNOWN,    /* v1 UNKNOWN, or v2 PROXY over a family without
	                           an IP address (UNSPEC, UNIX): use the real
	                           peer address */
};

struct proxy_proto_result {
	int version;                      /* 1 or 2 */
	enum proxy_proto_command command;
	size_t consumed;                  /* the header's length in bytes */
	int family;                       /* AF_INET or AF_INET6 (PROXY only) */
	unsigned char src[16], dst[16];   /* network byte order; 4 bytes for AF_INET */
	uint16_t src_port, dst_port;      /* host byte order */
	char reason[120];                 /* on PROXY_PROTO_ERROR */
};

/* proxy_proto_parse - look at buf[0..len), all bytes read so far. */
enum proxy_proto_status proxy_proto_parse(const unsigned char *buf, size_t len,
    struct proxy_proto_result *r);

#endif

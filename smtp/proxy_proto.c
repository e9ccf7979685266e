/*
 * proxy_proto - PROXY protocol v1/v2 header parser (see proxy_proto.h).
 *
 * Every check runs on the bytes seen so far, so that garbage is refused at
 * once rather than after the timeout: a wrong signature byte, a control
 * character in a v1 line, a bad v2 version, command, family or length.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "smtp/proxy_proto.h"

static const unsigned char v2_signature[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};
static const char v1_prefix[] = "PROXY ";

enum { V2_CMD_LOCAL = 0, V2_CMD_PROXY = 1 };
enum { V2_FAM_UNSPEC = 0, V2_FAM_INET = 1, V2_FAM_INET6 = 2, V2_FAM_UNIX = 3 };
enum { V2_PROTO_UNSPEC = 0, V2_PROTO_STREAM = 1, V2_PROTO_DGRAM = 2 };

static enum proxy_proto_status fail(struct proxy_proto_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum proxy_proto_status fail(struct proxy_proto_result *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof r->reason, fmt, ap);
	va_end(ap);
	return PROXY_PROTO_ERROR;
}

/* ---- v1 ---- */

/* Decimal without leading zeros, at most max; len > 0. */
static bool v1_number(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* Exactly four decimal numbers 0..255 without leading zeros, one dot
 * between each (the specification's words: no octal confusion). */
static bool v1_ipv4(const char *s, size_t len, unsigned char out[4])
{
	size_t start = 0;
	int part = 0;

	for (size_t i = 0; i <= len; i++) {
		unsigned v;
		if (i < len && s[i] != '.')
			continue;
		if (part == 4 || i - start > 3 || !v1_number(s + start, i - start, 255, &v))
			return false;
		out[part++] = (unsigned char)v;
		start = i + 1;
	}
	return part == 4;
}

static bool v1_ipv6(const char *s, size_t len, unsigned char out[16])
{
	char text[INET6_ADDRSTRLEN];

	if (len < 2 || len >= sizeof text)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		    (s[i] >= 'A' && s[i] <= 'F') || s[i] == ':' || s[i] == '.'))
			return false;
	memcpy(text, s, len);
	text[len] = '\0';
	return inet_pton(AF_INET6, text, out) == 1;
}

/* v1_fields - split "a b c d" on single spaces into at most max fields:
 * the number of fields; -1 for an empty field (two spaces, a leading or
 * trailing space), -2 for more than max fields. */
static int v1_fields(const char *s, size_t len, const char *f[], size_t flen[], int max)
{
	int n = 0;
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != ' ')
			continue;
		if (i == start)
			return -1;
		if (n == max)
			return -2;
		f[n] = s + start;
		flen[n++] = i - start;
		start = i + 1;
	}
	return n;
}

static enum proxy_proto_status v1_line(const char *line, size_t len, struct proxy_proto_result *r)
{
	const char *f[6];
	size_t flen[6];
	unsigned sport, dport;
	int n;
	bool v6;

	/* "PROXY UNKNOWN" may be followed by anything: the receiver ignores
	 * it and uses the real connection's addresses (spec 2.1) */
	if (len >= 13 && memcmp(line, "PROXY UNKNOWN", 13) == 0 && (len == 13 || line[13] == ' ')) {
		r->command = PROXY_PROTO_UNKNOWN;
		return PROXY_PROTO_DONE;
	}
	n = v1_fields(line, len, f, flen, 6);
	if (n == -1)
		return fail(r, "v1: not exactly one space between fields");
	if (n == -2)
		return fail(r, "v1: more than 6 fields, expected PROXY TCPx SRC DST SPORT DPORT");
	if (n < 2 || flen[1] != 4 || (memcmp(f[1], "TCP4", 4) != 0 && memcmp(f[1], "TCP6", 4) != 0))
		return fail(r, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
	if (n != 6)
		return fail(r, "v1: %d fields, expected PROXY TCPx SRC DST SPORT DPORT", n);
	v6 = f[1][3] == '6';
	r->family = v6 ? AF_INET6 : AF_INET;
	if (v6 ? !v1_ipv6(f[2], flen[2], r->src) : !v1_ipv4(f[2], flen[2], r->src))
		return fail(r, "v1: bad %s source address", v6 ? "IPv6" : "IPv4");
	if (v6 ? !v1_ipv6(f[3], flen[3], r->dst) : !v1_ipv4(f[3], flen[3], r->dst))
		return fail(r, "v1: bad %s destination address", v6 ? "IPv6" : "IPv4");
	if (!v1_number(f[4], flen[4], 65535, &sport) || !v1_number(f[5], flen[5], 65535, &dport))
		return fail(r, "v1: bad port (0-65535, no leading zeros)");
	r->src_port = (uint16_t)sport;
	r->dst_port = (uint16_t)dport;
	r->command = PROXY_PROTO_PROXY;
	return PROXY_PROTO_DONE;
}

static enum proxy_proto_status v1_parse(const unsigned char *buf, size_t len, struct proxy_proto_result *r)
{
	size_t scan = len < PROXY_PROTO_V1_MAX ? len : PROXY_PROTO_V1_MAX;

	r->version = 1;
	for (size_t i = 0; i < scan; i++) {
		unsigned char c = buf[i];
		if (c == '\r') {
			if (i + 1 >= len)
				break;   /* its LF may still come (or not fit: below) */
			if (buf[i + 1] != '\n')
				return fail(r, "v1: CR not followed by LF");
			if (i + 2 > PROXY_PROTO_V1_MAX)
				break;
			r->consumed = i + 2;
			return v1_line((const char *)buf, i, r);
		}
		if (c == '\n')
			return fail(r, "v1: bare LF (the line must end with CRLF)");
		if (c < 0x20 || c > 0x7e)
			return fail(r, "v1: byte 0x%02x at offset %zu is not printable ASCII", c, i);
	}
	if (len >= PROXY_PROTO_V1_MAX)
		return fail(r, "v1: no CRLF within %d bytes", PROXY_PROTO_V1_MAX);
	return PROXY_PROTO_NEED_MORE;
}

/* ---- v2 ---- */

static unsigned be16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* v2_tlvs - walk type-length-value fields in p[0..len) without looking
 * at them (none changes what backstop does); each must fit. */
static enum proxy_proto_status v2_tlvs(const unsigned char *p, size_t len, struct proxy_proto_result *r)
{
	size_t off = 0;

	while (off < len) {
		size_t vlen;
		if (len - off < 3)
			return fail(r, "v2: truncated TLV at offset %zu", PROXY_PROTO_V2_FIXED + off);
		vlen = be16(p + off + 1);
		if (vlen > len - off - 3)
			return fail(r, "v2: TLV type 0x%02x at offset %zu runs %zu bytes past the header",
			    p[off], PROXY_PROTO_V2_FIXED + off, vlen - (len - off - 3));
		off += 3 + vlen;
	}
	return PROXY_PROTO_DONE;
}

static enum proxy_proto_status v2_parse(const unsigned char *buf, size_t len, struct proxy_proto_result *r)
{
	unsigned cmd, fam, proto, dlen;
	size_t need_addr;
	const unsigned char *block = buf + PROXY_PROTO_V2_FIXED;

	r->version = 2;
	if (len < 13)
		return PROXY_PROTO_NEED_MORE;
	if (buf[12] >> 4 != 2)
		return fail(r, "v2: version %u (only 2 exists)", buf[12] >> 4);
	cmd = buf[12] & 0x0f;
	if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
		return fail(r, "v2: unknown command %u (LOCAL 0 or PROXY 1)", cmd);
	if (len < 14)
		return PROXY_PROTO_NEED_MORE;
	fam = buf[13] >> 4;
	proto = buf[13] & 0x0f;
	if (fam > V2_FAM_UNIX || proto > V2_PROTO_DGRAM)
		return fail(r, "v2: unknown address family or protocol (byte 0x%02x)", buf[13]);
	if (cmd == V2_CMD_PROXY && fam != V2_FAM_UNSPEC && proto != V2_PROTO_STREAM)
		return fail(r, "v2: not a stream connection (byte 0x%02x)", buf[13]);
	if (len < PROXY_PROTO_V2_FIXED)
		return PROXY_PROTO_NEED_MORE;
	dlen = be16(buf + 14);
	if (dlen > PROXY_PROTO_V2_MAX_LEN)
		return fail(r, "v2: header length %u is over the limit of %d", dlen, PROXY_PROTO_V2_MAX_LEN);
	need_addr = cmd == V2_CMD_LOCAL ? 0 : fam == V2_FAM_INET ? 12 : fam == V2_FAM_INET6 ? 36 :
	    fam == V2_FAM_UNIX ? 216 : 0;
	if (dlen < need_addr)
		return fail(r, "v2: length %u is too short for the addresses (%zu bytes)", dlen, need_addr);
	if (len < PROXY_PROTO_V2_FIXED + (size_t)dlen)
		return PROXY_PROTO_NEED_MORE;
	r->consumed = PROXY_PROTO_V2_FIXED + dlen;
	if (cmd == V2_CMD_LOCAL) {
		/* the proxy's own connection: the block is discarded whole */
		r->command = PROXY_PROTO_LOCAL;
		return PROXY_PROTO_DONE;
	}
	if (fam == V2_FAM_UNSPEC) {
		/* no addresses to read: the receiver ignores the block */
		r->command = PROXY_PROTO_UNKNOWN;
		return PROXY_PROTO_DONE;
	}
	if (fam == V2_FAM_INET) {
		r->family = AF_INET;
		memcpy(r->src, block, 4);
		memcpy(r->dst, block + 4, 4);
		r->src_port = (uint16_t)be16(block + 8);
		r->dst_port = (uint16_t)be16(block + 10);
		r->command = PROXY_PROTO_PROXY;
	} else if (fam == V2_FAM_INET6) {
		r->family = AF_INET6;
		memcpy(r->src, block, 16);
		memcpy(r->dst, block + 16, 16);
		r->src_port = (uint16_t)be16(block + 32);
		r->dst_port = (uint16_t)be16(block + 34);
		r->command = PROXY_PROTO_PROXY;
	} else {
		r->command = PROXY_PROTO_UNKNOWN;   /* AF_UNIX: no IP address */
	}
	return v2_tlvs(block + need_addr, dlen - need_addr, r);
}

enum proxy_proto_status proxy_proto_parse(const unsigned char *buf, size_t len,
    struct proxy_proto_result *r)
{
	size_t n;

	memset(r, 0, sizeof *r);
	if (len == 0)
		return PROXY_PROTO_NEED_MORE;
	if (buf[0] == v2_signature[0]) {
		n = len < sizeof v2_signature ? len : sizeof v2_signature;
		if (memcmp(buf, v2_signature, n) != 0)
			return fail(r, "v2: bad signature");
		if (len < sizeof v2_signature)
			return PROXY_PROTO_NEED_MORE;
		return v2_parse(buf, len, r);
	}
	n = len < sizeof v1_prefix - 1 ? len : sizeof v1_prefix - 1;
	if (memcmp(buf, v1_prefix, n) != 0)
		return fail(r, "no PROXY protocol header (neither \"PROXY \" nor the v2 signature)");
	return v1_parse(buf, len, r);
}

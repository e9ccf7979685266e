/*
 * test_proxy_proto - the PROXY protocol header parser: v1 and v2 headers
 * HAProxy sends, every truncation point of them (need more, never an
 * answer), the client's bytes after the header left alone, and hostile
 * headers (bad signature, version, command, family, lengths, TLVs running
 * past the end, v1 without CRLF, embedded NUL, leading zeros, oversized).
 * Inputs live at the end of a guarded page: a read past them faults.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS for guarded_copy */
#include <arpa/inet.h>
#include <sys/socket.h>

#include "smtp/proxy_proto.h"
#include "tests/unit/check.h"

static enum proxy_proto_status parse(const void *data, size_t len, struct proxy_proto_result *r)
{
	char *g = guarded_copy(data, len);
	enum proxy_proto_status st = proxy_proto_parse((const unsigned char *)g, len, r);
	guarded_free(g, len);
	return st;
}

/* every proper prefix of a valid header: need more */
static void check_prefixes(const char *what, const void *data, size_t header_len)
{
	int bad = 0;
	for (size_t n = 0; n < header_len; n++) {
		struct proxy_proto_result r;
		enum proxy_proto_status st = parse(data, n, &r);
		if (st != PROXY_PROTO_NEED_MORE) {
			fprintf(stderr, "%s: prefix of %zu bytes: status %d (%s)\n", what, n, st, r.reason);
			bad++;
		}
	}
	CHECK_INT(bad, 0);
}

static void check_refused(const char *what, const void *data, size_t len, const char *reason_part)
{
	struct proxy_proto_result r;
	enum proxy_proto_status st = parse(data, len, &r);
	if (st != PROXY_PROTO_ERROR)
		fprintf(stderr, "%s: expected an error, got status %d\n", what, st);
	CHECK_INT(st, PROXY_PROTO_ERROR);
	if (reason_part && !strstr(r.reason, reason_part)) {
		fprintf(stderr, "%s: reason \"%s\" lacks \"%s\"\n", what, r.reason, reason_part);
		CHECK(0);
	}
	CHECK(r.reason[0] != '\0');
}

static void check_v1_error(const char *line, const char *reason_part)
{
	check_refused(line, line, strlen(line), reason_part);
}

static const char *addr(int family, const unsigned char *a, char *buf, size_t cap)
{
	return inet_ntop(family, a, buf, (socklen_t)cap);
}

static void test_v1_valid(void)
{
	struct proxy_proto_result r;
	char a[INET6_ADDRSTRLEN];
	const char *h4 = "PROXY TCP4 198.51.100.22 203.0.113.7 35646 25\r\n";
	const char *h6 = "PROXY TCP6 2001:db8::1 2001:db8:0:ffff::2 65535 0\r\n";
	const char *hu = "PROXY UNKNOWN\r\n";
	char with_smtp[128];

	CHECK_INT(parse(h4, strlen(h4), &r), PROXY_PROTO_DONE);
	CHECK_INT(r.version, 1);
	CHECK_INT(r.command, PROXY_PROTO_PROXY);
	CHECK_INT(r.consumed, strlen(h4));
	CHECK_INT(r.family, AF_INET);
	CHECK_STR(addr(AF_INET, r.src, a, sizeof a), "198.51.100.22");
	CHECK_STR(addr(AF_INET, r.dst, a, sizeof a), "203.0.113.7");
	CHECK_INT(r.src_port, 35646);
	CHECK_INT(r.dst_port, 25);
	check_prefixes("v1 TCP4", h4, strlen(h4));

	CHECK_INT(parse(h6, strlen(h6), &r), PROXY_PROTO_DONE);
	CHECK_INT(r.family, AF_INET6);
	CHECK_STR(addr(AF_INET6, r.src, a, sizeof a), "2001:db8::1");
	CHECK_STR(addr(AF_INET6, r.dst, a, sizeof a), "2001:db8:0:ffff::2");
	CHECK_INT(r.src_port, 65535);
	CHECK_INT(r.dst_port, 0);
	check_prefixes("v1 TCP6", h6, strlen(h6));

	CHECK_INT(parse(hu, strlen(hu), &r), PROXY_PROTO_DONE);
	CHECK_INT(r.command, PROXY_PROTO_UNKNOWN);
	CHECK_INT(r.consumed, 15);
	/* UNKNOWN: the rest of the line is ignored (spec 2.1) */
	const char *hu2 = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
	CHECK_INT(parse(hu2, strlen(hu2), &r), PROXY_PROTO_DONE);
	CHECK_INT(r.command, PROXY_PROTO_UNKNOWN);
	CHECK_INT(r.consumed, strlen(hu2));

	/* the client's first bytes after the header are not consumed */
	snprintf(with_smtp, sizeof with_smtp, "%sEHLO client.example\r\n", h4);
	CHECK_INT(parse(with_smtp, strlen(with_smtp), &r), PROXY_PROTO_DONE);
	CHECK_INT(r.consumed, strlen(h4));
	/* even bytes that would make no v1 line (binary, NUL) */
	char bin[80];
	memcpy(bin, h4, strlen(h4));
	memcpy(bin + strlen(h4), "\0\n\r\xff", 4);
	CHECK_INT(parse(bin, strlen(h4) + 4, &r), PROXY_PROTO_DONE);
	CHECK_INT(r.consumed, strlen(h4));

	/* the longest line allowed: exactly 107 bytes with its CRLF */
	char longest[120];
	memset(longest, 'x', sizeof longest);
	memcpy(longest, "PROXY UNKNOWN ", 14);
	memcpy(longest + 105, "\r\n", 2);
	CHECK_INT(parse(longest, 107, &r), PROXY_PROTO_DONE);
	CHECK_INT(r.consumed, 107);
	check_prefixes("v1 107 bytes", longest, 107);
	/* 108 bytes: refused, also when only its first 107 bytes came */
	memcpy(longest + 105, "x\r\n", 3);
	check_refused("v1 108 bytes", longest, 108, "107");
	check_refused("v1 108 bytes, 107 seen", longest, 107, "107");
	/* the CR as the 107th byte, its LF would be the 108th */
	memcpy(longest + 105, "x\r", 2);
	check_refused("v1 CR at byte 107", longest, 107, "107");
}

static void test_v1_hostile(void)
{
	char big[400];

	check_v1_error("PROXY TCP4 198.51.100.22 203.0.113.7 35646 25\n", "bare LF");
	check_v1_error("PROXY TCP4 198.51.100.22 203.0.113.7 35646 25\rX", "CR not followed");
	check_v1_error("PROXY TCP4 198.51.100.22\n", "bare LF");
	check_refused("embedded NUL", "PROXY TCP4 198.51.100.22\0 203.0.113.7 1 2\r\n", 43, "0x00");
	check_refused("NUL at once", "PROXY \0", 7, "0x00");
	check_v1_error("PROXY TCP4 198.51.100.\xc3\xa9 203.0.113.7 1 2\r\n", "printable");
	check_v1_error("PROXY TCP4 198.51.100.22\t203.0.113.7 1 2\r\n", "printable");
	check_v1_error("PROXY TCP4 198.051.100.22 203.0.113.7 1 2\r\n", "source");
	check_v1_error("PROXY TCP4 198.51.100.256 203.0.113.7 1 2\r\n", "source");
	check_v1_error("PROXY TCP4 198.51.100 203.0.113.7 1 2\r\n", "source");
	check_v1_error("PROXY TCP4 198.51.100.1.2 203.0.113.7 1 2\r\n", "source");
	check_v1_error("PROXY TCP4 198.51..1 203.0.113.7 1 2\r\n", "source");
	check_v1_error("PROXY TCP4 198.51.100.1. 203.0.113.7 1 2\r\n", "source");
	check_v1_error("PROXY TCP4 1234.51.100.1 203.0.113.7 1 2\r\n", "source");
	check_v1_error("PROXY TCP4 0x7f.0.0.1 203.0.113.7 1 2\r\n", "source");
	check_v1_error("PROXY TCP4 2001:db8::1 203.0.113.7 1 2\r\n", "source");
	check_v1_error("PROXY TCP4 198.51.100.2 203.0.113 1 2\r\n", "destination");
	check_v1_error("PROXY TCP6 198.51.100.2 2001:db8::1 1 2\r\n", "source");
	check_v1_error("PROXY TCP6 2001:db8::1 2001:db8:::1 1 2\r\n", "destination");
	check_v1_error("PROXY TCP6 2001:db8::1 [2001:db8::2] 1 2\r\n", "destination");
	check_v1_error("PROXY TCP6 2001:db8::1%eth0 2001:db8::2 1 2\r\n", "source");
	check_v1_error("PROXY TCP4 198.51.100.2 203.0.113.7 65536 25\r\n", "port");
	check_v1_error("PROXY TCP4 198.51.100.2 203.0.113.7 025 25\r\n", "port");
	check_v1_error("PROXY TCP4 198.51.100.2 203.0.113.7 -1 25\r\n", "port");
	check_v1_error("PROXY TCP4 198.51.100.2 203.0.113.7 1 +25\r\n", "port");
	check_v1_error("PROXY TCP4 198.51.100.2 203.0.113.7 1 999999\r\n", "port");
	check_v1_error("PROXY TCP4  198.51.100.2 203.0.113.7 1 2\r\n", "space");
	check_v1_error("PROXY TCP4 198.51.100.2 203.0.113.7 1 2 \r\n", "space");
	check_v1_error("PROXY TCP4 198.51.100.2 203.0.113.7 1 2 3\r\n", "more than 6 fields");
	check_v1_error("PROXY TCP4 198.51.100.2 203.0.113.7 1\r\n", "fields");
	check_v1_error("PROXY TCP4\r\n", "fields");
	check_v1_error("PROXY \r\n", "space");
	check_v1_error("PROXY\r\n", "no PROXY");
	check_v1_error("PROXY TCP5 198.51.100.2 203.0.113.7 1 2\r\n", "protocol");
	check_v1_error("PROXY tcp4 198.51.100.2 203.0.113.7 1 2\r\n", "protocol");
	check_v1_error("PROXY UNKNOWNX\r\n", "protocol");
	check_v1_error("PROXY UDP4 198.51.100.2 203.0.113.7 1 2\r\n", "protocol");
	check_v1_error("proxy TCP4 198.51.100.2 203.0.113.7 1 2\r\n", "no PROXY");
	check_v1_error(" PROXY TCP4 198.51.100.2 203.0.113.7 1 2\r\n", "no PROXY");
	check_v1_error("EHLO client.example\r\n", "no PROXY");
	check_v1_error("GET / HTTP/1.1\r\n", "no PROXY");
	check_v1_error("X", "no PROXY");
	check_v1_error("PROXX", "no PROXY");
	/* oversized: a long line without CRLF, refused at 107 bytes */
	memset(big, 'A', sizeof big);
	memcpy(big, "PROXY UNKNOWN ", 14);
	check_refused("oversized v1", big, sizeof big, "107");
	check_prefixes("oversized v1 under 107", big, 107);
}

/* a v2 header: fixed part, then the given block */
static size_t v2(unsigned char *out, unsigned char ver_cmd, unsigned char fam, const void *block,
    size_t block_len)
{
	static const unsigned char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
		0x55, 0x49, 0x54, 0x0A};
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (unsigned char)(block_len >> 8);
	out[15] = (unsigned char)block_len;
	memcpy(out + 16, block, block_len);
	return 16 + block_len;
}

static void test_v2_valid(void)
{
	unsigned char h[2048], block[1100];
	struct proxy_proto_result r;
	char a[INET6_ADDRSTRLEN];
	size_t n;
	/* 198.51.100.2:40000 -> 127.0.0.1:2525 */
	static const unsigned char in4[12] = {198, 51, 100, 2, 127, 0, 0, 1, 0x9c, 0x40, 0x09, 0xdd};

	n = v2(h, 0x21, 0x11, in4, sizeof in4);
	CHECK_INT(parse(h, n, &r), PROXY_PROTO_DONE);
	CHECK_INT(r.version, 2);
	CHECK_INT(r.command, PROXY_PROTO_PROXY);
	CHECK_INT(r.consumed, 28);
	CHECK_INT(r.family, AF_INET);
	CHECK_STR(addr(AF_INET, r.src, a, sizeof a), "198.51.100.2");
	CHECK_STR(addr(AF_INET, r.dst, a, sizeof a), "127.0.0.1");
	CHECK_INT(r.src_port, 40000);
	CHECK_INT(r.dst_port, 2525);
	check_prefixes("v2 TCP4", h, n);
	/* followed by the client's EHLO in the same read */
	memcpy(h + n, "EHLO x\r\n", 8);
	CHECK_INT(parse(h, n + 8, &r), PROXY_PROTO_DONE);
	CHECK_INT(r.consumed, 28);

	/* TCP6 with TLVs: ALPN "smtp", NOOP (empty), AUTHORITY, unique id */
	memset(block, 0, sizeof block);
	inet_pton(AF_INET6, "2001:db8::2", block);
	inet_pton(AF_INET6, "2001:db8::1", block + 16);
	block[32] = 0x01; block[33] = 0x00;   /* 256 */
	block[34] = 0x00; block[35] = 0x19;   /* 25 */
	size_t off = 36;
	memcpy(block + off, "\x01\x00\x04smtp", 7); off += 7;
	memcpy(block + off, "\x04\x00\x00", 3); off += 3;
	memcpy(block + off, "\x02\x00\x0bmx.example", 14); off += 14;
	block[off++] = 0x05; block[off++] = 0; block[off++] = 128;
	off += 128;
	n = v2(h, 0x21, 0x21, block, off);
	CHECK_INT(parse(h, n, &r), PROXY_PROTO_DONE);
	CHECK_INT(r.family, AF_INET6);
	CHECK_STR(addr(AF_INET6, r.src, a, sizeof a), "2001:db8::2");
	CHECK_STR(addr(AF_INET6, r.dst, a, sizeof a), "2001:db8::1");
	CHECK_INT(r.src_port, 256);
	CHECK_INT(r.dst_port, 25);
	CHECK_INT(r.consumed, 16 + off);
	check_prefixes("v2 TCP6 with TLVs", h, n);

	/* LOCAL, as HAProxy's health checks send it: no addresses */
	n = v2(h, 0x20, 0x00, "", 0);
	CHECK_INT(parse(h, n, &r), PROXY_PROTO_DONE);
	CHECK_INT(r.command, PROXY_PROTO_LOCAL);
	CHECK_INT(r.consumed, 16);
	check_prefixes("v2 LOCAL", h, n);
	/* LOCAL with a block: discarded whole, whatever it holds */
	n = v2(h, 0x20, 0x11, "\xff\xff\xff", 3);
	CHECK_INT(parse(h, n, &r), PROXY_PROTO_DONE);
	CHECK_INT(r.command, PROXY_PROTO_LOCAL);
	CHECK_INT(r.consumed, 19);
	/* PROXY over UNSPEC: use the real addresses */
	n = v2(h, 0x21, 0x00, "abc", 3);
	CHECK_INT(parse(h, n, &r), PROXY_PROTO_DONE);
	CHECK_INT(r.command, PROXY_PROTO_UNKNOWN);
	/* PROXY over AF_UNIX: no IP address either */
	memset(block, 'p', 216);
	n = v2(h, 0x21, 0x31, block, 216);
	CHECK_INT(parse(h, n, &r), PROXY_PROTO_DONE);
	CHECK_INT(r.command, PROXY_PROTO_UNKNOWN);
	CHECK_INT(r.consumed, 232);
	/* the largest block allowed */
	memset(block, 0, sizeof block);
	memcpy(block, in4, 12);
	block[12] = 0x04;   /* one NOOP TLV filling the rest */
	block[13] = (unsigned char)((PROXY_PROTO_V2_MAX_LEN - 15) >> 8);
	block[14] = (unsigned char)(PROXY_PROTO_V2_MAX_LEN - 15);
	n = v2(h, 0x21, 0x11, block, PROXY_PROTO_V2_MAX_LEN);
	CHECK_INT(parse(h, n, &r), PROXY_PROTO_DONE);
	CHECK_INT(r.consumed, PROXY_PROTO_MAX);
}

static void test_v2_hostile(void)
{
	unsigned char h[2048], block[1100];
	size_t n;
	static const unsigned char in4[12] = {198, 51, 100, 2, 127, 0, 0, 1, 0x9c, 0x40, 0x09, 0xdd};

	n = v2(h, 0x21, 0x11, in4, sizeof in4);
	/* a wrong byte at every position of the signature */
	for (size_t i = 1; i < 12; i++) {
		unsigned char bad[64];
		memcpy(bad, h, n);
		bad[i] ^= 0x20;
		check_refused("v2 signature", bad, i + 1, "signature");
		check_refused("v2 signature (whole)", bad, n, "signature");
	}
	check_refused("v2 version 1", h, v2(h, 0x11, 0x11, in4, 12), "version");
	h[12] = 0x31;
	check_refused("v2 version 3, seen at 13 bytes", h, 13, "version");
	check_refused("v2 version 0 (a v1-ish byte)", h, v2(h, 0x01, 0x11, in4, 12), "version");
	check_refused("v2 command 2", h, v2(h, 0x22, 0x11, in4, 12), "command");
	v2(h, 0x2f, 0x11, in4, 12);
	check_refused("v2 command 15, seen at 13 bytes", h, 13, "command");
	check_refused("v2 family 4", h, v2(h, 0x21, 0x41, in4, 12), "family");
	v2(h, 0x21, 0xf1, in4, 12);
	check_refused("v2 family 15, seen at 14 bytes", h, 14, "family");
	check_refused("v2 protocol 3", h, v2(h, 0x21, 0x13, in4, 12), "family");
	check_refused("v2 family 4 in LOCAL too", h, v2(h, 0x20, 0x40, "", 0), "family");
	check_refused("v2 UDP", h, v2(h, 0x21, 0x12, in4, 12), "stream");
	check_refused("v2 TCP4 too short", h, v2(h, 0x21, 0x11, in4, 11), "too short");
	check_refused("v2 TCP4 empty", h, v2(h, 0x21, 0x11, in4, 0), "too short");
	memset(block, 0, sizeof block);
	check_refused("v2 TCP6 with 12 bytes", h, v2(h, 0x21, 0x21, block, 12), "too short");
	check_refused("v2 UNIX with 215 bytes", h, v2(h, 0x21, 0x31, block, 215), "too short");
	/* over the limit: refused as soon as the length is seen */
	n = v2(h, 0x21, 0x11, block, PROXY_PROTO_V2_MAX_LEN + 1);
	check_refused("v2 length 1025", h, n, "limit");
	check_refused("v2 length 1025, only the fixed part", h, 16, "limit");
	h[14] = 0xff; h[15] = 0xff;
	check_refused("v2 length 65535", h, 16, "limit");
	/* TLVs that do not fit */
	memcpy(block, in4, 12);
	memcpy(block + 12, "\x01\x00\x05smt", 6);
	check_refused("v2 TLV past the end", h, v2(h, 0x21, 0x11, block, 18), "past");
	memcpy(block + 12, "\x01\x00", 2);
	check_refused("v2 TLV header cut", h, v2(h, 0x21, 0x11, block, 14), "truncated TLV");
	memcpy(block + 12, "\x04\x00\x00\x20", 4);
	check_refused("v2 one byte after a TLV", h, v2(h, 0x21, 0x11, block, 16), "truncated TLV");
	memcpy(block + 12, "\x20\xff\xff", 3);
	check_refused("v2 TLV length 65535", h, v2(h, 0x21, 0x11, block, 15), "past");
}

int main(void)
{
	test_v1_valid();
	test_v1_hostile();
	test_v2_valid();
	test_v2_hostile();
	return check_finish("test_proxy_proto");
}

/*
 * fuzz_proxy_out - proxy_out_v2(), the PROXY v2 header written to the
 * backend, with arbitrary socket addresses (any family byte, any address
 * and port bytes) and capacities. Byte 0: the command (low bit LOCAL or
 * PROXY, else an unknown value), byte 1: the capacity (0..63), then the
 * bytes of two struct sockaddr_storage. Invariants: -1, or a length of
 * 16 (LOCAL), 28 (TCP4) or 52 (TCP6) within the capacity, starting with
 * the signature, whose length field and family agree; nothing is written
 * past the capacity; the client's port is written as given.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/proxy_out.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static const unsigned char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage src, dst;
	unsigned char out[64 + 16];
	enum proxy_out_cmd cmd;
	size_t cap;
	int n;

	if (size < 2)
		return 0;
	cmd = data[0] < 128 ? (enum proxy_out_cmd)(data[0] & 1) : (enum proxy_out_cmd)data[0];
	cap = data[1] % 64;
	data += 2;
	size -= 2;
	memset(&src, 0, sizeof src);
	memset(&dst, 0, sizeof dst);
	memcpy(&src, data, size < sizeof src ? size : sizeof src);
	if (size > sizeof src)
		memcpy(&dst, data + sizeof src, size - sizeof src < sizeof dst ? size - sizeof src : sizeof dst);
	memset(out, 0xA5, sizeof out);
	n = proxy_out_v2(cmd, (struct sockaddr *)&src, (struct sockaddr *)&dst, out, cap);
	for (size_t i = cap; i < sizeof out; i++)
		REQUIRE(out[i] == 0xA5);
	if (n < 0)
		return 0;
	REQUIRE((size_t)n <= cap);
	REQUIRE(memcmp(out, sig, sizeof sig) == 0);
	REQUIRE(n == 16 + (out[14] << 8 | out[15]));
	if (cmd == PROXY_OUT_LOCAL) {
		REQUIRE(n == 16 && out[12] == 0x20 && out[13] == 0x00);
		return 0;
	}
	REQUIRE(cmd == PROXY_OUT_PROXY && out[12] == 0x21);
	REQUIRE((out[13] == 0x11 && n == 28) || (out[13] == 0x21 && n == 52));
	REQUIRE(src.ss_family == AF_INET || src.ss_family == AF_INET6);
	REQUIRE(dst.ss_family == AF_INET || dst.ss_family == AF_INET6);
	/* the client's port, as given */
	const unsigned char *port = src.ss_family == AF_INET ?
	    (const unsigned char *)&((struct sockaddr_in *)&src)->sin_port :
	    (const unsigned char *)&((struct sockaddr_in6 *)&src)->sin6_port;
	REQUIRE(memcmp(out + n - 4, port, 2) == 0);
	return 0;
}

/*
 * fuzz_proxy_proto - proxy_proto_parse() on arbitrary bytes (v1 and v2:
 * the seeds hold both). Invariants: an answer for a prefix holds for the
 * whole input (DONE with the same header, ERROR stays ERROR): what arrives
 * later never changes what the first bytes said; DONE consumes at most
 * the input and at most PROXY_PROTO_MAX bytes (107 for v1), and the
 * header alone parses the same, one byte less is NEED_MORE; NEED_MORE only
 * below the limits; ERROR always says why; a PROXY result has an IP family.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "smtp/proxy_proto.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static int same(const struct proxy_proto_result *a, const struct proxy_proto_result *b)
{
	return a->version == b->version && a->command == b->command && a->consumed == b->consumed &&
	    a->family == b->family && memcmp(a->src, b->src, 16) == 0 &&
	    memcmp(a->dst, b->dst, 16) == 0 && a->src_port == b->src_port &&
	    a->dst_port == b->dst_port;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_proto_result whole, part;
	enum proxy_proto_status st = proxy_proto_parse(data, size, &whole);

	switch (st) {
	case PROXY_PROTO_NEED_MORE:
		REQUIRE(size < PROXY_PROTO_MAX);
		break;
	case PROXY_PROTO_ERROR:
		REQUIRE(whole.reason[0] != '\0' && memchr(whole.reason, '\0', sizeof whole.reason));
		break;
	case PROXY_PROTO_DONE:
		REQUIRE(whole.consumed > 0 && whole.consumed <= size && whole.consumed <= PROXY_PROTO_MAX);
		REQUIRE(whole.version == 2 || whole.consumed <= PROXY_PROTO_V1_MAX);
		REQUIRE(whole.command == PROXY_PROTO_PROXY || whole.command == PROXY_PROTO_LOCAL ||
		    whole.command == PROXY_PROTO_UNKNOWN);
		REQUIRE(whole.command != PROXY_PROTO_PROXY || whole.family == AF_INET ||
		    whole.family == AF_INET6);
		REQUIRE(proxy_proto_parse(data, whole.consumed, &part) == PROXY_PROTO_DONE &&
		    same(&part, &whole));
		REQUIRE(proxy_proto_parse(data, whole.consumed - 1, &part) == PROXY_PROTO_NEED_MORE);
		break;
	default:
		abort();
	}
	/* a prefix's verdict stands (a few cut points, not all: speed) */
	for (size_t cut = 0; cut < size; cut += 1 + cut / 4) {
		enum proxy_proto_status ps = proxy_proto_parse(data, cut, &part);
		if (ps == PROXY_PROTO_ERROR)
			REQUIRE(st == PROXY_PROTO_ERROR);
		if (ps == PROXY_PROTO_DONE)
			REQUIRE(st == PROXY_PROTO_DONE && same(&part, &whole));
	}
	return 0;
}

/*
 * received_ip - see received_ip.h. The special-purpose ranges are those
 * of the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890)
 * that are not globally reachable, plus multicast.
 */
#include "smtp/received_ip.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

struct range {
	unsigned char prefix[16];
	unsigned bits;
};

static bool in_range(const unsigned char *a, const struct range *r)
{
	unsigned full = r->bits / 8, rest = r->bits % 8;

	if (memcmp(a, r->prefix, full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (r->prefix[full] & mask);
}

static bool v4_external(const unsigned char *a)
{
	static const struct range special[] = {
		{{0}, 8},                  /* "this network" */
		{{10}, 8},
		{{100, 64}, 10},           /* shared address space (CGNAT) */
		{{127}, 8},
		{{169, 254}, 16},
		{{172, 16}, 12},
		{{192, 0, 0}, 24},         /* IETF protocol assignments */
		{{192, 0, 2}, 24},         /* TEST-NET-1 */
		{{192, 88, 99}, 24},       /* 6to4 relay anycast (deprecated) */
		{{192, 168}, 16},
		{{198, 18}, 15},           /* benchmarking */
		{{198, 51, 100}, 24},      /* TEST-NET-2 */
		{{203, 0, 113}, 24},       /* TEST-NET-3 */
		{{224}, 4},                /* multicast */
		{{240}, 4},                /* reserved, and the broadcast address */
	};
	for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
		if (in_range(a, &special[i]))
			return false;
	return true;
}

static bool v6_external(const unsigned char *a)
{
	static const struct range special[] = {
		{{0}, 96},                                  /* ::, ::1, IPv4-compatible (deprecated) */
		{{0x01, 0x00}, 64},                         /* discard-only 100::/64 */
		{{0x20, 0x01, 0x0d, 0xb8}, 32},             /* documentation */
		{{0x20, 0x01, 0x00, 0x02, 0, 0}, 48},       /* benchmarking */
		{{0x20, 0x01, 0x00}, 23},                   /* IETF protocol assignments */
		{{0xfc}, 7},                                /* unique local */
		{{0xfe, 0x80}, 10},                         /* link-local */
		{{0xff}, 8},                                /* multicast */
	};
	static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (memcmp(a, v4mapped, 12) == 0)
		return v4_external(a + 12);
	for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
		if (in_range(a, &special[i]))
			return false;
	return true;
}

bool received_ip_external(const char *ip)
{
	unsigned char a[16];
	char buf[64];
	size_t n;

	if (ip == NULL)
		return false;
	if (strncasecmp(ip, "IPv6:", 5) == 0)
		ip += 5;
	n = strlen(ip);
	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, ip, n + 1);
	if (inet_pton(AF_INET, buf, a) == 1)
		return v4_external(a);
	if (inet_pton(AF_INET6, buf, a) == 1)
		return v6_external(a);
	return false;
}

const char *received_first_external(const struct bounce_original *o)
{
	size_t n = o->nhops < BOUNCE_RECEIVED_MAX ? o->nhops : BOUNCE_RECEIVED_MAX;

	for (size_t i = n; i-- > 0;)
		if (received_ip_external(bounce_hop_at(o, i)->ip))
			return bounce_hop_at(o, i)->ip;
	return NULL;
}

/*
 * test_proxy_out - the PROXY v2 header written to the backend under
 * [backend] identity = proxy: exact bytes against haproxy's
 * proxy-protocol.txt (2.2) examples worked by hand, IPv4-mapped
 * addresses, mixed families, and hostile arguments (unknown families,
 * NULL, every too-small buffer, an unknown command).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "smtp/proxy_out.h"
#include "tests/unit/check.h"

static const unsigned char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static struct sockaddr_in v4(const char *ip, unsigned port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static struct sockaddr_in6 v6(const char *ip, unsigned port)
{
	struct sockaddr_in6 a;
	memset(&a, 0, sizeof a);
	a.sin6_family = AF_INET6;
	a.sin6_port = htons((unsigned short)port);
	inet_pton(AF_INET6, ip, &a.sin6_addr);
	return a;
}

static int same(const unsigned char *got, int n, const unsigned char *want, size_t wn)
{
	return n == (int)wn && memcmp(got, want, wn) == 0;
}

static void test_local(void)
{
	unsigned char out[PROXY_OUT_V2_MAX];
	unsigned char want[16];
	memcpy(want, sig, 12);
	want[12] = 0x20;   /* version 2, LOCAL */
	want[13] = 0x00;   /* UNSPEC */
	want[14] = want[15] = 0;
	CHECK(same(out, proxy_out_v2(PROXY_OUT_LOCAL, NULL, NULL, out, sizeof out), want, sizeof want));
	CHECK_INT(proxy_out_v2(PROXY_OUT_LOCAL, NULL, NULL, out, 15), -1);
}

static void test_tcp4(void)
{
	struct sockaddr_in src = v4("198.51.100.7", 40000), dst = v4("127.0.0.1", 10026);
	unsigned char out[PROXY_OUT_V2_MAX];
	static const unsigned char want[28] = {
		0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
		0x21, 0x11, 0x00, 0x0C,                 /* v2 PROXY, TCP over IPv4, 12 bytes */
		198, 51, 100, 7, 127, 0, 0, 1,          /* src, dst */
		0x9C, 0x40, 0x27, 0x2A,                 /* 40000, 10026 */
	};
	int n = proxy_out_v2(PROXY_OUT_PROXY, (struct sockaddr *)&src, (struct sockaddr *)&dst, out, sizeof out);
	CHECK(same(out, n, want, sizeof want));
	/* exactly enough room is enough; one byte less is refused, and no
	 * size below writes anything */
	CHECK_INT(proxy_out_v2(PROXY_OUT_PROXY, (struct sockaddr *)&src, (struct sockaddr *)&dst, out, 28), 28);
	for (size_t cap = 0; cap < 28; cap++) {
		unsigned char small[28];
		memset(small, 0xAA, sizeof small);
		CHECK_INT(proxy_out_v2(PROXY_OUT_PROXY, (struct sockaddr *)&src, (struct sockaddr *)&dst, small, cap), -1);
		CHECK_INT(small[0], 0xAA);
	}
}

static void test_tcp6(void)
{
	struct sockaddr_in6 src = v6("2001:db8::2", 1), dst = v6("2001:db8::1", 25);
	unsigned char out[PROXY_OUT_V2_MAX];
	unsigned char want[52];
	int n = proxy_out_v2(PROXY_OUT_PROXY, (struct sockaddr *)&src, (struct sockaddr *)&dst, out, sizeof out);

	memcpy(want, sig, 12);
	want[12] = 0x21;
	want[13] = 0x21;   /* TCP over IPv6 */
	want[14] = 0x00;
	want[15] = 36;
	memcpy(want + 16, &src.sin6_addr, 16);
	memcpy(want + 32, &dst.sin6_addr, 16);
	want[48] = 0; want[49] = 1; want[50] = 0; want[51] = 25;
	CHECK(same(out, n, want, sizeof want));
	CHECK_INT(proxy_out_v2(PROXY_OUT_PROXY, (struct sockaddr *)&src, (struct sockaddr *)&dst, out, 51), -1);
}

static void test_mapped_and_mixed(void)
{
	struct sockaddr_in6 msrc = v6("::ffff:198.51.100.2", 5000), mdst = v6("::ffff:192.0.2.1", 25);
	struct sockaddr_in src4 = v4("198.51.100.2", 5000), dst4 = v4("192.0.2.1", 25);
	struct sockaddr_in6 dst6 = v6("2001:db8::1", 25);
	unsigned char a[PROXY_OUT_V2_MAX], b[PROXY_OUT_V2_MAX];
	int na, nb;

	/* a dual-stack listener's ::ffff:a.b.c.d client is an IPv4 client */
	na = proxy_out_v2(PROXY_OUT_PROXY, (struct sockaddr *)&msrc, (struct sockaddr *)&mdst, a, sizeof a);
	nb = proxy_out_v2(PROXY_OUT_PROXY, (struct sockaddr *)&src4, (struct sockaddr *)&dst4, b, sizeof b);
	CHECK_INT(na, 28);
	CHECK(na == nb && memcmp(a, b, (size_t)nb) == 0);
	/* mapped on one side only */
	na = proxy_out_v2(PROXY_OUT_PROXY, (struct sockaddr *)&src4, (struct sockaddr *)&mdst, a, sizeof a);
	CHECK(na == nb && memcmp(a, b, (size_t)nb) == 0);
	/* IPv4 client, IPv6 local address: TCP4, dst 0.0.0.0 with its port */
	na = proxy_out_v2(PROXY_OUT_PROXY, (struct sockaddr *)&src4, (struct sockaddr *)&dst6, a, sizeof a);
	CHECK_INT(na, 28);
	CHECK_INT(a[13], 0x11);
	CHECK(memcmp(a + 16, &src4.sin_addr, 4) == 0);
	CHECK(a[20] == 0 && a[21] == 0 && a[22] == 0 && a[23] == 0);
	CHECK(a[26] == 0 && a[27] == 25);
	/* IPv6 client, IPv4 local address: TCP6, dst :: */
	struct sockaddr_in6 src6 = v6("2001:db8::2", 7);
	na = proxy_out_v2(PROXY_OUT_PROXY, (struct sockaddr *)&src6, (struct sockaddr *)&dst4, a, sizeof a);
	CHECK_INT(na, 52);
	CHECK_INT(a[13], 0x21);
	static const unsigned char zero16[16];
	CHECK(memcmp(a + 32, zero16, 16) == 0);
	CHECK(a[50] == 0 && a[51] == 25);
}

static void test_hostile(void)
{
	struct sockaddr_in src = v4("198.51.100.7", 1), dst = v4("127.0.0.1", 2);
	struct sockaddr_un un;
	struct sockaddr none;
	unsigned char out[PROXY_OUT_V2_MAX];

	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	memset(&none, 0, sizeof none);
	none.sa_family = AF_UNSPEC;
	CHECK_INT(proxy_out_v2(PROXY_OUT_PROXY, NULL, (struct sockaddr *)&dst, out, sizeof out), -1);
	CHECK_INT(proxy_out_v2(PROXY_OUT_PROXY, (struct sockaddr *)&src, NULL, out, sizeof out), -1);
	CHECK_INT(proxy_out_v2(PROXY_OUT_PROXY, (struct sockaddr *)&un, (struct sockaddr *)&dst, out, sizeof out), -1);
	CHECK_INT(proxy_out_v2(PROXY_OUT_PROXY, (struct sockaddr *)&src, (struct sockaddr *)&un, out, sizeof out), -1);
	CHECK_INT(proxy_out_v2(PROXY_OUT_PROXY, &none, (struct sockaddr *)&dst, out, sizeof out), -1);
	CHECK_INT(proxy_out_v2((enum proxy_out_cmd)7, (struct sockaddr *)&src, (struct sockaddr *)&dst, out, sizeof out), -1);
	CHECK_INT(proxy_out_v2(PROXY_OUT_PROXY, (struct sockaddr *)&src, (struct sockaddr *)&dst, NULL, 0), -1);
}

int main(void)
{
	test_local();
	test_tcp4();
	test_tcp6();
	test_mapped_and_mixed();
	test_hostile();
	return check_finish("test_proxy_out");
}

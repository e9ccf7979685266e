/*
 * fuzz_bounce - the bounce classifier and its MIME walker (smtp/bounce.c,
 * smtp/mime.c, smtp/bounce_rules.c) on arbitrary messages. The first byte
 * picks the envelope sender (null or not) and the length of a split
 * pattern taken from the next bytes; the rest is the message: header
 * fields (a line and its continuation lines, up to the first empty line)
 * fed whole, then the body. Oracle: the result is the same, byte for byte,
 * fed whole, byte by byte for short inputs, and in the pattern's random
 * chunks; every string of the result is terminated within its array and
 * the counts within their bounds. Memory and time: libFuzzer's rss and
 * timeout limits (the classifier allocates once, about 40 KiB).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/bounce.h"
#include "smtp/received_ip.h"
#include "tests/unit/bounce_feed.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)
#define TERMINATED(a) REQUIRE(memchr((a), '\0', sizeof(a)) != NULL)

static void run(const char *msg, size_t n, size_t chunk, const unsigned char *pattern, size_t plen,
    const char *mail_from, struct bounce_result *r)
{
	struct bounce_scan *s = bounce_scan_new();
	REQUIRE(s);
	feed_message_split(s, msg, n, chunk, pattern, plen, NULL, 0, NULL);
	bounce_scan_end(s, mail_from, r);
	bounce_scan_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bounce_result whole, other;
	if (size < 1)
		return 0;
	const char *mail_from = data[0] & 1 ? "" : "sender@example.org";
	size_t plen = (size_t)(data[0] >> 1) % 16;
	data++;
	size--;
	if (plen > size)
		plen = size;
	const unsigned char *pattern = data;
	const char *msg = (const char *)data + plen;
	size_t n = size - plen;

	run(msg, n, 0, NULL, 0, mail_from, &whole);
	REQUIRE((unsigned)whole.cls < BOUNCE_CLASS_COUNT);
	REQUIRE(whole.nrefs <= 8 && whole.orig.nhops <= BOUNCE_RECEIVED_MAX);
	TERMINATED(whole.why);
	TERMINATED(whole.in_reply_to);
	for (size_t i = 0; i < whole.nrefs; i++)
		TERMINATED(whole.refs[i]);
	TERMINATED(whole.orig.return_path);
	TERMINATED(whole.orig.message_id);
	TERMINATED(whole.orig.from);
	TERMINATED(whole.orig.subject);
	TERMINATED(whole.orig.date);
	TERMINATED(whole.orig.backstop_sig);
	for (size_t i = 0; i < whole.orig.nhops; i++) {
		TERMINATED(whole.orig.hops[i].by);
		TERMINATED(whole.orig.hops[i].from);
		TERMINATED(whole.orig.hops[i].ip);
	}
	/* the zombie's address: a kept hop's, and a public one */
	const char *entry = received_entry_ip(&whole.orig);
	if (entry != NULL) {
		REQUIRE(received_ip_external(entry));
		REQUIRE(entry >= (const char *)whole.orig.hops &&
		    entry < (const char *)(whole.orig.hops + BOUNCE_RECEIVED_MAX));
	}
	REQUIRE(bounce_class_parse(bounce_class_name(whole.cls), &(enum bounce_class){0}));

	if (plen > 0) {
		run(msg, n, 0, pattern, plen, mail_from, &other);
		REQUIRE(memcmp(&whole, &other, sizeof whole) == 0);
	}
	if (n <= 4096) {
		run(msg, n, 1, NULL, 0, mail_from, &other);
		REQUIRE(memcmp(&whole, &other, sizeof whole) == 0);
	}
	return 0;
}

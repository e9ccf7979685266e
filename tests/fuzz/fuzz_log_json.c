/*
 * fuzz_log_json - the JSON log pieces (proxy/log_json.c) on hostile text.
 *
 * Input: byte 0 = the record's JSON capacity (x 16), byte 1 = the escape
 * buffer's capacity, then fields separated by 0xfe bytes (helo, sender,
 * recipients..., the checks notes, msg).
 * Invariants:
 *  - json_escape: the output has no raw control character, every quote is
 *    escaped, it is a valid JSON string body, and it decodes to the input
 *    with each non-UTF-8 byte replaced by U+FFFD (a round trip; checked by
 *    the independent reader in tests/unit/json_check.h); with a small
 *    buffer it is a prefix of the full output, cut between escapes.
 *  - a whole log line built from the fields (log_rec + json_envelope) is
 *    exactly one JSON object and "\n", no duplicate key (a client cannot
 *    add or replace one), the helo and sender decode to their sanitized
 *    input whenever the record did not have to leave them out; under a
 *    smaller cap (byte 1 x 32 + 256, as for syslog) too, members left out
 *    whole.
 *  - log_event_name gives only [a-z0-9_] and never more than 40 bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/log_json.h"
#include "tests/unit/json_check.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static void check_escape(const unsigned char *in, size_t len, size_t small)
{
	size_t cap = len * 6 + 1, consumed, n, sl, gl;
	char *out = malloc(cap), *quoted = malloc(cap + 2), *part = malloc(small + 1);
	unsigned char *want = malloc(len * 3 + 1), *got = malloc(len * 3 + 1);

	REQUIRE(out && quoted && part && want && got);
	n = json_escape(out, cap, (const char *)in, len, &consumed);
	REQUIRE(consumed == len && n < cap && out[n] == '\0');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];
		REQUIRE(c >= 0x20 && c != 0x7f);
		if (c == '"')
			REQUIRE(i > 0 && out[i - 1] == '\\');
	}
	quoted[0] = '"';
	memcpy(quoted + 1, out, n);
	quoted[n + 1] = '"';
	struct jc j = {(unsigned char *)quoted, (unsigned char *)quoted + n + 2, 0};
	REQUIRE(jc_string(&j, got, len * 3 + 1, &gl) && j.p == j.end);
	sl = jc_sanitize(in, len, want);
	REQUIRE(gl == sl && memcmp(got, want, sl) == 0);

	/* a small buffer: a prefix, never a cut escape */
	size_t pn = json_escape(part, small + 1, (const char *)in, len, &consumed);
	REQUIRE(pn <= small && pn <= n && memcmp(part, out, pn) == 0 && consumed <= len);
	if (consumed < len)
		REQUIRE(pn + 6 > small);   /* stopped only because the next one did not fit */
	free(out);
	free(quoted);
	free(part);
	free(want);
	free(got);
}

/* field i of the input as a NUL-terminated copy (NULs in it end it early,
 * as in C strings the daemon holds) */
static char *field(const uint8_t *data, size_t size, int i)
{
	size_t start = 0, end;
	for (int k = 0; k < i; k++) {
		const uint8_t *sep = memchr(data + start, 0xfe, size - start);
		if (sep == NULL)
			return NULL;
		start = (size_t)(sep - data) + 1;
	}
	const uint8_t *sep = memchr(data + start, 0xfe, size - start);
	end = sep ? (size_t)(sep - data) : size;
	char *s = malloc(end - start + 1);
	REQUIRE(s);
	memcpy(s, data + start, end - start);
	s[end - start] = '\0';
	return s;
}

static void check_value(const char *line, size_t n, const char *key, const char *raw)
{
	unsigned char got[2048], want[1024 * 3];
	size_t gl, wl, rl = strlen(raw);

	if (rl > 1000)
		return;
	if (!jc_find_string(line, n, key, got, sizeof got, &gl))
		return;   /* left out: the record was full */
	wl = jc_sanitize((const unsigned char *)raw, rl, want);
	REQUIRE(gl == wl && memcmp(got, want, wl) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char line[32768];
	char text[2048], *json, event[48];
	struct log_rec r;
	size_t jcap, n;

	if (size < 2)
		return 0;
	jcap = (size_t)data[0] * 16;
	check_escape(data + 2, size - 2, data[1]);

	char *helo = field(data + 2, size - 2, 0), *sender = field(data + 2, size - 2, 1);
	char *notes = field(data + 2, size - 2, 2), *msg = field(data + 2, size - 2, 3);
	json = malloc(jcap + 1);
	REQUIRE(json);
	log_rec_init(&r, text, sizeof text, json, jcap);
	log_rec_str(&r, "txn ", "txn", "0123456789AB.1", LOG_REC_VERBATIM, "");
	log_rec_str(&r, " helo=<", "helo", helo, 300, ">");
	log_rec_str(&r, " from=<", "sender", sender, 300, ">");
	log_rec_text(&r, " to=");
	log_rec_array_begin(&r, "recipients");
	for (int i = 4; i < 40; i++) {
		char *rc = field(data + 2, size - 2, i);
		if (rc == NULL)
			break;
		log_rec_str(&r, i > 4 ? ",<" : "<", NULL, rc, 300, ">");
		free(rc);
	}
	log_rec_end(&r);
	log_rec_uint(&r, NULL, "recipients_count", 3, NULL);
	log_rec_checks(&r, " checks=[", "checks", notes ? notes : "", "]");
	log_rec_str(&r, " result: ", "result_text", msg, LOG_REC_VERBATIM, "");
	log_rec_object_begin(&r, "nested");
	log_rec_array_begin(&r, "a");
	log_rec_object_begin(&r, NULL);
	log_rec_array_begin(&r, "deep");
	log_rec_array_begin(&r, "deeper");   /* over LOG_REC_DEPTH: left out */
	log_rec_null(&r, NULL);
	log_rec_end(&r);
	log_rec_end(&r);
	log_rec_end(&r);
	log_rec_end(&r);
	log_rec_end(&r);
	REQUIRE(r.depth == 0 && r.skip == 0);
	REQUIRE(r.text_len < sizeof text && strlen(text) == r.text_len);
	if (jcap > 0)
		REQUIRE(strlen(json) < jcap);

	n = json_envelope(line, sizeof line, "2026-01-02T03:04:05.678Z", "info", 1, "summary",
	    "0123456789AB", text, jcap > 0 ? json : NULL, r.json_cut);
	REQUIRE(n > 0 && n < sizeof line);
	REQUIRE(jc_log_line(line, n));
	if (helo)
		check_value(line, n, "helo", helo);
	if (sender)
		check_value(line, n, "sender", sender);
	/* under a smaller cap (a syslog line's) members are left out whole:
	 * still exactly one object, within the cap */
	size_t small = 256 + (size_t)data[1] * 32;
	n = json_envelope(line, small, "2026-01-02T03:04:05.678Z", "info", 1, "summary",
	    "0123456789AB", text, jcap > 0 ? json : NULL, r.json_cut);
	REQUIRE(n > 0 && n < small);
	REQUIRE(jc_log_line(line, n));
	if (helo)
		check_value(line, n, "helo", helo);

	/* event names from any format text */
	log_event_name(helo ? helo : "", event, sizeof event);
	REQUIRE(strlen(event) > 0 && strlen(event) <= 40);
	for (const char *p = event; *p; p++)
		REQUIRE((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');

	free(helo);
	free(sender);
	free(notes);
	free(msg);
	free(json);
	return 0;
}

/*
 * fuzz_report_reader - the log reader of `backstop report`
 * (proxy/report_reader.c) and its tables (proxy/report_agg.c) on hostile
 * log text.
 *
 * Input: log text; each line (split on '\n') is parsed, and each record
 * counted into one aggregate kept over the run's lines. Also the whole
 * input as one line, and as a time for report_parse_time.
 * Invariants: no read past a line (each is a separate allocation under
 * ASan); every field of a record is NUL-terminated within its buffer and
 * holds no NUL before it (strnlen < size), url hosts never more than kept;
 * the tables never hold more than 3/4 of their capacity; the sorted views
 * count every used entry.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/report_agg.h"
#include "proxy/report_reader.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)
#define TERMINATED(f) REQUIRE(strnlen((f), sizeof(f)) < sizeof(f))

static void check_event(const struct report_event *ev)
{
	TERMINATED(ev->server_ip);
	TERMINATED(ev->server_name);
	TERMINATED(ev->rcpt);
	TERMINATED(ev->cls);
	TERMINATED(ev->orig_sender);
	TERMINATED(ev->orig_client_ip);
	TERMINATED(ev->subject);
	TERMINATED(ev->message_id);
	REQUIRE(ev->nurl_hosts <= REPORT_URL_HOSTS);
	for (size_t i = 0; i < ev->nurl_hosts; i++) {
		TERMINATED(ev->url_hosts[i]);
		REQUIRE(ev->url_hosts[i][0] != '\0');
	}
}

static void one_line(struct report_agg *a, const uint8_t *data, size_t len)
{
	struct report_event ev;
	char *copy = malloc(len ? len : 1);

	REQUIRE(copy != NULL);
	memcpy(copy, data, len);
	if (report_parse_line(copy, len, &ev) == REPORT_LINE_RECORD) {
		check_event(&ev);
		report_agg_add(a, &ev);
	}
	free(copy);
}

static void check_table(const struct report_table *t)
{
	size_t n;
	struct report_entry **v = report_sorted(t, &n);

	REQUIRE(t->used <= t->cap / 4 * 3);
	REQUIRE(v != NULL && n == t->used);
	for (size_t i = 1; i < n; i++)
		REQUIRE(v[i - 1]->count >= v[i]->count);
	free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct report_agg *a;
	long long t;

	if (a == NULL && (a = report_agg_new()) == NULL)
		abort();
	size_t start = 0;
	for (size_t i = 0; i <= size; i++) {
		if (i == size || data[i] == '\n') {
			one_line(a, data + start, i - start);
			start = i + 1;
		}
	}
	one_line(a, data, size);
	char *copy = malloc(size ? size : 1);
	REQUIRE(copy != NULL);
	memcpy(copy, data, size);
	(void)report_parse_time(copy, size, &t);
	free(copy);
	check_table(&a->runs);
	check_table(&a->zombies);
	check_table(&a->servers);
	REQUIRE(a->hours_used <= a->hours_cap / 4 * 3);
	return 0;
}

/*
 * test_metrics - the counters' arithmetic and the Prometheus text: which
 * check a reply is counted under, histogram buckets (cumulative, +Inf ==
 * count, sum), the backend's failures in a row, every sample line's syntax
 * (# HELP and # TYPE before a family's samples, counters end in _total),
 * and a text that does not fit its limit.
 */
#include <ctype.h>

#include "proxy/metrics.h"
#include "tests/unit/check.h"

/* sample - the value of the line "name value" in text, or -1 */
static long long sample(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return atoll(p + n + 1);
	}
	return -1;
}

/* well_formed - every line a comment (# HELP / # TYPE of the family that
 * follows) or a sample of the last TYPE'd family */
static int well_formed(const char *text)
{
	char family[128] = "", type[16] = "";
	int bad = 0;

	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char line[512];
		if (e == NULL || len >= sizeof line)
			return -1;   /* every line ends with LF */
		memcpy(line, p, len);
		line[len] = '\0';
		p = e + 1;
		if (strncmp(line, "# HELP ", 7) == 0) {
			if (sscanf(line + 7, "%127s", family) != 1)
				bad++;
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			char fam[128];
			if (sscanf(line + 7, "%127s %15s", fam, type) != 2 || strcmp(fam, family) != 0)
				bad++;
			if (strcmp(type, "counter") == 0 &&
			    (strlen(fam) < 6 || strcmp(fam + strlen(fam) - 6, "_total") != 0))
				bad++;
			continue;
		}
		/* a sample: family[_bucket|_sum|_count]{...} value */
		size_t fl = strlen(family);
		if (fl == 0 || strncmp(line, family, fl) != 0) {
			fprintf(stderr, "sample outside its family (%s): %s\n", family, line);
			bad++;
			continue;
		}
		const char *rest = line + fl;
		if (strcmp(type, "histogram") == 0) {
			if (!strncmp(rest, "_bucket{le=\"", 12))
				rest = strchr(rest, '}') + 1;
			else if (!strncmp(rest, "_sum", 4))
				rest += 4;
			else if (!strncmp(rest, "_count", 6))
				rest += 6;
		} else if (*rest == '{') {
			const char *close = strchr(rest, '}');
			if (close == NULL)
				bad++;
			else
				rest = close + 1;
		}
		if (*rest != ' ' || !(isdigit((unsigned char)rest[1]))) {
			fprintf(stderr, "bad sample: %s\n", line);
			bad++;
		}
	}
	return bad;
}

int main(void)
{
	static struct metrics m;
	struct metrics_gauges g;
	struct buf b = {0};

	/* classification */
	CHECK_INT(metrics_check_of_reply(500, "5.5.2"), METRICS_CHECK_PROTOCOL);
	CHECK_INT(metrics_check_of_reply(554, "5.5.1"), METRICS_CHECK_PROTOCOL);
	CHECK_INT(metrics_check_of_reply(501, NULL), METRICS_CHECK_PROTOCOL);
	CHECK_INT(metrics_check_of_reply(552, "5.3.4"), METRICS_CHECK_SIZE);
	CHECK_INT(metrics_check_of_reply(552, NULL), METRICS_CHECK_SIZE);
	CHECK_INT(metrics_check_of_reply(451, "4.4.1"), METRICS_CHECK_BACKEND);
	CHECK_INT(metrics_check_of_reply(550, "5.7.1"), METRICS_CHECK_OTHER);
	CHECK_INT(metrics_check_of_reply(452, "4.3.1"), METRICS_CHECK_OTHER);
	CHECK_INT(metrics_check_of_reply(550, ""), METRICS_CHECK_OTHER);
	CHECK_INT(metrics_check_of_filter("batv"), METRICS_CHECK_BATV);
	CHECK_INT(metrics_check_of_filter("helo"), METRICS_CHECK_HELO);
	CHECK_INT(metrics_check_of_filter("dmarc"), METRICS_CHECK_DMARC);
	CHECK_INT(metrics_check_of_filter("dnsbl"), METRICS_CHECK_DNSBL);
	CHECK_INT(metrics_check_of_filter("bounce"), METRICS_CHECK_BOUNCE);
	CHECK_INT(metrics_check_of_filter("joejob"), METRICS_CHECK_JOEJOB);
	CHECK_INT(metrics_check_of_filter("newcheck"), METRICS_CHECK_OTHER);
	CHECK_INT(metrics_check_of_filter(NULL), METRICS_CHECK_OTHER);
	CHECK_INT(metrics_tls_version_of("TLSv1.3"), METRICS_TLS_1_3);
	CHECK_INT(metrics_tls_version_of("SSLv3"), METRICS_TLS_UNKNOWN);
	CHECK_INT(metrics_tls_version_of(""), METRICS_TLS_UNKNOWN);

	/* counting */
	metrics_refusal(&m, METRICS_CHECK_BATV, 553);
	metrics_refusal(&m, METRICS_CHECK_BATV, 451);
	metrics_refusal(&m, METRICS_CHECK_AUTO, 550);   /* unlabelled: other */
	metrics_refusal(&m, METRICS_CHECK_SIZE, 250);   /* not a refusal */
	CHECK_INT(m.refusals[METRICS_CHECK_BATV][1], 1);
	CHECK_INT(m.refusals[METRICS_CHECK_BATV][0], 1);
	CHECK_INT(m.refusals[METRICS_CHECK_OTHER][1], 1);
	CHECK_INT(m.refusals[METRICS_CHECK_SIZE][0] + m.refusals[METRICS_CHECK_SIZE][1], 0);
	/* TCP connects are counted, but do not decide /health */
	metrics_backend_connect(&m, false, false);
	metrics_backend_connect(&m, false, false);
	metrics_backend_connect(&m, true, false);
	metrics_backend_connect(&m, false, true);
	CHECK_INT(m.backend_connect_errors[0], 2);
	CHECK_INT(m.backend_connects[0], 1);
	CHECK_INT(m.backend_failed_in_a_row, 0);
	{
		char why[200];
		/* a backend that accepts TCP and never greets: failures */
		metrics_backend_failed(&m, "greeting", "timed out", false);
		metrics_backend_failed(&m, "greeting", "timed out", false);
		CHECK(metrics_backend_healthy(&m, 3, why, sizeof why));
		metrics_backend_failed(&m, "greeting", "refused the connection", false);
		CHECK(!metrics_backend_healthy(&m, 3, why, sizeof why));
		CHECK(strstr(why, "last 3 connections failed") && strstr(why, "greeting: refused"));
		CHECK(metrics_backend_probe_useful(&m, 3));
		/* a probe that gets through EHLO clears what it can see */
		metrics_backend_probed(&m, true, NULL, NULL);
		CHECK(metrics_backend_healthy(&m, 3, why, sizeof why));
		CHECK_INT(m.backend_failed_in_a_row, 0);
		/* a probe's failure alone is enough (start-up: no history) */
		metrics_backend_probed(&m, false, "connect", "connection refused");
		CHECK(!metrics_backend_healthy(&m, 3, why, sizeof why));
		CHECK(strstr(why, "probe failed") && strstr(why, "connect: connection refused"));
		/* a connection that gets ready clears everything */
		metrics_backend_ready(&m);
		CHECK(metrics_backend_healthy(&m, 3, why, sizeof why));
		/* failures past EHLO (XCLIENT refused): a probe cannot clear
		 * them, even when a later one failed earlier, nor is one tried */
		for (int i = 0; i < 3; i++)
			metrics_backend_failed(&m, "XCLIENT", "refused the connection", true);
		metrics_backend_failed(&m, "connect", "unreachable", false);
		CHECK(!metrics_backend_probe_useful(&m, 3));
		metrics_backend_probed(&m, true, NULL, NULL);
		CHECK(!metrics_backend_healthy(&m, 3, why, sizeof why));
		CHECK_INT(m.backend_failed_in_a_row, 4);
		metrics_backend_ready(&m);
		CHECK_INT(m.backend_failed_in_a_row, 0);
		CHECK(!metrics_backend_probe_useful(&m, 3));
		metrics_backend_failed(&m, "EHLO", "timed out", false);
	}
	metrics_backend_connect(&m, false, false);
	metrics_relayed(&m, 1024);        /* on the bound: bucket le=1024 */
	metrics_relayed(&m, 1025);
	metrics_relayed(&m, 100u << 20);  /* over every bound: +Inf only */
	metrics_eod(&m, 3);
	metrics_eod(&m, 250);
	metrics_tls_handshake(&m, "TLSv1.3", true);
	metrics_tls_handshake(&m, "unknown", false);

	memset(&g, 0, sizeof g);
	g.connections = 7;
	g.healthy = true;
	g.dns = true;
	g.dns_answers[4] = 9;
	g.dns_cache = true;
	g.dns_cache_hits = 11;
	g.dns_cache_misses = 4;
	CHECK_INT(metrics_render(&m, &g, &b, 1 << 20), 0);
	CHECK(b.len > 0 && b.data[b.len - 1] == '\n');
	CHECK(buf_append(&b, "", 1, 1 << 21) == 0);   /* NUL for the string helpers */
	CHECK_INT(well_formed(b.data), 0);
	CHECK_INT(sample(b.data, "backstop_connections"), 7);
	CHECK_INT(sample(b.data, "backstop_messages_relayed_total"), 3);
	CHECK_INT(sample(b.data, "backstop_relayed_bytes_total"), 1024 + 1025 + (100 << 20));
	CHECK_INT(sample(b.data, "backstop_refusals_total{check=\"batv\",class=\"5xx\"}"), 1);
	CHECK_INT(sample(b.data, "backstop_refusals_total{check=\"other\",class=\"5xx\"}"), 1);
	CHECK_INT(sample(b.data, "backstop_backend_connect_errors_total{target=\"backend\"}"), 3);
	CHECK_INT(sample(b.data, "backstop_backend_connect_failures_in_a_row"), 1);
	CHECK_INT(sample(b.data, "backstop_backend_connect_errors_total{target=\"relay\"}"), 1);
	CHECK_INT(sample(b.data, "backstop_backend_connects_total{target=\"backend\"}"), 1);
	CHECK_INT(sample(b.data, "backstop_message_size_bytes_bucket{le=\"1024\"}"), 1);
	CHECK_INT(sample(b.data, "backstop_message_size_bytes_bucket{le=\"4096\"}"), 2);
	CHECK_INT(sample(b.data, "backstop_message_size_bytes_bucket{le=\"16777216\"}"), 2);
	CHECK_INT(sample(b.data, "backstop_message_size_bytes_bucket{le=\"+Inf\"}"), 3);
	CHECK_INT(sample(b.data, "backstop_message_size_bytes_count"), 3);
	CHECK_INT(sample(b.data, "backstop_end_of_data_seconds_bucket{le=\"0.005\"}"), 1);
	CHECK_INT(sample(b.data, "backstop_end_of_data_seconds_bucket{le=\"0.1\"}"), 1);
	CHECK_INT(sample(b.data, "backstop_end_of_data_seconds_bucket{le=\"0.25\"}"), 2);
	CHECK_INT(sample(b.data, "backstop_end_of_data_seconds_count"), 2);
	CHECK(strstr(b.data, "backstop_end_of_data_seconds_sum 0.253\n") != NULL);
	CHECK_INT(sample(b.data, "backstop_tls_handshakes_total{version=\"TLSv1.3\"}"), 1);
	CHECK_INT(sample(b.data, "backstop_tls_handshake_failures_total{version=\"unknown\"}"), 1);
	CHECK_INT(sample(b.data, "backstop_dns_answers_total{result=\"timeout\"}"), 9);
	CHECK_INT(sample(b.data, "backstop_dns_cache_hits_total"), 11);
	CHECK_INT(sample(b.data, "backstop_dns_cache_misses_total"), 4);
	CHECK_INT(sample(b.data, "backstop_healthy"), 1);

	/* without the resolver: no DNS family at all */
	g.dns = false;
	g.dns_cache = false;
	b.len = 0;
	CHECK_INT(metrics_render(&m, &g, &b, 1 << 20), 0);
	CHECK(buf_append(&b, "", 1, 1 << 21) == 0);
	CHECK(strstr(b.data, "dns_") == NULL);
	/* a limit it does not fit in */
	b.len = 0;
	CHECK_INT(metrics_render(&m, &g, &b, 1000), -1);
	CHECK(b.len <= 1000);
	buf_free(&b);
	return check_finish("test_metrics");
}

/*
 * report - `backstop report [--format F] [--since T] [--until T] [--top N]
 * [--min-servers N] LOG...`: each file is read once, line by line (report_reader), the
 * bounce_refused records counted (report_agg: fixed tables), and the
 * counts written (report_out). Memory does not grow with the logs: a
 * line buffer and the tables.
 */
#include "proxy/report.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/report_agg.h"
#include "proxy/report_out.h"
#include "proxy/report_reader.h"

static void usage(FILE *out)
{
	fputs("usage: backstop report [--format text|csv|rbldnsd|html] [--since TIME] [--until TIME]\n"
	    "                       [--top N] [--min-servers N] LOG...\n"
	    "  LOG: a backstop log with [log] format = json (syslog prefixes are skipped), - for\n"
	    "  standard input. TIME: 2026-12-07, 2026-12-07T03:00, 2026-12-07T03:00:00Z (UTC)\n"
	    "  or @UNIXSECONDS; --since is inclusive, --until exclusive. --top: rows per table\n"
	    "  in text and html (default 50). --min-servers: a zombie is listed (the rbldnsd\n"
	    "  zone) when bouncing servers in N distinct /24 (IPv6 /48) networks named it\n"
	    "  (1 to 8, default 2).\n", out);
}

static int read_file(const char *path, struct report_reader *r, struct report_agg *a,
    struct report_stats *st)
{
	struct report_event ev;
	const char *line;
	size_t len;
	int rc = 0;

	report_reader_reset(r, strcmp(path, "-") == 0 ? stdin : fopen(path, "r"));
	if (r->f == NULL) {
		fprintf(stderr, "backstop report: cannot read %s: %s\n", path, strerror(errno));
		return 1;
	}
	while (report_reader_next(r, &line, &len)) {
		switch (report_parse_line(line, len, &ev)) {
		case REPORT_LINE_RECORD:
			if ((st->since >= 0 && (ev.ts < 0 || ev.ts < st->since)) ||
			    (st->until >= 0 && (ev.ts < 0 || ev.ts >= st->until))) {
				st->outside++;
				break;
			}
			report_agg_add(a, &ev);
			break;
		case REPORT_LINE_OTHER:
			st->other++;
			break;
		case REPORT_LINE_MALFORMED:
			if (len > 0)
				st->malformed++;
			break;
		}
	}
	if (ferror(r->f)) {
		fprintf(stderr, "backstop report: error reading %s: %s\n", path, strerror(errno));
		rc = 1;
	}
	if (r->f != stdin)
		fclose(r->f);
	return rc;
}

int report_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'F'},
		{"since", required_argument, NULL, 's'},
		{"until", required_argument, NULL, 'u'},
		{"top", required_argument, NULL, 'n'},
		{"min-servers", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct report_stats st = {.since = -1, .until = -1, .top = 50, .min_servers = 2};
	unsigned long v;
	const char *format = "text";
	struct report_reader *r;
	struct report_agg *a;
	int opt, rc = 0;
	char *end;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'F':
			format = optarg;
			if (strcmp(format, "text") && strcmp(format, "csv") && strcmp(format, "rbldnsd") &&
			    strcmp(format, "html")) {
				fprintf(stderr, "backstop report: --format %s: use text, csv, rbldnsd or html\n",
				    optarg);
				return 2;
			}
			break;
		case 's':
		case 'u':
			if (!report_parse_time(optarg, strlen(optarg), opt == 's' ? &st.since : &st.until)) {
				fprintf(stderr, "backstop report: --%s %s: not a time; write 2026-12-07, "
				    "2026-12-07T03:00, 2026-12-07T03:00:00Z (UTC) or @UNIXSECONDS\n",
				    opt == 's' ? "since" : "until", optarg);
				return 2;
			}
			break;
		case 'n':
			errno = 0;
			st.top = (size_t)strtoul(optarg, &end, 10);
			if (errno || *end || optarg[0] == '-' || optarg[0] == '\0') {
				fprintf(stderr, "backstop report: --top %s: not a number\n", optarg);
				return 2;
			}
			break;
		case 'm':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || optarg[0] < '0' || optarg[0] > '9' || v < 1 ||
			    v > REPORT_SERVER_NETS) {
				fprintf(stderr, "backstop report: --min-servers %s: write a number from 1 to %d "
				    "(bouncing servers in distinct networks that must name a zombie)\n",
				    optarg, REPORT_SERVER_NETS);
				return 2;
			}
			st.min_servers = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "backstop report: name the log files to read (- for standard input)\n");
		usage(stderr);
		return 2;
	}
	r = malloc(sizeof *r);
	a = report_agg_new();
	if (r == NULL || a == NULL) {
		fprintf(stderr, "backstop report: out of memory\n");
		free(r);
		report_agg_free(a);
		return 1;
	}
	memset(r, 0, sizeof *r);
	for (int i = optind; i < argc; i++)
		rc |= read_file(argv[i], r, a, &st);
	st.lines = r->lines;
	st.long_lines = r->long_lines;
	if (strcmp(format, "csv") == 0)
		report_write_csv(stdout, a, &st);
	else if (strcmp(format, "rbldnsd") == 0)
		report_write_rbldnsd(stdout, a, &st);
	else if (strcmp(format, "html") == 0)
		report_write_html(stdout, a, &st);
	else
		report_write_text(stdout, a, &st);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "backstop report: error writing the report: %s\n", strerror(errno));
		rc = 1;
	}
	free(r);
	report_agg_free(a);
	return rc;
}

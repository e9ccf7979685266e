/*
 * report_out - the writers of `backstop report`: text (people), csv
 * (spreadsheets), rbldnsd (an ip4set zone of the zombie addresses) and
 * html (one page, inline SVG chart, no script). Every string in the
 * aggregate came from a hostile log: each writer escapes for its format
 * (terminal controls, CSV quoting and formula prefixes, HTML entities;
 * the zone takes only what parses as an address).
 */
#ifndef REPORT_OUT_H
#define REPORT_OUT_H

#include <stdio.h>

#include "proxy/report_agg.h"

struct report_stats {
	unsigned long long lines, other, malformed, long_lines, outside;   /* outside: --since/--until */
	long long since, until;     /* -1 = not given */
	size_t top;                 /* rows per table in text and html */
	unsigned min_servers;       /* a zombie is listed (the rbldnsd zone, "listed"
	                               elsewhere) when this many bouncing servers'
	                               networks named it: report_zombie_listed */
};

void report_write_text(FILE *out, const struct report_agg *a, const struct report_stats *st);
void report_write_csv(FILE *out, const struct report_agg *a, const struct report_stats *st);
void report_write_rbldnsd(FILE *out, const struct report_agg *a, const struct report_stats *st);
void report_write_html(FILE *out, const struct report_agg *a, const struct report_stats *st);

#endif

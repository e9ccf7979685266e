/*
 * report_out - see report_out.h.
 */
#define _DEFAULT_SOURCE
#include "proxy/report_out.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHART_BARS_MAX 744   /* 31 days of hours; a longer span groups hours per bar */

static const char *when(long long t, char *buf, size_t cap)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t < 0 || gmtime_r(&tt, &tm) == NULL) {
		snprintf(buf, cap, "-");
		return buf;
	}
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* put_term - s for a terminal: C0 and C1 controls, DEL and '\\' as \xHH
 * (a log value must not move the cursor or retitle the window) */
static void put_term(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			fprintf(out, "\\x%02x", *p);
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			fprintf(out, "\\x%02x\\x%02x", p[0], p[1]), p++;
		else
			fputc(*p, out);
	}
}

/* text_table - min_servers > 0: t is the zombies, with their servers'
 * count and whether they are listed */
static void text_table(FILE *out, const struct report_table *t, const char *title,
    const char *extra_title, size_t top, unsigned min_servers)
{
	size_t n;
	struct report_entry **v = report_sorted(t, &n);
	char f[32], l[32];

	fprintf(out, "\n%s: %zu", title, n);
	if (t->untracked)
		fprintf(out, " (table full: %llu records not counted here)", t->untracked);
	if (min_servers > 0)
		fprintf(out, "\n%8s  %7s  %-6s  %-20s  %-20s  %s\n", "count", "servers", "listed", "first",
		    "last", extra_title);
	else
		fprintf(out, "\n%8s  %-20s  %-20s  %s\n", "count", "first", "last", extra_title);
	if (v == NULL) {
		fprintf(out, "  (out of memory)\n");
		return;
	}
	for (size_t i = 0; i < n && i < top; i++) {
		fprintf(out, "%8llu  ", v[i]->count);
		if (min_servers > 0)
			fprintf(out, "%7u  %-6s  ", v[i]->nservers,
			    report_zombie_listed(v[i], min_servers) ? "yes" : "-");
		fprintf(out, "%-20s  %-20s  ", when(v[i]->first, f, sizeof f), when(v[i]->last, l, sizeof l));
		put_term(out, v[i]->key[0] ? v[i]->key : "(none)");
		if (v[i]->extra[0]) {
			fputs("  ", out);
			put_term(out, v[i]->extra);
		}
		fputc('\n', out);
	}
	if (n > top)
		fprintf(out, "  ... %zu more (--top)\n", n - top);
	free(v);
}

static void header_lines(FILE *out, const struct report_agg *a, const struct report_stats *st,
    const char *prefix)
{
	char f[32], l[32];

	fprintf(out, "%srefused bounces: %llu, first %s, last %s", prefix, a->records,
	    when(a->first, f, sizeof f), when(a->last, l, sizeof l));
	if (a->no_time)
		fprintf(out, " (%llu without a time)", a->no_time);
	if (a->bad_addresses)
		fprintf(out, "; %llu with a client address that is none", a->bad_addresses);
	fprintf(out, "\n%slines read: %llu; other events: %llu; malformed: %llu; too long: %llu",
	    prefix, st->lines, st->other, st->malformed, st->long_lines);
	if (st->since >= 0 || st->until >= 0)
		fprintf(out, "; outside --since/--until: %llu", st->outside);
	fputc('\n', out);
}

void report_write_text(FILE *out, const struct report_agg *a, const struct report_stats *st)
{
	header_lines(out, a, st, "");
	text_table(out, &a->runs, "Runs (subject, first URL host)", "subject  URL host", st->top, 0);
	fprintf(out, "\nZombies are listed (rbldnsd) when bouncing servers in %u networks (/24, /48) "
	    "named them (--min-servers)", st->min_servers);
	text_table(out, &a->zombies, "Zombies (the client the bouncing site's entry MTA saw)",
	    "address", st->top, st->min_servers);
	text_table(out, &a->servers, "Bouncing servers", "address  name", st->top, 0);
}

/* csv_field - RFC 4180 quoting; a value a spreadsheet would take for a
 * formula (= + - @, tab, CR first) gets a leading apostrophe */
static void csv_field(FILE *out, const char *s)
{
	fputc('"', out);
	if (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r')
		fputc('\'', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

/* csv_table - min_servers > 0: t is the zombies (servers and listed
 * filled in; empty in the other sections) */
static void csv_table(FILE *out, const struct report_table *t, const char *section,
    unsigned min_servers)
{
	size_t n;
	struct report_entry **v = report_sorted(t, &n);
	char f[32], l[32];

	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "%s,%llu,%s,%s,", section, v[i]->count, when(v[i]->first, f, sizeof f),
		    when(v[i]->last, l, sizeof l));
		csv_field(out, v[i]->key);
		fputc(',', out);
		csv_field(out, v[i]->extra);
		if (min_servers > 0)
			fprintf(out, ",%u,%s\r\n", v[i]->nservers,
			    report_zombie_listed(v[i], min_servers) ? "yes" : "no");
		else
			fputs(",,\r\n", out);
	}
	free(v);
}

void report_write_csv(FILE *out, const struct report_agg *a, const struct report_stats *st)
{
	size_t n;
	struct report_hour *h = report_hours_sorted(a, &n);
	char f[32], l[32];

	/* one table: section says what a row is; key and extra as in
	 * report_agg.h; servers and listed for zombies only */
	fputs("section,count,first_seen,last_seen,key,extra,servers,listed\r\n", out);
	csv_table(out, &a->runs, "run", 0);
	csv_table(out, &a->zombies, "zombie", st->min_servers);
	csv_table(out, &a->servers, "server", 0);
	for (size_t i = 0; h != NULL && i < n; i++)
		fprintf(out, "hour,%llu,%s,%s,,,,\r\n", h[i].count, when(h[i].hour * 3600, f, sizeof f),
		    when(h[i].hour * 3600 + 3599, l, sizeof l));
	free(h);
}

void report_write_rbldnsd(FILE *out, const struct report_agg *a, const struct report_stats *st)
{
	size_t n;
	struct report_entry **v = report_sorted(&a->zombies, &n);
	char f[32], l[32], canon[INET6_ADDRSTRLEN];
	unsigned char bin[16];

	size_t unlisted = 0;

	for (size_t i = 0; v != NULL && i < n; i++)
		unlisted += !report_zombie_listed(v[i], st->min_servers);
	fprintf(out, "# backstop report: the clients that sent the originals of refused bounces\n"
	    "# (spam that forged our addresses) as the bouncing sites' entry MTAs saw them,\n"
	    "# %s to %s; advisory: an address is listed only when bouncing servers in\n"
	    "# %u distinct networks (/24, /48) named it (--min-servers); %zu named by fewer\n"
	    "# an rbldnsd ip4set dataset: rbldnsd ... zone:ip4set:this-file\n",
	    when(a->first, f, sizeof f), when(a->last, l, sizeof l), st->min_servers, unlisted);
	if (a->zombies.untracked)
		fprintf(out, "# table full: %llu records of further addresses not listed\n",
		    a->zombies.untracked);
	fputs(":127.0.0.2:Sent spam forging our addresses, see backstop report\n", out);
	for (size_t i = 0; v != NULL && i < n; i++) {
		if (!report_zombie_listed(v[i], st->min_servers))
			continue;   /* one fake bounce, or one site's word: not enough */
		/* only what parses as an address reaches the zone, written in
		 * its canonical form: the value came from a hostile log */
		if (inet_pton(AF_INET, v[i]->key, bin) == 1) {
			inet_ntop(AF_INET, bin, canon, sizeof canon);
			fprintf(out, "%s :127.0.0.2:%llu refused bounces from %u servers, last %s\n", canon,
			    v[i]->count, v[i]->nservers, when(v[i]->last, l, sizeof l));
		} else if (inet_pton(AF_INET6, v[i]->key, bin) == 1) {
			inet_ntop(AF_INET6, bin, canon, sizeof canon);
			fprintf(out, "# IPv6 (an ip6trie dataset): %s %llu\n", canon, v[i]->count);
		}
	}
	free(v);
}

/* put_html - s as HTML text or attribute value */
static void put_html(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&#39;", out); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fputs("&#xfffd;", out);
			else
				fputc(*p, out);
		}
	}
}

/* html_table - min_servers > 0: t is the zombies (servers and listed
 * columns) */
static void html_table(FILE *out, const struct report_table *t, const char *id, const char *title,
    const char *key_title, const char *extra_title, size_t top, unsigned min_servers)
{
	size_t n;
	struct report_entry **v = report_sorted(t, &n);
	char f[32], l[32];

	fprintf(out, "<h2>%s (%zu)</h2>\n", title, n);
	if (t->untracked)
		fprintf(out, "<p>Table full: %llu records not counted here.</p>\n", t->untracked);
	fprintf(out, "<table id=\"%s\"><thead><tr><th>count</th>%s<th>first</th><th>last</th>"
	    "<th>%s</th>", id, min_servers > 0 ? "<th>servers</th><th>listed</th>" : "", key_title);
	if (extra_title)
		fprintf(out, "<th>%s</th>", extra_title);
	fputs("</tr></thead><tbody>\n", out);
	for (size_t i = 0; v != NULL && i < n && i < top; i++) {
		fprintf(out, "<tr><td>%llu</td>", v[i]->count);
		if (min_servers > 0)
			fprintf(out, "<td>%u</td><td>%s</td>", v[i]->nservers,
			    report_zombie_listed(v[i], min_servers) ? "yes" : "no");
		fprintf(out, "<td>%s</td><td>%s</td><td>", when(v[i]->first, f, sizeof f),
		    when(v[i]->last, l, sizeof l));
		put_html(out, v[i]->key);
		fputs("</td>", out);
		if (extra_title) {
			fputs("<td>", out);
			put_html(out, v[i]->extra);
			fputs("</td>", out);
		}
		fputs("</tr>\n", out);
	}
	fputs("</tbody></table>\n", out);
	if (v != NULL && n > top)
		fprintf(out, "<p>%zu more not shown (--top).</p>\n", n - top);
	free(v);
}

/* html_chart - refused bounces per hour as an SVG bar chart; a span
 * longer than CHART_BARS_MAX hours groups several hours per bar */
static void html_chart(FILE *out, const struct report_agg *a)
{
	size_t n, nbars;
	struct report_hour *h = report_hours_sorted(a, &n);
	unsigned long long *bars, max = 1;
	long long span, per_bar;
	char f[32], l[32];
	const int height = 200, left = 50, bottom = 20;

	if (h == NULL || n == 0) {
		fputs("<svg id=\"chart\" width=\"400\" height=\"40\" role=\"img\"><text x=\"10\" y=\"25\">"
		    "no refused bounces with a time</text></svg>\n", out);
		free(h);
		return;
	}
	span = h[n - 1].hour - h[0].hour + 1;
	per_bar = (span + CHART_BARS_MAX - 1) / CHART_BARS_MAX;
	nbars = (size_t)((span + per_bar - 1) / per_bar);
	bars = calloc(nbars, sizeof *bars);
	if (bars == NULL) {
		free(h);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		size_t b = (size_t)((h[i].hour - h[0].hour) / per_bar);
		bars[b] += h[i].count;
		if (bars[b] > max)
			max = bars[b];
	}
	int bw = nbars > 200 ? 2 : nbars > 50 ? 6 : 16;
	int width = left + (int)nbars * bw + 10;
	fprintf(out, "<p>Refused bounces per %lld hour%s, %s to %s; the highest bar is %llu.</p>\n",
	    per_bar, per_bar > 1 ? "s" : "", when(h[0].hour * 3600, f, sizeof f),
	    when(h[n - 1].hour * 3600 + 3599, l, sizeof l), max);
	fprintf(out, "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	    "role=\"img\" aria-label=\"refused bounces per hour\">\n", width, height + bottom + 10);
	fprintf(out, "<line x1=\"%d\" y1=\"10\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n", left - 2,
	    left - 2, height + 10);
	fprintf(out, "<text x=\"0\" y=\"20\" font-size=\"11\">%llu</text>"
	    "<text x=\"0\" y=\"%d\" font-size=\"11\">0</text>\n", max, height + 10);
	for (size_t b = 0; b < nbars; b++) {
		if (bars[b] == 0)
			continue;
		int bh = (int)((double)bars[b] * height / (double)max);
		if (bh < 1)
			bh = 1;
		fprintf(out, "<rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
		    "fill=\"#b33\"><title>%s: %llu</title></rect>\n", left + (int)b * bw,
		    height + 10 - bh, bw > 2 ? bw - 1 : bw,
		    bh, when((h[0].hour + (long long)b * per_bar) * 3600, f, sizeof f), bars[b]);
	}
	fprintf(out, "<text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text>\n", left, height + bottom + 5,
	    when(h[0].hour * 3600, f, sizeof f));
	fputs("</svg>\n", out);
	free(bars);
	free(h);
}

void report_write_html(FILE *out, const struct report_agg *a, const struct report_stats *st)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	    /* no script may run, whatever a value holds */
	    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	    "style-src 'unsafe-inline'\">\n"
	    "<title>backstop report: refused bounces</title>\n"
	    "<style>body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse}"
	    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}"
	    "td{max-width:40em;overflow-wrap:anywhere}</style>\n"
	    "</head><body>\n<h1>Refused bounces</h1>\n<pre id=\"summary\">", out);
	/* the summary has no log strings, only numbers and times */
	header_lines(out, a, st, "");
	fputs("</pre>\n<h2>Per hour</h2>\n", out);
	html_chart(out, a);
	html_table(out, &a->runs, "runs", "Runs", "subject", "first URL host", st->top, 0);
	fprintf(out, "<p>Zombies are listed (rbldnsd) when bouncing servers in %u networks (/24, /48) "
	    "named them (--min-servers).</p>\n", st->min_servers);
	html_table(out, &a->zombies, "zombies", "Zombies (the client the bouncing site's entry MTA saw)",
	    "address", NULL, st->top, st->min_servers);
	html_table(out, &a->servers, "servers", "Bouncing servers", "address", "name", st->top, 0);
	fputs("</body></html>\n", out);
}

/*
 * test_bounce_rules_scan - bounce_rule_scan (one pass over a line through
 * the phrase index) gives exactly what bounce_rule_find gives table by
 * table: on phrases at the start, middle and end of a line, cut one byte
 * short, doubled, next to bytes over 0x7f; on pseudo-random lines; for
 * every table mask; and on every line of the sisimai corpus and the
 * ordinary set when the tree has them (71,856 lines when written).
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/bounce_rules.h"
#include "tests/unit/check.h"

#define ALL_TABLES (((1u << RULES_COUNT) - 1) & ~(1u << RULES_SENDER_LOCAL))

static long compared, mismatches;

static unsigned expected(const char *line, unsigned want)
{
	unsigned found = 0;
	for (unsigned t = 0; t < RULES_COUNT; t++)
		if ((want & (1u << t)) && t != RULES_SENDER_LOCAL &&
		    bounce_rule_find((enum bounce_rule_table)t, line))
			found |= 1u << t;
	return found;
}

static void same(const char *line)
{
	static const unsigned masks[] = {ALL_TABLES, 0x1fc0, 0x0040, 0x1000, 0x000f, 0x0aa0, 0};
	for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
		unsigned want = masks[i] & ALL_TABLES;
		unsigned got = bounce_rule_scan(line, want), exp = expected(line, want);
		compared++;
		if (got != exp) {
			if (mismatches++ < 5)
				fprintf(stderr, "mismatch (want %#x): scan %#x, find %#x: \"%s\"\n", want, got, exp,
				    line);
		}
	}
}

static void test_phrases(void)
{
	static const char *const phrases[] = {"out of office", "this is a copy of the message",
	    "final-recipient:", "tmda", "undelivered mail", "i'm out", "status: 5.",
	    "nicht im b\xc3\xbc" "ro", "auto-reply", "original message follows", "user unknown",
	    "mailbox full", "delivery status notification", "boxbe", "x", "ab", NULL};
	char line[512];

	for (const char *const *p = phrases; *p; p++) {
		size_t n = strlen(*p);
		same(*p);
		snprintf(line, sizeof line, "hello %s world", *p);
		same(line);
		snprintf(line, sizeof line, "trailing %s", *p);
		same(line);
		snprintf(line, sizeof line, "%.*s", (int)(n - 1), *p);       /* cut one short */
		same(line);
		snprintf(line, sizeof line, "x%.*s", (int)(n - 1), *p);
		same(line);
		snprintf(line, sizeof line, "%s%s", *p, *p);
		same(line);
		snprintf(line, sizeof line, "\xff\xfe%s\x80", *p);
		same(line);
	}
	same("");
	same("a");
	same("ab");
	CHECK(bounce_rule_scan("i am out of the office until monday", ALL_TABLES) &
	    (1u << RULES_TEXT_AUTOREPLY));
	CHECK(bounce_rule_scan("nothing to see here", ALL_TABLES) == 0);
	CHECK(bounce_rule_scan("i am out of the office", 0) == 0);
	CHECK(bounce_rule_scan("i am out of the office", 1u << RULES_SENDER_LOCAL) == 0);
}

static void test_random(void)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz  .:-'\xc3\xbc";
	char line[200];
	unsigned long x = 12345;

	for (int i = 0; i < 20000; i++) {
		size_t n = (x >> 7) % (sizeof line - 1);
		for (size_t j = 0; j < n; j++) {
			x = x * 6364136223846793005UL + 1442695040888963407UL;
			line[j] = alphabet[(x >> 33) % (sizeof alphabet - 1)];
		}
		line[n] = '\0';
		same(line);
	}
}

static void lines_of(const char *path)
{
	char line[4096];
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f)) {
		for (char *p = line; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		line[strcspn(line, "\r\n")] = '\0';
		same(line);
	}
	fclose(f);
}

static void files_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		lines_of(path);
	}
	closedir(d);
}

int main(void)
{
	const char *src = getenv("BACKSTOP_SRCDIR");
	char dir[4096];

	test_phrases();
	test_random();
	if (src == NULL)
		src = ".";
	snprintf(dir, sizeof dir, "%s/tests/data/ordinary", src);
	files_in(dir);
	for (int up = 1; up <= 3; up++) {
		snprintf(dir, sizeof dir, "%s%s/shared/corpora/sisimai-set-of-emails/maildir/bsd", src,
		    up == 1 ? "/.." : up == 2 ? "/../.." : "/../../..");
		files_in(dir);
	}
	printf("%ld comparisons, %ld mismatches\n", compared, mismatches);
	CHECK(compared > 100000);
	CHECK(mismatches == 0);
	return check_finish("test_bounce_rules_scan");
}

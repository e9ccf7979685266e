/*
 * test_bounce_corpus - the bounce classifier against real bounces: every
 * message of sisimai's set-of-emails maildir/bsd (629 bounces of some 70
 * MTAs and services) and maildir/not (not bounces), and our own ordinary
 * messages in tests/data/ordinary. Prints a table per source (the file
 * name's prefix: lhost-postfix, rfc3464, arf, ...) and every miss.
 *
 * Fails under the targets: at least 97% of bsd/ not ordinary, every arf-*
 * ARF, every rfc3834-* an auto-reply, every ordinary message ordinary.
 * The corpus lives outside the source tree (shared/corpora beside it or
 * beside one of its parents, or $BOUNCE_CORPUS): missing, the test fails
 * (99) rather than skips, so that CI cannot pass it by not having the data.
 *
 * The envelope sender is the Return-Path the final MTA recorded, when the
 * file has one, else an ordinary address: the classifier must not need
 * the null sender. The "content" column counts what is found with an
 * ordinary envelope sender for every file (content alone).
 */
#define _DEFAULT_SOURCE
#include <limits.h>
#include <stdbool.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tests/unit/bounce_feed.h"
#include "tests/unit/check.h"

#define MAX_FILES 2048
#define MAX_PREFIX 128

struct row {
	char prefix[64];
	unsigned n, cls[BOUNCE_CLASS_COUNT], orig, msgid, content;
};

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* list - the regular files of dir, sorted; NULL when dir cannot be read. */
static char **list(const char *dir, size_t *count)
{
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char **names = calloc(MAX_FILES, sizeof *names);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < MAX_FILES)
		if (e->d_name[0] != '.')
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof *names, cmp_str);
	*count = n;
	return names;
}

static void classify(const char *path, const char *fallback_sender, struct bounce_result *r,
    size_t chunk)
{
	size_t len, clen;
	char *raw = read_file(path, &len);
	char rp[256];
	int rp_found;
	if (!raw) {
		memset(r, 0, sizeof *r);
		snprintf(r->why, sizeof r->why, "cannot read");
		return;
	}
	char *msg = to_crlf(raw, len, &clen);
	struct bounce_scan *s = bounce_scan_new();
	feed_message(s, msg, clen, chunk, rp, sizeof rp, &rp_found);
	bounce_scan_end(s, fallback_sender ? fallback_sender : rp_found ? rp : "someone@sender.example",
	    r);
	bounce_scan_free(s);
	free(msg);
	free(raw);
}

static void prefix_of(const char *name, char *out, size_t cap)
{
	/* "lhost-postfix-01.eml" -> "lhost-postfix" */
	const char *dash = strrchr(name, '-');
	size_t n = dash ? (size_t)(dash - name) : strlen(name);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, name, n);
	out[n] = '\0';
}

static const char *short_name(enum bounce_class c)
{
	static const char *const n[] = { "ord", "dsn", "ndr", "auto", "chal", "mdn", "arf" };
	return n[c];
}

static int run_bsd(const char *dir, unsigned *total, unsigned *found)
{
	size_t nfiles;
	char **names = list(dir, &nfiles);
	size_t nrows = 0;
	unsigned content_total = 0, orig_total = 0, msgid_total = 0;
	if (!names)
		return -1;
	struct row *rows = calloc(MAX_PREFIX, sizeof *rows);
	printf("%-24s %4s %4s %4s %4s %4s %4s %4s %4s | %4s %5s %7s\n", "source", "n", "dsn", "ndr",
	    "auto", "chal", "mdn", "arf", "ord", "orig", "msgid", "content");
	for (size_t i = 0; i < nfiles; i++) {
		char path[8192], prefix[64];
		struct bounce_result r, rc;
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		classify(path, NULL, &r, 977);
		classify(path, "someone@sender.example", &rc, 0);
		prefix_of(names[i], prefix, sizeof prefix);
		size_t k;
		for (k = 0; k < nrows && strcmp(rows[k].prefix, prefix) != 0; k++)
			;
		if (k == nrows && nrows < MAX_PREFIX)
			strcpy(rows[nrows++].prefix, prefix);
		if (k == MAX_PREFIX)
			k = MAX_PREFIX - 1;
		rows[k].n++;
		rows[k].cls[r.cls]++;
		rows[k].orig += r.orig.found;
		rows[k].msgid += r.orig.message_id[0] != '\0';
		rows[k].content += rc.cls != BOUNCE_ORDINARY;
		(*total)++;
		*found += r.cls != BOUNCE_ORDINARY;
		content_total += rc.cls != BOUNCE_ORDINARY;
		orig_total += r.orig.found;
		msgid_total += r.orig.message_id[0] != '\0';
		if (r.cls == BOUNCE_ORDINARY)
			printf("MISS %s: %s\n", names[i], r.why);
		if (strncmp(names[i], "arf-", 4) == 0 && r.cls != BOUNCE_ARF) {
			printf("WRONG %s: %s, not arf (%s)\n", names[i], bounce_class_name(r.cls), r.why);
			check_failed++;
		}
		/* the RFC 5965 reports are well formed ([batv] refuse_at =
		 * content lets them pass): sisimai's are real ones */
		if (strncmp(names[i], "arf-", 4) == 0 && strstr(r.why, "multipart/report") &&
		    !r.well_formed) {
			printf("WRONG %s: arf, not well formed (%s)\n", names[i], r.why);
			check_failed++;
		}
		if (strncmp(names[i], "rfc3834-", 8) == 0 && r.cls != BOUNCE_AUTOREPLY) {
			printf("WRONG %s: %s, not autoreply (%s)\n", names[i], bounce_class_name(r.cls), r.why);
			check_failed++;
		}
		if (getenv("BOUNCE_VERBOSE"))
			printf("  %s: %s (%s) orig=%d mid=%s rp=%s from=%s hops=%zu\n", names[i],
			    bounce_class_name(r.cls), r.why, r.orig.found, r.orig.message_id,
			    r.orig.return_path, r.orig.from, r.orig.nhops);
		free(names[i]);
	}
	for (size_t k = 0; k < nrows; k++) {
		struct row *w = &rows[k];
		printf("%-24s %4u", w->prefix, w->n);
		for (unsigned c = 1; c < BOUNCE_CLASS_COUNT; c++)
			printf(" %4u", w->cls[c]);
		printf(" %4u | %4u %5u %7u\n", w->cls[0], w->orig, w->msgid, w->content);
	}
	printf("bsd: %u of %u not ordinary (%.1f%%), content alone %u, original found %u, "
	    "message-id %u\n", *found, *total, 100.0 * *found / (*total ? *total : 1), content_total,
	    orig_total, msgid_total);
	(void)short_name;
	free(names);
	free(rows);
	return 0;
}

/* Files of maildir/not that are bounces all the same: sisimai keeps
 * rb-issue-368-bug.eml there as a regression case of its parser (a bounce
 * it cannot take apart), but it is one by every signal the brief names:
 * Return-Path <>, From postmaster@, Auto-Submitted: auto-replied, "This
 * message is to inform you that an email you sent was rejected ... reject
 * reason: Mailbox full", and a copy of the original. Classing it ordinary
 * would take rules written to miss it. */
static const struct { const char *name; enum bounce_class cls; } not_exceptions[] = {
	{ "rb-issue-368-bug.eml", BOUNCE_NDR },
};

static enum bounce_class expected_in_not(const char *name)
{
	for (size_t i = 0; i < sizeof not_exceptions / sizeof not_exceptions[0]; i++)
		if (strcmp(name, not_exceptions[i].name) == 0)
			return not_exceptions[i].cls;
	return BOUNCE_ORDINARY;
}

/* run_ordinary - every file of dir must come out ordinary (but for the
 * exceptions above), whatever the chunk size. */
static int run_ordinary(const char *dir, unsigned *count)
{
	size_t nfiles;
	char **names = list(dir, &nfiles);
	if (!names)
		return -1;
	for (size_t i = 0; i < nfiles; i++) {
		char path[8192];
		struct bounce_result r;
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		for (size_t chunk = 0; chunk < 3; chunk++) {
			classify(path, NULL, &r, chunk == 0 ? 0 : chunk == 1 ? 1 : 61);
			enum bounce_class want = expected_in_not(names[i]);
			if (r.cls != want)
				printf("WRONG %s: %s (%s)\n", names[i], bounce_class_name(r.cls), r.why);
			else if (want != BOUNCE_ORDINARY && chunk == 0)
				printf("EXCEPTION %s: %s as expected (%s)\n", names[i],
				    bounce_class_name(r.cls), r.why);
			CHECK_INT(r.cls, want);
		}
		(*count)++;
		free(names[i]);
	}
	free(names);
	return 0;
}

#define CORPUS_TAIL "sisimai-set-of-emails/maildir"

/* find_corpus - shared/corpora/<tail> beside the source tree or beside one
 * of its ancestors: ../shared from /work/main, ../../shared from a worktree
 * /work/wt/x or from distcheck's unpacked /work/main/backstop-x.y. */
static bool find_corpus(const char *srcdir, char *out, size_t cap)
{
	char dir[1024], probe[1400];
	if (!realpath(srcdir, dir))
		return false;
	for (int up = 0; up < 6; up++) {
		char *slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			return false;
		*slash = '\0';    /* the parent: <parent>/shared is beside the tree */
		snprintf(probe, sizeof probe, "%s/shared/corpora/%s/bsd", dir, CORPUS_TAIL);
		if (access(probe, R_OK) == 0) {
			snprintf(out, cap, "%s/shared/corpora/%s", dir, CORPUS_TAIL);
			return true;
		}
	}
	return false;
}

int main(void)
{
	const char *srcdir = getenv("srcdir") ? getenv("srcdir") : ".";
	const char *corpus = getenv("BOUNCE_CORPUS");
	char base[2048], dir[4096];
	unsigned total = 0, found = 0, ordinary = 0;

	if (corpus)
		snprintf(base, sizeof base, "%s", corpus);
	else if (!find_corpus(srcdir, base, sizeof base))
		snprintf(base, sizeof base, "%s/../shared/corpora/%s", srcdir, CORPUS_TAIL);
	snprintf(dir, sizeof dir, "%s/bsd", base);
	if (run_bsd(dir, &total, &found) < 0 || total < 600) {
		fprintf(stderr, "test_bounce_corpus: the sisimai corpus is missing at %s: put "
		    "sisimai's set-of-emails at ../shared/corpora (beside the source tree) or set "
		    "BOUNCE_CORPUS to its maildir directory\n", dir);
		return check_error("test_bounce_corpus", "corpus missing");
	}
	/* at least 97% classified as something other than ordinary */
	CHECK(found * 100 >= total * 97);

	snprintf(dir, sizeof dir, "%s/not", base);
	if (run_ordinary(dir, &ordinary) < 0 || ordinary == 0)
		return check_error("test_bounce_corpus", "maildir/not missing");
	snprintf(dir, sizeof dir, "%s/tests/data/ordinary", srcdir);
	unsigned own = 0;
	if (run_ordinary(dir, &own) < 0 || own < 12)
		return check_error("test_bounce_corpus", "tests/data/ordinary missing or under 12 messages");
	printf("ordinary: %u of sisimai's not/, %u of tests/data/ordinary\n", ordinary, own);
	return check_finish("test_bounce_corpus");
}

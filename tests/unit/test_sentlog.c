/*
 * test_sentlog - the sent (Message-ID, sender) log: add/contains, an id
 * vouching only for its sender, rotation across
 * days (the clock is a parameter), the state file's round trip, files that
 * must be ignored (damaged, cut, foreign, another key or geometry, not a
 * file, a FIFO that must not block), and the false-positive rate measured on 1M random ids against
 * the rate the geometry predicts.
 */
#define _POSIX_C_SOURCE 200809L   /* mkdtemp */

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filters/sentlog.h"
#include "tests/unit/check.h"

#define DAY0 ((time_t)20429 * 86400 + 43200)   /* noon of a day */
#define DAYS(n) ((time_t)(n) * 86400)

/* the sender every test id is added and asked with */
#define S "prvs=1234abcdef=user@example.org"

static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char key2[32] = "another key, 32 bytes long......";
static char dir[64];
static char path[128];

static struct sentlog *open_log(const unsigned char *k, unsigned days, size_t per_day)
{
	char err[256];
	struct sentlog *l = sentlog_open(dir, k, 32, days, per_day, err, sizeof err);
	if (l == NULL) {
		fprintf(stderr, "sentlog_open: %s\n", err);
		exit(99);
	}
	return l;
}

static void test_params(void)
{
	char err[256];

	CHECK(sentlog_open(NULL, key, 8, 30, 1000, err, sizeof err) == NULL);
	CHECK(strstr(err, "key") != NULL);
	CHECK(sentlog_open(NULL, key, 32, 0, 1000, err, sizeof err) == NULL);
	CHECK(sentlog_open(NULL, key, 32, SENTLOG_REMEMBER_MAX + 1, 1000, err, sizeof err) == NULL);
	CHECK(sentlog_open(NULL, key, 32, 30, 0, err, sizeof err) == NULL);
	CHECK(sentlog_open(NULL, key, 32, 366, SENTLOG_PER_DAY_MAX, err, sizeof err) == NULL);
	CHECK(strstr(err, "MB of memory") != NULL);
}

static void test_geometry(void)
{
	char err[256];
	struct sentlog *l = sentlog_open(NULL, key, 32, 30, 100000, err, sizeof err);

	/* the figures in sentlog.h and backstop.ini */
	CHECK(l != NULL);
	if (l == NULL)
		return;
	CHECK_INT(sentlog_nhashes(l), 15);
	CHECK_INT(sentlog_memory(l), 31 * 269064);
	sentlog_close(l);
}

static void test_add_contains(void)
{
	char err[256];
	struct sentlog *l = sentlog_open(NULL, key, 32, 30, 1000, err, sizeof err);

	CHECK_STR(sentlog_load_note(l), "memory only");
	CHECK(!sentlog_contains(l, "<a@example.org>", S, DAY0));
	CHECK(!sentlog_dirty(l));
	sentlog_add(l, "<a@example.org>", S, DAY0);
	CHECK(sentlog_dirty(l));
	CHECK(sentlog_contains(l, "<a@example.org>", S, DAY0));
	/* the canonical form is the key: folding, blanks, comments */
	CHECK(sentlog_contains(l, "  <a@example.org>\r\n", S, DAY0));
	CHECK(sentlog_contains(l, "(c) <a@example.org>", S, DAY0));
	CHECK(!sentlog_contains(l, "<A@example.org>", S, DAY0));   /* exact id */
	CHECK(!sentlog_contains(l, "<b@example.org>", S, DAY0));
	/* an empty id is never added nor found */
	sentlog_add(l, "", S, DAY0);
	sentlog_add(l, "  ", S, DAY0);
	CHECK(!sentlog_contains(l, "", S, DAY0));
	/* another key: other positions */
	{
		struct sentlog *o = sentlog_open(NULL, key2, 32, 30, 1000, err, sizeof err);
		CHECK(!sentlog_contains(o, "<a@example.org>", S, DAY0));
		sentlog_close(o);
	}
	CHECK_INT(sentlog_flush(l, err, sizeof err), -1);
	CHECK(strstr(err, "state_dir") != NULL);
	CHECK(sentlog_snapshot(l) == NULL);
	sentlog_close(l);
}

/* an entry is a pair: the id vouches for its sender only (a public
 * Message-ID of user@'s must not open user3@'s mailbox); the sender's
 * BATV tag and case do not matter; the null sender is never remembered */
static void test_pairs(void)
{
	char err[256];
	struct sentlog *l = sentlog_open(NULL, key, 32, 30, 1000, err, sizeof err);

	CHECK(l != NULL);
	if (l == NULL)
		return;
	sentlog_add(l, "<pub@example.org>", "prvs=1234abcdef=user@example.org", DAY0);
	CHECK(sentlog_contains(l, "<pub@example.org>", "user@example.org", DAY0));
	CHECK(sentlog_contains(l, "<pub@example.org>", "<USER@Example.ORG>", DAY0));
	CHECK(sentlog_contains(l, "<pub@example.org>", "prvs=9999ffffff=user@example.org", DAY0));
	CHECK(!sentlog_contains(l, "<pub@example.org>", "user3@example.org", DAY0));
	CHECK(!sentlog_contains(l, "<pub@example.org>", "user@example.org.evil", DAY0));
	CHECK(!sentlog_contains(l, "<pub@example.org>", "", DAY0));
	/* the separator: id "<a>" + sender "b@c" is not id "<a>b" + ... */
	CHECK(!sentlog_contains(l, "<pub@example.org>user", "@example.org", DAY0));
	sentlog_add(l, "<null@example.org>", "", DAY0);
	sentlog_add(l, "<null@example.org>", "<>", DAY0);
	CHECK(!sentlog_contains(l, "<null@example.org>", "", DAY0));
	CHECK(!sentlog_contains(l, "<null@example.org>", "<>", DAY0));
	sentlog_close(l);
}

static void test_rotation(void)
{
	char err[256];
	struct sentlog *l = sentlog_open(NULL, key, 32, 3, 1000, err, sizeof err);

	sentlog_add(l, "<day0@x>", S, DAY0);
	sentlog_add(l, "<day1@x>", S, DAY0 + DAYS(1));
	/* remembered for `remember` full days, within the window */
	CHECK(sentlog_contains(l, "<day0@x>", S, DAY0 + DAYS(3)));
	CHECK(sentlog_contains(l, "<day1@x>", S, DAY0 + DAYS(3)));
	/* later than that: out of the window, though the bits are still there */
	CHECK(!sentlog_contains(l, "<day0@x>", S, DAY0 + DAYS(4)));
	CHECK(sentlog_contains(l, "<day1@x>", S, DAY0 + DAYS(4)));
	/* the ring comes back to day0's slot: it is cleared, day1's kept */
	sentlog_add(l, "<day4@x>", S, DAY0 + DAYS(4));
	CHECK(!sentlog_contains(l, "<day0@x>", S, DAY0 + DAYS(4)));
	CHECK(sentlog_contains(l, "<day4@x>", S, DAY0 + DAYS(4)));
	CHECK(sentlog_contains(l, "<day1@x>", S, DAY0 + DAYS(4)));
	/* the clock set back to day0: day4 is ahead by more than a day */
	CHECK(!sentlog_contains(l, "<day4@x>", S, DAY0));
	CHECK(sentlog_contains(l, "<day4@x>", S, DAY0 + DAYS(3)));   /* one day of skew */
	/* a long pause: everything forgotten, nothing stale comes back */
	CHECK(!sentlog_contains(l, "<day4@x>", S, DAY0 + DAYS(100)));
	sentlog_add(l, "<day100@x>", S, DAY0 + DAYS(100));
	CHECK(sentlog_contains(l, "<day100@x>", S, DAY0 + DAYS(100)));
	CHECK(!sentlog_contains(l, "<day4@x>", S, DAY0 + DAYS(104)));
	/* overfull: more than expected on one day */
	for (int i = 0; i < 1005; i++) {
		char id[32];
		snprintf(id, sizeof id, "<%d@x>", i);
		sentlog_add(l, id, S, DAY0 + DAYS(101));
	}
	CHECK_INT(sentlog_overfull(l, DAY0 + DAYS(101)), 5);
	CHECK_INT(sentlog_overfull(l, DAY0 + DAYS(100)), 0);
	sentlog_close(l);
}

static unsigned char *read_file(size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	*len = fread(b, 1, (size_t)n, f);
	fclose(f);
	return b;
}

static void write_file(const unsigned char *b, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL) {
		perror(path);
		exit(99);
	}
	fwrite(b, 1, len, f);
	fclose(f);
}

static void test_persistence(void)
{
	char err[256], tmp[160];
	struct sentlog *l;
	struct stat st;

	unlink(path);
	l = open_log(key, 30, 1000);
	CHECK(strstr(sentlog_load_note(l), "no state file") != NULL);
	CHECK_INT(sentlog_flush(l, err, sizeof err), 0);   /* nothing new: no file */
	CHECK(stat(path, &st) < 0);
	sentlog_add(l, "<kept@x>", S, DAY0);
	sentlog_add(l, "<kept2@x>", S, DAY0 + DAYS(1));
	CHECK_INT(sentlog_flush(l, err, sizeof err), 0);
	CHECK(!sentlog_dirty(l));
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT((size_t)st.st_size, sentlog_image_size(l));
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	CHECK(access(tmp, F_OK) < 0);   /* renamed, not left behind */
	sentlog_close(l);

	l = open_log(key, 30, 1000);
	CHECK(strstr(sentlog_load_note(l), "loaded 2 ids of 2 days") != NULL);
	CHECK(sentlog_contains(l, "<kept@x>", S, DAY0 + DAYS(1)));
	CHECK(sentlog_contains(l, "<kept2@x>", S, DAY0 + DAYS(1)));
	CHECK(!sentlog_contains(l, "<other@x>", S, DAY0 + DAYS(1)));
	CHECK(!sentlog_dirty(l));
	/* the split flush (worker thread in backstop) writes the same */
	sentlog_add(l, "<kept3@x>", S, DAY0 + DAYS(1));
	{
		struct sentlog_snapshot *s = sentlog_snapshot(l);
		CHECK(s != NULL);
		CHECK(!sentlog_dirty(l));
		sentlog_add(l, "<after-snapshot@x>", S, DAY0 + DAYS(1));
		CHECK_INT(sentlog_snapshot_write(s, err, sizeof err), 0);
		sentlog_snapshot_free(s);
	}
	sentlog_close(l);
	l = open_log(key, 30, 1000);
	CHECK(sentlog_contains(l, "<kept3@x>", S, DAY0 + DAYS(1)));
	CHECK(!sentlog_contains(l, "<after-snapshot@x>", S, DAY0 + DAYS(1)));
	sentlog_close(l);
}

/* ignored - open over the file as it is now: empty, with a note saying why */
static void ignored(const char *why, const unsigned char *k, unsigned days, size_t per_day)
{
	struct sentlog *l = open_log(k, days, per_day);
	const char *n = sentlog_load_note(l);

	if (strstr(n, why) == NULL)
		fprintf(stderr, "note \"%s\" lacks \"%s\"\n", n, why);
	CHECK(strstr(n, why) != NULL);
	CHECK(strstr(n, "starting empty") != NULL);
	CHECK(!sentlog_contains(l, "<kept@x>", S, DAY0 + DAYS(1)));
	sentlog_close(l);
}

static void test_corrupt(void)
{
	unsigned char *good, *b;
	size_t len, pos[] = {0, 9, 13, 30, 45, 60, 200, 0};
	char err[256];

	good = read_file(&len);
	CHECK(good != NULL);
	if (good == NULL)
		return;
	pos[sizeof pos / sizeof pos[0] - 1] = len - 1;
	b = malloc(len);
	/* one flipped bit anywhere: ignored */
	for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++) {
		memcpy(b, good, len);
		b[pos[i]] ^= 0x10;
		write_file(b, len);
		ignored("ignored", key, 30, 1000);
	}
	memcpy(b, good, len);
	b[len / 2] ^= 1;
	write_file(b, len);
	ignored("checksum mismatch", key, 30, 1000);
	write_file(good, len - 1);
	ignored("expected", key, 30, 1000);
	write_file(good, 0);
	ignored("expected", key, 30, 1000);
	memset(b, 0, len);
	write_file(b, len);
	ignored("not a sentlog state file", key, 30, 1000);
	/* ours, but another key or other settings */
	write_file(good, len);
	ignored("another key", key2, 30, 1000);
	ignored("expected", key, 29, 1000);
	ignored("expected", key, 30, 2000);
	/* the same size, other settings: header mismatch */
	{
		struct sentlog *l = open_log(key, 30, 1000);
		unsigned char *img;
		size_t n = sentlog_image_size(l);
		sentlog_close(l);
		img = read_file(&n);
		img[16] ^= 1;   /* nhashes */
		write_file(img, n);
		ignored("other settings", key, 30, 1000);
		free(img);
	}
	/* a FIFO in its place: refused at once, start-up is not blocked
	 * (without O_NONBLOCK open() waits for a writer: the alarm fails the
	 * test) */
	unlink(path);
	CHECK_INT(mkfifo(path, 0600), 0);
	alarm(10);
	ignored("not a regular file", key, 30, 1000);
	alarm(0);
	unlink(path);
	/* a directory in its place */
	mkdir(path, 0700);
	ignored("not a regular file", key, 30, 1000);
	rmdir(path);
	/* a symbolic link in its place is not followed */
	{
		char target[160];
		snprintf(target, sizeof target, "%s/elsewhere", dir);
		write_file(good, len);
		rename(path, target);
		CHECK_INT(symlink(target, path), 0);
		ignored("cannot open", key, 30, 1000);
		unlink(path);
		unlink(target);
	}
	/* back to the good file: loads again */
	write_file(good, len);
	{
		struct sentlog *l = open_log(key, 30, 1000);
		CHECK(strstr(sentlog_load_note(l), "loaded") != NULL);
		CHECK(sentlog_contains(l, "<kept@x>", S, DAY0 + DAYS(1)));
		/* a state directory that cannot be written: an error, kept dirty */
		sentlog_add(l, "<new@x>", S, DAY0 + DAYS(1));
		chmod(dir, 0500);
		if (geteuid() != 0) {
			CHECK_INT(sentlog_flush(l, err, sizeof err), -1);
			CHECK(strstr(err, "cannot create") != NULL);
			CHECK(sentlog_dirty(l));
		}
		chmod(dir, 0700);
		CHECK_INT(sentlog_flush(l, err, sizeof err), 0);
		sentlog_close(l);
	}
	free(b);
	free(good);
}

/* splitmix64 - a reproducible stream of random ids */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void test_fp_rate(void)
{
	const unsigned days = 30;
	const size_t per_day = 20000, queries = 1000000;
	char err[256], id[64];
	struct sentlog *l = sentlog_open(NULL, key, 32, days, per_day, err, sizeof err);
	unsigned k = sentlog_nhashes(l);
	double m = (double)sentlog_memory(l) * 8 / (days + 1), slot_fp, predicted, measured;
	size_t hits = 0;

	/* every slot of the window filled to its expected count */
	for (unsigned d = 0; d <= days; d++)
		for (size_t i = 0; i < per_day; i++) {
			snprintf(id, sizeof id, "<%016llx.%u@sent.example>", (unsigned long long)rng(), d);
			sentlog_add(l, id, S, DAY0 + DAYS(d));
		}
	for (size_t i = 0; i < queries; i++) {
		snprintf(id, sizeof id, "<%016llx@random.example>", (unsigned long long)rng());
		hits += sentlog_contains(l, id, S, DAY0 + DAYS(days));
	}
	slot_fp = pow(1 - exp(-(double)k * per_day / m), k);
	predicted = 1 - pow(1 - slot_fp, days + 1);
	measured = (double)hits / queries;
	printf("false positives: %zu of %zu = %.5f%%, predicted %.5f%% (target %.3f%%), "
	    "k = %u, %.0f bits a slot\n", hits, queries, measured * 100, predicted * 100,
	    SENTLOG_FP_TARGET * 100, k, m);
	/* binomial: sd = sqrt(n p) ~ 32 of ~1000 expected; 20% is > 6 sd */
	CHECK(predicted <= SENTLOG_FP_TARGET * 1.05);
	CHECK(measured > predicted * 0.8 && measured < predicted * 1.2);
	/* and the ids that were added are all there */
	rng_state = 0x9e3779b97f4a7c15ULL;
	hits = 0;
	for (unsigned d = 0; d <= days; d++)
		for (size_t i = 0; i < per_day; i++) {
			snprintf(id, sizeof id, "<%016llx.%u@sent.example>", (unsigned long long)rng(), d);
			hits += sentlog_contains(l, id, S, DAY0 + DAYS(days));
		}
	CHECK_INT(hits, (size_t)(days + 1) * per_day);
	sentlog_close(l);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/test_sentlog.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	snprintf(path, sizeof path, "%s/%s", dir, SENTLOG_FILE);
	test_params();
	test_geometry();
	test_add_contains();
	test_pairs();
	test_rotation();
	test_persistence();
	test_corrupt();
	test_fp_rate();
	unlink(path);
	rmdir(dir);
	return check_finish("test_sentlog");
}

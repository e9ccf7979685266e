/*
 * test_spool - held messages: memory, then an anonymous file; what is
 * read back is what was written, at any offset and in any piece size, and
 * small appends (one line at a time, as the wire writer makes them) reach
 * the file in large writes rather than one write(2) each. The file bytes of
 * a loop's spools count against its budget ([limits] spool_max): the
 * write that would exceed it fails with ENOSPC, another loop's budget is
 * not touched, and closing gives the bytes back.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>

#include "check.h"
#include "proxy/spool.h"

/* the loop's budget (proxy's struct worker holds it) */
static struct spool_budget budget;

static off_t file_size(const struct spool *sp)
{
	struct stat st;

	if (!sp->file || fstat(sp->fd, &st) < 0)
		return -1;
	return st.st_size;
}

/* byte i of the reference content */
static char ref(uint64_t i)
{
	return (char)('a' + (i * 7 + i / 131) % 26);
}

static void round_trip(const char *dir)
{
	enum { MEM = 1000, TOTAL = 3 * 1024 * 1024 };
	static char piece[70000], out[50000];
	struct spool sp;
	uint64_t w = 0;
	int i = 0;

	spool_open(&sp, &budget, dir, MEM);
	/* pieces of 1..300 bytes, and now and then one larger than any
	 * write-behind buffer */
	while (w < TOTAL) {
		size_t n = i % 97 == 0 ? 20000 + (size_t)(i % 5) * 10000 : 1 + (size_t)(i * 37) % 300;
		for (size_t k = 0; k < n; k++)
			piece[k] = ref(w + k);
		if (spool_write(&sp, piece, n) < 0)
			break;
		w += n;
		i++;
	}
	CHECK_INT(sp.error, 0);
	CHECK((uint64_t)spool_size(&sp) == w);
	CHECK(sp.file);
	CHECK_INT(budget.in_use, w - sp.mem.len);   /* file bytes only */
	/* sequential reads in odd sizes, as spool_pump reads */
	uint64_t off = 0;
	int bad = 0;
	while (off < w) {
		long n = spool_read(&sp, off, out, 4093 + (size_t)(off % 3) * 20000);
		if (n <= 0) {
			bad++;
			break;
		}
		for (long k = 0; k < n; k++)
			bad += out[k] != ref(off + (uint64_t)k);
		off += (uint64_t)n;
	}
	CHECK_INT(bad, 0);
	CHECK((uint64_t)off == w);
	/* the file holds every byte once read (nothing left behind in memory) */
	CHECK((uint64_t)file_size(&sp) == w - sp.mem.len);
	/* reads that straddle memory and file, and the very end */
	uint64_t offs[] = { 0, MEM - 10, MEM, MEM + 1, w / 2, w - 5 };
	for (size_t j = 0; j < sizeof offs / sizeof offs[0]; j++) {
		long n = spool_read(&sp, offs[j], out, 100);
		long want = w - offs[j] < 100 ? (long)(w - offs[j]) : 100;
		CHECK_INT(n, want);
		for (long k = 0; k < n && k < want; k++)
			bad += out[k] != ref(offs[j] + (uint64_t)k);
	}
	CHECK_INT(bad, 0);
	/* more after a read: appended, read back too */
	piece[0] = ref(w);
	CHECK_INT(spool_write(&sp, piece, 1), 0);
	CHECK_INT(spool_read(&sp, w, out, 10), 1);
	CHECK(out[0] == ref(w));
	spool_close(&sp);
	CHECK_INT(budget.in_use, 0);
}

/* The regression: 100 KB of 74-byte lines past data_buffer cost one
 * write(2) per line (two: text and CRLF come separately), about half of
 * backstop's CPU for a held 100 KB message (tests/bench/content_bench.sh).
 * Small appends must collect in memory and reach the file in large writes. */
static void small_appends_coalesce(const char *dir)
{
	static const char line[] = "the quick brown fox jumps over the lazy dog, line by line, seventy-two.";
	struct spool sp;

	spool_open(&sp, &budget, dir, 64);
	char head[64];
	memset(head, 'h', sizeof head);
	CHECK_INT(spool_write(&sp, head, sizeof head), 0);   /* memory full */
	CHECK(!sp.file);
	CHECK_INT(spool_write(&sp, line, strlen(line)), 0);
	CHECK_INT(spool_write(&sp, "\r\n", 2), 0);
	CHECK(sp.file);
	for (int i = 0; i < 49; i++) {
		CHECK_INT(spool_write(&sp, line, strlen(line)), 0);
		CHECK_INT(spool_write(&sp, "\r\n", 2), 0);
	}
	uint64_t held = 50 * (strlen(line) + 2);
	CHECK((uint64_t)spool_size(&sp) == 64 + held);
	/* 3.7 KB in 100 appends: none of it written one append at a time */
	CHECK_INT(file_size(&sp), 0);
	CHECK((uint64_t)budget.in_use == held);
	char out[200];
	CHECK_INT(spool_read(&sp, 64, out, strlen(line) + 2), (long)(strlen(line) + 2));
	CHECK_MEM(out, strlen(line), line);
	CHECK((uint64_t)file_size(&sp) == held);   /* a read flushes */
	spool_close(&sp);
	CHECK_INT(budget.in_use, 0);
}

static void unusable_dir(void)
{
	struct spool sp;
	char big[200];

	memset(big, 'x', sizeof big);
	spool_open(&sp, &budget, "/nonexistent/spool/dir", 100);
	CHECK_INT(spool_write(&sp, big, 100), 0);    /* memory only */
	CHECK_INT(spool_write(&sp, big, 100), -1);   /* needs the file */
	CHECK(sp.error != 0);
	CHECK_INT(spool_write(&sp, big, 1), -1);     /* sticky */
	spool_close(&sp);
	CHECK_INT(budget.in_use, 0);
}

/* budget_limit - two spools of one loop share its budget; a second loop's
 * budget is its own. */
static void budget_limit(const char *dir)
{
	struct spool_budget other;
	struct spool a, b, c;
	char big[5000];

	memset(big, 'x', sizeof big);
	spool_budget_init(&other);
	spool_budget_set_limit(&budget, 8000);
	CHECK(spool_budget_has_room(&budget));
	spool_open(&a, &budget, dir, 0);
	spool_open(&b, &budget, dir, 1000);
	spool_open(&c, &other, dir, 0);
	CHECK_INT(spool_write(&a, big, 5000), 0);
	CHECK_INT(budget.in_use, 5000);
	CHECK(spool_budget_has_room(&budget));
	CHECK_INT(spool_write(&b, big, 1000), 0);    /* memory: not counted */
	CHECK_INT(spool_write(&b, big, 3000), 0);    /* 8000 on disk: at the limit */
	CHECK_INT(budget.in_use, 8000);
	CHECK(!spool_budget_has_room(&budget));
	CHECK_INT(spool_write(&b, big, 1), -1);      /* one byte over */
	CHECK_INT(b.error, ENOSPC);
	/* another loop's spool: its own budget, unlimited until set */
	CHECK_INT(spool_write(&c, big, 5000), 0);
	CHECK_INT(spool_write(&c, big, 5000), 0);
	CHECK_INT(other.in_use, 10000);
	CHECK_INT(budget.in_use, 8000);
	spool_close(&b);
	CHECK_INT(budget.in_use, 5000);
	CHECK(spool_budget_has_room(&budget));
	spool_close(&a);
	spool_close(&c);
	CHECK_INT(budget.in_use, 0);
	CHECK_INT(other.in_use, 0);
	spool_budget_set_limit(&budget, UINT64_MAX);
}

int main(void)
{
	char dir[] = "/tmp/test_spool.XXXXXX";

	if (!mkdtemp(dir))
		return check_error("test_spool", "mkdtemp failed");
	spool_budget_init(&budget);
	round_trip(dir);
	small_appends_coalesce(dir);
	unusable_dir();
	budget_limit(dir);
	rmdir(dir);
	return check_finish("test_spool");
}

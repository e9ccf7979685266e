/*
 * check.h - the unit tests' few assertions. Each failed check prints
 * file:line and both values; main() returns check_finish(), which prints
 * "N passed, N failed" and the exit status automake expects: 0 only when
 * at least one check ran and none failed (a test that checked nothing has
 * not passed). check_error() is for a fixture that could not be set up: a
 * hard error (automake's 99), never a skip.
 */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int check_passed, check_failed;

#define CHECK(cond) do { \
	if (cond) check_passed++; \
	else { check_failed++; fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_INT(a, b) do { \
	long long check_a_ = (long long)(a), check_b_ = (long long)(b); \
	if (check_a_ == check_b_) check_passed++; \
	else { check_failed++; fprintf(stderr, "%s:%d: FAIL: %s == %s (%lld != %lld)\n", \
	    __FILE__, __LINE__, #a, #b, check_a_, check_b_); } \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *check_a_ = (a), *check_b_ = (b); \
	if (check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0) check_passed++; \
	else { check_failed++; fprintf(stderr, "%s:%d: FAIL: %s == %s (\"%s\" != \"%s\")\n", \
	    __FILE__, __LINE__, #a, #b, check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)"); } \
} while (0)

#define CHECK_MEM(p, n, s) do { \
	size_t check_n_ = (n); const char *check_s_ = (s); \
	if (check_n_ == strlen(check_s_) && memcmp((p), check_s_, check_n_) == 0) check_passed++; \
	else { check_failed++; fprintf(stderr, "%s:%d: FAIL: %s (%.*s) != \"%s\"\n", \
	    __FILE__, __LINE__, #p, (int)check_n_, (const char *)(p), check_s_); } \
} while (0)

/*
 * guarded_copy - copy len bytes to the end of a page followed by a
 * PROT_NONE page, so that any read past the input faults (picohttpparser's
 * trick). Release with guarded_free().
 */
static inline char *guarded_copy(const void *data, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t pages = (len + page - 1) / page + 1;
	char *base = mmap(NULL, pages * page, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) { perror("mmap"); exit(2); }
	mprotect(base + (pages - 1) * page, page, PROT_NONE);
	char *p = base + (pages - 1) * page - len;
	memcpy(p, data, len);
	return p;
}

static inline void guarded_free(char *p, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t pages = (len + page - 1) / page + 1;
	char *base = p + len - (pages - 1) * page;
	munmap(base, pages * page);
}

static inline int check_finish(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
	if (check_passed == 0 && check_failed == 0) {
		printf("%s: FAIL: no check ran\n", name);
		return 1;
	}
	return check_failed ? 1 : 0;
}

/* A fixture failed (a peer did not start, a file is missing): exit 99. */
#define CHECK_EXIT_ERROR 99
static inline int check_error(const char *name, const char *why)
{
	printf("%s: ERROR: %s (%d passed, %d failed before it)\n", name, why,
	    check_passed, check_failed);
	return CHECK_EXIT_ERROR;
}

#endif

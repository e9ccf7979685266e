/*
 * test_ipcount_ownerdead - a worker killed while it holds the shared
 * per-IP table's lock, in the middle of an update (review14). The child
 * makes the first half of a change under the lock and dies with it; the
 * next locker (EOWNERDEAD) must not inherit a count that never reaches 0
 * again, or the same key twice. The table's internals are this file's:
 * proxy/ipcount_shared.c is compiled in.
 */
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proxy/ipcount_shared.c"
#include "tests/unit/check.h"

static void key_of(char key[IPCOUNT_KEY_LEN], unsigned n)
{
	memset(key, 0, IPCOUNT_KEY_LEN);
	key[0] = 4;
	memcpy(key + 1, &n, sizeof n);
	key[19] = 32;
}

static size_t slot_of(struct ipcount_shared *t, const char *key)
{
	for (size_t i = key_slot(t, key);; i = (i + 1) & (t->slots - 1))
		if (memcmp(entry_at(t, i)->key, key, IPCOUNT_KEY_LEN) == 0)
			return i;
}

/* die_in - run the half change in a child that holds the lock and dies */
static void die_in(struct ipcount_shared *t, void (*half)(struct ipcount_shared *, const char *, const char *),
    const char *a, const char *b)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		pthread_mutex_lock(&t->lock);
		half(t, a, b);
		_exit(0);   /* holding the lock */
	}
	CHECK(pid > 0);
	CHECK(waitpid(pid, &status, 0) == pid);
}

/* worker 1 closes its connection of a: its count drops, the total not yet */
static void half_decrement(struct ipcount_shared *t, const char *a, const char *b)
{
	(void)b;
	entry_at(t, slot_of(t, a))->per_worker[1]--;
}

/* worker 1 closes the last connection of a, whose run b follows: b is
 * copied back into a's slot, its own slot not cleared yet */
static void half_shift(struct ipcount_shared *t, const char *a, const char *b)
{
	size_t i = slot_of(t, a), j = slot_of(t, b);
	struct ipcount_entry *e = entry_at(t, i);
	e->per_worker[1] = 0;
	e->total = 0;
	memcpy(entry_at(t, i), entry_at(t, j), t->entry_size);
}

static void decrement(void)
{
	struct ipcount_shared *t = ipcount_shared_new(16, 2);
	char a[IPCOUNT_KEY_LEN];

	key_of(a, 1);
	CHECK_INT(ipcount_shared_add(t, 0, a, 1, NULL), 1);
	CHECK_INT(ipcount_shared_add(t, 1, a, 1, NULL), 2);
	die_in(t, half_decrement, a, NULL);
	/* the master reaps worker 1: it held no connection of a any more */
	CHECK_INT(ipcount_shared_forget_worker(t, 1), 0);
	CHECK_INT(ipcount_shared_add(t, 0, a, 0, NULL), 1);
	CHECK_INT(ipcount_shared_add(t, 0, a, -1, NULL), 0);
	CHECK_INT(ipcount_shared_keys(t), 0);
	ipcount_shared_free(t);
}

static void shift(void)
{
	struct ipcount_shared *t = ipcount_shared_new(16, 2);
	char a[IPCOUNT_KEY_LEN], b[IPCOUNT_KEY_LEN];
	unsigned n;

	key_of(a, 1);
	/* b: a key with a's home slot, so it lands right after a */
	for (n = 2; n < 100000; n++) {
		key_of(b, n);
		if (key_slot(t, b) == key_slot(t, a))
			break;
	}
	CHECK(n < 100000);
	CHECK_INT(ipcount_shared_add(t, 1, a, 1, NULL), 1);
	CHECK_INT(ipcount_shared_add(t, 0, b, 1, NULL), 1);
	die_in(t, half_shift, a, b);
	ipcount_shared_forget_worker(t, 1);
	CHECK_INT(ipcount_shared_keys(t), 1);
	CHECK_INT(ipcount_shared_add(t, 0, a, 0, NULL), 0);
	CHECK_INT(ipcount_shared_add(t, 0, b, 0, NULL), 1);
	/* b's one connection closes: nothing of b is left */
	CHECK_INT(ipcount_shared_add(t, 0, b, -1, NULL), 0);
	CHECK_INT(ipcount_shared_add(t, 0, b, 0, NULL), 0);
	CHECK_INT(ipcount_shared_keys(t), 0);
	ipcount_shared_free(t);
}

int main(void)
{
	decrement();
	shift();
	return check_finish("test_ipcount_ownerdead");
}

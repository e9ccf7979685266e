/*
 * sentlog - a bounded, rotating, persisted set of keyed hashes of the
 * (Message-ID, envelope sender) pairs that left through [outbound] (issue
 * 11): "did this sender send a message with this id in the last `remember`
 * days?" for the bounce check, which asks with the bounce's recipient: a
 * Message-ID that user@ sent (and anyone on its recipient list knows) does
 * not vouch for a bounce to user3@.
 *
 * Design: one Bloom filter per day, in a ring of remember_days + 1 slots
 * (slot = day mod nslots; a slot found holding an older day is cleared
 * before its first add of the new day), so an id is remembered for at
 * least remember_days full days and forgotten within one more. A query
 * looks in every slot whose day is within the window.
 *
 * Keyed: the bit positions come from HMAC-SHA256(id key, Message-ID NUL
 * sender), the sender without its BATV tag and in lower case, the id key
 * derived from the caller's key (bsig_sentlog_key: the lowest-numbered key
 * of the BATV keys file). Without the secret nobody can choose entries
 * that collide (poisoning); what is in is only learnt by asking with the
 * right pair (a bounce's accept or refuse answers "did user@ send <id>?").
 *
 * Sizing: the false-positive target SENTLOG_FP_TARGET holds for a query
 * across the whole window, with every slot filled to expected_per_day:
 * each slot is built for p = SENTLOG_FP_TARGET / nslots, so
 *   bits per slot  m = ceil(-n ln p / (ln 2)^2)   (rounded up to 64)
 *   hashes         k = round(m / n * ln 2)
 * For the defaults (n = sent_per_day = 100000, remember = 30d: 31 slots,
 * p = 0.001 / 31 = 3.2e-5): m = 2,152,512 bits = 269,064 bytes a slot,
 * k = 15, 8.3 MB for the 31 slots (and as much again, briefly, while a
 * flush copies it). Memory is linear in both: 21.5 bits x (remember + 1)
 * for each message a day, ~83 bytes at remember = 30d. A day with more
 * mail than expected raises its slot's rate (at 2n that slot alone is at
 * ~1.4%), hence sentlog_overfull(). Measured (tests/unit/test_sentlog,
 * 31 full slots, 1M random ids): 0.096% against 0.100% predicted.
 *
 * State file: <state_dir>/sentlog.state, written whole and atomically
 * (a tmp file of its own name, mkstemp; fsync, rename, fsync of the
 * directory). Little-endian:
 *   0  magic "BSSENTLG"        8  version (u32, 2; 1 keyed Message-IDs alone)
 *   12 nslots (u32)            16 nhashes (u32)     20 zero (u32)
 *   24 bits per slot (u64)     32 expected_per_day (u64)
 *   40 key check (16 bytes: HMAC-SHA256(file key, "key check"))
 *   56 nslots x {day (i64), count (u64)}
 *   .. nslots x bits-per-slot / 8 bytes of Bloom bits
 *   end: HMAC-SHA256(file key, every byte before it), 32 bytes
 * file key = HMAC-SHA256(key, "backstop sentlog file v1"), id key =
 * HMAC-SHA256(key, "backstop sentlog id v2"). A file that is missing,
 * short, of another version or geometry, written under another key, or
 * whose checksum fails is ignored (sentlog_load_note() says why) and the
 * log starts empty: never a crash, never a partial load.
 *
 * Threads: a struct sentlog is used by one thread (the loop's). A flush
 * can be split: sentlog_snapshot() copies the state (loop thread, a
 * memcpy), sentlog_snapshot_write() checksums and writes the copy (any
 * thread: it touches nothing else), so the disk I/O runs on a worker.
 */
#ifndef SENTLOG_H
#define SENTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SENTLOG_FP_TARGET 0.001      /* a random id across the whole window */
#define SENTLOG_REMEMBER_MAX 366     /* days */
#define SENTLOG_PER_DAY_MAX 10000000
#define SENTLOG_MEMORY_MAX (2ULL << 30)
#define SENTLOG_FILE "sentlog.state"

struct sentlog;
struct sentlog_snapshot;

/*
 * sentlog_open - a log for remember_days (1..SENTLOG_REMEMBER_MAX) sized for
 * expected_per_day ids a day (1..SENTLOG_PER_DAY_MAX), keyed by key (at
 * least 16 bytes), loaded from state_dir/sentlog.state when that file is
 * ours and of this geometry (state_dir NULL: memory only, nothing loaded or
 * written). NULL with the reason in err on bad parameters or no memory; a
 * state file that cannot be used is not an error (sentlog_load_note()).
 */
struct sentlog *sentlog_open(const char *state_dir, const unsigned char *key, size_t keylen,
    unsigned remember_days, size_t expected_per_day, char *err, size_t errlen);

/* sentlog_check - would sentlog_open take these parameters (ranges, the
 * SENTLOG_MEMORY_MAX bound)? 0, or -1 with the reason in err; allocates
 * nothing (a reload's check before any filter's state changes). */
int sentlog_check(unsigned remember_days, size_t expected_per_day, char *err, size_t errlen);

/* sentlog_add - remember that sender (the envelope sender as relayed: any
 * form bsig_canon_sender takes, BATV tag and case do not matter) sent
 * message_id (any form bsig_canon_msgid takes) on now's day. An empty id
 * or sender (the null sender: nothing answers it) is ignored. */
void sentlog_add(struct sentlog *l, const char *message_id, const char *sender, time_t now);

/* sentlog_contains - was (message_id, sender) added within the window
 * ending on now's day? False positives at about SENTLOG_FP_TARGET, no
 * false negatives within the window. */
bool sentlog_contains(struct sentlog *l, const char *message_id, const char *sender,
    time_t now);

/* sentlog_flush - persist now, on the calling thread (start-up tools,
 * shutdown, tests). 0 (also when there is nothing new, or no state_dir:
 * then -1 with a reason), or -1 with "path: reason" in err. */
int sentlog_flush(struct sentlog *l, char *err, size_t errlen);
void sentlog_close(struct sentlog *l);

/* sentlog_load_note - what start-up found: "loaded N ids of D days from
 * PATH", "no state file PATH yet", or why PATH was ignored. */
const char *sentlog_load_note(const struct sentlog *l);

/* sentlog_dirty - added to since the last snapshot or flush. */
bool sentlog_dirty(const struct sentlog *l);

/* sentlog_overfull - ids added on now's day beyond expected_per_day
 * (0 when within): the caller warns that the FP rate is rising. */
uint64_t sentlog_overfull(const struct sentlog *l, time_t now);

/* sentlog_memory - bytes of Bloom bits held; sentlog_nhashes - k. */
size_t sentlog_memory(const struct sentlog *l);
unsigned sentlog_nhashes(const struct sentlog *l);

/* sentlog_snapshot - a copy of the state to write (loop thread; clears
 * dirty). NULL without state_dir or memory. The write runs on any thread:
 * 0, or -1 with "path: reason". A failed write: call sentlog_mark_dirty()
 * (loop thread) so that the next flush tries again. */
struct sentlog_snapshot *sentlog_snapshot(struct sentlog *l);
int sentlog_snapshot_write(struct sentlog_snapshot *s, char *err, size_t errlen);
void sentlog_snapshot_free(struct sentlog_snapshot *s);
void sentlog_mark_dirty(struct sentlog *l);

/* For tests and the fuzzer: the state file image's exact size, and loading
 * one from memory (0, or -1 with the reason; on -1 the state is as before). */
size_t sentlog_image_size(const struct sentlog *l);
int sentlog_load_image(struct sentlog *l, const unsigned char *img, size_t len, char *why,
    size_t whylen);

#endif

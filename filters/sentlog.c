/*
 * sentlog - per-day keyed Bloom filters of sent Message-IDs, persisted.
 * See sentlog.h for the design, the sizing and the file format.
 */
#define _POSIX_C_SOURCE 200809L  /* O_CLOEXEC, O_NOFOLLOW, O_DIRECTORY */

#include "filters/sentlog.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "filters/bsig.h"

#define SENTLOG_MAGIC "BSSENTLG"
#define SENTLOG_VERSION 2   /* 2: entries are (Message-ID, sender) */
#define HEADER_BYTES 56
#define SLOT_META_BYTES 16
#define MAC_BYTES 32
#define KEY_CHECK_BYTES 16
#define KEY_BYTES 32
#define KEY_MIN 16
#define NOTE_MAX 512
#define LN2 0.69314718055994530942
#define SENTLOG_COUNT_MAX (1ULL << 40)   /* ids a slot counts; a file claiming more is not ours */

struct slot {
	int64_t day;      /* the day its bits belong to; meaningful when count > 0 */
	uint64_t count;   /* ids added on that day */
};

struct sentlog {
	char *path;                       /* NULL: memory only */
	unsigned char id_key[KEY_BYTES];  /* Bloom positions */
	unsigned char file_key[KEY_BYTES];/* the state file's checksum */
	unsigned remember_days;
	unsigned nslots;
	unsigned nhashes;
	uint64_t bits;                    /* per slot, a multiple of 64 */
	size_t slot_bytes;
	uint64_t expected;
	struct slot *slots;
	unsigned char *bloom;             /* nslots * slot_bytes */
	bool dirty;
	char note[NOTE_MAX];
};

struct sentlog_snapshot {
	char *path;
	unsigned char file_key[KEY_BYTES];
	unsigned char *image;             /* without its final MAC */
	size_t len;                       /* bytes before the MAC */
};

/* ---- little-endian fields ---- */

static void put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int64_t day_of(time_t now)
{
	long long t = (long long)now;
	return t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
}

static unsigned slot_index(const struct sentlog *l, int64_t day)
{
	int64_t m = day % (int64_t)l->nslots;
	return (unsigned)(m < 0 ? m + l->nslots : m);
}

static int derive(const unsigned char *key, size_t keylen, const char *label,
    unsigned char out[KEY_BYTES])
{
	unsigned int n = 0;

	return HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)label, strlen(label),
	    out, &n) != NULL && n == KEY_BYTES ? 0 : -1;
}

/* ---- geometry ---- */

/*
 * geometry - bits per slot and hashes for n ids a slot at FP rate p:
 * m = -n ln p / (ln 2)^2 rounded up to 64 bits, k = m/n ln 2 rounded.
 */
static void geometry(uint64_t n, unsigned nslots, uint64_t *bits, unsigned *k)
{
	double p = SENTLOG_FP_TARGET / nslots;
	double m = ceil(-(double)n * log(p) / (LN2 * LN2));
	uint64_t mb = ((uint64_t)m + 63) / 64 * 64;
	double kk = floor((double)mb / (double)n * LN2 + 0.5);

	*bits = mb;
	*k = kk < 1 ? 1 : kk > 64 ? 64 : (unsigned)kk;
}

static void note(struct sentlog *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(struct sentlog *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->note, sizeof l->note, fmt, ap);
	va_end(ap);
}

static int load_file(struct sentlog *l);

int sentlog_check(unsigned remember_days, size_t expected_per_day, char *err, size_t errlen)
{
	uint64_t bits;
	unsigned k;

	if (remember_days < 1 || remember_days > SENTLOG_REMEMBER_MAX) {
		snprintf(err, errlen, "sentlog: remember must be 1 to %d days", SENTLOG_REMEMBER_MAX);
		return -1;
	}
	if (expected_per_day < 1 || expected_per_day > SENTLOG_PER_DAY_MAX) {
		snprintf(err, errlen, "sentlog: sent_per_day must be 1 to %d", SENTLOG_PER_DAY_MAX);
		return -1;
	}
	geometry(expected_per_day, remember_days + 1, &bits, &k);
	if ((uint64_t)(remember_days + 1) * (bits / 8) > SENTLOG_MEMORY_MAX) {
		snprintf(err, errlen, "sentlog: %u days of %zu messages need %llu MB of memory "
		    "(over %llu MB): lower [bounce] remember or sent_per_day", remember_days,
		    expected_per_day,
		    (unsigned long long)((remember_days + 1) * (bits / 8) >> 20),
		    (unsigned long long)(SENTLOG_MEMORY_MAX >> 20));
		return -1;
	}
	return 0;
}

struct sentlog *sentlog_open(const char *state_dir, const unsigned char *key, size_t keylen,
    unsigned remember_days, size_t expected_per_day, char *err, size_t errlen)
{
	struct sentlog *l;
	uint64_t bits;
	unsigned k;
	size_t total;

	if (errlen)
		err[0] = '\0';
	if (key == NULL || keylen < KEY_MIN) {
		snprintf(err, errlen, "sentlog: key shorter than %d bytes", KEY_MIN);
		return NULL;
	}
	if (sentlog_check(remember_days, expected_per_day, err, errlen) < 0)
		return NULL;
	geometry(expected_per_day, remember_days + 1, &bits, &k);
	if ((l = calloc(1, sizeof *l)) == NULL)
		goto oom;
	l->remember_days = remember_days;
	l->nslots = remember_days + 1;
	l->nhashes = k;
	l->bits = bits;
	l->slot_bytes = (size_t)(bits / 8);
	l->expected = expected_per_day;
	total = l->nslots * l->slot_bytes;
	if ((l->slots = calloc(l->nslots, sizeof *l->slots)) == NULL ||
	    (l->bloom = calloc(1, total)) == NULL)
		goto oom;
	if (derive(key, keylen, "backstop sentlog id v2", l->id_key) < 0 ||
	    derive(key, keylen, "backstop sentlog file v1", l->file_key) < 0) {
		snprintf(err, errlen, "sentlog: key derivation failed");
		sentlog_close(l);
		return NULL;
	}
	if (state_dir == NULL) {
		snprintf(l->note, sizeof l->note, "memory only");
		return l;
	}
	size_t n = strlen(state_dir) + sizeof SENTLOG_FILE + 2;
	if ((l->path = malloc(n)) == NULL)
		goto oom;
	snprintf(l->path, n, "%s/%s", state_dir, SENTLOG_FILE);
	load_file(l);
	return l;
oom:
	snprintf(err, errlen, "sentlog: out of memory");
	sentlog_close(l);
	return NULL;
}

void sentlog_close(struct sentlog *l)
{
	if (l == NULL)
		return;
	free(l->path);
	free(l->slots);
	free(l->bloom);
	OPENSSL_cleanse(l, sizeof *l);
	free(l);
}

/* ---- add and query ---- */

/* entry_key - the bytes an entry is hashed from: the canonical
 * Message-ID, a NUL, the sender without BATV tag, all in lower case (a
 * mailbox's case does not matter to the mail systems that answer it). 0
 * for an empty id or sender. */
static size_t entry_key(const char *message_id, const char *sender, char *out, size_t cap)
{
	size_t n = bsig_canon_msgid(message_id, out, BSIG_MSGID_MAX + 1), m;

	if (n == 0 || n + 2 + BSIG_SENDER_MAX > cap)
		return 0;
	out[n++] = '\0';
	if ((m = bsig_canon_sender(sender, out + n, BSIG_SENDER_MAX + 1)) == 0)
		return 0;
	for (size_t i = n; i < n + m; i++)
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] = (char)(out[i] - 'A' + 'a');
	return n + m;
}

/* positions - h1, h2 for double hashing (Kirsch-Mitzenmacher): position
 * i is (h1 + i h2) mod bits; h2 odd. false for an empty id or sender. */
static bool positions(const struct sentlog *l, const char *message_id, const char *sender,
    uint64_t *h1, uint64_t *h2)
{
	char key[BSIG_MSGID_MAX + 1 + BSIG_SENDER_MAX + 1];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t n = entry_key(message_id, sender, key, sizeof key);

	if (n == 0)
		return false;
	if (HMAC(EVP_sha256(), l->id_key, KEY_BYTES, (unsigned char *)key, n, md, &mdlen) == NULL ||
	    mdlen < 16)
		return false;
	*h1 = get_u64(md);
	*h2 = get_u64(md + 8) | 1;
	return true;
}

void sentlog_add(struct sentlog *l, const char *message_id, const char *sender, time_t now)
{
	int64_t day = day_of(now);
	unsigned idx = slot_index(l, day);
	struct slot *s = &l->slots[idx];
	unsigned char *bloom = l->bloom + (size_t)idx * l->slot_bytes;
	uint64_t h1, h2;

	if (!positions(l, message_id, sender, &h1, &h2))
		return;
	if (s->day != day || s->count == 0) {
		/* rotation: the slot held a day that has left the window */
		memset(bloom, 0, l->slot_bytes);
		s->day = day;
		s->count = 0;
	}
	for (unsigned i = 0; i < l->nhashes; i++) {
		uint64_t b = (h1 + i * h2) % l->bits;
		bloom[b >> 3] |= (unsigned char)(1u << (b & 7));
	}
	if (s->count < SENTLOG_COUNT_MAX)
		s->count++;   /* saturates: 0 would mean "slot unused" */
	l->dirty = true;
}

/* in_window - does slot s hold a day a query on `today` looks at? */
static bool in_window(const struct sentlog *l, const struct slot *s, int64_t today)
{
	/* a day slightly ahead: the clock was set back a little */
	return s->count > 0 && s->day <= today + 1 && s->day >= today - (int64_t)l->remember_days;
}

bool sentlog_contains(struct sentlog *l, const char *message_id, const char *sender,
    time_t now)
{
	int64_t today = day_of(now);
	uint64_t h1, h2;

	if (!positions(l, message_id, sender, &h1, &h2))
		return false;
	for (unsigned idx = 0; idx < l->nslots; idx++) {
		const unsigned char *bloom = l->bloom + (size_t)idx * l->slot_bytes;
		bool all = true;
		if (!in_window(l, &l->slots[idx], today))
			continue;
		for (unsigned i = 0; i < l->nhashes && all; i++) {
			uint64_t b = (h1 + i * h2) % l->bits;
			all = (bloom[b >> 3] >> (b & 7)) & 1;
		}
		if (all)
			return true;
	}
	return false;
}

bool sentlog_dirty(const struct sentlog *l)
{
	return l->dirty;
}

void sentlog_mark_dirty(struct sentlog *l)
{
	l->dirty = true;
}

uint64_t sentlog_overfull(const struct sentlog *l, time_t now)
{
	int64_t day = day_of(now);
	const struct slot *s = &l->slots[slot_index(l, day)];

	return s->day == day && s->count > l->expected ? s->count - l->expected : 0;
}

size_t sentlog_memory(const struct sentlog *l)
{
	return l->nslots * l->slot_bytes;
}

unsigned sentlog_nhashes(const struct sentlog *l)
{
	return l->nhashes;
}

const char *sentlog_load_note(const struct sentlog *l)
{
	return l->note;
}

/* ---- the state file image ---- */

size_t sentlog_image_size(const struct sentlog *l)
{
	return HEADER_BYTES + (size_t)l->nslots * SLOT_META_BYTES + sentlog_memory(l) + MAC_BYTES;
}

static void key_check(const unsigned char file_key[KEY_BYTES], unsigned char out[KEY_CHECK_BYTES])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (HMAC(EVP_sha256(), file_key, KEY_BYTES, (const unsigned char *)"key check", 9, md, &n) == NULL)
		memset(md, 0, sizeof md);
	memcpy(out, md, KEY_CHECK_BYTES);
}

/* image_header - the fixed part, written to p (HEADER_BYTES). */
static void image_header(const struct sentlog *l, unsigned char *p)
{
	memcpy(p, SENTLOG_MAGIC, 8);
	put_u32(p + 8, SENTLOG_VERSION);
	put_u32(p + 12, l->nslots);
	put_u32(p + 16, l->nhashes);
	put_u32(p + 20, 0);
	put_u64(p + 24, l->bits);
	put_u64(p + 32, l->expected);
	key_check(l->file_key, p + 40);
}

static int image_mac(const unsigned char file_key[KEY_BYTES], const unsigned char *img,
    size_t len, unsigned char out[MAC_BYTES])
{
	unsigned int n = 0;

	return HMAC(EVP_sha256(), file_key, KEY_BYTES, img, len, out, &n) != NULL &&
	    n == MAC_BYTES ? 0 : -1;
}

int sentlog_load_image(struct sentlog *l, const unsigned char *img, size_t len, char *why,
    size_t whylen)
{
	unsigned char want[HEADER_BYTES], mac[MAC_BYTES];
	const unsigned char *meta = img + HEADER_BYTES;
	uint64_t ids = 0;
	unsigned days = 0;

	if (len != sentlog_image_size(l)) {
		snprintf(why, whylen, "size %zu bytes, %zu expected (another version, or [bounce] "
		    "remember or sent_per_day changed)", len, sentlog_image_size(l));
		return -1;
	}
	image_header(l, want);
	if (memcmp(img, SENTLOG_MAGIC, 8) != 0) {
		snprintf(why, whylen, "not a sentlog state file");
		return -1;
	}
	if (get_u32(img + 8) != SENTLOG_VERSION) {
		snprintf(why, whylen, "version %lu, %d expected", (unsigned long)get_u32(img + 8),
		    SENTLOG_VERSION);
		return -1;
	}
	if (memcmp(img + 12, want + 12, 40 - 12) != 0) {
		snprintf(why, whylen, "sized for other settings ([bounce] remember or sent_per_day "
		    "changed)");
		return -1;
	}
	if (CRYPTO_memcmp(img + 40, want + 40, KEY_CHECK_BYTES) != 0) {
		snprintf(why, whylen, "written under another key (the lowest-numbered key of [batv] keys_file changed)");
		return -1;
	}
	if (image_mac(l->file_key, img, len - MAC_BYTES, mac) < 0 ||
	    CRYPTO_memcmp(mac, img + len - MAC_BYTES, MAC_BYTES) != 0) {
		snprintf(why, whylen, "checksum mismatch (a damaged or cut file)");
		return -1;
	}
	/* a slot in use holds the day its position stands for */
	for (unsigned i = 0; i < l->nslots; i++) {
		int64_t day = (int64_t)get_u64(meta + (size_t)i * SLOT_META_BYTES);
		uint64_t count = get_u64(meta + (size_t)i * SLOT_META_BYTES + 8);
		if (count > SENTLOG_COUNT_MAX) {
			snprintf(why, whylen, "slot %u counts %llu ids, more than any day can send", i,
			    (unsigned long long)count);
			return -1;
		}
		if (count > 0 && (day < 0 || slot_index(l, day) != i)) {
			snprintf(why, whylen, "slot %u holds day %lld, which belongs elsewhere", i,
			    (long long)day);
			return -1;
		}
	}
	for (unsigned i = 0; i < l->nslots; i++) {
		l->slots[i].day = (int64_t)get_u64(meta + (size_t)i * SLOT_META_BYTES);
		l->slots[i].count = get_u64(meta + (size_t)i * SLOT_META_BYTES + 8);
		if (l->slots[i].count > 0) {
			days++;
			ids += l->slots[i].count;
		}
	}
	memcpy(l->bloom, meta + (size_t)l->nslots * SLOT_META_BYTES, sentlog_memory(l));
	snprintf(why, whylen, "%llu ids of %u days", (unsigned long long)ids, days);
	l->dirty = false;
	return 0;
}

/* load_file - read path whole and load it; every failure ends in a note
 * and an empty log. */
static int load_file(struct sentlog *l)
{
	size_t want = sentlog_image_size(l), got = 0;
	unsigned char *img = NULL;
	char why[300];
	struct stat st;
	int fd, rc = -1;

	/* O_NONBLOCK: a FIFO planted under the name must not block start-up
	 * (fstat then refuses it); a regular file ignores the flag */
	if ((fd = open(l->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) < 0) {
		if (errno == ENOENT)
			note(l, "no state file %s yet", l->path);
		else
			note(l, "cannot open %s: %s; starting empty", l->path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		note(l, "%s is not a regular file; starting empty", l->path);
		goto out;
	}
	if ((uint64_t)st.st_size != want) {
		snprintf(why, sizeof why, "size %llu bytes, %zu expected (another version, or "
		    "[bounce] remember or sent_per_day changed)", (unsigned long long)st.st_size, want);
		note(l, "ignored %s: %s; starting empty", l->path, why);
		goto out;
	}
	if ((img = malloc(want)) == NULL) {
		note(l, "ignored %s: %s; starting empty", l->path, "out of memory");
		goto out;
	}
	while (got < want) {
		ssize_t n = read(fd, img + got, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			note(l, "ignored %s: %s; starting empty", l->path,
			    n < 0 ? strerror(errno) : "shorter than its size");
			goto out;
		}
		got += (size_t)n;
	}
	if (sentlog_load_image(l, img, want, why, sizeof why) < 0) {
		note(l, "ignored %s: %s; starting empty", l->path, why);
		goto out;
	}
	note(l, "loaded %s from %s", why, l->path);
	rc = 0;
out:
	free(img);
	close(fd);
	return rc;
}

/* ---- writing ---- */

struct sentlog_snapshot *sentlog_snapshot(struct sentlog *l)
{
	struct sentlog_snapshot *s;
	size_t len = sentlog_image_size(l) - MAC_BYTES;
	unsigned char *meta;

	if (l->path == NULL || (s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	if ((s->path = strdup(l->path)) == NULL || (s->image = malloc(len)) == NULL) {
		sentlog_snapshot_free(s);
		return NULL;
	}
	memcpy(s->file_key, l->file_key, KEY_BYTES);
	s->len = len;
	image_header(l, s->image);
	meta = s->image + HEADER_BYTES;
	for (unsigned i = 0; i < l->nslots; i++) {
		put_u64(meta + (size_t)i * SLOT_META_BYTES, (uint64_t)l->slots[i].day);
		put_u64(meta + (size_t)i * SLOT_META_BYTES + 8, l->slots[i].count);
	}
	memcpy(meta + (size_t)l->nslots * SLOT_META_BYTES, l->bloom, sentlog_memory(l));
	l->dirty = false;
	return s;
}

void sentlog_snapshot_free(struct sentlog_snapshot *s)
{
	if (s == NULL)
		return;
	free(s->path);
	free(s->image);
	OPENSSL_cleanse(s->file_key, sizeof s->file_key);
	free(s);
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* fsync_dir - make the rename durable: sync the directory holding path. */
static int fsync_dir(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int fd, rc;

	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else
		snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int sentlog_snapshot_write(struct sentlog_snapshot *s, char *err, size_t errlen)
{
	unsigned char mac[MAC_BYTES];
	char tmp[4096];
	const char *what;
	int fd, e;

	if (image_mac(s->file_key, s->image, s->len, mac) < 0) {
		snprintf(err, errlen, "%s: checksum failed", s->path);
		return -1;
	}
	/* a name of its own (mkstemp: O_EXCL, 0600, never a planted link), so
	 * two writers - a worker's save and a reload's - never share a file */
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", s->path) >= sizeof tmp) {
		snprintf(err, errlen, "%s: path too long", s->path);
		return -1;
	}
	if ((fd = mkstemp(tmp)) < 0) {
		snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
		return -1;
	}
	if (write_all(fd, s->image, s->len) < 0 || write_all(fd, mac, MAC_BYTES) < 0) {
		what = "write";
		goto fail;
	}
	if (fsync(fd) < 0) {
		what = "fsync";
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		what = "close";
		goto fail;
	}
	fd = -1;
	if (rename(tmp, s->path) < 0) {
		what = "rename";
		goto fail;
	}
	if (fsync_dir(s->path) < 0) {
		snprintf(err, errlen, "%s: written, but syncing its directory failed: %s", s->path,
		    strerror(errno));
		return -1;
	}
	return 0;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	snprintf(err, errlen, "%s: %s failed: %s", tmp, what, strerror(e));
	return -1;
}

int sentlog_flush(struct sentlog *l, char *err, size_t errlen)
{
	struct sentlog_snapshot *s;
	int rc;

	if (errlen)
		err[0] = '\0';
	if (l->path == NULL) {
		snprintf(err, errlen, "sentlog: no state_dir: nothing is persisted");
		return -1;
	}
	if (!l->dirty)
		return 0;
	if ((s = sentlog_snapshot(l)) == NULL) {
		snprintf(err, errlen, "%s: out of memory for the snapshot", l->path);
		return -1;
	}
	rc = sentlog_snapshot_write(s, err, errlen);
	sentlog_snapshot_free(s);
	if (rc < 0)
		l->dirty = true;
	return rc;
}

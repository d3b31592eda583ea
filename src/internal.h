/* internal.h — declarations shared between src/ files but not public (lxshm__ names).
 * Nothing a C host needs lives here; hosts use lxshm.h only. */
#ifndef LXSHM_INTERNAL_H
#define LXSHM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lxshm.h"

#if defined(__MINGW32__) /* gcc reads "printf" as msvcrt's dialect there; the build uses mingw's \
                           C99 printf family (__USE_MINGW_ANSI_STDIO), so check that one */
#define LXSHM__PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#elif defined(__GNUC__)
#define LXSHM__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define LXSHM__PRINTF(f, a)
#endif

/* Fills err (if not NULL) with a formatted cause and os_code 0; returns st unchanged, so a
 * failure reads `return lxshm__fail(err, LXSHM_CORRUPT, "header says %u", x);`. */
lxshm_status lxshm__fail(lxshm_error *err, lxshm_status st, const char *fmt, ...)
    LXSHM__PRINTF(3, 4);

/* As lxshm_check_name, for a name of known length that may contain zero bytes: OK, or INVALID
 * with "invalid WHATname: use 1-64 characters from …" in err (what: "" or "subscription "). */
lxshm_status lxshm__check_name(const char *name, size_t len, const char *what, lxshm_error *err);

/* The length of a C string name, counting at most LXSHM_NAME_MAX + 1 bytes (enough to refuse
 * it); 0 for NULL. */
size_t lxshm__name_len(const char *name);

/* Absolute monotonic deadline, in ns, `timeout` seconds from now; UINT64_MAX for a negative
 * timeout (no limit). */
uint64_t lxshm__deadline(double timeout);

/* ---- what a stored value's bytes are --------------------------------------------------- */

/* The format of put/get values (doc/FORMAT.md), kept in every header. */
#define LXSHM__CODEC_VERSION 1

#define LXSHM__FORMAT_RAW 0     /* bytes from write(): get() returns them as a string */
#define LXSHM__FORMAT_MSGPACK 1 /* bytes from put(): get() decodes them */

/* Stores the value head[0..hlen-1] followed by data[0..len-1] (hlen may be 0: a prefix such as
 * a MessagePack header, so that a large body is copied only once) with its format tag;
 * otherwise as lxshm_write. */
lxshm_status lxshm__write(lxshm_segment *seg, const void *head, size_t hlen, const void *data,
                          size_t len, unsigned format, double timeout, lxshm_error *err);

/* As lxshm_read, and also gives the value's format tag (may be NULL). */
lxshm_status lxshm__read(lxshm_segment *seg, void *buf, size_t cap, size_t *len, uint64_t *version,
                         unsigned *format, lxshm_error *err);

/* Where a lock-free read copies the value straight out of the mapping (the binding makes a Lua
 * string of it: one copy instead of two). take(ud, data, len, format) copies what it wants of
 * the value in place, reading only; it returns 0 to decline the value (nothing taken). If a
 * writer overtook the copy, drop(ud) forgets it. */
typedef struct lxshm__sink {
  int (*take)(void *ud, const char *data, size_t len, unsigned format);
  void (*drop)(void *ud);
  void *ud;
} lxshm__sink;

/* Hands the current value to sink->take in place and keeps the copy only if no writer overtook
 * it, retrying a few times. Returns 1 when a whole copy was taken, 0 when the sink declined or
 * writers kept overtaking it (or the descriptor is damaged): lxshm__read then says which. Takes
 * no lock. */
int lxshm__read_in_place(lxshm_segment *seg, const lxshm__sink *sink);

/* Length of the value committed last: a hint for sizing a buffer before lxshm__read. */
uint64_t lxshm__used(const lxshm_segment *seg);

/* ---- the lock, for callers that run code between lock and commit (update) --------------- */

/* Takes the segment's lock, waiting until `deadline` (lxshm__deadline). If the previous owner
 * died holding it, repairs the shared state first (the value stays the last committed one).
 * Fails with TIMEOUT, INVALID (this thread holds it already) or CORRUPT (unrecoverable). */
lxshm_status lxshm__lock(lxshm_segment *seg, uint64_t deadline, lxshm_error *err);

/* Releases the lock taken by lxshm__lock. */
void lxshm__unlock(lxshm_segment *seg);

/* The current value in place: valid only while the lock is held. */
void lxshm__current_locked(lxshm_segment *seg, const char **data, size_t *len, unsigned *format);

/* Commits head[0..hlen-1] followed by data[0..len-1] as the new value; the lock must be held.
 * Fails with INVALID_SIZE (hlen + len above the capacity), leaving the stored value unchanged.
 * Wakes waiters once the lock is released. */
lxshm_status lxshm__commit_locked(lxshm_segment *seg, const void *head, size_t hlen,
                                  const void *data, size_t len, unsigned format, lxshm_error *err);

/* ---- waiting ----------------------------------------------------------------------------- */

/* Lets a caller run its own checks between sleeps (the Lua binding lets interrupt hooks such as
 * lua.c's Ctrl-C handler fire); returning nonzero ends the wait with LXSHM__INTERRUPTED. */
typedef struct lxshm__interrupt {
  int (*check)(void *ud);
  void *ud;
} lxshm__interrupt;

#define LXSHM__INTERRUPTED ((lxshm_status)100) /* internal: never returned by lxshm.h calls */

/* ---- runs of records: a queue's push_many, a topic's publish_many ---------------------------- */

/* Values given as whole records (ring.h: lxshm__record_put builds them), to store as one run. The
 * functions that store them take the queue or topic as the object it starts with (object.h), so
 * that the binding reaches either through one function type. */
typedef struct lxshm__object lxshm__object;

typedef struct lxshm__records {
  const void *data;             /* the records */
  size_t bytes;                 /* their bytes */
  uint64_t count;               /* values */
  double timeout;               /* seconds to wait (for room, or for the publishers' lock) */
  const lxshm__interrupt *intr; /* checked between sleeps; may be NULL */
  uint64_t seq;                 /* found, topic: the last one's sequence number */
} lxshm__records;

/* ---- takes: reads that wait, from a queue or a subscription ---------------------------------- */

/* What a take asks (the caller sets these, the rest zero) and what it found. */
typedef struct lxshm__take {
  void *buf;      /* where to copy */
  size_t cap;     /* its size */
  int whole;      /* 0: the next value's bytes; 1: up to `max` whole records (ring.h) */
  uint64_t max;   /* whole: values at most (0 counts as 1) */
  int remove;     /* queue: 1 takes the values, 0 leaves them queued (peek) */
  double timeout; /* seconds to wait while there is none: 0 none, < 0 no limit */
  const lxshm__interrupt *intr; /* checked between sleeps; may be NULL */
  size_t len;                   /* found: bytes copied; with INVALID_SIZE, bytes the next needs */
  unsigned format;              /* found: the value's format (whole = 0) */
  uint64_t count;               /* found: values taken */
  uint64_t first; /* found, topic: the first one's sequence number (binding: a read's version) */
  uint64_t lost;  /* found, topic: messages lost before the first */
  uint64_t at;    /* found, queue: where a damaged record starts */
} lxshm__take;

/* As lxshm_wait, and returns LXSHM__INTERRUPTED when intr (may be NULL) says so. */
lxshm_status lxshm__wait(lxshm_segment *seg, uint64_t version, double timeout, uint64_t *now,
                         const lxshm__interrupt *intr, lxshm_error *err);

/* ---- queues, with format tags and interruptible waits ---------------------------------- */

/* As lxshm_queue_push, with the value's format tag and an interrupt check (may be NULL). */
lxshm_status lxshm__queue_push(lxshm_queue *q, const void *data, size_t len, unsigned format,
                               double timeout, const lxshm__interrupt *intr, lxshm_error *err);

/* Takes the oldest value (as lxshm_queue_pop, or lxshm_queue_peek without t->remove), or up to
 * t->max of the oldest as whole records, as many as fit, under one lock; waits while the queue
 * is empty. If the oldest alone does not fit, INVALID_SIZE with t->len set to its size, and it
 * stays queued. */
lxshm_status lxshm__queue_take(lxshm_queue *q, lxshm__take *t, lxshm_error *err);

/* The largest value one push can take: what an empty queue holds as one record. */
uint64_t lxshm__queue_max_value(const lxshm_queue *q);

/* Appends r->count values given as whole records, as one run: one lock, one wake-up, the values
 * contiguous and in order. Waits for room for all of them; INVALID_SIZE if they could never
 * fit. Nothing is pushed on failure; a run of none does nothing. */
lxshm_status lxshm__queue_push_records(lxshm__object *q, lxshm__records *r, lxshm_error *err);

/* Length of the oldest value, or 0 when the queue is empty: a hint for sizing a buffer. */
size_t lxshm__queue_front_length(lxshm_queue *q);

/* ---- topics, with format tags, batches and interruptible waits ------------------------- */

/* As lxshm_topic_publish, for the value head[0..hlen-1] followed by data[0..len-1] (as
 * lxshm__write) with its format tag. */
lxshm_status lxshm__topic_publish(lxshm_topic *t, const void *head, size_t hlen, const void *data,
                                  size_t len, unsigned format, double timeout, uint64_t *seq,
                                  lxshm_error *err);

/* Publishes r->count values given as whole records as consecutive messages: one lock, one
 * wake-up, all or nothing; r->seq is the last one's number (for a run of none, which does
 * nothing, the topic's last). INVALID_SIZE if they cannot all be held at once. */
lxshm_status lxshm__topic_publish_records(lxshm__object *t, lxshm__records *r, lxshm_error *err);

/* The largest value one message can hold. */
uint64_t lxshm__topic_max_value(const lxshm_topic *t);

/* As lxshm_topic_subscribe and lxshm_topic_unsubscribe, for a name of known length (NULL: an
 * anonymous subscription) that may contain zero bytes. */
lxshm_status lxshm__topic_subscribe(lxshm_topic *t, const char *name, size_t len, uint64_t from,
                                    lxshm_subscription **out, lxshm_error *err);
lxshm_status lxshm__topic_unsubscribe(lxshm_topic *t, const char *name, size_t len,
                                      lxshm_error *err);

/* Frees a subscription whose topic is already unmapped, touching nothing of it: a named one
 * stays held until its holder's process ends. */
void lxshm__subscription_forget(lxshm_subscription *sub);

/* The name of a named subscription; NULL for an anonymous one. */
const char *lxshm__subscription_name(const lxshm_subscription *sub);

/* Takes the subscription's next message (as lxshm_subscription_next), or up to t->max of them
 * as whole records, as many as fit: at least one, waiting while there is none. If the next alone
 * does not fit, INVALID_SIZE with t->len set to its size. */
lxshm_status lxshm__subscription_take(lxshm_subscription *sub, lxshm__take *t, lxshm_error *err);

/* Length of the subscription's next value, or 0 when there is none yet: a hint for sizing a
 * buffer. */
size_t lxshm__subscription_front_length(const lxshm_subscription *sub);

/* ---- introspection ---------------------------------------------------------------------------
 * What stat shows of each kind, as X(name) for each figure. A kind's stat struct holds them in
 * this order, each a uint64_t, and lxshm__figures lays them over an array, so that stat in either
 * binding is one loop over names and values. A name ending in _ns is a wall-clock time in ns
 * since the epoch, shown to Lua without the suffix, in seconds. The Redis backend fills the same
 * structs. */

/* size: capacity in bytes; used: bytes of the current value; version: commits so far;
 * writer_pid: process of the last commit and updated_ns: its time (both 0 before any);
 * waiters: processes blocked in wait now. */
#define LXSHM__SEGMENT_FIGURES(X) X(size) X(used) X(version) X(writer_pid) X(updated_ns) X(waiters)

/* size: bytes of the ring; used: bytes in use; count: values waiting; pop_waiters: processes
 * blocked in pop, waiting for a value; push_waiters: in push, waiting for room. */
#define LXSHM__QUEUE_FIGURES(X) X(size) X(used) X(count) X(pop_waiters) X(push_waiters)

/* capacity: bytes for entries, as created; used: of them, bytes not free; count: keys present;
 * evictions: live keys evicted to make room, ever; expirations: expired keys reclaimed, ever;
 * version: changes of any key so far; free: lxshm_dict_free_space without reclaiming;
 * waiters: processes in wait now. */
#define LXSHM__DICT_FIGURES(X) \
  X(capacity) X(used) X(count) X(evictions) X(expirations) X(version) X(free) X(waiters)

/* size: bytes of the ring; last: newest message, 0 before any; oldest: oldest message held, last
 * + 1 when none; subscribers: named subscriptions; waiters: processes blocked in next. */
#define LXSHM__TOPIC_FIGURES(X) X(size) X(last) X(oldest) X(subscribers) X(waiters)

#define LXSHM__FIGURE_FIELD(name) uint64_t name;
#define LXSHM__FIGURE_NAME(name) #name " "

/* The names as one string of words: "size used count pop_waiters push_waiters " */
#define LXSHM__SEGMENT_NAMES LXSHM__SEGMENT_FIGURES(LXSHM__FIGURE_NAME)
#define LXSHM__QUEUE_NAMES LXSHM__QUEUE_FIGURES(LXSHM__FIGURE_NAME)
#define LXSHM__DICT_NAMES LXSHM__DICT_FIGURES(LXSHM__FIGURE_NAME)
#define LXSHM__TOPIC_NAMES LXSHM__TOPIC_FIGURES(LXSHM__FIGURE_NAME)

typedef struct lxshm__segment_stat {
  LXSHM__SEGMENT_FIGURES(LXSHM__FIGURE_FIELD)
} lxshm__segment_stat;
typedef struct lxshm__queue_stat {
  LXSHM__QUEUE_FIGURES(LXSHM__FIGURE_FIELD)
} lxshm__queue_stat;
typedef struct lxshm__dict_stat {
  LXSHM__DICT_FIGURES(LXSHM__FIGURE_FIELD)
} lxshm__dict_stat;
typedef struct lxshm__topic_stat {
  LXSHM__TOPIC_FIGURES(LXSHM__FIGURE_FIELD)
} lxshm__topic_stat;

/* Any kind's figures; figure[i] is the one named by the i-th word of the kind's names. */
#define LXSHM__FIGURES_MAX 8
typedef union lxshm__figures {
  uint64_t figure[LXSHM__FIGURES_MAX];
  lxshm__segment_stat segment;
  lxshm__queue_stat queue;
  lxshm__dict_stat dict;
  lxshm__topic_stat topic;
} lxshm__figures;

/* Fills *out with the figures of the handle of any kind (lxshm_segment, lxshm_queue, …). Each
 * is read once; they may belong to slightly different instants while others change the object,
 * but a segment's describe one commit. Cannot fail. */
void lxshm__figures_get(void *handle, lxshm__figures *out);

/* ---- dictionaries, for the binding (dict.c) ------------------------------------------------ */

/* A key as a dictionary stores it: a type and bytes. A C key is a string key. Numbers are the
 * 8 bytes of an int64_t or a double in the machine's order; a float with an integral value that
 * fits an int64_t must be given as that integer (the binding does so). */
#define LXSHM__KEY_STRING 1u
#define LXSHM__KEY_INTEGER 2u
#define LXSHM__KEY_FLOAT 3u
#define LXSHM__KEY_BOOLEAN 4u /* 1 byte: 0 or 1 */

typedef struct lxshm__dict_key {
  const void *data;
  size_t len;
  unsigned type;
} lxshm__dict_key;

/* A number as incr sees it. */
typedef struct lxshm__dict_number {
  int is_int; /* i holds it; else f */
  int64_t i;
  double f;
} lxshm__dict_number;

/* number.c: the number that the MessagePack bytes p[0..n-1] are exactly, or 0 if they are
 * something else; the bytes the codec writes for x (at most 9), and their length; a + b, an
 * integer (wrapping) when both are integers, else a double. */
int lxshm__number_parse(const unsigned char *p, size_t n, lxshm__dict_number *x);
size_t lxshm__number_encode(const lxshm__dict_number *x, unsigned char *p);
void lxshm__number_add(const lxshm__dict_number *a, const lxshm__dict_number *b,
                       lxshm__dict_number *sum);

/* How lxshm__dict_store stores: lxshm.h's LXSHM_DICT_ADD, _REPLACE, _SAFE, and CAS: only if
 * the key's version is `expected` (0: absent), else CONFLICT. */
#define LXSHM__DICT_CAS 8u

/* As lxshm_dict_get, giving the value's format tag too. */
lxshm_status lxshm__dict_get(lxshm_dict *d, const lxshm__dict_key *key, void *buf, size_t cap,
                             size_t *len, unsigned *format, uint64_t *version, lxshm_error *err);

/* Stores (data, len, format) under key as `flags` say (data NULL: deletes, where the flags
 * allow); `ttl` in seconds, 0 for none. Otherwise as lxshm_dict_set and lxshm_dict_cas. */
lxshm_status lxshm__dict_store(lxshm_dict *d, const lxshm__dict_key *key, unsigned flags,
                               uint64_t expected, const void *data, size_t len, unsigned format,
                               double ttl, uint64_t *version, uint64_t *evicted, lxshm_error *err);

/* As lxshm_dict_incr for any numbers: integer plus integer stays an integer (wrapping), else
 * the sum is a double. */
lxshm_status lxshm__dict_incr(lxshm_dict *d, const lxshm__dict_key *key,
                              const lxshm__dict_number *step, const lxshm__dict_number *init,
                              double init_ttl, lxshm__dict_number *out, lxshm_error *err);

lxshm_status lxshm__dict_delete(lxshm_dict *d, const lxshm__dict_key *key, lxshm_error *err);
uint64_t lxshm__dict_version(lxshm_dict *d, const lxshm__dict_key *key);
lxshm_status lxshm__dict_wait(lxshm_dict *d, const lxshm__dict_key *key, uint64_t version,
                              double timeout, uint64_t *now, const lxshm__interrupt *intr,
                              lxshm_error *err);
lxshm_status lxshm__dict_ttl(lxshm_dict *d, const lxshm__dict_key *key, double *seconds,
                             lxshm_error *err);
lxshm_status lxshm__dict_expire(lxshm_dict *d, const lxshm__dict_key *key, double ttl,
                                lxshm_error *err);

/* The longest value a key of klen bytes can have in this dictionary (an empty one). */
uint64_t lxshm__dict_max_value(const lxshm_dict *d, size_t klen);

/* A random number that tells this dictionary from any other (a nested update's check). */
uint64_t lxshm__dict_id(const lxshm_dict *d);

/* update(k, fn): the key's stripe locked across a call of the caller's code. */
typedef struct lxshm__dict_held {
  lxshm__dict_key key;
  uint64_t hash;
  uint32_t stripe;
} lxshm__dict_held;

/* Locks the stripe of `key` (held->key must stay valid until the unlock). Fails with CORRUPT,
 * INVALID (held by this thread already) or PERMISSION (read-only). */
lxshm_status lxshm__dict_lock_key(lxshm_dict *d, const lxshm__dict_key *key, lxshm__dict_held *held,
                                  lxshm_error *err);
/* The key's current value under the lock, as lxshm__dict_get; NOT_FOUND when absent. */
lxshm_status lxshm__dict_current_locked(lxshm_dict *d, const lxshm__dict_held *held, void *buf,
                                        size_t cap, size_t *len, unsigned *format,
                                        lxshm_error *err);
/* Stores (or with data NULL deletes) under the lock, as lxshm__dict_store with flags 0. Room
 * is made by evicting from stripes whose lock is free at the moment, and the key's own. */
lxshm_status lxshm__dict_store_locked(lxshm_dict *d, const lxshm__dict_held *held, const void *data,
                                      size_t len, unsigned format, double ttl, uint64_t *version,
                                      uint64_t *evicted, lxshm_error *err);
/* Unlocks and wakes the stripe's waiters. */
void lxshm__dict_unlock_key(lxshm_dict *d, const lxshm__dict_held *held);

/* Copies whole buckets, from *cursor on, into buf (cap bytes) as records: u32 key bytes, u32
 * value bytes (0 unless values), u8 key type, u8 format, u16 zero, u64 version, the key, the
 * value, padded to 8. Expired entries are skipped. On OK *used bytes hold *count records and
 * *cursor points past them (LXSHM__DICT_END: the walk is over). INVALID_SIZE: the next bucket
 * alone needs *used bytes. Takes no lock (or a stripe's briefly, when writers keep moving). */
#define LXSHM__DICT_END UINT64_MAX
#define LXSHM__DICT_RECORD 24u
lxshm_status lxshm__dict_scan(lxshm_dict *d, uint64_t *cursor, int values, void *buf, size_t cap,
                              size_t *used, uint32_t *count, lxshm_error *err);

/* Test-only: when not NULL, called at every step of a change where a process could die with a
 * lasting effect (before each shared write, at each commit), so that a test can end the process
 * there. */
extern void (*lxshm__dict_step_hook)(void);

/* Test-only: when not NULL, called by a subscription's every attempt to copy, after its checks
 * of `last` and `oldest` and before it reads a record, so that a test can publish there. */
extern void (*lxshm__topic_take_hook)(void);

#endif

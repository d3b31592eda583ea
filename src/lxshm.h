/* lxshm.h — the public C API: named shared-memory segments guarded by an inter-process lock.
 * The same core the Lua module uses. Every function that can fail returns an lxshm_status and
 * fills an optional lxshm_error; nothing here aborts, exits or prints. No OS or Lua types. */
#ifndef LXSHM_H
#define LXSHM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(LXSHM_BUILDING_DLL)
#define LXSHM_API __declspec(dllexport)
#elif defined(__GNUC__)
#define LXSHM_API __attribute__((visibility("default")))
#else
#define LXSHM_API
#endif

#define LXSHM_VERSION "0.1.0"

/* Status codes: X(NAME, value, description). The first four keep the numbers of the Windows
 * recipe lxshm grew from; the others are stable and documented in README.md. This list is the
 * only place codes are written: the enum, lxshm_strerror and the Lua constants expand from it.
 * The first ten come from any kind of object; the last three from some only. */
#define LXSHM_STATUS_MAP(X) LXSHM__STATUS_ANY(X) LXSHM__STATUS_SOME(X)

#define LXSHM__STATUS_ANY(X)                       \
  X(OK, 0, "success")                              \
  X(EXISTS, 1, "already exists")                   \
  X(INVALID, 2, "invalid name, handle or mapping") \
  X(INVALID_SIZE, 3, "invalid size")               \
  X(NOT_FOUND, 4, "not found")                     \
  X(TIMEOUT, 5, "timed out")                       \
  X(CORRUPT, 6, "corrupt data")                    \
  X(PERMISSION, 7, "permission denied")            \
  X(UNSUPPORTED, 8, "value cannot be stored")      \
  X(SYSTEM, 9, "system error")

/* FULL: a dictionary that would have to evict (safe_set, safe_add), a topic with no name left
 * for a subscription, a Redis server out of memory; CONFLICT: a compare-and-set lost to another
 * change; UNAVAILABLE: the Redis backend cannot reach its server. */
#define LXSHM__STATUS_SOME(X)                        \
  X(FULL, 10, "no room without evicting")            \
  X(CONFLICT, 11, "changed since the version given") \
  X(UNAVAILABLE, 12, "remote backend unreachable")

typedef enum lxshm_status {
#define LXSHM_ENUM_ITEM(name, value, text) LXSHM_##name = value,
  LXSHM_STATUS_MAP(LXSHM_ENUM_ITEM)
#undef LXSHM_ENUM_ITEM
} lxshm_status;

/* Details of a failure, for messages. Pass NULL wherever details are not wanted. */
typedef struct lxshm_error {
  int os_code;       /* errno or GetLastError() of the failed OS call; 0 when no OS call failed */
  char message[192]; /* the cause, e.g. "shm_open: Permission denied"; "" when none was given */
} lxshm_error;

/* An open handle on a segment. Opaque; one per lxshm_create/open/attach, freed by lxshm_close.
 * A handle is not thread-safe: give each thread its own, or serialize calls. */
typedef struct lxshm_segment lxshm_segment;

/* Limits. A name is 1..LXSHM_NAME_MAX bytes from [A-Za-z0-9._-], not starting with '.' or '-'. */
#define LXSHM_NAME_MAX 64
#define LXSHM_SIZE_MAX ((uint64_t)1 << 40) /* largest capacity accepted by create: 1 TiB */
#define LXSHM_DEFAULT_MODE 0600
#define LXSHM_FOREVER (-1.0) /* any negative timeout: wait without limit */

/* Name and text of a status ("EXISTS", "already exists"); "UNKNOWN"/"unknown status" otherwise. */
LXSHM_API const char *lxshm_status_name(lxshm_status st);
LXSHM_API const char *lxshm_strerror(lxshm_status st);

/* Checks a name against SPEC §2. Returns LXSHM_OK or LXSHM_INVALID; makes no OS call. */
LXSHM_API lxshm_status lxshm_check_name(const char *name);

/* Creates segment `name` holding values of up to `size` bytes, with permission bits `mode`
 * (e.g. LXSHM_DEFAULT_MODE). On LXSHM_OK *out is a new handle. Fails with INVALID (bad name),
 * INVALID_SIZE (size 0, above LXSHM_SIZE_MAX, or no room in the OS), EXISTS, PERMISSION or
 * SYSTEM; on failure nothing is left behind under the name. */
LXSHM_API lxshm_status lxshm_create(const char *name, uint64_t size, unsigned mode,
                                    lxshm_segment **out, lxshm_error *err);

/* Opens an existing segment. Waits a bounded time (well under a second) for a concurrent
 * creator to finish. Fails with INVALID (bad name, not an lxshm mapping, another kind of object,
 * or another layout), NOT_FOUND, CORRUPT (damaged or never finished), PERMISSION (the OS refused,
 * or the object belongs to another user: see LXSHM_TRUST) or SYSTEM. */
LXSHM_API lxshm_status lxshm_open(const char *name, lxshm_segment **out, lxshm_error *err);

/* Options of the lxshm_*_open_with calls, or-ed together. */
#define LXSHM_READONLY                                                     \
  1u /* map read-only: reading works, writing fails with LXSHM_PERMISSION. \
        Needs only read permission, and cannot damage anyone's lock */
#define LXSHM_TRUST                                                        \
  2u /* accept an object that belongs to another user. Every process that  \
        can write an object is trusted with the memory of every process    \
        using it (its lock's bytes steer the OS's lock code): without this \
        flag such an object is refused with LXSHM_PERMISSION */

/* As lxshm_open, with options (LXSHM_READONLY, LXSHM_TRUST; 0 is lxshm_open). */
LXSHM_API lxshm_status lxshm_open_with(const char *name, unsigned flags, lxshm_segment **out,
                                       lxshm_error *err);

/* Opens `name` if it exists, else creates it as lxshm_create would. Race-free: of several
 * processes attaching to a new name at once, exactly one creates it. *created (may be NULL)
 * tells which happened. */
LXSHM_API lxshm_status lxshm_attach(const char *name, uint64_t size, unsigned mode,
                                    lxshm_segment **out, int *created, lxshm_error *err);

/* Removes the name. Open handles keep working until closed; a later create makes a new, empty
 * segment. Fails with INVALID, NOT_FOUND, PERMISSION or SYSTEM. */
LXSHM_API lxshm_status lxshm_remove(const char *name, lxshm_error *err);

/* Unmaps and frees the handle. Must not be called while the handle holds the lock. NULL is
 * ignored. */
LXSHM_API void lxshm_close(lxshm_segment *seg);

LXSHM_API uint64_t lxshm_size(const lxshm_segment *seg);    /* capacity given to create */
LXSHM_API const char *lxshm_name(const lxshm_segment *seg); /* the segment's name */
LXSHM_API uint64_t lxshm_version(const lxshm_segment *seg); /* commits so far; 0 when new */

/* Stores `len` bytes as the current value, atomically for readers in every process. Waits for
 * the lock at most `timeout` seconds (negative: no limit). Fails with INVALID_SIZE (len above
 * the capacity), TIMEOUT, CORRUPT (lock unrecoverable) or INVALID (lock already held by this
 * thread); on failure the stored value is unchanged. */
LXSHM_API lxshm_status lxshm_write(lxshm_segment *seg, const void *data, size_t len, double timeout,
                                   lxshm_error *err);

/* Copies the current value into buf (cap bytes). On LXSHM_OK *len is its length and *version
 * (may be NULL) the version it was committed as: bytes and version belong to one commit.
 * If cap is too small, returns LXSHM_INVALID_SIZE with *len set to the length needed. Never
 * blocks writers; takes the lock briefly only when writers keep overtaking the copy. */
LXSHM_API lxshm_status lxshm_read(lxshm_segment *seg, void *buf, size_t cap, size_t *len,
                                  uint64_t *version, lxshm_error *err);

/* Blocks until the version differs from `version`, at most `timeout` seconds (negative: no
 * limit; 0: check once). On LXSHM_OK *now (may be NULL) is the new version; otherwise
 * LXSHM_TIMEOUT. Signals do not end the wait early. */
LXSHM_API lxshm_status lxshm_wait(lxshm_segment *seg, uint64_t version, double timeout,
                                  uint64_t *now, lxshm_error *err);

/* ---- queues: many values, in order, each popped once --------------------------------------
 *
 * A queue is a ring of `size` bytes (rounded up to a multiple of 8) in a named object, shared by
 * any number of producers and consumers. Each value takes its length plus 8 bytes, rounded up
 * to 8. Values pushed by one producer are popped in push order, each exactly once. A process
 * killed in the middle of a push or pop leaves no half value and does not block the others.
 * Queues and segments share one namespace: lxshm_remove removes either. */
typedef struct lxshm_queue lxshm_queue;

/* As lxshm_create / lxshm_open / lxshm_attach, for queues. Opening a segment as a queue is
 * INVALID. */
LXSHM_API lxshm_status lxshm_queue_create(const char *name, uint64_t size, unsigned mode,
                                          lxshm_queue **out, lxshm_error *err);
LXSHM_API lxshm_status lxshm_queue_attach(const char *name, uint64_t size, unsigned mode,
                                          lxshm_queue **out, int *created, lxshm_error *err);
LXSHM_API lxshm_status lxshm_queue_open(const char *name, lxshm_queue **out, lxshm_error *err);
LXSHM_API lxshm_status lxshm_queue_open_with(const char *name, unsigned flags, lxshm_queue **out,
                                             lxshm_error *err);
LXSHM_API void lxshm_queue_close(lxshm_queue *q);

LXSHM_API uint64_t lxshm_queue_size(const lxshm_queue *q);    /* bytes of the ring */
LXSHM_API const char *lxshm_queue_name(const lxshm_queue *q); /* the queue's name */
LXSHM_API uint64_t lxshm_queue_count(const lxshm_queue *q);   /* values waiting */
LXSHM_API uint64_t lxshm_queue_used(const lxshm_queue *q);    /* bytes in use */

/* Appends `len` bytes as one value, waiting up to `timeout` seconds (negative: no limit; 0:
 * don't wait) while the queue is full. Fails with INVALID_SIZE (the value cannot fit even an
 * empty queue), TIMEOUT (still full), CORRUPT or INVALID (a lock already held by this thread). */
LXSHM_API lxshm_status lxshm_queue_push(lxshm_queue *q, const void *data, size_t len,
                                        double timeout, lxshm_error *err);

/* Removes the oldest value and copies it into buf (cap bytes), waiting up to `timeout` seconds
 * while the queue is empty. On LXSHM_OK *len is its length. Fails with TIMEOUT (still empty),
 * INVALID_SIZE (cap too small: *len says how much is needed, and the value stays queued) or
 * CORRUPT (the ring is damaged). */
LXSHM_API lxshm_status lxshm_queue_pop(lxshm_queue *q, void *buf, size_t cap, size_t *len,
                                       double timeout, lxshm_error *err);

/* As lxshm_queue_pop without removing the value and without waiting: TIMEOUT when empty. */
LXSHM_API lxshm_status lxshm_queue_peek(lxshm_queue *q, void *buf, size_t cap, size_t *len,
                                        lxshm_error *err);

/* ---- dictionaries: many keys in one object, each with a value, a version and an expiry -------
 *
 * A dictionary holds keys of 1..LXSHM_DICT_KEY_MAX bytes (any bytes) with values of raw bytes,
 * in `size` bytes of shared memory (rounded up to a multiple of 4 KiB, at least 16 KiB, at most
 * LXSHM_DICT_SIZE_MAX), shared by any number of processes. A C key is the Lua string key with
 * the same bytes; a C value reads back in Lua (d:get) as a string, and a value stored from Lua
 * reads back here as its MessagePack bytes (doc/FORMAT.md). Readers take no lock; writers of
 * different keys mostly take different locks. When memory is short a store first reclaims
 * expired keys, then evicts the least recently used live ones (approximately: doc/DICT.md).
 * A process killed at any instant leaves every other key intact and the key it was changing
 * with its old or its new value; the next process to take the lock repairs the rest.
 *
 * Versions: every change of a key gives it a new version, a positive number never used before
 * in the dictionary; an absent key has version 0. TTLs are seconds on the machine's monotonic
 * clock (fractions allowed); 0 or less means no expiry. An expired key is absent to every call.
 * Dictionaries share the names of segments and queues: lxshm_remove removes them too. */
typedef struct lxshm_dict lxshm_dict;

#define LXSHM_DICT_KEY_MAX 65535                /* longest key, in bytes */
#define LXSHM_DICT_SIZE_MAX ((uint64_t)1 << 34) /* largest size a dictionary may have: 16 GiB */

/* As lxshm_create / lxshm_open / lxshm_attach, for dictionaries. Opening another kind of object
 * as a dictionary, or a dictionary as another kind, is INVALID. */
LXSHM_API lxshm_status lxshm_dict_create(const char *name, uint64_t size, unsigned mode,
                                         lxshm_dict **out, lxshm_error *err);
LXSHM_API lxshm_status lxshm_dict_open(const char *name, lxshm_dict **out, lxshm_error *err);
LXSHM_API lxshm_status lxshm_dict_open_with(const char *name, unsigned flags, lxshm_dict **out,
                                            lxshm_error *err);
LXSHM_API lxshm_status lxshm_dict_attach(const char *name, uint64_t size, unsigned mode,
                                         lxshm_dict **out, int *created, lxshm_error *err);
LXSHM_API void lxshm_dict_close(lxshm_dict *d);

LXSHM_API const char *lxshm_dict_name(const lxshm_dict *d);  /* the dictionary's name */
LXSHM_API uint64_t lxshm_dict_capacity(const lxshm_dict *d); /* bytes reserved for entries */
LXSHM_API uint64_t lxshm_dict_count(lxshm_dict *d);          /* keys present (not expired) */

/* Bytes of key and value that a new key could store now without evicting anything (expired
 * keys are reclaimed first, unless the handle is read-only). */
LXSHM_API uint64_t lxshm_dict_free_space(lxshm_dict *d);

/* Copies the value of `key` into buf (cap bytes). On OK *len is its length and *version (may be
 * NULL) its version. NOT_FOUND when absent or expired; INVALID_SIZE when cap is too small
 * (*len says how much is needed) or the key is empty or too long. Takes no lock. */
LXSHM_API lxshm_status lxshm_dict_get(lxshm_dict *d, const void *key, size_t klen, void *buf,
                                      size_t cap, size_t *len, uint64_t *version, lxshm_error *err);

/* What lxshm_dict_set does besides storing. */
#define LXSHM_DICT_ADD 1u     /* only if the key is absent (or expired); else EXISTS */
#define LXSHM_DICT_REPLACE 2u /* only if the key is present; else NOT_FOUND */
#define LXSHM_DICT_SAFE 4u    /* never evict a live key: FULL instead */

/* Stores `len` bytes as the value of `key`, expiring after `ttl` seconds (0: never), as `flags`
 * say. On OK *version (may be NULL) is the new version and *evicted (may be NULL) the number of
 * live keys evicted to make room. Fails with INVALID_SIZE (empty or too long key, or a value that
 * could not fit even an empty dictionary), EXISTS, NOT_FOUND, FULL, PERMISSION (read-only) or
 * CORRUPT; on failure nothing changes but the expired keys reclaimed. */
LXSHM_API lxshm_status lxshm_dict_set(lxshm_dict *d, const void *key, size_t klen, const void *data,
                                      size_t len, double ttl, unsigned flags, uint64_t *version,
                                      uint64_t *evicted, lxshm_error *err);

/* As lxshm_dict_set, only if the key's version is still `expected` (0: the key must be absent);
 * else CONFLICT. */
LXSHM_API lxshm_status lxshm_dict_cas(lxshm_dict *d, const void *key, size_t klen,
                                      uint64_t expected, const void *data, size_t len, double ttl,
                                      uint64_t *version, lxshm_error *err);

/* Removes the key; OK whether or not it was present. */
LXSHM_API lxshm_status lxshm_dict_delete(lxshm_dict *d, const void *key, size_t klen,
                                         lxshm_error *err);

/* Adds `step` to the integer stored under `key` (wrapping around as 64-bit integers do) and
 * gives the sum in *out. An absent key fails with NOT_FOUND unless `has_init`: then it starts
 * from `init`, expiring after `init_ttl` seconds. A value that is not an integer stored by incr
 * or by Lua (MessagePack) is INVALID. */
LXSHM_API lxshm_status lxshm_dict_incr(lxshm_dict *d, const void *key, size_t klen, int64_t step,
                                       int has_init, int64_t init, double init_ttl, int64_t *out,
                                       lxshm_error *err);

/* The key's version: 0 when absent or expired. Takes no lock. */
LXSHM_API uint64_t lxshm_dict_version(lxshm_dict *d, const void *key, size_t klen);

/* Blocks until the key's version differs from `version`, at most `timeout` seconds (negative:
 * no limit; 0: check once). On OK *now (may be NULL) is the new version; else TIMEOUT. Changes
 * of other keys may wake the waiter, which then sleeps again. */
LXSHM_API lxshm_status lxshm_dict_wait(lxshm_dict *d, const void *key, size_t klen,
                                       uint64_t version, double timeout, uint64_t *now,
                                       lxshm_error *err);

/* Seconds until the key expires (a negative number: never) in *seconds; NOT_FOUND when absent. */
LXSHM_API lxshm_status lxshm_dict_ttl(lxshm_dict *d, const void *key, size_t klen, double *seconds,
                                      lxshm_error *err);

/* Sets a present key to expire after `ttl` seconds (0: never); NOT_FOUND when absent. */
LXSHM_API lxshm_status lxshm_dict_expire(lxshm_dict *d, const void *key, size_t klen, double ttl,
                                         lxshm_error *err);

/* Removes every key. */
LXSHM_API lxshm_status lxshm_dict_flush_all(lxshm_dict *d, lxshm_error *err);

/* Reclaims the memory of up to `max` expired keys (0: all) and gives their number in *n. */
LXSHM_API lxshm_status lxshm_dict_flush_expired(lxshm_dict *d, uint64_t max, uint64_t *n,
                                                lxshm_error *err);

/* Walks the whole dictionary under its locks: OK, or CORRUPT naming the first broken invariant
 * (chains, free lists, counts, byte totals). For tests and repair tools. */
LXSHM_API lxshm_status lxshm_dict_check(lxshm_dict *d, lxshm_error *err);
/* ---- topics: every subscriber sees every message ------------------------------------------
 *
 * A topic is a ring of `size` bytes (rounded up to a multiple of 8) of messages numbered from 1,
 * read by any number of subscriptions, each at its own pace. A publish never waits for
 * subscribers: when the ring is full the oldest messages are overwritten, and a subscription
 * that had not read them learns how many it lost. Each message takes its length plus 8 bytes,
 * rounded up to 8, and the topic holds at most size / 32 messages (at least 8) whatever their
 * size. Subscriptions take no lock; publishers serialize on the topic's lock. A publisher killed
 * at any instant leaves its message whole or absent. Named subscriptions ("cursors") keep their
 * position in the topic, for the next process that subscribes under the same name. */
typedef struct lxshm_topic lxshm_topic;
typedef struct lxshm_subscription lxshm_subscription;

#define LXSHM_TOPIC_CURSORS 16        /* named subscriptions a topic has room for by default */
#define LXSHM_TOPIC_CURSORS_MAX 1024  /* the most a topic can have room for */
#define LXSHM_TOPIC_NEW 0             /* subscribe from the next message published */
#define LXSHM_TOPIC_OLDEST UINT64_MAX /* subscribe from the oldest message held */

/* As lxshm_create / lxshm_open / lxshm_attach, for topics, with room for `cursors` named
 * subscriptions (0 to LXSHM_TOPIC_CURSORS_MAX, else INVALID_SIZE). Opening another kind as a
 * topic is INVALID. */
LXSHM_API lxshm_status lxshm_topic_create(const char *name, uint64_t size, unsigned cursors,
                                          unsigned mode, lxshm_topic **out, lxshm_error *err);
LXSHM_API lxshm_status lxshm_topic_open(const char *name, lxshm_topic **out, lxshm_error *err);
LXSHM_API lxshm_status lxshm_topic_open_with(const char *name, unsigned flags, lxshm_topic **out,
                                             lxshm_error *err);
LXSHM_API lxshm_status lxshm_topic_attach(const char *name, uint64_t size, unsigned cursors,
                                          unsigned mode, lxshm_topic **out, int *created,
                                          lxshm_error *err);

/* Unmaps and frees the handle. Close its subscriptions first. NULL is ignored. */
LXSHM_API void lxshm_topic_close(lxshm_topic *t);

LXSHM_API uint64_t lxshm_topic_size(const lxshm_topic *t);    /* bytes of the ring */
LXSHM_API const char *lxshm_topic_name(const lxshm_topic *t); /* the topic's name */
LXSHM_API uint64_t lxshm_topic_last(const lxshm_topic *t);    /* newest message; 0 before any */
LXSHM_API uint64_t lxshm_topic_oldest(const lxshm_topic *t);  /* oldest held; last + 1 if none */

/* Publishes `len` bytes as the next message; *seq (may be NULL) is its sequence number. Waits
 * only for the publishers' lock, at most `timeout` seconds (negative: no limit). Fails with
 * INVALID_SIZE (the message cannot fit the ring), TIMEOUT, PERMISSION (opened read-only),
 * CORRUPT or INVALID (the lock already held by this thread); nothing is published on failure. */
LXSHM_API lxshm_status lxshm_topic_publish(lxshm_topic *t, const void *data, size_t len,
                                           double timeout, uint64_t *seq, lxshm_error *err);

/* Subscribes: *out reads the messages from `from` on: LXSHM_TOPIC_NEW (those published after
 * this call), LXSHM_TOPIC_OLDEST (every one still held) or a sequence number (that message on; if
 * it was overwritten already, the oldest held, and the difference is counted as lost). With a
 * `cursor` name (1 to LXSHM_NAME_MAX characters as for object names; NULL: an anonymous
 * subscription) the position is kept in the topic: a new name starts at `from`, a known one
 * resumes where its last holder left off. Fails with INVALID (a bad name), EXISTS (a living
 * process holds the name), FULL (no room for another name), PERMISSION (read-only: only
 * anonymous subscriptions) or CORRUPT. A subscription belongs to one thread at a time. */
LXSHM_API lxshm_status lxshm_topic_subscribe(lxshm_topic *t, const char *cursor, uint64_t from,
                                             lxshm_subscription **out, lxshm_error *err);

/* Forgets a named subscription's position. Fails with NOT_FOUND (no such name), EXISTS (a living
 * process holds it), INVALID, PERMISSION or CORRUPT. */
LXSHM_API lxshm_status lxshm_topic_unsubscribe(lxshm_topic *t, const char *cursor,
                                               lxshm_error *err);

/* Copies the subscription's next message into buf (cap bytes), waiting up to `timeout` seconds
 * (negative: no limit; 0: don't wait) while there is none. On OK *len is its length, *seq its
 * sequence number and *lost (may be NULL) how many messages were overwritten before this
 * subscription could read them, since its previous message. Fails with TIMEOUT, INVALID_SIZE
 * (cap too small: *len says how much is needed, and the message stays next) or CORRUPT. */
LXSHM_API lxshm_status lxshm_subscription_next(lxshm_subscription *sub, void *buf, size_t cap,
                                               size_t *len, uint64_t *seq, uint64_t *lost,
                                               double timeout, lxshm_error *err);

/* The sequence number the next message will have, if it is not overwritten by then. */
LXSHM_API uint64_t lxshm_subscription_position(const lxshm_subscription *sub);

/* Ends the subscription; a named one keeps its position in the topic, free for the next holder.
 * NULL is ignored. */
LXSHM_API void lxshm_subscription_close(lxshm_subscription *sub);

#ifdef __cplusplus
}
#endif

#endif

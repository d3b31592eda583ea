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
 * only place codes are written: the enum, lxshm_strerror and the Lua constants expand from it. */
#define LXSHM_STATUS_MAP(X)                          \
  X(OK, 0, "success")                                \
  X(EXISTS, 1, "already exists")                     \
  X(INVALID, 2, "invalid name, handle or mapping")   \
  X(INVALID_SIZE, 3, "invalid size")                 \
  X(NOT_FOUND, 4, "not found")                       \
  X(TIMEOUT, 5, "timed out")                         \
  X(CORRUPT, 6, "corrupt data")                      \
  X(PERMISSION, 7, "permission denied")              \
  X(UNSUPPORTED, 8, "value cannot be stored")        \
  X(SYSTEM, 9, "system error")                       \
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

/* As lxshm_create / lxshm_open, for queues. Opening a segment as a queue is INVALID. */
LXSHM_API lxshm_status lxshm_queue_create(const char *name, uint64_t size, unsigned mode,
                                          lxshm_queue **out, lxshm_error *err);
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

#ifdef __cplusplus
}
#endif

#endif

/* platform.h — the small OS interface the core stands on: map, unmap, unlink, lock with a
 * deadline, unlock, wait/wake on a shared 32-bit word, clocks and processes. One implementation
 * per OS (platform_posix.c; platform_win.c beside it); they are the only files that include OS
 * headers or read errno. Nothing here knows the header layout or Lua. */
#ifndef LXSHM_PLATFORM_H
#define LXSHM_PLATFORM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "lxshm.h"

/* A mapped view of a named shared-memory object. */
typedef struct lxshm__mapping {
  unsigned char *base; /* first byte of the view; NULL when nothing is mapped */
  size_t size;         /* bytes mapped */
  int readonly;        /* mapped for reading only */
  int foreign;         /* the object belongs to another user than the caller (map_open) */
  char owner[48];      /* with foreign: who owns it, for messages ("user bob (uid 1001)") */
  intptr_t os[4];      /* backend state (Windows: os[0] points to the handle's own state:
                          mapping, name record, mutexes, waiter event; POSIX: os[0] is the
                          descriptor of an object created but not yet published, else -1) */
} lxshm__mapping;

/* Every call below that can fail turns the OS error into a status on the spot and, when err is
 * not NULL, records the failed call and the OS text ("shm_open: Permission denied"). `name` is
 * always a name already checked by lxshm__check_name; the backend adds its own prefix. */

/* Creates a new object of `size` bytes, all zero, backed by memory now (so that touching it
 * later cannot fault), with permission bits `mode`, and maps it read-write. The object may not
 * be visible under `name` until lxshm__map_publish (POSIX), or may be at once (Windows): either
 * way nobody uses it before its header is published. Fails with EXISTS (the name is taken
 * already), PERMISSION, INVALID_SIZE (no room for it) or SYSTEM; on failure nothing is left. */
lxshm_status lxshm__map_create(const char *name, size_t size, unsigned mode, lxshm__mapping *m,
                               lxshm_error *err);

/* Makes the object made by lxshm__map_create visible under `name`, atomically: fails with EXISTS
 * if the name was taken meanwhile (the caller then discards it), or SYSTEM. */
lxshm_status lxshm__map_publish(const char *name, lxshm__mapping *m, lxshm_error *err);

/* Gives up an object made by lxshm__map_create whose creation failed (before or at publishing):
 * unmaps it and frees it, never touching another object that has the name now. */
void lxshm__map_discard(const char *name, lxshm__mapping *m);

/* Opens and maps the existing object at its current size, read-only if `readonly`, and says
 * whether it belongs to another user (m->foreign, m->owner). An object not yet sized, or not yet
 * wholly backed by memory (a creator still at work, or one that died at work), is not an error
 * and is not mapped: m->base is NULL and m->size 0. Fails with NOT_FOUND, PERMISSION or
 * SYSTEM. */
lxshm_status lxshm__map_open(const char *name, int readonly, lxshm__mapping *m, lxshm_error *err);

/* Unmaps and releases the handles; the object lives on under its name. Idempotent. */
void lxshm__map_close(lxshm__mapping *m);

/* Removes the name; mappings already made stay valid. Fails with NOT_FOUND, PERMISSION or
 * SYSTEM. */
lxshm_status lxshm__map_unlink(const char *name, lxshm_error *err);

/* Calls each(name, ud) for every object under lxshm's prefix whose name is valid, in no
 * particular order. Fails with UNSUPPORTED where the OS cannot list its named objects (Windows),
 * or SYSTEM. */
typedef void (*lxshm__name_fn)(const char *name, void *ud);
lxshm_status lxshm__map_list(lxshm__name_fn each, void *ud, lxshm_error *err);

/* ---- the inter-process lock, whose state lives in `lock` (LXSHM__LOCK_BYTES in the header) */

/* Initializes a fresh lock (creator only, before the header is published). */
lxshm_status lxshm__lock_init(lxshm__mapping *m, void *lock, lxshm_error *err);

/* Acquires the lock, waiting until `deadline` (monotonic ns; UINT64_MAX: no limit). On OK,
 * *owner_died is 1 when the previous owner died holding it: the caller owns it, repairs the
 * shared state, then calls lxshm__lock_recovered. Fails with TIMEOUT, INVALID (already held by
 * the calling thread) or CORRUPT (the lock is unrecoverable, or its bytes are not those of a lock
 * lxshm made: they are checked before the OS's lock code sees them). */
lxshm_status lxshm__lock_acquire(lxshm__mapping *m, void *lock, uint64_t deadline, int *owner_died,
                                 lxshm_error *err);

/* Marks a lock taken over from a dead owner as consistent again; call before releasing it. */
void lxshm__lock_recovered(lxshm__mapping *m, void *lock);

/* Releases the lock held by the calling thread. */
void lxshm__lock_release(lxshm__mapping *m, void *lock);

/* ---- waiting on a shared word, without spinning ------------------------------------------ */

/* Sleeps while *word == expected, until woken or `deadline`. Returns OK when woken, when the
 * word differed, or on a spurious or signal wake-up (callers re-check their condition), and
 * TIMEOUT once the deadline has passed. */
lxshm_status lxshm__word_wait(lxshm__mapping *m, _Atomic uint32_t *word, uint32_t expected,
                              uint64_t deadline, lxshm_error *err);

/* Wakes every process sleeping on `word`; returns how many were asleep (0 when unknown). */
int lxshm__word_wake(lxshm__mapping *m, _Atomic uint32_t *word);

/* ---- clocks and processes ---------------------------------------------------------------- */

uint64_t lxshm__clock_ns(void);     /* monotonic clock, ns */
int64_t lxshm__wallclock_ns(void);  /* wall-clock time, ns since the Unix epoch */
void lxshm__sleep_ns(uint64_t ns);  /* sleeps about ns (signals may shorten it) */
uint32_t lxshm__pid(void);          /* this process's id */
int lxshm__pid_alive(uint32_t pid); /* 1 if a process with this id runs (not a zombie), else 0 */
/* When the running process `pid` started, in the OS's units: with the pid, it names one run of a
 * process, so that a pid reused by a later process is not taken for the earlier one. 0 when no
 * such process runs (or it is a zombie); 1 when it runs but its start time cannot be read. */
uint64_t lxshm__pid_start(uint32_t pid);
unsigned lxshm__cpu_count(void);   /* processors this process may run on, at least 1 */
unsigned lxshm__current_cpu(void); /* 1 + the processor running the caller; 0 if unknown */
void lxshm__yield(void);           /* lets another runnable thread have this processor */

#endif

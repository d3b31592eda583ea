/* object.h — what segments and queues share (object.c): a named mapping with a validated
 * header, its creation and opening, and waitlists (sleeping until another process changes
 * something). Internal to src/; segment.c and queue.c build on it. */
#ifndef LXSHM_OBJECT_H
#define LXSHM_OBJECT_H

#include "internal.h"
#include "layout.h"
#include "platform.h"

/* One process's handle on a mapping, embedded first in lxshm_segment and lxshm_queue. */
typedef struct lxshm__object {
  lxshm__mapping map;            /* the view of the whole object */
  lxshm__header *hdr;            /* == map.base */
  unsigned char *data;           /* first byte after the header */
  uint64_t capacity;             /* hdr->capacity, read once at open: never trusted again */
  unsigned futile_wakes;         /* wake-ups that found nobody asleep, since the last heal */
  char name[LXSHM_NAME_MAX + 1]; /* the object's name */
} lxshm__object;

/* Bytes of the mapping for an object of this kind and capacity; 0 if out of range. */
uint64_t lxshm__map_size(uint32_t kind, uint64_t capacity);

/* Creates the named object exclusively and writes its identity, but does not publish it: the
 * caller initializes its kind's state (the line-1 lock is initialized here), then calls
 * lxshm__object_publish, or lxshm__object_abandon on failure. Fails with INVALID (name),
 * INVALID_SIZE, EXISTS, PERMISSION or SYSTEM, leaving nothing under the name. */
lxshm_status lxshm__object_create(lxshm__object *o, const char *name, uint32_t kind,
                                  uint64_t capacity, unsigned mode, lxshm_error *err);
void lxshm__object_publish(lxshm__object *o);
void lxshm__object_abandon(lxshm__object *o);

/* Opens the named object, waiting a bounded time for a concurrent creator, and validates its
 * header against the mapping. Fails with INVALID (name, not lxshm's, the other kind, another
 * layout or value format), NOT_FOUND, CORRUPT, PERMISSION or SYSTEM. */
lxshm_status lxshm__object_open(lxshm__object *o, const char *name, uint32_t kind,
                                lxshm_error *err);

/* Unmaps; idempotent. */
void lxshm__object_close(lxshm__object *o);

/* ---- locks --------------------------------------------------------------------------------- */

/* Takes a lock of the object (hdr->lock, or a queue's pop lock), waiting until `deadline`. If
 * its owner died holding it, calls repair(o) before marking it consistent. Fails with TIMEOUT,
 * INVALID (held by this thread) or CORRUPT (unrecoverable). */
lxshm_status lxshm__object_lock(lxshm__object *o, void *lock, uint64_t deadline,
                                void (*repair)(lxshm__object *o), lxshm_error *err);
void lxshm__object_unlock(lxshm__object *o, void *lock);

/* ---- waitlists ----------------------------------------------------------------------------- */

/* Says whether what a waiter waits for has happened. */
typedef int (*lxshm__ready_fn)(lxshm__object *o, void *ctx);

/* Waits on w until ready(o, ctx) or `deadline`: spins briefly first on a machine with more than
 * one processor, then sleeps in slices of at most 200 ms (a waker that died before its wake-up
 * call delays the waiter by no more than that). Returns OK, TIMEOUT, LXSHM__INTERRUPTED (only
 * with intr) or SYSTEM. */
lxshm_status lxshm__wait_until(lxshm__object *o, lxshm__waitlist *w, lxshm__ready_fn ready,
                               void *ctx, uint64_t deadline, const lxshm__interrupt *intr,
                               lxshm_error *err);

/* After a change the waiters of w may wait for: wakes them if any registered. Call after the
 * change is published, outside locks. */
void lxshm__wake(lxshm__object *o, lxshm__waitlist *w);

/* Wakes every waiter of w unconditionally (repair after an owner died). */
void lxshm__wake_all(lxshm__object *o, lxshm__waitlist *w);

/* Registered waiters of w, after forgetting those whose process has died. */
uint32_t lxshm__waiter_count(lxshm__object *o, lxshm__waitlist *w);

#endif

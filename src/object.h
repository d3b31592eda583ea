/* object.h — what every kind of object shares (object.c): the table of kinds, a named mapping
 * with a validated header, creating, opening, attaching and closing it, and its locks with
 * owner-death repair. Internal to src/; each kind (segment.c, queue.c, …) builds on it. */
#ifndef LXSHM_OBJECT_H
#define LXSHM_OBJECT_H

#include "internal.h"
#include "layout.h"
#include "platform.h"

typedef struct lxshm__kind lxshm__kind;

/* One process's handle on a mapping, embedded first in each kind's handle (lxshm_segment, …). */
typedef struct lxshm__object {
  lxshm__mapping map;            /* the view of the whole object */
  lxshm__header *hdr;            /* == map.base */
  unsigned char *data;           /* first byte after the header */
  uint64_t capacity;             /* hdr->capacity, read once at open: never trusted again */
  const lxshm__kind *kind;       /* what it is */
  int readonly;                  /* mapped read-only: nothing may be written to it */
  unsigned futile_wakes;         /* wake-ups that found nobody asleep, since the last heal */
  char name[LXSHM_NAME_MAX + 1]; /* the object's name */
} lxshm__object;

/* A kind of object: what object.c needs to create, validate and open one. Each kind's file
 * defines one (lxshm__segment_kind, …) and object.c lists them all. */
struct lxshm__kind {
  uint32_t id;        /* LXSHM__KIND_*: written in every header of this kind */
  const char *name;   /* "segment": for messages */
  const char *opener; /* the Lua function that opens it ("open_queue"): for messages */
  size_t handle_size; /* bytes of the kind's handle, which starts with an lxshm__object */
  /* Completes the identity of a new header from h->capacity and h->params as asked: rounds the
   * capacity as the kind needs, sets map_size and slot_stride. Fails with INVALID_SIZE when the
   * request is out of range. Applied again to an existing header's capacity and params, it must
   * reproduce that header's identity (this is how opening validates it). */
  lxshm_status (*plan)(lxshm__header *h, lxshm_error *err);
  /* Prepares the state of a new object before it is published, beyond what all-zero bytes and
   * the line-1 lock already give (may be NULL). */
  lxshm_status (*init)(lxshm__object *o, lxshm_error *err);
  /* Sets the handle's own pointers into a validated mapping (may be NULL). */
  void (*bind)(lxshm__object *o);
  /* What stat shows: the figures' names, one word each ("size used count "), and a function
   * that fills its member of *out (lxshm__figures_get). */
  const char *figures;
  void (*stat)(lxshm__object *o, lxshm__figures *out);
};

extern const lxshm__kind lxshm__segment_kind;
extern const lxshm__kind lxshm__queue_kind;
extern const lxshm__kind lxshm__dict_kind;
extern const lxshm__kind lxshm__topic_kind;

/* ---- lifecycle ------------------------------------------------------------------------------ */

/* Creates the named object exclusively: `capacity` and `params` (LXSHM__PARAMS words, NULL for
 * none) as the kind's plan takes them, permission bits `mode`. On OK *out is a new handle of
 * kind->handle_size bytes. Fails with INVALID (name), INVALID_SIZE, EXISTS, PERMISSION or SYSTEM;
 * on failure no object is left under the name, and no other process's object is touched. */
lxshm_status lxshm__create(const lxshm__kind *kind, const char *name, uint64_t capacity,
                           const uint32_t *params, unsigned mode, lxshm__object **out,
                           lxshm_error *err);

/* Opens the named object, waiting a bounded time (well under a second) for a creator still at
 * work, and validates its header. With kind NULL, an object of any kind this build knows is
 * opened, and (*out)->kind says which. `flags`: LXSHM_READONLY, LXSHM_TRUST (lxshm.h). Fails with
 * INVALID (name, not lxshm's, another kind, another layout or value format, a newer lxshm's
 * kind), NOT_FOUND, CORRUPT, PERMISSION (the OS refused, or another user owns it and `flags`
 * does not say LXSHM_TRUST), SYSTEM, or LXSHM__INTERRUPTED (only with intr). */
lxshm_status lxshm__open(const lxshm__kind *kind, const char *name, unsigned flags,
                         const lxshm__interrupt *intr, lxshm__object **out, lxshm_error *err);

/* Opens the named object if it exists, else creates it as lxshm__create would. Race-free: of
 * several processes attaching to a new name at once, exactly one creates it. *created (may be
 * NULL) tells which happened. */
lxshm_status lxshm__attach(const lxshm__kind *kind, const char *name, uint64_t capacity,
                           const uint32_t *params, unsigned mode, unsigned flags,
                           lxshm__object **out, int *created, lxshm_error *err);

/* Removes the name, whatever kind of object it holds. Fails with INVALID, NOT_FOUND, PERMISSION
 * or SYSTEM. */
lxshm_status lxshm__remove(const char *name, lxshm_error *err);

/* Calls each(name, ud) for every lxshm object of this machine, whatever its state. Fails with
 * UNSUPPORTED where the system cannot list them, or SYSTEM. */
lxshm_status lxshm__list(lxshm__name_fn each, void *ud, lxshm_error *err);

/* Unmaps and frees the handle. NULL is ignored. */
void lxshm__close(lxshm__object *o);

/* ---- a kind's typed C API ---------------------------------------------------------------------
 * What every kind's public handle does alike, defined once for all (lxshm.h declares it). P is
 * the start of the names (lxshm_queue_: lxshm_queue_open), T the handle type, K the kind and SIZE
 * the name of the capacity getter (size, or capacity for a dictionary).
 * LXSHM__TYPED_API defines P##open_with, P##open, P##close, P##SIZE and P##name;
 * LXSHM__TYPED_CREATE defines P##create and P##attach, for a kind without creation parameters. */
#define LXSHM__TYPED_API(P, T, K, SIZE)                                                    \
  lxshm_status P##open_with(const char *name, unsigned flags, T **out, lxshm_error *err) { \
    return lxshm__open(&K, name, flags, NULL, (lxshm__object **)out, err);                 \
  }                                                                                        \
  lxshm_status P##open(const char *name, T **out, lxshm_error *err) {                      \
    return P##open_with(name, 0, out, err);                                                \
  }                                                                                        \
  void P##close(T *handle) {                                                               \
    lxshm__close((lxshm__object *)handle);                                                 \
  }                                                                                        \
  uint64_t P##SIZE(const T *handle) {                                                      \
    return handle->obj.capacity;                                                           \
  }                                                                                        \
  const char *P##name(const T *handle) {                                                   \
    return handle->obj.name;                                                               \
  }

#define LXSHM__TYPED_CREATE(P, T, K)                                                            \
  lxshm_status P##create(const char *name, uint64_t size, unsigned mode, T **out,               \
                         lxshm_error *err) {                                                    \
    return lxshm__create(&K, name, size, NULL, mode, (lxshm__object **)out, err);               \
  }                                                                                             \
  lxshm_status P##attach(const char *name, uint64_t size, unsigned mode, T **out, int *created, \
                         lxshm_error *err) {                                                    \
    return lxshm__attach(&K, name, size, NULL, mode, 0, (lxshm__object **)out, created, err);   \
  }

/* ---- locks ---------------------------------------------------------------------------------- */

/* Takes a lock of the object (hdr->lock, or one in the kind's state), waiting until `deadline`.
 * If its owner died holding it, calls repair(o) (may be NULL) before marking it consistent.
 * Fails with PERMISSION (a read-only handle: taking a lock writes), TIMEOUT, INVALID (held by
 * this thread) or CORRUPT (unrecoverable or damaged). */
lxshm_status lxshm__object_lock(lxshm__object *o, void *lock, uint64_t deadline,
                                void (*repair)(lxshm__object *o), lxshm_error *err);
void lxshm__object_unlock(lxshm__object *o, void *lock);

#endif

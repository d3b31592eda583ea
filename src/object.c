/* object.c — what every kind of object shares: the table of kinds, exclusive creation
 * and publication of a header, opening with validation, and locks with owner-death repair.
 * Makes no OS call itself (platform.h does), and knows nothing of Lua or of any kind's state
 * beyond what its lxshm__kind entry says. Waiting lives in wait.c. */
#include <stdlib.h>
#include <string.h>

#include "object.h"

/* Every kind this build knows. Adding a kind adds a line here. */
static const lxshm__kind *const kinds[] = {&lxshm__segment_kind, &lxshm__queue_kind,
                                           &lxshm__dict_kind, &lxshm__topic_kind};

/* open waits at most this long for a creator that has not yet published its header: creators
 * publish within microseconds of making the object visible (POSIX makes it visible only once
 * whole), so only a dead creator, or one of another build, takes longer. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define OPEN_PATIENCE_NS 1000000u /* a fuzz target creates nothing while it opens */
#else
#define OPEN_PATIENCE_NS 500000000u
#endif

/* ---- kinds, deadlines ------------------------------------------------------------------ */

uint64_t lxshm__deadline(double timeout) {
  if (!(timeout >= 0) || timeout >= 1e9) /* negative, NaN, or beyond 30 years: no limit */
    return UINT64_MAX;
  return lxshm__clock_ns() + (uint64_t)(timeout * 1e9);
}

/* The kind with this header id, or NULL for one this build does not know. */
static const lxshm__kind *kind_by_id(uint32_t id) {
  size_t i;
  for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (kinds[i]->id == id)
      return kinds[i];
  return NULL;
}

/* ---- creating ----------------------------------------------------------------------------- */

/* Room for a handle of any kind: what lxshm__open must allocate before it knows the kind. */
static size_t any_handle_size(void) {
  size_t i, n = 0;
  for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (kinds[i]->handle_size > n)
      n = kinds[i]->handle_size;
  return n;
}

/* A new handle for `kind`, or for any kind when NULL. */
static lxshm_status new_handle(const lxshm__kind *kind, const char *name, lxshm__object **out,
                               lxshm_error *err) {
  lxshm_status st = lxshm__check_name(name, lxshm__name_len(name), "", err);
  if (st != LXSHM_OK)
    return st;
  if ((*out = calloc(1, kind != NULL ? kind->handle_size : any_handle_size())) == NULL)
    return lxshm__fail(err, LXSHM_SYSTEM, "out of memory");
  (*out)->kind = kind;
  strcpy((*out)->name, name); /* checked: at most LXSHM_NAME_MAX bytes */
  return LXSHM_OK;
}

static void bind(lxshm__object *o) {
  o->hdr = (lxshm__header *)o->map.base;
  o->data = o->map.base + LXSHM__HEADER_SIZE;
  o->capacity = o->hdr->capacity;
  o->readonly = o->map.readonly;
  if (o->kind->bind != NULL)
    o->kind->bind(o);
}

lxshm_status lxshm__create(const lxshm__kind *kind, const char *name, uint64_t capacity,
                           const uint32_t *params, unsigned mode, lxshm__object **out,
                           lxshm_error *err) {
  lxshm__header plan;
  lxshm__object *o;
  lxshm_status st;

  *out = NULL;
  if ((st = new_handle(kind, name, &o, err)) != LXSHM_OK)
    return st;
  memset(&plan, 0, sizeof plan);
  plan.capacity = capacity;
  if (params != NULL)
    memcpy(plan.params, params, sizeof plan.params);
  if (capacity == 0 || capacity > LXSHM_SIZE_MAX)
    st = lxshm__fail(err, LXSHM_INVALID_SIZE, "size must be 1 to %llu bytes",
                     (unsigned long long)LXSHM_SIZE_MAX);
  else
    st = kind->plan(&plan, err);
  if (st == LXSHM_OK)
    st = lxshm__map_create(name, (size_t)plan.map_size, mode, &o->map, err);
  if (st == LXSHM_EXISTS)
    lxshm__fail(err, st, "already exists");
  if (st != LXSHM_OK) {
    free(o);
    return st;
  }
  /* The object is new and all zero: write the identity, the kind's state, then publish. */
  o->hdr = (lxshm__header *)o->map.base;
  o->hdr->layout = LXSHM__LAYOUT_VERSION;
  o->hdr->kind = kind->id;
  o->hdr->codec = LXSHM__CODEC_VERSION;
  o->hdr->capacity = plan.capacity;
  o->hdr->map_size = plan.map_size;
  o->hdr->slot_stride = plan.slot_stride;
  o->hdr->creator_pid = lxshm__pid();
  memcpy(o->hdr->params, plan.params, sizeof plan.params);
  bind(o);
  st = lxshm__lock_init(&o->map, o->hdr->lock, err);
  if (st == LXSHM_OK && kind->init != NULL)
    st = kind->init(o, err);
  if (st == LXSHM_OK) {
    atomic_store_explicit(&o->hdr->magic, LXSHM__MAGIC, memory_order_release); /* last */
    st = lxshm__map_publish(name, &o->map, err);
    if (st == LXSHM_EXISTS)
      lxshm__fail(err, st, "already exists");
    if (st == LXSHM_OK)
      bind(o); /* publishing may map it again elsewhere */
  }
  if (st != LXSHM_OK) {
    lxshm__map_discard(name, &o->map);
    free(o);
    return st;
  }
  *out = o;
  return LXSHM_OK;
}

/* ---- opening ------------------------------------------------------------------------------ */

/* Checks a published header against the mapping it sits in and the kind asked for (any, when
 * *want is NULL: then *want becomes the header's). Everything a later access relies on (the
 * capacity, where the data lies) is checked here, once. */
static lxshm_status validate(const lxshm__header *h, size_t mapped, const lxshm__kind **want,
                             lxshm_error *err) {
  const lxshm__kind *kind;
  lxshm__header plan;

  if (h->layout != LXSHM__LAYOUT_VERSION)
    return lxshm__fail(err, LXSHM_INVALID, "made by another lxshm build (layout %u, expected %u)",
                       h->layout, LXSHM__LAYOUT_VERSION);
  if ((kind = kind_by_id(h->kind)) == NULL)
    return lxshm__fail(err, LXSHM_INVALID, "made by a newer lxshm (an object of kind %u)", h->kind);
  if (*want == NULL)
    *want = kind;
  if (kind != *want)
    return lxshm__fail(err, LXSHM_INVALID, "is a %s, not a %s (use %s)", kind->name, (*want)->name,
                       kind->opener);
  if (h->codec != LXSHM__CODEC_VERSION)
    return lxshm__fail(err, LXSHM_INVALID, "values in format %u, this build reads %u", h->codec,
                       LXSHM__CODEC_VERSION);
  memset(&plan, 0, sizeof plan);
  plan.capacity = h->capacity;
  memcpy(plan.params, h->params, sizeof plan.params);
  if (h->capacity == 0 || h->capacity > LXSHM_SIZE_MAX || kind->plan(&plan, NULL) != LXSHM_OK ||
      plan.capacity != h->capacity || plan.map_size != h->map_size ||
      plan.slot_stride != h->slot_stride || memcmp(plan.params, h->params, sizeof plan.params))
    return lxshm__fail(err, LXSHM_CORRUPT, "header sizes are inconsistent");
  if (h->map_size != mapped)
    return lxshm__fail(err, LXSHM_CORRUPT, "header says %llu bytes, the mapping has %zu",
                       (unsigned long long)h->map_size, mapped);
  return LXSHM_OK;
}

/* What an object opened as o would be: its kind's name, or "object" when any kind will do. */
static const char *kind_word(const lxshm__object *o) {
  return o->kind != NULL ? o->kind->name : "object";
}

/* Looks at a mapping just made. OK: a published, valid header. TIMEOUT: no header yet (a creator
 * at work). Otherwise the failure. */
static lxshm_status examine(lxshm__object *o, lxshm_error *err) {
  const lxshm__header *h = (const lxshm__header *)o->map.base;
  uint32_t magic;

  if (o->map.base == NULL)
    return LXSHM_TIMEOUT; /* not yet sized, or not yet wholly backed */
  if (o->map.size < sizeof(lxshm__header))
    return lxshm__fail(err, LXSHM_INVALID, "not an lxshm %s (%zu bytes)", kind_word(o),
                       o->map.size);
  magic = atomic_load_explicit(&h->magic, memory_order_acquire);
  if (magic == 0)
    return LXSHM_TIMEOUT;
  if (magic != LXSHM__MAGIC)
    return lxshm__fail(err, LXSHM_INVALID, "not an lxshm %s", kind_word(o));
  return validate(h, o->map.size, &o->kind, err);
}

lxshm_status lxshm__open(const lxshm__kind *kind, const char *name, unsigned flags,
                         const lxshm__interrupt *intr, lxshm__object **out, lxshm_error *err) {
  uint64_t start, pause = 100000; /* 0.1 ms, doubling up to 10 ms */
  lxshm__object *o;
  lxshm_status st;

  *out = NULL;
  if ((st = new_handle(kind, name, &o, err)) != LXSHM_OK)
    return st;
  start = lxshm__clock_ns();
  for (;;) {
    st = lxshm__map_open(name, (flags & LXSHM_READONLY) != 0, &o->map, err);
    if (st == LXSHM_NOT_FOUND)
      lxshm__fail(err, st, "does not exist");
    if (st == LXSHM_OK && o->map.foreign && !(flags & LXSHM_TRUST))
      st = lxshm__fail(err, LXSHM_PERMISSION,
                       "belongs to %s: open it with trust only if you "
                       "trust that user with this process's memory",
                       o->map.owner);
    if (st == LXSHM_OK)
      st = examine(o, err);
    if (st != LXSHM_TIMEOUT)
      break;
    /* No header yet: a creator is at work. Look again shortly, within bounds. */
    lxshm__map_close(&o->map);
    if (lxshm__clock_ns() - start >= OPEN_PATIENCE_NS) {
      st = lxshm__fail(err, LXSHM_CORRUPT, "never finished initializing (its creator died?)");
      break;
    }
    if (intr != NULL && intr->check(intr->ud)) {
      st = LXSHM__INTERRUPTED;
      break;
    }
    lxshm__sleep_ns(pause);
    if (pause < 10000000)
      pause *= 2;
  }
  if (st != LXSHM_OK) {
    lxshm__map_close(&o->map);
    free(o);
    return st;
  }
  bind(o);
  *out = o;
  return LXSHM_OK;
}

lxshm_status lxshm__attach(const lxshm__kind *kind, const char *name, uint64_t capacity,
                           const uint32_t *params, unsigned mode, unsigned flags,
                           lxshm__object **out, int *created, lxshm_error *err) {
  lxshm_status st;
  int tries;

  if (created != NULL)
    *created = 0;
  /* open and create each fail cleanly on the other's outcome; loop while a concurrent remove
   * keeps taking the name away between the two. Open first: the name usually exists, and a
   * create would reserve all of its memory before finding that out. */
  for (tries = 0; tries < 100; tries++) {
    st = lxshm__open(kind, name, flags, NULL, out, err);
    if (st != LXSHM_NOT_FOUND)
      return st;
    st = lxshm__create(kind, name, capacity, params, mode, out, err);
    if (st != LXSHM_EXISTS) {
      if (created != NULL)
        *created = (st == LXSHM_OK);
      return st;
    }
  }
  return lxshm__fail(err, LXSHM_SYSTEM, "name keeps appearing and disappearing");
}

lxshm_status lxshm__remove(const char *name, lxshm_error *err) {
  lxshm_status st = lxshm__check_name(name, lxshm__name_len(name), "", err);
  if (st != LXSHM_OK)
    return st;
  st = lxshm__map_unlink(name, err);
  return st == LXSHM_NOT_FOUND ? lxshm__fail(err, st, "does not exist") : st;
}

lxshm_status lxshm__list(lxshm__name_fn each, void *ud, lxshm_error *err) {
  return lxshm__map_list(each, ud, err);
}

void lxshm__close(lxshm__object *o) {
  if (o == NULL)
    return;
  lxshm__map_close(&o->map);
  free(o);
}

void lxshm__figures_get(void *handle, lxshm__figures *out) {
  lxshm__object *o = (lxshm__object *)handle;
  o->kind->stat(o, out);
}

/* ---- locks -------------------------------------------------------------------------------- */

lxshm_status lxshm__object_lock(lxshm__object *o, void *lock, uint64_t deadline,
                                void (*repair)(lxshm__object *o), lxshm_error *err) {
  int owner_died;
  lxshm_status st;

  if (o->readonly)
    return lxshm__fail(err, LXSHM_PERMISSION, "opened read-only");
  st = lxshm__lock_acquire(&o->map, lock, deadline, &owner_died, err);
  if (st == LXSHM_OK && owner_died) {
    if (repair != NULL)
      repair(o);
    lxshm__lock_recovered(&o->map, lock);
  }
  return st;
}

void lxshm__object_unlock(lxshm__object *o, void *lock) {
  lxshm__lock_release(&o->map, lock);
}

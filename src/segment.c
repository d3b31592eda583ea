/* segment.c — segments: one current value shared by every process that opens the name; the
 * commit protocol, lock-free snapshots, waiting for the next version, and repair after a lock
 * owner died. Built on object.c; makes no OS call itself and knows nothing of Lua.
 *
 * Commit protocol. A segment holds two value slots. Version v's value is in slot v & 1, so a
 * commit writes the idle slot while readers copy the current one, and publishes the new version
 * last, with release ordering. A reader copies slot v & 1 into private memory, then re-reads the
 * version: only a writer of version v + 2 could have touched that slot, and it can only start
 * after v + 1 is published, so an unchanged version proves the copy whole. A writer that dies
 * mid-commit leaves the version unpublished: the previous value is still the current one. */
#include <stdlib.h>
#include <string.h>

#include "wait.h"

struct lxshm_segment {
  lxshm__object obj;
  lxshm__segment_state *state; /* &obj.hdr->u.segment */
  unsigned char *data[2];      /* first byte of each slot's value */
};

#define READ_TRIES 8 /* lock-free attempts before a reader takes the lock */

static uint64_t round_up(uint64_t n, uint64_t to) {
  return (n + to - 1) / to * to;
}

/* Two slots of the capacity, each on its own cache lines. */
static lxshm_status plan(lxshm__header *h, lxshm_error *err) {
  (void)err;
  h->slot_stride = round_up(h->capacity, LXSHM__SLOT_ALIGN);
  h->map_size = LXSHM__HEADER_SIZE + 2 * h->slot_stride;
  memset(h->params, 0, sizeof h->params);
  return LXSHM_OK;
}

static void bind(lxshm__object *o) {
  lxshm_segment *seg = (lxshm_segment *)o;
  seg->state = &o->hdr->u.segment;
  seg->data[0] = o->data;
  seg->data[1] = o->data + o->hdr->slot_stride;
}

/* A new object is all zero: both slots hold the empty value of version 0, with no waiters. */
/* ---- create, open, attach, remove, close ------------------------------------------------- */

/* lxshm_create, lxshm_attach, lxshm_open_with, lxshm_open, lxshm_close, lxshm_size and
 * lxshm_name */
LXSHM__TYPED_CREATE(lxshm_, lxshm_segment, lxshm__segment_kind)
LXSHM__TYPED_API(lxshm_, lxshm_segment, lxshm__segment_kind, size)

lxshm_status lxshm_remove(const char *name, lxshm_error *err) {
  return lxshm__remove(name, err);
}

/* ---- the lock ----------------------------------------------------------------------------- */

/* After an owner died holding the lock. Its commit either published the version (then the value
 * is whole: all bytes precede the version) or did not (then the idle slot is scratch). Its
 * waiters may not have been woken: wake them all. */
static void repair(lxshm__object *o) {
  lxshm__wake_all(o, &o->hdr->u.segment.waiters);
}

lxshm_status lxshm__lock(lxshm_segment *seg, uint64_t deadline, lxshm_error *err) {
  return lxshm__object_lock(&seg->obj, seg->obj.hdr->lock, deadline, repair, err);
}

void lxshm__unlock(lxshm_segment *seg) {
  lxshm__object_unlock(&seg->obj, seg->obj.hdr->lock);
  /* After unlocking: woken waiters need not queue on the lock. A commit may not have happened
   * (update whose function raised); a wake-up then costs a spurious look at the version. */
  lxshm__wake(&seg->obj, &seg->state->waiters);
}

/* ---- commits and snapshots ---------------------------------------------------------------- */

static lxshm_status too_large(lxshm_segment *seg, size_t len, lxshm_error *err) {
  return lxshm__fail(err, LXSHM_INVALID_SIZE, "value of %zu bytes exceeds the capacity of %llu",
                     len, (unsigned long long)seg->obj.capacity);
}

void lxshm__current_locked(lxshm_segment *seg, const char **data, size_t *len, unsigned *format) {
  uint64_t v = atomic_load_explicit(&seg->state->version, memory_order_relaxed);
  const lxshm__slot *slot = &seg->state->slots[v & 1];
  uint64_t n = atomic_load_explicit(&slot->length, memory_order_relaxed);
  *data = (const char *)seg->data[v & 1];
  *len = (size_t)(n <= seg->obj.capacity ? n : 0); /* a damaged length never reaches a copy */
  if (format != NULL)
    *format = atomic_load_explicit(&slot->format, memory_order_relaxed);
}

lxshm_status lxshm__commit_locked(lxshm_segment *seg, const void *head, size_t hlen,
                                  const void *data, size_t len, unsigned format, lxshm_error *err) {
  lxshm__segment_state *s = seg->state;
  uint64_t next;
  lxshm__slot *slot;
  unsigned char *dst;

  if (len > seg->obj.capacity || hlen > seg->obj.capacity - len)
    return too_large(seg, len + hlen, err);
  next = atomic_load_explicit(&s->version, memory_order_relaxed) + 1;
  slot = &s->slots[next & 1];
  /* A reader may still be copying this slot as version next - 2. Order our stores after the
   * publication of next - 1, so that a reader who sees any of our bytes also sees the version
   * move and discards its copy. */
  atomic_thread_fence(memory_order_release);
  dst = seg->data[next & 1];
  if (hlen > 0)
    memcpy(dst, head, hlen);
  if (len > 0) /* data may be NULL for an empty value */
    memcpy(dst + hlen, data, len);
  len += hlen;
  atomic_store_explicit(&slot->length, len, memory_order_relaxed);
  atomic_store_explicit(&slot->format, format, memory_order_relaxed);
  atomic_store_explicit(&slot->writer_pid, lxshm__pid(), memory_order_relaxed);
  atomic_store_explicit(&slot->updated_ns, lxshm__wallclock_ns(), memory_order_relaxed);
  atomic_store_explicit(&slot->version, next, memory_order_relaxed);
  atomic_store_explicit(&s->version, next, memory_order_release); /* last: implies the bytes */
  return LXSHM_OK;
}

lxshm_status lxshm__write(lxshm_segment *seg, const void *head, size_t hlen, const void *data,
                          size_t len, unsigned format, double timeout, lxshm_error *err) {
  lxshm_status st;
  if (len > seg->obj.capacity || hlen > seg->obj.capacity - len) /* before waiting for the lock */
    return too_large(seg, len + hlen, err);
  st = lxshm__lock(seg, lxshm__deadline(timeout), err);
  if (st != LXSHM_OK)
    return st;
  st = lxshm__commit_locked(seg, head, hlen, data, len, format, err);
  lxshm__unlock(seg);
  return st;
}

lxshm_status lxshm_write(lxshm_segment *seg, const void *data, size_t len, double timeout,
                         lxshm_error *err) {
  return lxshm__write(seg, NULL, 0, data, len, LXSHM__FORMAT_RAW, timeout, err);
}

/* Reads the descriptor of the current value. OK: *data, *len and *format belong to version *v
 * as long as the version does not move. CORRUPT: the descriptor is damaged (and no writer is at
 * work); TIMEOUT: a writer moved the version while we looked. */
static lxshm_status describe(lxshm_segment *seg, const char **data, size_t *len, uint64_t *v,
                             unsigned *format) {
  const lxshm__segment_state *s = seg->state;
  uint64_t version = atomic_load_explicit(&s->version, memory_order_acquire);
  const lxshm__slot *slot = &s->slots[version & 1];
  uint64_t n = atomic_load_explicit(&slot->length, memory_order_relaxed);
  uint64_t tag = atomic_load_explicit(&slot->version, memory_order_relaxed);
  unsigned fmt = atomic_load_explicit(&slot->format, memory_order_relaxed);

  if (n > seg->obj.capacity || tag != version || fmt > LXSHM__FORMAT_MSGPACK) {
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&s->version, memory_order_relaxed) == version ? LXSHM_CORRUPT
                                                                              : LXSHM_TIMEOUT;
  }
  *data = (const char *)seg->data[version & 1];
  *len = (size_t)n;
  *v = version;
  if (format != NULL)
    *format = fmt;
  return LXSHM_OK;
}

/* After copying a value described as version v: whether the copy is whole. */
static int still_current(lxshm_segment *seg, uint64_t version) {
  atomic_thread_fence(memory_order_acquire); /* the caller's copy happens before the re-check */
  return atomic_load_explicit(&seg->state->version, memory_order_relaxed) == version;
}

int lxshm__read_in_place(lxshm_segment *seg, const lxshm__sink *sink) {
  int tries;
  for (tries = 0; tries < READ_TRIES; tries++) {
    const char *data;
    size_t len;
    uint64_t version;
    unsigned format;
    if (describe(seg, &data, &len, &version, &format) != LXSHM_OK)
      continue; /* damaged, or a writer moved on while we looked */
    if (!sink->take(sink->ud, data, len, format))
      return 0;
    if (still_current(seg, version))
      return 1;
    sink->drop(sink->ud); /* the copy may mix two commits */
  }
  return 0;
}

/* Copies the value of the version it reads into buf. Returns OK (whole copy), TIMEOUT (a writer
 * overtook the copy: try again), INVALID_SIZE (cap too small; *len says how much is needed) or
 * CORRUPT (the descriptor is damaged and no writer is at work). */
static lxshm_status snapshot(lxshm_segment *seg, void *buf, size_t cap, size_t *len,
                             uint64_t *version, unsigned *format) {
  const char *data;
  size_t n;
  uint64_t v;
  unsigned fmt;
  lxshm_status st = describe(seg, &data, &n, &v, &fmt);

  if (st != LXSHM_OK)
    return st;
  if (n <= cap && n > 0) /* buf may be NULL when only the length is wanted */
    memcpy(buf, data, n);
  if (!still_current(seg, v))
    return LXSHM_TIMEOUT; /* the copy may mix two commits */
  *len = n;
  if (version != NULL)
    *version = v;
  if (format != NULL)
    *format = fmt;
  return n <= cap ? LXSHM_OK : LXSHM_INVALID_SIZE;
}

lxshm_status lxshm__read(lxshm_segment *seg, void *buf, size_t cap, size_t *len, uint64_t *version,
                         unsigned *format, lxshm_error *err) {
  uint64_t pause = 1000; /* a read-only reader's pause between tries: 1 us, doubling to 1 ms */
  lxshm_status st;
  int tries;

  for (tries = 0; tries < READ_TRIES; tries++) {
    st = snapshot(seg, buf, cap, len, version, format);
    if (st != LXSHM_TIMEOUT)
      goto done;
  }
  /* Writers keep overtaking the copy (a large value, frequent commits): copy under the lock, or,
   * for a read-only handle, which may not lock, keep trying between pauses. */
  while (seg->obj.readonly) {
    lxshm__sleep_ns(pause);
    if (pause < 1000000)
      pause *= 2;
    st = snapshot(seg, buf, cap, len, version, format);
    if (st != LXSHM_TIMEOUT)
      goto done;
  }
  st = lxshm__lock(seg, UINT64_MAX, err);
  if (st != LXSHM_OK)
    return st;
  st = snapshot(seg, buf, cap, len, version, format);
  lxshm__object_unlock(&seg->obj, seg->obj.hdr->lock); /* nothing committed: nobody to wake */
done:
  if (st == LXSHM_INVALID_SIZE)
    return lxshm__fail(err, st, "value of %zu bytes does not fit a buffer of %zu", *len, cap);
  if (st == LXSHM_CORRUPT)
    return lxshm__fail(err, st, "value descriptor is damaged");
  return st;
}

lxshm_status lxshm_read(lxshm_segment *seg, void *buf, size_t cap, size_t *len, uint64_t *version,
                        lxshm_error *err) {
  return lxshm__read(seg, buf, cap, len, version, NULL, err);
}

uint64_t lxshm_version(const lxshm_segment *seg) {
  return atomic_load_explicit(&seg->state->version, memory_order_acquire);
}

uint64_t lxshm__used(const lxshm_segment *seg) {
  uint64_t v = atomic_load_explicit(&seg->state->version, memory_order_acquire);
  uint64_t n = atomic_load_explicit(&seg->state->slots[v & 1].length, memory_order_relaxed);
  return n <= seg->obj.capacity ? n : seg->obj.capacity;
}

/* ---- waiting --------------------------------------------------------------------------------- */

static int version_moved(lxshm__object *o, void *ctx) {
  return atomic_load_explicit(&o->hdr->u.segment.version, memory_order_acquire) !=
         *(const uint64_t *)ctx;
}

lxshm_status lxshm__wait(lxshm_segment *seg, uint64_t version, double timeout, uint64_t *now,
                         const lxshm__interrupt *intr, lxshm_error *err) {
  lxshm_status st = lxshm__wait_until(&seg->obj, &seg->state->waiters, version_moved, &version,
                                      lxshm__deadline(timeout), intr, err);
  if (st == LXSHM_TIMEOUT)
    return lxshm__fail(err, st, "no new version within %g s", timeout);
  if (st == LXSHM_OK && now != NULL)
    *now = lxshm_version(seg);
  return st;
}

lxshm_status lxshm_wait(lxshm_segment *seg, uint64_t version, double timeout, uint64_t *now,
                        lxshm_error *err) {
  return lxshm__wait(seg, version, timeout, now, NULL, err);
}

/* ---- introspection -------------------------------------------------------------------------- */

static void stat(lxshm__object *o, lxshm__figures *out) {
  lxshm_segment *seg = (lxshm_segment *)o;
  lxshm__segment_stat *st = &out->segment;
  const lxshm__segment_state *s = seg->state;
  uint64_t v;
  do { /* the slot's fields belong to version v while the version has not moved */
    const lxshm__slot *slot;
    v = atomic_load_explicit(&s->version, memory_order_acquire);
    slot = &s->slots[v & 1];
    st->used = atomic_load_explicit(&slot->length, memory_order_relaxed);
    st->writer_pid = atomic_load_explicit(&slot->writer_pid, memory_order_relaxed);
    st->updated_ns = atomic_load_explicit(&slot->updated_ns, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
  } while (atomic_load_explicit(&s->version, memory_order_relaxed) != v);
  st->size = seg->obj.capacity;
  st->version = v;
  if (st->used > seg->obj.capacity)
    st->used = seg->obj.capacity;
  st->waiters = lxshm__waiter_count(&seg->obj, &seg->state->waiters);
}

const lxshm__kind lxshm__segment_kind = {
    LXSHM__KIND_SEGMENT,  "segment", "open", sizeof(lxshm_segment), plan, NULL, bind,
    LXSHM__SEGMENT_NAMES, stat};

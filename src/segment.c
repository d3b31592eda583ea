/* segment.c — segments: create, open, close, remove, header validation, the commit protocol,
 * lock-free snapshots, waiting and owner-death recovery. Makes no OS call itself (platform.h
 * does) and knows nothing of Lua.
 *
 * Commit protocol. A segment holds two value slots. Version v's value is in slot v & 1, so a
 * commit writes the idle slot while readers copy the current one, and publishes the new version
 * last, with release ordering. A reader copies slot v & 1 into private memory, then re-reads the
 * version: only a writer of version v + 2 could have touched that slot, and it can only start
 * after v + 1 is published, so an unchanged version proves the copy whole. A writer that dies
 * mid-commit leaves the version unpublished: the previous value is still the current one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "layout.h"
#include "platform.h"

struct lxshm_segment {
  lxshm__mapping map;        /* the view of the whole object */
  lxshm__header *hdr;        /* == map.base */
  unsigned char *data[2];    /* first byte of each slot's value */
  uint64_t capacity;         /* hdr->capacity, read once at open: never trust it again */
  int wake_pending;          /* a commit under the lock found sleepers: wake them on unlock */
  char name[LXSHM_NAME_MAX + 1];
};

/* Open waits this long for a concurrent creator, plus OPEN_PATIENCE_PER_MIB for every MiB the
 * creator must reserve (reserving memory runs well above 1 GiB/s). */
#define OPEN_PATIENCE_NS 500000000u
#define OPEN_PATIENCE_PER_MIB_NS 1000000u
#define READ_TRIES 8 /* lock-free attempts before a reader takes the lock */
/* A waiter sleeps at most this long before looking at the version again: a writer that dies
 * between its commit and its wake-up call delays the waiters by no more than this. */
#define WAIT_SLICE_NS 200000000u

/* ---- names, sizes, deadlines ------------------------------------------------------------ */

static int name_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

lxshm_status lxshm__check_name(const char *name, size_t len) {
  size_t i;
  if (len == 0 || len > LXSHM_NAME_MAX || name[0] == '.' || name[0] == '-')
    return LXSHM_INVALID;
  for (i = 0; i < len; i++)
    if (!name_char((unsigned char)name[i]))
      return LXSHM_INVALID;
  return LXSHM_OK;
}

lxshm_status lxshm_check_name(const char *name) {
  size_t len = 0;
  if (name == NULL)
    return LXSHM_INVALID;
  while (len <= LXSHM_NAME_MAX && name[len] != '\0') /* never reads past a too-long name's limit */
    len++;
  return lxshm__check_name(name, len);
}

static lxshm_status bad_name(lxshm_error *err) {
  return lxshm__fail(err, LXSHM_INVALID,
                     "invalid name: use 1-%d characters from A-Z a-z 0-9 . _ -, "
                     "not starting with . or -",
                     LXSHM_NAME_MAX);
}

uint64_t lxshm__deadline(double timeout) {
  if (!(timeout >= 0) || timeout >= 1e9) /* negative, NaN, or beyond 30 years: no limit */
    return UINT64_MAX;
  return lxshm__clock_ns() + (uint64_t)(timeout * 1e9);
}

static uint64_t stride_for(uint64_t capacity) {
  return (capacity + LXSHM__SLOT_ALIGN - 1) / LXSHM__SLOT_ALIGN * LXSHM__SLOT_ALIGN;
}

/* ---- handles ------------------------------------------------------------------------------- */

static lxshm_segment *handle_new(const char *name) {
  lxshm_segment *seg = calloc(1, sizeof *seg);
  if (seg != NULL)
    strcpy(seg->name, name); /* checked: at most LXSHM_NAME_MAX bytes */
  return seg;
}

static void handle_bind(lxshm_segment *seg) {
  seg->hdr = (lxshm__header *)seg->map.base;
  seg->capacity = seg->hdr->capacity;
  seg->data[0] = seg->map.base + LXSHM__HEADER_SIZE;
  seg->data[1] = seg->data[0] + seg->hdr->slot_stride;
}

void lxshm_close(lxshm_segment *seg) {
  if (seg == NULL)
    return;
  lxshm__map_close(&seg->map);
  free(seg);
}

uint64_t lxshm_size(const lxshm_segment *seg) {
  return seg->capacity;
}

const char *lxshm_name(const lxshm_segment *seg) {
  return seg->name;
}

/* ---- create, open, attach, remove ---------------------------------------------------------- */

lxshm_status lxshm_create(const char *name, uint64_t size, unsigned mode, lxshm_segment **out,
                          lxshm_error *err) {
  lxshm_segment *seg;
  lxshm__header *h;
  lxshm_status st;
  uint64_t stride;

  *out = NULL;
  if (lxshm_check_name(name) != LXSHM_OK)
    return bad_name(err);
  if (size == 0 || size > LXSHM_SIZE_MAX)
    return lxshm__fail(err, LXSHM_INVALID_SIZE, "size must be 1 to %llu bytes",
                       (unsigned long long)LXSHM_SIZE_MAX);
  stride = stride_for(size);
  if ((seg = handle_new(name)) == NULL)
    return lxshm__fail(err, LXSHM_SYSTEM, "out of memory");
  st = lxshm__map_create(name, (size_t)(LXSHM__HEADER_SIZE + 2 * stride), mode, &seg->map, err);
  if (st != LXSHM_OK) {
    free(seg);
    return st == LXSHM_EXISTS ? lxshm__fail(err, st, "already exists") : st;
  }
  /* The object is new and all zero: both slots hold the empty value of version 0. */
  h = (lxshm__header *)seg->map.base;
  h->layout = LXSHM__LAYOUT_VERSION;
  h->kind = LXSHM__KIND_SEGMENT;
  h->codec = LXSHM__CODEC_VERSION;
  h->capacity = size;
  h->map_size = seg->map.size;
  h->slot_stride = stride;
  h->creator_pid = lxshm__pid();
  st = lxshm__lock_init(&seg->map, h->lock, err);
  if (st != LXSHM_OK) {
    lxshm__map_close(&seg->map);
    lxshm__map_unlink(name, NULL);
    free(seg);
    return st;
  }
  atomic_store_explicit(&h->magic, LXSHM__MAGIC, memory_order_release); /* last: publishes */
  handle_bind(seg);
  *out = seg;
  return LXSHM_OK;
}

/* Checks a published header against the mapping it sits in. Everything a later access relies
 * on (the capacity, the slots' places) is checked here, once; per-commit fields are checked at
 * every read. */
static lxshm_status validate_header(const lxshm__header *h, size_t mapped, lxshm_error *err) {
  if (h->layout != LXSHM__LAYOUT_VERSION)
    return lxshm__fail(err, LXSHM_INVALID, "made by another lxshm build (layout %u, expected %u)",
                       h->layout, LXSHM__LAYOUT_VERSION);
  if (h->kind == LXSHM__KIND_QUEUE)
    return lxshm__fail(err, LXSHM_INVALID, "is a queue, not a segment (use open_queue)");
  if (h->kind != LXSHM__KIND_SEGMENT)
    return lxshm__fail(err, LXSHM_CORRUPT, "header names an unknown kind %u", h->kind);
  if (h->codec != LXSHM__CODEC_VERSION)
    return lxshm__fail(err, LXSHM_INVALID, "values in format %u, this build reads %u", h->codec,
                       LXSHM__CODEC_VERSION);
  if (h->capacity == 0 || h->capacity > LXSHM_SIZE_MAX || h->slot_stride != stride_for(h->capacity) ||
      h->map_size != LXSHM__HEADER_SIZE + 2 * h->slot_stride)
    return lxshm__fail(err, LXSHM_CORRUPT, "header sizes are inconsistent");
  if (h->map_size != mapped)
    return lxshm__fail(err, LXSHM_CORRUPT, "header says %llu bytes, the mapping has %zu",
                       (unsigned long long)h->map_size, mapped);
  return LXSHM_OK;
}

lxshm_status lxshm_open(const char *name, lxshm_segment **out, lxshm_error *err) {
  lxshm_segment *seg;
  lxshm_status st;
  uint64_t start, patience, pause = 100000; /* 0.1 ms, doubling up to 10 ms */

  *out = NULL;
  if (lxshm_check_name(name) != LXSHM_OK)
    return bad_name(err);
  if ((seg = handle_new(name)) == NULL)
    return lxshm__fail(err, LXSHM_SYSTEM, "out of memory");
  start = lxshm__clock_ns();
  for (;;) {
    st = lxshm__map_open(name, &seg->map, err);
    if (st == LXSHM_NOT_FOUND)
      st = lxshm__fail(err, st, "does not exist");
    if (st != LXSHM_OK)
      break;
    patience = OPEN_PATIENCE_NS + (uint64_t)(seg->map.size >> 20) * OPEN_PATIENCE_PER_MIB_NS;
    if (seg->map.size >= sizeof(lxshm__header)) {
      const lxshm__header *h = (const lxshm__header *)seg->map.base;
      uint32_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
      if (magic == LXSHM__MAGIC) {
        st = validate_header(h, seg->map.size, err);
        if (st == LXSHM_OK) {
          handle_bind(seg);
          *out = seg;
          return LXSHM_OK;
        }
        break;
      }
      if (magic != 0) {
        st = lxshm__fail(err, LXSHM_INVALID, "not an lxshm segment");
        break;
      }
    }
    else if (seg->map.size > 0 && seg->map.size < sizeof(lxshm__header)) {
      st = lxshm__fail(err, LXSHM_INVALID, "not an lxshm segment (%zu bytes)", seg->map.size);
      break;
    }
    /* Empty, or magic still 0: a creator is at work. Look again shortly, within bounds. */
    lxshm__map_close(&seg->map);
    if (lxshm__clock_ns() - start >= patience) {
      st = lxshm__fail(err, LXSHM_CORRUPT, "never finished initializing (its creator died?)");
      break;
    }
    lxshm__sleep_ns(pause);
    if (pause < 10000000)
      pause *= 2;
  }
  lxshm__map_close(&seg->map);
  free(seg);
  return st;
}

lxshm_status lxshm_attach(const char *name, uint64_t size, unsigned mode, lxshm_segment **out,
                          int *created, lxshm_error *err) {
  lxshm_status st;
  int tries;

  if (created != NULL)
    *created = 0;
  /* create and open each fail cleanly on the other's outcome; loop while a concurrent remove
   * keeps taking the name away between the two. */
  for (tries = 0; tries < 100; tries++) {
    st = lxshm_create(name, size, mode, out, err);
    if (st != LXSHM_EXISTS) {
      if (created != NULL)
        *created = (st == LXSHM_OK);
      return st;
    }
    st = lxshm_open(name, out, err);
    if (st != LXSHM_NOT_FOUND)
      return st;
  }
  return lxshm__fail(err, LXSHM_SYSTEM, "name keeps appearing and disappearing");
}

lxshm_status lxshm_remove(const char *name, lxshm_error *err) {
  lxshm_status st;
  if (lxshm_check_name(name) != LXSHM_OK)
    return bad_name(err);
  st = lxshm__map_unlink(name, err);
  return st == LXSHM_NOT_FOUND ? lxshm__fail(err, st, "does not exist") : st;
}

/* ---- the lock --------------------------------------------------------------------------- */

/* After an owner died holding the lock. Its commit either published the version (then the value
 * is whole: all bytes precede the version) or did not (then the idle slot is scratch). Only the
 * wait word may lag behind the version: bring it up to date and wake everyone. */
static void repair_locked(lxshm_segment *seg) {
  uint64_t v = atomic_load_explicit(&seg->hdr->version, memory_order_relaxed);
  atomic_store_explicit(&seg->hdr->seq, (uint32_t)v, memory_order_release);
  seg->wake_pending = 1;
}

lxshm_status lxshm__lock(lxshm_segment *seg, uint64_t deadline, lxshm_error *err) {
  int owner_died;
  lxshm_status st = lxshm__lock_acquire(&seg->map, seg->hdr->lock, deadline, &owner_died, err);
  if (st == LXSHM_OK && owner_died) {
    repair_locked(seg);
    lxshm__lock_recovered(&seg->map, seg->hdr->lock);
  }
  return st;
}

void lxshm__unlock(lxshm_segment *seg) {
  lxshm__lock_release(&seg->map, seg->hdr->lock);
  if (seg->wake_pending) { /* after unlocking: the woken need not queue on the lock */
    seg->wake_pending = 0;
    lxshm__word_wake(&seg->map, &seg->hdr->seq);
  }
}

/* ---- commits and snapshots ---------------------------------------------------------------- */

static lxshm_status too_large(lxshm_segment *seg, size_t len, lxshm_error *err) {
  return lxshm__fail(err, LXSHM_INVALID_SIZE, "value of %zu bytes exceeds the capacity of %llu",
                     len, (unsigned long long)seg->capacity);
}

void lxshm__current_locked(lxshm_segment *seg, const char **data, size_t *len, unsigned *format) {
  uint64_t v = atomic_load_explicit(&seg->hdr->version, memory_order_relaxed);
  const lxshm__slot *slot = &seg->hdr->slots[v & 1];
  uint64_t n = atomic_load_explicit(&slot->length, memory_order_relaxed);
  *data = (const char *)seg->data[v & 1];
  *len = (size_t)(n <= seg->capacity ? n : 0); /* a damaged length never reaches a copy */
  if (format != NULL)
    *format = atomic_load_explicit(&slot->format, memory_order_relaxed);
}

lxshm_status lxshm__commit_locked(lxshm_segment *seg, const void *data, size_t len,
                                  unsigned format, lxshm_error *err) {
  lxshm__header *h = seg->hdr;
  uint64_t next;
  lxshm__slot *slot;

  if (len > seg->capacity)
    return too_large(seg, len, err);
  next = atomic_load_explicit(&h->version, memory_order_relaxed) + 1;
  slot = &h->slots[next & 1];
  /* A reader may still be copying this slot as version next - 2. Order our stores after the
   * publication of next - 1, so that a reader who sees any of our bytes also sees the version
   * move and discards its copy. */
  atomic_thread_fence(memory_order_release);
  if (len > 0) /* data may be NULL for an empty value */
    memcpy(seg->data[next & 1], data, len);
  atomic_store_explicit(&slot->length, len, memory_order_relaxed);
  atomic_store_explicit(&slot->format, format, memory_order_relaxed);
  atomic_store_explicit(&slot->writer_pid, lxshm__pid(), memory_order_relaxed);
  atomic_store_explicit(&slot->updated_ns, lxshm__wallclock_ns(), memory_order_relaxed);
  atomic_store_explicit(&slot->version, next, memory_order_relaxed);
  atomic_store_explicit(&h->version, next, memory_order_release); /* last: implies the bytes */
  atomic_store_explicit(&h->seq, (uint32_t)next, memory_order_release);
  /* Pairs with the fence in lxshm_wait: either the waiter sees the new version, or we see it
   * counted in sleepers and wake it. */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&h->sleepers, memory_order_relaxed) != 0)
    seg->wake_pending = 1;
  return LXSHM_OK;
}

lxshm_status lxshm__write(lxshm_segment *seg, const void *data, size_t len, unsigned format,
                          double timeout, lxshm_error *err) {
  lxshm_status st;
  if (len > seg->capacity) /* refuse before waiting for the lock */
    return too_large(seg, len, err);
  st = lxshm__lock(seg, lxshm__deadline(timeout), err);
  if (st != LXSHM_OK)
    return st;
  st = lxshm__commit_locked(seg, data, len, format, err);
  lxshm__unlock(seg);
  return st;
}

lxshm_status lxshm_write(lxshm_segment *seg, const void *data, size_t len, double timeout,
                         lxshm_error *err) {
  return lxshm__write(seg, data, len, LXSHM__FORMAT_RAW, timeout, err);
}

/* Reads the descriptor of the current value. OK: *data, *len and *format belong to version *v
 * as long as the version does not move. CORRUPT: the descriptor is damaged (and no writer is at
 * work); TIMEOUT: a writer moved the version while we looked. */
static lxshm_status describe(lxshm_segment *seg, const char **data, size_t *len, uint64_t *v,
                             unsigned *format) {
  const lxshm__header *h = seg->hdr;
  uint64_t version = atomic_load_explicit(&h->version, memory_order_acquire);
  const lxshm__slot *slot = &h->slots[version & 1];
  uint64_t n = atomic_load_explicit(&slot->length, memory_order_relaxed);
  uint64_t tag = atomic_load_explicit(&slot->version, memory_order_relaxed);
  unsigned fmt = atomic_load_explicit(&slot->format, memory_order_relaxed);

  if (n > seg->capacity || tag != version || fmt > LXSHM__FORMAT_MSGPACK) {
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&h->version, memory_order_relaxed) == version ? LXSHM_CORRUPT
                                                                              : LXSHM_TIMEOUT;
  }
  *data = (const char *)seg->data[version & 1];
  *len = (size_t)n;
  *v = version;
  if (format != NULL)
    *format = fmt;
  return LXSHM_OK;
}

int lxshm__view_valid(lxshm_segment *seg, uint64_t version) {
  atomic_thread_fence(memory_order_acquire); /* the caller's copy happens before the re-check */
  return atomic_load_explicit(&seg->hdr->version, memory_order_relaxed) == version;
}

lxshm_status lxshm__view(lxshm_segment *seg, const char **data, size_t *len, uint64_t *version,
                         unsigned *format) {
  return describe(seg, data, len, version, format);
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
  if (!lxshm__view_valid(seg, v))
    return LXSHM_TIMEOUT; /* the copy may mix two commits */
  *len = n;
  if (version != NULL)
    *version = v;
  if (format != NULL)
    *format = fmt;
  return n <= cap ? LXSHM_OK : LXSHM_INVALID_SIZE;
}

lxshm_status lxshm__read(lxshm_segment *seg, void *buf, size_t cap, size_t *len,
                         uint64_t *version, unsigned *format, lxshm_error *err) {
  lxshm_status st;
  int tries;

  for (tries = 0; tries < READ_TRIES; tries++) {
    st = snapshot(seg, buf, cap, len, version, format);
    if (st != LXSHM_TIMEOUT)
      goto done;
  }
  /* Writers keep overtaking the copy (a large value, frequent commits): copy under the lock. */
  st = lxshm__lock(seg, UINT64_MAX, err);
  if (st != LXSHM_OK)
    return st;
  st = snapshot(seg, buf, cap, len, version, format);
  lxshm__unlock(seg);
done:
  if (st == LXSHM_INVALID_SIZE)
    return lxshm__fail(err, st, "value of %zu bytes does not fit a buffer of %zu", *len, cap);
  if (st == LXSHM_CORRUPT)
    return lxshm__fail(err, st, "value descriptor is damaged");
  return st;
}

lxshm_status lxshm_read(lxshm_segment *seg, void *buf, size_t cap, size_t *len,
                        uint64_t *version, lxshm_error *err) {
  return lxshm__read(seg, buf, cap, len, version, NULL, err);
}

uint64_t lxshm_version(const lxshm_segment *seg) {
  return atomic_load_explicit(&seg->hdr->version, memory_order_acquire);
}

uint64_t lxshm__used(const lxshm_segment *seg) {
  uint64_t v = atomic_load_explicit(&seg->hdr->version, memory_order_acquire);
  uint64_t n = atomic_load_explicit(&seg->hdr->slots[v & 1].length, memory_order_relaxed);
  return n <= seg->capacity ? n : seg->capacity;
}

/* ---- waiting --------------------------------------------------------------------------------- */

/* Registers the calling process as a waiter: counts it in sleepers (what commits look at) and
 * claims a waiter_pids entry (what stat and healing look at). Returns the entry's index, or -1
 * when all are taken (the waiter is then counted but not tracked). */
static int waiter_enter(lxshm__header *h) {
  uint32_t pid = lxshm__pid();
  unsigned i, start = pid % LXSHM__WAITER_SLOTS;
  atomic_fetch_add_explicit(&h->sleepers, 1, memory_order_relaxed);
  for (i = 0; i < LXSHM__WAITER_SLOTS; i++) {
    unsigned k = (start + i) % LXSHM__WAITER_SLOTS;
    uint32_t expected = 0;
    if (atomic_compare_exchange_strong_explicit(&h->waiter_pids[k], &expected, pid,
                                                memory_order_relaxed, memory_order_relaxed))
      return (int)k;
  }
  return -1;
}

/* Unregisters. If someone freed our entry believing us dead, they already took our count. */
static void waiter_leave(lxshm__header *h, int entry) {
  uint32_t pid = lxshm__pid();
  if (entry < 0 || atomic_compare_exchange_strong_explicit(&h->waiter_pids[entry], &pid, 0,
                                                            memory_order_relaxed,
                                                            memory_order_relaxed))
    atomic_fetch_sub_explicit(&h->sleepers, 1, memory_order_relaxed);
}

/* Frees the entries of waiters whose process has died, taking their counts with them. */
static void waiters_heal(lxshm__header *h) {
  unsigned k;
  for (k = 0; k < LXSHM__WAITER_SLOTS; k++) {
    uint32_t pid = atomic_load_explicit(&h->waiter_pids[k], memory_order_relaxed);
    if (pid != 0 && !lxshm__pid_alive(pid) &&
        atomic_compare_exchange_strong_explicit(&h->waiter_pids[k], &pid, 0, memory_order_relaxed,
                                                memory_order_relaxed))
      atomic_fetch_sub_explicit(&h->sleepers, 1, memory_order_relaxed);
  }
}

lxshm_status lxshm_wait(lxshm_segment *seg, uint64_t version, double timeout, uint64_t *now,
                        lxshm_error *err) {
  lxshm__header *h = seg->hdr;
  uint64_t deadline = lxshm__deadline(timeout), v;
  lxshm_status st = LXSHM_OK;

  for (;;) {
    uint32_t seq = atomic_load_explicit(&h->seq, memory_order_acquire);
    uint64_t slice;
    int entry;
    v = atomic_load_explicit(&h->version, memory_order_acquire);
    if (v != version || st == LXSHM_TIMEOUT)
      break;
    slice = lxshm__clock_ns() + WAIT_SLICE_NS;
    entry = waiter_enter(h);
    atomic_thread_fence(memory_order_seq_cst); /* pairs with the fence in commit */
    v = atomic_load_explicit(&h->version, memory_order_relaxed);
    if (v == version)
      st = lxshm__word_wait(&seg->map, &h->seq, seq, slice < deadline ? slice : deadline, err);
    waiter_leave(h, entry);
    if (st == LXSHM_TIMEOUT && lxshm__clock_ns() < deadline)
      st = LXSHM_OK; /* only the slice ended: look at the version, then sleep again */
    if (st != LXSHM_OK && st != LXSHM_TIMEOUT)
      return st;
  }
  if (v == version)
    return lxshm__fail(err, LXSHM_TIMEOUT, "no new version within %g s", timeout);
  if (now != NULL)
    *now = v;
  return LXSHM_OK;
}

/* ---- introspection -------------------------------------------------------------------------- */

void lxshm__stat_get(lxshm_segment *seg, lxshm__stat *st) {
  lxshm__header *h = seg->hdr;
  uint64_t v;
  do { /* the slot's fields belong to version v while the version has not moved */
    const lxshm__slot *slot;
    v = atomic_load_explicit(&h->version, memory_order_acquire);
    slot = &h->slots[v & 1];
    st->used = atomic_load_explicit(&slot->length, memory_order_relaxed);
    st->writer_pid = atomic_load_explicit(&slot->writer_pid, memory_order_relaxed);
    st->updated_ns = atomic_load_explicit(&slot->updated_ns, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
  } while (atomic_load_explicit(&h->version, memory_order_relaxed) != v);
  st->size = seg->capacity;
  st->version = v;
  if (st->used > seg->capacity)
    st->used = seg->capacity;
  waiters_heal(seg->hdr);
  st->waiters = atomic_load_explicit(&h->sleepers, memory_order_relaxed);
}

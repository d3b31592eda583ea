/* queue.c — queues: a ring of values in a named object, for many producers and consumers in
 * many processes. Built on object.c; makes no OS call itself and knows nothing of Lua.
 *
 * Producers serialize on the push lock and consumers on the pop lock, so a producer and a
 * consumer never wait for each other. A push writes its record past `tail`, then publishes the
 * new tail (release); a pop copies the record at `head` out, then publishes the new head. A
 * process killed at any instant leaves either the old or the new index: never half a value. The
 * counters beside them (pushed, popped) are finished by the next locker from an intent record
 * when their writer died between index and counter. */
#include <stdlib.h>
#include <string.h>

#include "ring.h"
#include "wait.h"

struct lxshm_queue {
  lxshm__object obj;
  lxshm__queue_state *state; /* &obj.hdr->u.queue */
  lxshm__ring ring;          /* the data after the header */
  uint64_t head_seen;        /* a producer's last look at head (head only grows) */
  uint64_t tail_seen;        /* a consumer's last look at tail (tail only grows) */
};

/* The push and pop locks are held only while one record is copied, and a dead holder's lock is
 * handed on at once, so a caller's timeout bounds its wait for room or for a value, not for a
 * lock: a push with timeout 0 must not fail because another producer was mid-copy. A holder
 * that is stopped (SIGSTOP, a debugger) is waited for this long before TIMEOUT. */
#define LOCK_PATIENCE_NS 1000000000u

static uint64_t lock_deadline(uint64_t deadline) {
  uint64_t least = lxshm__clock_ns() + LOCK_PATIENCE_NS;
  return deadline > least ? deadline : least;
}

/* A ring of whole records: the capacity rounded up to whole 8-byte units. */
static lxshm_status plan(lxshm__header *h, lxshm_error *err) {
  (void)err;
  h->capacity = (h->capacity + LXSHM__RECORD_ALIGN - 1) / LXSHM__RECORD_ALIGN * LXSHM__RECORD_ALIGN;
  h->map_size = LXSHM__HEADER_SIZE + h->capacity;
  h->slot_stride = 0;
  memset(h->params, 0, sizeof h->params);
  return LXSHM_OK;
}

/* The push lock is the header's (line 1); the pop lock needs making too. The rest of a new
 * queue's state is all zero: empty. */
static lxshm_status init(lxshm__object *o, lxshm_error *err) {
  return lxshm__lock_init(&o->map, o->hdr->u.queue.pop_lock, err);
}

static void bind(lxshm__object *o) {
  lxshm_queue *q = (lxshm_queue *)o;
  q->state = &o->hdr->u.queue;
  q->ring.data = o->data;
  q->ring.capacity = o->capacity;
}

/* ---- create, open, close ---------------------------------------------------------------- */

/* lxshm_queue_create, _attach, _open_with, _open, _close, _size and _name */
LXSHM__TYPED_CREATE(lxshm_queue_, lxshm_queue, lxshm__queue_kind)
LXSHM__TYPED_API(lxshm_queue_, lxshm_queue, lxshm__queue_kind, size)

uint64_t lxshm_queue_count(const lxshm_queue *q) {
  /* popped first: pushed only grows. A pop may still count a value whose push has published the
   * tail but not yet the count: that value is in flight, not missing, and counts as 0. */
  uint64_t popped = atomic_load_explicit(&q->state->popped, memory_order_acquire);
  uint64_t pushed = atomic_load_explicit(&q->state->pushed, memory_order_acquire);
  return pushed >= popped ? pushed - popped : 0;
}

uint64_t lxshm_queue_used(const lxshm_queue *q) {
  uint64_t head = atomic_load_explicit(&q->state->head, memory_order_acquire);
  uint64_t tail = atomic_load_explicit(&q->state->tail, memory_order_acquire);
  uint64_t used = tail - head;
  return used <= q->obj.capacity ? used : q->obj.capacity;
}

uint64_t lxshm__queue_max_value(const lxshm_queue *q) {
  return lxshm__record_max_value(q->obj.capacity);
}

/* ---- locks and repair -------------------------------------------------------------------- */

/* An end's lock taken from a dead owner (a producer: tail, pushed; a consumer: head, popped).
 * Its record either was published (the index moved) or is scratch past it. If the index matches
 * the owner's intent, the count may lag: finish it from the intent. */
static void finish_count(const _Atomic uint64_t *index, const _Atomic uint64_t *index_intent,
                         _Atomic uint64_t *count, const _Atomic uint64_t *count_intent) {
  if (atomic_load_explicit(index, memory_order_relaxed) ==
      atomic_load_explicit(index_intent, memory_order_relaxed))
    atomic_store_explicit(count, atomic_load_explicit(count_intent, memory_order_relaxed),
                          memory_order_release);
}

static void repair_push(lxshm__object *o) {
  lxshm__queue_state *s = &o->hdr->u.queue;
  finish_count(&s->tail, &s->push_tail, &s->pushed, &s->push_pushed);
  lxshm__wake_all(o, &s->not_empty);
}

static void repair_pop(lxshm__object *o) {
  lxshm__queue_state *s = &o->hdr->u.queue;
  finish_count(&s->head, &s->pop_head, &s->popped, &s->pop_popped);
  lxshm__wake_all(o, &s->not_full);
}

/* ---- push --------------------------------------------------------------------------------- */

typedef struct room_wanted {
  uint64_t bytes;
} room_wanted;

static int has_room(lxshm__object *o, void *ctx) {
  const lxshm__queue_state *s = &o->hdr->u.queue;
  uint64_t head = atomic_load_explicit(&s->head, memory_order_acquire);
  uint64_t tail = atomic_load_explicit(&s->tail, memory_order_acquire);
  /* The indices moved between the two loads, or are damaged: look again under the lock, which
   * tells the two apart. */
  if (tail - head > o->capacity)
    return 1;
  return o->capacity - (tail - head) >= ((room_wanted *)ctx)->bytes;
}

/* A run of values to append as one: an optional record header, then bytes. */
typedef struct run {
  const void *header; /* written first (one value), or NULL (data holds whole records) */
  const void *data;   /* then these bytes */
  size_t len;
  uint64_t bytes; /* ring bytes the run takes, records padded to 8 */
  uint64_t count; /* values in the run */
} run;

/* Writes the run past the tail if it fits, then publishes it; the push lock must be held.
 * Returns OK (pushed), TIMEOUT (no room now) or CORRUPT (the indices are damaged: more bytes in
 * use than the ring holds). */
static lxshm_status push_locked(lxshm_queue *q, const run *r) {
  lxshm__queue_state *s = q->state;
  uint64_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
  uint64_t pushed = atomic_load_explicit(&s->pushed, memory_order_relaxed);
  uint64_t at = tail;

  /* Full by our last look at head? Other producers may have moved tail far past that look, so
   * compare used bytes with the room left (bytes <= capacity): capacity - used could wrap. */
  if (tail - q->head_seen > q->obj.capacity - r->bytes) {
    /* Read after tail, which our lock holds still: head only grows, so tail - head can only
     * exceed the capacity if the indices are damaged. */
    q->head_seen = atomic_load_explicit(&s->head, memory_order_acquire);
    if (tail - q->head_seen > q->obj.capacity)
      return LXSHM_CORRUPT;
    if (tail - q->head_seen > q->obj.capacity - r->bytes)
      return LXSHM_TIMEOUT;
  }
  if (r->header != NULL) {
    lxshm__ring_put(&q->ring, at, r->header, LXSHM__RECORD_HEADER);
    at += LXSHM__RECORD_HEADER;
  }
  if (r->len > 0)
    lxshm__ring_put(&q->ring, at, r->data, r->len);
  atomic_store_explicit(&s->push_tail, tail + r->bytes, memory_order_relaxed);
  atomic_store_explicit(&s->push_pushed, pushed + r->count, memory_order_relaxed);
  atomic_store_explicit(&s->tail, tail + r->bytes, memory_order_release); /* publishes the run */
  atomic_store_explicit(&s->pushed, pushed + r->count, memory_order_release);
  return LXSHM_OK;
}

static lxshm_status damaged_indices(lxshm_queue *q, lxshm_error *err) {
  uint64_t head = atomic_load_explicit(&q->state->head, memory_order_relaxed);
  uint64_t tail = atomic_load_explicit(&q->state->tail, memory_order_relaxed);
  return lxshm__fail(err, LXSHM_CORRUPT, "indices are damaged (head %llu, tail %llu, ring %llu)",
                     (unsigned long long)head, (unsigned long long)tail,
                     (unsigned long long)q->obj.capacity);
}

/* A wait for room or for a value that ended without it: TIMEOUT says how long it waited for
 * the queue to stop being `state` ("full", "empty"); other failures pass through. */
static lxshm_status waited_in_vain(lxshm_status st, const char *state, double timeout,
                                   lxshm_error *err) {
  if (st != LXSHM_TIMEOUT)
    return st;
  if (timeout == 0)
    return lxshm__fail(err, st, "queue is %s", state);
  return lxshm__fail(err, st, "queue still %s after %g s", state, timeout);
}
/* Appends the run under the push lock, waiting for room for all of it; one wake-up. */
static lxshm_status push_run(lxshm_queue *q, const run *r, double timeout,
                             const lxshm__interrupt *intr, lxshm_error *err) {
  uint64_t deadline = lxshm__deadline(timeout);
  room_wanted want;
  lxshm_status st;

  want.bytes = r->bytes;
  for (;;) {
    st = lxshm__object_lock(&q->obj, q->obj.hdr->lock, lock_deadline(deadline), repair_push, err);
    if (st != LXSHM_OK)
      return st;
    st = push_locked(q, r);
    lxshm__object_unlock(&q->obj, q->obj.hdr->lock);
    if (st == LXSHM_OK) {
      lxshm__wake(&q->obj, &q->state->not_empty);
      return LXSHM_OK;
    }
    if (st == LXSHM_CORRUPT)
      return damaged_indices(q, err);
    st = lxshm__wait_until(&q->obj, &q->state->not_full, has_room, &want, deadline, intr, err);
    if (st != LXSHM_OK)
      return waited_in_vain(st, "full", timeout, err);
  }
}

lxshm_status lxshm__queue_push(lxshm_queue *q, const void *data, size_t len, unsigned format,
                               double timeout, const lxshm__interrupt *intr, lxshm_error *err) {
  unsigned char header[LXSHM__RECORD_HEADER];
  run r;

  if (len > UINT32_MAX || lxshm__record_size(len) > q->obj.capacity)
    return lxshm__fail(err, LXSHM_INVALID_SIZE, "value of %zu bytes cannot fit a queue of %llu",
                       len, (unsigned long long)q->obj.capacity);
  lxshm__record_header(header, len, format);
  r.header = header;
  r.data = data;
  r.len = len;
  r.bytes = lxshm__record_size(len);
  r.count = 1;
  return push_run(q, &r, timeout, intr, err);
}

lxshm_status lxshm_queue_push(lxshm_queue *q, const void *data, size_t len, double timeout,
                              lxshm_error *err) {
  return lxshm__queue_push(q, data, len, LXSHM__FORMAT_RAW, timeout, NULL, err);
}

lxshm_status lxshm__queue_push_records(lxshm__object *o, lxshm__records *records,
                                       lxshm_error *err) {
  lxshm_queue *q = (lxshm_queue *)o;
  run r;
  if (records->count == 0)
    return LXSHM_OK;
  if (records->bytes > q->obj.capacity)
    return lxshm__fail(
        err, LXSHM_INVALID_SIZE, "%llu values taking %zu bytes cannot fit a queue of %llu",
        (unsigned long long)records->count, records->bytes, (unsigned long long)q->obj.capacity);
  r.header = NULL;
  r.data = records->data;
  r.len = records->bytes;
  r.bytes = records->bytes;
  r.count = records->count;
  return push_run(q, &r, records->timeout, records->intr, err);
}

/* ---- pop and peek --------------------------------------------------------------------------- */

static int not_empty(lxshm__object *o, void *ctx) {
  const lxshm__queue_state *s = &o->hdr->u.queue;
  (void)ctx;
  return atomic_load_explicit(&s->tail, memory_order_acquire) !=
         atomic_load_explicit(&s->head, memory_order_acquire);
}

/* Reads the record header at `head`; the pop lock must be held. Returns OK (*len, *format and
 * *rec filled), TIMEOUT (no record there) or CORRUPT (a header that does not fit what was
 * published). */
static lxshm_status front_locked(lxshm_queue *q, uint64_t head, uint32_t *len, unsigned *format,
                                 uint64_t *rec) {
  unsigned char header[LXSHM__RECORD_HEADER];
  uint64_t avail = q->tail_seen - head;
  /* Empty by our last look, or our look is older than another consumer's pops (head passed it:
   * the difference wrapped): look again. */
  if (avail == 0 || avail > q->obj.capacity) {
    q->tail_seen = atomic_load_explicit(&q->state->tail, memory_order_acquire);
    avail = q->tail_seen - head;
    if (avail == 0)
      return LXSHM_TIMEOUT;
    if (avail > q->obj.capacity)
      return LXSHM_CORRUPT;
  }
  lxshm__ring_get(&q->ring, head, header, sizeof header);
  lxshm__record_parse(header, len, format);
  *rec = lxshm__record_size(*len);
  if (*rec > avail || *format > LXSHM__FORMAT_MSGPACK)
    return LXSHM_CORRUPT;
  return LXSHM_OK;
}

/* Copies out what t asks for from the head and, if t->remove, publishes the new head; the pop
 * lock must be held. Returns OK, TIMEOUT (empty), INVALID_SIZE (the first value does not fit)
 * or CORRUPT. */
static lxshm_status take_locked(lxshm_queue *q, lxshm__take *t) {
  lxshm__queue_state *s = q->state;
  uint64_t head = atomic_load_explicit(&s->head, memory_order_relaxed), at = head, rec;
  uint32_t n;
  unsigned fmt;
  lxshm_status st = LXSHM_OK;

  t->len = 0;
  t->count = 0;
  while (t->count < t->max) {
    size_t need;
    st = front_locked(q, at, &n, &fmt, &rec);
    if (st != LXSHM_OK)
      break;
    need = t->whole ? (size_t)rec : n;
    if (need > t->cap - t->len) {
      if (t->count == 0) {
        t->len = need;
        return LXSHM_INVALID_SIZE; /* the value stays queued for a bigger buffer */
      }
      break;
    }
    if (t->whole)
      lxshm__ring_get(&q->ring, at, (char *)t->buf + t->len, need);
    else if (n > 0)
      lxshm__ring_get(&q->ring, at + LXSHM__RECORD_HEADER, t->buf, n);
    t->len += need;
    t->format = fmt;
    t->count++;
    at += rec;
  }
  if (t->count == 0) {
    t->at = at;
    return st;
  }
  if (t->remove) {
    uint64_t popped = atomic_load_explicit(&s->popped, memory_order_relaxed);
    atomic_store_explicit(&s->pop_head, at, memory_order_relaxed);
    atomic_store_explicit(&s->pop_popped, popped + t->count, memory_order_relaxed);
    atomic_store_explicit(&s->head, at, memory_order_release); /* frees the bytes */
    atomic_store_explicit(&s->popped, popped + t->count, memory_order_release);
  }
  return LXSHM_OK;
}

lxshm_status lxshm__queue_take(lxshm_queue *q, lxshm__take *t, lxshm_error *err) {
  lxshm__queue_state *s = q->state;
  uint64_t deadline = lxshm__deadline(t->timeout);
  lxshm_status st;

  t->max = t->whole && t->max > 0 ? t->max : 1;
  for (;;) { /* under the pop lock, waiting while the queue is empty; one wake-up for producers */
    st = lxshm__object_lock(&q->obj, s->pop_lock, lock_deadline(deadline), repair_pop, err);
    if (st != LXSHM_OK)
      return st;
    st = take_locked(q, t);
    lxshm__object_unlock(&q->obj, s->pop_lock);
    if (st == LXSHM_OK) {
      if (t->remove)
        lxshm__wake(&q->obj, &s->not_full);
      return LXSHM_OK;
    }
    if (st == LXSHM_INVALID_SIZE)
      return lxshm__fail(err, st, "value of %zu bytes does not fit a buffer of %zu", t->len,
                         t->cap);
    if (st == LXSHM_CORRUPT)
      return lxshm__fail(err, st, "record at byte %llu of the ring is damaged",
                         (unsigned long long)(t->at % q->obj.capacity));
    st = lxshm__wait_until(&q->obj, &s->not_empty, not_empty, NULL, deadline, t->intr, err);
    if (st != LXSHM_OK)
      return waited_in_vain(st, "empty", t->timeout, err);
  }
}

/* lxshm_queue_pop and lxshm_queue_peek */
static lxshm_status take_value(lxshm_queue *q, void *buf, size_t cap, size_t *len, int remove,
                               double timeout, lxshm_error *err) {
  lxshm__take t = {0};
  lxshm_status st;
  t.buf = buf;
  t.cap = cap;
  t.remove = remove;
  t.timeout = timeout;
  st = lxshm__queue_take(q, &t, err);
  if (st == LXSHM_OK || st == LXSHM_INVALID_SIZE)
    *len = t.len;
  return st;
}

lxshm_status lxshm_queue_pop(lxshm_queue *q, void *buf, size_t cap, size_t *len, double timeout,
                             lxshm_error *err) {
  return take_value(q, buf, cap, len, 1, timeout, err);
}

lxshm_status lxshm_queue_peek(lxshm_queue *q, void *buf, size_t cap, size_t *len,
                              lxshm_error *err) {
  return take_value(q, buf, cap, len, 0, 0, err);
}

size_t lxshm__queue_front_length(lxshm_queue *q) {
  uint64_t head = atomic_load_explicit(&q->state->head, memory_order_acquire);
  uint64_t tail = atomic_load_explicit(&q->state->tail, memory_order_acquire);
  unsigned char header[LXSHM__RECORD_HEADER];
  uint32_t len;
  unsigned format;
  if (head == tail)
    return 0;
  lxshm__ring_get(&q->ring, head, header, sizeof header); /* a hint: a racing pop may change it */
  lxshm__record_parse(header, &len, &format);
  return len <= q->obj.capacity ? len : 0;
}

static void stat(lxshm__object *o, lxshm__figures *out) {
  lxshm_queue *q = (lxshm_queue *)o;
  lxshm__queue_stat *st = &out->queue;
  st->size = q->obj.capacity;
  st->used = lxshm_queue_used(q);
  st->count = lxshm_queue_count(q);
  st->pop_waiters = lxshm__waiter_count(&q->obj, &q->state->not_empty);
  st->push_waiters = lxshm__waiter_count(&q->obj, &q->state->not_full);
}

const lxshm__kind lxshm__queue_kind = {
    LXSHM__KIND_QUEUE,  "queue", "open_queue", sizeof(lxshm_queue), plan, init, bind,
    LXSHM__QUEUE_NAMES, stat};

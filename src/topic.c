/* topic.c — topics: numbered messages in a ring that every subscription reads at its own pace,
 * an index from sequence numbers to records, and a table of named subscriptions. Built on
 * object.c, ring.c and wait.c; makes no OS call itself and knows nothing of Lua.
 *
 * Publishers serialize on the lock of line 1. A publish of k messages (B bytes of records) at
 * ring position `tail`, after message `last`:
 *   1. raises `oldest` past every message whose record lies where the new records go, and
 *      past every message whose index entry they reuse; then a release fence;
 *   2. writes the records and their index entries;
 *   3. stores `last` (release): the messages exist; then `tail` (read by publishers only);
 *   4. once unlocked, wakes sleeping subscribers (no system call when none sleeps).
 * A publish reads `last` and `oldest` from the publishers' copies on line 3, never from line 2:
 * a subscriber keeping pace reads line 2 after every publish, and a publish that read it too
 * would wait for the line to come back from the subscriber's CPU each time (one subscriber
 * pinned to the other CPU left the publisher 0.57-0.61 of its rate alone without the copies,
 * 0.72-0.74 with them, in bench/topic_bench.lua side by side). The copies are stored with the
 * originals, so they are equal whenever the lock is free; a publisher killed between the two is
 * mended by the next one (repair_publish). Step 3 also stores `oldest` again, which costs
 * nothing on a line being written anyway and mends line 2 if it was damaged.
 * A subscription only reads. For its next message s it loads `last` (acquire: s <= last), finds
 * where s's record starts and copies it out, then after an acquire fence loads `oldest` again.
 * If s < oldest by then, the copy may hold bytes of a later publish: it is dropped, and the
 * messages below `oldest` count as lost. Otherwise no publish touched s's bytes since they were
 * written (step 1 comes first), so the copy is whole. This is a seqlock whose sequence is
 * `oldest`: subscribers write nothing that a publisher or another subscriber reads.
 * Records lie back to back in message order: every publish appends at `tail`, which is where
 * message `last` ends. So a subscription that copied message s - 1 knows where s starts, and
 * need not read s's index entry: it follows on. A batch looked up in the index (each record's
 * place from its own entry) keeps the messages at or above the re-read `oldest`; a followed one
 * found its later records through the headers before them, which an overtaking publish may have
 * overwritten, so it is dropped whole and copied again through the index. A subscription
 * follows on only in the newer half of the messages held, where a publish is least likely to
 * overtake it, so that one behind does not waste attempts. A subscriber keeping pace then fetches
 * one line fewer from the publisher's CPU per message, and the publisher one fewer back (one
 * subscriber pinned to the other CPU left the publisher 0.69 of its rate alone reading the index,
 * 0.77 without: medians of 150 runs of each build, alternating).
 *
 * A publisher killed at any instant leaves `last` old (its messages never appear; the raise of
 * `oldest` and the bytes past the tail are harmless) or new (all of them appear). The next
 * publisher carries on from the state as it is, puts `tail` at the end of message `last` (the
 * dead one may have stored `last` but not `tail`), and wakes subscribers that may have missed
 * their wake-up.
 *
 * Named subscriptions live in the cursor table, changed under the cursor lock (line 4), never
 * the publishers' lock: a holder is a pid with its start time, so a name held by a process that
 * died, or whose pid another process now has, is free again. */
#include <stdlib.h>
#include <string.h>

#include "ring.h"
#include "wait.h"

struct lxshm_topic {
  lxshm__object obj;
  lxshm__topic_state *state;    /* &obj.hdr->u.topic */
  lxshm__topic_cursor *cursors; /* the cursor table, first in the data */
  unsigned ncursors;            /* hdr->params[0] */
  _Atomic uint64_t *index;      /* entries: ring position of message s's record at s % entries */
  uint64_t entries;
  lxshm__ring ring; /* after the index */
};

struct lxshm_subscription {
  lxshm_topic *topic;
  uint64_t next;                     /* the message to return next, if still held */
  uint64_t lost;                     /* messages skipped since the last one returned */
  uint64_t at;                       /* where message `next` starts, if at_known: where the */
  int at_known;                      /* message before it ended (unknown at the start, after a
                                        skip or a damaged record) */
  lxshm__topic_cursor *cursor;       /* the named subscription held, or NULL */
  char name[LXSHM__CURSOR_NAME + 1]; /* its name, "" when anonymous */
};

/* The topic holds at most one message per this many bytes of ring (and at least INDEX_MIN): the
 * index costs 8 bytes per entry, a quarter of the ring. Only messages under 24 bytes encoded fill
 * the index before they fill the ring. */
#define BYTES_PER_ENTRY 32u
#define INDEX_MIN 8u

/* How long a caller waits for the cursor lock (held for a scan of the table by a living
 * process) before TIMEOUT. */
#define CURSOR_PATIENCE_NS 2000000000u

static uint64_t index_entries(uint64_t capacity) {
  uint64_t n = (capacity + BYTES_PER_ENTRY - 1) / BYTES_PER_ENTRY;
  return n < INDEX_MIN ? INDEX_MIN : n;
}

static uint64_t index_bytes(uint64_t entries) {
  return (entries * 8 + 63) / 64 * 64; /* the ring starts on a cache line */
}

/* The ring rounded up to whole 8-byte units, after a cursor table of params[0] entries and the
 * index. */
static lxshm_status plan(lxshm__header *h, lxshm_error *err) {
  uint32_t cursors = h->params[0];
  if (cursors > LXSHM_TOPIC_CURSORS_MAX)
    return lxshm__fail(err, LXSHM_INVALID_SIZE, "room for %u named subscriptions asked, at most %d",
                       cursors, LXSHM_TOPIC_CURSORS_MAX);
  h->capacity = (h->capacity + LXSHM__RECORD_ALIGN - 1) / LXSHM__RECORD_ALIGN * LXSHM__RECORD_ALIGN;
  h->map_size = LXSHM__HEADER_SIZE + (uint64_t)cursors * sizeof(lxshm__topic_cursor) +
                index_bytes(index_entries(h->capacity)) + h->capacity;
  h->slot_stride = 0;
  memset(h->params + 1, 0, sizeof h->params - sizeof h->params[0]);
  return LXSHM_OK;
}

/* A new topic holds nothing: last 0, oldest 1. Its cursor lock needs making. */
static lxshm_status init(lxshm__object *o, lxshm_error *err) {
  atomic_store_explicit(&o->hdr->u.topic.oldest, 1, memory_order_relaxed);
  atomic_store_explicit(&o->hdr->u.topic.pub_oldest, 1, memory_order_relaxed);
  return lxshm__lock_init(&o->map, o->hdr->u.topic.cursor_lock, err);
}

static void bind(lxshm__object *o) {
  lxshm_topic *t = (lxshm_topic *)o;
  t->state = &o->hdr->u.topic;
  t->ncursors = o->hdr->params[0];
  t->cursors = (lxshm__topic_cursor *)o->data;
  t->entries = index_entries(o->capacity);
  t->index = (_Atomic uint64_t *)(o->data + (size_t)t->ncursors * sizeof(lxshm__topic_cursor));
  t->ring.data = (unsigned char *)t->index + index_bytes(t->entries);
  t->ring.capacity = o->capacity;
}

/* ---- create, open, close ---------------------------------------------------------------- */

lxshm_status lxshm_topic_create(const char *name, uint64_t size, unsigned cursors, unsigned mode,
                                lxshm_topic **out, lxshm_error *err) {
  uint32_t params[LXSHM__PARAMS] = {0};
  params[0] = cursors;
  return lxshm__create(&lxshm__topic_kind, name, size, params, mode, (lxshm__object **)out, err);
}

lxshm_status lxshm_topic_attach(const char *name, uint64_t size, unsigned cursors, unsigned mode,
                                lxshm_topic **out, int *created, lxshm_error *err) {
  uint32_t params[LXSHM__PARAMS] = {0};
  params[0] = cursors;
  return lxshm__attach(&lxshm__topic_kind, name, size, params, mode, 0, (lxshm__object **)out,
                       created, err);
}

/* lxshm_topic_open_with, _open, _close, _size and _name */
LXSHM__TYPED_API(lxshm_topic_, lxshm_topic, lxshm__topic_kind, size)

uint64_t lxshm_topic_last(const lxshm_topic *t) {
  return atomic_load_explicit(&t->state->last, memory_order_acquire);
}

uint64_t lxshm_topic_oldest(const lxshm_topic *t) {
  return atomic_load_explicit(&t->state->oldest, memory_order_acquire);
}

uint64_t lxshm__topic_max_value(const lxshm_topic *t) {
  return lxshm__record_max_value(t->obj.capacity);
}

/* ---- publish ------------------------------------------------------------------------------ */

/* A publisher died holding the lock: its messages are all there or none is, as `last` says, and
 * `oldest` is what subscribers went by. The publishers' copies of both may be ahead or behind:
 * they take line 2's values. If it stored `last` but not `tail`, the tail is behind its records;
 * while message `last` is held, its record is whole and says where it ends, which is where the
 * next message must start for the subscriptions that know where it does. (Otherwise the dead
 * publisher stored neither, and the tail is right.) Subscribers it did not wake may be asleep
 * with a message waiting. */
static void repair_publish(lxshm__object *o) {
  lxshm_topic *t = (lxshm_topic *)o;
  lxshm__topic_state *s = &o->hdr->u.topic;
  uint64_t last = atomic_load_explicit(&s->last, memory_order_relaxed);
  uint64_t oldest = atomic_load_explicit(&s->oldest, memory_order_relaxed);
  atomic_store_explicit(&s->pub_last, last, memory_order_relaxed);
  atomic_store_explicit(&s->pub_oldest, oldest, memory_order_relaxed);
  if (oldest >= 1 && oldest <= last && last - oldest < t->entries) {
    uint64_t pos = atomic_load_explicit(&t->index[last % t->entries], memory_order_relaxed);
    unsigned char header[LXSHM__RECORD_HEADER];
    uint32_t n;
    unsigned format;
    lxshm__ring_get(&t->ring, pos, header, sizeof header);
    lxshm__record_parse(header, &n, &format);
    if (lxshm__record_size(n) <= t->obj.capacity && format <= LXSHM__FORMAT_MSGPACK)
      atomic_store_explicit(&s->tail, pos + lxshm__record_size(n), memory_order_relaxed);
  }
  lxshm__wake_all(o, &s->arrived);
}

/* What one publish appends: one message given as a prefix and a body, or whole records. */
typedef struct run {
  const void *head; /* one message: the first hlen bytes of its value (may be 0) */
  size_t hlen;
  const void *data; /* then these len bytes; or, with records, whole records */
  size_t len;
  int records;     /* data holds `count` whole records (lxshm__record_put) */
  unsigned format; /* one message: its format tag */
  uint64_t bytes;  /* ring bytes the run takes */
  uint64_t count;  /* messages in the run */
} run;

/* Appends the run as messages last + 1 .. last + count; the lock must be held. Returns OK with
 * *seq the last of them, or CORRUPT (the indices are damaged) with nothing published. */
static lxshm_status publish_locked(lxshm_topic *t, const run *r, uint64_t *seq) {
  lxshm__topic_state *s = t->state;
  uint64_t last = atomic_load_explicit(&s->pub_last, memory_order_relaxed);
  uint64_t oldest = atomic_load_explicit(&s->pub_oldest, memory_order_relaxed), keep = oldest;
  uint64_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed), at = tail, m;
  uint64_t cap = t->obj.capacity;

  if (oldest == 0 || oldest > last + 1 || last + 1 - oldest > t->entries)
    return LXSHM_CORRUPT;
  /* Step 1: drop what the new messages reuse: index entries, then ring bytes. Records lie in
   * message order, so the loop stops at the first one that stays. */
  if (last + r->count > t->entries && keep < last + r->count - t->entries + 1)
    keep = last + r->count - t->entries + 1;
  while (keep <= last &&
         atomic_load_explicit(&t->index[keep % t->entries], memory_order_relaxed) + cap <
             tail + r->bytes)
    keep++;
  if (keep != oldest) {
    atomic_store_explicit(&s->oldest, keep, memory_order_relaxed);
    atomic_store_explicit(&s->pub_oldest, keep, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* before any byte below is written */
  }
  /* Step 2: the records and their index entries. */
  if (!r->records) {
    unsigned char header[LXSHM__RECORD_HEADER];
    lxshm__record_header(header, r->hlen + r->len, r->format);
    lxshm__ring_put(&t->ring, at, header, sizeof header);
    if (r->hlen > 0)
      lxshm__ring_put(&t->ring, at + LXSHM__RECORD_HEADER, r->head, r->hlen);
    if (r->len > 0)
      lxshm__ring_put(&t->ring, at + LXSHM__RECORD_HEADER + r->hlen, r->data, r->len);
    atomic_store_explicit(&t->index[(last + 1) % t->entries], at, memory_order_relaxed);
  }
  else {
    const unsigned char *rec = (const unsigned char *)r->data;
    lxshm__ring_put(&t->ring, at, rec, r->len);
    for (m = 1; m <= r->count; m++) {
      uint32_t n;
      unsigned format;
      lxshm__record_parse(rec, &n, &format);
      atomic_store_explicit(&t->index[(last + m) % t->entries], at, memory_order_relaxed);
      at += lxshm__record_size(n);
      rec += lxshm__record_size(n);
    }
  }
  /* Step 3. */
  atomic_store_explicit(&s->pub_last, last + r->count, memory_order_relaxed);
  atomic_store_explicit(&s->oldest, keep, memory_order_relaxed);
  atomic_store_explicit(&s->last, last + r->count, memory_order_release); /* publishes them */
  atomic_store_explicit(&s->tail, tail + r->bytes, memory_order_relaxed);
  *seq = last + r->count;
  return LXSHM_OK;
}

static lxshm_status publish_run(lxshm_topic *t, const run *r, double timeout, uint64_t *seq,
                                lxshm_error *err) {
  lxshm_status st;
  uint64_t last = 0;

  if (r->bytes > t->obj.capacity)
    return lxshm__fail(err, LXSHM_INVALID_SIZE, "%s of %llu bytes cannot fit a topic of %llu",
                       r->count > 1 ? "messages" : "a message", (unsigned long long)r->bytes,
                       (unsigned long long)t->obj.capacity);
  if (r->count > t->entries)
    return lxshm__fail(err, LXSHM_INVALID_SIZE,
                       "%llu messages at once, a topic of %llu bytes "
                       "holds at most %llu",
                       (unsigned long long)r->count, (unsigned long long)t->obj.capacity,
                       (unsigned long long)t->entries);
  st = lxshm__object_lock(&t->obj, t->obj.hdr->lock, lxshm__deadline(timeout), repair_publish, err);
  if (st == LXSHM_TIMEOUT)
    return lxshm__fail(err, st, "publishers' lock still held after %g s", timeout);
  if (st != LXSHM_OK)
    return st;
  st = publish_locked(t, r, &last);
  lxshm__object_unlock(&t->obj, t->obj.hdr->lock);
  if (st != LXSHM_OK)
    return lxshm__fail(err, st, "indices are damaged (last %llu, oldest %llu)",
                       (unsigned long long)lxshm_topic_last(t),
                       (unsigned long long)lxshm_topic_oldest(t));
  lxshm__wake(&t->obj, &t->state->arrived);
  if (seq != NULL)
    *seq = last;
  return LXSHM_OK;
}

lxshm_status lxshm__topic_publish(lxshm_topic *t, const void *head, size_t hlen, const void *data,
                                  size_t len, unsigned format, double timeout, uint64_t *seq,
                                  lxshm_error *err) {
  run r;
  uint64_t bytes = lxshm__record_size(hlen + len); /* what it means once the sum is known whole */
  if (hlen + len < len || hlen + len > UINT32_MAX || bytes > t->obj.capacity)
    return lxshm__fail(err, LXSHM_INVALID_SIZE, "a message of %zu bytes cannot fit a topic of %llu",
                       hlen + len, (unsigned long long)t->obj.capacity);
  memset(&r, 0, sizeof r);
  r.head = head;
  r.hlen = hlen;
  r.data = data;
  r.len = len;
  r.format = format;
  r.bytes = bytes;
  r.count = 1;
  return publish_run(t, &r, timeout, seq, err);
}

lxshm_status lxshm_topic_publish(lxshm_topic *t, const void *data, size_t len, double timeout,
                                 uint64_t *seq, lxshm_error *err) {
  return lxshm__topic_publish(t, NULL, 0, data, len, LXSHM__FORMAT_RAW, timeout, seq, err);
}

lxshm_status lxshm__topic_publish_records(lxshm__object *o, lxshm__records *records,
                                          lxshm_error *err) {
  lxshm_topic *t = (lxshm_topic *)o;
  run r;
  if (records->count == 0) {
    records->seq = lxshm_topic_last(t);
    return LXSHM_OK;
  }
  memset(&r, 0, sizeof r);
  r.data = records->data;
  r.len = records->bytes;
  r.records = 1;
  r.bytes = records->bytes;
  r.count = records->count;
  return publish_run(t, &r, records->timeout, &records->seq, err);
}

/* ---- named subscriptions ---------------------------------------------------------------- */

/* Whether the process that took a name is still running: the same pid, started at the same time
 * (1: a start time that could not be read, on either side, counts as a match). */
static int holder_alive(const lxshm__topic_cursor *c) {
  uint32_t pid = atomic_load_explicit(&c->holder, memory_order_acquire);
  uint64_t then, now;
  if (pid == 0)
    return 0;
  then = atomic_load_explicit(&c->holder_start, memory_order_relaxed);
  now = lxshm__pid_start(pid);
  return now != 0 && (now == then || now == 1 || then == 1);
}

static lxshm__topic_cursor *find_cursor(lxshm_topic *t, const char *name, size_t len) {
  unsigned i;
  for (i = 0; i < t->ncursors; i++) {
    lxshm__topic_cursor *c = &t->cursors[i];
    if (atomic_load_explicit(&c->used, memory_order_relaxed) && c->name_len == len &&
        memcmp(c->name, name, len) == 0)
      return c;
  }
  return NULL;
}

static lxshm_status lock_cursors(lxshm_topic *t, lxshm_error *err) {
  lxshm_status st = lxshm__object_lock(&t->obj, t->state->cursor_lock,
                                       lxshm__clock_ns() + CURSOR_PATIENCE_NS, NULL, err);
  if (st == LXSHM_TIMEOUT)
    return lxshm__fail(err, st, "the named subscriptions' lock is held by a stopped process");
  return st;
}

/* Where a subscription from `from` starts. */
static uint64_t start_of(lxshm_topic *t, uint64_t from) {
  if (from == LXSHM_TOPIC_NEW)
    return lxshm_topic_last(t) + 1;
  if (from == LXSHM_TOPIC_OLDEST)
    return lxshm_topic_oldest(t);
  return from;
}

/* Takes the name for sub, under the cursor lock: resumes a known name whose holder is gone, or
 * makes a new one starting at `from`. Fields are written so that a claimer killed halfway
 * leaves either a free entry or a whole one held by a dead process. */
static lxshm_status claim(lxshm_topic *t, lxshm_subscription *sub, const char *name, size_t len,
                          uint64_t from, lxshm_error *err) {
  uint32_t me = lxshm__pid();
  uint64_t born = lxshm__pid_start(me);
  lxshm__topic_cursor *c;
  lxshm_status st;
  unsigned i;

  if ((st = lock_cursors(t, err)) != LXSHM_OK)
    return st;
  c = find_cursor(t, name, len);
  if (c != NULL && holder_alive(c)) {
    uint32_t pid = atomic_load_explicit(&c->holder, memory_order_relaxed);
    lxshm__object_unlock(&t->obj, t->state->cursor_lock);
    return lxshm__fail(err, LXSHM_EXISTS, "subscription %s is held by process %u", sub->name, pid);
  }
  if (c == NULL) {
    for (i = 0; i < t->ncursors && atomic_load_explicit(&t->cursors[i].used, memory_order_relaxed);
         i++)
      ;
    if (i == t->ncursors) {
      lxshm__object_unlock(&t->obj, t->state->cursor_lock);
      return lxshm__fail(err, LXSHM_FULL, "no room for another named subscription (%u taken)",
                         t->ncursors);
    }
    c = &t->cursors[i];
    memset(c->name, 0, sizeof c->name);
    memcpy(c->name, name, len);
    c->name_len = (uint32_t)len;
    atomic_store_explicit(&c->next, start_of(t, from), memory_order_relaxed);
  }
  atomic_store_explicit(&c->holder_start, born, memory_order_relaxed);
  atomic_store_explicit(&c->holder, me, memory_order_release);
  atomic_store_explicit(&c->used, 1, memory_order_release); /* last: whole once used */
  sub->next = atomic_load_explicit(&c->next, memory_order_relaxed);
  sub->cursor = c;
  lxshm__object_unlock(&t->obj, t->state->cursor_lock);
  return LXSHM_OK;
}

lxshm_status lxshm__topic_subscribe(lxshm_topic *t, const char *name, size_t len, uint64_t from,
                                    lxshm_subscription **out, lxshm_error *err) {
  lxshm_subscription *sub;
  lxshm_status st;

  *out = NULL;
  if (name != NULL && (st = lxshm__check_name(name, len, "subscription ", err)) != LXSHM_OK)
    return st;
  if (name != NULL && t->obj.readonly)
    return lxshm__fail(err, LXSHM_PERMISSION,
                       "opened read-only: named subscriptions write their "
                       "position");
  if ((sub = calloc(1, sizeof *sub)) == NULL)
    return lxshm__fail(err, LXSHM_SYSTEM, "out of memory");
  sub->topic = t;
  if (name == NULL) {
    sub->next = start_of(t, from);
    *out = sub;
    return LXSHM_OK;
  }
  memcpy(sub->name, name, len);
  if ((st = claim(t, sub, name, len, from, err)) != LXSHM_OK) {
    free(sub);
    return st;
  }
  *out = sub;
  return LXSHM_OK;
}

lxshm_status lxshm_topic_subscribe(lxshm_topic *t, const char *cursor, uint64_t from,
                                   lxshm_subscription **out, lxshm_error *err) {
  return lxshm__topic_subscribe(t, cursor, lxshm__name_len(cursor), from, out, err);
}

lxshm_status lxshm__topic_unsubscribe(lxshm_topic *t, const char *name, size_t len,
                                      lxshm_error *err) {
  lxshm__topic_cursor *c;
  lxshm_status st;

  if ((st = lxshm__check_name(name, len, "subscription ", err)) != LXSHM_OK)
    return st;
  if ((st = lock_cursors(t, err)) != LXSHM_OK)
    return st;
  c = find_cursor(t, name, len);
  if (c == NULL)
    st = lxshm__fail(err, LXSHM_NOT_FOUND, "no subscription named %.*s", (int)len, name);
  else if (holder_alive(c))
    st = lxshm__fail(err, LXSHM_EXISTS, "subscription %.*s is held by process %u", (int)len, name,
                     atomic_load_explicit(&c->holder, memory_order_relaxed));
  else {
    atomic_store_explicit(&c->used, 0, memory_order_relaxed); /* first: free even if killed */
    atomic_store_explicit(&c->holder, 0, memory_order_relaxed);
    atomic_store_explicit(&c->next, 0, memory_order_relaxed);
    c->name_len = 0;
  }
  lxshm__object_unlock(&t->obj, t->state->cursor_lock);
  return st;
}

lxshm_status lxshm_topic_unsubscribe(lxshm_topic *t, const char *cursor, lxshm_error *err) {
  size_t len = 0;
  if (cursor == NULL)
    return lxshm__fail(err, LXSHM_INVALID, "no subscription name");
  while (len <= LXSHM_NAME_MAX && cursor[len] != '\0')
    len++;
  return lxshm__topic_unsubscribe(t, cursor, len, err);
}

void lxshm_subscription_close(lxshm_subscription *sub) {
  if (sub == NULL)
    return;
  if (sub->cursor != NULL) {
    /* Lets go without the lock: only the holder clears its own pid, and a claimer that reads
     * either value decides rightly. Its position was stored with every message returned. */
    uint32_t me = lxshm__pid();
    atomic_compare_exchange_strong_explicit(&sub->cursor->holder, &me, 0, memory_order_release,
                                            memory_order_relaxed);
  }
  free(sub);
}

void lxshm__subscription_forget(lxshm_subscription *sub) {
  free(sub);
}

uint64_t lxshm_subscription_position(const lxshm_subscription *sub) {
  return sub->next;
}

const char *lxshm__subscription_name(const lxshm_subscription *sub) {
  return sub->cursor != NULL ? sub->name : NULL;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* Skips sub to message `to`, which overtook it: the ones between are lost. */
static void skip_to(lxshm_subscription *sub, uint64_t to) {
  sub->lost += to - sub->next;
  sub->next = to;
  sub->at_known = 0;
}

/* Moves sub past messages first .. first + count - 1, returned to the caller. */
static void advance(lxshm_subscription *sub, uint64_t first, uint64_t count) {
  sub->next = first + count;
  if (sub->cursor != NULL)
    atomic_store_explicit(&sub->cursor->next, sub->next, memory_order_relaxed);
}

static int has_next(lxshm__object *o, void *ctx) {
  return atomic_load_explicit(&o->hdr->u.topic.last, memory_order_acquire) >=
         ((lxshm_subscription *)ctx)->next;
}

#define NONE ((lxshm_status)101) /* internal: no message yet */

void (*lxshm__topic_take_hook)(void);

/* Removes the first `drop` of the records in buf[0..used-1] (copies that may be torn), moving
 * the rest to its start; returns the bytes that remain. */
static size_t drop_records(char *buf, size_t used, uint64_t drop) {
  size_t off = 0;
  while (drop-- > 0 && off < used) {
    uint32_t n;
    unsigned format;
    lxshm__record_parse((const unsigned char *)buf + off, &n, &format);
    off += (size_t)lxshm__record_size(n);
  }
  memmove(buf, buf + off, used - off);
  return used - off;
}

/* One lock-free attempt to copy sub's next messages as t asks. Returns OK, NONE (nothing to
 * take yet), INVALID_SIZE (the first message does not fit: t->len says what it needs), or
 * CORRUPT (the first message's record is damaged: it is skipped). */
static lxshm_status take_once(lxshm_subscription *sub, lxshm__take *t) {
  lxshm_topic *tp = sub->topic;
  lxshm__topic_state *s = tp->state;
  uint64_t cap = tp->obj.capacity;

  for (;;) {
    uint64_t first = sub->next, seq = first, last, oldest, at, slot;
    size_t used = 0, need = 0;
    int bad = 0, follow;

    last = atomic_load_explicit(&s->last, memory_order_acquire);
    if (first > last)
      return NONE;
    oldest = atomic_load_explicit(&s->oldest, memory_order_acquire);
    if (first < oldest) {
      skip_to(sub, oldest);
      continue;
    }
    /* Follows the records from where the last copy ended only in the newer half of what is
     * held, where a publish is least likely to drop the first of them: a followed copy that a
     * publish overtook starts again (below); further behind, each record's place comes from the
     * index, as at the start. */
    follow = sub->at_known && first - oldest >= last - first;
    at = follow ? sub->at : 0;
    slot = follow ? 0 : seq % tp->entries; /* seq's index entry, counted along; a division */
    if (lxshm__topic_take_hook != NULL)
      lxshm__topic_take_hook();
    while (seq <= last && seq - first < t->max) {
      uint64_t pos = follow ? at : atomic_load_explicit(&tp->index[slot], memory_order_relaxed);
      uint64_t rec;
      unsigned char header[LXSHM__RECORD_HEADER];
      char *dst = (char *)t->buf + used;
      size_t body;
      uint32_t n;
      unsigned format;
      lxshm__ring_get(&tp->ring, pos, header, sizeof header);
      lxshm__record_parse(header, &n, &format);
      rec = lxshm__record_size(n);
      if (rec > cap || format > LXSHM__FORMAT_MSGPACK) {
        bad = 1;
        break;
      }
      need = t->whole ? (size_t)rec : n;
      if (need > t->cap - used)
        break;
      body = t->whole ? need - sizeof header : n;
      if (t->whole) { /* the header as parsed: drop_records and the binding walk these */
        memcpy(dst, header, sizeof header);
        dst += sizeof header;
      }
      if (body > 0)
        lxshm__ring_get(&tp->ring, pos + sizeof header, dst, body);
      used += need;
      t->format = format;
      seq++;
      slot = slot + 1 < tp->entries ? slot + 1 : 0;
      at = pos + rec;
      if (!t->whole)
        break;
    }
    /* Whatever was copied is whole if no publish has raised oldest past it since. Followed
     * records are whole only if none before them was overtaken: their places came from the
     * headers before them. The copy is then dropped, and made again through the index. */
    atomic_thread_fence(memory_order_acquire);
    oldest = atomic_load_explicit(&s->oldest, memory_order_relaxed);
    if (first < oldest) {
      if (follow || oldest >= seq) { /* all of it may be torn, and what stopped the copy too */
        skip_to(sub, oldest);
        continue;
      }
      used = t->whole ? drop_records((char *)t->buf, used, oldest - first) : used;
      skip_to(sub, oldest);
      first = oldest;
    }
    if (seq == first) { /* nothing copied: the first message is damaged, or too large */
      if (bad) {
        advance(sub, first, 1); /* reported as damaged, not as lost */
        sub->at_known = 0;
        return LXSHM_CORRUPT;
      }
      t->len = need;
      return LXSHM_INVALID_SIZE;
    }
    sub->at = at; /* where the message after the last copied starts */
    sub->at_known = 1;
    t->len = used;
    t->count = seq - first;
    t->first = first;
    t->lost = sub->lost;
    sub->lost = 0;
    advance(sub, first, t->count);
    return LXSHM_OK;
  }
}

lxshm_status lxshm__subscription_take(lxshm_subscription *sub, lxshm__take *t, lxshm_error *err) {
  lxshm_topic *tp = sub->topic;
  uint64_t deadline = 0; /* computed once there is something to wait for: reading the clock
                            costs as much as taking a message */
  lxshm_status st;

  t->max = t->whole && t->max > 0 ? t->max : 1;
  for (;;) {
    st = take_once(sub, t);
    if (st == LXSHM_INVALID_SIZE)
      return lxshm__fail(err, st, "message of %zu bytes does not fit a buffer of %zu", t->len,
                         t->cap);
    if (st == LXSHM_CORRUPT)
      return lxshm__fail(err, st, "message %llu is damaged", (unsigned long long)(sub->next - 1));
    if (st != NONE)
      return st;
    if (deadline == 0)
      deadline = lxshm__deadline(t->timeout);
    st = lxshm__wait_until(&tp->obj, &tp->state->arrived, has_next, sub, deadline, t->intr, err);
    if (st == LXSHM_TIMEOUT && t->timeout == 0)
      return lxshm__fail(err, st, "no new message");
    if (st == LXSHM_TIMEOUT)
      return lxshm__fail(err, st, "no new message after %g s", t->timeout);
    if (st != LXSHM_OK)
      return st;
  }
}

lxshm_status lxshm_subscription_next(lxshm_subscription *sub, void *buf, size_t cap, size_t *len,
                                     uint64_t *seq, uint64_t *lost, double timeout,
                                     lxshm_error *err) {
  lxshm__take t = {0};
  lxshm_status st;
  t.buf = buf;
  t.cap = cap;
  t.timeout = timeout;
  st = lxshm__subscription_take(sub, &t, err);
  if (st == LXSHM_OK || st == LXSHM_INVALID_SIZE)
    *len = t.len;
  if (st == LXSHM_OK && seq != NULL)
    *seq = t.first;
  if (st == LXSHM_OK && lost != NULL)
    *lost = t.lost;
  return st;
}

size_t lxshm__subscription_front_length(const lxshm_subscription *sub) {
  lxshm_topic *t = sub->topic;
  unsigned char header[LXSHM__RECORD_HEADER];
  uint64_t pos;
  uint32_t len;
  unsigned format;
  if (sub->next > lxshm_topic_last(t) || sub->next < lxshm_topic_oldest(t))
    return 0;
  pos = atomic_load_explicit(&t->index[sub->next % t->entries], memory_order_relaxed);
  lxshm__ring_get(&t->ring, pos, header, sizeof header); /* a hint: a publish may change it */
  lxshm__record_parse(header, &len, &format);
  return len <= t->obj.capacity ? len : 0;
}

/* ---- introspection ------------------------------------------------------------------------ */

static void stat(lxshm__object *o, lxshm__figures *out) {
  lxshm_topic *t = (lxshm_topic *)o;
  lxshm__topic_stat *st = &out->topic;
  unsigned i;
  st->size = t->obj.capacity;
  st->oldest = lxshm_topic_oldest(t); /* first: oldest <= last + 1 then holds for the pair */
  st->last = lxshm_topic_last(t);
  st->subscribers = 0;
  for (i = 0; i < t->ncursors; i++)
    st->subscribers += atomic_load_explicit(&t->cursors[i].used, memory_order_relaxed) != 0;
  st->waiters = lxshm__waiter_count(&t->obj, &t->state->arrived);
}

const lxshm__kind lxshm__topic_kind = {
    LXSHM__KIND_TOPIC,  "topic", "open_topic", sizeof(lxshm_topic), plan, init, bind,
    LXSHM__TOPIC_NAMES, stat};

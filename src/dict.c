/* dict.c — dictionaries: many keys in one named object, each with a value, a version and an
 * optional expiry, for any number of processes; eviction, expiry, waiting on a key, and repair
 * after a process died at any instant. Built on object.c and wait.c; makes no OS call itself and
 * knows nothing of Lua (values are bytes with a format tag; incr reads and writes MessagePack
 * numbers through number.c). doc/ARCHITECTURE.md, "Dictionaries", gives the reasons behind
 * what follows.
 *
 * Layout. After the header: the allocator's control block, S stripe control blocks (S a power
 * of two, 1 to 64, by size), then `capacity` bytes: S bucket arrays (u32 chain heads), a bitmap
 * of reference bits (one per arena unit) and the arena, where every entry is one block: a
 * 32-byte header (lxshm__dict_entry), the key, the value. A key's 64-bit hash picks its stripe
 * (top bits) and its bucket (low bits); a bucket's entries are chained through `next`.
 *
 * Locks. Each stripe has a robust lock guarding its buckets, its counters and its entries (all
 * but their `block` word); the header's lock guards the allocator: a TLSF allocator (two-level
 * segregated free lists, boundary tags, immediate coalescing) over the whole arena, so no stripe
 * strands memory another could use. A process takes at most one stripe lock while waiting for
 * one, then possibly the allocator's, never the reverse; other stripes are only tried (update).
 *
 * Readers take no lock. A stripe's `seq` is odd while its holder changes what readers see; a
 * reader retries if it was odd or moved during its read, and validates every position it
 * follows, so that a block freed and reused meanwhile is never trusted. A get sets the entry's
 * reference bit only when it is clear: on a hot key, one write per sweep of the CLOCK hand.
 *
 * Crash safety comes from one mechanism: undo journals. Before a lock holder writes a word (or
 * bytes) that others can reach, it appends the old bytes to the journal of that lock; the commit
 * empties it. A process that takes a lock its owner died holding undoes the records in reverse
 * order. Fresh blocks need no records: nothing reaches them until they are linked. The two
 * locks of a change meet in the stripe journal's `alloc` and `pending`: a block is allocated and
 * recorded there in one allocator transaction, and freed and forgotten there in another, so an
 * undone change frees its new block and a committed one frees the block it replaced, exactly
 * once. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "wait.h"

struct lxshm_dict {
  lxshm__object obj;
  lxshm__dict_alloc *alloc;  /* the allocator's control block */
  unsigned char *stripes;    /* stripe 0's control block */
  _Atomic uint32_t *buckets; /* stripe s's buckets start at s << bucket_bits */
  _Atomic uint64_t *bitmap;  /* reference bits */
  unsigned char *arena;      /* unit 0 */
  uint64_t seed;             /* hash seed */
  uint32_t nstripes;         /* S */
  uint32_t stripe_bits;      /* log2 S */
  uint32_t bucket_bits;      /* log2 of the buckets per stripe */
  uint32_t units;            /* arena units, sentinels included */
  uint32_t locking;          /* the stripe whose lock is being taken: repair_stripe's stripe */
};

void (*lxshm__dict_step_hook)(void);
#define STEP()                         \
  do {                                 \
    if (lxshm__dict_step_hook != NULL) \
      lxshm__dict_step_hook();         \
  } while (0)

#define UNIT LXSHM__DICT_UNIT
#define ENTRY_HEADER ((uint32_t)sizeof(lxshm__dict_entry))
#define USED 1u      /* block word: this block is in use */
#define PREV_USED 2u /* block word: the block before is in use */
#define NO_EXPIRY UINT64_MAX
#define INPLACE_MAX 512u /* values up to this size may be rewritten in place (journal room) */
#define MIN_SIZE ((uint64_t)16 << 10)
#define SIZE_STEP ((uint64_t)4 << 10)
#define BYTES_PER_STRIPE ((uint64_t)64 << 10) /* a stripe per 64 KiB, up to 64 of them */
#define BYTES_PER_BUCKET 128u                 /* a chain head per 128 bytes of capacity */
#define SPIN_TRIES 64  /* a reader's tries while a writer is at work, before it backs off */
#define LOCK_TRIES 256 /* ... and before it takes the stripe's lock itself */
#define READONLY_PATIENCE_NS 1000000000u /* a read-only reader's patience with a writer */

#define SHAPE(vlen, klen, ktype, fmt) \
  ((uint64_t)(vlen) << 32 | (uint64_t)(klen) << 16 | (uint64_t)(ktype) << 8 | (uint64_t)(fmt))
#define SH_VLEN(s) ((uint32_t)((s) >> 32))
#define SH_KLEN(s) ((uint32_t)((s) >> 16) & 0xffffu)
#define SH_KTYPE(s) ((unsigned)((s) >> 8) & 0xffu)
#define SH_FMT(s) ((unsigned)(s)&0xffu)

/* Internal outcomes beside the public statuses. */
#define NEED_ROOM ((lxshm_status)101) /* no block of the size wanted: make room, then retry */
#define RETRY ((lxshm_status)102)     /* a lock-free read saw an inconsistency */
#define BUSY ((lxshm_status)103)      /* a stripe tried was locked by someone else */

/* ---- geometry --------------------------------------------------------------------------- */

static uint32_t log2u(uint64_t x) {
  uint32_t n = 0;
  while (x > 1) {
    x >>= 1;
    n++;
  }
  return n;
}

static uint64_t bitmap_bytes(uint64_t units) {
  return (units + 127) / 128 * 16; /* u64 words, in whole 16-byte steps (the arena follows) */
}

/* The geometry of `capacity` bytes (already rounded): stripes, buckets, arena units. */
static void geometry(uint64_t capacity, uint32_t *stripes, uint32_t *bucket_bits, uint32_t *units) {
  uint64_t s = 1, b = 4, rest, n;
  while (s < LXSHM__DICT_STRIPES_MAX && s * 2 * BYTES_PER_STRIPE <= capacity)
    s *= 2;
  while (s * b * 2 * BYTES_PER_BUCKET <= capacity)
    b *= 2;
  rest = capacity - s * b * 4;
  n = rest * 8 / 129; /* 16 bytes and one bit per unit */
  while (n * UNIT + bitmap_bytes(n) > rest)
    n--;
  *stripes = (uint32_t)s;
  *bucket_bits = log2u(b);
  *units = (uint32_t)n;
}

static uint64_t fixed_bytes(uint32_t stripes) {
  return LXSHM__HEADER_SIZE + sizeof(lxshm__dict_alloc) + stripes * sizeof(lxshm__dict_stripe);
}

/* Rounds the capacity to whole 4 KiB, at least 16 KiB, and derives the geometry. */
static lxshm_status plan(lxshm__header *h, lxshm_error *err) {
  uint64_t c = (h->capacity + SIZE_STEP - 1) / SIZE_STEP * SIZE_STEP;
  uint32_t stripes, bits, units;
  if (c < MIN_SIZE)
    c = MIN_SIZE;
  if (c > LXSHM_DICT_SIZE_MAX)
    return lxshm__fail(err, LXSHM_INVALID_SIZE, "a dictionary holds at most %llu bytes",
                       (unsigned long long)LXSHM_DICT_SIZE_MAX);
  geometry(c, &stripes, &bits, &units);
  h->capacity = c;
  h->map_size = fixed_bytes(stripes) + c;
  h->slot_stride = 0;
  memset(h->params, 0, sizeof h->params);
  h->params[0] = stripes;
  h->params[1] = bits;
  h->params[2] = units;
  return LXSHM_OK;
}

static lxshm__dict_stripe *stripe_at(const lxshm_dict *d, uint32_t s) {
  return (lxshm__dict_stripe *)(d->stripes + (size_t)s * sizeof(lxshm__dict_stripe));
}

static void bind(lxshm__object *o) {
  lxshm_dict *d = (lxshm_dict *)o;
  unsigned char *base = o->map.base;
  uint64_t buckets;
  d->nstripes = o->hdr->params[0];
  d->stripe_bits = log2u(d->nstripes);
  d->bucket_bits = o->hdr->params[1];
  d->units = o->hdr->params[2];
  d->seed = o->hdr->u.dict.seed;
  d->alloc = (lxshm__dict_alloc *)(base + LXSHM__HEADER_SIZE);
  d->stripes = base + LXSHM__HEADER_SIZE + sizeof(lxshm__dict_alloc);
  d->buckets = (_Atomic uint32_t *)(base + fixed_bytes(d->nstripes));
  buckets = (uint64_t)d->nstripes << d->bucket_bits;
  d->bitmap = (_Atomic uint64_t *)((unsigned char *)d->buckets + buckets * 4);
  d->arena = (unsigned char *)d->bitmap + bitmap_bytes(d->units);
}

/* ---- the arena's words ------------------------------------------------------------------ */

static _Atomic uint32_t *word_at(const lxshm_dict *d, uint32_t unit, uint32_t byte) {
  return (_Atomic uint32_t *)(d->arena + (size_t)unit * UNIT + byte);
}
#define BLOCK(d, u) word_at((d), (u), 0)
#define FREE_NEXT(d, u) word_at((d), (u), 4)
#define FREE_PREV(d, u) word_at((d), (u), 8)

static lxshm__dict_entry *entry_at(const lxshm_dict *d, uint32_t unit) {
  return (lxshm__dict_entry *)(d->arena + (size_t)unit * UNIT);
}

static uint32_t load32(_Atomic uint32_t *p) {
  return atomic_load_explicit(p, memory_order_relaxed);
}

static uint64_t load64(_Atomic uint64_t *p) {
  return atomic_load_explicit(p, memory_order_relaxed);
}

/* Whether u can be the first unit of a real block (not a sentinel). */
static int real_unit(const lxshm_dict *d, uint32_t u) {
  return u >= 1 && u < d->units - 1;
}

/* The entry at unit u and its shape, if the bytes there can be one: a used block lying whole in
 * the arena, large enough for its key and value. NULL otherwise (damaged, or read mid-change). */
static lxshm__dict_entry *entry_ok(const lxshm_dict *d, uint32_t u, uint64_t *shape) {
  lxshm__dict_entry *e;
  uint32_t w, size;
  uint64_t sh;
  if (!real_unit(d, u))
    return NULL;
  e = entry_at(d, u);
  w = load32(&e->block);
  size = w >> 2;
  if (!(w & USED) || size < 2 || size > d->units - 1 - u)
    return NULL;
  sh = load64(&e->shape);
  if ((uint64_t)ENTRY_HEADER + SH_KLEN(sh) + SH_VLEN(sh) > (uint64_t)size * UNIT)
    return NULL;
  *shape = sh;
  return e;
}

static const unsigned char *key_bytes(const lxshm__dict_entry *e) {
  return (const unsigned char *)(e + 1);
}

static unsigned char *value_bytes(lxshm__dict_entry *e, uint64_t shape) {
  return (unsigned char *)(e + 1) + SH_KLEN(shape);
}

static int same_key(const lxshm__dict_entry *e, uint64_t shape, const lxshm__dict_key *k) {
  return SH_KLEN(shape) == k->len && SH_KTYPE(shape) == k->type &&
         memcmp(key_bytes(e), k->data, k->len) == 0;
}

/* ---- hashing ------------------------------------------------------------------------------ */

static uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

static uint64_t hash_bytes(uint64_t seed, unsigned type, const unsigned char *p, size_t n) {
  uint64_t h = seed ^ ((uint64_t)type << 56) ^ (n * 0x9e3779b97f4a7c15ull);
  while (n >= 8) {
    uint64_t c;
    memcpy(&c, p, 8);
    h = (h ^ mix(c)) * 0x9e3779b97f4a7c15ull;
    h = (h << 29) | (h >> 35);
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t c = 0;
    memcpy(&c, p, n);
    h = (h ^ mix(c ^ n)) * 0x9e3779b97f4a7c15ull;
  }
  return mix(h);
}

static uint64_t hash_key(const lxshm_dict *d, const lxshm__dict_key *k) {
  return hash_bytes(d->seed, k->type, (const unsigned char *)k->data, k->len);
}

static uint32_t stripe_of(const lxshm_dict *d, uint64_t h) {
  return d->stripe_bits == 0 ? 0 : (uint32_t)(h >> (64 - d->stripe_bits));
}

static _Atomic uint32_t *bucket_of(const lxshm_dict *d, uint32_t s, uint64_t h) {
  return &d->buckets[((size_t)s << d->bucket_bits) + (h & (((uint64_t)1 << d->bucket_bits) - 1))];
}

/* ---- reference bits (CLOCK) ------------------------------------------------------------- */

static void ref_mark(lxshm_dict *d, uint32_t u) {
  _Atomic uint64_t *w = &d->bitmap[u / 64];
  uint64_t bit = (uint64_t)1 << (u % 64);
  if (!(load64(w) & bit) &&
      !d->obj.readonly) /* a read-only reader leaves no trace */ /* written only when clear: a hot
                                                                    key costs one write per sweep */
    atomic_fetch_or_explicit(w, bit, memory_order_relaxed);
}

static void ref_clear(lxshm_dict *d, uint32_t u) {
  _Atomic uint64_t *w = &d->bitmap[u / 64];
  uint64_t bit = (uint64_t)1 << (u % 64);
  if (load64(w) & bit)
    atomic_fetch_and_explicit(w, ~bit, memory_order_relaxed);
}

/* ---- journals ----------------------------------------------------------------------------- */

typedef struct jref {
  lxshm__dict_journal *j;
  uint32_t cap; /* bytes of records it has room for */
} jref;

static jref stripe_journal(lxshm__dict_stripe *st) {
  jref r;
  r.j = &st->journal;
  r.cap = LXSHM__DICT_JOURNAL;
  return r;
}

static jref alloc_journal(lxshm_dict *d) {
  jref r;
  r.j = &d->alloc->journal;
  r.cap = LXSHM__DICT_ALLOC_JOURNAL;
  return r;
}

static unsigned char *records(lxshm__dict_journal *j) {
  return (unsigned char *)(j + 1); /* both kinds of control block put them right after */
}

/* Appends a record of the len bytes at p, then makes sure it is counted before the caller
 * overwrites them. The bounds hold by construction: no change records more than its journal
 * holds (INPLACE_MAX bounds the largest record). */
static void journal(lxshm_dict *d, jref r, const void *p, size_t len) {
  uint32_t used = atomic_load_explicit(&r.j->used, memory_order_relaxed);
  size_t padded = (len + 7) & ~(size_t)7;
  uint64_t head = (uint64_t)((const unsigned char *)p - d->obj.map.base) << 16 | len;
  unsigned char *rec = records(r.j) + used;
  assert(len <= 0xffff && used + 8 + padded <= r.cap);
  memcpy(rec, &head, 8);
  memcpy(rec + 8, p, len);
  atomic_store_explicit(&r.j->used, used + 8 + (uint32_t)padded, memory_order_release);
  atomic_thread_fence(memory_order_release); /* the record is counted before the write */
  STEP();
}

static void put32(lxshm_dict *d, jref r, _Atomic uint32_t *p, uint32_t v) {
  journal(d, r, (const void *)p, 4);
  atomic_store_explicit(p, v, memory_order_relaxed);
}

static void put64(lxshm_dict *d, jref r, _Atomic uint64_t *p, uint64_t v) {
  journal(d, r, (const void *)p, 8);
  atomic_store_explicit(p, v, memory_order_relaxed);
}

static void put_bytes(lxshm_dict *d, jref r, void *p, const void *src, size_t n) {
  if (n == 0)
    return;
  journal(d, r, p, n);
  memcpy(p, src, n);
}

/* Whether an undo record may write len bytes at offset pos of the mapping: only where changes
 * are journaled — the allocator's fields, a stripe's counters and journal words, the buckets and
 * the arena — and never a lock, a waitlist, a journal's records or the header, whatever a
 * damaged record says. (A lock rewritten while held would stay on its holder's list of robust
 * locks after the mapping is gone, for the next lock taken to write through.) */
static int journaled(const lxshm_dict *d, uint64_t pos, uint64_t len) {
  uint64_t alloc = (uint64_t)((unsigned char *)d->alloc - d->obj.map.base);
  uint64_t stripes = (uint64_t)(d->stripes - d->obj.map.base);
  uint64_t buckets = (uint64_t)((unsigned char *)d->buckets - d->obj.map.base);
  uint64_t one = sizeof(lxshm__dict_stripe), rel, end;
  if (pos >= buckets)
    return len <= d->obj.map.size - pos;
  if (pos >= alloc && pos + len <= alloc + offsetof(lxshm__dict_alloc, journal))
    return 1;
  if (pos < stripes || pos >= stripes + d->nstripes * one)
    return 0;
  rel = (pos - stripes) % one;
  end = rel + len;
  return (rel >= offsetof(lxshm__dict_stripe, count) &&
          end <= offsetof(lxshm__dict_stripe, waiters)) ||
         (rel >= offsetof(lxshm__dict_stripe, journal) &&
          end <= offsetof(lxshm__dict_stripe, records));
}

/* Writes back the old bytes of every record, last first; a record that would write anywhere but
 * where changes are journaled (damaged) ends the list. Idempotent: a repairer that dies
 * repairing leaves the records for the next one. */
static void undo(lxshm_dict *d, jref r) {
  uint32_t at[LXSHM__DICT_ALLOC_JOURNAL / 16];
  uint32_t used = atomic_load_explicit(&r.j->used, memory_order_acquire), off = 0, n = 0;
  unsigned char *rec = records(r.j);
  if (used > r.cap)
    used = r.cap;
  while (off + 8 <= used && n < sizeof at / sizeof at[0]) {
    uint64_t head, pos;
    size_t len, padded;
    memcpy(&head, rec + off, 8);
    len = (size_t)(head & 0xffff);
    pos = head >> 16;
    padded = (len + 7) & ~(size_t)7;
    if (off + 8 + padded > used || pos > d->obj.map.size || !journaled(d, pos, len))
      break;
    at[n++] = off;
    off += 8 + (uint32_t)padded;
  }
  while (n-- > 0) {
    uint64_t head;
    memcpy(&head, rec + at[n], 8);
    memcpy(d->obj.map.base + (head >> 16), rec + at[n] + 8, (size_t)(head & 0xffff));
    STEP();
  }
  atomic_thread_fence(memory_order_release);
}

/* ---- the allocator (TLSF), under the allocator's lock ------------------------------------ */

static uint32_t msb32(uint32_t x) {
#if defined(__GNUC__)
  return 31u - (uint32_t)__builtin_clz(x);
#else
  uint32_t n = 0;
  while (x >>= 1)
    n++;
  return n;
#endif
}

static uint32_t lsb32(uint32_t x) {
#if defined(__GNUC__)
  return (uint32_t)__builtin_ctz(x);
#else
  uint32_t n = 0;
  while (!(x & 1)) {
    x >>= 1;
    n++;
  }
  return n;
#endif
}

/* The list (f, s) of blocks of `size` units: sizes below 16 have a list each; above, each power
 * of two is split in 16 lists. */
static void size_class(uint32_t size, uint32_t *f, uint32_t *s) {
  if (size < LXSHM__DICT_SL) {
    *f = 0;
    *s = size;
  }
  else {
    uint32_t m = msb32(size);
    *f = m - 3;
    *s = (size >> (m - 4)) - LXSHM__DICT_SL;
  }
}

static _Atomic uint32_t *footer(const lxshm_dict *d, uint32_t u, uint32_t size) {
  return word_at(d, u + size - 1, UNIT - 4);
}

static void list_insert(lxshm_dict *d, uint32_t u, uint32_t size) {
  lxshm__dict_alloc *a = d->alloc;
  jref r = alloc_journal(d);
  uint32_t f, s, head, sl, fl;
  size_class(size, &f, &s);
  head = load32(&a->heads[f][s]);
  put32(d, r, FREE_NEXT(d, u), head);
  put32(d, r, FREE_PREV(d, u), 0);
  if (real_unit(d, head))
    put32(d, r, FREE_PREV(d, head), u);
  put32(d, r, &a->heads[f][s], u);
  sl = load32(&a->sl_bitmap[f]);
  if (!(sl & (1u << s)))
    put32(d, r, &a->sl_bitmap[f], sl | 1u << s);
  fl = load32(&a->fl_bitmap);
  if (!(fl & (1u << f)))
    put32(d, r, &a->fl_bitmap, fl | 1u << f);
}

static void list_remove(lxshm_dict *d, uint32_t u, uint32_t size) {
  lxshm__dict_alloc *a = d->alloc;
  jref r = alloc_journal(d);
  uint32_t f, s, next = load32(FREE_NEXT(d, u)), prev = load32(FREE_PREV(d, u));
  size_class(size, &f, &s);
  if (real_unit(d, prev))
    put32(d, r, FREE_NEXT(d, prev), next);
  else
    put32(d, r, &a->heads[f][s], next);
  if (real_unit(d, next))
    put32(d, r, FREE_PREV(d, next), prev);
  if (load32(&a->heads[f][s]) == 0) {
    uint32_t sl = load32(&a->sl_bitmap[f]) & ~(1u << s);
    put32(d, r, &a->sl_bitmap[f], sl);
    if (sl == 0)
      put32(d, r, &a->fl_bitmap, load32(&a->fl_bitmap) & ~(1u << f));
  }
}

static uint32_t block_size(const lxshm_dict *d, uint32_t u) {
  return load32(BLOCK(d, u)) >> 2;
}

/* The size of the block at unit u if it lies whole in the arena, as its header says, else 0:
 * only such a block is handed out, freed or merged (a damaged size would have the tags written
 * past the arena). */
static uint32_t whole_size(const lxshm_dict *d, uint32_t u) {
  uint32_t size;
  if (!real_unit(d, u))
    return 0;
  size = block_size(d, u);
  return size >= 1 && size <= d->units - 1 - u ? size : 0;
}

/* The allocator's bitmaps as they are read to pick a list: only the bits of lists that exist, so
 * that damaged bitmaps cannot index past heads[][] (a damaged list is found by check()). */
static uint32_t fl_bits(lxshm__dict_alloc *a) {
  return load32(&a->fl_bitmap) & ((1u << LXSHM__DICT_FL) - 1);
}

static uint32_t sl_bits(lxshm__dict_alloc *a, uint32_t f) {
  return load32(&a->sl_bitmap[f]) & ((1u << LXSHM__DICT_SL) - 1);
}

/* A free block of at least n units, or 0. First a list whose every block fits (the classes
 * above n's), then n's own list, scanned: any free block that fits is found, so free_space()
 * can promise what it reports. */
static uint32_t find_block(lxshm_dict *d, uint32_t n) {
  lxshm__dict_alloc *a = d->alloc;
  uint32_t want = n, f, s, sl = 0, fl, u, steps;
  if (n >= LXSHM__DICT_SL)
    want = n + (1u << (msb32(n) - 4)) - 1; /* up to the next class: all of its blocks fit */
  if (want < (1u << 30)) {
    size_class(want, &f, &s);
    sl = sl_bits(a, f) & (~0u << s);
    if (sl == 0) {
      fl = fl_bits(a) & (~0u << (f + 1));
      if (fl != 0) {
        f = lsb32(fl);
        sl = sl_bits(a, f);
      }
    }
    if (sl != 0) {
      u = load32(&a->heads[f][lsb32(sl)]);
      if (whole_size(d, u) >= n)
        return u;
    }
  }
  size_class(n, &f, &s);
  u = load32(&a->heads[f][s]);
  for (steps = 0; real_unit(d, u) && steps < d->units; steps++) {
    if (whole_size(d, u) >= n)
      return u;
    u = load32(FREE_NEXT(d, u));
  }
  return 0;
}

/* Allocates a block of n units (n >= 2); returns its unit, or 0 when none is free. */
static uint32_t block_alloc(lxshm_dict *d, uint32_t n) {
  lxshm__dict_alloc *a = d->alloc;
  jref r = alloc_journal(d);
  uint32_t u = find_block(d, n), size, prev;
  if (u == 0)
    return 0;
  size = block_size(d, u);
  prev = load32(BLOCK(d, u)) & PREV_USED;
  list_remove(d, u, size);
  if (size > n) { /* split: the rest stays free */
    uint32_t rest = u + n, rsize = size - n;
    put32(d, r, BLOCK(d, rest), rsize << 2 | PREV_USED);
    put32(d, r, footer(d, rest, rsize), rsize);
    list_insert(d, rest, rsize);
  }
  else {
    uint32_t next = u + size;
    put32(d, r, BLOCK(d, next), load32(BLOCK(d, next)) | PREV_USED);
  }
  put32(d, r, BLOCK(d, u), n << 2 | prev | USED);
  put64(d, r, &a->free_units, load64(&a->free_units) - n);
  ref_clear(d, u); /* a new entry starts unreferenced */
  return u;
}

/* Frees the block at u, which lies whole in the arena, merging it with free neighbours that do
 * too; returns the merged block's size. */
static uint32_t block_free(lxshm_dict *d, uint32_t u) {
  lxshm__dict_alloc *a = d->alloc;
  jref r = alloc_journal(d);
  uint32_t w = load32(BLOCK(d, u)), size = w >> 2, freed = size, next, nw;
  next = u + size;
  nw = load32(BLOCK(d, next));
  if (!(nw & USED) && whole_size(d, next) != 0) {
    list_remove(d, next, nw >> 2);
    size += nw >> 2;
    if (load32(&a->hand) == next)
      put32(d, r, &a->hand, u);
  }
  if (!(w & PREV_USED)) {
    uint32_t psize = load32(word_at(d, u - 1, UNIT - 4)), p = u - psize;
    if (psize >= 1 && psize < u && real_unit(d, p) && block_size(d, p) == psize &&
        !(load32(BLOCK(d, p)) & USED)) {
      list_remove(d, p, psize);
      if (load32(&a->hand) == u)
        put32(d, r, &a->hand, p);
      u = p;
      size += psize;
    }
  }
  put32(d, r, BLOCK(d, u), size << 2 | PREV_USED); /* neighbours of a free block are used */
  put32(d, r, footer(d, u, size), size);
  list_insert(d, u, size);
  next = u + size;
  put32(d, r, BLOCK(d, next), load32(BLOCK(d, next)) & ~PREV_USED);
  put64(d, r, &a->free_units, load64(&a->free_units) + freed);
  return size;
}

/* Units of the largest free block (0 if none). */
static uint32_t largest_block(lxshm_dict *d) {
  lxshm__dict_alloc *a = d->alloc;
  uint32_t fl = fl_bits(a), f, sl, u, best = 0, steps;
  if (fl == 0)
    return 0;
  f = msb32(fl);
  if ((sl = sl_bits(a, f)) == 0)
    return 0;
  u = load32(&a->heads[f][msb32(sl)]);
  for (steps = 0; real_unit(d, u) && steps < d->units; steps++) {
    uint32_t size = block_size(d, u);
    if (size > best && size <= d->units)
      best = size;
    u = load32(FREE_NEXT(d, u));
  }
  return best;
}

/* ---- locks and repair ------------------------------------------------------------------ */

/* The allocator's transaction is over: its records no longer apply. */
static void alloc_commit(lxshm_dict *d) {
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&d->alloc->journal.used, 0, memory_order_relaxed);
  STEP();
}

/* After the allocator's owner died, or a transaction was left open: undo it. */
static void settle_alloc(lxshm_dict *d) {
  if (atomic_load_explicit(&d->alloc->journal.used, memory_order_acquire) == 0)
    return;
  undo(d, alloc_journal(d));
  alloc_commit(d);
}

static void repair_alloc(lxshm__object *o) {
  settle_alloc((lxshm_dict *)o);
}

static lxshm_status lock_alloc(lxshm_dict *d, lxshm_error *err) {
  lxshm_status st = lxshm__object_lock(&d->obj, d->obj.hdr->lock, UINT64_MAX, repair_alloc, err);
  if (st == LXSHM_OK)
    settle_alloc(d);
  return st;
}

static void unlock_alloc(lxshm_dict *d) {
  lxshm__object_unlock(&d->obj, d->obj.hdr->lock);
}

/* Clears stripe s's journal inside an allocator transaction (or outside, when none is needed:
 * the fields are cleared before the state, so a death in between leaves "committed, nothing to
 * free"). */
static void clear_journal_locked(lxshm_dict *d, lxshm__dict_journal *j, int in_alloc) {
  if (in_alloc) {
    jref r = alloc_journal(d);
    put32(d, r, &j->used, 0);
    put32(d, r, &j->alloc, 0);
    put32(d, r, &j->pending, 0);
    put32(d, r, &j->state, 0);
    return;
  }
  atomic_store_explicit(&j->used, 0, memory_order_relaxed);
  atomic_store_explicit(&j->alloc, 0, memory_order_relaxed);
  atomic_store_explicit(&j->pending, 0, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&j->state, 0, memory_order_relaxed);
  STEP();
}

/* Frees `unit` (0: none) and clears the stripe's journal in one allocator transaction; the
 * allocator's lock is held. */
static void finish_locked(lxshm_dict *d, lxshm__dict_stripe *st, uint32_t unit) {
  if (whole_size(d, unit) != 0 && (load32(BLOCK(d, unit)) & USED))
    block_free(d, unit); /* a damaged one is left for check() to report */
  clear_journal_locked(d, &st->journal, 1);
  alloc_commit(d);
}

/* The end of a committed change: frees `unit` (0: none), the block it unlinked, and clears the
 * stripe's journal. Without the allocator's lock (damaged), the journal stays busy and the next
 * locker of the stripe tries again. */
static void free_and_clear(lxshm_dict *d, lxshm__dict_stripe *st, uint32_t unit) {
  if (unit == 0) {
    clear_journal_locked(d, &st->journal, 0);
    return;
  }
  if (lock_alloc(d, NULL) != LXSHM_OK)
    return;
  finish_locked(d, st, unit);
  unlock_alloc(d);
}

/* Brings the stripe's journal back to idle: a committed change is finished (the block it
 * replaced freed), an uncommitted one undone (its new block freed). Runs after the stripe's
 * owner died, and whenever its lock is taken with its journal left busy. The allocator's lock
 * comes first: its repair may roll the journal's alloc, pending and state words back, and only
 * then do they say where the change stood. */
static void settle_stripe(lxshm_dict *d, lxshm__dict_stripe *st) {
  lxshm__dict_journal *j = &st->journal;
  uint64_t seq;
  if (lock_alloc(d, NULL) == LXSHM_OK) {
    if (atomic_load_explicit(&j->state, memory_order_acquire) != 0) {
      finish_locked(d, st, load32(&j->pending));
    }
    else if (load32(&j->used) != 0 || load32(&j->alloc) != 0) {
      undo(d, stripe_journal(st)); /* idempotent: a repairer that dies here leaves it to the next */
      finish_locked(d, st, load32(&j->alloc));
    }
    unlock_alloc(d);
  }
  seq = atomic_load_explicit(&st->seq, memory_order_relaxed);
  if (seq & 1) { /* readers may look again */
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&st->seq, seq + 1, memory_order_relaxed);
  }
}

static void repair_stripe(lxshm__object *o) {
  lxshm_dict *d = (lxshm_dict *)o;
  lxshm__dict_stripe *st = stripe_at(d, d->locking);
  settle_stripe(d, st);
  lxshm__wake_all(o, &st->waiters); /* its owner may have died before waking them */
}

static int stripe_busy(lxshm__dict_stripe *st) {
  return atomic_load_explicit(&st->journal.state, memory_order_relaxed) != 0 ||
         atomic_load_explicit(&st->journal.used, memory_order_relaxed) != 0 ||
         atomic_load_explicit(&st->journal.alloc, memory_order_relaxed) != 0 ||
         (atomic_load_explicit(&st->seq, memory_order_relaxed) & 1);
}

/* Takes stripe s's lock (deadline 0: only if free now, else BUSY), repairing what a dead owner
 * left. */
static lxshm_status lock_stripe_until(lxshm_dict *d, uint32_t s, uint64_t deadline,
                                      lxshm_error *err) {
  lxshm__dict_stripe *st = stripe_at(d, s);
  lxshm_status status;
  d->locking = s;
  status = lxshm__object_lock(&d->obj, st->lock, deadline, repair_stripe, err);
  if (status == LXSHM_TIMEOUT && deadline == 0)
    return BUSY;
  if (status == LXSHM_OK && stripe_busy(st))
    settle_stripe(d, st); /* a change left open by a failed allocator lock */
  return status;
}

static lxshm_status lock_stripe(lxshm_dict *d, uint32_t s, lxshm_error *err) {
  return lock_stripe_until(d, s, UINT64_MAX, err);
}

static void unlock_stripe(lxshm_dict *d, uint32_t s) {
  lxshm__object_unlock(&d->obj, stripe_at(d, s)->lock);
}

static void unlock_and_wake(lxshm_dict *d, uint32_t s) {
  unlock_stripe(d, s);
  lxshm__wake(&d->obj, &stripe_at(d, s)->waiters);
}

/* ---- changes within a stripe -------------------------------------------------------------- */

/* Readers are told a change starts: they retry until it ends. */
static void change_begin(lxshm__dict_stripe *st) {
  uint64_t seq = atomic_load_explicit(&st->seq, memory_order_relaxed);
  atomic_store_explicit(&st->seq, seq | 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release); /* odd before any write readers could see */
  STEP();
}

/* Makes the change permanent, lets readers in, and frees `pending` (0: none), the block it
 * unlinked. The commit point is the store of the journal's state. */
static void change_commit(lxshm_dict *d, lxshm__dict_stripe *st, uint32_t pending) {
  lxshm__dict_journal *j = &st->journal;
  uint64_t seq = atomic_load_explicit(&st->seq, memory_order_relaxed);
  if (pending != 0) {
    atomic_store_explicit(&j->pending, pending, memory_order_relaxed);
    STEP();
  }
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&j->state, 1, memory_order_relaxed);
  STEP();
  atomic_thread_fence(memory_order_release); /* the writes before the even seq */
  atomic_store_explicit(&st->seq, (seq | 1) + 1, memory_order_relaxed);
  STEP();
  free_and_clear(d, st, pending);
}

static uint64_t next_version(const lxshm_dict *d, lxshm__dict_stripe *st, uint32_t s) {
  return (load64(&st->clock) + 1) * d->nstripes + s;
}

/* What a lookup found. */
typedef struct found {
  _Atomic uint32_t *link; /* the bucket or the `next` that points to the entry */
  uint32_t unit;          /* the entry's unit; 0: the key is not stored */
  lxshm__dict_entry *e;
  uint64_t shape;
  uint64_t expires;
  int expired; /* stored but expired: absent to every method */
} found;

/* The monotonic clock, read at most once per operation. */
typedef struct clock_cache {
  uint64_t now; /* 0 until read */
} clock_cache;

static uint64_t now_of(clock_cache *c) {
  if (c->now == 0)
    c->now = lxshm__clock_ns();
  return c->now;
}

static int expired(uint64_t expires, clock_cache *c) {
  return expires != 0 && expires <= now_of(c);
}

static lxshm_status damaged(lxshm_dict *d, uint32_t s, lxshm_error *err) {
  (void)d;
  return lxshm__fail(err, LXSHM_CORRUPT, "a chain of stripe %u is damaged", (unsigned)s);
}

/* Finds key in stripe s (whose lock is held). CORRUPT if the chain is damaged. */
static lxshm_status lookup_locked(lxshm_dict *d, uint32_t s, const lxshm__dict_key *k, uint64_t h,
                                  clock_cache *c, found *f, lxshm_error *err) {
  _Atomic uint32_t *link = bucket_of(d, s, h);
  uint32_t u = load32(link), steps = 0;
  memset(f, 0, sizeof *f);
  while (u != 0) {
    uint64_t shape;
    lxshm__dict_entry *e = entry_ok(d, u, &shape);
    if (e == NULL || ++steps > d->units)
      return damaged(d, s, err);
    if (same_key(e, shape, k)) {
      f->link = link;
      f->unit = u;
      f->e = e;
      f->shape = shape;
      f->expires = load64(&e->expires);
      f->expired = expired(f->expires, c);
      return LXSHM_OK;
    }
    link = &e->next;
    u = load32(link);
  }
  f->link = bucket_of(d, s, h);
  return LXSHM_OK;
}

/* Unlinks the entry f found, as a change of its own; `counter` (NULL: none) is the stripe's
 * eviction or expiration count to add one to. */
static void remove_locked(lxshm_dict *d, uint32_t s, const found *f, _Atomic uint64_t *counter) {
  lxshm__dict_stripe *st = stripe_at(d, s);
  jref r = stripe_journal(st);
  change_begin(st);
  put32(d, r, f->link, load32(&f->e->next));
  put64(d, r, &st->count, load64(&st->count) - 1);
  put64(d, r, &st->bytes, load64(&st->bytes) - SH_KLEN(f->shape) - SH_VLEN(f->shape));
  put64(d, r, &st->clock, load64(&st->clock) + 1);
  if (counter != NULL)
    put64(d, r, counter, load64(counter) + 1);
  change_commit(d, st, f->unit);
}

/* A value to store. */
typedef struct value {
  const void *data;
  size_t len;
  unsigned format;
  uint64_t expires; /* monotonic ns; 0: never */
} value;

static uint32_t units_for(size_t klen, size_t vlen) {
  return (uint32_t)((ENTRY_HEADER + klen + vlen + UNIT - 1) / UNIT);
}

/* Allocates n units for a change of stripe s, recording the block in its journal in the same
 * allocator transaction. 0: no block that large is free. */
static lxshm_status alloc_for(lxshm_dict *d, lxshm__dict_stripe *st, uint32_t n, uint32_t *unit,
                              lxshm_error *err) {
  lxshm_status status = lock_alloc(d, err);
  if (status != LXSHM_OK)
    return status;
  *unit = block_alloc(d, n);
  if (*unit != 0)
    put32(d, alloc_journal(d), &st->journal.alloc, *unit);
  alloc_commit(d);
  unlock_alloc(d);
  return *unit != 0 ? LXSHM_OK : NEED_ROOM;
}

/* Inside a store's change of stripe st, journaled with r: its bytes, its clock, its earliest
 * expiry (min before the change), and one more expiration when the entry f found had expired. */
static void store_figures(lxshm_dict *d, jref r, lxshm__dict_stripe *st, uint64_t bytes,
                          uint64_t min, const value *v, const found *f) {
  put64(d, r, &st->bytes, bytes);
  put64(d, r, &st->clock, load64(&st->clock) + 1);
  if (v->expires != 0 && v->expires < min)
    put64(d, r, &st->min_expiry, v->expires);
  if (f->expired)
    put64(d, r, &st->expirations, load64(&st->expirations) + 1);
}

/* Stores v under key in stripe s, whose lock is held, as the entry f found (or a new one).
 * NEED_ROOM (with *need) when no block is free for a new entry; nothing is changed then. */
static lxshm_status store_locked(lxshm_dict *d, uint32_t s, const lxshm__dict_key *k,
                                 const found *f, const value *v, uint64_t *version, uint32_t *need,
                                 uint64_t *kv, uint32_t *own, lxshm_error *err) {
  lxshm__dict_stripe *st = stripe_at(d, s);
  jref r = stripe_journal(st);
  uint32_t units = units_for(k->len, v->len), u, have = f->unit ? block_size(d, f->unit) : 0;
  uint64_t ver = next_version(d, st, s), bytes = load64(&st->bytes), min;
  lxshm__dict_entry *e;
  lxshm_status status;

  if (f->unit != 0)
    bytes -= SH_KLEN(f->shape) + SH_VLEN(f->shape);
  bytes += k->len + v->len;
  min = load64(&st->min_expiry);
  if (f->unit != 0 && units <= have && have <= 2 * units + 2 && v->len <= INPLACE_MAX) {
    /* Rewritten in place: the old bytes go to the journal. */
    change_begin(st);
    put_bytes(d, r, value_bytes(f->e, f->shape), v->data, v->len);
    put64(d, r, &f->e->shape, SHAPE(v->len, k->len, k->type, v->format));
    put64(d, r, &f->e->version, ver);
    if (load64(&f->e->expires) != v->expires)
      put64(d, r, &f->e->expires, v->expires);
    store_figures(d, r, st, bytes, min, v, f);
    change_commit(d, st, 0);
    *version = ver;
    return LXSHM_OK;
  }
  status = alloc_for(d, st, units, &u, err);
  if (status == NEED_ROOM) {
    *need = units;
    *kv = k->len + v->len;
    *own = f->unit;
  }
  if (status != LXSHM_OK)
    return status;
  /* A fresh block: nobody reaches it before it is linked, so its bytes need no records. */
  e = entry_at(d, u);
  atomic_store_explicit(&e->version, ver, memory_order_relaxed);
  atomic_store_explicit(&e->expires, v->expires, memory_order_relaxed);
  atomic_store_explicit(&e->shape, SHAPE(v->len, k->len, k->type, v->format), memory_order_relaxed);
  memcpy((unsigned char *)(e + 1), k->data, k->len);
  if (v->len > 0)
    memcpy((unsigned char *)(e + 1) + k->len, v->data, v->len);
  atomic_store_explicit(&e->next, f->unit ? load32(&f->e->next) : load32(f->link),
                        memory_order_relaxed);
  STEP();
  change_begin(st);
  put32(d, r, f->link, u); /* replaces the old entry in its place, or heads the chain */
  if (f->unit == 0)
    put64(d, r, &st->count, load64(&st->count) + 1);
  store_figures(d, r, st, bytes, min, v, f);
  change_commit(d, st, f->unit);
  *version = ver;
  return LXSHM_OK;
}

/* Sets the expiry of the entry f found, in place. */
static void set_expiry_locked(lxshm_dict *d, uint32_t s, const found *f, uint64_t expires) {
  lxshm__dict_stripe *st = stripe_at(d, s);
  jref r = stripe_journal(st);
  change_begin(st);
  put64(d, r, &f->e->expires, expires);
  if (expires != 0 && expires < load64(&st->min_expiry))
    put64(d, r, &st->min_expiry, expires);
  change_commit(d, st, 0);
}

/* Reclaims up to max - *n expired entries of stripe s (lock held), counting them in *n. When it
 * has looked at every entry, min_expiry becomes exact. */
static lxshm_status sweep_locked(lxshm_dict *d, uint32_t s, uint64_t max, uint64_t *n,
                                 clock_cache *c, lxshm_error *err) {
  lxshm__dict_stripe *st = stripe_at(d, s);
  uint64_t buckets = (uint64_t)1 << d->bucket_bits, b, least = NO_EXPIRY;
  int whole = 1;
  if (load64(&st->min_expiry) > now_of(c))
    return LXSHM_OK; /* nothing has expired yet */
  for (b = 0; b < buckets && whole; b++) {
    _Atomic uint32_t *link = &d->buckets[((size_t)s << d->bucket_bits) + b];
    uint32_t u = load32(link), steps = 0;
    while (u != 0) {
      found f;
      memset(&f, 0, sizeof f);
      f.e = entry_ok(d, u, &f.shape);
      if (f.e == NULL || ++steps > d->units)
        return damaged(d, s, err);
      f.expires = load64(&f.e->expires);
      if (f.expires != 0 && f.expires <= now_of(c)) {
        if (*n >= max) {
          whole = 0;
          break;
        }
        f.link = link;
        f.unit = u;
        remove_locked(d, s, &f, &st->expirations);
        (*n)++;
        u = load32(link);
        continue;
      }
      if (f.expires != 0 && f.expires < least)
        least = f.expires;
      link = &f.e->next;
      u = load32(link);
    }
  }
  if (whole && least != load64(&st->min_expiry)) {
    change_begin(st);
    put64(d, stripe_journal(st), &st->min_expiry, least);
    change_commit(d, st, 0);
  }
  return LXSHM_OK;
}

/* ---- making room -------------------------------------------------------------------------- */

/* Takes stripe t's lock for work on behalf of a caller that holds stripe `held` (-1: none):
 * a caller holding one may only try others. */
static lxshm_status lock_other(lxshm_dict *d, uint32_t t, int held, lxshm_error *err) {
  if ((int)t == held)
    return LXSHM_OK;
  return lock_stripe_until(d, t, held >= 0 ? 0 : UINT64_MAX, err);
}

static void unlock_other(lxshm_dict *d, uint32_t t, int held) {
  if ((int)t != held)
    unlock_and_wake(d, t);
}

/* Reclaims every expired entry of every stripe that may have one. */
static lxshm_status sweep_all(lxshm_dict *d, int held, uint64_t max, uint64_t *n,
                              lxshm_error *err) {
  clock_cache c = {0};
  uint32_t t;
  for (t = 0; t < d->nstripes && *n < max; t++) {
    lxshm_status status;
    if (load64(&stripe_at(d, t)->min_expiry) > now_of(&c))
      continue;
    status = lock_other(d, t, held, err);
    if (status == BUSY)
      continue;
    if (status != LXSHM_OK)
      return status;
    status = sweep_locked(d, t, max, n, &c, err);
    unlock_other(d, t, held);
    if (status != LXSHM_OK)
      return status;
  }
  return LXSHM_OK;
}

static uint32_t units_fit(lxshm_dict *d, uint32_t n, lxshm_error *err, lxshm_status *status) {
  uint32_t u;
  *status = lock_alloc(d, err);
  if (*status != LXSHM_OK)
    return 0;
  u = find_block(d, n);
  unlock_alloc(d);
  return u;
}

/* Moves the CLOCK hand to the next entry without its reference bit (clearing the bits it
 * passes), and says whose it is. NOT_FOUND after two sweeps without one. */
static lxshm_status clock_victim(lxshm_dict *d, const lxshm__dict_key *protect, uint32_t *unit,
                                 uint64_t *hash, lxshm_error *err) {
  lxshm__dict_alloc *a = d->alloc;
  uint64_t travelled = 0, limit = 2 * (uint64_t)d->units;
  lxshm_status status = lock_alloc(d, err);
  if (status != LXSHM_OK)
    return status;
  status = LXSHM_NOT_FOUND;
  while (travelled < limit) {
    uint32_t u = load32(&a->hand), w, size, next;
    uint64_t shape;
    lxshm__dict_entry *e;
    lxshm__dict_key k;
    if (!real_unit(d, u))
      u = 1;
    w = load32(BLOCK(d, u));
    size = w >> 2;
    if (size == 0 || size > d->units - 1 - u) {
      status = lxshm__fail(err, LXSHM_CORRUPT, "the arena is damaged at unit %u", (unsigned)u);
      break;
    }
    next = u + size < d->units - 1 ? u + size : 1;
    atomic_store_explicit(&a->hand, next, memory_order_relaxed); /* any block start will do */
    travelled += size;
    if (!(w & USED))
      continue;
    {
      _Atomic uint64_t *bw = &d->bitmap[u / 64];
      uint64_t bit = (uint64_t)1 << (u % 64);
      if (load64(bw) & bit) {
        atomic_fetch_and_explicit(bw, ~bit, memory_order_relaxed); /* a second chance */
        continue;
      }
    }
    if ((e = entry_ok(d, u, &shape)) == NULL)
      continue;
    k.data = key_bytes(e);
    k.len = SH_KLEN(shape);
    k.type = SH_KTYPE(shape);
    if (protect != NULL && same_key(e, shape, protect))
      continue;
    *unit = u;
    *hash = hash_key(d, &k);
    status = LXSHM_OK;
    break;
  }
  unlock_alloc(d);
  return status;
}

/* Evicts (or reclaims, if expired) the next CLOCK victim, unless its stripe is busy for a caller
 * that holds another. *live says whether a live key was evicted. */
static lxshm_status evict_one(lxshm_dict *d, int held, const lxshm__dict_key *protect, int *live,
                              int *removed, lxshm_error *err) {
  uint32_t u = 0, t;
  uint64_t h = 0, shape;
  lxshm_status status = clock_victim(d, protect, &u, &h, err);
  lxshm__dict_entry *e;
  clock_cache c = {0};
  if (status != LXSHM_OK)
    return status;
  t = stripe_of(d, h);
  status = lock_other(d, t, held, err);
  if (status != LXSHM_OK)
    return status;
  /* Still the entry chosen? It is if stripe t links it; whatever it holds now is then a key of
   * stripe t's, fair to evict. */
  e = entry_ok(d, u, &shape);
  if (e != NULL) {
    lxshm__dict_key k;
    found f;
    k.data = key_bytes(e);
    k.len = SH_KLEN(shape);
    k.type = SH_KTYPE(shape);
    if (stripe_of(d, hash_key(d, &k)) == t &&
        lookup_locked(d, t, &k, hash_key(d, &k), &c, &f, err) == LXSHM_OK && f.unit == u &&
        (protect == NULL || !same_key(e, shape, protect))) {
      lxshm__dict_stripe *st = stripe_at(d, t);
      *live = !f.expired;
      *removed = 1;
      remove_locked(d, t, &f, f.expired ? &st->expirations : &st->evictions);
    }
  }
  unlock_other(d, t, held);
  return LXSHM_OK;
}

/* What make_room is asked for. */
typedef struct room_ask {
  uint32_t need;                  /* units of the block wanted */
  uint64_t kv;                    /* key and value bytes it is for (messages) */
  int held;                       /* the stripe the caller holds, -1: none */
  const lxshm__dict_key *protect; /* the caller's key: evicted last, if at all */
  uint32_t own;                   /* unit of its current entry (0: none) */
  int allow_live;                 /* may evict live keys (not safe_set, safe_add) */
  int allow_self;                 /* may evict the caller's own entry last: its value is being
                                     replaced whatever it holds (set, update; not replace, cas,
                                     incr, which depend on it) */
  uint64_t evicted;               /* out: live keys evicted */
} room_ask;

/* The largest block the arena could free while `own` stays: the room before it or after it. */
static uint32_t room_beside(lxshm_dict *d, uint32_t own) {
  uint32_t size, before, after;
  if (!real_unit(d, own) || lock_alloc(d, NULL) != LXSHM_OK)
    return d->units;
  size = block_size(d, own);
  unlock_alloc(d);
  if (size > d->units - 1 - own)
    return d->units;
  before = own - 1;
  after = d->units - 1 - (own + size);
  return before > after ? before : after;
}

/* Makes a block of r->need units free: reclaims expired entries first, then (allow_live) evicts
 * live ones by CLOCK, the caller's own key last (allow_self) or never. FULL when it cannot, and
 * then, when the caller's own entry is what stands in the way, before evicting anything. */
static lxshm_status make_room(lxshm_dict *d, room_ask *r, lxshm_error *err) {
  uint64_t swept = 0, fruitless = 0;
  int sweeps = 0, busy = 0;
  const lxshm__dict_key *protect = r->protect;
  for (;;) {
    lxshm_status status;
    int live = 0, removed = 0;
    if (units_fit(d, r->need, err, &status) != 0)
      return LXSHM_OK;
    if (status != LXSHM_OK)
      return status;
    if (sweeps == 0) {
      sweeps++;
      status = sweep_all(d, r->held, UINT64_MAX, &swept, err);
      if (status != LXSHM_OK)
        return status;
      continue;
    }
    if (!r->allow_live)
      return lxshm__fail(err, LXSHM_FULL,
                         "no room for a key and value of %llu bytes without evicting",
                         (unsigned long long)r->kv);
    if (sweeps == 1) {
      sweeps++;
      if (!r->allow_self && r->own != 0 && room_beside(d, r->own) < r->need)
        return lxshm__fail(err, LXSHM_FULL,
                           "no room for a key and value of %llu bytes beside the key's current "
                           "value",
                           (unsigned long long)r->kv);
    }
    status = evict_one(d, r->held, protect, &live, &removed, err);
    if (status == BUSY && ++busy < 4 * (int)d->nstripes + 16)
      continue;
    if (status == LXSHM_NOT_FOUND && protect != NULL && r->allow_self) {
      protect = NULL; /* only the caller's own entry is left to evict */
      continue;
    }
    if (status == LXSHM_NOT_FOUND || status == BUSY)
      return lxshm__fail(err, LXSHM_FULL,
                         "no room for a key and value of %llu bytes, even evicting",
                         (unsigned long long)r->kv);
    if (status != LXSHM_OK)
      return status;
    if (live)
      r->evicted++;
    /* A victim can be gone by the time its stripe is locked (another process changed it), but
     * a whole turn of the CLOCK hand with nothing to evict means entries the walk cannot
     * follow: damage, which would make this loop for ever. */
    fruitless = removed ? 0 : fruitless + 1;
    if (fruitless > d->units)
      return lxshm__fail(err, LXSHM_CORRUPT,
                         "no entry can be evicted: the dictionary is damaged (check() says where)");
  }
}

/* ---- lock-free reads ---------------------------------------------------------------------- */

/* A read of one stripe: fills its outputs from what it sees; RETRY if it saw something that
 * cannot be (a writer was at work). Called again from scratch on every retry. */
typedef lxshm_status (*read_fn)(lxshm_dict *d, uint32_t s, void *ctx, clock_cache *c);

/* Runs fn until it reads stripe s unchanged by writers. A writer at work makes it spin, then
 * back off; a writer that stays at work (or died there) makes it take the lock, which repairs
 * (a read-only handle cannot: it waits up to READONLY_PATIENCE_NS, then TIMEOUT). */
static lxshm_status read_stable(lxshm_dict *d, uint32_t s, read_fn fn, void *ctx,
                                lxshm_error *err) {
  lxshm__dict_stripe *st = stripe_at(d, s);
  uint64_t start = 0, pause = 1000;
  lxshm_status status;
  unsigned tries;

  for (tries = 0;; tries++) {
    uint64_t seq = atomic_load_explicit(&st->seq, memory_order_acquire);
    if (!(seq & 1)) {
      clock_cache c = {0};
      status = fn(d, s, ctx, &c);
      atomic_thread_fence(memory_order_acquire); /* the reads before the re-check */
      if (atomic_load_explicit(&st->seq, memory_order_relaxed) == seq) {
        if (status == RETRY) /* nobody was writing: the bytes are damaged */
          return lxshm__fail(err, LXSHM_CORRUPT, "a chain of stripe %u is damaged", (unsigned)s);
        return status;
      }
    }
    if (tries < SPIN_TRIES)
      continue;
    if (!d->obj.readonly && tries >= LOCK_TRIES) {
      clock_cache c = {0};
      status = lock_stripe(d, s, err);
      if (status != LXSHM_OK)
        return status;
      status = fn(d, s, ctx, &c);
      unlock_stripe(d, s);
      return status == RETRY ? damaged(d, s, err) : status;
    }
    if (start == 0)
      start = lxshm__clock_ns();
    else if (d->obj.readonly && lxshm__clock_ns() - start > READONLY_PATIENCE_NS)
      return lxshm__fail(err, LXSHM_TIMEOUT,
                         "a writer of stripe %u never finished (it may have "
                         "died: a read-write handle repairs it)",
                         (unsigned)s);
    lxshm__sleep_ns(pause);
    if (pause < 1000000)
      pause *= 2;
  }
}

/* Finds key in stripe s without the lock: its entry, or 0; RETRY on an inconsistency. */
static lxshm_status lookup_unlocked(lxshm_dict *d, uint32_t s, const lxshm__dict_key *k, uint64_t h,
                                    uint32_t *unit, lxshm__dict_entry **entry, uint64_t *shape) {
  lxshm__dict_stripe *st = stripe_at(d, s);
  uint32_t u = atomic_load_explicit(bucket_of(d, s, h), memory_order_relaxed), steps = 0;
  uint64_t seq = atomic_load_explicit(&st->seq, memory_order_relaxed);
  *unit = 0;
  while (u != 0) {
    lxshm__dict_entry *e = entry_ok(d, u, shape);
    if (e == NULL || ++steps > d->units)
      return RETRY;
    if ((steps & 63) == 0 && atomic_load_explicit(&st->seq, memory_order_relaxed) != seq)
      return RETRY; /* a long walk while writers work: maybe a loop through reused blocks */
    if (same_key(e, *shape, k)) {
      *unit = u;
      *entry = e;
      return LXSHM_OK;
    }
    u = load32(&e->next);
  }
  return LXSHM_OK;
}

typedef struct get_ctx {
  const lxshm__dict_key *key;
  uint64_t hash;
  void *buf;
  size_t cap;
  /* out */
  size_t len;
  unsigned format;
  uint64_t version;
  uint64_t expires;
  uint32_t unit;
} get_ctx;

static lxshm_status get_fn(lxshm_dict *d, uint32_t s, void *ctx, clock_cache *c) {
  get_ctx *g = (get_ctx *)ctx;
  lxshm__dict_entry *e;
  uint64_t shape;
  lxshm_status status = lookup_unlocked(d, s, g->key, g->hash, &g->unit, &e, &shape);
  if (status != LXSHM_OK)
    return status;
  if (g->unit == 0)
    return LXSHM_NOT_FOUND;
  g->expires = load64(&e->expires);
  if (expired(g->expires, c))
    return LXSHM_NOT_FOUND;
  g->version = load64(&e->version);
  g->len = SH_VLEN(shape);
  g->format = SH_FMT(shape);
  if (g->len > g->cap)
    return LXSHM_INVALID_SIZE;
  if (g->len > 0)
    memcpy(g->buf, value_bytes(e, shape), g->len);
  return LXSHM_OK;
}

static lxshm_status check_key(const lxshm__dict_key *k, lxshm_error *err) {
  if (k->len == 0 || k->len > LXSHM_DICT_KEY_MAX)
    return lxshm__fail(err, LXSHM_INVALID_SIZE, "key of %zu bytes: keys are 1 to %d bytes", k->len,
                       LXSHM_DICT_KEY_MAX);
  return LXSHM_OK;
}

/* check_key, then the key's hash into *hash. */
static lxshm_status check_hash(lxshm_dict *d, const lxshm__dict_key *key, uint64_t *hash,
                               lxshm_error *err) {
  lxshm_status status = check_key(key, err);
  if (status == LXSHM_OK)
    *hash = hash_key(d, key);
  return status;
}

/* The key of the public calls (lxshm.h): bytes, as a string key. */
static lxshm__dict_key string_key(const void *key, size_t klen) {
  lxshm__dict_key k;
  k.data = key;
  k.len = klen;
  k.type = LXSHM__KEY_STRING;
  return k;
}

lxshm_status lxshm__dict_get(lxshm_dict *d, const lxshm__dict_key *key, void *buf, size_t cap,
                             size_t *len, unsigned *format, uint64_t *version, lxshm_error *err) {
  get_ctx g = {.key = key, .buf = buf, .cap = cap};
  lxshm_status status = check_hash(d, key, &g.hash, err);
  if (status != LXSHM_OK)
    return status;
  status = read_stable(d, stripe_of(d, g.hash), get_fn, &g, err);
  if (status == LXSHM_OK || status == LXSHM_INVALID_SIZE)
    *len = g.len;
  if (status == LXSHM_OK) {
    if (format != NULL)
      *format = g.format;
    if (version != NULL)
      *version = g.version;
    ref_mark(d, g.unit);
  }
  else if (status == LXSHM_INVALID_SIZE)
    lxshm__fail(err, status, "value of %zu bytes does not fit a buffer of %zu", g.len, cap);
  else if (status == LXSHM_NOT_FOUND)
    lxshm__fail(err, status, "no such key");
  return status;
}

lxshm_status lxshm_dict_get(lxshm_dict *d, const void *key, size_t klen, void *buf, size_t cap,
                            size_t *len, uint64_t *version, lxshm_error *err) {
  lxshm__dict_key k = string_key(key, klen);
  return lxshm__dict_get(d, &k, buf, cap, len, NULL, version, err);
}

static lxshm_status version_fn(lxshm_dict *d, uint32_t s, void *ctx, clock_cache *c) {
  get_ctx *g = (get_ctx *)ctx;
  lxshm__dict_entry *e;
  uint64_t shape;
  lxshm_status status = lookup_unlocked(d, s, g->key, g->hash, &g->unit, &e, &shape);
  uint64_t expires;
  g->version = 0;
  g->expires = 0;
  if (status != LXSHM_OK || g->unit == 0)
    return status;
  expires = load64(&e->expires);
  if (!expired(expires, c)) {
    g->version = load64(&e->version);
    g->expires = expires;
  }
  return LXSHM_OK;
}

/* The key's version (0: absent) and expiry (0: none, or absent). */
static lxshm_status read_version(lxshm_dict *d, const lxshm__dict_key *key, uint64_t hash,
                                 uint64_t *version, uint64_t *expires, lxshm_error *err) {
  get_ctx g;
  lxshm_status status;
  g.key = key;
  g.hash = hash;
  status = read_stable(d, stripe_of(d, hash), version_fn, &g, err);
  *version = status == LXSHM_OK ? g.version : 0;
  if (expires != NULL)
    *expires = status == LXSHM_OK ? g.expires : 0;
  return status;
}

uint64_t lxshm__dict_version(lxshm_dict *d, const lxshm__dict_key *key) {
  uint64_t v = 0, hash;
  if (check_hash(d, key, &hash, NULL) == LXSHM_OK)
    read_version(d, key, hash, &v, NULL, NULL);
  return v;
}

uint64_t lxshm_dict_version(lxshm_dict *d, const void *key, size_t klen) {
  lxshm__dict_key k = string_key(key, klen);
  return lxshm__dict_version(d, &k);
}

/* ---- changes ------------------------------------------------------------------------------ */

/* Absolute expiry of a TTL in seconds from now: 0 (never) for 0, negative, NaN or beyond any
 * clock. */
static uint64_t expiry_of(double ttl) {
  uint64_t now, ns;
  if (!(ttl > 0) || ttl > 1e10)
    return 0;
  now = lxshm__clock_ns();
  ns = (uint64_t)(ttl * 1e9);
  return now + (ns > 0 ? ns : 1);
}

enum { OP_STORE, OP_DELETE, OP_INCR, OP_EXPIRE, OP_TTL };

/* One change of one key, as mutate() applies it. */
typedef struct op {
  const lxshm__dict_key *key;
  uint64_t hash;
  uint32_t stripe;
  int kind;          /* OP_* */
  unsigned flags;    /* OP_STORE: LXSHM_DICT_ADD, _REPLACE, _SAFE, LXSHM__DICT_CAS */
  uint64_t expected; /* LXSHM__DICT_CAS: the version required (0: absent) */
  value v;           /* OP_STORE: the value (data NULL: delete); OP_EXPIRE: v.expires */
  /* OP_INCR */
  const lxshm__dict_number *step, *init;
  uint64_t init_expires;
  /* out */
  uint64_t version;
  uint64_t evicted;
  lxshm__dict_number result;
  uint64_t expires; /* OP_TTL */
  uint32_t need;    /* with NEED_ROOM: units wanted */
  uint64_t kv;      /* with NEED_ROOM: key and value bytes to store */
  uint32_t own;     /* with NEED_ROOM: unit of the key's current entry (0: none) */
} op;

static void op_init(op *o, lxshm_dict *d, const lxshm__dict_key *key, int kind) {
  memset(o, 0, sizeof *o);
  o->key = key;
  o->hash = hash_key(d, key);
  o->stripe = stripe_of(d, o->hash);
  o->kind = kind;
}

/* ---- applying a change ------------------------------------------------------------------- */

static lxshm_status apply_locked(lxshm_dict *d, op *o, const found *f, lxshm_error *err) {
  int present = f->unit != 0 && !f->expired;
  lxshm__dict_stripe *st = stripe_at(d, o->stripe);
  switch (o->kind) {
    case OP_STORE: {
      uint64_t current = present ? load64(&f->e->version) : 0;
      if ((o->flags & LXSHM_DICT_ADD) && present)
        return lxshm__fail(err, LXSHM_EXISTS, "key exists");
      if ((o->flags & LXSHM_DICT_REPLACE) && !present)
        return lxshm__fail(err, LXSHM_NOT_FOUND, "no such key");
      if ((o->flags & LXSHM__DICT_CAS) && current != o->expected)
        return lxshm__fail(err, LXSHM_CONFLICT, "the key's version is %llu, not %llu",
                           (unsigned long long)current, (unsigned long long)o->expected);
      if (o->v.data == NULL) {
        if (f->unit != 0)
          remove_locked(d, o->stripe, f, f->expired ? &st->expirations : NULL);
        o->version = 0;
        return LXSHM_OK;
      }
      return store_locked(d, o->stripe, o->key, f, &o->v, &o->version, &o->need, &o->kv, &o->own,
                          err);
    }
    case OP_DELETE:
      if (f->unit != 0)
        remove_locked(d, o->stripe, f, f->expired ? &st->expirations : NULL);
      return LXSHM_OK;
    case OP_INCR: {
      lxshm__dict_number current;
      unsigned char bytes[9];
      value v;
      if (present) {
        unsigned char copy[9];
        size_t n = SH_VLEN(f->shape);
        if (SH_FMT(f->shape) != LXSHM__FORMAT_MSGPACK || n > sizeof copy)
          return lxshm__fail(err, LXSHM_INVALID, "value is not a number");
        memcpy(copy, value_bytes(f->e, f->shape), n);
        if (!lxshm__number_parse(copy, n, &current))
          return lxshm__fail(err, LXSHM_INVALID, "value is not a number");
        v.expires = f->expires;
      }
      else if (o->init != NULL) {
        current = *o->init;
        v.expires = o->init_expires;
      }
      else {
        return lxshm__fail(err, LXSHM_NOT_FOUND, "no such key");
      }
      lxshm__number_add(&current, o->step, &o->result);
      v.data = bytes;
      v.len = lxshm__number_encode(&o->result, bytes);
      v.format = LXSHM__FORMAT_MSGPACK;
      return store_locked(d, o->stripe, o->key, f, &v, &o->version, &o->need, &o->kv, &o->own, err);
    }
    case OP_EXPIRE:
      if (!present)
        return lxshm__fail(err, LXSHM_NOT_FOUND, "no such key");
      set_expiry_locked(d, o->stripe, f, o->v.expires);
      return LXSHM_OK;
    default:
      return lxshm__fail(err, LXSHM_INVALID, "unknown change");
  }
}

/* Applies o: takes the key's stripe, looks, changes; when memory is short, lets go of the stripe
 * to make room (reclaiming, then evicting, with no other lock held) and starts over. */
static lxshm_status mutate(lxshm_dict *d, op *o, lxshm_error *err) {
  lxshm_status status = check_key(o->key, err);
  if (status != LXSHM_OK)
    return status;
  for (;;) {
    clock_cache c = {0};
    found f;
    status = lock_stripe(d, o->stripe, err);
    if (status != LXSHM_OK)
      return status;
    status = lookup_locked(d, o->stripe, o->key, o->hash, &c, &f, err);
    if (status == LXSHM_OK)
      status = apply_locked(d, o, &f, err);
    unlock_and_wake(d, o->stripe);
    if (status != NEED_ROOM)
      return status;
    {
      room_ask r;
      memset(&r, 0, sizeof r);
      r.need = o->need;
      r.kv = o->kv;
      r.held = -1;
      r.protect = o->key;
      r.own = o->own;
      r.allow_live = !(o->flags & LXSHM_DICT_SAFE);
      r.allow_self = o->kind == OP_STORE && !(o->flags & (LXSHM_DICT_REPLACE | LXSHM__DICT_CAS));
      status = make_room(d, &r, err);
      o->evicted += r.evicted;
    }
    if (status != LXSHM_OK)
      return status;
  }
}

uint64_t lxshm__dict_max_value(const lxshm_dict *d, size_t klen) {
  uint64_t room = (uint64_t)(d->units - 2) * UNIT - ENTRY_HEADER;
  uint64_t max = room > klen ? room - klen : 0;
  return max < UINT32_MAX ? max : UINT32_MAX;
}

static lxshm_status check_value(lxshm_dict *d, const lxshm__dict_key *key, size_t len,
                                lxshm_error *err) {
  if (len > lxshm__dict_max_value(d, key->len))
    return lxshm__fail(err, LXSHM_INVALID_SIZE,
                       "value of %zu bytes cannot fit a dictionary of %llu bytes", len,
                       (unsigned long long)d->obj.capacity);
  return LXSHM_OK;
}

lxshm_status lxshm__dict_store(lxshm_dict *d, const lxshm__dict_key *key, unsigned flags,
                               uint64_t expected, const void *data, size_t len, unsigned format,
                               double ttl, uint64_t *version, uint64_t *evicted, lxshm_error *err) {
  op o;
  lxshm_status status = check_key(key, err);
  if (status == LXSHM_OK && data != NULL)
    status = check_value(d, key, len, err);
  if (status != LXSHM_OK)
    return status;
  op_init(&o, d, key, OP_STORE);
  o.flags = flags;
  o.expected = expected;
  o.v.data = data;
  o.v.len = len;
  o.v.format = format;
  o.v.expires = expiry_of(ttl);
  status = mutate(d, &o, err);
  if (version != NULL)
    *version = o.version;
  if (evicted != NULL)
    *evicted = o.evicted;
  return status;
}

lxshm_status lxshm_dict_set(lxshm_dict *d, const void *key, size_t klen, const void *data,
                            size_t len, double ttl, unsigned flags, uint64_t *version,
                            uint64_t *evicted, lxshm_error *err) {
  lxshm__dict_key k = string_key(key, klen);
  return lxshm__dict_store(d, &k, flags & (LXSHM_DICT_ADD | LXSHM_DICT_REPLACE | LXSHM_DICT_SAFE),
                           0, data != NULL ? data : "", len, LXSHM__FORMAT_RAW, ttl, version,
                           evicted, err);
}

lxshm_status lxshm_dict_cas(lxshm_dict *d, const void *key, size_t klen, uint64_t expected,
                            const void *data, size_t len, double ttl, uint64_t *version,
                            lxshm_error *err) {
  lxshm__dict_key k = string_key(key, klen);
  return lxshm__dict_store(d, &k, LXSHM__DICT_CAS, expected, data != NULL ? data : "", len,
                           LXSHM__FORMAT_RAW, ttl, version, NULL, err);
}

lxshm_status lxshm__dict_delete(lxshm_dict *d, const lxshm__dict_key *key, lxshm_error *err) {
  op o;
  op_init(&o, d, key, OP_DELETE);
  return mutate(d, &o, err);
}

lxshm_status lxshm_dict_delete(lxshm_dict *d, const void *key, size_t klen, lxshm_error *err) {
  lxshm__dict_key k = string_key(key, klen);
  return lxshm__dict_delete(d, &k, err);
}

lxshm_status lxshm__dict_incr(lxshm_dict *d, const lxshm__dict_key *key,
                              const lxshm__dict_number *step, const lxshm__dict_number *init,
                              double init_ttl, lxshm__dict_number *out, lxshm_error *err) {
  op o;
  lxshm_status status;
  op_init(&o, d, key, OP_INCR);
  o.step = step;
  o.init = init;
  o.init_expires = expiry_of(init_ttl);
  status = mutate(d, &o, err);
  if (status == LXSHM_OK)
    *out = o.result;
  return status;
}

lxshm_status lxshm_dict_incr(lxshm_dict *d, const void *key, size_t klen, int64_t step,
                             int has_init, int64_t init, double init_ttl, int64_t *out,
                             lxshm_error *err) {
  lxshm__dict_key k = string_key(key, klen);
  lxshm__dict_number s, i, sum;
  lxshm_status status;
  s.is_int = i.is_int = 1;
  s.i = step;
  i.i = init;
  s.f = i.f = 0;
  status = lxshm__dict_incr(d, &k, &s, has_init ? &i : NULL, init_ttl, &sum, err);
  if (status == LXSHM_OK && !sum.is_int)
    return lxshm__fail(err, LXSHM_INVALID, "value is not an integer");
  if (status == LXSHM_OK)
    *out = sum.i;
  return status;
}

lxshm_status lxshm__dict_expire(lxshm_dict *d, const lxshm__dict_key *key, double ttl,
                                lxshm_error *err) {
  op o;
  op_init(&o, d, key, OP_EXPIRE);
  o.v.expires = expiry_of(ttl);
  return mutate(d, &o, err);
}

lxshm_status lxshm_dict_expire(lxshm_dict *d, const void *key, size_t klen, double ttl,
                               lxshm_error *err) {
  lxshm__dict_key k = string_key(key, klen);
  return lxshm__dict_expire(d, &k, ttl, err);
}

lxshm_status lxshm__dict_ttl(lxshm_dict *d, const lxshm__dict_key *key, double *seconds,
                             lxshm_error *err) {
  uint64_t version, expires, now;
  uint64_t hash;
  lxshm_status status = check_hash(d, key, &hash, err);
  if (status == LXSHM_OK)
    status = read_version(d, key, hash, &version, &expires, err);
  if (status != LXSHM_OK)
    return status;
  if (version == 0)
    return lxshm__fail(err, LXSHM_NOT_FOUND, "no such key");
  if (expires == 0) {
    *seconds = -1;
    return LXSHM_OK;
  }
  now = lxshm__clock_ns();
  *seconds = expires > now ? (double)(expires - now) / 1e9 : 0;
  return LXSHM_OK;
}

lxshm_status lxshm_dict_ttl(lxshm_dict *d, const void *key, size_t klen, double *seconds,
                            lxshm_error *err) {
  lxshm__dict_key k = string_key(key, klen);
  return lxshm__dict_ttl(d, &k, seconds, err);
}

/* ---- update: a stripe held across the caller's code ------------------------------------- */

lxshm_status lxshm__dict_lock_key(lxshm_dict *d, const lxshm__dict_key *key, lxshm__dict_held *held,
                                  lxshm_error *err) {
  lxshm_status status = check_hash(d, key, &held->hash, err);
  if (status != LXSHM_OK)
    return status;
  held->key = *key;
  held->stripe = stripe_of(d, held->hash);
  return lock_stripe(d, held->stripe, err);
}

void lxshm__dict_unlock_key(lxshm_dict *d, const lxshm__dict_held *held) {
  unlock_and_wake(d, held->stripe);
}

lxshm_status lxshm__dict_current_locked(lxshm_dict *d, const lxshm__dict_held *held, void *buf,
                                        size_t cap, size_t *len, unsigned *format,
                                        lxshm_error *err) {
  clock_cache c = {0};
  found f;
  lxshm_status status = lookup_locked(d, held->stripe, &held->key, held->hash, &c, &f, err);
  if (status != LXSHM_OK)
    return status;
  if (f.unit == 0 || f.expired)
    return LXSHM_NOT_FOUND;
  *len = SH_VLEN(f.shape);
  if (*len > cap)
    return LXSHM_INVALID_SIZE;
  *format = SH_FMT(f.shape);
  memcpy(buf, value_bytes(f.e, f.shape), *len);
  return LXSHM_OK;
}

lxshm_status lxshm__dict_store_locked(lxshm_dict *d, const lxshm__dict_held *held, const void *data,
                                      size_t len, unsigned format, double ttl, uint64_t *version,
                                      uint64_t *evicted, lxshm_error *err) {
  op o;
  lxshm_status status = data != NULL ? check_value(d, &held->key, len, err) : LXSHM_OK;
  if (status != LXSHM_OK)
    return status;
  memset(&o, 0, sizeof o);
  o.key = &held->key;
  o.hash = held->hash;
  o.stripe = held->stripe;
  o.kind = OP_STORE;
  o.v.data = data;
  o.v.len = len;
  o.v.format = format;
  o.v.expires = expiry_of(ttl);
  for (;;) {
    clock_cache c = {0};
    found f;
    status = lookup_locked(d, o.stripe, o.key, o.hash, &c, &f, err);
    if (status == LXSHM_OK)
      status = apply_locked(d, &o, &f, err);
    if (status != NEED_ROOM)
      break;
    {
      room_ask r;
      memset(&r, 0, sizeof r);
      r.need = o.need;
      r.kv = o.kv;
      r.held = (int)o.stripe;
      r.protect = o.key;
      r.own = o.own;
      r.allow_live = 1;
      r.allow_self = 1; /* fn's result replaces the value, whatever it is */
      status = make_room(d, &r, err);
      o.evicted += r.evicted;
    }
    if (status != LXSHM_OK)
      break;
  }
  *version = o.version;
  *evicted = o.evicted;
  return status;
}

/* ---- waiting on a key -------------------------------------------------------------------- */

typedef struct key_wait {
  const lxshm__dict_key *key;
  uint64_t hash;
  uint64_t version; /* what the caller saw */
  uint64_t now;     /* out: the version that ended the wait */
  uint64_t expires; /* the key's expiry when last looked at: a wake-up nobody sends */
} key_wait;

static int key_moved(lxshm__object *o, void *ctx) {
  key_wait *w = (key_wait *)ctx;
  uint64_t v;
  if (read_version((lxshm_dict *)o, w->key, w->hash, &v, &w->expires, NULL) != LXSHM_OK)
    return 1; /* damaged: end the wait, the caller looks again */
  w->now = v;
  return v != w->version;
}

lxshm_status lxshm__dict_wait(lxshm_dict *d, const lxshm__dict_key *key, uint64_t version,
                              double timeout, uint64_t *now, const lxshm__interrupt *intr,
                              lxshm_error *err) {
  uint64_t deadline = lxshm__deadline(timeout);
  lxshm__dict_stripe *st;
  key_wait w = {.key = key, .version = version};
  lxshm_status status = check_hash(d, key, &w.hash, err);
  if (status != LXSHM_OK)
    return status;
  st = stripe_at(d, stripe_of(d, w.hash));
  if (key_moved(&d->obj, &w)) { /* also learns the key's expiry */
    if (now != NULL)
      *now = w.now;
    return LXSHM_OK;
  }
  for (;;) {
    /* Expiry changes the version without a write, so nobody wakes us for it: sleep no longer. */
    uint64_t until = w.expires != 0 && w.expires < deadline ? w.expires : deadline;
    status = lxshm__wait_until(&d->obj, &st->waiters, key_moved, &w, until, intr, err);
    if (status != LXSHM_TIMEOUT || until == deadline)
      break;
  }
  if (status == LXSHM_TIMEOUT)
    return lxshm__fail(err, status, "no new version within %g s", timeout);
  if (status == LXSHM_OK && now != NULL)
    *now = w.now;
  return status;
}

lxshm_status lxshm_dict_wait(lxshm_dict *d, const void *key, size_t klen, uint64_t version,
                             double timeout, uint64_t *now, lxshm_error *err) {
  lxshm__dict_key k = string_key(key, klen);
  return lxshm__dict_wait(d, &k, version, timeout, now, NULL, err);
}

/* ---- the whole dictionary ---------------------------------------------------------------- */

typedef struct count_ctx {
  uint64_t expired; /* out: entries expired but not reclaimed */
} count_ctx;

static lxshm_status count_expired_fn(lxshm_dict *d, uint32_t s, void *ctx, clock_cache *c) {
  count_ctx *cc = (count_ctx *)ctx;
  uint64_t buckets = (uint64_t)1 << d->bucket_bits, b, steps = 0;
  cc->expired = 0;
  for (b = 0; b < buckets; b++) {
    uint32_t u = load32(&d->buckets[((size_t)s << d->bucket_bits) + b]);
    while (u != 0) {
      uint64_t shape;
      lxshm__dict_entry *e = entry_ok(d, u, &shape);
      if (e == NULL || ++steps > d->units)
        return RETRY;
      if (expired(load64(&e->expires), c))
        cc->expired++;
      u = load32(&e->next);
    }
  }
  return LXSHM_OK;
}

uint64_t lxshm_dict_count(lxshm_dict *d) {
  uint64_t total = 0, now = lxshm__clock_ns();
  uint32_t s;
  for (s = 0; s < d->nstripes; s++) {
    lxshm__dict_stripe *st = stripe_at(d, s);
    uint64_t n = load64(&st->count);
    if (load64(&st->min_expiry) <= now) {
      count_ctx cc;
      if (read_stable(d, s, count_expired_fn, &cc, NULL) == LXSHM_OK) {
        /* count and the walk may belong to different instants: stay within bounds */
        n = load64(&st->count);
        n = cc.expired < n ? n - cc.expired : 0;
      }
    }
    total += n;
  }
  return total;
}

uint64_t lxshm__dict_id(const lxshm_dict *d) {
  return d->obj.hdr->u.dict.id;
}

/* Bytes of key and value a block of `units` takes. */
static uint64_t payload(uint32_t units) {
  return units >= 2 ? (uint64_t)units * UNIT - ENTRY_HEADER : 0;
}

/* The largest free block, read without the lock (a read-only handle): a hint. */
static uint32_t largest_unlocked(lxshm_dict *d) {
  return largest_block(d);
}

uint64_t lxshm_dict_free_space(lxshm_dict *d) {
  uint32_t largest;
  if (d->obj.readonly)
    return payload(largest_unlocked(d));
  {
    uint64_t n = 0;
    if (sweep_all(d, -1, UINT64_MAX, &n, NULL) != LXSHM_OK || lock_alloc(d, NULL) != LXSHM_OK)
      return 0;
  }
  largest = largest_block(d);
  unlock_alloc(d);
  return payload(largest);
}

lxshm_status lxshm_dict_flush_expired(lxshm_dict *d, uint64_t max, uint64_t *n, lxshm_error *err) {
  *n = 0;
  return sweep_all(d, -1, max == 0 ? UINT64_MAX : max, n, err);
}

lxshm_status lxshm_dict_flush_all(lxshm_dict *d, lxshm_error *err) {
  uint64_t buckets = (uint64_t)1 << d->bucket_bits, b;
  clock_cache c = {0};
  uint32_t s;
  for (s = 0; s < d->nstripes; s++) {
    lxshm_status status = lock_stripe(d, s, err);
    if (status != LXSHM_OK)
      return status;
    for (b = 0; b < buckets; b++) {
      _Atomic uint32_t *link = &d->buckets[((size_t)s << d->bucket_bits) + b];
      uint32_t u;
      while ((u = load32(link)) != 0) {
        found f;
        memset(&f, 0, sizeof f);
        f.e = entry_ok(d, u, &f.shape);
        if (f.e == NULL) {
          unlock_and_wake(d, s);
          return damaged(d, s, err);
        }
        f.link = link;
        f.unit = u;
        f.expires = load64(&f.e->expires);
        f.expired = expired(f.expires, &c);
        remove_locked(d, s, &f, f.expired ? &stripe_at(d, s)->expirations : NULL);
      }
    }
    if (load64(&stripe_at(d, s)->min_expiry) != NO_EXPIRY) {
      lxshm__dict_stripe *st = stripe_at(d, s);
      change_begin(st);
      put64(d, stripe_journal(st), &st->min_expiry, NO_EXPIRY);
      change_commit(d, st, 0);
    }
    unlock_and_wake(d, s);
  }
  return LXSHM_OK;
}

static void stat(lxshm__object *o, lxshm__figures *out) {
  lxshm_dict *d = (lxshm_dict *)o;
  lxshm__dict_stat *st = &out->dict;
  uint64_t free_units = load64(&d->alloc->free_units);
  uint32_t s;
  memset(st, 0, sizeof *st);
  st->capacity = d->obj.capacity;
  free_units = free_units < d->units ? free_units : d->units;
  st->used = d->obj.capacity - free_units * UNIT;
  st->free = payload(largest_unlocked(d));
  st->count = lxshm_dict_count(d);
  for (s = 0; s < d->nstripes; s++) {
    lxshm__dict_stripe *t = stripe_at(d, s);
    st->evictions += load64(&t->evictions);
    st->expirations += load64(&t->expirations);
    st->version += load64(&t->clock);
    st->waiters += lxshm__waiter_count(&d->obj, &t->waiters);
  }
}

/* ---- check ----------------------------------------------------------------------------------- */

typedef struct checker {
  lxshm_dict *d;
  lxshm_error *err;
  unsigned char *linked; /* a bit per unit: an entry linked there (NULL: not checked) */
  uint64_t used_blocks;
  uint64_t free_blocks;
  uint64_t free_units;
} checker;

static lxshm_status check_arena(checker *k) {
  lxshm_dict *d = k->d;
  uint32_t u = 1, prev_used = 1, hand = load32(&d->alloc->hand);
  int hand_seen = 0;
  if (load32(BLOCK(d, 0)) != (1u << 2 | USED | PREV_USED))
    return lxshm__fail(k->err, LXSHM_CORRUPT, "the arena's first sentinel is damaged");
  while (u < d->units - 1) {
    uint32_t w = load32(BLOCK(d, u)), size = w >> 2;
    if (size == 0 || size > d->units - 1 - u)
      return lxshm__fail(k->err, LXSHM_CORRUPT, "block at unit %u has size %u", (unsigned)u,
                         (unsigned)size);
    if (((w & PREV_USED) != 0) != (prev_used != 0))
      return lxshm__fail(k->err, LXSHM_CORRUPT, "block at unit %u: wrong previous-used flag",
                         (unsigned)u);
    if (u == hand)
      hand_seen = 1;
    if (w & USED) {
      if (size < 2)
        return lxshm__fail(k->err, LXSHM_CORRUPT, "used block at unit %u is too small",
                           (unsigned)u);
      k->used_blocks++;
    }
    else {
      if (!prev_used)
        return lxshm__fail(k->err, LXSHM_CORRUPT, "free blocks at unit %u are not merged",
                           (unsigned)u);
      if (load32(footer(d, u, size)) != size)
        return lxshm__fail(k->err, LXSHM_CORRUPT, "free block at unit %u: footer %u, size %u",
                           (unsigned)u, (unsigned)load32(footer(d, u, size)), (unsigned)size);
      k->free_blocks++;
      k->free_units += size;
    }
    prev_used = w & USED;
    u += size;
  }
  if ((load32(BLOCK(d, u)) & ~PREV_USED) != (1u << 2 | USED) ||
      ((load32(BLOCK(d, u)) & PREV_USED) != 0) != (prev_used != 0))
    return lxshm__fail(k->err, LXSHM_CORRUPT, "the arena's last sentinel is damaged");
  if (!hand_seen && hand != 1)
    return lxshm__fail(k->err, LXSHM_CORRUPT, "the clock hand (unit %u) is not at a block",
                       (unsigned)hand);
  if (load64(&d->alloc->free_units) != k->free_units)
    return lxshm__fail(k->err, LXSHM_CORRUPT, "free units counted %llu, found %llu",
                       (unsigned long long)load64(&d->alloc->free_units),
                       (unsigned long long)k->free_units);
  return LXSHM_OK;
}

static lxshm_status check_lists(checker *k) {
  lxshm_dict *d = k->d;
  lxshm__dict_alloc *a = d->alloc;
  uint64_t listed = 0;
  uint32_t f, s, fl = 0;
  for (f = 0; f < LXSHM__DICT_FL; f++) {
    uint32_t sl = 0;
    for (s = 0; s < LXSHM__DICT_SL; s++) {
      uint32_t u = load32(&a->heads[f][s]), prev = 0;
      while (u != 0) {
        uint32_t w, cf, cs;
        if (!real_unit(d, u) || ++listed > k->free_blocks)
          return lxshm__fail(k->err, LXSHM_CORRUPT, "free list (%u, %u) is damaged", (unsigned)f,
                             (unsigned)s);
        w = load32(BLOCK(d, u));
        size_class(w >> 2, &cf, &cs);
        if ((w & USED) || cf != f || cs != s || load32(FREE_PREV(d, u)) != prev)
          return lxshm__fail(k->err, LXSHM_CORRUPT, "free list (%u, %u) holds unit %u wrongly",
                             (unsigned)f, (unsigned)s, (unsigned)u);
        prev = u;
        u = load32(FREE_NEXT(d, u));
      }
      if (load32(&a->heads[f][s]) != 0)
        sl |= 1u << s;
    }
    if (load32(&a->sl_bitmap[f]) != sl)
      return lxshm__fail(k->err, LXSHM_CORRUPT, "free list bitmap %u is wrong", (unsigned)f);
    if (sl != 0)
      fl |= 1u << f;
  }
  if (load32(&a->fl_bitmap) != fl)
    return lxshm__fail(k->err, LXSHM_CORRUPT, "free list bitmap is wrong");
  if (listed != k->free_blocks)
    return lxshm__fail(k->err, LXSHM_CORRUPT, "%llu free blocks, %llu listed",
                       (unsigned long long)k->free_blocks, (unsigned long long)listed);
  return LXSHM_OK;
}

static lxshm_status check_stripe(checker *k, uint32_t s, uint64_t *entries) {
  lxshm_dict *d = k->d;
  lxshm__dict_stripe *st = stripe_at(d, s);
  uint64_t buckets = (uint64_t)1 << d->bucket_bits, b, count = 0, bytes = 0;
  uint64_t min = load64(&st->min_expiry), clock = load64(&st->clock);
  if (load64(&st->seq) & 1)
    return lxshm__fail(k->err, LXSHM_CORRUPT, "stripe %u is marked as being changed", (unsigned)s);
  if (stripe_busy(st))
    return lxshm__fail(k->err, LXSHM_CORRUPT, "stripe %u's journal is not idle", (unsigned)s);
  for (b = 0; b < buckets; b++) {
    uint32_t u = load32(&d->buckets[((size_t)s << d->bucket_bits) + b]);
    while (u != 0) {
      uint64_t shape, h, expires, version;
      lxshm__dict_key key;
      lxshm__dict_entry *e = entry_ok(d, u, &shape);
      if (e == NULL || count >= k->used_blocks)
        return lxshm__fail(k->err, LXSHM_CORRUPT,
                           "stripe %u bucket %llu: unit %u is not an "
                           "entry",
                           (unsigned)s, (unsigned long long)b, (unsigned)u);
      if (k->linked != NULL) {
        if (k->linked[u / 8] & (1u << (u % 8)))
          return lxshm__fail(k->err, LXSHM_CORRUPT, "entry at unit %u is linked twice",
                             (unsigned)u);
        k->linked[u / 8] |= (unsigned char)(1u << (u % 8));
      }
      key.data = key_bytes(e);
      key.len = SH_KLEN(shape);
      key.type = SH_KTYPE(shape);
      h = hash_key(d, &key);
      if (key.len == 0 || stripe_of(d, h) != s || (h & (((uint64_t)1 << d->bucket_bits) - 1)) != b)
        return lxshm__fail(k->err, LXSHM_CORRUPT, "entry at unit %u is in the wrong bucket",
                           (unsigned)u);
      if (SH_FMT(shape) > LXSHM__FORMAT_MSGPACK || key.type < LXSHM__KEY_STRING ||
          key.type > LXSHM__KEY_BOOLEAN)
        return lxshm__fail(k->err, LXSHM_CORRUPT, "entry at unit %u has a bad type", (unsigned)u);
      expires = load64(&e->expires);
      if (expires != 0 && expires < min)
        return lxshm__fail(k->err, LXSHM_CORRUPT,
                           "stripe %u: an entry expires before the "
                           "stripe's earliest expiry",
                           (unsigned)s);
      version = load64(&e->version);
      if (version % d->nstripes != s || version / d->nstripes == 0 || version / d->nstripes > clock)
        return lxshm__fail(k->err, LXSHM_CORRUPT, "entry at unit %u has version %llu", (unsigned)u,
                           (unsigned long long)version);
      count++;
      bytes += key.len + SH_VLEN(shape);
      u = load32(&e->next);
    }
  }
  if (count != load64(&st->count))
    return lxshm__fail(k->err, LXSHM_CORRUPT, "stripe %u counts %llu entries, holds %llu",
                       (unsigned)s, (unsigned long long)load64(&st->count),
                       (unsigned long long)count);
  if (bytes != load64(&st->bytes))
    return lxshm__fail(k->err, LXSHM_CORRUPT, "stripe %u counts %llu bytes, holds %llu",
                       (unsigned)s, (unsigned long long)load64(&st->bytes),
                       (unsigned long long)bytes);
  *entries += count;
  return LXSHM_OK;
}

lxshm_status lxshm_dict_check(lxshm_dict *d, lxshm_error *err) {
  checker k;
  lxshm_status status = LXSHM_OK;
  uint64_t entries = 0;
  uint32_t s, locked = 0;
  memset(&k, 0, sizeof k);
  k.d = d;
  k.err = err;
  for (locked = 0; locked < d->nstripes && status == LXSHM_OK; locked++)
    status = lock_stripe(d, locked, err);
  if (status != LXSHM_OK) {
    locked--;
  }
  else if ((status = lock_alloc(d, err)) == LXSHM_OK) {
    k.linked = (unsigned char *)calloc(d->units / 8 + 1, 1);
    status = check_arena(&k);
    if (status == LXSHM_OK)
      status = check_lists(&k);
    for (s = 0; s < d->nstripes && status == LXSHM_OK; s++)
      status = check_stripe(&k, s, &entries);
    if (status == LXSHM_OK && entries != k.used_blocks)
      status = lxshm__fail(err, LXSHM_CORRUPT, "%llu blocks in use, %llu entries linked",
                           (unsigned long long)k.used_blocks, (unsigned long long)entries);
    free(k.linked);
    unlock_alloc(d);
  }
  while (locked-- > 0)
    unlock_stripe(d, locked);
  return status;
}

/* ---- scans (pairs, keys) ----------------------------------------------------------------- */

typedef struct scan_ctx {
  uint64_t first, last; /* buckets [first, last) of the stripe */
  int values;
  unsigned char *buf;
  size_t cap;
  /* out */
  size_t used;
  uint32_t count;
  uint64_t next; /* the first bucket not taken */
} scan_ctx;

static size_t record_size(size_t klen, size_t vlen) {
  return (LXSHM__DICT_RECORD + klen + vlen + 7) & ~(size_t)7;
}

static lxshm_status scan_fn(lxshm_dict *d, uint32_t s, void *ctx, clock_cache *c) {
  scan_ctx *sc = (scan_ctx *)ctx;
  uint64_t b, steps = 0;
  sc->used = 0;
  sc->count = 0;
  for (b = sc->first; b < sc->last; b++) {
    size_t start = sc->used, need = 0;
    uint32_t n = 0, u = load32(&d->buckets[((size_t)s << d->bucket_bits) + b]);
    while (u != 0) {
      uint64_t shape, expires;
      lxshm__dict_entry *e = entry_ok(d, u, &shape);
      size_t rec, klen, vlen;
      if (e == NULL || ++steps > d->units)
        return RETRY;
      expires = load64(&e->expires);
      klen = SH_KLEN(shape);
      vlen = sc->values ? SH_VLEN(shape) : 0;
      rec = record_size(klen, vlen);
      if (!expired(expires, c)) {
        need += rec;
        if (sc->used + rec <= sc->cap) {
          unsigned char *p = sc->buf + sc->used;
          uint32_t k32 = (uint32_t)klen, v32 = (uint32_t)vlen;
          uint64_t version = load64(&e->version);
          memset(p, 0, LXSHM__DICT_RECORD);
          memcpy(p, &k32, 4);
          memcpy(p + 4, &v32, 4);
          p[8] = (unsigned char)SH_KTYPE(shape);
          p[9] = (unsigned char)SH_FMT(shape);
          memcpy(p + 16, &version, 8);
          memcpy(p + LXSHM__DICT_RECORD, key_bytes(e), klen);
          if (vlen > 0)
            memcpy(p + LXSHM__DICT_RECORD + klen, value_bytes(e, shape), vlen);
        }
        sc->used += rec;
        n++;
      }
      u = load32(&e->next);
    }
    if (sc->used > sc->cap) { /* this bucket does not fit: stop before it */
      sc->used = start;
      if (b == sc->first) {
        sc->used = need;
        sc->next = b;
        return LXSHM_INVALID_SIZE;
      }
      break;
    }
    sc->count += n;
  }
  sc->next = b;
  return LXSHM_OK;
}

lxshm_status lxshm__dict_scan(lxshm_dict *d, uint64_t *cursor, int values, void *buf, size_t cap,
                              size_t *used, uint32_t *count, lxshm_error *err) {
  uint64_t buckets = (uint64_t)1 << d->bucket_bits;
  *used = 0;
  *count = 0;
  while (*cursor != LXSHM__DICT_END) {
    uint32_t s = (uint32_t)(*cursor >> 32);
    scan_ctx sc;
    lxshm_status status;
    if (s >= d->nstripes) {
      *cursor = LXSHM__DICT_END;
      break;
    }
    sc.first = *cursor & 0xffffffffu;
    sc.last = sc.first + 256 < buckets ? sc.first + 256 : buckets;
    sc.values = values;
    sc.buf = (unsigned char *)buf;
    sc.cap = cap;
    status = read_stable(d, s, scan_fn, &sc, err);
    if (status == LXSHM_INVALID_SIZE) {
      *used = sc.used;
      return status;
    }
    if (status != LXSHM_OK)
      return status;
    *cursor = sc.next < buckets ? (uint64_t)s << 32 | sc.next : (uint64_t)(s + 1) << 32;
    if (sc.count > 0) {
      *used = sc.used;
      *count = sc.count;
      return LXSHM_OK;
    }
  }
  return LXSHM_OK;
}

/* ---- the kind, create, open ------------------------------------------------------------ */

/* A new dictionary: locks made, stripes empty, the arena one free block between sentinels. */
static lxshm_status init(lxshm__object *o, lxshm_error *err) {
  lxshm_dict *d = (lxshm_dict *)o;
  lxshm__dict_state *ds = &o->hdr->u.dict;
  uint64_t noise = (uint64_t)lxshm__wallclock_ns() ^ ((uint64_t)lxshm__pid() << 32) ^
                   lxshm__clock_ns() ^ (uint64_t)(uintptr_t)o;
  uint32_t s, size, f, sl;
  lxshm_status status;
  ds->seed = mix(noise);
  ds->id = mix(noise ^ 0x5bd1e995u);
  bind(o);
  for (s = 0; s < d->nstripes; s++) {
    lxshm__dict_stripe *st = stripe_at(d, s);
    if ((status = lxshm__lock_init(&o->map, st->lock, err)) != LXSHM_OK)
      return status;
    atomic_store_explicit(&st->min_expiry, NO_EXPIRY, memory_order_relaxed);
  }
  size = d->units - 2;
  atomic_store_explicit(BLOCK(d, 0), 1u << 2 | USED | PREV_USED, memory_order_relaxed);
  atomic_store_explicit(BLOCK(d, 1), size << 2 | PREV_USED, memory_order_relaxed);
  atomic_store_explicit(footer(d, 1, size), size, memory_order_relaxed);
  atomic_store_explicit(BLOCK(d, d->units - 1), 1u << 2 | USED, memory_order_relaxed);
  size_class(size, &f, &sl);
  atomic_store_explicit(&d->alloc->heads[f][sl], 1, memory_order_relaxed);
  atomic_store_explicit(&d->alloc->sl_bitmap[f], 1u << sl, memory_order_relaxed);
  atomic_store_explicit(&d->alloc->fl_bitmap, 1u << f, memory_order_relaxed);
  atomic_store_explicit(&d->alloc->free_units, size, memory_order_relaxed);
  atomic_store_explicit(&d->alloc->hand, 1, memory_order_relaxed);
  return LXSHM_OK;
}

const lxshm__kind lxshm__dict_kind = {
    LXSHM__KIND_DICT,  "dict", "open_dict", sizeof(lxshm_dict), plan, init, bind,
    LXSHM__DICT_NAMES, stat};

/* lxshm_dict_create, _attach, _open_with, _open, _close, _capacity and _name */
LXSHM__TYPED_CREATE(lxshm_dict_, lxshm_dict, lxshm__dict_kind)
LXSHM__TYPED_API(lxshm_dict_, lxshm_dict, lxshm__dict_kind, capacity)

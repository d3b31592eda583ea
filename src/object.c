/* object.c — what segments and queues share: names, exclusive creation and publication of a
 * header, opening with validation, locks with owner-death repair, and waitlists. Makes no OS
 * call itself (platform.h does) and knows nothing of Lua. */
#include <stdlib.h>
#include <string.h>

#include "object.h"

/* open waits this long for a concurrent creator, plus OPEN_PATIENCE_PER_MIB_NS for every MiB
 * the creator must reserve (reserving memory runs well above 1 GiB/s). */
#define OPEN_PATIENCE_NS 500000000u
#define OPEN_PATIENCE_PER_MIB_NS 1000000u
/* A waiter spins this long before it sleeps, on a machine with more than one processor: a wake
 * through the kernel costs about as much as a pipe round trip, a spin well under a microsecond. */
#define SPIN_NS 50000u
/* ... and then sleeps at most this long at a time (see lxshm__wait_until). */
#define SLICE_NS 200000000u
/* A waker that found nobody asleep this many times looks for waiters that died. */
#define FUTILE_WAKES_BEFORE_HEAL 64u

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

static uint64_t round_up(uint64_t n, uint64_t to) {
  return (n + to - 1) / to * to;
}

uint64_t lxshm__map_size(uint32_t kind, uint64_t capacity) {
  if (capacity == 0 || capacity > LXSHM_SIZE_MAX)
    return 0;
  if (kind == LXSHM__KIND_SEGMENT)
    return LXSHM__HEADER_SIZE + 2 * round_up(capacity, LXSHM__SLOT_ALIGN);
  if (kind == LXSHM__KIND_QUEUE && capacity % LXSHM__RECORD_ALIGN == 0)
    return LXSHM__HEADER_SIZE + capacity;
  return 0;
}

/* ---- creating and opening ---------------------------------------------------------------- */

static void bind(lxshm__object *o) {
  o->hdr = (lxshm__header *)o->map.base;
  o->data = o->map.base + LXSHM__HEADER_SIZE;
  o->capacity = o->hdr->capacity;
}

lxshm_status lxshm__object_create(lxshm__object *o, const char *name, uint32_t kind,
                                  uint64_t capacity, unsigned mode, lxshm_error *err) {
  uint64_t size = lxshm__map_size(kind, capacity);
  lxshm__header *h;
  lxshm_status st;

  memset(o, 0, sizeof *o);
  if (lxshm_check_name(name) != LXSHM_OK)
    return bad_name(err);
  if (size == 0)
    return lxshm__fail(err, LXSHM_INVALID_SIZE, "size must be 1 to %llu bytes",
                       (unsigned long long)LXSHM_SIZE_MAX);
  strcpy(o->name, name); /* checked: at most LXSHM_NAME_MAX bytes */
  st = lxshm__map_create(name, (size_t)size, mode, &o->map, err);
  if (st == LXSHM_EXISTS)
    return lxshm__fail(err, st, "already exists");
  if (st != LXSHM_OK)
    return st;
  /* The object is new and all zero; only the identity needs writing. */
  h = (lxshm__header *)o->map.base;
  h->layout = LXSHM__LAYOUT_VERSION;
  h->kind = kind;
  h->codec = LXSHM__CODEC_VERSION;
  h->capacity = capacity;
  h->map_size = size;
  h->slot_stride = kind == LXSHM__KIND_SEGMENT ? round_up(capacity, LXSHM__SLOT_ALIGN) : 0;
  h->creator_pid = lxshm__pid();
  bind(o);
  st = lxshm__lock_init(&o->map, h->lock, err);
  if (st != LXSHM_OK)
    lxshm__object_abandon(o);
  return st;
}

void lxshm__object_publish(lxshm__object *o) {
  atomic_store_explicit(&o->hdr->magic, LXSHM__MAGIC, memory_order_release); /* last */
}

void lxshm__object_abandon(lxshm__object *o) {
  lxshm__map_close(&o->map);
  lxshm__map_unlink(o->name, NULL);
}

static const char *kind_name(uint32_t kind) {
  return kind == LXSHM__KIND_QUEUE ? "queue" : "segment";
}

/* Checks a published header against the mapping it sits in and the kind asked for. Everything
 * a later access relies on (the capacity, where the data lies) is checked here, once. */
static lxshm_status validate(const lxshm__header *h, size_t mapped, uint32_t kind,
                             lxshm_error *err) {
  if (h->layout != LXSHM__LAYOUT_VERSION)
    return lxshm__fail(err, LXSHM_INVALID, "made by another lxshm build (layout %u, expected %u)",
                       h->layout, LXSHM__LAYOUT_VERSION);
  if (h->kind != LXSHM__KIND_SEGMENT && h->kind != LXSHM__KIND_QUEUE)
    return lxshm__fail(err, LXSHM_CORRUPT, "header names an unknown kind %u", h->kind);
  if (h->kind != kind)
    return lxshm__fail(err, LXSHM_INVALID, "is a %s, not a %s (use %s)", kind_name(h->kind),
                       kind_name(kind), h->kind == LXSHM__KIND_QUEUE ? "open_queue" : "open");
  if (h->codec != LXSHM__CODEC_VERSION)
    return lxshm__fail(err, LXSHM_INVALID, "values in format %u, this build reads %u", h->codec,
                       LXSHM__CODEC_VERSION);
  if (lxshm__map_size(kind, h->capacity) != h->map_size ||
      (kind == LXSHM__KIND_SEGMENT && h->slot_stride != round_up(h->capacity, LXSHM__SLOT_ALIGN)))
    return lxshm__fail(err, LXSHM_CORRUPT, "header sizes are inconsistent");
  if (h->map_size != mapped)
    return lxshm__fail(err, LXSHM_CORRUPT, "header says %llu bytes, the mapping has %zu",
                       (unsigned long long)h->map_size, mapped);
  return LXSHM_OK;
}

lxshm_status lxshm__object_open(lxshm__object *o, const char *name, uint32_t kind,
                                lxshm_error *err) {
  lxshm_status st;
  uint64_t start, patience, pause = 100000; /* 0.1 ms, doubling up to 10 ms */

  memset(o, 0, sizeof *o);
  if (lxshm_check_name(name) != LXSHM_OK)
    return bad_name(err);
  strcpy(o->name, name);
  start = lxshm__clock_ns();
  for (;;) {
    st = lxshm__map_open(name, &o->map, err);
    if (st == LXSHM_NOT_FOUND)
      return lxshm__fail(err, st, "does not exist");
    if (st != LXSHM_OK)
      return st;
    patience = OPEN_PATIENCE_NS + (uint64_t)(o->map.size >> 20) * OPEN_PATIENCE_PER_MIB_NS;
    if (o->map.size >= sizeof(lxshm__header)) {
      const lxshm__header *h = (const lxshm__header *)o->map.base;
      uint32_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
      if (magic == LXSHM__MAGIC) {
        st = validate(h, o->map.size, kind, err);
        if (st == LXSHM_OK)
          bind(o);
        break;
      }
      if (magic != 0) {
        st = lxshm__fail(err, LXSHM_INVALID, "not an lxshm %s", kind_name(kind));
        break;
      }
    }
    else if (o->map.size > 0) {
      st = lxshm__fail(err, LXSHM_INVALID, "not an lxshm %s (%zu bytes)", kind_name(kind),
                       o->map.size);
      break;
    }
    /* Empty, or magic still 0: a creator is at work. Look again shortly, within bounds. */
    lxshm__map_close(&o->map);
    if (lxshm__clock_ns() - start >= patience)
      return lxshm__fail(err, LXSHM_CORRUPT, "never finished initializing (its creator died?)");
    lxshm__sleep_ns(pause);
    if (pause < 10000000)
      pause *= 2;
  }
  if (st != LXSHM_OK)
    lxshm__map_close(&o->map);
  return st;
}

void lxshm__object_close(lxshm__object *o) {
  lxshm__map_close(&o->map);
}

/* ---- locks --------------------------------------------------------------------------------- */

lxshm_status lxshm__object_lock(lxshm__object *o, void *lock, uint64_t deadline,
                                void (*repair)(lxshm__object *o), lxshm_error *err) {
  int owner_died;
  lxshm_status st = lxshm__lock_acquire(&o->map, lock, deadline, &owner_died, err);
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

/* ---- waitlists ----------------------------------------------------------------------------- */

/* Registers the calling process on w: counts it in sleepers (what wakers look at) and claims a
 * pid entry (what healing looks at). Returns the entry, or -1 when all are taken (the waiter
 * is then counted but not tracked). */
static int enter(lxshm__waitlist *w) {
  uint32_t pid = lxshm__pid();
  unsigned i, start = pid % LXSHM__WAITER_PIDS;
  atomic_fetch_add_explicit(&w->sleepers, 1, memory_order_relaxed);
  for (i = 0; i < LXSHM__WAITER_PIDS; i++) {
    unsigned k = (start + i) % LXSHM__WAITER_PIDS;
    uint32_t expected = 0;
    if (atomic_compare_exchange_strong_explicit(&w->pids[k], &expected, pid,
                                                memory_order_relaxed, memory_order_relaxed))
      return (int)k;
  }
  return -1;
}

/* Unregisters. If someone freed our entry believing us dead, they already took our count. */
static void leave(lxshm__waitlist *w, int entry) {
  uint32_t pid = lxshm__pid();
  if (entry < 0 || atomic_compare_exchange_strong_explicit(&w->pids[entry], &pid, 0,
                                                            memory_order_relaxed,
                                                            memory_order_relaxed))
    atomic_fetch_sub_explicit(&w->sleepers, 1, memory_order_relaxed);
}

/* Frees the entries of waiters whose process has died, taking their counts with them. */
static void heal(lxshm__waitlist *w) {
  unsigned k;
  for (k = 0; k < LXSHM__WAITER_PIDS; k++) {
    uint32_t pid = atomic_load_explicit(&w->pids[k], memory_order_relaxed);
    if (pid != 0 && !lxshm__pid_alive(pid) &&
        atomic_compare_exchange_strong_explicit(&w->pids[k], &pid, 0, memory_order_relaxed,
                                                memory_order_relaxed))
      atomic_fetch_sub_explicit(&w->sleepers, 1, memory_order_relaxed);
  }
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Spinning only helps when the process that will end the wait runs at the same time on another
 * CPU. If the last waker's CPU is known, spin only when it is not ours (when the scheduler put us
 * together, the waker cannot run while we spin; a process pinned to one CPU may still gain when
 * its waker runs on another). Otherwise spin only if this process may use more than one CPU. */
static int may_spin(const lxshm__waitlist *w) {
  static _Atomic int cpus; /* 0 until first asked */
  unsigned waker = atomic_load_explicit(&w->waker_cpu, memory_order_relaxed);
  int n;
  if (waker != 0)
    return waker != lxshm__current_cpu();
  n = atomic_load_explicit(&cpus, memory_order_relaxed);
  if (n == 0) {
    n = (int)lxshm__cpu_count();
    atomic_store_explicit(&cpus, n, memory_order_relaxed);
  }
  return n > 1;
}

lxshm_status lxshm__wait_until(lxshm__object *o, lxshm__waitlist *w, lxshm__ready_fn ready,
                               void *ctx, uint64_t deadline, const lxshm__interrupt *intr,
                               lxshm_error *err) {
  uint64_t now;
  lxshm_status st;

  if (ready(o, ctx))
    return LXSHM_OK;
  now = lxshm__clock_ns();
  if (now < deadline && may_spin(w)) {
    uint64_t stop = deadline - now < SPIN_NS ? deadline : now + SPIN_NS;
    unsigned i;
    for (i = 1;; i++) {
      cpu_relax();
      if (ready(o, ctx))
        return LXSHM_OK;
      if (i % 64 == 0 && lxshm__clock_ns() >= stop)
        break;
    }
  }
  for (;;) {
    /* Read the word before the last check: a change after the check bumps it, and the sleep
     * below then returns at once instead of missing the change. */
    uint32_t word = atomic_load_explicit(&w->word, memory_order_acquire);
    uint64_t slice;
    int entry;

    now = lxshm__clock_ns();
    if (now >= deadline)
      return ready(o, ctx) ? LXSHM_OK : LXSHM_TIMEOUT;
    slice = deadline - now < SLICE_NS ? deadline : now + SLICE_NS;
    entry = enter(w);
    /* Every sleeper arms the list, even if it looks armed: a waker may be taking it back right
     * now, and then its bump of the word comes after our read of the word, so our sleep below
     * returns at once. */
    atomic_store_explicit(&w->armed, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst); /* pairs with the fence in lxshm__wake */
    if (ready(o, ctx)) {
      leave(w, entry);
      return LXSHM_OK;
    }
    st = lxshm__word_wait(&o->map, &w->word, word, slice, err);
    leave(w, entry);
    if (st != LXSHM_OK && st != LXSHM_TIMEOUT)
      return st;
    if (ready(o, ctx))
      return LXSHM_OK;
    if (intr != NULL && intr->check(intr->ud))
      return LXSHM__INTERRUPTED;
  }
}

void lxshm__wake(lxshm__object *o, lxshm__waitlist *w) {
  unsigned cpu = lxshm__current_cpu();
  if (atomic_load_explicit(&w->waker_cpu, memory_order_relaxed) != cpu) /* rarely a write */
    atomic_store_explicit(&w->waker_cpu, cpu, memory_order_relaxed);
  /* Pairs with the fence in lxshm__wait_until: either the waiter's last check sees the change
   * we published, or we see it registered (and armed) here. */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&w->sleepers, memory_order_relaxed) == 0)
    return;
  /* A sleeper stays registered until it runs again; without this, every change until then made
   * a wake-up call that found nobody new asleep (0.6 per message with 4 producers and 3
   * consumers). Only the waker that disarms the list calls the kernel. */
  if (atomic_load_explicit(&w->armed, memory_order_relaxed) == 0 ||
      atomic_exchange_explicit(&w->armed, 0, memory_order_seq_cst) == 0)
    return;
  atomic_fetch_add_explicit(&w->word, 1, memory_order_seq_cst);
  if (lxshm__word_wake(&o->map, &w->word) == 0 && ++o->futile_wakes >= FUTILE_WAKES_BEFORE_HEAL) {
    o->futile_wakes = 0; /* registered waiters that never sleep: maybe dead ones */
    heal(w);
  }
}

void lxshm__wake_all(lxshm__object *o, lxshm__waitlist *w) {
  atomic_fetch_add_explicit(&w->word, 1, memory_order_relaxed);
  lxshm__word_wake(&o->map, &w->word);
}

uint32_t lxshm__waiter_count(lxshm__object *o, lxshm__waitlist *w) {
  (void)o;
  heal(w);
  return atomic_load_explicit(&w->sleepers, memory_order_relaxed);
}

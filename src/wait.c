/* wait.c — waitlists: sleeping until another process changes something, without spinning and
 * without a system call on the changer's side when nobody sleeps. Makes no OS call itself
 * (platform.h's word_wait/word_wake do) and knows nothing of the kinds or of Lua.
 *
 * The protocol. A waitlist (layout.h) is a futex `word`, a count of `sleepers`, a table of their
 * `pids`, an `armed` flag and the CPU of the last waker.
 *
 *   waiter                                   changer (after publishing its change)
 *   w0 = word                                fence (seq_cst)
 *   sleepers += 1, claim a pid entry         if sleepers == 0: done (no system call)
 *   armed = 1                                if armed and exchange(armed, 0) was 1:
 *   fence (seq_cst)                              word += 1
 *   if ready(): leave, done                      wake every sleeper of word
 *   sleep while word == w0 (slice <= 200 ms)
 *   leave: sleepers -= 1, free the entry
 *   yield the CPU if others still sleep
 *
 * The two fences order "register, then check" against "publish, then look": either the waiter's
 * last check sees the change, or the changer sees the waiter registered and armed, bumps the
 * word and wakes it (a bump between the waiter's read of the word and its sleep makes the sleep
 * return at once). Only the changer that takes `armed` back calls the kernel; the others skip
 * the call until some waiter sleeps again, so a stream of changes costs one wake per sleep.
 *
 * A waiter killed while registered stays counted: wakers then find `sleepers` > 0 but nobody
 * asleep. After FUTILE_WAKES_BEFORE_HEAL such wakes, and whenever waiters are counted, the
 * entries of dead processes are freed with their counts (`heal`). One killed between counting
 * itself and claiming its entry stays counted for good, which costs wakers only a look at
 * `armed`; the number of waiters reported comes from the entries, so it is not among them. A waker
 * killed between its change and its wake costs a waiter at most one slice. Waiters beyond
 * LXSHM__WAITER_PIDS are counted but not tracked by pid.
 *
 * A read-only object cannot be written, so its waiters cannot register: they look again at
 * growing intervals (READONLY_POLL_MAX_NS at most), sleeping on the word meanwhile, so that a
 * wake meant for registered waiters wakes them too. */
#include "wait.h"

/* A waiter spins this long before it sleeps, where the waker can run meanwhile: a wake through
 * the kernel costs about as much as a pipe round trip, a spin well under a microsecond. */
#define SPIN_NS 50000u
/* ... and then sleeps at most this long at a time. */
#define SLICE_NS 200000000u
/* A waker that found nobody asleep this many times looks for waiters that died. */
#define FUTILE_WAKES_BEFORE_HEAL 64u
/* A read-only waiter looks again after 50 us, doubling up to this. */
#define READONLY_POLL_MIN_NS 50000u
#define READONLY_POLL_MAX_NS 2000000u

/* ---- registration ------------------------------------------------------------------------- */

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
    if (atomic_compare_exchange_strong_explicit(&w->pids[k], &expected, pid, memory_order_relaxed,
                                                memory_order_relaxed))
      return (int)k;
  }
  return -1;
}

/* Unregisters. If someone freed our entry believing us dead, they already took our count. */
static void leave(lxshm__waitlist *w, int entry) {
  uint32_t pid = lxshm__pid();
  if (entry < 0 || atomic_compare_exchange_strong_explicit(
                       &w->pids[entry], &pid, 0, memory_order_relaxed, memory_order_relaxed))
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

/* ---- spinning ----------------------------------------------------------------------------- */

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

/* Spins until ready or SPIN_NS (or the deadline) have passed; returns 1 if ready. While others
 * sleep on the same list (several consumers of a queue, subscribers of a topic), there are
 * likely more busy processes than CPUs: then the spinner yields its CPU at each look at the
 * clock, so that a process waiting for that CPU (the waker, perhaps) runs first. Alone, it
 * keeps its CPU, which a one-to-one exchange needs. Measured in the fan-out to four topic
 * subscribers on two CPUs: +15% delivered in C, +9% from Lua; 4 x 3 queues +18%; 1 x 1 same. */
static int spin(lxshm__object *o, lxshm__waitlist *w, lxshm__ready_fn ready, void *ctx,
                uint64_t deadline) {
  uint64_t now = lxshm__clock_ns(), stop;
  unsigned i;
  if (now >= deadline)
    return 0;
  stop = deadline - now < SPIN_NS ? deadline : now + SPIN_NS;
  for (i = 1;; i++) {
    cpu_relax();
    if (ready(o, ctx))
      return 1;
    if (i % 64 == 0) {
      if (lxshm__clock_ns() >= stop)
        return 0;
#ifdef SPIN_YIELD_ALWAYS
      lxshm__yield();
#else
      if (atomic_load_explicit(&w->sleepers, memory_order_relaxed) > 0)
        lxshm__yield(); /* others wait too: whoever waits for this CPU (the waker?) goes first */
#endif
    }
  }
}

/* ---- waiting ------------------------------------------------------------------------------ */

/* The read-only waiter: may not register, so it sleeps on the word at growing intervals. */
static lxshm_status poll_until(lxshm__object *o, lxshm__waitlist *w, lxshm__ready_fn ready,
                               void *ctx, uint64_t deadline, const lxshm__interrupt *intr,
                               lxshm_error *err) {
  uint64_t pause = READONLY_POLL_MIN_NS;
  for (;;) {
    uint32_t word = atomic_load_explicit(&w->word, memory_order_acquire);
    uint64_t now = lxshm__clock_ns();
    lxshm_status st;
    if (ready(o, ctx))
      return LXSHM_OK;
    if (now >= deadline)
      return LXSHM_TIMEOUT;
    st = lxshm__word_wait(&o->map, &w->word, word, deadline - now < pause ? deadline : now + pause,
                          err);
    if (st != LXSHM_OK && st != LXSHM_TIMEOUT)
      return st;
    if (intr != NULL && intr->check(intr->ud))
      return LXSHM__INTERRUPTED;
    if (pause < READONLY_POLL_MAX_NS)
      pause *= 2;
  }
}

lxshm_status lxshm__wait_until(lxshm__object *o, lxshm__waitlist *w, lxshm__ready_fn ready,
                               void *ctx, uint64_t deadline, const lxshm__interrupt *intr,
                               lxshm_error *err) {
  lxshm_status st;

  if (ready(o, ctx))
    return LXSHM_OK;
  if (may_spin(w) && spin(o, w, ready, ctx, deadline))
    return LXSHM_OK;
  if (o->readonly)
    return poll_until(o, w, ready, ctx, deadline, intr, err);
  for (;;) {
    /* Read the word before the last check: a change after the check bumps it, and the sleep
     * below then returns at once instead of missing the change. */
    uint32_t word = atomic_load_explicit(&w->word, memory_order_acquire);
    uint64_t now = lxshm__clock_ns(), slice;
    int entry;

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
    /* Others still asleep here: likely more busy processes than CPUs, and this wake-up may
     * have just preempted the waker, which would rather go on changing things. Let it: what it
     * adds meanwhile is read in one go (on an idle CPU the yield returns at once). */
    if (atomic_load_explicit(&w->sleepers, memory_order_relaxed) > 0)
      lxshm__yield();
    if (ready(o, ctx))
      return LXSHM_OK;
    if (intr != NULL && intr->check(intr->ud))
      return LXSHM__INTERRUPTED;
  }
}

/* ---- waking ------------------------------------------------------------------------------- */

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
  uint32_t n = 0, sleepers;
  unsigned k;
  if (!o->readonly)
    heal(w);
  /* The pid entries, not the count: a waiter killed between counting itself and claiming its
   * entry stays counted (wakers then look at `armed` in vain, which costs nothing), but it must
   * not be reported as waiting. Only when every entry is taken may more be waiting untracked. */
  for (k = 0; k < LXSHM__WAITER_PIDS; k++)
    n += atomic_load_explicit(&w->pids[k], memory_order_relaxed) != 0;
  sleepers = atomic_load_explicit(&w->sleepers, memory_order_relaxed);
  return n == LXSHM__WAITER_PIDS && sleepers > n ? sleepers : n;
}

/* topic_c.c — the C baselines of bench/topic_bench.lua: how fast the machine moves small
 * messages between processes without Lua. Benchmark-only, never part of lxshm; built by the
 * bench itself (cc ... bench/helpers/topic_c.c + the core's sources).
 *
 *   topic_c spsc N SIZE            a C single-producer single-consumer ring in shared memory
 *                                  between two processes: N messages of SIZE bytes, each side
 *                                  sleeping on a futex only when it has nothing to do. Prints
 *                                  "spsc MSGS_PER_S"
 *   topic_c fanout NAME N SIZE S   lxshm's C API: this process publishes N messages of SIZE
 *                                  bytes to topic NAME (which it creates, large enough to hold
 *                                  them all) while S subscriber processes read them with
 *                                  lxshm_subscription_next. Prints "fanout DELIVERED_PER_S
 *                                  PUBLISHED_PER_S LOST" (delivered: the sum over subscribers,
 *                                  from the first publish to the last message read; with S 0,
 *                                  the publisher alone, it is nan) */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lxshm.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the SPSC ring ------------------------------------------------------------------------ */

#define SLOTS 16384u /* messages the ring holds; a power of two */
#define SLOT 64u     /* bytes per slot: messages up to 64 bytes */

typedef struct spsc {
  _Alignas(64) _Atomic uint64_t head; /* consumed so far; written by the consumer */
  _Alignas(64) _Atomic uint64_t tail; /* produced so far; written by the producer */
  _Alignas(64) _Atomic uint32_t consumer_sleeps; /* futex word: the consumer waits on it */
  _Alignas(64) _Atomic uint32_t producer_sleeps; /* futex word: the producer waits on it */
  _Alignas(64) unsigned char slots[SLOTS][SLOT];
} spsc;

static void futex_wait(_Atomic uint32_t *w, uint32_t v) {
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, v, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w) {
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Waits until cond holds: spins a little, then announces itself on `flag` and sleeps. */
#define WAIT_FOR(cond, flag)                                   \
  do {                                                         \
    int spins_ = 0;                                            \
    while (!(cond)) {                                          \
      if (++spins_ < 2000) {                                   \
        __builtin_ia32_pause();                                \
        continue;                                              \
      }                                                        \
      atomic_store(&(flag), 1);                                \
      if (!(cond))                                             \
        futex_wait(&(flag), 1);                                \
      atomic_store(&(flag), 0);                                \
    }                                                          \
  } while (0)

/* After publishing: wakes the other side if it said it sleeps (a full fence first). */
#define WAKE(flag)                                             \
  do {                                                         \
    atomic_thread_fence(memory_order_seq_cst);                 \
    if (atomic_load_explicit(&(flag), memory_order_relaxed))   \
      futex_wake(&(flag));                                     \
  } while (0)

static int run_spsc(long n, size_t size) {
  spsc *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  unsigned char msg[SLOT], got[SLOT];
  double t0, t;
  pid_t pid;
  long i;
  if (r == MAP_FAILED || size > SLOT)
    return 1;
  memset(msg, 'x', sizeof msg);
  if ((pid = fork()) == 0) { /* the consumer */
    for (i = 0; i < n; i++) {
      uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
      WAIT_FOR(atomic_load_explicit(&r->tail, memory_order_acquire) > head, r->consumer_sleeps);
      memcpy(got, r->slots[head % SLOTS], size);
      atomic_store_explicit(&r->head, head + 1, memory_order_release);
      WAKE(r->producer_sleeps);
    }
    _exit(got[0] == 'x' ? 0 : 1);
  }
  t0 = now();
  for (i = 0; i < n; i++) {
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    WAIT_FOR(tail - atomic_load_explicit(&r->head, memory_order_acquire) < SLOTS,
             r->producer_sleeps);
    memcpy(r->slots[tail % SLOTS], msg, size);
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    WAKE(r->consumer_sleeps);
  }
  waitpid(pid, NULL, 0);
  t = now() - t0;
  printf("spsc %.0f\n", (double)n / t);
  return 0;
}

/* ---- fan-out through lxshm's C API -------------------------------------------------------- */

static int run_fanout(const char *name, long n, size_t size, int subs) {
  double *done = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  _Atomic int *ready = (_Atomic int *)(done + 64);
  uint64_t *lost = (uint64_t *)(done + 128);
  unsigned char msg[256];
  lxshm_topic *t;
  lxshm_error err;
  double t0, published, last = 0;
  long i;
  int k;

  if (done == MAP_FAILED || size > sizeof msg)
    return 1;
  lxshm_remove(name, NULL);
  if (lxshm_topic_create(name, (uint64_t)(n + 16) * (size + 16), 0, 0600, &t, &err) != LXSHM_OK) {
    fprintf(stderr, "topic_c: %s\n", err.message);
    return 1;
  }
  for (k = 0; k < subs; k++)
    if (fork() == 0) {
      lxshm_subscription *sub;
      unsigned char buf[256];
      uint64_t seq, l, sum = 0;
      size_t len;
      lxshm_topic_subscribe(t, NULL, LXSHM_TOPIC_NEW, &sub, &err);
      atomic_fetch_add(ready, 1);
      for (i = 0; i < n; i++) {
        if (lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, &l, 10, &err) != LXSHM_OK)
          _exit(1);
        sum += l;
      }
      done[k] = now();
      lost[k] = sum;
      _exit(0);
    }
  while (atomic_load(ready) < subs)
    usleep(1000);
  memset(msg, 'x', size);
  t0 = now();
  for (i = 0; i < n; i++)
    lxshm_topic_publish(t, msg, size, -1, NULL, &err);
  published = now() - t0;
  for (k = 0; k < subs; k++)
    wait(NULL);
  for (k = 0; k < subs; k++) {
    if (done[k] - t0 > last)
      last = done[k] - t0;
    lost[subs] += lost[k];
  }
  printf("fanout %.0f %.0f %llu\n", (double)n * subs / last, (double)n / published,
         (unsigned long long)lost[subs]);
  lxshm_topic_close(t);
  lxshm_remove(name, NULL);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "spsc") == 0)
    return run_spsc(atol(argv[2]), (size_t)atol(argv[3]));
  if (argc == 6 && strcmp(argv[1], "fanout") == 0)
    return run_fanout(argv[2], atol(argv[3]), (size_t)atol(argv[4]), atoi(argv[5]));
  fprintf(stderr, "usage: topic_c spsc N SIZE | fanout NAME N SIZE SUBSCRIBERS\n");
  return 2;
}

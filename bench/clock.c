/* clock.c — benchmark-only Lua module `bench.clock`: a monotonic wall clock, CPU time, and a
 * plain memcpy timed in C as the baseline the segment figures are compared with; plus the few
 * process facts the cross-process benchmarks need (sleep, pid, context switches). Never part of
 * lxshm itself. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* now() -> monotonic seconds */
static int clock_now(lua_State *L) {
  lua_pushnumber(L, now());
  return 1;
}

/* cpu([who]) -> user+system CPU seconds of this process ("self") or of its reaped children. */
static int clock_cpu(lua_State *L) {
  static const char *const who[] = {"self", "children", NULL};
  struct rusage ru;
  getrusage(luaL_checkoption(L, 1, "self", who) == 0 ? RUSAGE_SELF : RUSAGE_CHILDREN, &ru);
  lua_pushnumber(L, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                        (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
  return 1;
}

/* cputime() -> CPU seconds of this process, to the nanosecond (CLOCK_PROCESS_CPUTIME_ID): fine
 * enough to see a 50 µs spin, which getrusage's totals may not resolve on every kernel. */
static int clock_cputime(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
  return 1;
}

/* sleep(seconds): a plain nanosleep, resumed after signals, so that a bench can idle without a
 * shell or a socket library. */
static int clock_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  struct timespec ts;
  if (s <= 0)
    return 0;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0)
    ;
  return 0;
}

/* pid() -> this process's id (so a parent can read /proc/PID of a child it started). */
static int clock_pid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

/* switches() -> voluntary, involuntary context switches of this process so far (getrusage): a
 * voluntary switch is a sleep in the kernel, e.g. a futex wait or a blocking read. */
static int clock_switches(lua_State *L) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  lua_pushinteger(L, (lua_Integer)ru.ru_nvcsw);
  lua_pushinteger(L, (lua_Integer)ru.ru_nivcsw);
  return 2;
}

/* memcpy(size, count) -> seconds for `count` copies of `size` bytes between two buffers that
 * were touched first (hot caches and mapped pages, as a reused value buffer is). */
static int clock_memcpy(lua_State *L) {
  size_t size = (size_t)luaL_checkinteger(L, 1);
  lua_Integer i, count = luaL_checkinteger(L, 2);
  char *a = malloc(size + 1), *b = malloc(size + 1);
  volatile char sink;
  double t0, t;
  if (a == NULL || b == NULL) {
    free(a);
    free(b);
    return luaL_error(L, "out of memory");
  }
  memset(a, 1, size + 1);
  memset(b, 2, size + 1);
  t0 = now();
  for (i = 0; i < count; i++) {
    memcpy((i & 1) ? a : b, (i & 1) ? b : a, size);
    sink = a[i % (lua_Integer)(size + 1)]; /* keep the copies observable */
  }
  t = now() - t0;
  (void)sink;
  free(a);
  free(b);
  lua_pushnumber(L, t);
  return 1;
}

int luaopen_bench_clock(lua_State *L);

__attribute__((visibility("default"))) int luaopen_bench_clock(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"now", clock_now},       {"cpu", clock_cpu}, {"cputime", clock_cputime},
      {"sleep", clock_sleep},   {"pid", clock_pid}, {"switches", clock_switches},
      {"memcpy", clock_memcpy}, {NULL, NULL},
  };
  luaL_newlibtable(L, funcs);
  luaL_setfuncs(L, funcs, 0);
  return 1;
}

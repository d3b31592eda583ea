/* test_win.c — Windows tests of the lxshm core through src/lxshm.h, run under Wine on Linux
 * (make test-windows) or on Windows itself. A few tests reach into internal.h and object.h to
 * hold a lock, play a process that dies mid-commit, or see the platform's verdict on a lock.
 * Each test runs in its own process, in a job object, under a deadline: a hang or a crash is
 * a failure, and the job takes the test's helper processes down with it. Test-only code.
 *
 * Usage: test_win [SUBSTRING]  runs the tests whose name contains SUBSTRING (default: all).
 * LXSHM_TEST_SLOW=N multiplies every deadline by N. Internally the runner starts itself as
 * `test_win --test N` and tests start helpers as `test_win --role ROLE ARGS...`. */
#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1 /* C99 printf (%zu), which FORMAT below checks against */
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <aclapi.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lxshm.h"
#include "object.h"

/* ==== the runner ============================================================================== */

#define FORMAT(f, a) __attribute__((format(gnu_printf, f, a))) /* GCC's "printf" is msvcrt's */

#define DEADLINE_S 60.0 /* per test, times LXSHM_TEST_SLOW; Wine starts processes slowly */
#define NAME_BUF (LXSHM_NAME_MAX + 1)

typedef struct test {
  const char *name;
  void (*fn)(void);
} test;

static double slow = 1.0;   /* LXSHM_TEST_SLOW */
static char self[MAX_PATH]; /* this executable, to start helpers */
static char context[160];   /* what the current process is doing, shown with a failure */
static const char *role = "test";

/* Prints the failure of this process (the test or one of its helpers) and ends it. A helper's
 * failure fails the test through its exit status, and its reason is printed here. */
static _Noreturn void fail_at(const char *file, int line, const char *fmt, ...) FORMAT(3, 4);

static _Noreturn void fail_at(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  printf("# %s %lu: %s:%d: %s%s", role, (unsigned long)GetCurrentProcessId(), file, line, context,
         context[0] ? ": " : "");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
  ExitProcess(1);
}

/* Says what the process is doing now; shown with any failure. */
static FORMAT(1, 2) void note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(context, sizeof context, fmt, ap);
  va_end(ap);
}

#define FAIL(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)
#include "check.h" /* the CHECK macros, built on FAIL */

/* ---- time ------------------------------------------------------------------------------------ */

static double now_s(void) {
  LARGE_INTEGER c, f;
  QueryPerformanceCounter(&c);
  QueryPerformanceFrequency(&f);
  return (double)c.QuadPart / (double)f.QuadPart;
}

static void sleep_s(double s) {
  Sleep((DWORD)(s * 1000));
}

/* A bound meant to catch hangs, stretched like the deadlines. */
static double scaled(double s) {
  return s * slow;
}

static DWORD scaled_ms(double s) {
  return (DWORD)(scaled(s) * 1000);
}

/* ---- names and events ------------------------------------------------------------------------ */

/* An object name no other test, run or concurrent suite uses: "wt<pid>.<n>.<tag>". */
static void fresh_name(char out[NAME_BUF], const char *tag) {
  static unsigned counter;
  snprintf(out, NAME_BUF, "wt%lu.%u.%s", (unsigned long)GetCurrentProcessId(), counter++, tag);
  if (lxshm_check_name(out) != LXSHM_OK)
    FAIL("made an invalid name \"%s\"", out);
}

/* A manual-reset event named after this process: how helpers say "ready". The name goes to
 * helpers on their command line. */
static HANDLE make_event(char name[64], const char *tag) {
  static unsigned counter;
  HANDLE h;
  snprintf(name, 64, "Local\\wtest.%lu.%u.%s", (unsigned long)GetCurrentProcessId(), counter++,
           tag);
  if ((h = CreateEventA(NULL, TRUE, FALSE, name)) == NULL)
    FAIL("CreateEvent(%s): error %lu", name, GetLastError());
  return h;
}

static void set_event(const char *name) {
  HANDLE h = OpenEventA(EVENT_MODIFY_STATE, FALSE, name);
  if (h == NULL || !SetEvent(h))
    FAIL("setting event %s: error %lu", name, GetLastError());
  CloseHandle(h);
}

static void await_event(HANDLE h, double seconds, const char *what) {
  if (WaitForSingleObject(h, scaled_ms(seconds)) != WAIT_OBJECT_0)
    FAIL("%s did not happen within %g s", what, scaled(seconds));
}

/* ---- helper processes ------------------------------------------------------------------------ */

/* Starts `test_win --role ARGS`; its output goes where ours goes. The helper joins our job. */
static FORMAT(1, 2) HANDLE spawn(const char *fmt, ...) {
  char cmd[1024];
  STARTUPINFOA si;
  PROCESS_INFORMATION pi;
  va_list ap;
  int n = snprintf(cmd, sizeof cmd, "\"%s\" --role ", self);
  va_start(ap, fmt);
  vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
  va_end(ap);
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  if (!CreateProcessA(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi))
    FAIL("CreateProcess(%s): error %lu", cmd, GetLastError());
  CloseHandle(pi.hThread);
  return pi.hProcess;
}

/* Waits up to `seconds` for helper `h` and returns its exit code; fails if it does not end. */
static DWORD reap_code(HANDLE h, double seconds) {
  DWORD code;
  if (WaitForSingleObject(h, scaled_ms(seconds)) != WAIT_OBJECT_0)
    FAIL("helper still running after %g s", scaled(seconds));
  if (!GetExitCodeProcess(h, &code))
    FAIL("GetExitCodeProcess: error %lu", GetLastError());
  CloseHandle(h);
  return code;
}

/* Waits for helper `h` and fails unless it exited with status 0. */
static void reap_ok(HANDLE h, double seconds) {
  DWORD code = reap_code(h, seconds);
  if (code != 0)
    FAIL("helper exited with status %lu", (unsigned long)code);
}

/* Ends helper `h` as TerminateProcess does (no code of its own runs) and reaps it. */
static void terminate(HANDLE h) {
  DWORD code;
  if (!TerminateProcess(h, 99))
    FAIL("TerminateProcess: error %lu", GetLastError());
  code = reap_code(h, 10);
  if (code != 99)
    FAIL("helper ended on its own (status %lu) before it was terminated", (unsigned long)code);
}

/* ---- values and internals -------------------------------------------------------------------- */

/* A segment's object: lxshm_segment embeds it first (object.h). */
static lxshm__object *obj_of(lxshm_segment *seg) {
  return (lxshm__object *)(void *)seg;
}

static uint32_t waiters_now(lxshm_segment *seg) {
  lxshm__stat st;
  lxshm__stat_get(seg, &st);
  return st.waiters;
}

/* Returns once `n` processes are registered as waiting on seg. */
static void await_waiters(lxshm_segment *seg, uint32_t n) {
  double end = now_s() + scaled(20);
  while (waiters_now(seg) < n) {
    if (now_s() > end)
      FAIL("%u waiters expected, %u registered", n, waiters_now(seg));
    sleep_s(0.005);
  }
}

static void lock_or_fail(lxshm_segment *seg) {
  lxshm_error err;
  CHECK_ST(lxshm__lock(seg, lxshm__deadline(scaled(10)), &err), LXSHM_OK);
}

/* Repair callback that only counts: tells whether the platform reported a dead owner. */
static int repairs;

static void count_repair(lxshm__object *o) {
  (void)o;
  repairs++;
}

/* Takes the segment lock as lxshm__lock does, but returns whether a dead owner was reported. */
static int lock_reporting_death(lxshm_segment *seg) {
  lxshm_error err;
  lxshm__object *o = obj_of(seg);
  repairs = 0;
  CHECK_ST(lxshm__object_lock(o, o->hdr->lock, lxshm__deadline(scaled(10)), count_repair, &err),
           LXSHM_OK);
  return repairs;
}

/* Scribbles over the idle slot as a writer killed between its bytes and the version would. */
static void scribble_idle_slot(lxshm_segment *seg) {
  lxshm__object *o = obj_of(seg);
  lxshm__header *h = o->hdr;
  uint64_t idle = (atomic_load(&h->u.segment.version) + 1) & 1;
  memset(o->data + idle * h->slot_stride, 0xa5, (size_t)h->slot_stride);
  atomic_store(&h->u.segment.slots[idle].length, h->capacity * 1000 + 7);
  atomic_store(&h->u.segment.slots[idle].version, atomic_load(&h->u.segment.version) + 1);
}

/* ==== helper roles ============================================================================ */

/* hold NAME EVENT HOW: opens NAME, commits "committed", takes the lock, scribbles over the idle
 * slot, says so on EVENT, then: HOW=sleep waits to be terminated; HOW=exit calls ExitProcess
 * holding the lock; HOW=thread does it all on a thread that then ends, and exits 0 later. */
static DWORD WINAPI hold_on_thread(LPVOID arg) {
  lxshm_segment *own = arg;
  lock_or_fail(own);
  scribble_idle_slot(own);
  return 0; /* the thread ends holding the lock */
}

static int role_hold(char **argv) {
  lxshm_segment *own;
  lxshm_error err;
  CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(own, "committed", 9, scaled(10), &err), LXSHM_OK);
  if (strcmp(argv[2], "thread") == 0) {
    HANDLE t = CreateThread(NULL, 0, hold_on_thread, own, 0, NULL);
    CHECK(t != NULL && WaitForSingleObject(t, scaled_ms(10)) == WAIT_OBJECT_0);
    set_event(argv[1]);
    Sleep(INFINITE);
  }
  lock_or_fail(own);
  scribble_idle_slot(own);
  set_event(argv[1]);
  if (strcmp(argv[2], "exit") == 0)
    ExitProcess(7);
  Sleep(INFINITE);
  return 1;
}

/* create-hold NAME READY GO: creates NAME (so that it alone has the lock's mutex open), says
 * READY, waits for GO, takes the lock, scribbles, and exits holding it. */
static int role_create_hold(char **argv) {
  lxshm_segment *own;
  lxshm_error err;
  HANDLE go = OpenEventA(SYNCHRONIZE, FALSE, argv[2]);
  CHECK(go != NULL);
  CHECK_ST(lxshm_create(argv[0], 64, LXSHM_DEFAULT_MODE, &own, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(own, "committed", 9, scaled(10), &err), LXSHM_OK);
  set_event(argv[1]);
  await_event(go, 20, "go");
  lock_or_fail(own);
  scribble_idle_slot(own);
  ExitProcess(7);
}

/* write NAME VALUE TIMEOUT: writes VALUE; exit 0 on OK, 2 on TIMEOUT. */
static int role_write(char **argv) {
  lxshm_segment *own;
  lxshm_error err;
  lxshm_status st;
  CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_OK);
  st = lxshm_write(own, argv[1], strlen(argv[1]), scaled(atof(argv[2])), &err);
  if (st != LXSHM_OK && st != LXSHM_TIMEOUT)
    FAIL("lxshm_write gave %s (%s)", lxshm_status_name(st), err.message);
  lxshm_close(own);
  return st == LXSHM_OK ? 0 : 2;
}

/* wait NAME VERSION TIMEOUT EXPECT: waits for a version other than VERSION; with EXPECT "-" it
 * must time out, else it must be woken and read EXPECT. */
static int role_wait(char **argv) {
  lxshm_segment *own;
  lxshm_error err;
  uint64_t now = 0;
  double timeout = atof(argv[2]);
  char buf[64];
  size_t len;
  CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_OK);
  if (strcmp(argv[3], "-") == 0) {
    double start = now_s();
    CHECK_ST(lxshm_wait(own, strtoull(argv[1], NULL, 10), timeout, &now, &err), LXSHM_TIMEOUT);
    CHECK(now_s() - start >= timeout - 0.02);
    return 0;
  }
  CHECK_ST(lxshm_wait(own, strtoull(argv[1], NULL, 10), timeout < 0 ? timeout : scaled(timeout),
                      &now, &err),
           LXSHM_OK);
  CHECK_U64(now, !=, strtoull(argv[1], NULL, 10));
  CHECK_ST(lxshm_read(own, buf, sizeof buf, &len, NULL, &err), LXSHM_OK);
  CHECK(len == strlen(argv[3]) && memcmp(buf, argv[3], len) == 0);
  lxshm_close(own);
  return 0;
}

/* wake NAME VALUE: writes VALUE once a process is registered as waiting on NAME. */
static int role_wake(char **argv) {
  lxshm_segment *own;
  lxshm_error err;
  CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_OK);
  await_waiters(own, 1);
  CHECK_ST(lxshm_write(own, argv[1], strlen(argv[1]), scaled(10), &err), LXSHM_OK);
  lxshm_close(own);
  return 0;
}

/* pong NAME ROUNDS: answers each "ping I" with "pong I", waiting for the next version. */
static int role_pong(char **argv) {
  lxshm_segment *own;
  lxshm_error err;
  int i, rounds = atoi(argv[1]);
  uint64_t seen = 0;
  char buf[128], want[32], reply[32];
  size_t len;
  CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_OK);
  for (i = 0; i < rounds; i++) {
    note("round %d", i);
    CHECK_ST(lxshm_wait(own, seen, scaled(20), &seen, &err), LXSHM_OK);
    CHECK_ST(lxshm_read(own, buf, sizeof buf, &len, &seen, &err), LXSHM_OK);
    snprintf(want, sizeof want, "ping %d", i);
    CHECK(len == strlen(want) && memcmp(buf, want, len) == 0);
    snprintf(reply, sizeof reply, "pong %d", i);
    CHECK_ST(lxshm_write(own, reply, strlen(reply), scaled(10), &err), LXSHM_OK);
    seen++;
  }
  lxshm_close(own);
  return 0;
}

/* count NAME TIMES START: adds 1 to the decimal counter in NAME, TIMES times, under the lock. */
static int role_count(char **argv) {
  lxshm_segment *own;
  lxshm_error err;
  int i, times = atoi(argv[1]);
  HANDLE start = OpenEventA(SYNCHRONIZE, FALSE, argv[2]);
  CHECK(start != NULL);
  CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_OK);
  await_event(start, 20, "start");
  for (i = 0; i < times; i++) {
    const char *data;
    size_t len;
    unsigned format;
    char text[32];
    long n;
    lock_or_fail(own);
    lxshm__current_locked(own, &data, &len, &format);
    CHECK(len < sizeof text);
    memcpy(text, data, len);
    text[len] = '\0';
    n = strtol(text, NULL, 10) + 1;
    snprintf(text, sizeof text, "%ld", n);
    CHECK_ST(lxshm__commit_locked(own, NULL, 0, text, strlen(text), LXSHM__FORMAT_RAW, &err), LXSHM_OK);
    lxshm__unlock(own);
  }
  lxshm_close(own);
  return 0;
}

/* attach NAME START: attaches after START is set; exit 10 if it created NAME, 11 if it opened
 * it. Stays attached a while so that the name outlives every attacher's start. */
static int role_attach(char **argv) {
  lxshm_segment *own;
  lxshm_error err;
  int created = -1;
  HANDLE start = OpenEventA(SYNCHRONIZE, FALSE, argv[1]);
  CHECK(start != NULL);
  await_event(start, 20, "start");
  CHECK_ST(lxshm_attach(argv[0], 64, LXSHM_DEFAULT_MODE, &own, &created, &err), LXSHM_OK);
  CHECK(created == 0 || created == 1);
  Sleep(scaled_ms(1.5));
  lxshm_close(own);
  return created ? 10 : 11;
}

/* produce NAME ID COUNT: pushes COUNT values "ID:I:" plus filler of varying length. */
#define VALUE_MAX 100

static size_t make_value(char *buf, unsigned id, unsigned i) {
  size_t n = (size_t)snprintf(buf, VALUE_MAX, "%u:%u:", id, i), len = 6 + (i * 37 + id) % 80;
  if (len < n)
    len = n;
  while (n < len) {
    buf[n] = (char)('a' + (i + n) % 26);
    n++;
  }
  return len;
}

static int role_produce(char **argv) {
  lxshm_queue *own;
  lxshm_error err;
  unsigned i, id = (unsigned)atoi(argv[1]), count = (unsigned)atoi(argv[2]);
  char buf[VALUE_MAX];
  CHECK_ST(lxshm_queue_open(argv[0], &own, &err), LXSHM_OK);
  for (i = 0; i < count; i++) {
    size_t len = make_value(buf, id, i);
    note("producer %u value %u", id, i);
    CHECK_ST(lxshm_queue_push(own, buf, len, scaled(20), &err), LXSHM_OK);
  }
  lxshm_queue_close(own);
  return 0;
}

/* consume NAME PRODUCERS COUNT: pops PRODUCERS * COUNT values and checks that each producer's
 * come whole, in order, none missing; then the queue must be empty. */
static int role_consume(char **argv) {
  lxshm_queue *own;
  lxshm_error err;
  unsigned producers = (unsigned)atoi(argv[1]), count = (unsigned)atoi(argv[2]);
  unsigned next[8] = {0}, total;
  char buf[VALUE_MAX], want[VALUE_MAX];
  size_t len;
  CHECK(producers <= 8);
  CHECK_ST(lxshm_queue_open(argv[0], &own, &err), LXSHM_OK);
  for (total = 0; total < producers * count; total++) {
    unsigned id, i;
    note("value %u", total);
    CHECK_ST(lxshm_queue_pop(own, buf, sizeof buf, &len, scaled(20), &err), LXSHM_OK);
    CHECK(len < sizeof buf);
    buf[len] = '\0';
    CHECK(sscanf(buf, "%u:%u:", &id, &i) == 2);
    CHECK(id < producers);
    CHECK_U64(i, ==, next[id]); /* in this producer's order, none skipped */
    CHECK(make_value(want, id, i) == len && memcmp(buf, want, len) == 0);
    next[id]++;
  }
  CHECK_ST(lxshm_queue_pop(own, buf, sizeof buf, &len, 0, &err), LXSHM_TIMEOUT);
  lxshm_queue_close(own);
  return 0;
}

/* produce-forever NAME ID READY: pushes "ID:I:..." for I = 0, 1, ... until terminated; sets
 * READY after the first push. */
static int role_produce_forever(char **argv) {
  lxshm_queue *own;
  lxshm_error err;
  unsigned i, id = (unsigned)atoi(argv[1]);
  char buf[VALUE_MAX];
  CHECK_ST(lxshm_queue_open(argv[0], &own, &err), LXSHM_OK);
  for (i = 0;; i++) {
    size_t len = make_value(buf, id, i);
    CHECK_ST(lxshm_queue_push(own, buf, len, scaled(20), &err), LXSHM_OK);
    if (i == 0)
      set_event(argv[2]);
  }
}

/* drain NAME ID READY: pops values of producer ID until terminated, checking each is whole and
 * later than the one before; sets READY after the first pop. */
static int role_drain(char **argv) {
  lxshm_queue *own;
  lxshm_error err;
  unsigned id = (unsigned)atoi(argv[1]), count = 0;
  long last = -1;
  char buf[VALUE_MAX], want[VALUE_MAX];
  size_t len;
  CHECK_ST(lxshm_queue_open(argv[0], &own, &err), LXSHM_OK);
  for (;;) {
    unsigned got_id, i;
    CHECK_ST(lxshm_queue_pop(own, buf, sizeof buf - 1, &len, scaled(20), &err), LXSHM_OK);
    buf[len] = '\0';
    CHECK(sscanf(buf, "%u:%u:", &got_id, &i) == 2 && got_id == id && (long)i > last);
    CHECK(make_value(want, id, i) == len && memcmp(buf, want, len) == 0);
    last = (long)i;
    if (count++ == 0)
      set_event(argv[2]);
  }
}

/* pop NAME EXPECT: pops one value, waiting up to 20 s, and checks it. */
static int role_pop(char **argv) {
  lxshm_queue *own;
  lxshm_error err;
  char buf[64];
  size_t len;
  CHECK_ST(lxshm_queue_open(argv[0], &own, &err), LXSHM_OK);
  CHECK_ST(lxshm_queue_pop(own, buf, sizeof buf, &len, scaled(20), &err), LXSHM_OK);
  CHECK(len == strlen(argv[1]) && memcmp(buf, argv[1], len) == 0);
  lxshm_queue_close(own);
  return 0;
}

/* read NAME EXPECT: opens NAME and checks its value; with EXPECT "-", that it does not exist. */
static int role_read(char **argv) {
  lxshm_segment *own;
  lxshm_error err;
  char buf[64];
  size_t len;
  if (strcmp(argv[1], "-") == 0) {
    CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_NOT_FOUND);
    return 0;
  }
  CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_OK);
  CHECK_ST(lxshm_read(own, buf, sizeof buf, &len, NULL, &err), LXSHM_OK);
  CHECK(len == strlen(argv[1]) && memcmp(buf, argv[1], len) == 0);
  lxshm_close(own);
  return 0;
}

/* create NAME EXPECT: creates NAME, expecting status EXPECT (a number). */
static int role_create(char **argv) {
  lxshm_segment *own;
  lxshm_error err;
  CHECK_ST(lxshm_create(argv[0], 64, LXSHM_DEFAULT_MODE, &own, &err), atoi(argv[1]));
  lxshm_close(own);
  return 0;
}

typedef struct role_entry {
  const char *name;
  int args;
  int (*fn)(char **argv);
} role_entry;

static const role_entry roles[] = {
    {"hold", 3, role_hold},       {"create-hold", 3, role_create_hold},
    {"write", 3, role_write},     {"wait", 4, role_wait},
    {"pong", 2, role_pong},       {"count", 3, role_count},
    {"attach", 2, role_attach},   {"produce", 3, role_produce},
    {"consume", 3, role_consume}, {"pop", 2, role_pop},
    {"read", 2, role_read},       {"create", 2, role_create},
    {"wake", 2, role_wake},       {"produce-forever", 3, role_produce_forever},
    {"drain", 3, role_drain},
};

/* ==== the tests =============================================================================== */

/* 1. What one process writes it reads back, and a second handle shares it. */
static void test_round_trip(void) {
  char name[NAME_BUF], full[100], over[101];
  lxshm_segment *seg, *other;
  lxshm_error err;
  lxshm__stat st;

  fresh_name(name, "round");
  CHECK_ST(lxshm_create(name, sizeof full, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_U64(lxshm_size(seg), ==, sizeof full);
  CHECK_VALUE(seg, "", 0, 0);
  CHECK_ST(lxshm_write(seg, "hello", 5, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, "hello", 5, 1);
  CHECK_ST(lxshm_open(name, &other, &err), LXSHM_OK);
  CHECK_U64(lxshm_size(other), ==, sizeof full);
  CHECK_VALUE(other, "hello", 5, 1);
  memset(full, 'f', sizeof full);
  CHECK_ST(lxshm_write(other, full, sizeof full, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, full, sizeof full, 2);
  memset(over, 'o', sizeof over);
  CHECK_ST(lxshm_write(seg, over, sizeof over, 1.0, &err), LXSHM_INVALID_SIZE);
  CHECK_HAS(err.message, "capacity");
  CHECK_VALUE(other, full, sizeof full, 2);
  lxshm__stat_get(seg, &st);
  CHECK_U64(st.writer_pid, ==, GetCurrentProcessId());
  CHECK(st.updated_ns > (int64_t)1600000000 * 1000000000); /* wall clock since 1970, in ns */
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(other);
  lxshm_close(seg);
}

/* 2. EXISTS, NOT_FOUND, INVALID_SIZE, and where the name lives (SPEC §2). */
static void test_statuses(void) {
  static const uint64_t bad[] = {0, LXSHM_SIZE_MAX + 1, UINT64_MAX};
  char name[NAME_BUF], missing[NAME_BUF], path[128];
  lxshm_segment *seg, *other;
  lxshm_queue *q;
  lxshm_error err;
  MEMORYSTATUSEX mem;
  HANDLE h, helper;
  size_t i;

  fresh_name(name, "st");
  fresh_name(missing, "missing");
  CHECK_ST(lxshm_create(name, 32, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_create(name, 32, LXSHM_DEFAULT_MODE, &other, &err), LXSHM_EXISTS);
  CHECK(other == NULL);
  CHECK_HAS(err.message, "already exists");
  helper = spawn("create %s %d", name, LXSHM_EXISTS); /* from another process too */
  reap_ok(helper, 20);
  CHECK_ST(lxshm_queue_create(name, 64, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_EXISTS);
  CHECK_ST(lxshm_queue_open(name, &q, &err), LXSHM_INVALID); /* a segment, not a queue */
  CHECK_HAS(err.message, "not a queue");

  CHECK_ST(lxshm_open(missing, &other, &err), LXSHM_NOT_FOUND);
  CHECK_HAS(err.message, "does not exist");
  CHECK_ST(lxshm_remove(missing, &err), LXSHM_NOT_FOUND);
  CHECK_ST(lxshm_queue_open(missing, &q, &err), LXSHM_NOT_FOUND);

  /* The name is Local\lxshm.<name> in the session namespace. */
  snprintf(path, sizeof path, "Local\\lxshm.%s", name);
  h = OpenFileMappingA(FILE_MAP_READ, FALSE, path);
  CHECK(h != NULL);
  CloseHandle(h);

  /* Sizes out of range, and a size the system cannot commit, leave the name free. */
  for (i = 0; i < sizeof bad / sizeof *bad; i++) {
    note("size %llu", (unsigned long long)bad[i]);
    CHECK_ST(lxshm_create(missing, bad[i], LXSHM_DEFAULT_MODE, &other, &err), LXSHM_INVALID_SIZE);
    CHECK(other == NULL);
  }
  note("%s", "");
  mem.dwLength = sizeof mem;
  CHECK(GlobalMemoryStatusEx(&mem));
  if (mem.ullTotalPageFile >= LXSHM_SIZE_MAX)
    FAIL("this machine can commit %llu bytes: no valid size is too large for it",
         (unsigned long long)mem.ullTotalPageFile);
  CHECK_ST(lxshm_create(missing, LXSHM_SIZE_MAX, LXSHM_DEFAULT_MODE, &other, &err),
           LXSHM_INVALID_SIZE);
  CHECK_HAS(err.message, "commit");
  CHECK_ST(lxshm_open(missing, &other, &err), LXSHM_NOT_FOUND);
  CHECK_ST(lxshm_create(missing, 8, LXSHM_DEFAULT_MODE, &other, &err), LXSHM_OK);
  lxshm_close(other);

  /* Names differing only in case are different names, as on POSIX. */
  fresh_name(missing, "Case");
  CHECK_ST(lxshm_create(missing, 8, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  *strchr(missing, 'C') = 'c';
  CHECK_ST(lxshm_create(missing, 8, LXSHM_DEFAULT_MODE, &other, &err), LXSHM_OK);
  lxshm_close(other);
  lxshm_close(seg);
}

/* 3. Names: SPEC §2's rule, and a refused name never reaches the OS. */
static void test_names(void) {
#define S16 "abcdefghijklmnop"
  /* The last is 65 characters, one more than LXSHM_NAME_MAX. */
  static const char *const invalid[] = {
      "",          ".a",       "-a",          "..",  "a/b", "a b", "a\\b",
      "Global\\x", "Local\\x", "caf\xc3\xa9", "a:b", "a*",  "a!b", S16 S16 S16 S16 "q"};
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_queue *q;
  lxshm_error err;
  size_t i, len;
  int created;

  for (i = 0; i < sizeof invalid / sizeof *invalid; i++) {
    note("invalid name %zu", i);
    CHECK_ST(lxshm_create(invalid[i], 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_INVALID);
    CHECK_HAS(err.message, "invalid name");
    CHECK_ST(lxshm_open(invalid[i], &seg, &err), LXSHM_INVALID);
    CHECK_ST(lxshm_attach(invalid[i], 64, LXSHM_DEFAULT_MODE, &seg, &created, &err), LXSHM_INVALID);
    CHECK_ST(lxshm_remove(invalid[i], &err), LXSHM_INVALID);
    CHECK_ST(lxshm_queue_create(invalid[i], 64, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_INVALID);
  }
  note("%s", "");
  CHECK_ST(lxshm_open(NULL, &seg, &err), LXSHM_INVALID);

  /* The longest name works end to end, across processes. */
  len = (size_t)snprintf(name, sizeof name, "wt%lu_-.", (unsigned long)GetCurrentProcessId());
  memset(name + len, 'L', LXSHM_NAME_MAX - len);
  name[LXSHM_NAME_MAX] = '\0';
  CHECK_ST(lxshm_create(name, 8, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "long", 4, 1.0, &err), LXSHM_OK);
  reap_ok(spawn("read %s long", name), 20);
  lxshm_close(seg);
}

/* 4. An object under our name that lxshm did not make is refused, never misread. */
static void test_foreign_objects(void) {
  char name[NAME_BUF], path[128];
  lxshm_segment *seg;
  lxshm_error err;
  HANDLE h;
  uint32_t *view;

  /* A mutex holding the name. */
  fresh_name(name, "mutex");
  snprintf(path, sizeof path, "Local\\lxshm.%s", name);
  CHECK((h = CreateMutexA(NULL, FALSE, path)) != NULL);
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_INVALID);
  CHECK_ST(lxshm_create(name, 8, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_EXISTS);
  CloseHandle(h);

  /* A mapping with other contents. */
  fresh_name(name, "mapping");
  snprintf(path, sizeof path, "Local\\lxshm.%s", name);
  h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 4096, path);
  CHECK(h != NULL);
  CHECK((view = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0)) != NULL);
  view[0] = 0x12345678u;
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_INVALID);
  CHECK_HAS(err.message, "not made by lxshm");
  CHECK_ST(lxshm_create(name, 8, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_EXISTS);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_INVALID);
  CHECK(view[0] == 0x12345678u); /* untouched */
  UnmapViewOfFile(view);
  CloseHandle(h);
}

/* 5. Two processes exchange values back and forth, each waking the other. */
static void test_exchange(void) {
  char name[NAME_BUF], buf[128], want[32];
  lxshm_segment *seg;
  lxshm_error err;
  uint64_t seen;
  size_t len;
  HANDLE helper;
  int i, rounds = 30;

  fresh_name(name, "pingpong");
  CHECK_ST(lxshm_create(name, 128, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  helper = spawn("pong %s %d", name, rounds);
  for (i = 0; i < rounds; i++) {
    char ping[32];
    note("round %d", i);
    snprintf(ping, sizeof ping, "ping %d", i);
    CHECK_ST(lxshm_write(seg, ping, strlen(ping), scaled(10), &err), LXSHM_OK);
    seen = 2 * (uint64_t)i + 1; /* ours; the answer may already have moved past it */
    CHECK_ST(lxshm_wait(seg, seen, scaled(20), &seen, &err), LXSHM_OK);
    CHECK_ST(lxshm_read(seg, buf, sizeof buf, &len, NULL, &err), LXSHM_OK);
    snprintf(want, sizeof want, "pong %d", i);
    CHECK(len == strlen(want) && memcmp(buf, want, len) == 0);
  }
  reap_ok(helper, 20);
  CHECK_U64(lxshm_version(seg), ==, 2 * rounds);
  lxshm_close(seg);
}

/* 6. A process terminated while holding the lock, in the middle of a commit: the next locker
 * (one already blocked, and a later one) gets the lock, and the value is the last committed. */
static void test_owner_terminated(void) {
  char name[NAME_BUF], ready_name[64];
  lxshm_segment *seg;
  lxshm_error err;
  HANDLE ready = make_event(ready_name, "ready"), holder, blocked;

  fresh_name(name, "term");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "before", 6, 1.0, &err), LXSHM_OK);
  holder = spawn("hold %s %s sleep", name, ready_name);
  await_event(ready, 20, "holder has the lock");
  CHECK_VALUE(seg, "committed", 9, 2);
  CHECK_ST(lxshm_write(seg, "refused", 7, 0.2, &err), LXSHM_TIMEOUT); /* it is held */
  blocked = spawn("write %s third 30", name);
  sleep_s(0.5); /* let it block on the mutex */
  terminate(holder);
  reap_ok(blocked, 30); /* it got the lock the terminated process abandoned */
  CHECK_VALUE(seg, "third", 5, 3);
  CHECK_ST(lxshm_write(seg, "after", 5, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, "after", 5, 4);

  /* Terminated again, with nobody waiting: the next locker is told the owner died. */
  ResetEvent(ready);
  holder = spawn("hold %s %s sleep", name, ready_name);
  await_event(ready, 20, "holder has the lock");
  terminate(holder);
  CHECK_VALUE(seg, "committed", 9, 5);
  CHECK_INT(lock_reporting_death(seg), ==, 1);
  lxshm__unlock(seg);
  CHECK_ST(lxshm_write(seg, "later", 5, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, "later", 5, 6);
  CHECK_INT(lock_reporting_death(seg), ==, 0); /* recovered once, then an ordinary lock */
  lxshm__unlock(seg);
  lxshm_close(seg);
}

/* 7. A process that calls ExitProcess holding the lock, and a thread that ends holding it. */
static void test_owner_exits(void) {
  char name[NAME_BUF], ready_name[64];
  lxshm_segment *seg;
  lxshm_error err;
  HANDLE ready = make_event(ready_name, "ready"), holder;

  fresh_name(name, "exit");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "before", 6, 1.0, &err), LXSHM_OK);
  holder = spawn("hold %s %s exit", name, ready_name);
  CHECK_INT(reap_code(holder, 20), ==, 7);
  CHECK_VALUE(seg, "committed", 9, 2);
  CHECK_INT(lock_reporting_death(seg), ==, 1);
  lxshm__unlock(seg);
  CHECK_ST(lxshm_write(seg, "after", 5, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, "after", 5, 3);

  /* The holder's thread ends, its process lives on. */
  ResetEvent(ready);
  holder = spawn("hold %s %s thread", name, ready_name);
  await_event(ready, 20, "holder's thread ended with the lock");
  CHECK_VALUE(seg, "committed", 9, 4);
  CHECK_INT(lock_reporting_death(seg), ==, 1);
  lxshm__unlock(seg);
  CHECK_ST(lxshm_write(seg, "after", 5, 1.0, &err), LXSHM_OK);
  terminate(holder);
  lxshm_close(seg);
}

/* 8. The owner dies holding the only handle of the lock's mutex, which vanishes with it: the
 * next locker makes a new mutex, and is still told that the owner died. */
static void test_owner_exits_with_the_mutex(void) {
  char name[NAME_BUF], ready_name[64], go_name[64];
  lxshm_segment *seg;
  lxshm_error err;
  HANDLE ready = make_event(ready_name, "ready"), go = make_event(go_name, "go"), holder;

  fresh_name(name, "vanish");
  holder = spawn("create-hold %s %s %s", name, ready_name, go_name);
  await_event(ready, 20, "creator ready");
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_OK); /* keeps the mapping, not the mutex */
  SetEvent(go);
  CHECK_INT(reap_code(holder, 20), ==, 7);
  CHECK_VALUE(seg, "committed", 9, 1);
  CHECK_INT(lock_reporting_death(seg), ==, 1);
  lxshm__unlock(seg);
  CHECK_ST(lxshm_write(seg, "after", 5, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, "after", 5, 2);
  lxshm_close(seg);
}

/* 9. Relocking from the owning thread fails with INVALID, as with POSIX's error-checking mutex;
 * the lock stays held exactly once. */
typedef struct try_write {
  lxshm_segment *seg;
  lxshm_status st;
} try_write;

static DWORD WINAPI write_from_thread(LPVOID arg) {
  try_write *t = arg;
  lxshm_error err;
  t->st = lxshm_write(t->seg, "thread", 6, 0.3, &err);
  return 0;
}

static void test_relock(void) {
  char name[NAME_BUF];
  lxshm_segment *seg, *other;
  lxshm_error err;
  try_write t;
  HANDLE thread;

  fresh_name(name, "relock");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_open(name, &other, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "kept", 4, 1.0, &err), LXSHM_OK);
  lock_or_fail(seg);
  CHECK_ST(lxshm__lock(seg, lxshm__deadline(1.0), &err), LXSHM_INVALID);
  CHECK_HAS(err.message, "already held");
  CHECK_ST(lxshm_write(seg, "lost", 4, 1.0, &err), LXSHM_INVALID);
  CHECK_ST(lxshm_write(other, "lost", 4, 1.0, &err), LXSHM_INVALID); /* another handle */
  CHECK_VALUE(seg, "kept", 4, 1);

  /* Another thread of this process is not the owner: it waits, and times out. */
  t.seg = other;
  thread = CreateThread(NULL, 0, write_from_thread, &t, 0, NULL);
  CHECK(thread != NULL && WaitForSingleObject(thread, scaled_ms(10)) == WAIT_OBJECT_0);
  CloseHandle(thread);
  CHECK_INT(t.st, ==, LXSHM_TIMEOUT);

  /* One unlock frees it for everyone: the refused relocks left no count behind. */
  lxshm__unlock(seg);
  reap_ok(spawn("write %s other 5", name), 20);
  CHECK_VALUE(seg, "other", 5, 2);
  CHECK_ST(lxshm_write(seg, "after", 5, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(other, "after", 5, 3);
  lxshm_close(other);
  lxshm_close(seg);
}

/* 10. A lock held elsewhere: TIMEOUT within the deadline, nothing changed. */
static void test_lock_timeout(void) {
  char name[NAME_BUF], ready_name[64];
  lxshm_segment *seg;
  lxshm_error err;
  HANDLE ready = make_event(ready_name, "ready"), holder;
  double start;

  fresh_name(name, "locktime");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  holder = spawn("hold %s %s sleep", name, ready_name);
  await_event(ready, 20, "holder has the lock");
  start = now_s();
  CHECK_ST(lxshm_write(seg, "late", 4, 0.3, &err), LXSHM_TIMEOUT);
  CHECK(now_s() - start >= 0.29);
  CHECK(now_s() - start < scaled(5));
  CHECK_ST(lxshm_write(seg, "late", 4, 0, &err), LXSHM_TIMEOUT); /* 0: one try */
  CHECK_VALUE(seg, "committed", 9, 1);
  terminate(holder);
  CHECK_ST(lxshm_write(seg, "now", 3, 5.0, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* 11. Three processes increment one counter under the lock: no update is lost. */
static void test_counter(void) {
  char name[NAME_BUF], start_name[64];
  lxshm_segment *seg;
  lxshm_error err;
  HANDLE start = make_event(start_name, "start"), helpers[3];
  int i;

  fresh_name(name, "counter");
  CHECK_ST(lxshm_create(name, 32, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "0", 1, 1.0, &err), LXSHM_OK);
  for (i = 0; i < 3; i++)
    helpers[i] = spawn("count %s 150 %s", name, start_name);
  SetEvent(start);
  for (i = 0; i < 3; i++)
    reap_ok(helpers[i], 60);
  CHECK_VALUE(seg, "450", 3, 451);
  lxshm_close(seg);
}

/* 12. Waiters in other processes are woken by a commit, all of them, and by nothing else. */
static void test_wait_woken(void) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  uint64_t now = 99;
  HANDLE waiters[3], helper;
  int i, woken = 0;

  fresh_name(name, "wake");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  for (i = 0; i < 3; i++)
    waiters[i] = spawn("wait %s 0 -1 woke", name); /* no timeout */
  await_waiters(seg, 3);
  sleep_s(0.2); /* asleep, not just registered */
  CHECK_U64(lxshm_version(seg), ==, 0);
  /* The platform finds all three asleep. (A waiter between two 200 ms slices is briefly not
   * registered: look again.) A wake-up without a change only makes them look, not return. */
  for (i = 0; i < 100; i++) {
    woken = lxshm__word_wake(&obj_of(seg)->map, &obj_of(seg)->hdr->u.segment.waiters.word);
    if (woken == 3)
      break;
    sleep_s(0.01);
  }
  CHECK_INT(woken, ==, 3);
  sleep_s(0.2);
  for (i = 0; i < 3; i++)
    CHECK(WaitForSingleObject(waiters[i], 0) == WAIT_TIMEOUT); /* still waiting */
  CHECK_ST(lxshm_write(seg, "woke", 4, 1.0, &err), LXSHM_OK);
  for (i = 0; i < 3; i++)
    reap_ok(waiters[i], 10);
  CHECK_INT(waiters_now(seg), ==, 0);

  /* And this process is woken by another's write, made once we are registered. */
  reap_ok(spawn("write %s again 5", name), 20); /* version 2 */
  CHECK_ST(lxshm_wait(seg, 1, 0, &now, &err), LXSHM_OK);
  CHECK_U64(now, ==, 2);
  helper = spawn("wake %s back", name);
  CHECK_ST(lxshm_wait(seg, 2, scaled(20), &now, &err), LXSHM_OK);
  CHECK_U64(now, ==, 3);
  CHECK_VALUE(seg, "back", 4, 3);
  reap_ok(helper, 20);
  lxshm_close(seg);
}

/* 13. Waits that time out: in this process and another, with no commit, and polls. */
static void test_wait_timeout(void) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  uint64_t now = 99;
  double start;
  HANDLE helper;

  fresh_name(name, "timeout");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  helper = spawn("wait %s 0 0.5 -", name);
  CHECK_ST(lxshm_wait(seg, 0, 0, &now, &err), LXSHM_TIMEOUT);
  CHECK_U64(now, ==, 99);
  start = now_s();
  CHECK_ST(lxshm_wait(seg, 0, 0.3, &now, &err), LXSHM_TIMEOUT);
  CHECK(now_s() - start >= 0.29);
  CHECK(now_s() - start < scaled(5));
  CHECK_HAS(err.message, "no new version");
  CHECK_ST(lxshm_wait(seg, 7, LXSHM_FOREVER, &now, &err), LXSHM_OK); /* already differs */
  CHECK_U64(now, ==, 0);
  reap_ok(helper, 20);
  CHECK_U64(lxshm_version(seg), ==, 0);
  lxshm_close(seg);
}

/* 14. A waiter terminated while asleep: not counted, and the next commit neither hangs nor
 * fails. */
static void test_waiter_terminated(void) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  HANDLE waiter;
  int i;

  fresh_name(name, "deadwait");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  waiter = spawn("wait %s 0 -1 never", name);
  await_waiters(seg, 1);
  terminate(waiter);
  CHECK_INT(waiters_now(seg), ==, 0);
  for (i = 0; i < 5; i++)
    CHECK_ST(lxshm_write(seg, "x", 1, 1.0, &err), LXSHM_OK);
  waiter = spawn("wait %s 5 -1 y", name); /* a new waiter is still woken */
  await_waiters(seg, 1);
  CHECK_ST(lxshm_write(seg, "y", 1, 1.0, &err), LXSHM_OK);
  reap_ok(waiter, 10);
  lxshm_close(seg);
}

/* 15. A queue with two producer processes and one consumer process: every value once, whole,
 * in each producer's order, though the small ring fills again and again. */
static void test_queue_producers(void) {
  char name[NAME_BUF];
  lxshm_queue *q;
  lxshm_error err;
  HANDLE consumer, producers[2];
  char buf[VALUE_MAX];
  size_t len;

  fresh_name(name, "qprod");
  CHECK_ST(lxshm_queue_create(name, 512, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);
  consumer = spawn("consume %s 2 400", name);
  producers[0] = spawn("produce %s 0 400", name);
  producers[1] = spawn("produce %s 1 400", name);
  reap_ok(producers[0], 60);
  reap_ok(producers[1], 60);
  reap_ok(consumer, 60);
  CHECK_U64(lxshm_queue_count(q), ==, 0);
  CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, 0, &err), LXSHM_TIMEOUT);
  lxshm_queue_close(q);
}

/* 16. A producer and a consumer terminated at any moment, maybe holding the push or the pop
 * lock: no half value, nothing pushed is lost but what the consumer took, counts right, and
 * both locks work afterwards. */
static void test_queue_terminated(void) {
  char name[NAME_BUF], ready_name[64], buf[VALUE_MAX], want[VALUE_MAX];
  lxshm_queue *q;
  lxshm_error err;
  HANDLE ready = make_event(ready_name, "ready"), producer, consumer;
  size_t len;
  unsigned j;

  fresh_name(name, "qterm");
  CHECK_ST(lxshm_queue_create(name, 2048, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);
  for (j = 0; j < 6; j++) {
    long last = -1;
    note("iteration %u", j);
    ResetEvent(ready);
    producer = spawn("produce-forever %s %u %s", name, j, ready_name);
    await_event(ready, 20, "first push");
    ResetEvent(ready);
    consumer = spawn("drain %s %u %s", name, j, ready_name);
    await_event(ready, 20, "first pop");
    sleep_s(0.002 * (j % 3));
    terminate(consumer);
    sleep_s(0.002 * (j % 2));
    terminate(producer);
    for (;;) { /* what is left: whole values of producer j, in order */
      unsigned id, i;
      lxshm_status st = lxshm_queue_pop(q, buf, sizeof buf - 1, &len, 0, &err);
      if (st == LXSHM_TIMEOUT)
        break;
      if (st != LXSHM_OK)
        FAIL("lxshm_queue_pop gave %s (\"%s\")", lxshm_status_name(st), err.message);
      buf[len] = '\0';
      CHECK(sscanf(buf, "%u:%u:", &id, &i) == 2 && id == j && (long)i > last);
      CHECK(make_value(want, id, i) == len && memcmp(buf, want, len) == 0);
      last = (long)i;
    }
    CHECK_U64(lxshm_queue_count(q), ==, 0);
    CHECK_U64(lxshm_queue_used(q), ==, 0);
    CHECK_ST(lxshm_queue_push(q, "alive", 5, 1.0, &err), LXSHM_OK);
    CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, 1.0, &err), LXSHM_OK);
    CHECK(len == 5 && memcmp(buf, "alive", 5) == 0);
  }
  lxshm_queue_close(q);
}

/* 17. Queue basics across processes: order, peek, full and empty, blocking on both sides. */
static void test_queue_basics(void) {
  char name[NAME_BUF], buf[64];
  lxshm_queue *q;
  lxshm_error err;
  HANDLE helper;
  size_t len;

  memset(buf, 'b', sizeof buf);
  fresh_name(name, "qbasic");
  CHECK_ST(lxshm_queue_create(name, 64, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);
  CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, 0, &err), LXSHM_TIMEOUT);
  CHECK_ST(lxshm_queue_push(q, buf, 57, 0, &err), LXSHM_INVALID_SIZE); /* 8 + 57 > 64 */
  CHECK_ST(lxshm_queue_push(q, "one", 3, 0, &err), LXSHM_OK);
  CHECK_ST(lxshm_queue_push(q, "two", 3, 0, &err), LXSHM_OK);
  CHECK_ST(lxshm_queue_peek(q, buf, sizeof buf, &len, &err), LXSHM_OK);
  CHECK(len == 3 && memcmp(buf, "one", 3) == 0);
  CHECK_ST(lxshm_queue_pop(q, buf, 2, &len, 0, &err), LXSHM_INVALID_SIZE); /* stays queued */
  CHECK_U64(lxshm_queue_count(q), ==, 2);
  reap_ok(spawn("pop %s one", name), 20);
  reap_ok(spawn("pop %s two", name), 20);

  /* A consumer blocked on the empty queue is woken by our push. */
  helper = spawn("pop %s late", name);
  sleep_s(0.5);
  CHECK_ST(lxshm_queue_push(q, "late", 4, 0, &err), LXSHM_OK);
  reap_ok(helper, 20);

  /* A producer (us) blocked on the full queue is woken by another process's pop. */
  CHECK_ST(lxshm_queue_push(q, "0123456789abcdef0123456789abcdef", 32, 0, &err), LXSHM_OK);
  CHECK_ST(lxshm_queue_push(q, "fill", 4, 0, &err), LXSHM_OK); /* 40 + 16 of 64 */
  CHECK_ST(lxshm_queue_push(q, "over", 4, 0, &err), LXSHM_TIMEOUT);
  helper = spawn("pop %s 0123456789abcdef0123456789abcdef", name);
  CHECK_ST(lxshm_queue_push(q, "over", 4, scaled(20), &err), LXSHM_OK);
  reap_ok(helper, 20);
  CHECK_U64(lxshm_queue_count(q), ==, 2);
  lxshm_queue_close(q);
}

/* 18. remove (SPEC §4): the name goes away at once, open handles keep working, and a later
 * create makes a new, empty object beside the old one. Also what Windows adds: an object lives
 * only while some process has it open. */
static void test_remove(void) {
  char name[NAME_BUF];
  lxshm_segment *first, *second, *again, *seg;
  lxshm_queue *q;
  lxshm_error err;
  int created;

  fresh_name(name, "rm");
  CHECK_ST(lxshm_create(name, 32, LXSHM_DEFAULT_MODE, &first, &err), LXSHM_OK);
  CHECK_ST(lxshm_open(name, &second, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(first, "one", 3, 1.0, &err), LXSHM_OK);

  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_NOT_FOUND);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_NOT_FOUND);
  reap_ok(spawn("read %s -", name), 20); /* gone for other processes too */

  /* Handles opened before the remove still share one object, lock included. */
  CHECK_ST(lxshm_write(second, "two", 3, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(first, "two", 3, 2);

  /* The name now makes a new, empty object, apart from the old one. */
  CHECK_ST(lxshm_create(name, 16, LXSHM_DEFAULT_MODE, &again, &err), LXSHM_OK);
  CHECK_U64(lxshm_size(again), ==, 16);
  CHECK_VALUE(again, "", 0, 0);
  CHECK_ST(lxshm_write(again, "three", 5, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(first, "two", 3, 2);
  CHECK_ST(lxshm_write(first, "four", 4, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(again, "three", 5, 1);
  CHECK_VALUE(second, "four", 4, 3);
  reap_ok(spawn("read %s three", name), 20);
  CHECK_ST(lxshm_create(name, 16, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_EXISTS);

  /* attach after a remove creates. */
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  CHECK_ST(lxshm_attach(name, 8, LXSHM_DEFAULT_MODE, &seg, &created, &err), LXSHM_OK);
  CHECK_INT(created, ==, 1);
  CHECK_VALUE(seg, "", 0, 0);
  CHECK_VALUE(again, "three", 5, 1);
  lxshm_close(seg);

  /* Windows: with its last handle closed, the object is gone, as if removed. */
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_NOT_FOUND);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_NOT_FOUND);
  lxshm_close(again);
  lxshm_close(second);
  lxshm_close(first);
  CHECK_ST(lxshm_create(name, 8, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_VALUE(seg, "", 0, 0);
  lxshm_close(seg);
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_NOT_FOUND);

  /* Queues too. */
  CHECK_ST(lxshm_queue_create(name, 64, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);
  CHECK_ST(lxshm_queue_push(q, "kept", 4, 0, &err), LXSHM_OK);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_NOT_FOUND);
  CHECK_U64(lxshm_queue_count(q), ==, 1);
  lxshm_queue_close(q);
}

/* 19. Many processes attach to a new name at once: exactly one creates it. */
static void test_attach_race(void) {
  char name[NAME_BUF], start_name[64];
  HANDLE start = make_event(start_name, "start"), helpers[4];
  int i, creators = 0;

  fresh_name(name, "race");
  for (i = 0; i < 4; i++)
    helpers[i] = spawn("attach %s %s", name, start_name);
  sleep_s(0.3);
  SetEvent(start);
  for (i = 0; i < 4; i++) {
    DWORD code = reap_code(helpers[i], 30);
    CHECK(code == 10 || code == 11);
    creators += code == 10;
  }
  CHECK_INT(creators, ==, 1);
}

/* 20. mode becomes the objects' DACL: the creating user always, the group and Everyone when
 * mode lets them in. */
static int aces_of(const char *name) {
  char path[128];
  PACL dacl = NULL;
  PSECURITY_DESCRIPTOR sd = NULL;
  ACL_SIZE_INFORMATION info;
  HANDLE h;
  DWORD rc;
  snprintf(path, sizeof path, "Local\\lxshm.%s", name);
  CHECK((h = OpenFileMappingA(READ_CONTROL, FALSE, path)) != NULL);
  rc =
      GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &dacl, NULL, &sd);
  CHECK(rc == ERROR_SUCCESS && dacl != NULL);
  CHECK(GetAclInformation(dacl, &info, sizeof info, AclSizeInformation));
  LocalFree(sd);
  CloseHandle(h);
  return (int)info.AceCount;
}

static void test_mode(void) {
  static const struct {
    unsigned mode;
    int aces;
  } cases[] = {{0600, 1}, {0, 1}, {0660, 2}, {0604, 2}, {0666, 3}};
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  size_t i;

  for (i = 0; i < sizeof cases / sizeof *cases; i++) {
    note("mode %o", cases[i].mode);
    fresh_name(name, "mode");
    CHECK_ST(lxshm_create(name, 8, cases[i].mode, &seg, &err), LXSHM_OK);
    CHECK_INT(aces_of(name), ==, cases[i].aces);
    CHECK_ST(lxshm_write(seg, "m", 1, 1.0, &err), LXSHM_OK);
    reap_ok(spawn("read %s m", name), 20); /* the same user, another process */
    lxshm_close(seg);
  }
}

static const test tests[] = {
    {"round trip", test_round_trip},
    {"statuses: EXISTS, NOT_FOUND, INVALID_SIZE", test_statuses},
    {"names", test_names},
    {"foreign objects", test_foreign_objects},
    {"two processes exchange values", test_exchange},
    {"lock owner terminated mid-commit", test_owner_terminated},
    {"lock owner exits, owner thread ends", test_owner_exits},
    {"lock owner exits with the only mutex handle", test_owner_exits_with_the_mutex},
    {"relock from the same thread", test_relock},
    {"lock timeout", test_lock_timeout},
    {"counter incremented by three processes", test_counter},
    {"wait: woken by another process", test_wait_woken},
    {"wait: timeouts", test_wait_timeout},
    {"wait: a terminated waiter", test_waiter_terminated},
    {"queue: two producer processes, one consumer", test_queue_producers},
    {"queue: producer and consumer terminated", test_queue_terminated},
    {"queue basics across processes", test_queue_basics},
    {"remove", test_remove},
    {"attach race", test_attach_race},
    {"mode and access", test_mode},
};

#define NTESTS ((int)(sizeof tests / sizeof *tests))

/* Runs test `index` in a new process inside a job object: when the deadline passes, the job
 * ends the test and every helper it started. Returns 1 if it passed. */
static int run_test(int number, int index) {
  char cmd[MAX_PATH + 32];
  STARTUPINFOA si;
  PROCESS_INFORMATION pi;
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits;
  HANDLE job = CreateJobObjectA(NULL, NULL);
  DWORD r, code = 1;
  double start = now_s();

  memset(&limits, 0, sizeof limits);
  limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
  if (job == NULL ||
      !SetInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof limits)) {
    printf("# job object: error %lu\n", GetLastError());
    return 0;
  }
  snprintf(cmd, sizeof cmd, "\"%s\" --test %d", self, index);
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  fflush(stdout);
  if (!CreateProcessA(NULL, cmd, NULL, NULL, FALSE, CREATE_SUSPENDED, NULL, NULL, &si, &pi)) {
    printf("# CreateProcess: error %lu\n", GetLastError());
    CloseHandle(job);
    return 0;
  }
  if (!AssignProcessToJobObject(job, pi.hProcess))
    printf("# AssignProcessToJobObject: error %lu\n", GetLastError());
  ResumeThread(pi.hThread);
  r = WaitForSingleObject(pi.hProcess, (DWORD)(scaled(DEADLINE_S) * 1000));
  if (r == WAIT_OBJECT_0)
    GetExitCodeProcess(pi.hProcess, &code);
  else
    printf("# timed out after %g s\n", scaled(DEADLINE_S));
  TerminateJobObject(job, 98); /* helpers left behind, if any */
  CloseHandle(job);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  if (r == WAIT_OBJECT_0 && code != 0)
    printf("# exit status %lu\n", (unsigned long)code);
  printf("%s %d - %s (%.2f s)\n", r == WAIT_OBJECT_0 && code == 0 ? "ok" : "not ok", number,
         tests[index].name, now_s() - start);
  fflush(stdout);
  return r == WAIT_OBJECT_0 && code == 0;
}

int main(int argc, char **argv) {
  const char *env = getenv("LXSHM_TEST_SLOW");
  int i, selected = 0, passed = 0, number = 0;
  const char *filter = NULL;

  setvbuf(stdout, NULL, _IONBF, 0);
  SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX); /* crashes exit, never ask */
  if (env != NULL && *env != '\0') {
    char *end;
    double f = strtod(env, &end);
    if (*end != '\0' || !(f > 0)) {
      fprintf(stderr, "LXSHM_TEST_SLOW must be a positive number, not \"%s\"\n", env);
      return 2;
    }
    slow = f;
  }
  if (GetModuleFileNameA(NULL, self, sizeof self) == 0)
    return 2;

  if (argc >= 3 && strcmp(argv[1], "--test") == 0) {
    i = atoi(argv[2]);
    if (i < 0 || i >= NTESTS)
      return 2;
    role = tests[i].name;
    tests[i].fn();
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "--role") == 0) {
    for (i = 0; i < (int)(sizeof roles / sizeof *roles); i++)
      if (strcmp(argv[2], roles[i].name) == 0) {
        if (argc != 3 + roles[i].args)
          return 2;
        role = roles[i].name;
        return roles[i].fn(argv + 3);
      }
    return 2;
  }

  if (argc > 1)
    filter = argv[1];
  for (i = 0; i < NTESTS; i++)
    selected += filter == NULL || strstr(tests[i].name, filter) != NULL;
  printf("1..%d\n", selected);
  for (i = 0; i < NTESTS; i++)
    if (filter == NULL || strstr(tests[i].name, filter) != NULL)
      passed += run_test(++number, i);
  printf("Windows: %d passed, %d failed\n", passed, selected - passed);
  return selected > 0 && passed == selected ? 0 : 1;
}

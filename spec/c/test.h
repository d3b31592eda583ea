/* test.h — everything a C test body of lxshm may call, on either OS. The bodies (tests_*.c) and
 * common.c are compiled into both runners; runner_posix.c and runner_win.c implement the calls
 * marked "runner": starting, killing and reaping helper processes, counters shared by the
 * processes of a test, failures, and the few facts that differ between the OSes' objects.
 * Test-only code, never linked into lxshm. */
#ifndef LXSHM_SPEC_TEST_H
#define LXSHM_SPEC_TEST_H

#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"
#include "layout.h"
#include "lxshm.h"
#include "object.h"

#define NAME_BUF (LXSHM_NAME_MAX + 1)

/* ---- the list --------------------------------------------------------------------------------
 * TEST(id) defines test_<id>, HELPER(id) helper_<id>; test_list.h lists both. A helper is a
 * role a test starts in another process with spawn("ID ARG..."): it gets its arguments as
 * strings and its return value is the process's exit status. */

#define TEST(id) void test_##id(void)
#define HELPER(id) int helper_##id(char **argv)

#include "test_list.h"

#define DECLARE_TEST(id, title) TEST(id);
#define DECLARE_HELPER(id, args) HELPER(id);
TEST_LIST(DECLARE_TEST)
HELPER_LIST(DECLARE_HELPER)
#undef DECLARE_TEST
#undef DECLARE_HELPER

typedef struct test_entry {
  const char *title;
  void (*fn)(void);
} test_entry;

typedef struct helper_entry {
  const char *name;
  int args; /* exactly this many arguments */
  int (*fn)(char **argv);
} helper_entry;

extern const test_entry all_tests[]; /* in list order (common.c) */
extern const int test_count;
const helper_entry *find_helper(const char *name); /* NULL if there is none */

/* ---- failures (runner) ------------------------------------------------------------------------
 * fail_at records the first failure of the running test with its reason and ends the calling
 * process, be it the test or one of its helpers (whose failure fails the test). */

_Noreturn void fail_at(const char *file, int line, const char *fmt, ...) LXSHM__PRINTF(3, 4);
#define FAIL(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)

/* Says what the process is doing now ("round 3"); shown with any failure. */
void note(const char *fmt, ...) LXSHM__PRINTF(1, 2);

#include "check.h" /* the CHECK macros, built on FAIL */

/* ---- time (common.c) ------------------------------------------------------------------------- */

extern double slow; /* LXSHM_TEST_SLOW: multiplies every bound meant to catch a hang */

double now_s(void);      /* monotonic clock, seconds */
void sleep_s(double s);  /* sleeps s seconds, whatever signals arrive */
double scaled(double s); /* s * slow */

/* ---- helper processes (runner) ----------------------------------------------------------------
 * Helpers belong to the test: when it ends, however, the runner ends them too. Every wait below
 * takes unscaled seconds and stretches them by LXSHM_TEST_SLOW. */

typedef intptr_t helper; /* a process id on POSIX, a process handle on Windows */

/* Starts helper "ID ARG..." (words separated by single spaces) in a new process. */
helper spawn(const char *fmt, ...) LXSHM__PRINTF(1, 2);

/* Waits for h to end and returns its exit status; fails if it is still running after `seconds`
 * or was killed. */
int reap_code(helper h, double seconds);

/* As reap_code, and fails unless the status is 0 (common.c). */
void reap_ok(helper h, double seconds);

/* Waits up to `seconds` for h: returns 1 once it ended (failing unless with status 0), 0 if it is
 * still running. reap_within(h, 0) only looks. */
int reap_within(helper h, double seconds);

/* Ends the calling process at once with exit status `code`, running none of its exit handlers
 * (nor leak checks): how a helper dies holding a lock, as a crashing process would. */
_Noreturn void die(int code);

/* Ends h at once, as SIGKILL or TerminateProcess do (none of its code runs), and reaps it; fails
 * if it had ended on its own first. */
void kill_helper(helper h);

/* A helper blocked without a timeout, which the caller has just released, must end promptly. */
#define REAP_WOKEN(h)                                                        \
  do {                                                                       \
    if (!reap_within((h), 5))                                                \
      FAIL("helper %s still blocked %g s after its release", #h, scaled(5)); \
  } while (0)

/* ---- what the processes of one test share (runner) --------------------------------------------
 * Cleared before each test. Counters only grow: post adds one, await_posts sleeps until a
 * counter reaches a value, so that a process can wait for another's step without a pipe. */

#define COUNTERS 8

typedef struct scratch {
  _Atomic uint32_t counter[COUNTERS]; /* post / await_posts */
  _Atomic uint64_t word[4];           /* free for a test to hand a helper a number */
  char text[NAME_BUF];                /* free for a test to hand a helper a name */
} scratch;

extern scratch *shared;

void post(int counter);
uint32_t posts(int counter);
/* Returns once counter >= n; fails after `seconds`, saying `what` did not happen. */
void await_posts(int counter, uint32_t n, double seconds, const char *what);

/* Runs fn(arg) on a new thread of this process and waits up to `seconds` for it to end. */
void run_thread(void (*fn)(void *arg), void *arg, double seconds);

/* Runs the calling process on the which-th processor it may use, if it may use two or more. */
void pin_to_cpu(int which);

/* ---- the OS's objects (runner) --------------------------------------------------------------- */

/* 1 where a name outlives its handles until removed (POSIX), 0 where an object ends with its
 * last handle (Windows). */
extern const int names_outlive_handles;

/* Whether the OS holds an object under lxshm's name for `name` (SPEC §2: /dev/shm/lxshm.NAME,
 * Local\lxshm.NAME). */
int os_object_exists(const char *name);

/* A valid capacity the OS cannot back now, and a word its refusal's message contains; fails the
 * test where every valid size would fit. */
uint64_t os_size_without_room(const char **says);

/* Lists `name` for removal after the test, however it ends (POSIX; Windows objects end with
 * their processes). */
void name_made(const char *name);

/* ---- shared helpers (common.c) --------------------------------------------------------------- */

/* A name no other test, run or concurrent suite uses: "ct<pid>.<n>.<tag>". */
void fresh_name(char out[NAME_BUF], const char *tag);

/* Fails unless the segment's current value is exactly `len` bytes of `data`, committed as
 * `version`. */
#define CHECK_VALUE(seg, data, len, version) \
  check_value(__FILE__, __LINE__, (seg), (data), (len), (version))
void check_value(const char *file, int line, lxshm_segment *seg, const void *data, size_t len,
                 uint64_t version);

/* The object (header, data, lock) behind a handle: lxshm_segment and lxshm_queue embed it first,
 * so that a test can play a process that dies holding a lock or mid-commit. */
lxshm__object *seg_object(lxshm_segment *seg);
lxshm__object *queue_object(lxshm_queue *q);

uint32_t waiters_now(lxshm_segment *seg);
/* Returns once n processes are registered as waiting on seg; fails after 20 s. */
void await_waiters(lxshm_segment *seg, uint32_t n);

/* Takes the segment lock as lxshm_write would, failing after 10 s. */
void lock_or_fail(lxshm_segment *seg);
/* Takes it the same way; returns 1 if the platform said its owner had died. */
int lock_reporting_death(lxshm_segment *seg);

/* Scribbles over the idle slot as a writer killed between its bytes and the version would. */
void scribble_idle_slot(lxshm_segment *seg);

/* Self-checking values of 256 KiB to 1 MiB: the first 8 bytes hold a counter n, the length and
 * every later byte derive from n, so that a value mixed from two writes, or cut short, fails
 * check_pattern, which otherwise returns n. */
#define BIG_CAP ((size_t)1 << 20)
size_t fill_pattern(unsigned char *buf, uint64_t n);
uint64_t check_pattern(const unsigned char *buf, size_t len);

/* Queue values "ID:I:" and filler of a length derived from both; make_value returns it. */
#define VALUE_MAX 100
size_t make_value(char *buf, unsigned id, unsigned i);

#endif

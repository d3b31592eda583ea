/* test_core.c — C tests of the lxshm core through src/lxshm.h, no Lua. A few tests also reach
 * into internal.h (to play a process that dies holding the lock or mid-commit) and layout.h (to
 * forge damaged headers). Each test runs in its own process under a deadline: a hang or a crash
 * is a failure. Test-only code, never linked into lxshm.
 *
 * Usage: test_core [SUBSTRING]  runs the tests whose name contains SUBSTRING (default: all).
 * LXSHM_TEST_SLOW=N multiplies every deadline by N (a float; slow machines, valgrind). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "layout.h"
#include "lxshm.h"

/* ==== the runner ============================================================================
 *
 * The runner forks one process per test and waits for it until the deadline; a test still
 * running then is killed with its whole process group (the test and every helper it forked).
 * A test passes when its process exits with status 0 and no process of the test recorded a
 * failure. Failures are recorded on a shared "board" so that a helper process can fail the
 * test with its own reason; the board also lists the names the test made, which the runner
 * removes after the test however it ended. */

#define DEADLINE_S 20.0 /* per test, times LXSHM_TEST_SLOW */
#define MAX_NAMES 512   /* segment names one test may make */
#define NAME_BUF (LXSHM_NAME_MAX + 1)

typedef struct test {
  const char *name;
  void (*fn)(void);
} test;

/* Shared by the runner and all processes of the running test; cleared before each test. */
typedef struct board {
  atomic_int failed; /* set by the first process to record a failure, which owns `reason` */
  char reason[1024]; /* "file:line: what went wrong" */
  atomic_int nnames; /* entries of `names` claimed so far */
  char names[MAX_NAMES][NAME_BUF]; /* every segment name the test made, for the cleanup */
} board;

static board *the_board;
static double slow = 1.0; /* LXSHM_TEST_SLOW */
static char context[160]; /* what the current process is doing, added to its failure reason */

/* Records the first failure of the running test and ends the calling process, be it the test
 * itself or one of its helpers (whose failure thus fails the test with its own reason). */
static _Noreturn void fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static _Noreturn void fail_at(const char *file, int line, const char *fmt, ...) {
  int expected = 0;
  if (atomic_compare_exchange_strong(&the_board->failed, &expected, 1)) {
    char *out = the_board->reason;
    size_t room = sizeof the_board->reason;
    int n = snprintf(out, room, "%s:%d: %s%s", file, line, context, context[0] ? ": " : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, room - (size_t)n, fmt, ap);
    va_end(ap);
  }
  _exit(1);
}

/* Says what the process is doing now ("name 3", "iteration 17"); shown with any failure. */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(context, sizeof context, fmt, ap);
  va_end(ap);
}

#define FAIL(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)
#include "check.h" /* the CHECK macros, built on FAIL */

/* ---- time ---------------------------------------------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps `s` seconds, resuming after signals. */
static void sleep_s(double s) {
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    continue;
}

/* A bound meant to catch hangs, stretched like the deadlines. */
static double scaled(double s) {
  return s * slow;
}

/* ---- names --------------------------------------------------------------------------------- */

/* Lists `name` for the runner's cleanup. */
static void register_name(const char *name) {
  int i = atomic_fetch_add(&the_board->nnames, 1);
  if (i >= MAX_NAMES)
    FAIL("a test may make at most %d names", MAX_NAMES);
  snprintf(the_board->names[i], NAME_BUF, "%s", name);
}

/* A segment name no other test, run or concurrent suite uses: "ct<pid>.<n>.<tag>". */
static void fresh_name(char out[NAME_BUF], const char *tag) {
  static unsigned counter;
  snprintf(out, NAME_BUF, "ct%ld.%u.%s", (long)getpid(), counter++, tag);
  if (lxshm_check_name(out) != LXSHM_OK)
    FAIL("made an invalid name \"%s\"", out);
  register_name(out);
}

/* Where the POSIX backend keeps segment `name`: its shm_open name and its file (SPEC §2). */
static void os_name(char out[NAME_BUF + 16], const char *name) {
  snprintf(out, NAME_BUF + 16, "/lxshm.%s", name);
}

static void shm_file(char out[NAME_BUF + 16], const char *name) {
  snprintf(out, NAME_BUF + 16, "/dev/shm/lxshm.%s", name);
}

static int shm_file_exists(const char *name) {
  char path[NAME_BUF + 16];
  struct stat sb;
  shm_file(path, name);
  return stat(path, &sb) == 0;
}

/* ---- helper processes ---------------------------------------------------------------------- *
 * A test forks helpers with fork_helper(); a helper ends with exit(0) on success, or through a
 * failed CHECK, which fails the test. The test's deadline covers helpers that hang. */

static pid_t fork_helper(void) {
  pid_t pid = fork();
  if (pid < 0)
    FAIL("fork: %s", strerror(errno));
  return pid;
}

static int reap(pid_t pid) {
  int status;
  pid_t r;
  while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
    continue;
  if (r != pid)
    FAIL("waitpid: %s", strerror(errno));
  return status;
}

/* Waits for helper `pid` and fails unless it exited with status 0. */
static void reap_ok(pid_t pid) {
  int status = reap(pid);
  if (WIFSIGNALED(status))
    FAIL("helper %ld was killed by signal %d", (long)pid, WTERMSIG(status));
  if (WEXITSTATUS(status) != 0)
    FAIL("helper %ld exited with status %d", (long)pid, WEXITSTATUS(status));
}

/* Kills helper `pid` with SIGKILL and reaps it; fails if it had ended on its own first. */
static void kill_and_reap(pid_t pid) {
  int status;
  kill(pid, SIGKILL);
  status = reap(pid);
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
    FAIL("helper %ld ended before it was killed (status %d)", (long)pid, status);
}

/* Waits up to `seconds` for helper `pid` to end; returns 1 if it did (reaped and exited 0). */
static int reap_within(pid_t pid, double seconds) {
  double end = now_s() + seconds;
  for (;;) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("helper %ld failed (status %d)", (long)pid, status);
      return 1;
    }
    if (r < 0 && errno != EINTR)
      FAIL("waitpid: %s", strerror(errno));
    if (now_s() >= end)
      return 0;
    sleep_s(0.001);
  }
}

/* Reaps a helper blocked in lxshm_wait without a timeout, which a write has just released. */
#define REAP_WOKEN(pid)                                                              \
  do {                                                                               \
    if (!reap_within((pid), scaled(5)))                                              \
      FAIL("waiter %ld still blocked %g s after the write", (long)(pid), scaled(5)); \
  } while (0)

static void open_pipe(int fds[2]) {
  if (pipe(fds) != 0)
    FAIL("pipe: %s", strerror(errno));
}

static void put_byte(int fd, char c) {
  if (write(fd, &c, 1) != 1)
    FAIL("write to pipe: %s", strerror(errno));
}

/* Reads one byte; fails at end of file (the writer died without saying anything). */
static char get_byte(int fd) {
  char c;
  ssize_t n;
  while ((n = read(fd, &c, 1)) < 0 && errno == EINTR)
    continue;
  if (n != 1)
    FAIL("read from pipe: %s", n == 0 ? "end of file" : strerror(errno));
  return c;
}

/* Blocks until the other end of the pipe is closed, or `seconds` pass. */
static void await_close(int fd, double seconds) {
  struct pollfd p = {fd, POLLIN, 0};
  char c;
  if (poll(&p, 1, (int)(seconds * 1000)) == 1)
    while (read(fd, &c, 1) > 0)
      continue;
}

/* ---- raw access to the OS object, as a foreign or dying process has it ------------------ */

/* Maps all of the OS object behind segment `name`; *size gets its size. */
static unsigned char *map_raw(const char *name, size_t *size) {
  char path[NAME_BUF + 16];
  struct stat sb;
  void *p;
  int fd;

  os_name(path, name);
  if ((fd = shm_open(path, O_RDWR, 0)) < 0)
    FAIL("shm_open(%s): %s", path, strerror(errno));
  if (fstat(fd, &sb) != 0 || sb.st_size == 0)
    FAIL("fstat(%s) failed or found it empty", path);
  p = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED)
    FAIL("mmap(%s): %s", path, strerror(errno));
  *size = (size_t)sb.st_size;
  return p;
}

/* Creates the OS object behind `name` without lxshm, `size` bytes of `fill` (0 or more). */
static void create_raw(const char *name, size_t size, const unsigned char *fill) {
  char path[NAME_BUF + 16];
  int fd;

  os_name(path, name);
  if ((fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600)) < 0)
    FAIL("shm_open(%s): %s", path, strerror(errno));
  if (ftruncate(fd, (off_t)size) != 0)
    FAIL("ftruncate(%s): %s", path, strerror(errno));
  if (size > 0 && fill != NULL && pwrite(fd, fill, size, 0) != (ssize_t)size)
    FAIL("pwrite(%s): %s", path, strerror(errno));
  close(fd);
}

/* Sets the OS object's size, as a damaged or foreign object could have it. */
static void truncate_raw(const char *name, size_t size) {
  char path[NAME_BUF + 16];
  int fd;

  os_name(path, name);
  if ((fd = shm_open(path, O_RDWR, 0)) < 0 || ftruncate(fd, (off_t)size) != 0)
    FAIL("resizing %s: %s", path, strerror(errno));
  close(fd);
}

/* ---- values ----------------------------------------------------------------------------- */

/* Self-checking values of 256 KiB to 1 MiB for the kill tests: the first 8 bytes hold a
 * counter n, the length and every later byte derive from n, so that a value mixed from two
 * writes, or cut short, fails check_pattern. */
#define BIG_CAP ((size_t)1 << 20)

static size_t pattern_len(uint64_t n) {
  return ((size_t)256 << 10) + (size_t)(n * 40503u % ((size_t)768 << 10));
}

static unsigned char pattern_byte(uint64_t n, size_t i) {
  uint64_t x = n * 0x9e3779b97f4a7c15u + i;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9u;
  return (unsigned char)(x >> 56);
}

static size_t fill_pattern(unsigned char *buf, uint64_t n) {
  size_t i, len = pattern_len(n);
  memcpy(buf, &n, sizeof n);
  for (i = sizeof n; i < len; i++)
    buf[i] = pattern_byte(n, i);
  return len;
}

/* Returns the counter of the whole value in buf, or fails. */
static uint64_t check_pattern(const unsigned char *buf, size_t len) {
  uint64_t n;
  size_t i;
  if (len < sizeof n)
    FAIL("value of %zu bytes is too short to be a pattern", len);
  memcpy(&n, buf, sizeof n);
  if (len != pattern_len(n))
    FAIL("value %llu has %zu bytes, expected %zu", (unsigned long long)n, len, pattern_len(n));
  for (i = sizeof n; i < len; i++)
    if (buf[i] != pattern_byte(n, i))
      FAIL("value %llu is mixed: byte %zu is wrong", (unsigned long long)n, i);
  return n;
}

/* ---- internals, to steer tests ------------------------------------------------------------ */

static uint32_t waiters_now(lxshm_segment *seg) {
  lxshm__stat st;
  lxshm__stat_get(seg, &st);
  return st.waiters;
}

/* Returns once `n` processes are blocked (or about to block) in lxshm_wait on seg. */
static void await_waiters(lxshm_segment *seg, uint32_t n) {
  while (waiters_now(seg) < n)
    sleep_s(0.001);
}

/* Takes the lock without a deadline, as lxshm_write would. */
static void lock_or_fail(lxshm_segment *seg) {
  lxshm_error err;
  CHECK_ST(lxshm__lock(seg, lxshm__deadline(LXSHM_FOREVER), &err), LXSHM_OK);
}

/* ==== the tests ============================================================================ */

/* 1. What one process writes it reads back, byte for byte, with the version counting writes. */
static void test_round_trip(void) {
  static const unsigned char binary[] = {'a', 0, 'b', 0, 0, 0xff, 0x80, 0};
  unsigned char full[100], over[101], buf[8];
  char name[NAME_BUF];
  lxshm_segment *seg, *other;
  lxshm_error err;
  uint64_t version = 99;
  size_t len = 99;

  fresh_name(name, "round");
  CHECK_ST(lxshm_create(name, sizeof full, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_U64(lxshm_size(seg), ==, sizeof full);
  CHECK_STR(lxshm_name(seg), name);
  CHECK_U64(lxshm_version(seg), ==, 0);
  CHECK_ST(lxshm_read(seg, buf, sizeof buf, &len, &version, &err), LXSHM_OK);
  CHECK_U64(len, ==, 0);
  CHECK_U64(version, ==, 0);

  CHECK_ST(lxshm_write(seg, "hello", 5, 1.0, &err), LXSHM_OK);
  CHECK_U64(lxshm_version(seg), ==, 1);
  CHECK_VALUE(seg, "hello", 5, 1);

  CHECK_ST(lxshm_write(seg, binary, sizeof binary, 0.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, binary, sizeof binary, 2);

  /* A second handle sees the same value and version, and its writes count too. */
  CHECK_ST(lxshm_open(name, &other, &err), LXSHM_OK);
  CHECK_U64(lxshm_size(other), ==, sizeof full);
  CHECK_VALUE(other, binary, sizeof binary, 2);
  CHECK_ST(lxshm_write(other, "", 0, LXSHM_FOREVER, &err), LXSHM_OK);
  CHECK_VALUE(seg, "", 0, 3);

  memset(full, 'f', sizeof full);
  CHECK_ST(lxshm_write(seg, full, sizeof full, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, full, sizeof full, 4);

  /* One byte more than the capacity is refused, and nothing changes. */
  memset(over, 'o', sizeof over);
  CHECK_ST(lxshm_write(seg, over, sizeof over, 1.0, &err), LXSHM_INVALID_SIZE);
  CHECK_HAS(err.message, "capacity");
  CHECK_U64(lxshm_version(seg), ==, 4);
  CHECK_VALUE(seg, full, sizeof full, 4);
  CHECK_VALUE(other, full, sizeof full, 4);

  lxshm_close(other);
  lxshm_close(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

/* 2. A buffer too small for the value is refused with the length it needs. */
static void test_read_short_buffer(void) {
  char name[NAME_BUF], buf[16];
  lxshm_segment *seg;
  lxshm_error err;
  uint64_t version = 99;
  size_t len = 0;

  fresh_name(name, "short");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "0123456789", 10, 1.0, &err), LXSHM_OK);

  CHECK_ST(lxshm_read(seg, buf, 4, &len, &version, &err), LXSHM_INVALID_SIZE);
  CHECK_U64(len, ==, 10);
  len = 0;
  CHECK_ST(lxshm_read(seg, NULL, 0, &len, NULL, &err), LXSHM_INVALID_SIZE); /* asks the size */
  CHECK_U64(len, ==, 10);
  CHECK_ST(lxshm_read(seg, buf, 9, &len, NULL, &err), LXSHM_INVALID_SIZE);
  CHECK_U64(len, ==, 10);

  CHECK_ST(lxshm_read(seg, buf, 10, &len, &version, &err), LXSHM_OK);
  CHECK_U64(len, ==, 10);
  CHECK_U64(version, ==, 1);
  CHECK(memcmp(buf, "0123456789", 10) == 0);

  /* An empty value needs no buffer at all, either way. */
  CHECK_ST(lxshm_write(seg, NULL, 0, 1.0, &err), LXSHM_OK);
  CHECK_ST(lxshm_read(seg, NULL, 0, &len, &version, &err), LXSHM_OK);
  CHECK_U64(len, ==, 0);
  CHECK_U64(version, ==, 2);

  lxshm_close(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

/* 3. Names: SPEC §2's rule, and a refused name never reaches the OS. */
#define S16 "abcdefghijklmnop"
static void test_names(void) {
  static const char *const valid[] = {
      "a",
      "Z",
      "7",
      "_",
      "a.b_c-d",
      "a..b",
      "x-",
      "x.",
      "_-._-",
      S16 S16 S16 S16,
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._",
  };
  static const char *const invalid[] = {
      NULL,
      "",
      S16 S16 S16 S16 "q", /* 65 characters */
      ".a",
      "-a",
      "..",
      ".",
      "a/b",
      "/a",
      "../x",
      "a b",
      " a",
      "a\\b",
      "caf\xc3\xa9", /* UTF-8 */
      "\xff",
      "a\nb",
      "a:b",
      "a*",
      "a%b",
  };
  static char not_a_handle;
  char name[NAME_BUF], path[NAME_BUF + 16];
  lxshm_segment *seg;
  lxshm_error err;
  size_t i, len;
  int created;

  for (i = 0; i < sizeof valid / sizeof *valid; i++) {
    note("valid name %zu", i);
    CHECK_INT(lxshm_check_name(valid[i]), ==, LXSHM_OK);
  }

  for (i = 0; i < sizeof invalid / sizeof *invalid; i++) {
    const char *bad = invalid[i];
    note("invalid name %zu", i);
    CHECK_INT(lxshm_check_name(bad), ==, LXSHM_INVALID);
    seg = (lxshm_segment *)&not_a_handle; /* a failed call must set *out to NULL */
    CHECK_ST(lxshm_create(bad, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_INVALID);
    CHECK(seg == NULL);
    CHECK_HAS(err.message, "invalid name");
    CHECK_ST(lxshm_attach(bad, 64, LXSHM_DEFAULT_MODE, &seg, &created, &err), LXSHM_INVALID);
    CHECK(seg == NULL);
    CHECK_ST(lxshm_open(bad, &seg, &err), LXSHM_INVALID);
    CHECK(seg == NULL);
    CHECK_ST(lxshm_remove(bad, &err), LXSHM_INVALID);
    if (bad != NULL && strchr(bad, '/') == NULL) { /* names that are a path under /dev/shm */
      shm_file(path, bad);
      CHECK(access(path, F_OK) != 0 && errno == ENOENT);
    }
  }
  note("%s", "");

  /* A valid name of the longest length, with every punctuation allowed, works end to end. */
  len = (size_t)snprintf(name, sizeof name, "ct%ld_-.", (long)getpid());
  memset(name + len, 'L', LXSHM_NAME_MAX - len);
  name[LXSHM_NAME_MAX] = '\0';
  register_name(name);
  CHECK_ST(lxshm_create(name, 8, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK(shm_file_exists(name));
  lxshm_close(seg);
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_OK);
  CHECK_STR(lxshm_name(seg), name);
  lxshm_close(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  CHECK(!shm_file_exists(name));
}

/* 4. Sizes: refused outside 1..LXSHM_SIZE_MAX, and when the OS has no room, leaving nothing. */
static void test_sizes(void) {
  static const uint64_t bad[] = {0, LXSHM_SIZE_MAX + 1, UINT64_MAX, (uint64_t)1 << 63};
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  struct statvfs fs;
  uint64_t total, huge;
  size_t i;
  int created;

  fresh_name(name, "size");
  for (i = 0; i < sizeof bad / sizeof *bad; i++) {
    note("size %llu", (unsigned long long)bad[i]);
    CHECK_ST(lxshm_create(name, bad[i], LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_INVALID_SIZE);
    CHECK(seg == NULL);
    CHECK(err.message[0] != '\0');
    CHECK_ST(lxshm_attach(name, bad[i], LXSHM_DEFAULT_MODE, &seg, &created, &err),
             LXSHM_INVALID_SIZE);
    CHECK(seg == NULL && created == 0);
    CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_NOT_FOUND);
    CHECK(!shm_file_exists(name));
  }
  note("%s", "");

  CHECK_ST(lxshm_create(name, 1, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_U64(lxshm_size(seg), ==, 1);
  CHECK_ST(lxshm_write(seg, "xy", 2, 1.0, &err), LXSHM_INVALID_SIZE);
  CHECK_ST(lxshm_write(seg, "x", 1, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, "x", 1, 1);
  lxshm_close(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);

  /* A valid size larger than all of /dev/shm: the reservation fails at once (tmpfs checks its
   * size limit before allocating), so nothing large is ever allocated. A tmpfs without a limit
   * would really try, so the test refuses to run there. */
  if (statvfs("/dev/shm", &fs) != 0)
    FAIL("statvfs(/dev/shm): %s", strerror(errno));
  total = (uint64_t)fs.f_blocks * fs.f_frsize;
  if (total == 0)
    FAIL("/dev/shm has no size limit: cannot test a size larger than it");
  for (huge = (uint64_t)1 << 39; huge <= total; huge <<= 1)
    continue;
  if (huge > LXSHM_SIZE_MAX)
    FAIL("/dev/shm (%llu bytes) is larger than LXSHM_SIZE_MAX", (unsigned long long)total);
  CHECK_ST(lxshm_create(name, huge, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_INVALID_SIZE);
  CHECK(seg == NULL);
  CHECK(err.message[0] != '\0');
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_NOT_FOUND);
  CHECK(!shm_file_exists(name));
}

/* 5. EXISTS and NOT_FOUND, and what remove does to handles already open. */
static void test_exists_and_remove(void) {
  char name[NAME_BUF], missing[NAME_BUF];
  lxshm_segment *first, *second, *again, *seg;
  lxshm_error err;

  fresh_name(name, "rm");
  fresh_name(missing, "missing");
  CHECK_ST(lxshm_create(name, 32, LXSHM_DEFAULT_MODE, &first, &err), LXSHM_OK);
  CHECK_ST(lxshm_create(name, 32, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_EXISTS);
  CHECK(seg == NULL);
  CHECK_HAS(err.message, "already exists");
  CHECK_ST(lxshm_create(name, 99, 0644, &seg, &err), LXSHM_EXISTS); /* other size, same answer */

  CHECK_ST(lxshm_open(missing, &seg, &err), LXSHM_NOT_FOUND);
  CHECK(seg == NULL);
  CHECK_HAS(err.message, "does not exist");
  CHECK_ST(lxshm_remove(missing, &err), LXSHM_NOT_FOUND);
  CHECK_HAS(err.message, "does not exist");

  CHECK_ST(lxshm_open(name, &second, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(first, "one", 3, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(second, "one", 3, 1);

  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_NOT_FOUND);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_NOT_FOUND);

  /* Handles opened before the remove still share one segment. */
  CHECK_ST(lxshm_write(second, "two", 3, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(first, "two", 3, 2);
  CHECK_VALUE(second, "two", 3, 2);

  /* The name now makes a new, empty segment, apart from the old one. */
  CHECK_ST(lxshm_create(name, 16, LXSHM_DEFAULT_MODE, &again, &err), LXSHM_OK);
  CHECK_U64(lxshm_size(again), ==, 16);
  CHECK_VALUE(again, "", 0, 0);
  CHECK_ST(lxshm_write(again, "three", 5, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(first, "two", 3, 2);
  CHECK_ST(lxshm_write(first, "four", 4, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(again, "three", 5, 1);
  CHECK_VALUE(second, "four", 4, 3);
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_OK);
  CHECK_VALUE(seg, "three", 5, 1);

  lxshm_close(seg);
  lxshm_close(again);
  lxshm_close(second);
  lxshm_close(first);
  lxshm_close(NULL); /* ignored */
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

/* 6. New segments get exactly the mode asked for, whatever the umask. */
static void test_file_mode(void) {
  static const struct {
    unsigned mode;
    mode_t umask;
  } cases[] = {{LXSHM_DEFAULT_MODE, 0}, {LXSHM_DEFAULT_MODE, 077}, {0640, 077}, {0644, 022}};
  char name[NAME_BUF], path[NAME_BUF + 16];
  lxshm_segment *seg;
  lxshm_error err;
  struct stat sb;
  size_t i;

  for (i = 0; i < sizeof cases / sizeof *cases; i++) {
    note("mode %03o, umask %03o", cases[i].mode, (unsigned)cases[i].umask);
    fresh_name(name, "mode");
    umask(cases[i].umask);
    CHECK_ST(lxshm_create(name, 8, cases[i].mode, &seg, &err), LXSHM_OK);
    shm_file(path, name);
    CHECK(stat(path, &sb) == 0);
    CHECK_INT(sb.st_mode & 07777, ==, cases[i].mode);
    lxshm_close(seg);
    CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  }
}

/* 7. Two processes exchange values and wake each other. */
static void test_cross_process(void) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  uint64_t now = 0;
  pid_t pid;

  fresh_name(name, "cross");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);

  /* The child writes; the parent, waiting, wakes and reads it. */
  pid = fork_helper();
  if (pid == 0) {
    lxshm_segment *own;
    CHECK_ST(lxshm_open(name, &own, &err), LXSHM_OK);
    await_waiters(own, 1);
    CHECK_ST(lxshm_write(own, "from child", 10, scaled(5), &err), LXSHM_OK);
    lxshm_close(own);
    exit(0);
  }
  CHECK_ST(lxshm_wait(seg, 0, scaled(5), &now, &err), LXSHM_OK);
  CHECK_U64(now, ==, 1);
  CHECK_VALUE(seg, "from child", 10, 1);
  reap_ok(pid);

  /* And the other way round. */
  pid = fork_helper();
  if (pid == 0) {
    lxshm_segment *own;
    CHECK_ST(lxshm_open(name, &own, &err), LXSHM_OK);
    CHECK_ST(lxshm_wait(own, 1, LXSHM_FOREVER, &now, &err), LXSHM_OK);
    CHECK_U64(now, ==, 2);
    CHECK_VALUE(own, "from parent", 11, 2);
    lxshm_close(own);
    exit(0);
  }
  await_waiters(seg, 1);
  CHECK_ST(lxshm_write(seg, "from parent", 11, scaled(5), &err), LXSHM_OK);
  REAP_WOKEN(pid);

  lxshm_close(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

/* 8. A writer killed at any moment leaves a whole value and a usable lock. The writer prepares
 * its values first, so that it spends its time inside lxshm_write, mostly holding the lock. */
#define KILLED_VALUES 4

static void test_writer_killed(void) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  unsigned char *buf = malloc(BIG_CAP);
  uint64_t n, version;
  size_t len;
  int i, fds[2];
  pid_t pid;

  CHECK(buf != NULL);
  fresh_name(name, "killed");
  CHECK_ST(lxshm_create(name, BIG_CAP, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  len = fill_pattern(buf, 0);
  CHECK_ST(lxshm_write(seg, buf, len, scaled(5), &err), LXSHM_OK);

  for (i = 0; i < 40; i++) {
    note("iteration %d", i);
    open_pipe(fds);
    pid = fork_helper();
    if (pid == 0) { /* writes values ((i+1) << 32) + 0..KILLED_VALUES-1 in turn until killed */
      unsigned char *values[KILLED_VALUES];
      size_t lens[KILLED_VALUES];
      lxshm_segment *own;
      int k;
      close(fds[0]);
      for (k = 0; k < KILLED_VALUES; k++) {
        CHECK((values[k] = malloc(BIG_CAP)) != NULL);
        lens[k] = fill_pattern(values[k], ((uint64_t)(i + 1) << 32) + (uint64_t)k);
      }
      CHECK_ST(lxshm_open(name, &own, &err), LXSHM_OK);
      CHECK_ST(lxshm_write(own, values[0], lens[0], scaled(5), &err), LXSHM_OK);
      put_byte(fds[1], 'w'); /* committed once: kill me any time now */
      for (k = 1;; k = (k + 1) % KILLED_VALUES)
        CHECK_ST(lxshm_write(own, values[k], lens[k], scaled(5), &err), LXSHM_OK);
    }
    close(fds[1]);
    get_byte(fds[0]);
    close(fds[0]);
    sleep_s((i % 7) * 0.0005); /* 0 to 3 ms */
    kill_and_reap(pid);

    CHECK_ST(lxshm_read(seg, buf, BIG_CAP, &len, &version, &err), LXSHM_OK);
    n = check_pattern(buf, len);
    CHECK_U64(n >> 32, ==, i + 1); /* the child's, since it committed at least once */

    /* The lock is free again (taken over from the dead writer if need be). */
    len = fill_pattern(buf, (uint64_t)i + 1);
    CHECK_ST(lxshm_write(seg, buf, len, scaled(5), &err), LXSHM_OK);
    CHECK_U64(lxshm_version(seg), ==, version + 1);
    CHECK_ST(lxshm_read(seg, buf, BIG_CAP, &len, &version, &err), LXSHM_OK);
    CHECK_U64(check_pattern(buf, len), ==, (uint64_t)i + 1);
  }

  free(buf);
  lxshm_close(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

/* 9. A process that dies holding the lock delays nobody, and the value survives. */
enum { DIE_EXIT, DIE_KILLED, DIE_AFTER_COMMIT };

static void run_owner_death(int how) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  int fds[2];
  pid_t pid;

  fresh_name(name, "owner");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "before", 6, scaled(5), &err), LXSHM_OK);

  open_pipe(fds);
  pid = fork_helper();
  if (pid == 0) {
    lxshm_segment *own;
    close(fds[0]);
    CHECK_ST(lxshm_open(name, &own, &err), LXSHM_OK);
    lock_or_fail(own);
    if (how == DIE_AFTER_COMMIT)
      CHECK_ST(lxshm__commit_locked(own, NULL, 0, "committed", 9, LXSHM__FORMAT_RAW, &err), LXSHM_OK);
    if (how != DIE_KILLED)
      _exit(0); /* holding the lock */
    put_byte(fds[1], 'L');
    for (;;)
      pause();
  }
  close(fds[1]);
  if (how == DIE_KILLED) {
    get_byte(fds[0]);
    kill_and_reap(pid);
  }
  else
    reap_ok(pid);
  close(fds[0]);

  if (how == DIE_AFTER_COMMIT)
    CHECK_VALUE(seg, "committed", 9, 2);
  else
    CHECK_VALUE(seg, "before", 6, 1);
  CHECK_ST(lxshm_write(seg, "after", 5, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(seg, "after", 5, lxshm_version(seg));
  /* The lock was handed back in a consistent state: it keeps working. */
  CHECK_ST(lxshm_write(seg, "later", 5, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(seg, "later", 5, how == DIE_AFTER_COMMIT ? 4 : 3);

  lxshm_close(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

static void test_owner_exits(void) {
  run_owner_death(DIE_EXIT);
}

static void test_owner_killed(void) {
  run_owner_death(DIE_KILLED);
}

static void test_owner_dies_after_commit(void) {
  run_owner_death(DIE_AFTER_COMMIT);
}

/* 10. A writer that dies mid-commit, having scribbled over the idle slot, damages nothing. */
static void test_dies_mid_commit(void) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  pid_t pid;

  fresh_name(name, "midcommit");
  CHECK_ST(lxshm_create(name, 256, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "first", 5, scaled(5), &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "committed", 9, scaled(5), &err), LXSHM_OK);

  pid = fork_helper();
  if (pid == 0) { /* what a writer killed between its bytes and the version leaves behind */
    lxshm_segment *own;
    lxshm__header *h;
    uint64_t idle;
    size_t size;
    CHECK_ST(lxshm_open(name, &own, &err), LXSHM_OK);
    lock_or_fail(own);
    h = (lxshm__header *)map_raw(name, &size);
    idle = (atomic_load(&h->u.segment.version) + 1) & 1;
    memset((unsigned char *)h + LXSHM__HEADER_SIZE + idle * h->slot_stride, 0xa5,
           (size_t)h->slot_stride);
    atomic_store(&h->u.segment.slots[idle].length, h->capacity * 1000 + 7);
    atomic_store(&h->u.segment.slots[idle].format, 0xdeadu);
    atomic_store(&h->u.segment.slots[idle].version, atomic_load(&h->u.segment.version) + 1);
    _exit(0); /* holding the lock */
  }
  reap_ok(pid);

  CHECK_VALUE(seg, "committed", 9, 2);
  CHECK_ST(lxshm_write(seg, "next", 4, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(seg, "next", 4, 3);
  CHECK_ST(lxshm_write(seg, "and next", 8, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(seg, "and next", 8, 4);

  lxshm_close(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

/* 11. Waiting: timeouts, polls, and wake-ups by another process's write. */
static volatile sig_atomic_t signals_seen;

static void count_signal(int sig) {
  (void)sig;
  signals_seen++;
}

static void test_wait(void) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  struct sigaction sa;
  uint64_t now = 99;
  double start;
  pid_t pid, parent = getpid(), waiters[3];
  int i;

  fresh_name(name, "wait");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);

  CHECK_ST(lxshm_wait(seg, 0, 0, &now, &err), LXSHM_TIMEOUT);
  CHECK(err.message[0] != '\0');
  CHECK_U64(now, ==, 99); /* untouched on failure */
  start = now_s();
  CHECK_ST(lxshm_wait(seg, 0, 0.05, &now, &err), LXSHM_TIMEOUT);
  CHECK(now_s() - start < scaled(5)); /* returned: not a hang */

  /* A version other than the current one returns at once, even with no timeout. */
  CHECK_ST(lxshm_wait(seg, 7, 0, &now, &err), LXSHM_OK);
  CHECK_U64(now, ==, 0);
  CHECK_ST(lxshm_wait(seg, 7, LXSHM_FOREVER, &now, &err), LXSHM_OK);
  CHECK_U64(now, ==, 0);

  /* A child's write 50 ms later wakes us; signals in between do not end the wait. */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = count_signal; /* no SA_RESTART: the futex wait sees EINTR */
  sigaction(SIGUSR1, &sa, NULL);
  pid = fork_helper();
  if (pid == 0) {
    lxshm_segment *own;
    CHECK_ST(lxshm_open(name, &own, &err), LXSHM_OK);
    await_waiters(own, 1);
    kill(parent, SIGUSR1);
    sleep_s(0.025);
    kill(parent, SIGUSR1);
    sleep_s(0.025);
    CHECK_ST(lxshm_write(own, "woke", 4, scaled(5), &err), LXSHM_OK);
    lxshm_close(own);
    exit(0);
  }
  CHECK_ST(lxshm_wait(seg, 0, scaled(5), &now, &err), LXSHM_OK);
  CHECK_U64(now, ==, 1);
  CHECK_VALUE(seg, "woke", 4, 1);
  reap_ok(pid);
  CHECK_INT(signals_seen, >=, 1); /* two signals may arrive as one */

  /* One write wakes every waiter. */
  for (i = 0; i < 3; i++) {
    waiters[i] = fork_helper();
    if (waiters[i] == 0) {
      lxshm_segment *own;
      note("waiter %d", i);
      CHECK_ST(lxshm_open(name, &own, &err), LXSHM_OK);
      CHECK_ST(lxshm_wait(own, 1, LXSHM_FOREVER, &now, &err), LXSHM_OK);
      CHECK_U64(now, ==, 2);
      CHECK_VALUE(own, "all", 3, 2);
      lxshm_close(own);
      exit(0);
    }
  }
  await_waiters(seg, 3);
  CHECK_ST(lxshm_write(seg, "all", 3, scaled(5), &err), LXSHM_OK);
  for (i = 0; i < 3; i++)
    REAP_WOKEN(waiters[i]);

  lxshm_close(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

/* 11b. A waiter killed while blocked is no longer counted among the waiters (stat().waiters is
 * "processes blocked in wait now", SPEC §4). */
static void test_killed_waiter_not_counted(void) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  pid_t pid;

  fresh_name(name, "deadwaiter");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  pid = fork_helper();
  if (pid == 0) {
    lxshm_wait(seg, 0, LXSHM_FOREVER, NULL, NULL);
    FAIL("lxshm_wait returned with nothing written");
  }
  await_waiters(seg, 1);
  kill_and_reap(pid);
  CHECK_U64(waiters_now(seg), ==, 0);

  lxshm_close(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

/* 11c. A writer that dies after publishing its value but before waking the waiters still
 * wakes them: the value changed, and nobody else may ever write again. */
static void test_waiter_woken_after_committer_died(void) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  uint64_t now = 0;
  pid_t waiter, writer;

  fresh_name(name, "deadwriter");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  waiter = fork_helper();
  if (waiter == 0) {
    CHECK_ST(lxshm_wait(seg, 0, LXSHM_FOREVER, &now, &err), LXSHM_OK);
    CHECK_U64(now, ==, 1);
    CHECK_VALUE(seg, "published", 9, 1);
    exit(0);
  }
  await_waiters(seg, 1);
  writer = fork_helper();
  if (writer == 0) {
    lock_or_fail(seg);
    CHECK_ST(lxshm__commit_locked(seg, NULL, 0, "published", 9, LXSHM__FORMAT_RAW, &err), LXSHM_OK);
    _exit(0); /* before lxshm__unlock, which would wake the waiter */
  }
  reap_ok(writer);
  REAP_WOKEN(waiter);

  lxshm_close(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

/* 12. Of processes attaching to a new name at the same instant, exactly one creates it, and the
 * others wait for it to finish. A large segment keeps the creator busy long enough (reserving
 * its memory) for the others to find it under way. */
static void test_attach_race(void) {
  enum { RACERS = 8, ROUNDS = 20, SIZE = 1 << 20 };
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  pid_t pids[RACERS];
  int round, i, created, start[2], result[2];

  for (round = 0; round < ROUNDS; round++) {
    note("round %d", round);
    fresh_name(name, "attach");
    open_pipe(start);
    open_pipe(result);
    for (i = 0; i < RACERS; i++) {
      pids[i] = fork_helper();
      if (pids[i] == 0) {
        lxshm_segment *own;
        char c;
        close(start[1]);
        close(result[0]);
        while (read(start[0], &c, 1) < 0 && errno == EINTR) /* returns when the parent closes */
          continue;
        CHECK_ST(lxshm_attach(name, SIZE, LXSHM_DEFAULT_MODE, &own, &created, &err), LXSHM_OK);
        CHECK_U64(lxshm_size(own), ==, SIZE);
        CHECK_ST(lxshm_write(own, "x", 1, scaled(5), &err), LXSHM_OK);
        put_byte(result[1], created ? 'c' : 'o');
        lxshm_close(own);
        exit(0);
      }
    }
    close(start[0]);
    close(result[1]);
    close(start[1]); /* go */
    created = 0;
    for (i = 0; i < RACERS; i++)
      created += get_byte(result[0]) == 'c';
    close(result[0]);
    for (i = 0; i < RACERS; i++)
      reap_ok(pids[i]);
    CHECK_INT(created, ==, 1);
    CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_OK);
    CHECK_U64(lxshm_version(seg), ==, RACERS);
    lxshm_close(seg);
    CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  }
}

/* 13. An open racing a create sees nothing or a whole, fresh segment, never a half-made one.
 * An opener spins on the name while this process creates it. Left to the scheduler, the woken
 * creator often takes the opener's core and the opener never sees a creation under way, so
 * the two are pinned to different cores when there are two. The opener lives through all
 * rounds (forking is slow under valgrind): each round it reads the name and size from its
 * order pipe, says 'r' once it spins, and 'd' once it has checked the segment. */
#define OPEN_ROUNDS 200

typedef struct open_order {
  char name[NAME_BUF];
  uint64_t size;
} open_order;

/* Runs the calling process on the which-th core it may use, if it may use two or more. */
static void pin_to_core(int which) {
  cpu_set_t allowed, one;
  int cpu, seen = 0;

  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) < 2)
    return;
  for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, &allowed) && seen++ == which) {
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      if (sched_setaffinity(0, sizeof one, &one) != 0)
        FAIL("sched_setaffinity: %s", strerror(errno));
      return;
    }
  }
}

static void opener(int orders, int replies) {
  open_order order;
  unsigned char buf[8];
  lxshm_segment *seg;
  lxshm_error err;
  lxshm_status st;
  uint64_t version;
  size_t len;
  ssize_t n;
  int tries;

  pin_to_core(1);
  while ((n = read(orders, &order, sizeof order)) == (ssize_t)sizeof order) {
    note("opener, %s", order.name);
    tries = 0;
    while ((st = lxshm_open(order.name, &seg, &err)) != LXSHM_OK) {
      if (st != LXSHM_NOT_FOUND)
        FAIL("lxshm_open gave %s (\"%s\") while a create was under way", lxshm_status_name(st),
             err.message);
      if (tries++ == 0)
        put_byte(replies, 'r');
    }
    CHECK_U64(lxshm_size(seg), ==, order.size);
    CHECK_U64(lxshm_version(seg), ==, 0);
    CHECK_ST(lxshm_read(seg, buf, sizeof buf, &len, &version, &err), LXSHM_OK);
    CHECK_U64(len, ==, 0);
    CHECK_U64(version, ==, 0);
    lxshm_close(seg);
    put_byte(replies, 'd');
  }
  if (n != 0)
    FAIL("reading an order: %s", n < 0 ? strerror(errno) : "short read");
  exit(0);
}

static void test_open_races_create(void) {
  open_order order;
  lxshm_segment *seg;
  lxshm_error err;
  int i, orders[2], replies[2];
  pid_t pid;

  open_pipe(orders);
  open_pipe(replies);
  pid = fork_helper();
  if (pid == 0) {
    close(orders[1]);
    close(replies[0]);
    opener(orders[0], replies[1]);
  }
  close(orders[0]);
  close(replies[1]);
  pin_to_core(0);

  for (i = 0; i < OPEN_ROUNDS; i++) {
    memset(&order, 0, sizeof order);
    fresh_name(order.name, "oc");
    order.size = (uint64_t)4096 << (i % 8); /* 4 KiB to 512 KiB: reserving takes a while */
    note("round %d, %s", i, order.name);
    if (write(orders[1], &order, sizeof order) != (ssize_t)sizeof order)
      FAIL("sending an order: %s", strerror(errno));
    CHECK(get_byte(replies[0]) == 'r');
    CHECK_ST(lxshm_create(order.name, order.size, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
    lxshm_close(seg);
    CHECK(get_byte(replies[0]) == 'd');
    CHECK_ST(lxshm_remove(order.name, &err), LXSHM_OK);
  }

  close(orders[1]); /* no more orders: the opener exits */
  reap_ok(pid);
  close(replies[0]);
}

/* 14. Objects under our prefix that lxshm did not make, or did not finish. */
static void test_foreign_objects(void) {
  unsigned char junk[4096];
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  uint32_t x = 2463534242u;
  double start;
  size_t i;
  int created;

  for (i = 0; i < sizeof junk; i++) { /* xorshift: random, never zero, so never "unfinished" */
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    junk[i] = (unsigned char)(x % 255 + 1);
  }

  note("random bytes");
  fresh_name(name, "junk");
  create_raw(name, sizeof junk, junk);
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_INVALID);
  CHECK(seg == NULL);
  CHECK_HAS(err.message, "not an lxshm segment");
  CHECK_ST(lxshm_attach(name, 64, LXSHM_DEFAULT_MODE, &seg, &created, &err), LXSHM_INVALID);
  CHECK(seg == NULL && created == 0);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK); /* remove takes any object under the prefix */

  note("100 bytes");
  fresh_name(name, "small");
  create_raw(name, 100, junk);
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_INVALID);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);

  note("empty");
  fresh_name(name, "empty");
  create_raw(name, 0, NULL);
  start = now_s();
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_CORRUPT);
  CHECK(now_s() - start < scaled(5)); /* a bounded wait for a creator, not a hang */
  CHECK(seg == NULL);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);

  note("header of zeros");
  fresh_name(name, "zeros");
  create_raw(name, LXSHM__HEADER_SIZE, NULL);
  start = now_s();
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_CORRUPT);
  CHECK(now_s() - start < scaled(5));
  CHECK_HAS(err.message, "never finished");
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

/* Creates a valid segment `name` holding "valid", lets `damage` change its bytes (or its size)
 * with no handle open, then checks what lxshm_open says. */
static void check_damaged(const char *tag, void (*damage)(const char *name, lxshm__header *h),
                          lxshm_status want, const char *message) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  lxshm__header *h;
  size_t size;

  note("%s", tag);
  fresh_name(name, tag);
  CHECK_ST(lxshm_create(name, 4096, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "valid", 5, scaled(5), &err), LXSHM_OK);
  lxshm_close(seg);
  h = (lxshm__header *)map_raw(name, &size);
  damage(name, h);
  munmap(h, size);
  CHECK_ST(lxshm_open(name, &seg, &err), want);
  CHECK(seg == NULL);
  CHECK_HAS(err.message, message);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

static void damage_truncate(const char *name, lxshm__header *h) {
  truncate_raw(name, (size_t)h->map_size / 2);
}

static void damage_layout(const char *name, lxshm__header *h) {
  (void)name;
  h->layout = LXSHM__LAYOUT_VERSION + 1;
}

static void damage_capacity(const char *name, lxshm__header *h) {
  (void)name;
  h->capacity = h->capacity * 2;
}

static void damage_kind(const char *name, lxshm__header *h) {
  (void)name;
  h->kind = LXSHM__KIND_QUEUE;
}

static void test_damaged_headers(void) {
  check_damaged("truncated", damage_truncate, LXSHM_CORRUPT, "bytes");
  check_damaged("layout", damage_layout, LXSHM_INVALID, "layout");
  check_damaged("capacity", damage_capacity, LXSHM_CORRUPT, "inconsistent");
  check_damaged("queue", damage_kind, LXSHM_INVALID, "queue");
}

/* 14b. A damaged length in the current value's descriptor is reported, never followed. */
static void test_damaged_length(void) {
  char name[NAME_BUF];
  unsigned char *buf;
  lxshm_segment *seg;
  lxshm_error err;
  lxshm__slot *current;
  lxshm__header *h;
  uint64_t cap = 4096, version;
  size_t size, len;

  fresh_name(name, "length");
  CHECK_ST(lxshm_create(name, cap, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "valid", 5, scaled(5), &err), LXSHM_OK);
  h = (lxshm__header *)map_raw(name, &size);
  current = &h->u.segment.slots[atomic_load(&h->u.segment.version) & 1];
  atomic_store(&current->length, cap + 1);

  buf = malloc((size_t)cap); /* exactly the capacity: ASan sees any read beyond it */
  CHECK(buf != NULL);
  CHECK_ST(lxshm_read(seg, buf, (size_t)cap, &len, &version, &err), LXSHM_CORRUPT);
  CHECK(err.message[0] != '\0');
  atomic_store(&current->length, UINT64_MAX);
  CHECK_ST(lxshm_read(seg, buf, (size_t)cap, &len, &version, &err), LXSHM_CORRUPT);

  /* A new value goes to the other slot and reads back normally. */
  CHECK_ST(lxshm_write(seg, "repaired", 8, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(seg, "repaired", 8, 2);

  free(buf);
  munmap(h, size);
  lxshm_close(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

/* 15. The lock is error-checking: relocking from the same thread fails instead of hanging. */
static void test_relock(void) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;

  fresh_name(name, "relock");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "kept", 4, scaled(5), &err), LXSHM_OK);
  lock_or_fail(seg);
  CHECK_ST(lxshm__lock(seg, lxshm__deadline(scaled(5)), &err), LXSHM_INVALID);
  CHECK_ST(lxshm_write(seg, "lost", 4, scaled(5), &err), LXSHM_INVALID);
  CHECK_HAS(err.message, "already held");
  CHECK_VALUE(seg, "kept", 4, 1); /* readers never need the lock */
  lxshm__unlock(seg);

  CHECK_ST(lxshm_write(seg, "after", 5, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(seg, "after", 5, 2);
  lxshm_close(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

/* 16. Every status has its number, name and text. */
static void test_status_names(void) {
  static const struct {
    lxshm_status st;
    int value; /* -1: any, but distinct from the others */
    const char *name;
  } codes[] = {
      {LXSHM_OK, 0, "OK"},
      {LXSHM_EXISTS, 1, "EXISTS"},
      {LXSHM_INVALID, 2, "INVALID"},
      {LXSHM_INVALID_SIZE, 3, "INVALID_SIZE"},
      {LXSHM_NOT_FOUND, -1, "NOT_FOUND"},
      {LXSHM_TIMEOUT, -1, "TIMEOUT"},
      {LXSHM_CORRUPT, -1, "CORRUPT"},
      {LXSHM_PERMISSION, -1, "PERMISSION"},
      {LXSHM_UNSUPPORTED, -1, "UNSUPPORTED"},
      {LXSHM_SYSTEM, -1, "SYSTEM"},
      {LXSHM_FULL, 10, "FULL"},
      {LXSHM_CONFLICT, 11, "CONFLICT"},
  };
  enum { N = sizeof codes / sizeof *codes };
  size_t i, j;

  for (i = 0; i < N; i++) {
    note("%s", codes[i].name);
    if (codes[i].value >= 0)
      CHECK_INT(codes[i].st, ==, codes[i].value);
    CHECK_STR(lxshm_status_name(codes[i].st), codes[i].name);
    CHECK(lxshm_strerror(codes[i].st)[0] != '\0');
    CHECK(strcmp(lxshm_strerror(codes[i].st), "unknown status") != 0);
    for (j = 0; j < i; j++) {
      CHECK(codes[i].st != codes[j].st);
      CHECK(strcmp(lxshm_strerror(codes[i].st), lxshm_strerror(codes[j].st)) != 0);
    }
  }
  note("%s", "");
  CHECK_STR(lxshm_strerror(LXSHM_OK), "success");
  CHECK_STR(lxshm_strerror(LXSHM_TIMEOUT), "timed out");
  CHECK_STR(lxshm_status_name((lxshm_status)99), "UNKNOWN");
  CHECK_STR(lxshm_strerror((lxshm_status)99), "unknown status");
  CHECK_STR(lxshm_status_name((lxshm_status)1000), "UNKNOWN");
  CHECK_STR(lxshm_strerror((lxshm_status)-1), "unknown status");
}

/* 17. A writer that cannot get the lock in time gives up with TIMEOUT and changes nothing. */
static void test_lock_timeout(void) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  int locked[2], release[2];
  pid_t pid;

  fresh_name(name, "locktimeout");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "kept", 4, scaled(5), &err), LXSHM_OK);

  open_pipe(locked);
  open_pipe(release);
  pid = fork_helper();
  if (pid == 0) { /* holds the lock until released, 2 s at most */
    lxshm_segment *own;
    close(locked[0]);
    close(release[1]);
    CHECK_ST(lxshm_open(name, &own, &err), LXSHM_OK);
    lock_or_fail(own);
    put_byte(locked[1], 'L');
    await_close(release[0], scaled(2));
    lxshm__unlock(own);
    lxshm_close(own);
    exit(0);
  }
  close(locked[1]);
  close(release[0]);
  get_byte(locked[0]);

  CHECK_ST(lxshm_write(seg, "lost", 4, 0.05, &err), LXSHM_TIMEOUT);
  CHECK(err.message[0] != '\0');
  CHECK_ST(lxshm_write(seg, "lost", 4, 0, &err), LXSHM_TIMEOUT);
  CHECK_VALUE(seg, "kept", 4, 1);

  close(release[1]);
  reap_ok(pid);
  close(locked[0]);
  CHECK_ST(lxshm_write(seg, "free", 4, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(seg, "free", 4, 2);

  lxshm_close(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

/* ==== queues =============================================================================== */

/* 24. Values come out in push order, count and used follow, sizes are refused up front. */
static void test_queue_basics(void) {
  char name[NAME_BUF], buf[64];
  lxshm_queue *q, *other;
  lxshm_segment *seg;
  lxshm_error err;
  size_t len;
  int i;

  fresh_name(name, "qbasic");
  CHECK_ST(lxshm_queue_create(name, 100, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);
  CHECK_U64(lxshm_queue_size(q), ==, 104); /* rounded up to whole 8-byte units */
  CHECK_STR(lxshm_queue_name(q), name);
  CHECK_U64(lxshm_queue_count(q), ==, 0);
  CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, 0, &err), LXSHM_TIMEOUT);
  CHECK_HAS(err.message, "empty");
  CHECK_ST(lxshm_queue_peek(q, buf, sizeof buf, &len, &err), LXSHM_TIMEOUT);

  /* A record takes 8 bytes of header plus the value, padded to 8: "v0".."v5" take 16 each. */
  for (i = 0; i < 6; i++) {
    snprintf(buf, sizeof buf, "v%d", i);
    CHECK_ST(lxshm_queue_push(q, buf, strlen(buf), 0, &err), LXSHM_OK);
  }
  CHECK_U64(lxshm_queue_count(q), ==, 6);
  CHECK_U64(lxshm_queue_used(q), ==, 96);
  CHECK_ST(lxshm_queue_push(q, "full", 4, 0, &err), LXSHM_TIMEOUT);
  CHECK_HAS(err.message, "full");
  CHECK_ST(lxshm_queue_push(q, buf, 97, scaled(5), &err), LXSHM_INVALID_SIZE); /* never fits */
  CHECK_ST(lxshm_queue_peek(q, buf, sizeof buf, &len, &err), LXSHM_OK);
  CHECK_INT(len, ==, 2);
  CHECK(memcmp(buf, "v0", 2) == 0);
  CHECK_ST(lxshm_queue_pop(q, buf, 1, &len, 0, &err), LXSHM_INVALID_SIZE); /* stays queued */
  CHECK_INT(len, ==, 2);
  for (i = 0; i < 6; i++) {
    char want[16];
    snprintf(want, sizeof want, "v%d", i);
    CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, 0, &err), LXSHM_OK);
    CHECK_INT(len, ==, strlen(want));
    CHECK(memcmp(buf, want, len) == 0);
  }
  CHECK_U64(lxshm_queue_count(q), ==, 0);
  CHECK_U64(lxshm_queue_used(q), ==, 0);
  CHECK_ST(lxshm_queue_push(q, NULL, 0, 0, &err), LXSHM_OK); /* an empty value */
  CHECK_ST(lxshm_queue_pop(q, NULL, 0, &len, 0, &err), LXSHM_OK);
  CHECK_INT(len, ==, 0);

  /* One namespace with segments; each kind refuses the other. */
  CHECK_ST(lxshm_queue_create(name, 64, LXSHM_DEFAULT_MODE, &other, &err), LXSHM_EXISTS);
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_INVALID);
  CHECK_HAS(err.message, "queue");
  CHECK_ST(lxshm_queue_open(name, &other, &err), LXSHM_OK);
  lxshm_queue_close(other);
  lxshm_queue_close(q);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  CHECK_ST(lxshm_queue_open(name, &q, &err), LXSHM_NOT_FOUND);
}

/* 25. Values of every length keep their bytes across the end of the ring. */
static void test_queue_wraps(void) {
  char name[NAME_BUF];
  unsigned char in[200], out[200];
  lxshm_queue *q;
  lxshm_error err;
  size_t len, pushed = 0, popped = 0;

  fresh_name(name, "qwrap");
  CHECK_ST(lxshm_queue_create(name, 256, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);
  while (popped < 3000) {
    size_t n = (pushed * 37) % 150;
    memset(in, (int)(pushed & 0xff), n);
    if (pushed < 3000 && lxshm_queue_push(q, in, n, 0, &err) == LXSHM_OK) {
      pushed++;
      continue;
    }
    CHECK_ST(lxshm_queue_pop(q, out, sizeof out, &len, 0, &err), LXSHM_OK);
    CHECK_INT(len, ==, (popped * 37) % 150);
    for (n = 0; n < len; n++)
      CHECK_INT(out[n], ==, popped & 0xff);
    popped++;
  }
  CHECK_U64(lxshm_queue_count(q), ==, 0);
  lxshm_queue_close(q);
}

enum { PRODUCERS = 2, PER_PRODUCER = 3000 };

/* 26. Two producer processes and one consumer: every value once, in each producer's order. */
static void test_queue_producers(void) {
  char name[NAME_BUF];
  lxshm_queue *q;
  lxshm_error err;
  pid_t pids[PRODUCERS];
  uint32_t next[PRODUCERS] = {0}, v[2];
  size_t len;
  int p, total;

  fresh_name(name, "qprod");
  CHECK_ST(lxshm_queue_create(name, 1024, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);
  for (p = 0; p < PRODUCERS; p++) {
    if ((pids[p] = fork_helper()) == 0) {
      lxshm_queue *own;
      uint32_t i;
      CHECK_ST(lxshm_queue_open(name, &own, &err), LXSHM_OK);
      for (i = 0; i < PER_PRODUCER; i++) {
        uint32_t rec[2] = {(uint32_t)p, i};
        CHECK_ST(lxshm_queue_push(own, rec, sizeof rec, scaled(10), &err), LXSHM_OK);
      }
      exit(0);
    }
  }
  for (total = 0; total < PRODUCERS * PER_PRODUCER; total++) {
    CHECK_ST(lxshm_queue_pop(q, v, sizeof v, &len, scaled(10), &err), LXSHM_OK);
    CHECK_INT(len, ==, sizeof v);
    CHECK(v[0] < PRODUCERS);
    CHECK_U64(v[1], ==, next[v[0]]); /* each producer's values in order, none missing */
    next[v[0]]++;
  }
  for (p = 0; p < PRODUCERS; p++)
    reap_ok(pids[p]);
  CHECK_ST(lxshm_queue_pop(q, v, sizeof v, &len, 0, &err), LXSHM_TIMEOUT);
  lxshm_queue_close(q);
}

/* 27. Producers and consumers killed at any moment leave no half value, a right count, and
 * free locks. Every value a consumer popped it reports through a pipe before the next pop. */
static void test_queue_killed(void) {
  char name[NAME_BUF];
  lxshm_queue *q;
  lxshm_error err;
  uint64_t v[32];
  size_t len;
  int round, fds[2];

  fresh_name(name, "qkill");
  CHECK_ST(lxshm_queue_create(name, 4096, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);
  for (round = 0; round < 30; round++) {
    pid_t producer, consumer;
    note("round %d", round);
    open_pipe(fds);
    if ((producer = fork_helper()) == 0) { /* pushes 256-byte values forever */
      lxshm_queue *own;
      uint64_t i;
      close(fds[0]);
      close(fds[1]);
      CHECK_ST(lxshm_queue_open(name, &own, &err), LXSHM_OK);
      for (i = 0;; i++) {
        int k;
        for (k = 0; k < 32; k++)
          v[k] = ((uint64_t)round << 40) + i;
        CHECK_ST(lxshm_queue_push(own, v, sizeof v, scaled(10), &err), LXSHM_OK);
      }
    }
    if ((consumer = fork_helper()) == 0) { /* pops forever, checking every value is whole */
      lxshm_queue *own;
      close(fds[0]);
      CHECK_ST(lxshm_queue_open(name, &own, &err), LXSHM_OK);
      for (;;) {
        int k;
        CHECK_ST(lxshm_queue_pop(own, v, sizeof v, &len, scaled(10), &err), LXSHM_OK);
        CHECK_INT(len, ==, sizeof v);
        for (k = 1; k < 32; k++)
          CHECK_U64(v[k], ==, v[0]);
        put_byte(fds[1], 'p');
      }
    }
    close(fds[1]);
    sleep_s(0.002 + (round % 5) * 0.001);
    kill_and_reap(producer);
    kill_and_reap(consumer);
    await_close(fds[0], scaled(1));
    close(fds[0]);
    /* Whatever is left is whole, and count agrees with what pops find. */
    while (lxshm_queue_count(q) > 0) {
      int k;
      CHECK_ST(lxshm_queue_pop(q, v, sizeof v, &len, 0, &err), LXSHM_OK);
      CHECK_INT(len, ==, sizeof v);
      for (k = 1; k < 32; k++)
        CHECK_U64(v[k], ==, v[0]);
    }
    CHECK_ST(lxshm_queue_pop(q, v, sizeof v, &len, 0, &err), LXSHM_TIMEOUT);
    CHECK_U64(lxshm_queue_used(q), ==, 0);
    CHECK_ST(lxshm_queue_push(q, v, 8, scaled(5), &err), LXSHM_OK); /* both locks are free */
    CHECK_ST(lxshm_queue_pop(q, v, sizeof v, &len, scaled(5), &err), LXSHM_OK);
  }
  lxshm_queue_close(q);
}

/* 28. A consumer blocked on an empty queue wakes for another process's push, and a producer
 * blocked on a full one for a pop. */
static void test_queue_blocking(void) {
  char name[NAME_BUF], buf[32];
  lxshm_queue *q;
  lxshm_error err;
  size_t len;
  pid_t pid;

  fresh_name(name, "qblock");
  CHECK_ST(lxshm_queue_create(name, 32, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);
  if ((pid = fork_helper()) == 0) {
    lxshm_queue *own;
    CHECK_ST(lxshm_queue_open(name, &own, &err), LXSHM_OK);
    CHECK_ST(lxshm_queue_pop(own, buf, sizeof buf, &len, -1, &err), LXSHM_OK); /* no limit */
    CHECK(len == 5 && memcmp(buf, "hello", 5) == 0);
    exit(0);
  }
  sleep_s(0.05);
  CHECK_ST(lxshm_queue_push(q, "hello", 5, 0, &err), LXSHM_OK);
  REAP_WOKEN(pid);

  CHECK_ST(lxshm_queue_push(q, "0123456789abcdef", 16, 0, &err), LXSHM_OK); /* 24 of 32 */
  if ((pid = fork_helper()) == 0) {
    lxshm_queue *own;
    CHECK_ST(lxshm_queue_open(name, &own, &err), LXSHM_OK);
    CHECK_ST(lxshm_queue_push(own, "next", 4, -1, &err), LXSHM_OK); /* waits for room */
    exit(0);
  }
  sleep_s(0.05);
  CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, 0, &err), LXSHM_OK);
  REAP_WOKEN(pid);
  CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, 0, &err), LXSHM_OK);
  CHECK(len == 4 && memcmp(buf, "next", 4) == 0);
  lxshm_queue_close(q);
}

/* 29. A push or pop with timeout 0 is not refused because another process holds the lock for
 * a moment: the timeout bounds the wait for room or a value, not for the lock. */
static void test_queue_zero_timeout_waits_for_lock(void) {
  char name[NAME_BUF], buf[16];
  lxshm_queue *q;
  lxshm_error err;
  size_t len, size;
  int locked[2], release[2], which;

  fresh_name(name, "qlock");
  CHECK_ST(lxshm_queue_create(name, 256, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);
  CHECK_ST(lxshm_queue_push(q, "x", 1, 0, &err), LXSHM_OK);
  for (which = 0; which < 2; which++) { /* the push lock, then the pop lock */
    pid_t pid;
    note("%s lock", which == 0 ? "push" : "pop");
    open_pipe(locked);
    open_pipe(release);
    if ((pid = fork_helper()) == 0) { /* holds the lock as a producer mid-copy would */
      lxshm__header *h = (lxshm__header *)map_raw(name, &size);
      pthread_mutex_t *m = (pthread_mutex_t *)(which == 0 ? h->lock : h->u.queue.pop_lock);
      close(locked[0]);
      close(release[1]);
      CHECK(pthread_mutex_lock(m) == 0);
      put_byte(locked[1], 'l');
      sleep_s(0.05);
      CHECK(pthread_mutex_unlock(m) == 0);
      exit(0);
    }
    close(locked[1]);
    close(release[0]);
    close(release[1]);
    get_byte(locked[0]);
    close(locked[0]);
    if (which == 0)
      CHECK_ST(lxshm_queue_push(q, "y", 1, 0, &err), LXSHM_OK);
    else
      CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, 0, &err), LXSHM_OK);
    reap_ok(pid);
  }
  lxshm_queue_close(q);
}

/* ==== the list ============================================================================== */

static const test tests[] = {
    {"round trip", test_round_trip},
    {"read into a short buffer", test_read_short_buffer},
    {"names", test_names},
    {"sizes", test_sizes},
    {"exists, not found, remove", test_exists_and_remove},
    {"file mode", test_file_mode},
    {"cross-process write and wait", test_cross_process},
    {"writer killed mid-write", test_writer_killed},
    {"lock owner exits holding the lock", test_owner_exits},
    {"lock owner killed holding the lock", test_owner_killed},
    {"lock owner dies after commit, before unlock", test_owner_dies_after_commit},
    {"writer dies mid-commit", test_dies_mid_commit},
    {"wait", test_wait},
    {"wait: a killed waiter is not counted", test_killed_waiter_not_counted},
    {"wait: woken after the committer died", test_waiter_woken_after_committer_died},
    {"attach race", test_attach_race},
    {"open races create", test_open_races_create},
    {"foreign objects", test_foreign_objects},
    {"damaged headers", test_damaged_headers},
    {"damaged value length", test_damaged_length},
    {"relock from the same thread", test_relock},
    {"status names", test_status_names},
    {"lock timeout", test_lock_timeout},
    {"queue basics", test_queue_basics},
    {"queue wraps", test_queue_wraps},
    {"queue: two producer processes, one consumer", test_queue_producers},
    {"queue: producers and consumers killed", test_queue_killed},
    {"queue: blocking push and pop", test_queue_blocking},
    {"queue: timeout 0 still waits for a busy lock", test_queue_zero_timeout_waits_for_lock},
};

/* ---- running one test --------------------------------------------------------------------- */

static sigset_t child_mask; /* the signal mask tests run with (the runner blocks SIGCHLD) */

/* Waits for test process `pid` until `deadline` (now_s() time) without reaping it, so that
 * its process group cannot be reused before the runner has killed it. Returns 0 if it ended. */
static int wait_until(pid_t pid, double deadline) {
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  for (;;) {
    siginfo_t info;
    double left;
    struct timespec ts;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid)
      return 0;
    left = deadline - now_s();
    if (left <= 0)
      return -1;
    ts.tv_sec = (time_t)left;
    ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
    sigtimedwait(&chld, NULL, &ts); /* a SIGCHLD, or the deadline */
  }
}

/* Runs test t in its own process group; returns 1 if it passed, after printing its line. */
static int run_test(int number, const test *t) {
  double limit = DEADLINE_S * slow;
  char reason[sizeof the_board->reason + 64];
  int status, timed_out, i, n;
  pid_t pid;

  memset(the_board, 0, sizeof *the_board);
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if (pid < 0) {
    printf("not ok %d - %s: fork: %s\n", number, t->name, strerror(errno));
    return 0;
  }
  if (pid == 0) {
    setpgid(0, 0);
    sigprocmask(SIG_SETMASK, &child_mask, NULL);
    t->fn();
    exit(0);
  }
  setpgid(pid, pid); /* also here, so that the kill below cannot miss it */
  timed_out = wait_until(pid, now_s() + limit) != 0;
  kill(-pid, SIGKILL); /* the test if it hangs, and any helper it left behind */
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    continue;

  n = atomic_load(&the_board->nnames);
  for (i = 0; i < n && i < MAX_NAMES; i++) {
    char path[NAME_BUF + 16];
    os_name(path, the_board->names[i]);
    shm_unlink(path); /* usually gone already */
  }

  reason[0] = '\0';
  if (timed_out)
    snprintf(reason, sizeof reason, "timed out after %g s", limit);
  else if (WIFSIGNALED(status))
    snprintf(reason, sizeof reason, "killed by signal %d (%s)", WTERMSIG(status),
             strsignal(WTERMSIG(status)));
  else if (WEXITSTATUS(status) != 0 && !atomic_load(&the_board->failed))
    snprintf(reason, sizeof reason, "exited with status %d, no reason given (see stderr)",
             WEXITSTATUS(status));
  if (atomic_load(&the_board->failed)) { /* the recorded cause, after any of the above */
    size_t len = strlen(reason);
    snprintf(reason + len, sizeof reason - len, "%s%s", len ? "; " : "", the_board->reason);
  }
  for (i = 0; reason[i] != '\0'; i++) /* one line per test */
    if (reason[i] == '\n')
      reason[i] = ' ';

  if (reason[0] == '\0') {
    printf("ok %d - %s\n", number, t->name);
    return 1;
  }
  printf("not ok %d - %s: %s\n", number, t->name, reason);
  return 0;
}

int main(int argc, char **argv) {
  const char *filter = argc > 1 ? argv[1] : NULL;
  const char *env = getenv("LXSHM_TEST_SLOW");
  size_t i, count = sizeof tests / sizeof *tests;
  int selected = 0, passed = 0, number = 0;
  sigset_t chld;

  if (env != NULL && *env != '\0') {
    char *end;
    double f = strtod(env, &end);
    if (*end != '\0' || !(f > 0)) {
      fprintf(stderr, "LXSHM_TEST_SLOW must be a positive number, not \"%s\"\n", env);
      return 2;
    }
    slow = f;
  }
  the_board =
      mmap(NULL, sizeof *the_board, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (the_board == MAP_FAILED) {
    perror("mmap");
    return 2;
  }
  /* SIGCHLD stays blocked in the runner, so that it can sleep until a test ends. */
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &child_mask);

  for (i = 0; i < count; i++)
    selected += filter == NULL || strstr(tests[i].name, filter) != NULL;
  printf("1..%d\n", selected);
  for (i = 0; i < count; i++)
    if (filter == NULL || strstr(tests[i].name, filter) != NULL)
      passed += run_test(++number, &tests[i]);
  printf("C core: %d passed, %d failed\n", passed, selected - passed);
  munmap(the_board, sizeof *the_board);
  return selected > 0 && passed == selected ? 0 : 1;
}

/* runner_posix.c — runs the C tests on POSIX (Linux): each test in its own forked process group
 * under a deadline, helpers forked from the test, shared counters on futexes, and the facts of
 * POSIX objects (test.h). A hang or a crash is a failure; the runner removes every name a test
 * made, however it ended. Test-only code.
 *
 * Usage: test_core [SUBSTRING]  runs the tests whose title contains SUBSTRING (default: all).
 * LXSHM_TEST_SLOW=N multiplies every deadline by N (a float; slow machines, valgrind). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define DEADLINE_S 20.0 /* per test, times LXSHM_TEST_SLOW */
#define MAX_NAMES 512   /* segment names one test may make */

/* Shared by the runner and all processes of the running test (an anonymous shared mapping,
 * inherited through fork); cleared before each test. */
typedef struct board {
  atomic_int failed; /* set by the first process to record a failure, which owns `reason` */
  char reason[1024]; /* "file:line: what went wrong" */
  atomic_int nnames; /* entries of `names` claimed so far */
  char names[MAX_NAMES][NAME_BUF]; /* every segment name the test made, for the cleanup */
  scratch scratch;                 /* test.h's `shared` */
} board;

static board *the_board;
scratch *shared;
static char context[160];     /* what the current process is doing, added to its failure */
static const char *role = ""; /* the helper this process runs, "" in the test itself */

const int names_outlive_handles = 1;

/* ---- failures -------------------------------------------------------------------------------- */

_Noreturn void fail_at(const char *file, int line, const char *fmt, ...) {
  int expected = 0;
  if (atomic_compare_exchange_strong(&the_board->failed, &expected, 1)) {
    char *out = the_board->reason;
    size_t room = sizeof the_board->reason;
    int n = snprintf(out, room, "%s%s%s%s:%d: %s%s", role[0] ? "helper " : "", role,
                     role[0] ? ": " : "", file, line, context, context[0] ? ": " : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, room - (size_t)n, fmt, ap);
    va_end(ap);
  }
  _exit(1);
}

void note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(context, sizeof context, fmt, ap);
  va_end(ap);
}

/* ---- helper processes ------------------------------------------------------------------------ */

helper spawn(const char *fmt, ...) {
  char line[512], *argv[16], *word;
  const helper_entry *entry;
  int argc = 0;
  va_list ap;
  pid_t pid;

  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  for (word = strtok(line, " "); word != NULL && argc < 15; word = strtok(NULL, " "))
    argv[argc++] = word;
  argv[argc] = NULL;
  if (argc == 0 || (entry = find_helper(argv[0])) == NULL)
    FAIL("no helper \"%s\"", argc ? argv[0] : "");
  if (argc - 1 != entry->args)
    FAIL("helper %s takes %d arguments, not %d", entry->name, entry->args, argc - 1);
  fflush(stdout);
  fflush(stderr);
  if ((pid = fork()) < 0)
    FAIL("fork: %s", strerror(errno));
  if (pid == 0) { /* the helper: same memory as the test, a role of its own */
    role = entry->name;
    context[0] = '\0';
    exit(entry->fn(argv + 1));
  }
  return pid;
}

/* Reaps h if it has ended within `seconds` (scaled): returns 1 with its wait status in *status. */
static int wait_for(helper h, double seconds, int *status) {
  double end = now_s() + scaled(seconds);
  for (;;) {
    pid_t r = waitpid((pid_t)h, status, WNOHANG);
    if (r == (pid_t)h)
      return 1;
    if (r < 0 && errno != EINTR)
      FAIL("waitpid(%ld): %s", (long)h, strerror(errno));
    if (now_s() >= end)
      return 0;
    sleep_s(0.001);
  }
}

int reap_code(helper h, double seconds) {
  int status;
  if (!wait_for(h, seconds, &status))
    FAIL("helper %ld still running after %g s", (long)h, scaled(seconds));
  if (WIFSIGNALED(status))
    FAIL("helper %ld was killed by signal %d", (long)h, WTERMSIG(status));
  return WEXITSTATUS(status);
}

int reap_within(helper h, double seconds) {
  int status;
  if (!wait_for(h, seconds, &status))
    return 0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    FAIL("helper %ld failed (wait status %d)", (long)h, status);
  return 1;
}

_Noreturn void die(int code) {
  _exit(code);
}

void kill_helper(helper h) {
  int status;
  kill((pid_t)h, SIGKILL);
  if (!wait_for(h, 10, &status))
    FAIL("helper %ld survived SIGKILL", (long)h);
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
    FAIL("helper %ld ended before it was killed (wait status %d)", (long)h, status);
}

/* ---- what the test's processes share --------------------------------------------------------- */

void post(int counter) {
  atomic_fetch_add(&shared->counter[counter], 1);
  syscall(SYS_futex, (uint32_t *)&shared->counter[counter], FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

uint32_t posts(int counter) {
  return atomic_load(&shared->counter[counter]);
}

void await_posts(int counter, uint32_t n, double seconds, const char *what) {
  double end = now_s() + scaled(seconds);
  for (;;) {
    uint32_t seen = atomic_load(&shared->counter[counter]);
    double left = end - now_s();
    struct timespec ts;
    if (seen >= n)
      return;
    if (left <= 0)
      FAIL("%s did not happen within %g s (counter %d is %u, not %u)", what, scaled(seconds),
           counter, seen, n);
    if (left > 0.1) /* wake up now and then: a futex wait is not a promise */
      left = 0.1;
    ts.tv_sec = 0;
    ts.tv_nsec = (long)(left * 1e9);
    /* Sleeps only while the counter is still `seen`: a post in between is never missed. */
    syscall(SYS_futex, (uint32_t *)&shared->counter[counter], FUTEX_WAIT, seen, &ts, NULL, 0);
  }
}

typedef struct thread_call {
  void (*fn)(void *arg);
  void *arg;
  atomic_int done;
} thread_call;

static void *thread_main(void *p) {
  thread_call *c = p;
  c->fn(c->arg);
  atomic_store(&c->done, 1);
  return NULL;
}

void run_thread(void (*fn)(void *arg), void *arg, double seconds) {
  thread_call c = {fn, arg, 0};
  double end = now_s() + scaled(seconds);
  pthread_t t;
  int e;
  if ((e = pthread_create(&t, NULL, thread_main, &c)) != 0)
    FAIL("pthread_create: %s", strerror(e));
  while (!atomic_load(&c.done)) {
    if (now_s() > end)
      FAIL("thread still running after %g s", scaled(seconds));
    sleep_s(0.001);
  }
  pthread_join(t, NULL);
}

void pin_to_cpu(int which) {
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

/* ---- POSIX objects --------------------------------------------------------------------------- */

int os_object_exists(const char *name) {
  char path[NAME_BUF + 16];
  struct stat sb;
  snprintf(path, sizeof path, "/dev/shm/lxshm.%s", name);
  return stat(path, &sb) == 0;
}

/* A size larger than all of /dev/shm: the reservation fails at once (tmpfs checks its size
 * limit before allocating), so nothing large is ever allocated. A tmpfs without a limit would
 * really try, so the test refuses to run there. */
uint64_t os_size_without_room(const char **says) {
  struct statvfs fs;
  uint64_t total, huge;
  if (statvfs("/dev/shm", &fs) != 0)
    FAIL("statvfs(/dev/shm): %s", strerror(errno));
  total = (uint64_t)fs.f_blocks * fs.f_frsize;
  if (total == 0)
    FAIL("/dev/shm has no size limit: cannot test a size larger than it");
  for (huge = (uint64_t)1 << 39; huge <= total; huge <<= 1)
    continue;
  if (huge > LXSHM_SIZE_MAX)
    FAIL("/dev/shm (%llu bytes) is larger than LXSHM_SIZE_MAX", (unsigned long long)total);
  *says = "posix_fallocate";
  return huge;
}

void name_made(const char *name) {
  int i = atomic_fetch_add(&the_board->nnames, 1);
  if (i >= MAX_NAMES)
    FAIL("a test may make at most %d names", MAX_NAMES);
  snprintf(the_board->names[i], NAME_BUF, "%s", name);
}

/* ---- running one test ------------------------------------------------------------------------ */

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
static int run_test(int number, const test_entry *t) {
  double limit = DEADLINE_S * slow;
  char reason[sizeof the_board->reason + 64];
  int status, timed_out, i, n;
  pid_t pid;

  memset(the_board, 0, sizeof *the_board);
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if (pid < 0) {
    printf("not ok %d - %s: fork: %s\n", number, t->title, strerror(errno));
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
    snprintf(path, sizeof path, "/lxshm.%s", the_board->names[i]);
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
    printf("ok %d - %s\n", number, t->title);
    return 1;
  }
  printf("not ok %d - %s: %s\n", number, t->title, reason);
  return 0;
}

int main(int argc, char **argv) {
  const char *filter = argc > 1 ? argv[1] : NULL;
  const char *env = getenv("LXSHM_TEST_SLOW");
  int i, selected = 0, passed = 0, number = 0;
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
  shared = &the_board->scratch;
  /* SIGCHLD stays blocked in the runner, so that it can sleep until a test ends. */
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &child_mask);

  for (i = 0; i < test_count; i++)
    selected += filter == NULL || strstr(all_tests[i].title, filter) != NULL;
  printf("1..%d\n", selected);
  for (i = 0; i < test_count; i++)
    if (filter == NULL || strstr(all_tests[i].title, filter) != NULL)
      passed += run_test(++number, &all_tests[i]);
  printf("C core: %d passed, %d failed\n", passed, selected - passed);
  munmap(the_board, sizeof *the_board);
  return selected > 0 && passed == selected ? 0 : 1;
}

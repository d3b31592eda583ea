/* runner_win.c — runs the C tests on Windows (or under Wine): each test in a new process of this
 * exe inside a job object, under a deadline; helpers as further processes of this exe; counters
 * in a named mapping all of them open; and the facts of Windows objects (test.h). A hang or a
 * crash is a failure, and the job takes the test's helpers down with it. Test-only code.
 *
 * Usage: test_win [SUBSTRING]  runs the tests whose title contains SUBSTRING (default: all).
 * LXSHM_TEST_SLOW=N multiplies every deadline by N. Internally the runner starts itself as
 * `test_win --test N` and tests start helpers as `test_win --helper ID ARGS...`. */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define DEADLINE_S 60.0 /* per test, times LXSHM_TEST_SLOW; Wine starts processes slowly */
#define SCRATCH_ENV "LXSHM_TEST_SCRATCH" /* names the mapping that holds `shared` */

scratch *shared;
static char self[MAX_PATH]; /* this executable, to start helpers */
static char context[160];   /* what the current process is doing, shown with a failure */
static const char *role = "runner";

const int names_outlive_handles = 0;

/* ---- failures ---------------------------------------------------------------------------------
 * A process prints its own failure and exits 1: a helper's fails the test through its exit
 * status, the test's through the runner's. */

_Noreturn void fail_at(const char *file, int line, const char *fmt, ...) {
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

void note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(context, sizeof context, fmt, ap);
  va_end(ap);
}

static DWORD scaled_ms(double s) {
  return (DWORD)(scaled(s) * 1000);
}

/* ---- helper processes ------------------------------------------------------------------------ */

/* Starts `test_win --helper LINE`; its output goes where ours goes, and it joins our job. Under
 * Wine, CreateProcess now and then fails with ERROR_INTERNAL_ERROR (1359) while many processes
 * start and exit at once (seen in a CI run, in the attach race): that one error is tried
 * again, up to SPAWN_TRIES times, 10 ms apart; any other fails at once. */
#define SPAWN_TRIES 20
helper spawn(const char *fmt, ...) {
  char cmd[1024];
  STARTUPINFOA si;
  PROCESS_INFORMATION pi;
  va_list ap;
  int n = snprintf(cmd, sizeof cmd, "\"%s\" --helper ", self), tries = 0;
  va_start(ap, fmt);
  vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
  va_end(ap);
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  while (!CreateProcessA(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
    DWORD e = GetLastError();
    if (e != ERROR_INTERNAL_ERROR || ++tries >= SPAWN_TRIES)
      FAIL("CreateProcess(%s): error %lu (%d tries)", cmd, e, tries + 1);
    Sleep(10);
  }
  CloseHandle(pi.hThread);
  return (helper)pi.hProcess;
}

int reap_code(helper h, double seconds) {
  DWORD code;
  if (WaitForSingleObject((HANDLE)h, scaled_ms(seconds)) != WAIT_OBJECT_0)
    FAIL("helper still running after %g s", scaled(seconds));
  if (!GetExitCodeProcess((HANDLE)h, &code))
    FAIL("GetExitCodeProcess: error %lu", GetLastError());
  CloseHandle((HANDLE)h);
  return (int)code;
}

int reap_within(helper h, double seconds) {
  int code;
  if (WaitForSingleObject((HANDLE)h, scaled_ms(seconds)) != WAIT_OBJECT_0)
    return 0;
  if ((code = reap_code(h, 0)) != 0)
    FAIL("helper exited with status %d", code);
  return 1;
}

_Noreturn void die(int code) {
  ExitProcess((UINT)code);
}

void kill_helper(helper h) {
  int code;
  if (!TerminateProcess((HANDLE)h, 99))
    FAIL("TerminateProcess: error %lu", GetLastError());
  code = reap_code(h, 10);
  if (code != 99)
    FAIL("helper ended on its own (status %d) before it was terminated", code);
}

/* ---- what the test's processes share ----------------------------------------------------------
 * Counters are polled every millisecond: Windows has no wait on a word shared between
 * processes, and a test only needs to learn of a step soon, not at once. */

void post(int counter) {
  atomic_fetch_add(&shared->counter[counter], 1);
}

uint32_t posts(int counter) {
  return atomic_load(&shared->counter[counter]);
}

void await_posts(int counter, uint32_t n, double seconds, const char *what) {
  double end = now_s() + scaled(seconds);
  uint32_t seen;
  while ((seen = atomic_load(&shared->counter[counter])) < n) {
    if (now_s() > end)
      FAIL("%s did not happen within %g s (counter %d is %u, not %u)", what, scaled(seconds),
           counter, seen, n);
    Sleep(1);
  }
}

typedef struct thread_call {
  void (*fn)(void *arg);
  void *arg;
} thread_call;

static DWORD WINAPI thread_main(LPVOID p) {
  thread_call *c = p;
  c->fn(c->arg);
  return 0;
}

void run_thread(void (*fn)(void *arg), void *arg, double seconds) {
  thread_call c = {fn, arg};
  HANDLE t = CreateThread(NULL, 0, thread_main, &c, 0, NULL);
  if (t == NULL)
    FAIL("CreateThread: error %lu", GetLastError());
  if (WaitForSingleObject(t, scaled_ms(seconds)) != WAIT_OBJECT_0)
    FAIL("thread still running after %g s", scaled(seconds));
  CloseHandle(t);
}

void pin_to_cpu(int which) {
  DWORD_PTR mine, system, bit;
  int seen = 0, count = 0;
  if (!GetProcessAffinityMask(GetCurrentProcess(), &mine, &system))
    return;
  for (bit = 1; bit != 0; bit <<= 1)
    count += (mine & bit) != 0;
  if (count < 2)
    return;
  for (bit = 1; bit != 0; bit <<= 1) {
    if ((mine & bit) && seen++ == which) {
      if (!SetProcessAffinityMask(GetCurrentProcess(), bit))
        FAIL("SetProcessAffinityMask: error %lu", GetLastError());
      return;
    }
  }
}

/* ---- Windows objects ------------------------------------------------------------------------- */

int os_object_exists(const char *name) {
  char path[128];
  HANDLE h;
  snprintf(path, sizeof path, "Local\\lxshm.%s", name);
  if ((h = OpenFileMappingA(FILE_MAP_READ, FALSE, path)) == NULL)
    return 0;
  CloseHandle(h);
  return 1;
}

/* lxshm refuses what the commit limit cannot hold; Wine's limit is the machine's memory and
 * swap, far below the largest valid size. */
uint64_t os_size_without_room(const char **says) {
  MEMORYSTATUSEX mem;
  mem.dwLength = sizeof mem;
  if (!GlobalMemoryStatusEx(&mem))
    FAIL("GlobalMemoryStatusEx: error %lu", GetLastError());
  if (mem.ullTotalPageFile >= LXSHM_SIZE_MAX)
    FAIL("this machine can commit %llu bytes: no valid size is too large for it",
         (unsigned long long)mem.ullTotalPageFile);
  *says = "commit";
  return LXSHM_SIZE_MAX;
}

void name_made(const char *name) {
  (void)name; /* nothing to clean up: objects end with the processes that hold them */
}

/* ---- the runner ------------------------------------------------------------------------------ */

/* Maps the scratch mapping of this run: the runner creates it, tests and helpers open it. */
static int map_scratch(int create) {
  char name[64];
  HANDLE h;
  if (create) {
    snprintf(name, sizeof name, "Local\\lxshm-test.%lu.scratch", GetCurrentProcessId());
    h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, sizeof *shared, name);
    if (h == NULL || !SetEnvironmentVariableA(SCRATCH_ENV, name))
      return 0;
  }
  else {
    DWORD n = GetEnvironmentVariableA(SCRATCH_ENV, name, sizeof name);
    if (n == 0 || n >= sizeof name || (h = OpenFileMappingA(FILE_MAP_WRITE, FALSE, name)) == NULL)
      return 0;
  }
  shared = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, sizeof *shared);
  return shared != NULL; /* the handle stays open as long as the process */
}

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

  memset(shared, 0, sizeof *shared);
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
  r = WaitForSingleObject(pi.hProcess, scaled_ms(DEADLINE_S));
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
         all_tests[index].title, now_s() - start);
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
    if (i < 0 || i >= test_count || !map_scratch(0))
      return 2;
    role = all_tests[i].title;
    all_tests[i].fn();
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "--helper") == 0) {
    const helper_entry *h = find_helper(argv[2]);
    if (h == NULL || argc != 3 + h->args || !map_scratch(0))
      return 2;
    role = h->name;
    return h->fn(argv + 3);
  }

  if (!map_scratch(1)) {
    printf("# scratch mapping: error %lu\n", GetLastError());
    return 2;
  }
  if (argc > 1)
    filter = argv[1];
  for (i = 0; i < test_count; i++)
    selected += filter == NULL || strstr(all_tests[i].title, filter) != NULL;
  printf("1..%d\n", selected);
  for (i = 0; i < test_count; i++)
    if (filter == NULL || strstr(all_tests[i].title, filter) != NULL)
      passed += run_test(++number, i);
  printf("Windows: %d passed, %d failed\n", passed, selected - passed);
  return selected > 0 && passed == selected ? 0 : 1;
}

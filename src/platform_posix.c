/* platform_posix.c — platform.h on Linux: POSIX shared memory (/dev/shm), a process-shared
 * robust pthread mutex, futex waits. The only file of the core that includes OS headers or
 * reads errno; it holds no policy (retries, deadlines, layout): segment.c decides those. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "layout.h"
#include "platform.h"

_Static_assert(sizeof(pthread_mutex_t) <= LXSHM__LOCK_BYTES, "pthread_mutex_t fits the header");

/* Records a failed OS call: status `st`, "call: OS text", errno. `e` is errno captured right
 * after the call, before anything else could change it. */
static lxshm_status os_fail(lxshm_error *err, lxshm_status st, const char *call, int e) {
  if (err != NULL) {
    char text[128];
    const char *s = strerror_r(e, text, sizeof text); /* GNU: returns the text */
    snprintf(err->message, sizeof err->message, "%s: %s", call, s);
    err->os_code = e;
  }
  return st;
}

static lxshm_status errno_status(int e, lxshm_status fallback) {
  switch (e) {
    case EEXIST:
      return LXSHM_EXISTS;
    case ENOENT:
      return LXSHM_NOT_FOUND;
    case EACCES:
    case EPERM:
    case EROFS:
      return LXSHM_PERMISSION;
    default:
      return fallback;
  }
}

/* "/lxshm.<name>": the name's place in the shared-memory namespace, never a path elsewhere. */
static void os_name(char out[LXSHM_NAME_MAX + 8], const char *name) {
  snprintf(out, LXSHM_NAME_MAX + 8, "/lxshm.%s", name);
}

/* ---- mappings ---------------------------------------------------------------------------- */

lxshm_status lxshm__map_create(const char *name, size_t size, unsigned mode, lxshm__mapping *m,
                               lxshm_error *err) {
  char path[LXSHM_NAME_MAX + 8];
  const char *call;
  lxshm_status st;
  int fd, e;
  void *addr;

  memset(m, 0, sizeof *m);
  os_name(path, name);
  fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)(mode & 07777));
  if (fd < 0) {
    e = errno;
    return os_fail(err, errno_status(e, LXSHM_SYSTEM), "shm_open", e);
  }
  /* From here on the name is ours: every failure must give it back. */
  if (fchmod(fd, (mode_t)(mode & 07777)) != 0) { /* exactly `mode`, whatever the umask */
    call = "fchmod", e = errno, st = errno_status(e, LXSHM_SYSTEM);
    goto fail;
  }
  if (ftruncate(fd, (off_t)size) != 0) {
    call = "ftruncate", e = errno;
    st = (e == EFBIG || e == EINVAL || e == ENOSPC) ? LXSHM_INVALID_SIZE : LXSHM_SYSTEM;
    goto fail;
  }
  /* Reserve the memory now: on tmpfs a page first touched when the file system is full raises
   * SIGBUS in whoever touches it. posix_fallocate returns the error instead of setting errno. */
  e = posix_fallocate(fd, 0, (off_t)size);
  if (e != 0) {
    call = "posix_fallocate";
    st = (e == ENOSPC || e == EFBIG || e == ENOMEM) ? LXSHM_INVALID_SIZE : LXSHM_SYSTEM;
    goto fail;
  }
  addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) {
    call = "mmap", e = errno;
    st = (e == ENOMEM) ? LXSHM_INVALID_SIZE : LXSHM_SYSTEM;
    goto fail;
  }
  close(fd);
  m->base = addr;
  m->size = size;
  return LXSHM_OK;

fail:
  close(fd);
  shm_unlink(path);
  return os_fail(err, st, call, e);
}

lxshm_status lxshm__map_open(const char *name, lxshm__mapping *m, lxshm_error *err) {
  char path[LXSHM_NAME_MAX + 8];
  struct stat sb;
  int fd, e;
  void *addr;

  memset(m, 0, sizeof *m);
  os_name(path, name);
  fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    e = errno;
    return os_fail(err, errno_status(e, LXSHM_SYSTEM), "shm_open", e);
  }
  if (fstat(fd, &sb) != 0) {
    e = errno;
    close(fd);
    return os_fail(err, LXSHM_SYSTEM, "fstat", e);
  }
  if (sb.st_size == 0) { /* a creator between shm_open and ftruncate */
    close(fd);
    return LXSHM_OK;
  }
  if ((uintmax_t)sb.st_size > SIZE_MAX) {
    close(fd);
    return lxshm__fail(err, LXSHM_CORRUPT, "mapping of %jd bytes is too large",
                       (intmax_t)sb.st_size);
  }
  addr = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) {
    e = errno;
    close(fd);
    return os_fail(err, errno_status(e, LXSHM_SYSTEM), "mmap", e);
  }
  close(fd);
  m->base = addr;
  m->size = (size_t)sb.st_size;
  return LXSHM_OK;
}

void lxshm__map_close(lxshm__mapping *m) {
  if (m->base != NULL)
    munmap(m->base, m->size);
  m->base = NULL;
  m->size = 0;
}

lxshm_status lxshm__map_unlink(const char *name, lxshm_error *err) {
  char path[LXSHM_NAME_MAX + 8];
  int e;

  os_name(path, name);
  if (shm_unlink(path) != 0) {
    e = errno;
    return os_fail(err, errno_status(e, LXSHM_SYSTEM), "shm_unlink", e);
  }
  return LXSHM_OK;
}

/* ---- the lock: a robust, process-shared, error-checking pthread mutex --------------------- */

lxshm_status lxshm__lock_init(lxshm__mapping *m, void *lock, lxshm_error *err) {
  pthread_mutexattr_t attr;
  int rc;

  (void)m;
  if ((rc = pthread_mutexattr_init(&attr)) != 0)
    return os_fail(err, LXSHM_SYSTEM, "pthread_mutexattr_init", rc);
  /* Robust: the kernel hands a dead owner's lock to the next locker with EOWNERDEAD.
   * Error-checking: relocking from the owning thread fails with EDEADLK instead of hanging. */
  if ((rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED)) == 0 &&
      (rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST)) == 0 &&
      (rc = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK)) == 0)
    rc = pthread_mutex_init((pthread_mutex_t *)lock, &attr);
  pthread_mutexattr_destroy(&attr);
  return rc == 0 ? LXSHM_OK : os_fail(err, LXSHM_SYSTEM, "pthread_mutex_init", rc);
}

static struct timespec to_timespec(uint64_t ns) {
  struct timespec ts;
  ts.tv_sec = (time_t)(ns / 1000000000u);
  ts.tv_nsec = (long)(ns % 1000000000u);
  return ts;
}

lxshm_status lxshm__lock_acquire(lxshm__mapping *m, void *lock, uint64_t deadline,
                                 int *owner_died, lxshm_error *err) {
  pthread_mutex_t *mx = (pthread_mutex_t *)lock;
  int rc;

  (void)m;
  *owner_died = 0;
  if (deadline == UINT64_MAX) {
    rc = pthread_mutex_lock(mx);
  }
  else {
    struct timespec ts = to_timespec(deadline);
    rc = pthread_mutex_clocklock(mx, CLOCK_MONOTONIC, &ts);
  }
  switch (rc) {
    case 0:
      return LXSHM_OK;
    case EOWNERDEAD:
      *owner_died = 1;
      return LXSHM_OK;
    case ETIMEDOUT:
      return lxshm__fail(err, LXSHM_TIMEOUT, "lock not obtained in time");
    case EDEADLK:
      return lxshm__fail(err, LXSHM_INVALID, "lock already held by this thread");
    case ENOTRECOVERABLE:
      return lxshm__fail(err, LXSHM_CORRUPT, "lock not recoverable");
    default:
      return os_fail(err, rc == EINVAL ? LXSHM_CORRUPT : LXSHM_SYSTEM, "pthread_mutex_lock", rc);
  }
}

void lxshm__lock_recovered(lxshm__mapping *m, void *lock) {
  (void)m;
  pthread_mutex_consistent((pthread_mutex_t *)lock);
}

void lxshm__lock_release(lxshm__mapping *m, void *lock) {
  (void)m;
  pthread_mutex_unlock((pthread_mutex_t *)lock);
}

/* ---- futex waits --------------------------------------------------------------------------- */

/* The word lives in memory shared between processes, so no FUTEX_PRIVATE_FLAG. WAIT_BITSET takes
 * an absolute CLOCK_MONOTONIC deadline: a wait interrupted by a signal resumes against the same
 * deadline instead of restarting a relative timeout. */
lxshm_status lxshm__word_wait(lxshm__mapping *m, _Atomic uint32_t *word, uint32_t expected,
                              uint64_t deadline, lxshm_error *err) {
  struct timespec ts;
  long rc;
  int e;

  (void)m;
  if (deadline != UINT64_MAX) {
    if (lxshm__clock_ns() >= deadline)
      return LXSHM_TIMEOUT;
    ts = to_timespec(deadline);
  }
  rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, expected,
               deadline == UINT64_MAX ? NULL : &ts, NULL, FUTEX_BITSET_MATCH_ANY);
  if (rc == 0)
    return LXSHM_OK;
  e = errno;
  switch (e) {
    case EAGAIN: /* the word had already changed */
    case EINTR:
      return LXSHM_OK;
    case ETIMEDOUT:
      return LXSHM_TIMEOUT;
    default:
      return os_fail(err, LXSHM_SYSTEM, "futex", e);
  }
}

int lxshm__word_wake(lxshm__mapping *m, _Atomic uint32_t *word) {
  long woken;
  (void)m;
  woken = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
  return woken > 0 ? (int)woken : 0;
}

/* ---- clocks and processes ------------------------------------------------------------------ */

uint64_t lxshm__clock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t lxshm__wallclock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}

void lxshm__sleep_ns(uint64_t ns) {
  struct timespec ts = to_timespec(ns);
  nanosleep(&ts, NULL);
}

/* getpid is a system call (glibc stopped caching it), and every commit stamps the writer's pid:
 * cache it, and forget it in the child of a fork. glibc unregisters the handler if the module is
 * unloaded. */
static _Atomic uint32_t cached_pid;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void forget_pid(void) {
  atomic_store_explicit(&cached_pid, 0, memory_order_relaxed);
}

static void watch_forks(void) {
  pthread_atfork(NULL, NULL, forget_pid);
}

uint32_t lxshm__pid(void) {
  uint32_t pid = atomic_load_explicit(&cached_pid, memory_order_relaxed);
  if (pid == 0) {
    pthread_once(&atfork_once, watch_forks);
    pid = (uint32_t)getpid();
    atomic_store_explicit(&cached_pid, pid, memory_order_relaxed);
  }
  return pid;
}

int lxshm__pid_alive(uint32_t pid) {
  if (pid == 0 || pid > (uint32_t)INT_MAX)
    return 0;
  return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

unsigned lxshm__current_cpu(void) {
  int cpu = sched_getcpu(); /* glibc reads it from the rseq area: no system call */
  return cpu >= 0 ? (unsigned)cpu + 1u : 0u;
}

unsigned lxshm__cpu_count(void) {
  cpu_set_t set;
  long n;
  if (sched_getaffinity(0, sizeof set, &set) == 0) /* taskset or a container may allow fewer */
    return CPU_COUNT(&set) > 0 ? (unsigned)CPU_COUNT(&set) : 1u;
  n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)n : 1u;
}

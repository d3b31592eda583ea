/* platform_posix.c — platform.h on Linux: POSIX shared memory (/dev/shm), a process-shared
 * robust pthread mutex, futex waits. The only file of the core that includes OS headers or
 * reads errno; it holds no policy (retries, deadlines, layout): segment.c decides those. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
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

/* Where shm_open keeps its objects: new objects are made here as unnamed files and linked into
 * place once whole, so nobody ever sees one half made. */
#define SHM_DIR "/dev/shm"

static void dir_path(char out[LXSHM_NAME_MAX + 16], const char *name) {
  snprintf(out, LXSHM_NAME_MAX + 16, SHM_DIR "/lxshm.%s", name);
}

/* ---- mappings ---------------------------------------------------------------------------- */

/* Records which file a mapping is of (os[2]: device, os[3]: inode), so that a lock's holder can
 * be checked against the processes that map it. */
static void remember_file(lxshm__mapping *m, int fd) {
  struct stat sb;
  if (fstat(fd, &sb) == 0) {
    m->os[2] = (intptr_t)sb.st_dev;
    m->os[3] = (intptr_t)sb.st_ino;
  }
}

/* An unnamed file in SHM_DIR, or -1 with errno set (EISDIR, EOPNOTSUPP or EINVAL where the
 * kernel or file system has no O_TMPFILE). */
static int unnamed_file(void) {
#ifdef O_TMPFILE
  return open(SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#else
  errno = EOPNOTSUPP;
  return -1;
#endif
}

lxshm_status lxshm__map_create(const char *name, size_t size, unsigned mode, lxshm__mapping *m,
                               lxshm_error *err) {
  char path[LXSHM_NAME_MAX + 16];
  struct stat sb;
  const char *call;
  lxshm_status st;
  int fd, e;
  void *addr;

  memset(m, 0, sizeof *m);
  m->os[0] = -1;
  dir_path(path, name);
  /* The name decides at publication; refuse early what would only be thrown away then. */
  if (stat(path, &sb) == 0)
    return os_fail(err, LXSHM_EXISTS, "shm_open", EEXIST);
  fd = unnamed_file();
  if (fd < 0 && (errno == EISDIR || errno == EOPNOTSUPP || errno == EINVAL)) {
    char oname[LXSHM_NAME_MAX + 8];
    os_name(oname, name); /* no unnamed files here: make it under its name (m->os[1] says so) */
    fd = shm_open(oname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)(mode & 07777));
    m->os[1] = 1;
  }
  if (fd < 0) {
    e = errno;
    return os_fail(err, errno_status(e, LXSHM_SYSTEM), m->os[1] ? "shm_open" : "open", e);
  }
  m->os[0] = fd;
  remember_file(m, fd);
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
  m->base = addr;
  m->size = size;
  return LXSHM_OK; /* the descriptor stays open until published or discarded */

fail:
  lxshm__map_discard(name, m);
  return os_fail(err, st, call, e);
}

/* Maps the object again through its name, so that /proc/PID/maps and lsof show the name rather
 * than the unnamed file it was made as. Keeps the first view if the name no longer holds the
 * same file, or anything fails: it is only cosmetic. */
static void remap_named(const char *name, lxshm__mapping *m, const struct stat *mine) {
  char oname[LXSHM_NAME_MAX + 8];
  struct stat now;
  void *addr;
  int fd;
  os_name(oname, name);
  if ((fd = shm_open(oname, O_RDWR | O_CLOEXEC, 0)) < 0)
    return;
  addr = MAP_FAILED;
  if (fstat(fd, &now) == 0 && mine->st_ino == now.st_ino && mine->st_dev == now.st_dev)
    addr = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (addr == MAP_FAILED)
    return;
  munmap(m->base, m->size);
  m->base = addr;
}

lxshm_status lxshm__map_publish(const char *name, lxshm__mapping *m, lxshm_error *err) {
  char path[LXSHM_NAME_MAX + 16], self[32];
  struct stat sb;
  int fd = (int)m->os[0], rc, e;

  if (m->os[1]) { /* made under its name already */
    close(fd);
    m->os[0] = -1;
    return LXSHM_OK;
  }
  dir_path(path, name);
  /* Linking through /proc needs no privilege; AT_EMPTY_PATH is the fallback where /proc is
   * missing. Either fails with EEXIST if the name is taken: the publication is exclusive. */
  snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
  rc = linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
  if (rc != 0 && errno == ENOENT)
    rc = linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH);
  if (rc != 0) {
    e = errno;
    return os_fail(err, errno_status(e, LXSHM_SYSTEM), "linkat", e);
  }
  if (fstat(fd, &sb) == 0)
    remap_named(name, m, &sb);
  close(fd);
  m->os[0] = -1;
  return LXSHM_OK;
}

void lxshm__map_discard(const char *name, lxshm__mapping *m) {
  int fd = (int)m->os[0];
  if (fd >= 0 && m->os[1]) {
    /* Made under its name: give the name back, but only if it still names our file (someone
     * may have removed it and made another since). */
    char oname[LXSHM_NAME_MAX + 8];
    struct stat mine, now;
    int other;
    os_name(oname, name);
    other = shm_open(oname, O_RDONLY | O_CLOEXEC, 0);
    if (other >= 0) {
      if (fstat(fd, &mine) == 0 && fstat(other, &now) == 0 && mine.st_ino == now.st_ino &&
          mine.st_dev == now.st_dev)
        shm_unlink(oname);
      close(other);
    }
  }
  if (fd >= 0)
    close(fd); /* an unnamed file vanishes with its last descriptor and mapping */
  lxshm__map_close(m);
  m->os[0] = -1;
}

/* Describes a file's owner for messages: "user bob (uid 1001)". */
static void describe_owner(uid_t uid, char *out, size_t n) {
  struct passwd pw, *found = NULL;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != NULL)
    snprintf(out, n, "user %s (uid %u)", found->pw_name, (unsigned)uid);
  else
    snprintf(out, n, "uid %u", (unsigned)uid);
}

lxshm_status lxshm__map_open(const char *name, int readonly, lxshm__mapping *m, lxshm_error *err) {
  char path[LXSHM_NAME_MAX + 8];
  struct stat sb;
  int fd, e;
  void *addr;

  memset(m, 0, sizeof *m);
  m->os[0] = -1;
  m->readonly = readonly != 0;
  os_name(path, name);
  fd = shm_open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC, 0);
  if (fd < 0) {
    e = errno;
    return os_fail(err, errno_status(e, LXSHM_SYSTEM), "shm_open", e);
  }
  if (fstat(fd, &sb) != 0) {
    e = errno;
    close(fd);
    return os_fail(err, LXSHM_SYSTEM, "fstat", e);
  }
  m->os[2] = (intptr_t)sb.st_dev;
  m->os[3] = (intptr_t)sb.st_ino;
  if (sb.st_uid != geteuid()) {
    m->foreign = 1;
    describe_owner(sb.st_uid, m->owner, sizeof m->owner);
  }
  /* Not yet sized (a creator between open and ftruncate), or not wholly backed by memory (one
   * between ftruncate and fallocate, or dead there): touching an unbacked page when the file
   * system is full raises SIGBUS, so do not map it at all. */
  if (sb.st_size == 0 || (uintmax_t)sb.st_blocks * 512u < (uintmax_t)sb.st_size) {
    close(fd);
    return LXSHM_OK;
  }
  if ((uintmax_t)sb.st_size > SIZE_MAX) {
    close(fd);
    return lxshm__fail(err, LXSHM_CORRUPT, "mapping of %jd bytes is too large",
                       (intmax_t)sb.st_size);
  }
  addr = mmap(NULL, (size_t)sb.st_size, readonly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED,
              fd, 0);
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

lxshm_status lxshm__map_list(lxshm__name_fn each, void *ud, lxshm_error *err) {
  static const char prefix[] = "lxshm.";
  DIR *dir = opendir(SHM_DIR);
  struct dirent *entry;
  int e;

  if (dir == NULL) {
    e = errno;
    return os_fail(err, errno_status(e, LXSHM_SYSTEM), "opendir " SHM_DIR, e);
  }
  errno = 0;
  while ((entry = readdir(dir)) != NULL) {
    const char *name = entry->d_name + sizeof prefix - 1;
    if (strncmp(entry->d_name, prefix, sizeof prefix - 1) == 0 &&
        lxshm_check_name(name) == LXSHM_OK)
      each(name, ud);
    errno = 0;
  }
  e = errno;
  closedir(dir);
  return e == 0 ? LXSHM_OK : os_fail(err, LXSHM_SYSTEM, "readdir " SHM_DIR, e);
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

/* What lxshm__lock_init made, to compare a lock's bytes with before using them. */
static pthread_mutex_t lock_model;
static pthread_once_t lock_model_once = PTHREAD_ONCE_INIT;

static void make_lock_model(void) {
  lxshm__lock_init(NULL, &lock_model, NULL);
}

#define TID_LIMIT 4194304 /* PID_MAX_LIMIT: no thread id is larger */

/* Whether the bytes at mx can be a lock lxshm__lock_init made, in any state. glibc trusts them:
 * a kind with the priority-inheritance or -protection bits set makes it assert and abort when
 * the futex calls fail, so those bytes must never reach it. The owner fields must name a thread
 * id, nobody, or a robust mutex's dead/unrecoverable markers. */
static int plausible_lock(const pthread_mutex_t *mx) {
#ifdef __GLIBC__
  unsigned raw = (unsigned)mx->__data.__lock;
  unsigned word = raw & 0x3fffffffu; /* less FUTEX_WAITERS, OWNER_DIED */
  int owner = mx->__data.__owner;
  pthread_once(&lock_model_once, make_lock_model);
  /* FUTEX_WAITERS is only ever set beside a holder's thread id, or beside OWNER_DIED when the
   * kernel clears the id of a holder that died: alone, nobody would ever wake the waiters. */
  if (raw == 0x80000000u)
    return 0;
  return mx->__data.__kind == lock_model.__data.__kind && word <= TID_LIMIT &&
         ((owner >= 0 && owner <= TID_LIMIT) || owner == INT_MAX || owner == INT_MAX - 1);
#else
  (void)mx;
  return 1;
#endif
}

/* The thread id holding mx, or 0. */
static int lock_holder(const pthread_mutex_t *mx) {
#ifdef __GLIBC__
  return (int)((unsigned)mx->__data.__lock & 0x3fffffffu);
#else
  (void)mx;
  return 0;
#endif
}

/* Whether process or thread `tid` has the file of m mapped: 1 yes, 0 no, -1 cannot tell (its
 * maps are not ours to read, or the file is unknown). */
static int maps_file(int tid, const lxshm__mapping *m) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  /* A fuzz target is one process whose one thread using lxshm takes and releases every lock
   * within a call: a lock word naming anyone (libFuzzer's own threads, say) is fuzzed bytes. */
  (void)tid, (void)m;
  return 0;
#else
  char path[40], line[512];
  FILE *f;
  int found = 0;
  if (m->os[3] == 0)
    return -1;
  snprintf(path, sizeof path, "/proc/%d/maps", tid);
  if ((f = fopen(path, "re")) == NULL)
    return -1;
  while (!found && fgets(line, sizeof line, f) != NULL) {
    unsigned major, minor;
    unsigned long long inode;
    if (sscanf(line, "%*s %*s %*s %x:%x %llu", &major, &minor, &inode) == 3 &&
        inode == (unsigned long long)m->os[3] && makedev(major, minor) == (dev_t)m->os[2])
      found = 1;
  }
  fclose(f);
  return found;
#endif
}

/* A lock waited for this long at a time: then whether its holder still exists is checked. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define LOCK_SLICE_NS 1000000u /* a fuzz target's locks are its own: look again soon */
#else
#define LOCK_SLICE_NS 1000000000u
#endif

lxshm_status lxshm__lock_acquire(lxshm__mapping *m, void *lock, uint64_t deadline, int *owner_died,
                                 lxshm_error *err) {
  pthread_mutex_t *mx = (pthread_mutex_t *)lock;
  int rc;

  *owner_died = 0;
  if (!plausible_lock(mx))
    return lxshm__fail(err, LXSHM_CORRUPT, "lock bytes are damaged");
  /* A free lock is taken without reading the clock, which costs as much as the lock itself. */
  rc = pthread_mutex_trylock(mx);
  while (rc == EBUSY) {
    uint64_t now = lxshm__clock_ns();
    uint64_t until =
        deadline > now && deadline - now > LOCK_SLICE_NS ? now + LOCK_SLICE_NS : deadline;
    struct timespec ts = to_timespec(until);
    int holder;
    if (!plausible_lock(mx))
      return lxshm__fail(err, LXSHM_CORRUPT, "lock bytes are damaged");
    rc = pthread_mutex_clocklock(mx, CLOCK_MONOTONIC, &ts);
    if (rc != ETIMEDOUT || until >= deadline)
      break;
    /* A holder that no longer exists without the kernel having marked the lock as its dead
     * owner's (it does so when a thread dies holding it) left damaged bytes behind: waiting on
     * would wait for ever. */
    holder = lock_holder(mx);
    if (holder != 0 && kill(holder, 0) != 0 && errno == ESRCH && lock_holder(mx) == holder)
      return lxshm__fail(err, LXSHM_CORRUPT, "lock is held by thread %d, which does not exist",
                         holder);
    /* Nor can a thread hold it that does not even map the object: the bytes name some other
     * process (a kernel thread, say) that will never let go. */
    if (holder != 0 && maps_file(holder, m) == 0 && lock_holder(mx) == holder)
      return lxshm__fail(err, LXSHM_CORRUPT,
                         "lock is held by thread %d, which does not map this object", holder);
    rc = EBUSY;
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

/* ---- futex waits -------------------------------------------------------------------------- */

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

/* ---- clocks and processes ----------------------------------------------------------------- */

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
  char path[32], buf[256], *close_paren;
  ssize_t n;
  int fd;
  if (pid == 0 || pid > (uint32_t)INT_MAX)
    return 0;
  if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
    return 0;
  /* It exists; a zombie (dead, not yet reaped by its parent) does too, but runs no more. Its
   * state is the field after the command name, which ends at the last ')'. */
  snprintf(path, sizeof path, "/proc/%u/stat", (unsigned)pid);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
    return 1; /* no /proc: assume it runs */
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 1;
  buf[n] = '\0';
  close_paren = strrchr(buf, ')');
  return !(close_paren != NULL && close_paren[1] == ' ' && close_paren[2] == 'Z');
}

uint64_t lxshm__pid_start(uint32_t pid) {
  char path[32], buf[512], *p;
  unsigned long long start;
  ssize_t n;
  int fd, field;
  if (!lxshm__pid_alive(pid))
    return 0;
  snprintf(path, sizeof path, "/proc/%u/stat", (unsigned)pid);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
    return 1;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 1;
  buf[n] = '\0';
  /* starttime is field 22 (proc(5)), clock ticks since boot; fields 3 on follow the command
   * name, which ends at the last ')' and may itself hold spaces. */
  if ((p = strrchr(buf, ')')) == NULL)
    return 1;
  for (field = 2; field < 22 && p != NULL; field++)
    p = strchr(p + 1, ' ');
  if (p == NULL || sscanf(p + 1, "%llu", &start) != 1)
    return 1;
  return start + 2; /* never 0 or 1 */
}

unsigned lxshm__current_cpu(void) {
  int cpu = sched_getcpu(); /* glibc reads it from the rseq area: no system call */
  return cpu >= 0 ? (unsigned)cpu + 1u : 0u;
}

void lxshm__yield(void) {
  sched_yield();
}

unsigned lxshm__cpu_count(void) {
  cpu_set_t set;
  long n;
  if (sched_getaffinity(0, sizeof set, &set) == 0) /* taskset or a container may allow fewer */
    return CPU_COUNT(&set) > 0 ? (unsigned)CPU_COUNT(&set) : 1u;
  n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)n : 1u;
}

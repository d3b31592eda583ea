/* tests_posix.c — the C tests only POSIX has, each for a reason test_list.h gives: permission
 * bits and the umask, objects under our prefix that anyone may create or resize with shm_open,
 * and signals. Reaches the OS objects directly, as a foreign or careless process would. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

/* ---- raw access to the OS object, as a foreign or dying process has it ----------------------- */

/* Where the POSIX backend keeps segment `name`: its shm_open name and its file (SPEC §2). */
static void os_name(char out[NAME_BUF + 16], const char *name) {
  snprintf(out, NAME_BUF + 16, "/lxshm.%s", name);
}

static void shm_file(char out[NAME_BUF + 16], const char *name) {
  snprintf(out, NAME_BUF + 16, "/dev/shm/lxshm.%s", name);
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

/* ==== helpers ================================================================================= */

/* signal_then_write NAME: once the test waits on NAME, sends it SIGUSR1 twice, 25 ms apart,
 * then writes "woke" 25 ms later. */
HELPER(signal_then_write) {
  lxshm_segment *own;
  lxshm_error err;
  pid_t test = getppid(); /* POSIX helpers are the test's own children */
  CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_OK);
  await_waiters(own, 1);
  kill(test, SIGUSR1);
  sleep_s(0.025);
  kill(test, SIGUSR1);
  sleep_s(0.025);
  CHECK_ST(lxshm_write(own, "woke", 4, scaled(5), &err), LXSHM_OK);
  lxshm_close(own);
  return 0;
}

/* ==== tests =================================================================================== */

/* New segments get exactly the mode asked for, whatever the umask. */
TEST(file_mode) {
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

/* Objects under our prefix that lxshm did not make, or did not finish. */
TEST(posix_foreign_objects) {
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

/* An object cut short after it was made is refused at open, never read past its end. */
/* An object of another user is refused, naming its owner, unless the caller trusts it. Making
 * one needs root (chown); otherwise the test says so and checks only the caller's own. */
TEST(posix_foreign_owner) {
  char name[NAME_BUF], path[NAME_BUF + 16];
  lxshm_segment *seg, *theirs;
  lxshm_error err;
  int created;

  fresh_name(name, "owner");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_open(name, &theirs, &err), LXSHM_OK); /* ours: no trust needed */
  lxshm_close(theirs);
  if (geteuid() != 0) {
    printf("# posix_foreign_owner: not root, so no object of another user was made\n");
  }
  else {
    snprintf(path, sizeof path, "/dev/shm/lxshm.%s", name);
    CHECK(chown(path, 65534, (gid_t)-1) == 0);
    CHECK_ST(lxshm_open(name, &theirs, &err), LXSHM_PERMISSION);
    CHECK(theirs == NULL);
    CHECK_HAS(err.message, "belongs to ");
    CHECK_HAS(err.message, "(uid 65534)");
    CHECK_ST(lxshm_open_with(name, LXSHM_READONLY, &theirs, &err), LXSHM_PERMISSION);
    CHECK_ST(lxshm_attach(name, 64, LXSHM_DEFAULT_MODE, &theirs, &created, &err), LXSHM_PERMISSION);
    CHECK_ST(lxshm_open_with(name, LXSHM_TRUST, &theirs, &err), LXSHM_OK);
    CHECK_ST(lxshm_write(theirs, "x", 1, scaled(5), &err), LXSHM_OK);
    lxshm_close(theirs);
  }
  lxshm_close(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

TEST(truncated) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  uint64_t map_size;

  fresh_name(name, "truncated");
  CHECK_ST(lxshm_create(name, 4096, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "valid", 5, scaled(5), &err), LXSHM_OK);
  map_size = seg_object(seg)->hdr->map_size;
  lxshm_close(seg);
  truncate_raw(name, (size_t)map_size / 2);
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_CORRUPT);
  CHECK(seg == NULL);
  CHECK_HAS(err.message, "bytes");
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
}

/* Signals arriving while a process waits do not end its wait. */
static volatile sig_atomic_t signals_seen;

static void count_signal(int sig) {
  (void)sig;
  signals_seen++;
}

TEST(wait_signals) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  struct sigaction sa;
  uint64_t now = 0;
  helper h;

  fresh_name(name, "signals");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = count_signal; /* no SA_RESTART: the futex wait sees EINTR */
  sigaction(SIGUSR1, &sa, NULL);
  h = spawn("signal_then_write %s", name);
  CHECK_ST(lxshm_wait(seg, 0, scaled(5), &now, &err), LXSHM_OK);
  CHECK_U64(now, ==, 1);
  CHECK_VALUE(seg, "woke", 4, 1);
  reap_ok(h, 20);
  CHECK_INT(signals_seen, >=, 1); /* two signals may arrive as one */
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* tests_lock.c — the segment lock on every OS: a process or thread that dies holding it, before
 * or after its commit or halfway through one, delays nobody and leaves the last committed value;
 * a relock from the owning thread fails; a lock held elsewhere times out. */
#include <stdlib.h>
#include <string.h>

#include "test.h"

enum { C_READY }; /* counter (test.h): the holder has the lock */

/* ==== helpers ================================================================================= */

static void lock_and_scribble(void *seg) {
  lock_or_fail(seg);
  scribble_idle_slot(seg);
} /* a thread that returns here ends holding the lock */

/* hold NAME HOW: takes NAME's lock and dies holding it (die(7): no cleanup of any kind).
 *   exit      dies holding the lock, having changed nothing
 *   commit    commits "committed", then dies before unlocking, which would wake waiters
 *   scribble  writes "committed", then half-commits over the idle slot and dies
 *   sleep     as scribble, then posts C_READY and sleeps until killed
 *   thread    writes "committed", lets a thread lock, scribble and end, posts C_READY and
 *             sleeps until killed: the process lives, the owner thread does not */
HELPER(hold) {
  const char *how = argv[1];
  lxshm_segment *own;
  lxshm_error err;
  CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_OK);
  if (strcmp(how, "exit") == 0) {
    lock_or_fail(own);
    die(7);
  }
  if (strcmp(how, "commit") == 0) {
    lock_or_fail(own);
    CHECK_ST(lxshm__commit_locked(own, NULL, 0, "committed", 9, LXSHM__FORMAT_RAW, &err), LXSHM_OK);
    die(7);
  }
  CHECK_ST(lxshm_write(own, "committed", 9, scaled(10), &err), LXSHM_OK);
  if (strcmp(how, "thread") == 0)
    run_thread(lock_and_scribble, own, 10);
  else
    lock_and_scribble(own);
  if (strcmp(how, "scribble") == 0)
    die(7);
  CHECK(strcmp(how, "sleep") == 0 || strcmp(how, "thread") == 0);
  post(C_READY);
  for (;;)
    sleep_s(3600);
}

/* ==== tests =================================================================================== */

/* A process that exits holding the lock: the next locker is told the owner died, and the value
 * is the one before. */
TEST(owner_exits) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;

  fresh_name(name, "owner");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "before", 6, scaled(5), &err), LXSHM_OK);
  CHECK_INT(reap_code(spawn("hold %s exit", name), 20), ==, 7);
  CHECK_VALUE(seg, "before", 6, 1);
  CHECK_INT(lock_reporting_death(seg), ==, 1);
  lxshm__unlock(seg);
  CHECK_ST(lxshm_write(seg, "after", 5, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(seg, "after", 5, 2);
  /* The lock was handed back in a consistent state: it keeps working. */
  CHECK_INT(lock_reporting_death(seg), ==, 0);
  lxshm__unlock(seg);
  CHECK_ST(lxshm_write(seg, "later", 5, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(seg, "later", 5, 3);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* A process killed while holding the lock in the middle of a commit: the next locker (one
 * already blocked, and a later one) gets the lock, and the value is the last committed. */
TEST(owner_killed) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  helper holder, blocked;

  fresh_name(name, "term");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "before", 6, 1.0, &err), LXSHM_OK);
  holder = spawn("hold %s sleep", name);
  await_posts(C_READY, 1, 20, "the holder has the lock");
  CHECK_VALUE(seg, "committed", 9, 2);
  CHECK_ST(lxshm_write(seg, "refused", 7, 0.2, &err), LXSHM_TIMEOUT); /* it is held */
  blocked = spawn("write %s third 30", name);
  sleep_s(0.5); /* let it block on the lock */
  kill_helper(holder);
  reap_ok(blocked, 30); /* it got the lock the killed process abandoned */
  CHECK_VALUE(seg, "third", 5, 3);
  CHECK_ST(lxshm_write(seg, "after", 5, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, "after", 5, 4);

  /* Killed again, with nobody waiting: the next locker is told the owner died, once. */
  holder = spawn("hold %s sleep", name);
  await_posts(C_READY, 2, 20, "the holder has the lock");
  kill_helper(holder);
  CHECK_VALUE(seg, "committed", 9, 5);
  CHECK_INT(lock_reporting_death(seg), ==, 1);
  lxshm__unlock(seg);
  CHECK_ST(lxshm_write(seg, "later", 5, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, "later", 5, 6);
  CHECK_INT(lock_reporting_death(seg), ==, 0); /* recovered once, then an ordinary lock */
  lxshm__unlock(seg);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* A process that dies after its commit, before its unlock: the commit stands. */
TEST(owner_dies_after_commit) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;

  fresh_name(name, "aftercommit");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "before", 6, scaled(5), &err), LXSHM_OK);
  CHECK_INT(reap_code(spawn("hold %s commit", name), 20), ==, 7);
  CHECK_VALUE(seg, "committed", 9, 2);
  CHECK_ST(lxshm_write(seg, "after", 5, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(seg, "after", 5, 3);
  CHECK_ST(lxshm_write(seg, "later", 5, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(seg, "later", 5, 4);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* A writer that exits mid-commit, having scribbled over the idle slot, damages nothing. */
TEST(dies_mid_commit) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;

  fresh_name(name, "midcommit");
  CHECK_ST(lxshm_create(name, 256, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "first", 5, scaled(5), &err), LXSHM_OK);
  CHECK_INT(reap_code(spawn("hold %s scribble", name), 20), ==, 7);
  CHECK_VALUE(seg, "committed", 9, 2);
  CHECK_INT(lock_reporting_death(seg), ==, 1);
  lxshm__unlock(seg);
  CHECK_ST(lxshm_write(seg, "next", 4, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(seg, "next", 4, 3);
  CHECK_ST(lxshm_write(seg, "and next", 8, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(seg, "and next", 8, 4);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* The owner thread ends holding the lock while its process lives on: the lock belongs to the
 * thread, so the next locker is told the owner died. */
TEST(owner_thread_ends) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  helper holder;

  fresh_name(name, "thread");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "before", 6, 1.0, &err), LXSHM_OK);
  holder = spawn("hold %s thread", name);
  await_posts(C_READY, 1, 20, "the holder's thread ended with the lock");
  CHECK_VALUE(seg, "committed", 9, 2);
  CHECK_INT(lock_reporting_death(seg), ==, 1);
  lxshm__unlock(seg);
  CHECK_ST(lxshm_write(seg, "after", 5, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, "after", 5, 3);
  kill_helper(holder);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* Relocking from the owning thread fails with INVALID instead of hanging, through any handle;
 * another thread waits and times out; the lock stays held exactly once. */
typedef struct try_write {
  lxshm_segment *seg;
  lxshm_status st;
} try_write;

static void write_from_thread(void *arg) {
  try_write *t = arg;
  lxshm_error err;
  t->st = lxshm_write(t->seg, "thread", 6, 0.3, &err);
}

TEST(relock) {
  char name[NAME_BUF];
  lxshm_segment *seg, *other;
  lxshm_error err;
  try_write t;

  fresh_name(name, "relock");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_open(name, &other, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "kept", 4, scaled(5), &err), LXSHM_OK);
  lock_or_fail(seg);
  CHECK_ST(lxshm__lock(seg, lxshm__deadline(scaled(5)), &err), LXSHM_INVALID);
  CHECK_HAS(err.message, "already held");
  CHECK_ST(lxshm_write(seg, "lost", 4, scaled(5), &err), LXSHM_INVALID);
  CHECK_HAS(err.message, "already held");
  CHECK_ST(lxshm_write(other, "lost", 4, scaled(5), &err), LXSHM_INVALID); /* another handle */
  CHECK_VALUE(seg, "kept", 4, 1); /* readers never need the lock */

  /* Another thread of this process is not the owner: it waits, and times out. */
  t.seg = other;
  t.st = LXSHM_OK;
  run_thread(write_from_thread, &t, 10);
  CHECK_INT(t.st, ==, LXSHM_TIMEOUT);

  /* One unlock frees it for everyone: the refused relocks left no count behind. */
  lxshm__unlock(seg);
  reap_ok(spawn("write %s other 5", name), 20);
  CHECK_VALUE(seg, "other", 5, 2);
  CHECK_ST(lxshm_write(seg, "after", 5, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(other, "after", 5, 3);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(other);
  lxshm_close(seg);
}

/* A writer that cannot get the lock in time gives up with TIMEOUT, within the deadline, and
 * changes nothing. */
TEST(lock_timeout) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  double start;
  helper holder;

  fresh_name(name, "locktimeout");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "kept", 4, scaled(5), &err), LXSHM_OK);
  holder = spawn("hold %s sleep", name);
  await_posts(C_READY, 1, 20, "the holder has the lock");
  start = now_s();
  CHECK_ST(lxshm_write(seg, "late", 4, 0.3, &err), LXSHM_TIMEOUT);
  CHECK(now_s() - start >= 0.29);
  CHECK(now_s() - start < scaled(5));
  CHECK(err.message[0] != '\0');
  CHECK_ST(lxshm_write(seg, "late", 4, 0, &err), LXSHM_TIMEOUT); /* 0: one try */
  CHECK_VALUE(seg, "committed", 9, 2);
  kill_helper(holder);
  CHECK_ST(lxshm_write(seg, "free", 4, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(seg, "free", 4, 3);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

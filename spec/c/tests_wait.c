/* tests_wait.c — lxshm_wait on every OS: timeouts and polls, waiters in other processes woken by
 * a commit (all of them, and by nothing else), a waiter killed while asleep, and a committer
 * that dies before it could wake anyone. */
#include <stdlib.h>
#include <string.h>

#include "test.h"

/* ==== helpers ================================================================================= */

/* wait NAME VERSION TIMEOUT EXPECT: waits for a version other than VERSION (TIMEOUT seconds,
 * scaled; negative: no limit). With EXPECT "-" the wait must time out, no sooner than TIMEOUT;
 * else it must be woken and read EXPECT. */
HELPER(wait) {
  lxshm_segment *own;
  lxshm_error err;
  uint64_t now = 0, version = strtoull(argv[1], NULL, 10);
  double timeout = atof(argv[2]);
  char buf[64];
  size_t len;
  CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_OK);
  if (strcmp(argv[3], "-") == 0) {
    double start = now_s();
    CHECK_ST(lxshm_wait(own, version, timeout, &now, &err), LXSHM_TIMEOUT);
    CHECK(now_s() - start >= timeout - 0.02);
    lxshm_close(own);
    return 0;
  }
  CHECK_ST(lxshm_wait(own, version, timeout < 0 ? timeout : scaled(timeout), &now, &err), LXSHM_OK);
  CHECK_U64(now, !=, version);
  CHECK_ST(lxshm_read(own, buf, sizeof buf, &len, NULL, &err), LXSHM_OK);
  CHECK(len == strlen(argv[3]) && memcmp(buf, argv[3], len) == 0);
  lxshm_close(own);
  return 0;
}

/* wake NAME VALUE: writes VALUE once a process is registered as waiting on NAME. */
HELPER(wake) {
  lxshm_segment *own;
  lxshm_error err;
  CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_OK);
  await_waiters(own, 1);
  CHECK_ST(lxshm_write(own, argv[1], strlen(argv[1]), scaled(10), &err), LXSHM_OK);
  lxshm_close(own);
  return 0;
}

/* ==== tests =================================================================================== */

/* Waits that time out, here and in another process, with no commit; polls; a version other
 * than the current one returns at once. */
TEST(wait_timeouts) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  uint64_t now = 99;
  double start;
  helper h;

  fresh_name(name, "timeout");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  h = spawn("wait %s 0 0.5 -", name);
  CHECK_ST(lxshm_wait(seg, 0, 0, &now, &err), LXSHM_TIMEOUT);
  CHECK(err.message[0] != '\0');
  CHECK_U64(now, ==, 99); /* untouched on failure */
  start = now_s();
  CHECK_ST(lxshm_wait(seg, 0, 0.3, &now, &err), LXSHM_TIMEOUT);
  CHECK(now_s() - start >= 0.29);
  CHECK(now_s() - start < scaled(5)); /* returned: not a hang */
  CHECK_HAS(err.message, "no new version");
  CHECK_ST(lxshm_wait(seg, 7, 0, &now, &err), LXSHM_OK);
  CHECK_U64(now, ==, 0);
  CHECK_ST(lxshm_wait(seg, 7, LXSHM_FOREVER, &now, &err), LXSHM_OK); /* already differs */
  CHECK_U64(now, ==, 0);
  reap_ok(h, 20);
  CHECK_U64(lxshm_version(seg), ==, 0);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* Waiters in other processes are woken by one commit, all of them, and by nothing else; and
 * this process is woken by another's commit. */
TEST(wait_woken) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  uint64_t now = 99;
  helper waiters[3], h;
  int i, woken = 0;

  fresh_name(name, "wake");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  for (i = 0; i < 3; i++)
    waiters[i] = spawn("wait %s 0 -1 woke", name); /* no timeout */
  await_waiters(seg, 3);
  sleep_s(0.2); /* asleep, not just registered */
  CHECK_U64(lxshm_version(seg), ==, 0);
  /* The platform finds all three asleep. (A waiter between two 200 ms slices is briefly not
   * asleep: look again.) A wake-up without a change only makes them look, not return. */
  for (i = 0; i < 100; i++) {
    lxshm__object *o = seg_object(seg);
    woken = lxshm__word_wake(&o->map, &o->hdr->u.segment.waiters.word);
    if (woken == 3)
      break;
    sleep_s(0.01);
  }
  CHECK_INT(woken, ==, 3);
  sleep_s(0.2);
  for (i = 0; i < 3; i++)
    CHECK(!reap_within(waiters[i], 0)); /* still waiting */
  CHECK_ST(lxshm_write(seg, "woke", 4, 1.0, &err), LXSHM_OK);
  for (i = 0; i < 3; i++)
    REAP_WOKEN(waiters[i]);
  CHECK_INT(waiters_now(seg), ==, 0);

  /* And this process is woken by another's write, made once we are registered. */
  reap_ok(spawn("write %s again 5", name), 20); /* version 2 */
  CHECK_ST(lxshm_wait(seg, 1, 0, &now, &err), LXSHM_OK);
  CHECK_U64(now, ==, 2);
  h = spawn("wake %s back", name);
  CHECK_ST(lxshm_wait(seg, 2, scaled(20), &now, &err), LXSHM_OK);
  CHECK_U64(now, ==, 3);
  CHECK_VALUE(seg, "back", 4, 3);
  reap_ok(h, 20);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* A waiter killed while asleep is no longer counted among the waiters (stat().waiters is
 * "processes blocked in wait now", SPEC §4), and the next commits neither hang nor fail. */
TEST(killed_waiter) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  helper waiter;
  int i;

  fresh_name(name, "deadwaiter");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  waiter = spawn("wait %s 0 -1 never", name);
  await_waiters(seg, 1);
  kill_helper(waiter);
  CHECK_U64(waiters_now(seg), ==, 0);
  for (i = 0; i < 5; i++)
    CHECK_ST(lxshm_write(seg, "x", 1, 1.0, &err), LXSHM_OK);
  waiter = spawn("wait %s 5 -1 y", name); /* a new waiter is still woken */
  await_waiters(seg, 1);
  CHECK_ST(lxshm_write(seg, "y", 1, 1.0, &err), LXSHM_OK);
  REAP_WOKEN(waiter);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* A writer that dies after publishing its value but before waking the waiters still wakes
 * them: the value changed, and nobody else may ever write again. */
TEST(woken_after_committer_died) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  helper waiter;

  fresh_name(name, "deadwriter");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  waiter = spawn("wait %s 0 -1 committed", name);
  await_waiters(seg, 1);
  CHECK_INT(reap_code(spawn("hold %s commit", name), 20), ==, 7); /* dies before its unlock */
  REAP_WOKEN(waiter);
  CHECK_VALUE(seg, "committed", 9, 1);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* tests_process.c — segments shared by several processes on every OS: values handed back and
 * forth, a writer killed at any moment, processes racing to attach or to open what another is
 * creating, and increments under the lock from three processes at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

/* Counters (test.h) of these tests. */
enum { C_READY, C_GO, C_DONE, C_RELEASE };

/* ==== helpers ================================================================================= */

/* pong NAME ROUNDS: answers each "ping I" with "pong I", waiting for the next version. */
HELPER(pong) {
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

/* write_patterns NAME I: writes patterns ((I+1) << 32) + 0..KILLED_VALUES-1 in turn until
 * killed, and posts C_READY once the first is committed. The values are made first, so that the
 * helper spends its time inside lxshm_write, mostly holding the lock. */
#define KILLED_VALUES 4

HELPER(write_patterns) {
  unsigned char *values[KILLED_VALUES];
  size_t lens[KILLED_VALUES];
  uint64_t i = strtoull(argv[1], NULL, 10);
  lxshm_segment *own;
  lxshm_error err;
  int k;
  for (k = 0; k < KILLED_VALUES; k++) {
    CHECK((values[k] = malloc(BIG_CAP)) != NULL);
    lens[k] = fill_pattern(values[k], ((i + 1) << 32) + (uint64_t)k);
  }
  CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(own, values[0], lens[0], scaled(5), &err), LXSHM_OK);
  post(C_READY); /* committed once: kill me any time now */
  for (k = 1;; k = (k + 1) % KILLED_VALUES)
    CHECK_ST(lxshm_write(own, values[k], lens[k], scaled(5), &err), LXSHM_OK);
}

/* attach NAME SIZE ROUND: posts C_READY, waits for C_GO to pass ROUND, attaches and writes "x",
 * posts C_DONE, and stays attached until C_RELEASE passes ROUND (where an object ends with its
 * last handle, a racer that left early would let a later one create it again). Exits 10 if it
 * created NAME, 11 if it opened it. */
HELPER(attach) {
  uint32_t round = (uint32_t)atoi(argv[2]);
  uint64_t size = strtoull(argv[1], NULL, 10);
  lxshm_segment *own;
  lxshm_error err;
  int created = -1;
  post(C_READY);
  await_posts(C_GO, round + 1, 20, "go");
  CHECK_ST(lxshm_attach(argv[0], size, LXSHM_DEFAULT_MODE, &own, &created, &err), LXSHM_OK);
  CHECK(created == 0 || created == 1);
  CHECK_U64(lxshm_size(own), ==, size);
  CHECK_ST(lxshm_write(own, "x", 1, scaled(5), &err), LXSHM_OK);
  post(C_DONE);
  await_posts(C_RELEASE, round + 1, 20, "release");
  lxshm_close(own);
  return created ? 10 : 11;
}

/* opener ROUNDS: for each round, reads the order (name in shared->text, size in word[0]) once
 * C_GO passes it, spins on lxshm_open, posting C_READY at its first NOT_FOUND, then checks the
 * segment it opened is whole and fresh and posts C_DONE. */
HELPER(opener) {
  int round, rounds = atoi(argv[0]);
  char name[NAME_BUF];
  unsigned char buf[8];
  lxshm_segment *seg;
  lxshm_error err;
  lxshm_status st;
  uint64_t version, size;
  size_t len;
  int tries;

  pin_to_cpu(1);
  for (round = 0; round < rounds; round++) {
    await_posts(C_GO, (uint32_t)round + 1, 20, "an order");
    snprintf(name, sizeof name, "%s", shared->text);
    size = atomic_load(&shared->word[0]);
    note("opener, %s", name);
    tries = 0;
    while ((st = lxshm_open(name, &seg, &err)) != LXSHM_OK) {
      if (st != LXSHM_NOT_FOUND)
        FAIL("lxshm_open gave %s (\"%s\") while a create was under way", lxshm_status_name(st),
             err.message);
      if (tries++ == 0)
        post(C_READY);
    }
    CHECK(tries > 0);
    CHECK_U64(lxshm_size(seg), ==, size);
    CHECK_U64(lxshm_version(seg), ==, 0);
    CHECK_ST(lxshm_read(seg, buf, sizeof buf, &len, &version, &err), LXSHM_OK);
    CHECK_U64(len, ==, 0);
    CHECK_U64(version, ==, 0);
    lxshm_close(seg);
    post(C_DONE);
  }
  return 0;
}

/* count NAME TIMES: once C_GO is posted, adds 1 to the decimal counter in NAME, TIMES times,
 * under the lock. */
HELPER(count) {
  lxshm_segment *own;
  lxshm_error err;
  int i, times = atoi(argv[1]);
  CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_OK);
  await_posts(C_GO, 1, 20, "go");
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
    CHECK_ST(lxshm__commit_locked(own, NULL, 0, text, strlen(text), LXSHM__FORMAT_RAW, &err),
             LXSHM_OK);
    lxshm__unlock(own);
  }
  lxshm_close(own);
  return 0;
}

/* ==== tests =================================================================================== */

/* Two processes exchange values and wake each other, both ways. */
TEST(cross_process) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  uint64_t now = 0;
  helper h;

  fresh_name(name, "cross");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);

  /* The helper writes once we wait; we wake and read it. */
  h = spawn("wake %s from-helper", name);
  CHECK_ST(lxshm_wait(seg, 0, scaled(20), &now, &err), LXSHM_OK);
  CHECK_U64(now, ==, 1);
  CHECK_VALUE(seg, "from-helper", 11, 1);
  reap_ok(h, 20);

  /* And the other way round. */
  h = spawn("wait %s 1 -1 from-test", name);
  await_waiters(seg, 1);
  CHECK_ST(lxshm_write(seg, "from-test", 9, scaled(5), &err), LXSHM_OK);
  REAP_WOKEN(h);

  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* Two processes exchange values back and forth, each waking the other, many times. */
TEST(exchange) {
  char name[NAME_BUF], buf[128], want[32];
  lxshm_segment *seg;
  lxshm_error err;
  uint64_t seen;
  size_t len;
  helper h;
  int i, rounds = 30;

  fresh_name(name, "pingpong");
  CHECK_ST(lxshm_create(name, 128, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  h = spawn("pong %s %d", name, rounds);
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
  reap_ok(h, 20);
  CHECK_U64(lxshm_version(seg), ==, 2 * rounds);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* A writer killed at any moment leaves a whole value and a usable lock. */
TEST(writer_killed) {
  int i, iterations = 40;
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  unsigned char *buf = malloc(BIG_CAP);
  uint64_t n, version;
  size_t len;
  helper h;

  CHECK(buf != NULL);
  fresh_name(name, "killed");
  CHECK_ST(lxshm_create(name, BIG_CAP, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  len = fill_pattern(buf, 0);
  CHECK_ST(lxshm_write(seg, buf, len, scaled(5), &err), LXSHM_OK);

  for (i = 0; i < iterations; i++) {
    note("iteration %d", i);
    h = spawn("write_patterns %s %d", name, i);
    await_posts(C_READY, (uint32_t)i + 1, 20, "the writer's first commit");
    sleep_s((i % 7) * 0.0005); /* 0 to 3 ms */
    kill_helper(h);

    CHECK_ST(lxshm_read(seg, buf, BIG_CAP, &len, &version, &err), LXSHM_OK);
    n = check_pattern(buf, len);
    CHECK_U64(n >> 32, ==, i + 1); /* the helper's, since it committed at least once */

    /* The lock is free again (taken over from the dead writer if need be). */
    len = fill_pattern(buf, (uint64_t)i + 1);
    CHECK_ST(lxshm_write(seg, buf, len, scaled(5), &err), LXSHM_OK);
    CHECK_U64(lxshm_version(seg), ==, version + 1);
    CHECK_ST(lxshm_read(seg, buf, BIG_CAP, &len, &version, &err), LXSHM_OK);
    CHECK_U64(check_pattern(buf, len), ==, (uint64_t)i + 1);
  }

  free(buf);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* Of processes attaching to a new name at the same instant, exactly one creates it, and the
 * others wait for it to finish. A large segment keeps the creator busy long enough (reserving
 * its memory) for the others to find it under way. */
TEST(attach_race) {
  enum { RACERS = 8, ROUNDS = 20, SIZE = 1 << 20 };
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  helper h[RACERS];
  int round, i, created;

  for (round = 0; round < ROUNDS; round++) {
    uint32_t all = (uint32_t)((round + 1) * RACERS);
    note("round %d", round);
    fresh_name(name, "attach");
    for (i = 0; i < RACERS; i++)
      h[i] = spawn("attach %s %d %d", name, SIZE, round);
    await_posts(C_READY, all, 20, "every racer started");
    post(C_GO);
    await_posts(C_DONE, all, 20, "every racer attached");
    CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_OK);
    CHECK_U64(lxshm_version(seg), ==, RACERS);
    post(C_RELEASE);
    created = 0;
    for (i = 0; i < RACERS; i++) {
      int code = reap_code(h[i], 20);
      CHECK(code == 10 || code == 11);
      created += code == 10;
    }
    CHECK_INT(created, ==, 1);
    CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
    lxshm_close(seg);
  }
}

/* An open racing a create sees nothing or a whole, fresh segment, never a half-made one. An
 * opener spins on the name while this process creates it. Left to the scheduler, the woken
 * creator often takes the opener's processor and the opener never sees a creation under way,
 * so the two are pinned to different processors when there are two. The opener lives through
 * all rounds (starting a process is slow under valgrind and Wine). This process keeps its
 * handle until the opener is done, so that the segment outlives the round on every OS. */
TEST(open_races_create) {
  int i, rounds = 200;
  lxshm_segment *seg;
  lxshm_error err;
  helper h;

  h = spawn("opener %d", rounds);
  pin_to_cpu(0);
  for (i = 0; i < rounds; i++) {
    uint64_t size = (uint64_t)4096 << (i % 8); /* 4 KiB to 512 KiB: reserving takes a while */
    char name[NAME_BUF];
    fresh_name(name, "oc");
    note("round %d, %s", i, name);
    snprintf(shared->text, sizeof shared->text, "%s", name);
    atomic_store(&shared->word[0], size);
    post(C_GO);
    await_posts(C_READY, (uint32_t)i + 1, 20, "the opener spinning");
    CHECK_ST(lxshm_create(name, size, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
    await_posts(C_DONE, (uint32_t)i + 1, 20, "the opener's check");
    CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
    lxshm_close(seg);
  }
  reap_ok(h, 20);
}

/* Three processes increment one counter under the lock: no update is lost. */
TEST(counter) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  helper h[3];
  int i;

  fresh_name(name, "counter");
  CHECK_ST(lxshm_create(name, 32, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "0", 1, 1.0, &err), LXSHM_OK);
  for (i = 0; i < 3; i++)
    h[i] = spawn("count %s 150", name);
  post(C_GO);
  for (i = 0; i < 3; i++)
    reap_ok(h[i], 60);
  CHECK_VALUE(seg, "450", 3, 451);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

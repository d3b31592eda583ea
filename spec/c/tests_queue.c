/* tests_queue.c — queues on every OS: order, peek, full and empty, blocking on both sides,
 * producers and consumers in other processes, killed at any moment, and a lock held for a
 * moment by another process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

enum { C_READY }; /* counter (test.h): a helper reached its first step */

/* Returns once the queue has at least `pops` blocked pops and `pushes` blocked pushes. */
static void await_blocked(lxshm_queue *q, uint32_t pops, uint32_t pushes) {
  double end = now_s() + scaled(20);
  lxshm__figures f;
  for (;;) {
    lxshm__figures_get(q, &f);
    if (f.queue.pop_waiters >= pops && f.queue.push_waiters >= pushes)
      return;
    if (now_s() > end)
      FAIL("%u pops and %u pushes expected blocked, found %u and %u", pops, pushes,
           (unsigned)f.queue.pop_waiters, (unsigned)f.queue.push_waiters);
    sleep_s(0.001);
  }
}

/* ==== helpers ================================================================================= */

/* pop NAME EXPECT WHEN: pops one value, waiting up to 20 s, and checks it is EXPECT. WHEN "now"
 * pops at once; "pusher" first waits for a push to be blocked on the full queue. */
HELPER(pop) {
  lxshm_queue *own;
  lxshm_error err;
  char buf[64];
  size_t len;
  CHECK_ST(lxshm_queue_open(argv[0], &own, &err), LXSHM_OK);
  if (strcmp(argv[2], "pusher") == 0)
    await_blocked(own, 0, 1);
  CHECK_ST(lxshm_queue_pop(own, buf, sizeof buf, &len, scaled(20), &err), LXSHM_OK);
  CHECK(len == strlen(argv[1]) && memcmp(buf, argv[1], len) == 0);
  lxshm_queue_close(own);
  return 0;
}

/* push NAME VALUE WHEN: pushes VALUE, waiting for room without limit. WHEN "now" pushes at
 * once; "popper" first waits for a pop to be blocked on the empty queue. */
HELPER(push) {
  lxshm_queue *own;
  lxshm_error err;
  CHECK_ST(lxshm_queue_open(argv[0], &own, &err), LXSHM_OK);
  if (strcmp(argv[2], "popper") == 0)
    await_blocked(own, 1, 0);
  CHECK_ST(lxshm_queue_push(own, argv[1], strlen(argv[1]), -1, &err), LXSHM_OK);
  lxshm_queue_close(own);
  return 0;
}

/* produce NAME ID COUNT: pushes COUNT values make_value(ID, I). */
HELPER(produce) {
  lxshm_queue *own;
  lxshm_error err;
  unsigned i, id = (unsigned)atoi(argv[1]), count = (unsigned)atoi(argv[2]);
  char buf[VALUE_MAX];
  CHECK_ST(lxshm_queue_open(argv[0], &own, &err), LXSHM_OK);
  for (i = 0; i < count; i++) {
    size_t len = make_value(buf, id, i);
    note("producer %u value %u", id, i);
    CHECK_ST(lxshm_queue_push(own, buf, len, scaled(20), &err), LXSHM_OK);
  }
  lxshm_queue_close(own);
  return 0;
}

/* consume NAME PRODUCERS COUNT: pops PRODUCERS * COUNT values and checks that each producer's
 * come whole, in order, none missing; then the queue must be empty. */
HELPER(consume) {
  lxshm_queue *own;
  lxshm_error err;
  unsigned producers = (unsigned)atoi(argv[1]), count = (unsigned)atoi(argv[2]);
  unsigned next[8] = {0}, total;
  char buf[VALUE_MAX], want[VALUE_MAX];
  size_t len;
  CHECK(producers <= 8);
  CHECK_ST(lxshm_queue_open(argv[0], &own, &err), LXSHM_OK);
  for (total = 0; total < producers * count; total++) {
    unsigned id, i;
    note("value %u", total);
    CHECK_ST(lxshm_queue_pop(own, buf, sizeof buf - 1, &len, scaled(20), &err), LXSHM_OK);
    buf[len] = '\0';
    CHECK(sscanf(buf, "%u:%u:", &id, &i) == 2);
    CHECK(id < producers);
    CHECK_U64(i, ==, next[id]); /* in this producer's order, none skipped */
    CHECK(make_value(want, id, i) == len && memcmp(buf, want, len) == 0);
    next[id]++;
  }
  CHECK_ST(lxshm_queue_pop(own, buf, sizeof buf, &len, 0, &err), LXSHM_TIMEOUT);
  lxshm_queue_close(own);
  return 0;
}

/* produce_forever NAME ID: pushes make_value(ID, I) for I = 0, 1, ... until killed; posts
 * C_READY after the first push. */
HELPER(produce_forever) {
  lxshm_queue *own;
  lxshm_error err;
  unsigned i, id = (unsigned)atoi(argv[1]);
  char buf[VALUE_MAX];
  CHECK_ST(lxshm_queue_open(argv[0], &own, &err), LXSHM_OK);
  for (i = 0;; i++) {
    size_t len = make_value(buf, id, i);
    CHECK_ST(lxshm_queue_push(own, buf, len, scaled(20), &err), LXSHM_OK);
    if (i == 0)
      post(C_READY);
  }
}

/* drain NAME ID: pops values of producer ID until killed, checking each is whole and later than
 * the one before; posts C_READY after the first pop. */
HELPER(drain) {
  lxshm_queue *own;
  lxshm_error err;
  unsigned id = (unsigned)atoi(argv[1]), count = 0;
  long last = -1;
  char buf[VALUE_MAX], want[VALUE_MAX];
  size_t len;
  CHECK_ST(lxshm_queue_open(argv[0], &own, &err), LXSHM_OK);
  for (;;) {
    unsigned got_id, i;
    CHECK_ST(lxshm_queue_pop(own, buf, sizeof buf - 1, &len, scaled(20), &err), LXSHM_OK);
    buf[len] = '\0';
    CHECK(sscanf(buf, "%u:%u:", &got_id, &i) == 2 && got_id == id && (long)i > last);
    CHECK(make_value(want, id, i) == len && memcmp(buf, want, len) == 0);
    last = (long)i;
    if (count++ == 0)
      post(C_READY);
  }
}

/* lock_queue NAME WHICH: holds the queue's push or pop lock (WHICH) for 50 ms, as a producer or
 * consumer in the middle of its copy would; posts C_READY once it has it. */
HELPER(lock_queue) {
  lxshm_queue *own;
  lxshm__object *o;
  lxshm_error err;
  void *lock;
  CHECK_ST(lxshm_queue_open(argv[0], &own, &err), LXSHM_OK);
  o = queue_object(own);
  lock = strcmp(argv[1], "push") == 0 ? (void *)o->hdr->lock : (void *)o->hdr->u.queue.pop_lock;
  CHECK_ST(lxshm__object_lock(o, lock, lxshm__deadline(scaled(10)), NULL, &err), LXSHM_OK);
  post(C_READY);
  sleep_s(0.05);
  lxshm__object_unlock(o, lock);
  lxshm_queue_close(own);
  return 0;
}

/* ==== tests =================================================================================== */

/* Values come out in push order, count and used follow, sizes are refused up front, other
 * processes pop the same values, and queues and segments share one namespace. */
TEST(queue_basics) {
  char name[NAME_BUF], buf[128];
  lxshm_queue *q, *other, *gone;
  lxshm_segment *seg;
  lxshm_error err;
  size_t len;
  int i, created;

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
  memset(buf, 'b', sizeof buf);
  CHECK_ST(lxshm_queue_push(q, buf, 97, scaled(5), &err), LXSHM_INVALID_SIZE); /* never fits */
  CHECK_ST(lxshm_queue_peek(q, buf, sizeof buf, &len, &err), LXSHM_OK);
  CHECK_INT(len, ==, 2);
  CHECK(memcmp(buf, "v0", 2) == 0);
  CHECK_ST(lxshm_queue_pop(q, buf, 1, &len, 0, &err), LXSHM_INVALID_SIZE); /* stays queued */
  CHECK_INT(len, ==, 2);
  CHECK_U64(lxshm_queue_count(q), ==, 6);
  for (i = 0; i < 6; i++) {
    char want[16];
    snprintf(want, sizeof want, "v%d", i);
    if (i < 2) { /* the first two by other processes, in order */
      reap_ok(spawn("pop %s %s now", name, want), 20);
      continue;
    }
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
  CHECK_ST(lxshm_attach(name, 64, LXSHM_DEFAULT_MODE, &seg, &created, &err), LXSHM_INVALID);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  CHECK_ST(lxshm_queue_open(name, &gone, &err), LXSHM_NOT_FOUND);
  CHECK(gone == NULL);
  lxshm_queue_close(other);
  lxshm_queue_close(q);

  /* attach creates the queue, then opens it, whatever size it asks for. */
  CHECK_ST(lxshm_queue_attach(name, 100, LXSHM_DEFAULT_MODE, &q, &created, &err), LXSHM_OK);
  CHECK_INT(created, ==, 1);
  CHECK_U64(lxshm_queue_size(q), ==, 104);
  CHECK_ST(lxshm_queue_push(q, "a", 1, 0, &err), LXSHM_OK);
  CHECK_ST(lxshm_queue_attach(name, 8, LXSHM_DEFAULT_MODE, &other, &created, &err), LXSHM_OK);
  CHECK_INT(created, ==, 0);
  CHECK_U64(lxshm_queue_size(other), ==, 104);
  CHECK_ST(lxshm_queue_pop(other, buf, sizeof buf, &len, 0, &err), LXSHM_OK);
  CHECK(len == 1 && buf[0] == 'a');
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_queue_close(other);
  lxshm_queue_close(q);
}

/* Values of every length keep their bytes across the end of the ring. */
TEST(queue_wraps) {
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
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_queue_close(q);
}

/* A pop blocked on the empty queue wakes for another process's push and a push blocked on the
 * full queue for a pop, this process being either side. */
TEST(queue_blocking) {
  char name[NAME_BUF], buf[32];
  lxshm_queue *q;
  lxshm_error err;
  size_t len;
  helper h;

  fresh_name(name, "qblock");
  CHECK_ST(lxshm_queue_create(name, 32, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);

  /* Another process's pop, blocked on the empty queue, takes our push. */
  h = spawn("pop %s hello now", name);
  await_blocked(q, 1, 0);
  CHECK_ST(lxshm_queue_push(q, "hello", 5, 0, &err), LXSHM_OK);
  REAP_WOKEN(h);

  /* Another process's push, blocked on the full queue, gets the room our pop makes. */
  CHECK_ST(lxshm_queue_push(q, "0123456789abcdef", 16, 0, &err), LXSHM_OK); /* 24 of 32 */
  h = spawn("push %s next now", name);
  await_blocked(q, 0, 1);
  CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, 0, &err), LXSHM_OK);
  CHECK(len == 16 && memcmp(buf, "0123456789abcdef", 16) == 0);
  REAP_WOKEN(h);
  CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, 0, &err), LXSHM_OK);
  CHECK(len == 4 && memcmp(buf, "next", 4) == 0);

  /* Our push, blocked on the full queue, gets the room another process's pop makes. */
  CHECK_ST(lxshm_queue_push(q, "0123456789abcdef", 16, 0, &err), LXSHM_OK);
  CHECK_ST(lxshm_queue_push(q, "over", 4, 0, &err), LXSHM_TIMEOUT);
  h = spawn("pop %s 0123456789abcdef pusher", name);
  CHECK_ST(lxshm_queue_push(q, "over", 4, scaled(20), &err), LXSHM_OK);
  reap_ok(h, 20);

  /* Our pop, blocked on the empty queue, takes another process's push. */
  CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, 0, &err), LXSHM_OK);
  CHECK(len == 4 && memcmp(buf, "over", 4) == 0);
  h = spawn("push %s late popper", name);
  CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, scaled(20), &err), LXSHM_OK);
  CHECK(len == 4 && memcmp(buf, "late", 4) == 0);
  reap_ok(h, 20);
  CHECK_U64(lxshm_queue_count(q), ==, 0);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_queue_close(q);
}

/* Two producer processes and a consumer process: every value once, whole, in each producer's
 * order, though the small ring fills again and again. */
TEST(queue_producers) {
  enum { PER_PRODUCER = 3000 };
  char name[NAME_BUF], buf[VALUE_MAX];
  lxshm_queue *q;
  lxshm_error err;
  helper consumer, producers[2];
  size_t len;

  fresh_name(name, "qprod");
  CHECK_ST(lxshm_queue_create(name, 512, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);
  consumer = spawn("consume %s 2 %d", name, PER_PRODUCER);
  producers[0] = spawn("produce %s 0 %d", name, PER_PRODUCER);
  producers[1] = spawn("produce %s 1 %d", name, PER_PRODUCER);
  reap_ok(producers[0], 60);
  reap_ok(producers[1], 60);
  reap_ok(consumer, 60);
  CHECK_U64(lxshm_queue_count(q), ==, 0);
  CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, 0, &err), LXSHM_TIMEOUT);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_queue_close(q);
}

/* A producer and a consumer killed at any moment, maybe holding the push or the pop lock: no
 * half value, nothing pushed is lost but what the consumer took, counts right, and both locks
 * work afterwards. */
TEST(queue_killed) {
  unsigned j, rounds = 30;
  char name[NAME_BUF], buf[VALUE_MAX], want[VALUE_MAX];
  lxshm_queue *q;
  lxshm_error err;
  helper producer, consumer;
  size_t len;

  fresh_name(name, "qkill");
  CHECK_ST(lxshm_queue_create(name, 2048, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);
  for (j = 0; j < rounds; j++) {
    long last = -1;
    note("round %u", j);
    producer = spawn("produce_forever %s %u", name, j);
    await_posts(C_READY, 2 * j + 1, 20, "the first push");
    consumer = spawn("drain %s %u", name, j);
    await_posts(C_READY, 2 * j + 2, 20, "the first pop");
    sleep_s(0.001 * (j % 5));
    kill_helper(consumer);
    sleep_s(0.002 * (j % 2));
    kill_helper(producer);
    for (;;) { /* what is left: whole values of producer j, in order */
      unsigned id, i;
      lxshm_status st = lxshm_queue_pop(q, buf, sizeof buf - 1, &len, 0, &err);
      if (st == LXSHM_TIMEOUT)
        break;
      if (st != LXSHM_OK)
        FAIL("lxshm_queue_pop gave %s (\"%s\")", lxshm_status_name(st), err.message);
      buf[len] = '\0';
      CHECK(sscanf(buf, "%u:%u:", &id, &i) == 2 && id == j && (long)i > last);
      CHECK(make_value(want, id, i) == len && memcmp(buf, want, len) == 0);
      last = (long)i;
    }
    CHECK_U64(lxshm_queue_count(q), ==, 0);
    CHECK_U64(lxshm_queue_used(q), ==, 0);
    CHECK_ST(lxshm_queue_push(q, "alive", 5, scaled(5), &err), LXSHM_OK); /* both locks free */
    CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, scaled(5), &err), LXSHM_OK);
    CHECK(len == 5 && memcmp(buf, "alive", 5) == 0);
  }
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_queue_close(q);
}

/* A push or pop with timeout 0 is not refused because another process holds the lock for a
 * moment: the timeout bounds the wait for room or a value, not for the lock. */
TEST(queue_zero_timeout) {
  char name[NAME_BUF], buf[16];
  lxshm_queue *q;
  lxshm_error err;
  size_t len;
  int which;

  fresh_name(name, "qlock");
  CHECK_ST(lxshm_queue_create(name, 256, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);
  CHECK_ST(lxshm_queue_push(q, "x", 1, 0, &err), LXSHM_OK);
  for (which = 0; which < 2; which++) { /* the push lock, then the pop lock */
    helper h;
    note("%s lock", which == 0 ? "push" : "pop");
    h = spawn("lock_queue %s %s", name, which == 0 ? "push" : "pop");
    await_posts(C_READY, (uint32_t)which + 1, 20, "the helper has the lock");
    if (which == 0)
      CHECK_ST(lxshm_queue_push(q, "y", 1, 0, &err), LXSHM_OK);
    else
      CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, 0, &err), LXSHM_OK);
    reap_ok(h, 20);
  }
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_queue_close(q);
}

/* tests_topic.c — topics on every OS: numbering, every subscription seeing every message, lost
 * counts, named subscriptions held by living processes only, waking, and publishers killed at
 * any moment or dying inside the lock at each step of a publish. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"
#include "test.h"

enum { C_READY }; /* counter (test.h): a helper reached its first step */

/* The 64-byte message tdie publishes, or half publishes. */
#define GHOST "ghost-ghost-ghost-ghost-ghost-ghost-ghost-ghost-ghost-ghost-ghos"

/* The topic's object: lxshm_topic embeds it first, as the other kinds do. */
static lxshm__object *topic_object(lxshm_topic *t) {
  return (lxshm__object *)(void *)t;
}

/* Where a topic's index and ring lie, computed as topic.c lays them out: the cursor table, then
 * one u64 per 32 bytes of ring (at least 8) rounded up to a cache line, then the ring. */
typedef struct layout {
  lxshm__topic_state *state;
  _Atomic uint64_t *index;
  uint64_t entries;
  unsigned char *ring;
  uint64_t capacity;
} layout;

static layout layout_of(lxshm_topic *t) {
  lxshm__object *o = topic_object(t);
  layout l;
  l.state = &o->hdr->u.topic;
  l.capacity = o->hdr->capacity;
  l.entries = (l.capacity + 31) / 32 < 8 ? 8 : (l.capacity + 31) / 32;
  l.index = (_Atomic uint64_t *)(o->data + o->hdr->params[0] * sizeof(lxshm__topic_cursor));
  l.ring = o->map.base + o->hdr->map_size - l.capacity;
  return l;
}

/* Waits until `n` subscriptions are asleep in next on t. */
static void await_sleepers(lxshm_topic *t, uint32_t n) {
  double end = now_s() + scaled(20);
  lxshm__figures f;
  for (;;) {
    lxshm__figures_get(t, &f);
    if (f.topic.waiters >= n)
      return;
    if (now_s() > end)
      FAIL("%u subscriptions expected asleep, found %u", n, (unsigned)f.topic.waiters);
    sleep_s(0.001);
  }
}

/* Checks that buf[0..len-1] is make_value(id, i) for some id < ids, and returns id and i. */
static void check_message(const char *buf, size_t len, unsigned ids, unsigned *id, unsigned *i) {
  char text[VALUE_MAX + 1], want[VALUE_MAX];
  CHECK(len <= VALUE_MAX);
  memcpy(text, buf, len);
  text[len] = '\0';
  if (sscanf(text, "%u:%u:", id, i) != 2 || *id >= ids)
    FAIL("message \"%s\" is no message of a publisher", text);
  if (make_value(want, *id, *i) != len || memcmp(text, want, len) != 0)
    FAIL("message \"%s\" is torn", text);
}

/* ==== helpers ================================================================================= */

/* tpub NAME ID COUNT: publishes make_value(ID, 0 .. COUNT - 1). */
HELPER(tpub) {
  lxshm_topic *t;
  lxshm_error err;
  unsigned i, id = (unsigned)atoi(argv[1]), count = (unsigned)atoi(argv[2]);
  char buf[VALUE_MAX];
  CHECK_ST(lxshm_topic_open(argv[0], &t, &err), LXSHM_OK);
  for (i = 0; i < count; i++) {
    size_t len = make_value(buf, id, i);
    note("publisher %u message %u", id, i);
    CHECK_ST(lxshm_topic_publish(t, buf, len, scaled(20), NULL, &err), LXSHM_OK);
  }
  lxshm_topic_close(t);
  return 0;
}

/* tpub_forever NAME ID: publishes make_value(ID, 0, 1, ...) until killed; posts C_READY after
 * the first. */
HELPER(tpub_forever) {
  lxshm_topic *t;
  lxshm_error err;
  unsigned i, id = (unsigned)atoi(argv[1]);
  char buf[VALUE_MAX];
  CHECK_ST(lxshm_topic_open(argv[0], &t, &err), LXSHM_OK);
  for (i = 0;; i++) {
    size_t len = make_value(buf, id, i);
    CHECK_ST(lxshm_topic_publish(t, buf, len, scaled(20), NULL, &err), LXSHM_OK);
    if (i == 0)
      post(C_READY);
  }
}

/* tsub NAME COUNT PUBLISHERS: subscribes from the oldest message, posts C_READY, then reads
 * COUNT messages: none lost, every one whole, each publisher's in its order. */
HELPER(tsub) {
  lxshm_topic *t;
  lxshm_subscription *sub;
  lxshm_error err;
  unsigned k, count = (unsigned)atoi(argv[1]), ids = (unsigned)atoi(argv[2]);
  long next[8] = {0};
  char buf[VALUE_MAX];
  CHECK(ids <= 8);
  CHECK_ST(lxshm_topic_open(argv[0], &t, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_subscribe(t, NULL, LXSHM_TOPIC_OLDEST, &sub, &err), LXSHM_OK);
  post(C_READY);
  for (k = 0; k < count; k++) {
    uint64_t seq, lost;
    unsigned id, i;
    size_t len;
    note("message %u", k);
    CHECK_ST(lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, &lost, scaled(20), &err),
             LXSHM_OK);
    CHECK_U64(seq, ==, k + 1);
    CHECK_U64(lost, ==, 0);
    check_message(buf, len, ids, &id, &i);
    CHECK_INT(i, ==, next[id]);
    next[id]++;
  }
  lxshm_subscription_close(sub);
  lxshm_topic_close(t);
  return 0;
}

/* tnext NAME EXPECT: subscribes to new messages, posts C_READY, waits up to 20 s for the next
 * one and checks that it is EXPECT. */
HELPER(tnext) {
  lxshm_topic *t;
  lxshm_subscription *sub;
  lxshm_error err;
  char buf[64];
  size_t len;
  uint64_t seq;
  CHECK_ST(lxshm_topic_open(argv[0], &t, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_subscribe(t, NULL, LXSHM_TOPIC_NEW, &sub, &err), LXSHM_OK);
  post(C_READY);
  CHECK_ST(lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, NULL, scaled(20), &err),
           LXSHM_OK);
  CHECK(len == strlen(argv[1]) && memcmp(buf, argv[1], len) == 0);
  lxshm_subscription_close(sub);
  lxshm_topic_close(t);
  return 0;
}

/* tpub_to_sleeper NAME VALUE: once a subscription sleeps in next, publishes VALUE. */
HELPER(tpub_to_sleeper) {
  lxshm_topic *t;
  lxshm_error err;
  CHECK_ST(lxshm_topic_open(argv[0], &t, &err), LXSHM_OK);
  await_sleepers(t, 1);
  CHECK_ST(lxshm_topic_publish(t, argv[1], strlen(argv[1]), scaled(20), NULL, &err), LXSHM_OK);
  lxshm_topic_close(t);
  return 0;
}

/* thold NAME CURSOR: takes the named subscription CURSOR, posts C_READY, sleeps until killed. */
HELPER(thold) {
  lxshm_topic *t;
  lxshm_subscription *sub;
  lxshm_error err;
  CHECK_ST(lxshm_topic_open(argv[0], &t, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_subscribe(t, argv[1], LXSHM_TOPIC_NEW, &sub, &err), LXSHM_OK);
  post(C_READY);
  for (;;)
    sleep_s(1);
}

/* tfollow NAME: subscribes from the oldest message and reads and checks messages until killed,
 * posting C_READY once it sleeps waiting for the first. */
HELPER(tfollow) {
  lxshm_topic *t;
  lxshm_subscription *sub;
  lxshm_error err;
  char buf[VALUE_MAX];
  CHECK_ST(lxshm_topic_open(argv[0], &t, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_subscribe(t, NULL, LXSHM_TOPIC_OLDEST, &sub, &err), LXSHM_OK);
  post(C_READY);
  for (;;) {
    unsigned id, i;
    size_t len;
    uint64_t seq;
    CHECK_ST(lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, NULL, -1, &err), LXSHM_OK);
    check_message(buf, len, 1000, &id, &i);
  }
}

/* tdie NAME STEP: takes the publishers' lock and dies holding it, at a step of a publish of the
 * message GHOST: 0 before writing anything; 1 after writing its record and index entry at the
 * tail; 2 after also moving the tail but not storing `last` (a state this build's publishers
 * never leave, as they store the tail after `last`, but damage could); 3 after
 * storing `last` but not moving the tail; 4 after both (a whole publish, before unlocking and
 * waking). Posts C_READY first. */
HELPER(tdie) {
  lxshm_topic *t;
  lxshm__object *o;
  lxshm_error err;
  layout l;
  int step = atoi(argv[1]);
  unsigned char record[72];
  uint64_t tail, last, at;
  size_t k;

  CHECK_ST(lxshm_topic_open(argv[0], &t, &err), LXSHM_OK);
  o = topic_object(t);
  l = layout_of(t);
  post(C_READY);
  CHECK_ST(lxshm__object_lock(o, o->hdr->lock, lxshm__deadline(scaled(10)), NULL, &err), LXSHM_OK);
  if (step == 0)
    die(0);
  tail = atomic_load(&l.state->tail);
  last = atomic_load(&l.state->last);
  CHECK(tail + sizeof record <= l.capacity); /* the test leaves room: nothing to drop */
  _Static_assert(sizeof GHOST == 65, "the ghost is 64 bytes");
  lxshm__record_put(record, GHOST, 64, LXSHM__FORMAT_RAW);
  for (k = 0, at = tail; k < sizeof record; k++, at++)
    l.ring[at % l.capacity] = record[k];
  atomic_store(&l.index[(last + 1) % l.entries], tail);
  if (step == 1)
    die(0);
  if (step == 2) {
    atomic_store(&l.state->tail, tail + sizeof record);
    die(0);
  }
  atomic_store(&l.state->last, last + 1);
  if (step == 4)
    atomic_store(&l.state->tail, tail + sizeof record);
  die(0);
}

/* ==== tests =================================================================================== */

/* Numbering, subscriptions from each starting point, raw bytes of every length, short buffers,
 * sizes refused up front, read-only handles, and one namespace with the other kinds. */
TEST(topic_basics) {
  char name[NAME_BUF], buf[128];
  lxshm_topic *t, *ro, *other;
  lxshm_subscription *fresh, *all, *from2, *named;
  lxshm_queue *q;
  lxshm_error err;
  uint64_t seq, lost;
  size_t len;
  int i;

  fresh_name(name, "tbasic");
  CHECK_ST(lxshm_topic_create(name, 100, 2000, LXSHM_DEFAULT_MODE, &t, &err), LXSHM_INVALID_SIZE);
  CHECK_HAS(err.message, "named subscriptions");
  CHECK_ST(lxshm_topic_create(name, 1000, 2, LXSHM_DEFAULT_MODE, &t, &err), LXSHM_OK);
  CHECK_U64(lxshm_topic_size(t), ==, 1000);
  CHECK_STR(lxshm_topic_name(t), name);
  CHECK_U64(lxshm_topic_last(t), ==, 0);
  CHECK_U64(lxshm_topic_oldest(t), ==, 1);
  CHECK_ST(lxshm_topic_subscribe(t, NULL, LXSHM_TOPIC_NEW, &fresh, &err), LXSHM_OK);
  CHECK_ST(lxshm_subscription_next(fresh, buf, sizeof buf, &len, &seq, &lost, 0, &err),
           LXSHM_TIMEOUT);
  CHECK_HAS(err.message, "no new message");

  for (i = 0; i < 5; i++) {
    snprintf(buf, sizeof buf, "m%d", i + 1);
    CHECK_ST(lxshm_topic_publish(t, buf, strlen(buf), 0, &seq, &err), LXSHM_OK);
    CHECK_U64(seq, ==, i + 1);
  }
  CHECK_ST(lxshm_topic_publish(t, NULL, 0, 0, &seq, &err), LXSHM_OK); /* an empty message */
  CHECK_U64(seq, ==, 6);
  memset(buf, 'x', sizeof buf);
  CHECK_ST(lxshm_topic_publish(t, buf, 993, -1, &seq, &err), LXSHM_INVALID_SIZE); /* never */
  CHECK_U64(lxshm_topic_last(t), ==, 6);

  CHECK_ST(lxshm_topic_subscribe(t, NULL, LXSHM_TOPIC_OLDEST, &all, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_subscribe(t, NULL, 2, &from2, &err), LXSHM_OK);
  CHECK_U64(lxshm_subscription_position(all), ==, 1);
  CHECK_U64(lxshm_subscription_position(from2), ==, 2);
  CHECK_ST(lxshm_subscription_next(all, buf, 1, &len, &seq, &lost, 0, &err), LXSHM_INVALID_SIZE);
  CHECK_INT(len, ==, 2); /* and it stays next */
  for (i = 0; i < 6; i++) {
    char want[8];
    snprintf(want, sizeof want, i < 5 ? "m%d" : "", i + 1);
    CHECK_ST(lxshm_subscription_next(all, buf, sizeof buf, &len, &seq, &lost, 0, &err), LXSHM_OK);
    CHECK(len == strlen(want) && memcmp(buf, want, len) == 0);
    CHECK_U64(seq, ==, i + 1);
    CHECK_U64(lost, ==, 0);
    CHECK_ST(lxshm_subscription_next(fresh, buf, sizeof buf, &len, &seq, &lost, 0, &err), LXSHM_OK);
    CHECK_U64(seq, ==, i + 1);
  }
  CHECK_ST(lxshm_subscription_next(from2, buf, sizeof buf, &len, &seq, &lost, 0, &err), LXSHM_OK);
  CHECK(len == 2 && memcmp(buf, "m2", 2) == 0);

  /* Read-only: follows, but neither publishes nor holds a name. */
  CHECK_ST(lxshm_topic_open_with(name, LXSHM_READONLY, &ro, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_publish(ro, "x", 1, 0, NULL, &err), LXSHM_PERMISSION);
  CHECK_ST(lxshm_topic_subscribe(ro, "n", LXSHM_TOPIC_NEW, &named, &err), LXSHM_PERMISSION);
  lxshm_subscription_close(from2);
  CHECK_ST(lxshm_topic_subscribe(ro, NULL, 6, &from2, &err), LXSHM_OK);
  CHECK_ST(lxshm_subscription_next(from2, buf, sizeof buf, &len, &seq, &lost, 1, &err), LXSHM_OK);
  CHECK_U64(seq, ==, 6);
  lxshm_subscription_close(from2);
  lxshm_topic_close(ro);

  /* One namespace with the other kinds; each refuses the others. */
  CHECK_ST(lxshm_topic_create(name, 64, 0, LXSHM_DEFAULT_MODE, &other, &err), LXSHM_EXISTS);
  CHECK_ST(lxshm_queue_open(name, &q, &err), LXSHM_INVALID);
  CHECK_HAS(err.message, "topic");
  CHECK_ST(lxshm_topic_attach(name, 64, 0, LXSHM_DEFAULT_MODE, &other, &i, &err), LXSHM_OK);
  CHECK_INT(i, ==, 0);
  CHECK_U64(lxshm_topic_size(other), ==, 1000);
  lxshm_topic_close(other);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_open(name, &other, &err), LXSHM_NOT_FOUND);
  lxshm_subscription_close(fresh);
  lxshm_subscription_close(all);
  lxshm_topic_close(t);
}

/* Messages of every length keep their bytes across the end of the ring; a subscription that
 * keeps up loses nothing, one that lags learns exactly how many it lost. */
TEST(topic_wraps) {
  char name[NAME_BUF];
  unsigned char in[200], out[200];
  lxshm_topic *t;
  lxshm_subscription *keen, *lazy;
  lxshm_error err;
  uint64_t n, seq, lost, expect = 1;
  size_t len, k;

  fresh_name(name, "twrap");
  CHECK_ST(lxshm_topic_create(name, 512, 0, LXSHM_DEFAULT_MODE, &t, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_subscribe(t, NULL, LXSHM_TOPIC_NEW, &keen, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_subscribe(t, NULL, LXSHM_TOPIC_NEW, &lazy, &err), LXSHM_OK);
  for (n = 1; n <= 3000; n++) {
    size_t size = (size_t)(n * 37 % 150);
    memset(in, (int)(n & 0xff), size);
    CHECK_ST(lxshm_topic_publish(t, in, size, 0, &seq, &err), LXSHM_OK);
    CHECK_U64(seq, ==, n);
    CHECK_ST(lxshm_subscription_next(keen, out, sizeof out, &len, &seq, &lost, 0, &err), LXSHM_OK);
    CHECK(seq == n && lost == 0 && len == size);
    for (k = 0; k < len; k++)
      CHECK_INT(out[k], ==, n & 0xff);
    if (n % 50 == 0) { /* the lazy one reads one message in fifty publishes */
      uint64_t oldest = lxshm_topic_oldest(t);
      CHECK_ST(lxshm_subscription_next(lazy, out, sizeof out, &len, &seq, &lost, 0, &err),
               LXSHM_OK);
      CHECK_U64(seq, ==, oldest > expect ? oldest : expect); /* the oldest still held */
      CHECK_U64(seq - lost, ==, expect);                     /* what it lost is exactly the gap */
      CHECK_INT(len, ==, seq * 37 % 150);
      for (k = 0; k < len; k++)
        CHECK_INT(out[k], ==, seq & 0xff);
      expect = seq + 1;
    }
  }
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_subscription_close(keen);
  lxshm_subscription_close(lazy);
  lxshm_topic_close(t);
}

/* Named subscriptions: kept positions, one holder at a time, FULL, unsubscribe, and a holder
 * that is gone, whether its process died or its pid now names a later process. */
TEST(topic_named) {
  char name[NAME_BUF], buf[16];
  lxshm_topic *t;
  lxshm_subscription *a, *b;
  lxshm_error err;
  lxshm__topic_cursor *c;
  uint64_t seq, lost;
  size_t len;
  helper h;

  fresh_name(name, "tnamed");
  CHECK_ST(lxshm_topic_create(name, 4096, 2, LXSHM_DEFAULT_MODE, &t, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_publish(t, "one", 3, 0, NULL, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_subscribe(t, "a", LXSHM_TOPIC_OLDEST, &a, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_subscribe(t, "a", LXSHM_TOPIC_OLDEST, &b, &err), LXSHM_EXISTS);
  CHECK_HAS(err.message, "held by process");
  CHECK_ST(lxshm_topic_subscribe(t, "bad/name", LXSHM_TOPIC_OLDEST, &b, &err), LXSHM_INVALID);
  CHECK_ST(lxshm_subscription_next(a, buf, sizeof buf, &len, &seq, &lost, 0, &err), LXSHM_OK);
  CHECK_U64(seq, ==, 1);
  CHECK_ST(lxshm_topic_unsubscribe(t, "a", &err), LXSHM_EXISTS);
  lxshm_subscription_close(a);
  CHECK_ST(lxshm_topic_publish(t, "two", 3, 0, NULL, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_subscribe(t, "a", LXSHM_TOPIC_OLDEST, &a, &err), LXSHM_OK);
  CHECK_U64(lxshm_subscription_position(a), ==, 2); /* where it left off, not from the oldest */

  /* Held by another process: refused while it lives, free once it was killed. */
  h = spawn("thold %s b", name);
  await_posts(C_READY, 1, 20, "the helper holds b");
  CHECK_ST(lxshm_topic_subscribe(t, "b", LXSHM_TOPIC_NEW, &b, &err), LXSHM_EXISTS);
  CHECK_ST(lxshm_topic_subscribe(t, "c", LXSHM_TOPIC_NEW, &b, &err), LXSHM_FULL);
  kill_helper(h);
  CHECK_ST(lxshm_topic_subscribe(t, "b", LXSHM_TOPIC_NEW, &b, &err), LXSHM_OK);
  lxshm_subscription_close(b);

  /* This process's pid with another start time: a later process that got a dead holder's pid. */
  lxshm_subscription_close(a);
  CHECK_ST(lxshm_topic_subscribe(t, "a", LXSHM_TOPIC_NEW, &a, &err), LXSHM_OK);
  c = (lxshm__topic_cursor *)(void *)topic_object(t)->data;
  CHECK(c->name_len == 1 && c->name[0] == 'a');
  atomic_fetch_add(&c->holder_start, 12345);
  CHECK_ST(lxshm_topic_subscribe(t, "a", LXSHM_TOPIC_NEW, &b, &err), LXSHM_OK);
  CHECK_U64(lxshm_subscription_position(b), ==, 2);
  lxshm_subscription_close(b);
  lxshm_subscription_close(a); /* its hold was taken over: closing it frees nothing */

  CHECK_ST(lxshm_topic_unsubscribe(t, "zz", &err), LXSHM_NOT_FOUND);
  CHECK_ST(lxshm_topic_unsubscribe(t, "a", &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_subscribe(t, "a", LXSHM_TOPIC_OLDEST, &a, &err), LXSHM_OK);
  CHECK_U64(lxshm_subscription_position(a), ==, 1); /* a new name: from applies again */
  lxshm_subscription_close(a);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_topic_close(t);
}

/* Two publisher processes and three subscriber processes: every subscriber gets every message,
 * whole, numbered without gaps, each publisher's in its order. */
TEST(topic_fanout) {
  enum { PER_PUBLISHER = 5000 };
  char name[NAME_BUF];
  lxshm_topic *t;
  lxshm_error err;
  helper subs[3], pubs[2];
  int k;

  fresh_name(name, "tfan");
  CHECK_ST(lxshm_topic_create(name, 1 << 20, 0, LXSHM_DEFAULT_MODE, &t, &err), LXSHM_OK);
  for (k = 0; k < 3; k++)
    subs[k] = spawn("tsub %s %d 2", name, 2 * PER_PUBLISHER);
  await_posts(C_READY, 3, 20, "three subscribers");
  for (k = 0; k < 2; k++)
    pubs[k] = spawn("tpub %s %d %d", name, k, PER_PUBLISHER);
  for (k = 0; k < 2; k++)
    reap_ok(pubs[k], 60);
  for (k = 0; k < 3; k++)
    reap_ok(subs[k], 60);
  CHECK_U64(lxshm_topic_last(t), ==, 2 * PER_PUBLISHER);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_topic_close(t);
}

/* A subscription asleep in next wakes for another process's publish, this process being either
 * side; a timeout ends a wait with nothing. */
TEST(topic_blocking) {
  char name[NAME_BUF], buf[32];
  lxshm_topic *t;
  lxshm_subscription *sub;
  lxshm_error err;
  uint64_t seq, lost;
  double t0;
  size_t len;
  helper h;

  fresh_name(name, "tblock");
  CHECK_ST(lxshm_topic_create(name, 4096, 0, LXSHM_DEFAULT_MODE, &t, &err), LXSHM_OK);
  h = spawn("tnext %s hello", name);
  await_posts(C_READY, 1, 20, "the subscriber");
  await_sleepers(t, 1);
  CHECK_ST(lxshm_topic_publish(t, "hello", 5, 0, NULL, &err), LXSHM_OK);
  REAP_WOKEN(h);

  CHECK_ST(lxshm_topic_subscribe(t, NULL, LXSHM_TOPIC_NEW, &sub, &err), LXSHM_OK);
  t0 = now_s();
  CHECK_ST(lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, &lost, 0.05, &err),
           LXSHM_TIMEOUT);
  CHECK(now_s() - t0 >= 0.05);
  CHECK_HAS(err.message, "after 0.05 s");
  h = spawn("tpub_to_sleeper %s later", name);
  CHECK_ST(lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, &lost, scaled(20), &err),
           LXSHM_OK);
  CHECK(len == 5 && memcmp(buf, "later", 5) == 0 && seq == 2);
  reap_ok(h, 20);
  lxshm_subscription_close(sub);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_topic_close(t);
}

/* A publisher that dies inside the lock at each step of a publish: the message is whole or
 * absent for every subscription, the next publisher goes on at once, right after the last
 * message (where a subscription that read that one looks for it), and a subscription asleep
 * when a whole message appeared without its wake-up still gets it. */
TEST(topic_publisher_dies) {
  char name[NAME_BUF], buf[128];
  lxshm_topic *t;
  lxshm_subscription *sub, *all;
  lxshm_error err;
  uint64_t seq, lost, first = 0;
  uint32_t posts = 0;
  size_t len;
  int step;

  fresh_name(name, "tdie");
  CHECK_ST(lxshm_topic_create(name, 1 << 16, 0, LXSHM_DEFAULT_MODE, &t, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_subscribe(t, NULL, LXSHM_TOPIC_NEW, &sub, &err), LXSHM_OK);
  for (step = 0; step <= 4; step++) {
    uint64_t before = lxshm_topic_last(t);
    int whole = step >= 3;
    helper waiter = 0;
    note("step %d", step);
    if (whole) { /* asleep before the publish that will not wake it */
      waiter = spawn("tnext %s " GHOST, name);
      await_posts(C_READY, ++posts, 20, "the subscriber");
      await_sleepers(t, 1);
    }
    reap_ok(spawn("tdie %s %d", name, step), 20);
    posts++;
    if (whole) {
      CHECK_U64(lxshm_topic_last(t), ==, before + 1); /* whole: there */
      REAP_WOKEN(waiter);                             /* without a publish to wake it */
      CHECK_ST(lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, &lost, 0, &err), LXSHM_OK);
      CHECK(len == 64 && memcmp(buf, GHOST, 64) == 0 && seq == before + 1);
    }
    else {
      CHECK_U64(lxshm_topic_last(t), ==, before); /* not whole: absent */
      CHECK_ST(lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, &lost, 0, &err),
               LXSHM_TIMEOUT);
    }
    snprintf(buf, sizeof buf, "after %d", step);
    CHECK_ST(lxshm_topic_publish(t, buf, strlen(buf), scaled(5), &seq, &err), LXSHM_OK);
    CHECK_U64(seq, ==, lxshm_topic_last(t));
    first = first != 0 ? first : seq;
    CHECK_ST(lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, &lost, 0, &err), LXSHM_OK);
    CHECK(len == 7 && memcmp(buf, "after ", 6) == 0 && buf[6] == '0' + step && lost == 0);
  }
  /* Read again from the first: all there, whole, with the repaired tails between them. */
  CHECK_ST(lxshm_topic_subscribe(t, NULL, first, &all, &err), LXSHM_OK);
  for (step = 0; step <= 4; step++) {
    CHECK_ST(lxshm_subscription_next(all, buf, sizeof buf, &len, &seq, &lost, 0, &err), LXSHM_OK);
    CHECK(len == 7 && memcmp(buf, "after ", 6) == 0 && buf[6] == '0' + step && lost == 0);
    if (step < 4 && step + 1 >= 3) {
      CHECK_ST(lxshm_subscription_next(all, buf, sizeof buf, &len, &seq, &lost, 0, &err), LXSHM_OK);
      CHECK(len == 64 && memcmp(buf, GHOST, 64) == 0);
    }
  }
  CHECK_U64(seq, ==, lxshm_topic_last(t));
  lxshm_subscription_close(all);
  lxshm_subscription_close(sub);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_topic_close(t);
}

/* Publishers and subscribers killed at any moment: every message read is whole, the topic takes
 * the next publish at once, and killed sleepers are not counted. */
TEST(topic_killed) {
  unsigned j, rounds = 30;
  char name[NAME_BUF], buf[VALUE_MAX];
  lxshm_topic *t;
  lxshm_subscription *sub;
  lxshm__figures f;
  lxshm_error err;
  helper publisher, follower;
  uint64_t seq, lost;
  size_t len;

  fresh_name(name, "tkill");
  CHECK_ST(lxshm_topic_create(name, 2048, 0, LXSHM_DEFAULT_MODE, &t, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_subscribe(t, NULL, LXSHM_TOPIC_OLDEST, &sub, &err), LXSHM_OK);
  for (j = 0; j < rounds; j++) {
    long last = -1;
    note("round %u", j);
    follower = spawn("tfollow %s", name);
    await_posts(C_READY, 2 * j + 1, 20, "the follower");
    if (j % 3 == 0)
      await_sleepers(t, 1);
    publisher = spawn("tpub_forever %s %u", name, j);
    await_posts(C_READY, 2 * j + 2, 20, "the first publish");
    sleep_s(0.001 * (j % 5));
    kill_helper(follower);
    sleep_s(0.002 * (j % 2));
    kill_helper(publisher);
    for (;;) { /* whole messages of publisher j, in order, from wherever it got to */
      unsigned id, i;
      lxshm_status got = lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, &lost, 0, &err);
      if (got == LXSHM_TIMEOUT)
        break;
      if (got != LXSHM_OK)
        FAIL("lxshm_subscription_next gave %s (\"%s\")", lxshm_status_name(got), err.message);
      check_message(buf, len, rounds + 1, &id, &i);
      if (id == rounds)
        continue; /* ours, from the previous round */
      CHECK(id == j && (long)i > last);
      last = (long)i;
    }
    CHECK_ST(lxshm_topic_publish(t, buf, make_value(buf, rounds, j), scaled(5), NULL, &err),
             LXSHM_OK);
  }
  lxshm__figures_get(t, &f);
  CHECK_U64(f.topic.waiters, ==, 0);
  lxshm_subscription_close(sub);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_topic_close(t);
}

/* Damaged bookkeeping and records are reported as CORRUPT, never followed out of bounds. */
TEST(topic_damaged) {
  char name[NAME_BUF], buf[64];
  lxshm_topic *t;
  lxshm_subscription *sub, *from3;
  lxshm_error err;
  uint64_t seq, lost;
  size_t len;
  layout l;

  fresh_name(name, "tdmg");
  CHECK_ST(lxshm_topic_create(name, 256, 0, LXSHM_DEFAULT_MODE, &t, &err), LXSHM_OK);
  l = layout_of(t);
  CHECK_ST(lxshm_topic_subscribe(t, NULL, LXSHM_TOPIC_NEW, &sub, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_publish(t, "fine", 4, 0, NULL, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_publish(t, "next", 4, 0, NULL, &err), LXSHM_OK);
  memset(l.ring, 0xff, 8); /* the first record's header: a length past the ring */
  CHECK_ST(lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, &lost, 0, &err),
           LXSHM_CORRUPT);
  CHECK_HAS(err.message, "message 1 is damaged");
  CHECK_ST(lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, &lost, 0, &err), LXSHM_OK);
  CHECK(seq == 2 && lost == 0 && len == 4 && memcmp(buf, "next", 4) == 0);
  atomic_store(&l.state->pub_oldest, 99); /* the publishers' copy, past last + 1 */
  CHECK_ST(lxshm_topic_publish(t, "more", 4, 0, NULL, &err), LXSHM_CORRUPT);
  CHECK_HAS(err.message, "damaged");
  atomic_store(&l.state->pub_oldest, 1);
  atomic_store(&l.index[3 % l.entries], UINT64_MAX - 3); /* an index entry anywhere */
  CHECK_ST(lxshm_topic_publish(t, "more", 4, 0, &seq, &err), LXSHM_OK);
  CHECK_U64(seq, ==, 3);
  atomic_store(&l.index[3 % l.entries], UINT64_MAX - 3);
  CHECK_ST(lxshm_topic_subscribe(t, NULL, 3, &from3, &err), LXSHM_OK);
  CHECK_ST(lxshm_subscription_next(from3, buf, sizeof buf, &len, &seq, &lost, 0, &err),
           LXSHM_CORRUPT); /* wherever it points, the copy stays inside the ring */
  lxshm_subscription_close(from3);
  /* A subscription that read message 2 knows where 3 starts without the index. */
  CHECK_ST(lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, &lost, 0, &err), LXSHM_OK);
  CHECK(seq == 3 && lost == 0 && len == 4 && memcmp(buf, "more", 4) == 0);
  /* Line 2, which only subscribers read, damaged: the next publish puts it right. */
  atomic_store(&l.state->oldest, 99);
  atomic_store(&l.state->last, 98);
  CHECK_ST(lxshm_topic_publish(t, "mend", 4, 0, &seq, &err), LXSHM_OK);
  CHECK_U64(seq, ==, 4);
  CHECK_U64(lxshm_topic_last(t), ==, 4);
  CHECK_U64(lxshm_topic_oldest(t), ==, 1);
  CHECK_ST(lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, &lost, 0, &err), LXSHM_OK);
  CHECK(seq == 4 && lost == 0 && len == 4 && memcmp(buf, "mend", 4) == 0);
  /* A damaged record where a subscription expects the next one: reported, then passed. */
  CHECK_ST(lxshm_topic_publish(t, "torn", 4, 0, NULL, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_publish(t, "good", 4, 0, NULL, &err), LXSHM_OK);
  memset(l.ring + atomic_load(&l.index[5 % l.entries]) % l.capacity, 0xff, 8);
  CHECK_ST(lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, &lost, 0, &err),
           LXSHM_CORRUPT);
  CHECK_HAS(err.message, "message 5 is damaged");
  CHECK_ST(lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, &lost, 0, &err), LXSHM_OK);
  CHECK(seq == 6 && lost == 0 && len == 4 && memcmp(buf, "good", 4) == 0);
  lxshm_subscription_close(sub);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_topic_close(t);
}

/* ---- a batch overtaken while it is copied ---------------------------------------------------- */

static lxshm_topic *overtaking_topic; /* what overtake() publishes to */
static size_t overtaking_len;         /* bytes it publishes */
static char overtaking_fill;          /* each of them */
static unsigned overtakes_left;       /* publishes it still makes, one per attempt to copy */
static unsigned overtakes;            /* publishes it made */

static void overtake(void) {
  lxshm_error err;
  char value[1024];
  if (overtakes_left == 0)
    return;
  overtakes_left--;
  overtakes++;
  memset(value, overtaking_fill, sizeof value);
  CHECK_ST(lxshm_topic_publish(overtaking_topic, value, overtaking_len, 0, NULL, &err), LXSHM_OK);
}

/* Makes a topic whose ring 8 messages of 120 bytes fill exactly, each message k holding 'a' + k
 * but message `zeros` (if not 0), which holds zeros, subscribed from the oldest; reads the first
 * `read` of them with next. Then has `times` publishes of `len` bytes of `fill` land between a
 * batch's checks and its copy. */
static void overtaking_start(lxshm_topic **t, lxshm_subscription **sub, char *name, uint64_t zeros,
                             uint64_t read, size_t len, char fill, unsigned times) {
  char value[120], buf[128];
  lxshm_error err;
  uint64_t k, seq, lost;
  size_t n;

  fresh_name(name, "tbat");
  CHECK_ST(lxshm_topic_create(name, 1024, 0, LXSHM_DEFAULT_MODE, t, &err), LXSHM_OK);
  CHECK_ST(lxshm_topic_subscribe(*t, NULL, LXSHM_TOPIC_OLDEST, sub, &err), LXSHM_OK);
  for (k = 1; k <= 8; k++) {
    memset(value, k == zeros ? 0 : 'a' + (int)k, sizeof value);
    CHECK_ST(lxshm_topic_publish(*t, value, sizeof value, 0, NULL, &err), LXSHM_OK);
  }
  for (k = 1; k <= read; k++) {
    CHECK_ST(lxshm_subscription_next(*sub, buf, sizeof buf, &n, &seq, &lost, 0, &err), LXSHM_OK);
    CHECK(seq == k && n == 120);
  }
  overtaking_topic = *t;
  overtaking_len = len;
  overtaking_fill = fill;
  overtakes_left = times;
  overtakes = 0;
  lxshm__topic_take_hook = overtake;
}

/* Takes a batch of up to 8 and checks it: it starts at `first`, after `lost` lost, and holds
 * every message still there, each whole (message 9 and later: what overtake() published). */
static void overtaken_check(lxshm_subscription *sub, uint64_t first, uint64_t lost, size_t len) {
  char buf[4096];
  lxshm__take take = {0};
  lxshm_error err;
  size_t off = 0;
  uint64_t k;

  take.buf = buf;
  take.cap = sizeof buf;
  take.whole = 1;
  take.max = 8;
  CHECK_ST(lxshm__subscription_take(sub, &take, &err), LXSHM_OK);
  lxshm__topic_take_hook = NULL;
  CHECK_U64(take.first, ==, first);
  CHECK_U64(take.lost, ==, lost);
  CHECK(take.count >= 9 - first); /* up to 8 at least: they were there before the batch */
  for (k = 0; k < take.count; k++) {
    const char *data;
    size_t n, rec;
    unsigned format;
    rec = lxshm__record_get(buf + off, take.len - off, &data, &n, &format);
    CHECK(rec != 0);
    if (take.first + k <= 8)
      CHECK(n == 120 && data[0] == 'a' + (int)(take.first + k) && data[119] == data[0]);
    else
      CHECK(n == len && data[0] == overtaking_fill && data[len - 1] == overtaking_fill);
    off += rec;
  }
}

/* Publishes one more and reads what is left: the subscription knows where it goes on. */
static void overtaking_end(lxshm_topic *t, lxshm_subscription *sub, const char *name) {
  char buf[1024];
  lxshm_error err;
  uint64_t seq, lost, last;
  size_t n;
  CHECK_ST(lxshm_topic_publish(t, "after", 5, 0, &last, &err), LXSHM_OK);
  do {
    CHECK_ST(lxshm_subscription_next(sub, buf, sizeof buf, &n, &seq, &lost, 0, &err), LXSHM_OK);
    CHECK(lost == 0 && (seq == last ? n == 5 && memcmp(buf, "after", 5) == 0
                                    : n == overtaking_len && buf[0] == overtaking_fill));
  } while (seq < last);
  lxshm_subscription_close(sub);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_topic_close(t);
}

/* A publish that drops the first messages of a batch while it is copied: the batch holds the
 * messages still there, each whole, and the subscription goes on where they end. The later
 * records' places must not come from the overwritten headers, whether the batch looked each up
 * in the index (a new subscription) or followed on from the last copy (one that read 1-4). */
TEST(topic_batch_overtaken) {
  char name[NAME_BUF];
  lxshm_topic *t;
  lxshm_subscription *sub;

  note("a publish of 8 bytes drops message 1, whose zeros read as empty records");
  overtaking_start(&t, &sub, name, 1, 0, 8, 'Z', 1);
  overtaken_check(sub, 2, 1, 8);
  overtaking_end(t, sub, name);
  note("a publish of 248 bytes drops 1 and 2; 3's record is where 1's new header points");
  overtaking_start(&t, &sub, name, 0, 0, 248, 'Z', 1);
  overtaken_check(sub, 3, 2, 248);
  overtaking_end(t, sub, name);
  note("after reading 1-4, 520 zero bytes drop 1-5, and 5's place then reads as empty records");
  overtaking_start(&t, &sub, name, 5, 4, 520, 0, 1);
  overtaken_check(sub, 6, 1, 520);
  overtaking_end(t, sub, name);
}

/* A subscription behind on a full ring, and a publish at every attempt it makes to copy a batch:
 * each publish drops the oldest message, the first of the batch. It gets the rest of them at
 * its first attempt, whether it is new or knows where its next message starts (behind, it
 * looks each up in the index, which keeps what an overtaking publish left). */
TEST(topic_batch_lagging) {
  char name[NAME_BUF];
  lxshm_topic *t;
  lxshm_subscription *sub;
  lxshm_error err;
  char value[120];

  note("a new subscription");
  overtaking_start(&t, &sub, name, 0, 0, 120, 'Z', 100);
  overtaken_check(sub, 2, 1, 120);
  CHECK_U64(overtakes, ==, 1);
  overtaking_end(t, sub, name);
  note("one that read message 1, then saw it dropped");
  overtaking_start(&t, &sub, name, 0, 1, 120, 'Z', 0);
  memset(value, 'Z', sizeof value);
  CHECK_ST(lxshm_topic_publish(t, value, sizeof value, 0, NULL, &err), LXSHM_OK); /* drops 1 */
  overtakes_left = 100;
  overtaken_check(sub, 3, 1, 120);
  CHECK_U64(overtakes, ==, 1);
  overtaking_end(t, sub, name);
}

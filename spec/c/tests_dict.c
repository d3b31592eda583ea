/* tests_dict.c — dictionaries through lxshm.h on every OS: each call's results and failures,
 * the fill a dictionary reaches before its first eviction and the truth of free_space(), the
 * order of eviction, counters and compare-and-set raced by processes, waiting on a key, and
 * processes that die at every step of every kind of change, or are killed at random instants,
 * with check() and a model of the contents verified after each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

enum { C_READY, C_STARTED }; /* counters (test.h) */

#define DICT_VALUE_MAX 4096

/* Under Wine a process takes tens of milliseconds to start: fewer deaths there. */
#ifdef _WIN32
#define STEP_STRIDE 7
#define REPAIR_SAMPLE 40
#define RANDOM_KILLS 40
#else
#define STEP_STRIDE 1
#define REPAIR_SAMPLE 6
#define RANDOM_KILLS 1000
#endif

static lxshm_dict *dict_new(char name[NAME_BUF], const char *tag, uint64_t size) {
  lxshm_dict *d;
  lxshm_error err;
  fresh_name(name, tag);
  CHECK_ST(lxshm_dict_create(name, size, LXSHM_DEFAULT_MODE, &d, &err), LXSHM_OK);
  return d;
}

static void put_str(lxshm_dict *d, const char *key, const char *value, double ttl) {
  lxshm_error err;
  CHECK_ST(lxshm_dict_set(d, key, strlen(key), value, strlen(value), ttl, 0, NULL, NULL, &err),
           LXSHM_OK);
}

/* The value of key as a string ("" when absent: *found 0). */
static const char *get_str(lxshm_dict *d, const char *key, int *found) {
  static char buf[DICT_VALUE_MAX + 1];
  size_t len = 0;
  lxshm_error err;
  lxshm_status st = lxshm_dict_get(d, key, strlen(key), buf, DICT_VALUE_MAX, &len, NULL, &err);
  if (st != LXSHM_OK && st != LXSHM_NOT_FOUND)
    FAIL("get %s: %s (%s)", key, lxshm_status_name(st), err.message);
  *found = st == LXSHM_OK;
  buf[st == LXSHM_OK ? len : 0] = '\0';
  return buf;
}

static void check_dict(lxshm_dict *d) {
  lxshm_error err;
  lxshm_status st = lxshm_dict_check(d, &err);
  if (st != LXSHM_OK)
    FAIL("check: %s: %s", lxshm_status_name(st), err.message);
}

/* A free_space() of a new dictionary of the same size. */
static uint64_t fresh_free_space(uint64_t size) {
  char name[NAME_BUF];
  lxshm_dict *d = dict_new(name, "fresh", size);
  uint64_t free = lxshm_dict_free_space(d);
  lxshm_dict_close(d);
  lxshm_remove(name, NULL);
  return free;
}

/* A small random number generator, so that a failure can be replayed from its seed. */
static uint64_t rng_state;
static uint32_t rnd(uint32_t n) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)((rng_state >> 33) % n);
}

/* ==== calls and results ========================================================================
 */

TEST(dict_calls) {
  char name[NAME_BUF], other[NAME_BUF], big[LXSHM_DICT_KEY_MAX + 2];
  lxshm_dict *d, *d2, *ro;
  lxshm_segment *seg;
  lxshm_error err;
  uint64_t v1, v2, ev, n;
  int64_t sum;
  double secs;
  size_t len;
  int found;
  char buf[64];

  d = dict_new(name, "calls", 1000); /* rounded up to the least size */
  CHECK_U64(lxshm_dict_capacity(d), ==, 16384);
  lxshm_dict_close(d);
  lxshm_remove(name, NULL);
  d = dict_new(name, "calls", 200000); /* rounded up to whole 4 KiB */
  CHECK_U64(lxshm_dict_capacity(d), ==, 200704);
  CHECK_STR(lxshm_dict_name(d), name);
  CHECK_U64(lxshm_dict_count(d), ==, 0);
  CHECK_ST(lxshm_dict_get(d, "a", 1, buf, sizeof buf, &len, &v1, &err), LXSHM_NOT_FOUND);
  CHECK_U64(lxshm_dict_version(d, "a", 1), ==, 0);

  CHECK_ST(lxshm_dict_set(d, "a", 1, "one", 3, 0, 0, &v1, &ev, &err), LXSHM_OK);
  CHECK(v1 > 0 && ev == 0);
  CHECK_ST(lxshm_dict_get(d, "a", 1, buf, sizeof buf, &len, &v2, &err), LXSHM_OK);
  CHECK(len == 3 && memcmp(buf, "one", 3) == 0 && v2 == v1);
  CHECK_ST(lxshm_dict_get(d, "a", 1, buf, 2, &len, NULL, &err), LXSHM_INVALID_SIZE);
  CHECK_U64(len, ==, 3);
  CHECK_ST(lxshm_dict_set(d, "a", 1, "two", 3, 0, LXSHM_DICT_ADD, NULL, NULL, &err), LXSHM_EXISTS);
  CHECK_ST(lxshm_dict_set(d, "b", 1, "two", 3, 0, LXSHM_DICT_REPLACE, NULL, NULL, &err),
           LXSHM_NOT_FOUND);
  CHECK_ST(lxshm_dict_set(d, "a", 1, "uno", 3, 0, LXSHM_DICT_REPLACE, &v2, NULL, &err), LXSHM_OK);
  CHECK(v2 != v1);
  CHECK_STR(get_str(d, "a", &found), "uno");
  CHECK_ST(lxshm_dict_cas(d, "a", 1, v1, "x", 1, 0, NULL, &err), LXSHM_CONFLICT);
  CHECK_HAS(err.message, "version");
  CHECK_ST(lxshm_dict_cas(d, "a", 1, v2, "x", 1, 0, &v1, &err), LXSHM_OK);
  CHECK_ST(lxshm_dict_cas(d, "c", 1, 0, "new", 3, 0, &v2, &err), LXSHM_OK);
  CHECK(v2 != v1 && v2 > 0);
  CHECK_U64(lxshm_dict_count(d), ==, 2);

  /* Versions never repeat, even for a key deleted and stored again. */
  v1 = lxshm_dict_version(d, "c", 1);
  CHECK_ST(lxshm_dict_delete(d, "c", 1, &err), LXSHM_OK);
  CHECK_ST(lxshm_dict_delete(d, "c", 1, &err), LXSHM_OK);
  CHECK_U64(lxshm_dict_version(d, "c", 1), ==, 0);
  put_str(d, "c", "new", 0);
  CHECK(lxshm_dict_version(d, "c", 1) > v1);

  /* Counters: integers, wrapping; a raw value is not a number. */
  CHECK_ST(lxshm_dict_incr(d, "n", 1, 1, 0, 0, 0, &sum, &err), LXSHM_NOT_FOUND);
  CHECK_ST(lxshm_dict_incr(d, "n", 1, 5, 1, 10, 0, &sum, &err), LXSHM_OK);
  CHECK_INT(sum, ==, 15);
  CHECK_ST(lxshm_dict_incr(d, "n", 1, -20, 1, 99, 0, &sum, &err), LXSHM_OK);
  CHECK_INT(sum, ==, -5);
  CHECK_ST(lxshm_dict_incr(d, "m", 1, 1, 1, INT64_MAX, 0, &sum, &err), LXSHM_OK);
  CHECK(sum == INT64_MIN);
  CHECK_ST(lxshm_dict_incr(d, "a", 1, 1, 1, 0, 0, &sum, &err), LXSHM_INVALID);
  CHECK_HAS(err.message, "not a number");

  /* Expiry. */
  CHECK_ST(lxshm_dict_ttl(d, "a", 1, &secs, &err), LXSHM_OK);
  CHECK(secs < 0);
  CHECK_ST(lxshm_dict_expire(d, "a", 1, 100, &err), LXSHM_OK);
  CHECK_ST(lxshm_dict_ttl(d, "a", 1, &secs, &err), LXSHM_OK);
  CHECK(secs > 99 && secs <= 100);
  CHECK_ST(lxshm_dict_expire(d, "a", 1, 0, &err), LXSHM_OK);
  CHECK_ST(lxshm_dict_ttl(d, "a", 1, &secs, &err), LXSHM_OK);
  CHECK(secs < 0);
  CHECK_ST(lxshm_dict_expire(d, "zz", 2, 1, &err), LXSHM_NOT_FOUND);
  CHECK_ST(lxshm_dict_ttl(d, "zz", 2, &secs, &err), LXSHM_NOT_FOUND);

  /* Bad keys and values change nothing. */
  memset(big, 'k', sizeof big);
  CHECK_ST(lxshm_dict_set(d, big, LXSHM_DICT_KEY_MAX + 1, "v", 1, 0, 0, NULL, NULL, &err),
           LXSHM_INVALID_SIZE);
  CHECK_HAS(err.message, "65536 bytes");
  CHECK_ST(lxshm_dict_set(d, big, LXSHM_DICT_KEY_MAX, "v", 1, 0, 0, NULL, NULL, &err),
           LXSHM_OK); /* the longest key */
  CHECK_ST(lxshm_dict_get(d, big, LXSHM_DICT_KEY_MAX, buf, sizeof buf, &len, NULL, &err), LXSHM_OK);
  CHECK_ST(lxshm_dict_delete(d, big, LXSHM_DICT_KEY_MAX, &err), LXSHM_OK);
  CHECK_ST(lxshm_dict_set(d, "", 0, "v", 1, 0, 0, NULL, NULL, &err), LXSHM_INVALID_SIZE);
  CHECK_ST(lxshm_dict_get(d, "", 0, buf, sizeof buf, &len, NULL, &err), LXSHM_INVALID_SIZE);
  CHECK_ST(lxshm_dict_set(d, "h", 1, NULL, 300000, 0, 0, NULL, NULL, &err), LXSHM_INVALID_SIZE);
  CHECK_HAS(err.message, "cannot fit");
  CHECK_U64(lxshm_dict_count(d), ==, 4);
  check_dict(d);

  /* Another process's handle sees the same; a read-only one cannot write. */
  CHECK_ST(lxshm_dict_open(name, &d2, &err), LXSHM_OK);
  CHECK_STR(get_str(d2, "a", &found), "x");
  CHECK_ST(lxshm_dict_open_with(name, LXSHM_READONLY, &ro, &err), LXSHM_OK);
  CHECK_STR(get_str(ro, "c", &found), "new");
  CHECK_ST(lxshm_dict_set(ro, "a", 1, "y", 1, 0, 0, NULL, NULL, &err), LXSHM_PERMISSION);
  CHECK_ST(lxshm_dict_check(ro, &err), LXSHM_PERMISSION);
  lxshm_dict_close(ro);

  /* Kinds do not mix. */
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_INVALID);
  CHECK_HAS(err.message, "is a dict, not a segment");
  fresh_name(other, "seg");
  CHECK_ST(lxshm_create(other, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_dict_open(other, &ro, &err), LXSHM_INVALID);
  CHECK_HAS(err.message, "segment");
  lxshm_close(seg);
  CHECK_ST(lxshm_dict_create(name, 4096, LXSHM_DEFAULT_MODE, &ro, &err), LXSHM_EXISTS);
  CHECK_ST(lxshm_dict_create(name, LXSHM_DICT_SIZE_MAX + 1, LXSHM_DEFAULT_MODE, &ro, &err),
           LXSHM_INVALID_SIZE);

  /* flush_all gives every byte back. */
  CHECK_ST(lxshm_dict_flush_all(d2, &err), LXSHM_OK);
  CHECK_U64(lxshm_dict_count(d), ==, 0);
  CHECK_U64(lxshm_dict_free_space(d), ==, fresh_free_space(200000));
  CHECK_ST(lxshm_dict_flush_expired(d, 0, &n, &err), LXSHM_OK);
  CHECK_U64(n, ==, 0);
  check_dict(d);
  lxshm_dict_close(d2);
  lxshm_dict_close(d);
}

/* ==== memory ===================================================================================
 */

/* Keys of 16 bytes and values of 16 B to 4 KiB, at random: the dictionary takes at least 90% of
 * its capacity in key and value bytes before it evicts anything, and at every step free_space()
 * is a size that fits without evicting. */
TEST(dict_fill) {
  static char value[64u << 10];
  uint64_t sizes[] = {256u << 10, 4u << 20};
  size_t i;
  memset(value, 'v', sizeof value);
  for (i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    char name[NAME_BUF], key[32];
    lxshm_dict *d = dict_new(name, "fill", sizes[i]);
    uint64_t kv = 0, ev = 0, n = 0, t;
    lxshm_error err;
    rng_state = 12345 + i;
    for (;;) {
      size_t len = 16 + rnd(DICT_VALUE_MAX - 16 + 1);
      snprintf(key, sizeof key, "key-%012llu", (unsigned long long)n);
      CHECK_ST(lxshm_dict_set(d, key, 16, value, len, 0, 0, NULL, &ev, &err), LXSHM_OK);
      if (ev > 0)
        break;
      kv += 16 + len;
      n++;
    }
    note("%llu keys, %llu bytes of %llu", (unsigned long long)n, (unsigned long long)kv,
         (unsigned long long)lxshm_dict_capacity(d));
    if (kv * 10 < lxshm_dict_capacity(d) * 9)
      FAIL("first eviction at %.1f%% of the capacity",
           100.0 * (double)kv / (double)lxshm_dict_capacity(d));
    /* free_space() tells the truth: a key and value of that many bytes fit without evicting. */
    for (t = 0; t < 300; t++) {
      uint64_t free;
      snprintf(key, sizeof key, "key-%012llu", (unsigned long long)rnd((uint32_t)n));
      CHECK_ST(lxshm_dict_delete(d, key, 16, &err), LXSHM_OK);
      free = lxshm_dict_free_space(d);
      if (free >= 16 && free - 16 <= sizeof value) {
        snprintf(key, sizeof key, "fit-%012llu", (unsigned long long)t);
        CHECK_ST(lxshm_dict_set(d, key, 16, value, free - 16, 0, LXSHM_DICT_SAFE, NULL, NULL, &err),
                 LXSHM_OK);
      }
    }
    check_dict(d);
    CHECK_ST(lxshm_dict_flush_all(d, &err), LXSHM_OK);
    CHECK_U64(lxshm_dict_free_space(d), ==, fresh_free_space(sizes[i]));
    check_dict(d);
    lxshm_dict_close(d);
  }
}

/* Expired keys go first; then the least recently used live ones. */
TEST(dict_eviction_order) {
  char name[NAME_BUF], key[32], value[1000];
  lxshm_dict *d = dict_new(name, "evict", 64u << 10);
  uint64_t ev = 0, n, i, stored;
  lxshm_error err;
  int found;
  memset(value, 'v', sizeof value);
  /* Fill without evicting, then make every fourth key expire at once (after the fill, whose
   * free_space() calls would reclaim expired keys). */
  for (n = 0; lxshm_dict_free_space(d) >= sizeof value + 16; n++) {
    snprintf(key, sizeof key, "k%llu", (unsigned long long)n);
    CHECK_ST(lxshm_dict_set(d, key, strlen(key), value, sizeof value, 0, LXSHM_DICT_SAFE, NULL,
                            NULL, &err),
             LXSHM_OK);
  }
  stored = n;
  CHECK(stored >= 40);
  for (n = 0; n < stored; n += 4) {
    snprintf(key, sizeof key, "k%llu", (unsigned long long)n);
    CHECK_ST(lxshm_dict_expire(d, key, strlen(key), 0.001, &err), LXSHM_OK);
  }
  sleep_s(0.01); /* the short TTLs are over */
  /* As many new keys as expired ones: no live key is evicted. */
  for (i = 0; i < stored / 4; i++) {
    snprintf(key, sizeof key, "new%llu", (unsigned long long)i);
    CHECK_ST(lxshm_dict_set(d, key, strlen(key), value, sizeof value, 0, 0, NULL, &ev, &err),
             LXSHM_OK);
    CHECK_U64(ev, ==, 0);
  }
  for (n = 0; n < stored; n++) { /* version(): looks without counting as a use */
    snprintf(key, sizeof key, "k%llu", (unsigned long long)n);
    CHECK_INT(lxshm_dict_version(d, key, strlen(key)) != 0, ==, n % 4 != 0);
  }
  /* Now full of live keys: those read recently survive; those not read go first. */
  for (n = 2; n < stored; n += 4) {
    snprintf(key, sizeof key, "k%llu", (unsigned long long)n);
    get_str(d, key, &found);
    CHECK(found);
  }
  for (i = 0; i < stored / 8; i++) {
    snprintf(key, sizeof key, "more%llu", (unsigned long long)i);
    CHECK_ST(lxshm_dict_set(d, key, strlen(key), value, sizeof value, 0, LXSHM_DICT_SAFE, NULL,
                            NULL, &err),
             LXSHM_FULL);
    CHECK_ST(lxshm_dict_set(d, key, strlen(key), value, sizeof value, 0, 0, NULL, &ev, &err),
             LXSHM_OK);
    CHECK(ev >= 1);
  }
  for (n = 2; n < stored; n += 4) {
    snprintf(key, sizeof key, "k%llu", (unsigned long long)n);
    if (lxshm_dict_version(d, key, strlen(key)) == 0)
      FAIL("key %s was read recently, yet evicted", key);
  }
  check_dict(d);
  lxshm_dict_close(d);
}

/* ==== processes ================================================================================
 */

/* dict_incr NAME COUNT: adds 1 to "n" COUNT times. */
HELPER(dict_incr) {
  lxshm_dict *d;
  lxshm_error err;
  int64_t sum;
  int i, count = atoi(argv[1]);
  CHECK_ST(lxshm_dict_open(argv[0], &d, &err), LXSHM_OK);
  post(C_READY);
  await_posts(C_STARTED, 1, 20, "the start");
  for (i = 0; i < count; i++)
    CHECK_ST(lxshm_dict_incr(d, "n", 1, 1, 1, 0, 0, &sum, &err), LXSHM_OK);
  lxshm_dict_close(d);
  return 0;
}

/* dict_cas NAME COUNT: adds 1 to the decimal number under "c" COUNT times, by compare-and-set,
 * retrying on CONFLICT; prints nothing, fails on any other result. */
HELPER(dict_cas) {
  lxshm_dict *d;
  lxshm_error err;
  int i, count = atoi(argv[1]);
  CHECK_ST(lxshm_dict_open(argv[0], &d, &err), LXSHM_OK);
  post(C_READY);
  await_posts(C_STARTED, 1, 20, "the start");
  for (i = 0; i < count;) {
    char buf[32];
    size_t len;
    uint64_t v;
    lxshm_status st = lxshm_dict_get(d, "c", 1, buf, sizeof buf - 1, &len, &v, &err);
    long n = 0;
    if (st == LXSHM_OK) {
      buf[len] = '\0';
      n = atol(buf);
    }
    else {
      CHECK_ST(st, LXSHM_NOT_FOUND);
      v = 0;
    }
    snprintf(buf, sizeof buf, "%ld", n + 1);
    st = lxshm_dict_cas(d, "c", 1, v, buf, strlen(buf), 0, NULL, &err);
    if (st == LXSHM_OK)
      i++;
    else
      CHECK_ST(st, LXSHM_CONFLICT);
  }
  lxshm_dict_close(d);
  return 0;
}

/* Four processes, 1,000 increments each: exactly 4,000; and a compare-and-set counter raced by
 * four processes loses no update. */
TEST(dict_counters) {
  char name[NAME_BUF];
  lxshm_dict *d = dict_new(name, "count", 1u << 20);
  helper h[4];
  lxshm_error err;
  int64_t sum;
  int i, found;
  for (i = 0; i < 4; i++)
    h[i] = spawn("dict_incr %s 1000", name);
  await_posts(C_READY, 4, 20, "four helpers ready");
  post(C_STARTED);
  for (i = 0; i < 4; i++)
    reap_ok(h[i], 20);
  CHECK_ST(lxshm_dict_incr(d, "n", 1, 0, 0, 0, 0, &sum, &err), LXSHM_OK);
  CHECK_INT(sum, ==, 4000);
  atomic_store(&shared->counter[C_READY], 0);
  atomic_store(&shared->counter[C_STARTED], 0);
  for (i = 0; i < 4; i++)
    h[i] = spawn("dict_cas %s 300", name);
  await_posts(C_READY, 4, 20, "four helpers ready");
  post(C_STARTED);
  for (i = 0; i < 4; i++)
    reap_ok(h[i], 20);
  CHECK_STR(get_str(d, "c", &found), "1200");
  check_dict(d);
  lxshm_dict_close(d);
}

/* dict_wait NAME KEY VERSION: waits for KEY's version to differ from VERSION (20 s at most). */
HELPER(dict_wait) {
  lxshm_dict *d;
  lxshm_error err;
  uint64_t now = 0;
  CHECK_ST(lxshm_dict_open(argv[0], &d, &err), LXSHM_OK);
  post(C_READY);
  CHECK_ST(lxshm_dict_wait(d, argv[1], strlen(argv[1]), strtoull(argv[2], NULL, 10), scaled(20),
                           &now, &err),
           LXSHM_OK);
  CHECK_U64(now, ==, lxshm_dict_version(d, argv[1], strlen(argv[1])));
  lxshm_dict_close(d);
  return 0;
}

/* A waiter on a key sleeps through changes of other keys (of its stripe too) and wakes for its
 * own; a wait for a key that expires ends when it expires. */
TEST(dict_wait) {
  char name[NAME_BUF], key[32];
  lxshm_dict *d = dict_new(name, "wait", 16384); /* one stripe: every key wakes the waiter */
  lxshm_error err;
  uint64_t v, now;
  helper h;
  int i;
  double t0;
  put_str(d, "w", "0", 0);
  v = lxshm_dict_version(d, "w", 1);
  h = spawn("dict_wait %s w %llu", name, (unsigned long long)v);
  await_posts(C_READY, 1, 20, "the waiter ready");
  for (i = 0; i < 50; i++) {
    snprintf(key, sizeof key, "other%d", i);
    put_str(d, key, "x", 0);
  }
  sleep_s(0.05);
  CHECK(!reap_within(h, 0)); /* still waiting */
  put_str(d, "w", "1", 0);
  REAP_WOKEN(h);
  CHECK_ST(lxshm_dict_wait(d, "w", 1, lxshm_dict_version(d, "w", 1), 0.01, &now, &err),
           LXSHM_TIMEOUT);
  put_str(d, "e", "soon gone", 0.05);
  v = lxshm_dict_version(d, "e", 1);
  t0 = now_s();
  CHECK_ST(lxshm_dict_wait(d, "e", 1, v, scaled(5), &now, &err), LXSHM_OK);
  CHECK_U64(now, ==, 0);
  CHECK(now_s() - t0 < scaled(1));
  lxshm_dict_close(d);
}

/* ==== crashes ==================================================================================
 */

/* The changes a process may die in, each from a state set up by crash_setup. */
enum {
  OP_SET_NEW,
  OP_SET_SAME,
  OP_SET_GROW,
  OP_DELETE,
  OP_INCR_INIT,
  OP_INCR,
  OP_EXPIRE,
  OP_CAS,
  OP_UPDATE,
  OP_EVICT,
  OP_RECLAIM,
  OP_FLUSH_EXPIRED,
  OP_FLUSH_ALL,
  OP_COUNT
};

#define CRASH_KEYS 12
#define CRASH_SIZE 16384

static size_t crash_value(char *buf, const char *key, unsigned gen, size_t len) {
  size_t i, n = (size_t)snprintf(buf, 64, "%s/%u/", key, gen);
  for (i = n; i < len; i++)
    buf[i] = (char)('a' + (i * 7 + gen) % 26);
  return len > n ? len : n;
}

/* The dictionary each crash trial starts from: keys k0..k11 of 60 to 280 bytes, a counter,
 * and for the ops that reclaim or evict, expired keys and a full arena. */
static void crash_setup(lxshm_dict *d, int op) {
  char key[16], buf[4096];
  lxshm_error err;
  int64_t sum;
  int i;
  for (i = 0; i < CRASH_KEYS; i++) {
    snprintf(key, sizeof key, "k%d", i);
    CHECK_ST(lxshm_dict_set(d, key, strlen(key), buf, crash_value(buf, key, 0, 60 + 20 * i),
                            i == 6 ? 1000 : 0, 0, NULL, NULL, &err),
             LXSHM_OK);
  }
  CHECK_ST(lxshm_dict_incr(d, "cnt", 3, 5, 1, 0, 0, &sum, &err), LXSHM_OK);
  /* Full first, then the keys that expire: free_space() reclaims expired keys, so a fill after
   * them would depend on how fast the machine is. */
  if (op == OP_EVICT || op == OP_RECLAIM) {
    for (i = 0; lxshm_dict_free_space(d) > (op == OP_RECLAIM ? 5000u : 1500u); i++) {
      snprintf(key, sizeof key, "f%d", i);
      CHECK_ST(lxshm_dict_set(d, key, strlen(key), buf, crash_value(buf, key, 0, 1000), 0, 0, NULL,
                              NULL, &err),
               LXSHM_OK);
    }
  }
  if (op == OP_RECLAIM || op == OP_FLUSH_EXPIRED) {
    for (i = 0; i < 6; i++) {
      snprintf(key, sizeof key, "x%d", i);
      CHECK_ST(lxshm_dict_set(d, key, strlen(key), buf, crash_value(buf, key, 0, 500), 0.001,
                              LXSHM_DICT_SAFE, NULL, NULL, &err),
               LXSHM_OK);
    }
  }
  sleep_s(0.002); /* the x keys have expired */
}

/* Runs op to its end. */
static void crash_run(lxshm_dict *d, int op) {
  char buf[4096];
  lxshm_error err;
  lxshm__dict_held held;
  lxshm__dict_key key;
  uint64_t v, n;
  int64_t sum;
  size_t len;
  unsigned fmt;
  switch (op) {
    case OP_SET_NEW:
      CHECK_ST(
          lxshm_dict_set(d, "new", 3, buf, crash_value(buf, "new", 1, 150), 0, 0, NULL, NULL, &err),
          LXSHM_OK);
      break;
    case OP_SET_SAME:
      CHECK_ST(
          lxshm_dict_set(d, "k3", 2, buf, crash_value(buf, "k3", 1, 120), 0, 0, NULL, NULL, &err),
          LXSHM_OK);
      break;
    case OP_SET_GROW:
      CHECK_ST(
          lxshm_dict_set(d, "k4", 2, buf, crash_value(buf, "k4", 1, 2000), 0, 0, NULL, NULL, &err),
          LXSHM_OK);
      break;
    case OP_DELETE:
      CHECK_ST(lxshm_dict_delete(d, "k5", 2, &err), LXSHM_OK);
      break;
    case OP_INCR_INIT:
      CHECK_ST(lxshm_dict_incr(d, "cnt2", 4, 1, 1, 10, 0, &sum, &err), LXSHM_OK);
      break;
    case OP_INCR:
      CHECK_ST(lxshm_dict_incr(d, "cnt", 3, 300, 0, 0, 0, &sum, &err), LXSHM_OK);
      break;
    case OP_EXPIRE:
      CHECK_ST(lxshm_dict_expire(d, "k6", 2, 0, &err), LXSHM_OK);
      break;
    case OP_CAS:
      v = lxshm_dict_version(d, "k7", 2);
      CHECK_ST(lxshm_dict_cas(d, "k7", 2, v, buf, crash_value(buf, "k7", 1, 200), 0, NULL, &err),
               LXSHM_OK);
      break;
    case OP_UPDATE: /* what update(fn) does, fn being the read and the new value */
      key.data = "k8";
      key.len = 2;
      key.type = LXSHM__KEY_STRING;
      CHECK_ST(lxshm__dict_lock_key(d, &key, &held, &err), LXSHM_OK);
      CHECK_ST(lxshm__dict_current_locked(d, &held, buf, sizeof buf, &len, &fmt, &err), LXSHM_OK);
      CHECK_ST(lxshm__dict_store_locked(d, &held, buf, crash_value(buf, "k8", 1, 900),
                                        LXSHM__FORMAT_RAW, 0, &v, &n, &err),
               LXSHM_OK);
      lxshm__dict_unlock_key(d, &held);
      break;
    case OP_EVICT:
    case OP_RECLAIM:
      CHECK_ST(lxshm_dict_set(d, "big", 3, buf, crash_value(buf, "big", 1, 3000), 0, 0, NULL, NULL,
                              &err),
               LXSHM_OK);
      break;
    case OP_FLUSH_EXPIRED:
      CHECK_ST(lxshm_dict_flush_expired(d, 0, &n, &err), LXSHM_OK);
      break;
    case OP_FLUSH_ALL:
      CHECK_ST(lxshm_dict_flush_all(d, &err), LXSHM_OK);
      break;
  }
}

static long steps_left;
static void die_at_step(void) {
  if (--steps_left == 0)
    die(7);
}

/* crash_step NAME OP N: runs OP and dies (status 7) at its Nth step; 0 if it ends first. */
HELPER(crash_step) {
  lxshm_dict *d;
  lxshm_error err;
  CHECK_ST(lxshm_dict_open(argv[0], &d, &err), LXSHM_OK);
  steps_left = atol(argv[2]);
  lxshm__dict_step_hook = die_at_step;
  crash_run(d, atoi(argv[1]));
  lxshm__dict_step_hook = NULL;
  lxshm_dict_close(d);
  return 0;
}

/* Every key a crash trial may touch, with its value (len SIZE_MAX: absent). */
#define SNAP_MAX 64
typedef struct snapshot {
  int n;
  char key[SNAP_MAX][16];
  size_t len[SNAP_MAX];
  char value[SNAP_MAX][3200];
  uint64_t count;
} snapshot;

static void snap(lxshm_dict *d, snapshot *s) {
  static const char *const extra[] = {"new", "cnt", "cnt2", "big"};
  int i;
  lxshm_error err;
  s->n = 0;
  for (i = 0; i < CRASH_KEYS + 6 + 30 + 4; i++) {
    char *key = s->key[s->n];
    lxshm_status st;
    if (i < CRASH_KEYS)
      snprintf(key, 16, "k%d", i);
    else if (i < CRASH_KEYS + 6)
      snprintf(key, 16, "x%d", i - CRASH_KEYS);
    else if (i < CRASH_KEYS + 36)
      snprintf(key, 16, "f%d", i - CRASH_KEYS - 6);
    else
      snprintf(key, 16, "%s", extra[i - CRASH_KEYS - 36]);
    st = lxshm_dict_get(d, key, strlen(key), s->value[s->n], sizeof s->value[0], &s->len[s->n],
                        NULL, &err);
    if (st == LXSHM_NOT_FOUND)
      s->len[s->n] = SIZE_MAX;
    else if (st != LXSHM_OK)
      FAIL("get %s: %s", key, err.message);
    s->n++;
  }
  s->count = lxshm_dict_count(d);
}

static int same_entry(const snapshot *a, const snapshot *b, int i) {
  return a->len[i] == b->len[i] &&
         (a->len[i] == SIZE_MAX || memcmp(a->value[i], b->value[i], a->len[i]) == 0);
}

/* The state after a death: check() passes; every key as before or as after the change (ops
 * that evict may have evicted any key that held no value the change wrote); count right. */
static void verify_crash(lxshm_dict *d, int op, const snapshot *before, const snapshot *after,
                         snapshot *now) {
  uint64_t present = 0;
  int i;
  check_dict(d);
  snap(d, now);
  for (i = 0; i < now->n; i++) {
    int evictable = op == OP_EVICT && before->len[i] != SIZE_MAX;
    if (now->len[i] != SIZE_MAX)
      present++;
    if (!same_entry(now, before, i) && !same_entry(now, after, i) &&
        !(evictable && now->len[i] == SIZE_MAX))
      FAIL("key %s is neither its value before nor after the change (%zu bytes)", now->key[i],
           now->len[i]);
  }
  CHECK_U64(now->count, ==, present);
}

/* A process that dies at each step of each kind of change, in turn, from the same start: after
 * each death, the dictionary checks whole and holds every key as before or after; once cleared
 * it has all its memory back. */
TEST(dict_crash_steps) {
  static snapshot before, after, now;
  uint64_t fresh = fresh_free_space(CRASH_SIZE);
  unsigned deaths = 0;
  int op;
  for (op = 0; op < OP_COUNT; op++) {
    char name[NAME_BUF];
    lxshm_dict *d;
    lxshm_error err;
    long step;
    /* The state after the change, from a run to the end. Every trial of the op reuses the name. */
    d = dict_new(name, "crash", CRASH_SIZE);
    crash_setup(d, op);
    snap(d, &before);
    crash_run(d, op);
    snap(d, &after);
    lxshm_dict_close(d);
    for (step = 1;; step += STEP_STRIDE) {
      helper h;
      int code;
      note("op %d, death at step %ld", op, step);
      lxshm_remove(name, NULL);
      CHECK_ST(lxshm_dict_create(name, CRASH_SIZE, LXSHM_DEFAULT_MODE, &d, &err), LXSHM_OK);
      crash_setup(d, op);
      snap(d, &before);
      h = spawn("crash_step %s %d %ld", name, op, step);
      code = reap_code(h, 20);
      CHECK(code == 0 || code == 7);
      verify_crash(d, op, &before, &after, &now);
      CHECK_ST(lxshm_dict_flush_all(d, &err), LXSHM_OK);
      CHECK_U64(lxshm_dict_free_space(d), ==, fresh);
      check_dict(d);
      lxshm_dict_close(d);
      if (code == 0)
        break;
      deaths++;
    }
    lxshm_remove(name, NULL);
  }
  note("%s", "");
  printf("  (%u deaths at distinct steps) ", deaths);
}

/* repair_step NAME N: takes the lock a dead helper left (a delete of an absent key), repairing
 * what it left, and dies at step N of that; 0 if it ends first. */
HELPER(repair_step) {
  lxshm_dict *d;
  lxshm_error err;
  CHECK_ST(lxshm_dict_open(argv[0], &d, &err), LXSHM_OK);
  steps_left = atol(argv[1]);
  lxshm__dict_step_hook = die_at_step;
  CHECK_ST(lxshm_dict_delete(d, "absent", 6, &err), LXSHM_OK);
  lxshm__dict_step_hook = NULL;
  lxshm_dict_close(d);
  return 0;
}

/* A process that repairs what a dead one left dies in turn, at each step of the repair: the
 * next one repairs both. Deaths of the first at every REPAIR_SAMPLE-th step of each change. */
TEST(dict_repairer_dies) {
  static snapshot before, after, now;
  unsigned deaths = 0;
  int op;
  for (op = 0; op < OP_COUNT; op++) {
    char name[NAME_BUF];
    lxshm_dict *d;
    lxshm_error err;
    long step, rstep;
    int code;
    d = dict_new(name, "repair", CRASH_SIZE);
    crash_setup(d, op);
    crash_run(d, op);
    snap(d, &after);
    lxshm_dict_close(d);
    for (step = 1 + op % REPAIR_SAMPLE;; step += REPAIR_SAMPLE) {
      for (rstep = 1;; rstep += STEP_STRIDE) {
        note("op %d, death at step %ld, then at step %ld of the repair", op, step, rstep);
        lxshm_remove(name, NULL);
        CHECK_ST(lxshm_dict_create(name, CRASH_SIZE, LXSHM_DEFAULT_MODE, &d, &err), LXSHM_OK);
        crash_setup(d, op);
        snap(d, &before);
        code = reap_code(spawn("crash_step %s %d %ld", name, op, step), 20);
        if (code == 0) { /* the change ended before that step */
          lxshm_dict_close(d);
          break;
        }
        CHECK_INT(code, ==, 7);
        deaths++;
        code = reap_code(spawn("repair_step %s %ld", name, rstep), 20);
        CHECK(code == 0 || code == 7);
        verify_crash(d, op, &before, &after, &now);
        lxshm_dict_close(d);
        if (code == 0)
          break;
        deaths++;
      }
      if (code == 0 && rstep == 1)
        break;
    }
    lxshm_remove(name, NULL);
  }
  printf("  (%u deaths) ", deaths);
}

/* ---- random kills ---------------------------------------------------------------------------- */

#define RK_KEYS 48
#define RK_COUNTERS 4

/* Operation i of the random workload: what it does and to which key. */
enum { RK_SET, RK_ADD, RK_REPLACE, RK_DELETE, RK_CAS, RK_INCR, RK_EXPIRE, RK_UPDATE, RK_KINDS };

static void rk_op(uint64_t i, int *kind, unsigned *key, size_t *len) {
  uint64_t x = i * 0x9e3779b97f4a7c15ull;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 29;
  *kind = (int)(x % RK_KINDS);
  *key = (unsigned)((x >> 8) % (*kind == RK_INCR ? RK_COUNTERS : RK_KEYS));
  *len = (size_t)((x >> 20) % 1400);
  if ((x >> 40) % 4 == 0)
    *len %= 40; /* many small values: rewritten in place */
}

static size_t rk_value(char *buf, unsigned key, uint64_t gen, size_t len) {
  size_t i, n = (size_t)snprintf(buf, 48, "b%u/%llu/", key, (unsigned long long)gen);
  for (i = n; i < len; i++)
    buf[i] = (char)('A' + (i + gen) % 26);
  return len > n ? len : n;
}

/* rk_worker NAME FIRST: applies operations FIRST, FIRST + 1, ... forever, saying in shared
 * word 0 which one it is at before starting it. */
HELPER(rk_worker) {
  char key[16], buf[1500];
  lxshm_dict *d;
  lxshm_error err;
  uint64_t i;
  CHECK_ST(lxshm_dict_open(argv[0], &d, &err), LXSHM_OK);
  for (i = strtoull(argv[1], NULL, 10);; i++) {
    int kind;
    unsigned k;
    size_t len;
    int64_t sum;
    uint64_t v, n;
    lxshm_status st;
    rk_op(i, &kind, &k, &len);
    snprintf(key, sizeof key, kind == RK_INCR ? "c%u" : "b%u", k);
    len = rk_value(buf, k, i, len);
    atomic_store(&shared->word[0], i);
    switch (kind) {
      case RK_SET:
        st = lxshm_dict_set(d, key, strlen(key), buf, len, 0, 0, NULL, NULL, &err);
        break;
      case RK_ADD:
        st = lxshm_dict_set(d, key, strlen(key), buf, len, 0, LXSHM_DICT_ADD, NULL, NULL, &err);
        break;
      case RK_REPLACE:
        st = lxshm_dict_set(d, key, strlen(key), buf, len, 0, LXSHM_DICT_REPLACE, NULL, NULL, &err);
        break;
      case RK_DELETE:
        st = lxshm_dict_delete(d, key, strlen(key), &err);
        break;
      case RK_CAS:
        v = lxshm_dict_version(d, key, strlen(key));
        st = lxshm_dict_cas(d, key, strlen(key), v, buf, len, 0, NULL, &err);
        break;
      case RK_INCR:
        st = lxshm_dict_incr(d, key, strlen(key), 1, 1, 0, 0, &sum, &err);
        break;
      case RK_EXPIRE:
        st = lxshm_dict_expire(d, key, strlen(key), 1000, &err);
        break;
      default: { /* update, with time spent holding the lock as a function would */
        lxshm__dict_held held;
        lxshm__dict_key dk;
        size_t cur;
        unsigned fmt;
        volatile unsigned spin = 0;
        char old[1500];
        dk.data = key;
        dk.len = strlen(key);
        dk.type = LXSHM__KEY_STRING;
        CHECK_ST(lxshm__dict_lock_key(d, &dk, &held, &err), LXSHM_OK);
        st = lxshm__dict_current_locked(d, &held, old, sizeof old, &cur, &fmt, &err);
        while (spin < 20000)
          spin++;
        st = lxshm__dict_store_locked(d, &held, buf, len, LXSHM__FORMAT_RAW, 0, &v, &n, &err);
        lxshm__dict_unlock_key(d, &held);
      }
    }
    if (st != LXSHM_OK && st != LXSHM_EXISTS && st != LXSHM_NOT_FOUND)
      FAIL("operation %llu (kind %d): %s", (unsigned long long)i, kind, err.message);
  }
}

/* The model: each key's generation (the operation that stored its value; UINT64_MAX: absent),
 * each counter's value. */
typedef struct rk_model {
  uint64_t gen[RK_KEYS];
  size_t len[RK_KEYS];
  int64_t counter[RK_COUNTERS];
} rk_model;

/* Applies operation i to the model, as the dictionary does. */
static void rk_apply(rk_model *m, uint64_t i) {
  int kind;
  unsigned k;
  size_t len;
  char buf[1500];
  rk_op(i, &kind, &k, &len);
  len = rk_value(buf, k, i, len);
  switch (kind) {
    case RK_INCR:
      m->counter[k]++;
      return;
    case RK_DELETE:
      m->gen[k] = UINT64_MAX;
      return;
    case RK_ADD:
      if (m->gen[k] != UINT64_MAX)
        return;
      break;
    case RK_REPLACE:
      if (m->gen[k] == UINT64_MAX)
        return;
      break;
    case RK_EXPIRE:
      return;
    default:
      break;
  }
  m->gen[k] = i;
  m->len[k] = len;
}

/* Whether the dictionary holds exactly what the model says. */
static int rk_matches(lxshm_dict *d, const rk_model *m, char *why, size_t why_len) {
  char key[16], buf[1500], want[1500];
  unsigned k;
  uint64_t present = RK_COUNTERS;
  for (k = 0; k < RK_KEYS; k++) {
    size_t len = 0;
    lxshm_status st;
    snprintf(key, sizeof key, "b%u", k);
    st = lxshm_dict_get(d, key, strlen(key), buf, sizeof buf, &len, NULL, NULL);
    if (m->gen[k] == UINT64_MAX) {
      if (st != LXSHM_NOT_FOUND) {
        snprintf(why, why_len, "%s should be absent", key);
        return 0;
      }
      continue;
    }
    present++;
    if (st != LXSHM_OK || len != m->len[k] ||
        memcmp(buf, want, rk_value(want, k, m->gen[k], m->len[k])) != 0) {
      snprintf(why, why_len, "%s should be generation %llu", key, (unsigned long long)m->gen[k]);
      return 0;
    }
  }
  for (k = 0; k < RK_COUNTERS; k++) {
    int64_t sum = 0;
    snprintf(key, sizeof key, "c%u", k);
    if (lxshm_dict_incr(d, key, strlen(key), 0, 0, 0, 0, &sum, NULL) != LXSHM_OK ||
        sum != m->counter[k]) {
      snprintf(why, why_len, "%s is %lld, expected %lld", key, (long long)sum,
               (long long)m->counter[k]);
      return 0;
    }
  }
  if (lxshm_dict_count(d) != present) {
    snprintf(why, why_len, "count %llu, expected %llu", (unsigned long long)lxshm_dict_count(d),
             (unsigned long long)present);
    return 0;
  }
  return 1;
}

/* Kills a process applying random changes (updates holding the lock included) at random instants,
 * KILLS times (LXSHM_CRASH_TRIALS overrides): after each kill, check() passes and the contents
 * match the model, the interrupted operation counted as done or not done. */
TEST(dict_random_kills) {
  static rk_model model;
  char name[NAME_BUF], why[128], key[16];
  lxshm_dict *d = dict_new(name, "kills", 1u << 20);
  const char *env = getenv("LXSHM_CRASH_TRIALS");
  unsigned kills = env != NULL ? (unsigned)atoi(env) : RANDOM_KILLS, t, k;
  uint64_t next = 0;
  lxshm_error err;
  int64_t sum;
  rng_state = (uint64_t)lxshm__clock_ns();
  note("seed %llu", (unsigned long long)rng_state);
  for (k = 0; k < RK_KEYS; k++)
    model.gen[k] = UINT64_MAX;
  for (k = 0; k < RK_COUNTERS; k++) {
    snprintf(key, sizeof key, "c%u", k);
    CHECK_ST(lxshm_dict_incr(d, key, strlen(key), 0, 1, 0, 0, &sum, &err), LXSHM_OK);
  }
  for (t = 0; t < kills; t++) {
    helper h;
    uint64_t at, i;
    rk_model done;
    atomic_store(&shared->word[0], next);
    h = spawn("rk_worker %s %llu", name, (unsigned long long)next);
    sleep_s((double)rnd(3000) / 1e6);
    kill_helper(h);
    at = atomic_load(&shared->word[0]);
    for (i = next; i < at; i++)
      rk_apply(&model, i);
    check_dict(d);
    /* Operation `at` was under way: done or not done, nothing else. */
    done = model;
    rk_apply(&done, at);
    if (rk_matches(d, &done, why, sizeof why))
      model = done;
    else if (!rk_matches(d, &model, why, sizeof why))
      FAIL("after kill %u during operation %llu: %s", t, (unsigned long long)at, why);
    next = at + 1;
  }
  printf("  (%u kills, %llu operations) ", kills, (unsigned long long)next);
  CHECK_ST(lxshm_dict_flush_all(d, &err), LXSHM_OK);
  CHECK_U64(lxshm_dict_free_space(d), ==, fresh_free_space(1u << 20));
  lxshm_dict_close(d);
}

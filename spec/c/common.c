/* common.c — what the C tests share on every OS: the test and helper tables expanded from
 * test_list.h, time, fresh names, and helpers that read or steer a segment through its internals
 * (a value's check, waiters, the lock, a half-made commit). No OS calls: those are the runners'. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"
#include "test.h"

/* ---- the tables ------------------------------------------------------------------------------ */

const test_entry all_tests[] = {
#define TEST_ENTRY(id, title) {title, test_##id},
    TEST_LIST(TEST_ENTRY)
#undef TEST_ENTRY
};

const int test_count = (int)(sizeof all_tests / sizeof *all_tests);

static const helper_entry all_helpers[] = {
#define HELPER_ENTRY(id, args) {#id, args, helper_##id},
    HELPER_LIST(HELPER_ENTRY)
#undef HELPER_ENTRY
};

const helper_entry *find_helper(const char *name) {
  size_t i;
  for (i = 0; i < sizeof all_helpers / sizeof *all_helpers; i++)
    if (strcmp(all_helpers[i].name, name) == 0)
      return &all_helpers[i];
  return NULL;
}

/* ---- time ------------------------------------------------------------------------------------ */

double slow = 1.0;

double now_s(void) {
  return (double)lxshm__clock_ns() / 1e9;
}

void sleep_s(double s) {
  double end = now_s() + s, left;
  while ((left = end - now_s()) > 0) /* a signal may cut one sleep short */
    lxshm__sleep_ns((uint64_t)(left * 1e9) + 1);
}

double scaled(double s) {
  return s * slow;
}

/* ---- names ----------------------------------------------------------------------------------- */

void fresh_name(char out[NAME_BUF], const char *tag) {
  static unsigned counter;
  snprintf(out, NAME_BUF, "ct%lu.%u.%s", (unsigned long)lxshm__pid(), counter++, tag);
  if (lxshm_check_name(out) != LXSHM_OK)
    FAIL("made an invalid name \"%s\"", out);
  name_made(out);
}

/* ---- helper processes ------------------------------------------------------------------------ */

void reap_ok(helper h, double seconds) {
  int code = reap_code(h, seconds);
  if (code != 0)
    FAIL("helper exited with status %d", code);
}

/* ---- segments -------------------------------------------------------------------------------- */

void check_value(const char *file, int line, lxshm_segment *seg, const void *data, size_t len,
                 uint64_t version) {
  size_t cap = (size_t)lxshm_size(seg), got = 0;
  unsigned char *buf = malloc(cap + 1);
  uint64_t v = 0;
  lxshm_error err;
  lxshm_status st;

  if (buf == NULL)
    fail_at(file, line, "out of memory");
  st = lxshm_read(seg, buf, cap + 1, &got, &v, &err);
  if (st != LXSHM_OK)
    fail_at(file, line, "lxshm_read gave %s (\"%s\")", lxshm_status_name(st), err.message);
  if (got != len || memcmp(buf, data, len) != 0)
    fail_at(file, line, "read %zu bytes \"%.*s\", expected %zu bytes \"%.*s\"", got,
            (int)(got < 40 ? got : 40), (const char *)buf, len, (int)(len < 40 ? len : 40),
            (const char *)data);
  if (v != version)
    fail_at(file, line, "value has version %llu, expected %llu", (unsigned long long)v,
            (unsigned long long)version);
  free(buf);
}

lxshm__object *seg_object(lxshm_segment *seg) {
  return (lxshm__object *)(void *)seg;
}

lxshm__object *queue_object(lxshm_queue *q) {
  return (lxshm__object *)(void *)q;
}

uint32_t waiters_now(lxshm_segment *seg) {
  lxshm__figures f;
  lxshm__figures_get(seg, &f);
  return (uint32_t)f.segment.waiters;
}

void await_waiters(lxshm_segment *seg, uint32_t n) {
  double end = now_s() + scaled(20);
  while (waiters_now(seg) < n) {
    if (now_s() > end)
      FAIL("%u waiters expected, %u registered", n, waiters_now(seg));
    sleep_s(0.001);
  }
}

void lock_or_fail(lxshm_segment *seg) {
  lxshm_error err;
  CHECK_ST(lxshm__lock(seg, lxshm__deadline(scaled(10)), &err), LXSHM_OK);
}

static int repairs; /* calls of count_repair since lock_reporting_death began */

static void count_repair(lxshm__object *o) {
  (void)o;
  repairs++;
}

int lock_reporting_death(lxshm_segment *seg) {
  lxshm_error err;
  lxshm__object *o = seg_object(seg);
  repairs = 0;
  CHECK_ST(lxshm__object_lock(o, o->hdr->lock, lxshm__deadline(scaled(10)), count_repair, &err),
           LXSHM_OK);
  return repairs;
}

void scribble_idle_slot(lxshm_segment *seg) {
  lxshm__object *o = seg_object(seg);
  lxshm__header *h = o->hdr;
  uint64_t idle = (atomic_load(&h->u.segment.version) + 1) & 1;
  memset(o->data + idle * h->slot_stride, 0xa5, (size_t)h->slot_stride);
  atomic_store(&h->u.segment.slots[idle].length, h->capacity * 1000 + 7);
  atomic_store(&h->u.segment.slots[idle].format, 0xdeadu);
  atomic_store(&h->u.segment.slots[idle].version, atomic_load(&h->u.segment.version) + 1);
}

/* ---- values ---------------------------------------------------------------------------------- */

static size_t pattern_len(uint64_t n) {
  return ((size_t)256 << 10) + (size_t)(n * 40503u % ((size_t)768 << 10));
}

static unsigned char pattern_byte(uint64_t n, size_t i) {
  uint64_t x = n * 0x9e3779b97f4a7c15u + i;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9u;
  return (unsigned char)(x >> 56);
}

size_t fill_pattern(unsigned char *buf, uint64_t n) {
  size_t i, len = pattern_len(n);
  memcpy(buf, &n, sizeof n);
  for (i = sizeof n; i < len; i++)
    buf[i] = pattern_byte(n, i);
  return len;
}

uint64_t check_pattern(const unsigned char *buf, size_t len) {
  uint64_t n;
  size_t i;
  if (len < sizeof n)
    FAIL("value of %zu bytes is too short to be a pattern", len);
  memcpy(&n, buf, sizeof n);
  if (len != pattern_len(n))
    FAIL("value %llu has %zu bytes, expected %zu", (unsigned long long)n, len, pattern_len(n));
  for (i = sizeof n; i < len; i++)
    if (buf[i] != pattern_byte(n, i))
      FAIL("value %llu is mixed: byte %zu is wrong", (unsigned long long)n, i);
  return n;
}

size_t make_value(char *buf, unsigned id, unsigned i) {
  size_t n = (size_t)snprintf(buf, VALUE_MAX, "%u:%u:", id, i), len = 6 + (i * 37 + id) % 80;
  if (len < n)
    len = n;
  while (n < len) {
    buf[n] = (char)('a' + (i + n) % 26);
    n++;
  }
  return len;
}

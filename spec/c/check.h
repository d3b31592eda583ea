/* check.h — the assertion macros of lxshm's C test runners (test_core.c, test_win.c). The
 * includer defines fail_at(file, line, fmt, ...) and FAIL(...) over it: record the failure with
 * its reason and end the process. CHECK_ST expects an `lxshm_error err` in scope, which the
 * checked call reports into. */
#ifndef LXSHM_SPEC_CHECK_H
#define LXSHM_SPEC_CHECK_H

#include <stdlib.h>
#include <string.h>

#include "lxshm.h"

#define CHECK(cond) ((cond) ? (void)0 : FAIL("CHECK(%s)", #cond))

/* Integer comparisons that print both sides. */
#define CHECK_INT(a, op, b)                                       \
  do {                                                            \
    long long a_ = (long long)(a), b_ = (long long)(b);           \
    if (!(a_ op b_))                                              \
      FAIL("CHECK(%s %s %s): %lld vs %lld", #a, #op, #b, a_, b_); \
  } while (0)
#define CHECK_U64(a, op, b)                                                        \
  do {                                                                             \
    unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b); \
    if (!(a_ op b_))                                                               \
      FAIL("CHECK(%s %s %s): %llu vs %llu", #a, #op, #b, a_, b_);                  \
  } while (0)

#define CHECK_STR(a, b)                                          \
  do {                                                           \
    const char *a_ = (a), *b_ = (b);                             \
    if (strcmp(a_, b_) != 0)                                     \
      FAIL("CHECK(%s == %s): \"%s\" vs \"%s\"", #a, #b, a_, b_); \
  } while (0)

#define CHECK_HAS(text, part)                                             \
  do {                                                                    \
    const char *t_ = (text), *p_ = (part);                                \
    if (strstr(t_, p_) == NULL)                                           \
      FAIL("%s is \"%s\", which does not mention \"%s\"", #text, t_, p_); \
  } while (0)

/* Runs `call`, which must report into the test's `lxshm_error err`, and checks its status. On
 * a mismatch the reason shows the call, both status names and err.message. */
#define CHECK_ST(call, want)                                                                \
  do {                                                                                      \
    lxshm_status got_, want_ = (want);                                                      \
    memset(&err, 0, sizeof err);                                                            \
    got_ = (call);                                                                          \
    if (got_ != want_)                                                                      \
      FAIL("%s gave %s (\"%s\"), expected %s", #call, lxshm_status_name(got_), err.message, \
           lxshm_status_name(want_));                                                       \
  } while (0)

/* Fails unless the segment's current value is exactly `len` bytes of `data`, committed as
 * `version`. */
#define CHECK_VALUE(seg, data, len, version)                                                     \
  check_value(__FILE__, __LINE__, (seg), (data), (len), (version))

static void check_value(const char *file, int line, lxshm_segment *seg, const void *data,
                        size_t len, uint64_t version) {
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

#endif

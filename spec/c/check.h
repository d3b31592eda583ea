/* check.h — the assertion macros of lxshm's C tests, included by test.h after FAIL(...): each
 * failed check records its reason and ends the process. CHECK_ST expects an `lxshm_error err` in
 * scope, which the checked call reports into. */
#ifndef LXSHM_SPEC_CHECK_H
#define LXSHM_SPEC_CHECK_H

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

#endif

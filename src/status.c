/* status.c — the status codes' names and texts, and the helper that fills an lxshm_error.
 * Expands LXSHM_STATUS_MAP from lxshm.h, so names, texts and values cannot drift apart. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

const char *lxshm_status_name(lxshm_status st) {
  switch (st) {
#define LXSHM_NAME_CASE(name, value, text) \
  case LXSHM_##name:                       \
    return #name;
    LXSHM_STATUS_MAP(LXSHM_NAME_CASE)
#undef LXSHM_NAME_CASE
  }
  return "UNKNOWN";
}

const char *lxshm_strerror(lxshm_status st) {
  switch (st) {
#define LXSHM_TEXT_CASE(name, value, text) \
  case LXSHM_##name:                       \
    return text;
    LXSHM_STATUS_MAP(LXSHM_TEXT_CASE)
#undef LXSHM_TEXT_CASE
  }
  return "unknown status";
}

lxshm_status lxshm__fail(lxshm_error *err, lxshm_status st, const char *fmt, ...) {
  if (err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->os_code = 0;
  }
  return st;
}

/* ring.c — copies into and out of a ring that wrap at its end, and the records rings hold.
 * Shared by queues and topics; knows nothing of locks, indices or who may write where: the
 * callers' protocols (queue.c, topic.c) decide that. */
#include <string.h>

#include "internal.h"
#include "layout.h"
#include "ring.h"

/* ---- records ------------------------------------------------------------------------------ */

uint64_t lxshm__record_max_value(uint64_t room) {
  uint64_t whole = room / LXSHM__RECORD_ALIGN * LXSHM__RECORD_ALIGN;
  uint64_t max = whole > LXSHM__RECORD_HEADER ? whole - LXSHM__RECORD_HEADER : 0;
  return max < UINT32_MAX ? max : UINT32_MAX;
}

size_t lxshm__record_put(void *dst, const void *data, size_t len, unsigned format) {
  size_t rec = (size_t)lxshm__record_size(len);
  lxshm__record_header((unsigned char *)dst, len, format);
  if (len > 0)
    memcpy((char *)dst + LXSHM__RECORD_HEADER, data, len);
  memset((char *)dst + LXSHM__RECORD_HEADER + len, 0, rec - LXSHM__RECORD_HEADER - len);
  return rec;
}

size_t lxshm__record_get(const void *src, size_t avail, const char **data, size_t *len,
                         unsigned *format) {
  uint32_t n;
  unsigned fmt;
  if (avail < LXSHM__RECORD_HEADER)
    return 0;
  lxshm__record_parse((const unsigned char *)src, &n, &fmt);
  if (lxshm__record_size(n) > avail || fmt > LXSHM__FORMAT_MSGPACK)
    return 0;
  *data = (const char *)src + LXSHM__RECORD_HEADER;
  *len = n;
  *format = fmt;
  return (size_t)lxshm__record_size(n);
}

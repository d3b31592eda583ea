/* ring.h — bytes in a ring, and the records a ring holds (ring.c): what a queue and a topic
 * share. Positions count bytes since creation and never wrap; a position's place in the ring is
 * position % capacity, and a copy may wrap around the ring's end. No locks, no OS, no Lua. */
#ifndef LXSHM_RING_H
#define LXSHM_RING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "layout.h"

/* A ring of `capacity` bytes starting at `data`: a view, owned by the object that maps it. */
typedef struct lxshm__ring {
  unsigned char *data;
  uint64_t capacity;
} lxshm__ring;

/* Copies n bytes (n <= capacity) into the ring at position pos. Inline, with one division:
 * most copies do not wrap, and a publish or a take makes several per record. */
static inline void lxshm__ring_put(const lxshm__ring *r, uint64_t pos, const void *src, size_t n) {
  uint64_t off = pos % r->capacity, room = r->capacity - off;
  if (n <= room)
    memcpy(r->data + off, src, n);
  else {
    memcpy(r->data + off, src, (size_t)room);
    memcpy(r->data, (const char *)src + room, n - (size_t)room);
  }
}

/* Copies n bytes (n <= capacity) out of the ring from position pos, as lxshm__ring_put. */
static inline void lxshm__ring_get(const lxshm__ring *r, uint64_t pos, void *dst, size_t n) {
  uint64_t off = pos % r->capacity, room = r->capacity - off;
  if (n <= room)
    memcpy(dst, r->data + off, n);
  else {
    memcpy(dst, r->data + off, (size_t)room);
    memcpy((char *)dst + room, r->data, n - (size_t)room);
  }
}

/* ---- records --------------------------------------------------------------------------------
 * A record is an 8-byte header (u32 length of the value, u32 format tag, in the machine's byte
 * order), then the value's bytes, zero-padded to a multiple of LXSHM__RECORD_ALIGN. Records lie
 * back to back, in a ring or in a batch buffer outside it. */

#define LXSHM__RECORD_HEADER 8u

/* The bytes a value of `len` bytes takes as a record. */
static inline uint64_t lxshm__record_size(uint64_t len) {
  return (LXSHM__RECORD_HEADER + len + LXSHM__RECORD_ALIGN - 1) / LXSHM__RECORD_ALIGN *
         LXSHM__RECORD_ALIGN;
}

/* The largest value a record of at most `room` bytes can hold (0 if none). */
uint64_t lxshm__record_max_value(uint64_t room);

/* Writes the header of a record for a value of `len` bytes (at most UINT32_MAX) to head. */
static inline void lxshm__record_header(unsigned char head[LXSHM__RECORD_HEADER], size_t len,
                                        unsigned format) {
  uint32_t fields[2];
  fields[0] = (uint32_t)len;
  fields[1] = format;
  memcpy(head, fields, sizeof fields);
}

/* Reads a record header: the value's length and format. */
static inline void lxshm__record_parse(const unsigned char head[LXSHM__RECORD_HEADER],
                                       uint32_t *len, unsigned *format) {
  uint32_t fields[2];
  memcpy(fields, head, sizeof fields);
  *len = fields[0];
  *format = fields[1];
}

/* Writes a whole record at dst (lxshm__record_size(len) bytes) and returns its size. */
size_t lxshm__record_put(void *dst, const void *data, size_t len, unsigned format);

/* Reads the record at src, of which avail bytes are readable: its value and format. Returns its
 * size, or 0 if it is damaged or cut short (a length past avail, an unknown format). */
size_t lxshm__record_get(const void *src, size_t avail, const char **data, size_t *len,
                         unsigned *format);

#endif

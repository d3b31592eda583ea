/* number.c — the numbers of incr as MessagePack bytes: read one, add two, write the sum, as the
 * codec would read and write them (doc/FORMAT.md), with no Lua and no OS. The local dictionary
 * (dict.c) adds under its stripe lock; the Redis backend (src/redis/dict.c) adds between a read
 * and a compare-and-set. Both keep an integer plus an integer an integer, on every runtime. */
#include <string.h>

#include "internal.h"


static uint64_t be(const unsigned char *p, int n) {
  uint64_t x = 0;
  int i;
  for (i = 0; i < n; i++)
    x = x << 8 | p[i];
  return x;
}

/* The number that the MessagePack bytes p[0..n-1] are exactly; 0 if they are something else. */
int lxshm__number_parse(const unsigned char *p, size_t n, lxshm__dict_number *x) {
  uint64_t u;
  x->is_int = 1;
  if (n == 1 && (p[0] <= 0x7f || p[0] >= 0xe0)) {
    x->i = p[0] <= 0x7f ? p[0] : (int64_t)p[0] - 256;
    return 1;
  }
  switch (n > 0 ? p[0] : 0) {
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
      if (n != 1 + ((size_t)1 << (p[0] - 0xcc)))
        return 0;
      u = be(p + 1, (int)n - 1);
      if (u > (uint64_t)INT64_MAX)
        return 0; /* not a Lua integer: the codec refuses it too */
      x->i = (int64_t)u;
      return 1;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
      int bytes = 1 << (p[0] - 0xd0);
      if (n != 1 + (size_t)bytes)
        return 0;
      u = be(p + 1, bytes);
      if (bytes < 8 && (u >> (bytes * 8 - 1)))
        u |= ~(uint64_t)0 << (bytes * 8); /* sign-extend */
      memcpy(&x->i, &u, 8);
      return 1;
    }
    case 0xca: {
      uint32_t b;
      float f;
      if (n != 5)
        return 0;
      b = (uint32_t)be(p + 1, 4);
      memcpy(&f, &b, 4);
      x->is_int = 0;
      x->f = f;
      return 1;
    }
    case 0xcb:
      if (n != 9)
        return 0;
      u = be(p + 1, 8);
      memcpy(&x->f, &u, 8);
      x->is_int = 0;
      return 1;
    default:
      return 0;
  }
}

static size_t put_be(unsigned char *p, unsigned char tag, uint64_t x, int n) {
  int i;
  p[0] = tag;
  for (i = 0; i < n; i++)
    p[1 + i] = (unsigned char)(x >> (8 * (n - 1 - i)));
  return 1 + (size_t)n;
}

/* Writes x as the codec would (the smallest integer form; a double as float64); returns the
 * length, at most 9. */
size_t lxshm__number_encode(const lxshm__dict_number *x, unsigned char *p) {
  uint64_t u;
  if (!x->is_int) {
    memcpy(&u, &x->f, 8);
    return put_be(p, 0xcb, u, 8);
  }
  memcpy(&u, &x->i, 8);
  if (x->i >= 0) {
    if (x->i <= 0x7f) {
      p[0] = (unsigned char)x->i;
      return 1;
    }
    if (x->i <= 0xff)
      return put_be(p, 0xcc, u, 1);
    if (x->i <= 0xffff)
      return put_be(p, 0xcd, u, 2);
    if (x->i <= 0xffffffffll)
      return put_be(p, 0xce, u, 4);
    return put_be(p, 0xcf, u, 8);
  }
  if (x->i >= -32) {
    p[0] = (unsigned char)(0x100 + x->i);
    return 1;
  }
  if (x->i >= INT8_MIN)
    return put_be(p, 0xd0, u, 1);
  if (x->i >= INT16_MIN)
    return put_be(p, 0xd1, u, 2);
  if (x->i >= INT32_MIN)
    return put_be(p, 0xd2, u, 4);
  return put_be(p, 0xd3, u, 8);
}

void lxshm__number_add(const lxshm__dict_number *a, const lxshm__dict_number *b,
                       lxshm__dict_number *sum) {
  if (a->is_int && b->is_int) {
    uint64_t x, y, z;
    memcpy(&x, &a->i, 8);
    memcpy(&y, &b->i, 8);
    z = x + y; /* wraps, as Lua's integers do */
    memcpy(&sum->i, &z, 8);
    sum->is_int = 1;
    return;
  }
  sum->is_int = 0;
  sum->f = (a->is_int ? (double)a->i : a->f) + (b->is_int ? (double)b->i : b->f);
}

/* codec.c — Lua values to MessagePack bytes and back (SPEC §6, doc/FORMAT.md).
 * Owns the encoder (output buffer, table-identity index, path messages) and the decoder. Makes
 * no OS call and never calls a metamethod; trusts none of the bytes it decodes: every length
 * and count is compared with the bytes left before use, and nesting is bounded both ways. */
#include "codec.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if LXSHM_HAS_INTEGERS
_Static_assert(sizeof(lua_Integer) == 8, "lxshm needs 64-bit Lua integers");
#endif
_Static_assert(sizeof(lua_Number) == 8, "lxshm needs double Lua floats");

/* MessagePack ext type of a back-reference to a table met before (doc/FORMAT.md). Its payload
 * is the table's number, big-endian, in 1, 2 or 4 bytes (the decoder also accepts 8). */
#define EXT_REF 76 /* 0x4C, ASCII 'L' */

/* What an encoder step tells its caller. A type of its own, numbered apart from lxshm_status,
 * so that neither can pass for the other: a refusal's status travels in enc_state.status, and
 * only lxshm__encode turns a result into a status (or a Lua error). The decoder has no internal
 * outcomes and returns lxshm_status (LXSHM_OK or LXSHM_CORRUPT) throughout. */
typedef enum enc_result {
  ENC_OK = 100,
  ENC_REFUSED, /* the value cannot be written: s->status and s->err say why */
  ENC_NOMEM,   /* malloc failed: raised as a Lua error once the encoder is idle again */
  ENC_NOSTACK, /* lua_checkstack failed: raised once the encoder is idle again */
  ENC_NOTSEQ   /* the optimistic array pass met a key outside 1..n; never leaves enc_table */
} enc_result;

#define COUNT_MAX 0xffffffffu /* most elements a MessagePack array, map or string can hold */


/* ---- big-endian bytes ------------------------------------------------------------------------ */

static inline void be16(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 8);
  p[1] = (unsigned char)v;
}

static inline void be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static inline void be64(unsigned char *p, uint64_t v) {
  be32(p, (uint32_t)(v >> 32));
  be32(p + 4, (uint32_t)v);
}

/* v's low `width` bytes, big-endian, at p. */
static inline void wr_be(unsigned char *p, uint64_t v, unsigned width) {
  switch (width) {
    case 2:
      be16(p, (uint32_t)v);
      return;
    case 4:
      be32(p, (uint32_t)v);
      return;
    case 8:
      be64(p, v);
      return;
    default:
      while (width-- > 0) {
        p[width] = (unsigned char)v;
        v >>= 8;
      }
  }
}

static inline uint32_t rd16(const unsigned char *p) {
  return (uint32_t)p[0] << 8 | p[1];
}

static inline uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t rd64(const unsigned char *p) {
  return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}


/* ---- numbers on every runtime ---------------------------------------------------------------- */

/* Lua 5.3 and later tell integers from floats (math.type), and the codec keeps that apart. Lua
 * 5.1, 5.2 and LuaJIT have doubles only: there a number with an integral value within ±2^53 is
 * written as a MessagePack integer and any other (a fraction, beyond ±2^53, -0.0, an infinity,
 * NaN) as a float, and an integer read back is the nearest double, exact within ±2^53
 * (doc/FORMAT.md, "Lua runtimes"). Only this section and enc_number depend on the kind. */

#if LXSHM_HAS_INTEGERS

/* True when the value at idx is an integer (math.type "integer"); sets *i. */
static inline int int_value(lua_State *L, int idx, int64_t *i) {
  if (!lua_isinteger(L, idx))
    return 0;
  *i = (int64_t)lua_tointeger(L, idx);
  return 1;
}

static inline void push_int(lua_State *L, int64_t i) {
  lua_pushinteger(L, (lua_Integer)i);
}

/* Pushes v and returns 1; returns 0, pushing nothing, when v is above math.maxinteger. */
static inline int push_uint(lua_State *L, uint64_t v) {
  if (v > (uint64_t)LUA_MAXINTEGER)
    return 0;
  lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

#else

#define EXACT_MAX 9007199254740992.0 /* 2^53: every integer up to it in magnitude is a double */

/* True when d is written as an integer: integral, within ±2^53, and not -0.0 (which must read
 * back as -0.0); sets *i. */
static inline int double_is_int(double d, int64_t *i) {
  if (!(d >= -EXACT_MAX && d <= EXACT_MAX)) /* NaN fails this too */
    return 0;
  *i = (int64_t)d;
  return (double)*i == d && (*i != 0 || !signbit(d));
}

/* True when the value at idx is a number written as an integer; sets *i. */
static inline int int_value(lua_State *L, int idx, int64_t *i) {
  return lua_type(L, idx) == LUA_TNUMBER && double_is_int((double)lua_tonumber(L, idx), i);
}

/* Beyond ±2^53: the nearest double (round to nearest, ties to even). */
static inline void push_int(lua_State *L, int64_t i) {
  lua_pushnumber(L, (lua_Number)i);
}

/* Pushes v, the nearest double, and returns 1: any uint 64 reads as a number here. */
static inline int push_uint(lua_State *L, uint64_t v) {
  lua_pushnumber(L, (lua_Number)v);
  return 1;
}

#endif


/* ---- UTF-8 check ----------------------------------------------------------------------------- */

#define HIGH_BITS 0x8080808080808080u

static inline uint64_t load64(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

/* A UTF-8 automaton run as a "shift DFA": each state is a bit offset (a multiple of 6) into a
 * 64-bit row, and the row of a byte holds every state's successor, so one step is
 * state = (row >> state) & 63. The row does not depend on the state, so its loads overlap and
 * only a shift and a mask sit on the chain from one byte to the next. States: U_OK (between
 * characters), U_N1..U_N3 (1..3 continuation bytes still due), U_E0, U_ED, U_F0, U_F4 (the
 * first continuation byte is restricted: no overlong forms, no surrogates, nothing above
 * U+10FFFF), U_BAD (rejected, for good). */
enum {
  U_OK = 0,
  U_N1 = 6,
  U_N2 = 12,
  U_N3 = 18,
  U_E0 = 24,
  U_ED = 30,
  U_F0 = 36,
  U_F4 = 42,
  U_BAD = 48
};

#define U_TO(from, to) ((uint64_t)(to) << (from))
/* Every state but U_OK to U_BAD: what a byte does when it cannot come next. */
#define U_ELSE_BAD                                                                 \
  (U_TO(U_N1, U_BAD) | U_TO(U_N2, U_BAD) | U_TO(U_N3, U_BAD) | U_TO(U_E0, U_BAD) | \
   U_TO(U_ED, U_BAD) | U_TO(U_F0, U_BAD) | U_TO(U_F4, U_BAD) | U_TO(U_BAD, U_BAD))
/* A continuation byte: ends or shortens a pending character, is refused at U_OK. */
#define U_CONT(e0, ed, f0, f4)                                                                     \
  (U_TO(U_OK, U_BAD) | U_TO(U_N1, U_OK) | U_TO(U_N2, U_N1) | U_TO(U_N3, U_N2) | U_TO(U_E0, (e0)) | \
   U_TO(U_ED, (ed)) | U_TO(U_F0, (f0)) | U_TO(U_F4, (f4)) | U_TO(U_BAD, U_BAD))

/* Rows by byte class (utf8_class below). */
static const uint64_t utf8_rows[12] = {
    U_ELSE_BAD,                       /* 0: 00..7F ASCII */
    U_CONT(U_BAD, U_N1, U_BAD, U_N2), /* 1: 80..8F */
    U_CONT(U_BAD, U_N1, U_N2, U_BAD), /* 2: 90..9F */
    U_CONT(U_N1, U_BAD, U_N2, U_BAD), /* 3: A0..BF */
    U_TO(U_OK, U_BAD) | U_ELSE_BAD,   /* 4: C0, C1, F5..FF: never in UTF-8 */
    U_TO(U_OK, U_N1) | U_ELSE_BAD,    /* 5: C2..DF, 2-byte lead */
    U_TO(U_OK, U_E0) | U_ELSE_BAD,    /* 6: E0 */
    U_TO(U_OK, U_N2) | U_ELSE_BAD,    /* 7: E1..EC, EE, EF, 3-byte lead */
    U_TO(U_OK, U_ED) | U_ELSE_BAD,    /* 8: ED */
    U_TO(U_OK, U_F0) | U_ELSE_BAD,    /* 9: F0 */
    U_TO(U_OK, U_N3) | U_ELSE_BAD,    /* 10: F1..F3, 4-byte lead */
    U_TO(U_OK, U_F4) | U_ELSE_BAD,    /* 11: F4 */
};

static const unsigned char utf8_class[256] = {
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 00 */
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 10 */
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 20 */
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 30 */
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 40 */
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 50 */
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 60 */
    0, 0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 70 */
    1, 1,  1,  1,  1,  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 80 */
    2, 2,  2,  2,  2,  2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 90 */
    3, 3,  3,  3,  3,  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* A0 */
    3, 3,  3,  3,  3,  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* B0 */
    4, 4,  5,  5,  5,  5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* C0 */
    5, 5,  5,  5,  5,  5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* D0 */
    6, 7,  7,  7,  7,  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 7, /* E0 */
    9, 10, 10, 10, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* F0 */
};

/* True when s[0..n-1] is well-formed UTF-8 (Unicode Table 3-7: no overlong forms, no
 * surrogates, nothing above U+10FFFF), the rule strict decoders such as Python's apply to the
 * str family. Between characters, ASCII runs are skipped 64 and then 8 bytes at a time; other
 * bytes go through the automaton 16 at a time, so a rejection is noticed within 16 bytes. */
static int utf8_valid(const unsigned char *s, size_t n) {
  const unsigned char *end = s + n;
  uint64_t st = U_OK;

  while (s < end) {
    const unsigned char *stop;
    if (st == U_OK) {
      while ((size_t)(end - s) >= 64 &&
             !((load64(s) | load64(s + 8) | load64(s + 16) | load64(s + 24) | load64(s + 32) |
                load64(s + 40) | load64(s + 48) | load64(s + 56)) &
               HIGH_BITS))
        s += 64;
      while ((size_t)(end - s) >= 8 && !(load64(s) & HIGH_BITS))
        s += 8;
      while (s < end && *s < 0x80) /* short strings, and the ASCII before a multibyte character */
        s++;
      if (s == end)
        break;
    }
    stop = (size_t)(end - s) > 16 ? s + 16 : end;
    while (s < stop)
      st = (utf8_rows[utf8_class[*s++]] >> st) & 63;
    if (st == U_BAD)
      return 0;
  }
  return st == U_OK;
}

/* True for a string of at most 32 bytes, all ASCII, as most keys and names are. Branch-free
 * and inlined where strings are encoded, so that those skip the call to utf8_valid. */
static inline int short_ascii(const unsigned char *s, size_t n) {
  unsigned acc = 0;
  size_t i;
  if (n > 32)
    return 0;
  for (i = 0; i < n; i++)
    acc |= s[i];
  return acc < 0x80;
}


/* ---- encoder state --------------------------------------------------------------------------- */

/* One slot of the table-identity index: open addressing, linear probing, keyed by the table's
 * address (lua_topointer). Slots written by an earlier encoding (another epoch) count as empty,
 * so starting an encoding costs nothing however large the index grew. */
typedef struct slot {
  const void *p;  /* the table's address */
  uint32_t id;    /* its number, valid only if id < count and order[id] == p */
  uint32_t epoch; /* the encoding that wrote this slot; 0 never matches */
} slot;

struct lxshm__encoder {
  char *buf;                    /* output bytes (malloc); freed by __gc */
  size_t cap;                   /* bytes allocated at buf */
  slot *slots;                  /* identity index (malloc), nslots entries, at most half in use */
  size_t nslots;                /* a power of two, or 0 before the first table */
  size_t used;                  /* slots written in the current epoch */
  uint32_t epoch;               /* current encoding's stamp */
  const void **order;           /* order[id]: address of table number id in the current encoding */
  size_t ordercap;              /* entries allocated at order */
  int busy;                     /* an encoding is using this encoder */
  int closed;                   /* __gc ran: the buffers are gone */
  struct lxshm__encoder *spare; /* for an encoding started while this one is busy (malloc) */
};

/* How the encoder went from a table to the value being encoded inside it: for messages. */
enum { STEP_INDEX, STEP_KEY, STEP_INTO_KEY };
typedef struct step {
  int kind;      /* STEP_INDEX: [index]; STEP_KEY: under the key at stack slot `key`;
                    STEP_INTO_KEY: inside the table used as the key at slot `key` */
  int key;       /* absolute stack index of the key (STEP_KEY, STEP_INTO_KEY) */
  int64_t index; /* array index (STEP_INDEX) */
} step;

/* One encoding call. The output lives in enc->buf; buf/cap are cached copies of its fields. */
typedef struct enc_state {
  lua_State *L;
  lxshm__encoder *e;
  unsigned char *buf;
  size_t len, cap, limit;
  uint32_t count;      /* tables numbered so far */
  lxshm_status status; /* why, after ENC_REFUSED */
  lxshm_error *err;
  step path[LXSHM__MAX_DEPTH + 2]; /* path[d]: the step out of the table at depth d */
} enc_state;


/* ---- encoder: output buffer ------------------------------------------------------------------ */

/* Records a refusal whose message lxshm__fail has just written: refused(s, lxshm__fail(...)). */
static enc_result refused(enc_state *s, lxshm_status st) {
  s->status = st;
  return ENC_REFUSED;
}

static enc_result too_large(enc_state *s) {
  return refused(s, lxshm__fail(s->err, LXSHM_INVALID_SIZE,
                                "encoded value exceeds the limit of %zu bytes", s->limit));
}

static enc_result grow(enc_state *s, size_t n) {
  size_t need = s->len + n; /* cannot overflow: n <= limit - len */
  size_t cap = s->cap < 256 ? 256 : s->cap;
  char *b;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  b = (char *)realloc(s->e->buf, cap);
  if (b == NULL)
    return ENC_NOMEM;
  s->e->buf = b;
  s->e->cap = cap;
  s->buf = (unsigned char *)b;
  s->cap = cap;
  return ENC_OK;
}

/* Makes room for exactly n more bytes. Fails with INVALID_SIZE when they would pass the limit,
 * so an encoding stops as soon as it is too large. */
static inline enc_result room(enc_state *s, size_t n) {
  if (n > s->limit - s->len)
    return too_large(s);
  if (n > s->cap - s->len)
    return grow(s, n);
  return ENC_OK;
}

#define ROOM(s, n)                  \
  do {                              \
    enc_result r_ = room((s), (n)); \
    if (r_ != ENC_OK)               \
      return r_;                    \
  } while (0)

/* Writes the type byte t, then v in `width` big-endian bytes (none for a fix form). */
static inline enc_result put_head(enc_state *s, unsigned t, uint64_t v, unsigned width) {
  unsigned char *p;
  ROOM(s, 1 + width);
  p = s->buf + s->len;
  p[0] = (unsigned char)t;
  wr_be(p + 1, v, width);
  s->len += 1 + width;
  return ENC_OK;
}


/* ---- encoder: table identity ----------------------------------------------------------------- */

static inline size_t hash_ptr(const void *p) {
  return (size_t)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15u) >> 32);
}

/* The slot holding p in the current epoch, or the empty slot where it would go. */
static slot *ident_slot(const lxshm__encoder *e, const void *p) {
  size_t mask = e->nslots - 1, i = hash_ptr(p) & mask;
  for (;;) {
    slot *sl = &e->slots[i];
    if (sl->epoch != e->epoch || sl->p == p)
      return sl;
    i = (i + 1) & mask;
  }
}

static inline int ident_valid(const enc_state *s, const slot *sl, const void *p) {
  return sl->epoch == s->e->epoch && sl->p == p && sl->id < s->count && s->e->order[sl->id] == p;
}

/* Rebuilds the index with twice the slots, keeping only this epoch's valid entries. */
static enc_result ident_grow(enc_state *s) {
  lxshm__encoder *e = s->e;
  size_t n = e->nslots ? e->nslots * 2 : 64, i;
  slot *old = e->slots, *fresh = (slot *)calloc(n, sizeof *fresh);
  size_t oldn = e->nslots;
  if (fresh == NULL)
    return ENC_NOMEM;
  e->slots = fresh;
  e->nslots = n;
  e->used = 0;
  for (i = 0; i < oldn; i++) {
    if (ident_valid(s, &old[i], old[i].p)) {
      slot *sl = ident_slot(e, old[i].p);
      *sl = old[i];
      e->used++;
    }
  }
  free(old);
  return ENC_OK;
}

/* Looks table p up. If it was numbered before, sets *id and *seen = 1. Otherwise numbers it
 * (the next number) and sets *seen = 0. Fails with ENC_NOMEM, or ENC_REFUSED (too many tables). */
static enc_result ident_lookup_add(enc_state *s, const void *p, uint32_t *id, int *seen) {
  lxshm__encoder *e = s->e;
  slot *sl;
  if (e->nslots == 0 && ident_grow(s) != ENC_OK)
    return ENC_NOMEM;
  sl = ident_slot(e, p);
  *seen = ident_valid(s, sl, p);
  if (*seen) {
    *id = sl->id;
    return ENC_OK;
  }
  if (s->count == COUNT_MAX)
    return refused(s, lxshm__fail(s->err, LXSHM_UNSUPPORTED, "more than %u tables", COUNT_MAX));
  if (s->count == e->ordercap) {
    size_t n = e->ordercap ? e->ordercap * 2 : 64;
    const void **o = (const void **)realloc((void *)e->order, n * sizeof *o);
    if (o == NULL)
      return ENC_NOMEM;
    e->order = o;
    e->ordercap = n;
  }
  if (sl->epoch != e->epoch) { /* a fresh slot, not a stale one of p from a rolled-back pass */
    sl->epoch = e->epoch;
    sl->p = p;
    e->used++;
  }
  sl->id = s->count;
  e->order[s->count++] = p;
  if (e->used * 2 > e->nslots && ident_grow(s) != ENC_OK)
    return ENC_NOMEM;
  return ENC_OK;
}


/* ---- encoder: path messages ------------------------------------------------------------------ */

/* A bounded string builder: appends silently stop at the capacity. */
typedef struct text {
  char *p;
  size_t len, cap; /* cap includes the final zero */
} text;

static void text_add(text *t, const char *s, size_t n) {
  if (n > t->cap - 1 - t->len)
    n = t->cap - 1 - t->len;
  memcpy(t->p + t->len, s, n);
  t->len += n;
  t->p[t->len] = '\0';
}

static void text_str(text *t, const char *s) {
  text_add(t, s, strlen(s));
}

static int is_identifier(const char *s, size_t n) {
  static const char *const reserved[] = {"and",   "break", "do",       "else",  "elseif", "end",
                                         "false", "for",   "function", "goto",  "if",     "in",
                                         "local", "nil",   "not",      "or",    "repeat", "return",
                                         "then",  "true",  "until",    "while", NULL};
  size_t i;
  if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
    return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
      return 0;
  }
  for (i = 0; reserved[i] != NULL; i++)
    if (strlen(reserved[i]) == n && memcmp(reserved[i], s, n) == 0)
      return 0;
  return 1;
}

#define KEY_SHOWN 32 /* bytes of a string key shown in a message before "..." (at most) */

/* Appends the path step for the key at stack index k: .name, [3], ["a b"], [1.5], [true],
 * [table]. Reads the key raw: never converts it in place (it drives a lua_next loop). */
static void text_key(text *t, lua_State *L, int k) {
  char tmp[64];
  switch (lua_type(L, k)) {
    case LUA_TSTRING: {
      size_t n, i, start;
      const char *s = lua_tolstring(L, k, &n);
      int utf8 = utf8_valid((const unsigned char *)s, n);
      if (n <= KEY_SHOWN && is_identifier(s, n)) {
        text_add(t, ".", 1);
        text_add(t, s, n);
        return;
      }
      text_add(t, "[\"", 2);
      start = t->len;
      for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        /* cut at a character boundary after KEY_SHOWN bytes or about as many shown characters,
         * so that one step never fills a message */
        if ((!utf8 || (c & 0xc0) != 0x80) && (i >= KEY_SHOWN || t->len - start >= KEY_SHOWN + 16))
          break;
        if (c == '"' || c == '\\')
          snprintf(tmp, sizeof tmp, "\\%c", c);
        else if (c == '\n' || c == '\t' || c == '\r')
          snprintf(tmp, sizeof tmp, "\\%c", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
        else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8))
          snprintf(tmp, sizeof tmp, "\\x%02X", c);
        else
          tmp[0] = (char)c, tmp[1] = '\0';
        text_str(t, tmp);
      }
      text_str(t, i < n ? "...\"]" : "\"]");
      return;
    }
    case LUA_TNUMBER: {
      int64_t i;
      if (int_value(L, k, &i))
        snprintf(tmp, sizeof tmp, "[%lld]", (long long)i);
      else {
        double d = (double)lua_tonumber(L, k);
        int n = snprintf(tmp, sizeof tmp, "[%.14g", d);
        /* like tostring: a float that prints as an integer gets ".0" */
        if (n > 0 && (size_t)n < sizeof tmp - 3 && strspn(tmp + 1, "-0123456789") == (size_t)n - 1)
          strcat(tmp, ".0");
        strcat(tmp, "]");
      }
      text_str(t, tmp);
      return;
    }
    case LUA_TBOOLEAN:
      text_str(t, lua_toboolean(L, k) ? "[true]" : "[false]");
      return;
    case LUA_TTABLE:
      text_str(t, "[table]");
      return;
    default: /* a key that cannot be stored; the message names it by its own "key at" */
      snprintf(tmp, sizeof tmp, "[%s]", luaL_typename(L, k));
      text_str(t, tmp);
      return;
  }
}

#define PATH_SHOWN 120 /* longest path in a message; longer ones keep their two ends */

/* Writes the path of steps 1..n into out (at least PATH_SHOWN + 4 bytes). A long path keeps
 * its first and last whole steps around "...". An empty path writes "". */
static void render_path(const enc_state *s, int n, char *out) {
  char full[(LXSHM__MAX_DEPTH + 2) * (KEY_SHOWN * 4 + 16)];
  size_t starts[LXSHM__MAX_DEPTH + 3]; /* starts[d - 1]: offset of step d; starts[n]: end */
  text t = {full, 0, sizeof full};
  size_t head = 0, tail;
  int d;
  full[0] = '\0';
  for (d = 1; d <= n; d++) {
    const step *st = &s->path[d];
    starts[d - 1] = t.len;
    if (st->kind == STEP_INDEX) {
      char tmp[32];
      snprintf(tmp, sizeof tmp, "[%lld]", (long long)st->index);
      text_str(&t, tmp);
    }
    else if (st->kind == STEP_KEY)
      text_key(&t, s->L, st->key);
    else
      text_str(&t, "<key>");
  }
  starts[n] = t.len;
  if (t.len <= PATH_SHOWN) {
    memcpy(out, full, t.len + 1);
    return;
  }
  for (d = 1; d <= n && starts[d] <= PATH_SHOWN / 2; d++)
    head = starts[d];
  for (d = n - 1, tail = t.len; d > 0 && t.len - starts[d] <= PATH_SHOWN / 2; d--)
    tail = starts[d];
  memcpy(out, full, head);
  memcpy(out + head, "...", 3);
  memcpy(out + head + 3, full + tail, t.len - tail + 1);
}

/* Fails with UNSUPPORTED for a value that cannot be stored: "value at .a.b is a function",
 * "key at .a is a function", or without " at ..." at the top. plen is the value's path length;
 * a key's own path is its table's, one step shorter. */
static enc_result refuse(enc_state *s, int plen, int iskey, const char *what) {
  char path[PATH_SHOWN + 8];
  render_path(s, iskey ? plen - 1 : plen, path);
  return refused(s, lxshm__fail(s->err, LXSHM_UNSUPPORTED, "%s%s%s is %s", iskey ? "key" : "value",
                                path[0] ? " at " : "", path, what));
}

static enc_result refuse_type(enc_state *s, int idx, int plen, int iskey) {
  const char *what;
  switch (lua_type(s->L, idx)) {
    case LUA_TFUNCTION:
      what = "a function";
      break;
    case LUA_TTHREAD:
      what = "a thread";
      break;
    case LUA_TLIGHTUSERDATA:
      what = "a light userdata";
      break;
    default: /* LuaJIT's cdata have a type of their own, not in its lua.h */
      what = strcmp(luaL_typename(s->L, idx), "cdata") == 0 ? "a cdata" : "a userdata";
      break;
  }
  return refuse(s, plen, iskey, what);
}


/* ---- encoder: values ------------------------------------------------------------------------- */

static enc_result enc_value(enc_state *s, int idx, int plen, int iskey);

static enc_result enc_int(enc_state *s, int64_t i) {
  uint64_t u = (uint64_t)i; /* two's complement: its low bytes are the narrower forms' */
  if (i >= 0) {
    if (i < 0x80)
      return put_head(s, (unsigned)i, 0, 0); /* positive fixint */
    if (i <= 0xff)
      return put_head(s, 0xcc, u, 1);
    if (i <= 0xffff)
      return put_head(s, 0xcd, u, 2);
    if (i <= 0xffffffff)
      return put_head(s, 0xce, u, 4);
    return put_head(s, 0xcf, u, 8);
  }
  if (i >= -32)
    return put_head(s, (unsigned)(u & 0xff), 0, 0); /* negative fixint 0xe0..0xff */
  if (i >= INT8_MIN)
    return put_head(s, 0xd0, u, 1);
  if (i >= INT16_MIN)
    return put_head(s, 0xd1, u, 2);
  if (i >= INT32_MIN)
    return put_head(s, 0xd2, u, 4);
  return put_head(s, 0xd3, u, 8);
}

/* float32 when the double survives the round trip through float exactly (incl. -0.0 and the
 * infinities), else float64, which also keeps every NaN's bits. */
static enc_result enc_float(enc_state *s, double d) {
  if ((d >= -FLT_MAX && d <= FLT_MAX) || isinf(d)) { /* (float)d is defined: no overflow */
    float f = (float)d;
    if ((double)f == d) {
      uint32_t b;
      memcpy(&b, &f, 4);
      return put_head(s, 0xca, b, 4);
    }
  }
  {
    uint64_t b;
    memcpy(&b, &d, 8);
    return put_head(s, 0xcb, b, 8);
  }
}

size_t lxshm__string_header(const char *str, size_t n, unsigned char *p) {
  int utf8 =
      short_ascii((const unsigned char *)str, n) || utf8_valid((const unsigned char *)str, n);
  if (utf8 && n < 32) {
    p[0] = (unsigned char)(0xa0 | n);
    return 1;
  }
  if (n <= 0xff) {
    p[0] = utf8 ? 0xd9 : 0xc4, p[1] = (unsigned char)n;
    return 2;
  }
  if (n <= 0xffff) {
    p[0] = utf8 ? 0xda : 0xc5, be16(p + 1, (uint32_t)n);
    return 3;
  }
  p[0] = utf8 ? 0xdb : 0xc6, be32(p + 1, (uint32_t)n);
  return 5;
}

size_t lxshm__string_span(const char *p, size_t n) {
  const unsigned char *u = (const unsigned char *)p;
  size_t h, body;
  if (n == 0)
    return 0;
  if ((u[0] & 0xe0) == 0xa0)
    h = 1, body = u[0] & 0x1f;
  else if ((u[0] == 0xd9 || u[0] == 0xc4) && n >= 2)
    h = 2, body = u[1];
  else if ((u[0] == 0xda || u[0] == 0xc5) && n >= 3)
    h = 3, body = rd16(u + 1);
  else if ((u[0] == 0xdb || u[0] == 0xc6) && n >= 5)
    h = 5, body = rd32(u + 1);
  else
    return 0;
  return n - h == body ? h : 0;
}

/* Valid UTF-8 goes to the str family, other bytes to bin; both hold the bytes unchanged. */
static enc_result enc_string(enc_state *s, int idx, int plen, int iskey) {
  unsigned char head[LXSHM__STRING_HEADER_MAX];
  size_t n, h;
  const char *str = lua_tolstring(s->L, idx, &n);
  if (n > COUNT_MAX)
    return refuse(s, plen, iskey, "a string longer than 4294967295 bytes");
  h = lxshm__string_header(str, n, head);
  ROOM(s, h + n); /* exactly: a value that just fits the limit is not refused */
  memcpy(s->buf + s->len, head, h);
  memcpy(s->buf + s->len + h, str, n);
  s->len += h + n;
  return ENC_OK;
}

/* A table met before: fixext 1, 2 or 4 holding its number, after the ext type. */
static enc_result enc_ref(enc_state *s, uint32_t id) {
  if (id <= 0xff)
    return put_head(s, 0xd4, (uint64_t)EXT_REF << 8 | id, 2);
  if (id <= 0xffff)
    return put_head(s, 0xd5, (uint64_t)EXT_REF << 16 | id, 3);
  return put_head(s, 0xd6, (uint64_t)EXT_REF << 32 | id, 5);
}

static enc_result enc_array_header(enc_state *s, size_t n) {
  if (n <= 15)
    return put_head(s, 0x90 | (unsigned)n, 0, 0); /* fixarray */
  if (n <= 0xffff)
    return put_head(s, 0xdc, n, 2);
  return put_head(s, 0xdd, n, 4);
}

/* The optimistic pass for a table whose border is n >= 1: writes an array of n elements while
 * lua_next yields exactly the keys 1, 2, ..., n in this order (the array part of a sequence).
 * Returns ENC_NOTSEQ at the first other key; the caller then rewinds the output and the table
 * numbering to where this pass started. */
static enc_result enc_array_fast(enc_state *s, int idx, size_t n, int depth) {
  lua_State *L = s->L;
  step *st = &s->path[depth];
  size_t i = 0;
  int64_t k;
  enc_result r = enc_array_header(s, (size_t)n);
  if (r != ENC_OK)
    return r;
  st->kind = STEP_INDEX;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (!int_value(L, -2, &k) || k != (int64_t)i + 1 || i == n) {
      lua_pop(L, 2);
      return ENC_NOTSEQ;
    }
    st->index = (int64_t)++i;
    r = enc_value(s, lua_gettop(L), depth, 0);
    lua_pop(L, 1);
    if (r != ENC_OK) {
      lua_pop(L, 1);
      return r;
    }
  }
  return i == n ? ENC_OK : ENC_NOTSEQ;
}

/* True when the keys of the table at idx are exactly 1..n, in any traversal order. */
static int is_sequence(lua_State *L, int idx, size_t n) {
  size_t count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int64_t k;
    lua_pop(L, 1);
    if (!int_value(L, -1, &k) || k < 1 || (uint64_t)k > n || ++count > n) {
      lua_pop(L, 1);
      return 0;
    }
  }
  return count == n;
}

/* A sequence whose traversal order is not 1..n (elements in the hash part): by index. */
static enc_result enc_array_indexed(enc_state *s, int idx, size_t n, int depth) {
  lua_State *L = s->L;
  step *st = &s->path[depth];
  size_t i;
  enc_result r = enc_array_header(s, (size_t)n);
  if (r != ENC_OK)
    return r;
  st->kind = STEP_INDEX;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i);
    st->index = (int64_t)i;
    r = enc_value(s, lua_gettop(L), depth, 0);
    lua_pop(L, 1);
    if (r != ENC_OK)
      return r;
  }
  return ENC_OK;
}

/* Any other table: a map. The pair count is known only at the end, so a fixmap header byte is
 * written first and widened (the body moved up 2 or 4 bytes) when the count passes 15. */
static enc_result enc_map(enc_state *s, int idx, int depth) {
  lua_State *L = s->L;
  step *st = &s->path[depth];
  size_t hdr = s->len, count = 0, body;
  unsigned w;
  enc_result r = put_head(s, 0x80, 0, 0); /* a fixmap's, until the count is known */
  if (r != ENC_OK)
    return r;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int top = lua_gettop(L);
    st->kind = STEP_INTO_KEY;
    st->key = top - 1;
    r = enc_value(s, top - 1, depth, 1);
    if (r == ENC_OK) {
      st->kind = STEP_KEY;
      r = enc_value(s, top, depth, 0);
    }
    lua_pop(L, 1);
    if (r != ENC_OK) {
      lua_pop(L, 1);
      return r;
    }
    count++;
  }
  if (count <= 15) {
    s->buf[hdr] = (unsigned char)(0x80 | count);
    return ENC_OK;
  }
  if (count > COUNT_MAX)
    return refused(
        s, lxshm__fail(s->err, LXSHM_UNSUPPORTED, "a table with more than %u keys", COUNT_MAX));
  body = s->len - hdr - 1;
  w = count <= 0xffff ? 2 : 4; /* map16 or map32: the count's bytes go before the body */
  ROOM(s, w);
  memmove(s->buf + hdr + 1 + w, s->buf + hdr + 1, body);
  s->buf[hdr] = w == 2 ? 0xde : 0xdf;
  wr_be(s->buf + hdr + 1, count, w);
  s->len += w;
  return ENC_OK;
}

/* A table at path length plen (its depth is plen + 1). A table met before becomes a
 * back-reference; a new one is numbered, then written as an array if its keys are exactly 1..n
 * (n >= 1), else as a map. */
static enc_result enc_table(enc_state *s, int idx, int plen) {
  lua_State *L = s->L;
  const void *p = lua_topointer(L, idx);
  int depth = plen + 1, seen;
  enc_result r;
  uint32_t id = 0;
  size_t n;

  r = ident_lookup_add(s, p, &id, &seen);
  if (r != ENC_OK)
    return r;
  if (seen)
    return enc_ref(s, id);
  if (depth > LXSHM__MAX_DEPTH) {
    char path[PATH_SHOWN + 8];
    render_path(s, plen, path);
    return refused(s, lxshm__fail(s->err, LXSHM_UNSUPPORTED,
                                  "value%s%s exceeds the nesting limit of %d tables",
                                  path[0] ? " at " : "", path, LXSHM__MAX_DEPTH));
  }
  if (!lua_checkstack(L, 4)) /* key, value, a spare; fails only out of memory or Lua stack */
    return ENC_NOSTACK;
  n = (size_t)lua_rawlen(L, idx);
  if (n > 0) {
    size_t mark = s->len;
    uint32_t idmark = s->count;
    if (n > COUNT_MAX)
      return refused(s, lxshm__fail(s->err, LXSHM_UNSUPPORTED, "a table with more than %u elements",
                                    COUNT_MAX));
    r = enc_array_fast(s, idx, n, depth);
    if (r != ENC_NOTSEQ)
      return r;
    s->len = mark;
    s->count = idmark; /* tables first met in the abandoned pass are new again */
    if (is_sequence(L, idx, n))
      return enc_array_indexed(s, idx, n, depth);
  }
  return enc_map(s, idx, depth);
}

/* A number: an integer or a float as the section "numbers on every runtime" says. */
static enc_result enc_number(enc_state *s, int idx) {
  int64_t i;
#if LXSHM_HAS_INTEGERS
  if (int_value(s->L, idx, &i))
    return enc_int(s, i);
  return enc_float(s, (double)lua_tonumber(s->L, idx));
#else
  double d = (double)lua_tonumber(s->L, idx); /* read once: no second call for a float */
  if (double_is_int(d, &i))
    return enc_int(s, i);
  return enc_float(s, d);
#endif
}

/* Encodes the value at absolute stack index idx, whose path has plen steps (a key's path is
 * its table's plus a STEP_INTO_KEY step, for messages about its contents). */
static enc_result enc_value(enc_state *s, int idx, int plen, int iskey) {
  lua_State *L = s->L;
  switch (lua_type(L, idx)) {
    case LUA_TNONE: /* an absent argument encodes as nil */
    case LUA_TNIL:
      return put_head(s, 0xc0, 0, 0);
    case LUA_TBOOLEAN:
      return put_head(s, lua_toboolean(L, idx) ? 0xc3 : 0xc2, 0, 0);
    case LUA_TNUMBER:
      return enc_number(s, idx);
    case LUA_TSTRING:
      return enc_string(s, idx, plen, iskey);
    case LUA_TTABLE:
      return enc_table(s, idx, plen);
    default:
      return refuse_type(s, idx, plen, iskey);
  }
}

static lxshm__encoder *encoder_alloc(void) {
  return (lxshm__encoder *)calloc(1, sizeof(lxshm__encoder));
}

/* Frees what the encoder owns (not the struct itself) and marks it closed. */
static void encoder_release(lxshm__encoder *e) {
  free(e->buf);
  free(e->slots);
  free((void *)e->order);
  if (e->spare != NULL) {
    encoder_release(e->spare);
    free(e->spare);
  }
  memset(e, 0, sizeof *e);
  e->closed = 1;
}

lxshm_status lxshm__encode(lua_State *L, lxshm__encoder *enc, int idx, size_t limit,
                           const char **out, size_t *len, lxshm_error *err) {
  lxshm__encoder *e = enc;
  enc_state s;
  int top = lua_gettop(L);
  enc_result r;

  if (enc->closed)
    return lxshm__fail(err, LXSHM_UNSUPPORTED, "the encoder was finalized (Lua state closing)");
  idx = lua_absindex(L, idx);
  while (e->busy) { /* re-entered (a finalizer): take a private encoder, owned by this one */
    if (e->spare == NULL && (e->spare = encoder_alloc()) == NULL)
      return (lxshm_status)luaL_error(L, "not enough memory");
    e = e->spare;
  }
  if (++e->epoch == 0) { /* wrapped: old stamps could match again, so forget them */
    if (e->slots != NULL)
      memset(e->slots, 0, e->nslots * sizeof *e->slots);
    e->epoch = 1;
  }
  e->used = 0;
  e->busy = 1;
  s.L = L;
  s.e = e;
  s.buf = (unsigned char *)e->buf;
  s.cap = e->cap;
  s.len = 0;
  s.limit = limit;
  s.count = 0;
  s.status = LXSHM_OK;
  s.err = err;
  r = enc_value(&s, idx, 0, 0);
  lua_settop(L, top);
  e->busy = 0;
  switch (r) {
    case ENC_OK:
      *out = e->buf;
      *len = s.len;
      return LXSHM_OK;
    case ENC_REFUSED:
      return s.status;
    case ENC_NOSTACK:
      return (lxshm_status)luaL_error(L, "stack overflow (lxshm encode)");
    default: /* ENC_NOMEM; ENC_NOTSEQ never gets this far */
      return (lxshm_status)luaL_error(L, "not enough memory");
  }
}


lxshm__encoder *lxshm__encoder_hold(lxshm__encoder *enc, const char *out) {
  lxshm__encoder *e = enc;
  while (e != NULL && e->buf != out) /* the encoder holding out: enc, or a spare if re-entered */
    e = e->spare;
  if (e == NULL || e->busy) /* not an encoder's output, or its encoder is still at work */
    return NULL;
  e->busy = 1;
  return e;
}

void lxshm__encoder_release(lxshm__encoder *held) {
  if (held != NULL)
    held->busy = 0;
}

void lxshm__push_encoded(lua_State *L, lxshm__encoder *enc, const char *out, size_t len) {
  lxshm__encoder *held = lxshm__encoder_hold(enc, out);
  lua_pushlstring(L, out, len);
  lxshm__encoder_release(held);
}


/* ---- decoder --------------------------------------------------------------------------------- */

typedef struct dec_state {
  lua_State *L;
  const unsigned char *p;
  size_t n, pos;   /* input size and read position */
  int refs;        /* stack slot of the list of tables, nil until a second table */
  int keep;        /* tables must be listed: the input may hold back-references */
  int root;        /* stack slot of table number 0 (always the top value) */
  size_t ntables;  /* tables started so far */
  size_t reserved; /* slots presized by open tables and not filled yet */
  lxshm_error *err;
} dec_state;

static lxshm_status corrupt_short(dec_state *s, size_t at, const char *what, size_t need) {
  return lxshm__fail(s->err, LXSHM_CORRUPT,
                     "truncated: %s at offset %zu needs %zu more bytes, %zu left", what, at, need,
                     s->n - s->pos);
}

/* Length fields and fixed payloads: checked against the bytes left before any use. */
#define NEED(s, k, at, what)                                \
  do {                                                      \
    if ((k) > (s)->n - (s)->pos)                            \
      return corrupt_short((s), (at), (what), (size_t)(k)); \
  } while (0)

static lxshm_status dec_value(dec_state *s, int depth);

/* Gives the new table at the stack top its number, so that later back-references find it. */
static void dec_number_table(dec_state *s) {
  lua_State *L = s->L;
  size_t id = s->ntables++;
  if (!s->keep)
    return;
  if (id == 0) {
    s->root = lua_gettop(L);
    return;
  }
  if (id == 1) { /* the list is only needed once there are two tables */
    lua_createtable(L, 8, 0);
    lua_pushvalue(L, s->root);
    lua_rawseti(L, -2, 1);
    lua_replace(L, s->refs);
  }
  lua_pushvalue(L, -1);
  lua_rawseti(L, s->refs, (lua_Integer)id + 1);
}

#define PRESIZE_MAX (1 << 24) /* larger tables grow as their elements arrive */
#define ARRAY 1               /* the fewest input bytes an array's element takes */
#define MAP 2                 /* … and a map's pair */

/* How many of `count` slots (of `unit` input bytes each at least) a new table may presize.
 * All open tables share the bytes left: their unfilled presized slots never add up to more
 * than those bytes could fill, so nested forged counts cannot multiply an allocation. */
static size_t presize(dec_state *s, size_t count, size_t unit) {
  size_t left = s->n - s->pos, free_ = left > s->reserved ? (left - s->reserved) / unit : 0;
  size_t pre = count < free_ ? count : free_;
  if (pre > PRESIZE_MAX)
    pre = PRESIZE_MAX;
  s->reserved += pre * unit;
  return pre;
}

/* The elements of an array into the table on the stack top, whose first `pre` slots were
 * presized. */
static lxshm_status dec_elements(dec_state *s, size_t count, size_t pre, int depth) {
  size_t i;
  for (i = 1; i <= count; i++) {
    lxshm_status st = dec_value(s, depth + 1);
    if (st != LXSHM_OK)
      return st;
    lua_rawseti(s->L, -2, (lua_Integer)i);
    if (i <= pre)
      s->reserved -= ARRAY;
  }
  return LXSHM_OK;
}

/* A map key, pushed: any value a Lua table can have as a key. */
static lxshm_status dec_key(dec_state *s, int depth) {
  size_t at = s->pos;
  lxshm_status st = dec_value(s, depth + 1);
  if (st != LXSHM_OK)
    return st;
  if (lua_isnil(s->L, -1))
    return lxshm__fail(s->err, LXSHM_CORRUPT, "nil map key at offset %zu", at);
  if (lua_type(s->L, -1) == LUA_TNUMBER && !lua_isinteger(s->L, -1) &&
      isnan(lua_tonumber(s->L, -1)))
    return lxshm__fail(s->err, LXSHM_CORRUPT, "NaN map key at offset %zu", at);
  return LXSHM_OK;
}

/* The pairs of a map into the table on the stack top, presized for `pre` of them. */
static lxshm_status dec_pairs(dec_state *s, size_t count, size_t pre, int depth) {
  size_t i;
  for (i = 0; i < count; i++) {
    lxshm_status st = dec_key(s, depth);
    if (st == LXSHM_OK)
      st = dec_value(s, depth + 1);
    if (st != LXSHM_OK)
      return st;
    lua_rawset(s->L, -3); /* a repeated key: the last value wins */
    if (i < pre)
      s->reserved -= MAP;
  }
  return LXSHM_OK;
}

/* An array or a map (`unit`: ARRAY or MAP) of `count` items, its header at offset `at`: checks
 * its depth and that the bytes left can hold the items before it allocates anything, then
 * pushes a new numbered table and fills it. */
static lxshm_status dec_table(dec_state *s, size_t count, size_t unit, size_t at, int depth) {
  size_t pre;
  if (depth >= LXSHM__MAX_DEPTH)
    return lxshm__fail(s->err, LXSHM_CORRUPT,
                       "table at offset %zu is nested deeper than the limit of %d tables", at,
                       LXSHM__MAX_DEPTH);
  if (count > (s->n - s->pos) / unit)
    return lxshm__fail(s->err, LXSHM_CORRUPT, "%s at offset %zu claims %zu %s, only %zu bytes left",
                       unit == ARRAY ? "array" : "map", at, count,
                       unit == ARRAY ? "elements" : "pairs", s->n - s->pos);
  luaL_checkstack(s->L, 4, "lxshm decode"); /* raises only out of memory or Lua stack */
  pre = presize(s, count, unit);
  lua_createtable(s->L, unit == ARRAY ? (int)pre : 0, unit == ARRAY ? 0 : (int)pre);
  dec_number_table(s);
  return unit == ARRAY ? dec_elements(s, count, pre, depth) : dec_pairs(s, count, pre, depth);
}

/* A str or bin of n bytes, its header (named `what`) at offset `at`. */
static lxshm_status dec_string(dec_state *s, size_t n, size_t at, const char *what) {
  const char *b = (const char *)s->p + s->pos;
  NEED(s, n, at, what);
  s->pos += n; /* before the call: nothing need live across it */
  lua_pushlstring(s->L, b, n);
  return LXSHM_OK;
}

/* An ext of len payload bytes, its header at offset `at` (the ext type byte comes first): only
 * back-references. */
static lxshm_status dec_ext(dec_state *s, size_t len, size_t at) {
  int type;
  uint64_t id;
  const unsigned char *q;
  if (len >= s->n - s->pos) /* the type byte and len more: len + 1 could wrap a 32-bit size_t */
    return corrupt_short(s, at, "ext", len + 1);
  q = s->p + s->pos;
  type = q[0] < 0x80 ? q[0] : (int)q[0] - 0x100;
  if (type != EXT_REF)
    return lxshm__fail(s->err, LXSHM_CORRUPT, "unsupported ext type %d%s at offset %zu", type,
                       type == -1 ? " (timestamp)" : "", at);
  switch (len) {
    case 1:
      id = q[1];
      break;
    case 2:
      id = rd16(q + 1);
      break;
    case 4:
      id = rd32(q + 1);
      break;
    case 8:
      id = rd64(q + 1);
      break;
    default:
      return lxshm__fail(s->err, LXSHM_CORRUPT,
                         "back-reference at offset %zu has a %zu-byte payload", at, len);
  }
  if (id >= (uint64_t)s->ntables)
    return lxshm__fail(s->err, LXSHM_CORRUPT,
                       "back-reference at offset %zu to table %llu, which has not started", at,
                       (unsigned long long)id);
  if (!s->keep) /* may_hold_refs missed one: cannot happen, but never read an unset slot */
    return lxshm__fail(s->err, LXSHM_CORRUPT, "back-reference at offset %zu not expected", at);
  s->pos += len + 1;
  if (id == 0)
    lua_pushvalue(s->L, s->root);
  else
    lua_rawgeti(s->L, s->refs, (lua_Integer)id + 1);
  return LXSHM_OK;
}


/* ---- decoder: the type byte ------------------------------------------------------------------ */

/* What a type byte announces. */
enum kind {
  K_NIL,
  K_FALSE,
  K_TRUE,
  K_UNUSED, /* 0xc1, never used */
  K_UINT,   /* the value: a `width`-byte unsigned number */
  K_INT,    /* the value: a `width`-byte two's complement number */
  K_FLOAT,  /* the value: an IEEE 754 single (width 4) or double (width 8) */
  K_FIXEXT, /* the ext type byte, then `width` payload bytes */
  K_STR,    /* str and bin alike (Lua strings are bytes): a `width`-byte length, the bytes */
  K_EXT,    /* a `width`-byte length, the ext type byte, that many payload bytes */
  K_ARRAY,  /* a `width`-byte count, the elements */
  K_MAP     /* a `width`-byte count, the key/value pairs */
};

/* MessagePack's format table (spec.md, "Overview") for the type bytes 0xc0 to 0xdf: the kind,
 * the width of the field after the type byte, and the name messages give it. */
static const struct type_byte {
  unsigned char kind, width;
  const char *name;
} TYPE_BYTES[0x20] = {
    {K_NIL, 0, "nil"},          /* 0xc0 */
    {K_UNUSED, 0, "0xc1"},      /* 0xc1 */
    {K_FALSE, 0, "false"},      /* 0xc2 */
    {K_TRUE, 0, "true"},        /* 0xc3 */
    {K_STR, 1, "bin8"},         /* 0xc4 */
    {K_STR, 2, "bin16"},        /* 0xc5 */
    {K_STR, 4, "bin32"},        /* 0xc6 */
    {K_EXT, 1, "ext8"},         /* 0xc7 */
    {K_EXT, 2, "ext16"},        /* 0xc8 */
    {K_EXT, 4, "ext32"},        /* 0xc9 */
    {K_FLOAT, 4, "float32"},    /* 0xca */
    {K_FLOAT, 8, "float64"},    /* 0xcb */
    {K_UINT, 1, "uint8"},       /* 0xcc */
    {K_UINT, 2, "uint16"},      /* 0xcd */
    {K_UINT, 4, "uint32"},      /* 0xce */
    {K_UINT, 8, "uint64"},      /* 0xcf */
    {K_INT, 1, "int8"},         /* 0xd0 */
    {K_INT, 2, "int16"},        /* 0xd1 */
    {K_INT, 4, "int32"},        /* 0xd2 */
    {K_INT, 8, "int64"},        /* 0xd3 */
    {K_FIXEXT, 1, "fixext1"},   /* 0xd4 */
    {K_FIXEXT, 2, "fixext2"},   /* 0xd5 */
    {K_FIXEXT, 4, "fixext4"},   /* 0xd6 */
    {K_FIXEXT, 8, "fixext8"},   /* 0xd7 */
    {K_FIXEXT, 16, "fixext16"}, /* 0xd8 */
    {K_STR, 1, "str8"},         /* 0xd9 */
    {K_STR, 2, "str16"},        /* 0xda */
    {K_STR, 4, "str32"},        /* 0xdb */
    {K_ARRAY, 2, "array16"},    /* 0xdc */
    {K_ARRAY, 4, "array32"},    /* 0xdd */
    {K_MAP, 2, "map16"},        /* 0xde */
    {K_MAP, 4, "map32"},        /* 0xdf */
};

/* u read from `width` bytes of two's complement, as a signed number: the sign bit extended,
 * then converted without an implementation-defined conversion. */
static inline int64_t to_signed(uint64_t u, unsigned width) {
  if (width < 8 && u >> (8 * width - 1))
    u |= UINT64_MAX << (8 * width);
  return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)~u - 1;
}

/* The big-endian number in the `width` (1, 2, 4 or 8) bytes at q. */
static inline uint64_t rd_be(const unsigned char *q, unsigned width) {
  switch (width) {
    case 1:
      return q[0];
    case 2:
      return rd16(q);
    case 4:
      return rd32(q);
    default:
      return rd64(q);
  }
}

/* A number of kind K_UINT, K_INT or K_FLOAT held in the `width` bytes after its type byte
 * (at `at`, named `name`). */
static inline lxshm_status dec_number(dec_state *s, int kind, unsigned width, const char *name,
                                      size_t at) {
  uint64_t v;
  NEED(s, width, at, name);
  v = rd_be(s->p + s->pos, width);
  s->pos += width;
  switch (kind) {
    case K_UINT:
      if (!push_uint(s->L, v))
        return lxshm__fail(s->err, LXSHM_CORRUPT,
                           "integer %llu at offset %zu is above math.maxinteger",
                           (unsigned long long)v, at);
      return LXSHM_OK;
    case K_INT:
      push_int(s->L, to_signed(v, width));
      return LXSHM_OK;
    default: /* K_FLOAT */
      if (width == 4) {
        uint32_t b = (uint32_t)v;
        float x;
        memcpy(&x, &b, 4);
        lua_pushnumber(s->L, (lua_Number)x);
      }
      else {
        double x;
        memcpy(&x, &v, 8);
        lua_pushnumber(s->L, (lua_Number)x);
      }
      return LXSHM_OK;
  }
}

/* A length-prefixed item of kind K_STR, K_EXT, K_ARRAY or K_MAP, its type byte (named `name`)
 * at `at`: reads the `width`-byte length or count, then hands the payload on. Each payload's
 * decoder compares that length with the bytes left, in its own unit, before it reads or
 * allocates anything. */
static inline lxshm_status dec_prefixed(dec_state *s, int kind, unsigned width, const char *name,
                                        size_t at, int depth) {
  size_t len;
  NEED(s, width, at, name);
  len = (size_t)rd_be(s->p + s->pos, width); /* at most 4 bytes wide: fits a size_t */
  s->pos += width;
  switch (kind) {
    case K_STR:
      return dec_string(s, len, at, name);
    case K_EXT:
      return dec_ext(s, len, at);
    case K_ARRAY:
      return dec_table(s, len, ARRAY, at, depth);
    default: /* K_MAP */
      return dec_table(s, len, MAP, at, depth);
  }
}

/* Decodes one value at s->pos and pushes it; depth counts the tables around it. The fix forms
 * hold their value or count in the type byte; every other type byte is looked up in
 * TYPE_BYTES. */
static lxshm_status dec_value(dec_state *s, int depth) {
  lua_State *L = s->L;
  size_t at = s->pos;
  const struct type_byte *t;
  unsigned c;

  if (s->pos >= s->n)
    return lxshm__fail(s->err, LXSHM_CORRUPT, "truncated: value expected at offset %zu", at);
  c = s->p[s->pos++];
  if (c <= 0x7f) { /* positive fixint */
    push_int(L, (int64_t)c);
    return LXSHM_OK;
  }
  if (c >= 0xe0) { /* negative fixint */
    push_int(L, (int64_t)c - 0x100);
    return LXSHM_OK;
  }
  if (c <= 0x8f)
    return dec_table(s, c & 0x0f, MAP, at, depth); /* fixmap */
  if (c <= 0x9f)
    return dec_table(s, c & 0x0f, ARRAY, at, depth); /* fixarray */
  if (c <= 0xbf)
    return dec_string(s, c & 0x1f, at, "fixstr");
  t = &TYPE_BYTES[c - 0xc0];
  switch (t->kind) {
    case K_NIL:
      lua_pushnil(L);
      return LXSHM_OK;
    case K_FALSE:
    case K_TRUE:
      lua_pushboolean(L, t->kind == K_TRUE);
      return LXSHM_OK;
    case K_UNUSED:
      return lxshm__fail(s->err, LXSHM_CORRUPT, "invalid type byte 0x%02x at offset %zu", c, at);
    case K_UINT:
    case K_INT:
    case K_FLOAT:
      return dec_number(s, t->kind, t->width, t->name, at);
    case K_FIXEXT: /* the payload's length is in the type byte */
      return dec_ext(s, t->width, at);
    default:
      return dec_prefixed(s, t->kind, t->width, t->name, at, depth);
  }
}

#define SCAN_MAX 65536 /* larger inputs skip the scan below: it would cost more than it saves */

/* False only when p[0..n-1] cannot hold a back-reference: no ext type byte EXT_REF sits where
 * an ext header of any size would put it. Then decoding need not list the tables it makes,
 * which is most of the cost of a table. A false "maybe" (bytes inside a string) is harmless. */
static int may_hold_refs(const unsigned char *p, size_t n) {
  const unsigned char *q = p, *end = p + n;
  if (n > SCAN_MAX)
    return 1;
  while ((q = (const unsigned char *)memchr(q, EXT_REF, (size_t)(end - q))) != NULL) {
    size_t i = (size_t)(q - p);
    if ((i >= 1 && p[i - 1] >= 0xd4 && p[i - 1] <= 0xd8) || (i >= 2 && p[i - 2] == 0xc7) ||
        (i >= 3 && p[i - 3] == 0xc8) || (i >= 5 && p[i - 5] == 0xc9))
      return 1;
    q++;
  }
  return 0;
}

lxshm_status lxshm__decode(lua_State *L, const char *p, size_t n, lxshm_error *err) {
  dec_state s;
  int base = lua_gettop(L);
  lxshm_status st;

  luaL_checkstack(L, 8, "lxshm decode");
  lua_pushnil(L); /* slot of the table list */
  s.L = L;
  s.p = (const unsigned char *)p;
  s.n = n;
  s.pos = 0;
  s.refs = base + 1;
  s.root = 0;
  s.keep = may_hold_refs(s.p, n);
  s.ntables = 0;
  s.reserved = 0;
  s.err = err;
  st = dec_value(&s, 0);
  if (st == LXSHM_OK && s.pos != n)
    st = lxshm__fail(err, LXSHM_CORRUPT, "trailing bytes: the value ends at offset %zu of %zu",
                     s.pos, n);
  if (st != LXSHM_OK) {
    lua_settop(L, base);
    return st;
  }
  lua_replace(L, base + 1); /* the value takes the list's slot */
  return LXSHM_OK;
}


/* ---- encoder userdata ------------------------------------------------------------------------ */

#define ENCODER_MT "lxshm.encoder"

static int encoder_gc(lua_State *L) {
  lxshm__encoder *e = (lxshm__encoder *)lua_touserdata(L, 1);
  if (e != NULL && !e->closed)
    encoder_release(e);
  return 0;
}

lxshm__encoder *lxshm__encoder_push(lua_State *L) {
  lxshm__encoder *e = (lxshm__encoder *)lxshm_newuserdata(L, sizeof *e, 0);
  memset(e, 0, sizeof *e);
  if (luaL_newmetatable(L, ENCODER_MT)) {
    lua_pushcfunction(L, encoder_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, ENCODER_MT);
    lua_setfield(L, -2, "__name");
  }
  lua_setmetatable(L, -2);
  return e;
}

/* binding_dict.c — the methods of lxshm.dict: many keys in one object, with versions, expiry and
 * eviction. Argument checks, keys and values to bytes and back, results; the stripes, the
 * allocator and the repair are dict.c's. Nothing here runs Lua code while a stripe is locked,
 * except update's function inside lua_pcall. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "binding.h"

#define dict_of(h) ((lxshm_dict *)(h)->obj)

/* The first size of a pairs() or keys() batch buffer (it grows for a bucket that needs more). */
#define BATCH_BUFFER (32u << 10)
/* update() calls nested this deep (on different dictionaries) in one thread at most. */
#define UPDATE_DEPTH 16

static lxshm__handle *check(lua_State *L) {
  return lxshm__check_handle(L, &lxshm__dict_class);
}

/* A method whose argument 2 is a key (const lxshm__keyarg *A): LXSHM__KEYED_METHOD. */
#define KEYED(FN, A) LXSHM__KEYED_METHOD(FN, lxshm__handle, check, A)

/* ---- update's own dictionaries ------------------------------------------------------------
 * A function running under update holds its key's stripe lock: a change of that dictionary from
 * inside it, through any handle, could wait for that very lock (or deadlock with another process
 * doing the same). So the dictionaries in update on this thread are listed, and their changes
 * raise. */
static _Thread_local uint64_t updating[UPDATE_DEPTH];
static _Thread_local int updating_depth;
/* Updates in progress in any thread of the process: while there are none, a change need not look
 * at its thread's list (a thread-local variable of a module costs a call to reach). */
static _Atomic int updates_anywhere;

static void check_not_updating(lua_State *L, lxshm__handle *h) {
  uint64_t id;
  int i;
  lxshm__check_not_busy(L, h);
  if (atomic_load_explicit(&updates_anywhere, memory_order_relaxed) == 0)
    return;
  id = lxshm__dict_id(dict_of(h));
  for (i = 0; i < updating_depth; i++)
    if (updating[i] == id)
      luaL_error(L, "%s: cannot change a dictionary inside its own update", h->name);
}

/* ---- results ------------------------------------------------------------------------------ */

/* OK: true (1 result); otherwise nil, "NAME: cause", code (3), INVALID included (a value that is
 * not a number); a lock this thread holds already raises, as for other kinds. */
static int result(lua_State *L, lxshm__handle *h, lxshm_status st, const lxshm_error *err) {
  if (st == LXSHM_INVALID && strstr(err->message, "already held") != NULL)
    return lxshm__result(L, h, st, err);
  if (st == LXSHM_OK || st == LXSHM__INTERRUPTED)
    return lxshm__result(L, h, st, err);
  return lxshm__push_failure(L, h->name, st, err);
}

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct reading {
  lxshm_dict *d;
  const lxshm__dict_key *key;
} reading;

/* The key's value, and its version as t->first. */
static lxshm_status read_value(void *ctx, lxshm__take *t, lxshm_error *err) {
  const reading *r = (const reading *)ctx;
  return lxshm__dict_get(r->d, r->key, t->buf, t->cap, &t->len, &t->format, &t->first, err);
}

/* d:get(k) -> v, version | nil (absent or expired) | nil, msg, code */
KEYED(dict_get, a) {
  char small[256];
  lxshm__take t = {0};
  lxshm_status st;
  lxshm_error err;
  reading r;
  lua_settop(L, 2);
  r.d = dict_of(h);
  r.key = &a->k;
  /* Small values, the common case, without the copy buffer (and a string without the decoder:
   * lxshm__push_bytes). Pushing them reads only `small`, so a finalizer may close h meanwhile. */
  t.buf = small;
  t.cap = sizeof small;
  st = read_value(&r, &t, &err);
  if (st == LXSHM_OK)
    st = lxshm__push_bytes(L, small, t.len, t.format, &err);
  else if (st == LXSHM_INVALID_SIZE) {
    lxshm__hold(h); /* the copy may allocate, and a finalizer may close the handle */
    st = lxshm__copy_out(L, t.len, read_value, &r, &t, 0, &err);
    lxshm__drop(h);
  }
  if (st == LXSHM_NOT_FOUND) {
    lua_pushnil(L);
    return 1;
  }
  if (st != LXSHM_OK)
    return result(L, h, st, &err);
  lua_pushinteger(L, (lua_Integer)t.first);
  return 2;
}

/* d:version(k) -> version (0: absent) */
KEYED(dict_version, a) {
  lua_pushinteger(L, (lua_Integer)lxshm__dict_version(dict_of(h), &a->k));
  return 1;
}

/* d:ttl(k) -> seconds left (math.huge: no expiry) | nil, msg, NOT_FOUND */
KEYED(dict_ttl, a) {
  lxshm_error err;
  lxshm_status st;
  double s;
  st = lxshm__dict_ttl(dict_of(h), &a->k, &s, &err);
  if (st != LXSHM_OK)
    return result(L, h, st, &err);
  lua_pushnumber(L, s < 0 ? (lua_Number)HUGE_VAL : (lua_Number)s);
  return 1;
}

/* ---- changing ----------------------------------------------------------------------------- */

/* Encodes the value at arg (nil: *data NULL) for a key of klen bytes. */
static lxshm_status encode_value(lua_State *L, lxshm__handle *h, int arg, size_t klen,
                                 const char **data, size_t *len, lxshm_error *err) {
  if (lua_isnoneornil(L, arg)) {
    *data = NULL;
    *len = 0;
    return LXSHM_OK;
  }
  return lxshm__encode(L, lxshm__encoder_of(L), arg,
                       (size_t)lxshm__dict_max_value(dict_of(h), klen), data, len, err);
}

/* set, safe_set, add, safe_add, replace (flags), cas (LXSHM__DICT_CAS): -> true, evicted (cas:
 * true, new version) | nil, msg, code */
static int store(lua_State *L, unsigned flags) {
  lxshm__keyarg a;
  lxshm__handle *h = check(L);
  int cas = (flags & LXSHM__DICT_CAS) != 0, varg = cas ? 4 : 3;
  uint64_t expected = 0, version = 0, evicted = 0;
  const char *data;
  size_t len;
  lxshm_status st;
  lxshm_error err;
  double ttl;

  if (!lxshm__check_key(L, h->name, 2, &a))
    return 3;
  if (cas)
    expected = lxshm__check_version(L, 3);
  ttl = lxshm__opt_ttl(L, varg + 1);
  check_not_updating(L, h);
  st = encode_value(L, h, varg, a.k.len, &data, &len, &err);
  if (st == LXSHM_OK) /* no Lua call between here and the store: data stays valid */
    st = lxshm__dict_store(dict_of(h), &a.k, flags, expected, data, len, LXSHM__FORMAT_MSGPACK, ttl,
                           &version, &evicted, &err);
  if (st != LXSHM_OK)
    return result(L, h, st, &err);
  lua_pushboolean(L, 1);
  lua_pushinteger(L, (lua_Integer)(cas ? version : evicted));
  return 2;
}

LXSHM__VARIANT(dict_set, store(L, 0))
LXSHM__VARIANT(dict_safe_set, store(L, LXSHM_DICT_SAFE))
LXSHM__VARIANT(dict_add, store(L, LXSHM_DICT_ADD))
LXSHM__VARIANT(dict_safe_add, store(L, LXSHM_DICT_ADD | LXSHM_DICT_SAFE))
LXSHM__VARIANT(dict_replace, store(L, LXSHM_DICT_REPLACE))
LXSHM__VARIANT(dict_cas, store(L, LXSHM__DICT_CAS))

/* d:delete(k) -> true */
KEYED(dict_delete, a) {
  lxshm_error err;
  check_not_updating(L, h);
  return result(L, h, lxshm__dict_delete(dict_of(h), &a->k, &err), &err);
}

/* d:incr(k, step [, init [, init_ttl]]) -> the new number | nil, msg, code */
KEYED(dict_incr, a) {
  lxshm__dict_number step, init, sum;
  lxshm_error err;
  lxshm_status st;
  double ttl;
  int has_init;
  lxshm__check_number(L, 3, &step);
  has_init = !lua_isnoneornil(L, 4);
  if (has_init)
    lxshm__check_number(L, 4, &init);
  ttl = lxshm__opt_ttl(L, 5);
  check_not_updating(L, h);
  st = lxshm__dict_incr(dict_of(h), &a->k, &step, has_init ? &init : NULL, ttl, &sum, &err);
  if (st != LXSHM_OK)
    return result(L, h, st, &err);
  lxshm__push_number(L, &sum);
  return 1;
}

/* d:expire(k, ttl) -> true | nil, msg, NOT_FOUND */
KEYED(dict_expire, a) {
  lxshm_error err;
  double ttl;
  ttl = lxshm__opt_ttl(L, 3);
  check_not_updating(L, h);
  return result(L, h, lxshm__dict_expire(dict_of(h), &a->k, ttl, &err), &err);
}

/* ---- update ------------------------------------------------------------------------------- */

typedef struct updating_ctx {
  lxshm__handle *h;
  lxshm__dict_held held;
  double ttl;
} updating_ctx;

/* The key's current value, copied out under its stripe's lock. */
static lxshm_status read_locked(void *ctx, lxshm__take *t, lxshm_error *err) {
  const updating_ctx *u = (const updating_ctx *)ctx;
  return lxshm__dict_current_locked(dict_of(u->h), &u->held, t->buf, t->cap, &t->len, &t->format,
                                    err);
}

/* The part of update that runs under the stripe lock, inside lua_pcall. Arguments: the handle,
 * fn, the context. Decodes the current value from a private copy, calls fn, encodes and stores
 * its result. Returns as lxshm__locked_result (nothing stored on failure). */
static int update_locked(lua_State *L) {
  updating_ctx *u = (updating_ctx *)lua_touserdata(L, 3);
  lxshm_dict *d = dict_of(u->h);
  lxshm__take t = {0};
  const char *out = NULL;
  size_t len = 0;
  uint64_t version, evicted;
  lxshm_status st;
  lxshm_error err;

  lua_settop(L, 2); /* handle, fn */
  st = lxshm__copy_out(L, 0, read_locked, u, &t, 0, &err);
  if (st == LXSHM_NOT_FOUND) {
    lua_pushnil(L);
    st = LXSHM_OK;
  }
  if (st == LXSHM_OK) {
    lua_call(L, 1, 1); /* fn(current): may raise; lxshm__call_locked's lua_pcall catches it */
    if (!lua_isnil(L, -1))
      st = lxshm__encode(L, lxshm__encoder_of(L), -1,
                         (size_t)lxshm__dict_max_value(d, u->held.key.len), &out, &len, &err);
    if (st == LXSHM_OK) /* nil deletes */
      st = lxshm__dict_store_locked(d, &u->held, out, len, LXSHM__FORMAT_MSGPACK, u->ttl, &version,
                                    &evicted, &err);
  }
  return lxshm__locked_result(L, st, &err);
}

/* Unlocks the key's stripe, and the dictionary is no longer this thread's to update. */
static void unlock_key(void *ctx) {
  updating_ctx *u = (updating_ctx *)ctx;
  lxshm__dict_unlock_key(dict_of(u->h), &u->held);
  atomic_fetch_sub_explicit(&updates_anywhere, 1, memory_order_relaxed);
  updating_depth--;
}

/* d:update(k, fn [, ttl]) -> what fn returned (stored; nil deletes) | nil, msg, code. fn runs
 * with the key's stripe locked; if it raises, nothing changes, the lock is released and the
 * error propagates. */
KEYED(dict_update, a) {
  updating_ctx u;
  lxshm_error err;
  lxshm_status st;
  int nargs;

  luaL_checktype(L, 3, LUA_TFUNCTION);
  u.ttl = lxshm__opt_ttl(L, 4);
  check_not_updating(L, h);
  if (updating_depth == UPDATE_DEPTH)
    return luaL_error(L, "%s: updates nested too deeply", h->name);
  lua_settop(L, 3);
  nargs = lxshm__push_locked_call(L, h, update_locked, 3, &u);
  u.h = h;
  st = lxshm__dict_lock_key(dict_of(h), &a->k, &u.held, &err);
  if (st != LXSHM_OK)
    return result(L, h, st, &err);
  updating[updating_depth++] = lxshm__dict_id(dict_of(h));
  atomic_fetch_add_explicit(&updates_anywhere, 1, memory_order_relaxed);
  return lxshm__call_locked(L, h, nargs, unlock_key, &u);
}

/* ---- waiting ------------------------------------------------------------------------------ */

/* d:wait(k, version [, timeout]) -> new version | nil, msg, TIMEOUT */
KEYED(dict_wait, a) {
  lxshm__interrupt intr;
  uint64_t version, now = 0;
  lxshm_error err;
  lxshm_status st;
  double timeout;
  version = lxshm__check_version(L, 3);
  timeout = lxshm__opt_timeout(L, 4);
  lxshm__interrupt_for(L, &intr);
  lxshm__hold(h); /* a hook run between sleeps may close the handle */
  st = lxshm__dict_wait(dict_of(h), &a->k, version, timeout, &now, &intr, &err);
  lxshm__drop(h);
  if (st != LXSHM_OK)
    return result(L, h, st, &err);
  lua_pushinteger(L, (lua_Integer)now);
  return 1;
}

/* ---- walking ------------------------------------------------------------------------------ */

/* Takes the next batch of records from *cursor into the copy buffer of the handle at stack index
 * `at` (pushed on the stack top). */
static lxshm_status next_batch(lua_State *L, lxshm__handle *h, int at, uint64_t *cursor, int values,
                               size_t *used, uint32_t *count, lxshm_error *err) {
  size_t cap, need = BATCH_BUFFER;
  lxshm_status st;
  for (;;) {
    char *buf = lxshm__scratch_take(L, at, need, &cap);
    st = lxshm__dict_scan(dict_of(h), cursor, values, buf, cap, used, count, err);
    if (st != LXSHM_INVALID_SIZE || *used <= cap)
      return st;
    need = *used; /* one bucket needs more: a bigger buffer */
    lua_pop(L, 1);
  }
}

/* Pushes the key and (values) the value of the record at p; returns the record's size, or 0
 * with err set when the value cannot be decoded. */
static size_t push_record(lua_State *L, const unsigned char *p, int values, lxshm_error *err) {
  uint32_t klen, vlen;
  memcpy(&klen, p, 4);
  memcpy(&vlen, p + 4, 4);
  lxshm__push_key(L, p[8], p + LXSHM__DICT_RECORD, klen);
  if (values && lxshm__push_bytes(L, (const char *)p + LXSHM__DICT_RECORD + klen, vlen, p[9],
                                  err) != LXSHM_OK) {
    lua_pop(L, 1);
    return 0;
  }
  return (LXSHM__DICT_RECORD + klen + vlen + 7) & ~(size_t)7;
}

/* d:keys([max]) -> a list of up to max keys present (default: all) */
static int dict_keys(lua_State *L) {
  lxshm__handle *h = check(L);
  lua_Integer max = luaL_optinteger(L, 2, -1), n = 0;
  uint64_t cursor = 0;
  lxshm_error err;
  lua_settop(L, 1);
  lxshm__hold(h);  /* first: every allocation below may run a finalizer that closes h */
  lua_newtable(L); /* 2 */
  while (cursor != LXSHM__DICT_END && (max < 0 || n < max)) {
    size_t used, off = 0;
    uint32_t count, i;
    const unsigned char *buf;
    lxshm_status st = next_batch(L, h, 1, &cursor, 0, &used, &count, &err);
    if (st != LXSHM_OK) {
      lxshm__drop(h);
      return result(L, h, st, &err);
    }
    buf = (const unsigned char *)lua_touserdata(L, -1);
    for (i = 0; i < count && (max < 0 || n < max); i++) {
      off += push_record(L, buf + off, 0, &err);
      lua_rawseti(L, 2, (int)++n);
    }
    lxshm__scratch_give(L, 1);
  }
  lxshm__drop(h);
  return 1;
}

/* The state of one pairs() loop, a userdata upvalue of its iterator. */
typedef struct walk {
  uint64_t cursor; /* where the next batch starts */
  int pos, n;      /* the batch table holds n pairs; pos of them were returned */
} walk;

/* The iterator: upvalues are the encoder, the handle, the walk and the batch table. */
static int pairs_next(lua_State *L) {
  lxshm__handle *h = (lxshm__handle *)lua_touserdata(L, lua_upvalueindex(2));
  walk *w = (walk *)lua_touserdata(L, lua_upvalueindex(3));
  lxshm_error err;
  lua_settop(L, 0);
  if (h->closed)
    return luaL_error(L, "attempt to use a closed lxshm dict");
  while (w->pos >= w->n) {
    size_t used, off = 0;
    uint32_t count, i;
    const unsigned char *buf;
    lxshm_status st;
    if (w->cursor == LXSHM__DICT_END)
      return 0;
    lua_pushvalue(L, lua_upvalueindex(2)); /* 1: the handle, for its copy buffer */
    lua_pushvalue(L, lua_upvalueindex(4)); /* 2: the batch */
    lxshm__hold(h);
    st = next_batch(L, h, 1, &w->cursor, 1, &used, &count, &err);
    if (st != LXSHM_OK) {
      lxshm__drop(h);
      return luaL_error(L, "%s: %s", h->name, err.message);
    }
    buf = (const unsigned char *)lua_touserdata(L, -1);
    for (i = 0; i < count; i++) {
      size_t rec = push_record(L, buf + off, 1, &err);
      if (rec == 0) {
        lxshm__drop(h);
        return luaL_error(L, "%s: %s", h->name, err.message);
      }
      lua_rawseti(L, 2, (int)(2 * i + 2));
      lua_rawseti(L, 2, (int)(2 * i + 1));
      off += rec;
    }
    lxshm__scratch_give(L, 1);
    lxshm__drop(h);
    w->pos = 0;
    w->n = (int)count;
    lua_settop(L, 0);
  }
  lua_pushvalue(L, lua_upvalueindex(4));
  lua_rawgeti(L, 1, 2 * w->pos + 1);
  lua_rawgeti(L, 1, 2 * w->pos + 2);
  lua_pushnil(L); /* the batch keeps no reference to what was returned */
  lua_rawseti(L, 1, 2 * w->pos + 1);
  lua_pushnil(L);
  lua_rawseti(L, 1, 2 * w->pos + 2);
  w->pos++;
  return 2;
}

/* d:pairs() -> iterator: for k, v in d:pairs() do ... end. Batches of buckets, never the lock
 * for the whole walk: a key present and unchanged throughout is returned exactly once. */
static int dict_pairs(lua_State *L) {
  walk *w;
  check(L);
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  w = (walk *)lxshm_newuserdata(L, sizeof *w, 0);
  memset(w, 0, sizeof *w);
  lua_newtable(L);
  lua_pushcclosure(L, pairs_next, 4);
  return 1;
}

/* ---- the whole dictionary ----------------------------------------------------------------- */

LXSHM__GETTER(dict_count, lxshm_dict_count, dict_of)
LXSHM__GETTER(dict_capacity, lxshm_dict_capacity, dict_of)
LXSHM__GETTER(dict_free_space, lxshm_dict_free_space, dict_of)

/* d:flush_all(), d:check(): op on the whole dictionary -> true | nil, msg, code */
static int whole(lua_State *L, lxshm_status (*op)(lxshm_dict *d, lxshm_error *err)) {
  lxshm__handle *h = check(L);
  lxshm_error err;
  check_not_updating(L, h);
  return result(L, h, op(dict_of(h), &err), &err);
}

/* d:flush_all() -> true */
LXSHM__VARIANT(dict_flush_all, whole(L, lxshm_dict_flush_all))

/* d:flush_expired([max]) -> the number of expired keys reclaimed */
static int dict_flush_expired(lua_State *L) {
  lxshm__handle *h = check(L);
  lua_Integer max = luaL_optinteger(L, 2, 0);
  uint64_t n = 0;
  lxshm_error err;
  lxshm_status st;
  luaL_argcheck(L, max >= 0, 2, "must be >= 0");
  check_not_updating(L, h);
  st = lxshm_dict_flush_expired(dict_of(h), (uint64_t)max, &n, &err);
  if (st != LXSHM_OK)
    return result(L, h, st, &err);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* d:check() -> true | nil, msg, CORRUPT */
LXSHM__VARIANT(dict_check, whole(L, lxshm_dict_check))

static const luaL_Reg methods[] = {LXSHM__DICT_METHODS(LXSHM__METHOD){NULL, NULL}};

const lxshm__class lxshm__dict_class = {
    "lxshm.dict", "_dict", &lxshm__dict_kind, methods, "(%s bytes, %s keys)", "count", NULL};

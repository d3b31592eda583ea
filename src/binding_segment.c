/* binding_segment.c — the methods of lxshm.segment: one current value, shared. Argument checks
 * and results only; the commit protocol and lock-free reads are segment.c's. */
#include <string.h>

#include "binding.h"

#define segment_of(h) ((lxshm_segment *)(h)->obj)

static lxshm__handle *check(lua_State *L) {
  return lxshm__check_handle(L, &lxshm__segment_class);
}

LXSHM__GETTER(seg_size, lxshm_size, segment_of)
LXSHM__GETTER(seg_version, lxshm_version, segment_of)

/* seg:write(s [, timeout]) -> true | nil, msg, code */
static int seg_write(lua_State *L) {
  lxshm__handle *h = check(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  double timeout = lxshm__opt_timeout(L, 3);
  lxshm_error err;
  lxshm_status st;

  lxshm__check_not_busy(L, h);
  st = lxshm__write(segment_of(h), NULL, 0, s, len, LXSHM__FORMAT_RAW, timeout, &err);
  return lxshm__result(L, h, st, &err);
}

/* seg:put(v [, timeout]) -> true | nil, msg, code. Encodes before taking the lock. */
static int seg_put(lua_State *L) {
  lxshm__handle *h = check(L);
  double timeout = lxshm__opt_timeout(L, 3);
  lxshm__encoded v;
  lxshm_error err;
  lxshm_status st;

  luaL_checkany(L, 2);
  lxshm__check_not_busy(L, h);
  st = lxshm__encode_value(L, 2, h->size, &v, &err);
  if (st == LXSHM_OK) /* no Lua call between here and the commit: v.data stays valid */
    st = lxshm__write(segment_of(h), v.head, v.hl, v.data, v.len, LXSHM__FORMAT_MSGPACK, timeout,
                      &err);
  return lxshm__result(L, h, st, &err);
}

/* ---- reading --------------------------------------------------------------------------------- */

typedef struct direct {
  lua_State *L;
  int raw; /* read(): the bytes whatever they hold */
} direct;

/* A large value copied once, from the mapping straight into a new Lua string: the raw bytes, or
 * a put() value that is one large string. Safe because Lua copies a string this long without
 * hashing it (strings above 40 bytes are hashed lazily, once complete), and the core drops the
 * string if a writer overtook the copy. */
static int direct_take(void *ud, const char *data, size_t len, unsigned format) {
  direct *d = (direct *)ud;
  size_t skip = 0;
  if (len <= LXSHM__SMALL_VALUE)
    return 0;
  if (!d->raw && format != LXSHM__FORMAT_RAW) {
    skip = format == LXSHM__FORMAT_MSGPACK ? lxshm__string_span(data, len) : 0;
    if (skip == 0)
      return 0;
  }
  lua_pushlstring(d->L, data + skip, len - skip);
  return 1;
}

static void direct_drop(void *ud) {
  lua_pop(((direct *)ud)->L, 1);
}

/* The current value, and its version as t->first. */
static lxshm_status read_current(void *seg, lxshm__take *t, lxshm_error *err) {
  return lxshm__read((lxshm_segment *)seg, t->buf, t->cap, &t->len, &t->first, &t->format, err);
}

/* Copies the current value and pushes it as a string (raw = 1) or as what it holds: the string
 * for a write(), the decoded value for a put(), nil before the first commit (raw = 0). Returns
 * the number of results. Calls Lua only once the copy is private. h is held. */
static int push_value(lua_State *L, lxshm__handle *h, int raw) {
  direct d = {L, raw};
  lxshm__sink sink = {direct_take, direct_drop, &d};
  lxshm_segment *seg = segment_of(h);
  lxshm__take t = {0};
  lxshm_status st;
  lxshm_error err;

  if (lxshm__used(seg) > LXSHM__SMALL_VALUE && lxshm__read_in_place(seg, &sink))
    return 1;
  st = lxshm__copy_out(L, (size_t)lxshm__used(seg), read_current, seg, &t, raw, &err);
  if (st != LXSHM_OK)
    return lxshm__result(L, h, st, &err);
  if (!raw && t.first == 0) {
    lua_pop(L, 1);
    lua_pushnil(L); /* nothing stored yet */
  }
  return 1;
}

/* seg:read() -> the current value's bytes | nil, msg, code; seg:get() -> the current value:
 * decoded if put() stored it, the string if write() did, nil before the first commit | nil, msg,
 * CORRUPT */
static int read_value(lua_State *L, int raw) {
  lxshm__handle *h = check(L);
  int n;
  lua_settop(L, 1);
  lxshm__hold(h);
  n = push_value(L, h, raw);
  lxshm__drop(h);
  return n;
}

LXSHM__VARIANT(seg_read, read_value(L, 1))
LXSHM__VARIANT(seg_get, read_value(L, 0))

/* ---- update ---------------------------------------------------------------------------------- */

/* The current value, copied out under the lock. */
static lxshm_status read_locked(void *seg, lxshm__take *t, lxshm_error *err) {
  const char *data;
  (void)err;
  lxshm__current_locked((lxshm_segment *)seg, &data, &t->len, &t->format);
  if (t->len > t->cap)
    return LXSHM_INVALID_SIZE;
  memcpy(t->buf, data, t->len);
  return LXSHM_OK;
}

/* The part of update that runs under the lock, inside lua_pcall: decodes the current value,
 * calls fn with it, encodes and commits the result. Arguments: the handle, fn. Returns as
 * lxshm__locked_result (nothing is committed when the current value cannot be decoded or the
 * result cannot be stored). */
static int update_locked(lua_State *L) {
  lxshm__handle *h = (lxshm__handle *)lua_touserdata(L, 1);
  lxshm_segment *seg = segment_of(h);
  lxshm_status st = LXSHM_OK;
  lxshm__take t = {0};
  const char *out;
  size_t len;
  lxshm_error err;

  lua_settop(L, 2); /* handle, fn */
  if (lxshm_version(seg) == 0)
    lua_pushnil(L);
  else /* decode a private copy, as get does */
    st = lxshm__copy_out(L, (size_t)lxshm__used(seg), read_locked, seg, &t, 0, &err);
  if (st == LXSHM_OK) {
    lua_call(L, 1, 1); /* fn(current): may raise; lxshm__call_locked's lua_pcall catches it */
    st = lxshm__encode(L, lxshm__encoder_of(L), -1, (size_t)h->size, &out, &len, &err);
    if (st == LXSHM_OK)
      st = lxshm__commit_locked(seg, NULL, 0, out, len, LXSHM__FORMAT_MSGPACK, &err);
  }
  return lxshm__locked_result(L, st, &err);
}

static void unlock(void *seg) {
  lxshm__unlock((lxshm_segment *)seg);
}

/* seg:update(fn [, timeout]) -> new value | nil, msg, code. fn runs while this process holds the
 * lock; if it raises, nothing is stored, the lock is released and the error propagates. */
static int seg_update(lua_State *L) {
  lxshm__handle *h = check(L);
  double timeout;
  lxshm_error err;
  lxshm_status st;
  int nargs;

  luaL_checktype(L, 2, LUA_TFUNCTION);
  timeout = lxshm__opt_timeout(L, 3);
  lxshm__check_not_busy(L, h);
  lua_settop(L, 2);
  nargs = lxshm__push_locked_call(L, h, update_locked, 2, NULL);
  st = lxshm__lock(segment_of(h), lxshm__deadline(timeout), &err);
  if (st != LXSHM_OK)
    return lxshm__result(L, h, st, &err);
  return lxshm__call_locked(L, h, nargs, unlock, segment_of(h));
}

/* ---- waiting and introspection --------------------------------------------------------------- */

/* seg:wait(version [, timeout]) -> new version | nil, msg, TIMEOUT */
static int seg_wait(lua_State *L) {
  lxshm__handle *h = check(L);
  lua_Integer version = luaL_checkinteger(L, 2);
  double timeout = lxshm__opt_timeout(L, 3);
  lxshm__interrupt intr;
  uint64_t now;
  lxshm_error err;
  lxshm_status st;

  lxshm__interrupt_for(L, &intr);
  lxshm__hold(h); /* a hook run between sleeps may close the handle */
  st = lxshm__wait(segment_of(h), (uint64_t)version, timeout, &now, &intr, &err);
  lxshm__drop(h);
  if (st != LXSHM_OK)
    return lxshm__result(L, h, st, &err);
  lua_pushinteger(L, (lua_Integer)now);
  return 1;
}

static const luaL_Reg methods[] = {LXSHM__SEGMENT_METHODS(LXSHM__METHOD){NULL, NULL}};

const lxshm__class lxshm__segment_class = {
    "lxshm.segment", "", &lxshm__segment_kind, methods, "(%s bytes)", NULL, NULL};

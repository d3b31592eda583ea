/* binding_queue.c — the methods of lxshm.queue: many values, in order, each popped once.
 * Argument checks, encoding and results only; the ring and its records are queue.c's and
 * ring.c's. */
#include <limits.h>
#include <string.h>

#include "binding.h"
#include "ring.h"

#define queue_of(h) ((lxshm_queue *)(h)->obj)

/* The first size of a batch's copy buffer (it grows up to the queue's size when needed). */
#define BATCH_BUFFER (64u << 10)

static lxshm__handle *check(lua_State *L) {
  return lxshm__check_handle(L, &lxshm__queue_class);
}

/* q:push(v [, timeout]) -> true | nil, msg, code. Encodes before taking the lock; waits while
 * the queue is full (no limit by default, 0: not at all). */
static int queue_push(lua_State *L) {
  lxshm__handle *h = check(L);
  double timeout = lxshm__opt_timeout(L, 3);
  lxshm__interrupt intr;
  const char *out;
  size_t len;
  lxshm_error err;
  lxshm_status st;

  luaL_checkany(L, 2);
  lxshm__interrupt_for(L, &intr);
  lxshm__hold(h);
  st = lxshm__encode(L, lxshm__encoder_of(L), 2, (size_t)lxshm__queue_max_value(queue_of(h)), &out,
                     &len, &err);
  if (st == LXSHM_OK) /* no Lua call between here and the copy into the ring: out stays valid */
    st = lxshm__queue_push(queue_of(h), out, len, LXSHM__FORMAT_MSGPACK, timeout, &intr, &err);
  lxshm__drop(h);
  return lxshm__result(L, h, st, &err);
}

typedef struct taking {
  lxshm_queue *q;
  int remove;
  double timeout;
  lxshm__interrupt intr;
} taking;

static lxshm_status copy_oldest(void *ctx, char *buf, size_t cap, size_t *len, unsigned *format,
                                lxshm_error *err) {
  taking *t = (taking *)ctx;
  return lxshm__queue_take(t->q, buf, cap, len, format, t->remove, t->timeout, &t->intr, err);
}

/* Takes the oldest value (remove) or looks at it, and pushes it decoded; returns the number of
 * results (1, or 3 on failure). The copy is private before any Lua call. */
static int take_value(lua_State *L, int remove, double timeout) {
  lxshm__handle *h = check(L);
  lxshm_status st;
  lxshm_error err;
  taking t;

  lua_settop(L, 1);
  t.q = queue_of(h);
  t.remove = remove;
  t.timeout = timeout;
  lxshm__interrupt_for(L, &t.intr);
  lxshm__hold(h);
  st = lxshm__copy_out(L, lxshm__queue_front_length(t.q), copy_oldest, &t, 0, &err);
  lxshm__drop(h);
  return st == LXSHM_OK ? 1 : lxshm__result(L, h, st, &err);
}

/* q:pop([timeout]) -> the oldest value | nil, msg, TIMEOUT when still empty */
static int queue_pop(lua_State *L) {
  return take_value(L, 1, lxshm__opt_timeout(L, 2));
}

/* q:peek() -> the oldest value, left in the queue | nil, msg, TIMEOUT when empty */
static int queue_peek(lua_State *L) {
  return take_value(L, 0, 0);
}

/* ---- batches ------------------------------------------------------------------------------- */

/* Replaces the copy buffer at stack index `at` (holding `used` bytes) with one of at least
 * `need` bytes, keeping its contents. Raises only on memory errors. */
static char *batch_grow(lua_State *L, int at, size_t used, size_t need, size_t limit, size_t *cap) {
  size_t want = *cap * 2 > need ? *cap * 2 : need;
  char *old = (char *)lua_touserdata(L, at), *buf;
  if (want > limit)
    want = limit > need ? limit : need;
  buf = (char *)lxshm_newuserdata(L, want, 0);
  memcpy(buf, old, used);
  lua_replace(L, at);
  *cap = want;
  return buf;
}

/* Encodes list[1..n] as records into the buffer at stack index 4; *used says how many bytes.
 * Returns OK, or the failure: *item is the index of the value that failed (0: the batch). */
static lxshm_status encode_batch(lua_State *L, lxshm__handle *h, lua_Integer n, size_t *used,
                                 lua_Integer *item, lxshm_error *err) {
  size_t cap, size = (size_t)h->size, room = (size_t)lxshm__queue_max_value(queue_of(h));
  char *buf = lxshm__scratch_take(L, 1, size < BATCH_BUFFER ? size : BATCH_BUFFER, &cap);
  lua_Integer i;

  *used = 0;
  *item = 0;
  for (i = 1; i <= n;) {
    const char *out;
    size_t len, rec;
    lxshm_status st;
    lua_rawgeti(L, 2, i);
    st = lxshm__encode(L, lxshm__encoder_of(L), 5, room, &out, &len, err);
    lua_pop(L, 1);
    if (st != LXSHM_OK) {
      *item = i;
      return st;
    }
    rec = (size_t)lxshm__record_size(len);
    if (*used + rec > size)
      return lxshm__fail(err, LXSHM_INVALID_SIZE,
                         "%lld values take more than the queue's %llu "
                         "bytes",
                         (long long)n, (unsigned long long)h->size);
    if (*used + rec > cap) {
      /* Growing allocates, which may run a finalizer that encodes: out may be stale after it,
       * so encode this value again. */
      buf = batch_grow(L, 4, *used, *used + rec, size, &cap);
      continue;
    }
    *used += lxshm__record_put(buf + *used, out, len, LXSHM__FORMAT_MSGPACK);
    i++;
  }
  return LXSHM_OK;
}

/* q:push_many(list [, timeout]) -> true | nil, msg, code. Pushes list[1], ..., list[#list] as
 * one run: in order, next to each other, under one lock, with one wake-up; or nothing at all.
 * Values are read raw: a list with __len or __index, whose metamethods would say otherwise,
 * raises. */
static int queue_push_many(lua_State *L) {
  lxshm__handle *h = check(L);
  lxshm__interrupt intr;
  lxshm_status st;
  lua_Integer n, item;
  double timeout;
  lxshm_error err;
  size_t used;

  luaL_checktype(L, 2, LUA_TTABLE);
  timeout = lxshm__opt_timeout(L, 3);
  lua_settop(L, 3);
  luaL_checkstack(L, 8, NULL);
  if (lua_getmetatable(L, 2)) { /* a proxy would push what its metamethods do not say */
    lua_getfield(L, -1, "__len");
    lua_getfield(L, -2, "__index");
    luaL_argcheck(L, lua_isnil(L, -1) && lua_isnil(L, -2), 2,
                  "a list with __len or __index: pass a plain table");
    lua_settop(L, 3);
  }
  n = (lua_Integer)lua_rawlen(L, 2);
  if (n == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lxshm__interrupt_for(L, &intr);
  lxshm__hold(h);
  st = encode_batch(L, h, n, &used, &item, &err);
  if (st == LXSHM_OK)
    st = lxshm__queue_push_records(queue_of(h), lua_touserdata(L, 4), used, (uint64_t)n, timeout,
                                   &intr, &err);
  lxshm__drop(h);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  lua_settop(L, 4);
  lxshm__scratch_give(L, 1);
  if (item != 0)
    return lxshm__push_failure(
        L, lua_pushfstring(L, "%s: item %s", h->name, lxshm__format_u64(L, (uint64_t)item)), st,
        &err);
  return lxshm__result(L, h, st, &err);
}

/* Pushes the values of `count` whole records in buf[0..bytes-1] into the table at stack index
 * 5, in order (a nil value leaves a hole). */
static lxshm_status unpack_batch(lua_State *L, const char *buf, size_t bytes, uint64_t count,
                                 lxshm_error *err) {
  size_t off = 0;
  uint64_t k;
  for (k = 0; k < count; k++) {
    const char *data;
    size_t len, rec;
    unsigned format;
    lxshm_status st;
    rec = lxshm__record_get(buf + off, bytes - off, &data, &len, &format);
    if (rec == 0)
      return lxshm__fail(err, LXSHM_CORRUPT, "record %llu of the batch is damaged",
                         (unsigned long long)k + 1);
    st = lxshm__push_bytes(L, data, len, format, err);
    if (st != LXSHM_OK)
      return st;
    lua_rawseti(L, 5, (lua_Integer)k + 1);
    off += rec;
  }
  return LXSHM_OK;
}

/* q:pop_many(max [, timeout]) -> values, n | nil, msg, code. Removes up to max of the oldest
 * values (at least one: waits while the queue is empty) under one lock; values[1..n] holds them
 * in order (a nil value leaves a hole). */
static int queue_pop_many(lua_State *L) {
  lxshm__handle *h = check(L);
  lua_Integer max = luaL_checkinteger(L, 2);
  double timeout = lxshm__opt_timeout(L, 3);
  lxshm__interrupt intr;
  size_t bytes = 0, cap;
  uint64_t count = 0;
  lxshm_status st;
  lxshm_error err;
  char *buf;

  luaL_argcheck(L, max >= 1, 2, "must be at least 1");
  lua_settop(L, 3);
  luaL_checkstack(L, 8, NULL);
  lxshm__interrupt_for(L, &intr);
  lxshm__hold(h);
  buf = lxshm__scratch_take(L, 1, h->size < BATCH_BUFFER ? (size_t)h->size : BATCH_BUFFER, &cap);
  for (;;) {
    st = lxshm__queue_take_records(queue_of(h), buf, cap, &bytes, &count, (uint64_t)max, timeout,
                                   &intr, &err);
    if (st != LXSHM_INVALID_SIZE)
      break;
    buf = batch_grow(L, 4, 0, bytes, bytes, &cap); /* the oldest value alone is larger */
  }
  lxshm__drop(h);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  if (st == LXSHM_OK) {
    lua_createtable(L, count <= INT_MAX ? (int)count : 0, 0);
    st = unpack_batch(L, buf, bytes, count, &err);
  }
  if (st != LXSHM_OK) { /* a batch taken is lost with a damaged value in it */
    lua_settop(L, 4);
    lxshm__scratch_give(L, 1);
    return lxshm__result(L, h, st, &err);
  }
  lua_rotate(L, 4, 1); /* the buffer on top, above the values */
  lxshm__scratch_give(L, 1);
  lua_pushinteger(L, (lua_Integer)count);
  return 2;
}

/* ---- introspection ------------------------------------------------------------------------ */

static int queue_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lxshm_queue_count(queue_of(check(L))));
  return 1;
}

static int queue_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lxshm_queue_size(queue_of(check(L))));
  return 1;
}

static int queue_used(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lxshm_queue_used(queue_of(check(L))));
  return 1;
}

/* q:stat() -> { name, size, used, count, pop_waiters, push_waiters } */
static int queue_stat(lua_State *L) {
  lxshm__handle *h = check(L);
  lxshm__queue_stat st;
  lxshm__queue_stat_get(queue_of(h), &st);
  {
    const lxshm__stat_field fields[] = {{"size", st.size},
                                        {"used", st.used},
                                        {"count", st.count},
                                        {"pop_waiters", st.pop_waiters},
                                        {"push_waiters", st.push_waiters}};
    lxshm__push_stat(L, h, fields, 5);
  }
  return 1;
}

static void describe(lua_State *L, lxshm__handle *h) {
  lxshm__format_u64(L, h->size);
  lxshm__format_u64(L, lxshm_queue_count(queue_of(h)));
  lua_pushfstring(L, "(%s bytes, %s values)", lua_tostring(L, -2), lua_tostring(L, -1));
  lua_replace(L, -3);
  lua_pop(L, 1);
}

static const luaL_Reg methods[] = {{"push", queue_push},           {"pop", queue_pop},
                                   {"push_many", queue_push_many}, {"pop_many", queue_pop_many},
                                   {"peek", queue_peek},           {"count", queue_count},
                                   {"size", queue_size},           {"used", queue_used},
                                   {"stat", queue_stat},           {NULL, NULL}};

const lxshm__class lxshm__queue_class = {"lxshm.queue", "_queue", &lxshm__queue_kind,
                                         methods,       describe, NULL};

/* binding_queue.c — the methods of lxshm.queue: many values, in order, each popped once.
 * Argument checks, encoding and results only; the ring and its records are queue.c's and
 * ring.c's. */
#include <limits.h>
#include <string.h>

#include "binding.h"
#include "ring.h"

#define queue_of(h) ((lxshm_queue *)(h)->obj)

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
  if (st == LXSHM_OK) {
    /* A hook run while the push waits for room may encode: out must stay put until copied. */
    lxshm__encoder *held = lxshm__encoder_hold(lxshm__encoder_of(L), out);
    st = lxshm__queue_push(queue_of(h), out, len, LXSHM__FORMAT_MSGPACK, timeout, &intr, &err);
    lxshm__encoder_release(held);
  }
  lxshm__drop(h);
  return lxshm__result(L, h, st, &err);
}

static lxshm_status take(void *q, lxshm__take *t, lxshm_error *err) {
  return lxshm__queue_take((lxshm_queue *)q, t, err);
}

/* Takes the oldest value (remove) or looks at it, and pushes it decoded; returns the number of
 * results (1, or 3 on failure). The copy is private before any Lua call. */
static int take_value(lua_State *L, int remove, double timeout) {
  lxshm__handle *h = check(L);
  lxshm__take t = {.remove = remove, .timeout = timeout};
  lxshm_error err;
  lxshm_status st =
      lxshm__take_value(L, h, lxshm__queue_front_length(queue_of(h)), take, queue_of(h), &t, &err);
  return st == LXSHM_OK ? 1 : lxshm__result(L, h, st, &err);
}

/* q:pop([timeout]) -> the oldest value | nil, msg, TIMEOUT when still empty */
LXSHM__VARIANT(queue_pop, take_value(L, 1, lxshm__opt_timeout(L, 2)))

/* q:peek() -> the oldest value, left in the queue | nil, msg, TIMEOUT when empty */
LXSHM__VARIANT(queue_peek, take_value(L, 0, 0))

/* ---- batches ------------------------------------------------------------------------------ */

/* q:push_many(list [, timeout]) -> true | nil, msg, code. Pushes list[1], ..., list[#list] as
 * one run: in order, next to each other, under one lock, with one wake-up; or nothing at all.
 * Values are read raw: a list with __len or __index, whose metamethods would say otherwise,
 * raises. */
static int queue_push_many(lua_State *L) {
  lxshm__handle *h = check(L);
  return lxshm__put_batch(L, h, (size_t)lxshm__queue_max_value(queue_of(h)),
                          "values take more than the queue's", lxshm__queue_push_records, 0);
}

/* q:pop_many(max [, timeout]) -> values, n | nil, msg, code. Removes up to max of the oldest
 * values (at least one: waits while the queue is empty) under one lock; values[1..n] holds them
 * in order (a nil value leaves a hole). */
static int queue_pop_many(lua_State *L) {
  lxshm__handle *h = check(L);
  lxshm__take t = {0};
  lxshm_error err;
  lxshm_status st;

  t.remove = 1;
  st = lxshm__take_batch(L, h, take, queue_of(h), &t, "record", &err);
  if (st != LXSHM_OK)
    return lxshm__result(L, h, st, &err);
  lua_pushinteger(L, (lua_Integer)t.count);
  return 2;
}

/* ---- introspection ------------------------------------------------------------------------ */

LXSHM__GETTER(queue_count, lxshm_queue_count, queue_of)
LXSHM__GETTER(queue_size, lxshm_queue_size, queue_of)
LXSHM__GETTER(queue_used, lxshm_queue_used, queue_of)

static const luaL_Reg methods[] = {LXSHM__QUEUE_METHODS(LXSHM__METHOD){NULL, NULL}};

const lxshm__class lxshm__queue_class = {
    "lxshm.queue", "_queue", &lxshm__queue_kind, methods, "(%s bytes, %s values)", "count", NULL};

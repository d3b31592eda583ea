/* binding_topic.c — the methods of lxshm.topic (publish, subscribe, …) and the second userdata
 * type topics need, lxshm.subscription: one reader's place in a topic. Argument checks,
 * encoding and results only; the ring, its index and the named subscriptions are topic.c's. */
#include <limits.h>
#include <string.h>

#include "binding.h"
#include "ring.h"

#define topic_of(h) ((lxshm_topic *)(h)->obj)

#define SUB_MT "lxshm.subscription"

static lxshm__handle *check(lua_State *L) {
  return lxshm__check_handle(L, &lxshm__topic_class);
}

/* ---- publishing --------------------------------------------------------------------------- */

/* t:publish(v [, timeout]) -> seq | nil, msg, code. Encodes before taking the lock; waits only
 * for the publishers' lock (no limit by default). */
static int topic_publish(lua_State *L) {
  lxshm__handle *h = check(L);
  int top = lua_gettop(L); /* one look at how many arguments came, instead of one per argument */
  double timeout = top >= 3 ? lxshm__opt_timeout(L, 3) : LXSHM_FOREVER;
  uint64_t seq = 0;
  lxshm__encoded v;
  lxshm_error err;
  lxshm_status st;

  if (top < 2)
    luaL_checkany(L, 2);
  lxshm__hold(h); /* the encoder may allocate, and a finalizer then close h */
  st = lxshm__encode_value(L, 2, lxshm__topic_max_value(topic_of(h)), &v, &err);
  if (st == LXSHM_OK) /* no Lua call between here and the copy into the ring: v.data stays valid */
    st = lxshm__topic_publish(topic_of(h), v.head, v.hl, v.data, v.len, LXSHM__FORMAT_MSGPACK,
                              timeout, &seq, &err);
  lxshm__drop(h);
  if (st != LXSHM_OK)
    return lxshm__result(L, h, st, &err);
  lua_pushinteger(L, (lua_Integer)seq);
  return 1;
}

/* t:publish_many(list [, timeout]) -> last seq | nil, msg, code. Publishes list[1], ...,
 * list[#list] as consecutive messages under one lock, with one wake-up; or nothing at all. An
 * empty list publishes nothing and returns t:last(). Values are read raw: a list with __len or
 * __index raises. */
static int topic_publish_many(lua_State *L) {
  lxshm__handle *h = check(L);
  return lxshm__put_batch(L, h, (size_t)lxshm__topic_max_value(topic_of(h)),
                          "messages take more than the topic's", lxshm__topic_publish_records, 1);
}

/* ---- subscribing -------------------------------------------------------------------------- */

/* A subscription's userdata. User value 1 caches a copy buffer, as a handle's does (so that
 * lxshm__copy_out serves both); user value 2 is the topic's handle, kept in use (lxshm__hold)
 * while the subscription is open, so that closing the topic leaves its mapping to the last
 * subscription. A subscription closed during its own next or next_many (by a finalizer that
 * runs while the call allocates, or by a hook between sleeps) is only marked closed; the call
 * still uses it and frees it when it returns, as a handle's close waits for its methods. */
typedef struct sub_handle {
  lxshm_subscription *sub; /* NULL once released */
  lxshm__handle *topic;    /* the topic's handle (user value 2) */
  unsigned in_use;         /* next or next_many running */
  int closed;              /* methods raise; released once not in use */
} sub_handle;

/* t:subscribe([from]) or t:subscribe{ name = NAME [, from = from] } -> subscription |
 * nil, msg, code. A bad name returns INVALID; a bad `from` or another key raises. */
static int topic_subscribe(lua_State *L) {
  lxshm__handle *h = check(L);
  uint64_t from;
  const char *name;
  size_t len;
  lxshm_subscription *sub = NULL;
  lxshm_status st;
  lxshm_error err;
  sub_handle *s;

  lua_settop(L, 2);
  luaL_checkstack(L, 8, NULL);
  lxshm__check_subscribe(L, 2, &name, &len, &from);
  lxshm__hold(h); /* the allocation may run a finalizer that closes h */
  s = (sub_handle *)lxshm_newuserdata(L, sizeof *s, 2); /* before the core call: nothing leaks */
  memset(s, 0, sizeof *s);
  s->topic = h;
  luaL_setmetatable(L, SUB_MT);
  lua_pushvalue(L, 1);
  lxshm_setuservalue(L, -2, 2);
  lxshm__drop_checked(L, h);
  st = lxshm__topic_subscribe(topic_of(h), name, len, from, &sub, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  s->sub = sub;
  lxshm__hold(h);
  return 1;
}

/* t:unsubscribe(NAME) -> true | nil, msg, code (NOT_FOUND, EXISTS while a process holds it). */
static int topic_unsubscribe(lua_State *L) {
  lxshm__handle *h = check(L);
  size_t len;
  const char *name = luaL_checklstring(L, 2, &len);
  lxshm_error err;
  lxshm_status st = lxshm__topic_unsubscribe(topic_of(h), name, len, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- introspection ------------------------------------------------------------------------ */

LXSHM__GETTER(topic_last, lxshm_topic_last, topic_of)
LXSHM__GETTER(topic_size, lxshm_topic_size, topic_of)

static const luaL_Reg methods[] = {LXSHM__TOPIC_METHODS(LXSHM__METHOD){NULL, NULL}};

const lxshm__class lxshm__topic_class = {
    "lxshm.topic",         "_topic", &lxshm__topic_kind, methods,
    "(%s bytes, last %s)", "last",   lxshm__topic_option};

/* ---- subscriptions ------------------------------------------------------------------------ */

/* The subscription at argument 1, open and on an open topic; raises otherwise. */
static sub_handle *check_sub(lua_State *L) {
  sub_handle *s = (sub_handle *)luaL_checkudata(L, 1, SUB_MT);
  if (s->closed || s->sub == NULL)
    luaL_error(L, "attempt to use a closed lxshm subscription");
  if (s->topic->closed)
    luaL_error(L, "attempt to use a closed lxshm topic");
  return s;
}

/* Ends the subscription (a named one keeps its position and is free for the next holder) and
 * lets go of the topic's handle. Touches the mapping only while it is there. */
static void sub_release(sub_handle *s) {
  lxshm_subscription *sub = s->sub;
  if (sub == NULL)
    return;
  s->sub = NULL;
  if (s->topic->obj != NULL)
    lxshm_subscription_close(sub);
  else
    lxshm__subscription_forget(sub); /* the topic's __gc ran first */
  lxshm__drop(s->topic);
}

/* sub:close(), __close: idempotent; during the subscription's own next, only marks it. */
static int sub_close(lua_State *L) {
  sub_handle *s = (sub_handle *)luaL_checkudata(L, 1, SUB_MT);
  s->closed = 1;
  if (s->in_use == 0)
    sub_release(s);
  return 0;
}

/* __gc: nothing runs on an unreachable subscription (a call that raised out of memory left it
 * counted in use), so release it. */
static int sub_gc(lua_State *L) {
  sub_handle *s = (sub_handle *)luaL_checkudata(L, 1, SUB_MT);
  s->closed = 1;
  sub_release(s);
  return 0;
}

/* Around a take, which may run Lua code (finalizers, hooks) that closes the subscription. */
static void sub_hold(sub_handle *s) {
  s->in_use++;
}

static void sub_drop(sub_handle *s) {
  if (--s->in_use == 0 && s->closed)
    sub_release(s);
}

static lxshm_status take(void *sub, lxshm__take *t, lxshm_error *err) {
  return lxshm__subscription_take((lxshm_subscription *)sub, t, err);
}

/* The results of next and next_many: the `pushed` ones, then the first message's number and the
 * messages lost before it; or nil, msg, code. */
static int taken(lua_State *L, lxshm__handle *h, lxshm_status st, const lxshm_error *err,
                 const lxshm__take *t, int pushed) {
  if (st != LXSHM_OK)
    return lxshm__result(L, h, st, err);
  lua_pushinteger(L, (lua_Integer)t->first);
  lua_pushinteger(L, (lua_Integer)t->lost);
  return pushed + 2;
}

/* sub:next([timeout]) -> v, seq, lost | nil, msg, code (TIMEOUT when none came). */
static int sub_next(lua_State *L) {
  sub_handle *s = check_sub(L);
  lxshm__take t = {0};
  lxshm_status st;
  lxshm_error err;

  t.timeout = lxshm__opt_timeout(L, 2);
  sub_hold(s);
  st = lxshm__take_value(L, s->topic, lxshm__subscription_front_length(s->sub), take, s->sub, &t,
                         &err);
  sub_drop(s);
  return taken(L, s->topic, st, &err, &t, 1);
}

/* sub:next_many(max [, timeout]) -> values, n, first_seq, lost | nil, msg, code. Up to max
 * messages at once (at least one: waits while there is none); values[1..n] in order (a nil
 * value leaves a hole). */
static int sub_next_many(lua_State *L) {
  sub_handle *s = check_sub(L);
  lxshm__take t = {0};
  lxshm_error err;
  lxshm_status st;
  sub_hold(s);
  st = lxshm__take_batch(L, s->topic, take, s->sub, &t, "message", &err);
  sub_drop(s);
  if (st == LXSHM_OK)
    lua_pushinteger(L, (lua_Integer)t.count);
  return taken(L, s->topic, st, &err, &t, 2);
}

/* sub:position() -> the sequence number next() returns next, if not overwritten by then. */
static int sub_position(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lxshm_subscription_position(check_sub(L)->sub));
  return 1;
}

/* sub:name() -> the name of a named subscription; nil for an anonymous one. */
static int sub_name(lua_State *L) {
  const char *name = lxshm__subscription_name(check_sub(L)->sub);
  if (name == NULL)
    lua_pushnil(L);
  else
    lua_pushstring(L, name);
  return 1;
}

/* "lxshm.subscription: TOPIC (next 5)", "lxshm.subscription: NAME on TOPIC (next 5)",
 * "lxshm.subscription: TOPIC (closed)". */
static int sub_tostring(lua_State *L) {
  sub_handle *s = (sub_handle *)luaL_checkudata(L, 1, SUB_MT);
  int closed = s->closed || s->sub == NULL || s->topic->closed;
  lxshm__push_subscription(L, s->sub != NULL ? lxshm__subscription_name(s->sub) : NULL,
                           s->topic->name, closed,
                           closed ? 0 : lxshm_subscription_position(s->sub));
  return 1;
}

void lxshm__topic_open(lua_State *L) {
  static const luaL_Reg sub_methods[] = {LXSHM__SUBSCRIPTION_METHODS(LXSHM__METHOD){NULL, NULL}};
  static const luaL_Reg sub_meta[] = {
      {"__gc", sub_gc}, {"__close", sub_close}, {"__tostring", sub_tostring}, {NULL, NULL}};
  lxshm__new_class(L, SUB_MT, SUB_MT, NULL, sub_meta, NULL, sub_methods);
}

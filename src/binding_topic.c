/* binding_topic.c — the methods of lxshm.topic (publish, subscribe, …) and the second userdata
 * type topics need, lxshm.subscription: one reader's place in a topic. Argument checks,
 * encoding and results only; the ring, its index and the named subscriptions are topic.c's. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "binding.h"
#include "ring.h"

#define topic_of(h) ((lxshm_topic *)(h)->obj)

#define SUB_MT "lxshm.subscription"

/* The first size of a batch's copy buffer (it grows up to the topic's size when needed). */
#define BATCH_BUFFER (64u << 10)

static lxshm__handle *check(lua_State *L) {
  return lxshm__check_handle(L, &lxshm__topic_class);
}

/* ---- publishing ---------------------------------------------------------------------------- */

/* t:publish(v [, timeout]) -> seq | nil, msg, code. Encodes before taking the lock; waits only
 * for the publishers' lock (no limit by default). */
static int topic_publish(lua_State *L) {
  lxshm__handle *h = check(L);
  double timeout = lxshm__opt_timeout(L, 3);
  uint64_t seq = 0, max;
  const char *out;
  size_t len;
  lxshm_error err;
  lxshm_status st;

  luaL_checkany(L, 2);
  lxshm__hold(h); /* the encoder may allocate, and a finalizer then close h */
  max = lxshm__topic_max_value(topic_of(h));
  if (lxshm__is_big_string(L, 2)) { /* its header, then its bytes straight from the Lua string */
    unsigned char head[LXSHM__STRING_HEADER_MAX];
    const char *s = lua_tolstring(L, 2, &len);
    size_t hl = lxshm__string_header(s, len, head);
    if (hl > max || len > max - hl) /* refused as the encoder would, in its words */
      st = lxshm__fail(&err, LXSHM_INVALID_SIZE, "encoded value exceeds the limit of %llu bytes",
                       (unsigned long long)max);
    else
      st = lxshm__topic_publish(topic_of(h), head, hl, s, len, LXSHM__FORMAT_MSGPACK, timeout, &seq,
                                &err);
  }
  else {
    st = lxshm__encode(L, lxshm__encoder_of(L), 2, (size_t)max, &out, &len, &err);
    if (st == LXSHM_OK) /* no Lua call between here and the copy into the ring: out stays valid */
      st = lxshm__topic_publish(topic_of(h), NULL, 0, out, len, LXSHM__FORMAT_MSGPACK, timeout,
                                &seq, &err);
  }
  lxshm__drop(h);
  if (st != LXSHM_OK)
    return lxshm__result(L, h, st, &err);
  lua_pushinteger(L, (lua_Integer)seq);
  return 1;
}

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
  size_t cap, size = (size_t)h->size, room = (size_t)lxshm__topic_max_value(topic_of(h));
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
                         "%lld messages take more than the topic's "
                         "%llu bytes",
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

/* t:publish_many(list [, timeout]) -> last seq | nil, msg, code. Publishes list[1], ...,
 * list[#list] as consecutive messages under one lock, with one wake-up; or nothing at all. An
 * empty list publishes nothing and returns t:last(). Values are read raw: a list with __len or
 * __index raises. */
static int topic_publish_many(lua_State *L) {
  lxshm__handle *h = check(L);
  lua_Integer n, item;
  uint64_t seq = 0;
  lxshm_status st;
  double timeout;
  lxshm_error err;
  size_t used;

  luaL_checktype(L, 2, LUA_TTABLE);
  timeout = lxshm__opt_timeout(L, 3);
  lua_settop(L, 3);
  luaL_checkstack(L, 8, NULL);
  if (lua_getmetatable(L, 2)) { /* a proxy would publish what its metamethods do not say */
    lua_getfield(L, -1, "__len");
    lua_getfield(L, -2, "__index");
    luaL_argcheck(L, lua_isnil(L, -1) && lua_isnil(L, -2), 2,
                  "a list with __len or __index: pass a plain table");
    lua_settop(L, 3);
  }
  n = (lua_Integer)lua_rawlen(L, 2);
  if (n == 0) {
    lua_pushinteger(L, (lua_Integer)lxshm_topic_last(topic_of(h)));
    return 1;
  }
  lxshm__hold(h);
  st = encode_batch(L, h, n, &used, &item, &err);
  if (st == LXSHM_OK)
    st = lxshm__topic_publish_records(topic_of(h), lua_touserdata(L, 4), used, (uint64_t)n, timeout,
                                      &seq, &err);
  lxshm__drop(h);
  lua_settop(L, 4);
  lxshm__scratch_give(L, 1);
  if (item != 0)
    return lxshm__push_failure(
        L, lua_pushfstring(L, "%s: item %s", h->name, lxshm__format_u64(L, (uint64_t)item)), st,
        &err);
  if (st != LXSHM_OK)
    return lxshm__result(L, h, st, &err);
  lua_pushinteger(L, (lua_Integer)seq);
  return 1;
}

/* ---- subscribing --------------------------------------------------------------------------- */

/* A subscription's userdata. User value 1 caches a copy buffer, as a handle's does (so that
 * lxshm__copy_out serves both); user value 2 is the topic's handle, kept in use (lxshm__hold)
 * while the subscription is open, so that closing the topic leaves its mapping to the last
 * subscription. */
typedef struct sub_handle {
  lxshm_subscription *sub; /* NULL once closed */
  lxshm__handle *topic;    /* the topic's handle (user value 2) */
} sub_handle;

#define FROM_MESSAGE "from must be \"new\", \"oldest\" or a sequence number >= 1"

/* The `from` at stack index idx, for argument arg's messages: nil, "new", "oldest" or a whole
 * number >= 1; anything else raises. */
static uint64_t check_from(lua_State *L, int idx, int arg) {
  size_t len;
  const char *s;
  switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL:
      return LXSHM_TOPIC_NEW;
    case LUA_TSTRING:
      s = lua_tolstring(L, idx, &len);
      if (len == 3 && memcmp(s, "new", 3) == 0)
        return LXSHM_TOPIC_NEW;
      if (len == 6 && memcmp(s, "oldest", 6) == 0)
        return LXSHM_TOPIC_OLDEST;
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        lua_Integer n = lua_tointeger(L, idx);
        if (n >= 1)
          return (uint64_t)n;
      }
      else {
        lua_Number x = lua_tonumber(L, idx);
        if (x >= 1 && x < 9.2e18 && x == floor(x))
          return (uint64_t)x;
      }
      break;
  }
  luaL_argerror(L, arg, FROM_MESSAGE);
  return 0;
}

/* The subscription's metatable on the stack top, made on first use. */
static void push_sub_metatable(lua_State *L);

/* t:subscribe([from]) or t:subscribe{ name = NAME [, from = from] } -> subscription |
 * nil, msg, code. A bad name returns INVALID; a bad `from` or another key raises. */
static int topic_subscribe(lua_State *L) {
  lxshm__handle *h = check(L);
  uint64_t from = LXSHM_TOPIC_NEW;
  const char *name = NULL;
  size_t len = 0;
  lxshm_subscription *sub = NULL;
  lxshm_status st;
  lxshm_error err;
  sub_handle *s;

  lua_settop(L, 2);
  luaL_checkstack(L, 8, NULL);
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, 2) != 0) {
      size_t klen = 0;
      const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
      if (key != NULL && klen == 4 && memcmp(key, "name", 4) == 0) {
        luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2, "name must be a string");
        name = lua_tolstring(L, -1, &len); /* stays valid: the table holds it */
      }
      else if (key != NULL && klen == 4 && memcmp(key, "from", 4) == 0)
        from = check_from(L, -1, 2);
      else
        luaL_argerror(L, 2,
                      lua_pushfstring(L, "unknown option '%s'",
                                      key != NULL && strlen(key) == klen ? key : "?"));
      lua_pop(L, 1);
    }
    luaL_argcheck(L, name != NULL, 2, "a named subscription needs a name");
  }
  else
    from = check_from(L, 2, 2);
  s = (sub_handle *)lxshm_newuserdata(L, sizeof *s, 2); /* before the core call: nothing leaks */
  s->sub = NULL;
  s->topic = h;
  push_sub_metatable(L);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 1);
  lxshm_setuservalue(L, -2, 2);
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

static int topic_last(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lxshm_topic_last(topic_of(check(L))));
  return 1;
}

static int topic_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lxshm_topic_size(topic_of(check(L))));
  return 1;
}

/* t:stat() -> { name, size, last, oldest, subscribers, waiters } */
static int topic_stat(lua_State *L) {
  lxshm__handle *h = check(L);
  lxshm__topic_stat st;
  lxshm__topic_stat_get(topic_of(h), &st);
  {
    const lxshm__stat_field fields[] = {{"size", st.size},
                                        {"last", st.last},
                                        {"oldest", st.oldest},
                                        {"subscribers", st.subscribers},
                                        {"waiters", st.waiters}};
    lxshm__push_stat(L, h, fields, 5);
  }
  return 1;
}

static void describe(lua_State *L, lxshm__handle *h) {
  lxshm__format_u64(L, h->size);
  lxshm__format_u64(L, lxshm_topic_last(topic_of(h)));
  lua_pushfstring(L, "(%s bytes, last %s)", lua_tostring(L, -2), lua_tostring(L, -1));
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/* opts.cursors: room for this many named subscriptions (default LXSHM_TOPIC_CURSORS). */
static int topic_option(lua_State *L, const char *key, size_t len, int arg, uint32_t *params) {
  lua_Number n;
  if (key == NULL) {
    params[0] = LXSHM_TOPIC_CURSORS;
    return 1;
  }
  if (len != 7 || memcmp(key, "cursors", 7) != 0)
    return 0;
  n = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
  if (!(n >= 0 && n <= LXSHM_TOPIC_CURSORS_MAX && n == floor(n)))
    luaL_argerror(L, arg,
                  lua_pushfstring(L, "option 'cursors' must be an integer from 0 to %d",
                                  LXSHM_TOPIC_CURSORS_MAX));
  params[0] = (uint32_t)n;
  return 1;
}

static const luaL_Reg methods[] = {
    {"publish", topic_publish},     {"publish_many", topic_publish_many},
    {"subscribe", topic_subscribe}, {"unsubscribe", topic_unsubscribe},
    {"last", topic_last},           {"size", topic_size},
    {"stat", topic_stat},           {NULL, NULL}};

const lxshm__class lxshm__topic_class = {"lxshm.topic", "_topic", &lxshm__topic_kind,
                                         methods,       describe, topic_option};

/* ---- subscriptions ------------------------------------------------------------------------ */

/* The subscription at argument 1, open and on an open topic; raises otherwise. */
static sub_handle *check_sub(lua_State *L) {
  sub_handle *s = (sub_handle *)luaL_checkudata(L, 1, SUB_MT);
  if (s->sub == NULL)
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

/* sub:close(), __close, __gc: idempotent. */
static int sub_close(lua_State *L) {
  sub_release((sub_handle *)luaL_checkudata(L, 1, SUB_MT));
  return 0;
}

typedef struct reading {
  lxshm_subscription *sub;
  double timeout;
  lxshm__interrupt intr;
  uint64_t seq;
  uint64_t lost;
} reading;

static lxshm_status copy_next(void *ctx, char *buf, size_t cap, size_t *len, unsigned *format,
                              lxshm_error *err) {
  reading *r = (reading *)ctx;
  return lxshm__subscription_next(r->sub, buf, cap, len, format, &r->seq, &r->lost, r->timeout,
                                  &r->intr, err);
}

/* sub:next([timeout]) -> v, seq, lost | nil, msg, code (TIMEOUT when none came). */
static int sub_next(lua_State *L) {
  sub_handle *s = check_sub(L);
  lxshm__handle *h = s->topic;
  lxshm_status st;
  lxshm_error err;
  reading r;

  r.timeout = lxshm__opt_timeout(L, 2);
  r.sub = s->sub;
  r.seq = r.lost = 0;
  lua_settop(L, 1);
  lxshm__interrupt_for(L, &r.intr);
  lxshm__hold(h);
  st = lxshm__copy_out(L, lxshm__subscription_front_length(r.sub), copy_next, &r, 0, &err);
  lxshm__drop(h);
  if (st != LXSHM_OK)
    return lxshm__result(L, h, st, &err);
  lua_pushinteger(L, (lua_Integer)r.seq);
  lua_pushinteger(L, (lua_Integer)r.lost);
  return 3;
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
      return lxshm__fail(err, LXSHM_CORRUPT, "message %llu of the batch is damaged",
                         (unsigned long long)k + 1);
    st = lxshm__push_bytes(L, data, len, format, err);
    if (st != LXSHM_OK)
      return st;
    lua_rawseti(L, 5, (lua_Integer)k + 1);
    off += rec;
  }
  return LXSHM_OK;
}

/* sub:next_many(max [, timeout]) -> values, n, first_seq, lost | nil, msg, code. Up to max
 * messages at once (at least one: waits while there is none); values[1..n] in order (a nil
 * value leaves a hole). */
static int sub_next_many(lua_State *L) {
  sub_handle *s = check_sub(L);
  lxshm__handle *h = s->topic;
  lua_Integer max = luaL_checkinteger(L, 2);
  double timeout = lxshm__opt_timeout(L, 3);
  lxshm__interrupt intr;
  size_t bytes = 0, cap;
  uint64_t count = 0, first = 0, lost = 0;
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
    st = lxshm__subscription_take_records(s->sub, buf, cap, (uint64_t)max, &bytes, &count, &first,
                                          &lost, timeout, &intr, &err);
    if (st != LXSHM_INVALID_SIZE)
      break;
    buf = batch_grow(L, 4, 0, bytes, bytes, &cap); /* the next message alone is larger */
  }
  lxshm__drop(h);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  if (st == LXSHM_OK) {
    lua_createtable(L, count <= INT_MAX ? (int)count : 0, 0);
    st = unpack_batch(L, buf, bytes, count, &err);
  }
  if (st != LXSHM_OK) { /* a batch taken is lost with a damaged message in it */
    lua_settop(L, 4);
    lxshm__scratch_give(L, 1);
    return lxshm__result(L, h, st, &err);
  }
  lua_rotate(L, 4, 1); /* the buffer on top, above the values */
  lxshm__scratch_give(L, 1);
  lua_pushinteger(L, (lua_Integer)count);
  lua_pushinteger(L, (lua_Integer)first);
  lua_pushinteger(L, (lua_Integer)lost);
  return 4;
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
  const char *name = s->sub != NULL ? lxshm__subscription_name(s->sub) : NULL;
  lua_pushfstring(L, SUB_MT ": %s%s%s ", name != NULL ? name : "", name != NULL ? " on " : "",
                  s->topic->name);
  if (s->sub == NULL || s->topic->closed)
    lua_pushliteral(L, "(closed)");
  else {
    lxshm__format_u64(L, lxshm_subscription_position(s->sub));
    lua_pushfstring(L, "(next %s)", lua_tostring(L, -1));
    lua_remove(L, -2);
  }
  lua_concat(L, 2);
  return 1;
}

static void push_sub_metatable(lua_State *L) {
  static const luaL_Reg sub_methods[] = {{"next", sub_next},         {"next_many", sub_next_many},
                                         {"position", sub_position}, {"name", sub_name},
                                         {"close", sub_close},       {NULL, NULL}};
  static const luaL_Reg sub_meta[] = {
      {"__gc", sub_close}, {"__close", sub_close}, {"__tostring", sub_tostring}, {NULL, NULL}};
  if (!luaL_newmetatable(L, SUB_MT))
    return;
#if LUA_VERSION_NUM < 503
  lua_pushstring(L, SUB_MT); /* 5.3 and later set __name themselves */
  lua_setfield(L, -2, "__name");
#endif
  luaL_setfuncs(L, sub_meta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, sub_methods, 0);
  lua_setfield(L, -2, "__index");
}

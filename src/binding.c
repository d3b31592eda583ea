/* binding.c — the Lua module lxshm.core: the module's functions, the one handle type behind
 * every kind of object, argument checks, and statuses turned into Lua results. A client of the
 * core (object.h, internal.h) and the codec; each kind's methods are in binding_<kind>.c, and no
 * shared-memory logic lives in any of them.
 *
 * Two channels, never mixed: a wrong argument type or a closed handle raises; a failure a
 * correct program can meet returns nil, "NAME: cause", code. Between taking an object's lock and
 * releasing it, nothing here may raise: Lua runs under a lock only inside lua_pcall. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "binding.h"
#include "ring.h"

#define SCRATCH_KEEP (64u << 20) /* a handle keeps a copy buffer up to this size for reuse */

/* Every kind Lua sees. Adding a kind adds a line here. */
static const lxshm__class *const classes[] = {&lxshm__segment_class, &lxshm__queue_class,
                                              &lxshm__dict_class, &lxshm__topic_class};

/* ---- results ------------------------------------------------------------------------------ */

int lxshm__result(lua_State *L, lxshm__handle *h, lxshm_status st, const lxshm_error *err) {
  switch ((int)st) {
    case LXSHM_OK:
      lua_pushboolean(L, 1);
      return 1;
    case LXSHM__INTERRUPTED:
      return lua_error(L);
    case LXSHM_INVALID:
      return luaL_error(L, "%s: %s", h->name, err->message);
    default:
      return lxshm__push_failure(L, h->name, st, err);
  }
}

/* The interrupt check of blocking calls. No lock is held during waits. */
static int interrupted(void *ud) {
  return lxshm__interrupted((lua_State *)ud);
}

const lxshm__interrupt *lxshm__interrupt_for(lua_State *L, lxshm__interrupt *intr) {
  luaL_checkstack(L, 4, NULL); /* room for the call and its error, reserved before any lock */
  intr->check = interrupted;
  intr->ud = L;
  return intr;
}

/* ---- handles ------------------------------------------------------------------------------ */

static lxshm__handle *new_handle(lua_State *L, const lxshm__class *cls) {
  lxshm__handle *h = (lxshm__handle *)lxshm_newuserdata(L, sizeof *h, 1);
  memset(h, 0, sizeof *h);
  h->cls = cls;
  luaL_setmetatable(L, cls->mt);
  return h;
}

/* The handle at argument 1 whatever its state, if it is a handle of class cls (NULL: of any
 * class); raises with the usual "bad argument #1" otherwise, naming the class expected. Every
 * method starts here. A kind's own method has its class's metatable as upvalue 2
 * (lxshm__new_class): a userdata with that metatable is a handle, and one of class cls if it
 * says so, and the registry is not searched. Otherwise the class's metatable is found in the
 * registry by the class's address, which costs less than luaL_checkudata's lookup by name. */
static lxshm__handle *to_handle(lua_State *L, const lxshm__class *cls) {
  size_t i;
  if (cls != NULL) {
    lxshm__handle *p = (lxshm__handle *)lua_touserdata(L, 1);
    if (p != NULL && lua_getmetatable(L, 1)) {
      int same = lua_topointer(L, -1) == lua_topointer(L, lua_upvalueindex(2)) && p->cls == cls;
      if (!same) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, cls);
        same = lua_rawequal(L, -1, -2);
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
      if (same)
        return p;
    }
    return (lxshm__handle *)luaL_checkudata(L, 1, cls->mt); /* raises */
  }
  for (i = 0; i < sizeof classes / sizeof classes[0]; i++) {
    lxshm__handle *h = (lxshm__handle *)luaL_testudata(L, 1, classes[i]->mt);
    if (h != NULL)
      return h;
  }
  return (lxshm__handle *)luaL_checkudata(L, 1, classes[0]->mt); /* raises */
}

lxshm__handle *lxshm__check_handle(lua_State *L, const lxshm__class *cls) {
  lxshm__handle *h = to_handle(L, cls);
  if (h->closed) {
    const char *kind = strchr(cls->mt, '.');
    luaL_error(L, "attempt to use a closed lxshm %s", kind != NULL ? kind + 1 : cls->mt);
  }
  return h;
}

/* Unmaps, and drops the copy buffer with the mapping. The handle at stack index `idx`. */
static void release(lua_State *L, int idx, lxshm__handle *h) {
  lxshm__object *o = h->obj;
  h->obj = NULL;
  lxshm__close(o);
  lua_pushnil(L);
  lxshm_setuservalue(L, idx, 1);
}

void lxshm__hold(lxshm__handle *h) {
  h->in_use++;
}

void lxshm__drop(lxshm__handle *h) {
  if (--h->in_use == 0 && h->closed && h->obj != NULL) {
    lxshm__object *o = h->obj; /* the copy buffer goes with the handle */
    h->obj = NULL;
    lxshm__close(o);
  }
}

void lxshm__drop_checked(lua_State *L, lxshm__handle *h) {
  lxshm__drop(h);
  if (h->closed)
    lxshm__check_handle(L, h->cls); /* raises, as a call on a closed handle does */
}

void lxshm__check_not_busy(lua_State *L, lxshm__handle *h) {
  if (h->busy)
    luaL_error(L, "%s: %s is locked by its own update in progress", h->name, h->cls->kind->name);
}

/* h:close(), __close: marks the handle closed first, then releases the object, unless one of
 * its methods is using it (a finalizer or hook closing it mid-call): the last one releases it.
 * Idempotent. Raises inside the handle's own update, which holds its lock. */
static int handle_close(lua_State *L) {
  lxshm__handle *h = to_handle(L, NULL);
  if (h->busy)
    return luaL_error(L, "%s: cannot close a %s inside its own update", h->name,
                      h->cls->kind->name);
  h->closed = 1;
  if (h->in_use == 0 && h->obj != NULL)
    release(L, 1, h);
  return 0;
}

/* __gc: nothing runs on an unreachable handle, so release whatever a close left. */
static int handle_gc(lua_State *L) {
  lxshm__handle *h = to_handle(L, NULL);
  h->closed = 1;
  if (h->obj != NULL)
    release(L, 1, h);
  return 0;
}

/* Pushes the table h:stat() returns, the name and the kind's figures; or nil when h is closed,
 * maybe by a finalizer that the table's allocation ran (it is read after the allocations). */
static void push_stat(lua_State *L, lxshm__handle *h) {
  lua_createtable(L, 0, 10);
  lua_pushstring(L, h->name);
  lua_setfield(L, -2, "name");
  if (h->closed) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  else {
    lxshm__figures f;
    lxshm__figures_get(h->obj, &f);
    lxshm__set_figures(L, h->obj->kind->figures, f.figure);
  }
}

/* h:stat(), for the class it was called as (upvalue 2). */
static int handle_stat(lua_State *L) {
  const lxshm__class *cls = (const lxshm__class *)lua_touserdata(L, lua_upvalueindex(2));
  push_stat(L, lxshm__check_handle(L, cls));
  if (lua_isnil(L, -1))
    lxshm__check_handle(L, cls); /* closed meanwhile: raises */
  return 1;
}

static int handle_tostring(lua_State *L) {
  lxshm__handle *h = to_handle(L, NULL);
  const lxshm__class *c = h->cls;
  if (h->closed || c->shown == NULL)
    lua_pushnil(L);
  else
    push_stat(L, h);
  lxshm__push_handle_string(L, c->mt, h->name, h->closed, c->description, h->size, c->shown);
  return 1;
}

static int handle_name(lua_State *L) {
  lua_pushstring(L, lxshm__check_handle(L, to_handle(L, NULL)->cls)->name);
  return 1;
}

/* ---- copy buffers ---------------------------------------------------------------------------- */

char *lxshm__scratch_take(lua_State *L, int handle, size_t n, size_t *cap) {
  lxshm_getuservalue(L, handle, 1);
  if (lua_type(L, -1) == LUA_TUSERDATA && lua_rawlen(L, -1) >= n) {
    lua_pushnil(L);
    lxshm_setuservalue(L, handle, 1);
  }
  else {
    size_t have = lua_type(L, -1) == LUA_TUSERDATA ? lua_rawlen(L, -1) : 0;
    size_t want = n > have + have / 2 ? n : have + have / 2; /* grow by half at least */
    lua_pop(L, 1);
    lxshm_newuserdata(L, (want + 4095) & ~(size_t)4095, 0);
  }
  *cap = lua_rawlen(L, -1);
  return (char *)lua_touserdata(L, -1);
}

void lxshm__scratch_give(lua_State *L, int handle) {
  if (lua_rawlen(L, -1) <= SCRATCH_KEEP)
    lxshm_setuservalue(L, handle, 1);
  else
    lua_pop(L, 1);
}

lxshm_status lxshm__copy_out(lua_State *L, size_t hint, lxshm__take_fn take, void *from,
                             lxshm__take *t, int raw, lxshm_error *err) {
  char small[LXSHM__SMALL_VALUE];
  size_t need = hint;
  lxshm_status st;
  int on_stack = 0; /* a scratch buffer sits on the stack top */

  t->buf = small;
  t->cap = sizeof small;
  t->format = LXSHM__FORMAT_RAW;
  for (;;) {
    if (need > t->cap) {
      if (on_stack)
        lua_pop(L, 1);
      t->buf = lxshm__scratch_take(L, 1, need, &t->cap);
      on_stack = 1;
    }
    st = take(from, t, err);
    if (st != LXSHM_INVALID_SIZE || t->len <= t->cap)
      break;
    need = t->len; /* the value is larger than we thought: copy again with room for it */
  }
  if (st == LXSHM_OK)
    st = lxshm__push_bytes(L, (const char *)t->buf, t->len, raw ? LXSHM__FORMAT_RAW : t->format,
                           err);
  if (on_stack) {
    if (st == LXSHM_OK || st == LXSHM__INTERRUPTED)
      lua_rotate(L, -2, 1); /* the buffer on top again, above the value or the error */
    lxshm__scratch_give(L, 1);
  }
  return st;
}

lxshm_status lxshm__encode_value(lua_State *L, int idx, uint64_t limit, lxshm__encoded *v,
                                 lxshm_error *err) {
  v->hl = 0;
  v->data = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &v->len) : NULL;
  if (v->data == NULL || (uint64_t)v->len > UINT32_MAX) /* the encoder refuses the latter */
    return lxshm__encode(L, lxshm__encoder_of(L), idx, limit > SIZE_MAX ? SIZE_MAX : (size_t)limit,
                         &v->data, &v->len, err);
  v->hl = lxshm__string_header(v->data, v->len, v->head);
  if (v->hl > limit || v->len > limit - v->hl) /* refused as the encoder would, in its words */
    return lxshm__fail(err, LXSHM_INVALID_SIZE, "encoded value exceeds the limit of %llu bytes",
                       (unsigned long long)limit);
  return LXSHM_OK;
}

lxshm_status lxshm__take_value(lua_State *L, lxshm__handle *h, size_t hint, lxshm__take_fn take,
                               void *from, lxshm__take *t, lxshm_error *err) {
  lxshm__interrupt intr;
  lxshm_status st;
  lua_settop(L, 1);
  t->intr = lxshm__interrupt_for(L, &intr);
  lxshm__hold(h);
  st = lxshm__copy_out(L, hint, take, from, t, 0, err);
  lxshm__drop(h);
  return st;
}

/* ---- batches ------------------------------------------------------------------------------ */

/* The first size of a batch's copy buffer (it grows up to the object's size when needed). */
#define BATCH_BUFFER (64u << 10)

/* Takes h's copy buffer for a batch (at the stack top), of BATCH_BUFFER bytes or h's size. */
static char *batch_buffer(lua_State *L, const lxshm__handle *h, size_t *cap) {
  return lxshm__scratch_take(L, 1, h->size < BATCH_BUFFER ? (size_t)h->size : BATCH_BUFFER, cap);
}

int lxshm__put_batch(lua_State *L, lxshm__handle *h, size_t limit, const char *what,
                     lxshm__put_fn put, int seq) {
  lxshm__records r = {0};
  lua_Integer n = lxshm__check_list_args(L, &r.timeout);
  lxshm__interrupt intr;
  lxshm_status st;
  lxshm_error err;
  lxshm__batch b;

  luaL_checkstack(L, 8, NULL);
  if (n == 0) /* stores nothing; a topic tells its last */
    st = put(h->obj, &r, &err);
  else {
    r.intr = lxshm__interrupt_for(L, &intr);
    lxshm__hold(h);
    batch_buffer(L, h, &b.cap);
    b.at = lua_gettop(L);
    b.used = 0;
    b.total = h->size;
    b.what = what;
    st = lxshm__encode_list(L, 2, n, limit, &b, &err);
    if (st == LXSHM_OK) { /* no Lua call between here and the store: the records stay put */
      r.data = lua_touserdata(L, b.at);
      r.bytes = b.used;
      r.count = (uint64_t)n;
      st = put(h->obj, &r, &err);
    }
    lxshm__drop(h);
    if (st == LXSHM__INTERRUPTED)
      return lua_error(L);
    lua_settop(L, b.at);
    lxshm__scratch_give(L, 1);
    if (b.item != 0)
      return lxshm__push_item_failure(L, h->name, b.item, st, &err);
  }
  if (st != LXSHM_OK)
    return lxshm__result(L, h, st, &err);
  if (seq)
    lua_pushinteger(L, (lua_Integer)r.seq);
  else
    lua_pushboolean(L, 1);
  return 1;
}

/* Pushes the values of `count` whole records in buf[0..bytes-1] into the table on the stack top,
 * in order (a nil value leaves a hole). */
static lxshm_status unpack_batch(lua_State *L, const char *buf, size_t bytes, uint64_t count,
                                 const char *what, lxshm_error *err) {
  int t = lua_gettop(L);
  size_t off = 0;
  uint64_t k;
  for (k = 0; k < count; k++) {
    const char *data;
    size_t len, rec;
    unsigned format;
    lxshm_status st;
    rec = lxshm__record_get(buf + off, bytes - off, &data, &len, &format);
    if (rec == 0)
      return lxshm__fail(err, LXSHM_CORRUPT, "%s %llu of the batch is damaged", what,
                         (unsigned long long)k + 1);
    st = lxshm__push_bytes(L, data, len, format, err);
    if (st != LXSHM_OK)
      return st;
    lua_rawseti(L, t, (lua_Integer)k + 1);
    off += rec;
  }
  return LXSHM_OK;
}

lxshm_status lxshm__take_batch(lua_State *L, lxshm__handle *h, lxshm__take_fn take, void *from,
                               lxshm__take *t, const char *what, lxshm_error *err) {
  lxshm__interrupt intr;
  lxshm_status st;
  int at;

  t->max = (uint64_t)lxshm__check_max_args(L, &t->timeout);
  t->whole = 1;
  t->intr = lxshm__interrupt_for(L, &intr);
  luaL_checkstack(L, 8, NULL);
  lxshm__hold(h);
  t->buf = batch_buffer(L, h, &t->cap);
  at = lua_gettop(L);
  for (;;) {
    t->count = 0;
    st = take(from, t, err);
    if (st != LXSHM_INVALID_SIZE)
      break;
    t->buf = lxshm_newuserdata(L, t->len, 0); /* the oldest value alone is larger */
    t->cap = t->len;
    lua_replace(L, at);
  }
  lxshm__drop(h);
  if (st == LXSHM__INTERRUPTED)
    return st;
  if (st == LXSHM_OK) {
    lua_createtable(L, t->count <= INT_MAX ? (int)t->count : 0, 0);
    st = unpack_batch(L, (const char *)t->buf, t->len, t->count, what, err);
  }
  if (st != LXSHM_OK) { /* a batch taken is lost with a damaged value in it */
    lua_settop(L, at);
    lxshm__scratch_give(L, 1);
    return st;
  }
  lua_rotate(L, at, 1); /* the buffer on top, above the values */
  lxshm__scratch_give(L, 1);
  return LXSHM_OK;
}

/* ---- update ------------------------------------------------------------------------------ */

int lxshm__push_locked_call(lua_State *L, lxshm__handle *h, lua_CFunction locked, int fn,
                            void *ctx) {
  int n = 2;
  luaL_checkstack(L, 12, NULL); /* room for the call and its error, reserved before locking */
  lxshm__hold(h);               /* the closure is allocated, and a finalizer may close h */
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushcclosure(L, locked, 1);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, fn);
  if (ctx != NULL) {
    lua_pushlightuserdata(L, ctx);
    n = 3;
  }
  lxshm__drop_checked(L, h);
  return n;
}

int lxshm__call_locked(lua_State *L, lxshm__handle *h, int nargs, void (*unlock)(void *),
                       void *ctx) {
  int rc;
  h->busy = 1;
  lxshm__hold(h);
  rc = lua_pcall(L, nargs, 3, 0);
  unlock(ctx);
  h->busy = 0;
  lxshm__drop(h);
  if (rc != LUA_OK)
    return lua_error(L); /* re-raise only once the lock is free */
  if (lua_toboolean(L, -3)) {
    lua_pop(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", h->name, lua_tostring(L, -3));
  lua_pushvalue(L, -3);
  return 3;
}

int lxshm__locked_result(lua_State *L, lxshm_status st, const lxshm_error *err) {
  if (st != LXSHM_OK) {
    lua_pushboolean(L, 0);
    lua_pushstring(L, err->message[0] != '\0' ? err->message : lxshm_strerror(st));
    lua_pushinteger(L, st);
    return 3;
  }
  lua_pushboolean(L, 1);
  lua_rotate(L, -2, 1);
  lua_pushnil(L);
  return 3;
}

/* ---- module functions ------------------------------------------------------------------------ */

/* lxshm.create..suffix(name, size [, opts]), lxshm.open..suffix(name [, opts]) and
 * lxshm.attach..suffix(name, size [, opts]) -> handle | nil, msg, code, for class cls;
 * lxshm.open_any(name [, opts]) with cls NULL: a handle of whatever kind NAME is. */
static int construct(lua_State *L, lxshm__verb verb, const lxshm__class *cls) {
  lxshm__interrupt intr;
  lxshm__object *obj = NULL;
  lxshm__handle *h;
  lxshm_status st;
  lxshm_error err;
  lxshm__options o;
  uint64_t size;
  size_t i;
  const char *name =
      lxshm__check_constructor(L, 1, verb, cls != NULL ? cls->option : NULL, &size, &o);

  if (name == NULL)
    return 3;
  /* Before the core call: nothing to leak if this raises. open_any sets the class once the kind
   * is known. */
  h = new_handle(L, cls != NULL ? cls : classes[0]);
  if (verb == LXSHM__CREATE)
    st = lxshm__create(cls->kind, name, size, o.params, o.mode, &obj, &err);
  else if (verb == LXSHM__OPEN)
    st = lxshm__open(cls != NULL ? cls->kind : NULL, name, o.flags, lxshm__interrupt_for(L, &intr),
                     &obj, &err);
  else
    st = lxshm__attach(cls->kind, name, size, o.params, o.mode, o.flags, &obj, NULL, &err);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, name, st, &err);
  for (i = 0; cls == NULL && i < sizeof classes / sizeof classes[0]; i++)
    if (classes[i]->kind == obj->kind) {
      h->cls = classes[i];
      luaL_setmetatable(L, h->cls->mt);
    }
  h->obj = obj;
  h->size = obj->capacity;
  strcpy(h->name, obj->name);
  return 1;
}

/* The class a constructor makes (its upvalue 2). */
#define class_of(L) ((const lxshm__class *)lua_touserdata(L, lua_upvalueindex(2)))

LXSHM__VARIANT(mod_create, construct(L, LXSHM__CREATE, class_of(L)))
LXSHM__VARIANT(mod_open, construct(L, LXSHM__OPEN, class_of(L)))
LXSHM__VARIANT(mod_attach, construct(L, LXSHM__ATTACH, class_of(L)))
LXSHM__VARIANT(mod_open_any, construct(L, LXSHM__OPEN, NULL))

static void list_one(const char *name, void *ud) {
  lua_State *L = (lua_State *)ud;
  lua_pushstring(L, name);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

/* lxshm.list() -> { name, ... } of every lxshm object of this machine, sorted | nil, msg, code */
static int mod_list(lua_State *L) {
  lxshm_error err;
  lxshm_status st;
  lua_newtable(L);
  st = lxshm__list(list_one, L, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, "list", st, &err);
  lua_getglobal(L, "table"); /* sorted, as a person reading them expects */
  lua_getfield(L, -1, "sort");
  if (lua_isfunction(L, -1)) {
    lua_pushvalue(L, -3);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
  }
  else {
    lua_pop(L, 2);
  }
  return 1;
}

/* lxshm.remove(name) -> true | nil, msg, code: any kind of object. */
static int mod_remove(lua_State *L) {
  const char *name = lxshm__check_name_arg(L, 1);
  lxshm_error err;
  lxshm_status st;
  if (name == NULL)
    return 3;
  st = lxshm__remove(name, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, name, st, &err);
  lua_pushboolean(L, 1);
  return 1;
}

/* strerror(code) -> description, NAME ("unknown status", "UNKNOWN" for other numbers). */
static int mod_strerror(lua_State *L) {
  lua_Number code = luaL_checknumber(L, 1);
  lxshm_status st =
      (code >= 0 && code <= INT_MAX && code == floor(code)) ? (lxshm_status)code : (lxshm_status)-1;
  lua_pushstring(L, lxshm_strerror(st));
  lua_pushstring(L, lxshm_status_name(st));
  return 2;
}

/* lxshm.encode(v) -> bytes | nil, msg, UNSUPPORTED */
static int mod_encode(lua_State *L) {
  lxshm__encoded v;
  lxshm_error err;
  lxshm_status st;

  luaL_checkany(L, 1);
  lua_settop(L, 1);
  st = lxshm__encode_value(L, 1, UINT64_MAX, &v, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, "encode", st, &err);
  if (v.hl > 0) { /* a string: header .. s */
    lua_pushlstring(L, (const char *)v.head, v.hl);
    lua_insert(L, 1);
    lua_concat(L, 2);
  }
  else
    lxshm__push_encoded(L, lxshm__encoder_of(L), v.data, v.len);
  return 1;
}

/* lxshm.decode(bytes) -> value | nil, msg, CORRUPT. Only a string is accepted (no numbers). */
static int mod_decode(lua_State *L) {
  size_t len;
  const char *s;
  lxshm_error err;
  lxshm_status st;

  luaL_checktype(L, 1, LUA_TSTRING);
  s = lua_tolstring(L, 1, &len);
  st = lxshm__decode(L, s, len, &err);
  return st == LXSHM_OK ? 1 : lxshm__push_failure(L, "decode", st, &err);
}

/* ---- registration ------------------------------------------------------------------------- */

static const luaL_Reg mod_funcs[] = {{"remove", mod_remove},
                                     {"open_any", mod_open_any},
                                     {"list", mod_list},
                                     {"strerror", mod_strerror},
                                     {"encode", mod_encode},
                                     {"decode", mod_decode},
                                     {NULL, NULL}};

static const lua_CFunction verbs[3] = {mod_create, mod_open, mod_attach};

static const luaL_Reg handle_methods[] = {
    {"close", handle_close}, {"name", handle_name}, {"stat", handle_stat}, {NULL, NULL}};

static const luaL_Reg handle_meta[] = {
    {"__gc", handle_gc}, {"__close", handle_close}, {"__tostring", handle_tostring}, {NULL, NULL}};

LXSHM_API int luaopen_lxshm_core(lua_State *L);

LXSHM_API int luaopen_lxshm_core(lua_State *L) {
  size_t i;
  luaL_checkversion(L);
  lxshm__encoder_push(L); /* one per lua_State: every function gets it as upvalue 1 */
  for (i = 0; i < sizeof classes / sizeof classes[0]; i++) {
    lxshm__new_class(L, classes[i]->mt, classes[i]->mt, classes[i], handle_meta, handle_methods,
                     classes[i]->methods);
    luaL_getmetatable(L, classes[i]->mt); /* also found by the class's address (to_handle) */
    lua_rawsetp(L, LUA_REGISTRYINDEX, classes[i]);
  }
  lxshm__topic_open(L);
  luaL_newlibtable(L, mod_funcs);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, mod_funcs, 1);
  for (i = 0; i < sizeof classes / sizeof classes[0]; i++)
    lxshm__add_constructors(L, -2, classes[i]->suffix, classes[i], verbs);
#define LXSHM_CONSTANT(name, value, text) \
  lua_pushinteger(L, value);              \
  lua_setfield(L, -2, #name);
  LXSHM_STATUS_MAP(LXSHM_CONSTANT)
#undef LXSHM_CONSTANT
  lua_pushliteral(L, "lxshm " LXSHM_VERSION);
  lua_setfield(L, -2, "_VERSION");
  lua_pushinteger(L, LXSHM__MAX_DEPTH);
  lua_setfield(L, -2, "MAX_DEPTH");
  return 1;
}

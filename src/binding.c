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

#define SCRATCH_KEEP (64u << 20) /* a handle keeps a copy buffer up to this size for reuse */

/* Every kind Lua sees. Adding a kind adds a line here. */
static const lxshm__class *const classes[] = {&lxshm__segment_class, &lxshm__queue_class,
                                              &lxshm__dict_class, &lxshm__topic_class};

/* ---- results ------------------------------------------------------------------------------ */

int lxshm__push_failure(lua_State *L, const char *who, lxshm_status st, const lxshm_error *err) {
  const char *cause = (err != NULL && err->message[0] != '\0') ? err->message : lxshm_strerror(st);
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", who, cause);
  lua_pushinteger(L, (lua_Integer)st);
  return 3;
}

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

static int noop(lua_State *L) {
  (void)L;
  return 0;
}

/* Calls a function, so that a pending hook runs; 1 with the error on the stack if it raised.
 * No lock is held during waits. */
static int interrupted(void *ud) {
  lua_State *L = (lua_State *)ud;
  lua_pushcfunction(L, noop);
  return lua_pcall(L, 0, 0, 0) != LUA_OK;
}

const lxshm__interrupt *lxshm__interrupt_for(lua_State *L, lxshm__interrupt *intr) {
  luaL_checkstack(L, 4, NULL); /* room for the call and its error, reserved before any lock */
  intr->check = interrupted;
  intr->ud = L;
  return intr;
}

/* ---- arguments ----------------------------------------------------------------------------- */

/* An object name argument. Raises if it is not a string; returns NULL after pushing the failure
 * triple (the name quoted, made printable and cut short) if it breaks SPEC §2. */
static const char *check_name(lua_State *L, int arg) {
  size_t len, i, shown;
  const char *name = luaL_checklstring(L, arg, &len);
  char quoted[48];
  lxshm_error err;

  if (lxshm__check_name(name, len) == LXSHM_OK)
    return name;
  shown = len < 40 ? len : 40;
  for (i = 0; i < shown; i++)
    quoted[i] = (name[i] >= 0x20 && name[i] < 0x7f) ? name[i] : '?';
  memcpy(quoted + shown, len > shown ? "..." : "", len > shown ? 4 : 1);
  lxshm__fail(&err, LXSHM_INVALID,
              "invalid name: use 1-%d characters from A-Z a-z 0-9 . _ -, not starting with . or -",
              LXSHM_NAME_MAX);
  lxshm__push_failure(L, lua_pushfstring(L, "\"%s\"", quoted), LXSHM_INVALID, &err);
  return NULL;
}

/* A size argument: raises if it is not a number; 0 for any number that is not a whole count of
 * bytes from 1 to LXSHM_SIZE_MAX (negative, fractional, NaN, infinite, huge). */
static uint64_t check_size(lua_State *L, int arg) {
  lua_Number x;
  if (lua_isinteger(L, arg)) {
    lua_Integer n = lua_tointeger(L, arg);
    return (n > 0 && (uint64_t)n <= LXSHM_SIZE_MAX) ? (uint64_t)n : 0;
  }
  x = luaL_checknumber(L, arg);
  return (x >= 1 && x <= (lua_Number)LXSHM_SIZE_MAX && x == floor(x)) ? (uint64_t)x : 0;
}

double lxshm__opt_timeout(lua_State *L, int arg) {
  lua_Number t;
  if (lua_isnoneornil(L, arg))
    return LXSHM_FOREVER;
  t = luaL_checknumber(L, arg);
  luaL_argcheck(L, t >= 0, arg, "timeout must be a number of seconds >= 0");
  return (double)t;
}

/* Octal digits, as in "0640", to a mode; -1 if s is not 1 to 4 octal digits. */
static long parse_octal(const char *s, size_t len) {
  long mode = 0;
  size_t i;
  if (len == 0 || len > 4)
    return -1;
  for (i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '7')
      return -1;
    mode = mode * 8 + (s[i] - '0');
  }
  return mode;
}

/* What an options table may say, by function. */
#define OPT_MODE 1u /* create, attach: { mode = 0x1a0 or "0640" } */
#define OPT_OPEN 2u /* open, attach: { readonly = true, trust = true } */

typedef struct options {
  unsigned mode;                  /* permission bits of a new object */
  unsigned flags;                 /* LXSHM_READONLY, LXSHM_TRUST */
  uint32_t params[LXSHM__PARAMS]; /* a new object's kind parameters (the class's options) */
} options;

static int is_key(const char *key, size_t len, const char *name) {
  return len == strlen(name) && memcmp(key, name, len) == 0;
}

static long check_mode(lua_State *L, int arg) {
  long mode = -1;
  if (lua_isinteger(L, -1) ||
      (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) == floor(lua_tonumber(L, -1)))) {
    lua_Number n = lua_tonumber(L, -1);
    mode = (n >= 0 && n <= 07777) ? (long)n : -1;
  }
  else if (lua_type(L, -1) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    mode = parse_octal(s, len);
  }
  luaL_argcheck(L, mode >= 0 && mode <= 0777, arg,
                "mode must be an integer from 0 to 0777 or an octal string like \"0640\"");
  return mode;
}

static unsigned check_flag(lua_State *L, int arg, const char *key, unsigned flag) {
  if (lua_type(L, -1) != LUA_TBOOLEAN)
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be a boolean", key));
  return lua_toboolean(L, -1) ? flag : 0;
}

/* The options table at arg (absent or nil: defaults), with the creation options of cls's kind
 * (NULL: none) where OPT_MODE is allowed. Unknown option names, and values of the wrong type or out
 * of range, raise like any other misuse of an argument. */
static options check_options(lua_State *L, int arg, unsigned allowed, const lxshm__class *cls) {
  options o;
  o.mode = LXSHM_DEFAULT_MODE;
  o.flags = 0;
  memset(o.params, 0, sizeof o.params);
  if (cls != NULL && cls->option != NULL)
    cls->option(L, NULL, 0, arg, o.params);
  if (lua_isnoneornil(L, arg))
    return o;
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, arg) != 0) {
    size_t len = 0;
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
    if (key != NULL && (allowed & OPT_MODE) && is_key(key, len, "mode"))
      o.mode = (unsigned)check_mode(L, arg);
    else if (key != NULL && (allowed & OPT_OPEN) && is_key(key, len, "readonly"))
      o.flags |= check_flag(L, arg, "readonly", LXSHM_READONLY);
    else if (key != NULL && (allowed & OPT_OPEN) && is_key(key, len, "trust"))
      o.flags |= check_flag(L, arg, "trust", LXSHM_TRUST);
    else if (key != NULL && (allowed & OPT_MODE) && cls != NULL && cls->option != NULL &&
             cls->option(L, key, len, arg, o.params))
      ;
    else
      luaL_argerror(
          L, arg,
          lua_pushfstring(L, "unknown option '%s'", key != NULL && strlen(key) == len ? key : "?"));
    lua_pop(L, 1);
  }
  return o;
}

/* ---- handles ------------------------------------------------------------------------------- */

static lxshm__handle *new_handle(lua_State *L, const lxshm__class *cls) {
  lxshm__handle *h = (lxshm__handle *)lxshm_newuserdata(L, sizeof *h, 1);
  memset(h, 0, sizeof *h);
  h->cls = cls;
  luaL_setmetatable(L, cls->mt);
  return h;
}

/* The handle at argument 1 whatever its state, if it is a handle of any kind; raises with the
 * usual "bad argument #1" otherwise, naming the class expected. */
static lxshm__handle *to_handle(lua_State *L, const lxshm__class *cls) {
  size_t i;
  if (cls != NULL)
    return (lxshm__handle *)luaL_checkudata(L, 1, cls->mt);
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

static int handle_tostring(lua_State *L) {
  lxshm__handle *h = to_handle(L, NULL);
  lua_pushfstring(L, "%s: %s ", h->cls->mt, h->name);
  if (h->closed)
    lua_pushliteral(L, "(closed)");
  else
    h->cls->describe(L, h);
  lua_concat(L, 2);
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

lxshm_status lxshm__copy_out(lua_State *L, size_t hint, lxshm__copy_fn copy, void *ctx, int raw,
                             lxshm_error *err) {
  char small[LXSHM__SMALL_VALUE], *buf = small;
  size_t cap = sizeof small, len = 0, need = hint;
  unsigned format = LXSHM__FORMAT_RAW;
  lxshm_status st;
  int on_stack = 0; /* a scratch buffer sits on the stack top */

  for (;;) {
    if (need > cap) {
      if (on_stack)
        lua_pop(L, 1);
      buf = lxshm__scratch_take(L, 1, need, &cap);
      on_stack = 1;
    }
    st = copy(ctx, buf, cap, &len, &format, err);
    if (st != LXSHM_INVALID_SIZE)
      break;
    need = len; /* the value is larger than we thought: copy again with room for it */
  }
  if (st == LXSHM_OK)
    st = lxshm__push_bytes(L, buf, len, raw ? LXSHM__FORMAT_RAW : format, err);
  if (on_stack) {
    if (st == LXSHM_OK || st == LXSHM__INTERRUPTED)
      lua_rotate(L, -2, 1); /* the buffer on top again, above the value or the error */
    lxshm__scratch_give(L, 1);
  }
  return st;
}

lxshm_status lxshm__push_bytes(lua_State *L, const char *p, size_t len, unsigned format,
                               lxshm_error *err) {
  if (format == LXSHM__FORMAT_RAW) {
    lua_pushlstring(L, p, len);
    return LXSHM_OK;
  }
  return lxshm__decode(L, p, len, err);
}

void lxshm__push_stat(lua_State *L, lxshm__handle *h, const lxshm__stat_field *fields, int n) {
  int i;
  lua_createtable(L, 0, n + 1);
  lua_pushstring(L, h->name);
  lua_setfield(L, -2, "name");
  for (i = 0; i < n; i++) {
    lua_pushinteger(L, (lua_Integer)fields[i].value);
    lua_setfield(L, -2, fields[i].key);
  }
}

const char *lxshm__format_u64(lua_State *L, uint64_t n) {
  char buf[24];
  snprintf(buf, sizeof buf, "%llu", (unsigned long long)n);
  lua_pushstring(L, buf);
  return lua_tostring(L, -1);
}

int lxshm__is_big_string(lua_State *L, int idx) {
  size_t n = lua_type(L, idx) == LUA_TSTRING ? lua_rawlen(L, idx) : 0;
  return n >= LXSHM__BIG_STRING && n <= UINT32_MAX;
}

/* ---- module functions ------------------------------------------------------------------------ */

enum verb { CREATE, OPEN, ATTACH };

/* lxshm.create{,_queue}(name, size [, opts]), lxshm.open{,_queue}(name [, opts]) and
 * lxshm.attach{,_queue}(name, size [, opts]) -> handle | nil, msg, code */
static int construct(lua_State *L, enum verb verb) {
  const lxshm__class *cls = (const lxshm__class *)lua_touserdata(L, lua_upvalueindex(2));
  const char *name = check_name(L, 1);
  uint64_t size = 0;
  lxshm__interrupt intr;
  lxshm__object *obj = NULL;
  lxshm__handle *h;
  lxshm_status st;
  lxshm_error err;
  options o;

  if (name == NULL)
    return 3;
  if (verb != OPEN)
    size = check_size(L, 2);
  o = check_options(L, verb == OPEN ? 2 : 3,
                    verb == CREATE ? OPT_MODE
                    : verb == OPEN ? OPT_OPEN
                                   : OPT_MODE | OPT_OPEN,
                    cls);
  if (verb != OPEN && size == 0) {
    lxshm__fail(&err, LXSHM_INVALID_SIZE, "size must be a whole number of bytes from 1 to %llu",
                (unsigned long long)LXSHM_SIZE_MAX);
    return lxshm__push_failure(L, name, LXSHM_INVALID_SIZE, &err);
  }
  h = new_handle(L, cls); /* before the core call: nothing to leak if this raises */
  if (verb == CREATE)
    st = lxshm__create(cls->kind, name, size, o.params, o.mode, &obj, &err);
  else if (verb == OPEN)
    st = lxshm__open(cls->kind, name, o.flags, lxshm__interrupt_for(L, &intr), &obj, &err);
  else
    st = lxshm__attach(cls->kind, name, size, o.params, o.mode, o.flags, &obj, NULL, &err);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, name, st, &err);
  h->obj = obj;
  h->size = obj->capacity;
  strcpy(h->name, obj->name);
  return 1;
}

static int mod_create(lua_State *L) {
  return construct(L, CREATE);
}

/* lxshm.open_any(name [, opts]) -> handle of whatever kind NAME is | nil, msg, code */
static int mod_open_any(lua_State *L) {
  const char *name = check_name(L, 1);
  lxshm__interrupt intr;
  lxshm__object *obj = NULL;
  lxshm__handle *h;
  lxshm_status st;
  lxshm_error err;
  options o;
  size_t i;

  if (name == NULL)
    return 3;
  o = check_options(L, 2, OPT_OPEN, NULL);
  h = new_handle(L, classes[0]); /* the class is set once the kind is known */
  st = lxshm__open(NULL, name, o.flags, lxshm__interrupt_for(L, &intr), &obj, &err);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, name, st, &err);
  for (i = 0; i < sizeof classes / sizeof classes[0]; i++)
    if (classes[i]->kind == obj->kind) {
      h->cls = classes[i];
      luaL_setmetatable(L, h->cls->mt);
    }
  h->obj = obj;
  h->size = obj->capacity;
  strcpy(h->name, obj->name);
  return 1;
}

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

static int mod_open(lua_State *L) {
  return construct(L, OPEN);
}

static int mod_attach(lua_State *L) {
  return construct(L, ATTACH);
}

/* lxshm.remove(name) -> true | nil, msg, code: any kind of object. */
static int mod_remove(lua_State *L) {
  const char *name = check_name(L, 1);
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
  const char *out;
  size_t len;
  lxshm_error err;
  lxshm_status st;

  luaL_checkany(L, 1);
  if (lxshm__is_big_string(L, 1)) {
    /* A big string alone: header .. s is one copy of its bytes instead of two (into the
     * encoder's buffer, then out of it). Same bytes as lxshm__encode makes. */
    unsigned char head[LXSHM__STRING_HEADER_MAX];
    const char *s = lua_tolstring(L, 1, &len);
    lua_settop(L, 1);
    lua_pushlstring(L, (const char *)head, lxshm__string_header(s, len, head));
    lua_insert(L, 1);
    lua_concat(L, 2);
    return 1;
  }
  st = lxshm__encode(L, lxshm__encoder_of(L), 1, SIZE_MAX, &out, &len, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, "encode", st, &err);
  lxshm__push_encoded(L, lxshm__encoder_of(L), out, len);
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

/* ---- registration -------------------------------------------------------------------------- */

static const luaL_Reg mod_funcs[] = {{"remove", mod_remove},
                                     {"open_any", mod_open_any},
                                     {"list", mod_list},
                                     {"strerror", mod_strerror},
                                     {"encode", mod_encode},
                                     {"decode", mod_decode},
                                     {NULL, NULL}};

static const luaL_Reg handle_methods[] = {
    {"close", handle_close}, {"name", handle_name}, {NULL, NULL}};

static const luaL_Reg handle_meta[] = {
    {"__gc", handle_gc}, {"__close", handle_close}, {"__tostring", handle_tostring}, {NULL, NULL}};

/* Creates the class's metatable, with an __index table of its methods and the shared ones, all
 * with the encoder (on the stack top) as upvalue 1. */
static void new_class(lua_State *L, const lxshm__class *cls) {
  luaL_newmetatable(L, cls->mt);
#if LUA_VERSION_NUM < 503
  lua_pushstring(L, cls->mt); /* 5.3 and later set __name themselves */
  lua_setfield(L, -2, "__name");
#endif
  luaL_setfuncs(L, handle_meta, 0);
  lua_newtable(L);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, handle_methods, 1);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, cls->methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

/* Adds create..suffix, open..suffix, attach..suffix for cls to the module table on the stack
 * top, the encoder just below it. */
static void add_constructors(lua_State *L, const lxshm__class *cls) {
  static const struct {
    const char *verb;
    lua_CFunction fn;
  } verbs[] = {{"create", mod_create}, {"open", mod_open}, {"attach", mod_attach}};
  size_t i;
  for (i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
    lua_pushfstring(L, "%s%s", verbs[i].verb, cls->suffix);
    lua_pushvalue(L, -3);
    lua_pushlightuserdata(L, (void *)cls);
    lua_pushcclosure(L, verbs[i].fn, 2);
    lua_settable(L, -3);
  }
}

LXSHM_API int luaopen_lxshm_core(lua_State *L);

LXSHM_API int luaopen_lxshm_core(lua_State *L) {
  size_t i;
  luaL_checkversion(L);
  lxshm__encoder_push(L); /* one per lua_State: every function gets it as upvalue 1 */
  for (i = 0; i < sizeof classes / sizeof classes[0]; i++)
    new_class(L, classes[i]);
  luaL_newlibtable(L, mod_funcs);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, mod_funcs, 1);
  for (i = 0; i < sizeof classes / sizeof classes[0]; i++)
    add_constructors(L, classes[i]);
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

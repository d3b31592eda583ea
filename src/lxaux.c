/* lxaux.c — lxshm's auxiliary Lua library: the helpers lxshm.core and lxshm.redis share (see
 * lxaux.h). Two channels, as in both modules: a wrong argument type raises through luaL_check*
 * and luaL_argerror; a failure a correct program can meet is the nil, "WHO: cause", code triple.
 * Nothing here holds a lock or calls a server, so anything here may raise. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lxaux.h"
#include "ring.h"

/* ---- results ------------------------------------------------------------------------------ */

int lxshm__push_failure(lua_State *L, const char *who, lxshm_status st, const lxshm_error *err) {
  const char *cause = (err != NULL && err->message[0] != '\0') ? err->message : lxshm_strerror(st);
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", who, cause);
  lua_pushinteger(L, (lua_Integer)st);
  return 3;
}

int lxshm__push_item_failure(lua_State *L, const char *who, lua_Integer item, lxshm_status st,
                             const lxshm_error *err) {
  const char *n = lxshm__format_u64(L, (uint64_t)item);
  return lxshm__push_failure(L, lua_pushfstring(L, "%s: item %s", who, n), st, err);
}

lxshm_status lxshm__push_bytes(lua_State *L, const char *p, size_t len, unsigned format,
                               lxshm_error *err) {
  size_t head = format == LXSHM__FORMAT_RAW ? 0 : lxshm__string_span(p, len);
  if (format == LXSHM__FORMAT_RAW || head > 0) { /* a string needs no decoder */
    lua_pushlstring(L, p + head, len - head);
    return LXSHM_OK;
  }
  return lxshm__decode(L, p, len, err);
}

const char *lxshm__format_u64(lua_State *L, uint64_t n) {
  char buf[24];
  snprintf(buf, sizeof buf, "%llu", (unsigned long long)n);
  lua_pushstring(L, buf);
  return lua_tostring(L, -1);
}

void lxshm__set_figures(lua_State *L, const char *names, const uint64_t *values) {
  const char *p = names;
  while (*p != '\0') {
    const char *end = strchr(p, ' ');
    size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
    if (n > 3 && memcmp(p + n - 3, "_ns", 3) == 0) { /* a time: seconds, without the suffix */
      lua_pushlstring(L, p, n - 3);
      lua_pushnumber(L, (lua_Number)*values++ / 1e9);
    }
    else {
      lua_pushlstring(L, p, n);
      lua_pushinteger(L, (lua_Integer)*values++);
    }
    lua_rawset(L, -3);
    p += n;
    while (*p == ' ')
      p++;
  }
}

void lxshm__push_handle_string(lua_State *L, const char *type, const char *name, int closed,
                               const char *description, uint64_t size, const char *shown) {
  int top = lua_gettop(L); /* the stat table, or whatever stands for it */
  const char *n = "?";
  if (closed)
    lua_pushfstring(L, "%s: %s (closed)", type, name);
  else {
    if (shown != NULL && lua_istable(L, top)) {
      lua_getfield(L, top, shown);
      if (lua_type(L, -1) == LUA_TNUMBER)
        n = lxshm__format_u64(L, (uint64_t)lua_tointeger(L, -1));
    }
    lua_pushfstring(L, "%s: %s ", type, name);
    lua_pushfstring(L, description, lxshm__format_u64(L, size), n);
    lua_remove(L, -2); /* the size */
    lua_concat(L, 2);
  }
  lua_replace(L, top);
  lua_settop(L, top);
}

void lxshm__push_subscription(lua_State *L, const char *name, const char *topic, int closed,
                              uint64_t next) {
  lua_pushfstring(L, "lxshm.subscription: %s%s%s ", name != NULL ? name : "",
                  name != NULL ? " on " : "", topic);
  if (closed)
    lua_pushliteral(L, "(closed)");
  else {
    lua_pushfstring(L, "(next %s)", lxshm__format_u64(L, next));
    lua_remove(L, -2);
  }
  lua_concat(L, 2);
}

/* ---- classes --------------------------------------------------------------------------------- */

void lxshm__new_class(lua_State *L, const char *mt, const char *type_name, const void *cls,
                      const luaL_Reg *meta, const luaL_Reg *shared, const luaL_Reg *own) {
  luaL_newmetatable(L, mt);
  lua_pushstring(L, type_name); /* 5.3 and later set __name to mt, which may differ */
  lua_setfield(L, -2, "__name");
  luaL_setfuncs(L, meta, 0);
  lua_newtable(L);
  if (shared != NULL) {
    lua_pushvalue(L, -3);
    lua_pushlightuserdata(L, (void *)cls);
    luaL_setfuncs(L, shared, 2);
  }
  lua_pushvalue(L, -3);
  lua_pushvalue(L, -3); /* the metatable */
  luaL_setfuncs(L, own, 2);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

void lxshm__add_constructors(lua_State *L, int encoder, const char *suffix, const void *cls,
                             const lua_CFunction verbs[3]) {
  static const char *const names[3] = {"create", "open", "attach"};
  int i;
  encoder = lua_absindex(L, encoder);
  for (i = 0; i < 3; i++) {
    lua_pushfstring(L, "%s%s", names[i], suffix);
    lua_pushvalue(L, encoder);
    lua_pushlightuserdata(L, (void *)cls);
    lua_pushcclosure(L, verbs[i], 2);
    lua_settable(L, -3);
  }
}

/* ---- arguments ---------------------------------------------------------------------------- */

const char *lxshm__check_name_arg(lua_State *L, int arg) {
  size_t len, i, shown;
  const char *name = luaL_checklstring(L, arg, &len);
  char quoted[48];
  lxshm_error err;

  if (lxshm__check_name(name, len, "", &err) == LXSHM_OK)
    return name;
  shown = len < 40 ? len : 40;
  for (i = 0; i < shown; i++)
    quoted[i] = (name[i] >= 0x20 && name[i] < 0x7f) ? name[i] : '?';
  memcpy(quoted + shown, len > shown ? "..." : "", len > shown ? 4 : 1);
  lxshm__push_failure(L, lua_pushfstring(L, "\"%s\"", quoted), LXSHM_INVALID, &err);
  return NULL;
}

/* A size argument: raises if it is not a number; 0 for any number that is not a whole count of
 * bytes from 1 to LXSHM_SIZE_MAX. */
static uint64_t check_size(lua_State *L, int arg) {
  lua_Number x;
  if (lua_isinteger(L, arg)) {
    lua_Integer n = lua_tointeger(L, arg);
    return (n > 0 && (uint64_t)n <= LXSHM_SIZE_MAX) ? (uint64_t)n : 0;
  }
  x = luaL_checknumber(L, arg);
  return (x >= 1 && x <= (lua_Number)LXSHM_SIZE_MAX && x == floor(x)) ? (uint64_t)x : 0;
}

const char *lxshm__check_constructor(lua_State *L, int at, lxshm__verb verb,
                                     lxshm__option_fn option, uint64_t *size, lxshm__options *o) {
  static const unsigned allowed[] = {LXSHM__OPT_MODE, LXSHM__OPT_OPEN,
                                     LXSHM__OPT_MODE | LXSHM__OPT_OPEN};
  const char *name = lxshm__check_name_arg(L, at);
  lxshm_error err;
  *size = 0;
  if (name == NULL)
    return NULL;
  if (verb != LXSHM__OPEN)
    *size = check_size(L, at + 1);
  *o = lxshm__check_options(L, verb == LXSHM__OPEN ? at + 1 : at + 2, allowed[verb], option);
  if (verb == LXSHM__OPEN || *size > 0)
    return name;
  lxshm__fail(&err, LXSHM_INVALID_SIZE, "size must be a whole number of bytes from 1 to %llu",
              (unsigned long long)LXSHM_SIZE_MAX);
  lxshm__push_failure(L, name, LXSHM_INVALID_SIZE, &err);
  return NULL;
}

/* An optional number of seconds >= 0 at arg; absent or nil is `none`. */
static double opt_seconds(lua_State *L, int arg, double none, const char *message) {
  lua_Number t;
  if (lua_isnoneornil(L, arg))
    return none;
  t = luaL_checknumber(L, arg);
  luaL_argcheck(L, t >= 0, arg, message);
  return (double)t;
}

double lxshm__opt_timeout(lua_State *L, int arg) {
  return opt_seconds(L, arg, LXSHM_FOREVER, "timeout must be a number of seconds >= 0");
}

double lxshm__opt_ttl(lua_State *L, int arg) {
  return opt_seconds(L, arg, 0, "ttl must be a number of seconds >= 0");
}

uint64_t lxshm__check_version(lua_State *L, int arg) {
  lua_Integer v = luaL_checkinteger(L, arg);
  luaL_argcheck(L, v >= 0, arg, "version must be >= 0");
  return (uint64_t)v;
}

lua_Integer lxshm__check_max_args(lua_State *L, double *timeout) {
  lua_Integer max = luaL_checkinteger(L, 2);
  *timeout = lxshm__opt_timeout(L, 3);
  luaL_argcheck(L, max >= 1, 2, "must be at least 1");
  lua_settop(L, 3);
  return max;
}

lua_Integer lxshm__check_list_args(lua_State *L, double *timeout) {
  luaL_checktype(L, 2, LUA_TTABLE);
  *timeout = lxshm__opt_timeout(L, 3);
  lua_settop(L, 3);
  if (lua_getmetatable(L, 2)) {
    lua_getfield(L, -1, "__len");
    lua_getfield(L, -2, "__index");
    luaL_argcheck(L, lua_isnil(L, -1) && lua_isnil(L, -2), 2,
                  "a list with __len or __index: pass a plain table");
    lua_settop(L, 3);
  }
  return (lua_Integer)lua_rawlen(L, 2);
}

static int noop(lua_State *L) {
  (void)L;
  return 0;
}

int lxshm__interrupted(lua_State *L) {
  lua_pushcfunction(L, noop);
  return lua_pcall(L, 0, 0, 0) != LUA_OK;
}

/* ---- options ------------------------------------------------------------------------------ */

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

int lxshm__is_key(const char *key, size_t len, const char *name) {
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

lxshm__options lxshm__check_options(lua_State *L, int arg, unsigned allowed,
                                    lxshm__option_fn option) {
  lxshm__options o;
  o.mode = LXSHM_DEFAULT_MODE;
  o.flags = 0;
  memset(o.params, 0, sizeof o.params);
  if (option != NULL)
    option(L, NULL, 0, arg, o.params);
  if (lua_isnoneornil(L, arg))
    return o;
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, arg) != 0) {
    size_t len = 0;
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
    if (key != NULL && (allowed & LXSHM__OPT_MODE) && lxshm__is_key(key, len, "mode"))
      o.mode = (unsigned)check_mode(L, arg);
    else if (key != NULL && (allowed & LXSHM__OPT_OPEN) && lxshm__is_key(key, len, "readonly"))
      o.flags |= check_flag(L, arg, "readonly", LXSHM_READONLY);
    else if (key != NULL && (allowed & LXSHM__OPT_OPEN) && lxshm__is_key(key, len, "trust"))
      o.flags |= check_flag(L, arg, "trust", LXSHM_TRUST);
    else if (key != NULL && (allowed & LXSHM__OPT_MODE) && option != NULL &&
             option(L, key, len, arg, o.params))
      ;
    else
      luaL_argerror(
          L, arg,
          lua_pushfstring(L, "unknown option '%s'", key != NULL && strlen(key) == len ? key : "?"));
    lua_pop(L, 1);
  }
  return o;
}

int lxshm__topic_option(lua_State *L, const char *key, size_t len, int arg, uint32_t *params) {
  lua_Number n;
  if (key == NULL) {
    params[0] = LXSHM_TOPIC_CURSORS;
    return 1;
  }
  if (!lxshm__is_key(key, len, "cursors"))
    return 0;
  n = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
  if (!(n >= 0 && n <= LXSHM_TOPIC_CURSORS_MAX && n == floor(n)))
    luaL_argerror(L, arg,
                  lua_pushfstring(L, "option 'cursors' must be an integer from 0 to %d",
                                  LXSHM_TOPIC_CURSORS_MAX));
  params[0] = (uint32_t)n;
  return 1;
}

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
      if (lxshm__is_key(s, len, "new"))
        return LXSHM_TOPIC_NEW;
      if (lxshm__is_key(s, len, "oldest"))
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

void lxshm__check_subscribe(lua_State *L, int arg, const char **name, size_t *len, uint64_t *from) {
  *name = NULL;
  *len = 0;
  *from = LXSHM_TOPIC_NEW;
  if (lua_type(L, arg) != LUA_TTABLE) {
    *from = check_from(L, arg, arg);
    return;
  }
  arg = lua_absindex(L, arg);
  lua_pushnil(L);
  while (lua_next(L, arg) != 0) {
    size_t klen = 0;
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
    if (key != NULL && lxshm__is_key(key, klen, "name")) {
      luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, arg, "name must be a string");
      *name = lua_tolstring(L, -1, len); /* stays valid: the table holds it */
    }
    else if (key != NULL && lxshm__is_key(key, klen, "from"))
      *from = check_from(L, -1, arg);
    else
      luaL_argerror(L, arg,
                    lua_pushfstring(L, "unknown option '%s'",
                                    key != NULL && strlen(key) == klen ? key : "?"));
    lua_pop(L, 1);
  }
  luaL_argcheck(L, *name != NULL, arg, "a named subscription needs a name");
}

/* ---- lists of values ------------------------------------------------------------------------ */

lxshm_status lxshm__encode_list(lua_State *L, int list, lua_Integer n, size_t limit,
                                lxshm__batch *l, lxshm_error *err) {
  char *buf = (char *)lua_touserdata(L, l->at);
  lua_Integer i;

  list = lua_absindex(L, list);
  l->item = 0;
  for (i = 1; i <= n;) {
    const char *out;
    size_t len, rec;
    lxshm_status st;
    lua_rawgeti(L, list, i);
    st = lxshm__encode(L, lxshm__encoder_of(L), -1, limit, &out, &len, err);
    lua_pop(L, 1);
    if (st != LXSHM_OK) {
      l->item = i;
      return st;
    }
    rec = (size_t)lxshm__record_size(len);
    if (l->used + rec > l->total)
      return lxshm__fail(err, LXSHM_INVALID_SIZE, "%lld %s %llu bytes", (long long)n, l->what,
                         (unsigned long long)l->total);
    if (l->used + rec > l->cap) {
      /* Growing allocates, which may run a finalizer that encodes: out may be stale after it,
       * so encode this value again. Twice the size, but no more than total. */
      size_t need = l->used + rec, want = l->cap * 2 > need ? l->cap * 2 : need;
      char *bigger;
      if (want > l->total)
        want = l->total > need ? (size_t)l->total : need;
      bigger = (char *)lxshm_newuserdata(L, want, 0);
      memcpy(bigger, buf, l->used);
      lua_replace(L, l->at);
      buf = bigger;
      l->cap = want;
      continue;
    }
    l->used += lxshm__record_put(buf + l->used, out, len, LXSHM__FORMAT_MSGPACK);
    i++;
  }
  return LXSHM_OK;
}

/* ---- dictionary keys ---------------------------------------------------------------------- */

static void key_integer(lxshm__keyarg *a, int64_t i) {
  memcpy(a->num, &i, 8);
  a->k.data = a->num;
  a->k.len = 8;
  a->k.type = LXSHM__KEY_INTEGER;
}

int lxshm__check_key(lua_State *L, const char *who, int arg, lxshm__keyarg *a) {
  switch (lua_type(L, arg)) {
    case LUA_TSTRING: {
      size_t len;
      a->k.data = lua_tolstring(L, arg, &len);
      a->k.len = len;
      a->k.type = LXSHM__KEY_STRING;
      if (len == 0 || len > LXSHM_DICT_KEY_MAX) {
        lxshm_error err;
        lxshm__fail(&err, LXSHM_INVALID_SIZE, "key of %zu bytes: keys are 1 to %d bytes", len,
                    LXSHM_DICT_KEY_MAX);
        lxshm__push_failure(L, who, LXSHM_INVALID_SIZE, &err);
        return 0;
      }
      return 1;
    }
    case LUA_TNUMBER: {
      lua_Number x;
      if (lua_isinteger(L, arg)) {
        key_integer(a, (int64_t)lua_tointeger(L, arg));
        return 1;
      }
      x = lua_tonumber(L, arg);
      luaL_argcheck(L, x == x, arg, "key is NaN");
      if (x == floor(x) && x >= -9223372036854775808.0 && x < 9223372036854775808.0) {
        key_integer(a, (int64_t)x);
        return 1;
      }
      {
        double dx = (double)x;
        memcpy(a->num, &dx, 8);
      }
      a->k.data = a->num;
      a->k.len = 8;
      a->k.type = LXSHM__KEY_FLOAT;
      return 1;
    }
    case LUA_TBOOLEAN:
      a->num[0] = (unsigned char)lua_toboolean(L, arg);
      a->k.data = a->num;
      a->k.len = 1;
      a->k.type = LXSHM__KEY_BOOLEAN;
      return 1;
    default:
      return luaL_argerror(L, arg,
                           lua_pushfstring(L, "key expected (string, number or boolean), got %s",
                                           luaL_typename(L, arg)));
  }
}

void lxshm__push_key(lua_State *L, unsigned type, const unsigned char *p, size_t len) {
  switch (type) {
    case LXSHM__KEY_INTEGER: {
      int64_t i;
      memcpy(&i, p, 8);
#if LXSHM_HAS_INTEGERS
      lua_pushinteger(L, (lua_Integer)i);
#else
      lua_pushnumber(L, (lua_Number)i);
#endif
      return;
    }
    case LXSHM__KEY_FLOAT: {
      double x;
      memcpy(&x, p, 8);
      lua_pushnumber(L, (lua_Number)x);
      return;
    }
    case LXSHM__KEY_BOOLEAN:
      lua_pushboolean(L, p[0] != 0);
      return;
    default:
      lua_pushlstring(L, (const char *)p, len);
  }
}

/* ---- incr's numbers ----------------------------------------------------------------------- */

/* A number for incr: an integer stays one. On runtimes without integers, a number with an
 * integral value within 2^53 counts as an integer, as the codec stores it. */
void lxshm__check_number(lua_State *L, int arg, lxshm__dict_number *n) {
  lua_Number x = luaL_checknumber(L, arg);
  n->i = 0;
  n->f = 0;
#if LXSHM_HAS_INTEGERS
  n->is_int = lua_isinteger(L, arg);
  if (n->is_int)
    n->i = (int64_t)lua_tointeger(L, arg);
  else
    n->f = (double)x;
#else
  n->is_int = x == floor(x) && x >= -9007199254740992.0 && x <= 9007199254740992.0;
  if (n->is_int)
    n->i = (int64_t)x;
  else
    n->f = (double)x;
#endif
}

void lxshm__push_number(lua_State *L, const lxshm__dict_number *n) {
#if LXSHM_HAS_INTEGERS
  if (n->is_int) {
    lua_pushinteger(L, (lua_Integer)n->i);
    return;
  }
#endif
  lua_pushnumber(L, n->is_int ? (lua_Number)n->i : (lua_Number)n->f);
}

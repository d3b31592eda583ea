/* compat.h — one Lua C API for Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT 2.1 (LUA_VERSION_NUM 501 to
 * 504). The binding and the codec are written against Lua 5.4's names; this header supplies
 * what an older runtime lacks, as small static functions with the 5.4 behaviour the project
 * relies on. Include it instead of lua.h and lauxlib.h. Nothing else of the project lives here. */
#ifndef LXSHM_COMPAT_H
#define LXSHM_COMPAT_H

#include <limits.h>
#include <math.h>

#include <lauxlib.h>
#include <lua.h>

/* LuaJIT 2.1 says 501 and is treated as Lua 5.1 throughout, so that a module built with either
 * one's headers loads into the other. */

/* 1 when numbers have an integer subtype (math.type, lua_isinteger): Lua 5.3 and later. */
#define LXSHM_HAS_INTEGERS (LUA_VERSION_NUM >= 503)

#ifndef LUA_OK
#define LUA_OK 0
#endif

/* ---- 5.1 and LuaJIT ------------------------------------------------------------------------ */
#if LUA_VERSION_NUM == 501

#define lua_rawlen(L, i) lua_objlen(L, (i))

static inline int lxshm_compat_absindex(lua_State *L, int i) {
  return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + 1 + i;
}
#define lua_absindex(L, i) lxshm_compat_absindex(L, (i))

/* LuaJIT 2.1 has these three, Lua 5.1 has not: a module built on LuaJIT's headers uses these
 * too, so that the same build also loads into Lua 5.1 (one lib/lua/5.1 for both). */
static inline void lxshm_compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup + 1, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++)
      lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}
#define luaL_setfuncs(L, l, n) lxshm_compat_setfuncs(L, (l), (n))

static inline void lxshm_compat_setmetatable(lua_State *L, const char *tname) {
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}
#define luaL_setmetatable(L, t) lxshm_compat_setmetatable(L, (t))

static inline void *lxshm_compat_testudata(lua_State *L, int i, const char *tname) {
  void *p = lua_touserdata(L, i);
  if (p == NULL || !lua_getmetatable(L, i))
    return NULL;
  luaL_getmetatable(L, tname);
  if (!lua_rawequal(L, -1, -2))
    p = NULL;
  lua_pop(L, 2);
  return p;
}
#define luaL_testudata(L, i, t) lxshm_compat_testudata(L, (i), (t))

#ifndef luaL_newlibtable
#define luaL_newlibtable(L, l) lua_createtable(L, 0, (int)(sizeof(l) / sizeof((l)[0]) - 1))
#endif

/* Tables keyed by a C address (a light userdata), as 5.2 has them. */
static inline int lxshm_compat_rawgetp(lua_State *L, int t, const void *p) {
  t = lua_absindex(L, t);
  lua_pushlightuserdata(L, (void *)p);
  lua_rawget(L, t);
  return lua_type(L, -1);
}
#define lua_rawgetp(L, t, p) lxshm_compat_rawgetp(L, (t), (p))

static inline void lxshm_compat_rawsetp(lua_State *L, int t, const void *p) {
  t = lua_absindex(L, t);
  lua_pushlightuserdata(L, (void *)p);
  lua_insert(L, -2);
  lua_rawset(L, t);
}
#define lua_rawsetp(L, t, p) lxshm_compat_rawsetp(L, (t), (p))

#endif /* 501 */

/* ---- up to 5.2 ------------------------------------------------------------------------------ */
#if LUA_VERSION_NUM <= 502

/* No integer subtype: every number is a float to lua_isinteger; callers classify values. */
#define lua_isinteger(L, i) 0

/* lua_rotate(L, idx, n): moves the elements from idx to the top n places towards the top
 * (n > 0) or -n places towards idx (n < 0), one lua_insert or remove-and-push at a time. */
static inline void lxshm_compat_rotate(lua_State *L, int idx, int n) {
  idx = lua_absindex(L, idx);
  for (; n > 0; n--)
    lua_insert(L, idx);
  for (; n < 0; n++) {
    lua_pushvalue(L, idx);
    lua_remove(L, idx);
  }
}
#define lua_rotate(L, i, n) lxshm_compat_rotate(L, (i), (n))

/* lua_rawgeti and lua_rawseti take an int index before 5.3: these take a lua_Integer, as 5.3's
 * do, and an index beyond int goes through lua_rawget/lua_rawset with the same key as a number.
 * lua_rawgeti returns the type of the value pushed, as from 5.3 on. */
static inline int lxshm_compat_bigkey(lua_State *L, int t, lua_Integer n) {
  t = lua_absindex(L, t);
  lua_pushnumber(L, (lua_Number)n);
  return t; /* the table's absolute index, with the key n pushed */
}

static inline int lxshm_compat_rawgeti(lua_State *L, int t, lua_Integer n) {
  if (n >= INT_MIN && n <= INT_MAX)
    lua_rawgeti(L, t, (int)n);
  else
    lua_rawget(L, lxshm_compat_bigkey(L, t, n));
  return lua_type(L, -1);
}
#define lua_rawgeti(L, t, n) lxshm_compat_rawgeti(L, (t), (n))

static inline void lxshm_compat_rawseti(lua_State *L, int t, lua_Integer n) {
  if (n >= INT_MIN && n <= INT_MAX)
    lua_rawseti(L, t, (int)n);
  else {
    t = lxshm_compat_bigkey(L, t, n);
    lua_insert(L, -2); /* below the value */
    lua_rawset(L, t);
  }
}
#define lua_rawseti(L, t, n) lxshm_compat_rawseti(L, (t), (n))

/* luaL_checkinteger with 5.3's meaning: a number with no integral value (or beyond what a
 * double holds exactly) raises "number has no integer representation" instead of being
 * truncated, so that a count of 1.5 is the same mistake on every runtime. */
static inline lua_Integer lxshm_compat_checkinteger(lua_State *L, int arg) {
  lua_Number n = luaL_checknumber(L, arg);
  if (!(n == floor(n) && n >= -9007199254740992.0 && n <= 9007199254740992.0))
    luaL_argerror(L, arg, "number has no integer representation");
  return (lua_Integer)n;
}
#undef luaL_checkinteger
#define luaL_checkinteger(L, arg) lxshm_compat_checkinteger(L, (arg))

#endif /* <= 502 */

#if LUA_VERSION_NUM < 502
#define luaL_checkversion(L) ((void)0)
#endif

/* ---- user values: 5.4 gives a userdata any number of them; older runtimes one table -------- */
#if LUA_VERSION_NUM >= 504

#define lxshm_newuserdata(L, size, nuv) lua_newuserdatauv(L, (size), (nuv))
#define lxshm_getuservalue(L, i, n) ((void)lua_getiuservalue(L, (i), (n)))
#define lxshm_setuservalue(L, i, n) ((void)lua_setiuservalue(L, (i), (n)))

#else

/* Before 5.4 the user values live in a table set as the userdata's environment (5.1) or user
 * value (5.2, 5.3), created with the userdata when it asks for any. */
#if LUA_VERSION_NUM == 501
#define lxshm_compat_getenv(L, i) lua_getfenv(L, (i))
#define lxshm_compat_setenv(L, i) ((void)lua_setfenv(L, (i)))
#else
#define lxshm_compat_getenv(L, i) lua_getuservalue(L, (i))
#define lxshm_compat_setenv(L, i) lua_setuservalue(L, (i))
#endif

static inline void *lxshm_newuserdata(lua_State *L, size_t size, int nuv) {
  void *p = lua_newuserdata(L, size);
  if (nuv > 0) {
    lua_createtable(L, nuv, 0);
    lxshm_compat_setenv(L, -2);
  }
  return p;
}

static inline void lxshm_getuservalue(lua_State *L, int i, int n) {
  i = lua_absindex(L, i);
  lxshm_compat_getenv(L, i);
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_rawgeti(L, -1, n);
    lua_remove(L, -2);
  }
  else {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

static inline void lxshm_setuservalue(lua_State *L, int i, int n) {
  i = lua_absindex(L, i);
  lxshm_compat_getenv(L, i);
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_insert(L, -2);
    lua_rawseti(L, -2, n);
  }
  else {
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

#endif

#endif

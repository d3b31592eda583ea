/* binding.c — the Lua module lxshm.core: module functions, the lxshm.segment userdata, argument
 * checks, and statuses turned into Lua results. A client of the core (lxshm.h, internal.h) and
 * the codec; no shared-memory logic lives here.
 *
 * Two channels, never mixed: a wrong argument type or a closed handle raises; a failure a
 * correct program can meet returns nil, "NAME: cause", code. Between taking a segment's lock and
 * releasing it, nothing here may raise: Lua runs under the lock only inside lua_pcall. */
#include <math.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "internal.h"

#define SEGMENT_MT "lxshm.segment"
#define SMALL_VALUE 1024            /* values up to this many bytes are copied on the C stack */
#define SCRATCH_KEEP (64u << 20)    /* a handle keeps a copy buffer up to this size for reuse */

/* A segment handle. Its user value 1 caches a full userdata used as a private copy buffer. */
typedef struct seg_ud {
  lxshm_segment *seg;            /* NULL once closed */
  int busy;                      /* inside update(fn): closing and relocking are refused */
  uint64_t size;                 /* capacity, kept for __tostring after close */
  char name[LXSHM_NAME_MAX + 1]; /* kept for messages after close */
} seg_ud;

/* ---- results ------------------------------------------------------------------------------ */

/* Pushes nil, "WHO: cause", code. The cause comes from err when the core gave one. */
static int push_failure(lua_State *L, const char *who, lxshm_status st, const lxshm_error *err) {
  const char *cause = (err != NULL && err->message[0] != '\0') ? err->message : lxshm_strerror(st);
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", who, cause);
  lua_pushinteger(L, (lua_Integer)st);
  return 3;
}

static int push_ok(lua_State *L, lxshm_status st, const char *who, const lxshm_error *err) {
  if (st != LXSHM_OK)
    return push_failure(L, who, st, err);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- arguments ----------------------------------------------------------------------------- */

/* A segment name argument. Raises if it is not a string; returns NULL after pushing the failure
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
  push_failure(L, lua_pushfstring(L, "\"%s\"", quoted), LXSHM_INVALID, &err);
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

static int bad_size(lua_State *L, const char *who) {
  lxshm_error err;
  lxshm__fail(&err, LXSHM_INVALID_SIZE, "size must be a whole number of bytes from 1 to %llu",
              (unsigned long long)LXSHM_SIZE_MAX);
  return push_failure(L, who, LXSHM_INVALID_SIZE, &err);
}

/* An optional timeout in seconds: absent or nil means no limit; otherwise a number >= 0 (inf is
 * no limit). A negative or NaN timeout is a programming error and raises. */
static double opt_timeout(lua_State *L, int arg) {
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

/* The options table of create/attach: { mode = 0x1a0 or "0640" }. Absent or nil: defaults.
 * Unknown option names and out-of-range modes raise, like any other misuse of an argument. */
static unsigned opt_mode(lua_State *L, int arg) {
  long mode = LXSHM_DEFAULT_MODE;
  if (lua_isnoneornil(L, arg))
    return (unsigned)mode;
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, arg) != 0) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    if (strcmp(key, "mode") != 0)
      luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s'", key));
    if (lua_isinteger(L, -1)) {
      mode = (long)lua_tointeger(L, -1);
    }
    else if (lua_type(L, -1) == LUA_TSTRING) {
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      mode = parse_octal(s, len);
    }
    else {
      mode = -1;
    }
    luaL_argcheck(L, mode >= 0 && mode <= 0777, arg,
                  "mode must be an integer from 0 to 0777 or an octal string like \"0640\"");
    lua_pop(L, 1);
  }
  return (unsigned)mode;
}

/* ---- segment handles ------------------------------------------------------------------------ */

static seg_ud *new_handle(lua_State *L) {
  seg_ud *ud = (seg_ud *)lua_newuserdatauv(L, sizeof *ud, 1);
  memset(ud, 0, sizeof *ud);
  luaL_setmetatable(L, SEGMENT_MT);
  return ud;
}

static void bind_handle(seg_ud *ud, lxshm_segment *seg) {
  ud->seg = seg;
  ud->size = lxshm_size(seg);
  strcpy(ud->name, lxshm_name(seg));
}

/* The handle at argument 1; raises if it is not a segment or is closed. */
static seg_ud *check_open(lua_State *L) {
  seg_ud *ud = (seg_ud *)luaL_checkudata(L, 1, SEGMENT_MT);
  if (ud->seg == NULL)
    luaL_error(L, "attempt to use a closed lxshm segment");
  return ud;
}

/* Raises for a lock this thread already holds (a write or update from inside update's fn): a
 * programming error, and raising is safe because the lock was not taken. */
static void check_not_busy(lua_State *L, seg_ud *ud) {
  if (ud->busy)
    luaL_error(L, "%s: segment is locked by its own update in progress", ud->name);
}

/* A private copy buffer of at least n bytes, pushed on the stack. The handle's cached buffer is
 * taken out of the cache while in use, so that a finalizer re-entering the handle (during a
 * decode's allocations) gets a buffer of its own. Raises only on memory errors. */
static char *scratch_take(lua_State *L, int handle, size_t n, size_t *cap) {
  lua_getiuservalue(L, handle, 1);
  if (lua_type(L, -1) == LUA_TUSERDATA && lua_rawlen(L, -1) >= n) {
    lua_pushnil(L);
    lua_setiuservalue(L, handle, 1);
  }
  else {
    size_t have = lua_type(L, -1) == LUA_TUSERDATA ? lua_rawlen(L, -1) : 0;
    size_t want = n > have + have / 2 ? n : have + have / 2; /* grow by half at least */
    lua_pop(L, 1);
    lua_newuserdatauv(L, (want + 4095) & ~(size_t)4095, 0);
  }
  *cap = lua_rawlen(L, -1);
  return (char *)lua_touserdata(L, -1);
}

/* Returns the buffer at the stack top to the handle's cache (or drops it if it is huge). */
static void scratch_give(lua_State *L, int handle) {
  if (lua_rawlen(L, -1) <= SCRATCH_KEEP)
    lua_setiuservalue(L, handle, 1);
  else
    lua_pop(L, 1);
}

/* Copies the current value and pushes it as a string (raw = 1) or as what it holds: the string
 * for a write(), the decoded value for a put(), nil before the first commit (raw = 0). Returns
 * the number of results. Takes no lock (unless writers keep overtaking the copy) and calls Lua
 * only once the copy is private. */
static int push_value(lua_State *L, seg_ud *ud, int raw) {
  char small[SMALL_VALUE], *buf = small;
  size_t cap = sizeof small, len;
  size_t need = (size_t)lxshm__used(ud->seg);
  uint64_t version;
  unsigned format;
  lxshm_status st;
  lxshm_error err;
  int on_stack = 0; /* a scratch buffer sits on the stack top */

  for (;;) {
    if (need > cap) {
      if (on_stack)
        lua_pop(L, 1);
      buf = scratch_take(L, 1, need, &cap);
      on_stack = 1;
    }
    st = lxshm__read(ud->seg, buf, cap, &len, &version, &format, &err);
    if (st != LXSHM_INVALID_SIZE)
      break;
    need = len; /* the value grew since we looked: copy again with room for it */
  }
  if (st != LXSHM_OK) {
    if (on_stack)
      scratch_give(L, 1);
    return push_failure(L, ud->name, st, &err);
  }
  if (raw || format == LXSHM__FORMAT_RAW) {
    if (!raw && version == 0)
      lua_pushnil(L);
    else
      lua_pushlstring(L, buf, len);
  }
  else {
    (void)0; /* decoding arrives with the codec */
  }
  if (on_stack) {
    lua_rotate(L, -2, 1); /* buffer on top again */
    scratch_give(L, 1);
  }
  return 1;
}

/* ---- module functions ------------------------------------------------------------------------ */

static int mod_create(lua_State *L) {
  const char *name = check_name(L, 1);
  uint64_t size;
  unsigned mode;
  lxshm_segment *seg;
  lxshm_status st;
  lxshm_error err;
  seg_ud *ud;

  if (name == NULL)
    return 3;
  size = check_size(L, 2);
  mode = opt_mode(L, 3);
  if (size == 0)
    return bad_size(L, name);
  ud = new_handle(L); /* before the core call: nothing to leak if this raises */
  st = lxshm_create(name, size, mode, &seg, &err);
  if (st != LXSHM_OK)
    return push_failure(L, name, st, &err);
  bind_handle(ud, seg);
  return 1;
}

static int mod_open(lua_State *L) {
  const char *name = check_name(L, 1);
  lxshm_segment *seg;
  lxshm_status st;
  lxshm_error err;
  seg_ud *ud;

  if (name == NULL)
    return 3;
  ud = new_handle(L);
  st = lxshm_open(name, &seg, &err);
  if (st != LXSHM_OK)
    return push_failure(L, name, st, &err);
  bind_handle(ud, seg);
  return 1;
}

static int mod_attach(lua_State *L) {
  const char *name = check_name(L, 1);
  uint64_t size;
  unsigned mode;
  lxshm_segment *seg;
  lxshm_status st;
  lxshm_error err;
  seg_ud *ud;

  if (name == NULL)
    return 3;
  size = check_size(L, 2);
  mode = opt_mode(L, 3);
  if (size == 0)
    return bad_size(L, name);
  ud = new_handle(L);
  st = lxshm_attach(name, size, mode, &seg, NULL, &err);
  if (st != LXSHM_OK)
    return push_failure(L, name, st, &err);
  bind_handle(ud, seg);
  return 1;
}

static int mod_remove(lua_State *L) {
  const char *name = check_name(L, 1);
  lxshm_error err;
  if (name == NULL)
    return 3;
  return push_ok(L, lxshm_remove(name, &err), name, &err);
}

/* strerror(code) -> description, NAME ("unknown status", "UNKNOWN" for other integers). */
static int mod_strerror(lua_State *L) {
  lxshm_status st = (lxshm_status)luaL_checkinteger(L, 1);
  lua_pushstring(L, lxshm_strerror(st));
  lua_pushstring(L, lxshm_status_name(st));
  return 2;
}

/* ---- segment methods --------------------------------------------------------------------------- */

static int seg_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lxshm_size(check_open(L)->seg));
  return 1;
}

static int seg_name(lua_State *L) {
  lua_pushstring(L, check_open(L)->name);
  return 1;
}

static int seg_version(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lxshm_version(check_open(L)->seg));
  return 1;
}

/* seg:write(s [, timeout]) -> true | nil, msg, code */
static int seg_write(lua_State *L) {
  seg_ud *ud = check_open(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  double timeout = opt_timeout(L, 3);
  lxshm_error err;
  lxshm_status st;

  check_not_busy(L, ud);
  st = lxshm__write(ud->seg, s, len, LXSHM__FORMAT_RAW, timeout, &err);
  if (st == LXSHM_INVALID) /* relocking from this thread through another handle */
    return luaL_error(L, "%s: %s", ud->name, err.message);
  return push_ok(L, st, ud->name, &err);
}

/* seg:read() -> the current value's bytes | nil, msg, code */
static int seg_read(lua_State *L) {
  seg_ud *ud = check_open(L);
  lua_settop(L, 1);
  return push_value(L, ud, 1);
}

/* seg:wait(version [, timeout]) -> new version | nil, msg, TIMEOUT */
static int seg_wait(lua_State *L) {
  seg_ud *ud = check_open(L);
  lua_Integer version = luaL_checkinteger(L, 2);
  double timeout = opt_timeout(L, 3);
  uint64_t now;
  lxshm_error err;
  lxshm_status st = lxshm_wait(ud->seg, (uint64_t)version, timeout, &now, &err);
  if (st != LXSHM_OK)
    return push_failure(L, ud->name, st, &err);
  lua_pushinteger(L, (lua_Integer)now);
  return 1;
}

/* seg:stat() -> { name, size, used, version, writer_pid, updated, waiters } */
static int seg_stat(lua_State *L) {
  seg_ud *ud = check_open(L);
  lxshm__stat st;
  lxshm__stat_get(ud->seg, &st);
  lua_createtable(L, 0, 7);
  lua_pushstring(L, ud->name);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, (lua_Integer)st.size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)st.used);
  lua_setfield(L, -2, "used");
  lua_pushinteger(L, (lua_Integer)st.version);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, (lua_Integer)st.writer_pid);
  lua_setfield(L, -2, "writer_pid");
  lua_pushnumber(L, (lua_Number)st.updated_ns / 1e9);
  lua_setfield(L, -2, "updated");
  lua_pushinteger(L, (lua_Integer)st.waiters);
  lua_setfield(L, -2, "waiters");
  return 1;
}

/* seg:close(), __gc, __close: unmaps; idempotent. Marks the handle dead before releasing it. */
static int seg_close(lua_State *L) {
  seg_ud *ud = (seg_ud *)luaL_checkudata(L, 1, SEGMENT_MT);
  lxshm_segment *seg = ud->seg;
  if (ud->busy)
    return luaL_error(L, "%s: cannot close a segment inside its own update", ud->name);
  ud->seg = NULL;
  lxshm_close(seg);
  lua_pushnil(L);
  lua_setiuservalue(L, 1, 1); /* drop the copy buffer with the mapping */
  return 0;
}

static int seg_tostring(lua_State *L) {
  seg_ud *ud = (seg_ud *)luaL_checkudata(L, 1, SEGMENT_MT);
  if (ud->seg == NULL)
    lua_pushfstring(L, "lxshm.segment: %s (closed)", ud->name);
  else
    lua_pushfstring(L, "lxshm.segment: %s (%I bytes)", ud->name, (lua_Integer)ud->size);
  return 1;
}

/* ---- registration -------------------------------------------------------------------------- */

static const luaL_Reg mod_funcs[] = {
    {"create", mod_create}, {"open", mod_open},         {"attach", mod_attach},
    {"remove", mod_remove}, {"strerror", mod_strerror}, {NULL, NULL}};

static const luaL_Reg seg_methods[] = {
    {"size", seg_size},   {"name", seg_name},   {"version", seg_version}, {"write", seg_write},
    {"read", seg_read},   {"wait", seg_wait},   {"stat", seg_stat},       {"close", seg_close},
    {NULL, NULL}};

static const luaL_Reg seg_meta[] = {
    {"__gc", seg_close}, {"__close", seg_close}, {"__tostring", seg_tostring}, {NULL, NULL}};

LXSHM_API int luaopen_lxshm_core(lua_State *L);

LXSHM_API int luaopen_lxshm_core(lua_State *L) {
  luaL_checkversion(L);
  luaL_newmetatable(L, SEGMENT_MT); /* also sets __name */
  luaL_setfuncs(L, seg_meta, 0);
  luaL_newlib(L, seg_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  luaL_newlib(L, mod_funcs);
#define LXSHM_CONSTANT(name, value, text)                                                         \
  lua_pushinteger(L, value);                                                                       \
  lua_setfield(L, -2, #name);
  LXSHM_STATUS_MAP(LXSHM_CONSTANT)
#undef LXSHM_CONSTANT
  lua_pushliteral(L, "lxshm " LXSHM_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}

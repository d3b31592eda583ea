/* binding.c — the Lua module lxshm.core: module functions, the lxshm.segment userdata, argument
 * checks, and statuses turned into Lua results. A client of the core (lxshm.h, internal.h) and
 * the codec; no shared-memory logic lives here.
 *
 * Two channels, never mixed: a wrong argument type or a closed handle raises; a failure a
 * correct program can meet returns nil, "NAME: cause", code. Between taking a segment's lock and
 * releasing it, nothing here may raise: Lua runs under the lock only inside lua_pcall. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "codec.h"
#include "internal.h"

#define SEGMENT_MT "lxshm.segment"
#define QUEUE_MT "lxshm.queue"
#define SMALL_VALUE 1024            /* values up to this many bytes are copied on the C stack */
#define SCRATCH_KEEP (64u << 20)    /* a handle keeps a copy buffer up to this size for reuse */

/* A segment handle. Its user value 1 caches a full userdata used as a private copy buffer. */
typedef struct seg_ud {
  lxshm_segment *seg;            /* NULL once closed */
  int busy;                      /* inside update(fn): closing and relocking are refused */
  uint64_t size;                 /* capacity, kept for __tostring after close */
  char name[LXSHM_NAME_MAX + 1]; /* kept for messages after close */
} seg_ud;

/* A queue handle. Its user value 1 caches a copy buffer, as a segment handle's does. */
typedef struct queue_ud {
  lxshm_queue *q;                /* NULL once closed */
  uint64_t size;                 /* ring bytes, kept for __tostring after close */
  char name[LXSHM_NAME_MAX + 1]; /* kept for messages after close */
} queue_ud;

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

/* The arguments of create, attach and create_queue: name, size [, options]. Returns 0 when they
 * are usable, else the number of results pushed (nil, msg, INVALID or INVALID_SIZE). Raises for
 * arguments of the wrong type and for malformed options. */
static int check_sized_args(lua_State *L, const char **name, uint64_t *size, unsigned *mode) {
  lxshm_error err;
  if ((*name = check_name(L, 1)) == NULL)
    return 3;
  *size = check_size(L, 2);
  *mode = opt_mode(L, 3);
  if (*size != 0)
    return 0;
  lxshm__fail(&err, LXSHM_INVALID_SIZE, "size must be a whole number of bytes from 1 to %llu",
              (unsigned long long)LXSHM_SIZE_MAX);
  return push_failure(L, *name, LXSHM_INVALID_SIZE, &err);
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

/* Pushes a large raw value, or a put() value that is one large string, with a single copy,
 * from the mapping straight into a new Lua string, and keeps it only if no writer overtook the
 * copy. Safe because Lua copies a string this long without hashing it (strings above 40 bytes
 * are hashed lazily, once complete), and because a torn header only picks which bytes of the
 * slot are copied. Returns 1 with the string pushed, or 0 (nothing pushed) to fall back to
 * push_value's path. */
static int push_large_raw(lua_State *L, seg_ud *ud, int raw) {
  int tries;
  for (tries = 0; tries < 4; tries++) {
    const char *data;
    size_t len, h = 0;
    uint64_t version;
    unsigned format;
    if (lxshm__view(ud->seg, &data, &len, &version, &format) != LXSHM_OK)
      continue;
    if (len <= SMALL_VALUE)
      return 0;
    if (!raw && format != LXSHM__FORMAT_RAW) {
      h = format == LXSHM__FORMAT_MSGPACK ? lxshm__string_span(data, len) : 0;
      if (h == 0)
        return 0;
    }
    lua_pushlstring(L, data + h, len - h);
    if (lxshm__view_valid(ud->seg, version))
      return 1;
    lua_pop(L, 1);
  }
  return 0;
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

  if (need > SMALL_VALUE && push_large_raw(L, ud, raw))
    return 1;
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
      lua_pushnil(L); /* nothing stored yet */
    else
      lua_pushlstring(L, buf, len);
  }
  else if ((st = lxshm__decode(L, buf, len, &err)) != LXSHM_OK) {
    if (on_stack)
      scratch_give(L, 1);
    return push_failure(L, ud->name, st, &err);
  }
  if (on_stack) {
    lua_rotate(L, -2, 1); /* buffer on top again */
    scratch_give(L, 1);
  }
  return 1;
}

/* ---- module functions ------------------------------------------------------------------------ */

/* Pushes the new segment handle for a core call's result, or its failure triple. */
static int push_segment(lua_State *L, seg_ud *ud, lxshm_status st, lxshm_segment *seg,
                        const char *name, const lxshm_error *err) {
  if (st != LXSHM_OK)
    return push_failure(L, name, st, err);
  bind_handle(ud, seg);
  return 1;
}

/* lxshm.create(name, size [, opts]) -> segment | nil, msg, code */
static int mod_create(lua_State *L) {
  const char *name;
  uint64_t size;
  unsigned mode;
  lxshm_segment *seg = NULL;
  lxshm_status st;
  lxshm_error err;
  seg_ud *ud;
  int n = check_sized_args(L, &name, &size, &mode);

  if (n != 0)
    return n;
  ud = new_handle(L); /* before the core call: nothing to leak if this raises */
  st = lxshm_create(name, size, mode, &seg, &err);
  return push_segment(L, ud, st, seg, name, &err);
}

/* lxshm.attach(name, size [, opts]) -> segment | nil, msg, code */
static int mod_attach(lua_State *L) {
  const char *name;
  uint64_t size;
  unsigned mode;
  lxshm_segment *seg = NULL;
  lxshm_status st;
  lxshm_error err;
  seg_ud *ud;
  int n = check_sized_args(L, &name, &size, &mode);

  if (n != 0)
    return n;
  ud = new_handle(L);
  st = lxshm_attach(name, size, mode, &seg, NULL, &err);
  return push_segment(L, ud, st, seg, name, &err);
}

/* lxshm.open(name) -> segment | nil, msg, code */
static int mod_open(lua_State *L) {
  const char *name = check_name(L, 1);
  lxshm_segment *seg = NULL;
  lxshm_status st;
  lxshm_error err;
  seg_ud *ud;

  if (name == NULL)
    return 3;
  ud = new_handle(L);
  st = lxshm_open(name, &seg, &err);
  return push_segment(L, ud, st, seg, name, &err);
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

/* Strings from this size on, when they are the whole value, skip the encoder: their header is
 * joined to their bytes (lxshm.encode, put). (get reads any stored value that is one string of
 * more than SMALL_VALUE bytes straight out of the mapping, whoever stored it.) */
#define BIG_STRING (64u << 10)

static int is_big_string(lua_State *L, int idx) {
  size_t n = lua_type(L, idx) == LUA_TSTRING ? lua_rawlen(L, idx) : 0;
  return n >= BIG_STRING && n <= UINT32_MAX;
}

/* lxshm.encode(v) -> bytes | nil, msg, UNSUPPORTED */
static int mod_encode(lua_State *L) {
  lxshm__encoder *enc = (lxshm__encoder *)lua_touserdata(L, lua_upvalueindex(1));
  const char *out;
  size_t len;
  lxshm_error err;
  lxshm_status st;

  luaL_checkany(L, 1);
  if (is_big_string(L, 1)) {
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
  st = lxshm__encode(L, enc, 1, SIZE_MAX, &out, &len, &err);
  if (st != LXSHM_OK)
    return push_failure(L, "encode", st, &err);
  lua_pushlstring(L, out, len);
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
  return st == LXSHM_OK ? 1 : push_failure(L, "decode", st, &err);
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
  st = lxshm__write(ud->seg, NULL, 0, s, len, LXSHM__FORMAT_RAW, timeout, &err);
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

/* seg:get() -> the current value: decoded if put() stored it, the string if write() did, nil
 * before the first commit | nil, msg, CORRUPT */
static int seg_get(lua_State *L) {
  seg_ud *ud = check_open(L);
  lua_settop(L, 1);
  return push_value(L, ud, 0);
}

/* seg:put(v [, timeout]) -> true | nil, msg, code. Encodes before taking the lock. */
static int seg_put(lua_State *L) {
  seg_ud *ud = check_open(L);
  lxshm__encoder *enc = (lxshm__encoder *)lua_touserdata(L, lua_upvalueindex(1));
  double timeout = opt_timeout(L, 3);
  const char *out;
  size_t len;
  lxshm_error err;
  lxshm_status st;

  luaL_checkany(L, 2);
  check_not_busy(L, ud);
  if (is_big_string(L, 2)) { /* its header, then its bytes straight from the Lua string */
    unsigned char head[LXSHM__STRING_HEADER_MAX];
    const char *s = lua_tolstring(L, 2, &len);
    size_t h = lxshm__string_header(s, len, head);
    if (h > ud->size || len > ud->size - h) /* refused as the encoder would, in its words */
      st = lxshm__fail(&err, LXSHM_INVALID_SIZE, "encoded value exceeds the limit of %llu bytes",
                       (unsigned long long)ud->size);
    else
      st = lxshm__write(ud->seg, head, h, s, len, LXSHM__FORMAT_MSGPACK, timeout, &err);
  }
  else {
    st = lxshm__encode(L, enc, 2, (size_t)ud->size, &out, &len, &err);
    if (st == LXSHM_OK) /* no Lua call between here and the commit: out stays valid */
      st = lxshm__write(ud->seg, NULL, 0, out, len, LXSHM__FORMAT_MSGPACK, timeout, &err);
  }
  if (st == LXSHM_INVALID)
    return luaL_error(L, "%s: %s", ud->name, err.message);
  return push_ok(L, st, ud->name, &err);
}

/* The part of update that runs under the lock, inside lua_pcall: decodes the current value,
 * calls fn with it, encodes and commits the result. Arguments: the handle, fn, the encoder.
 * Returns true, new value; or false, cause, code when the current value cannot be decoded or
 * the result cannot be stored (nothing is committed then). */
static int update_locked(lua_State *L) {
  seg_ud *ud = (seg_ud *)lua_touserdata(L, 1);
  lxshm__encoder *enc = (lxshm__encoder *)lua_touserdata(L, 3);
  const char *data, *out;
  size_t len, cap;
  unsigned format;
  lxshm_error err;
  lxshm_status st;

  lxshm__current_locked(ud->seg, &data, &len, &format);
  lua_settop(L, 2); /* handle, fn */
  if (lxshm_version(ud->seg) == 0) {
    lua_pushnil(L);
  }
  else if (format == LXSHM__FORMAT_RAW) {
    lua_pushlstring(L, data, len);
  }
  else {
    char *copy = scratch_take(L, 1, len, &cap); /* decode a private copy, as get does */
    memcpy(copy, data, len);
    st = lxshm__decode(L, copy, len, &err);
    if (st != LXSHM_OK) {
      lua_pushboolean(L, 0);
      lua_pushstring(L, err.message);
      lua_pushinteger(L, st);
      return 3;
    }
    lua_rotate(L, -2, 1);
    scratch_give(L, 1);
  }
  lua_call(L, 1, 1); /* fn(current): may raise; lua_pcall in seg_update catches it */
  st = lxshm__encode(L, enc, -1, (size_t)ud->size, &out, &len, &err);
  if (st == LXSHM_OK)
    st = lxshm__commit_locked(ud->seg, NULL, 0, out, len, LXSHM__FORMAT_MSGPACK, &err);
  if (st != LXSHM_OK) {
    lua_pushboolean(L, 0);
    lua_pushstring(L, err.message);
    lua_pushinteger(L, st);
    return 3;
  }
  lua_pushboolean(L, 1);
  lua_rotate(L, -2, 1);
  lua_pushnil(L);
  return 3;
}

/* seg:update(fn [, timeout]) -> new value | nil, msg, code. fn runs while this process holds the
 * lock; if it raises, nothing is stored, the lock is released and the error propagates. */
static int seg_update(lua_State *L) {
  seg_ud *ud = check_open(L);
  double timeout;
  lxshm_error err;
  lxshm_status st;
  int rc;

  luaL_checktype(L, 2, LUA_TFUNCTION);
  timeout = opt_timeout(L, 3);
  check_not_busy(L, ud);
  lua_settop(L, 2);
  luaL_checkstack(L, 8, NULL); /* room for the call below, reserved before locking */
  st = lxshm__lock(ud->seg, lxshm__deadline(timeout), &err);
  if (st == LXSHM_INVALID)
    return luaL_error(L, "%s: %s", ud->name, err.message);
  if (st != LXSHM_OK)
    return push_failure(L, ud->name, st, &err);
  /* From here to the unlock nothing may raise: Lua runs only inside the protected call, and the
   * pushes before it neither allocate nor fail. */
  ud->busy = 1;
  lua_pushcfunction(L, update_locked);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushlightuserdata(L, lua_touserdata(L, lua_upvalueindex(1)));
  rc = lua_pcall(L, 3, 3, 0);
  lxshm__unlock(ud->seg);
  ud->busy = 0;
  if (rc != LUA_OK)
    return lua_error(L); /* re-raise only once the lock is free */
  if (lua_toboolean(L, -3)) {
    lua_pop(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", ud->name, lua_tostring(L, -3));
  lua_pushvalue(L, -3);
  return 3;
}

static int noop(lua_State *L) {
  (void)L;
  return 0;
}

/* Between sleeps of a long wait: calls a Lua function, so that a pending hook runs (lua.c turns
 * Ctrl-C into a hook that raises "interrupted!"). Returns 1 with the error on the stack if it
 * raised. No lock is held during waits. */
static int wait_interrupted(void *ud) {
  lua_State *L = (lua_State *)ud;
  lua_pushcfunction(L, noop);
  return lua_pcall(L, 0, 0, 0) != LUA_OK;
}

/* seg:wait(version [, timeout]) -> new version | nil, msg, TIMEOUT */
static int seg_wait(lua_State *L) {
  seg_ud *ud = check_open(L);
  lua_Integer version = luaL_checkinteger(L, 2);
  double timeout = opt_timeout(L, 3);
  lxshm__interrupt intr = {wait_interrupted, L};
  uint64_t now;
  lxshm_error err;
  lxshm_status st;

  luaL_checkstack(L, 4, NULL);
  st = lxshm__wait(ud->seg, (uint64_t)version, timeout, &now, &intr, &err);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
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

/* ---- queues ------------------------------------------------------------------------------- */

static queue_ud *new_queue_handle(lua_State *L) {
  queue_ud *ud = (queue_ud *)lua_newuserdatauv(L, sizeof *ud, 1);
  memset(ud, 0, sizeof *ud);
  luaL_setmetatable(L, QUEUE_MT);
  return ud;
}

static void bind_queue(queue_ud *ud, lxshm_queue *q) {
  ud->q = q;
  ud->size = lxshm_queue_size(q);
  strcpy(ud->name, lxshm_queue_name(q));
}

static queue_ud *check_queue(lua_State *L) {
  queue_ud *ud = (queue_ud *)luaL_checkudata(L, 1, QUEUE_MT);
  if (ud->q == NULL)
    luaL_error(L, "attempt to use a closed lxshm queue");
  return ud;
}

/* Pushes the new queue handle for a core call's result, or its failure triple. */
static int push_queue(lua_State *L, queue_ud *ud, lxshm_status st, lxshm_queue *q,
                      const char *name, const lxshm_error *err) {
  if (st != LXSHM_OK)
    return push_failure(L, name, st, err);
  bind_queue(ud, q);
  return 1;
}

/* lxshm.create_queue(name, bytes [, opts]) -> queue | nil, msg, code */
static int mod_create_queue(lua_State *L) {
  const char *name;
  uint64_t size;
  unsigned mode;
  lxshm_queue *q = NULL;
  lxshm_status st;
  lxshm_error err;
  queue_ud *ud;
  int n = check_sized_args(L, &name, &size, &mode);

  if (n != 0)
    return n;
  ud = new_queue_handle(L);
  st = lxshm_queue_create(name, size, mode, &q, &err);
  return push_queue(L, ud, st, q, name, &err);
}

/* lxshm.open_queue(name) -> queue | nil, msg, code */
static int mod_open_queue(lua_State *L) {
  const char *name = check_name(L, 1);
  lxshm_queue *q = NULL;
  lxshm_status st;
  lxshm_error err;
  queue_ud *ud;

  if (name == NULL)
    return 3;
  ud = new_queue_handle(L);
  st = lxshm_queue_open(name, &q, &err);
  return push_queue(L, ud, st, q, name, &err);
}

/* q:push(v [, timeout]) -> true | nil, msg, code. Encodes before taking the lock; waits while
 * the queue is full (no limit by default, 0: not at all). */
static int queue_push(lua_State *L) {
  queue_ud *ud = check_queue(L);
  lxshm__encoder *enc = (lxshm__encoder *)lua_touserdata(L, lua_upvalueindex(1));
  double timeout = opt_timeout(L, 3);
  lxshm__interrupt intr = {wait_interrupted, L};
  size_t room = ud->size > 8 ? (size_t)ud->size - 8 : 0; /* a record's header takes 8 bytes */
  const char *out;
  size_t len;
  lxshm_error err;
  lxshm_status st;

  luaL_checkany(L, 2);
  luaL_checkstack(L, 4, NULL);
  st = lxshm__encode(L, enc, 2, room, &out, &len, &err);
  if (st == LXSHM_OK) /* no Lua call between here and the copy into the ring: out stays valid */
    st = lxshm__queue_push(ud->q, out, len, LXSHM__FORMAT_MSGPACK, timeout, &intr, &err);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  if (st == LXSHM_INVALID)
    return luaL_error(L, "%s: %s", ud->name, err.message);
  return push_ok(L, st, ud->name, &err);
}

/* Takes the oldest value (remove) or looks at it, and pushes it decoded; returns the number of
 * results (1, or 3 on failure). The copy is private before any Lua call. */
static int take_value(lua_State *L, queue_ud *ud, int remove, double timeout) {
  char small[SMALL_VALUE], *buf = small;
  size_t cap = sizeof small, len = 0;
  size_t need = lxshm__queue_front_length(ud->q);
  lxshm__interrupt intr = {wait_interrupted, L};
  unsigned format;
  lxshm_status st;
  lxshm_error err;
  int on_stack = 0;

  luaL_checkstack(L, 4, NULL);
  for (;;) {
    if (need > cap) {
      if (on_stack)
        lua_pop(L, 1);
      buf = scratch_take(L, 1, need, &cap);
      on_stack = 1;
    }
    st = lxshm__queue_take(ud->q, buf, cap, &len, &format, remove, timeout, &intr, &err);
    if (st != LXSHM_INVALID_SIZE)
      break;
    need = len; /* the value stayed queued: copy again with room for it */
  }
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  if (st == LXSHM_OK && format == LXSHM__FORMAT_RAW)
    lua_pushlstring(L, buf, len);
  else if (st == LXSHM_OK)
    st = lxshm__decode(L, buf, len, &err);
  if (on_stack) {
    if (st == LXSHM_OK)
      lua_rotate(L, -2, 1); /* buffer on top again */
    scratch_give(L, 1);
  }
  if (st != LXSHM_OK) {
    if (st == LXSHM_INVALID)
      return luaL_error(L, "%s: %s", ud->name, err.message);
    return push_failure(L, ud->name, st, &err);
  }
  return 1;
}

/* The first size of a batch's copy buffer (it grows up to the queue's size when needed). */
#define BATCH_BUFFER (64u << 10)

/* Replaces the copy buffer at stack index `at` (holding `used` bytes) with one of at least
 * `need` bytes, keeping its contents. Raises only on memory errors. */
static char *batch_grow(lua_State *L, int at, size_t used, size_t need, size_t limit,
                        size_t *cap) {
  size_t want = *cap * 2 > need ? *cap * 2 : need;
  char *old = (char *)lua_touserdata(L, at), *buf;
  if (want > limit)
    want = limit > need ? limit : need;
  buf = (char *)lua_newuserdatauv(L, want, 0);
  memcpy(buf, old, used);
  lua_replace(L, at);
  *cap = want;
  return buf;
}

/* q:push_many(list [, timeout]) -> true | nil, msg, code. Pushes list[1], ..., list[#list] as
 * one run: in order, next to each other, under one lock, with one wake-up; or nothing at all. */
static int queue_push_many(lua_State *L) {
  queue_ud *ud = check_queue(L);
  lxshm__encoder *enc = (lxshm__encoder *)lua_touserdata(L, lua_upvalueindex(1));
  lxshm__interrupt intr = {wait_interrupted, L};
  size_t room = ud->size > 8 ? (size_t)ud->size - 8 : 0, used = 0, cap;
  lxshm_status st = LXSHM_OK;
  lua_Integer i, n;
  int item_failed = 0; /* the failure is list[i]'s own: name it */
  double timeout;
  lxshm_error err;
  char *buf;

  luaL_checktype(L, 2, LUA_TTABLE);
  timeout = opt_timeout(L, 3);
  lua_settop(L, 3);
  luaL_checkstack(L, 8, NULL);
  n = (lua_Integer)lua_rawlen(L, 2);
  if (n == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  buf = scratch_take(L, 1, ud->size < BATCH_BUFFER ? (size_t)ud->size : BATCH_BUFFER, &cap);
  for (i = 1; i <= n;) {
    const char *out;
    size_t len, rec;
    lua_rawgeti(L, 2, i);
    st = lxshm__encode(L, enc, 5, room, &out, &len, &err);
    lua_pop(L, 1);
    if (st != LXSHM_OK) {
      item_failed = 1;
      break;
    }
    rec = lxshm__record_size(len);
    if (used + rec > ud->size) {
      st = lxshm__fail(&err, LXSHM_INVALID_SIZE, "%lld values take more than the queue's %llu "
                       "bytes", (long long)n, (unsigned long long)ud->size);
      break;
    }
    if (used + rec > cap) {
      /* Growing allocates, which may run a finalizer that encodes: out may be stale after it,
       * so encode this value again. */
      buf = batch_grow(L, 4, used, used + rec, (size_t)ud->size, &cap);
      continue;
    }
    used += lxshm__record_put(buf + used, out, len, LXSHM__FORMAT_MSGPACK);
    i++;
  }
  if (st == LXSHM_OK)
    st = lxshm__queue_push_records(ud->q, buf, used, (uint64_t)n, timeout, &intr, &err);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  scratch_give(L, 1);
  if (st == LXSHM_INVALID)
    return luaL_error(L, "%s: %s", ud->name, err.message);
  if (item_failed)
    return push_failure(L, lua_pushfstring(L, "%s: item %I", ud->name, (lua_Integer)i), st,
                        &err);
  return push_ok(L, st, ud->name, &err);
}

/* q:pop_many(max [, timeout]) -> values, n | nil, msg, code. Removes up to max of the oldest
 * values (at least one: waits while the queue is empty) under one lock; values[1..n] holds them
 * in order (a nil value leaves a hole). */
static int queue_pop_many(lua_State *L) {
  queue_ud *ud = check_queue(L);
  lua_Integer max = luaL_checkinteger(L, 2);
  double timeout = opt_timeout(L, 3);
  lxshm__interrupt intr = {wait_interrupted, L};
  size_t bytes = 0, cap, off = 0;
  uint64_t count = 0, k;
  lxshm_status st;
  lxshm_error err;
  char *buf;

  luaL_argcheck(L, max >= 1, 2, "must be at least 1");
  lua_settop(L, 3);
  luaL_checkstack(L, 8, NULL);
  buf = scratch_take(L, 1, ud->size < BATCH_BUFFER ? (size_t)ud->size : BATCH_BUFFER, &cap);
  for (;;) {
    st = lxshm__queue_take_records(ud->q, buf, cap, &bytes, &count, (uint64_t)max, timeout,
                                   &intr, &err);
    if (st != LXSHM_INVALID_SIZE)
      break;
    buf = batch_grow(L, 4, 0, bytes, bytes, &cap); /* the oldest value alone is larger */
  }
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  if (st != LXSHM_OK) {
    scratch_give(L, 1);
    if (st == LXSHM_INVALID)
      return luaL_error(L, "%s: %s", ud->name, err.message);
    return push_failure(L, ud->name, st, &err);
  }
  lua_createtable(L, count <= INT_MAX ? (int)count : 0, 0);
  for (k = 0; k < count && st == LXSHM_OK; k++) {
    const char *data;
    size_t len, rec;
    unsigned format;
    rec = lxshm__record_get(buf + off, bytes - off, &data, &len, &format);
    if (rec == 0)
      st = lxshm__fail(&err, LXSHM_CORRUPT, "record %llu of the batch is damaged",
                       (unsigned long long)k + 1);
    else if (format == LXSHM__FORMAT_RAW)
      lua_pushlstring(L, data, len);
    else
      st = lxshm__decode(L, data, len, &err);
    if (st == LXSHM_OK)
      lua_rawseti(L, 5, (lua_Integer)k + 1);
    off += rec;
  }
  if (st != LXSHM_OK) { /* the batch was taken; its values are lost with the damaged one */
    lua_settop(L, 4);
    scratch_give(L, 1);
    return push_failure(L, ud->name, st, &err);
  }
  lua_rotate(L, 4, 1); /* the buffer on top, above the values */
  scratch_give(L, 1);
  lua_pushinteger(L, (lua_Integer)count);
  return 2;
}

/* q:pop([timeout]) -> the oldest value | nil, msg, TIMEOUT when still empty */
static int queue_pop(lua_State *L) {
  queue_ud *ud = check_queue(L);
  double timeout = opt_timeout(L, 2);
  lua_settop(L, 1);
  return take_value(L, ud, 1, timeout);
}

/* q:peek() -> the oldest value, left in the queue | nil, msg, TIMEOUT when empty */
static int queue_peek(lua_State *L) {
  queue_ud *ud = check_queue(L);
  lua_settop(L, 1);
  return take_value(L, ud, 0, 0);
}

static int queue_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lxshm_queue_count(check_queue(L)->q));
  return 1;
}

static int queue_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lxshm_queue_size(check_queue(L)->q));
  return 1;
}

static int queue_used(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lxshm_queue_used(check_queue(L)->q));
  return 1;
}

static int queue_name(lua_State *L) {
  lua_pushstring(L, check_queue(L)->name);
  return 1;
}

/* q:stat() -> { name, size, used, count, pop_waiters, push_waiters } */
static int queue_stat(lua_State *L) {
  queue_ud *ud = check_queue(L);
  lxshm__queue_stat st;
  lxshm__queue_stat_get(ud->q, &st);
  lua_createtable(L, 0, 6);
  lua_pushstring(L, ud->name);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, (lua_Integer)st.size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)st.used);
  lua_setfield(L, -2, "used");
  lua_pushinteger(L, (lua_Integer)st.count);
  lua_setfield(L, -2, "count");
  lua_pushinteger(L, (lua_Integer)st.pop_waiters);
  lua_setfield(L, -2, "pop_waiters");
  lua_pushinteger(L, (lua_Integer)st.push_waiters);
  lua_setfield(L, -2, "push_waiters");
  return 1;
}

/* q:close(), __gc, __close: unmaps; idempotent. */
static int queue_close(lua_State *L) {
  queue_ud *ud = (queue_ud *)luaL_checkudata(L, 1, QUEUE_MT);
  lxshm_queue *q = ud->q;
  ud->q = NULL;
  lxshm_queue_close(q);
  lua_pushnil(L);
  lua_setiuservalue(L, 1, 1);
  return 0;
}

static int queue_tostring(lua_State *L) {
  queue_ud *ud = (queue_ud *)luaL_checkudata(L, 1, QUEUE_MT);
  if (ud->q == NULL)
    lua_pushfstring(L, "lxshm.queue: %s (closed)", ud->name);
  else
    lua_pushfstring(L, "lxshm.queue: %s (%I bytes, %I values)", ud->name, (lua_Integer)ud->size,
                    (lua_Integer)lxshm_queue_count(ud->q));
  return 1;
}

/* ---- registration -------------------------------------------------------------------------- */

static const luaL_Reg mod_funcs[] = {
    {"create", mod_create},
    {"open", mod_open},
    {"attach", mod_attach},
    {"remove", mod_remove},
    {"create_queue", mod_create_queue},
    {"open_queue", mod_open_queue},
    {"strerror", mod_strerror},
    {"encode", mod_encode},
    {"decode", mod_decode},
    {NULL, NULL}};

static const luaL_Reg seg_methods[] = {
    {"size", seg_size}, {"name", seg_name},     {"version", seg_version}, {"write", seg_write},
    {"read", seg_read}, {"put", seg_put},       {"get", seg_get},         {"update", seg_update},
    {"wait", seg_wait}, {"stat", seg_stat},     {"close", seg_close},     {NULL, NULL}};

static const luaL_Reg seg_meta[] = {
    {"__gc", seg_close}, {"__close", seg_close}, {"__tostring", seg_tostring}, {NULL, NULL}};

static const luaL_Reg queue_methods[] = {
    {"push", queue_push},
    {"pop", queue_pop},
    {"push_many", queue_push_many},
    {"pop_many", queue_pop_many},
    {"peek", queue_peek},
    {"count", queue_count},
    {"size", queue_size},
    {"used", queue_used},
    {"name", queue_name},
    {"stat", queue_stat},
    {"close", queue_close},
    {NULL, NULL}};

static const luaL_Reg queue_meta[] = {
    {"__gc", queue_close}, {"__close", queue_close}, {"__tostring", queue_tostring}, {NULL, NULL}};

/* Creates metatable `name` with `meta`, and an __index table of `methods` that get the encoder
 * (on the stack top) as upvalue 1. */
static void new_class(lua_State *L, const char *name, const luaL_Reg *meta,
                      const luaL_Reg *methods) {
  luaL_newmetatable(L, name); /* also sets __name */
  luaL_setfuncs(L, meta, 0);
  lua_newtable(L);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

LXSHM_API int luaopen_lxshm_core(lua_State *L);

LXSHM_API int luaopen_lxshm_core(lua_State *L) {
  luaL_checkversion(L);
  lxshm__encoder_push(L); /* one per lua_State: every function gets it as upvalue 1 */
  new_class(L, SEGMENT_MT, seg_meta, seg_methods);
  new_class(L, QUEUE_MT, queue_meta, queue_methods);

  luaL_newlibtable(L, mod_funcs);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, mod_funcs, 1);
#define LXSHM_CONSTANT(name, value, text)                                                         \
  lua_pushinteger(L, value);                                                                       \
  lua_setfield(L, -2, #name);
  LXSHM_STATUS_MAP(LXSHM_CONSTANT)
#undef LXSHM_CONSTANT
  lua_pushliteral(L, "lxshm " LXSHM_VERSION);
  lua_setfield(L, -2, "_VERSION");
  lua_pushinteger(L, LXSHM__MAX_DEPTH);
  lua_setfield(L, -2, "MAX_DEPTH");
  return 1;
}

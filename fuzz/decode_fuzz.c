/* decode_fuzz.c — libFuzzer target for the value decoder (src/codec.c), run under ASan+UBSan.
 * Every input must either decode or fail with LXSHM_CORRUPT and a message, leaving the stack as
 * it was; what decodes must encode again, decode again to an equal value (same sharing and
 * cycles), and respect an encoding limit exactly. Any other outcome aborts: a finding.
 *
 * Build and run from the repo root (fuzz/README.md):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c11 \
 *     -I/usr/include/lua5.4 -Isrc -o build/fuzz/decode_fuzz fuzz/decode_fuzz.c src/codec.c \
 *     src/status.c -llua5.4
 *   build/fuzz/decode_fuzz -max_total_time=60 -artifact_prefix=fuzz/findings/ fuzz/work fuzz/seeds
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static lxshm__encoder *enc; /* anchored in the registry by init() */

/* Deep equality with identity: tables of a map one-to-one onto tables of b. Table keys are
 * compared by count only (matching them is a search, too slow for a fuzzer). */
static const char deep_equal_src[] =
    "local eq\n"
    "local function scalar(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) == 'number' then\n"
    "    if math.type(a) ~= math.type(b) then return false end\n"
    "    if a ~= a then return b ~= b end\n"
    "    if a == 0 then return 1 / a == 1 / b end\n"
    "  end\n"
    "  return a == b\n"
    "end\n"
    "eq = function(a, b, ab, ba)\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then return scalar(a, b) end\n"
    "  if ab[a] ~= nil or ba[b] ~= nil then return ab[a] == b end\n"
    "  ab[a], ba[b] = b, a\n"
    "  local n, tk = 0, 0\n"
    "  for k, v in next, a do\n"
    "    n = n + 1\n"
    "    if type(k) == 'table' then tk = tk + 1\n"
    "    else\n"
    "      local w = rawget(b, k)\n"
    "      if w == nil or not eq(v, w, ab, ba) then return false end\n"
    "    end\n"
    "  end\n"
    "  for k in next, b do\n"
    "    n = n - 1\n"
    "    if type(k) == 'table' then tk = tk - 1 end\n"
    "  end\n"
    "  return n == 0 and tk == 0\n"
    "end\n"
    "return function(a, b) return eq(a, b, {}, {}) end\n";

static void finding(const char *what, const char *detail) {
  fprintf(stderr, "decode_fuzz: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  abort();
}

static void init(void) {
  L = luaL_newstate();
  if (L == NULL)
    finding("cannot create a Lua state", NULL);
  luaL_openlibs(L);
  if (luaL_loadstring(L, deep_equal_src) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
    finding("cannot load deep_equal", lua_tostring(L, -1));
  lua_setfield(L, LUA_REGISTRYINDEX, "lxshm.fuzz.deep_equal");
  enc = lxshm__encoder_push(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "lxshm.fuzz.encoder");
}

/* The checks, in a protected call (memory errors may raise): arguments are the input as a
 * light userdata and its size. */
static int check(lua_State *l) {
  const char *p = (const char *)lua_touserdata(l, 1);
  size_t n = (size_t)lua_tointeger(l, 2), len, len2;
  const char *out, *out2;
  char *copy;
  lxshm_error err;
  lxshm_status st;
  int top;

  lua_settop(l, 0);
  err.message[0] = '\0';
  st = lxshm__decode(l, p, n, &err);
  if (st != LXSHM_OK) {
    if (st != LXSHM_CORRUPT)
      finding("decode failed with a status other than CORRUPT", err.message);
    if (err.message[0] == '\0')
      finding("decode failed without a message", NULL);
    if (lua_gettop(l) != 0)
      finding("failed decode left values on the stack", err.message);
    return 0;
  }
  if (lua_gettop(l) != 1)
    finding("decode pushed other than one value", NULL);

  /* What decodes encodes, except a shared table that the encoder's traversal now meets first
   * at a deeper spot than the bytes placed it: then the depth limit may refuse it. */
  st = lxshm__encode(l, enc, 1, SIZE_MAX, &out, &len, &err);
  if (st == LXSHM_UNSUPPORTED && strstr(err.message, "nesting limit") != NULL)
    return 0;
  if (st != LXSHM_OK)
    finding("a decoded value does not encode", err.message);
  if (lua_gettop(l) != 1)
    finding("encode changed the stack", NULL);

  /* Private copy: the encoder's buffer is reused by the next encode. */
  copy = (char *)lua_newuserdatauv(l, len, 0);
  memcpy(copy, out, len);

  /* The limit is exact: one byte less is INVALID_SIZE, the same size gives the same bytes. */
  st = lxshm__encode(l, enc, 1, len - 1, &out2, &len2, &err);
  if (st != LXSHM_INVALID_SIZE)
    finding("encoding one byte over the limit did not fail with INVALID_SIZE", err.message);
  st = lxshm__encode(l, enc, 1, len, &out2, &len2, &err);
  if (st != LXSHM_OK || len2 != len || memcmp(out2, copy, len) != 0)
    finding("encoding at exactly the limit gave other bytes", err.message);

  top = lua_gettop(l);
  st = lxshm__decode(l, copy, len, &err);
  if (st != LXSHM_OK)
    finding("our own encoding does not decode", err.message);
  lua_getfield(l, LUA_REGISTRYINDEX, "lxshm.fuzz.deep_equal");
  lua_pushvalue(l, 1);
  lua_pushvalue(l, top + 1);
  lua_call(l, 2, 1);
  if (!lua_toboolean(l, -1))
    finding("decode(encode(v)) differs from v", NULL);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static unsigned long runs;
  if (L == NULL)
    init();
  lua_pushcfunction(L, check);
  lua_pushlightuserdata(L, (void *)data);
  lua_pushinteger(L, (lua_Integer)size);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL || strstr(msg, "not enough memory") == NULL)
      finding("a Lua error other than a memory error", msg);
  }
  lua_settop(L, 0);
  if (++runs % 256 == 0)
    lua_gc(L, LUA_GCCOLLECT);
  return 0;
}

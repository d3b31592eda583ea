/* dict.c — lxshm.dict on Redis: many keys in one object, each with a value, a version and an
 * optional expiry, within a capacity in bytes.
 *
 * Each dictionary key K is one Redis hash, BASE.."k:"..E, where E is K encoded ("s:" and the
 * bytes of a string, "i:" and the digits of an integer, "f:" and 17 digits of a float, "b:0"
 * or "b:1"): fields v (the value's MessagePack bytes) and n (its version). A TTL is the hash's
 * own expiry (PEXPIREAT), so Redis expires keys itself and a get is one plain HMGET. Beside the
 * keys: a sorted set BASE.."i" of every E scored by its expiry in ms (inf: none), which gives
 * count, keys and pairs (ZSCAN) without scanning the server; a hash BASE.."z" of the bytes each
 * key is charged (key + value + 64); the object's hash counts used bytes, versions (one counter
 * for the whole dictionary: a version never repeats), evictions and expirations. Every change
 * is one script. When a set finds no room it first reclaims expired keys, then evicts as Redis
 * evicts: it samples five keys and drops the one Redis says was idle longest (OBJECT IDLETIME;
 * OBJECT FREQ under an LFU policy). cas is a script comparing versions; incr and update read,
 * compute here and store with that compare-and-set, again on conflict. wait(k) blocks in XREAD
 * on a stream of that key (BASE.."w:"..E, made by the waiter, kept while anyone waits) that
 * every change of the key appends to, and on the stream flush_all appends to. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rx.h"

#define OVERHEAD 64 /* bytes a key is charged besides its key and value bytes */

static rx_handle *check(lua_State *L) {
  return rx_check(L, &rx_dict_class);
}

/* A method whose argument 2 is a key (const lxshm__keyarg *A): LXSHM__KEYED_METHOD. */
#define KEYED(FN, A) LXSHM__KEYED_METHOD(FN, rx_handle, check, A)

/* ---- scripts ---------------------------------------------------------------------------------
 * Every script: KEYS[1] the object's hash; ARGV[1] the incarnation, ARGV[2] BASE. */
/* The part every script starts with; no function is made here, since making closures costs a
 * script more than a command does. */
#define BASE                                                  \
  "local M = KEYS[1]\n"                                       \
  "local m = redis.call('HMGET', M, 'inc', 'size', 'used')\n" \
  "if m[1] ~= ARGV[1] then return {-1} end\n"                 \
  "local size, base = tonumber(m[2]), ARGV[2]\n"              \
  "local I, Z = KEYS[2], KEYS[3]\n"

/* Helpers for the less common paths: included where they are needed. */
#define HELPERS                                                                            \
  "local now_ms\n"                                                                         \
  "local function now()\n"                                                                 \
  "  if not now_ms then\n"                                                                 \
  "    local t = redis.call('TIME')\n"                                                     \
  "    now_ms = t[1] * 1000 + math.floor(t[2] / 1000)\n"                                   \
  "  end\n"                                                                                \
  "  return now_ms\n"                                                                      \
  "end\n"                                                                                  \
  "local function notify(e)\n"                                                             \
  "  redis.call('XADD', base .. 'w:' .. e, 'NOMKSTREAM', 'MAXLEN', 1, '*', 'c', 1)\n"      \
  "end\n"                                                                                  \
  "local function drop(e, why)\n"                                                          \
  "  local sz = tonumber(redis.call('HGET', Z, e) or 0)\n"                                 \
  "  redis.call('DEL', base .. 'k:' .. e)\n"                                               \
  "  redis.call('ZREM', I, e)\n"                                                           \
  "  redis.call('HDEL', Z, e)\n"                                                           \
  "  redis.call('HINCRBY', M, 'used', -sz)\n"                                              \
  "  if why then redis.call('HINCRBY', M, why, 1) end\n"                                   \
  "  notify(e)\n"                                                                          \
  "end\n"                                                                                  \
  "local function reclaim(max)\n"                                                          \
  "  local gone = redis.call('ZRANGEBYSCORE', I, '-inf', '(' .. now(), 'LIMIT', 0, max)\n" \
  "  for i = 1, #gone do drop(gone[i], 'expirations') end\n"                               \
  "  return #gone\n"                                                                       \
  "end\n"                                                                                  \
  "local function used() return tonumber(redis.call('HGET', M, 'used')) end\n"

#define PROLOGUE BASE HELPERS

/* ARGV: 3 E, 4 flags (a add, r replace, s safe, c compare version, k keep expiry, d delete),
 * 5 expected version, 6 ttl ms (0: none), 7 bytes charged, 8 value. Returns {1, version,
 * evicted}, {-1} removed, {-2} exists, {-3} no such key, {-4, version} conflict, {-5} full.
 * The key's hash keeps its version (n), the bytes it is charged (s) and its expiry in ms (x, ''
 * for none), so that replacing a value of the same size and expiry is five commands (the two
 * hashes read, the version, the value, the waiters' stream) and no function is made. */
static rx_script store_script = {
    BASE "local e, flags = ARGV[3], ARGV[4]\n"
         "local K = KEYS[4]\n"
         "local h = redis.call('HMGET', K, 'n', 's', 'x')\n"
         "local cur, oldx, inuse = h[1], h[3] or '', tonumber(m[3])\n"
         "if not cur and redis.call('HEXISTS', Z, e) == 1 then\n"
         "  " HELPERS "drop(e, 'expirations')\n"
         "  inuse = used()\n"
         "end\n"
         "local curv = cur and tonumber(cur) or 0\n"
         "if cur and string.find(flags, 'a', 1, true) then return {-2} end\n"
         "if not cur and string.find(flags, 'r', 1, true) then return {-3} end\n"
         "if string.find(flags, 'c', 1, true) and curv ~= tonumber(ARGV[5]) then\n"
         "  return {-4, curv}\n"
         "end\n"
         "if string.find(flags, 'd', 1, true) then\n"
         "  if cur then\n"
         "    " HELPERS "drop(e)\n"
         "    redis.call('HINCRBY', M, 'ver', 1)\n"
         "  end\n"
         "  return {1, 0, 0}\n"
         "end\n"
         "local need = tonumber(ARGV[7])\n"
         "local old = cur and tonumber(h[2]) or 0\n"
         "local evicted = 0\n"
         "if inuse - old + need > size then\n"
         "  " HELPERS "reclaim(100000)\n"
         "  while used() - old + need > size do\n"
         "    if string.find(flags, 's', 1, true) then return {-5} end\n"
         "    local c = redis.call('ZRANDMEMBER', I, 5)\n"
         "    local best, score\n"
         "    for i = 1, #c do\n"
         "      if c[i] ~= e then\n"
         "        local k = base .. 'k:' .. c[i]\n"
         "        local s\n"
         "        if redis.call('EXISTS', k) == 0 then s = math.huge\n"
         "        else\n"
         "          local r = redis.pcall('OBJECT', 'IDLETIME', k)\n"
         "          if type(r) == 'number' then s = r\n"
         "          else\n"
         "            r = redis.pcall('OBJECT', 'FREQ', k)\n"
         "            s = type(r) == 'number' and -r or 0\n"
         "          end\n"
         "        end\n"
         "        if not best or s > score then best, score = c[i], s end\n"
         "      end\n"
         "    end\n"
         "    if not best then return {-5} end\n"
         "    if score == math.huge then drop(best, 'expirations')\n"
         "    else drop(best, 'evictions'); evicted = evicted + 1 end\n"
         "  end\n"
         "end\n"
         "local ver = redis.call('HINCRBY', M, 'ver', 1)\n"
         "local ttl, x = tonumber(ARGV[6]), ''\n"
         "if ttl > 0 then\n"
         "  local t = redis.call('TIME')\n"
         "  x = string.format('%.0f', t[1] * 1000 + math.floor(t[2] / 1000) + ttl)\n"
         "elseif cur and string.find(flags, 'k', 1, true) then\n"
         "  x = oldx\n"
         "end\n"
         "redis.call('HSET', K, 'v', ARGV[8], 'n', ver, 's', need, 'x', x)\n"
         "if x ~= '' then\n"
         "  if x ~= oldx or not cur then redis.call('PEXPIREAT', K, x) end\n"
         "elseif cur and oldx ~= '' then\n"
         "  redis.call('PERSIST', K)\n"
         "end\n"
         "if not cur or x ~= oldx then redis.call('ZADD', I, x == '' and '+inf' or x, e) end\n"
         "if not cur or need ~= old then\n"
         "  redis.call('HSET', Z, e, need)\n"
         "  redis.call('HINCRBY', M, 'used', need - old)\n"
         "end\n"
         "redis.call('XADD', base .. 'w:' .. e, 'NOMKSTREAM', 'MAXLEN', 1, '*', 'c', 1)\n"
         "return {1, ver, evicted}\n",
    ""};

/* ARGV: 3 E, 4 ttl ms (0: none). {1} or {-3} no such key. */
static rx_script expire_script = {
    PROLOGUE "local e = ARGV[3]\n"
             "local K = KEYS[4]\n"
             "if redis.call('EXISTS', K) == 0 then\n"
             "  if redis.call('HEXISTS', Z, e) == 1 then drop(e, 'expirations') end\n"
             "  return {-3}\n"
             "end\n"
             "local ttl = tonumber(ARGV[4])\n"
             "if ttl > 0 then\n"
             "  redis.call('PEXPIREAT', K, now() + ttl)\n"
             "  redis.call('ZADD', I, now() + ttl, e)\n"
             "  redis.call('HSET', K, 'x', now() + ttl)\n"
             "else\n"
             "  redis.call('PERSIST', K)\n"
             "  redis.call('ZADD', I, '+inf', e)\n"
             "  redis.call('HSET', K, 'x', '')\n"
             "end\n"
             "return {1}\n",
    ""};

/* ARGV: 3 E, 4 version, 5 ms the key's wait stream must live at least. {1, version} when the
 * version differs; else {0, version, stream id, flush stream id, PTTL of the key}. */
static rx_script wait_script = {
    PROLOGUE
    "local e = ARGV[3]\n"
    "local cur = tonumber(redis.call('HGET', base .. 'k:' .. e, 'n') or 0)\n"
    "if cur ~= tonumber(ARGV[4]) then return {1, cur} end\n"
    "local W = base .. 'w:' .. e\n"
    "local last = redis.call('XREVRANGE', W, '+', '-', 'COUNT', 1)\n"
    "local id\n"
    "if #last == 0 then id = redis.call('XADD', W, 'MAXLEN', 1, '*', 'c', 1)\n"
    "else id = last[1][1] end\n"
    "if redis.call('PTTL', W) < tonumber(ARGV[5]) then redis.call('PEXPIRE', W, ARGV[5]) end\n"
    "local f = redis.call('XREVRANGE', base .. 'f', '+', '-', 'COUNT', 1)\n"
    "return {0, cur, id, #f > 0 and f[1][1] or '0-0', redis.call('PTTL', base .. 'k:' .. e)}\n",
    ""};

/* ARGV: 3 max (0: all). {1, E…} of the present keys. */
static rx_script keys_script = {
    BASE
    "local max, t = tonumber(ARGV[3]), redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local r = redis.call('ZRANGEBYSCORE', I, now, '+inf', 'LIMIT', 0, max > 0 and max or -1)\n"
    "table.insert(r, 1, 1)\n"
    "return r\n",
    ""};

/* ARGV: 3 cursor, 4 count. {1, next cursor, E, value, E, value…}. */
static rx_script scan_script = {
    BASE "local t = redis.call('TIME')\n"
         "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
         "local r = redis.call('ZSCAN', I, ARGV[3], 'COUNT', tonumber(ARGV[4]))\n"
         "local out, list = {1, r[1]}, r[2]\n"
         "for i = 1, #list, 2 do\n"
         "  if tonumber(list[i + 1]) >= now then\n"
         "    local v = redis.call('HGET', base .. 'k:' .. list[i], 'v')\n"
         "    if v then out[#out + 1] = list[i]; out[#out + 1] = v end\n"
         "  end\n"
         "end\n"
         "return out\n",
    ""};

/* ARGV: 3 what ("count", "free", "flush", "expired" with 4 max, "stat", "check"). */
static rx_script whole_script = {
    PROLOGUE
    "local what = ARGV[3]\n"
    "if what == 'count' then return {1, redis.call('ZCOUNT', I, now(), '+inf')} end\n"
    "if what == 'free' then\n"
    "  if ARGV[4] == '1' then reclaim(100000) end\n"
    "  return {1, size - used()}\n"
    "end\n"
    "if what == 'expired' then\n"
    "  local max = tonumber(ARGV[4])\n"
    "  return {1, reclaim(max > 0 and max or -1)}\n"
    "end\n"
    "if what == 'flush' then\n"
    "  local all = redis.call('ZRANGE', I, 0, -1)\n"
    "  for i = 1, #all do\n"
    "    redis.call('DEL', base .. 'k:' .. all[i])\n"
    "    notify(all[i])\n"
    "  end\n"
    "  redis.call('DEL', I, Z)\n"
    "  redis.call('HSET', M, 'used', 0)\n"
    "  redis.call('HINCRBY', M, 'ver', 1)\n"
    "  redis.call('XADD', base .. 'f', 'MAXLEN', 1, '*', 'c', 1)\n"
    "  return {1, #all}\n"
    "end\n"
    "local s = redis.call('HMGET', M, 'used', 'evictions', 'expirations', 'ver')\n"
    "if what == 'stat' then\n"
    "  return {1, size, tonumber(s[1]), redis.call('ZCOUNT', I, now(), '+inf'), tonumber(s[2]),\n"
    "    tonumber(s[3]), tonumber(s[4])}\n"
    "end\n"
    "local n, nz = redis.call('ZCARD', I), redis.call('HLEN', Z)\n"
    "if n ~= nz then\n"
    "  return {0, 'the index holds ' .. n .. ' keys, the sizes ' .. nz}\n"
    "end\n"
    "local all, sum, ver = redis.call('ZRANGE', I, 0, -1, 'WITHSCORES'), 0, tonumber(s[4])\n"
    "for i = 1, #all, 2 do\n"
    "  local e, score = all[i], tonumber(all[i + 1])\n"
    "  local sz = tonumber(redis.call('HGET', Z, e))\n"
    "  if not sz or sz <= 0 then return {0, 'key ' .. e .. ' has no size'} end\n"
    "  sum = sum + sz\n"
    "  if score >= now() then\n"
    "    local K = base .. 'k:' .. e\n"
    "    local h = redis.call('HMGET', K, 'v', 'n')\n"
    "    if not h[1] or not h[2] then\n"
    "      return {0, 'key ' .. e .. ' lost its value before its expiry (evicted by Redis?)'}\n"
    "    end\n"
    "    local v = tonumber(h[2])\n"
    "    if not v or v < 1 or v > ver then\n"
    "      return {0, 'key ' .. e .. ' has version ' .. h[2] .. ', the last given is ' .. ver}\n"
    "    end\n"
    "    local pttl = redis.call('PTTL', K)\n"
    "    if (score == math.huge) ~= (pttl == -1) then\n"
    "      return {0, 'key ' .. e .. ': its expiry and the index disagree'}\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if sum ~= tonumber(s[1]) then\n"
    "  return {0, 'used says ' .. s[1] .. ' bytes, the keys are charged ' .. sum}\n"
    "end\n"
    "return {1, 1}\n",
    ""};

/* ---- keys --------------------------------------------------------------------------------- */

/* Pushes the encoded key E of a key argument checked by lxshm__check_key. */
static void push_enc(lua_State *L, const lxshm__keyarg *a) {
  char buf[40];
  int64_t i;
  double x;
  switch (a->k.type) {
    case LXSHM__KEY_STRING: {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      luaL_addlstring(&b, "s:", 2);
      luaL_addlstring(&b, (const char *)a->k.data, a->k.len);
      luaL_pushresult(&b);
      return;
    }
    case LXSHM__KEY_BOOLEAN:
      lua_pushstring(L, a->num[0] ? "b:1" : "b:0");
      return;
    case LXSHM__KEY_INTEGER:
      memcpy(&i, a->num, 8);
      snprintf(buf, sizeof buf, "i:%lld", (long long)i);
      break;
    default:
      memcpy(&x, a->num, 8);
      snprintf(buf, sizeof buf, "f:%.17g", x);
  }
  lua_pushstring(L, buf);
}

/* Pushes the Lua key an encoded key E stands for. */
static void push_key(lua_State *L, const char *e, size_t len) {
  unsigned char num[8];
  if (len >= 2 && e[0] == 'i' && e[1] == ':') {
    int64_t i = (int64_t)strtoll(e + 2, NULL, 10);
    memcpy(num, &i, 8);
    lxshm__push_key(L, LXSHM__KEY_INTEGER, num, 8);
  }
  else if (len >= 2 && e[0] == 'f' && e[1] == ':') {
    double x = strtod(e + 2, NULL);
    memcpy(num, &x, 8);
    lxshm__push_key(L, LXSHM__KEY_FLOAT, num, 8);
  }
  else if (len >= 2 && e[0] == 'b' && e[1] == ':') {
    num[0] = len > 2 && e[2] == '1';
    lxshm__push_key(L, LXSHM__KEY_BOOLEAN, num, 1);
  }
  else
    lua_pushlstring(L, len >= 2 ? e + 2 : e, len >= 2 ? len - 2 : len);
}

/* Pushes BASE .. part .. E (E at stack index enc). */
static const char *push_name(lua_State *L, rx_handle *h, const char *part, int enc, size_t *n) {
  luaL_Buffer b;
  size_t el;
  const char *e = lua_tolstring(L, enc, &el);
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, h->base, h->baselen);
  luaL_addstring(&b, part);
  luaL_addlstring(&b, e, el);
  luaL_pushresult(&b);
  return lua_tolstring(L, -1, n);
}

/* Pushes E, then K = BASE.."k:"..E and W = BASE.."w:"..E, for a checked key; returns the index
 * of E (K and W follow it). */
static int push_names(lua_State *L, rx_handle *h, const lxshm__keyarg *a) {
  int e;
  push_enc(L, a);
  e = lua_gettop(L);
  push_name(L, h, "k:", e, NULL);
  push_name(L, h, "w:", e, NULL);
  return e;
}

/* An optional TTL in ms for a script: 0 for none, at least 1 for any positive TTL. */
static long long ttl_ms(double ttl) {
  double ms = ttl * 1000;
  if (ttl <= 0)
    return 0;
  if (ms < 1)
    return 1;
  return ms > 9e15 ? (long long)9e15 : (long long)(ms + 0.5);
}

static void check_not_updating(lua_State *L, rx_handle *h) {
  rx_check_not_updating(L, h, "dictionary");
}

/* What every change of the key a does first: refuses one inside this dictionary's update (raises)
 * and one through a read-only handle (PERMISSION), with the stack cut to `top` and then the key's
 * names (top + 1 E, K, W) and *box (top + 4) pushed. */
static lxshm_status begin_change(lua_State *L, rx_handle *h, const lxshm__keyarg *a, int top,
                                 redisReply ***box, lxshm_error *err) {
  check_not_updating(L, h);
  lua_settop(L, top);
  push_names(L, h, a);
  *box = rx_box_new(L);
  return h->readonly ? rx_refuse_readonly(h, err) : LXSHM_OK;
}

/* ---- commands ------------------------------------------------------------------------------- */

/* Starts a script call: KEYS the object's hash, the index, the sizes and (names > 0) the key's
 * K and W, at stack indices names + 1 and names + 2; then ARGV inc and BASE. Declaring every key
 * a script touches lets a Cluster redirect it (ASK) or hold it back (TRYAGAIN) while the slot
 * migrates; only eviction's victims and flush_all's keys cannot be named in advance. */
static void script_args(rx_cmd *cmd, rx_script *s, rx_handle *h, lua_State *L, int names) {
  rx_script_cmd(cmd, s, names > 0 ? 5 : 3);
  rx_arg_str(cmd, h->meta);
  rx_arg_key(cmd, h, "i");
  rx_arg_key(cmd, h, "z");
  if (names > 0) {
    size_t n;
    const char *k = lua_tolstring(L, names + 1, &n);
    rx_arg(cmd, k, n);
    k = lua_tolstring(L, names + 2, &n);
    rx_arg(cmd, k, n);
  }
  rx_arg_str(cmd, h->inc);
  rx_arg(cmd, h->base, h->baselen);
}

/* Reads the key whose name is at stack index kname: *present, *version and (value) the value's
 * bytes, pointing into the reply in *box. */
static lxshm_status read_key(rx_handle *h, lua_State *L, int kname, redisReply **box, int *present,
                             uint64_t *version, const char **v, size_t *vl, lxshm_error *err) {
  rx_cmd cmd;
  const redisReply *r;
  size_t kl;
  const char *k = lua_tolstring(L, kname, &kl);
  lxshm_status st;
  rx_cmd_init(&cmd);
  rx_arg_str(&cmd, "HMGET");
  rx_arg(&cmd, k, kl);
  rx_arg_str(&cmd, "v");
  rx_arg_str(&cmd, "n");
  *present = 0;
  if ((st = rx_h_call(h, NULL, &cmd, 0, box, err)) != LXSHM_OK)
    return st;
  r = *box;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
    return lxshm__fail(err, LXSHM_CORRUPT, "unexpected reply to HMGET");
  if (r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
    return LXSHM_OK;
  *present = 1;
  *version = (uint64_t)rx_int(r->element[1], 0);
  *v = r->element[0]->str;
  *vl = r->element[0]->len;
  return LXSHM_OK;
}

/* The store script for the key E at stack index enc; out[0] version, out[1] evicted. */
static lxshm_status store(rx_handle *h, lua_State *L, int enc, const char *flags, uint64_t expected,
                          long long ttl, const char *data, size_t len, redisReply **box,
                          uint64_t out[2], lxshm_error *err) {
  rx_cmd cmd;
  size_t el;
  const char *e = lua_tolstring(L, enc, &el);
  long long code = 0;
  lxshm_status st;
  script_args(&cmd, &store_script, h, L, enc);
  rx_arg(&cmd, e, el);
  rx_arg_str(&cmd, flags);
  rx_arg_int(&cmd, (long long)expected);
  rx_arg_int(&cmd, ttl);
  rx_arg_int(&cmd, (long long)(el + len + OVERHEAD));
  if (data != NULL)
    rx_arg(&cmd, data, len);
  if ((st = rx_run(h, &store_script, &cmd, box, &code, err)) != LXSHM_OK)
    return st;
  switch (code) {
    case 1:
      out[0] = (uint64_t)rx_int((*box)->elements > 1 ? (*box)->element[1] : NULL, 0);
      out[1] = (uint64_t)rx_int((*box)->elements > 2 ? (*box)->element[2] : NULL, 0);
      return LXSHM_OK;
    case -2:
      return lxshm__fail(err, LXSHM_EXISTS, "key exists");
    case -3:
      return lxshm__fail(err, LXSHM_NOT_FOUND, "no such key");
    case -4:
      return lxshm__fail(
          err, LXSHM_CONFLICT, "the key's version is %llu, not %llu",
          (unsigned long long)rx_int((*box)->elements > 1 ? (*box)->element[1] : NULL, 0),
          (unsigned long long)expected);
    case -5:
      return lxshm__fail(err, LXSHM_FULL,
                         "no room for a key and value of %zu bytes without evicting",
                         el - 2 + len); /* E less its "s:" or "i:" */
    default:
      return lxshm__fail(err, LXSHM_CORRUPT, "unexpected reply from Redis");
  }
}

/* The most value bytes a key of el encoded bytes can take. */
static size_t max_value(const rx_handle *h, size_t el) {
  uint64_t room = h->size > el + OVERHEAD ? h->size - el - OVERHEAD : 0;
  return (size_t)room;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* d:get(k) -> v, version | nil (absent or expired) | nil, msg, code */
KEYED(dict_get, a) {
  redisReply **box;
  lxshm_error err;
  lxshm_status st;
  uint64_t version = 0;
  const char *v = NULL;
  size_t vl = 0;
  int present;
  lua_settop(L, 2);
  push_names(L, h, a); /* 3 E, 4 K, 5 W */
  box = rx_box_new(L); /* 6 */
  st = read_key(h, L, 4, box, &present, &version, &v, &vl, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  if (!present) {
    lua_pushnil(L);
    return 1;
  }
  if ((st = lxshm__push_bytes(L, v, vl, LXSHM__FORMAT_MSGPACK, &err)) != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  rx_box_free(box);
  lua_pushinteger(L, (lua_Integer)version);
  return 2;
}

/* Runs CMD K [FIELD] for the key argument a (K = BASE.."k:"..E) and reads its integer reply
 * (def when there is none): d:version, d:ttl. */
static lxshm_status key_int(lua_State *L, rx_handle *h, const lxshm__keyarg *a,
                            const char *cmd_name, const char *field, long long def, long long *n,
                            lxshm_error *err) {
  rx_cmd cmd;
  size_t kl;
  const char *k;
  lua_settop(L, 2);
  push_enc(L, a);
  k = push_name(L, h, "k:", 3, &kl);
  rx_cmd_init(&cmd);
  rx_arg_str(&cmd, cmd_name);
  rx_arg(&cmd, k, kl);
  if (field != NULL)
    rx_arg_str(&cmd, field);
  return rx_h_int(h, NULL, &cmd, 0, def, n, err);
}

/* d:version(k) -> version (0: absent or expired) */
KEYED(dict_version, a) {
  lxshm_error err;
  lxshm_status st;
  long long n = 0;
  if ((st = key_int(L, h, a, "HGET", "n", 0, &n, &err)) != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* d:ttl(k) -> seconds left (math.huge: no expiry) | nil, msg, NOT_FOUND */
KEYED(dict_ttl, a) {
  lxshm_error err;
  lxshm_status st;
  long long ms = -2;
  if ((st = key_int(L, h, a, "PTTL", NULL, -2, &ms, &err)) != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  if (ms == -2) {
    lxshm__fail(&err, LXSHM_NOT_FOUND, "no such key");
    return lxshm__push_failure(L, h->name, LXSHM_NOT_FOUND, &err);
  }
  lua_pushnumber(L, ms < 0 ? (lua_Number)HUGE_VAL : (lua_Number)ms / 1000);
  return 1;
}

/* ---- changing ----------------------------------------------------------------------------- */

/* set, safe_set, add, safe_add, replace, cas -> true, evicted (cas: true, new version) */
static int change(lua_State *L, const char *flags, int cas) {
  lxshm__keyarg a;
  rx_handle *h = check(L);
  int varg = cas ? 4 : 3, enc = varg + 2;
  uint64_t expected = 0, out[2];
  redisReply **box;
  const char *data = NULL;
  size_t len = 0, el;
  lxshm_status st;
  lxshm_error err;
  long long ttl;
  char fl[8];

  if (!lxshm__check_key(L, h->name, 2, &a))
    return 3;
  if (cas)
    expected = lxshm__check_version(L, 3);
  ttl = ttl_ms(lxshm__opt_ttl(L, varg + 1));
  if ((st = begin_change(L, h, &a, varg + 1, &box, &err)) != LXSHM_OK) /* enc: E, K, W */
    return rx_result(L, h, st, &err);
  lua_tolstring(L, enc, &el);
  snprintf(fl, sizeof fl, "%s%s%s", flags, cas ? "c" : "", lua_isnil(L, varg) ? "d" : "");
  if (lua_isnil(L, varg)) /* nil deletes; add, replace and cas conditions still hold */
    st = store(h, L, enc, fl, expected, 0, NULL, 0, box, out, &err);
  else {
    st = rx_encode(L, varg, max_value(h, el), &data, &len, &err);
    if (st == LXSHM_OK) /* no Lua call until the command is sent: data stays valid */
      st = store(h, L, enc, fl, expected, ttl, data, len, box, out, &err);
  }
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  rx_box_free(box);
  lua_pushboolean(L, 1);
  lua_pushinteger(L, (lua_Integer)(cas ? out[0] : out[1]));
  return 2;
}

LXSHM__VARIANT(dict_set, change(L, "", 0))
LXSHM__VARIANT(dict_safe_set, change(L, "s", 0))
LXSHM__VARIANT(dict_add, change(L, "a", 0))
LXSHM__VARIANT(dict_safe_add, change(L, "as", 0))
LXSHM__VARIANT(dict_replace, change(L, "r", 0))
LXSHM__VARIANT(dict_cas, change(L, "", 1))

/* d:delete(k) -> true */
KEYED(dict_delete, a) {
  redisReply **box;
  uint64_t out[2];
  lxshm_error err;
  lxshm_status st = begin_change(L, h, a, 2, &box, &err); /* 3 E, 4 K, 5 W */
  if (st == LXSHM_OK)
    st = store(h, L, 3, "d", 0, 0, NULL, 0, box, out, &err);
  rx_box_free(box);
  return rx_result(L, h, st, &err);
}

/* d:expire(k, ttl) -> true | nil, msg, NOT_FOUND */
KEYED(dict_expire, a) {
  redisReply **box;
  rx_cmd cmd;
  size_t el;
  const char *e;
  long long ttl, code = 0;
  lxshm_error err;
  lxshm_status st;
  ttl = ttl_ms(lxshm__opt_ttl(L, 3));
  if ((st = begin_change(L, h, a, 3, &box, &err)) != LXSHM_OK) /* 4 E, 5 K, 6 W */
    return rx_result(L, h, st, &err);
  e = lua_tolstring(L, 4, &el);
  script_args(&cmd, &expire_script, h, L, 4);
  rx_arg(&cmd, e, el);
  rx_arg_int(&cmd, ttl);
  st = rx_run(h, &expire_script, &cmd, box, &code, &err);
  if (st == LXSHM_OK && code == -3)
    st = lxshm__fail(&err, LXSHM_NOT_FOUND, "no such key");
  rx_box_free(box);
  return rx_result(L, h, st, &err);
}

/* ---- read, compute, compare-and-set -------------------------------------------------------
 * incr and update read the stored bytes, compute here what to store, and store it with a
 * compare-and-set on the version read; on conflict they start again from the read. */

/* What a round stores: flags for the store script ("c"; "ck" keeps the TTL; "cd" deletes), the
 * TTL in ms, the bytes. flags NULL: nothing, the method returns what the round pushed. */
typedef struct rx_write {
  const char *flags;
  long long ttl;
  const char *data;
  size_t len;
} rx_write;

/* One round: given the key as read (present, the bytes v[0..vl-1]), pushes what the method
 * returns and sets *w; or fails. */
typedef lxshm_status (*round_fn)(lua_State *L, rx_handle *h, void *ctx, int present, const char *v,
                                 size_t vl, rx_write *w, lxshm_error *err);

/* Runs rounds until one stores without conflict, for the key whose names push_names left at
 * stack index names (E, K, W), with a box on the stack top. Returns the method's results: the
 * round's value, or nil, msg, code. */
static int read_compute_store(lua_State *L, rx_handle *h, int names, round_fn round, void *ctx) {
  int top = lua_gettop(L);
  redisReply **box = (redisReply **)lua_touserdata(L, top);
  for (;;) {
    uint64_t version = 0, out[2];
    rx_write w = {NULL, 0, NULL, 0};
    const char *v = NULL;
    size_t vl = 0;
    int present;
    lxshm_error err;
    lxshm_status st;
    lua_settop(L, top);
    st = read_key(h, L, names + 1, box, &present, &version, &v, &vl, &err);
    if (st == LXSHM_OK)
      st = round(L, h, ctx, present, v, vl, &w, &err); /* may run Lua, with v still boxed */
    rx_box_free(box);
    if (st == LXSHM_OK && w.flags == NULL)
      return 1;
    if (st == LXSHM_OK) /* no Lua call until the command is sent: w.data stays valid */
      st = store(h, L, names, w.flags, version, w.ttl, w.data, w.len, box, out, &err);
    rx_box_free(box);
    if (st == LXSHM_OK)
      return 1;
    if (st != LXSHM_CONFLICT)
      return lxshm__push_failure(L, h->name, st, &err);
  }
}

typedef struct incr_args {
  lxshm__dict_number step, init;
  int has_init;
  long long ttl;          /* for a key that incr makes */
  unsigned char bytes[9]; /* the sum, encoded */
} incr_args;

/* Adds here as the local dictionary does (number.c: an integer plus an integer stays an integer,
 * wrapping, on every runtime). */
static lxshm_status incr_round(lua_State *L, rx_handle *h, void *ctx, int present, const char *v,
                               size_t vl, rx_write *w, lxshm_error *err) {
  incr_args *a = (incr_args *)ctx;
  lxshm__dict_number current, sum;
  (void)h;
  if (!present && !a->has_init)
    return lxshm__fail(err, LXSHM_NOT_FOUND, "no such key");
  if (!present)
    current = a->init;
  else if (!lxshm__number_parse((const unsigned char *)v, vl, &current))
    return lxshm__fail(err, LXSHM_INVALID, "value is not a number");
  lxshm__number_add(&current, &a->step, &sum);
  w->flags = present ? "ck" : "c";
  w->ttl = present ? 0 : a->ttl;
  w->data = (const char *)a->bytes;
  w->len = lxshm__number_encode(&sum, a->bytes);
  lxshm__push_number(L, &sum);
  return LXSHM_OK;
}

/* d:incr(k, step [, init [, init_ttl]]) -> the new number | nil, msg, code */
KEYED(dict_incr, k) {
  redisReply **box;
  lxshm_error err;
  lxshm_status st;
  incr_args a;

  lxshm__check_number(L, 3, &a.step);
  a.has_init = !lua_isnoneornil(L, 4);
  if (a.has_init)
    lxshm__check_number(L, 4, &a.init);
  a.ttl = ttl_ms(lxshm__opt_ttl(L, 5));
  /* self, k, step, init, init_ttl; 6 E, 7 K, 8 W, 9 the box */
  if ((st = begin_change(L, h, k, 5, &box, &err)) != LXSHM_OK)
    return rx_result(L, h, st, &err);
  return read_compute_store(L, h, 6, incr_round, &a);
}

/* fn (argument 3) on the current value, with this dictionary marked as updating. */
static lxshm_status update_round(lua_State *L, rx_handle *h, void *ctx, int present, const char *v,
                                 size_t vl, rx_write *w, lxshm_error *err) {
  long long ttl = *(const long long *)ctx;
  size_t el;
  lxshm_status st;
  int rc;
  lua_pushvalue(L, 3);
  if (!present)
    lua_pushnil(L);
  else if ((st = lxshm__push_bytes(L, v, vl, LXSHM__FORMAT_MSGPACK, err)) != LXSHM_OK)
    return st;
  rc = rx_update_call(L, h, 1); /* the result, at the top */
  if (rc != LUA_OK)
    lua_error(L);
  if (h->closed)
    luaL_error(L, "attempt to use a closed lxshm dict");
  if (lua_isnil(L, -1)) { /* deletes; nothing to delete when absent */
    w->flags = present ? "cd" : NULL;
    return LXSHM_OK;
  }
  w->flags = "c";
  w->ttl = ttl;
  lua_tolstring(L, 4, &el); /* E */
  return rx_encode(L, -1, max_value(h, el), &w->data, &w->len, err);
}

/* d:update(k, fn [, ttl]) -> what fn returned (stored; nil deletes) | nil, msg, code. fn(current)
 * runs with no lock held; its result is stored only if the key did not change meanwhile, else fn
 * runs again on the newer value. If fn raises, nothing changes and the error propagates. */
KEYED(dict_update, a) {
  redisReply **box;
  lxshm_error err;
  lxshm_status st;
  long long ttl;

  luaL_checktype(L, 3, LUA_TFUNCTION);
  ttl = ttl_ms(lxshm__opt_ttl(L, 4));
  rx_check_update_depth(L, h);
  /* self, k, fn; 4 E, 5 K, 6 W, 7 the box */
  if ((st = begin_change(L, h, a, 3, &box, &err)) != LXSHM_OK)
    return rx_result(L, h, st, &err);
  return read_compute_store(L, h, 4, update_round, &ttl);
}

/* ---- waiting ------------------------------------------------------------------------------ */

/* d:wait(k, version [, timeout]) -> new version | nil, msg, TIMEOUT */
KEYED(dict_wait, a) {
  uint64_t want;
  double timeout, deadline;
  redisReply **box;
  lxshm_error err;
  lxshm_status st;
  size_t el, wl;
  const char *e, *w;

  want = lxshm__check_version(L, 3);
  timeout = lxshm__opt_timeout(L, 4);
  deadline = rx_deadline(timeout);
  lua_settop(L, 4);
  push_names(L, h, a); /* 5 E, 6 K, 7 W */
  e = lua_tolstring(L, 5, &el);
  w = lua_tolstring(L, 7, &wl);
  box = rx_box_new(L); /* 8 */
  for (;;) {
    rx_cmd cmd;
    redisReply *r;
    long long code = 0, pttl;
    double left = rx_left(deadline), slice;
    char fname[RX_KEY_MAX];
    slice = rx_slice(left);
    script_args(&cmd, &wait_script, h, L, 5);
    rx_arg(&cmd, e, el);
    rx_arg_int(&cmd, (long long)want);
    rx_arg_int(&cmd, (long long)(slice * 1000) + 10000);
    if ((st = rx_run(h, &wait_script, &cmd, box, &code, &err)) != LXSHM_OK)
      return lxshm__push_failure(L, h->name, st, &err);
    r = *box;
    if (code == 1 || r->elements < 5) {
      lua_pushinteger(L, (lua_Integer)rx_int(r->elements > 1 ? r->element[1] : NULL, 0));
      return 1;
    }
    if (left == 0) {
      lxshm__fail(&err, LXSHM_TIMEOUT, "no new version within %g s", timeout);
      return lxshm__push_failure(L, h->name, LXSHM_TIMEOUT, &err);
    }
    pttl = rx_int(r->element[4], -1);
    if (pttl >= 0 && (double)(pttl + 1) / 1000 < slice) /* expiry is a change: look then */
      slice = (double)(pttl + 1) / 1000;
    rx_cmd_init(&cmd);
    rx_arg_str(&cmd, "XREAD");
    rx_arg_str(&cmd, "BLOCK");
    rx_arg_ms(&cmd, slice * 1000);
    rx_arg_str(&cmd, "STREAMS");
    rx_arg(&cmd, w, wl);
    rx_arg(&cmd, fname, rx_key(h, "f", fname));
    rx_arg_key(&cmd, h, "gs");
    rx_arg(&cmd, r->element[2]->str, r->element[2]->len);
    rx_arg(&cmd, r->element[3]->str, r->element[3]->len);
    rx_arg_str(&cmd, "0-0");
    if ((st = rx_h_int(h, NULL, &cmd, slice, 0, NULL, &err)) != LXSHM_OK)
      return lxshm__push_failure(L, h->name, st, &err);
    if (lxshm__interrupted(L))
      return lua_error(L);
  }
}

/* ---- walking ------------------------------------------------------------------------------ */

/* d:keys([max]) -> a list of up to max present keys (default: all) | nil, msg, code */
static int dict_keys(lua_State *L) {
  rx_handle *h = check(L);
  lua_Integer max = luaL_optinteger(L, 2, 0);
  redisReply **box;
  rx_cmd cmd;
  long long code = 0;
  lxshm_error err;
  lxshm_status st;
  size_t i;
  luaL_argcheck(L, max >= 0, 2, "must be >= 0");
  lua_settop(L, 2);
  box = rx_box_new(L); /* 3 */
  if (max == 0 && !lua_isnoneornil(L, 2)) {
    lua_newtable(L);
    return 1;
  }
  script_args(&cmd, &keys_script, h, L, 0);
  rx_arg_int(&cmd, (long long)max);
  if ((st = rx_run(h, &keys_script, &cmd, box, &code, &err)) != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  lua_createtable(L, (int)(*box)->elements - 1, 0);
  for (i = 1; i < (*box)->elements; i++) {
    const redisReply *e = (*box)->element[i];
    push_key(L, e->str, e->type == REDIS_REPLY_STRING ? e->len : 0);
    lua_rawseti(L, -2, (lua_Integer)i);
  }
  rx_box_free(box);
  return 1;
}

/* The iterator of pairs(): upvalues 1 encoder, 2 handle, 3 state {cursor, batch, pos, seen}. A
 * key may come back twice from ZSCAN while Redis resizes the set: seen drops the second. */
static int pairs_next(lua_State *L) {
  rx_handle *h = (rx_handle *)lua_touserdata(L, lua_upvalueindex(2));
  lua_settop(L, 0);
  if (h->closed)
    return luaL_error(L, "attempt to use a closed lxshm dict");
  lua_pushvalue(L, lua_upvalueindex(3)); /* 1: state */
  for (;;) {
    lua_Integer pos, n;
    lua_getfield(L, 1, "batch"); /* 2 */
    lua_getfield(L, 1, "pos");   /* 3 */
    pos = lua_tointeger(L, 3);
    n = (lua_Integer)lua_rawlen(L, 2);
    while (pos + 2 <= n) {
      lua_rawgeti(L, 2, pos + 1); /* 4: E */
      lua_getfield(L, 1, "seen"); /* 5 */
      lua_pushvalue(L, 4);
      lua_rawget(L, 5); /* 6 */
      pos += 2;
      if (lua_toboolean(L, 6)) {
        lua_settop(L, 3);
        continue;
      }
      lua_pop(L, 1);
      lua_pushvalue(L, 4);
      lua_pushboolean(L, 1);
      lua_rawset(L, 5);
      lua_pushinteger(L, pos);
      lua_setfield(L, 1, "pos");
      {
        size_t el;
        const char *e = lua_tolstring(L, 4, &el);
        push_key(L, e, el);
      }
      lua_rawgeti(L, 2, pos); /* the value, decoded when the batch came */
      return 2;
    }
    lua_settop(L, 1);
    lua_getfield(L, 1, "cursor"); /* 2 */
    if (lua_isnil(L, 2))
      return 0;
    {
      redisReply **box = rx_box_new(L); /* 3 */
      rx_cmd cmd;
      long long code = 0;
      lxshm_error err;
      lxshm_status st;
      size_t i, cl;
      const char *cursor = lua_tolstring(L, 2, &cl);
      script_args(&cmd, &scan_script, h, L, 0);
      rx_arg(&cmd, cursor, cl);
      rx_arg_str(&cmd, "256");
      if ((st = rx_run(h, &scan_script, &cmd, box, &code, &err)) != LXSHM_OK)
        return luaL_error(L, "%s: %s", h->name, err.message[0] ? err.message : lxshm_strerror(st));
      if ((*box)->elements < 2 || (*box)->element[1]->type != REDIS_REPLY_STRING)
        return luaL_error(L, "%s: unexpected reply from Redis", h->name);
      if (strcmp((*box)->element[1]->str, "0") == 0)
        lua_pushnil(L);
      else
        lua_pushlstring(L, (*box)->element[1]->str, (*box)->element[1]->len);
      lua_setfield(L, 1, "cursor");
      lua_createtable(L, (int)(*box)->elements - 2, 0); /* 4 */
      for (i = 2; i + 1 < (*box)->elements; i += 2) {
        const redisReply *e = (*box)->element[i], *v = (*box)->element[i + 1];
        if (e->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
          continue;
        lua_pushlstring(L, e->str, e->len);
        lua_rawseti(L, 4, (lua_Integer)i - 1);
        if ((st = lxshm__push_bytes(L, v->str, v->len, LXSHM__FORMAT_MSGPACK, &err)) != LXSHM_OK)
          return luaL_error(L, "%s: %s", h->name, err.message);
        lua_rawseti(L, 4, (lua_Integer)i);
      }
      rx_box_free(box);
      lua_setfield(L, 1, "batch");
      lua_pushinteger(L, 0);
      lua_setfield(L, 1, "pos");
      lua_settop(L, 1);
    }
  }
}

/* d:pairs() -> iterator: for k, v in d:pairs() do … end. Batches of 256 keys (ZSCAN), never
 * the whole dictionary at once. A value nil in a batch (a key deleted meanwhile) is skipped. */
static int dict_pairs(lua_State *L) {
  check(L);
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_createtable(L, 0, 4);
  lua_pushliteral(L, "0");
  lua_setfield(L, -2, "cursor");
  lua_newtable(L);
  lua_setfield(L, -2, "batch");
  lua_pushinteger(L, 0);
  lua_setfield(L, -2, "pos");
  lua_newtable(L);
  lua_setfield(L, -2, "seen");
  lua_pushcclosure(L, pairs_next, 3);
  return 1;
}

/* ---- the whole dictionary ----------------------------------------------------------------- */

/* Runs whole_script for `what`; the reply in *box. */
static lxshm_status whole(lua_State *L, rx_handle *h, const char *what, long long arg,
                          redisReply ***box, lxshm_error *err) {
  rx_cmd cmd;
  long long code = 0;
  lxshm_status st;
  *box = rx_box_new(L);
  script_args(&cmd, &whole_script, h, L, 0);
  rx_arg_str(&cmd, what);
  rx_arg_int(&cmd, arg);
  st = rx_run(h, &whole_script, &cmd, *box, &code, err);
  if (st == LXSHM_OK && code == 0)
    st = lxshm__fail(err, LXSHM_CORRUPT, "%.*s",
                     (int)((**box)->elements > 1 ? (**box)->element[1]->len : 0),
                     (**box)->elements > 1 ? (**box)->element[1]->str : "");
  return st;
}

static int figure(lua_State *L, const char *what, long long arg, int changes) {
  rx_handle *h = check(L);
  redisReply **box;
  lxshm_error err;
  lxshm_status st;
  long long n;
  if (changes) {
    check_not_updating(L, h);
    if (h->readonly)
      return rx_result(L, h, rx_refuse_readonly(h, &err), &err);
  }
  st = whole(L, h, what, arg, &box, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  n = rx_int((*box)->elements > 1 ? (*box)->element[1] : NULL, 0);
  rx_box_free(box);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

LXSHM__VARIANT(dict_count, figure(L, "count", 0, 0))

static int dict_capacity(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check(L)->size);
  return 1;
}

static int dict_free_space(lua_State *L) {
  rx_handle *h = check(L);
  return figure(L, "free", h->readonly ? 0 : 1, 0);
}

/* What a figure's command run for its effect returns: true in place of the figure. */
static int done(lua_State *L, int n) {
  if (n == 1) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  return n;
}

/* d:flush_all() -> true */
static int dict_flush_all(lua_State *L) {
  return done(L, figure(L, "flush", 0, 1));
}

/* d:flush_expired([max]) -> the number of expired keys reclaimed */
static int dict_flush_expired(lua_State *L) {
  lua_Integer max = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, max >= 0, 2, "must be >= 0");
  return figure(L, "expired", (long long)max, 1);
}

/* d:check() -> true | nil, msg, CORRUPT naming the first broken invariant */
static int dict_check(lua_State *L) {
  return done(L, figure(L, "check", 0, 0));
}

/* d:stat() -> { name, capacity, used, free, count, evictions, expirations, version, waiters } */
static lxshm_status stat(lua_State *L, rx_handle *h, int full, lxshm__figures *out,
                         lxshm_error *err) {
  uint64_t *f = out->figure;
  int top = lua_gettop(L), i;
  redisReply **box;
  lxshm_status st = whole(L, h, "stat", 0, &box, err);
  for (i = 0; st == LXSHM_OK && i < 6; i++) /* capacity, used, count, evictions, expirations, … */
    f[i] = (uint64_t)rx_int((size_t)i + 1 < (*box)->elements ? (*box)->element[i + 1] : NULL, 0);
  rx_box_free(box);
  lua_settop(L, top); /* the box, and whatever the command needed */
  if (st != LXSHM_OK)
    return st;
  out->dict.free = out->dict.capacity - out->dict.used;
  out->dict.waiters = full ? rx_blocked_clients(h) : 0;
  return LXSHM_OK;
}

static const luaL_Reg methods[] = {LXSHM__DICT_METHODS(LXSHM__METHOD){NULL, NULL}};

const rx_class rx_dict_class = {
    "lxshm.redis.dict", "lxshm.dict",          "dict",  "_dict", methods, stat,
    LXSHM__DICT_NAMES,  "(%s bytes, %s keys)", "count", NULL,    NULL};

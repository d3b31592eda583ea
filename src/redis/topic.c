/* topic.c — lxshm.topic on Redis: every subscriber sees every message, and a second userdata
 * type, lxshm.subscription, for one reader's place.
 *
 * Messages are the entries of a stream, BASE.."x", numbered by Redis itself: the entry id of
 * message SEQ is 0-SEQ ("0-*"), so sequence numbers start at 1 and grow by one. A publish is one
 * script that appends and then trims the oldest entries until the messages held take no more
 * than the topic's bytes (each its length plus 8, rounded up to 8, as locally): the topic is a
 * ring in bytes, and a publisher never waits for subscribers. A subscriber reads with XREAD from
 * the id before its position; the first id it gets tells how many messages were trimmed before
 * it read them (lost). A named subscription keeps its position in the hash BASE.."p" and its
 * holder in BASE.."h" ("CLIENTID:TOKEN": a holder is alive while its connection is, which
 * CLIENT LIST ID tells); its next() reads and moves the position in one script, so a holder
 * killed at any instant leaves the position at the first message it did not return. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rx.h"

#define SUB_MT "lxshm.redis.subscription"
#define SUB_NAME_MAX LXSHM_NAME_MAX

static rx_handle *check(lua_State *L) {
  return rx_check(L, &rx_topic_class);
}

#define SEQ_OF "local function seq(id) return tonumber(string.match(id, '%-(%d+)$')) end\n"

/* KEYS: meta, stream. ARGV: inc, n, values… Returns the last sequence number, or -1. */
static rx_script publish_script = {
    "local m = redis.call('HMGET', KEYS[1], 'inc', 'size', 'used', 'held')\n"
    "if m[1] ~= ARGV[1] then return -1 end\n"
    "local size, used, n = tonumber(m[2]), tonumber(m[3]), tonumber(ARGV[2])\n"
    "local held = tonumber(m[4]) or redis.call('XLEN', KEYS[2])\n"
    "local last\n"
    "for i = 3, 2 + n do\n"
    "  last = redis.call('XADD', KEYS[2], '0-*', 'v', ARGV[i])\n"
    "  used = used + math.floor((#ARGV[i] + 15) / 8) * 8\n"
    "end\n"
    "held = held + n\n"
    "local most, batch = math.max(8, math.floor(size / 32)), n + 1\n"
    "while used > size or held > most do\n"
    "  local old, cut = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', batch)\n"
    "  for j = 1, #old do\n"
    "    if used <= size and held <= most then break end\n"
    "    used = used - math.floor((#old[j][2][2] + 15) / 8) * 8\n"
    "    held = held - 1\n"
    "    cut = old[j][1]\n"
    "  end\n"
    "  if not cut then break end\n"
    "  redis.call('XTRIM', KEYS[2], 'MINID', '0-' .. (string.match(cut, '%-(%d+)$') + 1))\n"
    "  batch = 64\n"
    "end\n"
    "last = tonumber(string.match(last, '%-(%d+)$'))\n"
    "redis.call('HSET', KEYS[1], 'used', used, 'held', held, 'last', last)\n"
    "return last\n",
    ""};

/* KEYS: meta, stream, positions. ARGV: inc. {last, oldest, named subscriptions} or -1. */
static rx_script info_script = {
    SEQ_OF "local m = redis.call('HMGET', KEYS[1], 'inc', 'last')\n"
           "if m[1] ~= ARGV[1] then return -1 end\n"
           "local last = tonumber(m[2])\n"
           "local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)\n"
           "local oldest = #first > 0 and seq(first[1][1]) or last + 1\n"
           "return {last, oldest, redis.call('HLEN', KEYS[3])}\n",
    ""};

/* KEYS: meta, stream, positions, holders. ARGV: inc, name, holder, from ("new", "oldest", or a
 * number), force (a dead holder to replace, or ''). {1, position}, {-2, holder} held, {-3} full,
 * -1 removed. */
static rx_script subscribe_script = {
    SEQ_OF "local m = redis.call('HMGET', KEYS[1], 'inc', 'last', 'cursors')\n"
           "if m[1] ~= ARGV[1] then return -1 end\n"
           "local name, me = ARGV[2], ARGV[3]\n"
           "local pos = redis.call('HGET', KEYS[3], name)\n"
           "local holder = redis.call('HGET', KEYS[4], name)\n"
           "if pos then\n"
           "  if holder and holder ~= '' and holder ~= ARGV[5] then return {-2, holder} end\n"
           "  redis.call('HSET', KEYS[4], name, me)\n"
           "  return {1, tonumber(pos)}\n"
           "end\n"
           "if redis.call('HLEN', KEYS[3]) >= tonumber(m[3]) then return {-3} end\n"
           "local last = tonumber(m[2])\n"
           "if ARGV[4] == 'new' then pos = last + 1\n"
           "elseif ARGV[4] == 'oldest' then\n"
           "  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)\n"
           "  pos = #first > 0 and seq(first[1][1]) or last + 1\n"
           "else pos = tonumber(ARGV[4]) end\n"
           "redis.call('HSET', KEYS[3], name, pos)\n"
           "redis.call('HSET', KEYS[4], name, me)\n"
           "return {1, pos}\n",
    ""};

/* KEYS: meta, stream, positions, holders. ARGV: inc, name, holder, max. Reads up to max messages
 * from the name's position and moves it past them: {1, position, id, value, id, value…};
 * {0, position} when none; {-2} when another holder took the name; -1 removed. */
static rx_script named_next_script = {
    SEQ_OF "local m = redis.call('HGET', KEYS[1], 'inc')\n"
           "if m ~= ARGV[1] then return -1 end\n"
           "local name, me = ARGV[2], ARGV[3]\n"
           "local holder = redis.call('HGET', KEYS[4], name)\n"
           "local token = string.match(me, ':([^:]*)$')\n"
           "if not holder or string.match(holder, ':([^:]*)$') ~= token then return {-2} end\n"
           "if holder ~= me then redis.call('HSET', KEYS[4], name, me) end\n"
           "local pos = tonumber(redis.call('HGET', KEYS[3], name))\n"
           "local e = redis.call('XRANGE', KEYS[2], '0-' .. pos, '+', 'COUNT', tonumber(ARGV[4]))\n"
           "if #e == 0 then return {0, pos} end\n"
           "redis.call('HSET', KEYS[3], name, seq(e[#e][1]) + 1)\n"
           "local out = {1, pos}\n"
           "for i = 1, #e do out[#out + 1] = e[i][1]; out[#out + 1] = e[i][2][2] end\n"
           "return out\n",
    ""};

/* KEYS: meta, positions, holders. ARGV: inc, name, mode ("release": give up a name held with
 * token ARGV[4]; "forget": unsubscribe unless held, or held by ARGV[4] found dead). {1},
 * {-2, holder}, {-3} no such name, -1 removed. */
static rx_script name_script = {
    "local m = redis.call('HGET', KEYS[1], 'inc')\n"
    "if m ~= ARGV[1] then return -1 end\n"
    "local name = ARGV[2]\n"
    "local holder = redis.call('HGET', KEYS[3], name)\n"
    "if ARGV[3] == 'release' then\n"
    "  if holder and string.match(holder, ':([^:]*)$') == string.match(ARGV[4], ':([^:]*)$') then\n"
    "    redis.call('HSET', KEYS[3], name, '')\n"
    "  end\n"
    "  return {1}\n"
    "end\n"
    "if redis.call('HEXISTS', KEYS[2], name) == 0 then return {-3} end\n"
    "if holder and holder ~= '' and holder ~= ARGV[4] then return {-2, holder} end\n"
    "redis.call('HDEL', KEYS[2], name)\n"
    "redis.call('HDEL', KEYS[3], name)\n"
    "return {1}\n",
    ""};

static lxshm_status gone(rx_handle *h, lxshm_error *err) {
  return lxshm__fail(err, LXSHM_NOT_FOUND, "was removed (in Redis at %s)", h->ns->url);
}

/* The largest value one message can be: what the ring holds as one record. */
static size_t max_value(const rx_handle *h) {
  return h->size >= 8 ? (size_t)(h->size - 8) : 0;
}

/* Runs a script whose reply starts with a code (or is -1: removed); reply in *box. */
static lxshm_status run(rx_handle *h, rx_script *s, rx_cmd *cmd, redisReply **box, long long *code,
                        lxshm_error *err) {
  redisReply *r;
  lxshm_status st = rx_h_eval(h, s, cmd, &r, err);
  if (st != LXSHM_OK)
    return st;
  rx_box_free(box);
  *box = r;
  if (r->type == REDIS_REPLY_ERROR)
    return rx_error_status(r, err);
  if (r->type == REDIS_REPLY_INTEGER) {
    *code = r->integer;
    return r->integer == -1 ? gone(h, err) : LXSHM_OK;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
    return lxshm__fail(err, LXSHM_CORRUPT, "unexpected reply from Redis");
  *code = rx_int(r->element[0], -9);
  return LXSHM_OK;
}

static lxshm_status info(rx_handle *h, long long f[3], lxshm_error *err);

/* ---- publishing -------------------------------------------------------------------------------
 */

/* Runs the publish script in cmd; the reply goes in box. */
static int finish_publish(lua_State *L, rx_handle *h, rx_cmd *cmd, redisReply **box,
                          lxshm_error *err) {
  long long code = 0;
  lxshm_status st = run(h, &publish_script, cmd, box, &code, err);
  if (st == LXSHM_OK && (*box)->type != REDIS_REPLY_INTEGER)
    st = lxshm__fail(err, LXSHM_CORRUPT, "unexpected reply to a publish");
  if (st != LXSHM_OK)
    return rx_fail(L, h->name, st, err);
  rx_box_free(box);
  lua_pushinteger(L, (lua_Integer)code);
  return 1;
}

/* t:publish(v [, timeout]) -> seq | nil, msg, code. Never waits for subscribers. */
static int topic_publish(lua_State *L) {
  rx_handle *h = check(L);
  const char *out;
  size_t len;
  redisReply **box;
  rx_cmd cmd;
  lxshm_error err;
  lxshm_status st;
  luaL_checkany(L, 2);
  (void)rx_opt_timeout(L, 3);
  if (h->readonly)
    return rx_result(L, h, rx_refuse_readonly(h, &err), &err);
  lua_settop(L, 3);
  box = rx_box_new(L); /* before encoding: no allocation between encoding and sending */
  rx_script_cmd(&cmd, &publish_script, 2);
  rx_arg_str(&cmd, h->meta);
  rx_arg_key(&cmd, h, "x");
  rx_arg_str(&cmd, h->inc);
  rx_arg_str(&cmd, "1");
  st = rx_encode(L, 2, max_value(h), &out, &len, &err);
  if (st != LXSHM_OK)
    return rx_fail(L, h->name, st, &err);
  rx_arg(&cmd, out, len);
  return finish_publish(L, h, &cmd, box, &err);
}

/* t:publish_many(list [, timeout]) -> last seq | nil, msg, code: consecutive messages, one
 * script, all or nothing. An empty list publishes nothing and returns t:last(). */
static int topic_publish_many(lua_State *L) {
  rx_handle *h = check(L);
  redisReply **box;
  lua_Integer n, item;
  uint64_t records;
  rx_cmd cmd;
  lxshm_error err;
  lxshm_status st;

  luaL_checktype(L, 2, LUA_TTABLE);
  (void)rx_opt_timeout(L, 3);
  lua_settop(L, 3);
  rx_check_plain_list(L, 2);
  n = (lua_Integer)lua_rawlen(L, 2);
  if (n == 0) { /* publishes nothing: the last sequence number */
    long long f[3];
    if ((st = info(h, f, &err)) != LXSHM_OK)
      return rx_fail(L, h->name, st, &err);
    lua_pushinteger(L, (lua_Integer)f[0]);
    return 1;
  }
  if (h->readonly)
    return rx_result(L, h, rx_refuse_readonly(h, &err), &err);
  box = rx_box_new(L); /* 4 */
  rx_script_cmd(&cmd, &publish_script, 2);
  rx_arg_str(&cmd, h->meta);
  rx_arg_key(&cmd, h, "x");
  rx_arg_str(&cmd, h->inc);
  rx_arg_int(&cmd, (long long)n);
  rx_cmd_reserve(L, &cmd, (size_t)n);                                      /* 5 */
  st = rx_encode_list(L, 2, n, max_value(h), &cmd, &records, &item, &err); /* 6 */
  if (st == LXSHM_OK && records > h->size)
    st =
        lxshm__fail(&err, LXSHM_INVALID_SIZE, "%lld messages take more than the topic's %llu bytes",
                    (long long)n, (unsigned long long)h->size);
  if (item != 0)
    return rx_fail(L, lua_pushfstring(L, "%s: item %s", h->name, rx_push_u64(L, (uint64_t)item)),
                   st, &err);
  if (st != LXSHM_OK)
    return rx_fail(L, h->name, st, &err);
  return finish_publish(L, h, &cmd, box, &err);
}

/* ---- introspection -------------------------------------------------------------------------- */

/* f[0] last, f[1] oldest, f[2] named subscriptions. */
static lxshm_status info(rx_handle *h, long long f[3], lxshm_error *err) {
  rx_cmd cmd;
  redisReply *r = NULL;
  long long code = 0;
  lxshm_status st;
  int i;
  rx_script_cmd(&cmd, &info_script, 3);
  rx_arg_str(&cmd, h->meta);
  rx_arg_key(&cmd, h, "x");
  rx_arg_key(&cmd, h, "p");
  rx_arg_str(&cmd, h->inc);
  st = run(h, &info_script, &cmd, &r, &code, err);
  if (st == LXSHM_OK && r->elements != 3)
    st = lxshm__fail(err, LXSHM_CORRUPT, "unexpected reply from Redis");
  if (st == LXSHM_OK)
    for (i = 0; i < 3; i++)
      f[i] = rx_int(r->element[i], 0);
  rx_box_free(&r);
  return st;
}

static int topic_last(lua_State *L) {
  rx_handle *h = check(L);
  long long f[3];
  lxshm_error err;
  lxshm_status st = info(h, f, &err);
  if (st != LXSHM_OK)
    return rx_fail(L, h->name, st, &err);
  lua_pushinteger(L, (lua_Integer)f[0]);
  return 1;
}

static int topic_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check(L)->size);
  return 1;
}

/* t:stat() -> { name, size, last, oldest, subscribers, waiters } */
static int topic_stat(lua_State *L) {
  rx_handle *h = check(L);
  long long f[3];
  lxshm_error err;
  lxshm_status st = info(h, f, &err);
  if (st != LXSHM_OK)
    return rx_fail(L, h->name, st, &err);
  lua_createtable(L, 0, 6);
  lua_pushstring(L, h->name);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, (lua_Integer)h->size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)f[0]);
  lua_setfield(L, -2, "last");
  lua_pushinteger(L, (lua_Integer)f[1]);
  lua_setfield(L, -2, "oldest");
  lua_pushinteger(L, (lua_Integer)f[2]);
  lua_setfield(L, -2, "subscribers");
  lua_pushinteger(L, (lua_Integer)rx_blocked_clients(h));
  lua_setfield(L, -2, "waiters");
  return 1;
}

static void describe(lua_State *L, rx_handle *h) {
  long long f[3];
  lxshm_error err;
  rx_push_u64(L, h->size);
  if (info(h, f, &err) == LXSHM_OK)
    rx_push_u64(L, (uint64_t)f[0]);
  else
    lua_pushliteral(L, "?");
  lua_pushfstring(L, "(%s bytes, last %s)", lua_tostring(L, -2), lua_tostring(L, -1));
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/* ---- subscriptions -------------------------------------------------------------------------- */

/* A subscription's userdata; user value 1 is its topic's handle. */
typedef struct sub_handle {
  rx_handle *topic;
  uint64_t pos; /* the sequence number next() returns next */
  int closed;
  int named;
  char token[17];              /* named: this holder's token */
  char name[SUB_NAME_MAX + 1]; /* named: the name */
  size_t namelen;
} sub_handle;

/* "CLIENTID:PID:TOKEN" for the holder field: the connection that tells whether the holder
 * lives, the process (for messages), the subscription. */
static void holder_of(sub_handle *s, long long id, char *buf, size_t n) {
  snprintf(buf, n, "%lld:%ld:%s", id, (long)getpid(), s->token);
}

/* The pid in a holder field, for messages. */
static unsigned holder_pid(const char *holder) {
  const char *c = strchr(holder, ':');
  return c != NULL ? (unsigned)strtoul(c + 1, NULL, 10) : 0;
}

/* 1 if the client whose id starts holder ("ID:…") is connected to the topic's server now. */
static int holder_alive(rx_handle *h, const char *holder, size_t len) {
  rx_cmd cmd;
  redisReply *r;
  lxshm_error err;
  char id[32];
  size_t n = 0;
  int alive = 1;
  while (n < len && n + 1 < sizeof id && holder[n] != ':') {
    id[n] = holder[n];
    n++;
  }
  id[n] = '\0';
  rx_cmd_init(&cmd);
  rx_arg_str(&cmd, "CLIENT");
  rx_arg_str(&cmd, "LIST");
  rx_arg_str(&cmd, "ID");
  rx_arg_str(&cmd, id);
  if (rx_h_command(h, &cmd, 0, &r, &err) != LXSHM_OK)
    return 1;
  if (r->type == REDIS_REPLY_STRING) /* "" when no such client: it is gone */
    alive = r->len > 0;
  else if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "Invalid client ID") != NULL)
    alive = 0;
  freeReplyObject(r);
  return alive;
}

#define BAD_SUB_NAME                                                                            \
  "invalid subscription name: use 1-%d characters from A-Z a-z 0-9 . _ -, not starting with . " \
  "or -"

/* A subscription name follows the rules of object names (SPEC §2). */
static int good_sub_name(const char *s, size_t n) {
  size_t i;
  if (n == 0 || n > LXSHM_NAME_MAX || s[0] == '.' || s[0] == '-')
    return 0;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

#define FROM_MESSAGE "from must be \"new\", \"oldest\" or a sequence number >= 1"

/* The `from` at stack index idx: "new", "oldest" or digits, into buf; raises otherwise. */
static void check_from(lua_State *L, int idx, int arg, char *buf, size_t n) {
  size_t len;
  const char *s;
  switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL:
      snprintf(buf, n, "new");
      return;
    case LUA_TSTRING:
      s = lua_tolstring(L, idx, &len);
      if ((len == 3 && memcmp(s, "new", 3) == 0) || (len == 6 && memcmp(s, "oldest", 6) == 0)) {
        snprintf(buf, n, "%s", s);
        return;
      }
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        lua_Integer v = lua_tointeger(L, idx);
        if (v >= 1) {
          snprintf(buf, n, "%lld", (long long)v);
          return;
        }
      }
      else {
        lua_Number x = lua_tonumber(L, idx);
        if (x >= 1 && x < 9.2e18 && x == (lua_Number)(long long)x) {
          snprintf(buf, n, "%lld", (long long)x);
          return;
        }
      }
      break;
  }
  luaL_argerror(L, arg, FROM_MESSAGE);
}

/* t:subscribe([from]) or t:subscribe{ name = NAME [, from = …] } -> subscription |
 * nil, msg, code (EXISTS: a living holder has the name; FULL: no room for another name). */
static int topic_subscribe(lua_State *L) {
  rx_handle *h = check(L);
  const char *name = NULL;
  size_t len = 0;
  char from[32];
  sub_handle *s;
  redisReply **box;
  rx_cmd cmd;
  lxshm_error err;
  lxshm_status st;
  long long code = 0;

  snprintf(from, sizeof from, "new");
  lua_settop(L, 2);
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, 2) != 0) {
      size_t klen = 0;
      const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
      if (key != NULL && klen == 4 && memcmp(key, "name", 4) == 0) {
        luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2, "name must be a string");
        name = lua_tolstring(L, -1, &len);
      }
      else if (key != NULL && klen == 4 && memcmp(key, "from", 4) == 0)
        check_from(L, -1, 2, from, sizeof from);
      else
        luaL_argerror(L, 2,
                      lua_pushfstring(L, "unknown option '%s'",
                                      key != NULL && strlen(key) == klen ? key : "?"));
      lua_pop(L, 1);
    }
    luaL_argcheck(L, name != NULL, 2, "a named subscription needs a name");
  }
  else
    check_from(L, 2, 2, from, sizeof from);
  if (name != NULL && !good_sub_name(name, len)) {
    lxshm__fail(&err, LXSHM_INVALID, BAD_SUB_NAME, LXSHM_NAME_MAX);
    return rx_fail(L, h->name, LXSHM_INVALID, &err);
  }
  if (name != NULL && h->readonly) {
    lxshm__fail(&err, LXSHM_PERMISSION,
                "opened read-only: named subscriptions write their position");
    return rx_fail(L, h->name, LXSHM_PERMISSION, &err);
  }
  s = (sub_handle *)lxshm_newuserdata(L, sizeof *s, 1); /* 3 */
  memset(s, 0, sizeof *s);
  s->topic = h;
  s->closed = 1;
  luaL_setmetatable(L, SUB_MT);
  lua_pushvalue(L, 1);
  lxshm_setuservalue(L, 3, 1);
  box = rx_box_new(L); /* 4 */
  if (name == NULL) {
    long long f[3];
    if ((st = info(h, f, &err)) != LXSHM_OK)
      return rx_fail(L, h->name, st, &err);
    s->pos = strcmp(from, "new") == 0      ? (uint64_t)f[0] + 1
             : strcmp(from, "oldest") == 0 ? (uint64_t)f[1]
                                           : (uint64_t)strtoull(from, NULL, 10);
    s->closed = 0;
    lua_settop(L, 3);
    return 1;
  }
  memcpy(s->name, name, len);
  s->namelen = len;
  s->named = 1;
  rx_unique(s->token);
  {
    char me[64], force[128] = "";
    long long id = 0;
    int tries;
    if ((st = rx_client_id(h, &id, &err)) != LXSHM_OK)
      return rx_fail(L, h->name, st, &err);
    holder_of(s, id, me, sizeof me);
    for (tries = 0; tries < 3; tries++) {
      rx_script_cmd(&cmd, &subscribe_script, 4);
      rx_arg_str(&cmd, h->meta);
      rx_arg_key(&cmd, h, "x");
      rx_arg_key(&cmd, h, "p");
      rx_arg_key(&cmd, h, "h");
      rx_arg_str(&cmd, h->inc);
      rx_arg(&cmd, s->name, s->namelen);
      rx_arg_str(&cmd, me);
      rx_arg_str(&cmd, from);
      rx_arg_str(&cmd, force);
      if ((st = run(h, &subscribe_script, &cmd, box, &code, &err)) != LXSHM_OK)
        return rx_fail(L, h->name, st, &err);
      if (code == 1) {
        s->pos = (uint64_t)rx_int((*box)->element[1], 1);
        s->closed = 0;
        lua_settop(L, 3);
        return 1;
      }
      if (code == -3) {
        lxshm__fail(&err, LXSHM_FULL, "no room for another named subscription (%u taken)",
                    (unsigned)h->cursors);
        return rx_fail(L, h->name, LXSHM_FULL, &err);
      }
      if (code != -2 || (*box)->elements < 2 || (*box)->element[1]->type != REDIS_REPLY_STRING)
        break;
      if (holder_alive(h, (*box)->element[1]->str, (*box)->element[1]->len)) {
        lxshm__fail(&err, LXSHM_EXISTS, "subscription %s is held by process %u", s->name,
                    holder_pid((*box)->element[1]->str));
        return rx_fail(L, h->name, LXSHM_EXISTS, &err);
      }
      snprintf(force, sizeof force, "%s", (*box)->element[1]->str); /* dead: take it over */
    }
    lxshm__fail(&err, LXSHM_CORRUPT, "unexpected reply from Redis");
    return rx_fail(L, h->name, LXSHM_CORRUPT, &err);
  }
}

/* t:unsubscribe(NAME) -> true | nil, msg, code (NOT_FOUND, EXISTS while a living holder has it) */
static int topic_unsubscribe(lua_State *L) {
  rx_handle *h = check(L);
  size_t len;
  const char *name = luaL_checklstring(L, 2, &len);
  redisReply **box;
  char force[128] = "";
  rx_cmd cmd;
  lxshm_error err;
  lxshm_status st;
  long long code = 0;
  int tries;
  if (!good_sub_name(name, len)) {
    lxshm__fail(&err, LXSHM_INVALID, BAD_SUB_NAME, LXSHM_NAME_MAX);
    return rx_fail(L, h->name, LXSHM_INVALID, &err);
  }
  lua_settop(L, 2);
  box = rx_box_new(L);
  if (h->readonly)
    return rx_result(L, h, rx_refuse_readonly(h, &err), &err);
  for (tries = 0; tries < 3; tries++) {
    rx_script_cmd(&cmd, &name_script, 3);
    rx_arg_str(&cmd, h->meta);
    rx_arg_key(&cmd, h, "p");
    rx_arg_key(&cmd, h, "h");
    rx_arg_str(&cmd, h->inc);
    rx_arg(&cmd, name, len);
    rx_arg_str(&cmd, "forget");
    rx_arg_str(&cmd, force);
    if ((st = run(h, &name_script, &cmd, box, &code, &err)) != LXSHM_OK)
      return rx_fail(L, h->name, st, &err);
    if (code == 1) {
      lua_pushboolean(L, 1);
      return 1;
    }
    if (code == -3) {
      lxshm__fail(&err, LXSHM_NOT_FOUND, "no subscription named %s", name);
      return rx_fail(L, h->name, LXSHM_NOT_FOUND, &err);
    }
    if (code != -2 || (*box)->elements < 2 || (*box)->element[1]->type != REDIS_REPLY_STRING)
      break;
    if (holder_alive(h, (*box)->element[1]->str, (*box)->element[1]->len)) {
      lxshm__fail(&err, LXSHM_EXISTS, "subscription %.*s is held by process %u", (int)len, name,
                  holder_pid((*box)->element[1]->str));
      return rx_fail(L, h->name, LXSHM_EXISTS, &err);
    }
    snprintf(force, sizeof force, "%s", (*box)->element[1]->str);
  }
  lxshm__fail(&err, LXSHM_CORRUPT, "unexpected reply from Redis");
  return rx_fail(L, h->name, LXSHM_CORRUPT, &err);
}

/* The subscription at argument 1, open and on an open topic; raises otherwise. */
static sub_handle *check_sub(lua_State *L) {
  sub_handle *s = (sub_handle *)luaL_testudata(L, 1, SUB_MT);
  if (s == NULL) {
    const char *got = luaL_typename(L, 1);
    if (luaL_getmetafield(L, 1, "__name") && lua_type(L, -1) == LUA_TSTRING)
      got = lua_tostring(L, -1);
    luaL_argerror(L, 1, lua_pushfstring(L, "lxshm.subscription expected, got %s", got));
  }
  if (s->closed)
    luaL_error(L, "attempt to use a closed lxshm subscription");
  if (s->topic->closed)
    luaL_error(L, "attempt to use a closed lxshm topic");
  return s;
}

/* sub:close(), __close, __gc: a named subscription gives its name up (keeping its position).
 * Idempotent. */
static int sub_close(lua_State *L) {
  sub_handle *s = (sub_handle *)luaL_checkudata(L, 1, SUB_MT);
  if (s->closed)
    return 0;
  s->closed = 1;
  if (s->named && !s->topic->closed && s->topic->ns != NULL) {
    rx_handle *h = s->topic;
    rx_cmd cmd;
    redisReply *r;
    lxshm_error err;
    char me[64];
    holder_of(s, 0, me, sizeof me);
    rx_script_cmd(&cmd, &name_script, 3);
    rx_arg_str(&cmd, h->meta);
    rx_arg_key(&cmd, h, "p");
    rx_arg_key(&cmd, h, "h");
    rx_arg_str(&cmd, h->inc);
    rx_arg(&cmd, s->name, s->namelen);
    rx_arg_str(&cmd, "release");
    rx_arg_str(&cmd, me);
    if (rx_h_eval(h, &name_script, &cmd, &r, &err) == LXSHM_OK)
      freeReplyObject(r); /* if the server is gone, the holder's connection is gone too */
  }
  return 0;
}

/* Reads up to max messages for s (waiting up to timeout while there is none) into the table on
 * the stack top: returns OK with *n, *first and *lost set. */
static lxshm_status take(lua_State *L, sub_handle *s, lua_Integer max, double timeout,
                         lua_Integer *n, uint64_t *first, uint64_t *lost, lxshm_error *err) {
  rx_handle *h = s->topic;
  double deadline = rx_deadline(timeout);
  int tab = lua_gettop(L);
  redisReply **box = rx_box_new(L);
  lxshm_status st;
  char from[32];
  for (;;) {
    rx_cmd cmd;
    redisReply *r, *list = NULL;
    size_t i, base_i = 0, step = 1;
    double left = rx_left(deadline), slice;
    long long code = 0;
    int blocking = 0;
    slice = left < 0 || left > RX_SLICE ? RX_SLICE : left;
    if (s->named) {
      char me[64];
      long long id = 0;
      if ((st = rx_client_id(h, &id, err)) != LXSHM_OK)
        return st;
      holder_of(s, id, me, sizeof me);
      rx_script_cmd(&cmd, &named_next_script, 4);
      rx_arg_str(&cmd, h->meta);
      rx_arg_key(&cmd, h, "x");
      rx_arg_key(&cmd, h, "p");
      rx_arg_key(&cmd, h, "h");
      rx_arg_str(&cmd, h->inc);
      rx_arg(&cmd, s->name, s->namelen);
      rx_arg_str(&cmd, me);
      rx_arg_int(&cmd, (long long)max);
      if ((st = run(h, &named_next_script, &cmd, box, &code, err)) != LXSHM_OK)
        return st;
      if (code == -2)
        return lxshm__fail(err, LXSHM_EXISTS, "subscription %s was taken over by another holder",
                           s->name);
      if ((*box)->elements >= 2)
        s->pos = (uint64_t)rx_int((*box)->element[1], (long long)s->pos);
      if (code == 1) {
        list = *box;
        base_i = 2;
        step = 2;
      }
    }
    else {
      /* XREAD COUNT max [BLOCK ms] STREAMS x gs pos-1 0-0 */
      snprintf(from, sizeof from, "0-%llu", (unsigned long long)(s->pos - 1));
      rx_cmd_init(&cmd);
      rx_arg_str(&cmd, "XREAD");
      rx_arg_str(&cmd, "COUNT");
      rx_arg_int(&cmd, (long long)max);
      if (timeout != 0) {
        rx_arg_str(&cmd, "BLOCK");
        rx_arg_int(&cmd, (long long)(slice * 1000) > 0 ? (long long)(slice * 1000) : 1);
        blocking = 1;
      }
      rx_arg_str(&cmd, "STREAMS");
      rx_arg_key(&cmd, h, "x");
      rx_arg_key(&cmd, h, "gs");
      rx_arg_str(&cmd, from);
      rx_arg_str(&cmd, "0-0");
      if ((st = rx_h_command(h, &cmd, blocking ? slice : 0, &r, err)) != LXSHM_OK)
        return st;
      rx_box_free(box);
      *box = r;
      if (r->type == REDIS_REPLY_ERROR)
        return rx_error_status(r, err);
      if (r->type == REDIS_REPLY_ARRAY)
        for (i = 0; i < r->elements; i++) {
          redisReply *kv = r->element[i];
          if (kv->type == REDIS_REPLY_ARRAY && kv->elements == 2 &&
              kv->element[0]->type == REDIS_REPLY_STRING && kv->element[0]->len >= 2 &&
              memcmp(kv->element[0]->str + kv->element[0]->len - 2, ":x", 2) == 0)
            list = kv->element[1];
          else { /* the remove stream: the topic is gone */
            long long f[3];
            st = info(h, f, err);
            return st != LXSHM_OK ? st : gone(h, err);
          }
        }
    }
    if (list != NULL) {
      lua_Integer k = 0;
      for (i = base_i; i < list->elements; i += step) {
        const redisReply *id, *v;
        uint64_t seq;
        if (s->named) {
          if (i + 1 >= list->elements)
            break;
          id = list->element[i];
          v = list->element[i + 1];
        }
        else {
          const redisReply *e = list->element[i];
          if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
              e->element[1]->type != REDIS_REPLY_ARRAY || e->element[1]->elements < 2)
            return lxshm__fail(err, LXSHM_CORRUPT, "a message of the stream is damaged");
          id = e->element[0];
          v = e->element[1]->element[1];
        }
        if (id->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
          return lxshm__fail(err, LXSHM_CORRUPT, "a message of the stream is damaged");
        seq = (uint64_t)strtoull(strchr(id->str, '-') != NULL ? strchr(id->str, '-') + 1 : id->str,
                                 NULL, 10);
        if (k == 0) {
          *first = seq;
          *lost = seq > s->pos ? seq - s->pos : 0;
        }
        if ((st = rx_push_value(L, v->str, v->len, 0, err)) != LXSHM_OK)
          return st;
        lua_rawseti(L, tab, ++k);
        s->pos = seq + 1;
      }
      if (k > 0) {
        *n = k;
        rx_box_free(box);
        lua_settop(L, tab);
        return LXSHM_OK;
      }
    }
    rx_box_free(box);
    if (timeout == 0)
      return lxshm__fail(err, LXSHM_TIMEOUT, "no new message");
    if (rx_left(deadline) == 0)
      return lxshm__fail(err, LXSHM_TIMEOUT, "no new message after %g s", timeout);
    if (s->named) { /* nothing yet: block until the stream has an entry past the position */
      snprintf(from, sizeof from, "0-%llu", (unsigned long long)(s->pos - 1));
      rx_cmd_init(&cmd);
      rx_arg_str(&cmd, "XREAD");
      rx_arg_str(&cmd, "COUNT");
      rx_arg_str(&cmd, "1");
      rx_arg_str(&cmd, "BLOCK");
      rx_arg_int(&cmd, (long long)(slice * 1000) > 0 ? (long long)(slice * 1000) : 1);
      rx_arg_str(&cmd, "STREAMS");
      rx_arg_key(&cmd, h, "x");
      rx_arg_key(&cmd, h, "gs");
      rx_arg_str(&cmd, from);
      rx_arg_str(&cmd, "0-0");
      if ((st = rx_h_command(h, &cmd, slice, &r, err)) != LXSHM_OK)
        return st;
      if (r->type == REDIS_REPLY_ERROR)
        st = rx_error_status(r, err);
      freeReplyObject(r);
      if (st != LXSHM_OK)
        return st;
    }
    else if (blocking) { /* a slice ended with nothing: is the topic still there? */
      long long f[3];
      if ((st = info(h, f, err)) != LXSHM_OK)
        return st;
    }
    if (rx_interrupted(L))
      return LXSHM__INTERRUPTED;
  }
}

/* sub:next([timeout]) -> v, seq, lost | nil, msg, code (TIMEOUT when none came) */
static int sub_next(lua_State *L) {
  sub_handle *s = check_sub(L);
  double timeout = rx_opt_timeout(L, 2);
  lua_Integer n = 0;
  uint64_t first = 0, lost = 0;
  lxshm_error err;
  lxshm_status st;
  lua_settop(L, 1);
  lua_newtable(L); /* 2 */
  err.message[0] = '\0';
  st = take(L, s, 1, timeout, &n, &first, &lost, &err);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  if (st != LXSHM_OK)
    return rx_fail(L, s->topic->name, st, &err);
  lua_rawgeti(L, 2, 1);
  lua_pushinteger(L, (lua_Integer)first);
  lua_pushinteger(L, (lua_Integer)lost);
  return 3;
}

/* sub:next_many(max [, timeout]) -> values, n, first_seq, lost | nil, msg, code */
static int sub_next_many(lua_State *L) {
  sub_handle *s = check_sub(L);
  lua_Integer max = luaL_checkinteger(L, 2), n = 0;
  double timeout = rx_opt_timeout(L, 3);
  uint64_t first = 0, lost = 0;
  lxshm_error err;
  lxshm_status st;
  luaL_argcheck(L, max >= 1, 2, "must be at least 1");
  lua_settop(L, 3);
  lua_newtable(L); /* 4 */
  err.message[0] = '\0';
  st = take(L, s, max, timeout, &n, &first, &lost, &err);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  if (st != LXSHM_OK)
    return rx_fail(L, s->topic->name, st, &err);
  lua_pushinteger(L, (lua_Integer)n);
  lua_pushinteger(L, (lua_Integer)first);
  lua_pushinteger(L, (lua_Integer)lost);
  return 4;
}

/* sub:position() -> the sequence number next() returns next, if not trimmed by then */
static int sub_position(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_sub(L)->pos);
  return 1;
}

/* sub:name() -> the name of a named subscription; nil for an anonymous one */
static int sub_name(lua_State *L) {
  sub_handle *s = check_sub(L);
  if (s->named)
    lua_pushlstring(L, s->name, s->namelen);
  else
    lua_pushnil(L);
  return 1;
}

static int sub_tostring(lua_State *L) {
  sub_handle *s = (sub_handle *)luaL_checkudata(L, 1, SUB_MT);
  lua_pushfstring(L, "lxshm.subscription: %s%s%s ", s->named ? s->name : "", s->named ? " on " : "",
                  s->topic->name);
  if (s->closed || s->topic->closed)
    lua_pushliteral(L, "(closed)");
  else {
    rx_push_u64(L, s->pos);
    lua_pushfstring(L, "(next %s)", lua_tostring(L, -1));
    lua_remove(L, -2);
  }
  lua_concat(L, 2);
  return 1;
}

void rx_topic_open(lua_State *L) {
  static const luaL_Reg sub_methods[] = {{"next", sub_next},         {"next_many", sub_next_many},
                                         {"position", sub_position}, {"name", sub_name},
                                         {"close", sub_close},       {NULL, NULL}};
  static const luaL_Reg sub_meta[] = {
      {"__gc", sub_close}, {"__close", sub_close}, {"__tostring", sub_tostring}, {NULL, NULL}};
  luaL_newmetatable(L, SUB_MT);
  lua_pushliteral(L, "lxshm.subscription");
  lua_setfield(L, -2, "__name");
  luaL_setfuncs(L, sub_meta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, sub_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

static const luaL_Reg methods[] = {
    {"publish", topic_publish},     {"publish_many", topic_publish_many},
    {"subscribe", topic_subscribe}, {"unsubscribe", topic_unsubscribe},
    {"last", topic_last},           {"size", topic_size},
    {"stat", topic_stat},           {NULL, NULL}};

const rx_class rx_topic_class = {
    "lxshm.redis.topic", "lxshm.topic", "topic", "_topic", methods, describe, NULL};

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

static lxshm_status info(rx_handle *h, lxshm__figures *f, lxshm_error *err);

/* ---- publishing --------------------------------------------------------------------------- */

/* Runs the publish script in cmd; the reply goes in box. */
static int finish_publish(lua_State *L, rx_handle *h, rx_cmd *cmd, redisReply **box,
                          lxshm_error *err) {
  long long code = 0;
  lxshm_status st = rx_run(h, &publish_script, cmd, box, &code, err);
  if (st == LXSHM_OK && (*box)->type != REDIS_REPLY_INTEGER)
    st = lxshm__fail(err, LXSHM_CORRUPT, "unexpected reply to a publish");
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, err);
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
  (void)lxshm__opt_timeout(L, 3);
  if (h->readonly)
    return rx_result(L, h, rx_refuse_readonly(h, &err), &err);
  lua_settop(L, 3);
  box = rx_box_new(L); /* before encoding: no allocation between encoding and sending */
  rx_script_cmd(&cmd, &publish_script, 2);
  rx_arg_str(&cmd, h->meta);
  rx_arg_key(&cmd, h, "x");
  rx_arg_str(&cmd, h->inc);
  rx_arg_str(&cmd, "1");
  st = rx_encode(L, 2, rx_ring_max_value(h), &out, &len, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  rx_arg(&cmd, out, len);
  return finish_publish(L, h, &cmd, box, &err);
}

/* t:publish_many(list [, timeout]) -> last seq | nil, msg, code: consecutive messages, one
 * script, all or nothing. An empty list publishes nothing and returns t:last(). */
static int topic_publish_many(lua_State *L) {
  rx_handle *h = check(L);
  redisReply **box;
  lua_Integer n, item;
  double timeout; /* checked as locally; a publish waits for nobody */
  rx_cmd cmd;
  lxshm_error err;
  lxshm_status st;

  n = lxshm__check_list_args(L, &timeout);
  (void)timeout;
  if (n == 0) { /* publishes nothing: the last sequence number */
    lxshm__figures f;
    if ((st = info(h, &f, &err)) != LXSHM_OK)
      return lxshm__push_failure(L, h->name, st, &err);
    lua_pushinteger(L, (lua_Integer)f.topic.last);
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
  st = rx_encode_list(L, 2, n, rx_ring_max_value(h), h->size, "messages take more than the topic's",
                      &cmd, &item, &err); /* 5, 6 */
  if (item != 0)
    return lxshm__push_item_failure(L, h->name, item, st, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  return finish_publish(L, h, &cmd, box, &err);
}

/* ---- introspection -------------------------------------------------------------------------- */

/* The topic's last, oldest and subscribers (the rest of f->topic is left as it is). */
static lxshm_status info(rx_handle *h, lxshm__figures *f, lxshm_error *err) {
  rx_cmd cmd;
  rx_script_cmd(&cmd, &info_script, 3);
  rx_arg_str(&cmd, h->meta);
  rx_arg_key(&cmd, h, "x");
  rx_arg_key(&cmd, h, "p");
  rx_arg_str(&cmd, h->inc);
  return rx_figures(h, &info_script, &cmd, f->figure + 1, 3, err);
}

/* t:stat() -> { name, size, last, oldest, subscribers, waiters }: one run of the info script,
 * and (full) the blocked clients. */
static lxshm_status stat(lua_State *L, rx_handle *h, int full, lxshm__figures *out,
                         lxshm_error *err) {
  (void)L;
  out->topic.size = h->size;
  out->topic.waiters = full ? rx_blocked_clients(h) : 0;
  return info(h, out, err);
}

LXSHM__VARIANT(topic_last, rx_figure(L, check(L), "last"))

static int topic_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check(L)->size);
  return 1;
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

/* Starts cmd as a call of sc, a script about the named subscription `name`: KEYS meta, the
 * stream (with_stream: subscribe, named next), positions, holders; ARGV inc, name, then what
 * the caller adds. */
static void name_args(rx_cmd *cmd, rx_script *sc, rx_handle *h, int with_stream, const char *name,
                      size_t len) {
  rx_script_cmd(cmd, sc, with_stream ? 4 : 3);
  rx_arg_str(cmd, h->meta);
  if (with_stream)
    rx_arg_key(cmd, h, "x");
  rx_arg_key(cmd, h, "p");
  rx_arg_key(cmd, h, "h");
  rx_arg_str(cmd, h->inc);
  rx_arg(cmd, name, len);
}

/* The holder field of s now: its connection's client id (connecting if needed), pid, token. */
static lxshm_status holder_now(sub_handle *s, char me[64], lxshm_error *err) {
  long long id = 0;
  lxshm_status st = rx_client_id(s->topic, &id, err);
  if (st == LXSHM_OK)
    holder_of(s, id, me, 64);
  return st;
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

/* t:subscribe([from]) or t:subscribe{ name = NAME [, from = …] } -> subscription |
 * nil, msg, code (EXISTS: a living holder has the name; FULL: no room for another name). */
static int topic_subscribe(lua_State *L) {
  rx_handle *h = check(L);
  const char *name;
  size_t len;
  uint64_t start;
  char from[32];
  sub_handle *s;
  redisReply **box;
  rx_cmd cmd;
  lxshm_error err;
  lxshm_status st;
  long long code = 0;

  lua_settop(L, 2);
  lxshm__check_subscribe(L, 2, &name, &len, &start);
  if (start == LXSHM_TOPIC_NEW || start == LXSHM_TOPIC_OLDEST)
    snprintf(from, sizeof from, "%s", start == LXSHM_TOPIC_NEW ? "new" : "oldest");
  else
    snprintf(from, sizeof from, "%llu", (unsigned long long)start);
  if (name != NULL && lxshm__check_name(name, len, "subscription ", &err) != LXSHM_OK)
    return lxshm__push_failure(L, h->name, LXSHM_INVALID, &err);
  if (name != NULL && h->readonly) {
    lxshm__fail(&err, LXSHM_PERMISSION,
                "opened read-only: named subscriptions write their position");
    return lxshm__push_failure(L, h->name, LXSHM_PERMISSION, &err);
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
    lxshm__figures f;
    if ((st = info(h, &f, &err)) != LXSHM_OK)
      return lxshm__push_failure(L, h->name, st, &err);
    s->pos = start == LXSHM_TOPIC_NEW      ? f.topic.last + 1
             : start == LXSHM_TOPIC_OLDEST ? f.topic.oldest
                                           : start;
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
    int tries;
    if ((st = holder_now(s, me, &err)) != LXSHM_OK)
      return lxshm__push_failure(L, h->name, st, &err);
    for (tries = 0; tries < 3; tries++) {
      name_args(&cmd, &subscribe_script, h, 1, s->name, s->namelen);
      rx_arg_str(&cmd, me);
      rx_arg_str(&cmd, from);
      rx_arg_str(&cmd, force);
      if ((st = rx_run(h, &subscribe_script, &cmd, box, &code, &err)) != LXSHM_OK)
        return lxshm__push_failure(L, h->name, st, &err);
      if (code == 1) { /* {1, position}; a position that is no number comes back as {1} */
        if ((*box)->type != REDIS_REPLY_ARRAY || (*box)->elements < 2 ||
            (*box)->element[1]->type != REDIS_REPLY_INTEGER) {
          lxshm__fail(&err, LXSHM_CORRUPT, "subscription %s has a damaged position", s->name);
          return lxshm__push_failure(L, h->name, LXSHM_CORRUPT, &err);
        }
        s->pos = (uint64_t)rx_int((*box)->element[1], 1);
        s->closed = 0;
        lua_settop(L, 3);
        return 1;
      }
      if (code == -3) {
        lxshm__fail(&err, LXSHM_FULL, "no room for another named subscription (%u taken)",
                    (unsigned)h->cursors);
        return lxshm__push_failure(L, h->name, LXSHM_FULL, &err);
      }
      if (code != -2 || (*box)->elements < 2 || (*box)->element[1]->type != REDIS_REPLY_STRING)
        break;
      if (holder_alive(h, (*box)->element[1]->str, (*box)->element[1]->len)) {
        lxshm__fail(&err, LXSHM_EXISTS, "subscription %s is held by process %u", s->name,
                    holder_pid((*box)->element[1]->str));
        return lxshm__push_failure(L, h->name, LXSHM_EXISTS, &err);
      }
      snprintf(force, sizeof force, "%s", (*box)->element[1]->str); /* dead: take it over */
    }
    lxshm__fail(&err, LXSHM_CORRUPT, "unexpected reply from Redis");
    return lxshm__push_failure(L, h->name, LXSHM_CORRUPT, &err);
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
  if (lxshm__check_name(name, len, "subscription ", &err) != LXSHM_OK)
    return lxshm__push_failure(L, h->name, LXSHM_INVALID, &err);
  lua_settop(L, 2);
  box = rx_box_new(L);
  if (h->readonly)
    return rx_result(L, h, rx_refuse_readonly(h, &err), &err);
  for (tries = 0; tries < 3; tries++) {
    name_args(&cmd, &name_script, h, 0, name, len);
    rx_arg_str(&cmd, "forget");
    rx_arg_str(&cmd, force);
    if ((st = rx_run(h, &name_script, &cmd, box, &code, &err)) != LXSHM_OK)
      return lxshm__push_failure(L, h->name, st, &err);
    if (code == 1) {
      lua_pushboolean(L, 1);
      return 1;
    }
    if (code == -3) {
      lxshm__fail(&err, LXSHM_NOT_FOUND, "no subscription named %s", name);
      return lxshm__push_failure(L, h->name, LXSHM_NOT_FOUND, &err);
    }
    if (code != -2 || (*box)->elements < 2 || (*box)->element[1]->type != REDIS_REPLY_STRING)
      break;
    if (holder_alive(h, (*box)->element[1]->str, (*box)->element[1]->len)) {
      lxshm__fail(&err, LXSHM_EXISTS, "subscription %.*s is held by process %u", (int)len, name,
                  holder_pid((*box)->element[1]->str));
      return lxshm__push_failure(L, h->name, LXSHM_EXISTS, &err);
    }
    snprintf(force, sizeof force, "%s", (*box)->element[1]->str);
  }
  lxshm__fail(&err, LXSHM_CORRUPT, "unexpected reply from Redis");
  return lxshm__push_failure(L, h->name, LXSHM_CORRUPT, &err);
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
    name_args(&cmd, &name_script, h, 0, s->name, s->namelen);
    rx_arg_str(&cmd, "release");
    rx_arg_str(&cmd, me);
    if (rx_h_eval(h, &name_script, &cmd, &r, &err) == LXSHM_OK)
      freeReplyObject(r); /* if the server is gone, the holder's connection is gone too */
  }
  return 0;
}

/* XREAD COUNT count [BLOCK ms] STREAMS x gs POS-1 0-0 (block < 0: without BLOCK): the messages
 * from s's position on, and the stream a remove writes to. from holds the id. */
static void xread_args(rx_cmd *cmd, sub_handle *s, long long count, double block, char from[32]) {
  snprintf(from, 32, "0-%llu", (unsigned long long)(s->pos - 1));
  rx_cmd_init(cmd);
  rx_arg_str(cmd, "XREAD");
  rx_arg_str(cmd, "COUNT");
  rx_arg_int(cmd, count);
  if (block >= 0) {
    rx_arg_str(cmd, "BLOCK");
    rx_arg_ms(cmd, block * 1000);
  }
  rx_arg_str(cmd, "STREAMS");
  rx_arg_key(cmd, s->topic, "x");
  rx_arg_key(cmd, s->topic, "gs");
  rx_arg_str(cmd, from);
  rx_arg_str(cmd, "0-0");
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
    const redisReply *r, *list = NULL;
    size_t i, base_i = 0, step = 1;
    double left = rx_left(deadline), slice;
    long long code = 0;
    int blocking = 0;
    slice = rx_slice(left);
    if (s->named) {
      char me[64];
      if ((st = holder_now(s, me, err)) != LXSHM_OK)
        return st;
      name_args(&cmd, &named_next_script, h, 1, s->name, s->namelen);
      rx_arg_str(&cmd, me);
      rx_arg_int(&cmd, (long long)max);
      if ((st = rx_run(h, &named_next_script, &cmd, box, &code, err)) != LXSHM_OK)
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
      blocking = timeout != 0;
      xread_args(&cmd, s, (long long)max, blocking ? slice : -1, from);
      if ((st = rx_h_call(h, NULL, &cmd, blocking ? slice : 0, box, err)) != LXSHM_OK)
        return st;
      r = *box;
      if (r->type == REDIS_REPLY_ARRAY)
        for (i = 0; i < r->elements; i++) {
          redisReply *kv = r->element[i];
          if (kv->type == REDIS_REPLY_ARRAY && kv->elements == 2 &&
              kv->element[0]->type == REDIS_REPLY_STRING && kv->element[0]->len >= 2 &&
              memcmp(kv->element[0]->str + kv->element[0]->len - 2, ":x", 2) == 0)
            list = kv->element[1];
          else { /* the remove stream: the topic is gone */
            lxshm__figures f;
            st = info(h, &f, err);
            return st != LXSHM_OK ? st : rx_gone(h, err);
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
        if ((st = lxshm__push_bytes(L, v->str, v->len, LXSHM__FORMAT_MSGPACK, err)) != LXSHM_OK)
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
    if ((st = rx_expired(timeout, deadline, "no new message", "no new message", err)) != LXSHM_OK)
      return st;
    if (s->named) { /* nothing yet: block until the stream has an entry past the position */
      xread_args(&cmd, s, 1, slice, from);
      if ((st = rx_h_int(h, NULL, &cmd, slice, 0, NULL, err)) != LXSHM_OK)
        return st;
    }
    else if (blocking) { /* a slice ended with nothing: is the topic still there? */
      lxshm__figures f;
      if ((st = info(h, &f, err)) != LXSHM_OK)
        return st;
    }
    if (lxshm__interrupted(L))
      return LXSHM__INTERRUPTED;
  }
}

/* sub:next([timeout]) -> v, seq, lost | nil, msg, code (TIMEOUT when none came) */
static int sub_next(lua_State *L) {
  sub_handle *s = check_sub(L);
  double timeout = lxshm__opt_timeout(L, 2);
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
    return lxshm__push_failure(L, s->topic->name, st, &err);
  lua_rawgeti(L, 2, 1);
  lua_pushinteger(L, (lua_Integer)first);
  lua_pushinteger(L, (lua_Integer)lost);
  return 3;
}

/* sub:next_many(max [, timeout]) -> values, n, first_seq, lost | nil, msg, code */
static int sub_next_many(lua_State *L) {
  sub_handle *s = check_sub(L);
  double timeout;
  lua_Integer max = rx_check_max_args(L, &timeout), n = 0;
  uint64_t first = 0, lost = 0;
  lxshm_error err;
  lxshm_status st;
  lua_newtable(L); /* 4 */
  err.message[0] = '\0';
  st = take(L, s, max, timeout, &n, &first, &lost, &err);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, s->topic->name, st, &err);
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
  lxshm__push_subscription(L, s->named ? s->name : NULL, s->topic->name,
                           s->closed || s->topic->closed, s->pos);
  return 1;
}

void rx_topic_open(lua_State *L) {
  static const luaL_Reg sub_methods[] = {LXSHM__SUBSCRIPTION_METHODS(LXSHM__METHOD){NULL, NULL}};
  static const luaL_Reg sub_meta[] = {
      {"__gc", sub_close}, {"__close", sub_close}, {"__tostring", sub_tostring}, {NULL, NULL}};
  lxshm__new_class(L, SUB_MT, "lxshm.subscription", NULL, sub_meta, NULL, sub_methods);
}

static const luaL_Reg methods[] = {LXSHM__TOPIC_METHODS(LXSHM__METHOD){NULL, NULL}};

const rx_class rx_topic_class = {"lxshm.redis.topic",
                                 "lxshm.topic",
                                 "topic",
                                 "_topic",
                                 methods,
                                 stat,
                                 LXSHM__TOPIC_NAMES,
                                 "(%s bytes, last %s)",
                                 "last",
                                 NULL,
                                 lxshm__topic_option};

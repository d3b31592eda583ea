/* queue.c — lxshm.queue on Redis: many values, in order, each popped once, bounded in bytes.
 *
 * Values are the elements of a list, BASE.."l" (RPUSH at the tail, LPOP at the head), each the
 * value's MessagePack bytes. The bytes in use (each value its length plus 8, rounded up to 8, as
 * locally) are counted in the object's hash; a push and a pop are each one script, so the count
 * and the list never disagree, and a push past the capacity is refused inside Redis.
 *
 * Waiting without polling: a pop that finds the queue empty registers its waiter id in a sorted
 * set (BASE.."wp", scored by when the registration lapses) inside the same script, then blocks
 * in BLPOP on a doorbell list (BASE.."dp"). A push rings it: one token per registered waiter, at
 * most one per value pushed. A token is stored state, so a push between the pop's script and
 * its BLPOP is not missed. A push that finds the queue full does the same with "wu" and "du",
 * and a pop rings for every registered pusher (values differ in size). Woken waiters run their
 * script again; a spurious wake costs one round trip. Registrations lapse by themselves, so a
 * waiter killed while blocked is forgotten. */
#include <stdio.h>
#include <string.h>

#include "rx.h"

static rx_handle *check(lua_State *L) {
  return rx_check(L, &rx_queue_class);
}

/* KEYS: meta, list, pop waiters, pop doorbell, push waiters. ARGV: inc, waiter ('' to not
 * register), registration ms, registered (1: the waiter registered before: forget it), n,
 * values… Returns -1 (removed), 0 (full: registered), 1. The common path is four commands and
 * makes no function (a closure costs a script more than a command): the clock is read only to
 * register or to wake someone. */
static rx_script push_script = {
    "local m = redis.call('HMGET', KEYS[1], 'inc', 'size', 'used')\n"
    "if m[1] ~= ARGV[1] then return -1 end\n"
    "local size, used, n = tonumber(m[2]), tonumber(m[3]), tonumber(ARGV[5])\n"
    "local need = 0\n"
    "for i = 6, 5 + n do need = need + math.floor((#ARGV[i] + 15) / 8) * 8 end\n"

    "if used + need > size then\n"
    "  if ARGV[2] ~= '' then\n"
    "    local t = redis.call('TIME')\n"
    "    redis.call('ZADD', KEYS[5], t[1] * 1000 + math.floor(t[2] / 1000) + ARGV[3], ARGV[2])\n"
    "  end\n"
    "  return 0\n"
    "end\n"
    "for i = 6, 5 + n, 1000 do\n"
    "  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(5 + n, i + 999)))\n"
    "end\n"
    "redis.call('HINCRBY', KEYS[1], 'used', need)\n"
    "if ARGV[4] == '1' then redis.call('ZREM', KEYS[5], ARGV[2]) end\n"
    "if redis.call('ZCARD', KEYS[3]) > 0 then\n"
    "  local t = redis.call('TIME')\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', t[1] * 1000 + math.floor(t[2] / 1000))\n"
    "  local k = math.min(redis.call('ZCARD', KEYS[3]), n) - redis.call('LLEN', KEYS[4])\n"
    "  for i = 1, k do redis.call('RPUSH', KEYS[4], 1) end\n"
    "end\n"
    "return 1\n",
    ""};

/* KEYS: meta, list, pop waiters, push waiters, push doorbell. ARGV: inc, waiter, registration
 * ms, registered, max, remove (0: peek). Returns -1 (removed), {0} (empty: registered),
 * {1, values…}. */
static rx_script pop_script = {
    "local m = redis.call('HGET', KEYS[1], 'inc')\n"
    "if m ~= ARGV[1] then return -1 end\n"
    "if ARGV[6] == '0' then\n"
    "  local v = redis.call('LINDEX', KEYS[2], 0)\n"
    "  if v then return {1, v} end\n"
    "  return {0}\n"
    "end\n"

    "local vals = redis.call('LPOP', KEYS[2], tonumber(ARGV[5]))\n"
    "if not vals then\n"
    "  if ARGV[2] ~= '' then\n"
    "    local t = redis.call('TIME')\n"
    "    redis.call('ZADD', KEYS[3], t[1] * 1000 + math.floor(t[2] / 1000) + ARGV[3], ARGV[2])\n"
    "  end\n"
    "  return {0}\n"
    "end\n"
    "local freed = 0\n"
    "for i = 1, #vals do freed = freed + math.floor((#vals[i] + 15) / 8) * 8 end\n"
    "redis.call('HINCRBY', KEYS[1], 'used', -freed)\n"
    "if ARGV[4] == '1' then redis.call('ZREM', KEYS[3], ARGV[2]) end\n"
    "if redis.call('ZCARD', KEYS[4]) > 0 then\n"
    "  local t = redis.call('TIME')\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', t[1] * 1000 + math.floor(t[2] / 1000))\n"
    "  local k = redis.call('ZCARD', KEYS[4]) - redis.call('LLEN', KEYS[5])\n"
    "  for i = 1, k do redis.call('RPUSH', KEYS[5], 1) end\n"
    "end\n"
    "table.insert(vals, 1, 1)\n"
    "return vals\n",
    ""};

/* KEYS: meta, list, pop waiters, push waiters. {used, count, pop waiters, push waiters} | -1 */
static rx_script stat_script = {
    "local m = redis.call('HMGET', KEYS[1], 'inc', 'used')\n"
    "if m[1] ~= ARGV[1] then return -1 end\n"
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "return {tonumber(m[2]), redis.call('LLEN', KEYS[2]),\n"
    "  redis.call('ZCOUNT', KEYS[3], now, '+inf'), redis.call('ZCOUNT', KEYS[4], now, '+inf')}\n",
    ""};

/* Blocks in BLPOP on a doorbell (and on the list a remove fills) for up to `slice` seconds, then
 * lets a pending hook run (LXSHM__INTERRUPTED: its error is on the stack top). */
static lxshm_status ring_wait(lua_State *L, rx_handle *h, const char *bell, double slice,
                              lxshm_error *err) {
  rx_cmd cmd;
  lxshm_status st;
  rx_cmd_init(&cmd);
  rx_arg_str(&cmd, "BLPOP");
  rx_arg_key(&cmd, h, bell);
  rx_arg_key(&cmd, h, "gl");
  rx_arg_double(&cmd, slice < 0.001 ? 0.001 : slice);
  if ((st = rx_h_int(h, NULL, &cmd, slice, 0, NULL, err)) != LXSHM_OK)
    return st;
  return lxshm__interrupted(L) ? LXSHM__INTERRUPTED : LXSHM_OK;
}


/* Where waiting_args puts the waiter id: after EVALSHA, SHA, 5, five keys and inc. */
#define WAITER_ARG 9

/* Puts the script's fixed part for a push or a pop into cmd: keys, inc, waiter, registration. */
static void waiting_args(rx_handle *h, rx_cmd *cmd, rx_script *s, int push, int wait,
                         double slice) {
  rx_script_cmd(cmd, s, 5);
  rx_arg_str(cmd, h->meta);
  rx_arg_key(cmd, h, "l");
  rx_arg_key(cmd, h, "wp");
  if (push)
    rx_arg_key(cmd, h, "dp");
  rx_arg_key(cmd, h, "wu");
  if (!push)
    rx_arg_key(cmd, h, "du");
  rx_arg_str(cmd, h->inc);
  rx_arg_str(cmd, wait ? h->waiter : "");
  rx_arg_int(cmd, (long long)(slice * 1000) + 1000);
  rx_arg_str(cmd, "0"); /* registered: not yet */
}

/* Runs the push script in cmd until it stores the values, waiting for room. The values are in
 * cmd already; or, with `value` (a stack index, else 0), cmd's last argument is encoded from it
 * before each try: the encoder's buffer is shared, and Lua code run between the tries (a hook
 * while waiting) may encode something else into it. */
static lxshm_status push_until(lua_State *L, rx_handle *h, rx_cmd *cmd, int value, double timeout,
                               lxshm_error *err) {
  double deadline = rx_deadline(timeout);
  int registered = 0;
  for (;;) {
    long long code = -2;
    double slice = rx_slice(rx_left(deadline));
    lxshm_status st;
    if (value != 0 && (st = rx_encode(L, value, rx_ring_max_value(h), &cmd->argv[cmd->argc - 1],
                                      &cmd->lens[cmd->argc - 1], err)) != LXSHM_OK)
      return st; /* no Lua call from here to the send: the bytes stay valid */
    cmd->argv[WAITER_ARG + 2] = registered ? "1" : "0";
    cmd->argv[WAITER_ARG] = timeout == 0 ? "" : h->waiter;
    cmd->lens[WAITER_ARG] = strlen(cmd->argv[WAITER_ARG]);
    cmd->lens[WAITER_ARG + 1] = (size_t)snprintf(cmd->num[WAITER_ARG + 1], sizeof cmd->num[0],
                                                 "%lld", (long long)(slice * 1000) + 1000);
    cmd->argv[WAITER_ARG + 1] = cmd->num[WAITER_ARG + 1];
    if ((st = rx_h_int(h, &push_script, cmd, 0, -2, &code, err)) != LXSHM_OK)
      return st;
    if (code == 1)
      return LXSHM_OK;
    if (code == -1)
      return rx_gone(h, err);
    if (code != 0)
      return lxshm__fail(err, LXSHM_CORRUPT, "unexpected reply to a push");
    registered = timeout != 0;
    if ((st = rx_expired(timeout, deadline, "queue is full", "queue still full", err)) != LXSHM_OK)
      return st;
    if ((st = ring_wait(L, h, "du", slice, err)) != LXSHM_OK)
      return st;
  }
}

/* q:push(v [, timeout]) -> true | nil, msg, code */
static int queue_push(lua_State *L) {
  rx_handle *h = check(L);
  double timeout = lxshm__opt_timeout(L, 3);
  rx_cmd cmd;
  lxshm_error err;
  lxshm_status st;

  luaL_checkany(L, 2);
  if (h->readonly)
    return rx_result(L, h, rx_refuse_readonly(h, &err), &err);
  lua_settop(L, 3);
  waiting_args(h, &cmd, &push_script, 1, timeout != 0, RX_SLICE);
  rx_arg_str(&cmd, "1");
  rx_arg(&cmd, "", 0); /* the value, encoded by push_until before each try */
  st = push_until(L, h, &cmd, 2, timeout, &err);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  return rx_result(L, h, st, &err);
}

/* q:push_many(list [, timeout]) -> true | nil, msg, code: all values or none, in order, next to
 * each other (one script). */
static int queue_push_many(lua_State *L) {
  rx_handle *h = check(L);
  double timeout;
  lua_Integer n, item;
  rx_cmd cmd;
  lxshm_error err;
  lxshm_status st;

  n = lxshm__check_list_args(L, &timeout);
  if (n == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (h->readonly)
    return rx_result(L, h, rx_refuse_readonly(h, &err), &err);
  waiting_args(h, &cmd, &push_script, 1, timeout != 0, RX_SLICE);
  rx_arg_int(&cmd, (long long)n);
  st = rx_encode_list(L, 2, n, rx_ring_max_value(h), h->size, "values take more than the queue's",
                      &cmd, &item, &err);
  if (st == LXSHM_OK)
    st = push_until(L, h, &cmd, 0, timeout, &err);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  if (item != 0)
    return lxshm__push_item_failure(L, h->name, item, st, &err);
  return rx_result(L, h, st, &err);
}

/* Runs the pop script until it returns values (or, peeking, at once); the reply goes in box. */
static lxshm_status pop_until(lua_State *L, rx_handle *h, redisReply **box, lua_Integer max,
                              int remove, double timeout, lxshm_error *err) {
  double deadline = rx_deadline(timeout);
  int registered = 0;
  for (;;) {
    const redisReply *r;
    rx_cmd cmd;
    double slice = rx_slice(rx_left(deadline));
    lxshm_status st;
    waiting_args(h, &cmd, &pop_script, 0, remove && timeout != 0, slice);
    if (registered)
      cmd.argv[WAITER_ARG + 2] = "1";
    rx_arg_int(&cmd, (long long)max);
    rx_arg_str(&cmd, remove ? "1" : "0");
    if ((st = rx_h_call(h, &pop_script, &cmd, 0, box, err)) != LXSHM_OK)
      return st;
    r = *box;
    if (r->type == REDIS_REPLY_INTEGER)
      return rx_gone(h, err);
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
      return lxshm__fail(err, LXSHM_CORRUPT, "unexpected reply to a pop");
    if (rx_int(r->element[0], 0) == 1)
      return r->elements >= 2 ? LXSHM_OK /* {1, values...} */
                              : lxshm__fail(err, LXSHM_CORRUPT, "unexpected reply to a pop");
    registered = remove && timeout != 0;
    if ((st = rx_expired(timeout, deadline, "queue is empty", "queue still empty", err)) !=
        LXSHM_OK)
      return st;
    rx_box_free(box);
    if ((st = ring_wait(L, h, "dp", slice, err)) != LXSHM_OK)
      return st;
  }
}

static int take_value(lua_State *L, int remove, double timeout) {
  rx_handle *h = check(L);
  redisReply **box;
  lxshm_error err;
  lxshm_status st;
  lua_settop(L, 2);
  box = rx_box_new(L); /* 3 */
  if (remove && h->readonly)
    return rx_result(L, h, rx_refuse_readonly(h, &err), &err);
  st = pop_until(L, h, box, 1, remove, timeout, &err);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  if (st == LXSHM_OK) {
    const redisReply *v = (*box)->element[1];
    st = v->type == REDIS_REPLY_STRING
             ? lxshm__push_bytes(L, v->str, v->len, LXSHM__FORMAT_MSGPACK, &err)
             : lxshm__fail(&err, LXSHM_CORRUPT, "a value is damaged");
  }
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  rx_box_free(box);
  return 1;
}

/* q:pop([timeout]) -> the oldest value | nil, msg, TIMEOUT */
LXSHM__VARIANT(queue_pop, take_value(L, 1, lxshm__opt_timeout(L, 2)))

/* q:peek() -> the oldest value, left in place | nil, msg, TIMEOUT when empty */
LXSHM__VARIANT(queue_peek, take_value(L, 0, 0))

/* q:pop_many(max [, timeout]) -> values, n | nil, msg, code */
static int queue_pop_many(lua_State *L) {
  rx_handle *h = check(L);
  double timeout;
  lua_Integer max = rx_check_max_args(L, &timeout);
  redisReply **box = rx_box_new(L); /* 4 */
  lxshm_error err;
  lxshm_status st;
  size_t i;

  if (h->readonly)
    return rx_result(L, h, rx_refuse_readonly(h, &err), &err);
  st = pop_until(L, h, box, max, 1, timeout, &err);
  if (st == LXSHM__INTERRUPTED)
    return lua_error(L);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  lua_createtable(L, (int)(*box)->elements - 1, 0); /* 5 */
  for (i = 1; i < (*box)->elements; i++) {
    const redisReply *v = (*box)->element[i];
    st = v->type == REDIS_REPLY_STRING
             ? lxshm__push_bytes(L, v->str, v->len, LXSHM__FORMAT_MSGPACK, &err)
             : lxshm__fail(&err, LXSHM_CORRUPT, "a value is damaged");
    if (st != LXSHM_OK) /* the values taken are lost with a damaged one among them */
      return lxshm__push_failure(L, h->name, st, &err);
    lua_rawseti(L, 5, (lua_Integer)i);
  }
  lua_pushinteger(L, (lua_Integer)(*box)->elements - 1);
  rx_box_free(box);
  return 2;
}

/* ---- introspection ------------------------------------------------------------------------ */

/* q:stat() -> { name, size, used, count, pop_waiters, push_waiters }: one run of the stat
 * script, which counts the waiters too. */
static lxshm_status stat(lua_State *L, rx_handle *h, int full, lxshm__figures *out,
                         lxshm_error *err) {
  rx_cmd cmd;
  (void)L;
  (void)full;
  rx_script_cmd(&cmd, &stat_script, 4);
  rx_arg_str(&cmd, h->meta);
  rx_arg_key(&cmd, h, "l");
  rx_arg_key(&cmd, h, "wp");
  rx_arg_key(&cmd, h, "wu");
  rx_arg_str(&cmd, h->inc);
  out->queue.size = h->size;
  return rx_figures(h, &stat_script, &cmd, out->figure + 1, 4, err); /* used … push_waiters */
}

LXSHM__VARIANT(queue_count, rx_figure(L, check(L), "count"))
LXSHM__VARIANT(queue_used, rx_figure(L, check(L), "used"))

static int queue_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check(L)->size);
  return 1;
}

static const luaL_Reg methods[] = {LXSHM__QUEUE_METHODS(LXSHM__METHOD){NULL, NULL}};

const rx_class rx_queue_class = {
    "lxshm.redis.queue", "lxshm.queue",           "queue", "_queue", methods, stat,
    LXSHM__QUEUE_NAMES,  "(%s bytes, %s values)", "count", NULL,     NULL};

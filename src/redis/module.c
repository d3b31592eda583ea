/* module.c — the Lua module lxshm.redis: connect(url, opts), the namespace it returns (the
 * constructors of every kind, and remove), what every handle shares (close, name, __gc,
 * __tostring, argument checks, results), and the scripts that make, open and remove objects.
 * Each kind's methods live in its own file. Two channels, as in the local module: a wrong
 * argument type or a closed handle raises; a failure a correct program can meet returns
 * nil, "NAME: cause", code. A raise never happens between sending a command and reading its
 * reply: conn.c does both without calling Lua. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ring.h"

#include "rx.h"

#define NS_MT "lxshm.redis.namespace"
#define BOX_MT "lxshm.redis.reply"

static const rx_class *const classes[] = {&rx_segment_class, &rx_queue_class, &rx_dict_class,
                                          &rx_topic_class};

/* ---- results ------------------------------------------------------------------------------ */

int rx_result(lua_State *L, rx_handle *h, lxshm_status st, const lxshm_error *err) {
  if (st == LXSHM_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return lxshm__push_failure(L, h->name, st, err);
}

lxshm_status rx_refuse_readonly(rx_handle *h, lxshm_error *err) {
  return lxshm__fail(err, LXSHM_PERMISSION, "opened read-only: this %s cannot be changed",
                     h->cls->kind);
}

/* ---- reply boxes -------------------------------------------------------------------------- */

static int box_gc(lua_State *L) {
  rx_box_free((redisReply **)lua_touserdata(L, 1));
  return 0;
}

redisReply **rx_box_new(lua_State *L) {
  redisReply **box = (redisReply **)lxshm_newuserdata(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, BOX_MT);
  return box;
}

void rx_box_free(redisReply **box) {
  if (box != NULL && *box != NULL) {
    freeReplyObject(*box);
    *box = NULL;
  }
}

/* ---- values --------------------------------------------------------------------------------- */

lxshm_status rx_encode(lua_State *L, int idx, size_t limit, const char **out, size_t *len,
                       lxshm_error *err) {
  return lxshm__encode(L, lxshm__encoder_of(L), idx, limit, out, len, err);
}

/* Gives cmd argument arrays with room for `extra` more arguments, in a userdata pushed on the
 * stack (the arguments so far are kept). Raises only on memory errors. */
static void cmd_reserve(lua_State *L, rx_cmd *cmd, size_t extra) {
  size_t cap = (size_t)cmd->argc + extra;
  char *mem = (char *)lxshm_newuserdata(L, cap * (sizeof(const char *) + sizeof(size_t)), 0);
  const char **argv = (const char **)(void *)mem;
  size_t *lens = (size_t *)(void *)(mem + cap * sizeof(const char *));
  memcpy(argv, cmd->argv, (size_t)cmd->argc * sizeof *argv);
  memcpy(lens, cmd->lens, (size_t)cmd->argc * sizeof *lens);
  cmd->argv = argv;
  cmd->lens = lens;
}

lxshm_status rx_encode_list(lua_State *L, int list, lua_Integer n, size_t limit, uint64_t total,
                            const char *what, rx_cmd *cmd, lua_Integer *item, lxshm_error *err) {
  lxshm__batch l;
  lxshm_status st;
  const char *buf;
  size_t off;

  list = lua_absindex(L, list);
  cmd_reserve(L, cmd, (size_t)n);
  l.cap = 4096;
  lxshm_newuserdata(L, l.cap, 0);
  l.at = lua_gettop(L);
  l.used = 0;
  l.total = UINT64_MAX; /* every value is encoded before the total is looked at */
  l.what = what;
  st = lxshm__encode_list(L, list, n, limit, &l, err);
  *item = l.item;
  if (st != LXSHM_OK)
    return st;
  if (l.used > total)
    return lxshm__fail(err, LXSHM_INVALID_SIZE, "%lld %s %llu bytes", (long long)n, what,
                       (unsigned long long)total);
  buf = (const char *)lua_touserdata(L, l.at); /* moves no more: arguments point into it */
  for (off = 0; off < l.used;) {
    const char *data;
    size_t len;
    unsigned format;
    off += lxshm__record_get(buf + off, l.used - off, &data, &len, &format);
    rx_arg(cmd, data, len);
  }
  return LXSHM_OK;
}

/* ---- handles -------------------------------------------------------------------------------- */

static int type_error(lua_State *L, int arg, const char *tname) {
  const char *got;
  if (luaL_getmetafield(L, arg, "__name") && lua_type(L, -1) == LUA_TSTRING)
    got = lua_tostring(L, -1);
  else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA)
    got = "light userdata";
  else
    got = luaL_typename(L, arg);
  return luaL_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", tname, got));
}

/* The handle at argument 1 of any kind (cls NULL) or of class cls, whatever its state. */
static rx_handle *to_handle(lua_State *L, const rx_class *cls) {
  size_t i;
  if (cls != NULL) {
    rx_handle *h = (rx_handle *)luaL_testudata(L, 1, cls->mt);
    if (h == NULL)
      type_error(L, 1, cls->type_name);
    return h;
  }
  for (i = 0; i < sizeof classes / sizeof classes[0]; i++) {
    rx_handle *h = (rx_handle *)luaL_testudata(L, 1, classes[i]->mt);
    if (h != NULL)
      return h;
  }
  type_error(L, 1, classes[0]->type_name);
  return NULL;
}

rx_handle *rx_check(lua_State *L, const rx_class *cls) {
  rx_handle *h = to_handle(L, cls);
  if (h->closed)
    luaL_error(L, "attempt to use a closed lxshm %s", cls->kind);
  return h;
}

void rx_check_not_busy(lua_State *L, rx_handle *h) {
  if (h->busy)
    luaL_error(L, "%s: cannot change a %s inside its own update", h->name, h->cls->kind);
}

/* ---- update's own objects -----------------------------------------------------------------
 * update runs its function between reading and storing; a change of the same object from
 * inside the function would make every try conflict (locally: wait for the lock it holds), so
 * it raises, through any handle of this thread. */
#define UPDATE_DEPTH 16 /* update() calls nested this deep at most */
static _Thread_local const rx_handle *updating[UPDATE_DEPTH];
static _Thread_local int updating_depth;

void rx_check_not_updating(lua_State *L, rx_handle *h, const char *what) {
  int i;
  rx_check_not_busy(L, h);
  for (i = 0; i < updating_depth; i++)
    if (strcmp(updating[i]->meta, h->meta) == 0 && updating[i]->ns != NULL && h->ns != NULL &&
        strcmp(updating[i]->ns->url, h->ns->url) == 0)
      luaL_error(L, "%s: cannot change a %s inside its own update", h->name, what);
}

void rx_check_update_depth(lua_State *L, rx_handle *h) {
  if (updating_depth == UPDATE_DEPTH)
    luaL_error(L, "%s: updates nested too deeply", h->name);
}

int rx_update_call(lua_State *L, rx_handle *h, int nargs) {
  int rc;
  rx_check_update_depth(L, h);
  h->busy = 1;
  updating[updating_depth++] = h;
  rc = lua_pcall(L, nargs, 1, 0);
  updating_depth--;
  h->busy = 0;
  return rc;
}

size_t rx_key(const rx_handle *h, const char *suffix, char *buf) {
  size_t n = strlen(suffix);
  if (h->baselen + n >= RX_KEY_MAX)
    n = RX_KEY_MAX - 1 - h->baselen;
  memcpy(buf, h->base, h->baselen);
  memcpy(buf + h->baselen, suffix, n);
  buf[h->baselen + n] = '\0';
  return h->baselen + n;
}

void rx_arg_key(rx_cmd *cmd, const rx_handle *h, const char *suffix) {
  int i;
  for (i = 0; i < 6; i++) /* the first free key buffer */
    if (cmd->keys[i][0] == '\0')
      break;
  if (i == 6)
    i = 5;
  rx_arg(cmd, cmd->keys[i], rx_key(h, suffix, cmd->keys[i]));
}

/* A method can run Lua code between its commands: a finalizer while it allocates, a hook between
 * the slices of a blocking call. If that code closed the handle, its connections are gone, and
 * the method's next command fails instead of using them (as push_stat does). */
static lxshm_status closed_meanwhile(lxshm_error *err) {
  return lxshm__fail(err, LXSHM_INVALID, "closed during the call");
}

lxshm_status rx_h_command(rx_handle *h, rx_cmd *cmd, double block, redisReply **out,
                          lxshm_error *err) {
  if (h->ns == NULL)
    return closed_meanwhile(err);
  return rx_command(h->ns, &h->conn, h->slot, cmd, block, out, err);
}

lxshm_status rx_h_eval(rx_handle *h, rx_script *s, rx_cmd *cmd, redisReply **out,
                       lxshm_error *err) {
  if (h->ns == NULL)
    return closed_meanwhile(err);
  return rx_eval(h->ns, &h->conn, h->slot, s, cmd, out, err);
}

lxshm_status rx_gone(const rx_handle *h, lxshm_error *err) {
  if (h->ns == NULL)
    return closed_meanwhile(err);
  return lxshm__fail(err, LXSHM_NOT_FOUND, "was removed (in Redis at %s)", h->ns->url);
}

lua_Integer rx_check_max_args(lua_State *L, double *timeout) {
  lua_Integer max = lxshm__check_max_args(L, timeout);
  /* No Lua table holds more; and the scripts would pass a larger count to Redis as a float
   * ("9.2233720368548e+18"), which LPOP and XRANGE refuse. */
  return max > INT_MAX ? INT_MAX : max;
}

size_t rx_ring_max_value(const rx_handle *h) {
  return h->size >= 8 ? (size_t)(h->size - 8) : 0;
}

lxshm_status rx_h_call(rx_handle *h, rx_script *s, rx_cmd *cmd, double block, redisReply **box,
                       lxshm_error *err) {
  redisReply *r;
  lxshm_status st =
      s != NULL ? rx_h_eval(h, s, cmd, &r, err) : rx_h_command(h, cmd, block, &r, err);
  if (st != LXSHM_OK)
    return st;
  rx_box_free(box);
  *box = r;
  return r->type == REDIS_REPLY_ERROR ? rx_error_status(r, err) : LXSHM_OK;
}

lxshm_status rx_h_int(rx_handle *h, rx_script *s, rx_cmd *cmd, double block, long long def,
                      long long *n, lxshm_error *err) {
  redisReply *r = NULL;
  lxshm_status st = rx_h_call(h, s, cmd, block, &r, err);
  if (st == LXSHM_OK && n != NULL)
    *n = rx_int(r, def);
  rx_box_free(&r);
  return st;
}

lxshm_status rx_run(rx_handle *h, rx_script *s, rx_cmd *cmd, redisReply **box, long long *code,
                    lxshm_error *err) {
  lxshm_status st = rx_h_call(h, s, cmd, 0, box, err);
  const redisReply *r = *box;
  if (st != LXSHM_OK)
    return st;
  if (r->type == REDIS_REPLY_INTEGER)
    *code = r->integer;
  else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1)
    *code = rx_int(r->element[0], -9);
  else
    return lxshm__fail(err, LXSHM_CORRUPT, "unexpected reply from Redis");
  return *code == -1 ? rx_gone(h, err) : LXSHM_OK;
}

lxshm_status rx_figures(rx_handle *h, rx_script *s, rx_cmd *cmd, uint64_t *f, size_t n,
                        lxshm_error *err) {
  redisReply *r = NULL;
  lxshm_status st = rx_h_call(h, s, cmd, 0, &r, err);
  size_t i;
  if (st == LXSHM_OK && r->type == REDIS_REPLY_INTEGER && r->integer == -1)
    st = rx_gone(h, err);
  else if (st == LXSHM_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != n))
    st = lxshm__fail(err, LXSHM_CORRUPT, "unexpected reply from Redis");
  for (i = 0; st == LXSHM_OK && i < n; i++)
    f[i] = (uint64_t)rx_int(r->element[i], 0);
  rx_box_free(&r);
  return st;
}

/* Pushes the table h:stat() returns (full as the class's stat takes it); or fails with nothing
 * pushed. */
static lxshm_status push_stat(lua_State *L, rx_handle *h, int full, lxshm_error *err) {
  lxshm__figures f;
  lxshm_status st;
  lua_createtable(L, 0, 10);
  lua_pushstring(L, h->name);
  lua_setfield(L, -2, "name");
  if (h->closed) /* by a finalizer that an allocation ran */
    st = lxshm__fail(err, LXSHM_INVALID, "closed while its stat was read");
  else
    st = h->cls->stat(L, h, full, &f, err);
  if (st == LXSHM_OK)
    lxshm__set_figures(L, h->cls->figures, f.figure);
  else
    lua_pop(L, 1);
  return st;
}

int rx_figure(lua_State *L, rx_handle *h, const char *name) {
  lxshm_error err;
  lxshm_status st = push_stat(L, h, 0, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, rx_check(L, h->cls)->name, st, &err);
  lua_getfield(L, -1, name);
  return 1;
}

lxshm_status rx_client_id(rx_handle *h, long long *id, lxshm_error *err) {
  if (h->conn.c == NULL || h->conn.id == 0) {
    rx_cmd cmd;
    redisReply *r;
    lxshm_status st;
    rx_cmd_init(&cmd);
    rx_arg_str(&cmd, "PING");
    if ((st = rx_h_command(h, &cmd, 0, &r, err)) != LXSHM_OK)
      return st;
    freeReplyObject(r);
  }
  *id = h->conn.id;
  return LXSHM_OK;
}

uint64_t rx_blocked_clients(rx_handle *h) {
  rx_cmd cmd;
  redisReply *r;
  lxshm_error err;
  uint64_t n = 0;
  char want[RX_KEY_MAX + 16];
  const char *p;
  size_t wl;

  rx_cmd_init(&cmd);
  rx_arg_str(&cmd, "CLIENT");
  rx_arg_str(&cmd, "LIST");
  if (rx_h_command(h, &cmd, 0, &r, &err) != LXSHM_OK)
    return 0;
  if (r->type == REDIS_REPLY_STRING) {
    wl = (size_t)snprintf(want, sizeof want, " name=%s ", h->client_name);
    for (p = r->str; (p = strstr(p, want)) != NULL; p += wl) {
      const char *eol = strchr(p, '\n'), *flags = strstr(p, " flags=");
      if (flags != NULL && (eol == NULL || flags < eol)) {
        const char *f = flags + 7;
        while (*f != ' ' && *f != '\n' && *f != '\0' && *f != 'b')
          f++;
        if (*f == 'b')
          n++;
      }
    }
  }
  freeReplyObject(r);
  return n;
}

/* Drops what the handle holds (connection, namespace): close, __gc. */
static void release(rx_handle *h) {
  rx_conn_drop(&h->conn);
  if (h->ns != NULL) {
    rx_ns *ns = h->ns;
    h->ns = NULL;
    rx_ns_release(ns);
  }
}

/* h:close(), __close, __gc: idempotent. Raises inside the handle's own update. */
static int handle_close(lua_State *L) {
  rx_handle *h = to_handle(L, NULL);
  if (h->busy)
    return luaL_error(L, "%s: cannot close a %s inside its own update", h->name, h->cls->kind);
  h->closed = 1;
  release(h);
  return 0;
}

static int handle_gc(lua_State *L) {
  rx_handle *h = to_handle(L, NULL);
  h->closed = 1;
  release(h);
  return 0;
}

/* h:stat(), for the class it was called as (upvalue 2). */
static int handle_stat(lua_State *L) {
  rx_handle *h = rx_check(L, (const rx_class *)lua_touserdata(L, lua_upvalueindex(2)));
  lxshm_error err;
  lxshm_status st = push_stat(L, h, 1, &err);
  return st == LXSHM_OK ? 1 : lxshm__push_failure(L, rx_check(L, h->cls)->name, st, &err);
}

static int handle_tostring(lua_State *L) {
  rx_handle *h = to_handle(L, NULL);
  const rx_class *c = h->cls;
  lxshm_error err;
  if (h->closed || c->shown == NULL || push_stat(L, h, 0, &err) != LXSHM_OK)
    lua_pushnil(L);
  lxshm__push_handle_string(L, c->type_name, h->name, h->closed, c->description, h->size, c->shown);
  return 1;
}

static int handle_name(lua_State *L) {
  rx_handle *h = to_handle(L, NULL);
  lua_pushstring(L, rx_check(L, h->cls)->name);
  return 1;
}

/* ---- making, opening and removing objects --------------------------------------------------
 * The object NAME under prefix P is the hash "{P..NAME}" (its kind, size, incarnation, counters)
 * and keys "{P..NAME}:INC:…" for its data: one hash tag, so one Cluster slot. A create makes a
 * new incarnation: handles of a removed object never touch a new object of the same name. */

static rx_script make_script = {
    "local m = KEYS[1]\n"
    "local have = redis.call('HMGET', m, 'kind', 'size', 'inc', 'cursors')\n"
    "if have[1] then\n"
    "  if ARGV[1] == 'create' then return {1} end\n"
    "  return {0, have[1], have[2], have[3], have[4] or '0'}\n"
    "end\n"
    "if ARGV[1] == 'open' then return {4} end\n"
    "local kind, size, inc = ARGV[2], ARGV[3], ARGV[4]\n"
    "redis.call('HSET', m, 'kind', kind, 'size', size, 'inc', inc, 'mode', ARGV[5],\n"
    "  'cursors', ARGV[6], 'used', 0, 'ver', 0, 'last', 0, 'evictions', 0, 'expirations', 0)\n"
    "local base = m .. ':' .. inc .. ':'\n"
    "local stream = (kind == 'segment' and 's') or (kind == 'topic' and 'x')\n"
    "if stream then\n"
    "  redis.call('XGROUP', 'CREATE', base .. stream, 'lxshm', '$', 'MKSTREAM')\n"
    "  redis.call('XGROUP', 'DESTROY', base .. stream, 'lxshm')\n"
    "end\n"
    "return {2, kind, size, inc, ARGV[6]}\n",
    ""};

/* Deletes every key of the object, then wakes whoever blocks on it (they find it gone): the
 * streams "gs" and the list "gl" outlive the object by 10 s for that. */
static rx_script remove_script = {
    "local m = KEYS[1]\n"
    "local have = redis.call('HMGET', m, 'kind', 'inc')\n"
    "if not have[1] then return 0 end\n"
    "local kind, base = have[1], m .. ':' .. (have[2] or '') .. ':'\n"
    "local waiting = 1\n"
    "if kind == 'segment' then redis.call('DEL', base .. 's')\n"
    "elseif kind == 'queue' then\n"
    "  waiting = waiting + redis.call('ZCARD', base .. 'wp') + redis.call('ZCARD', base .. 'wu')\n"
    "  redis.call('DEL', base .. 'l', base .. 'wp', base .. 'dp', base .. 'wu', base .. 'du')\n"
    "elseif kind == 'dict' then\n"
    "  local keys = redis.call('ZRANGE', base .. 'i', 0, -1)\n"
    "  for i = 1, #keys do\n"
    "    redis.call('DEL', base .. 'k:' .. keys[i], base .. 'w:' .. keys[i])\n"
    "  end\n"
    "  redis.call('DEL', base .. 'i', base .. 'z', base .. 'f')\n"
    "elseif kind == 'topic' then redis.call('DEL', base .. 'x', base .. 'p', base .. 'h')\n"
    "end\n"
    "redis.call('DEL', m)\n"
    "redis.call('XADD', base .. 'gs', '*', 'removed', 1)\n"
    "redis.call('PEXPIRE', base .. 'gs', 10000)\n"
    "for i = 1, waiting, 100 do\n"
    "  local t = {}\n"
    "  for j = i, math.min(waiting, i + 99) do t[#t + 1] = 'x' end\n"
    "  redis.call('RPUSH', base .. 'gl', unpack(t))\n"
    "end\n"
    "redis.call('PEXPIRE', base .. 'gl', 10000)\n"
    "return 1\n",
    ""};

typedef struct ns_box {
  rx_ns *ns; /* NULL once closed */
} ns_box;

static rx_ns *check_ns(lua_State *L) {
  ns_box *b = (ns_box *)luaL_testudata(L, 1, NS_MT);
  if (b == NULL)
    type_error(L, 1, "lxshm.namespace");
  if (b->ns == NULL)
    luaL_error(L, "attempt to use a closed lxshm namespace");
  return b->ns;
}

/* check_ns, and a reference taken, which the caller gives back (rx_ns_release) or hands to a
 * handle: Lua code that the method runs while it allocates (a finalizer) may close the
 * namespace, and its connections must outlive the method. */
static rx_ns *hold_ns(lua_State *L) {
  rx_ns *ns = check_ns(L);
  ns->refs++;
  return ns;
}

static void set_names(rx_handle *h, const rx_ns *ns, const char *name) {
  snprintf(h->name, sizeof h->name, "%s", name);
  snprintf(h->meta, sizeof h->meta, "{%s%s}", ns->prefix, name);
  snprintf(h->client_name, sizeof h->client_name, "lx:%s", h->meta);
  h->slot = rx_slot(h->meta, strlen(h->meta));
}

static void set_incarnation(rx_handle *h, const char *inc, size_t n) {
  if (n >= sizeof h->inc)
    n = sizeof h->inc - 1;
  memcpy(h->inc, inc, n);
  h->inc[n] = '\0';
  h->baselen = (size_t)snprintf(h->base, sizeof h->base, "%s:%s:", h->meta, h->inc);
}

/* ns:create{,_queue,_dict,_topic}(name, size [, opts]), ns:open…(name [, opts]),
 * ns:attach…(name, size [, opts]) -> handle | nil, msg, code. Options as the local module reads
 * them: `readonly` works; `trust` is accepted (Redis has no owners); `mode` is kept in the
 * object's facts but restricts nobody (Redis has no per-key permissions: use ACLs). */
static int construct(lua_State *L, lxshm__verb verb) {
  const rx_class *cls = (const rx_class *)lua_touserdata(L, lua_upvalueindex(2));
  rx_ns *ns = check_ns(L);
  rx_handle *h;
  rx_cmd cmd;
  redisReply **box;
  redisReply *r;
  lxshm_status st;
  lxshm_error err;
  lxshm__options o;
  uint64_t size;
  char inc[17], num[32], mode[16], cursors[24];
  long long code;
  const char *name = lxshm__check_constructor(L, 2, verb, cls->option, &size, &o);

  if (name == NULL)
    return 3;
  if (cls == &rx_queue_class)
    size = (size + 7) & ~(uint64_t)7; /* as the local queue rounds its ring */
  lua_settop(L, 4);
  ns = hold_ns(L); /* again: the checks may have run a finalizer; the reference is h's below */
  h = (rx_handle *)lxshm_newuserdata(L, sizeof *h, 2); /* 5: before any command */
  memset(h, 0, sizeof *h);
  h->ns = ns; /* its __gc gives the reference back, whether it is made or not */
  h->cls = cls;
  h->closed = 1; /* until it is made */
  luaL_setmetatable(L, cls->mt);
  lua_pushvalue(L, 1);
  lxshm_setuservalue(L, 5, 1);
  box = rx_box_new(L); /* 6 */
  set_names(h, ns, name);
  h->conn.client_name = h->client_name;
  rx_unique(inc);
  snprintf(num, sizeof num, "%llu", (unsigned long long)size);
  snprintf(mode, sizeof mode, "%o", o.mode);
  snprintf(cursors, sizeof cursors, "%lu",
           (unsigned long)(cls->option != NULL ? o.params[0] : LXSHM_TOPIC_CURSORS));
  rx_script_cmd(&cmd, &make_script, 1);
  rx_arg_str(&cmd, h->meta);
  rx_arg_str(&cmd, verb == LXSHM__CREATE ? "create" : verb == LXSHM__OPEN ? "open" : "attach");
  rx_arg_str(&cmd, cls->kind);
  rx_arg_str(&cmd, num);
  rx_arg_str(&cmd, inc);
  rx_arg_str(&cmd, mode);
  rx_arg_str(&cmd, cursors);
  st = rx_eval(ns, &ns->main, h->slot, &make_script, &cmd, &r, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, name, st, &err);
  *box = r;
  if (r->type == REDIS_REPLY_ERROR)
    return lxshm__push_failure(L, name, rx_error_status(r, &err), &err);
  code = r->type == REDIS_REPLY_ARRAY && r->elements >= 1 ? rx_int(r->element[0], -1) : -1;
  if (code == 1)
    return lxshm__push_failure(L, name, LXSHM_EXISTS, NULL);
  if (code == 4) {
    lxshm__fail(&err, LXSHM_NOT_FOUND, "does not exist");
    return lxshm__push_failure(L, name, LXSHM_NOT_FOUND, &err);
  }
  if ((code != 0 && code != 2) || r->elements < 5 || r->element[1]->type != REDIS_REPLY_STRING ||
      r->element[3]->type != REDIS_REPLY_STRING) {
    lxshm__fail(&err, LXSHM_CORRUPT, "the object's facts in Redis are damaged");
    return lxshm__push_failure(L, name, LXSHM_CORRUPT, &err);
  }
  if (strcmp(r->element[1]->str, cls->kind) != 0) {
    const char *use = strcmp(r->element[1]->str, "segment") == 0 ? "open"
                      : strcmp(r->element[1]->str, "queue") == 0 ? "open_queue"
                      : strcmp(r->element[1]->str, "dict") == 0  ? "open_dict"
                                                                 : "open_topic";
    lxshm__fail(&err, LXSHM_INVALID, "is a %s, not a %s (use %s)", r->element[1]->str, cls->kind,
                use);
    return lxshm__push_failure(L, name, LXSHM_INVALID, &err);
  }
  h->size = (uint64_t)rx_int(r->element[2], 0);
  h->cursors = (uint32_t)rx_int(r->element[4], LXSHM_TOPIC_CURSORS);
  set_incarnation(h, r->element[3]->str, r->element[3]->len);
  if (h->size == 0) {
    lxshm__fail(&err, LXSHM_CORRUPT, "the object's facts in Redis are damaged");
    return lxshm__push_failure(L, name, LXSHM_CORRUPT, &err);
  }
  h->readonly = (o.flags & LXSHM_READONLY) != 0;
  rx_unique(inc);
  snprintf(h->waiter, sizeof h->waiter, "%s", inc);
  if (cls->opened != NULL && (st = cls->opened(h, r, &err)) != LXSHM_OK)
    return lxshm__push_failure(L, name, st, &err);
  rx_box_free(box);
  h->closed = 0;
  lua_pushvalue(L, 5);
  return 1;
}

LXSHM__VARIANT(ns_create, construct(L, LXSHM__CREATE))
LXSHM__VARIANT(ns_open, construct(L, LXSHM__OPEN))
LXSHM__VARIANT(ns_attach, construct(L, LXSHM__ATTACH))

/* ns:remove(name) -> true | nil, msg, code: any kind. */
static int ns_remove(lua_State *L) {
  rx_ns *ns = check_ns(L);
  const char *name = lxshm__check_name_arg(L, 2);
  char meta[RX_KEY_MAX];
  redisReply *r;
  rx_cmd cmd;
  lxshm_status st;
  lxshm_error err;
  long long n;
  if (name == NULL)
    return 3;
  ns = check_ns(L); /* again: reading the name may have run a finalizer that closed it */
  snprintf(meta, sizeof meta, "{%s%s}", ns->prefix, name);
  rx_script_cmd(&cmd, &remove_script, 1);
  rx_arg_str(&cmd, meta);
  st = rx_eval(ns, &ns->main, rx_slot(meta, strlen(meta)), &remove_script, &cmd, &r, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, name, st, &err);
  if (r->type == REDIS_REPLY_ERROR) {
    st = rx_error_status(r, &err);
    freeReplyObject(r);
    return lxshm__push_failure(L, name, st, &err);
  }
  n = rx_int(r, 0);
  freeReplyObject(r);
  if (n != 1) {
    lxshm__fail(&err, LXSHM_NOT_FOUND, "does not exist");
    return lxshm__push_failure(L, name, LXSHM_NOT_FOUND, &err);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Adds to the table on the stack top the object names among the keys of a SCAN reply's batch:
 * an object is the hash "{PREFIX+NAME}" (its other keys have a suffix after the brace). */
static void add_names(lua_State *L, rx_ns *ns, const redisReply *keys) {
  size_t i, plen = strlen(ns->prefix);
  for (i = 0; i < keys->elements; i++) {
    const redisReply *k = keys->element[i];
    size_t n;
    if (k->type != REDIS_REPLY_STRING || k->len < plen + 3 || k->str[0] != '{' ||
        k->str[k->len - 1] != '}' || memcmp(k->str + 1, ns->prefix, plen) != 0)
      continue;
    n = k->len - plen - 2;
    if (lxshm__check_name(k->str + 1 + plen, n, "", NULL) != LXSHM_OK)
      continue;
    lua_pushlstring(L, k->str + 1 + plen, n);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
  }
}

/* The glob that SCAN matches object hashes with: "{PREFIX*}", the prefix's glob characters
 * escaped. */
static void scan_pattern(const rx_ns *ns, char *out, size_t cap) {
  size_t i, n = 0;
  out[n++] = '{';
  for (i = 0; ns->prefix[i] != '\0' && n + 4 < cap; i++) {
    char c = ns->prefix[i];
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\')
      out[n++] = '\\';
    out[n++] = c;
  }
  out[n++] = '*';
  out[n++] = '}';
  out[n] = '\0';
}

/* Scans the node serving `slot` for object hashes, adding their names to the table on the
 * stack top. */
static lxshm_status scan_node(lua_State *L, rx_ns *ns, int slot, const char *pattern,
                              lxshm_error *err) {
  char cursor[32] = "0";
  do {
    redisReply *r;
    rx_cmd cmd;
    lxshm_status st;
    rx_cmd_init(&cmd);
    rx_arg_str(&cmd, "SCAN");
    rx_arg_str(&cmd, cursor);
    rx_arg_str(&cmd, "MATCH");
    rx_arg_str(&cmd, pattern);
    rx_arg_str(&cmd, "COUNT");
    rx_arg_str(&cmd, "1000");
    rx_arg_str(&cmd, "TYPE");
    rx_arg_str(&cmd, "hash");
    if ((st = rx_command(ns, &ns->main, slot, &cmd, 0, &r, err)) != LXSHM_OK)
      return st;
    if (r->type == REDIS_REPLY_ERROR || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
      st = r->type == REDIS_REPLY_ERROR
               ? rx_error_status(r, err)
               : lxshm__fail(err, LXSHM_CORRUPT, "SCAN gave an unexpected reply");
      freeReplyObject(r);
      return st;
    }
    snprintf(cursor, sizeof cursor, "%.*s", (int)r->element[0]->len, r->element[0]->str);
    add_names(L, ns, r->element[1]);
    freeReplyObject(r);
  } while (strcmp(cursor, "0") != 0);
  return LXSHM_OK;
}

/* ns:list() -> { name, ... } of every object under the namespace's prefix, sorted | nil, msg,
 * code. A Cluster's nodes are scanned one by one (each object lives on one of them). */
static int ns_list(lua_State *L) {
  rx_ns *ns = hold_ns(L); /* the names found are allocated between the SCANs */
  char pattern[2 * RX_PREFIX_MAX + 4];
  lxshm_status st = LXSHM_OK;
  lxshm_error err;
  int node, slot;

  scan_pattern(ns, pattern, sizeof pattern);
  lua_settop(L, 1);
  lua_newtable(L); /* 2: the names found, as keys */
  if (!ns->cluster)
    st = scan_node(L, ns, 0, pattern, &err);
  for (node = 0; ns->cluster && st == LXSHM_OK && node < ns->nnodes; node++)
    for (slot = 0; slot < RX_SLOTS; slot++)
      if (ns->slots[slot] == node) { /* any slot of the node routes the SCAN to it */
        st = scan_node(L, ns, slot, pattern, &err);
        break;
      }
  rx_ns_release(ns);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, "list", st, &err);
  lua_newtable(L); /* 3: the list */
  lua_pushnil(L);
  while (lua_next(L, 2) != 0) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, 3, (lua_Integer)lua_rawlen(L, 3) + 1);
  }
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "sort");
  lua_pushvalue(L, 3);
  lua_call(L, 1, 0);
  lua_settop(L, 3);
  return 1;
}

/* ns:close(): closes the namespace's own connections; handles keep theirs. Idempotent. */
static int ns_close(lua_State *L) {
  ns_box *b = (ns_box *)luaL_testudata(L, 1, NS_MT);
  if (b == NULL)
    return type_error(L, 1, "lxshm.namespace");
  if (b->ns != NULL) {
    rx_ns *ns = b->ns;
    b->ns = NULL;
    rx_ns_release(ns);
  }
  return 0;
}

static int ns_tostring(lua_State *L) {
  ns_box *b = (ns_box *)luaL_checkudata(L, 1, NS_MT);
  if (b->ns == NULL)
    lua_pushliteral(L, "lxshm.namespace: (closed)");
  else
    lua_pushfstring(L, "lxshm.namespace: %s%s", b->ns->url, b->ns->cluster ? " (cluster)" : "");
  return 1;
}

/* ns:url() -> the URL given to connect; ns:cluster() -> true for a Redis Cluster. */
static int ns_url(lua_State *L) {
  lua_pushstring(L, check_ns(L)->url);
  return 1;
}

static int ns_is_cluster(lua_State *L) {
  lua_pushboolean(L, check_ns(L)->cluster);
  return 1;
}

/* ---- connect ------------------------------------------------------------------------------ */

/* connect(url [, opts]) -> namespace | nil, msg, code. opts: password, prefix, timeout (seconds
 * to connect and to wait for a reply; default 5), cluster (true/false; default: ask). */
static int mod_connect(lua_State *L) {
  const char *url = luaL_checkstring(L, 1);
  const char *password = NULL, *prefix = "lxshm:";
  double timeout = 5;
  int cluster = -1;
  ns_box *b;
  rx_ns *ns;
  lxshm_error err;
  lxshm_status st;

  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2) != 0) {
      size_t len = 0;
      const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
      if (key != NULL && lxshm__is_key(key, len, "password")) {
        luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2, "option 'password' must be a string");
        password = lua_tostring(L, -1);
      }
      else if (key != NULL && lxshm__is_key(key, len, "prefix")) {
        size_t pl, i;
        const char *p;
        luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2, "option 'prefix' must be a string");
        p = lua_tolstring(L, -1, &pl);
        for (i = 0; i < pl; i++)
          luaL_argcheck(L, (unsigned char)p[i] > 0x20 && p[i] != 0x7f && p[i] != '{' && p[i] != '}',
                        2, "option 'prefix' must be printable, without spaces or braces");
        luaL_argcheck(L, pl <= RX_PREFIX_MAX, 2, "option 'prefix' is longer than 64 bytes");
        prefix = p;
      }
      else if (key != NULL && lxshm__is_key(key, len, "timeout")) {
        lua_Number t = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
        luaL_argcheck(L, t > 0 && !isinf(t), 2, "option 'timeout' must be a number of seconds > 0");
        timeout = (double)t;
      }
      else if (key != NULL && lxshm__is_key(key, len, "cluster")) {
        luaL_argcheck(L, lua_type(L, -1) == LUA_TBOOLEAN, 2, "option 'cluster' must be a boolean");
        cluster = lua_toboolean(L, -1);
      }
      else
        luaL_argerror(L, 2,
                      lua_pushfstring(L, "unknown option '%s'",
                                      key != NULL && strlen(key) == len ? key : "?"));
      lua_pop(L, 1);
    }
  }
  b = (ns_box *)lxshm_newuserdata(L, sizeof *b, 0);
  b->ns = NULL;
  luaL_setmetatable(L, NS_MT);
  ns = (rx_ns *)calloc(1, sizeof *ns);
  if (ns == NULL)
    return luaL_error(L, "not enough memory");
  ns->refs = 1;
  b->ns = ns; /* from here the box's __gc frees ns */
  ns->timeout = timeout;
  snprintf(ns->prefix, sizeof ns->prefix, "%s", prefix);
  st = rx_parse_url(ns, url, &err);
  if (st == LXSHM_OK && password != NULL) {
    free(ns->password);
    ns->password = strdup(password);
  }
  if (st == LXSHM_OK)
    st = rx_ns_start(ns, cluster, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, "connect", st, &err);
  return 1;
}

LXSHM__VARIANT(ns_gc, ns_close(L))

/* ---- registration ------------------------------------------------------------------------- */

static const luaL_Reg handle_methods[] = {
    {"close", handle_close}, {"name", handle_name}, {"stat", handle_stat}, {NULL, NULL}};

static const luaL_Reg handle_meta[] = {
    {"__gc", handle_gc}, {"__close", handle_close}, {"__tostring", handle_tostring}, {NULL, NULL}};

/* The namespace's metatable: its constructors (encoder and class as upvalues), remove, close. */
static void new_namespace_class(lua_State *L) {
  static const lua_CFunction verbs[3] = {ns_create, ns_open, ns_attach};
  static const luaL_Reg methods[] = {{"remove", ns_remove},      {"list", ns_list},
                                     {"close", ns_close},        {"url", ns_url},
                                     {"cluster", ns_is_cluster}, {NULL, NULL}};
  size_t i;
  luaL_newmetatable(L, NS_MT);
  lua_pushliteral(L, "lxshm.namespace");
  lua_setfield(L, -2, "__name");
  lua_pushcfunction(L, ns_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, ns_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, ns_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_newtable(L);
  lua_pushvalue(L, -3); /* the encoder */
  luaL_setfuncs(L, methods, 1);
  for (i = 0; i < sizeof classes / sizeof classes[0]; i++)
    lxshm__add_constructors(L, -3, classes[i]->suffix, classes[i], verbs);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

LXSHM_API int luaopen_lxshm_redis(lua_State *L);

LXSHM_API int luaopen_lxshm_redis(lua_State *L) {
  size_t i;
  luaL_checkversion(L);
  luaL_newmetatable(L, BOX_MT);
  lua_pushcfunction(L, box_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lxshm__encoder_push(L); /* one per lua_State: every function gets it as upvalue 1 */
  for (i = 0; i < sizeof classes / sizeof classes[0]; i++)
    lxshm__new_class(L, classes[i]->mt, classes[i]->type_name, classes[i], handle_meta,
                     handle_methods, classes[i]->methods);
  new_namespace_class(L);
  rx_topic_open(L);
  lua_newtable(L);
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, mod_connect, 1);
  lua_setfield(L, -2, "connect");
  lua_pushliteral(L, "lxshm.redis " LXSHM_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}

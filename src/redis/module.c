/* module.c — the Lua module lxshm.redis: connect(url, opts), the namespace it returns (the
 * constructors of every kind, and remove), what every handle shares (close, name, __gc,
 * __tostring, argument checks, results), and the scripts that make, open and remove objects.
 * Each kind's methods live in its own file. Two channels, as in the local module: a wrong
 * argument type or a closed handle raises; a failure a correct program can meet returns
 * nil, "NAME: cause", code. A raise never happens between sending a command and reading its
 * reply: conn.c does both without calling Lua. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rx.h"

#define NS_MT "lxshm.redis.namespace"
#define BOX_MT "lxshm.redis.reply"

static const rx_class *const classes[] = {&rx_segment_class, &rx_queue_class, &rx_dict_class,
                                          &rx_topic_class};

/* ---- results ------------------------------------------------------------------------------ */

int rx_fail(lua_State *L, const char *who, lxshm_status st, const lxshm_error *err) {
  const char *cause = (err != NULL && err->message[0] != '\0') ? err->message : lxshm_strerror(st);
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", who, cause);
  lua_pushinteger(L, (lua_Integer)st);
  return 3;
}

int rx_result(lua_State *L, rx_handle *h, lxshm_status st, const lxshm_error *err) {
  if (st == LXSHM_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return rx_fail(L, h->name, st, err);
}

lxshm_status rx_refuse_readonly(rx_handle *h, lxshm_error *err) {
  return lxshm__fail(err, LXSHM_PERMISSION, "opened read-only: this %s cannot be changed",
                     h->cls->kind);
}

const char *rx_push_u64(lua_State *L, uint64_t n) {
  char buf[24];
  snprintf(buf, sizeof buf, "%llu", (unsigned long long)n);
  lua_pushstring(L, buf);
  return lua_tostring(L, -1);
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

lxshm_status rx_push_value(lua_State *L, const char *p, size_t len, int raw, lxshm_error *err) {
  if (raw) {
    lua_pushlstring(L, p, len);
    return LXSHM_OK;
  }
  return lxshm__decode(L, p, len, err);
}

lxshm_status rx_encode(lua_State *L, int idx, size_t limit, const char **out, size_t *len,
                       lxshm_error *err) {
  return lxshm__encode(L, rx_encoder(L), idx, limit, out, len, err);
}

void rx_cmd_reserve(lua_State *L, rx_cmd *cmd, size_t extra) {
  size_t cap = (size_t)cmd->argc + extra;
  char *mem = (char *)lxshm_newuserdata(L, cap * (sizeof(const char *) + sizeof(size_t)), 0);
  const char **argv = (const char **)(void *)mem;
  size_t *lens = (size_t *)(void *)(mem + cap * sizeof(const char *));
  memcpy(argv, cmd->argv, (size_t)cmd->argc * sizeof *argv);
  memcpy(lens, cmd->lens, (size_t)cmd->argc * sizeof *lens);
  cmd->argv = argv;
  cmd->lens = lens;
}

lxshm_status rx_encode_list(lua_State *L, int list, lua_Integer n, size_t limit, rx_cmd *cmd,
                            uint64_t *records, lua_Integer *item, lxshm_error *err) {
  size_t cap = 4096, used = 0;
  int at, first = cmd->argc;
  char *buf;
  lua_Integer i;

  list = lua_absindex(L, list);
  buf = (char *)lxshm_newuserdata(L, cap, 0);
  at = lua_gettop(L);
  *records = 0;
  *item = 0;
  for (i = 1; i <= n;) {
    const char *out;
    size_t len;
    lxshm_status st;
    lua_rawgeti(L, list, i);
    st = rx_encode(L, -1, limit, &out, &len, err);
    lua_pop(L, 1);
    if (st != LXSHM_OK) {
      *item = i;
      return st;
    }
    if (used + len > cap) {
      /* growing allocates, and a finalizer may encode meanwhile: encode this one again */
      size_t want = cap * 2 > used + len ? cap * 2 : used + len;
      char *bigger = (char *)lxshm_newuserdata(L, want, 0);
      memcpy(bigger, buf, used);
      lua_replace(L, at);
      buf = bigger;
      cap = want;
      continue;
    }
    memcpy(buf + used, out, len);
    cmd->argv[cmd->argc] = NULL;
    cmd->lens[cmd->argc] = len;
    cmd->argc++;
    used += len;
    *records += rx_record_size(len);
    i++;
  }
  for (i = first, used = 0; i < cmd->argc; i++) { /* the buffer moves no more: point into it */
    cmd->argv[i] = buf + used;
    used += cmd->lens[i];
  }
  return LXSHM_OK;
}

void rx_check_plain_list(lua_State *L, int arg) {
  if (lua_getmetatable(L, arg)) {
    lua_getfield(L, -1, "__len");
    lua_getfield(L, -2, "__index");
    luaL_argcheck(L, lua_isnil(L, -1) && lua_isnil(L, -2), arg,
                  "a list with __len or __index: pass a plain table");
    lua_pop(L, 3);
  }
}

/* ---- arguments ------------------------------------------------------------------------------ */

double rx_opt_timeout(lua_State *L, int arg) {
  lua_Number t;
  if (lua_isnoneornil(L, arg))
    return -1;
  t = luaL_checknumber(L, arg);
  luaL_argcheck(L, t >= 0, arg, "timeout must be a number of seconds >= 0");
  return (double)t;
}

double rx_opt_ttl(lua_State *L, int arg) {
  lua_Number t;
  if (lua_isnoneornil(L, arg))
    return 0;
  t = luaL_checknumber(L, arg);
  luaL_argcheck(L, t >= 0, arg, "ttl must be a number of seconds >= 0");
  return (double)t;
}

static int noop(lua_State *L) {
  (void)L;
  return 0;
}

int rx_interrupted(lua_State *L) {
  lua_pushcfunction(L, noop);
  return lua_pcall(L, 0, 0, 0) != LUA_OK;
}

/* A name as SPEC §2 has it: 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
static int good_name(const char *s, size_t n) {
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

/* A name argument: raises if it is not a string; returns NULL after pushing the failure triple
 * (with the local module's words) if it breaks SPEC §2. */
static const char *check_name(lua_State *L, int arg) {
  size_t len, i, shown;
  const char *name = luaL_checklstring(L, arg, &len);
  char quoted[48];
  lxshm_error err;
  if (good_name(name, len))
    return name;
  shown = len < 40 ? len : 40;
  for (i = 0; i < shown; i++)
    quoted[i] = (name[i] >= 0x20 && name[i] < 0x7f) ? name[i] : '?';
  memcpy(quoted + shown, len > shown ? "..." : "", len > shown ? 4 : 1);
  lxshm__fail(&err, LXSHM_INVALID,
              "invalid name: use 1-%d characters from A-Z a-z 0-9 . _ -, not starting with . or -",
              LXSHM_NAME_MAX);
  rx_fail(L, lua_pushfstring(L, "\"%s\"", quoted), LXSHM_INVALID, &err);
  return NULL;
}

/* A size: raises if not a number; 0 for anything but a whole count from 1 to LXSHM_SIZE_MAX. */
static uint64_t check_size(lua_State *L, int arg) {
  lua_Number x;
  if (lua_isinteger(L, arg)) {
    lua_Integer n = lua_tointeger(L, arg);
    return (n > 0 && (uint64_t)n <= LXSHM_SIZE_MAX) ? (uint64_t)n : 0;
  }
  x = luaL_checknumber(L, arg);
  return (x >= 1 && x <= (lua_Number)LXSHM_SIZE_MAX && x == floor(x)) ? (uint64_t)x : 0;
}

#define OPT_MODE 1u /* create, attach */
#define OPT_OPEN 2u /* open, attach */

typedef struct options {
  unsigned mode;
  int readonly;
  long cursors; /* topics; -1: default */
} options;

static int is_key(const char *key, size_t len, const char *name) {
  return len == strlen(name) && memcmp(key, name, len) == 0;
}

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

static int check_flag(lua_State *L, int arg, const char *key) {
  if (lua_type(L, -1) != LUA_TBOOLEAN)
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be a boolean", key));
  return lua_toboolean(L, -1);
}

#define CURSORS_DEFAULT 16
#define CURSORS_MAX 1024

/* The options table at arg, as the local module reads it: unknown names and bad values raise.
 * `readonly` works; `trust` is accepted (Redis has no owners); `mode` is kept in the object's
 * facts but does not restrict anyone (Redis has no per-key permissions: use ACLs). */
static options check_options(lua_State *L, int arg, unsigned allowed, const rx_class *cls) {
  options o;
  o.mode = LXSHM_DEFAULT_MODE;
  o.readonly = 0;
  o.cursors = -1;
  if (lua_isnoneornil(L, arg))
    return o;
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, arg) != 0) {
    size_t len = 0;
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
    if (key != NULL && (allowed & OPT_MODE) && is_key(key, len, "mode"))
      o.mode = (unsigned)check_mode(L, arg);
    else if (key != NULL && (allowed & OPT_OPEN) && is_key(key, len, "readonly"))
      o.readonly = check_flag(L, arg, "readonly");
    else if (key != NULL && (allowed & OPT_OPEN) && is_key(key, len, "trust"))
      (void)check_flag(L, arg, "trust");
    else if (key != NULL && (allowed & OPT_MODE) && cls == &rx_topic_class &&
             is_key(key, len, "cursors")) {
      lua_Number n = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
      if (!(n >= 0 && n <= CURSORS_MAX && n == floor(n)))
        luaL_argerror(
            L, arg,
            lua_pushfstring(L, "option 'cursors' must be an integer from 0 to %d", CURSORS_MAX));
      o.cursors = (long)n;
    }
    else
      luaL_argerror(
          L, arg,
          lua_pushfstring(L, "unknown option '%s'", key != NULL && strlen(key) == len ? key : "?"));
    lua_pop(L, 1);
  }
  return o;
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

lxshm_status rx_h_command(rx_handle *h, rx_cmd *cmd, double block, redisReply **out,
                          lxshm_error *err) {
  return rx_command(h->ns, &h->conn, h->slot, cmd, block, out, err);
}

lxshm_status rx_h_eval(rx_handle *h, rx_script *s, rx_cmd *cmd, redisReply **out,
                       lxshm_error *err) {
  return rx_eval(h->ns, &h->conn, h->slot, s, cmd, out, err);
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

static int handle_tostring(lua_State *L) {
  rx_handle *h = to_handle(L, NULL);
  lua_pushfstring(L, "%s: %s ", h->cls->type_name, h->name);
  if (h->closed)
    lua_pushliteral(L, "(closed)");
  else
    h->cls->describe(L, h);
  lua_concat(L, 2);
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

enum verb { CREATE, OPEN, ATTACH };

/* ns:create{,_queue,_dict,_topic}(name, size [, opts]), ns:open…(name [, opts]),
 * ns:attach…(name, size [, opts]) -> handle | nil, msg, code */
static int construct(lua_State *L, enum verb verb) {
  const rx_class *cls = (const rx_class *)lua_touserdata(L, lua_upvalueindex(2));
  rx_ns *ns = check_ns(L);
  const char *name = check_name(L, 2);
  uint64_t size = 0;
  rx_handle *h;
  rx_cmd cmd;
  redisReply **box;
  redisReply *r;
  lxshm_status st;
  lxshm_error err;
  options o;
  char inc[17], num[32], mode[16], cursors[24];
  long long code;

  if (name == NULL)
    return 3;
  if (verb != OPEN)
    size = check_size(L, 3);
  o = check_options(L, verb == OPEN ? 3 : 4,
                    verb == CREATE ? OPT_MODE
                    : verb == OPEN ? OPT_OPEN
                                   : OPT_MODE | OPT_OPEN,
                    cls);
  if (verb != OPEN && size == 0) {
    lxshm__fail(&err, LXSHM_INVALID_SIZE, "size must be a whole number of bytes from 1 to %llu",
                (unsigned long long)LXSHM_SIZE_MAX);
    return rx_fail(L, name, LXSHM_INVALID_SIZE, &err);
  }
  if (cls == &rx_queue_class)
    size = (size + 7) & ~(uint64_t)7; /* as the local queue rounds its ring */
  lua_settop(L, 4);
  h = (rx_handle *)lxshm_newuserdata(L, sizeof *h, 2); /* 5: before any command */
  memset(h, 0, sizeof *h);
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
  snprintf(cursors, sizeof cursors, "%ld", o.cursors < 0 ? (long)CURSORS_DEFAULT : o.cursors);
  rx_script_cmd(&cmd, &make_script, 1);
  rx_arg_str(&cmd, h->meta);
  rx_arg_str(&cmd, verb == CREATE ? "create" : verb == OPEN ? "open" : "attach");
  rx_arg_str(&cmd, cls->kind);
  rx_arg_str(&cmd, num);
  rx_arg_str(&cmd, inc);
  rx_arg_str(&cmd, mode);
  rx_arg_str(&cmd, cursors);
  st = rx_eval(ns, &ns->main, h->slot, &make_script, &cmd, &r, &err);
  if (st != LXSHM_OK)
    return rx_fail(L, name, st, &err);
  *box = r;
  if (r->type == REDIS_REPLY_ERROR)
    return rx_fail(L, name, rx_error_status(r, &err), &err);
  code = r->type == REDIS_REPLY_ARRAY && r->elements >= 1 ? rx_int(r->element[0], -1) : -1;
  if (code == 1)
    return rx_fail(L, name, LXSHM_EXISTS, NULL);
  if (code == 4) {
    lxshm__fail(&err, LXSHM_NOT_FOUND, "does not exist");
    return rx_fail(L, name, LXSHM_NOT_FOUND, &err);
  }
  if ((code != 0 && code != 2) || r->elements < 5 || r->element[1]->type != REDIS_REPLY_STRING ||
      r->element[3]->type != REDIS_REPLY_STRING) {
    lxshm__fail(&err, LXSHM_CORRUPT, "the object's facts in Redis are damaged");
    return rx_fail(L, name, LXSHM_CORRUPT, &err);
  }
  if (strcmp(r->element[1]->str, cls->kind) != 0) {
    const char *use = strcmp(r->element[1]->str, "segment") == 0 ? "open"
                      : strcmp(r->element[1]->str, "queue") == 0 ? "open_queue"
                      : strcmp(r->element[1]->str, "dict") == 0  ? "open_dict"
                                                                 : "open_topic";
    lxshm__fail(&err, LXSHM_INVALID, "is a %s, not a %s (use %s)", r->element[1]->str, cls->kind,
                use);
    return rx_fail(L, name, LXSHM_INVALID, &err);
  }
  h->size = (uint64_t)rx_int(r->element[2], 0);
  h->cursors = (uint32_t)rx_int(r->element[4], CURSORS_DEFAULT);
  set_incarnation(h, r->element[3]->str, r->element[3]->len);
  if (h->size == 0) {
    lxshm__fail(&err, LXSHM_CORRUPT, "the object's facts in Redis are damaged");
    return rx_fail(L, name, LXSHM_CORRUPT, &err);
  }
  h->readonly = o.readonly;
  rx_unique(inc);
  snprintf(h->waiter, sizeof h->waiter, "%s", inc);
  if (cls->opened != NULL && (st = cls->opened(h, r, &err)) != LXSHM_OK)
    return rx_fail(L, name, st, &err);
  rx_box_free(box);
  h->ns = ns;
  ns->refs++;
  h->closed = 0;
  lua_pushvalue(L, 5);
  return 1;
}

static int ns_create(lua_State *L) {
  return construct(L, CREATE);
}

static int ns_open(lua_State *L) {
  return construct(L, OPEN);
}

static int ns_attach(lua_State *L) {
  return construct(L, ATTACH);
}

/* ns:remove(name) -> true | nil, msg, code: any kind. */
static int ns_remove(lua_State *L) {
  rx_ns *ns = check_ns(L);
  const char *name = check_name(L, 2);
  char meta[RX_KEY_MAX];
  redisReply *r;
  rx_cmd cmd;
  lxshm_status st;
  lxshm_error err;
  long long n;
  if (name == NULL)
    return 3;
  snprintf(meta, sizeof meta, "{%s%s}", ns->prefix, name);
  rx_script_cmd(&cmd, &remove_script, 1);
  rx_arg_str(&cmd, meta);
  st = rx_eval(ns, &ns->main, rx_slot(meta, strlen(meta)), &remove_script, &cmd, &r, &err);
  if (st != LXSHM_OK)
    return rx_fail(L, name, st, &err);
  if (r->type == REDIS_REPLY_ERROR) {
    st = rx_error_status(r, &err);
    freeReplyObject(r);
    return rx_fail(L, name, st, &err);
  }
  n = rx_int(r, 0);
  freeReplyObject(r);
  if (n != 1) {
    lxshm__fail(&err, LXSHM_NOT_FOUND, "does not exist");
    return rx_fail(L, name, LXSHM_NOT_FOUND, &err);
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
    if (!good_name(k->str + 1 + plen, n))
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
  rx_ns *ns = check_ns(L);
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
  if (st != LXSHM_OK)
    return rx_fail(L, "list", st, &err);
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
      if (key != NULL && is_key(key, len, "password")) {
        luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2, "option 'password' must be a string");
        password = lua_tostring(L, -1);
      }
      else if (key != NULL && is_key(key, len, "prefix")) {
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
      else if (key != NULL && is_key(key, len, "timeout")) {
        lua_Number t = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
        luaL_argcheck(L, t > 0 && !isinf(t), 2, "option 'timeout' must be a number of seconds > 0");
        timeout = (double)t;
      }
      else if (key != NULL && is_key(key, len, "cluster")) {
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
    return rx_fail(L, "connect", st, &err);
  return 1;
}

static int ns_gc(lua_State *L) {
  return ns_close(L);
}

/* ---- registration ------------------------------------------------------------------------- */

static const luaL_Reg handle_methods[] = {
    {"close", handle_close}, {"name", handle_name}, {NULL, NULL}};

static const luaL_Reg handle_meta[] = {
    {"__gc", handle_gc}, {"__close", handle_close}, {"__tostring", handle_tostring}, {NULL, NULL}};

/* The class's metatable, with __index holding its methods and the shared ones, each with the
 * encoder (on the stack top) as upvalue 1. */
static void new_class(lua_State *L, const rx_class *cls) {
  luaL_newmetatable(L, cls->mt);
  lua_pushstring(L, cls->type_name);
  lua_setfield(L, -2, "__name");
  luaL_setfuncs(L, handle_meta, 0);
  lua_newtable(L);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, handle_methods, 1);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, cls->methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

/* The namespace's metatable: its constructors (encoder and class as upvalues), remove, close. */
static void new_namespace_class(lua_State *L) {
  static const struct {
    const char *verb;
    lua_CFunction fn;
  } verbs[] = {{"create", ns_create}, {"open", ns_open}, {"attach", ns_attach}};
  static const luaL_Reg methods[] = {{"remove", ns_remove},      {"list", ns_list},
                                     {"close", ns_close},        {"url", ns_url},
                                     {"cluster", ns_is_cluster}, {NULL, NULL}};
  size_t i, j;
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
    for (j = 0; j < sizeof verbs / sizeof verbs[0]; j++) {
      lua_pushfstring(L, "%s%s", verbs[j].verb, classes[i]->suffix);
      lua_pushvalue(L, -4);
      lua_pushlightuserdata(L, (void *)classes[i]);
      lua_pushcclosure(L, verbs[j].fn, 2);
      lua_settable(L, -3);
    }
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
    new_class(L, classes[i]);
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

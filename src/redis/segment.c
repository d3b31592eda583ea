/* segment.c — lxshm.segment on Redis: one current value, shared.
 *
 * The value lives in a stream, BASE.."s", trimmed to its last entries (MAXLEN ~ 1: old entries
 * go a stream node at a time, at most ~4 KiB of them linger). Each commit is one
 * XADD whose entry id is 0-VERSION: Redis numbers it itself ("0-*"), so a put is one plain
 * command, atomic, and the version grows by exactly one per commit. Fields: f (0: raw bytes from
 * write, 1: MessagePack from put), p (writer's pid), t (wall-clock seconds), v (the bytes).
 * get is XREVRANGE + - COUNT 1; wait is XREAD BLOCK from 0-VERSION, which returns as soon as an
 * entry with a larger id exists, whenever it was added (a reconnect loses nothing). update is an
 * optimistic compare-and-set: XADD with the explicit id 0-(VERSION+1), which Redis refuses when
 * anyone committed since VERSION was read; the function then runs again on the new value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "rx.h"

/* Returns -1 when the stream is gone (the segment was removed), else the version. */
static rx_script version_script = {
    "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end\n"
    "local e = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)\n"
    "if #e == 0 then return 0 end\n"
    "return tonumber(string.match(e[1][1], '^0%-(%d+)$')) or -2\n",
    ""};

/* {version, used, writer pid, updated} or -1 when gone. */
static rx_script stat_script = {
    "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end\n"
    "local e = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)\n"
    "if #e == 0 then return {0, 0, 0, '0'} end\n"
    "local f, r = e[1][2], {tonumber(string.match(e[1][1], '%-(%d+)$')), 0, 0, '0'}\n"
    "for i = 1, #f, 2 do\n"
    "  if f[i] == 'v' then r[2] = #f[i + 1]\n"
    "  elseif f[i] == 'p' then r[3] = tonumber(f[i + 1]) or 0\n"
    "  elseif f[i] == 't' then r[4] = f[i + 1] end\n"
    "end\n"
    "return r\n",
    ""};

/* The version in an entry id "0-N"; 0 for an id that lxshm did not make (another client's
 * XADD of an automatic id, say). */
static uint64_t id_version(const char *id) {
  char *end;
  uint64_t v;
  if (id[0] != '0' || id[1] != '-' || id[2] < '0' || id[2] > '9')
    return 0;
  v = (uint64_t)strtoull(id + 2, &end, 10);
  return *end == '\0' ? v : 0;
}

static rx_handle *check(lua_State *L) {
  return rx_check(L, &rx_segment_class);
}

static int seg_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check(L)->size);
  return 1;
}

/* The version: OK and *v, or a failure. */
static lxshm_status get_version(rx_handle *h, uint64_t *v, lxshm_error *err) {
  rx_cmd cmd;
  lxshm_status st;
  long long n = -2;
  rx_script_cmd(&cmd, &version_script, 1);
  rx_arg_key(&cmd, h, "s");
  if ((st = rx_h_int(h, &version_script, &cmd, 0, -2, &n, err)) != LXSHM_OK)
    return st;
  if (n == -1)
    return rx_gone(h, err);
  if (n < 0)
    return lxshm__fail(err, LXSHM_CORRUPT, "the stream's last id is damaged");
  *v = (uint64_t)n;
  return LXSHM_OK;
}

/* seg:version() -> version | nil, msg, code */
static int seg_version(lua_State *L) {
  rx_handle *h = check(L);
  uint64_t v = 0;
  lxshm_error err;
  lxshm_status st = get_version(h, &v, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

/* ---- committing ----------------------------------------------------------------------------- */

/* XADD of bytes in `format` as the next version (expect 0: whatever it is) or as version
 * expect + 1 only. CONFLICT when someone committed since `expect`. */
static lxshm_status commit(rx_handle *h, const char *data, size_t len, int format, uint64_t expect,
                           lxshm_error *err) {
  rx_cmd cmd;
  redisReply *r;
  lxshm_status st;
  char id[32], when[32];
  struct timeval tv;

  if (h->readonly)
    return rx_refuse_readonly(h, err);
  if (len > h->size)
    return lxshm__fail(err, LXSHM_INVALID_SIZE, "value of %zu bytes exceeds the capacity of %llu",
                       len, (unsigned long long)h->size);
  if (expect == 0)
    snprintf(id, sizeof id, "0-*");
  else
    snprintf(id, sizeof id, "0-%llu", (unsigned long long)expect + 1);
  gettimeofday(&tv, NULL);
  snprintf(when, sizeof when, "%lld.%06ld", (long long)tv.tv_sec, (long)tv.tv_usec);
  rx_cmd_init(&cmd);
  rx_arg_str(&cmd, "XADD");
  rx_arg_key(&cmd, h, "s");
  rx_arg_str(&cmd, "NOMKSTREAM");
  rx_arg_str(&cmd, "MAXLEN"); /* "~": whole stream nodes go; exact trimming of one entry at a */
  rx_arg_str(&cmd, "~");      /* time rescans a node's entries, 6.6 µs a put instead of 0.85 */
  rx_arg_str(&cmd, "1");
  rx_arg_str(&cmd, id);
  rx_arg_str(&cmd, "f");
  rx_arg_str(&cmd, format ? "1" : "0");
  rx_arg_str(&cmd, "p");
  rx_arg_int(&cmd, h->conn.c != NULL ? (long long)h->conn.pid : (long long)getpid());
  rx_arg_str(&cmd, "t");
  rx_arg_str(&cmd, when);
  rx_arg_str(&cmd, "v");
  rx_arg(&cmd, data, len);
  if ((st = rx_h_command(h, &cmd, 0, &r, err)) != LXSHM_OK)
    return st;
  if (r->type == REDIS_REPLY_NIL)
    st = rx_gone(h, err);
  else if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "equal or smaller") != NULL)
    st = lxshm__fail(err, LXSHM_CONFLICT, "changed since version %llu", (unsigned long long)expect);
  else if (r->type == REDIS_REPLY_ERROR)
    st = rx_error_status(r, err);
  freeReplyObject(r);
  return st;
}

/* seg:write(s [, timeout]) -> true | nil, msg, code */
static int seg_write(lua_State *L) {
  rx_handle *h = check(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  lxshm_error err;
  (void)lxshm__opt_timeout(L, 3); /* checked as locally; a commit waits for no lock here */
  rx_check_not_updating(L, h, "segment");
  return rx_result(L, h, commit(h, s, len, 0, 0, &err), &err);
}

/* seg:put(v [, timeout]) -> true | nil, msg, code */
static int seg_put(lua_State *L) {
  rx_handle *h = check(L);
  const char *out;
  size_t len;
  lxshm_error err;
  lxshm_status st;
  (void)lxshm__opt_timeout(L, 3);
  luaL_checkany(L, 2);
  rx_check_not_updating(L, h, "segment");
  if (h->readonly)
    return rx_result(L, h, rx_refuse_readonly(h, &err), &err);
  st = rx_encode(L, 2, (size_t)h->size, &out, &len, &err);
  if (st == LXSHM_OK) /* no Lua call until the command is sent: out stays valid */
    st = commit(h, out, len, 1, 0, &err);
  return rx_result(L, h, st, &err);
}

/* ---- reading -------------------------------------------------------------------------------- */

typedef struct entry {
  uint64_t version; /* 0: nothing stored yet */
  int format;
  const char *data;
  size_t len;
} entry;

/* Reads the last entry into *e (its bytes point into the reply, put in box). */
static lxshm_status last_entry(rx_handle *h, redisReply **box, entry *e, lxshm_error *err) {
  rx_cmd cmd;
  const redisReply *r, *f;
  lxshm_status st;
  size_t i;

  memset(e, 0, sizeof *e);
  rx_cmd_init(&cmd);
  rx_arg_str(&cmd, "XREVRANGE");
  rx_arg_key(&cmd, h, "s");
  rx_arg_str(&cmd, "+");
  rx_arg_str(&cmd, "-");
  rx_arg_str(&cmd, "COUNT");
  rx_arg_str(&cmd, "1");
  if ((st = rx_h_call(h, NULL, &cmd, 0, box, err)) != LXSHM_OK)
    return st;
  r = *box;
  if (r->type != REDIS_REPLY_ARRAY)
    return lxshm__fail(err, LXSHM_CORRUPT, "unexpected reply to XREVRANGE");
  if (r->elements == 0) { /* nothing stored yet, or removed: tell them apart */
    uint64_t v;
    e->data = "";
    return get_version(h, &v, err);
  }
  r = r->element[0];
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY)
    return lxshm__fail(err, LXSHM_CORRUPT, "the segment's stream entry is damaged");
  e->version = id_version(r->element[0]->str);
  f = r->element[1];
  e->format = -1;
  for (i = 0; i + 1 < f->elements; i += 2) {
    const redisReply *k = f->element[i], *v = f->element[i + 1];
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || k->len != 1)
      continue;
    if (k->str[0] == 'v') {
      e->data = v->str;
      e->len = v->len;
    }
    else if (k->str[0] == 'f')
      e->format = v->str[0] == '1';
  }
  if (e->data == NULL || e->format < 0 || e->version == 0)
    return lxshm__fail(err, LXSHM_CORRUPT, "the segment's stream entry lacks its fields");
  return LXSHM_OK;
}

/* seg:read() -> bytes; seg:get() -> value (nil before the first commit) */
static int read_value(lua_State *L, int raw) {
  rx_handle *h = check(L);
  redisReply **box;
  lxshm_error err;
  lxshm_status st;
  entry e;
  lua_settop(L, 1);
  box = rx_box_new(L);
  st = last_entry(h, box, &e, &err);
  if (st != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  if (!raw && e.version == 0)
    lua_pushnil(L);
  else if ((st = lxshm__push_bytes(L, e.data, e.len, raw ? LXSHM__FORMAT_RAW : (unsigned)e.format,
                                   &err)) != LXSHM_OK)
    return lxshm__push_failure(L, h->name, st, &err);
  rx_box_free(box);
  return 1;
}

LXSHM__VARIANT(seg_read, read_value(L, 1))
LXSHM__VARIANT(seg_get, read_value(L, 0))

/* ---- update ------------------------------------------------------------------------------- */

/* seg:update(fn [, timeout]) -> new value | nil, msg, code. Optimistic: fn(current) runs with no
 * lock held; its result is stored only if nobody committed meanwhile, else fn runs again on the
 * newer value (so fn may run more than once; a stale result is never stored). If fn raises,
 * nothing is stored and the error propagates. TIMEOUT when commits by others keep winning until
 * `timeout` has passed. */
static int seg_update(lua_State *L) {
  rx_handle *h = check(L);
  double deadline;
  redisReply **box;
  lxshm_error err;
  lxshm_status st;

  luaL_checktype(L, 2, LUA_TFUNCTION);
  deadline = rx_deadline(lxshm__opt_timeout(L, 3));
  rx_check_not_updating(L, h, "segment");
  if (h->readonly)
    return rx_result(L, h, rx_refuse_readonly(h, &err), &err);
  lua_settop(L, 2);
  box = rx_box_new(L); /* 3 */
  for (;;) {
    entry e;
    const char *out;
    size_t len;
    int rc;
    st = last_entry(h, box, &e, &err);
    if (st != LXSHM_OK)
      return lxshm__push_failure(L, h->name, st, &err);
    lua_pushvalue(L, 2); /* 4: fn */
    if (e.version == 0)
      lua_pushnil(L);
    else if ((st = lxshm__push_bytes(L, e.data, e.len, (unsigned)e.format, &err)) != LXSHM_OK)
      return lxshm__push_failure(L, h->name, st, &err);
    rx_box_free(box);
    rc = rx_update_call(L, h, 1); /* 4: the new value */
    if (rc != LUA_OK)
      return lua_error(L);
    if (h->closed)
      return luaL_error(L, "attempt to use a closed lxshm segment");
    st = rx_encode(L, 4, (size_t)h->size, &out, &len, &err);
    if (st == LXSHM_OK)
      st = commit(h, out, len, 1, e.version, &err);
    if (st == LXSHM_OK)
      return 1;
    if (st != LXSHM_CONFLICT)
      return lxshm__push_failure(L, h->name, st, &err);
    if (deadline >= 0 && rx_left(deadline) <= 0)
      return lxshm__push_failure(L, h->name, LXSHM_TIMEOUT, NULL);
    lua_settop(L, 3);
  }
}

/* ---- waiting -------------------------------------------------------------------------------- */

/* seg:wait(version [, timeout]) -> new version | nil, msg, code. Blocks in Redis (XREAD BLOCK) on
 * the segment's stream and on the stream a remove writes to; long waits are cut into slices of
 * RX_SLICE seconds, between which an interrupt (Ctrl-C) is let through. */
static int seg_wait(lua_State *L) {
  rx_handle *h = check(L);
  lua_Integer want = luaL_checkinteger(L, 2);
  double timeout = lxshm__opt_timeout(L, 3), deadline = rx_deadline(timeout);
  lxshm_error err;
  lxshm_status st;
  char from[32];

  lua_settop(L, 3);
  for (;;) {
    uint64_t v = 0;
    double left, slice;
    rx_cmd cmd;
    redisReply *r;
    st = get_version(h, &v, &err);
    if (st != LXSHM_OK)
      return lxshm__push_failure(L, h->name, st, &err);
    if (v != (uint64_t)want) {
      lua_pushinteger(L, (lua_Integer)v);
      return 1;
    }
    left = rx_left(deadline);
    if (left == 0) {
      lxshm__fail(&err, LXSHM_TIMEOUT, "no new version within %g s", timeout);
      return lxshm__push_failure(L, h->name, LXSHM_TIMEOUT, &err);
    }
    slice = rx_slice(left);
    snprintf(from, sizeof from, "0-%llu", (unsigned long long)v);
    rx_cmd_init(&cmd);
    rx_arg_str(&cmd, "XREAD");
    rx_arg_str(&cmd, "COUNT");
    rx_arg_str(&cmd, "1");
    rx_arg_str(&cmd, "BLOCK");
    rx_arg_ms(&cmd, slice * 1000 + 0.999); /* rounded up */
    rx_arg_str(&cmd, "STREAMS");
    rx_arg_key(&cmd, h, "s");
    rx_arg_key(&cmd, h, "gs");
    rx_arg_str(&cmd, from);
    rx_arg_str(&cmd, "0-0");
    r = NULL;
    if ((st = rx_h_call(h, NULL, &cmd, slice, &r, &err)) != LXSHM_OK) {
      rx_box_free(&r);
      return lxshm__push_failure(L, h->name, st, &err);
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1) {
      /* [[stream, [[id, fields]]]]: the segment's own stream says the new version at once */
      const redisReply *s = r->element[0];
      if (s->type == REDIS_REPLY_ARRAY && s->elements == 2 &&
          s->element[0]->type == REDIS_REPLY_STRING && s->element[0]->len >= 2 &&
          s->element[0]->str[s->element[0]->len - 1] == 's' &&
          s->element[0]->str[s->element[0]->len - 2] == ':' &&
          s->element[1]->type == REDIS_REPLY_ARRAY && s->element[1]->elements >= 1 &&
          s->element[1]->element[0]->type == REDIS_REPLY_ARRAY &&
          s->element[1]->element[0]->elements >= 1 &&
          s->element[1]->element[0]->element[0]->type == REDIS_REPLY_STRING) {
        v = id_version(s->element[1]->element[0]->element[0]->str);
        freeReplyObject(r);
        if (v == 0) { /* an entry lxshm did not write: waiting from it would never block */
          lxshm__fail(&err, LXSHM_CORRUPT, "the segment's stream holds an entry of another writer");
          return lxshm__push_failure(L, h->name, LXSHM_CORRUPT, &err);
        }
        if (v != (uint64_t)want) {
          lua_pushinteger(L, (lua_Integer)v);
          return 1;
        }
        continue;
      }
    }
    freeReplyObject(r); /* the slice's end, or a remove: look at the version again */
    if (lxshm__interrupted(L))
      return lua_error(L);
  }
}

/* seg:stat() -> { name, size, used, version, writer_pid, updated, waiters } */
static lxshm_status stat(lua_State *L, rx_handle *h, int full, lxshm__figures *out,
                         lxshm_error *err) {
  lxshm__segment_stat *s = &out->segment;
  double updated;
  rx_cmd cmd;
  redisReply *r = NULL;
  lxshm_status st;
  (void)L;
  rx_script_cmd(&cmd, &stat_script, 1);
  rx_arg_key(&cmd, h, "s");
  st = rx_h_call(h, &stat_script, &cmd, 0, &r, err);
  if (st == LXSHM_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != 4))
    st = rx_gone(h, err);
  if (st != LXSHM_OK) {
    rx_box_free(&r);
    return st;
  }
  s->size = h->size;
  s->used = (uint64_t)rx_int(r->element[1], 0);
  s->version = (uint64_t)rx_int(r->element[0], 0);
  s->writer_pid = (uint64_t)rx_int(r->element[2], 0);
  updated = rx_num(r->element[3], 0); /* seconds: a number outside uint64_t's ns counts as 0 */
  s->updated_ns = updated > 0 && updated < 1.8e10 ? (uint64_t)(updated * 1e9 + 0.5) : 0;
  rx_box_free(&r);
  s->waiters = full ? rx_blocked_clients(h) : 0;
  return LXSHM_OK;
}

static const luaL_Reg methods[] = {LXSHM__SEGMENT_METHODS(LXSHM__METHOD){NULL, NULL}};

const rx_class rx_segment_class = {
    "lxshm.redis.segment", "lxshm.segment", "segment", "",   methods, stat,
    LXSHM__SEGMENT_NAMES,  "(%s bytes)",    NULL,      NULL, NULL};

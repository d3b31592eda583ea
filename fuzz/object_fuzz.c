/* object_fuzz.c — libFuzzer target for everything that reads an object's bytes: the header, the
 * lock, a segment's slots, a queue's indices and records. Each input is written as a whole
 * object under a name of this process's, opened as a segment and as a queue by the Lua module,
 * and every method is called on it from Lua. Whatever the bytes, each call must return (a value
 * or nil, msg, code) or raise a Lua error: a crash, a sanitizer report or a hang is a finding,
 * and so is a lock still held once the calls are over.
 *
 * The first byte picks what the rest is laid over: a valid new segment (0-63), queue (64-127),
 * dictionary (128-191) or topic (192-255), so that mutations of real headers, locks, indices,
 * journals and cursors are explored, and not only inputs refused at the magic number. Build and
 * run: make fuzz-object (fuzz/README.md). */
#define _GNU_SOURCE /* syscall() */
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lxshm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int luaopen_lxshm_core(lua_State *L);

static lua_State *L;
static char name[64];

/* Calls every method of the object under NAME, each in a protected call, with timeouts of 0:
 * a method may fail or raise, but must return. */
static const char exercise_src[] =
    "local core, name = ...\n"
    "local function try(f, ...) return pcall(f, ...) end\n"
    "local seg = core.open(name, { trust = true })\n"
    "if seg then\n"
    "  try(seg.get, seg) try(seg.read, seg) try(seg.version, seg) try(seg.stat, seg)\n"
    "  try(seg.size, seg) try(tostring, seg)\n"
    "  try(seg.wait, seg, seg:version(), 0)\n"
    "  try(seg.write, seg, 'w', 0) try(seg.put, seg, { 1, 'two' }, 0)\n"
    "  try(seg.update, seg, function(v) return { v } end, 0)\n"
    "  try(seg.get, seg)\n"
    "  seg:close()\n"
    "end\n"
    "local ro = core.open(name, { readonly = true, trust = true })\n"
    "if ro then try(ro.get, ro) try(ro.wait, ro, 0, 0) try(ro.stat, ro) ro:close() end\n"
    "local q = core.open_queue(name, { trust = true })\n"
    "if q then\n"
    "  try(q.count, q) try(q.used, q) try(q.stat, q) try(tostring, q)\n"
    "  try(q.peek, q) try(q.pop, q, 0) try(q.pop_many, q, 4, 0)\n"
    "  try(q.push, q, 'x', 0) try(q.push_many, q, { 1, 2 }, 0)\n"
    "  try(q.pop, q, 0) try(q.pop_many, q, 4, 0)\n"
    "  q:close()\n"
    "end\n"
    "local d = core.open_dict(name, { trust = true })\n"
    "if d then\n"
    "  try(d.get, d, 'k') try(d.get, d, 1) try(d.count, d) try(d.stat, d) try(d.check, d)\n"
    "  try(d.free_space, d) try(d.keys, d) try(d.ttl, d, 'k') try(d.version, d, 'k')\n"
    "  try(function() for _ in d:pairs() do end end)\n"
    "  try(d.set, d, 'k', { 1 }) try(d.incr, d, 'n', 1, 0) try(d.delete, d, 'k')\n"
    "  try(d.update, d, 'u', function(v) return 1 end) try(d.flush_expired, d)\n"
    "  try(d.wait, d, 'k', 0, 0) try(d.check, d) try(d.flush_all, d)\n"
    "  d:close()\n"
    "end\n"
    "local t = core.open_topic(name, { trust = true })\n"
    "if t then\n"
    "  try(t.last, t) try(t.stat, t) try(tostring, t)\n"
    "  local ok, sub = pcall(t.subscribe, t, 'oldest')\n"
    "  if ok and sub then try(sub.next, sub, 0) try(sub.next_many, sub, 4, 0) sub:close() end\n"
    "  try(t.publish, t, { 1 }, 0) try(t.publish_many, t, { 1, 2 }, 0)\n"
    "  ok, sub = pcall(t.subscribe, t, { name = 'n', from = 'oldest' })\n"
    "  if ok and sub then try(sub.next, sub, 0) sub:close() end\n"
    "  try(t.unsubscribe, t, 'n')\n"
    "  t:close()\n"
    "end\n";

static void init(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  lua_pushcfunction(L, luaopen_lxshm_core);
  lua_call(L, 0, 1);
  lua_setglobal(L, "core");
  snprintf(name, sizeof name, "fuzz-object-%ld", (long)getpid());
}

/* Whether this thread holds a robust lock: glibc lists every one it holds, and a lock left held
 * on an object that is then unmapped leaves the list pointing at memory that is gone (the next
 * lock taken writes there). An empty list points at its own head. */
static int holds_a_lock(void) {
  struct robust_list_head *head;
  size_t len;
  if (syscall(SYS_get_robust_list, 0, &head, &len) != 0)
    return 0;
  return head->list.next != &head->list;
}

/* Makes a valid object of the kind byte asks for and reads its bytes into *base (malloc'd). */
static size_t template_bytes(uint8_t kind, unsigned char **base) {
  char path[128];
  FILE *f;
  long n;
  if (kind < 64) {
    lxshm_segment *seg;
    if (lxshm_create(name, 64 + kind, LXSHM_DEFAULT_MODE, &seg, NULL) != LXSHM_OK)
      abort();
    lxshm_write(seg, "template", 8, 0, NULL);
    lxshm_close(seg);
  }
  else if (kind < 128) {
    lxshm_queue *q;
    if (lxshm_queue_create(name, 64 + (kind - 64) * 8, LXSHM_DEFAULT_MODE, &q, NULL) != LXSHM_OK)
      abort();
    lxshm_queue_push(q, "one", 3, 0, NULL);
    lxshm_queue_push(q, "two", 3, 0, NULL);
    lxshm_queue_close(q);
  }
  else if (kind < 192) {
    lxshm_dict *d;
    if (lxshm_dict_create(name, 16384, LXSHM_DEFAULT_MODE, &d, NULL) != LXSHM_OK)
      abort();
    lxshm_dict_set(d, "k", 1, "v", 1, 0, 0, NULL, NULL, NULL);
    lxshm_dict_set(d, "other", 5, "value", 5, 60, 0, NULL, NULL, NULL);
    lxshm_dict_close(d);
  }
  else {
    lxshm_topic *t;
    if (lxshm_topic_create(name, 256 + (kind - 192) * 8, 2, LXSHM_DEFAULT_MODE, &t, NULL) !=
        LXSHM_OK)
      abort();
    lxshm_topic_publish(t, "one", 3, 0, NULL, NULL);
    lxshm_topic_publish(t, "two", 3, 0, NULL, NULL);
    lxshm_topic_close(t);
  }
  snprintf(path, sizeof path, "/dev/shm/lxshm.%s", name);
  f = fopen(path, "rb");
  if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0)
    abort();
  rewind(f);
  *base = malloc((size_t)n);
  if (*base == NULL || fread(*base, 1, (size_t)n, f) != (size_t)n)
    abort();
  fclose(f);
  lxshm_remove(name, NULL);
  return (size_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned char *bytes;
  size_t n, i;
  char path[128];
  FILE *f;

  if (L == NULL)
    init();
  if (size == 0)
    return 0;
  /* The template, with the input laid over it byte by byte from offset 0 (the identity line,
   * the lock, the state lines) and past it, making it longer if the input is. */
  n = template_bytes(data[0], &bytes);
  if (size - 1 > n) {
    unsigned char *longer = realloc(bytes, size - 1);
    if (longer == NULL)
      abort();
    memset(longer + n, 0, size - 1 - n);
    bytes = longer;
    n = size - 1;
  }
  for (i = 1; i < size; i++)
    bytes[i - 1] ^= data[i];
  snprintf(path, sizeof path, "/dev/shm/lxshm.%s", name);
  f = fopen(path, "wb");
  if (f == NULL || fwrite(bytes, 1, n, f) != n || fclose(f) != 0)
    abort();
  free(bytes);
  if (luaL_loadbuffer(L, exercise_src, sizeof exercise_src - 1, "exercise") != LUA_OK)
    abort();
  lua_getglobal(L, "core");
  lua_pushstring(L, name);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) /* only an error outside the protected calls */
    lua_pop(L, 1);
  lua_gc(L, LUA_GCCOLLECT, 0);
  if (holds_a_lock()) {
    fprintf(stderr, "a method returned holding a lock\n");
    abort();
  }
  lxshm_remove(name, NULL);
  return 0;
}

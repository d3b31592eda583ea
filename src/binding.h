/* binding.h — what the Lua binding's files share (binding.c): the one handle type every kind's
 * objects use, the classes that give each kind its methods, argument checks, and how a status
 * becomes a Lua result. Each kind's methods live in binding_<kind>.c; none of them holds
 * shared-memory logic, which is the core's. */
#ifndef LXSHM_BINDING_H
#define LXSHM_BINDING_H

#include "codec.h"
#include "compat.h"
#include "object.h"

typedef struct lxshm__class lxshm__class;

/* A handle: the userdata behind every segment, queue, … Its user value 1 caches a copy buffer
 * (a full userdata) for the methods that copy values out. */
typedef struct lxshm__handle {
  const lxshm__class *cls;       /* the kind's class */
  lxshm__object *obj;            /* the core's handle; NULL once released */
  unsigned in_use;               /* methods using obj now: a close waits for the last of them */
  int closed;                    /* closed: methods raise, obj is released when not in use */
  int busy;                      /* inside update(fn): closing and relocking raise */
  uint64_t size;                 /* capacity, kept for __tostring after close */
  char name[LXSHM_NAME_MAX + 1]; /* kept for messages after close */
} lxshm__handle;

/* A kind as Lua sees it. */
struct lxshm__class {
  const char *mt;          /* metatable name, also __name: "lxshm.segment" */
  const char *suffix;      /* of the module's constructors: "" (create), "_queue" (create_queue) */
  const lxshm__kind *kind; /* the core's kind */
  const luaL_Reg *methods; /* the kind's own methods; close, name and the metamethods are shared */
  /* Pushes what __tostring shows after the name of an open handle: "(4096 bytes)". */
  void (*describe)(lua_State *L, lxshm__handle *h);
  /* Reads a creation option of the kind's own (create, attach), whose value is on the stack
   * top, into params (LXSHM__PARAMS words, handed to the kind's plan): returns 1, or 0 if the
   * kind has no option `key`; raises for a bad value, naming argument `arg`. Called first with
   * key NULL to set the defaults. NULL: the kind has no options of its own. */
  int (*option)(lua_State *L, const char *key, size_t len, int arg, uint32_t *params);
};

extern const lxshm__class lxshm__segment_class;
extern const lxshm__class lxshm__queue_class;
extern const lxshm__class lxshm__dict_class;
extern const lxshm__class lxshm__topic_class;

/* ---- handles ------------------------------------------------------------------------------ */

/* The open handle of class cls at argument 1; raises if it is something else or closed. */
lxshm__handle *lxshm__check_handle(lua_State *L, const lxshm__class *cls);

/* Marks h in use while Lua code may run (an allocation's finalizers, a hook, update's function)
 * between two uses of h->obj: a close meanwhile then only marks it closed, and the last drop
 * releases the object. A method that raises while holding leaves the release to __gc. */
void lxshm__hold(lxshm__handle *h);
void lxshm__drop(lxshm__handle *h);

/* Raises for a lock this thread already holds through h (a write or update from inside update's
 * function): a programming error, safe to raise because the lock was not taken. */
void lxshm__check_not_busy(lua_State *L, lxshm__handle *h);

/* ---- results ------------------------------------------------------------------------------- */

/* Pushes nil, "WHO: cause", code; returns 3. The cause comes from err when the core gave one. */
int lxshm__push_failure(lua_State *L, const char *who, lxshm_status st, const lxshm_error *err);

/* Turns a method's status into its result: OK pushes true (1 result); a failure a correct
 * program can meet returns nil, "NAME: cause", code (3); INVALID (a method can only meet it by
 * misuse: relocking from the lock's holder) raises "NAME: cause"; LXSHM__INTERRUPTED re-raises
 * the interrupt's error, which is on the stack top. */
int lxshm__result(lua_State *L, lxshm__handle *h, lxshm_status st, const lxshm_error *err);

/* Between the sleeps of a long wait: lets a pending hook run (lua.c turns Ctrl-C into a hook
 * that raises "interrupted!"). The interrupt check of every blocking call. */
const lxshm__interrupt *lxshm__interrupt_for(lua_State *L, lxshm__interrupt *intr);

/* ---- arguments ----------------------------------------------------------------------------- */

/* An optional timeout in seconds: absent or nil is no limit (LXSHM_FOREVER); a number >= 0
 * (inf is no limit). A negative or NaN timeout raises. */
double lxshm__opt_timeout(lua_State *L, int arg);

/* Pushes the table stat() returns: { name = h's name, key = value for each field }. */
typedef struct lxshm__stat_field {
  const char *key;
  uint64_t value;
} lxshm__stat_field;
void lxshm__push_stat(lua_State *L, lxshm__handle *h, const lxshm__stat_field *fields, int n);

/* Pushes n in decimal and returns it (lua_pushfstring has no 64-bit format before 5.3). */
const char *lxshm__format_u64(lua_State *L, uint64_t n);

/* The encoder every function gets as upvalue 1. */
#define lxshm__encoder_of(L) ((lxshm__encoder *)lua_touserdata(L, lua_upvalueindex(1)))

/* ---- copy buffers ---------------------------------------------------------------------------- */

/* A private copy buffer of at least n bytes, pushed on the stack; *cap is its size. The handle's
 * (at stack index `handle`) cached buffer is taken out of the cache while in use, so that a
 * finalizer re-entering the handle gets a buffer of its own. Raises only on memory errors. */
char *lxshm__scratch_take(lua_State *L, int handle, size_t n, size_t *cap);

/* Returns the buffer at the stack top to the handle's cache (or drops it if it is huge). */
void lxshm__scratch_give(lua_State *L, int handle);

/* Copies a value out of an object into buf (cap bytes): OK with *len and *format set, or
 * INVALID_SIZE with *len set to the size needed, or another failure. */
typedef lxshm_status (*lxshm__copy_fn)(void *ctx, char *buf, size_t cap, size_t *len,
                                       unsigned *format, lxshm_error *err);

/* Copies a value with copy (on the C stack when small, else in the copy buffer of the handle at
 * stack index 1, `hint` bytes first, more as copy says) and pushes it as what it holds (as a
 * string if raw). Returns copy's failure, or a decoding one, with nothing pushed; or
 * LXSHM__INTERRUPTED with the error on the stack top. */
lxshm_status lxshm__copy_out(lua_State *L, size_t hint, lxshm__copy_fn copy, void *ctx, int raw,
                             lxshm_error *err);

/* Pushes the MessagePack or raw bytes of a value copied out of an object as the Lua value they
 * hold: the string for raw bytes (LXSHM__FORMAT_RAW), the decoded value otherwise. */
lxshm_status lxshm__push_bytes(lua_State *L, const char *p, size_t len, unsigned format,
                               lxshm_error *err);

/* Values up to this many bytes are copied on the C stack. */
#define LXSHM__SMALL_VALUE 1024

/* A Lua string this long or longer, stored alone, skips the encoder: its MessagePack header is
 * joined to its bytes (lxshm.encode, put). */
#define LXSHM__BIG_STRING (64u << 10)
int lxshm__is_big_string(lua_State *L, int idx);

#endif

/* binding.h — what the Lua binding's files share (binding.c): the one handle type every kind's
 * objects use, the classes that give each kind its methods, argument checks, and how a status
 * becomes a Lua result. Each kind's methods live in binding_<kind>.c; none of them holds
 * shared-memory logic, which is the core's. */
#ifndef LXSHM_BINDING_H
#define LXSHM_BINDING_H

#include "lxaux.h"
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
  const luaL_Reg *methods; /* its own methods; close, name, stat and the metamethods are shared */
  /* What __tostring shows after the name of an open handle, "(%s bytes, %s keys)": the size,
   * and the stat figure named `shown` (NULL: the size alone). */
  const char *description;
  const char *shown;
  /* Reads the kind's own creation options (create, attach); NULL: it has none. */
  lxshm__option_fn option;
};

extern const lxshm__class lxshm__segment_class;
extern const lxshm__class lxshm__queue_class;
extern const lxshm__class lxshm__dict_class;
extern const lxshm__class lxshm__topic_class;

/* Makes the metatable of topics' subscriptions (lxshm.subscription); luaopen calls it with the
 * encoder on the stack top. */
void lxshm__topic_open(lua_State *L);

/* ---- handles ------------------------------------------------------------------------------ */

/* The open handle of class cls at argument 1; raises if it is something else or closed. */
lxshm__handle *lxshm__check_handle(lua_State *L, const lxshm__class *cls);

/* Marks h in use while Lua code may run (an allocation's finalizers, a hook, update's function)
 * between two uses of h->obj: a close meanwhile then only marks it closed, and the last drop
 * releases the object. A method that raises while holding leaves the release to __gc. */
void lxshm__hold(lxshm__handle *h);
void lxshm__drop(lxshm__handle *h);
/* lxshm__drop after Lua code that may have closed h (allocations since the hold): raises as a
 * call on a closed handle does if it did. */
void lxshm__drop_checked(lua_State *L, lxshm__handle *h);

/* Raises for a lock this thread already holds through h (a write or update from inside update's
 * function): a programming error, safe to raise because the lock was not taken. */
void lxshm__check_not_busy(lua_State *L, lxshm__handle *h);

/* Defines the method FN, h:getter() -> the integer GET(OF(h)), for the handle of the file's own
 * class (its static check()): a kind's getters, q:count() or seg:version(). */
#define LXSHM__GETTER(FN, GET, OF)                      \
  static int FN(lua_State *L) {                         \
    lua_pushinteger(L, (lua_Integer)GET(OF(check(L)))); \
    return 1;                                           \
  }

/* ---- results ------------------------------------------------------------------------------- */

/* Turns a method's status into its result: OK pushes true (1 result); a failure a correct
 * program can meet returns nil, "NAME: cause", code (3); INVALID (a method can only meet it by
 * misuse: relocking from the lock's holder) raises "NAME: cause"; LXSHM__INTERRUPTED re-raises
 * the interrupt's error, which is on the stack top. */
int lxshm__result(lua_State *L, lxshm__handle *h, lxshm_status st, const lxshm_error *err);

/* Between the sleeps of a long wait: lets a pending hook run (lua.c turns Ctrl-C into a hook
 * that raises "interrupted!"). The interrupt check of every blocking call. */
const lxshm__interrupt *lxshm__interrupt_for(lua_State *L, lxshm__interrupt *intr);

/* ---- copy buffers ---------------------------------------------------------------------------- */

/* A private copy buffer of at least n bytes, pushed on the stack; *cap is its size. The handle's
 * (at stack index `handle`) cached buffer is taken out of the cache while in use, so that a
 * finalizer re-entering the handle gets a buffer of its own. Raises only on memory errors. */
char *lxshm__scratch_take(lua_State *L, int handle, size_t n, size_t *cap);

/* Returns the buffer at the stack top to the handle's cache (or drops it if it is huge). */
void lxshm__scratch_give(lua_State *L, int handle);

/* Copies out of the object `from` what t asks into t->buf (t->cap bytes), as the core's takes
 * do (lxshm__queue_take, lxshm__subscription_take; a segment's or a dictionary's reads are
 * wrapped to do the same): OK with t->len and t->format (or t->count records) set, or
 * INVALID_SIZE with t->len the size needed, or another failure. */
typedef lxshm_status (*lxshm__take_fn)(void *from, lxshm__take *t, lxshm_error *err);

/* Copies one value with take, as t asks (on the C stack when small, else in the copy buffer of
 * the handle at stack index 1, `hint` bytes first, more as take says), and pushes it as what it
 * holds (as a string if raw). Returns take's failure, or a decoding one, with nothing pushed; or
 * LXSHM__INTERRUPTED with the error on the stack top. */
lxshm_status lxshm__copy_out(lua_State *L, size_t hint, lxshm__take_fn take, void *from,
                             lxshm__take *t, int raw, lxshm_error *err);

/* ---- batches --------------------------------------------------------------------------------- */

/* Stores a run of records in an object: lxshm__queue_push_records, lxshm__topic_publish_records. */
typedef lxshm_status (*lxshm__put_fn)(lxshm__object *o, lxshm__records *r, lxshm_error *err);

/* The method (list [, timeout]) of a queue or a topic: encodes list[1..n] (argument 2, read raw)
 * as records, each value in at most `limit` bytes, in the copy buffer of the handle h at stack
 * index 1, and stores them in h's object with put as one run (h held meanwhile; an empty list
 * is a run of none). Returns the method's results: true, or with `seq` the last sequence number
 * (r->seq); or nil, msg, code ("N WHAT SIZE bytes" when the run would take more than h's size;
 * "item N: …" for a value that cannot be encoded). Raises when interrupted. */
int lxshm__put_batch(lua_State *L, lxshm__handle *h, size_t limit, const char *what,
                     lxshm__put_fn put, int seq);

/* The method ([timeout]) of a queue or a subscription that takes one value: takes it with take
 * as t asks, as lxshm__copy_out does (h held meanwhile; a wait may be interrupted), and pushes
 * it decoded. Returns as lxshm__copy_out. */
lxshm_status lxshm__take_value(lua_State *L, lxshm__handle *h, size_t hint, lxshm__take_fn take,
                               void *from, lxshm__take *t, lxshm_error *err);

/* The method (max [, timeout]) of a queue or a subscription: takes up to max values (argument
 * 2; at least one, waiting while there is none, for timeout, argument 3) with take as whole
 * records into the copy buffer of the handle h at stack index 1 (grown as take says; h is held
 * meanwhile) and pushes a table of the values, in order (a nil value leaves a hole). Returns OK
 * with t->count values; or the failure, with nothing pushed (a batch with a damaged record,
 * "WHAT N of the batch is damaged", is lost); or LXSHM__INTERRUPTED with the error on the stack
 * top. */
lxshm_status lxshm__take_batch(lua_State *L, lxshm__handle *h, lxshm__take_fn take, void *from,
                               lxshm__take *t, const char *what, lxshm_error *err);

/* ---- update ---------------------------------------------------------------------------------- */

/* Pushes, before the lock is taken (pushing a closure allocates), what lxshm__call_locked calls:
 * `locked` as a closure with the encoder (the calling method's upvalue 1), and its arguments:
 * the handle h (argument 1), update's function (at stack index fn) and ctx as a light userdata
 * unless NULL. Returns the number of arguments pushed. Raises if a finalizer that ran meanwhile
 * closed h. */
int lxshm__push_locked_call(lua_State *L, lxshm__handle *h, lua_CFunction locked, int fn,
                            void *ctx);

/* update(fn) with an object's lock held by the caller: calls the function below nargs arguments
 * on the stack top (pushed before locking: pushing a closure allocates) in lua_pcall, with h
 * busy and held; then unlock(ctx), and only then re-raises an error of the call. The function
 * returns what lxshm__locked_result makes. Returns update's results: the new value, or nil,
 * "NAME: cause", code. */
int lxshm__call_locked(lua_State *L, lxshm__handle *h, int nargs, void (*unlock)(void *),
                       void *ctx);

/* Ends the function lxshm__call_locked calls: true, the value on the stack top, nil when st is
 * OK; else false, cause, code (nothing was stored). Returns 3. */
int lxshm__locked_result(lua_State *L, lxshm_status st, const lxshm_error *err);

/* Values up to this many bytes are copied on the C stack. */
#define LXSHM__SMALL_VALUE 1024

/* A value as the MessagePack bytes to store: head[0..hl-1] followed by data[0..len-1]. */
typedef struct lxshm__encoded {
  unsigned char head[LXSHM__STRING_HEADER_MAX];
  size_t hl;
  const char *data;
  size_t len;
} lxshm__encoded;

/* The value at stack index idx as the bytes to store, at most `limit` of them: a string as its
 * header followed by its own bytes, without the encoder or a copy; anything else encoded into
 * data (hl = 0). Nothing may call Lua between this and the copy of data (the encoder's buffer,
 * or the string on the stack). Returns the encoder's refusal (UNSUPPORTED, INVALID_SIZE) in its
 * words. */
lxshm_status lxshm__encode_value(lua_State *L, int idx, uint64_t limit, lxshm__encoded *v,
                                 lxshm_error *err);

#endif

/* lxaux.h — lxshm's auxiliary Lua library (lxaux.c), as lauxlib is Lua's: what both Lua modules
 * share because SPEC gives them one API, lxshm.core (binding*.c) and lxshm.redis (src/redis/).
 * Argument checks and options, the nil, msg, code triple, stat tables and __tostring text, lists
 * of values encoded as records, and dictionary keys. It knows no handle, object or server: the
 * name a message starts with is always the caller's. */
#ifndef LXSHM_LXAUX_H
#define LXSHM_LXAUX_H

#include "codec.h"  /* compat.h (lua.h of every runtime), internal.h */
#include "layout.h" /* LXSHM__PARAMS */

/* The encoder every Lua function of both modules gets as upvalue 1 (one per lua_State). */
#define lxshm__encoder_of(L) ((lxshm__encoder *)lua_touserdata(L, lua_upvalueindex(1)))

/* ---- results ------------------------------------------------------------------------------ */

/* Pushes nil, "WHO: cause", code; returns 3. The cause is err's message when the failure gave
 * one, else the status's text. */
int lxshm__push_failure(lua_State *L, const char *who, lxshm_status st, const lxshm_error *err);

/* Pushes nil, "WHO: item N: cause", code for value N of a list (push_many, publish_many);
 * returns 3. */
int lxshm__push_item_failure(lua_State *L, const char *who, lua_Integer item, lxshm_status st,
                             const lxshm_error *err);

/* Pushes stored bytes as the Lua value they hold: the string for raw bytes (LXSHM__FORMAT_RAW),
 * the decoded value otherwise (or nothing, and CORRUPT). */
lxshm_status lxshm__push_bytes(lua_State *L, const char *p, size_t len, unsigned format,
                               lxshm_error *err);

/* Pushes n in decimal and returns it (lua_pushfstring has no 64-bit format before 5.3). */
const char *lxshm__format_u64(lua_State *L, uint64_t n);

/* Sets a stat table's figures in the table on the stack top: values[i] under the i-th word of
 * `names`, words separated by spaces ("size used count ", a kind's LXSHM__*_NAMES). A word
 * ending in _ns is a time in ns: it is set without the suffix, in seconds. */
void lxshm__set_figures(lua_State *L, const char *names, const uint64_t *values);

/* Pushes what tostring() shows of an object handle, the same for both modules: "TYPE: NAME "
 * then "(closed)", or `description` with the size in decimal for its first %s and, for a second,
 * the figure `shown` of the stat table on the stack top ("?" when that is not a table: not
 * known), e.g. "(%s bytes, %s keys)". Replaces the stat table (or whatever is there). */
void lxshm__push_handle_string(lua_State *L, const char *type, const char *name, int closed,
                               const char *description, uint64_t size, const char *shown);

/* Pushes what tostring() shows of a topic's subscription, the same for both modules:
 * "lxshm.subscription: [NAME on ]TOPIC (next SEQ)", or "(closed)" for "(next SEQ)" when closed.
 * name: NULL for an anonymous subscription. */
void lxshm__push_subscription(lua_State *L, const char *name, const char *topic, int closed,
                              uint64_t next);

/* Defines FN as the Lua C function that returns CALL, an expression in FN's lua_State *L: a
 * method or function that is a variant of another, LXSHM__VARIANT(dict_add, store(L, ADD)). */
#define LXSHM__VARIANT(FN, CALL) \
  static int FN(lua_State *L) {  \
    return CALL;                 \
  }

/* ---- the methods of each kind ----------------------------------------------------------------
 * As SPEC names them, written once for both modules: each expands a list into its luaL_Reg table
 * with LXSHM__METHOD, so that neither can lack a method the other has (a missing one does not
 * compile). X(prefix, name) stands for { "name", prefix_name }. close, name and stat are
 * every handle's own (the shared methods of lxshm__new_class). */
#define LXSHM__METHOD(prefix, name) {#name, prefix##_##name},

#define LXSHM__SEGMENT_METHODS(X) \
  X(seg, size)                    \
  X(seg, version)                 \
  X(seg, write)                   \
  X(seg, read)                    \
  X(seg, put)                     \
  X(seg, get)                     \
  X(seg, update)                  \
  X(seg, wait)

#define LXSHM__QUEUE_METHODS(X) \
  X(queue, push)                \
  X(queue, pop)                 \
  X(queue, push_many)           \
  X(queue, pop_many)            \
  X(queue, peek)                \
  X(queue, count)               \
  X(queue, size)                \
  X(queue, used)

#define LXSHM__DICT_METHODS(X) \
  X(dict, get)                 \
  X(dict, set)                 \
  X(dict, safe_set)            \
  X(dict, add)                 \
  X(dict, safe_add)            \
  X(dict, replace)             \
  X(dict, cas)                 \
  X(dict, delete)              \
  X(dict, incr)                \
  X(dict, update)              \
  X(dict, version)             \
  X(dict, wait)                \
  X(dict, ttl)                 \
  X(dict, expire)              \
  X(dict, keys)                \
  X(dict, pairs)               \
  X(dict, count)               \
  X(dict, capacity)            \
  X(dict, free_space)          \
  X(dict, flush_all)           \
  X(dict, flush_expired)       \
  X(dict, check)

#define LXSHM__TOPIC_METHODS(X) \
  X(topic, publish)             \
  X(topic, publish_many)        \
  X(topic, subscribe)           \
  X(topic, unsubscribe)         \
  X(topic, last)                \
  X(topic, size)

#define LXSHM__SUBSCRIPTION_METHODS(X) \
  X(sub, next)                         \
  X(sub, next_many)                    \
  X(sub, position)                     \
  X(sub, name)                         \
  X(sub, close)

/* ---- classes --------------------------------------------------------------------------------- */

/* Creates the metatable `mt` of a kind of userdata (its __name: type_name): the metamethods
 * meta, and an __index table of the methods shared (NULL: none) and own, all with the encoder on
 * the stack top as upvalue 1; the shared ones have cls (as a light userdata) as upvalue 2, so
 * that they can tell which class they were called as, and the own ones the metatable itself, so
 * that they can check their argument 1 without a lookup. Leaves the stack as it was. */
void lxshm__new_class(lua_State *L, const char *mt, const char *type_name, const void *cls,
                      const luaL_Reg *meta, const luaL_Reg *shared, const luaL_Reg *own);

/* Adds create..suffix, open..suffix and attach..suffix to the table on the stack top: the
 * functions verbs[0..2], each with the encoder (at stack index encoder) and cls as upvalues 1
 * and 2. */
void lxshm__add_constructors(lua_State *L, int encoder, const char *suffix, const void *cls,
                             const lua_CFunction verbs[3]);

/* ---- arguments ----------------------------------------------------------------------------- */

/* An object name argument. Raises if it is not a string; returns NULL after pushing the failure
 * triple (who: the name quoted, made printable and cut short) if it breaks SPEC §2. */
const char *lxshm__check_name_arg(lua_State *L, int arg);

/* An optional timeout in seconds: absent or nil is no limit (LXSHM_FOREVER); a number >= 0
 * (inf is no limit). A negative or NaN timeout raises. */
double lxshm__opt_timeout(lua_State *L, int arg);

/* An optional TTL in seconds: absent, nil or 0 is none; negative or NaN raises. */
double lxshm__opt_ttl(lua_State *L, int arg);

/* A version argument: a whole number >= 0 (raises otherwise). */
uint64_t lxshm__check_version(lua_State *L, int arg);

/* The arguments (max [, timeout]) of pop_many and next_many: returns max (argument 2, at least
 * 1) and sets *timeout (argument 3); the stack is cut to 3 slots. */
lua_Integer lxshm__check_max_args(lua_State *L, double *timeout);

/* The arguments (list [, timeout]) of push_many and publish_many, at 2 and 3: returns the
 * list's length, read raw as the values will be, and *timeout (lxshm__opt_timeout); the stack
 * is cut to 3. Raises for a list that is not a table, or whose metatable has __len or __index:
 * a proxy would store what its metamethods do not say. */
lua_Integer lxshm__check_list_args(lua_State *L, double *timeout);

/* Between the sleeps of a long wait: calls a C function, so that a pending hook runs (lua.c
 * turns Ctrl-C into a hook that raises "interrupted!"). Returns 1 with the hook's error on the
 * stack top if it raised. Needs 2 free stack slots; no lock may be held. */
int lxshm__interrupted(lua_State *L);

/* ---- options ------------------------------------------------------------------------------- */

#define LXSHM__OPT_MODE 1u /* create, attach: { mode = 0x1a0 or "0640" } and the kind's own */
#define LXSHM__OPT_OPEN 2u /* open, attach: { readonly = true, trust = true } */

/* Reads a creation option of a kind's own, whose value is on the stack top, into params
 * (LXSHM__PARAMS words, handed to the kind's plan): returns 1, or 0 if the kind has no option
 * `key`; raises for a bad value, naming argument `arg`. Called first with key NULL to set the
 * defaults. */
typedef int (*lxshm__option_fn)(lua_State *L, const char *key, size_t len, int arg,
                                uint32_t *params);

typedef struct lxshm__options {
  unsigned mode;                  /* permission bits of a new object */
  unsigned flags;                 /* LXSHM_READONLY, LXSHM_TRUST */
  uint32_t params[LXSHM__PARAMS]; /* a new object's kind parameters (option's) */
} lxshm__options;

/* The options table at arg (absent or nil: defaults) where `allowed` options may appear, with
 * the kind's own read by option (NULL: none) where LXSHM__OPT_MODE is allowed. Unknown option
 * names, and values of the wrong type or out of range, raise like any other misuse. */
lxshm__options lxshm__check_options(lua_State *L, int arg, unsigned allowed,
                                    lxshm__option_fn option);

/* ---- constructors ---------------------------------------------------------------------------- */

/* What a constructor does: create (name, size [, opts]), open (name [, opts]) or attach (name,
 * size [, opts]). */
typedef enum lxshm__verb { LXSHM__CREATE, LXSHM__OPEN, LXSHM__ATTACH } lxshm__verb;

/* A constructor's arguments from stack index `at` on (1 in lxshm; 2, after the namespace, in
 * lxshm.redis): the name; for create and attach the size (*size, else 0); then the options the
 * verb allows, with the kind's own read by option (NULL: none). Returns the name; or NULL after
 * pushing nil, msg, code for a name that breaks SPEC §2 or a size that is not a whole number of
 * bytes from 1 to LXSHM_SIZE_MAX (negative, fractional, NaN, infinite, huge), once the options
 * are checked. Raises for arguments of the wrong type and for bad options. */
const char *lxshm__check_constructor(lua_State *L, int at, lxshm__verb verb,
                                     lxshm__option_fn option, uint64_t *size, lxshm__options *o);

/* 1 if the option name key[0..len-1] (not NUL-terminated) is `name`. */
int lxshm__is_key(const char *key, size_t len, const char *name);

/* A topic's option: cursors, room for this many named subscriptions (params[0]; default
 * LXSHM_TOPIC_CURSORS, at most LXSHM_TOPIC_CURSORS_MAX). */
int lxshm__topic_option(lua_State *L, const char *key, size_t len, int arg, uint32_t *params);

/* The arguments of t:subscribe([from]) or t:subscribe{ name = NAME [, from = from] } at arg:
 * *name (NULL: anonymous; its bytes are the table's) and *from (LXSHM_TOPIC_NEW,
 * LXSHM_TOPIC_OLDEST or a sequence number >= 1). A bad `from`, a name that is not a string, a
 * table without a name, or another key raise. Needs 3 free stack slots. */
void lxshm__check_subscribe(lua_State *L, int arg, const char **name, size_t *len, uint64_t *from);

/* ---- lists of values ------------------------------------------------------------------------ */

/* A list being encoded as records (ring.h), into a buffer that is a full userdata at stack index
 * `at`, replaced by a larger one (contents kept) when it fills. */
typedef struct lxshm__batch {
  int at;           /* stack index of the buffer */
  size_t cap;       /* its size */
  size_t used;      /* bytes of records in it */
  uint64_t total;   /* records may take this many bytes at most (UINT64_MAX: no limit) */
  const char *what; /* for that failure: "values take more than the queue's" */
  lua_Integer item; /* after a value failed to encode: its index */
} lxshm__batch;

/* Appends list[1..n] (the table at stack index `list`, read raw) to l's buffer as records, each
 * value in at most `limit` bytes. Returns OK; or the failure of value l->item; or INVALID_SIZE
 * "N WHAT TOTAL bytes" when the records would take more than l->total bytes (l->item 0). Raises
 * only on memory errors. */
lxshm_status lxshm__encode_list(lua_State *L, int list, lua_Integer n, size_t limit,
                                lxshm__batch *l, lxshm_error *err);

/* ---- dictionary keys --------------------------------------------------------------------------
 */

/* A key argument as a dictionary stores it: its bytes, length and type. */
typedef struct lxshm__keyarg {
  lxshm__dict_key k;
  unsigned char num[8]; /* the bytes of a number (int64 or double) or boolean (0 or 1) key */
} lxshm__keyarg;

/* The key at arg: raises for nil, NaN and types a key cannot have (as t[k] = v would); returns 0
 * after pushing nil, "WHO: key of N bytes…", INVALID_SIZE for a string of 0 or more than
 * LXSHM_DICT_KEY_MAX bytes. As in a Lua table, a float with an integral value is the integer key
 * (on every runtime, so that processes on different runtimes find each other's keys). A string
 * key's bytes are the argument's: valid while it stays on the stack. */
int lxshm__check_key(lua_State *L, const char *who, int arg, lxshm__keyarg *a);

/* Defines FN, the method of a dictionary of handle type T whose argument 2 is a key: CHECK(L)
 * checks the handle (argument 1), lxshm__check_key the key, and for a key out of range FN
 * returns nil, msg, code. The block that follows the macro is the method's body, with the
 * handle as h and the key as A. */
#define LXSHM__KEYED_METHOD(FN, T, CHECK, A)                                   \
  static int FN##_keyed(lua_State *L, T *h, const lxshm__keyarg *A);           \
  static int FN(lua_State *L) {                                                \
    lxshm__keyarg key;                                                         \
    T *h = CHECK(L);                                                           \
    return lxshm__check_key(L, h->name, 2, &key) ? FN##_keyed(L, h, &key) : 3; \
  }                                                                            \
  static int FN##_keyed(lua_State *L, T *h, const lxshm__keyarg *A)

/* Pushes a key as stored: `type` and its len bytes at p (records of a scan). */
void lxshm__push_key(lua_State *L, unsigned type, const unsigned char *p, size_t len);

/* incr's step or init at arg (raises if not a number): an integer stays one; on runtimes
 * without integers, a number with an integral value within 2^53 counts as an integer, as the
 * codec stores it. */
void lxshm__check_number(lua_State *L, int arg, lxshm__dict_number *n);

/* Pushes incr's result: an integer as one where the runtime has them, else the nearest float. */
void lxshm__push_number(lua_State *L, const lxshm__dict_number *n);

#endif

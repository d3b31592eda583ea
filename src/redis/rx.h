/* rx.h — what the files of the Redis backend (the Lua module lxshm.redis) share: namespaces and
 * their connections, commands with Cluster redirections followed, server-side scripts, handles
 * and their classes, argument checks and results. Never included by the core: lxshm.core builds
 * and runs without hiredis. Names here are rx_ (the module is one shared object, all static
 * except luaopen_lxshm_redis). */
#ifndef LXSHM_RX_H
#define LXSHM_RX_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis.h>

#include "../lxaux.h"

#define RX_SLOTS 16384   /* Redis Cluster hash slots */
#define RX_NODES_MAX 64  /* Cluster nodes one namespace keeps addresses of */
#define RX_PREFIX_MAX 64 /* bytes of opts.prefix */
#define RX_KEY_MAX 192   /* bytes of the longest fixed key name: "{prefix+name}:inc:xx" */
#define RX_REDIRECTS 8   /* MOVED/ASK/TRYAGAIN replies followed for one command at most */
#define RX_SLICE 5.0     /* seconds a blocking command waits at most before looking again */
#define RX_MARGIN 2.0    /* seconds a blocked reply may come late before the server is gone */

/* ---- namespaces and connections ----------------------------------------------------------- */

typedef struct rx_addr {
  int is_unix;    /* 1: path is a Unix socket; 0: host and port */
  char host[256]; /* host name or address, or the socket's path */
  int port;
} rx_addr;

/* One connection to one server: a handle's own, or one of a namespace's shared ones. */
typedef struct rx_conn {
  redisContext *c;         /* NULL while not connected: the next command connects */
  int node;                /* index in the namespace's nodes of the server c talks to */
  double read_timeout;     /* the read timeout set on c now (seconds) */
  long long id;            /* CLIENT ID on that server (0: not asked yet) */
  long long old_id;        /* the id of the connection before the last reconnect (0: none) */
  const char *client_name; /* CLIENT SETNAME sent on every connect (NULL: none) */
  long pid;                /* getpid() when connected: segment commits name their writer */
  unsigned spin_misses;    /* looks for a reply in a row that found nothing (conn.c) */
  unsigned spin_rest;      /* replies to wait for asleep before looking again */
} rx_conn;

/* A namespace: the server (or Cluster) of one connect(url, opts) and its options. Plain C memory,
 * counted: the namespace userdata and every handle made through it hold a reference. */
typedef struct rx_ns {
  int refs;
  rx_addr seed;   /* the address connect was given */
  int db;         /* SELECT db (single server only) */
  char *password; /* AUTH password, or NULL */
  char prefix[RX_PREFIX_MAX + 1];
  double timeout; /* seconds to connect, and to wait for a reply that should not block */
  int cluster;    /* 1: Redis Cluster: route by slot, follow MOVED and ASK */
  int nnodes;     /* known servers: nodes[0] is the seed */
  rx_addr nodes[RX_NODES_MAX];
  uint8_t slots[RX_SLOTS];    /* node index serving each slot (Cluster); 0xff: unknown */
  rx_conn pool[RX_NODES_MAX]; /* one per node: the slot map, and commands sent after ASK */
  rx_conn main;               /* the namespace's own: create, open, attach, remove */
  char url[320];              /* for messages and __tostring */
} rx_ns;

/* Parses url ("redis://HOST:PORT[/DB]", "redis+unix:///PATH[?db=N]") into ns->seed and ns->db.
 * Returns OK or INVALID with the cause in err. */
lxshm_status rx_parse_url(rx_ns *ns, const char *url, lxshm_error *err);

/* Contacts the seed server (connect, AUTH, SELECT), asks whether it is a Cluster when cluster is
 * -1, and loads the slot map of a Cluster. Returns OK, UNAVAILABLE (not reachable within
 * ns->timeout), PERMISSION (authentication refused) or another failure. */
lxshm_status rx_ns_start(rx_ns *ns, int cluster, lxshm_error *err);

void rx_ns_release(rx_ns *ns);    /* drops a reference; the last frees everything */
void rx_conn_drop(rx_conn *conn); /* closes the connection (the next command reconnects) */

/* The Cluster slot of a key (CRC16 of its hash tag, as Redis computes it). */
int rx_slot(const char *key, size_t len);

/* A command: argv[0..argc-1] with their lengths. Numbers are formatted into num[]. */
#define RX_ARGS 24
typedef struct rx_cmd {
  int argc;
  const char **argv;
  size_t *lens;
  const char *fixed_argv[RX_ARGS];
  size_t fixed_lens[RX_ARGS];
  char num[RX_ARGS][32];    /* scratch for formatted arguments, indexed by argument */
  char keys[6][RX_KEY_MAX]; /* scratch for key names */
} rx_cmd;

void rx_cmd_init(rx_cmd *cmd);
void rx_arg(rx_cmd *cmd, const char *s, size_t len);
void rx_arg_str(rx_cmd *cmd, const char *s);
void rx_arg_int(rx_cmd *cmd, long long n);
void rx_arg_double(rx_cmd *cmd, double x); /* "%.17g" */
void rx_arg_ms(rx_cmd *cmd, double ms);    /* whole milliseconds, at least 1 (BLOCK ms) */

/* Sends cmd for a key in `slot` on conn (a Cluster sends it to the slot's node, following MOVED,
 * ASK and TRYAGAIN) and reads the reply into *out (the caller frees it with freeReplyObject).
 * `block` is how long (seconds) the command may block in the server: the reply may take that
 * much longer than ns->timeout. An error reply other than a redirection comes back as a reply
 * (use rx_error_status). Fails with UNAVAILABLE when the server cannot be reached, the
 * connection breaks or no reply comes in time: the connection is dropped then, and the next
 * command reconnects. Calls no Lua function and never raises. */
lxshm_status rx_command(rx_ns *ns, rx_conn *conn, int slot, rx_cmd *cmd, double block,
                        redisReply **out, lxshm_error *err);

/* A server-side script: the body, its SHA-1 (computed on first use), EVALSHA with a fallback to
 * EVAL when the server does not know it yet. */
typedef struct rx_script {
  const char *body;
  char sha[41];
} rx_script;

/* Runs script s with keys and args already in cmd (argv[0] and argv[1], argv[2] left for
 * EVALSHA, SHA, NUMKEYS: build cmd with rx_script_cmd first). */
void rx_script_cmd(rx_cmd *cmd, rx_script *s, int nkeys);
lxshm_status rx_eval(rx_ns *ns, rx_conn *conn, int slot, rx_script *s, rx_cmd *cmd,
                     redisReply **out, lxshm_error *err);

/* The status an error reply stands for (OOM: FULL; LOADING, CLUSTERDOWN, MASTERDOWN, READONLY:
 * UNAVAILABLE; NOAUTH, WRONGPASS, NOPERM: PERMISSION; WRONGTYPE: INVALID; else SYSTEM), with
 * the server's text in err. */
lxshm_status rx_error_status(const redisReply *r, lxshm_error *err);

/* ---- handles -------------------------------------------------------------------------------- */

typedef struct rx_class rx_class;

/* The userdata behind every Redis object handle (segment, queue, dict, topic). User value 1 is
 * the namespace userdata (kept alive), user value 2 a kind's own cache. */
typedef struct rx_handle {
  const rx_class *cls;
  rx_ns *ns;        /* counted reference; NULL once released */
  rx_conn conn;     /* this handle's own connection: its blocking calls never hold up another */
  int closed;       /* methods raise */
  int busy;         /* inside update(fn): changes through this handle raise */
  int readonly;     /* opened { readonly = true }: changes return PERMISSION */
  int slot;         /* the Cluster slot of every key of the object */
  uint64_t size;    /* capacity in bytes */
  uint32_t cursors; /* topics: named subscriptions allowed */
  char name[LXSHM_NAME_MAX + 1];
  char meta[RX_KEY_MAX]; /* "{prefix+name}": the object's hash of facts (kind, size, ...) */
  char base[RX_KEY_MAX]; /* "{prefix+name}:INC:": every other key of this incarnation */
  char inc[24];          /* the incarnation: a new create of the name makes a new one */
  char client_name[RX_KEY_MAX + 8]; /* "lx:{prefix+name}": what CLIENT LIST shows */
  char waiter[48];                  /* this handle's waiter id (queues) */
  size_t baselen;
} rx_handle;

struct rx_class {
  const char *mt;        /* registry name of the metatable: "lxshm.redis.segment" */
  const char *type_name; /* what users see (__name, messages): "lxshm.segment" */
  const char *kind;      /* as stored in the meta hash and in messages: "segment" */
  const char *suffix;    /* of the constructors: "", "_queue", "_dict", "_topic" */
  const luaL_Reg *methods;
  /* Fills the kind's member of *out with the figures of h:stat(), named by `figures` (the
   * kind's LXSHM__*_NAMES), or fails. full: also those that cost a command of their own
   * (waiters), which the getters skip. */
  lxshm_status (*stat)(lua_State *L, rx_handle *h, int full, lxshm__figures *out, lxshm_error *err);
  const char *figures;
  /* What __tostring shows after the name of an open handle, "(%s bytes, %s keys)": the size,
   * and the stat figure named `shown` (NULL: the size alone). */
  const char *description;
  const char *shown;
  /* Runs after the meta hash was made or read (create/open/attach); may check kind-specific
   * fields. Returns OK or a failure with err set. NULL: nothing to do. */
  lxshm_status (*opened)(rx_handle *h, const redisReply *meta, lxshm_error *err);
  lxshm__option_fn option; /* the kind's own creation options; NULL: none */
};

extern const rx_class rx_segment_class, rx_queue_class, rx_dict_class, rx_topic_class;

/* Makes the metatable of topics' subscriptions (lxshm.subscription); luaopen calls it. */
void rx_topic_open(lua_State *L);

rx_handle *rx_check(lua_State *L, const rx_class *cls); /* arg 1, open; raises otherwise */

/* Raises "NAME: cannot change a KIND inside its own update" when h is in update(fn). */
void rx_check_not_busy(lua_State *L, rx_handle *h);

/* OK: pushes true (1 result); otherwise nil, "NAME: cause", code (3 results). */
int rx_result(lua_State *L, rx_handle *h, lxshm_status st, const lxshm_error *err);

/* A handle's write on a read-only handle: PERMISSION with the message set. */
lxshm_status rx_refuse_readonly(rx_handle *h, lxshm_error *err);

/* Key names of h's object: base + suffix, into buf (RX_KEY_MAX bytes); returns the length. */
size_t rx_key(const rx_handle *h, const char *suffix, char *buf);
void rx_arg_key(rx_cmd *cmd, const rx_handle *h, const char *suffix); /* into cmd->keys */

/* Runs a command or a script on the handle's own connection (its object's slot). */
lxshm_status rx_h_command(rx_handle *h, rx_cmd *cmd, double block, redisReply **out,
                          lxshm_error *err);
lxshm_status rx_h_eval(rx_handle *h, rx_script *s, rx_cmd *cmd, redisReply **out, lxshm_error *err);

/* NOT_FOUND: "was removed (in Redis at URL)". */
lxshm_status rx_gone(const rx_handle *h, lxshm_error *err);

/* The largest value a queue or topic of h's size takes: what it holds as one record. */
size_t rx_ring_max_value(const rx_handle *h);

/* Runs cmd on h's connection: the script s in it, or (s NULL) a command that may block `block`
 * seconds in the server. The reply goes in *box (a reply box's, or a variable starting NULL),
 * freeing the one there. Returns the failure to get a reply, an error reply's status
 * (rx_error_status), or OK. */
lxshm_status rx_h_call(rx_handle *h, rx_script *s, rx_cmd *cmd, double block, redisReply **box,
                       lxshm_error *err);

/* As rx_h_call for a reply read as one integer (def when it is none) into *n (n may be NULL:
 * only the failure matters); the reply is freed. */
lxshm_status rx_h_int(rx_handle *h, rx_script *s, rx_cmd *cmd, double block, long long def,
                      long long *n, lxshm_error *err);

/* Runs the script s in cmd whose reply is a code, or an array starting with one: *code. The code
 * -1 (the object was removed) is NOT_FOUND. The reply stays in *box. */
lxshm_status rx_run(rx_handle *h, rx_script *s, rx_cmd *cmd, redisReply **box, long long *code,
                    lxshm_error *err);

/* Runs the script s in cmd whose reply is n integers, into f[0..n-1]; -1 when the object was
 * removed (NOT_FOUND). */
lxshm_status rx_figures(rx_handle *h, rx_script *s, rx_cmd *cmd, uint64_t *f, size_t n,
                        lxshm_error *err);

/* h:count() and the like: the stat figure `name` (1 result), or nil, "NAME: cause", code. */
int rx_figure(lua_State *L, rx_handle *h, const char *name);

/* A reply box: a userdata on the stack top owning one reply (freed by its __gc), so that a
 * raise while the reply's bytes are decoded strands no C memory. rx_box_new pushes an empty
 * box; rx_box_set puts r in it; rx_box_free frees the reply now. */
redisReply **rx_box_new(lua_State *L);
void rx_box_free(redisReply **box);

/* Encodes the value at idx (limit bytes at most) with the module's encoder: the bytes stay valid
 * until the encoder is used again (no Lua allocation in between). */
lxshm_status rx_encode(lua_State *L, int idx, size_t limit, const char **out, size_t *len,
                       lxshm_error *err);

/* update(fn) on Redis: rx_update_call calls the function below nargs arguments on the stack
 * top in lua_pcall (one result), with h busy and its object counted as being updated by this
 * thread; rx_check_not_updating raises, through any handle, on a change of an object being
 * updated ("cannot change a WHAT inside its own update"); rx_check_update_depth raises when
 * updates are nested too deeply. */
int rx_update_call(lua_State *L, rx_handle *h, int nargs);
void rx_check_not_updating(lua_State *L, rx_handle *h, const char *what);
void rx_check_update_depth(lua_State *L, rx_handle *h);

/* lxshm__check_max_args for pop_many and next_many, with max held to what a table can hold. */
lua_Integer rx_check_max_args(lua_State *L, double *timeout);

/* Monotonic seconds, for deadlines. */
double rx_now(void);
/* Seconds left before deadline (deadline < 0: forever, returns -1); never below 0. */
double rx_left(double deadline);
double rx_deadline(double timeout); /* -1 for forever */
/* After a try that found nothing: TIMEOUT with `now` ("queue is full") when timeout is 0, or
 * "LATER after T s" once the deadline has passed; else OK, to wait again. */
lxshm_status rx_expired(double timeout, double deadline, const char *now, const char *later,
                        lxshm_error *err);
/* How long the next block lasts, with `left` seconds left (rx_left): at most RX_SLICE. */
double rx_slice(double left);

/* Encodes list[1..n] (the table at stack index `list`, read raw) with at most `limit` bytes
 * each and appends them to cmd as arguments; two userdata pushed on the stack hold the argument
 * arrays and the bytes. Fails with INVALID_SIZE "N WHAT TOTAL bytes" when they take more than
 * `total` bytes as the records of a queue or a topic (once all are encoded), or with the failure
 * of value *item. */
lxshm_status rx_encode_list(lua_State *L, int list, lua_Integer n, size_t limit, uint64_t total,
                            const char *what, rx_cmd *cmd, lua_Integer *item, lxshm_error *err);

/* The CLIENT ID of h's connection (connecting if needed). */
lxshm_status rx_client_id(rx_handle *h, long long *id, lxshm_error *err);

/* Counts the clients blocked now whose name is h->client_name (CLIENT LIST); 0 when the server
 * refuses CLIENT LIST. */
uint64_t rx_blocked_clients(rx_handle *h);

/* Integer of a reply element (INTEGER, or STRING holding digits), def otherwise. */
long long rx_int(const redisReply *r, long long def);
double rx_num(const redisReply *r, double def);

/* A unique id for waiters and incarnations: 16 hex digits (17 bytes with the terminator). */
void rx_unique(char out[17]);

#endif

/* conn.c — the Redis backend's connections: URLs, connecting (AUTH, SELECT, CLIENT SETNAME),
 * sending a command and reading its reply under a timeout, Redis Cluster routing (slots from
 * CLUSTER SLOTS, MOVED and ASK followed), and server-side scripts (EVALSHA, EVAL when the server
 * does not know the script). No Lua here: nothing in this file raises, so a connection is never
 * left with a reply half read. A broken connection is closed at once; the next command opens a
 * new one. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sds.h>

#include "rx.h"

/* ---- small helpers ------------------------------------------------------------------------ */

double rx_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double rx_deadline(double timeout) {
  return timeout < 0 || isinf(timeout) ? -1 : rx_now() + timeout;
}

double rx_left(double deadline) {
  double left;
  if (deadline < 0)
    return -1;
  left = deadline - rx_now();
  return left > 0 ? left : 0;
}

lxshm_status rx_expired(double timeout, double deadline, const char *now, const char *later,
                        lxshm_error *err) {
  if (timeout == 0)
    return lxshm__fail(err, LXSHM_TIMEOUT, "%s", now);
  if (rx_left(deadline) == 0)
    return lxshm__fail(err, LXSHM_TIMEOUT, "%s after %g s", later, timeout);
  return LXSHM_OK;
}

double rx_slice(double left) {
  return left < 0 || left > RX_SLICE ? RX_SLICE : left;
}

static struct timeval to_tv(double seconds) {
  struct timeval tv;
  if (seconds < 0.001)
    seconds = 0.001;
  if (seconds > 1e8)
    seconds = 1e8;
  tv.tv_sec = (time_t)seconds;
  tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
  return tv;
}

static void pause_ms(int ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void rx_unique(char out[17]) {
  static unsigned counter;
  uint64_t x = 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, &x, sizeof x) != (ssize_t)sizeof x) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 40);
  }
  if (fd >= 0)
    close(fd);
  x ^= (uint64_t)++counter * 0x9e3779b97f4a7c15u;
  snprintf(out, 17, "%016llx", (unsigned long long)x);
}

long long rx_int(const redisReply *r, long long def) {
  if (r == NULL)
    return def;
  if (r->type == REDIS_REPLY_INTEGER)
    return r->integer;
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
    char *end;
    long long v;
    errno = 0;
    v = strtoll(r->str, &end, 10);
    if (errno == 0 && end != r->str && *end == '\0')
      return v;
  }
  return def;
}

double rx_num(const redisReply *r, double def) {
  if (r == NULL)
    return def;
  if (r->type == REDIS_REPLY_INTEGER)
    return (double)r->integer;
  if (r->type == REDIS_REPLY_STRING) {
    char *end;
    double v = strtod(r->str, &end);
    if (end != r->str && *end == '\0')
      return v;
  }
  return def;
}

/* ---- commands ----------------------------------------------------------------------------- */

void rx_cmd_init(rx_cmd *cmd) {
  int i;
  for (i = 0; i < 6; i++)
    cmd->keys[i][0] = '\0';
  cmd->argc = 0;
  cmd->argv = cmd->fixed_argv;
  cmd->lens = cmd->fixed_lens;
}

void rx_arg(rx_cmd *cmd, const char *s, size_t len) {
  cmd->argv[cmd->argc] = s;
  cmd->lens[cmd->argc] = len;
  cmd->argc++;
}

void rx_arg_str(rx_cmd *cmd, const char *s) {
  rx_arg(cmd, s, strlen(s));
}

void rx_arg_int(rx_cmd *cmd, long long n) {
  char *p = cmd->num[cmd->argc];
  rx_arg(cmd, p, (size_t)snprintf(p, sizeof cmd->num[0], "%lld", n));
}

void rx_arg_ms(rx_cmd *cmd, double ms) {
  rx_arg_int(cmd, (long long)ms > 0 ? (long long)ms : 1);
}

void rx_arg_double(rx_cmd *cmd, double x) {
  char *p = cmd->num[cmd->argc];
  rx_arg(cmd, p, (size_t)snprintf(p, sizeof cmd->num[0], "%.17g", x));
}

/* ---- URLs --------------------------------------------------------------------------------- */

static int all_digits(const char *s, size_t n) {
  size_t i;
  if (n == 0 || n > 9)
    return 0;
  for (i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  return 1;
}

static int digits_value(const char *s, size_t n) {
  int v = 0;
  size_t i;
  for (i = 0; i < n; i++)
    v = v * 10 + (s[i] - '0');
  return v;
}

/* Percent-decoding of a URL's userinfo, into a new C string. */
static char *decode_userinfo(const char *s, size_t n) {
  char *out = (char *)malloc(n + 1), *o = out;
  size_t i;
  if (out == NULL)
    return NULL;
  for (i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n) {
      char hex[3] = {s[i + 1], s[i + 2], 0};
      char *end;
      long v = strtol(hex, &end, 16);
      if (*end == '\0') {
        *o++ = (char)v;
        i += 2;
        continue;
      }
    }
    *o++ = s[i];
  }
  *o = '\0';
  return out;
}

lxshm_status rx_parse_url(rx_ns *ns, const char *url, lxshm_error *err) {
  static const char tcp[] = "redis://", unx[] = "redis+unix://";
  rx_addr *a = &ns->seed;
  memset(a, 0, sizeof *a);
  ns->db = 0;
  snprintf(ns->url, sizeof ns->url, "%s", url);
  if (strncmp(url, unx, sizeof unx - 1) == 0) {
    const char *path = url + sizeof unx - 1, *q = strchr(path, '?');
    size_t n = q != NULL ? (size_t)(q - path) : strlen(path);
    if (n == 0 || path[0] != '/' || n >= sizeof a->host)
      return lxshm__fail(err, LXSHM_INVALID,
                         "bad URL \"%s\": expected redis+unix:///PATH/TO/SOCKET[?db=N]", url);
    memcpy(a->host, path, n);
    a->host[n] = '\0';
    a->is_unix = 1;
    if (q != NULL) {
      const char *v = q + 1;
      if (strncmp(v, "db=", 3) != 0 || !all_digits(v + 3, strlen(v + 3)))
        return lxshm__fail(err, LXSHM_INVALID, "bad URL \"%s\": the only query is ?db=N", url);
      ns->db = digits_value(v + 3, strlen(v + 3));
    }
    return LXSHM_OK;
  }
  if (strncmp(url, tcp, sizeof tcp - 1) == 0) {
    const char *h = url + sizeof tcp - 1, *at = strchr(h, '@'), *slash, *end, *colon;
    size_t hn;
    if (at != NULL) { /* redis://[user:]password@host... */
      char *info = decode_userinfo(h, (size_t)(at - h));
      char *c = info != NULL ? strchr(info, ':') : NULL;
      if (info == NULL)
        return lxshm__fail(err, LXSHM_SYSTEM, "out of memory");
      free(ns->password);
      ns->password = NULL;
      if (c != NULL && c[1] != '\0') {
        ns->password = strdup(c + 1);
        if (c != info) { /* a user name: AUTH user password, kept as "user\npassword" */
          size_t un = (size_t)(c - info), pn = strlen(c + 1);
          char *both = (char *)malloc(un + pn + 2);
          if (both != NULL) {
            memcpy(both, info, un);
            both[un] = '\n';
            memcpy(both + un + 1, c + 1, pn + 1);
          }
          free(ns->password);
          ns->password = both;
        }
      }
      else if (c == NULL && info[0] != '\0')
        ns->password = strdup(info);
      free(info);
      h = at + 1;
    }
    slash = strchr(h, '/');
    end = slash != NULL ? slash : h + strlen(h);
    if (h[0] == '[') { /* [IPv6]:port */
      const char *close = memchr(h, ']', (size_t)(end - h));
      if (close == NULL)
        return lxshm__fail(err, LXSHM_INVALID, "bad URL \"%s\": unclosed [", url);
      hn = (size_t)(close - h - 1);
      if (hn == 0 || hn >= sizeof a->host)
        return lxshm__fail(err, LXSHM_INVALID, "bad URL \"%s\": bad host", url);
      memcpy(a->host, h + 1, hn);
      colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
      if (close + 1 < end && colon == NULL)
        return lxshm__fail(err, LXSHM_INVALID, "bad URL \"%s\": bad host", url);
    }
    else {
      colon = memchr(h, ':', (size_t)(end - h));
      hn = (size_t)((colon != NULL ? colon : end) - h);
      if (hn == 0 || hn >= sizeof a->host)
        return lxshm__fail(err, LXSHM_INVALID, "bad URL \"%s\": expected redis://HOST:PORT[/DB]",
                           url);
      memcpy(a->host, h, hn);
    }
    a->host[hn] = '\0';
    a->port = 6379;
    if (colon != NULL) {
      size_t pn = (size_t)(end - colon - 1);
      int port = all_digits(colon + 1, pn) ? digits_value(colon + 1, pn) : 0;
      if (port < 1 || port > 65535)
        return lxshm__fail(err, LXSHM_INVALID, "bad URL \"%s\": bad port", url);
      a->port = port;
    }
    if (slash != NULL && slash[1] != '\0') {
      if (!all_digits(slash + 1, strlen(slash + 1)))
        return lxshm__fail(err, LXSHM_INVALID, "bad URL \"%s\": the path is a database number",
                           url);
      ns->db = digits_value(slash + 1, strlen(slash + 1));
    }
    return LXSHM_OK;
  }
  return lxshm__fail(err, LXSHM_INVALID,
                     "unsupported URL \"%s\": use shm:, redis://HOST:PORT[/DB] or "
                     "redis+unix:///PATH[?db=N]",
                     url);
}

static void describe_addr(const rx_addr *a, char *buf, size_t n) {
  if (a->is_unix)
    snprintf(buf, n, "%s", a->host);
  else if (strchr(a->host, ':') != NULL)
    snprintf(buf, n, "[%s]:%d", a->host, a->port);
  else
    snprintf(buf, n, "%s:%d", a->host, a->port);
}

/* ---- connections -------------------------------------------------------------------------- */

void rx_conn_drop(rx_conn *conn) {
  if (conn->c != NULL) {
    redisFree(conn->c);
    conn->c = NULL;
  }
  if (conn->id != 0)
    conn->old_id = conn->id;
  conn->id = 0;
}

/* The failure of a broken connection, which is closed: the next command reconnects. */
static lxshm_status broken(rx_ns *ns, rx_conn *conn, lxshm_error *err) {
  char where[300];
  const char *why = conn->c != NULL && conn->c->errstr[0] ? conn->c->errstr : "connection lost";
  describe_addr(&ns->nodes[conn->node], where, sizeof where);
  if (conn->c != NULL && conn->c->err == REDIS_ERR_IO &&
      (errno == EAGAIN || errno == EWOULDBLOCK || strstr(why, "temporarily") != NULL))
    why = "no reply in time";
  lxshm__fail(err, LXSHM_UNAVAILABLE, "Redis at %s: %s", where, why);
  rx_conn_drop(conn);
  return LXSHM_UNAVAILABLE;
}

/* Writes what hiredis buffered on conn, with send(MSG_NOSIGNAL): a server that went away must
 * not kill the process with SIGPIPE (the write fails with EPIPE instead), and the process's own
 * signal handling is left alone. */
static lxshm_status flush_out(rx_ns *ns, rx_conn *conn, lxshm_error *err) {
  redisContext *c = conn->c;
  while (sdslen(c->obuf) > 0) {
    ssize_t n = send(c->fd, c->obuf, sdslen(c->obuf), MSG_NOSIGNAL);
    if (n < 0) {
      int e = errno;
      if (e == EINTR)
        continue;
      c->err = REDIS_ERR_IO;
      snprintf(c->errstr, sizeof c->errstr, "%s",
               e == EAGAIN || e == EWOULDBLOCK ? "no reply in time" : strerror(e));
      return broken(ns, conn, err);
    }
    sdsrange(c->obuf, (int)n, -1);
  }
  return LXSHM_OK;
}

/* ---- waiting for a reply without sleeping ------------------------------------------------- *
 * A reply that comes back within microseconds (a local server) costs more in the wake-up of a
 * process asleep in read() than in the round trip itself: on a small VM a process woken on
 * another CPU takes 50-100 µs to run. So, before it sleeps, a command that does not block in the
 * server looks for its reply for up to SPIN_S, without sleeping, when another CPU can run the
 * server meanwhile. A connection whose replies keep coming later than that (a remote server, a
 * slow script) stops looking for SPIN_REST replies, then tries again. */
#define SPIN_S 50e-6      /* how long to look for a reply before sleeping */
#define SPIN_MISSES 4     /* looks in a row that found nothing before resting */
#define SPIN_REST 256     /* replies waited for asleep after those */
#define SPIN_BUFFER 16384 /* bytes taken from the socket per look */

static long cpu_count(void) {
  static long n; /* 0 until first asked */
  if (n == 0)
    n = sysconf(_SC_NPROCESSORS_ONLN);
  return n;
}

/* Looks for the first bytes of a reply on conn for up to SPIN_S, handing what it finds to
 * hiredis's reader; returns 1 when there is something to read (bytes, end of file or an error:
 * the read that follows reports those), 0 when nothing came. */
static int look_for_reply(rx_conn *conn) {
  char buf[SPIN_BUFFER];
  double stop = rx_now() + SPIN_S;
  do {
    ssize_t n = recv(conn->c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0)
      return redisReaderFeed(conn->c->reader, buf, (size_t)n) == REDIS_OK;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
      return 1;
    sched_yield(); /* should the server be waiting for this CPU, it goes first */
  } while (rx_now() < stop);
  return 0;
}

/* Before a read that would sleep: looks for the reply first where that pays (see above), unless
 * hiredis already holds bytes of it (read with the reply before, as ASKING's is). */
static void before_sleeping(rx_conn *conn) {
  const redisReader *r = conn->c->reader;
  if (r->pos < r->len)
    return;
  if (conn->spin_rest > 0) {
    conn->spin_rest--;
    return;
  }
  if (cpu_count() < 2)
    return;
  if (look_for_reply(conn)) {
    conn->spin_misses = 0;
    return;
  }
  if (++conn->spin_misses >= SPIN_MISSES) {
    conn->spin_misses = 0;
    conn->spin_rest = SPIN_REST;
  }
}

/* Reads one reply (after flush_out: nothing is left to write, so this only reads). */
static lxshm_status read_reply(rx_ns *ns, rx_conn *conn, redisReply **r, lxshm_error *err) {
  if (redisGetReply(conn->c, (void **)r) != REDIS_OK) {
    *r = NULL;
    return broken(ns, conn, err);
  }
  return LXSHM_OK;
}

static lxshm_status set_read_timeout(rx_ns *ns, rx_conn *conn, double seconds, lxshm_error *err) {
  if (conn->read_timeout == seconds)
    return LXSHM_OK;
  if (redisSetTimeout(conn->c, to_tv(seconds)) != REDIS_OK)
    return broken(ns, conn, err);
  conn->read_timeout = seconds;
  return LXSHM_OK;
}

/* Connects conn to node (AUTH, SELECT, CLIENT SETNAME and CLIENT ID in one round trip). */
static lxshm_status connect_node(rx_ns *ns, rx_conn *conn, int node, lxshm_error *err) {
  const rx_addr *a = &ns->nodes[node];
  struct timeval tv = to_tv(ns->timeout);
  redisReply *r;
  char where[300];
  int n = 0, i;
  lxshm_status st = LXSHM_OK;

  rx_conn_drop(conn);
  conn->node = node;
  conn->read_timeout = -1;
  conn->pid = (long)getpid();
  describe_addr(a, where, sizeof where);
  conn->c = a->is_unix ? redisConnectUnixWithTimeout(a->host, tv)
                       : redisConnectWithTimeout(a->host, a->port, tv);
  if (conn->c == NULL)
    return lxshm__fail(err, LXSHM_UNAVAILABLE, "Redis at %s: out of memory", where);
  if (conn->c->err) {
    lxshm__fail(err, LXSHM_UNAVAILABLE, "Redis at %s: %s", where, conn->c->errstr);
    rx_conn_drop(conn);
    return LXSHM_UNAVAILABLE;
  }
  if (set_read_timeout(ns, conn, ns->timeout, err) != LXSHM_OK)
    return LXSHM_UNAVAILABLE;
  if (ns->password != NULL) {
    char *nl = strchr(ns->password, '\n');
    if (nl != NULL) {
      const char *argv[3] = {"AUTH", ns->password, nl + 1};
      size_t lens[3] = {4, (size_t)(nl - ns->password), strlen(nl + 1)};
      redisAppendCommandArgv(conn->c, 3, argv, lens);
    }
    else
      redisAppendCommand(conn->c, "AUTH %s", ns->password);
    n++;
  }
  if (ns->db != 0 && !ns->cluster) {
    redisAppendCommand(conn->c, "SELECT %d", ns->db);
    n++;
  }
  if (conn->client_name != NULL) {
    redisAppendCommand(conn->c, "CLIENT SETNAME %s", conn->client_name);
    n++;
  }
  redisAppendCommand(conn->c, "CLIENT ID");
  n++;
  if (flush_out(ns, conn, err) != LXSHM_OK)
    return LXSHM_UNAVAILABLE;
  for (i = 0; i < n; i++) {
    if (read_reply(ns, conn, &r, err) != LXSHM_OK)
      return LXSHM_UNAVAILABLE;
    if (r->type == REDIS_REPLY_ERROR && st == LXSHM_OK) {
      if (i == 0 && ns->password != NULL)
        st = lxshm__fail(err, LXSHM_PERMISSION, "Redis at %s: AUTH: %s", where, r->str);
      else if (strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "NOPERM", 6) == 0)
        st = lxshm__fail(err, LXSHM_PERMISSION, "Redis at %s: %s", where, r->str);
      else if (ns->db != 0 && strstr(r->str, "DB index") != NULL)
        st = lxshm__fail(err, LXSHM_INVALID, "Redis at %s: SELECT %d: %s", where, ns->db, r->str);
      /* CLIENT SETNAME or CLIENT ID refused (an ACL): waiters are not counted, nothing else */
    }
    else if (i == n - 1 && r->type == REDIS_REPLY_INTEGER)
      conn->id = r->integer;
    freeReplyObject(r);
  }
  if (st != LXSHM_OK)
    rx_conn_drop(conn);
  return st;
}

/* ---- Cluster ------------------------------------------------------------------------------ */

static uint16_t crc16(const char *buf, size_t len) {
  uint16_t crc = 0;
  size_t i;
  int j;
  for (i = 0; i < len; i++) {
    crc ^= (uint16_t)((uint16_t)(unsigned char)buf[i] << 8);
    for (j = 0; j < 8; j++)
      crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
  }
  return crc;
}

int rx_slot(const char *key, size_t len) {
  const char *open = memchr(key, '{', len);
  if (open != NULL) {
    const char *close = memchr(open + 1, '}', len - (size_t)(open + 1 - key));
    if (close != NULL && close > open + 1)
      return crc16(open + 1, (size_t)(close - open - 1)) & (RX_SLOTS - 1);
  }
  return crc16(key, len) & (RX_SLOTS - 1);
}

/* The index of the node at host:port, added if new; -1 when the table is full. */
static int node_index(rx_ns *ns, const char *host, size_t hlen, int port) {
  int i;
  if (hlen >= sizeof ns->nodes[0].host)
    return -1;
  for (i = 0; i < ns->nnodes; i++)
    if (!ns->nodes[i].is_unix && ns->nodes[i].port == port && strlen(ns->nodes[i].host) == hlen &&
        memcmp(ns->nodes[i].host, host, hlen) == 0)
      return i;
  if (ns->nnodes == RX_NODES_MAX)
    return -1;
  i = ns->nnodes++;
  memset(&ns->nodes[i], 0, sizeof ns->nodes[i]);
  memcpy(ns->nodes[i].host, host, hlen);
  ns->nodes[i].host[hlen] = '\0';
  ns->nodes[i].port = port;
  memset(&ns->pool[i], 0, sizeof ns->pool[i]);
  return i;
}

/* Reads CLUSTER SLOTS through the shared connection of `via` and rebuilds the slot map. */
static lxshm_status load_slots(rx_ns *ns, int via, lxshm_error *err) {
  rx_conn *conn = &ns->pool[via];
  redisReply *r;
  size_t i;
  lxshm_status st = LXSHM_OK;

  if (conn->c == NULL && (st = connect_node(ns, conn, via, err)) != LXSHM_OK)
    return st;
  if ((st = set_read_timeout(ns, conn, ns->timeout, err)) != LXSHM_OK)
    return st;
  redisAppendCommand(conn->c, "CLUSTER SLOTS");
  if ((st = flush_out(ns, conn, err)) != LXSHM_OK ||
      (st = read_reply(ns, conn, &r, err)) != LXSHM_OK)
    return st;
  if (r->type != REDIS_REPLY_ARRAY) {
    st = r->type == REDIS_REPLY_ERROR ? rx_error_status(r, err)
                                      : lxshm__fail(err, LXSHM_SYSTEM, "CLUSTER SLOTS: bad reply");
    freeReplyObject(r);
    return st;
  }
  for (i = 0; i < r->elements; i++) {
    redisReply *e = r->element[i], *m;
    long long lo, hi, s;
    int node;
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3)
      continue;
    m = e->element[2];
    lo = rx_int(e->element[0], -1);
    hi = rx_int(e->element[1], -1);
    if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 || lo < 0 || hi >= RX_SLOTS || lo > hi)
      continue;
    if (m->element[0]->type != REDIS_REPLY_STRING)
      continue;
    if (m->element[0]->len == 0) /* "": the node we asked */
      node = node_index(ns, ns->nodes[via].host, strlen(ns->nodes[via].host),
                        (int)rx_int(m->element[1], 0));
    else
      node = node_index(ns, m->element[0]->str, m->element[0]->len, (int)rx_int(m->element[1], 0));
    if (node < 0)
      continue;
    for (s = lo; s <= hi; s++)
      ns->slots[s] = (uint8_t)node;
  }
  freeReplyObject(r);
  return LXSHM_OK;
}

/* Parses "MOVED 3999 127.0.0.1:6381" / "ASK ..." into a slot and a node index. */
static int redirect_target(rx_ns *ns, const char *msg, int *slot) {
  const char *sp = strchr(msg, ' '), *addr, *colon;
  if (sp == NULL)
    return -1;
  *slot = atoi(sp + 1);
  addr = strchr(sp + 1, ' ');
  if (addr == NULL)
    return -1;
  addr++;
  colon = strrchr(addr, ':');
  if (colon == NULL)
    return -1;
  return node_index(ns, addr, (size_t)(colon - addr), atoi(colon + 1));
}

lxshm_status rx_ns_start(rx_ns *ns, int cluster, lxshm_error *err) {
  redisReply *r;
  lxshm_status st;
  int i;

  ns->nnodes = 1;
  ns->nodes[0] = ns->seed;
  memset(ns->slots, 0xff, sizeof ns->slots);
  ns->cluster = 0;
  memset(&ns->main, 0, sizeof ns->main);
  if ((st = connect_node(ns, &ns->pool[0], 0, err)) != LXSHM_OK)
    return st;
  if (cluster < 0) { /* ask the server */
    redisAppendCommand(ns->pool[0].c, "INFO cluster");
    if ((st = flush_out(ns, &ns->pool[0], err)) != LXSHM_OK ||
        (st = read_reply(ns, &ns->pool[0], &r, err)) != LXSHM_OK)
      return st;
    cluster = r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_enabled:1") != NULL;
    if (r->type == REDIS_REPLY_ERROR) {
      st = rx_error_status(r, err);
      freeReplyObject(r);
      return st;
    }
    freeReplyObject(r);
  }
  if (cluster) {
    ns->cluster = 1;
    if (ns->db != 0)
      return lxshm__fail(err, LXSHM_INVALID, "a Redis Cluster has only database 0, not %d", ns->db);
    if ((st = load_slots(ns, 0, err)) != LXSHM_OK)
      return st;
    for (i = 0; i < RX_SLOTS; i++)
      if (ns->slots[i] == 0xff)
        return lxshm__fail(err, LXSHM_UNAVAILABLE, "the Redis Cluster at %s serves no slot %d",
                           ns->url, i);
  }
  return LXSHM_OK;
}

void rx_ns_release(rx_ns *ns) {
  int i;
  if (ns == NULL || --ns->refs > 0)
    return;
  for (i = 0; i < RX_NODES_MAX; i++)
    rx_conn_drop(&ns->pool[i]);
  rx_conn_drop(&ns->main);
  free(ns->password);
  free(ns);
}

/* ---- one command ---------------------------------------------------------------------------- */

lxshm_status rx_error_status(const redisReply *r, lxshm_error *err) {
  static const struct {
    const char *prefix;
    lxshm_status st;
  } map[] = {{"OOM", LXSHM_FULL},
             {"LOADING", LXSHM_UNAVAILABLE},
             {"CLUSTERDOWN", LXSHM_UNAVAILABLE},
             {"MASTERDOWN", LXSHM_UNAVAILABLE},
             {"READONLY", LXSHM_UNAVAILABLE},
             {"TRYAGAIN", LXSHM_UNAVAILABLE},
             {"BUSY", LXSHM_UNAVAILABLE},
             {"NOAUTH", LXSHM_PERMISSION},
             {"WRONGPASS", LXSHM_PERMISSION},
             {"NOPERM", LXSHM_PERMISSION},
             {"WRONGTYPE", LXSHM_INVALID}};
  size_t i;
  const char *s = r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply";
  for (i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strncmp(s, map[i].prefix, strlen(map[i].prefix)) == 0)
      return lxshm__fail(err, map[i].st, "Redis: %s", s);
  return lxshm__fail(err, LXSHM_SYSTEM, "Redis: %s", s);
}

static int starts(const redisReply *r, const char *word) {
  size_t n = strlen(word);
  return r->type == REDIS_REPLY_ERROR && r->len > n && strncmp(r->str, word, n) == 0 &&
         r->str[n] == ' ';
}

lxshm_status rx_command(rx_ns *ns, rx_conn *conn, int slot, rx_cmd *cmd, double block,
                        redisReply **out, lxshm_error *err) {
  int ask = -1, hop, refreshed = 0, resent = 0, reused, wait_ms = 1;
  double tryagain_until = 0;
  *out = NULL;
  for (hop = 0; hop <= RX_REDIRECTS; hop++) {
    rx_conn *via = conn;
    int node = 0;
    redisReply *r = NULL;
    lxshm_status st;
    if (ask >= 0) {
      node = ask;
      via = &ns->pool[node];
    }
    else if (ns->cluster) {
      if (ns->slots[slot] == 0xff && !refreshed) {
        refreshed = 1;
        if ((st = load_slots(ns, conn->c != NULL ? conn->node : 0, err)) != LXSHM_OK)
          return st;
      }
      if (ns->slots[slot] == 0xff)
        return lxshm__fail(err, LXSHM_UNAVAILABLE, "no Redis Cluster node serves slot %d", slot);
      node = ns->slots[slot];
    }
    reused = via->c != NULL && via->node == node;
    if (!reused && (st = connect_node(ns, via, node, err)) != LXSHM_OK)
      return st;
    if ((st = set_read_timeout(ns, via, ns->timeout + (block > 0 ? block : 0), err)) != LXSHM_OK)
      return st;
    if (ask >= 0)
      redisAppendCommand(via->c, "ASKING");
    redisAppendCommandArgv(via->c, cmd->argc, cmd->argv, cmd->lens);
    if ((st = flush_out(ns, via, err)) != LXSHM_OK) {
      /* Nothing was sent: a connection kept from before found its server gone (restarted,
       * or a dropped idle connection). Safe to try once more on a new connection. */
      if (reused && !resent) {
        resent = 1;
        continue;
      }
      return st;
    }
    if (ask >= 0) {
      if ((st = read_reply(ns, via, &r, err)) != LXSHM_OK)
        return st;
      freeReplyObject(r);
    }
    if (block <= 0)
      before_sleeping(via);
    if ((st = read_reply(ns, via, &r, err)) != LXSHM_OK)
      return st;
    if (ns->cluster && starts(r, "MOVED")) {
      int s, target = redirect_target(ns, r->str, &s);
      freeReplyObject(r);
      if (target < 0)
        return lxshm__fail(err, LXSHM_UNAVAILABLE, "Redis Cluster: cannot follow MOVED");
      ns->slots[s & (RX_SLOTS - 1)] = (uint8_t)target;
      if (load_slots(ns, target, err) != LXSHM_OK) /* the map is stale: read it again */
        ns->slots[s & (RX_SLOTS - 1)] = (uint8_t)target;
      ask = -1;
      continue;
    }
    if (ns->cluster && starts(r, "ASK")) {
      int s;
      ask = redirect_target(ns, r->str, &s);
      freeReplyObject(r);
      if (ask < 0)
        return lxshm__fail(err, LXSHM_UNAVAILABLE, "Redis Cluster: cannot follow ASK");
      continue;
    }
    if (ns->cluster && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "TRYAGAIN", 8) == 0) {
      /* A script whose keys are half moved while the slot migrates: Redis asks to try again
       * once the migration has gone on, which it does without us; wait up to ns->timeout. */
      freeReplyObject(r);
      if (tryagain_until == 0)
        tryagain_until = rx_now() + ns->timeout;
      if (rx_now() > tryagain_until)
        return lxshm__fail(err, LXSHM_UNAVAILABLE,
                           "Redis Cluster: slot %d still being migrated after %g s (TRYAGAIN)",
                           slot, ns->timeout);
      pause_ms(wait_ms);
      if (wait_ms < 64)
        wait_ms *= 2;
      hop--; /* not a redirection: it does not count */
      continue;
    }
    *out = r;
    return LXSHM_OK;
  }
  return lxshm__fail(err, LXSHM_UNAVAILABLE, "Redis Cluster: too many redirections for slot %d",
                     slot);
}

/* ---- scripts ------------------------------------------------------------------------------ */

/* SHA-1 (FIPS 180-4), for EVALSHA: scripts are named by the SHA-1 of their text. */
static uint32_t rol(uint32_t x, int n) {
  return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const unsigned char *p) {
  uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  int i;
  for (i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
           p[4 * i + 3];
  for (i = 16; i < 80; i++)
    w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  for (i = 0; i < 80; i++) {
    uint32_t f, k, t;
    if (i < 20) {
      f = (b & c) | (~b & d);
      k = 0x5a827999;
    }
    else if (i < 40) {
      f = b ^ c ^ d;
      k = 0x6ed9eba1;
    }
    else if (i < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8f1bbcdc;
    }
    else {
      f = b ^ c ^ d;
      k = 0xca62c1d6;
    }
    t = rol(a, 5) + f + e + k + w[i];
    e = d;
    d = c;
    c = rol(b, 30);
    b = a;
    a = t;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

static void sha1_hex(const char *s, size_t n, char out[41]) {
  uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
  unsigned char block[64];
  uint64_t bits = (uint64_t)n * 8;
  size_t i, off = 0;
  for (; n - off >= 64; off += 64)
    sha1_block(h, (const unsigned char *)s + off);
  memset(block, 0, sizeof block);
  memcpy(block, s + off, n - off);
  block[n - off] = 0x80;
  if (n - off >= 56) {
    sha1_block(h, block);
    memset(block, 0, sizeof block);
  }
  for (i = 0; i < 8; i++)
    block[63 - i] = (unsigned char)(bits >> (8 * i));
  sha1_block(h, block);
  for (i = 0; i < 5; i++)
    snprintf(out + 8 * i, 9, "%08x", (unsigned)h[i]);
}

void rx_script_cmd(rx_cmd *cmd, rx_script *s, int nkeys) {
  rx_cmd_init(cmd);
  if (s->sha[0] == '\0')
    sha1_hex(s->body, strlen(s->body), s->sha);
  rx_arg(cmd, "EVALSHA", 7);
  rx_arg(cmd, s->sha, 40);
  rx_arg_int(cmd, nkeys);
}

lxshm_status rx_eval(rx_ns *ns, rx_conn *conn, int slot, rx_script *s, rx_cmd *cmd,
                     redisReply **out, lxshm_error *err) {
  lxshm_status st = rx_command(ns, conn, slot, cmd, 0, out, err);
  if (st == LXSHM_OK && (*out)->type == REDIS_REPLY_ERROR &&
      strncmp((*out)->str, "NOSCRIPT", 8) == 0) {
    freeReplyObject(*out); /* this server has not seen it yet: send it whole, it keeps it */
    *out = NULL;
    cmd->argv[0] = "EVAL";
    cmd->lens[0] = 4;
    cmd->argv[1] = s->body;
    cmd->lens[1] = strlen(s->body);
    st = rx_command(ns, conn, slot, cmd, 0, out, err);
    cmd->argv[0] = "EVALSHA";
    cmd->lens[0] = 7;
    cmd->argv[1] = s->sha;
    cmd->lens[1] = 40;
  }
  return st;
}

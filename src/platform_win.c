/* platform_win.c — platform.h on Windows: named file mappings in the session namespace, a
 * named mutex per lock (WAIT_ABANDONED is a dead owner), per-waiter named events. The only
 * file of the Windows build that includes windows.h or calls GetLastError; like
 * platform_posix.c it holds no policy (retries, deadlines, header layout): the core decides.
 * Uses kernel32, and advapi32 for the security descriptors. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <aclapi.h>

#include "internal.h"
#include "layout.h"
#include "platform.h"

/* ==== Objects under one name ==================================================================
 *
 * Windows has no unlink: a name lives exactly as long as some process has a handle open on its
 * object (a mapped view keeps the memory, not the name), and then vanishes. So an lxshm object
 * lives while some process has it open, and cannot be removed while one does. To give remove()
 * SPEC §4's meaning anyway, a name is a small record, the *directory*, and the object itself is
 * one of its *generations*:
 *
 *   Local\lxshm.<name>               directory: a one-page mapping (win_dir)
 *   Local\lxshm.<name>!dir           mutex serializing create, open and remove of the name
 *   Local\lxshm.<name>!<gen>         the object: a platform page (win_page), then the core's bytes
 *   Local\lxshm.<name>!<gen>.lock<N> the mutex of the lock at byte N of the core's bytes
 *   Local\lxshm!ev.<pid>.<serial>    one waiter's event (one per handle that waits)
 *
 * create makes generation g+1 and marks the directory LIVE; open maps the LIVE generation;
 * remove marks it REMOVED, so later opens fail with NOT_FOUND while old handles keep their
 * mapping, and the next create makes a new generation. Every handle holds the directory open
 * as long as its generation, so the directory outlives every generation it named. '!' is not
 * allowed in lxshm names, so no derived name can collide with another lxshm name. */

#define PAGE 4096u                    /* the platform page before the core's bytes */
#define DIR_MAGIC 0x5249444cu         /* "LDIR": an initialized directory */
#define PAGE_MAGIC 0x4e49574cu        /* "LWIN": a generation's platform page */
#define OBJ_NAME 160                  /* room for every name above */
#define MAX_LOCKS 72                  /* lock offsets a handle caches: up to 64 stripes + 1 */
#define ALL_ACCESS_RIGHTS 0x001fffffu /* standard and specific rights: all access, any type */
#define CREATE_TRIES 16               /* generations skipped if a stale one is in the way */

enum { DIR_EMPTY = 0, DIR_LIVE = 1, DIR_REMOVED = 2 };

/* The directory page. Written only under the directory mutex, read under it too. */
typedef struct win_dir {
  _Atomic uint32_t magic;      /* DIR_MAGIC once initialized; 0 in a fresh page */
  uint32_t mode;               /* mode of the create that initialized it: its objects' access */
  _Atomic uint64_t generation; /* newest generation made under this name */
  _Atomic uint32_t state;      /* DIR_LIVE: `generation` is the name's object, if it still
                                  exists (it vanishes with its last handle); else none */
  uint32_t reserved;
} win_dir;

/* One registered waiter: which event to set when the word at `offset` changes. */
typedef struct win_waiter {
  _Atomic uint64_t who;    /* pid << 32 | serial of the waiter's event; 0 = free entry */
  _Atomic uint32_t offset; /* byte offset of the word it sleeps on, in the core's bytes */
  uint32_t reserved;
} win_waiter;

#define WAITERS ((PAGE - 32) / sizeof(win_waiter))

/* The first page of every generation; the core's bytes start right after it. */
typedef struct win_page {
  _Atomic uint32_t magic; /* PAGE_MAGIC, written by the creator before the directory names it */
  uint32_t mode;          /* creator's mode: access of the mutexes and events made later */
  uint64_t size;          /* bytes the core asked for (the section itself is page-rounded) */
  uint64_t generation;    /* this generation's number, for diagnostics */
  uint64_t reserved;
  win_waiter waiters[WAITERS]; /* processes sleeping in lxshm__word_wait, any word */
} win_page;

_Static_assert(sizeof(win_page) <= PAGE, "platform page fits one page");
_Static_assert(sizeof(win_dir) <= PAGE, "directory fits one page");

/* What one handle keeps; lxshm__mapping.os[0] points to it. */
typedef struct win_state {
  HANDLE dir;            /* directory mapping: keeps the name's record alive */
  HANDLE section;        /* the generation: a name lives while a handle does (a view keeps
                            the memory, not the name) */
  win_page *page;        /* the view; the core's bytes start at page + 1 page */
  char prefix[OBJ_NAME]; /* "Local\lxshm.<name>!<gen>": base of lock names */
  uint32_t lock_offset[MAX_LOCKS];
  HANDLE lock[MAX_LOCKS]; /* named mutexes by lock offset, opened on first use */
  int nlocks;
  HANDLE event; /* this handle's waiter event, made on first wait */
  uint64_t who; /* its id in the waiter table */
  uint64_t gen; /* the generation mapped */
  int readonly; /* a read-only view: nothing may be written to the page */
} win_state;

/* The lock's bytes in the header: who holds the named mutex. Windows keeps no such record (its
 * mutexes are recursive), so relocking and an owner that vanished are detected from it. */
typedef struct lock_record {
  _Atomic uint32_t pid; /* holder's process id, 0 when free; written by the holder */
  _Atomic uint32_t tid; /* holder's thread id */
} lock_record;

_Static_assert(sizeof(lock_record) <= LXSHM__LOCK_BYTES, "lock record fits the header");

static win_state *state_of(const lxshm__mapping *m) {
  return (win_state *)m->os[0];
}

/* ---- errors ---------------------------------------------------------------------------------- */

/* The one mapping from Windows errors to statuses. `creating`: the call was making an object, so
 * a lack of memory means the size asked for cannot be had. */
static lxshm_status win_status(DWORD e, int creating) {
  switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
      return LXSHM_NOT_FOUND;
    case ERROR_ACCESS_DENIED:
      return LXSHM_PERMISSION;
    case ERROR_ALREADY_EXISTS:
      return LXSHM_EXISTS;
    case ERROR_INVALID_HANDLE: /* the name belongs to another kind of object */
      return creating ? LXSHM_EXISTS : LXSHM_INVALID;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_COMMITMENT_LIMIT:
    case ERROR_DISK_FULL:
      return creating ? LXSHM_INVALID_SIZE : LXSHM_SYSTEM;
    default:
      return LXSHM_SYSTEM;
  }
}

/* Records a failed call: status `st`, "call: system text", and the error code. `e` is
 * GetLastError() captured right after the call. Returns st. */
static lxshm_status win_fail(lxshm_error *err, lxshm_status st, const char *call, DWORD e) {
  if (err != NULL) {
    char text[128];
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, e,
                             MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT), text, sizeof text, NULL);
    while (n > 0 &&
           (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ' || text[n - 1] == '.'))
      n--;
    if (n == 0)
      n = (DWORD)snprintf(text, sizeof text, "error %lu", (unsigned long)e);
    snprintf(err->message, sizeof err->message, "%s: %.*s", call, (int)n, text);
    err->os_code = (int)e;
  }
  return st;
}

/* As win_fail for the error the last call left behind. */
static lxshm_status last_fail(lxshm_error *err, const char *call, int creating) {
  DWORD e = GetLastError();
  return win_fail(err, win_status(e, creating), call, e);
}

/* ---- names and access ------------------------------------------------------------------------ */

/* Widens an ASCII object name (our names are ASCII by construction). */
static void widen(wchar_t out[OBJ_NAME], const char *s) {
  size_t i;
  for (i = 0; i + 1 < OBJ_NAME && s[i] != '\0'; i++)
    out[i] = (wchar_t)(unsigned char)s[i];
  out[i] = 0;
}

/* A security descriptor for our objects, from POSIX-style mode bits: the user who makes the
 * object is always allowed in (an owner can rewrite a Windows DACL anyway, so denying the owner
 * would protect nothing), the token's primary group if any group bit is set, and Everyone if any
 * other bit is set. Nothing else is (no inherited or default ACEs). The Local\ namespace is per
 * logon session, so other users rarely see our names at all. */
/* Room for a token's user (TokenUser), and its SID. */
typedef union token_user {
  TOKEN_USER user;
  unsigned char bytes[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
} token_user;

typedef struct win_sd {
  SECURITY_ATTRIBUTES sa;
  SECURITY_DESCRIPTOR sd;
  union {
    ACL acl;
    unsigned char bytes[3 * (sizeof(ACCESS_ALLOWED_ACE) + SECURITY_MAX_SID_SIZE) + 64];
  } acl;
  token_user user;
  union {
    TOKEN_PRIMARY_GROUP group;
    unsigned char bytes[sizeof(TOKEN_PRIMARY_GROUP) + SECURITY_MAX_SID_SIZE];
  } group;
  union {
    SID sid;
    unsigned char bytes[SECURITY_MAX_SID_SIZE];
  } world;
} win_sd;

static lxshm_status make_sd(unsigned mode, win_sd *s, lxshm_error *err) {
  HANDLE token;
  DWORD n;
  BOOL ok;

  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
    return last_fail(err, "OpenProcessToken", 0);
  ok = GetTokenInformation(token, TokenUser, &s->user, sizeof s->user, &n) &&
       GetTokenInformation(token, TokenPrimaryGroup, &s->group, sizeof s->group, &n);
  if (!ok) {
    DWORD e = GetLastError();
    CloseHandle(token);
    return win_fail(err, LXSHM_SYSTEM, "GetTokenInformation", e);
  }
  CloseHandle(token);
  n = sizeof s->world;
  if (!CreateWellKnownSid(WinWorldSid, NULL, &s->world, &n))
    return last_fail(err, "CreateWellKnownSid", 0);
  if (!InitializeAcl(&s->acl.acl, sizeof s->acl, ACL_REVISION) ||
      !AddAccessAllowedAce(&s->acl.acl, ACL_REVISION, ALL_ACCESS_RIGHTS, s->user.user.User.Sid) ||
      ((mode & 0070) && !AddAccessAllowedAce(&s->acl.acl, ACL_REVISION, ALL_ACCESS_RIGHTS,
                                             s->group.group.PrimaryGroup)) ||
      ((mode & 0007) &&
       !AddAccessAllowedAce(&s->acl.acl, ACL_REVISION, ALL_ACCESS_RIGHTS, &s->world.sid)))
    return last_fail(err, "AddAccessAllowedAce", 0);
  if (!InitializeSecurityDescriptor(&s->sd, SECURITY_DESCRIPTOR_REVISION) ||
      !SetSecurityDescriptorDacl(&s->sd, TRUE, &s->acl.acl, FALSE))
    return last_fail(err, "SetSecurityDescriptorDacl", 0);
  s->sa.nLength = sizeof s->sa;
  s->sa.lpSecurityDescriptor = &s->sd;
  s->sa.bInheritHandle = FALSE;
  return LXSHM_OK;
}

/* ---- the directory --------------------------------------------------------------------------- */

/* A directory opened and locked for one operation. */
typedef struct dir_op {
  HANDLE map;   /* the directory mapping */
  win_dir *dir; /* its view */
  HANDLE mutex; /* held: the directory mutex */
} dir_op;

static lxshm_status dir_check(const struct dir_op *op, const char *name, lxshm_error *err);

/* Closes what dir_begin opened; keeps the mapping handle if *keep is not NULL. */
static void dir_end(dir_op *op, HANDLE *keep) {
  if (op->mutex != NULL) {
    ReleaseMutex(op->mutex);
    CloseHandle(op->mutex);
  }
  if (op->dir != NULL)
    UnmapViewOfFile(op->dir);
  if (keep != NULL)
    *keep = op->map;
  else if (op->map != NULL)
    CloseHandle(op->map);
  memset(op, 0, sizeof *op);
}

/* Opens (create: or makes) the directory of `name` and takes its mutex. An abandoned mutex is
 * fine: every directory update is a few single stores, each consistent on its own, and every
 * reader checks what the directory says against the objects that exist. */
static lxshm_status dir_begin(const char *name, int create, unsigned mode, dir_op *op,
                              lxshm_error *err) {
  char path[OBJ_NAME];
  wchar_t wpath[OBJ_NAME];
  win_sd sd;
  lxshm_status st;
  DWORD r;

  memset(op, 0, sizeof *op);
  snprintf(path, sizeof path, "Local\\lxshm.%s", name);
  widen(wpath, path);
  if (create) {
    if ((st = make_sd(mode, &sd, err)) != LXSHM_OK)
      return st;
    op->map = CreateFileMappingW(INVALID_HANDLE_VALUE, &sd.sa, PAGE_READWRITE | SEC_COMMIT, 0, PAGE,
                                 wpath);
    if (op->map == NULL)
      return last_fail(err, "CreateFileMapping", 1);
  }
  else {
    op->map = OpenFileMappingW(FILE_MAP_READ | FILE_MAP_WRITE, FALSE, wpath);
    if (op->map == NULL)
      return last_fail(err, "OpenFileMapping", 0);
  }
  op->dir = (win_dir *)MapViewOfFile(op->map, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, 0);
  if (op->dir == NULL) {
    st = last_fail(err, "MapViewOfFile", 0);
    dir_end(op, NULL);
    return st;
  }
  /* The mutex takes the access of the name's objects, as recorded when the directory was made
   * (a fresh directory: this create's mode). Only create may find a fresh one: open and remove
   * have nothing to look for in it, and must not make its mutex with guessed access. */
  if (atomic_load_explicit(&op->dir->magic, memory_order_acquire) == DIR_MAGIC) {
    mode = op->dir->mode;
  }
  else if (!create) {
    st = dir_check(op, name, err);
    dir_end(op, NULL);
    return st;
  }
  if ((st = make_sd(mode, &sd, err)) != LXSHM_OK) {
    dir_end(op, NULL);
    return st;
  }
  snprintf(path, sizeof path, "Local\\lxshm.%s!dir", name);
  widen(wpath, path);
  op->mutex = CreateMutexW(&sd.sa, FALSE, wpath);
  if (op->mutex == NULL) {
    st = last_fail(err, "CreateMutex", 0);
    dir_end(op, NULL);
    return st;
  }
  r = WaitForSingleObject(op->mutex, INFINITE);
  if (r != WAIT_OBJECT_0 && r != WAIT_ABANDONED) {
    st = last_fail(err, "WaitForSingleObject", 0);
    CloseHandle(op->mutex);
    op->mutex = NULL;
    dir_end(op, NULL);
    return st;
  }
  if (create && atomic_load_explicit(&op->dir->magic, memory_order_relaxed) == 0) {
    op->dir->mode = mode;
    atomic_store_explicit(&op->dir->magic, DIR_MAGIC, memory_order_release);
  }
  return LXSHM_OK;
}

/* Fails unless the directory is lxshm's. A fresh one nobody initialized yet names nothing. */
static lxshm_status dir_check(const dir_op *op, const char *name, lxshm_error *err) {
  uint32_t magic = atomic_load_explicit(&op->dir->magic, memory_order_acquire);
  if (magic == 0)
    return lxshm__fail(err, LXSHM_NOT_FOUND, "does not exist");
  if (magic != DIR_MAGIC)
    return lxshm__fail(err, LXSHM_INVALID, "Local\\lxshm.%s was not made by lxshm", name);
  return LXSHM_OK;
}

/* Opens the LIVE generation; fails with NOT_FOUND when there is none (never made, removed, or
 * gone with its last handle). */
static lxshm_status open_live(const dir_op *op, const char *name, DWORD access, HANDLE *h,
                              uint64_t *gen, lxshm_error *err) {
  char path[OBJ_NAME];
  wchar_t wpath[OBJ_NAME];

  if (atomic_load_explicit(&op->dir->state, memory_order_relaxed) != DIR_LIVE)
    return lxshm__fail(err, LXSHM_NOT_FOUND, "does not exist");
  *gen = atomic_load_explicit(&op->dir->generation, memory_order_relaxed);
  snprintf(path, sizeof path, "Local\\lxshm.%s!%llu", name, (unsigned long long)*gen);
  widen(wpath, path);
  *h = OpenFileMappingW(access, FALSE, wpath);
  if (*h == NULL) {
    DWORD e = GetLastError();
    if (e == ERROR_FILE_NOT_FOUND)
      return lxshm__fail(err, LXSHM_NOT_FOUND, "does not exist");
    return win_fail(err, win_status(e, 0), "OpenFileMapping", e);
  }
  return LXSHM_OK;
}

/* ---- mappings -------------------------------------------------------------------------------- */

static void free_state(win_state *s) {
  int i;
  if (s == NULL)
    return;
  for (i = 0; i < s->nlocks; i++)
    CloseHandle(s->lock[i]);
  if (s->event != NULL)
    CloseHandle(s->event);
  if (s->page != NULL)
    UnmapViewOfFile(s->page);
  if (s->section != NULL)
    CloseHandle(s->section);
  if (s->dir != NULL)
    CloseHandle(s->dir);
  free(s);
}

static win_state *new_state(const char *name, uint64_t gen) {
  win_state *s = calloc(1, sizeof *s);
  if (s != NULL) {
    snprintf(s->prefix, sizeof s->prefix, "Local\\lxshm.%s!%llu", name, (unsigned long long)gen);
    s->gen = gen;
  }
  return s;
}

static void publish_view(lxshm__mapping *m, win_state *s, size_t size) {
  m->base = (unsigned char *)s->page + PAGE;
  m->size = size;
  m->readonly = s->readonly;
  m->os[0] = (intptr_t)s;
}

/* Ends a create or an open: on OK the handle keeps the section h and the directory, and m gets
 * the view of `size` bytes; otherwise everything made is let go. Returns st. */
static lxshm_status finish(lxshm_status st, dir_op *op, win_state *s, HANDLE h, lxshm__mapping *m,
                           size_t size) {
  if (st == LXSHM_OK) {
    s->section = h;
    dir_end(op, &s->dir);
    publish_view(m, s, size);
  }
  else {
    if (h != NULL)
      CloseHandle(h);
    dir_end(op, NULL);
    free_state(s);
  }
  return st;
}

lxshm_status lxshm__map_create(const char *name, size_t size, unsigned mode, lxshm__mapping *m,
                               lxshm_error *err) {
  MEMORYSTATUSEX mem;
  uint64_t total = (uint64_t)size + PAGE, gen;
  win_state *s = NULL;
  HANDLE h = NULL, existing;
  lxshm_status st;
  dir_op op;
  win_sd sd;
  int tries;

  memset(m, 0, sizeof *m);
  /* SEC_COMMIT charges the whole size to the commit limit on Windows; Wine instead backs the
   * section with a sparse file. Refuse what the commit limit cannot hold on both, so that
   * touching the memory later cannot fail. */
  mem.dwLength = sizeof mem;
  if (GlobalMemoryStatusEx(&mem) && total > mem.ullAvailPageFile)
    return lxshm__fail(err, LXSHM_INVALID_SIZE,
                       "%llu bytes is more than the %llu the system can commit now",
                       (unsigned long long)total, (unsigned long long)mem.ullAvailPageFile);
  if ((st = make_sd(mode, &sd, err)) != LXSHM_OK)
    return st;
  if ((st = dir_begin(name, 1, mode, &op, err)) != LXSHM_OK)
    return st;
  if (atomic_load_explicit(&op.dir->magic, memory_order_relaxed) != DIR_MAGIC) {
    st = lxshm__fail(err, LXSHM_EXISTS, "Local\\lxshm.%s is taken by an object not made by lxshm",
                     name);
    goto done;
  }
  if (open_live(&op, name, FILE_MAP_READ, &existing, &gen, NULL) == LXSHM_OK) {
    CloseHandle(existing);
    st = win_fail(err, LXSHM_EXISTS, "CreateFileMapping", ERROR_ALREADY_EXISTS);
    goto done;
  }
  gen = atomic_load_explicit(&op.dir->generation, memory_order_relaxed);
  for (tries = 0;; tries++) {
    char path[OBJ_NAME];
    wchar_t wpath[OBJ_NAME];
    DWORD e;
    gen++;
    snprintf(path, sizeof path, "Local\\lxshm.%s!%llu", name, (unsigned long long)gen);
    widen(wpath, path);
    h = CreateFileMappingW(INVALID_HANDLE_VALUE, &sd.sa, PAGE_READWRITE | SEC_COMMIT,
                           (DWORD)(total >> 32), (DWORD)total, wpath);
    e = GetLastError();
    if (h == NULL) {
      st = win_fail(err, win_status(e, 1), "CreateFileMapping", e);
      goto done;
    }
    if (e != ERROR_ALREADY_EXISTS)
      break;
    /* A generation someone still holds though the directory forgot it (the directory vanished
     * and was made again): never share it, skip to the next number. */
    CloseHandle(h);
    h = NULL;
    if (tries + 1 >= CREATE_TRIES) {
      st = lxshm__fail(err, LXSHM_SYSTEM, "no free generation of %s", name);
      goto done;
    }
  }
  if ((s = new_state(name, gen)) == NULL) {
    st = lxshm__fail(err, LXSHM_SYSTEM, "out of memory");
    goto done;
  }
  s->page = (win_page *)MapViewOfFile(h, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, 0);
  if (s->page == NULL) {
    st = last_fail(err, "MapViewOfFile", 1);
    goto done;
  }
  s->page->mode = mode;
  s->page->size = size;
  s->page->generation = gen;
  atomic_store_explicit(&s->page->magic, PAGE_MAGIC, memory_order_release);
  /* Reserve the number, so that the next creator makes another; the directory names the object
   * only once lxshm__map_publish finds the name free. */
  atomic_store_explicit(&op.dir->generation, gen, memory_order_relaxed);
  st = LXSHM_OK;

done:
  return finish(st, &op, s, h, m, size);
}

/* Says in m whether the object behind h belongs to another user than the caller: its owner is
 * neither the token's user nor its default owner (an administrator's objects are owned by the
 * Administrators group). An owner that cannot be read counts as foreign. */
static void check_owner(HANDLE h, lxshm__mapping *m) {
  token_user user;
  union {
    TOKEN_OWNER owner;
    unsigned char bytes[sizeof(TOKEN_OWNER) + SECURITY_MAX_SID_SIZE];
  } deflt;
  PSECURITY_DESCRIPTOR sd = NULL;
  PSID owner = NULL;
  HANDLE token;
  DWORD n;
  int mine = 0;

  if (GetSecurityInfo(h, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, &owner, NULL, NULL, NULL,
                      &sd) == ERROR_SUCCESS &&
      OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
    mine = (GetTokenInformation(token, TokenUser, &user, sizeof user, &n) &&
            EqualSid(owner, user.user.User.Sid)) ||
           (GetTokenInformation(token, TokenOwner, &deflt, sizeof deflt, &n) &&
            EqualSid(owner, deflt.owner.Owner));
    CloseHandle(token);
  }
  if (!mine) {
    char account[64], domain[64];
    DWORD an = sizeof account, dn = sizeof domain;
    SID_NAME_USE use;
    m->foreign = 1;
    if (owner != NULL && LookupAccountSidA(NULL, owner, account, &an, domain, &dn, &use))
      snprintf(m->owner, sizeof m->owner, "user %.20s\\%.20s", domain, account);
    else
      snprintf(m->owner, sizeof m->owner, "an unknown user");
  }
  if (sd != NULL)
    LocalFree(sd);
}

lxshm_status lxshm__map_publish(const char *name, lxshm__mapping *m, lxshm_error *err) {
  win_state *s = state_of(m);
  lxshm_status st;
  uint64_t gen;
  HANDLE live;
  dir_op op;

  if ((st = dir_begin(name, 1, s->page->mode, &op, err)) != LXSHM_OK)
    return st;
  if (open_live(&op, name, FILE_MAP_READ, &live, &gen, NULL) == LXSHM_OK) {
    CloseHandle(live);
    st = win_fail(err, LXSHM_EXISTS, "CreateFileMapping", ERROR_ALREADY_EXISTS);
  }
  else {
    /* Generation first: a publisher that dies between the two stores leaves the old state,
     * whose object open_live then looks for and does not find. */
    atomic_store_explicit(&op.dir->generation, s->gen, memory_order_relaxed);
    atomic_store_explicit(&op.dir->state, DIR_LIVE, memory_order_release);
  }
  dir_end(&op, NULL);
  return st;
}

/* The object was never named: it vanishes with its last handle, ours. */
void lxshm__map_discard(const char *name, lxshm__mapping *m) {
  (void)name;
  lxshm__map_close(m);
}

lxshm_status lxshm__map_open(const char *name, int readonly, lxshm__mapping *m, lxshm_error *err) {
  MEMORY_BASIC_INFORMATION info;
  win_state *s = NULL;
  HANDLE h = NULL;
  lxshm_status st;
  uint64_t gen;
  dir_op op;

  memset(m, 0, sizeof *m);
  if ((st = dir_begin(name, 0, 0, &op, err)) != LXSHM_OK)
    return st == LXSHM_NOT_FOUND ? lxshm__fail(err, st, "does not exist") : st;
  if ((st = dir_check(&op, name, err)) != LXSHM_OK)
    goto done;
  if ((st = open_live(&op, name,
                      (readonly ? FILE_MAP_READ : FILE_MAP_READ | FILE_MAP_WRITE) | READ_CONTROL,
                      &h, &gen, err)) != LXSHM_OK)
    goto done;
  if ((s = new_state(name, gen)) == NULL) {
    st = lxshm__fail(err, LXSHM_SYSTEM, "out of memory");
    goto done;
  }
  s->readonly = readonly != 0;
  check_owner(h, m);
  s->page = (win_page *)MapViewOfFile(h, readonly ? FILE_MAP_READ : FILE_MAP_READ | FILE_MAP_WRITE,
                                      0, 0, 0);
  if (s->page == NULL) {
    st = last_fail(err, "MapViewOfFile", 0);
    goto done;
  }
  /* The page says how many bytes are the core's; the view must hold them. */
  if (VirtualQuery(s->page, &info, sizeof info) != sizeof info ||
      atomic_load_explicit(&s->page->magic, memory_order_acquire) != PAGE_MAGIC ||
      s->page->size > info.RegionSize - PAGE || info.RegionSize < PAGE) {
    st = lxshm__fail(err, LXSHM_CORRUPT, "platform page of generation %llu is damaged",
                     (unsigned long long)gen);
    goto done;
  }
  st = LXSHM_OK;

done:
  return finish(st, &op, s, h, m, st == LXSHM_OK ? (size_t)s->page->size : 0);
}

void lxshm__map_close(lxshm__mapping *m) {
  free_state(state_of(m));
  memset(m, 0, sizeof *m);
}

lxshm_status lxshm__map_unlink(const char *name, lxshm_error *err) {
  lxshm_status st;
  uint64_t gen;
  HANDLE h;
  dir_op op;

  if ((st = dir_begin(name, 0, 0, &op, err)) != LXSHM_OK)
    return st;
  if ((st = dir_check(&op, name, err)) == LXSHM_OK &&
      (st = open_live(&op, name, FILE_MAP_READ, &h, &gen, err)) == LXSHM_OK) {
    CloseHandle(h);
    atomic_store_explicit(&op.dir->state, DIR_REMOVED, memory_order_release);
  }
  dir_end(&op, NULL);
  return st;
}

lxshm_status lxshm__map_list(lxshm__name_fn each, void *ud, lxshm_error *err) {
  (void)each;
  (void)ud;
  return lxshm__fail(err, LXSHM_UNSUPPORTED,
                     "Windows cannot list named objects; open them by name");
}

/* ---- the lock: a named mutex per lock, with its holder recorded in the header ---------------- */

/* The mutex of the lock at `lock`, opened (or made) on first use and cached in the handle. */
static lxshm_status lock_handle(lxshm__mapping *m, void *lock, HANDLE *out, lxshm_error *err) {
  win_state *s = state_of(m);
  uint32_t offset = (uint32_t)((unsigned char *)lock - m->base);
  char path[OBJ_NAME];
  wchar_t wpath[OBJ_NAME];
  lxshm_status st;
  win_sd sd;
  HANDLE h;
  int i;

  for (i = 0; i < s->nlocks; i++)
    if (s->lock_offset[i] == offset) {
      *out = s->lock[i];
      return LXSHM_OK;
    }
  if (s->nlocks == MAX_LOCKS)
    return lxshm__fail(err, LXSHM_SYSTEM, "more than %d locks in one object", MAX_LOCKS);
  if ((st = make_sd(s->page->mode, &sd, err)) != LXSHM_OK)
    return st;
  snprintf(path, sizeof path, "%s.lock%u", s->prefix, (unsigned)offset);
  widen(wpath, path);
  h = CreateMutexW(&sd.sa, FALSE, wpath);
  if (h == NULL)
    return last_fail(err, "CreateMutex", 0);
  s->lock_offset[s->nlocks] = offset;
  s->lock[s->nlocks++] = h;
  *out = h;
  return LXSHM_OK;
}

lxshm_status lxshm__lock_init(lxshm__mapping *m, void *lock, lxshm_error *err) {
  HANDLE h;
  memset(lock, 0, sizeof(lock_record));
  /* Made now, so that a failure shows at create, and the creator keeps the mutex alive. */
  return lock_handle(m, lock, &h, err);
}

/* Milliseconds from now to `deadline` for a Windows wait: INFINITE for no deadline, 0 once it
 * has passed, rounded up so that a wait never ends before the deadline. */
static DWORD ms_until(uint64_t deadline) {
  uint64_t now, ms;
  if (deadline == UINT64_MAX)
    return INFINITE;
  now = lxshm__clock_ns();
  if (now >= deadline)
    return 0;
  ms = (deadline - now + 999999u) / 1000000u;
  return ms >= INFINITE ? INFINITE - 1 : (DWORD)ms;
}

lxshm_status lxshm__lock_acquire(lxshm__mapping *m, void *lock, uint64_t deadline, int *owner_died,
                                 lxshm_error *err) {
  lock_record *rec = (lock_record *)lock;
  uint32_t pid = lxshm__pid(), tid = (uint32_t)GetCurrentThreadId();
  lxshm_status st;
  HANDLE h;
  DWORD r;

  *owner_died = 0;
  if ((st = lock_handle(m, lock, &h, err)) != LXSHM_OK)
    return st;
  for (;;) {
    r = WaitForSingleObject(h, ms_until(deadline));
    if (r == WAIT_OBJECT_0 || r == WAIT_ABANDONED)
      break;
    if (r == WAIT_TIMEOUT) {
      if (deadline != UINT64_MAX && lxshm__clock_ns() >= deadline)
        return lxshm__fail(err, LXSHM_TIMEOUT, "lock not obtained in time");
      continue; /* the wait ended a little early */
    }
    return last_fail(err, "WaitForSingleObject", 0);
  }
  if (r == WAIT_ABANDONED) {
    *owner_died = 1; /* the owner's thread ended holding it: repair, as after EOWNERDEAD */
  }
  else if (atomic_load_explicit(&rec->pid, memory_order_acquire) == pid &&
           atomic_load_explicit(&rec->tid, memory_order_relaxed) == tid) {
    /* Windows mutexes are recursive: we already held it. Undo this acquisition and refuse, as
     * an error-checking pthread mutex does. */
    ReleaseMutex(h);
    return lxshm__fail(err, LXSHM_INVALID, "lock already held by this thread");
  }
  else if (atomic_load_explicit(&rec->pid, memory_order_relaxed) != 0) {
    /* Free, yet a holder is recorded: it died while it held the only handle to the mutex, which
     * vanished with it, and our handle made a new one. Its work may be half done. (A dead
     * holder whose process and thread ids both came back as ours would read as a relock: the
     * ids are allocated from one table, so that takes two reuses at once.) */
    *owner_died = 1;
  }
  atomic_store_explicit(&rec->tid, tid, memory_order_relaxed);
  atomic_store_explicit(&rec->pid, pid, memory_order_release);
  return LXSHM_OK;
}

void lxshm__lock_recovered(lxshm__mapping *m, void *lock) {
  /* Nothing to do: a Windows mutex reports an abandonment once, to the next owner only. */
  (void)m;
  (void)lock;
}

void lxshm__lock_release(lxshm__mapping *m, void *lock) {
  lock_record *rec = (lock_record *)lock;
  HANDLE h;
  if (lock_handle(m, lock, &h, NULL) != LXSHM_OK)
    return; /* not reached: the acquisition made the handle */
  /* Cleared before the release: a record left behind always means a holder that died. */
  atomic_store_explicit(&rec->pid, 0, memory_order_release);
  atomic_store_explicit(&rec->tid, 0, memory_order_relaxed);
  ReleaseMutex(h);
}

/* ---- waiting: a table of sleepers in the platform page, an auto-reset event each -------------
 *
 * A waiter registers (its event's id and the word's offset) in the page's table, re-checks the
 * word, and sleeps on its own event. A waker, after changing the word, sets the event of every
 * waiter registered for that offset. With both sides ordered (the waiter's registration before
 * its re-check, the waker's change before its scan), a waiter either sees the change or is seen
 * by the waker: no wake-up is lost, and each is counted. A waiter killed while registered leaves
 * an entry whose event vanished with it; the next waker to meet it frees it. */

/* A per-process value that differs between two processes that had the same id (their creation
 * times), so that a dead waiter's event name is never reused by the next holder of its pid. */
static uint32_t serial_base(void) {
  FILETIME created, exited, kernel, user;
  if (!GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel, &user))
    return 1;
  return created.dwLowDateTime ^ created.dwHighDateTime;
}

static void event_name(char out[OBJ_NAME], uint64_t who) {
  snprintf(out, OBJ_NAME, "Local\\lxshm!ev.%lu.%lu", (unsigned long)(who >> 32),
           (unsigned long)(who & 0xffffffffu));
}

/* This handle's waiter event, made on first use. */
static lxshm_status waiter_event(lxshm__mapping *m, lxshm_error *err) {
  static _Atomic uint32_t counter;
  win_state *s = state_of(m);
  char path[OBJ_NAME];
  wchar_t wpath[OBJ_NAME];
  lxshm_status st;
  win_sd sd;
  int tries;

  if (s->event != NULL)
    return LXSHM_OK;
  if ((st = make_sd(s->page->mode, &sd, err)) != LXSHM_OK)
    return st;
  for (tries = 0; tries < 8; tries++) {
    uint32_t serial = serial_base() + atomic_fetch_add(&counter, 1);
    DWORD e;
    s->who = (uint64_t)lxshm__pid() << 32 | serial;
    event_name(path, s->who);
    widen(wpath, path);
    s->event = CreateEventW(&sd.sa, FALSE, FALSE, wpath);
    e = GetLastError();
    if (s->event == NULL)
      return win_fail(err, LXSHM_SYSTEM, "CreateEvent", e);
    if (e != ERROR_ALREADY_EXISTS)
      return LXSHM_OK;
    CloseHandle(s->event); /* someone else's: never share a waiter event */
    s->event = NULL;
  }
  return lxshm__fail(err, LXSHM_SYSTEM, "no free waiter event name");
}

/* Claims a free entry of the table for `who` waiting at `offset`; -1 when the table is full. */
static int enter(win_page *page, uint64_t who, uint32_t offset) {
  unsigned i, start = (unsigned)(who % WAITERS);
  for (i = 0; i < WAITERS; i++) {
    win_waiter *w = &page->waiters[(start + i) % WAITERS];
    uint64_t expected = 0;
    if (atomic_load_explicit(&w->who, memory_order_relaxed) == 0 &&
        atomic_compare_exchange_strong(&w->who, &expected, who)) {
      atomic_store(&w->offset, offset); /* seq_cst: ordered before the caller's re-check */
      return (int)((start + i) % WAITERS);
    }
  }
  return -1;
}

static void leave(win_page *page, int entry) {
  if (entry >= 0) {
    atomic_store_explicit(&page->waiters[entry].offset, UINT32_MAX, memory_order_relaxed);
    atomic_store_explicit(&page->waiters[entry].who, 0, memory_order_release);
  }
}

/* Sets the event of the waiter registered in entry `w` as `who`. Returns 1 if set; frees the
 * entry if its event has vanished (its process died while registered). */
static int signal_waiter(win_waiter *w, uint64_t who) {
  char path[OBJ_NAME];
  wchar_t wpath[OBJ_NAME];
  HANDLE h;
  event_name(path, who);
  widen(wpath, path);
  h = OpenEventW(EVENT_MODIFY_STATE, FALSE, wpath);
  if (h == NULL) {
    if (GetLastError() == ERROR_FILE_NOT_FOUND)
      atomic_compare_exchange_strong(&w->who, &who, 0);
    return 0;
  }
  SetEvent(h);
  CloseHandle(h);
  return 1;
}

/* Frees the entries of every dead waiter, whatever word they waited on. */
static void sweep(win_page *page) {
  char path[OBJ_NAME];
  wchar_t wpath[OBJ_NAME];
  unsigned i;
  for (i = 0; i < WAITERS; i++) {
    uint64_t who = atomic_load(&page->waiters[i].who);
    HANDLE h;
    if (who == 0)
      continue;
    event_name(path, who);
    widen(wpath, path);
    h = OpenEventW(SYNCHRONIZE, FALSE, wpath);
    if (h != NULL)
      CloseHandle(h);
    else if (GetLastError() == ERROR_FILE_NOT_FOUND)
      atomic_compare_exchange_strong(&page->waiters[i].who, &who, 0);
  }
}

lxshm_status lxshm__word_wait(lxshm__mapping *m, _Atomic uint32_t *word, uint32_t expected,
                              uint64_t deadline, lxshm_error *err) {
  win_state *s = state_of(m);
  uint32_t offset = (uint32_t)((unsigned char *)word - m->base);
  lxshm_status st;
  DWORD ms, r;
  int entry;

  if (deadline != UINT64_MAX && lxshm__clock_ns() >= deadline)
    return LXSHM_TIMEOUT;
  if (s->readonly) { /* may not register in the page: only sleep (the core asks briefly) */
    if (atomic_load(word) == expected)
      Sleep(ms_until(deadline) > 1 ? 1 : ms_until(deadline));
    return LXSHM_OK;
  }
  if ((st = waiter_event(m, err)) != LXSHM_OK)
    return st;
  ResetEvent(s->event); /* forget a wake-up meant for an earlier wait */
  entry = enter(s->page, s->who, offset);
  if (entry < 0) { /* full: make room from dead waiters, else poll */
    sweep(s->page);
    entry = enter(s->page, s->who, offset);
  }
  if (atomic_load(word) != expected) { /* seq_cst: after the registration */
    leave(s->page, entry);
    return LXSHM_OK;
  }
  ms = ms_until(deadline);
  if (entry < 0 && ms > 1)
    ms = 1; /* unregistered, nobody will wake us: look again soon */
  r = WaitForSingleObject(s->event, ms);
  leave(s->page, entry);
  switch (r) {
    case WAIT_OBJECT_0:
      return LXSHM_OK;
    case WAIT_TIMEOUT:
      return deadline != UINT64_MAX && lxshm__clock_ns() >= deadline ? LXSHM_TIMEOUT : LXSHM_OK;
    default:
      return last_fail(err, "WaitForSingleObject", 0);
  }
}

int lxshm__word_wake(lxshm__mapping *m, _Atomic uint32_t *word) {
  win_state *s = state_of(m);
  uint32_t offset = (uint32_t)((unsigned char *)word - m->base);
  int woken = 0;
  unsigned i;

  atomic_thread_fence(memory_order_seq_cst); /* the caller's change before our scan */
  for (i = 0; i < WAITERS; i++) {
    win_waiter *w = &s->page->waiters[i];
    uint64_t who = atomic_load(&w->who);
    if (who != 0 && atomic_load(&w->offset) == offset)
      woken += signal_waiter(w, who);
  }
  return woken;
}

/* ---- clocks and processes -------------------------------------------------------------------- */

uint64_t lxshm__clock_ns(void) {
  static _Atomic uint64_t frequency; /* counts per second; fixed at boot */
  uint64_t f = atomic_load_explicit(&frequency, memory_order_relaxed);
  LARGE_INTEGER c;
  uint64_t n;
  if (f == 0) {
    LARGE_INTEGER q;
    QueryPerformanceFrequency(&q);
    f = (uint64_t)q.QuadPart;
    atomic_store_explicit(&frequency, f, memory_order_relaxed);
  }
  QueryPerformanceCounter(&c);
  n = (uint64_t)c.QuadPart;
  return n / f * 1000000000u + n % f * 1000000000u / f; /* no overflow for centuries */
}

int64_t lxshm__wallclock_ns(void) {
  FILETIME ft;
  uint64_t t;
  GetSystemTimePreciseAsFileTime(&ft);
  t = (uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime; /* 100 ns since 1601 */
  return ((int64_t)t - 116444736000000000) * 100;
}

void lxshm__sleep_ns(uint64_t ns) {
  uint64_t ms = (ns + 999999u) / 1000000u;
  Sleep(ms >= INFINITE ? INFINITE - 1 : (DWORD)ms);
}

uint32_t lxshm__pid(void) {
  return (uint32_t)GetCurrentProcessId();
}

int lxshm__pid_alive(uint32_t pid) {
  return lxshm__pid_start(pid) != 0;
}

uint64_t lxshm__pid_start(uint32_t pid) {
  FILETIME created, exited, kernel, user;
  uint64_t t = 1;
  HANDLE h;
  if (pid == 0)
    return 0;
  h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
  if (h == NULL)
    return GetLastError() == ERROR_ACCESS_DENIED; /* exists, but not ours to look at */
  /* A process object outlives its process while handles remain: ask whether it has ended
   * (rather than GetExitCodeProcess, whose STILL_ACTIVE is also a valid exit code). */
  if (WaitForSingleObject(h, 0) != WAIT_TIMEOUT)
    t = 0; /* it has ended */
  else if (GetProcessTimes(h, &created, &exited, &kernel, &user))
    t = ((uint64_t)created.dwHighDateTime << 32 | created.dwLowDateTime) + 2; /* never 0 or 1 */
  CloseHandle(h);
  return t;
}

unsigned lxshm__current_cpu(void) {
  return (unsigned)GetCurrentProcessorNumber() + 1u;
}

void lxshm__yield(void) {
  SwitchToThread();
}

unsigned lxshm__cpu_count(void) {
  DWORD_PTR mine, all;
  unsigned n = 0;
  if (GetProcessAffinityMask(GetCurrentProcess(), &mine, &all))
    for (; mine != 0; mine &= mine - 1)
      n++;
  if (n == 0)
    n = (unsigned)GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
  return n > 0 ? n : 1u;
}

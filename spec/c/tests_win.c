/* tests_win.c — the C tests only Windows has, each for a reason test_list.h gives: mode as a
 * DACL, other kernel objects squatting a name, and a lock mutex that ends with its last handle.
 * Reaches the OS objects directly, as a foreign process would. */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <aclapi.h>
#include <stdio.h>
#include <string.h>

#include "test.h"

enum { C_READY, C_GO }; /* counters (test.h) */

/* ==== helpers ================================================================================= */

/* create_hold NAME: creates NAME (so that it alone has the lock's mutex open), writes
 * "committed", posts C_READY, waits for C_GO, takes the lock, scribbles over the idle slot, and
 * dies (status 7) holding it. */
HELPER(create_hold) {
  lxshm_segment *own;
  lxshm_error err;
  CHECK_ST(lxshm_create(argv[0], 64, LXSHM_DEFAULT_MODE, &own, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(own, "committed", 9, scaled(10), &err), LXSHM_OK);
  post(C_READY);
  await_posts(C_GO, 1, 20, "go");
  lock_or_fail(own);
  scribble_idle_slot(own);
  die(7);
}

/* ==== tests =================================================================================== */

/* mode becomes the objects' DACL: the creating user always, the group and Everyone when mode
 * lets them in. */
static int aces_of(const char *name) {
  char path[128];
  PACL dacl = NULL;
  PSECURITY_DESCRIPTOR sd = NULL;
  ACL_SIZE_INFORMATION info;
  HANDLE h;
  DWORD rc;
  snprintf(path, sizeof path, "Local\\lxshm.%s", name);
  CHECK((h = OpenFileMappingA(READ_CONTROL, FALSE, path)) != NULL);
  rc =
      GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &dacl, NULL, &sd);
  CHECK(rc == ERROR_SUCCESS && dacl != NULL);
  CHECK(GetAclInformation(dacl, &info, sizeof info, AclSizeInformation));
  LocalFree(sd);
  CloseHandle(h);
  return (int)info.AceCount;
}

TEST(mode_access) {
  static const struct {
    unsigned mode;
    int aces;
  } cases[] = {{0600, 1}, {0, 1}, {0660, 2}, {0604, 2}, {0666, 3}};
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  size_t i;

  for (i = 0; i < sizeof cases / sizeof *cases; i++) {
    note("mode %o", cases[i].mode);
    fresh_name(name, "mode");
    CHECK_ST(lxshm_create(name, 8, cases[i].mode, &seg, &err), LXSHM_OK);
    CHECK_INT(aces_of(name), ==, cases[i].aces);
    CHECK_ST(lxshm_write(seg, "m", 1, 1.0, &err), LXSHM_OK);
    reap_ok(spawn("read %s m", name), 20); /* the same user, another process */
    lxshm_close(seg);
  }
}

/* An object under our name that lxshm did not make is refused, never misread or removed. */
TEST(win_foreign_objects) {
  char name[NAME_BUF], path[128];
  lxshm_segment *seg;
  lxshm_error err;
  HANDLE h;
  uint32_t *view;

  /* A mutex holding the name. */
  fresh_name(name, "mutex");
  snprintf(path, sizeof path, "Local\\lxshm.%s", name);
  CHECK((h = CreateMutexA(NULL, FALSE, path)) != NULL);
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_INVALID);
  CHECK_ST(lxshm_create(name, 8, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_EXISTS);
  CloseHandle(h);

  /* A mapping with other contents. */
  fresh_name(name, "mapping");
  snprintf(path, sizeof path, "Local\\lxshm.%s", name);
  h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 4096, path);
  CHECK(h != NULL);
  CHECK((view = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0)) != NULL);
  view[0] = 0x12345678u;
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_INVALID);
  CHECK_HAS(err.message, "not made by lxshm");
  CHECK_ST(lxshm_create(name, 8, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_EXISTS);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_INVALID);
  CHECK(view[0] == 0x12345678u); /* untouched */
  UnmapViewOfFile(view);
  CloseHandle(h);
}

/* The owner dies holding the only handle of the lock's mutex, which vanishes with it: the next
 * locker makes a new mutex, and is still told that the owner died. */
/* An object whose owner is another SID (here the Everyone group, set after creation) is
 * refused, naming its owner, unless the caller trusts it. If the system does not let the test
 * give its object away, the test says so and checks only the caller's own. */
TEST(win_foreign_owner) {
  char name[NAME_BUF], path[NAME_BUF + 32];
  wchar_t wpath[NAME_BUF + 32];
  unsigned char world[SECURITY_MAX_SID_SIZE];
  lxshm_segment *seg, *theirs;
  DWORD n = sizeof world;
  lxshm_error err;
  HANDLE h;
  size_t i;

  fresh_name(name, "owner");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_open(name, &theirs, &err), LXSHM_OK); /* ours: no trust needed */
  lxshm_close(theirs);
  snprintf(path, sizeof path, "Local\\lxshm.%s!1", name);
  for (i = 0; path[i] != '\0'; i++)
    wpath[i] = (wchar_t)path[i];
  wpath[i] = 0;
  h = OpenFileMappingW(WRITE_OWNER | READ_CONTROL, FALSE, wpath);
  CHECK(h != NULL && CreateWellKnownSid(WinWorldSid, NULL, world, &n));
  if (SetSecurityInfo(h, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, world, NULL, NULL, NULL) !=
      ERROR_SUCCESS) {
    printf("# win_foreign_owner: the system refused to give the object away\n");
  }
  else {
    CHECK_ST(lxshm_open(name, &theirs, &err), LXSHM_PERMISSION);
    CHECK(theirs == NULL);
    CHECK_HAS(err.message, "belongs to ");
    CHECK_ST(lxshm_open_with(name, LXSHM_TRUST, &theirs, &err), LXSHM_OK);
    lxshm_close(theirs);
  }
  CloseHandle(h);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK); /* while a handle keeps the name */
  lxshm_close(seg);
}

TEST(owner_exits_with_mutex) {
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  helper holder;

  fresh_name(name, "vanish");
  holder = spawn("create_hold %s", name);
  await_posts(C_READY, 1, 20, "the creator ready");
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_OK); /* keeps the mapping, not the mutex */
  post(C_GO);
  CHECK_INT(reap_code(holder, 20), ==, 7);
  CHECK_VALUE(seg, "committed", 9, 1);
  CHECK_INT(lock_reporting_death(seg), ==, 1);
  lxshm__unlock(seg);
  CHECK_ST(lxshm_write(seg, "after", 5, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, "after", 5, 2);
  lxshm_close(seg);
}

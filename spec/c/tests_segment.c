/* tests_segment.c — one segment's life on every OS: values written and read back, names, sizes,
 * EXISTS and NOT_FOUND, remove, damaged headers and statuses. Helpers in other processes only
 * confirm what they see; races and deaths are in tests_process.c and tests_lock.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"
#include "test.h"

/* ==== helpers ================================================================================= */

/* read NAME EXPECT: opens NAME and checks its value is EXPECT; with EXPECT "-", that NAME does
 * not exist. */
HELPER(read) {
  lxshm_segment *own;
  lxshm_error err;
  char buf[64];
  size_t len;
  if (strcmp(argv[1], "-") == 0) {
    CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_NOT_FOUND);
    return 0;
  }
  CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_OK);
  CHECK_ST(lxshm_read(own, buf, sizeof buf, &len, NULL, &err), LXSHM_OK);
  CHECK(len == strlen(argv[1]) && memcmp(buf, argv[1], len) == 0);
  lxshm_close(own);
  return 0;
}

/* create NAME STATUS: creates NAME, expecting status STATUS (a number). */
HELPER(create) {
  lxshm_segment *own;
  lxshm_error err;
  CHECK_ST(lxshm_create(argv[0], 64, LXSHM_DEFAULT_MODE, &own, &err), atoi(argv[1]));
  lxshm_close(own);
  return 0;
}

/* write NAME VALUE TIMEOUT: writes VALUE, waiting TIMEOUT seconds (scaled) at most for the lock;
 * exits 0 on OK, 2 on TIMEOUT. */
HELPER(write) {
  lxshm_segment *own;
  lxshm_error err;
  lxshm_status st;
  CHECK_ST(lxshm_open(argv[0], &own, &err), LXSHM_OK);
  st = lxshm_write(own, argv[1], strlen(argv[1]), scaled(atof(argv[2])), &err);
  if (st != LXSHM_OK && st != LXSHM_TIMEOUT)
    FAIL("lxshm_write gave %s (%s)", lxshm_status_name(st), err.message);
  lxshm_close(own);
  return st == LXSHM_OK ? 0 : 2;
}

/* ==== tests =================================================================================== */

/* A read-only handle reads, waits and counts; every write and lock is PERMISSION, and leaves the
 * value as it was. */
TEST(readonly) {
  char name[NAME_BUF], buf[16];
  lxshm_segment *seg, *ro;
  lxshm_queue *q, *qro;
  lxshm_error err;
  uint64_t version;
  size_t len;

  fresh_name(name, "ro");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "kept", 4, scaled(5), &err), LXSHM_OK);
  CHECK_ST(lxshm_open_with(name, LXSHM_READONLY, &ro, &err), LXSHM_OK);
  CHECK_ST(lxshm_read(ro, buf, sizeof buf, &len, &version, &err), LXSHM_OK);
  CHECK(len == 4 && memcmp(buf, "kept", 4) == 0 && version == 1);
  CHECK_ST(lxshm_write(ro, "lost", 4, 0, &err), LXSHM_PERMISSION);
  CHECK_HAS(err.message, "opened read-only");
  CHECK_ST(lxshm_wait(ro, 1, 0.01, NULL, &err), LXSHM_TIMEOUT);
  CHECK_ST(lxshm_write(seg, "next", 4, scaled(5), &err), LXSHM_OK);
  CHECK_ST(lxshm_wait(ro, 1, scaled(5), &version, &err), LXSHM_OK);
  CHECK(version == 2);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK); /* before the last close: on Windows a name */
  lxshm_close(ro);                              /* lives only as long as its handles */
  lxshm_close(seg);

  fresh_name(name, "qro");
  CHECK_ST(lxshm_queue_create(name, 64, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);
  CHECK_ST(lxshm_queue_push(q, "one", 3, 0, &err), LXSHM_OK);
  CHECK_ST(lxshm_queue_open_with(name, LXSHM_READONLY, &qro, &err), LXSHM_OK);
  CHECK(lxshm_queue_count(qro) == 1);
  CHECK_ST(lxshm_queue_push(qro, "two", 3, 0, &err), LXSHM_PERMISSION);
  CHECK_ST(lxshm_queue_pop(qro, buf, sizeof buf, &len, 0, &err), LXSHM_PERMISSION);
  CHECK_ST(lxshm_queue_pop(q, buf, sizeof buf, &len, 0, &err), LXSHM_OK);
  CHECK(len == 3 && memcmp(buf, "one", 3) == 0);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_queue_close(qro);
  lxshm_queue_close(q);
}

/* What one process writes it reads back, byte for byte, with the version counting writes; a
 * second handle shares it; the last commit's process and time are kept. */
TEST(round_trip) {
  static const unsigned char binary[] = {'a', 0, 'b', 0, 0, 0xff, 0x80, 0};
  unsigned char full[100], over[101], buf[8];
  char name[NAME_BUF];
  lxshm_segment *seg, *other;
  lxshm_error err;
  lxshm__figures f;
  uint64_t version = 99;
  size_t len = 99;

  fresh_name(name, "round");
  CHECK_ST(lxshm_create(name, sizeof full, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_U64(lxshm_size(seg), ==, sizeof full);
  CHECK_STR(lxshm_name(seg), name);
  CHECK_U64(lxshm_version(seg), ==, 0);
  CHECK_ST(lxshm_read(seg, buf, sizeof buf, &len, &version, &err), LXSHM_OK);
  CHECK_U64(len, ==, 0);
  CHECK_U64(version, ==, 0);
  lxshm__figures_get(seg, &f);
  CHECK_U64(f.segment.writer_pid, ==, 0);

  CHECK_ST(lxshm_write(seg, "hello", 5, 1.0, &err), LXSHM_OK);
  CHECK_U64(lxshm_version(seg), ==, 1);
  CHECK_VALUE(seg, "hello", 5, 1);

  CHECK_ST(lxshm_write(seg, binary, sizeof binary, 0.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, binary, sizeof binary, 2);

  /* A second handle sees the same value and version, and its writes count too. */
  CHECK_ST(lxshm_open(name, &other, &err), LXSHM_OK);
  CHECK_U64(lxshm_size(other), ==, sizeof full);
  CHECK_VALUE(other, binary, sizeof binary, 2);
  CHECK_ST(lxshm_write(other, "", 0, LXSHM_FOREVER, &err), LXSHM_OK);
  CHECK_VALUE(seg, "", 0, 3);

  memset(full, 'f', sizeof full);
  CHECK_ST(lxshm_write(other, full, sizeof full, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, full, sizeof full, 4);

  /* One byte more than the capacity is refused, and nothing changes. */
  memset(over, 'o', sizeof over);
  CHECK_ST(lxshm_write(seg, over, sizeof over, 1.0, &err), LXSHM_INVALID_SIZE);
  CHECK_HAS(err.message, "capacity");
  CHECK_U64(lxshm_version(seg), ==, 4);
  CHECK_VALUE(seg, full, sizeof full, 4);
  CHECK_VALUE(other, full, sizeof full, 4);

  lxshm__figures_get(seg, &f);
  CHECK_U64(f.segment.writer_pid, ==, lxshm__pid());
  CHECK(f.segment.updated_ns > (uint64_t)1600000000 * 1000000000); /* wall clock since 1970, ns */

  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(other);
  lxshm_close(seg);
}

/* A buffer too small for the value is refused with the length it needs. */
TEST(read_short_buffer) {
  char name[NAME_BUF], buf[16];
  lxshm_segment *seg;
  lxshm_error err;
  uint64_t version = 99;
  size_t len = 0;

  fresh_name(name, "short");
  CHECK_ST(lxshm_create(name, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "0123456789", 10, 1.0, &err), LXSHM_OK);

  CHECK_ST(lxshm_read(seg, buf, 4, &len, &version, &err), LXSHM_INVALID_SIZE);
  CHECK_U64(len, ==, 10);
  len = 0;
  CHECK_ST(lxshm_read(seg, NULL, 0, &len, NULL, &err), LXSHM_INVALID_SIZE); /* asks the size */
  CHECK_U64(len, ==, 10);
  CHECK_ST(lxshm_read(seg, buf, 9, &len, NULL, &err), LXSHM_INVALID_SIZE);
  CHECK_U64(len, ==, 10);

  CHECK_ST(lxshm_read(seg, buf, 10, &len, &version, &err), LXSHM_OK);
  CHECK_U64(len, ==, 10);
  CHECK_U64(version, ==, 1);
  CHECK(memcmp(buf, "0123456789", 10) == 0);

  /* An empty value needs no buffer at all, either way. */
  CHECK_ST(lxshm_write(seg, NULL, 0, 1.0, &err), LXSHM_OK);
  CHECK_ST(lxshm_read(seg, NULL, 0, &len, &version, &err), LXSHM_OK);
  CHECK_U64(len, ==, 0);
  CHECK_U64(version, ==, 2);

  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* Names: SPEC §2's rule, and a refused name never reaches the OS. */
#define S16 "abcdefghijklmnop"
TEST(names) {
  static const char *const valid[] = {
      "a",
      "Z",
      "7",
      "_",
      "a.b_c-d",
      "a..b",
      "x-",
      "x.",
      "_-._-",
      S16 S16 S16 S16,
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._",
  };
  static const char *const invalid[] = {
      NULL,
      "",
      S16 S16 S16 S16 "q", /* 65 characters */
      ".a",
      "-a",
      "..",
      ".",
      "a/b",
      "/a",
      "../x",
      "a b",
      " a",
      "a\\b",
      "Global\\x", /* Windows namespaces */
      "Local\\x",
      "caf\xc3\xa9", /* UTF-8 */
      "\xff",
      "a\nb",
      "a:b",
      "a*",
      "a!b",
      "a%b",
  };
  static char not_a_handle;
  char name[NAME_BUF];
  lxshm_segment *seg, *other;
  lxshm_queue *q;
  lxshm_error err;
  size_t i, len;
  int created;

  for (i = 0; i < sizeof valid / sizeof *valid; i++) {
    note("valid name %zu", i);
    CHECK_INT(lxshm_check_name(valid[i]), ==, LXSHM_OK);
  }

  for (i = 0; i < sizeof invalid / sizeof *invalid; i++) {
    const char *bad = invalid[i];
    note("invalid name %zu", i);
    CHECK_INT(lxshm_check_name(bad), ==, LXSHM_INVALID);
    seg = (lxshm_segment *)&not_a_handle; /* a failed call must set *out to NULL */
    CHECK_ST(lxshm_create(bad, 64, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_INVALID);
    CHECK(seg == NULL);
    CHECK_HAS(err.message, "invalid name");
    CHECK_ST(lxshm_attach(bad, 64, LXSHM_DEFAULT_MODE, &seg, &created, &err), LXSHM_INVALID);
    CHECK(seg == NULL);
    CHECK_ST(lxshm_open(bad, &seg, &err), LXSHM_INVALID);
    CHECK(seg == NULL);
    CHECK_ST(lxshm_remove(bad, &err), LXSHM_INVALID);
    CHECK_ST(lxshm_queue_create(bad, 64, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_INVALID);
    /* Names that are not paths in the OS's namespace must not have reached it. */
    if (bad != NULL && strchr(bad, '/') == NULL && strchr(bad, '\\') == NULL)
      CHECK(!os_object_exists(bad));
  }
  note("%s", "");

  /* A valid name of the longest length, with every punctuation allowed, works end to end and
   * across processes. */
  len = (size_t)snprintf(name, sizeof name, "ct%lu_-.", (unsigned long)lxshm__pid());
  memset(name + len, 'L', LXSHM_NAME_MAX - len);
  name[LXSHM_NAME_MAX] = '\0';
  name_made(name);
  CHECK_ST(lxshm_create(name, 8, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK(os_object_exists(name));
  CHECK_ST(lxshm_write(seg, "long", 4, 1.0, &err), LXSHM_OK);
  reap_ok(spawn("read %s long", name), 20);
  CHECK_ST(lxshm_open(name, &other, &err), LXSHM_OK);
  CHECK_STR(lxshm_name(other), name);
  lxshm_close(other);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
  CHECK(!os_object_exists(name));
}

/* Sizes: refused outside 1..LXSHM_SIZE_MAX, and when the OS has no room, leaving nothing. */
TEST(sizes) {
  static const uint64_t bad[] = {0, LXSHM_SIZE_MAX + 1, UINT64_MAX, (uint64_t)1 << 63};
  char name[NAME_BUF];
  lxshm_segment *seg;
  lxshm_error err;
  const char *says;
  uint64_t huge;
  size_t i;
  int created;

  fresh_name(name, "size");
  for (i = 0; i < sizeof bad / sizeof *bad; i++) {
    note("size %llu", (unsigned long long)bad[i]);
    CHECK_ST(lxshm_create(name, bad[i], LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_INVALID_SIZE);
    CHECK(seg == NULL);
    CHECK(err.message[0] != '\0');
    CHECK_ST(lxshm_attach(name, bad[i], LXSHM_DEFAULT_MODE, &seg, &created, &err),
             LXSHM_INVALID_SIZE);
    CHECK(seg == NULL && created == 0);
    CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_NOT_FOUND);
    CHECK(!os_object_exists(name));
  }
  note("%s", "");

  CHECK_ST(lxshm_create(name, 1, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_U64(lxshm_size(seg), ==, 1);
  CHECK_ST(lxshm_write(seg, "xy", 2, 1.0, &err), LXSHM_INVALID_SIZE);
  CHECK_ST(lxshm_write(seg, "x", 1, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, "x", 1, 1);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);

  /* A valid size the OS cannot back: refused at once (the OS checks its limit before it
   * reserves anything), and the name stays free. */
  huge = os_size_without_room(&says);
  note("size %llu", (unsigned long long)huge);
  CHECK_ST(lxshm_create(name, huge, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_INVALID_SIZE);
  CHECK(seg == NULL);
  CHECK_HAS(err.message, says);
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_NOT_FOUND);
  CHECK(!os_object_exists(name));
  CHECK_ST(lxshm_create(name, 8, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* EXISTS and NOT_FOUND, from this process and another; where the name lives (SPEC §2); names
 * differing only in case are different names. */
TEST(exists_not_found) {
  char name[NAME_BUF], missing[NAME_BUF], lower[NAME_BUF];
  lxshm_segment *first, *second, *upper, *seg;
  lxshm_queue *q;
  lxshm_error err;

  fresh_name(name, "ex");
  fresh_name(missing, "missing");
  CHECK_ST(lxshm_create(name, 32, LXSHM_DEFAULT_MODE, &first, &err), LXSHM_OK);
  CHECK(os_object_exists(name));
  CHECK_ST(lxshm_create(name, 32, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_EXISTS);
  CHECK(seg == NULL);
  CHECK_HAS(err.message, "already exists");
  CHECK_ST(lxshm_create(name, 99, 0644, &seg, &err), LXSHM_EXISTS); /* other size, same answer */
  reap_ok(spawn("create %s %d", name, LXSHM_EXISTS), 20);           /* from another process */
  CHECK_ST(lxshm_queue_create(name, 64, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_EXISTS);
  CHECK_ST(lxshm_queue_open(name, &q, &err), LXSHM_INVALID); /* a segment, not a queue */
  CHECK_HAS(err.message, "not a queue");

  CHECK_ST(lxshm_open(missing, &seg, &err), LXSHM_NOT_FOUND);
  CHECK(seg == NULL);
  CHECK_HAS(err.message, "does not exist");
  CHECK_ST(lxshm_remove(missing, &err), LXSHM_NOT_FOUND);
  CHECK_HAS(err.message, "does not exist");
  CHECK_ST(lxshm_queue_open(missing, &q, &err), LXSHM_NOT_FOUND);
  reap_ok(spawn("read %s -", missing), 20);

  CHECK_ST(lxshm_open(name, &second, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(first, "one", 3, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(second, "one", 3, 1);

  /* Names differing only in case are different names, on every OS. */
  fresh_name(missing, "Case");
  snprintf(lower, sizeof lower, "%s", missing);
  *strrchr(lower, 'C') = 'c';
  name_made(lower);
  CHECK_ST(lxshm_create(missing, 8, LXSHM_DEFAULT_MODE, &upper, &err), LXSHM_OK);
  CHECK_ST(lxshm_open(lower, &seg, &err), LXSHM_NOT_FOUND);
  CHECK_ST(lxshm_create(lower, 8, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(upper, "upper", 5, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(seg, "", 0, 0);
  CHECK_ST(lxshm_remove(lower, &err), LXSHM_OK);
  CHECK_ST(lxshm_remove(missing, &err), LXSHM_OK);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
  lxshm_close(upper);
  lxshm_close(second);
  lxshm_close(first);
}

/* remove (SPEC §4): the name goes away at once for every process, open handles keep sharing
 * one object, and a later create makes a new, empty one beside the old. What happens to a name
 * once its last handle closes is the OS's: POSIX keeps it until removed, Windows drops it. */
TEST(remove) {
  char name[NAME_BUF];
  lxshm_segment *first, *second, *again, *seg, *reopened;
  lxshm_queue *q, *gone;
  lxshm_error err;
  int created;

  fresh_name(name, "rm");
  CHECK_ST(lxshm_create(name, 32, LXSHM_DEFAULT_MODE, &first, &err), LXSHM_OK);
  CHECK_ST(lxshm_open(name, &second, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(first, "one", 3, 1.0, &err), LXSHM_OK);

  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_NOT_FOUND);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_NOT_FOUND);
  reap_ok(spawn("read %s -", name), 20); /* gone for other processes too */

  /* Handles opened before the remove still share one object, lock included. */
  CHECK_ST(lxshm_write(second, "two", 3, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(first, "two", 3, 2);
  CHECK_VALUE(second, "two", 3, 2);

  /* The name now makes a new, empty object, apart from the old one. */
  CHECK_ST(lxshm_create(name, 16, LXSHM_DEFAULT_MODE, &again, &err), LXSHM_OK);
  CHECK_U64(lxshm_size(again), ==, 16);
  CHECK_VALUE(again, "", 0, 0);
  CHECK_ST(lxshm_write(again, "three", 5, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(first, "two", 3, 2);
  CHECK_ST(lxshm_write(first, "four", 4, 1.0, &err), LXSHM_OK);
  CHECK_VALUE(again, "three", 5, 1);
  CHECK_VALUE(second, "four", 4, 3);
  CHECK_ST(lxshm_open(name, &reopened, &err), LXSHM_OK);
  CHECK_VALUE(reopened, "three", 5, 1);
  reap_ok(spawn("read %s three", name), 20);
  CHECK_ST(lxshm_create(name, 16, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_EXISTS);

  /* attach after a remove creates. */
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  CHECK_ST(lxshm_attach(name, 8, LXSHM_DEFAULT_MODE, &seg, &created, &err), LXSHM_OK);
  CHECK_INT(created, ==, 1);
  CHECK_VALUE(seg, "", 0, 0);
  CHECK_VALUE(again, "three", 5, 1);
  lxshm_close(seg);

  /* Its only handle closed: the name lives on where names outlive handles, and is gone where
   * an object ends with its last handle, as if removed. */
  if (names_outlive_handles) {
    CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_OK);
    CHECK_VALUE(seg, "", 0, 0);
    lxshm_close(seg);
    CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  }
  else {
    CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_NOT_FOUND);
    CHECK_ST(lxshm_remove(name, &err), LXSHM_NOT_FOUND);
  }
  lxshm_close(reopened);
  lxshm_close(again);
  lxshm_close(second);
  lxshm_close(first);
  lxshm_close(NULL); /* ignored */

  /* Queues too. */
  CHECK_ST(lxshm_queue_create(name, 64, LXSHM_DEFAULT_MODE, &q, &err), LXSHM_OK);
  CHECK_ST(lxshm_queue_push(q, "kept", 4, 0, &err), LXSHM_OK);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  CHECK_ST(lxshm_open(name, &seg, &err), LXSHM_NOT_FOUND);
  CHECK_ST(lxshm_queue_open(name, &gone, &err), LXSHM_NOT_FOUND);
  CHECK_U64(lxshm_queue_count(q), ==, 1);
  lxshm_queue_close(q);
}

/* Creates a segment holding "valid", lets `damage` change a header field through the open
 * handle, then checks what a second lxshm_open says. */
typedef enum { DAMAGE_LAYOUT, DAMAGE_CAPACITY, DAMAGE_KIND } damage;

static void check_damaged(const char *tag, damage what, lxshm_status want, const char *message) {
  char name[NAME_BUF];
  lxshm_segment *seg, *other;
  lxshm__header *h;
  lxshm_error err;

  note("%s", tag);
  fresh_name(name, tag);
  CHECK_ST(lxshm_create(name, 4096, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "valid", 5, scaled(5), &err), LXSHM_OK);
  h = seg_object(seg)->hdr;
  switch (what) {
    case DAMAGE_LAYOUT:
      h->layout = LXSHM__LAYOUT_VERSION + 1;
      break;
    case DAMAGE_CAPACITY:
      h->capacity = h->capacity * 2;
      break;
    case DAMAGE_KIND:
      h->kind = LXSHM__KIND_QUEUE;
      break;
  }
  CHECK_ST(lxshm_open(name, &other, &err), want);
  CHECK(other == NULL);
  CHECK_HAS(err.message, message);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* A header another layout wrote, or one whose fields disagree, is refused at open. (POSIX also
 * cuts an object short: tests_posix.c.) */
TEST(damaged_headers) {
  check_damaged("layout", DAMAGE_LAYOUT, LXSHM_INVALID, "layout");
  check_damaged("capacity", DAMAGE_CAPACITY, LXSHM_CORRUPT, "inconsistent");
  check_damaged("queue", DAMAGE_KIND, LXSHM_INVALID, "queue");
}

/* A damaged length in the current value's descriptor is reported, never followed. */
TEST(damaged_length) {
  char name[NAME_BUF];
  unsigned char *buf;
  lxshm_segment *seg;
  lxshm_error err;
  lxshm__slot *current;
  lxshm__header *h;
  uint64_t cap = 4096, version;
  size_t len;

  fresh_name(name, "length");
  CHECK_ST(lxshm_create(name, cap, LXSHM_DEFAULT_MODE, &seg, &err), LXSHM_OK);
  CHECK_ST(lxshm_write(seg, "valid", 5, scaled(5), &err), LXSHM_OK);
  h = seg_object(seg)->hdr;
  current = &h->u.segment.slots[atomic_load(&h->u.segment.version) & 1];
  atomic_store(&current->length, cap + 1);

  buf = malloc((size_t)cap); /* exactly the capacity: ASan sees any read beyond it */
  CHECK(buf != NULL);
  CHECK_ST(lxshm_read(seg, buf, (size_t)cap, &len, &version, &err), LXSHM_CORRUPT);
  CHECK(err.message[0] != '\0');
  atomic_store(&current->length, UINT64_MAX);
  CHECK_ST(lxshm_read(seg, buf, (size_t)cap, &len, &version, &err), LXSHM_CORRUPT);

  /* A new value goes to the other slot and reads back normally. */
  CHECK_ST(lxshm_write(seg, "repaired", 8, scaled(5), &err), LXSHM_OK);
  CHECK_VALUE(seg, "repaired", 8, 2);

  free(buf);
  CHECK_ST(lxshm_remove(name, &err), LXSHM_OK);
  lxshm_close(seg);
}

/* Every status has its number, name and text. */
TEST(status_names) {
  static const struct {
    lxshm_status st;
    int value; /* -1: any, but distinct from the others */
    const char *name;
  } codes[] = {
      {LXSHM_OK, 0, "OK"},
      {LXSHM_EXISTS, 1, "EXISTS"},
      {LXSHM_INVALID, 2, "INVALID"},
      {LXSHM_INVALID_SIZE, 3, "INVALID_SIZE"},
      {LXSHM_NOT_FOUND, -1, "NOT_FOUND"},
      {LXSHM_TIMEOUT, -1, "TIMEOUT"},
      {LXSHM_CORRUPT, -1, "CORRUPT"},
      {LXSHM_PERMISSION, -1, "PERMISSION"},
      {LXSHM_UNSUPPORTED, -1, "UNSUPPORTED"},
      {LXSHM_SYSTEM, -1, "SYSTEM"},
      {LXSHM_FULL, 10, "FULL"},
      {LXSHM_CONFLICT, 11, "CONFLICT"},
      {LXSHM_UNAVAILABLE, 12, "UNAVAILABLE"},
  };
  enum { N = sizeof codes / sizeof *codes };
  size_t i, j;

  for (i = 0; i < N; i++) {
    note("%s", codes[i].name);
    if (codes[i].value >= 0)
      CHECK_INT(codes[i].st, ==, codes[i].value);
    CHECK_STR(lxshm_status_name(codes[i].st), codes[i].name);
    CHECK(lxshm_strerror(codes[i].st)[0] != '\0');
    CHECK(strcmp(lxshm_strerror(codes[i].st), "unknown status") != 0);
    for (j = 0; j < i; j++) {
      CHECK(codes[i].st != codes[j].st);
      CHECK(strcmp(lxshm_strerror(codes[i].st), lxshm_strerror(codes[j].st)) != 0);
    }
  }
  note("%s", "");
  CHECK_STR(lxshm_strerror(LXSHM_OK), "success");
  CHECK_STR(lxshm_strerror(LXSHM_TIMEOUT), "timed out");
  CHECK_STR(lxshm_status_name((lxshm_status)99), "UNKNOWN");
  CHECK_STR(lxshm_strerror((lxshm_status)99), "unknown status");
  CHECK_STR(lxshm_status_name((lxshm_status)1000), "UNKNOWN");
  CHECK_STR(lxshm_strerror((lxshm_status)-1), "unknown status");
}

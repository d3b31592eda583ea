/* layout.h — the bytes of a segment mapping, shared by every process that maps it, possibly built
 * from different commits. Fixed-width fields only (no pointers, size_t, bool or long); any change
 * to what a byte means bumps LXSHM__LAYOUT_VERSION so that other builds refuse to attach. */
#ifndef LXSHM_LAYOUT_H
#define LXSHM_LAYOUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define LXSHM__MAGIC 0x4d48534cu /* the bytes "LSHM" on a little-endian machine */
#define LXSHM__LAYOUT_VERSION 1u
#define LXSHM__KIND_SEGMENT 1u
#define LXSHM__KIND_QUEUE 2u
#define LXSHM__LOCK_BYTES 64     /* room for the platform's lock (a pthread_mutex_t is 40) */
#define LXSHM__HEADER_SIZE 512u  /* the value slots start here */
#define LXSHM__SLOT_ALIGN 64u    /* each slot starts on its own cache line */
#define LXSHM__WAITER_SLOTS 64u  /* waiters tracked by pid; more are counted but not tracked */

/* Descriptor of one of the two value slots. Written only by the lock holder, before it
 * publishes the version that makes the slot current; read lock-free. */
typedef struct lxshm__slot {
  _Atomic uint64_t length;     /* bytes of the value in this slot, at most the capacity */
  _Atomic uint64_t version;    /* the version this value was committed as (a torn-read check) */
  _Atomic int64_t updated_ns;  /* wall-clock time of that commit, ns since the Unix epoch */
  _Atomic uint32_t writer_pid; /* process that committed it; 0 for the empty initial value */
  _Atomic uint32_t format;     /* LXSHM__FORMAT_RAW (write) or LXSHM__FORMAT_MSGPACK (put) */
} lxshm__slot;

/* The first LXSHM__HEADER_SIZE bytes of every lxshm mapping. */
typedef struct lxshm__header {
  /* Cache line 0, identity: written once by the creator, then never; `magic` is stored last
   * with release ordering, so a process that reads LXSHM__MAGIC sees every field below it. */
  _Atomic uint32_t magic;  /* LXSHM__MAGIC once initialized; 0 while the creator works */
  uint32_t layout;         /* LXSHM__LAYOUT_VERSION of the creator's build */
  uint32_t kind;           /* LXSHM__KIND_SEGMENT or LXSHM__KIND_QUEUE */
  uint32_t codec;          /* version of the value format (LXSHM__CODEC_VERSION) */
  uint64_t capacity;       /* bytes one value may take: the size given to create */
  uint64_t map_size;       /* bytes of the whole mapping */
  uint64_t slot_stride;    /* distance in bytes from slot 0's data to slot 1's */
  uint32_t creator_pid;    /* process that created the segment (diagnostics only) */
  uint32_t reserved0[5];   /* zero */

  /* Cache line 1: the inter-process lock (platform-defined bytes; unused on Windows, where the
   * lock is a named mutex). Serializes commits; readers never take it. */
  unsigned char lock[LXSHM__LOCK_BYTES];

  /* Cache line 2, commit state: written by the lock holder. */
  _Atomic uint64_t version; /* commits so far; the current value is in slots[version & 1].
                               Stored last in a commit (release): seeing it implies the bytes. */
  _Atomic uint32_t seq;     /* low 32 bits of version, stored after it: the word waiters sleep
                               on (futex); repaired from version after an owner died */
  _Atomic uint32_t sleepers; /* registered waiters (about to sleep or asleep on seq): a commit
                                wakes only if > 0. Incremented before a waiter's last check of
                                the version, decremented when it leaves, or by whoever finds its
                                waiter_pids entry naming a dead process */
  uint64_t reserved1[6];     /* zero */

  /* Cache line 3: the two value slots' descriptors. */
  lxshm__slot slots[2];

  /* Lines 4..7: the pid of each registered waiter, or 0 for a free entry. A waiter claims an
   * entry (0 -> pid) with its registration and frees it (pid -> 0) when it leaves; an entry whose
   * process died is freed by whoever notices (stat), so the count heals. */
  _Atomic uint32_t waiter_pids[LXSHM__WAITER_SLOTS];
} lxshm__header;

_Static_assert(sizeof(lxshm__slot) == 32, "slot descriptor is 32 bytes");
_Static_assert(offsetof(lxshm__header, lock) == 64, "lock on cache line 1");
_Static_assert(offsetof(lxshm__header, version) == 128, "commit state on cache line 2");
_Static_assert(offsetof(lxshm__header, slots) == 192, "slots on cache line 3");
_Static_assert(sizeof(lxshm__header) == LXSHM__HEADER_SIZE, "header is 512 bytes");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
               "shared atomics must be lock-free to work across processes");

#endif

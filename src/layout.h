/* layout.h — the bytes of an lxshm mapping, shared by every process that maps it, possibly built
 * from different commits. Fixed-width fields only (no pointers, size_t, bool or long); any change
 * to what a byte means bumps LXSHM__LAYOUT_VERSION so that other builds refuse to attach.
 *
 * A mapping is a 1 KiB header, then its data: a segment's two value slots, a queue's ring, or a
 * dictionary's control blocks and arena.
 * Both kinds share cache line 0 (identity) and line 1 (a lock); the rest depends on the kind. */
#ifndef LXSHM_LAYOUT_H
#define LXSHM_LAYOUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define LXSHM__MAGIC 0x4d48534cu /* the bytes "LSHM" on a little-endian machine */
/* 2: a topic's publishers keep their own copies of last and oldest (line 3)
 * 3: a topic's records lie back to back, which its subscribers rely on (tail is stored after
 *    last, and a dead publisher's tail is put right) */
#define LXSHM__LAYOUT_VERSION 3u
#define LXSHM__KIND_SEGMENT 1u /* kinds: a build that meets a number it does not know reports */
#define LXSHM__KIND_QUEUE 2u   /* the object as made by a newer lxshm */
#define LXSHM__KIND_DICT 3u
#define LXSHM__KIND_TOPIC 4u
#define LXSHM__PARAMS 5u         /* words of kind parameters in the identity line */
#define LXSHM__LOCK_BYTES 64     /* room for the platform's lock (a pthread_mutex_t is 40) */
#define LXSHM__HEADER_SIZE 1024u /* the data (slots or ring) starts here */
#define LXSHM__SLOT_ALIGN 64u    /* each value slot starts on its own cache line */
#define LXSHM__WAITER_PIDS 28u   /* waiters tracked by pid per waitlist; more are only counted */
#define LXSHM__RECORD_ALIGN 8u   /* queue records start at multiples of 8 bytes */
#define LXSHM__CURSOR_NAME 64u   /* bytes of a topic's subscription name, at most */

/* Processes sleeping until something changes: a futex word and who sleeps on it (wait.c says
 * how they are used). */
typedef struct lxshm__waitlist {
  _Atomic uint32_t word;     /* bumped after a change when sleepers > 0; a sleeper sleeps only
                                while it still holds the value read before its last check */
  _Atomic uint32_t sleepers; /* registered waiters: incremented before a waiter's last check,
                                decremented when it leaves, or by whoever frees the pid entry of
                                a waiter that died. A change wakes only if it is > 0 */
  _Atomic uint32_t pids[LXSHM__WAITER_PIDS]; /* pid of each registered waiter; 0 = free */
  _Atomic uint32_t armed;     /* set to 1 by every waiter about to sleep; the first waker to take
                                 it back to 0 bumps the word and wakes, later wakers skip the
                                 system call until a waiter sleeps again */
  _Atomic uint32_t waker_cpu; /* 1 + the CPU of the last process that made a change waiters wait
                                 for (0: unknown). A waiter on that CPU does not spin: the waker
                                 could not run while it spins */
} lxshm__waitlist;

/* Descriptor of one of a segment's two value slots. Written only by the lock holder, before it
 * publishes the version that makes the slot current; read lock-free. */
typedef struct lxshm__slot {
  _Atomic uint64_t length;     /* bytes of the value in this slot, at most the capacity */
  _Atomic uint64_t version;    /* the version this value was committed as (a torn-read check) */
  _Atomic int64_t updated_ns;  /* wall-clock time of that commit, ns since the Unix epoch */
  _Atomic uint32_t writer_pid; /* process that committed it; 0 for the empty initial value */
  _Atomic uint32_t format;     /* LXSHM__FORMAT_RAW (write) or LXSHM__FORMAT_MSGPACK (put) */
} lxshm__slot;

/* Cache lines 2..15 of a segment. */
typedef struct lxshm__segment_state {
  /* Line 2: the commit counter, written by the lock holder. */
  _Atomic uint64_t version; /* commits so far; the current value is in slots[version & 1].
                               Stored last in a commit (release): seeing it implies the bytes */
  uint64_t reserved0[7];
  /* Line 3: the two value slots' descriptors. */
  lxshm__slot slots[2];
  /* Lines 4-5: processes blocked in wait(); woken by every commit. */
  lxshm__waitlist waiters;
  uint64_t reserved1[80]; /* lines 6..15, zero */
} lxshm__segment_state;

/* Cache lines 2..15 of a queue. The ring holds records back to back: an 8-byte header (u32
 * length of the value, u32 format) and the value's bytes, padded to 8. A record may wrap around
 * the end of the ring. `tail` and `head` count bytes since creation and never wrap: the ring
 * offset of a position is position % capacity, and tail - head bytes are in use. */
typedef struct lxshm__queue_state {
  /* Line 2: the producers' side, written under the push lock (line 1). */
  _Atomic uint64_t tail;      /* end of the last whole record. Stored after the record's bytes
                                 (release): a consumer that sees it sees the record */
  _Atomic uint64_t pushed;    /* values ever pushed (count = pushed - popped); stored after tail */
  _Atomic uint64_t push_tail; /* intent of the push in progress: the tail and pushed it will */
  _Atomic uint64_t push_pushed; /* store. A push lock taken from a dead owner whose tail matches
                                   push_tail finishes the count from push_pushed */
  uint64_t reserved0[4];
  /* Line 3: the consumers' lock, separate so that a producer and a consumer never contend. */
  unsigned char pop_lock[LXSHM__LOCK_BYTES];
  /* Line 4: the consumers' side, written under the pop lock. */
  _Atomic uint64_t head;     /* start of the oldest record. Stored after its bytes were copied
                                out (release): a producer that sees it may reuse them */
  _Atomic uint64_t popped;   /* values ever popped; stored after head */
  _Atomic uint64_t pop_head; /* intent of the pop in progress, as push_tail/push_pushed */
  _Atomic uint64_t pop_popped;
  uint64_t reserved1[4];
  /* Lines 5-6: consumers waiting for a value; lines 7-8: producers waiting for room. */
  lxshm__waitlist not_empty;
  lxshm__waitlist not_full;
  uint64_t reserved2[56]; /* lines 9..15, zero */
} lxshm__queue_state;

/* ---- dictionaries (dict.c says how these are used) ---------------------------------------
 * A dictionary's mapping: the header; the allocator's control block; one control block per
 * stripe; then `capacity` bytes holding the stripes' bucket arrays, the reference bitmap and the
 * arena of entries. Its geometry is in the header's params (validated at open):
 * params[0] stripes, params[1] log2 of the buckets per stripe, params[2] arena units. Arena
 * positions are units of LXSHM__DICT_UNIT bytes counted from the arena's start; unit 0 and the
 * last unit are sentinels, so that 0 can mean "none". */
#define LXSHM__DICT_UNIT 16u            /* arena granule */
#define LXSHM__DICT_JOURNAL 1024u       /* bytes of undo records of a stripe's journal */
#define LXSHM__DICT_ALLOC_JOURNAL 4096u /* bytes of undo records of the allocator's journal */
#define LXSHM__DICT_FL 28u              /* allocator: first-level size classes */
#define LXSHM__DICT_SL 16u              /* allocator: second-level classes per first level */
#define LXSHM__DICT_STRIPES_MAX 64u

/* Cache lines 2..15 of a dictionary: its identity, written once by the creator. */
typedef struct lxshm__dict_state {
  uint64_t seed;          /* hash seed, random per dictionary */
  uint64_t id;            /* random identity: tells two dictionaries apart within a process */
  uint64_t reserved[110]; /* zero */
} lxshm__dict_state;

/* An undo journal: a change interrupted by its process's death is undone (or, once committed,
 * finished) by the next process to take the lock that guards the journal. Written only by the
 * holder of that lock, and by allocator transactions of the same process (alloc, pending). */
typedef struct lxshm__dict_journal {
  _Atomic uint32_t state;   /* 0: a repair undoes the records (and frees `alloc`); 1: the change
                               is committed: a repair frees `pending` instead */
  _Atomic uint32_t used;    /* bytes of records; stored (release) after each record, before the
                               write it records */
  _Atomic uint32_t alloc;   /* stripe journals: unit of the block allocated for the change in
                               progress (0: none). Set and cleared inside allocator transactions */
  _Atomic uint32_t pending; /* stripe journals: unit of the block the committed change unlinked,
                               still to be freed (0: none) */
  uint32_t reserved[12];
  /* The records follow the header: a u64 (byte offset in the mapping << 16 | length), then
   * `length` old bytes, padded to 8. */
} lxshm__dict_journal;

/* The allocator's control block (data offset 0), guarded by the header's line-1 lock. */
typedef struct lxshm__dict_alloc {
  _Atomic uint64_t free_units; /* units in free blocks */
  _Atomic uint32_t hand;       /* CLOCK hand: the block eviction looks at next */
  _Atomic uint32_t fl_bitmap;  /* bit f set: some list of first level f is not empty */
  uint64_t reserved0[6];
  _Atomic uint32_t sl_bitmap[LXSHM__DICT_FL];             /* bit s: list (f, s) is not empty */
  _Atomic uint32_t heads[LXSHM__DICT_FL][LXSHM__DICT_SL]; /* first free block of each list */
  uint32_t reserved1[4];
  lxshm__dict_journal journal;
  unsigned char records[LXSHM__DICT_ALLOC_JOURNAL];
} lxshm__dict_alloc;

/* One stripe's control block. Its lock guards everything of the stripe: the fields below, its
 * bucket array, and every field of its entries but the allocator's `block` word. */
typedef struct lxshm__dict_stripe {
  unsigned char lock[LXSHM__LOCK_BYTES]; /* line 0 */
  /* Line 1: what lock-free readers look at. */
  _Atomic uint64_t seq; /* odd while the lock holder changes what readers can see; readers
                           retry when it is odd or moved during their read */
  uint64_t reserved0[7];
  /* Line 2: counters, written under the lock, journaled. */
  _Atomic uint64_t count;       /* entries linked, expired ones included until reclaimed */
  _Atomic uint64_t clock;       /* changes so far; a change's version is clock * stripes + index */
  _Atomic uint64_t min_expiry;  /* no entry of the stripe expires before this (monotonic ns);
                                   exact after a sweep, a lower bound otherwise; UINT64_MAX: none */
  _Atomic uint64_t bytes;       /* key and value bytes of the linked entries */
  _Atomic uint64_t evictions;   /* live entries evicted to make room */
  _Atomic uint64_t expirations; /* expired entries reclaimed */
  uint64_t reserved1[2];
  lxshm__waitlist waiters;     /* lines 3-4: processes in d:wait on a key of this stripe */
  lxshm__dict_journal journal; /* line 5, then the records */
  unsigned char records[LXSHM__DICT_JOURNAL];
} lxshm__dict_stripe;

/* An entry: an allocated block of the arena, then its key and value bytes. */
typedef struct lxshm__dict_entry {
  _Atomic uint32_t block;   /* the allocator's (under its lock): size in units << 2, bit 1: the
                               block before is in use, bit 0: this block is in use */
  _Atomic uint32_t next;    /* next entry of the bucket's chain (unit), 0 at the end */
  _Atomic uint64_t version; /* the key's version */
  _Atomic uint64_t expires; /* monotonic ns at which it expires; 0: never */
  _Atomic uint64_t shape;   /* value bytes << 32 | key bytes << 16 | key type << 8 | format */
} lxshm__dict_entry;
/* Cache lines 2..15 of a topic. Its data is three arrays: the cursor table (params[0] cursors,
 * named subscriptions), the index (one u64 per message: the ring position of its record; message
 * s has entry s % entries, see topic.c for the count) and the ring of records (as a queue's).
 * Sequence numbers start at 1; the topic holds the messages oldest..last. */
typedef struct lxshm__topic_state {
  /* Line 2: what subscribers read, written by the publisher holding the lock (line 1). */
  _Atomic uint64_t last;   /* newest whole message; 0 before any. Stored after the records and
                              index entries (release): seeing it implies them */
  _Atomic uint64_t oldest; /* oldest message held (last + 1 when none). Raised past a message
                              before its bytes or index entry are reused, behind a release
                              fence: a copy that still sees it <= s after copying s was whole */
  uint64_t reserved0[6];
  /* Line 3: the publishers' own bookkeeping, under the lock; subscribers never read it. */
  _Atomic uint64_t tail;       /* ring position (bytes since creation) where the next record
                                  goes: where message last ends, once one is held. Stored
                                  after last; the next locker after a publisher that died
                                  between the two puts it right */
  _Atomic uint64_t pub_last;   /* the publishers' copies of last and oldest, which a publish */
  _Atomic uint64_t pub_oldest; /* reads instead of line 2: see topic.c */
  uint64_t reserved1[5];
  /* Line 4: the lock of the cursor table: claiming, releasing and forgetting names. */
  unsigned char cursor_lock[LXSHM__LOCK_BYTES];
  /* Lines 5-6: subscribers waiting for a message; woken by every publish. */
  lxshm__waitlist arrived;
  uint64_t reserved2[72]; /* lines 7..15, zero */
} lxshm__topic_state;

/* One named subscription of a topic, in its cursor table (two cache lines each, so that holders
 * storing their positions do not share lines). */
typedef struct lxshm__topic_cursor {
  _Atomic uint64_t next;         /* first message not yet returned under this name. Written by the
                                    holder after each delivery (lock-free), or under the cursor lock
                                    when the name is made */
  _Atomic uint32_t holder;       /* pid of the process holding the name; 0 when none. Set under the
                                    cursor lock; the holder itself clears it when it lets go */
  _Atomic uint32_t used;         /* 1 when the entry holds a name; under the cursor lock */
  _Atomic uint64_t holder_start; /* lxshm__pid_start of the holder when it took the name */
  uint32_t name_len;             /* bytes of name; under the cursor lock */
  uint32_t reserved0;
  char name[LXSHM__CURSOR_NAME]; /* the name, not terminated; under the cursor lock */
  uint64_t reserved1[4];
} lxshm__topic_cursor;

/* The first LXSHM__HEADER_SIZE bytes of every lxshm mapping. */
typedef struct lxshm__header {
  /* Cache line 0, identity: written once by the creator, then never; `magic` is stored last
   * with release ordering, so a process that reads LXSHM__MAGIC sees every field below it. */
  _Atomic uint32_t magic;         /* LXSHM__MAGIC once initialized; 0 while the creator works */
  uint32_t layout;                /* LXSHM__LAYOUT_VERSION of the creator's build */
  uint32_t kind;                  /* LXSHM__KIND_*: what the rest of the header and the data are */
  uint32_t codec;                 /* version of the value format (LXSHM__CODEC_VERSION) */
  uint64_t capacity;              /* segment: bytes one value may take; queue: bytes of the ring */
  uint64_t map_size;              /* bytes of the whole mapping */
  uint64_t slot_stride;           /* segment: distance from slot 0's data to slot 1's; else 0 */
  uint32_t creator_pid;           /* process that created it (diagnostics only) */
  uint32_t params[LXSHM__PARAMS]; /* the kind's own creation parameters; zero for segments
                                     and queues */

  /* Cache line 1: the inter-process lock, platform-defined bytes: a robust pthread mutex on
   * POSIX; on Windows, where the lock is a named mutex, the holder's process and thread ids. A
   * segment's commit lock; a queue's push lock. */
  unsigned char lock[LXSHM__LOCK_BYTES];

  union {
    lxshm__segment_state segment;
    lxshm__queue_state queue;
    lxshm__dict_state dict;
    lxshm__topic_state topic;
  } u;
} lxshm__header;

_Static_assert(sizeof(lxshm__waitlist) == 128, "a waitlist is two cache lines");
_Static_assert(sizeof(lxshm__slot) == 32, "slot descriptor is 32 bytes");
_Static_assert(offsetof(lxshm__header, lock) == 64, "lock on cache line 1");
_Static_assert(offsetof(lxshm__header, u.segment.version) == 128, "version on line 2");
_Static_assert(offsetof(lxshm__header, u.segment.slots) == 192, "slots on line 3");
_Static_assert(offsetof(lxshm__header, u.segment.waiters) == 256, "waiters on lines 4-5");
_Static_assert(offsetof(lxshm__header, u.queue.tail) == 128, "push side on line 2");
_Static_assert(offsetof(lxshm__header, u.queue.pop_lock) == 192, "pop lock on line 3");
_Static_assert(offsetof(lxshm__header, u.queue.head) == 256, "pop side on line 4");
_Static_assert(offsetof(lxshm__header, u.queue.not_empty) == 320, "not_empty on lines 5-6");
_Static_assert(offsetof(lxshm__header, u.queue.not_full) == 448, "not_full on lines 7-8");
_Static_assert(sizeof(lxshm__segment_state) == sizeof(lxshm__queue_state), "both fill the header");
_Static_assert(sizeof(lxshm__dict_state) == sizeof(lxshm__queue_state), "dict fills the header");
_Static_assert(sizeof(lxshm__dict_journal) == 64, "a journal's header is one cache line");
_Static_assert(sizeof(lxshm__dict_alloc) % 64 == 0, "allocator block in whole cache lines");
_Static_assert(sizeof(lxshm__dict_stripe) % 64 == 0, "stripes in whole cache lines");
_Static_assert(offsetof(lxshm__dict_stripe, seq) == 64, "a stripe's seq on its line 1");
_Static_assert(offsetof(lxshm__dict_stripe, waiters) == 192, "a stripe's waiters on lines 3-4");
_Static_assert(sizeof(lxshm__dict_entry) == 32, "an entry's header is two units");
_Static_assert(offsetof(lxshm__header, u.topic.last) == 128, "subscribers' line is line 2");
_Static_assert(offsetof(lxshm__header, u.topic.tail) == 192 &&
                   offsetof(lxshm__header, u.topic.pub_oldest) == 208,
               "publishers' line is line 3");
_Static_assert(offsetof(lxshm__header, u.topic.cursor_lock) == 256, "cursor lock on line 4");
_Static_assert(offsetof(lxshm__header, u.topic.arrived) == 320, "arrived on lines 5-6");
_Static_assert(sizeof(lxshm__topic_state) == sizeof(lxshm__queue_state), "a topic fills it too");
_Static_assert(sizeof(lxshm__topic_cursor) == 128, "a cursor is two cache lines");
_Static_assert(sizeof(lxshm__header) == LXSHM__HEADER_SIZE, "header is 1 KiB");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
               "shared atomics must be lock-free to work across processes");

#endif

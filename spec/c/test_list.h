/* test_list.h — the one list of lxshm's C tests and of the helpers they start in other
 * processes, read by both runners (through test.h and common.c). A test runs on every OS unless
 * wrapped in POSIX_ONLY or WINDOWS_ONLY, which says why beside it; output numbers follow this
 * order. X(id, "title") defines test_<id> in a tests_*.c; helpers are X(id, argument count). */
#ifndef LXSHM_SPEC_TEST_LIST_H
#define LXSHM_SPEC_TEST_LIST_H

#ifdef _WIN32
#define POSIX_ONLY(x)
#define WINDOWS_ONLY(x) x
#else
#define POSIX_ONLY(x) x
#define WINDOWS_ONLY(x)
#endif

/* One entry per line, whatever clang-format would make of the macros: */
/* clang-format off */
#define TEST_LIST(X)                                                                            \
  /* tests_segment.c */                                                                         \
  X(round_trip, "round trip")                                                                   \
  X(read_short_buffer, "read into a short buffer")                                              \
  X(names, "names")                                                                             \
  X(sizes, "sizes")                                                                             \
  X(exists_not_found, "exists and not found")                                                   \
  X(remove, "remove")                                                                           \
  /* POSIX turns mode into permission bits under the umask; Windows into a DACL. */             \
  POSIX_ONLY(X(file_mode, "file mode"))                                                         \
  WINDOWS_ONLY(X(mode_access, "mode and access"))                                               \
  /* What squats a name differs: on POSIX any process can make, fill or empty an object under   \
   * the prefix with shm_open; on Windows kernel objects of every type share one namespace. */  \
  POSIX_ONLY(X(posix_foreign_objects, "foreign objects"))                                       \
  WINDOWS_ONLY(X(win_foreign_objects, "foreign objects"))                                       \
  X(readonly, "read-only handles read and wait, and write nothing")                            \
  /* Who owns an object is a uid on POSIX and a SID on Windows. */                              \
  POSIX_ONLY(X(posix_foreign_owner, "another user's object: refused, or trusted"))              \
  WINDOWS_ONLY(X(win_foreign_owner, "another user's object: refused, or trusted"))              \
  X(damaged_headers, "damaged headers")                                                         \
  /* Only a POSIX object can be resized after it was made (a Windows section cannot). */        \
  POSIX_ONLY(X(truncated, "damaged headers: object truncated"))                                 \
  X(damaged_length, "damaged value length")                                                     \
  X(status_names, "status names")                                                               \
  /* tests_process.c */                                                                         \
  X(cross_process, "cross-process write and wait")                                              \
  X(exchange, "two processes exchange values")                                                  \
  X(writer_killed, "writer killed mid-write")                                                   \
  X(attach_race, "attach race")                                                                 \
  X(open_races_create, "open races create")                                                     \
  X(counter, "counter incremented by three processes")                                          \
  /* tests_lock.c */                                                                            \
  X(owner_exits, "lock owner exits holding the lock")                                           \
  X(owner_killed, "lock owner killed holding the lock, mid-commit")                             \
  X(owner_dies_after_commit, "lock owner dies after commit, before unlock")                     \
  X(dies_mid_commit, "writer dies mid-commit")                                                  \
  X(owner_thread_ends, "lock owner thread ends holding the lock")                               \
  /* A Windows lock is a named mutex that ends with its last handle; a POSIX one lives in the  \
   * mapping. */                                                                                \
  WINDOWS_ONLY(X(owner_exits_with_mutex, "lock owner exits with the only mutex handle"))        \
  X(relock, "relock from the same thread")                                                      \
  X(lock_timeout, "lock timeout")                                                               \
  /* tests_wait.c */                                                                            \
  X(wait_timeouts, "wait: timeouts and polls")                                                  \
  X(wait_woken, "wait: woken by other processes")                                               \
  /* Signals are POSIX's. */                                                                    \
  POSIX_ONLY(X(wait_signals, "wait: signals do not end it"))                                    \
  X(killed_waiter, "wait: a killed waiter is not counted")                                      \
  X(woken_after_committer_died, "wait: woken after the committer died")                        \
  /* tests_queue.c */                                                                           \
  X(queue_basics, "queue basics")                                                               \
  X(queue_wraps, "queue wraps")                                                                 \
  X(queue_blocking, "queue: blocking push and pop")                                             \
  X(queue_producers, "queue: two producer processes, one consumer")                             \
  X(queue_killed, "queue: producers and consumers killed")                                      \
  X(queue_zero_timeout, "queue: timeout 0 still waits for a busy lock")                          \
  /* tests_dict.c */                                                                            \
  X(dict_calls, "dict: every call's results and failures")                                      \
  X(dict_fill, "dict: 90% filled before the first eviction, free_space() true")                 \
  X(dict_eviction_order, "dict: expired keys first, then the least recently used")              \
  X(dict_counters, "dict: incr and cas raced by four processes")                                \
  X(dict_wait, "dict: a waiter wakes for its key, not for others")                              \
  X(dict_crash_steps, "dict: a process dies at every step of every change")                     \
  X(dict_repairer_dies, "dict: the process repairing a dead one's change dies too")             \
  X(dict_random_kills, "dict: kills at random instants (1,000 on POSIX) against a model")       \
  /* tests_topic.c */                                                                           \
  X(topic_basics, "topic basics")                                                               \
  X(topic_wraps, "topic wraps; a lagging subscription counts what it lost")                     \
  X(topic_named, "topic: named subscriptions")                                                  \
  X(topic_fanout, "topic: two publisher processes, three subscribers")                          \
  X(topic_blocking, "topic: next blocks until another process publishes")                       \
  X(topic_publisher_dies, "topic: publisher dies in the lock at each step of a publish")        \
  X(topic_killed, "topic: publishers and subscribers killed")                                   \
  X(topic_damaged, "topic: damaged bookkeeping and records") \
  X(topic_batch_overtaken, "topic: a batch overtaken while it is copied") \
  X(topic_batch_lagging, "topic: a lagging batch overtaken at every attempt")

#define HELPER_LIST(X)                                                                          \
  X(read, 2) X(create, 2) X(write, 3)                             /* tests_segment.c */        \
  X(pong, 2) X(write_patterns, 2) X(attach, 3) X(opener, 1) X(count, 2) /* tests_process.c */ \
  X(hold, 2)                                                      /* tests_lock.c */           \
  X(wait, 4) X(wake, 2)                                           /* tests_wait.c */           \
  X(pop, 3) X(push, 3) X(produce, 3) X(consume, 3) X(produce_forever, 2) X(drain, 2)          \
  X(lock_queue, 2)                                                /* tests_queue.c */          \
  X(dict_incr, 2) X(dict_cas, 2) X(dict_wait, 3) X(crash_step, 3) X(repair_step, 2)          \
  X(rk_worker, 2)                                                 /* tests_dict.c */           \
  X(tpub, 3) X(tpub_forever, 2) X(tsub, 3) X(tnext, 2) X(tpub_to_sleeper, 2) X(thold, 2)      \
  X(tfollow, 1) X(tdie, 2)                                        /* tests_topic.c */          \
  POSIX_ONLY(X(signal_then_write, 1))                             /* tests_posix.c */          \
  WINDOWS_ONLY(X(create_hold, 1))                                 /* tests_win.c */
/* clang-format on */

#endif

/* wait.h — waitlists: how a process sleeps until another process changes something in an
 * object, and how the changer wakes it (wait.c). Internal to src/; every kind builds its
 * blocking calls (wait, pop, a push waiting for room, a subscriber's next) on these. */
#ifndef LXSHM_WAIT_H
#define LXSHM_WAIT_H

#include "object.h"

/* Says whether what a waiter waits for has happened. Called often, lock-free: it only reads. */
typedef int (*lxshm__ready_fn)(lxshm__object *o, void *ctx);

/* Waits on w until ready(o, ctx) or `deadline` (lxshm__deadline): spins briefly first where the
 * waker can run meanwhile, then sleeps in the kernel in slices of at most 200 ms (a waker that
 * died before its wake-up call delays the waiter by no more than that). On a read-only object,
 * which a waiter may not register in, it looks again at growing intervals of at most 2 ms
 * instead. Returns OK, TIMEOUT, LXSHM__INTERRUPTED (only with intr) or SYSTEM. */
lxshm_status lxshm__wait_until(lxshm__object *o, lxshm__waitlist *w, lxshm__ready_fn ready,
                               void *ctx, uint64_t deadline, const lxshm__interrupt *intr,
                               lxshm_error *err);

/* After a change the waiters of w may wait for: wakes them if any sleeps. Call once the change
 * is published, after releasing locks. Makes no system call when nobody sleeps. */
void lxshm__wake(lxshm__object *o, lxshm__waitlist *w);

/* Wakes every waiter of w unconditionally (repair after an owner died). */
void lxshm__wake_all(lxshm__object *o, lxshm__waitlist *w);

/* Registered waiters of w, after forgetting those whose process has died. */
uint32_t lxshm__waiter_count(lxshm__object *o, lxshm__waitlist *w);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * loop.h: the bridge's single-threaded event loop: an epoll set of
 * watched descriptors and a run queue of tasks.
 *
 * Rule that keeps it free of use-after-free: a watch callback only takes
 * note (sets a flag, queues a task); it never frees anything, because
 * other events of the same epoll batch may point at what it would free.
 * Objects are freed from tasks or between batches, after loop_del().
 */
#ifndef EVSHM_BRIDGE_LOOP_H
#define EVSHM_BRIDGE_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;

struct watch {
	void (*fn)(struct watch *w, uint32_t events);
	int fd;
	uint32_t events; /* current interest */
};

struct task {
	void (*fn)(struct task *t);
	struct task *prev, *next;
	bool queued;
};

/* Milliseconds on the monotonic clock. */
uint64_t loop_now_ms(void);

int loop_new(struct loop **out);
/* Close the epoll set.  Watches must have been removed; queued tasks are
 * forgotten. */
void loop_free(struct loop *l);

/* Watch @fd for @events (EPOLLIN...; 0 is allowed).  0 or -errno. */
int loop_add(struct loop *l, struct watch *w, int fd, uint32_t events);
/* Change the interest; no system call if it is unchanged (or @w is not
 * added). */
int loop_mod(struct loop *l, struct watch *w, uint32_t events);
/* Stop watching (before the descriptor is closed).  No-op if not added. */
void loop_del(struct loop *l, struct watch *w);

/* Queue @t to run once (no-op if queued already) / take it off. */
void loop_defer(struct loop *l, struct task *t);
void loop_cancel(struct loop *l, struct task *t);
bool loop_busy(const struct loop *l);

/* Wait up to @timeout_ms for events (0 if tasks are queued) and call their
 * watches.  0 or -errno (EINTR is not an error). */
int loop_wait(struct loop *l, int timeout_ms);

/* Run the tasks queued now, once each; tasks queued meanwhile wait for the
 * next call (fairness: nobody runs twice while others wait). */
void loop_run_tasks(struct loop *l);

#endif

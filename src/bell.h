/* SPDX-License-Identifier: MIT */
/*
 * bell.h: how a side waits and how it wakes its peer.
 *
 * A bell is a pair of connected Unix stream sockets.  The side that sleeps
 * creates it, keeps one end (only it ever holds it, so nobody else can take
 * its locks) and hands the other to the side that kicks.  A kick is one
 * send(2) of one byte with MSG_DONTWAIT | MSG_NOSIGNAL: per call, so no flag
 * the peer sets can make it block, and a unix send takes no lock a peer can
 * hold (a pipe's mutex can be held for ever by any holder of either end).
 * The sleeper waits in a private epoll set holding its bell edge-triggered
 * (every kick is an event, nothing has to be read back) and the socket for
 * hang-up, and drains the bell now and then (a kick only ever answers an
 * arming, so after N arms at most N bytes wait).  The kicker's death or
 * shutdown of its end hangs the bell up.
 *
 * Waiting is spin-then-sleep.  By default the spin adapts: it spins only
 * when the peer runs on another CPU and is awake, or was asleep but has
 * been kicked by us since (it is waking up to answer), as the peer says in
 * its region; for a budget that halves when spinning did not pay (the
 * sleep that followed was long) and doubles when a sleep ended soon after
 * it began, between 0 and BELL_SPIN_MAX_NS.
 */
#ifndef EVSHM_BELL_H
#define EVSHM_BELL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ring.h"

/* The adaptive spin's ceiling: about what a wakeup of a sleeping process
 * on another CPU costs (30-50 us on the VMs measured), so spinning at most
 * doubles the cost of a wait, and a side whose peer was asleep and has
 * just been kicked can catch its answer without sleeping itself. */
#define BELL_SPIN_MAX_NS 50000

/* Kicks only answer armings: a sleeper empties its bell(s) after this many
 * armings, long before the kicker's send buffer could fill with one-byte
 * kicks (about 270 of them in the default 208 KiB, 680 in the 256 KiB
 * os_bell_pair asks for; a kick that finds it full is lost).  Counted,
 * and the bell emptied, at each arming (bell_arm). */
#define BELL_DRAIN_EVERY 64u

/* The spins counter reaches the region every this many spins (and at
 * every sleep): see bell_spin(). */
#define BELL_SPINS_EVERY 64u

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

struct bell {
	int ep;                 /* private epoll: bell(s) ET, socket hang-up */
	int tmr;                /* deadline timerfd in ep */
	uint64_t tmr_at;        /* when it is armed to fire; 0 not armed */
	int rd;                 /* our bell's read end (the peer kicks it) */
	unsigned arms;          /* armings since the bell was last drained */
	_Atomic bool armed;     /* an event index is out: a kick may come (read
				   by a sibling role's thread, see drained) */
	struct ring_role role;  /* our state word (asleep, fenceless) */
	struct region *mine;    /* cpu and counters */
	_Atomic uint64_t *sleeps, *spins; /* counters in our region (spins:
					     published now and then) */
	uint64_t nsleeps, nspins;
	int64_t spin_ns;        /* > 0 fixed, < 0 never, 0 adaptive */
	int64_t budget;         /* the adaptive spin's current budget */
	uint64_t kicks_seen;    /* our side's kicks when this role last waited */
	/* Optional: called each time @rd was emptied.  Two roles that sleep
	 * on one bell (a channel's send and receive sides) each empty it now
	 * and then, and may so swallow a kick meant for the other: this is
	 * where the other learns of it (see chan.c). */
	void (*drained)(void *arg);
	void *drained_arg;
};

/* What a wait needs to know about the condition it waits for. */
struct bell_ops {
	/* The operation itself: 0 done, -EAGAIN not yet, or an error. */
	int (*attempt)(void *ctx);
	/* A cheap look at shared memory, for spinning: worth attempting?
	 * Not called (may be NULL) when watch() is given. */
	bool (*ready)(void *ctx);
	/* Instead of ready(): the one word that changes when it is worth
	 * attempting (*word == *val, or != with @ne), so that the spin is a
	 * load and a compare, no call. */
	void (*watch)(void *ctx, const uint64_t **word, uint64_t *val,
		      bool *ne);
	/* Publish our event index, fence, look again: 0 ready, -EAGAIN
	 * sleep, RING_BARRIER (run the barrier, then recheck), or -EPROTO. */
	int (*arm)(void *ctx);
	int (*recheck)(void *ctx);
	/* Is the peer awake and elsewhere than @cpu (so spinning can pay)? */
	bool (*worth_spinning)(void *ctx, int cpu);
	/* The peer has gone (socket or bell hung up): note it. */
	void (*hangup)(void *ctx);
	/* Has it been noted? (Then an attempt that says -EAGAIN is final.) */
	bool (*gone)(void *ctx);
	/* Optional: a moment the attempt must run again at, even without a
	 * kick (a publisher's stall bound); UINT64_MAX for none. */
	uint64_t (*wake_by)(void *ctx);
};

/* No descriptors yet: bell_close() of it closes nothing.  For the owner
 * of a bell, before anything can fail (bell_open does it too). */
void bell_init(struct bell *b);

/*
 * Set up @b for sleeping on the read end @rd (ours now; -1: none yet, see
 * bell_add) and the hang-up of @sock.  @state is our role's state word,
 * @sleeps/@spins our counters, all in @mine.  0 or -errno.
 */
int bell_open(struct bell *b, int rd, int sock, struct region *mine,
	      _Atomic uint32_t *state, _Atomic uint64_t *sleeps,
	      _Atomic uint64_t *spins, int64_t spin_ns, bool may_skip_fence);
/* Epoll tags: the bell and the socket of our one peer (their hang-up is
 * the peer's), and a member among many (a publisher's subscribers: its
 * bell or its socket; a hang-up there only wakes us). */
#define BELL_TAG_BELL 0u
#define BELL_TAG_SOCK 1u
#define BELL_TAG_MEMBER 2u
#define BELL_TAG_TIMER 3u

/* Also sleep on read end @rd, edge-triggered, with @tag.  0 or -errno. */
int bell_add(struct bell *b, int rd, uint32_t tag);
/* Also wake when socket @sock hangs up, with @tag.  0 or -errno. */
int bell_add_sock(struct bell *b, int sock, uint32_t tag);
/* Stop sleeping on @rd (it is about to be closed). */
void bell_del(struct bell *b, int rd);
/* Close what bell_open made (not @rd or the socket). */
void bell_close(struct bell *b);

/* Make our bell: *rd is ours to sleep on, *wr_for_peer goes to the peer
 * (and is closed once sent). */
int bell_make(int *rd, int *wr_for_peer);

/*
 * A kick never blocks, but the kernel wakes, in our thread, everything
 * that watches the sleeper's end, and the sleeper chooses that: its end in
 * a million epoll sets (dup(2) gives as many entries as it likes) makes
 * each of our sends walk them all, ~170 ms.  An honest sleeper's few
 * watchers take microseconds.  So kicks are timed, by the clock (vDSO,
 * cheap): a kick that took BELL_KICK_SLOW_NS or more puts the bell under
 * watch.  That alone proves nothing: the task a kick wakes may preempt
 * us inside the send, and the clock runs on while others run.  So under
 * watch each kick is timed by our thread's CPU time instead (two system
 * calls), which only the walk itself fills: one that used
 * BELL_KICK_SLOW_NS of it is a strike, a quicker one ends the watch, and
 * the BELL_KICK_STRIKES-th strike in a row ends the peer: -EPROTO (reason
 * BELL_SLOW).
 */
#define BELL_KICK_SLOW_NS 2000000u
#define BELL_KICK_STRIKES 3u

/* Kick the peer's bell: one send(2), never blocks, timed as above against
 * *@watch (the caller's, one per bell kicked and thread; 0: not under
 * watch, else 1 + strikes).  0, -errno (-EPIPE: the sleeper has gone), or
 * -EPROTO (reason BELL_SLOW). */
int bell_kick(int wr, unsigned *watch);

/* bell_wait() after its first attempt said -EAGAIN. */
int bell_wait_after(struct bell *b, const struct bell_ops *ops, void *ctx,
		    int timeout_ms);

/*
 * bell_wait(), with the first attempt a direct call to @attempt (the same as
 * @ops->attempt), which the caller's compiler inlines; bell_wait_after()
 * takes over only if it says -EAGAIN.  Under a stream no call waits, so
 * the way through the loop and the callback was paid for nothing (with
 * the inline ring and the library's direct calls to itself, a channel's
 * send and receive went from 568 to 328 instructions: docs/performance.md,
 * "The code of a hop").
 */
static inline int bell_try_wait(struct bell *b, const struct bell_ops *ops,
				void *ctx, int (*attempt)(void *),
				int timeout_ms)
{
	int res = attempt(ctx);

	return res == -EAGAIN ? bell_wait_after(b, ops, ctx, timeout_ms) : res;
}

/*
 * Run @ops->attempt until it succeeds, fails, or @timeout_ms is up: spin
 * (once per call, if worth it), arm, sleep, and again.  Every wakeup is
 * followed by one attempt and then a look at the clock, so a peer that
 * floods the bell cannot stretch the timeout.  With timeout 0 it never
 * sleeps: it arms (so that evshm_fd() will report the change), attempts
 * once more, and looks whether the socket hung up.
 * Returns the attempt's result, -EAGAIN (timeout 0), -ETIMEDOUT, -EPIPE
 * (the peer has gone and the attempt still says -EAGAIN), or -errno.
 */
static inline int bell_wait(struct bell *b, const struct bell_ops *ops,
			    void *ctx, int timeout_ms)
{
	return bell_try_wait(b, ops, ctx, ops->attempt, timeout_ms);
}

/*
 * Arm as a call with timeout 0 does before it says -EAGAIN, but before a
 * look instead of after one: a caller that must end its call after that
 * look whatever it finds (a try it bounds) needs the kick that answers
 * any change after the arming.  Stays armed (no bell_disarm() after such
 * a look).  0 (armed, or the condition is true already), or -errno.
 */
int bell_arm_first(struct bell *b, const struct bell_ops *ops, void *ctx);

/* We stopped waiting: with @reset (evshm_fd() is in use, level-triggered)
 * empty the bell so that it does not stay readable.  Only after the wait
 * succeeded: a call that returns -EAGAIN stays armed, and the kick that
 * answers it must keep the descriptor readable. */
void bell_disarm_armed(struct bell *b, bool reset);
static inline void bell_disarm(struct bell *b, bool reset)
{
	/* Inline, since every call that succeeded at once comes here. */
	if (atomic_load_explicit(&b->armed, memory_order_relaxed))
		bell_disarm_armed(b, reset);
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * bell.c: kick, sleep, spin, and the one wait loop every blocking call of
 * channels and topics runs.
 */
#include "bell.h"

#include <errno.h>
#include <sys/epoll.h>

#include "err.h"
#include "os.h"

void bell_init(struct bell *b)
{
	b->ep = b->tmr = b->rd = -1;
}

int bell_open(struct bell *b, int rd, int sock, struct region *mine,
	      _Atomic uint32_t *state, _Atomic uint64_t *sleeps,
	      _Atomic uint64_t *spins, int64_t spin_ns, bool may_skip_fence)
{
	int res;

	bell_init(b);
	b->tmr_at = 0;
	b->arms = 0;
	atomic_init(&b->armed, false);
	b->drained = NULL;
	b->drained_arg = NULL;
	b->mine = mine;
	b->sleeps = sleeps;
	b->spins = spins;
	b->nsleeps = b->nspins = 0;
	b->spin_ns = spin_ns;
	b->budget = BELL_SPIN_MAX_NS;
	ring_role_init(&b->role, state, may_skip_fence);
	b->ep = epoll_create1(EPOLL_CLOEXEC);
	if (b->ep < 0)
		return -errno;
	/* The deadline timer, level-triggered: readable until read. */
	if ((res = b->tmr = os_timer()) < 0 ||
	    (res = os_epoll_add(b->ep, b->tmr, EPOLLIN, BELL_TAG_TIMER)) < 0)
		goto out_close;
	if (sock >= 0 && (res = bell_add_sock(b, sock, BELL_TAG_SOCK)) < 0)
		goto out_close;
	if (rd >= 0) {
		if ((res = bell_add(b, rd, BELL_TAG_BELL)) < 0)
			goto out_close;
		b->rd = rd;
	}
	return 0;

out_close:
	bell_close(b);
	return res;
}

int bell_add(struct bell *b, int rd, uint32_t tag)
{
	/* Edge-triggered: every kick of the peer is one event whatever the
	 * bell holds, so nothing has to be read back per sleep.  A kicker
	 * that shuts its end down (EPOLLRDHUP) has gone, as one that closes
	 * it (EPOLLHUP). */
	return os_epoll_add(b->ep, rd, EPOLLIN | EPOLLRDHUP | EPOLLET, tag);
}

int bell_add_sock(struct bell *b, int sock, uint32_t tag)
{
	/* Only hang-up, level-triggered: data on a channel's socket
	 * (descriptors riding with messages) is read when its ring record
	 * is. */
	return os_epoll_add(b->ep, sock, EPOLLRDHUP, tag);
}

void bell_del(struct bell *b, int rd)
{
	epoll_ctl(b->ep, EPOLL_CTL_DEL, rd, NULL);
}

void bell_close(struct bell *b)
{
	b->tmr = os_close(b->tmr);
	b->ep = os_close(b->ep);
}

int bell_make(int *rd, int *wr_for_peer)
{
	return os_bell_pair(rd, wr_for_peer);
}

/*
 * The first look needs only to be cheap and never to miss a slow kick: a
 * false alarm costs the next kick two system calls, nothing more.  On x86
 * the time stamp counter (a few ns, against 35 for the vDSO clock here),
 * counted as if it ran at 1 GHz: every TSC runs at least that fast, so
 * the alarm comes at 2 ms or sooner.  Elsewhere the clock.
 */
static inline uint64_t kick_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	return os_now_ns();
#endif
}

int bell_kick(int wr, unsigned *watch)
{
	uint64_t t0;
	int res;

	if (!*watch) {
		t0 = kick_ticks();
		res = os_bell_kick(wr);
		if (kick_ticks() - t0 >= BELL_KICK_SLOW_NS)
			*watch = 1; /* slow, or preempted: look closer */
		return res;
	}
	t0 = os_thread_cpu_ns();
	res = os_bell_kick(wr);
	if (os_thread_cpu_ns() - t0 < BELL_KICK_SLOW_NS)
		*watch = 0;
	else if (++*watch > BELL_KICK_STRIKES)
		return ERR_PROTO(BELL_SLOW);
	return res;
}

/* Empty the bell, then let a role that shares it look whether we took
 * its kick (after we are no longer armed ourselves). */
static void bell_empty(struct bell *b)
{
	b->arms = 0;
	if (b->rd >= 0)
		os_bell_drain(b->rd);
	if (b->drained)
		b->drained(b->drained_arg);
}

/* Empty the bell if BELL_DRAIN_EVERY armings have passed. */
static void bell_drain_due(struct bell *b)
{
	/* The caller looks at its condition again next. */
	if (b->arms >= BELL_DRAIN_EVERY)
		bell_empty(b);
}

void bell_disarm_armed(struct bell *b, bool reset)
{
	atomic_store(&b->armed, false);
	if (reset)
		bell_empty(b);
}

/*
 * Make the deadline timer fire by @deadline.  An epoll_wait() timeout
 * would make the kernel set up and tear down a timer on every sleep: on
 * one CPU that is a tenth of a whole wakeup.  So the deadline goes to a
 * timerfd in the epoll set instead, re-armed only when a sleep needs it
 * earlier than it is set, or after it fired: waits whose deadlines move
 * forward (the same timeout, call after call) re-arm it once per timeout,
 * and a sleep whose deadline lies beyond the timer's wakes once early and
 * sleeps again.
 */
static void bell_timer_by(struct bell *b, uint64_t deadline)
{
	if (deadline != UINT64_MAX && (!b->tmr_at || b->tmr_at > deadline)) {
		os_timer_at(b->tmr, deadline);
		b->tmr_at = deadline;
	}
}

/*
 * Sleep until a kick, a hang-up (the socket's, or the bell's: its writer
 * is the peer), or @deadline (the timer).  0 (woken: look again, wakeups
 * may be spurious; the caller reads the clock), -ETIMEDOUT (a signal
 * after the deadline), -EPIPE, or -errno.
 */
static int bell_sleep(struct bell *b, uint64_t deadline)
{
	struct epoll_event ev[4];
	bool fired = false;
	int n;

	ring_role_asleep(&b->role, true);
	bell_timer_by(b, deadline);
	do
		n = epoll_wait(b->ep, ev, 4, -1);
	while (n < 0 && errno == EINTR && os_now_ns() < deadline);
	ring_role_asleep(&b->role, false);
	atomic_store_explicit(b->sleeps, ++b->nsleeps, memory_order_relaxed);
	atomic_store_explicit(b->spins, b->nspins, memory_order_relaxed);
	if (n < 0)
		return errno == EINTR ? -ETIMEDOUT : -errno;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u32 == BELL_TAG_SOCK ||
		    (ev[i].data.u32 == BELL_TAG_BELL &&
		     (ev[i].events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR))))
			return -EPIPE;
		fired |= ev[i].data.u32 == BELL_TAG_TIMER;
	}
	if (fired) {
		/* Level-triggered: read it, or every sleep ends at once. */
		os_event_clear(b->tmr);
		b->tmr_at = 0;
	}
	/* The timer's wakeup is only one to look again at (it may have been
	 * set for an earlier deadline): bell_wait() reads the clock. */
	return 0;
}

/* Has the socket (the only member that is level-triggered) hung up? */
static bool bell_hung_up(struct bell *b)
{
	struct epoll_event ev[4];
	int n = epoll_wait(b->ep, ev, 4, 0);

	for (int i = 0; i < n; i++)
		if (ev[i].data.u32 == BELL_TAG_SOCK ||
		    (ev[i].data.u32 == BELL_TAG_BELL &&
		     (ev[i].events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR))))
			return true;
	return false;
}

/* How long to spin now: the user's fixed value, never, or the adaptive
 * budget when the peer is awake on another CPU. */
static int64_t spin_budget(struct bell *b, const struct bell_ops *ops,
			   void *ctx)
{
	int cpu;

	if (b->spin_ns)
		return b->spin_ns;
	cpu = os_cpu();
	/* Published for the peer's own choice; relaxed: a hint.  Stored
	 * only when it changed: the peer reads that line when it waits, and
	 * a store per wait would pull it back and forth for nothing. */
	if (atomic_load_explicit(&b->mine->cpu, memory_order_relaxed) !=
	    (uint32_t)(cpu + 1))
		atomic_store_explicit(&b->mine->cpu, (uint32_t)(cpu + 1),
				      memory_order_relaxed);
	return ops->worth_spinning(ctx, cpu) ? b->budget : 0;
}

/* What a spin looks at: the word ops->watch() named, loaded inline (a
 * channel's: through ready(), three calls deep, a round trip pinned apart
 * took 15-20 % longer), else ops->ready(). */
struct spin_look {
	const struct bell_ops *ops;
	void *ctx;
	const uint64_t *word;
	uint64_t val;
	bool ne;
};

static inline bool spin_looks_ready(const struct spin_look *l)
{
	if (!l->word)
		return l->ops->ready(l->ctx);
	return (__atomic_load_n(l->word, __ATOMIC_ACQUIRE) != l->val) == l->ne;
}

static bool bell_spin(struct bell *b, const struct bell_ops *ops, void *ctx)
{
	int64_t budget = spin_budget(b, ops, ctx);
	struct spin_look l = { .ops = ops, .ctx = ctx };

	if (budget <= 0)
		return false;
	uint64_t end = os_now_ns() + (uint64_t)budget;
	if (ops->watch)
		ops->watch(ctx, &l.word, &l.val, &l.ne);
	for (;;) {
		/* Read the clock once every 64 looks: it costs ~20 ns. */
		for (int i = 0; i < 64; i++) {
			if (spin_looks_ready(&l))
				goto out_ready;
			cpu_relax();
		}
		if (os_now_ns() >= end) {
			if (spin_looks_ready(&l))
				goto out_ready;
			return false;
		}
	}
out_ready:
	/* The spins counter shares its line with our state word and event
	 * index, which the peer reads after every commit: a store per spin
	 * would pull that line across on every message of a ping-pong.
	 * Published every BELL_SPINS_EVERY spins and at every sleep. */
	if (++b->nspins % BELL_SPINS_EVERY == 0)
		atomic_store_explicit(b->spins, b->nspins, memory_order_relaxed);
	return true;
}

/* The adaptive spin learns from each sleep of @slept ns, taken after a
 * spin of the current budget (or none). */
static void spin_learn(struct bell *b, uint64_t slept)
{
	if (b->spin_ns)
		return;
	if (slept < 2u * BELL_SPIN_MAX_NS) {
		/* It came soon after we gave up (the sleep includes our own
		 * wakeup): spinning would have paid. */
		b->budget = b->budget < 1000 ? 1000 : b->budget * 2;
		if (b->budget > BELL_SPIN_MAX_NS)
			b->budget = BELL_SPIN_MAX_NS;
	} else if (slept > 8u * BELL_SPIN_MAX_NS) {
		/* Long waits: spinning only burns the CPU. */
		b->budget /= 2;
		if (b->budget < 500)
			b->budget = 0;
	}
}

/* Arm, and run the barrier if the peer needs one.  0 ready, -EAGAIN
 * armed, or -EPROTO. */
static int bell_arm(struct bell *b, const struct bell_ops *ops, void *ctx,
		    bool *polling)
{
	int r;

	/* Every arming may be answered by a kick, whether we then sleep or
	 * not (a call with timeout 0, a recheck that finds the condition
	 * true): empty the bell here, before the new event index, so that
	 * what it holds stays bounded and this arming's kick is not taken. */
	bell_drain_due(b);
	/* Before the event index (seq_cst, as the fence in ops->arm): a
	 * sibling that empties the bell after our kick came sees us armed. */
	atomic_store(&b->armed, true);
	b->arms++;
	r = ops->arm(ctx);
	if (r != RING_BARRIER)
		return r;
	/* The peer skips its wakeup fence: put one into its instruction
	 * stream.  Without membarrier (seccomp) we cannot be sure to be
	 * woken, so the sleep becomes a short poll. */
	*polling = os_membarrier() < 0;
	return ops->recheck(ctx);
}

int bell_arm_first(struct bell *b, const struct bell_ops *ops, void *ctx)
{
	bool polling; /* no sleep follows */
	int res = bell_arm(b, ops, ctx, &polling);

	return res == -EAGAIN ? 0 : res;
}

int bell_wait_after(struct bell *b, const struct bell_ops *ops, void *ctx,
		    int timeout_ms)
{
	uint64_t deadline = UINT64_MAX, t0;
	bool timed = false, spun = false, polling = false;
	int res;

	/* The caller's attempt said -EAGAIN; each pass ends with the next
	 * (a `continue` goes straight to it). */
	do {
		if (ops->gone(ctx)) {
			res = -EPIPE;
			break;
		}
		if (timeout_ms == 0) {
			/* Arm for evshm_fd(), then once more: the condition
			 * may have come true meanwhile. */
			res = bell_arm(b, ops, ctx, &polling);
			if (res == 0)
				res = ops->attempt(ctx);
			if (res == -EAGAIN && bell_hung_up(b)) {
				ops->hangup(ctx);
				res = ops->attempt(ctx);
				if (res == -EAGAIN)
					res = -EPIPE;
			}
			return res;
		}
		/* The clock is read only here, when a call has to wait: under
		 * a steady stream no call ever does. */
		if (!timed) {
			deadline = os_deadline(timeout_ms);
			timed = true;
		}
		if (!spun) {
			spun = true;
			if (bell_spin(b, ops, ctx))
				continue;
		}
		/* Every wakeup re-checked the condition once (above); now
		 * the clock, so that no flood of kicks outlives the timeout. */
		t0 = os_now_ns();
		if (t0 >= deadline) {
			res = -ETIMEDOUT;
			break;
		}
		res = bell_arm(b, ops, ctx, &polling);
		if (res == 0)
			continue;
		if (res != -EAGAIN)
			break;
		uint64_t until = deadline;
		if (polling)
			until = os_min_deadline(until, t0 + 1000000u);
		if (ops->wake_by)
			until = os_min_deadline(until, ops->wake_by(ctx));
		res = bell_sleep(b, until);
		if (res == -EPIPE) {
			ops->hangup(ctx);
		} else if (res == 0) {
			spin_learn(b, os_now_ns() - t0);
		} else if (res != -ETIMEDOUT) {
			break;
		}
	} while ((res = ops->attempt(ctx)) == -EAGAIN);
	return res;
}

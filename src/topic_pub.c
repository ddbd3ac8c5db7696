/* SPDX-License-Identifier: MIT */
/*
 * topic_pub.c: a topic's publisher.  One ring, written once, read in place
 * by every subscriber; the same pieces as a channel (listener, handshake,
 * region, bell, ring), composed for one producer and many consumers.
 *
 *  - Each subscriber owns a small region (no ring): its head, its wait
 *    state, its counters.  We map it read-only and take the slowest head as
 *    the limit of our room (reliable), or overwrite regardless (latest).
 *  - Before any byte of an old record is overwritten, the horizon (the
 *    lowest byte index still intact) and the oldest intact record are
 *    published: a latest subscriber checks the horizon after it copied a
 *    record (seqlock fashion) and jumps to the oldest record when lapped.
 *  - Each subscriber sleeps on its own bell (a socket pair it made; we
 *    hold the end it gave us); we kick only those that armed.  We make a
 *    bell per subscriber too, which it kicks for room.
 *  - Reliable: a subscriber that holds us up without moving for
 *    stall_timeout_ms is dropped (DROP, then its socket is closed).
 * docs/protocol.md, section 7, is the normative description.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bell.h"
#include "err.h"
#include "evshm.h"
#include "fdpass.h"
#include "handshake.h"
#include "listener.h"
#include "opts.h"
#include "os.h"
#include "proto.h"
#include "region.h"
#include "ring.h"

/* One publish in this many looks for joining subscribers (a system call
 * or two), so that a publisher that never waits still admits them. */
#define SERVE_EVERY 4096u
/* A stall bound seen to run out late is extended once by a quarter of
 * itself, within these (ns): pub_stalled(). */
#define STALL_GRACE_MIN 10000000u
#define STALL_GRACE_MAX 1000000000u
/* The most subscribers when max_clients is 0. */
#define SUBS_MAX 1024u

struct pub_sub {
	int sock;
	bool sock_fds;
	const struct region *r; /* its region, read-only */
	int bell_rd;            /* our bell for it: it kicks us for room */
	int kick;               /* its bell: we kick it for data */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint64_t head;          /* its head as we last validated it */
	uint64_t start_seq;     /* the first message it was given */
	uint64_t blocked_since; /* holding us up since; 0: not */
	bool graced;            /* its bound ran out at a late look */
	uint64_t kicks;
	unsigned watch;         /* slow kicks (bell_kick) */
	uint64_t lap_ev;        /* the data_event we last kicked below the
				   horizon (latest) */
	uint64_t lap_seq;       /* our ring's seq when we did */
};

struct evshm_pub {
	struct listener l;
	struct evshm_opts opts;
	char name[REGION_NAME_MAX];
	uint8_t id[REGION_ID_SIZE];
	struct region *mine;
	int region_fd;
	uint32_t size;
	struct ring_tx ring;
	struct bell bell;       /* our sleeps for room: every member's bell */
	int epfd;               /* evshm_pub_fd() */
	int stall_timer;        /* in it: a subscriber's stall bound ran out */
	bool stall_timer_set;
	uint64_t horizon;       /* bytes below it may be overwritten */
	uint64_t oldest;        /* start of the oldest intact record */
	uint64_t oldest_seq;    /* its sequence number */
	uint64_t kicked_horizon; /* the horizon our last kicks looked at */
	uint64_t *bounds;       /* reliable: record starts (pub_bounds_*) */
	struct pub_sub *subs;
	unsigned nsubs;
	unsigned since_serve;
	uint64_t kicks, joined, left, dropped;
	bool fd_used;
};

/* --- subscribers --------------------------------------------------------- */

static void sub_free(struct pub_sub *s)
{
	os_close_sock(s->sock, s->sock_fds);
	os_close_bell(s->bell_rd, false);
	os_close_bell(s->kick, true);
	region_unmap(s->r, 0);
}

/* Remove subscriber @i: @drop says why (0: it left). */
static void pub_remove(struct evshm_pub *p, unsigned i, uint32_t drop)
{
	struct pub_sub *s = &p->subs[i];

	if (drop) {
		struct proto_msg m;

		/* The DROP first, then the count (release: a subscriber
		 * that sees the count move finds the DROP on its socket,
		 * protocol.md 8.6), both before anything it has not read is
		 * overwritten (the horizon's release fence orders it so): a
		 * reliable subscriber looks at this count after each copy. */
		proto_drop(&m, drop);
		fdp_send(s->sock, &m, sizeof(m), NULL, 0, 0);
		p->dropped++;
		atomic_store_explicit(&p->mine->dropped, p->dropped,
				      memory_order_release);
	} else {
		p->left++;
	}
	bell_del(&p->bell, s->bell_rd);
	bell_del(&p->bell, s->sock);
	epoll_ctl(p->epfd, EPOLL_CTL_DEL, s->sock, NULL);
	epoll_ctl(p->epfd, EPOLL_CTL_DEL, s->bell_rd, NULL);
	sub_free(s);
	p->subs[i] = p->subs[--p->nsubs];
	atomic_store_explicit(&p->mine->subscribers, p->nsubs,
			      memory_order_relaxed);
}

/* Subscribers whose socket or bell hung up (closed, died): gone.  The
 * bell's hang-up, without the socket's, is a subscriber that closed its end
 * and stayed: level-triggered in evshm_pub_fd(), it would keep an event
 * loop busy for ever.  One poll() for all of them; only on paths that wait
 * or serve. */
static void pub_reap(struct evshm_pub *p)
{
	struct pollfd pfd[64];

	for (unsigned base = 0; base < p->nsubs; base += 32) {
		unsigned n = p->nsubs - base < 32 ? p->nsubs - base : 32;

		for (unsigned i = 0; i < n; i++) {
			pfd[2 * i] = (struct pollfd){
				.fd = p->subs[base + i].sock, .events = POLLRDHUP
			};
			/* A hang-up is reported whatever is asked for; a
			 * subscriber that shut its end down has left too. */
			pfd[2 * i + 1] = (struct pollfd){
				.fd = p->subs[base + i].bell_rd,
				.events = POLLRDHUP
			};
		}
		if (os_poll(pfd, 2 * n, 0) <= 0)
			continue;
		for (unsigned i = n; i-- > 0;)
			if ((pfd[2 * i].revents | pfd[2 * i + 1].revents) &
			    (POLLRDHUP | POLLHUP | POLLERR))
				pub_remove(p, base + i, 0);
	}
}

/* The span of our own record at byte index @i (trusted: we wrote it). */
static uint32_t rec_span(const struct evshm_pub *p, uint64_t i,
			 uint64_t *seq)
{
	uint32_t pos = (uint32_t)i & (p->size - 1);
	const uint8_t *h = p->ring.data + pos;
	uint32_t len, flags;

	memcpy(&len, h, 4);
	memcpy(&flags, h + 4, 4);
	if (seq)
		memcpy(seq, h + 8, 8);
	if (flags & RING_F_PAD)
		return p->size - pos;
	return ring_align(RING_REC_HDR + len);
}

/*
 * Where records start, for sub_head(): bit g of the map is set iff a
 * record (or a pad) of what the ring holds now starts at byte
 * g * RING_ALIGN, or our tail is there (where the next one starts).  Kept
 * at each commit, in our private memory: checking that a head ends a
 * record is then one bit, instead of a walk through the headers of the
 * records it released (each a line the subscribers' CPU read last).
 */
static uint32_t bounds_bit(const struct evshm_pub *p, uint64_t i)
{
	return ((uint32_t)i & (p->size - 1)) / RING_ALIGN;
}

static void bounds_set(struct evshm_pub *p, uint64_t i)
{
	uint32_t g = bounds_bit(p, i);

	p->bounds[g / 64] |= UINT64_C(1) << (g % 64);
}

static bool bounds_test(const struct evshm_pub *p, uint64_t i)
{
	uint32_t g = bounds_bit(p, i);

	return p->bounds[g / 64] >> (g % 64) & 1;
}

/* Clear bits [g, g + n), inside the map. */
static void bounds_clear_run(uint64_t *w, uint32_t g, uint32_t n)
{
	while (n) {
		uint32_t b = g % 64, k = 64 - b < n ? 64 - b : n;
		uint64_t m = k == 64 ? ~UINT64_C(0) :
				       ((UINT64_C(1) << k) - 1) << b;

		w[g / 64] &= ~m;
		g += k;
		n -= k;
	}
}

/* A commit from @old to @new_ (a pad of @pad bytes first, if any): no
 * record starts strictly between them any more, except the one after
 * the pad, and the next one starts at @new_. */
static void bounds_commit(struct evshm_pub *p, uint64_t old, uint64_t new_,
			  uint32_t pad)
{
	if (!p->bounds)
		return; /* latest: nobody's head is checked */

	uint32_t slots = p->size / RING_ALIGN;
	uint32_t g = (bounds_bit(p, old) + 1) % slots;
	uint32_t n = (uint32_t)((new_ - old) / RING_ALIGN) - 1;

	if (g + n > slots) {
		bounds_clear_run(p->bounds, g, slots - g);
		n -= slots - g;
		g = 0;
	}
	bounds_clear_run(p->bounds, g, n);
	if (pad)
		bounds_set(p, old + pad);
	bounds_set(p, new_);
}

/*
 * A subscriber's head, from its region: 16-aligned, never past our tail,
 * and on the end of a record (it releases messages, not bytes), or it
 * broke the rules (dropped).  Only a move to a record's end is progress: a
 * head that crept into the middle of one would restart its stall clock
 * without freeing a message.  Between its last head and our tail the ring
 * is intact (reliable: pub_room), so the map above says where records
 * end.  One that moves back is ignored (no progress): a new subscriber's
 * region says 0 until it writes its start.  Returns 1 if it moved, 0 if
 * not, -EPROTO.
 */
static int sub_head(struct evshm_pub *p, struct pub_sub *s)
{
	uint64_t h = atomic_load_explicit(&s->r->head, memory_order_acquire);

	if ((h & (RING_ALIGN - 1)) || h > p->ring.tail)
		return ERR_PROTO(RING_HEAD);
	if (h <= s->head)
		return 0;
	if (!bounds_test(p, h))
		return ERR_PROTO(RING_HEAD);
	s->head = h;
	return 1;
}

/* --- the ring: room, horizon, history -------------------------------------- */

/*
 * About to write [tail, tail + need): everything below tail + need - size
 * may be overwritten.  Publish the new horizon and the oldest record still
 * whole *before* the first byte is written (release fence: a subscriber
 * that reads a byte we write next also sees the horizon, when it looks
 * again after an acquire fence).
 */
static void pub_advance_horizon(struct evshm_pub *p, uint32_t need)
{
	uint64_t h = p->ring.tail + need;

	if (h <= p->size)
		return;
	h -= p->size;
	if (h <= p->horizon)
		return;
	p->horizon = h;
	while (p->oldest < h && p->oldest < p->ring.tail)
		p->oldest += rec_span(p, p->oldest, NULL);
	if (p->oldest >= p->ring.tail) {
		/* No whole record is left: the next one is the oldest. */
		p->oldest = p->ring.tail;
		p->oldest_seq = p->ring.seq;
	} else {
		rec_span(p, p->oldest, &p->oldest_seq);
	}
	/* The sequence number first, then oldest with release: a subscriber
	 * reads them the other way round (acquire), so with this oldest it
	 * gets this number or a later one, and such a torn pair only makes
	 * it jump again.  Never an earlier one: when oldest is the tail, the
	 * header our last commit left there (5.2 step 5 keeps the header at
	 * the old oldest) carries exactly the earlier oldest_seq, and would
	 * pass for the record it expects. */
	atomic_store_explicit(&p->mine->oldest_seq, p->oldest_seq,
			      memory_order_relaxed);
	atomic_store_explicit(&p->mine->oldest, p->oldest, memory_order_release);
	/* Release: a subscriber that sees this horizon sees that oldest. */
	atomic_store_explicit(&p->mine->horizon, h, memory_order_release);
	/* And every byte written from here is ordered after the horizon. */
	atomic_thread_fence(memory_order_release);
}

/* Where a joiner asking for @k past messages starts: the oldest record
 * still whole, or the k-th newest if that is younger. */
static void pub_history(const struct evshm_pub *p, uint64_t k,
			uint64_t *start, uint64_t *seq)
{
	uint64_t want = p->ring.seq > k ? p->ring.seq - k : 1;
	uint64_t i = p->oldest, s;

	while (i < p->ring.tail) {
		uint32_t span = rec_span(p, i, &s);

		if (s >= want)
			break;
		i += span;
	}
	*start = i < p->ring.tail ? i : p->ring.tail;
	/* A pad's seq is its record's: the first message from here. */
	if (*start < p->ring.tail)
		rec_span(p, *start, seq);
	else
		*seq = p->ring.seq;
}

/*
 * Has @s held us up for the whole stall bound?  Only if we saw the bound
 * run out: a look that comes more than a grace after it means that we did
 * not run (the machine paused, or the application did not call), and
 * then, likely, neither did the subscriber; it gets that grace, once, of
 * time in which we do.  Stops the clock across a pause, not a stop.
 */
static bool pub_stalled(struct evshm_pub *p, struct pub_sub *s, uint64_t now)
{
	uint64_t bound = (uint64_t)p->opts.stall_timeout_ms * 1000000u;
	uint64_t grace = bound / 4;

	if (now - s->blocked_since < bound)
		return false;
	grace = grace < STALL_GRACE_MIN ? STALL_GRACE_MIN :
		grace > STALL_GRACE_MAX ? STALL_GRACE_MAX : grace;
	if (s->graced || now - s->blocked_since - bound <= grace)
		return true;
	s->graced = true;
	s->blocked_since = now - bound + grace;
	return false;
}

/*
 * Make room for @len bytes: the slowest subscriber's head limits it
 * (reliable), nothing does (latest, or nobody subscribed).  Refreshes the
 * heads; drops a subscriber that broke the rules or stalled us too long.
 * 0 room now, -EAGAIN not yet.
 */
static int pub_room(struct evshm_pub *p, size_t len, bool waiting)
{
	uint32_t need = ring_tx_need(&p->ring, len);
	uint64_t limit = p->ring.tail + need - p->size; /* heads must reach */
	uint64_t now = 0, min = p->ring.tail;

	if (p->ring.tail + need <= p->size)
		limit = 0;
	/* Every subscriber was at or past ring.head when we last looked (a
	 * joiner lowers it): room below it needs no look at their lines,
	 * which they write on every release. */
	if (limit <= p->ring.head)
		return 0;
	for (unsigned i = 0; i < p->nsubs;) {
		struct pub_sub *s = &p->subs[i];
		int moved;

		if (p->opts.policy == EVSHM_LATEST) {
			i++;
			continue;
		}
		moved = sub_head(p, s);
		if (moved < 0) {
			pub_remove(p, i, PROTO_DROP_INVALID);
			continue;
		}
		if (s->head >= limit) {
			s->blocked_since = 0;
		} else if (waiting || s->blocked_since) {
			/* Its clock runs from the first wait it held up, across
			 * calls (an event loop's timeout-0 retries included),
			 * until it moves or we stop needing it. */
			if (!now)
				now = os_now_ns();
			if (moved || !s->blocked_since) {
				s->blocked_since = now;
				s->graced = false;
			} else if (pub_stalled(p, s, now)) {
				pub_remove(p, i, PROTO_DROP_STALLED);
				continue;
			}
		}
		if (s->head < min)
			min = s->head;
		i++;
	}
	if (min < limit)
		return -EAGAIN;
	/* Room: what no subscriber still needs may be overwritten (latest:
	 * whatever anyone still reads). */
	if (p->opts.policy == EVSHM_LATEST)
		min = limit;
	p->ring.head = min > p->ring.head ? min : p->ring.head;
	return 0;
}

/* --- publish ---------------------------------------------------------------- */

static void pub_serve_some(struct evshm_pub *p);
static int pub_serve_one(struct evshm_pub *p, int timeout_ms);

struct pub_ctx {
	struct evshm_pub *p;
	size_t len;
	void **ptr;
	bool waiting;
};

/* Inlined into bell_try_wait()'s first try; bell_wait_after() calls it
 * too. */
static inline __attribute__((always_inline)) int pub_attempt(void *arg)
{
	struct pub_ctx *t = arg;
	struct evshm_pub *p = t->p;
	int res;

	if (p->ring.resv)
		return -EBUSY;
	if (t->len > p->ring.max_msg)
		return -EMSGSIZE;
	if (t->waiting) {
		pub_reap(p);
		pub_serve_some(p);
	}
	res = pub_room(p, t->len, t->waiting);
	if (res < 0)
		return res;
	pub_advance_horizon(p, ring_tx_need(&p->ring, t->len));
	return ring_tx_reserve(&p->ring, t->len, t->ptr);
}

static bool pub_ready(void *arg)
{
	struct pub_ctx *t = arg;
	struct evshm_pub *p = t->p;

	/* Has any subscriber moved since we last looked? */
	for (unsigned i = 0; i < p->nsubs; i++)
		if (atomic_load_explicit(&p->subs[i].r->head,
					 memory_order_relaxed) != p->subs[i].head)
			return true;
	return false;
}

static int pub_recheck(void *arg)
{
	struct pub_ctx *t = arg;

	/* Armed: from now on we wait, and a subscriber that holds us up is
	 * timed (pub_wake_by). */
	return pub_room(t->p, t->len, t->waiting);
}

static int pub_arm(void *arg)
{
	struct pub_ctx *t = arg;
	struct evshm_pub *p = t->p;
	uint64_t want = p->ring.tail + ring_tx_need(&p->ring, t->len) - p->size;
	bool barrier = false;

	t->waiting = true;
	ring_role_fence_on(&p->bell.role);
	atomic_store_explicit(&p->mine->space_event, want - 1,
			      memory_order_relaxed);
	/* Pairs with the fence of each subscriber's release. */
	atomic_thread_fence(memory_order_seq_cst);
	for (unsigned i = 0; i < p->nsubs; i++)
		if (atomic_load_explicit(&p->subs[i].r->rx_state,
					 memory_order_acquire) & WS_FENCELESS)
			barrier = true;
	if (barrier)
		return RING_BARRIER;
	return pub_recheck(arg);
}

static bool pub_spin_ok(void *arg, int cpu)
{
	struct pub_ctx *t = arg;
	struct evshm_pub *p = t->p;
	bool elsewhere = false;

	/* Spin only if no subscriber sleeps and one runs on another CPU:
	 * the one holding us up must be awake to free room. */
	for (unsigned i = 0; i < p->nsubs; i++) {
		const struct region *r = p->subs[i].r;
		uint32_t c = atomic_load_explicit(&r->cpu, memory_order_relaxed);

		if (atomic_load_explicit(&r->rx_state, memory_order_relaxed) &
		    WS_ASLEEP)
			return false;
		if (c == 0 || c - 1 != (uint32_t)cpu)
			elsewhere = true;
	}
	return elsewhere;
}

static void pub_nothing(void *arg)
{
	(void)arg;
}

static bool pub_never_gone(void *arg)
{
	(void)arg;
	return false;
}

/* While a subscriber holds us up, wake when its stall bound runs out. */
static uint64_t pub_wake_by(void *arg)
{
	struct pub_ctx *t = arg;
	struct evshm_pub *p = t->p;
	uint64_t by = UINT64_MAX;

	for (unsigned i = 0; i < p->nsubs; i++)
		if (p->subs[i].blocked_since)
			by = os_min_deadline(by, p->subs[i].blocked_since +
					     (uint64_t)p->opts.stall_timeout_ms *
						     1000000u);
	return by;
}

static const struct bell_ops pub_ops = {
	.attempt = pub_attempt,
	.ready = pub_ready,
	.arm = pub_arm,
	.recheck = pub_recheck,
	.worth_spinning = pub_spin_ok,
	.hangup = pub_nothing,
	.gone = pub_never_gone,
	.wake_by = pub_wake_by,
};

/* Admit the subscribers that are joining, without waiting, a bounded
 * number of connections at a time (a flood must not hold a publish). */
static void pub_serve_some(struct evshm_pub *p)
{
	for (int i = 0; i < 16 && pub_serve_one(p, 0) != -EAGAIN; i++)
		;
}

/* Empty every subscriber's bell (its kicks for room): bell.drained. */
static void pub_drain_members(void *arg)
{
	struct evshm_pub *p = arg;

	for (unsigned i = 0; i < p->nsubs; i++)
		os_bell_drain(p->subs[i].bell_rd);
}

/* Wake evshm_pub_fd() at @when (UINT64_MAX: never). */
static void pub_stall_timer(struct evshm_pub *p, uint64_t when)
{
	os_timer_at(p->stall_timer, when);
	p->stall_timer_set = when != UINT64_MAX;
}

/* A wait is over (room, or an error): nobody holds us up any more, the
 * kicks that answered it are stale. */
static void pub_stop_waiting(struct evshm_pub *p)
{
	/* With evshm_pub_fd() in use, empty the bells (pub_drain_members,
	 * through bell.drained), or it stays readable. */
	bell_disarm(&p->bell, p->fd_used);
	for (unsigned i = 0; i < p->nsubs; i++)
		p->subs[i].blocked_since = 0;
	if (p->stall_timer_set)
		pub_stall_timer(p, UINT64_MAX);
}

int evshm_pub_reserve(struct evshm_pub *p, size_t len, void **ptr,
		      int timeout_ms)
{
	struct pub_ctx t = { .p = p, .len = len, .ptr = ptr };
	int res;

	if (!p || !ptr)
		return -EINVAL;
	if (++p->since_serve >= SERVE_EVERY) {
		p->since_serve = 0;
		pub_reap(p);
		pub_serve_some(p);
	}
	res = bell_try_wait(&p->bell, &pub_ops, &t, pub_attempt, timeout_ms);
	if (res == -EAGAIN || res == -ETIMEDOUT) {
		/* Still waiting, as far as the subscribers know: stay armed
		 * (their kick must make evshm_pub_fd() readable) and keep the
		 * stall clocks; evshm_pub_fd() also wakes when one runs out. */
		if (p->fd_used)
			pub_stall_timer(p, pub_wake_by(&t));
		return res;
	}
	if (atomic_load_explicit(&p->bell.armed, memory_order_relaxed))
		pub_stop_waiting(p);
	return res;
}

/*
 * After our fence: kick every subscriber whose data_event the tail's move
 * [old, new_) passes, and (latest) every one whose event the horizon
 * passed since we last looked.  Such a one went to sleep at a head below
 * our tail, where nothing it expects shows: it jumped to an oldest torn
 * from two updates, as we were about to overwrite that place (8.5).  It
 * must look again and jump, and no move of the tail passes its event
 * again: only the horizon's move does, once.
 *
 * And (latest) once per arming, every one whose event lies below the
 * horizon: a subscriber that gave up its jumps (we lapped it as fast as
 * it jumped) and armed anyway, to wait in an event loop, armed below a
 * horizon that may already have passed it, and nothing else would ever
 * wake it.  An arming is told from the last one at the same head by the
 * event's low bits (8.7); kicked once, an event is kicked again only if
 * it is still there PUB_REKICK commits later: sixteen armings between two
 * of our looks bring the four bits back to the value we kicked last, and
 * nothing else would wake that arming.
 */
#define PUB_REKICK 1024u

static bool pub_horizon_moved(const struct evshm_pub *p)
{
	return p->opts.policy == EVSHM_LATEST && p->horizon > p->kicked_horizon;
}

static void pub_kick(struct evshm_pub *p, uint64_t old, uint64_t new_)
{
	uint64_t h0 = p->kicked_horizon;
	bool lap = pub_horizon_moved(p);
	bool latest = p->opts.policy == EVSHM_LATEST;

	p->kicked_horizon = p->horizon;
	/* Downwards: a subscriber that made its kick slow is removed at once
	 * (the last one takes its place, and was kicked already). */
	for (unsigned i = p->nsubs; i-- > 0;) {
		struct pub_sub *s = &p->subs[i];
		uint64_t ev = atomic_load_explicit(&s->r->data_event,
						   memory_order_relaxed);

		bool below = latest && ev < p->horizon;

		if (ring_passes(ev, old, new_) ||
		    (lap && ring_passes(ev, h0, p->horizon)) ||
		    (below && (ev != s->lap_ev ||
			       p->ring.seq - s->lap_seq >= PUB_REKICK))) {
			int r = bell_kick(s->kick, &s->watch);

			if (below) {
				s->lap_ev = ev;
				s->lap_seq = p->ring.seq;
			}
			s->kicks++;
			atomic_store_explicit(&p->mine->tx_kicks, ++p->kicks,
					      memory_order_relaxed);
			if (r == -EPROTO)
				pub_remove(p, i, PROTO_DROP_INVALID);
		}
	}
}

int evshm_pub_commit(struct evshm_pub *p, size_t len)
{
	uint64_t old, new_;
	bool asleep = false;
	int res;

	if (!p)
		return -EINVAL;
	uint32_t pad = p->ring.resv_pad;

	res = ring_tx_publish(&p->ring, len, 0, p->oldest, &old, &new_);
	if (res < 0)
		return res;
	bounds_commit(p, old, new_, pad);
	for (unsigned i = 0; i < p->nsubs; i++)
		if (atomic_load_explicit(&p->subs[i].r->rx_state,
					 memory_order_relaxed) & WS_ASLEEP)
			asleep = true;
	ring_role_after_publish(&p->bell.role, asleep);
	pub_kick(p, old, new_);
	return 0;
}

int evshm_pub_cancel(struct evshm_pub *p)
{
	if (!p || !p->ring.resv)
		return -EINVAL;
	ring_tx_cancel(&p->ring);
	/* The reservation may have moved the horizon past a sleeper (see
	 * pub_kick): the commit's fence and kicks, without a commit. */
	if (pub_horizon_moved(p)) {
		atomic_thread_fence(memory_order_seq_cst);
		pub_kick(p, p->ring.tail, p->ring.tail);
	}
	return 0;
}

int evshm_pub_send(struct evshm_pub *p, const void *buf, size_t len,
		   int timeout_ms)
{
	void *dst;
	int res;

	if (!buf && len)
		return -EINVAL;
	res = evshm_pub_reserve(p, len, &dst, timeout_ms);
	if (res < 0)
		return res;
	if (len)
		memcpy(dst, buf, len);
	return evshm_pub_commit(p, len);
}

/* --- joining ---------------------------------------------------------------- */

/* The most subscribers at once: the size of p->subs. */
static unsigned pub_max(const struct evshm_pub *p)
{
	return p->opts.max_clients ? p->opts.max_clients : SUBS_MAX;
}

static int pub_admit(void *arg, const struct conn *c)
{
	struct evshm_pub *p = arg;
	int res = opts_authorize(&p->opts, true, c->pid, c->uid, c->gid);

	if (res < 0)
		return res;
	return p->nsubs >= pub_max(p) ? -EUSERS : 0;
}

/* The handshake with a subscriber whose HELLO is readable (@s->sock). */
static int pub_handshake(struct evshm_pub *p, struct pub_sub *s)
{
	uint64_t deadline = os_deadline(p->opts.handshake_timeout_ms);
	int fds[PROTO_NFDS] = { -1, -1 };
	int ours[PROTO_NFDS];
	uint64_t start, start_seq;
	uint8_t id[PROTO_ID_SIZE];
	struct proto_msg m;
	int peer_bell, res;

	res = hs_recv(s->sock, PROTO_HELLO, &m, fds, PROTO_NFDS, deadline);
	if (res == 0 && m.kind != PROTO_KIND_TOPIC) {
		os_close_untrusted(fds, PROTO_NFDS);
		res = ERR_PROTO(HS_KIND);
	} else if (res == 0 && memcmp(m.id, p->id, sizeof(p->id)) != 0) {
		/* A subscriber names the topic it joins (READY told it). */
		os_close_untrusted(fds, PROTO_NFDS);
		res = ERR_PROTO(HS_ID);
	} else if (res == 0 && p->nsubs >= pub_max(p)) {
		/* Admitted while there was room, as were others that took it
		 * (the limit counts at admission and here). */
		os_close_untrusted(fds, PROTO_NFDS);
		res = -EUSERS;
	}
	if (res == 0) {
		res = os_check_bell(fds[PROTO_FD_BELL], s->pid, s->uid, s->gid);
		if (res == 0)
			res = region_attach(fds[PROTO_FD_REGION], REGION_SUB, 0,
					    &s->r);
		if (res < 0)
			os_close_untrusted(fds, PROTO_NFDS);
	}
	if (res < 0) {
		if (res != -ECONNRESET && res != -ETIMEDOUT)
			hs_reject(s->sock, res);
		return res;
	}
	fds[PROTO_FD_REGION] = os_close(fds[PROTO_FD_REGION]);
	s->kick = fds[PROTO_FD_BELL];
	res = bell_make(&s->bell_rd, &peer_bell);
	if (res < 0)
		return res;
	pub_history(p, m.param, &start, &start_seq);
	s->head = start;
	s->lap_ev = UINT64_MAX; /* no data_event is that and below a horizon */
	s->lap_seq = 0;
	/* Its history is not ours to overwrite (see pub_room). */
	if (start < p->ring.head)
		p->ring.head = start;
	s->start_seq = start_seq;
	memcpy(id, m.id, sizeof(id));
	ours[PROTO_FD_REGION] = p->region_fd;
	ours[PROTO_FD_BELL] = peer_bell;
	proto_welcome(&m, PROTO_KIND_TOPIC, 0, p->size, id, start, start_seq);
	res = hs_send(s->sock, &m, ours, PROTO_NFDS, deadline);
	/* Sent or not, only the subscriber holds it now: its close or death
	 * hangs our bell up. */
	os_close(peer_bell);
	if (res < 0)
		return res;
	/* Topics carry no descriptors after the handshake.  Refused from
	 * now on; but the subscriber may have queued some since its HELLO,
	 * so its close still looks (os_close_sock). */
	(void)os_passrights(s->sock, false);
	s->sock_fds = true;
	if ((res = bell_add(&p->bell, s->bell_rd, BELL_TAG_MEMBER)) < 0 ||
	    (res = bell_add_sock(&p->bell, s->sock, BELL_TAG_MEMBER)) < 0 ||
	    (res = os_epoll_add(p->epfd, s->sock, EPOLLRDHUP, 0)) < 0 ||
	    (res = os_epoll_add(p->epfd, s->bell_rd, EPOLLIN | EPOLLRDHUP, 0)) < 0)
		return res;
	return 0;
}

/* Take on one subscriber that is ready (or the listener's error). */
static int pub_serve_one(struct evshm_pub *p, int timeout_ms)
{
	struct pub_sub s = { .sock = -1, .bell_rd = -1, .kick = -1 };
	struct conn cn;
	int res = listener_next(&p->l, &cn, timeout_ms);

	if (res < 0)
		return res;
	s.sock = cn.sock;
	s.sock_fds = cn.fds_possible;
	s.pid = cn.pid;
	s.uid = cn.uid;
	s.gid = cn.gid;
	res = pub_handshake(p, &s);
	if (res < 0) {
		bell_del(&p->bell, s.bell_rd);
		bell_del(&p->bell, s.sock);
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, s.sock, NULL);
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, s.bell_rd, NULL);
		sub_free(&s);
		return res;
	}
	p->subs[p->nsubs++] = s;
	p->joined++;
	atomic_store_explicit(&p->mine->subscribers, p->nsubs,
			      memory_order_relaxed);
	return 0;
}

int evshm_pub_serve(struct evshm_pub *p, int timeout_ms)
{
	uint64_t deadline = os_deadline(timeout_ms);
	bool any = false;

	if (!p)
		return -EINVAL;
	pub_reap(p);
	/* An event loop may have woken for a subscriber's room kick that no
	 * publish waited for: empty the bells, or evshm_pub_fd() stays
	 * readable. */
	if (p->fd_used)
		pub_drain_members(p);
	for (;;) {
		int ms = any ? 0 : os_remaining_ms(deadline);
		int res = pub_serve_one(p, ms);

		if (res == 0) {
			any = true;
			continue;
		}
		if (res == -EAGAIN || res == -ETIMEDOUT)
			break;
		if (res == -ENOMEM || res == -EMFILE || res == -ENFILE)
			return res;
		/* One subscriber failed its handshake: the others go on. */
		any = true;
	}
	return (int)p->nsubs;
}

/* --- life ------------------------------------------------------------------- */

int evshm_pub_open(struct evshm_pub **out, const char *name,
		   const struct evshm_opts *opts)
{
	struct evshm_pub *p;
	int res;

	if (!out || !name)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->region_fd = p->epfd = p->stall_timer = -1;
	bell_init(&p->bell);
	p->l.epfd = p->l.timer = p->l.ep.fd = -1;
	res = opts_resolve(&p->opts, opts);
	if (res < 0)
		goto out_free;
	p->size = p->opts.ring_size;
	p->subs = calloc(pub_max(p), sizeof(*p->subs));
	if (!p->subs) {
		res = -ENOMEM;
		goto out_free;
	}
	snprintf(p->name, sizeof(p->name), "%s", name);
	os_random(p->id, sizeof(p->id));
	struct region_info ri = { .kind = REGION_PUB, .role = REGION_SERVER,
				  .ring_size = p->size, .id = p->id,
				  .name = name };
	res = region_create(&ri, &p->mine, &p->region_fd);
	if (res < 0)
		goto out_free;
	ring_tx_init(&p->ring, p->mine, p->size);
	if (p->opts.policy != EVSHM_LATEST) {
		p->bounds = calloc(p->size / RING_ALIGN / 64, sizeof(uint64_t));
		if (!p->bounds) {
			res = -ENOMEM;
			goto out_free;
		}
		bounds_set(p, p->ring.tail);
	}
	p->oldest_seq = p->ring.seq;
	atomic_store_explicit(&p->mine->oldest_seq, p->oldest_seq,
			      memory_order_relaxed);
	res = bell_open(&p->bell, -1, -1, p->mine, &p->mine->tx_state,
			&p->mine->tx_sleeps, &p->mine->tx_spins,
			p->opts.spin_ns, os_membarrier_register() == 0);
	if (res < 0)
		goto out_free;
	/* We sleep on every subscriber's bell, not on one of our own: when
	 * the bell code empties "ours" (every BELL_DRAIN_EVERY armings), it
	 * is theirs that must be emptied. */
	p->bell.drained = pub_drain_members;
	p->bell.drained_arg = p;
	struct listener_policy pol = {
		.admit = pub_admit,
		.arg = p,
		.handshake_timeout_ms = p->opts.handshake_timeout_ms,
	};
	proto_ready(&pol.ready, PROTO_KIND_TOPIC, 0, p->size,
		    p->opts.policy == EVSHM_LATEST ? PROTO_POLICY_LATEST :
						     PROTO_POLICY_RELIABLE,
		    p->id);
	res = listener_open(&p->l, name, p->opts.mode, &pol);
	if (res < 0)
		goto out_free;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->epfd < 0) {
		res = -errno;
		goto out_free;
	}
	p->stall_timer = os_timer();
	if (p->stall_timer < 0) {
		res = p->stall_timer;
		goto out_free;
	}
	if ((res = os_epoll_add(p->epfd, p->l.epfd, EPOLLIN, 0)) < 0 ||
	    (res = os_epoll_add(p->epfd, p->stall_timer, EPOLLIN, 0)) < 0)
		goto out_free;
	*out = p;
	return 0;

out_free:
	evshm_pub_close(p);
	return res;
}

void evshm_pub_close(struct evshm_pub *p)
{
	if (!p)
		return;
	while (p->nsubs)
		pub_remove(p, p->nsubs - 1, 0);
	if (p->l.epfd >= 0)
		listener_close(&p->l);
	os_close(p->epfd);
	os_close(p->stall_timer);
	bell_close(&p->bell);
	os_close(p->region_fd);
	region_unmap(p->mine, p->size);
	free(p->bounds);
	free(p->subs);
	free(p);
}

int evshm_pub_fd(struct evshm_pub *p)
{
	if (!p)
		return -EINVAL;
	p->fd_used = true;
	return p->epfd;
}

size_t evshm_pub_max_msg(const struct evshm_pub *p)
{
	return p ? ring_max_msg(p->size) : 0;
}

int evshm_pub_subscribers(const struct evshm_pub *p,
			  struct evshm_sub_info *out, unsigned n)
{
	if (!p || (n && !out))
		return -EINVAL;
	for (unsigned i = 0; i < p->nsubs && i < n; i++) {
		const struct pub_sub *s = &p->subs[i];
		const struct region *r = s->r;
		/* The subscriber's own figures: shown, never trusted. */
		uint64_t recv = atomic_load_explicit(&r->msgs_recv,
						     memory_order_relaxed);
		uint64_t lost = atomic_load_explicit(&r->lost,
						     memory_order_relaxed);
		/* Published since its start: a late joiner was never given
		 * what came before (history aside). */
		uint64_t sent = p->ring.seq - s->start_seq;

		out[i] = (struct evshm_sub_info){
			.pid = s->pid,
			.uid = s->uid,
			.gid = s->gid,
			.asleep = !!(atomic_load_explicit(&r->rx_state,
							  memory_order_relaxed) &
				     WS_ASLEEP),
			.msgs_recv = recv,
			.bytes_recv = atomic_load_explicit(&r->bytes_recv,
							   memory_order_relaxed),
			.lost = lost,
			.lag = sent > recv + lost ? sent - recv - lost : 0,
			.kicks = s->kicks,
		};
	}
	return (int)p->nsubs;
}

void evshm_pub_stats(const struct evshm_pub *p, struct evshm_pub_stats *st)
{
	if (!p || !st)
		return;
	*st = (struct evshm_pub_stats){
		.msgs_sent = p->ring.msgs,
		.bytes_sent = p->ring.bytes,
		.kicks_sent = p->kicks,
		.sleeps = p->bell.nsleeps,
		.joined = p->joined,
		.left = p->left,
		.dropped = p->dropped,
		.subscribers = p->nsubs,
	};
}

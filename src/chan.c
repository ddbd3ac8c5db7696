/* SPDX-License-Identifier: MIT */
/*
 * chan.c: the public channel once it is up (chan_setup.c sets it up): the
 * data path, composed of the ring (what), the bells (when) and fdpass
 * (descriptors riding with messages).
 */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "chan.h"
#include "err.h"
#include "evshm.h"
#include "fdpass.h"
#include "os.h"
#include "proto.h"
#include "ring.h"

void listen_state_put(struct listen_state *ls)
{
	if (ls && atomic_fetch_sub(&ls->refs, 1) == 1)
		free(ls);
}

const char *evshm_version(void)
{
	return EVSHM_VERSION_STRING;
}

const char *evshm_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case -EPIPE: return "peer has gone";
	case -ECONNRESET: return "peer has gone during the handshake";
	case -ECONNABORTED: return "dropped by the publisher (stalled)";
	case -EPROTO: return "peer broke the protocol";
	case -EPROTONOSUPPORT: return "incompatible evshm protocol version";
	case -EPROTOTYPE: return "a topic where a channel was expected, or back";
	case -EFBIG: return "ring size over the limit";
	case -EUSERS: return "server has all the clients it takes";
	case -EACCES: return "access denied";
	case -EMSGSIZE: return "message too large";
	case -EAGAIN: return "would wait (timeout 0)";
	case -ETIMEDOUT: return "timed out";
	case -EADDRINUSE: return "name in use by a live server";
	case -ECONNREFUSED: return "nobody listens at that name";
	case -EOPNOTSUPP: return "the peer does not accept descriptors";
	case -ESTALE: return "the message was overwritten while peeked";
	default: {
		const char *s = strerrordesc_np(err < 0 ? -err : err);
		return s ? s : "unknown error";
	}
	}
}

/* --- life ------------------------------------------------------------------ */

struct evshm_chan *chan_new(void)
{
	struct evshm_chan *c = aligned_alloc(64, (sizeof(*c) + 63) & ~(size_t)63);
	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->sock = c->region_fd = c->epfd = -1;
	c->bell_rd = c->bell_peer = c->kick = c->poke = -1;
	bell_init(&c->tx.bell);
	bell_init(&c->rx.bell);
	return c;
}

/*
 * We have one bell, the peer kicks it, and both our roles sleep on it: the
 * send side for room, the receive side for data.  Each empties it now and
 * then (every 64 armings, and after each wait once evshm_fd() is in use,
 * so that the descriptor does not stay readable), and may so swallow the
 * kick that answered the other's arming: a lost wakeup, for a sleeper in
 * another thread or for an event loop.  So after emptying it a role looks
 * whether the other is armed and its event has passed (the kick for it
 * may have been among those taken) and then wakes it through a private
 * eventfd that both sleep on, and evshm_fd() watches.  The look is exact
 * (a poke never makes evshm_fd() readable for nothing) and costs nothing
 * per message: drains are rare.  The loads follow the drain and a fence:
 * a kick we did not take comes after them, and wakes the other itself.
 */
static bool rx_due(const struct evshm_chan *c)
{
	/* Not the peer's tail: that one is only informative.  The record
	 * the receive side armed for (a stale arming's answer, at worst: a
	 * spurious wakeup). */
	return atomic_load_explicit(&c->rx.bell.armed, memory_order_relaxed) &&
	       ring_rx_published(&c->rx.ring,
				 atomic_load_explicit(&c->mine->data_event,
						      memory_order_relaxed),
				 atomic_load_explicit(&c->rx.armed_seq,
						      memory_order_relaxed));
}

static bool tx_due(const struct evshm_chan *c)
{
	return atomic_load_explicit(&c->tx.bell.armed, memory_order_relaxed) &&
	       atomic_load_explicit(&c->peer->head, memory_order_relaxed) >
		       atomic_load_explicit(&c->mine->space_event,
					    memory_order_relaxed);
}

static void chan_drained(struct evshm_chan *c,
			 bool (*other_due)(const struct evshm_chan *))
{
	/* Ours too: whoever drains looks at its own condition next.  Read
	 * only if a poke was written (flagged after its write, so a poke
	 * whose flag we missed is cleared by the next drain). */
	if (atomic_exchange(&c->poked, false))
		os_event_clear(c->poke);
	atomic_thread_fence(memory_order_seq_cst);
	if (other_due(c)) {
		os_event_signal(c->poke);
		atomic_store(&c->poked, true);
	}
}

static void tx_drained(void *arg)
{
	chan_drained(arg, rx_due);
}

static void rx_drained(void *arg)
{
	chan_drained(arg, tx_due);
}

int chan_start(struct evshm_chan *c)
{
	struct region *m = c->mine;
	bool may_skip = os_membarrier_register() == 0;
	int res;

	/* Sent: from now on only the peer holds it, and its close or death
	 * hangs our bell up. */
	c->bell_peer = os_close(c->bell_peer);
	ring_tx_init(&c->tx.ring, m, c->tx_size);
	ring_rx_init(&c->rx.ring, m, region_cdata(c->peer), c->rx_size);
	res = bell_open(&c->tx.bell, c->bell_rd, c->sock, m, &m->tx_state,
			&m->tx_sleeps, &m->tx_spins, c->spin_ns, may_skip);
	if (res < 0)
		return res;
	res = bell_open(&c->rx.bell, c->bell_rd, c->sock, m, &m->rx_state,
			&m->rx_sleeps, &m->rx_spins, c->spin_ns, may_skip);
	if (res < 0)
		return res;
	c->poke = os_event();
	if (c->poke < 0)
		return c->poke;
	c->tx.bell.drained = tx_drained;
	c->rx.bell.drained = rx_drained;
	c->tx.bell.drained_arg = c->rx.bell.drained_arg = c;
	if ((res = bell_add(&c->tx.bell, c->poke, BELL_TAG_BELL)) < 0 ||
	    (res = bell_add(&c->rx.bell, c->poke, BELL_TAG_BELL)) < 0)
		return res;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->epfd < 0)
		return -errno;
	if ((res = os_epoll_add(c->epfd, c->bell_rd, EPOLLIN | EPOLLRDHUP, 0)) < 0 ||
	    (res = os_epoll_add(c->epfd, c->poke, EPOLLIN, 0)) < 0 ||
	    (res = os_epoll_add(c->epfd, c->sock, EPOLLRDHUP, 0)) < 0)
		return res;
	return 0;
}

void evshm_close(struct evshm_chan *c)
{
	if (!c)
		return;
	os_close(c->epfd);
	bell_close(&c->tx.bell);
	bell_close(&c->rx.bell);
	/* Sockets whose queues may hold descriptors the peer sent (where
	 * SO_PASSRIGHTS cannot refuse them): closed with care. */
	os_close_bell(c->bell_rd, false);
	os_close_bell(c->kick, true);
	os_close(c->bell_peer);
	os_close(c->poke);
	os_close(c->region_fd);
	/* Descriptors of a peeked message nobody took, and whatever the
	 * peer may have queued on the socket: the peer chose them. */
	os_close_untrusted(c->rx.fds, c->rx.nfds);
	os_close_sock(c->sock, c->sock_fds);
	region_unmap(c->mine, c->tx_size);
	region_unmap(c->peer, c->rx_size);
	if (c->ls) {
		atomic_fetch_sub(&c->ls->clients, 1);
		listen_state_put(c->ls);
	}
	free(c);
}

/* --- errors and the hang-up ------------------------------------------------ */

int chan_fail(struct evshm_chan *c, int res)
{
	if (res == -EPROTO) {
		int zero = 0;
		unsigned why = err_last();

		/* The first failure sticks, with its reason. */
		if (atomic_compare_exchange_strong(&c->err, &zero, res)) {
			atomic_store(&c->reason, why);
			region_set_error(c->mine, res, why);
		}
	}
	return res;
}

static int chan_err(struct evshm_chan *c)
{
	return atomic_load_explicit(&c->err, memory_order_relaxed);
}

/*
 * The hang-up flag is set by whichever thread saw the socket (or a bell)
 * hang up: after the peer's last store into its region, which the kernel
 * ordered before its close and our wakeup.  Release here and acquire in
 * chan_hup() carry that to the other thread: a receive side that sees the
 * flag also sees the dead peer's last committed record, so "empty after a
 * hang-up" is final.
 */
static void chan_set_hup(struct evshm_chan *c)
{
	atomic_store_explicit(&c->hup, 1, memory_order_release);
}

static bool chan_hup(struct evshm_chan *c)
{
	return atomic_load_explicit(&c->hup, memory_order_acquire);
}

static bool fd_used(struct evshm_chan *c)
{
	return atomic_load_explicit(&c->fd_used, memory_order_relaxed);
}

/*
 * Worth spinning?  The peer must run on another CPU than @cpu, and be
 * awake, or have been kicked by us since this role last waited (it is
 * waking up to answer: a ping-pong whose sides both slept would otherwise
 * never leave that state).  Its own say: a hostile peer can only waste our
 * spin budget.
 */
static bool peer_elsewhere(struct evshm_chan *c, struct bell *b, int cpu)
{
	const struct region *peer = c->peer;
	uint32_t pcpu = atomic_load_explicit(&peer->cpu, memory_order_relaxed);
	uint32_t st = atomic_load_explicit(&peer->rx_state, memory_order_relaxed) |
		      atomic_load_explicit(&peer->tx_state, memory_order_relaxed);
	uint64_t kicks =
		atomic_load_explicit(&c->mine->tx_kicks, memory_order_relaxed) +
		atomic_load_explicit(&c->mine->rx_kicks, memory_order_relaxed);
	bool kicked = kicks != b->kicks_seen;

	b->kicks_seen = kicks;
	if (pcpu && pcpu - 1 == (uint32_t)cpu)
		return false;
	return !(st & WS_ASLEEP) || kicked;
}

/* Kick the peer for one of our roles; a peer that made the kick slow
 * (bell_kick) broke the channel, one whose bell is gone has gone. */
static void kick(struct evshm_chan *c, _Atomic uint64_t *counter,
		 uint64_t *n, unsigned *watch)
{
	int res = bell_kick(c->kick, watch);

	atomic_store_explicit(counter, ++*n, memory_order_relaxed);
	if (res == -EPROTO)
		chan_fail(c, res);
	else if (res < 0)
		/* The peer closed or shut down its bell: it has gone. */
		chan_set_hup(c);
}

/* --- send side ------------------------------------------------------------ */

/* Every wait context of a channel starts with the channel and the bell of
 * the side that waits: the callbacks the two sides share (spin, hang-up)
 * read only those. */
struct chan_ctx {
	struct evshm_chan *c;
	struct bell *b;
};

struct tx_ctx {
	struct chan_ctx cc;
	size_t len;
	void **ptr;
};

/* Inlined into bell_try_wait()'s first try; bell_wait_after() calls it
 * too. */
static inline __attribute__((always_inline)) int
tx_attempt(void *arg)
{
	struct tx_ctx *t = arg;
	struct evshm_chan *c = t->cc.c;
	int res = chan_err(c);

	if (res)
		return res;
	if (chan_hup(c))
		return -EPIPE;
	res = ring_tx_reserve(&c->tx.ring, t->len, t->ptr);
	if (res == -EAGAIN) {
		/* Out of the room we knew of: look at the consumer's head. */
		res = ring_tx_refresh_head(&c->tx.ring, c->peer);
		if (res == 0)
			res = ring_tx_reserve(&c->tx.ring, t->len, t->ptr);
	}
	return chan_fail(c, res);
}

/* Room may have come when the consumer's head moved. */
static void tx_watch(void *arg, const uint64_t **word, uint64_t *val,
		     bool *ne)
{
	struct evshm_chan *c = ((struct tx_ctx *)arg)->cc.c;

	*word = (const uint64_t *)&c->peer->head;
	*val = c->tx.ring.head;
	*ne = true;
}

static int tx_arm(void *arg)
{
	struct tx_ctx *t = arg;
	struct evshm_chan *c = t->cc.c;

	ring_role_fence_on(&c->tx.bell.role);
	return chan_fail(c, ring_tx_arm(&c->tx.ring, c->peer, t->len));
}

static int tx_recheck(void *arg)
{
	struct tx_ctx *t = arg;
	struct evshm_chan *c = t->cc.c;

	return chan_fail(c, ring_tx_check(&c->tx.ring, c->peer, t->len));
}

static bool chan_spin_ok(void *arg, int cpu)
{
	struct chan_ctx *cc = arg;

	return peer_elsewhere(cc->c, cc->b, cpu);
}

static void chan_hangup(void *arg)
{
	chan_set_hup(((struct chan_ctx *)arg)->c);
}

static bool chan_gone(void *arg)
{
	return chan_hup(((struct chan_ctx *)arg)->c);
}

static const struct bell_ops tx_ops = {
	.attempt = tx_attempt,
	.watch = tx_watch,
	.arm = tx_arm,
	.recheck = tx_recheck,
	.worth_spinning = chan_spin_ok,
	.hangup = chan_hangup,
	.gone = chan_gone,
};

/* Wait on one side's bell; once done, disarm it (and empty it, if
 * evshm_fd() is in use, so that the descriptor does not stay readable). */
static inline int chan_wait(struct evshm_chan *c, struct bell *b,
			    const struct bell_ops *ops, void *ctx,
			    int (*attempt)(void *), int timeout_ms)
{
	int res = bell_try_wait(b, ops, ctx, attempt, timeout_ms);

	if (res == 0)
		bell_disarm(b, fd_used(c));
	return res;
}

static int chan_reserve(struct evshm_chan *c, size_t len, void **ptr,
			int timeout_ms)
{
	struct tx_ctx t = { { c, &c->tx.bell }, len, ptr };

	return chan_wait(c, &c->tx.bell, &tx_ops, &t, tx_attempt, timeout_ms);
}

int evshm_reserve(struct evshm_chan *c, size_t len, void **ptr, int timeout_ms)
{
	if (!c || !ptr)
		return -EINVAL;
	return chan_reserve(c, len, ptr, timeout_ms);
}

/*
 * evshm_fd() watches the socket only for the hang-up.  But the descriptors
 * of evshm_send_fds() travel in the socket's send buffer, which fills up
 * long before the ring does (a few hundred messages with descriptors): a
 * non-blocking send then fails with -EAGAIN while the ring has room, so no
 * space bell is armed, and an event loop waiting on evshm_fd() for room
 * would wait forever.  From such a failure until the next commit,
 * evshm_fd() also reports room in the socket (EPOLLOUT); the two
 * epoll_ctl() calls happen only in that state, never per message.
 */
static void chan_watch_sock_out(struct evshm_chan *c, bool on)
{
	struct epoll_event ev = { .events = EPOLLRDHUP | (on ? EPOLLOUT : 0),
				  .data.fd = c->sock };

	if (c->tx.sock_out != on &&
	    epoll_ctl(c->epfd, EPOLL_CTL_MOD, c->sock, &ev) == 0)
		c->tx.sock_out = on;
}

/* After a commit that moved our tail from @old to @new_. */
static inline void chan_committed(struct evshm_chan *c, uint64_t old,
				  uint64_t new_)
{
	if (c->tx.sock_out)
		chan_watch_sock_out(c, false);
	if (ring_tx_wake(&c->tx.bell.role, c->peer, old, new_))
		kick(c, &c->mine->tx_kicks, &c->tx.kicks, &c->tx.watch);
}

static inline int chan_commit(struct evshm_chan *c, size_t len,
			      uint32_t flags)
{
	uint64_t old, new_;
	int res = ring_tx_publish(&c->tx.ring, len, flags,
				  c->tx.ring.head, &old, &new_);

	if (res < 0)
		return res;
	chan_committed(c, old, new_);
	return 0;
}

int evshm_commit(struct evshm_chan *c, size_t len)
{
	return c ? chan_commit(c, len, 0) : -EINVAL;
}

int evshm_cancel(struct evshm_chan *c)
{
	if (!c || !c->tx.ring.resv)
		return -EINVAL;
	ring_tx_cancel(&c->tx.ring);
	return 0;
}

/*
 * Descriptors cannot travel through shared memory: they go on the socket,
 * *after* the ring room is secured (so that a send that gives up leaves
 * nothing behind) and *before* the ring record that refers to them is
 * committed.  A Unix socket send queues the message on the receiver before
 * it returns, so by the time the consumer sees the record (flag
 * RING_F_FDS) its descriptors are waiting, in the same order as the
 * records.
 */
int evshm_send_fds(struct evshm_chan *c, const void *buf, size_t len,
		   const int *fds, unsigned nfds, int timeout_ms)
{
	struct proto_fds m;
	void *p;
	int res;

	if (!c || !fds || nfds == 0 || nfds > EVSHM_MAX_FDS || (!buf && len))
		return -EINVAL;
	if (!(c->peer_features & PROTO_F_FDS))
		return -EOPNOTSUPP;
	uint64_t deadline = os_deadline(timeout_ms);
	res = chan_reserve(c, len, &p, timeout_ms);
	if (res < 0)
		return res;
	proto_fds(&m, nfds, c->tx.fd_seq);
	res = fdp_send(c->sock, &m, sizeof(m), fds, nfds,
		       os_remaining_ms(deadline));
	if (res < 0) {
		ring_tx_cancel(&c->tx.ring);
		/* EPERM: the kernel refused the descriptors (SO_PASSRIGHTS):
		 * a peer that said it takes them turns that off only as it
		 * closes. */
		if (res == -EPIPE || res == -ECONNRESET || res == -EPERM) {
			chan_set_hup(c);
			return -EPIPE;
		}
		if (res == -EAGAIN && timeout_ms == 0)
			chan_watch_sock_out(c, true); /* see there */
		return res == -EAGAIN && timeout_ms != 0 ? -ETIMEDOUT : res;
	}
	c->tx.fd_seq++;
	if (len)
		memcpy(p, buf, len);
	return chan_commit(c, len, RING_F_FDS);
}

/* evshm_send() the long way: wait for room, then copy and commit.  Out of
 * line, so that the way in one go saves and restores few registers. */
static __attribute__((noinline)) int
chan_send_wait(struct evshm_chan *c, const void *buf, size_t len,
	       int timeout_ms)
{
	void *p;
	int res = chan_reserve(c, len, &p, timeout_ms);

	if (res < 0)
		return res;
	if (len)
		memcpy(p, buf, len);
	return chan_commit(c, len, 0);
}

int evshm_send(struct evshm_chan *c, const void *buf, size_t len, int timeout_ms)
{
	uint64_t old, new_;

	if (!c || (!buf && len))
		return -EINVAL;
	/* Most sends: in one go, as the wait's first attempt and the commit
	 * would do it (performance.md, "The code of a hop"). */
	if (!chan_err(c) && !chan_hup(c) &&
	    ring_tx_put(&c->tx.ring, buf, len, c->tx.ring.head, &old,
			&new_) == 0) {
		bell_disarm(&c->tx.bell, fd_used(c));
		chan_committed(c, old, new_);
		return 0;
	}
	return chan_send_wait(c, buf, len, timeout_ms);
}

/* --- receive side ---------------------------------------------------------- */

/* The record just peeked says descriptors wait on the socket: they must
 * be there already (see evshm_send_fds), else the peer lied. */
static int chan_load_fds(struct evshm_chan *c)
{
	unsigned char buf[sizeof(struct proto_fds) + 1];
	unsigned n = 0;
	int res;

	if (!(c->features & PROTO_F_FDS))
		return ERR_PROTO(FDS_UNWANTED);
	res = fdp_recv(c->sock, buf, sizeof(buf), c->rx.fds, FDP_MAX_FDS, &n, 0);
	if (res < 0)
		return ERR_PROTO(FDS_MISSING);
	if (n == 0 || proto_parse_fds(buf, (size_t)res, n, c->rx.fd_seq) < 0) {
		os_close_untrusted(c->rx.fds, n);
		return ERR_PROTO(FDS_MSG);
	}
	c->rx.nfds = n;
	c->rx.fds_loaded = true;
	c->rx.fd_seq++;
	return 0;
}

/* Close the peeked message's descriptors that nobody took. */
static void chan_drop_fds(struct evshm_chan *c)
{
	os_close_untrusted(c->rx.fds, c->rx.nfds);
	c->rx.nfds = 0;
	c->rx.fds_loaded = false;
}

struct rx_ctx {
	struct chan_ctx cc;
	const void **ptr;
	size_t *len;
};

/* Inlined into bell_try_wait()'s first try; bell_wait_after() calls it
 * too. */
static inline __attribute__((always_inline)) int
rx_attempt(void *arg)
{
	struct rx_ctx *r = arg;
	struct evshm_chan *c = r->cc.c;
	uint32_t flags;
	int res = chan_err(c);

	if (res)
		return res;
	res = ring_rx_peek(&c->rx.ring, r->ptr, r->len, &flags);
	if (res == 0 && (flags & RING_F_FDS) && !c->rx.fds_loaded)
		res = chan_load_fds(c);
	return chan_fail(c, res);
}

/* Data has come when the record at our head shows the seq we expect. */
static void rx_watch(void *arg, const uint64_t **word, uint64_t *val,
		     bool *ne)
{
	struct evshm_chan *c = ((struct rx_ctx *)arg)->cc.c;

	*word = ring_rx_seq_word(&c->rx.ring);
	*val = c->rx.ring.seq;
	*ne = false;
}

static int rx_arm(void *arg)
{
	struct evshm_chan *c = ((struct rx_ctx *)arg)->cc.c;

	ring_role_fence_on(&c->rx.bell.role);
	atomic_store_explicit(&c->rx.armed_seq, c->rx.ring.seq,
			      memory_order_relaxed);
	return ring_rx_arm(&c->rx.ring, c->peer);
}

static int rx_recheck(void *arg)
{
	return ring_rx_ready(&((struct rx_ctx *)arg)->cc.c->rx.ring) ? 0 :
								       -EAGAIN;
}

static const struct bell_ops rx_ops = {
	.attempt = rx_attempt,
	.watch = rx_watch,
	.arm = rx_arm,
	.recheck = rx_recheck,
	.worth_spinning = chan_spin_ok,
	.hangup = chan_hangup,
	.gone = chan_gone,
};

static int chan_peek(struct evshm_chan *c, const void **ptr, size_t *len,
		     int timeout_ms)
{
	struct rx_ctx r = { { c, &c->rx.bell }, ptr, len };

	return chan_wait(c, &c->rx.bell, &rx_ops, &r, rx_attempt, timeout_ms);
}

int evshm_peek(struct evshm_chan *c, const void **ptr, size_t *len,
	       int timeout_ms)
{
	if (!c || !ptr || !len)
		return -EINVAL;
	return chan_peek(c, ptr, len, timeout_ms);
}

/* Never waits, so no chan_wait(): what stops the run (a gone peer, a
 * record with descriptors, a bad one) is the next evshm_peek()'s. */
int evshm_peek_next(struct evshm_chan *c, const void **ptr, size_t *len)
{
	if (!c || !ptr || !len)
		return -EINVAL;
	return ring_rx_peek_next(&c->rx.ring, ptr, len);
}

/* After a release that moved our head from @old to @new_. */
static inline void chan_released(struct evshm_chan *c, uint64_t old,
				 uint64_t new_)
{
	if (ring_rx_wake(&c->rx.bell.role, c->peer, old, new_))
		kick(c, &c->mine->rx_kicks, &c->rx.kicks, &c->rx.watch);
}

static inline int chan_release(struct evshm_chan *c)
{
	uint64_t old, new_;
	int res = ring_rx_release(&c->rx.ring, &old, &new_);

	if (res < 0)
		return res;
	if (c->rx.fds_loaded)
		chan_drop_fds(c);
	chan_released(c, old, new_);
	return 0;
}

int evshm_release(struct evshm_chan *c)
{
	return c ? chan_release(c) : -EINVAL;
}

/* evshm_recv() the long way: wait, judge, copy, release (out of line, as
 * chan_send_wait()). */
static __attribute__((noinline)) int
chan_recv_wait(struct evshm_chan *c, void *buf, size_t cap, int timeout_ms)
{
	const void *p;
	size_t len;
	int res = chan_peek(c, &p, &len, timeout_ms);

	if (res < 0)
		return res;
	if (len > cap)
		return -EMSGSIZE;
	if (len)
		memcpy(buf, p, len);
	res = chan_release(c);
	return res < 0 ? res : (int)len;
}

int evshm_recv(struct evshm_chan *c, void *buf, size_t cap, int timeout_ms)
{
	uint64_t old, new_;
	int res;

	if (!c || (!buf && cap))
		return -EINVAL;
	if (ring_rx_many(&c->rx.ring))
		return -EBUSY;
	/* Most receives: a plain record that fits, in one go (nothing
	 * peeked, so no descriptors loaded). */
	if (!chan_err(c) &&
	    (res = ring_rx_take(&c->rx.ring, buf, cap, &old, &new_)) >= 0) {
		bell_disarm(&c->rx.bell, fd_used(c));
		chan_released(c, old, new_);
		return res;
	}
	return chan_recv_wait(c, buf, cap, timeout_ms);
}

int evshm_recv_fds(struct evshm_chan *c, void *buf, size_t cap, int *fds,
		   unsigned *nfds, int timeout_ms)
{
	const void *p;
	size_t len;
	int res;

	if (!nfds || (*nfds && !fds) || (!buf && cap))
		return -EINVAL;
	if (c && ring_rx_many(&c->rx.ring))
		return -EBUSY;
	res = evshm_peek(c, &p, &len, timeout_ms);
	if (res < 0)
		return res;
	if (len > cap)
		return -EMSGSIZE;
	if (c->rx.nfds > *nfds) {
		*nfds = c->rx.nfds;
		return -EOVERFLOW;
	}
	if (len)
		memcpy(buf, p, len);
	/* The descriptors are the caller's now: release must not close them. */
	if (c->rx.nfds)
		memcpy(fds, c->rx.fds, c->rx.nfds * sizeof(int));
	*nfds = c->rx.nfds;
	c->rx.nfds = 0;
	res = evshm_release(c);
	return res < 0 ? res : (int)len;
}

/* --- introspection ------------------------------------------------------- */

int evshm_fd(struct evshm_chan *c)
{
	if (!c)
		return -EINVAL;
	atomic_store_explicit(&c->fd_used, true, memory_order_relaxed);
	return c->epfd;
}

size_t evshm_max_msg(const struct evshm_chan *c)
{
	return c ? ring_max_msg(c->tx_size) : 0;
}

void evshm_stats(const struct evshm_chan *c, struct evshm_stats *st)
{
	const struct region *m;

	if (!c || !st)
		return;
	/* Our own region: figures we wrote ourselves. */
	m = c->mine;
	memset(st, 0, sizeof(*st));
	st->msgs_sent = atomic_load_explicit(&m->msgs_sent, memory_order_relaxed);
	st->bytes_sent = atomic_load_explicit(&m->bytes_sent, memory_order_relaxed);
	st->msgs_recv = atomic_load_explicit(&m->msgs_recv, memory_order_relaxed);
	st->bytes_recv = atomic_load_explicit(&m->bytes_recv, memory_order_relaxed);
	st->kicks_sent = atomic_load_explicit(&m->tx_kicks, memory_order_relaxed) +
			 atomic_load_explicit(&m->rx_kicks, memory_order_relaxed);
	st->sleeps = atomic_load_explicit(&m->tx_sleeps, memory_order_relaxed) +
		     atomic_load_explicit(&m->rx_sleeps, memory_order_relaxed);
	st->spins = atomic_load_explicit(&m->tx_spins, memory_order_relaxed) +
		    atomic_load_explicit(&m->rx_spins, memory_order_relaxed);
}

int evshm_peer_cred(const struct evshm_chan *c, pid_t *pid, uid_t *uid,
		    gid_t *gid)
{
	if (!c)
		return -EINVAL;
	if (pid)
		*pid = c->pid;
	if (uid)
		*uid = c->uid;
	if (gid)
		*gid = c->gid;
	return 0;
}

const char *evshm_error_reason(const struct evshm_chan *c)
{
	if (!c || !atomic_load(&c->err))
		return NULL;
	return err_text(atomic_load(&c->reason));
}

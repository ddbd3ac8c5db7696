/* SPDX-License-Identifier: MIT */
/*
 * chan.c: the public channel once it is up (handshake.c sets it up): the
 * data path glued from the ring, wake and fd-passing layers.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "chan.h"
#include "evshm.h"
#include "fdpass.h"
#include "os.h"
#include "proto.h"
#include "ring.h"
#include "wake.h"

#define HANDSHAKE_TIMEOUT_MS 2000
#define MAX_RING_DEFAULT (64u << 20)

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
	case -EPROTO: return "peer broke the protocol";
	case -EPROTONOSUPPORT: return "incompatible evshm protocol version";
	case -EFBIG: return "ring size refused by the server";
	case -EUSERS: return "server has all the clients it takes";
	case -EACCES: return "access denied";
	case -EMSGSIZE: return "message too large";
	case -EAGAIN: return "would wait (timeout 0)";
	case -ETIMEDOUT: return "timed out";
	case -EADDRINUSE: return "name in use by a live server";
	case -ECONNREFUSED: return "nobody listens at that name";
	default: {
		const char *s = strerrordesc_np(err < 0 ? -err : err);
		return s ? s : "unknown error";
	}
	}
}

/* --- setting a channel up ------------------------------------------------ */

struct evshm_chan *chan_new(void)
{
	struct evshm_chan *c = aligned_alloc(64, (sizeof(*c) + 63) & ~(size_t)63);
	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->sock = c->epfd = c->rx_ep = c->tx_ep = -1;
	c->data_bell = c->space_bell = -1;
	c->peer_data_bell = c->peer_space_bell = -1;
	return c;
}

void evshm_close(struct evshm_chan *c)
{
	if (!c)
		return;
	os_close(c->epfd);
	os_close(c->rx_ep);
	os_close(c->tx_ep);
	os_close(c->sock);
	os_close(c->data_bell);
	os_close(c->space_bell);
	os_close(c->peer_data_bell);
	os_close(c->peer_space_bell);
	if (c->mine)
		munmap(c->mine, c->mine_len);
	if (c->peer)
		munmap((void *)c->peer, c->peer_len);
	for (unsigned i = 0; i < c->rx.nfds; i++)
		os_close(c->rx.fds[i]);
	if (c->ls) {
		atomic_fetch_sub(&c->ls->clients, 1);
		listen_state_put(c->ls);
	}
	free(c);
}

void close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		fds[i] = os_close(fds[i]);
}

/* --- waiting ------------------------------------------------------------- */

static bool rx_ready(const void *arg)
{
	return ring_rx_pending(arg);
}

static bool tx_ready(const void *arg)
{
	return ring_tx_head_moved(arg);
}

static int chan_fail(struct evshm_chan *c, int res)
{
	if (res == -EPROTO)
		atomic_store_explicit(&c->err, res, memory_order_relaxed);
	return res;
}

static bool chan_hup(struct evshm_chan *c)
{
	return atomic_load_explicit(&c->hup, memory_order_relaxed);
}

static void chan_set_hup(struct evshm_chan *c)
{
	atomic_store_explicit(&c->hup, 1, memory_order_relaxed);
}

/*
 * Generic wait for one side: spin, then arm (publish the event index and
 * re-check, in ring.c), then sleep on @bell and the socket.  Returns 0 when
 * the caller should look again, or -EAGAIN / -ETIMEDOUT / -EPIPE / -EPROTO.
 * @prepare returns 0 if the condition came true while arming.
 */
struct waiter {
	int bell;
	int ep;
	bool *armed;
	counter_t *sleeps, *spins;
	bool (*ready)(const void *);
	const void *ring;
};

static int chan_wait(struct evshm_chan *c, const struct waiter *w,
		     int prepared, uint64_t deadline, bool nonblock)
{
	if (prepared != -EAGAIN)
		return prepared; /* 0: came true while arming; or -EPROTO */
	if (nonblock) {
		if (wake_hung_up(c->sock)) {
			chan_set_hup(c);
			return 0; /* look once more, then -EPIPE */
		}
		return -EAGAIN;
	}
	counter_add(w->sleeps, 1);
	int res = wake_sleep(w->ep, deadline);
	if (res == -EPIPE) {
		chan_set_hup(c);
		return 0;
	}
	return res;
}

/*
 * The deadline of a wait, taken when the ring first says "full" / "empty"
 * rather than on entry: a call that does not wait (every call, under a
 * steady stream) then never reads the clock, which cost about as much as
 * the rest of evshm_recv() for a small message.  Never 0, which marks
 * "not taken yet".
 */
static uint64_t wait_deadline(int timeout_ms)
{
	/* A call with timeout 0 never sleeps: it needs no clock either. */
	uint64_t d = timeout_ms ? os_deadline(timeout_ms) : 1;
	return d ? d : 1;
}

/* Called after the ring said "empty" / "full" and before arming. */
static bool chan_spin(struct evshm_chan *c, const struct waiter *w,
		      bool nonblock)
{
	if (nonblock || !wake_spin(w->ready, w->ring, c->spin_ns))
		return false;
	counter_add(w->spins, 1);
	return true;
}

/*
 * A kick may sit in the bell since we armed.  Our own sleeps do not care
 * (the bell is edge-triggered where we sleep), but evshm_fd() sees it
 * level-triggered: once the caller has that descriptor, reset the bell
 * before re-arming and once we stop waiting, so that it does not stay
 * readable.  A caller that never asked for it saves that system call.
 */
static void chan_disarm(struct evshm_chan *c, const struct waiter *w)
{
	if (*w->armed) {
		if (atomic_load_explicit(&c->fd_used, memory_order_relaxed))
			os_eventfd_drain(w->bell);
		*w->armed = false;
	}
}

/*
 * The peer's bell is an open file description we share with it (SCM_RIGHTS
 * passes the file, not a copy), so the O_NONBLOCK checked at the handshake
 * is the peer's to clear again with F_SETFL; if it also saturates the
 * counter, write(2) sleeps until the peer reads its bell: for as long as it
 * likes.  eventfd has no per-call non-blocking write (pwritev2 RWF_NOWAIT
 * fails with EOPNOTSUPP).  But a write of 1 can block only when the counter
 * is saturated, whatever the flag says: so look at the counter, not the
 * flag.  A bell that polls not writable is a protocol violation.  That
 * stops a trap set in advance, which is all a peer can do
 * deterministically; one that saturates the counter between this poll and
 * the write can still stall us (docs/protocol.md 6, residual risk).
 * Checking F_GETFL as well would cost a system call per kick and narrow
 * nothing: a peer that can win that race can as well toggle the flag.
 */
static int kick_bell(int bell)
{
	struct pollfd pfd = { .fd = bell, .events = POLLOUT };

	if (os_poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT))
		return -EPROTO;
	return os_eventfd_kick(bell);
}

static int kick(struct evshm_chan *c, int bell, counter_t *kicks)
{
	counter_add(kicks, 1);
	return chan_fail(c, kick_bell(bell));
}

/* --- send side ------------------------------------------------------------ */

int evshm_reserve(struct evshm_chan *c, size_t len, void **ptr, int timeout_ms)
{
	if (!c || !ptr)
		return -EINVAL;
	struct waiter w = { c->space_bell, c->tx_ep, &c->tx.armed, &c->tx.sleeps,
			    &c->tx.spins, tx_ready, &c->tx.ring };
	uint64_t deadline = 0; /* read the clock only if we must wait */
	int res;

	for (;;) {
		if ((res = atomic_load_explicit(&c->err, memory_order_relaxed)))
			return res;
		if (chan_hup(c))
			return -EPIPE;
		res = ring_tx_reserve(&c->tx.ring, len, ptr);
		if (res != -EAGAIN) {
			if (res == 0)
				chan_disarm(c, &w);
			return chan_fail(c, res);
		}
		if (!deadline)
			deadline = wait_deadline(timeout_ms);
		if (chan_spin(c, &w, timeout_ms == 0))
			continue;
		chan_disarm(c, &w);
		*w.armed = true;
		res = chan_wait(c, &w, ring_tx_prepare_wait(&c->tx.ring, len),
				deadline, timeout_ms == 0);
		if (res < 0)
			return chan_fail(c, res);
	}
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

static int chan_commit(struct evshm_chan *c, size_t len, uint32_t flags)
{
	int res = ring_tx_commit_flags(&c->tx.ring, len, flags);
	if (res < 0)
		return res;
	if (c->tx.sock_out)
		chan_watch_sock_out(c, false);
	counter_add(&c->tx.msgs, 1);
	counter_add(&c->tx.bytes, len);
	if (res)
		return kick(c, c->peer_data_bell, &c->tx.kicks);
	return 0;
}

int evshm_commit(struct evshm_chan *c, size_t len)
{
	return c ? chan_commit(c, len, 0) : -EINVAL;
}

/*
 * Descriptors cannot travel through shared memory: they go on the socket,
 * *before* the ring record that refers to them is committed.  A Unix
 * socket send queues the message on the receiver before it returns, so by
 * the time the consumer sees the record (flag RING_F_FDS) its descriptors
 * are waiting, in the same order as the records.
 */
int evshm_send_fds(struct evshm_chan *c, const void *buf, size_t len,
		   const int *fds, unsigned nfds, int timeout_ms)
{
	struct proto_fds m;
	void *p;
	int res;

	if (!c || !fds || nfds == 0 || nfds > EVSHM_MAX_FDS || (!buf && len))
		return -EINVAL;
	uint64_t deadline = os_deadline(timeout_ms);
	res = evshm_reserve(c, len, &p, timeout_ms);
	if (res < 0)
		return res;
	proto_fds(&m, nfds, c->tx.fd_seq);
	res = fdp_send(c->sock, &m, sizeof(m), fds, nfds,
		       os_remaining_ms(deadline));
	if (res < 0) {
		ring_tx_cancel(&c->tx.ring);
		if (res == -EPIPE || res == -ECONNRESET) {
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

int evshm_send(struct evshm_chan *c, const void *buf, size_t len, int timeout_ms)
{
	void *p;
	int res;

	if (!buf && len)
		return -EINVAL;
	res = evshm_reserve(c, len, &p, timeout_ms);
	if (res < 0)
		return res;
	if (len)
		memcpy(p, buf, len);
	return evshm_commit(c, len);
}

/* --- receive side ---------------------------------------------------------- */

/* The record just peeked says descriptors wait on the socket: they must
 * be there already (see evshm_send_fds), else the peer lied. */
static int chan_load_fds(struct evshm_chan *c)
{
	unsigned char buf[64];
	unsigned n = 0;
	int res = fdp_recv(c->sock, buf, sizeof(buf), c->rx.fds, FDP_MAX_FDS,
			   &n, 0);
	if (res < 0)
		return -EPROTO;
	if (n == 0 || proto_parse_fds(buf, (size_t)res, n, c->rx.fd_seq) < 0) {
		close_fds(c->rx.fds, n);
		return -EPROTO;
	}
	c->rx.nfds = n;
	c->rx.fds_loaded = true;
	c->rx.fd_seq++;
	return 0;
}

/* Close the peeked message's descriptors that nobody took. */
static void chan_drop_fds(struct evshm_chan *c)
{
	close_fds(c->rx.fds, c->rx.nfds);
	c->rx.nfds = 0;
	c->rx.fds_loaded = false;
}

int evshm_peek(struct evshm_chan *c, const void **ptr, size_t *len,
	       int timeout_ms)
{
	if (!c || !ptr || !len)
		return -EINVAL;
	struct waiter w = { c->data_bell, c->rx_ep, &c->rx.armed, &c->rx.sleeps,
			    &c->rx.spins, rx_ready, &c->rx.ring };
	uint64_t deadline = 0; /* read the clock only if we must wait */
	int res;

	for (;;) {
		if ((res = atomic_load_explicit(&c->err, memory_order_relaxed)))
			return res;
		/* Read the hang-up flag *before* looking at the ring: what
		 * the peer committed before it died is in memory by then, so
		 * an empty ring after a hang-up is final. */
		bool hup = chan_hup(c);
		uint32_t flags;
		res = ring_rx_peek(&c->rx.ring, ptr, len, &flags);
		if (res == 0) {
			chan_disarm(c, &w);
			if ((flags & RING_F_FDS) && !c->rx.fds_loaded)
				res = chan_load_fds(c);
		}
		if (res != -EAGAIN)
			return chan_fail(c, res);
		if (hup)
			return -EPIPE;
		if (!deadline)
			deadline = wait_deadline(timeout_ms);
		if (chan_spin(c, &w, timeout_ms == 0))
			continue;
		chan_disarm(c, &w);
		*w.armed = true;
		res = chan_wait(c, &w, ring_rx_prepare_wait(&c->rx.ring),
				deadline, timeout_ms == 0);
		if (res < 0)
			return chan_fail(c, res);
	}
}

int evshm_release(struct evshm_chan *c)
{
	if (!c)
		return -EINVAL;
	size_t len = c->rx.ring.cur_len;
	int res = ring_rx_release(&c->rx.ring);
	if (res < 0)
		return res;
	chan_drop_fds(c);
	counter_add(&c->rx.msgs, 1);
	counter_add(&c->rx.bytes, len);
	if (res)
		return kick(c, c->peer_space_bell, &c->rx.kicks);
	return 0;
}

int evshm_recv(struct evshm_chan *c, void *buf, size_t cap, int timeout_ms)
{
	const void *p;
	size_t len;
	int res;

	if (!buf && cap)
		return -EINVAL;
	res = evshm_peek(c, &p, &len, timeout_ms);
	if (res < 0)
		return res;
	if (len > cap)
		return -EMSGSIZE;
	memcpy(buf, p, len);
	res = evshm_release(c);
	return res < 0 ? res : (int)len;
}

int evshm_recv_fds(struct evshm_chan *c, void *buf, size_t cap, int *fds,
		   unsigned *nfds, int timeout_ms)
{
	const void *p;
	size_t len;
	int res;

	if (!nfds || (*nfds && !fds) || (!buf && cap))
		return -EINVAL;
	res = evshm_peek(c, &p, &len, timeout_ms);
	if (res < 0)
		return res;
	if (len > cap)
		return -EMSGSIZE;
	if (c->rx.nfds > *nfds) {
		*nfds = c->rx.nfds;
		return -EOVERFLOW;
	}
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
	if (!c || !st)
		return;
	st->msgs_sent = counter_get(&c->tx.msgs);
	st->bytes_sent = counter_get(&c->tx.bytes);
	st->msgs_recv = counter_get(&c->rx.msgs);
	st->bytes_recv = counter_get(&c->rx.bytes);
	st->kicks_sent = counter_get(&c->tx.kicks) + counter_get(&c->rx.kicks);
	st->sleeps = counter_get(&c->tx.sleeps) + counter_get(&c->rx.sleeps);
	st->spins = counter_get(&c->tx.spins) + counter_get(&c->rx.spins);
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

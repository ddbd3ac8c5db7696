/* SPDX-License-Identifier: MIT */
/*
 * handshake.c: setting a channel up.  The client connects and sends HELLO
 * with its region and bells; the server checks who it is, reads HELLO,
 * checks everything it was given, and answers WELCOME (or REJECT).
 * docs/protocol.md, section 3, is the normative description.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "chan.h"
#include "endpoint.h"
#include "fdpass.h"
#include "os.h"
#include "proto.h"
#include "ring.h"
#include "wake.h"

#define HANDSHAKE_TIMEOUT_MS 2000
#define MAX_RING_DEFAULT (64u << 20)

/*
 * A single-threaded server must not be held by one client.  An accepted
 * connection whose HELLO has not arrived yet is parked here, and
 * evshm_accept() serves whichever client is ready first; a parked client
 * that stays silent past handshake_timeout_ms is dropped.  Honest clients
 * send HELLO right after connect, so they are rarely parked at all.
 */
#define PENDING_MAX 64

struct pending {
	int sock;
	uint64_t deadline;
};

struct evshm_listener {
	struct ep_listener ep;
	struct evshm_opts opts;
	struct listen_state *ls;
	int epfd;   /* evshm_listener_fd(): listening socket + parked ones */
	unsigned npend;
	struct pending pend[PENDING_MAX];
};

/* --- options ------------------------------------------------------------ */

static int opts_resolve(struct evshm_opts *o, const struct evshm_opts *in)
{
	if (in)
		*o = *in;
	else
		memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < sizeof(o->reserved_) / sizeof(o->reserved_[0]); i++)
		if (o->reserved_[i])
			return -EINVAL;
	if (!o->ring_size)
		o->ring_size = EVSHM_RING_DEFAULT;
	if (!o->max_ring_size)
		o->max_ring_size = MAX_RING_DEFAULT;
	if (!o->handshake_timeout_ms)
		o->handshake_timeout_ms = HANDSHAKE_TIMEOUT_MS;
	if (!o->spin_ns)
		o->spin_ns = wake_default_spin_ns();
	if (!proto_ring_size_ok(o->ring_size) ||
	    (o->peer_ring_size && !proto_ring_size_ok(o->peer_ring_size)) ||
	    o->handshake_timeout_ms < 0 || (o->mode & ~07777u))
		return -EINVAL;
	return 0;
}

/* --- our side and the peer's --------------------------------------------- */

/*
 * Our region: a memfd mapped read-write, initialised, then sealed so that
 * nobody (the peer included, whatever descriptor it holds or reopens) can
 * map it writable, write() it, or change its size.  The peer gets a
 * read-only descriptor (*ro_fd); the memfd itself is closed, our mapping
 * keeps the memory alive.  Our two doorbells are created too.
 */
static int chan_make_local(struct evshm_chan *c, uint32_t ring_size, int *ro_fd)
{
	size_t len = REGION_HDR_SIZE + (size_t)ring_size;
	int fd, res;
	void *p;

	res = os_memfd("evshm", len, &fd);
	if (res < 0)
		return res;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		res = -errno;
		goto out_close;
	}
	c->mine = p;
	c->mine_len = len;
	c->tx_size = ring_size;
	region_init(c->mine, ring_size);
	res = os_memfd_seal(fd);
	if (res < 0)
		goto out_close;
	res = os_reopen_ro(fd, ro_fd);
	if (res < 0)
		goto out_close;
	res = os_eventfd(&c->data_bell);
	if (res < 0)
		goto out_close_ro;
	res = os_eventfd(&c->space_bell);
	if (res < 0)
		goto out_close_ro;
	os_close(fd);
	return 0;

out_close_ro:
	*ro_fd = os_close(*ro_fd);
out_close:
	os_close(fd);
	return res; /* the mapping and bells go with evshm_close() */
}

/*
 * Take the peer's descriptors (ownership passes to us whatever happens):
 * check that the region is a sealed memfd of the announced size and the
 * bells are non-blocking eventfds, then map the region read-only.
 */
static int chan_attach_peer(struct evshm_chan *c, uint32_t ring_size,
			    int fds[PROTO_NFDS])
{
	size_t len = REGION_HDR_SIZE + (size_t)ring_size;
	int res;
	void *p;

	c->peer_data_bell = fds[PROTO_FD_DATA_BELL];
	c->peer_space_bell = fds[PROTO_FD_SPACE_BELL];
	fds[PROTO_FD_DATA_BELL] = fds[PROTO_FD_SPACE_BELL] = -1;

	res = os_check_memfd(fds[PROTO_FD_REGION], len);
	if (res < 0)
		goto out;
	res = os_check_eventfd(c->peer_data_bell);
	if (res < 0)
		goto out;
	res = os_check_eventfd(c->peer_space_bell);
	if (res < 0)
		goto out;
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, fds[PROTO_FD_REGION], 0);
	if (p == MAP_FAILED) {
		/* The peer chose the descriptor: one that passes the checks but
		 * cannot be mapped for reading (a write-only reopen of a sealed
		 * memfd: EACCES) is a malformed offer, not "access denied",
		 * which means a policy refusal to our caller and REJECT reason
		 * 4 to the peer.  Only a lack of memory is ours. */
		res = errno == ENOMEM ? -ENOMEM : -EPROTO;
		goto out;
	}
	c->peer = p;
	c->peer_len = len;
	c->rx_size = ring_size;
	/* Informative only (we use our own copy of the size), but a mismatch
	 * means the peer is confused: refuse it. */
	if (c->peer->magic != REGION_MAGIC || c->peer->version != REGION_VERSION ||
	    c->peer->ring_size != ring_size || c->peer->hdr_size != REGION_HDR_SIZE)
		res = -EPROTO;
out:
	fds[PROTO_FD_REGION] = os_close(fds[PROTO_FD_REGION]);
	return res;
}

static int epoll_add(int epfd, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* Both regions are mapped: set up the rings and the pollable fd. */
static int chan_finish(struct evshm_chan *c, const struct evshm_opts *o)
{
	int res;

	ring_tx_init(&c->tx.ring, c->mine, c->peer, c->tx_size);
	ring_rx_init(&c->rx.ring, c->mine, c->peer, c->rx_size);
	c->spin_ns = o->spin_ns;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->epfd < 0)
		return -errno;
	if ((res = epoll_add(c->epfd, c->data_bell, EPOLLIN)) < 0 ||
	    (res = epoll_add(c->epfd, c->space_bell, EPOLLIN)) < 0 ||
	    (res = epoll_add(c->epfd, c->sock, EPOLLRDHUP)) < 0)
		return res;
	if ((res = wake_open(&c->rx_ep, c->data_bell, c->sock)) < 0 ||
	    (res = wake_open(&c->tx_ep, c->space_bell, c->sock)) < 0)
		return res;
	return 0;
}

/* Learn who is at the other end, and ask the policy whether to go on. */
static int chan_authorize(struct evshm_chan *c, const struct evshm_opts *o,
			  bool server)
{
	int res = ep_peercred(c->sock, &c->pid, &c->uid, &c->gid);
	if (res < 0)
		return res;
	if (o->authorize) {
		res = o->authorize(o->authorize_arg, c->pid, c->uid, c->gid);
		return res > 0 ? -EACCES : res;
	}
	if (server && c->uid != geteuid())
		return -EACCES;
	return 0;
}

/* Receive one handshake message of type @want with its descriptors. */
static int hs_recv(int sock, enum proto_type want, struct proto_msg *m,
		   int fds[PROTO_NFDS], uint64_t deadline)
{
	unsigned char buf[256];
	unsigned nfds = 0;
	int res;

	res = fdp_recv(sock, buf, sizeof(buf), fds, PROTO_NFDS, &nfds,
		       os_remaining_ms(deadline));
	if (res == -EPIPE)
		return -ECONNRESET;
	if (res == -EAGAIN)
		return -ETIMEDOUT;
	if (res == -EMSGSIZE || res == -EOVERFLOW)
		return -EPROTO;
	if (res < 0)
		return res;
	res = proto_parse(buf, (size_t)res, want, m);
	if (res == 0 && nfds != PROTO_NFDS)
		res = -EPROTO;
	if (res < 0)
		close_fds(fds, nfds);
	return res;
}

static int hs_send(struct evshm_chan *c, const struct proto_msg *m, int ro_fd,
		   uint64_t deadline)
{
	int fds[PROTO_NFDS] = { ro_fd, c->data_bell, c->space_bell };
	int res = fdp_send(c->sock, m, sizeof(*m), fds, PROTO_NFDS,
			   os_remaining_ms(deadline));
	if (res == -EPIPE)
		res = -ECONNRESET;
	return res == -EAGAIN ? -ETIMEDOUT : res;
}

/*
 * A server that refuses us sends REJECT and closes at once, possibly before
 * it has read our HELLO (refusals for max_clients and access are decided
 * before reading it) or before we have even sent it.  Linux then reports
 * the close ahead of the REJECT: our sendmsg() of the HELLO fails with
 * EPIPE, or, if our HELLO was left unread in the server's queue, the
 * server's close sets ECONNRESET as the socket error, which the next
 * recvmsg() returns before looking at the queue.  Either way hs_send() /
 * hs_recv() say -ECONNRESET while the REJECT still waits in our receive
 * queue: read it (without waiting; the error is reported only once) so
 * the caller learns why (-EUSERS, -EACCES, ...).  Without this a refused
 * client nearly always got -ECONNRESET.
 */
static int hs_reject_reason(int sock, int res)
{
	int fds[PROTO_NFDS] = { -1, -1, -1 };
	struct proto_msg m;

	for (int i = 0; i < 2 && res == -ECONNRESET; i++) {
		int r = hs_recv(sock, PROTO_WELCOME, &m, fds, os_deadline(0));

		if (r == 0) { /* a WELCOME after all: not a refusal */
			close_fds(fds, PROTO_NFDS);
			break;
		}
		if (r != -ECONNRESET && r != -ETIMEDOUT)
			return r; /* the REJECT's reason (or -EPROTO) */
	}
	return res;
}

int evshm_connect(struct evshm_chan **out, const char *name,
		  const struct evshm_opts *opts, int timeout_ms)
{
	int fds[PROTO_NFDS] = { -1, -1, -1 };
	struct evshm_opts o;
	struct proto_msg m;
	int ro_fd = -1, res;

	if (!out || !name)
		return -EINVAL;
	res = opts_resolve(&o, opts);
	if (res < 0)
		return res;
	uint64_t deadline = os_deadline(timeout_ms);

	struct evshm_chan *c = chan_new();
	if (!c)
		return -ENOMEM;
	res = ep_connect(name, &c->sock);
	if (res < 0)
		goto out_close;
	res = chan_authorize(c, &o, false);
	if (res < 0)
		goto out_close;
	res = chan_make_local(c, o.ring_size, &ro_fd);
	if (res < 0)
		goto out_close;
	proto_hello(&m, o.ring_size, o.peer_ring_size);
	res = hs_send(c, &m, ro_fd, deadline);
	ro_fd = os_close(ro_fd);
	if (res < 0) {
		res = hs_reject_reason(c->sock, res);
		goto out_close;
	}
	res = hs_recv(c->sock, PROTO_WELCOME, &m, fds, deadline);
	if (res < 0) {
		res = hs_reject_reason(c->sock, res);
		goto out_close;
	}
	if (o.peer_ring_size && m.ring_size != o.peer_ring_size) {
		close_fds(fds, PROTO_NFDS);
		res = -EPROTO;
		goto out_close;
	}
	res = chan_attach_peer(c, m.ring_size, fds);
	if (res < 0)
		goto out_close;
	res = chan_finish(c, &o);
	if (res < 0)
		goto out_close;
	*out = c;
	return 0;

out_close:
	evshm_close(c);
	return res;
}

/* Server side of the handshake on an accepted socket (owned by @c). */
static int hs_serve(struct evshm_listener *l, struct evshm_chan *c)
{
	const struct evshm_opts *o = &l->opts;
	uint64_t deadline = os_deadline(o->handshake_timeout_ms);
	int fds[PROTO_NFDS] = { -1, -1, -1 };
	struct proto_msg m;
	int ro_fd = -1, res;

	/* Who it is and whether there is room, before we read a byte: a
	 * refused client's queued hello and descriptors go with the socket. */
	res = chan_authorize(c, o, true);
	if (res < 0) {
		proto_reject(&m, PROTO_REJ_DENIED);
		fdp_send(c->sock, &m, sizeof(m), NULL, 0, 0);
		return res;
	}
	if (o->max_clients &&
	    atomic_load(&l->ls->clients) >= o->max_clients) {
		res = -EUSERS;
		goto out_reject;
	}
	res = hs_recv(c->sock, PROTO_HELLO, &m, fds, deadline);
	if (res < 0)
		goto out_reject;
	uint32_t tx_size = m.peer_ring_size ? m.peer_ring_size : o->ring_size;
	if (m.ring_size > o->max_ring_size || tx_size > o->max_ring_size) {
		close_fds(fds, PROTO_NFDS);
		res = -EFBIG;
		goto out_reject;
	}
	res = chan_attach_peer(c, m.ring_size, fds);
	if (res < 0)
		goto out_reject;
	res = chan_make_local(c, tx_size, &ro_fd);
	if (res < 0)
		return res;
	proto_welcome(&m, tx_size);
	res = hs_send(c, &m, ro_fd, deadline);
	os_close(ro_fd);
	if (res < 0)
		return res;
	return chan_finish(c, o);

out_reject:
	/* Tell the client why, if it still listens; best effort. */
	if (res != -ECONNRESET && res != -ETIMEDOUT) {
		proto_reject(&m, proto_errno_reject(res));
		fdp_send(c->sock, &m, sizeof(m), NULL, 0, 0);
	}
	return res;
}

/* --- listening ------------------------------------------------------------ */

int evshm_listen(struct evshm_listener **out, const char *name,
		 const struct evshm_opts *opts)
{
	struct evshm_listener *l;
	int res;

	if (!out || !name)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->ep.fd = l->epfd = -1;
	res = opts_resolve(&l->opts, opts);
	if (res < 0)
		goto out_free;
	l->ls = calloc(1, sizeof(*l->ls));
	if (!l->ls) {
		res = -ENOMEM;
		goto out_free;
	}
	atomic_init(&l->ls->refs, 1);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		res = -errno;
		goto out_free;
	}
	res = ep_listen(&l->ep, name, l->opts.mode, 0);
	if (res < 0)
		goto out_free;
	res = epoll_add(l->epfd, l->ep.fd, EPOLLIN);
	if (res < 0)
		goto out_close;
	*out = l;
	return 0;

out_close:
	ep_listener_close(&l->ep);
out_free:
	os_close(l->epfd);
	free(l->ls);
	free(l);
	return res;
}

int evshm_listener_fd(const struct evshm_listener *l)
{
	return l ? l->epfd : -EINVAL;
}

void evshm_listener_close(struct evshm_listener *l)
{
	if (!l)
		return;
	for (unsigned i = 0; i < l->npend; i++)
		os_close(l->pend[i].sock);
	os_close(l->epfd);
	ep_listener_close(&l->ep);
	listen_state_put(l->ls);
	free(l);
}

/* Take parked client @i out of the list; returns its socket. */
static int pending_take(struct evshm_listener *l, unsigned i)
{
	int sock = l->pend[i].sock;

	epoll_ctl(l->epfd, EPOLL_CTL_DEL, sock, NULL);
	l->pend[i] = l->pend[--l->npend];
	return sock;
}

static int pending_park(struct evshm_listener *l, int sock)
{
	if (l->npend == PENDING_MAX) /* full: the oldest silent one goes */
		os_close(pending_take(l, 0));
	int res = epoll_add(l->epfd, sock, EPOLLIN | EPOLLRDHUP);
	if (res < 0) {
		os_close(sock);
		return res;
	}
	l->pend[l->npend++] = (struct pending){
		sock, os_deadline(l->opts.handshake_timeout_ms)
	};
	return 0;
}

/* Index of a parked client with something to read (its HELLO, or its
 * hang-up), or -1. */
static int pending_ready(struct evshm_listener *l)
{
	struct pollfd pfd[PENDING_MAX];

	for (unsigned i = 0; i < l->npend; i++)
		pfd[i] = (struct pollfd){ .fd = l->pend[i].sock,
					  .events = POLLIN | POLLRDHUP };
	if (l->npend == 0 || os_poll(pfd, l->npend, 0) <= 0)
		return -1;
	for (unsigned i = 0; i < l->npend; i++)
		if (pfd[i].revents)
			return (int)i;
	return -1;
}

/* Index of a parked client past its deadline, or -1; *next gets the
 * earliest deadline of the others. */
static int pending_expired(const struct evshm_listener *l, uint64_t *next)
{
	uint64_t now = os_now_ns();

	*next = UINT64_MAX;
	for (unsigned i = 0; i < l->npend; i++) {
		if (l->pend[i].deadline <= now)
			return (int)i;
		if (l->pend[i].deadline < *next)
			*next = l->pend[i].deadline;
	}
	return -1;
}

static bool sock_readable(int sock)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN | POLLRDHUP };
	return os_poll(&pfd, 1, 0) > 0;
}

/* Run the handshake with a client whose HELLO is (or should be) there. */
static int serve(struct evshm_listener *l, int sock, struct evshm_chan **out)
{
	struct evshm_chan *c = chan_new();
	int res;

	if (!c) {
		os_close(sock);
		return -ENOMEM;
	}
	c->sock = sock;
	res = hs_serve(l, c);
	if (res < 0) {
		evshm_close(c);
		return res;
	}
	atomic_fetch_add(&l->ls->clients, 1);
	atomic_fetch_add(&l->ls->refs, 1);
	c->ls = l->ls;
	*out = c;
	return 0;
}

int evshm_accept(struct evshm_listener *l, struct evshm_chan **out,
		 int timeout_ms)
{
	if (!l || !out)
		return -EINVAL;
	uint64_t deadline = os_deadline(timeout_ms);

	for (;;) {
		int i = pending_ready(l);
		if (i >= 0)
			return serve(l, pending_take(l, (unsigned)i), out);

		int sock;
		int res = ep_accept(&l->ep, 0, &sock);
		if (res == 0) {
			if (sock_readable(sock))
				return serve(l, sock, out);
			res = pending_park(l, sock);
			if (res < 0)
				return res;
			continue;
		}
		if (res != -EAGAIN)
			return res;

		uint64_t next;
		i = pending_expired(l, &next);
		if (i >= 0) { /* a client that never said HELLO */
			os_close(pending_take(l, (unsigned)i));
			return -ETIMEDOUT;
		}
		if (timeout_ms == 0)
			return -EAGAIN;
		if (os_now_ns() >= deadline)
			return -ETIMEDOUT;
		struct epoll_event ev;
		int n = epoll_wait(l->epfd, &ev, 1,
				   os_remaining_ms(next < deadline ? next : deadline));
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

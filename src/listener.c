/* SPDX-License-Identifier: MIT */
/*
 * listener.c: accept, admit or refuse, park until HELLO, hand over.
 */
#include "listener.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "fdpass.h"
#include "os.h"


int listener_open(struct listener *l, const char *name, unsigned mode,
		  const struct listener_policy *pol)
{
	int res;

	memset(l, 0, sizeof(*l));
	l->ep.fd = -1;
	l->pol = *pol;
	l->timer = os_timer();
	if (l->timer < 0)
		return l->timer;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		res = -errno;
		goto out_close_timer;
	}
	res = os_epoll_add(l->epfd, l->timer, EPOLLIN, (uint32_t)l->timer);
	if (res < 0)
		goto out_close_ep;
	res = ep_listen(&l->ep, name, mode, 0);
	if (res < 0)
		goto out_close_ep;
	/* Accepted sockets inherit it: nobody can queue descriptors on a
	 * connection before we admitted it.  Linux < 6.16 lacks it; then a
	 * refused connection is closed asynchronously (os_close_sock). */
	l->rights_off = os_passrights(l->ep.fd, false) == 0;
	res = os_epoll_add(l->epfd, l->ep.fd, EPOLLIN, (uint32_t)l->ep.fd);
	if (res < 0)
		goto out_close;
	return 0;

out_close:
	ep_listener_close(&l->ep);
out_close_ep:
	l->epfd = os_close(l->epfd);
out_close_timer:
	l->timer = os_close(l->timer);
	return res;
}

void listener_close(struct listener *l)
{
	for (unsigned i = 0; i < l->npend; i++)
		os_close_sock(l->pend[i].sock, l->pend[i].fds_possible);
	l->npend = 0;
	l->epfd = os_close(l->epfd);
	l->timer = os_close(l->timer);
	/* Connections nobody accepted go with the listening socket; with
	 * SO_PASSRIGHTS off they hold no descriptors. */
	os_close_sock(ep_listener_release(&l->ep), !l->rights_off);
}

void listener_refuse(struct conn *c, int err)
{
	struct proto_msg m;

	/* Best effort and never waiting: the client may be gone, and a
	 * fresh socket's buffer is empty.  Whatever the policy's own errno,
	 * the client learns "full" or "denied". */
	proto_reject(&m, err == -EUSERS ? PROTO_REJ_FULL : PROTO_REJ_DENIED);
	fdp_send(c->sock, &m, sizeof(m), NULL, 0, 0);
	os_close_sock(c->sock, c->fds_possible);
	c->sock = -1;
}

/* Half the handshake timeout: a parked client younger than that keeps its
 * slot. */
static uint64_t grace_ns(const struct listener *l)
{
	return (uint64_t)l->pol.handshake_timeout_ms * 500000u;
}

/* Arm the timer for the earliest moment something is due: a parked
 * connection's drop, or, while paused, the oldest one's end of grace. */
static void timer_arm(struct listener *l)
{
	uint64_t next = UINT64_MAX;

	for (unsigned i = 0; i < l->npend; i++)
		next = os_min_deadline(next, l->pend[i].deadline);
	if (l->paused && l->npend)
		next = os_min_deadline(next, l->pend[0].since + grace_ns(l));
	os_timer_at(l->timer, next);
}

/* Stop (or resume) taking new connections from the kernel's backlog. */
static void set_paused(struct listener *l, bool paused)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = l->ep.fd };

	if (l->paused == paused)
		return;
	if (epoll_ctl(l->epfd, paused ? EPOLL_CTL_DEL : EPOLL_CTL_ADD, l->ep.fd,
		      &ev) == 0)
		l->paused = paused;
}

/* Take parked connection @i out of the FIFO. */
static struct conn pending_take(struct listener *l, unsigned i)
{
	struct conn c = l->pend[i];

	epoll_ctl(l->epfd, EPOLL_CTL_DEL, c.sock, NULL);
	memmove(&l->pend[i], &l->pend[i + 1],
		(l->npend - i - 1) * sizeof(l->pend[0]));
	l->npend--;
	return c;
}

static void pending_drop(struct listener *l, unsigned i)
{
	struct conn c = pending_take(l, i);

	os_close_sock(c.sock, c.fds_possible);
}

static bool past_grace(const struct listener *l, const struct conn *c,
		       uint64_t now)
{
	return now - c->since >= grace_ns(l);
}

/* Is there a slot for one more, if need be by pushing out an old one? */
static bool pending_room(const struct listener *l, uint64_t now)
{
	return l->npend < PENDING_MAX || past_grace(l, &l->pend[0], now);
}

/* Park @c (admitted, READY sent) until its HELLO comes.  A full FIFO loses
 * the oldest of @c's uid if that uid is over its share, else the oldest
 * of all, and only one past its grace (pending_room() said there is one). */
static int pending_park(struct listener *l, struct conn *c, uint64_t now)
{
	unsigned same = 0, oldest_same = 0;
	int res;

	if (l->npend == PENDING_MAX) {
		for (unsigned i = 0; i < l->npend; i++) {
			if (l->pend[i].uid != c->uid)
				continue;
			if (same++ == 0)
				oldest_same = i;
		}
		if (same >= PENDING_PER_UID &&
		    past_grace(l, &l->pend[oldest_same], now))
			pending_drop(l, oldest_same);
		else
			pending_drop(l, 0);
	}
	res = os_epoll_add(l->epfd, c->sock, EPOLLIN | EPOLLRDHUP,
			   (uint32_t)c->sock);
	if (res < 0) {
		os_close_sock(c->sock, c->fds_possible);
		return res;
	}
	c->since = now;
	c->deadline = now + (uint64_t)l->pol.handshake_timeout_ms * 1000000u;
	l->pend[l->npend++] = *c;
	return 0;
}

/* Index of the oldest parked connection with something to read (its
 * HELLO, or its hang-up), or -1. */
static int pending_ready(struct listener *l)
{
	struct pollfd pfd[PENDING_MAX];

	if (l->npend == 0)
		return -1;
	for (unsigned i = 0; i < l->npend; i++)
		pfd[i] = (struct pollfd){ .fd = l->pend[i].sock,
					  .events = POLLIN | POLLRDHUP };
	if (os_poll(pfd, l->npend, 0) <= 0)
		return -1;
	for (unsigned i = 0; i < l->npend; i++)
		if (pfd[i].revents)
			return (int)i;
	return -1;
}

/* Index of a parked connection past its deadline, or -1. */
static int pending_expired(const struct listener *l, uint64_t now)
{
	for (unsigned i = 0; i < l->npend; i++)
		if (l->pend[i].deadline <= now)
			return (int)i;
	return -1;
}

/* A new connection: who it is, whether it is welcome, READY, park. */
static int admit(struct listener *l, int sock, uint64_t now)
{
	struct conn c = { .sock = sock, .fds_possible = !l->rights_off };
	int res = ep_peercred(sock, &c.pid, &c.uid, &c.gid);

	if (res == 0)
		res = l->pol.admit(l->pol.arg, &c);
	if (res < 0) {
		listener_refuse(&c, res);
		return res;
	}
	/* From here the client may send descriptors (its HELLO's). */
	c.fds_possible = true;
	if (l->rights_off && os_passrights(sock, true) < 0) {
		os_close_sock(sock, c.fds_possible);
		return -EPROTO;
	}
	res = fdp_send(sock, &l->pol.ready, sizeof(l->pol.ready), NULL, 0, 0);
	if (res < 0) {
		os_close_sock(sock, c.fds_possible);
		return res == -EPIPE || res == -EAGAIN ? -ECONNRESET : res;
	}
	return pending_park(l, &c, now);
}

int listener_next(struct listener *l, struct conn *out, int timeout_ms)
{
	uint64_t deadline = os_deadline(timeout_ms), now;
	unsigned budget = ACCEPT_BUDGET;
	int i, sock, res;

	for (;;) {
		i = pending_ready(l);
		if (i >= 0) {
			*out = pending_take(l, (unsigned)i);
			res = 0;
			break;
		}
		now = os_now_ns();
		i = pending_expired(l, now);
		if (i >= 0) { /* admitted, and never said HELLO */
			pending_drop(l, (unsigned)i);
			res = -ETIMEDOUT;
			break;
		}
		set_paused(l, !pending_room(l, now));
		if (budget && !l->paused) {
			budget--;
			res = ep_accept(&l->ep, 0, &sock);
			if (res == 0) {
				res = admit(l, sock, now);
				if (res < 0)
					break;
				continue;
			}
			if (res != -EAGAIN)
				break;
		}
		if (timeout_ms == 0 || now >= deadline) {
			res = timeout_ms == 0 ? -EAGAIN : -ETIMEDOUT;
			break;
		}
		timer_arm(l);
		struct epoll_event ev;
		int n = epoll_wait(l->epfd, &ev, 1, os_remaining_ms(deadline));
		if (n < 0 && errno != EINTR) {
			res = -errno;
			break;
		}
		if (n == 1 && ev.data.fd == l->timer)
			os_event_clear(l->timer);
		budget = ACCEPT_BUDGET;
	}
	/* Leave the pollable set right for an event loop: the timer for
	 * what is due next, the listening socket in or out. */
	set_paused(l, !pending_room(l, os_now_ns()));
	timer_arm(l);
	return res;
}

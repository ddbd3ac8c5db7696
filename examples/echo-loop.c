/* SPDX-License-Identifier: MIT */
/*
 * echo-loop.c: see echo-loop.h.
 *
 * The arming rule of evshm_fd(): notification is armed by a call that
 * failed with -EAGAIN.  So a client is "served" until its inbound ring is
 * empty (evshm_peek -EAGAIN: armed for data) or its outbound ring is full
 * (evshm_reserve -EAGAIN: armed for room).  A client that still has work
 * when its turn ends is not armed: it goes back on the run queue, and the
 * next epoll_wait() does not sleep while the queue is not empty.  Events
 * only put clients on the queue; clients are served (and dropped) only
 * from the queue, so no event can refer to a client already freed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pid_t, uid_t and epoll under -std=c11 */
#endif
#include "echo-loop.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BUDGET_DEFAULT 64
#define MAX_EVENTS 64

struct client {
	struct evshm_chan *c;
	pid_t pid;
	uid_t uid;
	uint64_t seq;               /* messages echoed to it */
	bool queued;                /* on the run queue */
	struct client *next_run;    /* run queue */
	struct client *prev, *next; /* every client, for close */
};

struct echo_server {
	struct evshm_listener *l;
	int ep;
	bool accept_paused;     /* out of descriptors or memory: see accept_all */
	struct echo_config cfg;
	struct client *all;
	struct client *run_head, *run_tail;
	struct echo_stats st;
	char tag_listener, tag_watch; /* epoll data for the two fixed fds */
};

static void say(struct echo_server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(struct echo_server *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->cfg.log)
		return;
	va_start(ap, fmt);
	vfprintf(s->cfg.log, fmt, ap);
	va_end(ap);
	fflush(s->cfg.log);
}

static void enqueue(struct echo_server *s, struct client *cl)
{
	if (cl->queued)
		return;
	cl->queued = true;
	cl->next_run = NULL;
	if (s->run_tail)
		s->run_tail->next_run = cl;
	else
		s->run_head = cl;
	s->run_tail = cl;
}

static struct client *dequeue(struct echo_server *s)
{
	struct client *cl = s->run_head;

	if (cl) {
		s->run_head = cl->next_run;
		if (!s->run_head)
			s->run_tail = NULL;
		cl->queued = false;
	}
	return cl;
}

static int watch(struct echo_server *s, int op, int fd, uint32_t events,
		 void *tag)
{
	struct epoll_event ev = { .events = events, .data.ptr = tag };

	return epoll_ctl(s->ep, op, fd, &ev) < 0 ? -errno : 0;
}

/* Forget a client that is not on the run queue. */
static void drop(struct echo_server *s, struct client *cl, int why)
{
	/* Out of the epoll set before its descriptor is closed. */
	epoll_ctl(s->ep, EPOLL_CTL_DEL, evshm_fd(cl->c), NULL);
	evshm_close(cl->c);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		s->all = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	s->st.clients--;
	s->st.disconnects++;
	say(s, "disconnect: pid %d uid %u: %s, %llu messages (%u clients)\n",
	    (int)cl->pid, (unsigned)cl->uid,
	    why ? evshm_strerror(why) : "server closing",
	    (unsigned long long)cl->seq, s->st.clients);
	free(cl);
	/* A descriptor or some memory was freed: accept again. */
	if (s->accept_paused &&
	    watch(s, EPOLL_CTL_MOD, evshm_listener_fd(s->l), EPOLLIN,
		  &s->tag_listener) == 0)
		s->accept_paused = false;
}

/*
 * Echo what @cl sent, never waiting: zero copy from its ring into its
 * peer's ring.  Returns when one of the two rings arms evshm_fd(), when
 * the client is gone (-EPIPE), broke the protocol (-EPROTO) or sent a
 * message we cannot echo (-EMSGSIZE: its ring is larger than ours), or
 * when its turn is over (then it is queued again).
 */
static void serve(struct echo_server *s, struct client *cl)
{
	const void *in;
	void *out;
	size_t len;
	int res;

	for (unsigned n = 0; n < s->cfg.budget; n++) {
		/* Peeking again without a release gives the same message: a
		 * message left here by a full outbound ring is picked up. */
		res = evshm_peek(cl->c, &in, &len, 0);
		if (res == -EAGAIN)
			return; /* empty: armed for data */
		if (res < 0)
			goto out_drop;
		if (s->cfg.check &&
		    !s->cfg.check(s->cfg.check_arg, cl->pid, cl->seq, in, len)) {
			s->st.bad++;
			res = -EBADMSG;
			goto out_drop;
		}
		/* The client does not read its echoes fast enough: keep the
		 * message peeked, come back when evshm_fd() says there is
		 * room.  Nobody else waits meanwhile. */
		res = evshm_reserve(cl->c, len, &out, 0);
		if (res == -EAGAIN)
			return; /* full: armed for room */
		if (res < 0)
			goto out_drop;
		memcpy(out, in, len);
		if ((res = evshm_commit(cl->c, len)) < 0 ||
		    (res = evshm_release(cl->c)) < 0)
			goto out_drop;
		cl->seq++;
		s->st.msgs++;
		s->st.bytes += len;
	}
	enqueue(s, cl); /* turn over, not armed: serve it again soon */
	return;

out_drop:
	drop(s, cl, res);
}

/* Take every client waiting at the listener. */
static void accept_all(struct echo_server *s)
{
	for (;;) {
		struct evshm_chan *c;
		struct client *cl;
		int res = evshm_accept(s->l, &c, 0);

		if (res == -EAGAIN)
			return;
		if (res == -EMFILE || res == -ENFILE || res == -ENOMEM) {
			/* The client stays in the backlog and the listener
			 * stays readable: stop watching it until a client
			 * leaves, rather than spin. */
			say(s, "accept: %s: paused\n", evshm_strerror(res));
			if (watch(s, EPOLL_CTL_MOD, evshm_listener_fd(s->l), 0,
				  &s->tag_listener) == 0)
				s->accept_paused = true;
			return;
		}
		if (res < 0) {
			/* That client is refused (-EUSERS, -EACCES, ...) or
			 * its handshake failed; the next one may be fine. */
			s->st.refused++;
			say(s, "refused: %s\n", evshm_strerror(res));
			continue;
		}
		cl = calloc(1, sizeof(*cl));
		if (!cl) {
			evshm_close(c);
			continue;
		}
		cl->c = c;
		evshm_peer_cred(c, &cl->pid, &cl->uid, NULL);
		if (watch(s, EPOLL_CTL_ADD, evshm_fd(c), EPOLLIN, cl) < 0) {
			evshm_close(c);
			free(cl);
			continue;
		}
		cl->next = s->all;
		if (s->all)
			s->all->prev = cl;
		s->all = cl;
		s->st.clients++;
		s->st.connects++;
		say(s, "connect: pid %d uid %u (%u clients)\n", (int)cl->pid,
		    (unsigned)cl->uid, s->st.clients);
		/* Not armed yet: it must be drained once first. */
		enqueue(s, cl);
	}
}

int echo_server_open(struct echo_server **out, const char *name,
		     const struct evshm_opts *opts,
		     const struct echo_config *cfg)
{
	struct echo_server *s = calloc(1, sizeof(*s));
	int res;

	if (!s)
		return -ENOMEM;
	if (cfg)
		s->cfg = *cfg;
	if (!s->cfg.budget)
		s->cfg.budget = BUDGET_DEFAULT;
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	if (s->ep < 0) {
		res = -errno;
		goto out_free;
	}
	res = evshm_listen(&s->l, name, opts);
	if (res < 0)
		goto out_close_ep;
	res = watch(s, EPOLL_CTL_ADD, evshm_listener_fd(s->l), EPOLLIN,
		    &s->tag_listener);
	if (res < 0)
		goto out_close_listener;
	*out = s;
	return 0;

out_close_listener:
	evshm_listener_close(s->l);
out_close_ep:
	close(s->ep);
out_free:
	free(s);
	return res;
}

int echo_server_watch(struct echo_server *s, int fd)
{
	return watch(s, EPOLL_CTL_ADD, fd, EPOLLIN, &s->tag_watch);
}

int echo_server_run(struct echo_server *s, int timeout_ms)
{
	struct epoll_event ev[MAX_EVENTS];
	int n, ret = 0;

	/* Clients with work left on the queue: look, but do not sleep. */
	n = epoll_wait(s->ep, ev, MAX_EVENTS, s->run_head ? 0 : timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.ptr == &s->tag_listener)
			accept_all(s);
		else if (ev[i].data.ptr == &s->tag_watch)
			ret = 1;
		else
			enqueue(s, ev[i].data.ptr);
	}
	/* One turn for each client queued now; those re-queued wait for
	 * the next round, after the others. */
	for (struct client *last = s->run_tail, *cl; (cl = dequeue(s));) {
		bool was_last = cl == last;

		serve(s, cl); /* may free cl */
		if (was_last)
			break;
	}
	return ret;
}

void echo_server_stats(const struct echo_server *s, struct echo_stats *st)
{
	*st = s->st;
}

void echo_server_close(struct echo_server *s)
{
	if (!s)
		return;
	s->run_head = s->run_tail = NULL; /* the queue only points into all */
	while (s->all)
		drop(s, s->all, 0);
	evshm_listener_close(s->l);
	close(s->ep);
	free(s);
}

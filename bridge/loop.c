/* SPDX-License-Identifier: MIT */
/* loop.c: see loop.h. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_EVENTS 64

struct loop {
	int ep;
	struct task *head, *tail;
	struct task mark; /* loop_run_tasks(): the end of the round */
};

uint64_t loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int loop_new(struct loop **out)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0) {
		int res = -errno;
		free(l);
		return res;
	}
	*out = l;
	return 0;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	close(l->ep);
	free(l);
}

int loop_add(struct loop *l, struct watch *w, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	w->fd = fd;
	w->events = events;
	return 0;
}

int loop_mod(struct loop *l, struct watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (w->events == events || w->fd < 0)
		return 0;
	if (epoll_ctl(l->ep, EPOLL_CTL_MOD, w->fd, &ev) < 0)
		return -errno;
	w->events = events;
	return 0;
}

void loop_del(struct loop *l, struct watch *w)
{
	if (w->fd < 0)
		return;
	epoll_ctl(l->ep, EPOLL_CTL_DEL, w->fd, NULL);
	w->fd = -1;
}

void loop_defer(struct loop *l, struct task *t)
{
	if (t->queued)
		return;
	t->queued = true;
	t->next = NULL;
	t->prev = l->tail;
	if (l->tail)
		l->tail->next = t;
	else
		l->head = t;
	l->tail = t;
}

void loop_cancel(struct loop *l, struct task *t)
{
	if (!t->queued)
		return;
	if (t->prev)
		t->prev->next = t->next;
	else
		l->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		l->tail = t->prev;
	t->queued = false;
}

bool loop_busy(const struct loop *l)
{
	return l->head != NULL;
}

int loop_wait(struct loop *l, int timeout_ms)
{
	struct epoll_event ev[LOOP_EVENTS];
	int n = epoll_wait(l->ep, ev, LOOP_EVENTS, l->head ? 0 : timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct watch *w = ev[i].data.ptr;
		w->fn(w, ev[i].events);
	}
	return 0;
}

void loop_run_tasks(struct loop *l)
{
	/* A marker at the tail ends the round: tasks queued from here on go
	 * behind it.  Unlike a pointer to the last task, the marker cannot
	 * be cancelled or freed by a task that runs before it.  (Not
	 * reentrant: a task never runs the loop.) */
	struct task *t;

	loop_defer(l, &l->mark);
	while ((t = l->head) != &l->mark) {
		loop_cancel(l, t);
		t->fn(t); /* may free t, may queue or cancel tasks */
	}
	loop_cancel(l, &l->mark);
}

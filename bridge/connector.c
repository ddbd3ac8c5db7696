/* SPDX-License-Identifier: MIT */
/* connector.c: see connector.h. */
#include "connector.h"
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum { REQ_QUEUED = 1, REQ_RUNNING, REQ_DONE };

/* One session's requests: those queued, and how many are running.  Lives
 * while it has either. */
struct conn_group {
	const void *key;
	struct conn_req *todo, *todo_tail;
	unsigned queued, running;
	bool ready;                  /* in the connector's ready list */
	struct conn_group *next;     /* every group */
	struct conn_group *rnext;    /* the ready list */
};

struct connector {
	pthread_t thread[CONNECTOR_MAX_THREADS];
	unsigned nthreads, busy;                 /* under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct conn_group *groups;               /* under lock */
	/* Groups with queued requests, in the order they are served. */
	struct conn_group *ready, *ready_tail;   /* under lock */
	struct conn_req *done, *done_tail;       /* under lock */
	bool stop;                               /* under lock */
	int efd;
};

static void push(struct conn_req **head, struct conn_req **tail,
		 struct conn_req *r)
{
	r->next = NULL;
	if (*tail)
		(*tail)->next = r;
	else
		*head = r;
	*tail = r;
}

static struct conn_req *pop(struct conn_req **head, struct conn_req **tail)
{
	struct conn_req *r = *head;

	if (r) {
		*head = r->next;
		if (!*head)
			*tail = NULL;
	}
	return r;
}

static void ready_append(struct connector *c, struct conn_group *g)
{
	g->rnext = NULL;
	if (c->ready_tail)
		c->ready_tail->rnext = g;
	else
		c->ready = g;
	c->ready_tail = g;
	g->ready = true;
}

static void ready_remove(struct connector *c, struct conn_group *g)
{
	struct conn_group **pp = &c->ready, *prev = NULL;

	for (; *pp != g; prev = *pp, pp = &(*pp)->rnext)
		;
	*pp = g->rnext;
	if (c->ready_tail == g)
		c->ready_tail = prev;
	g->ready = false;
}

static struct conn_group *group_get(struct connector *c, const void *key)
{
	struct conn_group *g;

	for (g = c->groups; g; g = g->next)
		if (g->key == key)
			return g;
	g = calloc(1, sizeof(*g));
	if (g) {
		g->key = key;
		g->next = c->groups;
		c->groups = g;
	}
	return g;
}

/* Free @g once it has nothing queued and nothing running. */
static void group_put(struct connector *c, struct conn_group *g)
{
	struct conn_group **pp = &c->groups;

	if (g->queued || g->running)
		return;
	for (; *pp != g; pp = &(*pp)->next)
		;
	*pp = g->next;
	free(g);
}

/* Requests that may start now: a worker would take them. */
static unsigned runnable(const struct connector *c)
{
	unsigned n = 0;

	for (const struct conn_group *g = c->ready; g; g = g->rnext) {
		unsigned room = CONNECTOR_PER_GROUP - g->running;
		n += g->queued < room ? g->queued : room;
	}
	return n;
}

/* The first request of the first group in turn that may run one; that
 * group goes to the back. */
static struct conn_req *pick(struct connector *c)
{
	struct conn_group *g;
	struct conn_req *r;

	for (g = c->ready; g && g->running >= CONNECTOR_PER_GROUP;
	     g = g->rnext)
		;
	if (!g)
		return NULL;
	ready_remove(c, g);
	r = pop(&g->todo, &g->todo_tail);
	g->queued--;
	g->running++;
	c->busy++;
	if (g->todo)
		ready_append(c, g);
	r->state = REQ_RUNNING;
	return r;
}

/* @r (queued, after @prev in its group's queue) leaves the queue. */
static void unqueue(struct connector *c, struct conn_req *prev,
		    struct conn_req *r)
{
	struct conn_group *g = r->group;

	if (prev)
		prev->next = r->next;
	else
		g->todo = r->next;
	if (g->todo_tail == r)
		g->todo_tail = prev;
	g->queued--;
	if (!g->todo && g->ready)
		ready_remove(c, g);
}

/* Hand @r back to the loop with @err (0: r->err as the connect set it). */
static void finish(struct connector *c, struct conn_req *r, int err)
{
	uint64_t one = 1;
	struct conn_group *g = r->group;

	if (err)
		r->err = err;
	if (r->state == REQ_RUNNING) {
		g->running--;
		c->busy--;
	}
	r->state = REQ_DONE;
	r->group = NULL;
	group_put(c, g);
	push(&c->done, &c->done_tail, r);
	/* The counter cannot overflow: the loop reads it each time it polls
	 * readable. */
	if (write(c->efd, &one, sizeof(one)) < 0)
		abort();
}

static void *worker(void *arg)
{
	struct connector *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct conn_req *r = NULL;

		while (!c->stop && !(r = pick(c)))
			pthread_cond_wait(&c->cond, &c->lock);
		if (c->stop)
			break;
		uint64_t now = loop_now_ms();
		if (now >= r->deadline_ms) {
			finish(c, r, -ETIMEDOUT); /* waited its whole time */
			continue;
		}
		int left = (int)(r->deadline_ms - now);
		struct evshm_opts o = r->opts;

		if (o.handshake_timeout_ms <= 0 || o.handshake_timeout_ms > left)
			o.handshake_timeout_ms = left;
		pthread_mutex_unlock(&c->lock);
		if (r->topic)
			r->err = evshm_sub_open(&r->sub, r->name, &o, left);
		else
			r->err = evshm_connect(&r->chan, r->name, &o, left);
		if (r->err < 0) {
			r->chan = NULL;
			r->sub = NULL;
		}
		pthread_mutex_lock(&c->lock);
		finish(c, r, 0);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int connector_new(struct connector **out)
{
	struct connector *c = calloc(1, sizeof(*c));
	int res;

	if (!c)
		return -ENOMEM;
	c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->efd < 0) {
		res = -errno;
		goto out_free;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	for (; c->nthreads < CONNECTOR_THREADS; c->nthreads++) {
		res = -pthread_create(&c->thread[c->nthreads], NULL, worker, c);
		if (res < 0)
			goto out_stop;
	}
	*out = c;
	return 0;

out_stop:
	connector_free(c); /* the threads started so far */
	return res;
out_free:
	free(c);
	return res;
}

int connector_fd(const struct connector *c)
{
	return c->efd;
}

int connector_submit(struct connector *c, const void *key,
		     struct conn_req *r)
{
	struct conn_group *g;

	r->chan = NULL;
	r->sub = NULL;
	r->err = 0;
	r->conn = c;
	r->deadline_ms = loop_now_ms() +
			 (uint64_t)(r->timeout_ms > 0 ? r->timeout_ms : 0);
	pthread_mutex_lock(&c->lock);
	g = group_get(c, key);
	if (!g) {
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	r->group = g;
	r->state = REQ_QUEUED;
	push(&g->todo, &g->todo_tail, r);
	g->queued++;
	if (!g->ready)
		ready_append(c, g);
	/* A thread for each request that may start: one more if the threads
	 * not connecting (waiting, woken or just started) are too few.  If
	 * none can be started, the running ones take it in turn. */
	if (runnable(c) > c->nthreads - c->busy &&
	    c->nthreads < CONNECTOR_MAX_THREADS &&
	    pthread_create(&c->thread[c->nthreads], NULL, worker, c) == 0)
		c->nthreads++;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void connector_cancel(struct conn_req *r)
{
	struct connector *c = r->conn;

	pthread_mutex_lock(&c->lock);
	if (r->state == REQ_QUEUED) {
		struct conn_req *prev = NULL;

		for (struct conn_req *q = r->group->todo; q != r; q = q->next)
			prev = q;
		unqueue(c, prev, r);
		finish(c, r, -ECANCELED); /* nobody wants it: never connect */
	}
	pthread_mutex_unlock(&c->lock);
	r->owner = NULL;
}

void connector_expire(struct connector *c, uint64_t now)
{
	pthread_mutex_lock(&c->lock);
	for (struct conn_group *g = c->groups, *gn; g; g = gn) {
		struct conn_req *prev = NULL, *r, *rn;

		gn = g->next; /* finish() may free g */
		for (r = g->todo; r; r = rn) {
			rn = r->next;
			if (r->deadline_ms > now) {
				prev = r;
				continue;
			}
			unqueue(c, prev, r);
			finish(c, r, -ETIMEDOUT);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

struct conn_req *connector_done(struct connector *c)
{
	struct conn_req *r;
	uint64_t n;

	pthread_mutex_lock(&c->lock);
	r = pop(&c->done, &c->done_tail);
	if (!c->done && read(c->efd, &n, sizeof(n)) < 0) {
		/* EAGAIN: already reset. */
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

unsigned connector_threads(struct connector *c)
{
	unsigned n;

	pthread_mutex_lock(&c->lock);
	n = c->nthreads;
	pthread_mutex_unlock(&c->lock);
	return n;
}

static void free_all(struct conn_req *r)
{
	while (r) {
		struct conn_req *next = r->next;
		evshm_close(r->chan);
		evshm_sub_close(r->sub);
		free(r);
		r = next;
	}
}

void connector_free(struct connector *c)
{
	unsigned n;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	n = c->nthreads;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(c->thread[i], NULL);
	while (c->groups) {
		struct conn_group *g = c->groups;

		c->groups = g->next;
		free_all(g->todo);
		free(g);
	}
	free_all(c->done);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	close(c->efd);
	free(c);
}

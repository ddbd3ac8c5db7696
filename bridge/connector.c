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

struct connector {
	pthread_t thread[CONNECTOR_THREADS];
	unsigned nthreads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct conn_req *todo, *todo_tail;  /* under lock */
	struct conn_req *done, *done_tail;  /* under lock */
	bool stop;                          /* under lock */
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

static void *worker(void *arg)
{
	struct connector *c = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct conn_req *r;

		while (!c->stop && !c->todo)
			pthread_cond_wait(&c->cond, &c->lock);
		if (c->stop)
			break;
		r = pop(&c->todo, &c->todo_tail);
		uint64_t now = loop_now_ms();
		if (r->cancelled) {
			r->err = -ECANCELED; /* nobody wants it: never connect */
		} else if (now >= r->deadline_ms) {
			r->err = -ETIMEDOUT; /* waited its whole time in line */
		} else {
			int left = (int)(r->deadline_ms - now);
			struct evshm_opts o = r->opts;

			if (o.handshake_timeout_ms <= 0 ||
			    o.handshake_timeout_ms > left)
				o.handshake_timeout_ms = left;
			pthread_mutex_unlock(&c->lock);
			if (r->topic)
				r->err = evshm_sub_open(&r->sub, r->name, &o,
							left);
			else
				r->err = evshm_connect(&r->chan, r->name, &o,
						       left);
			if (r->err < 0) {
				r->chan = NULL;
				r->sub = NULL;
			}
			pthread_mutex_lock(&c->lock);
		}
		push(&c->done, &c->done_tail, r);
		/* The counter cannot overflow: the loop reads it each time it
		 * polls readable. */
		if (write(c->efd, &one, sizeof(one)) < 0)
			abort();
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

void connector_submit(struct connector *c, struct conn_req *r)
{
	r->chan = NULL;
	r->sub = NULL;
	r->err = 0;
	r->cancelled = false;
	r->conn = c;
	r->deadline_ms = loop_now_ms() + (uint64_t)(r->timeout_ms > 0 ? r->timeout_ms
							       : 0);
	pthread_mutex_lock(&c->lock);
	push(&c->todo, &c->todo_tail, r);
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

void connector_cancel(struct conn_req *r)
{
	pthread_mutex_lock(&r->conn->lock);
	r->cancelled = true;
	pthread_mutex_unlock(&r->conn->lock);
	r->owner = NULL;
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
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < c->nthreads; i++)
		pthread_join(c->thread[i], NULL);
	free_all(c->todo);
	free_all(c->done);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	close(c->efd);
	free(c);
}

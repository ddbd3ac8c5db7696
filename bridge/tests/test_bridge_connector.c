/* SPDX-License-Identifier: MIT */
/*
 * The export's connector (bridge/connector.c) against two local servers
 * in this process: one that stalls every connect (a listening socket that
 * never accepts: the client waits in the handshake) and one that answers.
 *  - one_group_cannot_hold_the_others: a session whose connects all stall
 *    runs at most CONNECTOR_PER_GROUP of them, and another session's
 *    connect gets a thread of its own and goes through while they are
 *    still stalled; cancelling the queued ones hands them back at once;
 *  - saturated: with every thread stalled (CONNECTOR_MAX_THREADS, four
 *    sessions), a request queued past its deadline comes back at the next
 *    connector_expire() without connecting, and when one thread frees up
 *    the sessions waiting take turns (the second session's one request
 *    goes before the first session's second).
 * Every check is causal (which request comes back, in which order), none
 * is a timing; the waits only bound a broken connector.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <evshm.h>

#include "connector.h"
#include "loop.h"
#include "util.h"

#define LONG_MS 30000 /* a stalled connect's timeout: never reached */

struct servers {
	char stall[64], good[64];
	int raw;                       /* the stall listener */
	struct evshm_listener *l;      /* the good one */
	pthread_t t;
	atomic_bool stop;
	atomic_int accepted;
};

static void *serve(void *arg)
{
	struct servers *s = arg;

	while (!atomic_load(&s->stop)) {
		struct evshm_chan *c;

		if (evshm_accept(s->l, &c, 50) == 0) {
			atomic_fetch_add(&s->accepted, 1);
			evshm_close(c);
		}
	}
	return NULL;
}

/* The good server has taken @n clients (a client's connect may return
 * before the server's accept does). */
static void wait_accepted(struct servers *s, int n)
{
	const struct timespec tick = { .tv_sec = 0, .tv_nsec = 1000000 };
	uint64_t end = tu_now_ms() + 10000;

	while (atomic_load(&s->accepted) < n && tu_now_ms() < end)
		nanosleep(&tick, NULL);
	assert_int_equal(atomic_load(&s->accepted), n);
}

static void servers_start(struct servers *s)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t n;

	memset(s, 0, sizeof(*s));
	tu_unique_name(s->stall, sizeof(s->stall), "conn-stall", true);
	tu_unique_name(s->good, sizeof(s->good), "conn-good", true);
	n = strlen(s->stall);
	assert_true(n <= sizeof(a.sun_path) && s->stall[0] == '@');
	memcpy(a.sun_path + 1, s->stall + 1, n - 1);
	s->raw = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(s->raw >= 0);
	assert_int_equal(bind(s->raw, (struct sockaddr *)&a,
			      (socklen_t)(offsetof(struct sockaddr_un,
						   sun_path) + n)), 0);
	assert_int_equal(listen(s->raw, 64), 0);
	tu_assert_res(evshm_listen(&s->l, s->good, NULL), 0);
	assert_int_equal(pthread_create(&s->t, NULL, serve, s), 0);
}

static void servers_stop(struct servers *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->t, NULL);
	evshm_listener_close(s->l);
	if (s->raw >= 0)
		close(s->raw);
}

static struct conn_req *req(struct connector *c, const void *key,
			    const char *name, int timeout_ms)
{
	struct conn_req *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->name = name;
	r->timeout_ms = timeout_ms;
	r->owner = r;
	tu_assert_res(connector_submit(c, key, r), 0);
	return r;
}

/* The next request back, waiting at most @ms; NULL if none came. */
static struct conn_req *next_done(struct connector *c, int ms)
{
	struct pollfd p = { .fd = connector_fd(c), .events = POLLIN };
	uint64_t end = tu_now_ms() + (uint64_t)ms;
	struct conn_req *r;

	while (!(r = connector_done(c))) {
		uint64_t now = tu_now_ms();
		if (now >= end || poll(&p, 1, (int)(end - now)) < 0)
			return NULL;
	}
	return r;
}

static void done_with(struct conn_req *r)
{
	evshm_close(r->chan);
	free(r);
}

/* Every request of @rs (n of them) back, in any order, each with an
 * error; the stalled connects end when the stall listener closes. */
static void collect_failed(struct connector *c, struct conn_req **rs,
			   unsigned n)
{
	for (unsigned got = 0; got < n; got++) {
		struct conn_req *r = next_done(c, 10000);
		unsigned i;

		assert_non_null(r);
		for (i = 0; i < n && rs[i] != r; i++)
			;
		assert_true(i < n);
		assert_true(r->err < 0);
		assert_null(r->chan);
		rs[i] = NULL;
		done_with(r);
	}
}

static void one_group_cannot_hold_the_others(void **state)
{
	struct servers s;
	struct connector *c;
	struct conn_req *a[CONNECTOR_PER_GROUP + 2], *b, *r;
	int key_a, key_b;
	unsigned n = CONNECTOR_PER_GROUP + 2;
	(void)state;

	servers_start(&s);
	tu_assert_res(connector_new(&c), 0);
	assert_int_equal(connector_threads(c), CONNECTOR_THREADS);
	for (unsigned i = 0; i < n; i++)
		a[i] = req(c, &key_a, s.stall, LONG_MS);
	/* Session A runs as many as it may, and no more: the last two stay
	 * queued (a bounded look for a fifth, which a cap would not let
	 * in). */
	tu_assert_res(tu_wait_backlog(s.stall, CONNECTOR_PER_GROUP, 10000), 0);
	tu_assert_res(tu_wait_backlog(s.stall, CONNECTOR_PER_GROUP + 1, 300),
		      -ETIMEDOUT);

	/* Session B's connect: through, while all of A's still wait. */
	b = req(c, &key_b, s.good, LONG_MS);
	r = next_done(c, 15000);
	assert_ptr_equal(r, b);
	tu_assert_res(r->err, 0);
	assert_non_null(r->chan);
	wait_accepted(&s, 1);
	done_with(r);
	assert_int_equal(connector_threads(c), CONNECTOR_THREADS + 1);

	/* The two queued: back at once, never connected. */
	connector_cancel(a[n - 1]);
	connector_cancel(a[n - 2]);
	for (unsigned i = 0; i < 2; i++) {
		r = next_done(c, 1000);
		assert_non_null(r);
		assert_true(r == a[n - 1] || r == a[n - 2]);
		assert_null(r->owner);
		tu_assert_res(r->err, -ECANCELED);
		done_with(r);
	}
	assert_int_equal(tu_wait_backlog(s.stall, CONNECTOR_PER_GROUP + 1, 0),
			 -ETIMEDOUT);

	close(s.raw); /* the stalled handshakes end */
	s.raw = -1;
	collect_failed(c, a, CONNECTOR_PER_GROUP);
	assert_null(connector_done(c));
	connector_free(c);
	servers_stop(&s);
}

static void saturated(void **state)
{
	enum { GROUPS = CONNECTOR_MAX_THREADS / CONNECTOR_PER_GROUP };
	struct servers s;
	struct connector *c;
	struct conn_req *stalled[CONNECTOR_MAX_THREADS], *e, *f[4], *g, *r;
	int keys[GROUPS], key_e, key_f, key_g;
	const struct timespec pause = { .tv_sec = 0, .tv_nsec = 300000000 };
	(void)state;

	servers_start(&s);
	tu_assert_res(connector_new(&c), 0);
	for (unsigned i = 0; i < CONNECTOR_MAX_THREADS; i++)
		stalled[i] = req(c, &keys[i / CONNECTOR_PER_GROUP], s.stall,
				 LONG_MS);
	tu_assert_res(tu_wait_backlog(s.stall, CONNECTOR_MAX_THREADS, 10000),
		      0);
	assert_int_equal(connector_threads(c), CONNECTOR_MAX_THREADS);

	/* No thread for E: at its deadline it waits still, and the next
	 * expiry hands it back without connecting. */
	e = req(c, &key_e, s.good, 100);
	nanosleep(&pause, NULL);
	assert_null(connector_done(c));
	connector_expire(c, loop_now_ms());
	r = next_done(c, 1000);
	assert_ptr_equal(r, e);
	tu_assert_res(r->err, -ETIMEDOUT);
	assert_null(r->chan);
	done_with(r);
	assert_int_equal(atomic_load(&s.accepted), 0);

	/* F queues four, then G one.  One thread frees up (a stalled client
	 * is let go): it takes F's first, then G's, then F's others. */
	for (unsigned i = 0; i < 4; i++)
		f[i] = req(c, &key_f, s.good, LONG_MS);
	g = req(c, &key_g, s.good, LONG_MS);
	nanosleep(&pause, NULL);
	assert_null(connector_done(c));
	int one = accept4(s.raw, NULL, NULL, SOCK_CLOEXEC);
	assert_true(one >= 0);
	close(one);
	r = next_done(c, 10000);
	assert_non_null(r);
	assert_true(r->err < 0); /* the stalled one let go */
	for (unsigned i = 0; i < CONNECTOR_MAX_THREADS; i++)
		if (stalled[i] == r)
			stalled[i] = NULL;
	done_with(r);
	struct conn_req *order[] = { f[0], g, f[1], f[2], f[3] };
	for (unsigned i = 0; i < 5; i++) {
		r = next_done(c, 10000);
		assert_ptr_equal(r, order[i]);
		tu_assert_res(r->err, 0);
		done_with(r);
	}
	wait_accepted(&s, 5);

	/* The other fifteen: a session that ends cancels them (they run on
	 * and are handed back when they end). */
	struct conn_req *left[CONNECTOR_MAX_THREADS];
	unsigned n = 0;
	for (unsigned i = 0; i < CONNECTOR_MAX_THREADS; i++)
		if (stalled[i]) {
			connector_cancel(stalled[i]);
			left[n++] = stalled[i];
		}
	assert_int_equal(n, CONNECTOR_MAX_THREADS - 1);
	close(s.raw);
	s.raw = -1;
	collect_failed(c, left, n);
	connector_free(c);
	servers_stop(&s);
}

/* What is still queued or done when the connector goes is freed with it
 * (under ASan and valgrind: nothing leaks). */
static void free_with_requests(void **state)
{
	struct servers s;
	struct connector *c;
	int key;
	(void)state;

	servers_start(&s);
	tu_assert_res(connector_new(&c), 0);
	for (unsigned i = 0; i < CONNECTOR_PER_GROUP + 3; i++)
		req(c, &key, s.stall, 2000);
	req(c, &key, s.good, LONG_MS);
	tu_assert_res(tu_wait_backlog(s.stall, CONNECTOR_PER_GROUP, 10000), 0);
	close(s.raw);
	s.raw = -1;
	connector_free(c); /* after the running ones end */
	servers_stop(&s);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_group_cannot_hold_the_others),
		cmocka_unit_test(saturated),
		cmocka_unit_test(free_with_requests),
	};
	return TU_RUN(tests, argc, argv);
}

/* SPDX-License-Identifier: MIT */
/*
 * bench_xport_evshm.c: evshm itself, through the public API only, with
 * the options of the spec (ring size, spin_ns: 0 leaves the library's
 * default).  Two ways to move a message:
 *   copy       evshm_send from a private buffer, evshm_recv into one;
 *   zero copy  the sender generates the payload in the ring
 *              (evshm_reserve / evshm_commit), the receiver verifies it
 *              there (evshm_peek / evshm_release).
 * Topics for the fan-out test, both ways too: the publisher (side A)
 * writes each message once, every subscriber reads it from the same ring
 * (reliable: the publisher waits for the slowest).
 */
#include <errno.h>
#include <stdlib.h>

#include "bench_xport.h"

struct evshm_link {
	struct evshm_listener *l;   /* side A until it met B */
	struct evshm_chan *c;
	struct evshm_pub *pub;      /* fan-out, side A */
	struct evshm_sub *sub;      /* fan-out, side B */
	void *wbuf, *rbuf;          /* copy API */
	unsigned npeek;             /* batch: messages peeked, unreleased */
};

/* Batch receivers: runs of at most this many messages per release. */
#define BATCH_MAX 64

static struct evshm_opts opts_for(const struct bench_spec *s)
{
	/* Fan-out: the stall bound of evshm pub, not the library's 1 s; a run
	 * on a loaded machine must not lose a subscriber that was only not
	 * scheduled for a while. */
	return (struct evshm_opts){ .ring_size = s->ring, .spin_ns = s->spin_ns,
				    .max_ring_size = EVSHM_RING_MAX,
				    .stall_timeout_ms = 10000 };
}

static int ev_new(struct link *l, const struct bench_spec *s)
{
	struct evshm_link *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	l->priv = e;
	e->wbuf = bench_alloc(s->size);
	e->rbuf = bench_alloc(s->size);
	return e->wbuf && e->rbuf ? 0 : -ENOMEM;
}

static int ev_open_a(struct link *l, const struct bench_spec *s,
		     int fds[SYS_MAX_FDS], unsigned *nfds)
{
	struct evshm_opts o = opts_for(s);
	int res = ev_new(l, s);
	struct evshm_link *e = l->priv;

	(void)fds;
	*nfds = 0;
	return res < 0 ? res : evshm_listen(&e->l, s->name, &o);
}

static int ev_meet_a(struct link *l, const struct bench_spec *s)
{
	struct evshm_link *e = l->priv;
	int res = evshm_accept(e->l, &e->c, BENCH_WAIT_MS);

	(void)s;
	evshm_listener_close(e->l);
	e->l = NULL;
	return res;
}

static int ev_open_b(struct link *l, const struct bench_spec *s,
		     const int *fds, unsigned nfds)
{
	struct evshm_opts o = opts_for(s);
	int res = ev_new(l, s);
	struct evshm_link *e = l->priv;

	(void)fds;
	(void)nfds;
	return res < 0 ? res : evshm_connect(&e->c, s->name, &o, BENCH_WAIT_MS);
}

static void ev_close(struct link *l)
{
	struct evshm_link *e = l->priv;

	if (!e)
		return;
	evshm_listener_close(e->l);
	evshm_close(e->c);
	evshm_pub_close(e->pub);
	evshm_sub_close(e->sub);
	free(e->wbuf);
	free(e->rbuf);
	free(e);
	l->priv = NULL;
}

static void ev_stats(struct link *l, struct evshm_stats *st)
{
	struct evshm_link *e = l->priv;

	evshm_stats(e->c, st);
}

/* --- copy --------------------------------------------------------------- */

static int copy_tx_get(struct link *l, void **p)
{
	struct evshm_link *e = l->priv;

	*p = e->wbuf;
	return 0;
}

static int copy_tx_put(struct link *l)
{
	struct evshm_link *e = l->priv;

	return evshm_send(e->c, e->wbuf, l->size, BENCH_WAIT_MS);
}

static int copy_rx_get(struct link *l, const void **p, size_t *len)
{
	struct evshm_link *e = l->priv;
	int res = evshm_recv(e->c, e->rbuf, l->size, BENCH_WAIT_MS);

	if (res < 0)
		return res;
	*p = e->rbuf;
	*len = (size_t)res;
	return 0;
}

static int copy_rx_put(struct link *l)
{
	(void)l;
	return 0;
}

/* --- zero copy ---------------------------------------------------------- */

static int zc_tx_get(struct link *l, void **p)
{
	struct evshm_link *e = l->priv;

	return evshm_reserve(e->c, l->size, p, BENCH_WAIT_MS);
}

static int zc_tx_put(struct link *l)
{
	struct evshm_link *e = l->priv;

	return evshm_commit(e->c, l->size);
}

static int zc_rx_get(struct link *l, const void **p, size_t *len)
{
	struct evshm_link *e = l->priv;

	return evshm_peek(e->c, p, len, BENCH_WAIT_MS);
}

static int zc_rx_put(struct link *l)
{
	struct evshm_link *e = l->priv;

	return evshm_release(e->c);
}

/* Batch: the next message is added to the run peeked so far while there
 * is one (and the run is short enough); otherwise the run is released
 * and a new one starts with a peek that may wait.  Each message is
 * verified while it is peeked; rx_put has nothing to do. */
static int batch_rx_get(struct link *l, const void **p, size_t *len)
{
	struct evshm_link *e = l->priv;
	int res;

	if (e->npeek) {
		if (e->npeek < BATCH_MAX &&
		    (e->c ? evshm_peek_next(e->c, p, len) :
			    evshm_sub_peek_next(e->sub, p, len)) == 0) {
			e->npeek++;
			return 0;
		}
		res = e->c ? evshm_release(e->c) : evshm_sub_release(e->sub);
		e->npeek = 0;
		if (res < 0)
			return res;
	}
	res = e->c ? evshm_peek(e->c, p, len, BENCH_WAIT_MS) :
		     evshm_sub_peek(e->sub, p, len, BENCH_WAIT_MS);
	if (res == 0)
		e->npeek = 1;
	return res;
}

static int batch_rx_put(struct link *l)
{
	(void)l;
	return 0;
}

#define EV_SETUP                                                              \
	.open_a = ev_open_a, .meet_a = ev_meet_a, .open_b = ev_open_b,        \
	.close = ev_close, .stats = ev_stats

const struct xport xport_evshm_copy = {
	.name = "evshm copy",
	EV_SETUP,
	.tx_get = copy_tx_get, .tx_put = copy_tx_put,
	.rx_get = copy_rx_get, .rx_put = copy_rx_put,
};

const struct xport xport_evshm_zc = {
	.name = "evshm zero copy",
	EV_SETUP,
	.tx_get = zc_tx_get, .tx_put = zc_tx_put,
	.rx_get = zc_rx_get, .rx_put = zc_rx_put,
};

const struct xport xport_evshm_batch = {
	.name = "evshm zero copy, batch",
	EV_SETUP,
	.tx_get = zc_tx_get, .tx_put = zc_tx_put,
	.rx_get = batch_rx_get, .rx_put = batch_rx_put,
};

/* --- topics --------------------------------------------------------------- */

static int topic_open_a(struct link *l, const struct bench_spec *s,
			int fds[SYS_MAX_FDS], unsigned *nfds)
{
	struct evshm_opts o = opts_for(s);
	int res = ev_new(l, s);
	struct evshm_link *e = l->priv;

	(void)fds;
	*nfds = 0;
	/* Reliable (the default): no subscriber may miss a message. */
	o.max_clients = s->subs;
	return res < 0 ? res : evshm_pub_open(&e->pub, s->name, &o);
}

static int topic_meet_a(struct link *l, const struct bench_spec *s)
{
	struct evshm_link *e = l->priv;
	uint64_t deadline = sys_deadline(BENCH_WAIT_MS);
	int n = 0;

	while (n >= 0 && (unsigned)n < s->subs) {
		if (sys_now_ns() >= deadline)
			return -ETIMEDOUT;
		n = evshm_pub_serve(e->pub, sys_ms_left(deadline));
	}
	return n < 0 ? n : 0;
}

static int topic_open_b(struct link *l, const struct bench_spec *s,
			const int *fds, unsigned nfds)
{
	struct evshm_opts o = opts_for(s);
	int res = ev_new(l, s);
	struct evshm_link *e = l->priv;

	(void)fds;
	(void)nfds;
	return res < 0 ? res : evshm_sub_open(&e->sub, s->name, &o,
					      BENCH_WAIT_MS);
}

static void topic_stats(struct link *l, struct evshm_stats *st)
{
	struct evshm_link *e = l->priv;
	struct evshm_pub_stats ps;

	if (e->sub) {
		evshm_sub_stats(e->sub, st);
		return;
	}
	evshm_pub_stats(e->pub, &ps);
	*st = (struct evshm_stats){ .msgs_sent = ps.msgs_sent,
				    .bytes_sent = ps.bytes_sent,
				    .kicks_sent = ps.kicks_sent,
				    .sleeps = ps.sleeps };
}

static int topic_tx_put(struct link *l)
{
	struct evshm_link *e = l->priv;

	return evshm_pub_send(e->pub, e->wbuf, l->size, BENCH_WAIT_MS);
}

static int topic_rx_get(struct link *l, const void **p, size_t *len)
{
	struct evshm_link *e = l->priv;
	int res = evshm_sub_recv(e->sub, e->rbuf, l->size, BENCH_WAIT_MS);

	if (res < 0)
		return res;
	*p = e->rbuf;
	*len = (size_t)res;
	return 0;
}

static int topic_zc_tx_get(struct link *l, void **p)
{
	struct evshm_link *e = l->priv;

	return evshm_pub_reserve(e->pub, l->size, p, BENCH_WAIT_MS);
}

static int topic_zc_tx_put(struct link *l)
{
	struct evshm_link *e = l->priv;

	return evshm_pub_commit(e->pub, l->size);
}

static int topic_zc_rx_get(struct link *l, const void **p, size_t *len)
{
	struct evshm_link *e = l->priv;

	return evshm_sub_peek(e->sub, p, len, BENCH_WAIT_MS);
}

static int topic_zc_rx_put(struct link *l)
{
	struct evshm_link *e = l->priv;

	return evshm_sub_release(e->sub);
}

#define TOPIC_SETUP                                                           \
	.open_a = topic_open_a, .meet_a = topic_meet_a,                       \
	.open_b = topic_open_b, .close = ev_close, .stats = topic_stats

const struct xport xport_topic_copy = {
	.name = "evshm topic copy",
	TOPIC_SETUP,
	.tx_get = copy_tx_get, .tx_put = topic_tx_put,
	.rx_get = topic_rx_get, .rx_put = copy_rx_put,
};

const struct xport xport_topic_zc = {
	.name = "evshm topic zero copy",
	TOPIC_SETUP,
	.tx_get = topic_zc_tx_get, .tx_put = topic_zc_tx_put,
	.rx_get = topic_zc_rx_get, .rx_put = topic_zc_rx_put,
};

const struct xport xport_topic_batch = {
	.name = "evshm topic zero copy, batch",
	TOPIC_SETUP,
	.tx_get = topic_zc_tx_get, .tx_put = topic_zc_tx_put,
	.rx_get = batch_rx_get, .rx_put = batch_rx_put,
};

/* SPDX-License-Identifier: MIT */
/*
 * bench_xport_zmq.c: ZeroMQ publish/subscribe over ipc:// (a Unix socket
 * at the test's abstract name), for the fan-out test, when the tool is
 * built with libzmq (EVSHM_HAVE_ZMQ; Debian libzmq3-dev).
 *
 * PUB/SUB drops a message for a subscriber whose queue is full, silently.
 * To compare like with like (evshm topics here are reliable: the publisher
 * waits for the slowest subscriber), the publisher is an XPUB socket with
 * ZMQ_XPUB_NODROP: a send to a full queue waits instead (bounded by
 * ZMQ_SNDTIMEO).  Every subscriber still checks every sequence number, so
 * a message lost anyway fails the run.  The queues are bounded in bytes as
 * the evshm ring is: half the ring each way (ZMQ_SNDHWM on the publisher,
 * ZMQ_RCVHWM on each subscriber), in messages of the test's size.
 *
 * The publisher waits until it has seen every subscriber's subscription
 * (ZMQ_XPUB_VERBOSE: each one, not only the first) before it sends: no
 * message goes out before a subscriber is there to get it ("slow joiner").
 * Each process has ZeroMQ's I/O thread besides its own: it inherits the
 * process's CPU placement.  Sending copies the payload into a message
 * (zmq_send); receiving verifies it in the message ZeroMQ received into
 * (zmq_msg_recv).
 */
#include <stdbool.h>

#include "bench_xport.h"

#ifndef EVSHM_HAVE_ZMQ

const bool bench_zmq_built = false;
const struct xport xport_zmq = { .name = "zeromq (not built in)" };

#else

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

const bool bench_zmq_built = true;

struct zmq_link {
	void *ctx, *sock;
	void *wbuf, *rbuf;      /* rbuf: a copy when ZeroMQ's is misaligned */
	zmq_msg_t msg;
	bool have_msg;
};

static int zerr(void)
{
	return -(errno ? errno : EIO);
}

/* Half the ring each way, in messages of @size bytes (at least 2). */
static int hwm_for(const struct bench_spec *s)
{
	uint64_t n = (uint64_t)s->ring / 2 / s->size;
	return n < 2 ? 2 : n > 1u << 30 ? 1 << 30 : (int)n;
}

static int zsetint(void *sock, int opt, int v)
{
	return zmq_setsockopt(sock, opt, &v, sizeof(v)) < 0 ? zerr() : 0;
}

static int zopen(struct link *l, const struct bench_spec *s, int type)
{
	struct zmq_link *z = calloc(1, sizeof(*z));

	if (!z)
		return -ENOMEM;
	l->priv = z;
	z->wbuf = bench_alloc(s->size);
	z->rbuf = bench_alloc(s->size);
	if (!z->wbuf || !z->rbuf)
		return -ENOMEM;
	z->ctx = zmq_ctx_new();
	if (!z->ctx)
		return zerr();
	z->sock = zmq_socket(z->ctx, type);
	return z->sock ? 0 : zerr();
}

/* "ipc://@name" for "@name"; a path stays a path. */
static void endpoint(char *buf, size_t n, const struct bench_spec *s)
{
	snprintf(buf, n, "ipc://%s", s->name);
}

static int zmq_open_a(struct link *l, const struct bench_spec *s,
		      int fds[SYS_MAX_FDS], unsigned *nfds)
{
	char ep[BENCH_NAME_MAX + 8];
	struct zmq_link *z;
	int res = zopen(l, s, ZMQ_XPUB);

	(void)fds;
	*nfds = 0;
	if (res < 0)
		return res;
	z = l->priv;
	endpoint(ep, sizeof(ep), s);
	/* Wait for room rather than drop; hear every subscription; let
	 * what is queued go out at close (bounded). */
	if ((res = zsetint(z->sock, ZMQ_SNDHWM, hwm_for(s))) < 0 ||
	    (res = zsetint(z->sock, ZMQ_XPUB_NODROP, 1)) < 0 ||
	    (res = zsetint(z->sock, ZMQ_XPUB_VERBOSE, 1)) < 0 ||
	    (res = zsetint(z->sock, ZMQ_SNDTIMEO, BENCH_WAIT_MS)) < 0 ||
	    (res = zsetint(z->sock, ZMQ_RCVTIMEO, BENCH_WAIT_MS)) < 0 ||
	    (res = zsetint(z->sock, ZMQ_LINGER, BENCH_WAIT_MS)) < 0)
		return res;
	return zmq_bind(z->sock, ep) < 0 ? zerr() : 0;
}

/* Every subscriber's subscription: a message [1, prefix...]. */
static int zmq_meet_a(struct link *l, const struct bench_spec *s)
{
	struct zmq_link *z = l->priv;
	unsigned char sub[64];

	for (unsigned n = 0; n < s->subs;) {
		int r = zmq_recv(z->sock, sub, sizeof(sub), 0);
		if (r < 0)
			return zerr();
		if (r >= 1 && sub[0] == 1)
			n++;
	}
	return 0;
}

static int zmq_open_b(struct link *l, const struct bench_spec *s,
		      const int *fds, unsigned nfds)
{
	char ep[BENCH_NAME_MAX + 8];
	struct zmq_link *z;
	int res = zopen(l, s, ZMQ_SUB);

	(void)fds;
	(void)nfds;
	if (res < 0)
		return res;
	z = l->priv;
	endpoint(ep, sizeof(ep), s);
	if ((res = zsetint(z->sock, ZMQ_RCVHWM, hwm_for(s))) < 0 ||
	    (res = zsetint(z->sock, ZMQ_RCVTIMEO, BENCH_WAIT_MS)) < 0 ||
	    (res = zsetint(z->sock, ZMQ_LINGER, 0)) < 0)
		return res;
	if (zmq_connect(z->sock, ep) < 0 ||
	    zmq_setsockopt(z->sock, ZMQ_SUBSCRIBE, "", 0) < 0)
		return zerr();
	return 0;
}

static void zmq_link_close(struct link *l)
{
	struct zmq_link *z = l->priv;

	if (!z)
		return;
	if (z->have_msg)
		zmq_msg_close(&z->msg);
	if (z->sock)
		zmq_close(z->sock);
	if (z->ctx)
		zmq_ctx_term(z->ctx);
	free(z->wbuf);
	free(z->rbuf);
	free(z);
	l->priv = NULL;
}

static int zmq_tx_get(struct link *l, void **p)
{
	struct zmq_link *z = l->priv;

	*p = z->wbuf;
	return 0;
}

static int zmq_tx_put(struct link *l)
{
	struct zmq_link *z = l->priv;

	return zmq_send(z->sock, z->wbuf, l->size, 0) < 0 ? zerr() : 0;
}

static int zmq_rx_get(struct link *l, const void **p, size_t *len)
{
	struct zmq_link *z = l->priv;

	if (zmq_msg_init(&z->msg) < 0)
		return zerr();
	z->have_msg = true;
	if (zmq_msg_recv(&z->msg, z->sock, 0) < 0)
		return errno == EAGAIN ? -ETIMEDOUT : zerr();
	*p = zmq_msg_data(&z->msg);
	*len = zmq_msg_size(&z->msg);
	/* Small messages live inside zmq_msg_t, maybe unaligned for the
	 * payload's 64-bit words. */
	if ((uintptr_t)*p % 8 && *len <= l->size) {
		memcpy(z->rbuf, *p, *len);
		*p = z->rbuf;
	}
	return 0;
}

static int zmq_rx_put(struct link *l)
{
	struct zmq_link *z = l->priv;

	z->have_msg = false;
	return zmq_msg_close(&z->msg) < 0 ? zerr() : 0;
}

const struct xport xport_zmq = {
	.name = "zeromq",
	.open_a = zmq_open_a, .meet_a = zmq_meet_a, .open_b = zmq_open_b,
	.close = zmq_link_close,
	.tx_get = zmq_tx_get, .tx_put = zmq_tx_put,
	.rx_get = zmq_rx_get, .rx_put = zmq_rx_put,
};

#endif

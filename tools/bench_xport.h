/* SPDX-License-Identifier: MIT */
/*
 * bench_xport.h: the transports of `evshm bench` behind one table of
 * operations, so that the loops of bench_run.c (round trips, streaming)
 * are written once and each transport does exactly the work its API asks
 * for.
 *
 * A transport that carries messages has the four steps:
 *   tx_get   where to write the next message (a private buffer, or a
 *            reservation in shared memory);
 *   tx_put   send it;
 *   rx_get   the next message (a pointer to it and its length);
 *   rx_put   done with it.
 * A floor that moves no payload (a cache line, an eventfd) has hop_send
 * and hop_recv instead: one bare 64-bit value each way.
 *
 * Every operation returns 0 or a negative errno; -EPIPE from rx_get or
 * hop_recv means the other side has gone.  Every wait is bounded: by
 * BENCH_WAIT_MS (-ETIMEDOUT) where the transport waits with a timeout
 * (evshm, the spinning floors), by the test's watchdog (bench_run.c)
 * where it blocks in a plain read or write, as the sockets, pipes and the
 * eventfd floor do.
 */
#ifndef EVSHM_TOOL_BENCH_XPORT_H
#define EVSHM_TOOL_BENCH_XPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <evshm.h>

#include "bench_run.h"
#include "sys.h"

/* Longest any single wait may take before the test is declared hung. */
#define BENCH_WAIT_MS 30000

/* One side of one transport in one test. */
struct link {
	const struct xport *x;
	bool a;                 /* side A (ping side, receiver) */
	size_t size;            /* payload bytes of every message */
	void *priv;             /* the transport's own state */
};

struct xport {
	const char *name;       /* in error messages */
	/* Side A, before the spec goes to B: make what the two will share
	 * (a listening socket, pipes, shared memory) and put the
	 * descriptors B needs in @fds; the caller sends and then closes
	 * them. */
	int (*open_a)(struct link *l, const struct bench_spec *s,
		      int fds[SYS_MAX_FDS], unsigned *nfds);
	/* Side A, once B has the spec: meet B (accept); may be NULL. */
	int (*meet_a)(struct link *l, const struct bench_spec *s);
	/* Side B: meet A with what came with the spec (ours to keep or
	 * close). */
	int (*open_b)(struct link *l, const struct bench_spec *s,
		      const int *fds, unsigned nfds);
	/* Release everything; safe after a failed open. */
	void (*close)(struct link *l);

	/* Messages (NULL for the bare floors). */
	int (*tx_get)(struct link *l, void **p);
	int (*tx_put)(struct link *l);
	int (*rx_get)(struct link *l, const void **p, size_t *len);
	int (*rx_put)(struct link *l);

	/* Bare floors: send the value @v != 0; receive the peer's. */
	int (*hop_send)(struct link *l, uint64_t v);
	int (*hop_recv)(struct link *l, uint64_t *v);

	/* evshm only: the channel's (topic's) counters; a publisher fills
	 * msgs_sent and kicks_sent. */
	void (*stats)(struct link *l, struct evshm_stats *st);
};

extern const struct xport xport_unix_stream, xport_unix_seqpacket,
	xport_pipe;                                  /* bench_xport_fd.c */
extern const struct xport xport_evshm_copy, xport_evshm_zc,
	xport_evshm_batch;
						 /* bench_xport_evshm.c */
extern const struct xport xport_line, xport_eventfd,
	xport_slot_ring, xport_framed_ring;                             /* bench_xport_floor.c */

/* Fan-out: side A publishes to s->subs subscribers (meet_a waits for all
 * of them), every side B subscribes (open_b).  The publisher's tx_put
 * delivers one message to every subscriber. */
extern const struct xport xport_fan_stream;      /* bench_xport_fd.c */
extern const struct xport xport_topic_copy, xport_topic_zc,
	xport_topic_batch;
						 /* bench_xport_evshm.c */
extern const struct xport xport_zmq;             /* bench_xport_zmq.c */
/* Whether this program was built with libzmq (xport_zmq works). */
extern const bool bench_zmq_built;

/* A 64-byte aligned, zeroed buffer (pages touched before the clock
 * runs); NULL if out of memory. */
void *bench_alloc(size_t n);

#endif

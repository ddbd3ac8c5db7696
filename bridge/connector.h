/* SPDX-License-Identifier: MIT */
/*
 * connector.h: evshm_connect() (or, for a topic, evshm_sub_open()) on
 * worker threads, so that a local server slow to accept never stalls the
 * export's loop (and with it every other session's heartbeats).  Requests
 * go in, results come back in order of completion; connector_fd() polls
 * readable when one is ready.
 *
 * The library has no non-blocking connect, so a connect that stalls (a
 * listener that never accepts, a full backlog, a server silent in the
 * handshake) holds its thread.  Two things keep one stalled open from
 * delaying the others: CONNECTOR_THREADS threads take requests in order
 * (so that many stalls at once are needed to hold everyone up), and every
 * request has a deadline, set when it is submitted: the time it waited
 * in the queue counts against it, its connect gets only what is left,
 * and one still queued at its deadline fails with -ETIMEDOUT without
 * connecting.  So every request comes back within its timeout (plus a
 * moment), whatever the local server does.
 *
 * A request belongs to the loop thread except between connector_submit()
 * and its return from connector_done(); the worker reads name, opts and
 * timeout and writes chan (or sub) and err.  To cancel, the loop calls
 * connector_cancel(): a request the worker has not started is then never
 * started (a peer that opens streams and drops its session, over and
 * over, must not queue connects without bound, ahead of everyone else's);
 * either way it comes back with owner NULL, and the loop closes what it
 * holds (nothing, if it never started).
 */
#ifndef EVSHM_BRIDGE_CONNECTOR_H
#define EVSHM_BRIDGE_CONNECTOR_H

#include <stdbool.h>

#include <evshm.h>

struct connector;

struct conn_req {
	/* in */
	bool topic;               /* subscribe (sub), else connect (chan) */
	const char *name;
	struct evshm_opts opts;
	int timeout_ms;           /* from connector_submit(), queue included */
	void *owner;              /* loop thread only; NULL: cancelled */
	bool cancelled;           /* under the connector's lock */
	struct connector *conn;   /* set by connector_submit() */
	uint64_t deadline_ms;     /* set by connector_submit() */
	/* out */
	struct evshm_chan *chan;
	struct evshm_sub *sub;
	int err;
	struct conn_req *next;    /* the connector's queues */
};

/* Threads that connect: a few, so that a stalled connect or two do not
 * hold up the others (each stall lasts at most its timeout). */
#define CONNECTOR_THREADS 4

int connector_new(struct connector **out);
/* Readable when connector_done() has something. */
int connector_fd(const struct connector *c);
void connector_submit(struct connector *c, struct conn_req *r);
/* Cancel @r, submitted and not yet back from connector_done(): if the
 * worker has not started it, it comes back at once, with err -ECANCELED
 * and nothing open.  Sets r->owner to NULL. */
void connector_cancel(struct conn_req *r);
/* The next finished request, or NULL. */
struct conn_req *connector_done(struct connector *c);
/* Stop the workers (after their current connects, each bounded by its
 * timeout) and free every request still queued, closing their channels
 * and subscriptions. */
void connector_free(struct connector *c);

#endif

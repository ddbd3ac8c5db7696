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
 * handshake) holds its thread.  What keeps the stalls of one session from
 * delaying the others:
 *
 *  - every request belongs to a group (its session): a group has at most
 *    CONNECTOR_PER_GROUP connects running, and its other requests wait in
 *    its own queue;
 *  - the groups are served in turn: a worker takes the first request of
 *    the first group that may run one, and that group goes to the back
 *    (a session that opens a hundred channels at once does not put them
 *    all ahead of another session's one);
 *  - the threads grow on demand, from CONNECTOR_THREADS up to
 *    CONNECTOR_MAX_THREADS, when a request may run and no thread is idle:
 *    one session's stalled connects never take the thread another
 *    session's request needs (it takes CONNECTOR_MAX_THREADS /
 *    CONNECTOR_PER_GROUP sessions stalled at once to hold the others up);
 *  - every request has a deadline, set when it is submitted: the time it
 *    waited in the queue counts against it, its connect gets only what is
 *    left, and one still queued at its deadline fails with -ETIMEDOUT
 *    without connecting (at the latest at the next connector_expire()).
 *
 * So every request comes back within its timeout (plus a tick), whatever
 * the local server does.
 *
 * A request belongs to the loop thread except between connector_submit()
 * and its return from connector_done(); the worker reads name, opts and
 * timeout and writes chan (or sub) and err.  To cancel, the loop calls
 * connector_cancel(): a request the worker has not started comes back at
 * once and is never started (a peer that opens streams and drops its
 * session, over and over, must not queue connects without bound, ahead of
 * everyone else's); either way it comes back with owner NULL, and the loop
 * closes what it holds (nothing, if it never started).
 */
#ifndef EVSHM_BRIDGE_CONNECTOR_H
#define EVSHM_BRIDGE_CONNECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include <evshm.h>

struct connector;
struct conn_group;

struct conn_req {
	/* in */
	bool topic;               /* subscribe (sub), else connect (chan) */
	const char *name;
	struct evshm_opts opts;
	int timeout_ms;           /* from connector_submit(), queue included */
	void *owner;              /* loop thread only; NULL: cancelled */
	/* the connector's, under its lock */
	int state;
	struct connector *conn;
	struct conn_group *group;
	uint64_t deadline_ms;
	struct conn_req *next;
	/* out */
	struct evshm_chan *chan;
	struct evshm_sub *sub;
	int err;
};

/* Threads started with the connector, and the most it grows to. */
#define CONNECTOR_THREADS 4
#define CONNECTOR_MAX_THREADS 16
/* Connects one group (session) may have running at once. */
#define CONNECTOR_PER_GROUP 4

int connector_new(struct connector **out);
/* Readable when connector_done() has something. */
int connector_fd(const struct connector *c);
/* Queue @r for the group @key (any pointer that stands for the session:
 * requests with the same key share a queue and CONNECTOR_PER_GROUP).
 * -ENOMEM: not queued (r is the caller's, untouched but for its
 * connector fields). */
int connector_submit(struct connector *c, const void *key,
		     struct conn_req *r);
/* Cancel @r, submitted and not yet back from connector_done(): if the
 * worker has not started it, it comes back at once, with err -ECANCELED
 * and nothing open.  Sets r->owner to NULL. */
void connector_cancel(struct conn_req *r);
/* Fail every request still queued whose deadline is at or before @now
 * (loop_now_ms()) with -ETIMEDOUT; the loop calls it on its tick. */
void connector_expire(struct connector *c, uint64_t now);
/* The next finished request, or NULL. */
struct conn_req *connector_done(struct connector *c);
/* Threads started so far (for tests and statistics). */
unsigned connector_threads(struct connector *c);
/* Stop the workers (after their current connects, each bounded by its
 * timeout) and free every request still queued, closing their channels
 * and subscriptions. */
void connector_free(struct connector *c);

#endif

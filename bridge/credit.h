/* SPDX-License-Identifier: MIT */
/*
 * credit.h: end-to-end flow control of one direction of one stream, in
 * bytes of "cost" (payload + WIRE_MSG_COST per message, so that empty
 * messages count too).  Pure arithmetic, no I/O: the proof that nothing
 * is dropped and memory stays bounded rests on these few lines
 * (docs/bridge.md, "Flow control").
 *
 * The receiving bridge announces a window W.  The sending bridge sends a
 * message only while its unacknowledged cost is below W, so at most
 * W - 1 + (one message's cost) is ever unacknowledged.  The receiver hands
 * cost back (CREDIT) only once a message is in its local ring, i.e. after
 * its own queue no longer holds it.  Hence:
 *
 *  - the receiver's queue plus everything in flight toward it is at most
 *    W + max_cost bytes: memory is bounded however slow the local reader;
 *  - the receiver can always take what arrives, so it never stops reading
 *    the ZeroMQ socket: one slow stream never blocks another (no
 *    head-of-line blocking), and no ZeroMQ queue ever has to drop;
 *  - a peer that sends beyond its credit, or hands back more than was
 *    sent, breaks the protocol: the session ends (-EPROTO).
 *
 * No deadlock: the sender stalls only when it has W or more outstanding;
 * once the receiver has delivered all of it, at least W is waiting to be
 * handed back, which is more than the grant threshold W / 4.
 */
#ifndef EVSHM_BRIDGE_CREDIT_H
#define EVSHM_BRIDGE_CREDIT_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

/* The cost of a message of @len bytes. */
static inline uint64_t credit_cost(uint64_t len)
{
	return len + WIRE_MSG_COST;
}

/* --- sending side ---------------------------------------------------- */

struct credit_tx {
	uint64_t sent;     /* cost sent, running total */
	uint64_t granted;  /* cost handed back, running total */
	uint32_t window;   /* 0 until the receiver announced it */
};

/* May one more message go out now? */
static inline bool credit_tx_open(const struct credit_tx *c)
{
	return c->sent - c->granted < c->window;
}

static inline void credit_tx_sent(struct credit_tx *c, uint64_t len)
{
	c->sent += credit_cost(len);
}

/* A CREDIT of @n arrived.  0 or -EPROTO (more than is outstanding). */
static inline int credit_tx_grant(struct credit_tx *c, uint64_t n)
{
	if (n == 0 || n > c->sent - c->granted)
		return -EPROTO;
	c->granted += n;
	return 0;
}

/* --- receiving side -------------------------------------------------- */

struct credit_rx {
	uint64_t received;  /* cost received, running total */
	uint64_t delivered; /* cost written to the local ring */
	uint64_t granted;   /* cost handed back */
	uint32_t window;
};

/* A message of @len bytes arrived.  0, or -EPROTO if the sender had no
 * credit for it.  The sender's view of what is outstanding is never
 * smaller than ours (our grants may still be on their way), so if ours is
 * already W or more, it sent without credit. */
static inline int credit_rx_arrived(struct credit_rx *c, uint64_t len)
{
	if (c->received - c->granted >= c->window)
		return -EPROTO;
	c->received += credit_cost(len);
	return 0;
}

/* A message of @len bytes went into the local ring. */
static inline void credit_rx_delivered(struct credit_rx *c, uint64_t len)
{
	c->delivered += credit_cost(len);
}

/* Cost to hand back now (0: not yet worth a frame).  The caller sends a
 * CREDIT of that much and then calls credit_rx_granted(). */
static inline uint64_t credit_rx_due(const struct credit_rx *c)
{
	uint64_t d = c->delivered - c->granted;

	return d >= c->window / 4 ? d : 0;
}

static inline void credit_rx_granted(struct credit_rx *c, uint64_t n)
{
	c->granted += n;
}

/* Cost held on this side: queued here or still on its way. */
static inline uint64_t credit_rx_held(const struct credit_rx *c)
{
	return c->received - c->delivered;
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * streamio.h: the data path of a stream, shared by bridged channels
 * (relay.c) and bridged topics (topic.c).
 *
 * Outbound (a local source -> DATA frames to the far bridge): messages
 * leave only with credit (credit.h).  Small messages already waiting in
 * the source share one DATA frame (up to SIO_BATCH_BYTES of payload; the
 * bridge never waits to fill a frame); larger ones go alone, copied once
 * from the local ring into the frame.  Every DATA frame carries the
 * sequence number of its first message; the messages of a frame are
 * consecutive.  A source may skip messages (a latest topic's
 * subscription, lapped by its publisher): they take sequence numbers but
 * no credit, so the far side sees the gap and counts it.
 *
 * Inbound (DATA frames from the far bridge -> a local ring): each frame is
 * checked (sequence number, lengths that tile the payload, every message
 * within the local limit and the credit the far side had), then queued
 * until the local ring has room; credit goes back once a message is in
 * the ring.  The queue is bounded by the credit window, never by itself.
 */
#ifndef EVSHM_BRIDGE_STREAMIO_H
#define EVSHM_BRIDGE_STREAMIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "credit.h"
#include "msgq.h"
#include "session.h"

/* Messages up to SIO_BATCH_SMALL bytes share DATA frames of up to
 * SIO_BATCH_BYTES of payload; larger ones go alone (no extra copy). */
#define SIO_BATCH_SMALL (8u << 10)
#define SIO_BATCH_BYTES (64u << 10)

/* The smallest evshm ring that carries messages of @msg bytes (0: none). */
uint64_t sio_ring_for_msg(uint64_t msg);

/* --- outbound ------------------------------------------------------------- */

struct sio_src_ops {
	/* The next local message's length, without taking it: 0, -EAGAIN
	 * (none yet), or -errno (the source ended or failed). */
	int (*peek)(void *src, size_t *len);
	/* Take the peeked message: copy its @len bytes to @dst and consume
	 * it.  0; -ESTALE: it was overwritten while copied (nothing is sent;
	 * the source counts it as skipped); or -errno (consumed either way). */
	int (*take)(void *src, uint8_t *dst, size_t len);
	/* Messages the source skipped since the last call (they take a
	 * sequence number each, no credit).  NULL: never. */
	uint64_t (*skipped)(void *src);
};

enum sio_stage {
	SIO_AT_PEEK = 1, /* the source's peek failed (or said it ended) */
	SIO_AT_TAKE,     /* the source's take failed */
	SIO_AT_SIZE,     /* larger than the far end takes: still peeked */
	SIO_AT_SEND,     /* out of memory, or the session is dead */
};

struct sio_out {
	const struct sio_src_ops *ops;
	void *src;
	struct stream *st;
	struct credit_tx tx;
	uint64_t seq;          /* the next message's sequence number */
	uint64_t peer_max;     /* the largest message the far end takes */
	enum sio_stage stage;  /* after a failure: where */
	size_t len;            /* after a failure: that message's length */
};

enum {
	SIO_OUT_TURN = 1,   /* the turn is over, more to do: run again */
	SIO_OUT_CREDIT,     /* no credit: the far end's CREDIT resumes it */
	SIO_OUT_EMPTY,      /* the source said -EAGAIN: wait for it */
};

/* Send what the source holds, within credit, for one turn.  Returns an
 * SIO_OUT_* value, or a negative errno with o->stage and o->len saying
 * where it failed.  Messages taken before a failure are still sent. */
int sio_out_pump(struct sio_out *o);

/* --- inbound -------------------------------------------------------------- */

struct sio_in {
	struct credit_rx rx;
	struct msgq q;         /* frames waiting for ring room */
	size_t front_off;      /* the next message in q's first frame */
	uint64_t queued;       /* cost held in q */
	uint64_t seq;          /* the sequence number expected next */
	uint64_t local_max;    /* the largest message the local ring takes */
};

/*
 * Check the DATA frame @frame (first sequence number @seq) and queue it
 * (the frame is moved away, or copied; the caller closes it either way).
 * @gaps: a later sequence number than the one expected is allowed, and
 * how many were skipped is added to *@gap.
 * Returns the number of messages in it, -EPROTO (the session must end),
 * or -ENOMEM (nothing queued; the messages are counted lost).
 * With @drop the frame is checked and counted, but not queued (nobody
 * reads here any more: its messages are counted lost).
 */
int sio_in_frame(struct sio_in *in, zmq_msg_t *frame, uint64_t seq,
		 bool gaps, uint64_t *gap, bool drop);

/* Put queued messages into the local ring with @put (0, -EAGAIN when the
 * ring is full, or an error), in order, until the queue is empty
 * (-ENODATA), the ring is full (-EAGAIN) or @put fails (its error). */
int sio_in_deliver(struct sio_in *in,
		   int (*put)(void *ctx, const uint8_t *p, uint32_t len),
		   void *ctx);

/* Hand credit back to the far end if enough is due (a quarter of the
 * window), or with @all whatever is due. */
void sio_in_grant(struct sio_in *in, struct stream *st, bool all);

/* Drop what is queued: those messages are lost (stats.msgs_lost). */
void sio_in_discard(struct sio_in *in);

/* sio_in_discard(), and free the queue. */
void sio_in_free(struct sio_in *in);

static inline uint32_t sio_in_len(const struct sio_in *in)
{
	return msgq_len(&in->q);
}

#endif

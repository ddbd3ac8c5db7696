/* SPDX-License-Identifier: MIT */
/*
 * msgq.h: a FIFO of ZeroMQ messages waiting for room in a local ring.
 * A growable circular array of zmq_msg_t: messages are moved in (no copy
 * of their bytes) and out.  Its length is bounded by the caller's credit
 * window, never by the queue itself.
 */
#ifndef EVSHM_BRIDGE_MSGQ_H
#define EVSHM_BRIDGE_MSGQ_H

#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

struct msgq {
	zmq_msg_t *slot;
	uint32_t cap;   /* a power of two, or 0 */
	uint32_t head;  /* free-running */
	uint32_t tail;
};

static inline uint32_t msgq_len(const struct msgq *q)
{
	return q->tail - q->head;
}

/* Move @msg to the tail (it becomes empty, as after zmq_msg_move).
 * 0 or -ENOMEM (then @msg is untouched). */
int msgq_push(struct msgq *q, zmq_msg_t *msg);

/* The oldest message, or NULL. */
zmq_msg_t *msgq_front(struct msgq *q);

/* Close and drop the oldest message. */
void msgq_pop(struct msgq *q);

/* Close every message and free the array. */
void msgq_clear(struct msgq *q);

#endif

/* SPDX-License-Identifier: MIT */
/* msgq.c: see msgq.h. */
#include "msgq.h"

#include <errno.h>
#include <stdlib.h>

#define MSGQ_MIN 16u

static int msgq_grow(struct msgq *q)
{
	uint32_t cap = q->cap ? q->cap * 2 : MSGQ_MIN;
	zmq_msg_t *s;

	if (cap < q->cap)
		return -ENOMEM;
	s = malloc(cap * sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* Through zmq_msg_move: a zmq_msg_t is opaque, never copied. */
	for (uint32_t i = q->head, k = 0; i != q->tail; i++, k++) {
		zmq_msg_init(&s[k]);
		zmq_msg_move(&s[k], &q->slot[i & (q->cap - 1)]);
		zmq_msg_close(&q->slot[i & (q->cap - 1)]);
	}
	free(q->slot);
	q->tail -= q->head;
	q->head = 0;
	q->slot = s;
	q->cap = cap;
	return 0;
}

int msgq_push(struct msgq *q, zmq_msg_t *msg)
{
	if (msgq_len(q) == q->cap && msgq_grow(q) < 0)
		return -ENOMEM;
	zmq_msg_t *dst = &q->slot[q->tail & (q->cap - 1)];
	zmq_msg_init(dst);
	zmq_msg_move(dst, msg);
	q->tail++;
	return 0;
}

zmq_msg_t *msgq_front(struct msgq *q)
{
	return msgq_len(q) ? &q->slot[q->head & (q->cap - 1)] : NULL;
}

void msgq_pop(struct msgq *q)
{
	zmq_msg_close(&q->slot[q->head & (q->cap - 1)]);
	q->head++;
}

void msgq_clear(struct msgq *q)
{
	while (msgq_len(q))
		msgq_pop(q);
	free(q->slot);
	*q = (struct msgq){ 0 };
}

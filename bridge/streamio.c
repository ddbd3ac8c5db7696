/* SPDX-License-Identifier: MIT */
/* streamio.c: see streamio.h. */
#include "streamio.h"

#include <errno.h>
#include <string.h>

#include <evshm.h>

#include "stats.h"
#include "wire.h"

/* Frames up to this size may share ZeroMQ's receive buffer (8 KiB by
 * default, ZMQ_IN_BATCH_SIZE): it receives a message that fits there
 * without copying it out, so a small frame keeps the whole buffer (and
 * its reference counters, about 18 KiB) alive for as long as it is
 * queued.  Queued, such a frame is copied into one of its own, so that
 * what a queue holds is what its credit counts (a peer sending one small
 * frame per TCP segment would otherwise make a window of W hold about
 * 100 W; CURVE copies each message as it decrypts it, plain TCP does
 * not). */
#define PRIVATE_MAX 8192u

/* One turn of the outbound pump: then the other streams get theirs. */
#define TURN_MSGS 256
#define TURN_BYTES (1u << 20)

uint64_t sio_ring_for_msg(uint64_t msg)
{
	for (uint64_t r = EVSHM_RING_MIN; r <= EVSHM_RING_MAX; r <<= 1)
		if (EVSHM_MAX_MSG(r) >= msg)
			return r;
	return 0;
}

/* --- outbound ------------------------------------------------------------- */

static int out_fail(struct sio_out *o, enum sio_stage stage, int err,
		    size_t len)
{
	o->stage = stage;
	o->len = len;
	return err;
}

/* Sequence numbers for what the source skipped since we last asked. */
static uint64_t out_skipped(struct sio_out *o)
{
	return o->ops->skipped ? o->ops->skipped(o->src) : 0;
}

/* Take the peeked message (@len bytes) into @dst, after its length.
 * 0, 1 (it was overwritten: nothing taken), or -errno. */
static int out_take(struct sio_out *o, uint8_t *dst, size_t len)
{
	int res = o->ops->take(o->src, dst + WIRE_LEN_SIZE, len);

	if (res == -ESTALE)
		return 1;
	if (res < 0)
		return out_fail(o, SIO_AT_TAKE, res, len);
	wire_put_len(dst, (uint32_t)len);
	credit_tx_sent(&o->tx, len);
	stats.msgs_out++;
	stats.bytes_out += len;
	return 0;
}

/* Send @m, a DATA frame (header still to fill) of the @k messages from
 * sequence number o->seq on. */
static int out_send(struct sio_out *o, zmq_msg_t *m, uint32_t k)
{
	int res;

	wire_put_hdr(zmq_msg_data(m), WIRE_DATA, o->st->id, o->seq);
	o->seq += k;
	res = session_send_msg(o->st->s, m);
	return res < 0 ? out_fail(o, SIO_AT_SEND, res, 0) : 0;
}

/* The peeked message (@len bytes, more than SIO_BATCH_SMALL) in a frame
 * of its own, copied once from the ring into the frame. */
static int send_alone(struct sio_out *o, size_t len)
{
	zmq_msg_t m;
	int res;

	if (zmq_msg_init_size(&m, WIRE_HDR_SIZE + WIRE_LEN_SIZE + len) < 0)
		return out_fail(o, SIO_AT_SEND, -ENOMEM, len);
	res = out_take(o, (uint8_t *)zmq_msg_data(&m) + WIRE_HDR_SIZE, len);
	if (res != 0) {
		zmq_msg_close(&m);
		return res < 0 ? res : 0;
	}
	return out_send(o, &m, 1);
}

/*
 * The peeked message (@len <= SIO_BATCH_SMALL bytes) and the small ones
 * that follow it, as long as they are already in the source, fit
 * SIO_BATCH_BYTES, have credit and follow without a gap: one frame.  A
 * message left peeked is the next call's.  @*gap: sequence numbers the
 * source skipped before the message left peeked.
 */
static int send_batch(struct sio_out *o, size_t len, uint64_t *bytes,
		      uint64_t *gap)
{
	static uint8_t buf[SIO_BATCH_BYTES + SIO_BATCH_SMALL + WIRE_LEN_SIZE];
	size_t off = 0;
	uint32_t k = 0;
	zmq_msg_t m;
	int res, err = 0;

	for (;;) {
		err = out_take(o, buf + off, len);
		if (err != 0) {
			/* Overwritten (1): the gap follows; send what we have. */
			err = err < 0 ? err : 0;
			break;
		}
		off += WIRE_LEN_SIZE + len;
		k++;
		if (!credit_tx_open(&o->tx) || o->ops->peek(o->src, &len) < 0 ||
		    len > SIO_BATCH_SMALL || len > o->peer_max ||
		    off + WIRE_LEN_SIZE + len > SIO_BATCH_BYTES)
			break;
		*gap = out_skipped(o);
		if (*gap)
			break;
	}
	if (k) {
		/* Small messages cost one more copy here; the frame they
		 * share saves more than that. */
		if (zmq_msg_init_size(&m, WIRE_HDR_SIZE + off) < 0)
			return out_fail(o, SIO_AT_SEND, -ENOMEM, 0);
		memcpy((uint8_t *)zmq_msg_data(&m) + WIRE_HDR_SIZE, buf, off);
		res = out_send(o, &m, k);
		if (res < 0)
			return res;
		*bytes += off;
	}
	return err;
}

int sio_out_pump(struct sio_out *o)
{
	uint64_t bytes = 0, gap = 0;

	for (unsigned n = 0; n < TURN_MSGS && bytes < TURN_BYTES; n++) {
		size_t len;
		int res;

		if (!credit_tx_open(&o->tx)) {
			stats.credit_stalls++;
			o->seq += gap;
			return SIO_OUT_CREDIT;
		}
		res = o->ops->peek(o->src, &len);
		if (res == -EAGAIN) {
			o->seq += gap;
			return SIO_OUT_EMPTY;
		}
		if (res < 0)
			return out_fail(o, SIO_AT_PEEK, res, 0);
		o->seq += gap + out_skipped(o);
		gap = 0;
		if (len > o->peer_max)
			return out_fail(o, SIO_AT_SIZE, -EMSGSIZE, len);
		if (len > SIO_BATCH_SMALL) {
			res = send_alone(o, len);
			bytes += len;
		} else {
			res = send_batch(o, len, &bytes, &gap);
		}
		if (res < 0)
			return res;
	}
	o->seq += gap;
	return SIO_OUT_TURN;
}

/* --- inbound -------------------------------------------------------------- */

/* A DATA frame's payload.  Frames in the queue were checked on arrival:
 * their lengths tile the payload exactly. */
static const uint8_t *payload(zmq_msg_t *m, size_t *n)
{
	*n = zmq_msg_size(m) - WIRE_HDR_SIZE;
	return (const uint8_t *)zmq_msg_data(m) + WIRE_HDR_SIZE;
}

int sio_in_frame(struct sio_in *in, zmq_msg_t *frame, uint64_t seq,
		 bool gaps, uint64_t *gap, bool drop)
{
	uint64_t cost = 0;
	uint32_t k = 0;
	size_t n;
	const uint8_t *p = payload(frame, &n);
	zmq_msg_t copy;

	if (seq != in->seq && (!gaps || seq < in->seq))
		return -EPROTO;
	/* Every length within the frame and our limit, every message
	 * within the credit the far end had. */
	for (size_t off = 0; off < n; k++) {
		uint32_t len;
		if (n - off < WIRE_LEN_SIZE)
			return -EPROTO;
		len = wire_get_len(p + off);
		if (len > n - off - WIRE_LEN_SIZE || len > in->local_max ||
		    credit_rx_arrived(&in->rx, len) < 0)
			return -EPROTO;
		cost += credit_cost(len);
		off += WIRE_LEN_SIZE + len;
	}
	/* A gap may skip far ahead, never past the end of the numbers (the
	 * next frame's number would be small again, and taken). */
	if (seq + k < seq)
		return -EPROTO;
	if (gap)
		*gap += seq - in->seq;
	in->seq = seq + k;
	if (drop) {
		stats.msgs_lost += k;
		return (int)k;
	}
	if (zmq_msg_size(frame) <= PRIVATE_MAX) {
		if (zmq_msg_init_size(&copy, zmq_msg_size(frame)) < 0) {
			stats.msgs_lost += k;
			return -ENOMEM;
		}
		memcpy(zmq_msg_data(&copy), zmq_msg_data(frame),
		       zmq_msg_size(frame));
		frame = &copy;
	}
	if (msgq_push(&in->q, frame) < 0) {
		if (frame == &copy)
			zmq_msg_close(&copy);
		stats.msgs_lost += k;
		return -ENOMEM;
	}
	in->queued += cost;
	stats_queued((int64_t)cost);
	return (int)k;
}

int sio_in_deliver(struct sio_in *in,
		   int (*put)(void *ctx, const uint8_t *p, uint32_t len),
		   void *ctx)
{
	zmq_msg_t *m;

	while ((m = msgq_front(&in->q))) {
		size_t n;
		const uint8_t *p = payload(m, &n) + in->front_off;
		uint32_t len = wire_get_len(p);
		int res = put(ctx, p + WIRE_LEN_SIZE, len);

		if (res < 0)
			return res;
		credit_rx_delivered(&in->rx, len);
		stats.msgs_in++;
		stats.bytes_in += len;
		in->queued -= credit_cost(len);
		stats_queued(-(int64_t)credit_cost(len));
		in->front_off += WIRE_LEN_SIZE + len;
		if (in->front_off == n) {
			msgq_pop(&in->q);
			in->front_off = 0;
		}
	}
	return -ENODATA;
}

void sio_in_grant(struct sio_in *in, struct stream *st, bool all)
{
	uint64_t due = all ? in->rx.delivered - in->rx.granted
			   : credit_rx_due(&in->rx);

	if (due && session_send(st->s, WIRE_CREDIT, st->id, due, NULL, 0) == 0)
		credit_rx_granted(&in->rx, due);
}

void sio_in_discard(struct sio_in *in)
{
	zmq_msg_t *m;

	while ((m = msgq_front(&in->q))) {
		size_t n;
		const uint8_t *p = payload(m, &n);
		for (size_t off = in->front_off; off < n;
		     off += WIRE_LEN_SIZE + wire_get_len(p + off))
			stats.msgs_lost++;
		msgq_pop(&in->q);
		in->front_off = 0;
	}
	stats_queued(-(int64_t)in->queued);
	in->queued = 0;
}

void sio_in_free(struct sio_in *in)
{
	sio_in_discard(in);
	msgq_clear(&in->q);
}

/* SPDX-License-Identifier: MIT */
/*
 * ring.c: the message ring over shared memory, and the event-index rules
 * that decide when the other side must be woken.  What every message runs
 * (reserve, publish, peek, release, the wake checks) is inline, at the end
 * of ring.h; the rest is here.
 *
 * Ordering, in one paragraph (docs/protocol.md 5 has the long form):
 *  - data: the producer writes a record's payload and header, then
 *    store-releases its seq; the consumer load-acquires the seq at its
 *    head and, if it is the one it expects, reads the record.  The
 *    consumer reads a record, then store-releases its head; the producer
 *    load-acquires the head, then overwrites the room below it.
 *  - stale bytes: before publishing a record the producer clears the seq
 *    field where the next one will start, so a consumer waiting there
 *    never takes the last lap's payload for a header.
 *  - wakeups: a sleeper stores its event index, then a seq_cst fence,
 *    then looks again.  The waker publishes, then a seq_cst fence (or, in
 *    fenceless mode, the sleeper's membarrier(2) stands in for it), then
 *    reads the sleeper's event index.  The two fences are ordered one way
 *    or the other, so either the waker sees the event (and kicks) or the
 *    sleeper sees the publication (and does not sleep).
 *
 * Anything read from the peer's region (its head, its event indices, its
 * state, record headers) is read once into a local and validated before it
 * decides an offset or a length.  Record headers sit at positions that
 * vary, in plain memory: their seq is accessed with the __atomic builtins
 * (which take plain objects), every fixed field of a region is _Atomic.
 */
#include "ring.h"

#include <errno.h>
#include <string.h>

#include "err.h"

/* --- the fence policy ------------------------------------------------------ */

void ring_role_init(struct ring_role *r, _Atomic uint32_t *state, bool may_skip)
{
	r->state = state;
	r->val = 0;
	r->streak = 0;
	r->may_skip = may_skip;
	atomic_store_explicit(state, 0, memory_order_relaxed);
}

void ring_role_asleep(struct ring_role *r, bool asleep)
{
	r->val = asleep ? r->val | WS_ASLEEP : r->val & ~WS_ASLEEP;
	atomic_store_explicit(r->state, r->val, memory_order_relaxed);
}

void ring_role_fence_on(struct ring_role *r)
{
	r->streak = 0;
	if (r->val & WS_FENCELESS) {
		r->val &= ~WS_FENCELESS;
		/* Release: a sleeper that reads the flag down (acquire)
		 * sees every record we published without a fence. */
		atomic_store_explicit(r->state, r->val, memory_order_release);
	}
}

/* A sleeper, after its fence: must the peer be put through membarrier?
 * Acquire pairs with ring_role_fence_on()'s release. */
static bool peer_fenceless(const _Atomic uint32_t *peer_state)
{
	return atomic_load_explicit(peer_state, memory_order_acquire) &
	       WS_FENCELESS;
}

/* --- producer ------------------------------------------------------------ */

void ring_tx_init(struct ring_tx *tx, struct region *mine, uint32_t size)
{
	tx->data = region_data(mine);
	tx->mine = mine;
	tx->size = size;
	tx->max_msg = ring_max_msg(size);
	tx->tail = atomic_load_explicit(&mine->tail, memory_order_relaxed);
	tx->head = tx->tail;
	/* A fresh ring reads as zeros: no record may have sequence number
	 * 0, or an unwritten header would look published. */
	tx->seq = 1;
	tx->msgs = tx->bytes = 0;
	tx->resv = false;
	tx->resv_len = tx->resv_pad = 0;
}

void ring_tx_cancel(struct ring_tx *tx)
{
	tx->resv = false;
}

int ring_tx_refresh_head(struct ring_tx *tx, const struct region *peer)
{
	uint64_t h = atomic_load_explicit(&peer->head, memory_order_acquire);

	if ((h & (RING_ALIGN - 1)) || h < tx->head || h > tx->tail)
		return ERR_PROTO(RING_HEAD);
	tx->head = h;
	return 0;
}

int ring_tx_check(struct ring_tx *tx, const struct region *peer, size_t len)
{
	uint32_t need = ring_tx_need(tx, len);
	int res = ring_tx_refresh_head(tx, peer);

	if (res < 0)
		return res;
	return tx->size - (tx->tail - tx->head) >= need ? 0 : -EAGAIN;
}

int ring_tx_arm(struct ring_tx *tx, const struct region *peer, size_t len)
{
	/* We need head >= tail + need - size; ask to be woken by the
	 * release that moves the head past one below that. */
	uint64_t want = tx->tail + ring_tx_need(tx, len) - tx->size;

	atomic_store_explicit(&tx->mine->space_event, want - 1,
			      memory_order_relaxed);
	/* Pairs with the fence in ring_role_after_publish() of the
	 * consumer's release. */
	atomic_thread_fence(memory_order_seq_cst);
	if (peer_fenceless(&peer->rx_state))
		return RING_BARRIER;
	return ring_tx_check(tx, peer, len);
}

/* --- consumer ------------------------------------------------------------ */

void ring_rx_init(struct ring_rx *rx, struct region *mine, const uint8_t *data,
		  uint32_t size)
{
	rx->data = data;
	rx->mine = mine;
	rx->size = size;
	rx->max_msg = size ? ring_max_msg(size) : 0;
	rx->head = atomic_load_explicit(&mine->head, memory_order_relaxed);
	rx->seq = 1; /* see ring_tx_init() */
	rx->msgs = rx->bytes = 0;
	rx->cur = 0;
}

bool ring_rx_published(const struct ring_rx *rx, uint64_t head, uint64_t seq)
{
	const struct ring_rec *r =
		ring_rec_at(rx->data, (uint32_t)head & (rx->size - 1));

	return __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE) == seq;
}

const uint64_t *ring_rx_seq_word(const struct ring_rx *rx)
{
	return &ring_rec_at(rx->data, (uint32_t)rx->head & (rx->size - 1))->seq;
}

bool ring_rx_ready(const struct ring_rx *rx)
{
	return ring_rx_published(rx, rx->head, rx->seq);
}

void ring_rx_jump(struct ring_rx *rx, uint64_t head, uint64_t seq)
{
	rx->head = head;
	rx->seq = seq;
	rx->cur = 0;
	ring_rx_publish_head(rx);
}

int ring_rx_arm(struct ring_rx *rx, const struct region *producer)
{
	return ring_rx_arm_tagged(rx, producer, 0);
}

int ring_rx_arm_tagged(struct ring_rx *rx, const struct region *producer,
		       unsigned tag)
{
	/* Empty at our head: ask to be woken by the commit that starts
	 * there (it moves the tail from head to beyond). */
	atomic_store_explicit(&rx->mine->data_event,
			      rx->head | (tag & (RING_ALIGN - 1)),
			      memory_order_relaxed);
	/* Pairs with the fence in ring_role_after_publish() of the
	 * producer's commit. */
	atomic_thread_fence(memory_order_seq_cst);
	if (peer_fenceless(&producer->tx_state))
		return RING_BARRIER;
	return ring_rx_ready(rx) ? 0 : -EAGAIN;
}

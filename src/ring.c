/* SPDX-License-Identifier: MIT */
/*
 * ring.c: the message ring over shared memory, and the event-index rules
 * that decide when the other side must be woken.
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

struct ring_rec {
	uint32_t len;
	uint32_t flags;
	uint64_t seq; /* stored last, with release: the publication */
};
_Static_assert(sizeof(struct ring_rec) == RING_REC_HDR, "record header");

/* One read of a u32 the peer may be changing under us (READ_ONCE). */
static inline uint32_t read_once(const uint32_t *p)
{
	return *(const volatile uint32_t *)p;
}

static inline const struct ring_rec *rec_at(const uint8_t *data, uint32_t pos)
{
	return (const struct ring_rec *)(const void *)(data + pos);
}

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

void ring_role_after_publish(struct ring_role *r, bool peer_asleep)
{
	if (r->val & WS_FENCELESS) {
		if (!peer_asleep)
			return; /* the peer's membarrier covers us */
		ring_role_fence_on(r);
	} else if (peer_asleep) {
		r->streak = 0;
	} else if (r->may_skip && ++r->streak >= RING_STREAK) {
		/* Up goes the flag, then one last fence: a sleeper that
		 * missed the flag is ordered against this fence, and one
		 * that sees it runs membarrier(2). */
		r->val |= WS_FENCELESS;
		atomic_store_explicit(r->state, r->val, memory_order_relaxed);
	}
	/* Wakeup fence: our publication is ordered before our load of the
	 * peer's event index, against its store-event / fence / look-again
	 * in ring_rx_arm() or ring_tx_arm(). */
	atomic_thread_fence(memory_order_seq_cst);
}

/* A sleeper, after its fence: must the peer be put through membarrier?
 * Acquire pairs with ring_role_fence_on()'s release. */
static bool peer_fenceless(const _Atomic uint32_t *peer_state)
{
	return atomic_load_explicit(peer_state, memory_order_acquire) &
	       WS_FENCELESS;
}

static bool peer_asleep(const _Atomic uint32_t *peer_state)
{
	return atomic_load_explicit(peer_state, memory_order_relaxed) &
	       WS_ASLEEP;
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

uint32_t ring_tx_need(const struct ring_tx *tx, size_t len)
{
	uint32_t pos = (uint32_t)tx->tail & (tx->size - 1);
	uint32_t to_end = tx->size - pos;
	uint32_t rec = ring_align(RING_REC_HDR + (uint32_t)len);

	return rec > to_end ? to_end + rec : rec;
}

int ring_tx_reserve(struct ring_tx *tx, size_t len, void **ptr)
{
	if (tx->resv)
		return -EBUSY;
	if (len > tx->max_msg)
		return -EMSGSIZE;

	uint32_t need = ring_tx_need(tx, len);
	if (tx->size - (tx->tail - tx->head) < need)
		return -EAGAIN;

	uint32_t pos = (uint32_t)tx->tail & (tx->size - 1);
	uint32_t rec = ring_align(RING_REC_HDR + (uint32_t)len);
	uint32_t pad = need - rec;
	if (pad) {
		/* The pad's seq (its publication) is stored at commit,
		 * after the record it leads to. */
		struct ring_rec *p = (struct ring_rec *)(void *)(tx->data + pos);
		p->len = pad - RING_REC_HDR;
		p->flags = RING_F_PAD;
		pos = 0;
	}
	tx->resv = true;
	tx->resv_len = (uint32_t)len;
	tx->resv_pad = pad;
	*ptr = tx->data + pos + RING_REC_HDR;
	return 0;
}

int ring_tx_publish(struct ring_tx *tx, size_t len, uint32_t flags,
		    uint64_t live, uint64_t *old, uint64_t *new_)
{
	if (!tx->resv || len > tx->resv_len || (flags & ~RING_F_FDS))
		return -EINVAL;

	uint32_t at = (uint32_t)tx->tail & (tx->size - 1);
	uint32_t pos = (at + tx->resv_pad) & (tx->size - 1);
	struct ring_rec *r = (struct ring_rec *)(void *)(tx->data + pos);
	uint64_t next = tx->tail + tx->resv_pad +
			ring_align(RING_REC_HDR + (uint32_t)len);

	r->len = (uint32_t)len;
	r->flags = flags;
	/* A consumer done with this record looks for the next seq at
	 * `next`.  What the last lap left there is payload (anybody's
	 * bytes, maybe the very number it expects), unless it is the
	 * header of a record still to be read, whose seq is older: clear
	 * it, ordered before the publication below.  (Clearing further
	 * ahead, in bulk, measured slower: the consumer then pulls lines
	 * we own instead of lines nobody holds.) */
	if (next < live + tx->size) {
		struct ring_rec *n = (struct ring_rec *)(void *)(
			tx->data + ((uint32_t)next & (tx->size - 1)));
		__atomic_store_n(&n->seq, 0, __ATOMIC_RELAXED);
	}
	/* Release: payload and header are written before the consumer can
	 * see the seq it waits for. */
	__atomic_store_n(&r->seq, tx->seq, __ATOMIC_RELEASE);
	if (tx->resv_pad) {
		/* The pad last: a consumer that sees it finds the record it
		 * leads to already published. */
		struct ring_rec *p = (struct ring_rec *)(void *)(tx->data + at);
		__atomic_store_n(&p->seq, tx->seq, __ATOMIC_RELEASE);
	}
	*old = tx->tail;
	tx->tail = next;
	*new_ = tx->tail;
	tx->seq++;
	tx->resv = false;
	/* Informative, for evshm ps and the peer's curiosity: nobody's
	 * correctness reads these. */
	atomic_store_explicit(&tx->mine->tail, tx->tail, memory_order_relaxed);
	atomic_store_explicit(&tx->mine->msgs_sent, ++tx->msgs,
			      memory_order_relaxed);
	tx->bytes += len;
	atomic_store_explicit(&tx->mine->bytes_sent, tx->bytes,
			      memory_order_relaxed);
	return 0;
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

bool ring_tx_wake(struct ring_role *role, const struct region *peer,
		  uint64_t old, uint64_t new_)
{
	ring_role_after_publish(role, peer_asleep(&peer->rx_state));
	return ring_passes(atomic_load_explicit(&peer->data_event,
						memory_order_relaxed),
			   old, new_);
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
		rec_at(rx->data, (uint32_t)head & (rx->size - 1));

	return __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE) == seq;
}

const uint64_t *ring_rx_seq_word(const struct ring_rx *rx)
{
	return &rec_at(rx->data, (uint32_t)rx->head & (rx->size - 1))->seq;
}

bool ring_rx_ready(const struct ring_rx *rx)
{
	return ring_rx_published(rx, rx->head, rx->seq);
}

/* Validate the record that should start at byte index @at with sequence
 * number @seq; *span gets the bytes it covers (a pad before it included).
 * 0, -EAGAIN (not published), -EPROTO. */
static inline __attribute__((always_inline)) int
rx_look(const struct ring_rx *rx, uint64_t at, uint64_t seq, uint32_t *span,
	uint32_t *off, uint32_t *len, uint32_t *flags)
{
	uint32_t pos = (uint32_t)at & (rx->size - 1);
	const struct ring_rec *r = rec_at(rx->data, pos);
	uint32_t skip = 0;

	/* Acquire pairs with the producer's release of seq: the header and
	 * payload below are written. */
	if (__atomic_load_n(&r->seq, __ATOMIC_ACQUIRE) != seq)
		return -EAGAIN;
	uint32_t hlen = read_once(&r->len);
	uint32_t hflags = read_once(&r->flags);

	if (hflags & RING_F_PAD) {
		/* A pad fills exactly the rest of the ring, and the record
		 * it leads to was published before it. */
		skip = rx->size - pos;
		if (hflags != RING_F_PAD || hlen != skip - RING_REC_HDR)
			return ERR_PROTO(RING_PAD);
		pos = 0;
		r = rec_at(rx->data, 0);
		if (__atomic_load_n(&r->seq, __ATOMIC_ACQUIRE) != seq)
			return ERR_PROTO(RING_PAD);
		hlen = read_once(&r->len);
		hflags = read_once(&r->flags);
	}
	if (hflags & ~RING_F_FDS) /* a second pad, or reserved bits */
		return ERR_PROTO(RING_FLAGS);
	if (hlen > rx->max_msg)
		return ERR_PROTO(RING_LEN);
	uint32_t rec = ring_align(RING_REC_HDR + hlen);
	if (rec > rx->size - pos)
		return ERR_PROTO(RING_FIT);
	*span = skip + rec;
	*off = pos + RING_REC_HDR;
	*len = hlen;
	*flags = hflags;
	return 0;
}

/* Add the record rx_look() found to the run peeked, and point at it. */
static void rx_add(struct ring_rx *rx, uint32_t span, uint32_t off,
		   uint32_t len, uint32_t flags)
{
	rx->cur += span;
	rx->ncur++;
	rx->cur_bytes += len;
	rx->cur_off = off;
	rx->cur_len = len;
	rx->cur_flags = flags;
}

static void rx_out(const struct ring_rx *rx, const void **ptr, size_t *len,
		   uint32_t *flags)
{
	*ptr = rx->data + rx->cur_off;
	*len = rx->cur_len;
	if (flags)
		*flags = rx->cur_flags;
}

int ring_rx_peek(struct ring_rx *rx, const void **ptr, size_t *len,
		 uint32_t *flags)
{
	if (!rx->cur) {
		uint32_t span = 0, off = 0, hlen = 0, hflags = 0;
		int res = rx_look(rx, rx->head, rx->seq, &span, &off, &hlen,
				  &hflags);
		if (res < 0)
			return res;
		rx->ncur = 0;
		rx->cur_bytes = 0;
		rx_add(rx, span, off, hlen, hflags);
	}
	rx_out(rx, ptr, len, flags);
	return 0;
}

int ring_rx_peek_next(struct ring_rx *rx, const void **ptr, size_t *len)
{
	uint32_t span = 0, off = 0, hlen = 0, hflags = 0;

	if (!rx->cur)
		return -EINVAL;
	/* Anything but a plain, valid record ends the run: the next
	 * ring_rx_peek() after the release judges it. */
	if (rx_look(rx, rx->head + rx->cur, rx->seq + rx->ncur, &span, &off,
		    &hlen, &hflags) < 0 ||
	    hflags || span > rx->size - rx->cur)
		return -EAGAIN;
	rx_add(rx, span, off, hlen, 0);
	rx_out(rx, ptr, len, NULL);
	return 0;
}

static void rx_publish_head(struct ring_rx *rx)
{
	/* Release: we are done reading the record before the producer can
	 * see the head that lets it overwrite the room. */
	atomic_store_explicit(&rx->mine->head, rx->head, memory_order_release);
}

int ring_rx_release(struct ring_rx *rx, uint64_t *old, uint64_t *new_)
{
	if (!rx->cur)
		return -EINVAL;
	*old = rx->head;
	rx->head += rx->cur;
	*new_ = rx->head;
	rx->seq += rx->ncur;
	rx_publish_head(rx);
	rx->msgs += rx->ncur;
	atomic_store_explicit(&rx->mine->msgs_recv, rx->msgs,
			      memory_order_relaxed);
	rx->bytes += rx->cur_bytes;
	atomic_store_explicit(&rx->mine->bytes_recv, rx->bytes,
			      memory_order_relaxed);
	rx->cur = 0;
	return 0;
}

void ring_rx_jump(struct ring_rx *rx, uint64_t head, uint64_t seq)
{
	rx->head = head;
	rx->seq = seq;
	rx->cur = 0;
	rx_publish_head(rx);
}

bool ring_rx_wake(struct ring_role *role, const struct region *producer,
		  uint64_t old, uint64_t new_)
{
	ring_role_after_publish(role, peer_asleep(&producer->tx_state));
	return ring_passes(atomic_load_explicit(&producer->space_event,
						memory_order_relaxed),
			   old, new_);
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

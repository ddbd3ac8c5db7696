/* SPDX-License-Identifier: MIT */
/*
 * ring.c: SPSC message ring over shared memory, with virtio-style event
 * indices deciding when the other side must be woken.
 *
 * Indices are free-running u32 byte counts; fill = tail - head (mod 2^32)
 * and the position in the ring is index & (size - 1).  A record is an
 * 8-byte header { u32 len; u32 flags; } followed by len payload bytes,
 * rounded up to 8.  A record never wraps: if it does not fit before the end
 * of the ring the producer writes a pad record (flags = RING_F_PAD) that
 * fills the rest and starts the record at offset 0.
 *
 * Ordering, in one paragraph (docs/protocol.md has the long form):
 *  - data: the producer writes a record, then store-releases tail; the
 *    consumer load-acquires tail, then reads records below it.  The
 *    consumer reads a record, then store-releases head; the producer
 *    load-acquires head, then overwrites the room below it.
 *  - wakeups: a sleeper stores its event index, then a seq_cst fence,
 *    then re-reads the other side's index.  The waker stores its index,
 *    then a seq_cst fence, then reads the sleeper's event index.  The two
 *    fences are ordered one way or the other, so either the waker sees the
 *    event (and kicks) or the sleeper sees the new index (and does not
 *    sleep).  No wakeup is lost.
 *
 * Anything read from the peer's region (its head or tail, its event
 * indices, record headers) is read once into a local and validated before
 * it decides an offset or a length.
 */
#include "ring.h"

#include <errno.h>
#include <string.h>

static inline uint32_t align8(uint32_t n)
{
	return (n + RING_ALIGN - 1) & ~(RING_ALIGN - 1);
}

/* One read of a u32 the peer may be changing under us (READ_ONCE). */
static inline uint32_t read_once(const uint8_t *p)
{
	return *(const volatile uint32_t *)(const void *)p;
}

void region_init(struct region *r, uint32_t ring_size)
{
	r->magic = REGION_MAGIC;
	r->version = REGION_VERSION;
	r->ring_size = ring_size;
	r->hdr_size = REGION_HDR_SIZE;
	atomic_init(&r->tail, 0);
	atomic_init(&r->head, 0);
	atomic_init(&r->space_event, RING_EVENT_NONE);
	atomic_init(&r->data_event, RING_EVENT_NONE);
}

/* --- producer ------------------------------------------------------------ */

void ring_tx_init(struct ring_tx *tx, struct region *mine,
		  const struct region *peer, uint32_t size)
{
	tx->data = region_data(mine);
	tx->tail = &mine->tail;
	tx->space_event = &mine->space_event;
	tx->head = &peer->head;
	tx->data_event = &peer->data_event;
	tx->size = size;
	tx->tail_local = atomic_load_explicit(&mine->tail, memory_order_relaxed);
	tx->head_cache = tx->tail_local;
	tx->resv_pad = 0;
	tx->resv_len = UINT32_MAX;
}

/*
 * Reload the consumer's head.  A valid head lies in [head_cache, tail]:
 * it never moves backwards and never passes what we committed.  Anything
 * else is a corrupt or hostile peer.  The acquire pairs with the
 * consumer's release in ring_rx_release(): once we see the new head, the
 * consumer has finished reading the room below it and we may overwrite it.
 */
static int tx_refresh_head(struct ring_tx *tx)
{
	uint32_t h = atomic_load_explicit(tx->head, memory_order_acquire);

	if ((h & (RING_ALIGN - 1)) ||
	    (uint32_t)(h - tx->head_cache) >
		    (uint32_t)(tx->tail_local - tx->head_cache))
		return -EPROTO;
	tx->head_cache = h;
	return 0;
}

/* Bytes a @len-byte record needs at the current tail: pad + record. */
static void tx_need(const struct ring_tx *tx, uint32_t len, uint32_t *pad,
		    uint32_t *rec)
{
	uint32_t pos = tx->tail_local & (tx->size - 1);
	uint32_t to_end = tx->size - pos;

	*rec = align8(RING_REC_HDR + len);
	*pad = *rec > to_end ? to_end : 0;
}

static int tx_room(struct ring_tx *tx, uint32_t need)
{
	uint32_t used = tx->tail_local - tx->head_cache;

	if (tx->size - used >= need)
		return 0;
	int res = tx_refresh_head(tx);
	if (res < 0)
		return res;
	used = tx->tail_local - tx->head_cache;
	return tx->size - used >= need ? 0 : -EAGAIN;
}

int ring_tx_reserve(struct ring_tx *tx, size_t len, void **ptr)
{
	uint32_t pad, rec;
	int res;

	if (tx->resv_len != UINT32_MAX)
		return -EBUSY;
	if (len > ring_max_msg(tx->size))
		return -EMSGSIZE;
	tx_need(tx, (uint32_t)len, &pad, &rec);
	res = tx_room(tx, pad + rec);
	if (res < 0)
		return res;

	uint32_t pos = tx->tail_local & (tx->size - 1);
	if (pad) {
		/* Not visible to the consumer until the commit's release. */
		uint32_t hdr[2] = { pad - RING_REC_HDR, RING_F_PAD };
		memcpy(tx->data + pos, hdr, sizeof(hdr));
		pos = 0;
	}
	tx->resv_pad = pad;
	tx->resv_len = (uint32_t)len;
	*ptr = tx->data + pos + RING_REC_HDR;
	return 0;
}

int ring_tx_commit(struct ring_tx *tx, size_t len)
{
	return ring_tx_commit_flags(tx, len, 0);
}

int ring_tx_commit_flags(struct ring_tx *tx, size_t len, uint32_t flags)
{
	if (tx->resv_len == UINT32_MAX || len > tx->resv_len ||
	    (flags & ~RING_F_FDS))
		return -EINVAL;

	uint32_t old = tx->tail_local;
	uint32_t pos = (old + tx->resv_pad) & (tx->size - 1);
	uint32_t hdr[2] = { (uint32_t)len, flags };
	memcpy(tx->data + pos, hdr, sizeof(hdr));

	uint32_t new_ = old + tx->resv_pad + align8(RING_REC_HDR + (uint32_t)len);
	tx->tail_local = new_;
	tx->resv_len = UINT32_MAX;
	tx->resv_pad = 0;

	/* Release: the record (and pad) are written before the consumer can
	 * see the tail that covers them. */
	atomic_store_explicit(tx->tail, new_, memory_order_release);
	/* Wakeup fence: our tail store is ordered before the load of the
	 * consumer's event index, against its store-event / fence /
	 * load-tail in ring_rx_prepare_wait(). */
	atomic_thread_fence(memory_order_seq_cst);
	uint32_t ev = atomic_load_explicit(tx->data_event, memory_order_relaxed);
	return ring_need_kick(ev, old, new_);
}

void ring_tx_cancel(struct ring_tx *tx)
{
	tx->resv_len = UINT32_MAX;
	tx->resv_pad = 0;
}

int ring_tx_prepare_wait(struct ring_tx *tx, size_t len)
{
	uint32_t pad, rec;

	if (len > ring_max_msg(tx->size))
		return -EMSGSIZE;
	tx_need(tx, (uint32_t)len, &pad, &rec);
	/* We need head >= tail + need - size; ask to be woken when the head
	 * passes one below that. */
	uint32_t want = tx->tail_local + pad + rec - tx->size;
	atomic_store_explicit(tx->space_event, want - 1, memory_order_relaxed);
	/* Pairs with the fence in ring_rx_release(). */
	atomic_thread_fence(memory_order_seq_cst);
	return tx_room(tx, pad + rec);
}

/* --- consumer ------------------------------------------------------------ */

void ring_rx_init(struct ring_rx *rx, struct region *mine,
		  const struct region *peer, uint32_t size)
{
	rx->data = region_cdata(peer);
	rx->head = &mine->head;
	rx->data_event = &mine->data_event;
	rx->tail = &peer->tail;
	rx->space_event = &peer->space_event;
	rx->size = size;
	rx->max_msg = ring_max_msg(size);
	rx->head_local = atomic_load_explicit(&mine->head, memory_order_relaxed);
	rx->tail_cache = rx->head_local;
	rx->cur = 0;
}

/*
 * Reload the producer's tail.  A valid tail lies in [tail_cache,
 * head + size], 8-aligned.  The acquire pairs with the producer's release
 * in ring_tx_commit(): records below the tail are fully written.
 */
static int rx_refresh_tail(struct ring_rx *rx)
{
	uint32_t t = atomic_load_explicit(rx->tail, memory_order_acquire);
	uint32_t fill = t - rx->head_local;

	if ((t & (RING_ALIGN - 1)) || fill > rx->size ||
	    fill < (uint32_t)(rx->tail_cache - rx->head_local))
		return -EPROTO;
	rx->tail_cache = t;
	return 0;
}

int ring_rx_peek(struct ring_rx *rx, const void **ptr, size_t *len,
		 uint32_t *flags)
{
	if (rx->cur) {
		*ptr = rx->data + rx->cur_off;
		*len = rx->cur_len;
		if (flags)
			*flags = rx->cur_flags;
		return 0;
	}

	uint32_t avail = rx->tail_cache - rx->head_local;
	if (avail == 0) {
		int res = rx_refresh_tail(rx);
		if (res < 0)
			return res;
		avail = rx->tail_cache - rx->head_local;
		if (avail == 0)
			return -EAGAIN;
	}

	uint32_t pos = rx->head_local & (rx->size - 1);
	uint32_t skip = 0;
	uint32_t hlen = read_once(rx->data + pos);
	uint32_t hflags = read_once(rx->data + pos + 4);

	if (hflags & RING_F_PAD) {
		/* A pad fills exactly the rest of the ring, and the record
		 * after it must be there too. */
		skip = rx->size - pos;
		if (hflags != RING_F_PAD || hlen != skip - RING_REC_HDR ||
		    avail <= skip)
			return -EPROTO;
		avail -= skip;
		pos = 0;
		hlen = read_once(rx->data);
		hflags = read_once(rx->data + 4);
	}
	if (hflags & ~RING_F_FDS) /* a second pad, or reserved bits */
		return -EPROTO;
	if (hlen > rx->max_msg)
		return -EPROTO;
	uint32_t rec = align8(RING_REC_HDR + hlen);
	if (rec > avail || rec > rx->size - pos)
		return -EPROTO;

	rx->cur = skip + rec;
	rx->cur_len = hlen;
	rx->cur_flags = hflags;
	rx->cur_off = pos + RING_REC_HDR;
	*ptr = rx->data + rx->cur_off;
	*len = hlen;
	if (flags)
		*flags = hflags;
	return 0;
}

int ring_rx_release(struct ring_rx *rx)
{
	if (!rx->cur)
		return -EINVAL;

	uint32_t old = rx->head_local;
	uint32_t new_ = old + rx->cur;
	rx->head_local = new_;
	rx->cur = 0;

	/* Release: we are done reading the record before the producer can
	 * see the head that lets it overwrite the room. */
	atomic_store_explicit(rx->head, new_, memory_order_release);
	/* Wakeup fence, against ring_tx_prepare_wait(). */
	atomic_thread_fence(memory_order_seq_cst);
	uint32_t ev = atomic_load_explicit(rx->space_event, memory_order_relaxed);
	return ring_need_kick(ev, old, new_);
}

int ring_rx_prepare_wait(struct ring_rx *rx)
{
	/* The ring is empty at head_local == the tail we last saw: ask to be
	 * woken by the commit that moves the tail past it. */
	atomic_store_explicit(rx->data_event, rx->head_local,
			      memory_order_relaxed);
	/* Pairs with the fence in ring_tx_commit(). */
	atomic_thread_fence(memory_order_seq_cst);
	int res = rx_refresh_tail(rx);
	if (res < 0)
		return res;
	return rx->tail_cache != rx->head_local ? 0 : -EAGAIN;
}

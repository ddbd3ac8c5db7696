/* SPDX-License-Identifier: MIT */
/*
 * ring.h: the shared-memory layout and the single-producer/single-consumer
 * message ring.  No system calls here: this file decides *whether* a peer
 * must be kicked; wake.c does the kicking and sleeping.
 *
 * Each side owns one region (a memfd it created, mapped read-write by it and
 * read-only by the peer).  A region holds:
 *  - the owner's outbound ring (data + tail index), and the owner's
 *    "wake me when there is room" event index, as producer;
 *  - the owner's head index of the *peer's* ring, and its "wake me when
 *    there is data" event index, as consumer.
 * So every byte of shared memory has exactly one writer, enforced by the
 * kernel (the peer's mapping is read-only and the memfd is sealed with
 * F_SEAL_FUTURE_WRITE).  docs/protocol.md is the normative description.
 */
#ifndef EVSHM_RING_H
#define EVSHM_RING_H

#include <assert.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define REGION_MAGIC 0x48535645u    /* "EVSH" in little-endian memory */
#define REGION_VERSION 1u
#define REGION_HDR_SIZE 4096u       /* ring data starts here */
#define RING_ALIGN 8u               /* records are 8-byte aligned */
#define RING_REC_HDR 8u             /* { u32 len; u32 flags; } */
#define RING_F_PAD 0x1u             /* skip to the end of the ring */
#define RING_F_FDS 0x2u             /* descriptors wait on the socket */
#define RING_EVENT_NONE 0xffffffffu /* initial value of the event indices */

/* Hot fields sit 128 bytes apart: the adjacent-line prefetcher of x86 pulls
 * 64-byte lines in pairs, so 64 would still share. */
#define RING_LINE 128

struct region {
	/* Written once by the owner before the region is handed over. */
	uint32_t magic;
	uint32_t version;
	uint32_t ring_size;
	uint32_t hdr_size;
	/* Producer index of the owner's ring: bytes ever committed. */
	alignas(RING_LINE) _Atomic uint32_t tail;
	/* Owner, as producer, sleeps until the peer's head passes this. */
	alignas(RING_LINE) _Atomic uint32_t space_event;
	/* Consumer index of the peer's ring: bytes ever released. */
	alignas(RING_LINE) _Atomic uint32_t head;
	/* Owner, as consumer, sleeps until the peer's tail passes this. */
	alignas(RING_LINE) _Atomic uint32_t data_event;
};

static_assert(offsetof(struct region, tail) == 128, "layout");
static_assert(offsetof(struct region, space_event) == 256, "layout");
static_assert(offsetof(struct region, head) == 384, "layout");
static_assert(offsetof(struct region, data_event) == 512, "layout");
static_assert(sizeof(struct region) <= REGION_HDR_SIZE, "layout");
static_assert(sizeof(_Atomic uint32_t) == 4, "u32 atomics");
static_assert(ATOMIC_INT_LOCK_FREE == 2, "lock-free u32 atomics");

/* Initialise a freshly created, zero-filled region of @ring_size. */
void region_init(struct region *r, uint32_t ring_size);

static inline uint8_t *region_data(struct region *r)
{
	return (uint8_t *)r + REGION_HDR_SIZE;
}

static inline const uint8_t *region_cdata(const struct region *r)
{
	return (const uint8_t *)r + REGION_HDR_SIZE;
}

/* Largest payload a ring of @size bytes carries: a record (header + payload,
 * rounded up to 8) must fit in half the ring, so that after at most one pad
 * record an empty ring always has room for it. */
static inline uint32_t ring_max_msg(uint32_t size)
{
	return size / 2 - RING_REC_HDR;
}

/* The virtio "need event" test: did moving an index from @old to @new
 * pass @event, i.e. is event in [old, new) modulo 2^32? */
static inline int ring_need_kick(uint32_t event, uint32_t old, uint32_t new_)
{
	return (uint32_t)(event - old) < (uint32_t)(new_ - old);
}

/* --- producer: our outbound ring ------------------------------------- */

struct ring_tx {
	uint8_t *data;                       /* our ring, read-write */
	_Atomic uint32_t *tail;              /* in our region */
	_Atomic uint32_t *space_event;       /* in our region */
	const _Atomic uint32_t *head;        /* in the peer's region */
	const _Atomic uint32_t *data_event;  /* in the peer's region */
	uint32_t size;
	uint32_t tail_local;                 /* == *tail, never re-read */
	uint32_t head_cache;                 /* last validated peer head */
	uint32_t resv_pad;                   /* pad bytes before the record */
	uint32_t resv_len;                   /* reserved payload; UINT32_MAX: none */
};

void ring_tx_init(struct ring_tx *tx, struct region *mine,
		  const struct region *peer, uint32_t size);

/* Reserve room for a @len-byte message and point *ptr at its payload.
 * 0; -EAGAIN (no room now); -EMSGSIZE (len > ring_max_msg);
 * -EBUSY (a reservation is open); -EPROTO (the peer's head is invalid). */
int ring_tx_reserve(struct ring_tx *tx, size_t len, void **ptr);

/* Publish the reserved message with final length @len <= reserved.
 * Returns 1 if the consumer is asleep and must be kicked, 0 if not,
 * -EINVAL (nothing reserved or len too large). */
int ring_tx_commit(struct ring_tx *tx, size_t len);
/* The same, with record flags (RING_F_FDS). */
int ring_tx_commit_flags(struct ring_tx *tx, size_t len, uint32_t flags);

/* Drop an open reservation without publishing anything. */
void ring_tx_cancel(struct ring_tx *tx);

/* Before sleeping for room for @len bytes: announce the head we need,
 * then look again.  0: room is there now, do not sleep.  -EAGAIN: still
 * full; the consumer will kick us once it frees that room.  -EPROTO. */
int ring_tx_prepare_wait(struct ring_tx *tx, size_t len);

/* --- consumer: the peer's ring ------------------------------------------ */

struct ring_rx {
	const uint8_t *data;                 /* peer's ring, read-only */
	_Atomic uint32_t *head;              /* in our region */
	_Atomic uint32_t *data_event;        /* in our region */
	const _Atomic uint32_t *tail;        /* in the peer's region */
	const _Atomic uint32_t *space_event; /* in the peer's region */
	uint32_t size;
	uint32_t max_msg;
	uint32_t head_local;                 /* == *head, never re-read */
	uint32_t tail_cache;                 /* last validated peer tail */
	uint32_t cur;                        /* bytes the peeked message spans
						(pad included); 0: none */
	uint32_t cur_len;
	uint32_t cur_flags;
	uint32_t cur_off;                    /* payload offset in data */
};

void ring_rx_init(struct ring_rx *rx, struct region *mine,
		  const struct region *peer, uint32_t size);

/* Look at the next message without consuming it.  Repeated peeks return
 * the same message until ring_rx_release().  @flags gets the record flags
 * other than RING_F_PAD (may be NULL).  0; -EAGAIN (empty); -EPROTO (the
 * peer's tail or a record is invalid). */
int ring_rx_peek(struct ring_rx *rx, const void **ptr, size_t *len,
		 uint32_t *flags);

/* Consume the peeked message.  1 if the producer sleeps waiting for the
 * room just freed and must be kicked, 0 if not, -EINVAL if nothing was
 * peeked. */
int ring_rx_release(struct ring_rx *rx);

/* Before sleeping for data: announce it, then look again.  0: data is
 * there now.  -EAGAIN: still empty; the producer will kick us on its next
 * commit.  -EPROTO. */
int ring_rx_prepare_wait(struct ring_rx *rx);

/* Has the peer's tail moved past what we consumed?  One acquire load and
 * no validation: for spin loops, which then peek. */
static inline int ring_rx_pending(const struct ring_rx *rx)
{
	return atomic_load_explicit(rx->tail, memory_order_acquire) !=
	       rx->head_local;
}

/* Has the peer's head moved since we last looked?  For spin loops. */
static inline int ring_tx_head_moved(const struct ring_tx *tx)
{
	return atomic_load_explicit(tx->head, memory_order_acquire) !=
	       tx->head_cache;
}

#endif

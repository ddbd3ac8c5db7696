/* SPDX-License-Identifier: MIT */
/*
 * ring.h: the single-producer message ring in shared memory, and the
 * event-index rules that decide when a side must be kicked.  No system
 * calls here: this file decides; bell.c kicks, sleeps and spins.
 *
 * A record is a 16-byte header { u32 len; u32 flags; u64 seq; } and its
 * payload, rounded up to 16 bytes; it never wraps (a PAD record fills the
 * rest of the ring).  `seq` is the message's sequence number, stored last
 * with release: it *is* the publication.  The consumer knows the sequence
 * number it expects next and waits for that value at its head, so it
 * reads only the record's own cache lines (no shared tail index per
 * message), and a stale header left by an earlier lap never matches (64
 * bits never wrap).  Indices (tail, head, events) are 64-bit byte counts.
 * docs/protocol.md, section 5, is the normative description.
 */
#ifndef EVSHM_RING_H
#define EVSHM_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "region.h"

#define RING_ALIGN 16u   /* records and payloads are 16-byte aligned */
#define RING_REC_HDR 16u /* { u32 len; u32 flags; u64 seq; } */
#define RING_F_PAD 0x1u  /* skip to the start of the ring */
#define RING_F_FDS 0x2u  /* descriptors wait on the socket */

/* Largest payload a ring of @size bytes carries: a record must fit in half
 * the ring, so that after at most one pad an empty ring has room for it. */
static inline uint32_t ring_max_msg(uint32_t size)
{
	return size / 2 - RING_REC_HDR;
}

static inline uint32_t ring_align(uint32_t n)
{
	return (n + RING_ALIGN - 1) & ~(RING_ALIGN - 1);
}

/* The virtio "need event" test on 64-bit indices: did moving an index
 * from @old to @new pass @event, i.e. is event in [old, new)? */
static inline bool ring_passes(uint64_t event, uint64_t old, uint64_t new_)
{
	return event >= old && event < new_;
}

/*
 * The wakeup fence of one role (producing, or consuming) and whether it
 * may skip it.  After publishing (a commit, a release) a side must order
 * its store before its load of the peer's event index (a seq_cst fence,
 * against the sleeper's store-event / fence / re-check).  A side in a
 * stream, whose peer is awake, skips that fence: it says so first
 * (WS_FENCELESS in its state word, then a fence), and a peer that goes to
 * sleep while the flag is up runs membarrier(2), which puts the fence into
 * our instruction stream for us.  Correct either way; fast where it
 * counts: fences on the hot path only while the peer sleeps often.
 */
#define RING_STREAK 64   /* ops with the peer awake before going fenceless */

struct ring_role {
	_Atomic uint32_t *state; /* tx_state or rx_state in our region */
	uint32_t val;            /* our copy of it (only we write it) */
	uint32_t streak;
	bool may_skip;           /* membarrier registration worked */
};

void ring_role_init(struct ring_role *r, _Atomic uint32_t *state,
		    bool may_skip);
/* Set or clear WS_ASLEEP (relaxed: a hint for the peer's choices). */
void ring_role_asleep(struct ring_role *r, bool asleep);
/* Leave fenceless mode (store-release of the state: every commit made
 * without a fence is visible to whoever sees the flag down). */
void ring_role_fence_on(struct ring_role *r);
/* After publishing: the wakeup fence, or not (see above).  @peer_asleep
 * is the peer role's WS_ASLEEP, read just before. */
static inline void ring_role_after_publish(struct ring_role *r,
					   bool peer_asleep);

/* A sleeper's re-check after arming: 0 ready now, -EAGAIN still not,
 * RING_BARRIER first run os_membarrier() (the peer is fenceless), then
 * re-check again. */
#define RING_BARRIER 1

/* --- producer --------------------------------------------------------- */

struct ring_tx {
	uint8_t *data;       /* our ring, read-write */
	struct region *mine; /* tail and counters are published there */
	uint32_t size;
	uint32_t max_msg;
	uint64_t tail;       /* bytes committed */
	uint64_t seq;        /* sequence number of the next message */
	uint64_t head;       /* room: bytes the consumer(s) released, validated */
	uint64_t msgs, bytes;
	bool resv;           /* a reservation is open */
	uint32_t resv_len;   /* its payload size */
	uint32_t resv_pad;   /* pad bytes before it */
};

void ring_tx_init(struct ring_tx *tx, struct region *mine, uint32_t size);

/* Bytes a @len-byte message needs at the current tail (pad included). */
static inline uint32_t ring_tx_need(const struct ring_tx *tx, size_t len);

/* Reserve room for a @len-byte message against tx->head and point *ptr at
 * its payload.  0; -EAGAIN (no room); -EMSGSIZE; -EBUSY (one is open). */
static inline int ring_tx_reserve(struct ring_tx *tx, size_t len, void **ptr);

/*
 * Publish the reservation with final length @len (<= reserved) and record
 * flags (RING_F_FDS).  *old / *new_ get the tail's move for the wake
 * checks.  -EINVAL if nothing is reserved or len is too large.
 *
 * Before the record shows, the seq field of the next header (at the new
 * tail) is cleared: the last lap may have left payload there, whose bytes
 * could read as the number a consumer will wait for.  Unless that place
 * holds the header of a record still to be read: @live is the lowest
 * index where one may start, and must be a record's start (a boundary this
 * side computed, or the head of the one consumer, whose lie misleads only
 * itself).
 */
static inline int ring_tx_publish(struct ring_tx *tx, size_t len,
				  uint32_t flags, uint64_t live, uint64_t *old,
				  uint64_t *new_);

/* Reserve, copy @len bytes from @buf and publish, in one go, for the
 * common case: no reservation open, a size within max_msg, no pad, room we
 * know of.  As ring_tx_reserve() + memcpy + ring_tx_publish() (flags 0),
 * without the reservation's state.  0, or -EAGAIN: not this way (nothing
 * done; the long way judges). */
static inline int ring_tx_put(struct ring_tx *tx, const void *buf, size_t len,
			      uint64_t live, uint64_t *old, uint64_t *new_);

/* Drop an open reservation without publishing anything. */
void ring_tx_cancel(struct ring_tx *tx);

/*
 * Reload the one consumer's head from its region (acquire: it has finished
 * reading what lies below).  A valid head lies in [tx->head, tx->tail], a
 * multiple of RING_ALIGN: it never moves backwards nor passes what we
 * committed.  0 or -EPROTO.
 */
int ring_tx_refresh_head(struct ring_tx *tx, const struct region *peer);

/* Channel producer, after ring_tx_publish(): the fence policy, then
 * whether the consumer sleeps on this commit (true: kick it). */
static inline bool ring_tx_wake(struct ring_role *role,
				const struct region *peer, uint64_t old,
				uint64_t new_);

/* Channel producer going to sleep for room for @len bytes: publish the
 * head we need as space_event, fence, look again.  0 room now, -EAGAIN
 * sleep, RING_BARRIER, -EPROTO. */
int ring_tx_arm(struct ring_tx *tx, const struct region *peer, size_t len);
/* The look again part alone (after a barrier). */
int ring_tx_check(struct ring_tx *tx, const struct region *peer, size_t len);

/* --- consumer ----------------------------------------------------------- */

struct ring_rx {
	const uint8_t *data; /* the peer's ring, read-only */
	struct region *mine; /* head and counters are published there */
	uint32_t size;
	uint32_t max_msg;
	uint64_t head;       /* bytes released */
	uint64_t seq;        /* sequence number expected next */
	uint64_t msgs, bytes;
	uint32_t cur;        /* bytes the peeked message spans (pad
				included); 0: none peeked */
	uint32_t cur_len;    /* the last one's */
	uint32_t cur_flags;
	uint32_t cur_off;    /* payload offset in data */
	uint32_t ncur;       /* records peeked (ring_rx_peek_next()) */
	uint64_t cur_bytes;  /* their payload bytes */
};

void ring_rx_init(struct ring_rx *rx, struct region *mine,
		  const uint8_t *data, uint32_t size);

/* Is the record we expect published?  One acquire load of its seq. */
bool ring_rx_ready(const struct ring_rx *rx);
/* The seq field that ring_rx_ready() reads (ready when it holds rx->seq):
 * for a spin that loads it directly. */
const uint64_t *ring_rx_seq_word(const struct ring_rx *rx);
/* The same for the record with sequence number @seq at byte index @head;
 * reads only what ring_rx_init() set, so any thread may ask. */
bool ring_rx_published(const struct ring_rx *rx, uint64_t head, uint64_t seq);

/* Look at the next message without consuming it; repeated peeks return
 * the same message until ring_rx_release().  @flags gets the record flags
 * other than RING_F_PAD (may be NULL).  0; -EAGAIN (nothing yet);
 * -EPROTO (the record is invalid). */
static inline int ring_rx_peek(struct ring_rx *rx, const void **ptr,
			       size_t *len, uint32_t *flags);

/* After a peek, add the message after the last one peeked, without
 * waiting: 0; -EAGAIN (not yet, or not a plain valid record: the next
 * ring_rx_peek() after the release judges it); -EINVAL (nothing
 * peeked). */
static inline int ring_rx_peek_next(struct ring_rx *rx, const void **ptr,
				    size_t *len);

/* More than one message peeked (ring_rx_peek_next())? */
static inline bool ring_rx_many(const struct ring_rx *rx)
{
	return rx->cur && rx->ncur > 1;
}

/* Consume the peeked message(s): publish the new head (release).  *old /
 * *new_ get the head's move.  -EINVAL if nothing was peeked. */
static inline int ring_rx_release(struct ring_rx *rx, uint64_t *old,
				  uint64_t *new_);

/* Peek, copy into @buf (@cap bytes) and release, in one go, for the
 * common case: nothing peeked, a plain valid record published, that fits.
 * As ring_rx_peek() + memcpy + ring_rx_release().  The length, or -EAGAIN:
 * not this way (nothing done; the long way waits or judges). */
static inline int ring_rx_take(struct ring_rx *rx, void *buf, size_t cap,
			       uint64_t *old, uint64_t *new_);
/* ring_rx_take() without the release, for a reader that must check after
 * its copy (a topic subscriber): the length, and *span, what
 * ring_rx_advance() then moves past; or -EAGAIN (nothing done). */
static inline int ring_rx_copy(const struct ring_rx *rx, void *buf,
			       size_t cap, uint32_t *span);
/* Move the head past @span bytes holding @n records of @bytes payload
 * (publishing it), as a release does. */
static inline void ring_rx_advance(struct ring_rx *rx, uint32_t span,
				   uint32_t n, uint64_t bytes, uint64_t *old,
				   uint64_t *new_);

/* Move past everything up to byte index @head with sequence number @seq
 * (a lapped topic subscriber), publishing the head. */
void ring_rx_jump(struct ring_rx *rx, uint64_t head, uint64_t seq);

/* Consumer after ring_rx_release(): fence policy, then whether the
 * producer sleeps for the room just freed (true: kick it).  @space_event
 * and @peer_state are the producer's (in its region). */
static inline bool ring_rx_wake(struct ring_role *role,
				const struct region *producer, uint64_t old,
				uint64_t new_);

/* Consumer going to sleep: publish the head as data_event, fence, look
 * again.  0 data now, -EAGAIN sleep, RING_BARRIER. */
int ring_rx_arm(struct ring_rx *rx, const struct region *producer);
/* The same with @tag (0 to 15) in data_event's low bits, below the
 * head's alignment: no move's "passes" changes, and the producer can
 * tell this arming from the last one at the same head (8.7). */
int ring_rx_arm_tagged(struct ring_rx *rx, const struct region *producer,
		       unsigned tag);

/* --- the hot path, inline ------------------------------------------------ *
 * Every message runs these, so they inline into the channel and the topic
 * (a call across files for each step cost a channel's send and receive
 * 13 % more instructions).  The rest of the ring is in ring.c; the
 * ordering rules are described there. */

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
static inline uint32_t ring_read_once(const uint32_t *p)
{
	return *(const volatile uint32_t *)p;
}

static inline const struct ring_rec *ring_rec_at(const uint8_t *data,
						 uint32_t pos)
{
	return (const struct ring_rec *)(const void *)(data + pos);
}

static inline bool ring_peer_asleep(const _Atomic uint32_t *peer_state)
{
	return atomic_load_explicit(peer_state, memory_order_relaxed) &
	       WS_ASLEEP;
}

static inline void ring_role_after_publish(struct ring_role *r,
					   bool peer_asleep)
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

static inline uint32_t ring_tx_need(const struct ring_tx *tx, size_t len)
{
	uint32_t pos = (uint32_t)tx->tail & (tx->size - 1);
	uint32_t to_end = tx->size - pos;
	uint32_t rec = ring_align(RING_REC_HDR + (uint32_t)len);

	return rec > to_end ? to_end + rec : rec;
}

static inline int ring_tx_reserve(struct ring_tx *tx, size_t len, void **ptr)
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

/* Publish the @len-byte record written after @pad bytes at the tail (its
 * pad's header written too, if any). */
static inline void ring_tx_commit_at(struct ring_tx *tx, uint32_t pad,
				     size_t len, uint32_t flags,
				     uint64_t live, uint64_t *old,
				     uint64_t *new_)
{
	uint32_t at = (uint32_t)tx->tail & (tx->size - 1);
	uint32_t pos = (at + pad) & (tx->size - 1);
	struct ring_rec *r = (struct ring_rec *)(void *)(tx->data + pos);
	uint64_t next = tx->tail + pad + ring_align(RING_REC_HDR + (uint32_t)len);

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
	if (pad) {
		/* The pad last: a consumer that sees it finds the record it
		 * leads to already published. */
		struct ring_rec *p = (struct ring_rec *)(void *)(tx->data + at);
		__atomic_store_n(&p->seq, tx->seq, __ATOMIC_RELEASE);
	}
	*old = tx->tail;
	tx->tail = next;
	*new_ = tx->tail;
	tx->seq++;
	/* Informative, for evshm ps and the peer's curiosity: nobody's
	 * correctness reads these. */
	atomic_store_explicit(&tx->mine->tail, tx->tail, memory_order_relaxed);
	atomic_store_explicit(&tx->mine->msgs_sent, ++tx->msgs,
			      memory_order_relaxed);
	tx->bytes += len;
	atomic_store_explicit(&tx->mine->bytes_sent, tx->bytes,
			      memory_order_relaxed);
}

static inline int ring_tx_publish(struct ring_tx *tx, size_t len,
				  uint32_t flags, uint64_t live, uint64_t *old,
				  uint64_t *new_)
{
	if (!tx->resv || len > tx->resv_len || (flags & ~RING_F_FDS))
		return -EINVAL;
	ring_tx_commit_at(tx, tx->resv_pad, len, flags, live, old, new_);
	tx->resv = false;
	return 0;
}

static inline int ring_tx_put(struct ring_tx *tx, const void *buf, size_t len,
			      uint64_t live, uint64_t *old, uint64_t *new_)
{
	if (tx->resv || len > tx->max_msg)
		return -EAGAIN;

	uint32_t pos = (uint32_t)tx->tail & (tx->size - 1);
	uint32_t rec = ring_align(RING_REC_HDR + (uint32_t)len);

	/* A pad, or no room that we know of: the long way. */
	if (rec > tx->size - pos || tx->size - (tx->tail - tx->head) < rec)
		return -EAGAIN;
	if (len)
		memcpy(tx->data + pos + RING_REC_HDR, buf, len);
	ring_tx_commit_at(tx, 0, len, 0, live, old, new_);
	return 0;
}

/* After a publication that moved our index from @old to @new_: the fence
 * policy, then whether it passed the peer's @event (kick it). */
static inline bool ring_wake(struct ring_role *role,
			     const _Atomic uint32_t *peer_state,
			     const _Atomic uint64_t *event, uint64_t old,
			     uint64_t new_)
{
	ring_role_after_publish(role, ring_peer_asleep(peer_state));
	return ring_passes(atomic_load_explicit(event, memory_order_relaxed),
			   old, new_);
}

static inline bool ring_tx_wake(struct ring_role *role,
				const struct region *peer, uint64_t old,
				uint64_t new_)
{
	return ring_wake(role, &peer->rx_state, &peer->data_event, old, new_);
}

/* Validate the record that should start at byte index @at with sequence
 * number @seq; *span gets the bytes it covers (a pad before it included).
 * 0, -EAGAIN (not published), -EPROTO. */
static inline __attribute__((always_inline)) int
ring_rx_look(const struct ring_rx *rx, uint64_t at, uint64_t seq,
	     uint32_t *span, uint32_t *off, uint32_t *len, uint32_t *flags)
{
	uint32_t pos = (uint32_t)at & (rx->size - 1);
	const struct ring_rec *r = ring_rec_at(rx->data, pos);
	uint32_t skip = 0;

	/* Acquire pairs with the producer's release of seq: the header and
	 * payload below are written. */
	if (__atomic_load_n(&r->seq, __ATOMIC_ACQUIRE) != seq)
		return -EAGAIN;
	uint32_t hlen = ring_read_once(&r->len);
	uint32_t hflags = ring_read_once(&r->flags);

	if (hflags & RING_F_PAD) {
		/* A pad fills exactly the rest of the ring, and the record
		 * it leads to was published before it. */
		skip = rx->size - pos;
		if (hflags != RING_F_PAD || hlen != skip - RING_REC_HDR)
			return ERR_PROTO(RING_PAD);
		pos = 0;
		r = ring_rec_at(rx->data, 0);
		if (__atomic_load_n(&r->seq, __ATOMIC_ACQUIRE) != seq)
			return ERR_PROTO(RING_PAD);
		hlen = ring_read_once(&r->len);
		hflags = ring_read_once(&r->flags);
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

/* Add the record ring_rx_look() found to the run peeked, and point at it. */
static inline void ring_rx_add(struct ring_rx *rx, uint32_t span,
			       uint32_t off, uint32_t len, uint32_t flags)
{
	rx->cur += span;
	rx->ncur++;
	rx->cur_bytes += len;
	rx->cur_off = off;
	rx->cur_len = len;
	rx->cur_flags = flags;
}

static inline void ring_rx_out(const struct ring_rx *rx, const void **ptr,
			       size_t *len, uint32_t *flags)
{
	*ptr = rx->data + rx->cur_off;
	*len = rx->cur_len;
	if (flags)
		*flags = rx->cur_flags;
}

static inline int ring_rx_peek(struct ring_rx *rx, const void **ptr,
			       size_t *len, uint32_t *flags)
{
	if (!rx->cur) {
		uint32_t span = 0, off = 0, hlen = 0, hflags = 0;
		int res = ring_rx_look(rx, rx->head, rx->seq, &span, &off, &hlen,
				  &hflags);
		if (res < 0)
			return res;
		rx->ncur = 0;
		rx->cur_bytes = 0;
		ring_rx_add(rx, span, off, hlen, hflags);
	}
	ring_rx_out(rx, ptr, len, flags);
	return 0;
}

static inline int ring_rx_peek_next(struct ring_rx *rx, const void **ptr,
				    size_t *len)
{
	uint32_t span = 0, off = 0, hlen = 0, hflags = 0;

	if (!rx->cur)
		return -EINVAL;
	/* Anything but a plain, valid record ends the run: the next
	 * ring_rx_peek() after the release judges it. */
	if (ring_rx_look(rx, rx->head + rx->cur, rx->seq + rx->ncur, &span, &off,
		    &hlen, &hflags) < 0 ||
	    hflags || span > rx->size - rx->cur)
		return -EAGAIN;
	ring_rx_add(rx, span, off, hlen, 0);
	ring_rx_out(rx, ptr, len, NULL);
	return 0;
}

static inline void ring_rx_publish_head(struct ring_rx *rx)
{
	/* Release: we are done reading the record before the producer can
	 * see the head that lets it overwrite the room. */
	atomic_store_explicit(&rx->mine->head, rx->head, memory_order_release);
}

static inline void ring_rx_advance(struct ring_rx *rx, uint32_t span,
				   uint32_t n, uint64_t bytes, uint64_t *old,
				   uint64_t *new_)
{
	*old = rx->head;
	rx->head += span;
	*new_ = rx->head;
	rx->seq += n;
	ring_rx_publish_head(rx);
	rx->msgs += n;
	atomic_store_explicit(&rx->mine->msgs_recv, rx->msgs,
			      memory_order_relaxed);
	rx->bytes += bytes;
	atomic_store_explicit(&rx->mine->bytes_recv, rx->bytes,
			      memory_order_relaxed);
}

static inline int ring_rx_release(struct ring_rx *rx, uint64_t *old,
				  uint64_t *new_)
{
	if (!rx->cur)
		return -EINVAL;
	ring_rx_advance(rx, rx->cur, rx->ncur, rx->cur_bytes, old, new_);
	rx->cur = 0;
	return 0;
}

static inline int ring_rx_copy(const struct ring_rx *rx, void *buf,
			       size_t cap, uint32_t *span)
{
	uint32_t off = 0, len = 0, flags = 0;

	if (rx->cur ||
	    ring_rx_look(rx, rx->head, rx->seq, span, &off, &len, &flags) < 0 ||
	    flags || len > cap)
		return -EAGAIN;
	/* The length was read once and checked: copy that much, whatever
	 * the producer writes meanwhile. */
	if (len)
		memcpy(buf, rx->data + off, len);
	return (int)len;
}

static inline int ring_rx_take(struct ring_rx *rx, void *buf, size_t cap,
			       uint64_t *old, uint64_t *new_)
{
	uint32_t span = 0;
	int len = ring_rx_copy(rx, buf, cap, &span);

	if (len >= 0)
		ring_rx_advance(rx, span, 1, (uint32_t)len, old, new_);
	return len;
}

static inline bool ring_rx_wake(struct ring_role *role,
				const struct region *producer, uint64_t old,
				uint64_t new_)
{
	return ring_wake(role, &producer->tx_state, &producer->space_event, old,
			 new_);
}

#endif

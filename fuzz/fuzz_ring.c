/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ring.c: ring.c against a hostile peer.
 *
 * Two regions live in heap memory laid out as in a channel: ours and the
 * peer's, each a 4096-byte header page followed by its ring, allocated so
 * that the ring ends exactly where the allocation does (ASan's redzone is
 * the next byte) and with every byte of the header page poisoned except the
 * four index words, so that a read before the ring is caught too.
 *
 * Our side is the code under test: a ring_tx on our ring and a ring_rx on
 * the peer's.  The peer is played by the input, which is a little program
 * (see enum op): it may act as an honest peer, through a second ring_tx /
 * ring_rx on the peer's side of the same memory, or as a hostile one that
 * writes any value into its indices, event indices and ring data.
 *
 * Always checked: every payload we are handed or reserve lies inside its
 * ring, 8-aligned, no longer than ring_max_msg(); our indices stay 8-aligned
 * and never claim more than a ring of fill; return values are the
 * documented ones.  Once one of our calls returns -EPROTO the session ends,
 * as the channel's error is sticky.
 *
 * While the peer has been honest in a direction ("clean"), that direction
 * is also checked for correctness: no -EPROTO, messages arrive in order with
 * their length, flags and contents, -EAGAIN only when there is no data or
 * room, and no wakeup is lost (a side that prepared to wait and got -EAGAIN
 * is kicked by the commit or release that makes its wait come true).
 *
 * Not covered: the peer changing memory *during* one of our calls (one
 * thread here); ring.c reads each peer word once into a local for that.
 *
 * Input: one config byte (bits 0-1: our ring 4096 << n, bits 2-3: the
 * peer's ring, bits 4-5 / 6-7: where our tail / our head start, see
 * start_index(), each mode but 0 taking a u32), then opcodes, each a byte
 * (modulo OP_COUNT) followed by its arguments.  Integers are little-endian;
 * a truncated input reads zeros.  fuzz/make-seeds.py mirrors this encoding.
 */
#include "ring.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define HAVE_ASAN 1
#endif
#endif
#ifndef HAVE_ASAN
#define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Keep in sync with fuzz/make-seeds.py. */
enum op {
	OP_RX_PEEK = 0,      /* ring_rx_peek */
	OP_RX_RELEASE = 1,   /* ring_rx_release */
	OP_RX_WAIT = 2,      /* ring_rx_prepare_wait */
	OP_RX_DRAIN = 3,     /* u8 n: up to n % 64 + 1 peek + release */
	OP_TX_RESERVE = 4,   /* u16 len: ring_tx_reserve, fill it all */
	OP_TX_COMMIT = 5,    /* u16 how: ring_tx_commit[_flags], commit_len() */
	OP_TX_CANCEL = 6,    /* ring_tx_cancel */
	OP_TX_WAIT = 7,      /* u16 len: ring_tx_prepare_wait */
	OP_TX_SEND = 8,      /* u16 len, u8 n: n % 16 + 1 reserve + commit,
				flagged RING_F_FDS if n & 0x10 */
	OP_PEER_SEND = 9,    /* u16 len, u8 n: the same by the honest peer */
	OP_PEER_RECV = 10,   /* u8 n: honest peer consumes up to n % 64 + 1 */
	OP_PEER_RX_WAIT = 11,/* honest peer prepares to wait for data */
	OP_PEER_TX_WAIT = 12,/* u16 len: honest peer prepares to wait for room */
	OP_SET_TAIL = 13,    /* u8 mode, u32 v: peer's tail, see set_index() */
	OP_SET_HEAD = 14,    /* u8 mode, u32 v: peer's head */
	OP_SET_EVENT = 15,   /* u8 which, u32 v: peer's event indices */
	OP_POKE_DATA = 16,   /* u16 off, u8 n, n bytes: into the peer's ring */
	OP_POKE_HDR = 17,    /* u16 off, u32 len, u32 flags: a record header */
	OP_PEER_RESYNC = 18, /* honest producer restarts at the peer's tail */
	OP_COUNT
};

#define MAX_OPS 4096       /* opcodes per input */
#define MAX_CALLS 20000    /* ring calls per input, all sides */
#define MAX_BYTES (2u << 20) /* payload bytes written or read per input */
#define MAX_RING (4096u << 3)
#define MAX_INFLIGHT (MAX_RING / RING_ALIGN + 1)

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n",         \
				__FILE__, __LINE__, #cond);                  \
			abort();                                             \
		}                                                            \
	} while (0)

struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t get_u8(struct input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint16_t get_u16(struct input *in)
{
	uint16_t v = get_u8(in);
	return (uint16_t)(v | get_u8(in) << 8);
}

static uint32_t get_u32(struct input *in)
{
	uint32_t v = get_u16(in);
	return v | (uint32_t)get_u16(in) << 16;
}

/* Messages committed and not yet consumed, for the clean-mode checks. */
struct fifo {
	uint32_t seq[MAX_INFLIGHT];
	uint32_t len[MAX_INFLIGHT];
	uint32_t flags[MAX_INFLIGHT];
	uint32_t first, count, next_seq;
};

static void fifo_push(struct fifo *f, uint32_t len, uint32_t flags)
{
	CHECK(f->count < MAX_INFLIGHT);
	uint32_t i = (f->first + f->count++) % MAX_INFLIGHT;
	f->seq[i] = f->next_seq++;
	f->len[i] = len;
	f->flags[i] = flags;
}

static void fifo_pop(struct fifo *f)
{
	CHECK(f->count > 0);
	f->first = (f->first + 1) % MAX_INFLIGHT;
	f->count--;
}

/* The byte loops below are the harness's, not the code under test: no
 * coverage feedback (or its cost) for them. */
#define NO_COVERAGE __attribute__((no_sanitize("coverage"), noinline))

/* Payload byte @i of message @seq: order and offset both show. */
static uint8_t pattern(uint32_t seq, size_t i)
{
	return (uint8_t)(seq * 167u + i * 31u + 1u);
}

NO_COVERAGE static void fill(uint8_t *p, size_t n, uint32_t seq)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(seq, i);
}

/* A received message is what the front of @f says it is. */
NO_COVERAGE static void verify(const struct fifo *f, const uint8_t *p,
			       size_t n, uint32_t flags)
{
	CHECK(f->count > 0);
	CHECK(n == f->len[f->first]);
	CHECK(flags == f->flags[f->first]);
	for (size_t i = 0; i < n; i++)
		CHECK(p[i] == pattern(f->seq[f->first], i));
}

static volatile uint8_t sink;

/* Read every byte, so that ASan checks the whole range. */
NO_COVERAGE static void touch(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s ^= p[i];
	sink = s;
}

static uint32_t align8(size_t n)
{
	return (uint32_t)((n + RING_ALIGN - 1) & ~(size_t)(RING_ALIGN - 1));
}

/* Is there room for a @len-byte record (and its pad) at @tail? */
static bool room_for(uint32_t tail, uint32_t head, uint32_t size, size_t len)
{
	uint32_t to_end = size - (tail & (size - 1));
	uint32_t rec = align8(RING_REC_HDR + len);
	uint32_t pad = rec > to_end ? to_end : 0;
	return size - (uint32_t)(tail - head) >= pad + rec;
}

static uint32_t load(const _Atomic uint32_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

static void store(_Atomic uint32_t *a, uint32_t v)
{
	atomic_store_explicit(a, v, memory_order_relaxed);
}

/* A region of @size ring bytes whose ring ends where the allocation does,
 * with the header page poisoned but for the index words. */
static struct region *region_new(uint32_t size)
{
	struct region *r = aligned_alloc(REGION_HDR_SIZE, REGION_HDR_SIZE + size);
	if (!r)
		abort();
	memset(r, 0, REGION_HDR_SIZE + size);
	region_init(r, size);
#ifdef HAVE_ASAN
	static const size_t idx[] = {
		offsetof(struct region, tail), offsetof(struct region, space_event),
		offsetof(struct region, head), offsetof(struct region, data_event),
	};
	size_t from = 0;
	for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
		ASAN_POISON_MEMORY_REGION((uint8_t *)r + from, idx[i] - from);
		from = idx[i] + RING_ALIGN; /* ASan's granule is 8 bytes */
	}
	ASAN_POISON_MEMORY_REGION((uint8_t *)r + from, REGION_HDR_SIZE - from);
#endif
	return r;
}

static void region_free(struct region *r, uint32_t size)
{
	ASAN_UNPOISON_MEMORY_REGION(r, REGION_HDR_SIZE + size);
	free(r);
}

struct fuzz {
	struct input in;
	unsigned calls;
	size_t bytes;                  /* payload bytes filled or read */
	bool over;                     /* our side got -EPROTO: session ends */

	struct region *mine, *peer;
	uint32_t tx_size, rx_size;     /* our ring, the peer's ring */

	/* Our side: the code under test. */
	struct ring_tx tx;
	struct ring_rx rx;
	uint8_t *resv;                 /* open reservation, or NULL */
	size_t resv_len;
	const uint8_t *cur;            /* peeked message, or NULL */
	size_t cur_len;
	uint32_t cur_flags;

	/* The honest peer: our code again, on the other side of the memory. */
	struct ring_tx ptx;            /* writes the peer's ring */
	struct ring_rx prx;            /* reads ours */
	bool ptx_dead, prx_dead;       /* got -EPROTO (hostile peer only) */

	/* Clean: the peer has not forged anything in this direction. */
	bool tx_clean, rx_clean;
	struct fifo tx_fifo, rx_fifo;

	/* Sleepers: the other side must kick them. */
	bool rx_asleep;                /* we wait for data */
	bool prx_asleep;               /* the peer waits for data */
	bool tx_asleep, tx_kicked;     /* we wait for room for tx_wait */
	size_t tx_wait;
	bool ptx_asleep, ptx_kicked;   /* the peer waits for room */
	size_t ptx_wait;
};

/* Step budget: bounds the work of any input, whatever its loops. */
static bool budget(struct fuzz *f)
{
	return !f->over && ++f->calls <= MAX_CALLS && f->bytes <= MAX_BYTES;
}

/* Payload length argument: mostly in range, sometimes over it. */
static size_t msg_len(uint16_t a, uint32_t size)
{
	uint32_t max = ring_max_msg(size);

	if (a == 0xffff)
		return SIZE_MAX;
	if (a >= 0xf000)
		return (size_t)max + 1 + (a & 0xfffu);
	return a % (max + 1);
}

static uint32_t start_index(struct input *in, unsigned mode)
{
	switch (mode & 3) {
	case 1: return get_u32(in) & ~(RING_ALIGN - 1);
	case 2: return 0u - ((get_u32(in) & 0xfffu) << 3);       /* near 2^32 */
	case 3: return 0x80000000u - ((get_u32(in) & 0xfffu) << 3);
	default: return 0;
	}
}

/* Our own state, after every step. */
static void check_ours(const struct fuzz *f)
{
	uint32_t tail = load(&f->mine->tail), head = load(&f->mine->head);

	CHECK(tail == f->tx.tail_local);
	CHECK(head == f->rx.head_local);
	CHECK((tail & (RING_ALIGN - 1)) == 0);
	CHECK((head & (RING_ALIGN - 1)) == 0);
	CHECK((uint32_t)(f->tx.tail_local - f->tx.head_cache) <= f->tx_size);
	CHECK((uint32_t)(f->rx.tail_cache - f->rx.head_local) <= f->rx_size);
	CHECK(!f->resv == (f->tx.resv_len == UINT32_MAX));
}

static void check_in_ring(const uint8_t *p, size_t len, const uint8_t *ring,
			  uint32_t size)
{
	CHECK(p >= ring && p <= ring + size);
	CHECK((size_t)(p - ring) % RING_ALIGN == 0);
	CHECK(len <= ring_max_msg(size));
	CHECK(len <= (size_t)(ring + size - p));
}

/* --- our consumer ------------------------------------------------------- */

static void rx_peek(struct fuzz *f)
{
	const void *p;
	size_t len;
	uint32_t flags;

	if (!budget(f))
		return;
	f->rx_asleep = false;
	bool odd = f->calls & 1;
	int res = ring_rx_peek(&f->rx, &p, &len, odd ? NULL : &flags);
	if (res == -EPROTO) {
		CHECK(!f->rx_clean);
		f->over = true;
		return;
	}
	if (res == -EAGAIN) {
		CHECK(!f->cur);
		if (f->rx_clean)
			CHECK(load(&f->peer->tail) == f->rx.head_local);
		return;
	}
	CHECK(res == 0);
	check_in_ring(p, len, region_cdata(f->peer), f->rx_size);
	if (odd) {
		/* @flags may be NULL; peek again for them. */
		const void *p2;
		size_t len2;
		CHECK(ring_rx_peek(&f->rx, &p2, &len2, &flags) == 0);
		CHECK(p2 == p && len2 == len);
	}
	CHECK(!(flags & ~RING_F_FDS)); /* no pad, no reserved bits */
	if (f->cur) {
		/* Repeated peeks give the same message. */
		CHECK(p == f->cur && len == f->cur_len && flags == f->cur_flags);
	}
	f->cur = p;
	f->cur_len = len;
	f->cur_flags = flags;
	touch(p, len);
	f->bytes += len;
	if (f->rx_clean)
		verify(&f->rx_fifo, p, len, flags);
}

static void rx_release(struct fuzz *f)
{
	if (!budget(f))
		return;
	f->rx_asleep = false;
	int res = ring_rx_release(&f->rx);
	if (!f->cur) {
		CHECK(res == -EINVAL);
		return;
	}
	CHECK(res == 0 || res == 1);
	f->cur = NULL;
	if (f->rx_clean)
		fifo_pop(&f->rx_fifo);
	if (f->ptx_asleep) {
		f->ptx_kicked |= res == 1;
		/* Room for the sleeping peer producer must come with a kick. */
		if (f->rx_clean && room_for(f->ptx.tail_local, f->rx.head_local,
					    f->rx_size, f->ptx_wait))
			CHECK(f->ptx_kicked);
		if (f->ptx_kicked)
			f->ptx_asleep = false;
	}
}

static void rx_wait(struct fuzz *f)
{
	if (!budget(f))
		return;
	int res = ring_rx_prepare_wait(&f->rx);
	f->rx_asleep = false;
	if (res == -EPROTO) {
		CHECK(!f->rx_clean);
		f->over = true;
		return;
	}
	CHECK(load(&f->mine->data_event) == f->rx.head_local);
	CHECK(res == 0 || res == -EAGAIN);
	if (f->rx_clean)
		CHECK((res == 0) ==
		      (load(&f->peer->tail) != f->rx.head_local));
	f->rx_asleep = res == -EAGAIN;
}

/* --- our producer ------------------------------------------------------- */

static void tx_reserve(struct fuzz *f, size_t len)
{
	void *p;

	if (!budget(f))
		return;
	f->tx_asleep = false;
	int res = ring_tx_reserve(&f->tx, len, &p);
	if (f->resv) {
		CHECK(res == -EBUSY);
		return;
	}
	if (len > ring_max_msg(f->tx_size)) {
		CHECK(res == -EMSGSIZE);
		return;
	}
	if (res == -EPROTO) {
		CHECK(!f->tx_clean);
		f->over = true;
		return;
	}
	if (res == -EAGAIN) {
		if (f->tx_clean)
			CHECK(!room_for(f->tx.tail_local, load(&f->peer->head),
					f->tx_size, len));
		return;
	}
	CHECK(res == 0);
	CHECK(room_for(f->tx.tail_local, f->tx.head_cache, f->tx_size, len));
	check_in_ring(p, len, region_data(f->mine), f->tx_size);
	f->resv = p;
	f->resv_len = len;
	fill(f->resv, len, f->tx_fifo.next_seq);
	f->bytes += len;
}

/* Commit argument: bits 0-11 shorten the reservation by that much or, with
 * bit 15, lengthen it (invalid unless 0); bit 12 flags RING_F_FDS, bits
 * 13 and 14 flags that are not allowed. */
static size_t commit_len(const struct fuzz *f, uint16_t how)
{
	size_t d = how & 0xfffu;

	if (how & 0x8000)
		return f->resv_len + d;
	return f->resv_len - (d < f->resv_len ? d : f->resv_len);
}

static uint32_t commit_flags(uint16_t how)
{
	return (how & 0x1000 ? RING_F_FDS : 0) | (how & 0x2000 ? RING_F_PAD : 0) |
	       (how & 0x4000 ? 0x80000000u : 0);
}

static void tx_commit(struct fuzz *f, size_t len, uint32_t flags)
{
	if (!budget(f))
		return;
	f->tx_asleep = false;
	int res = flags ? ring_tx_commit_flags(&f->tx, len, flags)
			: ring_tx_commit(&f->tx, len);
	if (!f->resv || len > f->resv_len || (flags & ~RING_F_FDS)) {
		CHECK(res == -EINVAL);
		return;
	}
	CHECK(res == 0 || res == 1);
	f->resv = NULL;
	if (f->tx_clean)
		fifo_push(&f->tx_fifo, (uint32_t)len, flags);
	else
		f->tx_fifo.next_seq++;
	if (f->prx_asleep) {
		/* The peer consumer sleeps on an empty ring: wake it. */
		CHECK(res == 1 || !f->tx_clean);
		f->prx_asleep = res != 1;
	}
}

static void tx_cancel(struct fuzz *f)
{
	if (!budget(f))
		return;
	f->tx_asleep = false;
	ring_tx_cancel(&f->tx);
	f->resv = NULL;
}

static void tx_wait(struct fuzz *f, size_t len)
{
	if (!budget(f))
		return;
	f->tx_asleep = false;
	int res = ring_tx_prepare_wait(&f->tx, len);
	if (len > ring_max_msg(f->tx_size)) {
		CHECK(res == -EMSGSIZE);
		return;
	}
	if (res == -EPROTO) {
		CHECK(!f->tx_clean);
		f->over = true;
		return;
	}
	CHECK(res == 0 || res == -EAGAIN);
	if (f->tx_clean)
		CHECK((res == 0) == room_for(f->tx.tail_local,
					     load(&f->peer->head), f->tx_size,
					     len));
	if (res == -EAGAIN) {
		f->tx_asleep = true;
		f->tx_kicked = false;
		f->tx_wait = len;
	}
}

/* --- the honest peer ---------------------------------------------------- */

static void peer_send(struct fuzz *f, size_t len, uint32_t flags)
{
	void *p;

	if (f->ptx_dead || !budget(f))
		return;
	f->ptx_asleep = false;
	int res = ring_tx_reserve(&f->ptx, len, &p);
	if (res == -EMSGSIZE || res == -EAGAIN)
		return;
	if (res == -EPROTO) {
		/* Our head passed its tail: we consumed a forged one. */
		CHECK(!f->rx_clean);
		f->ptx_dead = true;
		return;
	}
	CHECK(res == 0);
	check_in_ring(p, len, region_data(f->peer), f->rx_size);
	fill(p, len, f->rx_fifo.next_seq);
	f->bytes += len;
	res = ring_tx_commit_flags(&f->ptx, len, flags);
	CHECK(res == 0 || res == 1);
	if (f->rx_clean)
		fifo_push(&f->rx_fifo, (uint32_t)len, flags);
	else
		f->rx_fifo.next_seq++;
	if (f->rx_asleep) {
		/* We sleep on an empty ring: the peer must wake us. */
		CHECK(res == 1 || !f->rx_clean);
		f->rx_asleep = res != 1;
	}
}

static void peer_recv(struct fuzz *f, unsigned n)
{
	const void *p;
	size_t len;
	uint32_t flags;

	f->prx_asleep = false;
	for (unsigned i = 0; i < n && !f->prx_dead && budget(f); i++) {
		int res = ring_rx_peek(&f->prx, &p, &len, &flags);
		if (res == -EAGAIN) {
			if (f->tx_clean)
				CHECK(f->tx_fifo.count == 0);
			return;
		}
		if (res == -EPROTO) {
			/* Only after a forged head let us overwrite unread
			 * records: otherwise our producer wrote garbage. */
			CHECK(!f->tx_clean);
			f->prx_dead = true;
			return;
		}
		CHECK(res == 0);
		check_in_ring(p, len, region_cdata(f->mine), f->tx_size);
		touch(p, len);
		f->bytes += len;
		if (f->tx_clean)
			verify(&f->tx_fifo, p, len, flags);
		res = ring_rx_release(&f->prx);
		CHECK(res == 0 || res == 1);
		if (f->tx_clean)
			fifo_pop(&f->tx_fifo);
		if (f->tx_asleep) {
			f->tx_kicked |= res == 1;
			if (f->tx_clean &&
			    room_for(f->tx.tail_local, load(&f->peer->head),
				     f->tx_size, f->tx_wait))
				CHECK(f->tx_kicked);
			if (f->tx_kicked)
				f->tx_asleep = false;
		}
	}
}

static void peer_rx_wait(struct fuzz *f)
{
	if (f->prx_dead || !budget(f))
		return;
	int res = ring_rx_prepare_wait(&f->prx);
	if (res == -EPROTO) {
		CHECK(!f->tx_clean);
		f->prx_dead = true;
		return;
	}
	CHECK(res == 0 || res == -EAGAIN);
	f->prx_asleep = res == -EAGAIN;
}

static void peer_tx_wait(struct fuzz *f, size_t len)
{
	if (f->ptx_dead || !budget(f))
		return;
	int res = ring_tx_prepare_wait(&f->ptx, len);
	f->ptx_asleep = false;
	if (res == -EMSGSIZE)
		return;
	if (res == -EPROTO) {
		CHECK(!f->rx_clean);
		f->ptx_dead = true;
		return;
	}
	CHECK(res == 0 || res == -EAGAIN);
	if (res == -EAGAIN) {
		f->ptx_asleep = true;
		f->ptx_kicked = false;
		f->ptx_wait = len;
	}
}

/* --- the hostile peer --------------------------------------------------- */

/* mode 0: v; 1: @ours + v; 2: current + v; 3: @honest + v. */
static void set_index(_Atomic uint32_t *a, unsigned mode, uint32_t v,
		      uint32_t ours, uint32_t honest)
{
	switch (mode & 3) {
	case 1: v += ours; break;
	case 2: v += load(a); break;
	case 3: v += honest; break;
	}
	store(a, v);
}

static void poke_data(struct fuzz *f)
{
	uint8_t *ring = region_data(f->peer);
	uint32_t off = get_u16(&f->in) & (f->rx_size - 1);
	size_t n = get_u8(&f->in);

	if (n > f->rx_size - off)
		n = f->rx_size - off;
	for (size_t i = 0; i < n; i++)
		ring[off + i] = get_u8(&f->in);
	f->rx_clean = false;
}

static void poke_hdr(struct fuzz *f)
{
	uint8_t *ring = region_data(f->peer);
	uint32_t off = get_u16(&f->in) & (f->rx_size - 1) & ~(RING_ALIGN - 1);
	uint32_t hdr[2];

	hdr[0] = get_u32(&f->in);
	hdr[1] = get_u32(&f->in);
	memcpy(ring + off, hdr, sizeof(hdr));
	f->rx_clean = false;
}

static void peer_resync(struct fuzz *f)
{
	/* ring_tx trusts its own tail to be 8-aligned. */
	store(&f->peer->tail, load(&f->peer->tail) & ~(RING_ALIGN - 1));
	ring_tx_init(&f->ptx, f->peer, f->mine, f->rx_size);
	/* Only room that our head really frees, if the forged tail allows. */
	uint32_t head = load(&f->mine->head);
	if ((uint32_t)(f->ptx.tail_local - head) <= f->rx_size)
		f->ptx.head_cache = head;
	f->ptx_asleep = false;
	f->ptx_dead = false;
	f->rx_clean = false;
}

/* --- the program -------------------------------------------------------- */

static void step(struct fuzz *f)
{
	struct input *in = &f->in;
	unsigned n, mode;
	uint16_t len;
	uint32_t v, flags;

	switch ((enum op)(get_u8(in) % OP_COUNT)) {
	case OP_RX_PEEK:
		rx_peek(f);
		break;
	case OP_RX_RELEASE:
		rx_release(f);
		break;
	case OP_RX_WAIT:
		rx_wait(f);
		break;
	case OP_RX_DRAIN:
		n = get_u8(in) % 64u + 1;
		for (unsigned i = 0; i < n && !f->over; i++) {
			rx_peek(f);
			if (!f->cur)
				break;
			rx_release(f);
		}
		break;
	case OP_TX_RESERVE:
		tx_reserve(f, msg_len(get_u16(in), f->tx_size));
		break;
	case OP_TX_COMMIT:
		len = get_u16(in);
		tx_commit(f, commit_len(f, len), commit_flags(len));
		break;
	case OP_TX_CANCEL:
		tx_cancel(f);
		break;
	case OP_TX_WAIT:
		tx_wait(f, msg_len(get_u16(in), f->tx_size));
		break;
	case OP_TX_SEND:
		len = get_u16(in);
		n = get_u8(in);
		flags = n & 0x10 ? RING_F_FDS : 0;
		n = n % 16u + 1;
		for (unsigned i = 0; i < n && !f->over; i++) {
			tx_reserve(f, msg_len(len, f->tx_size));
			if (!f->resv)
				break;
			tx_commit(f, f->resv_len, flags);
		}
		break;
	case OP_PEER_SEND:
		len = get_u16(in);
		n = get_u8(in);
		flags = n & 0x10 ? RING_F_FDS : 0;
		n = n % 16u + 1;
		for (unsigned i = 0; i < n && !f->over; i++)
			peer_send(f, msg_len(len, f->rx_size), flags);
		break;
	case OP_PEER_RECV:
		peer_recv(f, get_u8(in) % 64u + 1);
		break;
	case OP_PEER_RX_WAIT:
		peer_rx_wait(f);
		break;
	case OP_PEER_TX_WAIT:
		peer_tx_wait(f, msg_len(get_u16(in), f->rx_size));
		break;
	case OP_SET_TAIL:
		mode = get_u8(in);
		v = get_u32(in);
		set_index(&f->peer->tail, mode, v, load(&f->mine->head),
			  f->ptx.tail_local);
		f->rx_clean = false;
		break;
	case OP_SET_HEAD:
		mode = get_u8(in);
		v = get_u32(in);
		set_index(&f->peer->head, mode, v, load(&f->mine->tail),
			  f->prx.head_local);
		f->tx_clean = false;
		break;
	case OP_SET_EVENT:
		mode = get_u8(in);
		v = get_u32(in);
		if (mode & 4) {
			set_index(&f->peer->space_event, mode, v,
				  load(&f->mine->head), f->ptx.tail_local);
			f->ptx_asleep = false;
		} else {
			set_index(&f->peer->data_event, mode, v,
				  load(&f->mine->tail), f->prx.head_local);
			f->prx_asleep = false;
		}
		break;
	case OP_POKE_DATA:
		poke_data(f);
		break;
	case OP_POKE_HDR:
		poke_hdr(f);
		break;
	case OP_PEER_RESYNC:
		peer_resync(f);
		break;
	case OP_COUNT:
		break;
	}
	check_ours(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz f;

	if (size < 1)
		return 0;
	memset(&f, 0, sizeof(f));
	f.in.p = data;
	f.in.n = size;

	uint8_t cfg = get_u8(&f.in);
	f.tx_size = 4096u << (cfg & 3);
	f.rx_size = 4096u << (cfg >> 2 & 3);
	uint32_t tx_start = start_index(&f.in, cfg >> 4 & 3);
	uint32_t rx_start = start_index(&f.in, cfg >> 6 & 3);

	f.mine = region_new(f.tx_size);
	f.peer = region_new(f.rx_size);
	/* Both sides agree where each ring starts, as after 2^32 - n bytes. */
	store(&f.mine->tail, tx_start);
	store(&f.peer->head, tx_start);
	store(&f.peer->tail, rx_start);
	store(&f.mine->head, rx_start);

	ring_tx_init(&f.tx, f.mine, f.peer, f.tx_size);
	ring_rx_init(&f.rx, f.mine, f.peer, f.rx_size);
	ring_tx_init(&f.ptx, f.peer, f.mine, f.rx_size);
	ring_rx_init(&f.prx, f.peer, f.mine, f.tx_size);
	f.tx_clean = f.rx_clean = true;
	check_ours(&f);

	for (unsigned i = 0; i < MAX_OPS && f.in.n && !f.over &&
			     f.calls < MAX_CALLS; i++) {
		step(&f);
		/* The inline spin-loop helpers: one load each, no checks. */
		(void)ring_rx_pending(&f.rx);
		(void)ring_tx_head_moved(&f.tx);
	}

	region_free(f.mine, f.tx_size);
	region_free(f.peer, f.rx_size);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ring.c: ring.c (protocol 2, docs/protocol.md 5 and 6.3) against a
 * hostile peer.
 *
 * Two regions live in heap memory laid out as in a channel: ours and the
 * peer's, each a 4096-byte header page followed by its ring, allocated so
 * that the ring ends exactly where the allocation does (ASan's redzone is
 * the next byte).  Our side is the code under test: a ring_tx on our ring
 * and a ring_rx on the peer's.  The peer is played by the input, a little
 * program (enum op): it may act as an honest peer, through a ring_tx /
 * ring_rx of its own on the same memory, or as a hostile one that writes
 * any bytes into its ring (records with any length, flags and sequence
 * number), its head, its wait states and event indices.
 *
 * Always checked: every payload we are handed or reserve lies inside its
 * ring, 16-aligned, no longer than ring_max_msg(); our indices stay
 * 16-aligned and never claim more than a ring of fill; results are the
 * documented ones.  Once one of our calls says -EPROTO, that direction
 * ends (the channel's error is sticky).  While the peer has been honest in
 * a direction ("clean"), that direction is checked for correctness too: no
 * -EPROTO, messages arrive in order with their length, flags and contents,
 * -EAGAIN only when there is nothing to read or no room.
 *
 * Input: one config byte (bits 0-1: our ring 4096 << n, bits 2-3: the
 * peer's, bits 4-5: where the indices start: 0, just below 2^32, just below
 * 2^63, or two 32-bit values from the input; bits 6 and 7: our producer and
 * consumer may go fenceless, 6.4), then opcodes, each a byte
 * (modulo OP_COUNT) followed by its arguments, little-endian; a truncated
 * input reads zeros.  fuzz/make-seeds.py mirrors this encoding.
 */
#include "ring.h"

#include "fuzz.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keep in sync with fuzz/make-seeds.py. */
enum op {
	OP_RX_PEEK = 0,    /* ring_rx_peek */
	OP_RX_RELEASE,     /* ring_rx_release + ring_rx_wake */
	OP_RX_ARM,         /* ring_rx_arm */
	OP_TX_SEND,        /* u16 len, u8 flags: reserve (refresh), publish */
	OP_TX_CANCEL,      /* u16 len: reserve, cancel */
	OP_TX_ARM,         /* u16 len: ring_tx_arm */
	OP_PEER_SEND,      /* u16 len, u8 flags: the honest peer produces */
	OP_PEER_RECV,      /* u8 n: the honest peer consumes up to n */
	OP_SET_HEAD,       /* u8 mode, u32 v: the peer's head, forged */
	OP_POKE,           /* u16 off, u8 n, n bytes: into the peer's ring */
	OP_POKE_REC,       /* u16 pos, u32 len, u32 flags, i8 dseq: a record */
	OP_SET_WAIT,       /* u32 tx_state, u32 rx_state, u32 space_event,
			      u32 data_event: the peer's wait words */
	OP_COUNT
};

struct in {
	const uint8_t *p;
	size_t n;
};

static uint64_t get(struct in *in, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		uint64_t b = in->n ? (in->n--, *in->p++) : 0;
		v |= b << (8 * i);
	}
	return v;
}

/* What an honest producer sent, for the checks of a clean direction. */
#define QMAX 4096
struct queue {
	uint32_t len[QMAX];
	uint32_t flags[QMAX];
	uint64_t seed[QMAX];
	unsigned first, n;
	uint64_t next_seed;
};

static void q_push(struct queue *q, uint32_t len, uint32_t flags)
{
	unsigned i = (q->first + q->n) % QMAX;

	CHECK(q->n < QMAX);
	q->len[i] = len;
	q->flags[i] = flags;
	q->seed[i] = q->next_seed++;
	q->n++;
}

/* Every other message is made of 64-bit words that read as the sequence
 * numbers of the messages that follow it: left behind in the ring, they
 * must never pass for a header. */
static uint8_t pattern(uint64_t seed, size_t i)
{
	if (seed & 1)
		return (uint8_t)(seed * 131 + i * 7 + 1);
	return (uint8_t)((seed + 2 + (i / 8) % 64) >> (8 * (i % 8)));
}

static void fill(uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pattern(seed, i);
}

/* The message @p/@len/@flags is the queue's first one. */
static void q_match(const struct queue *q, const uint8_t *p, size_t len,
		    uint32_t flags)
{
	unsigned i = q->first;

	CHECK(q->n > 0);
	CHECK(len == q->len[i] && flags == q->flags[i]);
	for (size_t k = 0; k < len; k++)
		CHECK(p[k] == pattern(q->seed[i], k));
}

static void q_pop(struct queue *q)
{
	CHECK(q->n > 0);
	q->first = (q->first + 1) % QMAX;
	q->n--;
}

struct side {
	struct region *r;
	uint32_t size;
};

/* A region of a ring of @size, its ring ending where the allocation does;
 * one of each size and @which kept for all runs (large aligned allocations
 * are slow under ASan), cleared for each. */
static struct side side_new(unsigned which, unsigned shift)
{
	static struct region *cache[2][4];
	uint32_t size = 4096u << shift;
	struct side s = { cache[which][shift], size };

	if (!s.r)
		s.r = cache[which][shift] = aligned_alloc(4096, region_size(size));
	CHECK(s.r);
	memset(s.r, 0, region_size(size));
	atomic_store(&s.r->space_event, UINT64_MAX);
	atomic_store(&s.r->data_event, UINT64_MAX);
	return s;
}

static uint64_t start_index(unsigned mode, struct in *in)
{
	switch (mode) {
	case 1: return (1ull << 32) - 4096;
	case 2: return (1ull << 63) - 4096;
	case 3: return get(in, 4) & ~(uint64_t)(RING_ALIGN - 1);
	default: return 0;
	}
}

struct session {
	struct side mine, peer;
	struct ring_tx tx, ptx;        /* ours on our ring; the peer's on its */
	struct ring_rx rx, prx;        /* ours on its ring; the peer's on ours */
	struct ring_role txr, rxr, ptxr, prxr;
	struct queue to_us, to_peer;   /* honest messages in flight */
	bool clean_rx, clean_tx;       /* the peer honest in that direction */
	bool dead_rx, dead_tx;         /* -EPROTO seen */
	bool peeked;
	uint8_t buf[1u << 15];
};

/* Everything we are handed lies inside @data's ring of @size. */
static void check_inside(const uint8_t *data, uint32_t size, const void *p,
			 size_t len, uint32_t max)
{
	const uint8_t *b = p;

	CHECK(b >= data && b + len <= data + size);
	CHECK((size_t)(b - data) % RING_ALIGN == 0);
	CHECK(len <= max);
}

static void rx_peek(struct session *s)
{
	const void *p;
	size_t len;
	uint32_t flags;
	int r;

	if (s->dead_rx)
		return;
	r = ring_rx_peek(&s->rx, &p, &len, &flags);
	CHECK(r == 0 || r == -EAGAIN || r == -EPROTO);
	if (r == -EPROTO) {
		CHECK(!s->clean_rx);
		s->dead_rx = true;
		return;
	}
	if (r == -EAGAIN) {
		CHECK(!s->peeked);
		if (s->clean_rx)
			CHECK(s->to_us.n == 0);
		return;
	}
	check_inside(region_cdata(s->peer.r), s->peer.size, p, len,
		     ring_max_msg(s->peer.size));
	CHECK((flags & ~RING_F_FDS) == 0);
	memcpy(s->buf, p, len); /* every byte readable */
	if (s->clean_rx)
		q_match(&s->to_us, s->buf, len, flags);
	s->peeked = true;
}

static void rx_release(struct session *s)
{
	uint64_t old, new_, h0 = s->rx.head;

	if (s->dead_rx)
		return;
	int r = ring_rx_release(&s->rx, &old, &new_);
	if (!s->peeked) {
		CHECK(r == -EINVAL);
		return;
	}
	CHECK(r == 0 && old == h0 && new_ == s->rx.head);
	CHECK(new_ > old && new_ - old <= s->peer.size);
	CHECK(new_ % RING_ALIGN == 0);
	CHECK(atomic_load(&s->mine.r->head) == new_);
	(void)ring_rx_wake(&s->rxr, s->peer.r, old, new_);
	s->peeked = false;
	if (s->clean_rx)
		q_pop(&s->to_us);
}

static void rx_arm(struct session *s)
{
	if (s->dead_rx)
		return;
	int r = ring_rx_arm(&s->rx, s->peer.r);
	CHECK(r == 0 || r == -EAGAIN || r == RING_BARRIER);
	CHECK(atomic_load(&s->mine.r->data_event) == s->rx.head);
	if (r == -EAGAIN && s->clean_rx && !s->peeked)
		CHECK(s->to_us.n == 0);
}

/* Our reserve: the known room, then the peer's head. */
static int tx_reserve(struct session *s, size_t len, void **p)
{
	int r = ring_tx_reserve(&s->tx, len, p);

	if (r == -EAGAIN) {
		r = ring_tx_refresh_head(&s->tx, s->peer.r);
		if (r == 0)
			r = ring_tx_reserve(&s->tx, len, p);
	}
	CHECK(r == 0 || r == -EAGAIN || r == -EMSGSIZE || r == -EPROTO);
	CHECK(s->tx.head % RING_ALIGN == 0 && s->tx.tail % RING_ALIGN == 0);
	CHECK(s->tx.head <= s->tx.tail && s->tx.tail - s->tx.head <= s->tx.size);
	if (r == -EPROTO) {
		CHECK(!s->clean_tx);
		s->dead_tx = true;
	} else if (r == -EMSGSIZE) {
		CHECK(len > s->tx.max_msg);
	} else if (r == 0) {
		check_inside(region_data(s->mine.r), s->mine.size, *p, len,
			     s->tx.max_msg);
	} else if (s->clean_tx) {
		/* No room: the peer has not consumed enough. */
		CHECK(s->tx.size - (s->tx.tail - s->tx.head) <
		      ring_tx_need(&s->tx, len));
	}
	return r;
}

static void tx_send(struct session *s, size_t len, uint32_t flags, bool cancel)
{
	uint64_t old, new_;
	void *p;

	if (s->dead_tx || tx_reserve(s, len, &p) != 0)
		return;
	if (cancel) {
		ring_tx_cancel(&s->tx);
		return;
	}
	fill(p, len, s->to_peer.next_seed);
	CHECK(ring_tx_publish(&s->tx, len, flags, s->tx.head, &old,
			      &new_) == 0);
	CHECK(new_ > old && new_ - old <= s->tx.size && new_ == s->tx.tail);
	q_push(&s->to_peer, (uint32_t)len, flags);
	(void)ring_tx_wake(&s->txr, s->peer.r, old, new_);
}

static void tx_arm(struct session *s, size_t len)
{
	if (s->dead_tx || len > s->tx.max_msg)
		return;
	int r = ring_tx_arm(&s->tx, s->peer.r, len);
	CHECK(r == 0 || r == -EAGAIN || r == RING_BARRIER || r == -EPROTO);
	if (r == -EPROTO) {
		CHECK(!s->clean_tx);
		s->dead_tx = true;
	}
}

/* The honest peer produces into its ring (its room from our head, which
 * is honest). */
static void peer_send(struct session *s, size_t len, uint32_t flags)
{
	uint64_t old, new_;
	void *p;
	int r = ring_tx_reserve(&s->ptx, len, &p);

	if (r == -EAGAIN) {
		CHECK(ring_tx_refresh_head(&s->ptx, s->mine.r) == 0);
		r = ring_tx_reserve(&s->ptx, len, &p);
	}
	if (r != 0)
		return;
	fill(p, len, s->to_us.next_seed);
	CHECK(ring_tx_publish(&s->ptx, len, flags, s->ptx.head, &old,
			      &new_) == 0);
	q_push(&s->to_us, (uint32_t)len, flags);
	(void)ring_tx_wake(&s->ptxr, s->mine.r, old, new_);
}

/* The honest peer consumes what we sent: exactly that, in order. */
static void peer_recv(struct session *s, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const void *p;
		size_t len;
		uint32_t flags;
		uint64_t old, new_;
		int r = ring_rx_peek(&s->prx, &p, &len, &flags);

		if (r == -EAGAIN) {
			CHECK(s->to_peer.n == 0);
			return;
		}
		CHECK(r == 0);
		q_match(&s->to_peer, p, len, flags);
		q_pop(&s->to_peer);
		CHECK(ring_rx_release(&s->prx, &old, &new_) == 0);
		(void)ring_rx_wake(&s->prxr, s->mine.r, old, new_);
	}
}

static void run(struct session *s, struct in *in)
{
	while (in->n) {
		unsigned op = (unsigned)get(in, 1) % OP_COUNT;

		switch (op) {
		case OP_RX_PEEK:
			rx_peek(s);
			break;
		case OP_RX_RELEASE:
			rx_release(s);
			break;
		case OP_RX_ARM:
			rx_arm(s);
			break;
		case OP_TX_SEND: {
			size_t len = get(in, 2) % (s->tx.max_msg + 64);
			uint32_t flags = (uint32_t)get(in, 1) & RING_F_FDS;
			tx_send(s, len, flags, false);
			break;
		}
		case OP_TX_CANCEL:
			tx_send(s, get(in, 2) % (s->tx.max_msg + 64), 0, true);
			break;
		case OP_TX_ARM:
			tx_arm(s, get(in, 2) % (s->tx.max_msg + 1));
			break;
		case OP_PEER_SEND: {
			size_t len = get(in, 2) % (ring_max_msg(s->peer.size) + 1);
			uint32_t flags = (uint32_t)get(in, 1) & RING_F_FDS;
			if (s->clean_rx)
				peer_send(s, len, flags);
			break;
		}
		case OP_PEER_RECV:
			if (s->clean_tx && !s->dead_tx)
				peer_recv(s, (unsigned)get(in, 1));
			else
				(void)get(in, 1);
			break;
		case OP_SET_HEAD: {
			/* Anything: absolute, or near our tail. */
			unsigned mode = (unsigned)get(in, 1);
			uint64_t v = get(in, 4);
			uint64_t h = mode & 1 ? s->tx.tail + (int32_t)v : v;
			atomic_store(&s->peer.r->head, h);
			s->clean_tx = false;
			break;
		}
		case OP_POKE: {
			uint32_t off = (uint32_t)get(in, 2) % s->peer.size;
			unsigned n = (unsigned)get(in, 1);
			uint8_t *d = region_data(s->peer.r);
			for (unsigned k = 0; k < n; k++)
				d[(off + k) % s->peer.size] = (uint8_t)get(in, 1);
			s->clean_rx = false;
			break;
		}
		case OP_POKE_REC: {
			uint32_t pos = ((uint32_t)get(in, 2) % s->peer.size) &
				       ~(RING_ALIGN - 1);
			uint32_t hdr[2] = { (uint32_t)get(in, 4), (uint32_t)get(in, 4) };
			uint64_t seq = s->rx.seq + (int8_t)get(in, 1);
			uint8_t *d = region_data(s->peer.r) + pos;
			memcpy(d, hdr, sizeof(hdr));
			memcpy(d + 8, &seq, sizeof(seq));
			s->clean_rx = false;
			break;
		}
		case OP_SET_WAIT:
			/* Only wake-up decisions depend on these. */
			atomic_store(&s->peer.r->tx_state, (uint32_t)get(in, 4));
			atomic_store(&s->peer.r->rx_state, (uint32_t)get(in, 4));
			atomic_store(&s->peer.r->space_event, get(in, 4));
			atomic_store(&s->peer.r->data_event, get(in, 4));
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	unsigned cfg = (unsigned)get(&in, 1);
	static struct session s;

	memset(&s, 0, sizeof(s));
	s.mine = side_new(0, cfg & 3);
	s.peer = side_new(1, (cfg >> 2) & 3);
	/* Where the indices start: our tail and the peer's head of it; the
	 * peer's tail and our head of it. */
	uint64_t t0 = start_index((cfg >> 4) & 3, &in);
	uint64_t p0 = start_index((cfg >> 4) & 3, &in);
	atomic_store(&s.mine.r->tail, t0);
	atomic_store(&s.peer.r->head, t0);
	atomic_store(&s.peer.r->tail, p0);
	atomic_store(&s.mine.r->head, p0);
	ring_tx_init(&s.tx, s.mine.r, s.mine.size);
	ring_rx_init(&s.rx, s.mine.r, region_cdata(s.peer.r), s.peer.size);
	ring_tx_init(&s.ptx, s.peer.r, s.peer.size);
	ring_rx_init(&s.prx, s.peer.r, region_cdata(s.mine.r), s.mine.size);
	ring_role_init(&s.txr, &s.mine.r->tx_state, cfg & 0x40);
	ring_role_init(&s.rxr, &s.mine.r->rx_state, cfg & 0x80);
	ring_role_init(&s.ptxr, &s.peer.r->tx_state, false);
	ring_role_init(&s.prxr, &s.peer.r->rx_state, false);
	s.clean_rx = s.clean_tx = true;
	run(&s, &in);
	return 0;
}

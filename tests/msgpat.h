/* SPDX-License-Identifier: MIT */
/*
 * msgpat.h: verifiable message streams.  Message number @seq has a length
 * and contents that are pure functions of @seq, so the receiver, knowing
 * which number comes next, detects a lost, duplicated, reordered, resized
 * or corrupted message.  The first 8 bytes (when there are 8) are @seq, so
 * a mismatch report can say what arrived instead.
 *
 * Ghost bait (PAT_RING, struct pat_gen below): about half the messages
 * of a stream carry, after their number, the sequence numbers of records
 * that will follow them in the ring, each where a consumer will look for
 * that very record one lap later.  A producer that left the last lap's
 * payload where the next header goes (docs/protocol.md 5.2 step 5) then
 * shows a consumer waiting there the number it expects: a ghost, which
 * the receiver's check catches.
 */
#ifndef EVSHM_TESTS_MSGPAT_H
#define EVSHM_TESTS_MSGPAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline uint64_t pat_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Or'ed into @max: every message is exactly max bytes long. */
#define PAT_FIXED ((size_t)1 << 62)
/* Or'ed into @max: the stream is ghost bait for a ring of @size bytes (a
 * power of 2) that carries it alone, message 0 first at index 0 with
 * sequence number 1 (a fresh channel direction or topic).  Only struct
 * pat_gen fills and checks such streams. */
#define PAT_RING(size) ((size_t)__builtin_ctzll(size) << 56)
#define PAT_RING_MASK ((size_t)63 << 56)

static inline size_t pat_max(size_t max)
{
	return max & ~(PAT_FIXED | PAT_RING_MASK);
}

/* Sizes from 0 to @max, log-uniform: as many messages under 64 bytes as
 * between 32 and 64 KiB, so that small and large ones both get exercised
 * in volume.  @max 0 means "always 0". */
static inline size_t pat_len(uint64_t seq, size_t max)
{
	if (max & PAT_FIXED)
		return pat_max(max);
	uint64_t r = pat_mix(seq ^ 0x5bd1e995u);
	unsigned bits = 0;

	max = pat_max(max);
	while (bits < 63 && ((size_t)1 << bits) <= max)
		bits++;
	size_t cap = (size_t)1 << (r % (bits + 1));
	size_t len = (size_t)((r >> 8) % cap);
	return len > max ? max : len;
}

static inline void pat_fill(uint8_t *p, size_t len, uint64_t seq)
{
	size_t i = 0;
	uint64_t w = seq;
	for (; i + 8 <= len; i += 8) {
		memcpy(p + i, &w, 8);
		w = pat_mix(seq + i);
	}
	if (i < len)
		memcpy(p + i, &w, len - i);
}

/* True if @p/@len is message @seq of a stream whose sizes go up to @max. */
static inline bool pat_check(const uint8_t *p, size_t len, uint64_t seq,
			     size_t max)
{
	if (len != pat_len(seq, max))
		return false;
	size_t i = 0;
	uint64_t w = seq;
	for (; i + 8 <= len; i += 8) {
		if (memcmp(p + i, &w, 8))
			return false;
		w = pat_mix(seq + i);
	}
	return i == len || !memcmp(p + i, &w, len - i);
}

/* The sequence number a message claims (0 if shorter than 8 bytes). */
static inline uint64_t pat_seq(const uint8_t *p, size_t len)
{
	uint64_t s = 0;
	if (len >= 8)
		memcpy(&s, p, 8);
	return s;
}

/* --- ghost bait ------------------------------------------------------------ */

/* Fills and checks one PAT_RING stream, message numbers never decreasing
 * (a receiver that skips some, on a latest topic, just moves on).  Without
 * PAT_RING in @max it is pat_fill and pat_check. */
struct pat_gen {
	size_t max;
	uint64_t ring;   /* 0: no bait */
	uint64_t *start; /* start[m & (cap - 1)]: where the consumer expecting
			    message m looks (its PAD, or its record) */
	uint64_t cap;    /* a power of 2 */
	uint64_t lo, hi; /* messages lo..hi-1 are laid out */
	uint64_t end;    /* the index after message hi-1 */
};

#define PAT_REC(len) (((uint64_t)(len) + 16 + 15) & ~(uint64_t)15)

static inline bool pat_gen_init(struct pat_gen *g, size_t max)
{
	unsigned bits = (unsigned)((max & PAT_RING_MASK) >> 56);

	memset(g, 0, sizeof(*g));
	g->max = max;
	if (!bits)
		return true;
	g->ring = (uint64_t)1 << bits;
	/* Records are 16 bytes at least; the window spans a payload (half
	 * a ring at most) and one ring beyond it. */
	g->cap = g->ring / 4; /* a power of 2, over ring / 8 + 2 */
	g->start = malloc(g->cap * sizeof(*g->start));
	return g->start != NULL;
}

static inline void pat_gen_free(struct pat_gen *g)
{
	free(g->start);
	g->start = NULL;
}

/* Bait: message @seq carries it (about half the messages; word 0 is
 * still the number, and messages under 16 bytes have no room for it). */
static inline bool pat_bait(const struct pat_gen *g, uint64_t seq)
{
	return g->ring && (pat_mix(seq ^ 0x6b43a9b5u) & 1);
}

/* Lay out the next message the way the producer will (5.2 step 1). */
static inline void pat_gen_place(struct pat_gen *g)
{
	uint64_t r = PAT_REC(pat_len(g->hi, g->max));
	uint64_t to_end = g->ring - (g->end & (g->ring - 1));

	g->start[g->hi & (g->cap - 1)] = g->end;
	g->end += r > to_end ? to_end + r : r;
	g->hi++;
}

/* Where message @seq's record (after its PAD, if any) starts. */
static inline uint64_t pat_gen_rec(const struct pat_gen *g, uint64_t seq)
{
	uint64_t s = g->start[seq & (g->cap - 1)];
	uint64_t r = PAT_REC(pat_len(seq, g->max));

	return r > g->ring - (s & (g->ring - 1)) ? (s | (g->ring - 1)) + 1 : s;
}

/* The first message that starts, a lap later, at or after the header
 * that payload at index @at (a multiple of 16) can pass for.  From @m on:
 * the search carries over from one call to the next. */
static inline uint64_t pat_next_start(struct pat_gen *g, uint64_t at,
				      uint64_t m)
{
	for (;; m++) {
		while (m >= g->hi)
			pat_gen_place(g);
		if (g->start[m & (g->cap - 1)] >= at + g->ring)
			return m;
	}
}

/* Bytes @i..@end of a message are @v, word after word: written to @out,
 * or (@out NULL) compared with @in. */
static inline bool pat_run(uint8_t *out, const uint8_t *in, size_t i,
			   size_t end, uint64_t v)
{
	uint64_t diff = 0, x;

	if (out) {
		for (; i + 8 <= end; i += 8)
			memcpy(out + i, &v, 8);
		memcpy(out + i, &v, end - i);
		return true;
	}
	for (; i + 8 <= end; i += 8) {
		memcpy(&x, in + i, 8);
		diff |= x ^ v;
	}
	return !diff && !memcmp(in + i, &v, end - i);
}

/* Make message @seq the oldest laid out (false: @seq went backwards). */
static inline bool pat_gen_seek(struct pat_gen *g, uint64_t seq)
{
	/* Backwards, or a jump no test makes (a garbled number). */
	if (seq < g->lo || seq - g->lo > ((uint64_t)1 << 28))
		return false;
	while (g->hi <= seq)
		pat_gen_place(g);
	g->lo = seq;
	return true;
}

/* Message @seq's bytes: written to @out, or (@out NULL) compared with
 * @in, @len of them; false on a difference. */
static inline bool pat_gen_do(struct pat_gen *g, uint8_t *out,
			      const uint8_t *in, size_t len, uint64_t seq)
{
	if (!pat_bait(g, seq)) {
		if (!out)
			return pat_check(in, len, seq, g->max);
		pat_fill(out, len, seq);
		return true;
	}
	if (len != pat_len(seq, g->max) || !pat_gen_seek(g, seq))
		return false;
	/* Word 0: the number; then runs of words that each read the
	 * number of the record a consumer will look for there, a lap
	 * later (the first after, where none starts exactly there): 16
	 * bytes from a payload 16-aligned are a header's len and flags,
	 * then its seq. */
	uint64_t at = pat_gen_rec(g, seq) + 16, m = seq;
	size_t i = len < 8 ? len : 8;
	if (!pat_run(out, in, 0, i, seq))
		return false;
	while (i < len) {
		m = pat_next_start(g, at + (i & ~(size_t)15), m + 1);
		uint64_t to = g->start[m & (g->cap - 1)] - g->ring - at + 16;
		size_t end = to < len ? (size_t)to : len;
		if (!pat_run(out, in, i, end, m + 1)) /* ring numbers from 1 */
			return false;
		i = end;
	}
	return true;
}

static inline void pat_gen_fill(struct pat_gen *g, uint8_t *p, size_t len,
				uint64_t seq)
{
	(void)pat_gen_do(g, p, NULL, len, seq);
}

/* True if @p/@len is message @seq. */
static inline bool pat_gen_check(struct pat_gen *g, const uint8_t *p,
				 size_t len, uint64_t seq)
{
	return pat_gen_do(g, NULL, p, len, seq);
}

#endif

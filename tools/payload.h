/* SPDX-License-Identifier: MIT */
/*
 * payload.h: the messages of `evshm bench`, the same for every transport.
 * The sender generates each message (pl_fill) and the receiver verifies it
 * (pl_check), so every transport pays the same work per message:
 *
 *   word 0   the sequence number (bit 63, PL_END, marks the last message
 *            of a stream);
 *   word 1   a checksum over word 0 and words 2.. (64-bit multiply-xor in
 *            four independent lanes, then a final mix);
 *   word 2.. a sequence derived from the sequence number, or in word 2 a
 *            send time (pl_stamp) for the tests that measure one-way
 *            latency.
 */
#ifndef EVSHM_TOOL_PAYLOAD_H
#define EVSHM_TOOL_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#define PL_END (1ull << 63)
#define PL_MUL 0x9e3779b97f4a7c15ull
#define PL_STEP 0xd1b54a32d192ed03ull

static inline uint64_t pl_mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dull;
	return x ^ (x >> 33);
}

static inline uint64_t pl_final(const uint64_t h[4], uint64_t seq, size_t n)
{
	return pl_mix(h[0] ^ ((h[1] << 16) | (h[1] >> 48)) ^
		      ((h[2] << 32) | (h[2] >> 32)) ^
		      ((h[3] << 48) | (h[3] >> 16)) ^ (seq * PL_STEP) ^ n);
}

/* Write message @seq of @n >= 2 words at @w (8-byte aligned). */
static inline void pl_fill(uint64_t *restrict w, size_t n, uint64_t seq)
{
	uint64_t h[4] = { 1, 2, 3, 4 };
	uint64_t x = pl_mix(seq);
	uint64_t *restrict b = w + 2;
	size_t m = n - 2, j = 0;

	for (; j + 4 <= m; j += 4) {
		uint64_t v0 = x + j * PL_STEP, v1 = v0 + PL_STEP;
		uint64_t v2 = v1 + PL_STEP, v3 = v2 + PL_STEP;
		b[j] = v0;
		b[j + 1] = v1;
		b[j + 2] = v2;
		b[j + 3] = v3;
		h[0] = (h[0] ^ v0) * PL_MUL;
		h[1] = (h[1] ^ v1) * PL_MUL;
		h[2] = (h[2] ^ v2) * PL_MUL;
		h[3] = (h[3] ^ v3) * PL_MUL;
	}
	for (; j < m; j++) {
		uint64_t v = x + j * PL_STEP;
		b[j] = v;
		h[j & 3] = (h[j & 3] ^ v) * PL_MUL;
	}
	w[0] = seq;
	w[1] = pl_final(h, seq, n);
}

/* The checksum a message of @n words at @w should carry. */
static inline uint64_t pl_sum(const uint64_t *restrict w, size_t n)
{
	uint64_t h[4] = { 1, 2, 3, 4 };
	const uint64_t *restrict b = w + 2;
	size_t m = n - 2, j = 0;

	for (; j + 4 <= m; j += 4) {
		h[0] = (h[0] ^ b[j]) * PL_MUL;
		h[1] = (h[1] ^ b[j + 1]) * PL_MUL;
		h[2] = (h[2] ^ b[j + 2]) * PL_MUL;
		h[3] = (h[3] ^ b[j + 3]) * PL_MUL;
	}
	for (; j < m; j++)
		h[j & 3] = (h[j & 3] ^ b[j]) * PL_MUL;
	return pl_final(h, w[0], n);
}

enum pl_verdict { PL_OK, PL_BAD_LEN, PL_BAD_SUM };

/* Check a received message of @len bytes; *seq gets word 0. */
static inline enum pl_verdict pl_check(const void *p, size_t len,
				       size_t expect, uint64_t *seq)
{
	const uint64_t *w = p;

	if (len != expect)
		return PL_BAD_LEN;
	*seq = w[0];
	return pl_sum(w, len / 8) == w[1] ? PL_OK : PL_BAD_SUM;
}

/* Put @t (a sys_now_ns() time) in word 2 of the message of @n >= 3 words
 * at @w, and checksum it again. */
static inline void pl_stamp(uint64_t *restrict w, size_t n, uint64_t t)
{
	w[2] = t;
	w[1] = pl_sum(w, n);
}

#endif

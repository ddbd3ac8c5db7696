/* SPDX-License-Identifier: MIT */
/*
 * msgpat.h: verifiable message streams.  Message number @seq has a length
 * and contents that are pure functions of @seq, so the receiver, knowing
 * which number comes next, detects a lost, duplicated, reordered, resized
 * or corrupted message.  The first 8 bytes (when there are 8) are @seq, so
 * a mismatch report can say what arrived instead.
 */
#ifndef EVSHM_TESTS_MSGPAT_H
#define EVSHM_TESTS_MSGPAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

static inline size_t pat_max(size_t max)
{
	return max & ~PAT_FIXED;
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

#endif

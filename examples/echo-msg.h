/* SPDX-License-Identifier: MIT */
/*
 * echo-msg.h: the messages echo-client sends.  Message number i is a pure
 * function of i (its first 8 bytes are i, its length is 8..max, every other
 * byte follows from i and its position), so whoever knows which number
 * comes next can tell a lost, duplicated, reordered or damaged message.
 */
#ifndef EVSHM_EXAMPLES_ECHO_MSG_H
#define EVSHM_EXAMPLES_ECHO_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Smallest and default largest message. */
#define ECHO_MSG_MIN 8u
#define ECHO_MSG_MAX 512u

static inline uint64_t echo_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull; /* splitmix64 */
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Length of message @i when messages are at most @max (>= 8) bytes. */
static inline size_t echo_msg_len(uint64_t i, size_t max)
{
	return ECHO_MSG_MIN + (size_t)(echo_mix(i) % (max - ECHO_MSG_MIN + 1));
}

static inline uint8_t echo_msg_byte(uint64_t key, size_t k)
{
	return (uint8_t)((key >> (k % 8 * 8)) ^ k);
}

static inline void echo_msg_fill(uint8_t *p, size_t len, uint64_t i)
{
	uint64_t key = echo_mix(~i);

	memcpy(p, &i, sizeof(i));
	for (size_t k = sizeof(i); k < len; k++)
		p[k] = echo_msg_byte(key, k);
}

static inline bool echo_msg_check(const uint8_t *p, size_t len, uint64_t i,
				  size_t max)
{
	uint64_t key = echo_mix(~i);

	if (len != echo_msg_len(i, max) || memcmp(p, &i, sizeof(i)) != 0)
		return false;
	for (size_t k = sizeof(i); k < len; k++)
		if (p[k] != echo_msg_byte(key, k))
			return false;
	return true;
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * stream.h: verified message streams over an evshm channel, shared by the
 * channel tests and their peer executables.  Functions return 0 or a
 * negative errno; a message that fails verification is -EBADMSG (and a
 * line on stderr says which one and how).
 */
#ifndef EVSHM_TESTS_STREAM_H
#define EVSHM_TESTS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evshm.h"

enum stream_mode {
	STREAM_COPY,     /* evshm_send / evshm_recv */
	STREAM_ZEROCOPY, /* reserve+commit / peek+release */
	STREAM_MIXED,    /* alternate, by message number */
};

/* Send messages 0..n-1 (n = UINT64_MAX: until an error), sizes up to
 * @max (msgpat.h: with PAT_FIXED, PAT_RING).  A PAT_RING stream must be
 * the first and only one on its ring, and its receiver must be given the
 * same @max.  @mode picks the API.  *sent (may be
 * NULL) gets how many were committed. */
int stream_send(struct evshm_chan *c, uint64_t n, size_t max, enum stream_mode mode,
		uint64_t *sent);

/* Receive and verify messages first..first+n-1 (n = UINT64_MAX: until an error).
 * @mode picks the API.  *got (may be NULL) gets how many arrived
 * intact.  @timeout_ms applies to each message. */
int stream_recv(struct evshm_chan *c, uint64_t first, uint64_t n, size_t max, enum stream_mode mode,
		int timeout_ms, uint64_t *got);

/* Both directions at once: a thread sends n while the caller receives n. */
int stream_both(struct evshm_chan *c, uint64_t n, size_t max);

#endif

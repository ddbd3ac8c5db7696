/* SPDX-License-Identifier: MIT */
#include "stream.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "msgpat.h"

static bool zerocopy(enum stream_mode mode, uint64_t seq)
{
	return mode == STREAM_ZEROCOPY || (mode == STREAM_MIXED && (seq & 1));
}

int stream_send(struct evshm_chan *c, uint64_t n, size_t max, enum stream_mode mode,
		uint64_t *sent)
{
	uint8_t *buf = malloc(pat_max(max) ? pat_max(max) : 1);
	uint64_t i;
	int res = 0;

	if (!buf)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		size_t len = pat_len(i, max);
		if (zerocopy(mode, i)) {
			void *p;
			res = evshm_reserve(c, len, &p, -1);
			if (res < 0)
				break;
			pat_fill(p, len, i);
			res = evshm_commit(c, len);
		} else {
			pat_fill(buf, len, i);
			res = evshm_send(c, buf, len, -1);
		}
		if (res < 0)
			break;
	}
	if (sent)
		*sent = i;
	free(buf);
	return res;
}

static int bad(uint64_t seq, const uint8_t *p, size_t len, size_t max)
{
	fprintf(stderr,
		"stream: message %" PRIu64 " is wrong: %zu bytes (expected %zu), "
		"claims to be message %" PRIu64 "\n",
		seq, len, pat_len(seq, max), pat_seq(p, len));
	return -EBADMSG;
}

int stream_recv(struct evshm_chan *c, uint64_t first, uint64_t n, size_t max, enum stream_mode mode,
		int timeout_ms, uint64_t *got)
{
	uint8_t *buf = malloc(pat_max(max) ? pat_max(max) : 1);
	uint64_t i;
	int res = 0;

	if (!buf)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		const void *p;
		size_t len;
		bool zc = zerocopy(mode, i);
		if (zc) {
			res = evshm_peek(c, &p, &len, timeout_ms);
			if (res < 0)
				break;
		} else {
			res = evshm_recv(c, buf, pat_max(max), timeout_ms);
			if (res < 0)
				break;
			p = buf;
			len = (size_t)res;
		}
		if (!pat_check(p, len, first + i, max)) {
			res = bad(first + i, p, len, max);
			break;
		}
		if (zc && (res = evshm_release(c)) < 0)
			break;
	}
	if (got)
		*got = i;
	free(buf);
	return res < 0 ? res : 0;
}

struct sender {
	struct evshm_chan *c;
	uint64_t n;
	size_t max;
	int res;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	s->res = stream_send(s->c, s->n, s->max, STREAM_MIXED, NULL);
	return NULL;
}

int stream_both(struct evshm_chan *c, uint64_t n, size_t max)
{
	struct sender s = { c, n, max, 0 };
	pthread_t t;
	int res = pthread_create(&t, NULL, sender_main, &s);
	if (res)
		return -res;
	res = stream_recv(c, 0, n, max, STREAM_MIXED, -1, NULL);
	pthread_join(t, NULL);
	if (res == 0)
		res = s.res;
	return res;
}

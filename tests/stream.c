/* SPDX-License-Identifier: MIT */
#include "stream.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "msgpat.h"

static bool zerocopy(enum stream_mode mode, uint64_t seq)
{
	return mode == STREAM_ZEROCOPY || (mode == STREAM_MIXED && (seq & 1));
}

/* Reserve @len bytes at *@p (@p not NULL) or send @buf, waiting for room
 * for ever; with @stop, in 100 ms slices until it rises (-ECANCELED): a
 * receiver of ours that failed must not leave us blocked on a ring its
 * peer, who waits for us, no longer empties. */
static int sender_wait(struct evshm_chan *c, uint8_t *buf, size_t len,
		       void **p, const atomic_bool *stop)
{
	int res;
	do {
		res = p ? evshm_reserve(c, len, p, stop ? 100 : -1)
			: evshm_send(c, buf, len, stop ? 100 : -1);
	} while (res == -ETIMEDOUT && stop && !atomic_load(stop));
	return res == -ETIMEDOUT && stop ? -ECANCELED : res;
}

static int send_stream(struct evshm_chan *c, uint64_t n, size_t max,
		       enum stream_mode mode, uint64_t *sent,
		       const atomic_bool *stop)
{
	uint8_t *buf = malloc(pat_max(max) ? pat_max(max) : 1);
	struct pat_gen g;
	uint64_t i;
	int res = 0;

	if (!pat_gen_init(&g, max) || !buf) {
		pat_gen_free(&g);
		free(buf);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		size_t len = pat_len(i, max);
		if (zerocopy(mode, i)) {
			void *p;
			res = sender_wait(c, NULL, len, &p, stop);
			if (res < 0)
				break;
			pat_gen_fill(&g, p, len, i);
			res = evshm_commit(c, len);
		} else {
			pat_gen_fill(&g, buf, len, i);
			res = sender_wait(c, buf, len, NULL, stop);
		}
		if (res < 0)
			break;
	}
	if (sent)
		*sent = i;
	pat_gen_free(&g);
	free(buf);
	return res;
}

int stream_send(struct evshm_chan *c, uint64_t n, size_t max, enum stream_mode mode,
		uint64_t *sent)
{
	return send_stream(c, n, max, mode, sent, NULL);
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
	struct pat_gen g;
	uint64_t i;
	int res = 0;

	if (!pat_gen_init(&g, max) || !buf) {
		pat_gen_free(&g);
		free(buf);
		return -ENOMEM;
	}
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
		if (!pat_gen_check(&g, p, len, first + i)) {
			res = bad(first + i, p, len, max);
			break;
		}
		if (zc && (res = evshm_release(c)) < 0)
			break;
	}
	if (got)
		*got = i;
	pat_gen_free(&g);
	free(buf);
	return res < 0 ? res : 0;
}

struct sender {
	struct evshm_chan *c;
	uint64_t n;
	size_t max;
	int res;
	atomic_bool stop; /* the receiver failed */
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	s->res = send_stream(s->c, s->n, s->max, STREAM_MIXED, NULL, &s->stop);
	return NULL;
}

int stream_both(struct evshm_chan *c, uint64_t n, size_t max)
{
	struct sender s = { .c = c, .n = n, .max = max };
	pthread_t t;
	atomic_init(&s.stop, false);
	int res = pthread_create(&t, NULL, sender_main, &s);
	if (res)
		return -res;
	res = stream_recv(c, 0, n, max, STREAM_MIXED, -1, NULL);
	if (res < 0)
		atomic_store(&s.stop, true);
	pthread_join(t, NULL);
	if (res == 0)
		res = s.res;
	return res;
}

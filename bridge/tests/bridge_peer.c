/* SPDX-License-Identifier: MIT */
/*
 * bridge-peer: the applications at both ends of a bridged channel in the
 * bridge tests.  Only the public evshm API.
 *
 *   bridge-peer send NAME [options]   connect, send --count numbered
 *                                     messages, wait for the count back
 *   bridge-peer recv NAME [options]   listen, take one client, check every
 *                                     message, send the count back
 *   bridge-peer gen BYTES             a verifiable byte stream to stdout
 *   bridge-peer check BYTES           verify such a stream on stdin
 *
 * Message i has the contents tests/msgpat.h gives it; message 0 is empty
 * and message 1 has the largest size (--max), so both edges are always
 * crossed; the others are log-uniform in 0..--max (or all --max with
 * --fixed).  Options:
 *   --count N        messages (default 1000)
 *   --max BYTES      largest message (default 65536)
 *   --fixed          every message (but the first) is --max bytes
 *   --ring BYTES     send: ring size toward the receiver (default 1 MiB)
 *   --seconds S      give up after S seconds (default 120): exit 3
 *   --status FILE    write "COUNT" there (atomically) every 20 ms
 *   --fds-at K       send: attach a descriptor to message K
 *   --pause-after K, --pause-ms MS   recv: stop reading for MS after K
 *   --delay-us US    recv: sleep US after each message
 * Exit: 0 all messages checked and confirmed; 1 the channel failed (the
 * message says how, after how many); 2 usage; 3 time limit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <evshm.h>

#include "msgpat.h"

struct peer {
	const char *mode, *name, *status;
	uint64_t count, max, ring, fds_at, pause_after, pause_ms, delay_us;
	bool fixed;
	double seconds;
	uint64_t deadline_ns, status_ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Milliseconds left before the deadline (at least 1), or 0 if past. */
static int left_ms(const struct peer *p)
{
	uint64_t now = now_ns();

	if (now >= p->deadline_ns)
		return 0;
	return (int)((p->deadline_ns - now) / 1000000u) + 1;
}

static size_t msg_len(const struct peer *p, uint64_t i)
{
	if (i == 0)
		return 0;
	if (i == 1 || p->fixed)
		return p->max;
	return pat_len(i, p->max);
}

static void status(struct peer *p, uint64_t n, bool force)
{
	char tmp[4096];
	FILE *f;
	uint64_t now = now_ns();

	if (!p->status || (!force && now < p->status_ns))
		return;
	p->status_ns = now + 20000000u;
	snprintf(tmp, sizeof(tmp), "%s.tmp", p->status);
	f = fopen(tmp, "we");
	if (!f)
		return;
	fprintf(f, "%" PRIu64 "\n", n);
	if (fclose(f) == 0)
		rename(tmp, p->status);
}

static int fail(const struct peer *p, uint64_t n, int res)
{
	fprintf(stderr, "bridge-peer %s: after %" PRIu64 " messages: %s\n",
		p->mode, n, res == -ETIMEDOUT ? "time limit reached"
					      : evshm_strerror(res));
	return res == -ETIMEDOUT ? 3 : 1;
}

static int do_send(struct peer *p)
{
	struct evshm_opts o = { .ring_size = (uint32_t)p->ring };
	struct evshm_chan *c = NULL;
	uint8_t *buf = malloc(p->max ? p->max : 1);
	uint64_t n = 0, ack = 0;
	int res = -ENOENT;

	if (!buf)
		return 1;
	/* The import may not listen yet. */
	while (left_ms(p)) {
		res = evshm_connect(&c, p->name, &o, left_ms(p));
		if (res != -ENOENT && res != -ECONNREFUSED)
			break;
		usleep(10000);
	}
	if (res < 0)
		goto out;
	for (; n < p->count; n++) {
		size_t len = msg_len(p, n);

		pat_fill(buf, len, n);
		if (!left_ms(p)) {
			res = -ETIMEDOUT;
			goto out;
		}
		if (p->fds_at && n == p->fds_at) {
			int fd = STDERR_FILENO;
			res = evshm_send_fds(c, buf, len, &fd, 1, left_ms(p));
		} else {
			res = evshm_send(c, buf, len, left_ms(p));
		}
		if (res < 0)
			goto out;
		status(p, n + 1, false);
	}
	status(p, n, true);
	res = evshm_recv(c, &ack, sizeof(ack), left_ms(p) ? left_ms(p) : 1);
	if (res == (int)sizeof(ack) && ack == p->count)
		res = 0;
	else if (res >= 0)
		res = -EBADMSG;
out:
	evshm_close(c);
	free(buf);
	return res < 0 ? fail(p, n, res) : 0;
}

static int do_recv(struct peer *p)
{
	struct evshm_opts o = { .ring_size = EVSHM_RING_MIN,
				.max_ring_size = EVSHM_RING_MAX };
	struct evshm_listener *l;
	struct evshm_chan *c = NULL;
	uint8_t *buf = malloc(p->max ? p->max : 1);
	uint64_t n = 0;
	int res;

	if (!buf)
		return 1;
	res = evshm_listen(&l, p->name, &o);
	if (res < 0)
		goto out_free;
	do
		res = evshm_accept(l, &c, left_ms(p) ? left_ms(p) : 1);
	while (res < 0 && res != -ETIMEDOUT && left_ms(p));
	evshm_listener_close(l);
	if (res < 0)
		goto out_free;
	for (; n < p->count; n++) {
		if (p->pause_after && n == p->pause_after) {
			status(p, n, true);
			usleep((useconds_t)(p->pause_ms * 1000));
		}
		if (!left_ms(p)) {
			res = -ETIMEDOUT;
			goto out;
		}
		res = evshm_recv(c, buf, p->max ? p->max : 1, left_ms(p));
		if (res < 0)
			goto out;
		if (!pat_check(buf, (size_t)res, n, PAT_FIXED | msg_len(p, n))) {
			fprintf(stderr, "bridge-peer recv: message %" PRIu64
				" is wrong (%d bytes, says it is %" PRIu64 ")\n",
				n, res, pat_seq(buf, (size_t)res));
			res = -EBADMSG;
			goto out;
		}
		status(p, n + 1, false);
		if (p->delay_us)
			usleep((useconds_t)p->delay_us);
	}
	status(p, n, true);
	res = evshm_send(c, &n, sizeof(n), left_ms(p) ? left_ms(p) : 1);
	if (res > 0)
		res = 0;
out:
	evshm_close(c);
out_free:
	free(buf);
	return res < 0 ? fail(p, n, res) : 0;
}

/* --- byte streams ------------------------------------------------------------ */

#define CHUNK (1u << 20)

/* Byte @off of the stream is byte off % 8 of word pat_mix(off / 8). */
static void stream_fill(uint8_t *b, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t w = pat_mix((off + i) / 8);
		memcpy(b + i, &w, n - i < 8 ? n - i : 8);
	}
}

static int do_gen(uint64_t total)
{
	static uint8_t b[CHUNK];

	for (uint64_t off = 0; off < total;) {
		size_t n = total - off < CHUNK ? (size_t)(total - off) : CHUNK;
		stream_fill(b, off, n);
		for (size_t w = 0; w < n;) {
			ssize_t r = write(STDOUT_FILENO, b + w, n - w);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return 1;
			w += (size_t)r;
		}
		off += n;
	}
	return 0;
}

static int do_check(uint64_t total)
{
	static uint8_t b[CHUNK], want[CHUNK + 8];
	uint64_t off = 0;

	for (;;) {
		ssize_t r = read(STDIN_FILENO, b, CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return 1;
		if (r == 0)
			break;
		/* Chunks from a pipe may start anywhere: align to words. */
		uint64_t start = off & ~7ull;
		size_t skip = (size_t)(off - start);
		stream_fill(want, start, skip + (size_t)r);
		if (off + (uint64_t)r > total ||
		    memcmp(b, want + skip, (size_t)r)) {
			fprintf(stderr, "bridge-peer check: wrong bytes in "
				"[%" PRIu64 ", %" PRIu64 ")\n", off, off + (uint64_t)r);
			return 1;
		}
		off += (uint64_t)r;
	}
	if (off != total) {
		fprintf(stderr, "bridge-peer check: %" PRIu64 " bytes, expected %"
			PRIu64 "\n", off, total);
		return 1;
	}
	return 0;
}

/* --- command line ------------------------------------------------------------ */

static int usage(void)
{
	fprintf(stderr, "usage: bridge-peer send|recv NAME [options] | "
		"gen BYTES | check BYTES (see bridge_peer.c)\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct peer p = { .count = 1000, .max = 65536, .ring = 1u << 20,
			  .seconds = 120 };

	if (argc < 3)
		return usage();
	p.mode = argv[1];
	if (!strcmp(p.mode, "gen"))
		return do_gen(strtoull(argv[2], NULL, 0));
	if (!strcmp(p.mode, "check"))
		return do_check(strtoull(argv[2], NULL, 0));
	p.name = argv[2];
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t *u = !strcmp(a, "--count") ? &p.count
			    : !strcmp(a, "--max") ? &p.max
			    : !strcmp(a, "--ring") ? &p.ring
			    : !strcmp(a, "--fds-at") ? &p.fds_at
			    : !strcmp(a, "--pause-after") ? &p.pause_after
			    : !strcmp(a, "--pause-ms") ? &p.pause_ms
			    : !strcmp(a, "--delay-us") ? &p.delay_us : NULL;
		if (u && v) {
			*u = strtoull(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--seconds") && v) {
			p.seconds = strtod(argv[++i], NULL);
		} else if (!strcmp(a, "--status") && v) {
			p.status = argv[++i];
		} else if (!strcmp(a, "--fixed")) {
			p.fixed = true;
		} else {
			return usage();
		}
	}
	p.deadline_ns = now_ns() + (uint64_t)(p.seconds * 1e9);
	if (!strcmp(p.mode, "send"))
		return do_send(&p);
	if (!strcmp(p.mode, "recv"))
		return do_recv(&p);
	return usage();
}

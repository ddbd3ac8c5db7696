/* SPDX-License-Identifier: MIT */
/*
 * bridge-peer: the applications at both ends of a bridged channel in the
 * bridge tests.  Only the public evshm API.
 *
 *   bridge-peer send NAME [options]   connect, send --count numbered
 *                                     messages, wait for the count back
 *   bridge-peer recv NAME [options]   listen, take one client, check every
 *                                     message, send the count back
 *   bridge-peer pub NAME [options]    publish a topic: wait for
 *                                     --subscribers, publish --count
 *                                     numbered messages, wait until every
 *                                     subscriber released them
 *   bridge-peer sub NAME [options]    subscribe (retrying until someone
 *                                     publishes), check every message
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
 *   --delay-us US    recv, sub: sleep US after each message; pub: before
 *   --pause-after K, --pause-ms MS   sub: the same as recv
 *   --latest         pub: the latest policy (default reliable)
 *   --subscribers N  pub: wait for N subscribers first
 *   --stall-ms MS    pub: the stall timeout (default 10000)
 *   --policy P       sub: fail unless the topic's policy is P (reliable,
 *                    latest); latest: messages may be missing (never torn,
 *                    never out of order), counted
 *   --join           sub: the stream may start at any message (joined
 *                    late; needs --fixed sizes of 8 bytes or more)
 * The subscriber's status file says "RECEIVED LOST", where LOST counts the
 * messages it never saw (gaps in the numbers), and it prints at the end
 * "received R gaps G lapped-here L": G = lost on the way, L of them lapped
 * in its own ring (evshm_sub_lost()).
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
	const char *mode, *name, *status, *policy;
	uint64_t count, max, ring, fds_at, pause_after, pause_ms, delay_us;
	uint64_t subscribers, stall_ms;
	bool fixed, latest, join;
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

/* Write @text to the status file (atomically) at most every 20 ms. */
static void status_text(struct peer *p, const char *text, bool force)
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
	fputs(text, f);
	if (fclose(f) == 0)
		rename(tmp, p->status);
}

/* "COUNT" */
static void status(struct peer *p, uint64_t n, bool force)
{
	char t[32];

	snprintf(t, sizeof(t), "%" PRIu64 "\n", n);
	status_text(p, t, force);
}

/* "RECEIVED LOST" (sub) */
static void status2(struct peer *p, uint64_t n, uint64_t lost, bool force)
{
	char t[64];

	snprintf(t, sizeof(t), "%" PRIu64 " %" PRIu64 "\n", n, lost);
	status_text(p, t, force);
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

/* --- topics ------------------------------------------------------------------ */

static int pub_subs(struct evshm_pub *pb, uint64_t *lagging)
{
	struct evshm_sub_info info[64];
	int n = evshm_pub_subscribers(pb, info, 64);

	*lagging = 0;
	for (int i = 0; i < n && i < 64; i++)
		if (info[i].lag)
			(*lagging)++;
	return n;
}

static int do_pub(struct peer *p)
{
	struct evshm_opts o = {
		.ring_size = (uint32_t)p->ring,
		.policy = p->latest ? EVSHM_LATEST : EVSHM_RELIABLE,
		.stall_timeout_ms = (int32_t)p->stall_ms,
	};
	struct evshm_pub_stats st;
	struct evshm_pub *pb;
	uint8_t *buf = malloc(p->max ? p->max : 1);
	uint64_t n = 0, lagging = 0;
	int res;

	if (!buf)
		return 1;
	res = evshm_pub_open(&pb, p->name, &o);
	if (res < 0) {
		free(buf);
		return fail(p, 0, res);
	}
	while ((uint64_t)(res = evshm_pub_serve(pb, left_ms(p) ? 10 : 0)) <
	       p->subscribers) {
		if (res < 0 || !left_ms(p))
			goto out;
	}
	for (; n < p->count; n++) {
		size_t len = msg_len(p, n);

		if (p->delay_us)
			usleep((useconds_t)p->delay_us);
		/* A publisher that never waits admits joiners only when it
		 * looks (a subscriber that left and comes back). */
		if (n % 64 == 0)
			evshm_pub_serve(pb, 0);
		pat_fill(buf, len, n);
		if (!left_ms(p)) {
			res = -ETIMEDOUT;
			goto out;
		}
		res = evshm_pub_send(pb, buf, len, left_ms(p));
		if (res < 0)
			goto out;
		status(p, n + 1, false);
	}
	status(p, n, true);
	/* Every subscriber still there has released everything. */
	while (pub_subs(pb, &lagging) > 0 && lagging && left_ms(p)) {
		evshm_pub_serve(pb, 0);
		usleep(5000);
	}
	res = lagging ? -ETIMEDOUT : 0;
out:
	evshm_pub_stats(pb, &st);
	if (st.dropped)
		fprintf(stderr, "bridge-peer pub: dropped %" PRIu64
			" subscriber(s) for stalling\n", st.dropped);
	evshm_pub_close(pb);
	free(buf);
	if (res < 0)
		return fail(p, n, res);
	return st.dropped ? 1 : 0;
}

static int do_sub(struct peer *p)
{
	struct evshm_opts o = { .max_ring_size = EVSHM_RING_MAX };
	struct evshm_sub *sb = NULL;
	uint8_t *buf = malloc(p->max ? p->max : 1);
	uint64_t n = 0, got = 0, gaps = 0;
	bool latest, started = !p->join;
	int res = -ENOENT;

	if (!buf)
		return 1;
	/* The import publishes only while its stream is up. */
	while (left_ms(p)) {
		res = evshm_sub_open(&sb, p->name, &o, left_ms(p));
		if (res != -ENOENT && res != -ECONNREFUSED)
			break;
		usleep(10000);
	}
	if (res < 0)
		goto out_free;
	latest = evshm_sub_policy(sb) == EVSHM_LATEST;
	if (p->policy && strcmp(p->policy, latest ? "latest" : "reliable")) {
		fprintf(stderr, "bridge-peer sub: the topic is %s, not %s\n",
			latest ? "latest" : "reliable", p->policy);
		res = -EPROTOTYPE;
		goto out;
	}
	while (n < p->count) {
		if (p->pause_after && got == p->pause_after) {
			status2(p, got, gaps, true);
			usleep((useconds_t)(p->pause_ms * 1000));
		}
		if (!left_ms(p)) {
			res = -ETIMEDOUT;
			goto out;
		}
		res = evshm_sub_recv(sb, buf, p->max ? p->max : 1, left_ms(p));
		if (res < 0)
			goto out;
		/* Which message is it?  Reliable: the next, always. */
		uint64_t seq = n;
		if (latest || !started)
			seq = pat_seq(buf, (size_t)res);
		if (!started && seq < p->count)
			n = seq;
		started = true;
		if (seq < n || seq >= p->count ||
		    !pat_check(buf, (size_t)res, seq, PAT_FIXED | msg_len(p, seq))) {
			fprintf(stderr, "bridge-peer sub: message %" PRIu64
				" is wrong (%d bytes, says it is %" PRIu64 ")\n",
				n, res, pat_seq(buf, (size_t)res));
			res = -EBADMSG;
			goto out;
		}
		gaps += seq - n;
		n = seq + 1;
		got++;
		status2(p, got, gaps, false);
		if (p->delay_us)
			usleep((useconds_t)p->delay_us);
	}
	res = 0;
out:
	status2(p, got, gaps, true);
	fprintf(stderr, "bridge-peer sub: received %" PRIu64 " gaps %" PRIu64
		" lapped-here %" PRIu64 "\n", got, gaps, evshm_sub_lost(sb));
	evshm_sub_close(sb);
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
	fprintf(stderr, "usage: bridge-peer send|recv|pub|sub NAME [options] | "
		"gen BYTES | check BYTES (see bridge_peer.c)\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct peer p = { .count = 1000, .max = 65536, .ring = 1u << 20,
			  .seconds = 120, .stall_ms = 10000 };

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
			    : !strcmp(a, "--delay-us") ? &p.delay_us
			    : !strcmp(a, "--subscribers") ? &p.subscribers
			    : !strcmp(a, "--stall-ms") ? &p.stall_ms : NULL;
		if (u && v) {
			*u = strtoull(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--seconds") && v) {
			p.seconds = strtod(argv[++i], NULL);
		} else if (!strcmp(a, "--status") && v) {
			p.status = argv[++i];
		} else if (!strcmp(a, "--fixed")) {
			p.fixed = true;
		} else if (!strcmp(a, "--latest")) {
			p.latest = true;
		} else if (!strcmp(a, "--join")) {
			p.join = true;
		} else if (!strcmp(a, "--policy") && v) {
			p.policy = argv[++i];
		} else {
			return usage();
		}
	}
	p.deadline_ns = now_ns() + (uint64_t)(p.seconds * 1e9);
	if (!strcmp(p.mode, "send"))
		return do_send(&p);
	if (!strcmp(p.mode, "recv"))
		return do_recv(&p);
	if (!strcmp(p.mode, "pub"))
		return do_pub(&p);
	if (!strcmp(p.mode, "sub"))
		return do_sub(&p);
	return usage();
}

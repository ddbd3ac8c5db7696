/* SPDX-License-Identifier: MIT */
/*
 * evshm-bridge-bench: the two ends of the bridge benchmark
 * (scripts/bench-bridge runs them between two network namespaces).  Each
 * side is one process; the raw ZeroMQ ends and the evshm ends do the same
 * work per message, so that the bridges are compared with ZeroMQ alone:
 *
 *   zmq-sink  ENDPOINT  SIZE COUNT    PAIR, bind; receive, check, time
 *   zmq-source ENDPOINT SIZE COUNT    PAIR, connect; send
 *   shm-sink  NAME SIZE COUNT         evshm listen; receive, check, time
 *   shm-source NAME SIZE COUNT        evshm connect (to an import); send
 *   zmq-echo ENDPOINT / zmq-ping ENDPOINT SIZE COUNT     round trips
 *   shm-echo NAME / shm-ping NAME SIZE COUNT             round trips
 *   topic-pub NAME SIZE COUNT SUBS    evshm topic (reliable): wait for
 *                                     SUBS subscribers, publish, wait
 *                                     until they released everything
 *   topic-sub NAME SIZE COUNT         subscribe (retrying until the
 *                                     import publishes); receive, check,
 *                                     time
 *
 * Raw ZeroMQ uses CURVE when EVSHM_BENCH_CURVE is set to "SERVER_SECRET
 * SERVER_PUBLIC CLIENT_SECRET CLIENT_PUBLIC" (Z85), as the bridges do.
 * Every message carries its sequence number in its first and last 8 bytes;
 * the sink checks both (a lost or reordered message fails the run).  The
 * sink prints "bytes_per_s N" measured from message COUNT/10 (warm-up) to
 * the last; ping prints "rtt_p50_ns N rtt_p99_ns N".  evshm sides never
 * spin (EVSHM_SPIN_NEVER): on two CPUs shared by four processes a spinning
 * end would steal the bridges' CPU; ZeroMQ's ends block too.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <evshm.h>
#include <zmq.h>

#define TIMEOUT_MS 60000

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "evshm-bridge-bench: %s: %s\n", what, why);
	exit(1);
}

static void stamp(uint8_t *p, size_t size, uint64_t seq)
{
	memcpy(p, &seq, 8);
	memcpy(p + size - 8, &seq, 8);
}

static void check(const uint8_t *p, size_t len, size_t size, uint64_t seq)
{
	uint64_t a, b;

	if (len != size)
		die("check", "a message of the wrong size");
	memcpy(&a, p, 8);
	memcpy(&b, p + size - 8, 8);
	if (a != seq || b != seq)
		die("check", "a message lost or out of order");
}

static void report_rate(uint64_t t0, uint64_t t1, size_t size, uint64_t n)
{
	printf("bytes_per_s %.0f\n", (double)size * (double)n * 1e9 /
					     (double)(t1 - t0));
}

/* --- ZeroMQ ------------------------------------------------------------------ */

static void *zsock(void *ctx, int server)
{
	void *s = zmq_socket(ctx, ZMQ_PAIR);
	const char *keys = getenv("EVSHM_BENCH_CURVE");
	char k[4][41];
	int one = 1, zero = 0;

	if (!s)
		die("zmq_socket", zmq_strerror(zmq_errno()));
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	if (keys && *keys) {
		if (sscanf(keys, "%40s %40s %40s %40s", k[0], k[1], k[2], k[3]) != 4)
			die("EVSHM_BENCH_CURVE", "four Z85 keys expected");
		if (server) {
			zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof(one));
			zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, k[0], 41);
		} else {
			zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, k[1], 41);
			zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, k[2], 41);
			zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, k[3], 41);
		}
	}
	return s;
}

static void *zopen(void *ctx, const char *ep, int server)
{
	void *s = zsock(ctx, server);

	if ((server ? zmq_bind(s, ep) : zmq_connect(s, ep)) < 0)
		die(ep, zmq_strerror(zmq_errno()));
	return s;
}

static int zmq_sink(void *ctx, const char *ep, size_t size, uint64_t count)
{
	void *s = zopen(ctx, ep, 1);
	uint64_t warm = count / 10, t0 = 0;
	zmq_msg_t m;

	zmq_msg_init(&m);
	for (uint64_t i = 0; i < count; i++) {
		if (zmq_msg_recv(&m, s, 0) < 0)
			die("zmq_msg_recv", zmq_strerror(zmq_errno()));
		check(zmq_msg_data(&m), zmq_msg_size(&m), size, i);
		if (i == warm)
			t0 = now_ns();
	}
	report_rate(t0, now_ns(), size, count - 1 - warm);
	zmq_msg_close(&m);
	zmq_close(s);
	return 0;
}

static int zmq_source(void *ctx, const char *ep, size_t size, uint64_t count)
{
	void *s = zopen(ctx, ep, 0);
	uint8_t *buf = calloc(1, size);
	int linger = TIMEOUT_MS;

	for (uint64_t i = 0; i < count; i++) {
		stamp(buf, size, i);
		if (zmq_send(s, buf, size, 0) < 0)
			die("zmq_send", zmq_strerror(zmq_errno()));
	}
	/* Everything must leave before the socket closes. */
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_close(s);
	free(buf);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report_rtt(uint64_t *rtt, uint64_t n)
{
	qsort(rtt, n, sizeof(*rtt), cmp_u64);
	printf("rtt_p50_ns %llu rtt_p99_ns %llu\n",
	       (unsigned long long)rtt[n / 2],
	       (unsigned long long)rtt[n * 99 / 100]);
}

static int zmq_echo(void *ctx, const char *ep)
{
	void *s = zopen(ctx, ep, 1);
	zmq_msg_t m;

	zmq_msg_init(&m);
	/* Until the pinger says 0 bytes. */
	while (zmq_msg_recv(&m, s, 0) > 0)
		if (zmq_msg_send(&m, s, 0) < 0)
			break;
	zmq_msg_close(&m);
	zmq_close(s);
	return 0;
}

static int zmq_ping(void *ctx, const char *ep, size_t size, uint64_t count)
{
	void *s = zopen(ctx, ep, 0);
	uint8_t *buf = calloc(1, size), *in = calloc(1, size);
	uint64_t *rtt = calloc(count, sizeof(*rtt)), warm = count / 10;

	for (uint64_t i = 0; i < warm + count; i++) {
		uint64_t t = now_ns();
		stamp(buf, size, i);
		if (zmq_send(s, buf, size, 0) < 0 ||
		    zmq_recv(s, in, size, 0) != (int)size)
			die("ping", zmq_strerror(zmq_errno()));
		check(in, size, size, i);
		if (i >= warm)
			rtt[i - warm] = now_ns() - t;
	}
	zmq_send(s, "", 0, 0);
	report_rtt(rtt, count);
	int linger = 1000;
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_close(s);
	free(buf), free(in), free(rtt);
	return 0;
}

/* --- evshm ------------------------------------------------------------------- */

static struct evshm_opts shm_opts = {
	.ring_size = 4u << 20,
	.max_ring_size = 64u << 20,
	.spin_ns = EVSHM_SPIN_NEVER,
};

static struct evshm_chan *shm_accept(const char *name)
{
	struct evshm_listener *l;
	struct evshm_chan *c;
	int res = evshm_listen(&l, name, &shm_opts);

	if (res < 0)
		die(name, evshm_strerror(res));
	do
		res = evshm_accept(l, &c, TIMEOUT_MS);
	while (res < 0 && res != -ETIMEDOUT);
	evshm_listener_close(l);
	if (res < 0)
		die("accept", evshm_strerror(res));
	return c;
}

static struct evshm_chan *shm_connect(const char *name)
{
	struct evshm_chan *c;
	int res;

	for (int i = 0; i < 1000; i++) {
		res = evshm_connect(&c, name, &shm_opts, TIMEOUT_MS);
		if (res != -ENOENT && res != -ECONNREFUSED)
			break;
		usleep(10000);
	}
	if (res < 0)
		die(name, evshm_strerror(res));
	return c;
}

static int shm_sink(const char *name, size_t size, uint64_t count)
{
	struct evshm_chan *c = shm_accept(name);
	uint64_t warm = count / 10, t0 = 0;

	for (uint64_t i = 0; i < count; i++) {
		const void *p;
		size_t len;
		int res = evshm_peek(c, &p, &len, TIMEOUT_MS);

		if (res < 0)
			die("evshm_peek", evshm_strerror(res));
		check(p, len, size, i);
		evshm_release(c);
		if (i == warm)
			t0 = now_ns();
	}
	report_rate(t0, now_ns(), size, count - 1 - warm);
	/* Tell the source it may close (a close before its last messages
	 * left its ring would lose them: evshm semantics). */
	evshm_send(c, "", 0, TIMEOUT_MS);
	evshm_close(c);
	return 0;
}

static int shm_source(const char *name, size_t size, uint64_t count)
{
	struct evshm_chan *c = shm_connect(name);
	uint8_t *buf = calloc(1, size);
	char done;

	for (uint64_t i = 0; i < count; i++) {
		int res;
		stamp(buf, size, i);
		res = evshm_send(c, buf, size, TIMEOUT_MS);
		if (res < 0)
			die("evshm_send", evshm_strerror(res));
	}
	evshm_recv(c, &done, sizeof(done), TIMEOUT_MS);
	evshm_close(c);
	free(buf);
	return 0;
}

static int shm_echo(const char *name)
{
	struct evshm_chan *c = shm_accept(name);
	static uint8_t buf[1 << 16];
	int n;

	while ((n = evshm_recv(c, buf, sizeof(buf), -1)) > 0)
		if (evshm_send(c, buf, (size_t)n, TIMEOUT_MS) < 0)
			break;
	evshm_close(c);
	return 0;
}

static int shm_ping(const char *name, size_t size, uint64_t count)
{
	struct evshm_chan *c = shm_connect(name);
	uint8_t *buf = calloc(1, size), *in = calloc(1, size);
	uint64_t *rtt = calloc(count, sizeof(*rtt)), warm = count / 10;

	for (uint64_t i = 0; i < warm + count; i++) {
		uint64_t t = now_ns();
		int res;
		stamp(buf, size, i);
		res = evshm_send(c, buf, size, TIMEOUT_MS);
		if (res == 0)
			res = evshm_recv(c, in, size, TIMEOUT_MS);
		if (res != (int)size)
			die("ping", evshm_strerror(res < 0 ? res : -EBADMSG));
		check(in, size, size, i);
		if (i >= warm)
			rtt[i - warm] = now_ns() - t;
	}
	report_rtt(rtt, count);
	evshm_close(c);
	free(buf), free(in), free(rtt);
	return 0;
}

/* --- evshm topics ------------------------------------------------------------ */

static int topic_pub(const char *name, size_t size, uint64_t count,
		     unsigned subs)
{
	struct evshm_opts o = shm_opts;
	struct evshm_sub_info info[16];
	struct evshm_pub *p;
	uint64_t deadline = now_ns() + TIMEOUT_MS * 1000000ull;
	int res, n;

	o.stall_timeout_ms = TIMEOUT_MS;
	res = evshm_pub_open(&p, name, &o);
	if (res < 0)
		die(name, evshm_strerror(res));
	while ((n = evshm_pub_serve(p, 100)) < (int)subs)
		if (n < 0 || now_ns() > deadline)
			die("waiting for subscribers", evshm_strerror(n < 0 ? n
								 : -ETIMEDOUT));
	for (uint64_t i = 0; i < count; i++) {
		void *dst;
		res = evshm_pub_reserve(p, size, &dst, TIMEOUT_MS);
		if (res < 0)
			die("evshm_pub_reserve", evshm_strerror(res));
		stamp(dst, size, i);
		evshm_pub_commit(p, size);
	}
	/* Everyone has released everything (the bridge's subscription once
	 * it has sent it): then the close loses nothing. */
	for (bool lag = true; lag && now_ns() < deadline;) {
		n = evshm_pub_subscribers(p, info, 16);
		lag = false;
		for (int i = 0; i < n && i < 16; i++)
			lag |= info[i].lag != 0;
		usleep(1000);
	}
	evshm_pub_close(p);
	return 0;
}

static int topic_sub(const char *name, size_t size, uint64_t count)
{
	struct evshm_sub *s;
	uint64_t warm = count / 10, t0 = 0;
	int res;

	/* The import publishes only once its stream is up. */
	for (int i = 0; i < 2 * TIMEOUT_MS / 10; i++) {
		res = evshm_sub_open(&s, name, &shm_opts, TIMEOUT_MS);
		if (res != -ENOENT && res != -ECONNREFUSED)
			break;
		usleep(10000);
	}
	if (res < 0)
		die(name, evshm_strerror(res));
	for (uint64_t i = 0; i < count; i++) {
		const void *p;
		size_t len;

		res = evshm_sub_peek(s, &p, &len, TIMEOUT_MS);
		if (res < 0)
			die("evshm_sub_peek", evshm_strerror(res));
		check(p, len, size, i);
		evshm_sub_release(s);
		if (i == warm)
			t0 = now_ns();
	}
	report_rate(t0, now_ns(), size, count - 1 - warm);
	evshm_sub_close(s);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	size_t size = argc > 3 ? strtoull(argv[3], NULL, 0) : 0;
	uint64_t count = argc > 4 ? strtoull(argv[4], NULL, 0) : 0;
	int res;

	if (argc < 3 || (size && size < 16)) {
		fprintf(stderr, "usage: evshm-bridge-bench MODE ENDPOINT|NAME "
			"[SIZE COUNT] (see bench.c)\n");
		return 2;
	}
	/* EVSHM_BENCH_SPIN=NS: let the evshm ends spin (0: the library's
	 * default) instead of sleeping at once. */
	if (getenv("EVSHM_BENCH_SPIN"))
		shm_opts.spin_ns = strtoll(getenv("EVSHM_BENCH_SPIN"), NULL, 0);
	if (!strncmp(mode, "shm-", 4)) {
		if (!strcmp(mode, "shm-sink"))
			return shm_sink(argv[2], size, count);
		if (!strcmp(mode, "shm-source"))
			return shm_source(argv[2], size, count);
		if (!strcmp(mode, "shm-echo"))
			return shm_echo(argv[2]);
		if (!strcmp(mode, "shm-ping"))
			return shm_ping(argv[2], size, count);
		return 2;
	}
	if (!strcmp(mode, "topic-pub"))
		return topic_pub(argv[2], size, count,
				 argc > 5 ? (unsigned)atoi(argv[5]) : 1);
	if (!strcmp(mode, "topic-sub"))
		return topic_sub(argv[2], size, count);
	void *ctx = zmq_ctx_new();
	if (!strcmp(mode, "zmq-sink"))
		res = zmq_sink(ctx, argv[2], size, count);
	else if (!strcmp(mode, "zmq-source"))
		res = zmq_source(ctx, argv[2], size, count);
	else if (!strcmp(mode, "zmq-echo"))
		res = zmq_echo(ctx, argv[2]);
	else if (!strcmp(mode, "zmq-ping"))
		res = zmq_ping(ctx, argv[2], size, count);
	else
		res = 2;
	zmq_ctx_term(ctx);
	return res;
}

/* SPDX-License-Identifier: MIT */
/*
 * peer_chan: the other process of the channel tests.  A separate program,
 * started with exec: it shares nothing with the test but the socket name.
 *
 *   peer_chan client|server NAME MODE [--n=N] [--max=BYTES] [--ring=BYTES]
 *                                     [--spin=NS]
 * MODE:
 *   stress   n verified messages both ways at once (two threads)
 *   echo     send every message back, until the test hangs up
 *   flood    send verified messages until the channel breaks
 *   trickle  like flood, with a 0-2 ms pause after each message
 *   sink     receive n verified messages, send our counters back as one
 *            message, then wait for the hang-up
 *   stall    never touch the ring; wait to be killed
 * Exit 0 when the mode's work succeeded (for flood and trickle: ended by
 * -EPIPE), 1 otherwise with the reason on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evshm.h"
#include "msgpat.h"
#include "stream.h"
#include "util.h"

static uint64_t opt_u64(const char *arg, const char *name, uint64_t def)
{
	size_t n = strlen(name);
	if (strncmp(arg, name, n) == 0 && arg[n] == '=')
		return strtoull(arg + n + 1, NULL, 0);
	return def;
}

static int trickle(struct evshm_chan *c, size_t max)
{
	uint8_t *buf = malloc(pat_max(max) ? pat_max(max) : 1);
	unsigned seed = (unsigned)getpid();
	int res;
	tu_check(buf);
	for (uint64_t i = 0;; i++) {
		size_t len = pat_len(i, max);
		pat_fill(buf, len, i);
		res = evshm_send(c, buf, len, -1);
		if (res < 0)
			break;
		struct timespec ts = { 0, (long)(rand_r(&seed) % 2000000) };
		nanosleep(&ts, NULL);
	}
	free(buf);
	return res;
}

int main(int argc, char **argv)
{
	struct evshm_opts o = { 0 };
	struct evshm_listener *l = NULL;
	struct evshm_chan *c = NULL;
	uint64_t n = 1000;
	size_t max = 65536;
	uint64_t fixed = 0;
	int res;

	if (argc < 4) {
		fprintf(stderr, "usage: peer_chan client|server NAME MODE [opts]\n");
		return 2;
	}
	for (int i = 4; i < argc; i++) {
		n = opt_u64(argv[i], "--n", n);
		max = (size_t)opt_u64(argv[i], "--max", max);
		o.ring_size = (uint32_t)opt_u64(argv[i], "--ring", o.ring_size);
		o.spin_ns = (int64_t)opt_u64(argv[i], "--spin", (uint64_t)o.spin_ns);
		fixed = opt_u64(argv[i], "--fixed", fixed);
	}
	if (fixed)
		max |= PAT_FIXED;
	const char *name = argv[2], *mode = argv[3];

	if (strcmp(argv[1], "server") == 0) {
		tu_check_res(evshm_listen(&l, name, &o), 0);
		tu_check_res(evshm_accept(l, &c, 10000), 0);
	} else {
		tu_check_res(tu_connect_retry(&c, name, &o, 5000, NULL), 0);
	}

	if (strcmp(mode, "stress") == 0) {
		res = stream_both(c, n, max);
		tu_check_res(res, 0);
	} else if (strcmp(mode, "echo") == 0) {
		size_t cap = evshm_max_msg(c) + 1;
		uint8_t *buf = malloc(cap);
		tu_check(buf);
		while ((res = evshm_recv(c, buf, cap, -1)) >= 0)
			tu_check_res(evshm_send(c, buf, (size_t)res, -1), 0);
		tu_check_res(res, -EPIPE);
		free(buf);
	} else if (strcmp(mode, "delay") == 0) {
		/* Echo each message after the milliseconds its first four
		 * bytes say. */
		uint32_t buf[16], ms;
		while ((res = evshm_recv(c, buf, sizeof(buf), -1)) >= 4) {
			memcpy(&ms, buf, 4);
			struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
			nanosleep(&ts, NULL);
			tu_check_res(evshm_send(c, buf, (size_t)res, -1), 0);
		}
		tu_check_res(res, -EPIPE);
	} else if (strcmp(mode, "flood") == 0) {
		res = stream_send(c, UINT64_MAX, max, STREAM_MIXED, NULL);
		tu_check_res(res, -EPIPE);
	} else if (strcmp(mode, "trickle") == 0) {
		tu_check_res(trickle(c, max), -EPIPE);
	} else if (strcmp(mode, "sink") == 0) {
		struct evshm_stats st;
		tu_check_res(stream_recv(c, 0, n, max, STREAM_MIXED, -1, NULL), 0);
		evshm_stats(c, &st);
		tu_check_res(evshm_send(c, &st, sizeof(st), -1), 0);
		uint8_t b;
		tu_check_res(evshm_recv(c, &b, 1, -1), -EPIPE);
	} else if (strcmp(mode, "stall") == 0) {
		for (;;)
			pause();
	} else {
		fprintf(stderr, "peer_chan: unknown mode %s\n", mode);
		return 2;
	}
	evshm_close(c);
	evshm_listener_close(l);
	return 0;
}

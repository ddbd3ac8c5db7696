/* SPDX-License-Identifier: MIT */
/*
 * Descriptors riding with messages (evshm_send_fds / evshm_recv_fds),
 * between this process and a separately exec'd peer (peer_server).  Every
 * descriptor is checked on arrival (kind, name, contents: it is the file
 * that was sent with that message, see fdmsg.h), and neither process may
 * leak one: our count is compared with tu_count_fds() before and after,
 * the peer reports its own and checks itself after closing.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "evshm.h"
#include "fdmsg.h"
#include "util.h"

#define PEER TU_PEER("peer_server")


static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct peer {
	pid_t pid;
	char name[108];
	struct evshm_listener *l;
	struct evshm_chan *c;
};

/* Listen, start "peer_server MODE NAME --n=N", accept it. */
static void peer_start(struct peer *p, const char *mode, uint64_t n)
{
	struct evshm_opts o = { .ring_size = 1u << 16, .flags = EVSHM_OPT_FDS };
	char narg[32];
	memset(p, 0, sizeof(*p));
	snprintf(narg, sizeof(narg), "--n=%" PRIu64, n);
	tu_unique_name(p->name, sizeof(p->name), "fds", true);
	tu_assert_res(evshm_listen(&p->l, p->name, &o), 0);
	char *argv[] = { "peer_server", (char *)mode, p->name, narg,
			 "--ring=65536", NULL };
	tu_assert_res(tu_spawn(&p->pid, PEER, argv), 0);
	tu_assert_res(evshm_accept(p->l, &p->c, 10000), 0);
}

static void peer_finish(struct peer *p, int code)
{
	int status;
	evshm_close(p->c);
	evshm_listener_close(p->l);
	tu_assert_res(tu_wait(p->pid, 60000, &status), 0);
	assert_int_equal(tu_exit_code(status), code);
}

/* The peer's account: its descriptor count has not grown while it sent
 * or received (each message's files are closed once done with). */
static void get_report(struct peer *p, struct fdmsg_report *r)
{
	tu_assert_res(evshm_recv(p->c, r, sizeof(*r), 60000), (long)sizeof(*r));
	assert_int_equal(r->fds_now, r->fds_connected);
}

static uint64_t total_fds(uint64_t first, uint64_t n)
{
	uint64_t t = 0;
	for (uint64_t i = first; i < first + n; i++)
		t += fdmsg_nfds(i);
	return t;
}

/* --- streams ----------------------------------------------------------------- */

/* 100,000 messages from the peer, three in four with 1-3 descriptors,
 * mixed with plain ones: each arrives with its own files, in order. */
static void test_fds_stream_from_peer(void **state)
{
	(void)state;
	uint64_t n = tu_scaled(100000);
	int fds0 = tu_count_fds();
	struct peer p;
	struct fdmsg_report r;
	peer_start(&p, "fds-source", n);
	int fds1 = tu_count_fds();

	double t0 = now_s();
	for (uint64_t i = 0; i < n; i++)
		tu_assert_res(fdmsg_recv(p.c, i, fdmsg_nfds(i), false, 60000), 0);
	double dt = now_s() - t0;
	assert_int_equal(tu_count_fds(), fds1);
	get_report(&p, &r);
	print_message("%" PRIu64 " messages carrying %" PRIu64 " descriptors, "
		      "all checked, in %.2f s (%.1f us per message); sender "
		      "retries on ETOOMANYREFS: %" PRIu64 "\n", n,
		      total_fds(0, n), dt, dt * 1e6 / (double)n, r.retries);
	peer_finish(&p, 0);
	assert_int_equal(tu_count_fds(), fds0);
}

/* The same the other way: we send, the peer checks. */
static void test_fds_stream_to_peer(void **state)
{
	(void)state;
	uint64_t n = tu_scaled(100000), retries = 0;
	int fds0 = tu_count_fds();
	struct peer p;
	struct fdmsg_report r;
	peer_start(&p, "fds-sink", n);
	int fds1 = tu_count_fds();

	double t0 = now_s();
	for (uint64_t i = 0; i < n; i++)
		tu_assert_res(fdmsg_send(p.c, i, fdmsg_nfds(i), false, 60000,
					 &retries), 0);
	assert_int_equal(tu_count_fds(), fds1);
	get_report(&p, &r);
	double dt = now_s() - t0;
	assert_int_equal(r.verified, n);
	print_message("%" PRIu64 " messages carrying %" PRIu64 " descriptors "
		      "checked by the peer in %.2f s; retries %" PRIu64 "\n",
		      n, total_fds(0, n), dt, retries);
	peer_finish(&p, 0);
	assert_int_equal(tu_count_fds(), fds0);
}

/* An event-loop sender: evshm_send_fds(..., 0) until -EAGAIN, then wait
 * for evshm_fd().  The peer reads nothing for a while, so what fills up
 * first is the socket (a few hundred messages with descriptors), long
 * before the ring: evshm_fd() must report room there too. */
static void test_fds_nonblocking_sender(void **state)
{
	(void)state;
	/* Not fewer than 2000: the socket is full after a few hundred. */
	uint64_t n = tu_scaled(20000) < 2000 ? 2000 : tu_scaled(20000), i = 0, waits = 0;
	int fds0 = tu_count_fds();
	struct peer p;
	struct fdmsg_report r;
	struct epoll_event ev = { .events = EPOLLIN };
	peer_start(&p, "fds-slow-sink", n);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	assert_true(ep >= 0);
	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, evshm_fd(p.c), &ev), 0);

	while (i < n) {
		int res = fdmsg_send(p.c, i, fdmsg_nfds(i), false, 0, NULL);
		if (res == 0) {
			i++;
			continue;
		}
		tu_assert_res(res, -EAGAIN);
		/* Armed by the failed send: wait for room. */
		if (epoll_wait(ep, &ev, 1, 10000) != 1)
			fail_msg("message %" PRIu64 ": evshm_fd() not readable "
				 "10 s after evshm_send_fds() said -EAGAIN", i);
		waits++;
	}
	get_report(&p, &r);
	assert_int_equal(r.verified, n);
	print_message("%" PRIu64 " messages sent without waiting; %" PRIu64
		      " waits on evshm_fd()\n", n, waits);
	close(ep);
	peer_finish(&p, 0);
	assert_int_equal(tu_count_fds(), fds0);
}

/* The receiver closes mid-stream, a message with descriptors peeked and
 * more queued on its socket: we get -EPIPE, nothing leaks on either side
 * (the peer checks its own count after closing, and exits 0 if it is
 * back to what it was before connecting). */
static void test_fds_receiver_closes_mid_stream(void **state)
{
	(void)state;
	int fds0 = tu_count_fds();
	struct peer p;
	uint64_t k = 500 + (uint64_t)getpid() % 1000, i;
	int res = 0;
	peer_start(&p, "fds-close", k);

	double t0 = now_s();
	for (i = 0; now_s() - t0 < 60; i++) {
		res = fdmsg_send(p.c, i, fdmsg_nfds(i), false, 60000, NULL);
		if (res < 0)
			break;
	}
	tu_assert_res(res, -EPIPE);
	assert_true(i > k);
	print_message("peer read %" PRIu64 ", closed; we had sent %" PRIu64
		      " when we got EPIPE\n", k, i);
	/* It stays broken, and refuses plain messages too. */
	tu_assert_res(fdmsg_send(p.c, i, 2, false, 0, NULL), -EPIPE);
	tu_assert_res(evshm_send(p.c, "x", 1, 0), -EPIPE);
	peer_finish(&p, 0);
	assert_int_equal(tu_count_fds(), fds0);
}

/* The sender is killed mid-stream: every message it committed still
 * arrives with its descriptors, then -EPIPE; nothing leaks here. */
static void test_fds_sender_killed_mid_stream(void **state)
{
	(void)state;
	int fds0 = tu_count_fds();
	struct peer p;
	uint64_t k = 1000 + (uint64_t)getpid() % 1000, i;
	int res, status;
	peer_start(&p, "fds-source", 0); /* until killed */
	for (i = 0; i < k; i++)
		tu_assert_res(fdmsg_recv(p.c, i, fdmsg_nfds(i), false, 60000), 0);
	assert_int_equal(kill(p.pid, SIGKILL), 0);
	tu_assert_res(tu_wait(p.pid, 10000, &status), 0);
	while ((res = fdmsg_recv(p.c, i, fdmsg_nfds(i), false, 10000)) == 0)
		i++;
	tu_assert_res(res, -EPIPE);
	print_message("killed after %" PRIu64 " read; %" PRIu64 " more "
		      "drained, then EPIPE\n", k, i - k);
	evshm_close(p.c);
	evshm_listener_close(p.l);
	assert_int_equal(tu_count_fds(), fds0);
}

/* --- edge cases ---------------------------------------------------------------- */

/* The peer (mode fds-script) sends messages 1000..1008 in this order. */
static void test_fds_edge_cases(void **state)
{
	(void)state;
	int fds0 = tu_count_fds();
	struct peer p;
	struct fdmsg_report r;
	int fds[EVSHM_MAX_FDS];
	uint8_t buf[64];
	unsigned n;
	peer_start(&p, "fds-script", 0);
	int fds1 = tu_count_fds();

	/* 1000: three descriptors.  Room for fewer: -EOVERFLOW, the number
	 * needed, nothing handed over, the message stays. */
	n = 2;
	tu_assert_res(evshm_recv_fds(p.c, buf, sizeof(buf), fds, &n, 10000),
		      -EOVERFLOW);
	assert_int_equal(n, 3);
	n = 0;
	tu_assert_res(evshm_recv_fds(p.c, buf, sizeof(buf), NULL, &n, 10000),
		      -EOVERFLOW);
	assert_int_equal(n, 3);
	/* Meanwhile the channel holds them (read from the socket when the
	 * message was first looked at), and hands them over once. */
	assert_int_equal(tu_count_fds(), fds1 + 3);
	tu_assert_res(fdmsg_recv(p.c, 1000, 3, false, 10000), 0);
	assert_int_equal(tu_count_fds(), fds1);

	/* 1001: read with plain evshm_recv: its descriptors are closed. */
	tu_assert_res(evshm_recv(p.c, buf, sizeof(buf), 10000), (long)fdmsg_len(1001));
	assert_int_equal(tu_count_fds(), fds1);

	/* 1002: peek, then release: closed too. */
	const void *ptr;
	size_t len;
	tu_assert_res(evshm_peek(p.c, &ptr, &len, 10000), 0);
	assert_int_equal(len, fdmsg_len(1002));
	tu_assert_res(evshm_release(p.c), 0);
	assert_int_equal(tu_count_fds(), fds1);

	/* 1003: a buffer too small for the bytes: -EMSGSIZE, it stays with
	 * its descriptors, and then arrives whole. */
	n = EVSHM_MAX_FDS;
	tu_assert_res(evshm_recv_fds(p.c, buf, 4, fds, &n, 10000), -EMSGSIZE);
	tu_assert_res(fdmsg_recv(p.c, 1003, 2, false, 10000), 0);
	assert_int_equal(tu_count_fds(), fds1);

	/* 1004: the most one message carries, 253 distinct files. */
	tu_assert_res(fdmsg_recv(p.c, 1004, EVSHM_MAX_FDS, false, 10000), 0);
	assert_int_equal(tu_count_fds(), fds1);

	/* 1005: no bytes at all, one descriptor. */
	tu_assert_res(fdmsg_recv(p.c, 1005, 1, true, 10000), 0);

	/* 1006: a plain message through evshm_recv_fds: no descriptors. */
	tu_assert_res(fdmsg_recv(p.c, 1006, 0, false, 10000), 0);

	/* The peer's refused sends: 254 descriptors, 0, NULL, a closed one. */
	get_report(&p, &r);
	tu_assert_res(r.results[0], -EINVAL);
	tu_assert_res(r.results[1], -EINVAL);
	tu_assert_res(r.results[2], -EINVAL);
	tu_assert_res(r.results[3], -EBADF);

	/* 1008: and after them, descriptors still pair with the right
	 * message. */
	tu_assert_res(fdmsg_recv(p.c, 1008, 1, false, 10000), 0);
	assert_int_equal(tu_count_fds(), fds1);

	/* Our send side refuses the same. */
	int many[EVSHM_MAX_FDS + 1], fd;
	tu_assert_res(fdmsg_open(7, 0, &fd), 0);
	for (int i = 0; i <= EVSHM_MAX_FDS; i++)
		many[i] = fd;
	tu_assert_res(evshm_send_fds(p.c, "x", 1, many, EVSHM_MAX_FDS + 1, 0), -EINVAL);
	tu_assert_res(evshm_send_fds(p.c, "x", 1, many, 0, 0), -EINVAL);
	tu_assert_res(evshm_send_fds(p.c, "x", 1, NULL, 2, 0), -EINVAL);
	tu_assert_res(evshm_send_fds(p.c, NULL, 1, many, 1, 0), -EINVAL);
	close(fd);
	tu_assert_res(evshm_send_fds(p.c, "x", 1, &fd, 1, 0), -EBADF);
	/* ... and a good one gets to the peer with its files. */
	tu_assert_res(fdmsg_send(p.c, 2000, 3, false, 10000, NULL), 0);
	get_report(&p, &r);
	assert_int_equal(r.verified, 1);
	assert_int_equal(tu_count_fds(), fds1);
	peer_finish(&p, 0);
	assert_int_equal(tu_count_fds(), fds0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fds_edge_cases),
		cmocka_unit_test(test_fds_nonblocking_sender),
		cmocka_unit_test(test_fds_receiver_closes_mid_stream),
		cmocka_unit_test(test_fds_sender_killed_mid_stream),
		cmocka_unit_test(test_fds_stream_from_peer),
		cmocka_unit_test(test_fds_stream_to_peer),
	};
	return TU_RUN(tests, argc, argv);
}

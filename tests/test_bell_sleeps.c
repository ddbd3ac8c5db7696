/* SPDX-License-Identifier: MIT */
/*
 * test_bell_sleeps: far more sleeps than a bell holds kicks.
 *
 * A bell is a Unix socket pair; a kick is one byte in the kicker's send
 * buffer (about 270 of them by default), and a kick that finds it full is
 * lost.  Kicks only answer armings, and a sleeper empties its bell now and
 * then (and after every wait while evshm_fd() is in use): so a long run of
 * sleeps must never lose a wakeup, and evshm_fd() must be quiet again after
 * each wait.  The peer is an honest one written without libevshm's wait
 * code (peer_hostile "honest").
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "bell.h"
#include "err.h"
#include "hostile_run.h"
#include "os.h"

/*
 * We never spin, so a receive that finds nothing sleeps until the peer's
 * kick.  Round trips until we have slept 16 times as often as a default
 * send buffer holds kicks (each of those sleeps ended with a kick; how
 * many round trips that takes depends on the machine).  Without drains, the
 * bell fills and the next receive times out.
 */
static void test_many_sleeps(void **state)
{
	struct evshm_opts o = { .ring_size = 65536, .spin_ns = -1 };
	struct evshm_stats st = { 0 };
	uint8_t out[64], in[64];

	(void)state;
	for (int role = 0; role < 2; role++) {
		struct hostile_run r;
		uint32_t i;

		print_message("peer is the %s\n", role ? "server" : "client");
		hostile_up(&r, role, "honest", &o);
		for (i = 0, st.sleeps = 0; st.sleeps < 4096; i++) {
			if (i == 1000000)
				fail_msg("%" PRIu64 " sleeps in %u round trips",
					 st.sleeps, i);
			tu_fill(out, sizeof(out), i + 1);
			tu_assert_res(evshm_send(r.c, out, sizeof(out), 5000), 0);
			tu_assert_res(evshm_recv(r.c, in, sizeof(in), 5000),
				      (long)sizeof(in));
			assert_true(tu_check_fill(in, sizeof(in), i + 1));
			if (i % 64 == 0)
				evshm_stats(r.c, &st);
		}
		print_message("%" PRIu64 " sleeps in %u round trips\n",
			      st.sleeps, i);
		hostile_down(&r);
		assert_int_equal(tu_count_fds(), r.fds0);
	}
}

struct late_recv {
	struct evshm_chan *c;
	uint8_t in[64];
	int res;
	uint64_t ns;
};

static void *late_recv_main(void *arg)
{
	struct late_recv *l = arg;
	uint64_t t0 = os_now_ns();

	l->res = evshm_recv(l->c, l->in, sizeof(l->in), 30000);
	l->ns = os_now_ns() - t0;
	return NULL;
}

/*
 * Armings that never sleep: receives with timeout 0, so each -EAGAIN arms
 * and the echo's commit kicks, but nobody sleeps.  Were the bell emptied
 * only after sleeps, those kicks would fill it (a few hundred: measured
 * 683 queued) and the next real sleep would miss its kick: a wait that
 * lasts its whole timeout.  So then a receiver sleeps in a thread of its
 * own while we send, 100 ms later: it must be woken long before its 30 s
 * (a hang bound, not a timing).
 */
static void test_many_armings(void **state)
{
	struct evshm_opts o = { .ring_size = 4096, .spin_ns = -1 };
	struct late_recv l = { 0 };
	uint8_t out[64], in[64];
	uint32_t tries = 0, i;
	struct hostile_run r;
	pthread_t t;
	int res;

	(void)state;
	hostile_up(&r, false, "honest", &o);
	for (i = 1; i <= 8192; i++) {
		tu_fill(out, sizeof(out), i);
		tu_assert_res(evshm_send(r.c, out, sizeof(out), 5000), 0);
		while ((res = evshm_recv(r.c, in, sizeof(in), 0)) == -EAGAIN) {
			tries++;
			usleep(20);
		}
		tu_assert_res(res, (long)sizeof(in));
		assert_true(tu_check_fill(in, sizeof(in), i));
	}
	l.c = r.c;
	assert_int_equal(pthread_create(&t, NULL, late_recv_main, &l), 0);
	usleep(100000);
	tu_fill(out, sizeof(out), i);
	tu_assert_res(evshm_send(r.c, out, sizeof(out), 5000), 0);
	pthread_join(t, NULL);
	print_message("%u round trips, %u receives that armed and did not "
		      "sleep; then a sleeper woken after %" PRIu64 " ms\n",
		      i - 1, tries, l.ns / 1000000u);
	tu_assert_res(l.res, (long)sizeof(l.in));
	assert_true(tu_check_fill(l.in, sizeof(l.in), i));
	assert_true(l.ns < 20000000000u);
	hostile_down(&r);
	assert_int_equal(tu_count_fds(), r.fds0);
}

/* evshm_fd() in use (level-triggered): after each wait the bell is
 * emptied, so the descriptor is quiet again until the next kick. */
static void test_fd_quiet(void **state)
{
	struct hostile_run r;

	(void)state;
	hostile_up(&r, false, "honest", NULL);
	tu_fd_echo_rounds(r.c, 100);
	hostile_down(&r);
	assert_int_equal(tu_count_fds(), r.fds0);
}

/*
 * bell_kick()'s watch, alone.  A kick that was slow by the clock only (the
 * task it woke preempted us) is let off at the next quick one; kicks that
 * burn our CPU (the sleeper's end in 100,000 epoll entries: each send
 * walks them) are a strike each, and the third strike under watch is
 * -EPROTO with its reason.
 */
static void test_kick_watch(void **state)
{
	static int opened[200 + 500];
	unsigned watch;
	int rd, wr, res = 0, n = 0;

	(void)state;
	tu_assert_res(os_bell_pair(&rd, &wr), 0);
	/* Under watch, honest: the watch ends, from any strike count. */
	for (unsigned w = 1; w <= BELL_KICK_STRIKES; w++) {
		watch = w;
		tu_assert_res(bell_kick(wr, &watch), 0);
		assert_int_equal(watch, 0);
	}
	watch = 0;
	tu_assert_res(bell_kick(wr, &watch), 0);
	assert_int_equal(watch, 0);
	/* Watched widely: slow by the clock, then three CPU-slow strikes. */
	tu_assert_res(tu_watch_widely(rd, 200, 500, opened), 0);
	while (res == 0 && n < 10) {
		res = bell_kick(wr, &watch);
		n++;
	}
	tu_assert_res(res, -EPROTO);
	assert_int_equal(err_last(), R_BELL_SLOW);
	assert_int_equal(n, 1 + BELL_KICK_STRIKES);
	for (int i = 0; i < 200 + 500; i++)
		os_close(opened[i]);
	os_close(rd);
	os_close(wr);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_sleeps),
		cmocka_unit_test(test_many_armings),
		cmocka_unit_test(test_fd_quiet),
		cmocka_unit_test(test_kick_watch),
	};
	return TU_RUN(tests, argc, argv);
}

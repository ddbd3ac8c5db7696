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
#include <stdio.h>

#include "hostile_run.h"

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

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_sleeps),
		cmocka_unit_test(test_fd_quiet),
	};
	return TU_RUN(tests, argc, argv);
}

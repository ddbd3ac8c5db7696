/* SPDX-License-Identifier: MIT */
/*
 * test_pipe_nowait: bells on a kernel whose pipes refuse RWF_NOWAIT.
 *
 * Pipes take preadv2(RWF_NOWAIT) only since Linux 6.4; before it they
 * answer EOPNOTSUPP.  A sleeper empties its bell with a read that the peer
 * cannot make blocking (it shares the read end's open file description),
 * now and then, and after every wait while evshm_fd() is in use.  Were
 * that read RWF_NOWAIT alone, on such a kernel the bell would never be
 * emptied: once full, the kick that answers an arming is lost (a hang,
 * up to the timeout), and evshm_fd() stays readable for ever (an event
 * loop spins).
 *
 * A seccomp filter, installed first, makes this kernel answer preadv2()
 * as an old one does, for the whole run (and for the peers, which are
 * spawned by us).  The same checks pass on any kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hostile_run.h"
#include "os.h"

static bool filtered;

static int setup(void **state)
{
	(void)state;
	if (!filtered)
		skip();
	return 0;
}

/* The filter works: a pipe refuses RWF_NOWAIT as before Linux 6.4. */
static void test_filter_holds(void **state)
{
	int p[2];
	char c;
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };

	(void)state;
	tu_assert_res(os_pipe(p), 0);
	assert_int_equal(preadv2(p[0], &iov, 1, -1, RWF_NOWAIT), -1);
	assert_int_equal(errno, EOPNOTSUPP);
	os_close(p[0]);
	os_close(p[1]);
}

/* The drain empties a pipe whose read end was made blocking, and comes
 * back at once when it is empty. */
static void test_drain(void **state)
{
	int p[2], fl;

	(void)state;
	tu_assert_res(os_pipe(p), 0);
	fl = fcntl(p[0], F_GETFL);
	assert_int_equal(fcntl(p[0], F_SETFL, fl & ~O_NONBLOCK), 0);
	tu_assert_res(os_pipe_drain(p[0]), 0);
	for (int i = 0; i < 3; i++)
		tu_assert_res(os_pipe_kick(p[1]), 0);
	tu_assert_res(os_pipe_drain(p[0]), 3);
	tu_assert_res(os_pipe_drain(p[0]), 0);
	/* A full pipe, then empty again. */
	for (int i = 0; i < 70000; i++)
		tu_assert_res(os_pipe_kick(p[1]), 0);
	assert_true(os_pipe_drain(p[0]) >= 65536);
	tu_assert_res(os_pipe_drain(p[0]), 0);
	os_close(p[0]);
	os_close(p[1]);
}

/*
 * Far more sleeps than the bell holds kicks: the peer shrank the bell it
 * made for us to one page (4,096 kicks), and we never spin, so a receive
 * that finds nothing sleeps until the peer's kick.  Round trips until we
 * have slept twice as often as the bell holds kicks (each of those sleeps
 * ended with a kick; how many round trips that takes depends on the
 * machine).  Without a drain that works here, the pipe fills after 4,096
 * kicks and the next receive times out.
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
		hostile_up(&r, role, "small_bell", &o);
		for (i = 0, st.sleeps = 0; st.sleeps < 8192; i++) {
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
	hostile_up(&r, false, "small_bell", NULL);
	tu_fd_echo_rounds(r.c, 100);
	hostile_down(&r);
	assert_int_equal(tu_count_fds(), r.fds0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_filter_holds, setup),
		cmocka_unit_test_setup(test_drain, setup),
		cmocka_unit_test_setup(test_many_sleeps, setup),
		cmocka_unit_test_setup(test_fd_quiet, setup),
	};
	/* As a kernel before 6.4 answers for a pipe. */
	int res = tu_refuse_syscall(SYS_preadv2, EOPNOTSUPP);

	filtered = res == 0;
	if (!filtered)
		fprintf(stderr, "test_pipe_nowait: no seccomp filter (%s): "
			"skipped\n", tu_errname(res));
	return TU_RUN(tests, argc, argv);
}

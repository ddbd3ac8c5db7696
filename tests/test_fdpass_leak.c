/* SPDX-License-Identifier: MIT */
/*
 * test_fdpass_leak: 10,000 cycles of connect / pass SP_LEAK_NFDS
 * descriptors / close between this process and a separate executable
 * (peer_leak).  Both processes must end with the descriptor count they
 * started with: the accept, send, receive and close paths leak nothing.
 * Once, the server closes a connection without sending: the peer must see
 * end-of-file, leak nothing, and dial again (its report counts it).
 */
#include <stdio.h>
#include <unistd.h>

#include "endpoint.h"
#include "fdpass.h"
#include "os.h"
#include "socket_peers.h"
#include "util.h"

#define CYCLES 10000
#define DROP_AT 5000 /* the cycle whose first connection is closed unsent */

static void test_leak(void **state)
{
	char name[108], cycles[16];
	char *argv[] = { "peer_leak", name, cycles, NULL };
	struct ep_listener l;
	struct sp_leak_report rep;
	struct sp_cycle cyc;
	unsigned i, nfds;
	int fds0, sock, status, fds[SP_LEAK_NFDS];
	pid_t pid, who;

	(void)state;
	tu_unique_name(name, sizeof(name), "leak", true);
	snprintf(cycles, sizeof(cycles), "%u", CYCLES);
	tu_assert_res(ep_listen(&l, name, 0, 0), 0);
	fds0 = tu_count_fds();
	tu_assert_res(tu_spawn(&pid, TU_PEER("peer_leak"), argv), 0);

	for (i = 0; i < CYCLES; i++) {
		tu_assert_res(ep_accept(&l, SP_TIMEOUT_MS, &sock), 0);
		if (i == DROP_AT) {
			os_close(sock);
			tu_assert_res(ep_accept(&l, SP_TIMEOUT_MS, &sock), 0);
		}
		/* Nobody but our peer is at the other end. */
		tu_assert_res(ep_peercred(sock, &who, NULL, NULL), 0);
		if (who != pid)
			fail_msg("cycle %u: accepted pid %d, the peer is %d", i,
				 (int)who, (int)pid);
		/* Fresh descriptors each time, closed right after the send:
		 * the peer gets its own references. */
		tu_assert_res(tu_eventfd(&fds[0]), 0);
		tu_assert_res(os_memfd("leak", 4096, &fds[1]), 0);
		tu_assert_res(os_memfd_seal(fds[1]), 0);
		tu_assert_res(tu_eventfd(&fds[2]), 0);
		cyc.seq = i;
		tu_assert_res(fdp_send(sock, &cyc, sizeof(cyc), fds,
				       SP_LEAK_NFDS, SP_TIMEOUT_MS), 0);
		os_close(fds[0]);
		os_close(fds[1]);
		os_close(fds[2]);
		os_close(sock);
	}

	tu_assert_res(ep_accept(&l, SP_TIMEOUT_MS, &sock), 0);
	tu_assert_res(fdp_recv(sock, &rep, sizeof(rep), NULL, 0, &nfds,
			       SP_TIMEOUT_MS), sizeof(rep));
	os_close(sock);
	tu_assert_res(tu_wait(pid, SP_TIMEOUT_MS, &status), 0);
	print_message("%u cycles (%u dialled again); peer fds %d -> %d; "
		      "ours %d -> %d\n",
		      rep.cycles, rep.redials, rep.fds_start, rep.fds_end, fds0,
		      tu_count_fds());
	assert_int_equal(rep.cycles, CYCLES);
	/* Ours, and at most what the peer allows the kernel. */
	assert_in_range(rep.redials, 1, 3);
	assert_int_equal(rep.fds_end, rep.fds_start);
	assert_int_equal(tu_exit_code(status), 0);
	assert_int_equal(tu_count_fds(), fds0);
	ep_listener_close(&l);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leak),
	};

	return TU_RUN(tests, argc, argv);
}

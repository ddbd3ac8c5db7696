/* SPDX-License-Identifier: MIT */
/*
 * test_fdpass_xproc: an eventfd and a memfd cross from this process (A) to
 * a separately spawned executable (B, peer_fdpass) that shares nothing with
 * us but a socket name.  B writes into the memory and kicks the eventfd; we
 * wake on the eventfd and see B's bytes in our own mapping.
 *
 * The descriptor numbers differ between the processes (we send ours from
 * >= 100): SCM_RIGHTS passes open files, not numbers, and nothing in evshm
 * may assume a number means anything to the peer.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "endpoint.h"
#include "fdpass.h"
#include "os.h"
#include "socket_peers.h"
#include "util.h"

#define XP_SIZE (64u * 1024u)

static void run(bool abstract, bool sealed)
{
	char name[108];
	char *argv[] = { "peer_fdpass", name, NULL };
	struct ep_listener l;
	struct sp_hello hello = { .size = XP_SIZE, .sealed = sealed };
	struct sp_report rep;
	struct sp_go go;
	struct pollfd pfd[2];
	int fd, efd, mfd, sock, status, fds0, sent[2];
	unsigned nfds;
	pid_t pid, cred_pid;
	void *map;

	fds0 = tu_count_fds();
	tu_unique_name(name, sizeof(name), "xproc", abstract);
	tu_assert_res(ep_listen(&l, name, 0, 0), 0);

	tu_assert_res(tu_eventfd(&fd), 0);
	efd = fcntl(fd, F_DUPFD_CLOEXEC, 100);
	assert_true(efd >= 100);
	os_close(fd);
	tu_assert_res(os_memfd("xproc", XP_SIZE, &fd), 0);
	mfd = fcntl(fd, F_DUPFD_CLOEXEC, 100);
	assert_true(mfd >= 100);
	os_close(fd);
	/* Map before sealing: F_SEAL_FUTURE_WRITE spares existing mappings. */
	map = mmap(NULL, XP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	assert_true(map != MAP_FAILED);
	if (sealed) {
		hello.seed = 0x5eed1;
		tu_fill(map, XP_SIZE, hello.seed);
		tu_assert_res(os_memfd_seal(mfd), 0);
	} else {
		/* What os_check_memfd() demands, but no write seal: B maps
		 * this one writable. */
		hello.seed = 0xb0b;
		assert_int_equal(fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK |
				       F_SEAL_GROW | F_SEAL_SEAL), 0);
	}
	hello.a_fds[0] = efd;
	hello.a_fds[1] = mfd;

	tu_assert_res(tu_spawn(&pid, TU_PEER("peer_fdpass"), argv), 0);
	tu_assert_res(ep_accept(&l, SP_TIMEOUT_MS, &sock), 0);
	tu_assert_res(ep_peercred(sock, &cred_pid, NULL, NULL), 0);
	assert_int_equal(cred_pid, pid);

	sent[0] = efd;
	sent[1] = mfd;
	tu_assert_res(fdp_send(sock, &hello, sizeof(hello), sent, 2,
			       SP_TIMEOUT_MS), 0);
	tu_assert_res(fdp_recv(sock, &rep, sizeof(rep), NULL, 0, &nfds,
			       SP_TIMEOUT_MS), sizeof(rep));
	assert_int_equal(rep.pid, pid);
	/* Whatever numbers B got, they are B's: the test below works all
	 * the same.  Only their validity is checked. */
	print_message("A (pid %d) sent fds %d,%d; B (pid %d) received %d,%d\n",
		      (int)getpid(), efd, mfd, rep.pid, rep.b_fds[0],
		      rep.b_fds[1]);
	assert_true(rep.b_fds[0] >= 0 && rep.b_fds[1] >= 0 &&
		    rep.b_fds[0] != rep.b_fds[1]);

	if (sealed) {
		/* Our pre-seal mapping is still writable; B sees this. */
		go.seed = 0x5eed2;
		tu_fill(map, XP_SIZE, go.seed);
		tu_assert_res(fdp_send(sock, &go, sizeof(go), NULL, 0,
				       SP_TIMEOUT_MS), 0);
	}

	/* Sleep until B's kick; if B dies instead the socket hangs up and we
	 * fail at once rather than at the deadline. */
	pfd[0] = (struct pollfd){ .fd = efd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = sock, .events = POLLIN };
	assert_true(os_poll(pfd, 2, os_deadline(SP_TIMEOUT_MS)) > 0);
	if (!(pfd[0].revents & POLLIN))
		fail_msg("peer hung up without kicking (revents %#x)",
			 pfd[1].revents);
	tu_assert_res(tu_eventfd_drain(efd), 1);
	tu_assert_res(tu_eventfd_drain(efd), 0);
	if (!sealed)
		assert_true(tu_check_fill(map, XP_SIZE, hello.seed));

	/* B waits for our close (EOF), then exits 0. */
	os_close(sock);
	tu_assert_res(tu_wait(pid, SP_TIMEOUT_MS, &status), 0);
	assert_int_equal(tu_exit_code(status), 0);

	munmap(map, XP_SIZE);
	os_close(efd);
	os_close(mfd);
	ep_listener_close(&l);
	assert_int_equal(tu_count_fds(), fds0);
}

static void test_path_writable(void **state)
{
	(void)state;
	run(false, false);
}

static void test_abstract_writable(void **state)
{
	(void)state;
	run(true, false);
}

static void test_path_sealed(void **state)
{
	(void)state;
	run(false, true);
}

static void test_abstract_sealed(void **state)
{
	(void)state;
	run(true, true);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_writable),
		cmocka_unit_test(test_abstract_writable),
		cmocka_unit_test(test_path_sealed),
		cmocka_unit_test(test_abstract_sealed),
	};
	return TU_RUN(tests, argc, argv);
}

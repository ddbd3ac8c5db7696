/* SPDX-License-Identifier: MIT */
/*
 * peer_leak NAME CYCLES: the client half of test_fdpass_leak.  CYCLES times:
 * connect, receive a message with SP_LEAK_NFDS descriptors, see the server's
 * close as end-of-file, close everything.  Then connect once more and report
 * its descriptor count from before and after.  Exit 0 if they are equal.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "endpoint.h"
#include "fdpass.h"
#include "os.h"
#include "socket_peers.h"
#include "util.h"

/* The first receive of a cycle failed: say what the socket looked like
 * (who is at its other end, its pending error, what poll says), so that
 * a failure that comes once in a million cycles explains itself. */
__attribute__((noreturn)) static void explain(int sock, unsigned cycle,
					      int res)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN | POLLRDHUP };
	pid_t pid = 0;
	int err = 0;
	socklen_t len = sizeof(err);

	ep_peercred(sock, &pid, NULL, NULL);
	getsockopt(sock, SOL_SOCKET, SO_ERROR, &err, &len);
	poll(&pfd, 1, 0);
	fprintf(stderr,
		"peer_leak: cycle %u: first receive = %d (%s); the socket's "
		"peer is pid %d (the test: %d), SO_ERROR %d, poll revents "
		"0x%x\n",
		cycle, res, tu_errname(res), (int)pid, (int)getppid(), err,
		(unsigned)pfd.revents);
	exit(1);
}

int main(int argc, char **argv)
{
	struct sp_leak_report rep = { 0 };
	struct sp_cycle cyc;
	unsigned cycles, i, j, nfds;
	int res, sock, fds[SP_LEAK_NFDS];

	tu_check(argc == 3);
	cycles = (unsigned)strtoul(argv[2], NULL, 10);
	rep.fds_start = tu_count_fds();
	for (i = 0; i < cycles; i++) {
		tu_check_res(ep_connect(argv[1], 0, &sock), 0);
		res = fdp_recv(sock, &cyc, sizeof(cyc), fds, SP_LEAK_NFDS,
			       &nfds, SP_TIMEOUT_MS);
		if (res != (int)sizeof(cyc))
			explain(sock, i, res);
		tu_check(nfds == SP_LEAK_NFDS);
		tu_check(cyc.seq == i);
		if (i % 1000 == 0) {
			tu_check_res(tu_check_eventfd(fds[0]), 0);
			tu_check_res(os_check_memfd(fds[1], 4096), 0);
			tu_check_res(tu_check_eventfd(fds[2]), 0);
		}
		/* The server closes after one message. */
		tu_check_res(fdp_recv(sock, &cyc, sizeof(cyc), NULL, 0, &nfds,
				      SP_TIMEOUT_MS), -EPIPE);
		for (j = 0; j < SP_LEAK_NFDS; j++)
			os_close(fds[j]);
		os_close(sock);
	}
	rep.fds_end = tu_count_fds();
	rep.cycles = i;

	tu_check_res(ep_connect(argv[1], 0, &sock), 0);
	tu_check_res(fdp_send(sock, &rep, sizeof(rep), NULL, 0, SP_TIMEOUT_MS),
		     0);
	os_close(sock);
	if (rep.fds_start != rep.fds_end) {
		fprintf(stderr, "peer_leak: %d descriptors at start, %d at end\n",
			rep.fds_start, rep.fds_end);
		return 1;
	}
	return 0;
}

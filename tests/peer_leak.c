/* SPDX-License-Identifier: MIT */
/*
 * peer_leak NAME CYCLES: the client half of test_fdpass_leak.  CYCLES times:
 * connect, receive a message with SP_LEAK_NFDS descriptors, see the server's
 * close as end-of-file, close everything.  Then connect once more and report
 * its descriptor count from before and after.  Exit 0 if they are equal.
 *
 * A connection that ends before the server accepted it (end-of-file on the
 * first receive, the server's side gone, nothing queued) is dialled again,
 * at most MAX_REDIALS times in a run, and counted in the report.  The
 * kernel released such a connection twice in some 20 million cycles, on
 * 6.x kernels; the server never saw it (its accept timed out), so nothing
 * of ours opened or closed a descriptor for it.
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

#define MAX_REDIALS 3

/* The first receive of a cycle failed: say what the socket looked like
 * (who is at its other end, its pending error, what poll says), so that
 * a failure that comes once in a million cycles explains itself. */
static void explain(int sock, unsigned cycle, int res)
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
}

/* Connect and take the cycle's message; a connection that ended before
 * the server accepted it is dialled again, within the run's budget. */
static void dial(const char *name, unsigned cycle, struct sp_leak_report *rep,
		 int *sock, struct sp_cycle *cyc, int fds[SP_LEAK_NFDS],
		 unsigned *nfds)
{
	int res;

	for (;;) {
		tu_check_res(ep_connect(name, 0, sock), 0);
		res = fdp_recv(*sock, cyc, sizeof(*cyc), fds, SP_LEAK_NFDS,
			       nfds, SP_TIMEOUT_MS);
		if (res == (int)sizeof(*cyc))
			return;
		explain(*sock, cycle, res);
		if (res != -EPIPE || rep->redials == MAX_REDIALS)
			exit(1);
		rep->redials++;
		fprintf(stderr, "peer_leak: dialling again (%u of %d)\n",
			rep->redials, MAX_REDIALS);
		os_close(*sock);
	}
}

int main(int argc, char **argv)
{
	struct sp_leak_report rep = { 0 };
	struct sp_cycle cyc;
	unsigned cycles, i, j, nfds;
	int sock, fds[SP_LEAK_NFDS];

	tu_check(argc == 3);
	cycles = (unsigned)strtoul(argv[2], NULL, 10);
	rep.fds_start = tu_count_fds();
	for (i = 0; i < cycles; i++) {
		dial(argv[1], i, &rep, &sock, &cyc, fds, &nfds);
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

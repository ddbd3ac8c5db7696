/* SPDX-License-Identifier: MIT */
/*
 * peer_fdpass NAME: process B of test_fdpass_xproc.  Connects to NAME,
 * receives an eventfd and a memfd, checks what they are, reports the
 * descriptor numbers it got, then either writes a pattern into the memfd
 * (writable case) or proves it cannot and reads A's pattern (sealed case),
 * and kicks the eventfd.  Exit 0 on success, 1 with a message otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "endpoint.h"
#include "fdpass.h"
#include "os.h"
#include "socket_peers.h"
#include "util.h"

int main(int argc, char **argv)
{
	struct sp_hello hello;
	struct sp_report rep;
	struct sp_go go;
	unsigned nfds;
	int sock, fds[2], seals;
	size_t size;
	void *map;

	tu_check(argc == 2);
	tu_check_res(ep_connect(argv[1], 0, &sock), 0);
	tu_check_res(fdp_recv(sock, &hello, sizeof(hello), fds, 2, &nfds,
			      SP_TIMEOUT_MS), (long)sizeof(hello));
	tu_check(nfds == 2);
	size = (size_t)hello.size;

	/* What the library does with anything a peer hands over; a region
	 * without a write seal is refused (the "writable" case shows why a
	 * receiver must not accept one). */
	tu_check_res(tu_check_eventfd(fds[0]), 0);
	tu_check_res(os_check_memfd(fds[1], size), hello.sealed ? 0 : -EPROTO);
	fprintf(stderr, "peer_fdpass[%d]: A sent fds %d,%d; received as %d,%d\n",
		(int)getpid(), hello.a_fds[0], hello.a_fds[1], fds[0], fds[1]);

	rep.b_fds[0] = fds[0];
	rep.b_fds[1] = fds[1];
	rep.pid = (int32_t)getpid();

	if (!hello.sealed) {
		tu_check_res(fdp_send(sock, &rep, sizeof(rep), NULL, 0,
				      SP_TIMEOUT_MS), 0);
		map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			   fds[1], 0);
		tu_check(map != MAP_FAILED);
		tu_fill(map, size, hello.seed);
		tu_check_res(tu_eventfd_kick(fds[0]), 0);
	} else {
		/* F_SEAL_FUTURE_WRITE: no new writable mapping, no write(2);
		 * SHRINK / GROW: no size change.  For B too. */
		seals = fcntl(fds[1], F_GET_SEALS);
		tu_check(seals >= 0 && (seals & F_SEAL_FUTURE_WRITE));
		map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			   fds[1], 0);
		tu_check(map == MAP_FAILED && errno == EPERM);
		tu_check(write(fds[1], "x", 1) < 0 && errno == EPERM);
		tu_check(ftruncate(fds[1], (off_t)size * 2) < 0 &&
			 errno == EPERM);
		tu_check(ftruncate(fds[1], 0) < 0 && errno == EPERM);

		map = mmap(NULL, size, PROT_READ, MAP_SHARED, fds[1], 0);
		tu_check(map != MAP_FAILED);
		tu_check(tu_check_fill(map, size, hello.seed));
		tu_check_res(fdp_send(sock, &rep, sizeof(rep), NULL, 0,
				      SP_TIMEOUT_MS), 0);
		/* A writes again through the mapping it made before sealing:
		 * the change shows through our read-only mapping. */
		tu_check_res(fdp_recv(sock, &go, sizeof(go), NULL, 0, &nfds,
				      SP_TIMEOUT_MS), (long)sizeof(go));
		tu_check(tu_check_fill(map, size, go.seed));
		tu_check_res(tu_eventfd_kick(fds[0]), 0);
	}

	/* Hold on until A has seen everything: A closes first. */
	tu_check_res(fdp_recv(sock, &go, sizeof(go), NULL, 0, &nfds,
			      SP_TIMEOUT_MS), -EPIPE);
	munmap(map, size);
	os_close(fds[0]);
	os_close(fds[1]);
	os_close(sock);
	return 0;
}

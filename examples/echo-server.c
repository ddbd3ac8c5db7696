/* SPDX-License-Identifier: MIT */
/*
 * echo-server: one thread, one epoll loop, many clients; every message is
 * sent back to its client, zero copy, and no client can make the others
 * wait (see echo-loop.c).  Stops on SIGINT or SIGTERM.
 *
 *   echo-server NAME [--max-clients=N] [--ring=BYTES]
 *
 * NAME is a socket path or "@name" (abstract).  --max-clients: clients over
 * the limit are refused (they get -EUSERS); --ring: size of each ring the
 * server writes (a power of two, 4096 and up; default 1 MiB).
 * Prints a line per connect and disconnect, with the client's pid and uid.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* signalfd under -std=c11 */
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <evshm.h>

#include "echo-loop.h"

static int usage(void)
{
	fprintf(stderr, "usage: echo-server NAME [--max-clients=N] [--ring=BYTES]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct evshm_opts o = { 0 };
	struct echo_config cfg = { .log = stdout };
	struct echo_server *s;
	struct echo_stats st;
	const char *name = NULL;
	sigset_t stop;
	int sfd, res;

	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--max-clients=", 14) == 0)
			o.max_clients = (uint32_t)strtoul(argv[i] + 14, NULL, 0);
		else if (strncmp(argv[i], "--ring=", 7) == 0)
			o.ring_size = (uint32_t)strtoul(argv[i] + 7, NULL, 0);
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else
			return usage();
	}
	if (!name)
		return usage();

	/* The signals arrive as a readable descriptor in the same loop. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	sfd = signalfd(-1, &stop, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("signalfd");
		return 1;
	}

	res = echo_server_open(&s, name, &o, &cfg);
	if (res < 0) {
		fprintf(stderr, "echo-server: %s: %s\n", name, evshm_strerror(res));
		return 1;
	}
	res = echo_server_watch(s, sfd);
	printf("listening at %s\n", name);
	fflush(stdout);
	while (res == 0)
		res = echo_server_run(s, -1);
	if (res < 0)
		fprintf(stderr, "echo-server: %s\n", evshm_strerror(res));

	echo_server_stats(s, &st);
	echo_server_close(s); /* drops the clients still connected */
	close(sfd);
	printf("stopped: %llu clients served, %llu refused, %llu messages "
	       "(%llu bytes) echoed\n", (unsigned long long)st.connects,
	       (unsigned long long)st.refused, (unsigned long long)st.msgs,
	       (unsigned long long)st.bytes);
	return res < 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * peer_sleeper PIDFILE [nested]: a peer that only waits to be killed, for
 * test_peers_cleanup.  It appends its pid to PIDFILE; with "nested" it
 * first starts another peer_sleeper (a peer's own peer).  It gives up by
 * itself after 120 s.  It does nothing to die with its parent: what kills
 * it is what tests/util.c does for every peer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* Append our pid to @path, one line. */
static void note_pid(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

	tu_check(fd >= 0);
	tu_check(dprintf(fd, "%d\n", (int)getpid()) > 0);
	tu_check(close(fd) == 0);
}

int main(int argc, char **argv)
{
	const struct timespec tick = { .tv_sec = 1, .tv_nsec = 0 };
	uint64_t t0 = tu_now_ms();

	if (argc < 2) {
		fprintf(stderr, "usage: peer_sleeper PIDFILE [nested]\n");
		return 2;
	}
	note_pid(argv[1]);
	if (argc > 2 && strcmp(argv[2], "nested") == 0) {
		char *av[] = { "peer_sleeper", argv[1], NULL };
		pid_t pid;

		tu_check_res(tu_spawn(&pid, "peer_sleeper", av), 0);
	}
	while (tu_now_ms() - t0 < 120000)
		nanosleep(&tick, NULL);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * echo-loop.h: a single-threaded epoll echo server for many evshm clients,
 * shared by examples/echo-server.c and the many-clients test.
 *
 * One epoll set holds the listener's descriptor and every channel's
 * evshm_fd().  Nothing in the loop ever waits on one client: each call uses
 * timeout 0, a client whose echoes do not fit (it does not read them) keeps
 * its message peeked until evshm_fd() reports room, and a client that
 * sends without pause gets a bounded turn so that the others are served.
 */
#ifndef EVSHM_EXAMPLES_ECHO_LOOP_H
#define EVSHM_EXAMPLES_ECHO_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <evshm.h>

struct echo_server;

struct echo_stats {
	uint64_t connects;    /* clients admitted */
	uint64_t disconnects; /* clients dropped: gone, broken or failed check */
	uint64_t refused;     /* evshm_accept() failures (limits, policy, ...) */
	uint64_t msgs;        /* messages echoed */
	uint64_t bytes;       /* payload bytes echoed */
	uint64_t bad;         /* messages the check refused */
	unsigned clients;     /* connected now */
};

/* Optional check of message @seq (counted from 0 for each client) of the
 * client with process id @pid, before it is echoed; false drops the
 * client.  @msg lies in the client's shared memory: a hostile client can
 * change it while it is read. */
typedef bool echo_check_fn(void *arg, pid_t pid, uint64_t seq,
			   const void *msg, size_t len);

struct echo_config {
	FILE *log;            /* a line per connect/disconnect; NULL: quiet */
	echo_check_fn *check; /* NULL: echo anything */
	void *check_arg;
	unsigned budget;      /* messages per client per turn; 0: 64 */
};

/* Listen at @name with @opts (see evshm_listen()).  0 or -errno. */
int echo_server_open(struct echo_server **out, const char *name,
		     const struct evshm_opts *opts,
		     const struct echo_config *cfg);

/* Also wait for @fd (e.g. a signalfd): echo_server_run() returns 1 when it
 * is readable.  The caller keeps it.  0 or -errno. */
int echo_server_watch(struct echo_server *s, int fd);

/* Wait up to @timeout_ms for something to do, and do it: accept, echo,
 * drop.  0, 1 (the watched descriptor is readable) or -errno (epoll). */
int echo_server_run(struct echo_server *s, int timeout_ms);

void echo_server_stats(const struct echo_server *s, struct echo_stats *st);

/* Drop every client and close the listener.  NULL is a no-op. */
void echo_server_close(struct echo_server *s);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * echo-client: send N numbered messages to an echo server and check that
 * each one comes back intact and in order (echo-msg.h).  Up to --window
 * messages are in flight at once.  Exit 0 if all came back, 1 if not.
 *
 *   echo-client NAME [--n=N] [--max=BYTES] [--window=N] [--ring=BYTES]
 *                    [--quiet]
 *
 * The client waits to send only when no echo is owed to it, otherwise only
 * for an echo.  That order matters: a client blocked in a send while its
 * echoes fill the server's ring would wait for a server that waits for it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* usleep, ECONNREFUSED, pid_t under -std=c11 */
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <evshm.h>

#include "echo-msg.h"

static uint64_t opt(const char *arg, const char *name, uint64_t def)
{
	size_t n = strlen(name);

	if (strncmp(arg, name, n) == 0 && arg[n] == '=')
		return strtoull(arg + n + 1, NULL, 0);
	return def;
}

/* The server may not be listening yet: retry for up to 10 s. */
static int connect_retry(struct evshm_chan **c, const char *name,
			 const struct evshm_opts *o)
{
	int res = -ENOENT;

	for (int i = 0; i < 1000; i++) {
		res = evshm_connect(c, name, o, 30000);
		if (res != -ENOENT && res != -ECONNREFUSED)
			break;
		usleep(10000);
	}
	return res;
}

int main(int argc, char **argv)
{
	/* A busy server (hundreds of clients arriving at once) may take a
	 * while to answer: this client is as patient in the handshake as it
	 * is in connecting (30 s), not the default 2 s. */
	struct evshm_opts o = { .handshake_timeout_ms = 30000 };
	struct evshm_chan *c;
	uint64_t n = 10000, window = 64, sent = 0, got = 0;
	size_t max = ECHO_MSG_MAX;
	int quiet = 0, res;
	uint8_t *buf;

	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: echo-client NAME [--n=N] [--max=BYTES] "
			"[--window=N] [--ring=BYTES] [--quiet]\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		n = opt(argv[i], "--n", n);
		max = (size_t)opt(argv[i], "--max", max);
		window = opt(argv[i], "--window", window);
		o.ring_size = (uint32_t)opt(argv[i], "--ring", o.ring_size);
		quiet |= strcmp(argv[i], "--quiet") == 0;
	}
	if (max < ECHO_MSG_MIN || window == 0) {
		fprintf(stderr, "echo-client: --max must be >= %u, --window >= 1\n",
			ECHO_MSG_MIN);
		return 2;
	}
	buf = malloc(max);
	if (!buf)
		return 1;

	res = connect_retry(&c, argv[1], &o);
	if (res < 0) {
		fprintf(stderr, "echo-client: %s: %s\n", argv[1], evshm_strerror(res));
		free(buf);
		return 1;
	}
	if (max > evshm_max_msg(c)) {
		fprintf(stderr, "echo-client: --max %zu exceeds the ring's %zu\n",
			max, evshm_max_msg(c));
		res = -EMSGSIZE;
		goto out;
	}

	while (got < n) {
		/* Send ahead without waiting, up to the window. */
		while (sent < n && sent - got < window) {
			size_t len = echo_msg_len(sent, max);

			echo_msg_fill(buf, len, sent);
			/* With no echo owed, waiting for room is safe (the
			 * server may not have released our last message yet,
			 * though we have its echo). */
			res = evshm_send(c, buf, len, sent == got ? 60000 : 0);
			if (res == -EAGAIN)
				break; /* our ring is full: read echoes first */
			if (res < 0)
				goto out;
			sent++;
		}
		/* Then take one echo, waiting if need be: one is owed. */
		res = evshm_recv(c, buf, max, 60000);
		if (res < 0)
			goto out;
		if (!echo_msg_check(buf, (size_t)res, got, max)) {
			fprintf(stderr, "echo-client: echo %" PRIu64 " is wrong "
				"(%d bytes)\n", got, res);
			res = -EBADMSG;
			goto out;
		}
		got++;
	}
	res = 0;
	if (!quiet)
		printf("echo-client %d: %" PRIu64 " messages echoed and verified\n",
		       (int)getpid(), got);
out:
	if (res < 0)
		fprintf(stderr, "echo-client %d: after %" PRIu64 " sent, %" PRIu64
			" verified: %s\n", (int)getpid(), sent, got,
			evshm_strerror(res));
	evshm_close(c);
	free(buf);
	return res < 0;
}

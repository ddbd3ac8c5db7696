/* SPDX-License-Identifier: MIT */
/*
 * peer_server: the client process of the server tests (limits, access
 * control, descriptors with messages).  A separate program, started with
 * exec: it shares nothing with the test but the socket name.
 *
 *   peer_server MODE NAME [--expect=ERR] [--tries=N] [--n=N] [--ring=B]
 *                         [--peer-ring=B] [--user=NAME] [--refuse-server]
 * MODE:
 *   connect     connect --tries times (default 1); each must give --expect
 *               (an errno name such as EUSERS, or 0, the default).  When
 *               admitted: echo every message until the hang-up; a message
 *               "bye" makes it close and exit instead.
 *   stall       send echo-msg messages until the ring is full, never read;
 *               then print "full N" (N: messages sent) and wait to be
 *               killed
 *   fds-source  send --n fdmsg messages (0: until the channel breaks, which
 *               must be by -EPIPE), then a struct fdmsg_report, then wait
 *               for the hang-up
 *   fds-sink    receive and check --n fdmsg messages, then report
 *   fds-slow-sink  the same, after a pause of 300 ms
 *   fds-close   receive and check --n fdmsg messages, peek the next one
 *               (its descriptors now ours) and close the channel mid-stream
 *   fds-script  the edge cases of test_server_fds (see there)
 *   --user=NAME drop to that user (and its group, no supplementary groups)
 *               before connecting: needs root
 *   --refuse-server  connect with an authorize callback that says -EPERM
 * Every mode checks, after its channel is closed, that its descriptor count
 * is back to what it was before connecting.  Exit 0 when everything went
 * as expected, 1 otherwise with the reason on stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "echo-msg.h"
#include "evshm.h"
#include "fdmsg.h"
#include "util.h"

static uint64_t opt_u64(const char *arg, const char *name, uint64_t def)
{
	size_t n = strlen(name);
	if (strncmp(arg, name, n) == 0 && arg[n] == '=')
		return strtoull(arg + n + 1, NULL, 0);
	return def;
}

static const char *opt_str(const char *arg, const char *name, const char *def)
{
	size_t n = strlen(name);
	if (strncmp(arg, name, n) == 0 && arg[n] == '=')
		return arg + n + 1;
	return def;
}

static void become(const char *user)
{
	tu_check_res(tu_become(user), 0);
}

static int refuse(void *arg, pid_t pid, uid_t uid, gid_t gid)
{
	(void)arg;
	(void)pid;
	(void)uid;
	(void)gid;
	return -EPERM;
}

static void echo(struct evshm_chan *c)
{
	size_t cap = evshm_max_msg(c) + 1;
	uint8_t *buf = malloc(cap);
	int res;
	tu_check(buf);
	while ((res = evshm_recv(c, buf, cap, -1)) >= 0) {
		if (res == 3 && memcmp(buf, "bye", 3) == 0)
			break;
		tu_check_res(evshm_send(c, buf, (size_t)res, -1), 0);
	}
	if (res < 0)
		tu_check_res(res, -EPIPE);
	free(buf);
}

static void stall(struct evshm_chan *c)
{
	uint8_t buf[ECHO_MSG_MAX];
	uint64_t i = 0;
	int res;
	/* Fill our ring (the server's echoes fill its own), then sit. */
	for (int tries = 0; tries < 50; tries++) {
		for (;;) {
			size_t len = echo_msg_len(i, ECHO_MSG_MAX);
			echo_msg_fill(buf, len, i);
			res = evshm_send(c, buf, len, 0);
			if (res < 0)
				break;
			i++;
		}
		tu_check_res(res, -EAGAIN);
		usleep(2000);
	}
	/* Sends no more: the test can wait for its server to stand still. */
	printf("full %" PRIu64 "\n", i);
	fflush(stdout);
	for (;;)
		pause();
}

static void report(struct evshm_chan *c, int64_t fds_connected,
		   uint64_t verified, uint64_t retries, const int32_t *results)
{
	struct fdmsg_report r = { fds_connected, tu_count_fds(), verified,
				  retries, { 0 } };
	if (results)
		memcpy(r.results, results, sizeof(r.results));
	tu_check_res(evshm_send(c, &r, sizeof(r), 10000), 0);
}

static void wait_hangup(struct evshm_chan *c)
{
	uint8_t b;
	tu_check_res(evshm_recv(c, &b, 1, 60000), -EPIPE);
}

/* The peer's half of test_fds_edge_cases, in order. */
static void script(struct evshm_chan *c, int64_t fds_connected)
{
	int32_t results[4];
	int fd;

	tu_check_res(fdmsg_send(c, 1000, 3, false, 10000, NULL), 0);
	tu_check_res(fdmsg_send(c, 1001, 2, false, 10000, NULL), 0);
	tu_check_res(fdmsg_send(c, 1002, 1, false, 10000, NULL), 0);
	tu_check_res(fdmsg_send(c, 1003, 2, false, 10000, NULL), 0);
	tu_check_res(fdmsg_send(c, 1004, EVSHM_MAX_FDS, false, 10000, NULL), 0);
	tu_check_res(fdmsg_send(c, 1005, 1, true, 10000, NULL), 0);
	tu_check_res(fdmsg_send(c, 1006, 0, false, 10000, NULL), 0);

	/* Refused sends leave nothing behind: no record, no descriptors on
	 * the socket, the descriptor sequence still in step (1008 below). */
	int many[EVSHM_MAX_FDS + 1];
	tu_check_res(fdmsg_open(1007, 0, &fd), 0);
	for (int i = 0; i <= EVSHM_MAX_FDS; i++)
		many[i] = fd;
	results[0] = evshm_send_fds(c, "x", 1, many, EVSHM_MAX_FDS + 1, 1000);
	results[1] = evshm_send_fds(c, "x", 1, many, 0, 1000);
	results[2] = evshm_send_fds(c, "x", 1, NULL, 1, 1000);
	close(fd);
	results[3] = evshm_send_fds(c, "x", 1, &fd, 1, 1000); /* closed: EBADF */
	report(c, fds_connected, 0, 0, results);
	tu_check_res(fdmsg_send(c, 1008, 1, false, 10000, NULL), 0);

	/* And one the other way. */
	tu_check_res(fdmsg_recv(c, 2000, 3, false, 10000), 0);
	report(c, fds_connected, 1, 0, NULL);
}

int main(int argc, char **argv)
{
	/* Descriptors are opt-in per side: this client takes them unless
	 * told not to. */
	struct evshm_opts o = { .flags = EVSHM_OPT_FDS };
	struct evshm_chan *c = NULL;
	const char *expect_s = "0", *user = NULL;
	uint64_t n = 1000, tries = 1, retries = 0;
	int res;

	if (argc < 3) {
		fprintf(stderr, "usage: peer_server MODE NAME [options]\n");
		return 2;
	}
	const char *mode = argv[1], *name = argv[2];
	for (int i = 3; i < argc; i++) {
		expect_s = opt_str(argv[i], "--expect", expect_s);
		user = opt_str(argv[i], "--user", user);
		tries = opt_u64(argv[i], "--tries", tries);
		n = opt_u64(argv[i], "--n", n);
		o.ring_size = (uint32_t)opt_u64(argv[i], "--ring", o.ring_size);
		o.peer_ring_size = (uint32_t)opt_u64(argv[i], "--peer-ring",
						     o.peer_ring_size);
		if (strcmp(argv[i], "--refuse-server") == 0)
			o.authorize = refuse;
		if (strcmp(argv[i], "--no-fds") == 0)
			o.flags &= ~EVSHM_OPT_FDS;
	}
	int expect = tu_errno_arg(expect_s);
	if (user)
		become(user);

	int fds0 = tu_count_fds();
	for (uint64_t t = 0; t < tries; t++) {
		res = tu_connect_retry(&c, name, &o, 10000, NULL);
		if (res != expect)
			tu_die(__FILE__, __LINE__, "connect (attempt)", true, res);
		if (res == 0 && t + 1 < tries) {
			evshm_close(c);
			c = NULL;
		}
		tu_check(tu_count_fds() == fds0 || res == 0);
	}
	if (expect != 0)
		return 0; /* refused as expected, nothing left open */
	int64_t fds_connected = tu_count_fds();

	if (strcmp(mode, "connect") == 0) {
		echo(c);
	} else if (strcmp(mode, "stall") == 0) {
		stall(c);
	} else if (strcmp(mode, "fds-source") == 0) {
		uint64_t i;
		for (i = 0; n == 0 || i < n; i++) {
			res = fdmsg_send(c, i, fdmsg_nfds(i), false, -1, &retries);
			if (res < 0)
				break;
		}
		if (n == 0) {
			tu_check_res(res, -EPIPE);
		} else {
			report(c, fds_connected, 0, retries, NULL);
			wait_hangup(c);
		}
	} else if (strcmp(mode, "fds-sink") == 0 ||
		   strcmp(mode, "fds-slow-sink") == 0) {
		/* slow: let the sender fill everything first */
		if (strcmp(mode, "fds-slow-sink") == 0)
			usleep(300000);
		for (uint64_t i = 0; i < n; i++)
			tu_check_res(fdmsg_recv(c, i, fdmsg_nfds(i), false, 60000), 0);
		report(c, fds_connected, n, 0, NULL);
		wait_hangup(c);
	} else if (strcmp(mode, "fds-close") == 0) {
		uint64_t i;
		for (i = 0; i < n; i++)
			tu_check_res(fdmsg_recv(c, i, fdmsg_nfds(i), false, 60000), 0);
		/* Peek one that carries descriptors: they are loaded into the
		 * channel, and more wait on the socket.  Close on all that. */
		while (fdmsg_nfds(i) == 0)
			tu_check_res(fdmsg_recv(c, i++, 0, false, 60000), 0);
		const void *p;
		size_t len;
		tu_check_res(evshm_peek(c, &p, &len, 60000), 0);
		tu_check(len == fdmsg_len(i));
	} else if (strcmp(mode, "fds-script") == 0) {
		script(c, fds_connected);
		wait_hangup(c);
	} else {
		fprintf(stderr, "peer_server: unknown mode %s\n", mode);
		return 2;
	}
	evshm_close(c);
	res = tu_count_fds();
	if (res != fds0) {
		fprintf(stderr, "peer_server %s: %d descriptors open after close, "
			"%d before connecting\n", mode, res, fds0);
		return 1;
	}
	return 0;
}

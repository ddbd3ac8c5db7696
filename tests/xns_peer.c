/* SPDX-License-Identifier: MIT */
/*
 * xns_peer: one end of a channel for the container test (container/xns.sh),
 * which runs it in namespaces of its own.  Built from the public API only
 * and linked with libevshm.a, like a program shipped in a container image.
 *
 *   xns_peer server|client PATH [--msgs N] [--mode OCTAL] [--allow-uid UID]
 *
 * It says what it sees on stdout, one line each, so the test can compare
 * it with what the kernel should map:
 *   self pid=P uid=U gid=G            its own ids (getpid, geteuid, getegid)
 *   listening                         (server) the socket exists
 *   authorize pid=P uid=U gid=G       (--allow-uid) what the callback got
 *   peer pid=P uid=U gid=G            evshm_peer_cred()
 *   exchanged N                       N verified messages each way
 *   peer gone                         evshm_recv() then ended with -EPIPE
 *   error CALL -ERRNO TEXT            and exit 3 (could not meet) or 1
 *
 * --allow-uid admits exactly that uid (as this side sees it) with an
 * authorize callback; without it the library's default policy applies.
 * After the exchange it waits (bounded) for the peer to go, which the
 * test brings about with SIGKILL.  Exit 0 only if everything above held.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evshm.h"
#include "msgpat.h"

#define MEET_TIMEOUT_MS 20000
#define IO_TIMEOUT_MS 10000
#define MSG_MAX (64 * 1024)
/* The server's messages carry other sequence numbers than the client's. */
#define SERVER_SEQ (UINT64_C(1) << 40)

static long allow_uid = -1;

static int authorize(void *arg, pid_t pid, uid_t uid, gid_t gid)
{
	(void)arg;
	printf("authorize pid=%d uid=%u gid=%u\n", (int)pid, (unsigned)uid,
	       (unsigned)gid);
	return (long)uid == allow_uid ? 0 : -EACCES;
}

static int fail(const char *call, int err, int code)
{
	printf("error %s %d %s\n", call, err, evshm_strerror(err));
	return code;
}

/* Send message number @seq of a pattern stream (msgpat.h). */
static int send_one(struct evshm_chan *c, uint8_t *buf, size_t max, uint64_t seq)
{
	size_t len = pat_len(seq, max);

	pat_fill(buf, len, seq);
	return evshm_send(c, buf, len, IO_TIMEOUT_MS);
}

/* Receive one message; it must be number @seq of the peer's stream. */
static int recv_one(struct evshm_chan *c, uint8_t *buf, size_t max, uint64_t seq)
{
	int n = evshm_recv(c, buf, max, IO_TIMEOUT_MS);

	if (n < 0)
		return n;
	if (!pat_check(buf, (size_t)n, seq, max)) {
		printf("message %llu: got %d bytes claiming %llu\n",
		       (unsigned long long)seq, n,
		       (unsigned long long)pat_seq(buf, (size_t)n));
		return -EBADMSG;
	}
	return 0;
}

/* Ping-pong @n verified messages: the client speaks first. */
static int exchange(struct evshm_chan *c, uint64_t n, int server)
{
	size_t max = evshm_max_msg(c) < MSG_MAX ? evshm_max_msg(c) : MSG_MAX;
	uint8_t *buf = malloc(max);
	int res = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t i = 0; i < n && res == 0; i++) {
		if (server) {
			res = recv_one(c, buf, max, i);
			if (res == 0)
				res = send_one(c, buf, max, SERVER_SEQ + i);
		} else {
			res = send_one(c, buf, max, i);
			if (res == 0)
				res = recv_one(c, buf, max, SERVER_SEQ + i);
		}
	}
	free(buf);
	return res;
}

static int usage(void)
{
	fprintf(stderr, "usage: xns_peer server|client PATH [--msgs N] "
			"[--mode OCTAL] [--allow-uid UID]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "msgs", required_argument, NULL, 'n' },
		{ "mode", required_argument, NULL, 'm' },
		{ "allow-uid", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	struct evshm_opts o = { 0 };
	struct evshm_listener *l = NULL;
	struct evshm_chan *c = NULL;
	uint64_t msgs = 200;
	int opt, res, server;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint8_t byte;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n': msgs = strtoull(optarg, NULL, 0); break;
		case 'm': o.mode = (uint32_t)strtoul(optarg, NULL, 8); break;
		case 'u': allow_uid = strtol(optarg, NULL, 0); break;
		default: return usage();
		}
	}
	if (argc - optind != 2)
		return usage();
	server = strcmp(argv[optind], "server") == 0;
	if (!server && strcmp(argv[optind], "client") != 0)
		return usage();
	if (allow_uid >= 0)
		o.authorize = authorize;

	printf("self pid=%d uid=%u gid=%u\n", (int)getpid(),
	       (unsigned)geteuid(), (unsigned)getegid());
	if (server) {
		res = evshm_listen(&l, argv[optind + 1], &o);
		if (res < 0)
			return fail("listen", res, 3);
		printf("listening\n");
		res = evshm_accept(l, &c, MEET_TIMEOUT_MS);
		evshm_listener_close(l);
		if (res < 0)
			return fail("accept", res, 3);
	} else {
		res = evshm_connect(&c, argv[optind + 1], &o, MEET_TIMEOUT_MS);
		if (res < 0)
			return fail("connect", res, 3);
	}

	res = evshm_peer_cred(c, &pid, &uid, &gid);
	if (res < 0)
		goto out_fail;
	printf("peer pid=%d uid=%u gid=%u\n", (int)pid, (unsigned)uid,
	       (unsigned)gid);

	res = exchange(c, msgs, server);
	if (res < 0)
		goto out_fail;
	printf("exchanged %llu\n", (unsigned long long)msgs);

	/* Nothing more comes: the next thing to arrive is the peer's end. */
	res = evshm_recv(c, &byte, sizeof(byte), MEET_TIMEOUT_MS);
	if (res != -EPIPE)
		goto out_fail;
	printf("peer gone\n");
	evshm_close(c);
	return 0;

out_fail:
	evshm_close(c);
	return fail("channel", res < 0 ? res : -EBADMSG, 1);
}

/* SPDX-License-Identifier: MIT */
/*
 * test_fdpass: the SCM_RIGHTS layer on a socketpair: the strict receive
 * path (a rejected message leaves no descriptor behind, and is consumed),
 * the 253-descriptor limit, end of file, timeouts and argument checks.
 *
 * The pairs are made blocking on purpose: fdp_* must honour timeout 0 and
 * deadlines whatever the socket's mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdpass.h"
#include "os.h"
#include "util.h"

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif

struct pair {
	int a, b;
};

static int setup(void **state)
{
	static struct pair p;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	p.a = sv[0];
	p.b = sv[1];
	*state = &p;
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;

	os_close(p->a);
	os_close(p->b);
	return 0;
}

/* @n eventfds into @fds. */
static void make_eventfds(int *fds, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		tu_assert_res(tu_eventfd(&fds[i]), 0);
}

static void close_fds(int *fds, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		os_close(fds[i]);
}

/* The queue is empty: nothing was left behind by a failed call. */
static void assert_empty(int sock)
{
	char c;
	unsigned nfds;

	tu_assert_res(fdp_recv(sock, &c, 1, NULL, 0, &nfds, 0), -EAGAIN);
}

static void test_data_no_fds(void **state)
{
	struct pair *p = *state;
	char buf[16];
	int fds[4];
	unsigned nfds = 99;

	tu_assert_res(fdp_send(p->a, "hello", 5, NULL, 0, 0), 0);
	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), fds, 4, &nfds, 0), 5);
	assert_int_equal(nfds, 0);
	assert_memory_equal(buf, "hello", 5);
}

static void test_fds_no_data(void **state)
{
	struct pair *p = *state;
	int efd, got = -1;
	unsigned nfds;
	char buf[4];

	/* 0 bytes with descriptors is a message, not end-of-file. */
	tu_assert_res(tu_eventfd(&efd), 0);
	tu_assert_res(fdp_send(p->a, NULL, 0, &efd, 1, 0), 0);
	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), &got, 1, &nfds, 0), 0);
	assert_int_equal(nfds, 1);
	tu_assert_res(tu_check_eventfd(got), 0);
	/* Received close-on-exec (MSG_CMSG_CLOEXEC). */
	assert_true(fcntl(got, F_GETFD) & FD_CLOEXEC);
	os_close(got);
	os_close(efd);
}

static void test_too_many_fds(void **state)
{
	struct pair *p = *state;
	int sent[3], got[3] = { -1, -1, -1 };
	unsigned nfds = 99;
	char buf[8];
	int before;

	make_eventfds(sent, 3);
	tu_assert_res(fdp_send(p->a, "three", 5, sent, 3, 0), 0);
	tu_assert_res(fdp_send(p->a, "next", 4, NULL, 0, 0), 0);
	tu_assert_res(fdp_send(p->a, "one", 3, sent, 1, 0), 0);
	before = tu_count_fds();

	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), got, 2, &nfds, 0),
		      -EOVERFLOW);
	assert_int_equal(nfds, 0);
	/* Nothing was handed out, and the three that arrived are closed. */
	assert_int_equal(got[0], -1);
	assert_int_equal(got[1], -1);
	assert_int_equal(tu_count_fds(), before);

	/* The rejected message was consumed: the next one is next. */
	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), got, 2, &nfds, 0), 4);
	assert_memory_equal(buf, "next", 4);

	/* max_fds 0 means "no descriptors welcome". */
	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), NULL, 0, &nfds, 0),
		      -EOVERFLOW);
	assert_int_equal(tu_count_fds(), before);
	assert_empty(p->b);
	close_fds(sent, 3);
}

static void test_data_too_long(void **state)
{
	struct pair *p = *state;
	char msg[16] = "0123456789abcdef", buf[16];
	int sent[2], got[2];
	unsigned nfds = 99;
	int before;

	make_eventfds(sent, 2);
	tu_assert_res(fdp_send(p->a, msg, sizeof(msg), sent, 2, 0), 0);
	tu_assert_res(fdp_send(p->a, "next", 4, NULL, 0, 0), 0);
	before = tu_count_fds();

	tu_assert_res(fdp_recv(p->b, buf, 8, got, 2, &nfds, 0), -EMSGSIZE);
	assert_int_equal(nfds, 0);
	assert_int_equal(tu_count_fds(), before);
	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), got, 2, &nfds, 0), 4);
	assert_memory_equal(buf, "next", 4);
	assert_empty(p->b);
	close_fds(sent, 2);
}

/* MSG_CTRUNC for real: the kernel installs descriptors until it hits our
 * RLIMIT_NOFILE, drops the rest and flags the message. */
static void test_ctrunc(void **state)
{
	struct pair *p = *state;
	struct rlimit old, low;
	int sent[20], got[20], before, nfree, limit = 0, res, fd;
	unsigned nfds = 99, i;
	char buf[4];

	make_eventfds(sent, 20);
	tu_assert_res(fdp_send(p->a, "x", 1, sent, 20, 0), 0);
	before = tu_count_fds();

	/* A limit that leaves exactly two free descriptor numbers below it
	 * (descriptors already open above a lowered limit stay open). */
	for (fd = 0, nfree = 0; nfree < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && ++nfree == 3)
			limit = fd;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)limit;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	res = fdp_recv(p->b, buf, sizeof(buf), got, 20, &nfds, 0);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);

	if (res == 1 && nfds == 20) {
		/* valgrind keeps RLIMIT_NOFILE to itself: the kernel never
		 * sees the lower limit. */
		for (i = 0; i < nfds; i++)
			os_close(got[i]);
		close_fds(sent, 20);
		print_message("all %u descriptors arrived despite "
			      "RLIMIT_NOFILE %d (valgrind?)\n", nfds, limit);
		skip();
	}
	tu_assert_res(res, -EOVERFLOW);
	assert_int_equal(nfds, 0);
	assert_int_equal(tu_count_fds(), before);
	assert_empty(p->b);
	close_fds(sent, 20);
}

/* Control messages nobody asked for: the message is refused and every
 * descriptor closed, including the pidfd that SCM_PIDFD installs. */
static void test_unexpected_cmsg(void **state)
{
	struct pair *p = *state;
	int sent[2], got[2], one = 1, zero = 0, before;
	unsigned nfds = 99;
	char buf[4];

	make_eventfds(sent, 2);
	before = tu_count_fds();

	assert_int_equal(setsockopt(p->b, SOL_SOCKET, SO_PASSCRED, &one,
				    sizeof(one)), 0);
	tu_assert_res(fdp_send(p->a, "c", 1, sent, 2, 0), 0);
	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), got, 2, &nfds, 0),
		      -EPROTO);
	assert_int_equal(nfds, 0);
	assert_int_equal(tu_count_fds(), before);
	assert_int_equal(setsockopt(p->b, SOL_SOCKET, SO_PASSCRED, &zero,
				    sizeof(zero)), 0);

	if (setsockopt(p->b, SOL_SOCKET, SO_PASSPIDFD, &one, sizeof(one)) < 0) {
		close_fds(sent, 2);
		print_message("SO_PASSPIDFD: %s\n", strerror(errno));
		skip();
	}
	tu_assert_res(fdp_send(p->a, "p", 1, sent, 2, 0), 0);
	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), got, 2, &nfds, 0),
		      -EPROTO);
	assert_int_equal(nfds, 0);
	assert_int_equal(tu_count_fds(), before);
	assert_int_equal(setsockopt(p->b, SOL_SOCKET, SO_PASSPIDFD, &zero,
				    sizeof(zero)), 0);
	close_fds(sent, 2);
}

/* Send @n copies of @fd with a raw sendmsg(): what the kernel accepts. */
static int raw_send_n(int sock, int fd, unsigned n)
{
	static union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(300 * sizeof(int))];
	} ctrl;
	struct iovec iov = { .iov_base = "r", .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctrl.buf,
			      .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	unsigned i;

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	for (i = 0; i < n; i++)
		memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static void test_max_fds(void **state)
{
	struct pair *p = *state;
	int sent[FDP_MAX_FDS + 1], got[FDP_MAX_FDS];
	unsigned nfds = 0, i;
	int efd, before;
	char buf[4];

	/* FDP_MAX_FDS is the kernel's SCM_MAX_FD. */
	tu_assert_res(tu_eventfd(&efd), 0);
	tu_assert_res(raw_send_n(p->a, efd, FDP_MAX_FDS + 1), -EINVAL);
	assert_empty(p->b);

	/* The same open file 253 times: 253 new descriptors. */
	for (i = 0; i < FDP_MAX_FDS + 1; i++)
		sent[i] = efd;
	tu_assert_res(fdp_send(p->a, sent, FDP_MAX_FDS + 1, sent,
			       FDP_MAX_FDS + 1, 0), -EINVAL);
	assert_empty(p->b);

	before = tu_count_fds();
	tu_assert_res(fdp_send(p->a, "m", 1, sent, FDP_MAX_FDS, 0), 0);
	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), got, FDP_MAX_FDS, &nfds,
			       0), 1);
	assert_int_equal(nfds, FDP_MAX_FDS);
	assert_int_equal(tu_count_fds(), before + FDP_MAX_FDS);
	for (i = 0; i < nfds; i++) {
		tu_assert_res(tu_check_eventfd(got[i]), 0);
		if (i > 0)
			assert_true(got[i] != got[i - 1]);
	}
	/* They are one eventfd: a kick on the last drains through efd. */
	tu_assert_res(tu_eventfd_kick(got[nfds - 1]), 0);
	tu_assert_res(tu_eventfd_drain(efd), 1);
	close_fds(got, nfds);
	assert_int_equal(tu_count_fds(), before);
	os_close(efd);
}

static void test_eof(void **state)
{
	struct pair *p = *state;
	unsigned nfds = 99;
	char buf[4];

	os_close(p->a);
	p->a = -1;
	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), NULL, 0, &nfds, -1),
		      -EPIPE);
	assert_int_equal(nfds, 0);
	/* And again: EOF stays EOF. */
	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), NULL, 0, &nfds, 0),
		      -EPIPE);
	/* No SIGPIPE (it would kill the test): MSG_NOSIGNAL. */
	tu_assert_res(fdp_send(p->b, "x", 1, NULL, 0, 0), -EPIPE);
}

static void test_reset(void **state)
{
	struct pair *p = *state;
	unsigned nfds;
	char buf[4];

	/* The peer went away without reading what we sent it. */
	tu_assert_res(fdp_send(p->b, "unread", 6, NULL, 0, 0), 0);
	os_close(p->a);
	p->a = -1;
	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), NULL, 0, &nfds, 0),
		      -ECONNRESET);
}

static void test_recv_timeouts(void **state)
{
	struct pair *p = *state;
	unsigned nfds;
	char buf[4];

	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), NULL, 0, &nfds, 0),
		      -EAGAIN);
	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), NULL, 0, &nfds, 50),
		      -ETIMEDOUT);
}

static void test_send_timeouts(void **state)
{
	struct pair *p = *state;
	char msg[4096] = { 0 }, buf[4096];
	unsigned nfds, sent = 0;
	int res;

	/* Fill the peer's queue until the kernel says "no room". */
	while ((res = fdp_send(p->a, msg, sizeof(msg), NULL, 0, 0)) == 0)
		sent++;
	tu_assert_res(res, -EAGAIN);
	assert_true(sent > 0);
	tu_assert_res(fdp_send(p->a, msg, sizeof(msg), NULL, 0, 50),
		      -ETIMEDOUT);
	/* Room again once the reader takes one. */
	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), NULL, 0, &nfds, 0),
		      sizeof(buf));
	tu_assert_res(fdp_send(p->a, msg, sizeof(msg), NULL, 0, 1000), 0);
}

static void test_bad_args(void **state)
{
	struct pair *p = *state;
	int efd, pfd[2], bad = 1000;
	unsigned nfds;
	char buf[4];

	tu_assert_res(fdp_send(p->a, NULL, 0, NULL, 0, 0), -EINVAL);
	tu_assert_res(fdp_send(p->a, "x", 0, NULL, 0, 0), -EINVAL);
	tu_assert_res(fdp_send(p->a, NULL, 1, NULL, 0, 0), -EINVAL);
	tu_assert_res(fdp_send(p->a, "x", 1, NULL, 1, 0), -EINVAL);
	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), NULL, 0, NULL, 0),
		      -EINVAL);
	tu_assert_res(fdp_recv(p->b, NULL, 4, NULL, 0, &nfds, 0), -EINVAL);
	tu_assert_res(fdp_recv(p->b, buf, sizeof(buf), NULL, 1, &nfds, 0),
		      -EINVAL);

	/* A descriptor we do not have: the kernel refuses the message. */
	tu_assert_res(fdp_send(p->a, "x", 1, &bad, 1, 0), -EBADF);
	assert_empty(p->b);

	tu_assert_res(fdp_recv(-1, buf, sizeof(buf), NULL, 0, &nfds, 0),
		      -EBADF);
	tu_assert_res(fdp_send(-1, "x", 1, NULL, 0, 0), -EBADF);
	tu_assert_res(tu_eventfd(&efd), 0);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	tu_assert_res(fdp_send(pfd[1], "x", 1, NULL, 0, 0), -ENOTSOCK);
	tu_assert_res(fdp_recv(pfd[0], buf, sizeof(buf), NULL, 0, &nfds, 0),
		      -ENOTSOCK);
	os_close(pfd[0]);
	os_close(pfd[1]);
	os_close(efd);
}

int main(int argc, char **argv)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_data_no_fds),   T(test_fds_no_data),
		T(test_too_many_fds),  T(test_data_too_long),
		T(test_ctrunc),        T(test_unexpected_cmsg),
		T(test_max_fds),       T(test_eof),
		T(test_reset),         T(test_recv_timeouts),
		T(test_send_timeouts), T(test_bad_args),
	};
#undef T
	return TU_RUN(tests, argc, argv);
}

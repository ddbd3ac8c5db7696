/* SPDX-License-Identifier: MIT */
/*
 * test_os: the descriptor wrappers and checks of os.c: what a sealed memfd
 * still allows, what the receive-side checks reject, pipe kick / drain,
 * closing what a peer chose, and deadlines that survive signals.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#include "os.h"
#include "util.h"

#define SZ 8192u

static void test_memfd_seal(void **state)
{
	unsigned char *rw, *again;
	int fd, seals;

	(void)state;
	tu_assert_res(os_memfd("t", SZ, &fd), 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* Not sealed yet: a receiver must refuse it. */
	tu_assert_res(os_check_memfd(fd, SZ), -EPROTO);

	rw = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(rw != MAP_FAILED);
	tu_assert_res(os_memfd_seal(fd), 0);
	seals = fcntl(fd, F_GET_SEALS);
	assert_int_equal(seals, F_SEAL_SHRINK | F_SEAL_GROW |
				F_SEAL_FUTURE_WRITE | F_SEAL_SEAL);
	tu_assert_res(os_check_memfd(fd, SZ), 0);
	tu_assert_res(os_check_memfd(fd, SZ - 1), -EPROTO);
	tu_assert_res(os_check_memfd(fd, SZ * 2), -EPROTO);

	/* The mapping made before sealing stays writable ... */
	memset(rw, 0xa5, SZ);
	/* ... but nothing new can write, resize or unseal. */
	again = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(again == MAP_FAILED && errno == EPERM);
	assert_true(write(fd, "x", 1) < 0 && errno == EPERM);
	assert_true(ftruncate(fd, SZ / 2) < 0 && errno == EPERM);
	assert_true(ftruncate(fd, SZ * 2) < 0 && errno == EPERM);
	assert_true(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) < 0 && errno == EPERM);
	/* A second seal call fails too (F_SEAL_SEAL). */
	tu_assert_res(os_memfd_seal(fd), -EPERM);

	again = mmap(NULL, SZ, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(again != MAP_FAILED);
	assert_int_equal(again[SZ - 1], 0xa5);
	munmap(again, SZ);
	munmap(rw, SZ);
	os_close(fd);
}

static void test_reopen_ro(void **state)
{
	unsigned char *p;
	int fd, ro;

	(void)state;
	tu_assert_res(os_memfd("t", SZ, &fd), 0);
	assert_int_equal(pwrite(fd, "abc", 3, 100), 3);
	tu_assert_res(os_reopen_ro(fd, &ro), 0);
	assert_int_equal(fcntl(ro, F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_true(fcntl(ro, F_GETFD) & FD_CLOEXEC);
	/* Read-only open file description: no writable shared mapping. */
	p = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
	assert_true(p == MAP_FAILED && errno == EACCES);
	p = mmap(NULL, SZ, PROT_READ, MAP_SHARED, ro, 0);
	assert_true(p != MAP_FAILED);
	assert_memory_equal(p + 100, "abc", 3);
	munmap(p, SZ);
	os_close(ro);
	os_close(fd);
	tu_assert_res(os_reopen_ro(-1, &ro), -EINVAL);
}

static void test_checks_reject(void **state)
{
	char path[256];
	int efd, mfd, pfd[2], ffd, loose, nowrite, huge;
	unsigned char *w;

	(void)state;
	tu_assert_res(tu_eventfd(&efd), 0);
	tu_assert_res(os_memfd("t", SZ, &mfd), 0);
	tu_assert_res(os_memfd_seal(mfd), 0);
	tu_assert_res(os_pipe(pfd), 0);
	snprintf(path, sizeof(path), "%s/regular", tu_tmpdir());
	ffd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(ffd >= 0);
	assert_int_equal(ftruncate(ffd, SZ), 0);

	tu_assert_res(os_check_pipe_rd(pfd[0]), 0);
	tu_assert_res(os_check_pipe_rd(pfd[1]), -EPROTO); /* the write end */
	tu_assert_res(os_check_pipe_rd(efd), -EPROTO);
	tu_assert_res(os_check_pipe_rd(mfd), -EPROTO);
	tu_assert_res(os_check_pipe_rd(ffd), -EPROTO);
	tu_assert_res(os_check_pipe_rd(-1), -EPROTO);

	tu_assert_res(os_check_memfd(mfd, SZ), 0);
	tu_assert_res(os_check_memfd(efd, SZ), -EPROTO);
	tu_assert_res(os_check_memfd(pfd[0], SZ), -EPROTO);
	/* Right size, but a file that others can open and resize. */
	tu_assert_res(os_check_memfd(ffd, SZ), -EPROTO);
	tu_assert_res(os_check_memfd(-1, SZ), -EPROTO);

	/* Sealed against resizing but not against writes: a peer could
	 * punch a hole in it.  A write seal is required. */
	tu_assert_res(os_memfd("t", SZ, &nowrite), 0);
	assert_int_equal(fcntl(nowrite, F_ADD_SEALS, F_SEAL_SHRINK |
				F_SEAL_GROW | F_SEAL_SEAL), 0);
	tu_assert_res(os_check_memfd(nowrite, SZ), -EPROTO);
	/* F_SEAL_WRITE is as good as F_SEAL_FUTURE_WRITE. */
	tu_assert_res(os_memfd("t", SZ, &loose), 0);
	assert_int_equal(fcntl(loose, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
				F_SEAL_WRITE | F_SEAL_SEAL), 0);
	tu_assert_res(os_check_memfd(loose, SZ), 0);

	/* With a write seal the owner's mapping still writes, but nobody can
	 * punch a hole under the reader's mapping (which would SIGBUS a
	 * hugetlbfs one; tmpfs refuses it). */
	w = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	assert_true(w == MAP_FAILED);
	assert_true(fallocate(mfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      0, SZ) < 0 && errno == EPERM);

	/* hugetlbfs: sealed and sized right, refused for its file system.
	 * Only where the kernel has huge pages to give. */
	huge = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB);
	if (huge >= 0 && ftruncate(huge, 2u << 20) == 0 &&
	    fcntl(huge, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
				      F_SEAL_SEAL) == 0)
		tu_assert_res(os_check_memfd(huge, 2u << 20), -EPROTO);
	os_close(huge);

	os_close(loose);
	os_close(nowrite);
	os_close(ffd);
	os_close(pfd[0]);
	os_close(pfd[1]);
	os_close(mfd);
	os_close(efd);
}

static void test_kick_drain(void **state)
{
	int p[2], fl, n = 0;

	(void)state;
	tu_assert_res(os_pipe(p), 0);
	assert_true(fcntl(p[0], F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(p[1], F_GETFL) & O_NONBLOCK);
	tu_assert_res(os_pipe_drain(p[0]), 0);
	tu_assert_res(os_pipe_kick(p[1]), 0);
	tu_assert_res(os_pipe_kick(p[1]), 0);
	tu_assert_res(os_pipe_drain(p[0]), 2);
	tu_assert_res(os_pipe_drain(p[0]), 0);

	/* The peer shares the read end's file description and may clear
	 * O_NONBLOCK: the drain must still not block (vmsplice with
	 * SPLICE_F_NONBLOCK; test_pipe_nowait runs this where pipes refuse
	 * RWF_NOWAIT, as before Linux 6.4). */
	fl = fcntl(p[0], F_GETFL);
	assert_int_equal(fcntl(p[0], F_SETFL, fl & ~O_NONBLOCK), 0);
	tu_assert_res(os_pipe_drain(p[0]), 0);

	/* A full pipe: the reader has kicks waiting; the kick is done. */
	while (os_pipe_kick(p[1]) == 0 && n < 1 << 20 &&
	       fcntl(p[1], F_GETFL) >= 0) {
		int avail;
		if (ioctl(p[0], FIONREAD, &avail) == 0 && avail >= 65536)
			break;
		n++;
	}
	tu_assert_res(os_pipe_kick(p[1]), 0);
	assert_true(os_pipe_drain(p[0]) >= 65536);

	/* A reader gone: -EPIPE, not a signal (the library keeps a reader
	 * of its own on every bell it kicks; this is the last defence). */
	os_close(p[0]);
	tu_assert_res(os_pipe_kick(p[1]), -EPIPE);
	os_close(p[1]);
	tu_assert_res(os_pipe_kick(-1), -EBADF);
	tu_assert_res(os_pipe_drain(-1), 0);
}

struct drain_run {
	int res;
	int got[3];
};

/* In a thread of its own (the filter stays with it): vmsplice refused, as
 * a seccomp profile may, on a pipe whose read end was made blocking. */
static void *drain_without_vmsplice(void *arg)
{
	struct drain_run *d = arg;
	int p[2], fl;

	d->res = tu_refuse_syscall(SYS_vmsplice, EPERM);
	if (d->res < 0)
		return NULL;
	d->res = os_pipe(p);
	if (d->res < 0)
		return NULL;
	fl = fcntl(p[0], F_GETFL);
	if (fl < 0 || fcntl(p[0], F_SETFL, fl & ~O_NONBLOCK) < 0)
		d->res = -errno;
	d->got[0] = os_pipe_drain(p[0]);
	(void)os_pipe_kick(p[1]);
	(void)os_pipe_kick(p[1]);
	d->got[1] = os_pipe_drain(p[0]);
	d->got[2] = os_pipe_drain(p[0]);
	os_close(p[0]);
	os_close(p[1]);
	return NULL;
}

/* Where vmsplice is refused, the drain falls back to preadv2(RWF_NOWAIT),
 * which pipes take since Linux 6.4. */
static void test_drain_fallback(void **state)
{
	struct drain_run d = { .res = 0, .got = { -1, -1, -1 } };
	struct timespec until;
	struct iovec iov;
	pthread_t t;
	int p[2];
	char c;

	(void)state;
	tu_assert_res(os_pipe(p), 0);
	iov = (struct iovec){ .iov_base = &c, .iov_len = 1 };
	bool nowait = preadv2(p[0], &iov, 1, -1, RWF_NOWAIT) < 0 &&
		      errno == EAGAIN;
	os_close(p[0]);
	os_close(p[1]);
	if (!nowait)
		skip(); /* before 6.4: vmsplice is the only way */
	assert_int_equal(pthread_create(&t, NULL, drain_without_vmsplice, &d),
			 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	/* A drain that blocks never returns: fail, not hang. */
	if (pthread_timedjoin_np(t, NULL, &until) != 0)
		fail_msg("the drain blocked");
	if (d.res == -EINVAL || d.res == -ENOSYS || d.res == -EACCES)
		skip(); /* no seccomp here (an emulator, an old kernel) */
	tu_assert_res(d.res, 0);
	tu_assert_res(d.got[0], 0);
	tu_assert_res(d.got[1], 2);
	tu_assert_res(d.got[2], 0);
}

/* Descriptors a peer chose: known kinds close at once, others in a thread
 * of their own, and nothing stays open. */
static void test_close_untrusted(void **state)
{
	int fds[4], sv[2], before;

	(void)state;
	before = tu_count_fds();
	tu_assert_res(os_pipe(fds), 0);
	tu_assert_res(os_memfd("t", SZ, &fds[2]), 0);
	tu_assert_res(os_memfd_seal(fds[2]), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fds[3] = sv[0];
	os_close_untrusted(fds, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(fds[i], -1);
	tu_assert_res(os_close_pending(), 0);
	/* A socket's close may linger: it goes to a thread. */
	os_close_untrusted(&fds[3], 1);
	assert_int_equal(fds[3], -1);
	tu_assert_res(os_close_wait(5000), 0);
	os_close(sv[1]);
	tu_assert_res(tu_count_fds(), before);

	/* A socket that never took descriptors closes at once; one that may
	 * have, with an empty queue, too (SO_PASSRIGHTS off, then a look). */
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	os_close_sock(sv[0], false);
	os_close_sock(sv[1], true);
	tu_assert_res(os_close_wait(5000), 0);
	tu_assert_res(tu_count_fds(), before);
}

static void test_deadlines(void **state)
{
	uint64_t d;
	int ms;

	(void)state;
	assert_true(os_deadline(-1) == UINT64_MAX);
	assert_int_equal(os_remaining_ms(UINT64_MAX), -1);
	assert_int_equal(os_remaining_ms(os_deadline(0)), 0);
	assert_int_equal(os_remaining_ms(0), 0);
	/* Rounded up, never beyond the timeout. */
	d = os_deadline(10000);
	ms = os_remaining_ms(d);
	assert_true(ms > 0 && ms <= 10000);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void test_poll_eintr(void **state)
{
	struct sigaction sa = { .sa_handler = on_alarm }, old;
	struct itimerval it = { .it_interval = { 0, 5000 },
				.it_value = { 0, 5000 } };
	struct itimerval stop = { 0 };
	struct pollfd pfd;
	uint64_t deadline;
	int p[2], r;

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	/* No SA_RESTART: poll() fails with EINTR on every tick. */
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	alarms = 0;
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	deadline = os_deadline(60);
	r = os_poll(&pfd, 1, deadline);
	assert_int_equal(setitimer(ITIMER_REAL, &stop, NULL), 0);
	assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);

	/* A timeout, not -EINTR, and not before the deadline, although the
	 * timer interrupted the wait (5 ms ticks inside a 60 ms wait). */
	tu_assert_res(r, 0);
	assert_true(alarms > 0);
	assert_true(os_now_ns() >= deadline);

	/* Ready descriptors are reported. */
	assert_int_equal(write(p[1], "x", 1), 1);
	tu_assert_res(os_poll(&pfd, 1, os_deadline(-1)), 1);
	assert_true(pfd.revents & POLLIN);
	os_close(p[0]);
	os_close(p[1]);
}

static void test_ncpus_close(void **state)
{
	cpu_set_t set;
	int saved;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	assert_int_equal(os_ncpus(), CPU_COUNT(&set));
	assert_true(os_ncpus() >= 1);

	errno = ENOSPC;
	saved = os_close(-1);
	assert_int_equal(saved, -1);
	assert_int_equal(errno, ENOSPC);
}

static void test_membarrier(void **state)
{
	(void)state;
	/* Registration is once per process; the barrier then works (or the
	 * kernel lacks it, and evshm never skips a fence). */
	int r = os_membarrier_register();
	tu_assert_res(os_membarrier_register(), r);
	if (r == 0)
		tu_assert_res(os_membarrier(), 0);
	os_random(&r, sizeof(r));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memfd_seal),
		cmocka_unit_test(test_reopen_ro),
		cmocka_unit_test(test_checks_reject),
		cmocka_unit_test(test_kick_drain),
		cmocka_unit_test(test_drain_fallback),
		cmocka_unit_test(test_close_untrusted),
		cmocka_unit_test(test_membarrier),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_poll_eintr),
		cmocka_unit_test(test_ncpus_close),
	};
	return TU_RUN(tests, argc, argv);
}

/* SPDX-License-Identifier: MIT */
/*
 * test_os: the descriptor wrappers and checks of os.c: what a sealed memfd
 * still allows, what the receive-side checks reject, pipe kick / drain,
 * closing what a peer chose, and deadlines that survive signals.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#include "bell.h"
#include "os.h"
#include "util.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

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

/* A socket pair of @type, both ends close-on-exec. */
static void pair(int type, int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
}

static void test_checks_reject(void **state)
{
	char path[256];
	int efd, mfd, pfd[2], ffd, rd, wr, sv[2], lsn;
	pid_t me = getpid();
	uid_t u = getuid();
	gid_t g = getgid();

	(void)state;
	tu_assert_res(tu_eventfd(&efd), 0);
	tu_assert_res(os_memfd("t", SZ, &mfd), 0);
	tu_assert_res(os_memfd_seal(mfd), 0);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	snprintf(path, sizeof(path), "%s/regular", tu_tmpdir());
	ffd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(ffd >= 0);
	assert_int_equal(ftruncate(ffd, SZ), 0);

	/* A bell we made ourselves: its maker is this process. */
	tu_assert_res(os_bell_pair(&rd, &wr), 0);
	tu_assert_res(os_check_bell(wr, me + 1, u, g), -EPROTO); /* not its maker */
	tu_assert_res(os_check_bell(wr, me, u + 1, g), -EPROTO);
	tu_assert_res(os_check_bell(wr, me, u, g + 1), -EPROTO);
	tu_assert_res(os_check_bell(wr, me, u, g), 0);
	/* Shut for reading now: what its other end sends is refused. */
	assert_true(send(rd, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0);
	os_close(rd);
	os_close(wr);
	tu_assert_res(os_check_bell(pfd[0], me, u, g), -EPROTO); /* pipes */
	tu_assert_res(os_check_bell(pfd[1], me, u, g), -EPROTO);
	tu_assert_res(os_check_bell(efd, me, u, g), -EPROTO);
	tu_assert_res(os_check_bell(mfd, me, u, g), -EPROTO);
	tu_assert_res(os_check_bell(ffd, me, u, g), -EPROTO);
	tu_assert_res(os_check_bell(-1, me, u, g), -EPROTO);
	pair(SOCK_DGRAM, sv);
	tu_assert_res(os_check_bell(sv[0], me, u, g), -EPROTO);
	os_close(sv[0]);
	os_close(sv[1]);
	pair(SOCK_SEQPACKET, sv);
	tu_assert_res(os_check_bell(sv[0], me, u, g), -EPROTO);
	os_close(sv[0]);
	os_close(sv[1]);
	/* Unconnected, and listening. */
	lsn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lsn >= 0);
	tu_assert_res(os_check_bell(lsn, me, u, g), -EPROTO);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/lsn", tu_tmpdir());
	assert_int_equal(bind(lsn, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lsn, 1), 0);
	tu_assert_res(os_check_bell(lsn, me, u, g), -EPROTO);
	os_close(lsn);

	tu_assert_res(os_check_memfd(mfd, SZ), 0);
	tu_assert_res(os_check_memfd(efd, SZ), -EPROTO);
	tu_assert_res(os_check_memfd(pfd[0], SZ), -EPROTO);
	/* Right size, but a file that others can open and resize. */
	tu_assert_res(os_check_memfd(ffd, SZ), -EPROTO);
	tu_assert_res(os_check_memfd(-1, SZ), -EPROTO);

	os_close(pfd[0]);
	os_close(pfd[1]);
	os_close(ffd);
	os_close(mfd);
	os_close(efd);
}

/* Send one kick carrying @fd (SCM_RIGHTS); the send's result. */
static ssize_t kick_with_fd(int wr, int fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl = { 0 };
	char one = 1;
	struct iovec iov = { .iov_base = &one, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl.b,
			    .msg_controllen = sizeof(ctl.b) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(wr, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void test_kick_drain(void **state)
{
	int rd, wr, fl, sv[2], before, n = 0;

	(void)state;
	tu_assert_res(os_bell_pair(&rd, &wr), 0);
	assert_true(fcntl(rd, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(wr, F_GETFD) & FD_CLOEXEC);
	tu_assert_res(os_bell_drain(rd), 0);
	tu_assert_res(os_bell_kick(wr), 0);
	tu_assert_res(os_bell_kick(wr), 0);
	tu_assert_res(os_bell_drain(rd), 2);
	tu_assert_res(os_bell_drain(rd), 0);

	/* The sleeper shares the kicking end's description and may clear
	 * O_NONBLOCK, then stop reading: a kick must still not block (the
	 * flag is per call), and a full bell counts as kicked. */
	fl = fcntl(wr, F_GETFL);
	assert_int_equal(fcntl(wr, F_SETFL, fl & ~O_NONBLOCK), 0);
	for (; n < 1 << 16; n++) {
		char c = 1;
		if (send(wr, &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			break;
	}
	/* Room for far more kicks than a sleeper lets wait. */
	assert_true(n >= 2 * (int)BELL_DRAIN_EVERY && n < 1 << 16);
	tu_assert_res(os_bell_kick(wr), 0);
	tu_assert_res(os_bell_drain(rd), n);
	tu_assert_res(os_bell_drain(rd), 0);

	/* Descriptors riding along with kicks: refused by the kernel
	 * (SO_PASSRIGHTS, 6.16+), or closed by the drain. */
	before = tu_count_fds();
	int efd;
	tu_assert_res(tu_eventfd(&efd), 0);
	ssize_t sent = kick_with_fd(wr, efd);
	assert_true(sent == 1 || (sent < 0 && errno == EPERM));
	os_close(efd);
	tu_assert_res(os_bell_drain(rd), sent == 1 ? 1 : 0);
	tu_assert_res(tu_count_fds(), before);
	/* A plain pair (any kernel): the drain closes what came. */
	pair(SOCK_STREAM, sv);
	tu_assert_res(tu_eventfd(&efd), 0);
	assert_int_equal(kick_with_fd(sv[1], efd), 1);
	assert_int_equal(kick_with_fd(sv[1], efd), 1);
	os_close(efd);
	tu_assert_res(os_bell_drain(sv[0]), 2);
	tu_assert_res(tu_count_fds(), before + 2);
	os_close(sv[0]);
	os_close(sv[1]);

	/* The kicker shut its end down: the drain says it has gone. */
	assert_int_equal(shutdown(wr, SHUT_WR), 0);
	tu_assert_res(os_bell_drain(rd), -EPIPE);
	/* The sleeper gone: -EPIPE, not a signal. */
	os_close(rd);
	tu_assert_res(os_bell_kick(wr), -EPIPE);
	os_close(wr);
	tu_assert_res(os_bell_kick(-1), -EBADF);
	tu_assert_res(os_bell_drain(-1), 0);
}

/* A bell's ends close at once, kicks still queued or not (no thread per
 * closed channel); descriptors that rode along are closed too. */
static void test_close_bell(void **state)
{
	int rd, wr, before, efd;

	(void)state;
	before = tu_count_fds();
	tu_assert_res(os_bell_pair(&rd, &wr), 0);
	tu_assert_res(os_check_bell(wr, getpid(), getuid(), getgid()), 0);
	tu_assert_res(os_bell_kick(wr), 0);
	tu_assert_res(os_bell_kick(wr), 0);
	os_close_bell(rd, false);
	os_close_bell(wr, true);
	tu_assert_res(os_close_pending(), 0);
	tu_assert_res(tu_count_fds(), before);
	/* Our end of a plain pair with a descriptor queued (a kernel
	 * without SO_PASSRIGHTS): drained, closed, nothing left. */
	int sv[2];
	pair(SOCK_STREAM, sv);
	tu_assert_res(tu_eventfd(&efd), 0);
	assert_int_equal(kick_with_fd(sv[1], efd), 1);
	os_close(efd);
	os_close_bell(sv[0], false);
	os_close(sv[1]);
	tu_assert_res(os_close_wait(5000), 0);
	tu_assert_res(tu_count_fds(), before);
}

/* Descriptors a peer chose: known kinds close at once, others in a thread
 * of their own, and nothing stays open. */
static void test_close_untrusted(void **state)
{
	int fds[5], sv[2], before;

	(void)state;
	before = tu_count_fds();
	tu_assert_res(tu_eventfd(&fds[0]), 0);
	tu_assert_res(os_memfd("t", SZ, &fds[1]), 0);
	tu_assert_res(os_memfd_seal(fds[1]), 0);
	assert_int_equal(pipe2(&fds[2], O_CLOEXEC), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fds[4] = sv[0];
	os_close_untrusted(fds, 2);
	for (int i = 0; i < 2; i++)
		assert_int_equal(fds[i], -1);
	tu_assert_res(os_close_pending(), 0);
	/* A socket's close may linger, a pipe's waits for the pipe's mutex
	 * (the peer may hold it): they go to a thread. */
	os_close_untrusted(&fds[2], 3);
	for (int i = 2; i < 5; i++)
		assert_int_equal(fds[i], -1);
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

/* Holds a pipe's mutex: a splice from the pipe into a full blocking
 * socket keeps it while it waits for room (docs/protocol.md 6.1). */
struct pipe_holder {
	int pipe_rd, sock;
	_Atomic pid_t tid;
};

static void *hold_pipe(void *arg)
{
	struct pipe_holder *h = arg;

	atomic_store(&h->tid, (pid_t)syscall(SYS_gettid));
	return (void *)(intptr_t)splice(h->pipe_rd, NULL, h->sock, NULL, 4096, 0);
}

static char task_state(pid_t tid)
{
	char path[64], buf[256], *at;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return '?';
	at = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	return at && at[1] == ' ' ? at[2] : '?';
}

static int count_tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Closes that never finish (a peer holds what their release waits for)
 * cost at most four threads, however many the peer sends; they all finish
 * once it lets go. */
static void test_close_bounded(void **state)
{
	enum { N = 16 };
	struct pipe_holder h = { 0 };
	int p[2], sv[2], fds[N], before, tasks, sndbuf = 4096;
	char path[64], junk[4096];
	pthread_t t;

	(void)state;
	/* valgrind keeps its one lock through a close() that blocks, so
	 * every other thread, the one that would let go included, stops. */
	if (RUNNING_ON_VALGRIND)
		skip();
	before = tu_count_fds();
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	/* N files of the pipe's write end: each one's release takes the
	 * pipe's mutex (opened now, before it is held: an open takes it too). */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", p[1]);
	for (int i = 0; i < N; i++)
		assert_true((fds[i] = open(path, O_WRONLY | O_CLOEXEC)) >= 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf,
				    sizeof(sndbuf)), 0);
	while (send(sv[0], junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
	h.pipe_rd = p[0];
	h.sock = sv[0];
	assert_int_equal(pthread_create(&t, NULL, hold_pipe, &h), 0);
	for (int i = 0; i < 5000 && (!atomic_load(&h.tid) ||
				     task_state(atomic_load(&h.tid)) != 'S'); i++)
		usleep(1000);
	assert_int_equal(task_state(atomic_load(&h.tid)), 'S');

	tasks = count_tasks();
	for (int i = 0; i < N; i++) {
		os_close_untrusted(&fds[i], 1);
		assert_int_equal(fds[i], -1);
	}
	assert_true(count_tasks() <= tasks + 4);
	usleep(20000);
	tu_assert_res(os_close_pending(), N);

	/* Room in the socket: the splice ends, the mutex is free, every
	 * queued close finishes and every closer thread ends. */
	while (recv(sv[1], junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
	assert_int_equal(pthread_join(t, NULL), 0);
	tu_assert_res(os_close_wait(5000), 0);
	for (int i = 0; i < 5000 && count_tasks() > tasks - 1; i++)
		usleep(1000);
	assert_int_equal(count_tasks(), tasks - 1);
	os_close(p[0]);
	os_close(p[1]);
	os_close(sv[0]);
	os_close(sv[1]);
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
		cmocka_unit_test(test_close_bell),
		cmocka_unit_test(test_close_untrusted),
		cmocka_unit_test(test_close_bounded),
		cmocka_unit_test(test_membarrier),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_poll_eintr),
		cmocka_unit_test(test_ncpus_close),
	};
	return TU_RUN(tests, argc, argv);
}

/* SPDX-License-Identifier: MIT */
/*
 * os.c: the only place that creates memfds and eventfds, and the checks a
 * receiver runs on descriptors that a peer handed over.  Sockets are made in
 * endpoint.c and received descriptors in fdpass.c, with the same rule: every
 * descriptor is close-on-exec from birth, so an exec in another thread
 * never leaks one.
 */
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* "/proc/self/fd/" + a decimal int + NUL */
#define FD_PATH_MAX 32

static void fd_path(char *buf, size_t n, int fd)
{
	snprintf(buf, n, "/proc/self/fd/%d", fd);
}

/* readlink() of /proc/self/fd/@fd into @buf, NUL-terminated.  A target that
 * does not fit is an error: all callers compare against short prefixes. */
static int fd_link(int fd, char *buf, size_t n)
{
	char path[FD_PATH_MAX];
	ssize_t len;

	fd_path(path, sizeof(path), fd);
	len = readlink(path, buf, n);
	if (len < 0)
		return -errno;
	if ((size_t)len >= n)
		return -ENAMETOOLONG;
	buf[len] = '\0';
	return 0;
}

int os_memfd(const char *name, size_t size, int *out_fd)
{
	int fd, res;

	if (!name || !out_fd || size > (size_t)INT64_MAX)
		return -EINVAL;
	/* MFD_ALLOW_SEALING: without it F_ADD_SEALS fails and the receiver
	 * could not trust the size (a shrink would SIGBUS its mapping). */
	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		res = -errno;
		goto out_close_fd;
	}
	*out_fd = fd;
	return 0;

out_close_fd:
	os_close(fd);
	return res;
}

int os_memfd_seal(int fd)
{
	/* SHRINK: the peer's mapping can never SIGBUS.  GROW: the size it
	 * checked stays true.  FUTURE_WRITE: nobody (the peer included) can
	 * create a new writable mapping or write(2), while mappings made before
	 * sealing stay writable; unlike F_SEAL_WRITE it does not fail with
	 * EBUSY because such a mapping exists.  SEAL: none of it can be undone. */
	const int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE |
			  F_SEAL_SEAL;

	if (fcntl(fd, F_ADD_SEALS, seals) < 0)
		return -errno;
	return 0;
}

int os_reopen_ro(int fd, int *out_fd)
{
	char path[FD_PATH_MAX];
	int nfd;

	if (fd < 0 || !out_fd)
		return -EINVAL;
	/* A new open file description: its access mode is O_RDONLY whatever
	 * @fd's is, so a mapping of it can never be made writable. */
	fd_path(path, sizeof(path), fd);
	nfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nfd < 0)
		return -errno;
	*out_fd = nfd;
	return 0;
}

int os_eventfd(int *out_fd)
{
	int fd;

	if (!out_fd)
		return -EINVAL;
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	*out_fd = fd;
	return 0;
}

int os_check_memfd(int fd, size_t size)
{
	const int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	static const char prefix[] = "/memfd:";
	char link[PATH_MAX];
	struct stat st;
	int seals;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -EPROTO;
	if (st.st_size < 0 || (uint64_t)st.st_size != (uint64_t)size)
		return -EPROTO;
	/* Without SHRINK the peer could truncate the file under our mapping
	 * and turn our reads into SIGBUS; without SEAL it could lift them. */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & need) != need)
		return -EPROTO;
	/* F_GET_SEALS also works on tmpfs/hugetlbfs files; the memfd name
	 * prefix tells an anonymous memfd from a file someone else can open. */
	if (fd_link(fd, link, sizeof(link)) < 0 ||
	    strncmp(link, prefix, sizeof(prefix) - 1) != 0)
		return -EPROTO;
	return 0;
}

int os_check_eventfd(int fd)
{
	static const char want[] = "anon_inode:[eventfd]";
	char link[sizeof(want) + 1];
	int fl, acc;

	if (fd_link(fd, link, sizeof(link)) < 0 || strcmp(link, want) != 0)
		return -EPROTO;
	/* A blocking eventfd would let a saturated counter block our kick. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || !(fl & O_NONBLOCK))
		return -EPROTO;
	acc = fl & O_ACCMODE;
	if (acc != O_WRONLY && acc != O_RDWR)
		return -EPROTO;
	return 0;
}

int os_eventfd_kick(int fd)
{
	const uint64_t one = 1;
	ssize_t n;

	do {
		n = write(fd, &one, sizeof(one));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		/* EAGAIN: the counter is at its maximum, which only a peer
		 * that never drains (or writes huge values) can cause. */
		return errno == EAGAIN ? -EPROTO : -errno;
	if (n != sizeof(one))
		return -EPROTO;
	return 0;
}

int os_eventfd_drain(int fd)
{
	uint64_t val;
	struct iovec iov = { .iov_base = &val, .iov_len = sizeof(val) };
	ssize_t n;

	/* RWF_NOWAIT, not O_NONBLOCK: the peer shares the open file
	 * description and could clear O_NONBLOCK, which must not make this
	 * read block.  Offset -1: eventfds have no position. */
	do {
		n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (n != sizeof(val))
		return -EPROTO;
	return 1;
}

int os_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;

		/* Linux always releases the descriptor, even on EINTR: never
		 * retry (the number may already belong to another thread). */
		close(fd);
		errno = saved;
	}
	return -1;
}

uint64_t os_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t os_deadline(int timeout_ms)
{
	if (timeout_ms < 0)
		return UINT64_MAX;
	return os_now_ns() + (uint64_t)timeout_ms * 1000000u;
}

int os_remaining_ms(uint64_t deadline)
{
	uint64_t now, left;

	if (deadline == UINT64_MAX)
		return -1;
	now = os_now_ns();
	if (now >= deadline)
		return 0;
	/* Round up: poll() sleeping 1 ms short of the deadline and reporting
	 * a timeout would be a timeout that came early. */
	left = (deadline - now + 999999u) / 1000000u;
	return left > INT_MAX ? INT_MAX : (int)left;
}

int os_poll(struct pollfd *fds, unsigned n, uint64_t deadline)
{
	int r;

	for (;;) {
		r = poll(fds, (nfds_t)n, os_remaining_ms(deadline));
		if (r > 0)
			return r;
		if (r < 0 && errno != EINTR)
			return -errno;
		/* EINTR, or a timeout: go round again with the time that is
		 * really left, so neither a signal nor a coarse timer ends
		 * the wait before the deadline. */
		if (r == 0 && os_now_ns() >= deadline)
			return 0;
	}
}

int os_ncpus(void)
{
	size_t ncpu = CPU_SETSIZE;

	/* A static cpu_set_t holds 1024 CPUs; sched_getaffinity() fails with
	 * EINVAL when the kernel's mask is larger, so grow and retry. */
	for (;;) {
		size_t sz = CPU_ALLOC_SIZE(ncpu);
		cpu_set_t *set = CPU_ALLOC(ncpu);
		int count;

		if (!set)
			return -ENOMEM;
		if (sched_getaffinity(0, sz, set) == 0) {
			count = CPU_COUNT_S(sz, set);
			CPU_FREE(set);
			return count > 0 ? count : 1;
		}
		CPU_FREE(set);
		if (errno != EINVAL || ncpu >= (1u << 20))
			return -errno;
		ncpu *= 2;
	}
}

int os_wait_fd(int fd, short events, uint64_t deadline, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int r = os_poll(&pfd, 1, deadline);

	if (r < 0)
		return r;
	if (r == 0)
		return timeout_ms == 0 ? -EAGAIN : -ETIMEDOUT;
	if (pfd.revents & POLLNVAL)
		return -EBADF;
	return 0;
}

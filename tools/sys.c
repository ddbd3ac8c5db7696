/* SPDX-License-Identifier: MIT */
/* sys.c: the system calls of the evshm tool (see sys.h). */
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* --- time --------------------------------------------------------------- */

uint64_t sys_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t sys_deadline(int timeout_ms)
{
	if (timeout_ms < 0)
		return UINT64_MAX;
	return sys_now_ns() + (uint64_t)timeout_ms * 1000000u;
}

int sys_ms_left(uint64_t deadline)
{
	uint64_t now = sys_now_ns();

	if (deadline == UINT64_MAX)
		return -1;
	if (deadline <= now)
		return 0;
	uint64_t ms = (deadline - now + 999999) / 1000000;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

int sys_poll(struct pollfd *fds, unsigned n, uint64_t deadline)
{
	for (;;) {
		int r = poll(fds, n, sys_ms_left(deadline));
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return -errno;
	}
}

void sys_sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* --- CPUs --------------------------------------------------------------- */

int sys_cpu_pin(int cpu)
{
	static cpu_set_t startup;
	static bool saved;
	cpu_set_t set;

	if (!saved) {
		if (sched_getaffinity(0, sizeof(startup), &startup) < 0)
			return -errno;
		saved = true;
	}
	if (cpu >= CPU_SETSIZE)
		return -EINVAL;
	if (cpu < 0) {
		set = startup;
	} else {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
	}
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

int sys_cpu_two(int *a, int *b)
{
	cpu_set_t set;
	int found = 0;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	for (int c = 0; c < CPU_SETSIZE && found < 2; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		*(found++ ? b : a) = c;
	}
	return found == 2 ? 0 : -ENODEV;
}

double sys_cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* --- Unix sockets ------------------------------------------------------- */

static int unix_addr(const char *name, struct sockaddr_un *sun,
		     socklen_t *len)
{
	size_t n = name ? strlen(name) : 0;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (n == 0 || (name[0] == '@' && n == 1))
		return -EINVAL;
	if (n >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memcpy(sun->sun_path, name, n);
	if (name[0] == '@') {
		/* Abstract: a leading NUL, and the length says where it ends
		 * (no terminating NUL belongs to the name). */
		sun->sun_path[0] = '\0';
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	return 0;
}

/* A socket of @type and the address of @name, for bind or connect. */
static int unix_socket(const char *name, int type, struct sockaddr_un *sun,
		       socklen_t *len)
{
	int res = unix_addr(name, sun, len), s;

	if (res < 0)
		return res;
	s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	return s < 0 ? -errno : s;
}

int sys_listen(const char *name, int type, int *fd)
{
	struct sockaddr_un sun;
	socklen_t len;
	int s = unix_socket(name, type, &sun, &len), res;

	if (s < 0)
		return s;
	if (bind(s, (struct sockaddr *)&sun, len) < 0 || listen(s, 8) < 0) {
		res = -errno;
		close(s);
		return res;
	}
	*fd = s;
	return 0;
}

int sys_accept(int lfd, int timeout_ms, int *fd)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	int n = sys_poll(&pfd, 1, sys_deadline(timeout_ms));

	if (n < 0)
		return n;
	if (n == 0)
		return -ETIMEDOUT;
	do
		*fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	while (*fd < 0 && errno == EINTR);
	return *fd < 0 ? -errno : 0;
}

int sys_connect(const char *name, int type, int *fd)
{
	struct sockaddr_un sun;
	socklen_t len;
	int s = unix_socket(name, type, &sun, &len), res;

	if (s < 0)
		return s;
	if (connect(s, (struct sockaddr *)&sun, len) < 0) {
		res = -errno;
		close(s);
		return res;
	}
	*fd = s;
	return 0;
}

int sys_peer_pid(int fd, pid_t *pid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return -errno;
	*pid = cr.pid;
	return 0;
}

/* Control data for SYS_MAX_FDS descriptors, plus room to notice (and
 * refuse) anything else a sender might have attached; aligned for
 * struct cmsghdr by the union. */
union ctrl_buf {
	struct cmsghdr align;
	char buf[CMSG_SPACE(SYS_MAX_FDS * sizeof(int)) + 64];
};

int sys_send_msg(int sock, const void *buf, size_t len, const int *fds,
		 unsigned nfds, int timeout_ms)
{
	union ctrl_buf ctrl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	uint64_t deadline = sys_deadline(timeout_ms);

	if (len == 0 || nfds > SYS_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		memset(&ctrl, 0, sizeof(ctrl));
		msg.msg_control = ctrl.buf;
		msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0)
			return (size_t)n == len ? 0 : -EPROTO;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		struct pollfd pfd = { .fd = sock, .events = POLLOUT };
		int r = sys_poll(&pfd, 1, deadline);
		if (r <= 0)
			return r < 0 ? r : -ETIMEDOUT;
	}
}

int sys_recv_msg(int sock, void *buf, size_t cap, int *fds, unsigned max_fds,
		 unsigned *nfds, int timeout_ms)
{
	union ctrl_buf ctrl;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctrl.buf,
			      .msg_controllen = sizeof(ctrl.buf) };
	uint64_t deadline = sys_deadline(timeout_ms);
	int got[SYS_MAX_FDS + 16], res = 0;
	unsigned ngot = 0;
	ssize_t n;

	*nfds = 0;
	for (;;) {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		struct pollfd pfd = { .fd = sock, .events = POLLIN };
		int r = sys_poll(&pfd, 1, deadline);
		if (r <= 0)
			return r < 0 ? r : -ETIMEDOUT;
	}
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm;
	     cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
		    cm->cmsg_len < CMSG_LEN(0)) {
			res = -EPROTO;
			continue;
		}
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (ngot < sizeof(got) / sizeof(got[0]))
				got[ngot++] = fd;
			else
				close(fd); /* cannot be more than the buffer held */
		}
	}
	if (msg.msg_flags & MSG_CTRUNC)
		res = -EPROTO;
	else if (msg.msg_flags & MSG_TRUNC)
		res = -EMSGSIZE;
	else if (ngot > max_fds)
		res = -EOVERFLOW;
	else if (n == 0 && ngot == 0)
		res = -EPIPE;
	if (res < 0) {
		for (unsigned i = 0; i < ngot; i++)
			close(got[i]);
		return res;
	}
	if (ngot)
		memcpy(fds, got, ngot * sizeof(int));
	*nfds = ngot;
	return (int)n;
}

/* --- memfds and eventfds ------------------------------------------------ */

int sys_memfd(const char *name, size_t size, int *fd)
{
	int f = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), res;

	if (f < 0)
		return -errno;
	if (ftruncate(f, (off_t)size) < 0) {
		res = -errno;
		close(f);
		return res;
	}
	*fd = f;
	return 0;
}

int sys_memfd_seal(int fd)
{
	int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE |
		    F_SEAL_SEAL;

	return fcntl(fd, F_ADD_SEALS, seals) < 0 ? -errno : 0;
}

int sys_memfd_seals(int fd)
{
	int s = fcntl(fd, F_GET_SEALS);

	return s < 0 ? -errno : s;
}

int sys_eventfd(int *fd)
{
	int f = eventfd(0, EFD_CLOEXEC);

	if (f < 0)
		return -errno;
	*fd = f;
	return 0;
}

int sys_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -1;
}

/* SPDX-License-Identifier: MIT */
#include "wake.h"

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>

#include "os.h"

bool wake_spin(bool (*ready)(const void *arg), const void *arg,
	       int64_t spin_ns)
{
	if (spin_ns <= 0)
		return false;
	uint64_t end = os_now_ns() + (uint64_t)spin_ns;
	for (;;) {
		/* Read the clock once every 64 checks: it costs ~20 ns. */
		for (int i = 0; i < 64; i++) {
			if (ready(arg))
				return true;
			cpu_relax();
		}
		if (os_now_ns() >= end)
			return ready(arg);
	}
}

#define WAKE_SOCK 1u /* epoll data of the socket; the bell's is 0 */

int wake_open(int *ep, int bell, int sock)
{
	/* Only hang-up on the socket: data there (descriptors riding with
	 * messages) is read when its ring record is. */
	struct epoll_event eb = { .events = EPOLLIN | EPOLLET, .data.u32 = 0 };
	struct epoll_event es = { .events = EPOLLRDHUP, .data.u32 = WAKE_SOCK };
	int res;

	*ep = epoll_create1(EPOLL_CLOEXEC);
	if (*ep < 0)
		return -errno;
	if (epoll_ctl(*ep, EPOLL_CTL_ADD, bell, &eb) < 0 ||
	    epoll_ctl(*ep, EPOLL_CTL_ADD, sock, &es) < 0) {
		res = -errno;
		*ep = os_close(*ep);
		return res;
	}
	return 0;
}

int wake_sleep(int ep, uint64_t deadline)
{
	struct epoll_event ev[2];
	int n;

	do
		n = epoll_wait(ep, ev, 2, os_remaining_ms(deadline));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++)
		if (ev[i].data.u32 == WAKE_SOCK)
			return -EPIPE;
	if (n == 0)
		/* os_remaining_ms() rounds up, so the deadline has passed. */
		return -ETIMEDOUT;
	return 0;
}

bool wake_hung_up(int sock)
{
	struct pollfd pfd = { .fd = sock, .events = POLLRDHUP };
	return os_poll(&pfd, 1, 0) > 0 &&
	       (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

int64_t wake_default_spin_ns(void)
{
	return os_ncpus() > 1 ? 30000 : 0;
}

/* SPDX-License-Identifier: MIT */
#include "wake.h"

#include <errno.h>
#include <poll.h>

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

int wake_sleep(int bell, int sock, uint64_t deadline)
{
	struct pollfd pfd[2] = {
		{ .fd = bell, .events = POLLIN },
		/* Only hang-up: data on the socket (descriptors riding with
		 * messages) is read when its ring record is. */
		{ .fd = sock, .events = POLLRDHUP },
	};
	int n = os_poll(pfd, 2, deadline);
	if (n < 0)
		return n;
	if (pfd[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
		return -EPIPE;
	return n == 0 ? -ETIMEDOUT : 0;
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

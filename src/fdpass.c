/* SPDX-License-Identifier: MIT */
/*
 * fdpass.c: SCM_RIGHTS over a connected SOCK_SEQPACKET socket.
 *
 * Both directions use MSG_DONTWAIT and wait in poll() against a deadline,
 * so a timeout means the same thing whether the socket is blocking or not.
 * The receive path is strict (Wayland's rule): a message is accepted whole
 * or not at all, and every descriptor that arrived with a rejected message
 * is closed before returning (those whose close may wait, by a thread:
 * os_close_untrusted()).
 */
#include "fdpass.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "os.h"

/* Linux 6.5+: a pidfd of the sender, delivered when the receiver set
 * SO_PASSPIDFD.  Not in every libc's headers yet.  It installs a
 * descriptor, so it must be recognised to be closed. */
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

/*
 * Room for the largest SCM_RIGHTS the kernel sends (SCM_MAX_FD), plus the
 * control messages a receiver gets if someone set SO_PASSCRED or
 * SO_PASSPIDFD on the socket: we never ask for those, but if they come we
 * want to see them (and close the pidfd) rather than have the kernel
 * truncate the SCM_RIGHTS behind them.  The union aligns the buffer for
 * struct cmsghdr.
 */
#define FDP_CTRL_SIZE                                  \
	(CMSG_SPACE(FDP_MAX_FDS * sizeof(int)) +       \
	 CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int)))

union fdp_ctrl {
	struct cmsghdr align;
	char buf[FDP_CTRL_SIZE];
};

int fdp_send(int sock, const void *buf, size_t len, const int *fds,
	     unsigned nfds, int timeout_ms)
{
	union fdp_ctrl ctrl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	uint64_t deadline = os_deadline(timeout_ms);
	ssize_t n;
	int res;

	/* A 0-byte message without descriptors reads as end-of-file on the
	 * other side, so it cannot be sent. */
	if (nfds > FDP_MAX_FDS || (len == 0 && nfds == 0) ||
	    (len > 0 && !buf) || (nfds > 0 && !fds))
		return -EINVAL;

	if (nfds > 0) {
		struct cmsghdr *cmsg;

		memset(&ctrl, 0, sizeof(ctrl));
		msg.msg_control = ctrl.buf;
		msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cmsg), fds, nfds * sizeof(int));
	}

	for (;;) {
		/* MSG_NOSIGNAL: a vanished peer is -EPIPE, not SIGPIPE. */
		n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		res = os_wait_fd(sock, POLLOUT, deadline, timeout_ms);
		if (res < 0)
			return res;
	}
	/* SOCK_SEQPACKET sends a record whole or fails; a short count means
	 * the socket is not what we think it is. */
	if ((size_t)n != len)
		return -EPROTO;
	return 0;
}

/*
 * Collect the descriptors of every control message into @rx (capacity
 * @rx_cap) and close any descriptor that is not ours to keep.  Returns 0,
 * or -EPROTO if a control message other than SCM_RIGHTS came (the caller
 * then closes @rx too).
 */
static int fdp_collect(struct msghdr *msg, int *rx, size_t rx_cap,
		       size_t *nrx)
{
	struct cmsghdr *cmsg;
	int res = 0;

	*nrx = 0;
	for (cmsg = CMSG_FIRSTHDR(msg); cmsg; cmsg = CMSG_NXTHDR(msg, cmsg)) {
		size_t n, i;

		if (cmsg->cmsg_len < CMSG_LEN(0)) {
			res = -EPROTO;
			continue;
		}
		n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (cmsg->cmsg_level == SOL_SOCKET &&
		    cmsg->cmsg_type == SCM_RIGHTS) {
			for (i = 0; i < n; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int),
				       sizeof(int));
				if (*nrx < rx_cap)
					rx[(*nrx)++] = fd;
				else
					os_close_untrusted(&fd, 1);
			}
		} else if (cmsg->cmsg_level == SOL_SOCKET &&
			   cmsg->cmsg_type == SCM_PIDFD && n == 1) {
			int fd;

			memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
			os_close(fd);
			res = -EPROTO;
		} else {
			/* SCM_CREDENTIALS, SCM_SECURITY, ...: carry no
			 * descriptor, but nobody asked for them. */
			res = -EPROTO;
		}
	}
	return res;
}

int fdp_recv(int sock, void *buf, size_t cap, int *fds, unsigned max_fds,
	     unsigned *nfds, int timeout_ms)
{
	union fdp_ctrl ctrl;
	int rx[sizeof(ctrl.buf) / sizeof(int)];
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr msg;
	uint64_t deadline = os_deadline(timeout_ms);
	size_t nrx;
	ssize_t n;
	int res;

	if (!nfds || (cap > 0 && !buf) || (max_fds > 0 && !fds))
		return -EINVAL;
	*nfds = 0;
	/* The length is returned as an int. */
	if (iov.iov_len > INT_MAX)
		iov.iov_len = INT_MAX;
	/* The kernel never sends more than SCM_MAX_FD in one message. */
	if (max_fds > FDP_MAX_FDS)
		max_fds = FDP_MAX_FDS;

	for (;;) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = ctrl.buf;
		msg.msg_controllen = sizeof(ctrl.buf);
		/* MSG_CMSG_CLOEXEC: the descriptors are close-on-exec from
		 * the moment they enter our table. */
		n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		res = os_wait_fd(sock, POLLIN, deadline, timeout_ms);
		if (res < 0)
			return res;
	}

	res = fdp_collect(&msg, rx, sizeof(rx) / sizeof(rx[0]), &nrx);
	if (msg.msg_flags & MSG_TRUNC)
		/* The record was longer than @cap; its tail is gone. */
		res = -EMSGSIZE;
	else if (msg.msg_flags & MSG_CTRUNC)
		/* Descriptors were dropped by the kernel (no room, or
		 * RLIMIT_NOFILE reached): we cannot hand over a partial set. */
		res = -EOVERFLOW;
	else if (res == 0 && nrx > max_fds)
		res = -EOVERFLOW;
	else if (res == 0 && n == 0 && nrx == 0)
		/* SOCK_SEQPACKET reports the peer's close as a 0-byte read. */
		res = -EPIPE;
	if (res < 0)
		goto out_close_rx;

	if (nrx > 0)
		memcpy(fds, rx, nrx * sizeof(int));
	*nfds = (unsigned)nrx;
	return (int)n;

out_close_rx:
	/* The peer chose them: a close that may wait (a lingering socket, a
	 * FUSE file) is not done here (docs/protocol.md 10.5). */
	os_close_untrusted(rx, (unsigned)nrx);
	return res;
}

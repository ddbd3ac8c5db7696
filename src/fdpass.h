/* SPDX-License-Identifier: MIT */
/*
 * fdpass.h: one message plus 0..FDP_MAX_FDS descriptors over a connected
 * SOCK_SEQPACKET Unix socket (SCM_RIGHTS).
 *
 * SOCK_SEQPACKET keeps message boundaries, so the descriptors of one
 * sendmsg() arrive with exactly that message and never merge with the next
 * one's (with SOCK_STREAM, SCM_RIGHTS attaches to a byte range and a reader
 * must re-frame).  A peer's close is seen as end-of-file / POLLHUP.
 */
#ifndef EVSHM_FDPASS_H
#define EVSHM_FDPASS_H

#include <stddef.h>

/* The kernel's limit for one message (SCM_MAX_FD). */
#define FDP_MAX_FDS 253

/*
 * Send one message of @len bytes (len may be 0 only if nfds > 0) with
 * @nfds descriptors (copies: the caller keeps its own).  MSG_NOSIGNAL;
 * EINTR retried; waits up to @timeout_ms for socket buffer room.
 * A SOCK_SEQPACKET send is all or nothing; a short send is -EPROTO.
 * Errors: -EINVAL (nfds > FDP_MAX_FDS, len 0 and nfds 0), -EAGAIN
 * (timeout 0), -ETIMEDOUT, -EPIPE / -ECONNRESET (peer gone), -EMSGSIZE,
 * -EBADF, -ENOMEM, -ETOOMANYREFS.
 */
int fdp_send(int sock, const void *buf, size_t len, const int *fds,
	     unsigned nfds, int timeout_ms);

/*
 * Receive one message into @buf (@cap bytes) and up to @max_fds
 * descriptors into @fds (received close-on-exec: MSG_CMSG_CLOEXEC);
 * *nfds is set to the number received.  Returns the message length.
 * Waits up to @timeout_ms.  @max_fds above FDP_MAX_FDS means FDP_MAX_FDS;
 * @fds may be NULL when @max_fds is 0 (then any descriptor is -EOVERFLOW).
 *
 * All or nothing: if the message did not fit (MSG_TRUNC: -EMSGSIZE), the
 * control data was truncated (MSG_CTRUNC: -EOVERFLOW), or more descriptors
 * came than @max_fds (-EOVERFLOW), every descriptor that did arrive is
 * closed, *nfds is 0, and the message is consumed.
 * End of file (the peer closed, a 0-byte message without descriptors) is
 * -EPIPE.
 * MSG_CTRUNC also covers descriptors the kernel dropped because we hit
 * RLIMIT_NOFILE.  A control message other than SCM_RIGHTS (someone set
 * SO_PASSCRED or SO_PASSPIDFD on the socket) is -EPROTO; a pidfd it carried
 * is closed too.  @fds is written only on success.
 * Errors: -EAGAIN, -ETIMEDOUT, -EPIPE, -ECONNRESET (the peer closed with
 * our messages unread), -EMSGSIZE, -EOVERFLOW, -EINVAL, -EPROTO, -EBADF,
 * -ENOTSOCK.
 */
int fdp_recv(int sock, void *buf, size_t cap, int *fds, unsigned max_fds,
	     unsigned *nfds, int timeout_ms);

#endif

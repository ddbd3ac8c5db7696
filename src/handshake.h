/* SPDX-License-Identifier: MIT */
/*
 * handshake.h: the message exchange both handshakes (channel, topic)
 * share: one message and its descriptors each way, strictly checked, and
 * the client's way in (connect, check who answers, wait for READY).
 * docs/protocol.md, section 3.
 */
#ifndef EVSHM_HANDSHAKE_H
#define EVSHM_HANDSHAKE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "evshm.h"
#include "proto.h"

/*
 * Receive one message of type @want with exactly @nfds descriptors into
 * @fds (a REJECT / DROP / READY carries none).  On any failure every
 * descriptor that came is closed (os_close_untrusted) and @fds is left
 * alone.  0; the REJECT's errno; -ECONNRESET (the peer left); -ETIMEDOUT;
 * -EPROTO; -EPROTONOSUPPORT; -errno.
 */
int hs_recv(int sock, enum proto_type want, struct proto_msg *m, int *fds,
	    unsigned nfds, uint64_t deadline);

/* Send one message with @nfds descriptors (copies: ours stay ours).
 * 0, -ECONNRESET, -ETIMEDOUT, -errno. */
int hs_send(int sock, const struct proto_msg *m, const int *fds,
	    unsigned nfds, uint64_t deadline);

/* Send REJECT for @err, best effort and without waiting. */
void hs_reject(int sock, int err);

/* A server refuses and closes at once; Linux may report the close (EPIPE,
 * ECONNRESET) before the REJECT it sent is read.  Given such a @res, look
 * for that REJECT without waiting and return its errno; else @res. */
int hs_reject_reason(int sock, int res);

/* What a client knows once it is in. */
struct hs_client {
	int sock;
	bool fds_possible;      /* the server may have queued descriptors */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint64_t deadline;      /* of the handshake: the connect timeout and
				   handshake_timeout_ms, whichever is first */
	struct proto_msg ready; /* the server's READY */
};

/*
 * Connect to @name, check the server against @o's policy before anything
 * is sent, and wait for its READY (or REJECT).  @kind is what we want: a
 * server of the other kind is -EPROTOTYPE.  0 and @out (the caller owns
 * out->sock), or -errno.
 */
int hs_client_start(const char *name, const struct evshm_opts *o,
		    uint32_t kind, int timeout_ms, struct hs_client *out);

/*
 * The client's second half: send @hello with our descriptors @ours, receive
 * the WELCOME into @m and its descriptors into @fds (ours then), and check
 * before anything is mapped that it names our identity (@hello's id) and
 * a ring of at most @max_ring bytes.  0, the REJECT's errno, -EPROTO,
 * -EFBIG, -ECONNRESET, -ETIMEDOUT; on failure @fds are closed.
 */
int hs_client_finish(const struct hs_client *hc, const struct proto_msg *hello,
		     const int *ours, struct proto_msg *m, int *fds,
		     uint32_t max_ring);

#endif

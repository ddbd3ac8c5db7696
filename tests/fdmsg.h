/* SPDX-License-Identifier: MIT */
/*
 * fdmsg.h: a verifiable stream of messages that carry descriptors, shared
 * by test_server_fds and its peer.
 *
 * Message @seq has a length and bytes that are functions of @seq (its first
 * 8 bytes are @seq, then the number of descriptors it carries), and each
 * descriptor k is a fresh file that says (seq, k) by its kind and contents:
 *   (seq + k) % 3 == 0  a memfd named "fdmsg-SEQ-K" holding "SEQ:K"
 *                    1  the read end of a pipe holding "SEQ:K" (write end
 *                       closed, so the reader sees it then end-of-file)
 *                    2  an eventfd whose counter is SEQ * 256 + K + 1
 * So a receiver can tell a descriptor that arrived with the wrong message,
 * in the wrong place, or twice.  Functions return 0 or -errno; a mismatch
 * is -EBADMSG with a line on stderr.
 */
#ifndef EVSHM_TESTS_FDMSG_H
#define EVSHM_TESTS_FDMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evshm.h"

/* How many descriptors message @seq of a stream carries: 0 (a plain
 * message) for about one in four, else 1 to 3. */
unsigned fdmsg_nfds(uint64_t seq);

/* Length of message @seq (16..64 bytes). */
size_t fdmsg_len(uint64_t seq);

/* Make descriptor @k of message @seq (close-on-exec). */
int fdmsg_open(uint64_t seq, unsigned k, int *fd);

/* Is @fd descriptor @k of message @seq, received close-on-exec?  Reads
 * its contents (a pipe or eventfd is then drained). */
bool fdmsg_check_fd(uint64_t seq, unsigned k, int fd);

/* Send message @seq with @nfds descriptors (0: evshm_send), made here and
 * closed once sent.  @empty: the message has no bytes at all.  Retries
 * -ETOOMANYREFS (descriptors in flight over RLIMIT_NOFILE, unprivileged
 * senders only) after a pause, counting them in *retries (may be NULL). */
int fdmsg_send(struct evshm_chan *c, uint64_t seq, unsigned nfds, bool empty,
	       int timeout_ms, uint64_t *retries);

/* Receive message @seq with evshm_recv_fds(), expecting @nfds descriptors
 * (and no bytes if @empty); check the bytes and every descriptor, close
 * them. */
int fdmsg_recv(struct evshm_chan *c, uint64_t seq, unsigned nfds, bool empty,
	       int timeout_ms);

/* The peer's own account of its descriptors, sent as one plain message. */
struct fdmsg_report {
	int64_t fds_connected; /* right after connecting */
	int64_t fds_now;       /* when reporting, channel still open */
	uint64_t verified;     /* messages it received and checked */
	uint64_t retries;      /* -ETOOMANYREFS retries */
	int32_t results[4];    /* mode-specific */
};

#endif

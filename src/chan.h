/* SPDX-License-Identifier: MIT */
/*
 * chan.h: the channel's insides, shared by chan.c (the data path) and
 * handshake.c (setting a channel up: connect, listen, accept).
 */
#ifndef EVSHM_CHAN_H
#define EVSHM_CHAN_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bell.h"
#include "evshm.h"
#include "fdpass.h"
#include "region.h"
#include "ring.h"

/* The send side and the receive side may run in two threads: each lives on
 * its own cache lines and touches only its own fields. */
struct chan_tx {
	alignas(64) struct ring_tx ring;
	struct bell bell;  /* sleeps on the peer's bell, for room */
	uint64_t kicks;    /* mirrored in our region's tx_kicks */
	unsigned watch;    /* slow kicks (bell_kick) */
	uint64_t fd_seq;   /* next PROTO_FDS sequence number to send */
	bool sock_out;     /* evshm_fd() also watches the socket for room */
};

struct chan_rx {
	alignas(64) struct ring_rx ring;
	struct bell bell;  /* sleeps on the peer's bell, for data */
	_Atomic uint64_t armed_seq; /* the record it armed for (at data_event) */
	uint64_t kicks;
	unsigned watch;
	uint64_t fd_seq;   /* next PROTO_FDS sequence number expected */
	unsigned nfds;     /* descriptors of the peeked message, owned here */
	bool fds_loaded;   /* they have been read from the socket */
	int fds[FDP_MAX_FDS];
};

/* Shared by a listener and the channels it accepted, which may outlive
 * it: counts open channels for max_clients. */
struct listen_state {
	_Atomic unsigned clients;
	_Atomic unsigned refs;
};

struct evshm_chan {
	int sock;            /* liveness and control */
	bool sock_fds;       /* its queue may hold the peer's descriptors */
	int region_fd;       /* our region, read-only: sent to the peer, and
				found here by evshm ps */
	int epfd;            /* evshm_fd(): the peer's bell + socket hang-up */
	int bell_rd;         /* our bell, only ours: the peer kicks, we sleep */
	int bell_peer;       /* its other end, for the peer (until sent) */
	int kick;            /* the peer's bell: we kick, the peer sleeps */
	int poke;            /* eventfd: one of our roles wakes the other */
	_Atomic bool poked;  /* it may be readable (set after the write) */
	_Atomic bool fd_used; /* evshm_fd() was asked for: keep it accurate */
	struct region *mine;
	uint32_t tx_size;
	const struct region *peer;
	uint32_t rx_size;
	uint32_t features;      /* what we accept (PROTO_F_*) */
	uint32_t peer_features; /* what the peer accepts */
	int64_t spin_ns;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	/* The peer has gone.  Set by whichever side saw the hang-up with
	 * release, read with acquire: a side that sees it also sees what the
	 * seeing side saw of the peer's memory (see chan_set_hup()). */
	_Atomic int hup;
	_Atomic int err;     /* sticky -EPROTO once the peer broke the rules */
	_Atomic unsigned reason; /* and which check said so (err.h) */
	struct listen_state *ls; /* accepted channels: the listener's state */
	struct chan_tx tx;
	struct chan_rx rx;
};

/* A zeroed channel with every descriptor -1; NULL if out of memory. */
struct evshm_chan *chan_new(void);

/* Set up the rings, the bells and evshm_fd() once both regions are
 * mapped and every descriptor is in place.  0 or -errno. */
int chan_start(struct evshm_chan *c);

/* Drop a reference to a listener's state (the listener's own, or an
 * accepted channel's); the last one frees it. */
void listen_state_put(struct listen_state *ls);

/* Record a sticky error (with the reason err.h noted last) and return it. */
int chan_fail(struct evshm_chan *c, int res);

#endif

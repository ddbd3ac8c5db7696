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

#include "evshm.h"
#include "fdpass.h"
#include "ring.h"

/* A counter written by one thread, read by any: relaxed atomics compile to
 * plain loads and stores, and keep TSan honest. */
typedef _Atomic uint64_t counter_t;

static inline void counter_add(counter_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

static inline uint64_t counter_get(const counter_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* The send side and the receive side may run in two threads: each lives on
 * its own cache lines and touches only its own fields. */
struct chan_tx {
	alignas(64) struct ring_tx ring;
	bool armed;       /* space_event published, bell may hold a kick */
	counter_t msgs, bytes, kicks, sleeps, spins;
	uint64_t fd_seq;  /* next PROTO_FDS sequence number to send */
	bool sock_out;    /* evshm_fd() also watches the socket for room */
};

struct chan_rx {
	alignas(64) struct ring_rx ring;
	bool armed;       /* data_event published, bell may hold a kick */
	counter_t msgs, bytes, kicks, sleeps, spins;
	uint64_t fd_seq;  /* next PROTO_FDS sequence number expected */
	unsigned nfds;    /* descriptors of the peeked message, owned here */
	bool fds_loaded;  /* they have been read from the socket */
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
	int epfd;            /* evshm_fd(): our two bells + socket hang-up */
	int rx_ep, tx_ep;    /* where each side sleeps (wake_open) */
	_Atomic bool fd_used; /* evshm_fd() was asked for: keep it accurate */
	int data_bell;       /* ours: the peer kicks it after a commit */
	int space_bell;      /* ours: the peer kicks it after a release */
	int peer_data_bell;  /* the peer's: we kick it after a commit */
	int peer_space_bell; /* the peer's: we kick it after a release */
	struct region *mine;
	size_t mine_len;
	const struct region *peer;
	size_t peer_len;
	uint32_t tx_size, rx_size;
	int64_t spin_ns;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	_Atomic int hup;     /* the socket hung up (seen by either side) */
	_Atomic int err;     /* sticky -EPROTO once the peer broke the rules */
	struct listen_state *ls; /* accepted channels: the listener's state */
	struct chan_tx tx;
	struct chan_rx rx;
};

/* A zeroed channel with every descriptor -1; NULL if out of memory. */
struct evshm_chan *chan_new(void);

/* Drop a reference to a listener's state (the listener's own, or an
 * accepted channel's); the last one frees it. */
void listen_state_put(struct listen_state *ls);

/* Close @n descriptors and set each to -1. */
void close_fds(int *fds, unsigned n);

#endif

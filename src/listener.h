/* SPDX-License-Identifier: MIT */
/*
 * listener.h: accepting connections for a channel server or a topic
 * publisher, before either's handshake proper.
 *
 * A connection costs nothing until it is admitted.  The listening socket
 * refuses descriptors (SO_PASSRIGHTS 0, inherited by what it accepts), so
 * a client can queue none before it is admitted; the server reads the
 * client's credentials (SO_PEERCRED) and asks the policy at once, and a
 * refused client gets REJECT and is closed.  An admitted one gets READY
 * (now it may send its HELLO with descriptors) and waits in a small FIFO
 * until the HELLO is readable, dropped after the handshake timeout.
 *
 * The FIFO holds PENDING_MAX.  When it is full, a connection parked for
 * more than half the handshake timeout (its grace; honest clients answer
 * READY within a millisecond or so, slower ones on a loaded machine) may
 * be pushed out to make room: the oldest of the newcomer's uid if that uid
 * has PENDING_PER_UID parked (so one uid's flood costs that uid its own
 * slots), else the oldest of all.  When every slot is younger than that,
 * new connections wait in the kernel's backlog (accepting pauses), where a
 * connecting client waits for room.  One call
 * does a bounded amount of work, so a flood cannot hold it; a timer in the
 * pollable set wakes an event loop for drops and for the end of a pause.
 */
#ifndef EVSHM_LISTENER_H
#define EVSHM_LISTENER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "endpoint.h"
#include "proto.h"

#define PENDING_MAX 64
#define PENDING_PER_UID 16
/* New connections one call of listener_next() takes on before it gives
 * the caller a chance (timeout 0 then returns -EAGAIN). */
#define ACCEPT_BUDGET 16

/* A connection, with what the kernel says of its peer. */
struct conn {
	int sock;
	bool fds_possible; /* its queue may hold the peer's descriptors */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint64_t since;    /* when it was parked */
	uint64_t deadline; /* when a parked one is dropped */
};

struct listener_policy {
	/* 0 to admit, or a negative errno to refuse (-EACCES, -EUSERS, the
	 * application's authorize error). */
	int (*admit)(void *arg, const struct conn *c);
	void *arg;
	struct proto_msg ready; /* what every admitted client gets */
	int handshake_timeout_ms;
};

struct listener {
	struct ep_listener ep;
	int epfd;          /* the listening socket, the parked ones, the timer */
	int timer;         /* timerfd: the next drop, or the end of a pause */
	bool paused;       /* the listening socket is out of epfd */
	bool rights_off;   /* SO_PASSRIGHTS is 0 on the listening socket */
	struct listener_policy pol;
	unsigned npend;
	struct conn pend[PENDING_MAX]; /* oldest first */
};

/* Listen at @name (see ep_listen) with @pol.  0 or -errno. */
int listener_open(struct listener *l, const char *name, unsigned mode,
		  const struct listener_policy *pol);
void listener_close(struct listener *l);

/*
 * The next connection whose HELLO (or hang-up) is readable, for the
 * handshake proper: 0 and *out (the caller owns out->sock, and closes it
 * with os_close_sock(sock, out->fds_possible)).  Otherwise the result of
 * the one connection this call ended with: the policy's refusal (-EACCES,
 * -EUSERS, ...), -ECONNRESET (it left before READY), -ETIMEDOUT (a parked
 * one stayed silent past the handshake timeout, or @timeout_ms is up),
 * -EAGAIN (timeout 0, nobody ready), or -errno (-EMFILE, ...).
 */
int listener_next(struct listener *l, struct conn *out, int timeout_ms);

/* Refuse @c with @err (REJECT, best effort) and close it. */
void listener_refuse(struct conn *c, int err);

#endif

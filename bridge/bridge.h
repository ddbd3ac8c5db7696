/* SPDX-License-Identifier: MIT */
/*
 * bridge.h: what the two roles share: start-up (logging, keys, the ZeroMQ
 * context, the event loop, SIGTERM/SIGINT as a descriptor), the loop that
 * drives a role, and the periodic tick (liveness, stats file).
 *
 * A role (import.c, export.c) embeds struct bridge and gives four
 * functions; bridge_run() calls them in this order each round:
 *   wait for events (not if the role or the run queue has work)
 *   -> poll (reap dead sessions, take frames, accept, ...)
 *   -> run queued tasks (the relays' pumps)
 *   -> tick, when due.
 */
#ifndef EVSHM_BRIDGE_BRIDGE_H
#define EVSHM_BRIDGE_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>

#include "loop.h"
#include "opts.h"
#include "zsock.h"

struct bridge {
	const struct bridge_cfg *cfg;
	struct loop *loop;
	void *ctx;                 /* ZeroMQ context */
	struct zsock_sec sec;
	int sfd;                   /* signalfd: SIGTERM, SIGINT */
	struct watch sig_w;
	bool stop;
	bool stats_failed;         /* the last --stats-file write failed */
	uint32_t tick_ms;
};

struct role_ops {
	/* Reap, receive, accept: everything the round's events asked for. */
	void (*poll)(struct bridge *b);
	/* Is there more to do before sleeping (a socket not drained)? */
	bool (*pending)(struct bridge *b);
	void (*tick)(struct bridge *b, uint64_t now);
	/* SIGTERM: end every session, close everything. */
	void (*shutdown)(struct bridge *b);
};

/* Logging as the options say (bridge_setup() does it too). */
void bridge_log_init(const struct bridge_cfg *cfg);

/*
 * Descriptors: raise the soft RLIMIT_NOFILE to the hard limit (nothing in
 * the process uses select(): the bridge and libevshm wait with epoll,
 * libzmq with epoll and poll), then check that it covers --max-sessions x
 * --max-channels.  If it does not, the bridge serves as many channels at
 * once as the limit carries, and logs it: an export sets cfg->max_open
 * (across its sessions), an import lowers cfg->max_channels.  -EMFILE
 * (logged: the bridge must not start) if not even one fits.
 */
int bridge_fd_limits(struct bridge_cfg *cfg);

/* Set up @b for @cfg; keys are loaded here.  0, or an exit status with a
 * message already logged. */
int bridge_setup(struct bridge *b, const struct bridge_cfg *cfg);

/* Run until SIGTERM or SIGINT, then shut the role down.  Returns the exit
 * status. */
int bridge_run(struct bridge *b, const struct role_ops *role);

/* Free what bridge_setup() made (the role has closed its sockets). */
void bridge_cleanup(struct bridge *b);

/* A socket's parameters from the configuration. */
struct zsock_params bridge_sock_params(const struct bridge *b, int type);

int bridge_import(const struct bridge_cfg *cfg);
int bridge_export(const struct bridge_cfg *cfg);

#endif

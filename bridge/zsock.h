/* SPDX-License-Identifier: MIT */
/*
 * zsock.h: the bridge's ZeroMQ sockets, set up one way in one place:
 * security (CURVE or, with --insecure, none), heartbeats, message size
 * limit, queue limits, and a monitor socket that reports connects,
 * disconnects and handshake failures.
 *
 * Queue limits (the argument is in docs/bridge.md, "Flow control"):
 *  - ZMQ_SNDHWM = 0: no limit, so that a ROUTER never drops and never
 *    returns EAGAIN for a full pipe.  What a bridge sends is bounded by
 *    the credit windows (data) and by the stream count (control frames),
 *    not by ZeroMQ.
 *  - ZMQ_RCVHWM stays finite: at worst ZeroMQ stops reading TCP for a
 *    moment (receive-side high-water marks never drop); the bridge
 *    drains its sockets at once anyway.
 *  - ZMQ_ROUTER_MANDATORY = 1: a frame for a peer that has gone fails
 *    with EHOSTUNREACH instead of vanishing.
 */
#ifndef EVSHM_BRIDGE_ZSOCK_H
#define EVSHM_BRIDGE_ZSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"

#define ZSOCK_RID_MAX 255

struct zsock_sec {
	bool insecure;
	struct key_pair kp;                /* ours */
	char server_pub[KEY_Z85_LEN + 1];  /* the pinned server key (client) */
};

struct zsock_params {
	int type;                 /* ZMQ_ROUTER (export) or ZMQ_DEALER */
	uint32_t heartbeat_ms;
	uint32_t timeout_ms;
	uint64_t max_frame;       /* ZMQ_MAXMSGSIZE */
	const uint8_t *rid;       /* DEALER: our routing id */
	size_t rid_len;
};

/* A socket of @p->type with every option set; NULL with @*err. */
void *zsock_open(void *ctx, const struct zsock_params *p,
		 const struct zsock_sec *sec, int *err);

/* Close @s, giving queued frames up to @linger_ms to leave. */
void zsock_close(void *s, int linger_ms);

/* The descriptor to watch for EPOLLIN (edge-like: check zsock_pending()
 * after every send or receive before sleeping). */
int zsock_fd(void *s);

/* Does @s hold a message to receive now? */
bool zsock_pending(void *s);

/* --- monitor ----------------------------------------------------------- */

struct zmon_event {
	uint16_t event;           /* ZMQ_EVENT_* */
	uint32_t value;           /* errno, fd or interval, per event */
	char addr[128];           /* the endpoint */
};

/* A PAIR socket that receives @sock's events in @events. */
void *zmon_open(void *ctx, void *sock, int events, int *err);

/* Stop monitoring @sock and close @mon: before either is closed.  (libzmq
 * sends the monitor's events with a blocking send: with the reading end
 * closed first, the next event, e.g. when @sock closes, blocks libzmq's
 * reaper thread for good.) */
void zmon_close(void *mon, void *sock);

/* The next event: 0, or -EAGAIN when there is none. */
int zmon_read(void *mon, struct zmon_event *ev);

/* "disconnected" for ZMQ_EVENT_DISCONNECTED, etc. */
const char *zmon_name(uint16_t event);

#endif

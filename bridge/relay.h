/* SPDX-License-Identifier: MIT */
/*
 * relay.h: one bridged channel, i.e. one stream of kind "channel": a
 * local evshm channel on this host relayed, both directions, to the
 * stream of the same id on the far bridge (docs/bridge.md).
 *
 * Every local call uses timeout 0; the relay waits on evshm_fd() only
 * when a local call failed with -EAGAIN (that arms it), and otherwise on
 * frames from the far side (credit, data, close).
 *
 * Outbound (local peer -> far side): evshm_peek() gives the length, the
 * message is copied once into a ZeroMQ frame with evshm_recv_fds(), which
 * also says whether descriptors rode along: such a message is refused
 * (descriptors cannot cross hosts), the channel fails on both hosts and
 * the log says why.  A message larger than the far end can deliver is
 * refused the same way.  A message leaves only with credit.
 *
 * Inbound (far side -> local peer): frames wait in a queue, bounded by the
 * credit window, until the local ring has room; credit goes back once a
 * message is in the ring.
 *
 * Closing: each side sends CLOSE once.  When the local peer hangs up, what
 * it sent before is forwarded first (the library delivers it, then
 * -EPIPE), then CLOSE.  When the far end's CLOSE arrives, what is queued
 * here is delivered first, for at most --timeout, then the local channel
 * is closed and its peer sees -EPIPE.
 */
#ifndef EVSHM_BRIDGE_RELAY_H
#define EVSHM_BRIDGE_RELAY_H

#include <evshm.h>

#include "session.h"

struct relay;
struct conn_req;
struct connector;

/* import: a local client was accepted; the relay takes @c and sends OPEN
 * as soon as @s is up (closing the client if that takes longer than
 * --timeout).  0 or -errno (then @c was closed). */
int relay_import(struct session *s, uint32_t id, struct evshm_chan *c);

/* import: @s just came up: send OPEN for every waiting relay. */
void relay_session_up(struct session *s);

/* export: OPEN for @id arrived: connect to the local server through
 * @conn, or refuse the stream (CLOSE with the reason) if its kind or
 * sizes cannot be served.  0, or -EPROTO. */
int relay_export(struct session *s, uint32_t id, const struct wire_open *o,
		 struct connector *conn);

/* export: the local connect of @req finished (req->owner is the relay). */
void relay_connected(struct conn_req *req);

#endif

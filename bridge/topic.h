/* SPDX-License-Identifier: MIT */
/*
 * topic.h: one bridged topic, i.e. one stream of kind "topic" between an
 * export (`--topic NAME` on the publisher's host) and an import (`--topic
 * NAME` on a subscribers' host).  One copy crosses the network per
 * importing host, whatever its number of subscribers (docs/bridge.md,
 * "Topics").
 *
 * Export side: for each import, one subscription to the local topic (on
 * the connector thread), read only with credit: every message once, in
 * order, into DATA frames.  A latest subscription that its publisher
 * laps skips messages: their sequence numbers are skipped too, so the
 * import sees the gap and counts it.
 *
 * Import side: on OPENED (which says the topic's policy and largest
 * message), a local publisher at NAME with the same policy and ring size;
 * a stream starts with the export's whole window outstanding, and the
 * import hands it over (its first CREDIT) once the publisher is open and
 * --subscribers have joined.  Each DATA message is published once for all
 * local subscribers; its credit goes back once the local publisher took
 * it: reliable, that is once every local subscriber's ring had room, so
 * backpressure runs from the slowest subscriber on any host to the
 * publisher.  When the stream ends (the publisher closed, was dropped, the
 * session died), the local publisher closes: local subscribers read what
 * was published, then -EPIPE.  A new stream is tried after a back-off.
 */
#ifndef EVSHM_BRIDGE_TOPIC_H
#define EVSHM_BRIDGE_TOPIC_H

#include <stdint.h>

#include "session.h"
#include "wire.h"

struct topic;
struct conn_req;
struct connector;

/* import: the one topic stream of the current session, and when to try
 * the next.  Owned by import.c, zeroed at start. */
struct topic_link {
	struct topic *t;          /* the stream now, or NULL */
	uint64_t retry_at;        /* ms: open the next one then */
	uint32_t backoff_ms;
	int last_err;             /* the last failure logged, and when: a */
	uint64_t last_err_ms;     /* repeat is logged once a minute */
};

/* import: if @s is up and no stream is open, open one when it is time. */
void topic_link_tick(struct topic_link *l, struct session *s, uint64_t now);

/* export: OPEN of kind topic for @id: subscribe to the local topic
 * through @conn, or refuse the stream (CLOSE with the reason).  0, or
 * -EPROTO. */
int topic_export(struct session *s, uint32_t id, const struct wire_open *o,
		 struct connector *conn);

/* export: the subscription of @req finished (req->owner is the topic). */
void topic_connected(struct conn_req *req);

#endif

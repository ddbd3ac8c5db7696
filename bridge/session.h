/* SPDX-License-Identifier: MIT */
/*
 * session.h: one live connection between an import and an export, and the
 * streams (bridged channels) multiplexed over it.
 *
 * A session is exactly one ZeroMQ connection: the import opens a fresh
 * DEALER socket with a fresh random routing id for each session, so
 * nothing queued for a lost connection is ever replayed into a new one.
 * Everything that goes wrong with the connection (disconnect, silence,
 * a protocol violation) ends the session and every stream in it; each
 * local peer of those streams sees its channel hang up.
 *
 * Liveness: each side sends a PING when it has sent nothing for
 * min(--heartbeat, peer's timeout / 4), and declares the session dead
 * when it has received nothing for its --timeout.
 *
 * Streams: a stream id is a slot in 1..max_streams.  Each side sends
 * CLOSE for a stream exactly once; a slot is free again when both CLOSEs
 * have passed, so a frame can never reach the wrong stream, and a frame
 * for a free slot is a protocol violation.
 *
 * Sessions are freed only by their owner (import.c / export.c) between
 * loop rounds, after session_teardown(): session_fail() only marks them.
 */
#ifndef EVSHM_BRIDGE_SESSION_H
#define EVSHM_BRIDGE_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <zmq.h>

#include "loop.h"
#include "opts.h"
#include "wire.h"
#include "zsock.h"

struct session;
struct stream;

/* What a kind of stream does with the frames of its id: channels
 * (relay.c) and topics (topic.c). */
struct stream_ops {
	/* Its task: the pumps (the watch of its local descriptor, frames and
	 * deadlines defer it). */
	void (*run)(struct stream *st);
	/* import: the export's OPENED. */
	int (*opened)(struct stream *st, const struct wire_open *o);
	/* A DATA frame (header included); the stream may move it away. */
	int (*data)(struct stream *st, zmq_msg_t *frame, uint64_t seq);
	int (*credit)(struct stream *st, uint64_t n);
	/* The far end's CLOSE (@err: 0, or why it failed). */
	int (*closed)(struct stream *st, int err);
	/* Deadlines. */
	void (*tick)(struct stream *st, uint64_t now);
	/* The session is gone: close the local side at once and free. */
	void (*abort)(struct stream *st);
};

/* The base of every stream; frame handlers return 0 or -EPROTO (the
 * session then ends). */
struct stream {
	const struct stream_ops *ops;
	struct session *s;
	uint32_t id;
	struct task task;          /* runs ops->run */
	struct watch w;            /* its local descriptor, once added */
	bool woken;                /* the watch fired since run last looked */
	bool peer_closed;          /* the far end's CLOSE arrived */
	bool gave_up;              /* import: closed while OPENING, so one
				    * OPENED may still cross our CLOSE */
	bool gave_up_opened;       /* ... and it did (once only) */
	uint64_t close_by;         /* ours sent: the far end's CLOSE by then
				    * (ms; 0: none due), else the session
				    * ends (session_tick) */
	bool failed;               /* counted in stats.streams_failed */
};

/* What the owner of a session does on the frames only it understands. */
struct session_host {
	/* export: OPEN for a free slot @id.  0 or -EPROTO. */
	int (*open)(struct session *s, uint32_t id, const struct wire_open *o);
	/* import: WELCOME arrived, the session is up. */
	void (*up)(struct session *s);
};

enum session_state {
	SESSION_HELLO, /* import: HELLO sent, WELCOME awaited */
	SESSION_UP,
	SESSION_DEAD,  /* ended: waiting for session_teardown() */
};

struct session {
	const struct session_host *host;
	void *host_arg;
	struct loop *loop;
	const struct bridge_cfg *cfg;
	void *zs;                  /* the socket (the export's ROUTER is shared) */
	uint8_t rid[ZSOCK_RID_MAX];
	size_t rid_len;
	bool routed;               /* prefix each frame with rid (export) */
	char name[160];            /* for logs: "session ID (who)" */
	char tag[20];              /* for logs: the id alone */
	enum session_state state;
	bool was_up;               /* counted in stats.sessions_up */
	int err;                   /* why it died (positive errno) */
	char why[WIRE_REASON_MAX]; /* ... in words, for the log and BYE */
	bool bye;                  /* teardown may still say BYE */
	bool quiet;                /* log the failure at debug level only */
	uint64_t last_rx, last_tx; /* ms */
	uint32_t ping_ms;          /* send a PING after this long idle */
	uint32_t peer_timeout_ms;  /* the far side's --timeout (HELLO) */
	uint32_t max_streams;      /* usable ids: 1..max_streams */
	uint32_t cap_streams;      /* slots allocated */
	uint32_t nstreams;
	uint32_t next_id;          /* where the search for a free id starts */
	struct stream **slot;      /* [cap_streams + 1] */
	struct session *next;      /* the owner's list */
};

/* Set up @s (zeroed by the caller) for @cap streams.  0 or -ENOMEM. */
int session_init(struct session *s, const struct session_host *host,
		 void *host_arg, struct loop *loop,
		 const struct bridge_cfg *cfg, uint32_t cap);

/* Name it for logs, from the routing id and a description. */
void session_name(struct session *s, const char *what);

static inline bool session_alive(const struct session *s)
{
	return s->state != SESSION_DEAD;
}

/* The session is up (export: HELLO taken; import: WELCOME arrived).
 * @peer_timeout_ms is the far side's silence limit. */
void session_up(struct session *s, uint32_t peer_timeout_ms);

/* How long an import waits for the export's answer to an OPEN: the export
 * answers within its own --timeout (its local connect is bounded by it),
 * the link within ours.  Our --timeout + min(its, ours), at most twice
 * ours: an export announcing a longer timeout does not make the local
 * client wait longer (the open just fails; the export's late answer is
 * taken). */
uint32_t session_open_ms(const struct session *s);
/* How long either side waits for the far end's CLOSE after sending its
 * own: the far side delivers what its local peer has not read for up to
 * its --timeout (or finishes its local connect, within as long), the link
 * takes up to ours.  Our --timeout + its, whatever it is (at most the
 * wire's bound, an hour): an honest far side must never hit this, since
 * the session, every stream in it, ends then. */
uint32_t session_close_ms(const struct session *s);

/* Send a frame with a copy of @payload.  0, or -errno (the session is
 * then marked dead). */
int session_send(struct session *s, uint8_t type, uint32_t stream,
		 uint64_t arg, const void *payload, size_t len);
/* Send @m, a complete frame (header filled); @m is consumed either way. */
int session_send_msg(struct session *s, zmq_msg_t *m);

/* Mark the session dead (once; later calls are ignored).  @err > 0. */
void session_fail(struct session *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Handle one frame received on this session.  Errors end the session. */
void session_on_frame(struct session *s, zmq_msg_t *frame);

/* Pings and the silence limit; the streams' deadlines. */
void session_tick(struct session *s, uint64_t now);

/* Abort every stream (their local peers see the hang-up), say BYE if
 * the connection may still carry it, free the slots. */
void session_teardown(struct session *s);

/* An export: the streams open, the one just attached included, are more
 * than the descriptor limit carries (cfg->max_open): refuse it (EMFILE). */
bool session_fds_full(const struct session *s);

/* Streams: a free id (0 if none), attach, detach (frees the slot). */
uint32_t session_free_id(struct session *s);
void session_attach(struct session *s, struct stream *st, uint32_t id);
void session_detach(struct session *s, struct stream *st);

/* Set up @st (zeroed by the caller, the first member of its kind's
 * object) as stream @id of @s; counted open. */
void stream_init(struct stream *st, struct session *s, uint32_t id,
		 const struct stream_ops *ops);
/* Take @st off the loop and out of its slot, before it is freed. */
void stream_fini(struct stream *st);
/* Send @st's CLOSE (@err: 0 or why) and start waiting for the far
 * end's, if it has not come yet.  session_send()'s result. */
int stream_send_close(struct stream *st, int err);
/* Count @st as failed (once). */
void stream_failed(struct stream *st);

static inline void stream_defer(struct stream *st)
{
	loop_defer(st->s->loop, &st->task);
}

#endif

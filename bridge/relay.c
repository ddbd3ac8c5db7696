/* SPDX-License-Identifier: MIT */
/* relay.c: see relay.h. */
#include "relay.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "connector.h"
#include "credit.h"
#include "log.h"
#include "stats.h"
#include "streamio.h"

enum relay_state {
	RELAY_WAIT,     /* import: accepted; OPEN once the session is up */
	RELAY_OPENING,  /* import: OPEN sent; export: connecting locally */
	RELAY_UP,
	RELAY_DRAINING, /* the far end closed: deliver what is queued */
	RELAY_CLOSING,  /* our CLOSE is sent, the far end's awaited */
	RELAY_DONE,     /* both CLOSEs passed (or none was due): free */
};

struct relay {
	struct stream st;          /* first: a stream is a relay here */
	struct evshm_chan *c;      /* the local channel, until closed */
	size_t local_max;          /* evshm_max_msg(c) */
	pid_t pid;                 /* the local peer */
	enum relay_state state;
	bool out_armed;            /* evshm_peek() said -EAGAIN */
	bool in_armed;             /* evshm_reserve() said -EAGAIN */
	bool local_rx_gone;        /* the local peer can receive no more */
	struct sio_out out;        /* local -> far */
	struct sio_in in;          /* far -> local */
	uint64_t deadline;         /* WAIT, OPENING (import), DRAINING: ms */
	struct conn_req *req;      /* export: the local connect in flight */
};

static const struct stream_ops relay_ops;

static struct relay *of_stream(struct stream *st)
{
	return (struct relay *)(void *)((char *)st - offsetof(struct relay, st));
}

static const struct bridge_cfg *cfg_of(const struct relay *r)
{
	return r->st.s->cfg;
}

static void relay_log(const struct relay *r, enum log_level level,
		      const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void relay_log(const struct relay *r, enum log_level level,
		      const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(level, "session %s channel %u (pid %d): %s", r->st.s->tag,
		r->st.id, (int)r->pid, msg);
}

/* --- the local channel as a source and a sink ------------------------------ */

static int chan_peek(void *src, size_t *len)
{
	const void *p;

	return evshm_peek(((struct relay *)src)->c, &p, len, 0);
}

/* The peeked message is the one received: one copy, from the ring into
 * the frame, and we learn about descriptors: a message that carried any
 * is consumed, its descriptors closed, and refused (-EOPNOTSUPP). */
static int chan_take(void *src, uint8_t *dst, size_t len)
{
	int fds[EVSHM_MAX_FDS];
	unsigned nfds = EVSHM_MAX_FDS;
	int res = evshm_recv_fds(((struct relay *)src)->c, dst, len, fds,
				 &nfds, 0);

	if (res < 0)
		return res;
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	if (nfds) {
		stats.fds_refused++;
		return -EOPNOTSUPP;
	}
	return 0;
}

static const struct sio_src_ops chan_src = {
	.peek = chan_peek,
	.take = chan_take,
};

static int chan_put(void *ctx, const uint8_t *p, uint32_t len)
{
	struct relay *r = ctx;
	void *dst;
	int res = evshm_reserve(r->c, len, &dst, 0);

	if (res < 0)
		return res;
	memcpy(dst, p, len);
	return evshm_commit(r->c, len);
}

/* --- ending --------------------------------------------------------------- */

static void close_local(struct relay *r)
{
	if (!r->c)
		return;
	loop_del(r->st.s->loop, &r->st.w);
	evshm_close(r->c); /* the local peer sees the hang-up */
	r->c = NULL;
	r->out_armed = r->in_armed = false;
	sio_in_discard(&r->in);
}

/* Our side is done: close the local channel and send our CLOSE. */
static void finish(struct relay *r, int err)
{
	close_local(r);
	if (err)
		stream_failed(&r->st);
	stream_send_close(&r->st, err);
	r->state = r->st.peer_closed ? RELAY_DONE : RELAY_CLOSING;
	stream_defer(&r->st);
}

static void relay_free(struct relay *r)
{
	close_local(r);
	sio_in_free(&r->in);
	if (r->req)
		connector_cancel(r->req); /* its result is dropped */
	stream_fini(&r->st);
	free(r);
}

/* --- the pumps -------------------------------------------------------------- */

/* A message that cannot go to the far end: consume it, say why, fail the
 * channel on both hosts. */
static void refuse_outbound(struct relay *r, int err, const char *why,
			    size_t len)
{
	relay_log(r, LOG_NOTICE, "refused a %zu-byte message: %s; closing the "
		  "channel", len, why);
	finish(r, err);
}

/* What pump_out does when the outbound path failed with @res. */
static void failed_out(struct relay *r, int res)
{
	const struct sio_out *o = &r->out;

	if (o->stage == SIO_AT_PEEK) {
		/* -EPIPE: the local peer hung up and everything it sent
		 * has been forwarded. */
		relay_log(r, res == -EPIPE ? LOG_INFO : LOG_NOTICE,
			  "local channel ended: %s", evshm_strerror(res));
		finish(r, res == -EPIPE ? 0 : -res);
	} else if (o->stage == SIO_AT_SIZE) {
		stats.oversize_refused++;
		evshm_release(r->c);
		refuse_outbound(r, EMSGSIZE, "larger than the far end can "
				"deliver", o->len);
	} else if (res == -EOPNOTSUPP) {
		refuse_outbound(r, EOPNOTSUPP, "it carried descriptors, which "
				"cannot cross hosts", o->len);
	} else if (res == -ENOMEM) {
		finish(r, ENOMEM);
	} else if (session_alive(r->st.s)) {
		relay_log(r, LOG_NOTICE, "local receive failed: %s",
			  evshm_strerror(res));
		finish(r, -res);
	}
	/* else the session is dead: its teardown follows */
}

/* Local peer -> far end, while there is credit. */
static void pump_out(struct relay *r)
{
	int res = sio_out_pump(&r->out);

	if (res == SIO_OUT_CREDIT)
		r->out_armed = false; /* the far end's CREDIT wakes us */
	else if (res == SIO_OUT_EMPTY)
		r->out_armed = true;
	else if (res == SIO_OUT_TURN)
		stream_defer(&r->st); /* more to do */
	else
		failed_out(r, res);
}

/* Far end -> local peer, while the ring has room. */
static void pump_in(struct relay *r)
{
	int res = sio_in_deliver(&r->in, chan_put, r);

	r->in_armed = res == -EAGAIN;
	if (res != -EAGAIN && res != -ENODATA) {
		/* -EPIPE: nobody reads here any more.  What the local peer
		 * sent is still forwarded (pump_out) until its -EPIPE, which
		 * closes the channel. */
		r->local_rx_gone = true;
		sio_in_discard(&r->in);
		if (res != -EPIPE) {
			relay_log(r, LOG_NOTICE, "local send failed: %s",
				  evshm_strerror(res));
			finish(r, -res);
		}
	}
}

static void send_open(struct relay *r)
{
	const struct bridge_cfg *cfg = cfg_of(r);
	uint8_t p[WIRE_OPEN_SIZE];
	struct wire_open o = {
		.kind = WIRE_KIND_CHANNEL,
		.window = (uint32_t)cfg->window,
		.max_in = r->local_max,
		.max_out = EVSHM_MAX_MSG(cfg->ring),
	};

	wire_put_open(p, &o);
	if (session_send(r->st.s, WIRE_OPEN, r->st.id, 0, p, sizeof(p)) == 0) {
		r->state = RELAY_OPENING;
		r->deadline = loop_now_ms() + session_open_ms(r->st.s);
	}
}

static void update_interest(struct relay *r)
{
	bool want = r->c && ((r->state == RELAY_UP && r->out_armed) ||
			     (sio_in_len(&r->in) && r->in_armed));

	loop_mod(r->st.s->loop, &r->st.w, want ? EPOLLIN : 0);
}

static void relay_run(struct stream *st)
{
	struct relay *r = of_stream(st);
	struct session *s = r->st.s;

	if (r->state == RELAY_DONE) {
		relay_free(r);
		return;
	}
	if (!session_alive(s))
		return; /* the owner tears the session down */
	switch (r->state) {
	case RELAY_WAIT:
		if (s->state != SESSION_UP)
			break;
		if (r->st.id > s->max_streams) {
			relay_log(r, LOG_NOTICE, "the export takes at most %u "
				  "channels per session: closing", s->max_streams);
			close_local(r);
			stream_failed(&r->st);
			r->state = RELAY_DONE; /* nothing was sent for it */
			break;
		}
		send_open(r);
		break;
	case RELAY_UP:
		pump_in(r);
		if (r->state == RELAY_UP && session_alive(s))
			pump_out(r);
		if (r->state == RELAY_UP && session_alive(s))
			sio_in_grant(&r->in, &r->st, false);
		break;
	case RELAY_DRAINING:
		pump_in(r);
		if (r->state == RELAY_DRAINING &&
		    (!sio_in_len(&r->in) || r->local_rx_gone))
			finish(r, 0);
		break;
	default:
		break;
	}
	if (r->state == RELAY_DONE) {
		relay_free(r);
		return;
	}
	update_interest(r);
}

/* --- frames from the far end ------------------------------------------------ */

static int relay_opened(struct stream *st, const struct wire_open *o)
{
	struct relay *r = of_stream(st);

	if (r->state != RELAY_OPENING || o->kind != WIRE_KIND_CHANNEL)
		return -EPROTO;
	r->out.tx.window = o->window < cfg_of(r)->window
				   ? o->window : (uint32_t)cfg_of(r)->window;
	r->out.peer_max = o->max_in;
	r->state = RELAY_UP;
	relay_log(r, LOG_INFO, "open (the far end takes messages up to %llu "
		  "bytes)", (unsigned long long)o->max_in);
	stream_defer(&r->st);
	return 0;
}

static int relay_data(struct stream *st, zmq_msg_t *frame, uint64_t seq)
{
	struct relay *r = of_stream(st);
	int res;

	if (r->state == RELAY_CLOSING)
		return 0; /* sent before our CLOSE reached the far end */
	if (r->state != RELAY_UP)
		return -EPROTO;
	res = sio_in_frame(&r->in, frame, seq, false, NULL, r->local_rx_gone);
	if (res == -ENOMEM) {
		relay_log(r, LOG_NOTICE, "out of memory");
		finish(r, ENOMEM);
		return 0;
	}
	if (res < 0)
		return res;
	stream_defer(&r->st);
	return 0;
}

static int relay_credit(struct stream *st, uint64_t n)
{
	struct relay *r = of_stream(st);

	if (r->state == RELAY_CLOSING)
		return 0;
	if (r->state != RELAY_UP || credit_tx_grant(&r->out.tx, n) < 0)
		return -EPROTO;
	stream_defer(&r->st);
	return 0;
}

static int relay_closed(struct stream *st, int err)
{
	struct relay *r = of_stream(st);

	switch (r->state) {
	case RELAY_CLOSING:
		r->st.peer_closed = true;
		r->state = RELAY_DONE;
		break;
	case RELAY_OPENING:
		r->st.peer_closed = true;
		if (st->s->routed)
			return 0; /* relay_connected() finishes */
		relay_log(r, LOG_NOTICE, "the far end could not open the channel: "
			  "%s", evshm_strerror(-err));
		finish(r, err);
		return 0;
	case RELAY_UP:
		r->st.peer_closed = true;
		r->state = RELAY_DRAINING;
		r->deadline = loop_now_ms() + cfg_of(r)->timeout_ms;
		if (err)
			stream_failed(&r->st);
		relay_log(r, err ? LOG_NOTICE : LOG_INFO, "the far end closed: %s",
			  err ? evshm_strerror(-err) : "hang-up");
		break;
	default:
		return -EPROTO;
	}
	stream_defer(&r->st);
	return 0;
}

static void relay_tick(struct stream *st, uint64_t now)
{
	struct relay *r = of_stream(st);

	if (r->state == RELAY_WAIT && now >= r->deadline) {
		relay_log(r, LOG_NOTICE, "no session with the export within "
			  "%u ms: closing the local channel",
			  cfg_of(r)->timeout_ms);
		close_local(r);
		stream_failed(&r->st);
		r->state = RELAY_DONE;
		stream_defer(&r->st);
	} else if (r->state == RELAY_OPENING && !st->s->routed &&
		   now >= r->deadline) {
		/* A hung or hostile export: the client must not wait for
		 * ever.  Its answer may still cross our CLOSE (relay_opened);
		 * its CLOSE must follow (session_tick). */
		relay_log(r, LOG_NOTICE, "the export did not answer the open "
			  "within %u ms: closing the local channel",
			  session_open_ms(st->s));
		r->st.gave_up = true;
		finish(r, ETIMEDOUT);
	} else if (r->state == RELAY_DRAINING && now >= r->deadline) {
		relay_log(r, LOG_NOTICE, "the local peer did not take %u "
			  "message(s) within %u ms after the far end closed: "
			  "closing", sio_in_len(&r->in), cfg_of(r)->timeout_ms);
		stream_failed(&r->st);
		finish(r, 0);
	}
}

static void relay_abort(struct stream *st)
{
	struct relay *r = of_stream(st);

	/* What fits in the local ring now still reaches the local peer
	 * (the library delivers it before -EPIPE); the rest is lost with
	 * the session. */
	if (r->c)
		sio_in_deliver(&r->in, chan_put, r);
	if (r->state != RELAY_DONE && r->state != RELAY_CLOSING)
		stream_failed(&r->st);
	relay_free(r);
}

static const struct stream_ops relay_ops = {
	.run = relay_run,
	.opened = relay_opened,
	.data = relay_data,
	.credit = relay_credit,
	.closed = relay_closed,
	.tick = relay_tick,
	.abort = relay_abort,
};

/* --- creation ------------------------------------------------------------- */

static struct relay *relay_new(struct session *s, uint32_t id)
{
	struct relay *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	stream_init(&r->st, s, id, &relay_ops);
	r->in.rx.window = (uint32_t)s->cfg->window;
	r->out = (struct sio_out){ .ops = &chan_src, .src = r, .st = &r->st };
	return r;
}

static int attach_local(struct relay *r, struct evshm_chan *c)
{
	int res = loop_add(r->st.s->loop, &r->st.w, evshm_fd(c), 0);

	if (res < 0)
		return res;
	r->c = c;
	r->local_max = r->in.local_max = evshm_max_msg(c);
	evshm_peer_cred(c, &r->pid, NULL, NULL);
	return 0;
}

int relay_import(struct session *s, uint32_t id, struct evshm_chan *c)
{
	struct relay *r = relay_new(s, id);
	int res;

	if (!r) {
		evshm_close(c);
		return -ENOMEM;
	}
	res = attach_local(r, c);
	if (res < 0) {
		evshm_close(c);
		relay_free(r);
		return res;
	}
	r->state = RELAY_WAIT;
	r->deadline = loop_now_ms() + s->cfg->timeout_ms;
	relay_log(r, LOG_INFO, "local client connected");
	stream_defer(&r->st);
	return 0;
}

void relay_session_up(struct session *s)
{
	for (uint32_t id = 1; id <= s->cap_streams; id++)
		if (s->slot[id] && s->slot[id]->ops == &relay_ops)
			stream_defer(s->slot[id]);
}

/* The largest ring whose messages are at most @msg bytes (0: none). */
static uint64_t ring_within_msg(uint64_t msg)
{
	uint64_t best = 0;

	for (uint64_t r = EVSHM_RING_MIN; r <= EVSHM_RING_MAX; r <<= 1)
		if (EVSHM_MAX_MSG(r) <= msg)
			best = r;
	return best;
}

int relay_export(struct session *s, uint32_t id, const struct wire_open *o,
		 struct connector *conn)
{
	const struct bridge_cfg *cfg = s->cfg;
	struct relay *r = relay_new(s, id);
	uint64_t up_ring = sio_ring_for_msg(o->max_out);
	uint64_t down_ring = ring_within_msg(o->max_in);
	struct conn_req *req;
	int refuse = 0;

	if (!r) {
		/* Without a relay the slot cannot take part in the CLOSE
		 * exchange: end the session rather than confuse it. */
		session_fail(s, ENOMEM, "out of memory");
		return 0;
	}
	r->state = RELAY_OPENING;
	r->out.tx.window = o->window < cfg->window ? o->window
						   : (uint32_t)cfg->window;
	r->out.peer_max = o->max_in;
	if (o->kind != WIRE_KIND_CHANNEL || cfg->topic) {
		relay_log(r, LOG_NOTICE, "refused: stream kind %u is not served "
			  "here (this export serves %s %s)", o->kind,
			  cfg->topic ? "the topic" : "the channels of",
			  cfg->local);
		refuse = EPROTONOSUPPORT;
	} else if (!up_ring || up_ring > cfg->ring || !down_ring) {
		relay_log(r, LOG_NOTICE, "refused: the import's clients may send "
			  "%llu-byte messages, --ring %llu carries %llu",
			  (unsigned long long)o->max_out,
			  (unsigned long long)cfg->ring,
			  (unsigned long long)EVSHM_MAX_MSG(cfg->ring));
		refuse = EFBIG;
	} else if (session_fds_full(s)) {
		relay_log(r, LOG_NOTICE, "refused: %llu channels are open, all "
			  "that the descriptor limit carries (ulimit -Hn)",
			  (unsigned long long)cfg->max_open);
		refuse = EMFILE;
	} else if (!(req = calloc(1, sizeof(*req)))) {
		refuse = ENOMEM;
	}
	if (refuse) {
		finish(r, refuse);
		return 0;
	}
	if (down_ring > cfg->ring)
		down_ring = cfg->ring;
	req->name = cfg->local;
	req->opts = (struct evshm_opts){
		.ring_size = (uint32_t)up_ring,
		.peer_ring_size = (uint32_t)down_ring,
		.handshake_timeout_ms = (int32_t)cfg->timeout_ms,
	};
	req->timeout_ms = (int)cfg->timeout_ms;
	req->owner = r;
	if (connector_submit(conn, s, req) < 0) {
		free(req);
		finish(r, ENOMEM);
		return 0;
	}
	r->req = req;
	return 0;
}

void relay_connected(struct conn_req *req)
{
	struct relay *r = req->owner;
	struct evshm_chan *c = req->chan;
	int err = req->err;
	uint32_t peer_ring = req->opts.peer_ring_size;
	uint8_t p[WIRE_OPEN_SIZE];

	free(req);
	if (!r) {
		evshm_close(c); /* its session is gone */
		return;
	}
	r->req = NULL;
	if (err < 0) {
		relay_log(r, LOG_NOTICE, "cannot connect to %s: %s",
			  cfg_of(r)->local, evshm_strerror(err));
		finish(r, -err);
		return;
	}
	if (r->st.peer_closed) {
		evshm_close(c);
		finish(r, 0);
		return;
	}
	err = attach_local(r, c);
	if (err < 0) {
		evshm_close(c);
		finish(r, -err);
		return;
	}
	struct wire_open o = {
		.kind = WIRE_KIND_CHANNEL,
		.window = (uint32_t)cfg_of(r)->window,
		.max_in = r->local_max,
		.max_out = EVSHM_MAX_MSG(peer_ring),
	};
	wire_put_open(p, &o);
	if (session_send(r->st.s, WIRE_OPENED, r->st.id, 0, p, sizeof(p)) < 0)
		return;
	r->state = RELAY_UP;
	relay_log(r, LOG_INFO, "connected to %s", cfg_of(r)->local);
	stream_defer(&r->st);
}

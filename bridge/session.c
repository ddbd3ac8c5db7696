/* SPDX-License-Identifier: MIT */
/* session.c: see session.h. */
#include "session.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "stats.h"

#define PING_MIN_MS 10u

int session_init(struct session *s, const struct session_host *host,
		 void *host_arg, struct loop *loop,
		 const struct bridge_cfg *cfg, uint32_t cap)
{
	s->slot = calloc((size_t)cap + 1, sizeof(*s->slot));
	if (!s->slot)
		return -ENOMEM;
	s->host = host;
	s->host_arg = host_arg;
	s->loop = loop;
	s->cfg = cfg;
	s->cap_streams = s->max_streams = cap;
	s->next_id = 1;
	s->state = SESSION_HELLO;
	s->last_rx = s->last_tx = loop_now_ms();
	return 0;
}

void session_name(struct session *s, const char *what)
{
	char hex[2 * 16 + 1] = "";

	for (size_t i = 0; i < s->rid_len && i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", s->rid[i]);
	snprintf(s->tag, sizeof(s->tag), "%.16s", hex);
	snprintf(s->name, sizeof(s->name), "session %s%s%s", hex,
		 what ? " " : "", what ? what : "");
}

void session_up(struct session *s, uint32_t peer_timeout_ms)
{
	uint32_t ping = s->cfg->heartbeat_ms;

	/* Speak often enough for the far side's limit, whatever ours is. */
	if (ping > peer_timeout_ms / 4)
		ping = peer_timeout_ms / 4;
	s->ping_ms = ping < PING_MIN_MS ? PING_MIN_MS : ping;
	s->peer_timeout_ms = peer_timeout_ms;
	s->state = SESSION_UP;
	s->was_up = true;
	s->last_rx = s->last_tx = loop_now_ms();
	stats.sessions_up++;
	stats.sessions_total++;
}

void session_fail(struct session *s, int err, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	if (s->state == SESSION_DEAD)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* Say BYE only where the connection may still carry it and the far
	 * side would otherwise wait for its timeout. */
	s->bye = err == EPROTO || err == ESHUTDOWN || err == EPROTONOSUPPORT;
	if (err == EPROTO)
		stats.protocol_errors++;
	if (s->state == SESSION_UP && err != ESHUTDOWN)
		stats.sessions_lost++;
	s->state = SESSION_DEAD;
	s->err = err;
	snprintf(s->why, sizeof(s->why), "%.*s", (int)sizeof(s->why) - 1, why);
	/* A session that never came up and is simply dropped at exit is no
	 * news. */
	if (err == ESHUTDOWN && !s->was_up)
		s->quiet = true;
	log_msg(s->quiet ? LOG_DEBUG : LOG_NOTICE, "%s ended: %s (%u %s%s "
		"closed)", s->name, why, s->nstreams,
		s->cfg->topic ? "topic stream" : "channel",
		s->nstreams == 1 ? "" : "s");
}

uint32_t session_open_ms(const struct session *s)
{
	uint32_t own = s->cfg->timeout_ms;

	return own + (s->peer_timeout_ms < own ? s->peer_timeout_ms : own);
}

uint32_t session_close_ms(const struct session *s)
{
	return s->cfg->timeout_ms + s->peer_timeout_ms;
}

/* Send without looking at the state (teardown's BYE). */
static int send_raw(struct session *s, zmq_msg_t *m)
{
	int res = 0;

	if (s->routed &&
	    zmq_send(s->zs, s->rid, s->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		res = -zmq_errno();
	else if (zmq_msg_send(m, s->zs, ZMQ_DONTWAIT) < 0)
		res = -zmq_errno();
	zmq_msg_close(m);
	if (res == 0)
		s->last_tx = loop_now_ms();
	return res;
}

int session_send_msg(struct session *s, zmq_msg_t *m)
{
	int res;

	if (!session_alive(s) || !s->zs) {
		zmq_msg_close(m);
		return -ENOTCONN;
	}
	res = send_raw(s, m);
	if (res == -EHOSTUNREACH)
		/* ROUTER_MANDATORY: the import's connection is gone. */
		session_fail(s, ECONNRESET, "the import's connection is gone");
	else if (res < 0)
		/* No high-water mark is set (zsock.h): nothing else is
		 * expected; never drop a frame and carry on. */
		session_fail(s, -res, "ZeroMQ refused a frame: %s",
			     zmq_strerror(-res));
	return res;
}

static int build(zmq_msg_t *m, uint8_t type, uint32_t stream, uint64_t arg,
		 const void *payload, size_t len)
{
	if (zmq_msg_init_size(m, WIRE_HDR_SIZE + len) < 0)
		return -ENOMEM;
	uint8_t *p = zmq_msg_data(m);
	wire_put_hdr(p, type, stream, arg);
	if (len)
		memcpy(p + WIRE_HDR_SIZE, payload, len);
	return 0;
}

int session_send(struct session *s, uint8_t type, uint32_t stream,
		 uint64_t arg, const void *payload, size_t len)
{
	zmq_msg_t m;

	if (build(&m, type, stream, arg, payload, len) < 0) {
		session_fail(s, ENOMEM, "out of memory");
		return -ENOMEM;
	}
	return session_send_msg(s, &m);
}

/* --- receiving ------------------------------------------------------------ */

/* The reason text of a BYE, made printable. */
static void bye_reason(const uint8_t *p, size_t n, char *out, size_t cap)
{
	size_t k = 0;

	for (size_t i = 0; i < n && k + 1 < cap; i++)
		out[k++] = isprint(p[i]) ? (char)p[i] : '?';
	out[k] = '\0';
}

static int on_welcome(struct session *s, const struct wire_hello *w)
{
	if (s->routed || s->state != SESSION_HELLO)
		return -EPROTO;
	if (w->max_streams < s->max_streams)
		s->max_streams = w->max_streams;
	session_up(s, w->timeout_ms);
	s->host->up(s);
	return 0;
}

static int on_stream_frame(struct session *s, const struct wire_hdr *h,
			   const struct wire_open *o, zmq_msg_t *frame)
{
	struct stream *st;

	if (s->state != SESSION_UP || h->stream > s->cap_streams)
		return -EPROTO;
	st = s->slot[h->stream];
	if (h->type == WIRE_OPEN) {
		if (!s->routed || st || h->stream > s->max_streams)
			return -EPROTO;
		return s->host->open(s, h->stream, o);
	}
	if (!st)
		return -EPROTO; /* no stream there: never opened, or freed */
	switch (h->type) {
	case WIRE_OPENED:
		if (s->routed)
			return -EPROTO;
		if (st->gave_up && !st->gave_up_opened && !st->peer_closed) {
			st->gave_up_opened = true; /* it crossed our CLOSE:
						    * its CLOSE follows */
			return 0;
		}
		return st->ops->opened(st, o);
	case WIRE_DATA:
		return st->ops->data(st, frame, h->arg);
	case WIRE_CREDIT:
		return st->ops->credit(st, h->arg);
	case WIRE_CLOSE:
		return st->ops->closed(st, (int)h->arg);
	}
	return -EPROTO;
}

void session_on_frame(struct session *s, zmq_msg_t *frame)
{
	const uint8_t *buf = zmq_msg_data(frame);
	size_t len = zmq_msg_size(frame);
	struct wire_hello hello;
	struct wire_open open;
	struct wire_hdr h;
	char why[WIRE_REASON_MAX + 1];
	int res;

	if (!session_alive(s))
		return;
	res = wire_parse(buf, len, &h, &hello, &open);
	if (res < 0) {
		session_fail(s, EPROTO, "malformed %s frame (%zu bytes)",
			     wire_type_name(len ? buf[0] : 0), len);
		return;
	}
	s->last_rx = loop_now_ms();
	if (log_enabled(LOG_DEBUG) && h.type != WIRE_DATA)
		log_debug("%s: %s stream %u arg %llu", s->name,
			  wire_type_name(h.type), h.stream,
			  (unsigned long long)h.arg);
	switch (h.type) {
	case WIRE_PING:
		return;
	case WIRE_BYE:
		bye_reason(buf + WIRE_HDR_SIZE, len - WIRE_HDR_SIZE, why,
			   sizeof(why));
		session_fail(s, h.arg ? (int)h.arg : ECONNRESET,
			     "the far bridge said goodbye: %s", why);
		s->bye = false;
		return;
	case WIRE_HELLO:
		res = -EPROTO; /* only ever the first frame (export.c) */
		break;
	case WIRE_WELCOME:
		res = on_welcome(s, &hello);
		break;
	default:
		res = on_stream_frame(s, &h, &open, frame);
		break;
	}
	if (res < 0)
		session_fail(s, EPROTO, "protocol violation: unexpected %s on "
			     "stream %u", wire_type_name(h.type), h.stream);
}

void session_tick(struct session *s, uint64_t now)
{
	if (!session_alive(s))
		return;
	if (s->state == SESSION_UP) {
		if (now - s->last_rx > s->cfg->timeout_ms) {
			session_fail(s, ETIMEDOUT, "nothing heard for %llu ms",
				     (unsigned long long)(now - s->last_rx));
			return;
		}
		if (now - s->last_tx >= s->ping_ms &&
		    session_send(s, WIRE_PING, 0, 0, NULL, 0) < 0)
			return;
	}
	for (uint32_t id = 1, seen = 0; id <= s->cap_streams &&
	     seen < s->nstreams; id++) {
		struct stream *st = s->slot[id];
		if (!st)
			continue;
		seen++;
		if (st->close_by && !st->peer_closed && now >= st->close_by) {
			/* Its slot cannot be reused before the far end's
			 * CLOSE: a far bridge that never sends it would hold
			 * the slot (and, by repeating that, every slot)
			 * for ever.  It is hung or hostile: end the session,
			 * which returns everything. */
			session_fail(s, ETIMEDOUT, "the far bridge did not "
				     "close stream %u within %u ms of our CLOSE",
				     id, session_close_ms(s));
			s->bye = true; /* it may still hear it */
			return;
		}
		st->ops->tick(st, now);
	}
}

void session_teardown(struct session *s)
{
	if (session_alive(s))
		session_fail(s, ESHUTDOWN, "shutting down");
	for (uint32_t id = 1; id <= s->cap_streams && s->nstreams; id++)
		if (s->slot[id])
			s->slot[id]->ops->abort(s->slot[id]); /* detaches */
	if (s->bye && s->zs) {
		zmq_msg_t m;
		size_t n = strlen(s->why);
		if (build(&m, WIRE_BYE, 0, (uint64_t)s->err, s->why,
			  n < WIRE_REASON_MAX ? n : WIRE_REASON_MAX) == 0)
			send_raw(s, &m);
	}
	if (s->was_up)
		stats.sessions_up--;
	s->was_up = false;
	free(s->slot);
	s->slot = NULL;
	s->cap_streams = 0;
}

bool session_fds_full(const struct session *s)
{
	return s->cfg->max_open && stats.streams_open > s->cfg->max_open;
}

uint32_t session_free_id(struct session *s)
{
	for (uint32_t i = 0; i < s->max_streams; i++) {
		uint32_t id = (s->next_id - 1 + i) % s->max_streams + 1;
		if (!s->slot[id]) {
			s->next_id = id % s->max_streams + 1;
			return id;
		}
	}
	return 0;
}

void session_attach(struct session *s, struct stream *st, uint32_t id)
{
	st->s = s;
	st->id = id;
	s->slot[id] = st;
	s->nstreams++;
}

void session_detach(struct session *s, struct stream *st)
{
	if (st->id && s->slot && s->slot[st->id] == st) {
		s->slot[st->id] = NULL;
		s->nstreams--;
	}
	st->id = 0;
}

/* --- the base of a stream --------------------------------------------------- */

static void stream_task(struct task *t)
{
	struct stream *st = (struct stream *)(void *)((char *)t -
					offsetof(struct stream, task));

	st->ops->run(st);
}

static void stream_watch(struct watch *w, uint32_t events)
{
	struct stream *st = (struct stream *)(void *)((char *)w -
					offsetof(struct stream, w));

	(void)events;
	st->woken = true;
	stream_defer(st);
}

void stream_init(struct stream *st, struct session *s, uint32_t id,
		 const struct stream_ops *ops)
{
	st->ops = ops;
	st->task.fn = stream_task;
	st->w.fn = stream_watch;
	st->w.fd = -1;
	session_attach(s, st, id);
	stats.streams_open++;
	stats.streams_total++;
}

void stream_fini(struct stream *st)
{
	loop_cancel(st->s->loop, &st->task);
	loop_del(st->s->loop, &st->w);
	session_detach(st->s, st);
	stats.streams_open--;
}

int stream_send_close(struct stream *st, int err)
{
	if (!st->peer_closed)
		st->close_by = loop_now_ms() + session_close_ms(st->s);
	return session_send(st->s, WIRE_CLOSE, st->id, (uint64_t)err, NULL, 0);
}

void stream_failed(struct stream *st)
{
	if (!st->failed) {
		st->failed = true;
		stats.streams_failed++;
	}
}

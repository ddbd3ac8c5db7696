/* SPDX-License-Identifier: MIT */
/* topic.c: see topic.h. */
#include "topic.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <evshm.h>

#include "connector.h"
#include "log.h"
#include "stats.h"
#include "streamio.h"

#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 2000u
#define QUIET_REPEAT_MS 60000u /* the same failure: once a minute */
#define LOSS_LOG_MS 10000u     /* latest: losses logged at most this often */

enum topic_state {
	TOPIC_OPENING,  /* import: OPEN sent; export: subscribing locally */
	TOPIC_WAITING,  /* import: publishing; --subscribers not there yet */
	TOPIC_UP,
	TOPIC_DRAINING, /* import: the export closed: publish what is queued */
	TOPIC_CLOSING,  /* our CLOSE is sent, the far end's awaited */
	TOPIC_DONE,     /* both CLOSEs passed (or none was due): free */
};

struct topic {
	struct stream st;          /* first; its watch: evshm_sub_fd() or
				    * evshm_pub_fd() */
	enum topic_state state;
	bool armed;                /* the local side said -EAGAIN */
	bool started;              /* import: it reached TOPIC_UP */
	uint32_t policy;           /* EVSHM_RELIABLE or EVSHM_LATEST */
	uint64_t lost, lost_logged, lost_log_ms; /* latest: messages lost */
	/* export */
	struct evshm_sub *sub;
	struct sio_out out;
	const void *peeked;        /* the message evshm_sub_peek() gave */
	struct conn_req *req;      /* the subscription in flight */
	/* import */
	struct topic_link *link;
	struct evshm_pub *pub;
	struct sio_in in;
	uint64_t dropped;          /* the publisher's drops, last seen */
	uint64_t progress_ms;      /* the queue last moved (or filled) */
	bool muted;                /* evshm_pub_serve() failed: until a tick */
	uint64_t open_by;          /* OPENING: OPENED (or CLOSE) by then, ms */
};

static const struct stream_ops topic_ops;

static struct topic *of_stream(struct stream *st)
{
	return (struct topic *)(void *)((char *)st - offsetof(struct topic, st));
}

static const struct bridge_cfg *cfg_of(const struct topic *t)
{
	return t->st.s->cfg;
}

static const char *policy_name(uint32_t policy)
{
	return policy == EVSHM_LATEST ? "latest" : "reliable";
}

static void topic_log(const struct topic *t, enum log_level level,
		      const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void topic_log(const struct topic *t, enum log_level level,
		      const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(level, "session %s topic %s: %s", t->st.s->tag,
		cfg_of(t)->local, msg);
}

/* Latest: say how many messages never crossed, at most every
 * LOSS_LOG_MS (and once more at the end). */
static void log_losses(struct topic *t, uint64_t now, bool last)
{
	if (t->lost == t->lost_logged ||
	    (!last && now - t->lost_log_ms < LOSS_LOG_MS))
		return;
	topic_log(t, LOG_NOTICE, "%llu message%s lapped before %s (%llu in "
		  "all): the link or the subscribers here are slower than the "
		  "publisher", (unsigned long long)(t->lost - t->lost_logged),
		  t->lost - t->lost_logged == 1 ? "" : "s",
		  t->st.s->routed ? "they could be sent" : "they crossed",
		  (unsigned long long)t->lost);
	t->lost_logged = t->lost;
	t->lost_log_ms = now;
}

/* --- ending --------------------------------------------------------------- */

static void close_local(struct topic *t)
{
	struct session *s = t->st.s;

	loop_del(s->loop, &t->st.w);
	if (t->sub) {
		evshm_sub_close(t->sub); /* the publisher sees us leave */
		t->sub = NULL;
	}
	if (t->pub) {
		/* Local subscribers read what was published, then -EPIPE;
		 * what is still queued here is lost (counted). */
		sio_in_discard(&t->in);
		evshm_pub_close(t->pub);
		t->pub = NULL;
		stats.topic_subscribers = 0;
	}
	t->armed = false;
	log_losses(t, loop_now_ms(), true);
}

/* Our side is done: close the local side and send our CLOSE. */
static void finish(struct topic *t, int err)
{
	close_local(t);
	if (err)
		stream_failed(&t->st);
	stream_send_close(&t->st, err);
	t->state = t->st.peer_closed ? TOPIC_DONE : TOPIC_CLOSING;
	stream_defer(&t->st);
}

/* import: when to try the next stream, after this one ended. */
static void link_next(struct topic *t)
{
	struct topic_link *l = t->link;

	l->t = NULL;
	if (!session_alive(t->st.s)) {
		l->retry_at = 0; /* with the next session */
		return;
	}
	if (t->started)
		l->backoff_ms = 0;
	else
		l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (l->backoff_ms > BACKOFF_MAX_MS)
		l->backoff_ms = BACKOFF_MAX_MS;
	/* A publisher that closed may be restarting: look again soon. */
	l->retry_at = loop_now_ms() + (l->backoff_ms ? l->backoff_ms
						     : BACKOFF_MIN_MS);
}

static void topic_free(struct topic *t)
{
	close_local(t);
	sio_in_free(&t->in);
	if (t->req)
		connector_cancel(t->req); /* its result is dropped */
	if (t->link)
		link_next(t);
	stream_fini(&t->st);
	free(t);
}

/* --- export: the subscription as a source --------------------------------- */

static int sub_peek(void *src, size_t *len)
{
	struct topic *t = src;

	return evshm_sub_peek(t->sub, &t->peeked, len, 0);
}

/* Copy, then release: the library checks that the publisher did not
 * overwrite the message meanwhile (latest: -ESTALE, counted lost at the
 * next peek; reliable: only if it dropped us, -ECONNABORTED). */
static int sub_take(void *src, uint8_t *dst, size_t len)
{
	struct topic *t = src;

	memcpy(dst, t->peeked, len);
	return evshm_sub_release(t->sub);
}

static uint64_t sub_skipped(void *src)
{
	struct topic *t = src;
	uint64_t lost = evshm_sub_lost(t->sub), d = lost - t->lost;

	t->lost = lost;
	stats.topic_lost += d;
	return d;
}

static const struct sio_src_ops sub_src = {
	.peek = sub_peek,
	.take = sub_take,
	.skipped = sub_skipped,
};

/* The subscription ended or failed with @res (o->stage says where). */
static void sub_failed(struct topic *t, int res)
{
	if (t->out.stage == SIO_AT_SEND) {
		if (res == -ENOMEM)
			finish(t, ENOMEM);
		return; /* the session is dead: its teardown follows */
	}
	if (res == -EPIPE) {
		/* Everything it published has been sent. */
		topic_log(t, LOG_NOTICE, "the publisher closed the topic");
		finish(t, 0);
	} else if (res == -ECONNABORTED) {
		stats.topic_dropped++;
		topic_log(t, LOG_NOTICE, "the publisher dropped this bridge's "
			  "subscription: the import's side held the topic up "
			  "longer than the publisher's stall timeout");
		finish(t, ECONNABORTED);
	} else {
		topic_log(t, LOG_NOTICE, "the subscription failed: %s",
			  evshm_strerror(res));
		finish(t, -res);
	}
}

static void export_run(struct topic *t)
{
	int res = sio_out_pump(&t->out);

	if (res == SIO_OUT_CREDIT)
		t->armed = false; /* the import's CREDIT wakes us */
	else if (res == SIO_OUT_EMPTY)
		t->armed = true;
	else if (res == SIO_OUT_TURN)
		stream_defer(&t->st);
	else
		sub_failed(t, res);
}

/* --- import: the local publisher as a sink --------------------------------- */

static int pub_put(void *ctx, const uint8_t *p, uint32_t len)
{
	struct topic *t = ctx;
	void *dst;
	int res = evshm_pub_reserve(t->pub, len, &dst, 0);

	if (res < 0)
		return res;
	memcpy(dst, p, len);
	res = evshm_pub_commit(t->pub, len);
	if (res == 0)
		t->progress_ms = loop_now_ms();
	return res;
}

/* Admit local subscribers, notice those that left or were dropped. */
static void serve(struct topic *t)
{
	struct evshm_pub_stats ps;
	int n = evshm_pub_serve(t->pub, 0);

	if (n < 0) {
		/* Out of descriptors or memory: the joiner waits in the
		 * backlog; look again at the next tick rather than spin. */
		topic_log(t, LOG_NOTICE, "admitting subscribers: %s",
			  evshm_strerror(n));
		t->muted = true;
		return;
	}
	evshm_pub_stats(t->pub, &ps);
	stats.topic_subscribers = ps.subscribers;
	if (ps.dropped != t->dropped) {
		stats.topic_dropped += ps.dropped - t->dropped;
		topic_log(t, LOG_NOTICE, "dropped %llu local subscriber%s: held "
			  "the topic up longer than --stall-timeout",
			  (unsigned long long)(ps.dropped - t->dropped),
			  ps.dropped - t->dropped == 1 ? "" : "s");
		t->dropped = ps.dropped;
	}
}

/* Start the stream: hand the export its window (the first CREDIT). */
static void start(struct topic *t)
{
	t->in.rx.delivered = t->in.rx.received;
	sio_in_grant(&t->in, &t->st, true);
	t->state = TOPIC_UP;
	t->started = true;
	t->progress_ms = loop_now_ms();
	topic_log(t, LOG_INFO, "streaming (%llu local subscriber%s)",
		  (unsigned long long)stats.topic_subscribers,
		  stats.topic_subscribers == 1 ? "" : "s");
}

static void deliver(struct topic *t)
{
	int res = sio_in_deliver(&t->in, pub_put, t);

	t->armed = res == -EAGAIN;
	if (res != -EAGAIN && res != -ENODATA) {
		topic_log(t, LOG_NOTICE, "publishing here failed: %s",
			  evshm_strerror(res));
		finish(t, -res);
	}
}

static void import_run(struct topic *t)
{
	/* Only when its descriptor (or a tick) says so: a few system calls,
	 * not for every frame. */
	if (t->st.woken && !t->muted)
		serve(t);
	t->st.woken = false;
	switch (t->state) {
	case TOPIC_WAITING:
		if (stats.topic_subscribers >= cfg_of(t)->subscribers)
			start(t);
		break;
	case TOPIC_UP:
		deliver(t);
		if (t->state == TOPIC_UP)
			sio_in_grant(&t->in, &t->st, false);
		break;
	case TOPIC_DRAINING:
		deliver(t);
		if (t->state == TOPIC_DRAINING && !sio_in_len(&t->in)) {
			topic_log(t, LOG_INFO, "everything was published here: "
				  "closing");
			finish(t, 0);
		}
		break;
	default:
		break;
	}
}

/* --- both ------------------------------------------------------------------- */

static void update_interest(struct topic *t)
{
	uint32_t ev = 0;

	if (t->sub && t->state == TOPIC_UP && t->armed)
		ev = EPOLLIN;
	/* The publisher's descriptor also says that subscribers join or
	 * leave: always watched, unless serving failed (until a tick). */
	if (t->pub && !t->muted)
		ev = EPOLLIN;
	loop_mod(t->st.s->loop, &t->st.w, ev);
}

static void topic_run(struct stream *st)
{
	struct topic *t = of_stream(st);

	if (t->state == TOPIC_DONE) {
		topic_free(t);
		return;
	}
	if (!session_alive(t->st.s))
		return; /* the owner tears the session down */
	if (t->sub && t->state == TOPIC_UP)
		export_run(t);
	else if (t->pub)
		import_run(t);
	if (t->state == TOPIC_DONE) {
		topic_free(t);
		return;
	}
	update_interest(t);
}

/* import: a stream that could not start; the same failure repeated by
 * the retries is logged once a minute. */
static void link_failed(struct topic *t, int err, const char *why)
{
	struct topic_link *l = t->link;
	uint64_t now = loop_now_ms();
	bool repeat = err == l->last_err && now - l->last_err_ms < QUIET_REPEAT_MS;

	if (!repeat) {
		l->last_err = err;
		l->last_err_ms = now;
	}
	topic_log(t, repeat ? LOG_DEBUG : LOG_NOTICE, "%s; retrying", why);
}

/* --- frames from the far end ------------------------------------------------ */

/* import: the export subscribed; publish here. */
static int topic_opened(struct stream *st, const struct wire_open *o)
{
	struct topic *t = of_stream(st);
	const struct bridge_cfg *cfg = cfg_of(t);
	struct evshm_opts po;
	int res;

	if (st->s->routed || t->state != TOPIC_OPENING ||
	    o->kind != WIRE_KIND_TOPIC ||
	    (o->policy != EVSHM_RELIABLE && o->policy != EVSHM_LATEST) ||
	    o->window > cfg->window || o->max_out > EVSHM_MAX_MSG(cfg->ring))
		return -EPROTO;
	t->policy = o->policy;
	po = (struct evshm_opts){
		.ring_size = (uint32_t)sio_ring_for_msg(o->max_out),
		.policy = o->policy,
		.stall_timeout_ms = (int32_t)cfg->stall_ms,
	};
	res = evshm_pub_open(&t->pub, cfg->local, &po);
	if (res == 0 && (res = loop_add(st->s->loop, &t->st.w,
					evshm_pub_fd(t->pub), EPOLLIN)) < 0) {
		evshm_pub_close(t->pub);
		t->pub = NULL;
	}
	if (res < 0) {
		char why[128];
		snprintf(why, sizeof(why), "cannot publish here: %s",
			 evshm_strerror(res));
		link_failed(t, res, why);
		finish(t, -res);
		return 0;
	}
	/* The export sends nothing until our first CREDIT (start()): its
	 * whole window counts as outstanding until then. */
	t->in.rx.window = o->window;
	t->in.rx.received = o->window;
	t->in.local_max = evshm_pub_max_msg(t->pub);
	t->state = TOPIC_WAITING;
	t->st.woken = true;
	t->link->backoff_ms = 0;
	t->link->last_err = 0;
	topic_log(t, LOG_NOTICE, "publishing here (%s, messages up to %llu "
		  "bytes)%s", policy_name(t->policy),
		  (unsigned long long)o->max_out,
		  cfg->subscribers ? "; waiting for --subscribers" : "");
	stream_defer(&t->st);
	return 0;
}

static int topic_data(struct stream *st, zmq_msg_t *frame, uint64_t seq)
{
	struct topic *t = of_stream(st);
	uint64_t gap = 0;
	bool was_empty = !sio_in_len(&t->in);
	int res;

	if (t->state == TOPIC_CLOSING)
		return 0; /* sent before our CLOSE reached the far end */
	/* Only the export sends data, only once started (a frame sent
	 * before our first CREDIT fails the credit check). */
	if (st->s->routed || (t->state != TOPIC_UP && t->state != TOPIC_WAITING))
		return -EPROTO;
	res = sio_in_frame(&t->in, frame, seq, t->policy == EVSHM_LATEST,
			   &gap, false);
	if (res == -ENOMEM) {
		topic_log(t, LOG_NOTICE, "out of memory");
		finish(t, ENOMEM);
		return 0;
	}
	if (res < 0)
		return res;
	t->lost += gap;
	stats.topic_lost += gap;
	if (was_empty)
		t->progress_ms = loop_now_ms();
	stream_defer(&t->st);
	return 0;
}

static int topic_credit(struct stream *st, uint64_t n)
{
	struct topic *t = of_stream(st);

	if (t->state == TOPIC_CLOSING)
		return 0;
	if (!st->s->routed || t->state != TOPIC_UP ||
	    credit_tx_grant(&t->out.tx, n) < 0)
		return -EPROTO;
	stream_defer(&t->st);
	return 0;
}

/* import: why the export ended the stream, in words. */
static const char *export_closed_why(int err)
{
	switch (err) {
	case 0:
		return "the publisher closed the topic";
	case ECONNABORTED:
		return "the publisher dropped the export's subscription: the "
		       "subscribers here held the topic up longer than the "
		       "publisher's stall timeout";
	case ENOENT:
	case ECONNREFUSED:
		return "nobody publishes the topic at the export";
	case EPROTONOSUPPORT:
		return "the export does not serve a topic (--local?)";
	case EPROTOTYPE:
		return "a channel server, not a topic, listens at the export's "
		       "name";
	case EFBIG:
		return "the topic's messages are larger than --ring allows "
		       "(here or at the export)";
	}
	return NULL;
}

static void import_closed(struct topic *t, int err)
{
	const char *why = export_closed_why(err);
	char buf[64];

	if (!why) {
		snprintf(buf, sizeof(buf), "the export ended the stream: %s",
			 evshm_strerror(-err));
		why = buf;
	}
	if (t->state == TOPIC_OPENING) {
		link_failed(t, err, why);
		finish(t, 0);
		return;
	}
	if (err)
		stream_failed(&t->st);
	topic_log(t, err ? LOG_NOTICE : LOG_INFO, "%s", why);
	t->state = TOPIC_DRAINING;
	t->progress_ms = loop_now_ms();
	stream_defer(&t->st);
}

static int topic_closed(struct stream *st, int err)
{
	struct topic *t = of_stream(st);

	if (t->state == TOPIC_CLOSING) {
		t->st.peer_closed = true;
		t->state = TOPIC_DONE;
		stream_defer(&t->st);
		return 0;
	}
	if (t->state == TOPIC_DRAINING || t->state == TOPIC_DONE)
		return -EPROTO;
	t->st.peer_closed = true;
	if (!st->s->routed) {
		import_closed(t, err);
		return 0;
	}
	if (t->state == TOPIC_OPENING)
		return 0; /* topic_connected() finishes */
	topic_log(t, err ? LOG_NOTICE : LOG_INFO, "the import ended the "
		  "stream%s%s", err ? ": " : "",
		  err == ETIMEDOUT ? "its subscribers took nothing for its "
				     "--stall-timeout + --timeout"
		  : err ? evshm_strerror(-err) : "");
	if (err)
		stream_failed(&t->st);
	finish(t, 0);
	return 0;
}

static void topic_tick(struct stream *st, uint64_t now)
{
	struct topic *t = of_stream(st);
	const struct bridge_cfg *cfg = cfg_of(t);

	log_losses(t, now, false);
	if (!st->s->routed && t->state == TOPIC_OPENING && now >= t->open_by) {
		/* A hung or hostile export: try again rather than wait for
		 * ever (its CLOSE must follow ours: session_tick). */
		char why[96];
		snprintf(why, sizeof(why), "the export did not answer the open "
			 "within %u ms", session_open_ms(st->s));
		link_failed(t, ETIMEDOUT, why);
		t->st.gave_up = true;
		finish(t, ETIMEDOUT);
		return;
	}
	if (!t->pub)
		return;
	/* Subscribers that left while nothing else happened. */
	t->muted = false;
	t->st.woken = true;
	stream_defer(&t->st);
	/* Credit for what trickles: a slow subscriber that moves keeps the
	 * export's subscription moving (the publisher's stall clock). */
	if (t->state == TOPIC_UP)
		sio_in_grant(&t->in, st, true);
	if (!sio_in_len(&t->in)) {
		t->progress_ms = now;
		return;
	}
	if (t->state == TOPIC_DRAINING && now - t->progress_ms >= cfg->timeout_ms) {
		topic_log(t, LOG_NOTICE, "the subscribers here took nothing for "
			  "%u ms after the export closed: closing (%u frame(s) "
			  "lost)", cfg->timeout_ms, sio_in_len(&t->in));
		stream_failed(&t->st);
		finish(t, 0);
	} else if (t->state == TOPIC_UP &&
		   now - t->progress_ms >= (uint64_t)cfg->stall_ms + cfg->timeout_ms) {
		/* The publisher should have dropped whoever holds it up
		 * after --stall-timeout: end the stream rather than hang
		 * every subscriber here. */
		topic_log(t, LOG_NOTICE, "the subscribers here took nothing for "
			  "%llu ms (--stall-timeout + --timeout): ending the "
			  "stream", (unsigned long long)(now - t->progress_ms));
		finish(t, ETIMEDOUT);
	}
}

static void topic_abort(struct stream *st)
{
	struct topic *t = of_stream(st);

	/* What fits in the local ring now still reaches the subscribers
	 * (they read it before -EPIPE); the rest is lost with the session. */
	if (t->pub)
		sio_in_deliver(&t->in, pub_put, t);
	if (t->state != TOPIC_DONE && t->state != TOPIC_CLOSING)
		stream_failed(&t->st);
	topic_free(t);
}

static const struct stream_ops topic_ops = {
	.run = topic_run,
	.opened = topic_opened,
	.data = topic_data,
	.credit = topic_credit,
	.closed = topic_closed,
	.tick = topic_tick,
	.abort = topic_abort,
};

/* --- creation ------------------------------------------------------------- */

static struct topic *topic_new(struct session *s, uint32_t id)
{
	struct topic *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	stream_init(&t->st, s, id, &topic_ops);
	t->out = (struct sio_out){ .ops = &sub_src, .src = t, .st = &t->st };
	return t;
}

void topic_link_tick(struct topic_link *l, struct session *s, uint64_t now)
{
	const struct bridge_cfg *cfg = s->cfg;
	uint8_t p[WIRE_OPEN_MAX];
	struct wire_open o = {
		.kind = WIRE_KIND_TOPIC,
		.window = (uint32_t)cfg->window,
		.max_in = EVSHM_MAX_MSG(cfg->ring),
	};
	uint32_t id;
	struct topic *t;

	if (l->t || s->state != SESSION_UP || now < l->retry_at)
		return;
	id = session_free_id(s);
	if (!id)
		return; /* the last stream's slot is not free yet */
	t = topic_new(s, id);
	if (!t) {
		session_fail(s, ENOMEM, "out of memory");
		return;
	}
	t->link = l;
	l->t = t;
	t->state = TOPIC_OPENING;
	t->open_by = now + session_open_ms(s);
	session_send(s, WIRE_OPEN, id, 0, p, wire_put_open(p, &o));
}

/* export: refuse a topic stream (this export serves channels). */
int topic_export(struct session *s, uint32_t id, const struct wire_open *o,
		 struct connector *conn)
{
	const struct bridge_cfg *cfg = s->cfg;
	struct topic *t = topic_new(s, id);
	struct conn_req *req;

	if (!t) {
		/* Without a stream the slot cannot take part in the CLOSE
		 * exchange: end the session rather than confuse it. */
		session_fail(s, ENOMEM, "out of memory");
		return 0;
	}
	t->state = TOPIC_OPENING;
	t->out.tx.window = o->window < cfg->window ? o->window
						   : (uint32_t)cfg->window;
	t->out.peer_max = o->max_in;
	if (!cfg->topic) {
		log_notice("session %s: refused a topic stream: this export "
			   "serves the channels of %s", s->tag, cfg->local);
		finish(t, EPROTONOSUPPORT);
		return 0;
	}
	if (session_fds_full(s)) {
		log_notice("session %s: refused a topic stream: %llu streams "
			   "are open, all that the descriptor limit carries "
			   "(ulimit -Hn)", s->tag,
			   (unsigned long long)cfg->max_open);
		finish(t, EMFILE);
		return 0;
	}
	req = calloc(1, sizeof(*req));
	if (!req) {
		finish(t, ENOMEM);
		return 0;
	}
	req->topic = true;
	req->name = cfg->local;
	req->opts = (struct evshm_opts){
		.max_ring_size = (uint32_t)cfg->ring,
		.handshake_timeout_ms = (int32_t)cfg->timeout_ms,
	};
	req->timeout_ms = (int)cfg->timeout_ms;
	req->owner = t;
	if (connector_submit(conn, s, req) < 0) {
		free(req);
		finish(t, ENOMEM);
		return 0;
	}
	t->req = req;
	return 0;
}

/* export: the subscription is refused; the same failure is logged once a
 * minute (an import retries every few seconds while nobody publishes). */
static void refuse_subscription(struct topic *t, int err)
{
	static int last_err;
	static uint64_t last_ms;
	uint64_t now = loop_now_ms();
	bool repeat = err == last_err && now - last_ms < QUIET_REPEAT_MS;

	if (!repeat) {
		last_err = err;
		last_ms = now;
	}
	topic_log(t, repeat ? LOG_DEBUG : LOG_NOTICE, "cannot subscribe: %s",
		  evshm_strerror(err));
	finish(t, -err);
}

void topic_connected(struct conn_req *req)
{
	struct topic *t = req->owner;
	struct evshm_sub *sub = req->sub;
	int err = req->err;
	uint8_t p[WIRE_OPEN_MAX];
	size_t max;

	free(req);
	if (!t) {
		evshm_sub_close(sub); /* its session is gone */
		return;
	}
	t->req = NULL;
	if (err < 0) {
		refuse_subscription(t, err);
		return;
	}
	if (t->st.peer_closed) {
		evshm_sub_close(sub);
		finish(t, 0);
		return;
	}
	t->sub = sub;
	max = evshm_sub_max_msg(sub);
	if (max > t->out.peer_max) {
		topic_log(t, LOG_NOTICE, "refused: its messages (up to %zu bytes) "
			  "are larger than the import's --ring allows (%llu)",
			  max, (unsigned long long)t->out.peer_max);
		finish(t, EFBIG);
		return;
	}
	err = loop_add(t->st.s->loop, &t->st.w, evshm_sub_fd(sub), 0);
	if (err < 0) {
		finish(t, -err);
		return;
	}
	t->policy = evshm_sub_policy(sub);
	struct wire_open o = {
		.kind = WIRE_KIND_TOPIC,
		.window = t->out.tx.window,
		.max_out = max,
		.policy = t->policy,
	};
	if (session_send(t->st.s, WIRE_OPENED, t->st.id, 0, p,
			 wire_put_open(p, &o)) < 0)
		return;
	/* Nothing goes out before the import's first CREDIT: count the
	 * whole window as outstanding (topic.h). */
	t->out.tx.sent = t->out.tx.window;
	t->state = TOPIC_UP;
	topic_log(t, LOG_NOTICE, "subscribed (%s, messages up to %zu bytes)",
		  policy_name(t->policy), max);
	stream_defer(&t->st);
}

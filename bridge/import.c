/* SPDX-License-Identifier: MIT */
/*
 * import.c: `evshm-bridge import`.  Listens at the local evshm name; each
 * client that connects is relayed to the export over the current session.
 *
 * There is always one session object.  Its DEALER socket (a fresh one,
 * with a fresh random routing id, for every session) connects to the
 * export; libzmq retries the TCP connection on its own until the export
 * answers.  A session that fails is torn down (its clients see their
 * channels hang up) and replaced: at once if it had been up, else after a
 * back-off (0.1 s doubling to 2 s) so that a refused key does not spin.
 * Clients that arrive while no session is up wait up to --timeout.
 *
 * With --topic there is no listener: each session carries one topic
 * stream (topic.c), which publishes the topic at NAME here while it is
 * up, and is opened again after a back-off when it ends.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>

#include <evshm.h>
#include <zmq.h>

#include "bridge.h"
#include "log.h"
#include "relay.h"
#include "session.h"
#include "stats.h"
#include "topic.h"

#define RID_LEN 8
#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 2000u
#define BYE_LINGER_MS 500
#define FRAMES_PER_ROUND 256
#define QUIET_REPEAT_MS 60000u /* the same failure is logged once a minute */

struct import {
	struct bridge b;                /* first */
	struct evshm_listener *l;
	struct watch lw;
	bool accept_ready, accept_paused;
	struct session *s;              /* never NULL while running */
	void *zs, *mon;                 /* the session's socket and monitor */
	struct watch zw, mw;
	uint64_t connect_at;            /* open the socket then (back-off) */
	uint32_t backoff_ms;
	uint64_t welcome_by;            /* after the handshake: WELCOME by then */
	bool retry_logged;
	char last_fail[256];
	uint64_t last_fail_ms;
	struct topic_link link;         /* --topic */
};

static struct import *of_bridge(struct bridge *b)
{
	return (struct import *)(void *)b;
}

static void note(struct watch *w, uint32_t events)
{
	(void)w;
	(void)events; /* poll() looks at every source each round */
}

static void on_listener(struct watch *w, uint32_t events)
{
	struct import *im = (struct import *)(void *)((char *)w -
						      offsetof(struct import, lw));
	(void)events;
	im->accept_ready = true;
}

static void on_up(struct session *s)
{
	struct import *im = s->host_arg;

	log_notice("%s up", s->name);
	im->backoff_ms = 0;
	im->retry_logged = false;
	im->last_fail[0] = '\0';
	if (im->b.cfg->topic)
		topic_link_tick(&im->link, s, loop_now_ms());
	else
		relay_session_up(s);
}

static int no_open(struct session *s, uint32_t id, const struct wire_open *o)
{
	(void)s, (void)id, (void)o;
	return -EPROTO; /* an export never opens streams */
}

static const struct session_host import_host = {
	.open = no_open,
	.up = on_up,
};

/* --- sessions ------------------------------------------------------------- */

static int new_session(struct import *im)
{
	struct session *s = calloc(1, sizeof(*s));
	char what[300];
	int res;

	if (!s)
		return -ENOMEM;
	res = session_init(s, &import_host, im, im->b.loop, im->b.cfg,
			   (uint32_t)im->b.cfg->max_channels);
	if (res < 0) {
		free(s);
		return res;
	}
	/* A fresh random routing id: the export tells sessions apart by it,
	 * and a new session never inherits an old one's frames. */
	do {
		if (getrandom(s->rid, RID_LEN, 0) != RID_LEN)
			for (int i = 0; i < RID_LEN; i++)
				s->rid[i] = (uint8_t)rand();
	} while (s->rid[0] == 0); /* ids starting with 0 are libzmq's own */
	s->rid_len = RID_LEN;
	snprintf(what, sizeof(what), "to %s", im->b.cfg->endpoint);
	session_name(s, what);
	im->s = s;
	im->connect_at = loop_now_ms() + im->backoff_ms;
	im->welcome_by = 0;
	return 0;
}

static int open_socket(struct import *im)
{
	struct zsock_params p = bridge_sock_params(&im->b, ZMQ_DEALER);
	struct session *s = im->s;
	struct wire_hello h = { .timeout_ms = im->b.cfg->timeout_ms };
	uint8_t payload[WIRE_HELLO_SIZE];
	int res = 0;

	p.rid = s->rid;
	p.rid_len = s->rid_len;
	im->zs = zsock_open(im->b.ctx, &p, &im->b.sec, &res);
	if (!im->zs)
		return res;
	im->mon = zmon_open(im->b.ctx, im->zs, ZMQ_EVENT_ALL, &res);
	if (!im->mon)
		goto out_close;
	if (zmq_connect(im->zs, im->b.cfg->endpoint) < 0) {
		res = -zmq_errno();
		goto out_close;
	}
	res = loop_add(im->b.loop, &im->zw, zsock_fd(im->zs), EPOLLIN);
	if (res == 0)
		res = loop_add(im->b.loop, &im->mw, zsock_fd(im->mon), EPOLLIN);
	if (res < 0)
		goto out_close;
	s->zs = im->zs;
	/* Queued until the connection is up (ZMQ_IMMEDIATE is off): no
	 * frame can meet a half-made connection, and a lost connection
	 * ends the session with its socket. */
	wire_put_hello(payload, &h);
	session_send(s, WIRE_HELLO, 0, 0, payload, sizeof(payload));
	log_info("%s: connecting", s->name);
	return 0;

out_close:
	loop_del(im->b.loop, &im->mw);
	loop_del(im->b.loop, &im->zw);
	zmon_close(im->mon, im->zs);
	zsock_close(im->zs, 0);
	im->mon = im->zs = NULL;
	return res;
}

/* Fail the session; the same failure is logged only once a minute (a
 * refused key would otherwise log at every retry). */
static void fail_quietly(struct import *im, int err, const char *why)
{
	uint64_t now = loop_now_ms();
	bool repeat = !strcmp(why, im->last_fail) &&
		      now - im->last_fail_ms < QUIET_REPEAT_MS;

	if (!session_alive(im->s))
		return; /* a second event about the same failure */
	if (!repeat) {
		snprintf(im->last_fail, sizeof(im->last_fail), "%s", why);
		im->last_fail_ms = now;
	}
	/* Quiet only if nobody is affected: closed clients are news. */
	im->s->quiet = repeat && !im->s->nstreams;
	session_fail(im->s, err, "%s", why);
}

/* Tear the current session down and close its socket. */
static void end_session(struct import *im)
{
	struct session *s = im->s;

	session_teardown(s);
	loop_del(im->b.loop, &im->mw);
	loop_del(im->b.loop, &im->zw);
	zmon_close(im->mon, im->zs);
	/* A BYE gets a moment to leave; libzmq sends it in the background. */
	zsock_close(im->zs, s->bye ? BYE_LINGER_MS : 0);
	im->mon = im->zs = NULL;
	free(s);
	im->s = NULL;
}

/* Replace a dead session by the next. */
static void reap(struct import *im)
{
	bool was_up = im->s->was_up;

	if (session_alive(im->s))
		return;
	end_session(im);
	if (was_up)
		im->backoff_ms = 0;
	else
		im->backoff_ms = im->backoff_ms ? im->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (im->backoff_ms > BACKOFF_MAX_MS)
		im->backoff_ms = BACKOFF_MAX_MS;
	if (new_session(im) < 0) {
		log_error("out of memory");
		im->b.stop = true;
	}
}

static void monitor(struct import *im)
{
	struct zmon_event ev;
	struct session *s = im->s;
	uint64_t now = loop_now_ms();

	while (im->mon && zmon_read(im->mon, &ev) == 0) {
		log_debug("%s: %s (%u)", s->name, zmon_name(ev.event), ev.value);
		switch (ev.event) {
		case ZMQ_EVENT_CONNECT_RETRIED:
			if (!im->retry_logged)
				log_notice("%s: the export does not answer yet; "
					   "retrying", s->name);
			im->retry_logged = true;
			break;
		case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
			im->welcome_by = now + im->b.cfg->timeout_ms;
			break;
		case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
			stats.sessions_refused++;
			fail_quietly(im, EACCES, "the export refused this bridge's "
				     "key (not in its allow-list)");
			break;
		case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
		case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
			stats.sessions_refused++;
			fail_quietly(im, EPROTO, im->b.sec.insecure
				? "handshake failed: does the export use CURVE "
				  "(then drop --insecure)?"
				: "CURVE handshake failed: the export does not "
				  "hold the key given with --server-key, or "
				  "does not use CURVE");
			break;
		case ZMQ_EVENT_DISCONNECTED:
			if (s->state == SESSION_UP)
				session_fail(s, ECONNRESET, "the connection to "
					     "the export was lost");
			else
				fail_quietly(im, ECONNRESET, "disconnected before "
					     "the session came up");
			break;
		}
	}
}

/* --- local clients -------------------------------------------------------- */

static void accept_all(struct import *im)
{
	im->accept_ready = false;
	for (;;) {
		struct evshm_chan *c;
		uint32_t id;
		int res = evshm_accept(im->l, &c, 0);

		if (res == -EAGAIN)
			return;
		if (res == -EMFILE || res == -ENFILE || res == -ENOMEM) {
			/* The client stays in the backlog: stop watching the
			 * listener until a channel closes, rather than spin. */
			log_notice("accept: %s: paused", evshm_strerror(res));
			loop_mod(im->b.loop, &im->lw, 0);
			im->accept_paused = true;
			return;
		}
		if (res < 0) {
			log_notice("refused a local client: %s",
				   evshm_strerror(res));
			continue;
		}
		id = session_free_id(im->s);
		if (!id) {
			log_notice("refused a local client: %u channels are open "
				   "(--max-channels)", im->s->max_streams);
			stats.streams_failed++;
			evshm_close(c);
			continue;
		}
		res = relay_import(im->s, id, c);
		if (res < 0)
			log_notice("refused a local client: %s", strerror(-res));
	}
}

/* --- the role ------------------------------------------------------------- */

static void import_poll(struct bridge *b)
{
	struct import *im = of_bridge(b);

	if (!im->s)
		return;
	monitor(im);
	reap(im);
	for (int n = 0; n < FRAMES_PER_ROUND && im->zs && session_alive(im->s);
	     n++) {
		zmq_msg_t m;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, im->zs, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			break;
		}
		session_on_frame(im->s, &m);
		zmq_msg_close(&m);
	}
	reap(im);
	if (im->accept_ready && im->s)
		accept_all(im);
}

static bool import_pending(struct bridge *b)
{
	struct import *im = of_bridge(b);

	return im->s && ((im->zs && zsock_pending(im->zs)) ||
			 (im->mon && zsock_pending(im->mon)) ||
			 !session_alive(im->s));
}

static void import_tick(struct bridge *b, uint64_t now)
{
	struct import *im = of_bridge(b);
	struct session *s = im->s;

	if (!s)
		return;
	/* Out of descriptors a moment ago: try the backlog again. */
	if (im->accept_paused &&
	    loop_mod(b->loop, &im->lw, EPOLLIN) == 0) {
		im->accept_paused = false;
		im->accept_ready = true;
	}
	if (!im->zs && now >= im->connect_at) {
		int res = open_socket(im);
		if (res < 0) {
			log_error("cannot connect to %s: %s", b->cfg->endpoint,
				  zmq_strerror(-res));
			b->stop = true;
			return;
		}
	}
	if (s->state == SESSION_HELLO && im->welcome_by && now > im->welcome_by)
		fail_quietly(im, ETIMEDOUT, "the export did not answer HELLO");
	session_tick(s, now);
	if (b->cfg->topic && session_alive(s))
		topic_link_tick(&im->link, s, now);
}

static void import_shutdown(struct bridge *b)
{
	struct import *im = of_bridge(b);

	loop_del(b->loop, &im->lw);
	evshm_listener_close(im->l); /* no new clients (NULL: --topic) */
	im->l = NULL;
	if (im->s) {
		session_fail(im->s, ESHUTDOWN, "shutting down");
		end_session(im);
	}
}

static const struct role_ops import_role = {
	.poll = import_poll,
	.pending = import_pending,
	.tick = import_tick,
	.shutdown = import_shutdown,
};

int bridge_import(const struct bridge_cfg *cfg)
{
	struct import im = {
		.lw = { .fn = on_listener, .fd = -1 },
		.zw = { .fn = note, .fd = -1 },
		.mw = { .fn = note, .fd = -1 },
	};
	/* Clients may use rings up to --ring either way; the ring toward
	 * them is the library's default unless they ask. */
	struct evshm_opts o = {
		.ring_size = cfg->ring < EVSHM_RING_DEFAULT ? (uint32_t)cfg->ring
							   : EVSHM_RING_DEFAULT,
		.max_ring_size = (uint32_t)cfg->ring,
		.handshake_timeout_ms = (int32_t)cfg->timeout_ms,
	};
	int res = bridge_setup(&im.b, cfg);

	if (res)
		goto out;
	if (!cfg->topic) {
		res = evshm_listen(&im.l, cfg->local, &o);
		if (res < 0) {
			log_error("cannot listen at %s: %s", cfg->local,
				  evshm_strerror(res));
			res = BRIDGE_EXIT_FAIL;
			goto out;
		}
		res = loop_add(im.b.loop, &im.lw, evshm_listener_fd(im.l),
			       EPOLLIN);
	}
	if (res == 0)
		res = new_session(&im);
	if (res < 0) {
		log_error("start-up: %s", strerror(-res));
		res = BRIDGE_EXIT_FAIL;
		goto out_close;
	}
	if (cfg->topic)
		log_notice("importing the topic %s from the export at %s (%s)",
			   cfg->local, cfg->endpoint,
			   cfg->insecure ? "insecure" : "CURVE");
	else
		log_notice("listening at %s for the export at %s (%s)",
			   cfg->local, cfg->endpoint,
			   cfg->insecure ? "insecure" : "CURVE");
	res = bridge_run(&im.b, &import_role);
out_close:
	loop_del(im.b.loop, &im.lw);
	evshm_listener_close(im.l);
	if (im.s)
		end_session(&im);
out:
	bridge_cleanup(&im.b);
	return res;
}

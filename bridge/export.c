/* SPDX-License-Identifier: MIT */
/*
 * export.c: `evshm-bridge export`.  A ROUTER socket accepts imports; each
 * import's routing id is one session, started by its HELLO.  For every
 * stream an import opens, a local evshm channel is connected to the server
 * at --local (on the connector thread) and relayed; with --topic, each
 * topic stream is a subscription to the topic there (topic.c).
 *
 * A session ends when its import says BYE, when nothing is heard for
 * --timeout, or when a frame for it cannot be routed (ROUTER_MANDATORY:
 * its connection is gone).  After any disconnect the export pings every
 * session at the next tick, so that a vanished import is found within a
 * tick rather than at its timeout.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <evshm.h>
#include <zmq.h>

#include "bridge.h"
#include "connector.h"
#include "keys.h"
#include "log.h"
#include "relay.h"
#include "session.h"
#include "stats.h"
#include "topic.h"
#include "zap.h"

#define FRAMES_PER_ROUND 256
#define BYE_LINGER_MS 500

struct export {
	struct bridge b;                /* first */
	void *zs, *mon, *zap;
	struct watch zw, mw, zapw, connw;
	struct allow_list allow;
	struct connector *conn;
	struct session *sessions;
	unsigned nsessions;
	bool probe;                     /* a connection dropped: ping all */
	struct log_limit refusals;      /* peers can cause them at will */
};

static struct export *of_bridge(struct bridge *b)
{
	return (struct export *)(void *)b;
}

static void note(struct watch *w, uint32_t events)
{
	(void)w;
	(void)events; /* poll() looks at every source each round */
}

static int on_open(struct session *s, uint32_t id, const struct wire_open *o)
{
	struct export *ex = s->host_arg;

	if (o->kind == WIRE_KIND_TOPIC)
		return topic_export(s, id, o, ex->conn);
	return relay_export(s, id, o, ex->conn);
}

static void no_up(struct session *s)
{
	(void)s; /* an export's sessions are up from their HELLO */
}

static const struct session_host export_host = {
	.open = on_open,
	.up = no_up,
};

/* --- sessions ------------------------------------------------------------- */

static struct session *find(struct export *ex, const void *rid, size_t n)
{
	for (struct session *s = ex->sessions; s; s = s->next)
		if (s->rid_len == n && !memcmp(s->rid, rid, n))
			return s;
	return NULL;
}

/* Say BYE to a peer that has no session (refused at HELLO). */
static void refuse(struct export *ex, zmq_msg_t *rid, int err, const char *why)
{
	uint8_t frame[WIRE_HDR_SIZE + WIRE_REASON_MAX];
	size_t n = strlen(why) < WIRE_REASON_MAX ? strlen(why) : WIRE_REASON_MAX;

	wire_put_hdr(frame, WIRE_BYE, 0, (uint64_t)err);
	memcpy(frame + WIRE_HDR_SIZE, why, n);
	if (zmq_send(ex->zs, zmq_msg_data(rid), zmq_msg_size(rid),
		     ZMQ_SNDMORE | ZMQ_DONTWAIT) == (int)zmq_msg_size(rid))
		zmq_send(ex->zs, frame, WIRE_HDR_SIZE + n, ZMQ_DONTWAIT);
	stats.sessions_refused++;
}

/* A frame from a routing id without a session: only HELLO may start one. */
static void hello(struct export *ex, zmq_msg_t *rid, zmq_msg_t *m)
{
	const char *addr = zmq_msg_gets(m, "Peer-Address");
	const char *user = zmq_msg_gets(m, "User-Id");
	struct wire_hello h;
	struct wire_hdr hdr;
	struct session *s;
	uint8_t payload[WIRE_HELLO_SIZE];
	char what[256];
	int res = wire_parse(zmq_msg_data(m), zmq_msg_size(m), &hdr, &h, NULL);

	addr = addr ? addr : "?";
	if (res == 0 && hdr.type != WIRE_HELLO)
		res = -EPROTO;
	if (res < 0) {
		/* A session we ended, or not a bridge: no reply but to a
		 * HELLO of another version. */
		log_debug("ignored a frame from %s without a session", addr);
		if (res == -EPROTONOSUPPORT) {
			log_limited(&ex->refusals, LOG_NOTICE, "refused an "
				    "import at %s: another protocol version",
				    addr);
			/* The wire reads the payload without a full header
			 * only for HELLO; hdr is valid here. */
			refuse(ex, rid, EPROTONOSUPPORT, "protocol version 1 only");
		}
		return;
	}
	if (zmq_msg_size(rid) > ZSOCK_RID_MAX)
		return;
	if (ex->nsessions >= ex->b.cfg->max_sessions) {
		log_limited(&ex->refusals, LOG_NOTICE, "refused an import at "
			    "%s: %u sessions (--max-sessions)", addr,
			    ex->nsessions);
		refuse(ex, rid, EUSERS, "too many sessions");
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s || session_init(s, &export_host, ex, ex->b.loop, ex->b.cfg,
			       (uint32_t)ex->b.cfg->max_channels) < 0) {
		free(s);
		refuse(ex, rid, ENOMEM, "out of memory");
		return;
	}
	s->routed = true;
	s->zs = ex->zs;
	s->rid_len = zmq_msg_size(rid);
	memcpy(s->rid, zmq_msg_data(rid), s->rid_len);
	snprintf(what, sizeof(what), "from %s%s%s%s", addr,
		 user && *user ? " (key " : "", user && *user ? user : "",
		 user && *user ? ")" : "");
	session_name(s, what);
	s->next = ex->sessions;
	ex->sessions = s;
	ex->nsessions++;
	session_up(s, h.timeout_ms);
	h = (struct wire_hello){ .timeout_ms = ex->b.cfg->timeout_ms,
				 .max_streams = s->max_streams };
	wire_put_hello(payload, &h);
	if (session_send(s, WIRE_WELCOME, 0, 0, payload, sizeof(payload)) == 0)
		log_notice("%s up", s->name);
}

static void reap(struct export *ex)
{
	for (struct session **p = &ex->sessions, *s; (s = *p);) {
		if (session_alive(s)) {
			p = &s->next;
			continue;
		}
		*p = s->next;
		ex->nsessions--;
		session_teardown(s);
		free(s);
	}
}

static void monitor(struct export *ex)
{
	struct zmon_event ev;

	while (zmon_read(ex->mon, &ev) == 0) {
		log_debug("%s: %s (%u)", ev.addr, zmon_name(ev.event), ev.value);
		switch (ev.event) {
		case ZMQ_EVENT_DISCONNECTED:
			ex->probe = true;
			break;
		case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
		case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
			/* Key refusals are logged by the ZAP handler. */
			log_limited(&ex->refusals, LOG_NOTICE, "a client's "
				    "handshake failed on %s (not CURVE, or not "
				    "the key it expects?)", ev.addr);
			stats.sessions_refused++;
			break;
		}
	}
}

/* --- the role ------------------------------------------------------------- */

static void receive(struct export *ex)
{
	for (int n = 0; n < FRAMES_PER_ROUND; n++) {
		zmq_msg_t rid, m;
		struct session *s;

		zmq_msg_init(&rid);
		if (zmq_msg_recv(&rid, ex->zs, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&rid);
			return;
		}
		zmq_msg_init(&m);
		/* A ROUTER always has the routing id first, then our one
		 * frame.  Anything longer is not an import of ours: skip it
		 * whole and end its session. */
		if (!zmq_msg_more(&rid) || zmq_msg_recv(&m, ex->zs, 0) < 0) {
			zmq_msg_close(&m);
			zmq_msg_close(&rid);
			continue;
		}
		s = find(ex, zmq_msg_data(&rid), zmq_msg_size(&rid));
		if (zmq_msg_more(&m)) {
			while (zmq_msg_more(&m) && zmq_msg_recv(&m, ex->zs, 0) >= 0)
				;
			if (s)
				session_fail(s, EPROTO, "a multipart message");
		} else if (s) {
			session_on_frame(s, &m);
		} else {
			hello(ex, &rid, &m);
		}
		zmq_msg_close(&m);
		zmq_msg_close(&rid);
	}
}

static void export_poll(struct bridge *b)
{
	struct export *ex = of_bridge(b);
	struct conn_req *req;

	if (ex->zap)
		zap_serve(ex->zap, &ex->allow, &ex->refusals);
	monitor(ex);
	reap(ex);
	while ((req = connector_done(ex->conn))) {
		if (req->topic)
			topic_connected(req);
		else
			relay_connected(req);
	}
	receive(ex);
	reap(ex);
}

static bool export_pending(struct bridge *b)
{
	struct export *ex = of_bridge(b);

	return zsock_pending(ex->zs) || zsock_pending(ex->mon) ||
	       (ex->zap && zsock_pending(ex->zap));
}

static void export_tick(struct bridge *b, uint64_t now)
{
	struct export *ex = of_bridge(b);

	for (struct session *s = ex->sessions; s; s = s->next) {
		/* A send to a vanished import fails with EHOSTUNREACH. */
		if (ex->probe && session_alive(s))
			session_send(s, WIRE_PING, 0, 0, NULL, 0);
		session_tick(s, now);
	}
	ex->probe = false;
	/* Opens still queued at their deadline fail now, not when a thread
	 * frees up. */
	connector_expire(ex->conn, now);
	log_limit_flush(&ex->refusals, "refusals", false);
}

static void export_shutdown(struct bridge *b)
{
	struct export *ex = of_bridge(b);

	for (struct session *s = ex->sessions; s; s = s->next)
		session_fail(s, ESHUTDOWN, "shutting down");
	reap(ex);
	log_limit_flush(&ex->refusals, "refusals", true);
}

static const struct role_ops export_role = {
	.poll = export_poll,
	.pending = export_pending,
	.tick = export_tick,
	.shutdown = export_shutdown,
};

static int start(struct export *ex)
{
	const struct bridge_cfg *cfg = ex->b.cfg;
	struct zsock_params p = bridge_sock_params(&ex->b, ZMQ_ROUTER);
	char err[512];
	int res = 0;

	res = connector_new(&ex->conn);
	if (res < 0) {
		log_error("connector thread: %s", strerror(-res));
		return res;
	}
	if (!cfg->insecure) {
		res = keys_load_allow(cfg->allow, &ex->allow, err, sizeof(err));
		if (res < 0) {
			log_error("%s", err);
			return res;
		}
		/* The handler must be bound before a CURVE server binds. */
		ex->zap = zap_open(ex->b.ctx, &res);
		if (!ex->zap)
			goto out_zmq;
	}
	ex->zs = zsock_open(ex->b.ctx, &p, &ex->b.sec, &res);
	if (!ex->zs)
		goto out_zmq;
	/* Not ACCEPT_FAILED: out of descriptors (connections that hold
	 * them all), libzmq retries the accept at once, an event each time,
	 * and reading them would spin this thread too. */
	ex->mon = zmon_open(ex->b.ctx, ex->zs,
			    ZMQ_EVENT_ALL & ~ZMQ_EVENT_ACCEPT_FAILED, &res);
	if (!ex->mon)
		goto out_zmq;
	if (zmq_bind(ex->zs, cfg->endpoint) < 0) {
		res = -zmq_errno();
		log_error("cannot bind %s: %s", cfg->endpoint, zmq_strerror(-res));
		return res;
	}
	if ((res = loop_add(ex->b.loop, &ex->zw, zsock_fd(ex->zs), EPOLLIN)) ||
	    (res = loop_add(ex->b.loop, &ex->mw, zsock_fd(ex->mon), EPOLLIN)) ||
	    (ex->zap &&
	     (res = loop_add(ex->b.loop, &ex->zapw, zsock_fd(ex->zap), EPOLLIN))) ||
	    (res = loop_add(ex->b.loop, &ex->connw, connector_fd(ex->conn),
			    EPOLLIN))) {
		log_error("event loop: %s", strerror(-res));
		return res;
	}
	/* The endpoint as bound: "tcp://127.0.0.1:*" shows its port. */
	char ep[256];
	size_t n = sizeof(ep);
	if (zmq_getsockopt(ex->zs, ZMQ_LAST_ENDPOINT, ep, &n) < 0)
		snprintf(ep, sizeof(ep), "%s", cfg->endpoint);
	log_notice("exporting %s%s on %s (%s)", cfg->topic ? "the topic " : "",
		   cfg->local, ep, cfg->insecure ? "insecure" : "CURVE");
	return 0;

out_zmq:
	log_error("ZeroMQ: %s", zmq_strerror(-res));
	return res;
}

int bridge_export(const struct bridge_cfg *cfg)
{
	struct export ex = {
		.zw = { .fn = note, .fd = -1 },
		.mw = { .fn = note, .fd = -1 },
		.zapw = { .fn = note, .fd = -1 },
		.connw = { .fn = note, .fd = -1 },
	};
	int res = bridge_setup(&ex.b, cfg);

	if (res == 0)
		res = start(&ex) < 0 ? BRIDGE_EXIT_FAIL
				     : bridge_run(&ex.b, &export_role);
	if (ex.b.loop) {
		loop_del(ex.b.loop, &ex.connw);
		loop_del(ex.b.loop, &ex.zapw);
		loop_del(ex.b.loop, &ex.mw);
		loop_del(ex.b.loop, &ex.zw);
	}
	/* Every session is gone: the connector's leftovers have no owner. */
	connector_free(ex.conn);
	zmon_close(ex.mon, ex.zs);
	zsock_close(ex.zs, BYE_LINGER_MS);
	zsock_close(ex.zap, 0);
	keys_free_allow(&ex.allow);
	bridge_cleanup(&ex.b);
	return res;
}

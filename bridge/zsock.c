/* SPDX-License-Identifier: MIT */
/* zsock.c: see zsock.h. */
#include "zsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "wire.h"

#define ZAP_DOMAIN "evshm-bridge"
#define RECONNECT_IVL_MS 100
#define RECONNECT_IVL_MAX_MS 2000

static int set_int(void *s, int opt, int v)
{
	return zmq_setsockopt(s, opt, &v, sizeof(v));
}

static int set_security(void *s, int type, const struct zsock_sec *sec)
{
	if (sec->insecure)
		return 0;
	if (type == ZMQ_ROUTER) {
		/* The server: our secret key; clients are checked by the ZAP
		 * handler (zap.c) against the allow-list. */
		if (set_int(s, ZMQ_CURVE_SERVER, 1) < 0 ||
		    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec->kp.sec,
				   KEY_Z85_LEN + 1) < 0 ||
		    zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN,
				   strlen(ZAP_DOMAIN)) < 0)
			return -1;
		return 0;
	}
	/* The client: the server's key is pinned; a server that cannot
	 * prove it holds the matching secret key fails the handshake. */
	if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, sec->server_pub,
			   KEY_Z85_LEN + 1) < 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, sec->kp.pub,
			   KEY_Z85_LEN + 1) < 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec->kp.sec,
			   KEY_Z85_LEN + 1) < 0)
		return -1;
	return 0;
}

void *zsock_open(void *ctx, const struct zsock_params *p,
		 const struct zsock_sec *sec, int *err)
{
	int64_t max = (int64_t)p->max_frame;
	void *s = zmq_socket(ctx, p->type);

	if (!s) {
		*err = -zmq_errno();
		return NULL;
	}
	if (set_int(s, ZMQ_LINGER, 0) < 0 || set_int(s, ZMQ_SNDHWM, 0) < 0 ||
	    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof(max)) < 0 ||
	    set_int(s, ZMQ_HEARTBEAT_IVL, (int)p->heartbeat_ms) < 0 ||
	    set_int(s, ZMQ_HEARTBEAT_TIMEOUT, (int)p->timeout_ms) < 0 ||
	    set_int(s, ZMQ_HEARTBEAT_TTL, (int)p->timeout_ms) < 0 ||
	    set_int(s, ZMQ_HANDSHAKE_IVL, (int)p->timeout_ms) < 0 ||
	    set_security(s, p->type, sec) < 0)
		goto out_close;
	if (p->type == ZMQ_ROUTER && set_int(s, ZMQ_ROUTER_MANDATORY, 1) < 0)
		goto out_close;
	if (p->type == ZMQ_DEALER &&
	    (zmq_setsockopt(s, ZMQ_ROUTING_ID, p->rid, p->rid_len) < 0 ||
	     set_int(s, ZMQ_RECONNECT_IVL, RECONNECT_IVL_MS) < 0 ||
	     set_int(s, ZMQ_RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS) < 0))
		goto out_close;
	return s;

out_close:
	*err = -zmq_errno();
	zmq_close(s);
	return NULL;
}

void zsock_close(void *s, int linger_ms)
{
	if (!s)
		return;
	set_int(s, ZMQ_LINGER, linger_ms);
	zmq_close(s);
}

int zsock_fd(void *s)
{
	int fd = -1;
	size_t n = sizeof(fd);

	zmq_getsockopt(s, ZMQ_FD, &fd, &n);
	return fd;
}

bool zsock_pending(void *s)
{
	int ev = 0;
	size_t n = sizeof(ev);

	return zmq_getsockopt(s, ZMQ_EVENTS, &ev, &n) == 0 && (ev & ZMQ_POLLIN);
}

/* --- monitor ----------------------------------------------------------- */

void *zmon_open(void *ctx, void *sock, int events, int *err)
{
	static unsigned next;
	char ep[64];
	void *m;

	snprintf(ep, sizeof(ep), "inproc://evshm-bridge-monitor-%u", next++);
	if (zmq_socket_monitor(sock, ep, events) < 0) {
		*err = -zmq_errno();
		return NULL;
	}
	m = zmq_socket(ctx, ZMQ_PAIR);
	if (!m || set_int(m, ZMQ_LINGER, 0) < 0 || zmq_connect(m, ep) < 0) {
		*err = -zmq_errno();
		if (m)
			zmq_close(m);
		zmq_socket_monitor(sock, NULL, 0);
		return NULL;
	}
	return m;
}

void zmon_close(void *mon, void *sock)
{
	if (!mon)
		return;
	zmq_socket_monitor(sock, NULL, 0);
	zmq_close(mon);
}

int zmon_read(void *mon, struct zmon_event *ev)
{
	uint8_t head[6];
	int n = zmq_recv(mon, head, sizeof(head), ZMQ_DONTWAIT);

	if (n < 0)
		return -zmq_errno();
	/* Frame 1: event (16 bits) and value (32 bits), host order; frame
	 * 2: the endpoint. */
	memcpy(&ev->event, head, 2);
	memcpy(&ev->value, head + 2, 4);
	ev->addr[0] = '\0';
	int more = 0;
	size_t ml = sizeof(more);
	if (zmq_getsockopt(mon, ZMQ_RCVMORE, &more, &ml) == 0 && more) {
		/* zmq_recv() returns the full length, even truncated. */
		n = zmq_recv(mon, ev->addr, sizeof(ev->addr) - 1, 0);
		if (n < 0)
			n = 0;
		if ((size_t)n > sizeof(ev->addr) - 1)
			n = (int)sizeof(ev->addr) - 1;
		ev->addr[n] = '\0';
	}
	return 0;
}

const char *zmon_name(uint16_t event)
{
	switch (event) {
	case ZMQ_EVENT_CONNECTED: return "connected";
	case ZMQ_EVENT_CONNECT_DELAYED: return "connect delayed";
	case ZMQ_EVENT_CONNECT_RETRIED: return "connect retried";
	case ZMQ_EVENT_LISTENING: return "listening";
	case ZMQ_EVENT_BIND_FAILED: return "bind failed";
	case ZMQ_EVENT_ACCEPTED: return "accepted";
	case ZMQ_EVENT_ACCEPT_FAILED: return "accept failed";
	case ZMQ_EVENT_CLOSED: return "closed";
	case ZMQ_EVENT_DISCONNECTED: return "disconnected";
	case ZMQ_EVENT_MONITOR_STOPPED: return "monitor stopped";
	case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: return "handshake failed";
	case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: return "handshake succeeded";
	case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: return "handshake failed (protocol)";
	case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: return "handshake failed (authentication)";
	}
	return "event";
}

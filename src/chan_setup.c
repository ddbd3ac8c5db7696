/* SPDX-License-Identifier: MIT */
/*
 * chan_setup.c: setting a channel up.  The server listens (listener.c
 * admits, parks and hands over connections); the client connects, checks
 * who answers and waits for READY (handshake.c); then each side sends its
 * region and bells (HELLO, WELCOME), checks the peer's, maps it, and the
 * channel is up.  docs/protocol.md, section 3, is the normative text.
 */
#include <errno.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "chan.h"
#include "endpoint.h"
#include "err.h"
#include "handshake.h"
#include "listener.h"
#include "opts.h"
#include "os.h"
#include "proto.h"
#include "region.h"

struct evshm_listener {
	struct listener l;
	struct evshm_opts opts;
	struct listen_state *ls;
	char name[REGION_NAME_MAX];
};

/*
 * Our region (sealed memfd, mapped read-write; its read-only descriptor is
 * what the peer gets, and stays open for evshm ps), and our bell, which
 * the peer kicks (for data and for room alike): we keep one end, the peer
 * gets the other.  *@peer_fds: what HELLO / WELCOME carries, still ours.
 */
static int chan_make_local(struct evshm_chan *c, const struct region_info *ri,
			   int peer_fds[PROTO_NFDS])
{
	int res;

	res = region_create(ri, &c->mine, &c->region_fd);
	if (res < 0)
		return res;
	c->tx_size = ri->ring_size;
	res = bell_make(&c->bell_rd, &c->bell_peer);
	if (res < 0)
		return res;
	peer_fds[PROTO_FD_REGION] = c->region_fd;
	peer_fds[PROTO_FD_BELL] = c->bell_peer;
	return 0;
}

/*
 * Take the peer's descriptors (ours now, whatever happens): its region is
 * checked and mapped read-only, and closed; its bell must be a Unix stream
 * socket whose other end it made.  Anything that fails a check is closed
 * without trusting it.
 */
static int chan_attach_peer(struct evshm_chan *c, uint32_t ring_size,
			    int fds[PROTO_NFDS])
{
	int res;

	res = os_check_bell(fds[PROTO_FD_BELL], c->pid, c->uid, c->gid);
	if (res == 0)
		res = region_attach(fds[PROTO_FD_REGION], REGION_CHAN, ring_size,
				    &c->peer);
	if (res < 0) {
		os_close_untrusted(fds, PROTO_NFDS);
		return res;
	}
	c->rx_size = ring_size;
	fds[PROTO_FD_REGION] = os_close(fds[PROTO_FD_REGION]);
	/* Its bell: we kick it for data and for room alike. */
	c->kick = fds[PROTO_FD_BELL];
	fds[PROTO_FD_BELL] = -1;
	return 0;
}

/*
 * After the handshake the socket carries only FDS messages, and only
 * towards a side that accepts them.  Without EVSHM_OPT_FDS the kernel
 * refuses descriptors from now on (Linux 6.16+).  Either way the peer may
 * have queued some already, so the socket is closed with care
 * (os_close_sock looks at the kernel's count then).
 */
static void chan_limit_rights(struct evshm_chan *c)
{
	c->sock_fds = true;
	if (!(c->features & PROTO_F_FDS))
		(void)os_passrights(c->sock, false);
}

/* --- client ------------------------------------------------------------- */

int evshm_connect(struct evshm_chan **out, const char *name,
		  const struct evshm_opts *opts, int timeout_ms)
{
	int fds[PROTO_NFDS] = { -1, -1 };
	struct hs_client hc;
	struct evshm_opts o;
	int ours[PROTO_NFDS];
	struct proto_msg m;
	uint8_t id[REGION_ID_SIZE];
	int res;

	if (!out || !name)
		return -EINVAL;
	res = opts_resolve(&o, opts);
	if (res < 0)
		return res;
	struct evshm_chan *c = chan_new();
	if (!c)
		return -ENOMEM;
	res = hs_client_start(name, &o, PROTO_KIND_CHAN, timeout_ms, &hc);
	if (res < 0)
		goto out_close;
	c->sock = hc.sock;
	c->sock_fds = hc.fds_possible;
	c->pid = hc.pid;
	c->uid = hc.uid;
	c->gid = hc.gid;
	c->features = o.flags & EVSHM_OPT_FDS ? PROTO_F_FDS : 0;
	c->spin_ns = o.spin_ns;

	os_random(id, sizeof(id));
	struct region_info ri = { .kind = REGION_CHAN, .role = REGION_CLIENT,
				  .ring_size = o.ring_size,
				  .features = c->features, .id = id,
				  .name = name };
	res = chan_make_local(c, &ri, ours);
	if (res < 0)
		goto out_close;
	proto_hello(&m, PROTO_KIND_CHAN, c->features, o.ring_size,
		    o.peer_ring_size, id, 0);
	struct proto_msg hello = m;
	res = hs_client_finish(&hc, &hello, ours, &m, fds, o.max_ring_size);
	if (res < 0)
		goto out_close;
	/* The server's ring is the one we asked for, if we did. */
	if (o.peer_ring_size && m.ring_size != o.peer_ring_size)
		res = ERR_PROTO(HS_RING);
	if (res < 0) {
		os_close_untrusted(fds, PROTO_NFDS);
		goto out_close;
	}
	c->peer_features = m.features;
	res = chan_attach_peer(c, m.ring_size, fds);
	if (res < 0)
		goto out_close;
	res = chan_start(c);
	if (res < 0)
		goto out_close;
	chan_limit_rights(c);
	*out = c;
	return 0;

out_close:
	evshm_close(c);
	return res;
}

/* --- server ---------------------------------------------------------------- */

/* The listener's admission policy: who it is, then whether there is room. */
static int chan_admit(void *arg, const struct conn *cn)
{
	struct evshm_listener *l = arg;
	int res = opts_authorize(&l->opts, true, cn->pid, cn->uid, cn->gid);

	if (res < 0)
		return res;
	if (l->opts.max_clients &&
	    atomic_load(&l->ls->clients) >= l->opts.max_clients)
		return -EUSERS;
	return 0;
}

/*
 * The handshake proper with an admitted client whose HELLO is readable.
 * The checks run in the order docs/protocol.md 3.3 gives, which decides
 * the REJECT reason: the message, the sizes against our limit, room, then
 * the descriptors.
 */
static int chan_serve(struct evshm_listener *l, struct evshm_chan *c)
{
	const struct evshm_opts *o = &l->opts;
	uint64_t deadline = os_deadline(o->handshake_timeout_ms);
	int fds[PROTO_NFDS] = { -1, -1 };
	int ours[PROTO_NFDS];
	uint8_t id[PROTO_ID_SIZE];
	struct proto_msg m;
	int res;

	res = hs_recv(c->sock, PROTO_HELLO, &m, fds, PROTO_NFDS, deadline);
	if (res == 0 && m.kind != PROTO_KIND_CHAN) {
		os_close_untrusted(fds, PROTO_NFDS);
		res = ERR_PROTO(HS_KIND);
	}
	if (res < 0)
		goto out_reject;
	uint32_t tx_size = m.peer_ring_size ? m.peer_ring_size : o->ring_size;
	if (m.ring_size > o->max_ring_size || tx_size > o->max_ring_size)
		res = -EFBIG;
	else if (o->max_clients &&
		 atomic_load(&l->ls->clients) >= o->max_clients)
		res = -EUSERS;
	if (res < 0) {
		os_close_untrusted(fds, PROTO_NFDS);
		goto out_reject;
	}
	c->peer_features = m.features;
	memcpy(id, m.id, sizeof(id));
	res = chan_attach_peer(c, m.ring_size, fds);
	if (res < 0)
		goto out_reject;

	struct region_info ri = { .kind = REGION_CHAN, .role = REGION_SERVER,
				  .ring_size = tx_size,
				  .features = c->features, .id = id,
				  .name = l->name };
	res = chan_make_local(c, &ri, ours);
	if (res < 0)
		return res;
	proto_welcome(&m, PROTO_KIND_CHAN, c->features, tx_size, id, 0, 0);
	res = hs_send(c->sock, &m, ours, PROTO_NFDS, deadline);
	if (res < 0)
		return res;
	res = chan_start(c);
	if (res == 0)
		chan_limit_rights(c);
	return res;

out_reject:
	/* Tell the client why, if it still listens; best effort. */
	if (res != -ECONNRESET && res != -ETIMEDOUT)
		hs_reject(c->sock, res);
	return res;
}

int evshm_listen(struct evshm_listener **out, const char *name,
		 const struct evshm_opts *opts)
{
	struct evshm_listener *l;
	int res;

	if (!out || !name)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	res = opts_resolve(&l->opts, opts);
	if (res < 0)
		goto out_free;
	l->ls = calloc(1, sizeof(*l->ls));
	if (!l->ls) {
		res = -ENOMEM;
		goto out_free;
	}
	atomic_init(&l->ls->refs, 1);
	snprintf(l->name, sizeof(l->name), "%s", name);
	struct listener_policy pol = {
		.admit = chan_admit,
		.arg = l,
		.handshake_timeout_ms = l->opts.handshake_timeout_ms,
	};
	proto_ready(&pol.ready, PROTO_KIND_CHAN,
		    l->opts.flags & EVSHM_OPT_FDS ? PROTO_F_FDS : 0,
		    l->opts.max_ring_size, 0, NULL);
	res = listener_open(&l->l, name, l->opts.mode, &pol);
	if (res < 0)
		goto out_free;
	*out = l;
	return 0;

out_free:
	free(l->ls);
	free(l);
	return res;
}

int evshm_listener_fd(const struct evshm_listener *l)
{
	return l ? l->l.epfd : -EINVAL;
}

void evshm_listener_close(struct evshm_listener *l)
{
	if (!l)
		return;
	listener_close(&l->l);
	listen_state_put(l->ls);
	free(l);
}

int evshm_accept(struct evshm_listener *l, struct evshm_chan **out,
		 int timeout_ms)
{
	struct evshm_chan *c;
	struct conn cn;
	int res;

	if (!l || !out)
		return -EINVAL;
	res = listener_next(&l->l, &cn, timeout_ms);
	if (res < 0)
		return res;
	c = chan_new();
	if (!c) {
		os_close_sock(cn.sock, cn.fds_possible);
		return -ENOMEM;
	}
	c->sock = cn.sock;
	c->sock_fds = cn.fds_possible;
	c->pid = cn.pid;
	c->uid = cn.uid;
	c->gid = cn.gid;
	c->features = l->opts.flags & EVSHM_OPT_FDS ? PROTO_F_FDS : 0;
	c->spin_ns = l->opts.spin_ns;
	res = chan_serve(l, c);
	if (res < 0) {
		evshm_close(c);
		return res;
	}
	atomic_fetch_add(&l->ls->clients, 1);
	atomic_fetch_add(&l->ls->refs, 1);
	c->ls = l->ls;
	*out = c;
	return 0;
}

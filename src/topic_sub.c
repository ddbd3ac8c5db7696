/* SPDX-License-Identifier: MIT */
/*
 * topic_sub.c: a topic's subscriber.  It reads the publisher's ring in
 * place, exactly as a channel's consumer reads its peer's, from the start
 * position the publisher gave (history), and publishes its head in a small
 * region of its own.  Under the latest policy the publisher may lap it:
 * before trusting a record, and again after copying it, it looks at the
 * publisher's horizon (the lowest byte index not yet overwritten); a
 * record below the horizon is discarded, and the subscriber jumps to the
 * oldest record still whole, counting what it missed from the sequence
 * numbers.  docs/protocol.md, section 7.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "bell.h"
#include "endpoint.h"
#include "err.h"
#include "evshm.h"
#include "fdpass.h"
#include "handshake.h"
#include "opts.h"
#include "os.h"
#include "proto.h"
#include "region.h"
#include "ring.h"

/* Jumps one call makes before it lets the caller wait (a publisher that
 * laps us as fast as we jump). */
#define RESYNC_TRIES 16
/* Copies a call with timeout 0 sees overwritten in a row (latest) before
 * it arms and makes its last try (sub_bound). */
#define STALE_TRIES 16

struct evshm_sub {
	int sock;
	bool sock_fds;
	int region_fd;          /* ours (no ring): for evshm ps */
	struct region *mine;
	const struct region *pub;
	uint32_t size;
	int bell_rd;            /* our bell: the publisher kicks it for data */
	int bell_peer;          /* its other end, for the publisher (until sent) */
	int kick;               /* the publisher's bell: we kick it for room */
	int epfd;               /* evshm_sub_fd() */
	struct ring_rx ring;
	struct bell bell;
	bool latest;
	bool fd_used;
	uint64_t drops;         /* the publisher's drop count, last seen */
	bool hup;
	uint64_t lost, kicks;
	unsigned watch;         /* slow kicks (bell_kick) */
	unsigned arms;          /* armings that may end a call (timeout 0) */
	unsigned stale;         /* latest: copies overwritten in a row... */
	uint64_t stale_msgs;    /* ...while ring.msgs was this (no delivery) */
	bool armed_look;        /* the last look came after an arming */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int err;                /* sticky: -EPROTO or -ECONNABORTED */
	unsigned reason;
};

static int sub_fail(struct evshm_sub *s, int res)
{
	if (res == -EPROTO && !s->err) {
		s->err = res;
		s->reason = err_last();
		region_set_error(s->mine, res, s->reason);
	}
	return res;
}

/* Has the publisher overwritten anything at or above our head? */
static bool lapped(const struct evshm_sub *s)
{
	return s->latest &&
	       atomic_load_explicit(&s->pub->horizon, memory_order_acquire) >
		       s->ring.head;
}

/*
 * Lapped: jump to the oldest record still whole, and count the messages
 * between.  Its index and sequence number come from the publisher's
 * region (a pair it writes seq first); the horizon, read after them,
 * says whether the jump target is still whole.  0, -EAGAIN (lapped
 * again meanwhile), -EPROTO.
 */
static int sub_resync(struct evshm_sub *s)
{
	uint64_t o = atomic_load_explicit(&s->pub->oldest, memory_order_acquire);
	uint64_t seq = atomic_load_explicit(&s->pub->oldest_seq,
					    memory_order_acquire);

	/* We saw a horizon above our head (acquire), and the publisher
	 * stores oldest before the horizon (release): an honest oldest is at
	 * least that horizon, so above our head. */
	if ((o & (RING_ALIGN - 1)) || o < s->ring.head || seq < s->ring.seq)
		return ERR_PROTO(TOPIC_OLDEST);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&s->pub->horizon, memory_order_relaxed) > o)
		return -EAGAIN; /* overwritten meanwhile: again */
	s->lost += seq - s->ring.seq;
	atomic_store_explicit(&s->mine->lost, s->lost, memory_order_relaxed);
	ring_rx_jump(&s->ring, o, seq);
	return 0;
}

/* The DROP the publisher sent before it closed, if it did. */
static bool sub_was_dropped(struct evshm_sub *s)
{
	struct proto_msg m;
	unsigned char buf[sizeof(m)];
	unsigned n = 0;
	int res = fdp_recv(s->sock, buf, sizeof(buf), NULL, 0, &n, 0);

	return res > 0 && proto_parse(buf, (size_t)res, PROTO_DROP, &m) ==
				  -ECONNABORTED;
}

/*
 * Reliable: were we dropped?  Asked after a copy (and an acquire fence),
 * and before a malformed record is called a violation.  Only when the
 * publisher's drop count moved since we last looked: then either it has
 * overwritten something at or above our head (the horizon says so), or
 * its DROP waits on our socket (queued before the count moved, 8.6).
 * Neither: someone else was dropped.  Looking at the horizon alone is not
 * enough: a subscriber that looks between our drop and the publisher's
 * next write sees no overwrite yet, takes the count as someone else's,
 * and would not look again while the records it reads next are written
 * over.
 */
static bool sub_dropped(struct evshm_sub *s)
{
	uint64_t d = atomic_load_explicit(&s->pub->dropped, memory_order_acquire);

	if (d == s->drops)
		return false;
	s->drops = d;
	return atomic_load_explicit(&s->pub->horizon, memory_order_relaxed) >
		       s->ring.head ||
	       sub_was_dropped(s);
}

/* --- receive ---------------------------------------------------------------- */

struct sub_ctx {
	struct evshm_sub *s;
	const void **ptr;
	size_t *len;
	bool poll;              /* timeout 0: an arming may end the call */
};

/* Inlined into bell_try_wait()'s first try; bell_wait_after() calls it
 * too. */
static inline __attribute__((always_inline)) int sub_attempt(void *arg)
{
	struct sub_ctx *t = arg;
	struct evshm_sub *s = t->s;
	uint32_t flags;
	int res;

	if (s->err)
		return s->err;
	for (int i = 0; i < RESYNC_TRIES; i++) {
		if (!s->ring.cur && lapped(s)) {
			res = sub_resync(s);
			if (res == -EAGAIN)
				continue;
			if (res < 0)
				return sub_fail(s, res);
		}
		res = ring_rx_peek(&s->ring, t->ptr, t->len, &flags);
		if (res == 0 && flags) {
			/* Valid in a ring, never on a topic: a check like
			 * the ring's own, judged as they are (read from the
			 * lap overwriting the record, it is no lie). */
			s->ring.cur = 0;
			res = ERR_PROTO(FDS_UNWANTED);
		}
		/* The header's loads before the looks below (8.5 step 2):
		 * an acquire load does not keep earlier loads before it, and
		 * a header byte the publisher wrote after its horizon (or
		 * its drop count) must find that horizon (or count) seen. */
		if (res == -EPROTO)
			atomic_thread_fence(memory_order_acquire);
		if (res == -EPROTO && lapped(s)) {
			/* Garbage because it was being overwritten: jump. */
			s->ring.cur = 0;
			continue;
		}
		if (res == -EPROTO && !s->latest && sub_dropped(s)) {
			/* Garbage because we were dropped: say that. */
			s->ring.cur = 0;
			return s->err = -ECONNABORTED;
		}
		return sub_fail(s, res);
	}
	return -EAGAIN;
}

static bool sub_ready(void *arg)
{
	struct sub_ctx *t = arg;

	return ring_rx_ready(&t->s->ring) || lapped(t->s);
}

static int sub_arm(void *arg)
{
	struct sub_ctx *t = arg;
	int res;

	ring_role_fence_on(&t->s->bell.role);
	/* An arming that ends a call (timeout 0: the caller then waits on
	 * evshm_sub_fd()) is told from the last one by data_event's low
	 * bits: lapped faster than we jump, we give up with our event below
	 * the horizon, where no move passes it; the publisher kicks such an
	 * event once (8.7), so it must be new.  Not for our own sleeps:
	 * lapped, they do not sleep, and each new event could cost the
	 * publisher a kick. */
	res = ring_rx_arm_tagged(&t->s->ring, t->s->pub,
				 t->poll ? ++t->s->arms : 0);
	return res == -EAGAIN && lapped(t->s) ? 0 : res;
}

static int sub_recheck(void *arg)
{
	return sub_ready(arg) ? 0 : -EAGAIN;
}

static bool sub_spin_ok(void *arg, int cpu)
{
	const struct region *pub = ((struct sub_ctx *)arg)->s->pub;
	uint32_t c = atomic_load_explicit(&pub->cpu, memory_order_relaxed);

	return !(atomic_load_explicit(&pub->tx_state, memory_order_relaxed) &
		 WS_ASLEEP) &&
	       (c == 0 || c - 1 != (uint32_t)cpu);
}

static void sub_hangup(void *arg)
{
	((struct sub_ctx *)arg)->s->hup = true;
}

static bool sub_gone(void *arg)
{
	return ((struct sub_ctx *)arg)->s->hup;
}

static const struct bell_ops sub_ops = {
	.attempt = sub_attempt,
	.ready = sub_ready,
	.arm = sub_arm,
	.recheck = sub_recheck,
	.worth_spinning = sub_spin_ok,
	.hangup = sub_hangup,
	.gone = sub_gone,
};

/*
 * Latest, STALE_TRIES copies in a row overwritten as they were read (a
 * publisher that laps us just as we copy, or a flood of tiny messages):
 * a deadline bounds the tries of a call with a timeout, and one with -1
 * tries for ever (as it would wait for ever for a publisher that never
 * publishes); a call with timeout 0 must end, and an event loop that then
 * waits on evshm_sub_fd() must be woken while messages remain.  So such a
 * call arms first (a new tagged data_event, 8.7) and makes one last try;
 * the call after a last try that was overwritten too says -EAGAIN, and
 * needs no look: that copy was overwritten after our arming's fence, so
 * the publisher moved its horizon past our event after that fence, and
 * the look after its next commit's fence finds the new event below it
 * and kicks (protocol.md 8.7; a publisher that holds its reservation for
 * ever delays the kick as long).  What was overwritten is counted lost by
 * the next jump, as always.  0 (look as usual), 1 (armed: a last try
 * that must not disarm), -EAGAIN, or -errno.
 */
static int sub_bound(struct evshm_sub *s, struct sub_ctx *t, int timeout_ms)
{
	bool armed = s->armed_look;
	int res;

	s->armed_look = false;
	if (s->stale_msgs != s->ring.msgs) {
		s->stale = 0; /* delivered since: not in a row */
		return 0;
	}
	if (timeout_ms != 0)
		return 0; /* a deadline, or none */
	if (armed && s->stale > STALE_TRIES) {
		s->stale = 0;
		return -EAGAIN;
	}
	s->stale = STALE_TRIES;
	res = bell_arm_first(&s->bell, &sub_ops, t);
	if (res < 0)
		return res;
	s->armed_look = true;
	return 1;
}

/* evshm_sub_peek() after STALE_TRIES in a row, out of its way. */
static __attribute__((noinline, cold)) int
sub_peek_bounded(struct evshm_sub *s, struct sub_ctx *t, int timeout_ms)
{
	int res, armed = sub_bound(s, t, timeout_ms);

	if (armed == -EAGAIN)
		return armed;
	if (armed < 0)
		return sub_fail(s, armed);
	res = bell_wait(&s->bell, &sub_ops, t, timeout_ms);
	/* An armed last try keeps its arming, and the kick that answers it
	 * (it is emptied after the next look that finds a message). */
	if (res == 0 && !armed)
		bell_disarm(&s->bell, s->fd_used);
	return res;
}

int evshm_sub_peek(struct evshm_sub *s, const void **ptr, size_t *len,
		   int timeout_ms)
{
	struct sub_ctx t = { s, ptr, len, timeout_ms == 0 };
	int res;

	if (!s || !ptr || !len)
		return -EINVAL;
	/* Never under a steady stream, nor with a message peeked (the same
	 * one again). */
	if (__builtin_expect(s->stale >= STALE_TRIES, 0) && !s->ring.cur) {
		res = sub_peek_bounded(s, &t, timeout_ms);
	} else {
		res = bell_try_wait(&s->bell, &sub_ops, &t, sub_attempt,
				    timeout_ms);
		if (res == 0)
			bell_disarm(&s->bell, s->fd_used);
	}
	if (res == -EPIPE && sub_was_dropped(s))
		s->err = res = -ECONNABORTED;
	return res;
}

/* Never waits, and judges nothing: a record that is not plain and
 * valid ends the run (the next peek judges it), and the release looks at
 * the horizon (latest) or the drop count (reliable) for all of them. */
int evshm_sub_peek_next(struct evshm_sub *s, const void **ptr, size_t *len)
{
	if (!s || !ptr || !len)
		return -EINVAL;
	return ring_rx_peek_next(&s->ring, ptr, len);
}

/* Latest: after a look at the peeked record (its bytes, or just its
 * length), was any of it overwritten meanwhile?  Then what was read is
 * nobody's: drop the peek (the next jump counts the message lost). */
/* After a look at the record at our head (its bytes, or its length):
 * acquire fence (those loads come first), then under latest, has the
 * publisher overwritten any of it meanwhile (8.5 step 3)? */
static bool sub_overwritten(const struct evshm_sub *s)
{
	atomic_thread_fence(memory_order_acquire);
	return s->latest && atomic_load_explicit(&s->pub->horizon,
						 memory_order_relaxed) >
				    s->ring.head;
}

static bool sub_stale(struct evshm_sub *s)
{
	if (!sub_overwritten(s))
		return false;
	s->ring.cur = 0;
	/* Counted for sub_bound(): in a row, i.e. since the last delivery
	 * (or the last end it made). */
	if (s->stale_msgs != s->ring.msgs) {
		s->stale_msgs = s->ring.msgs;
		s->stale = 0;
	}
	s->stale++;
	return true;
}

/* After a release that moved our head from @old to @new_. */
static void sub_released(struct evshm_sub *s, uint64_t old, uint64_t new_)
{
	if (ring_rx_wake(&s->bell.role, s->pub, old, new_)) {
		/* Released either way; a publisher that made the kick slow
		 * has broken the topic for the next call. */
		if (bell_kick(s->kick, &s->watch) == -EPROTO)
			sub_fail(s, -EPROTO);
		atomic_store_explicit(&s->mine->rx_kicks, ++s->kicks,
				      memory_order_relaxed);
	}
}

int evshm_sub_release(struct evshm_sub *s)
{
	uint64_t old, new_;
	int res;

	if (!s)
		return -EINVAL;
	if (!s->ring.cur)
		return -EINVAL;
	/* Seqlock fashion: whatever was read is good only if nothing at or
	 * above our head was overwritten meanwhile.  Latest: look at the
	 * horizon.  Reliable: the publisher overwrites unread data only
	 * after it dropped someone, and counts drops first; so look at the
	 * count (a line that rarely changes), and further only when it
	 * moved (sub_dropped). */
	if (sub_stale(s))
		return -ESTALE; /* counted as lost by the next jump */
	if (!s->latest && sub_dropped(s)) {
		s->ring.cur = 0;
		s->err = -ECONNABORTED; /* it was us */
		return s->err;
	}
	res = ring_rx_release(&s->ring, &old, &new_);
	if (res < 0)
		return res;
	sub_released(s, old, new_);
	return 0;
}

/* evshm_sub_recv() in one go, for the common case: 8.5's three steps
 * (the horizon, the copy, the fence and the horizon again; reliable: the
 * drop count unchanged) with a plain record that fits, and the release.
 * The length, or -EAGAIN: nothing done, the long way (which waits,
 * jumps, judges and counts) takes over from the same state. */
static inline int sub_take(struct evshm_sub *s, void *buf, size_t cap)
{
	uint64_t old, new_;
	uint32_t span = 0;
	int len;

	if (s->err || s->stale >= STALE_TRIES || lapped(s) ||
	    (len = ring_rx_copy(&s->ring, buf, cap, &span)) < 0 ||
	    sub_overwritten(s) ||
	    (!s->latest && atomic_load_explicit(&s->pub->dropped,
						memory_order_acquire) !=
				   s->drops))
		return -EAGAIN;
	bell_disarm(&s->bell, s->fd_used);
	ring_rx_advance(&s->ring, span, 1, (uint32_t)len, &old, &new_);
	sub_released(s, old, new_);
	return len;
}

int evshm_sub_recv(struct evshm_sub *s, void *buf, size_t cap, int timeout_ms)
{
	const void *p;
	size_t len;
	int res;

	if (!buf && cap)
		return -EINVAL;
	if (s && ring_rx_many(&s->ring))
		return -EBUSY;
	if (s && (res = sub_take(s, buf, cap)) >= 0)
		return res;
	/* Latest: a message overwritten while we copied it is dropped
	 * (counted lost) and the next one tried.  One deadline for every
	 * try, so that a publisher that overwrites each message as we copy
	 * it cannot stretch the call (reliable never says -ESTALE: no clock
	 * read per message); with timeout 0, evshm_sub_peek() ends the tries
	 * (sub_bound); -1 tries for ever. */
	uint64_t deadline = s && s->latest && timeout_ms > 0 ?
				    os_deadline(timeout_ms) : 0;
	for (;;) {
		res = evshm_sub_peek(s, &p, &len, timeout_ms);
		if (res < 0)
			return res;
		if (len > cap) {
			/* Latest: a length read from a record being
			 * overwritten is no message's (8.5 step 3). */
			if (!sub_stale(s))
				return -EMSGSIZE; /* a whole one: it stays */
		} else {
			if (len) /* buf may be NULL (cap 0) */
				memcpy(buf, p, len);
			res = evshm_sub_release(s);
			if (res != -ESTALE)
				return res < 0 ? res : (int)len;
		}
		/* Overwritten while we looked: the next one (counted). */
		if (deadline && (timeout_ms = os_remaining_ms(deadline)) == 0)
			return -ETIMEDOUT;
	}
}

/* --- life ------------------------------------------------------------------- */

static int sub_start(struct evshm_sub *s, int64_t spin_ns)
{
	int res;

	res = bell_open(&s->bell, s->bell_rd, s->sock, s->mine, &s->mine->rx_state,
			&s->mine->rx_sleeps, &s->mine->rx_spins, spin_ns,
			os_membarrier_register() == 0);
	if (res < 0)
		return res;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0)
		return -errno;
	if ((res = os_epoll_add(s->epfd, s->bell_rd, EPOLLIN | EPOLLRDHUP, 0)) < 0)
		return res;
	return os_epoll_add(s->epfd, s->sock, EPOLLRDHUP, 0);
}

int evshm_sub_open(struct evshm_sub **out, const char *name,
		   const struct evshm_opts *opts, int timeout_ms)
{
	int fds[PROTO_NFDS] = { -1, -1 };
	int ours[PROTO_NFDS];
	uint8_t id[REGION_ID_SIZE];
	struct hs_client hc;
	struct evshm_opts o;
	struct proto_msg m;
	struct evshm_sub *s;
	int res;

	if (!out || !name)
		return -EINVAL;
	res = opts_resolve(&o, opts);
	if (res < 0)
		return res;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->sock = s->region_fd = s->bell_rd = s->bell_peer = s->kick = -1;
	s->epfd = -1;
	bell_init(&s->bell);
	res = hs_client_start(name, &o, PROTO_KIND_TOPIC, timeout_ms, &hc);
	if (res < 0)
		goto out_close;
	s->sock = hc.sock;
	s->sock_fds = hc.fds_possible;
	s->pid = hc.pid;
	s->uid = hc.uid;
	s->gid = hc.gid;
	s->latest = hc.ready.param == PROTO_POLICY_LATEST;

	/* The topic's identity, from READY: our region carries it too, so
	 * that evshm ps pairs us with the publisher. */
	memcpy(id, hc.ready.id, sizeof(id));
	struct region_info ri = { .kind = REGION_SUB, .role = REGION_CLIENT,
				  .ring_size = 0, .id = id, .name = name };
	res = region_create(&ri, &s->mine, &s->region_fd);
	if (res == 0)
		res = bell_make(&s->bell_rd, &s->bell_peer);
	if (res < 0)
		goto out_close;
	ours[PROTO_FD_REGION] = s->region_fd;
	ours[PROTO_FD_BELL] = s->bell_peer;
	proto_hello(&m, PROTO_KIND_TOPIC, 0, 0, 0, id, o.history);
	struct proto_msg hello = m;
	res = hs_client_finish(&hc, &hello, ours, &m, fds, o.max_ring_size);
	/* Sent: only the publisher holds it now, and its close or death
	 * hangs our bell up. */
	s->bell_peer = os_close(s->bell_peer);
	if (res < 0)
		goto out_close;
	/* A start inside the ring's numbering. */
	if ((m.param & (RING_ALIGN - 1)) || m.param2 == 0)
		res = ERR_PROTO(TOPIC_START);
	if (res == 0)
		res = os_check_bell(fds[PROTO_FD_BELL], s->pid, s->uid, s->gid);
	if (res == 0)
		res = region_attach(fds[PROTO_FD_REGION], REGION_PUB,
				    m.ring_size, &s->pub);
	if (res < 0) {
		os_close_untrusted(fds, PROTO_NFDS);
		goto out_close;
	}
	s->size = m.ring_size;
	fds[PROTO_FD_REGION] = os_close(fds[PROTO_FD_REGION]);
	s->kick = fds[PROTO_FD_BELL];
	ring_rx_init(&s->ring, s->mine, region_cdata(s->pub), s->size);
	ring_rx_jump(&s->ring, m.param, m.param2);
	s->drops = atomic_load_explicit(&s->pub->dropped, memory_order_acquire);
	res = sub_start(s, o.spin_ns);
	if (res < 0)
		goto out_close;
	/* Topics carry no descriptors after the handshake.  Refused from
	 * now on; but the publisher may have queued some since its WELCOME,
	 * so our close still looks (os_close_sock). */
	(void)os_passrights(s->sock, false);
	s->sock_fds = true;
	*out = s;
	return 0;

out_close:
	evshm_sub_close(s);
	return res;
}

void evshm_sub_close(struct evshm_sub *s)
{
	if (!s)
		return;
	os_close(s->epfd);
	bell_close(&s->bell);
	os_close_bell(s->bell_rd, false);
	os_close_bell(s->kick, true);
	os_close(s->bell_peer);
	os_close(s->region_fd);
	os_close_sock(s->sock, s->sock_fds);
	region_unmap(s->mine, 0);
	region_unmap(s->pub, s->size);
	free(s);
}

int evshm_sub_fd(struct evshm_sub *s)
{
	if (!s)
		return -EINVAL;
	s->fd_used = true;
	return s->epfd;
}

size_t evshm_sub_max_msg(const struct evshm_sub *s)
{
	return s ? ring_max_msg(s->size) : 0;
}

uint64_t evshm_sub_lost(const struct evshm_sub *s)
{
	return s ? s->lost : 0;
}

unsigned evshm_sub_policy(const struct evshm_sub *s)
{
	if (!s)
		return 0;
	return s->latest ? EVSHM_LATEST : EVSHM_RELIABLE;
}

void evshm_sub_stats(const struct evshm_sub *s, struct evshm_stats *st)
{
	if (!s || !st)
		return;
	*st = (struct evshm_stats){
		.msgs_recv = s->ring.msgs,
		.bytes_recv = s->ring.bytes,
		.kicks_sent = s->kicks,
		.sleeps = s->bell.nsleeps,
		.spins = s->bell.nspins,
		.lost = s->lost,
	};
}

int evshm_sub_peer_cred(const struct evshm_sub *s, pid_t *pid, uid_t *uid,
			gid_t *gid)
{
	if (!s)
		return -EINVAL;
	if (pid)
		*pid = s->pid;
	if (uid)
		*uid = s->uid;
	if (gid)
		*gid = s->gid;
	return 0;
}

const char *evshm_sub_error_reason(const struct evshm_sub *s)
{
	if (!s || s->err != -EPROTO)
		return NULL;
	return err_text(s->reason);
}

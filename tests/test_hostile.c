/* SPDX-License-Identifier: MIT */
/*
 * Hostile peers.  Our side is the real library (evshm_accept as a server,
 * evshm_connect as a client); the other side is peer_hostile, a separately
 * exec'd program built from the internals that breaks docs/protocol.md
 * (version 2) on purpose.  For every case our call must fail with the stated errno,
 * quickly, without leaking a descriptor; a listener must go on serving an
 * honest client afterwards; and nothing the peer does may crash or hang us.
 */
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evshm.h"
#include "hostile_run.h"
#include "os.h"
#include "proto.h"
#include "util.h"

#define RING 4096u
#define HALF (RING / 2 - 16) /* the largest message (a record: half the ring) */
#define HS_TIMEOUT_MS 200    /* handshake_timeout_ms against a silent peer */
#define HS_BOUND_MS 10000    /* and against the others: they end the
				handshake themselves, however late a busy
				machine runs them */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void spawn(pid_t *pid, const char *role, const char *name,
		  const char *mode, uint32_t reject)
{
	char rej[32];
	snprintf(rej, sizeof(rej), "--reject=%u", reject);
	char *argv[] = { "peer_hostile", (char *)role, (char *)name,
			 (char *)mode, rej, NULL };
	tu_assert_res(tu_spawn(pid, HOSTILE_PEER, argv), 0);
}

/* Some messages both ways through a peer that echoes. */
static void roundtrip(struct evshm_chan *c, int n)
{
	static uint8_t out[HALF], in[HALF];

	for (int i = 0; i < n; i++) {
		size_t len = (size_t)i * 37 % (HALF + 1);
		tu_fill(out, len, (uint32_t)i + 1);
		tu_assert_res(evshm_send(c, out, len, 5000), 0);
		tu_assert_res(evshm_recv(c, in, sizeof(in), 5000), (long)len);
		assert_true(tu_check_fill(in, len, (uint32_t)i + 1));
	}
}

/* The listener still serves an honest client. */
static void honest_client(struct evshm_listener *l, const char *name)
{
	struct evshm_chan *c = NULL;
	pid_t pid;

	spawn(&pid, "client", name, "honest", 0);
	tu_assert_res(evshm_accept(l, &c, 10000), 0);
	roundtrip(c, 5);
	evshm_close(c);
	hostile_reap(pid, "honest");
}

/* --- handshake: our side is the server ------------------------------------- */

struct hs_case {
	const char *mode;
	int expect;       /* what our call returns */
	uint32_t reject;  /* REJECT reason the hostile client must receive
			     (0: none expected) */
	bool dead_first;  /* the client is gone before we accept */
};

static const struct hs_case hello_cases[] = {
	/* The message itself (docs/protocol.md 3.1). */
	{ "garbage", -EPROTO, PROTO_REJ_INVALID, false },
	{ "garbage_long", -EPROTO, PROTO_REJ_INVALID, false },
	{ "short", -EPROTO, PROTO_REJ_INVALID, false },
	{ "magic", -EPROTO, PROTO_REJ_INVALID, false },
	{ "version", -EPROTONOSUPPORT, PROTO_REJ_VERSION, false },
	{ "type", -EPROTO, PROTO_REJ_INVALID, false },
	{ "kind", -EPROTO, PROTO_REJ_INVALID, false },
	{ "kind_bad", -EPROTO, PROTO_REJ_INVALID, false },
	/* Unused fields are 0, one rule for all of them. */
	{ "status", -EPROTO, PROTO_REJ_INVALID, false },
	{ "param", -EPROTO, PROTO_REJ_INVALID, false },
	{ "param2", -EPROTO, PROTO_REJ_INVALID, false },
	{ "region_size", -EPROTO, PROTO_REJ_INVALID, false },
	{ "ring_npot", -EPROTO, PROTO_REJ_INVALID, false },
	{ "ring_small", -EPROTO, PROTO_REJ_INVALID, false },
	{ "ring_over_max", -EFBIG, PROTO_REJ_RING, false },
	{ "peer_ring_over_max", -EFBIG, PROTO_REJ_RING, false },
	{ "peer_ring_npot", -EPROTO, PROTO_REJ_INVALID, false },
	/* Which reason wins (3.3): the version before the limit, the
	 * limit before the descriptors. */
	{ "version_over_max", -EPROTONOSUPPORT, PROTO_REJ_VERSION, false },
	{ "over_max_unsealed", -EFBIG, PROTO_REJ_RING, false },
	/* How many descriptors. */
	{ "nfds0", -EPROTO, PROTO_REJ_INVALID, false },
	{ "nfds1", -EPROTO, PROTO_REJ_INVALID, false },
	{ "nfds3", -EPROTO, PROTO_REJ_INVALID, false },
	{ "nfds253", -EPROTO, PROTO_REJ_INVALID, false },
	/* Descriptors of the wrong kind (4.4, 6.2). */
	{ "bell_pipe", -EPROTO, PROTO_REJ_INVALID, false },
	{ "bell_pipe_wr", -EPROTO, PROTO_REJ_INVALID, false },
	{ "bell_dgram", -EPROTO, PROTO_REJ_INVALID, false },
	{ "bell_seqpacket", -EPROTO, PROTO_REJ_INVALID, false },
	{ "bell_unconnected", -EPROTO, PROTO_REJ_INVALID, false },
	{ "bell_eventfd", -EPROTO, PROTO_REJ_INVALID, false },
	{ "bell_memfd", -EPROTO, PROTO_REJ_INVALID, false },
	{ "bell_fifo", -EPROTO, PROTO_REJ_INVALID, false },
	{ "region_pipe", -EPROTO, PROTO_REJ_INVALID, false },
	{ "region_socket", -EPROTO, PROTO_REJ_INVALID, false },
	{ "region_tmpfile", -EPROTO, PROTO_REJ_INVALID, false },
	{ "region_otmpfile", -EPROTO, PROTO_REJ_INVALID, false },
	{ "region_shm", -EPROTO, PROTO_REJ_INVALID, false },
	{ "region_wronly", -EPROTO, PROTO_REJ_INVALID, false },
	{ "region_opath", -EPROTO, PROTO_REJ_INVALID, false },
	/* The memfd's seals and size. */
	{ "unsealed", -EPROTO, PROTO_REJ_INVALID, false },
	{ "noshrink", -EPROTO, PROTO_REJ_INVALID, false },
	{ "nogrow", -EPROTO, PROTO_REJ_INVALID, false },
	{ "noseal", -EPROTO, PROTO_REJ_INVALID, false },
	{ "nowriteseal", -EPROTO, PROTO_REJ_INVALID, false },
	{ "size_small", -EPROTO, PROTO_REJ_INVALID, false },
	{ "size_large", -EPROTO, PROTO_REJ_INVALID, false },
	/* The region header disagrees with the HELLO. */
	{ "hdr_magic", -EPROTO, PROTO_REJ_INVALID, false },
	{ "hdr_version", -EPROTO, PROTO_REJ_INVALID, false },
	{ "hdr_kind", -EPROTO, PROTO_REJ_INVALID, false },
	{ "hdr_ring", -EPROTO, PROTO_REJ_INVALID, false },
	{ "hdr_hdrsize", -EPROTO, PROTO_REJ_INVALID, false },
	/* Time and death. */
	{ "silent", -ETIMEDOUT, 0, false },
	{ "close", -ECONNRESET, 0, true },
	{ "hello_die", -ECONNRESET, 0, true },
};

static void test_hello(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(hello_cases) / sizeof(hello_cases[0]); i++) {
		const struct hs_case *hc = &hello_cases[i];
		struct evshm_opts o = {
			.ring_size = RING, .max_ring_size = 1u << 16,
			.handshake_timeout_ms = hc->expect == -ETIMEDOUT
						? HS_TIMEOUT_MS : HS_BOUND_MS };
		struct evshm_listener *l = NULL;
		struct evshm_chan *c = NULL;
		char name[108];
		pid_t pid;

		tu_unique_name(name, sizeof(name), "hostile-srv", true);
		tu_assert_res(evshm_listen(&l, name, &o), 0);
		int fds0 = tu_count_fds();
		print_message("hello %s\n", hc->mode);
		spawn(&pid, "client", name, hc->mode, hc->reject);
		int res = -EAGAIN;
		if (hc->dead_first) {
			/* Admit it (READY), then let it do its worst and go.
			 * It may have done so already by the time we look:
			 * then this very call sees it. */
			struct pollfd pfd = { .fd = evshm_listener_fd(l),
					      .events = POLLIN };
			assert_int_equal(poll(&pfd, 1, 10000), 1);
			res = evshm_accept(l, &c, 0);
			if (res != -EAGAIN)
				tu_assert_res(res, hc->expect);
			hostile_reap(pid, hc->mode);
		}
		uint64_t t0 = now_ms();
		/* Waiting forever, -ETIMEDOUT can only be the silent client's
		 * own handshake deadline; a hang is CTest's timeout. */
		if (res == -EAGAIN)
			res = evshm_accept(l, &c,
					   hc->expect == -ETIMEDOUT ? -1 : 10000);
		uint64_t dt = now_ms() - t0;
		if (res == 0)
			evshm_close(c);
		tu_assert_res(res, hc->expect);
		if (!hc->dead_first)
			hostile_reap(pid, hc->mode);
		assert_true(os_close_wait(5000) == 0);
		assert_int_equal(tu_count_fds(), fds0);
		if (hc->expect == -ETIMEDOUT) /* never early */
			assert_true(dt >= HS_TIMEOUT_MS);
		honest_client(l, name);
		assert_int_equal(tu_count_fds(), fds0);
		evshm_listener_close(l);
	}
}

/*
 * A silent client must not hold a single-threaded server: parked while it
 * says nothing, it delays nobody; it is dropped at its handshake deadline.
 */
static void test_silent_client_holds_nobody(void **state)
{
	(void)state;
	struct evshm_opts o = { .ring_size = RING,
				.handshake_timeout_ms = 5000 };
	struct evshm_listener *l = NULL;
	struct evshm_chan *c = NULL;
	char name[108];
	pid_t silent, honest;
	int fds0 = tu_count_fds();

	tu_unique_name(name, sizeof(name), "hostile-park", true);
	tu_assert_res(evshm_listen(&l, name, &o), 0);
	spawn(&silent, "client", name, "silent", 0);
	/* Wait until the silent client is there, and park it. */
	struct pollfd pfd = { .fd = evshm_listener_fd(l), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 10000), 1);
	tu_assert_res(evshm_accept(l, &c, 0), -EAGAIN);

	/* The first accept serves the honest client, which came second; a
	 * listener that waited on the first connection's HELLO would return
	 * the silent one's -ETIMEDOUT here instead. */
	spawn(&honest, "client", name, "honest", 0);
	tu_assert_res(evshm_accept(l, &c, 10000), 0);
	pid_t pid;
	tu_assert_res(evshm_peer_cred(c, &pid, NULL, NULL), 0);
	assert_int_equal(pid, honest);
	roundtrip(c, 5);
	evshm_close(c);
	hostile_reap(honest, "honest");

	/* The silent one is dropped at its deadline. */
	tu_assert_res(evshm_accept(l, &c, 10000), -ETIMEDOUT);
	hostile_reap(silent, "silent");
	evshm_listener_close(l);
	assert_int_equal(tu_count_fds(), fds0);
}

/* --- handshake: our side is the client --------------------------------------- */

static const struct hs_case welcome_cases[] = {
	/* READY. */
	{ "ready_kind", -EPROTOTYPE, 0, false },
	{ "ready_fields", -EPROTO, 0, false },
	{ "silent_ready", -ETIMEDOUT, 0, false },
	/* WELCOME, the message. */
	{ "garbage", -EPROTO, 0, false },
	{ "garbage_long", -EPROTO, 0, false },
	{ "short", -EPROTO, 0, false },
	{ "magic", -EPROTO, 0, false },
	{ "version", -EPROTONOSUPPORT, 0, false },
	{ "type", -EPROTO, 0, false },
	{ "kind", -EPROTO, 0, false },
	{ "kind_bad", -EPROTO, 0, false },
	{ "status", -EPROTO, 0, false },
	{ "param", -EPROTO, 0, false },
	{ "param2", -EPROTO, 0, false },
	{ "id", -EPROTO, 0, false },
	{ "region_size", -EPROTO, 0, false },
	{ "ring_npot", -EPROTO, 0, false },
	{ "ring_small", -EPROTO, 0, false },
	{ "peer_ring_set", -EPROTO, 0, false },
	{ "ring_mismatch", -EPROTO, 0, false },
	/* REJECT: its reasons, and malformed ones (3.4). */
	{ "reject1", -EPROTONOSUPPORT, 0, false },
	{ "reject2", -EFBIG, 0, false },
	{ "reject3", -EUSERS, 0, false },
	{ "reject4", -EACCES, 0, false },
	{ "reject5", -EPROTO, 0, false },
	{ "reject99", -EPROTO, 0, false }, /* unknown: treated as 5 */
	{ "reject_fds", -EPROTO, 0, false }, /* fds closed */
	{ "reject_fields", -EPROTO, 0, false },
	{ "reject_close", -EUSERS, 0, false },
	/* Descriptors. */
	{ "nfds0", -EPROTO, 0, false },
	{ "nfds1", -EPROTO, 0, false },
	{ "nfds3", -EPROTO, 0, false },
	{ "nfds253", -EPROTO, 0, false },
	{ "bell_pipe", -EPROTO, 0, false },
	{ "bell_pipe_wr", -EPROTO, 0, false },
	{ "bell_dgram", -EPROTO, 0, false },
	{ "bell_seqpacket", -EPROTO, 0, false },
	{ "bell_unconnected", -EPROTO, 0, false },
	{ "bell_eventfd", -EPROTO, 0, false },
	{ "bell_memfd", -EPROTO, 0, false },
	{ "bell_fifo", -EPROTO, 0, false },
	{ "region_pipe", -EPROTO, 0, false },
	{ "region_socket", -EPROTO, 0, false },
	{ "region_tmpfile", -EPROTO, 0, false },
	{ "region_otmpfile", -EPROTO, 0, false },
	{ "region_shm", -EPROTO, 0, false },
	{ "region_wronly", -EPROTO, 0, false },
	{ "region_opath", -EPROTO, 0, false },
	{ "unsealed", -EPROTO, 0, false },
	{ "noshrink", -EPROTO, 0, false },
	{ "nogrow", -EPROTO, 0, false },
	{ "noseal", -EPROTO, 0, false },
	{ "nowriteseal", -EPROTO, 0, false },
	{ "size_small", -EPROTO, 0, false },
	{ "size_large", -EPROTO, 0, false },
	{ "hdr_magic", -EPROTO, 0, false },
	{ "hdr_version", -EPROTO, 0, false },
	{ "hdr_kind", -EPROTO, 0, false },
	{ "hdr_ring", -EPROTO, 0, false },
	{ "hdr_hdrsize", -EPROTO, 0, false },
	/* Time and death. */
	{ "silent", -ETIMEDOUT, 0, false },
	{ "close", -ECONNRESET, 0, false },
};

static void test_welcome(void **state)
{
	(void)state;
	/* peer_ring_size: the WELCOME must then say exactly that. */
	struct evshm_opts o = { .ring_size = RING, .peer_ring_size = RING };

	for (size_t i = 0; i < sizeof(welcome_cases) / sizeof(welcome_cases[0]); i++) {
		const struct hs_case *hc = &welcome_cases[i];
		struct evshm_chan *c = NULL;
		int fds0 = tu_count_fds();
		bool silent = hc->expect == -ETIMEDOUT;

		o.handshake_timeout_ms = silent ? HS_TIMEOUT_MS : HS_BOUND_MS;
		char name[108];
		uint64_t dt;
		pid_t pid;

		print_message("welcome %s\n", hc->mode);
		tu_unique_name(name, sizeof(name), "hostile-cli", true);
		spawn(&pid, "server", name, hc->mode, 0);
		int res = tu_connect_retry(&c, name, &o, 10000, &dt);
		if (res == 0)
			evshm_close(c);
		tu_assert_res(res, hc->expect);
		assert_true(os_close_wait(5000) == 0);
		assert_int_equal(tu_count_fds(), fds0);
		/* A silent server costs the handshake timeout, not the
		 * connect timeout. */
		if (silent)
			assert_true(dt >= HS_TIMEOUT_MS && dt < 5000);
		hostile_reap(pid, hc->mode);
	}
}

/* --- after a correct handshake ------------------------------------------------ */

/* A channel to peer_hostile running @mode, as a client (we accept) or
 * as a server (we connect); @flags for our options (EVSHM_OPT_FDS). */
static void run_up_flags(struct hostile_run *r, bool peer_is_server,
			 const char *mode, uint32_t flags)
{
	struct evshm_opts o = { .ring_size = RING, .flags = flags };

	print_message("%s, peer is the %s\n", mode,
		      peer_is_server ? "server" : "client");
	hostile_up(r, peer_is_server, mode, &o);
	assert_int_equal(evshm_max_msg(r->c), HALF);
}

static void run_up(struct hostile_run *r, bool peer_is_server, const char *mode)
{
	run_up_flags(r, peer_is_server, mode, 0);
}

static void run_down(struct hostile_run *r)
{
	hostile_down(r);
	assert_true(os_close_wait(5000) == 0);
	assert_int_equal(tu_count_fds(), r->fds0);
}

/* After -EPROTO a channel stays broken, both ways. */
static void assert_sticky(struct evshm_chan *c)
{
	uint8_t b[8] = { 0 };
	const void *p;
	size_t len;
	void *w;

	tu_assert_res(evshm_recv(c, b, sizeof(b), 0), -EPROTO);
	tu_assert_res(evshm_recv(c, b, sizeof(b), 100), -EPROTO);
	tu_assert_res(evshm_peek(c, &p, &len, 0), -EPROTO);
	tu_assert_res(evshm_send(c, b, sizeof(b), 0), -EPROTO);
	tu_assert_res(evshm_send(c, b, sizeof(b), 100), -EPROTO);
	tu_assert_res(evshm_reserve(c, 8, &w, 0), -EPROTO);
	assert_non_null(evshm_error_reason(c));
}

enum dir { RECV, SEND };

static const struct data_case {
	const char *mode;
	enum dir dir;  /* which of our calls runs into it */
	int ok;        /* calls that succeed before it does */
	uint32_t flags; /* our options: EVSHM_OPT_FDS */
	int expect;    /* 0: -EPROTO */
} data_cases[] = {
	/* Record headers in its ring (docs/protocol.md 5.3). */
	{ "rec_huge", RECV, 0, 0, 0 },
	{ "rec_fit", RECV, 3, 0, 0 },
	{ "rec_flags", RECV, 0, 0, 0 },
	{ "pad_flags", RECV, 0, 0, 0 },
	{ "pad_short", RECV, 0, 0, 0 },
	{ "pad_alone", RECV, 1, 0, 0 },
	{ "pad_pad", RECV, 1, 0, 0 },
	/* Not the sequence number expected: not published, nothing comes. */
	{ "rec_seq_ahead", RECV, 0, 0, -ETIMEDOUT },
	/* Descriptors riding with a record (7): the FDS message must be
	 * queued before the record is published, and match it. */
	{ "fds_unwanted", RECV, 0, 0, 0 },
	{ "fds_missing", RECV, 0, EVSHM_OPT_FDS, 0 },
	{ "fds_seq", RECV, 0, EVSHM_OPT_FDS, 0 },
	{ "fds_count", RECV, 0, EVSHM_OPT_FDS, 0 },
	{ "fds_garbage", RECV, 0, EVSHM_OPT_FDS, 0 },
	{ "fds_reserved", RECV, 0, EVSHM_OPT_FDS, 0 },
	{ "fds_trailing", RECV, 0, EVSHM_OPT_FDS, 0 },
	{ "fds_then_missing", RECV, 1, EVSHM_OPT_FDS, 0 },
	/* Its head: in its own region, our producer's view of its consumer.
	 * We re-read it when the ring looks full: half-ring messages make
	 * that the third one. */
	{ "head_past", SEND, 2, 0, 0 },
	{ "head_misaligned", SEND, 2, 0, 0 },
	{ "head_backwards", SEND, 5, 0, 0 },
};

static void data_case(bool peer_is_server, const struct data_case *dc)
{
	static uint8_t buf[RING];
	int expect = dc->expect ? dc->expect : -EPROTO;
	int timeout = dc->expect ? 100 : 5000;
	struct hostile_run r;
	int res = 0, i;

	run_up_flags(&r, peer_is_server, dc->mode, dc->flags);
	for (i = 0; i <= dc->ok + 2; i++) {
		if (dc->dir == SEND) {
			memset(buf, i, HALF);
			res = evshm_send(r.c, buf, HALF, timeout);
			if (res != 0)
				break;
		} else {
			res = evshm_recv(r.c, buf, sizeof(buf), timeout);
			if (res < 0)
				break;
		}
	}
	/* A call that waited for room or data instead would say -ETIMEDOUT. */
	tu_assert_res(res, expect);
	assert_int_equal(i, dc->ok);
	if (expect == -EPROTO)
		assert_sticky(r.c);
	run_down(&r);
}

static void test_corrupt_ring(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		data_case(false, &data_cases[i]);
		data_case(true, &data_cases[i]);
	}
}

/* A peer that fills our socket with descriptors no record refers to
 * (16 x 253): they wait in the socket, not in our table, and go with it. */
static void test_stuffed_socket(void **state)
{
	(void)state;
	for (int role = 0; role < 2; role++) {
		struct hostile_run r;

		run_up_flags(&r, role, "fds_stuff", EVSHM_OPT_FDS);
		int fds1 = tu_count_fds();
		roundtrip(r.c, 20);
		assert_int_equal(tu_count_fds(), fds1);
		run_down(&r);
	}
}

/*
 * A peer that kicks our bell in a tight loop while it echoes: we wake up
 * for nothing, and empty the bell every 64 armings.  It can fill the bell
 * while we sleep (its send buffer, some 300 kicks) and so lose the kick
 * that announces its own answer: then we find that answer when the wait's
 * deadline comes, never later.  Every call returns within its timeout and
 * every message arrives, whole and in order.
 */
static void test_flood_bells(void **state)
{
	(void)state;
	for (int role = 0; role < 2; role++) {
		int n = (int)tu_scaled(500);
		struct evshm_stats st;
		struct hostile_run r;

		run_up(&r, role, "flood");
		uint64_t t0 = now_ms(), late = 0;
		for (int i = 0; i < n; i++) {
			static uint8_t out[HALF], in[HALF];
			size_t len = (size_t)i * 37 % (HALF + 1);
			int res;

			tu_fill(out, len, (uint32_t)i + 1);
			tu_assert_res(evshm_send(r.c, out, len, 5000), 0);
			for (int tries = 0;; tries++) {
				uint64_t t1 = now_ms();
				res = evshm_recv(r.c, in, sizeof(in), 20);
				/* 20 ms, or a generous slack on a loaded
				 * machine: a hang bound, not a timing. */
				assert_true(now_ms() - t1 < 5000);
				if (res != -ETIMEDOUT || tries == 500)
					break;
				late++;
			}
			tu_assert_res(res, (long)len);
			assert_true(tu_check_fill(in, len, (uint32_t)i + 1));
		}
		evshm_stats(r.c, &st);
		print_message("%d round trips in %" PRIu64 " ms, %" PRIu64
			      " sleeps, %" PRIu64 " waits timed out\n", n,
			      now_ms() - t0, st.sleeps, late);
		assert_int_equal(st.msgs_recv, (uint64_t)n);
		run_down(&r);
	}
}

/* The peer clears O_NONBLOCK on the kicking end of its bell, which it gave
 * us (a shared open file description), fills the bell and never empties
 * it: our kicks must still never block. */
static void test_our_bells_made_blocking(void **state)
{
	(void)state;
	for (int role = 0; role < 2; role++) {
		struct hostile_run r;
		uint8_t b[8];

		run_up(&r, role, "bells_blocking");
		roundtrip(r.c, 500);
		/* Armed, nothing pending: the drain of an empty bell. */
		tu_assert_res(evshm_recv(r.c, b, sizeof(b), 0), -EAGAIN);
		tu_assert_res(evshm_recv(r.c, b, sizeof(b), 50), -ETIMEDOUT);
		roundtrip(r.c, 10);
		run_down(&r);
	}
}

/* The peer puts its bell in 100,000 epoll entries, so that each of our
 * kicks walks them all (milliseconds, in our thread): after four such
 * kicks in a row the channel is broken (-EPROTO, with the reason).
 * Bounded in count, not timed. */
static void test_bell_watched(void **state)
{
	(void)state;
	for (int role = 0; role < 2; role++) {
		struct hostile_run r;
		uint8_t b[8];
		int res = 0;

		run_up(&r, role, "bell_watch");
		for (int i = 0; i < 200 && res >= 0; i++) {
			res = evshm_send(r.c, "12345678", 8, 5000);
			if (res >= 0)
				res = evshm_recv(r.c, b, sizeof(b), 5000);
		}
		tu_assert_res(res, -EPROTO);
		assert_string_equal(evshm_error_reason(r.c),
				    "bell: the peer makes every kick take milliseconds");
		run_down(&r);
	}
}

/* The peer shuts down our bell (the kicking end we gave it) and keeps its
 * socket open: that is its leaving.  A wait ends with -EPIPE at once, not
 * at its timeout. */
static void test_bell_shut(void **state)
{
	(void)state;
	for (int role = 0; role < 2; role++) {
		struct hostile_run r;
		uint8_t b[8];
		int res = 0;

		run_up(&r, role, "bell_shut");
		uint64_t t0 = now_ms();
		for (int i = 0; i < 1000 && res != -EPIPE; i++) {
			res = evshm_recv(r.c, b, sizeof(b), 10000);
			assert_true(res == -EPIPE || res == -ETIMEDOUT);
		}
		tu_assert_res(res, -EPIPE);
		/* Within the wait, not after its 10 s (a hang bound). */
		assert_true(now_ms() - t0 < 9000);
		tu_assert_res(evshm_recv(r.c, b, sizeof(b), 0), -EPIPE);
		run_down(&r);
	}
}

/* --- write protection of our region -------------------------------------------- */

/* The attacks peer_hostile must report (write_protection() there). */
static const char *const wprot_attacks[] = {
	"a_mmap_shared_rw", "b_reopen_mmap_shared_rw", "c_write_ro",
	"c_pwrite_ro", "c_write_rw", "c_pwrite_rw", "c_pwritev2_rw",
	"d_truncate_small_ro", "d_truncate_large_ro", "d_truncate_small_rw",
	"d_truncate_large_rw", "d_fallocate_grow_rw", "d_punch_hole_rw",
	"e_add_seal_write_ro", "e_add_seal_write_rw", "e_add_no_seal_rw",
	"f_mprotect_ro", "f_mprotect_rw", "g_madv_remove", "g_proc_self_mem",
	"h_private_shows_through", "z_header_intact",
};

/* The result reported for @what, or fail. */
static int report_get(const char *report, const char *what, char *verdict)
{
	size_t n = strlen(what);

	for (const char *line = report; *line;) {
		const char *end = strchr(line, '\n');
		if (!end)
			break;
		int res;
		if (strncmp(line, what, n) == 0 && line[n] == ' ' &&
		    sscanf(line + n, " %d %15s", &res, verdict) == 2)
			return res;
		line = end + 1;
	}
	fail_msg("no result for %s in the report", what);
	return 0;
}

static void test_write_protection(void **state)
{
	(void)state;
	for (int role = 0; role < 2; role++) {
		static char report[RING];
		char verdict[16];
		struct hostile_run r;

		run_up(&r, role, "wprot");
		int n = evshm_recv(r.c, report, sizeof(report) - 1, 10000);
		assert_true(n > 0);
		report[n] = '\0';
		print_message("%s", report);
		assert_null(strstr(report, "LEAK"));

		for (size_t i = 0; i < sizeof(wprot_attacks) / sizeof(wprot_attacks[0]); i++) {
			int res = report_get(report, wprot_attacks[i], verdict);
			if (res >= 0 || strcmp(verdict, "blocked") != 0)
				fail_msg("%s: %d %s", wprot_attacks[i], res, verdict);
		}
		/* (b): the read-write reopen itself works (memfd inodes are
		 * mode 0777); F_SEAL_FUTURE_WRITE is what refuses the
		 * writable mapping, with EPERM. */
		if (report_get(report, "b_reopen_rdwr", verdict) == 0)
			tu_assert_res(report_get(report, "b_reopen_mmap_shared_rw",
						 verdict), -EPERM);
		int seals = report_get(report, "e_seals", verdict);
		const int all = F_SEAL_SHRINK | F_SEAL_GROW |
				F_SEAL_FUTURE_WRITE | F_SEAL_SEAL;
		assert_int_equal(seals & all, all);

		/* And the channel works as before, both ways. */
		roundtrip(r.c, 50);
		run_down(&r);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_silent_client_holds_nobody),
		cmocka_unit_test(test_welcome),
		cmocka_unit_test(test_corrupt_ring),
		cmocka_unit_test(test_stuffed_socket),
		cmocka_unit_test(test_flood_bells),
		cmocka_unit_test(test_our_bells_made_blocking),
		cmocka_unit_test(test_bell_shut),
		cmocka_unit_test(test_bell_watched),
		cmocka_unit_test(test_write_protection),
	};
	/* "test_hostile NAME" runs only the tests whose name contains NAME. */
	return TU_RUN(tests, argc, argv);
}

/* SPDX-License-Identifier: MIT */
/*
 * A hostile export, against the real import of a topic.  The import runs
 * (spawned, `--topic`, plain TCP) and connects to this program's raw
 * ZeroMQ ROUTER, which plays the export and breaks the protocol on
 * purpose, one case per row of the table below: a bad OPENED, data
 * before or beyond credit, a gap in a reliable topic, credit from the
 * wrong side.  The import must end the session with BYE(EPROTO), or take
 * what is legal (a gap in a latest topic).  After each case it opens a
 * new session (a new routing id), which the next case uses; at the end it
 * stops cleanly on SIGTERM.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <evshm.h>
#include <zmq.h>

#include "hostile_bridge.h"
#include "util.h"
#include "wire.h"

#define WINDOW (64u << 10)     /* the import's --window */
#define WAIT_MS 5000

static struct {
	pid_t pid;
	char name[108];
	char endpoint[64];
	char log[4096];
	void *ctx, *s;             /* our ROUTER */
	uint8_t rid[256];          /* the import's current session */
	size_t rid_len;
	uint32_t stream;           /* the topic stream it opened */
	struct evshm_sub *sub;     /* a subscriber of its topic that stalls */
	char why[WIRE_REASON_MAX + 1]; /* the text of the last frame */
} im;

/* --- the import, and our ROUTER ------------------------------------------- */

static void start_import(void)
{
	size_t n = sizeof(im.endpoint);
	int zero = 0, ms = WAIT_MS;

	tu_unique_name(im.name, sizeof(im.name), "bridge-hostile-topic", true);
	snprintf(im.log, sizeof(im.log), "%s/import.log", tu_tmpdir());
	im.ctx = zmq_ctx_new();
	im.s = zmq_socket(im.ctx, ZMQ_ROUTER);
	zmq_setsockopt(im.s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(im.s, ZMQ_RCVTIMEO, &ms, sizeof(ms));
	assert_int_equal(zmq_bind(im.s, "tcp://127.0.0.1:*"), 0);
	assert_int_equal(zmq_getsockopt(im.s, ZMQ_LAST_ENDPOINT, im.endpoint,
					&n), 0);
	const char *args[] = { "import", "--topic", im.name,
			       "--connect", im.endpoint, "--insecure",
			       "--window", "64K", "--heartbeat", "0.5",
			       "--timeout", "5", "-v", NULL };
	im.pid = hb_start(args, im.log);
}

static void send_frame(uint8_t type, uint32_t stream, uint64_t arg,
		       const void *payload, size_t n)
{
	static uint8_t f[WIRE_HDR_SIZE + 65536];

	assert_true(n <= 65536);
	wire_put_hdr(f, type, stream, arg);
	if (n)
		memcpy(f + WIRE_HDR_SIZE, payload, n);
	assert_int_equal(zmq_send(im.s, im.rid, im.rid_len, ZMQ_SNDMORE),
			 (int)im.rid_len);
	assert_int_equal(zmq_send(im.s, f, WIRE_HDR_SIZE + n, 0),
			 (int)(WIRE_HDR_SIZE + n));
}

/* The next frame from the current session of @type (others skipped;
 * frames from older sessions too); fails after WAIT_MS.  With @type 0,
 * a HELLO from a new session, which becomes the current one. */
static struct wire_hdr expect(uint8_t type, struct wire_open *open)
{
	uint8_t rid[256], f[512];
	struct wire_hdr h;

	for (;;) {
		int r = zmq_recv(im.s, rid, sizeof(rid), 0);
		if (r < 0)
			fail_msg("no %s from the import: %s",
				 type ? wire_type_name(type) : "HELLO",
				 zmq_strerror(zmq_errno()));
		int n = zmq_recv(im.s, f, sizeof(f), 0);
		assert_true(n >= (int)WIRE_HDR_SIZE);
		tu_assert_res(wire_parse(f, (size_t)n < sizeof(f) ? (size_t)n
					 : sizeof(f), &h, NULL, open), 0);
		if (!type && h.type == WIRE_HELLO &&
		    ((size_t)r != im.rid_len || memcmp(rid, im.rid, (size_t)r))) {
			memcpy(im.rid, rid, (size_t)r);
			im.rid_len = (size_t)r;
			return h;
		}
		if (type && (size_t)r == im.rid_len &&
		    !memcmp(rid, im.rid, (size_t)r) && h.type == type) {
			size_t k = (size_t)n - WIRE_HDR_SIZE;
			k = k < WIRE_REASON_MAX ? k : WIRE_REASON_MAX;
			memcpy(im.why, f + WIRE_HDR_SIZE, k);
			im.why[k] = '\0';
			return h;
		}
	}
}

/* A new session up, and the import's OPEN of its topic stream. */
static void session(void)
{
	uint8_t p[WIRE_HELLO_SIZE];
	struct wire_hello w = { .timeout_ms = 5000, .max_streams = 4 };
	struct wire_open o;

	expect(0, NULL);
	wire_put_hello(p, &w);
	send_frame(WIRE_WELCOME, 0, 0, p, sizeof(p));
	im.stream = expect(WIRE_OPEN, &o).stream;
	assert_int_equal(o.kind, WIRE_KIND_TOPIC);
	assert_int_equal(o.window, WINDOW);
}

static void opened(uint16_t kind, uint32_t window, uint64_t max_out,
		   uint32_t policy)
{
	uint8_t p[WIRE_OPEN_MAX];
	struct wire_open o = { .kind = kind, .window = window,
			       .max_out = max_out, .policy = policy };

	send_frame(WIRE_OPENED, im.stream, 0, p, wire_put_open(p, &o));
}

/* An honest OPENED; the import's first CREDIT (the whole window) back. */
static void up(uint32_t policy)
{
	opened(WIRE_KIND_TOPIC, WINDOW, 4096, policy);
	assert_true(expect(WIRE_CREDIT, NULL).arg == WINDOW);
}

/* A DATA frame of one message of @len bytes. */
static void data(uint64_t seq, uint32_t len)
{
	static uint8_t p[WIRE_LEN_SIZE + 60000];

	assert_true(len <= 60000);
	wire_put_len(p, len);
	send_frame(WIRE_DATA, im.stream, seq, p, WIRE_LEN_SIZE + len);
}

/* A subscriber of the import's topic that never reads: the import can
 * then hand back no credit, and 20 messages of 8000 bytes overrun its
 * 64 KiB window for sure. */
static void flood(void)
{
	struct evshm_opts o = { .max_ring_size = EVSHM_RING_MAX };

	tu_assert_res(evshm_sub_open(&im.sub, im.name, &o, WAIT_MS), 0);
	for (uint64_t i = 0; i < 20; i++)
		data(i, 8000);
}

/* --- the cases ---------------------------------------------------------------- */

/* X(name, what the export sends, EPROTO: BYE expected / 0: none, the
 *   frame the BYE's reason names) */
#define HOSTILE_CASES(X)                                                       \
	X(opened_bad_policy, opened(WIRE_KIND_TOPIC, WINDOW, 4096, 3), EPROTO,  \
	  "OPENED")                                                            \
	X(opened_no_policy, opened(WIRE_KIND_TOPIC, WINDOW, 4096, 0), EPROTO,   \
	  "OPENED")                                                            \
	X(opened_channel_kind, opened(WIRE_KIND_CHANNEL, WINDOW, 4096, 0),     \
	  EPROTO, "OPENED")                                                    \
	X(opened_window_too_large, opened(WIRE_KIND_TOPIC, 2 * WINDOW, 4096,   \
					  1), EPROTO, "OPENED")                \
	X(opened_messages_too_large, opened(WIRE_KIND_TOPIC, WINDOW,           \
					    (uint64_t)1 << 29, 1), EPROTO,     \
	  "OPENED")                                                            \
	X(opened_twice, (up(1), opened(WIRE_KIND_TOPIC, WINDOW, 4096, 1)),     \
	  EPROTO, "OPENED")                                                    \
	X(data_before_opened, data(0, 10), EPROTO, "DATA")                     \
	X(data_beyond_credit, (up(1), flood()), EPROTO, "DATA")                \
	X(data_over_ring, (up(1), data(0, 9000)), EPROTO, "DATA")              \
	X(data_gap_reliable, (up(1), data(0, 10), data(5, 10)), EPROTO,        \
	  "DATA")                                                              \
	X(data_gap_latest, (up(2), data(0, 10), data(5, 10)), 0, NULL)         \
	X(data_gap_latest_wraps, (up(2), data(UINT64_MAX, 10), data(0, 10)),   \
	  EPROTO, "DATA")                                                      \
	X(credit_from_export, (up(1), send_frame(WIRE_CREDIT, im.stream, 64,   \
						 NULL, 0)), EPROTO, "CREDIT")  \
	X(data_after_close, (up(1), send_frame(WIRE_CLOSE, im.stream, 0, NULL, \
					       0), data(0, 10)), EPROTO, "DATA")

static void check_reaction(int err, const char *frame)
{
	struct wire_hdr h;

	if (err) {
		h = expect(WIRE_BYE, NULL);
		tu_assert_res(-(long)h.arg, -err);
		if (!strstr(im.why, frame))
			fail_msg("BYE says \"%s\", not about %s", im.why, frame);
		return;
	}
	/* Legal: no BYE within a moment (a PING or a CREDIT may come). */
	int ms = 300;
	uint8_t f[512];
	zmq_setsockopt(im.s, ZMQ_RCVTIMEO, &ms, sizeof(ms));
	for (;;) {
		uint8_t rid[256];
		if (zmq_recv(im.s, rid, sizeof(rid), 0) < 0)
			break;
		int n = zmq_recv(im.s, f, sizeof(f), 0);
		assert_true(n >= (int)WIRE_HDR_SIZE);
		assert_int_not_equal(f[0], WIRE_BYE);
	}
	ms = WAIT_MS;
	zmq_setsockopt(im.s, ZMQ_RCVTIMEO, &ms, sizeof(ms));
	/* End that session ourselves: the next case wants a new one. */
	send_frame(WIRE_BYE, 0, ESHUTDOWN, NULL, 0);
}

#define CASE_FN(name, send, err, frame)                                        \
	static void hostile_##name(void **state)                               \
	{                                                                      \
		(void)state;                                                   \
		if (!im.pid)                                                   \
			start_import();                                        \
		session();                                                     \
		send;                                                          \
		check_reaction(err, frame);                                    \
		evshm_sub_close(im.sub);                                       \
		im.sub = NULL;                                                 \
		assert_int_equal(waitpid(im.pid, NULL, WNOHANG), 0);          \
	}
HOSTILE_CASES(CASE_FN)
#undef CASE_FN

/* Last: the import stops cleanly on SIGTERM, and says what it refused. */
static void hostile_import_stops(void **state)
{
	(void)state;

	if (!im.pid)
		start_import();
	hb_stop(im.pid, im.log);
	im.pid = 0;
	zmq_close(im.s);
	zmq_ctx_term(im.ctx);
}

int main(int argc, char **argv)
{
#define CASE_ROW(name, send, err, frame) cmocka_unit_test(hostile_##name),
	const struct CMUnitTest tests[] = {
		HOSTILE_CASES(CASE_ROW)
		cmocka_unit_test(hostile_import_stops),
	};
#undef CASE_ROW
	int res = TU_RUN(tests, argc, argv);
	if (im.pid) {
		kill(im.pid, SIGKILL);
		waitpid(im.pid, NULL, 0);
	}
	return res;
}

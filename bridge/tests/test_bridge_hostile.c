/* SPDX-License-Identifier: MIT */
/*
 * A hostile import.  The real export runs (spawned, plain TCP on an
 * ephemeral loopback port); this program speaks to it with a raw ZeroMQ
 * DEALER and breaks the protocol on purpose, one case per row of the
 * table below: what it sends, and how the export must react -- end the
 * session with BYE(errno), refuse the one stream with CLOSE(errno), or
 * ignore the frame.  The test program is also the export's local server
 * (an evshm listener) for the cases that need an open stream.  After
 * every case the export must still serve an honest session, and at the
 * end stop cleanly on SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <evshm.h>
#include <zmq.h>

#include "connector.h"
#include "hostile_bridge.h"
#include "util.h"
#include "wire.h"

#define WINDOW (64u << 10)     /* the export's --window */
#define WAIT_MS 5000

static struct {
	pid_t pid;
	char name[108];         /* the export's --local: we listen there */
	char endpoint[64];
	char log[4096];
	struct evshm_listener *l;
} ex;

/* --- the export ---------------------------------------------------------- */

static void start_export(void)
{
	tu_unique_name(ex.name, sizeof(ex.name), "bridge-hostile", true);
	snprintf(ex.log, sizeof(ex.log), "%s/export.log", tu_tmpdir());
	tu_assert_res(evshm_listen(&ex.l, ex.name, NULL), 0);
	const char *args[] = { "export", "--local", ex.name,
			       "--bind", "tcp://127.0.0.1:*", "--insecure",
			       "--window", "64K", "--heartbeat", "0.5",
			       "--timeout", "5", "-v", NULL };
	ex.pid = hb_start(args, ex.log);

	/* Its log says where it listens. */
	for (int i = 0; i < 500 && !ex.endpoint[0]; i++) {
		char line[512];
		FILE *f = fopen(ex.log, "re");
		while (f && fgets(line, sizeof(line), f)) {
			char *p = strstr(line, " on tcp://");
			if (p && strstr(line, "exporting"))
				sscanf(p + 4, "%63s", ex.endpoint);
		}
		if (f)
			fclose(f);
		usleep(10000);
	}
	assert_true(ex.endpoint[0] != '\0');
}

/* --- a raw import ----------------------------------------------------------- */

struct conn {
	void *ctx, *s;
};

static void conn_open(struct conn *c)
{
	int zero = 0, ms = WAIT_MS;
	uint8_t rid[8] = { 1 };

	for (int i = 1; i < 8; i++)
		rid[i] = (uint8_t)rand();
	c->ctx = zmq_ctx_new();
	c->s = zmq_socket(c->ctx, ZMQ_DEALER);
	zmq_setsockopt(c->s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(c->s, ZMQ_RCVTIMEO, &ms, sizeof(ms));
	zmq_setsockopt(c->s, ZMQ_ROUTING_ID, rid, sizeof(rid));
	assert_int_equal(zmq_connect(c->s, ex.endpoint), 0);
}

static void conn_close(struct conn *c)
{
	zmq_close(c->s);
	zmq_ctx_term(c->ctx);
}

static void send_raw(struct conn *c, const void *p, size_t n, int flags)
{
	assert_int_equal(zmq_send(c->s, p, n, flags), (int)n);
}

static void send_frame(struct conn *c, uint8_t type, uint32_t stream,
		       uint64_t arg, const void *payload, size_t n)
{
	uint8_t f[WIRE_HDR_SIZE + 65536];

	assert_true(n <= 65536);
	wire_put_hdr(f, type, stream, arg);
	if (n)
		memcpy(f + WIRE_HDR_SIZE, payload, n);
	send_raw(c, f, WIRE_HDR_SIZE + n, 0);
}

static void send_hello(struct conn *c, uint16_t version)
{
	uint8_t p[WIRE_HELLO_SIZE];
	struct wire_hello h = { .timeout_ms = 5000 };

	wire_put_hello(p, &h);
	p[4] = (uint8_t)version;
	send_frame(c, WIRE_HELLO, 0, 0, p, sizeof(p));
}

static void send_open(struct conn *c, uint32_t stream, uint16_t kind,
		      uint64_t max_out)
{
	uint8_t p[WIRE_OPEN_SIZE];
	struct wire_open o = { .kind = kind, .window = WINDOW,
			       .max_in = 1 << 16, .max_out = max_out };

	wire_put_open(p, &o);
	send_frame(c, WIRE_OPEN, stream, 0, p, sizeof(p));
}

/* A DATA frame of one message of @len bytes. */
static void send_data(struct conn *c, uint32_t stream, uint64_t seq,
		      uint32_t len)
{
	static uint8_t p[WIRE_LEN_SIZE + 60000];

	assert_true(len <= 60000);
	wire_put_len(p, len);
	send_frame(c, WIRE_DATA, stream, seq, p, WIRE_LEN_SIZE + len);
}

/* The next frame of @type (others are skipped); its header.  Fails the
 * test if none comes within WAIT_MS. */
static struct wire_hdr expect(struct conn *c, uint8_t type)
{
	uint8_t f[512];
	struct wire_hdr h;

	for (;;) {
		int n = zmq_recv(c->s, f, sizeof(f), 0);
		if (n < 0)
			fail_msg("no %s from the export: %s", wire_type_name(type),
				 zmq_strerror(zmq_errno()));
		assert_true(n >= (int)WIRE_HDR_SIZE);
		tu_assert_res(wire_parse(f, (size_t)n < sizeof(f) ? (size_t)n
					 : sizeof(f), &h, NULL, NULL), 0);
		if (h.type == type)
			return h;
	}
}

static void session(struct conn *c)
{
	conn_open(c);
	send_hello(c, WIRE_VERSION);
	expect(c, WIRE_WELCOME);
}

/* A stream 1 whose far end (our listener) is connected; the local
 * channel is returned, never read (so that credit is not handed back
 * beyond the ring). */
static struct evshm_chan *stream(struct conn *c, uint64_t max_out)
{
	struct evshm_chan *ch;

	send_open(c, 1, WIRE_KIND_CHANNEL, max_out);
	tu_assert_res(evshm_accept(ex.l, &ch, WAIT_MS), 0);
	expect(c, WIRE_OPENED);
	return ch;
}

/* --- the cases ---------------------------------------------------------------- */

enum react { BYE, CLOSE, IGNORED };

static const uint8_t junk[3] = { 0xde, 0xad, 0x01 };
static const uint8_t short_frame[WIRE_HDR_SIZE - 1] = { WIRE_PING };

/* X(name, needs: 0 nothing / 1 a session / 2 an open stream, what it
 *   sends, the reaction, its errno) */
#define HOSTILE_CASES(X)                                                       \
	X(junk_without_session, 0, send_raw(c, junk, sizeof(junk), 0),         \
	  IGNORED, 0)                                                          \
	X(hello_other_version, 0, send_hello(c, 2), BYE, EPROTONOSUPPORT)      \
	X(short_frame, 1, send_raw(c, short_frame, sizeof(short_frame), 0),    \
	  BYE, EPROTO)                                                         \
	X(unknown_type, 1, send_frame(c, 42, 0, 0, NULL, 0), BYE, EPROTO)      \
	X(second_hello, 1, send_hello(c, WIRE_VERSION), BYE, EPROTO)           \
	X(welcome_from_import, 1, send_frame(c, WIRE_WELCOME, 0, 0, junk, 3),  \
	  BYE, EPROTO)                                                         \
	X(multipart, 1, (send_raw(c, junk, 3, ZMQ_SNDMORE),                    \
			 send_raw(c, junk, 3, 0)), BYE, EPROTO)                \
	X(open_stream_zero, 1, send_open(c, 0, 1, 100), BYE, EPROTO)           \
	X(open_beyond_max, 1, send_open(c, 999, 1, 100), BYE, EPROTO)          \
	X(data_unopened, 1, send_data(c, 7, 0, 10), BYE, EPROTO)               \
	X(credit_unopened, 1, send_frame(c, WIRE_CREDIT, 7, 64, NULL, 0),      \
	  BYE, EPROTO)                                                         \
	X(close_unopened, 1, send_frame(c, WIRE_CLOSE, 7, 0, NULL, 0),         \
	  BYE, EPROTO)                                                         \
	X(open_unknown_kind, 1, send_open(c, 1, 3, 100), CLOSE,                \
	  EPROTONOSUPPORT)                                                     \
	X(open_topic_at_channel_export, 1,                                     \
	  send_open(c, 1, WIRE_KIND_TOPIC, 0), CLOSE, EPROTONOSUPPORT)         \
	X(open_too_large, 1, send_open(c, 1, 1, (uint64_t)1 << 29), CLOSE,     \
	  EFBIG)                                                               \
	X(open_twice, 2, send_open(c, 1, 1, 100), BYE, EPROTO)                 \
	X(opened_from_import, 2, send_frame(c, WIRE_OPENED, 1, 0, buf,         \
					    WIRE_OPEN_SIZE), BYE, EPROTO)      \
	X(data_wrong_sequence, 2, send_data(c, 1, 5, 10), BYE, EPROTO)         \
	X(data_lengths_overrun, 2,                                             \
	  (wire_put_len(buf, 1000), send_frame(c, WIRE_DATA, 1, 0, buf, 10)),  \
	  BYE, EPROTO)                                                         \
	X(data_over_local_limit, 2, send_data(c, 1, 0, 9000), BYE, EPROTO)     \
	X(data_beyond_credit, 2,                                               \
	  for (uint64_t i = 0; i < 40; i++) send_data(c, 1, i, 8000),          \
	  BYE, EPROTO)                                                         \
	X(credit_never_earned, 2, send_frame(c, WIRE_CREDIT, 1, 64, NULL, 0),  \
	  BYE, EPROTO)                                                         \
	X(empty_frame, 1, send_raw(c, junk, 0, 0), BYE, EPROTO)

/* The export must answer an honest session after each case. */
static void still_serves(void)
{
	struct conn c;

	session(&c);
	conn_close(&c);
	assert_int_equal(waitpid(ex.pid, NULL, WNOHANG), 0); /* alive */
}

/* Every case: what the export must do after @send. */
static void check_reaction(struct conn *c, enum react react, int err)
{
	struct wire_hdr h;
	uint8_t f[512];

	switch (react) {
	case BYE:
		h = expect(c, WIRE_BYE);
		tu_assert_res(-(long)h.arg, -err);
		break;
	case CLOSE:
		h = expect(c, WIRE_CLOSE);
		assert_int_equal(h.stream, 1);
		tu_assert_res(-(long)h.arg, -err);
		/* Our CLOSE completes the exchange: the session goes on. */
		send_frame(c, WIRE_CLOSE, 1, 0, NULL, 0);
		send_frame(c, WIRE_PING, 0, 0, NULL, 0);
		break;
	case IGNORED: {
		int ms = 300;
		zmq_setsockopt(c->s, ZMQ_RCVTIMEO, &ms, sizeof(ms));
		assert_int_equal(zmq_recv(c->s, f, sizeof(f), 0), -1);
		break;
	}
	}
}

#define CASE_FN(name, needs, send, react, err)                                 \
	static void hostile_##name(void **state)                               \
	{                                                                      \
		struct evshm_chan *ch = NULL;                                  \
		struct conn cc, *c = &cc;                                      \
		static uint8_t buf[WIRE_OPEN_SIZE];                            \
		(void)state;                                                   \
		(void)buf;                                                     \
		if (!ex.pid)                                                   \
			start_export();                                        \
		if (needs >= 1)                                                \
			session(c);                                            \
		else                                                           \
			conn_open(c);                                          \
		if (needs >= 2)                                                \
			ch = stream(c, 4096);                                  \
		send;                                                          \
		check_reaction(c, react, err);                                 \
		conn_close(c);                                                 \
		evshm_close(ch);                                               \
		still_serves();                                                \
	}
HOSTILE_CASES(CASE_FN)
#undef CASE_FN

/* --- beyond one frame: what a hostile import can make the export hold ------ */

/* The export program's pid: ex.pid is timeout(1), its parent (or the
 * export itself, if a wrapper named timeout exec'd it). */
static pid_t export_pid(void)
{
	char path[64];
	long pid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)ex.pid,
		 (int)ex.pid);
	f = fopen(path, "re");
	assert_non_null(f);
	if (fscanf(f, "%ld", &pid) != 1)
		pid = ex.pid;
	fclose(f);
	return (pid_t)pid;
}

/* Its resident memory, KiB. */
static long export_rss_kib(void)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)export_pid());
	f = fopen(path, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	assert_true(kib > 0);
	return kib;
}

/*
 * Sessions that open streams and then break the protocol at once, over
 * and over: the local connects they asked for belong to nobody once the
 * session is gone, and must not be made anyway (queued without bound
 * behind the one in progress, each reaching the server, and delaying
 * every honest import's channels).  The local server (we) accepts
 * nothing meanwhile, so the first connect is still in progress when the
 * sessions end; then we count what still reaches us.
 */
static void hostile_stale_opens(void **state)
{
	enum { SESSIONS = 16, STREAMS = 8 };
	struct evshm_chan *ch;
	int reached = 0;

	(void)state;
	if (!ex.pid)
		start_export();
	for (int i = 0; i < SESSIONS; i++) {
		struct conn c;
		session(&c);
		for (uint32_t id = 1; id <= STREAMS; id++)
			send_open(&c, id, WIRE_KIND_CHANNEL, 100);
		send_frame(&c, 42, 0, 0, NULL, 0);
		expect(&c, WIRE_BYE);
		conn_close(&c);
	}
	while (reached < SESSIONS * STREAMS &&
	       evshm_accept(ex.l, &ch, 1000) == 0) {
		reached++;
		evshm_close(ch);
	}
	/* The ones in progress when their session ended, at most (one a
	 * connector thread: up to CONNECTOR_PER_GROUP a session, and the
	 * threads grow to CONNECTOR_MAX_THREADS for sessions in turn). */
	assert_in_range(reached, 0, CONNECTOR_MAX_THREADS);
	still_serves();
}

/*
 * Small DATA frames, each in a TCP segment of its own, queued at the
 * export up to the credit window (the local server reads nothing): the
 * export's memory must stay within a small multiple of the window.  (A
 * frame that ZeroMQ received without copying it out of its receive
 * buffer keeps that whole buffer, several KiB, alive while it is queued.)
 */
static void hostile_small_frames_memory(void **state)
{
	enum { MSG = 14, MAX_FRAMES = 4000 };
	uint64_t sent = 0, granted = 0, seq = 0;
	struct evshm_chan *ch;
	struct conn cc, *c = &cc;
	long before, after;
	int idle_ms = 0;

	(void)state;
	if (!ex.pid)
		start_export();
	session(c);
	ch = stream(c, 4096);
	usleep(100000);
	before = export_rss_kib();
	while (seq < MAX_FRAMES && idle_ms < 300) {
		uint8_t f[512];
		int n = zmq_recv(c->s, f, sizeof(f), ZMQ_DONTWAIT);
		struct wire_hdr h;

		if (n >= (int)WIRE_HDR_SIZE &&
		    wire_parse(f, (size_t)n, &h, NULL, NULL) == 0 &&
		    h.type == WIRE_CREDIT) {
			granted += h.arg;
			idle_ms = 0;
			continue;
		}
		if (sent - granted + MSG + WIRE_MSG_COST > WINDOW) {
			usleep(1000);
			idle_ms++;
			continue;
		}
		send_data(c, 1, seq++, MSG);
		sent += MSG + WIRE_MSG_COST;
		usleep(300); /* one segment, one read at the export */
	}
	usleep(200000);
	after = export_rss_kib();
	print_message("export: %llu frames sent, %llu queued bytes of credit, "
		      "resident %ld -> %ld KiB\n", (unsigned long long)seq,
		      (unsigned long long)(sent - granted), before, after);
	/* The window is 64 KiB: allow 32 times that. */
	assert_true(after - before <= 2048);
	conn_close(c);
	evshm_close(ch);
	still_serves();
}

/* Last: the export stops cleanly on SIGTERM and its log names what it
 * refused. */
static void hostile_export_stops(void **state)
{
	(void)state;

	if (!ex.pid)
		start_export();
	hb_stop(ex.pid, ex.log);
	ex.pid = 0;
	evshm_listener_close(ex.l);
}

int main(int argc, char **argv)
{
#define CASE_ROW(name, needs, send, react, err) cmocka_unit_test(hostile_##name),
	const struct CMUnitTest tests[] = {
		HOSTILE_CASES(CASE_ROW)
		cmocka_unit_test(hostile_stale_opens),
		cmocka_unit_test(hostile_small_frames_memory),
		cmocka_unit_test(hostile_export_stops),
	};
#undef CASE_ROW
	srand((unsigned)getpid());
	int res = TU_RUN(tests, argc, argv);
	if (ex.pid) {
		kill(ex.pid, SIGKILL);
		waitpid(ex.pid, NULL, 0);
	}
	return res;
}

/* SPDX-License-Identifier: MIT */
/*
 * A hung or hostile export that never answers, against the real import.
 * The import runs (spawned, plain TCP, --timeout 1) and connects to this
 * program's raw ZeroMQ ROUTER, which plays an export that welcomes the
 * session and keeps it alive (PINGs) but leaves the import's OPENs, or
 * its CLOSEs, unanswered.  This program is also the import's local
 * client.  The import must give up on an open within --timeout + the
 * export's --timeout, at most twice its own (2 s here): the client sees
 * its channel end, the
 * import sends CLOSE(ETIMEDOUT), and its slot, descriptors and memory
 * come back once the export's CLOSE arrives; if that never comes either
 * (within --timeout + the export's), the import ends the session (BYE, ETIMEDOUT) and starts a new one.  An
 * OPENED that crosses the import's CLOSE is no violation.  A topic import
 * gives up on its open the same way, and opens again.
 */
#include <dirent.h>
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

#define IMPORT_TIMEOUT_MS 1000
/* The export's --timeout in WELCOME: the channel import's export says
 * the same as the import, the topic import's says a minute (which must
 * not make the import wait longer for an open). */
#define CHAN_EXPORT_TIMEOUT_MS IMPORT_TIMEOUT_MS
#define TOPIC_EXPORT_TIMEOUT_MS 60000
/* The import gives up on an open after its --timeout + min(the export's,
 * its own), and on a close after its --timeout + the export's. */
#define ANSWER_MS (2 * IMPORT_TIMEOUT_MS)
#define CLOSE_MS (IMPORT_TIMEOUT_MS + CHAN_EXPORT_TIMEOUT_MS)
#define SLACK_MS 8000                     /* a loaded machine (sanitizers) */
#define WAIT_MS 5000

struct imp {
	pid_t pid;                 /* timeout(1), with the import below it */
	char name[108];
	char log[4096];
	void *s;                   /* our ROUTER */
	uint8_t rid[256];          /* its current session */
	size_t rid_len;
	uint32_t export_timeout_ms; /* what our WELCOME says */
};

static void *ctx;
static struct imp ch, tp;      /* a channel import, a topic import */

static void start(struct imp *im, bool topic)
{
	char endpoint[64];
	size_t n = sizeof(endpoint);
	int zero = 0, ms = 100;

	if (!ctx)
		ctx = zmq_ctx_new();
	tu_unique_name(im->name, sizeof(im->name), "bridge-mute", true);
	snprintf(im->log, sizeof(im->log), "%s/import-%s.log", tu_tmpdir(),
		 topic ? "topic" : "chan");
	im->s = zmq_socket(ctx, ZMQ_ROUTER);
	zmq_setsockopt(im->s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(im->s, ZMQ_RCVTIMEO, &ms, sizeof(ms));
	assert_int_equal(zmq_bind(im->s, "tcp://127.0.0.1:*"), 0);
	assert_int_equal(zmq_getsockopt(im->s, ZMQ_LAST_ENDPOINT, endpoint,
					&n), 0);
	const char *args[] = { "import", topic ? "--topic" : "--local",
			       im->name, "--connect", endpoint, "--insecure",
			       "--heartbeat", "0.25", "--timeout", "1",
			       "--max-channels", "2", "-v", NULL };
	im->pid = hb_start(args, im->log);
	im->export_timeout_ms = topic ? TOPIC_EXPORT_TIMEOUT_MS
				      : CHAN_EXPORT_TIMEOUT_MS;
}

/* The bridge itself: timeout(1)'s child. */
static pid_t bridge_pid(const struct imp *im)
{
	char path[64];
	long pid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)im->pid,
		 (int)im->pid);
	f = fopen(path, "re");
	assert_non_null(f);
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	assert_true(pid > 0);
	return (pid_t)pid;
}

static int fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The channel import holds @fds descriptors again (within a second: a
 * closed ZeroMQ socket goes in the background). */
static void fds_back_to(int fds)
{
	for (int i = 0; i < 50 && fd_count(bridge_pid(&ch)) != fds; i++)
		usleep(20000);
	assert_int_equal(fd_count(bridge_pid(&ch)), fds);
}

static void send_frame(struct imp *im, uint8_t type, uint32_t stream,
		       uint64_t arg, const void *payload, size_t n)
{
	uint8_t f[WIRE_HDR_SIZE + 64];

	assert_true(n <= 64);
	wire_put_hdr(f, type, stream, arg);
	if (n)
		memcpy(f + WIRE_HDR_SIZE, payload, n);
	assert_int_equal(zmq_send(im->s, im->rid, im->rid_len, ZMQ_SNDMORE),
			 (int)im->rid_len);
	assert_int_equal(zmq_send(im->s, f, WIRE_HDR_SIZE + n, 0),
			 (int)(WIRE_HDR_SIZE + n));
}

/*
 * Play the mute export for at most @max_ms: PING the current session
 * every 100 ms (so that it stays up), answer nothing, and return the first
 * frame of @type from it (0: a HELLO from a new session, which becomes
 * the current one and is welcomed).  With @c, also stop (returning type
 * 0) when its channel ends (the import closed it).  A BYE is returned as
 * such whatever @type.  h.type 0 means the time ran out.
 */
static struct wire_hdr pump(struct imp *im, uint8_t type,
			    struct evshm_chan *c, int max_ms)
{
	uint64_t end = tu_now_ms() + (uint64_t)max_ms;
	struct wire_hdr h = { 0 };

	while (tu_now_ms() < end) {
		uint8_t rid[256], f[512], buf[64];
		int r, n;

		if (im->rid_len)
			send_frame(im, WIRE_PING, 0, 0, NULL, 0);
		if (c && evshm_recv(c, buf, sizeof(buf), 0) == -EPIPE)
			return (struct wire_hdr){ 0 };
		r = zmq_recv(im->s, rid, sizeof(rid), 0);
		if (r < 0)
			continue;
		n = zmq_recv(im->s, f, sizeof(f), 0);
		assert_true(n >= (int)WIRE_HDR_SIZE);
		tu_assert_res(wire_parse(f, (size_t)n < sizeof(f) ? (size_t)n
					 : sizeof(f), &h, NULL, NULL), 0);
		bool current = (size_t)r == im->rid_len &&
			       !memcmp(rid, im->rid, (size_t)r);
		if (!type && h.type == WIRE_HELLO && !current) {
			struct wire_hello w = {
				.timeout_ms = im->export_timeout_ms,
				.max_streams = 2 };
			uint8_t p[WIRE_HELLO_SIZE];

			memcpy(im->rid, rid, (size_t)r);
			im->rid_len = (size_t)r;
			wire_put_hello(p, &w);
			send_frame(im, WIRE_WELCOME, 0, 0, p, sizeof(p));
			return h;
		}
		if (current && (h.type == type || h.type == WIRE_BYE))
			return h;
	}
	return (struct wire_hdr){ 0 };
}

static struct wire_hdr expect(struct imp *im, uint8_t type, int max_ms)
{
	struct wire_hdr h = pump(im, type, NULL, max_ms);

	if (h.type != (type ? type : WIRE_HELLO))
		fail_msg("no %s from the import within %d ms (got %s)",
			 type ? wire_type_name(type) : "HELLO", max_ms,
			 h.type ? wire_type_name(h.type) : "nothing");
	return h;
}

/* A local client of the channel import, and the OPEN it causes. */
static struct evshm_chan *client(uint32_t *stream)
{
	struct evshm_chan *c;

	tu_assert_res(evshm_connect(&c, ch.name, NULL, WAIT_MS), 0);
	*stream = expect(&ch, WIRE_OPEN, WAIT_MS).stream;
	return c;
}

/* The import gives up on the open of @c (stream @id): the client sees
 * its channel end, and CLOSE(ETIMEDOUT) comes, in either order, within
 * the answer time (and the slack of a loaded machine). */
static void gives_up(struct evshm_chan *c, uint32_t id)
{
	uint64_t t0 = tu_now_ms();
	struct wire_hdr h = pump(&ch, WIRE_CLOSE, c, ANSWER_MS + SLACK_MS);
	uint8_t buf[64];

	if (!h.type) { /* the client first: then the CLOSE */
		h = expect(&ch, WIRE_CLOSE, SLACK_MS);
	} else {
		assert_int_equal(h.type, WIRE_CLOSE);
		/* (the channel ends at the same moment) */
		tu_assert_res(evshm_recv(c, buf, sizeof(buf), SLACK_MS), -EPIPE);
	}
	assert_int_equal(h.stream, id);
	assert_int_equal(h.arg, ETIMEDOUT);
	printf("open given up after %llu ms (answer time %d ms)\n",
	       (unsigned long long)(tu_now_ms() - t0), ANSWER_MS);
	evshm_close(c);
}

/* --- the cases ---------------------------------------------------------------- */

/* Three opens in turn on two slots, none answered: each fails the client
 * in time and, once the export closes too, frees its slot; at the end the
 * import holds what it held before. */
static void mute_open(void **state)
{
	int fds;

	(void)state;
	start(&ch, false);
	tu_assert_res(tu_wait_listening(ch.name, WAIT_MS), 0);
	expect(&ch, 0, WAIT_MS);
	fds = fd_count(bridge_pid(&ch));
	for (int i = 0; i < 3; i++) {
		uint32_t id;
		struct evshm_chan *c = client(&id);

		gives_up(c, id);
		send_frame(&ch, WIRE_CLOSE, id, 0, NULL, 0);
	}
	/* Still the same session, no BYE: a client's open gets through. */
	uint32_t id;
	struct evshm_chan *c = client(&id);
	send_frame(&ch, WIRE_CLOSE, id, ENOENT, NULL, 0);
	tu_assert_res(evshm_recv(c, (uint8_t[8]){ 0 }, 8, WAIT_MS), -EPIPE);
	evshm_close(c);
	/* Its CLOSE, then the slot is free: as many descriptors as before. */
	expect(&ch, WIRE_CLOSE, WAIT_MS);
	fds_back_to(fds);
}

/* An OPENED that crossed the import's CLOSE, then the export's CLOSE: no
 * violation, the session goes on. */
static void late_opened(void **state)
{
	uint8_t p[WIRE_OPEN_MAX];
	struct wire_open o = { .kind = WIRE_KIND_CHANNEL, .window = 65536,
			       .max_in = 1000, .max_out = 1000 };
	uint32_t id;
	struct evshm_chan *c;

	(void)state;
	c = client(&id);
	gives_up(c, id);
	send_frame(&ch, WIRE_OPENED, id, 0, p, wire_put_open(p, &o));
	send_frame(&ch, WIRE_CLOSE, id, 0, NULL, 0);
	c = client(&id); /* (fails on a BYE) */
	send_frame(&ch, WIRE_CLOSE, id, ENOENT, NULL, 0);
	evshm_close(c);
	expect(&ch, WIRE_CLOSE, WAIT_MS);
}

/* The export answers neither the OPEN nor the CLOSE: the import ends the
 * session (BYE, ETIMEDOUT), which returns the slot, and starts another. */
static void mute_close(void **state)
{
	struct wire_hdr h;
	uint32_t id;
	struct evshm_chan *c;
	int fds;

	(void)state;
	fds = fd_count(bridge_pid(&ch));
	c = client(&id);
	gives_up(c, id);
	h = pump(&ch, WIRE_BYE, NULL, CLOSE_MS + SLACK_MS);
	assert_int_equal(h.type, WIRE_BYE);
	assert_int_equal(h.arg, ETIMEDOUT);
	expect(&ch, 0, WAIT_MS); /* the next session */
	c = client(&id);
	send_frame(&ch, WIRE_CLOSE, id, ENOENT, NULL, 0);
	evshm_close(c);
	expect(&ch, WIRE_CLOSE, WAIT_MS);
	fds_back_to(fds);
}

/* A topic import whose OPEN is never answered: CLOSE(ETIMEDOUT) in time
 * (though the export announced a minute), then, once the export closes
 * too, a new OPEN (it keeps trying). */
static void mute_topic_open(void **state)
{
	struct wire_hdr h;
	uint64_t t0;

	(void)state;
	start(&tp, true);
	expect(&tp, 0, WAIT_MS);
	h = expect(&tp, WIRE_OPEN, WAIT_MS);
	t0 = tu_now_ms();
	struct wire_hdr c = expect(&tp, WIRE_CLOSE, ANSWER_MS + SLACK_MS);
	assert_int_equal(c.stream, h.stream);
	assert_int_equal(c.arg, ETIMEDOUT);
	printf("topic open given up after %llu ms\n",
	       (unsigned long long)(tu_now_ms() - t0));
	send_frame(&tp, WIRE_CLOSE, h.stream, 0, NULL, 0);
	expect(&tp, WIRE_OPEN, WAIT_MS);
}

/* Both imports stop cleanly on SIGTERM (ASan: nothing leaked). */
static void imports_stop(void **state)
{
	struct imp *all[] = { &ch, &tp };
	int status;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		if (!all[i]->pid)
			continue;
		kill(all[i]->pid, SIGTERM);
		tu_assert_res(tu_wait(all[i]->pid, 10000, &status), 0);
		assert_int_equal(tu_exit_code(status), 0);
		all[i]->pid = 0;
		zmq_close(all[i]->s);
	}
	zmq_ctx_term(ctx);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mute_open),
		cmocka_unit_test(late_opened),
		cmocka_unit_test(mute_close),
		cmocka_unit_test(mute_topic_open),
		cmocka_unit_test(imports_stop),
	};
	int res = TU_RUN(tests, argc, argv);
	struct imp *all[] = { &ch, &tp };

	for (size_t i = 0; i < 2; i++) {
		if (all[i]->pid) {
			kill(all[i]->pid, SIGKILL);
			waitpid(all[i]->pid, NULL, 0);
		}
	}
	return res;
}

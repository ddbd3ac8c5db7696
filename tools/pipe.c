/* SPDX-License-Identifier: MIT */
/*
 * pipe.c: `evshm send NAME` and `evshm recv NAME`, a pipe through shared
 * memory between unrelated processes:
 *
 *   evshm recv @feed > out          # listens at @feed
 *   cat big.iso | evshm send @feed  # connects (--wait: until recv is there)
 *
 * Roles: by default recv listens and send connects; --listen / --connect
 * swap them, so either side can be started first: the listening side waits
 * for its peer, the connecting side fails at once when nobody listens,
 * or with --wait retries until someone does.
 *
 * The stream, in evshm messages from sender to receiver:
 *   - data: 1 or more bytes of stdin, as read (zero copy: read(2) goes
 *     straight into a reservation in the ring);
 *   - end:  one empty message, after end-of-file on stdin.
 * Then the receiver answers with one 8-byte message: the number of bytes it
 * wrote to stdout.  So recv exits 0 only after the end message (a sender
 * that dies or fails first leaves a hang-up without it), and send exits 0
 * only once the receiver confirmed every byte.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <evshm.h>

#include "sys.h"
#include "tool.h"
#include "xfer.h"

#define ACK_TIMEOUT_MS 10000  /* recv: sending the confirmation */

/* --- meeting the peer --------------------------------------------------- */

/* Listen, accept one peer, stop listening (which removes the name: a second
 * sender gets "nobody listens" instead of waiting forever). */
static int meet_listen(const struct xfer_opts *xo, const struct evshm_opts *eo,
		       struct evshm_chan **c)
{
	struct evshm_listener *l;
	uint64_t deadline = xfer_deadline(xo);
	int res = evshm_listen(&l, xo->name, eo);

	if (res < 0) {
		tool_err(xo->cmd, "cannot listen at %s: %s", xo->name,
			 evshm_strerror(res));
		return TOOL_EXIT_MEET;
	}
	for (;;) {
		res = evshm_accept(l, c, sys_ms_left(deadline));
		if (res == 0)
			break;
		if (res == -ETIMEDOUT || res == -EAGAIN) {
			tool_err(xo->cmd, "nobody connected to %s within %g s",
				 xo->name, xo->timeout);
			break;
		}
		if (res == -ENOMEM || res == -EMFILE || res == -ENFILE ||
		    res == -EINVAL) {
			tool_err(xo->cmd, "accepting at %s: %s", xo->name,
				 evshm_strerror(res));
			break;
		}
		/* A client that failed the handshake (or a probe that came
		 * and went) is not our peer: keep waiting for one. */
		tool_err(xo->cmd, "ignored a client at %s: %s", xo->name,
			 evshm_strerror(res));
	}
	evshm_listener_close(l);
	return res == 0 ? 0 : TOOL_EXIT_MEET;
}

struct connect_try {
	const struct xfer_opts *xo;
	const struct evshm_opts *eo;
	struct evshm_chan **c;
};

static int connect_once(void *arg, int ms)
{
	struct connect_try *t = arg;

	return evshm_connect(t->c, t->xo->name, t->eo, ms);
}

static int meet(const struct xfer_opts *xo, const struct evshm_opts *eo,
		struct evshm_chan **c)
{
	struct connect_try t = { xo, eo, c };
	char hint[160];

	if (xo->listen)
		return meet_listen(xo, eo, c);
	snprintf(hint, sizeof(hint), "start `evshm %s %s` first",
		 strcmp(xo->cmd, "send") ? "send --listen" : "recv", xo->name);
	return xfer_connect(xo, connect_once, &t, hint);
}

/* --- send --------------------------------------------------------------- */

/* The receiver sends nothing until the end, so a message now is a breach;
 * -EAGAIN: nothing happened (wakeups may be spurious). */
static int send_check_peer(struct evshm_chan *c)
{
	uint64_t v;
	int res = evshm_recv(c, &v, sizeof(v), 0);

	return res >= 0 ? -EPROTO : res;
}

static int do_send(const struct xfer_opts *xo, struct evshm_chan *c)
{
	struct xfer_progress pg;
	uint64_t total = 0;
	size_t chunk = xo->chunk;
	int res;

	if (chunk > evshm_max_msg(c))
		chunk = evshm_max_msg(c);
	xfer_progress_init(&pg, xo->progress, "send");
	for (;;) {
		void *p;
		ssize_t n;

		res = xfer_wait_input(evshm_fd(c), UINT64_MAX);
		if (res == 0) {
			res = send_check_peer(c);
			if (res == -EAGAIN)
				continue;
			goto out_peer;
		}
		if (res < 0)
			goto out_peer;
		res = evshm_reserve(c, chunk, &p, -1);
		if (res < 0)
			goto out_peer;
		n = tool_read(STDIN_FILENO, p, chunk);
		if (n < 0) {
			/* No end message: the receiver sees a cut stream. */
			xfer_progress_break(&pg);
			tool_err(xo->cmd, "reading stdin: %s", strerror((int)-n));
			return TOOL_EXIT_IO;
		}
		/* n == 0 commits the empty message: the end of the stream. */
		res = evshm_commit(c, (size_t)n);
		if (res < 0)
			goto out_peer;
		total += (uint64_t)n;
		xfer_progress_show(&pg, total, false, NULL);
		if (n == 0)
			break;
	}

	/* No time limit: the receiver may still be writing up to a ring of
	 * data to a slow stdout; if it dies, the hang-up ends the wait. */
	uint64_t ack = 0;
	const void *msg;
	size_t len = 0;
	res = evshm_peek(c, &msg, &len, -1);
	if (res == 0) {
		/* Copied before it is looked at; any length is the receiver's
		 * say, and only 8 bytes are a count. */
		if (len == sizeof(ack))
			memcpy(&ack, msg, sizeof(ack));
		res = evshm_release(c);
	}
	if (res == 0 && len == sizeof(ack) && ack == total) {
		xfer_progress_show(&pg, total, true, NULL);
		return TOOL_EXIT_OK;
	}
	xfer_progress_break(&pg);
	if (res == 0 && len != sizeof(ack)) {
		tool_err(xo->cmd, "the receiver answered with a confirmation of "
			 "%zu bytes, not the 8-byte count (%llu bytes sent)",
			 len, (unsigned long long)total);
		return TOOL_EXIT_FAIL;
	}
	if (res == 0) {
		tool_err(xo->cmd, "the receiver confirmed %llu bytes, %llu were "
			 "sent", (unsigned long long)ack,
			 (unsigned long long)total);
		return TOOL_EXIT_FAIL;
	}
	tool_err(xo->cmd, "the receiver did not confirm the end of the stream "
		 "(%llu bytes sent): %s", (unsigned long long)total,
		 evshm_strerror(res));
	return TOOL_EXIT_FAIL;

out_peer:
	xfer_progress_break(&pg);
	tool_err(xo->cmd, "the receiver went away after %llu bytes: %s",
		 (unsigned long long)total, evshm_strerror(res));
	return TOOL_EXIT_FAIL;
}

/* --- recv --------------------------------------------------------------- */

static int do_recv(const struct xfer_opts *xo, struct evshm_chan *c)
{
	struct xfer_progress pg;
	uint64_t total = 0;
	int res;

	xfer_progress_init(&pg, xo->progress, "recv");
	for (;;) {
		const void *p;
		size_t len;

		res = evshm_peek(c, &p, &len, -1);
		if (res < 0) {
			xfer_progress_break(&pg);
			if (res == -EPIPE)
				tool_err(xo->cmd, "the sender went away before the "
					 "end of the stream (%llu bytes received)",
					 (unsigned long long)total);
			else
				tool_err(xo->cmd, "receiving after %llu bytes: %s",
					 (unsigned long long)total,
					 evshm_strerror(res));
			return TOOL_EXIT_FAIL;
		}
		if (len == 0)
			break;
		res = xfer_write_out(p, len);
		if (res == -EPIPE) /* whoever reads our stdout has gone */
			return TOOL_EXIT_SIGPIPE;
		if (res < 0) {
			xfer_progress_break(&pg);
			tool_err(xo->cmd, "writing stdout: %s", strerror(-res));
			return TOOL_EXIT_IO;
		}
		evshm_release(c);
		total += len;
		xfer_progress_show(&pg, total, false, NULL);
	}
	evshm_release(c);
	xfer_progress_show(&pg, total, true, NULL);
	/* Everything arrived and was written: tell the sender (best effort;
	 * a sender that died now cannot change that the stream is whole). */
	evshm_send(c, &total, sizeof(total), ACK_TIMEOUT_MS);
	return TOOL_EXIT_OK;
}

/* --- command lines ------------------------------------------------------ */

static int set_connect(void *o, const char *v)
{
	(void)v;
	((struct xfer_opts *)o)->listen = false;
	return 0;
}

static const struct tool_option send_opts[] = {
	XFER_OPT_WAIT("if nobody listens at NAME yet, retry until\n"
		      "someone does (see --timeout)"),
	{ .name = "listen", .short_name = 'l', .type = TOOL_OPT_FLAG,
	  .off = XFER_F(listen, bool),
	  .help = "listen at NAME and wait for `evshm recv\n"
		  "--connect NAME`, instead of connecting" },
	{ .name = "connect", .short_name = 'c', .type = TOOL_OPT_CUSTOM,
	  .set = set_connect, .help = "connect to NAME (the default)" },
	XFER_OPT_TIMEOUT("meeting the receiver"),
	XFER_OPT_RING("the receiver"),
	XFER_OPT_CHUNK,
	XFER_OPT_PROGRESS,
};

static const struct tool_option recv_opts[] = {
	{ .name = "connect", .short_name = 'c', .type = TOOL_OPT_CUSTOM,
	  .set = set_connect,
	  .help = "connect to `evshm send --listen NAME` instead\n"
		  "of listening" },
	{ .name = "listen", .short_name = 'l', .type = TOOL_OPT_FLAG,
	  .off = XFER_F(listen, bool), .help = "listen at NAME (the default)" },
	XFER_OPT_WAIT("with --connect: if nobody listens at NAME yet,\n"
		      "retry until someone does"),
	XFER_OPT_TIMEOUT("meeting the sender"),
	XFER_OPT_PROGRESS,
};

static const struct tool_cmd send_cmd = {
	.name = "send",
	.synopsis = "[OPTIONS] NAME",
	.about = "Copy stdin into a shared-memory channel to `evshm recv NAME`,\n"
		 "then an explicit end-of-stream; exit 0 once the receiver has\n"
		 "confirmed every byte.  NAME: a socket path, or @name (Linux\n"
		 "abstract name).\n",
	.opts = send_opts,
	.nopts = sizeof(send_opts) / sizeof(send_opts[0]),
	.footer = "Exit status: 0 all sent and confirmed; 1 the receiver went away\n"
		  "or did not confirm; 2 usage; 3 could not meet the receiver;\n"
		  "4 reading stdin failed.\n",
};

static const struct tool_cmd recv_cmd = {
	.name = "recv",
	.synopsis = "[OPTIONS] NAME",
	.about = "Write what `evshm send NAME` sends to stdout; exit 0 only when\n"
		 "the sender's explicit end-of-stream arrived and every byte was\n"
		 "written.\n",
	.opts = recv_opts,
	.nopts = sizeof(recv_opts) / sizeof(recv_opts[0]),
	.footer = "Exit status: 0 the whole stream arrived; 1 the sender went away\n"
		  "before the end (or broke the protocol); 2 usage; 3 could not\n"
		  "meet the sender; 4 writing stdout failed; 141 (SIGPIPE) stdout\n"
		  "was closed by its reader.\n",
};

int tool_send(int argc, char **argv)
{
	struct xfer_opts xo = { .cmd = "send", .timeout = -1,
				.ring = XFER_RING_DEFAULT,
				.chunk = XFER_CHUNK_DEFAULT };
	struct evshm_chan *c;
	int res = xfer_parse(&send_cmd, argc, argv, &xo);

	if (res >= 0)
		return res;
	/* Our outbound ring carries the stream, whichever side listens. */
	struct evshm_opts eo = { .ring_size = (uint32_t)xo.ring };
	res = meet(&xo, &eo, &c);
	if (res)
		return res;
	res = do_send(&xo, c);
	evshm_close(c);
	return res;
}

int tool_recv(int argc, char **argv)
{
	struct xfer_opts xo = { .cmd = "recv", .timeout = -1, .listen = true };
	struct evshm_chan *c;
	int res = xfer_parse(&recv_cmd, argc, argv, &xo);

	if (res >= 0)
		return res;
	/* Our outbound ring carries only the final confirmation; accept
	 * whatever ring the sender brings (it is the sender's memory). */
	struct evshm_opts eo = { .ring_size = EVSHM_RING_MIN,
				 .max_ring_size = EVSHM_RING_MAX };
	res = meet(&xo, &eo, &c);
	if (res)
		return res;
	res = do_recv(&xo, c);
	/* Closed first: the sender sees our hang-up. */
	evshm_close(c);
	return res == TOOL_EXIT_SIGPIPE ? xfer_exit_sigpipe() : res;
}

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
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <evshm.h>

#include "sys.h"
#include "tool.h"

#define SEND_RING_DEFAULT (4u << 20)
#define SEND_CHUNK_DEFAULT (256u << 10)
#define PROGRESS_NS 500000000ull
#define ACK_TIMEOUT_MS 10000  /* recv: sending the confirmation */
#define RETRY_NS 20000000ull

struct pipe_opts {
	const char *cmd;      /* "send" or "recv", for messages */
	const char *name;
	bool listen;
	bool wait;
	double timeout;       /* seconds to meet the peer; < 0: forever */
	uint64_t ring;        /* send: size of the ring to the receiver */
	uint64_t chunk;       /* send: largest message */
	bool progress;
};

/* --- progress ----------------------------------------------------------- */

struct progress {
	bool on;
	const char *verb;
	uint64_t start, last, last_bytes;
};

static void progress_init(struct progress *p, bool on, const char *verb)
{
	p->on = on;
	p->verb = verb;
	p->start = p->last = sys_now_ns();
	p->last_bytes = 0;
}

static void progress_show(struct progress *p, uint64_t bytes, bool final)
{
	char b[32], r[32];

	if (!p->on)
		return;
	uint64_t now = sys_now_ns();
	if (!final && now - p->last < PROGRESS_NS)
		return;
	double dt = (double)(final ? now - p->start : now - p->last) / 1e9;
	double db = (double)(final ? bytes : bytes - p->last_bytes);
	fprintf(stderr, "\revshm %s: %s%s  %s/s        %s", p->verb,
		final ? "total " : "", tool_fmt_bytes(b, sizeof(b), (double)bytes),
		tool_fmt_bytes(r, sizeof(r), dt > 0 ? db / dt : 0),
		final ? "\n" : "");
	p->last = now;
	p->last_bytes = bytes;
}

/* --- meeting the peer --------------------------------------------------- */

static uint64_t meet_deadline(const struct pipe_opts *po)
{
	if (po->timeout < 0)
		return UINT64_MAX;
	return sys_now_ns() + (uint64_t)(po->timeout * 1e9);
}

/* Listen, accept one peer, stop listening (which removes the name: a second
 * sender gets "nobody listens" instead of waiting forever). */
static int meet_listen(const struct pipe_opts *po, const struct evshm_opts *eo,
		       struct evshm_chan **c)
{
	struct evshm_listener *l;
	uint64_t deadline = meet_deadline(po);
	int res = evshm_listen(&l, po->name, eo);

	if (res < 0) {
		tool_err(po->cmd, "cannot listen at %s: %s", po->name,
			 evshm_strerror(res));
		return TOOL_EXIT_MEET;
	}
	for (;;) {
		res = evshm_accept(l, c, sys_ms_left(deadline));
		if (res == 0)
			break;
		if (res == -ETIMEDOUT || res == -EAGAIN) {
			tool_err(po->cmd, "nobody connected to %s within %g s",
				 po->name, po->timeout);
			break;
		}
		if (res == -ENOMEM || res == -EMFILE || res == -ENFILE ||
		    res == -EINVAL) {
			tool_err(po->cmd, "accepting at %s: %s", po->name,
				 evshm_strerror(res));
			break;
		}
		/* A client that failed the handshake (or a probe that came
		 * and went) is not our peer: keep waiting for one. */
		tool_err(po->cmd, "ignored a client at %s: %s", po->name,
			 evshm_strerror(res));
	}
	evshm_listener_close(l);
	return res == 0 ? 0 : TOOL_EXIT_MEET;
}

static int meet_connect(const struct pipe_opts *po,
			const struct evshm_opts *eo, struct evshm_chan **c)
{
	uint64_t deadline = meet_deadline(po);

	for (;;) {
		int ms = sys_ms_left(deadline);
		int res = evshm_connect(c, po->name, eo, ms < 0 ? 10000 : ms);
		if (res == 0)
			return 0;
		bool absent = res == -ENOENT || res == -ECONNREFUSED;
		if (absent && po->wait && sys_now_ns() < deadline) {
			struct timespec ts = { 0, RETRY_NS };
			nanosleep(&ts, NULL);
			continue;
		}
		if (absent && po->wait)
			tool_err(po->cmd, "nobody listened at %s within %g s",
				 po->name, po->timeout);
		else if (absent)
			tool_err(po->cmd, "nobody listens at %s (start `evshm %s "
				 "%s` first, or use --wait)", po->name,
				 strcmp(po->cmd, "send") ? "send --listen" : "recv",
				 po->name);
		else
			tool_err(po->cmd, "cannot connect to %s: %s", po->name,
				 evshm_strerror(res));
		return TOOL_EXIT_MEET;
	}
}

static int meet(const struct pipe_opts *po, const struct evshm_opts *eo,
		struct evshm_chan **c)
{
	return po->listen ? meet_listen(po, eo, c) : meet_connect(po, eo, c);
}

/* --- send --------------------------------------------------------------- */

/*
 * Wait until stdin has something to read, or the receiver has gone (its
 * hang-up makes evshm_fd() readable).  Without this a sender blocked on an
 * idle stdin would not notice a dead receiver.  1: read stdin; 0: the
 * channel needs a look; -errno.
 */
static int send_wait_input(struct evshm_chan *c)
{
	struct pollfd pfd[2] = {
		{ .fd = STDIN_FILENO, .events = POLLIN },
		{ .fd = evshm_fd(c), .events = POLLIN },
	};
	int n = sys_poll(pfd, 2, UINT64_MAX);

	if (n < 0)
		return n;
	/* POLLHUP on stdin is end-of-file: read() says 0. */
	if (pfd[0].revents)
		return 1;
	return 0;
}

/* The receiver sends nothing until the end, so a message now is a breach;
 * -EAGAIN: nothing happened (wakeups may be spurious). */
static int send_check_peer(struct evshm_chan *c)
{
	uint64_t v;
	int res = evshm_recv(c, &v, sizeof(v), 0);

	return res >= 0 ? -EPROTO : res;
}

static int do_send(const struct pipe_opts *po, struct evshm_chan *c)
{
	struct progress pg;
	uint64_t total = 0;
	size_t chunk = po->chunk;
	int res;

	if (chunk > evshm_max_msg(c))
		chunk = evshm_max_msg(c);
	progress_init(&pg, po->progress, "send");
	for (;;) {
		void *p;
		ssize_t n;

		res = send_wait_input(c);
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
			tool_err(po->cmd, "reading stdin: %s", strerror((int)-n));
			return TOOL_EXIT_IO;
		}
		/* n == 0 commits the empty message: the end of the stream. */
		res = evshm_commit(c, (size_t)n);
		if (res < 0)
			goto out_peer;
		total += (uint64_t)n;
		progress_show(&pg, total, false);
		if (n == 0)
			break;
	}

	/* No time limit: the receiver may still be writing up to a ring of
	 * data to a slow stdout; if it dies, the hang-up ends the wait. */
	uint64_t ack;
	res = evshm_recv(c, &ack, sizeof(ack), -1);
	if (res == (int)sizeof(ack) && ack == total) {
		progress_show(&pg, total, true);
		return TOOL_EXIT_OK;
	}
	if (res >= 0) {
		tool_err(po->cmd, "the receiver confirmed %llu bytes, %llu were "
			 "sent", (unsigned long long)ack,
			 (unsigned long long)total);
		return TOOL_EXIT_FAIL;
	}
	tool_err(po->cmd, "the receiver did not confirm the end of the stream "
		 "(%llu bytes sent): %s", (unsigned long long)total,
		 evshm_strerror(res));
	return TOOL_EXIT_FAIL;

out_peer:
	if (pg.on)
		fputc('\n', stderr);
	tool_err(po->cmd, "the receiver went away after %llu bytes: %s",
		 (unsigned long long)total, evshm_strerror(res));
	return TOOL_EXIT_FAIL;
}

/* --- recv --------------------------------------------------------------- */

static int do_recv(const struct pipe_opts *po, struct evshm_chan *c)
{
	struct progress pg;
	uint64_t total = 0;
	int res;

	progress_init(&pg, po->progress, "recv");
	for (;;) {
		const void *p;
		size_t len;

		res = evshm_peek(c, &p, &len, -1);
		if (res < 0) {
			if (pg.on)
				fputc('\n', stderr);
			if (res == -EPIPE)
				tool_err(po->cmd, "the sender went away before the "
					 "end of the stream (%llu bytes received)",
					 (unsigned long long)total);
			else
				tool_err(po->cmd, "receiving after %llu bytes: %s",
					 (unsigned long long)total,
					 evshm_strerror(res));
			return TOOL_EXIT_FAIL;
		}
		if (len == 0)
			break;
		res = tool_write_all(STDOUT_FILENO, p, len);
		if (res == -EPIPE) {
			/* Whoever reads our stdout has gone (`| head`): end
			 * the way a pipe writer does, by SIGPIPE, with no
			 * message; the sender sees our hang-up. */
			evshm_close(c);
			signal(SIGPIPE, SIG_DFL);
			raise(SIGPIPE);
			return 128 + SIGPIPE;
		}
		if (res < 0) {
			tool_err(po->cmd, "writing stdout: %s", strerror(-res));
			return TOOL_EXIT_IO;
		}
		evshm_release(c);
		total += len;
		progress_show(&pg, total, false);
	}
	evshm_release(c);
	progress_show(&pg, total, true);
	/* Everything arrived and was written: tell the sender (best effort;
	 * a sender that died now cannot change that the stream is whole). */
	evshm_send(c, &total, sizeof(total), ACK_TIMEOUT_MS);
	return TOOL_EXIT_OK;
}

/* --- command lines ------------------------------------------------------ */

static int set_connect(void *o, const char *v)
{
	(void)v;
	((struct pipe_opts *)o)->listen = false;
	return 0;
}

static int set_ring(void *o, const char *v)
{
	uint64_t n;

	if (tool_parse_size(v, &n) < 0 || n < EVSHM_RING_MIN ||
	    n > EVSHM_RING_MAX || (n & (n - 1)))
		return -EINVAL;
	((struct pipe_opts *)o)->ring = n;
	return 0;
}

#define F(field, ctype) TOOL_FIELD(struct pipe_opts, field, ctype)

#define OPT_TIMEOUT(who)                                                     \
	{ .name = "timeout", .arg = "SEC", .type = TOOL_OPT_SECONDS,          \
	  .off = F(timeout, double), .max = 2e6,                              \
	  .help = "give up meeting the " who " after SEC seconds\n"           \
		  "(default: wait forever)" }
#define OPT_PROGRESS                                                         \
	{ .name = "progress", .type = TOOL_OPT_FLAG, .off = F(progress, bool), \
	  .help = "show bytes and throughput on stderr" }

static const struct tool_option send_opts[] = {
	{ .name = "wait", .type = TOOL_OPT_FLAG, .off = F(wait, bool),
	  .help = "if nobody listens at NAME yet, retry until\n"
		  "someone does (see --timeout)" },
	{ .name = "listen", .short_name = 'l', .type = TOOL_OPT_FLAG,
	  .off = F(listen, bool),
	  .help = "listen at NAME and wait for `evshm recv\n"
		  "--connect NAME`, instead of connecting" },
	{ .name = "connect", .short_name = 'c', .type = TOOL_OPT_CUSTOM,
	  .set = set_connect, .help = "connect to NAME (the default)" },
	OPT_TIMEOUT("receiver"),
	{ .name = "ring", .arg = "SIZE", .type = TOOL_OPT_CUSTOM,
	  .set = set_ring,
	  .help = "size of the ring to the receiver, a power of\n"
		  "two from 4K to 1G (default 4M)" },
	{ .name = "chunk", .arg = "SIZE", .type = TOOL_OPT_SIZE,
	  .off = F(chunk, uint64_t), .min = 1, .max = 1u << 30,
	  .help = "largest read from stdin, one message (default\n"
		  "256K; at most ring/2 - 16)" },
	OPT_PROGRESS,
};

static const struct tool_option recv_opts[] = {
	{ .name = "connect", .short_name = 'c', .type = TOOL_OPT_CUSTOM,
	  .set = set_connect,
	  .help = "connect to `evshm send --listen NAME` instead\n"
		  "of listening" },
	{ .name = "listen", .short_name = 'l', .type = TOOL_OPT_FLAG,
	  .off = F(listen, bool), .help = "listen at NAME (the default)" },
	{ .name = "wait", .type = TOOL_OPT_FLAG, .off = F(wait, bool),
	  .help = "with --connect: if nobody listens at NAME yet,\n"
		  "retry until someone does" },
	OPT_TIMEOUT("sender"),
	OPT_PROGRESS,
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

/* Options, then exactly one NAME; --wait belongs to the side that
 * connects.  -1 to go on, or the exit status. */
static int parse_pipe_args(const struct tool_cmd *c, int argc, char **argv,
			   struct pipe_opts *po)
{
	int first, res = tool_getopt(c, argc, argv, po, &first);

	if (res >= 0)
		return res;
	if (first == argc)
		return tool_usage_error(c, "NAME is missing");
	if (first + 1 < argc)
		return tool_usage_error(c, "one NAME only");
	if (po->wait && po->listen)
		return tool_usage_error(c, "--wait is for the side that connects");
	po->name = argv[first];
	return -1;
}

int tool_send(int argc, char **argv)
{
	struct pipe_opts po = { .cmd = "send", .timeout = -1,
				.ring = SEND_RING_DEFAULT,
				.chunk = SEND_CHUNK_DEFAULT };
	struct evshm_chan *c;
	int res = parse_pipe_args(&send_cmd, argc, argv, &po);

	if (res >= 0)
		return res;
	/* Our outbound ring carries the stream, whichever side listens. */
	struct evshm_opts eo = { .ring_size = (uint32_t)po.ring };
	res = meet(&po, &eo, &c);
	if (res)
		return res;
	res = do_send(&po, c);
	evshm_close(c);
	return res;
}

int tool_recv(int argc, char **argv)
{
	struct pipe_opts po = { .cmd = "recv", .timeout = -1, .listen = true };
	struct evshm_chan *c;
	int res = parse_pipe_args(&recv_cmd, argc, argv, &po);

	if (res >= 0)
		return res;
	/* Our outbound ring carries only the final confirmation; accept
	 * whatever ring the sender brings (it is the sender's memory). */
	struct evshm_opts eo = { .ring_size = EVSHM_RING_MIN,
				 .max_ring_size = EVSHM_RING_MAX };
	res = meet(&po, &eo, &c);
	if (res)
		return res;
	res = do_recv(&po, c);
	evshm_close(c);
	return res;
}

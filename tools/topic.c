/* SPDX-License-Identifier: MIT */
/*
 * topic.c: `evshm pub NAME` and `evshm sub NAME`, stdin to the stdout of
 * every subscriber, through one ring in shared memory that the publisher
 * writes once and every subscriber reads:
 *
 *   evshm pub --subscribers 2 @feed < data   # waits for two, then streams
 *   evshm sub @feed > copy1                  # in two other shells
 *   evshm sub @feed | consumer
 *
 * The stream is the one of send/recv (xfer.h): messages of one or more
 * bytes of stdin, as read (read(2) straight into a reservation in the
 * ring), then one empty message, the end.  A subscriber exits 0 only after
 * the end arrived and every byte before it was written; a publisher that
 * dies first leaves a hang-up without it (exit 1).
 *
 * Topics have no way back from subscriber to publisher but what each
 * subscriber publishes about itself: how many messages it released.  So a
 * publisher that has published the end waits until every subscriber still
 * attached has released everything it was given, the end included
 * (evshm_pub_subscribers(): lag 0); subscribers that left meanwhile are
 * theirs to report.  The wait is bounded like the stream: a subscriber that
 * makes no progress for --stall-timeout is given up (it can still read what
 * was published: the ring stays mapped in it), and the publisher says so
 * and exits 1, as it does when it dropped one mid-stream (tee's rule: one
 * output failed, the others got everything).
 *
 * A subscriber copies each message out of the ring (evshm_sub_recv) before
 * it writes it: the library checks after the copy that the publisher did
 * not overwrite it meanwhile (--latest, or a subscriber being dropped), so
 * what reaches stdout is never torn.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <evshm.h>

#include "sys.h"
#include "tool.h"
#include "xfer.h"

#define STALL_DEFAULT 10.0      /* seconds: --stall-timeout */
#define QUIET_NS 20000000ull    /* ignore a descriptor that woke us for
				   nothing for this long */
#define DRAIN_POLL_NS 5000000ull

/* --- pub ---------------------------------------------------------------- */

/* Admit subscribers until there are @xo->subscribers of them. */
static int pub_wait_subscribers(const struct xfer_opts *xo,
				struct evshm_pub *p)
{
	uint64_t deadline = xfer_deadline(xo);
	int n = 0, shown = -1;

	for (;;) {
		n = evshm_pub_serve(p, sys_ms_left(deadline));
		if (n < 0) {
			tool_err(xo->cmd, "admitting subscribers: %s",
				 evshm_strerror(n));
			return TOOL_EXIT_FAIL;
		}
		if ((uint64_t)n >= xo->subscribers)
			break;
		if (xo->progress && n != shown) {
			fprintf(stderr, "evshm pub: %d of %llu subscribers\n", n,
				(unsigned long long)xo->subscribers);
			shown = n;
		}
		if (sys_now_ns() >= deadline) {
			tool_err(xo->cmd, "%d of %llu subscribers joined %s "
				 "within %g s", n,
				 (unsigned long long)xo->subscribers, xo->name,
				 xo->timeout);
			return TOOL_EXIT_MEET;
		}
	}
	return 0;
}

/* The publisher's counters that change when subscribers come and go. */
static uint64_t pub_changes(struct evshm_pub *p, uint64_t *dropped)
{
	struct evshm_pub_stats st;

	evshm_pub_stats(p, &st);
	*dropped = st.dropped;
	return st.joined + st.left + st.dropped;
}

/* Say at once when the library dropped a subscriber for stalling. */
static void pub_tell_drops(const struct xfer_opts *xo,
			   const struct xfer_progress *pg, uint64_t dropped,
			   uint64_t *told)
{
	if (dropped == *told)
		return;
	xfer_progress_break(pg);
	tool_err(xo->cmd, "dropped %llu subscriber%s: held the stream up "
		 "for more than %g s (--stall-timeout)",
		 (unsigned long long)(dropped - *told),
		 dropped - *told > 1 ? "s" : "", xo->stall);
	*told = dropped;
}

/*
 * Stdin to the topic, then the end.  While stdin is idle the publisher
 * still admits subscribers and notices those that leave (the publisher's
 * descriptor wakes it).  The descriptor can also stay readable for a
 * subscriber's late "room" kick that only a publish that waits consumes;
 * a wakeup that changed nothing mutes it for QUIET_NS, so an idle stdin
 * never makes this loop spin.
 */
static int pub_stream(const struct xfer_opts *xo, struct evshm_pub *p,
		      struct xfer_progress *pg, uint64_t *total,
		      uint64_t *dropped)
{
	size_t chunk = xo->chunk;
	uint64_t quiet_until = 0, changes = pub_changes(p, dropped), told = 0;
	int fd = evshm_pub_fd(p), res;

	if (chunk > evshm_pub_max_msg(p))
		chunk = evshm_pub_max_msg(p);
	for (;;) {
		bool quiet = sys_now_ns() < quiet_until;
		void *ptr;
		ssize_t n;

		res = xfer_wait_input(quiet ? -1 : fd,
				      quiet ? quiet_until : UINT64_MAX);
		if (res < 0)
			break;
		if (res == 0) {
			uint64_t c;
			if (!quiet && (res = evshm_pub_serve(p, 0)) < 0)
				break;
			c = pub_changes(p, dropped);
			if (c == changes && !quiet)
				quiet_until = sys_now_ns() + QUIET_NS;
			changes = c;
			pub_tell_drops(xo, pg, *dropped, &told);
			continue;
		}
		res = evshm_pub_reserve(p, chunk, &ptr, -1);
		if (res < 0)
			break;
		n = tool_read(STDIN_FILENO, ptr, chunk);
		if (n < 0) {
			/* No end message (the reservation is dropped with
			 * the topic): every subscriber sees a cut stream. */
			xfer_progress_break(pg);
			tool_err(xo->cmd, "reading stdin: %s", strerror((int)-n));
			return TOOL_EXIT_IO;
		}
		/* n == 0 publishes the empty message: the end. */
		res = evshm_pub_commit(p, (size_t)n);
		if (res < 0)
			break;
		*total += (uint64_t)n;
		pub_changes(p, dropped);
		pub_tell_drops(xo, pg, *dropped, &told);
		xfer_progress_show(pg, *total, false, NULL);
		if (n == 0)
			return 0;
	}
	xfer_progress_break(pg);
	tool_err(xo->cmd, "publishing after %llu bytes: %s",
		 (unsigned long long)*total, evshm_strerror(res));
	return TOOL_EXIT_FAIL;
}

/*
 * After the end: wait until every subscriber still attached has released
 * all it was given, or none of those has moved for --stall-timeout.
 * Returns how many were given up.
 */
static unsigned pub_drain(const struct xfer_opts *xo, struct evshm_pub *p)
{
	uint64_t stall_ns = (uint64_t)(xo->stall * 1e9);
	uint64_t moved_at = sys_now_ns(), last = UINT64_MAX;
	struct evshm_sub_info *info = NULL;
	unsigned cap = 0, pending = 0;

	for (;;) {
		int n;

		/* Reap those that left, admit late joiners (nothing is
		 * due to them: they start after the end). */
		evshm_pub_serve(p, 0);
		n = evshm_pub_subscribers(p, info, cap);
		if (n > (int)cap) {
			struct evshm_sub_info *bigger =
				realloc(info, (size_t)n * sizeof(*info));
			if (bigger) {
				info = bigger;
				cap = (unsigned)n;
			}
			continue;
		}
		uint64_t sum = 0;
		pending = 0;
		for (int i = 0; i < n; i++)
			if (info[i].lag) {
				pending++;
				sum += info[i].msgs_recv + info[i].lost;
			}
		if (!pending)
			break;
		uint64_t now = sys_now_ns();
		if (sum != last) {
			last = sum;
			moved_at = now;
		} else if (now - moved_at >= stall_ns) {
			break;
		}
		sys_sleep_ns(DRAIN_POLL_NS);
	}
	free(info);
	return pending;
}

static int do_pub(const struct xfer_opts *xo, struct evshm_pub *p)
{
	struct xfer_progress pg;
	uint64_t total = 0, dropped;
	char note[64];
	int res;

	if (xo->subscribers && (res = pub_wait_subscribers(xo, p)) != 0)
		return res;
	xfer_progress_init(&pg, xo->progress, "pub");
	res = pub_stream(xo, p, &pg, &total, &dropped);
	if (res)
		return res;
	unsigned behind = pub_drain(xo, p);
	struct evshm_pub_stats st;
	evshm_pub_stats(p, &st);
	snprintf(note, sizeof(note), ", %u subscriber%s at the end",
		 st.subscribers, st.subscribers == 1 ? "" : "s");
	xfer_progress_show(&pg, total, true, note);
	if (behind)
		tool_err(xo->cmd, "gave up on %u subscriber%s that did not read "
			 "the end of the stream within %g s (--stall-timeout); "
			 "they can still read it", behind, behind > 1 ? "s" : "",
			 xo->stall);
	/* Drops were told as they happened (pub_tell_drops). */
	return behind || st.dropped ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}

/* --- sub ---------------------------------------------------------------- */

static int do_sub(const struct xfer_opts *xo, struct evshm_sub *s)
{
	struct xfer_progress pg;
	size_t cap = evshm_sub_max_msg(s);
	uint64_t total = 0;
	void *buf = malloc(cap ? cap : 1);
	int res;

	if (!buf) {
		tool_err(xo->cmd, "out of memory");
		return TOOL_EXIT_FAIL;
	}
	xfer_progress_init(&pg, xo->progress, "sub");
	for (;;) {
		res = evshm_sub_recv(s, buf, cap, -1);
		if (res <= 0)
			break;
		size_t len = (size_t)res;
		res = xfer_write_out(buf, len);
		if (res == -EPIPE) {
			free(buf);
			return TOOL_EXIT_SIGPIPE;
		}
		if (res < 0) {
			xfer_progress_break(&pg);
			tool_err(xo->cmd, "writing stdout: %s", strerror(-res));
			free(buf);
			return TOOL_EXIT_IO;
		}
		total += len;
		xfer_progress_show(&pg, total, false, NULL);
	}
	free(buf);
	if (res == 0) {
		uint64_t lost = evshm_sub_lost(s);
		xfer_progress_show(&pg, total, true, NULL);
		if (!lost)
			return TOOL_EXIT_OK;
		tool_err(xo->cmd, "lost %llu message%s: the publisher (--latest) "
			 "overwrote them before they were read; the output has "
			 "gaps", (unsigned long long)lost, lost > 1 ? "s" : "");
		return TOOL_EXIT_FAIL;
	}
	xfer_progress_break(&pg);
	if (res == -ECONNABORTED) {
		tool_err(xo->cmd, "dropped by the publisher after %llu bytes: "
			 "this subscriber held the stream up for longer than the "
			 "publisher's --stall-timeout", (unsigned long long)total);
		return TOOL_EXIT_DROPPED;
	}
	if (res == -EPIPE)
		tool_err(xo->cmd, "the publisher went away before the end of "
			 "the stream (%llu bytes received)",
			 (unsigned long long)total);
	else if (res == -EPROTO)
		tool_err(xo->cmd, "the publisher broke the protocol after %llu "
			 "bytes (%s)", (unsigned long long)total,
			 evshm_sub_error_reason(s) ? evshm_sub_error_reason(s)
						   : "no reason given");
	else
		tool_err(xo->cmd, "receiving after %llu bytes: %s",
			 (unsigned long long)total, evshm_strerror(res));
	return TOOL_EXIT_FAIL;
}

/* --- command lines ------------------------------------------------------ */

static int set_stall(void *o, const char *v)
{
	double d;

	/* Milliseconds in an int32_t (evshm_opts.stall_timeout_ms). */
	if (tool_parse_seconds(v, &d) < 0 || d < 0.001 || d > 2e6)
		return -EINVAL;
	((struct xfer_opts *)o)->stall = d;
	return 0;
}

static const struct tool_option pub_opts[] = {
	{ .name = "subscribers", .short_name = 'n', .arg = "N",
	  .type = TOOL_OPT_COUNT, .off = XFER_F(subscribers, uint64_t),
	  .max = 1024,
	  .help = "wait until N subscribers have joined before\n"
		  "reading stdin (default 0: start at once;\n"
		  "later ones join the stream where it is)" },
	{ .name = "latest", .type = TOOL_OPT_FLAG, .off = XFER_F(latest, bool),
	  .help = "never wait for a slow subscriber: it misses\n"
		  "what is overwritten (and `sub` exits 1); the\n"
		  "default waits for the slowest (reliable)" },
	{ .name = "stall-timeout", .arg = "SEC", .type = TOOL_OPT_CUSTOM,
	  .set = set_stall,
	  .help = "drop a subscriber that holds the stream up\n"
		  "this long without reading, and give up waiting\n"
		  "for one at the end (default 10)" },
	XFER_OPT_TIMEOUT("waiting for --subscribers"),
	XFER_OPT_RING("every subscriber"),
	XFER_OPT_CHUNK,
	XFER_OPT_PROGRESS,
};

static const struct tool_option sub_opts[] = {
	{ .name = "history", .arg = "K", .type = TOOL_OPT_COUNT,
	  .off = XFER_F(history, uint64_t), .max = 4294967295.0,
	  .help = "start with up to K messages published before\n"
		  "we joined, if the ring still holds them" },
	XFER_OPT_WAIT("if nobody publishes at NAME yet, retry until\n"
		      "someone does (see --timeout)"),
	XFER_OPT_TIMEOUT("subscribing"),
	XFER_OPT_PROGRESS,
};

static const struct tool_cmd pub_cmd = {
	.name = "pub",
	.synopsis = "[OPTIONS] NAME",
	.about = "Publish stdin as a topic at NAME: every `evshm sub NAME` gets\n"
		 "it, from the one ring this process writes once, then an explicit\n"
		 "end of stream.  Exit once every subscriber still there has read\n"
		 "the end.  NAME: a socket path, or @name (Linux abstract name).\n",
	.opts = pub_opts,
	.nopts = sizeof(pub_opts) / sizeof(pub_opts[0]),
	.footer = "Exit status: 0 all published, and every subscriber still there\n"
		  "read the end; 1 a subscriber was dropped or given up for\n"
		  "stalling (the others got everything), or publishing failed;\n"
		  "2 usage; 3 cannot publish at NAME, or --subscribers did not\n"
		  "join within --timeout; 4 reading stdin failed.\n",
};

static const struct tool_cmd sub_cmd = {
	.name = "sub",
	.synopsis = "[OPTIONS] NAME",
	.about = "Subscribe to the topic `evshm pub NAME` publishes and write it\n"
		 "to stdout; exit 0 only when the publisher's explicit end of\n"
		 "stream arrived and every byte was written.  A subscriber joins\n"
		 "the stream where it is (see --history).\n",
	.opts = sub_opts,
	.nopts = sizeof(sub_opts) / sizeof(sub_opts[0]),
	.footer = "Exit status: 0 the whole stream arrived; 1 the publisher went\n"
		  "away before the end (killed, failed), broke the protocol, or\n"
		  "(--latest) overwrote messages before they were read; 2 usage;\n"
		  "3 could not subscribe; 4 writing stdout failed; 5 dropped by\n"
		  "the publisher for stalling it; 141 (SIGPIPE) stdout was closed\n"
		  "by its reader.\n",
};

int tool_pub(int argc, char **argv)
{
	struct xfer_opts xo = { .cmd = "pub", .timeout = -1,
				.ring = XFER_RING_DEFAULT,
				.chunk = XFER_CHUNK_DEFAULT,
				.stall = STALL_DEFAULT };
	struct evshm_pub *p;
	int res = xfer_parse(&pub_cmd, argc, argv, &xo);

	if (res >= 0)
		return res;
	struct evshm_opts eo = {
		.ring_size = (uint32_t)xo.ring,
		.policy = xo.latest ? EVSHM_LATEST : EVSHM_RELIABLE,
		.stall_timeout_ms = (int32_t)(xo.stall * 1000),
	};
	res = evshm_pub_open(&p, xo.name, &eo);
	if (res < 0) {
		tool_err(xo.cmd, "cannot publish at %s: %s", xo.name,
			 evshm_strerror(res));
		return TOOL_EXIT_MEET;
	}
	res = do_pub(&xo, p);
	evshm_pub_close(p);
	return res;
}

struct sub_try {
	const struct xfer_opts *xo;
	const struct evshm_opts *eo;
	struct evshm_sub **s;
};

static int sub_once(void *arg, int ms)
{
	struct sub_try *t = arg;

	return evshm_sub_open(t->s, t->xo->name, t->eo, ms);
}

int tool_sub(int argc, char **argv)
{
	struct xfer_opts xo = { .cmd = "sub", .timeout = -1 };
	struct evshm_sub *s;
	char hint[160];
	int res = xfer_parse(&sub_cmd, argc, argv, &xo);

	if (res >= 0)
		return res;
	/* The ring is the publisher's memory: take whatever size it has. */
	struct evshm_opts eo = { .history = (uint32_t)xo.history,
				 .max_ring_size = EVSHM_RING_MAX };
	struct sub_try t = { &xo, &eo, &s };
	snprintf(hint, sizeof(hint), "start `evshm pub %s` first", xo.name);
	res = xfer_connect(&xo, sub_once, &t, hint);
	if (res)
		return res;
	res = do_sub(&xo, s);
	/* Closed first: the publisher sees us leave. */
	evshm_sub_close(s);
	return res == TOOL_EXIT_SIGPIPE ? xfer_exit_sigpipe() : res;
}

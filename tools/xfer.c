/* SPDX-License-Identifier: MIT */
/* xfer.c: what send/recv and pub/sub share (see xfer.h). */
#include "xfer.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <evshm.h>

#include "sys.h"

#define PROGRESS_NS 500000000ull
#define RETRY_NS 20000000ull

int xfer_set_ring(void *opts, const char *val)
{
	uint64_t n;

	if (tool_parse_size(val, &n) < 0 || n < EVSHM_RING_MIN ||
	    n > EVSHM_RING_MAX || (n & (n - 1)))
		return -EINVAL;
	((struct xfer_opts *)opts)->ring = n;
	return 0;
}

int xfer_parse(const struct tool_cmd *c, int argc, char **argv,
	       struct xfer_opts *xo)
{
	int first, res = tool_getopt(c, argc, argv, xo, &first);

	if (res >= 0)
		return res;
	if (first == argc)
		return tool_usage_error(c, "NAME is missing");
	if (first + 1 < argc)
		return tool_usage_error(c, "one NAME only");
	if (xo->wait && xo->listen)
		return tool_usage_error(c, "--wait is for the side that connects");
	xo->name = argv[first];
	return -1;
}

uint64_t xfer_deadline(const struct xfer_opts *xo)
{
	if (xo->timeout < 0)
		return UINT64_MAX;
	return sys_now_ns() + (uint64_t)(xo->timeout * 1e9);
}

/* --- meeting a listener ------------------------------------------------- */

int xfer_connect(const struct xfer_opts *xo, int (*try)(void *arg, int ms),
		 void *arg, const char *hint)
{
	uint64_t deadline = xfer_deadline(xo);

	for (;;) {
		int ms = sys_ms_left(deadline);
		int res = try(arg, ms < 0 ? 10000 : ms);
		if (res == 0)
			return 0;
		bool absent = res == -ENOENT || res == -ECONNREFUSED;
		if (absent && xo->wait && sys_now_ns() < deadline) {
			sys_sleep_ns(RETRY_NS);
			continue;
		}
		if (absent && xo->wait)
			tool_err(xo->cmd, "nobody listened at %s within %g s",
				 xo->name, xo->timeout);
		else if (absent)
			tool_err(xo->cmd, "nobody listens at %s (%s, or use "
				 "--wait)", xo->name, hint);
		else
			tool_err(xo->cmd, "cannot connect to %s: %s", xo->name,
				 evshm_strerror(res));
		return TOOL_EXIT_MEET;
	}
}

/* --- the stream --------------------------------------------------------- */

int xfer_wait_input(int fd, uint64_t deadline)
{
	struct pollfd pfd[2] = {
		{ .fd = STDIN_FILENO, .events = POLLIN },
		{ .fd = fd, .events = POLLIN },
	};
	int n = sys_poll(pfd, 2, deadline);

	if (n < 0)
		return n;
	/* POLLHUP on stdin is end-of-file: read() says 0. */
	return pfd[0].revents ? 1 : 0;
}

int xfer_write_out(const void *p, size_t len)
{
	return tool_write_all(STDOUT_FILENO, p, len);
}

static_assert(TOOL_EXIT_SIGPIPE == 128 + SIGPIPE, "the shell's status");

int xfer_exit_sigpipe(void)
{
	signal(SIGPIPE, SIG_DFL);
	raise(SIGPIPE);
	return 128 + SIGPIPE;
}

/* --- progress ----------------------------------------------------------- */

void xfer_progress_init(struct xfer_progress *p, bool on, const char *verb)
{
	p->on = on;
	p->verb = verb;
	p->start = p->last = sys_now_ns();
	p->last_bytes = 0;
}

void xfer_progress_show(struct xfer_progress *p, uint64_t bytes, bool final,
			const char *note)
{
	char b[32], r[32];

	if (!p->on)
		return;
	uint64_t now = sys_now_ns();
	if (!final && now - p->last < PROGRESS_NS)
		return;
	double dt = (double)(final ? now - p->start : now - p->last) / 1e9;
	double db = (double)(final ? bytes : bytes - p->last_bytes);
	fprintf(stderr, "\revshm %s: %s%s  %s/s%s        %s", p->verb,
		final ? "total " : "", tool_fmt_bytes(b, sizeof(b), (double)bytes),
		tool_fmt_bytes(r, sizeof(r), dt > 0 ? db / dt : 0),
		note ? note : "", final ? "\n" : "");
	p->last = now;
	p->last_bytes = bytes;
}

void xfer_progress_break(const struct xfer_progress *p)
{
	if (p->on)
		fputc('\n', stderr);
}

/* SPDX-License-Identifier: MIT */
/*
 * xfer.h: what the byte-stream subcommands share: `evshm send` / `recv`
 * (pipe.c, a channel to one peer) and `evshm pub` / `sub` (topic.c, one
 * publisher to many subscribers).  All four carry stdin to stdout as
 * messages of one or more bytes followed by one empty message, the end of
 * the stream; they share their options, the wait for input that still
 * watches the other side, the write to stdout that ends by SIGPIPE like any
 * pipe writer, the progress line, and the connect-with-retry that meets a
 * listener (--wait, --timeout).
 */
#ifndef EVSHM_TOOL_XFER_H
#define EVSHM_TOOL_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tool.h"

/* The options of the four commands (each uses its own subset). */
struct xfer_opts {
	const char *cmd;      /* "send", "recv", "pub", "sub": for messages */
	const char *name;
	bool listen;          /* send/recv: this side listens */
	bool wait;            /* the connecting side: retry until NAME is there */
	double timeout;       /* seconds to meet the peer(s); < 0: forever */
	uint64_t ring;        /* send, pub: size of the ring we write */
	uint64_t chunk;       /* send, pub: largest message (one read) */
	bool progress;
	uint64_t subscribers; /* pub: wait for this many before reading */
	bool latest;          /* pub: EVSHM_LATEST instead of EVSHM_RELIABLE */
	double stall;         /* pub: --stall-timeout, seconds */
	uint64_t history;     /* sub: start with up to this many past messages */
};

/* Defaults of the writing side (send, pub). */
#define XFER_RING_DEFAULT (4u << 20)
#define XFER_CHUNK_DEFAULT (256u << 10)

/* --- options shared by the tables of pipe.c and topic.c ----------------- */

#define XFER_F(field, ctype) TOOL_FIELD(struct xfer_opts, field, ctype)

/* --ring: a power of two from EVSHM_RING_MIN to EVSHM_RING_MAX. */
int xfer_set_ring(void *opts, const char *val);

#define XFER_OPT_TIMEOUT(what)                                               \
	{ .name = "timeout", .arg = "SEC", .type = TOOL_OPT_SECONDS,          \
	  .off = XFER_F(timeout, double), .max = 2e6,                         \
	  .help = "give up " what "\n"                                        \
		  "after SEC seconds (default: wait forever)" }
#define XFER_OPT_PROGRESS                                                    \
	{ .name = "progress", .type = TOOL_OPT_FLAG,                          \
	  .off = XFER_F(progress, bool),                                      \
	  .help = "show bytes and throughput on stderr" }
#define XFER_OPT_WAIT(help_)                                                 \
	{ .name = "wait", .type = TOOL_OPT_FLAG, .off = XFER_F(wait, bool),   \
	  .help = help_ }
#define XFER_OPT_RING(to)                                                    \
	{ .name = "ring", .arg = "SIZE", .type = TOOL_OPT_CUSTOM,             \
	  .set = xfer_set_ring,                                               \
	  .help = "size of the ring to " to ", a power of\n"                  \
		  "two from 4K to 1G (default 4M)" }
#define XFER_OPT_CHUNK                                                       \
	{ .name = "chunk", .arg = "SIZE", .type = TOOL_OPT_SIZE,              \
	  .off = XFER_F(chunk, uint64_t), .min = 1, .max = 1u << 30,          \
	  .help = "largest read from stdin, one message (default\n"           \
		  "256K; at most ring/2 - 16)" }

/*
 * Options, then exactly one NAME into @xo->name.  -1 to go on, or the exit
 * status to end with (--help, a usage error).  --wait belongs to the side
 * that connects.
 */
int xfer_parse(const struct tool_cmd *c, int argc, char **argv,
	       struct xfer_opts *xo);

/* The deadline of --timeout, from now (UINT64_MAX: none). */
uint64_t xfer_deadline(const struct xfer_opts *xo);

/* --- meeting a listener ------------------------------------------------- */

/*
 * Call @try (evshm_connect, evshm_sub_open, ...) with the milliseconds it
 * may take until it succeeds (0), or fails with anything but "nobody
 * listens at NAME", or --wait was not given, or --timeout expired; retry
 * every 20 ms meanwhile.  Failures are told on stderr: @hint says what to
 * start first when nobody listens.  0, or TOOL_EXIT_MEET.
 */
int xfer_connect(const struct xfer_opts *xo, int (*try)(void *arg, int ms),
		 void *arg, const char *hint);

/* --- the stream --------------------------------------------------------- */

/*
 * Wait until stdin has something to read (or its end), or @fd (the other
 * side's descriptor) polls readable, or @deadline.  Without this a
 * writer blocked on an idle stdin would not notice that its readers left.
 * 1: read stdin; 0: look at @fd (or the deadline passed); -errno.
 */
int xfer_wait_input(int fd, uint64_t deadline);

/* Write @len bytes to stdout.  0, -EPIPE (the reader of stdout has gone:
 * close the channel, then xfer_exit_sigpipe()), or -errno. */
int xfer_write_out(const void *p, size_t len);

/* End the way a pipe writer whose reader left does: by SIGPIPE, with no
 * message.  Returns (if SIGPIPE is ignored) the status a shell would show. */
int xfer_exit_sigpipe(void);

/* --- progress ----------------------------------------------------------- */

struct xfer_progress {
	bool on;
	const char *verb;
	uint64_t start, last, last_bytes;
};

void xfer_progress_init(struct xfer_progress *p, bool on, const char *verb);
/* Every half second, and once with @final: bytes, throughput and @note
 * (NULL: none) on stderr. */
void xfer_progress_show(struct xfer_progress *p, uint64_t bytes, bool final,
			const char *note);
/* Before a message on stderr: end the progress line. */
void xfer_progress_break(const struct xfer_progress *p);

#endif

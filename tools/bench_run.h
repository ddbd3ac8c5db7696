/* SPDX-License-Identifier: MIT */
/*
 * bench_run.h: one test of `evshm bench`, both sides, and what travels
 * between them.
 *
 * Two processes: the driver (side A: the ping side of a round trip, the
 * receiver of a stream) and the peer it spawned as `evshm bench-peer CTL`
 * (side B: the echo side, the sender).  They talk over a control socket
 * (SOCK_SEQPACKET): for each test A sends a struct bench_spec with the
 * descriptors B needs (pipe ends, shared memory, eventfds), both run their
 * side, and B answers with a struct bench_report.
 *
 * Fan-out is 1 + N processes: the driver publishes (side A) and N peers,
 * each spawned the same way with a control socket of its own, subscribe
 * (side B); each gets the same spec and reports for itself.
 */
#ifndef EVSHM_TOOL_BENCH_RUN_H
#define EVSHM_TOOL_BENCH_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include <evshm.h>

enum bench_test {
	BT_RTT,        /* ping-pong round trips */
	BT_IDLE,       /* round trips, each side sleeping before it sends */
	BT_STREAM,     /* one-way streaming, B to A */
	BT_FANOUT,     /* one-way streaming, A to N peers at once */
};

/* The transports (bench_xport.h has their operations). */
enum bench_xport {
	BX_STREAM,     /* Unix SOCK_STREAM, length-prefixed frames */
	BX_SEQPACKET,  /* Unix SOCK_SEQPACKET, one message per send */
	BX_PIPE,       /* two pipes, length-prefixed frames */
	BX_EVSHM,      /* evshm_send / evshm_recv */
	BX_EVSHM_ZC,   /* evshm_reserve+commit / evshm_peek+release */
	BX_EVSHM_BATCH, /* evshm_reserve+commit / evshm_peek, evshm_peek_next
			   while there are more (64 at most), one release */
	BX_LINE,       /* floor: spin ping-pong on one shared cache line */
	BX_EVENTFD,    /* floor: blocking ping-pong on two eventfds */
	BX_SLOT,       /* floor: spinning ring of 64-byte slots */
	BX_FRAMED,     /* floor: the same with evshm's record framing */
	/* Fan-out: A publishes, every B subscribes. */
	BX_FAN_STREAM, /* N Unix stream sockets, A writes each message to each */
	BX_TOPIC,      /* evshm_pub_send / evshm_sub_recv */
	BX_TOPIC_ZC,   /* evshm_pub_reserve+commit / evshm_sub_peek+release */
	BX_TOPIC_BATCH, /* the same, peeking runs of up to 64 (as above) */
	BX_ZMQ,        /* ZeroMQ XPUB/SUB over ipc:// (if built with libzmq) */
	BX_COUNT
};

enum bench_fault {
	BF_NONE,
	BF_CORRUPT,    /* the sender flips a byte of one message */
	BF_DROP,       /* the sender skips one sequence number */
};

/* Longest wait for a control message (a spec, a report, the peer's
 * connection). */
#define BENCH_CTL_TIMEOUT_MS 60000

#define BENCH_NAME_MAX 100
#define BENCH_ERR_MAX 256
/* Most round trips of an idle test (B reports a latency for each). */
#define BENCH_IDLE_MAX 256
/* Round trips of an idle test before measuring. */
#define BENCH_IDLE_WARMUP 2
/* Most subscribers of a fan-out test (peer processes). */
#define BENCH_MAX_SUBS 8

/* Driver -> peer: what to run. */
struct bench_spec {
	uint32_t quit;         /* 1: no more tests, exit */
	uint32_t test;         /* enum bench_test */
	uint32_t xport;        /* enum bench_xport */
	uint32_t size;         /* message bytes (multiple of 8, >= 16) */
	uint32_t ring;         /* evshm ring size, both directions */
	uint32_t fault;        /* enum bench_fault */
	int32_t cpu_b;         /* B runs on this CPU; -1: unpinned */
	uint32_t subs;         /* fan-out: subscribers (1..BENCH_MAX_SUBS) */
	int64_t spin_ns;       /* evshm_opts.spin_ns */
	uint64_t count;        /* round trips, or messages streamed (0: for
				  @seconds) */
	uint64_t warmup;       /* the same, before measuring */
	double seconds;        /* stream: how long the sender sends */
	uint64_t gap_ns;       /* idle: each side sleeps this long, then
				  sends */
	char name[BENCH_NAME_MAX]; /* where B connects */
};

/* Peer -> driver: how B's side went. */
struct bench_report {
	int32_t status;        /* 0 or -1 (err says why) */
	uint32_t pad_;
	uint64_t msgs;         /* messages B sent (a stream's end excluded);
				  fan-out: received */
	uint64_t t_first;      /* fan-out: when B had the last warm-up
				  message (sys_now_ns(), one clock for all) */
	uint64_t t_end;        /* fan-out: when B had the end */
	struct evshm_stats st; /* evshm: B's channel counters */
	double cpu_s, wall_s;  /* idle: B's CPU time over the wall time */
	uint32_t nlat;         /* idle: one-way latencies of A's messages */
	uint32_t lat_ns[BENCH_IDLE_MAX];
	char err[BENCH_ERR_MAX];
};

/* What a test measured.  Every figure is a double; NAN where it does not
 * apply (a table prints "-", JSON leaves it out). */
enum bench_fig {
	FIG_P50, FIG_P99, FIG_P999,   /* round trip, ns */
	FIG_LAT_P50, FIG_LAT_MAX,     /* idle: one-way latency, ns */
	FIG_CPU_A, FIG_CPU_B,         /* idle: CPU seconds per wall second */
	FIG_MSGS_S, FIG_GB_S,         /* streaming: messages/s, 10^9 B/s */
	FIG_KICKS_A, FIG_KICKS_B,     /* evshm kicks per message, each side */
	FIG_VS_STREAM,                /* ratio to the Unix stream socket */
	FIG_VS_FLOOR,                 /* ratio to the row's floor */
	FIG_VS_SLOT, FIG_VS_MEMCPY,   /* streaming: to the slot ring, memcpy */
	FIG_VS_FRAMED,                /* streaming: to the framed ring */
	FIG_VS_ZMQ,                   /* fan-out: to ZeroMQ PUB/SUB */
	FIG_COUNT
};

struct bench_result {
	double fig[FIG_COUNT];
};

/* Run side A of @s: set the transport up, hand the spec and B's
 * descriptors to B over @ctl[0] (fan-out: to s->subs peers, ctl[0 ..
 * s->subs)), run, and collect the reports.  @samples has room for
 * s->count round trips (idle: 2 * s->count latencies).  0, or -1 with the
 * reason in @err. */
int bench_run_a(const struct bench_spec *s, const int *ctl, uint64_t *samples,
		struct bench_result *r, char err[BENCH_ERR_MAX]);

/* Side B: serve specs from @ctl until told to quit (0) or the driver
 * goes away (-1). */
int bench_serve_b(int ctl);

/* Floors measured in one process, for about @seconds: bytes per second
 * of memcpy, of generating (pl_fill) and of verifying (pl_sum) @size-byte
 * messages. */
enum bench_local { BL_MEMCPY, BL_GENERATE, BL_VERIFY };
double bench_local_floor(enum bench_local what, uint32_t size, double seconds);

#endif

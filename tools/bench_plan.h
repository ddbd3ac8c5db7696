/* SPDX-License-Identifier: MIT */
/*
 * bench_plan.h: what `evshm bench` runs.  The options choose from tables
 * of scenarios (bench_plan.c); the plan is the resulting list of rows,
 * grouped in sections (one table each in the report), each row knowing
 * which rows of its section its ratios are taken against.
 */
#ifndef EVSHM_TOOL_BENCH_PLAN_H
#define EVSHM_TOOL_BENCH_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "bench_run.h"

/* --tests */
enum { T_RTT = 1, T_STREAM = 2, T_FLOOR = 4, T_IDLE = 8, T_FANOUT = 16 };
/* --transports */
enum { X_STREAM = 1, X_SEQPACKET = 2, X_PIPE = 4, X_EVSHM = 8, X_ZMQ = 16 };

/* Where the two processes run (--placements: bit 1 << placement). */
enum placement {
	PL_APART,      /* pinned, A on one CPU and B on another */
	PL_SAME,       /* both pinned to one CPU */
	PL_UNPINNED,   /* wherever the scheduler puts them */
	PL_COUNT
};

#define BENCH_MAX_SIZES 16

struct bench_opts {
	unsigned tests, xports;          /* T_*, X_* */
	uint32_t sizes[BENCH_MAX_SIZES]; /* streaming message sizes */
	unsigned nsizes;
	uint64_t rtt_size, rtts, rtt_warmup;
	uint64_t idle;                   /* idle: round trips measured */
	double idle_gap;                 /* idle: seconds before each send */
	double seconds;                  /* streaming: per transport */
	uint64_t count;                  /* streaming: instead of seconds */
	uint64_t ring;                   /* streaming evshm ring; 0: 16 MiB */
	int64_t spin_ns;                 /* streaming evshm spin_ns */
	int64_t rtt_spin_ns;             /* the spinning round trip's */
	int cpu_a, cpu_b;                /* PL_APART; -1: --cpus none */
	unsigned placements;             /* 1 << PL_*: round-trip sections */
	uint32_t fan_sizes[BENCH_MAX_SIZES]; /* fan-out message sizes */
	unsigned nfan_sizes;
	unsigned fan_subs[BENCH_MAX_SUBS]; /* fan-out subscriber counts */
	unsigned nfan_subs;
	double fan_seconds;              /* fan-out: per row */
	uint64_t repeat;
	bool json;
	enum bench_fault fault;
};

/* The rows a row's ratios are taken against. */
enum bench_ref {
	REF_STREAM,    /* the Unix stream socket: FIG_VS_STREAM */
	REF_FLOOR,     /* the floor of its kind: FIG_VS_FLOOR */
	REF_SLOT,      /* streaming: the slot ring: FIG_VS_SLOT */
	REF_MEMCPY,    /* streaming: memcpy, one process: FIG_VS_MEMCPY */
	REF_FRAMED,    /* streaming: the framed ring: FIG_VS_FRAMED */
	REF_ZMQ,       /* fan-out: ZeroMQ PUB/SUB: FIG_VS_ZMQ */
	REF_COUNT
};

struct bench_row {
	enum bench_test test;
	bool local;                 /* a floor measured in one process */
	enum bench_xport xport;     /* two processes: the transport */
	enum bench_local lfloor;    /* one process: which floor */
	enum placement where;
	unsigned section;           /* rows of one section are adjacent */
	uint32_t size, ring;
	unsigned subs;              /* fan-out: subscribers; 0 otherwise */
	int64_t spin_ns;
	const char *label;          /* in the table */
	const char *id;             /* in JSON */
	enum bench_xport floor[2];  /* the floor it is compared with: the
				       first of these in its section
				       (BX_COUNT: none) */
	int ref[REF_COUNT];         /* row index, -1: none */
};

#define BENCH_PLAN_MAX 1024

struct bench_plan {
	struct bench_row rows[BENCH_PLAN_MAX];
	unsigned n;
};

void bench_plan_make(struct bench_plan *p, const struct bench_opts *o);

/* The ratios of one run: @res holds one result per row of @p. */
void bench_plan_ratios(const struct bench_plan *p, struct bench_result *res);

/* "apart", "same", "unpinned". */
const char *bench_placement_name(enum placement w);

/* The CPUs of side A and side B in placement @w (-1: unpinned). */
void bench_plan_cpus(const struct bench_opts *o, enum placement w, int *a,
		     int *b);

/* The spec of a two-process row; @name is where B meets A. */
struct bench_spec bench_plan_spec(const struct bench_opts *o,
				  const struct bench_row *rw, const char *name);

/* Streaming warm-up: 16 MiB of messages, 8 to 20000 of them. */
uint64_t bench_stream_warmup(uint32_t size);

/* The evshm ring for streaming @size-byte messages. */
uint32_t bench_stream_ring(const struct bench_opts *o);

/* Fan-out warm-up: 4 MiB of messages, 8 to 2000 of them. */
uint64_t bench_fanout_warmup(uint32_t size);

/* Peer processes the plan needs: the most subscribers of a fan-out row,
 * at least 1. */
unsigned bench_plan_peers(const struct bench_plan *p);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * bench_plan.c: the scenarios of `evshm bench`, as tables, and the plan
 * the options make of them (see bench_plan.h).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench_plan.h"
#include "bench_xport.h"

/*
 * evshm ring for streaming: 16 MiB for every size unless --ring says
 * otherwise.  Measured on 2 vCPUs (EPYC, 1 MiB L2 per core, 32 MiB L3),
 * three runs each: 64 B messages went from ~7M msgs/s with a 256 KiB ring
 * to ~20M with 16 MiB, 4 KiB from 2.6 to 4.2 GB/s, 1 MiB (zero copy) from
 * 8 (4 MiB) to 9.6 GB/s.  A ring larger than the consumer's L2 means the
 * producer rewrites lines that the consumer's core no longer holds, so
 * claiming them does not wait on the other core.  It stays within the L3.
 */
#define STREAM_RING (16u << 20)

/* How an evshm row waits (the spin_ns it passes). */
enum wait {
	WAIT_NA,        /* not evshm */
	WAIT_DEFAULT,   /* 0: the library's default */
	WAIT_NEVER,     /* EVSHM_SPIN_NEVER: sleep at once */
	WAIT_RTT_SPIN,  /* --rtt-spin */
	WAIT_STREAM,    /* --spin */
};

/* Which placements a scenario runs in. */
enum where {
	IN_MAIN,        /* the main one: apart, or unpinned without CPUs */
	IN_EACH,        /* every placement of --placements */
};

#define NO_FLOOR { BX_COUNT, BX_COUNT }
#define SPIN_FLOOR { BX_LINE, BX_COUNT }
#define SLEEP_FLOOR { BX_EVENTFD, BX_COUNT }
/* Spinning where a spin floor was measured, else sleeping. */
#define SPIN_OR_SLEEP_FLOOR { BX_LINE, BX_EVENTFD }

/* One line of a scenario table. */
struct scenario {
	unsigned xport_bit;     /* X_* of --transports; 0: a floor */
	enum bench_xport x;
	enum wait wait;
	enum where where;
	enum bench_xport floor[2];
	const char *label, *id;
};

/*
 * Round trips.  Spinning rows run only where the two sides have a CPU
 * each (spinning on one CPU waits for the scheduler's tick), the rest in
 * every placement.  The library's default (spin_ns = 0) is compared with
 * the spin floor where it was measured: what a default could reach.
 */
static const struct scenario rtt_table[] = {
	{ X_STREAM, BX_STREAM, WAIT_NA, IN_MAIN, SLEEP_FLOOR,
	  "unix stream", "unix-stream" },
	{ X_SEQPACKET, BX_SEQPACKET, WAIT_NA, IN_MAIN, SLEEP_FLOOR,
	  "unix seqpacket", "unix-seqpacket" },
	{ X_PIPE, BX_PIPE, WAIT_NA, IN_MAIN, SLEEP_FLOOR, "pipe", "pipe" },
	{ X_EVSHM, BX_EVSHM, WAIT_DEFAULT, IN_EACH, SPIN_OR_SLEEP_FLOOR,
	  "evshm default", "evshm-default" },
	{ X_EVSHM, BX_EVSHM, WAIT_RTT_SPIN, IN_MAIN, SPIN_FLOOR,
	  "evshm spin", "evshm-spin" },
	{ X_EVSHM, BX_EVSHM, WAIT_NEVER, IN_EACH, SLEEP_FLOOR,
	  "evshm blocking", "evshm-blocking" },
	{ 0, BX_SLOT, WAIT_NA, IN_MAIN, SPIN_FLOOR,
	  "floor: slot ring", "floor-slot-ring" },
	{ 0, BX_FRAMED, WAIT_NA, IN_MAIN, SPIN_FLOOR,
	  "floor: framed ring", "floor-framed-ring" },
	{ 0, BX_LINE, WAIT_NA, IN_MAIN, NO_FLOOR,
	  "floor: cache line", "floor-cache-line" },
	{ 0, BX_EVENTFD, WAIT_NA, IN_EACH, NO_FLOOR,
	  "floor: eventfd", "floor-eventfd" },
};

/*
 * Waiting idle: round trips with a pause before every message, in the
 * default, blocking and spinning modes, compared with the eventfd floor
 * (a blocking read) of the same placement.
 */
static const struct scenario idle_table[] = {
	{ X_EVSHM, BX_EVSHM, WAIT_DEFAULT, IN_EACH, SLEEP_FLOOR,
	  "evshm default", "evshm-default" },
	{ X_EVSHM, BX_EVSHM, WAIT_RTT_SPIN, IN_MAIN, SLEEP_FLOOR,
	  "evshm spin", "evshm-spin" },
	{ X_EVSHM, BX_EVSHM, WAIT_NEVER, IN_MAIN, SLEEP_FLOOR,
	  "evshm blocking", "evshm-blocking" },
	{ 0, BX_EVENTFD, WAIT_NA, IN_EACH, NO_FLOOR,
	  "floor: eventfd", "floor-eventfd" },
};

/* Streaming, in the main placement, at every size. */
static const struct scenario stream_table[] = {
	{ X_STREAM, BX_STREAM, WAIT_NA, IN_MAIN, NO_FLOOR,
	  "unix stream", "unix-stream" },
	{ X_SEQPACKET, BX_SEQPACKET, WAIT_NA, IN_MAIN, NO_FLOOR,
	  "unix seqpacket", "unix-seqpacket" },
	{ X_PIPE, BX_PIPE, WAIT_NA, IN_MAIN, NO_FLOOR, "pipe", "pipe" },
	{ X_EVSHM, BX_EVSHM, WAIT_STREAM, IN_MAIN, NO_FLOOR,
	  "evshm copy", "evshm-copy" },
	{ X_EVSHM, BX_EVSHM_ZC, WAIT_STREAM, IN_MAIN, NO_FLOOR,
	  "evshm zero-copy", "evshm-zero-copy" },
	{ X_EVSHM, BX_EVSHM_BATCH, WAIT_STREAM, IN_MAIN, NO_FLOOR,
	  "evshm zc batch", "evshm-zero-copy-batch" },
	{ 0, BX_SLOT, WAIT_NA, IN_MAIN, NO_FLOOR,
	  "floor: slot ring", "floor-slot-ring" },
	{ 0, BX_FRAMED, WAIT_NA, IN_MAIN, NO_FLOOR,
	  "floor: framed ring", "floor-framed-ring" },
};

/*
 * Fan-out, at every fan-out size and subscriber count, in the main
 * placement: the publisher on CPU A, every subscriber on CPU B.  Ratios to
 * the N stream sockets and to ZeroMQ with the same number of subscribers.
 */
static const struct scenario fanout_table[] = {
	{ X_STREAM, BX_FAN_STREAM, WAIT_NA, IN_MAIN, NO_FLOOR,
	  "unix stream xN", "unix-stream-sockets" },
	{ X_EVSHM, BX_TOPIC, WAIT_STREAM, IN_MAIN, NO_FLOOR,
	  "evshm topic copy", "evshm-topic-copy" },
	{ X_EVSHM, BX_TOPIC_ZC, WAIT_STREAM, IN_MAIN, NO_FLOOR,
	  "evshm topic zc", "evshm-topic-zero-copy" },
	{ X_EVSHM, BX_TOPIC_BATCH, WAIT_STREAM, IN_MAIN, NO_FLOOR,
	  "evshm topic batch", "evshm-topic-zero-copy-batch" },
	{ X_ZMQ, BX_ZMQ, WAIT_NA, IN_MAIN, NO_FLOOR,
	  "zeromq pub/sub", "zeromq-pub-sub" },
};

static const struct {
	enum bench_local what;
	const char *label, *id;
} local_table[] = {
	{ BL_MEMCPY, "floor: memcpy", "floor-memcpy" },
	{ BL_GENERATE, "floor: generate", "floor-generate" },
	{ BL_VERIFY, "floor: verify", "floor-verify" },
};

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

uint64_t bench_stream_warmup(uint32_t size)
{
	uint64_t n = (16u << 20) / size;
	return n < 8 ? 8 : n > 20000 ? 20000 : n;
}

uint32_t bench_stream_ring(const struct bench_opts *o)
{
	return o->ring ? (uint32_t)o->ring : STREAM_RING;
}

uint64_t bench_fanout_warmup(uint32_t size)
{
	uint64_t n = (4u << 20) / size;
	return n < 8 ? 8 : n > 2000 ? 2000 : n;
}

unsigned bench_plan_peers(const struct bench_plan *p)
{
	unsigned n = 1;

	for (unsigned i = 0; i < p->n; i++)
		if (p->rows[i].subs > n)
			n = p->rows[i].subs;
	return n;
}

static int64_t spin_for(const struct bench_opts *o, enum wait w)
{
	switch (w) {
	case WAIT_DEFAULT:
		return 0;
	case WAIT_NEVER:
		return EVSHM_SPIN_NEVER;
	case WAIT_RTT_SPIN:
		return o->rtt_spin_ns;
	case WAIT_STREAM:
		return o->spin_ns;
	case WAIT_NA:
		break;
	}
	return 0;
}

/* The placement the socket rows, the spinning rows and streaming run in:
 * apart when there are CPUs to pin to. */
static enum placement main_placement(const struct bench_opts *o)
{
	return o->cpu_a >= 0 ? PL_APART : PL_UNPINNED;
}

static bool wanted(const struct bench_opts *o, const struct scenario *sc)
{
	if (sc->x == BX_ZMQ && !bench_zmq_built)
		return false;
	return sc->xport_bit ? (o->xports & sc->xport_bit) != 0
			     : (o->tests & T_FLOOR) != 0;
}

static struct bench_row *add(struct bench_plan *p, enum bench_test t,
			     unsigned section, uint32_t size,
			     const char *label, const char *id)
{
	struct bench_row *r = &p->rows[p->n++];

	*r = (struct bench_row){ .test = t, .section = section, .size = size,
				 .label = label, .id = id,
				 .floor = { BX_COUNT, BX_COUNT } };
	for (unsigned i = 0; i < REF_COUNT; i++)
		r->ref[i] = -1;
	return r;
}

static void add_scenario(struct bench_plan *p, const struct bench_opts *o,
			 enum bench_test t, unsigned section, uint32_t size,
			 enum placement w, const struct scenario *sc)
{
	struct bench_row *r = add(p, t, section, size, sc->label, sc->id);

	r->xport = sc->x;
	r->where = w;
	r->spin_ns = spin_for(o, sc->wait);
	r->ring = t >= BT_STREAM ? bench_stream_ring(o) : EVSHM_RING_DEFAULT;
	r->floor[0] = sc->floor[0];
	r->floor[1] = sc->floor[1];
}

/* The row of transport @x with @subs subscribers (0: not a fan-out) in
 * rows [first, end), or -1. */
static int find(const struct bench_plan *p, unsigned first, unsigned end,
		enum bench_xport x, unsigned subs)
{
	for (unsigned j = first; j < end; j++)
		if (!p->rows[j].local && p->rows[j].xport == x &&
		    p->rows[j].subs == subs)
			return (int)j;
	return -1;
}

/* The row of the one-process floor @f in rows [first, end), or -1. */
static int find_local(const struct bench_plan *p, unsigned first,
		      unsigned end, enum bench_local f)
{
	for (unsigned j = first; j < end; j++)
		if (p->rows[j].local && p->rows[j].lfloor == f)
			return (int)j;
	return -1;
}

/* Point the rows [first, p->n) of one section at the rows there that
 * their ratios are taken against. */
static void link_refs(struct bench_plan *p, unsigned first)
{
	for (unsigned i = first; i < p->n; i++) {
		struct bench_row *r = &p->rows[i];
		if (r->local)
			continue; /* the floors of one process stand alone */
		if (r->test == BT_FANOUT) {
			r->ref[REF_STREAM] = find(p, first, p->n, BX_FAN_STREAM,
						  r->subs);
			r->ref[REF_ZMQ] = find(p, first, p->n, BX_ZMQ, r->subs);
			continue;
		}
		r->ref[REF_STREAM] = find(p, first, p->n, BX_STREAM, 0);
		for (unsigned k = 0; k < 2 && r->ref[REF_FLOOR] < 0; k++)
			r->ref[REF_FLOOR] = find(p, first, p->n, r->floor[k], 0);
		if (r->test != BT_STREAM)
			continue;
		if (r->xport != BX_SLOT)
			r->ref[REF_SLOT] = find(p, first, p->n, BX_SLOT, 0);
		if (r->xport != BX_SLOT && r->xport != BX_FRAMED)
			r->ref[REF_FRAMED] = find(p, first, p->n, BX_FRAMED, 0);
		r->ref[REF_MEMCPY] = find_local(p, first, p->n, BL_MEMCPY);
	}
}

/* Add the rows of @table that run in placement @w; returns how many. */
static unsigned add_table(struct bench_plan *p, const struct bench_opts *o,
			  enum bench_test t, unsigned section, uint32_t size,
			  enum placement w, const struct scenario *table,
			  size_t n)
{
	unsigned before = p->n;

	for (size_t i = 0; i < n; i++) {
		const struct scenario *sc = &table[i];
		if (wanted(o, sc) &&
		    (sc->where == IN_EACH || w == main_placement(o)))
			add_scenario(p, o, t, section, size, w, sc);
	}
	return p->n - before;
}

/* One section per placement of --placements for the rows of @table;
 * *section counts on. */
static void add_placed(struct bench_plan *p, const struct bench_opts *o,
		       enum bench_test t, const struct scenario *table,
		       size_t n, unsigned *section)
{
	for (unsigned w = 0; w < PL_COUNT; w++) {
		unsigned first = p->n;
		if (!(o->placements & (1u << w)))
			continue;
		if (add_table(p, o, t, *section, (uint32_t)o->rtt_size, w,
			      table, n))
			(*section)++;
		link_refs(p, first);
	}
}

/* One section per fan-out size: for each subscriber count, every
 * transport of the fan-out table. */
static void add_fanout(struct bench_plan *p, const struct bench_opts *o,
		       unsigned *section)
{
	for (unsigned s = 0; s < o->nfan_sizes; s++) {
		unsigned first = p->n;
		for (unsigned k = 0; k < o->nfan_subs; k++) {
			unsigned before = p->n;
			add_table(p, o, BT_FANOUT, *section, o->fan_sizes[s],
				  main_placement(o), fanout_table,
				  LEN(fanout_table));
			for (unsigned i = before; i < p->n; i++)
				p->rows[i].subs = o->fan_subs[k];
		}
		if (p->n > first)
			(*section)++;
		link_refs(p, first);
	}
}

void bench_plan_make(struct bench_plan *p, const struct bench_opts *o)
{
	unsigned section = 0, first;

	memset(p, 0, sizeof(*p));
	if (o->tests & T_RTT)
		add_placed(p, o, BT_RTT, rtt_table, LEN(rtt_table), &section);
	if (o->tests & T_IDLE)
		add_placed(p, o, BT_IDLE, idle_table, LEN(idle_table),
			   &section);
	for (unsigned s = 0; s < o->nsizes && (o->tests & (T_STREAM | T_FLOOR));
	     s++, section++) {
		first = p->n;
		if (o->tests & T_STREAM)
			add_table(p, o, BT_STREAM, section, o->sizes[s],
				  main_placement(o), stream_table,
				  LEN(stream_table));
		for (size_t i = 0; i < LEN(local_table) && (o->tests & T_FLOOR);
		     i++) {
			struct bench_row *r = add(p, BT_STREAM, section,
						  o->sizes[s],
						  local_table[i].label,
						  local_table[i].id);
			r->local = true;
			r->lfloor = local_table[i].what;
			r->where = main_placement(o);
		}
		link_refs(p, first);
	}
	if (o->tests & T_FANOUT)
		add_fanout(p, o, &section);
}

/* The figure a row's ratios compare. */
static enum bench_fig compared(const struct bench_row *r)
{
	return r->test == BT_RTT ? FIG_P50 :
	       r->test == BT_IDLE ? FIG_LAT_P50 : FIG_MSGS_S;
}

static const enum bench_fig ref_fig[REF_COUNT] = {
	[REF_STREAM] = FIG_VS_STREAM,
	[REF_FLOOR] = FIG_VS_FLOOR,
	[REF_SLOT] = FIG_VS_SLOT,
	[REF_MEMCPY] = FIG_VS_MEMCPY,
	[REF_FRAMED] = FIG_VS_FRAMED,
	[REF_ZMQ] = FIG_VS_ZMQ,
};

void bench_plan_ratios(const struct bench_plan *p, struct bench_result *res)
{
	for (unsigned i = 0; i < p->n; i++) {
		const struct bench_row *r = &p->rows[i];
		enum bench_fig f = compared(r);
		for (unsigned k = 0; k < REF_COUNT; k++) {
			int j = r->ref[k];
			double base = j >= 0 ? res[j].fig[f] : NAN;
			res[i].fig[ref_fig[k]] = base > 0 ? res[i].fig[f] / base
							  : NAN;
		}
	}
}

const char *bench_placement_name(enum placement w)
{
	static const char *const names[PL_COUNT] = {
		[PL_APART] = "apart", [PL_SAME] = "same",
		[PL_UNPINNED] = "unpinned",
	};
	return w < PL_COUNT ? names[w] : "?";
}

void bench_plan_cpus(const struct bench_opts *o, enum placement w, int *a,
		     int *b)
{
	*a = *b = -1;
	if (w == PL_APART) {
		*a = o->cpu_a;
		*b = o->cpu_b;
	} else if (w == PL_SAME) {
		*a = *b = o->cpu_a;
	}
}

struct bench_spec bench_plan_spec(const struct bench_opts *o,
				  const struct bench_row *rw, const char *name)
{
	struct bench_spec s = {
		.test = rw->test, .xport = rw->xport, .size = rw->size,
		.ring = rw->ring, .spin_ns = rw->spin_ns, .subs = rw->subs,
	};
	int a;

	bench_plan_cpus(o, rw->where, &a, &s.cpu_b);
	if (rw->test == BT_STREAM) {
		s.count = o->count;
		s.seconds = o->seconds;
		s.warmup = bench_stream_warmup(rw->size);
		s.fault = o->fault;
	} else if (rw->test == BT_FANOUT) {
		s.count = o->count;
		s.seconds = o->fan_seconds;
		s.warmup = bench_fanout_warmup(rw->size);
		s.fault = o->fault;
	} else if (rw->test == BT_IDLE) {
		s.count = o->idle;
		s.warmup = BENCH_IDLE_WARMUP;
		s.gap_ns = (uint64_t)(o->idle_gap * 1e9);
	} else {
		s.count = o->rtts;
		s.warmup = o->rtt_warmup;
	}
	snprintf(s.name, sizeof(s.name), "%s", name);
	return s;
}

/* SPDX-License-Identifier: MIT */
/*
 * bench_plan.c: the scenarios of `evshm bench`, as tables, and the plan
 * the options make of them (see bench_plan.h).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench_plan.h"

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
	WAIT_NEVER,     /* EVSHM_SPIN_NEVER: sleep at once */
	WAIT_RTT_SPIN,  /* --rtt-spin */
	WAIT_STREAM,    /* --spin */
};

/* One line of a scenario table. */
struct scenario {
	unsigned xport_bit;     /* X_* of --transports; 0: a floor */
	enum bench_xport x;
	enum wait wait;
	const char *label, *id;
};

static const struct scenario rtt_table[] = {
	{ X_STREAM, BX_STREAM, WAIT_NA, "unix stream", "unix-stream" },
	{ X_SEQPACKET, BX_SEQPACKET, WAIT_NA, "unix seqpacket",
	  "unix-seqpacket" },
	{ X_PIPE, BX_PIPE, WAIT_NA, "pipe", "pipe" },
	{ X_EVSHM, BX_EVSHM, WAIT_NEVER, "evshm blocking", "evshm-blocking" },
	{ X_EVSHM, BX_EVSHM, WAIT_RTT_SPIN, "evshm spin", "evshm-spin" },
	{ 0, BX_SLOT, WAIT_NA, "floor: slot ring", "floor-slot-ring" },
	{ 0, BX_LINE, WAIT_NA, "floor: cache line", "floor-cache-line" },
	{ 0, BX_EVENTFD, WAIT_NA, "floor: eventfd", "floor-eventfd" },
};

static const struct scenario stream_table[] = {
	{ X_STREAM, BX_STREAM, WAIT_NA, "unix stream", "unix-stream" },
	{ X_SEQPACKET, BX_SEQPACKET, WAIT_NA, "unix seqpacket",
	  "unix-seqpacket" },
	{ X_PIPE, BX_PIPE, WAIT_NA, "pipe", "pipe" },
	{ X_EVSHM, BX_EVSHM, WAIT_STREAM, "evshm copy", "evshm-copy" },
	{ X_EVSHM, BX_EVSHM_ZC, WAIT_STREAM, "evshm zero-copy",
	  "evshm-zero-copy" },
	{ 0, BX_SLOT, WAIT_NA, "floor: slot ring", "floor-slot-ring" },
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

static int64_t spin_for(const struct bench_opts *o, enum wait w)
{
	switch (w) {
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
	return sc->xport_bit ? (o->xports & sc->xport_bit) != 0
			     : (o->tests & T_FLOOR) != 0;
}

static struct bench_row *add(struct bench_plan *p, enum bench_test t,
			     unsigned section, uint32_t size,
			     const char *label, const char *id)
{
	struct bench_row *r = &p->rows[p->n++];

	*r = (struct bench_row){ .test = t, .section = section, .size = size,
				 .label = label, .id = id };
	for (unsigned i = 0; i < REF_COUNT; i++)
		r->ref[i] = -1;
	return r;
}

static void add_scenario(struct bench_plan *p, const struct bench_opts *o,
			 enum bench_test t, unsigned section, uint32_t size,
			 const struct scenario *sc)
{
	struct bench_row *r = add(p, t, section, size, sc->label, sc->id);

	r->xport = sc->x;
	r->where = main_placement(o);
	r->spin_ns = spin_for(o, sc->wait);
	r->ring = t == BT_STREAM ? bench_stream_ring(o) : EVSHM_RING_DEFAULT;
}

/* Point the rows [first, p->n) of one section at the rows there that
 * their ratios are taken against. */
static void link_refs(struct bench_plan *p, unsigned first)
{
	for (unsigned i = first; i < p->n; i++) {
		struct bench_row *r = &p->rows[i];
		if (r->local)
			continue; /* the floors of one process stand alone */
		for (unsigned j = first; j < p->n; j++)
			if (!p->rows[j].local && p->rows[j].xport == BX_STREAM)
				r->ref[REF_STREAM] = (int)j;
	}
}

void bench_plan_make(struct bench_plan *p, const struct bench_opts *o)
{
	unsigned section = 0, first;

	memset(p, 0, sizeof(*p));
	if (o->tests & T_RTT) {
		first = p->n;
		for (size_t i = 0; i < LEN(rtt_table); i++)
			if (wanted(o, &rtt_table[i]))
				add_scenario(p, o, BT_RTT, section,
					     (uint32_t)o->rtt_size,
					     &rtt_table[i]);
		link_refs(p, first);
		section++;
	}
	if (!(o->tests & (T_STREAM | T_FLOOR)))
		return;
	for (unsigned s = 0; s < o->nsizes; s++, section++) {
		first = p->n;
		for (size_t i = 0; i < LEN(stream_table); i++)
			if ((o->tests & T_STREAM) && wanted(o, &stream_table[i]))
				add_scenario(p, o, BT_STREAM, section,
					     o->sizes[s], &stream_table[i]);
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
}

/* The figure a row's ratios compare. */
static enum bench_fig compared(const struct bench_row *r)
{
	return r->test == BT_RTT ? FIG_P50 : FIG_MSGS_S;
}

static const enum bench_fig ref_fig[REF_COUNT] = {
	[REF_STREAM] = FIG_VS_STREAM,
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

void bench_plan_cpus(const struct bench_opts *o, enum placement w, int *a,
		     int *b)
{
	*a = *b = -1;
	if (w == PL_APART) {
		*a = o->cpu_a;
		*b = o->cpu_b;
	}
}

struct bench_spec bench_plan_spec(const struct bench_opts *o,
				  const struct bench_row *rw, const char *name)
{
	struct bench_spec s = {
		.test = rw->test, .xport = rw->xport, .size = rw->size,
		.ring = rw->ring, .spin_ns = rw->spin_ns,
	};
	int a;

	bench_plan_cpus(o, rw->where, &a, &s.cpu_b);
	if (rw->test == BT_STREAM) {
		s.count = o->count;
		s.seconds = o->seconds;
		s.warmup = bench_stream_warmup(rw->size);
		s.fault = o->fault;
	} else {
		s.count = o->rtts;
		s.warmup = o->rtt_warmup;
	}
	snprintf(s.name, sizeof(s.name), "%s", name);
	return s;
}

/* SPDX-License-Identifier: MIT */
/*
 * bench_report.c: the tables and the JSON of `evshm bench` (see
 * bench_report.h).  Which figures each kind of test shows is one table of
 * columns per kind; a figure that does not apply to a row is NAN in the
 * results and "-" in the table, and is left out of the JSON.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <evshm.h>

#include "bench_report.h"
#include "bench_xport.h"

/* --- the machine -------------------------------------------------------- */

static void cpu_model(char *cpu, size_t n)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[256];

	snprintf(cpu, n, "unknown CPU");
	while (f && fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');
		if (!strncmp(line, "model name", 10) && c) {
			c += 2;
			c[strcspn(c, "\n")] = '\0';
			snprintf(cpu, n, "%s", c);
			break;
		}
	}
	if (f)
		fclose(f);
}

void bench_meta_get(struct bench_meta *m)
{
	struct utsname u;
	time_t t = time(NULL);

	strftime(m->date, sizeof(m->date), "%Y-%m-%d %H:%M UTC", gmtime(&t));
	uname(&u);
	snprintf(m->host, sizeof(m->host), "%s", u.nodename);
	snprintf(m->kernel, sizeof(m->kernel), "%s", u.release);
	cpu_model(m->cpu, sizeof(m->cpu));
	m->ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	m->left_out = 0;
}

const char *bench_size_str(char *buf, size_t n, uint32_t size)
{
	if (size >= (1u << 20) && !(size & ((1u << 20) - 1)))
		snprintf(buf, n, "%u MiB", size >> 20);
	else if (size >= 1024 && !(size & 1023))
		snprintf(buf, n, "%u KiB", size >> 10);
	else
		snprintf(buf, n, "%u B", size);
	return buf;
}

/* --- figures over the runs ---------------------------------------------- */

struct agg {
	double med, min, max;   /* NAN if the figure is missing in a run */
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double fig_of(const struct bench_plan *p, const struct bench_result *res,
		     unsigned run, unsigned row, enum bench_fig f)
{
	return res[run * p->n + row].fig[f];
}

static struct agg aggregate(const struct bench_opts *o,
			    const struct bench_plan *p,
			    const struct bench_result *res, unsigned row,
			    enum bench_fig f)
{
	unsigned runs = (unsigned)o->repeat;
	double *v = calloc(runs, sizeof(*v));
	struct agg a = { NAN, NAN, NAN };

	if (!v)
		return a;
	/* Over the runs that have the figure: a row of a third-party peer
	 * that failed in a run has none there (bench.c, peer_row()). */
	unsigned n = 0;
	for (unsigned r = 0; r < runs; r++) {
		double x = fig_of(p, res, r, row, f);
		if (!isnan(x))
			v[n++] = x;
	}
	if (n) {
		qsort(v, n, sizeof(*v), cmp_double);
		a.min = v[0];
		a.max = v[n - 1];
		a.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	}
	free(v);
	return a;
}

/* --- columns ------------------------------------------------------------ */

enum fmt {
	F_NS, F_RATE, F_GBS, F_RATIO, F_KICKS,
	F_CPU,              /* CPU seconds per second, as a percentage */
	F_FLOOR,            /* not a figure: the name of the row's floor */
	F_SUBS,             /* not a figure: the row's subscribers */
};

struct column {
	const char *head;   /* in the table */
	const char *json;   /* the key in JSON; NULL: not a figure */
	enum bench_fig fig;
	enum fmt fmt;
};

static const struct column rtt_cols[] = {
	{ "p50 ns", "p50_ns", FIG_P50, F_NS },
	{ "p99 ns", "p99_ns", FIG_P99, F_NS },
	{ "p99.9 ns", "p999_ns", FIG_P999, F_NS },
	{ "p50/stream", "p50_vs_unix_stream", FIG_VS_STREAM, F_RATIO },
	{ "p50/floor", "p50_vs_floor", FIG_VS_FLOOR, F_RATIO },
	{ "floor", NULL, FIG_COUNT, F_FLOOR },
	{ "kicks/msg ping", "kicks_per_msg_ping", FIG_KICKS_A, F_KICKS },
	{ "kicks/msg echo", "kicks_per_msg_echo", FIG_KICKS_B, F_KICKS },
};

static const struct column idle_cols[] = {
	{ "latency p50 ns", "latency_p50_ns", FIG_LAT_P50, F_NS },
	{ "latency max ns", "latency_max_ns", FIG_LAT_MAX, F_NS },
	{ "p50/floor", "latency_p50_vs_floor", FIG_VS_FLOOR, F_RATIO },
	{ "floor", NULL, FIG_COUNT, F_FLOOR },
	{ "CPU ping", "cpu_ping_s_per_s", FIG_CPU_A, F_CPU },
	{ "CPU echo", "cpu_echo_s_per_s", FIG_CPU_B, F_CPU },
	{ "kicks/msg ping", "kicks_per_msg_ping", FIG_KICKS_A, F_KICKS },
	{ "kicks/msg echo", "kicks_per_msg_echo", FIG_KICKS_B, F_KICKS },
};

static const struct column stream_cols[] = {
	{ "msgs/s", "msgs_per_s", FIG_MSGS_S, F_RATE },
	{ "GB/s", "gb_per_s", FIG_GB_S, F_GBS },
	{ "vs stream", "vs_unix_stream", FIG_VS_STREAM, F_RATIO },
	{ "vs slot ring", "vs_slot_ring", FIG_VS_SLOT, F_RATIO },
	{ "vs framed", "vs_framed_ring", FIG_VS_FRAMED, F_RATIO },
	{ "vs memcpy", "vs_memcpy", FIG_VS_MEMCPY, F_RATIO },
	{ "kicks/msg send", "kicks_per_msg_send", FIG_KICKS_B, F_KICKS },
	{ "kicks/msg recv", "kicks_per_msg_recv", FIG_KICKS_A, F_KICKS },
};

static const struct column fanout_cols[] = {
	{ "subs", NULL, FIG_COUNT, F_SUBS },
	{ "deliveries/s", "deliveries_per_s", FIG_MSGS_S, F_RATE },
	{ "GB/s", "gb_per_s", FIG_GB_S, F_GBS },
	{ "vs sockets", "vs_unix_stream_sockets", FIG_VS_STREAM, F_RATIO },
	{ "vs zeromq", "vs_zeromq", FIG_VS_ZMQ, F_RATIO },
	{ "kicks/msg pub", "kicks_per_msg_pub", FIG_KICKS_A, F_KICKS },
	{ "kicks/msg sub", "kicks_per_msg_sub", FIG_KICKS_B, F_KICKS },
};

#define LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_COLS 8

struct columns {
	const struct column *c;
	unsigned n;
};

static struct columns columns_of(enum bench_test t)
{
	if (t == BT_RTT)
		return (struct columns){ rtt_cols, LEN(rtt_cols) };
	if (t == BT_IDLE)
		return (struct columns){ idle_cols, LEN(idle_cols) };
	if (t == BT_FANOUT)
		return (struct columns){ fanout_cols, LEN(fanout_cols) };
	return (struct columns){ stream_cols, LEN(stream_cols) };
}

static const char *fmt1(char *buf, size_t n, double v, enum fmt f)
{
	switch (f) {
	case F_NS:
		snprintf(buf, n, "%.0f", v);
		break;
	case F_RATE:
		if (v >= 1e6)
			snprintf(buf, n, "%.2fM", v / 1e6);
		else if (v >= 1e3)
			snprintf(buf, n, "%.1fk", v / 1e3);
		else
			snprintf(buf, n, "%.0f", v);
		break;
	case F_GBS:
		snprintf(buf, n, "%.2f", v);
		break;
	case F_RATIO:
		snprintf(buf, n, v >= 10 ? "%.1fx" : "%.2fx", v);
		break;
	case F_KICKS:
		snprintf(buf, n, v == 0 ? "0" : v < 0.001 ? "%.1e" : "%.3f", v);
		break;
	case F_CPU:
		snprintf(buf, n, v < 0.01 ? "%.2f%%" : "%.1f%%", v * 100);
		break;
	case F_FLOOR:
	case F_SUBS:
		break;
	}
	return buf;
}

static const char *fmt_agg(char *buf, size_t n, struct agg a, enum fmt f,
			   unsigned runs)
{
	char m[24], lo[24], hi[24];

	if (isnan(a.med))
		snprintf(buf, n, "-");
	else if (runs == 1)
		snprintf(buf, n, "%s", fmt1(m, sizeof(m), a.med, f));
	else
		snprintf(buf, n, "%s [%s-%s]", fmt1(m, sizeof(m), a.med, f),
			 fmt1(lo, sizeof(lo), a.min, f),
			 fmt1(hi, sizeof(hi), a.max, f));
	return buf;
}

/* The row the ratio FIG_VS_FLOOR of row @i is taken against, or NULL. */
static const struct bench_row *floor_of(const struct bench_plan *p,
					unsigned i)
{
	int j = p->rows[i].ref[REF_FLOOR];
	return j >= 0 ? &p->rows[j] : NULL;
}

/* The table cell of column @c in row @i. */
static void cell(char *buf, size_t n, const struct bench_opts *o,
		 const struct bench_plan *p, const struct bench_result *res,
		 unsigned i, const struct column *c)
{
	const struct bench_row *f;

	if (c->fmt == F_SUBS) {
		snprintf(buf, n, "%u", p->rows[i].subs);
		return;
	}
	if (c->fmt != F_FLOOR) {
		fmt_agg(buf, n, aggregate(o, p, res, i, c->fig), c->fmt,
			(unsigned)o->repeat);
		return;
	}
	f = floor_of(p, i);
	/* "floor: eventfd" -> "eventfd" */
	snprintf(buf, n, "%s", !f ? "-" : strchr(f->label, ' ') ?
		 strchr(f->label, ' ') + 1 : f->label);
}

/* --- tables ------------------------------------------------------------- */

#define CELL_MAX 48
#define LABEL_W 18

/* "pinned apart: ping side on CPU 0, echo side on CPU 1" and the like;
 * the sides are named after their role in test @t. */
static const char *where_str(char *buf, size_t n, const struct bench_opts *o,
			     enum placement w, enum bench_test t)
{
	const char *sa = t == BT_STREAM ? "receiving" : "ping";
	const char *sb = t == BT_STREAM ? "sending" : "echo";
	int a, b;

	bench_plan_cpus(o, w, &a, &b);
	if (t == BT_FANOUT && w == PL_APART)
		snprintf(buf, n, "publisher pinned to CPU %d, every subscriber "
			 "to CPU %d", a, b);
	else if (w == PL_APART)
		snprintf(buf, n, "pinned apart: %s side on CPU %d, %s side on "
			 "CPU %d", sa, a, sb, b);
	else if (w == PL_SAME)
		snprintf(buf, n, "both sides pinned to CPU %d", a);
	else
		snprintf(buf, n, "not pinned");
	return buf;
}

/* evshm_opts.spin_ns in words. */
static const char *spin_str(char *buf, size_t n, int64_t ns)
{
	if (ns == 0)
		snprintf(buf, n, "the library's default");
	else if (ns == EVSHM_SPIN_NEVER)
		snprintf(buf, n, "never");
	else
		snprintf(buf, n, "%.0f us", (double)ns / 1e3);
	return buf;
}

static void section_head(const struct bench_opts *o, const struct bench_row *r)
{
	char sz[32], rs[32], wh[96], sp[32];

	if (r->test == BT_IDLE)
		printf("\nwaiting idle, %s messages, %s;\n%llu round trips "
		       "after %d, each side sleeping %g ms before it sends "
		       "(spin mode: %.0f us):\none-way latency (send to "
		       "receipt), CPU time per wall second of each process\n",
		       bench_size_str(sz, sizeof(sz), r->size),
		       where_str(wh, sizeof(wh), o, r->where, r->test),
		       (unsigned long long)o->idle, BENCH_IDLE_WARMUP,
		       o->idle_gap * 1e3, (double)o->rtt_spin_ns / 1e3);
	else if (r->test == BT_RTT)
		printf("\nround trip, %s messages, %s;\n%llu round trips after "
		       "%llu of warm-up; evshm ring %s, spin mode spins %.0f us\n",
		       bench_size_str(sz, sizeof(sz), r->size),
		       where_str(wh, sizeof(wh), o, r->where, r->test),
		       (unsigned long long)o->rtts,
		       (unsigned long long)o->rtt_warmup,
		       bench_size_str(rs, sizeof(rs), EVSHM_RING_DEFAULT),
		       (double)o->rtt_spin_ns / 1e3);
	else if (r->test == BT_FANOUT)
		printf("\nfan-out, %s messages, 1 publisher to N subscribers "
		       "(separate processes), %s after\n%llu of warm-up; %s;\n"
		       "evshm ring %s (reliable), spin %s; zeromq: %s;\n"
		       "deliveries: messages received, all subscribers\n",
		       bench_size_str(sz, sizeof(sz), r->size),
		       o->count ? "fixed count" : "timed",
		       (unsigned long long)bench_fanout_warmup(r->size),
		       where_str(wh, sizeof(wh), o, r->where, r->test),
		       bench_size_str(rs, sizeof(rs), bench_stream_ring(o)),
		       spin_str(sp, sizeof(sp), o->spin_ns),
		       bench_zmq_built ? "XPUB with ZMQ_XPUB_NODROP, queues of "
					 "half the ring each way"
				       : "not built in (no libzmq)");
	else
		printf("\nstreaming, %s messages, %s after %llu of warm-up;\n"
		       "evshm ring %s, spin %s\n",
		       bench_size_str(sz, sizeof(sz), r->size),
		       o->count ? "fixed count" : "timed",
		       (unsigned long long)bench_stream_warmup(r->size),
		       bench_size_str(rs, sizeof(rs), bench_stream_ring(o)),
		       spin_str(sp, sizeof(sp), o->spin_ns));
}

/* Rows [first, end) make one table; columns as wide as their widest
 * cell. */
static void print_section(const struct bench_opts *o,
			  const struct bench_plan *p,
			  const struct bench_result *res, unsigned first,
			  unsigned end)
{
	struct columns cs = columns_of(p->rows[first].test);
	char (*txt)[MAX_COLS][CELL_MAX] = calloc(end - first, sizeof(*txt));
	int w[MAX_COLS];

	if (!txt)
		return;
	section_head(o, &p->rows[first]);
	for (unsigned c = 0; c < cs.n; c++)
		w[c] = (int)strlen(cs.c[c].head);
	for (unsigned i = first; i < end; i++)
		for (unsigned c = 0; c < cs.n; c++) {
			char *t = txt[i - first][c];
			cell(t, CELL_MAX, o, p, res, i, &cs.c[c]);
			if ((int)strlen(t) > w[c])
				w[c] = (int)strlen(t);
		}
	printf("%-*s", LABEL_W, "");
	for (unsigned c = 0; c < cs.n; c++)
		printf("  %*s", w[c], cs.c[c].head);
	printf("\n");
	for (unsigned i = first; i < end; i++) {
		printf("%-*s", LABEL_W, p->rows[i].label);
		for (unsigned c = 0; c < cs.n; c++)
			printf("  %*s", w[c], txt[i - first][c]);
		printf("\n");
	}
	free(txt);
}

void bench_report_table(const struct bench_opts *o, const struct bench_plan *p,
			const struct bench_result *res,
			const struct bench_meta *m)
{
	char wh[96];

	printf("evshm %s bench, %s, host %s, Linux %s\n%s, %ld CPUs; "
	       "streaming %s\n", evshm_version(), m->date, m->host, m->kernel,
	       m->cpu, m->ncpus,
	       where_str(wh, sizeof(wh), o,
			 o->cpu_a >= 0 ? PL_APART : PL_UNPINNED, BT_STREAM));
	if (o->repeat > 1)
		printf("each figure: median [min-max] of %llu runs\n",
		       (unsigned long long)o->repeat);
	for (unsigned i = 0, end; i < p->n; i = end) {
		for (end = i + 1;
		     end < p->n && p->rows[end].section == p->rows[i].section;
		     end++)
			;
		print_section(o, p, res, i, end);
	}
	if (o->tests & T_FANOUT)
		printf("\nfan-out: deliveries/s counts every message every "
		       "subscriber got, over the time from the first\n"
		       "subscriber's clock start to the last one's end; vs "
		       "sockets and vs zeromq: ratios to those rows\nwith "
		       "as many subscribers.  unix stream xN: the publisher "
		       "writes each message to each\nsubscriber's socket in "
		       "turn.  Nothing was dropped: every subscriber checked "
		       "every message.\n");
	if (m->left_out)
		printf("\nZeroMQ failed in %u run%s of its rows (the reasons "
		       "are on stderr): those rows give\nthe median and spread "
		       "of the runs it completed.\n", m->left_out,
		       m->left_out > 1 ? "s" : "");
	if (!(o->tests & ~T_FANOUT))
		return;
	printf("\nevshm default: the library's default options (spin_ns 0).  "
	       "Ratios, each within one run\nand one table: /stream to the "
	       "Unix stream socket, /floor to the floor named beside it,\n"
	       "vs slot ring, vs framed and vs memcpy to those floors at "
	       "the same size (messages/s, or GB/s:\nthe same).  The framed "
	       "ring is the slot ring with evshm's framing: a 16-byte\n"
	       "header before each message, records packed 16-byte "
	       "aligned (a 64 B message takes 80).\n"
	       "The cache-line and eventfd floors move a bare 64-bit value; "
	       "every other message was\nverified (sequence number and "
	       "checksum over the payload).  GB/s: 10^9 payload bytes/s.\n");
}

/* --- JSON --------------------------------------------------------------- */

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void json_row(const struct bench_opts *o, const struct bench_plan *p,
		     const struct bench_result *res, unsigned i)
{
	const struct bench_row *r = &p->rows[i];
	struct columns cs = columns_of(r->test);
	unsigned runs = (unsigned)o->repeat;

	const struct bench_row *f = floor_of(p, i);
	int a, b;

	static const char *const tests[] = {
		[BT_RTT] = "round-trip", [BT_IDLE] = "idle",
		[BT_STREAM] = "streaming", [BT_FANOUT] = "fan-out",
	};

	printf("\n    {\"test\": \"%s\", \"transport\": \"%s\", \"size\": %u, "
	       "\"placement\": \"%s\", \"cpus\": ", tests[r->test], r->id,
	       r->size, bench_placement_name(r->where));
	bench_plan_cpus(o, r->where, &a, &b);
	if (a >= 0)
		printf("[%d, %d]", a, b);
	else
		printf("null");
	if (f)
		printf(", \"floor\": \"%s\"", f->id);
	if (!r->local &&
	    (r->xport == BX_EVSHM || r->xport == BX_EVSHM_ZC ||
	     r->xport == BX_EVSHM_BATCH || r->xport == BX_TOPIC ||
	     r->xport == BX_TOPIC_ZC || r->xport == BX_TOPIC_BATCH))
		printf(", \"ring\": %u, \"spin_ns\": %lld", r->ring,
		       (long long)r->spin_ns);
	if (r->test == BT_FANOUT)
		printf(", \"subscribers\": %u, \"publisher_cpu\": %d, "
		       "\"subscriber_cpu\": %d", r->subs, a, b);
	if (r->test == BT_RTT)
		printf(", \"round_trips\": %llu", (unsigned long long)o->rtts);
	if (r->test == BT_IDLE)
		printf(", \"round_trips\": %llu, \"gap_ms\": %g",
		       (unsigned long long)o->idle, o->idle_gap * 1e3);
	for (unsigned c = 0; c < cs.n; c++) {
		if (!cs.c[c].json)
			continue;
		struct agg ag = aggregate(o, p, res, i, cs.c[c].fig);
		if (isnan(ag.med))
			continue;
		printf(",\n     \"%s\": {\"median\": %.6g, \"min\": %.6g, "
		       "\"max\": %.6g, \"runs\": [", cs.c[c].json, ag.med,
		       ag.min, ag.max);
		for (unsigned run = 0; run < runs; run++) {
			double v = fig_of(p, res, run, i, cs.c[c].fig);

			/* A run a third-party row failed in has none. */
			if (isnan(v))
				printf("%snull", run ? ", " : "");
			else
				printf("%s%.6g", run ? ", " : "", v);
		}
		printf("]}");
	}
	printf("}");
}

void bench_report_json(const struct bench_opts *o, const struct bench_plan *p,
		       const struct bench_result *res,
		       const struct bench_meta *m)
{
	printf("{\n  \"evshm_version\": ");
	json_str(evshm_version());
	printf(",\n  \"date\": ");
	json_str(m->date);
	printf(",\n  \"host\": ");
	json_str(m->host);
	printf(",\n  \"kernel\": ");
	json_str(m->kernel);
	printf(",\n  \"cpu\": ");
	json_str(m->cpu);
	printf(",\n  \"cpus\": %ld,\n  \"pinned\": ", m->ncpus);
	if (o->cpu_a >= 0)
		printf("[%d, %d]", o->cpu_a, o->cpu_b);
	else
		printf("null");
	printf(",\n  \"placements\": [");
	for (unsigned w = 0, k = 0; w < PL_COUNT; w++)
		if (o->placements & (1u << w))
			printf("%s\"%s\"", k++ ? ", " : "",
			       bench_placement_name(w));
	printf("]");
	printf(",\n  \"repeat\": %llu,\n  \"peer_runs_left_out\": %u,"
	       "\n  \"results\": [", (unsigned long long)o->repeat, m->left_out);
	for (unsigned i = 0; i < p->n; i++) {
		if (i)
			putchar(',');
		json_row(o, p, res, i);
	}
	printf("\n  ]\n}\n");
}

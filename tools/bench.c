/* SPDX-License-Identifier: MIT */
/*
 * bench.c: `evshm bench`, the driver.  It spawns the peer (this program
 * again, `evshm bench-peer`), runs every test of the plan --repeat times
 * with both processes side by side, and reports each figure as the median
 * over the runs with its min-max spread, and as a ratio to the Unix stream
 * socket measured in the same run.  bench_run.c runs the tests themselves.
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <evshm.h>

#include "bench.h"
#include "endpoint.h"
#include "fdpass.h"
#include "os.h"
#include "tool.h"

#define CTL_TIMEOUT_MS 60000
#define WATCHDOG_S 180
#define MAX_SIZES 16

/* --- options ------------------------------------------------------------ */

enum { T_RTT = 1, T_STREAM = 2, T_FLOOR = 4 };
enum { X_STREAM = 1, X_SEQPACKET = 2, X_PIPE = 4, X_EVSHM = 8 };

struct bench_opts {
	unsigned tests, xports;
	uint32_t sizes[MAX_SIZES];
	unsigned nsizes;
	uint32_t rtt_size;
	uint64_t rtts, rtt_warmup;
	double seconds;
	uint64_t count;
	uint32_t ring;          /* 0: per size */
	int64_t spin_ns, rtt_spin_ns;
	int cpu_a, cpu_b;       /* -1: not pinned */
	unsigned repeat;
	bool json;
	enum bench_fault fault;
};

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

static uint32_t ring_for(const struct bench_opts *o, uint32_t size)
{
	(void)size;
	return o->ring ? o->ring : STREAM_RING;
}

/* Warm-up messages before the clock starts: 16 MiB, 8 to 20000 of them. */
static uint64_t stream_warmup(uint32_t size)
{
	uint64_t n = (16u << 20) / size;
	return n < 8 ? 8 : n > 20000 ? 20000 : n;
}

/* --- the plan: one row per (section, transport) ------------------------------ */

enum row_kind {
	R_RTT,      /* two processes, round trips */
	R_LINE,     /* two processes, the cache line */
	R_STREAM,   /* two processes, streaming */
	R_FLOOR,    /* one process: memcpy / generate / verify */
};

struct row {
	enum row_kind kind;
	enum bench_xport xport;
	enum bench_floor floor;
	uint32_t size, ring;
	int64_t spin_ns;
	const char *label;      /* in the table */
	const char *id;         /* in JSON */
	int base;               /* index of the stream-socket row it is
				   compared with, -1 if none */
};

struct cell {           /* one row, one run */
	struct bench_result r;
	double ratio;       /* p50 / stream's p50, or msgs_s / stream's */
};

struct plan {
	struct row rows[256];
	unsigned n;
};

static struct row *plan_add(struct plan *p, enum row_kind k,
			    enum bench_xport x, uint32_t size,
			    const char *label, const char *id)
{
	struct row *r = &p->rows[p->n++];
	*r = (struct row){ .kind = k, .xport = x, .size = size, .label = label,
			   .id = id, .base = -1 };
	return r;
}

static void plan_make(struct plan *p, const struct bench_opts *o)
{
	memset(p, 0, sizeof(*p));
	if (o->tests & T_RTT) {
		int base = -1;
		if (o->xports & X_STREAM) {
			base = (int)p->n;
			plan_add(p, R_RTT, BX_STREAM, o->rtt_size,
				 "unix stream", "unix-stream");
		}
		if (o->xports & X_SEQPACKET)
			plan_add(p, R_RTT, BX_SEQPACKET, o->rtt_size,
				 "unix seqpacket", "unix-seqpacket");
		if (o->xports & X_PIPE)
			plan_add(p, R_RTT, BX_PIPE, o->rtt_size, "pipe", "pipe");
		if (o->xports & X_EVSHM) {
			struct row *r = plan_add(p, R_RTT, BX_EVSHM, o->rtt_size,
						 "evshm blocking",
						 "evshm-blocking");
			r->spin_ns = EVSHM_SPIN_NEVER;
			r->ring = EVSHM_RING_DEFAULT;
			r = plan_add(p, R_RTT, BX_EVSHM, o->rtt_size,
				     "evshm spin", "evshm-spin");
			r->spin_ns = o->rtt_spin_ns;
			r->ring = EVSHM_RING_DEFAULT;
		}
		if (o->tests & T_FLOOR)
			plan_add(p, R_LINE, BX_NONE, 8, "floor: cache line",
				 "floor-cache-line");
		for (unsigned i = 0; i < p->n; i++)
			p->rows[i].base = base;
	}
	if (!(o->tests & (T_STREAM | T_FLOOR)))
		return;
	for (unsigned s = 0; s < o->nsizes; s++) {
		uint32_t size = o->sizes[s];
		unsigned first = p->n;
		int base = -1;
		if (o->tests & T_STREAM) {
			if (o->xports & X_STREAM) {
				base = (int)p->n;
				plan_add(p, R_STREAM, BX_STREAM, size,
					 "unix stream", "unix-stream");
			}
			if (o->xports & X_SEQPACKET)
				plan_add(p, R_STREAM, BX_SEQPACKET, size,
					 "unix seqpacket", "unix-seqpacket");
			if (o->xports & X_PIPE)
				plan_add(p, R_STREAM, BX_PIPE, size, "pipe",
					 "pipe");
			if (o->xports & X_EVSHM) {
				plan_add(p, R_STREAM, BX_EVSHM, size,
					 "evshm copy", "evshm-copy");
				plan_add(p, R_STREAM, BX_EVSHM_ZC, size,
					 "evshm zero-copy", "evshm-zero-copy");
			}
		}
		if (o->tests & T_FLOOR) {
			plan_add(p, R_FLOOR, BX_NONE, size, "floor: memcpy",
				 "floor-memcpy")->floor = BFL_MEMCPY;
			plan_add(p, R_FLOOR, BX_NONE, size, "floor: generate",
				 "floor-generate")->floor = BFL_GENERATE;
			plan_add(p, R_FLOOR, BX_NONE, size, "floor: verify",
				 "floor-verify")->floor = BFL_VERIFY;
		}
		for (unsigned i = first; i < p->n; i++) {
			p->rows[i].base = base;
			p->rows[i].ring = ring_for(o, size);
			p->rows[i].spin_ns = o->spin_ns;
		}
	}
}

/* --- the peer ---------------------------------------------------------------- */

static void watchdog(int sig)
{
	(void)sig;
	static const char m[] = "evshm bench: a test hung; giving up\n";
	if (write(STDERR_FILENO, m, sizeof(m) - 1) < 0) {
		/* nothing more to do */
	}
	_exit(TOOL_EXIT_FAIL);
}

int tool_bench_peer(int argc, char **argv)
{
	struct bench_spec s;
	struct bench_report rep;
	int sock, res;

	if (argc != 3)
		return TOOL_EXIT_USAGE;
	signal(SIGALRM, watchdog);
	int cpu = atoi(argv[2]);
	if (cpu >= 0 && tool_pin_cpu(cpu) < 0)
		return TOOL_EXIT_FAIL;
	if (ep_connect(argv[1], 0, &sock) < 0)
		return TOOL_EXIT_FAIL;
	for (;;) {
		int fds[2] = { -1, -1 };
		unsigned nfds = 0;
		res = fdp_recv(sock, &s, sizeof(s), fds, 2, &nfds, -1);
		if (res != (int)sizeof(s) || s.quit)
			break;
		s.name[BENCH_NAME_MAX - 1] = '\0';
		alarm(WATCHDOG_S);
		bench_run_b(&s, fds, &rep);
		alarm(0);
		for (unsigned i = 0; i < nfds; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		if (fdp_send(sock, &rep, sizeof(rep), NULL, 0, CTL_TIMEOUT_MS) < 0)
			break;
	}
	close(sock);
	return res == (int)sizeof(s) ? 0 : TOOL_EXIT_FAIL;
}

struct peer {
	pid_t pid;
	int sock;
	char ctl[64];
	unsigned seq;
};

static int peer_start(struct peer *pr, int cpu)
{
	struct ep_listener l;
	char cpus[16];
	pid_t cpid;
	int res;

	snprintf(pr->ctl, sizeof(pr->ctl), "@evshm-bench-%d-%lx", (int)getpid(),
		 (unsigned long)os_now_ns());
	snprintf(cpus, sizeof(cpus), "%d", cpu);
	if ((res = ep_listen(&l, pr->ctl, 0, 1)) < 0)
		return res;
	char *argv[] = { "evshm", "bench-peer", pr->ctl, cpus, NULL };
	res = tool_spawn_self(&pr->pid, argv);
	if (res == 0)
		res = ep_accept(&l, CTL_TIMEOUT_MS, &pr->sock);
	/* Only the process we spawned may drive the other side. */
	if (res == 0 && (res = ep_peercred(pr->sock, &cpid, NULL, NULL)) == 0 &&
	    cpid != pr->pid)
		res = -EACCES;
	ep_listener_close(&l);
	return res;
}

static void peer_stop(struct peer *pr)
{
	struct bench_spec s = { .quit = 1 };

	if (pr->sock >= 0) {
		fdp_send(pr->sock, &s, sizeof(s), NULL, 0, 1000);
		close(pr->sock);
		pr->sock = -1;
	}
	if (pr->pid > 0) {
		tool_wait(pr->pid);
		pr->pid = -1;
	}
}

/* --- running the plan ---------------------------------------------------------- */

static const char *size_str(char *buf, size_t n, uint32_t size)
{
	if (size >= (1u << 20) && !(size & ((1u << 20) - 1)))
		snprintf(buf, n, "%u MiB", size >> 20);
	else if (size >= 1024 && !(size & 1023))
		snprintf(buf, n, "%u KiB", size >> 10);
	else
		snprintf(buf, n, "%u B", size);
	return buf;
}

static int run_row(const struct bench_opts *o, const struct row *rw,
		   struct peer *pr, uint64_t *samples, struct cell *out)
{
	struct bench_spec s = { .size = rw->size, .ring = rw->ring,
				.spin_ns = rw->spin_ns, .xport = rw->xport };
	struct bench_report rep;
	struct bench_prep p;
	char err[BENCH_ERR_MAX] = "", sz[32];
	unsigned nfds;
	int res;

	memset(out, 0, sizeof(*out));
	if (rw->kind == R_FLOOR) {
		out->r.gb_s = bench_floor(rw->floor, rw->size,
					  o->seconds / 4);
		out->r.msgs_s = out->r.gb_s * 1e9 / rw->size;
		return 0;
	}
	if (rw->kind == R_STREAM) {
		s.kind = BK_STREAM;
		s.count = o->count;
		s.seconds = o->seconds;
		s.warmup = stream_warmup(rw->size);
		s.fault = o->fault;
	} else {
		s.kind = rw->kind == R_LINE ? BK_LINE : BK_RTT;
		s.count = o->rtts;
		s.warmup = o->rtt_warmup;
	}
	snprintf(s.name, sizeof(s.name), "@evshm-bench-%d-%u", (int)getpid(),
		 pr->seq++);

	alarm(WATCHDOG_S);
	if (bench_prep(&s, &p, err) < 0)
		goto out_fail;
	res = fdp_send(pr->sock, &s, sizeof(s), p.theirs, p.ntheirs,
		       CTL_TIMEOUT_MS);
	if (res < 0) {
		bench_prep_drop(&p);
		snprintf(err, sizeof(err), "the peer process: %s",
			 evshm_strerror(res));
		goto out_fail;
	}
	int a = bench_run_a(&s, &p, samples, &out->r, err);
	res = fdp_recv(pr->sock, &rep, sizeof(rep), NULL, 0, &nfds,
		       CTL_TIMEOUT_MS);
	alarm(0);
	if (res != (int)sizeof(rep)) {
		if (a == 0)
			snprintf(err, sizeof(err), "the peer process died (%s)",
				 evshm_strerror(res < 0 ? res : -EPROTO));
		goto out_fail;
	}
	rep.err[BENCH_ERR_MAX - 1] = '\0';
	if (a < 0 || rep.status < 0) {
		if (a < 0 && rep.status < 0)
			snprintf(err + strlen(err), sizeof(err) - strlen(err),
				 " (the sender/echo side: %.100s)", rep.err);
		else if (a == 0)
			snprintf(err, sizeof(err), "%s", rep.err);
		goto out_fail;
	}
	if (rw->kind == R_STREAM && rep.msgs != out->r.msgs) {
		snprintf(err, sizeof(err), "the sender sent %llu messages, the "
			 "receiver got %llu", (unsigned long long)rep.msgs,
			 (unsigned long long)out->r.msgs);
		goto out_fail;
	}
	double m = rep.msgs ? (double)rep.msgs : 1;
	out->r.kicks_b = (double)rep.st.kicks_sent / m;
	out->r.sleeps_b = (double)rep.st.sleeps / m;
	return 0;

out_fail:
	alarm(0);
	if (isatty(STDERR_FILENO))
		fputs("\r\033[K", stderr);
	tool_err("bench", "FAILED: %s, %s, %s: %s",
		 rw->kind == R_RTT || rw->kind == R_LINE ? "round trip" : "streaming",
		 size_str(sz, sizeof(sz), rw->size), rw->label, err);
	return -1;
}

static void progress(const struct bench_opts *o, unsigned run, unsigned i,
		     const struct plan *p)
{
	char sz[32];
	const struct row *rw = &p->rows[i];

	if (!isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\r\033[Kevshm bench: run %u/%u, test %u/%u: %s %s, %s",
		run + 1, o->repeat, i + 1, p->n,
		rw->kind == R_STREAM || rw->kind == R_FLOOR ? "streaming"
							    : "round trip",
		size_str(sz, sizeof(sz), rw->size), rw->label);
	fflush(stderr);
}

/* --- statistics and the report ------------------------------------------------- */

struct agg {
	double med, min, max;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median and spread of one figure (at @off in struct cell) of row @i over
 * @runs runs. */
static struct agg aggregate(const struct cell *cells, unsigned nrows,
			    unsigned runs, unsigned i, size_t off)
{
	double v[64];
	struct agg a;

	for (unsigned r = 0; r < runs; r++)
		memcpy(&v[r], (const char *)&cells[r * nrows + i] + off,
		       sizeof(double));
	qsort(v, runs, sizeof(double), cmp_double);
	a.min = v[0];
	a.max = v[runs - 1];
	a.med = runs % 2 ? v[runs / 2] : (v[runs / 2 - 1] + v[runs / 2]) / 2;
	return a;
}

enum fig_fmt { F_NS, F_RATE, F_GBS, F_RATIO, F_KICKS };

static const char *fmt1(char *buf, size_t n, double v, enum fig_fmt f)
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
	}
	return buf;
}

static const char *fmt_agg(char *buf, size_t n, struct agg a, enum fig_fmt f,
			   unsigned runs)
{
	char m[24], lo[24], hi[24];

	fmt1(m, sizeof(m), a.med, f);
	if (runs == 1) {
		snprintf(buf, n, "%s", m);
	} else {
		fmt1(lo, sizeof(lo), a.min, f);
		fmt1(hi, sizeof(hi), a.max, f);
		snprintf(buf, n, "%s [%s-%s]", m, lo, hi);
	}
	return buf;
}

#define OFF(f) offsetof(struct cell, f)

struct fig {
	const char *head;   /* table column */
	const char *json;   /* JSON key */
	size_t off;
	enum fig_fmt fmt;
};

static const struct fig rtt_figs[] = {
	{ "p50 ns", "p50_ns", OFF(r.p50), F_NS },
	{ "p99 ns", "p99_ns", OFF(r.p99), F_NS },
	{ "p99.9 ns", "p999_ns", OFF(r.p999), F_NS },
	{ "p50/stream", "p50_vs_unix_stream", OFF(ratio), F_RATIO },
	{ "kicks/msg ping", "kicks_per_msg_ping", OFF(r.kicks_a), F_KICKS },
	{ "kicks/msg echo", "kicks_per_msg_echo", OFF(r.kicks_b), F_KICKS },
};

static const struct fig stream_figs[] = {
	{ "msgs/s", "msgs_per_s", OFF(r.msgs_s), F_RATE },
	{ "GB/s", "gb_per_s", OFF(r.gb_s), F_GBS },
	{ "vs stream", "vs_unix_stream", OFF(ratio), F_RATIO },
	{ "kicks/msg send", "kicks_per_msg_send", OFF(r.kicks_b), F_KICKS },
	{ "kicks/msg recv", "kicks_per_msg_recv", OFF(r.kicks_a), F_KICKS },
};

static bool fig_applies(const struct row *rw, const struct fig *f)
{
	if (f->off == OFF(ratio))
		return rw->base >= 0;
	if (f->off == OFF(r.kicks_a) || f->off == OFF(r.kicks_b))
		return rw->xport == BX_EVSHM || rw->xport == BX_EVSHM_ZC;
	return true;
}

static void sysinfo(char *cpu, size_t n)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
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

struct meta {
	char date[64], host[65], kernel[65], cpu[128];
	long ncpus;
};

static void meta_get(struct meta *m)
{
	struct utsname u;
	time_t t = time(NULL);

	strftime(m->date, sizeof(m->date), "%Y-%m-%d %H:%M UTC", gmtime(&t));
	uname(&u);
	snprintf(m->host, sizeof(m->host), "%s", u.nodename);
	snprintf(m->kernel, sizeof(m->kernel), "%s", u.release);
	sysinfo(m->cpu, sizeof(m->cpu));
	m->ncpus = sysconf(_SC_NPROCESSORS_ONLN);
}

/* Does row @i start a new section of the table (a header line)? */
static bool section_starts(const struct plan *p, unsigned i)
{
	const struct row *rw = &p->rows[i], *prev = i ? &p->rows[i - 1] : NULL;
	bool rtt = rw->kind == R_RTT || rw->kind == R_LINE;

	if (!prev)
		return true;
	bool prev_rtt = prev->kind == R_RTT || prev->kind == R_LINE;
	return prev_rtt != rtt || (!rtt && prev->size != rw->size);
}

#define SECTION_MAX 16
#define CELL_MAX 80

/* Rows [first, end) share one header; columns as wide as their widest
 * cell. */
static void print_section(const struct bench_opts *o, const struct plan *p,
			  const struct cell *cells, unsigned first,
			  unsigned end)
{
	static char txt[SECTION_MAX][6][CELL_MAX];
	const struct row *rw = &p->rows[first];
	bool rtt = rw->kind == R_RTT || rw->kind == R_LINE;
	const struct fig *figs = rtt ? rtt_figs : stream_figs;
	unsigned nf = rtt ? 6 : 5, runs = o->repeat;
	int w[6];
	char sz[32], rs[32];

	if (rtt)
		printf("\nround trip, %s messages (the cache line: 8 B), %llu "
		       "round trips after %llu of warm-up;\nevshm ring %s, "
		       "spin mode spins %.0f us\n",
		       size_str(sz, sizeof(sz), o->rtt_size),
		       (unsigned long long)o->rtts,
		       (unsigned long long)o->rtt_warmup,
		       size_str(rs, sizeof(rs), EVSHM_RING_DEFAULT),
		       (double)o->rtt_spin_ns / 1e3);
	else
		printf("\nstreaming, %s messages, %s after %llu of warm-up;\n"
		       "evshm ring %s, spin %.0f us\n",
		       size_str(sz, sizeof(sz), rw->size),
		       o->count ? "fixed count" : "timed",
		       (unsigned long long)stream_warmup(rw->size),
		       size_str(rs, sizeof(rs), rw->ring),
		       (double)o->spin_ns / 1e3);
	for (unsigned f = 0; f < nf; f++)
		w[f] = (int)strlen(figs[f].head);
	for (unsigned i = first; i < end; i++) {
		rw = &p->rows[i];
		for (unsigned f = 0; f < nf; f++) {
			char *t = txt[i - first][f];
			if (!fig_applies(rw, &figs[f]) ||
			    (rw->kind == R_FLOOR && f >= 2))
				snprintf(t, CELL_MAX, "-");
			else
				fmt_agg(t, CELL_MAX, aggregate(cells, p->n, runs,
							       i, figs[f].off),
					figs[f].fmt, runs);
			if ((int)strlen(t) > w[f])
				w[f] = (int)strlen(t);
		}
	}
	printf("%-18s", "");
	for (unsigned f = 0; f < nf; f++)
		printf("  %*s", w[f], figs[f].head);
	printf("\n");
	for (unsigned i = first; i < end; i++) {
		printf("%-18s", p->rows[i].label);
		for (unsigned f = 0; f < nf; f++)
			printf("  %*s", w[f], txt[i - first][f]);
		printf("\n");
	}
}

static void print_table(const struct bench_opts *o, const struct plan *p,
			const struct cell *cells, const struct meta *m)
{
	printf("evshm %s bench, %s, host %s, Linux %s\n%s, %ld CPUs; ",
	       evshm_version(), m->date, m->host, m->kernel, m->cpu, m->ncpus);
	if (o->cpu_a >= 0)
		printf("ping/receiving side on CPU %d, echo/sending side on "
		       "CPU %d\n", o->cpu_a, o->cpu_b);
	else
		printf("not pinned\n");
	if (o->repeat > 1)
		printf("each figure: median [min-max] of %u runs\n", o->repeat);
	for (unsigned i = 0, end; i < p->n; i = end) {
		for (end = i + 1; end < p->n && !section_starts(p, end) &&
				  end - i < SECTION_MAX; end++)
			;
		print_section(o, p, cells, i, end);
	}
	printf("\nGB/s: 10^9 payload bytes per second; ratios: to the Unix "
	       "stream socket of the same run.\nEvery message was verified "
	       "(sequence number and checksum over the payload).\n");
}

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

static void print_json(const struct bench_opts *o, const struct plan *p,
		       const struct cell *cells, const struct meta *m)
{
	unsigned runs = o->repeat;

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
	printf(",\n  \"repeat\": %u,\n  \"results\": [", runs);
	for (unsigned i = 0; i < p->n; i++) {
		const struct row *rw = &p->rows[i];
		bool rtt = rw->kind == R_RTT || rw->kind == R_LINE;
		const struct fig *figs = rtt ? rtt_figs : stream_figs;
		unsigned nf = rtt ? 6 : 5;

		printf("%s\n    {\"test\": \"%s\", \"transport\": \"%s\", "
		       "\"size\": %u", i ? "," : "",
		       rtt ? "round-trip" : "streaming", rw->id, rw->size);
		if (rw->xport == BX_EVSHM || rw->xport == BX_EVSHM_ZC)
			printf(", \"ring\": %u, \"spin_ns\": %lld", rw->ring,
			       (long long)rw->spin_ns);
		if (rtt)
			printf(", \"round_trips\": %llu",
			       (unsigned long long)o->rtts);
		for (unsigned f = 0; f < nf; f++) {
			if (!fig_applies(rw, &figs[f]) ||
			    (rw->kind == R_FLOOR && f >= 2))
				continue;
			struct agg a = aggregate(cells, p->n, runs, i,
						 figs[f].off);
			printf(",\n     \"%s\": {\"median\": %.6g, \"min\": %.6g, "
			       "\"max\": %.6g, \"runs\": [", figs[f].json,
			       a.med, a.min, a.max);
			for (unsigned r = 0; r < runs; r++) {
				double v;
				memcpy(&v, (const char *)&cells[r * p->n + i] +
				       figs[f].off, sizeof(v));
				printf("%s%.6g", r ? ", " : "", v);
			}
			printf("]}");
		}
		printf("}");
	}
	printf("\n  ]\n}\n");
}

/* --- command line ----------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: evshm bench [OPTIONS]\n"
		"\n"
		"Measure evshm against a Unix stream socket (length-prefixed\n"
		"frames), a Unix seqpacket socket and a pair of pipes, with the\n"
		"two sides in two processes (this program spawns itself), all in\n"
		"the same run: round-trip latency (ping-pong) and one-way\n"
		"streaming throughput, plus the machine's floors (a spin\n"
		"ping-pong on one cache line, memcpy, generating and verifying\n"
		"the payload).  Every message is verified (sequence number and\n"
		"checksum over the whole payload); a lost or corrupt message\n"
		"fails the run (exit 1).\n"
		"\n"
		"options:\n"
		"  --tests LIST       rtt,stream,floor (default: all)\n"
		"  --transports LIST  stream,seqpacket,pipe,evshm (default: all)\n"
		"  --sizes LIST       streaming message sizes, multiples of 8\n"
		"                     (default 64,4K,64K,1M)\n"
		"  --rtt-size SIZE    round-trip message size (default 64)\n"
		"  --rtts N           round trips measured per transport (default\n"
		"                     20000) after --rtt-warmup N (default 2000)\n"
		"  --time SEC         streaming: seconds per transport and size\n"
		"                     (default 0.25)\n"
		"  --count N          streaming: exactly N messages instead\n"
		"  --ring SIZE        evshm ring for streaming (default 16M)\n"
		"  --spin NS          evshm spin before sleeping, streaming\n"
		"                     (default 30000, the library's default)\n"
		"  --rtt-spin NS      evshm spin in the spin round trip (default\n"
		"                     1000000); the blocking one never spins\n"
		"  --cpus A,B | none  pin the ping/receiving process to CPU A and\n"
		"                     the echo/sending one to CPU B (default: the\n"
		"                     first two CPUs we may use, if there are two)\n"
		"  --repeat N         run everything N times; report the median\n"
		"                     and the min-max spread (default 3)\n"
		"  --json             print the results as JSON\n"
		"  --inject-fault corrupt|drop\n"
		"                     (for tests) the sender corrupts or skips\n"
		"                     one streaming message: the run must fail\n"
		"  --help             this text\n"
		"\n"
		"Exit status: 0 all tests ran and every message checked out;\n"
		"1 a test failed (lost or corrupt message, a side died); 2 usage.\n");
}

/* Split a comma list and call @each on every item; -1 on a bad item. */
static int parse_list(const char *s, int (*each)(const char *, void *),
		      void *arg)
{
	char buf[256];

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (char *save, *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save))
		if (each(t, arg) < 0)
			return -1;
	return 0;
}

static int each_test(const char *t, void *arg)
{
	unsigned *m = arg;
	if (!strcmp(t, "rtt") || !strcmp(t, "pingpong"))
		*m |= T_RTT;
	else if (!strcmp(t, "stream") || !strcmp(t, "streaming"))
		*m |= T_STREAM;
	else if (!strcmp(t, "floor"))
		*m |= T_FLOOR;
	else
		return -1;
	return 0;
}

static int each_xport(const char *t, void *arg)
{
	unsigned *m = arg;
	if (!strcmp(t, "stream"))
		*m |= X_STREAM;
	else if (!strcmp(t, "seqpacket"))
		*m |= X_SEQPACKET;
	else if (!strcmp(t, "pipe"))
		*m |= X_PIPE;
	else if (!strcmp(t, "evshm"))
		*m |= X_EVSHM;
	else
		return -1;
	return 0;
}

static bool size_ok(uint64_t v)
{
	return v >= 16 && v % 8 == 0 && v <= EVSHM_MAX_MSG(EVSHM_RING_MAX / 2);
}

static int each_size(const char *t, void *arg)
{
	struct bench_opts *o = arg;
	uint64_t v;
	if (o->nsizes == MAX_SIZES || tool_parse_size(t, &v) < 0 || !size_ok(v))
		return -1;
	o->sizes[o->nsizes++] = (uint32_t)v;
	return 0;
}

static void default_cpus(struct bench_opts *o)
{
	cpu_set_t set;
	int found = 0;

	o->cpu_a = o->cpu_b = -1;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return;
	for (int c = 0; c < CPU_SETSIZE && found < 2; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		if (found++ == 0)
			o->cpu_a = c;
		else
			o->cpu_b = c;
	}
	if (found < 2)
		o->cpu_a = o->cpu_b = -1;
}

static int parse_args(int argc, char **argv, struct bench_opts *o)
{
	bool bad = false, sizes_set = false;
	const char *cmd = "bench";

	*o = (struct bench_opts){
		.tests = T_RTT | T_STREAM | T_FLOOR,
		.xports = X_STREAM | X_SEQPACKET | X_PIPE | X_EVSHM,
		.rtt_size = 64, .rtts = 20000, .rtt_warmup = 2000,
		.seconds = 0.25, .spin_ns = 30000, .rtt_spin_ns = 1000000,
		.repeat = 3,
	};
	default_cpus(o);
	for (int i = 1; i < argc && !bad; i++) {
		const char *v = NULL;
		uint64_t n = 0;
		if (tool_opt(argc, argv, &i, "--help", "-h", NULL, &bad, cmd)) {
			usage(stdout);
			exit(0);
		} else if (tool_opt(argc, argv, &i, "--json", NULL, NULL, &bad,
				    cmd)) {
			o->json = true;
		} else if (tool_opt(argc, argv, &i, "--tests", NULL, &v, &bad,
				    cmd)) {
			o->tests = 0;
			bad = v && (parse_list(v, each_test, &o->tests) < 0 ||
				    !o->tests);
		} else if (tool_opt(argc, argv, &i, "--transports", NULL, &v,
				    &bad, cmd)) {
			o->xports = 0;
			bad = v && (parse_list(v, each_xport, &o->xports) < 0 ||
				    !o->xports);
		} else if (tool_opt(argc, argv, &i, "--sizes", NULL, &v, &bad,
				    cmd)) {
			o->nsizes = 0;
			sizes_set = true;
			bad = v && (parse_list(v, each_size, o) < 0 || !o->nsizes);
		} else if (tool_opt(argc, argv, &i, "--rtt-size", NULL, &v,
				    &bad, cmd)) {
			bad = v && (tool_parse_size(v, &n) < 0 || !size_ok(n) ||
				    n > EVSHM_MAX_MSG(EVSHM_RING_DEFAULT));
			o->rtt_size = (uint32_t)n;
		} else if (tool_opt(argc, argv, &i, "--rtts", NULL, &v, &bad,
				    cmd)) {
			bad = v && (tool_parse_count(v, &o->rtts) < 0 ||
				    !o->rtts || o->rtts > 100000000);
		} else if (tool_opt(argc, argv, &i, "--rtt-warmup", NULL, &v,
				    &bad, cmd)) {
			bad = v && tool_parse_count(v, &o->rtt_warmup) < 0;
		} else if (tool_opt(argc, argv, &i, "--time", NULL, &v, &bad,
				    cmd)) {
			bad = v && (tool_parse_seconds(v, &o->seconds) < 0 ||
				    o->seconds <= 0 || o->seconds > 3600);
		} else if (tool_opt(argc, argv, &i, "--count", NULL, &v, &bad,
				    cmd)) {
			bad = v && (tool_parse_count(v, &o->count) < 0 ||
				    !o->count);
		} else if (tool_opt(argc, argv, &i, "--ring", NULL, &v, &bad,
				    cmd)) {
			bad = v && (tool_parse_size(v, &n) < 0 ||
				    n < EVSHM_RING_MIN || n > EVSHM_RING_MAX ||
				    (n & (n - 1)));
			o->ring = (uint32_t)n;
		} else if (tool_opt(argc, argv, &i, "--spin", NULL, &v, &bad,
				    cmd)) {
			bad = v && tool_parse_count(v, &n) < 0;
			o->spin_ns = n ? (int64_t)n : EVSHM_SPIN_NEVER;
		} else if (tool_opt(argc, argv, &i, "--rtt-spin", NULL, &v,
				    &bad, cmd)) {
			bad = v && (tool_parse_count(v, &n) < 0 || !n);
			o->rtt_spin_ns = (int64_t)n;
		} else if (tool_opt(argc, argv, &i, "--cpus", NULL, &v, &bad,
				    cmd)) {
			if (v && !strcmp(v, "none"))
				o->cpu_a = o->cpu_b = -1;
			else
				bad = v && (sscanf(v, "%d,%d", &o->cpu_a,
						   &o->cpu_b) != 2 ||
					    o->cpu_a < 0 || o->cpu_b < 0);
		} else if (tool_opt(argc, argv, &i, "--repeat", NULL, &v, &bad,
				    cmd)) {
			bad = v && (tool_parse_count(v, &n) < 0 || n < 1 ||
				    n > 64);
			o->repeat = (unsigned)n;
		} else if (tool_opt(argc, argv, &i, "--inject-fault", NULL, &v,
				    &bad, cmd)) {
			if (v && !strcmp(v, "corrupt"))
				o->fault = BF_CORRUPT;
			else if (v && !strcmp(v, "drop"))
				o->fault = BF_DROP;
			else
				bad = true;
		} else {
			tool_err(cmd, "unknown option '%s'", argv[i]);
			bad = true;
			continue;
		}
		if (bad && v)
			tool_err(cmd, "bad value '%s' for %s", v, argv[i - 1]);
	}
	if (!sizes_set) {
		static const uint32_t def[] = { 64, 4096, 65536, 1u << 20 };
		memcpy(o->sizes, def, sizeof(def));
		o->nsizes = 4;
	}
	for (unsigned s = 0; s < o->nsizes && !bad; s++)
		if (o->ring && o->sizes[s] > EVSHM_MAX_MSG(o->ring)) {
			tool_err(cmd, "--ring %u cannot carry %u-byte messages "
				 "(the largest is ring/2 - 8)", o->ring,
				 o->sizes[s]);
			bad = true;
		}
	if (bad) {
		usage(stderr);
		return TOOL_EXIT_USAGE;
	}
	return 0;
}

int tool_bench(int argc, char **argv)
{
	struct bench_opts o;
	struct peer pr = { .pid = -1, .sock = -1 };
	struct plan *p = malloc(sizeof(*p));
	struct meta m;
	int res = parse_args(argc, argv, &o);

	if (res || !p) {
		free(p);
		return res ? res : TOOL_EXIT_FAIL;
	}
	signal(SIGALRM, watchdog);
	signal(SIGPIPE, SIG_IGN);
	plan_make(p, &o);
	struct cell *cells = calloc((size_t)o.repeat * p->n, sizeof(*cells));
	uint64_t *samples = calloc(o.rtts, sizeof(*samples));
	if (!cells || !samples) {
		tool_err("bench", "out of memory");
		res = TOOL_EXIT_FAIL;
		goto out;
	}
	if (o.cpu_a >= 0 && (res = tool_pin_cpu(o.cpu_a)) < 0) {
		tool_err("bench", "cannot pin to CPU %d: %s", o.cpu_a,
			 strerror(-res));
		res = TOOL_EXIT_USAGE;
		goto out;
	}
	meta_get(&m);
	if ((res = peer_start(&pr, o.cpu_b)) < 0) {
		tool_err("bench", "starting the peer process: %s",
			 evshm_strerror(res));
		res = TOOL_EXIT_FAIL;
		goto out;
	}
	for (unsigned run = 0; run < o.repeat; run++) {
		for (unsigned i = 0; i < p->n; i++) {
			struct cell *c = &cells[run * p->n + i];
			progress(&o, run, i, p);
			if (run_row(&o, &p->rows[i], &pr, samples, c) < 0) {
				res = TOOL_EXIT_FAIL;
				goto out;
			}
		}
		/* Ratios against the stream socket of the same run. */
		for (unsigned i = 0; i < p->n; i++) {
			const struct row *rw = &p->rows[i];
			struct cell *c = &cells[run * p->n + i];
			if (rw->base < 0)
				continue;
			const struct cell *b = &cells[run * p->n + rw->base];
			if (rw->kind == R_RTT || rw->kind == R_LINE)
				c->ratio = b->r.p50 > 0 ? c->r.p50 / b->r.p50 : 0;
			else
				c->ratio = b->r.msgs_s > 0 ? c->r.msgs_s / b->r.msgs_s : 0;
		}
	}
	if (isatty(STDERR_FILENO))
		fputs("\r\033[K", stderr);
	if (o.json)
		print_json(&o, p, cells, &m);
	else
		print_table(&o, p, cells, &m);
	res = 0;
out:
	peer_stop(&pr);
	free(samples);
	free(cells);
	free(p);
	return res;
}

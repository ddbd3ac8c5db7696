/* SPDX-License-Identifier: MIT */
/*
 * bench.c: `evshm bench`, the driver.  It reads the options, spawns the
 * peers (this program again, `evshm bench-peer`: one, or as many as the
 * fan-out test has subscribers), runs every row of the plan
 * (bench_plan.c) --repeat times with the processes side by side
 * (bench_run.c), takes the ratios of each run, and prints the medians
 * with their spread (bench_report.c).
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <evshm.h>

#include "bench_plan.h"
#include "bench_report.h"
#include "bench_xport.h"
#include "sys.h"
#include "tool.h"

/* --- the peer process --------------------------------------------------- */

int tool_bench_peer(int argc, char **argv)
{
	int sock, res;

	if (argc != 2)
		return TOOL_EXIT_USAGE;
	if (sys_connect(argv[1], SOCK_SEQPACKET, &sock) < 0)
		return TOOL_EXIT_FAIL;
	res = bench_serve_b(sock);
	close(sock);
	return res == 0 ? TOOL_EXIT_OK : TOOL_EXIT_FAIL;
}

struct peer {
	pid_t pid;
	int sock;
	unsigned seq;   /* names for the tests' rendezvous */
};

static int peer_start(struct peer *pr)
{
	char ctl[64];
	pid_t cpid;
	int lfd, res;

	snprintf(ctl, sizeof(ctl), "@evshm-bench-%d-%llx", (int)getpid(),
		 (unsigned long long)sys_now_ns());
	if ((res = sys_listen(ctl, SOCK_SEQPACKET, &lfd)) < 0)
		return res;
	char *argv[] = { "evshm", "bench-peer", ctl, NULL };
	res = tool_spawn_self(&pr->pid, argv);
	if (res == 0)
		res = sys_accept(lfd, BENCH_CTL_TIMEOUT_MS, &pr->sock);
	/* Only the process we spawned may drive the other side. */
	if (res == 0 && (res = sys_peer_pid(pr->sock, &cpid)) == 0 &&
	    cpid != pr->pid)
		res = -EACCES;
	close(lfd);
	return res;
}

static void peer_stop(struct peer *pr)
{
	struct bench_spec s = { .quit = 1 };

	if (pr->sock >= 0) {
		sys_send_msg(pr->sock, &s, sizeof(s), NULL, 0, 1000);
		pr->sock = sys_close(pr->sock);
	}
	if (pr->pid > 0) {
		tool_wait(pr->pid);
		pr->pid = -1;
	}
}

/* --- running the plan --------------------------------------------------- */

static const char *test_name(const struct bench_row *rw)
{
	return rw->test == BT_RTT ? "round trip" :
	       rw->test == BT_IDLE ? "idle round trip" :
	       rw->test == BT_FANOUT ? "fan-out" : "streaming";
}

/* Start @n peers; on failure those started are stopped by peers_stop(). */
static int peers_start(struct peer *pr, unsigned n)
{
	int res = 0;

	for (unsigned i = 0; i < n && res == 0; i++)
		res = peer_start(&pr[i]);
	return res;
}

static void peers_stop(struct peer *pr, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		peer_stop(&pr[i]);
}

/*
 * A row of a third-party library (ZeroMQ): when it fails (libzmq's
 * XPUB_NODROP has been seen to stall a subscriber for good, once in a few
 * hundred rows), the row keeps the runs that completed, the table says
 * so, and the benchmark goes on.  Every message is still checked: a row
 * that completes lost nothing.
 */
static bool peer_row(const struct bench_row *rw)
{
	return !rw->local && rw->xport == BX_ZMQ;
}

static int run_row(const struct bench_opts *o, const struct bench_row *rw,
		   struct peer *pr, uint64_t *samples, struct bench_result *out)
{
	char err[BENCH_ERR_MAX] = "", sz[32], name[64];
	int ctl[BENCH_MAX_SUBS];
	int cpu_a, cpu_b, res;

	for (unsigned f = 0; f < FIG_COUNT; f++)
		out->fig[f] = NAN;
	bench_plan_cpus(o, rw->where, &cpu_a, &cpu_b);
	if ((res = sys_cpu_pin(cpu_a)) < 0) {
		snprintf(err, sizeof(err), "placing this process on CPU %d: %s",
			 cpu_a, strerror(-res));
		goto out_fail;
	}
	if (rw->local) {
		double bps = bench_local_floor(rw->lfloor, rw->size,
					       o->seconds / 4);
		out->fig[FIG_GB_S] = bps / 1e9;
		out->fig[FIG_MSGS_S] = bps / rw->size;
		return 0;
	}
	snprintf(name, sizeof(name), "@evshm-bench-%d-%u", (int)getpid(),
		 pr->seq++);
	struct bench_spec s = bench_plan_spec(o, rw, name);
	for (unsigned i = 0; i < (rw->subs ? rw->subs : 1); i++)
		ctl[i] = pr[i].sock;
	if (bench_run_a(&s, ctl, samples, out, err) == 0)
		return 0;

out_fail:
	if (isatty(STDERR_FILENO))
		fputs("\r\033[K", stderr);
	/* A failure of evshm (or of our own floors and sockets) fails the
	 * run; one of a third-party peer only leaves its row out of this
	 * run (see peer_row()). */
	const char *what = peer_row(rw) ? "left out of this run" : "FAILED";
	if (rw->subs)
		tool_err("bench", "%s: %s, %s, %s, %u subscriber%s: %s", what,
			 test_name(rw), bench_size_str(sz, sizeof(sz), rw->size),
			 rw->label, rw->subs, rw->subs > 1 ? "s" : "", err);
	else
		tool_err("bench", "%s: %s, %s, %s: %s", what, test_name(rw),
			 bench_size_str(sz, sizeof(sz), rw->size), rw->label,
			 err);
	return -1;
}

static void progress(const struct bench_opts *o, unsigned run, unsigned i,
		     const struct bench_plan *p)
{
	const struct bench_row *rw = &p->rows[i];
	char sz[32];

	if (!isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\r\033[Kevshm bench: run %u/%llu, test %u/%u: %s %s, %s",
		run + 1, (unsigned long long)o->repeat, i + 1, p->n,
		test_name(rw), bench_size_str(sz, sizeof(sz), rw->size),
		rw->label);
	fflush(stderr);
}

/* --- command line ------------------------------------------------------- */

static int each_test(const char *t, void *arg)
{
	static const struct { const char *name; unsigned bit; } names[] = {
		{ "rtt", T_RTT }, { "pingpong", T_RTT }, { "stream", T_STREAM },
		{ "streaming", T_STREAM }, { "floor", T_FLOOR },
		{ "idle", T_IDLE }, { "fanout", T_FANOUT },
		{ "fan-out", T_FANOUT },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(t, names[i].name)) {
			*(unsigned *)arg |= names[i].bit;
			return 0;
		}
	return -EINVAL;
}

static int each_xport(const char *t, void *arg)
{
	static const struct { const char *name; unsigned bit; } names[] = {
		{ "stream", X_STREAM }, { "seqpacket", X_SEQPACKET },
		{ "pipe", X_PIPE }, { "evshm", X_EVSHM }, { "zmq", X_ZMQ },
		{ "zeromq", X_ZMQ },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(t, names[i].name)) {
			*(unsigned *)arg |= names[i].bit;
			return 0;
		}
	return -EINVAL;
}

static int each_placement(const char *t, void *arg)
{
	for (unsigned w = 0; w < PL_COUNT; w++)
		if (!strcmp(t, bench_placement_name(w))) {
			*(unsigned *)arg |= 1u << w;
			return 0;
		}
	return -EINVAL;
}

static bool size_ok(uint64_t v)
{
	return v >= 16 && v % 8 == 0 && v <= EVSHM_MAX_MSG(EVSHM_RING_MAX / 2);
}

static int each_size(const char *t, void *arg)
{
	struct bench_opts *o = arg;
	uint64_t v;

	if (o->nsizes == BENCH_MAX_SIZES || tool_parse_size(t, &v) < 0 ||
	    !size_ok(v))
		return -EINVAL;
	o->sizes[o->nsizes++] = (uint32_t)v;
	return 0;
}

static int each_fan_size(const char *t, void *arg)
{
	struct bench_opts *o = arg;
	uint64_t v;

	if (o->nfan_sizes == BENCH_MAX_SIZES || tool_parse_size(t, &v) < 0 ||
	    !size_ok(v))
		return -EINVAL;
	o->fan_sizes[o->nfan_sizes++] = (uint32_t)v;
	return 0;
}

static int each_subs(const char *t, void *arg)
{
	struct bench_opts *o = arg;
	uint64_t v;

	if (o->nfan_subs == BENCH_MAX_SUBS || tool_parse_count(t, &v) < 0 ||
	    v < 1 || v > BENCH_MAX_SUBS)
		return -EINVAL;
	o->fan_subs[o->nfan_subs++] = (unsigned)v;
	return 0;
}

static int set_fan_sizes(void *opts, const char *v)
{
	struct bench_opts *o = opts;

	o->nfan_sizes = 0;
	return tool_each_item(v, each_fan_size, o);
}

static int set_subs(void *opts, const char *v)
{
	struct bench_opts *o = opts;

	o->nfan_subs = 0;
	return tool_each_item(v, each_subs, o);
}

static int set_tests(void *opts, const char *v)
{
	struct bench_opts *o = opts;

	o->tests = 0;
	return tool_each_item(v, each_test, &o->tests);
}

static int set_transports(void *opts, const char *v)
{
	struct bench_opts *o = opts;

	o->xports = 0;
	return tool_each_item(v, each_xport, &o->xports);
}

static int set_placements(void *opts, const char *v)
{
	struct bench_opts *o = opts;

	o->placements = 0;
	return tool_each_item(v, each_placement, &o->placements);
}

static int set_sizes(void *opts, const char *v)
{
	struct bench_opts *o = opts;

	o->nsizes = 0;
	return tool_each_item(v, each_size, o);
}

static int set_rtt_size(void *opts, const char *v)
{
	struct bench_opts *o = opts;
	uint64_t n;

	if (tool_parse_size(v, &n) < 0 || !size_ok(n) ||
	    n > EVSHM_MAX_MSG(EVSHM_RING_DEFAULT))
		return -EINVAL;
	o->rtt_size = n;
	return 0;
}

static int set_ring(void *opts, const char *v)
{
	struct bench_opts *o = opts;
	uint64_t n;

	if (tool_parse_size(v, &n) < 0 || n < EVSHM_RING_MIN ||
	    n > EVSHM_RING_MAX || (n & (n - 1)))
		return -EINVAL;
	o->ring = n;
	return 0;
}

/* NS, 0 or "never" (EVSHM_SPIN_NEVER), or "default" (spin_ns 0: the
 * library decides). */
static int set_spin(void *opts, const char *v)
{
	struct bench_opts *o = opts;
	uint64_t n;

	if (!strcmp(v, "default")) {
		o->spin_ns = 0;
		return 0;
	}
	if (!strcmp(v, "never"))
		n = 0;
	else if (tool_parse_count(v, &n) < 0 || n > INT64_MAX)
		return -EINVAL;
	o->spin_ns = n ? (int64_t)n : EVSHM_SPIN_NEVER;
	return 0;
}

static int set_rtt_spin(void *opts, const char *v)
{
	struct bench_opts *o = opts;
	uint64_t n;

	if (tool_parse_count(v, &n) < 0 || !n || n > INT64_MAX)
		return -EINVAL;
	o->rtt_spin_ns = (int64_t)n;
	return 0;
}

static int set_cpus(void *opts, const char *v)
{
	struct bench_opts *o = opts;
	char end;

	if (!strcmp(v, "none")) {
		o->cpu_a = o->cpu_b = -1;
		return 0;
	}
	if (sscanf(v, "%d,%d%c", &o->cpu_a, &o->cpu_b, &end) != 2 ||
	    o->cpu_a < 0 || o->cpu_b < 0 || o->cpu_a == o->cpu_b)
		return -EINVAL;
	return 0;
}

static int set_fault(void *opts, const char *v)
{
	struct bench_opts *o = opts;

	if (!strcmp(v, "corrupt"))
		o->fault = BF_CORRUPT;
	else if (!strcmp(v, "drop"))
		o->fault = BF_DROP;
	else
		return -EINVAL;
	return 0;
}

#define F(field, ctype) TOOL_FIELD(struct bench_opts, field, ctype)
#define CUSTOM(fn) .type = TOOL_OPT_CUSTOM, .set = (fn)

static const struct tool_option bench_opts_table[] = {
	{ .name = "tests", .arg = "LIST", CUSTOM(set_tests),
	  .help = "rtt,idle,stream,floor,fanout (default: all)" },
	{ .name = "transports", .arg = "LIST", CUSTOM(set_transports),
	  .help = "stream,seqpacket,pipe,evshm,zmq (default:\n"
		  "all; zmq if built with libzmq)" },
	{ .name = "sizes", .arg = "LIST", CUSTOM(set_sizes),
	  .help = "streaming message sizes, multiples of 8\n"
		  "(default 64,4K,64K,1M)" },
	{ .name = "rtt-size", .arg = "SIZE", CUSTOM(set_rtt_size),
	  .help = "round-trip message size (default 64)" },
	{ .name = "rtts", .arg = "N", .type = TOOL_OPT_COUNT,
	  .off = F(rtts, uint64_t), .min = 1, .max = 1e8,
	  .help = "round trips measured per transport (default\n"
		  "10000)" },
	{ .name = "rtt-warmup", .arg = "N", .type = TOOL_OPT_COUNT,
	  .off = F(rtt_warmup, uint64_t), .max = 1e8,
	  .help = "round trips before measuring (default 1000)" },
	{ .name = "idle", .arg = "N", .type = TOOL_OPT_COUNT,
	  .off = F(idle, uint64_t), .min = 1, .max = BENCH_IDLE_MAX,
	  .help = "idle test: round trips measured (default 20)" },
	{ .name = "idle-gap", .arg = "SEC", .type = TOOL_OPT_SECONDS,
	  .off = F(idle_gap, double), .min = 1e-4, .max = 1,
	  .help = "idle test: each side sleeps this long before\n"
		  "it sends (default 10ms)" },
	{ .name = "time", .arg = "SEC", .type = TOOL_OPT_SECONDS,
	  .off = F(seconds, double), .min = 1e-3, .max = 3600,
	  .help = "streaming: seconds per transport and size\n"
		  "(default 0.25)" },
	{ .name = "count", .arg = "N", .type = TOOL_OPT_COUNT,
	  .off = F(count, uint64_t), .min = 1, .max = 1e12,
	  .help = "streaming: exactly N messages instead" },
	{ .name = "ring", .arg = "SIZE", CUSTOM(set_ring),
	  .help = "evshm ring for streaming (default 16M)" },
	{ .name = "spin", .arg = "NS|default|never", CUSTOM(set_spin),
	  .help = "evshm spin before sleeping, streaming\n"
		  "(default: the library's default, spin_ns 0;\n"
		  "0 or never: never spins)" },
	{ .name = "rtt-spin", .arg = "NS", CUSTOM(set_rtt_spin),
	  .help = "evshm spin in the spin round trip (default\n"
		  "1000000); the blocking one never spins" },
	{ .name = "cpus", .arg = "A,B|none", CUSTOM(set_cpus),
	  .help = "the two CPUs of the placement 'apart' (the\n"
		  "ping/receiving side on A, the echo/sending one\n"
		  "on B), where streaming runs too; 'same' uses A\n"
		  "(default: the first two CPUs we may use; none\n"
		  "if there are fewer: nothing is pinned)" },
	{ .name = "placements", .arg = "LIST", CUSTOM(set_placements),
	  .help = "where the two processes run for the round\n"
		  "trips: apart (CPUs A and B), same (both on A),\n"
		  "unpinned (default: all three; with --cpus none,\n"
		  "unpinned)" },
	{ .name = "subscribers", .arg = "LIST", CUSTOM(set_subs),
	  .help = "fan-out: subscriber counts, 1 to 8 (default\n"
		  "1,2,4)" },
	{ .name = "fanout-sizes", .arg = "LIST", CUSTOM(set_fan_sizes),
	  .help = "fan-out message sizes (default 64,4K,1M)" },
	{ .name = "fanout-time", .arg = "SEC", .type = TOOL_OPT_SECONDS,
	  .off = F(fan_seconds, double), .min = 1e-3, .max = 3600,
	  .help = "fan-out: seconds per row (default 0.1;\n"
		  "--count N: exactly N messages instead)" },
	{ .name = "repeat", .arg = "N", .type = TOOL_OPT_COUNT,
	  .off = F(repeat, uint64_t), .min = 1, .max = 64,
	  .help = "run everything N times; report the median\n"
		  "and the min-max spread (default 3)" },
	{ .name = "json", .type = TOOL_OPT_FLAG, .off = F(json, bool),
	  .help = "print the results as JSON" },
	{ .name = "inject-fault", .arg = "corrupt|drop", CUSTOM(set_fault),
	  .help = "(for tests) the sender corrupts or skips one\n"
		  "streaming message: the run must fail" },
};

static const struct tool_cmd bench_cmd = {
	.name = "bench",
	.synopsis = "[OPTIONS]",
	.about = "Measure evshm against a Unix stream socket (length-prefixed\n"
		 "frames), a Unix seqpacket socket and a pair of pipes, with the\n"
		 "two sides in two processes (this program spawns itself), all in\n"
		 "the same run: round-trip latency (ping-pong) with the library's\n"
		 "default options, blocking and spinning, with the two sides on\n"
		 "two CPUs, on one, and unpinned; one-way streaming throughput;\n"
		 "and the machine's floors (spin ping-pong on one cache line,\n"
		 "eventfd ping-pong, a minimal spinning ring of 64-byte slots,\n"
		 "the same with a 16-byte header before each message as evshm\n"
		 "frames them, memcpy, generating and verifying the payload),\n"
		 "each figure also as a ratio to its floor; and fan-out, one\n"
		 "publisher to 1, 2 and 4 subscribers in separate processes,\n"
		 "evshm topics against N Unix stream sockets and ZeroMQ PUB/SUB.\n"
		 "Every message is verified (sequence number and checksum over\n"
		 "the whole payload) by every receiver; a lost or corrupt message\n"
		 "fails the run (exit 1).\n",
	.opts = bench_opts_table,
	.nopts = sizeof(bench_opts_table) / sizeof(bench_opts_table[0]),
	.footer = "Exit status: 0 all tests ran and every message checked out;\n"
		  "1 a test failed (lost or corrupt message, a side died); 2 usage.\n",
};

static int parse_args(int argc, char **argv, struct bench_opts *o)
{
	static const uint32_t def_sizes[] = { 64, 4096, 65536, 1u << 20 };
	static const uint32_t def_fan_sizes[] = { 64, 4096, 1u << 20 };
	static const unsigned def_subs[] = { 1, 2, 4 };
	int first, res;

	*o = (struct bench_opts){
		.tests = T_RTT | T_IDLE | T_STREAM | T_FLOOR | T_FANOUT,
		.xports = X_STREAM | X_SEQPACKET | X_PIPE | X_EVSHM | X_ZMQ,
		.fan_seconds = 0.1,
		.rtt_size = 64, .rtts = 10000, .rtt_warmup = 1000,
		.idle = 20, .idle_gap = 0.01,
		.seconds = 0.25, .spin_ns = 0, .rtt_spin_ns = 1000000,
		.repeat = 3, .cpu_a = -1, .cpu_b = -1,
	};
	if (sys_cpu_two(&o->cpu_a, &o->cpu_b) < 0)
		o->cpu_a = o->cpu_b = -1;
	if ((res = tool_getopt(&bench_cmd, argc, argv, o, &first)) >= 0)
		return res;
	if (first != argc)
		return tool_usage_error(&bench_cmd, "no operands expected");
	if (!o->placements)
		o->placements = o->cpu_a >= 0 ? (1u << PL_COUNT) - 1
					      : 1u << PL_UNPINNED;
	else if (o->cpu_a < 0 && (o->placements & ~(1u << PL_UNPINNED)))
		return tool_usage_error(&bench_cmd, "--placements apart and "
					"same need two CPUs (--cpus)");
	if ((o->tests & T_IDLE) && o->rtt_size < 24)
		return tool_usage_error(&bench_cmd, "the idle test needs "
					"--rtt-size 24 or more");
	if (!o->nsizes) {
		memcpy(o->sizes, def_sizes, sizeof(def_sizes));
		o->nsizes = sizeof(def_sizes) / sizeof(def_sizes[0]);
	}
	if (!o->nfan_sizes) {
		memcpy(o->fan_sizes, def_fan_sizes, sizeof(def_fan_sizes));
		o->nfan_sizes = sizeof(def_fan_sizes) / sizeof(def_fan_sizes[0]);
	}
	if (!o->nfan_subs) {
		memcpy(o->fan_subs, def_subs, sizeof(def_subs));
		o->nfan_subs = sizeof(def_subs) / sizeof(def_subs[0]);
	}
	if ((o->xports & X_ZMQ) && !bench_zmq_built) {
		if (o->xports == X_ZMQ)
			return tool_usage_error(&bench_cmd, "this evshm was "
						"built without libzmq");
		o->xports &= ~(unsigned)X_ZMQ;
	}
	/* Only the sizes of the tests that run. */
	unsigned nstream = o->tests & (T_STREAM | T_FLOOR) ? o->nsizes : 0;
	unsigned nfan = o->tests & T_FANOUT ? o->nfan_sizes : 0;
	for (unsigned s = 0; s < nstream + nfan; s++) {
		uint32_t sz = s < nstream ? o->sizes[s] : o->fan_sizes[s - nstream];
		if (o->ring && sz > EVSHM_MAX_MSG(o->ring))
			return tool_usage_error(&bench_cmd,
				"--ring %llu cannot carry %u-byte messages "
				"(the largest is ring/2 - 16)",
				(unsigned long long)o->ring, sz);
	}
	return -1;
}

int tool_bench(int argc, char **argv)
{
	struct bench_opts o;
	struct peer pr[BENCH_MAX_SUBS];
	unsigned npeers = 0;
	struct bench_plan *p = NULL;
	struct bench_result *res = NULL;
	uint64_t *samples = NULL;
	struct bench_meta m;
	int rc = parse_args(argc, argv, &o);

	if (rc >= 0)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	p = malloc(sizeof(*p));
	if (p)
		bench_plan_make(p, &o);
	if (p)
		res = calloc((size_t)o.repeat * p->n, sizeof(*res));
	/* Round trips, or both directions' latencies of the idle test. */
	samples = calloc(o.rtts > 2 * o.idle ? o.rtts : 2 * o.idle,
			 sizeof(*samples));
	if (!p || !res || !samples) {
		tool_err("bench", "out of memory");
		rc = TOOL_EXIT_FAIL;
		goto out;
	}
	bench_meta_get(&m);
	npeers = bench_plan_peers(p);
	for (unsigned i = 0; i < npeers; i++)
		pr[i] = (struct peer){ .pid = -1, .sock = -1 };
	if ((rc = peers_start(pr, npeers)) < 0) {
		tool_err("bench", "starting the peer processes: %s",
			 evshm_strerror(rc));
		rc = TOOL_EXIT_FAIL;
		goto out;
	}
	for (unsigned run = 0; run < o.repeat; run++) {
		struct bench_result *r = &res[run * p->n];
		for (unsigned i = 0; i < p->n; i++) {
			progress(&o, run, i, p);
			if (run_row(&o, &p->rows[i], pr, samples, &r[i]) < 0) {
				if (peer_row(&p->rows[i])) {
					m.left_out++;
					continue;
				}
				rc = TOOL_EXIT_FAIL;
				goto out;
			}
		}
		bench_plan_ratios(p, r);
	}
	if (isatty(STDERR_FILENO))
		fputs("\r\033[K", stderr);
	if (o.json)
		bench_report_json(&o, p, res, &m);
	else
		bench_report_table(&o, p, res, &m);
	rc = TOOL_EXIT_OK;
out:
	peers_stop(pr, npeers);
	free(samples);
	free(res);
	free(p);
	return rc;
}
